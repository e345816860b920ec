"""Feature refinement: GFA's update against a dense computation, and verification ROC."""

import numpy as np
import pytest

from facecluster import registry
from facecluster.core.knn import knn_graph
from facecluster.core.verification import roc, sample_pairs
from facecluster.refiners.gfa import aggregate

from helpers import unit_rows


def test_gfa_equals_a_dense_computation():
    rng = np.random.default_rng(5)
    x = unit_rows(rng.normal(size=(50, 6)))
    ids, _, _ = knn_graph(x, k=8)
    k, t, gamma, steps = 5, 0.3, 0.5, 2
    f = x.astype(np.float64)
    for _ in range(steps):
        a = f @ f.T                                        # Eq. 5
        centre = np.zeros_like(f)
        for i in range(50):
            near = [j for j in ids[i, :k] if j == i or a[i, j] > t]   # Eq. 6, self kept
            centre[i] = f[near].mean(axis=0)
        f = f + gamma * (centre - f)                       # Eq. 2
        f /= np.linalg.norm(f, axis=1, keepdims=True)
    np.testing.assert_allclose(aggregate(x, ids, k, t, gamma, steps, block_bytes=1000), f,
                               atol=1e-5)


def test_gfa_is_a_registered_refiner_with_checked_settings():
    refiner = registry.get_refiner("gfa")
    assert refiner.params.resolve({"k": 10})["k"] == 10
    with pytest.raises(ValueError, match="gfa.gamma"):
        refiner.params.resolve({"gamma": 2}, where="gfa")
    with pytest.raises(KeyError, match="unknown refiner 'nope'"):
        registry.get_refiner("nope")


def test_verification_pairs_and_tpr_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 2])
    (si, sj), (di, dj) = sample_pairs(labels, max_pairs=1000)
    assert sorted(zip(si.tolist(), sj.tolist())) == [(0, 1), (0, 2), (1, 2), (3, 4)]
    assert (labels[di] != labels[dj]).all()
    # Same-identity pairs at cosine 1, different ones at 0: every FAR gets TPR 1.
    x = np.eye(3, dtype=np.float32)[labels]
    result = roc(x, labels, max_pairs=1000, fars=(1e-2,))
    assert result["n_same"] == 4 and result["points"][0]["tpr"] == 1.0
    many = np.repeat(np.arange(300), 3)
    (si, sj), _ = sample_pairs(many, max_pairs=100)
    assert si.size == 100 and (many[si] == many[sj]).all() and (si != sj).all()
