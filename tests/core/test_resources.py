"""What jobs ask a cluster for: sizes from the data, GPU placement from `slurm:`, and the
rules and profiles that carry them."""

import json
import re
import subprocess

import numpy as np
import pytest
import yaml

from facecluster import registry
from facecluster.core import resources as res

from helpers import REPO

STRUCTURE = registry.get("adanets").stage("structure")
GCN_TRAIN = registry.get("adanets").stage("gcn_train")


def test_size_grows_with_the_features_and_the_attempt():
    small = res.job_size(STRUCTURE, 10.0)
    large = res.job_size(STRUCTURE, 1000.0)
    assert small["mem_mb"] < large["mem_mb"] and small["runtime"] < large["runtime"]
    assert res.job_size(STRUCTURE, 0.0) == {"mem_mb": 1000, "runtime": 10}
    retry = res.job_size(STRUCTURE, 10.0, attempt=2)
    assert retry == {"mem_mb": 2 * small["mem_mb"], "runtime": 2 * small["runtime"]}


def test_core_rules_name_core_stages():
    """The core stages the rule files size all exist."""
    stages = set()
    for path in (REPO / "rules").glob("*.smk"):
        stages |= set(re.findall(r'core_stage\("(\w+)"\)', path.read_text()))
    assert stages == set(res.CORE_STAGES)


def test_bad_size_requests_are_refused():
    with pytest.raises(ValueError, match="no resource sizes for core stage 'clustering'"):
        res.core_stage("clustering")
    with pytest.raises(ValueError, match="finite size"):
        res.job_size(res.core_stage("knn"), float("nan"))


def test_part_size_from_the_manifest_else_from_the_config(tmp_path):
    config = {"datasets": {
        "gen": {"generator": {"preset": "tiny", "dim": 64, "overrides": {"n_test": 2048}}},
        "mine": {"input": {"path": str(tmp_path / "faces.npy")}},
    }}
    # Before ingest: the generator's own sizes.
    assert res.part_features_mib(config, tmp_path, "gen", "train") == pytest.approx(
        1000 * 64 * 4 / 2**20)
    assert res.part_features_mib(config, tmp_path, "gen", "test") == pytest.approx(0.5)
    # A user's file: its size on disk.
    np.save(tmp_path / "faces.npy", np.zeros((1024, 256), dtype=np.float32))
    assert res.part_features_mib(config, tmp_path, "mine", "test") == pytest.approx(1.0, abs=1e-3)
    # After ingest: the manifest.
    part = tmp_path / "mine" / "test"
    part.mkdir(parents=True)
    (part / "manifest.json").write_text(json.dumps({"n": 4096, "dim": 128}))
    assert res.part_features_mib(config, tmp_path, "mine", "test") == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no dataset 'other'"):
        res.part_features_mib(config, tmp_path, "other", "test")


def test_gpu_stages_ask_for_a_gpu_unless_switched_off():
    slurm = res.slurm_settings({"slurm": {"gpu_partition": "gpu", "gpu_constraint": "a100",
                                          "cpu_partition": "batch"}})
    assert res.placement(GCN_TRAIN, slurm) == {
        "gres": "gpu:1", "slurm_partition": "gpu", "constraint": "a100"}
    assert res.placement(STRUCTURE, slurm) == {"slurm_partition": "batch"}
    cpu_only = res.slurm_settings({"slurm": {**slurm, "gpu": False}})
    for stage in (GCN_TRAIN, res.core_stage("knn")):
        assert res.placement(stage, cpu_only) == {"slurm_partition": "batch"}
    # Nothing set: the cluster's defaults, and a GPU for the GPU stages.
    assert res.placement(res.core_stage("knn"), res.slurm_settings({})) == {"gres": "gpu:1"}
    assert res.placement(res.core_stage("ingest"), res.slurm_settings({})) == {}


def test_unknown_slurm_keys_are_refused():
    with pytest.raises(ValueError, match="slurm: unknown key.*gpus"):
        res.slurm_settings({"slurm": {"gpus": 2}})


def test_profiles():
    """The slurm profile is found from the repository root; the local one stays free of
    executor settings (it is also read under --profile slurm and would override them)."""
    slurm = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text())
    assert slurm["executor"] == "slurm" and slurm["slurm-status-command"] == "squeue"
    assert (REPO / "slurm").resolve() == (REPO / "profiles" / "slurm").resolve()
    local = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert not {"executor", "jobs", "default-resources", "max-threads"} & set(local)


def dry_run_resources(tmp_path, slurm: dict | None = None, check: bool = True):
    """rule -> the resources line of its first job in a dry run of the tiny workflow."""
    cmd = ["snakemake", "all", "-n", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
           "--cores", "2", "--configfile", str(REPO / "config" / "tiny.yaml")]
    if slurm is not None:
        (tmp_path / "slurm.yaml").write_text(yaml.safe_dump({"slurm": slurm}))
        cmd.append(str(tmp_path / "slurm.yaml"))
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if not check:
        return proc
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {}
    for block in proc.stdout.split("\nrule ")[1:]:
        name = block.split(":", 1)[0]
        line = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        out.setdefault(name, dict(kv.split("=", 1) for kv in line.group(1).split(", ")))
    return out


@pytest.mark.slow
def test_rules_carry_the_placement(tmp_path):
    jobs = dry_run_resources(tmp_path, {"gpu_partition": "gpu", "cpu_partition": "cpu"})
    for rule in ("knn", "adanets_filter_train", "adanets_filter_infer", "adanets_gcn_train",
                 "adanets_embed"):
        assert jobs[rule]["gres"] == "gpu:1" and jobs[rule]["slurm_partition"] == "gpu", rule
    for rule in ("ingest", "adanets_structure", "adanets_koff", "adanets_graph", "adanets_link",
                 "knn_threshold_cluster", "metrics", "summary"):
        assert "gres" not in jobs[rule] and jobs[rule]["slurm_partition"] == "cpu", rule
    assert int(jobs["adanets_gcn_train"]["mem_mb"]) >= 2000 and int(jobs["knn"]["runtime"]) >= 10
    cpu_only = dry_run_resources(tmp_path, {"gpu": False})
    assert not any("gres" in r or "slurm_partition" in r for r in cpu_only.values())


@pytest.mark.slow
def test_bad_slurm_settings_are_refused_before_work(tmp_path):
    proc = dry_run_resources(tmp_path, {"gpu_gres": "two gpus"}, check=False)
    message = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "slurm.gpu_gres: 'two gpus' does not match" in message
    proc = dry_run_resources(tmp_path, {"partition": "gpu"}, check=False)
    assert proc.returncode != 0 and "slurm: 'partition' is not a setting here (the settings: " \
        in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()
