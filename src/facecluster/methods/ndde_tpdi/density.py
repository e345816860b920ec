"""NDDe densities, TPDi distances and density-peak linkage (Chen et al., ECCV 2022, "On
mitigating hard clusters for face clustering"), as its reference code computes them, sparse.

All on kNN lists re-sorted by a distance ``d`` (N, k) (the learned one, or 1 − cosine),
each face itself first, −1 padding:

- **TPDi** (σ = 0.05): transition probabilities p_il = exp(−d_il/σ) / Σ_l' exp(−d_il'/σ)
  over each list; s_ij = Σ_{l ∈ N(i) ∩ N(j)} sqrt(p_il · p_jl), the Bhattacharyya
  coefficient of the two lists' probabilities on their shared neighbours, for every j of
  i's list; d_TPDi = 1 − s.  With Q = √P (N×N, k entries a row) s = (Q Qᵀ)_ij: one sparse
  product in row blocks, read at the listed pairs, O(N·k²).
- **NDDe** (k = 20, σ = 0.5): P̃_i = exp(−d_i[:20]/σ) normalised over a face's first 20;
  the *approximate* density is the incoming mass ρ_j = Σ_i P̃_ij (self kept); the *exact*
  one iterates ρ ← 0.1·ρ + 0.9·P̃ᵀρ from uniform until ‖Δρ‖₁ < 0.05 (sparse P̃: the
  reference code's dense N×N matrix does not scale); the *naive* one counts d < 0.64.
- **Linkage**: each face's parent is the first neighbour j ≠ i, in increasing d_TPDi, with
  ρ_j ≥ ρ_i (non-strict, so ties go to the nearest); the edge is kept when d_TPDi < the cut
  (0.7); clusters are the connected components.
"""

from __future__ import annotations

import numpy as np

from ...core.components import components_from_edges
from ...core.sparse import lists_to_csr, shared_neighbour_sums


def sort_by_distance(ids: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each list re-sorted by increasing ``d``, the face itself first, padding last."""
    n = ids.shape[0]
    key = np.where(ids >= 0, d, np.inf)
    key = np.where(ids == np.arange(n)[:, None], -np.inf, key)
    order = np.argsort(key, axis=1, kind="stable")
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(d, order, axis=1)


def transition(ids: np.ndarray, d: np.ndarray, sigma: float, k: int | None = None) -> np.ndarray:
    """p (N, k'): exp(−d/σ) normalised over each list's first ``k`` (all when None); 0 at
    padding."""
    ids, d = (ids, d) if k is None else (ids[:, :k], d[:, :k])
    logits = np.where(ids >= 0, -np.asarray(d, dtype=np.float64) / sigma, -np.inf)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def tpdi(ids: np.ndarray, d: np.ndarray, sigma: float = 0.05, threads: int | None = 1
         ) -> np.ndarray:
    """d_TPDi (N, k) = 1 − Σ_{shared l} sqrt(p_il p_jl) for j = ids[i, c]; 1 at padding.

    Computed for the listed pairs only (``core.sparse.shared_neighbour_sums``), N·k² steps."""
    q = np.sqrt(transition(ids, d, sigma))
    s = shared_neighbour_sums(ids, q, q, product=True, threads=threads, what="TPDi distances")
    return np.where(ids >= 0, np.clip(1.0 - s, 0.0, 1.0), 1.0).astype(np.float32)


def ndde(ids: np.ndarray, d: np.ndarray, form: str = "approx", k: int = 20, sigma: float = 0.5,
         naive_cut: float = 0.64, tol: float = 0.05, max_iter: int = 1000) -> np.ndarray:
    """The density ρ (N,) of every face: ``approx`` (incoming mass of P̃), ``exact``
    (diffusion to convergence) or ``naive`` (count of neighbours with d < ``naive_cut``)."""
    n = ids.shape[0]
    if form == "naive":
        return (((ids >= 0) & (d < naive_cut)).sum(axis=1)).astype(np.float64)
    p = lists_to_csr(ids[:, :k], transition(ids, d, sigma, k))
    incoming = np.asarray(p.sum(axis=0)).ravel()
    if form == "approx":
        return incoming
    if form != "exact":
        raise ValueError(f"NDDe form must be approx, exact or naive, not {form!r}")
    rho = np.full(n, 1.0)
    p_t = p.T.tocsr()
    for _ in range(max_iter):
        new = 0.1 * rho + 0.9 * (p_t @ rho)
        if np.abs(new - rho).sum() < tol:
            return new
        rho = new
    return rho


def density_peak_links(ids: np.ndarray, dist: np.ndarray, rho: np.ndarray, cut: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(i, parent) edges: each face's first neighbour j ≠ i in increasing ``dist`` with
    ρ_j ≥ ρ_i, kept when dist < ``cut``."""
    n = ids.shape[0]
    ids, dist = sort_by_distance(ids, dist)
    others = (ids >= 0) & (ids != np.arange(n)[:, None])
    denser = others & (rho[np.maximum(ids, 0)] >= rho[:, None])
    has = denser.any(axis=1)
    first = np.argmax(denser, axis=1)
    rows = np.flatnonzero(has)
    parent = ids[rows, first[rows]]
    keep = dist[rows, first[rows]] < cut
    return rows[keep].astype(np.int64), parent[keep].astype(np.int64)


def cluster(ids: np.ndarray, d: np.ndarray, cut: float, use_tpdi: bool = True,
            density: str = "approx", threads: int | None = 1, cache: dict | None = None
            ) -> np.ndarray:
    """Cluster labels (N,) of the density-peak linkage over lists with distances ``d``.
    ``cache`` keeps the distance and density a calibration reuses at every cut."""
    cache = {} if cache is None else cache
    if "dist" not in cache:
        ids, d = sort_by_distance(ids, d)
        cache["ids"] = ids
        cache["dist"] = tpdi(ids, d, threads=threads) if use_tpdi else d
        cache["rho"] = ndde(ids, d, density)
    rows, parents = density_peak_links(cache["ids"], cache["dist"], cache["rho"], cut)
    return components_from_edges(ids.shape[0], rows, parents)
