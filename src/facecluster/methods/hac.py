"""Hierarchical agglomerative clustering (scikit-learn) with the kNN graph as connectivity.

``AgglomerativeClustering(linkage, metric="cosine", connectivity=kNN graph)`` merges only
clusters joined by kNN pairs, and stops at the distance 1 − τ: the threshold is a cosine
similarity τ, so a larger τ merges less, as for every method here.  Average linkage by
default; the connectivity keeps the cost near N·k, though scikit-learn's tree still needs
memory beyond the kNN graph's (it does not run at MS1M scale: README).
"""

from __future__ import annotations

import numpy as np

from ..core.components import renumber
from ..core.params import Param, Params, choice, number
from ..core.sparse import similarity_graph
from ..core.tunable import Knob, knn_method


def cluster(graph, settings: dict, threshold: float, threads: int = 1) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if graph.n < 2:
        return np.zeros(graph.n, dtype=np.int32)
    connectivity = similarity_graph(graph.ids, graph.sims)
    connectivity.data[:] = 1.0
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=1.0 - float(threshold),
                                    metric="cosine", linkage=settings["linkage"],
                                    connectivity=connectivity)
    return renumber(model.fit_predict(graph.features))


METHOD = knn_method(
    "hac", "agglomerative clustering (scikit-learn) over the kNN graph, cut at cosine τ",
    Knob("threshold", 0.6, number(-1, 1),
         "τ: stop merging at cosine distance 1 − τ", np.round(np.arange(0.05, 0.96, 0.05), 2)),
    cluster,
    Params(linkage=Param("average", choice("average", "complete", "single"),
                         "the distance between two clusters: mean, largest or smallest")),
    needs_features=True, memory=(1000, 20), runtime=(10, 0.5),
)
