"""benchmarks/scoreboard.py: the hard-cluster bins table averages a group's folds."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_scoreboard", ROOT / "benchmarks" / "scoreboard.py")
scoreboard = importlib.util.module_from_spec(spec)
sys.modules["bench_scoreboard"] = scoreboard
spec.loader.exec_module(scoreboard)


def test_hard_bins_are_the_mean_over_folds_and_skip_empty_ones():
    rows = {
        ("ndde-tpdi", "lfw"): {"bins": {"sz-1": [(1.0, 1.0), (1.0, 1.0)],
                                        "sz-5": [(0.5, 0.75), (0.25, 0.25)]}},
        ("gcn-v", "lfw"): {"bins": {"sz-5": [(0.9, 0.8)]}},
        ("hdbscan", "lfw"): {"bins": {}},
    }
    lines = scoreboard.hard_bins_table(rows)
    table = [line for line in lines if line.startswith("| ")]
    assert table[0] == "| experiment | dataset | sz-1 | sz-5 |"
    assert table[1] == "| ndde-tpdi | lfw | 100.0 / 100.0 | 37.5 / 50.0 |"
    assert table[2] == "| gcn-v | lfw | - | 90.0 / 80.0 |"
    assert len(table) == 3  # no row without bins
    assert scoreboard.hard_bins_table({("x", "y"): {"bins": {}}}) == []


def test_every_benchmark_configuration_plans_every_experiment_on_every_pair():
    """The evaluation matrix, the scoreboard (with each of its additions) and the MS1M and
    subsample studies plan without a ConfigError: a misspelt or misplaced setting fails
    here, not an hour into a run.  Planning reads no data."""
    import pytest

    from facecluster.core import planning

    def plans(*names, base=(ROOT / "config" / "config.yaml",)):
        extra = [ROOT / "benchmarks" / f"{n}.yaml" for n in names]
        return planning.make_plan(scoreboard.merged_config([*base, *extra]))

    matrix = plans("evaluation")
    config = scoreboard.merged_config([ROOT / "config" / "config.yaml",
                                       ROOT / "benchmarks" / "evaluation.yaml"])
    pairs, experiments = config["datasets"], config["run"]["experiments"]
    assert len(matrix.outcomes) == len(experiments) * len(pairs) >= 20 * 20
    for also in ([], ["scoreboard-quick"], ["scoreboard-unsupervised"]):
        assert plans("scoreboard", *also, base=scoreboard.CONFIGS).outcomes
    for name in ("ms1m", "subsample"):
        try:
            assert plans(name).outcomes
        except planning.ConfigError as error:  # needs another configuration beside it
            pytest.fail(f"benchmarks/{name}.yaml: {error}")


def test_run_and_write_writes_the_table_and_nothing_when_the_workflow_fails(tmp_path,
                                                                           monkeypatch):
    """The benchmarks' main: without a run, the rendered table lands in the configuration's
    results folder, ``--config`` entries among the Snakemake options applied to it as to
    the run; a workflow that fails returns its exit status and writes nothing."""
    monkeypatch.chdir(tmp_path)  # run_and_write moves to the repository; restored after
    config = tmp_path / "extra.yaml"
    config.write_text(f"results: {tmp_path / 'out'}\n")
    configs = [ROOT / "config" / "config.yaml", config]
    render = lambda c: f"a table of {c['results']}"
    assert scoreboard.run_and_write(configs, False, "1", [], render, "table.md") == 0
    assert (tmp_path / "out" / "table.md").read_text() == f"a table of {tmp_path / 'out'}"
    (tmp_path / "out" / "table.md").unlink()
    # --config sets the table's configuration as it sets the run's, nested keys merged
    other = tmp_path / "other"
    render_run = lambda c: f"{c['run']['datasets']} {c['run']['experiments']}"
    assert scoreboard.run_and_write(
        configs, False, "1", ["--cores", "1", "--config", f"results={other}",
                              'run={"datasets": ["a-pair"]}', "--keep-going"],
        render_run, "table.md") == 0
    experiments = scoreboard.merged_config(configs)["run"]["experiments"]
    assert (other / "table.md").read_text() == f"['a-pair'] {experiments}"
    assert not (tmp_path / "out" / "table.md").exists()
    failed = scoreboard.run_and_write(configs, True, "1", ["--no-such-option"], render,
                                      "table.md")
    assert failed != 0 and not (tmp_path / "out" / "table.md").exists()
