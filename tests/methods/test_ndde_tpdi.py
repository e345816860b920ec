"""Hard clusters (ECCV 2022): TPDi and NDDe against dense computations, the density-peak
linkage by hand, the similarity's attention within one anchor's list, its training."""

import numpy as np
import pytest
import torch

from facecluster.core.knn import knn_graph
from facecluster.methods.ndde_tpdi import density, similarity

from helpers import unit_rows


@pytest.fixture
def lists():
    rng = np.random.default_rng(2)
    x = unit_rows(rng.normal(size=(40, 6)))
    ids, sims, _ = knn_graph(x, k=9)
    d = np.where(ids >= 0, 1 - sims, 1.0).astype(np.float32) + \
        rng.uniform(0, 0.05, ids.shape).astype(np.float32)  # not quite the cosine: learned-like
    d[:, 0] = 0.0
    return density.sort_by_distance(ids, d)


def dense_p(ids, d, sigma, k=None):
    n = ids.shape[0]
    p = np.zeros((n, n))
    for i in range(n):
        row = slice(None, k)
        w = np.exp(-d[i, row].astype(np.float64) / sigma)
        p[i, ids[i, row]] = w / w.sum()
    return p


def test_tpdi_equals_a_dense_computation(lists):
    ids, d = lists
    p = dense_p(ids, d, 0.05)
    got = density.tpdi(ids, d, sigma=0.05)
    for i in range(40):
        for c, j in enumerate(ids[i]):
            shared = set(ids[i]) & set(ids[j])
            expected = 1 - sum(np.sqrt(p[i, l] * p[j, l]) for l in shared)
            assert got[i, c] == pytest.approx(expected, abs=1e-5)


def test_both_ndde_forms_equal_dense_computations(lists):
    ids, d = lists
    p = dense_p(ids, d, 0.5, k=5)
    np.testing.assert_allclose(density.ndde(ids, d, "approx", k=5), p.sum(axis=0), atol=1e-9)
    rho = np.ones(40)
    while True:  # the diffusion of the reference code, on the dense matrix
        new = 0.1 * rho + 0.9 * p.T @ rho
        if np.abs(new - rho).sum() < 0.05:
            break
        rho = new
    np.testing.assert_allclose(density.ndde(ids, d, "exact", k=5), new, atol=1e-9)
    assert (density.ndde(ids, d, "naive", naive_cut=0.5) == (d < 0.5).sum(axis=1)).all()


def test_density_peak_linkage_by_hand():
    """Faces 0-3; lists sorted by distance.  Faces 0 and 1 are equally dense: each links to
    the other (ρ_j ≥ ρ_i, non-strict: a tie goes to the nearest); 2's nearer neighbour 3 is
    less dense, so its parent is 1, beyond the cut 0.7; 3 joins 2."""
    ids = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [2, 3, 1, 0], [3, 2, 0, 1]])
    dist = np.array([[0, .2, .5, .6], [0, .2, .4, .5], [0, .3, .8, .9], [0, .3, .6, .7]])
    rho = np.array([2.0, 2.0, 1.5, 1.0])
    rows, parents = density.density_peak_links(ids, dist, rho, cut=0.7)
    assert sorted(zip(rows.tolist(), parents.tolist())) == [(0, 1), (1, 0), (3, 2)]
    assert density.density_peak_links(ids, dist, rho, cut=0.9)[1].tolist() == [1, 0, 1, 2]


def test_attention_runs_within_each_anchors_list():
    """Permuting the anchors of a batch permutes the outputs and changes no anchor's (the
    reference code attended across anchors); the padding of one list does not reach another."""
    torch.manual_seed(0)
    model = similarity.PairSimilarity(dim=16, k=7, width=16, heads=4, ff=32, dropout=0.0).eval()
    x = torch.randn(5, 7, 16)
    pad = torch.zeros(5, 7, dtype=torch.bool)
    pad[2, 5:] = True
    out = model(x, pad)
    perm = torch.tensor([3, 0, 4, 2, 1])
    torch.testing.assert_close(model(x[perm], pad[perm]), out[perm])
    x2 = x.clone()
    x2[2, 5:] = 99.0  # padding: masked out of the attention
    torch.testing.assert_close(model(x2, pad)[2, :5], out[2, :5])
    assert out.shape == (5, 7)


def test_training_loss_falls_on_tiny():
    from facecluster.core import synthetic

    x, y = synthetic.generate(synthetic.generator_params("tiny", dim=32), seed=0,
                              splits=("train",))["train"]
    ids, _, _ = knn_graph(x, k=20)
    cfg = {"width": 32, "project": True, "heads": 4, "ff": 64, "dropout": 0.0, "lr": 3e-3,
           "weight_decay": 5e-4, "epochs": 6, "batch_size": 128}
    _, info = similarity.train(x, ids, y, cfg, seed=0, device="cpu")
    assert info["loss_last"] < 0.7 * info["loss_first"]


def test_cut_auto_is_chosen_on_identities_the_similarity_never_trained_on(tmp_path):
    """``cut: auto`` (``cut_on: held_out_part``): the cut's similarity trains on the train
    part less its held-out identities (its steps count those faces only), the cut's curves
    come from the held-out faces alone at every size, the cut is the smallest within the
    tolerance of the best at the predicted part's size, and the model round-trips.  With
    ``refit`` (the default) the same ladder chooses the cut and the kept similarity is
    trained again on every face."""
    import math

    from facecluster import load_model
    from facecluster.core import synthetic
    from facecluster.methods import ndde_tpdi

    d = synthetic.generate(synthetic.generator_params("tiny", dim=32), seed=0)
    (x, y), (xte, _) = d["train"], d["test"]
    cfg = {"width": 16, "ff": 32, "epochs": 2, "batch_size": 128}
    model = ndde_tpdi.Model(knn={"k": 20}, cut="auto", refit=False, model=cfg).fit(x, y)
    rows = ndde_tpdi.held_out_rows(y, 0.2, 0)
    assert 0 < rows.size < y.size and model.cut_ladder[0]["n_faces"] == rows.size
    n_fit = y.size - rows.size
    assert model.checkpoint["train_info"]["steps"] == 2 * math.ceil(n_fit / 128)
    assert ndde_tpdi.cut_tolerance(model.params) == 0.0, "held out: the best cut at the size"
    cut, entry, curve, _ = ndde_tpdi.choose_held_out_cut(model.cut_ladder, xte.shape[0], 0.0)
    assert entry["cut"] == cut and all(c["cut"] > 0 for c in curve)
    means = {c["cut"]: (c["f_pairwise"] + c["f_bcubed"]) / 2 for c in curve}
    if len(model.cut_ladder) == 1:  # one size: a cut with the best score
        assert means[cut] == max(means.values())
    pred = model.predict(xte)
    assert model.cut_ == cut
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.cut_ladder == model.cut_ladder
    np.testing.assert_array_equal(again.predict(xte), pred)
    refit = ndde_tpdi.Model(knn={"k": 20}, cut="auto", model=cfg).fit(x, y)
    assert refit.cut_ladder == model.cut_ladder, "the cut comes from the held-out similarity"
    assert refit.checkpoint["train_info"]["steps"] == 2 * math.ceil(y.size / 128)
    refit.predict(xte)
    assert refit.cut_ == cut
    whole = ndde_tpdi.Model(knn={"k": 20}, cut="auto", cut_on="train_part", model=cfg).fit(x, y)
    assert whole.cut_ladder is None
    assert ndde_tpdi.cut_tolerance(whole.params) == 0.01, "the train part keeps the hedge"
    assert ndde_tpdi.cut_tolerance({**whole.params, "cut_tolerance": 0.03}) == 0.03
    assert whole.checkpoint["train_info"]["steps"] == 2 * math.ceil(y.size / 128)


def test_the_held_out_cut_is_not_hedged_for_a_larger_part():
    """Best at cut 0.85, 0.005 lower at 0.80 (the cautious side): a hedge of 0.01 would
    take 0.80 for a part four times the held-out part's size; the cut stays the best at
    every size (``CUT_BEYOND`` 0), and a tolerance of the experiment's own still applies."""
    from facecluster.methods import ndde_tpdi

    peak = {0.85: 1.0, 0.8: 0.995}
    curve = [{"cut": neg, "f_pairwise": peak.get(-neg, 0.5), "f_bcubed": peak.get(-neg, 0.5)}
             for neg in ndde_tpdi.NEG_CUT_GRID]
    ladder = [{"n_faces": 500, "draws": 1, "scores": curve}]
    assert ndde_tpdi.CUT_BEYOND == 0.0
    for n in (None, 500, 2000, 100_000):
        cut, entry, _, where = ndde_tpdi.choose_held_out_cut(ladder, n, 0.0)
        assert cut == 0.85 and entry["cut"] == 0.85 and "hedged" not in where
    assert ndde_tpdi.choose_held_out_cut(ladder, 2000, 0.01)[0] == 0.8


def test_the_held_out_choice_of_the_contract_is_the_cut_rule(tmp_path):
    """``METHOD.held_out_choice`` (the diagnostics' entry) reads the cluster stage's ladder
    and takes the cut ``choose_held_out_cut`` takes; None without a ladder."""
    from facecluster.core import io
    from facecluster.methods import ndde_tpdi

    peak = {0.85: 1.0, 0.8: 0.995}
    curve = [{"cut": neg, "f_pairwise": peak.get(-neg, 0.5), "f_bcubed": peak.get(-neg, 0.5)}
             for neg in ndde_tpdi.NEG_CUT_GRID]
    io.write_json(tmp_path / "cut.json", {"ladder": [{"n_faces": 500, "draws": 1,
                                                      "scores": curve}]})
    choice = ndde_tpdi.METHOD.held_out_choice
    assert choice({"cut": str(tmp_path / "cut.json")}, 2000, 0.0) == ("cut", 0.85)
    assert choice({"cut": str(tmp_path / "cut.json")}, 2000, 0.01) == ("cut", 0.8)
    assert choice({"distances": "d.h5"}, 2000, 0.0) is None
