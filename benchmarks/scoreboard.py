"""The scoreboard: every method on every dataset of benchmarks/scoreboard.yaml, in one table.

    python benchmarks/scoreboard.py [--no-run] [--also CONFIG] [snakemake options...]

runs the workflow (config/config.yaml, config/unsupervised.yaml and
benchmarks/scoreboard.yaml merged; Snakemake reruns only what is missing) and writes
``RESULTS/scoreboard.md``: for each experiment and each dataset group (the five LFW folds
are one group; an experiment's seeds are one entry), F_P and F_B as mean ± sd over the
folds and seeds, and the method's own time: the wall time of every job its result needs,
training and calibration included, the shared ingest and kNN graph not (their time is
given per dataset).  Run from the repository root.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
from facecluster import registry  # noqa: E402
from facecluster.core import planning  # noqa: E402

CONFIGS = [ROOT / "config" / "config.yaml", ROOT / "config" / "unsupervised.yaml",
           HERE / "scoreboard.yaml"]


def merged_config(paths: list[Path], overrides: dict | None = None) -> dict:
    """The configuration Snakemake builds from ``paths`` (merged in order, dicts key by key)
    and then ``overrides`` (what ``--config`` sets, :func:`config_overrides`), with the
    schema's defaults filled in."""
    from snakemake.utils import update_config, validate

    def merge(base, over):
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value
        return base

    config: dict = {}
    for path in paths:
        merge(config, yaml.safe_load(path.read_text()) or {})
    update_config(config, overrides or {})
    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config


def config_overrides(snakemake_args: list[str]) -> dict:
    """What the ``--config KEY=VALUE ...`` entries among ``snakemake_args`` set, parsed as
    Snakemake parses them (nested keys merged), so that a table covers what its run ran:
    ``--config 'run={"datasets": ["gen-5k"]}'`` runs and tables that pair alone."""
    from snakemake.cli import parse_config

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--config", "-C", nargs="*", action="extend", default=[])
    return parse_config(parser.parse_known_args(snakemake_args)[0].config)


def read_wall(benchmark: Path) -> float | None:
    if not benchmark.exists():
        return None
    with open(benchmark, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return float(rows[-1]["s"]) if rows else None


def job_benchmark(plan, output: str) -> Path:
    """The benchmark file of the job that writes ``output``."""
    path = Path(output)
    if output in plan.jobs:
        job = plan.jobs[output]
        stage = registry.get(job.method).stage(job.stage)
        return path.parent / f"{stage.stem}.benchmark.tsv"
    if path.name == "features.zarr" and path.parent.name.startswith("refine-"):
        return path.parent / "refine.benchmark.tsv"
    if path.name == "features.zarr":
        return path.parent / "ingest.benchmark.tsv"
    return path.parent / f"{path.stem}.benchmark.tsv"  # knn.h5


def method_jobs(plan, output: str, seen: set | None = None) -> set[str]:
    """Every method job ``output`` needs (itself included), through the plan's inputs."""
    seen = set() if seen is None else seen
    if output in plan.jobs and output not in seen:
        seen.add(output)
        for path in plan.jobs[output].inputs.values():
            method_jobs(plan, path, seen)
    return seen


def group_of(dataset: str) -> str:
    return re.sub(r"-fold-\d+$", "", dataset)


def entry_of(experiment: str) -> str:
    return re.sub(r"\.seed-\d+$", "", experiment)


def fmt(values: list[float], scale: float = 100.0) -> str:
    if not values:
        return "-"
    mean = statistics.mean(values) * scale
    if len(values) == 1:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {statistics.stdev(values) * scale:.1f}"


def scoreboard(config: dict) -> str:
    plan = planning.make_plan(config)
    results = Path(plan.results)
    rows: dict[tuple[str, str], dict] = {}
    knn_time: dict[str, list[float]] = {}
    for outcome in plan.outcomes:
        metrics = Path(outcome.metrics)
        if not metrics.exists():
            continue
        scores = yaml.safe_load(metrics.read_text())
        key = (entry_of(outcome.experiment), group_of(outcome.dataset))
        row = rows.setdefault(key, {"method": outcome.method, "f_p": [], "f_b": [], "s": [],
                                    "bins": {}})
        row["f_p"].append(scores.get("pairwise_f"))
        row["f_b"].append(scores.get("bcubed_f"))
        for kind in ("size", "sparsity"):
            for b in (scores.get("hard_clusters") or {}).get(kind, []):
                if b["n_items"]:
                    row["bins"].setdefault(b["bin"], []).append((b["pairwise_f"], b["bcubed_f"]))
        walls = [read_wall(job_benchmark(plan, job)) for job in method_jobs(plan, outcome.clusters)]
        row["s"].append(sum(w for w in walls if w is not None))
    for dataset in config["run"]["datasets"] or config["datasets"]:
        for part in ("train", "test"):
            for knn in (results / dataset / part).glob("knn-*/knn.benchmark.tsv"):
                knn_time.setdefault(group_of(dataset), []).append(read_wall(knn) or 0.0)
    groups = list(dict.fromkeys(group for _, group in rows))
    entries = list(dict.fromkeys(entry for entry, _ in rows))
    head = ["experiment", "method"] + [f"{g}: F_P / F_B / s" for g in groups]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * len(groups)]
    for entry in entries:
        cells = [entry, next(r["method"] for (e, _), r in rows.items() if e == entry)]
        for group in groups:
            row = rows.get((entry, group))
            if not row or None in row["f_p"]:
                cells.append("-")
                continue
            seconds = statistics.mean(row["s"])
            cells.append(f"{fmt(row['f_p'])} / {fmt(row['f_b'])} / {seconds:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "kNN graphs (train and test parts, per dataset, mean s): " + ", ".join(
        f"{g} {statistics.mean(v):.1f}" for g, v in knn_time.items())]
    return "\n".join(lines + [""] + hard_bins_table(rows)) + "\n"


def hard_bins_table(rows: dict) -> list[str]:
    """Markdown lines: each entry's F_P / F_B on the hard-cluster bins (true identities in
    fifths by size, smallest first, and by sparsity, sparsest first; the core metrics'
    ``hard_clusters``), the mean over a group's folds and seeds; [] when none has bins."""
    names = list(dict.fromkeys(b for row in rows.values() for b in row["bins"]))
    if not names:
        return []
    lines = [("Hard clusters, F_P / F_B per fifth of the true identities, mean over the folds "
              "(sz: by size, smallest first; sp: by sparsity, sparsest first; on a fifth of "
              "identities seen once, F_P is 100 in a fold where none of them was merged and 0 "
              "otherwise, so its F_B is the figure to read):"), "",
             "| experiment | dataset | " + " | ".join(names) + " |",
             "|---|---|" + "---:|" * len(names)]
    for (entry, group), row in rows.items():
        if not row["bins"]:
            continue
        cells = []
        for name in names:
            pairs = row["bins"].get(name)
            cells.append("-" if not pairs else
                         f"{100 * statistics.mean(p for p, _ in pairs):.1f} / "
                         f"{100 * statistics.mean(b for _, b in pairs):.1f}")
        lines.append(f"| {entry} | {group} | " + " | ".join(cells) + " |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-run", action="store_true", help="only write the table")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--also", action="append", default=[], type=Path, metavar="CONFIG",
                        help="a config merged over the scoreboard's, for the run and the "
                             "table (repeatable; e.g. benchmarks/scoreboard-quick.yaml)")
    args, snakemake_args = parser.parse_known_args(argv)
    configs = CONFIGS + [p.resolve() for p in args.also]
    return run_and_write(configs, not args.no_run, args.cores, snakemake_args, scoreboard,
                         "scoreboard.md")


def run_and_write(configs: list[Path], run: bool, cores: str, snakemake_args: list[str],
                  render, name: str) -> int:
    """The benchmarks' main: with ``run``, the workflow (``snakemake all``) on ``configs``
    (the first is the workflow's default configuration, the others are merged over it),
    then ``render(config)`` written to the results folder as ``name`` and printed; the
    ``--config`` entries of ``snakemake_args`` apply to the table's configuration as to the
    run's, with or without ``run``.  Returns the workflow's exit status when it failed
    (nothing written), else 0."""
    os.chdir(ROOT)  # the configuration's paths are relative to the repository root
    if run:
        command = [sys.executable, "-m", "snakemake", "all", "--cores", str(cores),
                   *snakemake_args, "--configfile", *map(str, configs[1:])]
        print("+", " ".join(command), flush=True)
        done = subprocess.run(command, cwd=ROOT)
        if done.returncode != 0:
            print(f"error: the workflow failed (exit {done.returncode})", file=sys.stderr)
            return done.returncode
    config = merged_config(configs, config_overrides(snakemake_args))
    text = render(config)
    out = ROOT / config["results"] / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
