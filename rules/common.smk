# Shared helpers for the rule files: how a job runs facecluster, how a rule finds the
# parameters its wildcards stand for, and what a job asks a cluster for.

import json
import platform
import sys
from pathlib import Path

from facecluster.core import resources as fc_resources

RESULTS = PLAN.results

try:
    SLURM = fc_resources.slurm_settings(config)
except ValueError as err:
    raise WorkflowError(f"configuration: {err}")

# The CPU kernels torch, MKL, oneDNN, OpenBLAS and faiss pick by themselves differ between
# x86-64 machines (AVX2, AVX-512, AMX), and so do their floats: a trained model, and the
# scores, moved by up to 2 points between machines.  `kernels: avx2` (the default) makes
# every library use its AVX2 kernels, which every x86-64 machine of the last decade has;
# `native` lets each pick the fastest for the CPU (README, Reproducibility).
# MKL's STRICT mode and a fixed MKL thread count also make its results independent of
# memory alignment and machine load.
KERNEL_PINS = {
    "ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT", "MKL_DYNAMIC": "FALSE",
    "ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell", "FAISS_SIMD_LEVEL": "AVX2",
}
PINS = (" ".join(f"{k}={v}" for k, v in KERNEL_PINS.items()) + " "
        if config.get("kernels", "avx2") == "avx2" and platform.machine() in ("x86_64", "AMD64")
        else "")

# Every rule runs one `facecluster` subcommand with its thread pools pinned, through the
# interpreter that runs Snakemake (so an unactivated virtualenv works too).  The command
# writes the job's log and its benchmark file (wall time, CPU time, peak memory) itself,
# so that a rule can be cached between workflows, which a `benchmark:` forbids.
FACECLUSTER = (PINS + "OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} "
               "MKL_NUM_THREADS={threads} " + f"{sys.executable} -m facecluster")


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
        if len(parts) > 2 and (parts[1] in ("train", "test") or parts[1][:4] in ("fit-", "val-")):
            pairs.add(parts[:2])
    return pairs


def cluster_resources(stage):
    """A rule's `resources:` for jobs of `stage` (a core Sizing or a method's Stage):
    mem_mb and runtime sized from the largest dataset part a job reads (evaluated again
    just before submission, when the part's ingest manifest exists), and where the job goes
    on SLURM (partition, constraint, GPU) from the `slurm:` section of the config."""
    def size(wildcards, input, attempt):
        f_mib = max((fc_resources.part_features_mib(config, RESULTS, dataset, part)
                     for dataset, part in job_parts(wildcards, input)), default=0.0)
        return fc_resources.job_size(stage, f_mib, attempt)
    return {"mem_mb": lambda wildcards, input, attempt: size(wildcards, input, attempt)["mem_mb"],
            "runtime": lambda wildcards, input, attempt: size(wildcards, input, attempt)["runtime"],
            **fc_resources.placement(stage, SLURM)}


def core_threads(stage):
    return workflow.cores if stage == "all" else stage


wildcard_constraints:
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    part=r"train|test|(fit|val)-[0-9a-f]{8}",
    knn=r"knn-k\d+-[0-9a-f]{8}",
