"""The Ada-NETS model: ``fit`` trains the filter and the GCN on labeled faces, ``predict``
clusters any faces with them, through the same functions the workflow's stages call.

A saved model is a folder: ``model.json`` (the method, its settings, the kNN settings, the
chosen θ and, with ``theta_on: held_out_part``, the held-out part's θ curves at every size
from which ``predict`` chooses θ for the faces it clusters, ``theta.py``), ``filter.pt``
and ``gcn.pt``.  The workflow writes one per experiment (``snakemake bundles``, stage
``bundle``); ``facecluster cluster --model DIR`` reads it.
The graph builders without a filter (Table 9) and the graph cut without a GCN (Table 8)
work too; the second round (Table 10) is a workflow ablation, not a model.
"""

from __future__ import annotations

import shutil
import weakref
from pathlib import Path

import numpy as np

from ...core.contract import ClusterModel
from ...core.progress import log


class Model(ClusterModel):
    """Ada-NETS as a model: ``Model(**settings).fit(features, labels).predict(new)``.

    ``features`` are float32 (n, D) unit rows, ``labels`` (n,) integer identities;
    ``predict`` returns (m,) int32 cluster labels.  ``fit`` trains exactly what the
    workflow's ``filter_train`` and ``gcn_train`` stages train on a train part; with θ auto
    on the held-out part and ``theta_seeds`` > 1 it trains that many models (seeds ``seed``
    …) and keeps the first, θ chosen on their curves averaged (the ``theta_pool`` stage).
    """

    filter_path: str | None = None
    gcn_path: str | None = None
    theta_: float | None = None      # θ used by the last prediction (or the checkpoint's)
    theta_ladder: list | None = None  # θ curves of the held-out part at every size (auto)

    # --------------------------------------------------------------- shared steps
    def _candidates(self, features, threads):
        """(ids, sims) of the candidate lists: the kNN graph, re-ranked by κ with SS."""
        from ...core.knn import knn_graph
        from .structure import structure_similarity

        ids, sims, _ = knn_graph(features, threads=threads, **self.knn)
        if self.params["structure_space"]:
            ids, _, sims = structure_similarity(ids, sims, eta=self.params["eta"], threads=threads)
        return ids, sims

    def _graph(self, features, ids, sims, k_hat=None):
        from . import adaptive_filter, graph

        s = self.params
        if s["graph"] == "adaptive" and k_hat is None:
            filt = adaptive_filter.load_checkpoint(self.filter_path, device="cpu")
            if ids.shape[1] < filt.k:
                raise ValueError(f"{len(features)} faces give {ids.shape[1]} candidates per "
                                 f"face; the filter reads {filt.k}")
            k_hat = adaptive_filter.predict_k_off(filt, features, ids, sims)
            k_hat, findings = adaptive_filter.guard_k_hat(k_hat, sims, filt.train_stats)
            self.health += findings
        return graph.build(s["graph"], ids, sims, k_hat=k_hat, k=s["graph_k"],
                           threshold=s["graph_threshold"])

    # --------------------------------------------------------------- fit / predict
    def _fit(self, features, labels):
        import torch

        from .koff import k_off_labels, quality_curve

        s = self.params
        if s["second_round"] is not None:
            raise ValueError("second_round is a workflow ablation (Table 10), not a model")
        # What does not depend on the seed is computed once for every model of θ's pool.
        ids, sims = self._candidates(features, threads=torch.get_num_threads())
        k_off = quality = None
        if s["graph"] == "adaptive" or s["train_graph"] == "true":
            k_off = k_off_labels(ids, labels, beta=s["beta"])
        if s["graph"] == "adaptive":
            quality = quality_curve(ids, labels, beta=s["beta"])
        self._train(features, labels, ids, sims, k_off, quality)
        if s["clustering"] == "graph_cut":
            return
        if self.uses_held_out_part():
            from ...core.selection import pool_ladders

            ladders = [self.theta_ladder]
            for i in range(1, s["theta_seeds"]):  # the workflow's theta_pool stage
                log.info("θ's curves of a model with seed %d (theta_seeds %d)", s["seed"] + i,
                         s["theta_seeds"])
                other = type(self)(knn=self.knn, **{**s, "seed": s["seed"] + i,
                                                    "theta_seeds": 1})
                other._train(features, labels, ids, sims, k_off, quality)
                ladders.append(other.theta_ladder)
                del other  # only its curves are kept: its checkpoints go with it
            self.theta_ladder = pool_ladders(ladders)
        self._choose_theta()

    def _train(self, features, labels, ids, sims, k_off, quality) -> None:
        """Train this model's filter and GCN (its ``seed``) from the train part's candidate
        lists ``ids``/``sims`` (n, k), their k_off targets ``k_off`` (n,) and quality curves
        (each None where the settings need none), and, with θ auto on the held-out part, its own
        θ curves (``theta_ladder``, one model's: ``theta_seeds`` pools them in ``_fit``)."""
        import tempfile

        import torch

        from . import adaptive_filter, gcn

        s = self.params
        # The checkpoints live here until ``save`` copies them; the folder goes with the
        # model (when it is collected, or at the latest when the interpreter exits).
        self._folder = tempfile.mkdtemp(prefix="adanets-model-")
        weakref.finalize(self, shutil.rmtree, self._folder, True)
        if s["graph"] == "adaptive":
            checkpoint, _ = adaptive_filter.train_filter(features, ids, k_off, quality,
                                                         s["filter"], seed=s["seed"],
                                                         cand_sims=sims)
            self.filter_path = f"{self._folder}/filter.pt"
            adaptive_filter.save_checkpoint(self.filter_path, checkpoint)
        if s["clustering"] == "graph_cut":
            return
        adj = self._graph(features, ids, sims, k_off if s["train_graph"] == "true" else None)
        checkpoint, _ = gcn.train_gcn(features, adj, labels, s["gcn"], seed=s["seed"],
                                      candidates=ids, val_neighbours=s["linkage_neighbours"])
        self.gcn_path = f"{self._folder}/gcn.pt"
        gcn.save_checkpoint(self.gcn_path, checkpoint)
        if self.uses_held_out_part():
            from .theta import theta_ladder

            self.theta_ladder = theta_ladder(self, features, labels,
                                             threads=torch.get_num_threads())

    def uses_held_out_part(self) -> bool:
        """Whether θ auto is chosen on the held-out identities clustered as a part of
        their own (``theta_on: held_out_part``, ``theta.py``)."""
        return self.params["theta"] == "auto" and self.params["theta_on"] == "held_out_part" \
            and self.params["clustering"] == "gcn"

    def _choose_theta(self, n_faces: int | None = None):
        """θ for a part of ``n_faces`` faces: the setting; with auto the held-out part's
        choice for that size (the whole held-out part's when ``n_faces`` is None), or the
        GCN validation's (``theta_on: training_graph``)."""
        from .gcn import checkpoint_theta

        theta = self.params["theta"]
        if theta != "auto":
            self.theta_ = float(theta)
        elif self.theta_ladder:
            from .theta import choose_theta

            self.theta_ = choose_theta(self.theta_ladder, n_faces, self.params)[0]
        else:
            self.theta_ = checkpoint_theta(self.gcn_path, self.params["theta_tolerance"])

    def embedding(self, features: np.ndarray, threads: int = 1):
        """The GCN embedding of ``features`` (n, D) unit rows through the whole inference:
        candidates, the (adaptive) graph, the GCN.  Returns ``(embedding, ids, sims)``:
        (n, hidden) float32 and the candidate lists (n, k) the linkage reads; ``health``
        collects the filter's findings."""
        from . import gcn

        ids, sims = self._candidates(features, threads)
        adj = self._graph(features, ids, sims)
        model = gcn.load_checkpoint(self.gcn_path, device="cpu")
        return gcn.embed(model, features, adj), ids, sims

    def _predict(self, features, threads):
        from ...core.health import mostly_singletons
        from . import gcn
        from .linkage import graph_cut, link

        s = self.params
        if s["clustering"] == "graph_cut":
            ids, sims = self._candidates(features, threads)
            return graph_cut(self._graph(features, ids, sims), features, s["cut_threshold"])
        emb, ids, sims = self.embedding(features, threads)
        if s["theta"] == "auto":
            self._choose_theta(features.shape[0])
        labels, _ = link(emb, self.theta_, s["linkage_k"], s["linkage_neighbours"], ids,
                         threads=threads)
        if s["theta"] == "auto":
            self.health += gcn.validation_health(gcn.checkpoint_validation(self.gcn_path))
        self.health += mostly_singletons(labels, ids, sims)
        log.info("Ada-NETS: %d faces into %d clusters", len(features), np.unique(labels).size)
        return labels

    # --------------------------------------------------------------- saving
    @classmethod
    def from_artifacts(cls, settings: dict, knn: dict, filter_path: str | None,
                       gcn_path: str | None, theta_path: str | None = None) -> "Model":
        """A fitted model from the workflow's trained artifacts (the ``bundle`` stage);
        ``theta_path``: the ``theta`` stage's θ curves (``theta.json``), if any."""
        from ...core import io

        model = cls(knn=knn, **settings)
        model.filter_path, model.gcn_path = filter_path, gcn_path
        if theta_path:
            model.theta_ladder = io.read_json(theta_path)["ladder"]
        if gcn_path:
            model._choose_theta()
        model.fitted = True
        return model

    def _save_state(self, folder: Path) -> None:
        for name, path in (("filter.pt", self.filter_path), ("gcn.pt", self.gcn_path)):
            if path:
                shutil.copyfile(path, folder / name)

    def _state_attrs(self) -> dict:
        return {"theta": self.theta_, "theta_ladder": self.theta_ladder,
                "filter": bool(self.filter_path), "gcn": bool(self.gcn_path)}

    @classmethod
    def _load_state(cls, model, folder, state):
        model.filter_path = str(Path(folder) / "filter.pt") if state.get("filter") else None
        model.gcn_path = str(Path(folder) / "gcn.pt") if state.get("gcn") else None
        for path in (model.filter_path, model.gcn_path):
            if path and not Path(path).exists():
                raise FileNotFoundError(f"{folder}: the model folder lacks {Path(path).name}")
        model.theta_ = state.get("theta")
        model.theta_ladder = state.get("theta_ladder")
