import os

import numpy as np
import pytest
import torch

from facecluster.methods.adanets import adaptive_filter as af
from facecluster.methods.adanets import koff

K = 16
# The paper's optimiser (SGD) with a learning rate fit for these short runs.
SMALL = dict(proj=16, hidden=16, mlp_hidden=32, batch_size=64, log_every=1000, val_fraction=0.0,
             optimizer="sgd")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def clustered_candidates(seed: int, n_clusters: int = 40, d: int = 16, k: int = K):
    """Unit vectors in clusters of 2..17 items with varied spread, their exact top-k and labels."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 18, size=n_clusters)
    labels = np.repeat(np.arange(n_clusters), sizes)
    centres = rng.normal(size=(n_clusters, d))
    spread = rng.uniform(0.2, 0.6, size=n_clusters)
    x = centres[labels] + spread[labels, None] * rng.normal(size=(labels.size, d))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    sims = x @ x.T
    np.fill_diagonal(sims, np.inf)  # each item first in its own list
    ids = np.argsort(-sims, axis=1, kind="stable")[:, :k].astype(np.int32)
    return x, ids, labels


def quality_curves(ids, labels, beta=0.5):
    """Q(j) of Eq. 3 and k_off of Eq. 4 for every vertex."""
    return koff.quality_curve(ids, labels, beta), koff.k_off_labels(ids, labels, beta)


@pytest.fixture(scope="module")
def train_set():
    x, ids, labels = clustered_candidates(seed=1)
    q, k_off = quality_curves(ids, labels)
    return x, ids, k_off, q


@pytest.fixture(scope="module")
def held_out_set():
    x, ids, labels = clustered_candidates(seed=2)
    q, k_off = quality_curves(ids, labels)
    return x, ids, k_off, q


@pytest.fixture(scope="module")
def trained_reg(train_set):
    x, ids, k_off, q = train_set
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures start before the autouse one
    try:
        return af.train_filter(x, ids, k_off, q, dict(SMALL, steps=400, lr=0.05), seed=0,
                               device="cpu")
    finally:
        torch.set_num_threads(before)


def model_from(checkpoint):
    model = af.AdaptiveFilter.from_config(checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def test_config_validation():
    cfg = af.filter_config()
    assert cfg == af.PARAMS.defaults()
    assert af.filter_config(hidden=32, variant="cls")["hidden"] == 32
    ref = af.filter_config(**af.REFERENCE)
    assert (ref["proj"], ref["hidden"], ref["probe_similarity"]) == (0, 256, False)
    with pytest.raises(ValueError, match="unknown"):
        af.filter_config(hiden=32)
    for bad in (dict(variant="mse"), dict(hidden=0), dict(steps=1.5), dict(lr=-1.0),
                dict(dropout=1.0), dict(batch_size=True), dict(probe_similarity=1)):
        with pytest.raises(ValueError):
            af.filter_config(**bad)


@pytest.mark.parametrize("variant", af.VARIANTS)
def test_loss_decreases_and_predictions_in_range(train_set, variant):
    x, ids, k_off, q = train_set
    ckpt, info = af.train_filter(x, ids, k_off, q, dict(SMALL, variant=variant, steps=120, lr=0.05),
                                 seed=0, device="cpu")
    losses = info["losses"]
    assert info["steps"] == len(losses) == 120 and info["stopped_by"] == "steps"
    assert np.mean(losses[-15:]) < 0.8 * np.mean(losses[:15]), variant
    pred = af.predict_k_off(model_from(ckpt), x, ids, batch_size=100, device="cpu")
    assert pred.dtype == np.int32 and pred.shape == (x.shape[0],)
    assert pred.min() >= 1 and pred.max() <= K


def test_qseq_and_qparam_need_quality(train_set):
    x, ids, k_off, _ = train_set
    with pytest.raises(ValueError, match="quality"):
        af.train_filter(x, ids, k_off, None, dict(SMALL, variant="qseq", steps=1))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_reg_beats_the_constant_mean_on_held_out_vertices(optimizer, trained_reg, train_set,
                                                          held_out_set):
    if optimizer == "sgd":
        ckpt, info = trained_reg
    else:  # the default optimiser at its default learning rate
        xt, idt, kt, qt = train_set
        ckpt, info = af.train_filter(xt, idt, kt, qt, dict(SMALL, optimizer="adam",
                                                           lr=af.PARAMS["lr"].default, steps=400),
                                     seed=0, device="cpu")
    _, _, k_train, _ = train_set
    x, ids, k_off, _ = held_out_set
    pred = af.predict_k_off(model_from(ckpt), x, ids, device="cpu")
    constant = np.clip(np.round(k_train.mean()), 1, K)
    mae, mae_constant = np.abs(pred - k_off).mean(), np.abs(constant - k_off).mean()
    assert mae < 0.75 * mae_constant, (mae, mae_constant)


def test_save_load_round_trip(trained_reg, held_out_set, tmp_path):
    ckpt, _ = trained_reg
    x, ids, _, _ = held_out_set
    path = tmp_path / "filter.pt"
    af.save_checkpoint(path, ckpt)
    assert os.listdir(tmp_path) == ["filter.pt"], "no temporary file left behind"
    raw = torch.load(path, weights_only=True)  # plain types only: no pickled code
    assert raw["config"] == ckpt["config"] and raw["train_info"]["steps"] == 400
    model = af.load_checkpoint(path)
    assert not model.training and model.config["k"] == K and model.config["dim"] == 16
    np.testing.assert_array_equal(af.predict_k_off(model, x, ids, device="cpu"),
                                  af.predict_k_off(model_from(ckpt), x, ids, device="cpu"))


def test_padding_is_a_zero_feature_vector(trained_reg, held_out_set):
    ckpt, _ = trained_reg
    model = model_from(ckpt)
    x, ids, _, _ = held_out_set
    padded = ids.copy()
    padded[::3, 10:] = -1
    padded[1::3, 2:] = -1
    # The same lists with −1 pointing at an explicit zero row instead.
    x_zero = np.vstack([x, np.zeros((1, x.shape[1]), dtype=np.float32)])
    ids_zero = np.where(padded < 0, x.shape[0], padded)
    ids_zero = np.vstack([ids_zero, np.full((1, K), x.shape[0], dtype=ids.dtype)])
    pred = af.predict_k_off(model, x, padded, device="cpu")
    expected = af.predict_k_off(model, x_zero, ids_zero, device="cpu")[: x.shape[0]]
    np.testing.assert_array_equal(pred, expected)
    assert pred.min() >= 1 and pred.max() <= K
    # Training on padded lists runs and stays finite.
    _, k_off = quality_curves(padded, clustered_candidates(seed=2)[2])
    _, info = af.train_filter(x, padded, k_off, None, dict(SMALL, steps=20), device="cpu")
    assert np.isfinite(info["losses"]).all()


def test_bad_candidate_ids_are_refused(train_set):
    x, ids, k_off, q = train_set
    bad = ids.copy()
    bad[0, 3] = x.shape[0]
    with pytest.raises(ValueError, match="cand_ids"):
        af.train_filter(x, bad, k_off, q, dict(SMALL, steps=1))
    with pytest.raises(ValueError, match="k_off"):
        af.train_filter(x, ids, np.full(x.shape[0], K + 1), q, dict(SMALL, steps=1))


def test_seed_makes_training_deterministic(train_set):
    x, ids, k_off, q = train_set
    cfg = dict(SMALL, steps=15, val_fraction=0.2, dropout=0.3)
    rng_before = torch.get_rng_state()
    a, info_a = af.train_filter(x, ids, k_off, q, cfg, seed=3, device="cpu")
    assert torch.equal(rng_before, torch.get_rng_state()), "the caller's RNG is left alone"
    b, info_b = af.train_filter(x, ids, k_off, q, cfg, seed=3, device="cpu")
    c, _ = af.train_filter(x, ids, k_off, q, cfg, seed=4, device="cpu")
    assert info_a["losses"] == info_b["losses"] and info_a["val_mae"] == info_b["val_mae"]
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    assert any(not torch.equal(v, c["state_dict"][n]) for n, v in a["state_dict"].items())


def test_time_budget_stops_training(train_set):
    x, ids, k_off, q = train_set
    _, info = af.train_filter(x, ids, k_off, q, dict(SMALL, steps=10**6, max_seconds=0.3),
                              device="cpu")
    assert info["stopped_by"] == "time" and 0 < info["steps"] < 10**6


def test_k_reads_the_first_columns_only(train_set):
    x, ids, k_off, q = train_set
    k = 8
    ckpt, _ = af.train_filter(x, ids, np.minimum(k_off, k), q, dict(SMALL, k=k, steps=5),
                              device="cpu")
    model = model_from(ckpt)
    assert model.k == k
    wider = np.hstack([ids, np.full((ids.shape[0], 4), -1, dtype=np.int32)])
    np.testing.assert_array_equal(af.predict_k_off(model, x, ids, device="cpu"),
                                  af.predict_k_off(model, x, wider, device="cpu"))
    with pytest.raises(ValueError):
        af.predict_k_off(model, x, ids[:, :4], device="cpu")


def test_decoding_of_each_head():
    k = 10
    reg = af.AdaptiveFilter(k, 4, "reg")
    out = torch.tensor([[-0.3], [0.0], [0.34], [0.96], [7.0]])
    assert reg.decode(out).tolist() == [1, 1, 3, 10, 10]
    qseq = af.AdaptiveFilter(k, 4, "qseq")
    curve = torch.tensor([[0.1, 0.5, 0.5, 0.2] + [0.0] * 6])
    assert qseq.decode(curve).tolist() == [2], "the first maximum, as Eq. 4"
    # A quadratic through Q(j) peaking at j = 6 is fitted exactly and decoded there.
    t = np.arange(1, k + 1) / k
    q = (0.9 - 2.0 * (t - 0.6) ** 2)[None, :].astype(np.float32)
    coef = af.quadratic_fit(q)
    np.testing.assert_allclose(coef[0], [-2.0, 2.4, 0.9 - 0.72], atol=1e-5)
    qparam = af.AdaptiveFilter(k, 4, "qparam")
    assert qparam.decode(torch.from_numpy(coef)).tolist() == [6]


@pytest.mark.parametrize("probe", [True, False])
def test_projected_inference_equals_gathering_the_features(held_out_set, probe):
    """Inference from the projected features and the candidates' cosines is the same
    model as gathering each sequence's D-wide features (padding included)."""
    x, ids, _, _ = held_out_set
    padded = ids.copy()
    padded[::3, 10:] = -1
    padded[1::7, 2:] = -1
    cos = np.einsum("nd,nkd->nk", x, x[np.maximum(padded, 0)])
    cos[padded < 0] = -1.0  # what an approximate index pads with; the filter ignores it
    torch.manual_seed(3)
    model = af.AdaptiveFilter(K, x.shape[1], proj=8, hidden=8, mlp_hidden=16,
                              probe_similarity=probe).eval()
    with torch.no_grad():
        model.head.weight.mul_(50)  # spread the outputs over 1..K
    seq = torch.from_numpy(np.where(padded[..., None] < 0, 0, x[np.maximum(padded, 0)]))
    z_all, z_pad = af._projected_features(model, torch.from_numpy(x))
    z = z_all[torch.from_numpy(np.maximum(padded, 0).astype(np.int64))]
    z[torch.from_numpy(padded < 0)] = z_pad
    sim = torch.from_numpy(np.where(padded < 0, 0, cos).astype(np.float32))[..., None]
    with torch.no_grad():
        np.testing.assert_allclose(model.forward_projected(z, sim if probe else None).numpy(),
                                   model(seq).numpy(), rtol=1e-4, atol=1e-5)
    gathered = af.predict_k_off(model, x, padded, device="cpu")
    given = cos.copy()
    projected = af.predict_k_off(model, x, padded, cos, batch_size=50, device="cpu")
    np.testing.assert_array_equal(cos, given)  # the caller's similarities are not touched
    assert len(np.unique(gathered)) > 3
    assert (gathered == projected).mean() > 0.99 and np.abs(gathered - projected).max() <= 1
    with pytest.raises(ValueError, match="does not match"):
        af.predict_k_off(model, x, padded, cos[:, :4], device="cpu")
