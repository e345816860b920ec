"""The plan: artifact paths name exactly the parameters each stage depends on."""

import pytest

from facecluster import plan
from facecluster import plan as plan_module
from facecluster.plan import ConfigError, make_plan


def config(**experiments):
    return {"results": "r", "datasets": {"d": {"generator": {"preset": "tiny"}}},
            "experiments": experiments}


def stage_paths(plan, rule):
    return {path for path, job in plan.jobs.items() if job.rule == rule}


def test_experiments_share_what_they_agree_on():
    plan = make_plan(config(
        a={"method": "adanets", "theta": 0.9},
        b={"method": "adanets", "theta": 0.8},
        c={"method": "adanets", "beta": 1.0},
        t={"method": "knn_threshold", "threshold": 0.5}))
    assert len(plan.knn) == 1, "one kNN graph for all"
    assert len(stage_paths(plan, "structure")) == 2  # train and test, shared by a, b, c
    assert len(stage_paths(plan, "filter_train")) == 2  # β 0.5 (a, b) and β 1 (c)
    assert len(stage_paths(plan, "embed")) == 2
    assert len(stage_paths(plan, "link")) == 3
    a, b = plan.outcomes[0], plan.outcomes[1]
    assert a.clusters.rsplit("/", 2)[0] == b.clusters.rsplit("/", 2)[0], "same embedding folder"
    assert "link-c80-0.9" in a.clusters and "link-c80-0.8" in b.clusters


def test_fixed_graphs_ignore_beta_and_the_filter():
    plan = make_plan(config(
        a={"method": "adanets", "graph": "knn", "graph_k": 20, "beta": 0.5},
        b={"method": "adanets", "graph": "knn", "graph_k": 20, "beta": 2.0}))
    assert len(stage_paths(plan, "graph")) == 2  # one per split, shared
    assert not stage_paths(plan, "filter_train") and not stage_paths(plan, "koff")
    assert plan.outcomes[0].clusters == plan.outcomes[1].clusters


def test_supervised_method_needs_a_train_part():
    cfg = config(a={"method": "adanets"})
    cfg["datasets"] = {"mine": {"input": {"path": "x.npy"}}}
    with pytest.raises(ConfigError, match="needs labeled training data"):
        make_plan(cfg)


def test_unknown_names_in_run_are_refused():
    cfg = config(a={"method": "knn_threshold", "threshold": 0.5})
    cfg["run"] = {"experiments": ["a", "nope"]}
    with pytest.raises(ConfigError, match=r"run.experiments names \['nope'\]"):
        make_plan(cfg)


def test_theta_auto_links_with_the_gcn_model():
    plan = make_plan(config(a={"method": "adanets", "theta": "auto"},
                            b={"method": "adanets", "theta": 0.9},
                            c={"method": "adanets", "theta": "auto", "theta_tolerance": 0}))
    auto, fixed, best = plan.outcomes
    assert "/link-c80-auto-tol0.01/" in auto.clusters and "/link-c80-auto/" in best.clusters
    link = plan.job(auto.clusters)
    assert (link.params["theta"], link.params["theta_tolerance"]) == ("auto", 0.01)
    assert link.inputs["model"].endswith("/gcn.pt") and "model" not in plan.job(fixed.clusters).inputs
    assert "theta_tolerance" not in plan.job(fixed.clusters).params
    # Only the linkage depends on the tolerance: the GCN is the same job.
    assert link.inputs["model"] == plan.job(best.clusters).inputs["model"]
    with pytest.raises(ConfigError, match="val_fraction is 0"):
        make_plan(config(a={"method": "adanets", "theta": "auto", "gcn": {"val_fraction": 0}}))


def test_a_sweep_expands_into_variants_that_share_upstream_artifacts():
    plan = make_plan(config(s={"method": "adanets",
                               "sweep": {"beta": [0.5, 1.0, 2.0], "theta": [0.9, 0.95]}}))
    names = [o.experiment for o in plan.outcomes]
    assert names == [f"s.beta-{b}.theta-{t}" for b in ("0.5", "1", "2") for t in ("0.9", "0.95")]
    assert len(stage_paths(plan, "structure")) == 2, "SS once per split for the whole sweep"
    assert len(stage_paths(plan, "filter_train")) == 3 and len(stage_paths(plan, "embed")) == 3
    assert len(stage_paths(plan, "link")) == 6
    assert plan.outcomes[0].params["beta"] == 0.5 and plan.outcomes[5].params["theta"] == 0.95


def test_dotted_sweep_keys_reach_into_sections_and_run_selects_a_sweep():
    cfg = config(s={"method": "adanets", "gcn": {"hidden": 64}, "sweep": {"gcn.lr": [0.1, 0.01]}},
                 t={"method": "knn_threshold", "sweep": {"threshold": [0.5, 0.6]}})
    cfg["run"] = {"experiments": ["s"]}
    plan = make_plan(cfg)
    assert [o.experiment for o in plan.outcomes] == ["s.gcn.lr-0.1", "s.gcn.lr-0.01"]
    trains = [plan.jobs[p] for p in sorted(stage_paths(plan, "gcn_train"))]
    assert sorted(j.params["gcn"]["lr"] for j in trains) == [0.01, 0.1]
    assert all(j.params["gcn"]["hidden"] == 64 for j in trains), "the rest of the section stays"
    cfg["run"] = {"experiments": ["t.threshold-0.6"]}
    assert [o.clusters.split("/")[-2] for o in make_plan(cfg).outcomes] == ["threshold-0.6"]


def test_second_round_runs_the_method_again_on_both_splits_embeddings():
    empty = make_plan(config(a={"method": "adanets", "second_round": {}}))
    assert "/r2/" in empty.outcomes[0].clusters, "an empty second_round is a second round too"
    plan = make_plan(config(one={"method": "adanets"},
                            two={"method": "adanets", "second_round": {"theta": 0.99}}))
    one, two = plan.outcomes
    assert two.clusters.startswith(one.clusters.rsplit("/link-", 1)[0] + "/r2/")
    assert two.clusters.endswith("/link-c80-0.99/clusters.h5") and two.params["round"] == 2
    embeds = sorted(stage_paths(plan, "embed"))
    assert len(embeds) == 3, "round 1 embeds train (for round 2) and test; round 2 test"
    knns = {p: plan.job(p) for p in stage_paths(plan, "knn_embedding")}
    round_one = {p for p in embeds if "/r2/" not in p}
    assert {j.inputs["features"] for j in knns.values()} == round_one
    assert {p.split("/")[2] for p in round_one} == {"train", "test"}
    assert len(stage_paths(plan, "gcn_train")) == 2 and len(stage_paths(plan, "filter_train")) == 2
    assert plan.bundles == ["r/d/bundles/one", "r/d/bundles/two"], "bundles hold round one"


def test_ingest_spec_keeps_the_training_subsample_off_the_test_part():
    dataset = {"generator": {"preset": "tiny"}, "train_subsample": {"max_items": 10}}
    assert plan.ingest_spec(dataset, "train") == dataset
    assert plan.ingest_spec(dataset, "test") == {"generator": {"preset": "tiny"}}


def test_schema_accepts_null_split_and_subsample_and_fills_the_subsample_default():
    """`split: null` and `train_subsample: null` are legal (the config template shows them);
    an absent train_subsample gets the default."""
    from pathlib import Path

    import yaml
    from snakemake.utils import validate

    repo = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["datasets"] = {"a": {"generator": {"preset": "tiny"}, "split": None,
                                "train_subsample": None},
                          "b": {"generator": {"preset": "tiny"}}}
    validate(config, str(repo / "config" / "schema.yaml"))
    assert config["datasets"]["a"]["train_subsample"] is None
    assert config["datasets"]["b"]["train_subsample"] == {"max_items": 60000, "seed": 0}


def test_threshold_auto_names_its_tolerance():
    plan = make_plan(config(a={"method": "knn_threshold", "threshold": "auto"},
                            b={"method": "knn_threshold", "threshold": "auto",
                               "threshold_tolerance": 0},
                            c={"method": "knn_threshold", "threshold": 0.6}))
    tolerant, best, fixed = plan.outcomes
    assert tolerant.clusters.endswith("/threshold-auto-tol0.01/clusters.h5")
    assert tolerant.params["threshold_tolerance"] == plan_module.THRESHOLD_TOLERANCE == 0.01
    assert best.clusters.endswith("/threshold-auto/clusters.h5")
    assert fixed.clusters.endswith("/threshold-0.6/clusters.h5")
    assert "threshold_tolerance" not in fixed.params
