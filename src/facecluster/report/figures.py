"""The report's figures from the artifacts: one folder per result, one per dataset, and the
scoreboard (``rules/report.smk`` runs them; ``plots.py`` draws).

A result's folder gets the figures every method has (its threshold curves, when it has a
threshold: train side from the ``train_curve`` its clusters record, test side from its
``scan``; cluster sizes; merge mistakes, with labels) and those its method draws itself
(``Method.figures``, from the artifacts of its lineage).  Unlabeled data gets what applies:
sizes, and how the number of clusters moves with the threshold.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .. import registry
from ..core import io
from ..core.progress import log
from . import plots


def result_figures(clusters: str, features: str, method_name: str, job: dict,
                   lineage: dict, out_dir: str | Path) -> list[str]:
    """The figures of one result in ``out_dir``; returns their file names."""
    out_dir = Path(out_dir)
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        written = _result_figures(clusters, features, method_name, job, lineage, tmp)
    log.info("figures of %s: %s", clusters, ", ".join(written))
    return written


def _result_figures(clusters, features, method_name, job, lineage, out: Path) -> list[str]:
    method = registry.get(method_name)
    attrs = io.read_attrs(clusters)
    pred = io.read_array(clusters, "labels")
    truth = io.labels_of(features)
    if truth is not None:
        known = truth >= 0
        truth, scored_pred = truth[known], pred[known]
    written = []
    key = attrs.get("knob")
    if key and method.scan is not None:
        test = method.scan(job["inputs"], job["params"], truth if truth is not None else None)
        chosen = (attrs.get("chosen") or {}).get(key, attrs.get(key))
        how = "chosen on training data" if attrs.get("chosen") else "as set"
        if truth is not None:
            plots.threshold_curves(key, attrs.get("train_curve"), test, chosen, how,
                                   f"{method_name}: scores against {key}", out / "threshold.png")
        else:
            plots.cluster_count_curve(key, [(c[key], c["n_clusters"]) for c in test], chosen,
                                      f"{method_name}: clusters against {key}",
                                      out / "threshold.png")
        written.append("threshold.png")
    plots.size_distribution(pred, truth, f"{method_name}: cluster sizes", out / "sizes.png")
    written.append("sizes.png")
    if truth is not None:
        plots.merge_mistakes(scored_pred, truth, f"{method_name}: the clusters that join most "
                                                 f"identities", out / "mistakes.png")
        written.append("mistakes.png")
    if method.figures is not None:
        written += method.figures(lineage, out)
    return written


def dataset_figures(entries: list[dict], dataset_dir: str | Path, out_dir: str | Path) -> None:
    """Hard-cluster bins of every result, the cost of every stage, kNN recall."""
    dataset_dir = Path(dataset_dir)
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        hard = {}
        for entry in entries:
            metrics = io.read_json(entry["metrics"])
            if metrics.get("hard_clusters"):
                hard[entry["experiment"]] = metrics["hard_clusters"]
        name = dataset_dir.name
        if hard:
            plots.hard_bins(hard, f"{name}: F per fifth of the identities (sz: by size, "
                                  f"smallest first; sp: by sparsity, sparsest first)",
                            tmp / "hard_bins.png")
        costs = []
        for bench in sorted(dataset_dir.rglob("*.benchmark.tsv")):
            with open(bench, newline="") as f:
                row = list(csv.DictReader(f, delimiter="\t"))[-1]
            part = bench.relative_to(dataset_dir).parts[0]
            costs.append({"stage": f"{part}: {row.get('stage') or bench.stem}",
                          "s": float(row["s"]), "max_rss": float(row["max_rss"])})
        if costs:
            costs.sort(key=lambda c: -c["s"])
            plots.stage_costs(costs[:30], f"{name}: the 30 longest jobs", tmp / "stage_costs.png")
        graphs = []
        for knn in sorted(dataset_dir.rglob("knn.h5")):
            attrs = io.read_attrs(knn)
            if "recall_at_k" in attrs:
                graphs.append({"name": str(knn.parent.relative_to(dataset_dir)),
                               "recall": float(attrs["recall_at_k"]),
                               "index": attrs.get("index", "?")})
        if graphs:
            plots.knn_recall(graphs, tmp / "knn_recall.png")


def scoreboard_figure(entries: list[dict], out: str | Path) -> None:
    points = []
    for entry in entries:
        metrics = io.read_json(entry["metrics"])
        if "pairwise_f" in metrics:
            points.append({"dataset": entry["dataset"], "experiment": entry["experiment"],
                           "f_p": metrics["pairwise_f"], "f_b": metrics["bcubed_f"]})
    plots.scoreboard(points, out)  # unlabeled data: an empty chart, which says so
