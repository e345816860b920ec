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


def test_a_refined_experiment_gets_its_own_knn_graph_and_verification(tmp_path):
    cfg = write_config(tmp_path / "gfa.yaml", {
        "experiments": {"gfa": {"method": "knn_threshold", "refine": {"method": "gfa"}}},
        "run": {"experiments": ["gfa", "knn-threshold"]}})
    proc = snakemake(tmp_path / "run", "all", configs=(cfg,))
    jobs = scheduled_rules(proc.stdout + proc.stderr)
    assert jobs["refine"] == 1 and jobs["knn"] == 2, "the test part's kNN, then the refined one's"
    (verification,) = (tmp_path / "run" / "results").rglob("verification.json")
    points = io.read_json(verification)
    assert {p["far"] for p in points["before"]["points"]} >= {1e-4, 1e-3}
    rows = list(csv.DictReader(open(tmp_path / "run" / "results" / "summary.tsv"), delimiter="\t"))
    assert "refine=gfa" in next(r for r in rows if r["experiment"] == "gfa")["params"]


def test_the_command_line_clusters_unlabeled_faces_with_any_method(tmp_path, clustered):
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


def test_the_learned_methods_run_through_the_workflow_and_share_their_training(tmp_path):
    """GCN-V/E (config/gcn_ve.yaml), NDDe/TPDi (config/hard_clusters.yaml) and the Face
    Transformer (config/face_transformer.yaml) on tiny: V and V+E share one GCN-V and its τ
    curves; the density confidence trains nothing and calibrates τ; each
    trained experiment gets a model folder for new faces."""
    few = write_config(tmp_path / "few.yaml", {
        "experiments": {
            "gcn-v": {"method": "gcn_ve", "gcn_v": {"steps": 100}},
            "gcn-ve": {"method": "gcn_ve", "edge": True, "gcn_v": {"steps": 100},
                       "gcn_e": {"epochs": 1, "layers": [64, 32]}},
            "gcn-v-density": {"method": "gcn_ve", "confidence": "density", "passes": 1},
            "ndde-tpdi-auto": {"method": "ndde_tpdi", "cut": "auto", "model": {"epochs": 2}},
            "facet": {"method": "face_transformer",
                      "model": {"hop1": 10, "steps": 60, "val_every": 30, "head_dim": 16}},
            "facet-re-only": {"method": "face_transformer",
                              "model": {"mode": "re_only", "hop1": 10, "steps": 60,
                                        "val_every": 30, "head_dim": 16}}},
        "run": {"experiments": ["gcn-v", "gcn-ve", "gcn-v-density", "ndde-tpdi-auto", "facet",
                                "facet-re-only"]}})
    workdir = tmp_path / "run"
    planned = scheduled_rules(snakemake(workdir, "all", "-n", configs=(few,)).stdout)
    assert planned["gcn_ve_train_v"] == 1 and planned["gcn_ve_train_e"] == 1
    assert planned["gcn_ve_calibrate"] == 1
    # NDDe/TPDi: one similarity without the held-out identities (the cut's), one refit
    assert planned["ndde_tpdi_train"] == 2
    assert planned["face_transformer_train"] == 2 and planned["face_transformer_relations"] == 2
    # τ auto on the held-out identities clustered alone: one ladder per trained model
    assert planned["gcn_ve_tau"] == 1 and planned["face_transformer_tau"] == 2
    assert planned["ndde_tpdi_cut"] == 1 and "ndde_tpdi_calibrate" not in planned
    snakemake(workdir, "all", configs=(few,))
    rows = {r["experiment"]: r for r in csv.DictReader(
        open(workdir / "results" / "summary.tsv"), delimiter="\t")}
    for name in ("gcn-v", "gcn-ve", "gcn-v-density", "ndde-tpdi-auto"):
        assert float(rows[name]["F_B"]) > 40, (name, rows[name]["F_B"])
    # The Face Transformer learns little from 800 faces in 60 steps (F_B 33 and 14 here):
    # the plumbing is what this checks; one cluster or all singletons score F_B 10 and 8.
    for name in ("facet", "facet-re-only"):
        assert float(rows[name]["F_B"]) > 12 and "tau=auto(" in rows[name]["params"], name
    assert "tau=auto(" in rows["gcn-v-density"]["params"]
    assert "cut=auto(" in rows["ndde-tpdi-auto"]["params"]
    snakemake(workdir, "bundles", configs=(few,))
    folder = workdir / "results" / "tiny" / "bundles"
    assert sorted(p.name for p in folder.iterdir()) == sorted(rows)
    x = io.read_array(workdir / "results" / "tiny" / "test" / "features.zarr", "features")
    labels = load_model(folder / "gcn-ve" / "model").predict(x[:200])
    assert labels.shape == (200,) and 1 < np.unique(labels).size < 200
