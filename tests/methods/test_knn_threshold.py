"""The thresholded kNN baseline through the contract: its stages, its model, its plan."""

import json

import numpy as np
import pytest

import facecluster
from facecluster import cli
from facecluster.core import io
from facecluster.core.components import link_threshold
from facecluster.core.knn import knn_graph
from facecluster.core.params import ParamError

IDS = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 2, 1]], dtype=np.int32)
SIMS = np.array([[1, 0.9, 0.5]] * 4, dtype=np.float32)
LABELS = np.array([0, 0, 1, 1])


def test_the_cluster_stage_applies_the_calibrated_tolerance(tmp_path):
    """F is 1 from τ 0.51 to 0.9 on the calibration: tolerance 0 takes 0.51, 0.01 takes 0.9,
    and the chosen τ is recorded where the summary reads it."""
    io.write_arrays(tmp_path / "knn.h5", {"ids": IDS, "sims": SIMS})
    io.write_arrays(tmp_path / "train.zarr", {"features": np.eye(4, dtype=np.float32),
                                              "labels": LABELS})
    io.write_arrays(tmp_path / "test.zarr", {"features": np.eye(4, dtype=np.float32)})
    common = ["--threads", "1", "--in", f"knn={tmp_path / 'knn.h5'}"]
    assert cli.main(["stage", "knn_threshold", "calibrate", *common,
                     "--in", f"features={tmp_path / 'train.zarr'}", "--params", '{"settings": {}}',
                     "--out", str(tmp_path / "calibration.json")]) == 0
    calibration = io.read_json(tmp_path / "calibration.json")
    assert calibration["threshold"] == pytest.approx(0.51)  # the first τ above the 0.5 edges
    for tolerance, expected in ((0, 0.51), (0.01, 0.9)):
        out = tmp_path / f"clusters-{tolerance}.h5"
        params = {"value": "auto", "tolerance": tolerance, "settings": {}}
        assert cli.main(["stage", "knn_threshold", "cluster", *common,
                         "--in", f"features={tmp_path / 'test.zarr'}",
                         "--in", f"calibration={tmp_path / 'calibration.json'}",
                         "--params", json.dumps(params), "--out", str(out),
                         "--table", str(tmp_path / "clusters.tsv")]) == 0
        attrs = io.read_attrs(out)
        assert attrs["threshold"] == pytest.approx(expected)
        assert attrs["chosen"] == {"threshold": pytest.approx(expected)}
        assert attrs["method"] == "knn_threshold" and attrs["n_clusters"] == 2


def test_the_model_equals_the_library_on_the_knn_graph(clustered):
    x, labels = clustered
    got = facecluster.cluster(x, "knn_threshold", threshold=0.7, knn={"k": 10})
    ids, sims, _ = knn_graph(x, k=10)
    np.testing.assert_array_equal(got, link_threshold(ids, sims, 0.7))


def test_auto_learns_tau_on_labeled_faces_and_saves_it(clustered, tmp_path):
    x, labels = clustered
    model = facecluster.model("knn_threshold", threshold="auto", knn={"k": 10})
    with pytest.raises(ValueError, match="call fit"):
        model.predict(x)
    model.fit(x[:150], labels[:150])
    ids, sims, _ = knn_graph(x[:150], k=10)
    from facecluster.core.selection import list_threshold_scores, plateau_top

    expected = plateau_top(list_threshold_scores(ids, sims, labels[:150]), tolerance=0.01)
    assert model.chosen_ == {"threshold": expected["threshold"]}
    model.save(tmp_path / "model")
    again = facecluster.load_model(tmp_path / "model")
    assert again.chosen_ == model.chosen_
    np.testing.assert_array_equal(again.predict(x[150:]), model.predict(x[150:]))


def test_bad_settings_are_refused_before_any_work():
    with pytest.raises(ParamError, match=r"knn_threshold.threshold: 2 is not valid"):
        facecluster.model("knn_threshold", threshold=2)
    with pytest.raises(ParamError, match="unknown setting 'tau'"):
        facecluster.model("knn_threshold", tau=0.5)
