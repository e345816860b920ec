"""HDBSCAN (scikit-learn) on the kNN graph's cosine distances: what LibrePhotos and Nextcloud
Recognize users run.

The distances are the sparse matrix of 1 − cosine between each face and its kNN list
(symmetrised), given to ``sklearn.cluster.HDBSCAN(metric="precomputed")``: pairs outside the
lists are infinitely far, so the cost stays near N·k instead of N² (scikit-learn's own trees
do not help at D = 256).  Faces HDBSCAN leaves as noise (label −1) become singletons.
scikit-learn refuses a graph in several pieces; the pieces are chained by edges at cosine
distance 2, the largest there is, which stands for "infinitely far": each piece is then
clustered as it would be alone.
"""

from __future__ import annotations

import numpy as np

from ..core.components import noise_to_singletons
from ..core.params import Param, Params, choice, integer, nullable, number
from ..core.sparse import distance_graph
from ..core.tunable import Knob, knn_method


def cluster(graph, settings: dict, min_cluster_size: float, threads: int = 1) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    if graph.n < 2:
        return np.zeros(graph.n, dtype=np.int32)
    # A face's core distance needs min_samples neighbours, and its list holds k − 1.
    min_samples = min(settings["min_samples"] or int(min_cluster_size), graph.ids.shape[1] - 1)
    model = HDBSCAN(min_cluster_size=int(min_cluster_size), min_samples=max(1, min_samples),
                    cluster_selection_epsilon=settings["cluster_selection_epsilon"],
                    cluster_selection_method=settings["cluster_selection_method"],
                    metric="precomputed", copy=True)
    return noise_to_singletons(model.fit_predict(connected(distance_graph(graph.ids, graph.sims))))


def connected(distances):
    """``distances`` (sparse, symmetric) with its connected components chained by edges at
    distance 2 between their first items."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    count, labels = connected_components(distances, directed=False)
    if count == 1:
        return distances
    _, first = np.unique(labels, return_index=True)
    a, b = first[:-1], first[1:]
    bridges = sp.csr_matrix((np.full(2 * a.size, 2.0), (np.r_[a, b], np.r_[b, a])),
                            shape=distances.shape)
    return (distances + bridges).tocsr()


METHOD = knn_method(
    "hdbscan", "HDBSCAN (scikit-learn) on the kNN cosine distances; noise → singletons",
    Knob("min_cluster_size", 5, integer(2),
         "the smallest group HDBSCAN calls a cluster (5: scikit-learn's default)",
         [2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30]),
    cluster,
    Params(
        min_samples=Param(None, nullable(integer(1)),
                          "neighbours that make a core face; null: min_cluster_size (at most "
                          "k − 1, the neighbours a kNN list holds)"),
        cluster_selection_epsilon=Param(0.0, number(0), "merge clusters closer than this "
                                                        "(cosine distance)"),
        cluster_selection_method=Param("eom", choice("eom", "leaf"),
                                       "eom: excess of mass | leaf: the finest clusters"),
    ),
    memory=(1000, 10), runtime=(10, 0.2),
)
