"""Graph building for the GCN (Ada-NETS Eq. 6-7) and the builders it is compared with.

Every builder picks, for each vertex i, a set of neighbours from its candidate
list (original kNN or structure-space order, i itself first); the graph links i
and j when either picked the other (Eq. 7), adds self loops, and is stored as
a symmetric CSR matrix with unit weights.  The GCN normalises it by degree.

Builders (Ada-NETS Table 9):
- ``adaptive``: the first k̂_off(i) candidates in structure-space order (Eq. 6);
- ``knn``: the first k candidates (original space, or structure space: "structure kNN");
- ``threshold``: the candidates with cosine ≥ τ;
- ``chain``: walking the candidates in order, keep j when its cosine ≥ τ and its
  density exceeds that of the last kept vertex (a density chain, Guo et al. 2020);
  density is the mean cosine to the first ``density_k`` neighbours.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

BUILDERS = ("adaptive", "knn", "threshold", "chain")


def _picked_to_graph(cand_ids: np.ndarray, picked: np.ndarray) -> sp.csr_matrix:
    """Symmetric 0/1 CSR graph with self loops from a boolean (N, k) pick mask."""
    n, k = cand_ids.shape
    picked = picked & (cand_ids >= 0)
    rows = np.repeat(np.arange(n, dtype=np.int64), k)[picked.ravel()]
    cols = cand_ids.ravel()[picked.ravel()].astype(np.int64)
    loops = np.arange(n, dtype=np.int64)
    rows, cols = np.concatenate([rows, cols, loops]), np.concatenate([cols, rows, loops])
    adj = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(n, n))
    adj.data[:] = 1.0  # duplicates were summed: an edge is there or not
    adj.sort_indices()
    return adj


def adaptive_graph(cand_ids: np.ndarray, k_off: np.ndarray) -> sp.csr_matrix:
    """Eq. 6-7: keep each vertex's first k̂_off(i) candidates (itself counted first)."""
    k = cand_ids.shape[1]
    k_off = np.clip(np.asarray(k_off), 1, k)
    picked = np.arange(k)[None, :] < k_off[:, None]
    return _picked_to_graph(cand_ids, picked)


def knn_graph_adjacency(cand_ids: np.ndarray, k: int) -> sp.csr_matrix:
    """Each vertex linked to its first k candidates (itself included)."""
    picked = np.zeros(cand_ids.shape, dtype=bool)
    picked[:, :k] = True
    return _picked_to_graph(cand_ids, picked)


def threshold_graph(cand_ids: np.ndarray, cand_sims: np.ndarray, threshold: float) -> sp.csr_matrix:
    """Each vertex linked to the candidates with cosine ≥ ``threshold``."""
    return _picked_to_graph(cand_ids, cand_sims >= threshold)


def density(cand_ids: np.ndarray, cand_sims: np.ndarray, density_k: int = 20) -> np.ndarray:
    """Mean cosine of each vertex to its first ``density_k`` neighbours (itself excluded)."""
    s = cand_sims[:, 1:density_k + 1]
    valid = cand_ids[:, 1:density_k + 1] >= 0
    return (np.where(valid, s, 0).sum(1) / np.maximum(valid.sum(1), 1)).astype(np.float32)


def chain_graph(cand_ids: np.ndarray, cand_sims: np.ndarray, threshold: float,
                density_k: int = 20) -> sp.csr_matrix:
    """The density chain: keep candidates above ``threshold`` of rising density, in order."""
    n, k = cand_ids.shape
    rho = density(cand_ids, cand_sims, density_k)
    picked = np.zeros((n, k), dtype=bool)
    picked[:, 0] = True
    last = rho.copy()
    # One vectorised step per candidate position: the chain is sequential along a row only.
    for c in range(1, k):
        j = cand_ids[:, c]
        rho_j = np.where(j >= 0, rho[np.maximum(j, 0)], -np.inf)
        ok = (cand_sims[:, c] >= threshold) & (rho_j > last) & (j >= 0)
        picked[:, c] = ok
        last = np.where(ok, rho_j, last)
    return _picked_to_graph(cand_ids, picked)


def build(builder: str, cand_ids: np.ndarray, cand_sims: np.ndarray, *,
          k_hat: np.ndarray | None = None, k: int | None = None,
          threshold: float | None = None) -> sp.csr_matrix:
    """The graph of ``builder`` over the candidate lists (N, k): ``adaptive`` needs
    ``k_hat`` (N,), ``knn`` needs ``k``, ``threshold`` and ``chain`` need ``threshold``."""
    if builder == "adaptive":
        if k_hat is None:
            raise ValueError("the adaptive graph needs k̂_off")
        return adaptive_graph(cand_ids, k_hat)
    if builder == "knn":
        return knn_graph_adjacency(cand_ids, int(k))
    if builder == "threshold":
        return threshold_graph(cand_ids, cand_sims, float(threshold))
    if builder == "chain":
        return chain_graph(cand_ids, cand_sims, float(threshold))
    raise ValueError(f"unknown graph builder {builder!r}; expected one of {BUILDERS}")

