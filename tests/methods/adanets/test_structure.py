import numpy as np
import pytest

from facecluster.methods.adanets.structure import (
    expanded_reciprocal_sets,
    jaccard_on_candidates,
    locality_order,
    reciprocal_sets,
    structure_similarity,
)

from helpers import unit_rows


# --- a direct, set-by-set reading of Eq. 10-12 ------------------------------------------------

def ref_neighbours(ids, k):
    return [{int(j) for j in row[:k] if j >= 0} for row in ids]


def ref_reciprocal(ids, k):
    near = ref_neighbours(ids, k)
    return [{r for r in near[v] if v in near[r]} for v in range(len(ids))]


def ref_expanded(ids, k):
    full, half = ref_reciprocal(ids, k), ref_reciprocal(ids, k // 2)
    out = []
    for v in range(len(ids)):
        grown = set(full[v])
        for r in full[v]:
            if len(full[v] & half[r]) >= 2 / 3 * len(half[r]):
                grown |= half[r]
        out.append(grown)
    return out


def ref_jaccard(ids, k):
    sets = ref_expanded(ids, k)
    return np.array([[len(sets[i] & sets[j]) / len(sets[i] | sets[j]) if j >= 0 else 0.0
                      for j in row[:k]] for i, row in enumerate(ids)])


def rows_as_sets(m):
    return [set(m.indices[m.indptr[v]:m.indptr[v + 1]].tolist()) for v in range(m.shape[0])]


def brute_knn(x, k):
    sims = x @ x.T
    key = sims.copy()
    np.fill_diagonal(key, np.inf)  # self first
    ids = np.argsort(-key, axis=1, kind="stable")[:, :k].astype(np.int32)
    return ids, np.take_along_axis(sims, ids, axis=1).astype(np.float32)


def random_graph(seed, n=120, k=10, pad_rows=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, 6))
    x = unit_rows(centres[rng.integers(0, 8, n)] + 0.6 * rng.normal(size=(n, 6)))
    ids, sims = brute_knn(x, k)
    for row in rng.choice(n, size=pad_rows, replace=False):
        cut = rng.integers(1, k)  # keep self, drop the tail
        ids[row, cut:] = -1
        sims[row, cut:] = -np.inf
    return ids, sims


# --- Eq. 10-12 against the direct reading ----------------------------------------------------

@pytest.mark.parametrize("seed,k,pad_rows", [(0, 10, 0), (1, 7, 0), (2, 12, 15), (3, 1, 0)])
def test_sets_and_jaccard_match_python_sets(seed, k, pad_rows):
    ids, _ = random_graph(seed, k=k, pad_rows=pad_rows)
    recip = reciprocal_sets(ids, k)
    assert recip.dtype == bool and recip.shape == (len(ids), len(ids))
    assert rows_as_sets(recip) == ref_reciprocal(ids, k)
    expanded = expanded_reciprocal_sets(ids, k)
    assert rows_as_sets(expanded) == ref_expanded(ids, k)
    jac = jaccard_on_candidates(expanded, ids)
    assert jac.dtype == np.float32 and jac.shape == ids.shape
    np.testing.assert_allclose(jac, ref_jaccard(ids, k), rtol=1e-6, atol=1e-7)
    assert (jac[ids < 0] == 0).all()


def test_small_blocks_and_threads_change_nothing():
    ids, _ = random_graph(4, n=150, k=9, pad_rows=10)
    one = expanded_reciprocal_sets(ids, threads=1)
    many = expanded_reciprocal_sets(ids, threads=3, block_flops=50)
    assert (one != many).nnz == 0
    np.testing.assert_array_equal(jaccard_on_candidates(one, ids, threads=1),
                                  jaccard_on_candidates(one, ids, threads=3, block_flops=50))


def test_k_takes_the_first_columns():
    ids, _ = random_graph(5, k=12)
    assert rows_as_sets(reciprocal_sets(ids, 6)) == ref_reciprocal(ids, 6)
    assert rows_as_sets(expanded_reciprocal_sets(ids, 9)) == ref_expanded(ids, 9)


def test_two_thirds_rule_by_hand():
    # k = 6, k // 2 = 3. N(0, 6) = {0..5}; 1, 2, 3 list 0 back, 4 and 5 do not: R(0, 6) = {0,1,2,3}.
    #   R(1, 3) = {1, 2, 6}: two of its three members lie in R(0, 6), 2 ≥ ⅔·3 → 6 joins R*(0).
    #   R(3, 3) = {3, 7, 8}: one of three in R(0, 6), 1 < 2 → 7 and 8 stay out.
    ids = np.array([
        [0, 1, 2, 3, 4, 5],
        [1, 2, 6, 0, 10, 11],
        [2, 1, 9, 0, 10, 11],
        [3, 7, 8, 0, 10, 11],
        [4, 10, 11, 9, 8, 7],
        [5, 10, 11, 9, 8, 7],
        [6, 1, 10, 11, 9, 8],
        [7, 3, 10, 11, 9, 8],
        [8, 3, 10, 11, 9, 7],
        [9, 10, 11, 4, 5, 6],
        [10, 11, 9, 4, 5, 6],
        [11, 10, 9, 4, 5, 6],
    ], dtype=np.int32)
    assert rows_as_sets(reciprocal_sets(ids, 6))[0] == {0, 1, 2, 3}
    half = rows_as_sets(reciprocal_sets(ids, 3))
    assert half[1] == {1, 2, 6} and half[3] == {3, 7, 8}
    expanded = rows_as_sets(expanded_reciprocal_sets(ids, 6))
    assert expanded[0] == {0, 1, 2, 3, 6}
    assert expanded == ref_expanded(ids, 6)


def test_padding_only_rows_and_bad_input():
    ids = np.array([[0, 1, -1], [1, 0, -1], [2, -1, -1]], dtype=np.int32)
    sims = np.array([[1, .9, -np.inf], [1, .9, -np.inf], [1, -np.inf, -np.inf]], np.float32)
    ss_ids, ss_kappa, ss_cos = structure_similarity(ids, sims, 0.3)
    np.testing.assert_array_equal(ss_ids, ids)
    assert np.isneginf(ss_kappa[ids < 0]).all()
    np.testing.assert_allclose(ss_kappa[:, 0], 1.0)
    with pytest.raises(ValueError):
        reciprocal_sets(np.array([[0, 5]], dtype=np.int32))
    with pytest.raises(ValueError):
        reciprocal_sets(ids, 4)
    with pytest.raises(ValueError):
        structure_similarity(ids, sims, eta=1.5)


# --- the re-ranking ---------------------------------------------------------------------------

@pytest.mark.parametrize("eta", [0.0, 0.3, 0.7])
def test_rerank_keeps_candidates_and_self_first(eta):
    ids, sims = random_graph(6, n=150, k=12, pad_rows=10)
    ss_ids, ss_kappa, ss_cos = structure_similarity(ids, sims, eta=eta)
    assert ss_ids.dtype == np.int32 and ss_kappa.dtype == np.float32
    assert ss_cos.dtype == np.float32 and ss_ids.shape == ids.shape
    np.testing.assert_array_equal(np.sort(ss_ids, axis=1), np.sort(ids, axis=1))
    np.testing.assert_array_equal(ss_ids[:, 0], np.arange(len(ids)))
    kept = np.where(ss_ids >= 0, ss_kappa, -1.0)  # padding (κ = -inf) sorts last
    assert (np.diff(kept[:, 1:], axis=1) <= 0).all(), "κ descending after self"
    # Padding last; ss_cos is each candidate's own cosine.
    assert ((ss_ids < 0) == (ids < 0)).all()
    lookup = {(i, int(j)): s for i in range(len(ids)) for j, s in zip(ids[i], sims[i]) if j >= 0}
    for i in range(len(ids)):
        for j, s in zip(ss_ids[i], ss_cos[i]):
            if j >= 0:
                assert lookup[(i, int(j))] == s


def test_kappa_and_order_match_the_definition():
    ids, sims = random_graph(7, n=100, k=10)
    eta = 0.3
    ss_ids, ss_kappa, _ = structure_similarity(ids, sims, eta=eta)
    jac = ref_jaccard(ids, 10)
    for i in range(len(ids)):
        kappa = (1 - eta) * jac[i] + eta * sims[i].astype(np.float64)
        # Python's sort is stable: ties keep the cosine order. Self pinned first.
        order = sorted(range(10), key=lambda c: (ids[i, c] != i, -np.float32(kappa[c])))
        np.testing.assert_array_equal(ss_ids[i], ids[i, order])
        np.testing.assert_allclose(ss_kappa[i], kappa[order], rtol=1e-5, atol=1e-6)


def test_ties_keep_the_original_order():
    # η = 0 and two candidates with the same Jaccard: they must keep their kNN order.
    ids = np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1]], dtype=np.int32)
    sims = np.array([[1, .9, .8], [1, .9, .7], [1, .8, .7]], dtype=np.float32)
    ss_ids, ss_kappa, _ = structure_similarity(ids, sims, eta=0.0)
    np.testing.assert_array_equal(ss_ids, ids)  # every R* is {0, 1, 2}: all Jaccards are 1
    np.testing.assert_allclose(ss_kappa, 1.0)


def test_eta_one_is_the_cosine_order():
    ids, sims = random_graph(8, n=150, k=12, pad_rows=10)
    ss_ids, ss_kappa, ss_cos = structure_similarity(ids, sims, eta=1.0)
    np.testing.assert_array_equal(ss_ids, ids)
    np.testing.assert_array_equal(ss_cos, sims)
    valid = ids >= 0
    np.testing.assert_array_equal(ss_kappa[valid], sims[valid])


def test_reorder_gives_the_same_result():
    ids, sims = random_graph(9, n=200, k=10, pad_rows=20)
    assert sorted(locality_order(ids).tolist()) == list(range(len(ids)))
    plain = structure_similarity(ids, sims, 0.3, reorder=False)
    fast = structure_similarity(ids, sims, 0.3, reorder=True)
    for a, b in zip(plain, fast):
        np.testing.assert_array_equal(a, b)


def test_structure_space_cleans_noisy_clusters():
    # 12 identities of 25 faces with overlapping clusters: κ puts more same-identity faces
    # early in each list than the cosine does (the point of Eq. 2).
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(12, 16))
    labels = rng.integers(0, 12, size=300)
    x = unit_rows(centres[labels] + 0.7 * rng.normal(size=(300, 16)))
    ids, sims = brute_knn(x, 20)
    ss_ids, _, _ = structure_similarity(ids, sims, 0.3)

    def precision_at(cand, j):
        return (labels[cand[:, 1:j + 1]] == labels[:, None]).mean()

    for j in (5, 10):
        assert precision_at(ss_ids, j) > precision_at(ids, j) + 0.02
