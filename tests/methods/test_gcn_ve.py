"""GCN-V / GCN-E (CVPR 2020): the s_nbr targets and the affinity against per-vertex loops,
tree deduction by hand, the GraphConv equation, one GCN-E subgraph built by hand, training
on tiny, the model's save / load."""

import numpy as np
import pytest
import torch

from facecluster import load_model
from facecluster.core import metrics, synthetic
from facecluster.core.knn import knn_graph
from facecluster.core.params import ParamError
from facecluster.core.selection import plateau_top
from facecluster.methods.gcn_ve import Model, choose_tau, gcn_e, gcn_v, held_out_rows

from helpers import unit_rows


@pytest.fixture
def graph():
    rng = np.random.default_rng(4)
    x = unit_rows(rng.normal(size=(30, 5)))
    ids, sims, _ = knn_graph(x, k=6)
    labels = rng.integers(0, 4, size=30)
    return x, ids, sims, labels


@pytest.mark.parametrize("norm", ["paper", "reference"])
def test_s_nbr_targets_equal_a_per_vertex_loop(graph, norm):
    _, ids, sims, labels = graph
    c = np.zeros(30)
    for i in range(30):
        for j, s in zip(ids[i], sims[i]):
            a = 1.0 if j == i else s  # a_ii = 1: the vertex itself counts as same-label
            c[i] += a if labels[j] == labels[i] else -a
    expected = c / 6 if norm == "paper" else c / np.abs(c).max()
    np.testing.assert_allclose(gcn_v.confidence_targets(ids, sims, labels, norm), expected,
                               atol=1e-6)
    with pytest.raises(ValueError, match="paper or reference"):
        gcn_v.confidence_targets(ids, sims, labels, "other")


def test_affinity_is_the_symmetric_self_looped_row_normalised_graph(graph):
    _, ids, sims, _ = graph
    a = np.zeros((30, 30))
    for i in range(30):
        for j, s in zip(ids[i], sims[i]):
            if j != i and s > 0:
                a[i, j] = max(a[i, j], s)
                a[j, i] = max(a[j, i], s)
    a += np.eye(30)
    expected = a / a.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(gcn_v.affinity(ids, sims).toarray(), expected, atol=1e-6)


def test_tree_deduction_by_hand():
    """Vertex lists by decreasing cosine.  0 is the densest: a root.  1's nearest neighbour 2
    has the same confidence (not strictly higher), so its parent is 0 at 0.7.  2 → 0 at 0.9,
    3 → 2 at 0.8 (its nearest, 4, is less confident), 4 → 3 at 0.85, 5 → 4 at 0.5 (a
    padded list: −1 is never a parent)."""
    ids = np.array([[0, 2, 1], [1, 2, 0], [2, 0, 1], [3, 4, 2], [4, 3, 2], [5, 4, -1]])
    sims = np.array([[1, .9, .7], [1, .95, .7], [1, .9, .95], [1, .86, .8], [1, .85, .6],
                     [1, .5, -1]], dtype=np.float32)
    conf = np.array([0.9, 0.5, 0.5, 0.4, 0.3, 0.1])
    parent, parent_sim = gcn_v.deduction_parents(ids, sims, conf)
    assert parent.tolist() == [-1, 0, 0, 2, 3, 4]
    np.testing.assert_allclose(parent_sim[1:], [.7, .9, .8, .85, .5])
    assert parent_sim[0] == -np.inf
    assert gcn_v.cut_tree(parent, parent_sim, 0.75).tolist() == [0, 1, 0, 0, 0, 2]
    assert len(set(gcn_v.cut_tree(parent, parent_sim, 0.82))) == 4  # {0,2} {1} {3,4} {5}
    np.testing.assert_array_equal(gcn_v.tree_deduction(ids, sims, conf, 0.75),
                                  gcn_v.cut_tree(parent, parent_sim, 0.75))
    assert (gcn_v.cut_tree(parent, parent_sim, 0.99) == np.arange(6)).all()


def test_density_confidence_sums_the_cosines_within_the_radius():
    ids = np.array([[0, 1, 2], [1, 0, 2], [2, 1, -1]])
    sims = np.array([[1, .8, .65], [1, .8, .75], [1, .75, -1]], dtype=np.float32)
    np.testing.assert_allclose(gcn_v.density_confidence(ids, sims), [.8, 1.55, .75],
                               atol=1e-6)


def test_graphconv_equals_its_equation():
    torch.manual_seed(0)
    conv = gcn_v.GraphConv(4, 3)
    x, agg = torch.randn(7, 4), torch.randn(7, 4)
    w, b = conv.linear.weight.detach(), conv.linear.bias.detach()
    expected = torch.relu(torch.cat([x, agg], 1) @ w.T + b)
    torch.testing.assert_close(conv(x, agg), expected)
    assert torch.count_nonzero(b) == 0, "the bias starts at 0"


def test_a_gcn_e_subgraph_equals_one_built_by_hand(graph):
    x, ids, sims, _ = graph
    rng = np.random.default_rng(1)
    conf = rng.uniform(size=30)
    hidden = unit_rows(rng.normal(size=(30, 8))).astype(np.float32)
    centres = np.array([3, 11])
    positions, sizes = gcn_e.candidate_sets(ids, conf, centres)
    xb, adj, mask, nodes = gcn_e.subgraph_batch(hidden, gcn_v.affinity(ids, sims), ids,
                                                centres, positions, sizes)
    dense = gcn_v.affinity(ids, sims).toarray()
    for r, i in enumerate(centres):
        members = [j for j in ids[i] if j != i and conf[j] > conf[i]]  # list order
        assert nodes[r, :sizes[r]].tolist() == members and not mask[r, sizes[r]:].any()
        np.testing.assert_allclose(xb[r, :len(members)], hidden[members] - hidden[i], atol=1e-6)
        sub = dense[np.ix_(members, members)]
        np.testing.assert_allclose(adj[r, :len(members), :len(members)],
                                   sub / sub.sum(axis=1, keepdims=True), atol=1e-6)
    assert xb.shape[1] == sizes.max() and adj.shape == (2, sizes.max(), sizes.max())


def test_gcn_e_logits_do_not_depend_on_padding():
    torch.manual_seed(0)
    model = gcn_e.GCNE(8, (16, 8)).eval()
    x, adj = torch.randn(1, 3, 8), torch.softmax(torch.randn(1, 3, 3), -1)
    padded_x, padded_adj = torch.zeros(1, 5, 8), torch.zeros(1, 5, 5)
    padded_x[0, :3], padded_adj[0, :3, :3] = x[0], adj[0]
    padded_x[0, 3:] = 7.0
    torch.testing.assert_close(model(padded_x, padded_adj)[:, :3], model(x, adj))


@pytest.fixture(scope="module")
def tiny():
    d = synthetic.generate(synthetic.generator_params("tiny"), seed=0)
    return d["train"], d["test"]


def test_gcn_v_and_gcn_e_losses_fall_on_tiny(tiny):
    (x, y), _ = tiny
    ids, sims, _ = knn_graph(x, k=20)
    cfg = {**Model().params["gcn_v"], "steps": 200, "target_norm": "paper"}
    ckpt, info = gcn_v.train(x, ids, sims, y, cfg, seed=0, device="cpu")
    assert info["loss_last"] < 0.5 * info["loss_first"]
    conf, hidden = gcn_v.predict(gcn_v.load(ckpt), x, ids, sims, device="cpu")
    target = gcn_v.confidence_targets(ids, sims, y)
    assert np.corrcoef(conf, target)[0, 1] > 0.8, "GCN-V learns the s_nbr targets"
    np.testing.assert_allclose(np.linalg.norm(hidden, axis=1), 1, atol=1e-5)
    cfg_e = {**Model().params["gcn_e"], "layers": [64, 32], "epochs": 4}
    _, info_e = gcn_e.train(hidden, conf, ids, sims, y, cfg_e, seed=0, device="cpu")
    assert info_e["loss_last"] < 0.8 * info_e["loss_first"]


def test_the_validation_keeps_a_trained_model_and_the_model_round_trips(tiny, tmp_path):
    (xtr, ytr), (xte, yte) = tiny
    model = Model(knn={"k": 20}, passes=1, gcn_v={"steps": 200, "val_every": 50}).fit(xtr, ytr)
    validation = model.checkpoint_v["validation"]
    assert validation["step"] > 0 and [c["step"] for c in validation["curve"]][:2] == [0, 50]
    pred = model.predict(xte)
    assert metrics.bcubed_prf(yte, pred)[2] > 0.7
    ladder = model.tau_ladder  # τ auto on the held-out identities clustered alone
    held = np.unique(ytr[held_out_rows(ytr, model.params)])
    assert ladder[0]["n_faces"] == np.isin(ytr, held).sum() and held.size > 0
    assert model.tau_ == choose_tau(ladder, xte.shape[0], model.params["tau_tolerance"])[0]
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.tau_ == model.tau_ and again.tau_ladder == ladder
    np.testing.assert_array_equal(again.predict(xte), pred)
    inside = Model(knn={"k": 20}, passes=1, tau_on="training_graph",
                   gcn_v={"steps": 200, "val_every": 50}).fit(xtr, ytr)
    assert inside.tau_ladder is None and inside.tau_ == plateau_top(
        inside.checkpoint_v["validation"]["scores"], "tau", 0.01)["tau"]


@pytest.mark.parametrize("settings, message", [
    ({"confidence": "density"}, "passes 1"),
    ({"confidence": "density", "passes": 1, "edge": True}, "confidence 'gcn_v'"),
    ({"passes": 1, "edge": True}, "passes 2"),
    ({"gcn_v": {"val_fraction": 0}}, "val_fraction is 0"),
])
def test_settings_that_do_not_fit_together_are_refused(settings, message):
    with pytest.raises(ParamError, match=message):
        Model(**settings)
