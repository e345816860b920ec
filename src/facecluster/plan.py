"""From a validated configuration to artifact paths.

Every stage's output path names the parameters it depends on, and nothing
else, so that changing a downstream parameter never moves an upstream
artifact, and two experiments that agree on a stage share its artifact.
Small parameters appear readably in the path (``threshold-0.6``); a stage
with many parameters is named by a short hash of them (``knn-k80-1a2b3c4d``),
and the parameters are stored inside the artifact.

Layout under ``results``::

    {dataset}/{part}/features.zarr, manifest.json          ingest
    {dataset}/{part}/{knn}/knn.h5                          kNN graph
    {dataset}/{part}/{knn}/threshold-{τ}/clusters.h5       baseline clusters
    .../clusters.tsv, metrics.json                         export and scores
    summary.tsv, summary.md                                every experiment
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

KNN_DEFAULTS = {
    "k": 80, "index": "auto", "exact_max_n": 20000, "nlist": 0, "nprobe": 32, "hnsw_m": 32,
    "ef_construction": 80, "ef_search": 128, "train_size": 0, "block_size": 4096,
    "recall_sample": 1000, "seed": 0,
}

# Keys that change how a result is computed, not what it is: left out of the tag.
KNN_RUNTIME_KEYS = ("block_size",)


class ConfigError(ValueError):
    """A configuration that passes the schema but cannot be run."""


def short_hash(params: dict) -> str:
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(blob.encode()).hexdigest()[:8]


def knn_params(config: dict, experiment: dict | None = None) -> dict:
    """The kNN parameters: defaults, then the config's `knn`, then the experiment's."""
    params = dict(KNN_DEFAULTS)
    params.update(config.get("knn") or {})
    if experiment:
        params.update(experiment.get("knn") or {})
    return params


def knn_tag(params: dict) -> str:
    keyed = {k: v for k, v in params.items() if k not in KNN_RUNTIME_KEYS}
    return f"knn-k{params['k']}-{short_hash(keyed)}"


def number_tag(value: float) -> str:
    """A float as it reads in a path: 0.6 -> '0.6', 1.0 -> '1'."""
    return format(float(value), "g")


def dataset_parts(dataset: dict) -> list[str]:
    """``test`` always; ``train`` when the dataset can provide labeled training data."""
    if "generator" in dataset or dataset.get("split") or dataset.get("train"):
        return ["train", "test"]
    return ["test"]


@dataclass
class Result:
    """One experiment on one dataset: where its clusters and scores land."""

    dataset: str
    experiment: str
    method: str
    params: dict
    clusters: str
    table: str
    metrics: str


@dataclass
class Plan:
    results: str
    datasets: list[str]
    experiments: list[str]
    knn: dict[str, dict] = field(default_factory=dict)     # tag -> kNN parameters
    outcomes: list[Result] = field(default_factory=list)

    @property
    def summary_tsv(self) -> str:
        return f"{self.results}/summary.tsv"

    @property
    def summary_md(self) -> str:
        return f"{self.results}/summary.md"

    def features(self, dataset: str, part: str) -> str:
        return f"{self.results}/{dataset}/{part}/features.zarr"


def _check_names(kind: str, chosen: list[str] | None, known: dict) -> list[str]:
    if chosen is None:
        return list(known)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise ConfigError(f"run.{kind} names {unknown}, which are not defined under `{kind}:` "
                          f"(defined: {sorted(known)})")
    return list(chosen)


def check_inputs(config: dict) -> None:
    """Input files that do not exist, reported before any work starts."""
    run = config.get("run") or {}
    for name in _check_names("datasets", run.get("datasets"), config["datasets"]):
        dataset = config["datasets"][name]
        for role in ("input", "train"):
            spec = dataset.get(role)
            if not spec:
                continue
            for key in ("path", "labels_path"):
                if spec.get(key) and not Path(spec[key]).exists():
                    raise ConfigError(f"datasets.{name}.{role}.{key}: {spec[key]} does not exist")


def make_plan(config: dict) -> Plan:
    """Resolve the configuration into the artifacts `all` needs."""
    run = config.get("run") or {}
    datasets = _check_names("datasets", run.get("datasets"), config["datasets"])
    experiments = _check_names("experiments", run.get("experiments"), config["experiments"])
    plan = Plan(results=str(config.get("results", "results")).rstrip("/"),
                datasets=datasets, experiments=experiments)
    for ds in datasets:
        for name in experiments:
            exp = config["experiments"][name]
            kp = knn_params(config, exp)
            ktag = knn_tag(kp)
            plan.knn[ktag] = kp
            base = f"{plan.results}/{ds}/test/{ktag}"
            method = exp["method"]
            if method == "knn_threshold":
                leaf = f"{base}/threshold-{number_tag(exp['threshold'])}"
                params = {"threshold": exp["threshold"], "k": kp["k"]}
            else:  # the schema admits no other method yet
                raise ConfigError(f"experiments.{name}: unknown method {method!r}")
            plan.outcomes.append(Result(ds, name, method, params, f"{leaf}/clusters.h5",
                                        f"{leaf}/clusters.tsv", f"{leaf}/metrics.json"))
    return plan
