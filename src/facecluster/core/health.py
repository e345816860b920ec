"""Health checks: conditions under which a run finishes but its result is likely wrong.

A stage that notices one records it in its artifact's attributes under ``health`` (a list
of findings) and logs it as a WARNING; the summary prints every finding of every result
below its table, so a degenerate graph, a threshold at the edge of its grid or a model
kept at its untrained step cannot pass unseen.  A finding is a dict:

    {"check": name, "message": what happened and what to do, **numbers}

The checks every method shares are here; a method adds its own the same way, and states
the fall-back it took, if it has one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

from .progress import log

# The label-free threshold of the thresholded-kNN baseline: the reference for "faces the
# kNN graph would put together".
REFERENCE_SIMILARITY = 0.6


# The checks whose findings are made but not logged in this context (``quiet``); "*": all.
_QUIET: ContextVar[frozenset] = ContextVar("facecluster_health_quiet", default=frozenset())


def finding(check: str, message: str, **numbers) -> dict:
    """One finding, logged as a WARNING as it is made (unless ``quiet`` holds its check)."""
    if not {check, "*"} & _QUIET.get():
        log.warning("health check %s: %s", check, message)
    return {"check": check, "message": message, **numbers}


@contextmanager
def quiet(*checks: str) -> Iterator[None]:
    """Findings of ``checks`` (every check when none is named) made inside are returned
    as always but not logged: for checks repeated on faces whose findings were logged
    already (a command line that checked its faces at ingest; ``auto``'s final fit) or
    made on parts that are not the user's result (``auto``'s held-out candidates).  The
    setting is a context variable: it holds in this thread (and asyncio task) only, not in
    the worker threads of a pool started inside."""
    token = _QUIET.set(_QUIET.get() | (frozenset(checks) or {"*"}))
    try:
        yield
    finally:
        _QUIET.reset(token)


def at_grid_edge(name: str, value, grid: Iterable, scores: list[dict] | None = None,
                 chosen: dict | None = None) -> list[dict]:
    """A value chosen on training data at the first or last point of its grid: the best
    may lie beyond it, or the training scores did not change over the grid.  ``scores``:
    the curve it was chosen on; ``chosen``: its entry there.  A value that scored below the
    curve's best is at the edge by the rule's tolerance or hedge, not because the best is
    out of reach: no finding."""
    grid = list(grid)
    if not grid or value not in (grid[0], grid[-1]):
        return []
    flat = ""
    if scores:
        means = [(s["f_pairwise"] + s["f_bcubed"]) / 2 for s in scores]
        if max(means) - min(means) < 1e-9:
            flat = "; the training scores are the same at every value"
        elif chosen is not None and \
                (chosen["f_pairwise"] + chosen["f_bcubed"]) / 2 < max(means) - 1e-9:
            return []
    return [finding("grid_edge", f"{name} {value} was chosen at the edge of its grid "
                                 f"({grid[0]}..{grid[-1]}){flat}: set it by hand, or train "
                                 f"on data more like the data you cluster", value=value)]


def validation_findings(validation: dict, model: str, knob: str) -> list[dict]:
    """Findings on a model's validation on held-out training identities (a record with
    ``score``, ``step`` and ``untrained_score``, the mean of F_P and F_B): identities
    clustered perfectly (they can choose neither the model nor ``knob``), or a training
    that never beat the untrained model on them.  ``model`` names the model in the
    message ("the GCN")."""
    out = []
    if not validation:
        return out
    if validation.get("score", 0) >= 0.999:
        out.append(finding("validation_saturated",
                           f"{model}'s held-out training identities are clustered perfectly "
                           f"(score {validation['score']:.4f}): too easy to choose a model or "
                           f"{knob}; train on more, or more varied, identities, or set {knob} "
                           f"by hand", score=validation["score"]))
    untrained = validation.get("untrained_score")
    if untrained is not None and untrained >= validation.get("score", 0):
        out.append(finding("untrained_best",
                           f"no trained model scored above the untrained one on {model}'s "
                           f"held-out identities ({validation['score']:.4f} vs "
                           f"{untrained:.4f}); the model of step {validation['step']} was kept",
                           score=validation["score"], untrained_score=untrained))
    return out


def mostly_singletons(labels: np.ndarray, ids: np.ndarray, sims: np.ndarray,
                      limit: float = 0.9) -> list[dict]:
    """Almost every face alone, while the kNN graph at the baseline's label-free τ puts most
    faces with a neighbour: a stage upstream (a learned graph, a threshold) likely failed."""
    labels = np.asarray(labels)
    n = labels.size
    if n < 20:
        return []
    _, counts = np.unique(labels, return_counts=True)
    alone = float((counts == 1).sum()) / n
    others = ids[:, 1:]
    near = float(((others >= 0) & (sims[:, 1:] >= REFERENCE_SIMILARITY)).any(axis=1).mean())
    if alone < limit or near < 0.5:
        return []
    return [finding("mostly_singletons",
                    f"{100 * alone:.0f}% of the faces are clusters of their own, while "
                    f"{100 * near:.0f}% have a kNN neighbour at cosine ≥ "
                    f"{REFERENCE_SIMILARITY}: a stage upstream likely failed on this data",
                    singleton_fraction=alone, near_fraction=near)]


# Random pairs whose median cosine each statistic of ``chained_cluster`` takes.
CHAIN_PAIRS = 2000
# How much more alike two faces of one cluster must typically be than two faces of two
# clusters (cosine) before a cluster can be called chained: below it the clusters carry no
# signal to compare with.
CHAIN_MIN_CONTRAST = 0.1


def chained_cluster(labels: np.ndarray, features, pairs: int = CHAIN_PAIRS,
                    seed: int = 0) -> list[dict]:
    """The largest cluster chained: two of its faces are typically nearer in cosine to two
    faces of different clusters than to two faces of one of the other clusters.

    A threshold below the data's cliff links identities through chains of close pairs
    into one cluster whose ends are strangers (issue 14: Ada-NETS put 41% of a test part
    in one cluster).  Label-free: ``labels`` (N,) cluster labels, ``features`` (N, D) unit
    rows, or a function of sorted row indices that reads those rows (``io.read_rows``; the
    sampled rows are read once).  The three medians are over ``pairs`` random pairs
    (``seed``): m_L of the largest cluster's members, m_in of a face of another
    non-singleton cluster and a co-member, m_out of faces of two clusters.  A finding when
    m_L < (m_in + m_out) / 2 and m_in − m_out ≥ ``CHAIN_MIN_CONTRAST``; none when no other
    cluster has two faces.
    """
    labels = np.asarray(labels)
    n = labels.size
    _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    largest = int(np.argmax(sizes))
    members = np.flatnonzero(inverse == largest)
    others = np.flatnonzero((sizes[inverse] >= 2) & (inverse != largest))
    if members.size < 3 or others.size == 0:
        return []
    rng = np.random.default_rng(seed)
    within_largest = rng.choice(members, pairs), rng.choice(members, pairs)
    # A face of another cluster (faces weigh alike) and a co-member drawn at random.
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    x = rng.choice(others, pairs)
    within = x, order[starts[inverse[x]] + rng.integers(0, sizes[inverse[x]])]
    between = rng.integers(0, n, pairs), rng.integers(0, n, pairs)
    rows = np.unique(np.concatenate([*within_largest, *within, *between]))
    sample = np.asarray(features[rows] if isinstance(features, np.ndarray) else features(rows),
                        dtype=np.float32)

    def median(a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> float:
        a, b = np.searchsorted(rows, a[keep]), np.searchsorted(rows, b[keep])
        return float(np.median(np.einsum("ij,ij->i", sample[a], sample[b])))

    m_l = median(*within_largest, within_largest[0] != within_largest[1])
    m_in = median(*within, within[0] != within[1])
    m_out = median(*between, inverse[between[0]] != inverse[between[1]])
    if m_in - m_out < CHAIN_MIN_CONTRAST or m_l >= (m_in + m_out) / 2:
        return []
    share = members.size / n
    return [finding("chained_cluster",
                    f"the largest cluster ({members.size} faces, {100 * share:.1f}%) looks "
                    f"chained: two of its faces are typically at cosine {m_l:.2f}, two faces "
                    f"of another cluster at {m_in:.2f}, two faces of different clusters at "
                    f"{m_out:.2f}; its threshold likely linked identities together: raise it, "
                    f"or check this cluster", size=int(members.size), share=share,
                    median_within_largest=m_l, median_within=m_in, median_between=m_out)]


# A common component: the 10th percentile of the cosines of random pairs of faces at least
# this.  Random pairs are mostly of different people, whose cosine a face model puts near 0
# (the LFW FaceNet subset and the generator: 10th percentile −0.15 and −0.13); dlib's
# vectors share one large component (0.79: different people at 0.84).
SHARED_COMPONENT_COSINE = 0.5
SHARED_COMPONENT_ROWS = 2000


def shared_component(features: np.ndarray, where: str, rows: int = SHARED_COMPONENT_ROWS
                     ) -> list[dict]:
    """A finding when the faces share one large component, which ``normalise: center_l2``
    removes: the 10th percentile of the cosines between ``rows`` random faces (a fixed
    draw) is at least ``SHARED_COMPONENT_COSINE``.  Every cosine is then squeezed towards 1
    and a threshold set on other data links different people (dlib's LFW vectors with
    ``l2``: Infomap's default τ 0.58 put 3,000 faces of 1,398 people in 12 clusters).

    ``features``: (N, D) rows, no zero row (each sampled row is scaled to unit length here);
    ``where`` names them.  Returns [] or one ``shared_component`` finding.  A set of nearly
    all one person also fires; its message says to leave such a set as it is."""
    x = np.asarray(features)
    if x.shape[0] < 3:
        return []
    pick = np.sort(np.random.default_rng(0).choice(x.shape[0], min(rows, x.shape[0]),
                                                   replace=False))
    sample = np.asarray(x[pick], dtype=np.float64)
    sample /= np.linalg.norm(sample, axis=1, keepdims=True)
    sims = sample @ sample.T
    low = float(np.quantile(sims[np.triu_indices(len(sample), 1)], 0.1))
    if low < SHARED_COMPONENT_COSINE:
        return []
    return [finding("shared_component",
                    f"{where}: 90% of random pairs of faces are at cosine {low:.2f} or more: "
                    f"the vectors share one large component (as dlib's do), which squeezes "
                    f"every cosine towards 1, and thresholds set on other data link "
                    f"different people; use normalise: center_l2 (unless nearly every face "
                    f"is of one person)", cosine_p10=low)]


def collect(attrs: dict | None) -> list[dict]:
    """The findings an artifact's attributes (or a JSON file's content) hold."""
    return list((attrs or {}).get("health") or [])


# Neighbour ranks whose cosines describe a kNN graph's profile.
PROFILE_RANKS = (1, 2, 5, 10, 20, 40, 80)


def similarity_profile(sims: np.ndarray) -> dict:
    """The median cosine of the r-th neighbour (the face itself is rank 0) at each rank of
    ``PROFILE_RANKS`` the lists reach: what a trained model remembers of its training data."""
    sims = np.asarray(sims)
    return {str(r): float(np.median(sims[:, r])) for r in PROFILE_RANKS if r < sims.shape[1]}


def profile_shift(trained: dict | None, new: dict, limit: float = 0.15) -> list[dict]:
    """A finding when the new data's kNN profile differs from the training data's by more
    than ``limit`` (cosine) at some rank: thresholds and models learned there may not hold."""
    if not trained:
        return []
    gaps = {r: new[r] - trained[r] for r in trained if r in new}
    if not gaps:
        return []
    rank, gap = max(gaps.items(), key=lambda item: abs(item[1]))
    if abs(gap) <= limit:
        return []
    return [finding("unlike_training_data",
                    f"the {rank}-th neighbours are at median cosine {new[rank]:.2f} here and "
                    f"{trained[rank]:.2f} in the training data: what was learned there "
                    f"(thresholds, models) may not hold; check the result, or train on data "
                    f"like this", rank=int(rank), new=new[rank], trained=trained[rank])]
