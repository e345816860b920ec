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
