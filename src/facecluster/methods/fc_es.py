"""FC-ES (arXiv 2408.13431): neighbour-based edge probabilities with early stopping, then
Infomap.  Unsupervised; the base of the best published MS1M result (FC-ESER).

With d = 2 − 2·cos, each face's transition probabilities over its kNN list (itself
included) are p_il = exp(−d_il/σ) / Σ_l' exp(−d_il'/σ), σ = 0.5; the edge score of a pair is
the probability mass its two lists share,

    s_ij = Σ_{l ∈ N(i) ∩ N(j)} (p_il + p_jl) / 2,

computed for every pair of the kNN artifact in row blocks of sparse products (O(N·k²),
``core.sparse``).  Each face's list is walked in its original order, keeping the edge
i → j while s_ij ≥ θ and stopping at the first that fails (θ = 0.22); two-level directed
Infomap on the kept edges, weighted by s.
"""

from __future__ import annotations

import numpy as np

from ..core.communities import infomap_modules
from ..core.params import Param, Params, integer, number
from ..core.sparse import shared_neighbour_sums
from ..core.tunable import Knob, knn_method


def transition_probabilities(ids: np.ndarray, sims: np.ndarray, sigma: float) -> np.ndarray:
    """p (N, k): exp(−(2 − 2·cos)/σ) normalised over each list; 0 at padding (−1)."""
    valid = ids >= 0
    logits = np.where(valid, -(2.0 - 2.0 * sims.astype(np.float64)) / sigma, -np.inf)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def edge_scores(ids: np.ndarray, sims: np.ndarray, sigma: float = 0.5,
                threads: int | None = 1) -> np.ndarray:
    """s (N, k) float32: s_ij = Σ_{l ∈ N(i) ∩ N(j)} (p_il + p_jl)/2 for j = ids[i, c]; 0 at
    padding.

    Computed for the listed pairs only (``core.sparse.shared_neighbour_sums``), N·k² steps.
    """
    p = transition_probabilities(ids, sims, sigma)
    s = shared_neighbour_sums(ids, p, p, product=False, threads=threads,
                              what="FC-ES edge scores")
    return (0.5 * s).astype(np.float32)


def early_stopped_links(ids: np.ndarray, scores: np.ndarray, theta: float
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, s_ij) of the edges kept by walking each list in order (itself skipped) while
    s ≥ θ, stopping at the first edge below θ."""
    n = ids.shape[0]
    others = ids != np.arange(n)[:, None]
    ok = (scores >= theta) | ~others            # the face itself neither keeps nor stops
    ok &= ids >= 0
    walk = np.cumprod(ok, axis=1).astype(bool) & others
    rows, cols = np.nonzero(walk)
    return rows.astype(np.int64), ids[rows, cols].astype(np.int64), scores[rows, cols]


def cluster(graph, settings: dict, theta: float, threads: int = 1) -> np.ndarray:
    key = ("fc_es", settings["sigma"])
    if key not in graph.cache:  # calibration reuses the scores at every θ
        graph.cache[key] = edge_scores(graph.ids, graph.sims, settings["sigma"], threads)
    rows, cols, weights = early_stopped_links(graph.ids, graph.cache[key], float(theta))
    return infomap_modules(graph.n, rows, cols, np.maximum(weights, 1e-9), directed=True,
                           seed=settings["seed"])


METHOD = knn_method(
    "fc_es", "FC-ES: shared-neighbour edge probabilities, early stopping, Infomap",
    Knob("theta", 0.22, number(0, 1), "θ: keep edges while s ≥ θ (0.22: the paper's)",
         np.round(np.arange(0.0, 0.61, 0.02), 2)),
    cluster,
    Params(sigma=Param(0.5, number(exclusive_minimum=0), "σ of p = exp(−d/σ)"),
           seed=Param(0, integer(0), "Infomap's random seed")),
    threads="all", memory=(1000, 12), runtime=(10, 0.1),
)
