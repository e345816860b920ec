"""``method: auto``: the product chooses, on labeled training data, which of its methods
to run on the faces to cluster.

The candidates are compared on validation parts built like a test part: a share of the
train part's identities (``validation.fraction``) is held out, each candidate is trained
and tuned on the rest exactly as it is on the whole train part, and clusters the held-out
identities as it clusters a test part (its own kNN graph and every stage).  The mean of
F_P and F_B there is each candidate's score, honest and the same measure for every method
(what a method's own tuning reports is not: a threshold scores better on the data it was
chosen on, and Ada-NETS's held-out identities sit inside its training graph).  With
``validation.folds`` > 1 the identities are held out again with the next seeds and the
score is the mean over the folds: one held-out draw separates the candidates by less than
its own noise (a few tenths of a point on the evaluation matrix).

A method's score moves with the size of the part it clusters (single linkage chains more
identities together in a larger part; a density method holds steady), and the validation
part is rarely as large as the test part (LFW FaceNet: 518 held-out faces against 1,356 to
cluster).  With ``validation.size_draws`` > 0 each candidate also clusters that many
smaller validation parts per fold, whole held-out identities filling half the held-out
faces, with the same trained rest; its score is taken as linear in log N through the two
sizes and read at the test part's size (:func:`score_for_size`: never below the smaller
size, and at most ``validation.doublings`` doublings above the held-out part).  It is off
by default: on the FaceNet pair, the one it was made for, it changed no choice
(docs/evaluation.md).  The ``select`` stage
keeps the test clusters of the best candidate (the first listed on a tie), each candidate
trained on the whole train part as its own experiment would be, and says which it chose
and why; the summary shows ``choice=auto(NAME)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import io
from ..core.contract import ClusterModel, Method, Outcome, Stage, StageJob
from ..core.params import Param, Params, integer, nullable, number
from ..core.planning import ConfigError, short_hash
from ..core.progress import log

# The candidates, each with its own main setting chosen on the train part.  The Face
# Transformer joined on 2026-12-01 (docs/evaluation.md: chosen where its held-out
# score led by 12.5 points, +11.9 on that pair, and not chosen on the pairs where it did not
# lead).
CANDIDATES = [
    {"method": "knn_threshold", "threshold": "auto"},
    {"method": "infomap", "threshold": "auto"},
    {"method": "fc_es", "theta": "auto"},
    {"method": "hdbscan", "min_cluster_size": "auto"},
    {"method": "leiden", "resolution": "auto"},
    {"method": "chinese_whispers", "threshold": "auto"},
    {"method": "adanets"},
    {"method": "face_transformer"},
]

CANDIDATE_SCHEMA = {"type": "array", "minItems": 1,
                    "items": {"type": "object", "required": ["method"],
                              "properties": {"method": {"type": "string"}}}}

PARAMS = Params(
    candidates=Param(CANDIDATES, CANDIDATE_SCHEMA,
                     "the methods to choose from, each with its settings"),
    validation=Params(
        fraction=Param(0.3, number(exclusive_minimum=0, exclusive_maximum=1),
                       "the share of the train part's identities held out to compare on"),
        seed=Param(0, integer(), "which identities are held out (fold f: seed + f)"),
        folds=Param(3, integer(1), "validation parts, each its own draw of identities; "
                                   "the score is their mean (1: a single draw; the "
                                   "README's evaluation matrix measures both)"),
        size_draws=Param(0, integer(0), "smaller validation parts per fold (half its "
                                        "faces, whole identities) to read each score at "
                                        "the test part's size (0: the score as measured)"),
        doublings=Param(1.0, number(0), "how far above the held-out part's size a score "
                                        "is carried, in doublings of the part"),
        test_faces=Param(None, nullable(integer(1)),
                         "the size of the part to choose for (null: the workflow's test "
                         "part; the Python model: as many faces as it is fitted on)"),
    ),
)


def _named(candidates: list[dict]) -> list[tuple[str, dict]]:
    """``(name, candidate)`` in order: the method's name, or with its settings' hash when
    an earlier candidate took it."""
    named: list[tuple[str, dict]] = []
    for candidate in candidates:
        name = candidate["method"]
        if any(taken == name for taken, _ in named):
            name = f"{name}-{short_hash(candidate)}"
        named.append((name, candidate))
    return named


def _settings(candidate: dict) -> dict:
    """A candidate's settings: everything but its method."""
    return {k: v for k, v in candidate.items() if k != "method"}


# The smaller validation parts hold this share of the held-out faces: one halving, as a
# threshold's size ladder steps (``core.selection.size_ladder``).
SIZE_SHARE = 0.5


def _validation_key(name: str, fold: int, draw: int | None = None) -> str:
    """The input a candidate's score on validation fold ``fold`` comes in as (fold 0 keeps
    the single-draw name, so a one-fold plan is the one it always was); with ``draw``, its
    score on that fold's smaller part ``draw``."""
    key = f"{name}.validation" + (f".{fold}" if fold else "")
    return key if draw is None else f"{key}.smaller.{draw}"


def score_for_size(full: tuple[float, float], smaller: tuple[float, float] | None,
                   n_faces: int, doublings: float) -> float:
    """A candidate's score on one validation fold read at a part of ``n_faces`` faces.

    ``full`` is ``(faces, score)`` on the whole held-out part and ``smaller`` the same on
    its smaller parts (their mean; None: none measured, and the score comes back as is).
    The score is taken as linear in log2 of the part's size through the two points and
    read at ``n_faces`` clipped to ``[smaller faces, full faces · 2**doublings]``: never
    below the size measured, and at most ``doublings`` doublings above the held-out part
    (the same reach as a threshold's held-out hedge, ``core.selection.choose_for_size``),
    and kept in [0, 1], as a score is.  Where the smaller part is not smaller (one identity larger than the share) the score
    comes back as is.  Raises ValueError when ``n_faces`` < 1 or ``doublings`` < 0."""
    import math

    if n_faces < 1 or doublings < 0:
        raise ValueError(f"n_faces must be ≥ 1 and doublings ≥ 0, got {n_faces}, {doublings}")
    n_full, s_full = full
    if smaller is None or not 0 < smaller[0] < n_full:
        return float(s_full)
    n_small, s_small = smaller
    span = math.log2(n_full / n_small)
    at = min(max(math.log2(n_faces / n_full), -span), float(doublings))
    return float(min(max(s_full + (s_full - s_small) / span * at, 0.0), 1.0))


def validation_score(metrics: dict, where: str) -> tuple[float, float]:
    """(F_P, F_B) of one candidate on one validation part, from its scores (its
    ``metrics.json``, or ``core.metrics.evaluate``'s dict).

    Raises ``ValueError`` naming ``where`` when the part had no labels to score."""
    if "pairwise_f" not in metrics:
        raise ValueError(f"{where}: the validation part has no labels to score")
    return float(metrics["pairwise_f"]), float(metrics["bcubed_f"])


def fold_score(full: dict, smaller: list[dict], n_faces: int, doublings: float,
               where: str) -> tuple[float, float]:
    """``(measured, at_size)``: a candidate's mean of F_P and F_B on one validation fold
    (``full``, its scores: ``core.metrics.evaluate``'s dict or ``metrics.json``), and that
    score read at a part of ``n_faces`` faces (:func:`score_for_size`) through its mean
    score on the fold's smaller parts (``smaller``, the same dicts; empty: as measured).
    Raises ValueError naming ``where`` when a part had no labels to score."""
    def point(metrics: dict) -> tuple[float, float]:
        f_p, f_b = validation_score(metrics, where)
        return float(metrics["n_items"]), (f_p + f_b) / 2

    measured = point(full)
    small = [point(m) for m in smaller]
    mean_small = (sum(n for n, _ in small) / len(small),
                  sum(v for _, v in small) / len(small)) if small else None
    return measured[1], score_for_size(measured, mean_small, n_faces, doublings)


def choose(per_fold: dict[str, list[float]], folds: int,
           at: str = "") -> tuple[str, dict[str, float], str]:
    """The candidate to keep: ``(name, {name: score}, why)``.

    ``per_fold`` maps each candidate's name, in the candidates' order, to its mean of F_P
    and F_B (in [0, 1]) on each validation fold (read at the test part's size, which
    ``at`` names for the sentence); its score is their mean, and the best score wins (the
    first listed on a tie).  ``why`` is the sentence the summary shows.
    Raises ValueError when there is no candidate."""
    if not per_fold:
        raise ValueError("no candidate to choose from")
    scored = {name: sum(values) / len(values) for name, values in per_fold.items()}
    name = max(scored, key=scored.get)  # dicts keep the candidates' order: the first on a tie
    ranking = ", ".join(f"{n} {100 * v:.1f}" for n, v in sorted(scored.items(),
                                                                key=lambda e: -e[1]))
    over = "" if folds == 1 else f", the mean over {folds} draws of them"
    why = (f"chose {name}: the best mean of F_P and F_B on held-out training identities"
           f"{over}{at} ({ranking})")
    return name, scored, why


def _at(n_faces: int, draws: int) -> str:
    """The part of :func:`choose`'s sentence that says at what size the scores were read."""
    return f", read at {n_faces} faces" if draws else ""


def select(job: StageJob) -> None:
    """Keep the test clusters of the candidate with the best mean validation score: the
    mean of F_P and F_B on each validation fold read at the test part's size
    (:func:`fold_score`), averaged over the folds (:func:`choose`)."""
    folds, draws = int(job.params.get("folds", 1)), int(job.params.get("size_draws", 0))
    doublings = float(job.params.get("doublings", 1.0))
    n_faces = job.params.get("test_faces") or io.read_attrs(job.input("features"))["n"]
    per_fold, measured = {}, {}
    for name in job.params["names"]:
        points = []
        for f in range(folds):
            key = _validation_key(name, f)
            smaller = [io.read_json(job.input(_validation_key(name, f, d)))
                       for d in range(draws)]
            points.append(fold_score(io.read_json(job.input(key)), smaller, n_faces,
                                     doublings, job.input(key)))
        measured[name] = [m for m, _ in points]
        per_fold[name] = [a for _, a in points]
        log.info("candidate %s: validation mean of F_P and F_B %s (mean %.4f over %d fold%s)"
                 "%s", name, " ".join(f"{m:.4f}" for m in measured[name]),
                 sum(measured[name]) / folds, folds, "" if folds == 1 else "s",
                 f"; read at {n_faces} faces through {draws} smaller parts each: "
                 + " ".join(f"{a:.4f}" for a in per_fold[name])
                 + f" (mean {sum(per_fold[name]) / folds:.4f})" if draws else "")
    name, scored, why = choose(per_fold, folds, _at(n_faces, draws))
    log.info("auto %s", why)
    attrs = io.read_attrs(job.input(name))
    job.write_clusters(io.read_array(job.input(name), "labels"),
                       {"validation_scores": scored, "validation_folds": per_fold,
                        "validation_measured": measured, "notes": [why]},
                       chosen={"choice": name}, health=attrs.get("health") or [])


def plan(ctx, settings: dict) -> Outcome:
    from .. import registry

    fraction, seed = settings["validation"]["fraction"], settings["validation"]["seed"]
    folds = int(settings["validation"]["folds"])
    draws = int(settings["validation"]["size_draws"])
    # Each fold's validation part (draw None) and its smaller parts, by their input keys.
    validations = {(f, None): ctx.for_validation(fraction, seed + f) for f in range(folds)}
    validations.update({(f, d): ctx.for_validation(fraction, seed + f, share=SIZE_SHARE,
                                                   draw=d)
                        for f in range(folds) for d in range(draws)})
    inputs, names = {}, []
    for name, candidate in _named(settings["candidates"]):
        method = registry.get(candidate["method"])
        if method.name == "auto":
            raise ConfigError(f"experiments.{ctx.experiment}.candidates: auto cannot be one")
        resolved = method.params.resolve(_settings(candidate),
                                         where=f"experiments.{ctx.experiment}."
                                               f"candidates.{method.name}")
        inputs[name] = method.plan(ctx.for_method(method), resolved).clusters
        for (f, d), validation in validations.items():
            held_out = method.plan(validation.for_method(method), resolved).clusters
            inputs[_validation_key(name, f, d)] = str(Path(held_out).with_name("metrics.json"))
        names.append(name)
    inputs["features"] = ctx.features("test")
    params = {"names": names, **({"folds": folds} if folds > 1 else {})}
    if draws:
        params.update(size_draws=draws, doublings=settings["validation"]["doublings"],
                      test_faces=settings["validation"]["test_faces"])
    clusters = ctx.add("select", inputs, params,
                       under=str(Path(ctx.knn("test")).parent), label="auto")
    return Outcome(clusters, {"candidates": len(names)})


class Model(ClusterModel):
    """``method: auto`` as a model, by the workflow's rule: ``fit(features, labels)`` holds
    out ``validation.fraction`` of the identities (``core.ingest.split_by_identity``, seeds
    ``validation.seed`` + fold: the workflow's draws), fits every candidate on the rest,
    clusters the held-out faces with it as new faces, and keeps the candidate of
    :func:`choose`, fitted again on all the faces; ``predict`` is that candidate's.  With
    ``validation.size_draws`` > 0 it also clusters the smaller parts the workflow draws
    (``core.ingest.share_of_identities``) and reads each score at ``validation.test_faces``
    faces (null: as many as it is fitted on).

    After ``fit``: ``choice_`` (its name), ``validation_folds_`` (per candidate, the mean
    of F_P and F_B on each fold, read at that size when it is), ``why_``.  Raises
    ValueError when the faces hold fewer than two identities (nothing to hold out), or when
    the identities left after holding some out are fewer than two (nothing to learn from)."""

    def _candidate_model(self, candidate: dict) -> ClusterModel:
        from .. import registry

        return registry.get(candidate["method"]).model(knn=self.knn, **_settings(candidate))

    def _fitted(self, candidate: dict, features, labels) -> ClusterModel:
        """The candidate fitted on these faces; one whose settings learn nothing from
        labels (fitted as it is made) is taken as it is."""
        model = self._candidate_model(candidate)
        return model if model.fitted else model.fit(features, labels)

    def _fit(self, features, labels):
        from ..core.health import quiet
        from ..core.ingest import share_of_identities, split_by_identity
        from ..core.metrics import evaluate
        from ..core.sparse import default_threads

        v = self.params["validation"]
        threads = default_threads()
        draws = int(v["size_draws"])
        n_faces = int(v["test_faces"] or features.shape[0])
        candidates = _named(self.params["candidates"])
        per_fold: dict[str, list[float]] = {name: [] for name, _ in candidates}
        for fold in range(int(v["folds"])):
            rest, held = split_by_identity(labels, 1.0 - v["fraction"], v["seed"] + fold)
            if np.unique(labels[rest]).size < 2:
                raise ValueError(
                    f"auto holds out {v['fraction']} of the {np.unique(labels).size} "
                    f"identities and fits its candidates on the rest, "
                    f"{np.unique(labels[rest]).size}: they learn from at least two (give "
                    f"faces of more people, or a smaller validation.fraction)")
            parts = [held[share_of_identities(labels[held], SIZE_SHARE, d)]
                     for d in range(draws)]
            for name, candidate in candidates:
                with quiet():  # findings on held-out parts, not on the faces clustered
                    model = self._fitted(candidate, features[rest], labels[rest])
                    full, *smaller = (evaluate(labels[p], model.predict(features[p],
                                                                        threads=threads))
                                      for p in [held, *parts])
                score, at_size = fold_score(full, smaller, n_faces, float(v["doublings"]),
                                            f"fold {fold}")
                per_fold[name].append(at_size)
                log.info("candidate %s: validation fold %d: mean of F_P and F_B %.4f%s",
                         name, fold, score, f" ({at_size:.4f} at {n_faces} faces)"
                         if draws else "")
        self.choice_, _, self.why_ = choose(per_fold, int(v["folds"]), _at(n_faces, draws))
        self.validation_folds_ = per_fold
        log.info("auto %s", self.why_)
        with quiet("shared_component"):  # fit checked these faces already
            self.chosen_model_ = self._fitted(dict(candidates)[self.choice_], features, labels)

    def _predict(self, features, threads):
        from ..core.health import quiet

        # predict makes the checks of every model on these faces; the chosen model's own
        # findings (a threshold's, a graph's) are passed on.
        shared = ("shared_component", "chained_cluster")
        with quiet(*shared):
            labels = self.chosen_model_.predict(features, threads=threads)
        self.health += [f for f in self.chosen_model_.health if f["check"] not in shared]
        return labels

    def _save_state(self, folder: Path) -> None:
        self.chosen_model_.save(folder / "chosen")

    def _state_attrs(self) -> dict:
        return {"choice": self.choice_, "validation_folds": self.validation_folds_,
                "why": self.why_}

    @classmethod
    def _load_state(cls, model, folder: Path, state: dict) -> None:
        from .. import registry

        model.choice_, model.why_ = state["choice"], state["why"]
        model.validation_folds_ = state["validation_folds"]
        model.chosen_model_ = registry.load_model(folder / "chosen")


METHOD = Method(
    name="auto",
    doc="the method (and setting) with the best score on labeled training data",
    params=PARAMS,
    stages=(Stage("select", "clusters.h5", select, "the candidate with the best score on "
                                                            "held-out training identities",
                  table=True),),
    plan=plan,
    model=Model,
    needs_labels=lambda settings: True,
)
