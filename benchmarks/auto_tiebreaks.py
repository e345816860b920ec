"""Would another rule for ``method: auto``'s choice have kept closer to the best candidate?

    python benchmarks/auto_tiebreaks.py AUTO [AUTO ...] [--pairs PAIR ...] [--also YAML ...]

``method: auto`` keeps the candidate with the best mean validation score over its draws of
held-out identities (``methods/auto.py``, ``choose``).  Where the leading candidates are
within a point of each other held out (LFW), which of them is the test part's best moves
with the identities drawn.  For each finished pair and each named ``auto`` experiment this
tool reads the stored validation scores of every candidate on every draw and chooses again
by

- ``mean``: the best mean over the draws (the rule in use, ``auto.choose`` itself);
- ``median``, ``min``: the best median, the best worst draw;
- ``mean-sd``: the best mean less the draws' standard deviation;
- ``rank``: the best mean rank over the draws (ties: the mean);
- ``consensus-D``: among the candidates within D points of the best mean, the one whose
  clusters of the test part agree best (mean of F_P and F_B, one clustering scored against
  the other) with every other candidate's: a tie-break that reads the test part's clusters
  but no test label;
- ``mean-K-draws``: the rule in use on the first K draws only, for each K of 1 and 3 below
  the draws stored (draw f holds out the identities of ``validation.seed`` + f, so the first
  K draws are what ``validation.folds: K`` would have drawn);

and scores each choice by the candidate's own result on the test part (points of the mean of
F_P and F_B below the best candidate's; reads the test labels, a diagnostic).  Prints each
pair's choices, then per rule the mean gap, the worst and how many pairs are more than half a
point below.  Nothing is trained or written.  Run from the repository root.
"""

from __future__ import annotations

import itertools
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
import evaluate

from facecluster.core import io
from facecluster.core.metrics import evaluate as score_against
from facecluster.methods.auto import choose

BANDS = (0.5, 1.0, 2.0)
DRAWS = (1, 3)  # mean-K-draws


def by_draws(folds: dict[str, list[float]], statistic) -> str:
    """The candidate whose per-draw scores (points) give the largest ``statistic``; the
    first listed on a tie, as ``auto.choose``."""
    return max(folds, key=lambda c: statistic(folds[c]))


def by_rank(folds: dict[str, list[float]]) -> str:
    """The candidate with the best (lowest) mean rank over the draws; candidates tied on a
    draw share their mean place, and a tie in rank goes to the best mean score."""
    draws = len(next(iter(folds.values())))
    rank = dict.fromkeys(folds, 0.0)
    for d in range(draws):
        for c in folds:
            above = sum(folds[o][d] > folds[c][d] for o in folds)
            tied = sum(folds[o][d] == folds[c][d] for o in folds)
            rank[c] += above + (tied - 1) / 2
    return min(folds, key=lambda c: (rank[c], -statistics.mean(folds[c])))


def by_consensus(folds: dict[str, list[float]], agreement: dict, band: float) -> str:
    """Among the candidates within ``band`` points of the best mean, the one whose test
    clusters agree best with every other candidate's (``agreement[a, b]``, points)."""
    means = {c: statistics.mean(v) for c, v in folds.items()}
    top = max(means.values())
    near = [c for c in folds if means[c] >= top - band]
    if len(near) == 1:
        return near[0]
    return max(near, key=lambda c: statistics.mean(agreement[c, o] for o in folds if o != c))


def main(argv=None) -> int:
    args, plan = evaluate.matrix_arguments(__doc__, argv)
    results = evaluate.collect(plan)
    gaps: dict[str, list[float]] = {}
    for dataset, row in results.items():
        for experiment in args.experiments:
            if experiment not in row:
                continue
            outcome = row[experiment]["outcome"]
            attrs = io.read_attrs(outcome.clusters)
            stored = attrs["validation_folds"]
            folds = {c: [100 * v for v in values] for c, values in stored.items()}
            inputs = plan.job(outcome.clusters).inputs
            truth = io.labels_of(inputs["features"])
            labels = {c: io.read_array(inputs[c], "labels") for c in folds}
            test = {c: 100 * evaluate.metrics_mean_f(score_against(truth, labels[c]))
                    for c in folds}
            agreement = {}
            for a, b in itertools.combinations(folds, 2):  # F_P and F_B are symmetric
                agreement[a, b] = agreement[b, a] = 100 * evaluate.metrics_mean_f(
                    score_against(labels[b], labels[a]))
            picks = {"mean": choose(stored, len(next(iter(stored.values()))))[0],
                     "median": by_draws(folds, statistics.median),
                     "min": by_draws(folds, min),
                     "mean-sd": by_draws(folds, lambda v: statistics.mean(v)
                                         - (statistics.stdev(v) if len(v) > 1 else 0.0)),
                     "rank": by_rank(folds)}
            picks.update({f"consensus-{b:g}": by_consensus(folds, agreement, b) for b in BANDS})
            draws = len(next(iter(stored.values())))
            picks.update({f"mean-{k}-draws": choose({c: v[:k] for c, v in stored.items()}, k)[0]
                          for k in DRAWS if k < draws})
            chosen = (attrs.get("chosen") or {}).get("choice")
            if picks["mean"] != chosen:
                print(f"{dataset} {experiment}: the stored choice is {chosen}, the stored "
                      f"scores' {picks['mean']}", file=sys.stderr)
            best = max(test.values())
            cells = []
            for rule, pick in picks.items():
                gaps.setdefault(rule, []).append(test[pick] - best)
                cells.append(f"{rule} {pick} {test[pick] - best:+.1f}")
            print(f"{dataset} {experiment} (test: " + ", ".join(
                f"{c} {v:.1f}" for c, v in sorted(test.items(), key=lambda e: -e[1]))
                + "): " + " | ".join(cells))
    for rule, values in gaps.items():
        if values:
            print(f"{rule}: mean {statistics.mean(values):+.2f}, worst {min(values):+.1f}, "
                  f"{sum(v < -0.5 for v in values)} of {len(values)} pairs below −0.5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
