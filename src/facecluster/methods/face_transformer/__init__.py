"""Face Transformer (Yang et al., 2021): a Relation Encoder enhances each face from its
hop2 nearest neighbours, a Linkage Predictor scores each face's link to its hop1 nearest
neighbours, and the links with P(same identity) > τ are joined by union-find.  The paper
has no public code; ``network.py`` states each equation and marks each choice it leaves
open (all options of ``model``).

Stages:

- ``train``: RE and LP end to end on the labeled train part; the model and τ chosen on
  held-out training identities, clustered exactly as the test part will be;
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
    lr=Param(0.002, number(exclusive_minimum=0), "base learning rate (paper: 0.002)"),
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
    tau_tolerance=Param(selection.TOLERANCE, number(0),
                        "auto: the largest τ whose held-out score is within this of the best"),
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


def fit(features, ids, labels, s: dict) -> dict:
    """The networks trained on labeled faces (``network.train``), validated on held-out
    identities; the checkpoint."""
    from . import network

    m = s["model"]
    held = selection.held_out_identities(labels, m["val_fraction"], s["seed"], stream=5)
    score = validation_scorer(features, ids, labels, held, m["hop1"], m["hop2"]) \
        if held.any() else None
    checkpoint, info = network.train(features, ids, labels, m, seed=s["seed"], held=held,
                                     score=score)
    log.info("Face Transformer trained: loss %.4f -> %.4f in %d steps, %.1f s",
             info["loss_first"], info["loss_last"], info["steps"], info["seconds"])
    return checkpoint


def chosen_tau(s: dict, checkpoint: dict) -> tuple[float, list[dict], dict]:
    """τ: the number given, or ``auto`` from the checkpoint's validation: (τ, scores,
    validation record)."""
    if s["tau"] != "auto":
        return float(s["tau"]), [], {}
    validation = checkpoint.get("validation") or {}
    scores = validation.get("scores")
    if not scores:
        raise ValueError("τ 'auto' needs the Face Transformer trained with validation "
                         "(model.val_fraction > 0) and a model better than the untrained one")
    top = selection.plateau_top(scores, "tau", s["tau_tolerance"])
    return float(top["tau"]), scores, validation


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
    tau, scores, validation = chosen_tau(p, checkpoint)
    chosen, attrs, findings = {}, {"knob": "tau"}, []
    if p["tau"] == "auto":
        chosen["tau"] = tau
        top = next(s for s in scores if s["tau"] == tau)
        attrs.update(train_score=selection.train_score(top, "held-out training identities"),
                     train_curve=scores)
        findings = health.validation_findings(validation, "the Face Transformer", "τ") + \
            health.at_grid_edge("τ", tau, TAU_GRID.tolist(), scores)
    labels = link(links["ids"], links["p"], tau)
    job.write_clusters(labels, {**attrs, "tau": tau}, chosen, health=findings)


def bundle_stage(job: StageJob) -> None:
    model = Model(knn=job.params["knn"], **job.params["settings"])
    model.checkpoint = io.load_torch(job.input("model"))
    model.tau_ = chosen_tau(model.params, model.checkpoint)[0]
    model.fitted = True
    model.save(job.out)
    log.info("Face Transformer model written to %s (τ %.2f)", job.out, model.tau_)


STAGES = (
    Stage("train", "face_transformer.pt", train_stage, "RE and LP on the train part; model "
          "and τ on held-out identities", threads="all", gpu=True, memory=(2000, 8),
          runtime=(30, 0.5)),
    Stage("relations", "relations.h5", relations_stage, "RE's enhanced feature g of every "
          "face", threads="all", gpu=True, memory=(1000, 4), runtime=(10, 0.1)),
    Stage("link", "links.h5", link_stage, "LP's P(same identity) of every face and its hop1 "
          "candidates", threads="all", gpu=True, memory=(1000, 8), runtime=(20, 1.0)),
    Stage("cluster", "clusters.h5", cluster_stage, "links with P > τ, union-find",
          table=True, memory=(1000, 6), runtime=(10, 0.05)),
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
    clusters = ctx.add("cluster", {"links": links, "model": model,
                                   "features": ctx.features("test")}, params,
                       under=folder(links),
                       label=f"link-{threshold_tag(s['tau'], s['tau_tolerance'])}")
    exported = ctx.add_model("bundle", {"model": model}, {"settings": s, "knn": ctx.knn_params})
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
    scores their links and joins those above τ."""

    checkpoint: dict | None = None
    tau_: float | None = None

    def _fit(self, features, labels):
        from ...core.knn import knn_graph

        problem = check(self.params, self.knn["k"])
        if problem:
            raise ValueError(f"face_transformer: {problem}")
        ids, _, _ = knn_graph(features, **self.knn)
        self.checkpoint = fit(features, ids, labels, self.params)
        self.tau_ = chosen_tau(self.params, self.checkpoint)[0]

    def _predict(self, features, threads):
        from ...core.knn import knn_graph

        torch_threads(threads)
        ids, _, _ = knn_graph(features, threads=threads, **self.knn)
        cand, p, _ = probabilities(self.checkpoint, features, ids)
        return link(cand, p, self.tau_)

    def _save_state(self, folder):
        io.save_torch(folder / "face_transformer.pt", self.checkpoint)

    def _state_attrs(self):
        return {"tau": self.tau_}

    @classmethod
    def _load_state(cls, model, folder, state):
        model.tau_ = state["tau"]
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
)
