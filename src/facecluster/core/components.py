"""Clusters as connected components: the one components helper every method links through.

``components_from_edges`` labels the connected components of an undirected edge list
(scipy), numbered by each component's smallest item so that equal partitions give equal
label arrays whatever the edge order.  ``threshold_edges`` and ``link_threshold`` are the
thresholded kNN graph: item i linked to each neighbour j of its list whose similarity is at
least τ (or strictly above it), the floor every method must beat.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components


def components_from_edges(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Cluster labels int32 (n,) of the connected components of the edges (rows[e], cols[e]).

    Labels are 0..C-1, numbered in order of each component's smallest item.  Raises
    ValueError when an edge names an item outside 0..n-1.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    if rows.shape != cols.shape:
        raise ValueError(f"edge ends differ in shape: {rows.shape} and {cols.shape}")
    if rows.size and (min(rows.min(), cols.min()) < 0 or max(rows.max(), cols.max()) >= n):
        raise ValueError(f"edges must join items in 0..{n - 1}")
    graph = sp.coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=True, connection="weak")
    return renumber(labels)


def renumber(labels: np.ndarray) -> np.ndarray:
    """The same partition as int32 labels 0..C-1, numbered by each cluster's first item."""
    labels = np.asarray(labels)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.ravel()].astype(np.int32)


def threshold_links(ids: np.ndarray, sims: np.ndarray, threshold: float, strict: bool = False
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Links (i, j, similarity) for every neighbour j ≠ i of i with similarity ≥
    ``threshold`` (> with ``strict``); ``ids`` (N, k) int with −1 padding, ``sims`` (N, k)."""
    n, k = ids.shape
    if strict:  # the smallest float32 above τ is the inclusive threshold
        threshold = float(np.nextafter(np.float32(threshold), np.float32(2)))
    keep = ((sims >= threshold) & (ids >= 0) & (ids != np.arange(n)[:, None])).ravel()
    rows = np.repeat(np.arange(n, dtype=np.int64), k)[keep]
    return rows, ids.ravel()[keep].astype(np.int64), sims.ravel()[keep]


def threshold_edges(ids: np.ndarray, sims: np.ndarray, threshold: float, strict: bool = False
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The (i, j) of ``threshold_links``."""
    rows, cols, _ = threshold_links(ids, sims, threshold, strict)
    return rows, cols


def link_threshold(ids: np.ndarray, sims: np.ndarray, threshold: float,
                   strict: bool = False) -> np.ndarray:
    """Connected components of the kNN lists kept at similarity ≥ ``threshold`` (> with
    ``strict``): cluster labels int32 (N,)."""
    rows, cols = threshold_edges(ids, sims, threshold, strict)
    return components_from_edges(ids.shape[0], rows, cols)


def noise_to_singletons(labels: np.ndarray) -> np.ndarray:
    """Labels with every −1 (noise) given a cluster of its own, renumbered."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    noise = labels < 0
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(int(noise.sum()))
    return renumber(labels)
