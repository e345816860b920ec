"""How far should a kNN-graph method's choice be hedged for a part larger than its train part?

    python benchmarks/beyond_hedge.py EXPERIMENT [EXPERIMENT ...] [--pairs PAIR ...]

A method with its knob on ``auto`` chooses at the size of the part it clusters from a ladder
of sizes of the train part (``core.selection.choose_for_size``); a part larger than the
whole train part takes the top of the largest size's plateau, hedged by ``BEYOND_TOLERANCE``
per doubling, for up to ``doublings`` of them.  This tool judges that rule on training data
alone: for each finished pair of the evaluation matrix (``benchmarks/evaluate.py``) and each
named experiment with a stored calibration, it leaves the largest one or two sizes of the
ladder out and chooses for the whole train part (two or four times the largest size left)
from the rest, by

- ``hedge1``, ``hedge2``, ``hedge3``: the rule with up to 1, 2 or 3 doublings (1: the rule
  in use);
- ``none``: the largest size's choice, not hedged;
- ``trend``: the best value's position in the grid fitted linearly in log N over the sizes
  left, extrapolated;

and scores each choice on the whole train part's own curve (points of the mean of F_P and
F_B below its best).  Prints each pair's gaps, then per experiment and ratio the mean gap
and how many choices are within one point.  Reads no test label; nothing is written.  Run
from the repository root.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
import evaluate

from facecluster.core import io, selection


def trend_choice(rungs: list[dict], n_faces: int, key: str, tolerance: float):
    """The value whose position in the rungs' values is the least-squares line of each
    rung's choice (``plateau_top`` at ``tolerance``) against log N, at ``n_faces``."""
    values = sorted({s[key] for r in rungs for s in r["scores"]})
    picks = [values.index(selection.plateau_top(r["scores"], key, tolerance)[key])
             for r in rungs]
    if len(rungs) < 2:
        return values[picks[0]]
    slope, intercept = np.polyfit(np.log([r["n_faces"] for r in rungs]), picks, 1)
    return values[int(np.clip(round(intercept + slope * np.log(n_faces)), 0, len(values) - 1))]


def gaps(ladder: list[dict], drop: int, tolerance: float) -> dict[str, float] | None:
    """Per rule, the points below the whole part's best of the choice made for it from the
    ladder without its ``drop`` largest sizes; None when fewer than two sizes are left."""
    rungs = sorted(ladder, key=lambda r: -r["n_faces"])
    if len(rungs) < drop + 2:
        return None
    target, rest = rungs[0], rungs[drop:]
    key = selection.score_key(target["scores"][0])
    curve = {s[key]: evaluate.points(s) for s in target["scores"]}
    best = max(curve.values())

    def gap(value) -> float:  # the nearest value the whole part's curve scored
        return best - curve[min(curve, key=lambda v: abs(v - value))]

    n, grid = target["n_faces"], sorted({s[key] for r in rungs for s in r["scores"]})
    out = {f"hedge{d}": gap(selection.choose_for_size(rest, n, key, grid, tolerance,
                                                      doublings=float(d))[0])
           for d in (1, 2, 3)}
    out["none"] = gap(selection.plateau_top(rest[0]["scores"], key, tolerance)[key])
    out["trend"] = gap(trend_choice(rest, n, key, tolerance))
    return out


def main(argv=None) -> int:
    _, plan = evaluate.matrix_arguments(__doc__, argv)
    totals: dict[tuple[str, int, str], list[float]] = {}
    for dataset, row in evaluate.collect(plan).items():
        for experiment, entry in row.items():
            job = plan.job(entry["outcome"].clusters)
            if "calibration" not in job.inputs:
                print(f"{dataset} {experiment}: no calibration on the train part",
                      file=sys.stderr)
                continue
            ladder = io.read_json(job.inputs["calibration"])["ladder"]
            for drop in (1, 2):
                result = gaps(ladder, drop, job.params["tolerance"])
                if result is None:
                    continue
                for rule, g in result.items():
                    totals.setdefault((experiment, 2 ** drop, rule), []).append(g)
                print(f"{dataset} {experiment} x{2 ** drop}: "
                      + " | ".join(f"{rule} {g:.1f}" for rule, g in result.items()))
    for (experiment, ratio, rule), values in totals.items():
        print(f"{experiment} x{ratio} {rule}: mean gap {statistics.mean(values):.2f}, within "
              f"1 point {sum(g <= 1.0 for g in values)}/{len(values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
