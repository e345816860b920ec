"""Ada-NETS candidate-neighbour quality and k_off labels (Eq. 3-4), on labeled data.

Walking vertex i's candidates in structure-space order, the first j of them (j = 1..k) have

    Pr_j = h_j / j,  Rc_j = h_j / n_i,  Q(j) = F_β = (1 + β²)·Pr_j·Rc_j / (β²·Pr_j + Rc_j)  (Eq. 3)

with h_j the number of them sharing i's label and n_i the size of i's class in the whole set;
k_off = argmax_j Q(j) (Eq. 4), the first maximum, as a count in 1..k.

Substituting, Q(j) = (1 + β²)·h_j / (β²·n_i + j): one division, computed in float64, so two sizes
with the same exact F_β give the same float (for β² = 0.25, 1, 4 every term is exact) and the
first maximum is the true first maximum, not a rounding accident. Q = 0 when h_j = 0.

The vertex itself is counted. The candidate list is the kNN row, which holds i first (the
project's kNN convention, METHODS §Ada-NETS); the paper defines "candidate neighbours of size j"
as "the j nearest neighbour vertices ..., where j = 1, 2, ..., k" without excluding i, and its
reference code (tool/max_Q_ind.py) scores position 1 as a hit and counts i in its class size.
So Q(1) = (1 + β²)/(β²·n_i + 1), and k_off = 1 means "no neighbour but itself".

A -1 id pads a short row: it is no candidate, so it adds to neither h_j nor j and Q stays flat
over the padding; the first maximum therefore never falls on it.
"""

from __future__ import annotations

import numpy as np

from ...core.progress import Progress

# Rows per block: keeps the float64 temporaries of a block around 100 MB at k = 80.
BLOCK_ROWS = 1 << 16


def _check(cand_ids, labels, beta: float) -> tuple[np.ndarray, np.ndarray]:
    cand_ids = np.asarray(cand_ids)
    labels = np.asarray(labels)
    if cand_ids.ndim != 2:
        raise ValueError(f"cand_ids must be 2-D (N, k), got shape {cand_ids.shape}")
    if not np.issubdtype(cand_ids.dtype, np.integer):
        raise TypeError(f"cand_ids must be integers, got {cand_ids.dtype}")
    if labels.ndim != 1 or len(labels) < cand_ids.shape[0]:
        raise ValueError(f"labels must be 1-D with at least {cand_ids.shape[0]} entries "
                         f"(one per vertex), got shape {labels.shape}")
    if cand_ids.size and (cand_ids.min() < -1 or cand_ids.max() >= len(labels)):
        raise ValueError(f"cand_ids must lie in -1..{len(labels) - 1}")
    if not (np.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta = {beta} must be a finite number ≥ 0")
    return cand_ids, labels


def _class_sizes(labels: np.ndarray, n: int, class_sizes=None) -> np.ndarray:
    """Size of each of the first n vertices' class, counted over the whole ``labels``."""
    if class_sizes is None:
        _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        return counts[inverse[:n]].astype(np.int64)
    sizes = np.asarray(class_sizes, dtype=np.int64)
    if sizes.shape != (n,):
        raise ValueError(f"class_sizes must have one entry per row of cand_ids ({n},), "
                         f"got {sizes.shape}")
    if n and sizes.min() < 1:
        raise ValueError("class_sizes must be ≥ 1 (a vertex belongs to its own class)")
    return sizes


def _curve(cand: np.ndarray, labels: np.ndarray, own: np.ndarray, sizes: np.ndarray,
           beta: float) -> np.ndarray:
    """Q(j) for j = 1..k of a block of rows, float64 (rows, k)."""
    valid = cand >= 0
    hit = valid & (labels[np.maximum(cand, 0)] == own[:, None])
    hits = np.cumsum(hit, axis=1, dtype=np.int64)      # h_j
    seen = np.cumsum(valid, axis=1, dtype=np.int64)    # j, padding not counted
    beta2 = float(beta) ** 2
    num = (1.0 + beta2) * hits
    den = beta2 * sizes[:, None] + seen
    return np.divide(num, den, out=np.zeros(num.shape), where=hits > 0)


def _blocks(n: int, what: str):
    progress = Progress(n, what)
    for start in range(0, n, BLOCK_ROWS):
        stop = min(n, start + BLOCK_ROWS)
        yield start, stop
        progress.update(stop - start)


def quality_curve(cand_ids, labels, beta: float, class_sizes=None) -> np.ndarray:
    """Q(j) of Eq. 3 for j = 1..k: float32 (N, k).

    Parameters
    ----------
    cand_ids : int (N, k)
        Row i: vertex i's candidates in the order to walk (structure-space order), i first;
        -1 pads a short row.
    labels : int (≥ N,)
        Identity label of every vertex the ids refer to; row i of ``cand_ids`` is vertex i.
    beta : float
        β of the F_β-score; β < 1 weighs precision more, β > 1 recall.
    class_sizes : int (N,), optional
        Size of vertex i's class in the whole set (with i). Default: counted in ``labels``.
    """
    cand_ids, labels = _check(cand_ids, labels, beta)
    n = cand_ids.shape[0]
    sizes = _class_sizes(labels, n, class_sizes)
    out = np.empty(cand_ids.shape, dtype=np.float32)
    for a, b in _blocks(n, "quality curve"):
        out[a:b] = _curve(cand_ids[a:b], labels, labels[a:b], sizes[a:b], beta)
    return out


def k_off_labels(cand_ids, labels, beta: float, class_sizes=None) -> np.ndarray:
    """k_off = argmax_j Q(j) (Eq. 4), the first maximum, as a count in 1..k: int32 (N,).

    Arguments as in :func:`quality_curve`. The argmax is taken on float64 values, so sizes
    whose Q differ only past float32 precision are still told apart.
    """
    cand_ids, labels = _check(cand_ids, labels, beta)
    n, k = cand_ids.shape
    if k == 0:
        raise ValueError("cand_ids has no columns: k_off needs k ≥ 1")
    sizes = _class_sizes(labels, n, class_sizes)
    out = np.empty(n, dtype=np.int32)
    for a, b in _blocks(n, "k_off labels"):
        q = _curve(cand_ids[a:b], labels, labels[a:b], sizes[a:b], beta)
        out[a:b] = np.argmax(q, axis=1) + 1  # np.argmax returns the first maximum
    return out


def neighbour_quality(cand_ids, labels, k_off, beta: float, class_sizes=None) -> dict:
    """Graph quality of Table 4: mean Q over vertices at size k and at each vertex's k_off.

    Returns ``{"q_before": mean Q(k), "q_after": mean Q(k_off_i)}``; ``k_off`` is an integer
    array (N,) in 1..k, e.g. the adaptive filter's rounded prediction or :func:`k_off_labels`.
    """
    cand_ids, labels = _check(cand_ids, labels, beta)
    n, k = cand_ids.shape
    k_off = np.asarray(k_off)
    if k_off.shape != (n,):
        raise ValueError(f"k_off must have shape ({n},), got {k_off.shape}")
    if not np.issubdtype(k_off.dtype, np.integer):
        raise TypeError(f"k_off must be integers (round a prediction first), got {k_off.dtype}")
    if n and (k_off.min() < 1 or k_off.max() > k):
        raise ValueError(f"k_off must lie in 1..{k}")
    if n == 0:
        return {"q_before": float("nan"), "q_after": float("nan")}
    sizes = _class_sizes(labels, n, class_sizes)
    before = after = 0.0
    for a, b in _blocks(n, "neighbour quality"):
        q = _curve(cand_ids[a:b], labels, labels[a:b], sizes[a:b], beta)
        before += float(q[:, -1].sum())
        after += float(np.take_along_axis(q, (k_off[a:b, None] - 1).astype(np.intp),
                                          axis=1).sum())
    return {"q_before": before / n, "q_after": after / n}
