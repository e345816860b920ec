"""The floor every method must beat: the thresholded kNN graph cut into connected components.

Item i is linked to each neighbour j in kNN(i) whose cosine similarity is at
least the threshold τ; clusters are the connected components of the
undirected graph so formed (scipy).

``threshold: auto`` calibrates τ on the labeled training split: the τ of a grid
with the best mean of F_P and F_B there is the one used on the test split (the
same held-out choice the Ada-NETS GCN makes for θ, so both are tuned alike).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components


def components_from_edges(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Cluster labels 0..C-1 of the connected components of an undirected edge list.

    Labels are numbered in order of each component's smallest item, so the
    result does not depend on edge order.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    graph = sp.coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=True, connection="weak")
    # Renumber by first appearance so equal partitions give equal label arrays.
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[labels].astype(np.int32)


def threshold_edges(ids: np.ndarray, sims: np.ndarray, threshold: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Edges (i, j) for every neighbour j of i with similarity ≥ ``threshold`` (self excluded)."""
    n, k = ids.shape
    keep = (sims >= threshold) & (ids >= 0) & (ids != np.arange(n)[:, None])
    rows = np.repeat(np.arange(n, dtype=np.int64), k)[keep.ravel()]
    cols = ids.ravel()[keep.ravel()].astype(np.int64)
    return rows, cols


def knn_threshold_clusters(ids: np.ndarray, sims: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components of the kNN graph kept at cosine ≥ ``threshold``."""
    rows, cols = threshold_edges(ids, sims, threshold)
    return components_from_edges(ids.shape[0], rows, cols)


# The τ grid a calibration searches: 0.00, 0.01, ..., 0.99.
THRESHOLD_GRID = np.round(np.arange(0.0, 0.995, 0.01), 2)


def threshold_scores(ids: np.ndarray, sims: np.ndarray, labels: np.ndarray,
                     thresholds: np.ndarray = THRESHOLD_GRID, strict: bool = False) -> list[dict]:
    """F_P and F_B of the thresholded kNN graph at each threshold, against ``labels``.

    ``strict`` links pairs with similarity > τ (the Ada-NETS linkage) instead of ≥ τ.
    """
    from .metrics import bcubed_prf, pairwise_prf

    scores = []
    for t in thresholds:
        cut = float(np.nextafter(np.float32(t), np.float32(2))) if strict else float(t)
        pred = knn_threshold_clusters(ids, sims, cut)
        scores.append({"threshold": float(t), "f_pairwise": pairwise_prf(labels, pred)[2],
                       "f_bcubed": bcubed_prf(labels, pred)[2]})
    return scores


def plateau_top(scores: list[dict], key: str, tolerance: float = 0.0) -> dict:
    """The entry with the largest ``key`` whose mean of F_P and F_B is within
    ``tolerance`` of the best mean; ``tolerance = 0``: the best entry (the lowest ``key``
    on ties).

    Scored on labeled data, F falls steeply below the best threshold (chaining merges
    identities) and gently above it (identities split).  Single linkage chains more as
    the set to cluster grows, so the steep side moves up with N: the top of the plateau
    carries over to larger sets where the best threshold does not (README, Performance).
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be ≥ 0, got {tolerance}")
    means = [(s["f_pairwise"] + s["f_bcubed"]) / 2 for s in scores]
    best = max(means)
    if tolerance == 0:
        return scores[means.index(best)]
    return max((s for s, m in zip(scores, means) if m >= best - tolerance), key=lambda s: s[key])


def best_threshold(scores: list[dict], tolerance: float = 0.0) -> dict:
    """The calibrated τ's entry: ``plateau_top`` over thresholds."""
    return plateau_top(scores, "threshold", tolerance)
