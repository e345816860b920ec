"""θ auto on the held-out identities clustered as a part of their own (theta.py), and
where a fitted model keeps its checkpoints."""

import gc
from pathlib import Path

import numpy as np
import pytest

import facecluster
from facecluster.core import synthetic
from facecluster.methods.adanets import gcn
from facecluster.methods.adanets.model import Model
from facecluster.methods.adanets.theta import choose_theta


@pytest.fixture(scope="module")
def fitted():
    """Ada-NETS trained on the tiny generator's train part (1,000 faces, 40 people), every
    face the held-out calibration embedded recorded by its row; θ on this model's curves
    alone (``theta_seeds`` 1)."""
    x, y = synthetic.generate(synthetic.generator_params("tiny", dim=64), seed=0,
                              splits=("train",))["train"]
    row_of = {row.tobytes(): i for i, row in enumerate(x)}
    embedded = []
    original = Model.embedding

    def recording(self, features, threads=1):
        embedded.append(np.array([row_of[r.tobytes()] for r in features]))
        return original(self, features, threads)

    Model.embedding = recording
    try:
        model = facecluster.model("adanets", theta_seeds=1, filter={"steps": 40},
                                  gcn={"steps": 60, "val_every": 30}).fit(x, y)
    finally:
        Model.embedding = original
    return model, x, y, embedded


def test_the_held_out_part_holds_no_identity_the_gcn_trained_on(fitted):
    model, x, y, embedded = fitted
    held = gcn.held_out_identities(y, model.params["gcn"]["val_fraction"], model.params["seed"])
    assert held is not None and 0 < held.sum() < y.size
    assert embedded, "the calibration embedded the held-out part"
    for rows in embedded:
        assert held[rows].all(), "a face of a training identity was in the validation part"
    # The whole held-out part, embedded from its own faces only (no training face beside it).
    np.testing.assert_array_equal(np.sort(embedded[0]), np.flatnonzero(held))


def test_the_curves_are_the_linkage_on_the_held_out_part_alone(fitted):
    model, x, y, _ = fitted
    rows = np.flatnonzero(gcn.held_out_identities(y, model.params["gcn"]["val_fraction"],
                                                  model.params["seed"]))
    assert [r["n_faces"] for r in model.theta_ladder] == [rows.size]  # < 1,000: one size
    emb, ids, _ = model.embedding(x[rows])
    expected = gcn.validation_scores(emb, y[rows], model.params["linkage_k"], candidates=ids)
    assert model.theta_ladder[0]["scores"] == expected


def test_predict_uses_the_theta_chosen_for_its_size_and_the_model_keeps_it(fitted, tmp_path):
    model, x, y, _ = fitted
    model.predict(x[:300])
    assert model.theta_ == choose_theta(model.theta_ladder, 300, model.params)[0]
    model.save(tmp_path / "m")
    again = facecluster.load_model(tmp_path / "m")
    assert again.theta_ladder == model.theta_ladder
    np.testing.assert_array_equal(again.predict(x[:300]), model.predict(x[:300]))
    old = facecluster.model("adanets", theta_on="training_graph")
    old.gcn_path, old.fitted = model.gcn_path, True
    old._choose_theta()
    assert old.theta_ == gcn.checkpoint_theta(model.gcn_path, old.params["theta_tolerance"])


def test_a_fitted_models_checkpoints_go_with_it(fitted, tmp_path):
    """Until ``save`` copies them, the checkpoints live in a temporary folder of the model's
    own, removed when the model is collected: fitting leaves nothing behind in /tmp."""
    model, x, y, _ = fitted
    assert Path(model.gcn_path).parent == Path(model.filter_path).parent
    cut = facecluster.model("adanets", clustering="graph_cut", filter={"steps": 5}).fit(x, y)
    folder = Path(cut.filter_path).parent
    assert folder.is_dir() and folder != Path(model.gcn_path).parent
    expected = cut.predict(x[:200])
    cut.save(tmp_path / "cut")
    del cut
    gc.collect()
    assert not folder.exists()
    assert Path(model.gcn_path).is_file(), "another model's folder was removed"
    np.testing.assert_array_equal(facecluster.load_model(tmp_path / "cut").predict(x[:200]),
                                  expected)


@pytest.mark.slow
def test_theta_seeds_chooses_on_the_mean_of_each_models_curves(fitted, monkeypatch):
    """``theta_seeds`` 2: seed 0's model (the fixture's) and seed 1's, each on its own
    held-out identities, their curves averaged; the kept model is seed 0's.  The candidate
    lists, the same for every seed, are searched once."""
    from facecluster.core.selection import pool_ladders

    model, x, y, _ = fitted
    settings = {"filter": {"steps": 40}, "gcn": {"steps": 60, "val_every": 30}}
    seed_1 = facecluster.model("adanets", seed=1, theta_seeds=1, **settings).fit(x, y)
    assert seed_1.theta_ladder != model.theta_ladder
    searched = []
    original = Model._candidates

    def counting(self, features, threads):
        searched.append(len(features))
        return original(self, features, threads)

    monkeypatch.setattr(Model, "_candidates", counting)
    pooled = facecluster.model("adanets", theta_seeds=2, **settings).fit(x, y)
    monkeypatch.undo()
    assert searched.count(len(x)) == 1, "the train part's kNN lists were searched per seed"
    assert pooled.theta_ladder == pool_ladders([model.theta_ladder, seed_1.theta_ladder])
    assert pooled.theta_ == choose_theta(pooled.theta_ladder, None, pooled.params)[0]
    np.testing.assert_array_equal(pooled.embedding(x[:200])[0], model.embedding(x[:200])[0])
