"""Leiden (leidenalg on an igraph graph) on the kNN graph weighted by cosine.

The graph holds an undirected edge for every kNN pair with cosine above ``min_similarity``,
weighted by the larger of the two directions' cosines.  With the constant Potts model
(``objective: cpm``, the default) the resolution γ is the edge density a community must
exceed: with cosine weights, groups whose faces are on average more similar than γ; with
``modularity`` (RB configuration model) γ scales the expected-edges term.  A larger γ gives
smaller communities: ``auto`` chooses γ by the rule of every kNN-graph method's knob
(``core.selection``).
"""

from __future__ import annotations

import numpy as np

from ..core.components import renumber
from ..core.params import Param, Params, choice, integer, number
from ..core.sparse import similarity_graph
from ..core.tunable import Knob, knn_method


def cluster(graph, settings: dict, resolution: float, threads: int = 1) -> np.ndarray:
    import igraph as ig
    import leidenalg as la

    adj = similarity_graph(graph.ids, graph.sims, settings["min_similarity"])
    upper = adj.tocoo()
    keep = upper.row < upper.col
    g = ig.Graph(n=graph.n, edges=np.column_stack([upper.row[keep], upper.col[keep]]).tolist(),
                 directed=False)
    kind = (la.CPMVertexPartition if settings["objective"] == "cpm"
            else la.RBConfigurationVertexPartition)
    partition = la.find_partition(g, kind, weights=upper.data[keep].tolist(),
                                  resolution_parameter=float(resolution), seed=settings["seed"],
                                  n_iterations=settings["n_iterations"])
    return renumber(np.asarray(partition.membership))


METHOD = knn_method(
    "leiden", "Leiden communities (leidenalg) of the kNN graph weighted by cosine",
    Knob("resolution", 0.5, number(0),
         "γ: with cpm, the cosine density a community must exceed", np.round(
             np.arange(0.05, 0.96, 0.05), 2)),
    cluster,
    Params(
        objective=Param("cpm", choice("cpm", "modularity"),
                        "cpm: constant Potts model | modularity: RB configuration model"),
        min_similarity=Param(0.0, number(-1, 1), "kNN pairs at cosine ≤ this are no edge"),
        n_iterations=Param(2, integer(-1), "Leiden passes (-1: until nothing changes)"),
        seed=Param(0, integer(0), "leidenalg's random seed"),
    ),
    memory=(1000, 10), runtime=(10, 0.1),
)
