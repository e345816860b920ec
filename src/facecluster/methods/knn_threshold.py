"""The floor every method must beat: the thresholded kNN graph cut into connected components.

Item i is linked to each neighbour j of its kNN list whose cosine similarity is at least the
threshold τ; clusters are the connected components of the undirected graph so formed.

``threshold: auto`` chooses τ on the labeled train part: the kNN graph of the train part is
clustered at every τ of ``core.selection.THRESHOLD_GRID`` and the largest τ within
``threshold_tolerance`` of the best mean of F_P and F_B is used on the test part (the rule
every method's ``auto`` shares, ``core.selection.plateau_top``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import io, selection
from ..core.components import link_threshold
from ..core.contract import ClusterModel, Method, Outcome, Stage, StageJob
from ..core.params import Param, Params, auto_or, number
from ..core.planning import threshold_tag
from ..core.progress import log

PARAMS = Params(
    threshold=Param(0.6, auto_or(number(-1, 1)),
                    "τ: keep kNN edges with cosine ≥ τ; auto: chosen on the labeled train part"),
    threshold_tolerance=Param(selection.TOLERANCE, number(0),
                              "auto: the largest τ whose train mean of F_P and F_B is within "
                              "this of the best (0: the best)"),
)


def calibrate(ids: np.ndarray, sims: np.ndarray, labels: np.ndarray) -> list[dict]:
    """F_P and F_B of the thresholded kNN graph of labeled data at every τ of the grid."""
    return selection.list_threshold_scores(ids, sims, labels)


# ------------------------------------------------------------------ stages
def _calibrate_stage(job: StageJob) -> None:
    labels = job.labels()
    if labels is None:
        raise ValueError(f"{job.input('features')}: calibrating τ needs labels")
    graph = job.arrays("knn", ["ids", "sims"])
    scores = calibrate(graph["ids"], graph["sims"], labels)
    best = selection.plateau_top(scores)
    io.write_json(job.out, {**best, "scores": scores})
    log.info("calibrated τ = %.2f on %d labeled items: F_P %.4f, F_B %.4f", best["threshold"],
             labels.size, best["f_pairwise"], best["f_bcubed"])


def _cluster_stage(job: StageJob) -> None:
    threshold = job.params["threshold"]
    chosen = {}
    if threshold == "auto":
        scores = io.read_json(job.input("calibration"))["scores"]
        tolerance = job.params["threshold_tolerance"]
        threshold = chosen["threshold"] = selection.plateau_top(scores, "threshold",
                                                                tolerance)["threshold"]
        log.info("τ = %.2f: the largest within %.3f of the best F on the train part",
                 threshold, tolerance)
    graph = job.arrays("knn", ["ids", "sims"])
    labels = link_threshold(graph["ids"], graph["sims"], float(threshold))
    job.write_clusters(labels, {"threshold": float(threshold)}, chosen)


STAGES = (
    Stage("calibrate", "calibration.json", _calibrate_stage,
          "τ auto: F at every τ of the grid on the labeled train part",
          memory=(1000, 4), runtime=(10, 0.02)),
    Stage("cluster", "clusters.h5", _cluster_stage,
          "the kNN edges with cosine ≥ τ, connected components", table=True,
          memory=(1000, 4), runtime=(10, 0.02)),
)


def plan(ctx, settings: dict) -> Outcome:
    threshold, tolerance = settings["threshold"], settings["threshold_tolerance"]
    knn = ctx.knn("test")
    inputs = {"knn": knn, "features": ctx.features("test")}
    params = {"threshold": threshold}
    summary = {"threshold": threshold, "k": ctx.knn_params["k"]}
    if threshold == "auto":
        train_knn = ctx.knn("train")
        inputs["calibration"] = ctx.add("calibrate",
                                        {"knn": train_knn, "features": ctx.features("train")},
                                        {}, under=str(Path(train_knn).parent),
                                        label="threshold-auto")
        params["threshold_tolerance"] = summary["threshold_tolerance"] = tolerance
    clusters = ctx.add("cluster", inputs, params, under=str(Path(knn).parent),
                       label=f"threshold-{threshold_tag(threshold, tolerance)}")
    return Outcome(clusters, summary)


# ------------------------------------------------------------------ the model
class Model(ClusterModel):
    """The thresholded kNN graph; with ``threshold='auto'``, ``fit`` chooses τ."""

    def _fit(self, features, labels):
        from ..core.knn import knn_graph

        ids, sims, _ = knn_graph(features, **self.knn)
        self.scores = calibrate(ids, sims, labels)
        self._choose()

    def _choose(self):
        top = selection.plateau_top(self.scores, "threshold", self.params["threshold_tolerance"])
        self.threshold_ = float(top["threshold"])

    def _predict(self, features, threads):
        from ..core.knn import knn_graph

        tau = self.params["threshold"]
        tau = self.threshold_ if tau == "auto" else float(tau)
        ids, sims, _ = knn_graph(features, threads=threads, **self.knn)
        return link_threshold(ids, sims, tau)

    def _state_attrs(self):
        return {"scores": self.scores} if self.params["threshold"] == "auto" else {}

    @classmethod
    def _load_state(cls, model, folder, state):
        if model.params["threshold"] == "auto":
            model.scores = state["scores"]
            model._choose()


METHOD = Method(
    name="knn_threshold",
    doc="thresholded kNN graph, connected components (the baseline)",
    params=PARAMS,
    stages=STAGES,
    plan=plan,
    model=Model,
    needs_labels=lambda settings: settings["threshold"] == "auto",
)
