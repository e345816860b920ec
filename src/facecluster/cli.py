"""The command line: one subcommand per stage, each reading and writing artifacts.

The Snakemake rules call these; a user without Snakemake can too.  Each
subcommand logs to ``--log`` (the rule's log file) and to stderr, and writes its
outputs atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import io
from .progress import log, setup_logging


def _set_threads(threads: int) -> None:
    """Pin BLAS/OpenMP/torch thread pools to the rule's thread count."""
    threads = max(1, int(threads))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass


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
        features, labels = synthetic.generate(params, seed=gen.get("seed", 0))[part]
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
        raise ValueError(f"dataset part 'train' has no labels: supervised training needs them")
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


# ---------------------------------------------------------------- baseline
def _write_clusters(path: str, table: str | None, labels: np.ndarray, features_path: str,
                    attrs: dict) -> None:
    from .metrics import cluster_stats

    stats = cluster_stats(labels)
    io.write_arrays(path, {"labels": labels.astype(np.int32)}, {**attrs, **stats})
    if table:
        ids = io.read_array(features_path, "ids") if io.has_array(features_path, "ids") else None
        with io.atomic_path(table) as tmp:
            with open(tmp, "w") as f:
                f.write("index\tid\tcluster\n" if ids is not None else "index\tcluster\n")
                for i, c in enumerate(labels):
                    f.write(f"{i}\t{ids[i]}\t{c}\n" if ids is not None else f"{i}\t{c}\n")
    log.info("%d clusters (%d singletons) over %d items", stats["n_clusters"],
             stats["n_singletons"], stats["n_items"])


def cmd_threshold(args) -> None:
    from .baseline import knn_threshold_clusters

    graph = io.read_arrays(args.knn, ["ids", "sims"])
    labels = knn_threshold_clusters(graph["ids"], graph["sims"], args.threshold)
    _write_clusters(args.out, args.table, labels, args.features,
                    {"method": "knn_threshold", "threshold": args.threshold})


# ---------------------------------------------------------------- metrics
def cmd_metrics(args) -> None:
    from .metrics import cluster_stats, evaluate

    pred = io.read_array(args.clusters, "labels")
    if io.has_array(args.features, "labels"):
        truth = io.read_array(args.features, "labels")
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

    sp = add("threshold", cmd_threshold, "baseline: thresholded kNN graph, connected components")
    sp.add_argument("--knn", required=True)
    sp.add_argument("--features", required=True, help="features artifact (for item ids)")
    sp.add_argument("--threshold", type=float, required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--table", help="also write the clusters as a TSV table")

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
    args = _parser().parse_args(argv)
    setup_logging(args.log)
    _set_threads(args.threads)
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
