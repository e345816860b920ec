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
                     "--in", f"features={tmp_path / 'train.zarr'}", "--params",
                     '{"settings": {}, "size_matched": false, "knn": null}',
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
    # 150 faces: too few to draw smaller sets (selection.MIN_DRAW_FACES), one size only
    assert model.choose(50) == model.choose(150) == {"threshold": expected["threshold"]}
    model.save(tmp_path / "model")
    again = facecluster.load_model(tmp_path / "model")
    np.testing.assert_array_equal(again.predict(x[150:]), model.predict(x[150:]))
    assert again.chosen_ == model.chosen_ == {"threshold": expected["threshold"]}
    # faces of another dimension, and labels that are not identity numbers, are refused
    half = x[150:, : x.shape[1] // 2]
    half = half / np.linalg.norm(half, axis=1, keepdims=True)
    for fitted in (model, again):
        with pytest.raises(ValueError, match=f"D = {half.shape[1]}; this model was fitted on "
                                             f"D = {x.shape[1]}"):
            fitted.predict(half)
    with pytest.raises(ValueError, match="labels must be integer identity numbers"):
        facecluster.model("knn_threshold", threshold="auto").fit(x, labels.astype(float))


def test_bad_settings_are_refused_before_any_work():
    with pytest.raises(ParamError, match=r"knn_threshold.threshold: 2 is not valid"):
        facecluster.model("knn_threshold", threshold=2)
    with pytest.raises(ParamError, match="unknown setting 'tau'"):
        facecluster.model("knn_threshold", tau=0.5)


def test_auto_chooses_on_draws_the_size_of_the_part_clustered():
    """2,400 labeled faces: τ is scored on the whole set and on 3 draws of whole identities
    at 1,200 and 600 faces, each draw on its own kNN graph; a part of 600 faces takes the
    600-face choice.  The 600-face curve equals one computed here draw by draw."""
    from facecluster.core.ingest import subsample_identities
    from facecluster.core.selection import list_threshold_scores, mean_scores, plateau_top

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(240, 32))
    labels = np.repeat(np.arange(240), 10)
    x = centres[labels] + rng.normal(scale=0.35, size=(labels.size, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    model = facecluster.model("knn_threshold", threshold="auto", knn={"k": 10}).fit(x, labels)
    assert [(r["n_faces"], r["draws"]) for r in model.ladder] == [(2400, 1), (1200, 3), (600, 3)]
    rung = model.ladder[2]
    values = np.array([s["threshold"] for s in rung["scores"]])
    by_hand = []
    for seed in range(3):
        keep = subsample_identities(labels, 600, seed)
        ids, sims, _ = knn_graph(x[keep], k=10)
        by_hand.append(list_threshold_scores(ids, sims, labels[keep], values))
    for got, want in zip(rung["scores"], mean_scores(by_hand)):
        assert got["f_pairwise"] == pytest.approx(want["f_pairwise"])
        assert got["f_bcubed"] == pytest.approx(want["f_bcubed"])
    small = plateau_top(rung["scores"], tolerance=0.01)["threshold"]  # τ's own default
    assert model.choose(600) == {"threshold": small}
    model.predict(x[:600])
    assert model.chosen_ == {"threshold": small}
    whole = facecluster.model("knn_threshold", threshold="auto", size_matched=False,
                              knn={"k": 10}).fit(x, labels)
    assert len(whole.ladder) == 1
    assert whole.choose(600) == whole.choose(2400) == model.choose(2400)


def test_an_exported_model_normalises_new_faces_as_its_training_faces_were(tmp_path, capsys):
    """A model the workflow exports records its dataset's normalisation (from the train
    part's manifest): applied from the command line to raw faces that share one large
    component, it centres them on the *training* centre, as the workflow did, without
    ``--normalise``; before, the command line's default l2 put them in one cluster."""
    from facecluster.core import ingest
    from facecluster.core.contract import StageJob

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 64))
    labels = np.repeat(np.arange(30), 10)
    raw = 3.0 * centres[labels] / 8 + 0.15 * rng.normal(size=(300, 64)) + 4.0  # one shared part
    train, new = raw[labels < 15], raw[labels >= 15]
    centre = ingest.balanced_centre(train, labels[labels < 15])[0]
    model = facecluster.model("knn_threshold", threshold="auto", knn={"k": 10})
    model.fit(ingest.normalise_rows(train, "center_l2", centre=centre), labels[labels < 15])
    manifest = tmp_path / "manifest.json"
    io.write_json(manifest, {"normalise": "center_l2", "center": centre.tolist(), "dim": 64})
    folder = tmp_path / "bundle" / "model"
    StageJob("knn_threshold", "bundle", {"training_manifest": str(manifest)}, {},
             str(folder)).save_model(model)
    saved = json.loads((folder / "model.json").read_text())
    assert saved["input_normalise"]["normalise"] == "center_l2" and saved["dim"] == 64
    assert saved["input_normalise"]["refine"] is None
    again = facecluster.load_model(folder)
    expected = again.predict(ingest.normalise_rows(new, "center_l2", centre=centre))
    np.testing.assert_array_equal(again.predict(again.prepare(new)), expected)
    assert np.unique(expected).size >= 12  # 15 people, centred on the training centre
    np.save(tmp_path / "new.npy", new)
    capsys.readouterr()
    assert cli.main(["cluster", "--features", str(tmp_path / "new.npy"), "--model",
                     str(folder), "--out", str(tmp_path / "c.tsv")]) == 0
    got = np.loadtxt(tmp_path / "c.tsv", skiprows=1, dtype=np.int64)[:, 1]
    np.testing.assert_array_equal(got, expected)
    assert "normalising as the model's training faces were: center_l2" in capsys.readouterr().err
    # told otherwise, it does as told, and says what it departs from
    assert cli.main(["cluster", "--features", str(tmp_path / "new.npy"), "--model", str(folder),
                     "--normalise", "l2", "--out", str(tmp_path / "l2.tsv")]) == 0
    assert "training faces were normalised with center_l2" in capsys.readouterr().err
    # faces of another D: the centre's length is refused by name, before any clustering
    np.save(tmp_path / "narrow.npy", new[:, :32])
    assert cli.main(["cluster", "--features", str(tmp_path / "narrow.npy"), "--model",
                     str(folder), "--out", str(tmp_path / "n.tsv")]) == 2
    assert "the centre to subtract has D = 64; these faces have D = 32" in \
        capsys.readouterr().err
