"""GCN-V and GCN-E (Yang et al., CVPR 2020): vertex confidence, edge connectivity and tree
deduction on the shared kNN graph.

Stages (``gcn_v.py``, ``gcn_e.py``):

- ``train_v``: GCN-V on the labeled train part, its s_nbr targets (Eq. 1) normalised as the
  paper (÷|N_i|) or the reference code (÷ the largest |c|); the model chosen on held-out
  training identities, deducing exactly as the test part will;
- ``tau``: τ auto's curves on those held-out identities clustered as a part of their own
  (their own kNN graph, GCN-V's confidence and hidden features from their faces only), at
  every size of the ladder (``core.selection.held_out_ladder``), so that τ is chosen for
  the test part's size (``tau_on: held_out_part``; ``training_graph``: the validation's
  curve, the held-out faces inside the training graph);
- ``confidence``: each face's confidence (GCN-V's, or the unsupervised density) and the
  lists tree deduction walks: the kNN lists (one pass), or the second pass's neighbours by
  GCN-V's hidden features, either the kNN candidates re-scored by their hidden cosine
  (``neighbours: candidates``, linear in N) or a new kNN search on the hidden features
  (``neighbours: embedding``, the reference code);
- ``calibrate``: τ ``auto`` for the density confidence, which has no validation: F at
  every τ on the train part;
- ``train_e``: GCN-E on the train part's confident vertices (``edge: true``);
- ``deduce``: tree deduction cut at τ (GCN-E's links for the top ρ vertices with V+E);
- ``bundle``: the trained models and τ as a model folder for new faces.

Choices the reference settles differently, to fit the 2-core machine (each an option):
GCN-V trains on random vertex batches (the reference: 80,000 full-graph steps); GCN-E trains
for ``gcn_e.epochs`` (the reference: 40) and its candidates come from the kNN artifact's k
(set ``knn: {k: 160}`` in the experiment for the reference's 160); the second pass re-scores
candidates by default.  τ is chosen on training identities (the reference: τ₀ 0.65 for the
one-pass intermediate, 0.8 for the second pass).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core import health, io, selection
from ...core.device import torch_threads
from ...core.contract import ClusterModel, Method, Outcome, Stage, StageJob
from ...core.params import (Param, ParamError, Params, auto_or, boolean, choice, integer,
                            number)
from ...core.planning import ConfigError, threshold_tag
from ...core.progress import log

TAU_GRID = selection.THRESHOLD_GRID

GCN_V = Params(
    hidden=Param(512, integer(1), "the GraphConv's output width (reference: 512)"),
    lr=Param(0.1, number(exclusive_minimum=0), "SGD learning rate (reference: 0.1), ×0.1 at "
                                               "50/80/90% of the steps"),
    momentum=Param(0.9, number(0, exclusive_maximum=1), "SGD momentum (reference: 0.9)"),
    weight_decay=Param(1e-5, number(0), "SGD weight decay (reference: 1e-5)"),
    steps=Param(1000, integer(1), "training steps (reference: 80,000 full-graph steps)"),
    batch_size=Param(4096, integer(1), "vertices per step (their aggregation ÃF is exact: it "
                                       "holds no weight)"),
    val_fraction=Param(0.2, number(0, exclusive_maximum=1),
                       "share of training identities held out to choose the model and τ"),
    val_every=Param(100, integer(1), "steps between validations"),
)

GCN_E = Params(
    layers=Param([512, 512, 256, 256], {"type": "array", "items": integer(1), "minItems": 1},
                 "GraphConv output widths (reference: 512, 512, 256, 256)"),
    rho_train=Param(0.3, number(exclusive_minimum=0, maximum=1),
                    "share of train vertices, by confidence, whose subgraphs train GCN-E "
                    "(reference: 0.3)"),
    epochs=Param(4, integer(1), "passes over the training subgraphs (reference: 40)"),
    batch_size=Param(32, integer(1), "subgraphs per step (reference: 32 accumulated)"),
    lr=Param(0.1, number(exclusive_minimum=0), "SGD learning rate (reference: 0.1)"),
    momentum=Param(0.9, number(0, exclusive_maximum=1), "SGD momentum"),
    weight_decay=Param(1e-5, number(0), "SGD weight decay"),
)

PARAMS = Params(
    confidence=Param("gcn_v", choice("gcn_v", "density"),
                     "gcn_v: learned from s_nbr targets | density: the sum of neighbour "
                     "cosines within distance 0.3, no training (Table 3's ablation)"),
    target_norm=Param("paper", choice("paper", "reference"),
                      "s_nbr ÷ |N_i| (Eq. 1) | ÷ the largest |c| of the set (reference code)"),
    passes=Param(2, choice(1, 2), "2: deduce on neighbours by GCN-V's hidden features "
                                  "(reference) | 1: on the kNN lists"),
    neighbours=Param("candidates", choice("candidates", "embedding"),
                     "pass 2: the kNN candidates re-scored by hidden cosine (linear in N) | "
                     "embedding: a new kNN search on the hidden features (reference)"),
    tau=Param("auto", auto_or(number(-1, 1)),
              "τ: parent edges with similarity above it are kept; auto: chosen on held-out "
              "training identities (density: on the train part)"),
    tau_on=Param("held_out_part", choice("held_out_part", "training_graph"),
                 "auto (GCN-V): held_out_part = the held-out identities clustered as a part "
                 "of their own (own kNN graph and GCN-V pass), τ chosen for the test part's "
                 "size | training_graph = GCN-V's validation, held-out faces inside the "
                 "training graph"),
    tau_tolerance=Param(selection.TOLERANCE, number(0),
                        "auto: the largest τ whose training score is within this of the best"),
    edge=Param(False, boolean(), "GCN-E on the top ρ vertices (V+E)"),
    rho=Param(0.2, number(exclusive_minimum=0, maximum=1),
              "ρ: share of vertices, by confidence, GCN-E links (reference: 0.2; ablation 0.1)"),
    gcn_v=GCN_V,
    gcn_e=GCN_E,
    seed=Param(0, integer(), "seed of GCN-V's and GCN-E's training and of the held-out split"),
)


def check(s: dict) -> str | None:
    """What is wrong with a combination of settings, or None."""
    if s["confidence"] == "density":
        if s["passes"] == 2:
            return "confidence 'density' has no hidden features for a second pass: passes 1"
        if s["edge"]:
            return "GCN-E (edge) reads GCN-V's hidden features: confidence 'gcn_v'"
    elif s["tau"] == "auto" and s["gcn_v"]["val_fraction"] == 0:
        return "tau 'auto' is chosen on held-out identities, and gcn_v.val_fraction is 0"
    if s["edge"] and s["passes"] == 1:
        return "GCN-E (edge) needs the second pass's hidden features: passes 2"
    return None


def needs_labels(s: dict) -> bool:
    return s["confidence"] == "gcn_v" or s["tau"] == "auto"


# ------------------------------------------------------------------ array functions
def pass_lists(hidden: np.ndarray | None, ids: np.ndarray, sims: np.ndarray, s: dict,
               knn: dict, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The lists tree deduction walks: the kNN lists (``passes`` 1), or neighbours by the
    L2-normalised ``hidden`` features (N, H): the candidates re-scored, or a new search."""
    if s["passes"] == 1:
        return ids, sims
    if s["neighbours"] == "candidates":
        from ...core.sparse import candidate_similarities

        return candidate_similarities(hidden, ids)
    from ...core.knn import knn_graph

    out_ids, out_sims, _ = knn_graph(hidden, threads=threads,
                                     **{**knn, "k": min(knn["k"], hidden.shape[0])})
    return out_ids, out_sims


def validation_scorer(ids, sims, labels, held, s, knn):
    """``score(confidence (N,), hidden (N, H))``: F_P and F_B of tree deduction on the
    held-out vertices (``held`` (N,) bool) over τ, deducing among them exactly as the test
    part is deduced (the same passes and neighbours)."""
    rows = np.flatnonzero(held)
    sub_ids, sub_sims = selection.restrict_lists(ids, sims, rows)
    sub_labels = labels[rows]

    def score(confidence, hidden):
        from .gcn_v import cut_tree, deduction_parents

        l_ids, l_sims = pass_lists(hidden[rows], sub_ids, sub_sims, s, knn)
        parent, parent_sim = deduction_parents(l_ids, l_sims, confidence[rows])
        return selection.coarse_to_fine_scores(lambda t: cut_tree(parent, parent_sim, t),
                                               sub_labels, TAU_GRID, "tau")
    return score


def held_out_rows(labels: np.ndarray, s: dict) -> np.ndarray:
    """The rows (int64, sorted) of the identities GCN-V held out of its training: the split
    ``fit_v`` draws from ``gcn_v.val_fraction`` and ``seed``."""
    return np.flatnonzero(selection.held_out_identities(labels, s["gcn_v"]["val_fraction"],
                                                        s["seed"], stream=2))


def tau_ladder(checkpoint: dict, features: np.ndarray, labels: np.ndarray, s: dict,
               knn: dict, threads: int = 1) -> list[dict]:
    """τ's scores on the held-out identities clustered as a part of their own, at every
    size of the ladder (``core.selection.held_out_ladder``): each part's own kNN graph,
    GCN-V's confidence and hidden features of its faces alone (``deduction_lists``), tree
    deduction cut at every τ of ``TAU_GRID``.  ``checkpoint``: GCN-V trained by ``fit_v``
    on ``features`` (N, D) and ``labels`` (N,); ``s`` the experiment's settings.  Raises
    ValueError when no identity was held out."""
    from .gcn_v import cut_tree, deduction_parents

    rows = held_out_rows(np.asarray(labels), s)

    def prepare(x, ids, sims):
        lists = deduction_lists(x, ids, sims, s, knn, checkpoint, threads)
        parent, parent_sim = deduction_parents(lists["ids"], lists["sims"], lists["confidence"])
        return lambda t: cut_tree(parent, parent_sim, t)

    return selection.held_out_ladder(
        features, labels, rows, knn, prepare, TAU_GRID, "tau", threads,
        progress=lambda what: log.info("τ on the held-out part: %s", what))


def fit_v(features, ids, sims, labels, s: dict, knn: dict) -> dict:
    """GCN-V trained on labeled faces (``gcn_v.train``), validated on held-out identities
    as ``validation_scorer`` deduces; the checkpoint."""
    from . import gcn_v

    cfg = {**s["gcn_v"], "target_norm": s["target_norm"]}
    held = np.zeros(labels.size, dtype=bool)
    held[held_out_rows(labels, s)] = True
    score = validation_scorer(ids, sims, labels, held, s, knn) if held.any() else None
    checkpoint, info = gcn_v.train(features, ids, sims, labels, cfg, seed=s["seed"],
                                   held=held, score=score)
    log.info("GCN-V trained: loss %.5f -> %.5f in %d steps, %.1f s", info["loss_first"],
             info["loss_last"], info["steps"], info["seconds"])
    return checkpoint


def deduction_lists(features, ids, sims, s: dict, knn: dict, checkpoint: dict | None,
                    threads: int = 1) -> dict[str, np.ndarray]:
    """``{"confidence" (N,), "ids", "sims" (N, k'): the lists to deduce on, "hidden" (N, H)
    (GCN-V only)}`` of (N, D) features and their kNN lists."""
    from . import gcn_v

    if s["confidence"] == "density":
        return {"confidence": gcn_v.density_confidence(ids, sims), "ids": ids, "sims": sims}
    conf, hidden = gcn_v.predict(gcn_v.load(checkpoint), features, ids, sims)
    out_ids, out_sims = pass_lists(hidden, ids, sims, s, knn, threads)
    return {"confidence": conf, "ids": out_ids, "sims": out_sims, "hidden": hidden}


def parents(lists: dict, checkpoint_e: dict | None, rho: float):
    """Tree deduction's parents (``gcn_v.deduction_parents``), GCN-E's for its top ρ
    vertices when a GCN-E checkpoint is given."""
    from .gcn_v import deduction_parents

    parent, parent_sim = deduction_parents(lists["ids"], lists["sims"], lists["confidence"])
    if checkpoint_e is not None:
        from . import gcn_e

        rows, p, ps = gcn_e.edge_parents(gcn_e.load(checkpoint_e),
                                         np.asarray(lists["hidden"], dtype=np.float32),
                                         lists["confidence"], lists["ids"], lists["sims"], rho)
        changed = int((parent[rows] != p).sum())
        parent[rows], parent_sim[rows] = p, ps
        log.info("GCN-E chose the parents of %d vertices, %d of them not GCN-V's", rows.size,
                 changed)
    return parent, parent_sim


def tau_scores(lists, labels) -> list[dict]:
    """Coarse-to-fine F over τ of one part's deduction lists (the density's ``auto``)."""
    from .gcn_v import cut_tree, deduction_parents

    parent, parent_sim = deduction_parents(lists["ids"], lists["sims"], lists["confidence"])
    return selection.coarse_to_fine_scores(lambda t: cut_tree(parent, parent_sim, t), labels,
                                           TAU_GRID, "tau")


# ------------------------------------------------------------------ stages
def train_v_stage(job: StageJob) -> None:
    torch_threads(job.threads)
    labels = job.labels()
    if labels is None:
        raise ValueError(f"{job.input('features')}: GCN-V trains on identity labels")
    knn = job.arrays("knn", ["ids", "sims"])
    p = job.params
    checkpoint = fit_v(job.features(), knn["ids"], knn["sims"], labels, p, p["knn"])
    io.save_torch(job.out, checkpoint)


def confidence_stage(job: StageJob) -> None:
    torch_threads(job.threads)
    p = job.params
    knn = job.arrays("knn", ["ids", "sims"])
    checkpoint = io.load_torch(job.input("model")) if "model" in job.inputs else None
    lists = deduction_lists(job.features(), knn["ids"], knn["sims"], p, p["knn"], checkpoint,
                            job.threads)
    hidden = lists.pop("hidden", None)
    if p["keep_hidden"]:
        lists["hidden"] = hidden.astype(np.float16)  # GCN-E's input; half the bytes
    conf = lists["confidence"]
    io.write_arrays(job.out, lists, {"confidence": p["confidence"], "passes": p["passes"],
                                     "confidence_mean": float(conf.mean()),
                                     "confidence_sd": float(conf.std())})


def tau_stage(job: StageJob) -> None:
    """τ curves of the held-out identities clustered as a part of their own, at every size
    of the ladder (``tau_ladder``): ``tau.json``."""
    torch_threads(job.threads)
    labels = job.labels()
    if labels is None:
        raise ValueError(f"{job.input('features')}: τ auto needs the train part's labels")
    p = job.params
    ladder = tau_ladder(io.load_torch(job.input("model")), job.features(), labels,
                        p["settings"], p["knn"], job.threads)
    io.write_json(job.out, {"ladder": ladder})
    selection.log_ladder(ladder, "tau", "τ")


def calibrate_stage(job: StageJob) -> None:
    labels = job.labels()
    scores = tau_scores(job.arrays("confidence", ["confidence", "ids", "sims"]), labels)
    io.write_json(job.out, {"scores": scores})


def train_e_stage(job: StageJob) -> None:
    from . import gcn_e

    torch_threads(job.threads)
    labels = job.labels()
    if labels is None:
        raise ValueError(f"{job.input('features')}: GCN-E trains on identity labels")
    lists = job.arrays("confidence", ["confidence", "ids", "sims", "hidden"])
    checkpoint, info = gcn_e.train(lists["hidden"].astype(np.float32), lists["confidence"],
                                   lists["ids"], lists["sims"], labels, job.params["gcn_e"],
                                   seed=job.params["seed"])
    io.save_torch(job.out, checkpoint)
    log.info("GCN-E trained: loss %.4f -> %.4f in %d steps, %.1f s", info["loss_first"],
             info["loss_last"], info["steps"], info["seconds"])


# τ auto for a part larger than the held-out part is hedged towards the plateau's top for up
# to two doublings (a tolerance of up to 0.02): the held-out part holds a fifth of the train
# part's identities, so the part to cluster is often four to six times larger.  Against one
# doubling, on the stored ladders of 9 evaluation-matrix pairs: within a point of the test
# part's best on 6 of 9 (3), +0.81 on average (the FaceNet pair +4.8, gen-dense +1.8,
# gen-lookalikes +1.2); fell on gen-default, −0.4; the LFW folds, under twice the held-out
# part, do not move.  Its first test, gen-low-quality: −0.6 (still within a point); its
# second, gen-nuisance: +1.2; its third and fourth, gen-d128 and gen-50k: the same, +2.0;
# on the 13 pairs 10 of 13 (5), +0.75.  Its fifth, gen-d512: +0.4; at 584k faces of the
# MS1M-scale benchmark, 46 times the held-out part, the same (README).
TAU_DOUBLINGS = 2.0


def choose_tau(ladder: list[dict], n_faces: int | None, tolerance: float):
    """``(τ, score entry, its size's curve, where)`` for a part of ``n_faces`` faces (None:
    the whole held-out part) from ``tau_ladder``'s curves (``core.selection.choose_held_out``,
    hedged for up to ``TAU_DOUBLINGS``)."""
    return selection.choose_held_out(ladder, n_faces, "tau", TAU_GRID, tolerance,
                                     doublings=TAU_DOUBLINGS)


def chosen_tau(p: dict, inputs: dict, n_faces: int | None = None
               ) -> tuple[float, dict, list[dict], dict, str]:
    """τ ``auto`` for a part of ``n_faces`` faces from the held-out part's curves (the
    ``tau`` stage's), the GCN-V checkpoint's validation or the calibration: (τ, its score
    entry, the training scores it was chosen on, the validation record or {}, where they
    come from)."""
    validation = io.load_torch(inputs["model"]).get("validation") or {} \
        if "model" in inputs else {}
    if "tau" in inputs:
        tau, entry, scores, where = choose_tau(io.read_json(inputs["tau"])["ladder"], n_faces,
                                               p["tau_tolerance"])
        return tau, entry, scores, validation, where
    if "model" in inputs:
        scores = validation.get("scores")
        if not scores:
            raise ValueError(f"{inputs['model']}: τ 'auto' needs GCN-V trained with "
                             f"validation (gcn_v.val_fraction > 0)")
    else:
        validation, scores = {}, io.read_json(inputs["calibration"])["scores"]
    top = selection.plateau_top(scores, "tau", p["tau_tolerance"])
    return float(top["tau"]), top, scores, validation, \
        "held-out training identities" if validation else "the train part"


def deduce_stage(job: StageJob) -> None:
    from .gcn_v import cut_tree

    torch_threads(job.threads)
    p = job.params
    names = ["confidence", "ids", "sims"] + (["hidden"] if "model_e" in job.inputs else [])
    lists = job.arrays("confidence", names)
    tau, chosen, attrs, findings = p["tau"], {}, {"knob": "tau"}, []
    if tau == "auto":
        tau, top, scores, validation, where = chosen_tau(p, job.inputs,
                                                         lists["confidence"].size)
        chosen["tau"] = tau
        log.info("τ = %.2f for %d faces, chosen on %s", tau, lists["confidence"].size, where)
        attrs.update(train_score=selection.train_score(top, where), train_curve=scores)
        findings = health.validation_findings(validation, "GCN-V", "τ") + \
            health.at_grid_edge("τ", tau, TAU_GRID.tolist(), scores, top)
    checkpoint_e = io.load_torch(job.input("model_e")) if "model_e" in job.inputs else None
    parent, parent_sim = parents(lists, checkpoint_e, p.get("rho", 0.0))
    labels = cut_tree(parent, parent_sim, float(tau))
    job.write_clusters(labels, {**attrs, "tau": float(tau)}, chosen, health=findings)


def bundle_stage(job: StageJob) -> None:
    model = Model(knn=job.params["knn"], **job.params["settings"])
    model.checkpoint_v = io.load_torch(job.input("gcn_v")) if "gcn_v" in job.inputs else None
    model.checkpoint_e = io.load_torch(job.input("gcn_e")) if "gcn_e" in job.inputs else None
    s = model.params
    if "tau" in job.inputs:
        model.tau_ladder = io.read_json(job.input("tau"))["ladder"]
    model.tau_ = chosen_tau(s, job.inputs)[0] if s["tau"] == "auto" else float(s["tau"])
    model.fitted = True
    job.save_model(model)
    log.info("GCN-V/E model written to %s (τ %.2f)", job.out, model.tau_)


STAGES = (
    Stage("train_v", "gcn_v.pt", train_v_stage, "GCN-V on the train part; model and τ on "
          "held-out identities", threads="all", gpu=True, memory=(2000, 8), runtime=(30, 0.3)),
    Stage("confidence", "confidence.h5", confidence_stage, "each face's confidence and the "
          "lists to deduce on", threads="all", gpu=True, memory=(2000, 8), runtime=(10, 0.1)),
    Stage("tau", "tau.json", tau_stage, "τ auto on the held-out identities clustered as a "
          "part of their own, at every size", threads="all", gpu=True, memory=(2000, 8),
          runtime=(10, 0.1)),
    Stage("calibrate", "calibration.json", calibrate_stage, "density, τ auto: F at every τ",
          memory=(1000, 6), runtime=(10, 0.05)),
    Stage("train_e", "gcn_e.pt", train_e_stage, "GCN-E on the train part's confident "
          "vertices", threads="all", gpu=True, memory=(2000, 8), runtime=(30, 0.5)),
    Stage("deduce", "clusters.h5", deduce_stage, "tree deduction cut at τ (GCN-E's links "
          "with V+E)", threads="all", table=True, memory=(1000, 8), runtime=(10, 0.2),
          version=2),  # 2: τ auto hedged for up to two doublings (TAU_DOUBLINGS)
    Stage("bundle", "model", bundle_stage, "the trained models and τ as a model folder",
          memory=(1000, 0), runtime=(5, 0.0)),
)


def plan(ctx, s: dict) -> Outcome:
    problem = check(s)
    if problem:
        raise ConfigError(f"experiments.{ctx.experiment}: {problem}")
    folder = lambda path: str(Path(path).parent)  # noqa: E731
    model_v = None
    if s["confidence"] == "gcn_v":
        train_knn = ctx.knn("train")
        model_v = ctx.add("train_v", {"knn": train_knn, "features": ctx.features("train")},
                          {"gcn_v": s["gcn_v"], "target_norm": s["target_norm"],
                           "passes": s["passes"], "neighbours": s["neighbours"],
                           "knn": ctx.knn_params, "seed": s["seed"]},
                          under=folder(train_knn), label=f"gcn-v-{s['target_norm']}")

    def confidence(part: str, keep_hidden: bool) -> str:
        knn = ctx.knn(part)
        inputs = {"knn": knn, "features": ctx.features(part)}
        if model_v:
            inputs["model"] = model_v
        label = "density" if s["confidence"] == "density" else \
            f"gcn-v-p{s['passes']}" + (f"-{s['neighbours']}" if s["passes"] == 2 else "")
        return ctx.add("confidence", inputs,
                       {"confidence": s["confidence"], "passes": s["passes"],
                        "neighbours": s["neighbours"], "knn": ctx.knn_params,
                        "keep_hidden": keep_hidden}, under=folder(knn), label=label)

    test_knn = ctx.knn("test")
    test = confidence("test", s["edge"])
    inputs = {"confidence": test, "knn": test_knn, "features": ctx.features("test")}
    params = {"tau": s["tau"]}
    if s["tau"] == "auto":
        params["tau_tolerance"] = s["tau_tolerance"]
        if model_v:
            inputs["model"] = model_v
            if s["tau_on"] == "held_out_part":
                inputs["tau"] = ctx.add(
                    "tau", {"model": model_v, "features": ctx.features("train")},
                    {"settings": {k: s[k] for k in ("confidence", "passes", "neighbours",
                                                     "seed")}
                     | {"gcn_v": {"val_fraction": s["gcn_v"]["val_fraction"]}},
                     "knn": ctx.knn_params}, under=folder(model_v), label="tau")
        else:
            train = confidence("train", False)
            inputs["calibration"] = ctx.add("calibrate", {"confidence": train,
                                                          "features": ctx.features("train")},
                                            {}, under=folder(train), label="tau-auto")
    model_e = None
    if s["edge"]:
        model_e = ctx.add("train_e", {"confidence": confidence("train", True),
                                      "features": ctx.features("train")},
                          {"gcn_e": s["gcn_e"], "seed": s["seed"]}, under=folder(model_v),
                          label="gcn-e")
        inputs["model_e"] = model_e
        params["rho"] = s["rho"]
    label = (f"deduce-ve{format(s['rho'], 'g')}" if s["edge"] else "deduce-v") + \
        f"-{threshold_tag(s['tau'], s['tau_tolerance'])}"
    clusters = ctx.add("deduce", inputs, params, under=folder(test), label=label)
    bundle_inputs = {k: v for k, v in (("gcn_v", model_v), ("gcn_e", model_e),
                                       ("model", model_v), ("tau", inputs.get("tau")),
                                       ("calibration", inputs.get("calibration"))) if v}
    model = ctx.add_model("bundle", bundle_inputs, {"settings": s, "knn": ctx.knn_params}) \
        if needs_labels(s) else None
    return Outcome(clusters, {"confidence": s["confidence"], "passes": s["passes"],
                              "edge": s["edge"], "rho": s["rho"] if s["edge"] else None,
                              "tau": s["tau"]}, None, model)


def scan(inputs: dict, params: dict, labels) -> list[dict]:
    """F over τ of the final deduction (its parents fixed), from the deduce stage's inputs."""
    from .gcn_v import cut_tree

    names = ["confidence", "ids", "sims"] + (["hidden"] if "model_e" in inputs else [])
    lists = io.read_arrays(inputs["confidence"], names)
    checkpoint_e = io.load_torch(inputs["model_e"]) if "model_e" in inputs else None
    parent, parent_sim = parents(lists, checkpoint_e, params.get("rho", 0.0))
    return selection.score_thresholds(lambda t: cut_tree(parent, parent_sim, t), labels,
                                      TAU_GRID, "tau")


class Model(ClusterModel):
    """GCN-V (and GCN-E) as a model: ``fit`` trains on labeled faces and chooses τ,
    ``predict`` searches the kNN graph of new faces, predicts their confidences and
    deduces the trees.  With τ auto on the held-out part (``tau_on``), ``tau_ladder``
    keeps its curves and each ``predict`` chooses τ for its number of faces."""

    checkpoint_v: dict | None = None
    checkpoint_e: dict | None = None
    tau_: float | None = None        # τ used by the last prediction (or the fit's)
    tau_ladder: list | None = None   # τ curves of the held-out part at every size (auto)

    def __init__(self, knn: dict | None = None, **params):
        super().__init__(knn, **params)
        problem = check(self.params)
        if problem:
            raise ParamError(f"{self.method.name}: {problem}")

    def _lists(self, features, threads):
        from ...core.knn import knn_graph

        ids, sims, _ = knn_graph(features, threads=threads, **self.knn)
        return deduction_lists(features, ids, sims, self.params, self.knn, self.checkpoint_v,
                               threads)

    def _fit(self, features, labels):
        from ...core.knn import knn_graph

        s = self.params
        ids, sims, _ = knn_graph(features, **self.knn)
        if s["confidence"] == "gcn_v":
            self.checkpoint_v = fit_v(features, ids, sims, labels, s, self.knn)
        def train_lists() -> dict:  # the train part's own deduction lists, when needed
            return deduction_lists(features, ids, sims, s, self.knn, self.checkpoint_v)

        if s["edge"]:
            from . import gcn_e

            lists = train_lists()
            self.checkpoint_e, _ = gcn_e.train(lists["hidden"], lists["confidence"],
                                               lists["ids"], lists["sims"], labels,
                                               s["gcn_e"], seed=s["seed"])
        if s["tau"] != "auto":
            self.tau_ = float(s["tau"])
        elif self.checkpoint_v is not None and s["tau_on"] == "held_out_part":
            self.tau_ladder = tau_ladder(self.checkpoint_v, features, labels, s, self.knn)
            self.tau_ = choose_tau(self.tau_ladder, None, s["tau_tolerance"])[0]
        else:
            scores = (self.checkpoint_v or {}).get("validation", {}) or {}
            scores = scores.get("scores") or tau_scores(train_lists(), labels)
            self.tau_ = float(selection.plateau_top(scores, "tau", s["tau_tolerance"])["tau"])

    def _predict(self, features, threads):
        from .gcn_v import cut_tree

        torch_threads(threads)
        lists = self._lists(features, threads)
        if self.tau_ladder:
            self.tau_ = choose_tau(self.tau_ladder, features.shape[0],
                                   self.params["tau_tolerance"])[0]
        tau = self.tau_ if self.tau_ is not None else float(self.params["tau"])
        return cut_tree(*parents(lists, self.checkpoint_e, self.params["rho"]), tau)

    def _save_state(self, folder):
        for name, ckpt in (("gcn_v.pt", self.checkpoint_v), ("gcn_e.pt", self.checkpoint_e)):
            if ckpt is not None:
                io.save_torch(folder / name, ckpt)

    def _state_attrs(self):
        return {"tau": self.tau_, "tau_ladder": self.tau_ladder}

    @classmethod
    def _load_state(cls, model, folder, state):
        model.tau_ = state["tau"]
        model.tau_ladder = state.get("tau_ladder")
        for attr, name in (("checkpoint_v", "gcn_v.pt"), ("checkpoint_e", "gcn_e.pt")):
            if (Path(folder) / name).exists():
                setattr(model, attr, io.load_torch(Path(folder) / name))


METHOD = Method(
    name="gcn_ve",
    doc="GCN-V / GCN-E (CVPR 2020): vertex confidence, edge connectivity, tree deduction",
    params=PARAMS,
    stages=STAGES,
    plan=plan,
    model=Model,
    needs_labels=needs_labels,
    scan=scan,
    held_out_choice=selection.ladder_choice("tau", choose_tau),
)
