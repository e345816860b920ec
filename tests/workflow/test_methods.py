"""Every unsupervised method through the workflow on the tiny dataset, on one kNN graph."""

import csv

import numpy as np
import pytest

from facecluster import cli, load_model
from facecluster.core import io

from helpers import REPO, scheduled_rules, snakemake, write_config

pytestmark = pytest.mark.slow

UNSUPERVISED = REPO / "config" / "unsupervised.yaml"


def test_every_method_runs_and_the_knn_search_runs_once_per_part(tmp_path):
    workdir = tmp_path / "run"
    planned = scheduled_rules(snakemake(workdir, "all", "-n", configs=(UNSUPERVISED,)).stdout)
    assert planned["knn"] == 2, "one kNN graph per part, whatever the number of methods"
    methods = ["hdbscan", "dbscan", "infomap", "leiden", "chinese_whispers", "kmeans", "hac",
               "fc_es"]
    assert all(planned[f"{m}_cluster"] == 2 and planned[f"{m}_calibrate"] == 1 for m in methods)
    snakemake(workdir, "all", configs=(UNSUPERVISED,))
    rows = {r["experiment"]: r for r in csv.DictReader(
        open(workdir / "results" / "summary.tsv"), delimiter="\t")}
    for name in ("hdbscan", "dbscan", "infomap", "leiden", "chinese-whispers", "kmeans", "hac",
                 "fc-es"):
        assert 0 < float(rows[name]["F_B"]) <= 100, name
        assert "auto(" in rows[f"{name}-auto"]["params"], name
    summary = (workdir / "results" / "summary.md").read_text()
    assert "Hard clusters" in summary and "sz-1" in summary and "sp-5" in summary
    metrics = io.read_json(next((workdir / "results").rglob("infomap-0.58-*/metrics.json")))
    assert [b["bin"] for b in metrics["hard_clusters"]["size"]] == [f"sz-{i}" for i in range(1, 6)]


def test_a_refined_experiment_gets_its_own_knn_graph_and_its_model_refines_new_faces(tmp_path):
    """Refined features get their own kNN graph and a verification ROC, shared by the
    experiments that refine alike.  The exported model of a refined experiment, given the
    test part's unrefined faces on the command line, reproduces the workflow's clusters: it
    refines them over their own kNN graph as the ``refine`` stage did (it warned and
    skipped that before, and clustered unrefined faces with a τ chosen on refined ones)."""
    cfg = write_config(tmp_path / "gfa.yaml", {
        "experiments": {"gfa": {"method": "knn_threshold", "refine": {"method": "gfa"}},
                        "gfa-density": {"method": "gcn_ve", "confidence": "density",
                                        "passes": 1, "refine": {"method": "gfa"}}},
        "run": {"experiments": ["gfa", "gfa-density", "knn-threshold"]}})
    proc = snakemake(tmp_path / "run", "all", "bundles", configs=(cfg,))
    jobs = scheduled_rules(proc.stdout + proc.stderr)
    assert jobs["refine"] == 2 and jobs["knn"] == 4, "each part's kNN, then its refined one's"
    results = tmp_path / "run" / "results" / "tiny"
    (verification,) = (results / "test").rglob("verification.json")
    points = io.read_json(verification)
    assert {p["far"] for p in points["before"]["points"]} >= {1e-4, 1e-3}
    rows = list(csv.DictReader(open(tmp_path / "run" / "results" / "summary.tsv"), delimiter="\t"))
    assert "refine=gfa" in next(r for r in rows if r["experiment"] == "gfa")["params"]

    bundle = results / "bundles" / "gfa-density" / "model"
    assert io.read_json(bundle / "model.json")["input_normalise"]["refine"] == {
        "method": "gfa", "k": 15, "threshold": 0.65, "gamma": 0.5, "iterations": 2}
    (clusters,) = (p for p in (results / "test").rglob("clusters.h5")
                   if "/refine-gfa-" in str(p) and "/deduce-" in str(p))
    expected = io.read_array(clusters, "labels")
    faces = io.read_array(results / "test" / "features.zarr", "features")
    np.save(tmp_path / "faces.npy", faces)
    out = tmp_path / "clusters.tsv"
    assert cli.main(["cluster", "--features", str(tmp_path / "faces.npy"), "--model",
                     str(bundle), "--out", str(out)]) == 0
    np.testing.assert_array_equal(np.loadtxt(out, skiprows=1, dtype=np.int64)[:, 1], expected)
    model = load_model(bundle)
    np.testing.assert_array_equal(model.predict(model.prepare(faces)), expected)
    # the refinement matters here: the unrefined faces cluster otherwise
    assert not np.array_equal(model.predict(faces), expected)


def test_the_command_line_clusters_unlabeled_faces_with_any_method(tmp_path, clustered, capsys):
    x, _ = clustered
    np.save(tmp_path / "faces.npy", x)
    for method in ("infomap", "hdbscan", "fc_es"):
        out = tmp_path / f"{method}.tsv"
        assert cli.main(["cluster", "--features", str(tmp_path / "faces.npy"), "--method", method,
                         "--param", 'knn={"k": 20}', "--out", str(out)]) == 0
        table = out.read_text().splitlines()
        assert table[0] == "index\tcluster" and len(table) == len(x) + 1
    assert cli.main(["cluster", "--features", str(tmp_path / "faces.npy"), "--method", "infomap",
                     "--param", "threshold=auto", "--out", str(tmp_path / "x.tsv")]) == 2, \
        "auto needs labels: refused"
    # a method that learns is refused before the features are read (this file is absent),
    # and told to take a trained model folder
    capsys.readouterr()
    assert cli.main(["cluster", "--features", str(tmp_path / "absent.npy"), "--method",
                     "adanets", "--out", str(tmp_path / "y.tsv")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "learns from labeled faces: give --model FOLDER" in errors[0]
    assert not (tmp_path / "y.tsv").exists()
