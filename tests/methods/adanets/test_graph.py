import numpy as np

import pytest

from facecluster.core import io
from facecluster.core.metrics import graph_quality
from facecluster.methods.adanets.graph import (adaptive_graph, build, chain_graph,
                                               knn_graph_adjacency, threshold_graph)

IDS = np.array([[0, 1, 2], [1, 2, 0], [2, 1, 3], [3, 2, -1]], dtype=np.int32)
SIMS = np.array([[1, .9, .5], [1, .8, .9], [1, .8, .6], [1, .6, -1]], dtype=np.float32)


def dense(adj):
    return adj.toarray().astype(int)


def test_adaptive_graph_is_eq_6_7():
    # k_off counts the vertex itself first: 0 keeps {0,1}; 1 keeps {1}; 2 keeps {2,1,3}; 3 keeps {3}.
    adj = adaptive_graph(IDS, np.array([2, 1, 3, 1]))
    expected = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]])
    np.testing.assert_array_equal(dense(adj), expected)


def test_graphs_are_symmetric_with_self_loops():
    rng = np.random.default_rng(0)
    n, k = 60, 8
    ids = np.column_stack([np.arange(n), rng.integers(0, n, size=(n, k - 1))]).astype(np.int32)
    sims = np.sort(rng.uniform(0, 1, size=(n, k)), axis=1)[:, ::-1].astype(np.float32)
    sims[:, 0] = 1
    for adj in (adaptive_graph(ids, rng.integers(1, k + 1, n)), knn_graph_adjacency(ids, 4),
                threshold_graph(ids, sims, 0.5), chain_graph(ids, sims, 0.3)):
        d = dense(adj)
        np.testing.assert_array_equal(d, d.T)
        np.testing.assert_array_equal(np.diag(d), 1)
        assert set(np.unique(d)) <= {0, 1}


def test_threshold_and_knn_builders():
    # At 0.85 only 0→1 (.9) and 1→0 (.9) pass.
    np.testing.assert_array_equal(dense(threshold_graph(IDS, SIMS, 0.85)),
                                  [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(dense(knn_graph_adjacency(IDS, 2)),
                                  [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]])


def test_chain_needs_rising_density():
    # Densities (mean cosine to the first 2 neighbours): 0: .7, 1: .85, 2: .7, 3: .6
    adj = chain_graph(IDS, SIMS, threshold=0.55, density_k=2)
    # 0 takes 1 (denser) then not 2 (less dense than 1); 1 takes nobody denser; 2 takes 1; 3 takes 2.
    np.testing.assert_array_equal(dense(adj), [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]])


def test_graph_quality_snr_and_round_trip(tmp_path):
    adj = adaptive_graph(IDS, np.array([2, 1, 3, 1]))
    q = graph_quality(adj, np.array([0, 0, 0, 1]))
    assert q["n_edges"] == 3 and q["correct_edges"] == 2 and q["noise_edges"] == 1
    assert q["snr"] == 2.0
    clean = graph_quality(adj, np.array([0, 0, 0, 0]))
    assert clean["noise_edges"] == 0 and clean["snr"] is None, "no noise edge: no finite SNR"
    io.write_csr(tmp_path / "g.h5", adj, q)
    np.testing.assert_array_equal(dense(io.read_csr(tmp_path / "g.h5")), dense(adj))


def test_build_dispatches_to_each_builder():
    k_hat = np.array([2, 1, 3, 1])
    np.testing.assert_array_equal(dense(build("adaptive", IDS, SIMS, k_hat=k_hat)),
                                  dense(adaptive_graph(IDS, k_hat)))
    np.testing.assert_array_equal(dense(build("knn", IDS, SIMS, k=2)),
                                  dense(knn_graph_adjacency(IDS, 2)))
    np.testing.assert_array_equal(dense(build("threshold", IDS, SIMS, threshold=0.85)),
                                  dense(threshold_graph(IDS, SIMS, 0.85)))
    with pytest.raises(ValueError, match="needs k̂_off"):
        build("adaptive", IDS, SIMS)
    with pytest.raises(ValueError, match="unknown graph builder"):
        build("star", IDS, SIMS)
