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
