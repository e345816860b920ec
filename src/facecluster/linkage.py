"""Linkage: clusters from embeddings (Ada-NETS §3.3) or from a built graph (graph-cut, Table 8).

- ``link_embeddings``: each vertex's nearest neighbours in the embedding space
  (faiss, the project's one kNN stage), pairs with cosine > θ linked, clusters =
  connected components (the union-find of the paper).
- ``graph_cut``: the built graph's edges whose original cosine is below a
  threshold are cut; clusters = connected components of what is left.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .baseline import components_from_edges, knn_threshold_clusters
from .knn import knn_graph


def link_embeddings(embeddings: np.ndarray, theta: float, k: int = 80, threads: int = 1,
                    **knn_params) -> tuple[np.ndarray, dict]:
    """Cluster labels from pairs with cosine > ``theta`` among each vertex's k nearest neighbours."""
    emb = np.asarray(embeddings, dtype=np.float32)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    ids, sims, meta = knn_graph(emb, k=k, threads=threads, **knn_params)
    return link_neighbours(ids, sims, theta), {"theta": theta, "linkage_knn": meta}


def link_neighbours(ids: np.ndarray, sims: np.ndarray, theta: float) -> np.ndarray:
    """Clusters of the neighbour pairs with cosine strictly larger than ``theta``."""
    # The smallest float32 above θ is the inclusive threshold.
    return knn_threshold_clusters(ids, sims, float(np.nextafter(np.float32(theta), np.float32(2))))


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
