"""Tests for the synthetic face-embedding generator (facecluster.synthetic)."""

from __future__ import annotations

import numpy as np
import pytest

from facecluster.core import synthetic
from facecluster.core.synthetic import PRESETS, generate, generate_with_truth, generator_params


@pytest.fixture(scope="module")
def tiny():
    return generate(generator_params("tiny"), seed=0)


@pytest.fixture(scope="module")
def medium_truth():
    # More identities than "tiny" so group-level statistics are stable, still fast.
    params = generator_params("tiny", n_train=6000, n_identities_train=200,
                              n_test=200, n_identities_test=20)
    return generate_with_truth(params, seed=3)["train"]


def _identity_means(X, y, keep):
    """Unit mean direction of each identity over the faces in ``keep``."""
    labels = np.unique(y[keep])
    means = np.stack([X[keep & (y == lab)].mean(axis=0) for lab in labels])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    return labels, means


# --- determinism ------------------------------------------------------------

def test_same_seed_is_bit_identical(tiny):
    again = generate(generator_params("tiny"), seed=0)
    for split in ("train", "test"):
        assert tiny[split][0].tobytes() == again[split][0].tobytes()
        assert np.array_equal(tiny[split][1], again[split][1])


def test_different_seed_gives_different_data(tiny):
    other = generate(generator_params("tiny"), seed=1)
    for split in ("train", "test"):
        assert tiny[split][0].shape == other[split][0].shape
        assert not np.allclose(tiny[split][0], other[split][0])


def test_test_split_unchanged_when_train_size_changes(tiny):
    bigger = generate(generator_params("tiny", n_train=1500), seed=0)
    assert len(bigger["train"][1]) == 1500
    assert bigger["test"][0].tobytes() == tiny["test"][0].tobytes()
    assert np.array_equal(bigger["test"][1], tiny["test"][1])


def test_generation_spans_several_blocks(monkeypatch):
    # Block boundaries must not break determinism or leave rows unwritten.
    monkeypatch.setattr(synthetic, "_BLOCK_ROWS", 300)
    params = generator_params("tiny")
    a = generate_with_truth(params, seed=5)["train"]
    b = generate_with_truth(params, seed=5)["train"]
    X = a["X"]
    assert X.tobytes() == b["X"].tobytes()
    assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    # Each block draws from its own stream: its per-face draws (here the
    # low-quality flags) do not repeat the previous block's.
    assert not np.array_equal(a["low_quality"][:300], a["low_quality"][300:600])


# --- shapes, dtypes, labels -------------------------------------------------

@pytest.mark.parametrize("dim", [256, 64])
def test_unit_rows_and_dtypes(dim):
    params = generator_params("tiny", dim=dim)
    out = generate(params, seed=0)
    assert set(out) == {"train", "test"}
    for split in ("train", "test"):
        X, y = out[split]
        n = params[f"n_{split}"]
        assert X.dtype == np.float32 and X.shape == (n, dim)
        assert y.dtype == np.int32 and y.shape == (n,)
        assert np.all(np.isfinite(X))
        assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)


def test_train_and_test_identities_are_disjoint(tiny):
    params = generator_params("tiny")
    train_ids = np.unique(tiny["train"][1])
    test_ids = np.unique(tiny["test"][1])
    assert len(train_ids) == params["n_identities_train"]
    assert len(test_ids) == params["n_identities_test"]
    assert np.intersect1d(train_ids, test_ids).size == 0


def test_test_identities_are_new_people(tiny):
    # Disjoint labels are not enough: the test people must not be train
    # people renamed.  Same-person means would have cosine near 1.
    (Xa, ya), (Xb, yb) = tiny["train"], tiny["test"]
    _, train_means = _identity_means(Xa, ya, np.ones(len(ya), dtype=bool))
    _, test_means = _identity_means(Xb, yb, np.ones(len(yb), dtype=bool))
    assert (test_means @ train_means.T).max() < 0.8


def test_rows_are_shuffled(tiny):
    # Identity order must carry no information: labels are not sorted.
    y = tiny["train"][1]
    assert np.count_nonzero(np.diff(y) != 0) > len(y) // 2


# --- realism ----------------------------------------------------------------

def test_identity_sizes_are_long_tailed():
    params = generator_params("small")
    out = generate(params, seed=0)
    for split in ("train", "test"):
        sizes = np.bincount(out[split][1])
        sizes = sizes[sizes > 0]
        assert sizes.sum() == params[f"n_{split}"]
        singletons = round(params["singleton_fraction"] * params[f"n_identities_{split}"])
        assert np.count_nonzero(sizes == 1) == singletons
        assert np.count_nonzero(sizes <= 5) > singletons  # small identities too
        assert sizes.max() >= 8 * np.median(sizes)


def test_tiny_has_singletons_in_both_splits(tiny):
    for split in ("train", "test"):
        sizes = np.bincount(tiny[split][1])
        sizes = sizes[sizes > 0]
        assert np.count_nonzero(sizes == 1) >= 1
        assert sizes.max() >= 4 * np.median(sizes)


def test_same_identity_closer_than_different(tiny):
    X, y = tiny["train"]
    sim = X @ X.T
    same = y[:, None] == y[None, :]
    off_diag = ~np.eye(len(y), dtype=bool)
    same_sim = sim[same & off_diag]
    diff_sim = sim[~same]
    # ArcFace-like ranges: same identity mostly 0.3-0.8, different ~0 +- 0.1.
    assert 0.4 < np.median(same_sim) < 0.8
    assert abs(diff_sim.mean()) < 0.05
    assert 0.05 < diff_sim.std() < 0.16


def test_lookalike_centres_are_closer_than_random(medium_truth):
    X, y, group = medium_truth["X"], medium_truth["y"], medium_truth["lookalike_group"]
    labels, means = _identity_means(X, y, ~medium_truth["low_quality"])
    g = group[labels]
    sim = means @ means.T
    pair = np.triu(np.ones_like(sim, dtype=bool), 1)
    mates = pair & (g[:, None] == g[None, :]) & (g[:, None] >= 0)
    strangers = pair & (g[:, None] != g[None, :])
    assert mates.sum() >= 20
    assert sim[mates].mean() > sim[strangers].mean() + 0.25
    # The true centres of look-alikes sit near the configured cosine range.
    C = medium_truth["centres"]
    ids = np.flatnonzero(group >= 0)
    true = (C[ids] @ C[ids].T)[np.triu(group[ids][:, None] == group[ids][None, :], 1)]
    assert 0.4 < np.median(true) < 0.6


def test_low_quality_faces_are_far_from_their_identity(medium_truth):
    X, y, lq = medium_truth["X"], medium_truth["y"], medium_truth["low_quality"]
    assert 0.1 < lq.mean() < 0.2
    labels, means = _identity_means(X, y, ~lq)
    row = np.full(y.max() + 1, -1)
    row[labels] = np.arange(len(labels))
    has_mean = row[y] >= 0
    own = np.einsum("ij,ij->i", X[has_mean], means[row[y[has_mean]]])
    lq_h = lq[has_mean]
    assert own[lq_h].mean() < own[~lq_h].mean() - 0.2
    # Low-quality faces of different people drift towards each other.
    rng = np.random.default_rng(0)
    lq_rows = rng.choice(np.flatnonzero(lq), 300, replace=False)
    ok_rows = rng.choice(np.flatnonzero(~lq), 300, replace=False)

    def cross(rows):
        s = X[rows] @ X[rows].T
        return s[y[rows][:, None] != y[rows][None, :]].mean()

    assert cross(lq_rows) > cross(ok_rows) + 0.15


def test_faces_in_the_same_mode_are_closer(medium_truth):
    X, y, mode = medium_truth["X"], medium_truth["y"], medium_truth["mode"]
    keep = ~medium_truth["low_quality"]
    X, y, mode = X[keep], y[keep], mode[keep]
    sim = X @ X.T
    same_id = np.triu(y[:, None] == y[None, :], 1)
    same_mode = mode[:, None] == mode[None, :]
    assert sim[same_id & same_mode].mean() > sim[same_id & ~same_mode].mean() + 0.1


def test_larger_identities_have_more_modes(medium_truth):
    y, mode = medium_truth["y"], medium_truth["mode"]
    sizes = np.bincount(y)
    used = np.array([len(np.unique(mode[y == lab])) if sizes[lab] else 0
                     for lab in range(len(sizes))])
    small = (sizes >= 2) & (sizes <= 10)
    large = sizes >= 60
    assert small.sum() >= 5 and large.sum() >= 5
    assert used[large].mean() > used[small].mean() + 2
    assert used.max() <= generator_params("tiny")["max_modes"]


def test_overrides_take_effect():
    params = generator_params("tiny", lowq_fraction=0.0, singleton_fraction=0.0,
                              lookalike_fraction=0.0)
    out = generate_with_truth(params, seed=0)
    for split in ("train", "test"):
        assert not out[split]["low_quality"].any()
        assert np.all(out[split]["lookalike_group"] == -1)
        assert np.bincount(out[split]["y"] - out[split]["label_offset"]).min() >= 2


# --- presets and validation -------------------------------------------------

def test_presets_are_complete_and_valid():
    assert {"tiny", "small", "ms1m"} <= set(PRESETS)
    keys = set(PRESETS["small"])
    for name in PRESETS:
        assert set(PRESETS[name]) == keys
        assert generator_params(name) == PRESETS[name]
    ms1m = PRESETS["ms1m"]
    assert (ms1m["n_train"], ms1m["n_test"]) == (576494, 584013)
    assert ms1m["n_identities_train"] == ms1m["n_identities_test"] == 8573
    assert ms1m["dim"] == 256


def test_generator_params_returns_a_copy():
    params = generator_params("tiny")
    params["centre_cos"][0] = 0.99
    params["dim"] = 3
    assert PRESETS["tiny"]["centre_cos"][0] != 0.99
    assert PRESETS["tiny"]["dim"] == 256


def test_unknown_preset_is_rejected():
    with pytest.raises(ValueError, match="huge"):
        generator_params("huge")


@pytest.mark.parametrize("key, value", [
    ("n_train", 0),
    ("n_train", 10.5),
    ("dim", "256"),
    ("dim", True),
    ("lookalike_fraction", 1.5),
    ("lowq_fraction", -0.1),
    ("centre_cos", [0.9, 0.5]),
    ("centre_cos", [0.5]),
    ("lookalike_cos", "0.5"),
    ("mode_share", float("nan")),
    ("lookalike_max_group", 1),
    ("n_train", 50),  # too few faces for 40 identities of >= 2 faces
    ("mode_concentration", 0.0),
    ("max_modes", 0),
    ("nuisance_rank", 300),  # above dim
])
def test_bad_override_names_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        generator_params("tiny", **{key: value})


def test_unknown_override_names_the_key():
    with pytest.raises(ValueError, match="n_faces"):
        generator_params("tiny", n_faces=10)


def test_generate_validates_its_params():
    params = generator_params("tiny")
    del params["lowq_pull"]
    with pytest.raises(ValueError, match="lowq_pull"):
        generate(params)
    with pytest.raises(ValueError, match="colour"):
        generate({**generator_params("tiny"), "colour": 1})
    with pytest.raises(ValueError, match="seed"):
        generate(generator_params("tiny"), seed=-1)


def test_one_split_alone_equals_that_split_of_both():
    params = generator_params("tiny")
    both = generate(params, seed=4)
    for split in ("train", "test"):
        alone = generate(params, seed=4, splits=(split,))
        assert list(alone) == [split]
        assert np.array_equal(alone[split][0], both[split][0])
        assert np.array_equal(alone[split][1], both[split][1])
    with pytest.raises(ValueError, match="splits must name"):
        generate(params, splits=("validation",))
