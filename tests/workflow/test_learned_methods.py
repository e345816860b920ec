"""The learned methods through the workflow on the tiny dataset: GCN-V/E, NDDe/TPDi and the
Face Transformer, their training shared where the plan says so, a model folder for each.

Apart from the unsupervised methods' module (test_methods.py) so that a parallel run of the
suite (``-n auto --dist loadfile``) can give the two long runs to two workers."""

import csv

import numpy as np
import pytest

from facecluster import load_model
from facecluster.core import io

from helpers import scheduled_rules, snakemake, write_config

pytestmark = pytest.mark.slow


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
    with open(workdir / "results" / "summary.tsv") as table:
        rows = {r["experiment"]: r for r in csv.DictReader(table, delimiter="\t")}
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
