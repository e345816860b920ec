"""The workflow through a real SLURM: `snakemake --profile slurm` from the repository root
on the tiny dataset, against a single-node cluster that scripts/slurm/start.sh installs
(Debian's slurm-wlm and munge) and starts, and that stop.sh stops again.

Skipped, with the reason, where that cannot be done: not root, no packages, or another
SLURM already on the machine.  On the project's machine type it runs: 3.5 minutes on a
quiet machine, about 7 on a slow one, most of it waiting for the plugin's status checks,
which back off by 10 s each round no job finished."""

import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from helpers import REPO, assert_same_results, scheduled_rules

pytestmark = pytest.mark.slow

SCRIPTS = REPO / "scripts" / "slurm"
GPU_RULES = {"knn", "adanets_filter_train", "adanets_filter_infer", "adanets_gcn_train",
             "adanets_theta", "adanets_embed"}
RUN_TIMEOUT = 900  # seconds; the run takes 3.5 to 7 minutes here
SKIP_CODES = {2: "not root", 3: "slurm-wlm and munge unavailable",
              5: "another cluster's /etc/slurm configuration", 6: "another SLURM is running"}


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A running single-node SLURM; the daemons started here are stopped afterwards."""
    state = tmp_path_factory.mktemp("slurm")
    try:
        start = subprocess.run(["bash", str(SCRIPTS / "start.sh"), str(state)],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL,
                               timeout=1200)
    except subprocess.TimeoutExpired:
        subprocess.run(["bash", str(SCRIPTS / "stop.sh"), str(state)], capture_output=True)
        pytest.fail("scripts/slurm/start.sh took over 20 minutes (apt-get?)")
    started = {int(pid): name for name, pid in
               re.findall(r"^started (\w+) (\d+)$", start.stdout, flags=re.M)}
    try:
        if start.returncode in SKIP_CODES:
            pytest.skip(f"no SLURM test cluster: {SKIP_CODES[start.returncode]} "
                        f"({start.stderr.strip()})")
        assert start.returncode == 0, f"scripts/slurm/start.sh failed:\n{start.stderr}"
        yield state
    finally:
        stop = subprocess.run(["bash", str(SCRIPTS / "stop.sh"), str(state)],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        still = [f"{name} {pid}" for pid, name in started.items()
                 if Path(f"/proc/{pid}").exists()]
        assert not still, f"daemons still running after stop.sh: {still}\n{stop.stderr}"
        left = [f for f in (Path("/etc/slurm/slurm.conf"), Path("/etc/slurm/gres.conf"))
                if f.exists() and "facecluster's scripts/slurm/start.sh" in f.read_text()]
        assert not left, f"stop.sh left start.sh's {left}: every snakemake would wait on it"


def squeue(job_ids) -> dict[str, dict]:
    """SLURM's record of finished jobs (kept MinJobAge = 600 s; there is no sacct here)."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(job_ids),
                          "-o", "%i|%P|%T|%b|%C"],
                         capture_output=True, text=True, check=True).stdout
    rows = (line.split("|") for line in out.splitlines())
    return {job: {"partition": part, "state": state, "gres": gres, "cpus": int(cpus)}
            for job, part, state, gres, cpus in rows}


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tiny_reference, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny-slurm")
    (workdir / "slurm.yaml").write_text("slurm: {gpu_partition: gpu, cpu_partition: cpu}\n")
    cmd = ["timeout", "-k", "20", str(RUN_TIMEOUT),
           "snakemake", "all", "--profile", "slurm", "-s", str(REPO / "Snakefile"),
           "-d", str(workdir), "--slurm-init-seconds-before-status-checks", "1",
           "--slurm-keep-successful-logs",
           "--configfile", str(REPO / "config" / "tiny.yaml"), str(workdir / "slurm.yaml")]
    # From the repository root, as a user types it: that is where `slurm` is found.
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode == 124:
        pytest.fail(f"snakemake on SLURM did not finish in {RUN_TIMEOUT} s:\n{proc.stderr[-4000:]}")
    assert proc.returncode == 0, f"snakemake on SLURM failed:\n{proc.stderr[-6000:]}"
    return workdir, proc.stdout + proc.stderr


def submitted(log: str) -> dict[str, str]:
    """SLURM job id -> rule, from Snakemake's submission messages."""
    return {job: rule for job, rule in re.findall(
        r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/", log)}


def test_every_job_went_through_slurm(slurm_run):
    workdir, log = slurm_run
    jobs = submitted(log)
    planned = scheduled_rules(log)
    del planned["all"]  # a target with no command: Snakemake runs nothing for it
    assert Counter(jobs.values()) == planned, "every planned job was submitted, once"
    # Each job's own SLURM log, named by its job id, holds the rule's run on the node.
    for job, rule in jobs.items():
        slurm_log = next((workdir / ".snakemake" / "slurm_logs").glob(f"rule_{rule}/**/{job}.log"))
        assert f"rule {rule}:" in slurm_log.read_text()
    records = squeue(jobs)
    assert set(records) == set(jobs)
    assert {r["state"] for r in records.values()} == {"COMPLETED"}


def test_gpu_stages_asked_for_a_gpu_and_the_others_for_cpus(slurm_run):
    _, log = slurm_run
    jobs = submitted(log)
    records = squeue(jobs)
    assert GPU_RULES <= set(jobs.values())
    for job, rule in jobs.items():
        if rule in GPU_RULES:
            assert (records[job]["partition"], records[job]["gres"]) == ("gpu", "gres:gpu:1"), rule
        else:
            assert (records[job]["partition"], records[job]["gres"]) == ("cpu", "N/A"), rule
    # Threads become CPUs: the multi-threaded kNN asks for both of this machine's cores.
    knn = [job for job, rule in jobs.items() if rule == "knn"]
    assert all(records[job]["cpus"] == min(2, os.cpu_count()) for job in knn)


def test_gpu_jobs_fall_back_to_the_cpu(slurm_run):
    """The GPU SLURM handed out is /dev/null: faiss and torch found no CUDA device."""
    from facecluster.core import io

    workdir, _ = slurm_run
    for knn in (workdir / "results").rglob("knn.h5"):
        assert io.read_attrs(knn)["device"] == "cpu"
    assert "device cpu" in next((workdir / "results").rglob("filter.log")).read_text()


def test_results_equal_a_local_run(slurm_run, tiny_reference):
    workdir, log = slurm_run
    assert "| tiny | adanets |" in log, "the summary table is printed at the end"
    assert_same_results(tiny_reference, workdir)
