"""A method that clusters the shared kNN graph with one main setting, its *knob* (a
similarity threshold, a resolution, a cluster size), which ``auto`` chooses on the labeled
train part by the rule every method shares (``core.selection``).

``knn_method(...)`` builds the whole contract (``core.contract.Method``) from the knob and a
plain function ``cluster(graph, settings, value, threads) -> labels``:

- stage ``calibrate`` (train part, only for ``auto``): the function at every value of the
  knob's grid, each clustering scored against the labels, on the train part's kNN graph
  and (``size_matched``) on draws of its identities at halvings of its size, each draw
  with its own kNN graph (``selection.ladder_scores``; ``calibration.json``);
- stage ``cluster`` (test part): the function at the knob's value, or with ``auto`` at the
  best train score at the size of the part it clusters (the largest value within
  ``{knob}_tolerance`` of it, the knob's own default; a part larger than the train part is
  hedged towards the top of the plateau: ``selection.choose_for_size``; ``clusters.h5``);
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
from .params import Param, Params, auto_or, boolean, number
from .planning import number_tag
from .progress import log


@dataclass(frozen=True)
class Knob:
    """The main setting of a kNN-graph method: its name, label-free default, constraint,
    doc line, the grid ``auto`` searches on the train part (increasing values), and the
    default tolerance of ``auto`` at the part's size (mean of F_P and F_B, in [0, 1]; 0: the
    best value).  A method whose F falls off a cliff just below its best value, as single
    linkage's does, is safer at the top of the plateau (``selection.TOLERANCE``); each
    method's default is measured on the evaluation matrix (README)."""

    name: str
    default: Any
    schema: dict
    doc: str
    grid: Sequence[float]
    tolerance: float = 0.0


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
        tolerance_key: Param(knob.tolerance, number(0),
                             f"auto: at the part's size, the largest {knob.name} whose train "
                             f"mean of F_P and F_B is within this of the best (0: the best; "
                             f"a part larger than the train part is hedged by up to "
                             f"{selection.BEYOND_TOLERANCE}: core.selection)"),
        "size_matched": Param(True, boolean(),
                              f"auto: choose {knob.name} for the size of the part clustered, "
                              f"on draws of the train part's identities at halvings of its "
                              f"size ({selection.DRAWS} each, down to "
                              f"{selection.MIN_DRAW_FACES} faces); false: on the whole train "
                              f"part only"),
        **(params.entries if params else {}),
    })
    grid = list(knob.grid)
    selection_keys = (knob.name, tolerance_key, "size_matched")

    def other(settings: dict) -> dict:
        return {k: v for k, v in settings.items() if k not in selection_keys}

    def read_graph(job: StageJob) -> Graph:
        knn = job.arrays("knn", ["ids", "sims"])
        return Graph(knn["ids"], knn["sims"], job.features() if needs_features else None)

    def ladder_of(whole: Graph, features: np.ndarray, labels: np.ndarray, settings: dict,
                  knn: dict, matched: bool, n_threads: int) -> list[dict]:
        """The scores at every size of the ladder (``selection.ladder_scores``): the
        whole train part on its kNN graph ``whole``; each draw on its own kNN graph of
        ``features``' rows with the ``knn`` settings, as a test part of that size is."""
        from .knn import knn_graph

        def graph_of(part):
            if part is None:
                return whole
            x = np.ascontiguousarray(features[part])
            ids, sims, _ = knn_graph(x, threads=n_threads, **knn)
            return Graph(ids, sims, x if needs_features else None)

        def score_parts(parts: list) -> list[dict]:
            drawn = [(graph_of(p), labels if p is None else labels[p]) for p in parts]

            def score_values(values: list) -> list[dict]:
                return selection.mean_scores([selection.score_thresholds(
                    lambda value, g=g: cluster(g, settings, value, n_threads), lab, values,
                    knob.name) for g, lab in drawn])
            # Coarse to fine: the grid's best value and the top of its plateau for about
            # a third of the clusterings (a low threshold on a large part is a slow one).
            return selection.coarse_to_fine(score_values, grid)

        return selection.ladder_scores(
            labels, score_parts, min_faces=selection.MIN_DRAW_FACES if matched else labels.size,
            progress=lambda what: log.info("%s: %s at every %s", name, what, knob.name))

    def calibrate_stage(job: StageJob) -> None:
        labels = job.labels()
        if labels is None:
            raise ValueError(f"{job.input('features')}: {knob.name} auto needs labels")
        graph = read_graph(job)
        features = job.features() if job.params["size_matched"] else None
        ladder = ladder_of(graph, features, labels, job.params["settings"],
                           job.params["knn"], job.params["size_matched"], job.threads)
        best = selection.plateau_top(ladder[0]["scores"], knob.name)
        io.write_json(job.out, {**best, "scores": ladder[0]["scores"], "ladder": ladder,
                                "profile": health.similarity_profile(graph.sims)})
        for rung in ladder:
            top = selection.plateau_top(rung["scores"], knob.name)
            log.info("%s: best %s %s on %d labeled faces (%d draws; F_P %.4f, F_B %.4f)",
                     name, knob.name, top[knob.name], rung["n_faces"], rung["draws"],
                     top["f_pairwise"], top["f_bcubed"])

    def cluster_stage(job: StageJob) -> None:
        p = job.params
        value, chosen, findings = p["value"], {}, []
        graph = read_graph(job)
        attrs = {}
        if value == "auto":
            calibration = io.read_json(job.input("calibration"))
            value, top, scores, where = selection.choose_for_size(
                calibration["ladder"], graph.n, knob.name, grid, p["tolerance"])
            chosen[knob.name] = value
            where = f"the train part, {where}"
            attrs["train_score"] = selection.train_score(top, where)
            attrs["train_curve"] = scores
            near = f"the largest within {p['tolerance']:.3f} of " if p["tolerance"] else ""
            log.info("%s = %s for %d faces: %sthe best F on %s", knob.name, value, graph.n,
                     near, where)
            findings = health.at_grid_edge(knob.name, value, grid, scores, top) + \
                health.profile_shift(calibration.get("profile"),
                                     health.similarity_profile(graph.sims))
        labels = cluster(graph, p["settings"], value, job.threads)
        job.write_clusters(labels, {knob.name: value, "knob": knob.name, **attrs}, chosen,
                           health=findings)

    # The ladder clusters the whole train part and DRAWS draws at each halving: about
    # 1 + DRAWS times the faces of the train part; the whole part's graph and one size's
    # draws (half the faces each) are held at once.
    work = (1 + selection.DRAWS) * len(grid)
    stages = (
        Stage("calibrate", "calibration.json", calibrate_stage,
              f"{knob.name} auto: F at every value of the grid on the labeled train part "
              f"and on draws of its identities at halvings of its size",
              threads=threads, memory=(memory[0], memory[1] * (1 + selection.DRAWS / 2)),
              runtime=(runtime[0] * work, runtime[1] * work), version=version + 1),
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
            matched = settings["size_matched"]
            inputs["calibration"] = ctx.add(
                "calibrate", {"knn": train_knn, "features": ctx.features("train")},
                {"settings": other(settings), "size_matched": matched,
                 "knn": _search_settings(ctx.knn_params) if matched else None},
                under=str(Path(train_knn).parent), label=f"{name}-auto")
            params["tolerance"] = summary[tolerance_key] = tolerance
            label += f"-tol{number_tag(tolerance)}" if tolerance else ""
            if not settings["size_matched"]:
                summary["size_matched"] = False
                label += "-whole"
        clusters = ctx.add("cluster", inputs, params, under=str(Path(knn).parent), label=label)
        return Outcome(clusters, summary)

    class Model(ClusterModel):
        __doc__ = f"{doc} (a kNN-graph method: ``fit`` chooses {knob.name} when it is auto)."
        ladder: list | None = None   # selection.ladder_scores of the train part (auto)
        chosen_: dict = {}          # the value chosen for the last part predicted (auto)
        profile: dict | None = None   # the training data's kNN similarity profile

        def _graph(self, features, threads):
            from .knn import knn_graph

            ids, sims, _ = knn_graph(features, threads=threads, **self.knn)
            return Graph(ids, sims, features if needs_features else None)

        def _fit(self, features, labels):
            graph = self._graph(features, 1)
            matched = self.params["size_matched"]
            self.ladder = ladder_of(graph, features, labels, other(self.params),
                                    _search_settings(self.knn), matched, 1)
            self.profile = health.similarity_profile(graph.sims)

        def choose(self, n_faces: int) -> dict:
            """``{knob: value}`` for a part of ``n_faces`` faces: the settings' value, or
            with auto the value chosen for that size (``selection.choose_for_size``)."""
            if self.params[knob.name] != "auto":
                return {knob.name: self.params[knob.name]}
            value, *_ = selection.choose_for_size(self.ladder, n_faces, knob.name, grid,
                                                  self.params[tolerance_key])
            return {knob.name: value}

        def _predict(self, features, threads):
            self.chosen_ = self.choose(features.shape[0])
            value = self.chosen_[knob.name]
            graph = self._graph(features, threads)
            labels = cluster(graph, other(self.params), value, threads)
            self.health += health.profile_shift(self.profile, health.similarity_profile(
                graph.sims)) + health.mostly_singletons(labels, graph.ids, graph.sims)
            return labels

        def _state_attrs(self):
            return ({"ladder": self.ladder, "profile": self.profile}
                    if self.params[knob.name] == "auto" else {})

        @classmethod
        def _load_state(cls, model, folder, state):
            model.ladder = state.get("ladder")
            model.profile = state.get("profile")

    def scan(inputs: dict, params: dict, labels) -> list[dict]:
        knn = io.read_arrays(inputs["knn"], ["ids", "sims"])
        graph = Graph(knn["ids"], knn["sims"],
                      io.read_array(inputs["features"], "features") if needs_features else None)
        cluster_at = lambda value: cluster(graph, params["settings"], value, 1)
        if labels is None:  # every value of the grid: the cluster counts
            return selection.score_thresholds(cluster_at, None, grid, knob.name)
        return selection.coarse_to_fine_scores(cluster_at, labels, grid, knob.name)

    Model.__name__ = Model.__qualname__ = f"{name}_model"
    return Method(name=name, doc=doc, params=all_params, stages=stages, plan=plan, model=Model,
                  needs_labels=lambda settings: settings[knob.name] == "auto", scan=scan)


def _search_settings(knn: dict) -> dict:
    """The kNN settings a draw's graph is searched with: the experiment's, less those that
    only say how the workflow runs the search (``core.knn.RUNTIME_KEYS``)."""
    from .knn import PARAMS, RUNTIME_KEYS

    return {k: v for k, v in knn.items() if k in PARAMS.entries and k not in RUNTIME_KEYS}
