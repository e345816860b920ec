"""Does a threshold chosen on training data of the test part's size transfer better?

    python benchmarks/size_matched.py [--pairs lfw-fold-0 ...] [--methods knn_threshold ...]

For each pair of the evaluation matrix that has run (benchmarks/evaluate.py) and each
kNN-graph method with ``auto``, compares three choices of the method's setting, each scored
on the test part (mean of F_P and F_B, in points):

- ``whole``: chosen on the whole train part (``size_matched: false``; the first curve of
  the calibration);
- ``matched``: chosen on ``--draws`` random sets of whole training identities holding exactly
  as many faces as the test part, their curves averaged (the test part's size is known when
  it is clustered; where single linkage starts to chain moves with the set's size).  The
  rule ``auto`` uses since (``core.selection.choose_for_size``) interpolates between draws at
  halvings of the train part instead, so that its calibration serves any test part;
- ``best``: the best value of the grid on the test part itself (reads the test labels: the
  ceiling).

Writes ``RESULTS/size_matched.md``.  Run from the repository root.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))
from evaluate import CONFIGS, collect, points  # noqa: E402
from scoreboard import merged_config  # noqa: E402

from facecluster import registry  # noqa: E402
from facecluster.core import io, planning, selection  # noqa: E402
from facecluster.core.ingest import subsample_identities  # noqa: E402
from facecluster.core.knn import knn_graph  # noqa: E402

METHODS = ["knn_threshold", "infomap", "chinese_whispers", "hac", "dbscan"]


def at(curve: list[dict], key: str, value) -> dict:
    return min(curve, key=lambda p: abs(p[key] - value))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", nargs="*")
    parser.add_argument("--methods", nargs="*", default=METHODS)
    parser.add_argument("--draws", type=int, default=3)
    args = parser.parse_args(argv)
    config = merged_config(CONFIGS)
    plan = planning.make_plan(config)
    results = collect(plan)
    rows, gaps = [], {"whole": [], "matched": []}
    for dataset, row in results.items():
        if args.pairs and dataset not in args.pairs:
            continue
        test_labels = io.labels_of(plan.features(dataset, "test"))
        train_path = plan.features(dataset, "train")
        train = io.read_arrays(train_path, ["features", "labels"])
        for experiment, entry in row.items():
            name = entry["outcome"].method
            if name not in args.methods:
                continue
            method = registry.get(name)
            job = plan.job(entry["outcome"].clusters)
            if "calibration" not in job.inputs:
                continue
            key = next(k for k in io.read_json(job.inputs["calibration"])
                       if k not in ("f_pairwise", "f_bcubed", "scores", "profile")
                       and not k.startswith(("p_", "r_", "n_")))
            tolerance = job.params["tolerance"]
            whole = selection.plateau_top(io.read_json(job.inputs["calibration"])["scores"],
                                          key, tolerance)[key]
            test_curve = method.scan(job.inputs, job.params, test_labels)
            curves = []
            knn = planning.knn_params(config)
            for draw in range(args.draws):
                keep = subsample_identities(train["labels"], test_labels.size, draw)
                x = train["features"][keep]
                ids, sims, _ = knn_graph(x, **{k: v for k, v in knn.items()
                                               if k in ("k", "index", "exact_max_n")})
                with tempfile.TemporaryDirectory(prefix="size-matched-") as folder:
                    graph_inputs = _write_graph(Path(folder), x, ids, sims)
                    curves.append(method.scan(graph_inputs, job.params, train["labels"][keep]))
            averaged = _average(curves, key)
            matched = selection.plateau_top(averaged, key, tolerance)[key]
            best = max(test_curve, key=points)
            got = {"whole": points(at(test_curve, key, whole)),
                   "matched": points(at(test_curve, key, matched))}
            for k in gaps:
                gaps[k].append(points(best) - got[k])
            rows.append(f"| {dataset} | {experiment} | {whole} → {got['whole']:.1f} | "
                        f"{matched} → {got['matched']:.1f} | {best[key]} → {points(best):.1f} |")
            print(rows[-1], flush=True)
    lines = ["| pair | experiment | whole train part | size-matched | best on test |",
             "|---|---|---:|---:|---:|", *rows,
             f"| **mean gap to best** | | {statistics.mean(gaps['whole']):.2f} | "
             f"{statistics.mean(gaps['matched']):.2f} | 0 |",
             f"| **within 1 point** | | {sum(g <= 1 for g in gaps['whole'])}/{len(rows)} | "
             f"{sum(g <= 1 for g in gaps['matched'])}/{len(rows)} | |"]
    out = ROOT / config["results"] / "size_matched.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-2:]))
    return 0


def _write_graph(folder: Path, x, ids, sims) -> dict:
    io.write_arrays(folder / "knn.h5", {"ids": ids, "sims": sims})
    io.write_arrays(folder / "features.zarr", {"features": x})
    return {"knn": str(folder / "knn.h5"), "features": str(folder / "features.zarr")}


def _average(curves: list[list[dict]], key: str) -> list[dict]:
    """The mean F_P and F_B at every value all draws scored."""
    common = set.intersection(*({p[key] for p in c} for c in curves))
    out = []
    for value in sorted(common):
        entries = [next(p for p in c if p[key] == value) for c in curves]
        out.append({key: value, "f_pairwise": float(np.mean([p["f_pairwise"] for p in entries])),
                    "f_bcubed": float(np.mean([p["f_bcubed"] for p in entries]))})
    return out


if __name__ == "__main__":
    sys.exit(main())
