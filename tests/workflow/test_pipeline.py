"""The workflow end to end on the tiny dataset, through the real snakemake command."""

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import REPO, scheduled_rules, snakemake, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_run(tiny_reference, tmp_path_factory):
    """A copy of the reference tiny run (these tests add to it) and what the run printed."""
    workdir = tmp_path_factory.mktemp("tiny") / "run"
    shutil.copytree(tiny_reference, workdir, symlinks=True)
    return workdir, (workdir / "snakemake-all.stdout").read_text()


def test_all_builds_summary_and_prints_it(tiny_run):
    workdir, printed = tiny_run
    results = workdir / "results"
    rows = list(csv.DictReader(open(results / "summary.tsv"), delimiter="\t"))
    assert sorted((r["dataset"], r["experiment"]) for r in rows) == [
        ("tiny", "adanets"), ("tiny", "knn-threshold"), ("tiny", "knn-threshold-auto")]
    for row in rows:
        f_p, f_b = float(row["F_P"]), float(row["F_B"])
        assert 0 < f_p <= 100 and 0 < f_b <= 100
    adanets = next(r for r in rows if r["experiment"] == "adanets")
    assert float(adanets["SNR"]) > 0 and 0 < float(adanets["Q_after"]) <= 1
    assert "| tiny | knn-threshold |" in printed, "the summary table is printed at the end"
    # The calibrated τ and the validated θ are shown as chosen.
    by_name = {r["experiment"]: r for r in rows}
    assert re.search(r"threshold=auto\(0\.\d\d\)", by_name["knn-threshold-auto"]["params"])
    assert re.search(r"theta=auto\(0\.\d\d\)", by_name["adanets"]["params"])


def test_every_rule_logs_and_benchmarks(tiny_run):
    workdir, _ = tiny_run
    results = workdir / "results"
    for stage in ("ingest", "knn", "clusters", "metrics", "structure", "koff", "filter", "k_hat",
                  "graph", "gcn", "embedding"):
        logs = list(results.rglob(f"{stage}.log"))
        benches = list(results.rglob(f"{stage}.benchmark.tsv"))
        assert logs and benches, stage
        header = benches[0].read_text().splitlines()[0].split("\t")
        assert "s" in header and "max_rss" in header
    assert "done in" in next(results.rglob("knn.log")).read_text()


def test_artifacts_are_consistent(tiny_run):
    workdir, _ = tiny_run
    from facecluster.core import io

    results = workdir / "results" / "tiny" / "test"
    manifest = json.loads((results / "manifest.json").read_text())
    knn_file = next(results.rglob("knn.h5"))
    graph = io.read_arrays(knn_file)
    assert graph["ids"].shape == (manifest["n"], 30)
    table = next(results.rglob("clusters.tsv")).read_text().splitlines()
    assert table[0] == "index\tcluster" and len(table) == manifest["n"] + 1
    metrics = json.loads(next(results.rglob("metrics.json")).read_text())
    assert metrics["n_items"] == manifest["n"]
    assert not list(workdir.rglob("*.partial")), "no temporary left behind"


def test_changing_threshold_reschedules_only_baseline_and_metrics(tiny_run, tmp_path):
    workdir, _ = tiny_run
    override = write_config(tmp_path / "thr.yaml", {
        "experiments": {"knn-threshold": {"method": "knn_threshold", "threshold": 0.45}}})
    proc = snakemake(workdir, "all", "-n", configs=(override,))
    assert scheduled_rules(proc.stdout) == {"knn_threshold_cluster": 1, "metrics": 1, "summary": 1,
                                            "all": 1}


def dry_run_changing_adanets(workdir: Path, tmp_path: Path, **change) -> dict[str, int]:
    """The jobs `all` would run after changing some keys of the tiny Ada-NETS experiment."""
    tiny = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
    adanets = {**tiny["experiments"]["adanets"], **change}
    override = write_config(tmp_path / "change.yaml", {"experiments": {"adanets": adanets}})
    return scheduled_rules(snakemake(workdir, "all", "-n", configs=(override,)).stdout)


# What a new β reruns: k_off and everything the filter feeds, on both parts.
BETA_BRANCH = {"adanets_koff": 1, "adanets_filter_train": 1, "adanets_filter_infer": 2,
               "adanets_graph": 2, "adanets_gcn_train": 1, "adanets_theta": 1, "adanets_embed": 1,
               "adanets_link": 1,
               "metrics": 1, "summary": 1, "all": 1}


def test_changing_beta_reruns_only_what_depends_on_it(tiny_run, tmp_path):
    workdir, _ = tiny_run
    assert dry_run_changing_adanets(workdir, tmp_path, beta=1.0) == BETA_BRANCH


def test_changing_theta_reruns_only_linkage_and_metrics(tiny_run, tmp_path):
    workdir, _ = tiny_run
    assert dry_run_changing_adanets(workdir, tmp_path, theta=0.5) == {
        "adanets_link": 1, "metrics": 1, "summary": 1, "all": 1}


def test_theta_seeds_trains_only_the_other_models_and_pools_their_curves(tiny_run, tmp_path):
    """θ on two models' curves: seed 0's model and curves are the run's; only seed 1's
    filter, train graph, GCN and curves are new, then the pool and the linkage."""
    from facecluster.core import io

    workdir, _ = tiny_run
    tiny = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
    override = write_config(tmp_path / "seeds.yaml", {"experiments": {
        "adanets": {**tiny["experiments"]["adanets"], "theta_seeds": 2}}})
    plan = snakemake(workdir, "all", "-n", configs=(override,)).stdout
    assert scheduled_rules(plan) == {
        "adanets_filter_train": 1, "adanets_filter_infer": 1, "adanets_graph": 1,
        "adanets_gcn_train": 1, "adanets_theta": 1, "adanets_theta_pool": 1,
        "adanets_link": 1, "metrics": 1, "summary": 1, "all": 1}
    (link,) = set(re.findall(r"results/tiny/test/\S+/link-[^/\s]+/clusters\.h5", plan))
    snakemake(workdir, link, configs=(override,))
    (pool,) = (workdir / "results").rglob("pool-2-*/theta.json")
    assert io.read_json(pool)["models"] == 2
    log = (workdir / link).with_name("clusters.log").read_text()
    assert "the mean of 2 models' curves (theta_seeds)" in log


def test_a_training_subsample_reruns_the_training_side_only(tiny_run, tmp_path):
    """`train_subsample` changes the train part and everything trained on it; the test
    part's ingest, kNN graph, structure space and the τ-0.6 baseline are kept."""
    workdir, _ = tiny_run
    tiny = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
    dataset = {**tiny["datasets"]["tiny"], "train_subsample": {"max_items": 600}}
    override = write_config(tmp_path / "sub.yaml", {"datasets": {"tiny": dataset}})
    jobs = scheduled_rules(snakemake(workdir, "all", "-n", configs=(override,)).stdout)
    assert jobs == {**BETA_BRANCH, "ingest": 1, "knn": 1, "adanets_structure": 1,
                    "knn_threshold_calibrate": 1, "knn_threshold_cluster": 1, "metrics": 2}


def test_adding_a_beta_to_a_sweep_builds_only_the_new_branch(tiny_run, tmp_path):
    """The tiny run's Ada-NETS (β 0.5) as a sweep over β {0.5, 1}: only β 1 is new."""
    workdir, _ = tiny_run
    tiny = yaml.safe_load((REPO / "config" / "tiny.yaml").read_text())
    sweep = {**tiny["experiments"]["adanets"], "sweep": {"beta": [0.5, 1.0]}}
    override = write_config(tmp_path / "sweep.yaml", {"experiments": {"adanets": sweep}})
    proc = snakemake(workdir, "all", "-n", configs=(override,))
    assert scheduled_rules(proc.stdout) == BETA_BRANCH


def test_sharded_knn_jobs_write_the_same_artifact(tiny_run, tmp_path):
    """knn.shards = 3: an index job, three search jobs and a gather, same knn.h5 as one job."""
    from facecluster.core import io

    workdir, _ = tiny_run
    unsharded = next((workdir / "results" / "tiny" / "test").glob("knn-*/knn.h5"))
    target = unsharded.relative_to(workdir)
    override = write_config(tmp_path / "shards.yaml", {"knn": {"shards": 3}})
    fresh = tmp_path / "run"
    proc = snakemake(fresh, str(target), configs=(override,))
    assert scheduled_rules(proc.stdout + proc.stderr) == {
        "ingest": 1, "knn_index": 1, "knn_shard": 3, "knn": 1}
    one, gathered = io.read_arrays(unsharded), io.read_arrays(fresh / target)
    assert (one["ids"] == gathered["ids"]).all() and (one["sims"] == gathered["sims"]).all()
    assert io.read_attrs(fresh / target)["shards"] == 3


def test_between_workflow_cache_shares_knn_graphs_across_directories(tmp_path, monkeypatch):
    """Two workflow directories, one cache: the second takes both parts' kNN graphs from
    it, each part its own (the train part's graph is not the test part's)."""
    from facecluster.core import io

    monkeypatch.setenv("SNAKEMAKE_OUTPUT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    targets = {}
    for run in ("first", "second"):
        workdir = tmp_path / run
        plan = snakemake(workdir, "all", "-n").stdout
        targets = sorted(set(re.findall(r"results/tiny/(?:train|test)/knn-[^/\s]+/knn\.h5", plan)))
        proc = snakemake(workdir, *targets, "--cache", "knn")
        log = proc.stdout + proc.stderr
        verb = "Moving" if run == "first" else "Symlinking"
        assert log.count(f"{verb} output file") == 2, log[-2000:]
    assert len(targets) == 2 and len(list((tmp_path / "cache").iterdir())) == 2
    first, second = (tmp_path / "first"), (tmp_path / "second")
    for target in targets:
        a, b = io.read_arrays(first / target), io.read_arrays(second / target)
        assert (a["ids"] == b["ids"]).all()
    test_sims, train_sims = (io.read_arrays(second / t)["sims"] for t in targets)  # sorted paths
    assert not (train_sims == test_sims).all()


def test_a_second_round_builds_on_the_first_rounds_artifacts(tiny_run, tmp_path):
    """Table 10: adding a second round reuses round one and schedules round two's stages."""
    workdir, _ = tiny_run
    # Round two's stages are the β branch's, less the theta stage: its θ is fixed (0.9).
    round_two = {k: v for k, v in BETA_BRANCH.items() if k != "adanets_theta"}
    assert dry_run_changing_adanets(workdir, tmp_path, second_round={"theta": 0.9}) == {
        **round_two, "adanets_embed": 2, "adanets_knn_embedding": 2, "adanets_structure": 2}


def test_nothing_to_do_after_a_run(tiny_run):
    workdir, _ = tiny_run
    proc = snakemake(workdir, "all", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_bad_config_is_refused_before_work(tmp_path):
    bad = write_config(tmp_path / "bad.yaml", {
        "experiments": {"knn-threshold": {"method": "knn_threshold", "threshold": "high"}}})
    proc = snakemake(tmp_path, "all", configs=(bad,), check=False)
    assert proc.returncode != 0
    assert "experiments.knn-threshold.threshold: 'high' is not valid" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_bad_sweep_value_is_refused_before_work(tmp_path):
    """A sweep's variants are validated too: β must be positive."""
    bad = write_config(tmp_path / "bad.yaml", {
        "experiments": {"s": {"method": "adanets", "sweep": {"beta": [0.5, -1]}}}})
    proc = snakemake(tmp_path, "all", configs=(bad,), check=False)
    assert proc.returncode != 0
    assert "experiments.s.beta--1.beta: -1 is less than or equal" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_missing_input_file_is_named(tmp_path):
    cfg = write_config(tmp_path / "missing.yaml", {
        "datasets": {"mine": {"input": {"path": str(tmp_path / "nope.npy")}}},
        "run": {"datasets": ["mine"]}})
    proc = snakemake(tmp_path, "all", configs=(cfg,), check=False)
    assert proc.returncode != 0
    assert "nope.npy does not exist" in proc.stderr
    assert not (tmp_path / "results").exists()


def test_lfw_runs_by_config_alone(shared_data, tmp_path):
    cfg = write_config(tmp_path / "lfw.yaml", {
        "datasets": {"lfw-dlib": {
            "input": {"path": str(shared_data / "lfw_dlib128_dev.npz"), "features_key": "X",
                      "labels_key": "y", "ids_key": "fname"},
            "normalise": "center_l2"}},
        "run": {"datasets": ["lfw-dlib"], "experiments": ["knn-threshold"]}})
    snakemake(tmp_path, "all", configs=(cfg,))
    rows = list(csv.DictReader(open(tmp_path / "results" / "summary.tsv"), delimiter="\t"))
    assert rows[0]["dataset"] == "lfw-dlib" and int(rows[0]["N"]) == 7171
    assert float(rows[0]["F_B"]) > 50
    table = next((tmp_path / "results").rglob("clusters.tsv")).read_text().splitlines()
    assert table[0] == "index\tid\tcluster" and ".jpg" in table[1]


def test_unlabeled_user_embeddings_get_cluster_labels(tmp_path):
    """A user's own .npy features, no labels anywhere: clusters out, counts as metrics."""
    import numpy as np

    from facecluster.core import synthetic

    x, _ = synthetic.generate(synthetic.generator_params("tiny", dim=32), seed=3)["test"]
    np.save(tmp_path / "faces.npy", x * 7.0)  # not unit length: ingest normalises
    cfg = write_config(tmp_path / "mine.yaml", {
        "datasets": {"mine": {"input": {"path": str(tmp_path / "faces.npy")}}},
        "run": {"datasets": ["mine"], "experiments": ["knn-threshold"]}})
    snakemake(tmp_path, "all", configs=(cfg,))
    results = tmp_path / "results"
    table = next(results.rglob("clusters.tsv")).read_text().splitlines()
    assert table[0] == "index\tcluster" and len(table) == x.shape[0] + 1
    metrics = json.loads(next(results.rglob("metrics.json")).read_text())
    assert metrics["n_items"] == x.shape[0] and "pairwise_f" not in metrics
    row = next(csv.DictReader(open(results / "summary.tsv"), delimiter="\t"))
    assert row["dataset"] == "mine" and row["F_P"] == "-" and int(row["clusters"]) >= 1


def test_model_clusters_unlabeled_faces_like_the_pipeline(tiny_run, tmp_path):
    """The exported model, applied from the command line to the test faces without their
    labels, reproduces the workflow's Ada-NETS clusters."""
    import numpy as np

    from facecluster.core import io
    from facecluster.cli import main

    workdir, _ = tiny_run
    proc = snakemake(workdir, "bundles")
    assert scheduled_rules(proc.stdout + proc.stderr) == {"adanets_bundle": 1, "bundles": 1}, \
        "the trained models are reused"
    results = workdir / "results" / "tiny"
    bundle = results / "bundles" / "adanets" / "model"
    assert {p.name for p in bundle.iterdir() if not p.name.startswith(".")} == {
        "model.json", "filter.pt", "gcn.pt"}
    features = io.read_array(results / "test" / "features.zarr", "features")
    saved = io.read_json(bundle / "model.json")
    assert saved["input_normalise"] == {"normalise": "l2", "centre": None, "refine": None}
    assert saved["dim"] == features.shape[1]
    np.save(tmp_path / "faces.npy", features)  # features only: no labels anywhere
    out = tmp_path / "clusters.tsv"
    assert main(["cluster", "--features", str(tmp_path / "faces.npy"), "--model", str(bundle),
                 "--out", str(out)]) == 0
    got = np.loadtxt(out, skiprows=1, dtype=np.int64)[:, 1]
    link = next(p for p in results.rglob("clusters.h5") if "/link-" in str(p))
    expected = io.read_array(link, "labels")
    # Same partition (cluster ids are numbered the same way, by first member).
    np.testing.assert_array_equal(got, expected)
