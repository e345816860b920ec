import numpy as np

from facecluster.graph import (adaptive_graph, chain_graph, from_arrays, graph_quality,
                               knn_graph_adjacency, threshold_graph, to_arrays)

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


def test_graph_quality_snr_and_round_trip():
    adj = adaptive_graph(IDS, np.array([2, 1, 3, 1]))
    q = graph_quality(adj, np.array([0, 0, 0, 1]))
    assert q["n_edges"] == 3 and q["correct_edges"] == 2 and q["noise_edges"] == 1
    assert q["snr"] == 2.0
    np.testing.assert_array_equal(dense(from_arrays(to_arrays(adj))), dense(adj))
