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
    from facecluster.core.selection import (
        THRESHOLD_GRID,
        coarse_to_fine_scores,
        score_thresholds,
    )

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


# ------------------------------------------------------------ choosing for the part's size
def _curve(best: float, grid) -> list[dict]:
    """A score curve over ``grid`` peaking (1.0) at ``best`` alone."""
    return [{"threshold": t, "f_pairwise": 1.0 - abs(t - best), "f_bcubed": 1.0 - abs(t - best)}
            for t in grid]


def test_the_size_ladder_halves_down_to_the_smallest_draw():
    from facecluster.core.selection import size_ladder

    assert size_ladder(2000, 500) == [2000, 1000, 500]
    assert size_ladder(1999, 500) == [1999, 999]
    assert size_ladder(999, 500) == [999]
    with pytest.raises(ValueError, match="positive"):
        size_ladder(0, 500)


def test_the_choice_for_a_size_interpolates_in_log_size():
    """Best 0.80 on 4,000 faces, 0.70 on 2,000, 0.60 on 1,000 (the grid's 0.01 steps)."""
    from facecluster.core.selection import THRESHOLD_GRID, choose_for_size

    grid = THRESHOLD_GRID.tolist()
    ladder = [{"n_faces": n, "draws": 1 if n == 4000 else 3, "scores": _curve(b, grid)}
              for n, b in ((4000, 0.8), (2000, 0.7), (1000, 0.6))]
    chosen = {n: choose_for_size(ladder, n, "threshold", grid, 0.0, beyond=0.0)[0]
              for n in (8000, 4000, 3000, 2828, 2000, 1000, 300)}
    # 3,000: log(4000/3000)/log 2 = 0.415 of the way from 0.80 to 0.70 -> 0.7585 -> 0.76.
    assert chosen == {8000: 0.8, 4000: 0.8, 3000: 0.76, 2828: 0.75, 2000: 0.7, 1000: 0.6,
                      300: 0.6}
    value, entry, scores, where = choose_for_size(ladder, 1500, "threshold", grid, 0.0)
    assert value == 0.66 and entry["threshold"] == 0.66  # 0.415 of the way: nearer 2,000
    assert scores is ladder[1]["scores"] and where == \
        "3 draws of 2000 faces of its identities"
    assert choose_for_size(ladder[:1], 100, "threshold", grid)[3] == "all 4000 faces"
    # Integer grids stay integers (a minimum cluster size).
    ints = [{"n_faces": n, "draws": 3, "scores": _curve(b, range(2, 20))}
            for n, b in ((4000, 10), (1000, 4))]
    assert choose_for_size(ints, 2000, "threshold", range(2, 20), 0.0)[0] == 7
    with pytest.raises(ValueError, match="no sizes"):
        choose_for_size([], 10, "threshold", grid)


def test_a_part_larger_than_the_train_part_is_hedged_towards_the_plateau_top():
    """Best 1.0 at 0.80, 0.995 at 0.85, 0.985 at 0.90 on the 4,000 train faces: within the
    ladder the best is chosen; beyond it the tolerance grows with log2 of the ratio to
    ``beyond`` (0.01, in full at twice the size)."""
    from facecluster.core.selection import THRESHOLD_GRID, choose_for_size

    grid = THRESHOLD_GRID.tolist()
    peak = {0.8: 1.0, 0.85: 0.995, 0.9: 0.985}
    curve = [{"threshold": t, "f_pairwise": peak.get(t, 0.5), "f_bcubed": peak.get(t, 0.5)}
             for t in grid]
    ladder = [{"n_faces": 4000, "draws": 1, "scores": curve},
              {"n_faces": 2000, "draws": 3, "scores": curve}]
    chosen = {n: choose_for_size(ladder, n, "threshold", grid, 0.0)[0]
              for n in (3000, 4000, 4100, 5000, 8000, 584_000)}
    # 5,000: log2(1.25) = 0.32 -> a tolerance of 0.0032, short of 0.85's 0.005.
    assert chosen == {3000: 0.8, 4000: 0.8, 4100: 0.8, 5000: 0.8, 8000: 0.85, 584_000: 0.85}
    assert choose_for_size(ladder, 8000, "threshold", grid, 0.02)[0] == 0.9, \
        "a larger tolerance of the experiment's own is kept"
    assert choose_for_size(ladder, 8000, "threshold", grid, 0.0, beyond=0.0)[0] == 0.8
    where = choose_for_size(ladder, 8000, "threshold", grid, 0.0)[3]
    assert where == "all 4000 faces, hedged by 0.010 for 8000 faces"
    assert choose_for_size(ladder, 4000, "threshold", grid, 0.0)[3] == "all 4000 faces"


def test_a_held_out_choice_is_hedged_for_its_doublings_and_can_be_left_unhedged():
    """The curve above on a held-out part of 1,000 faces: one doubling (the default) stops
    hedging at 0.01 (twice the size); two grow to 0.02 (four times), which reaches 0.90
    (0.015 below the best); ``beyond`` 0 keeps the best whatever the size."""
    from facecluster.core.selection import THRESHOLD_GRID, choose_held_out

    grid = THRESHOLD_GRID.tolist()
    peak = {0.8: 1.0, 0.85: 0.995, 0.9: 0.985}
    curve = [{"threshold": t, "f_pairwise": peak.get(t, 0.5), "f_bcubed": peak.get(t, 0.5)}
             for t in grid]
    ladder = [{"n_faces": 1000, "draws": 1, "scores": curve}]
    sizes = (None, 1000, 1900, 2000, 2900, 4000, 10_000)
    one = {n: choose_held_out(ladder, n, "threshold", grid, 0.0)[0] for n in sizes}
    two = {n: choose_held_out(ladder, n, "threshold", grid, 0.0, doublings=2)[0] for n in sizes}
    # 2,900: log2(2.9) = 1.54 -> 0.0154, past 0.90's 0.015; 2,000: 0.01, short of it.
    assert one == {None: 0.8, 1000: 0.8, 1900: 0.85, 2000: 0.85, 2900: 0.85, 4000: 0.85,
                   10_000: 0.85}
    assert two == {None: 0.8, 1000: 0.8, 1900: 0.85, 2000: 0.85, 2900: 0.9, 4000: 0.9,
                   10_000: 0.9}
    where = choose_held_out(ladder, 4000, "threshold", grid, 0.0, doublings=2)[3]
    assert where == ("held-out training identities clustered alone, all 1000 faces, "
                     "hedged by 0.020 for 4000 faces")
    assert choose_held_out(ladder, 10_000, "threshold", grid, 0.0, beyond=0.0,
                           doublings=2)[0] == 0.8


def test_mean_scores_average_draws_over_the_same_values():
    from facecluster.core.selection import mean_scores

    a = [{"tau": 0.1, "f_pairwise": 0.2, "f_bcubed": 0.4, "n_clusters": 3}]
    b = [{"tau": 0.1, "f_pairwise": 0.4, "f_bcubed": 0.8, "n_clusters": 4}]
    assert mean_scores([a, b]) == [{"tau": 0.1, "f_pairwise": pytest.approx(0.3),
                                    "f_bcubed": pytest.approx(0.6), "n_clusters": 3.5}]
    with pytest.raises(ValueError, match="different values"):
        mean_scores([a, [{**b[0], "tau": 0.2}]])



def test_pooled_ladders_average_each_size_and_keep_the_sizes_all_measured():
    from facecluster.core.selection import choose_held_out, pool_ladders

    def rung(n, draws, means):  # θ 0.8 and 0.9 with these means of F_P and F_B
        return {"n_faces": n, "draws": draws,
                "scores": [{"theta": t, "f_pairwise": m, "f_bcubed": m}
                           for t, m in zip((0.8, 0.9), means)]}

    # Model a's curve peaks at θ 0.8 and model b's at 0.9; b measured one size more.
    a = [rung(1000, 1, (0.90, 0.70)), rung(500, 3, (0.80, 0.60))]
    b = [rung(1200, 1, (0.50, 0.80)), rung(600, 3, (0.40, 0.70)), rung(300, 3, (0.2, 0.3))]
    pooled = pool_ladders([a, b])
    assert [(r["n_faces"], r["draws"]) for r in pooled] == [(1100, 2), (550, 6)]
    assert [e["f_pairwise"] for e in pooled[0]["scores"]] == pytest.approx([0.70, 0.75])
    assert [e["f_bcubed"] for e in pooled[1]["scores"]] == pytest.approx([0.60, 0.65])
    # Alone each model would take its own peak; on the mean, 0.9 (0.75 against 0.70).
    grid = [0.8, 0.9]
    assert [choose_held_out(x, None, "theta", grid, 0.0)[0] for x in (a, b)] == [0.8, 0.9]
    assert choose_held_out(pooled, None, "theta", grid, 0.0)[0] == 0.9
    assert pool_ladders([a]) is a
    with pytest.raises(ValueError, match="non-empty"):
        pool_ladders([a, []])
    with pytest.raises(ValueError, match="different values"):
        pool_ladders([a, [{**a[0], "scores": [{**e, "theta": 0.7} for e in a[0]["scores"]]}]])


def test_a_score_entry_names_its_value_and_ranks_by_the_mean_of_its_two_f():
    from facecluster.core.selection import best_entry, mean_f, score_key

    scores = [{"theta": 0.5, "f_pairwise": 0.9, "f_bcubed": 0.3, "n_clusters": 4},
              {"theta": 0.6, "f_pairwise": 0.5, "f_bcubed": 0.8, "p_bcubed": 1.0},
              {"theta": 0.7, "f_pairwise": 0.8, "f_bcubed": 0.5}]
    assert [score_key(s) for s in scores] == ["theta"] * 3
    assert [mean_f(s) for s in scores] == pytest.approx([0.6, 0.65, 0.65])
    assert best_entry(scores)["theta"] == 0.6  # the first of two equal means
    with pytest.raises(ValueError, match="without its value"):
        score_key({"f_pairwise": 1.0, "f_bcubed": 1.0})
    with pytest.raises(ValueError, match="no scores"):
        best_entry([])

def test_the_ladder_scores_whole_identities_at_each_size():
    """Every drawn part holds whole identities, at most the size, three different draws."""
    from facecluster.core.selection import ladder_scores

    labels = np.repeat(np.arange(100), np.tile([5, 15], 50))  # 1,000 faces
    seen = []

    def score_parts(parts):
        seen.append(parts)
        return [{"threshold": 0.5, "f_pairwise": 1.0, "f_bcubed": 1.0}]

    ladder = ladder_scores(labels, score_parts, draws=3, min_faces=250)
    assert [r["draws"] for r in ladder] == [1, 3, 3] and seen[0] == [None]
    assert ladder[0]["n_faces"] == 1000 and 400 < ladder[1]["n_faces"] <= 500
    for size, parts in zip((500, 250), seen[1:]):
        assert len({tuple(p) for p in parts}) == 3
        for part in parts:
            assert part.size <= size
            kept = np.unique(labels[part])
            assert part.size == np.isin(labels, kept).sum(), "whole identities only"


def test_the_ladder_leaves_out_draws_too_small_for_the_method():
    """One identity of 900 faces among 100 seen once: a draw stops at the first identity
    that does not fit, so a 500-face draw can hold a few faces.  Draws under ``min_part``
    faces are not scored; a size with none left is skipped."""
    from facecluster.core.selection import ladder_scores

    labels = np.concatenate([np.zeros(900, dtype=np.int64), np.arange(1, 101)])
    scored = []

    def score_parts(parts):
        scored.append([labels.size if p is None else p.size for p in parts])
        return [{"threshold": 0.5, "f_pairwise": 1.0, "f_bcubed": 1.0}]

    everything = ladder_scores(labels, score_parts, draws=6, min_faces=500)
    small = [n for sizes in scored for n in sizes if n < 80]
    assert small, "some draw of this set is small (the case the filter fails on)"
    scored.clear()
    ladder = ladder_scores(labels, score_parts, draws=6, min_faces=500, min_part=80)
    assert all(n >= 80 for sizes in scored for n in sizes)
    assert ladder[0]["n_faces"] == 1000 and len(ladder) <= len(everything)
    for rung in ladder[1:]:
        assert 1 <= rung["draws"] < 6 and rung["n_faces"] >= 80
    scored.clear()
    only_whole = ladder_scores(labels, score_parts, draws=6, min_faces=500, min_part=1000)
    assert [r["n_faces"] for r in only_whole] == [1000] and scored == [[1000]]


def test_the_held_out_ladder_clusters_only_held_out_faces_on_their_own_graph():
    """A trained method's held-out part: every part the method sees holds faces of the
    held-out identities only, with kNN lists among themselves; on well-separated
    identities the best threshold scores 1 at every size."""
    from facecluster.core.components import link_threshold
    from facecluster.core.selection import (
        THRESHOLD_GRID,
        held_out_identities,
        held_out_ladder,
    )

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(240, 32))
    labels = np.repeat(np.arange(240), 10)
    x = centres[labels] + 0.05 * rng.normal(size=(labels.size, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    held = held_out_identities(labels, 0.5, seed=0)
    rows = np.flatnonzero(held)
    seen = []

    def prepare(part, ids, sims):
        seen.append((part, ids))
        return lambda t: link_threshold(ids, sims, t)

    ladder = held_out_ladder(x, labels, rows, {"k": 5}, prepare, THRESHOLD_GRID, "threshold")
    assert ladder[0]["n_faces"] == rows.size == 1200 and len(ladder) == 2
    assert ladder[1]["draws"] == 3 and len(seen) == 4
    held_rows = {row.tobytes() for row in x[rows]}
    for part, ids in seen:
        assert all(row.tobytes() in held_rows for row in part), "a training face got in"
        assert ids.shape == (part.shape[0], 5) and ids.max() < part.shape[0]
    for rung in ladder:
        assert plateau_top(rung["scores"])["f_pairwise"] == 1.0
    with pytest.raises(ValueError, match="no held-out faces"):
        held_out_ladder(x, labels, rows[:0], {"k": 5}, prepare, THRESHOLD_GRID, "threshold")
