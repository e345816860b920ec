"""Face verification from labels: TPR at fixed FAR over same/different-identity pairs.

Every same-identity pair (up to ``max_pairs``, sampled beyond) and a random sample of
different-identity pairs are scored by cosine; the ROC is read off the two score
distributions: at FAR f the threshold is the (1 − f) quantile of the different-identity
scores, and TPR the share of same-identity scores above it (METHODS.md, GFA).
"""

from __future__ import annotations

import numpy as np

FARS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def sample_pairs(labels: np.ndarray, max_pairs: int, seed: int = 0
                 ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((i, j) same-identity pairs, (i, j) different-identity pairs): all same pairs, or
    ``max_pairs`` drawn at random when there are more; ``max_pairs`` different pairs drawn
    at random (pairs i < j, no pair with itself)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    _, starts, sizes = np.unique(labels[order], return_index=True, return_counts=True)
    total_same = int((sizes * (sizes - 1) // 2).sum())
    if total_same <= max_pairs:
        same_i, same_j = [], []
        for start, size in zip(starts[sizes > 1], sizes[sizes > 1]):
            a, b = np.triu_indices(size, k=1)
            same_i.append(order[start + a])
            same_j.append(order[start + b])
        same = (np.concatenate(same_i), np.concatenate(same_j)) if same_i else \
            (np.zeros(0, np.int64), np.zeros(0, np.int64))
    else:  # a random pair within a class drawn in proportion to the class's pairs
        weights = sizes * (sizes - 1) / 2 / total_same
        cls = rng.choice(sizes.size, size=max_pairs, p=weights)
        a = rng.integers(0, sizes[cls])
        b = (a + 1 + rng.integers(0, sizes[cls] - 1)) % sizes[cls]
        same = (order[starts[cls] + a], order[starts[cls] + b])
    n = labels.size
    i = rng.integers(0, n, size=max_pairs)
    j = rng.integers(0, n, size=max_pairs)
    keep = labels[i] != labels[j]
    return same, (i[keep], j[keep])


def pair_scores(features: np.ndarray, i: np.ndarray, j: np.ndarray,
                block: int = 1 << 20) -> np.ndarray:
    """Cosine of each pair (i[e], j[e]) of unit rows, in blocks."""
    out = np.empty(i.size, dtype=np.float32)
    for start in range(0, i.size, block):
        a, b = i[start:start + block], j[start:start + block]
        out[start:start + block] = np.einsum("ij,ij->i", features[a], features[b])
    return out


def roc(features: np.ndarray, labels: np.ndarray, max_pairs: int = 2_000_000,
        seed: int = 0, fars=FARS) -> dict:
    """TPR at each FAR of ``fars`` for (N, D) unit rows and (N,) labels: a dict with
    ``points`` [{far, threshold, tpr}], ``n_same``, ``n_different``.  A FAR below
    1/n_different cannot be measured: its point is left out."""
    (si, sj), (di, dj) = sample_pairs(labels, max_pairs, seed)
    same = pair_scores(features, si, sj)
    diff = np.sort(pair_scores(features, di, dj))
    points = []
    for far in fars:
        if diff.size == 0 or far * diff.size < 1:
            continue
        threshold = float(diff[min(diff.size - 1, int(np.ceil((1 - far) * diff.size)) - 1)])
        points.append({"far": far, "threshold": threshold,
                       "tpr": float((same > threshold).mean()) if same.size else float("nan")})
    return {"points": points, "n_same": int(same.size), "n_different": int(diff.size)}
