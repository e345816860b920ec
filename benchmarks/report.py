"""The scale benchmark's report: every stage's wall time, CPU time and peak memory at
every dataset size, the exponent of each stage's growth with N, the kNN recall and the
clustering scores of every experiment.

It reads only what the workflow wrote under the results directory: each job's benchmark
file (``*.benchmark.tsv``: wall seconds, CPU seconds, max_rss in MiB, and the stage it
timed), each part's ingest manifest (N), the kNN artifact's measured recall@k and each
experiment's ``metrics.json`` and ``clusters.h5`` attributes.  It names no method: stages
are ordered as the registry's methods declare them.

    python benchmarks/report.py [RESULTS_DIR] [--out REPORT.md] [--theta-scan]

RESULTS_DIR defaults to benchmarks/results (``results:`` of benchmarks/ms1m.yaml).
``--theta-scan`` adds a diagnostic for linkages over GCN embeddings (Ada-NETS's): the test
F_P and F_B over a grid of θ, to show how far the θ chosen on held-out training identities
is from the best one at each size.  It reads the test labels, so it is a diagnosis of the
θ choice, never a result to report as the method's score.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# The project's own readers, also when the script runs from a checkout that is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from facecluster import registry  # noqa: E402
from facecluster.core import io  # noqa: E402
from facecluster.report.summary import shown_value  # noqa: E402

CORE_BEFORE = ("ingest", "knn")   # the core stages every method's result needs first
CORE_AFTER = ("metrics",)


@dataclass
class Timing:
    wall: float      # seconds
    cpu: float       # seconds
    rss_mib: float   # peak resident set, MiB


@dataclass
class SizeRun:
    """One dataset of the benchmark: its sizes, timings by (method, part) and scores."""
    dataset: str
    n_test: int
    n_train: int | None
    # (method, part) -> stage label -> timing; method "" holds the core stages
    tables: dict[tuple[str, str], dict[str, Timing]] = field(default_factory=dict)
    knn: dict = field(default_factory=dict)
    scores: dict[str, dict] = field(default_factory=dict)


def read_timing(path: Path) -> tuple[Timing, str]:
    """One benchmark file (its last row) and the stage it timed ('' when unnamed)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: an empty benchmark file")
    row = rows[-1]

    def number(key):
        value = row.get(key, "NA")
        return float(value) if value not in ("NA", "", None) else float("nan")
    return (Timing(wall=number("s"), cpu=number("cpu_time"), rss_mib=number("max_rss")),
            row.get("stage") or "")


def _label(path: Path) -> str:
    """A job's folder as it reads without its hash: threshold-0.6-1a2b3c4d -> threshold-0.6."""
    name = path.parent.name
    head, _, tail = name.rpartition("-")
    return head if len(tail) == 8 and all(c in "0123456789abcdef" for c in tail) else name


def _method_of_metrics(path: Path) -> str:
    clusters = path.with_name("clusters.h5")
    return io.read_attrs(clusters).get("method", "") if clusters.exists() else ""


def collect(results: Path) -> list[SizeRun]:
    """Every dataset under ``results`` that has a test part, smallest first."""
    runs = []
    for manifest in sorted(results.glob("*/test/manifest.json")):
        dataset_dir = manifest.parent.parent
        train_manifest = dataset_dir / "train" / "manifest.json"
        run = SizeRun(dataset=dataset_dir.name, n_test=int(json.loads(manifest.read_text())["n"]),
                      n_train=(int(json.loads(train_manifest.read_text())["n"])
                               if train_manifest.exists() else None))
        for part in ("test", "train"):
            jobs: dict[tuple[str, str], list[tuple[Path, Timing]]] = {}
            for path in sorted((dataset_dir / part).rglob("*.benchmark.tsv")):
                timing, stage = read_timing(path)
                if stage == "metrics":
                    stage = f"{_method_of_metrics(path.with_name('metrics.json'))}.metrics"
                method, _, name = stage.rpartition(".")
                jobs.setdefault((method, name), []).append((path, timing))
            for (method, name), found in jobs.items():
                table = run.tables.setdefault((method, part), {})
                labels = [_label(path) for path, _ in found]
                for (path, timing), label in zip(found, labels):
                    # Several jobs of a stage: tell them by folder, with its hash where two
                    # folders read alike (one stage of two experiments of the same kind).
                    if labels.count(label) > 1:
                        label = path.parent.name
                    table[name if len(found) == 1 else f"{name} ({label})"] = timing
        for knn_file in sorted((dataset_dir / "test").glob("knn-*/knn.h5")):
            run.knn = io.read_attrs(knn_file)
        found = [(_experiment_label(m), m) for m in
                 sorted((dataset_dir / "test").rglob("metrics.json"))]
        labels = [label for label, _ in found]
        for label, metrics in found:
            if labels.count(label) > 1:  # results that read alike: name the folder above
                label = f"{label} [{metrics.parent.parent.name}]"
            run.scores[label] = json.loads(metrics.read_text())
        runs.append(run)
    return sorted(runs, key=lambda r: r.n_test)


def _experiment_label(metrics: Path) -> str:
    clusters = metrics.with_name("clusters.h5")
    attrs = io.read_attrs(clusters) if clusters.exists() else {}
    chosen = " ".join(f"{key} {shown_value(float(value))}" for key, value in
                      (attrs.get("chosen") or {}).items())
    return " ".join(filter(None, [attrs.get("method", "?"), _label(metrics),
                                  f"({chosen})" if chosen else ""]))


def growth_exponent(sizes, values) -> float:
    """The least-squares slope of log(value) against log(N): value ∝ N^slope."""
    sizes, values = np.asarray(sizes, dtype=float), np.asarray(values, dtype=float)
    ok = np.isfinite(values) & (values > 0)
    if ok.sum() < 2 or np.unique(sizes[ok]).size < 2:
        return float("nan")
    slope, _ = np.polyfit(np.log(sizes[ok]), np.log(values[ok]), 1)
    return float(slope)


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    return f"{seconds:.1f}" if seconds < 100 else f"{seconds:.0f}"


def _fmt_gib(mib: float) -> str:
    return "-" if not math.isfinite(mib) else f"{mib / 1024:.2f}"


def _fmt_n(n: int) -> str:
    return f"{n / 1000:.0f}k" if n >= 1000 else str(n)


def _stage_order(method: str) -> list[str]:
    try:
        stages = [s.name for s in registry.get(method).stages]
    except KeyError:
        stages = []
    return list(CORE_BEFORE) + stages + list(CORE_AFTER)


def stage_table(runs: list[SizeRun], method: str, part: str, title: str) -> list[str]:
    """Markdown rows: the core stages before, the method's stages, metrics; wall / CPU /
    peak GiB at each size, and the exponent of wall."""
    tables = [{**run.tables.get(("", part), {}), **run.tables.get((method, part), {})}
              for run in runs]
    if not any(run.tables.get((method, part)) for run in runs):
        return []
    order = _stage_order(method)
    stages = sorted({stage for table in tables for stage in table},
                    key=lambda s: (order.index(s.split(" (")[0]) if s.split(" (")[0] in order
                                   else len(order), s))
    sizes = [run.n_test for run in runs]
    head = (["stage"] + [f"{run.dataset} (N={_fmt_n(run.n_test)}): wall s / CPU s / GiB"
                         for run in runs] + ["wall ∝ N^x"])
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |",
             "|" + "---|" + "---:|" * (len(head) - 1)]
    totals = [Timing(0.0, 0.0, 0.0) for _ in runs]
    for stage in stages:
        cells, walls = [stage], []
        for i, table in enumerate(tables):
            t = table.get(stage)
            if t is None:
                cells.append("-")
                walls.append(float("nan"))
                continue
            cells.append(f"{_fmt_time(t.wall)} / {_fmt_time(t.cpu)} / {_fmt_gib(t.rss_mib)}")
            walls.append(t.wall)
            totals[i] = Timing(totals[i].wall + t.wall, totals[i].cpu + t.cpu,
                               max(totals[i].rss_mib, t.rss_mib))
        x = growth_exponent(sizes, walls)
        cells.append("-" if not math.isfinite(x) else f"{x:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    # A total only where every stage ran: a partial run's sum would read as a measurement.
    complete = [all(stage in table for stage in stages) for table in tables]
    x = growth_exponent([n for n, ok in zip(sizes, complete) if ok],
                        [t.wall for t, ok in zip(totals, complete) if ok])
    lines.append("| **total** | " + " | ".join(
        f"**{_fmt_time(t.wall)}** / {_fmt_time(t.cpu)} / {_fmt_gib(t.rss_mib)} (peak)"
        if ok else "incomplete" for t, ok in zip(totals, complete))
        + f" | {'-' if not math.isfinite(x) else f'{x:.2f}'} |")
    return lines + [""]


def _index(knn: dict) -> str:
    index = knn.get("index", "-")
    if index == "ivf":
        return f"IVF nlist {knn.get('nlist')} nprobe {knn.get('nprobe')}"
    if index == "ivfpq":
        return (f"IVF-PQ nlist {knn.get('nlist')} nprobe {knn.get('nprobe')} "
                f"PQ {knn.get('pq_m')}×4 bit, re-rank {knn.get('refine_factor')}·k")
    if index == "hnsw":
        return f"HNSW ef {knn.get('ef_search', '?')}"
    return index


def render(runs: list[SizeRun]) -> str:
    if not runs:
        raise ValueError("no dataset with a test part under the results directory")
    lines = ["Sizes: " + ", ".join(
        f"{run.dataset} (test {run.n_test:,} faces, train subsample "
        f"{run.n_train:,})" if run.n_train else f"{run.dataset} (test {run.n_test:,})"
        for run in runs), ""]
    methods = sorted({method for run in runs for method, _ in run.tables if method})
    for method in methods:
        lines += stage_table(runs, method, "test", f"{method}: inference (test part)")
        lines += stage_table(runs, method, "train", f"{method}: training (train part)")
    lines += ["**kNN graph and clustering scores**", "",
              "| dataset | N | kNN index | recall@k vs exact | experiment | F_P | F_B | NMI | clusters |",
              "|---|---:|---|---:|---|---:|---:|---:|---:|"]
    for run in runs:
        index = _index(run.knn)
        recall = run.knn.get("recall_at_k")
        recall = "1 (exact)" if index == "exact" else ("-" if recall is None else f"{recall:.3f}")
        for label, s in sorted(run.scores.items()):
            if "pairwise_f" not in s:
                continue
            lines.append(f"| {run.dataset} | {run.n_test:,} | {index} | {recall} | {label} | "
                         f"{100 * s['pairwise_f']:.2f} | {100 * s['bcubed_f']:.2f} | "
                         f"{100 * s['nmi']:.2f} | {s['n_clusters']:,} |")
    return "\n".join(lines) + "\n"


THETA_SCAN = np.round(np.arange(0.70, 0.995, 0.02), 2)


def theta_scan(results: Path, runs: list[SizeRun]) -> list[str]:
    """Markdown: test F_P / F_B of every linkage over GCN embeddings and kNN candidates at
    each θ of ``THETA_SCAN`` (the linkage's inputs are recorded in its clusters)."""
    from facecluster.core.selection import list_threshold_scores
    from facecluster.core.sparse import candidate_similarities

    lines = ["**Diagnostic: test F_P / F_B of the embedding linkage over θ** (uses test labels)",
             "", "| dataset | θ chosen | " + " | ".join(f"{t:.2f}" for t in THETA_SCAN) + " |",
             "|---|---:|" + "---:|" * THETA_SCAN.size]
    for run in runs:
        test = results / run.dataset / "test"
        labels = io.read_array(test / "features.zarr", "labels")
        for clusters in sorted(test.rglob("clusters.h5")):
            attrs = io.read_attrs(clusters)
            inputs = attrs.get("inputs") or {}
            if not {"embedding", "cands"} <= set(inputs) or "theta" not in attrs:
                continue
            emb = io.read_array(inputs["embedding"], "features")
            ids, sims = candidate_similarities(emb, io.read_array(inputs["cands"], "ids"),
                                               int(attrs.get("k", 80)))
            scores = list_threshold_scores(ids, sims, labels, THETA_SCAN, strict=True)
            lines.append(f"| {run.dataset} | {float(attrs['theta']):.2f} | " + " | ".join(
                f"{100 * s['f_pairwise']:.1f} / {100 * s['f_bcubed']:.1f}" for s in scores) + " |")
    return lines + [""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", default="benchmarks/results")
    parser.add_argument("--out", default=None, help="write the report here too "
                        "(default: RESULTS/report.md)")
    parser.add_argument("--theta-scan", action="store_true",
                        help="add the test F over a θ grid (a diagnostic that reads test labels)")
    args = parser.parse_args(argv)
    results = Path(args.results)
    if not results.is_dir():
        print(f"error: {results}: no such results directory (run the benchmark first)",
              file=sys.stderr)
        return 2
    runs = collect(results)
    text = render(runs)
    if args.theta_scan:
        text += "\n" + "\n".join(theta_scan(results, runs))
    out = Path(args.out) if args.out else results / "report.md"
    tmp = out.with_name(f".{out.name}.partial")
    tmp.write_text(text)
    tmp.replace(out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
