"""``method: auto``: its validation parts hold no identity it trains on, and it keeps the
candidate that clearly wins there, averaged over several draws of held-out identities."""

import csv

import numpy as np
import pytest

from facecluster.core import ingest, io
from facecluster.methods import auto

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


def test_the_python_model_chooses_on_held_out_draws_as_the_workflow_does(tmp_path):
    """``facecluster.model("auto")`` holds out the workflow's identities on each fold,
    keeps the candidate that clearly wins there (listed second), fits it on every face, and
    saves and loads with its choice."""
    import facecluster

    features, labels, _, _ = ingest.load_part(TINY, "train")
    test_features, _, _, _ = ingest.load_part(TINY, "test")
    candidates = [{"method": "kmeans", "cluster_ratio": 0.9},
                  {"method": "knn_threshold", "threshold": "auto"}]
    model = facecluster.model("auto", candidates=candidates,
                              validation={"folds": 2}).fit(features, labels)
    assert model.choice_ == "knn_threshold", model.why_
    folds = model.validation_folds_
    assert sorted(folds) == ["kmeans", "knn_threshold"] and all(len(v) == 2 for v in folds.values())
    assert min(folds["knn_threshold"]) > max(folds["kmeans"]) + 0.2, folds
    alone = facecluster.model("knn_threshold", threshold="auto").fit(features, labels)
    predicted = model.predict(test_features)
    np.testing.assert_array_equal(predicted, alone.predict(test_features))
    model.save(tmp_path / "auto-model")
    loaded = facecluster.load_model(tmp_path / "auto-model")
    assert loaded.choice_ == "knn_threshold" and loaded.validation_folds_ == folds
    np.testing.assert_array_equal(loaded.predict(test_features), predicted)


def test_choose_takes_the_best_mean_and_the_first_on_a_tie():
    # sums exact in binary: a and b tie exactly, and a is listed first
    name, scores, why = auto.choose({"c": [0.25, 0.25], "a": [0.25, 0.75], "b": [0.5, 0.5]}, 2)
    assert name == "a" and scores == {"c": 0.25, "a": 0.5, "b": 0.5}
    assert auto.choose({"b": [0.5, 0.5], "a": [0.25, 0.75]}, 2)[0] == "b"
    assert why.startswith("chose a:") and "3 draws" not in why and "2 draws" in why
    assert auto.choose({"x": [0.4], "y": [0.8]}, 1)[0] == "y"
    with pytest.raises(ValueError, match="no candidate"):
        auto.choose({}, 1)
