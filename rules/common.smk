# Shared helpers for the rule files: where logs and benchmarks go, how a rule
# finds the parameters its wildcards stand for, and what a job asks a cluster for.

import json
import os
import sys
from pathlib import Path

from facecluster import resources as fc_resources

RESULTS = PLAN.results

try:
    SLURM = fc_resources.slurm_settings(config)
except ValueError as err:
    raise WorkflowError(f"configuration: {err}")

# Snakemake's between-workflow cache (README: Running on SLURM) refuses rules that write a
# benchmark file.  When a cache location is set, the cacheable rules (knn, structure) are
# defined without one; their log still records wall time, CPU time and peak memory.
BETWEEN_WORKFLOW_CACHE = bool(os.environ.get("SNAKEMAKE_OUTPUT_CACHE"))

# Every rule runs one `facecluster` subcommand with its thread pools pinned, through
# the interpreter that runs Snakemake (so an unactivated virtualenv works too).
FACECLUSTER = ("OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} MKL_NUM_THREADS={threads} "
               + f"{sys.executable} -m facecluster")


def as_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def job_parts(wildcards, input):
    """The (dataset, part) pairs a job reads: from its input paths, or its wildcards (ingest)."""
    pairs = set()
    if "dataset" in wildcards.keys() and "part" in wildcards.keys():
        pairs.add((wildcards.dataset, wildcards.part))
    for path in input:
        try:
            parts = Path(path).relative_to(RESULTS).parts
        except ValueError:
            continue  # a user's input file, not an artifact
        if len(parts) > 2 and parts[1] in ("train", "test"):
            pairs.add(parts[:2])
    return pairs


def job_size(stage):
    """Memory and runtime of a `stage` job, sized from the largest dataset part it reads.
    Snakemake evaluates this again just before submitting the job, when the part's ingest
    manifest exists."""
    def size(wildcards, input, attempt):
        f_mib = max((fc_resources.part_features_mib(config, RESULTS, dataset, part)
                     for dataset, part in job_parts(wildcards, input)), default=0.0)
        return fc_resources.job_size(stage, f_mib, attempt)
    return size


def cluster_resources(stage):
    """A rule's `resources:`: mem_mb and runtime from the data, and where the job goes
    on SLURM (partition, constraint, GPU) from the `slurm:` section of the config."""
    size = job_size(stage)
    return {"mem_mb": lambda wildcards, input, attempt: size(wildcards, input, attempt)["mem_mb"],
            "runtime": lambda wildcards, input, attempt: size(wildcards, input, attempt)["runtime"],
            **fc_resources.placement(stage, SLURM)}


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
