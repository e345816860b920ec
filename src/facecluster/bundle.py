"""A trained Ada-NETS model bundle, and clustering new unlabeled faces with it.

A bundle is a folder holding the adaptive filter (``filter.pt``), the GCN
(``gcn.pt``) and ``bundle.json``, the settings inference needs (k, structure
space and η, θ, the linkage's k and where it finds neighbours).  ``cluster``
runs the inference stages on features that have no labels: kNN → structure
space → k̂_off → adaptive graph → GCN embedding → linkage, the same functions
the workflow's rules call.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from . import io
from .progress import log

SETTINGS = ("k", "structure_space", "eta", "theta", "linkage_k", "linkage_neighbours", "knn")
# Bundles written before the setting existed searched the embedding space.
SETTING_DEFAULTS = {"linkage_neighbours": "embedding"}


def export_bundle(out_dir: str | Path, filter_path: str | Path, gcn_path: str | Path,
                  settings: dict) -> None:
    """Copy the two models and write ``bundle.json``, atomically as one folder."""
    missing = [key for key in SETTINGS if key not in settings]
    if missing:
        raise ValueError(f"bundle settings lack {missing}")
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        shutil.copyfile(filter_path, tmp / "filter.pt")
        shutil.copyfile(gcn_path, tmp / "gcn.pt")
        io.write_json(tmp / "bundle.json", {key: settings[key] for key in SETTINGS})


def read_bundle(bundle_dir: str | Path) -> dict:
    bundle_dir = Path(bundle_dir)
    for name in ("bundle.json", "filter.pt", "gcn.pt"):
        if not (bundle_dir / name).exists():
            raise FileNotFoundError(f"{bundle_dir}: not a model bundle ({name} is missing)")
    return {**SETTING_DEFAULTS, **io.read_json(bundle_dir / "bundle.json")}


def cluster(features: np.ndarray, bundle_dir: str | Path, threads: int = 1,
            device: str = "auto") -> tuple[np.ndarray, dict]:
    """Cluster labels for unit-length ``features`` with a trained bundle; (labels, info)."""
    from . import adaptive_filter, gcn
    from .graph import adaptive_graph, graph_quality
    from .knn import knn_graph
    from .linkage import link
    from .structure import structure_similarity

    settings = read_bundle(bundle_dir)
    bundle_dir = Path(bundle_dir)
    ids, sims, knn_meta = knn_graph(features, threads=threads,
                                    **{**settings["knn"], "k": settings["k"]})
    if settings["structure_space"]:
        ids, _, sims = structure_similarity(ids, sims, eta=settings["eta"], threads=threads)
    filt = adaptive_filter.load_checkpoint(bundle_dir / "filter.pt", device="cpu")
    if ids.shape[1] < filt.k:
        raise ValueError(f"{len(features)} faces give {ids.shape[1]} candidates per face; "
                         f"the bundle's filter reads {filt.k}")
    k_hat = adaptive_filter.predict_k_off(filt, features, ids, sims, device=device)
    adj = adaptive_graph(ids, k_hat)
    model = gcn.load_checkpoint(bundle_dir / "gcn.pt", device="cpu")
    emb = gcn.embed(model, features, adj, device=device)
    labels, link_meta = link(emb, settings["theta"], settings["linkage_k"],
                             settings["linkage_neighbours"], ids, threads=threads)
    info = {"knn": knn_meta, "mean_k_hat": float(k_hat.mean()), "graph": graph_quality(adj, None),
            "theta": settings["theta"]}
    log.info("bundle %s: %d faces into %d clusters", bundle_dir, len(features),
             np.unique(labels).size)
    return labels, info
