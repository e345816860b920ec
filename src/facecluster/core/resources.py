"""What a job asks a cluster for: memory and runtime sized from the data, and a GPU for
the stages that can use one.

The rules (``rules/common.smk``) call these functions from their ``resources:``; they are
plain functions of the configuration, the stage's declared sizes and the ingest manifest,
so the sizing is tested without Snakemake.  A local run ignores everything here but
``mem_mb`` and ``runtime``, which it only records.

Sizes scale with F, the size of a dataset part's features in MiB (N·D·4 bytes): every
stage's memory is a base plus a multiple of F.  The slopes were fitted to this project's
benchmark files (peak RSS on 2 threads, D = 256, k = 80, 10,000 to 100,000 faces) and then
about doubled; runtimes to the same files and to the MS1M-scale timings in FACTS.md
(e.g. 584k faces: IVF search about 8 min, filter inference about 21 min on 2 CPUs).
A retry (``--retries``) multiplies both by the attempt number.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024



@dataclass(frozen=True)
class Sizing:
    """What one kind of job asks for: memory (MiB, MiB per MiB of F), runtime (minutes,
    minutes per MiB of F) and whether it can use a GPU.  A method's ``Stage`` declares the
    same three attributes, so ``job_size`` and ``placement`` take either."""

    memory: tuple[float, float]
    runtime: tuple[float, float]
    gpu: bool = False


# The core's own stages; each method's stages declare theirs (core.contract.Stage).
CORE_STAGES: dict[str, Sizing] = {
    "ingest":  Sizing((1000, 3), (10, 0.02)),
    "knn":     Sizing((1000, 6), (10, 0.10), gpu=True),
    "refine":  Sizing((1000, 8), (10, 0.05)),
    "metrics": Sizing((1000, 2), (10, 0.02)),
    "summary": Sizing((1000, 0), (5, 0.0)),
    "report":  Sizing((1000, 4), (10, 0.05)),
    "photos":  Sizing((1500, 0), (60, 0.0)),  # a shard of photos: dlib's models, one photo
}


def core_stage(name: str) -> Sizing:
    try:
        return CORE_STAGES[name]
    except KeyError:
        raise ValueError(f"no resource sizes for core stage {name!r}; known: "
                         f"{sorted(CORE_STAGES)}") from None


# The `slurm:` configuration section and its defaults (config/config.yaml documents it).
SLURM_DEFAULTS = {
    "gpu": True,             # GPU stages ask for a GPU; false runs every stage on CPU nodes
    "gpu_gres": "gpu:1",     # --gres of a GPU job
    "gpu_partition": None,   # partition of GPU jobs (None: the cluster's default)
    "gpu_constraint": None,  # --constraint of GPU jobs (node features)
    "cpu_partition": None,   # partition of every other job
    "cpu_constraint": None,
}


def features_mib(n: int, dim: int) -> float:
    """F: the size of N float32 features of dimension D, in MiB."""
    return n * dim * 4 / MIB


def _path_mib(path: Path) -> float:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / MIB
    return path.stat().st_size / MIB if path.exists() else 0.0


def part_features_mib(config: dict, results: str | Path, dataset: str, part: str) -> float:
    """F of one dataset part: from its ingest manifest once ingest has run, estimated from
    the configuration before (the generator's size, or the input file's size)."""
    manifest = Path(results) / dataset / part / "manifest.json"
    if part[:4] in ("fit-", "val-"):  # a share of the train part: sized as all of it
        part = "train" if not manifest.exists() else part
    if manifest.exists():
        meta = json.loads(manifest.read_text())
        return features_mib(int(meta["n"]), int(meta["dim"]))
    try:
        spec = config["datasets"][dataset]
    except KeyError:
        raise ValueError(f"no dataset {dataset!r} in the configuration") from None
    if "generator" in spec:
        from .synthetic import generator_params

        gen = spec["generator"]
        params = generator_params(gen.get("preset", "small"), dim=gen.get("dim", 256),
                                  **(gen.get("overrides") or {}))
        return features_mib(params[f"n_{part}"], params["dim"])
    if "images" in spec and not (part == "train" and spec.get("train")):
        # Photos: about 1.2 faces of 128 float32 each (README: Your photos).
        from .photos import list_photos

        return features_mib(int(1.2 * len(list_photos(spec["images"]))) + 1, 128)
    source = spec.get("train") if part == "train" and spec.get("train") else spec.get("input")
    if not source:
        raise ValueError(f"dataset {dataset!r} has neither `generator` nor `input`")
    # A file of float features is about its own size in memory (float64 or compressed
    # files overestimate, which errs on the safe side).
    return _path_mib(Path(source["path"]))


def job_size(stage, f_mib: float, attempt: int = 1) -> dict[str, int]:
    """``mem_mb`` and ``runtime`` (minutes) of one job of ``stage`` (a ``Sizing`` or a
    method's ``Stage``) over F = ``f_mib``; a retry multiplies both by its attempt."""
    (mem_base, mem_slope), (time_base, time_slope) = stage.memory, stage.runtime
    if f_mib < 0 or not math.isfinite(f_mib):
        raise ValueError(f"features size must be a finite size ≥ 0 MiB, got {f_mib!r}")
    attempt = max(1, int(attempt))
    return {"mem_mb": int(math.ceil(mem_base + mem_slope * f_mib)) * attempt,
            "runtime": int(math.ceil(time_base + time_slope * f_mib)) * attempt}


def slurm_settings(config: dict) -> dict:
    """The ``slurm:`` section of ``config`` over its defaults; unknown keys are an error."""
    section = config.get("slurm") or {}
    unknown = sorted(set(section) - set(SLURM_DEFAULTS))
    if unknown:
        raise ValueError(f"slurm: unknown key(s) {', '.join(unknown)}; "
                         f"known: {', '.join(SLURM_DEFAULTS)}")
    return {**SLURM_DEFAULTS, **section}


def placement(stage, slurm: dict) -> dict[str, str]:
    """Where a job of ``stage`` (a ``Sizing`` or a ``Stage``) runs on SLURM, as the
    resources the executor plugin reads: ``gres``, ``slurm_partition``, ``constraint``.
    Stages that can use a GPU ask for ``gpu_gres`` on the GPU partition unless ``gpu`` is
    false; unset settings are left out (cluster defaults).
    """
    on_gpu = bool(slurm["gpu"]) and bool(stage.gpu)
    kind = "gpu" if on_gpu else "cpu"
    out = {"slurm_partition": slurm[f"{kind}_partition"], "constraint": slurm[f"{kind}_constraint"]}
    if on_gpu:
        out["gres"] = slurm["gpu_gres"]
    return {key: str(value) for key, value in out.items() if value not in (None, "")}
