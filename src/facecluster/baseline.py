"""The floor every method must beat: the thresholded kNN graph cut into connected components.

Item i is linked to each neighbour j in kNN(i) whose cosine similarity is at
least the threshold τ; clusters are the connected components of the
undirected graph so formed (scipy).
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
