import numpy as np
import pytest
import torch

from facecluster.methods.adanets import gcn
from facecluster.methods.adanets.graph import knn_graph_adjacency
from facecluster.core.knn import knn_graph


def _graph(clustered):
    x, labels = clustered
    ids, _, _ = knn_graph(x, k=8, index="exact")
    return x, labels, knn_graph_adjacency(ids, 8), ids


def test_loss_decreases_with_fixed_seed(clustered):
    x, labels, adj, ids = _graph(clustered)
    cfg = {"steps": 150, "hidden": 32, "groups": 8, "per_group": 16, "log_every": 50}
    _, info = gcn.train_gcn(x, adj, labels, cfg, seed=0, device="cpu", candidates=ids)
    assert info["loss_last"] < 0.8 * info["loss_first"]
    _, again = gcn.train_gcn(x, adj, labels, cfg, seed=0, device="cpu", candidates=ids)
    assert again["losses"] == info["losses"], "same seed, same training"
    # Batches drawn from the graph instead of the candidate lists work too.
    _, from_graph = gcn.train_gcn(x, adj, labels, {**cfg, "batch_from": "graph"}, seed=0,
                                  device="cpu", candidates=ids)
    assert from_graph["losses"] != info["losses"]


def test_batch_forward_equals_full_graph_embedding(clustered, tmp_path):
    """The one-hop batch computation is exact: it matches embedding the whole graph."""
    x, labels, adj, ids = _graph(clustered)
    ckpt, _ = gcn.train_gcn(x, adj, labels, {"steps": 5, "hidden": 16}, seed=1, device="cpu",
                            candidates=ids)
    gcn.save_checkpoint(tmp_path / "gcn.pt", ckpt)
    model = gcn.load_checkpoint(tmp_path / "gcn.pt")
    full = gcn.embed(model, x, adj, block_size=64, device="cpu")
    norm = gcn.normalised_adjacency(adj)
    batch = np.array([3, 50, 51, 299])
    hood, rows = gcn._neighbourhood(norm, batch)
    with torch.no_grad():
        part = model(torch.from_numpy(norm @ x)[hood], gcn._torch_sparse(rows, "cpu")).numpy()
    np.testing.assert_allclose(part, full[batch], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)


def test_hinge_loss_hand_case():
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    # Positive pairs (0,1),(1,0): y = 1 -> [0.9 - 1]+ = 0.  Negatives: y = 0 -> [1 + 0]+ = 1.
    loss, parts = gcn.hinge_loss(emb, labels, beta1=0.9, beta2=1.0, lam=1.0)
    assert parts == {"l_pos": 0.0, "l_neg": 1.0} and float(loss) == 1.0


def test_device_selection_falls_back_to_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert gcn.pick_device("auto").type == expected
    assert gcn.pick_device("cpu").type == "cpu"


def test_held_out_identities_are_whole_identities():
    labels = np.repeat(np.arange(10), [3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
    held = gcn.held_out_identities(labels, 0.2, seed=3)
    held_ids = np.unique(labels[held])
    assert held_ids.size == 2
    assert not np.isin(labels[~held], held_ids).any(), "an identity is either held out or not"
    np.testing.assert_array_equal(held, gcn.held_out_identities(labels, 0.2, seed=3))
    assert gcn.held_out_identities(labels, 0.0) is None
    assert gcn.held_out_identities(np.array([0, 0, 1, 1]), 0.5) is None, "training keeps two ids"


def test_batches_avoid_held_out_vertices(clustered):
    x, labels, adj, ids = _graph(clustered)
    usable = ~gcn.held_out_identities(labels, 0.25, seed=0)
    rng = np.random.default_rng(0)
    for pool in (ids, adj):
        for _ in range(20):
            batch = gcn._sample_batch(pool, 8, 16, rng, usable)
            assert batch.size > 8 and usable[batch].all()


@pytest.mark.parametrize(("neighbours", "val_graph"), [("candidates", "own"),
                                                        ("embedding", "own"),
                                                        ("candidates", "training")])
def test_validation_keeps_the_best_model_and_its_theta(clustered, tmp_path, neighbours,
                                                       val_graph):
    x, labels, adj, ids = _graph(clustered)
    cfg = {"steps": 60, "hidden": 32, "val_every": 20, "val_fraction": 0.25,
           "val_graph": val_graph}
    ckpt, info = gcn.train_gcn(x, adj, labels, cfg, seed=0, device="cpu", candidates=ids,
                               val_neighbours=neighbours)
    val = ckpt["validation"]
    assert [c["step"] for c in val["curve"]] == [0, 20, 40, 60]
    # The best trained model, the later one on a tie; the untrained step 0 is a reference.
    trained = val["curve"][1:]
    best = max(reversed(trained), key=lambda c: c["score"])
    assert (val["step"], val["theta"]) == (best["step"], best["theta"])
    assert val["untrained_score"] == pytest.approx(val["curve"][0]["score"], abs=1e-5)
    assert val["theta"] in gcn.THETA_GRID and val["held_out_identities"] == 3
    # The kept model scores on the held-out vertices what its curve entry says.
    gcn.save_checkpoint(tmp_path / "gcn.pt", ckpt)
    model = gcn.load_checkpoint(tmp_path / "gcn.pt")
    held = gcn.held_out_identities(labels, 0.25, seed=0)
    assert val["graph"] == val_graph
    if val_graph == "own":  # embedded through the held-out identities' subgraph alone
        emb = gcn.embed(model, x[held], adj[held][:, held], device="cpu")
    else:  # through the whole graph
        emb = gcn.embed(model, x, adj, device="cpu")[held]
    local = None
    if neighbours == "candidates":  # the held-out vertices' candidates among themselves
        position = np.full(len(x), -1)
        position[np.flatnonzero(held)] = np.arange(held.sum())
        local = np.where(ids[held] >= 0, position[np.maximum(ids[held], 0)], -1)
    scores = gcn.validation_scores(emb, labels[held], k=80, thetas=np.array([val["theta"]]),
                                   candidates=local)[0]
    assert abs(scores["f_pairwise"] - val["f_pairwise"]) < 1e-6
    assert gcn.checkpoint_theta(tmp_path / "gcn.pt") == val["theta"]
    # Every θ of the grid is stored for the kept model, its best among them.
    assert [s["theta"] for s in val["scores"]] == gcn.THETA_GRID.tolist()
    assert max(val["scores"], key=lambda s: s["f_pairwise"] + s["f_bcubed"])["theta"] == val["theta"]
    assert gcn.checkpoint_theta(tmp_path / "gcn.pt", 1.0) == gcn.THETA_GRID[-1]


def test_own_val_graph_keeps_held_out_faces_out_of_training(clustered):
    """With val_graph own, the training never reads a held-out face: replacing the held-out
    faces' features leaves every training step the same; in the training graph it does not."""
    x, labels, adj, ids = _graph(clustered)
    held = gcn.held_out_identities(labels, 0.25, seed=0)
    other = x.copy()
    other[held] = np.random.default_rng(1).standard_normal((held.sum(), x.shape[1]))
    cfg = {"steps": 30, "hidden": 16, "val_every": 10, "val_fraction": 0.25}
    for val_graph, same in (("own", True), ("training", False)):
        runs = [gcn.train_gcn(f, adj, labels, {**cfg, "val_graph": val_graph}, seed=0,
                              device="cpu", candidates=ids)[1] for f in (x, other)]
        assert (runs[0]["losses"] == runs[1]["losses"]) is same, val_graph


def test_tolerant_theta_takes_the_top_of_the_plateau():
    def s(theta, mean):
        return {"theta": theta, "f_pairwise": mean + 0.01, "f_bcubed": mean - 0.01}

    scores = [s(0.5, 0.20), s(0.6, 0.90), s(0.7, 0.93), s(0.8, 0.925), s(0.9, 0.915),
              s(0.95, 0.70)]
    assert gcn.tolerant_theta(scores, 0.0) == 0.7
    assert gcn.tolerant_theta(scores, 0.01) == 0.8    # 0.915 is 0.015 below the best
    assert gcn.tolerant_theta(scores, 0.02) == 0.9
    assert gcn.tolerant_theta(scores, 0.5) == 0.95
    assert gcn.tolerant_theta([s(0.3, 0.5), s(0.4, 0.5)], 0.0) == 0.3  # ties: the lowest
    with pytest.raises(ValueError, match="≥ 0"):
        gcn.tolerant_theta(scores, -0.1)


def test_a_checkpoint_with_only_its_best_theta_still_gives_it(tmp_path):
    gcn.save_checkpoint(tmp_path / "old.pt", {"state_dict": {}, "config": {},
                                              "validation": {"theta": 0.83, "step": 10}})
    assert gcn.checkpoint_theta(tmp_path / "old.pt", 0.01) == 0.83


def test_theta_auto_needs_a_validated_gcn(clustered, tmp_path):
    x, labels, adj, ids = _graph(clustered)
    ckpt, info = gcn.train_gcn(x, adj, labels, {"steps": 5, "hidden": 16, "val_fraction": 0},
                               seed=0, device="cpu", candidates=ids)
    assert ckpt["validation"] is None and "validation" not in info
    gcn.save_checkpoint(tmp_path / "gcn.pt", ckpt)
    with pytest.raises(ValueError, match="val_fraction"):
        gcn.checkpoint_theta(tmp_path / "gcn.pt")
