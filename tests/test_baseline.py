import numpy as np

import pytest

from facecluster.baseline import (best_threshold, components_from_edges, knn_threshold_clusters,
                                  threshold_scores)


def test_hand_made_threshold_components():
    # 0-1 similar, 1-2 similar only from 2's side, 3 alone, 4-5 below threshold.
    ids = np.array([[0, 1, 2], [1, 0, 3], [2, 1, 0], [3, 4, 0], [4, 5, 3], [5, 4, 2]], dtype=np.int32)
    sims = np.array([[1, .9, .3], [1, .9, .2], [1, .8, .1], [1, .4, .1], [1, .5, .4], [1, .5, .0]],
                    dtype=np.float32)
    labels = knn_threshold_clusters(ids, sims, threshold=0.7)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 2, 3])
    np.testing.assert_array_equal(knn_threshold_clusters(ids, sims, 0.45), [0, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(knn_threshold_clusters(ids, sims, 1.01), np.arange(6))


def test_padding_is_ignored():
    ids = np.array([[0, -1], [1, 0]], dtype=np.int32)
    sims = np.array([[1, -1], [1, .9]], dtype=np.float32)
    np.testing.assert_array_equal(knn_threshold_clusters(ids, sims, -2.0), [0, 0])


def test_labels_do_not_depend_on_edge_order():
    rng = np.random.default_rng(3)
    rows, cols = rng.integers(0, 40, 30), rng.integers(0, 40, 30)
    perm = rng.permutation(30)
    a = components_from_edges(40, rows, cols)
    b = components_from_edges(40, cols[perm], rows[perm])
    np.testing.assert_array_equal(a, b)
    assert a[0] == 0 and set(np.unique(a)) == set(range(a.max() + 1))


def test_threshold_calibration_picks_the_best_threshold_by_hand():
    # Two pairs at cosine 0.9, the pairs 0.5 apart; labels follow the pairs.
    ids = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 2, 1]])
    sims = np.array([[1, 0.9, 0.5], [1, 0.9, 0.5], [1, 0.9, 0.5], [1, 0.9, 0.5]], dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    scores = threshold_scores(ids, sims, labels, np.array([0.4, 0.5, 0.6, 0.9, 0.95]))
    by_t = {s["threshold"]: s for s in scores}
    # 0.4 and 0.5 (≥): one cluster, pairwise precision 2/6, recall 1 -> F = 0.5.
    assert by_t[0.4]["f_pairwise"] == pytest.approx(0.5) and by_t[0.5]["f_pairwise"] == pytest.approx(0.5)
    assert by_t[0.6]["f_pairwise"] == 1.0 and by_t[0.9]["f_bcubed"] == 1.0
    assert by_t[0.95]["f_pairwise"] == 0.0  # singletons
    assert best_threshold(scores)["threshold"] == 0.6, "ties go to the lowest threshold"
    strict = threshold_scores(ids, sims, labels, np.array([0.9]), strict=True)
    assert strict[0]["f_pairwise"] == 0.0, "strict: 0.9 is not > 0.9"


def test_tolerance_takes_the_largest_threshold_near_the_best(tmp_path):
    """The same pairs: F is 1 from τ 0.6 to 0.9, so a tolerance moves τ to 0.9, and the
    threshold command applies it to a calibration file."""
    import json

    from facecluster import cli, io

    ids = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 2, 1]], dtype=np.int32)
    sims = np.array([[1, 0.9, 0.5]] * 4, dtype=np.float32)
    labels = np.array([0, 0, 1, 1])
    scores = threshold_scores(ids, sims, labels, np.array([0.4, 0.6, 0.9, 0.95]))
    assert best_threshold(scores)["threshold"] == 0.6
    assert best_threshold(scores, 0.01)["threshold"] == 0.9
    assert best_threshold(scores, 0.3)["threshold"] == 0.9  # 0.4 scores 0.5 / 0.67: too far
    assert best_threshold(scores, 1.0)["threshold"] == 0.95
    io.write_arrays(tmp_path / "knn.h5", {"ids": ids, "sims": sims})
    io.write_arrays(tmp_path / "features.zarr", {"features": np.eye(4, dtype=np.float32)})
    (tmp_path / "calibration.json").write_text(json.dumps({"threshold": 0.6, "scores": scores}))
    for tolerance, expected in (("0", 0.6), ("0.01", 0.9)):
        out = tmp_path / f"clusters-{tolerance}.h5"
        assert cli.main(["threshold", "--knn", str(tmp_path / "knn.h5"), "--features",
                         str(tmp_path / "features.zarr"), "--threshold", "auto", "--tolerance",
                         tolerance, "--calibration", str(tmp_path / "calibration.json"),
                         "--out", str(out)]) == 0
        assert io.read_attrs(out)["threshold"] == expected
