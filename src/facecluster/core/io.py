"""Artifact I/O shared by every stage.

An artifact is a bundle of named arrays plus a small metadata dict, stored as a
Zarr group (a ``.zarr`` directory) or an HDF5 file (``.h5``), chosen by the
path's suffix.  Every write goes to a temporary sibling first and is renamed
into place only once complete, so a crash or a kill never leaves something
that looks like a finished artifact.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

# Snakemake marks a finished directory output with a `.snakemake_timestamp` file; zarr
# warns about it at every read of a Zarr group the workflow wrote.  Harmless: silenced here.
warnings.filterwarnings("ignore", message=r"Object at \.snakemake_timestamp is not recognized")

# Rows per chunk for on-disk arrays: large enough for fast sequential reads,
# small enough that a block-wise reader holds little memory.
CHUNK_ROWS = 16384


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` on success.

    On any exception the temporary is removed and ``path`` is left as it was.
    Works for files and for directories (Zarr groups).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if not target.exists():
            raise RuntimeError(f"nothing was written to {path}")
        _remove(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


def _kind(path: Path) -> str:
    if path.suffix == ".zarr":
        return "zarr"
    if path.suffix in (".h5", ".hdf5"):
        return "hdf5"
    raise ValueError(f"{path}: an artifact path must end in .zarr, .h5 or .hdf5")


def _chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) == 0:
        return ()
    return (max(1, min(CHUNK_ROWS, shape[0])),) + tuple(max(1, s) for s in shape[1:])


def write_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
                 attrs: Mapping | None = None) -> None:
    """Write named arrays and a metadata dict to ``path`` (``.zarr`` or ``.h5``), atomically.

    Arrays are stored uncompressed: face embeddings barely compress and
    uncompressed reads are several times faster (see FACTS.md).
    """
    path = Path(path)
    kind = _kind(path)
    meta = json.dumps(_jsonable(dict(attrs or {})))
    with atomic_path(path) as tmp:
        if kind == "zarr":
            import zarr

            group = zarr.open_group(str(tmp), mode="w")
            for name, data in arrays.items():
                data = np.asarray(data)
                # Text (item ids) as zarr 3's variable-length UTF-8 "string" type: numpy's
                # fixed-width "U" has no zarr 3 specification (zarr warns it may change).
                dtype = str if data.dtype.kind in "UT" else data.dtype
                arr = group.create_array(name, shape=data.shape, dtype=dtype,
                                         chunks=_chunks(data.shape), compressors=None,
                                         fill_value=None)
                if data.size:
                    arr[...] = data
            group.attrs["facecluster"] = json.loads(meta)
        else:
            import h5py

            with h5py.File(tmp, "w") as f:
                for name, data in arrays.items():
                    data = np.asarray(data)
                    if data.dtype.kind == "U":
                        f.create_dataset(name, data=data.astype(object),
                                         dtype=h5py.string_dtype())
                    else:
                        f.create_dataset(name, data=data,
                                         chunks=_chunks(data.shape) if data.size else None)
                f.attrs["facecluster"] = meta


def read_attrs(path: str | os.PathLike) -> dict:
    """The metadata dict stored with an artifact."""
    path = Path(path)
    if _kind(path) == "zarr":
        import zarr

        return dict(zarr.open_group(str(path), mode="r").attrs.get("facecluster", {}))
    import h5py

    with h5py.File(path, "r") as f:
        return json.loads(f.attrs.get("facecluster", "{}"))


def array_names(path: str | os.PathLike) -> list[str]:
    path = Path(path)
    if _kind(path) == "zarr":
        import zarr

        return sorted(zarr.open_group(str(path), mode="r").array_keys())
    import h5py

    with h5py.File(path, "r") as f:
        return sorted(f.keys())


def read_arrays(path: str | os.PathLike, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Read named arrays (all when ``names`` is None) fully into memory."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: artifact not found")
    out: dict[str, np.ndarray] = {}
    if _kind(path) == "zarr":
        import zarr

        group = zarr.open_group(str(path), mode="r")
        for name in names if names is not None else sorted(group.array_keys()):
            data = np.asarray(group[name][...])
            if data.dtype.kind in "TO":
                # Variable-length strings come back as StringDType: hand out "U", as for HDF5.
                data = data.astype(object).astype(str)
            out[name] = data
        return out
    import h5py

    with h5py.File(path, "r") as f:
        for name in names if names is not None else sorted(f.keys()):
            data = f[name]
            if h5py.check_string_dtype(data.dtype) is not None:
                out[name] = data.asstr()[...].astype(str)
            else:
                out[name] = data[...]
    return out


def read_array(path: str | os.PathLike, name: str) -> np.ndarray:
    return read_arrays(path, [name])[name]


def read_rows(path: str | os.PathLike, name: str, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (sorted, unique int indices) of array ``name``, reading only the
    chunks that hold them (a sample of a large features artifact)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: artifact not found")
    rows = np.asarray(rows, dtype=np.int64)
    if _kind(path) == "zarr":
        import zarr

        return np.asarray(zarr.open_group(str(path), mode="r")[name]
                          .get_orthogonal_selection((rows, slice(None))))
    import h5py

    with h5py.File(path, "r") as f:
        return f[name][rows]


def has_array(path: str | os.PathLike, name: str) -> bool:
    return name in array_names(path)


def save_torch(path: str | os.PathLike, obj) -> None:
    """``torch.save`` ``obj`` (a checkpoint dict of plain types and tensors), atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: str | os.PathLike) -> dict:
    """A checkpoint ``save_torch`` wrote, on the CPU (tensors only: ``weights_only``)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def labels_of(features_path: str | os.PathLike) -> np.ndarray | None:
    """The identity labels stored with a features artifact, or None when it has none."""
    return read_array(features_path, "labels") if has_array(features_path, "labels") else None


def write_table(path: str | os.PathLike, labels: np.ndarray, ids: np.ndarray | None) -> None:
    """The plain cluster table, atomically: item index, item id (when the input had ids),
    cluster id; a header line first."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("index\tid\tcluster\n" if ids is not None else "index\tcluster\n")
            for i, c in enumerate(labels):
                f.write(f"{i}\t{ids[i]}\t{c}\n" if ids is not None else f"{i}\t{c}\n")


def write_tsv(path: str | os.PathLike, columns, rows) -> None:
    """A table with a header line, atomically; tabs and newlines inside values become
    spaces."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("\t".join(columns) + "\n")
            for row in rows:
                f.write("\t".join(str(v).replace("\t", " ").replace("\n", " ")
                                   for v in row) + "\n")


def write_clusters(path: str | os.PathLike, table: str | os.PathLike | None, labels: np.ndarray,
                   features_path: str | os.PathLike, attrs: Mapping) -> None:
    """A clusters artifact (``labels`` int32 (N,)) with ``attrs`` and the cluster sizes, and
    the table beside it when ``table`` is given (item ids from the features artifact)."""
    from .metrics import cluster_stats
    from .progress import log

    stats = cluster_stats(labels)
    write_arrays(path, {"labels": np.asarray(labels).astype(np.int32)}, {**attrs, **stats})
    if table:
        ids = read_array(features_path, "ids") if has_array(features_path, "ids") else None
        write_table(table, labels, ids)
    log.info("%d clusters (%d singletons) over %d items", stats["n_clusters"],
             stats["n_singletons"], stats["n_items"])


def write_csr(path: str | os.PathLike, adj, attrs: Mapping | None = None) -> None:
    """A sparse 0/1 graph (scipy CSR) as an artifact: indptr, indices, shape."""
    write_arrays(path, {"indptr": adj.indptr.astype(np.int64),
                        "indices": adj.indices.astype(np.int32),
                        "shape": np.asarray(adj.shape, dtype=np.int64)}, attrs)


def read_csr(path: str | os.PathLike):
    """The graph ``write_csr`` wrote, as a scipy CSR matrix with unit weights."""
    import scipy.sparse as sp

    arrays = read_arrays(path, ["indptr", "indices", "shape"])
    data = np.ones(arrays["indices"].size, dtype=np.float32)
    return sp.csr_matrix((data, arrays["indices"], arrays["indptr"]),
                         shape=tuple(arrays["shape"]))
