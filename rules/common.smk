# Shared helpers for the rule files: where logs and benchmarks go, and how a
# rule finds the parameters its wildcards stand for.

import json
import sys
from pathlib import Path

RESULTS = PLAN.results

# Every rule runs one `facecluster` subcommand with its thread pools pinned, through
# the interpreter that runs Snakemake (so an unactivated virtualenv works too).
FACECLUSTER = ("OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
               + f"{sys.executable} -m facecluster")


def as_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def knn_spec(wildcards):
    try:
        return PLAN.knn[wildcards.knn]
    except KeyError:
        raise WorkflowError(f"no experiment in the configuration uses the kNN graph {wildcards.knn!r}")


wildcard_constraints:
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    part=r"train|test",
    knn=r"knn-k\d+-[0-9a-f]{8}",
    threshold=r"-?[0-9.]+(e-?\d+)?",
