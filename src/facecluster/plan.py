"""From a validated configuration to artifact paths.

Every stage's output path names the parameters it depends on, and nothing
else, so that changing a downstream parameter never moves an upstream
artifact, and two experiments that agree on a stage share its artifact.
Small parameters appear readably in the path (``threshold-0.6``); a stage
with many parameters is named by a short hash of them (``knn-k80-1a2b3c4d``),
and the parameters are stored inside the artifact.

Layout under ``results`` (C is a candidate-list folder: ``{knn}`` in the
original space, ``{knn}/ss-{η}`` in the structure space)::

    {dataset}/{part}/features.zarr, manifest.json          ingest
    {dataset}/{part}/{knn}/knn.h5                          kNN graph
    {dataset}/{part}/{knn}/threshold-{τ}/clusters.h5       baseline clusters
    {dataset}/train/{knn}/threshold-auto/calibration.json  τ calibrated on train (τ: auto)
    {dataset}/{part}/{knn}/ss-{η}/structure.h5             structure space
    {dataset}/train/C/koff-b{β}/koff.h5                    k_off labels
    {dataset}/train/C/koff-b{β}/filter-{hash}/filter.pt    adaptive filter
    {dataset}/{part}/C/and-b{β}-{hash}/k_hat.h5, graph.h5  filter inference, adaptive graph
    {dataset}/{part}/C/graph-{builder}-{v}/graph.h5        ablation graphs (Table 9)
    {graph folder}/gcn-{hash}/gcn.pt                       GCN (train part)
    {graph folder}/gcn-{hash}/embedding.zarr               GCN embedding (test part)
    {graph folder}/gcn-{hash}/link-{c|k}{k}-{θ|auto}/clusters.h5  linkage (c: over the candidates, k: a search)
    {graph folder}/cut-{τ}/clusters.h5                     graph-cut (Table 8)
    {graph folder}/gcn-{hash}/r2/{knn}/...                 second round (Table 10): the
                                                           same layout over the embeddings
    {dataset}/bundles/{experiment}/                        trained filter + GCN, for new faces
    .../clusters.tsv, metrics.json                         export and scores
    summary.tsv, summary.md                                every experiment

Rules whose inputs cannot be read off their output path (the Ada-NETS stages)
find them in ``Plan.jobs``, keyed by output path.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

KNN_DEFAULTS = {
    "k": 80, "index": "auto", "exact_max_n": 20000, "nlist": 0, "nprobe": 0, "pq_m": 0,
    "refine_factor": 10, "hnsw_m": 32, "ef_construction": 80, "ef_search": 128,
    "train_size": 0, "block_size": 4096,
    "recall_sample": 1000, "seed": 0, "shards": 1,
}

# Keys that change how a result is computed, not what it is: left out of the tag.
# (A sharded search writes the same artifact as one search: tests/test_knn.py.)
KNN_RUNTIME_KEYS = ("block_size", "shards")


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


def threshold_tag(value, tolerance: float) -> str:
    """A θ or τ as it reads in a path: the number, or for ``auto`` 'auto' with its
    tolerance ('auto-tol0.01'; 'auto' alone when the tolerance is 0)."""
    if value != "auto":
        return number_tag(value)
    return f"auto-tol{number_tag(tolerance)}" if tolerance else "auto"


def dataset_parts(dataset: dict) -> list[str]:
    """``test`` always; ``train`` when the dataset can provide labeled training data."""
    if "generator" in dataset or dataset.get("split") or dataset.get("train"):
        return ["train", "test"]
    return ["test"]


def ingest_spec(dataset: dict, part: str) -> dict:
    """What the ingest of one part depends on: the dataset's settings, without the
    training subsample for the test part (changing it must not re-ingest the test part)."""
    if part == "train":
        return dataset
    return {key: value for key, value in dataset.items() if key != "train_subsample"}


# knn_threshold with threshold: auto takes the largest τ whose score on the train part is
# within this of the best (baseline.plateau_top), as Ada-NETS's θ auto does.
THRESHOLD_TOLERANCE = 0.01

ADANETS_DEFAULTS = {
    "structure_space": True,   # SS: re-rank candidates by κ (Eq. 2)
    "eta": 0.3,                # η, weight of cosine in κ
    "graph": "adaptive",       # adaptive (AND, Eq. 6-7) | knn | threshold | chain (Table 9)
    "graph_k": 80,             # neighbours kept by the knn builder
    "graph_threshold": 0.6,    # cosine threshold of the threshold and chain builders
    "beta": 0.5,               # β of the quality criterion Q (Eq. 3)
    "filter": {},              # adaptive-filter parameters (adaptive_filter.DEFAULTS)
    "train_graph": "predicted",  # GCN training graph: predicted k̂_off | true k_off labels
    "gcn": {},                 # GCN parameters (gcn.DEFAULTS)
    "clustering": "gcn",       # gcn: embed and link | graph_cut: no GCN (Table 8)
    "theta": "auto",           # θ, linkage threshold on the GCN embeddings; auto: chosen on
                               # held-out training identities (gcn.val_fraction)
    "theta_tolerance": 0.01,   # auto: the largest θ whose held-out score is within this
                               # of the best (gcn.tolerant_theta)
    "linkage_k": 80,           # neighbours per vertex the linkage links across
    "linkage_neighbours": "candidates",  # candidates: the kNN candidates, scored by their
                               # embeddings (linear in N) | embedding: a kNN search in the
                               # embedding space, as the paper (see linkage.py)
    "cut_threshold": 0.6,      # graph_cut: edges with cosine below this are cut
    "seed": 0,
    # A second round (Table 10): the whole method again on the GCN embeddings of both
    # splits; the keys given here override the first round's (e.g. {theta: 0.99}).
    "second_round": None,
}


@dataclass
class Job:
    """Inputs and parameters of one job whose output path cannot tell them."""

    rule: str
    inputs: dict
    params: dict


@dataclass
class Result:
    """One experiment on one dataset: where its clusters and scores land."""

    dataset: str
    experiment: str
    method: str
    params: dict
    clusters: str
    metrics: str
    graph: str | None = None   # the built graph, whose quality (SNR, Q) the summary reports


@dataclass
class Plan:
    results: str
    knn: dict[str, dict] = field(default_factory=dict)     # tag -> kNN parameters
    outcomes: list[Result] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)     # output path -> job
    bundles: list[str] = field(default_factory=list)       # model bundles `all` exports

    def add_job(self, output: str, rule: str, inputs: dict, params: dict) -> None:
        job = Job(rule, inputs, params)
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

    @property
    def summary_tsv(self) -> str:
        return f"{self.results}/summary.tsv"

    @property
    def summary_md(self) -> str:
        return f"{self.results}/summary.md"

    def features(self, dataset: str, part: str) -> str:
        return f"{self.results}/{dataset}/{part}/features.zarr"


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


def expand_sweeps(experiments: dict) -> tuple[dict, dict[str, list[str]]]:
    """Experiments with their ``sweep:`` expanded: one variant per combination.

    ``sweep: {beta: [0.5, 1], gcn.lr: [0.1, 0.01]}`` in experiment ``s`` gives the
    variants ``s.beta-0.5.gcn.lr-0.1`` … ``s.beta-1.gcn.lr-0.01``, each the
    experiment with those keys set (dotted keys reach into sections).  Variants are
    ordinary experiments: the plan shares every artifact they agree on.  Returns
    (experiments by name, sweep name -> its variant names).
    """
    expanded: dict[str, dict] = {}
    groups: dict[str, list[str]] = {}
    for name, exp in experiments.items():
        sweep = exp.get("sweep")
        if not sweep:
            expanded[name] = exp
            continue
        base = {key: value for key, value in exp.items() if key != "sweep"}
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
    return expanded, groups


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
    all_experiments, sweeps = expand_sweeps(config["experiments"])
    experiments = _check_names("experiments", run.get("experiments"), all_experiments, sweeps)
    plan = Plan(results=str(config.get("results", "results")).rstrip("/"))
    for ds in datasets:
        for name in experiments:
            exp = all_experiments[name]
            kp = knn_params(config, exp)
            ktag = knn_tag(kp)
            plan.knn[ktag] = kp
            base = f"{plan.results}/{ds}/test/{ktag}"
            method = exp["method"]
            graph = None
            if method == "knn_threshold":
                if exp["threshold"] == "auto" and "train" not in dataset_parts(config["datasets"][ds]):
                    raise ConfigError(f"experiment {name}: threshold 'auto' is calibrated on "
                                      f"labeled training data, and dataset {ds} has no train "
                                      f"part: give it `split:` or `train:`, or a number")
                tolerance = exp.get("threshold_tolerance", THRESHOLD_TOLERANCE)
                tag = threshold_tag(exp["threshold"], tolerance)
                leaf = f"{base}/threshold-{tag}"
                params = {"threshold": exp["threshold"], "k": kp["k"]}
                if exp["threshold"] == "auto":
                    params["threshold_tolerance"] = tolerance
            elif method == "adanets":
                if "train" not in dataset_parts(config["datasets"][ds]):
                    raise ConfigError(f"experiment {name} (adanets) needs labeled training data, "
                                      f"and dataset {ds} has no train part: give it `split:` or "
                                      f"`train:`")
                leaf, graph, params = _plan_adanets(plan, ds, name, ktag, kp,
                                                    {**ADANETS_DEFAULTS, **exp})
            else:  # the schema admits no other method
                raise ConfigError(f"experiments.{name}: unknown method {method!r}")
            plan.outcomes.append(Result(ds, name, method, params, f"{leaf}/clusters.h5",
                                        f"{leaf}/metrics.json", graph))
    return plan


def _plan_adanets(plan: Plan, ds: str, name: str, ktag: str, kp: dict,
                  exp: dict) -> tuple[str, str, dict]:
    """Add the Ada-NETS jobs of one experiment; return (leaf folder, test graph, summary params)."""
    r = plan.results
    first = {part: (plan.features(ds, part), f"{r}/{ds}/{part}/{ktag}") for part in ("train", "test")}
    leaf, graph, summary, embeddings = _plan_round(plan, ds, name, first, exp,
                                                   with_bundle=True,
                                                   embed_train=exp["second_round"] is not None)
    if exp["second_round"] is None:
        return leaf, graph, summary
    # Round two: the GCN embeddings of both splits are the features; a kNN graph over them
    # (exact or not, as the first round's) and the whole method again below it.
    second = {}
    for part, features in embeddings.items():
        knn_dir = f"{Path(features).parent}/r2/{ktag}"
        plan.add_job(f"{knn_dir}/knn.h5", "knn_embedding", {"features": features}, kp)
        second[part] = (features, knn_dir)
    exp2 = {**exp, **exp["second_round"], "second_round": None}
    leaf, graph, summary2, _ = _plan_round(plan, ds, name, second, exp2, with_bundle=False,
                                           embed_train=False)
    return leaf, graph, {"round": 2, **summary2}  # the scores are the second round's


def _plan_round(plan: Plan, ds: str, name: str, sources: dict, exp: dict, with_bundle: bool,
                embed_train: bool) -> tuple[str, str, dict, dict]:
    """One round of Ada-NETS over ``sources`` (part -> (features, kNN folder)); returns
    (leaf folder, test graph, summary params, part -> GCN embedding)."""
    r = plan.results
    kp = plan.knn[Path(sources["test"][1]).name]

    def feats(part):
        return sources[part][0]

    def cands(part):
        """The candidate-list artifact: structure space (SS) or the original kNN."""
        base = sources[part][1]
        knn_file = f"{base}/knn.h5"
        if not exp["structure_space"]:
            return base, knn_file
        folder = f"{base}/ss-{number_tag(exp['eta'])}"
        plan.add_job(f"{folder}/structure.h5", "structure", {"knn": knn_file},
                     {"eta": exp["eta"]})
        return folder, f"{folder}/structure.h5"

    beta = number_tag(exp["beta"])
    filter_cfg = {**exp["filter"], "seed": exp["seed"]}
    ftag = short_hash(filter_cfg)
    train_dir, train_cands = cands("train")
    koff = f"{train_dir}/koff-b{beta}/koff.h5"
    model = f"{train_dir}/koff-b{beta}/filter-{ftag}/filter.pt"

    def graph_dir(part):
        """Build (and plan) the graph of one part; return its folder."""
        folder, cand_file = cands(part)
        builder = exp["graph"]
        if builder == "adaptive":
            gdir = f"{folder}/and-b{beta}-{ftag}"
            plan.add_job(f"{gdir}/k_hat.h5", "filter_infer",
                         {"model": model, "features": feats(part), "cands": cand_file},
                         {"beta": exp["beta"]})
            params = {"builder": "adaptive", "beta": exp["beta"]}
            inputs = {"cands": cand_file, "features": feats(part), "k_hat": f"{gdir}/k_hat.h5"}
        else:
            value = exp["graph_k"] if builder == "knn" else exp["graph_threshold"]
            gdir = f"{folder}/graph-{builder}-{number_tag(value)}"
            params = {"builder": builder,
                      ("k" if builder == "knn" else "threshold"): value}
            inputs = {"cands": cand_file, "features": feats(part)}
        plan.add_job(f"{gdir}/graph.h5", "graph", inputs, params)
        return gdir

    if exp["graph"] == "adaptive" or exp["train_graph"] == "true":
        plan.add_job(koff, "koff", {"cands": train_cands, "features": feats("train")},
                     {"beta": exp["beta"]})
    if exp["graph"] == "adaptive":
        plan.add_job(model, "filter_train",
                     {"cands": train_cands, "features": feats("train"), "koff": koff},
                     {"filter": filter_cfg, "seed": exp["seed"], "beta": exp["beta"]})
    test_graph = graph_dir("test")
    summary = {"ss": exp["structure_space"], "graph": exp["graph"], "beta": exp["beta"]}
    if exp["clustering"] == "graph_cut":
        leaf = f"{test_graph}/cut-{number_tag(exp['cut_threshold'])}"
        plan.add_job(f"{leaf}/clusters.h5", "graph_cut",
                     {"graph": f"{test_graph}/graph.h5", "features": feats("test")},
                     {"threshold": exp["cut_threshold"]})
        summary["cut"] = exp["cut_threshold"]
        return leaf, f"{test_graph}/graph.h5", summary, {}

    if exp["train_graph"] == "true":
        train_graph = f"{train_dir}/koff-b{beta}"
        plan.add_job(f"{train_graph}/graph.h5", "graph",
                     {"cands": train_cands, "features": feats("train"), "k_hat": koff},
                     {"builder": "adaptive", "beta": exp["beta"]})
    else:
        train_graph = graph_dir("train")
    # The validation that picks θ links as the test linkage will.
    gcn_params = {"val_neighbours": exp["linkage_neighbours"], **exp["gcn"]}
    gcn_cfg = {**gcn_params, "seed": exp["seed"], "train_graph": exp["train_graph"]}
    gtag = f"gcn-{short_hash(gcn_cfg)}"
    gcn_model = f"{train_graph}/{gtag}/gcn.pt"
    plan.add_job(gcn_model, "gcn_train",
                 {"graph": f"{train_graph}/graph.h5", "features": feats("train"),
                  "cands": train_cands},
                 {"gcn": gcn_params, "seed": exp["seed"]})
    embedding = f"{test_graph}/{gtag}/embedding.zarr"
    plan.add_job(embedding, "embed",
                 {"model": gcn_model, "graph": f"{test_graph}/graph.h5", "features": feats("test")},
                 {})
    embeddings = {"test": embedding}
    if embed_train:
        embeddings["train"] = f"{train_graph}/{gtag}/embedding.zarr"
        plan.add_job(embeddings["train"], "embed",
                     {"model": gcn_model, "graph": f"{train_graph}/graph.h5",
                      "features": feats("train")}, {})
    if exp["graph"] == "adaptive" and with_bundle:
        # The trained models as one folder, to cluster unlabeled faces (facecluster cluster).
        bundle = f"{r}/{ds}/bundles/{name}"
        plan.add_job(bundle, "bundle", {"filter": model, "gcn": gcn_model},
                     {"k": kp["k"], "knn": {k: v for k, v in kp.items() if k != "k"},
                      "structure_space": exp["structure_space"], "eta": exp["eta"],
                      "theta": exp["theta"], "theta_tolerance": exp["theta_tolerance"],
                      "linkage_k": exp["linkage_k"],
                      "linkage_neighbours": exp["linkage_neighbours"]})
        plan.bundles.append(bundle)
    link_inputs = {"embedding": embedding, "features": feats("test")}
    if exp["theta"] == "auto":  # θ chosen by the GCN's validation, stored in its checkpoint
        link_inputs["model"] = gcn_model
        if float((exp["gcn"] or {}).get("val_fraction", 1)) == 0:
            raise ConfigError(f"experiments.{name}: theta 'auto' needs the GCN's validation, "
                              f"and gcn.val_fraction is 0")
    theta_tag = threshold_tag(exp["theta"], exp["theta_tolerance"])
    # link-k… searches the embedding space, link-c… scores the kNN candidates.
    search = "k" if exp["linkage_neighbours"] == "embedding" else "c"
    if search == "c":
        link_inputs["cands"] = cands("test")[1]
    leaf = f"{test_graph}/{gtag}/link-{search}{exp['linkage_k']}-{theta_tag}"
    plan.add_job(f"{leaf}/clusters.h5", "link", link_inputs,
                 {"theta": exp["theta"], "k": exp["linkage_k"],
                  "neighbours": exp["linkage_neighbours"],
                  **({"theta_tolerance": exp["theta_tolerance"]} if exp["theta"] == "auto" else {})})
    summary["theta"] = exp["theta"]
    return leaf, f"{test_graph}/graph.h5", summary, embeddings
