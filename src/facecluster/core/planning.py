"""From a validated configuration to the jobs of the workflow and their artifact paths.

The core plans what every method shares (ingest, the kNN graph, metrics, the summary) and
asks each experiment's method (``registry``) to plan its own stages through a
:class:`PlanContext`.  A job's output path names everything it depends on:

    {results}/{dataset}/{part}/features.zarr, manifest.json       ingest
    {results}/{dataset}/{part}/knn-k{k}-{hash}/knn.h5              the kNN graph
    {parent}/{label}-{hash}/{artifact}                             a method's stage
    {leaf}/clusters.h5, clusters.tsv, metrics.json                 an experiment's result
    {results}/{dataset}/bundles/{experiment}/model                 its trained model
    {results}/summary.tsv, summary.md                              every experiment

A stage's folder sits in the folder of the input it extends (``under``), is named by a
readable ``label`` the method gives (``threshold-0.6``, ``koff-b0.5``), and ends with a hash
of the stage, its code ``version``, its resolved parameters (defaults included) and the
paths of all its inputs.  Since every input path already names what made it, the name of
an artifact changes exactly when anything it depends on changes: a default changed in code,
a new stage version, a parameter upstream.  Two experiments that agree on a stage share its
artifact; a downstream parameter never moves an upstream artifact.

Rules find a job's inputs and parameters in ``Plan.jobs``, keyed by output path.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .params import ParamError


class ConfigError(ValueError):
    """A configuration that cannot be run; the message names the key."""


def short_hash(obj) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(blob.encode()).hexdigest()[:8]


def number_tag(value: float) -> str:
    """A float as it reads in a path: 0.6 -> '0.6', 1.0 -> '1'."""
    return format(float(value), "g")


def threshold_tag(value, tolerance: float) -> str:
    """A threshold as it reads in a path: the number, or for ``auto`` 'auto' with its
    tolerance ('auto-tol0.01'; 'auto' alone when the tolerance is 0)."""
    if value != "auto":
        return number_tag(value)
    return f"auto-tol{number_tag(tolerance)}" if tolerance else "auto"


def dataset_parts(dataset: dict) -> list[str]:
    """``test`` always; ``train`` when the dataset can provide labeled training data."""
    if "generator" in dataset or dataset.get("split") or dataset.get("train"):
        return ["train", "test"]
    return ["test"]


HOLDOUT_PART = re.compile(r"^(fit|val)-[0-9a-f]{8}$")


def holdout_tag(holdout: dict) -> str:
    return short_hash(holdout)


def ingest_spec(dataset: dict, part: str) -> dict:
    """What the ingest of one part depends on: the dataset's settings, without the
    training subsample for the test part (changing it must not re-ingest the test part).
    A validation part ``val-{tag}`` (and the rest of the train part, ``fit-{tag}``) also
    depends on how its identities were held out: ``holdout`` (``Plan.holdouts``)."""
    if part == "train":
        return dataset
    if HOLDOUT_PART.match(part):
        return dataset  # the holdout itself is added by the rule, from Plan.holdouts
    return {key: value for key, value in dataset.items() if key != "train_subsample"}


def knn_params(config: dict, experiment: dict | None = None) -> dict:
    """The resolved kNN settings: defaults (``core.knn.PARAMS``), then the config's
    ``knn``, then the experiment's own ``knn``."""
    from .knn import PARAMS

    merged = {**(config.get("knn") or {}), **((experiment or {}).get("knn") or {})}
    try:
        return PARAMS.resolve(merged, where="knn")
    except ParamError as err:
        raise ConfigError(str(err)) from None


def knn_tag(params: dict) -> str:
    from .knn import RUNTIME_KEYS, VERSION

    keyed = {k: v for k, v in params.items() if k not in RUNTIME_KEYS}
    return f"knn-k{params['k']}-{short_hash({'version': VERSION, **keyed})}"


@dataclass
class Job:
    """One job of a method's stage: its inputs (name -> path) and JSON parameters."""

    method: str
    stage: str
    inputs: dict
    params: dict


@dataclass
class Result:
    """One experiment on one dataset: where its clusters and scores land."""

    dataset: str
    experiment: str
    method: str
    summary: dict
    clusters: str
    metrics: str
    quality: str | None = None
    model: str | None = None
    sweep: str | None = None     # the sweep this experiment is a variant of, if any
    swept: dict = field(default_factory=dict)  # the values the sweep set (e.g. {"seed": 1})


@dataclass
class Plan:
    results: str
    knn: dict[str, dict] = field(default_factory=dict)     # tag -> kNN parameters
    refined: dict[str, dict] = field(default_factory=dict)  # refined features -> refiner spec
    holdouts: dict[str, dict] = field(default_factory=dict)  # tag -> {fraction, seed[, share, draw]}
    outcomes: list[Result] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)     # output path -> job
    method_modules: list[str] = field(default_factory=list)  # extra methods to import
    datasets: dict[str, dict] = field(default_factory=dict)  # name -> as ingest reads it
    photo_jobs: dict[str, "PhotoJob"] = field(default_factory=dict)  # output -> job
    people: dict[str, Result] = field(default_factory=dict)  # people page folder -> result

    def add_job(self, output: str, job: Job) -> None:
        known = self.jobs.get(output)
        if known is not None and known != job:
            raise ConfigError(f"two experiments would write {output} differently: "
                              f"{known} and {job}")
        self.jobs[output] = job

    def job(self, output: str) -> Job:
        try:
            return self.jobs[output]
        except KeyError:
            raise ConfigError(f"{output} is not an artifact of any configured experiment") from None

    def outputs(self, method: str, stage: str) -> list[str]:
        """The output paths of every job of one method's stage, sorted."""
        return sorted(p for p, j in self.jobs.items() if (j.method, j.stage) == (method, stage))

    def lineage(self, output: str) -> dict[str, list[str]]:
        """Every method artifact ``output`` was made from (itself included), by
        ``"{method}.{stage}"``: what a method's report figures read."""
        found: dict[str, list[str]] = {}
        todo, seen = [output], set()
        while todo:
            path = todo.pop()
            if path in seen or path not in self.jobs:
                continue
            seen.add(path)
            job = self.jobs[path]
            found.setdefault(f"{job.method}.{job.stage}", []).append(path)
            todo.extend(job.inputs.values())
        return {key: sorted(paths) for key, paths in found.items()}

    def stages(self) -> list[tuple[str, str]]:
        """(method, stage) of every planned job, without repeats, in plan order."""
        return list(dict.fromkeys((j.method, j.stage) for j in self.jobs.values()))

    @property
    def models(self) -> list[str]:
        return [r.model for r in self.outcomes if r.model]

    @property
    def summary_tsv(self) -> str:
        return f"{self.results}/summary.tsv"

    @property
    def summary_md(self) -> str:
        return f"{self.results}/summary.md"

    def features(self, dataset: str, part: str) -> str:
        return f"{self.results}/{dataset}/{part}/features.zarr"

    def ingest_spec(self, dataset: str, part: str) -> dict:
        """What the ingest of one part of a planned dataset reads and depends on."""
        return ingest_spec(self.datasets[dataset], part)

    def ingest_inputs(self, dataset: str) -> list[str]:
        """Artifacts the ingest of a dataset reads: a photos dataset's faces."""
        return [p for p, j in self.photo_jobs.items() if j.kind == "faces" and
                j.dataset == dataset]

    def photo_outputs(self, kind: str) -> list[str]:
        return sorted(p for p, j in self.photo_jobs.items() if j.kind == kind)


@dataclass
class PhotoJob:
    """One job of the photo stages (``core.photos``): ``kind`` detect, embed (one shard
    each) or faces (the merge), its settings and inputs; ``digest`` the shard's planned
    listing (a detect job reruns when it changes)."""

    kind: str
    dataset: str
    spec: dict
    inputs: list[str]
    shard: int = 0
    shards: int = 1
    digest: str = ""


def plan_photos(plan: Plan, name: str, dataset: dict) -> dict:
    """Plan the photo stages of a dataset with ``images:`` and return the dataset as the
    ingest reads it: ``input`` the merged ``faces.h5``, ``normalise`` ``center_l2`` unless
    given (dlib's vectors share a large common component).  Lists the photos (names and
    sizes only) to give each shard job its digest."""
    from . import photos

    try:
        spec = photos.checked_spec(dataset["images"])
    except photos.PhotoError as err:
        raise ConfigError(f"datasets.{name}.{err}") from None
    spec["cache"] = str(spec["cache"] or f"{plan.results}/photo-cache")
    listing = photos.list_photos(spec)
    if not listing:
        raise ConfigError(f"datasets.{name}.images: no photos under {spec['path']} with the "
                          f"extensions {spec['extensions']}")
    shards = spec["shards"]
    listed = short_hash({k: spec[k] for k in ("path", "recursive", "extensions", "shards")})
    detect_dir = (f"{plan.results}/{name}/photos/detect-"
                  f"{photos.settings_tag(spec, photos.DETECT_KEYS)}-{listed}")
    embed_dir = f"{detect_dir}/embed-{photos.settings_tag(spec, photos.EMBED_KEYS)}"
    faces_dir = f"{embed_dir}/faces-{short_hash({k: spec[k] for k in photos.GATE_KEYS})}"
    pairs = []
    for i in range(shards):
        digest = photos.listing_digest(photos.shard_photos(listing, i, shards))
        detect = f"{detect_dir}/shard-{i}-of-{shards}.h5"
        embed = f"{embed_dir}/shard-{i}-of-{shards}.h5"
        plan.photo_jobs[detect] = PhotoJob("detect", name, spec, [], i, shards, digest)
        plan.photo_jobs[embed] = PhotoJob("embed", name, spec, [detect], i, shards)
        pairs += [detect, embed]
    faces = f"{faces_dir}/faces.h5"
    plan.photo_jobs[faces] = PhotoJob("faces", name, spec, pairs, 0, shards)
    labels = "y" if spec["labels_from"] else None
    effective = {k: v for k, v in dataset.items() if k != "images"}
    effective["input"] = {"path": faces, "features_key": "X", "labels_key": labels,
                          "ids_key": "ids"}
    effective.setdefault("normalise", "center_l2")
    return effective


class PlanContext:
    """What a method's ``plan`` sees of one experiment on one dataset.

    ``features(part)`` and ``knn(part)`` are the core's artifacts of the dataset's
    ``train`` or ``test`` part; ``add`` adds one of the method's stage jobs and returns
    its output path; ``add_model`` the job that exports the trained model.
    """

    def __init__(self, plan: Plan, method, dataset: str, experiment: str, parts: list[str],
                 knn: dict, refine: dict | None = None):
        self.plan = plan
        self.method = method
        self.dataset = dataset
        self.experiment = experiment
        self.parts = parts
        self.knn_params = knn
        self.refine = refine  # {"method": refiner, **its resolved settings}, or None
        self.part_map: dict[str, str] = {}  # logical part -> the part on disk
        self.exports_model = True

    @property
    def results(self) -> str:
        return self.plan.results

    def for_method(self, method) -> "PlanContext":
        """The same experiment on the same data, planning ``method``'s stages: a method
        that runs others (``method: auto``) plans each through one of these."""
        ctx = PlanContext(self.plan, method, self.dataset, self.experiment, self.parts,
                          self.knn_params, self.refine)
        ctx.part_map = dict(self.part_map)
        ctx.exports_model = False  # the experiment's model is its own method's, if any
        return ctx

    def for_validation(self, fraction: float, seed: int = 0, share: float | None = None,
                       draw: int = 0) -> "PlanContext":
        """The same experiment with a validation part built like a test part: a share
        ``fraction`` of the train part's identities held out as ``test`` (part
        ``val-{tag}``), the rest as ``train`` (``fit-{tag}``).  A method planned through it
        is trained on the rest and clusters the held-out identities exactly as it
        clusters a test part: its score there is an honest estimate, comparable between
        methods.  With ``share`` (in (0, 1)) the validation part is a smaller one: whole
        held-out identities drawn (``draw``) while their faces fit in that share of the
        held-out faces (``core.ingest.load_holdout``), clustered by the same trained rest:
        how a method's score moves with the size of the part it clusters."""
        holdout = {"fraction": float(fraction), "seed": int(seed)}
        tag = holdout_tag(holdout)
        self.plan.holdouts[tag] = holdout
        val_tag = tag
        if share is not None:
            if not 0.0 < float(share) < 1.0:
                raise ValueError(f"a validation share must lie in (0, 1), got {share}")
            drawn = {**holdout, "share": float(share), "draw": int(draw)}
            val_tag = holdout_tag(drawn)
            self.plan.holdouts[val_tag] = drawn
        ctx = self.for_method(self.method)
        ctx.part_map = {"train": f"fit-{tag}", "test": f"val-{val_tag}"}
        return ctx

    @property
    def has_train(self) -> bool:
        return "train" in self.parts

    def _part(self, part: str) -> str:
        if part not in self.parts or (self.part_map and "train" not in self.parts):
            raise ConfigError(f"experiment {self.experiment} ({self.method.name}) needs labeled "
                              f"training data, and dataset {self.dataset} has no train part: "
                              f"give it `split:` or `train:`")
        return self.part_map.get(part, part)

    def _refined_dir(self, part: str) -> str:
        """The folder of a part's refined features, beside the kNN graph they come from."""
        from .. import registry

        refiner = registry.get_refiner(self.refine["method"])
        settings = {k: v for k, v in self.refine.items() if k != "method"}
        tag = f"refine-{refiner.name}-" + short_hash(
            {"refiner": refiner.name, "version": refiner.version, "settings": settings})
        physical = self._part(part)
        folder = f"{Path(self._knn_of(self.plan.features(self.dataset, physical))).parent}/{tag}"
        self.plan.refined[f"{folder}/features.zarr"] = {"method": refiner.name, **settings}
        return folder

    def _knn_of(self, features: str) -> str:
        tag = knn_tag(self.knn_params)
        self.plan.knn[tag] = self.knn_params
        return f"{Path(features).parent}/{tag}/knn.h5"

    def features(self, part: str) -> str:
        """The features artifact of a part: ingested, or refined when the experiment says."""
        physical = self._part(part)
        if self.refine:
            return f"{self._refined_dir(part)}/features.zarr"
        return self.plan.features(self.dataset, physical)

    def knn(self, part: str) -> str:
        """The kNN artifact of a part's features (the core's ``knn`` job, shared by every
        method)."""
        return self._knn_of(self.features(part))

    def _relative(self, path: str) -> str:
        try:
            return str(Path(path).relative_to(self.results))
        except ValueError:
            return str(path)

    def add(self, stage: str, inputs: dict, params: dict, under: str, label: str) -> str:
        """Plan a job of ``stage``; return its output path.

        The artifact goes in ``{under}/{label}-{hash}/``, the hash taken over the stage,
        its version, ``params`` and the (results-relative) paths of ``inputs``; ``under``
        is normally the folder of the input the stage extends.
        """
        spec = self.method.stage(stage)
        key = {"stage": f"{self.method.name}.{stage}", "version": spec.version,
               "params": params, "inputs": {k: self._relative(v) for k, v in inputs.items()}}
        output = f"{under.rstrip('/')}/{label}-{short_hash(key)}/{spec.artifact}"
        self.plan.add_job(output, Job(self.method.name, stage, dict(inputs), copy.deepcopy(params)))
        return output

    def add_model(self, stage: str, inputs: dict, params: dict) -> str | None:
        """Plan the export of the experiment's trained model to
        ``{results}/{dataset}/bundles/{experiment}/{artifact}``; None (and nothing planned)
        when the method runs inside another's experiment (``for_method``).  The job also
        gets the ``training_manifest`` input: the ingested train part's manifest, whose
        normalisation the stage records with the model (``StageJob.save_model``)."""
        if not self.exports_model:
            return None
        spec = self.method.stage(stage)
        output = f"{self.results}/{self.dataset}/bundles/{self.experiment}/{spec.artifact}"
        # How the faces it learned from were normalised (StageJob.save_model records it,
        # with the experiment's refinement); a model exported without a train part learned
        # nothing from faces: the test part's mode, not its centre.
        ingested = self.plan.features(self.dataset,
                                      self._part("train" if self.has_train else "test"))
        inputs = {**inputs, "training_manifest": str(Path(ingested).parent / "manifest.json")}
        params = {**params, **({"refine": self.refine} if self.refine else {}),
                  **({} if self.has_train else {"no_train_part": True})}
        self.plan.add_job(output, Job(self.method.name, stage, dict(inputs), copy.deepcopy(params)))
        return output


# ------------------------------------------------------------------ sweeps and names
def _check_names(kind: str, chosen: list[str] | None, known: dict,
                 groups: dict[str, list[str]] | None = None) -> list[str]:
    """The names ``run.{kind}`` selects; a sweep's name (a key of ``groups``) selects
    all of its variants."""
    groups = groups or {}
    if chosen is None:
        return list(known)
    unknown = [name for name in chosen if name not in known and name not in groups]
    if unknown:
        raise ConfigError(f"run.{kind} names {unknown}, which are not defined under `{kind}:` "
                          f"(defined: {sorted(set(known) | set(groups))})")
    return [variant for name in chosen for variant in groups.get(name, [name])]


def _value_tag(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return number_tag(value)


def _set_dotted(target: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    for part in parents:
        child = target.get(part)
        if child is None:
            child = target[part] = {}
        elif not isinstance(child, dict):
            raise ConfigError(f"sweep key {key!r}: {part!r} is not a section")
        target = child
    target[last] = value


def expand_sweeps(experiments: dict) -> tuple[dict, dict[str, list[str]], dict[str, dict]]:
    """Experiments with their ``sweep:`` expanded: one variant per combination.

    ``sweep: {beta: [0.5, 1], gcn.lr: [0.1, 0.01]}`` in experiment ``s`` gives the
    variants ``s.beta-0.5.gcn.lr-0.1`` … ``s.beta-1.gcn.lr-0.01``, each the
    experiment with those keys set (dotted keys reach into sections); ``seeds: [0, 1, 2]``
    is a sweep over ``seed`` (a list, so that a config merged over another replaces it
    where a ``sweep`` section would merge).  Variants are ordinary experiments: the plan
    shares every artifact they agree on.  Returns
    (experiments by name, sweep name -> its variant names, variant -> the values it set).
    """
    expanded: dict[str, dict] = {}
    groups: dict[str, list[str]] = {}
    swept: dict[str, dict] = {}
    for name, exp in experiments.items():
        sweep = dict(exp.get("sweep") or {})
        if exp.get("seeds"):  # seeds: [0, 1, 2] is a sweep over seed
            sweep["seed"] = list(exp["seeds"])
        base = {key: value for key, value in exp.items() if key not in ("sweep", "seeds")}
        if not sweep:
            expanded[name] = base
            continue
        keys = list(sweep)
        groups[name] = []
        for values in itertools.product(*(sweep[key] for key in keys)):
            variant = copy.deepcopy(base)
            for key, value in zip(keys, values):
                _set_dotted(variant, key, value)
            vname = ".".join([name] + [f"{key}-{_value_tag(v)}" for key, v in zip(keys, values)])
            if vname in experiments or vname in expanded:
                raise ConfigError(f"experiments.{name}: the sweep variant {vname} is also "
                                  f"defined elsewhere")
            expanded[vname] = variant
            groups[name].append(vname)
            swept[vname] = dict(zip(keys, values))
    return expanded, groups, swept


def check_schema(config: dict, schema_path: str | Path) -> None:
    """The configuration against ``schema_path`` (``config/schema.yaml``), each problem on
    one line that names its key: a misspelt setting lists the settings allowed there.
    Raises ConfigError; run before Snakemake's own ``validate``, whose message prints the
    schema of the key as well.  Reads no data."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(k) for k in e.absolute_path])
    problems = []
    for error in errors:
        where = ".".join(str(k) for k in error.absolute_path) or "the top level"
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            extra = [k for k in error.instance if k not in allowed]
            problems.append(f"{where}: {', '.join(map(repr, extra))} is not a setting here "
                            f"(the settings: {', '.join(allowed)})")
        else:
            problems.append(f"{where}: {error.message}")
    if problems:
        raise ConfigError("; ".join(problems))


def check_inputs(config: dict) -> None:
    """Input files that do not exist, reported before any work starts."""
    run = config.get("run") or {}
    for name in _check_names("datasets", run.get("datasets"), config["datasets"]):
        dataset = config["datasets"][name]
        images = dataset.get("images") or {}
        if images.get("path") and not Path(images["path"]).exists():
            raise ConfigError(f"datasets.{name}.images.path: {images['path']} does not exist")
        for role in ("input", "train"):
            spec = dataset.get(role)
            if not spec:
                continue
            for key in ("path", "labels_path"):
                if spec.get(key) and not Path(spec[key]).exists():
                    raise ConfigError(f"datasets.{name}.{role}.{key}: {spec[key]} does not exist")


# Keys of an experiment the core reads; the rest are the method's parameters.
CORE_EXPERIMENT_KEYS = ("method", "knn", "sweep", "seeds", "refine")


def refine_settings(dataset: dict, experiment: dict, where: str) -> dict | None:
    """The feature refinement of one experiment on one dataset: the experiment's ``refine``
    (null: none), else the dataset's; resolved against the refiner's parameters."""
    from .. import registry

    spec = experiment["refine"] if "refine" in experiment else dataset.get("refine")
    if not spec:
        return None
    spec = dict(spec)
    name = spec.pop("method", None)
    try:
        refiner = registry.get_refiner(name)
        return {"method": refiner.name, **refiner.params.resolve(spec, where=f"{where}.refine")}
    except KeyError as err:
        raise ConfigError(f"{where}.refine.method: {err}") from None
    except ParamError as err:
        raise ConfigError(str(err)) from None


def method_settings(name: str, experiment: dict):
    """(method, resolved settings) of one experiment; ConfigError names a bad key."""
    from .. import registry

    try:
        method = registry.get(experiment["method"])
    except KeyError as err:
        raise ConfigError(f"experiments.{name}.method: {err.args[0]}") from None
    given = {k: v for k, v in experiment.items() if k not in CORE_EXPERIMENT_KEYS}
    try:
        return method, method.params.resolve(given, where=f"experiments.{name}")
    except ParamError as err:
        raise ConfigError(str(err)) from None


def make_plan(config: dict) -> Plan:
    """Resolve the configuration into the jobs ``all`` needs."""
    from .. import registry

    modules = list(config.get("method_modules") or [])
    try:
        registry.load_modules(modules)
    except ImportError as err:
        raise ConfigError(f"method_modules: {err}") from None
    run = config.get("run") or {}
    datasets = _check_names("datasets", run.get("datasets"), config["datasets"])
    all_experiments, sweeps, swept = expand_sweeps(config["experiments"])
    sweep_of = {variant: name for name, variants in sweeps.items() for variant in variants}
    experiments = _check_names("experiments", run.get("experiments"), all_experiments, sweeps)
    plan = Plan(results=str(config.get("results", "results")).rstrip("/"),
                method_modules=modules)
    resolved = {name: method_settings(name, all_experiments[name]) for name in experiments}
    for ds in datasets:
        dataset = config["datasets"][ds]
        if "images" in dataset:
            plan.datasets[ds] = plan_photos(plan, ds, dataset)
        else:
            plan.datasets[ds] = {"normalise": "l2", **dataset}
    for ds in datasets:
        parts = dataset_parts(plan.datasets[ds])
        for name in experiments:
            method, settings = resolved[name]
            if method.needs_labels(settings) and "train" not in parts:
                source = plan.datasets[ds].get("input") or {}
                photos = "images" in config["datasets"][ds]
                unlabeled = ("generator" not in plan.datasets[ds]
                             and not source.get("labels_key") and not source.get("labels_path"))
                raise ConfigError(
                    f"experiment {name} ({method.name}) with these settings learns from "
                    f"labeled training data, and dataset {ds} has no train part: " + (
                        "its photos have no labels, so give it `images.labels_from: "
                        "parent_folder` and `split:`, or run methods that need no labels"
                        if photos and unlabeled else
                        "its input names no labels (labels_key, labels_path), so give it a "
                        "labeled `train:` input, or run methods that need no labels"
                        if unlabeled else "give it `split:` or `train:`"))
            refine = refine_settings(plan.datasets[ds], all_experiments[name],
                                     f"experiments.{name}")
            ctx = PlanContext(plan, method, ds, name, parts,
                              knn_params(config, all_experiments[name]), refine)
            outcome = method.plan(ctx, settings)
            if refine:
                outcome.summary = {**outcome.summary, "refine": refine["method"]}
            if not outcome.clusters.endswith("/clusters.h5"):
                raise ConfigError(f"method {method.name} planned {outcome.clusters} as its "
                                  f"result; a result is a clusters.h5")
            leaf = outcome.clusters[: -len("/clusters.h5")]
            result = Result(ds, name, method.name, outcome.summary, outcome.clusters,
                            f"{leaf}/metrics.json", outcome.quality, outcome.model,
                            sweep_of.get(name), swept.get(name, {}))
            plan.outcomes.append(result)
            if "images" in config["datasets"][ds]:
                plan.people[f"{leaf}/people"] = result
    return plan
