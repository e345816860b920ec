"""DBSCAN (scikit-learn) on the kNN graph's cosine distances: the clustering photo libraries
run (Immich: a face with 3 matches within cosine distance 0.5 starts a person; PhotoPrism).

The threshold is a cosine similarity τ, so that a larger τ links less, as for every method
here: scikit-learn's ``eps`` is 1 − τ.  Distances are the sparse kNN graph's (see
``core.sparse.distance_graph``): a face's neighbourhood is its kNN list.  Noise → singletons.
"""

from __future__ import annotations

import numpy as np

from ..core import selection
from ..core.components import noise_to_singletons
from ..core.params import Param, Params, integer, number
from ..core.selection import THRESHOLD_GRID
from ..core.sparse import distance_graph
from ..core.tunable import Knob, knn_method


def cluster(graph, settings: dict, threshold: float, threads: int = 1) -> np.ndarray:
    from sklearn.cluster import DBSCAN

    eps = max(1.0 - float(threshold), 1e-9)
    model = DBSCAN(eps=eps, min_samples=settings["min_samples"], metric="precomputed",
                   n_jobs=threads)
    return noise_to_singletons(model.fit_predict(distance_graph(graph.ids, graph.sims)))


METHOD = knn_method(
    "dbscan", "DBSCAN (scikit-learn) on the kNN cosine distances; noise → singletons",
    Knob("threshold", 0.5, number(-1, 1),
         "τ: neighbours at cosine ≥ τ (eps = 1 − τ; 0.5: Immich's maximum distance 0.5)",
         THRESHOLD_GRID,
         # Chains like single linkage: on the evaluation matrix the best τ at the part's size
         # lost 6.4 points on one pair (mean F 86.12 against 86.27 with the plateau top).
         tolerance=selection.TOLERANCE),
    cluster,
    Params(min_samples=Param(3, integer(1), "faces within reach (itself included) that make "
                                            "a core face (Immich: 3)")),
    memory=(1000, 10), runtime=(10, 0.05),
)
