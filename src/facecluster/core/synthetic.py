"""Synthetic face embeddings: the workflow's built-in dataset.

A deterministic (by seed) generator of labelled, unit-length face embeddings
whose statistics imitate those of a real face-recognition model (ArcFace-like
cosine similarities), so the workflow runs anywhere with no download.  It is
meant to be hard the way real faces are hard, not an easy set of Gaussian
blobs: identity sizes are long-tailed, some people look alike, faces of one
person fall into several modes, pose and lighting pull faces of different
people together, and low-quality faces drift away from their owner towards
each other.

Generative model
----------------
Global, shared by both splits (the "embedding model"):

* a nuisance subspace ``P`` (``dim × nuisance_rank``, orthonormal) in which
  pose and lighting live for everybody;
* a unit "low-quality" direction ``g`` towards which blurred, tiny or
  occluded faces of any person drift.

Per identity ``i`` (drawn separately for each split; the two splits never
share an identity, like MS-Celeb-1M part0 / part1):

* size ``n_i``: a fraction ``singleton_fraction`` of the identities have one
  face; the others have ``2 + Multinomial(...)`` faces with log-normal
  weights of shape ``size_sigma``, so a few identities are large and many
  are small.  Sizes add up exactly to ``n_train`` / ``n_test``.
* centre ``c_i`` on the unit sphere, drawn from an anisotropic Gaussian whose
  variance along axis ``j`` is proportional to ``(j + 1) ** -centre_spectrum_decay``:
  real embeddings use far fewer effective dimensions than they have, which
  widens the spread of cosines between different people.
* look-alikes: a fraction ``lookalike_fraction`` of the identities is
  grouped in twos to ``lookalike_max_group``; the members of a group share an
  anchor ``a`` and are set to ``normalise(sqrt(rho) a + sqrt(1 - rho) u)``
  (``u`` orthogonal to ``a``), which gives member centres a cosine of about
  ``rho ~ Uniform(lookalike_cos)`` with each other.
* spread: a target face-to-centre cosine ``cc_i ~ Uniform(centre_cos)``;
  the within-identity offset has squared norm ``r_i**2 = 1 / cc_i**2 - 1``,
  so dense and sparse identities coexist.
* modes (pose, age, make-up, photo sessions...): mode weights come from a
  Dirichlet process with concentration ``mode_concentration``, truncated at
  ``max_modes`` (stick-breaking: ``v_j ~ Beta(1, mode_concentration)``,
  ``w_j = v_j prod_{l<j} (1 - v_l)``), so an identity has a few big modes and
  rare ones, and larger identities occupy more modes (about
  ``mode_concentration * log(1 + n_i / mode_concentration)``).  A share
  ``mode_share`` of the offset energy ``r_i**2`` sits in a per-mode offset,
  the rest is per-face noise.  Of both, a share ``nuisance_share`` lies in the
  shared subspace ``P`` and the remainder is isotropic::

      M_ik = r_i sqrt(mode_share) (sqrt(1 - nuisance_share) u_ik
                                   + sqrt(nuisance_share) P z_ik)

  with ``u_ik ~ N(0, I/dim)`` and ``z_ik ~ N(0, I/nuisance_rank)``.  Since
  ``P`` is the same for everybody, two people in the same pose or light are
  closer than two random people.

Per face of identity ``i`` in mode ``k``::

    f = normalise(c_i + M_ik + r_i sqrt(1 - mode_share)
                  (sqrt(1 - nuisance_share) e + sqrt(nuisance_share) P w))

with ``e ~ N(0, I/dim)`` and ``w ~ N(0, I/nuisance_rank)``.  A fraction
``lowq_fraction`` of faces is low quality: with quality ``q ~
Uniform(lowq_quality)``::

    f_lq = normalise(q f + sqrt(1 - q**2) h),
    h = sqrt(lowq_pull) g + sqrt(1 - lowq_pull) n,   n a random unit vector

so a low-quality face keeps only part of its identity signal and low-quality
faces of different people are pulled towards each other (cosine about
``(1 - q**2) lowq_pull``), as in real embeddings.

Faces of a split are shuffled (no identity order to exploit).  Train labels
are ``0 .. n_identities_train - 1``, test labels follow them, so the two label
sets are disjoint.  Both are int32.

Parameters (every preset sets all of them; defaults shared by the presets)
------------------------------------------------------------------------
dim                    embedding dimension D.                        256
n_train, n_test        faces in each split.          tiny 1,000; small 10,000;
                                           ms1m 576,494 / 584,013 (MS1M part0/1)
n_identities_train,
n_identities_test      identities in each split.    tiny 40; small 250; ms1m 8,573
singleton_fraction     fraction of identities with exactly one face. 0.15
size_sigma             log-normal shape of the other identities' sizes
                       (larger: a heavier tail, a few very large ones). 1.0
centre_spectrum_decay  anisotropy of identity centres (0: isotropic). 0.7
centre_cos             [lo, hi]: range of the per-identity face-to-centre
                       cosine; low values make sparse identities.   [0.45, 0.9]
lookalike_fraction     fraction of identities in a look-alike group.  0.5
lookalike_max_group    largest look-alike group (groups have 2 .. this). 3
lookalike_cos          [lo, hi]: range of the centre cosine in a group. [0.4, 0.6]
max_modes              truncation of the mode process.               12
mode_concentration     concentration of the mode process (small: one
                       dominant mode; large: many modes of similar weight). 1.5
mode_share             share of within-identity variance that is per mode. 0.5
nuisance_rank          rank of the shared pose/light subspace.       16
nuisance_share         share of within-identity variance in it.      0.7
lowq_fraction          fraction of low-quality faces.                0.15
lowq_quality           [lo, hi]: range of the quality q of a low-quality
                       face (the weight its clean embedding keeps).  [0.2, 0.8]
lowq_pull              squared cosine between a low-quality corruption
                       and the common low-quality direction.         0.5

Calibration
-----------
Measured on ``small`` (seed 0, train split) against real faces (LFW, dlib
128-D, centred and L2-normalised; see shared data README):

=============================================  ================  ============
statistic                                      synthetic small   LFW dlib
=============================================  ================  ============
different-identity cosine, mean ± sd           0.01 ± 0.12       0.00 ± 0.17
same-identity cosine (identity-balanced)
  p5 / median / p95                            0.10/0.51/0.86    0.50/0.73/0.88
  the same without low-quality faces           0.17/0.62/0.87
look-alikes' faces, cosine median              0.21
nearest-neighbour label accuracy
  (faces with a same-identity face)            0.95              0.97
kNN (k=80) + cosine threshold (best in
  0.40..0.80) + connected components:
  pairwise F / BCubed F                        0.83 / 0.81       0.85 / 0.90
=============================================  ================  ============

Over seeds 0-3 of ``small`` the best pairwise F ranges 0.83-0.89 (it is
dominated by the few largest identities) and BCubed F 0.81-0.84.

The defaults aim at ArcFace-like values (same identity mostly 0.3-0.8,
different identities 0 ± 0.1, look-alikes higher) and at data that is
learnable but not separable by a threshold: the errors come from low-quality
faces, rare modes, sparse identities and look-alikes, as in real data.  At the
``ms1m`` scale nearest-neighbour accuracy is 0.93 and the mean share of
same-identity faces among the 80 nearest neighbours is 0.67.

Randomness: every stage draws from its own stream, derived from ``seed`` and
the stage's name with ``numpy.random.SeedSequence``; faces are drawn in blocks
of fixed size, each block from its own stream.  Output is bit-identical for
the same seed and parameters; the test split does not change when only
``n_train`` changes (a change of ``n_identities_train`` shifts its labels,
nothing else).  Memory: identity-level arrays are small
(``identities × max_modes × dim``); faces are written block by block into the
float32 output, so the peak is little more than the output itself.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np

# Rows per generation block: bounds the temporaries (a few block × dim float32
# arrays) while keeping numpy calls large enough to be efficient.  Fixed, not a
# parameter, because the random streams are tied to blocks.
_BLOCK_ROWS = 16384

# Stream identifiers for SeedSequence spawn keys: stable names, never reorder.
_STREAM_GLOBAL = 0
_STREAM_SPLIT = {"train": 1, "test": 2}
_STAGE_IDENTITIES = 0
_STAGE_ORDER = 1
_STAGE_FACES = 2

_COMMON = {
    "dim": 256,
    "singleton_fraction": 0.15,
    "size_sigma": 1.0,
    "centre_spectrum_decay": 0.7,
    "centre_cos": [0.45, 0.9],
    "lookalike_fraction": 0.5,
    "lookalike_max_group": 3,
    "lookalike_cos": [0.4, 0.6],
    "max_modes": 12,
    "mode_concentration": 1.5,
    "mode_share": 0.5,
    "nuisance_rank": 16,
    "nuisance_share": 0.7,
    "lowq_fraction": 0.15,
    "lowq_quality": [0.2, 0.8],
    "lowq_pull": 0.5,
}

PRESETS: dict[str, dict] = {
    # For unit tests: generates in well under a second.
    "tiny": {**_COMMON, "n_train": 1000, "n_test": 1000,
             "n_identities_train": 40, "n_identities_test": 40},
    # The default workflow run.
    "small": {**_COMMON, "n_train": 10000, "n_test": 10000,
              "n_identities_train": 250, "n_identities_test": 250},
    # The sizes of MS-Celeb-1M part0_train / part1_test in learn-to-cluster.
    "ms1m": {**_COMMON, "n_train": 576494, "n_test": 584013,
             "n_identities_train": 8573, "n_identities_test": 8573},
}

# key -> (kind, lower bound, upper bound); kinds: "int", "float", "range"
# (a [lo, hi] pair of floats with lo <= hi).  Bounds are inclusive.
_SPEC: dict[str, tuple[str, float, float]] = {
    "dim": ("int", 2, float("inf")),
    "n_train": ("int", 1, float("inf")),
    "n_test": ("int", 1, float("inf")),
    "n_identities_train": ("int", 1, float("inf")),
    "n_identities_test": ("int", 1, float("inf")),
    "singleton_fraction": ("float", 0.0, 1.0),
    "size_sigma": ("float", 0.0, 10.0),
    "centre_spectrum_decay": ("float", 0.0, 10.0),
    "centre_cos": ("range", 0.01, 1.0),
    "lookalike_fraction": ("float", 0.0, 1.0),
    "lookalike_max_group": ("int", 2, float("inf")),
    "lookalike_cos": ("range", 0.0, 1.0),
    "max_modes": ("int", 1, float("inf")),
    "mode_concentration": ("float", 1e-3, 1e3),
    "mode_share": ("float", 0.0, 1.0),
    "nuisance_rank": ("int", 1, float("inf")),
    "nuisance_share": ("float", 0.0, 1.0),
    "lowq_fraction": ("float", 0.0, 1.0),
    "lowq_quality": ("range", 0.0, 1.0),
    "lowq_pull": ("float", 0.0, 1.0),
}


def _check_value(key: str, value, kind: str, lo: float, hi: float):
    """Return ``value`` normalised to its kind, or raise ValueError naming ``key``."""
    if kind == "int":
        # bool is an Integral in Python; a flag where a count belongs is a mistake.
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"synthetic parameter {key!r} must be an integer, got {value!r}")
        value = int(value)
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"synthetic parameter {key!r} must be a number, got {value!r}")
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"synthetic parameter {key!r} must be finite, got {value!r}")
    else:
        if (isinstance(value, (str, bytes)) or not hasattr(value, "__len__")
                or len(value) != 2):
            raise ValueError(f"synthetic parameter {key!r} must be a [lo, hi] pair, got {value!r}")
        pair = [_check_value(key, v, "float", lo, hi) for v in value]
        if pair[0] > pair[1]:
            raise ValueError(f"synthetic parameter {key!r} must have lo <= hi, got {value!r}")
        return pair
    if not lo <= value <= hi:
        raise ValueError(f"synthetic parameter {key!r} must lie in [{lo}, {hi}], got {value!r}")
    return value


def _validate(params: dict) -> dict:
    """Check every key and value, and the constraints between them."""
    if not isinstance(params, dict):
        raise ValueError(f"synthetic parameters must be a dict, got {type(params).__name__}")
    unknown = sorted(set(params) - set(_SPEC))
    if unknown:
        raise ValueError(f"unknown synthetic parameter(s): {', '.join(map(repr, unknown))}")
    missing = sorted(set(_SPEC) - set(params))
    if missing:
        raise ValueError(f"missing synthetic parameter(s): {', '.join(map(repr, missing))}")
    out = {key: _check_value(key, params[key], *_SPEC[key]) for key in _SPEC}

    for split in ("train", "test"):
        n, k = out[f"n_{split}"], out[f"n_identities_{split}"]
        singles = int(round(out["singleton_fraction"] * k))
        # Every non-singleton identity needs at least two faces.
        needed = singles + 2 * (k - singles)
        if n < needed:
            raise ValueError(
                f"synthetic parameter 'n_{split}' = {n} is too small for "
                f"{k} identities ({singles} singletons): need at least {needed} faces")
        if k == singles and n != k:
            raise ValueError(
                f"synthetic parameter 'singleton_fraction' = 1 needs n_{split} == "
                f"n_identities_{split}, got {n} faces for {k} identities")
    if out["nuisance_rank"] > out["dim"]:
        raise ValueError(
            f"synthetic parameter 'nuisance_rank' = {out['nuisance_rank']} exceeds "
            f"'dim' = {out['dim']}")
    return out


def generator_params(preset: str = "small", **overrides) -> dict:
    """Return the full, validated parameter dict of ``preset`` with ``overrides``.

    Raises ValueError naming the preset, the unknown key, or the key whose
    value is out of range.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown synthetic preset {preset!r}; choose from {sorted(PRESETS)}")
    params = copy.deepcopy(PRESETS[preset])
    unknown = sorted(set(overrides) - set(_SPEC))
    if unknown:
        raise ValueError(f"unknown synthetic parameter(s): {', '.join(map(repr, unknown))}")
    params.update(overrides)
    return _validate(params)


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent stream for one stage, named by ``key``."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=key))


def _unit_rows(a: np.ndarray) -> np.ndarray:
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    return a


def _global_model(p: dict, seed: int) -> dict:
    """The parts of the "embedding model" that both splits share."""
    rng = _rng(seed, _STREAM_GLOBAL)
    dim, rank = p["dim"], p["nuisance_rank"]
    # QR of a Gaussian matrix gives a uniformly random orthonormal basis.
    nuisance, _ = np.linalg.qr(rng.standard_normal((dim, rank)))
    lowq_dir = rng.standard_normal(dim)
    lowq_dir /= np.linalg.norm(lowq_dir)
    # Centre anisotropy: per-axis standard deviations, mean variance 1.
    var = (np.arange(dim) + 1.0) ** -p["centre_spectrum_decay"]
    centre_scale = np.sqrt(var / var.mean())
    return {"nuisance": nuisance, "lowq_dir": lowq_dir, "centre_scale": centre_scale}


def _identity_sizes(rng: np.random.Generator, n: int, k: int, p: dict) -> np.ndarray:
    singles = int(round(p["singleton_fraction"] * k))
    others = k - singles
    sizes = np.ones(k, dtype=np.int64)
    if others:
        weights = rng.lognormal(0.0, p["size_sigma"], size=others)
        extra = rng.multinomial(n - singles - 2 * others, weights / weights.sum())
        sizes[singles:] = 2 + extra
    # Which label ids are singletons should carry no pattern.
    return rng.permutation(sizes)


def _identities(p: dict, split: str, seed: int, model: dict) -> dict:
    """Draw every per-identity quantity of one split (small arrays)."""
    rng = _rng(seed, _STREAM_SPLIT[split], _STAGE_IDENTITIES)
    n, k = p[f"n_{split}"], p[f"n_identities_{split}"]
    dim, rank = p["dim"], p["nuisance_rank"]
    scale = model["centre_scale"]

    sizes = _identity_sizes(rng, n, k, p)
    centres = _unit_rows(rng.standard_normal((k, dim)) * scale)

    # Look-alike groups: members share an anchor a; with u orthogonal to a,
    # normalise(sqrt(rho) a + sqrt(1 - rho) u) puts members at cosine ~rho.
    group = np.full(k, -1, dtype=np.int64)
    members = rng.permutation(k)[: int(round(p["lookalike_fraction"] * k))]
    start, gid = 0, 0
    while len(members) - start >= 2:
        size = min(int(rng.integers(2, p["lookalike_max_group"] + 1)), len(members) - start)
        idx = members[start:start + size]
        anchor = rng.standard_normal(dim) * scale
        anchor /= np.linalg.norm(anchor)
        rho = rng.uniform(*p["lookalike_cos"])
        u = centres[idx] - np.outer(centres[idx] @ anchor, anchor)
        u = _unit_rows(u)
        centres[idx] = _unit_rows(np.sqrt(rho) * anchor + np.sqrt(1.0 - rho) * u)
        group[idx] = gid
        start += size
        gid += 1

    # Spread: the offset norm r that gives face-to-centre cosine cc.
    cc = rng.uniform(*p["centre_cos"], size=k)
    radius = np.sqrt(1.0 / cc**2 - 1.0)

    # Mode weights by truncated stick-breaking (a Dirichlet process): a few
    # big modes and a tail of rare ones, and larger identities occupy more
    # modes, as a celebrity photographed over decades does.
    max_modes = p["max_modes"]
    sticks = rng.beta(1.0, p["mode_concentration"], size=(k, max_modes))
    sticks[:, -1] = 1.0  # the last mode takes what the truncation leaves
    left = np.cumprod(1.0 - sticks, axis=1)
    weights = sticks * np.concatenate([np.ones((k, 1)), left[:, :-1]], axis=1)
    mode_cdf = np.cumsum(weights, axis=1)
    mode_cdf[:, -1] = 1.0  # rounding must not leave a face beyond the last mode

    # Mode offsets: isotropic part plus a part in the shared pose/light
    # subspace; float32 and in place, since this is identities x max_modes x dim.
    ms, ns = p["mode_share"], p["nuisance_share"]
    offsets = rng.standard_normal((k, max_modes, dim), dtype=np.float32)
    offsets *= np.float32(np.sqrt((1.0 - ns) / dim))
    z = rng.standard_normal((k, max_modes, rank), dtype=np.float32)
    z *= np.float32(np.sqrt(ns / rank))
    offsets += z @ model["nuisance"].T.astype(np.float32)
    offsets *= (radius * np.sqrt(ms)).astype(np.float32)[:, None, None]

    return {
        "sizes": sizes,
        "centres": centres.astype(np.float32),
        "lookalike_group": group,
        "radius": radius,
        "mode_cdf": mode_cdf,
        "mode_offsets": offsets,
    }


def _faces(p: dict, split: str, seed: int, model: dict, ids: dict):
    """Draw the faces of one split block by block into float32 output."""
    n, dim, rank = p[f"n_{split}"], p["dim"], p["nuisance_rank"]
    k = len(ids["sizes"])
    order_rng = _rng(seed, _STREAM_SPLIT[split], _STAGE_ORDER)
    # Shuffled so that row order says nothing about identity.
    labels = order_rng.permutation(np.repeat(np.arange(k, dtype=np.int32), ids["sizes"]))

    X = np.empty((n, dim), dtype=np.float32)
    modes = np.empty(n, dtype=np.int8 if p["max_modes"] < 128 else np.int32)
    low_quality = np.zeros(n, dtype=bool)
    ms, ns = p["mode_share"], p["nuisance_share"]
    face_scale = (ids["radius"] * np.sqrt(1.0 - ms)).astype(np.float32)
    nuisance_t = model["nuisance"].T.astype(np.float32)
    lowq_dir = model["lowq_dir"].astype(np.float32)
    pull = p["lowq_pull"]

    for b, start in enumerate(range(0, n, _BLOCK_ROWS)):
        stop = min(start + _BLOCK_ROWS, n)
        rows = stop - start
        rng = _rng(seed, _STREAM_SPLIT[split], _STAGE_FACES, b)
        lab = labels[start:stop]

        # Mode of each face, drawn from its identity's mode weights.
        u = rng.random(rows)
        mode = (u[:, None] > ids["mode_cdf"][lab]).sum(axis=1)
        modes[start:stop] = mode

        # Per-face variation: isotropic noise plus pose/light in the subspace.
        f = rng.standard_normal((rows, dim), dtype=np.float32)
        f *= np.float32(np.sqrt((1.0 - ns) / dim))
        w = rng.standard_normal((rows, rank), dtype=np.float32)
        f += (w * np.float32(np.sqrt(ns / rank))) @ nuisance_t
        f *= face_scale[lab][:, None]
        f += ids["centres"][lab]
        f += ids["mode_offsets"][lab, mode]
        _unit_rows(f)

        # Low-quality faces keep a share q of their signal and drift to g.
        lq = np.flatnonzero(rng.random(rows) < p["lowq_fraction"])
        if len(lq):
            q = rng.uniform(*p["lowq_quality"], size=len(lq)).astype(np.float32)
            h = _unit_rows(rng.standard_normal((len(lq), dim), dtype=np.float32))
            h *= np.float32(np.sqrt(1.0 - pull))
            h += np.float32(np.sqrt(pull)) * lowq_dir
            f[lq] = _unit_rows(q[:, None] * f[lq] + np.sqrt(1.0 - q**2)[:, None] * h)
            low_quality[start + lq] = True

        X[start:stop] = f
    return X, labels, modes, low_quality


def generate_with_truth(params: dict, seed: int = 0,
                        splits: tuple[str, ...] = ("train", "test")) -> dict[str, dict]:
    """Like :func:`generate`, with the generator's ground truth for diagnostics.

    Returns ``{"train": split, "test": split}`` (the ``splits`` asked for), each split a dict with
    ``X`` (N, D) float32 unit rows, ``y`` (N,) int32 labels, ``label_offset``
    (label of the split's first identity), ``centres`` (identities, D) true
    identity centres indexed by ``y - label_offset``, ``lookalike_group``
    (identities,) group id or -1, ``mode`` (N,) each face's mode and
    ``low_quality`` (N,) bool.
    """
    p = _validate(params)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    unknown = sorted(set(splits) - set(_STREAM_SPLIT))
    if unknown or not splits:
        raise ValueError(f"splits must name some of {sorted(_STREAM_SPLIT)}, got {list(splits)}")
    model = _global_model(p, seed)
    out = {}
    offset = 0
    for split in ("train", "test"):
        if split not in splits:
            # Each split draws from its own streams: skipping one changes nothing in the other.
            offset += p[f"n_identities_{split}"]
            continue
        ids = _identities(p, split, seed, model)
        X, labels, modes, low_quality = _faces(p, split, seed, model, ids)
        labels += np.int32(offset)
        out[split] = {
            "X": X,
            "y": labels,
            "label_offset": offset,
            "centres": ids["centres"],
            "lookalike_group": ids["lookalike_group"],
            "mode": modes,
            "low_quality": low_quality,
        }
        offset += p[f"n_identities_{split}"]
    return out


def generate(params: dict, seed: int = 0, splits: tuple[str, ...] = ("train", "test")
             ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Generate the train and test splits described by ``params`` (or only the
    ``splits`` asked for: a split is the same whether or not the other is made).

    ``params`` is a full parameter dict (see :func:`generator_params`).
    Returns ``{"train": (X_train, y_train), "test": (X_test, y_test)}`` with
    ``X`` float32 (N, D) unit rows and ``y`` int32 (N,) labels; the test
    labels do not overlap the train labels.  Same seed and parameters give
    bit-identical arrays.
    """
    full = generate_with_truth(params, seed, splits)
    return {split: (d["X"], d["y"]) for split, d in full.items()}
