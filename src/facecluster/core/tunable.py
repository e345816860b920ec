"""A method that clusters the shared kNN graph with one main setting, its *knob* (a
similarity threshold, a resolution, a cluster size), which ``auto`` chooses on the labeled
train part by the rule every method shares (``core.selection``).

``knn_method(...)`` builds the whole contract (``core.contract.Method``) from the knob and a
plain function ``cluster(graph, settings, value, threads) -> labels``:

- stage ``calibrate`` (train part, only for ``auto``): the function at every value of the
  knob's grid on the train part's kNN graph, each clustering scored against the labels
  (``calibration.json``);
- stage ``cluster`` (test part): the function at the knob's value, or with ``auto`` at the
  largest value within ``{knob}_tolerance`` of the best train score (``clusters.h5``);
- the plan, and a model whose ``fit`` calibrates and whose ``predict`` clusters.

The label-free default of the knob is the method's documented default; ``auto`` needs a
labeled train part.  A method whose knob value grows with its set (a number of clusters)
can state it per face: the function receives the set it clusters and scales it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import health, io, selection
from .contract import ClusterModel, Method, Outcome, Stage, StageJob
from .params import Param, Params, auto_or, number
from .planning import number_tag
from .progress import log


@dataclass(frozen=True)
class Knob:
    """The main setting of a kNN-graph method: its name, label-free default, constraint,
    doc line, and the grid ``auto`` searches on the train part (increasing values)."""

    name: str
    default: Any
    schema: dict
    doc: str
    grid: Sequence[float]


@dataclass
class Graph:
    """What a kNN-graph method clusters: the kNN lists ``ids`` int32 (N, k) and ``sims``
    float32 (N, k), self first, −1 padding; ``features`` float32 (N, D) unit rows when the
    method asked for them (``needs_features``), else None; ``cache`` keeps what a method
    computes once per graph (calibration clusters one graph at every value of the knob)."""

    ids: np.ndarray
    sims: np.ndarray
    features: np.ndarray | None = None
    # What a method computes once per graph and reuses at every value of its knob.
    cache: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.ids.shape[0])


ClusterFn = Callable[[Graph, dict, float, int], np.ndarray]


def _value_label(value) -> str:
    return number_tag(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else str(value)


def knn_method(name: str, doc: str, knob: Knob, cluster: ClusterFn,
               params: Params | None = None, *, needs_features: bool = False,
               memory: tuple[float, float] = (1000, 4), runtime: tuple[float, float] = (10, 0.02),
               threads: int | str = 1, version: int = 2) -> Method:
    """The ``Method`` of a kNN-graph method with one knob (see the module docstring).

    ``cluster(graph, settings, value, threads)`` returns int cluster labels (N,) of the
    ``Graph`` for the knob at ``value`` with the other ``settings``; ``params`` are those
    other settings.  ``memory`` and ``runtime`` size one clustering (calibration runs the
    grid: its runtime is scaled by the grid's length).
    """
    tolerance_key = f"{knob.name}_tolerance"
    all_params = Params(**{
        knob.name: Param(knob.default, auto_or(knob.schema),
                         f"{knob.doc}; auto: chosen on the labeled train part"),
        tolerance_key: Param(selection.TOLERANCE, number(0),
                             f"auto: the largest {knob.name} whose train mean of F_P and F_B "
                             f"is within this of the best (0: the best)"),
        **(params.entries if params else {}),
    })
    grid = list(knob.grid)

    def other(settings: dict) -> dict:
        return {k: v for k, v in settings.items() if k not in (knob.name, tolerance_key)}

    def read_graph(job: StageJob) -> Graph:
        knn = job.arrays("knn", ["ids", "sims"])
        return Graph(knn["ids"], knn["sims"], job.features() if needs_features else None)

    def scores_of(graph: Graph, settings: dict, labels: np.ndarray, n_threads: int) -> list[dict]:
        # Coarse to fine: the grid's best value and the top of its plateau for about a
        # third of the clusterings (a low threshold on a large part is a slow one).
        return selection.coarse_to_fine_scores(
            lambda value: cluster(graph, settings, value, n_threads), labels, grid, knob.name)

    def calibrate_stage(job: StageJob) -> None:
        labels = job.labels()
        if labels is None:
            raise ValueError(f"{job.input('features')}: {knob.name} auto needs labels")
        graph = read_graph(job)
        scores = scores_of(graph, job.params["settings"], labels, job.threads)
        best = selection.plateau_top(scores, knob.name)
        io.write_json(job.out, {**best, "scores": scores,
                                "profile": health.similarity_profile(graph.sims)})
        log.info("%s: best %s %s on %d labeled faces (F_P %.4f, F_B %.4f)", name, knob.name,
                 best[knob.name], labels.size, best["f_pairwise"], best["f_bcubed"])

    def cluster_stage(job: StageJob) -> None:
        p = job.params
        value, chosen, findings = p["value"], {}, []
        graph = read_graph(job)
        attrs = {}
        if value == "auto":
            calibration = io.read_json(job.input("calibration"))
            scores = calibration["scores"]
            top = selection.plateau_top(scores, knob.name, p["tolerance"])
            value = chosen[knob.name] = top[knob.name]
            attrs["train_score"] = selection.train_score(top, "the train part, clustered whole")
            attrs["train_curve"] = scores
            log.info("%s = %s: the largest within %.3f of the best F on the train part",
                     knob.name, value, p["tolerance"])
            findings = health.at_grid_edge(knob.name, value, grid, scores) + \
                health.profile_shift(calibration.get("profile"),
                                     health.similarity_profile(graph.sims))
        labels = cluster(graph, p["settings"], value, job.threads)
        job.write_clusters(labels, {knob.name: value, "knob": knob.name, **attrs}, chosen,
                           health=findings)

    stages = (
        Stage("calibrate", "calibration.json", calibrate_stage,
              f"{knob.name} auto: F at every value of the grid on the labeled train part",
              threads=threads, memory=memory,
              runtime=(runtime[0] * len(grid), runtime[1] * len(grid)), version=version),
        Stage("cluster", "clusters.h5", cluster_stage, doc, threads=threads, table=True,
              memory=memory, runtime=runtime, version=version),
    )

    def plan(ctx, settings: dict) -> Outcome:
        value, tolerance = settings[knob.name], settings[tolerance_key]
        knn = ctx.knn("test")
        inputs = {"knn": knn, "features": ctx.features("test")}
        params = {"value": value, "settings": other(settings)}
        defaults = all_params.defaults()
        # The summary shows the knob, k and whatever else differs from the defaults.
        summary = {knob.name: value, "k": ctx.knn_params["k"],
                   **{k: v for k, v in other(settings).items() if v != defaults[k]}}
        label = f"{name}-{_value_label(value)}"
        if value == "auto":
            train_knn = ctx.knn("train")
            inputs["calibration"] = ctx.add(
                "calibrate", {"knn": train_knn, "features": ctx.features("train")},
                {"settings": other(settings)}, under=str(Path(train_knn).parent),
                label=f"{name}-auto")
            params["tolerance"] = summary[tolerance_key] = tolerance
            label += f"-tol{number_tag(tolerance)}" if tolerance else ""
        clusters = ctx.add("cluster", inputs, params, under=str(Path(knn).parent), label=label)
        return Outcome(clusters, summary)

    class Model(ClusterModel):
        __doc__ = f"{doc} (a kNN-graph method: ``fit`` chooses {knob.name} when it is auto)."
        scores: list | None = None
        chosen_: dict = {}
        profile: dict | None = None   # the training data's kNN similarity profile
        health: list = []             # the last prediction's findings (core.health)

        def _graph(self, features, threads):
            from .knn import knn_graph

            ids, sims, _ = knn_graph(features, threads=threads, **self.knn)
            return Graph(ids, sims, features if needs_features else None)

        def _fit(self, features, labels):
            graph = self._graph(features, 1)
            self.scores = scores_of(graph, other(self.params), labels, 1)
            self.profile = health.similarity_profile(graph.sims)
            self._choose()

        def _choose(self):
            self.chosen_ = {}
            if self.params[knob.name] == "auto" and self.scores is not None:
                top = selection.plateau_top(self.scores, knob.name, self.params[tolerance_key])
                self.chosen_ = {knob.name: top[knob.name]}

        def train_score(self) -> float | None:
            """The mean of F_P and F_B on the train part at the chosen value (auto only)."""
            if not self.chosen_:
                return None
            top = next(s for s in self.scores if s[knob.name] == self.chosen_[knob.name])
            return selection.train_score(top, "the train part")["score"]

        def _predict(self, features, threads):
            value = self.chosen_.get(knob.name, self.params[knob.name])
            graph = self._graph(features, threads)
            labels = cluster(graph, other(self.params), value, threads)
            self.health = health.profile_shift(self.profile, health.similarity_profile(
                graph.sims)) + health.mostly_singletons(labels, graph.ids, graph.sims)
            return labels

        def _state_attrs(self):
            return ({"scores": self.scores, "profile": self.profile}
                    if self.params[knob.name] == "auto" else {})

        @classmethod
        def _load_state(cls, model, folder, state):
            model.scores = state.get("scores")
            model.profile = state.get("profile")
            model._choose()

    def scan(inputs: dict, params: dict, labels) -> list[dict]:
        knn = io.read_arrays(inputs["knn"], ["ids", "sims"])
        graph = Graph(knn["ids"], knn["sims"],
                      io.read_array(inputs["features"], "features") if needs_features else None)
        if labels is None:  # every value of the grid: the cluster counts
            return selection.score_thresholds(
                lambda value: cluster(graph, params["settings"], value, 1), None, grid,
                knob.name)
        return scores_of(graph, params["settings"], labels, 1)

    Model.__name__ = Model.__qualname__ = f"{name}_model"
    return Method(name=name, doc=doc, params=all_params, stages=stages, plan=plan, model=Model,
                  needs_labels=lambda settings: settings[knob.name] == "auto", scan=scan)
