"""A toy method, added from outside the package through the registry alone (README: Adding a
method).  It is what a contributor writes, and nothing else: each face joins its nearest
neighbour when their cosine is at least ``link_above``; clusters are the components.

Load it with ``method_modules: [toy_method]`` in a config (the module on ``PYTHONPATH``),
``--method-module toy_method`` on the command line, or ``registry.load_modules``.
"""

from pathlib import Path

import numpy as np

from facecluster.core.components import components_from_edges
from facecluster.core.contract import ClusterModel, Method, Outcome, Stage
from facecluster.core.params import Param, Params, number

# 1. The parameters: default, constraint, doc, in one place.
PARAMS = Params(
    link_above=Param(0.7, number(-1, 1), "join a face to its nearest neighbour at cosine ≥ this"),
)


# 2. The computation, a plain function on arrays.
def nearest_neighbour_clusters(ids: np.ndarray, sims: np.ndarray, link_above: float) -> np.ndarray:
    """Cluster labels (N,) from kNN lists (N, k), self first: i joins ids[i, 1] when
    sims[i, 1] ≥ link_above."""
    keep = (ids[:, 1] >= 0) & (sims[:, 1] >= link_above)
    rows = np.flatnonzero(keep)
    return components_from_edges(ids.shape[0], rows, ids[rows, 1])


# 3. Its stage: artifacts in, one artifact out.
def cluster_stage(job):
    knn = job.arrays("knn", ["ids", "sims"])
    labels = nearest_neighbour_clusters(knn["ids"], knn["sims"], job.params["link_above"])
    job.write_clusters(labels, {"link_above": job.params["link_above"]})


# 4. Its plan: which jobs an experiment needs.
def plan(ctx, settings):
    knn = ctx.knn("test")
    clusters = ctx.add("cluster", {"knn": knn, "features": ctx.features("test")},
                       {"link_above": settings["link_above"]}, under=str(Path(knn).parent),
                       label="toy")
    return Outcome(clusters, {"link_above": settings["link_above"]})


# 5. Its model, for faces outside the workflow.
class Model(ClusterModel):
    def _predict(self, features, threads):
        from facecluster.core.knn import knn_graph

        ids, sims, _ = knn_graph(features, threads=threads, **self.knn)
        return nearest_neighbour_clusters(ids, sims, self.params["link_above"])


METHOD = Method(
    name="toy",
    doc="each face joins its nearest neighbour above a cosine (an example)",
    params=PARAMS,
    stages=(Stage("cluster", "clusters.h5", cluster_stage, "nearest-neighbour components",
                  table=True),),
    plan=plan,
    model=Model,
)
