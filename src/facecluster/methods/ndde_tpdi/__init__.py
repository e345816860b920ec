"""Hard clusters (Chen et al., ECCV 2022): a learned pairwise distance, NDDe densities, TPDi
distances and density-peak linkage, for the small and sparse clusters other methods miss.

Stages (``similarity.py``, ``density.py``):

- ``train``: the pair similarity on the labeled train part (with ``distance: learned``);
  with ``cut: auto`` on the held-out part (``cut_on``), also on the train part less a share
  of its identities (``val_fraction``), over those faces' own kNN graph: that one chooses
  the cut, the whole train part's scores the test part (``refit``; without it, the one
  that left the identities out scores the test part too);
- ``distances``: each part's kNN lists scored by it (d = 1 − sigmoid), or by 1 − cosine
  (``distance: cosine``, the ablation), re-sorted by d;
- ``cut``: with ``cut: auto`` and ``cut_on: held_out_part``, the linkage of the held-out
  identities clustered as a part of their own (their own kNN graph, scored by the
  similarity that never saw them) at every cut, at every size of the ladder
  (``core.selection.held_out_ladder``), so that the cut is chosen for the test part's size;
- ``calibrate``: with ``cut: auto`` and ``cut_on: train_part`` (or the cosine distance), the
  linkage of the train part at every cut of a grid, scored against its labels (the
  similarity scores the faces it was trained on there: an optimistic curve);
- ``cluster``: TPDi (or the plain d), NDDe (approximate, exact or naive) and the
  density-peak linkage cut at ``cut``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core import io, selection
from ...core.device import torch_threads
from ...core.contract import ClusterModel, Method, Outcome, Stage, StageJob
from ...core.params import Param, Params, auto_or, boolean, choice, integer, nullable, number
from ...core.progress import log

MODEL = Params(
    width=Param(32, integer(8), "the encoder's width after the input projection (reference: "
                                "256, no projection); 32 has the best F per minute (README)"),
    project=Param(True, boolean(), "project the features to `width` first (reference: no)"),
    heads=Param(4, integer(1), "attention heads (reference: 8)"),
    ff=Param(128, integer(8), "the feed-forward width (reference: 2048)"),
    dropout=Param(0.2, number(0, exclusive_maximum=1), "dropout (reference: 0.2)"),
    lr=Param(1e-3, number(exclusive_minimum=0), "Adam's learning rate (reference: 1e-4 over "
                                                "10 epochs of 576k anchors)"),
    weight_decay=Param(5e-4, number(0), "Adam's weight decay (reference: 5e-4)"),
    epochs=Param(10, integer(1), "passes over the train part's anchors (reference: 10)"),
    batch_size=Param(512, integer(1), "anchors per step (reference: 512)"),
)

# Overrides that rebuild the reference code's similarity (about 0.2 GFLOP a face).
REFERENCE = {"width": 256, "project": False, "heads": 8, "ff": 2048, "lr": 1e-4}

CUT_GRID = np.round(np.arange(0.05, 1.0, 0.01), 2).tolist()
# The held-out ladder chooses on −cut: core.selection takes the largest value within the
# tolerance, and a larger cut links more, so the cautious side is the small cut.
NEG_CUT_GRID = [-c for c in reversed(CUT_GRID)]

PARAMS = Params(
    distance=Param("learned", choice("learned", "cosine"),
                   "learned: the pair similarity | cosine: 1 − cosine (the ablation)"),
    tpdi=Param(True, boolean(), "link by TPDi (σ = 0.05) | by the distance itself"),
    density=Param("approx", choice("approx", "exact", "naive"),
                  "NDDe approximate (the paper's default) | exact diffusion | naive count"),
    cut=Param(0.7, auto_or(number(0, 1)), "link a face to its parent while the distance is "
                                          "below this (0.7); auto: chosen on the train part"),
    cut_tolerance=Param(None, nullable(number(0)),
                        "auto: the smallest cut whose train score is within this of the best "
                        "(the cautious side); null: each rule's own, measured on the "
                        "evaluation matrix (0 on the held-out part, "
                        f"{selection.TOLERANCE} on the train part: cut_tolerance())"),
    cut_on=Param("held_out_part", choice("held_out_part", "train_part"),
                 "auto with the learned distance: held_out_part = identities the similarity "
                 "never trained on, clustered as a part of their own, the cut chosen for the "
                 "test part's size | train_part = the whole train part, whose faces the "
                 "similarity was trained on"),
    val_fraction=Param(0.2, number(exclusive_minimum=0, exclusive_maximum=1),
                       "cut_on held_out_part: the share of training identities held out of "
                       "the similarity's training to choose the cut on"),
    refit=Param(True, boolean(),
                "cut_on held_out_part: once the cut is chosen, the test part is scored by "
                "the similarity trained on the whole train part (as method auto refits its "
                "winner) | false: by the one trained without the held-out identities"),
    model=MODEL,
    seed=Param(0, integer(), "the similarity's training seed"),
)


def held_out(s: dict) -> bool:
    """Whether the cut is chosen on held-out identities (the similarity trains without
    them)."""
    return s["distance"] == "learned" and s["cut"] == "auto" and s["cut_on"] == "held_out_part"


def cut_tolerance(s: dict) -> float:
    """The tolerance of the cut auto (mean of F_P and F_B, in [0, 1]): the settings' own, or
    with ``cut_tolerance`` null the rule's default: 0 (the best cut at the part's size) when
    the cut is chosen on held-out identities, ``core.selection.TOLERANCE`` when on the
    train part.  Measured on the evaluation matrix (README, each trained method's selection
    defaults): on the held-out part 0 scored +0.68 over 8 pairs (none fell), on the train
    part it scored −5.8."""
    if s["cut_tolerance"] is not None:
        return float(s["cut_tolerance"])
    return 0.0 if held_out(s) else selection.TOLERANCE


def held_out_rows(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """The rows (int64, sorted) of the identities the similarity does not train on."""
    return np.flatnonzero(selection.held_out_identities(np.asarray(labels), fraction, seed,
                                                        stream=6))


def train_similarity(features, ids, labels, cfg: dict, seed: int,
                     val_fraction: float | None = None, knn: dict | None = None,
                     threads: int = 1) -> tuple[dict, dict]:
    """The pair similarity (``model`` settings ``cfg``) trained on labeled faces
    (``similarity.train``): on all of them over their kNN lists ``ids``, or with
    ``val_fraction`` on the identities ``held_out_rows`` leaves in, over those faces' own
    kNN graph (``knn`` settings; ``ids`` is then not read and may be None).
    ``(checkpoint, info)``; raises ValueError when no identity is held out."""
    from ...core.knn import knn_graph
    from . import similarity

    if val_fraction:
        rows = held_out_rows(labels, val_fraction, seed)
        if rows.size == 0:
            raise ValueError("cut auto on the held-out part needs held-out identities "
                             "(val_fraction > 0 and at least three identities)")
        log.info("pair similarity: %d identities (%d faces) held out to choose the cut on",
                 np.unique(labels[rows]).size, rows.size)
        keep = np.ones(labels.size, dtype=bool)
        keep[rows] = False
        features, labels = np.ascontiguousarray(features[keep]), labels[keep]
        ids, _, _ = knn_graph(features, threads=threads,
                              **{**knn, "k": min(int(knn["k"]), labels.size)})
    return similarity.train(features, ids, labels, cfg, seed)


def cut_ladder(checkpoint: dict, features: np.ndarray, labels: np.ndarray, s: dict,
               knn: dict, threads: int = 1) -> list[dict]:
    """The linkage's scores on the held-out identities clustered as a part of their own, at
    every size of the ladder (``core.selection.held_out_ladder``): each part's own kNN
    lists scored by the similarity and re-sorted, TPDi, NDDe and the density-peak linkage
    at every cut, keyed ``cut`` = −cut (``NEG_CUT_GRID``)."""
    from . import similarity
    from .density import sort_by_distance

    model = similarity.load(checkpoint)
    rows = held_out_rows(labels, s["val_fraction"], s["seed"])

    def prepare(x, ids, sims):
        ids, d = sort_by_distance(ids, similarity.distances(model, x, ids))
        run = _cluster_fn(s, threads)
        return lambda neg_cut: run(ids, d, -neg_cut)

    return selection.held_out_ladder(
        features, labels, rows, knn, prepare, NEG_CUT_GRID, "cut", threads,
        progress=lambda what: log.info("cut on the held-out part: %s", what))


# A part larger than the held-out part is not hedged towards the small cut: the best cut
# moves the other way as N grows (gen-default: 0.79 on 757 held-out faces, 0.85 on 1,541,
# 0.88 on the 10,000 of the test part).  On the stored ladders of 9 pairs of the evaluation
# matrix, no hedge against the 0.01 of before: +1.9 on average (gen-default +6.2, gen-dense
# +2.9, the FaceNet pair +7.6, the others the same); within a point of the test part's best
# on 3 of 9 (2).  Its first test, gen-low-quality: +1.1 (to the best cut's score); its
# second, gen-nuisance: +3.6; its third and fourth, gen-d128 and gen-50k: +1.6, +4.6; on
# the 13 pairs 7 of 13 (2), +2.11.  Its fifth, gen-d512: +0.5 (README).
CUT_BEYOND = 0.0


def choose_held_out_cut(ladder: list[dict], n_faces: int | None, tolerance: float):
    """``(cut, score entry, its size's curve, where)`` for a part of ``n_faces`` faces (None:
    the whole held-out part) from ``cut_ladder``'s curves: the smallest cut within
    ``tolerance`` of the best at that size (``core.selection.choose_for_size`` on −cut,
    ``CUT_BEYOND``: a larger part takes the largest size's choice); the entry and curve
    keyed by the cut itself."""
    neg, entry, curve, where = selection.choose_held_out(ladder, n_faces, "cut",
                                                         NEG_CUT_GRID, tolerance, CUT_BEYOND)

    def flip(e: dict) -> dict:
        return {**e, "cut": -e["cut"]}
    return -neg, flip(entry), [flip(e) for e in reversed(curve)], where


# ------------------------------------------------------------------ stages
def train_stage(job: StageJob) -> None:
    torch_threads(job.threads)
    labels = job.labels()
    if labels is None:
        raise ValueError(f"{job.input('features')}: the pair similarity trains on labels")
    p = job.params
    ids = None if p.get("val_fraction") else job.array("knn", "ids")  # held out: its own graph
    checkpoint, info = train_similarity(job.features(), ids, labels, p["model"], p["seed"],
                                        p.get("val_fraction"), p.get("knn"), job.threads)
    io.save_torch(job.out, checkpoint)
    log.info("pair similarity trained: loss %.4f -> %.4f in %d steps, %.1f s",
             info["loss_first"], info["loss_last"], info["steps"], info["seconds"])


def distances_of(ids, sims, features, distance: str, model_path: str | None, threads: int):
    from .density import sort_by_distance

    if distance == "cosine":
        d = np.where(ids >= 0, 1.0 - sims, 1.0).astype(np.float32)
    else:
        from . import similarity

        torch_threads(threads)
        model = similarity.load(io.load_torch(model_path))
        d = similarity.distances(model, features, ids)
    return sort_by_distance(ids, d)


def distances_stage(job: StageJob) -> None:
    knn = job.arrays("knn", ["ids", "sims"])
    ids, d = distances_of(knn["ids"], knn["sims"], job.features(), job.params["distance"],
                          job.inputs.get("model"), job.threads)
    io.write_arrays(job.out, {"ids": ids, "d": d}, {"distance": job.params["distance"]})


def _cluster_fn(settings: dict, threads: int):
    from .density import cluster

    cache: dict = {}
    return lambda ids, d, cut: cluster(ids, d, cut, settings["tpdi"], settings["density"],
                                       threads, cache)


def cut_stage(job: StageJob) -> None:
    """The cut's curves on the held-out identities clustered as a part of their own, at
    every size of the ladder (``cut_ladder``): ``cut.json``."""
    torch_threads(job.threads)
    labels = job.labels()
    if labels is None:
        raise ValueError(f"{job.input('features')}: cut auto needs the train part's labels")
    p = job.params
    ladder = cut_ladder(io.load_torch(job.input("model")), job.features(), labels, p,
                        p["knn"], job.threads)
    io.write_json(job.out, {"ladder": ladder})
    selection.log_ladder(ladder, "cut", "cut", sign=-1.0)


def calibrate_stage(job: StageJob) -> None:
    lists = job.arrays("distances", ["ids", "d"])
    labels = job.labels()
    run = _cluster_fn(job.params, job.threads)
    scores = selection.coarse_to_fine_scores(lambda c: run(lists["ids"], lists["d"], c),
                                             labels, CUT_GRID, "cut")
    io.write_json(job.out, {"scores": scores})


def choose_cut(scores: list[dict], tolerance: float) -> dict:
    """The smallest cut within ``tolerance`` of the best train score: a larger cut links
    more (the opposite of a similarity threshold), so the cautious side is the small one."""
    flipped = [{**s, "cut": -s["cut"]} for s in scores]
    top = selection.plateau_top(flipped, "cut", tolerance)
    return {**top, "cut": -top["cut"]}


def cluster_stage(job: StageJob) -> None:
    from ...core import health

    p = job.params
    lists = job.arrays("distances", ["ids", "d"])
    cut, chosen, attrs, findings = p["cut"], {}, {"knob": "cut"}, []
    if cut == "auto":
        if "cut" in job.inputs:
            n = lists["ids"].shape[0]
            cut, top, scores, where = choose_held_out_cut(
                io.read_json(job.input("cut"))["ladder"], n, p["cut_tolerance"])
            log.info("cut = %.2f for %d faces, chosen on %s", cut, n, where)
        else:
            scores = io.read_json(job.input("calibration"))["scores"]
            top = choose_cut(scores, p["cut_tolerance"])
            cut, where = top["cut"], "the train part, clustered whole"
        chosen["cut"] = cut
        attrs.update(train_score=selection.train_score(top, where), train_curve=scores)
        findings = health.at_grid_edge("cut", cut, CUT_GRID, scores, top)
    labels = _cluster_fn(p, job.threads)(lists["ids"], lists["d"], float(cut))
    job.write_clusters(labels, {**attrs, "cut": float(cut)}, chosen, health=findings)


def bundle_stage(job: StageJob) -> None:
    model = Model(knn=job.params["knn"], **job.params["settings"])
    if "model" in job.inputs:
        model.checkpoint = io.load_torch(job.input("model"))
    s = model.params
    if "cut" in job.inputs:
        model.cut_ladder = io.read_json(job.input("cut"))["ladder"]
        model.cut_ = choose_held_out_cut(model.cut_ladder, None, cut_tolerance(s))[0]
    else:
        model.cut_ = choose_cut(io.read_json(job.input("calibration"))["scores"],
                                cut_tolerance(s))["cut"] if s["cut"] == "auto" else s["cut"]
    model.fitted = True
    job.save_model(model)
    log.info("hard-clusters model written to %s (cut %.2f)", job.out, model.cut_)


STAGES = (
    Stage("train", "similarity.pt", train_stage, "the pair similarity on the train part",
          threads="all", gpu=True, memory=(2000, 6), runtime=(30, 0.3)),
    Stage("distances", "distances.h5", distances_stage, "the kNN lists scored and re-sorted",
          threads="all", gpu=True, memory=(1000, 6), runtime=(10, 0.1)),
    Stage("cut", "cut.json", cut_stage, "cut auto on the held-out identities clustered as a "
          "part of their own, at every size", threads="all", gpu=True, memory=(1000, 10),
          runtime=(10, 0.5)),
    Stage("calibrate", "calibration.json", calibrate_stage, "cut auto: F at every cut",
          threads="all", memory=(1000, 10), runtime=(10, 0.5)),
    Stage("cluster", "clusters.h5", cluster_stage, "TPDi, NDDe, density-peak linkage",
          threads="all", table=True, memory=(1000, 10), runtime=(10, 0.05),
          version=2),  # 2: the held-out cut is not hedged for a larger part (CUT_BEYOND)
    Stage("bundle", "model", bundle_stage, "the trained similarity and cut as a model folder",
          memory=(1000, 0), runtime=(5, 0.0)),
)


def plan(ctx, s: dict) -> Outcome:
    def train(without_held_out: bool) -> str:
        train_knn = ctx.knn("train")
        params = {"model": s["model"], "seed": s["seed"]}
        if without_held_out:  # trained without the identities the cut is chosen on
            params.update(val_fraction=s["val_fraction"], knn=ctx.knn_params)
        return ctx.add("train", {"knn": train_knn, "features": ctx.features("train")},
                       params, under=str(Path(train_knn).parent),
                       label="similarity" + ("-held-out" if without_held_out else ""))

    model = cut_model = None
    if s["distance"] == "learned":
        cut_model = train(True) if held_out(s) else None
        model = train(False) if cut_model is None or s["refit"] else cut_model

    def distances(part):
        knn = ctx.knn(part)
        inputs = {"knn": knn, "features": ctx.features(part)}
        if model:
            inputs["model"] = model
        return ctx.add("distances", inputs, {"distance": s["distance"]},
                       under=str(Path(knn).parent), label=f"d-{s['distance']}")

    linkage = {"tpdi": s["tpdi"], "density": s["density"]}
    test = distances("test")
    inputs, params = {"distances": test, "features": ctx.features("test")}, {
        **linkage, "cut": s["cut"]}
    if held_out(s):
        inputs["cut"] = ctx.add("cut", {"model": cut_model, "features": ctx.features("train")},
                                {**linkage, "val_fraction": s["val_fraction"],
                                 "seed": s["seed"], "knn": ctx.knn_params},
                                under=str(Path(cut_model).parent), label="cut-auto")
    elif s["cut"] == "auto":
        train = distances("train")
        inputs["calibration"] = ctx.add("calibrate", {"distances": train,
                                                      "features": ctx.features("train")},
                                        linkage, under=str(Path(train).parent), label="cut-auto")
    if s["cut"] == "auto":  # either rule: its own tolerance
        params["cut_tolerance"] = cut_tolerance(s)
    label = f"link-{'tpdi' if s['tpdi'] else 'd'}-{s['density']}-{s['cut']}"
    clusters = ctx.add("cluster", inputs, params, under=str(Path(test).parent), label=label)
    bundle = {k: v for k, v in (("model", model), ("cut", inputs.get("cut")),
                                ("calibration", inputs.get("calibration"))) if v}
    exported = ctx.add_model("bundle", bundle, {"settings": s, "knn": ctx.knn_params}) \
        if bundle else None
    return Outcome(clusters, {"distance": s["distance"], "tpdi": s["tpdi"],
                              "density": s["density"], "cut": s["cut"]}, None, exported)


def scan(inputs: dict, params: dict, labels) -> list[dict]:
    lists = io.read_arrays(inputs["distances"], ["ids", "d"])
    run = _cluster_fn(params, 1)
    return selection.score_thresholds(lambda c: run(lists["ids"], lists["d"], c), labels,
                                      CUT_GRID, "cut")


class Model(ClusterModel):
    """The hard-clusters method as a model: ``fit`` trains the similarity (and chooses the
    cut), ``predict`` scores, links and cuts new faces.  With the cut chosen on held-out
    identities (``cut_on``), ``cut_ladder`` keeps their curves and each ``predict``
    chooses the cut for its number of faces; with ``refit`` the kept similarity is trained
    again on all the faces once the ladder is made (the workflow's two ``train`` stages)."""

    checkpoint: dict | None = None
    cut_: float | None = None        # the cut used by the last prediction (or the fit's)
    cut_ladder: list | None = None   # the held-out part's curves at every size (auto)

    def _lists(self, features, threads):
        from ...core.knn import knn_graph

        ids, sims, _ = knn_graph(features, threads=threads, **self.knn)
        if self.params["distance"] == "cosine":
            return distances_of(ids, sims, features, "cosine", None, threads)
        from . import similarity
        from .density import sort_by_distance

        d = similarity.distances(similarity.load(self.checkpoint), features, ids)
        return sort_by_distance(ids, d)

    def _fit(self, features, labels):
        from ...core.knn import knn_graph

        s = self.params
        self.cut_ = s["cut"] if s["cut"] != "auto" else None
        if held_out(s):
            without, _ = train_similarity(features, None, labels, s["model"], s["seed"],
                                          s["val_fraction"], self.knn)
            self.cut_ladder = cut_ladder(without, features, labels, s, self.knn)
            self.cut_ = choose_held_out_cut(self.cut_ladder, None, cut_tolerance(s))[0]
            self.checkpoint = without
        if s["distance"] == "learned" and (not held_out(s) or s["refit"]):
            ids = knn_graph(features, **self.knn)[0]
            self.checkpoint, _ = train_similarity(features, ids, labels, s["model"], s["seed"])
        if s["cut"] == "auto" and not held_out(s):  # chosen on the train part itself
            ids, d = self._lists(features, 1)
            run = _cluster_fn(s, 1)
            scores = selection.coarse_to_fine_scores(lambda c: run(ids, d, c), labels,
                                                     CUT_GRID, "cut")
            self.cut_ = choose_cut(scores, cut_tolerance(s))["cut"]

    def _predict(self, features, threads):
        ids, d = self._lists(features, threads)
        if self.cut_ladder:
            self.cut_ = choose_held_out_cut(self.cut_ladder, features.shape[0],
                                            cut_tolerance(self.params))[0]
        cut = self.cut_ if self.params["cut"] == "auto" else self.params["cut"]
        return _cluster_fn(self.params, threads)(ids, d, float(cut))

    def _save_state(self, folder):
        if self.checkpoint is not None:
            io.save_torch(folder / "similarity.pt", self.checkpoint)

    def _state_attrs(self):
        return {"cut": self.cut_, "cut_ladder": self.cut_ladder}

    @classmethod
    def _load_state(cls, model, folder, state):
        model.cut_ = state["cut"]
        model.cut_ladder = state.get("cut_ladder")
        path = Path(folder) / "similarity.pt"
        if model.params["distance"] == "learned":
            model.checkpoint = io.load_torch(path)


METHOD = Method(
    name="ndde_tpdi",
    doc="hard clusters (ECCV 2022): learned distance, NDDe density, TPDi, density-peak linkage",
    params=PARAMS,
    stages=STAGES,
    plan=plan,
    model=Model,
    needs_labels=lambda s: s["distance"] == "learned" or s["cut"] == "auto",
    scan=scan,
    held_out_choice=selection.ladder_choice("cut", choose_held_out_cut),
)
