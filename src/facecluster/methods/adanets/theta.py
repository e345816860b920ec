"""θ chosen on a validation part built like the test part (issue 14).

The GCN's own validation scores its held-out identities *inside the training graph*
(``gcn.val_graph: training``, the default): their embeddings average over training faces the
GCN has learned to pull together, and the θ where they link best sat far from the test
part's (LFW, and 0.73 against 0.87 on the evaluation matrix's look-alike pair).  Here the
same held-out identities (``gcn.held_out_identities``: the GCN never trained on them) are
clustered as a test part is: their own kNN graph, structure space, adaptive filter, graph
and GCN embedding (``Model.embedding``), then the linkage at every θ of ``gcn.THETA_GRID`` —
on the whole held-out part and on draws of its identities at halvings of its size
(``core.selection.ladder_scores``), so that the θ used on a test part of N faces is chosen
for N (``core.selection.choose_for_size``).  A test part larger than the held-out part takes
the whole held-out part's choice, hedged towards the plateau's top for one doubling
(``core.selection.choose_held_out``).  Two doublings, as GCN-V and the Face Transformer take,
scored +0.55 on the six evaluation-matrix pairs with stored ladders (gen-low-quality +2.2,
gen-lookalikes −0.4) and −1.0 to −1.4 on the default set's three seeds, where the held-out
part's θ is already above the test part's best (docs/evaluation.md, The held-out hedge).

One model's curves choose θ for that model alone, and between seeds the choice moved more
than between rules (docs/evaluation.md, The GCN without the held-out faces).  With
``theta_seeds`` n > 1 the curves of n models (seeds ``seed`` … ``seed + n − 1``: each its
own filter, GCN and held-out identities, n validation folds) are averaged size by size
(``core.selection.pool_ladders``, the ``theta_pool`` stage) and θ is chosen on the mean, as
cross-validation chooses on the mean of its folds; the test part is clustered with seed's
model (docs/evaluation.md, θ over several models).

The adaptive filter was trained on every identity of the train part, the held-out ones
included (its k_off targets).  The GCN never saw their labels; their faces stand in its
training graph unless ``gcn.val_graph: own``.
"""

from __future__ import annotations

import numpy as np

from ...core import selection
from ...core.progress import log


def held_out_rows(labels: np.ndarray, settings: dict) -> np.ndarray:
    """The rows (int64, sorted) of the identities the GCN held out of its training: the
    split ``gcn.train_gcn`` draws from the same ``gcn.val_fraction`` and ``seed``.
    Raises ValueError when none are held out (``val_fraction`` 0 or too few identities)."""
    from .gcn import held_out_identities

    held = held_out_identities(np.asarray(labels), float(settings["gcn"]["val_fraction"]),
                               settings["seed"])
    if held is None:
        raise ValueError("θ auto on the held-out part needs held-out identities "
                         "(gcn.val_fraction > 0 and at least three identities)")
    return np.flatnonzero(held)


def theta_ladder(model, features: np.ndarray, labels: np.ndarray, threads: int = 1) -> list[dict]:
    """The linkage's scores at every θ on the held-out identities clustered alone, at every
    size of the ladder: ``[{"n_faces", "draws", "scores"}]`` largest first (scores as
    ``gcn.validation_scores``: F_P, F_B at each θ of ``gcn.THETA_GRID``).

    ``model``: a fitted Ada-NETS ``Model`` (its filter and GCN); ``features`` (N, D) unit
    rows and ``labels`` (N,) of the train part it was trained on.  Each part is embedded by
    ``model.embedding`` from its own faces only; the scores of a size's draws are averaged.
    """
    from .gcn import validation_scores
    from .settings import THETA_GRID

    rows = held_out_rows(labels, model.params)
    s = model.params

    def score_parts(parts: list) -> list[dict]:
        curves = []
        for part in parts:
            r = rows if part is None else rows[part]
            emb, ids, _ = model.embedding(np.ascontiguousarray(features[r]), threads)
            curves.append(validation_scores(
                emb, labels[r], s["linkage_k"], THETA_GRID,
                candidates=ids if s["linkage_neighbours"] == "candidates" else None))
        return selection.mean_scores(curves)

    return selection.ladder_scores(
        labels[rows], score_parts, min_part=int(model.knn["k"]),
        progress=lambda what: log.info("θ on the held-out part: %s", what))


def choose_theta(ladder: list[dict], n_faces: int | None, settings: dict):
    """``(θ, score entry, its size's curve, where)`` for a part of ``n_faces`` faces (None: the whole held-out
    part) from ``theta_ladder``'s curves, by ``core.selection.choose_for_size`` with the
    experiment's ``theta_tolerance``."""
    from .settings import THETA_GRID

    return selection.choose_held_out(ladder, n_faces, "theta", THETA_GRID,
                                     settings["theta_tolerance"])
