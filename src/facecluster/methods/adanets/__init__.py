"""Ada-NETS (ICLR 2022): structure space, adaptive neighbour discovery, GCN, linkage.

Stages, each a rule of the workflow and a function in ``stages.py``:

- ``structure``: the kNN candidates re-ranked by κ = (1−η)·Jaccard + η·cosine (Eq. 2,
  10-12, ``structure.py``);
- ``koff``: Q(j) curves and k_off labels on the labeled train part (Eq. 3-4, ``koff.py``);
- ``filter_train`` / ``filter_infer``: the adaptive filter and its k̂_off per vertex
  (§3.2.2, ``adaptive_filter.py``);
- ``graph``: the adaptive graph (Eq. 6-7) or a Table 9 builder, with SNR and Q
  (``graph.py``);
- ``gcn_train`` / ``embed``: the GCN (Eq. 8-9), the model chosen on held-out training
  identities (``gcn.py``);
- ``theta``: θ auto's curves on those held-out identities clustered as a part of their own,
  at every size of the ladder (``theta.py``);
- ``theta_pool``: the curves of ``theta_seeds`` models (seeds ``seed`` …, each its own
  filter, GCN and held-out identities) averaged before θ is chosen
  (``core.selection.pool_ladders``; the rule in ``theta.py``);
- ``link`` / ``graph_cut``: clusters from the embeddings (cosine > θ), or from the built
  graph without the GCN (Table 8, ``linkage.py``);
- ``knn_embedding``: the kNN graph of round one's embeddings, for a second round (Table 10);
- ``bundle``: the trained filter and GCN as a model folder for new faces (``model.py``).
"""

from __future__ import annotations

from pathlib import Path

from ...core import selection
from ...core.contract import Method, Outcome, Stage
from ...core.knn import knn_stage
from ...core.params import (Param, Params, auto_or, boolean, choice, integer, nullable,
                            number)
from ...core.planning import ConfigError, number_tag, threshold_tag
from . import stages
from .model import Model
from .settings import FILTER as FILTER_PARAMS
from .settings import GCN as GCN_PARAMS

_ROUND = Params(
    structure_space=Param(True, boolean(), "SS: re-rank the kNN candidates by κ (Eq. 2)"),
    eta=Param(0.3, number(0, 1), "η: κ = (1−η)·Jaccard + η·cosine (reference code: 0.3)"),
    graph=Param("adaptive", choice("adaptive", "knn", "threshold", "chain"),
                "graph builder: adaptive = AND (Eq. 6-7); knn, threshold, chain (Table 9)"),
    graph_k=Param(80, integer(1), "neighbours kept by the knn builder"),
    graph_threshold=Param(0.6, number(-1, 1), "cosine threshold of the threshold and chain "
                                              "builders"),
    beta=Param(0.5, number(exclusive_minimum=0), "β of the quality criterion Q (Eq. 3)"),
    filter=FILTER_PARAMS,
    train_graph=Param("predicted", choice("predicted", "true"),
                      "the GCN's training graph: from the filter's k̂_off | the true k_off"),
    gcn=GCN_PARAMS,
    clustering=Param("gcn", choice("gcn", "graph_cut"),
                     "gcn: embed and link | graph_cut: cut the built graph, no GCN (Table 8)"),
    theta=Param("auto", auto_or(number(-1, 1)),
                "θ: link pairs whose GCN embeddings have cosine > θ; auto: chosen on the "
                "held-out training identities (theta_on)"),
    theta_on=Param("held_out_part", choice("held_out_part", "training_graph"),
                   "auto: held_out_part = the held-out identities clustered as a part of "
                   "their own (own kNN, filter, graph, embedding), θ chosen for the test "
                   "part's size | training_graph = the GCN's validation curve, over "
                   "the held-out faces' subgraph (gcn.val_graph own) or the whole training "
                   "graph (a second round's θ auto always)"),
    theta_tolerance=Param(selection.TOLERANCE, number(0),
                          "auto: the largest θ whose held-out mean of F_P and F_B is within "
                          "this of the best (0: the best)"),
    theta_seeds=Param(3, integer(1),
                      "auto on the held-out part: the θ curves of this many trained models "
                      "are averaged before θ is chosen (seeds seed … seed + n − 1, each its "
                      "own filter, GCN and held-out identities: n validation folds); the "
                      "test part is clustered with seed's model (1: its curves alone)"),
    linkage_k=Param(80, integer(1), "neighbours per vertex the linkage links across"),
    linkage_neighbours=Param("candidates", choice("candidates", "embedding"),
                             "candidates: each vertex's kNN candidates, scored by embedding "
                             "cosine (linear in N) | embedding: a kNN search in the embedding "
                             "space, as the paper"),
    cut_threshold=Param(0.6, number(-1, 1), "graph_cut: edges with cosine below this are cut"),
    seed=Param(0, integer(), "seed of the filter's and the GCN's training"),
)

PARAMS = _ROUND.with_entries(
    second_round=Param(None, nullable(_ROUND.json_schema(partial=True)),
                       "Table 10: the whole method again on the GCN embeddings of both parts; "
                       "the keys given override round one's (e.g. {theta: 0.99})"),
)

STAGES = (
    Stage("structure", "structure.h5", stages.structure, "candidates re-ranked by κ (Eq. 2)",
          threads="all", memory=(1000, 8), runtime=(10, 0.05), cacheable=True),
    Stage("koff", "koff.h5", stages.koff, "Q(j) and k_off on the labeled train part (Eq. 3-4)",
          memory=(1000, 8), runtime=(10, 0.02)),
    Stage("filter_train", "filter.pt", stages.filter_train, "train the adaptive filter",
          threads="all", gpu=True, memory=(2000, 4), runtime=(30, 0.05)),
    Stage("filter_infer", "k_hat.h5", stages.filter_infer, "k̂_off of every vertex",
          threads="all", gpu=True, memory=(2000, 4), runtime=(10, 0.10)),
    Stage("graph", "graph.h5", stages.graph, "the adaptive graph (Eq. 6-7) or a Table 9 builder",
          memory=(1000, 8), runtime=(10, 0.02)),
    Stage("gcn_train", "gcn.pt", stages.gcn_train, "train the GCN; model and θ on held-out "
          "identities", threads="all", gpu=True, memory=(2000, 6), runtime=(30, 0.20)),
    Stage("theta", "theta.json", stages.theta, "θ auto on the held-out identities clustered "
          "as a part of their own, at every size", threads="all", gpu=True,
          memory=(2000, 3), runtime=(10, 0.10)),
    Stage("theta_pool", "theta.json", stages.theta_pool, "θ auto's curves of several "
          "models (theta_seeds) averaged size by size", memory=(500, 0), runtime=(2, 0.0)),
    Stage("embed", "embedding.zarr", stages.embed, "the GCN embedding of a graph",
          threads="all", gpu=True, memory=(2000, 6), runtime=(10, 0.05)),
    Stage("link", "clusters.h5", stages.link, "cosine > θ between embeddings, components",
          threads="all", table=True, memory=(1000, 6), runtime=(10, 0.05)),
    Stage("graph_cut", "clusters.h5", stages.graph_cut, "the built graph, low-cosine edges cut "
          "(Table 8)", table=True, memory=(1000, 6), runtime=(10, 0.02)),
    Stage("knn_embedding", "knn.h5", knn_stage, "the kNN graph of an embedding "
          "(second round)", threads="all", gpu=True, memory=(1000, 6), runtime=(10, 0.10)),
    Stage("bundle", "model", stages.bundle, "the trained filter and GCN as a model folder",
          memory=(1000, 0), runtime=(5, 0.0)),
)


def _merge(base: dict, over: dict) -> dict:
    """``base`` with ``over`` laid on it, sections merged key by key."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(base[key], value) if isinstance(value, dict) and \
            isinstance(base.get(key), dict) else value
    return out


# The settings the theta stage's inference and held-out split read (the trained filter and
# GCN come as its inputs).
THETA_CURVE_KEYS = ("structure_space", "eta", "graph", "graph_k", "graph_threshold",
                    "linkage_k", "linkage_neighbours", "seed")


def _folder(path: str) -> str:
    return str(Path(path).parent)


def plan(ctx, s: dict) -> Outcome:
    """Round one (and a second round when ``second_round`` is set)."""
    first = {part: (ctx.features(part), ctx.knn(part)) for part in ctx.parts}
    leaf, quality, summary, embeddings, model = _plan_round(
        ctx, first, s, with_model=True, embed_train=s["second_round"] is not None)
    if s["second_round"] is None:
        return Outcome(leaf, summary, quality, model)
    # Round two: the GCN embeddings of both parts are the features; a kNN graph over them
    # (with the same kNN settings) and the whole method again below it.
    second = {}
    for part, embedding in embeddings.items():
        knn = ctx.add("knn_embedding", {"features": embedding}, ctx.knn_params,
                      under=_folder(embedding), label=f"r2-knn-k{ctx.knn_params['k']}")
        second[part] = (embedding, knn)
    s2 = {**_merge(s, s["second_round"]), "second_round": None}
    leaf, quality, summary2, _, _ = _plan_round(ctx, second, s2, with_model=False,
                                                embed_train=False)
    return Outcome(leaf, {"round": 2, **summary2}, quality, model)


def _plan_round(ctx, sources: dict, s: dict, with_model: bool, embed_train: bool):
    """One round over ``sources`` (part -> (features, knn)); returns (leaf clusters, test
    graph, summary, part -> embedding, model folder or None)."""

    def feats(part):
        return sources[part][0]

    def cands(part):
        """The candidate lists: the structure space (SS) or the original kNN."""
        knn = sources[part][1]
        if not s["structure_space"]:
            return knn
        return ctx.add("structure", {"knn": knn}, {"eta": s["eta"]}, under=_folder(knn),
                       label=f"ss-{number_tag(s['eta'])}")

    beta = number_tag(s["beta"])
    adaptive = s["graph"] == "adaptive"
    train_cands = cands("train") if needs_labels(s) else None
    koff = None
    if adaptive or s["train_graph"] == "true":
        koff = ctx.add("koff", {"cands": train_cands, "features": feats("train")},
                       {"beta": s["beta"]}, under=_folder(train_cands), label=f"koff-b{beta}")

    def train_filter(seed):
        """The adaptive filter trained with ``seed`` (None without the adaptive graph)."""
        if not adaptive:
            return None
        return ctx.add("filter_train", {"cands": train_cands, "features": feats("train"),
                                        "koff": koff},
                       {"filter": s["filter"], "seed": seed, "beta": s["beta"]},
                       under=_folder(koff), label="filter")

    filter_model = train_filter(s["seed"])

    def graph(part, filter_model=filter_model):
        c = cands(part)
        if adaptive:
            k_hat = ctx.add("filter_infer", {"model": filter_model, "features": feats(part),
                                             "cands": c},
                            {"beta": s["beta"]}, under=_folder(c), label=f"and-b{beta}")
            return ctx.add("graph", {"cands": c, "features": feats(part), "k_hat": k_hat},
                           {"builder": "adaptive"}, under=_folder(k_hat), label="graph")
        key = "k" if s["graph"] == "knn" else "threshold"
        value = s["graph_k"] if key == "k" else s["graph_threshold"]
        return ctx.add("graph", {"cands": c, "features": feats(part)},
                       {"builder": s["graph"], key: value}, under=_folder(c),
                       label=f"graph-{s['graph']}-{number_tag(value)}")

    test_graph = graph("test")
    summary = {"ss": s["structure_space"], "graph": s["graph"], "beta": s["beta"]}
    if s["clustering"] == "graph_cut":
        leaf = ctx.add("graph_cut", {"graph": test_graph, "features": feats("test")},
                       {"threshold": s["cut_threshold"]}, under=_folder(test_graph),
                       label=f"cut-{number_tag(s['cut_threshold'])}")
        return leaf, test_graph, {**summary, "cut": s["cut_threshold"]}, {}, None

    if s["theta"] == "auto" and s["gcn"]["val_fraction"] == 0:
        raise ConfigError(f"experiments.{ctx.experiment}: theta 'auto' needs the GCN's "
                          f"validation, and gcn.val_fraction is 0")

    def train_gcn(seed, filter_model):
        """The GCN trained with ``seed`` on the train graph of ``filter_model``: ``(train
        graph, model)``.  The validation that chooses θ links as the test linkage will."""
        if s["train_graph"] == "true":
            train_graph = ctx.add("graph", {"cands": train_cands, "features": feats("train"),
                                            "k_hat": koff},
                                  {"builder": "adaptive"}, under=_folder(koff),
                                  label="graph-true")
        else:
            train_graph = graph("train", filter_model)
        return train_graph, ctx.add("gcn_train", {"graph": train_graph,
                                                  "features": feats("train"),
                                                  "cands": train_cands},
                                    {"gcn": s["gcn"], "seed": seed,
                                     "val_neighbours": s["linkage_neighbours"]},
                                    under=_folder(train_graph), label="gcn")

    def held_out_curves(seed, filter_model, gcn_model):
        """The theta stage: θ's curves on that model's held-out identities clustered alone."""
        theta_inputs = {"gcn": gcn_model, "features": feats("train")}
        if filter_model:
            theta_inputs["filter"] = filter_model
        # Only what the inference and the held-out split read: experiments that differ in
        # anything else (the tolerance, a fixed graph's β) share the curves.
        curve_settings = {k: s[k] for k in THETA_CURVE_KEYS}
        curve_settings["seed"] = seed
        curve_settings["gcn"] = {"val_fraction": s["gcn"]["val_fraction"]}
        return ctx.add("theta", theta_inputs, {"settings": curve_settings, "knn": ctx.knn_params},
                       under=_folder(gcn_model), label="theta")

    train_graph, gcn_model = train_gcn(s["seed"], filter_model)
    embeddings = {"test": ctx.add("embed", {"model": gcn_model, "graph": test_graph,
                                            "features": feats("test")},
                                  {}, under=_folder(test_graph), label="gcn")}
    if embed_train:
        embeddings["train"] = ctx.add("embed", {"model": gcn_model, "graph": train_graph,
                                                "features": feats("train")},
                                      {}, under=_folder(train_graph), label="gcn")
    # θ auto on the held-out part: round one only (a second round's inputs are round
    # one's embeddings, which no model folder reproduces).
    theta_curves = None
    if s["theta"] == "auto" and s["theta_on"] == "held_out_part" and with_model:
        theta_curves = held_out_curves(s["seed"], filter_model, gcn_model)
        if s["theta_seeds"] > 1:  # more models, each on its own held-out identities
            curves = {"theta": theta_curves}
            for i in range(1, s["theta_seeds"]):
                seed = s["seed"] + i
                other_filter = train_filter(seed)
                curves[f"theta.{i}"] = held_out_curves(seed, other_filter,
                                                       train_gcn(seed, other_filter)[1])
            theta_curves = ctx.add("theta_pool", curves, {}, under=_folder(theta_curves),
                                   label=f"pool-{s['theta_seeds']}")
    model = None
    if adaptive and with_model:
        bundle_inputs = {"filter": filter_model, "gcn": gcn_model}
        if theta_curves:
            bundle_inputs["theta"] = theta_curves
        model = ctx.add_model("bundle", bundle_inputs,
                              {"settings": {**s, "second_round": None}, "knn": ctx.knn_params})
    link_inputs = {"embedding": embeddings["test"], "features": feats("test")}
    link_params = {"theta": s["theta"], "k": s["linkage_k"],
                   "neighbours": s["linkage_neighbours"]}
    if s["theta"] == "auto":  # θ chosen on held-out identities (the GCN's validation in
        link_inputs["model"] = gcn_model  # its checkpoint, or the theta stage's curves)
        link_params["theta_tolerance"] = s["theta_tolerance"]
        if theta_curves:
            link_inputs["theta"] = theta_curves
    search = "k" if s["linkage_neighbours"] == "embedding" else "c"
    if search == "c":
        link_inputs["cands"] = cands("test")
    leaf = ctx.add("link", link_inputs, link_params, under=_folder(embeddings["test"]),
                   label=f"link-{search}{s['linkage_k']}-"
                         f"{threshold_tag(s['theta'], s['theta_tolerance'])}")
    return leaf, test_graph, {**summary, "theta": s["theta"]}, embeddings, model


def needs_labels(settings: dict) -> bool:
    """The adaptive filter and the GCN learn from labeled faces; a fixed graph cut without
    the GCN (Table 8 with a Table 9 builder) learns nothing."""
    return settings["graph"] == "adaptive" or settings["clustering"] == "gcn"


def scan(inputs: dict, params: dict, labels) -> list[dict]:
    """The linkage's F_P and F_B over θ on the test embedding (the graph cut's over its
    cosine threshold), from the final stage's inputs."""
    import numpy as np

    from ...core import io
    from ...core.selection import list_threshold_scores
    from .settings import THETA_GRID

    if "embedding" not in inputs:
        return []  # the graph cut: its threshold has no train-side choice to judge
    from ...core.knn import knn_graph
    from ...core.sparse import candidate_similarities

    emb = io.read_array(inputs["embedding"], "features")
    if "cands" in inputs:
        ids, sims = candidate_similarities(emb, io.read_array(inputs["cands"], "ids"),
                                           params["k"])
    else:  # the linkage searched the embedding space
        unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        ids, sims, _ = knn_graph(unit, k=min(params["k"], len(emb)))
    return list_threshold_scores(ids, sims, labels, THETA_GRID, strict=True, key="theta")


def _choose_theta(ladder: list[dict], n_faces: int, tolerance: float):
    """``theta.choose_theta`` at ``tolerance`` (the contract's ``held_out_choice``)."""
    from .theta import choose_theta

    return choose_theta(ladder, n_faces, {"theta_tolerance": tolerance})


METHOD = Method(
    name="adanets",
    doc="Ada-NETS (ICLR 2022): structure space, adaptive filter, GCN, linkage",
    params=PARAMS,
    stages=STAGES,
    plan=plan,
    model=Model,
    needs_labels=needs_labels,
    scan=scan,
    held_out_choice=selection.ladder_choice("theta", _choose_theta),
    figures=lambda lineage, out: _figures(lineage, out),
)


def _figures(lineage, out):
    from .figures import figures

    return figures(lineage, out)
