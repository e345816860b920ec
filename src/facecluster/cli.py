"""The command line: the core's stages, any method's stage, and clustering without Snakemake.

- ``ingest``, ``knn`` (and ``knn-index``/``knn-shard``/``knn-gather`` for a sharded
  search), ``metrics``, ``summary``: the core stages the workflow runs;
- ``stage METHOD STAGE --in NAME=PATH ... --params JSON --out PATH``: one stage of any
  method, as its rule runs it;
- ``photos detect|embed|faces|people``: the photo stages (``core.photos``) as their rules
  run them;
- ``cluster``: faces in (a features file, or ``--images`` a folder of photos), a cluster
  table out, with any method (``--method``) or a trained model folder (``--model``);
- ``methods``: the methods; ``params NAME``: a method's settings (or ``knn``'s) with
  their defaults.

Each subcommand logs to ``--log`` (the rule's log file) and to stderr, writes its outputs
atomically, and records its wall time, CPU time and peak memory beside its log
(``X.log`` -> ``X.benchmark.tsv``, the columns of a Snakemake benchmark file).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from . import registry
from .core import io
from .core.progress import log, setup_logging


# ---------------------------------------------------------------- ingest
def cmd_ingest(args) -> None:
    from .core import ingest

    dataset = json.loads(args.dataset)
    if args.holdout:
        features, labels, ids, manifest = ingest.load_holdout(dataset, args.part,
                                                              json.loads(args.holdout))
    else:
        features, labels, ids, manifest = ingest.load_part(dataset, args.part)
    ingest.write_features(args.out, features, labels, ids, manifest)
    ingest.write_manifest(args.manifest, manifest)
    log.info("wrote %d×%d features to %s", features.shape[0], features.shape[1], args.out)


# ---------------------------------------------------------------- kNN
def cmd_knn(args) -> None:
    from .core import knn

    params = json.loads(args.params)
    features = io.read_array(args.features, "features")
    log.info("kNN over %d×%d features, params %s", *features.shape, params)
    ids, sims, meta = knn.knn_graph(features, threads=args.threads, **params)
    io.write_arrays(args.out, {"ids": ids, "sims": sims}, {**meta, "params": params})


def cmd_knn_index(args) -> None:
    """Sharded kNN, step 1: build the index once and save it (a folder: index + metadata)."""
    from .core import knn

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
    from .core import knn

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
    from .core import knn

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


def cmd_refine(args) -> None:
    """A feature refiner over a part's features and kNN graph; with labels, the
    verification ROC of the features before and after."""
    from .core.verification import roc

    spec = json.loads(args.params)
    refiner = registry.get_refiner(spec.pop("method"))
    refiner.params.resolve(spec, where=refiner.name)  # a bad setting: before any reading
    features = io.read_array(args.features, "features")
    knn = io.read_arrays(args.knn, ["ids", "sims"])
    refined, settings = refiner.refine(features, knn["ids"], knn["sims"], spec)
    arrays = {"features": refined}
    for name in ("labels", "ids"):  # labels and ids travel with the features
        if io.has_array(args.features, name):
            arrays[name] = io.read_array(args.features, name)
    labels = arrays.get("labels")
    verification = {"refiner": refiner.name, "settings": settings, "labels": labels is not None}
    if labels is not None:
        verification.update(before=roc(features, labels), after=roc(refined, labels))
        for when in ("before", "after"):
            log.info("verification %s %s: %s", when, refiner.name, ", ".join(
                f"TPR {p['tpr']:.4f} at FAR {p['far']:g}" for p in verification[when]["points"]))
    io.write_arrays(args.out, arrays, {"refiner": refiner.name, "settings": settings})
    io.write_json(args.verification, verification)


# ---------------------------------------------------------------- any method's stage
def cmd_stage(args) -> None:
    from .core.contract import StageJob

    registry.load_modules(args.method_modules)
    method = registry.get(args.method)
    stage = method.stage(args.stage)
    job = StageJob(method.name, stage.name, args.inputs, json.loads(args.params), args.out,
                   threads=args.threads, table=args.table)
    if stage.table and not args.table:
        raise ValueError(f"{method.name}.{stage.name} writes clusters: give --table")
    stage.run(job)


# ---------------------------------------------------------------- clustering new faces
def _parse_value(text: str):
    """A --param value: JSON when it parses (numbers, true, null, {…}), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def model_dir_of(args) -> str | None:
    """The model folder ``cluster`` was given (``--model``, or its earlier name)."""
    return args.model or args.bundle


def _cluster_model(args):
    """The model ``cluster`` runs: the folder of ``--model``, or ``--method`` (default
    ``registry.DEFAULT_METHOD``) with its ``--param`` settings.  Raises ValueError on a bad
    setting, on both given, or on settings that learn from labeled faces (the command line
    clusters with a trained model folder instead)."""
    model_dir = model_dir_of(args)
    if model_dir:
        if args.method or args.param:
            raise ValueError("--model takes its method and settings from the model folder: "
                             "give no --method or --param with it")
        return registry.load_model(model_dir)
    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param takes KEY=VALUE, got {item!r}")
        params[key] = _parse_value(value)
    knn = params.pop("knn", None)
    method = registry.get(args.method or registry.DEFAULT_METHOD)
    model = method.model(knn=knn, **params)
    if not model.fitted:
        bundles = any(stage.name == "bundle" for stage in method.stages)
        raise ValueError(f"{method.name} with these settings learns from labeled faces: "
                         f"give --model FOLDER, a model trained on them (" + (
                             "`snakemake bundles` writes one per experiment, or "
                             if bundles else "") +
                         f"facecluster.model(...).fit(x, y).save(FOLDER) in Python), or "
                         f"settings that need no labels (facecluster params {method.name})")
    return model


def _normalisation(model, args, default: str) -> tuple[str, np.ndarray | None]:
    """(normalise, centre) for ``cluster``'s faces: as the model's training faces were
    (``input_normalise``, with their centre for ``center_l2``) unless ``--normalise`` says
    otherwise (a warning), else ``default`` (the caller's: ``--normalise`` or the input's
    own default); a model folder that does not record it is warned about."""
    recorded = model.input_normalise
    if recorded and args.normalise in (None, recorded["normalise"]):
        centre = recorded.get("centre")
        log.info("normalising as the model's training faces were: %s%s", recorded["normalise"],
                 " on their centre" if centre is not None else "")
        return recorded["normalise"], None if centre is None else np.asarray(centre)
    if recorded:
        log.warning("the model's training faces were normalised with %s; --normalise %s "
                    "given: thresholds learned there may not hold", recorded["normalise"],
                    args.normalise)
    elif model_dir_of(args) and args.normalise is None:
        log.warning("the model folder does not record how its training faces were "
                    "normalised (written before that was recorded): l2 assumed; give "
                    "--normalise center_l2 if its dataset had it")
    return default, None


def cmd_cluster(args) -> None:
    """Faces in, a cluster table out: any method on its settings, or a saved model; the
    faces from a features file (``--features``) or detected in photos (``--images``)."""
    import contextlib
    import tempfile

    from .core import ingest, photos
    from .core.health import quiet

    registry.load_modules(args.method_modules)
    if bool(args.features) == bool(args.images):
        raise ValueError("give either --features FILE or --images DIR")
    model = _cluster_model(args)  # a bad method, setting or model folder: before any reading
    work = None
    if args.images:
        images = photos.checked_spec({"path": args.images, "recursive": True})
        work = tempfile.TemporaryDirectory(prefix="facecluster-photos-")
        faces = photos.embed_photos(images, args.cache, work.name)
        spec = {"path": faces, "features_key": "X", "ids_key": "ids",
                "normalise": args.normalise or "center_l2"}
    else:
        spec = {"path": args.features, "features_key": args.features_key,
                "ids_key": args.ids_key, "dim": args.dim, "normalise": args.normalise or "l2"}
    spec["normalise"], centre = _normalisation(model, args, spec["normalise"])
    features, _, ids, info = ingest.load(spec, centre)
    features = model.refine(features, threads=args.threads)  # as its training faces were
    logged = model.refiner is None and "shared_component" in [f["check"] for f in info["health"]]
    with quiet("shared_component") if logged else contextlib.nullcontext():
        labels = model.predict(features, threads=args.threads)
    io.write_table(args.out, labels, ids)
    log.info("wrote %d cluster labels (%d clusters, %s) to %s", labels.size,
             np.unique(labels).size, model.method.name, args.out)
    if args.people:
        if work is None:
            raise ValueError("--people needs --images (the faces' photos)")
        from .report.people import write_people

        write_people(labels, ids, faces, args.people, title=str(args.images))
    if work is not None:
        work.cleanup()


def cmd_photos(args) -> None:
    """One photo stage as its rule runs it: detect or embed a shard, merge the faces, or
    write a result's people page."""
    from .core import photos

    if args.step == "people":
        from .report.people import people_page

        people_page(args.clusters, args.features, args.faces, args.out, title=args.title)
        return
    spec = json.loads(args.images)
    if args.step == "detect":
        photos.detect_shard(spec, args.shard, args.of, args.cache, args.out, args.digest)
    elif args.step == "embed":
        photos.embed_shard(spec, args.detections, args.cache, args.out)
    else:
        photos.merge_faces(spec, [tuple(pair) for pair in args.shard_pairs], args.out,
                           args.table, args.photos)


def cmd_methods(args) -> None:
    """Every method, a line each."""
    registry.load_modules(args.method_modules)
    for name in registry.names():
        method = registry.get(name)
        needs = "learns from labeled faces" if method.needs_labels(method.params.defaults()) \
            else "needs no labels"
        print(f"{name:18} {method.doc} ({needs} with its defaults)")


def cmd_params(args) -> None:
    """One method's settings (or the kNN's): key, default, doc."""
    registry.load_modules(args.method_modules)
    if args.name == "knn":
        from .core.knn import PARAMS

        title, params, stages = "knn: the kNN graph every method shares", PARAMS, []
    else:
        method = registry.get(args.name)
        title, params, stages = f"{method.name}: {method.doc}", method.params, method.stages
    print(title + "\n")
    for key, default, doc in params.docs():
        print(f"  {key} = {json.dumps(default)}\n      {doc}")
    if stages:
        print("\nstages: " + ", ".join(s.name for s in stages))


# ---------------------------------------------------------------- metrics and summary
def cmd_metrics(args) -> None:
    from .core.metrics import cluster_stats, evaluate, hard_cluster_scores

    pred = io.read_array(args.clusters, "labels")
    truth = io.labels_of(args.features)
    if truth is not None:
        # Faces of unknown identity (label < 0) are clustered, but not scored.
        known = truth >= 0
        if known.any():
            features = io.read_array(args.features, "features")[known]
            scores = evaluate(truth[known], pred[known])
            scores["hard_clusters"] = hard_cluster_scores(truth[known], pred[known], features)
        else:
            log.warning("every label is negative (unknown identity): nothing to score")
            scores = cluster_stats(pred)
        scores["n_unscored"] = int((~known).sum())
    else:
        log.info("no ground-truth labels: cluster statistics only")
        scores = cluster_stats(pred)
    scores["clusters"] = args.clusters
    io.write_json(args.out, scores)
    log.info("metrics: %s", {k: v for k, v in scores.items()
                             if k not in ("clusters", "hard_clusters")})


def cmd_summary(args) -> None:
    from .report.summary import hard_cluster_table, seed_rows, summary_rows, write_summary

    entries = json.loads(args.entries)
    rows = summary_rows(entries)
    print(write_summary(rows, args.tsv, args.md, seed_rows(entries, rows),
                        hard_cluster_table(entries)))


# ---------------------------------------------------------------- report figures
def cmd_figures_result(args) -> None:
    from .report.figures import result_figures

    registry.load_modules(args.method_modules)
    result_figures(args.clusters, args.features, args.method, json.loads(args.job),
                   json.loads(args.lineage), args.out)


def cmd_figures_dataset(args) -> None:
    from .report.figures import dataset_figures

    dataset_figures(json.loads(args.entries), args.folder, args.out)


def cmd_figures_scoreboard(args) -> None:
    from .report.figures import scoreboard_figure

    scoreboard_figure(json.loads(args.entries), args.out)


# ---------------------------------------------------------------- the parser
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facecluster", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, func, help_):
        sp = sub.add_parser(name, help=help_)
        sp.set_defaults(func=func)
        sp.add_argument("--log", help="log file (appended)")
        sp.add_argument("--benchmark", help="write wall time, CPU time and peak memory here "
                                            "(default: beside --log, X.log -> X.benchmark.tsv)")
        sp.add_argument("--threads", type=int, default=1)
        return sp

    def modules(sp):
        sp.add_argument("--method-module", dest="method_modules", action="append", default=[],
                        metavar="MODULE", help="import a module that defines more methods")

    sp = add("ingest", cmd_ingest, "read or generate one dataset part into a features artifact")
    sp.add_argument("--dataset", required=True, help="the dataset's config entry, as JSON")
    sp.add_argument("--part", required=True,
                    help="train, test, or a validation part (val-…) or its rest (fit-…)")
    sp.add_argument("--holdout", help="a validation part's holdout, as JSON")
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

    sp = add("refine", cmd_refine, "refine a part's features (refine: {method: ...})")
    sp.add_argument("--features", required=True)
    sp.add_argument("--knn", required=True, help="the features' kNN artifact")
    sp.add_argument("--params", required=True, help="the refiner and its settings, as JSON")
    sp.add_argument("--out", required=True, help="refined features artifact (.zarr)")
    sp.add_argument("--verification", required=True, help="verification ROC (.json)")

    sp = add("stage", cmd_stage, "run one stage of a method (what its workflow rule runs)")
    sp.add_argument("method", help="the method (facecluster methods lists them)")
    sp.add_argument("stage", help="the stage of that method")
    sp.add_argument("--in", dest="inputs", action="append", default=[], metavar="NAME=PATH",
                    help="a named input artifact (repeatable)")
    sp.add_argument("--params", default="{}", help="the stage's parameters as JSON")
    sp.add_argument("--out", required=True)
    sp.add_argument("--table", help="the cluster table (.tsv), for a stage that writes clusters")
    modules(sp)

    sp = add("photos", cmd_photos, "a photo stage: detect, embed, faces or people")
    sp.add_argument("step", choices=["detect", "embed", "faces", "people"])
    sp.add_argument("--images", help="the dataset's images settings, as JSON")
    sp.add_argument("--shard", type=int, help="detect: which shard, from 0")
    sp.add_argument("--of", type=int, help="detect: how many shards")
    sp.add_argument("--digest", help="detect: the shard's planned listing digest")
    sp.add_argument("--cache", help="the per-photo cache folder")
    sp.add_argument("--detections", help="embed: the shard's detections")
    sp.add_argument("--shard-pair", dest="shard_pairs", nargs=2, action="append", default=[],
                    metavar=("DETECTIONS", "EMBEDDINGS"), help="faces: a shard (repeat)")
    sp.add_argument("--table", help="faces: every face with its status (.tsv)")
    sp.add_argument("--photos", help="faces: every photo with its status (.tsv)")
    sp.add_argument("--clusters", help="people: the result's clusters.h5")
    sp.add_argument("--features", help="people: the features it clustered")
    sp.add_argument("--faces", help="people: the dataset's faces.h5")
    sp.add_argument("--title", default="", help="people: the page's title")
    sp.add_argument("--out", required=True)

    sp = add("cluster", cmd_cluster, "cluster faces with a method or a trained model folder")
    sp.add_argument("--features", help="features file (.npy .npz .bin .h5 .zarr)")
    sp.add_argument("--images", help="a folder of photos (or a list file): faces detected "
                                     "and embedded by dlib first (README: Your photos)")
    sp.add_argument("--cache", default=str(Path.home() / ".cache" / "facecluster" / "photos"),
                    help="--images: the per-photo cache (default ~/.cache/facecluster/photos)")
    sp.add_argument("--people", help="--images: write the people page into this folder")
    sp.add_argument("--method", help="a method that needs no training (default: "
                                     f"{registry.DEFAULT_METHOD})")
    sp.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting of the method (repeatable; VALUE as JSON when it parses)")
    sp.add_argument("--model", help="a trained model folder (snakemake bundles writes them)")
    sp.add_argument("--bundle", help=argparse.SUPPRESS)  # the earlier name of --model
    sp.add_argument("--out", required=True, help="the cluster table (.tsv) to write")
    sp.add_argument("--features-key", default="X", help="array name inside npz/HDF5/Zarr")
    sp.add_argument("--ids-key", default=None, help="item names inside npz/HDF5/Zarr")
    sp.add_argument("--dim", type=int, default=None, help="feature dimension (required for .bin)")
    sp.add_argument("--normalise", default=None, choices=["l2", "center_l2", "none"],
                    help="default: as the --model's training faces were (their "
                         "centre with center_l2), else l2, center_l2 with --images")
    modules(sp)

    sp = add("methods", cmd_methods, "list the methods")
    modules(sp)

    sp = add("params", cmd_params, "a method's settings, or the kNN's, with defaults and docs")
    sp.add_argument("name", help="a method, or knn")
    modules(sp)

    sp = add("metrics", cmd_metrics, "score clusters against the features' labels")
    sp.add_argument("--clusters", required=True)
    sp.add_argument("--features", required=True)
    sp.add_argument("--out", required=True)

    sp = add("figures-result", cmd_figures_result, "the report's figures of one result")
    sp.add_argument("--clusters", required=True)
    sp.add_argument("--features", required=True)
    sp.add_argument("--method", required=True)
    sp.add_argument("--job", required=True, help="the final job's inputs and params, as JSON")
    sp.add_argument("--lineage", default="{}", help="the result's artifacts by stage, as JSON")
    sp.add_argument("--out", required=True, help="the folder of figures")
    modules(sp)

    sp = add("figures-dataset", cmd_figures_dataset, "the report's figures of one dataset")
    sp.add_argument("--entries", required=True, help="JSON list of {experiment, metrics}")
    sp.add_argument("--folder", required=True, help="the dataset's results folder")
    sp.add_argument("--out", required=True, help="the folder of figures")

    sp = add("figures-scoreboard", cmd_figures_scoreboard, "the report's scoreboard chart")
    sp.add_argument("--entries", required=True, help="JSON list of {dataset, experiment, metrics}")
    sp.add_argument("--out", required=True, help="the chart (.png)")

    sp = add("summary", cmd_summary, "one table across every experiment")
    sp.add_argument("--entries", required=True,
                    help="JSON list of {dataset, experiment, method, summary, metrics, quality}")
    sp.add_argument("--tsv", required=True)
    sp.add_argument("--md", required=True)
    return p


def write_benchmark(path: str, wall: float, stage: str) -> None:
    """Wall time, CPU time and peak resident memory of this process (and its children),
    in a Snakemake benchmark file's columns: s, h:m:s, max_rss (MiB), cpu_time (s); and
    which stage it timed (``knn``, ``{method}.{stage}``, ...)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), \
        resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    rss_mib = max(own.ru_maxrss, children.ru_maxrss) / 1024.0  # Linux: KiB
    hms = time.strftime("%H:%M:%S", time.gmtime(wall))
    with io.atomic_path(path) as tmp:
        tmp.write_text("s\th:m:s\tmax_rss\tcpu_time\tstage\n"
                       f"{wall:.4f}\t{hms}\t{rss_mib:.2f}\t{cpu:.2f}\t{stage}\n")


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
    except registry.UnknownMethodError as err:
        log.error("%s", err)
        return 2
    except KeyError as err:
        log.error("%s: a required setting is missing: %s", args.command, err)
        return 2
    except (ValueError, FileNotFoundError, ImportError) as err:
        log.error("%s", err)
        return 2
    wall = time.perf_counter() - start
    benchmark = args.benchmark
    if benchmark is None and args.log and args.log.endswith(".log"):
        benchmark = args.log[: -len(".log")] + ".benchmark.tsv"
    if benchmark:
        stage = f"{args.method}.{args.stage}" if args.command == "stage" else args.command
        write_benchmark(benchmark, wall, stage.replace("knn-gather", "knn"))
    log.info("done in %.1f s", wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
