"""The scale benchmark's report: every stage's wall time, CPU time and peak memory at
every dataset size, the exponent of each stage's growth with N, the kNN recall and
the clustering scores beside the baseline's.

It reads only what the workflow wrote under the results directory: each rule's
Snakemake benchmark file (``*.benchmark.tsv``: wall seconds, CPU seconds, max_rss
in MB), each part's ingest manifest (N), the kNN artifact's measured recall@k and
each experiment's ``metrics.json``.

    python benchmarks/report.py [RESULTS_DIR] [--out REPORT.md] [--theta-scan]

RESULTS_DIR defaults to benchmarks/results (``results:`` of benchmarks/ms1m.yaml).
``--theta-scan`` adds a diagnostic: the Ada-NETS linkage's F_P and F_B on the test part
over a grid of θ, to show how far the θ chosen on held-out training identities is from
the best one at each size.  It reads the test labels, so it is a diagnosis of the θ
choice, never a result to report as the method's score.
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
from facecluster import io  # noqa: E402

# Benchmark file stem -> the stage it times, in pipeline order.  A stem under a
# `threshold-*` directory belongs to the baseline; `calibration` is its training.
STAGES = {
    "ingest": "ingest",
    "knn": "kNN graph",
    "structure": "structure space",
    "koff": "k_off labels",
    "filter": "filter training",
    "k_hat": "filter inference",
    "graph": "graph building",
    "gcn": "GCN training",
    "embedding": "GCN embedding",
    "clusters": "linkage",
    "metrics": "metrics",
}
BASELINE_STAGES = {"calibration": "τ calibration", "clusters": "linkage", "metrics": "metrics"}


@dataclass
class Timing:
    wall: float      # seconds
    cpu: float       # seconds
    rss_mib: float   # peak resident set, MiB


@dataclass
class SizeRun:
    """One dataset of the benchmark: its sizes, per-stage timings and scores."""
    dataset: str
    n_test: int
    n_train: int | None
    inference: dict[str, Timing] = field(default_factory=dict)
    training: dict[str, Timing] = field(default_factory=dict)
    baseline: dict[str, Timing] = field(default_factory=dict)
    baseline_training: dict[str, Timing] = field(default_factory=dict)
    knn: dict = field(default_factory=dict)
    scores: dict[str, dict] = field(default_factory=dict)


def read_timing(path: Path) -> Timing:
    """One Snakemake benchmark file (one repetition: its last row)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: an empty benchmark file")
    row = rows[-1]

    def number(key):
        value = row.get(key, "NA")
        return float(value) if value not in ("NA", "", None) else float("nan")
    return Timing(wall=number("s"), cpu=number("cpu_time"), rss_mib=number("max_rss"))


def _add(table: dict[str, Timing], stage: str, timing: Timing, where: Path) -> None:
    if stage in table:
        raise ValueError(f"{where}: a second {stage!r} timing in one dataset part; the report "
                         "expects one Ada-NETS experiment and one set of baselines per dataset")
    table[stage] = timing


def collect(results: Path) -> list[SizeRun]:
    """Every dataset under ``results`` that has a test part, smallest first."""
    runs = []
    for manifest in sorted(results.glob("*/test/manifest.json")):
        dataset_dir = manifest.parent.parent
        train_manifest = dataset_dir / "train" / "manifest.json"
        run = SizeRun(dataset=dataset_dir.name, n_test=int(json.loads(manifest.read_text())["n"]),
                      n_train=(int(json.loads(train_manifest.read_text())["n"])
                               if train_manifest.exists() else None))
        for part, adanets_table, baseline_table in (
                ("test", run.inference, run.baseline),
                ("train", run.training, run.baseline_training)):
            for path in sorted((dataset_dir / part).rglob("*.benchmark.tsv")):
                stem = path.name[: -len(".benchmark.tsv")]
                relative = path.relative_to(dataset_dir / part).parts
                if any(p.startswith("threshold-") for p in relative):
                    experiment = next(p for p in relative if p.startswith("threshold-"))
                    if stem in BASELINE_STAGES:
                        label = BASELINE_STAGES[stem]
                        if stem != "calibration":
                            label = f"{label} ({experiment})"
                        _add(baseline_table, label, read_timing(path), path)
                elif stem in STAGES:
                    _add(adanets_table, STAGES[stem], read_timing(path), path)
        for knn_file in sorted((dataset_dir / "test").glob("knn-*/knn.h5")):
            run.knn = io.read_attrs(knn_file)
        for metrics in sorted((dataset_dir / "test").rglob("metrics.json")):
            run.scores[_experiment_label(metrics)] = json.loads(metrics.read_text())
        runs.append(run)
    return sorted(runs, key=lambda r: r.n_test)


def _experiment_label(metrics: Path) -> str:
    directory = metrics.parent.name
    chosen = ""
    clusters = metrics.with_name("clusters.h5")
    if clusters.exists():
        attrs = io.read_attrs(clusters)
        for key, symbol in (("theta", "θ"), ("threshold", "τ")):
            if key in attrs:
                chosen = f" {symbol} {float(attrs[key]):.2f}"
    if directory.startswith("threshold-"):  # threshold-0.6, threshold-auto, threshold-auto-tol0.01
        how = directory[len("threshold-"):].replace("-tol", ", tolerance ")
        return f"kNN threshold ({how}){chosen}"
    if directory.startswith("link-"):  # link-c80-0.9, link-c80-auto, link-c80-auto-tol0.01
        theta = directory.split("-", 2)[2]
        how = "" if not theta.startswith("auto") else (
            f" (auto, tolerance {theta[len('auto-tol'):]})" if "-tol" in theta else " (auto)")
        return f"Ada-NETS{how}{chosen}"
    return directory + chosen


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


def stage_table(runs: list[SizeRun], attr: str, title: str) -> list[str]:
    """Markdown rows: one per stage, wall / CPU / peak GiB at each size, the exponent of wall."""
    order = list(STAGES.values()) + list(BASELINE_STAGES.values())
    stages = sorted({stage for run in runs for stage in getattr(run, attr)},
                    key=lambda s: (next((i for i, name in enumerate(order) if s.startswith(name)),
                                        len(order)), s))
    if not stages:
        return []
    sizes = [run.n_test for run in runs]
    head = (["stage"] + [f"{run.dataset} (N={_fmt_n(run.n_test)}): wall s / CPU s / GiB"
                         for run in runs] + ["wall ∝ N^x"])
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |",
             "|" + "---|" + "---:|" * (len(head) - 1)]
    totals = [Timing(0.0, 0.0, 0.0) for _ in runs]
    for stage in stages:
        cells, walls = [stage], []
        for i, run in enumerate(runs):
            t = getattr(run, attr).get(stage)
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
    complete = [all(stage in getattr(run, attr) for stage in stages) for run in runs]
    x = growth_exponent([n for n, ok in zip(sizes, complete) if ok],
                        [t.wall for t, ok in zip(totals, complete) if ok])
    lines.append("| **total** | " + " | ".join(
        f"**{_fmt_time(t.wall)}** / {_fmt_time(t.cpu)} / {_fmt_gib(t.rss_mib)} (peak)"
        if ok else "incomplete" for t, ok in zip(totals, complete))
        + f" | {'-' if not math.isfinite(x) else f'{x:.2f}'} |")
    return lines + [""]


def _fmt_n(n: int) -> str:
    return f"{n / 1000:.0f}k" if n >= 1000 else str(n)


def render(runs: list[SizeRun]) -> str:
    if not runs:
        raise ValueError("no dataset with a test part under the results directory")
    lines = ["Sizes: " + ", ".join(
        f"{run.dataset} (test {run.n_test:,} faces, train subsample "
        f"{run.n_train:,})" if run.n_train else f"{run.dataset} (test {run.n_test:,})"
        for run in runs), ""]
    lines += stage_table(runs, "inference", "Ada-NETS inference (test part)")
    lines += stage_table(runs, "training", "Ada-NETS training (train subsample)")
    lines += stage_table(runs, "baseline", "Thresholded-kNN baseline (test part, after the kNN graph)")
    lines += stage_table(runs, "baseline_training", "Baseline training (train subsample, after its kNN graph)")
    lines += ["**kNN graph and clustering scores**", "",
              "| dataset | N | kNN index | recall@k vs exact | method | F_P | F_B | NMI | clusters |",
              "|---|---:|---|---:|---|---:|---:|---:|---:|"]
    for run in runs:
        knn = run.knn
        index = knn.get("index", "-")
        if index == "ivf":
            index = f"IVF nlist {knn.get('nlist')} nprobe {knn.get('nprobe')}"
        elif index == "ivfpq":
            index = (f"IVF-PQ nlist {knn.get('nlist')} nprobe {knn.get('nprobe')} "
                     f"PQ {knn.get('pq_m')}×4 bit, re-rank {knn.get('refine_factor')}·k")
        elif index == "hnsw":
            index = f"HNSW ef {knn.get('ef_search', '?')}"
        recall = knn.get("recall_at_k")
        recall = "1 (exact)" if index == "exact" else ("-" if recall is None else f"{recall:.3f}")
        for label, s in sorted(run.scores.items()):
            lines.append(f"| {run.dataset} | {run.n_test:,} | {index} | {recall} | {label} | "
                         f"{100 * s['pairwise_f']:.2f} | {100 * s['bcubed_f']:.2f} | "
                         f"{100 * s['nmi']:.2f} | {s['n_clusters']:,} |")
    return "\n".join(lines) + "\n"


THETA_SCAN = np.round(np.arange(0.70, 0.995, 0.02), 2)


def theta_scan(results: Path, runs: list[SizeRun]) -> list[str]:
    """Markdown: test F_P / F_B of the candidate linkage at each θ of ``THETA_SCAN``."""
    from facecluster.baseline import threshold_scores
    from facecluster.linkage import candidate_similarities

    lines = ["**Diagnostic: test F_P / F_B of the Ada-NETS linkage over θ** (uses test labels)",
             "", "| dataset | θ chosen | " + " | ".join(f"{t:.2f}" for t in THETA_SCAN) + " |",
             "|---|---:|" + "---:|" * THETA_SCAN.size]
    for run in runs:
        test = results / run.dataset / "test"
        for clusters in sorted(test.rglob("link-c*/clusters.h5")):
            gcn_dir = clusters.parent.parent
            cands_file = gcn_dir.parent.parent / "structure.h5"
            if not cands_file.exists():
                cands_file = gcn_dir.parent.parent / "knn.h5"
            emb = io.read_array(gcn_dir / "embedding.zarr", "features")
            attrs = io.read_attrs(clusters)
            k = int(attrs.get("k", 80))
            ids, sims = candidate_similarities(emb, io.read_array(cands_file, "ids"), k)
            labels = io.read_array(test / "features.zarr", "labels")
            scores = threshold_scores(ids, sims, labels, THETA_SCAN, strict=True)
            chosen = float(attrs["theta"])
            lines.append(f"| {run.dataset} | {chosen:.2f} | " + " | ".join(
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
