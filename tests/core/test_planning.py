"""The plan: artifact paths name exactly what each stage depends on, through any method."""

from pathlib import Path

import pytest

from facecluster.core import planning
from facecluster.core.params import Param
from facecluster.core.planning import ConfigError, make_plan
from facecluster.methods.adanets import adaptive_filter


def config(**experiments):
    return {"results": "r", "datasets": {"d": {"generator": {"preset": "tiny"}}},
            "experiments": experiments}


def stage_paths(plan, method, stage):
    return set(plan.outputs(method, stage))


def test_every_stage_folder_ends_with_a_hash_of_what_it_depends_on():
    plan = make_plan(config(t={"method": "knn_threshold", "threshold": 0.5}))
    (path,) = stage_paths(plan, "knn_threshold", "cluster")
    folder = Path(path).parent.name
    assert folder.startswith("knn_threshold-0.5-") and len(folder) == len("knn_threshold-0.5-") + 8
    assert Path(path).parent.parent.name.startswith("knn-k80-")
    job = plan.job(path)
    assert job.inputs["knn"] == str(Path(path).parent.parent / "knn.h5")
    assert plan.outcomes[0].metrics == str(Path(path).parent / "metrics.json")


def test_a_method_that_needs_labels_needs_a_train_part():
    cfg = config(a={"method": "knn_threshold", "threshold": "auto"})
    cfg["datasets"] = {"mine": {"input": {"path": "x.npy"}}}
    with pytest.raises(ConfigError, match=r"learns from labeled training data.*no train part: "
                                          r"its input names no labels"):
        make_plan(cfg)  # not told to add `split:`, which needs labels too
    cfg["datasets"]["mine"]["input"]["labels_key"] = "y"
    with pytest.raises(ConfigError, match=r"no train part: give it `split:` or `train:`"):
        make_plan(cfg)
    cfg["experiments"] = {"a": {"method": "knn_threshold", "threshold": 0.7}}
    assert len(make_plan(cfg).outcomes) == 1, "a fixed τ needs no labels"


def test_photos_without_labels_are_told_how_to_label_them(tmp_path, monkeypatch):
    """A photo folder has no labels key to name: it is told to take each photo's folder
    as its label, and with that, to split; the plan never opens the photos."""
    (tmp_path / "photos" / "alice").mkdir(parents=True)
    (tmp_path / "photos" / "alice" / "a.jpg").touch()
    monkeypatch.chdir(tmp_path)
    cfg = config(a={"method": "knn_threshold", "threshold": "auto"})
    cfg["datasets"] = {"pics": {"images": {"path": "photos"}}}
    with pytest.raises(ConfigError, match=r"no train part: its photos have no labels, so give "
                                          r"it `images.labels_from: parent_folder` and `split:`"):
        make_plan(cfg)
    cfg["datasets"]["pics"]["images"]["labels_from"] = "parent_folder"
    with pytest.raises(ConfigError, match=r"no train part: give it `split:` or `train:`"):
        make_plan(cfg)


def test_unknown_names_in_run_are_refused():
    cfg = config(a={"method": "knn_threshold", "threshold": 0.5})
    cfg["run"] = {"experiments": ["a", "nope"]}
    with pytest.raises(ConfigError, match=r"run.experiments names \['nope'\]"):
        make_plan(cfg)


def test_a_misspelt_setting_is_one_line_that_lists_the_settings_allowed_there():
    """A user's ``feature_key`` got Snakemake's validation message: 30 lines of the input's
    schema, the key's place at the end.  The check before it names the key, the misspelling
    and the settings allowed there, on one line; the default configuration passes."""
    import yaml

    root = Path(__file__).resolve().parents[2]
    schema = root / "config" / "schema.yaml"
    default = yaml.safe_load((root / "config" / "config.yaml").read_text())
    planning.check_schema(default, schema)
    bad = {**default, "datasets": {"mine": {"input": {"path": "f.npz", "feature_key": "X"},
                                            "normalise": "l3"}}}
    with pytest.raises(ConfigError) as error:
        planning.check_schema(bad, schema)
    message = str(error.value)
    assert "\n" not in message
    assert ("datasets.mine.input: 'feature_key' is not a setting here (the settings: path, "
            "format, features_key") in message
    assert "datasets.mine.normalise: 'l3' is not one of" in message


def test_unknown_methods_and_bad_settings_are_named():
    with pytest.raises(ConfigError, match=r"experiments.a.method: unknown method 'nope'; "
                                          r"known: .*adanets.*knn_threshold"):
        make_plan(config(a={"method": "nope"}))
    with pytest.raises(ConfigError, match=r"experiments.a.beta: -1 is less than or equal to "
                                          r"the minimum of 0"):
        make_plan(config(a={"method": "adanets", "beta": -1}))
    with pytest.raises(ConfigError, match=r"experiments.a.gcn: unknown setting 'lrate' "
                                          r"\(known: .*lr"):
        make_plan(config(a={"method": "adanets", "gcn": {"lrate": 0.1}}))
    with pytest.raises(ConfigError, match=r"experiments.a.threshold: 'high' is not valid: "
                                          r"expected a number ≥ -1 and ≤ 1 or 'auto'"):
        make_plan(config(a={"method": "knn_threshold", "threshold": "high"}))
    with pytest.raises(ConfigError, match=r"knn.k: 0 is less than the minimum of 1"):
        make_plan(config(a={"method": "knn_threshold", "knn": {"k": 0}}))


def test_a_sweep_expands_into_variants_that_share_upstream_artifacts():
    plan = make_plan(config(s={"method": "knn_threshold",
                               "sweep": {"threshold": [0.5, 0.6], "knn.k": [10, 20]}}))
    names = [o.experiment for o in plan.outcomes]
    assert names == [f"s.threshold-{t}.knn.k-{k}" for t in ("0.5", "0.6") for k in (10, 20)]
    assert len(plan.knn) == 2, "one kNN graph per k, shared by both thresholds"
    assert len(stage_paths(plan, "knn_threshold", "cluster")) == 4
    assert plan.outcomes[0].summary == {"threshold": 0.5, "k": 10}


def test_dotted_sweep_keys_reach_into_sections_and_run_selects_a_sweep():
    cfg = config(s={"method": "adanets", "gcn": {"hidden": 64}, "theta_seeds": 1,
                    "sweep": {"gcn.lr": [0.1, 0.01]}},
                 t={"method": "knn_threshold", "sweep": {"threshold": [0.5, 0.6]}})
    cfg["run"] = {"experiments": ["s"]}
    plan = make_plan(cfg)
    assert [o.experiment for o in plan.outcomes] == ["s.gcn.lr-0.1", "s.gcn.lr-0.01"]
    trains = [plan.job(p) for p in sorted(stage_paths(plan, "adanets", "gcn_train"))]
    assert sorted(j.params["gcn"]["lr"] for j in trains) == [0.01, 0.1]
    assert all(j.params["gcn"]["hidden"] == 64 for j in trains), "the rest of the section stays"
    cfg["run"] = {"experiments": ["t.threshold-0.6"]}
    (outcome,) = make_plan(cfg).outcomes
    assert Path(outcome.clusters).parent.name.startswith("knn_threshold-0.6-")


def test_ingest_spec_keeps_the_training_subsample_off_the_test_part():
    dataset = {"generator": {"preset": "tiny"}, "train_subsample": {"max_items": 10}}
    assert planning.ingest_spec(dataset, "train") == dataset
    assert planning.ingest_spec(dataset, "test") == {"generator": {"preset": "tiny"}}


def test_schema_accepts_null_split_and_subsample_and_fills_the_subsample_default():
    """`split: null` and `train_subsample: null` are legal (the config template shows them);
    an absent train_subsample gets the default."""
    import yaml
    from snakemake.utils import validate

    repo = Path(__file__).resolve().parents[2]
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["datasets"] = {"a": {"generator": {"preset": "tiny"}, "split": None,
                                "train_subsample": None},
                          "b": {"generator": {"preset": "tiny"}}}
    validate(config, str(repo / "config" / "schema.yaml"))
    assert config["datasets"]["a"]["train_subsample"] is None
    assert config["datasets"]["b"]["train_subsample"] == {"max_items": 60000, "seed": 0}


def _paths_by_stage(plan) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for path, job in plan.jobs.items():
        out.setdefault((job.method, job.stage), set()).add(path)
    return out


def test_a_default_changed_in_code_renames_its_stage_and_what_depends_on_it(monkeypatch):
    """The filter's `steps` default changes in code: the filter and everything built on it
    move to new paths; the kNN graph, the structure space and k_off keep theirs."""
    cfg = config(a={"method": "adanets"}, t={"method": "knn_threshold", "threshold": "auto"})
    before = _paths_by_stage(make_plan(cfg))
    old = adaptive_filter.PARAMS.entries["steps"]
    monkeypatch.setitem(adaptive_filter.PARAMS.entries, "steps",
                        Param(old.default + 1, old.schema, old.doc))
    plan = make_plan(cfg)
    after = _paths_by_stage(plan)
    assert before.keys() == after.keys()
    moved = {stage for (method, stage) in before if before[method, stage] != after[method, stage]}
    # (the model folder is named by the experiment, and stays)
    assert moved == {"filter_train", "filter_infer", "graph", "gcn_train", "theta",
                     "theta_pool", "embed", "link"}
    assert plan.job(next(iter(after["adanets", "bundle"]))).params["settings"]["filter"][
        "steps"] == old.default + 1, "the model records the new default"
    assert before["knn_threshold", "cluster"] == after["knn_threshold", "cluster"]


def test_a_new_stage_version_renames_its_artifacts():
    from dataclasses import replace

    from facecluster.methods import knn_threshold

    cfg = config(t={"method": "knn_threshold", "threshold": "auto"})
    before = _paths_by_stage(make_plan(cfg))
    original = knn_threshold.METHOD.stages
    bumped = tuple(replace(s, version=s.version + 1) if s.name == "calibrate" else s
                   for s in original)
    object.__setattr__(knn_threshold.METHOD, "stages", bumped)  # a frozen dataclass
    try:
        after = _paths_by_stage(make_plan(cfg))
    finally:
        object.__setattr__(knn_threshold.METHOD, "stages", original)
    assert before["knn_threshold", "calibrate"] != after["knn_threshold", "calibrate"]
    assert before["knn_threshold", "cluster"] != after["knn_threshold", "cluster"], \
        "a descendant moves with it"


def test_two_experiments_that_would_write_one_path_differently_are_refused():
    plan = planning.Plan(results="r")
    plan.add_job("r/x/a.h5", planning.Job("m", "s", {}, {"a": 1}))
    plan.add_job("r/x/a.h5", planning.Job("m", "s", {}, {"a": 1}))  # the same job: shared
    with pytest.raises(ConfigError, match="two experiments would write r/x/a.h5 differently"):
        plan.add_job("r/x/a.h5", planning.Job("m", "s", {}, {"a": 2}))
