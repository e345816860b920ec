"""facecluster: face clustering — Ada-NETS and the methods of its line, on one scoreboard.

The Python API, for use without Snakemake (a notebook, a service):

    import facecluster
    labels = facecluster.cluster(features, method="knn_threshold", threshold=0.6)
    model = facecluster.model("adanets").fit(train_features, train_labels)
    labels = model.predict(new_features)
    model.save("my-model"); facecluster.load_model("my-model").predict(more_faces)
    faces = facecluster.faces_from_photos("my-photos/")   # dlib: detect, align, embed
    labels = facecluster.cluster(faces["features"], "hac", normalise="center_l2")

``features`` are float arrays of shape (n_faces, D); labels are int arrays of shape
(n_faces,).  ``facecluster.available_methods()`` lists the methods; ``facecluster.method_params(name)``
gives a method's settings with their defaults and docs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cluster", "model", "load_model", "available_methods", "method_params",
           "faces_from_photos"]


def available_methods() -> list[str]:
    """The names of every method."""
    from . import registry

    return registry.names()


def method_params(method: str) -> list[tuple[str, object, str]]:
    """``(key, default, doc)`` of every setting of ``method`` (sections as dotted keys)."""
    from . import registry

    return registry.get(method).params.docs()


def model(method: str, knn: dict | None = None, **settings):
    """An unfitted model of ``method`` with ``settings`` (validated: ``ParamError``, a
    ValueError, names a bad one) and kNN settings ``knn``.  Call ``.fit(features, labels)``
    for a method that learns, then ``.predict(features)``."""
    from . import registry

    return registry.get(method).model(knn=knn, **settings)


def load_model(path):
    """A model saved with ``.save(path)`` (or by ``snakemake bundles``)."""
    from .registry import load_model as _load

    return _load(path)


def cluster(features, method: str | None = None, normalise: str = "l2",
            threads: int = 1, knn: dict | None = None, **settings) -> np.ndarray:
    """Cluster labels of ``features`` with a method that needs no training.

    Parameters
    ----------
    features : array of shape (n_faces, D)
        Face embeddings, any scale: rows are normalised first (``normalise``: ``l2``,
        ``center_l2`` or ``none``).
    method : str, optional
        A method's name (``available_methods()``; default ``registry.DEFAULT_METHOD``); its
        ``settings`` as keywords.
    knn : dict, optional
        kNN settings over the defaults (``facecluster params knn`` lists them).

    Returns
    -------
    ndarray of shape (n_faces,), int32: cluster labels, numbered by each cluster's first
    face.

    Raises
    ------
    ValueError
        Bad features (not 2-D, NaN, all-zero rows; rows not unit length with
        ``normalise="none"``), a bad setting, or settings that need labeled training data
        (use ``model(...).fit(...)``).  Faces that share one large component (dlib's
        vectors with ``l2``) are logged as a ``shared_component`` WARNING.
    """
    from .core.ingest import normalise_rows
    from .registry import DEFAULT_METHOD

    unit = normalise_rows(np.asarray(features), normalise)
    return model(method or DEFAULT_METHOD, knn=knn, **settings).predict(unit, threads=threads)


def faces_from_photos(path, cache=None, **images) -> dict:
    """The faces of a folder of photos (or a text file listing them), detected, aligned
    and embedded by dlib (``core.photos``): ``{"features": float32 (n_faces, 128) not yet
    normalised (cluster them with ``normalise="center_l2"``), "ids": str (n_faces,)
    ``photo#face``, "labels": int (n_faces,) or None, "label_names"}``.

    ``images`` are the settings of a dataset's ``images:`` (``labels_from``,
    ``detector``, ``min_face_size`` …: README, Your photos); ``cache`` the per-photo
    cache (default ``~/.cache/facecluster/photos``).  Raises ``PhotoError`` (a ValueError)
    naming the path or setting; unusable photos are logged and skipped.
    """
    import tempfile
    from pathlib import Path

    from .core import io, photos

    spec = photos.checked_spec({"path": str(path), **images})
    cache = cache or Path.home() / ".cache" / "facecluster" / "photos"
    with tempfile.TemporaryDirectory(prefix="facecluster-photos-") as work:
        faces = photos.embed_photos(spec, cache, work)
        arrays, attrs = io.read_arrays(faces), io.read_attrs(faces)
    return {"features": arrays["X"], "ids": arrays["ids"], "labels": arrays.get("y"),
            "label_names": attrs.get("label_names")}
