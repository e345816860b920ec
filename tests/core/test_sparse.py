"""The compiled shared-neighbour sums against a set computation, padding included."""

import numpy as np
import pytest

from facecluster.core.sparse import shared_neighbour_sums


@pytest.mark.parametrize("product", [False, True])
def test_shared_neighbour_sums_equal_a_set_computation(product):
    rng = np.random.default_rng(5)
    n, k = 50, 7
    ids = np.stack([np.concatenate([[i], rng.choice(np.delete(np.arange(n), i), k - 1,
                                                     replace=False)]) for i in range(n)])
    ids[rng.uniform(size=ids.shape) < 0.15] = -1   # padding anywhere but never counted
    left, right = rng.uniform(size=(n, k)), rng.uniform(size=(n, k))
    expected = np.zeros((n, k))
    for i in range(n):
        at_i = {l: c for c, l in enumerate(ids[i]) if l >= 0}
        for c, j in enumerate(ids[i]):
            if j < 0:
                continue
            for m, l in enumerate(ids[j]):
                if l >= 0 and l in at_i:
                    a, b = left[i, at_i[l]], right[j, m]
                    expected[i, c] += a * b if product else a + b
    got = shared_neighbour_sums(ids, left, right, product=product, threads=1)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    np.testing.assert_array_equal(shared_neighbour_sums(ids, left, right, product, threads=2),
                                  got)
