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


def test_a_smaller_validation_part_is_whole_held_out_identities_in_half_their_faces():
    holdout = {"fraction": 0.3, "seed": 0}
    _, held, _, _ = ingest.load_holdout(TINY, "val-a", holdout)
    _, rest, _, _ = ingest.load_holdout(TINY, "fit-a", holdout)
    smaller = [ingest.load_holdout(TINY, "val-b", {**holdout, "share": 0.5, "draw": d})[1]
               for d in (0, 1)]
    _, rest_again, _, _ = ingest.load_holdout(TINY, "fit-b", {**holdout, "share": 0.5,
                                                              "draw": 0})
    np.testing.assert_array_equal(rest, rest_again)  # the share moves only the validation part
    for part in smaller:
        assert 0 < part.size <= round(0.5 * held.size)
        assert set(part) <= set(held), "only held-out identities"
        for identity in set(part):  # whole identities: every face of each
            assert np.count_nonzero(part == identity) == np.count_nonzero(held == identity)
    assert set(smaller[0]) != set(smaller[1]), "each draw its own identities"


def test_a_score_is_read_at_the_size_of_the_part_to_cluster():
    # 0.90 on 1,000 held-out faces, 0.95 on 500: 0.05 lost per doubling of the part
    full, smaller = (1000, 0.90), (500, 0.95)
    assert auto.score_for_size(full, smaller, 1000, 1.0) == pytest.approx(0.90)
    assert auto.score_for_size(full, smaller, 2000, 1.0) == pytest.approx(0.85)
    assert auto.score_for_size(full, smaller, 8000, 1.0) == pytest.approx(0.85), "one doubling"
    assert auto.score_for_size(full, smaller, 8000, 2.0) == pytest.approx(0.80)
    assert auto.score_for_size(full, smaller, 707, 1.0) == pytest.approx(0.925, abs=1e-3)
    assert auto.score_for_size(full, smaller, 100, 1.0) == pytest.approx(0.95), "not below"
    assert auto.score_for_size(full, None, 4000, 1.0) == 0.90, "nothing smaller measured"
    assert auto.score_for_size((1000, 0.99), (500, 0.95), 2000, 1.0) == 1.0, "a score"
    assert auto.score_for_size(full, (1000, 0.5), 4000, 1.0) == 0.90, "not smaller"
    with pytest.raises(ValueError, match="n_faces"):
        auto.score_for_size(full, smaller, 0, 1.0)


def test_the_size_of_the_test_part_can_turn_the_choice():
    """A method that chains loses points as its part grows; a steady one does not.  On
    held-out parts of 500 faces the chaining one leads; read at a test part of 2,000 the
    steady one does."""
    def scores(n, f_p, f_b):
        return {"n_items": n, "pairwise_f": f_p, "bcubed_f": f_b}

    chaining = (scores(500, 0.95, 0.95), [scores(250, 0.99, 0.99), scores(250, 0.97, 0.97)])
    steady = (scores(500, 0.93, 0.93), [scores(250, 0.93, 0.93), scores(250, 0.93, 0.93)])
    for n_faces, winner in ((500, "chaining"), (2000, "steady")):
        per_fold = {name: [auto.fold_score(full, smaller, n_faces, 1.0, name)[1]]
                    for name, (full, smaller) in (("chaining", chaining), ("steady", steady))}
        name, scored, why = auto.choose(per_fold, 1, f", read at {n_faces} faces")
        assert name == winner, scored
        assert f"read at {n_faces} faces" in why
    assert auto.fold_score(*chaining, 2000, 1.0, "x") == pytest.approx((0.95, 0.92))


def test_the_draws_of_several_folds_differ():
    held = [set(ingest.load_holdout(TINY, "val-x", {"fraction": 0.3, "seed": s})[1])
            for s in (0, 1, 2)]
    assert held[0] != held[1] and held[1] != held[2]


@pytest.mark.slow
def test_auto_keeps_the_candidate_that_clearly_wins_over_two_folds(tmp_path):
    """k-means told to make 0.9 clusters per face leaves nearly every face alone: the
    thresholded kNN graph with τ auto beats it on every held-out draw.  It is listed second,
    so a first-on-a-tie choice would not pass.  Each score is read at the test part's size
    through two smaller parts per fold (``size_draws``)."""
    cfg = write_config(tmp_path / "auto.yaml", {
        "experiments": {"auto": {"method": "auto", "validation": {"folds": 2, "size_draws": 2},
                                 "candidates": [{"method": "kmeans", "cluster_ratio": 0.9},
                                                {"method": "knn_threshold",
                                                 "threshold": "auto"}]}},
        "run": {"experiments": ["auto", "knn-threshold-auto"]}})
    workdir = tmp_path / "run"
    snakemake(workdir, "all", configs=(cfg,))
    results = workdir / "results" / "tiny"
    assert len(list(results.glob("val-*"))) == 2 * 3, "per fold its part and two smaller ones"
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
    measured = attrs["validation_measured"]  # as scored, before reading at the test's size
    assert sorted(measured) == sorted(folds) and all(len(v) == 2 for v in measured.values())
    assert "read at" in attrs["notes"][0] and folds != measured
    (test_clusters,) = [p for p in (results / "test").rglob("clusters.h5")
                        if p.parent.name.startswith("knn_threshold-auto")]
    np.testing.assert_array_equal(io.read_array(chosen, "labels"),
                                  io.read_array(test_clusters, "labels"))


def test_the_python_model_chooses_on_held_out_draws_as_the_workflow_does(tmp_path):
    """``facecluster.model("auto")`` holds out the workflow's identities on each fold,
    keeps the candidate that clearly wins there (listed second), its scores read at the size
    of the faces it is fitted on, fits it on every face, and saves and loads with its
    choice."""
    import facecluster

    features, labels, _, _ = ingest.load_part(TINY, "train")
    test_features, _, _, _ = ingest.load_part(TINY, "test")
    candidates = [{"method": "kmeans", "cluster_ratio": 0.9},
                  {"method": "knn_threshold", "threshold": "auto"}]
    model = facecluster.model("auto", candidates=candidates,
                              validation={"folds": 2, "size_draws": 2}).fit(features, labels)
    assert model.choice_ == "knn_threshold", model.why_
    assert f"read at {labels.size} faces" in model.why_, "as many as it was fitted on"
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


def test_too_few_identities_left_to_fit_the_candidates_on_are_refused_by_name():
    """Two people: holding out 0.3 of them leaves one to fit the candidates on, which each
    candidate refused in its own words (a message about knn_threshold for a call to
    auto); auto says what it holds out and what to change."""
    import facecluster

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    x = np.eye(8)[labels] * 3 + 0.3 * rng.normal(size=(60, 8))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    model = facecluster.model("auto", candidates=[{"method": "knn_threshold",
                                                   "threshold": "auto"}])
    with pytest.raises(ValueError, match=r"auto holds out 0.3 of the 2 identities and fits "
                                         r"its candidates on the rest, 1: .*smaller "
                                         r"validation.fraction"):
        model.fit(x, labels)
