"""Row-blocked sparse products over kNN lists: the pattern every stage that touches N·k²
pairs uses (Ada-NETS's structure space, FC-ES's edge probabilities), with bounded memory.

A kNN list becomes a row of an N×N CSR membership matrix (``rows_to_csr``); products are
done in row blocks whose work is about ``BLOCK_FLOPS`` multiply-adds (``map_blocks``), on a
few threads, since scipy's sparse kernels release the GIL.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import scipy.sparse as sp

from .progress import Progress

# Multiply-adds in one row block of a sparse product. An intermediate product holds at most that
# many entries (about 8 bytes each), so a block needs a few hundred MB at most.
BLOCK_FLOPS = 1 << 23


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def rows_to_csr(ids: np.ndarray, n_cols: int, dtype=bool) -> sp.csr_matrix:
    """Boolean membership matrix: row i holds the valid (≥ 0) ids of ``ids[i]``, each once."""
    n = ids.shape[0]
    valid = ids >= 0
    nnz = int(valid.sum())
    index_dtype = np.int32 if max(nnz, n_cols) < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n + 1, dtype=index_dtype)
    np.cumsum(valid.sum(axis=1), out=indptr[1:])
    indices = ids[valid].astype(index_dtype)  # row-major, so row by row
    m = sp.csr_matrix((np.ones(nnz, dtype=dtype), indices, indptr), shape=(n, n_cols))
    m.sum_duplicates()  # sorts each row and merges an id listed twice
    if dtype is not bool:
        m.data[:] = 1
    return m


def lists_to_csr(ids: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
    """The (N, N) float64 CSR matrix holding ``values[i, c]`` at (i, ids[i, c]), from (N, k)
    lists (−1 pads skipped, the row's order kept)."""
    n = ids.shape[0]
    valid = ids >= 0
    return sp.csr_matrix((values[valid].astype(np.float64), ids[valid].astype(np.int64),
                          np.concatenate([[0], np.cumsum(valid.sum(axis=1))])), shape=(n, n))


def as_counts(m) -> sp.csr_matrix:
    """The same pattern with int32 ones, so that sparse products count common members."""
    m = sp.csr_matrix(m)
    m.sum_duplicates()
    return sp.csr_matrix((np.ones(m.nnz, dtype=np.int32), m.indices, m.indptr), shape=m.shape)


def row_blocks(cost: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Cut rows 0..N into consecutive blocks of about ``budget`` total cost (≥ 1 row each)."""
    n = len(cost)
    csum = np.cumsum(np.asarray(cost, dtype=np.int64) + 1)  # + 1: no row is free
    bounds = [0]
    while bounds[-1] < n:
        start = bounds[-1]
        base = csum[start - 1] if start else 0
        stop = int(np.searchsorted(csum, base + budget, side="right"))
        bounds.append(min(n, max(stop, start + 1)))
    return list(zip(bounds[:-1], bounds[1:]))


def map_blocks(fn: Callable[[int, int], object], cost: np.ndarray, budget: int,
               threads: int | None, what: str) -> list:
    """Run ``fn(start, stop)`` over row blocks, in order, on ``threads`` threads."""
    blocks = row_blocks(cost, budget)
    threads = default_threads() if threads is None else max(1, int(threads))
    progress = Progress(len(cost), what)
    out = []
    if threads == 1 or len(blocks) == 1:
        for a, b in blocks:
            out.append(fn(a, b))
            progress.update(b - a)
        return out
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for (a, b), result in zip(blocks, pool.map(lambda ab: fn(*ab), blocks)):
            out.append(result)
            progress.update(b - a)
    return out


def distance_graph(ids: np.ndarray, sims: np.ndarray):
    """The symmetric sparse matrix (N, N) of cosine distances 1 − cos over the kNN lists,
    the diagonal left out; a distance of 0 (a duplicate face) is stored as 1e-9, since a
    stored zero would read as "not a neighbour"."""
    n, k = ids.shape
    keep = ((ids >= 0) & (ids != np.arange(n)[:, None])).ravel()
    rows = np.repeat(np.arange(n), k)[keep]
    cols = ids.ravel()[keep]
    dist = np.maximum(1.0 - sims.ravel()[keep].astype(np.float64), 1e-9)
    graph = sp.csr_matrix((dist, (rows, cols)), shape=(n, n))
    return graph.maximum(graph.T).tocsr()


def similarity_graph(ids: np.ndarray, sims: np.ndarray, min_similarity: float = -np.inf):
    """The symmetric sparse matrix (N, N) of cosines over the kNN lists above
    ``min_similarity``, the larger of the two directions where both lists hold the pair;
    the diagonal left out."""
    n, k = ids.shape
    keep = ((ids >= 0) & (ids != np.arange(n)[:, None]) & (sims > min_similarity)).ravel()
    rows = np.repeat(np.arange(n), k)[keep]
    graph = sp.csr_matrix((sims.ravel()[keep].astype(np.float64), (rows, ids.ravel()[keep])),
                          shape=(n, n))
    return graph.maximum(graph.T).tocsr()


def unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """The rows of ``embeddings`` (N, E) scaled to unit length, float32 (zero rows stay 0)."""
    emb = np.asarray(embeddings, dtype=np.float32)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def candidate_similarities(embeddings: np.ndarray, cand_ids: np.ndarray, k: int | None = None,
                           block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` candidates of every vertex and their cosine with it in the
    embedding space: ``(ids, sims)`` (N, k), padding (id −1) given similarity −1.  The
    lists of one space re-scored in another (a model's embedding) without a new search:
    linear in N.

    ``embeddings`` (N, E) need not be normalised; ``cand_ids`` (N, ≥k) index them.
    Memory stays O(block·k·E).
    """
    n = np.shape(embeddings)[0]
    cand_ids = np.asarray(cand_ids)
    if cand_ids.ndim != 2 or cand_ids.shape[0] != n:
        raise ValueError(f"candidates {cand_ids.shape} do not match {n} embeddings")
    k = cand_ids.shape[1] if k is None else min(int(k), cand_ids.shape[1])
    ids = np.ascontiguousarray(cand_ids[:, :k])
    if ids.size and (ids.min() < -1 or ids.max() >= n):
        raise ValueError("candidate ids must lie in [-1, N)")
    unit = unit_rows(embeddings)
    sims = np.empty(ids.shape, dtype=np.float32)
    for start in range(0, ids.shape[0], block):
        rows = ids[start:start + block]
        sims[start:start + block] = np.einsum("ne,nke->nk", unit[start:start + block],
                                              unit[np.maximum(rows, 0)])
    sims[ids < 0] = -1.0
    return ids, sims




def shared_neighbour_sums(ids: np.ndarray, left: np.ndarray, right: np.ndarray,
                          product: bool = False, threads: int | None = 1,
                          what: str = "shared neighbours") -> np.ndarray:
    """For every listed pair (i, j = ids[i, c]), a sum over the l in both lists, N(i) ∩ N(j):
    Σ (left[i, at l] + right[j, at l]), or with ``product`` Σ left[i, at l]·right[j, at l].
    Returns (N, k) float64, 0 at padding.

    ``ids`` (N, k) kNN lists (−1 pads, no id twice in a list); ``left`` and ``right`` (N, k)
    values aligned with them (FC-ES's p_il; TPDi's √p_il).  A sparse product would compute
    every pair that shares a neighbour (about 2,000 a row for k = 80 on face data) to read
    80 of them; this compiled kernel marks row i's list in a scratch array and walks each
    listed neighbour's list against it, k² steps a row, on ``threads`` threads, in row
    blocks so that progress is reported.
    """
    from ._kernels import shared_sums

    n, k = ids.shape
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    left = np.ascontiguousarray(left, dtype=np.float64)
    right = np.ascontiguousarray(right, dtype=np.float64)
    threads = default_threads() if threads is None else max(1, int(threads))
    out = np.zeros((n, k), dtype=np.float64)
    step = max(1, (1 << 24) // max(1, k * k))  # ~16M steps between progress reports
    progress = Progress(n, what)
    for a in range(0, n, step):
        b = min(n, a + step)
        shared_sums(ids, left, right, a, b, bool(product), threads, out)
        progress.update(b - a)
    return out
