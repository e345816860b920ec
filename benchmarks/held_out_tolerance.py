"""Which tolerance should a trained method's held-out choice use?

    python benchmarks/held_out_tolerance.py EXPERIMENT [EXPERIMENT ...] [--pairs PAIR ...]

For each finished pair of the evaluation matrix (benchmarks/evaluate.py) and each named
experiment whose threshold is chosen on held-out identities clustered alone, chooses the
threshold again from the stored ladder for the test part's size at several tolerances, by
the method's own rule (its ``held_out_choice``), and scores each choice on the test part's
curve (the method's ``scan``; reads the test labels, a diagnostic).  Prints per pair the
value and mean of F_P and F_B at each tolerance, then per experiment the mean over the
pairs and how many choices are within one point of the test part's best.  Nothing is trained or written.  Run from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
import evaluate

from facecluster import registry
from facecluster.core import io

TOLERANCES = (0.0, 0.005, 0.01, 0.02)


def main(argv=None) -> int:
    args, plan = evaluate.matrix_arguments(__doc__, argv)
    results = evaluate.collect(plan)
    totals = {e: {t: [] for t in TOLERANCES} for e in args.experiments}
    for dataset, row in results.items():
        labels = io.labels_of(plan.features(dataset, "test"))
        for experiment in args.experiments:
            if experiment not in row:
                continue
            outcome = row[experiment]["outcome"]
            method = registry.get(outcome.method)
            job = plan.job(outcome.clusters)
            choice = method.held_out_choice
            first = choice(job.inputs, labels.size, TOLERANCES[0]) if choice else None
            if first is None:
                print(f"{dataset} {experiment}: not chosen on a held-out ladder", file=sys.stderr)
                continue
            key = first[0]
            curve = method.scan(job.inputs, job.params, labels)
            test = {round(c[key], 6): evaluate.points(c) for c in curve}
            best = max(test.values())
            cells = []
            for t in TOLERANCES:
                value = round(choice(job.inputs, labels.size, t)[1], 6)
                score = test[min(test, key=lambda v: abs(v - value))]
                totals[experiment][t].append((score, best - score))
                cells.append(f"{t}: {value:g} → {score:.1f}")
            print(f"{dataset} {experiment} (best {best:.1f}): " + " | ".join(cells))
    for experiment, by_tolerance in totals.items():
        if by_tolerance[TOLERANCES[0]]:
            print(experiment + ": " + " | ".join(
                f"{t}: mean F {sum(s for s, _ in v) / len(v):.2f}, within 1 point "
                f"{sum(gap <= 1.0 for _, gap in v)}/{len(v)}" for t, v in by_tolerance.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
