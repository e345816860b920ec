from fractions import Fraction

import numpy as np
import pytest

from facecluster.methods.adanets.koff import k_off_labels, neighbour_quality, quality_curve


def ref_curve(row, i, labels, beta):
    """Q(j) of Eq. 3 as exact fractions, walking the row; -1 is no candidate."""
    beta2 = Fraction(beta) ** 2
    size = int((labels == labels[i]).sum())
    hits = seen = 0
    out = []
    for j in row:
        if j >= 0:
            seen += 1
            hits += int(labels[j] == labels[i])
        pr = Fraction(hits, seen) if seen else Fraction(0)
        rc = Fraction(hits, size)
        out.append((1 + beta2) * pr * rc / (beta2 * pr + rc) if hits else Fraction(0))
    return out


def ref_k_off(row, i, labels, beta):
    q = ref_curve(row, i, labels, beta)
    return q.index(max(q)) + 1  # first maximum, as a count


def random_case(seed, n=80, k=12, n_classes=6, pad_rows=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    ids = np.empty((n, k), dtype=np.int32)
    for i in range(n):
        # Self first, then others, same-label ones drawn more often near the front.
        others = np.delete(np.arange(n), i)
        weight = np.where(labels[others] == labels[i], 4.0, 1.0)
        ids[i, 0] = i
        ids[i, 1:] = rng.choice(others, size=k - 1, replace=False, p=weight / weight.sum())
    for i in rng.choice(n, size=pad_rows, replace=False):
        ids[i, rng.integers(1, k):] = -1
    return ids, labels


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0, 0.3])
@pytest.mark.parametrize("seed,pad_rows", [(0, 0), (1, 10), (2, 30)])
def test_k_off_matches_a_direct_loop(seed, pad_rows, beta):
    ids, labels = random_case(seed, pad_rows=pad_rows)
    got = k_off_labels(ids, labels, beta=beta)
    assert got.dtype == np.int32 and got.shape == (len(ids),)
    want = [ref_k_off(ids[i], i, labels, beta) for i in range(len(ids))]
    np.testing.assert_array_equal(got, want)
    q = quality_curve(ids, labels, beta=beta)
    assert q.dtype == np.float32 and q.shape == ids.shape
    ref = np.array([[float(v) for v in ref_curve(ids[i], i, labels, beta)]
                    for i in range(len(ids))])
    np.testing.assert_allclose(q, ref, rtol=1e-6, atol=1e-7)


def test_hand_made_case():
    # Vertex 0's class has 4 members (0, 1, 3, 6). Its list: self, hit, miss, hit, miss, miss.
    labels = np.array([0, 0, 1, 0, 2, 1, 0])
    ids = np.full((7, 6), -1, dtype=np.int32)
    ids[:, 0] = np.arange(7)
    ids[0] = [0, 1, 2, 3, 4, 5]
    # β = 0.5: Q(j) = 1.25·h / (1 + j): 1.25/2, 2.5/3, 2.5/4, 3.75/5, 3.75/6, 3.75/7.
    q = quality_curve(ids, labels, beta=0.5)[0]
    np.testing.assert_allclose(q, [1.25 / 2, 2.5 / 3, 2.5 / 4, 3.75 / 5, 3.75 / 6, 3.75 / 7],
                               rtol=1e-6)
    assert k_off_labels(ids, labels, beta=0.5)[0] == 2
    # β = 2: Q(j) = 5·h / (16 + j), best at j = 4 (15/20 against 10/18).
    assert k_off_labels(ids, labels, beta=2.0)[0] == 4
    # Singletons in their class (vertices 4): only themselves, Q(1) = 1.
    assert quality_curve(ids, labels, 0.5)[4, 0] == pytest.approx(1.0)
    assert k_off_labels(ids, labels, 0.5)[4] == 1
    # Vertex 1's list is itself then padding: flat Q, k_off 1.
    assert (quality_curve(ids, labels, 0.5)[1] == quality_curve(ids, labels, 0.5)[1, 0]).all()


def test_ties_go_to_the_first_maximum():
    # Class of 4, β = 0.5: self (Q = 1.25/2), miss, hit (Q = 2.5/4 = 1.25/2 again), misses.
    labels = np.array([0, 1, 0, 2, 0, 0])
    ids = np.array([[0, 1, 2, 3]] + [[i, -1, -1, -1] for i in range(1, 6)], dtype=np.int32)
    q = quality_curve(ids, labels, beta=0.5)[0]
    assert q[0] == q[2] and q.max() == q[0]
    assert k_off_labels(ids, labels, beta=0.5)[0] == 1


def test_padding_is_no_candidate():
    labels = np.array([0, 0, 0, 1])
    ids = np.array([[0, 1, -1, -1, 2], [1, -1, -1, -1, -1], [2, 3, 0, 1, -1], [3, -1, -1, -1, -1]],
                   dtype=np.int32)
    q = quality_curve(ids, labels, beta=1.0)
    # Row 0: after padding the list is still {0, 1}; then 2 joins: 3 of 3, Q = 1.
    np.testing.assert_allclose(q[0], [2 / 4, 4 / 5, 4 / 5, 4 / 5, 1.0], rtol=1e-6)
    assert k_off_labels(ids, labels, beta=1.0).tolist() == [5, 1, 4, 1]
    assert (k_off_labels(ids, labels, 0.5) >= 1).all()


def test_larger_beta_never_gives_fewer_neighbours():
    # A monotone case: hits front-loaded, then noise; recall-heavy β keeps more.
    labels = np.array([0] * 10 + [1] * 10)
    row = [0, 1, 2, 3, 10, 4, 11, 5, 12, 13, 6, 14, 15, 7]
    ids = np.array([row] + [[i] + [-1] * (len(row) - 1) for i in range(1, 20)], dtype=np.int32)
    k = [int(k_off_labels(ids, labels, beta=b)[0]) for b in (0.25, 0.5, 1.0, 2.0, 4.0)]
    assert k == sorted(k) and k[0] < k[-1]
    # It holds on every row of random cases too (argmax of h_j / (β²·n + j) moves right with β).
    ids, labels = random_case(3, n=120, k=20, pad_rows=20)
    prev = k_off_labels(ids, labels, beta=0.25)
    for beta in (0.5, 1.0, 2.0, 4.0):
        cur = k_off_labels(ids, labels, beta=beta)
        assert (cur >= prev).all()
        prev = cur


def test_neighbour_quality():
    ids, labels = random_case(4, pad_rows=5)
    q = np.array([[float(v) for v in ref_curve(ids[i], i, labels, 0.5)] for i in range(len(ids))])
    best = k_off_labels(ids, labels, 0.5)
    got = neighbour_quality(ids, labels, best, 0.5)
    assert got["q_before"] == pytest.approx(q[:, -1].mean())
    assert got["q_after"] == pytest.approx(q.max(axis=1).mean())
    assert got["q_after"] >= got["q_before"]
    fixed = np.full(len(ids), 3)
    assert neighbour_quality(ids, labels, fixed, 0.5)["q_after"] == pytest.approx(q[:, 2].mean())
    with pytest.raises(ValueError):
        neighbour_quality(ids, labels, np.zeros(len(ids), dtype=int), 0.5)
    with pytest.raises(TypeError):
        neighbour_quality(ids, labels, best.astype(float), 0.5)


def test_class_sizes_override():
    # Labels of a subset: the class sizes of the whole set may be passed in.
    ids = np.array([[0, 1], [1, 0]], dtype=np.int32)
    labels = np.array([5, 5])
    q = quality_curve(ids, labels, beta=1.0, class_sizes=np.array([4, 4]))
    np.testing.assert_allclose(q[0], [2 * 1 / 5, 2 * 2 / 6], rtol=1e-6)
