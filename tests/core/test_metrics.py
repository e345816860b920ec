"""Tests for facecluster.metrics: hand-computed cases, invariances, and a brute-force check."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from facecluster.core import metrics

# Six items in three true classes: A = {0,1,2}, B = {3,4}, C = {5}.
TRUE = np.array([0, 0, 0, 1, 1, 2])


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-12)


def entropy(*sizes):
    n = sum(sizes)
    return -sum(s / n * math.log(s / n) for s in sizes)


def test_contingency_counts_and_order():
    # Rows follow sorted true labels (0, 1, 2), columns sorted predicted labels (-1, 5, 7).
    table = metrics.contingency(TRUE, [5, 5, 7, 7, 7, -1])
    assert table.shape == (3, 3)
    assert table.toarray().tolist() == [[0, 2, 1], [0, 0, 2], [1, 0, 0]]
    assert table.nnz == 4


def test_mixed_prediction_by_hand():
    pred = np.array([5, 5, 7, 7, 7, -1])
    # Cells: n(A,5) = 2, n(A,7) = 1, n(B,7) = 2, n(C,-1) = 1; class sizes a = 3,2,1;
    # cluster sizes b(5) = 2, b(7) = 3, b(-1) = 1; N = 6.
    # Pairwise: tk = 4+1+4+1 − 6 = 4; pk = 4+9+1 − 6 = 8; qk = 9+4+1 − 6 = 8 → P = R = F = 0.5.
    assert metrics.pairwise_prf(TRUE, pred) == (approx(0.5), approx(0.5), approx(0.5))
    # BCubed P = (4/2 + 1/3 + 4/3 + 1/1)/6 = (14/3)/6 = 7/9;
    #         R = (4/3 + 1/3 + 4/2 + 1/1)/6 = 7/9; F = 7/9.
    p, r, f = metrics.bcubed_prf(TRUE, pred)
    assert (p, r, f) == (approx(7 / 9), approx(7 / 9), approx(7 / 9))
    # NMI: I = Σ n/N·ln(N·n/(a·b)) = 2/6·ln(12/6) + 1/6·ln(6/9) + 2/6·ln(12/6) + 1/6·ln(6/1)
    #        = 2/3·ln2 + 1/6·ln(2/3) + 1/6·ln6 = 2/3·ln2 + 1/6·ln4 = ln2;
    # H(true) = H(3,2,1) = H(pred) (sizes 2,3,1) → NMI = ln2 / H(3,2,1).
    assert metrics.nmi(TRUE, pred) == approx(math.log(2) / entropy(3, 2, 1))


def test_perfect_prediction_with_other_label_values():
    pred = np.array([-10**12, -10**12, -10**12, 2**62, 2**62, 0])
    assert metrics.pairwise_prf(TRUE, pred) == (1.0, 1.0, 1.0)
    assert metrics.bcubed_prf(TRUE, pred) == (approx(1.0), approx(1.0), approx(1.0))
    assert metrics.nmi(TRUE, pred) == approx(1.0)


def test_all_singletons_prediction():
    pred = np.arange(6)
    # Pairwise: pk = 6 − 6 = 0 → P = 1 by definition; tk = 6 − 6 = 0; qk = 9+4+1 − 6 = 8 → R = 0;
    # F = 0 (P + R > 0, PR = 0).
    assert metrics.pairwise_prf(TRUE, pred) == (1.0, 0.0, 0.0)
    # BCubed P = Σ 1/1 / 6 = 1; R = (1/3·3 + 1/2·2 + 1/1)/6 = 3/6 = 1/2; F = 2·½/(3/2) = 2/3.
    assert metrics.bcubed_prf(TRUE, pred) == (approx(1.0), approx(0.5), approx(2 / 3))
    # Prediction determines truth, so I = H(true); H(pred) = ln6 → NMI = sqrt(H(3,2,1)/ln6).
    assert metrics.nmi(TRUE, pred) == approx(math.sqrt(entropy(3, 2, 1) / math.log(6)))


def test_single_cluster_prediction():
    pred = np.full(6, 42)
    # Pairwise: tk = 9+4+1 − 6 = 8 = qk, pk = 36 − 6 = 30 → P = 4/15, R = 1, F = 2·(4/15)/(19/15) = 8/19.
    p, r, f = metrics.pairwise_prf(TRUE, pred)
    assert (p, r, f) == (approx(4 / 15), 1.0, approx(8 / 19))
    # BCubed P = (9/6 + 4/6 + 1/6)/6 = 14/36 = 7/18; R = (9/3 + 4/2 + 1/1)/6 = 1; F = 2·(7/18)/(25/18) = 14/25.
    assert metrics.bcubed_prf(TRUE, pred) == (approx(7 / 18), approx(1.0), approx(14 / 25))
    # One side a single cluster, the other not: NMI = 0 (pinned).
    assert metrics.nmi(TRUE, pred) == 0.0


def test_degenerate_cases():
    # Both a single cluster: identical partitions.
    assert metrics.nmi([3, 3, 3], [1, 1, 1]) == 1.0
    assert metrics.pairwise_prf([3, 3, 3], [1, 1, 1]) == (1.0, 1.0, 1.0)
    # One item: pk = qk = 0 → P = R = 1 by the guards; NMI 1.
    assert metrics.pairwise_prf([7], [-7]) == (1.0, 1.0, 1.0)
    assert metrics.bcubed_prf([7], [-7]) == (1.0, 1.0, 1.0)
    assert metrics.nmi([7], [-7]) == 1.0
    # Both all singletons: no pairs anywhere (P = R = 1); H = ln3 on both sides and I = ln3.
    assert metrics.pairwise_prf([0, 1, 2], [5, 4, 3]) == (1.0, 1.0, 1.0)
    assert metrics.nmi([0, 1, 2], [5, 4, 3]) == approx(1.0)
    # Truth all singletons, prediction one pair: qk = 0 → R = 1; tk = 0, pk = 2 → P = 0; F = 0.
    assert metrics.pairwise_prf([0, 1, 2], [0, 0, 1]) == (0.0, 1.0, 0.0)
    # All-singleton truth against a single cluster: NMI 0.
    assert metrics.nmi([0, 1, 2], [9, 9, 9]) == 0.0


def test_cluster_stats():
    assert metrics.cluster_stats([4, 4, -1, 9, 9, 9, 2**40]) == {
        "n_items": 7, "n_clusters": 4, "n_singletons": 2, "largest_cluster": 3}


def test_evaluate_keys_and_plain_types():
    out = metrics.evaluate(TRUE, np.array([5, 5, 7, 7, 7, -1], dtype=np.int32))
    assert list(out) == ["n_items", "n_clusters", "n_singletons", "n_true_classes",
                         "pairwise_precision", "pairwise_recall", "pairwise_f",
                         "bcubed_precision", "bcubed_recall", "bcubed_f", "nmi"]
    assert out["n_items"] == 6 and out["n_clusters"] == 3
    assert out["n_singletons"] == 1 and out["n_true_classes"] == 3
    for key in ("n_items", "n_clusters", "n_singletons", "n_true_classes"):
        assert type(out[key]) is int
    for key in ("pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_precision",
                "bcubed_recall", "bcubed_f", "nmi"):
        assert type(out[key]) is float
    assert out["pairwise_f"] == approx(0.5)
    assert out["bcubed_f"] == approx(7 / 9)


@pytest.mark.parametrize("true, pred, message", [
    ([0, 1, 2], [0, 1], "3 items but labels_pred has 2"),
    ([[0, 1]], [[0, 1]], "must be 1-D"),
    ([], [], "empty"),
    ([0.5, 1.0], [0, 1], "must be integers"),
    (["a", "b"], [0, 1], "must be integers"),
])
def test_rejects_bad_input(true, pred, message):
    for func in (metrics.contingency, metrics.pairwise_prf, metrics.bcubed_prf,
                 metrics.nmi, metrics.evaluate):
        with pytest.raises(ValueError, match=message):
            func(true, pred)


def test_cluster_stats_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        metrics.cluster_stats(np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match="1-D"):
        metrics.cluster_stats(np.zeros((2, 2), dtype=np.int64))


# ------------------------------------------------------------ brute force
def brute_force(true, pred) -> dict:
    """Direct O(N²) definitions: count pairs, score each item, tally joint frequencies."""
    n = len(true)
    both = same_pred = same_true = 0
    for i in range(n):
        for j in range(i + 1, n):
            sp, st = pred[i] == pred[j], true[i] == true[j]
            both += sp and st
            same_pred += sp
            same_true += st
    precision = both / same_pred if same_pred else 1.0
    recall = both / same_true if same_true else 1.0
    pairwise = (precision, recall, 2 * precision * recall / (precision + recall)
                if precision + recall else 0.0)
    item_p = item_r = 0.0
    for i in range(n):
        cluster = [j for j in range(n) if pred[j] == pred[i]]
        klass = [j for j in range(n) if true[j] == true[i]]
        correct = sum(1 for j in cluster if true[j] == true[i])
        item_p += correct / len(cluster)
        item_r += correct / len(klass)
    bp, br = item_p / n, item_r / n
    bcubed = (bp, br, 2 * bp * br / (bp + br))
    joint, a, b = Counter(zip(true, pred)), Counter(true), Counter(pred)
    mi = sum(c / n * math.log(n * c / (a[t] * b[p])) for (t, p), c in joint.items())
    ht = -sum(c / n * math.log(c / n) for c in a.values())
    hp = -sum(c / n * math.log(c / n) for c in b.values())
    if ht == 0 and hp == 0:
        nmi = 1.0
    elif ht == 0 or hp == 0:
        nmi = 0.0
    else:
        nmi = mi / math.sqrt(ht * hp)
    return {"pairwise": pairwise, "bcubed": bcubed, "nmi": nmi}


def random_case(rng, n=None):
    n = n or int(rng.integers(1, 60))
    true = rng.integers(0, int(rng.integers(1, 12)), n)
    pred = rng.integers(-5, int(rng.integers(-4, 15)), n)
    return true, pred


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_brute_force(seed):
    rng = np.random.default_rng(seed)
    true, pred = random_case(rng)
    expected = brute_force(true.tolist(), pred.tolist())
    tol = dict(rel=1e-9, abs=1e-12)
    assert metrics.pairwise_prf(true, pred) == pytest.approx(expected["pairwise"], **tol)
    assert metrics.bcubed_prf(true, pred) == pytest.approx(expected["bcubed"], **tol)
    assert metrics.nmi(true, pred) == pytest.approx(expected["nmi"], **tol)


@pytest.mark.parametrize("seed", range(10))
def test_invariant_to_relabelling_and_item_order(seed):
    rng = np.random.default_rng(100 + seed)
    true, pred = random_case(rng, n=500)
    base = metrics.evaluate(true, pred)
    # Any bijection of label values (to negative and huge ints) on either side,
    # and any common reordering of the items, leaves every score unchanged.
    true_values = np.unique(true)
    new_true = rng.permutation(true_values.size).astype(np.int64) * -(2**40) - 3
    pred_values = np.unique(pred)
    new_pred = rng.choice(2**62, size=pred_values.size, replace=False).astype(np.int64)
    true2 = new_true[np.searchsorted(true_values, true)]
    pred2 = new_pred[np.searchsorted(pred_values, pred)]
    order = rng.permutation(true.size)
    moved = metrics.evaluate(true2[order], pred2[order])
    assert moved.keys() == base.keys()
    for key, value in base.items():
        assert moved[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


@pytest.mark.parametrize("seed", range(5))
def test_swapping_truth_and_prediction_swaps_precision_and_recall(seed):
    true, pred = random_case(np.random.default_rng(200 + seed), n=300)
    p, r, f = metrics.pairwise_prf(true, pred)
    assert metrics.pairwise_prf(pred, true) == pytest.approx((r, p, f), rel=1e-12)
    p, r, f = metrics.bcubed_prf(true, pred)
    assert metrics.bcubed_prf(pred, true) == pytest.approx((r, p, f), rel=1e-12)
    assert metrics.nmi(pred, true) == pytest.approx(metrics.nmi(true, pred), rel=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_nmi_matches_sklearn(seed):
    sk = pytest.importorskip("sklearn.metrics")
    true, pred = random_case(np.random.default_rng(300 + seed))
    expected = sk.normalized_mutual_info_score(true, pred, average_method="geometric")
    assert metrics.nmi(true, pred) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_large_input_stays_sparse():
    # 10⁶ items in 10⁵ clusters: a dense contingency matrix would need 10¹⁰ cells.
    rng = np.random.default_rng(1)
    true = rng.integers(0, 100_000, 1_000_000)
    pred = np.where(rng.random(true.size) < 0.9, true, rng.integers(0, 100_000, true.size))
    out = metrics.evaluate(true, pred * 7 - 10**15)
    assert out["n_items"] == 1_000_000
    assert 0.8 < out["bcubed_f"] < 1.0 and 0.8 < out["pairwise_f"] < 1.0


def test_hard_cluster_bins_by_hand():
    """Five identities of sizes 1, 2, 3, 4, 5: one per bin, smallest first.  The size-3
    identity is split 2 + 1 and the size-5 one merged with the size-1 identity."""
    true = np.array([0] + [1] * 2 + [2] * 3 + [3] * 4 + [4] * 5)
    pred = np.array([9] + [1] * 2 + [2, 2, 7] + [3] * 4 + [9] * 5)
    bins = metrics.hard_cluster_scores(true, pred)["size"]
    assert [b["bin"] for b in bins] == ["sz-1", "sz-2", "sz-3", "sz-4", "sz-5"]
    assert [b["n_items"] for b in bins] == [1, 2, 3, 4, 5]
    # sz-3 (identity 2 alone): pairs 2·1 found of 3·2: P 1, R 1/3, F 0.5.
    assert bins[2]["pairwise_precision"] == 1.0 and bins[2]["pairwise_f"] == pytest.approx(0.5)
    # Scored on its own items, the merged identity 4 (sz-5) is one cluster: perfect.
    assert bins[4]["pairwise_f"] == 1.0 and bins[4]["bcubed_f"] == 1.0
    # sz-1 is a singleton identity, alone in its bin: nothing to find, nothing wrong.
    assert bins[0]["pairwise_f"] == 1.0


def test_sparsity_is_one_minus_the_mean_pairwise_cosine():
    a = np.array([1.0, 0.0])
    b = np.array([np.sqrt(0.5), np.sqrt(0.5)])
    c = np.array([0.0, 1.0])
    x = np.array([a, b, c, a, a, c])
    true = np.array([0, 0, 0, 1, 1, 2])
    classes, sparsity = metrics.class_sparsity(true, x)
    # Class 0: cosines ab 0.707, ac 0, bc 0.707 -> mean 0.471; class 1: two equal rows -> 0.
    np.testing.assert_allclose(sparsity, [1 - np.sqrt(0.5) * 2 / 3, 0.0, 0.0], atol=1e-12)
    bins = metrics.hard_cluster_scores(true, np.array([0, 0, 1, 2, 2, 3]), x, n_bins=3)
    assert [b["bin"] for b in bins["sparsity"]] == ["sp-1", "sp-2", "sp-3"]
    assert bins["sparsity"][0]["n_items"] == 3, "the sparsest identity first"
    with pytest.raises(ValueError, match="do not match"):
        metrics.class_sparsity(true, x[:4])
