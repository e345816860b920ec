"""The Ada-NETS stages as functions of a ``StageJob``: named artifacts in, one artifact out.

Each reads its inputs, calls the module that computes it and writes its artifact; torch is
imported only by the stages that train or run a model.
"""

from __future__ import annotations

import numpy as np

from ...core import health, io, selection
from ...core.contract import StageJob
from ...core.device import torch_threads
from ...core.progress import log


def structure(job: StageJob) -> None:
    from .structure import structure_similarity

    knn = job.arrays("knn", ["ids", "sims"])
    eta = job.params["eta"]
    ids, kappa, cos = structure_similarity(knn["ids"], knn["sims"], eta=eta, threads=job.threads)
    io.write_arrays(job.out, {"ids": ids, "sims": cos, "kappa": kappa},
                    {"eta": eta, "k": int(ids.shape[1])})


def koff(job: StageJob) -> None:
    from .koff import k_off_labels, quality_curve

    ids = job.array("cands", "ids")
    labels = job.labels()
    if labels is None:
        raise ValueError(f"{job.input('features')}: k_off labels need ground-truth labels")
    beta = job.params["beta"]
    quality = quality_curve(ids, labels, beta=beta)
    k_off = k_off_labels(ids, labels, beta=beta)
    io.write_arrays(job.out, {"k_off": k_off, "quality": quality},
                    {"beta": beta, "k": int(ids.shape[1]), "mean_k_off": float(k_off.mean())})
    log.info("k_off labels: mean %.2f, median %d over %d vertices", k_off.mean(),
             int(np.median(k_off)), k_off.size)


def filter_train(job: StageJob) -> None:
    from . import adaptive_filter as af

    torch_threads(job.threads)
    p = job.params
    target = job.arrays("koff", ["k_off", "quality"])
    cands = job.arrays("cands", ["ids", "sims"])
    checkpoint, info = af.train_filter(job.features(), cands["ids"], target["k_off"],
                                       target["quality"], p["filter"], seed=p["seed"],
                                       device=p.get("device", "auto"), cand_sims=cands["sims"])
    af.save_checkpoint(job.out, checkpoint)
    log.info("adaptive filter trained: %s", {k: v for k, v in info.items() if k != "losses"})


def filter_infer(job: StageJob) -> None:
    from . import adaptive_filter as af
    from .koff import neighbour_quality

    torch_threads(job.threads)
    device = job.params.get("device", "auto")
    cands = job.arrays("cands", ["ids", "sims"])
    model = af.load_checkpoint(job.input("model"), device=device)
    k_hat = af.predict_k_off(model, job.features(), cands["ids"], cands["sims"], device=device)
    k_hat, findings = af.guard_k_hat(k_hat, cands["sims"], model.train_stats)
    attrs = {"k": int(model.k), "mean_k_hat": float(k_hat.mean()), "health": findings}
    labels = job.labels()
    if labels is not None:
        attrs.update(neighbour_quality(cands["ids"], labels, k_hat, beta=job.params["beta"]))
        log.info("graph quality Q_before %.4f, Q_after %.4f", attrs["q_before"], attrs["q_after"])
    io.write_arrays(job.out, {"k_off": k_hat}, attrs)


def graph(job: StageJob) -> None:
    from ...core.metrics import graph_quality
    from . import graph as g

    cands = job.arrays("cands", ["ids", "sims"])
    p = job.params
    attrs = {"builder": p["builder"]}
    k_hat = None
    if p["builder"] == "adaptive":
        k_hat = job.array("k_hat", "k_off")
        attrs.update({k: v for k, v in io.read_attrs(job.input("k_hat")).items()
                      if k in ("q_before", "q_after", "health")})
    adj = g.build(p["builder"], cands["ids"], cands["sims"], k_hat=k_hat, k=p.get("k"),
                  threshold=p.get("threshold"))
    attrs.update(graph_quality(adj, job.labels()))
    io.write_csr(job.out, adj, attrs)
    log.info("graph: %s", attrs)


def gcn_train(job: StageJob) -> None:
    from . import gcn

    torch_threads(job.threads)
    p = job.params
    labels = job.labels()
    if labels is None:
        raise ValueError(f"{job.input('features')}: GCN training needs labels")
    checkpoint, info = gcn.train_gcn(job.features(), io.read_csr(job.input("graph")), labels,
                                     p["gcn"], seed=p["seed"], device=p.get("device", "auto"),
                                     candidates=job.array("cands", "ids"),
                                     val_neighbours=p["val_neighbours"])
    gcn.save_checkpoint(job.out, checkpoint)
    log.info("GCN trained: loss %.4f -> %.4f in %d steps, %.1f s", info["loss_first"],
             info["loss_last"], info["steps"], info["seconds"])


def embed(job: StageJob) -> None:
    from . import gcn

    torch_threads(job.threads)
    device = job.params.get("device", "auto")
    model = gcn.load_checkpoint(job.input("model"), device=device)
    emb = gcn.embed(model, job.features(), io.read_csr(job.input("graph")), device=device)
    # Labels and ids travel with the embedding: a second round (Table 10) trains on it.
    arrays = {"features": emb}
    for name in ("labels", "ids"):
        if io.has_array(job.input("features"), name):
            arrays[name] = job.array("features", name)
    io.write_arrays(job.out, arrays, {})


def theta(job: StageJob) -> None:
    """θ curves of the held-out training identities clustered as a part of their own, at
    every size of the ladder (``theta.py``): ``theta.json``."""
    from .model import Model
    from .theta import theta_ladder

    torch_threads(job.threads)
    labels = job.labels()
    if labels is None:
        raise ValueError(f"{job.input('features')}: θ auto needs the train part's labels")
    model = Model.from_artifacts(job.params["settings"], job.params["knn"],
                                 job.inputs.get("filter"), job.input("gcn"))
    ladder = theta_ladder(model, job.features(), labels, threads=job.threads)
    io.write_json(job.out, {"ladder": ladder})
    selection.log_ladder(ladder, "theta", "θ")


def theta_pool(job: StageJob) -> None:
    """θ auto's curves of several models (``theta_seeds``; the ``theta`` stage's, inputs
    ``theta``, ``theta.1``, …), averaged size by size (``core.selection.pool_ladders``):
    ``theta.json`` as the theta stage writes it, with ``models``, how many were pooled."""
    keys = sorted((k for k in job.inputs if k == "theta" or k.startswith("theta.")),
                  key=lambda k: int(k.partition(".")[2] or 0))
    ladders = [io.read_json(job.input(k))["ladder"] for k in keys]
    for key, ladder in zip(keys, ladders):
        log.info("%s: %s", job.input(key), ", ".join(
            f"{r['n_faces']} faces best θ {selection.best_entry(r['scores'])['theta']:.2f}"
            for r in ladder))
    pooled = selection.pool_ladders(ladders)
    io.write_json(job.out, {"ladder": pooled, "models": len(ladders)})
    log.info("θ's curves of %d models averaged:", len(ladders))
    selection.log_ladder(pooled, "theta", "θ")


def link(job: StageJob) -> None:
    from .linkage import link as link_embeddings

    p = job.params
    theta, chosen, findings, entry = p["theta"], {}, [], None
    emb = job.array("embedding", "features")
    if theta == "auto":
        from .gcn import checkpoint_validation, validation_health, validation_theta
        from .settings import THETA_GRID

        validation = checkpoint_validation(job.input("model"))
        if "theta" in job.inputs:  # the held-out identities clustered alone (theta.py)
            from .theta import choose_theta

            curves = io.read_json(job.input("theta"))
            theta, entry, curve, where = choose_theta(curves["ladder"], emb.shape[0], p)
            if curves.get("models", 1) > 1:
                where += f", the mean of {curves['models']} models' curves (theta_seeds)"
            log.info("θ = %.2f for %d faces: the largest within %.3f of the best score of %s",
                     theta, emb.shape[0], p["theta_tolerance"], where)
        else:  # the GCN's validation curve (gcn.val_graph: their subgraph or the whole)
            tolerance = float(p["theta_tolerance"])
            theta = validation_theta(validation, tolerance, job.input("model"))
            log.info("θ = %.2f: the largest within %.3f of the best held-out score of the "
                     "GCN's validation on training identities", theta, tolerance)
            curve, where = validation.get("scores"), "held-out training identities"
            entry = next((s for s in curve or [] if s["theta"] == theta), None)
        chosen["theta"] = theta
        findings = validation_health(validation) + health.at_grid_edge(
            "θ", theta, THETA_GRID.tolist(), curve, entry)
    cands = job.array("cands", "ids") if p["neighbours"] == "candidates" else None
    labels, meta = link_embeddings(emb, theta, p["k"], p["neighbours"], cands,
                                   threads=job.threads)
    if chosen and entry:
        meta["train_score"] = selection.train_score(entry, where)
        meta["train_curve"] = curve
    meta["knob"] = "theta"
    job.write_clusters(labels, meta, chosen, health=findings)


def graph_cut(job: StageJob) -> None:
    from .linkage import graph_cut as cut

    labels = cut(io.read_csr(job.input("graph")), job.features(), job.params["threshold"])
    job.write_clusters(labels, {"threshold": job.params["threshold"]})


def bundle(job: StageJob) -> None:
    from .model import Model

    model = Model.from_artifacts(job.params["settings"], job.params["knn"],
                                 job.input("filter"), job.input("gcn"),
                                 job.inputs.get("theta"))
    job.save_model(model)
    log.info("Ada-NETS model written to %s (θ %.2f)", job.out, model.theta_)
