"""The Ada-NETS GCN (Eq. 8-9): graph embedding learned with a hinge loss on identities.

    F1 = σ(Â F W1),  F2 = σ(Â F1 W2),  out = normalise(PReLU(F2 W3))

with Â = D̃⁻¹(A + I) the degree-normalised adjacency of the built graph (the
graph artifact already holds the self loops) and σ = ReLU.  Training minimises
L = L_neg + λ·L_pos on sampled vertex batches, L_pos = mean over same-label pairs
of [β1 − y]+, L_neg = mean over different-label pairs of [β2 + y]+, y the cosine
of the outputs (β1 = 0.9, β2 = 1.0, λ = 1; SGD with cosine decay, momentum 0.9,
weight decay 1e-5; the paper's lr is 0.1, the default here 0.01, see PARAMS).

Because F is fixed, the first layer's aggregation Â F is computed once; a batch
then needs only its vertices' one-hop neighbourhood, and the result is exact
(no neighbour sampling).  A batch is ``groups`` random seed vertices each with up
to ``per_group`` of its graph neighbours, so it holds positive pairs, and hard
negatives from the neighbourhood.

Validation.  With ``val_fraction`` > 0 a share of the training *identities* is held out, and
every ``val_every`` steps the held-out vertices are embedded exactly and clustered by the
linkage at a grid of θ.  With ``val_graph: training`` (the default) both use the whole graph:
batches never hold the held-out vertices, but their features reach training vertices through
the aggregation, and training faces stand among theirs.  With ``val_graph: own`` the graph is
split in two: the GCN trains on the subgraph of the other identities and the held-out
vertices are embedded through the subgraph of their own, as a test face is.  Measured on the
evaluation matrix (docs/evaluation.md, the GCN without the held-out faces), ``own`` chose θ
worse on average: the default stays.  The model kept is the one with the best held-out score
(mean of F_P and F_B at its best θ), and its scores at every θ are stored with it:
``theta: auto`` in the linkage takes the largest θ within ``theta_tolerance`` of the best
(``tolerant_theta``).
On the embedded dataset this is what separates a GCN that generalises to unseen identities
from one that memorised 250 training identities (see the README's figures).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ...core import io, selection
from ...core.device import pick_device, seed_torch
from ...core.progress import Progress, log
from .settings import GCN as PARAMS
from .settings import THETA_GRID

VAL_NEIGHBOURS = ("candidates", "embedding")


def gcn_config(**overrides) -> dict:
    """``PARAMS`` resolved with ``overrides``; ``ParamError`` (a ValueError) names a bad key."""
    return PARAMS.resolve(overrides, where="gcn")


def normalised_adjacency(adj: sp.csr_matrix) -> sp.csr_matrix:
    """Â = D⁻¹ A, rows summing to 1 (A is expected to hold its self loops)."""
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.maximum(deg, 1e-12), 0.0).astype(np.float32)
    return (sp.diags(inv) @ adj).astype(np.float32).tocsr()


def _torch_sparse(m: sp.csr_matrix, device) -> torch.Tensor:
    """A scipy matrix as a torch COO tensor (COO: stable API, gradients to the dense side)."""
    coo = m.tocoo()
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(index, torch.from_numpy(coo.data.astype(np.float32)),
                                   size=m.shape, device=device, is_coalesced=True,
                                   check_invariants=False)


class AdaNetsGCN(nn.Module):
    """Two GCN layers, an FC layer with PReLU and L2 normalisation (Ada-NETS Eq. 8).

    ``forward(agg_x, adj_rows)`` takes ``agg_x`` = (Â F) for the one-hop
    neighbourhood of the batch and ``adj_rows`` = Â restricted to (batch rows,
    neighbourhood columns) as a sparse tensor, and returns the batch's unit-length
    embeddings.
    """

    def __init__(self, in_dim: int, hidden: int = 512):
        super().__init__()
        self.layer1 = nn.Linear(in_dim, hidden)
        self.layer2 = nn.Linear(hidden, hidden)
        self.fc = nn.Linear(hidden, hidden)
        self.prelu = nn.PReLU(hidden)

    def first_layer(self, agg_x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.layer1(agg_x))

    def head(self, agg_h1: torch.Tensor) -> torch.Tensor:
        h2 = torch.relu(self.layer2(agg_h1))
        return nn.functional.normalize(self.prelu(self.fc(h2)), dim=1)

    def forward(self, agg_x: torch.Tensor, adj_rows: torch.Tensor) -> torch.Tensor:
        return self.head(torch.sparse.mm(adj_rows, self.first_layer(agg_x)))


def hinge_loss(emb: torch.Tensor, labels: torch.Tensor, beta1: float, beta2: float, lam: float,
               hardest_negative: bool = False) -> tuple[torch.Tensor, dict]:
    """Eq. 9: L_neg + λ·L_pos over the pairs of a batch."""
    y = emb @ emb.T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=emb.device)
    pos = same & ~eye
    neg = ~same
    l_pos = torch.relu(beta1 - y[pos]).mean() if pos.any() else y.new_zeros(())
    if not neg.any():
        l_neg = y.new_zeros(())
    elif hardest_negative:
        masked = torch.where(neg, y, torch.full_like(y, -float("inf")))
        hardest = masked.max(dim=1).values
        l_neg = torch.relu(beta2 + hardest[neg.any(dim=1)]).mean()
    else:
        l_neg = torch.relu(beta2 + y[neg]).mean()
    loss = l_neg + lam * l_pos
    return loss, {"l_pos": float(l_pos.detach()), "l_neg": float(l_neg.detach())}


def _sample_batch(pool: sp.csr_matrix | np.ndarray, groups: int, per_group: int,
                  rng: np.random.Generator, usable: np.ndarray | None = None) -> np.ndarray:
    """``groups`` random seeds, each with up to ``per_group`` vertices from its pool row.

    The pool is either the graph (CSR) or the candidate lists (N, k): drawing from
    each seed's nearest candidates puts look-alikes in the batch as hard negatives.
    ``usable`` (bool per vertex), when given, is where seeds and companions may come
    from (the held-out identities are not).
    """
    n = pool.shape[0]
    choices = np.flatnonzero(usable) if usable is not None else n
    seeds = rng.choice(choices, size=min(groups, n if usable is None else choices.size),
                       replace=False)
    picked = [seeds]
    for s in seeds:
        if isinstance(pool, np.ndarray):
            nbrs = pool[s][pool[s] >= 0]
        else:
            nbrs = pool.indices[pool.indptr[s]:pool.indptr[s + 1]]
        if usable is not None:
            nbrs = nbrs[usable[nbrs]]
        if nbrs.size > per_group:
            nbrs = rng.choice(nbrs, size=per_group, replace=False)
        picked.append(nbrs)
    return np.unique(np.concatenate(picked))


def _neighbourhood(norm_adj: sp.csr_matrix, batch: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix]:
    """The batch's one-hop neighbourhood and Â[batch, neighbourhood]."""
    rows = norm_adj[batch]
    hood = np.unique(rows.indices)
    return hood, rows[:, hood].tocsr()


def held_out_identities(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray | None:
    """A bool per vertex (N,): whether its identity is held out for validation, the GCN's
    own draw of ``core.selection.held_out_identities`` (stream 1).

    ``None`` when nothing is held out (``fraction`` 0, or too few identities to
    keep at least one held out and two for training).
    """
    held = selection.held_out_identities(np.asarray(labels), fraction, seed, stream=1)
    return held if held.any() else None


@torch.no_grad()
def _embed_rows(model: AdaNetsGCN, agg_x: np.ndarray, norm_adj: sp.csr_matrix, rows: np.ndarray,
                dev, block_size: int = 4096) -> np.ndarray:
    """Exact embeddings of some vertices through the whole graph (their one-hop batches)."""
    out = []
    for start in range(0, rows.size, block_size):
        hood, sub = _neighbourhood(norm_adj, rows[start:start + block_size])
        x = torch.from_numpy(agg_x[hood]).to(dev)
        out.append(model(x, _torch_sparse(sub, dev)).cpu().numpy())
    return np.concatenate(out)


def validation_scores(emb: np.ndarray, labels: np.ndarray, k: int,
                      thetas: np.ndarray = THETA_GRID,
                      candidates: np.ndarray | None = None) -> list[dict]:
    """The linkage's F_P and F_B on labeled embeddings at every θ of ``thetas``.

    Neighbours come from an exact search among ``emb``, or with ``candidates`` (rows of
    ``emb``, −1 for none) from those lists, as ``linkage.link_candidates`` does.
    """
    if candidates is not None:
        from ...core.sparse import candidate_similarities

        ids, sims = candidate_similarities(emb, candidates, k)
    else:
        from ...core.knn import knn_graph

        ids, sims, _ = knn_graph(emb, k=min(k, emb.shape[0]), index="exact")
    return selection.list_threshold_scores(ids, sims, labels, thetas, strict=True, key="theta")


def train_gcn(features: np.ndarray, adj: sp.csr_matrix, labels: np.ndarray, config: dict,
              seed: int = 0, device: str = "auto", candidates: np.ndarray | None = None,
              val_neighbours: str = "candidates") -> tuple[dict, dict]:
    """Train the GCN on a labeled graph; return (checkpoint, train_info).

    ``candidates`` (N, k) ids, when given, are where each batch seed draws its
    companions (with config ``batch_from: candidates``); otherwise the graph.
    With validation (``val_fraction`` > 0) the checkpoint is the best-scoring model
    on the held-out identities and ``checkpoint['validation']['theta']`` its best θ; with
    ``val_graph: own`` the GCN trains on the subgraph of the other identities and the
    held-out ones are scored through theirs (the module's docstring).  ``features`` (N, D),
    ``adj`` (N, N) with self loops, ``labels`` (N,).  Raises ValueError when the candidate
    lists are needed (``batch_from`` or ``val_neighbours`` 'candidates') and not given.
    """
    cfg = gcn_config(**config)
    if val_neighbours not in VAL_NEIGHBOURS:
        raise ValueError(f"val_neighbours must be one of {VAL_NEIGHBOURS}, not {val_neighbours!r}")
    dev = pick_device(device)
    seed_torch(seed)
    rng = np.random.default_rng(seed)
    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels)
    if cfg["batch_from"] == "candidates" and candidates is None:
        raise ValueError("batch_from 'candidates' needs the candidate lists")
    held_out = held_out_identities(labels, float(cfg["val_fraction"]), seed)
    if held_out is not None and val_neighbours == "candidates" and candidates is None:
        raise ValueError("GCN val_neighbours 'candidates' needs the candidate lists")
    own = held_out is not None and cfg["val_graph"] == "own"
    # What the GCN trains on: the other identities' subgraph (val_graph own), or the whole
    # graph with the held-out vertices kept out of the batches.
    fit = np.flatnonzero(~held_out) if own else None  # no copy of the whole part otherwise
    train_adj = adj[fit][:, fit].tocsr() if own else adj
    train_labels = labels[fit] if own else labels
    usable = None if held_out is None or own else ~held_out
    norm_adj = normalised_adjacency(train_adj)
    agg_x = norm_adj @ (features[fit] if own else features)  # Â F, shared by every step
    model = AdaNetsGCN(features.shape[1], cfg["hidden"]).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["steps"])
    if cfg["batch_from"] == "candidates":
        pool = selection.local_ids(candidates[fit], fit, labels.size) if own else candidates
    else:
        pool = train_adj

    if held_out is not None:
        val_rows = np.flatnonzero(held_out)
        if val_rows.size > cfg["val_max_items"]:
            val_rows = np.sort(rng.choice(val_rows, size=cfg["val_max_items"], replace=False))
        if own:  # the held-out identities' own subgraph, every one of their vertices in it
            every = np.flatnonzero(held_out)
            val_adj = normalised_adjacency(adj[every][:, every].tocsr())
            val_agg = val_adj @ features[every]
            val_at = np.searchsorted(every, val_rows)
        else:
            val_adj, val_agg, val_at = norm_adj, agg_x, val_rows
        val_cands = None
        if val_neighbours == "candidates":
            # Each held-out vertex's candidates among the scored held-out vertices.
            val_cands = selection.local_ids(candidates[val_rows], val_rows, labels.size)
        log.info("GCN validation: %d of %d identities held out, %d vertices scored every %d "
                 "steps through %s", np.unique(labels[held_out]).size, np.unique(labels).size,
                 val_rows.size, cfg["val_every"],
                 "their own subgraph" if own else "the training graph")
    best = {"score": -1.0}
    curve: list[dict] = []
    untrained: dict = {}

    def validate(step: int) -> bool:
        """Score the model on the held-out identities; True when it is the best so far.

        Step 0, the untrained model, is scored as a reference only and never kept: held-out
        identities that are easy for it (a score saturated at 1) would keep a random GCN.
        A later model replaces the kept one at an equal score too."""
        model.eval()
        emb = _embed_rows(model, val_agg, val_adj, val_at, dev)
        model.train()
        scores = validation_scores(emb, labels[val_rows], cfg["val_linkage_k"],
                                   candidates=val_cands)
        top = selection.best_entry(scores)
        score = selection.mean_f(top)
        curve.append({"step": step, "score": round(score, 5), **top})
        log.info("GCN validation at step %d: F_P %.4f, F_B %.4f at θ %.2f", step,
                 top["f_pairwise"], top["f_bcubed"], top["theta"])
        if step == 0:
            untrained.update(score=score, theta=top["theta"])
            return False
        if score < best["score"]:
            return False
        best.update(score=score, step=step, theta=top["theta"], f_pairwise=top["f_pairwise"],
                    f_bcubed=top["f_bcubed"], scores=scores,
                    state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        return True

    losses: list[float] = []
    start = time.perf_counter()
    progress = Progress(cfg["steps"], "GCN training steps", every=10.0)
    step = 0
    stale = 0
    if held_out is not None:
        validate(0)
    for step in range(1, cfg["steps"] + 1):
        batch = _sample_batch(pool, cfg["groups"], cfg["per_group"], rng, usable)
        hood, rows = _neighbourhood(norm_adj, batch)
        x = torch.from_numpy(agg_x[hood]).to(dev)
        emb = model(x, _torch_sparse(rows, dev))
        loss, parts = hinge_loss(emb, torch.from_numpy(train_labels[batch]).to(dev), cfg["beta1"],
                                 cfg["beta2"], cfg["lam"], cfg["hardest_negative"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if step % cfg["log_every"] == 0:
            recent = float(np.mean(losses[-cfg["log_every"]:]))
            log.info("GCN step %d: loss %.4f (pos %.4f, neg %.4f), lr %.4f", step, recent,
                     parts["l_pos"], parts["l_neg"], sched.get_last_lr()[0])
        progress.update()
        out_of_time = cfg["max_seconds"] and time.perf_counter() - start > cfg["max_seconds"]
        if held_out is not None and (step % cfg["val_every"] == 0 or step == cfg["steps"]
                                     or out_of_time):
            stale = 0 if validate(step) else stale + 1
            if cfg["patience"] and stale >= cfg["patience"]:
                log.info("GCN training stopped at step %d: %d validations without a better "
                         "score", step, stale)
                break
        if out_of_time:
            log.info("GCN training stopped by its %s s budget at step %d", cfg["max_seconds"], step)
            break
    info = {"steps": step, "seconds": round(time.perf_counter() - start, 2),
            "loss_first": float(np.mean(losses[:20])), "loss_last": float(np.mean(losses[-20:])),
            "losses": [round(v, 5) for v in losses[:: max(1, len(losses) // 200)]]}
    state = {k: v.cpu() for k, v in model.state_dict().items()}
    validation = None
    if held_out is not None:
        state = best.pop("state")
        validation = {**best, "curve": curve, "untrained_score": untrained.get("score"),
                      "held_out_identities": int(np.unique(labels[held_out]).size),
                      "graph": "own" if own else "training"}
        info["validation"] = validation
        log.info("GCN kept the model of step %d (held-out F_P %.4f, F_B %.4f at θ %.2f)",
                 best["step"], best["f_pairwise"], best["f_bcubed"], best["theta"])
    checkpoint = {"state_dict": state, "config": {**cfg, "in_dim": int(features.shape[1])},
                  "train_info": info, "validation": validation}
    return checkpoint, info


def tolerant_theta(scores: list[dict], tolerance: float) -> float:
    """The largest θ whose held-out score (mean of F_P and F_B) is within ``tolerance``
    of the best one (``core.selection.plateau_top``); ``tolerance = 0`` is the best θ itself.

    The best θ on 12k held-out faces sat on the chaining cliff at 584k faces, and the
    top of the plateau did not (README, Performance).
    """
    return float(selection.plateau_top(scores, "theta", tolerance)["theta"])


def checkpoint_theta(path, tolerance: float = 0.0) -> float:
    """The θ for ``theta: auto`` from a checkpoint's validation: ``tolerant_theta`` of its
    held-out scores.  Checkpoints that stored only their best θ give that one."""
    return validation_theta(checkpoint_validation(path), tolerance, path)


def validation_theta(validation: dict, tolerance: float, path) -> float:
    """``checkpoint_theta`` of a validation record already read from ``path``."""
    if not validation:
        raise ValueError(f"{path}: θ 'auto' needs a GCN trained with validation "
                         f"(gcn.val_fraction > 0), and this one was trained without")
    if "scores" not in validation:
        if tolerance:
            log.warning("%s stores only its best held-out θ; theta_tolerance %.3f ignored",
                        path, tolerance)
        return float(validation["theta"])
    return tolerant_theta(validation["scores"], tolerance)


def checkpoint_validation(path) -> dict:
    """The validation record a checkpoint holds ({} when trained without one)."""
    return torch.load(path, map_location="cpu", weights_only=True).get("validation") or {}


def validation_health(validation: dict) -> list[dict]:
    """Findings on a GCN's validation (``core.health.validation_findings``)."""
    from ...core.health import validation_findings

    return validation_findings(validation, "the GCN", "θ")


def save_checkpoint(path, checkpoint: dict) -> None:
    """Write the checkpoint atomically (see ``io.save_torch``)."""
    io.save_torch(path, checkpoint)


def load_checkpoint(path, device: str = "cpu") -> AdaNetsGCN:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    cfg = ckpt["config"]
    model = AdaNetsGCN(cfg["in_dim"], cfg["hidden"])
    model.load_state_dict(ckpt["state_dict"])
    return model.to(pick_device(device)).eval()


@torch.inference_mode()
def embed(model: AdaNetsGCN, features: np.ndarray, adj: sp.csr_matrix, block_size: int = 65536,
          device: str = "auto") -> np.ndarray:
    """The whole graph's embeddings (N, hidden) float32, computed in row blocks."""
    dev = pick_device(device)
    model = model.to(dev).eval()
    norm_adj = normalised_adjacency(adj)
    n = features.shape[0]
    agg_x = norm_adj @ np.asarray(features, dtype=np.float32)
    hidden = model.layer1.out_features
    h1 = np.empty((n, hidden), dtype=np.float32)
    progress = Progress(2 * n, "GCN embedding")
    for start in range(0, n, block_size):
        stop = min(n, start + block_size)
        h1[start:stop] = model.first_layer(torch.from_numpy(agg_x[start:stop]).to(dev)).cpu().numpy()
        progress.update(stop - start)
    out = np.empty((n, hidden), dtype=np.float32)
    for start in range(0, n, block_size):
        stop = min(n, start + block_size)
        agg_h1 = norm_adj[start:stop] @ h1
        out[start:stop] = model.head(torch.from_numpy(agg_h1).to(dev)).cpu().numpy()
        progress.update(stop - start)
    return out
