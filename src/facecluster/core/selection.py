"""Choosing a threshold on labeled training data: the one rule every method's ``auto`` uses.

A method clusters the labeled train part (or its held-out identities) at every threshold of
a grid, scores each clustering (F_P and F_B), and takes the largest threshold whose mean of
the two is within ``tolerance`` of the best (:func:`plateau_top`; tolerance 0: the best).
Scored on labeled data, F falls steeply below the best threshold (single linkage chains
identities together) and gently above it (identities split), and the steep side moves up as
the set to cluster grows.  A kNN-graph method therefore chooses on sets as large as the part
it clusters (:func:`choose_for_size`), with the tolerance its knob carries
(``core.tunable.Knob``), each measured on the evaluation matrix's pairs: 0 (the best value at
that size) where that scored better, ``TOLERANCE`` where it did not, as for the methods that
chain like single linkage (README, The evaluation matrix).  Where the part is larger than
every set it was chosen on, the cliff is still to move, and the choice is hedged towards the
top of the plateau (``BEYOND_TOLERANCE``; at MS1M scale the best train-side value chained
584k faces together where the plateau top did not: README, Performance).  A trained
method's threshold, chosen on a few hundred held-out identities whose curve can be noisy,
keeps ``TOLERANCE`` unless the matrix measured 0 better for that method (its own
``*_tolerance`` default says which); for a part larger than its held-out part, each method
passes the hedge the matrix measured for it (:func:`choose_held_out`).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

# The grid every auto threshold searches: 0.00, 0.01, ..., 0.99.
THRESHOLD_GRID = np.round(np.arange(0.0, 0.995, 0.01), 2)

# The default tolerance of a trained method's auto threshold (mean of F_P and F_B, in [0, 1]).
TOLERANCE = 0.01

# The tolerance a choice for a part larger than every size it was chosen at is hedged by per
# doubling of the part over the largest size (log2 of the ratio), up to ``doublings`` of them:
# the cliff moves up with N.
BEYOND_TOLERANCE = 0.01


def score_thresholds(cluster_at: Callable[[float], np.ndarray], labels: np.ndarray,
                     thresholds=THRESHOLD_GRID, key: str = "threshold") -> list[dict]:
    """``[{key: t, "f_pairwise": F_P, "f_bcubed": F_B, "p_pairwise", "r_pairwise",
    "p_bcubed", "r_bcubed", "n_clusters"}]`` of ``cluster_at(t)`` against ``labels`` (N,) at
    each threshold ``t``; with ``labels`` None only ``n_clusters``."""
    from .metrics import bcubed_prf, pairwise_prf

    scores = []
    for t in thresholds:
        value = t.item() if hasattr(t, "item") else t  # a plain int or float, as given
        pred = cluster_at(value)
        if labels is None:  # unlabeled: how many clusters, nothing to score
            scores.append({key: value, "n_clusters": int(np.unique(pred).size)})
            continue
        pp, pr, pf = pairwise_prf(labels, pred)
        bp, br, bf = bcubed_prf(labels, pred)
        scores.append({key: value, "f_pairwise": pf, "f_bcubed": bf, "p_pairwise": pp,
                       "r_pairwise": pr, "p_bcubed": bp, "r_bcubed": br,
                       "n_clusters": int(np.unique(pred).size)})
    return scores


# The numbers of a score entry (:func:`score_thresholds`); its one other key names the
# value the entry was scored at (``threshold``, ``tau``, ``theta``...).
SCORE_FIELDS = ("f_pairwise", "f_bcubed", "p_pairwise", "r_pairwise", "p_bcubed",
                "r_bcubed", "n_clusters")


def mean_f(entry: dict) -> float:
    """The mean of F_P and F_B of a score entry (0..1): what every choice on labeled data
    ranks by."""
    return (entry["f_pairwise"] + entry["f_bcubed"]) / 2


def score_key(entry: dict) -> str:
    """The name of the value a score entry was scored at: its one key that is not in
    ``SCORE_FIELDS``.  Raises ValueError when it has none."""
    key = next((k for k in entry if k not in SCORE_FIELDS), None)
    if key is None:
        raise ValueError(f"a score entry without its value: {sorted(entry)}")
    return key


def best_entry(scores: list[dict]) -> dict:
    """The entry of the highest :func:`mean_f` (the first on ties).  Raises ValueError when
    there is none."""
    if not scores:
        raise ValueError("no scores to choose from")
    return max(scores, key=mean_f)


def coarse_to_fine_scores(cluster_at: Callable[[float], np.ndarray], labels: np.ndarray,
                          thresholds, key: str = "threshold", step: int = 5,
                          tolerance: float = TOLERANCE, margin: float = 0.03) -> list[dict]:
    """``score_thresholds`` on every ``step``-th value of the grid (and its last), then on
    every value between the coarse point before the best and the coarse point after the
    last one within ``tolerance + margin`` of it: the best value and the top of its plateau
    at the grid's resolution, for a fraction of the clusterings.  Entries in grid order."""
    return coarse_to_fine(lambda values: score_thresholds(cluster_at, labels, values, key),
                          thresholds, step, tolerance, margin)


def coarse_to_fine(score_values: Callable[[list], list[dict]], thresholds, step: int = 5,
                   tolerance: float = TOLERANCE, margin: float = 0.03) -> list[dict]:
    """:func:`coarse_to_fine_scores` with any scorer: ``score_values(values)`` returns one
    score entry (``f_pairwise``, ``f_bcubed``) per value, in order (for example the mean
    over several draws, :func:`mean_scores`)."""
    grid = list(thresholds)
    if len(grid) <= 2 * step:
        return score_values(grid)
    coarse = sorted(set(range(0, len(grid), step)) | {len(grid) - 1})
    scored = dict(zip(coarse, score_values([grid[i] for i in coarse])))
    means = {i: mean_f(s) for i, s in scored.items()}
    best = max(means.values())
    first = min(i for i in coarse if means[i] == best)
    last = max(i for i in coarse if means[i] >= best - tolerance - margin)
    lo, hi = max(0, first - step), min(len(grid) - 1, last + step)
    fine = [i for i in range(lo, hi + 1) if i not in scored]
    if fine:
        scored.update(zip(fine, score_values([grid[i] for i in fine])))
    return [scored[i] for i in sorted(scored)]


def mean_scores(curves: list[list[dict]]) -> list[dict]:
    """The entry-by-entry mean of several draws' score lists over the same values (each
    from :func:`score_thresholds`): every number averaged (``n_clusters`` too), the value
    kept.  Raises ValueError when the lists are not over the same values."""
    if not curves:
        raise ValueError("no score lists to average")
    out = []
    for entries in zip(*curves, strict=True):
        first = entries[0]
        key = score_key(first)
        if any(e[key] != first[key] for e in entries):
            raise ValueError(f"score lists over different values: {[e[key] for e in entries]}")
        out.append({key: first[key], **{f: float(np.mean([e[f] for e in entries]))
                                         for f in SCORE_FIELDS if f in first}})
    return out


# Choosing for the size of the part to cluster (issue 14).  Where single linkage starts to
# chain identities together moves with the number of faces clustered, so a threshold is
# chosen on sets of the train part's identities as large as the part it will cluster: a
# ladder of sizes (the whole train part, then halvings down to MIN_DRAW_FACES), DRAWS draws
# of whole identities at each, their curves averaged; the value for a part of N faces is
# interpolated in log N between the two sizes around it (benchmarks/size_matched.py
# measured the gain on the evaluation matrix; README, The evaluation matrix).
DRAWS = 3
MIN_DRAW_FACES = 500


def size_ladder(n_faces: int, min_faces: int = MIN_DRAW_FACES) -> list[int]:
    """The sizes a threshold is chosen at: ``[n_faces, n_faces // 2, n_faces // 4, ...]``
    while a size is at least ``min_faces`` (``[n_faces]`` alone for a small train part)."""
    if n_faces < 1 or min_faces < 1:
        raise ValueError(f"sizes must be positive, got n_faces={n_faces}, "
                         f"min_faces={min_faces}")
    sizes = [int(n_faces)]
    while sizes[-1] // 2 >= min_faces:
        sizes.append(sizes[-1] // 2)
    return sizes


def ladder_scores(labels: np.ndarray, score_parts: Callable[[list], list[dict]],
                  draws: int = DRAWS, min_faces: int = MIN_DRAW_FACES, seed: int = 0,
                  progress: Callable[[str], None] | None = None,
                  min_part: int = 1) -> list[dict]:
    """The scores of a threshold at every size of :func:`size_ladder`: a list, largest
    first, of ``{"n_faces", "draws", "scores"}``.

    ``labels`` (N,) are the train part's identities; ``score_parts(parts)`` scores the
    method on the faces ``parts`` (a list of int index arrays, or ``[None]`` for the whole
    part) and returns one curve averaged over them (see :func:`coarse_to_fine` and
    :func:`mean_scores`).  Below the whole part each size is ``draws`` sets of whole
    identities drawn at random (``core.ingest.subsample_identities`` with seeds
    ``seed, seed + 1, ...``); ``n_faces`` is their mean size.  A draw of fewer than
    ``min_part`` faces (whole identities stop a draw early when a large one does not fit)
    is left out, and a size none of whose draws is left is skipped: a method that cannot
    cluster so few faces (one that reads k candidates a face) still gets a ladder.
    """
    from .ingest import subsample_identities

    labels = np.asarray(labels)
    ladder = []
    for i, size in enumerate(size_ladder(labels.size, min_faces)):
        if progress:
            progress(f"{size} faces" + (f" ({draws} draws)" if i else " (the train part)"))
        parts = [None] if i == 0 else [subsample_identities(labels, size, seed + d)
                                       for d in range(draws)]
        parts = [p for p in parts if p is None or p.size >= min_part]
        if not parts:
            if progress:
                progress(f"{size} faces: every draw under {min_part} faces, size skipped")
            continue
        sizes = [labels.size if p is None else p.size for p in parts]
        ladder.append({"n_faces": int(round(float(np.mean(sizes)))), "draws": len(parts),
                       "scores": score_parts(parts)})
    return ladder


def pool_ladders(ladders: list[list[dict]]) -> list[dict]:
    """Several held-out ladders (:func:`ladder_scores`, one per trained model and its own
    held-out identities: several validation folds) as one: their curves averaged size by
    size, as k-fold cross-validation averages its folds' curves before choosing.

    The sizes are matched by position, largest first; a ladder with more sizes than another
    is cut to the shorter (a size is kept only where every ladder measured it).  Each
    pooled size has the mean ``n_faces`` of its rungs (rounded) and their ``draws`` summed;
    its ``scores`` are :func:`mean_scores` of theirs.  One ladder comes back unchanged.
    Raises ValueError when there is no ladder, one is empty, or two score different
    values at a size."""
    if not ladders or any(not ladder for ladder in ladders):
        raise ValueError("pooling needs at least one non-empty ladder")
    if len(ladders) == 1:
        return ladders[0]
    pooled = []
    for rungs in zip(*(sorted(ladder, key=lambda r: -r["n_faces"]) for ladder in ladders)):
        pooled.append({"n_faces": round(float(np.mean([r["n_faces"] for r in rungs]))),
                       "draws": int(sum(r["draws"] for r in rungs)),
                       "scores": mean_scores([r["scores"] for r in rungs])})
    return pooled


def held_out_ladder(features: np.ndarray, labels: np.ndarray, rows: np.ndarray, knn: dict,
                    prepare: Callable[[np.ndarray, np.ndarray, np.ndarray],
                                      Callable[[Any], np.ndarray]],
                    grid, key: str, threads: int = 1,
                    progress: Callable[[str], None] | None = None) -> list[dict]:
    """:func:`ladder_scores` of a trained method's held-out identities clustered as a test
    part is: the part's own kNN graph, then the method at every value of ``grid``.

    ``features`` (N, D) unit rows and ``labels`` (N,) of the train part; ``rows`` the
    faces of the identities the model never trained on (:func:`held_out_identities`).
    Each part of the ladder (those rows, then draws of their identities at halvings of
    their size) gets its own kNN lists (``core.knn.knn_graph`` with the ``knn`` settings,
    k capped at the part's size); ``prepare(features (n, D), ids, sims (n, k))`` runs the
    trained model on them and returns ``cluster_at(value)`` → labels (n,); the draws of a
    size are scored together, coarse to fine over ``grid`` (:func:`coarse_to_fine`).  A
    draw of fewer than k faces is left out.  Returns the ladder (largest first), for
    :func:`choose_for_size`.  Raises ValueError when ``rows`` is empty."""
    from .knn import knn_graph

    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        raise ValueError("no held-out faces to choose on")
    labels = np.asarray(labels)

    def score_parts(parts: list) -> list[dict]:
        drawn = []
        for part in parts:
            r = rows if part is None else rows[part]
            x = np.ascontiguousarray(features[r])
            ids, sims, _ = knn_graph(x, threads=threads,
                                     **{**knn, "k": min(int(knn["k"]), r.size)})
            drawn.append((prepare(x, ids, sims), labels[r]))

        def score_values(values: list) -> list[dict]:
            return mean_scores([score_thresholds(cluster_at, part_labels, values, key)
                                for cluster_at, part_labels in drawn])
        return coarse_to_fine(score_values, grid)

    return ladder_scores(labels[rows], score_parts, min_part=min(int(knn["k"]), rows.size),
                         progress=progress)


def choose_for_size(ladder: list[dict], n_faces: int, key: str, grid,
                    tolerance: float = TOLERANCE, beyond: float = BEYOND_TOLERANCE,
                    doublings: float = 1.0) -> tuple[Any, dict, list[dict], str]:
    """The value of ``key`` for a part of ``n_faces`` faces from :func:`ladder_scores`:
    ``(value, entry, scores, where)``.

    At each size :func:`plateau_top` chooses with ``tolerance``; a part no larger than the
    smallest size takes that size's choice; in between, the position in ``grid``
    (increasing values) is interpolated linearly in log N between the two sizes around
    ``n_faces`` and rounded to the nearest value of the grid.  A part larger than the
    largest size (the whole train part) takes that size's plateau top with the tolerance
    ``max(tolerance, beyond · min(doublings, log2(n_faces / largest)))``: nothing measured
    that size, and the cliff below the best value moves up with N.  ``entry`` is that value's
    entry in the curve of the size nearest in log N (``scores``), the figure ``auto``
    reports; ``where`` says which size it was chosen on (``"all N faces"`` or ``"3 draws of
    N faces of its identities"``, and the hedge when there was one).
    Raises ValueError on an empty ladder or ``n_faces`` < 1."""
    if not ladder:
        raise ValueError("no sizes to choose from")
    if n_faces < 1:
        raise ValueError(f"n_faces must be positive, got {n_faces}")
    values = list(grid)
    grid = np.asarray(values, dtype=float)
    rungs = sorted(ladder, key=lambda r: -r["n_faces"])
    picks = [plateau_top(r["scores"], key, tolerance)[key] for r in rungs]
    sizes = np.array([r["n_faces"] for r in rungs], dtype=float)
    hedge = ""
    if n_faces > sizes[0]:
        at = 0
        wider = max(tolerance, beyond * min(doublings, float(np.log2(n_faces / sizes[0]))))
        value = plateau_top(rungs[0]["scores"], key, wider)[key]
        if wider > tolerance:
            hedge = f", hedged by {wider:.3f} for {n_faces} faces"
    elif len(rungs) == 1 or n_faces == sizes[0]:
        at, value = 0, picks[0]
    elif n_faces <= sizes[-1]:
        at, value = len(rungs) - 1, picks[-1]
    else:
        j = int(np.flatnonzero(sizes >= n_faces)[-1])  # sizes[j] >= n > sizes[j + 1]
        w = np.log(sizes[j] / n_faces) / np.log(sizes[j] / sizes[j + 1])
        i_big, i_small = (int(np.argmin(np.abs(grid - v))) for v in (picks[j], picks[j + 1]))
        value = values[int(round(i_big + w * (i_small - i_big)))]
        at = j if w <= 0.5 else j + 1
    value = value.item() if hasattr(value, "item") else value  # a plain int or float
    scores = rungs[at]["scores"]
    entry = min(scores, key=lambda s: abs(s[key] - value))
    where = (f"all {rungs[0]['n_faces']} faces" if at == 0 else
             f"{rungs[at]['draws']} draws of {rungs[at]['n_faces']} faces of its identities")
    return value, entry, scores, where + hedge


def choose_held_out(ladder: list[dict], n_faces: int | None, key: str, grid,
                    tolerance: float, beyond: float = BEYOND_TOLERANCE,
                    doublings: float = 1.0) -> tuple[float, dict, list[dict], str]:
    """:func:`choose_for_size` on a trained method's :func:`held_out_ladder`: ``(value,
    entry, scores, where)`` for a part of ``n_faces`` faces (None: the whole held-out part),
    ``where`` naming the held-out identities.  A part larger than the held-out part is
    hedged by ``beyond`` per doubling for up to ``doublings`` of them (each method's own,
    measured on the evaluation matrix; ``beyond`` 0: not hedged, for a knob whose best
    value moves the other way with N).  Raises ValueError on an empty ladder."""
    if not ladder:
        raise ValueError("no sizes to choose from")
    n = ladder[0]["n_faces"] if n_faces is None else n_faces
    value, entry, scores, where = choose_for_size(ladder, n, key, list(grid), tolerance,
                                                  beyond, doublings)
    return float(value), entry, scores, f"held-out training identities clustered alone, {where}"


def ladder_choice(key: str, choose: Callable[[list[dict], int, float], tuple]
                  ) -> Callable[[dict, int, float], tuple[str, float] | None]:
    """A method's ``held_out_choice`` (``core.contract.Method``): reads the final stage's
    ladder input ``key`` (also the threshold's name in its ``scan``) and returns ``(key,
    value)`` with ``value`` the first item of ``choose(ladder, n_faces, tolerance)``, the
    method's own held-out rule; None when the inputs hold no such ladder."""
    from . import io

    def choice(inputs: dict, n_faces: int, tolerance: float) -> tuple[str, float] | None:
        if key not in inputs:
            return None
        return key, choose(io.read_json(inputs[key])["ladder"], n_faces, tolerance)[0]
    return choice


def log_ladder(ladder: list[dict], key: str, symbol: str, sign: float = 1.0) -> None:
    """Log each size's best value of a :func:`held_out_ladder` (``sign`` −1 for a ladder
    kept on −value: a knob whose cautious side is the small value)."""
    from .progress import log

    for rung in ladder:
        top = plateau_top(rung["scores"], key)
        log.info("%s on %d held-out faces (%d draws): best %.4g (F_P %.4f, F_B %.4f)", symbol,
                 rung["n_faces"], rung["draws"], sign * top[key], top["f_pairwise"],
                 top["f_bcubed"])


def list_threshold_scores(ids: np.ndarray, sims: np.ndarray, labels: np.ndarray,
                         thresholds=THRESHOLD_GRID, strict: bool = False,
                         key: str = "threshold") -> list[dict]:
    """``score_thresholds`` of the thresholded kNN lists (``components.link_threshold``)."""
    from .components import link_threshold

    return score_thresholds(lambda t: link_threshold(ids, sims, t, strict), labels,
                            thresholds, key)


def plateau_top(scores: list[dict], key: str = "threshold", tolerance: float = 0.0) -> dict:
    """The entry with the largest ``key`` whose mean of F_P and F_B is within ``tolerance``
    of the best mean; ``tolerance = 0``: the best entry (the lowest ``key`` on ties)."""
    if tolerance < 0:
        raise ValueError(f"tolerance must be ≥ 0, got {tolerance}")
    if not scores:
        raise ValueError("no scores to choose from")
    means = [mean_f(s) for s in scores]
    best = max(means)
    if tolerance == 0:
        return scores[means.index(best)]
    return max((s for s, m in zip(scores, means) if m >= best - tolerance), key=lambda s: s[key])


def train_score(entry: dict, where: str) -> dict:
    """What a chosen value scored on training data, as the clusters artifact records it
    (``train_score``): the mean of F_P and F_B, both, and on what it was measured.  Methods
    are compared by it (``method: auto``)."""
    return {"score": mean_f(entry),
            "f_pairwise": entry["f_pairwise"], "f_bcubed": entry["f_bcubed"], "on": where}



def held_out_identities(labels: np.ndarray, fraction: float, seed: int,
                        stream: int = 0) -> np.ndarray:
    """A bool per face (N,): whether its identity is held out to choose a model and its
    threshold; none held out when ``fraction`` is 0 or there are too few identities (fewer
    than one held out, or fewer than two left to train on).  Whole identities, drawn with
    ``numpy.random.default_rng([seed, stream])``: each trained method has its own
    ``stream``, so its split does not move when another method's does."""
    identities = np.unique(labels)
    n_held = int(round(fraction * identities.size))
    if n_held < 1 or identities.size - n_held < 2:
        return np.zeros(labels.size, dtype=bool)
    rng = np.random.default_rng([seed, stream])
    return np.isin(labels, rng.choice(identities, size=n_held, replace=False))


def local_ids(ids: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Lists of face ids (M, k) among ``n`` faces as positions in ``rows`` (sorted, unique
    int): int64, −1 where an id is not among ``rows`` or was −1 (no neighbour)."""
    position = np.full(n + 1, -1, dtype=np.int64)  # position[−1] is the spare −1
    position[rows] = np.arange(rows.size)
    return position[np.asarray(ids, dtype=np.int64)]


def restrict_lists(ids: np.ndarray, sims: np.ndarray,
                   rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kNN lists of faces ``rows`` among themselves (a held-out part clustered as a
    test part is): ``(ids, sims)`` (R, k) with ids into ``rows``, and −1 (similarity −1)
    where a neighbour is not among them."""
    sub = local_ids(ids[rows], rows, ids.shape[0])
    return sub, np.where(sub >= 0, sims[rows], -1.0).astype(np.float32)


class HeldOutSelection:
    """The model selection every trained method with held-out identities shares: score the
    model before training and every few steps on the held-out identities, keep the best
    (a later one on a tie, never the untrained one), and record it all.

    ``observe(step, scores)`` takes a step's score entries over the method's threshold
    (``key``, shown as ``symbol`` in the log); ``snapshot()`` (given) returns the model's
    state to keep.  ``result(labels, held, final)`` is ``(state, validation)``: the kept
    state (``final`` when no trained step was scored) and the record the checkpoint holds
    (``score``, ``step``, ``scores``, ``untrained_score``, ``curve``, ``held_out_identities``),
    which ``core.health.validation_findings`` reads."""

    def __init__(self, what: str, snapshot: Callable[[], dict], key: str, symbol: str):
        self.what, self.snapshot, self.key, self.symbol = what, snapshot, key, symbol
        self.best: dict = {"score": -1.0}
        self.curve: list[dict] = []

    def observe(self, step: int, scores: list[dict]) -> None:
        from .progress import log

        top = best_entry(scores)
        value = mean_f(top)
        self.curve.append({"step": step, "score": round(value, 5)})
        log.info("%s validation at step %d: F_P %.4f, F_B %.4f at %s %s", self.what, step,
                 top["f_pairwise"], top["f_bcubed"], self.symbol, top[self.key])
        if step == 0:
            self.best["untrained_score"] = value
        elif value >= self.best["score"]:
            self.best.update(score=value, step=step, scores=scores, state=self.snapshot())

    def result(self, labels: np.ndarray, held: np.ndarray, final: dict) -> tuple[dict, dict]:
        from .progress import log

        best = dict(self.best)
        state = best.pop("state", final)
        log.info("%s kept the model of step %s (held-out score %.4f; untrained %.4f)",
                 self.what, best.get("step"), best["score"], best.get("untrained_score", -1.0))
        return state, {**best, "curve": self.curve,
                       "held_out_identities": int(np.unique(labels[held]).size)}
