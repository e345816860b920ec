"""The command line: one subcommand per stage, each reading and writing artifacts.

The Snakemake rules call these; a user without Snakemake can too.  Each
subcommand logs to ``--log`` (the rule's log file) and to stderr, and writes its
outputs atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from . import io
from .progress import log, setup_logging


# ---------------------------------------------------------------- ingest
def cmd_ingest(args) -> None:
    from . import ingest

    dataset = json.loads(args.dataset)
    part = args.part
    if "generator" in dataset:
        from . import synthetic

        gen = dataset["generator"]
        params = synthetic.generator_params(gen.get("preset", "small"), dim=gen.get("dim", 256),
                                            **(gen.get("overrides") or {}))
        log.info("generating synthetic %s split (preset %s, seed %d, dim %d)", part,
                 gen.get("preset"), gen.get("seed", 0), params["dim"])
        features, labels = synthetic.generate(params, seed=gen.get("seed", 0), splits=(part,))[part]
        ids = None
        manifest = {"source": "synthetic", "generator": {**gen, "params": params},
                    "normalise": "l2", "checksum": None}
    else:
        spec = dict(dataset.get("train") if part == "train" and dataset.get("train")
                    else dataset["input"])
        spec["normalise"] = dataset.get("normalise", "l2")
        features, labels, ids, info = ingest.load(spec)
        split = dataset.get("split")
        if split and not (part == "train" and dataset.get("train")):
            if labels is None:
                raise ingest.IngestError(f"{spec['path']}: `split` needs labels, and the input has none")
            train_idx, test_idx = ingest.split_by_identity(labels, split["train_fraction"],
                                                           split.get("seed", 0))
            keep = train_idx if part == "train" else test_idx
            features, labels = features[keep], labels[keep]
            ids = ids[keep] if ids is not None else None
            info = {**info, "split": {**split, "part": part}}
            log.info("split by identity: kept %d %s items", keep.size, part)
        manifest = {**info, "source": spec["path"]}
    if part == "train" and labels is None:
        raise ValueError("dataset part 'train' has no labels: supervised training needs them")
    subsample = dataset.get("train_subsample")
    if part == "train" and subsample:
        n_before, c_before = features.shape[0], np.unique(labels).size
        keep = ingest.subsample_identities(labels, subsample["max_items"], subsample.get("seed", 0))
        features, labels = features[keep], labels[keep]
        ids = ids[keep] if ids is not None else None
        manifest["train_subsample"] = {**subsample, "n_before": int(n_before),
                                       "identities_before": int(c_before)}
        log.info("train subsample: kept %d of %d items (%d of %d identities)", keep.size,
                 n_before, np.unique(labels).size, c_before)
    manifest.update(n=int(features.shape[0]), dim=int(features.shape[1]), part=part,
                    has_labels=labels is not None, has_ids=ids is not None,
                    n_classes=int(np.unique(labels).size) if labels is not None else None)
    ingest.write_features(args.out, features, labels, ids, manifest)
    ingest.write_manifest(args.manifest, manifest)
    log.info("wrote %d×%d features to %s", features.shape[0], features.shape[1], args.out)


# ---------------------------------------------------------------- kNN
def cmd_knn(args) -> None:
    from . import knn

    params = json.loads(args.params)
    features = io.read_array(args.features, "features")
    log.info("kNN over %d×%d features, params %s", *features.shape, params)
    ids, sims, meta = knn.knn_graph(features, threads=args.threads, **params)
    io.write_arrays(args.out, {"ids": ids, "sims": sims}, {**meta, "params": params})


def cmd_knn_index(args) -> None:
    """Sharded kNN, step 1: build the index once and save it (a folder: index + metadata)."""
    from . import knn

    params = json.loads(args.params)
    features = io.read_array(args.features, "features")
    idx, meta = knn.prepare_index(features, threads=args.threads, **params)
    with io.atomic_path(args.out) as tmp:
        tmp.mkdir()
        knn.write_index(tmp / "index.faiss", idx)
        io.write_json(tmp / "meta.json", meta)
    log.info("%s index over %d items saved for %d shards", meta["index"], meta["n"],
             params.get("shards", 1))


def cmd_knn_shard(args) -> None:
    """Sharded kNN, step 2: one slice of the queries against the saved index."""
    from pathlib import Path

    from . import knn

    params = json.loads(args.params)
    meta = io.read_json(Path(args.index) / "meta.json")
    features = io.read_array(args.features, "features")
    if not 0 <= args.shard < args.of:
        raise ValueError(f"shard {args.shard} of {args.of} does not exist")
    start, stop = knn.shard_bounds(features.shape[0], args.of)[args.shard]
    idx, where = knn.to_device(knn.read_index(Path(args.index) / "index.faiss", args.threads),
                               meta["index"], params.get("device", "auto"), args.threads)
    t0 = time.perf_counter()
    ids, sims = knn.search_rows(idx, features, start, stop, meta["k"], params.get("block_size", 4096))
    io.write_arrays(args.out, {"ids": ids, "sims": sims},
                    {**meta, "device": where, "rows": [start, stop],
                     "search_seconds": round(time.perf_counter() - t0, 3)})


def cmd_knn_gather(args) -> None:
    """Sharded kNN, step 3: the slices, in order, as the one kNN artifact."""
    from . import knn

    params = json.loads(args.params)
    features = io.read_array(args.features, "features")
    parts = [(io.read_attrs(path), path) for path in args.shard]
    parts.sort(key=lambda part: part[0]["rows"][0])
    expected = 0
    for attrs, path in parts:
        if attrs["rows"][0] != expected:
            raise ValueError(f"{path}: shard starts at row {attrs['rows'][0]}, expected {expected}")
        expected = attrs["rows"][1]
    if expected != features.shape[0]:
        raise ValueError(f"the shards cover {expected} of {features.shape[0]} rows")
    arrays = [io.read_arrays(path, ["ids", "sims"]) for _, path in parts]
    ids = np.concatenate([a["ids"] for a in arrays])
    sims = np.concatenate([a["sims"] for a in arrays])
    first = parts[0][0]
    meta = {key: first[key] for key in first if key not in ("rows", "search_seconds")}
    meta["search_seconds"] = round(sum(attrs["search_seconds"] for attrs, _ in parts), 3)
    meta["shards"] = len(parts)
    meta.update(knn.measure_recall(features, ids, meta["index"], meta["k"],
                                   params.get("recall_sample", 1000), params.get("seed", 0),
                                   params.get("block_size", 4096), args.threads, meta["device"]))
    io.write_arrays(args.out, {"ids": ids, "sims": sims}, {**meta, "params": params})


# ---------------------------------------------------------------- baseline
def _write_table(path: str, labels: np.ndarray, ids: np.ndarray | None) -> None:
    """The plain cluster table: item index, item id (when the input had ids), cluster id."""
    with io.atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("index\tid\tcluster\n" if ids is not None else "index\tcluster\n")
            for i, c in enumerate(labels):
                f.write(f"{i}\t{ids[i]}\t{c}\n" if ids is not None else f"{i}\t{c}\n")


def _write_clusters(path: str, table: str | None, labels: np.ndarray, features_path: str,
                    attrs: dict) -> None:
    from .metrics import cluster_stats

    stats = cluster_stats(labels)
    io.write_arrays(path, {"labels": labels.astype(np.int32)}, {**attrs, **stats})
    if table:
        ids = io.read_array(features_path, "ids") if io.has_array(features_path, "ids") else None
        _write_table(table, labels, ids)
    log.info("%d clusters (%d singletons) over %d items", stats["n_clusters"],
             stats["n_singletons"], stats["n_items"])


def cmd_threshold(args) -> None:
    from .baseline import best_threshold, knn_threshold_clusters

    if args.threshold == "auto":
        if not args.calibration:
            raise ValueError("--threshold auto needs --calibration (from threshold-calibrate)")
        calibration = io.read_json(args.calibration)
        threshold = float(best_threshold(calibration["scores"], args.tolerance)["threshold"])
        log.info("τ = %.2f: the largest within %.3f of the best F on the training split (%s)",
                 threshold, args.tolerance, args.calibration)
    else:
        threshold = float(args.threshold)
    graph = io.read_arrays(args.knn, ["ids", "sims"])
    labels = knn_threshold_clusters(graph["ids"], graph["sims"], threshold)
    _write_clusters(args.out, args.table, labels, args.features,
                    {"method": "knn_threshold", "threshold": threshold})


def cmd_threshold_calibrate(args) -> None:
    from .baseline import best_threshold, threshold_scores

    labels = _labels_of(args.features)
    if labels is None:
        raise ValueError(f"{args.features}: calibrating τ needs labels")
    graph = io.read_arrays(args.knn, ["ids", "sims"])
    scores = threshold_scores(graph["ids"], graph["sims"], labels)
    best = best_threshold(scores)
    io.write_json(args.out, {**best, "knn": args.knn, "scores": scores})
    log.info("calibrated τ = %.2f on %d labeled items: F_P %.4f, F_B %.4f", best["threshold"],
             labels.size, best["f_pairwise"], best["f_bcubed"])


# ---------------------------------------------------------------- Ada-NETS
def _labels_of(features_path: str) -> np.ndarray | None:
    return io.read_array(features_path, "labels") if io.has_array(features_path, "labels") else None


def _torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(threads)))


def cmd_structure(args) -> None:
    from .structure import structure_similarity

    p = json.loads(args.params)
    knn = io.read_arrays(args.inputs["knn"], ["ids", "sims"])
    ids, kappa, cos = structure_similarity(knn["ids"], knn["sims"], eta=p["eta"],
                                           threads=args.threads)
    io.write_arrays(args.out, {"ids": ids, "sims": cos, "kappa": kappa},
                    {"eta": p["eta"], "k": int(ids.shape[1]), "knn": args.inputs["knn"]})


def cmd_koff(args) -> None:
    from .koff import k_off_labels, quality_curve

    p = json.loads(args.params)
    ids = io.read_array(args.inputs["cands"], "ids")
    labels = _labels_of(args.inputs["features"])
    if labels is None:
        raise ValueError(f"{args.inputs['features']}: k_off labels need ground-truth labels")
    quality = quality_curve(ids, labels, beta=p["beta"])
    k_off = k_off_labels(ids, labels, beta=p["beta"])
    io.write_arrays(args.out, {"k_off": k_off, "quality": quality},
                    {"beta": p["beta"], "k": int(ids.shape[1]), "mean_k_off": float(k_off.mean())})
    log.info("k_off labels: mean %.2f, median %d over %d vertices", k_off.mean(),
             int(np.median(k_off)), k_off.size)


def cmd_filter_train(args) -> None:
    from . import adaptive_filter as af

    _torch_threads(args.threads)
    p = json.loads(args.params)
    features = io.read_array(args.inputs["features"], "features")
    ids = io.read_array(args.inputs["cands"], "ids")
    target = io.read_arrays(args.inputs["koff"], ["k_off", "quality"])
    cfg = {k: v for k, v in p["filter"].items() if k != "seed"}
    checkpoint, info = af.train_filter(features, ids, target["k_off"], target["quality"], cfg,
                                       seed=p["seed"], device=p.get("device", "auto"))
    checkpoint["config_used"] = {"beta": p["beta"], "seed": p["seed"]}
    af.save_checkpoint(args.out, checkpoint)
    log.info("adaptive filter trained: %s", {k: v for k, v in info.items() if k != "losses"})


def cmd_filter_infer(args) -> None:
    from . import adaptive_filter as af
    from .koff import neighbour_quality

    _torch_threads(args.threads)
    p = json.loads(args.params)
    features = io.read_array(args.inputs["features"], "features")
    cands = io.read_arrays(args.inputs["cands"], ["ids", "sims"])
    ids = cands["ids"]
    model = af.load_checkpoint(args.inputs["model"], device=p.get("device", "auto"))
    k_hat = af.predict_k_off(model, features, ids, cands["sims"], device=p.get("device", "auto"))
    attrs = {"k": int(model.k), "mean_k_hat": float(k_hat.mean()), "model": args.inputs["model"]}
    labels = _labels_of(args.inputs["features"])
    if labels is not None:
        attrs.update(neighbour_quality(ids, labels, k_hat, beta=p["beta"]))
        log.info("graph quality Q_before %.4f, Q_after %.4f", attrs["q_before"], attrs["q_after"])
    io.write_arrays(args.out, {"k_off": k_hat}, attrs)


def cmd_graph(args) -> None:
    from . import graph as g

    p = json.loads(args.params)
    cands = io.read_arrays(args.inputs["cands"], ["ids", "sims"])
    builder = p["builder"]
    attrs = {"builder": builder}
    if builder == "adaptive":
        adj = g.adaptive_graph(cands["ids"], io.read_array(args.inputs["k_hat"], "k_off"))
        attrs.update({k: v for k, v in io.read_attrs(args.inputs["k_hat"]).items()
                      if k in ("q_before", "q_after")})
    elif builder == "knn":
        adj = g.knn_graph_adjacency(cands["ids"], p["k"])
    elif builder == "threshold":
        adj = g.threshold_graph(cands["ids"], cands["sims"], p["threshold"])
    elif builder == "chain":
        adj = g.chain_graph(cands["ids"], cands["sims"], p["threshold"])
    else:
        raise ValueError(f"unknown graph builder {builder!r}; expected one of {g.BUILDERS}")
    attrs.update(g.graph_quality(adj, _labels_of(args.inputs["features"])))
    io.write_arrays(args.out, g.to_arrays(adj), attrs)
    log.info("graph: %s", attrs)


def cmd_gcn_train(args) -> None:
    from . import gcn
    from .graph import from_arrays

    _torch_threads(args.threads)
    p = json.loads(args.params)
    features = io.read_array(args.inputs["features"], "features")
    labels = _labels_of(args.inputs["features"])
    if labels is None:
        raise ValueError(f"{args.inputs['features']}: GCN training needs labels")
    adj = from_arrays(io.read_arrays(args.inputs["graph"]))
    candidates = io.read_array(args.inputs["cands"], "ids") if "cands" in args.inputs else None
    checkpoint, info = gcn.train_gcn(features, adj, labels, p["gcn"], seed=p["seed"],
                                     device=p.get("device", "auto"), candidates=candidates)
    gcn.save_checkpoint(args.out, checkpoint)
    log.info("GCN trained: loss %.4f -> %.4f in %d steps, %.1f s", info["loss_first"],
             info["loss_last"], info["steps"], info["seconds"])


def cmd_embed(args) -> None:
    from . import gcn
    from .graph import from_arrays

    _torch_threads(args.threads)
    p = json.loads(args.params)
    features = io.read_array(args.inputs["features"], "features")
    adj = from_arrays(io.read_arrays(args.inputs["graph"]))
    model = gcn.load_checkpoint(args.inputs["model"], device=p.get("device", "auto"))
    emb = gcn.embed(model, features, adj, device=p.get("device", "auto"))
    # Labels and ids travel with the embedding: a second round (Table 10) trains on it.
    arrays = {"features": emb}
    for name in ("labels", "ids"):
        if io.has_array(args.inputs["features"], name):
            arrays[name] = io.read_array(args.inputs["features"], name)
    io.write_arrays(args.out, arrays, {"model": args.inputs["model"], "graph": args.inputs["graph"]})


def cmd_link(args) -> None:
    from .linkage import link

    p = json.loads(args.params)
    theta = p["theta"]
    if theta == "auto":
        from .gcn import checkpoint_theta

        tolerance = float(p.get("theta_tolerance", 0.0))
        theta = checkpoint_theta(args.inputs["model"], tolerance)
        log.info("θ = %.2f: the largest within %.3f of the best held-out score of the GCN's "
                 "validation on training identities", theta, tolerance)
    emb = io.read_array(args.inputs["embedding"], "features")
    neighbours = p.get("neighbours", "embedding")
    cands = io.read_array(args.inputs["cands"], "ids") if neighbours == "candidates" else None
    labels, meta = link(emb, theta, p["k"], neighbours, cands, threads=args.threads)
    _write_clusters(args.out, args.table, labels, args.inputs["features"],
                    {"method": "adanets", **meta})


def cmd_graph_cut(args) -> None:
    from .graph import from_arrays
    from .linkage import graph_cut

    p = json.loads(args.params)
    features = io.read_array(args.inputs["features"], "features")
    adj = from_arrays(io.read_arrays(args.inputs["graph"]))
    labels = graph_cut(adj, features, p["threshold"])
    _write_clusters(args.out, args.table, labels, args.inputs["features"],
                    {"method": "graph_cut", "threshold": p["threshold"]})


def cmd_bundle_export(args) -> None:
    from .bundle import export_bundle
    from .gcn import checkpoint_theta

    settings = json.loads(args.params)
    tolerance = float(settings.pop("theta_tolerance", 0.0))
    if settings["theta"] == "auto":  # the bundle records the θ its GCN's validation chose
        settings["theta"] = checkpoint_theta(args.inputs["gcn"], tolerance)
    export_bundle(args.out, args.inputs["filter"], args.inputs["gcn"], settings)
    log.info("model bundle written to %s", args.out)


def cmd_cluster(args) -> None:
    """Unlabeled faces in, a cluster table out, with a trained bundle."""
    from . import ingest
    from .bundle import cluster

    spec = {"path": args.features, "features_key": args.features_key, "ids_key": args.ids_key,
            "dim": args.dim, "normalise": args.normalise}
    features, _, ids, _ = ingest.load(spec)
    labels, info = cluster(features, args.bundle, threads=args.threads)
    _write_table(args.out, labels, ids)
    log.info("wrote %d cluster labels to %s (%s)", labels.size, args.out, info["graph"])


# ---------------------------------------------------------------- metrics
def cmd_metrics(args) -> None:
    from .metrics import cluster_stats, evaluate

    pred = io.read_array(args.clusters, "labels")
    truth = _labels_of(args.features)
    if truth is not None:
        scores = evaluate(truth, pred)
    else:
        log.info("no ground-truth labels: cluster statistics only")
        scores = cluster_stats(pred)
    scores["clusters"] = args.clusters
    io.write_json(args.out, scores)
    log.info("metrics: %s", {k: v for k, v in scores.items() if k != "clusters"})


# ---------------------------------------------------------------- summary
def cmd_summary(args) -> None:
    from .summary import summary_rows, write_summary

    entries = json.loads(args.entries)
    rows = summary_rows(entries)
    text = write_summary(rows, args.tsv, args.md)
    print(text)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facecluster", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, func, help_):
        sp = sub.add_parser(name, help=help_)
        sp.set_defaults(func=func)
        sp.add_argument("--log", help="log file (appended)")
        sp.add_argument("--threads", type=int, default=1)
        return sp

    sp = add("ingest", cmd_ingest, "read or generate one dataset part into a features artifact")
    sp.add_argument("--dataset", required=True, help="the dataset's config entry, as JSON")
    sp.add_argument("--part", choices=["train", "test"], required=True)
    sp.add_argument("--out", required=True, help="features artifact (.zarr)")
    sp.add_argument("--manifest", required=True, help="manifest (.json)")

    sp = add("knn", cmd_knn, "the kNN graph of a features artifact")
    sp.add_argument("--features", required=True)
    sp.add_argument("--params", required=True, help="kNN parameters as JSON")
    sp.add_argument("--out", required=True)

    sp = add("knn-index", cmd_knn_index, "sharded kNN: build and save the index the shards search")
    sp.add_argument("--features", required=True)
    sp.add_argument("--params", required=True, help="kNN parameters as JSON")
    sp.add_argument("--out", required=True, help="index folder")

    sp = add("knn-shard", cmd_knn_shard, "sharded kNN: search one slice of the queries")
    sp.add_argument("--features", required=True)
    sp.add_argument("--index", required=True, help="index folder (knn-index)")
    sp.add_argument("--shard", type=int, required=True, help="which slice, from 0")
    sp.add_argument("--of", type=int, required=True, help="how many slices")
    sp.add_argument("--params", default="{}", help="kNN parameters as JSON")
    sp.add_argument("--out", required=True)

    sp = add("knn-gather", cmd_knn_gather, "sharded kNN: the slices as one kNN artifact")
    sp.add_argument("--features", required=True)
    sp.add_argument("--shard", action="append", required=True, help="a shard artifact (repeat)")
    sp.add_argument("--params", required=True, help="kNN parameters as JSON")
    sp.add_argument("--out", required=True)

    sp = add("threshold", cmd_threshold, "baseline: thresholded kNN graph, connected components")
    sp.add_argument("--knn", required=True)
    sp.add_argument("--features", required=True, help="features artifact (for item ids)")
    sp.add_argument("--threshold", required=True, help="τ, or 'auto' with --calibration")
    sp.add_argument("--calibration", help="the calibration JSON that gives τ for 'auto'")
    sp.add_argument("--tolerance", type=float, default=0.0,
                    help="'auto': the largest τ whose mean of F_P and F_B on the calibration "
                         "split is within this of the best (default 0: the best τ)")
    sp.add_argument("--out", required=True)
    sp.add_argument("--table", help="also write the clusters as a TSV table")

    sp = add("threshold-calibrate", cmd_threshold_calibrate,
             "baseline: the τ with the best F_P + F_B on a labeled (training) split")
    sp.add_argument("--knn", required=True)
    sp.add_argument("--features", required=True, help="features artifact with labels")
    sp.add_argument("--out", required=True, help="calibration (.json)")

    def add_stage(name, func, help_, table=False):
        sp = add(name, func, help_)
        sp.add_argument("--in", dest="inputs", action="append", default=[], metavar="NAME=PATH",
                        help="a named input artifact (repeatable)")
        sp.add_argument("--params", default="{}", help="the stage's parameters as JSON")
        sp.add_argument("--out", required=True)
        if table:
            sp.add_argument("--table", help="also write the clusters as a TSV table")
        return sp

    add_stage("structure", cmd_structure, "Ada-NETS structure space: candidates re-ranked by κ")
    add_stage("koff", cmd_koff, "Ada-NETS k_off labels on labeled data (Eq. 3-4)")
    add_stage("filter-train", cmd_filter_train, "train the Ada-NETS adaptive filter")
    add_stage("filter-infer", cmd_filter_infer, "k̂_off for every vertex with a trained filter")
    add_stage("graph", cmd_graph, "build a graph: adaptive (Eq. 6-7), knn, threshold or chain")
    add_stage("gcn-train", cmd_gcn_train, "train the Ada-NETS GCN on a labeled graph")
    add_stage("embed", cmd_embed, "embed a graph with a trained GCN")
    add_stage("link", cmd_link, "clusters from embeddings: cosine > θ, connected components", True)
    add_stage("graph-cut", cmd_graph_cut, "clusters from a built graph with low-cosine edges cut", True)

    add_stage("bundle-export", cmd_bundle_export, "write a trained filter + GCN as a model bundle")

    sp = add("cluster", cmd_cluster, "cluster new, unlabeled faces with a trained model bundle")
    sp.add_argument("--features", required=True, help="features file (.npy .npz .bin .h5 .zarr)")
    sp.add_argument("--bundle", required=True, help="a model bundle folder")
    sp.add_argument("--out", required=True, help="the cluster table (.tsv) to write")
    sp.add_argument("--features-key", default="X", help="array name inside npz/HDF5/Zarr")
    sp.add_argument("--ids-key", default=None, help="item names inside npz/HDF5/Zarr")
    sp.add_argument("--dim", type=int, default=None, help="feature dimension (required for .bin)")
    sp.add_argument("--normalise", default="l2", choices=["l2", "center_l2", "none"])

    sp = add("metrics", cmd_metrics, "score clusters against the features' labels")
    sp.add_argument("--clusters", required=True)
    sp.add_argument("--features", required=True)
    sp.add_argument("--out", required=True)

    sp = add("summary", cmd_summary, "one table across every experiment")
    sp.add_argument("--entries", required=True, help="JSON list of {dataset, experiment, method, params, metrics}")
    sp.add_argument("--tsv", required=True)
    sp.add_argument("--md", required=True)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if hasattr(args, "inputs") and isinstance(args.inputs, list):
        pairs = [item.split("=", 1) for item in args.inputs]
        bad = [item for item, pair in zip(args.inputs, pairs) if len(pair) != 2]
        if bad:
            parser.error(f"--in takes NAME=PATH, got {bad}")
        args.inputs = dict(pairs)
    # Thread pools are pinned by the rule (OMP_NUM_THREADS and friends, set before
    # numpy loads); faiss and torch take ``--threads`` in the stages that use them.
    setup_logging(args.log)
    start = time.perf_counter()
    log.info("facecluster %s: %s", args.command, " ".join(sys.argv[1:] if argv is None else argv))
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as err:
        log.error("%s", err)
        return 2
    log.info("done in %.1f s", time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
