"""Hierarchical agglomerative clustering (scikit-learn) with the kNN graph as connectivity.

``AgglomerativeClustering(linkage, metric="cosine", connectivity=kNN graph)`` merges only
clusters joined by kNN pairs, and stops at the distance 1 − τ: the threshold is a cosine
similarity τ, so a larger τ merges less, as for every method here.  The full merge tree is
built once and cut at the threshold (calibration cuts the same tree at every τ).  Average linkage by
default; the connectivity keeps the cost near N·k, though scikit-learn's tree still needs
memory beyond the kNN graph's (it does not run at MS1M scale: README).
"""

from __future__ import annotations

import numpy as np

from ..core.components import renumber
from ..core.params import Param, Params, choice, number
from ..core.sparse import similarity_graph
from ..core.tunable import Knob, knn_method


def merge_tree(graph, linkage: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's full merge tree over the kNN connectivity: (children (M, 2), merge
    distances (M,)), built once per graph and cut at every threshold."""
    from sklearn.cluster import AgglomerativeClustering

    connectivity = similarity_graph(graph.ids, graph.sims)
    connectivity.data[:] = 1.0
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=0.0,
                                    compute_full_tree=True, metric="cosine", linkage=linkage,
                                    connectivity=connectivity)
    model.fit(graph.features)
    return model.children_, model.distances_


def cut(children: np.ndarray, distances: np.ndarray, n: int, threshold: float) -> np.ndarray:
    """The clusters of the merges below ``threshold`` (cosine distance): what scikit-learn's
    ``distance_threshold`` gives, read off the tree (average, complete and single linkage
    merge at non-decreasing distances)."""
    from ..core.components import components_from_edges

    node_leaf = np.empty(n + children.shape[0], dtype=np.int64)  # a leaf under each node
    node_leaf[:n] = np.arange(n)
    node_leaf[n:] = -1
    for m, (a, b) in enumerate(children):
        node_leaf[n + m] = node_leaf[a]
    keep = distances < threshold
    a, b = children[keep, 0], children[keep, 1]
    return components_from_edges(n, node_leaf[a], node_leaf[b])


def cluster(graph, settings: dict, threshold: float, threads: int = 1) -> np.ndarray:
    if graph.n < 2:
        return np.zeros(graph.n, dtype=np.int32)
    key = ("hac", settings["linkage"])
    if key not in graph.cache:  # calibration cuts one tree at every threshold
        graph.cache[key] = merge_tree(graph, settings["linkage"])
    children, distances = graph.cache[key]
    return renumber(cut(children, distances, graph.n, 1.0 - float(threshold)))


METHOD = knn_method(
    "hac", "agglomerative clustering (scikit-learn) over the kNN graph, cut at cosine τ",
    Knob("threshold", 0.6, number(-1, 1),
         "τ: stop merging at cosine distance 1 − τ", np.round(np.arange(0.05, 0.96, 0.05), 2)),
    cluster,
    Params(linkage=Param("average", choice("average", "complete", "single"),
                         "the distance between two clusters: mean, largest or smallest")),
    needs_features=True, memory=(1000, 20), runtime=(10, 0.5),
)
