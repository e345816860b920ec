import numpy as np
import scipy.sparse as sp

from facecluster.linkage import graph_cut, link_embeddings


def test_linkage_is_deterministic_and_uses_strict_theta(clustered):
    x, labels = clustered
    a, meta = link_embeddings(x, theta=0.7, k=10)
    b, _ = link_embeddings(x[::-1].copy(), theta=0.7, k=10)
    # Reordering the items relabels clusters but keeps the partition.
    b = b[::-1]
    pairs_a = a[:, None] == a[None, :]
    pairs_b = b[:, None] == b[None, :]
    np.testing.assert_array_equal(pairs_a, pairs_b)
    np.testing.assert_array_equal(a, link_embeddings(x, theta=0.7, k=10)[0])
    assert meta["theta"] == 0.7


def test_theta_is_strict():
    e = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)  # cos(0,1) = 0.6, cos(1,2) = 0.8
    assert len(set(link_embeddings(e, theta=0.6, k=3)[0])) == 2   # 0.6 is not > 0.6
    assert len(set(link_embeddings(e, theta=0.59, k=3)[0])) == 1


def test_graph_cut_cuts_low_cosine_edges():
    x = np.array([[1, 0], [0.9, 0.436], [0, 1], [0.1, 0.995]], dtype=np.float32)
    adj = sp.csr_matrix(np.ones((4, 4), dtype=np.float32))
    labels = graph_cut(adj, x, threshold=0.8)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
