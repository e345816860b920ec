"""Community detection on a link list, the step several graph methods end with.

``infomap_modules`` runs the map equation (the ``infomap`` package) on weighted links and
returns one label per item; items no link touches are singletons.
"""

from __future__ import annotations

import warnings

import numpy as np

from .components import renumber


def infomap_modules(n: int, src: np.ndarray, dst: np.ndarray, weights: np.ndarray,
                    directed: bool = True, seed: int = 0) -> np.ndarray:
    """Two-level Infomap modules of the links src[e] → dst[e] (weight weights[e]) over
    items 0..n-1: int32 labels (n,), numbered by each module's first item.  Items without
    any link are their own module (Infomap never sees them)."""
    import infomap as map_equation  # the library

    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    if not src.shape == dst.shape == weights.shape:
        raise ValueError(f"links disagree in length: {src.shape}, {dst.shape}, {weights.shape}")
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise ValueError(f"links must join items in 0..{n - 1}")
    if np.any(weights <= 0) or not np.isfinite(weights).all():
        raise ValueError("Infomap needs finite, positive link weights")
    labels = np.arange(n, dtype=np.int64) + n  # unlinked items: labels no module takes
    if src.size:
        # Infomap seeds start at 1.
        im = map_equation.Infomap(two_level=True, directed=directed, silent=True, seed=int(seed) + 1,
                             num_trials=1)
        im.add_links(zip(src.tolist(), dst.tolist(), weights.tolist()))
        im.run()
        # Not ``im.run().modules()``: it walks SWIG iterators, and in a process that
        # imported faiss after infomap, SWIG hands it faiss's iterator type, which crashes
        # (segmentation fault).  ``get_modules`` returns a plain dict.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated for infomap 3.0 (constraints.txt)
            modules = im.get_modules()
        nodes = np.fromiter(modules.keys(), dtype=np.int64, count=len(modules))
        labels[nodes] = np.fromiter(modules.values(), dtype=np.int64, count=len(modules))
    return renumber(labels)
