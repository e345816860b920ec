"""The method contract: what a clustering method declares so the workflow, the command line
and the Python API can run it without naming it.

A method is one module (or package) under ``facecluster.methods`` that defines ``METHOD``,
a :class:`Method`:

- ``params``: its parameters, defaults, constraints and docs in one place
  (:class:`~facecluster.core.params.Params`);
- ``needs_labels(settings)``: whether those settings need a labeled train part;
- ``stages``: its stages (:class:`Stage`), each a plain function of a :class:`StageJob`
  (named input artifacts in, one artifact out); the workflow makes one rule per stage;
- ``plan(ctx, settings)``: the jobs one experiment needs, added through the
  :class:`~facecluster.core.planning.PlanContext`, and the :class:`Outcome`;
- ``scan`` (optional): the final clusters' scores over the method's threshold, from the
  final stage's inputs (diagnostics on labeled test parts, and the report's curves);
- ``held_out_choice`` (optional): for a threshold chosen on held-out identities clustered
  alone, the value its rule takes for a part of a given size at a given tolerance, from the
  final stage's inputs (the evaluation matrix's diagnostics of the rule);
- ``model``: a :class:`ClusterModel` subclass with ``fit(features, labels)`` and
  ``predict(features) -> labels``, which also serves new unlabeled faces (an untrained
  method's ``fit`` does nothing and its ``predict`` just clusters); ``save`` writes it to a
  folder that ``registry.load_model`` reads back.

The core reads only what is declared here; the registry (``facecluster.registry``) maps a
method name to its module.  Every stage's clusters artifact carries the same attributes
(``method``, the sizes from ``cluster_stats``, ``chosen``: the value of every threshold
chosen on training data), which the summary and the report read without knowing the method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from . import io
from .params import Params

if TYPE_CHECKING:
    from .planning import PlanContext

# Bump when the layout of a saved model folder changes.
MODEL_FORMAT = 1


@dataclass(frozen=True)
class Stage:
    """One stage of a method: a rule of the workflow and a function on artifacts.

    ``artifact`` is the file (or ``.zarr`` / model folder) it writes, named the same in
    every folder; ``run(job)`` computes it.  ``version`` is part of every artifact name of
    the stage: bump it when the stage's code changes what it writes, and the workflow
    rebuilds the stage and what depends on it.  ``threads`` is 1 or ``"all"`` (the cores
    Snakemake gives the job); ``gpu`` asks SLURM for a GPU; ``memory`` is (MiB, MiB per MiB
    of features) and ``runtime`` (minutes, minutes per MiB of features), sized from the
    data a job reads (``core.resources``).  ``cacheable`` stages may be shared between
    workflows through Snakemake's between-workflow cache.  ``table``: the stage writes the
    final clusters (``clusters.h5``), and a ``clusters.tsv`` table beside them.
    """

    name: str
    artifact: str
    run: Callable[["StageJob"], None]
    doc: str
    threads: int | str = 1
    gpu: bool = False
    memory: tuple[float, float] = (1000, 4)
    runtime: tuple[float, float] = (10, 0.02)
    version: int = 1
    cacheable: bool = False
    table: bool = False

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"stage name {self.name!r} must be an identifier")
        if self.threads != "all" and not (isinstance(self.threads, int) and self.threads >= 1):
            raise ValueError(f"stage {self.name}: threads must be an integer ≥ 1 or 'all'")
        if self.table and self.artifact != "clusters.h5":
            raise ValueError(f"stage {self.name}: a stage that writes a table writes clusters.h5")

    @property
    def directory(self) -> bool:
        """Whether the artifact is a folder (a Zarr group or a model)."""
        return self.artifact.endswith(".zarr") or "." not in self.artifact

    @property
    def stem(self) -> str:
        """The artifact's name without suffix: its log is ``{stem}.log``."""
        return self.artifact.split(".")[0]


@dataclass
class StageJob:
    """What a stage function gets: named input artifacts, its parameters, where to write.

    ``inputs`` maps names to paths; ``params`` are the JSON parameters its plan gave it;
    ``out`` is the artifact to write (atomically: ``io`` does); ``threads`` the cores it
    may use; ``table`` the cluster table to write beside ``clusters.h5`` (table stages).
    """

    method: str
    stage: str
    inputs: dict[str, str]
    params: dict
    out: str
    threads: int = 1
    table: str | None = None

    def input(self, name: str) -> str:
        try:
            return self.inputs[name]
        except KeyError:
            raise ValueError(f"{self.method}.{self.stage}: no input named {name!r} "
                             f"(given: {', '.join(self.inputs) or 'none'})") from None

    def save_model(self, model: ClusterModel) -> None:
        """Write ``model`` to ``out`` (its folder, atomically) with how the faces it learned
        from were normalised and their dimension, read from the ``training_manifest`` input
        the core gives every exported model (``PlanContext.add_model``): ``normalise`` and,
        for ``center_l2``, the train part's centre, and the experiment's feature
        refinement (``refine``), which ``facecluster cluster --model`` and
        ``ClusterModel.prepare`` apply to new faces."""
        if "training_manifest" in self.inputs:
            manifest = io.read_json(self.input("training_manifest"))
            model.input_normalise = {
                "normalise": manifest["normalise"],
                "centre": None if self.params.get("no_train_part") else manifest.get("center"),
                "refine": self.params.get("refine")}
            model.dim = int(manifest["dim"])
        model.save(self.out)

    def array(self, name: str, array: str) -> np.ndarray:
        """Array ``array`` of the input artifact ``name``."""
        return io.read_array(self.input(name), array)

    def arrays(self, name: str, arrays: list[str] | None = None) -> dict[str, np.ndarray]:
        return io.read_arrays(self.input(name), arrays)

    def features(self, name: str = "features") -> np.ndarray:
        return self.array(name, "features")

    def labels(self, name: str = "features") -> np.ndarray | None:
        """The identity labels of a features artifact, or None when it has none."""
        return io.labels_of(self.input(name))

    def write_clusters(self, labels: np.ndarray, attrs: dict | None = None,
                       chosen: dict | None = None, features: str = "features",
                       health: list[dict] | None = None) -> None:
        """The clusters artifact (and its table), with the standard attributes: the
        method, ``chosen`` (threshold name → the value chosen on training data), the
        inputs it was made from, the sizes, and ``health``: the findings of the stage
        (``core.health``) and the shared checks on the result: mostly singletons where the
        kNN lists, the ``knn`` or ``cands`` input, hold close neighbours, and a chained
        largest cluster (a sample of the features)."""
        from . import health as checks

        findings = list(health or [])
        # A shared check already among the stage's findings (``auto`` passes on its
        # pick's) is not run again.
        made = {f.get("check") for f in findings}
        lists = next((name for name in ("knn", "cands") if name in self.inputs), None)
        if lists and "mostly_singletons" not in made:
            graph = self.arrays(lists, ["ids", "sims"])
            findings += checks.mostly_singletons(labels, graph["ids"], graph["sims"])
        if "chained_cluster" not in made:
            source = self.input(features)
            findings += checks.chained_cluster(
                labels, lambda rows: io.read_rows(source, "features", rows))
        io.write_clusters(self.out, self.table, labels, self.input(features),
                          {"method": self.method, **(attrs or {}), "chosen": chosen or {},
                           "inputs": self.inputs, "health": findings})


@dataclass
class Outcome:
    """Where one experiment's result lands, as its plan tells the core.

    ``clusters``: the final ``clusters.h5`` (written by a table stage); ``summary``: the
    settings the summary table shows; ``quality``: an artifact whose attributes hold the
    quality of a graph the method built (``snr``, ``q_before``, ``q_after``), if any;
    ``model``: the exported trained model folder, if any (``snakemake bundles``).
    """

    clusters: str
    summary: dict = field(default_factory=dict)
    quality: str | None = None
    model: str | None = None


class ClusterModel:
    """Base of every method's model: ``fit`` on labeled faces, ``predict`` on any faces.

    ``Model(**params)`` validates the parameters against the method's declaration
    (``ParamError`` names a bad one) and resolves the defaults; ``knn`` takes the kNN
    settings (``core.knn.PARAMS``).  Features are float32 arrays of shape (n_faces, D) with
    unit-length rows (``core.ingest.normalise`` makes them).  ``predict`` returns int32
    cluster labels of shape (n_faces,), numbered by each cluster's first face.
    A method without training keeps ``fit`` as it is: it checks the faces and keeps D,
    and warns that the labels go unused.
    ``fit`` and ``predict`` leave torch's process-wide state (random generators,
    deterministic kernels, thread count) as they found it (``core.device.torch_state_kept``).
    """

    method: ClassVar["Method"]   # set by Method
    health: list                 # the last prediction's findings (core.health)

    def __init__(self, knn: dict | None = None, **params):
        from .knn import PARAMS as KNN_PARAMS

        self.params = self.method.params.resolve(params, where=self.method.name)
        self.knn = KNN_PARAMS.resolve(knn or {}, where=f"{self.method.name}.knn")
        self.fitted = not self.method.needs_labels(self.params)
        self.health = []
        self.dim: int | None = None  # D of the faces it was fitted on (None: not fitted)
        # How those faces were normalised and refined, {"normalise", "centre", "refine"},
        # where known (a model the workflow exports: StageJob.save_model); None: unit rows
        # made by the caller.
        self.input_normalise: dict | None = None
        # The refiner of input_normalise["refine"], if any (registry.load_model finds it).
        self.refiner: Refiner | None = None

    def fit(self, features: np.ndarray, labels: np.ndarray) -> "ClusterModel":
        """Learn from labeled faces: (n, D) unit rows and (n,) integer identity labels.
        Raises ValueError on bad features (not 2-D, not finite, rows not unit length:
        ``core.ingest.normalise_rows`` makes them), labels of another length or not
        integers, or, for settings that learn from labels, labels of fewer than two
        identities (a threshold or a model learns where different people part; one
        person's faces cannot show it).  Logs a ``shared_component`` finding
        (``core.health``) as a WARNING, and a WARNING when these settings learn nothing
        from labels (a method without training; a setting fixed instead of ``auto``).  The
        model keeps D (``dim``): ``predict`` refuses faces of another dimension."""
        from .device import torch_state_kept
        from .health import shared_component
        from .progress import log

        _check_features(features, "features")
        labels = np.asarray(labels)
        if labels.shape != (features.shape[0],):
            raise ValueError(f"labels have shape {labels.shape}; expected ({features.shape[0]},)")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be integer identity numbers, got dtype {labels.dtype}")
        if not self.method.needs_labels(self.params):
            log.warning("%s with these settings learns nothing from labels: fit only checks "
                        "the faces and keeps D (`facecluster params %s` says which settings "
                        "take 'auto', chosen on the labels)", self.method.name,
                        self.method.name)
        elif np.unique(labels).size < 2:
            raise ValueError(f"{self.method.name} learns from labels of at least two "
                             f"identities; these {labels.size} faces hold "
                             f"{np.unique(labels).size}")
        shared_component(features, "training features")
        with torch_state_kept():
            self._fit(np.ascontiguousarray(features, dtype=np.float32), labels)
        self.fitted = True
        self.dim = int(features.shape[1])
        return self

    def _fit(self, features: np.ndarray, labels: np.ndarray) -> None:
        """A trained method's learning; untrained methods have none."""

    def predict(self, features: np.ndarray, threads: int = 1) -> np.ndarray:
        """Cluster labels (n,) int32 of (n, D) unit-length ``features``; ``health`` lists
        the findings on them (a shared component, the method's own, and a chained largest
        cluster).  Raises ValueError on bad features (as ``fit``), faces of another D than
        it was fitted on, or an unfitted model whose settings need training."""
        from .device import torch_state_kept
        from .health import chained_cluster, shared_component

        self._check_input(features)
        if not self.fitted:
            raise ValueError(f"{self.method.name} with these settings learns from labeled "
                             f"faces: call fit(features, labels) first")
        features = np.ascontiguousarray(features, dtype=np.float32)
        self.health = shared_component(features, "features")
        with torch_state_kept():
            labels = np.asarray(self._predict(features, threads), dtype=np.int32)
        self.health = [*self.health, *chained_cluster(labels, features)]
        return labels

    def _predict(self, features: np.ndarray, threads: int) -> np.ndarray:
        raise NotImplementedError

    def _check_input(self, features: np.ndarray) -> None:
        """Faces ``predict`` and ``refine`` take: ``_check_features``, and the D fitted on."""
        _check_features(features, "features")
        if self.dim is not None and np.shape(features)[1] != self.dim:
            raise ValueError(f"features have D = {np.shape(features)[1]}; this model was "
                             f"fitted on D = {self.dim}")

    def prepare(self, features: np.ndarray, threads: int = 1) -> np.ndarray:
        """Raw faces (n, D), any scale, as ``predict`` takes them: normalised as the faces
        the model learned from were (``input_normalise``: ``center_l2`` on the training
        centre, ``l2``, ``none``), or to unit rows where that is not recorded, then refined
        as they were (``refine``).  Raises ``core.ingest.IngestError`` (a ValueError) on bad
        features."""
        from .ingest import normalise_rows

        recorded = self.input_normalise or {"normalise": "l2", "centre": None}
        unit = normalise_rows(features, recorded["normalise"], centre=recorded.get("centre"))
        return self.refine(unit, threads)

    def refine(self, features: np.ndarray, threads: int = 1) -> np.ndarray:
        """Unit faces (n, D) refined as the faces the model learned from were, the
        workflow's ``refine`` stage on a part: the recorded refiner (``input_normalise``
        ``refine``, e.g. GFA) over the faces' own kNN graph, built with the model's kNN
        settings; the faces as they are when no refinement is recorded.  Returns (n, D)
        float32 unit rows.  Raises ValueError on bad features (as ``predict``), or when
        the recorded refiner is not ``refiner`` (a model folder not read by
        ``facecluster.load_model``, which sets it)."""
        from .knn import knn_graph
        from .progress import log

        spec = dict((self.input_normalise or {}).get("refine") or {})
        if not spec:
            return features
        self._check_input(features)
        refiner = self.refiner
        if refiner is None or refiner.name != spec["method"]:
            raise ValueError(f"this model learned from faces refined by {spec['method']}; "
                             f"load it with facecluster.load_model, which finds the refiner")
        spec.pop("method")
        ids, sims, _ = knn_graph(features, threads=threads, **self.knn)
        refined, settings = refiner.refine(features, ids, sims, spec)
        log.info("refined the faces as the model's training faces were: %s %s",
                 refiner.name, settings)
        return refined

    # --------------------------------------------------------------- saving
    def save(self, path: str | Path) -> None:
        """Write the model folder atomically: ``model.json`` and the method's own files."""
        if not self.fitted:
            raise ValueError("an unfitted model cannot be saved")
        with io.atomic_path(path) as tmp:
            tmp.mkdir()
            self._save_state(tmp)
            io.write_json(tmp / "model.json", {"method": self.method.name, "format": MODEL_FORMAT,
                                               "params": self.params, "knn": self.knn,
                                               "dim": self.dim,
                                               "input_normalise": self.input_normalise,
                                               "state": self._state_attrs()})

    def _save_state(self, folder: Path) -> None:
        """Write the learned state's files into ``folder``."""

    def _state_attrs(self) -> dict:
        """Small learned values kept in ``model.json`` (e.g. a chosen threshold)."""
        return {}

    @classmethod
    def _load_state(cls, model: "ClusterModel", folder: Path, state: dict) -> None:
        """Read back what ``_save_state`` and ``_state_attrs`` wrote."""


def _check_features(features: Any, what: str) -> None:
    from .ingest import unit_length

    arr = np.asarray(features)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{what} must be a non-empty 2-D array (n_faces, D), got shape "
                         f"{arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{what} must be real numbers, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} hold NaN or infinite values")
    norms = np.concatenate([np.linalg.norm(np.asarray(arr[i:i + 65536], dtype=np.float64),
                                           axis=1) for i in range(0, arr.shape[0], 65536)])
    if not unit_length(norms):
        raise ValueError(f"{what} rows are not unit length (norms {norms.min():.4g} to "
                         f"{norms.max():.4g}): every method compares faces by cosine; "
                         f"normalise them first (facecluster.core.ingest.normalise_rows("
                         f"x, 'l2'), or 'center_l2' with the centre the model's training "
                         f"faces had)")


@dataclass(frozen=True)
class Method:
    """A clustering method as the core sees it (see the module docstring)."""

    name: str
    doc: str
    params: Params
    stages: tuple[Stage, ...]
    plan: Callable[["PlanContext", dict], Outcome]
    model: type[ClusterModel]
    needs_labels: Callable[[dict], bool] = lambda settings: False
    # Optional: how the final clusters move with the method's threshold, for diagnostics
    # and the report: scan(inputs, params, labels) -> [{name: value, "f_pairwise",
    # "f_bcubed"}] over the threshold's grid, from the final stage's inputs and params.
    scan: Callable[[dict, dict, Any], list[dict]] | None = None
    # Optional: held_out_choice(inputs, n_faces, tolerance) -> (name, value) or None: the
    # threshold (named and valued as ``scan``'s curve keys it) that the final stage's rule
    # takes from the held-out ladder among its inputs for a part of ``n_faces`` faces at
    # ``tolerance``; None when these inputs hold no held-out ladder.
    held_out_choice: Callable[[dict, int, float], tuple[str, float] | None] | None = None
    # Optional: the method's own report figures: figures(lineage, folder) -> file names,
    # ``lineage`` mapping "{method}.{stage}" to the artifacts a result was made from.
    figures: Callable[[dict, Any], list[str]] | None = None

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"method name {self.name!r} must be an identifier")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"method {self.name}: two stages share a name: {names}")
        self.model.method = self

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ValueError(f"method {self.name} has no stage {name!r}; its stages: "
                         f"{', '.join(s.name for s in self.stages)}")

    def rule_name(self, stage: Stage | str) -> str:
        """The workflow's rule for ``stage``: ``{method}_{stage}``."""
        return f"{self.name}_{stage if isinstance(stage, str) else stage.name}"


@dataclass(frozen=True)
class Refiner:
    """A feature refiner (``facecluster.refiners``): ``run(features, ids, sims, settings)``
    turns a part's unit features (N, D) and their kNN lists (N, k) into refined unit
    features (N, D); the workflow then builds the refined features' own kNN graph, and any
    method clusters them (``refine: {method: NAME, ...}``)."""

    name: str
    doc: str
    params: Params
    run: Callable[..., np.ndarray]
    version: int = 1

    def refine(self, features: np.ndarray, ids: np.ndarray, sims: np.ndarray,
               settings: dict) -> tuple[np.ndarray, dict]:
        """(refined (N, D) float32, the resolved settings): ``run`` on ``features`` (N, D)
        and their kNN lists ``ids``, ``sims`` (N, k) with ``settings`` resolved against
        ``params`` (``ParamError`` names a bad one).  Raises ValueError when ``run``
        returns another shape than the features'."""
        resolved = self.params.resolve(settings, where=f"refine {self.name}")
        refined = self.run(features, ids, sims, resolved)
        if refined.shape != features.shape:
            raise ValueError(f"{self.name} returned {refined.shape} features for "
                             f"{features.shape}")
        return np.asarray(refined, dtype=np.float32), resolved

