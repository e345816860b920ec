"""facecluster: face clustering — Ada-NETS and the methods of its line, on one scoreboard.

The Python API, for use without Snakemake (a notebook, a service):

    import facecluster
    labels = facecluster.cluster(features, method="knn_threshold", threshold=0.6)
    model = facecluster.model("adanets").fit(train_features, train_labels)
    labels = model.predict(new_features)
    model.save("my-model"); facecluster.load_model("my-model").predict(more_faces)

``features`` are float arrays of shape (n_faces, D); labels are int arrays of shape
(n_faces,).  ``facecluster.available_methods()`` lists the methods; ``facecluster.method_params(name)``
gives a method's settings with their defaults and docs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cluster", "model", "load_model", "available_methods", "method_params"]


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
        Bad features (not 2-D, NaN, all-zero rows), a bad setting, or settings that need
        labeled training data (use ``model(...).fit(...)``).
    """
    from .core.ingest import normalise_rows
    from .registry import DEFAULT_METHOD

    unit = normalise_rows(np.asarray(features), normalise)
    return model(method or DEFAULT_METHOD, knn=knn, **settings).predict(unit, threads=threads)
