"""Chinese whispers (dlib's ``chinese_whispers``) on the kNN graph: what dlib and
face_recognition users run to cluster faces.

Every kNN pair with cosine ≥ τ is an edge weighted by its cosine; dlib's implementation
passes labels along the weighted edges for 100 rounds (its default) in a random order from a
fixed seed.  face_recognition clusters at a Euclidean distance of 0.5 on dlib's own vectors
over all pairs; here the pairs come from the shared kNN artifact, so it scales.
"""

from __future__ import annotations

import numpy as np

from ..core.components import renumber, threshold_links
from ..core.params import number
from ..core.selection import THRESHOLD_GRID
from ..core.tunable import Knob, knn_method


def cluster(graph, settings: dict, threshold: float, threads: int = 1) -> np.ndarray:
    try:
        import dlib
    except ImportError as err:
        raise ImportError("chinese_whispers needs dlib: pip install dlib-bin") from err
    rows, cols, weights = threshold_links(graph.ids, graph.sims, float(threshold))
    pairs = rows < cols  # one edge per pair; dlib makes it undirected
    edges = list(zip(rows[pairs].tolist(), cols[pairs].tolist(),
                     np.maximum(weights[pairs], 1e-6).astype(float).tolist()))
    # dlib labels the vertices up to the largest one an edge names (a vertex without an
    # edge gets its own label); the faces after it are singletons too.
    found = np.asarray(dlib.chinese_whispers(edges), dtype=np.int64)
    labels = np.concatenate([found, found.size + np.arange(graph.n - found.size)])
    return renumber(labels)


METHOD = knn_method(
    "chinese_whispers", "Chinese whispers (dlib) on the kNN edges with cosine ≥ τ",
    Knob("threshold", 0.6, number(-1, 1), "τ: kNN pairs at cosine ≥ τ are edges",
         THRESHOLD_GRID),
    cluster,
    memory=(1000, 10), runtime=(10, 0.05),
)
