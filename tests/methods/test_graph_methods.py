"""The unsupervised methods on the kNN graph: each equals its library called directly on a
small hand-made case, refuses bad settings before any work, and turns noise into singletons."""

import importlib

import warnings

import numpy as np
import pytest

import facecluster
from facecluster import registry
from facecluster.core.knn import knn_graph
from facecluster.core.params import ParamError
from facecluster.core.tunable import Graph

from helpers import unit_rows

METHODS = ["hdbscan", "dbscan", "infomap", "leiden", "chinese_whispers", "kmeans", "hac",
           "fc_es"]


@pytest.fixture(scope="module")
def faces():
    """60 unit vectors in 12-D around 6 well-separated centres: every list holds every face
    (k = N), so the sparse kNN graph is the whole distance matrix."""
    rng = np.random.default_rng(11)
    centres = np.eye(12)[:6] * 3.0
    labels = np.repeat(np.arange(6), 10)
    x = unit_rows(centres[labels] + 0.35 * rng.normal(size=(60, 12)))
    ids, sims, _ = knn_graph(x, k=60)
    return x, labels, Graph(ids, sims, x)


def run(name, graph, value, **settings):
    """The method's clustering function at ``value`` of its knob, other settings default."""
    method = registry.get(name)
    knob = next(iter(method.params))
    resolved = method.params.resolve({**settings, knob: value})
    other = {k: v for k, v in resolved.items() if k not in (knob, f"{knob}_tolerance")}
    return importlib.import_module(f"facecluster.methods.{name}").cluster(graph, other, value)


def same_partition(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    pairs = {(x, y) for x, y in zip(a, b)}
    return len(pairs) == len(set(a)) == len(set(b))


def test_every_method_is_registered_and_separates_clean_clusters(faces):
    x, labels, graph = faces
    assert set(METHODS) <= set(registry.names())
    for name in METHODS:
        method = registry.get(name)
        knob = next(iter(method.params))
        value = {"hdbscan": 5, "kmeans": 0.1, "leiden": 0.5, "fc_es": 0.3}.get(name, 0.7)
        # FC-ES scores the overlap of two lists: with lists of every face, all overlap.
        got = run(name, Graph(graph.ids[:, :10], graph.sims[:, :10]) if name == "fc_es"
                  else graph, value)
        # (k-means may stop in a local optimum that splits one centre and joins two)
        assert name == "kmeans" or same_partition(got, labels), (name, got)
        assert method.needs_labels({**method.params.defaults(), knob: "auto"})
        assert not method.needs_labels(method.params.defaults()), name


def test_hdbscan_and_dbscan_equal_scikit_learn_on_the_full_distance_matrix(faces):
    from sklearn.cluster import DBSCAN, HDBSCAN

    x, _, graph = faces
    dense = np.clip(1 - x @ x.T, 0, None)
    np.fill_diagonal(dense, 0)
    expected = HDBSCAN(min_cluster_size=4, metric="precomputed", copy=True).fit_predict(dense)
    got = run("hdbscan", graph, 4)
    assert same_partition(np.where(expected < 0, -1 - np.arange(60), expected), got)
    expected = DBSCAN(eps=0.4, min_samples=3, metric="precomputed").fit_predict(dense)
    assert same_partition(np.where(expected < 0, -1 - np.arange(60), expected),
                          run("dbscan", graph, 0.6))


def test_noise_becomes_singletons():
    from facecluster.core.components import noise_to_singletons

    np.testing.assert_array_equal(noise_to_singletons(np.array([-1, 3, 3, -1, 0])),
                                  [0, 1, 1, 2, 3])


def test_infomap_equals_the_library_on_the_same_links():
    import infomap

    # Two triangles joined by one weak link, and a face linked to nobody.
    ids = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [2, 0, 1, 3], [3, 4, 5, 2],
                    [4, 3, 5, 0], [5, 3, 4, 0], [6, 0, 1, 2]], dtype=np.int32)
    sims = np.array([[1, .9, .8, .3], [1, .9, .85, .1], [1, .8, .85, .62],
                     [1, .9, .8, .62], [1, .9, .85, .1], [1, .8, .85, .1],
                     [1, .2, .2, .2]], dtype=np.float32)
    got = run("infomap", Graph(ids, sims), 0.58)
    im = infomap.Infomap(two_level=True, directed=True, silent=True, seed=1, num_trials=1)
    for i in range(7):
        for j, s in zip(ids[i, 1:], sims[i, 1:]):
            if s >= 0.58:
                im.add_link(i, int(j), float(s))
    im.run()
    with warnings.catch_warnings():  # get_modules: .modules() crashes after faiss's import
        warnings.simplefilter("ignore")
        modules = im.get_modules()
    expected = [modules.get(i, 100 + i) for i in range(7)]
    assert same_partition(expected, got)
    assert got[6] not in got[:6], "a face without links is a singleton"


def test_leiden_equals_leidenalg_on_the_same_graph(faces):
    import igraph as ig
    import leidenalg as la

    _, _, graph = faces
    got = run("leiden", graph, 0.4)
    weights = {}
    for i in range(60):
        for j, s in zip(graph.ids[i], graph.sims[i]):
            if j != i and s > 0:
                key = (min(i, j), max(i, j))
                weights[key] = max(weights.get(key, -1), float(s))
    keys = sorted(weights)
    g = ig.Graph(n=60, edges=keys)
    expected = la.find_partition(g, la.CPMVertexPartition, weights=[weights[k] for k in keys],
                                 resolution_parameter=0.4, seed=0, n_iterations=2).membership
    assert same_partition(expected, got)


def test_chinese_whispers_equals_dlib_on_the_same_edges():
    dlib = pytest.importorskip("dlib")
    ids = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 4, 0], [4, 3, 1], [5, 0, 1]],
                   dtype=np.int32)
    sims = np.array([[1, .9, .7], [1, .9, .8], [1, .8, .7], [1, .9, .1], [1, .9, .1],
                     [1, .1, .1]], dtype=np.float32)
    got = run("chinese_whispers", Graph(ids, sims), 0.6)
    expected = dlib.chinese_whispers([(0, 1, .9), (0, 2, .7), (1, 2, .8), (3, 4, .9)])
    assert same_partition(list(expected) + [9], got)


def test_kmeans_and_hac_equal_their_libraries(faces):
    import faiss
    from sklearn.cluster import AgglomerativeClustering

    x, _, graph = faces
    km = faiss.Kmeans(12, 6, niter=20, seed=1, spherical=True, min_points_per_centroid=1,
                      max_points_per_centroid=256)
    km.train(x)
    assert same_partition(km.index.search(x, 1)[1][:, 0], run("kmeans", graph, 0.1))
    expected = AgglomerativeClustering(n_clusters=None, distance_threshold=0.5,
                                       metric="cosine", linkage="average").fit_predict(x)
    assert same_partition(expected, run("hac", graph, 0.5))


def test_fc_es_edge_scores_equal_a_per_pair_loop():
    from facecluster.methods.fc_es import early_stopped_links, edge_scores

    rng = np.random.default_rng(3)
    x = unit_rows(rng.normal(size=(40, 8)))
    ids, sims, _ = knn_graph(x, k=7)
    got = edge_scores(ids, sims, sigma=0.5)
    p = np.exp(-(2 - 2 * sims.astype(np.float64)) / 0.5)
    p /= p.sum(axis=1, keepdims=True)
    prob = [dict(zip(ids[i], p[i])) for i in range(40)]
    for i in range(40):
        for c, j in enumerate(ids[i]):
            shared = set(ids[i]) & set(ids[j])
            expected = sum((prob[i][l] + prob[j][l]) / 2 for l in shared)
            assert got[i, c] == pytest.approx(expected, abs=1e-6)
    # The walk keeps each list's prefix of edges with s ≥ θ and stops at the first below.
    rows, cols, _ = early_stopped_links(ids, got, 0.1)
    for i in range(40):
        kept = list(cols[rows == i])
        walk = []
        for c in range(1, 7):
            if got[i, c] < 0.1:
                break
            walk.append(ids[i, c])
        assert kept == walk


@pytest.mark.parametrize("name,bad", [("hdbscan", {"min_cluster_size": 1}),
                                      ("dbscan", {"min_samples": 0}),
                                      ("infomap", {"threshold": 1.5}),
                                      ("leiden", {"objective": "louvain"}),
                                      ("kmeans", {"cluster_ratio": 0}),
                                      ("hac", {"linkage": "ward"}),
                                      ("fc_es", {"sigma": 0})])
def test_bad_settings_are_refused_before_work(name, bad):
    with pytest.raises(ParamError, match=f"{name}.{next(iter(bad))}"):
        facecluster.model(name, **bad)


def test_the_api_clusters_without_labels(faces):
    x, labels, _ = faces
    got = facecluster.cluster(x * 5.0, "infomap", knn={"k": 20})  # any scale: rows normalised
    assert same_partition(got, labels)


def test_hdbscan_clusters_a_knn_graph_in_several_pieces(faces):
    """With short lists the kNN graph falls apart into one piece per centre, which
    scikit-learn refuses; the pieces are clustered as if infinitely far apart."""
    x, labels, _ = faces
    ids, sims, _ = knn_graph(x, k=6)
    got = run("hdbscan", Graph(ids, sims), 3)
    assert len(set(zip(labels, got))) == len(set(got)), "no cluster spans two centres"
