"""Read a user's face embeddings into the one canonical features artifact.

Every method reads features from here, so this is where bad input is stopped:
``load`` checks everything it can (file, keys, dtype, shape, ``dim``, labels,
NaN/inf and all-zero rows) before it normalises anything and raises
``IngestError`` naming the file and the problem.  Then rows are normalised for
cosine similarity: ``l2`` (unit rows), ``center_l2`` (subtract a centre, then
unit rows: embeddings whose vectors share a large common component, such as
dlib's, need it; the centre is the train part's when the dataset has one, and a
mean no single identity can dominate: ``balanced_centre``), or ``none``.

Formats: ``.npy`` (labels from ``labels_path``), ``.npz``, the learn-to-cluster
``.bin`` (raw float32 N×D, ``dim`` required) with a ``.meta`` labels file (one
integer per line), HDF5 (``.h5``/``.hdf5``) and Zarr (``.zarr`` directory).
Rows are read in blocks, so apart from the returned array memory stays bounded
(an ``.npz`` member is the exception: numpy reads it whole).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from pathlib import Path

import numpy as np

from . import io
from .progress import Progress, log

FORMATS = ("npy", "npz", "bin", "hdf5", "zarr")
SUFFIX_FORMATS = {".npy": "npy", ".npz": "npz", ".bin": "bin", ".h5": "hdf5", ".hdf5": "hdf5",
                  ".zarr": "zarr"}
NORMALISATIONS = ("l2", "center_l2", "none")
SPEC_DEFAULTS = {"path": None, "format": "auto", "features_key": "X", "labels_key": None,
                 "ids_key": None, "labels_path": None, "dim": None, "normalise": "l2"}
KEYED_FORMATS = ("npz", "hdf5", "zarr")  # formats holding several named arrays
MANIFEST_KEYS = ("n", "dim", "source", "checksum", "normalise", "has_labels", "has_ids",
                 "n_classes")

# Bytes of float64 per block of rows in the checks and the normalisation.
BLOCK_BYTES = 64 << 20
# How far from 1 a unit row's norm may be (``normalise: none`` and a model's input): float32
# rows made unit length are within about 1e-6 of it.
UNIT_TOLERANCE = 1e-3


def unit_length(norms) -> bool:
    """Every norm in ``norms`` (an array, or the min and max) within ``UNIT_TOLERANCE`` of 1."""
    norms = np.asarray(norms, dtype=np.float64)
    return bool(np.abs(norms - 1.0).max() <= UNIT_TOLERANCE)


class IngestError(ValueError):
    """Input that cannot become a features artifact; the message names the file."""


def _fail(where, problem: str):
    raise IngestError(f"{where}: {problem}")


# ------------------------------------------------------------------ the spec
def _checked_spec(spec) -> dict:
    if not isinstance(spec, dict):
        raise IngestError(f"an input spec must be a dict, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(SPEC_DEFAULTS))
    if unknown:
        raise IngestError(f"{spec.get('path', '<no path>')}: unknown input spec keys "
                          f"{unknown} (known: {sorted(SPEC_DEFAULTS)})")
    # None means "the default" for the keys whose default is not None.
    spec = {**SPEC_DEFAULTS, **{k: v for k, v in spec.items() if v is not None}}
    if not spec["path"]:
        raise IngestError("the input spec has no `path`")
    path = Path(spec["path"])
    if spec["format"] not in ("auto",) + FORMATS:
        _fail(path, f"unknown format {spec['format']!r} (one of auto, {', '.join(FORMATS)})")
    if spec["normalise"] not in NORMALISATIONS:
        _fail(path, f"unknown normalise {spec['normalise']!r} (one of {', '.join(NORMALISATIONS)})")
    dim = spec["dim"]
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, np.integer))
                            or dim < 1):
        _fail(path, f"`dim` must be a positive integer, got {dim!r}")
    if not path.exists():
        _fail(path, "file not found")
    fmt = spec["format"]
    if fmt == "auto":
        fmt = SUFFIX_FORMATS.get(path.suffix.lower())
        if fmt is None:
            _fail(path, f"cannot tell the format from the suffix {path.suffix!r}: use one of "
                        f"{', '.join(SUFFIX_FORMATS)} or set `format`")
    spec["format"] = fmt
    if fmt == "bin" and dim is None:
        _fail(path, "a .bin file is raw float32 with no shape: `dim` is required")
    if fmt not in KEYED_FORMATS:
        for key in ("labels_key", "ids_key"):
            if spec[key] is not None:
                _fail(path, f"`{key}` applies to npz, HDF5 and Zarr inputs only; a {fmt} file "
                            f"holds one array" + (" (give labels in `labels_path`)"
                                                  if key == "labels_key" else ""))
    if spec["labels_path"] is not None:
        if spec["labels_key"] is not None:
            _fail(path, "give labels either in `labels_path` or as `labels_key`, not both")
        labels_path = Path(spec["labels_path"])
        if not labels_path.exists():
            _fail(labels_path, "labels file not found")
        if labels_path.suffix.lower() in (".npz", ".bin", ".h5", ".hdf5", ".zarr"):
            _fail(labels_path, "`labels_path` takes a .npy file or a text file with one integer "
                               "per line (for labels inside npz, HDF5 or Zarr use `labels_key`)")
    return spec


# ------------------------------------------------------------------ opening each format
def _list_h5_datasets(f) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


class _Source:
    """Lazily opened arrays of one input file, by name; row slices read on demand."""

    def __init__(self, path: Path, fmt: str, stack: contextlib.ExitStack):
        self.path, self.fmt = path, fmt
        self._handle = None
        try:
            if fmt == "npz":
                import zipfile

                if not zipfile.is_zipfile(path):  # numpy would try it as a pickle
                    _fail(path, "not an npz file (a zip archive of arrays, np.savez): "
                                "it is not a zip archive")
                self._handle = stack.enter_context(np.load(path, allow_pickle=False))
            elif fmt == "hdf5":
                import h5py

                self._handle = stack.enter_context(h5py.File(path, "r"))
            elif fmt == "zarr":
                import zarr

                self._handle = zarr.open(str(path), mode="r")
        except IngestError:
            raise
        except Exception as err:  # any reader's own complaint, as one clear message
            _fail(path, f"cannot open as {fmt}: {err}")

    def names(self) -> list[str]:
        if self.fmt == "npz":
            return list(self._handle.files)
        if self.fmt == "hdf5":
            return _list_h5_datasets(self._handle)
        import zarr

        if isinstance(self._handle, zarr.Array):
            return []
        return [name for name, node in self._handle.members(max_depth=None)
                if isinstance(node, zarr.Array)]

    def array(self, key: str, what: str):
        """The array ``key`` (lazy for HDF5 and Zarr); IngestError listing the names if absent."""
        names = self.names()
        if key not in names:
            _fail(self.path, f"no {what} array {key!r}; the file holds: "
                             f"{', '.join(names) if names else '(no arrays)'}")
        try:
            return self._handle[key]
        except ValueError as err:  # npz refuses object arrays without pickle
            _fail(self.path, f"{what} array {key!r} cannot be read as numbers or plain strings "
                             f"({err})")

    def zarr_root_array(self):
        import zarr

        return self._handle if isinstance(self._handle, zarr.Array) else None


def _open_npy(path: Path, what: str):
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            _fail(path, "not a .npy file (no NumPy header)")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        if "object" in str(err).lower():
            _fail(path, f"{what} are not numeric: the file holds Python objects ({err})")
        _fail(path, f"cannot read as .npy (truncated or damaged?): {err}")


def _open_bin(path: Path, dim: int):
    size = path.stat().st_size
    row_bytes = 4 * dim
    if size % row_bytes:
        _fail(path, f"size {size} bytes is not a multiple of 4·dim = {row_bytes} "
                    f"(float32 rows of dim {dim}): wrong `dim`, or a truncated file")
    n = size // row_bytes
    if n == 0:
        _fail(path, "is empty (0 rows)")
    other = _unit_at_other_dim(path, size, dim)
    if other:
        _fail(path, f"its rows are unit length read at D = {other} and not at the D = {dim} "
                    f"given: wrong `dim` (give {other})")
    return np.memmap(path, dtype="<f4", mode="r", shape=(n, dim))


# Embedding sizes a raw .bin file is checked at when its rows are not unit length at the
# D given: a file of unit rows read at another D shows rows of any length.
COMMON_DIMS = (64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048)


def _unit_at_other_dim(path: Path, size: int, dim: int, rows: int = 256) -> int | None:
    """Another D of ``COMMON_DIMS`` at which the first ``rows`` rows of a raw float32 file
    are all unit length (``UNIT_TOLERANCE``) while at ``dim`` they are not; else None."""
    def unit(d: int) -> bool:
        m = min(rows, size // (4 * d))
        head = np.fromfile(path, dtype="<f4", count=m * d).reshape(m, d).astype(np.float64)
        return unit_length(np.linalg.norm(head, axis=1))

    if unit(dim):
        return None
    return next((d for d in COMMON_DIMS if d != dim and size % (4 * d) == 0 and unit(d)), None)


# ------------------------------------------------------------------ checks
def _check_numeric(dtype: np.dtype, where: str, what: str) -> None:
    if dtype.kind in "iuf":
        return
    kinds = {"b": "booleans", "U": "strings", "S": "byte strings", "T": "strings",
             "O": "Python objects", "c": "complex numbers", "V": "structured records"}
    _fail(where, f"{what} must be real numbers; they are {kinds.get(dtype.kind, 'not numbers')} "
                 f"(dtype {dtype})")


def _check_features_shape(features, where: str, dim: int | None) -> tuple[int, int]:
    _check_numeric(np.dtype(features.dtype), where, "features")
    if features.ndim != 2:
        _fail(where, f"features must be a 2-D array (items × dimensions), got shape "
                     f"{tuple(features.shape)}")
    n, d = (int(s) for s in features.shape)
    if n == 0:
        _fail(where, f"is empty (0 rows, shape {tuple(features.shape)})")
    if d == 0:
        _fail(where, f"features have 0 dimensions (shape {tuple(features.shape)})")
    if dim is not None and d != dim:
        _fail(where, f"features have dimension {d}, but `dim` is {dim}")
    return n, d


def _as_labels(raw, where: str, n: int, features_where: str) -> np.ndarray:
    labels = np.asarray(raw)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        _fail(where, f"labels must be 1-D (one per item), got shape {labels.shape}")
    if labels.dtype.kind == "f":
        # Whole numbers stored as floats are accepted; NaN, inf and fractions are not.
        whole = np.isfinite(labels) & (labels == np.floor(labels))
        if not whole.all():
            bad = int(np.argmin(whole))
            _fail(where, f"labels are not integers (dtype {labels.dtype}; first at item {bad}: "
                         f"{labels[bad]})")
    elif labels.dtype.kind == "u":
        if labels.size and labels.max() > np.iinfo(np.int64).max:
            _fail(where, "labels exceed the int64 range")
    elif labels.dtype.kind != "i":
        _fail(where, f"labels are not integers (dtype {labels.dtype})")
    if labels.shape[0] != n:
        _fail(where, f"{labels.shape[0]} labels for {n} feature rows in {features_where}: "
                     f"there must be one label per row")
    return labels.astype(np.int64)


def _read_text_labels(path: Path) -> np.ndarray:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty file: caught by the count check
            labels = np.loadtxt(path, dtype=np.int64, ndmin=1, comments=None)
    except ValueError as err:
        # Find the offending line ourselves: loadtxt counts rows without blank lines.
        with open(path, errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                text = line.strip()
                if text and not _is_int(text):
                    _fail(path, f"labels are not integers: line {lineno} is {text[:40]!r} "
                                f"(one integer per line expected)")
        _fail(path, f"cannot read labels: {err}")
    if labels.ndim != 1:
        _fail(path, f"labels must be one integer per line; the file has {labels.shape[1]} "
                    f"columns")
    return labels


def _is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def _as_ids(raw, where: str, n: int, features_where: str) -> np.ndarray:
    if len(raw.shape) != 1:
        _fail(where, f"ids must be 1-D (one per item), got shape {tuple(raw.shape)}")
    if raw.shape[0] != n:
        _fail(where, f"{raw.shape[0]} ids for {n} feature rows in {features_where}: "
                     f"there must be one id per row")
    try:
        if type(raw).__module__.startswith("h5py"):
            import h5py

            if h5py.check_string_dtype(raw.dtype) is not None:
                # HDF5 strings come as bytes; read them as UTF-8 whatever charset they claim.
                raw = raw.asstr(encoding="utf-8")
        ids = np.asarray(raw[...])
        if ids.dtype.kind == "S":
            ids = np.char.decode(ids, "utf-8")
    except UnicodeDecodeError as err:
        _fail(where, f"ids are not valid UTF-8 text ({err})")
    if ids.dtype.kind in "OT":
        ids = ids.astype(object).astype(str)
    elif ids.dtype.kind != "U":
        ids = ids.astype(str)
    return ids


def _block_rows(d: int) -> int:
    return max(1, BLOCK_BYTES // (8 * d))


def _copy_and_check(features, n: int, d: int, where: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Copy the rows into float32, counting NaN/inf and all-zero rows block by block.

    Returns the copy, the float64 sum of the rows (for the mean), and norm statistics.
    """
    out = np.empty((n, d), dtype=np.float32)
    total = np.zeros(d, dtype=np.float64)
    bad_count = zero_count = 0
    first_bad = first_zero = None
    norm_min, norm_max, norm_sum = math.inf, 0.0, 0.0
    step = _block_rows(d)
    progress = Progress(n, f"checking {where}")
    for start in range(0, n, step):
        stop = min(start + step, n)
        block = out[start:stop]
        with np.errstate(over="ignore", invalid="ignore"):
            # float64 beyond float32's range becomes inf here, and is caught as such.
            np.copyto(block, np.asarray(features[start:stop]), casting="unsafe")
        finite = np.isfinite(block).all(axis=1)
        zero = ~(block != 0).any(axis=1)
        if not finite.all():
            bad_count += int(np.count_nonzero(~finite))
            first_bad = first_bad if first_bad is not None else start + int(np.argmin(finite))
        if zero.any():
            zero_count += int(np.count_nonzero(zero))
            first_zero = first_zero if first_zero is not None else start + int(np.argmax(zero))
        if bad_count == 0:
            wide = block.astype(np.float64)
            total += wide.sum(axis=0)
            norms = np.sqrt(np.einsum("ij,ij->i", wide, wide))
            norm_min = min(norm_min, float(norms.min()))
            norm_max = max(norm_max, float(norms.max()))
            norm_sum += float(norms.sum())
        progress.update(stop - start)
    if bad_count:
        _fail(where, f"{bad_count} rows contain NaN or infinite values (first at row {first_bad})")
    if zero_count:
        _fail(where, f"{zero_count} rows are all zeros (first at row {first_zero}): a zero "
                     f"vector has no direction to compare")
    return out, total, {"min": norm_min, "max": norm_max, "mean": norm_sum / n}


def _normalise(features: np.ndarray, mode: str, mean: np.ndarray | None, where: str) -> None:
    """Centre (``center_l2``) and scale each row to unit length, in place, block by block."""
    if mode == "none":
        return
    n, d = features.shape
    step = _block_rows(d)
    for start in range(0, n, step):
        block = features[start:start + step].astype(np.float64)
        if mean is not None:
            block -= mean
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        if not norms.all():
            first = start + int(np.argmin(norms != 0))
            _fail(where, f"row {first} equals the mean feature: after centring it is all "
                         f"zeros and has no direction (use normalise: l2)")
        features[start:start + step] = block / norms[:, None]


# ------------------------------------------------------------------ checksums
def _sha256_file(path: Path, digest=None):
    h = digest or hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h


def sha256_of(path: str | Path) -> str:
    """sha256 of a file; of a directory (a Zarr group), over its files' relative paths and bytes."""
    path = Path(path)
    if not path.is_dir():
        return _sha256_file(path).hexdigest()
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        # Name and length first, so the boundary between files is part of the digest.
        h.update(f"{rel}\0{file.stat().st_size}\0".encode())
        _sha256_file(file, h)
    return h.hexdigest()


# ------------------------------------------------------------------ public API
def load(spec: dict, centre: np.ndarray | None = None, internal: bool = False
         ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, dict]:
    """Read, validate and normalise one input.

    With ``normalise: center_l2`` the rows are centred on ``centre`` when it is given (a
    dataset's train part's), else on ``balanced_centre`` of the input itself.

    ``spec`` keys (defaults in ``SPEC_DEFAULTS``): ``path``; ``format`` (auto from the
    suffix, or npy / npz / bin / hdf5 / zarr); ``features_key``, ``labels_key``,
    ``ids_key`` (array names inside npz, HDF5, Zarr); ``labels_path`` (a .npy or a
    text file of one integer per line, e.g. a learn-to-cluster ``.meta``); ``dim``
    (required for .bin, checked otherwise); ``normalise`` (l2, center_l2, none).
    ``internal``: the rows are read for an internal step (the train centre), so ``none`` is no
    user's choice and is not reported as a health finding.

    Returns ``(features, labels, ids, info)``: float32 N×D normalised features;
    int64 labels or None (unlabeled input is legal); item ids as strings or None;
    ``info`` with the source paths, their sha256 checksums, the normalisation and,
    for ``center_l2``, the subtracted mean.  Raises ``IngestError`` (a ValueError)
    naming the file and the problem before any normalisation.
    """
    spec = _checked_spec(spec)
    path, fmt, mode = Path(spec["path"]), spec["format"], spec["normalise"]
    features_key = None
    with contextlib.ExitStack() as stack:
        if fmt == "npy":
            features, where = _open_npy(path, "features"), str(path)
        elif fmt == "bin":
            features, where = _open_bin(path, int(spec["dim"])), str(path)
        else:
            source = _Source(path, fmt, stack)
            root = source.zarr_root_array() if fmt == "zarr" else None
            if root is not None:
                # A bare Zarr array (not a group): it is the features, and holds nothing else.
                if spec["labels_key"] is not None or spec["ids_key"] is not None:
                    _fail(path, "is a single Zarr array, not a group: it holds no labels or ids "
                                "(unset `labels_key` and `ids_key`, or use `labels_path`)")
                features, where = root, str(path)
            else:
                features = source.array(spec["features_key"], "features")
                where = f"{path}[{spec['features_key']}]"
                features_key = spec["features_key"]
        n, d = _check_features_shape(features, where, spec["dim"])

        labels = ids = None
        labels_source = None
        if spec["labels_path"] is not None:
            labels_path = Path(spec["labels_path"])
            if labels_path.suffix.lower() == ".npy":
                raw = _open_npy(labels_path, "labels")
            else:
                raw = _read_text_labels(labels_path)
            labels = _as_labels(raw, str(labels_path), n, where)
            labels_source = str(labels_path)
        elif spec["labels_key"] is not None:
            raw = source.array(spec["labels_key"], "labels")
            labels_where = f"{path}[{spec['labels_key']}]"
            labels = _as_labels(raw[...], labels_where, n, where)
            labels_source = labels_where
        if spec["ids_key"] is not None:
            raw = source.array(spec["ids_key"], "ids")
            ids = _as_ids(raw, f"{path}[{spec['ids_key']}]", n, where)

        log.info("reading %s: %d×%d %s features, %s, %s", where, n, d, features.dtype,
                 f"labels from {labels_source}" if labels is not None else "no labels",
                 f"ids from {spec['ids_key']}" if ids is not None else "no ids")
        out, total, norms = _copy_and_check(features, n, d, where)

    findings = []
    if ids is not None and not internal and (repeats := n - np.unique(ids).size):
        from .health import finding

        findings.append(finding(
            "repeated_ids", f"{where}: {repeats} of {n} ids ({spec['ids_key']}) are repeats: "
                            f"rows of clusters.tsv that share an id cannot be told apart; "
                            f"give each face its own id", repeats=int(repeats)))
    if mode == "none" and not internal and not unit_length([norms["min"], norms["max"]]):
        from .health import finding

        findings.append(finding(
            "not_unit_length", f"{where}: rows are not unit length (norms {norms['min']:.3g} "
                               f"to {norms['max']:.3g}) and normalise is 'none': every method "
                               f"compares faces by inner product as if it were the cosine; "
                               f"use normalise: l2", norm_min=norms["min"],
            norm_max=norms["max"]))
    mean = None
    if mode == "center_l2":
        if centre is None:  # never from the labels of the faces to cluster
            centre, group = balanced_centre(out)
            findings += _centring_health(out, centre, group, where)
        mean = _checked_centre(centre, d, where)
    _normalise(out, mode, mean, where)
    if mode != "center_l2" and not internal:
        from .health import shared_component

        findings += shared_component(out, where)

    checksums = {str(path): sha256_of(path)}
    if spec["labels_path"] is not None:
        checksums[str(spec["labels_path"])] = sha256_of(spec["labels_path"])
    info = {
        "source": str(path),
        "format": fmt,
        "features_key": features_key,
        "labels_source": labels_source,
        "ids_key": spec["ids_key"],
        "checksum": checksums[str(path)],
        "checksums": checksums,
        "normalise": mode,
        "center": [float(v) for v in mean] if mean is not None else None,
        "input_norms": norms,
        "health": findings,
    }
    log.info("%s: %d rows checked, normalised (%s); input row norms %.3g to %.3g, mean %.3g",
             where, n, mode, norms["min"], norms["max"], norms["mean"])
    return out, labels, ids, info


def split_by_identity(labels, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split items into (train_idx, test_idx) so that no identity is on both sides.

    ``train_fraction`` counts identities, not items: round(fraction · n_identities)
    identities, drawn by ``seed``, go to train (at least one on each side).  The draw
    depends only on the set of label values, so it is the same whatever the item order.
    Both index arrays are sorted int64.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-D integer array, got shape {labels.shape} "
                         f"dtype {labels.dtype}")
    if not 0.0 < float(train_fraction) < 1.0:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction}")
    identities = np.unique(labels)
    if identities.size < 2:
        raise ValueError(f"cannot split {identities.size} identit"
                         f"{'y' if identities.size == 1 else 'ies'} into train and test")
    n_train = int(math.floor(train_fraction * identities.size + 0.5))
    n_train = min(max(n_train, 1), identities.size - 1)
    rng = np.random.default_rng(seed)
    train_ids = identities[rng.permutation(identities.size)[:n_train]]
    in_train = np.isin(labels, train_ids)
    return np.flatnonzero(in_train).astype(np.int64), np.flatnonzero(~in_train).astype(np.int64)


def fold_by_identity(labels, folds: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, test_idx) of identity fold ``fold`` of ``folds``: the identities, in an
    order drawn by ``seed``, are dealt into ``folds`` groups of (nearly) equal counts; the
    test part is fold ``fold``, the train part the others.  Over all folds every identity
    is tested exactly once.  Both index arrays are sorted int64."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-D integer array, got shape {labels.shape} "
                         f"dtype {labels.dtype}")
    identities = np.unique(labels)
    if not 2 <= folds <= identities.size:
        raise ValueError(f"folds must lie in 2..{identities.size} (the identities), got {folds}")
    if not 0 <= fold < folds:
        raise ValueError(f"fold must lie in 0..{folds - 1}, got {fold}")
    order = identities[np.random.default_rng(seed).permutation(identities.size)]
    test_ids = order[fold::folds]
    in_test = np.isin(labels, test_ids)
    return np.flatnonzero(~in_test).astype(np.int64), np.flatnonzero(in_test).astype(np.int64)


def subsample_identities(labels, max_items: int, seed: int) -> np.ndarray:
    """Indices of whole identities, drawn in a random order (``seed``) while their faces
    fit in ``max_items``: the training subsample, so that every kept identity keeps all
    its faces (k_off labels and the GCN's positives stay what they are in the full set).

    Returns sorted int64 indices; all items when they already fit.  At least one
    identity is kept, even one larger than ``max_items``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-D integer array, got shape {labels.shape} "
                         f"dtype {labels.dtype}")
    if int(max_items) < 1:
        raise ValueError(f"the subsample size must be a positive number of items, got {max_items}")
    if labels.size <= max_items:
        return np.arange(labels.size, dtype=np.int64)
    identities, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(identities.size)
    fits = np.cumsum(sizes[order]) <= max_items
    fits[0] = True
    # Stop at the first identity that does not fit: a prefix of the random order.
    n_kept = int(np.argmin(fits)) if not fits.all() else fits.size
    keep = np.zeros(identities.size, dtype=bool)
    keep[order[:n_kept]] = True
    return np.flatnonzero(keep[inverse]).astype(np.int64)


def share_of_identities(labels, share: float, seed: int) -> np.ndarray:
    """:func:`subsample_identities` filling ``round(share · N)`` of the N faces (at least
    one): a smaller part of whole identities, to see how a method's score moves with the
    size of the part it clusters.  Sorted int64 indices."""
    return subsample_identities(labels, max(1, round(share * np.asarray(labels).size)),
                                seed)


def write_features(path, features, labels, ids, manifest: dict) -> None:
    """Write the features artifact: arrays ``features`` (float32), ``labels`` (int64,
    if any), ``ids`` (strings, if any); the manifest as its attributes.  Atomic."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"{path}: features must be 2-D, got shape {features.shape}")
    arrays = {"features": features}
    for name, data, dtype in (("labels", labels, np.int64), ("ids", ids, str)):
        if data is None:
            continue
        data = np.asarray(data).astype(dtype)
        if data.shape != (features.shape[0],):
            raise ValueError(f"{path}: {name} have shape {data.shape}, expected "
                             f"({features.shape[0]},) for {features.shape[0]} rows")
        arrays[name] = data
    io.write_arrays(path, arrays, manifest)


def write_manifest(path, manifest: dict) -> None:
    """Write the manifest as JSON (atomic): the keys of ``MANIFEST_KEYS`` first, then the rest."""
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise ValueError(f"{path}: the manifest lacks {', '.join(missing)}")
    ordered = {key: manifest[key] for key in MANIFEST_KEYS}
    ordered.update((key, value) for key, value in manifest.items() if key not in ordered)
    io.write_json(path, ordered)


def load_holdout(dataset: dict, part: str, holdout: dict):
    """A validation part (``val-…``: a share ``holdout['fraction']`` of the train part's
    identities, drawn by ``holdout['seed']``) or the rest of the train part (``fit-…``).
    With ``holdout['share']`` a validation part is smaller: whole held-out identities
    filling that share of the held-out faces (:func:`share_of_identities`, seed
    ``holdout['draw']``)."""
    features, labels, ids, manifest = load_part(dataset, "train")
    rest, held = split_by_identity(labels, 1.0 - holdout["fraction"], holdout["seed"])
    keep = rest
    if part.startswith("val-"):
        keep = held if "share" not in holdout else held[
            share_of_identities(labels[held], holdout["share"], int(holdout["draw"]))]
    manifest = {**manifest, "holdout": {**holdout, "part": part.split("-")[0]},
                "n": int(keep.size), "part": part,
                "n_classes": int(np.unique(labels[keep]).size)}
    return features[keep], labels[keep], ids[keep] if ids is not None else None, manifest


def load_part(dataset: dict, part: str) -> tuple[np.ndarray, np.ndarray | None,
                                                  np.ndarray | None, dict]:
    """One part (``train`` or ``test``) of a configured dataset: ``(features, labels, ids,
    manifest)``, features (N, D) float32 normalised as the dataset says.

    The dataset is generated (``generator``: ``synthetic.py``) or read from the user's
    ``input`` (with a ``split`` by identity) or ``train`` file; the train part is cut to
    ``train_subsample`` whole identities.  Raises ``IngestError`` naming the file and the
    problem; a train part without labels is an error.
    """
    if "generator" in dataset:
        from . import synthetic

        gen = dataset["generator"]
        params = synthetic.generator_params(gen.get("preset", "small"), dim=gen.get("dim", 256),
                                            **(gen.get("overrides") or {}))
        log.info("generating synthetic %s split (preset %s, seed %d, dim %d)", part,
                 gen.get("preset"), gen.get("seed", 0), params["dim"])
        features, labels = synthetic.generate(params, seed=gen.get("seed", 0), splits=(part,))[part]
        ids = None
        manifest = {"source": "synthetic", "generator": {**gen, "params": params},
                    "normalise": "l2", "checksum": None}
    else:
        spec = dict(dataset.get("train") if part == "train" and dataset.get("train")
                    else dataset["input"])
        spec["normalise"] = spec.get("normalise") or dataset.get("normalise", "l2")
        centre = None
        if spec["normalise"] == "center_l2" and (dataset.get("train") or dataset.get("split")):
            centre = train_centre(dataset)
        features, labels, ids, info = load(spec, centre)
        split = dataset.get("split")
        if split and not (part == "train" and dataset.get("train")):
            if labels is None:
                raise IngestError(f"{spec['path']}: `split` needs labels, and the input has none")
            if split.get("folds"):
                train_idx, test_idx = fold_by_identity(labels, split["folds"], split["fold"],
                                                       split.get("seed", 0))
            else:
                train_idx, test_idx = split_by_identity(labels, split["train_fraction"],
                                                        split.get("seed", 0))
            keep = train_idx if part == "train" else test_idx
            features, labels = features[keep], labels[keep]
            ids = ids[keep] if ids is not None else None
            info = {**info, "split": {**split, "part": part}}
            log.info("split by identity: kept %d %s items", keep.size, part)
        manifest = {**info, "source": spec["path"]}
    if part == "train" and labels is None:
        raise IngestError("dataset part 'train' has no labels: supervised training needs them")
    if labels is not None:
        features, labels, ids, manifest = unknown_identities(
            features, labels, ids, manifest, part, dataset.get("unknown_labels", "exclude"))
    subsample = dataset.get("train_subsample")
    if part == "train" and subsample:
        n_before, c_before = features.shape[0], np.unique(labels).size
        keep = subsample_identities(labels, subsample["max_items"], subsample.get("seed", 0))
        features, labels = features[keep], labels[keep]
        ids = ids[keep] if ids is not None else None
        manifest["train_subsample"] = {**subsample, "n_before": int(n_before),
                                       "identities_before": int(c_before)}
        log.info("train subsample: kept %d of %d items (%d of %d identities)", keep.size,
                 n_before, np.unique(labels).size, c_before)
    if part == "train" and np.unique(labels).size < 2:
        count = np.unique(labels).size
        raise IngestError(f"{manifest['source']}: the train part holds {count} "
                          f"identit{'y' if count == 1 else 'ies'}; the methods that learn "
                          f"from it need faces of at least two people")
    manifest.update(n=int(features.shape[0]), dim=int(features.shape[1]), part=part,
                    has_labels=labels is not None, has_ids=ids is not None,
                    n_classes=int(np.unique(labels).size) if labels is not None else None)
    return features, labels, ids, manifest


def train_centre(dataset: dict) -> np.ndarray:
    """The ``center_l2`` centre of a dataset's train part (its identities' balanced mean),
    which its test part is centred on too: the faces to cluster cannot move it."""
    if dataset.get("train"):
        spec = {**dataset["train"], "normalise": "none"}
        features, labels, _, _ = load(spec, None, internal=True)
        return balanced_centre(features, labels)[0]
    spec = {**dataset["input"], "normalise": "none"}
    features, labels, _, _ = load(spec, None, internal=True)
    if labels is None:
        raise IngestError(f"{spec['path']}: `split` needs labels, and the input has none")
    split = dataset["split"]
    if split.get("folds"):
        train_idx, _ = fold_by_identity(labels, split["folds"], split["fold"], split.get("seed", 0))
    else:
        train_idx, _ = split_by_identity(labels, split["train_fraction"], split.get("seed", 0))
    return balanced_centre(features[train_idx], labels[train_idx])[0]


UNKNOWN_LABELS = ("exclude", "singletons")


def unknown_identities(features, labels, ids, manifest: dict, part: str, convention: str):
    """Faces whose label is negative (the common "noise / unknown" mark) under
    ``convention``: ``exclude`` (the default) keeps them in a test part, clustered but not
    scored (the metrics leave out labels < 0), and drops them from a train part, which they
    cannot supervise; ``singletons`` makes each one an identity of its own.  The manifest
    records how many there were, and a health finding says what was done."""
    from .health import finding

    if convention not in UNKNOWN_LABELS:
        raise IngestError(f"unknown_labels must be one of {UNKNOWN_LABELS}, not {convention!r}")
    unknown = labels < 0
    count = int(unknown.sum())
    manifest["n_unknown"] = count
    if not count:
        return features, labels, ids, manifest
    health = manifest.setdefault("health", [])
    if convention == "singletons":
        labels = labels.copy()
        labels[unknown] = labels.max(initial=-1) + 1 + np.arange(count)
        what = "made an identity of its own each"
    elif part == "train":
        keep = ~unknown
        features, labels = features[keep], labels[keep]
        ids = ids[keep] if ids is not None else None
        what = "dropped from training"
    else:
        what = "clustered, but left out of the scores"
    health.append(finding("unknown_labels", f"{count} {part} faces have a negative label "
                                            f"(unknown identity): {what} (unknown_labels: "
                                            f"{convention})", count=count))
    return features, labels, ids, manifest


def balanced_centre(features: np.ndarray, labels: np.ndarray | None = None,
                    sample: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A centre for ``center_l2`` that one identity cannot dominate.

    With labels: the mean of the identities' means.  Without: a weighted mean of a random
    sample of up to ``sample`` rows, each row weighted by 1 / (1 + its degree), its degree
    being how many sampled rows have a cosine with it (before centring) at least the 10th
    percentile of the sample's nearest-neighbour cosines.  A person with 3,000 of 4,000 faces then weighs
    about as much as one of the others (each of their faces has hundreds of close
    neighbours), not three quarters of the mean, which centring would subtract from that
    person's faces and leave them noise.  Returns (centre (D,) float64, the rows of the
    largest group of close rows: the identity with most faces, with labels).
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    x = np.asarray(features, dtype=np.float64)
    if labels is not None:
        _, inverse = np.unique(labels, return_inverse=True)
        sums = np.zeros((inverse.max() + 1, x.shape[1]))
        np.add.at(sums, inverse, x)
        means = sums / np.bincount(inverse)[:, None]
        largest = np.flatnonzero(inverse == np.bincount(inverse).argmax())
        return means.mean(axis=0), largest[:sample]
    rows = np.sort(np.random.default_rng(seed).choice(x.shape[0], min(sample, x.shape[0]),
                                                      replace=False))
    if rows.size < 3:
        return x.mean(axis=0), rows
    unit = x[rows] / np.linalg.norm(x[rows], axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    # Nearly every face that has a look-alike in the sample has one above this.
    close = sims >= np.quantile(sims.max(axis=1), 0.1)
    weights = 1.0 / (1.0 + close.sum(axis=1))
    _, group = connected_components(csr_matrix(close), directed=False)
    largest = rows[group == np.bincount(group).argmax()]
    return (weights[:, None] * x[rows]).sum(axis=0) / weights.sum(), largest


def _centring_health(x: np.ndarray, centre: np.ndarray, group: np.ndarray, where: str
                     ) -> list[dict]:
    """A finding when centring takes away most of what made a large group alike: its
    members' mean cosine to one another falls below half of what it was.  Only a group
    that stood out before counts (its members closer to one another than to the other
    faces: the mean cosine to them below half the group's own): where every face shares one
    large component, as dlib's vectors do (different people at cosine 0.83), the largest
    group is a chain through the whole set, and removing that component is what centring
    is for."""
    from .health import finding

    if group.size < 20 or group.size < 0.1 * min(len(x), 4000):
        return []

    def unit(v):
        v = np.asarray(v, dtype=np.float64)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def mean_cosine(v):
        s = unit(v).sum(axis=0)
        return (s @ s - len(v)) / (len(v) * (len(v) - 1))

    before = mean_cosine(x[group])
    rest = np.setdiff1d(np.arange(len(x)), group)
    if rest.size == 0:
        return []
    rest = np.sort(np.random.default_rng(0).choice(rest, min(rest.size, 4000), replace=False))
    cross = float(unit(x[group]).sum(axis=0) @ unit(x[rest]).sum(axis=0)) / (
        group.size * rest.size)
    if cross >= 0.5 * before:
        return []
    after = mean_cosine(np.asarray(x[group], dtype=np.float64) - centre)
    if after >= 0.5 * before:
        return []
    return [finding("centring_erased_a_group",
                    f"{where}: centring takes a group of {group.size} sampled faces from mean "
                    f"cosine {before:.2f} to {after:.2f}: the centre is close to that group; "
                    f"give the dataset a train part (its centre is used), or use normalise: l2",
                    before=float(before), after=float(after), cross=cross)]


def _checked_centre(centre, d: int, where: str) -> np.ndarray:
    """``centre`` as float64 (D,); IngestError when its length is not the faces' D (a
    trained model's centre given to faces of another model: ``facecluster cluster --model``)."""
    mean = np.asarray(centre, dtype=np.float64)
    if mean.shape != (d,):
        _fail(where, f"the centre to subtract has D = {mean.size}; these faces have D = {d}")
    return mean


def normalise_rows(features: np.ndarray, mode: str = "l2", where: str = "features",
                   centre=None) -> np.ndarray:
    """A checked float32 copy of ``features`` (N, D), normalised as ``mode`` says (``l2``,
    ``center_l2``: ``centre`` (D,) subtracted first, by default the rows' own
    ``balanced_centre``, or ``none``); the in-memory twin of ``load`` for the Python API.
    Raises ``IngestError`` (a ValueError) on NaN/inf or all-zero rows, a bad shape, an
    unknown mode or a centre of another length."""
    if mode not in NORMALISATIONS:
        _fail(where, f"unknown normalise {mode!r} (one of {', '.join(NORMALISATIONS)})")
    n, d = _check_features_shape(features, where, None)
    out, _, _ = _copy_and_check(features, n, d, where)
    mean = None
    if mode == "center_l2":
        mean = _checked_centre(balanced_centre(out)[0] if centre is None else centre, d, where)
    _normalise(out, mode, mean, where)
    return out
