"""The floor every method must beat: the thresholded kNN graph cut into connected components.

Item i is linked to each neighbour j of its kNN list whose cosine similarity is at least the
threshold τ; clusters are the connected components of the undirected graph so formed.
``threshold: auto`` chooses τ on the labeled train part (``core.tunable``).
"""

from __future__ import annotations

from ..core import selection
from ..core.components import link_threshold
from ..core.params import number
from ..core.selection import THRESHOLD_GRID
from ..core.tunable import Knob, knn_method


def cluster(graph, settings: dict, threshold: float, threads: int = 1):
    """Connected components of the kNN edges with cosine ≥ ``threshold``: labels (N,)."""
    return link_threshold(graph.ids, graph.sims, float(threshold))


METHOD = knn_method(
    "knn_threshold", "thresholded kNN graph, connected components (the baseline)",
    # Single linkage: F falls off a cliff just below the best τ, and on the evaluation
    # matrix the best τ at the part's size lost 6.5 points on one pair where the top of the
    # plateau did not (mean F 86.67 against 86.85 over 11 pairs): auto keeps the plateau top.
    Knob("threshold", 0.6, number(-1, 1), "τ: keep kNN edges with cosine ≥ τ", THRESHOLD_GRID,
         tolerance=selection.TOLERANCE),
    cluster,
)
