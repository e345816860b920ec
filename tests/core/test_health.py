"""Silent failures users report, replayed: each input finishes with the right value now, or
with a health finding that says what went wrong (issue: silently wrong results).

Faces are unit vectors around random identity centres: normalise(centre + s·g/√D), so
same-person cosine ≈ 1/(1+s²) and different-person cosine ≈ 0."""

import json

import numpy as np
import pytest
from helpers import warnings_logged

import facecluster
from facecluster import cli
from facecluster.core import health, ingest, io
from facecluster.core.metrics import evaluate


def people(sizes, s=0.6, dim=256, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[labels] + s * rng.normal(size=(labels.size, dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def score(tmp_path, features, truth, pred) -> dict:
    io.write_arrays(tmp_path / "features.zarr", {"features": features, "labels": truth})
    io.write_arrays(tmp_path / "clusters.h5", {"labels": pred.astype(np.int32)})
    assert cli.main(["metrics", "--clusters", str(tmp_path / "clusters.h5"), "--features",
                     str(tmp_path / "features.zarr"), "--out", str(tmp_path / "m.json")]) == 0
    return json.loads((tmp_path / "m.json").read_text())


def test_unknown_labels_are_not_scored_as_one_person(tmp_path):
    """Case 3: 30 people × 10 faces and 100 faces of 100 other people, all labelled −1; a
    perfect clustering was scored F_P 35.29.  Negative labels are unknown: not scored."""
    x, y = people([10] * 30 + [1] * 100)
    truth = np.where(y < 30, y, -1)
    perfect = y
    m = score(tmp_path, x, truth, perfect)
    assert m["pairwise_f"] == 1.0 and m["bcubed_f"] == 1.0 and m["n_unscored"] == 100
    assert m["n_true_classes"] == 30 and m["n_items"] == 300
    # The smallest case: two unrelated faces, both −1, clustered apart: nothing to score.
    m = score(tmp_path, x[:2], np.array([-1, -1]), np.array([0, 1]))
    assert "pairwise_f" not in m and m["n_unscored"] == 2


def test_the_unknown_label_convention_is_applied_at_ingest_and_reported():
    x, y = people([3, 3, 1, 1])
    labels = np.array([0, 0, 0, 1, 1, 1, -1, -1])
    for convention, part, n, expected in (("exclude", "train", 6, [0] * 3 + [1] * 3),
                                          ("exclude", "test", 8, list(labels)),
                                          ("singletons", "test", 8, [0] * 3 + [1] * 3 + [2, 3])):
        _, got, _, manifest = ingest.unknown_identities(x, labels, None, {}, part, convention)
        assert got.tolist() == expected and manifest["n_unknown"] == 2
        assert manifest["health"][0]["check"] == "unknown_labels"
    with pytest.raises(ingest.IngestError, match="unknown_labels must be one of"):
        ingest.unknown_identities(x, labels, None, {}, "test", "ignore")


def test_a_dominant_identity_no_longer_erases_itself_when_centring(tmp_path):
    """Case 4: 3,000 faces of one person and 100 people × 10 faces, center_l2: the plain
    mean sat on the big person and made 3,000 singletons (F_P 0.20).  The centre is now a
    mean no identity can dominate, and the result equals the l2 one."""
    big, _ = people([3000], seed=1)
    small, ys = people([10] * 100, seed=2)
    x = np.vstack([big, small])
    truth = np.r_[np.zeros(3000, int), ys + 1]
    np.save(tmp_path / "faces.npy", x)
    results = {}
    for mode in ("l2", "center_l2"):
        unit, _, _, info = ingest.load({"path": str(tmp_path / "faces.npy"), "normalise": mode})
        labels = facecluster.cluster(unit, "knn_threshold", normalise="none", threshold=0.6,
                                     knn={"k": 30})
        results[mode] = evaluate(truth, labels)["pairwise_f"]
    assert results["l2"] == results["center_l2"] == 1.0
    # The plain mean, as before: the big person is erased, and the health check says so.
    plain = x.mean(axis=0)
    assert ingest._centring_health(x, plain, np.arange(3000), "faces")[0]["check"] == \
        "centring_erased_a_group"


def test_a_component_every_face_shares_is_no_finding(shared_data):
    """dlib's vectors: every face shares one large component (different people at cosine
    0.83).  Centring removes it, as it should; the largest group of close faces chains
    through most of the set, and that is no finding (it fired on 307 LFW photos)."""
    with np.load(shared_data / "lfw_dlib128_dev.npz") as d:
        x = d["X"].astype(np.float64)
    centre, group = ingest.balanced_centre(x)
    assert group.size > 1000  # the chain
    assert ingest._centring_health(x, centre, group, "faces") == []
    # Centred on the chain's own mean instead: still the shared component, still silent.
    assert ingest._centring_health(x, x[group].mean(axis=0), group, "faces") == []


def test_non_unit_vectors_with_normalise_none_are_a_finding(tmp_path):
    """Case 5: vectors of norm 13-25 with normalise: none gave one cluster of 600 faces and
    one WARNING among 200 log lines; now a finding the summary prints."""
    x, _ = people([10] * 60)
    np.save(tmp_path / "f.npy", x * np.linspace(13, 25, 600)[:, None])
    _, _, _, info = ingest.load({"path": str(tmp_path / "f.npy"), "normalise": "none"})
    assert [f["check"] for f in info["health"]] == ["not_unit_length"]
    _, _, _, info = ingest.load({"path": str(tmp_path / "f.npy"), "normalise": "l2"})
    assert info["health"] == []
    # Ingest and a model's input hold rows to one tolerance (norms within 1e-3 of 1): rows
    # at 1.005 passed ingest without a finding and were refused by every model.
    for scale, off in ((1.005, True), (1.0005, False)):
        np.save(tmp_path / "near.npy", x * scale)
        unit, _, _, info = ingest.load({"path": str(tmp_path / "near.npy"), "normalise": "none"})
        assert bool(info["health"]) is off, scale
        if off:
            with pytest.raises(ValueError, match="not unit length"):
                facecluster.model("knn_threshold").predict(unit)
        else:
            facecluster.model("knn_threshold").predict(unit)


def shared(x, c=2.0, seed=1):
    """``x`` with one component of length ``c`` added to every row, then unit rows: two
    people's faces at cosine about c² / (1 + c²), 0.8 with c = 2, as dlib's vectors are."""
    u = np.random.default_rng(seed).normal(size=x.shape[1])
    x = x + c * u / np.linalg.norm(u)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_a_component_every_face_shares_is_a_finding_with_l2_and_not_with_center_l2(tmp_path):
    """Case 6: dlib's LFW vectors with the README's ``normalise: l2`` went to Infomap's
    default τ 0.58 and came out as 12 clusters of 1,398 people, with no finding.  Different
    people at cosine 0.8 now say so at ingest (the summary prints it); centred, they do not,
    nor do faces of unrelated people (cosine about 0)."""
    x, y = people([10] * 60)
    np.savez(tmp_path / "f.npz", X=shared(x) * 7.0, y=y)
    spec = {"path": str(tmp_path / "f.npz"), "features_key": "X", "labels_key": "y"}
    _, _, _, info = ingest.load({**spec, "normalise": "l2"})
    assert [f["check"] for f in info["health"]] == ["shared_component"]
    assert info["health"][0]["cosine_p10"] > 0.7
    assert "center_l2" in info["health"][0]["message"]
    _, _, _, info = ingest.load({**spec, "normalise": "center_l2"})
    assert info["health"] == []
    assert health.shared_component(x, "faces") == []
    # the threshold: random pairs' 10th percentile at 0.5, on either side of it
    assert health.shared_component(shared(x, c=1.2), "faces")      # about 0.59
    assert not health.shared_component(shared(x, c=0.8), "faces")  # about 0.39


def test_the_shared_component_check_on_dlib_and_facenet_vectors(shared_data):
    """The real sets the threshold was read from: dlib's LFW vectors fire with l2 and not
    centred; the LFW FaceNet subset (its own model, near 0 between people) does not."""
    with np.load(shared_data / "lfw_dlib128_dev.npz") as d:
        x = d["X"]
    assert health.shared_component(ingest.normalise_rows(x, "l2"), "dlib")
    assert not health.shared_component(ingest.normalise_rows(x, "center_l2"), "dlib")
    facenet = np.fromfile(shared_data / "lfw_facenet128_subset" / "features.bin",
                          dtype=np.float32).reshape(-1, 128)
    assert not health.shared_component(ingest.normalise_rows(facenet, "l2"), "facenet")


def test_a_model_refuses_rows_that_are_not_unit_length_and_names_a_shared_component():
    """Case 7: ``model("knn_threshold", threshold="auto").fit(raw, y).predict(raw)`` on raw
    dlib rows (norms 1.2-1.7) chose τ 0.99 and returned one cluster, with no finding.  A
    model's input must be unit rows: both calls now say so; unit rows sharing one large
    component are a finding of the prediction."""
    x, y = people([10] * 60)
    model = facecluster.model("knn_threshold", threshold="auto")
    with pytest.raises(ValueError, match="not unit length"):
        model.fit(x * 1.5, y)
    with pytest.raises(ValueError, match="not unit length"):
        facecluster.model("knn_threshold").predict(x * 1.5)
    with pytest.raises(ValueError, match="not unit length"):
        facecluster.cluster(x * 1.5, "knn_threshold", normalise="none")
    plain = model.fit(x, y)
    plain.predict(x)
    assert plain.health == []
    plain.predict(shared(x))
    assert "shared_component" in [f["check"] for f in plain.health]


def test_repeated_ids_are_a_finding_the_summary_prints(tmp_path):
    """Case 8: one id given to two faces passed with a line in ingest.log only, and the two
    rows of clusters.tsv could not be told apart; now a finding, and unique ids none."""
    x, _ = people([10] * 60)
    ids = np.array([f"face-{i}" for i in range(600)])
    np.savez(tmp_path / "f.npz", X=x, ids=ids)
    spec = {"path": str(tmp_path / "f.npz"), "features_key": "X", "ids_key": "ids"}
    assert ingest.load(spec)[3]["health"] == []
    ids[7] = ids[3]
    np.savez(tmp_path / "f.npz", X=x, ids=ids)
    (found,) = ingest.load(spec)[3]["health"]
    assert found["check"] == "repeated_ids" and found["repeats"] == 1


def checks_logged(records) -> list[str]:
    return [r.args[0] for r in records if r.msg.startswith("health check")]


def test_quiet_findings_are_returned_and_not_logged():
    with warnings_logged() as records:
        with health.quiet("shared_component"):
            kept = health.finding("shared_component", "made twice", cosine_p10=0.8)
            health.finding("chained_cluster", "another check")
            with health.quiet():
                health.finding("mostly_singletons", "every check")
        health.finding("shared_component", "outside")
    assert kept == {"check": "shared_component", "message": "made twice", "cosine_p10": 0.8}
    assert checks_logged(records) == ["chained_cluster", "shared_component"]
    assert records[-1].args[1] == "outside"


def test_auto_logs_each_finding_on_the_faces_once_and_passes_on_its_choices(capsys,
                                                                           tmp_path):
    """``auto`` fits and predicts every candidate on held-out parts: each of those logged
    its own shared-component finding (10 warnings for one fit of two candidates over two
    folds), and its prediction kept none of the chosen model's findings.  Now the faces'
    finding is logged once by fit and once by predict, held-out parts' findings not at all,
    and the chosen model's own findings (here: new faces unlike the training faces) are in
    ``health``.  The command line, which checked the faces at ingest, logs it once."""
    x, y = people([10] * 60)
    faces = shared(x)
    model = facecluster.model("auto", candidates=[
        {"method": "kmeans", "cluster_ratio": 0.9},
        {"method": "knn_threshold", "threshold": "auto"}], validation={"folds": 2})
    with warnings_logged() as records:
        model.fit(faces, y)
    assert checks_logged(records) == ["shared_component"]
    # k-means at a fixed ratio learns nothing from labels: auto does not fit it
    assert not [r for r in records if "learns nothing" in r.getMessage()]
    assert model.choice_ == "knn_threshold", model.why_
    with warnings_logged() as records:
        model.predict(faces)
    assert checks_logged(records) == ["shared_component"]
    assert [f["check"] for f in model.health] == ["shared_component"]
    noise = np.random.default_rng(5).normal(size=(300, x.shape[1]))
    model.predict((noise / np.linalg.norm(noise, axis=1, keepdims=True)).astype(np.float32))
    assert "unlike_training_data" in [f["check"] for f in model.health]
    np.save(tmp_path / "faces.npy", faces * 3.0)
    capsys.readouterr()
    assert cli.main(["cluster", "--features", str(tmp_path / "faces.npy"), "--method",
                     "knn_threshold", "--out", str(tmp_path / "c.tsv")]) == 0
    assert capsys.readouterr().err.count("health check shared_component") == 1
    # A model whose faces are centred on a recorded centre: ingest does not check centred
    # faces, so the model's predict does, and logs it (a zero centre leaves the component).
    plain = facecluster.model("knn_threshold")
    plain.input_normalise = {"normalise": "center_l2", "centre": [0.0] * x.shape[1],
                             "refine": None}
    plain.save(tmp_path / "centred-model")
    assert cli.main(["cluster", "--features", str(tmp_path / "faces.npy"), "--model",
                     str(tmp_path / "centred-model"), "--out", str(tmp_path / "m.tsv")]) == 0
    assert capsys.readouterr().err.count("health check shared_component") == 1


def test_the_raw_read_for_the_train_centre_is_no_finding(tmp_path):
    """center_l2 with a split reads the input unnormalised once, for the train part's
    centre: that read is the product's, not a user's normalise: none, and warned nothing."""
    x, y = people([10] * 60)
    np.savez(tmp_path / "f.npz", X=x * np.linspace(13, 25, 600)[:, None], y=y)
    dataset = {"input": {"path": str(tmp_path / "f.npz"), "features_key": "X",
                         "labels_key": "y"},
               "normalise": "center_l2", "split": {"train_fraction": 0.5, "seed": 0}}
    with warnings_logged() as records:
        centre = ingest.train_centre(dataset)
    assert centre.shape == (x.shape[1],)
    assert checks_logged(records) == []
    with warnings_logged() as records:  # the same faces as a user's normalise: none
        ingest.load({**dataset["input"], "normalise": "none"})
    assert checks_logged(records) == ["not_unit_length"]


def test_shared_checks_fire_on_degenerate_results_and_not_on_good_ones():
    x, y = people([10] * 20, s=0.6)
    from facecluster.core.knn import knn_graph

    ids, sims, _ = knn_graph(x, k=20)
    singletons = np.arange(200)
    assert health.mostly_singletons(singletons, ids, sims)[0]["check"] == "mostly_singletons"
    assert health.mostly_singletons(y, ids, sims) == []
    grid = [0.1, 0.2, 0.3]
    flat = [{"threshold": t, "f_pairwise": 1.0, "f_bcubed": 1.0} for t in grid]
    edge = health.at_grid_edge("τ", 0.3, grid, flat)
    assert edge[0]["check"] == "grid_edge" and "same at every value" in edge[0]["message"]
    assert health.at_grid_edge("τ", 0.2, grid) == []
    rising = [{"threshold": t, "f_pairwise": f, "f_bcubed": f}
              for t, f in zip(grid, [0.5, 0.8, 0.9])]
    assert health.at_grid_edge("τ", 0.3, grid, rising, rising[2])[0]["check"] == "grid_edge"
    peaked = [{**e, "f_pairwise": f, "f_bcubed": f} for e, f in zip(rising, [0.5, 0.9, 0.89])]
    # chosen at the edge by a tolerance, the best inside the grid: nothing to warn of
    assert health.at_grid_edge("τ", 0.3, grid, peaked, peaked[2]) == []
    assert health.at_grid_edge("τ", 0.3, grid, peaked)[0]["check"] == "grid_edge"


def test_a_chained_largest_cluster_is_a_finding_and_a_large_true_identity_is_not():
    """Twenty people linked into one cluster: two of its faces are typically strangers
    (cosine ≈ 0), two faces of another cluster at ≈ 0.74.  One person of 200 faces beside
    twenty of 10 is the same largest size, and no finding."""
    x, y = people([10] * 40, s=0.6)
    assert health.chained_cluster(y, x) == []
    chained = np.where(y < 20, 0, y)
    found = health.chained_cluster(chained, x)
    assert found[0]["check"] == "chained_cluster" and found[0]["size"] == 200
    assert found[0]["share"] == 0.5
    assert found[0]["median_within_largest"] < 0.1
    assert found[0]["median_within"] > 0.6
    big, z = people([200] + [10] * 20, s=0.6, seed=1)
    assert health.chained_cluster(z, big) == []
    # the same finding from rows read on demand (io.read_rows), the sample fixed by its seed
    assert health.chained_cluster(chained, lambda rows: x[rows]) == found


def test_a_model_lists_a_chained_cluster_of_its_last_prediction_only():
    """Forty people of ten faces at D 64: a kNN threshold of 0.4 links some of them (a
    60-face cluster), 0.5 none; each prediction's findings replace the last one's."""
    x, y = people([10] * 40, s=0.6, dim=64)
    loose = facecluster.model("knn_threshold", threshold=0.4)
    assert np.bincount(loose.predict(x)).max() == 60
    assert [f["check"] for f in loose.health] == ["chained_cluster"]
    strict = facecluster.model("knn_threshold", threshold=0.5)
    assert evaluate(strict.predict(x), y)["pairwise_f"] == 1.0 and strict.health == []
    assert np.unique(loose.predict(x[:100])).size == 10 and loose.health == []  # ten people


def test_clusters_no_tighter_than_random_faces_are_no_chained_finding():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 64)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for seed in range(5):
        labels = np.random.default_rng(seed).integers(0, 20, 400)
        labels[:200] = 0  # a largest cluster of random faces
        assert health.chained_cluster(labels, x) == []
    assert health.chained_cluster(np.zeros(400, dtype=int), x) == []  # no other cluster


@pytest.mark.parametrize("name", ["features.zarr", "features.h5"])
def test_read_rows_reads_the_rows_asked_for(tmp_path, name):
    x = np.arange(60, dtype=np.float32).reshape(20, 3)
    io.write_arrays(tmp_path / name, {"features": x})
    rows = np.array([0, 3, 4, 19])
    assert np.array_equal(io.read_rows(tmp_path / name, "features", rows), x[rows])
    with pytest.raises(FileNotFoundError, match="missing.zarr"):
        io.read_rows(tmp_path / "missing.zarr", "features", rows)


@pytest.fixture(scope="module")
def trained_adanets():
    """Ada-NETS with its defaults but one model's θ curves (theta_seeds 1: the filter is
    what this checks), trained on the generator's tiny train part at D = 256."""
    from facecluster.core import synthetic

    train = synthetic.generate(synthetic.generator_params("tiny", dim=256), seed=0,
                               splits=("train",))["train"]
    return facecluster.model("adanets", theta_seeds=1).fit(*train)


@pytest.mark.slow
@pytest.mark.parametrize("n_people,per_person", [(80, 5), (20, 10), (26, 15)])
def test_a_collapsed_filter_falls_back_and_says_so(trained_adanets, n_people, per_person):
    """Case 1: people with few faces each, unlike the training data: the adaptive filter
    kept one candidate a face, the graph had no edge, every face was its own cluster.  Now
    the graph falls back to the structure-space lists cut where the training lists ended."""
    x, y = people([per_person] * n_people, s=0.6, seed=3)
    labels = trained_adanets.predict(x)
    assert len(set(labels)) == n_people and evaluate(y, labels)["pairwise_f"] == 1.0
    assert "filter_collapsed" in [f["check"] for f in trained_adanets.health]


@pytest.mark.slow
def test_model_selection_never_keeps_the_untrained_gcn():
    """Case 2: trained on a small labeled set whose held-out identities the untrained GCN
    already clusters perfectly, the random GCN was kept and the test part (two look-alike
    siblings of 400 and 60 faces, 40 others of 12) became 3 clusters.  Right value: 42."""
    rng = np.random.default_rng(7)

    def lookalikes(n, cos):
        a = rng.normal(size=256)
        a /= np.linalg.norm(a)
        out = []
        for _ in range(n):
            u = rng.normal(size=256)
            u -= (u @ a) * a
            out.append(np.sqrt(cos) * a + np.sqrt(1 - cos) * u / np.linalg.norm(u))
        return np.array(out)

    def faces(centres, sizes, seed):
        g = np.random.default_rng(seed)
        labels = np.repeat(np.arange(len(sizes)), sizes)
        x = centres[labels] + 0.6 * g.normal(size=(labels.size, 256)) / 16
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels

    others = rng.normal(size=(40, 256))
    train_centres = np.vstack([lookalikes(2, 0.75) for _ in range(10)]
                              + [others / np.linalg.norm(others, axis=1, keepdims=True)])
    x_train, y_train = faces(train_centres, [15] * 60, seed=8)
    others = rng.normal(size=(40, 256))
    test_centres = np.vstack([lookalikes(2, 0.75), others / np.linalg.norm(others, axis=1,
                                                                            keepdims=True)])
    x_test, y_test = faces(test_centres, [400, 60] + [12] * 40, seed=9)
    model = facecluster.model("adanets", gcn={"steps": 300}, theta_seeds=1).fit(x_train, y_train)
    labels = model.predict(x_test)
    assert len(set(labels)) == 42 and evaluate(y_test, labels)["pairwise_f"] > 0.99
