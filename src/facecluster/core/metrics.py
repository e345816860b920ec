"""Clustering scores: the learn-to-cluster definitions every paper in this line reports.

Everything is computed from the contingency matrix n_ij (ground-truth class i,
predicted cluster j) held sparse, with class sizes a_i = Σ_j n_ij and cluster
sizes b_j = Σ_i n_ij over N items (METHODS.md, "Metrics"):

- pairwise  tk = Σ n_ij² − N,  pk = Σ_j b_j² − N,  qk = Σ_i a_i² − N;
            P = tk/pk, R = tk/qk, F_P = 2PR/(P+R)
- BCubed    P = Σ_ij n_ij²/b_j / N,  R = Σ_ij n_ij²/a_i / N,  F_B = 2PR/(P+R)
- NMI       I(Ω,C) / sqrt(H(Ω)·H(C))  (geometric averaging)

Cost is O(N log N) time and O(N) memory: one sort of the labels, then sums over
the nonzero entries of n_ij.  No per-cluster Python loop, no N×N array.
Labels may be any integers (negative, huge, non-contiguous); every distinct
value is one cluster, -1 included (give "noise" items their own ids first if
they are meant as singletons).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp


def _as_labels(labels, name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: there is nothing to score")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    return arr


def _check_pair(labels_true, labels_pred) -> tuple[np.ndarray, np.ndarray]:
    true = _as_labels(labels_true, "labels_true")
    pred = _as_labels(labels_pred, "labels_pred")
    if true.shape[0] != pred.shape[0]:
        raise ValueError(f"labels_true has {true.shape[0]} items but labels_pred has "
                         f"{pred.shape[0]}: they must label the same items")
    return true, pred


def _contingency(true: np.ndarray, pred: np.ndarray) -> sp.csr_matrix:
    # Map each labelling to 0..K-1 by sorting once; duplicates (i, j) pairs are
    # summed by the COO → CSR conversion, giving n_ij.
    classes, row = np.unique(true, return_inverse=True)
    clusters, col = np.unique(pred, return_inverse=True)
    ones = np.ones(true.shape[0], dtype=np.int64)
    table = sp.coo_matrix((ones, (row.ravel(), col.ravel())),
                          shape=(classes.size, clusters.size)).tocsr()
    table.sum_duplicates()
    return table


class _Counts:
    """The nonzero n_ij with their class and cluster sizes, as flat int64 arrays."""

    def __init__(self, table: sp.csr_matrix):
        self.n = int(table.data.sum())
        self.n_ij = table.data.astype(np.int64)
        rows = np.repeat(np.arange(table.shape[0]), np.diff(table.indptr))
        cols = table.indices
        self.class_sizes = np.asarray(table.sum(axis=1), dtype=np.int64).ravel()
        self.cluster_sizes = np.asarray(table.sum(axis=0), dtype=np.int64).ravel()
        self.a_of_entry = self.class_sizes[rows]     # a_i for each nonzero n_ij
        self.b_of_entry = self.cluster_sizes[cols]   # b_j for each nonzero n_ij


def _f_score(p: float, r: float) -> float:
    return 2.0 * p * r / (p + r) if p + r > 0 else 0.0


def _pairwise(c: _Counts) -> tuple[float, float, float]:
    # Exact integer sums: int64 holds Σ n² for N up to ~3·10⁹ items.
    tk = int(np.sum(c.n_ij * c.n_ij)) - c.n
    pk = int(np.sum(c.cluster_sizes * c.cluster_sizes)) - c.n
    qk = int(np.sum(c.class_sizes * c.class_sizes)) - c.n
    # pk = 0: every predicted cluster is a singleton, no pair was claimed, so none
    # was claimed wrongly: P = 1 (METHODS.md).  qk = 0 symmetrically: every true
    # class is a singleton, there is no pair to find, so none was missed: R = 1.
    precision = tk / pk if pk > 0 else 1.0
    recall = tk / qk if qk > 0 else 1.0
    return float(precision), float(recall), float(_f_score(precision, recall))


def _bcubed(c: _Counts) -> tuple[float, float, float]:
    # Item x in cell (i, j) has precision n_ij/b_j; the n_ij items of the cell add n_ij²/b_j.
    sq = c.n_ij.astype(np.float64) ** 2
    precision = float(np.sum(sq / c.b_of_entry) / c.n)
    recall = float(np.sum(sq / c.a_of_entry) / c.n)
    return precision, recall, float(_f_score(precision, recall))


def _entropy(sizes: np.ndarray, n: int) -> float:
    p = sizes.astype(np.float64) / n
    return float(-np.sum(p * np.log(p)))


def _nmi(c: _Counts) -> float:
    h_true = _entropy(c.class_sizes, c.n)
    h_pred = _entropy(c.cluster_sizes, c.n)
    # Degenerate cases, pinned (they agree with scikit-learn):
    #  - both labellings put everything in one cluster (H = 0 on both sides, N = 1
    #    included): the partitions are identical, NMI = 1;
    #  - exactly one side is a single cluster: it carries no information about the
    #    other, I = 0, NMI = 0 (the 0/0 of the formula is read as 0).
    if h_true == 0.0 and h_pred == 0.0:
        return 1.0
    if h_true == 0.0 or h_pred == 0.0:
        return 0.0
    n_ij = c.n_ij.astype(np.float64)
    # I = Σ (n_ij/N) · log(N·n_ij / (a_i·b_j)), in logs to stay clear of overflow.
    log_ratio = (np.log(n_ij) + math.log(c.n)
                 - np.log(c.a_of_entry.astype(np.float64))
                 - np.log(c.b_of_entry.astype(np.float64)))
    mutual_info = max(float(np.sum(n_ij * log_ratio) / c.n), 0.0)
    return float(min(mutual_info / math.sqrt(h_true * h_pred), 1.0))


def contingency(labels_true, labels_pred) -> sp.csr_matrix:
    """The sparse contingency matrix n_ij: rows are true classes, columns predicted clusters.

    Rows and columns follow the sorted distinct label values of each side.
    """
    true, pred = _check_pair(labels_true, labels_pred)
    return _contingency(true, pred)


def pairwise_prf(labels_true, labels_pred) -> tuple[float, float, float]:
    """Pairwise precision, recall and F (F_P) over same-cluster pairs of items.

    P = tk/pk, R = tk/qk with tk = Σ n_ij² − N, pk = Σ_j b_j² − N, qk = Σ_i a_i² − N.
    P = 1 when pk = 0 (all predicted singletons); R = 1 when qk = 0 (all true singletons).
    """
    true, pred = _check_pair(labels_true, labels_pred)
    return _pairwise(_Counts(_contingency(true, pred)))


def bcubed_prf(labels_true, labels_pred) -> tuple[float, float, float]:
    """BCubed precision, recall and F (F_B): per-item scores averaged over items.

    P = Σ_ij n_ij²/b_j / N, R = Σ_ij n_ij²/a_i / N.
    """
    true, pred = _check_pair(labels_true, labels_pred)
    return _bcubed(_Counts(_contingency(true, pred)))


def nmi(labels_true, labels_pred) -> float:
    """Normalised mutual information with geometric averaging: I / sqrt(H(true)·H(pred)).

    Natural logs (the base cancels).  1 when both sides are a single cluster,
    0 when only one side is.
    """
    true, pred = _check_pair(labels_true, labels_pred)
    return _nmi(_Counts(_contingency(true, pred)))


def cluster_stats(labels_pred) -> dict:
    """Sizes of a clustering, no ground truth needed.

    Keys: n_items, n_clusters, n_singletons, largest_cluster (plain ints).
    """
    pred = _as_labels(labels_pred, "labels_pred")
    _, sizes = np.unique(pred, return_counts=True)
    return {"n_items": int(pred.shape[0]), "n_clusters": int(sizes.size),
            "n_singletons": int(np.count_nonzero(sizes == 1)),
            "largest_cluster": int(sizes.max())}


def evaluate(labels_true, labels_pred) -> dict:
    """Every score of a clustering against ground truth, from one contingency matrix.

    Keys: n_items, n_clusters, n_singletons, n_true_classes, pairwise_precision,
    pairwise_recall, pairwise_f, bcubed_precision, bcubed_recall, bcubed_f, nmi.
    Values are plain Python ints and floats (JSON-ready); scores lie in [0, 1].
    """
    true, pred = _check_pair(labels_true, labels_pred)
    counts = _Counts(_contingency(true, pred))
    pp, pr, pf = _pairwise(counts)
    bp, br, bf = _bcubed(counts)
    return {
        "n_items": counts.n,
        "n_clusters": int(counts.cluster_sizes.size),
        "n_singletons": int(np.count_nonzero(counts.cluster_sizes == 1)),
        "n_true_classes": int(counts.class_sizes.size),
        "pairwise_precision": pp,
        "pairwise_recall": pr,
        "pairwise_f": pf,
        "bcubed_precision": bp,
        "bcubed_recall": br,
        "bcubed_f": bf,
        "nmi": _nmi(counts),
    }


def graph_quality(adj: sp.csr_matrix, labels: np.ndarray | None) -> dict:
    """Edges, mean degree and, with labels, SNR = correct edges / noise edges of a built
    graph (Ada-NETS §4.1; self loops excluded; an edge is correct when both ends share a
    label).  With no noise edge SNR is infinite: ``snr`` is then None and ``noise_edges`` 0.
    """
    upper = sp.triu(adj, k=1).tocoo()
    n_edges = int(upper.nnz)
    out = {"n_vertices": int(adj.shape[0]), "n_edges": n_edges,
           "mean_degree": 2.0 * n_edges / max(adj.shape[0], 1)}
    if labels is not None:
        labels = np.asarray(labels)
        correct = int(np.count_nonzero(labels[upper.row] == labels[upper.col]))
        noise = n_edges - correct
        out.update(correct_edges=correct, noise_edges=noise,
                   snr=correct / noise if noise else None)
    return out


# ------------------------------------------------------------------ hard clusters
HARD_BINS = 5


def _bins(order: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """Split class indices ``order`` into ``n_bins`` runs of equal counts (bounds i·C//n)."""
    c = order.size
    return [order[i * c // n_bins:(i + 1) * c // n_bins] for i in range(n_bins)]


def class_sparsity(labels_true, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class values, sparsity) of every ground-truth class: 1 − the mean pairwise cosine of
    its members, from (‖Σx‖² − |C|)/(|C|(|C|−1)) for unit rows; a singleton has sparsity 0.

    ``features`` (N, D) are unit rows; sums are taken with a sparse product, no pair loop.
    """
    true = _as_labels(labels_true, "labels_true")
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] != true.shape[0]:
        raise ValueError(f"features {features.shape} do not match {true.shape[0]} labels")
    classes, inverse, sizes = np.unique(true, return_inverse=True, return_counts=True)
    member = sp.csr_matrix((np.ones(true.size), (inverse.ravel(), np.arange(true.size))),
                           shape=(classes.size, true.size))
    sums = member @ features
    sq = np.einsum("ij,ij->i", sums, sums)
    pairs = sizes.astype(np.float64) * (sizes - 1)
    mean_cos = np.divide(sq - sizes, pairs, out=np.ones(classes.size), where=pairs > 0)
    return classes, np.where(sizes > 1, 1.0 - mean_cos, 0.0)


def hard_cluster_scores(labels_true, labels_pred, features: np.ndarray | None = None,
                        n_bins: int = HARD_BINS) -> dict:
    """Pairwise and BCubed P/R/F on each fifth of the ground-truth identities (the hard-
    cluster bins of the ECCV 2022 hard-clusters paper's code, METHODS.md "Metrics").

    ``size``: identities ordered by size, smallest first (``sz-1`` … ``sz-5``);
    ``sparsity`` (needs ``features``, unit rows (N, D)): ordered by sparsity, most sparse
    first (``sp-1`` … ``sp-5``).  Each bin is scored on the items of its identities only,
    the predicted labels unchanged.  Returns ``{"size": [bin, …], "sparsity": [bin, …]}``,
    each bin a dict with ``bin``, ``n_identities``, ``n_items`` and the six scores; a bin
    without identities (fewer identities than bins) has ``n_items`` 0 and no scores.
    """
    true, pred = _check_pair(labels_true, labels_pred)
    classes, inverse, sizes = np.unique(true, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    orders = {"size": np.argsort(sizes, kind="stable")}
    if features is not None:
        _, sparsity = class_sparsity(true, features)
        orders["sparsity"] = np.argsort(-sparsity, kind="stable")
    out = {}
    for kind, order in orders.items():
        prefix = "sz" if kind == "size" else "sp"
        rows = []
        for i, members in enumerate(_bins(order, n_bins)):
            entry = {"bin": f"{prefix}-{i + 1}", "n_identities": int(members.size)}
            keep = np.isin(inverse, members)
            entry["n_items"] = int(keep.sum())
            if entry["n_items"]:
                counts = _Counts(_contingency(true[keep], pred[keep]))
                p, r, f = _pairwise(counts)
                bp, br, bf = _bcubed(counts)
                entry.update(pairwise_precision=p, pairwise_recall=r, pairwise_f=f,
                             bcubed_precision=bp, bcubed_recall=br, bcubed_f=bf)
            rows.append(entry)
        out[kind] = rows
    return out
