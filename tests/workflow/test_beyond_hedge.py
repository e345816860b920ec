"""benchmarks/beyond_hedge.py: each rule's choice for a part larger than every size left."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_beyond_hedge",
                                              ROOT / "benchmarks" / "beyond_hedge.py")
beyond_hedge = importlib.util.module_from_spec(spec)
sys.modules["bench_beyond_hedge"] = beyond_hedge
spec.loader.exec_module(beyond_hedge)


def rung(n_faces: int, means: dict[float, float]) -> dict:
    return {"n_faces": n_faces, "draws": 3,
            "scores": [{"threshold": t, "f_pairwise": m, "f_bcubed": m} for t, m in means.items()]}


def test_each_rule_is_scored_on_the_left_out_whole_part():
    """The best value climbs one grid step per doubling (0.5 at 250 faces, 0.6 at 500, 0.7 at
    1,000): the trend in log N finds the whole part's best; the plateau top of the 500-face
    size, hedged or not, stays at 0.6, 30 points below it (0.7 scores 0.85 there, more than
    a doubling's hedge of 0.01 under 0.90)."""
    ladder = [rung(1000, {0.5: 0.5, 0.6: 0.6, 0.7: 0.9, 0.8: 0.8}),
              rung(500, {0.5: 0.6, 0.6: 0.9, 0.7: 0.85, 0.8: 0.7}),
              rung(250, {0.5: 0.9, 0.6: 0.8, 0.7: 0.7, 0.8: 0.6})]
    gaps = beyond_hedge.gaps(ladder, drop=1, tolerance=0.0)
    assert gaps["trend"] == pytest.approx(0.0)
    for rule in ("none", "hedge1", "hedge2", "hedge3"):
        assert gaps[rule] == pytest.approx(30.0), rule
    # At tolerance 0.05 the 500-face size's plateau reaches 0.7 (0.85 is within 0.05 of
    # 0.90): the plateau rules find the whole part's best, and the trend, now two steps per
    # doubling (0.5 at 250, 0.7 at 500), overshoots to the grid's end, 0.8, 10 points below.
    wide = beyond_hedge.gaps(ladder, 1, 0.05)
    assert wide == pytest.approx({"hedge1": 0.0, "hedge2": 0.0, "hedge3": 0.0, "none": 0.0,
                                  "trend": 10.0})
    assert beyond_hedge.gaps(ladder, drop=2, tolerance=0.0) is None  # one size left
