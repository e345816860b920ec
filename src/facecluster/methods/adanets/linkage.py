"""Linkage: clusters from embeddings (Ada-NETS §3.3) or from a built graph (graph-cut, Table 8).

- ``link_embeddings``: each vertex's nearest neighbours in the embedding space
  (faiss, the project's one kNN stage), pairs with cosine > θ linked, clusters =
  connected components (the union-find of the paper).
- ``link_candidates``: the same, with each vertex's neighbours taken from its kNN
  candidates in the feature space (the lists the graph was built from) instead of a
  second search, and scored by their embeddings' cosine.  The GCN averages features
  over those very neighbourhoods, so pairs it embeds close are feature-space
  neighbours; at 150k faces this scored as well as the search (F_P 7.2 vs 5.7 at the
  same θ) in a tenth of the time, and its cost is linear in N (issue 4).
- ``link``: either of the two, as the experiment's ``linkage_neighbours`` says (the
  workflow's link rule and a bundle's ``cluster`` both call it).
- ``graph_cut``: the built graph's edges whose original cosine is below a
  threshold are cut; clusters = connected components of what is left.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...core.components import components_from_edges, link_threshold
from ...core.knn import knn_graph
from ...core.sparse import candidate_similarities, unit_rows


def link_embeddings(embeddings: np.ndarray, theta: float, k: int = 80, threads: int = 1,
                    **knn_params) -> tuple[np.ndarray, dict]:
    """Cluster labels from pairs with cosine > ``theta`` among each vertex's k nearest neighbours."""
    ids, sims, meta = knn_graph(unit_rows(embeddings), k=k, threads=threads, **knn_params)
    # Timings stay in the log: the clusters artifact is the same bytes on every run.
    meta = {key: value for key, value in meta.items() if not key.endswith("_seconds")}
    return link_neighbours(ids, sims, theta), {"theta": theta, "neighbours": "embedding",
                                               "linkage_knn": meta}


def link_candidates(embeddings: np.ndarray, cand_ids: np.ndarray, theta: float,
                    k: int = 80) -> tuple[np.ndarray, dict]:
    """Cluster labels from candidate pairs whose embeddings have cosine > ``theta``."""
    ids, sims = candidate_similarities(embeddings, cand_ids, k)
    return link_neighbours(ids, sims, theta), {"theta": theta, "neighbours": "candidates",
                                               "k": int(ids.shape[1])}


def link(embeddings: np.ndarray, theta: float, k: int, neighbours: str,
         cand_ids: np.ndarray | None = None, threads: int = 1) -> tuple[np.ndarray, dict]:
    """The Ada-NETS linkage with neighbours from ``neighbours``: ``'candidates'``
    (``link_candidates`` over ``cand_ids``) or ``'embedding'`` (``link_embeddings``)."""
    if neighbours == "candidates":
        if cand_ids is None:
            raise ValueError("linkage over the candidates needs the candidate lists")
        return link_candidates(embeddings, cand_ids, theta, k=k)
    if neighbours == "embedding":
        return link_embeddings(embeddings, theta, k=k, threads=threads)
    raise ValueError(f"linkage neighbours must be 'candidates' or 'embedding', not {neighbours!r}")


def link_neighbours(ids: np.ndarray, sims: np.ndarray, theta: float) -> np.ndarray:
    """Clusters of the neighbour pairs with cosine strictly larger than ``theta``."""
    return link_threshold(ids, sims, theta, strict=True)


def graph_cut(adj: sp.csr_matrix, features: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components of the graph after cutting edges with cosine < ``threshold``."""
    coo = sp.triu(adj, k=1).tocoo()
    rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
    keep = np.zeros(rows.size, dtype=bool)
    block = 1 << 20  # edges per block: bounds the gathered (block, D) arrays
    for start in range(0, rows.size, block):
        r, c = rows[start:start + block], cols[start:start + block]
        keep[start:start + block] = np.einsum("ij,ij->i", features[r], features[c]) >= threshold
    return components_from_edges(adj.shape[0], rows[keep], cols[keep])
