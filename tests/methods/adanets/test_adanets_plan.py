"""Ada-NETS's plan: which jobs an experiment adds, and what experiments share."""

from pathlib import Path

import pytest

from facecluster.core.planning import ConfigError, make_plan


def config(**experiments):
    return {"results": "r", "datasets": {"d": {"generator": {"preset": "tiny"}}},
            "experiments": experiments}


def paths(plan, stage):
    return set(plan.outputs("adanets", stage))


def folder(path) -> str:
    return Path(path).parent.name


def test_experiments_share_what_they_agree_on():
    plan = make_plan(config(
        a={"method": "adanets", "theta": 0.9},
        b={"method": "adanets", "theta": 0.8},
        c={"method": "adanets", "beta": 1.0},
        t={"method": "knn_threshold", "threshold": 0.5}))
    assert len(plan.knn) == 1, "one kNN graph for all"
    assert len(paths(plan, "structure")) == 2  # train and test, shared by a, b, c
    # β 0.5 (a, b); β 1 (c), whose θ auto is chosen on the curves of three seeds' models
    assert len(paths(plan, "filter_train")) == 4
    assert len(paths(plan, "embed")) == 2
    assert len(paths(plan, "link")) == 3
    a, b = plan.outcomes[0], plan.outcomes[1]
    assert Path(a.clusters).parent.parent == Path(b.clusters).parent.parent, "one embedding"
    assert folder(a.clusters).startswith("link-c80-0.9-")
    assert folder(b.clusters).startswith("link-c80-0.8-")


def test_fixed_graphs_ignore_beta_and_the_filter():
    plan = make_plan(config(
        a={"method": "adanets", "graph": "knn", "graph_k": 20, "beta": 0.5},
        b={"method": "adanets", "graph": "knn", "graph_k": 20, "beta": 2.0}))
    assert len(paths(plan, "graph")) == 2  # one per part, shared
    assert not paths(plan, "filter_train") and not paths(plan, "koff")
    assert plan.outcomes[0].clusters == plan.outcomes[1].clusters
    assert plan.outcomes[0].model is None, "no filter: no model to export"


def test_a_graph_cut_without_the_filter_needs_no_labels():
    cfg = config(a={"method": "adanets", "graph": "threshold", "clustering": "graph_cut"})
    cfg["datasets"] = {"mine": {"input": {"path": "x.npy"}}}
    (outcome,) = make_plan(cfg).outcomes
    assert folder(outcome.clusters).startswith("cut-0.6-")
    cfg["experiments"] = {"a": {"method": "adanets"}}
    with pytest.raises(ConfigError, match="no train part"):
        make_plan(cfg)


def test_theta_auto_links_with_the_gcn_model():
    plan = make_plan(config(a={"method": "adanets", "theta": "auto"},
                            b={"method": "adanets", "theta": 0.9},
                            c={"method": "adanets", "theta": "auto", "theta_tolerance": 0}))
    auto, fixed, best = plan.outcomes
    assert folder(auto.clusters).startswith("link-c80-auto-tol0.01-")
    assert folder(best.clusters).startswith("link-c80-auto-")
    link = plan.job(auto.clusters)
    assert (link.params["theta"], link.params["theta_tolerance"]) == ("auto", 0.01)
    assert link.inputs["model"].endswith("/gcn.pt") and "model" not in plan.job(fixed.clusters).inputs
    assert "theta_tolerance" not in plan.job(fixed.clusters).params
    # Only the linkage depends on the tolerance: the GCN is the same job.
    assert link.inputs["model"] == plan.job(best.clusters).inputs["model"]
    assert auto.summary["theta"] == "auto"
    with pytest.raises(ConfigError, match="val_fraction is 0"):
        make_plan(config(a={"method": "adanets", "theta": "auto", "gcn": {"val_fraction": 0}}))


def test_a_sweep_over_beta_and_theta_shares_upstream_artifacts():
    plan = make_plan(config(s={"method": "adanets",
                               "sweep": {"beta": [0.5, 1.0, 2.0], "theta": [0.9, 0.95]}}))
    names = [o.experiment for o in plan.outcomes]
    assert names == [f"s.beta-{b}.theta-{t}" for b in ("0.5", "1", "2") for t in ("0.9", "0.95")]
    assert len(paths(plan, "structure")) == 2, "SS once per part for the whole sweep"
    assert len(paths(plan, "filter_train")) == 3 and len(paths(plan, "embed")) == 3
    assert len(paths(plan, "link")) == 6
    assert plan.outcomes[0].summary["beta"] == 0.5 and plan.outcomes[5].summary["theta"] == 0.95


def test_second_round_runs_the_method_again_on_both_parts_embeddings():
    empty = make_plan(config(a={"method": "adanets", "second_round": {}}))
    assert "/r2-knn-k80-" in empty.outcomes[0].clusters, "an empty second_round is one too"
    plan = make_plan(config(one={"method": "adanets"},
                            two={"method": "adanets", "second_round": {"theta": 0.99}}))
    one, two = plan.outcomes
    round_one_embedding = str(Path(one.clusters).parent.parent)
    assert two.clusters.startswith(round_one_embedding + "/r2-knn-k80-")
    assert folder(two.clusters).startswith("link-c80-0.99-") and two.summary["round"] == 2
    embeds = sorted(paths(plan, "embed"))
    assert len(embeds) == 3, "round 1 embeds train (for round 2) and test; round 2 test"
    knns = [plan.job(p) for p in paths(plan, "knn_embedding")]
    round_one = {p for p in embeds if "/r2-" not in p}
    assert {j.inputs["features"] for j in knns} == round_one
    assert {p.split("/")[2] for p in round_one} == {"train", "test"}
    # Round one: θ auto on three seeds' models (theta_seeds), shared; round two: one model.
    assert len(paths(plan, "gcn_train")) == 4 and len(paths(plan, "filter_train")) == 4
    assert plan.models == ["r/d/bundles/one/model", "r/d/bundles/two/model"], \
        "models hold round one"


def test_a_second_round_override_is_checked_like_round_one():
    with pytest.raises(ConfigError, match=r"experiments.a.second_round"):
        make_plan(config(a={"method": "adanets", "second_round": {"theta": 7}}))


def test_theta_seeds_pools_the_curves_of_models_other_experiments_share():
    plan = make_plan(config(pooled={"method": "adanets"},
                            alone={"method": "adanets", "theta_seeds": 1},
                            seed_2={"method": "adanets", "seed": 2, "theta_seeds": 1},
                            fixed={"method": "adanets", "theta": 0.9}))
    pooled, alone, seed_2, fixed = (plan.job(o.clusters) for o in plan.outcomes)
    (pool,) = paths(plan, "theta_pool")
    assert pooled.inputs["theta"] == pool and alone.inputs["theta"] != pool
    curves = plan.job(pool).inputs
    assert sorted(curves) == ["theta", "theta.1", "theta.2"]
    # Seed 0's curves are the single-model experiment's, seed 2's the seed-2 experiment's.
    assert curves["theta"] == alone.inputs["theta"]
    assert curves["theta.2"] == seed_2.inputs["theta"]
    seeds = [plan.job(curves[k]).params["settings"]["seed"] for k in sorted(curves)]
    assert seeds == [0, 1, 2]
    gcns = {k: plan.job(curves[k]).inputs["gcn"] for k in curves}
    assert [plan.job(gcns[k]).params["seed"] for k in sorted(gcns)] == [0, 1, 2]
    # The test part is embedded by seed 0's model, the one the single-model run uses.
    assert pooled.inputs["model"] == alone.inputs["model"] == gcns["theta"]
    assert pooled.inputs["embedding"] == alone.inputs["embedding"]
    assert "theta" not in fixed.inputs
    assert len(paths(plan, "gcn_train")) == 3 and len(paths(plan, "theta")) == 3


def test_the_figures_read_the_experiments_own_model_not_the_other_seeds():
    from facecluster.methods.adanets.figures import own_model

    plan = make_plan(config(pooled={"method": "adanets"},
                            alone={"method": "adanets", "theta_seeds": 1}))
    pooled, alone = (plan.lineage(o.clusters) for o in plan.outcomes)
    for stage in ("adanets.filter_infer", "adanets.graph"):
        assert len(pooled[stage]) == 4, "three train-side models and the test part"
        assert sorted(own_model(pooled[stage], pooled)) == sorted(alone[stage])
        assert own_model(alone[stage], alone) == alone[stage]
