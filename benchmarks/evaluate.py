"""The evaluation matrix: every method on train/test pairs nobody tuned on, ranked; how far
each method's chosen threshold is from the best one on each test part; and what
``method: auto`` gains over the methods it chooses from.

    python benchmarks/evaluate.py [--no-run] [snakemake options...]

runs the workflow on benchmarks/evaluation.yaml (merged over config/config.yaml) and
writes ``RESULTS/evaluation.md`` with three tables (a ``--config`` option applies to the
tables as to the run: ``--config 'run={"datasets": ["gen-5k"]}'`` runs and tables one pair):

1. per pair, each experiment's F_P / F_B and its rank by their mean; the mean rank;
2. the threshold choice: per pair and method, the mean of F_P and F_B at the chosen value
   against the best value of the same grid on the test part (a diagnostic that reads the
   test labels, through each method's ``scan``), and how many pairs are within 1 point;
3. each ``method: auto`` experiment against the best unsupervised baseline and the best of
   all the others on each pair, and its F_B against HDBSCAN's.

Run from the repository root.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))
from scoreboard import merged_config, run_and_write  # noqa: E402

from facecluster import registry  # noqa: E402
from facecluster.core import io, planning, selection  # noqa: E402

CONFIGS = [ROOT / "config" / "config.yaml", HERE / "evaluation.yaml"]


def matrix_arguments(doc: str, argv=None):
    """``(args, plan)`` of a diagnostic tool over finished results: its command line
    (``EXPERIMENT [EXPERIMENT ...] [--pairs PAIR ...] [--also YAML ...]``, described by the
    first paragraph of ``doc``) and the evaluation matrix's plan (``CONFIGS``, then the
    files of ``--also``, such as ``benchmarks/lfw-splits.yaml``, whose ``run.datasets`` then
    replaces the matrix's) for those experiments on those pairs (the configuration's
    ``run.datasets`` when none is named: null, every pair), read through :func:`collect`."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("experiments", nargs="+")
    parser.add_argument("--pairs", nargs="*", help="default: the configuration's run.datasets")
    parser.add_argument("--also", nargs="*", default=[], type=Path,
                        help="configuration files merged over the matrix's")
    args = parser.parse_args(argv)
    config = merged_config(CONFIGS + args.also)
    config["run"]["experiments"] = args.experiments
    if args.pairs:
        config["run"]["datasets"] = args.pairs
    return args, planning.make_plan(config)


def metrics_mean_f(scores: dict) -> float:
    """A metrics table's mean of F_P and F_B (``pairwise_f``, ``bcubed_f``; fractions).
    ``core.selection.mean_f`` reads a score entry's ``f_pairwise`` and ``f_bcubed``."""
    return (scores["pairwise_f"] + scores["bcubed_f"]) / 2


def points(entry: dict) -> float:
    """A score entry's mean of F_P and F_B (``core.selection.mean_f``), in points."""
    return 100 * selection.mean_f(entry)


def collect(plan) -> dict[str, dict[str, dict]]:
    """dataset -> experiment -> {"scores", "outcome"} for every finished result."""
    out: dict[str, dict[str, dict]] = {}
    for outcome in plan.outcomes:
        metrics = Path(outcome.metrics)
        if metrics.exists():
            scores = io.read_json(metrics)
            if "pairwise_f" in scores:
                out.setdefault(outcome.dataset, {})[outcome.experiment] = {
                    "scores": scores, "outcome": outcome}
    return out


def ranks(row: dict[str, dict]) -> dict[str, float]:
    """Rank 1 = the best mean of F_P and F_B on the pair (ties share the mean rank)."""
    order = sorted(row, key=lambda e: -metrics_mean_f(row[e]["scores"]))
    values = [metrics_mean_f(row[e]["scores"]) for e in order]
    out = {}
    for e in order:
        tied = [i + 1 for i, v in enumerate(values) if v == metrics_mean_f(row[e]["scores"])]
        out[e] = sum(tied) / len(tied)
    return out


def matrix_table(results: dict, experiments: list[str]) -> list[str]:
    lines = ["| pair | " + " | ".join(experiments) + " |",
             "|---|" + "---:|" * len(experiments)]
    all_ranks: dict[str, list[float]] = {e: [] for e in experiments}
    for dataset, row in results.items():
        r = ranks(row)
        cells = []
        for e in experiments:
            if e not in row:
                cells.append("-")
                continue
            s = row[e]["scores"]
            all_ranks[e].append(r[e])
            cells.append(f"{100 * s['pairwise_f']:.1f} / {100 * s['bcubed_f']:.1f} ({r[e]:g})")
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    lines.append("| **mean rank** | " + " | ".join(
        f"**{statistics.mean(v):.2f}**" if v else "-" for v in all_ranks.values()) + " |")
    return lines


def selection_table(plan, results: dict, experiments: list[str]) -> list[str]:
    """Chosen value's test score against the best of the grid, per pair and method."""
    lines = ["| pair | " + " | ".join(experiments) + " |", "|---|" + "---:|" * len(experiments)]
    within = {e: [0, 0] for e in experiments}
    for dataset, row in results.items():
        labels = io.labels_of(plan.features(dataset, "test"))
        cells = []
        for e in experiments:
            entry = row.get(e)
            method = registry.get(entry["outcome"].method) if entry else None
            if not entry or method.scan is None:
                cells.append("-")
                continue
            job = plan.job(entry["outcome"].clusters)
            curve = method.scan(job.inputs, job.params, labels)
            if not curve:
                cells.append("-")
                continue
            best = selection.best_entry(curve)
            got = metrics_mean_f(entry["scores"])
            gap = 100 * (selection.mean_f(best) - got)
            within[e][0] += gap <= 1.0
            within[e][1] += 1
            key = selection.score_key(best)
            chosen = (io.read_attrs(entry["outcome"].clusters).get("chosen") or {}).get(key)
            cells.append(f"{gap:.1f} ({chosen} vs {best[key]})")
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    lines.append("| **within 1 point** | " + " | ".join(
        f"**{w}/{n}**" if n else "-" for w, n in within.values()) + " |")
    return lines


def unsupervised(experiments: list[str], methods: dict[str, str]) -> list[str]:
    """The experiments whose method (``methods``: experiment -> method name) runs without
    labels at its defaults (the baselines the transfer acceptance names; a tuned setting of
    theirs is still chosen on labels)."""
    return [e for e in experiments
            if not (m := registry.get(methods[e])).needs_labels(m.params.defaults())]


def auto_table(results: dict, autos: list[str], candidates: list[str],
               baselines: list[str]) -> list[str]:
    """Each ``method: auto`` experiment against the best of the others on every pair: the
    best unsupervised baseline (the acceptance: never more than 0.5 below it) and the best
    of all, and its F_B against HDBSCAN's (the acceptance: +2 on average)."""
    lines = ["| pair | experiment | F_P / F_B | chose | best baseline (mean F) | − baseline | "
             "best of all (mean F) | − best | F_B − HDBSCAN F_B |",
             "|---|---|---:|---|---|---:|---|---:|---:|"]
    gaps: dict[str, dict[str, list[float]]] = {a: {"base": [], "all": [], "fb": []}
                                               for a in autos}
    for dataset, row in results.items():
        for a in autos:
            if a not in row:
                continue
            auto = row[a]
            cells = []
            for pool, key in ((baselines, "base"), (candidates, "all")):
                others = [e for e in pool if e in row]
                best = max(others, key=lambda e: metrics_mean_f(row[e]["scores"]))
                gap = 100 * (metrics_mean_f(auto["scores"]) - metrics_mean_f(row[best]["scores"]))
                gaps[a][key].append(gap)
                cells += [f"{best} ({100 * metrics_mean_f(row[best]['scores']):.1f})", f"{gap:+.1f}"]
            fb = "-"
            if "hdbscan-auto" in row:
                gain = 100 * (auto["scores"]["bcubed_f"]
                              - row["hdbscan-auto"]["scores"]["bcubed_f"])
                gaps[a]["fb"].append(gain)
                fb = f"{gain:+.1f}"
            chose = (io.read_attrs(auto["outcome"].clusters).get("chosen") or {}).get("choice")
            s = auto["scores"]
            lines.append(f"| {dataset} | {a} | {100 * s['pairwise_f']:.1f} / "
                         f"{100 * s['bcubed_f']:.1f} | {chose} | " + " | ".join(cells)
                         + f" | {fb} |")
    for a, g in gaps.items():
        if g["base"]:
            below = sum(v < -0.5 for v in g["base"])
            fb = f"**{statistics.mean(g['fb']):+.2f}**" if g["fb"] else "-"
            lines.append(f"| **mean** | {a} | | | | **{statistics.mean(g['base']):+.2f}** "
                         f"(worst {min(g['base']):+.1f}; {below} of {len(g['base'])} pairs "
                         f"below −0.5) | | **{statistics.mean(g['all']):+.2f}** | {fb} |")
    return lines


def report(config: dict) -> str:
    plan = planning.make_plan(config)
    results = collect(plan)
    experiments = [e for e in config["run"]["experiments"] if any(e in r for r in results.values())]
    methods = {e: row[e]["outcome"].method for row in results.values() for e in row}
    autos = [e for e in experiments if methods[e] == "auto"]
    tuned = [e for e in experiments if e not in autos]
    return "\n".join(
        ["**The evaluation matrix**: F_P / F_B (rank by their mean) on every train/test pair", ""]
        + matrix_table(results, experiments)
        + ["", "**The threshold choice**: points (mean of F_P and F_B) between the chosen value "
           "and the best value of the same grid on the test part (chosen vs best); a "
           "diagnostic that reads the test labels", ""]
        + selection_table(plan, results, tuned)
        + ["", "**method: auto** against the best of the methods with their setting on auto", ""]
        + auto_table(results, autos, tuned, unsupervised(tuned, methods))) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-run", action="store_true", help="only write the tables")
    parser.add_argument("--cores", default="all")
    args, snakemake_args = parser.parse_known_args(argv)
    return run_and_write(CONFIGS, not args.no_run, args.cores, snakemake_args, report,
                         "evaluation.md")


if __name__ == "__main__":
    sys.exit(main())
