"""Face Transformer (2021): attention only within each query's own lists, RE's add & norm
against its equation by hand, Eq. 11-12, union-find on a hand-worked case, the loss falling
on tiny, model selection and the model's save / load."""

import numpy as np
import pytest
import torch

from facecluster import load_model
from facecluster.core import metrics, synthetic
from facecluster.core.knn import knn_graph
from facecluster.methods import face_transformer as ft
from facecluster.methods.face_transformer import network

from helpers import unit_rows


def _net(mode="both", edge="cat", depth=2, dim=8):
    torch.manual_seed(0)
    return network.FaceTransformer(dim, mode, depth=depth, heads=2, head_dim=4, dropout=0.0,
                                   mlp=16, edge=edge).eval()


@pytest.mark.parametrize("edge", network.EDGES)
def test_each_query_attends_only_to_its_own_candidates(edge):
    """LP on a batch of 3 queries: replacing query 1's candidates, or the features under
    a padded slot of query 0, changes nothing of query 0's or query 2's output."""
    rng = np.random.default_rng(0)
    net = _net(edge=edge)
    g_q = torch.tensor(rng.normal(size=(3, 8)), dtype=torch.float32)
    cand = torch.tensor(rng.normal(size=(3, 5, 8)), dtype=torch.float32)
    pad = torch.zeros(3, 5, dtype=torch.bool)
    pad[0, 4] = True
    with torch.no_grad():
        before = net.log_probs(g_q, cand, pad)
        changed = cand.clone()
        changed[1] = torch.tensor(rng.normal(size=(5, 8)), dtype=torch.float32)
        changed[0, 4] = 100.0
        after = net.log_probs(g_q, changed, pad)
    assert before.shape == (3, 5, 2)
    torch.testing.assert_close(after[0, :4], before[0, :4])
    torch.testing.assert_close(after[2], before[2])
    assert not torch.allclose(after[1], before[1]), "a query's own candidates do matter"
    torch.testing.assert_close(before.exp().sum(-1), torch.ones(3, 5))


def test_permuting_a_querys_candidates_permutes_its_probabilities():
    """No position enters the attention: LP's output follows its candidates' order."""
    rng = np.random.default_rng(1)
    net = _net()
    g_q = torch.tensor(rng.normal(size=(1, 8)), dtype=torch.float32)
    cand = torch.tensor(rng.normal(size=(1, 6, 8)), dtype=torch.float32)
    pad = torch.zeros(1, 6, dtype=torch.bool)
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        torch.testing.assert_close(net.log_probs(g_q, cand[:, order], pad),
                                   net.log_probs(g_q, cand, pad)[:, order])


def test_the_relation_encoder_is_layer_norm_of_attention_plus_the_face():
    """d_e = 0: g = LN(M(f, C, C) + f) (Eq. 5-6), M by hand (Eq. 1-3) from the weights,
    one context row padded."""
    rng = np.random.default_rng(2)
    re = _net(depth=0).re
    f = rng.normal(size=(1, 8)).astype(np.float32)
    ctx = rng.normal(size=(1, 3, 8)).astype(np.float32)
    pad = np.array([[False, False, True]])
    with torch.no_grad():
        g = re(torch.from_numpy(f), torch.from_numpy(ctx), torch.from_numpy(pad)).numpy()
    w = {k: v.numpy().astype(np.float64) for k, v in re.state_dict().items()}

    def lin(x, name):
        return x @ w[f"attention.{name}.weight"].T + w[f"attention.{name}.bias"]

    q, k, v = lin(f, "q"), lin(ctx[0, :2], "k"), lin(ctx[0, :2], "v")
    heads = []
    for h in range(2):
        s = slice(4 * h, 4 * h + 4)
        a = q[:, s] @ k[:, s].T / 2.0  # √d_h = 2
        a = np.exp(a - a.max()) / np.exp(a - a.max()).sum()
        heads.append(a @ v[:, s])
    f_tilde = lin(np.concatenate(heads, axis=1), "out")
    x = f_tilde + f
    ln = (x - x.mean()) / np.sqrt(x.var() + 1e-5) * w["norm.weight"] + w["norm.bias"]
    np.testing.assert_allclose(g, ln, atol=1e-5)


def test_re_only_scores_pairs_by_eq_11_and_12():
    """p(same) = 1 − ¼‖N(g_q) − N(g_k)‖² = (1 + cos) / 2."""
    net = _net(mode="re_only")
    g_q = torch.tensor([[1.0, 0, 0, 0, 0, 0, 0, 0]])
    cand = torch.tensor([[[2.0, 0, 0, 0, 0, 0, 0, 0], [0, 3.0, 0, 0, 0, 0, 0, 0],
                          [1.0, 1.0, 0, 0, 0, 0, 0, 0]]])
    p = net.log_probs(g_q, cand, torch.zeros(1, 3, dtype=torch.bool))[..., 1].exp()
    torch.testing.assert_close(p, torch.tensor([[1 - 1e-6, 0.5, (1 + 2 ** -0.5) / 2]]))


def test_union_find_links_above_tau_by_hand():
    """Faces 0-5; 0→1 (0.9), 1→2 (0.6), 3→4 (0.95), 4→3 (0.2), 5 only padding or low.
    τ 0.5: {0,1,2} {3,4} {5}; τ 0.7: {0,1} {2} {3,4} {5}; τ 0.95: nothing is above."""
    cand = np.array([[1, 2], [2, 0], [0, -1], [4, 5], [3, -1], [-1, -1]])
    p = np.array([[0.9, 0.1], [0.6, 0.3], [0.4, 0.0], [0.95, 0.3], [0.2, 0.0], [0.0, 0.0]])
    np.testing.assert_array_equal(ft.link(cand, p, 0.5), [0, 0, 0, 1, 1, 2])
    np.testing.assert_array_equal(ft.link(cand, p, 0.7), [0, 0, 1, 2, 2, 3])
    np.testing.assert_array_equal(ft.link(cand, p, 0.95), [0, 1, 2, 3, 4, 5])


def test_lists_must_start_with_the_face_itself():
    ids = np.array([[0, 1, 2], [1, 0, -1], [2, 1, 0]])
    np.testing.assert_array_equal(network.lists_of(ids, 3), [[1, 2, -1], [0, -1, -1],
                                                             [1, 0, -1]])
    with pytest.raises(ValueError, match="itself first"):
        network.lists_of(ids[:, ::-1], 2)


@pytest.fixture(scope="module")
def tiny():
    d = synthetic.generate(synthetic.generator_params("tiny"), seed=0)
    return d["train"], d["test"]


@pytest.mark.parametrize("mode", ["both", "re_only", "lp_only"])
def test_the_loss_falls_on_tiny(tiny, mode):
    (x, y), _ = tiny
    ids, _, _ = knn_graph(x, k=12)
    cfg = {**ft.Model().params["model"], "mode": mode, "hop1": 10, "steps": 60, "warmup": 10,
           "head_dim": 16}
    _, info = network.train(x, ids, y, cfg, seed=0, device="cpu")
    assert info["loss_last"] < 0.7 * info["loss_first"], info


def test_features_wider_than_256_train_at_a_proportionally_smaller_lr(tiny):
    cfg = {**ft.Model().params["model"], "lr": 0.002}
    assert [network.learning_rate(cfg, d) for d in (128, 256, 512, 1024)] == \
        pytest.approx([0.002, 0.002, 0.001, 0.0005])
    (x, y), _ = tiny
    wide = np.repeat(x, 512 // x.shape[1], axis=1) / np.sqrt(512 // x.shape[1])
    ids, _, _ = knn_graph(wide, k=11)
    _, info = network.train(wide, ids, y, {**cfg, "hop1": 10, "steps": 2, "warmup": 1},
                            seed=0, device="cpu")
    assert info["lr"] == pytest.approx(0.001)


def test_training_twice_on_two_threads_gives_the_same_weights(tiny):
    """A run from scratch gives the same model twice: with two CPU threads the backward of
    the batch's gathered rows added in a varying order, and three trainings of three steps
    gave three different sets of weights before ``core.device.seed_torch``."""
    (x, y), _ = tiny
    x = np.repeat(x, 4, axis=1) / 2.0  # 128-D unit rows: large enough for threaded kernels
    ids, _, _ = knn_graph(x, k=21)
    cfg = {**ft.Model().params["model"], "hop1": 20, "steps": 3, "warmup": 1}
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = [network.train(x, ids, y, cfg, seed=0, device="cpu")[0]["state_dict"]
                for _ in range(2)]
    finally:
        torch.set_num_threads(threads)
    for name, weights in runs[0].items():
        assert torch.equal(weights, runs[1][name]), name


def test_the_validation_keeps_a_trained_model_and_the_model_round_trips(tiny, tmp_path):
    (xtr, ytr), (xte, yte) = tiny
    model = ft.Model(knn={"k": 12}, model={"hop1": 10, "steps": 90, "val_every": 30,
                                           "head_dim": 16}).fit(xtr, ytr)
    validation = model.checkpoint["validation"]
    assert validation["step"] > 0, "never the untrained model"
    assert [c["step"] for c in validation["curve"]] == [0, 30, 60, 90]
    assert model.tau_ in ft.TAU_GRID
    pred = model.predict(xte)
    assert metrics.bcubed_prf(yte, pred)[2] > 0.3
    ladder = model.tau_ladder  # τ auto on the held-out identities clustered alone
    assert ladder[0]["n_faces"] == ft.held_out_rows(ytr, model.params).size > 0
    assert model.tau_ == ft.choose_tau(ladder, xte.shape[0], model.params["tau_tolerance"])[0]
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.tau_ == model.tau_ and again.tau_ladder == ladder
    np.testing.assert_array_equal(again.predict(xte), pred)


def test_hop1_beyond_the_lists_is_refused_with_the_fix():
    x = unit_rows(np.random.default_rng(0).normal(size=(40, 8)))
    with pytest.raises(ValueError, match=r"set knn: \{k: 41\}"):
        ft.Model(knn={"k": 20}, model={"hop1": 40}).fit(x, np.arange(40) % 4)
