"""Faults: a run killed in the middle of a stage leaves nothing that passes for a finished
artifact, and the rerun continues from the last finished stage to the same result."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import REPO, assert_same_results, scheduled_rules, snakemake

pytestmark = pytest.mark.slow

# What the rules write: every other file under results/ is a log or a benchmark.
ARTIFACTS = ("features.zarr", "manifest.json", "knn.h5", "structure.h5", "koff.h5", "filter.pt",
             "k_hat.h5", "graph.h5", "gcn.pt", "embedding.zarr", "clusters.h5", "clusters.tsv",
             "metrics.json", "summary.tsv", "summary.md")


def artifacts(workdir: Path) -> dict[Path, tuple[int, int]]:
    """Every artifact under results/, with what changes if it is written again
    (an atomic write renames a new file or directory into place: a new inode)."""
    found = {}
    for name in ARTIFACTS:
        for path in (workdir / "results").rglob(name):
            if not any(part.startswith(".") for part in path.relative_to(workdir).parts):
                st = path.stat()
                found[path.relative_to(workdir)] = (st.st_ino, st.st_mtime_ns)
    return found


def glob_while_writing(root: Path, name: str) -> list[Path]:
    """``root.rglob(name)`` while a run writes under ``root``: an atomic write's temporary
    folder can vanish between being listed and being scanned, and that poll finds
    nothing (the next one looks again)."""
    try:
        return list(root.rglob(name))
    except FileNotFoundError:
        return []


def kill_during(workdir: Path, stage_log: str, timeout: float = 600) -> Path:
    """Run the tiny workflow and SIGKILL Snakemake's whole process group (Snakemake and
    the job it runs) as soon as the job writing ``stage_log`` has started."""
    cmd = ["snakemake", "all", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
           "--configfile", str(REPO / "config" / "tiny.yaml")]
    with open(workdir / "killed-run.log", "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            logs = glob_while_writing(workdir / "results", stage_log)
            if logs and logs[0].stat().st_size > 0:  # the job's first log line: it runs
                break
            if proc.poll() is not None:
                pytest.fail(f"snakemake ended before {stage_log} appeared:\n"
                            + (workdir / "killed-run.log").read_text()[-3000:])
            if time.monotonic() > deadline:
                pytest.fail(f"no {stage_log} after {timeout} s")
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return logs[0]


def test_killed_stage_leaves_no_artifact_and_the_rerun_resumes(tiny_reference, tmp_path):
    stage_log = kill_during(tmp_path, "gcn.log")
    stage_dir = stage_log.parent
    # The job died with Snakemake: nothing is left running in this directory.
    time.sleep(0.5)
    survivors = [pid for pid in os.listdir("/proc") if pid.isdigit()
                 and str(tmp_path).encode() in _cmdline(pid)]
    assert not survivors, "a process of the killed run survived"

    # Nothing that passes for the killed stage's output, nor anything downstream of it.
    assert not (stage_dir / "gcn.pt").exists()
    assert not list((tmp_path / "results").rglob("embedding.zarr"))
    assert not (tmp_path / "results" / "summary.tsv").exists()
    before = artifacts(tmp_path)
    assert any(p.name == "filter.pt" for p in before) and any(p.name == "graph.h5" for p in before)

    # A run killed this way keeps Snakemake's lock: the next run refuses to start and says
    # how to remove it.  Unlocking is the user's first step.
    locked = snakemake(tmp_path, "all", check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    snakemake(tmp_path, "--unlock")

    # The rerun schedules the killed stage and what follows it.  Everything gcn_train
    # needs had finished; of the test split's stages, the scheduler may not have reached
    # some yet (those run once), and nothing that had finished runs again (checked below).
    planned = scheduled_rules(snakemake(tmp_path, "all", "-n").stdout)
    assert (planned["adanets_gcn_train"], planned["adanets_embed"], planned["adanets_link"]) \
        == (1, 1, 1)
    assert not {"adanets_koff", "adanets_filter_train"} & set(planned)
    assert all(planned.get(rule, 0) <= 1 for rule in ("ingest", "knn", "adanets_structure",
                                                       "adanets_filter_infer", "adanets_graph"))
    rerun = snakemake(tmp_path, "all")
    assert "adanets_gcn_train" in rerun.stdout + rerun.stderr

    after = artifacts(tmp_path)
    rebuilt = sorted(str(p) for p, stamp in before.items() if after.get(p) != stamp)
    assert not rebuilt, f"finished artifacts were written again: {rebuilt}"
    assert (stage_dir / "gcn.pt").exists()
    assert not list(tmp_path.rglob("*.partial")), "no temporary left behind"
    assert_same_results(tiny_reference, tmp_path)


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return b""


def test_the_poll_survives_a_folder_that_vanishes_while_it_scans(tmp_path, monkeypatch):
    """The race CI met: a temporary ``.partial`` folder listed, then renamed away before
    it was scanned; the poll answers nothing found instead of raising."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "gcn.log").write_text("x")
    real = os.scandir

    def vanishing(path="."):
        if str(path).endswith("b"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", vanishing)
    assert glob_while_writing(tmp_path, "gcn.log") == []
    monkeypatch.setattr(os, "scandir", real)
    assert glob_while_writing(tmp_path, "gcn.log") == [tmp_path / "a" / "gcn.log"]
