"""Choosing a threshold on labeled data: the rule every method's `auto` shares."""

import numpy as np
import pytest

from facecluster.core.selection import list_threshold_scores, plateau_top

# Two pairs at cosine 0.9, the pairs 0.5 apart; labels follow the pairs.
IDS = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 2, 1]], dtype=np.int32)
SIMS = np.array([[1, 0.9, 0.5]] * 4, dtype=np.float32)
LABELS = np.array([0, 0, 1, 1])


def test_scores_by_hand_and_the_best_threshold():
    scores = list_threshold_scores(IDS, SIMS, LABELS, np.array([0.4, 0.5, 0.6, 0.9, 0.95]))
    by_t = {s["threshold"]: s for s in scores}
    # 0.4 and 0.5 (≥): one cluster, pairwise precision 2/6, recall 1 -> F = 0.5.
    assert by_t[0.4]["f_pairwise"] == pytest.approx(0.5) and by_t[0.5]["f_pairwise"] == pytest.approx(0.5)
    assert by_t[0.6]["f_pairwise"] == 1.0 and by_t[0.9]["f_bcubed"] == 1.0
    assert by_t[0.95]["f_pairwise"] == 0.0  # singletons
    assert plateau_top(scores)["threshold"] == 0.6, "ties go to the lowest threshold"
    strict = list_threshold_scores(IDS, SIMS, LABELS, np.array([0.9]), strict=True, key="theta")
    assert strict[0]["f_pairwise"] == 0.0 and strict[0]["theta"] == 0.9, "strict: 0.9 is not > 0.9"


def test_tolerance_takes_the_largest_threshold_near_the_best():
    """F is 1 from τ 0.6 to 0.9, so a tolerance moves τ to 0.9."""
    scores = list_threshold_scores(IDS, SIMS, LABELS, np.array([0.4, 0.6, 0.9, 0.95]))
    assert plateau_top(scores)["threshold"] == 0.6
    assert plateau_top(scores, tolerance=0.01)["threshold"] == 0.9
    assert plateau_top(scores, tolerance=0.3)["threshold"] == 0.9  # 0.4: 0.5 / 0.67, too far
    assert plateau_top(scores, tolerance=1.0)["threshold"] == 0.95
    with pytest.raises(ValueError, match="≥ 0"):
        plateau_top(scores, tolerance=-0.1)
    with pytest.raises(ValueError, match="no scores"):
        plateau_top([])


def test_coarse_to_fine_finds_the_grid_best_and_its_plateau_top():
    """A smooth curve peaking at 0.62 with a plateau to 0.70: the coarse-to-fine search
    gives the same choice as the whole grid, from fewer clusterings."""
    from facecluster.core.selection import THRESHOLD_GRID, coarse_to_fine_scores, score_thresholds

    calls = []
    truth = np.repeat(np.arange(10), 10)

    def cluster_at(t):  # merges identities below 0.55, splits them above 0.75
        calls.append(t)
        if t < 0.55:
            return truth // 2
        if t > 0.75:
            return np.arange(truth.size)
        return truth if 0.62 <= t <= 0.70 else np.where(np.arange(truth.size) % 10 == 0,
                                                        100 + np.arange(truth.size), truth)

    full = score_thresholds(cluster_at, truth, THRESHOLD_GRID)
    n_full = len(calls)
    calls.clear()
    fast = coarse_to_fine_scores(cluster_at, truth, THRESHOLD_GRID)
    assert len(calls) < n_full / 2
    for tolerance in (0.0, 0.01, 0.05):
        assert plateau_top(fast, tolerance=tolerance) == plateau_top(full, tolerance=tolerance)
    assert [s["threshold"] for s in fast] == sorted(s["threshold"] for s in fast)
