import numpy as np
import scipy.sparse as sp

import pytest

from facecluster.core.sparse import candidate_similarities
from facecluster.methods.adanets.linkage import (graph_cut, link_candidates,
                                 link_embeddings)


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


def test_candidate_similarities_hand_made():
    e = np.array([[2, 0], [0.6, 0.8], [0, 1], [-1, 0]], dtype=np.float32)  # row 0 not unit
    cands = np.array([[0, 1, 2], [1, 2, -1], [2, 1, 0], [3, 0, -1]])
    ids, sims = candidate_similarities(e, cands, k=2)
    np.testing.assert_array_equal(ids, cands[:, :2])
    np.testing.assert_allclose(sims, [[1, 0.6], [1, 0.8], [1, 0.8], [1, -1]], atol=1e-6)
    _, sims = candidate_similarities(e, cands, block=3)
    assert sims[1, 2] == -1 and sims[3, 2] == -1  # padding
    with pytest.raises(ValueError, match="do not match"):
        candidate_similarities(e[:3], cands)
    with pytest.raises(ValueError, match=r"\[-1, N\)"):
        candidate_similarities(e, cands + 1)


def test_link_candidates_links_only_candidate_pairs_above_theta():
    e = np.array([[1, 0], [0.6, 0.8], [0, 1], [0.99, 0.141]], dtype=np.float32)
    # 0 and 3 are close (cos 0.99) but not each other's candidates: not linked.
    cands = np.array([[0, 1], [1, 2], [2, 1], [3, 2]])
    labels, meta = link_candidates(e, cands, theta=0.7, k=2)
    np.testing.assert_array_equal(labels, [0, 1, 1, 2])
    assert meta["neighbours"] == "candidates" and meta["k"] == 2
    # With the full candidate lists it equals the search over the same neighbours.
    full = np.argsort(-(e @ e.T), axis=1)
    np.testing.assert_array_equal(link_candidates(e, full, theta=0.5)[0],
                                  link_embeddings(e, theta=0.5, k=4)[0])
