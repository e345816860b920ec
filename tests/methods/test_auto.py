"""``method: auto``: its validation parts hold no identity it trains on, and it keeps the
candidate that clearly wins there, averaged over several draws of held-out identities."""

import csv

import numpy as np
import pytest

from facecluster.core import ingest, io

from helpers import snakemake, write_config

TINY = {"generator": {"preset": "tiny", "seed": 0, "dim": 64}}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_validation_part_holds_no_identity_of_the_part_it_is_trained_on(seed):
    holdout = {"fraction": 0.3, "seed": seed}
    _, train, _, _ = ingest.load_part(TINY, "train")
    _, held, _, val_manifest = ingest.load_holdout(TINY, f"val-{seed}", holdout)
    _, rest, _, fit_manifest = ingest.load_holdout(TINY, f"fit-{seed}", holdout)
    assert not set(held) & set(rest), "no identity on both sides"
    assert held.size + rest.size == train.size, "together they are the train part"
    assert sorted(np.concatenate([held, rest])) == sorted(train)
    assert np.unique(held).size == round(0.3 * np.unique(train).size)
    _, test, _, _ = ingest.load_part(TINY, "test")
    assert not set(held) & set(test), "the validation part is made of training identities"
    assert (val_manifest["holdout"]["part"], fit_manifest["holdout"]["part"]) == ("val", "fit")


def test_the_draws_of_several_folds_differ():
    held = [set(ingest.load_holdout(TINY, "val-x", {"fraction": 0.3, "seed": s})[1])
            for s in (0, 1, 2)]
    assert held[0] != held[1] and held[1] != held[2]


@pytest.mark.slow
def test_auto_keeps_the_candidate_that_clearly_wins_over_two_folds(tmp_path):
    """k-means told to make 0.9 clusters per face leaves nearly every face alone: the
    thresholded kNN graph with τ auto beats it on every held-out draw.  It is listed second,
    so a first-on-a-tie choice would not pass."""
    cfg = write_config(tmp_path / "auto.yaml", {
        "experiments": {"auto": {"method": "auto", "validation": {"folds": 2},
                                 "candidates": [{"method": "kmeans", "cluster_ratio": 0.9},
                                                {"method": "knn_threshold",
                                                 "threshold": "auto"}]}},
        "run": {"experiments": ["auto", "knn-threshold-auto"]}})
    workdir = tmp_path / "run"
    snakemake(workdir, "all", configs=(cfg,))
    results = workdir / "results" / "tiny"
    assert len(list(results.glob("val-*"))) == 2, "two validation parts, one per fold"
    summary = (workdir / "results" / "summary.tsv").read_text().splitlines()
    rows = {r["experiment"]: r for r in csv.DictReader(summary, delimiter="\t")}
    assert "choice=auto(knn_threshold)" in rows["auto"]["params"]
    assert rows["auto"]["F_B"] == rows["knn-threshold-auto"]["F_B"]
    (chosen,) = [p for p in results.rglob("clusters.h5") if p.parent.name.startswith("auto")]
    attrs = io.read_attrs(chosen)
    folds = attrs["validation_folds"]
    assert sorted(folds) == ["kmeans", "knn_threshold"] and all(len(v) == 2 for v in folds.values())
    assert min(folds["knn_threshold"]) > max(folds["kmeans"]) + 0.2, folds
    assert attrs["validation_scores"]["knn_threshold"] == pytest.approx(
        np.mean(folds["knn_threshold"]))
    (test_clusters,) = [p for p in (results / "test").rglob("clusters.h5")
                        if p.parent.name.startswith("knn_threshold-auto")]
    np.testing.assert_array_equal(io.read_array(chosen, "labels"),
                                  io.read_array(test_clusters, "labels"))
