"""Tests for facecluster.ingest: every format round-trips, bad input is stopped at the door."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import zarr

from facecluster import cli
from facecluster.core import ingest, io
from facecluster.core.ingest import IngestError


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(20, 8)).astype(np.float32)
    labels = rng.integers(-3, 5, size=20).astype(np.int64) * 1_000_003
    ids = np.array([f"person_{i % 7}/img é {i:03d}.jpg" for i in range(20)])
    return features, labels, ids


def unit(x):
    x = x.astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_meta(path, labels):
    path.write_text("".join(f"{v}\n" for v in labels))


def test_npy_with_npy_labels(tmp_path, data):
    features, labels, _ = data
    np.save(tmp_path / "f.npy", features)
    np.save(tmp_path / "y.npy", labels.astype(np.int32))
    out, lab, ids, info = ingest.load({"path": str(tmp_path / "f.npy"), "normalise": "none",
                                       "labels_path": str(tmp_path / "y.npy")})
    assert out.dtype == np.float32 and np.array_equal(out, features)
    assert lab.dtype == np.int64 and np.array_equal(lab, labels)
    assert ids is None
    assert info["format"] == "npy" and info["normalise"] == "none" and info["center"] is None
    assert set(info["checksums"]) == {str(tmp_path / "f.npy"), str(tmp_path / "y.npy")}


def test_npy_with_text_labels_and_unlabeled(tmp_path, data):
    features, labels, _ = data
    np.save(tmp_path / "f.npy", features.astype(np.float64))
    write_meta(tmp_path / "labels.txt", labels)
    out, lab, _, _ = ingest.load({"path": str(tmp_path / "f.npy"),
                                  "labels_path": str(tmp_path / "labels.txt")})
    np.testing.assert_allclose(out, unit(features), atol=1e-6)
    assert np.array_equal(lab, labels)
    out, lab, ids, _ = ingest.load({"path": str(tmp_path / "f.npy")})
    assert lab is None and ids is None and out.shape == (20, 8)


def test_npz_with_ids(tmp_path, data):
    features, labels, names = data
    np.savez(tmp_path / "d.npz", emb=features, who=labels, fname=names)
    out, lab, ids, info = ingest.load({"path": str(tmp_path / "d.npz"), "features_key": "emb",
                                       "labels_key": "who", "ids_key": "fname",
                                       "normalise": "none"})
    assert np.array_equal(out, features) and np.array_equal(lab, labels)
    assert ids.dtype.kind == "U" and ids.tolist() == names.tolist()
    assert info["features_key"] == "emb" and info["labels_source"].endswith("d.npz[who]")
    # Unlabeled: the default asks for no labels even though the file has some.
    np.savez(tmp_path / "x.npz", X=features)
    _, lab, ids, _ = ingest.load({"path": str(tmp_path / "x.npz")})
    assert lab is None and ids is None


def test_bin_with_meta(tmp_path, data):
    features, labels, _ = data
    features.astype("<f4").tofile(tmp_path / "features.bin")
    write_meta(tmp_path / "labels.meta", labels)
    out, lab, ids, info = ingest.load({"path": str(tmp_path / "features.bin"), "dim": 8,
                                       "labels_path": str(tmp_path / "labels.meta"),
                                       "normalise": "none"})
    assert np.array_equal(out, features) and np.array_equal(lab, labels) and ids is None
    assert info["format"] == "bin"
    _, lab, _, _ = ingest.load({"path": str(tmp_path / "features.bin"), "dim": 8})
    assert lab is None


@pytest.mark.parametrize("suffix", [".h5", ".hdf5"])
def test_hdf5_nested_datasets_and_string_ids(tmp_path, data, suffix):
    features, labels, names = data
    path = tmp_path / f"d{suffix}"
    with h5py.File(path, "w") as f:
        f.create_dataset("emb/X", data=features.astype(np.float16))
        f.create_dataset("meta/y", data=labels)
        f.create_dataset("meta/names", data=names.astype(object), dtype=h5py.string_dtype())
        f.create_dataset("meta/raw", data=np.char.encode(names, "utf-8"))
    out, lab, ids, info = ingest.load({"path": str(path), "features_key": "emb/X",
                                       "labels_key": "meta/y", "ids_key": "meta/names",
                                       "normalise": "none"})
    assert info["format"] == "hdf5"
    assert np.array_equal(out, features.astype(np.float16).astype(np.float32))
    assert np.array_equal(lab, labels) and ids.tolist() == names.tolist()
    # Fixed-width byte strings are decoded as UTF-8.
    _, _, ids, _ = ingest.load({"path": str(path), "features_key": "emb/X", "ids_key": "meta/raw"})
    assert ids.tolist() == names.tolist()


def test_zarr_group_and_bare_array(tmp_path, data):
    features, labels, names = data
    path = tmp_path / "d.zarr"
    group = zarr.open_group(str(path), mode="w")
    group.create_array("X", data=features)
    group.create_array("y", data=labels.astype(np.int32))
    group.create_array("ids", shape=names.shape, dtype=str)[...] = names
    out, lab, ids, info = ingest.load({"path": str(path), "labels_key": "y", "ids_key": "ids",
                                       "normalise": "none"})
    assert np.array_equal(out, features) and np.array_equal(lab, labels)
    assert ids.dtype.kind == "U" and ids.tolist() == names.tolist()
    assert len(info["checksum"]) == 64
    # A bare Zarr array is read as the features.
    zarr.create_array(str(tmp_path / "bare.zarr"), data=features)
    out, lab, _, _ = ingest.load({"path": str(tmp_path / "bare.zarr"), "normalise": "none"})
    assert np.array_equal(out, features) and lab is None


def test_explicit_format_overrides_suffix(tmp_path, data):
    features, _, _ = data
    features.tofile(tmp_path / "emb.f32")
    out, _, _, _ = ingest.load({"path": str(tmp_path / "emb.f32"), "format": "bin", "dim": 8,
                                "normalise": "none"})
    assert np.array_equal(out, features)


def test_normalisations(tmp_path, data):
    features, _, _ = data
    features = features + 3.0  # a large common component, as in dlib embeddings
    np.save(tmp_path / "f.npy", features)
    out, _, _, info = ingest.load({"path": str(tmp_path / "f.npy"), "normalise": "l2"})
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out, unit(features), atol=1e-6)
    assert info["center"] is None
    out, _, _, info = ingest.load({"path": str(tmp_path / "f.npy"), "normalise": "center_l2"})
    centre, _ = ingest.balanced_centre(features.astype(np.float32))
    np.testing.assert_allclose(info["center"], centre, rtol=1e-6)
    np.testing.assert_allclose(out, unit(features - centre), atol=1e-5)


def test_normalisation_in_many_blocks(tmp_path, data, monkeypatch):
    features, _, _ = data
    np.save(tmp_path / "f.npy", features + 1)
    whole, _, _, _ = ingest.load({"path": str(tmp_path / "f.npy"), "normalise": "center_l2"})
    monkeypatch.setattr(ingest, "BLOCK_BYTES", 3 * 8 * 8)  # 3 rows per block
    blocked, _, _, _ = ingest.load({"path": str(tmp_path / "f.npy"), "normalise": "center_l2"})
    np.testing.assert_allclose(blocked, whole, atol=1e-6)


# ------------------------------------------------------------ the shared real data
# (``shared_data``, conftest.py: ``../shared/data`` beside the clone; this module looked
# for it inside the clone, where it never is, and skipped these two everywhere.)
def test_lfw_facenet_bin_meta(shared_data):
    folder = shared_data / "lfw_facenet128_subset"
    features, labels, ids, info = ingest.load({"path": str(folder / "features.bin"), "dim": 128,
                                               "labels_path": str(folder / "labels.meta")})
    assert features.shape == (2921, 128) and features.dtype == np.float32
    assert labels.shape == (2921,) and np.unique(labels).size == 353
    assert ids is None and info["format"] == "bin"
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)


def test_lfw_dlib_npz(shared_data):
    features, labels, ids, info = ingest.load({"path": str(shared_data / "lfw_dlib128_dev.npz"),
                                               "labels_key": "y", "ids_key": "fname",
                                               "normalise": "center_l2"})
    assert features.shape == (7171, 128)
    assert np.unique(labels).size == 2954 and ids.shape == (7171,)
    assert len(info["center"]) == 128
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)


# ------------------------------------------------------------ bad input
def expect_error(spec, *fragments):
    with pytest.raises(IngestError) as caught:
        ingest.load(spec)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_missing_files(tmp_path, data):
    expect_error({"path": str(tmp_path / "nope.npy")}, "nope.npy", "not found")
    np.save(tmp_path / "f.npy", data[0])
    expect_error({"path": str(tmp_path / "f.npy"), "labels_path": str(tmp_path / "gone.meta")},
                 "gone.meta", "not found")


def test_a_file_named_npz_that_is_not_one(tmp_path, data):
    """A text file, or an .npy array, named .npz: numpy read it as a pickle and said the
    file held pickled data; the message now says what the file is not."""
    (tmp_path / "text.npz").write_text("X,y\n0.1,3\n")
    expect_error({"path": str(tmp_path / "text.npz")}, "text.npz", "not a zip archive")
    np.save(tmp_path / "array.npy", data[0])
    (tmp_path / "array.npy").rename(tmp_path / "array.npz")
    expect_error({"path": str(tmp_path / "array.npz")}, "array.npz", "not a zip archive")


def test_unknown_suffix_and_spec_keys(tmp_path, data):
    data[0].tofile(tmp_path / "f.dat")
    expect_error({"path": str(tmp_path / "f.dat")}, "f.dat", "suffix")
    np.save(tmp_path / "f.npy", data[0])
    expect_error({"path": str(tmp_path / "f.npy"), "labels": "y"}, "f.npy", "unknown input spec")
    expect_error({"path": str(tmp_path / "f.npy"), "normalise": "l1"}, "f.npy", "normalise")
    expect_error({"path": str(tmp_path / "f.npy"), "labels_key": "y"}, "f.npy", "labels_path")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rows(tmp_path, data, bad):
    features = data[0].copy()
    features[[5, 11, 12], [0, 3, 7]] = bad
    np.save(tmp_path / "f.npy", features)
    expect_error({"path": str(tmp_path / "f.npy")}, "f.npy",
                 "3 rows contain NaN or infinite values (first at row 5)")


def test_float64_overflowing_float32_is_rejected(tmp_path, data):
    features = data[0].astype(np.float64)
    features[9, 2] = 1e300
    np.save(tmp_path / "f.npy", features)
    expect_error({"path": str(tmp_path / "f.npy")}, "1 rows contain NaN or infinite", "row 9")


def test_zero_rows(tmp_path, data):
    features = data[0].copy()
    features[[4, 15]] = 0.0
    np.save(tmp_path / "f.npy", features)
    expect_error({"path": str(tmp_path / "f.npy"), "normalise": "none"}, "f.npy",
                 "2 rows are all zeros (first at row 4)")


def test_bad_rows_are_found_across_blocks(tmp_path, data, monkeypatch):
    monkeypatch.setattr(ingest, "BLOCK_BYTES", 2 * 8 * 8)  # 2 rows per block
    features = data[0].copy()
    features[[13, 18], 1] = np.nan
    features[[7, 19]] = 0
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["X"] = features
    expect_error({"path": str(path)}, "d.h5[X]", "2 rows contain NaN", "first at row 13")
    features[[13, 18], 1] = 1.0
    with h5py.File(path, "w") as f:
        f["X"] = features
    expect_error({"path": str(path)}, "d.h5[X]", "2 rows are all zeros (first at row 7)")


def test_row_equal_to_mean_under_center_l2(tmp_path):
    np.save(tmp_path / "f.npy", np.ones((4, 3), dtype=np.float32))
    expect_error({"path": str(tmp_path / "f.npy"), "normalise": "center_l2"}, "f.npy",
                 "row 0 equals the mean")


def test_dimension_mismatch(tmp_path, data):
    np.save(tmp_path / "f.npy", data[0])
    expect_error({"path": str(tmp_path / "f.npy"), "dim": 16}, "f.npy", "dimension 8",
                 "`dim` is 16")


def test_label_count_mismatch(tmp_path, data):
    features, labels, names = data
    np.save(tmp_path / "f.npy", features)
    write_meta(tmp_path / "labels.meta", labels[:-2])
    expect_error({"path": str(tmp_path / "f.npy"), "labels_path": str(tmp_path / "labels.meta")},
                 "labels.meta", "18 labels for 20 feature rows", "f.npy")
    np.savez(tmp_path / "d.npz", X=features, y=labels[:5], ids=names[:3])
    expect_error({"path": str(tmp_path / "d.npz"), "labels_key": "y"}, "d.npz[y]",
                 "5 labels for 20")
    expect_error({"path": str(tmp_path / "d.npz"), "ids_key": "ids"}, "d.npz[ids]",
                 "3 ids for 20")


def test_bin_size_and_dim(tmp_path, data):
    path = tmp_path / "features.bin"
    path.write_bytes(data[0].tobytes() + b"\0\0\0\0")
    expect_error({"path": str(path), "dim": 8}, "features.bin", "not a multiple of 4·dim = 32")
    expect_error({"path": str(path)}, "features.bin", "`dim` is required")


def test_a_bin_of_unit_rows_read_at_another_dim_names_the_right_one(tmp_path):
    """A raw file has no shape: unit rows of D 128 read at D 256 (or 64) gave rows of
    norm 1.41 (or 0.71) and clustered as garbage; now refused, naming D 128."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 128))
    (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("<f4").tofile(tmp_path / "f.bin")
    for wrong in (256, 64):
        expect_error({"path": str(tmp_path / "f.bin"), "dim": wrong}, "f.bin",
                     f"unit length read at D = 128 and not at the D = {wrong} given")
    out, _, _, _ = ingest.load({"path": str(tmp_path / "f.bin"), "dim": 128})
    assert out.shape == (300, 128)
    x.astype("<f4").tofile(tmp_path / "raw.bin")  # rows of any length: nothing to tell
    assert ingest.load({"path": str(tmp_path / "raw.bin"), "dim": 256})[0].shape == (150, 256)


@pytest.mark.parametrize("kind", ["npy", "bin", "h5", "npz", "zarr"])
def test_empty_input(tmp_path, kind):
    empty = np.zeros((0, 8), dtype=np.float32)
    if kind == "npy":
        np.save(tmp_path / "e.npy", empty)
    elif kind == "bin":
        (tmp_path / "e.bin").write_bytes(b"")
    elif kind == "h5":
        with h5py.File(tmp_path / "e.h5", "w") as f:
            f["X"] = empty
    elif kind == "npz":
        np.savez(tmp_path / "e.npz", X=empty)
    else:
        zarr.open_group(str(tmp_path / "e.zarr"), mode="w").create_array("X", shape=(0, 8),
                                                                          dtype="f4")
    expect_error({"path": str(tmp_path / f"e.{kind}"), "dim": 8}, f"e.{kind}", "empty (0 rows")


@pytest.mark.parametrize("array, word", [
    (np.array([["a", "b"], ["c", "d"]]), "strings"),
    (np.ones((3, 2), dtype=bool), "booleans"),
    (np.ones((3, 2), dtype=np.complex64), "complex"),
])
def test_non_numeric_features(tmp_path, array, word):
    np.save(tmp_path / "f.npy", array)
    expect_error({"path": str(tmp_path / "f.npy")}, "f.npy", "must be real numbers", word)
    np.savez(tmp_path / "f.npz", X=array)
    expect_error({"path": str(tmp_path / "f.npz")}, "f.npz[X]", "must be real numbers", word)


def test_object_arrays_are_refused(tmp_path):
    np.save(tmp_path / "f.npy", np.array([[1, "a"], [None, 2.0]], dtype=object),
            allow_pickle=True)
    expect_error({"path": str(tmp_path / "f.npy")}, "f.npy", "not numeric")
    np.savez(tmp_path / "f.npz", X=np.array([[1, "a"], [None, 2.0]], dtype=object))
    expect_error({"path": str(tmp_path / "f.npz")}, "f.npz", "'X' cannot be read")
    (tmp_path / "junk.npy").write_text("not numpy")
    expect_error({"path": str(tmp_path / "junk.npy")}, "junk.npy", "not a .npy file")


def test_hdf5_string_features(tmp_path):
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("X", data=np.array([["a", "b"]], dtype=object), dtype=h5py.string_dtype())
    expect_error({"path": str(tmp_path / "s.h5")}, "s.h5[X]", "must be real numbers")


@pytest.mark.parametrize("shape", [(20,), (2, 5, 2)])
def test_features_not_2d(tmp_path, shape):
    np.save(tmp_path / "f.npy", np.ones(shape, dtype=np.float32))
    expect_error({"path": str(tmp_path / "f.npy")}, "f.npy", "must be a 2-D array",
                 str(shape))


def test_labels_not_integers(tmp_path, data):
    features, labels, _ = data
    np.save(tmp_path / "f.npy", features)
    spec = {"path": str(tmp_path / "f.npy"), "labels_path": str(tmp_path / "y.npy")}
    fractional = labels.astype(np.float64)
    fractional[6] = 2.5
    np.save(tmp_path / "y.npy", fractional)
    expect_error(spec, "y.npy", "labels are not integers", "first at item 6")
    np.save(tmp_path / "y.npy", labels > 0)
    expect_error(spec, "y.npy", "labels are not integers", "bool")
    np.save(tmp_path / "y.npy", labels.astype(str))
    expect_error(spec, "y.npy", "labels are not integers")
    # Whole numbers stored as floats are fine.
    np.save(tmp_path / "y.npy", labels.astype(np.float64))
    assert np.array_equal(ingest.load(spec)[1], labels)
    # A text file: the offending line is named.
    (tmp_path / "y.meta").write_text("1\n2\n\n3.5\n" + "4\n" * 16)
    expect_error({**spec, "labels_path": str(tmp_path / "y.meta")}, "y.meta",
                 "line 4 is '3.5'")
    (tmp_path / "y.meta").write_text("1 2\n" * 20)
    expect_error({**spec, "labels_path": str(tmp_path / "y.meta")}, "y.meta",
                 "one integer per line")
    np.savez(tmp_path / "d.npz", X=features, y=labels.astype(np.float32) + 0.5)
    expect_error({"path": str(tmp_path / "d.npz"), "labels_key": "y"}, "d.npz[y]",
                 "labels are not integers")


def test_missing_keys_list_what_exists(tmp_path, data):
    features, labels, _ = data
    np.savez(tmp_path / "d.npz", emb=features, y=labels)
    expect_error({"path": str(tmp_path / "d.npz")}, "d.npz", "no features array 'X'",
                 "holds: emb, y")
    expect_error({"path": str(tmp_path / "d.npz"), "features_key": "emb", "labels_key": "lab"},
                 "d.npz", "no labels array 'lab'", "emb, y")
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["g/emb"] = features
    expect_error({"path": str(tmp_path / "d.h5")}, "d.h5", "no features array 'X'", "g/emb")
    group = zarr.open_group(str(tmp_path / "d.zarr"), mode="w")
    group.create_array("emb", data=features)
    expect_error({"path": str(tmp_path / "d.zarr"), "features_key": "emb", "ids_key": "names"},
                 "d.zarr", "no ids array 'names'", "holds: emb")


# ------------------------------------------------------------ nothing written on failure
def run_cli_ingest(tmp_path, input_spec, normalise="l2"):
    out, manifest = tmp_path / "out" / "features.zarr", tmp_path / "out" / "manifest.json"
    dataset = {"input": input_spec, "normalise": normalise}
    code = cli.main(["ingest", "--dataset", json.dumps(dataset), "--part", "test",
                     "--out", str(out), "--manifest", str(manifest)])
    return code, out, manifest


def test_failed_load_writes_nothing(tmp_path, data):
    features = data[0].copy()
    features[3] = np.nan
    np.save(tmp_path / "f.npy", features)
    code, out, manifest = run_cli_ingest(tmp_path, {"path": str(tmp_path / "f.npy")})
    assert code == 2
    assert not out.exists() and not manifest.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cli_ingest_round_trip(tmp_path, data):
    features, labels, names = data
    np.savez(tmp_path / "d.npz", X=features, y=labels, fname=names)
    code, out, manifest = run_cli_ingest(
        tmp_path, {"path": str(tmp_path / "d.npz"), "labels_key": "y", "ids_key": "fname"},
        normalise="center_l2")
    assert code == 0
    stored = io.read_arrays(out)
    assert sorted(stored) == ["features", "ids", "labels"]
    assert stored["ids"].tolist() == names.tolist()
    assert np.array_equal(stored["labels"], labels)
    saved = io.read_json(manifest)
    assert saved["n"] == 20 and saved["dim"] == 8 and saved["has_ids"] is True
    assert saved["n_classes"] == np.unique(labels).size and saved["normalise"] == "center_l2"
    assert io.read_attrs(out)["checksum"] == saved["checksum"]


# ------------------------------------------------------------ writers
@pytest.mark.parametrize("suffix", [".zarr", ".h5"])
def test_write_features_round_trip(tmp_path, data, suffix):
    features, labels, names = data
    path = tmp_path / f"features{suffix}"
    ingest.write_features(path, features, labels, names, {"source": "x", "n": 20})
    stored = io.read_arrays(path)
    assert np.array_equal(stored["features"], features)
    assert stored["labels"].dtype == np.int64 and np.array_equal(stored["labels"], labels)
    assert stored["ids"].dtype.kind == "U" and stored["ids"].tolist() == names.tolist()
    assert io.read_attrs(path) == {"source": "x", "n": 20}
    unlabeled = tmp_path / f"bare{suffix}"
    ingest.write_features(unlabeled, features, None, None, {})
    assert io.array_names(unlabeled) == ["features"]
    with pytest.raises(ValueError, match="labels have shape"):
        ingest.write_features(tmp_path / f"bad{suffix}", features, labels[:3], None, {})
    assert not (tmp_path / f"bad{suffix}").exists()


def test_write_manifest(tmp_path):
    manifest = {"extra": 1, "n": 3, "dim": 2, "source": "s", "checksum": "c", "normalise": "l2",
                "has_labels": False, "has_ids": False, "n_classes": None}
    ingest.write_manifest(tmp_path / "m.json", manifest)
    saved = io.read_json(tmp_path / "m.json")
    assert list(saved)[:8] == list(ingest.MANIFEST_KEYS) and saved["extra"] == 1
    with pytest.raises(ValueError, match="lacks dim, checksum"):
        ingest.write_manifest(tmp_path / "n.json", {k: v for k, v in manifest.items()
                                                     if k not in ("dim", "checksum")})
    assert not (tmp_path / "n.json").exists()


# ------------------------------------------------------------ split by identity
def test_split_by_identity():
    rng = np.random.default_rng(5)
    labels = rng.integers(-50, 50, size=1000) * 7919
    train, test = ingest.split_by_identity(labels, 0.3, seed=1)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(1000))
    assert not set(labels[train]) & set(labels[test])
    n_ids = np.unique(labels).size
    assert np.unique(labels[train]).size == round(0.3 * n_ids)
    again = ingest.split_by_identity(labels, 0.3, seed=1)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)
    other = ingest.split_by_identity(labels, 0.3, seed=2)
    assert not np.array_equal(other[0], train)
    # The identities drawn do not depend on the order of the items.
    order = rng.permutation(1000)
    moved_train, _ = ingest.split_by_identity(labels[order], 0.3, seed=1)
    assert set(labels[order][moved_train]) == set(labels[train])


def test_a_train_part_of_one_identity_is_refused_naming_its_file(tmp_path, data):
    """A ``train:`` file of one person's faces: the methods that learn from the train part
    would choose τ or train on it with nothing to tell apart."""
    features, labels = data[0], data[1]
    person = labels == labels[labels >= 0][0]  # negative labels: unknown identities
    np.savez(tmp_path / "one.npz", X=features[person], y=labels[person])
    np.savez(tmp_path / "all.npz", X=features, y=labels)
    dataset = {"input": {"path": str(tmp_path / "all.npz"), "labels_key": "y"},
               "train": {"path": str(tmp_path / "one.npz"), "labels_key": "y"}}
    with pytest.raises(IngestError, match=r"one\.npz: the train part holds 1 identity; "):
        ingest.load_part(dataset, "train")
    assert ingest.load_part(dataset, "test")[0].shape == features.shape


def test_split_by_identity_edges():
    train, test = ingest.split_by_identity(np.array([4, 4, 9]), 0.01, seed=0)
    assert train.size and test.size  # at least one identity on each side
    with pytest.raises(ValueError, match="cannot split 1 identity"):
        ingest.split_by_identity(np.array([3, 3, 3]), 0.5, seed=0)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        ingest.split_by_identity(np.array([1, 2]), 1.0, seed=0)


# ------------------------------------------------------------ training subsample
def test_subsample_identities_hand_made():
    labels = np.array([5, 5, 5, 7, 9, 9, 7, 3])  # sizes: 3→1, 5→3, 7→2, 9→2
    order = np.random.default_rng(0).permutation(4)  # the draw over sorted identities [3,5,7,9]
    keep = ingest.subsample_identities(labels, 4, seed=0)
    identities, sizes = np.array([3, 5, 7, 9]), np.array([1, 3, 2, 2])
    fits = np.cumsum(sizes[order]) <= 4
    expected = set(identities[order][:np.argmin(fits) if not fits.all() else 4])
    assert set(labels[keep]) == expected
    assert np.array_equal(keep, np.flatnonzero(np.isin(labels, list(expected))))
    assert keep.size <= 4
    # Everything fits: everything is kept.
    assert np.array_equal(ingest.subsample_identities(labels, 8, seed=3), np.arange(8))
    # One identity larger than the budget is still kept whole.
    assert ingest.subsample_identities(np.array([1, 1, 1]), 2, seed=0).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="positive number of items"):
        ingest.subsample_identities(labels, 0, seed=0)


def test_subsample_identities_properties():
    rng = np.random.default_rng(11)
    labels = rng.zipf(1.6, size=5000) % 400
    for budget in (1, 50, 700, 4999):
        keep = ingest.subsample_identities(labels, budget, seed=2)
        kept = np.unique(labels[keep])
        # Whole identities: every face of a kept identity is kept.
        assert np.array_equal(keep, np.flatnonzero(np.isin(labels, kept)))
        assert keep.size <= budget or kept.size == 1
        assert np.array_equal(ingest.subsample_identities(labels, budget, seed=2), keep)
    assert not np.array_equal(ingest.subsample_identities(labels, 700, seed=3),
                              ingest.subsample_identities(labels, 700, seed=2))


def test_cli_ingest_subsamples_the_train_part_only(tmp_path):
    dataset = {"generator": {"preset": "tiny", "seed": 0, "dim": 16},
               "train_subsample": {"max_items": 300, "seed": 1}}
    counts = {}
    for part in ("train", "test"):
        out, manifest = tmp_path / part / "features.zarr", tmp_path / part / "manifest.json"
        assert cli.main(["ingest", "--dataset", json.dumps(dataset), "--part", part,
                         "--out", str(out), "--manifest", str(manifest)]) == 0
        counts[part] = io.read_json(manifest)
    train = counts["train"]
    assert train["n"] <= 300 and train["train_subsample"]["n_before"] == 1000
    assert train["n_classes"] < train["train_subsample"]["identities_before"] == 40
    assert counts["test"]["n"] == 1000 and "train_subsample" not in counts["test"]


def test_identity_folds_test_every_identity_once():
    labels = np.repeat(np.arange(23), 3)
    seen = []
    for fold in range(5):
        train, test = ingest.fold_by_identity(labels, 5, fold, seed=1)
        assert not set(labels[train]) & set(labels[test])
        assert sorted(np.concatenate([train, test])) == list(range(labels.size))
        seen += sorted(set(labels[test].tolist()))
    assert sorted(seen) == list(range(23))
    with pytest.raises(ValueError, match="fold must lie in 0..4"):
        ingest.fold_by_identity(labels, 5, 5, seed=1)
