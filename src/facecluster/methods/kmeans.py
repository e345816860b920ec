"""k-means (faiss, spherical) on the face embeddings: the classic baseline, given the number
of clusters or a number per face.

The number of clusters is ``n_clusters`` when set, else ``cluster_ratio`` · N (clusters per
face): a ratio carries over from the train part to a test part of another size, which a
count does not, so ``auto`` chooses the ratio on the labeled train part.  Centroids are
kept unit length (spherical k-means, i.e. cosine); each face goes to its nearest centroid.
"""

from __future__ import annotations

import numpy as np

from ..core import selection
from ..core.components import renumber
from ..core.params import Param, Params, integer, nullable, number
from ..core.tunable import Knob, knn_method


def cluster(graph, settings: dict, cluster_ratio: float, threads: int = 1) -> np.ndarray:
    import faiss

    x = np.ascontiguousarray(graph.features, dtype=np.float32)
    n, d = x.shape
    k = settings["n_clusters"] or int(round(float(cluster_ratio) * n))
    k = int(min(max(k, 1), n))
    faiss.omp_set_num_threads(max(1, int(threads)))
    km = faiss.Kmeans(d, k, niter=settings["iterations"], seed=settings["seed"] + 1,
                      spherical=True, verbose=False, min_points_per_centroid=1,
                      max_points_per_centroid=max(256, -(-n // k)))
    km.train(x)
    _, assign = km.index.search(x, 1)
    return renumber(assign[:, 0])


METHOD = knn_method(
    "kmeans", "spherical k-means (faiss) with a number of clusters per face",
    Knob("cluster_ratio", 0.1, number(exclusive_minimum=0, maximum=1),
         "clusters per face, K = ratio · N (0.1: ten faces a person on average)",
         [0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5],
         # On the evaluation matrix the best ratio at the part's size lost 9.8 points on one
         # pair (mean F 56.73 against 57.46 with the plateau top): auto keeps the plateau top.
         tolerance=selection.TOLERANCE),
    cluster,
    Params(
        n_clusters=Param(None, nullable(integer(1)), "a fixed number of clusters (over "
                                                      "cluster_ratio)"),
        iterations=Param(20, integer(1), "k-means iterations"),
        seed=Param(0, integer(0), "seed of the initial centroids"),
    ),
    needs_features=True, threads="all", memory=(1000, 4), runtime=(10, 0.2),
)
