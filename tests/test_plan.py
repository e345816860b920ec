"""The plan: artifact paths name exactly the parameters each stage depends on."""

import pytest

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
    assert "link-k80-0.9" in a.clusters and "link-k80-0.8" in b.clusters


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
