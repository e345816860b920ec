"""The kNN graph: each item's k nearest neighbours by cosine similarity, with faiss.

Features are L2-normalised, so inner product is cosine.  Small inputs are
searched exactly (``IndexFlatIP``); large ones through an approximate index
(IVF-PQ fast-scan with an exact re-rank, IVF or HNSW) whose recall@k against exact
search is measured on a random sample of queries and stored with the result.

The artifact every method reads: ``ids`` int32 (N, k) and ``sims`` float32
(N, k), each row sorted by decreasing similarity with the query itself first.
Where an approximate index returns fewer than k neighbours, the row is padded
with id -1 and similarity -1.

With faiss-gpu installed and a GPU visible, exact and IVF indexes search on the GPU
(HNSW and the fast-scan IVF-PQ have no GPU version in faiss); otherwise everything
runs on the CPU.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .params import Param, Params, choice, integer
from .progress import Progress, log

INDEX_KINDS = ("auto", "exact", "ivfpq", "ivf", "hnsw")

# Bump when the kNN artifact a set of parameters gives changes: every kNN graph is rebuilt.
VERSION = 1

PARAMS = Params(
    k=Param(80, integer(1), "neighbours per item, the item itself first"),
    index=Param("auto", choice(*INDEX_KINDS),
                "auto: exact up to exact_max_n, ivfpq beyond | exact | ivfpq (IVF lists of "
                "4-bit PQ codes, the best refine_factor·k re-ranked exactly) | ivf (float "
                "lists, the kind a GPU can run) | hnsw"),
    exact_max_n=Param(20000, integer(0), "auto: exact search up to this many items"),
    nlist=Param(0, integer(0), "IVF inverted lists; 0 = max(4·sqrt(N), N/144)"),
    nprobe=Param(0, integer(0), "IVF lists visited per query; 0 = 512 for ivfpq, 64 for ivf"),
    pq_m=Param(0, integer(0), "ivfpq: 4-bit codes per item, dividing D; 0 = D/2"),
    refine_factor=Param(10, integer(1), "ivfpq: candidates re-ranked by exact inner product, "
                                        "× k"),
    hnsw_m=Param(32, integer(2), "hnsw: links per node"),
    ef_construction=Param(80, integer(1), "hnsw: candidate list while building"),
    ef_search=Param(128, integer(1), "hnsw: candidate list while searching"),
    train_size=Param(0, integer(0), "IVF training sample; 0 = 64 points per list"),
    block_size=Param(4096, integer(1), "queries per search block (bounds memory)"),
    recall_sample=Param(1000, integer(0), "queries whose recall@k against exact search is "
                                          "measured (approximate indexes)"),
    seed=Param(0, integer(), "seed of the IVF training sample and the recall sample"),
    shards=Param(1, integer(1), ">1: the search runs as this many jobs over one saved index, "
                                "gathered into the same artifact (for clusters)"),
)

# Keys that change how a result is computed, not what it is: left out of the artifact's
# name (a sharded search writes the same artifact as one search: tests/core/test_knn.py).
RUNTIME_KEYS = ("block_size", "shards")
GPU_KINDS = ("exact", "ivf")  # index kinds faiss can move to a GPU
IVF_MAX_LIST = 144        # nlist = 0: lists of at most this many items on average
IVF_MAX_TRAIN = 131072    # train_size = 0: k-means on at most this many points (≥ 39 per list)
# nprobe = 0: lists visited per query.  IVF-PQ scans its 4-bit codes about 10× faster
# than IVF scans floats, so it affords 8× the lists (measured at 584k faces, 4,096 lists:
# IVF nprobe 64 recall@80 0.86 in 5.0 s per 10k queries; IVF-PQ nprobe 512, re-rank
# 10·k, 0.955 in 4.3 s).
DEFAULT_NPROBE = {"ivf": 64, "ivfpq": 512}


def resolve_nprobe(kind: str, nprobe: int) -> int:
    """``nprobe``, or the kind's default (``DEFAULT_NPROBE``) when it is 0."""
    if nprobe < 0:
        raise ValueError(f"nprobe must be ≥ 0 (0: the index kind's default), got {nprobe}")
    return nprobe or DEFAULT_NPROBE.get(kind, 0)


def _faiss(threads: int):
    import faiss

    faiss.omp_set_num_threads(max(1, int(threads)))
    return faiss


def faiss_gpus(faiss) -> int:
    """GPUs faiss can use: 0 for faiss-cpu, and for faiss-gpu on a machine without a
    visible GPU (which still runs CPU indexes, but raises when asked for a GPU one)."""
    count = getattr(faiss, "get_num_gpus", None)
    return int(count()) if count is not None else 0


def to_device(idx, kind: str, device: str = "auto", threads: int = 1):
    """``(index, 'cuda' | 'cpu')``: ``idx`` copied to every visible GPU when ``device`` is
    ``'auto'`` or ``'cuda'`` and faiss has a GPU, else ``idx`` itself on the CPU.
    ``'cuda'`` with no GPU, or for an HNSW index, is an error; ``'auto'`` falls back."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"kNN device must be 'auto', 'cpu' or 'cuda', not {device!r}")
    if device == "cpu":
        return idx, "cpu"
    faiss = _faiss(threads)
    gpus = faiss_gpus(faiss)
    if device == "cuda" and (gpus == 0 or kind not in GPU_KINDS):
        raise ValueError(f"kNN device 'cuda' requested, but faiss sees {gpus} GPU(s) "
                         f"and has {'a' if kind in GPU_KINDS else 'no'} GPU {kind} index")
    if gpus == 0 or kind not in GPU_KINDS:
        return idx, "cpu"
    return faiss.index_cpu_to_all_gpus(idx), "cuda"


def auto_nlist(n: int) -> int:
    """IVF lists for ``nlist = 0``: max(4·sqrt(N), N/144) (see ``build_index``)."""
    return max(1, int(4 * math.sqrt(n)), n // IVF_MAX_LIST)


def build_index(features: np.ndarray, index: str = "exact", *, nlist: int = 0, nprobe: int = 0,
                pq_m: int = 0, refine_factor: int = 10, hnsw_m: int = 32,
                ef_construction: int = 80, ef_search: int = 128, train_size: int = 0,
                seed: int = 0, threads: int = 1):
    """A faiss inner-product index over ``features`` (N×D float32, unit rows).

    ``ivfpq`` stores each item as ``pq_m`` 4-bit product-quantiser codes (0: D/2, two
    dimensions per code) in IVF lists scanned with faiss's SIMD fast-scan, then
    re-ranks the ``refine_factor``·k best by exact inner product over the full vectors,
    so the similarities it returns are exact.  ``ivf`` scans the float vectors.

    ``nlist = 0`` picks max(4·sqrt(N), N/144) inverted lists: they hold at most 144
    items on average (sqrt(N)/4 below about 330k items, where N/144 takes over), so a
    query scans at most nprobe·144 of them however large N grows (the coarse
    assignment still costs N·nlist).  Measured at 584k faces, IVF nprobe 64: 4,096
    lists searched 10k queries in 5.9 s at recall@80 0.86, 3,000 lists in 7.2 s at
    0.86; IVF-PQ re-ranking 10·k: 2,048 lists nprobe 256 0.92, 4,096 lists nprobe 512
    0.955 in 4.3 s, 8,192 lists nprobe 768 0.96 in 4.8 s.  ``train_size = 0`` trains on 64
    points per list, at most 131,072 points but never fewer than faiss's 39 per list
    (all of N when smaller).  ``nprobe = 0``: the kind's default (``DEFAULT_NPROBE``).
    """
    faiss = _faiss(threads)
    n, d = features.shape
    if index == "exact":
        idx = faiss.IndexFlatIP(d)
    elif index in ("ivf", "ivfpq"):
        nlist = nlist or auto_nlist(n)
        nlist = min(nlist, max(1, n // 39))  # faiss wants ≥ 39 training points per centroid
        if index == "ivf":
            quantizer = faiss.IndexFlatIP(d)
            idx = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            ivf = idx
        else:
            pq_m = pq_m or max(1, d // 2)
            if d % pq_m:
                raise ValueError(f"pq_m = {pq_m} must divide the feature dimension {d}")
            idx = faiss.index_factory(d, f"IVF{nlist},PQ{pq_m}x4fs,RFlat",
                                      faiss.METRIC_INNER_PRODUCT)
            idx.k_factor = float(refine_factor)
            ivf = ivf_of(idx)
        m = min(n, train_size or max(39 * nlist, min(64 * nlist, IVF_MAX_TRAIN)))
        rng = np.random.default_rng(seed)
        sample = features[np.sort(rng.choice(n, size=m, replace=False))] if m < n else features
        t0 = time.perf_counter()
        idx.train(np.ascontiguousarray(sample, dtype=np.float32))
        log.info("%s: trained %d lists on %d points in %.1f s", index, nlist, m,
                 time.perf_counter() - t0)
        ivf.nprobe = min(resolve_nprobe(index, nprobe), nlist)
    elif index == "hnsw":
        idx = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = ef_construction
        idx.hnsw.efSearch = ef_search
    else:
        raise ValueError(f"unknown kNN index {index!r}; expected one of {INDEX_KINDS[1:]}")
    t0 = time.perf_counter()
    block = 65536
    progress = Progress(n, f"{index}: adding vectors")
    for start in range(0, n, block):
        stop = min(n, start + block)
        idx.add(np.ascontiguousarray(features[start:stop], dtype=np.float32))
        progress.update(stop - start)
    log.info("%s index over %d×%d built in %.1f s", index, n, d, time.perf_counter() - t0)
    return idx


def search_blocks(index, queries: np.ndarray, k: int, block_size: int = 4096,
                  what: str = "kNN search", order: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Search ``queries`` against ``index`` in blocks: memory stays O(block_size·k).

    ``order``, a permutation of the queries, is the order they are searched in (the
    results are stored in query order all the same).
    """
    n = queries.shape[0]
    ids = np.empty((n, k), dtype=np.int32)
    sims = np.empty((n, k), dtype=np.float32)
    progress = Progress(n, what)
    for start in range(0, n, block_size):
        stop = min(n, start + block_size)
        rows = slice(start, stop) if order is None else order[start:stop]
        s, i = index.search(np.ascontiguousarray(queries[rows], dtype=np.float32), k)
        ids[rows] = i
        sims[rows] = s
        progress.update(stop - start)
    return ids, sims


def ivf_of(idx):
    """The IVF part of a CPU index (itself, or inside an IVF-PQ's re-rank), else None."""
    import faiss

    ivf = faiss.try_extract_index_ivf(idx)
    return None if ivf is None else faiss.downcast_index(ivf)


def ivf_locality_order(idx, queries: np.ndarray, block_size: int) -> np.ndarray | None:
    """For a CPU IVF index, the queries grouped by their nearest list, else None.

    Consecutive queries then scan mostly the same lists, which stay in the cache: at
    584k faces the search took 5.0 s per 10k grouped queries against 5.9 s in random
    order, and the grouping (one coarse assignment) costs about 9 s.  Each query's
    result does not depend on the order.
    """
    ivf = ivf_of(idx)
    if ivf is None or queries.shape[0] <= block_size:
        return None
    _, coarse = ivf.quantizer.search(np.ascontiguousarray(queries, dtype=np.float32), 1)
    return np.argsort(coarse[:, 0], kind="stable")


def put_self_first(ids: np.ndarray, sims: np.ndarray, features: np.ndarray,
                   query_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Make each row start with its query, keeping the others in order.

    Exact duplicates or an approximate index can place the query later or drop
    it; it is moved (or inserted, dropping the last neighbour) to the front,
    with its similarity to itself.  Padding (-1) is moved to the end.
    """
    n, k = ids.shape
    query_ids = np.arange(n, dtype=np.int64) if query_ids is None else np.asarray(query_ids)
    is_self = ids == query_ids[:, None]
    has_self = is_self.any(axis=1)
    missing = np.flatnonzero(~has_self)
    if missing.size:
        # Insert self at the front: shift the row right by one.
        ids[missing, 1:] = ids[missing, :-1].copy()
        sims[missing, 1:] = sims[missing, :-1].copy()
        ids[missing, 0] = query_ids[missing]
        is_self = ids == query_ids[:, None]
    # Stable sort by the key (self: 0, neighbour: 1, padding: 2) keeps the similarity order.
    key = np.where(is_self, 0, np.where(ids < 0, 2, 1)).astype(np.int8)
    # Drop repeated self entries (duplicates of the query id) to padding.
    dup_self = is_self & (np.cumsum(is_self, axis=1) > 1)
    key[dup_self] = 2
    order = np.argsort(key, axis=1, kind="stable")
    ids = np.take_along_axis(ids, order, axis=1)
    sims = np.take_along_axis(sims, order, axis=1)
    key = np.take_along_axis(key, order, axis=1)
    ids[key == 2] = -1
    sims[key == 2] = -1.0
    q = features[query_ids]
    sims[:, 0] = np.einsum("ij,ij->i", q, q)
    return ids, sims


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean fraction of each query's exact k neighbours that the approximate list holds."""
    k = exact_ids.shape[1]
    hits = 0
    for a, e in zip(approx_ids, exact_ids):
        hits += np.intersect1d(a[a >= 0], e[e >= 0], assume_unique=False).size
    return hits / (k * exact_ids.shape[0])


def _resolve(n: int, k: int, index: str, exact_max_n: int) -> tuple[str, int]:
    """(index kind, effective k) for ``n`` items, with the input checks."""
    if n == 0:
        raise ValueError("kNN over an empty feature set")
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    if index not in INDEX_KINDS:
        raise ValueError(f"unknown kNN index {index!r}; expected one of {INDEX_KINDS}")
    k_eff = min(k, n)
    if k_eff < k:
        log.warning("only %d items: k lowered from %d to %d", n, k, k_eff)
    return (index if index != "auto" else ("exact" if n <= exact_max_n else "ivfpq")), k_eff


def _index_meta(idx, kind: str) -> dict:
    """What the artifact records about an index (read before any GPU copy)."""
    if kind in ("ivf", "ivfpq"):
        ivf = ivf_of(idx)
        meta = {"nlist": int(ivf.nlist), "nprobe": int(ivf.nprobe)}
        if kind == "ivfpq":
            meta.update(pq_m=int(ivf.M), refine_factor=int(idx.k_factor))
        return meta
    if kind == "hnsw":
        return {"hnsw_m": int(idx.hnsw.nb_neighbors(1)), "ef_construction": int(idx.hnsw.efConstruction),
                "ef_search": int(idx.hnsw.efSearch)}
    return {}


def search_rows(idx, features: np.ndarray, start: int, stop: int, k: int,
                block_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``start:stop`` searched against ``idx``, each starting with its query."""
    queries = features[start:stop]
    ids, sims = search_blocks(idx, queries, k, block_size, f"kNN search of rows {start}-{stop}",
                              ivf_locality_order(idx, queries, block_size))
    return put_self_first(ids, sims, features, np.arange(start, stop))


def measure_recall(features: np.ndarray, ids: np.ndarray, kind: str, k: int, sample_size: int,
                   seed: int, block_size: int, threads: int, device: str) -> dict:
    """recall@k of an approximate result against exact search on a sample of queries."""
    if kind == "exact":
        return {"recall_at_k": 1.0}
    if sample_size <= 0:
        return {}
    n = features.shape[0]
    rng = np.random.default_rng(seed + 1)
    m = min(n, sample_size)
    sample = np.sort(rng.choice(n, size=m, replace=False))
    exact, _ = to_device(build_index(features, "exact", threads=threads), "exact", device, threads)
    exact_ids, exact_sims = search_blocks(exact, features[sample], k, block_size,
                                          "exact search for recall")
    exact_ids, _ = put_self_first(exact_ids, exact_sims, features, sample)
    recall = round(recall_at_k(ids[sample], exact_ids), 5)
    log.info("recall@%d of the %s index on %d queries: %.4f", k, kind, m, recall)
    return {"recall_at_k": recall, "recall_sample": m}


def knn_graph(features: np.ndarray, k: int, index: str = "auto", *, exact_max_n: int = 20000,
              nlist: int = 0, nprobe: int = 0, pq_m: int = 0, refine_factor: int = 10,
              hnsw_m: int = 32, ef_construction: int = 80,
              ef_search: int = 128, train_size: int = 0, block_size: int = 4096,
              recall_sample: int = 1000, seed: int = 0, threads: int = 1,
              device: str = "auto", shards: int = 1) -> tuple[np.ndarray, np.ndarray, dict]:
    """Each row's k nearest neighbours (self first): ``(ids, sims, meta)``.

    ``index='auto'`` searches exactly up to ``exact_max_n`` items and with IVF-PQ
    beyond.  For an approximate index, ``meta['recall_at_k']`` is recall@k
    against exact search on ``recall_sample`` random queries.  ``device``: see
    ``to_device``; ``meta['device']`` tells where the search ran.  ``shards`` only
    matters to the workflow (separate search jobs over one saved index); in one
    process the result is the same either way.
    """
    features = np.ascontiguousarray(features, dtype=np.float32)
    idx, meta = prepare_index(features, k, index, exact_max_n=exact_max_n, nlist=nlist,
                              nprobe=nprobe, pq_m=pq_m, refine_factor=refine_factor,
                              hnsw_m=hnsw_m, ef_construction=ef_construction,
                              ef_search=ef_search, train_size=train_size, seed=seed,
                              threads=threads)
    t0 = time.perf_counter()
    idx, where = to_device(idx, meta["index"], device, threads)
    meta["build_seconds"] = round(meta["build_seconds"] + time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    ids, sims = search_rows(idx, features, 0, features.shape[0], meta["k"], block_size)
    meta.update(device=where, search_seconds=round(time.perf_counter() - t0, 3))
    meta.update(measure_recall(features, ids, meta["index"], meta["k"], recall_sample, seed,
                               block_size, threads, where))
    return ids, sims, meta


def prepare_index(features: np.ndarray, k: int, index: str = "auto", *,
                  exact_max_n: int = 20000, nlist: int = 0, nprobe: int = 0,
                  pq_m: int = 0, refine_factor: int = 10,
                  hnsw_m: int = 32, ef_construction: int = 80, ef_search: int = 128,
                  train_size: int = 0, seed: int = 0, threads: int = 1,
                  **_search_keys) -> tuple[object, dict]:
    """The CPU index for ``features`` (what ``knn_graph`` searches, and what the sharded
    workflow saves for its shard jobs) and its metadata: k, n, dim, kind, build time."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    n = features.shape[0]
    kind, k_eff = _resolve(n, k, index, exact_max_n)
    t0 = time.perf_counter()
    idx = build_index(features, kind, nlist=nlist, nprobe=nprobe, pq_m=pq_m,
                      refine_factor=refine_factor, hnsw_m=hnsw_m,
                      ef_construction=ef_construction, ef_search=ef_search,
                      train_size=train_size, seed=seed, threads=threads)
    meta = {"k": k_eff, "n": n, "dim": int(features.shape[1]), "index": kind,
            "build_seconds": round(time.perf_counter() - t0, 3), **_index_meta(idx, kind)}
    return idx, meta


# ------------------------------------------------------------ sharded search
# The workflow can split the search into jobs: one builds the index and saves it, each
# shard job searches a contiguous slice of the queries against it, and a gather job
# concatenates the slices into the same artifact an unsharded run writes.

def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous query slices covering 0..n, sizes differing by at most one."""
    if shards < 1:
        raise ValueError(f"shards must be ≥ 1, got {shards}")
    edges = [n * i // shards for i in range(shards + 1)]
    return list(zip(edges[:-1], edges[1:]))


def write_index(path, idx) -> None:
    import faiss

    faiss.write_index(idx, str(path))


def read_index(path, threads: int = 1):
    return _faiss(threads).read_index(str(path))


def knn_stage(job) -> None:
    """A method's stage that builds the kNN artifact of a features artifact it made (an
    embedding): ``job.params`` are the kNN settings (``PARAMS``), the output is ``knn.h5``
    as the core's ``knn`` rule writes it.  Ada-NETS's second round, GCN-V's second pass."""
    from . import io

    ids, sims, meta = knn_graph(job.features(), threads=job.threads, **job.params)
    io.write_arrays(job.out, {"ids": ids, "sims": sims}, {**meta, "params": job.params})
