"""Graph-based unsupervised feature aggregation (GFA, ICCVW 2019): every face moves toward
the mean of its close neighbours, and the features are re-normalised, T times.

    F^t = F^{t−1} + γ (C*^{t−1} − F^{t−1})                         (Eq. 2)
    C*_i = mean of F_j over j ∈ kNN_K(i) with A_ij = F_i·F_j > t   (Eq. 5-6)

K = 15 and t = 0.55-0.75 are the paper's ranges.  What the paper leaves open, as options:
γ (0.5 here) and T (2); each face's list holds itself (A_ii = 1 > t), so C*_i is never
empty; the neighbours are those of the first kNN graph, and their similarities are taken
afresh from the current features at every iteration (a new search per iteration would
cost a kNN graph each time).
"""

from __future__ import annotations

import numpy as np

from ..core.contract import Refiner
from ..core.params import Param, Params, integer, number
from ..core.progress import log


def aggregate(features: np.ndarray, ids: np.ndarray, k: int, threshold: float, gamma: float,
              iterations: int, block_bytes: int = 64 << 20) -> np.ndarray:
    """The refined features (N, D) float32, unit rows, from unit rows ``features`` and the kNN
    lists ``ids`` (N, ≥k), self first, −1 padding.  Rows go in blocks whose gathered
    neighbours take about ``block_bytes``."""
    f = np.ascontiguousarray(features, dtype=np.float32)
    ids = np.asarray(ids)[:, :k]
    block = max(1, block_bytes // (4 * ids.shape[1] * f.shape[1]))
    valid = ids >= 0
    safe = np.where(valid, ids, 0)
    for t in range(iterations):
        new = np.empty_like(f)
        moved = 0
        for start in range(0, f.shape[0], block):
            rows = slice(start, start + block)
            nbrs = f[safe[rows]]                                    # (b, k, D)
            sims = np.einsum("bd,bkd->bk", f[rows], nbrs)
            keep = valid[rows] & (sims > threshold)
            keep[:, 0] |= valid[rows][:, 0]                         # the face itself
            centre = (nbrs * keep[..., None]).sum(axis=1) / keep.sum(axis=1, keepdims=True)
            step = f[rows] + gamma * (centre - f[rows])
            new[rows] = step / np.maximum(np.linalg.norm(step, axis=1, keepdims=True), 1e-12)
            moved += int((keep.sum(axis=1) > 1).sum())
        f = new
        log.info("GFA iteration %d: %d of %d faces had a neighbour above %.2f", t + 1, moved,
                 f.shape[0], threshold)
    return f


def refine(features, ids, sims, settings: dict) -> np.ndarray:
    return aggregate(features, ids, settings["k"], settings["threshold"], settings["gamma"],
                     settings["iterations"])


REFINER = Refiner(
    name="gfa",
    doc="graph-based feature aggregation (ICCVW 2019): each face toward its close neighbours",
    params=Params(
        k=Param(15, integer(1), "K: the neighbours of the kNN graph a face averages over"),
        threshold=Param(0.65, number(-1, 1), "t: only neighbours at cosine > t"),
        gamma=Param(0.5, number(exclusive_minimum=0, maximum=1),
                    "γ: the step toward the pseudo-centre (open in the paper)"),
        iterations=Param(2, integer(1), "T: how many steps (open in the paper)"),
    ),
    run=refine,
)
