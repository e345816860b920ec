"""Face Transformer (Yang et al., 2021): a Relation Encoder enhances each face from its
hop2 nearest neighbours, a Linkage Predictor scores each face's link to its hop1 nearest
neighbours, and the links with P(same identity) > τ are joined by union-find.  The paper
has no public code; ``network.py`` states each equation and marks each choice it leaves
open (all options of ``model``).

Stages:

- ``train``: RE and LP end to end on the labeled train part; the model chosen on held-out
  training identities, clustered exactly as the test part will be;
- ``tau``: τ auto's curves on those held-out identities clustered as a part of their own
  (their own kNN graph), at every size of the ladder (``core.selection.held_out_ladder``),
  so that τ is chosen for the test part's size (``tau_on: held_out_part``;
  ``training_graph``: the validation's curve, on the held-out faces' training lists);
- ``relations``: RE's g of every face of a part, computed once and kept (not with
  ``mode: lp_only``);
- ``link``: LP's P(same) of every face with each of its hop1 candidates (with
  ``re_only``: 1 − ¼‖N(g_q) − N(g_k)‖²);
- ``cluster``: the links with P > τ, union-find (connected components);
- ``bundle``: the trained networks and τ as a model folder for new faces.

Table 5's variants are ``mode: re_only`` and ``mode: lp_only``; the naive row (cosine
links, union-find) is the ``knn_threshold`` method.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core import health, io, selection
from ...core.components import components_from_edges
from ...core.contract import ClusterModel, Method, Outcome, Stage, StageJob
from ...core.device import torch_threads
from ...core.params import Param, Params, auto_or, boolean, choice, integer, number
from ...core.planning import ConfigError, threshold_tag
from ...core.progress import log

# τ's grid: 0.00..0.99 by 0.01, then 0.991..0.999 and 0.9995, 0.9999: a trained LP's
# probabilities crowd towards 1, and union-find needs its links precise.
TAU_GRID = np.concatenate([selection.THRESHOLD_GRID,
                           np.round(np.arange(0.991, 0.9995, 0.001), 3), [0.9995, 0.9999]])

MODEL = Params(
    mode=Param("both", choice("both", "re_only", "lp_only"),
               "both: RE then LP | re_only: RE, P from the enhanced features' distance "
               "(Eq. 11-12) | lp_only: LP on the raw features (Table 5)"),
    hop1=Param(40, integer(1), "candidates per face that LP scores (paper: 150; needs the "
                               "kNN's k > hop1)"),
    hop2=Param(5, integer(1), "neighbours per face that RE reads (paper: 5)"),
    depth=Param(2, integer(0), "d_e: self-attention layers in RE and in LP (paper: 2)"),
    heads=Param(4, integer(1), "attention heads (paper: 4)"),
    head_dim=Param(64, integer(1), "width of each head (paper: 64; 128 for 512-D features)"),
    dropout=Param(0.4, number(0, exclusive_maximum=1), "dropout on each sub-layer's output "
                                                       "(paper: 0.4; Table 6: 0.2 is better)"),
    ff=Param(0, integer(0), "the feed-forward sub-layer's width; 0: none, as Eq. 4 and 7 "
                            "(the paper leaves it open)"),
    mlp=Param(256, integer(1), "hidden width of LP's two-layer MLP (not in the paper)"),
    scale_input=Param(True, boolean(), "multiply the unit features by √D before the networks: "
                                       "unit rows have coordinates of about 1/√D, which the "
                                       "attention's output swamps in Eq. 6's residual (the "
                                       "paper leaves the input scale open)"),
    edge=Param("symmetric", choice("cat", "cat_cosine", "symmetric"),
               "LP's edge embedding: cat: [g_q ‖ h_k] (Eq. 8) | cat_cosine: and cos(g_q, g_k) | "
               "symmetric: [g_q ⊙ h_k ‖ |g_q − h_k| ‖ cos(g_q, g_k)] (network.py; the "
               "default: README, Face Transformer)"),
    optimizer=Param("adamw", choice("adamw", "sgd"),
                    "AdamW | SGD with momentum 0.9 (the paper names none)"),
    lr=Param(0.002, number(exclusive_minimum=0), "base learning rate (paper: 0.002, for its "
                                                 "256-D features); D > 256 trains at "
                                                 "lr · 256 / D (network.learning_rate)"),
    weight_decay=Param(5e-4, number(0), "weight decay (paper: 5e-4)"),
    warmup=Param(100, integer(1), "steps of linear warm-up, then cosine (paper: 500 of about "
                                  "a million steps)"),
    steps=Param(1000, integer(1), "training steps (paper: 60 epochs of MS1M part0, about a "
                                  "million steps)"),
    batch_size=Param(32, integer(1), "queries per step (paper: 32)"),
    val_fraction=Param(0.2, number(0, exclusive_maximum=1),
                       "share of training identities held out to choose the model and τ"),
    val_every=Param(200, integer(1), "steps between validations"),
)

PARAMS = Params(
    model=MODEL,
    tau=Param("auto", auto_or(number(0, 1)),
              "τ: faces are linked where P(same identity) > τ; auto: chosen on held-out "
              "training identities (the paper does not give its value)"),
    tau_on=Param("held_out_part", choice("held_out_part", "training_graph"),
                 "auto: held_out_part = the held-out identities clustered as a part of their "
                 "own (own kNN graph), τ chosen for the test part's size | training_graph = "
                 "the validation's curve, the held-out faces' lists of the training graph"),
    tau_tolerance=Param(0.0, number(0),
                        "auto: the largest τ whose held-out score is within this of the best "
                        "(0: the best; 0.01 scored worse on the evaluation matrix with "
                        "tau_on held_out_part, better with training_graph: README)"),
    seed=Param(0, integer(), "seed of the training and of the held-out split"),
)


def check(s: dict, k: int) -> str | None:
    """What is wrong with these settings for kNN lists of ``k`` (self included), or None."""
    m = s["model"]
    if m["mode"] != "re_only" and m["hop1"] >= k:
        return (f"model.hop1 {m['hop1']} needs kNN lists of more than {m['hop1']} faces; "
                f"set knn: {{k: {m['hop1'] + 1}}} in the experiment")
    if m["mode"] != "lp_only" and m["hop2"] >= k:
        return f"model.hop2 {m['hop2']} needs kNN lists of more than {m['hop2']} faces"
    if s["tau"] == "auto" and m["val_fraction"] == 0:
        return "tau 'auto' is chosen on held-out identities, and model.val_fraction is 0"
    return None


# ------------------------------------------------------------------ array functions
def link(cand: np.ndarray, p: np.ndarray, tau: float) -> np.ndarray:
    """Union-find over the links with P(same) > ``tau``: cluster labels int32 (N,) of
    ``cand`` (N, hop1) candidates (−1 padding) and their ``p`` (N, hop1)."""
    keep = (p > tau) & (cand >= 0)
    rows = np.repeat(np.arange(cand.shape[0]), cand.shape[1])[keep.ravel()]
    return components_from_edges(cand.shape[0], rows, cand[keep])


def probabilities(checkpoint: dict, features: np.ndarray, ids: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(candidates, p, g)`` of faces (N, D) and their kNN lists (N, k) under a trained
    checkpoint: the networks' g, LP's P(same)."""
    from . import network

    model, cfg = network.load(checkpoint, "auto"), checkpoint["config"]
    g = network.relations(model, features, ids, cfg["hop2"])
    cand, p = network.link_probabilities(model, g, ids, cfg["hop1"])
    return cand, p, g


def validation_scorer(features, ids, labels, held, hop1: int, hop2: int):
    """``score(model)``: F_P and F_B over τ of the held-out faces (``held`` (N,) bool),
    their lists restricted to themselves, linked exactly as the test part will be."""
    from . import network

    rows = np.flatnonzero(held)
    sub_ids, _ = selection.restrict_lists(ids, np.zeros(ids.shape, np.float32), rows)
    sub_feats, sub_labels = features[rows], labels[rows]

    def score(model):
        g = network.relations(model, sub_feats, sub_ids, hop2)
        cand, p = network.link_probabilities(model, g, sub_ids, hop1)
        return selection.coarse_to_fine_scores(lambda t: link(cand, p, t), sub_labels,
                                               TAU_GRID, "tau")
    return score


def held_out_rows(labels: np.ndarray, s: dict) -> np.ndarray:
    """The rows (int64, sorted) of the identities the training held out: the split ``fit``
    draws from ``model.val_fraction`` and ``seed``."""
    return np.flatnonzero(selection.held_out_identities(labels, s["model"]["val_fraction"],
                                                        s["seed"], stream=5))


def tau_ladder(checkpoint: dict, features: np.ndarray, labels: np.ndarray, s: dict,
               knn: dict, threads: int = 1) -> list[dict]:
    """τ's scores on the held-out identities clustered as a part of their own, at every
    size of the ladder (``core.selection.held_out_ladder``): each part's own kNN graph,
    RE and LP on its faces alone (``probabilities``), union-find at every τ of
    ``TAU_GRID``.  ``checkpoint``: trained by ``fit`` on ``features`` (N, D) and ``labels``
    (N,); ``s`` the experiment's settings.  Raises ValueError when none was held out."""
    rows = held_out_rows(np.asarray(labels), s)

    def prepare(x, ids, sims):
        cand, p, _ = probabilities(checkpoint, x, ids)
        return lambda t: link(cand, p, t)

    return selection.held_out_ladder(
        features, labels, rows, knn, prepare, TAU_GRID, "tau", threads,
        progress=lambda what: log.info("τ on the held-out part: %s", what))


# τ auto for a part larger than the held-out part is hedged towards the plateau's top for up
# to two doublings (a tolerance of up to 0.02): the held-out part holds a fifth of the train
# part's identities, so the part to cluster is often four to six times larger.  Against one
# doubling, on the stored ladders of 10 evaluation-matrix pairs: within a point of the test
# part's best on 8 of 10 (6), +0.29 on average (gen-lookalikes +1.4, gen-dense +1.4), none
# fell; the LFW folds, under twice the held-out part, do not move.  Its first test,
# gen-low-quality: −0.7 (still within a point); its second, gen-nuisance: +2.4; its third
# and fourth, gen-d128 and gen-50k: the same choice (at 50k faces, unhedged, 34.6 points
# lower); on the 14 pairs 11 of 14 (8), +0.33.  Its fifth, gen-d512: +27.7 with a collapsed
# model, −0.5 once retrained (network.learning_rate); at 584k faces of the MS1M-scale
# benchmark, 47 times the held-out part, −0.6 (README).
TAU_DOUBLINGS = 2.0


def choose_tau(ladder: list[dict], n_faces: int | None, tolerance: float):
    """``(τ, score entry, its size's curve, where)`` for a part of ``n_faces`` faces (None:
    the whole held-out part) from ``tau_ladder``'s curves (``core.selection.choose_held_out``,
    hedged for up to ``TAU_DOUBLINGS``)."""
    return selection.choose_held_out(ladder, n_faces, "tau", TAU_GRID, tolerance,
                                     doublings=TAU_DOUBLINGS)


def fit(features, ids, labels, s: dict) -> dict:
    """The networks trained on labeled faces (``network.train``), validated on held-out
    identities; the checkpoint."""
    from . import network

    m = s["model"]
    held = np.zeros(labels.size, dtype=bool)
    held[held_out_rows(labels, s)] = True
    score = validation_scorer(features, ids, labels, held, m["hop1"], m["hop2"]) \
        if held.any() else None
    checkpoint, info = network.train(features, ids, labels, m, seed=s["seed"], held=held,
                                     score=score)
    log.info("Face Transformer trained: loss %.4f -> %.4f in %d steps, %.1f s",
             info["loss_first"], info["loss_last"], info["steps"], info["seconds"])
    return checkpoint


def chosen_tau(s: dict, checkpoint: dict, ladder: list | None = None,
               n_faces: int | None = None) -> tuple[float, dict, list[dict], dict, str]:
    """τ: the number given, or ``auto`` for a part of ``n_faces`` faces from the held-out
    part's curves (``ladder``, the ``tau`` stage's) or the checkpoint's validation: (τ, its
    score entry, the scores it was chosen on, the validation record, where they come
    from)."""
    if s["tau"] != "auto":
        return float(s["tau"]), {}, [], {}, ""
    validation = checkpoint.get("validation") or {}
    if ladder:
        tau, entry, scores, where = choose_tau(ladder, n_faces, s["tau_tolerance"])
        return tau, entry, scores, validation, where
    scores = validation.get("scores")
    if not scores:
        raise ValueError("τ 'auto' needs the Face Transformer trained with validation "
                         "(model.val_fraction > 0) and a model better than the untrained one")
    top = selection.plateau_top(scores, "tau", s["tau_tolerance"])
    return float(top["tau"]), top, scores, validation, "held-out training identities"


# ------------------------------------------------------------------ stages
def _labels(job: StageJob) -> np.ndarray:
    labels = job.labels()
    if labels is None:
        raise ValueError(f"{job.input('features')}: the Face Transformer trains on identity "
                         f"labels")
    return labels


def train_stage(job: StageJob) -> None:
    torch_threads(job.threads)
    checkpoint = fit(job.features(), job.array("knn", "ids"), _labels(job), job.params)
    io.save_torch(job.out, checkpoint)


def tau_stage(job: StageJob) -> None:
    """τ curves of the held-out identities clustered as a part of their own, at every size
    of the ladder (``tau_ladder``): ``tau.json``."""
    torch_threads(job.threads)
    p = job.params
    ladder = tau_ladder(io.load_torch(job.input("model")), job.features(), _labels(job),
                        p["settings"], p["knn"], job.threads)
    io.write_json(job.out, {"ladder": ladder})
    selection.log_ladder(ladder, "tau", "τ")


def relations_stage(job: StageJob) -> None:
    from . import network

    torch_threads(job.threads)
    checkpoint = io.load_torch(job.input("model"))
    g = network.relations(network.load(checkpoint, "auto"), job.features(),
                          job.array("knn", "ids"), checkpoint["config"]["hop2"])
    io.write_arrays(job.out, {"g": g}, {"hop2": checkpoint["config"]["hop2"]})


def link_stage(job: StageJob) -> None:
    from . import network

    torch_threads(job.threads)
    checkpoint = io.load_torch(job.input("model"))
    model = network.load(checkpoint, "auto")
    ids = job.array("knn", "ids")
    g = job.array("relations", "g") if "relations" in job.inputs else \
        network.relations(model, job.features(), ids, checkpoint["config"]["hop2"])
    cand, p = network.link_probabilities(model, g, ids, checkpoint["config"]["hop1"])
    io.write_arrays(job.out, {"ids": cand, "p": p},
                    {"mode": checkpoint["config"]["mode"], "p_mean": float(p[cand >= 0].mean())
                     if (cand >= 0).any() else 0.0})


def cluster_stage(job: StageJob) -> None:
    p = job.params
    links = job.arrays("links", ["ids", "p"])
    checkpoint = io.load_torch(job.input("model"))
    ladder = io.read_json(job.input("tau"))["ladder"] if "tau" in job.inputs else None
    n = links["ids"].shape[0]
    tau, top, scores, validation, where = chosen_tau(p, checkpoint, ladder, n)
    chosen, attrs, findings = {}, {"knob": "tau"}, []
    if p["tau"] == "auto":
        chosen["tau"] = tau
        log.info("τ = %.4g for %d faces, chosen on %s", tau, n, where)
        attrs.update(train_score=selection.train_score(top, where), train_curve=scores)
        findings = health.validation_findings(validation, "the Face Transformer", "τ") + \
            health.at_grid_edge("τ", tau, TAU_GRID.tolist(), scores, top)
    labels = link(links["ids"], links["p"], tau)
    job.write_clusters(labels, {**attrs, "tau": tau}, chosen, health=findings)


def bundle_stage(job: StageJob) -> None:
    model = Model(knn=job.params["knn"], **job.params["settings"])
    model.checkpoint = io.load_torch(job.input("model"))
    if "tau" in job.inputs:
        model.tau_ladder = io.read_json(job.input("tau"))["ladder"]
    model.tau_ = chosen_tau(model.params, model.checkpoint, model.tau_ladder)[0]
    model.fitted = True
    job.save_model(model)
    log.info("Face Transformer model written to %s (τ %.2f)", job.out, model.tau_)


STAGES = (
    Stage("train", "face_transformer.pt", train_stage, "RE and LP on the train part; model "
          "and τ on held-out identities", threads="all", gpu=True, memory=(2000, 8),
          runtime=(30, 0.5),
          version=2),  # 2: lr · 256 / D for D > 256 (network.learning_rate); D ≤ 256 as 1
    Stage("tau", "tau.json", tau_stage, "τ auto on the held-out identities clustered as a "
          "part of their own, at every size", threads="all", gpu=True, memory=(2000, 8),
          runtime=(10, 0.3)),
    Stage("relations", "relations.h5", relations_stage, "RE's enhanced feature g of every "
          "face", threads="all", gpu=True, memory=(1000, 4), runtime=(10, 0.1)),
    Stage("link", "links.h5", link_stage, "LP's P(same identity) of every face and its hop1 "
          "candidates", threads="all", gpu=True, memory=(1000, 8), runtime=(20, 1.0)),
    Stage("cluster", "clusters.h5", cluster_stage, "links with P > τ, union-find",
          table=True, memory=(1000, 6), runtime=(10, 0.05),
          version=2),  # 2: τ auto hedged for up to two doublings (TAU_DOUBLINGS)
    Stage("bundle", "model", bundle_stage, "the trained networks and τ as a model folder",
          memory=(1000, 0), runtime=(5, 0.0)),
)


def plan(ctx, s: dict) -> Outcome:
    problem = check(s, ctx.knn_params["k"])
    if problem:
        raise ConfigError(f"experiments.{ctx.experiment}: {problem}")
    m = s["model"]
    folder = lambda path: str(Path(path).parent)  # noqa: E731
    train_knn = ctx.knn("train")
    model = ctx.add("train", {"knn": train_knn, "features": ctx.features("train")},
                    {"model": m, "seed": s["seed"]}, under=folder(train_knn),
                    label=f"facet-{m['mode']}")
    test_knn = ctx.knn("test")
    inputs = {"knn": test_knn, "features": ctx.features("test"), "model": model}
    if m["mode"] != "lp_only":
        inputs["relations"] = ctx.add("relations", dict(inputs), {}, under=folder(test_knn),
                                      label=f"facet-{m['mode']}-relations")
    links = ctx.add("link", inputs, {}, under=folder(test_knn), label=f"facet-{m['mode']}-links")
    params = {"tau": s["tau"], "tau_tolerance": s["tau_tolerance"]}
    cluster_inputs = {"links": links, "model": model, "features": ctx.features("test")}
    if s["tau"] == "auto" and s["tau_on"] == "held_out_part":
        cluster_inputs["tau"] = ctx.add(
            "tau", {"model": model, "features": ctx.features("train")},
            {"settings": {"seed": s["seed"], "model": {"val_fraction": m["val_fraction"]}},
             "knn": ctx.knn_params}, under=folder(model), label="tau")
    clusters = ctx.add("cluster", cluster_inputs, params, under=folder(links),
                       label=f"link-{threshold_tag(s['tau'], s['tau_tolerance'])}")
    exported = ctx.add_model("bundle", {k: v for k, v in cluster_inputs.items()
                                        if k in ("model", "tau")},
                             {"settings": s, "knn": ctx.knn_params})
    return Outcome(clusters, {"mode": m["mode"], "hop1": m["hop1"], "hop2": m["hop2"],
                              "tau": s["tau"]}, None, exported)


def scan(inputs: dict, params: dict, labels) -> list[dict]:
    """F over τ of the final links, from the cluster stage's inputs."""
    links = io.read_arrays(inputs["links"], ["ids", "p"])
    return selection.score_thresholds(lambda t: link(links["ids"], links["p"], t), labels,
                                      TAU_GRID, "tau")


class Model(ClusterModel):
    """The Face Transformer as a model: ``fit`` trains RE and LP on labeled faces and
    chooses τ on held-out identities; ``predict`` searches the kNN graph of new faces,
    scores their links and joins those above τ.  With τ auto on the held-out part
    (``tau_on``), ``tau_ladder`` keeps its curves and each ``predict`` chooses τ for its
    number of faces."""

    checkpoint: dict | None = None
    tau_: float | None = None        # τ used by the last prediction (or the fit's)
    tau_ladder: list | None = None   # τ curves of the held-out part at every size (auto)

    def _fit(self, features, labels):
        from ...core.knn import knn_graph

        problem = check(self.params, self.knn["k"])
        if problem:
            raise ValueError(f"face_transformer: {problem}")
        ids, _, _ = knn_graph(features, **self.knn)
        s = self.params
        self.checkpoint = fit(features, ids, labels, s)
        if s["tau"] == "auto" and s["tau_on"] == "held_out_part":
            self.tau_ladder = tau_ladder(self.checkpoint, features, labels, s, self.knn)
        self.tau_ = chosen_tau(s, self.checkpoint, self.tau_ladder)[0]

    def _predict(self, features, threads):
        from ...core.knn import knn_graph

        torch_threads(threads)
        ids, _, _ = knn_graph(features, threads=threads, **self.knn)
        cand, p, _ = probabilities(self.checkpoint, features, ids)
        if self.tau_ladder:
            self.tau_ = chosen_tau(self.params, self.checkpoint, self.tau_ladder,
                                   features.shape[0])[0]
        return link(cand, p, self.tau_)

    def _save_state(self, folder):
        io.save_torch(folder / "face_transformer.pt", self.checkpoint)

    def _state_attrs(self):
        return {"tau": self.tau_, "tau_ladder": self.tau_ladder}

    @classmethod
    def _load_state(cls, model, folder, state):
        model.tau_ = state["tau"]
        model.tau_ladder = state.get("tau_ladder")
        model.checkpoint = io.load_torch(Path(folder) / "face_transformer.pt")


METHOD = Method(
    name="face_transformer",
    doc="Face Transformer (2021): relation encoder, linkage predictor, union-find",
    params=PARAMS,
    stages=STAGES,
    plan=plan,
    model=Model,
    needs_labels=lambda s: True,
    scan=scan,
    held_out_choice=selection.ladder_choice("tau", choose_tau),
)
