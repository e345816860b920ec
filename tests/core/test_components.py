"""Connected components and the thresholded kNN graph: the helpers every method links with."""

import numpy as np
import pytest

from facecluster.core.components import components_from_edges, link_threshold, renumber


def test_hand_made_threshold_components():
    # 0-1 similar, 1-2 similar only from 2's side, 3 alone, 4-5 below threshold.
    ids = np.array([[0, 1, 2], [1, 0, 3], [2, 1, 0], [3, 4, 0], [4, 5, 3], [5, 4, 2]], dtype=np.int32)
    sims = np.array([[1, .9, .3], [1, .9, .2], [1, .8, .1], [1, .4, .1], [1, .5, .4], [1, .5, .0]],
                    dtype=np.float32)
    np.testing.assert_array_equal(link_threshold(ids, sims, threshold=0.7), [0, 0, 0, 1, 2, 3])
    np.testing.assert_array_equal(link_threshold(ids, sims, 0.45), [0, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(link_threshold(ids, sims, 0.5), [0, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(link_threshold(ids, sims, 0.5, strict=True), [0, 0, 0, 1, 2, 3])
    np.testing.assert_array_equal(link_threshold(ids, sims, 1.01), np.arange(6))


def test_padding_is_ignored():
    ids = np.array([[0, -1], [1, 0]], dtype=np.int32)
    sims = np.array([[1, -1], [1, .9]], dtype=np.float32)
    np.testing.assert_array_equal(link_threshold(ids, sims, -2.0), [0, 0])


def test_labels_do_not_depend_on_edge_order():
    rng = np.random.default_rng(3)
    rows, cols = rng.integers(0, 40, 30), rng.integers(0, 40, 30)
    perm = rng.permutation(30)
    a = components_from_edges(40, rows, cols)
    b = components_from_edges(40, cols[perm], rows[perm])
    np.testing.assert_array_equal(a, b)
    assert a[0] == 0 and set(np.unique(a)) == set(range(a.max() + 1))


def test_edges_outside_the_items_are_refused():
    with pytest.raises(ValueError, match="edges must join items in 0..2"):
        components_from_edges(3, np.array([0]), np.array([3]))


def test_renumber_orders_clusters_by_their_first_item():
    np.testing.assert_array_equal(renumber(np.array([7, -1, 7, 3, -1])), [0, 1, 0, 2, 1])
