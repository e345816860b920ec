"""GCN-V (Yang et al., CVPR 2020, "Learning to cluster faces via confidence and connectivity
estimation"): a vertex confidence learned on the kNN affinity graph, and tree deduction.

- **Affinity** (Eq. 2): A holds the cosine of every kNN pair (pairs below 0 dropped),
  symmetrised by the element-wise maximum; Ã = D̃⁻¹(A + I), rows summing to 1.
- **Confidence targets** (Eq. 1, ``s_nbr``): c_i = Σ_{j ∈ N(i), y_j = y_i} a_ij −
  Σ_{j ∈ N(i), y_j ≠ y_i} a_ij over all k neighbours, i itself included (a_ii = 1), divided
  by |N(i)| (the paper) or by the largest |c| of the set (the reference code).  The
  unsupervised ``density`` (Table 3): the sum of the cosines at distance 1 − cos < 0.3.
- **GCN-V** (Eq. 3-5): one GraphConv, F' = ReLU([F ‖ ÃF] W + b) (256 → 512), then
  Linear-PReLU-Linear → the confidence, MSE.  Its aggregation ÃF does not depend on the
  weights, so it is computed once, and a step on a random batch of vertices is exactly the
  reference's full-graph step restricted to them (an MLP on [F ‖ ÃF]).
- **Tree deduction** (§3.3): each vertex's parent is the first neighbour j ≠ i, by
  decreasing cosine, with a strictly higher confidence; the edge is kept when the cosine is
  above τ; roots have no parent; clusters are the connected components.  The reference's
  two passes: τ₀ = 0.65 on the original kNN lists, then τ = 0.8 on a new kNN graph of the
  L2-normalised hidden features F'.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ...core.components import components_from_edges
from ...core.sparse import similarity_graph
from ...core.device import pick_device, seed_torch
from ...core.progress import Progress, log
from ...core.selection import HeldOutSelection


def affinity(ids: np.ndarray, sims: np.ndarray) -> sp.csr_matrix:
    """Ã = D̃⁻¹(max(A, Aᵀ) + I) (N, N) float32 CSR of the kNN lists ``ids``, ``sims``
    (N, k), A the cosines of listed pairs (pairs at or below 0 add nothing and are
    dropped); every row sums to 1 (Eq. 2)."""
    n = ids.shape[0]
    a = similarity_graph(ids, sims, 0.0) + sp.identity(n, format="csr")
    deg = np.asarray(a.sum(axis=1)).ravel()
    return (sp.diags(1.0 / deg) @ a).astype(np.float32).tocsr()


def confidence_targets(ids: np.ndarray, sims: np.ndarray, labels: np.ndarray,
                       norm: str = "paper") -> np.ndarray:
    """s_nbr (N,) float32: the same-label affinity minus the other-label affinity over each
    list (itself included, a_ii = 1), divided by the list's size (``paper``) or by the
    largest |c| of the set (``reference``)."""
    valid = ids >= 0
    a = np.where(ids == np.arange(ids.shape[0])[:, None], 1.0, sims.astype(np.float64))
    same = labels[np.maximum(ids, 0)] == labels[:, None]
    c = np.where(valid, np.where(same, a, -a), 0.0).sum(axis=1)
    if norm == "paper":
        return (c / valid.sum(axis=1)).astype(np.float32)
    if norm == "reference":
        return (c / max(np.abs(c).max(), 1e-12)).astype(np.float32)
    raise ValueError(f"target normalisation must be paper or reference, not {norm!r}")


def density_confidence(ids: np.ndarray, sims: np.ndarray, radius: float = 0.3) -> np.ndarray:
    """The unsupervised confidence: the sum of the cosines within distance ``radius``."""
    others = (ids >= 0) & (ids != np.arange(ids.shape[0])[:, None])
    return np.where(others & (1.0 - sims < radius), sims, 0.0).sum(axis=1).astype(np.float32)


def deduction_parents(ids: np.ndarray, sims: np.ndarray,
                      confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each vertex's parent in tree deduction (§3.3): its first neighbour j ≠ i, by
    decreasing similarity, whose confidence is strictly higher; ``(parent (N,) int64, −1
    for a root, similarity to it (N,) float32, −inf for a root)``.  The parents do not
    depend on τ: a τ scan cuts the same tree at every τ."""
    n = ids.shape[0]
    order = np.argsort(-np.where(ids >= 0, sims, -np.inf), axis=1, kind="stable")
    ids = np.take_along_axis(ids, order, axis=1)
    sims = np.take_along_axis(sims, order, axis=1)
    higher = (ids >= 0) & (ids != np.arange(n)[:, None]) & \
        (confidence[np.maximum(ids, 0)] > confidence[:, None])
    has = higher.any(axis=1)
    first = np.argmax(higher, axis=1)
    rows = np.arange(n)
    parent = np.where(has, ids[rows, first], -1).astype(np.int64)
    parent_sim = np.where(has, sims[rows, first], -np.inf).astype(np.float32)
    return parent, parent_sim


def cut_tree(parent: np.ndarray, parent_sim: np.ndarray, tau: float) -> np.ndarray:
    """Cluster labels (N,) int32: the components of the parent edges whose similarity is
    strictly above ``tau``."""
    keep = (parent >= 0) & (parent_sim > tau)
    rows = np.flatnonzero(keep)
    return components_from_edges(parent.size, rows, parent[rows])


def tree_deduction(ids: np.ndarray, sims: np.ndarray, confidence: np.ndarray,
                   tau: float) -> np.ndarray:
    """Cluster labels (N,): each vertex links to its first neighbour (by decreasing
    similarity) of strictly higher confidence when their similarity is above ``tau``;
    the connected components (``deduction_parents`` then ``cut_tree``)."""
    return cut_tree(*deduction_parents(ids, sims, confidence), tau)


class GraphConv(nn.Module):
    """F' = ReLU([F ‖ ÃF] W + b), W of shape (2·in, out), Xavier-uniform, b = 0 (Eq. 2-3).

    Shapes: ``forward(x, agg)`` with x and agg = Ãx (B, in) → (B, out)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.linear = nn.Linear(2 * in_dim, out_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, agg: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(torch.cat([x, agg], dim=-1)))


class GCNV(nn.Module):
    """One GraphConv and a head Linear-PReLU-Linear → a confidence per vertex.

    ``forward(x, agg)`` → (confidence (B,), hidden (B, hidden))."""

    def __init__(self, in_dim: int, hidden: int = 512):
        super().__init__()
        self.conv = GraphConv(in_dim, hidden)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.PReLU(hidden),
                                  nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, agg: torch.Tensor):
        h = self.conv(x, agg)
        return self.head(h).squeeze(-1), h


def _lr(step: int, cfg: dict) -> float:
    """The reference schedule (×0.1 at 40k, 64k and 72k of 80k iterations), scaled to
    ``cfg['steps']``: ×0.1 at 50%, 80% and 90% of the steps."""
    drops = sum(step >= int(f * cfg["steps"]) for f in (0.5, 0.8, 0.9))
    return cfg["lr"] * 0.1 ** drops


def _state(model: nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def train(features: np.ndarray, ids: np.ndarray, sims: np.ndarray, labels: np.ndarray,
          cfg: dict, seed: int = 0, device: str = "auto", held: np.ndarray | None = None,
          score: Callable | None = None) -> tuple[dict, dict]:
    """Train GCN-V on a labeled kNN graph: ``(checkpoint, info)``.

    ``features`` (N, D) unit rows, ``ids``/``sims`` (N, k) the kNN lists, ``labels`` (N,).
    The targets are ``confidence_targets`` (``cfg['target_norm']``).  ÃF is computed once
    (it holds no weight), so a step is the MLP on [F ‖ ÃF] for ``batch_size`` random
    vertices: the reference's full-graph step on a sample.  With ``held`` (N,) bool (the
    vertices of held-out identities, ``core.selection.held_out_identities``) and a
    ``score``, those vertices are left out of the loss; before training and every
    ``val_every`` steps ``score(confidence (N,), hidden (N, H))`` rates the model on them
    (score entries over τ) and ``core.selection.HeldOutSelection`` keeps the best-scoring
    model (a later one on a tie, never the untrained one) with its scores.

    Raises ``FloatingPointError`` when the loss is not finite (learn-to-cluster issue #60:
    NaN loss on 512-D features)."""
    dev = pick_device(device)
    seed_torch(seed)
    n = features.shape[0]
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(dev)
    agg = torch.from_numpy(np.asarray(affinity(ids, sims) @ features, dtype=np.float32)).to(dev)
    target = torch.from_numpy(confidence_targets(ids, sims, labels, cfg["target_norm"])).to(dev)
    held = np.zeros(n, dtype=bool) if held is None or score is None else held
    fit_rows = np.flatnonzero(~held)
    model = GCNV(features.shape[1], cfg["hidden"]).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          weight_decay=cfg["weight_decay"])
    rng = np.random.default_rng([seed, 3])
    batch = min(int(cfg["batch_size"]), fit_rows.size)
    losses = []
    selection = HeldOutSelection("GCN-V", lambda: _state(model), "tau", "τ")
    if held.any():
        log.info("GCN-V validation: %d of %d identities held out (%d vertices), scored every "
                 "%d steps", np.unique(labels[held]).size, np.unique(labels).size,
                 int(held.sum()), cfg["val_every"])

    def validate(step: int) -> None:
        model.eval()
        with torch.no_grad():
            conf, hidden = model(x, agg)
        model.train()
        selection.observe(step, score(conf.cpu().numpy(),
                                      nn.functional.normalize(hidden, dim=1).cpu().numpy()))

    start = time.perf_counter()
    if held.any():
        validate(0)
    progress = Progress(cfg["steps"], "GCN-V training steps", every=10.0)
    order, at = rng.permutation(fit_rows), 0
    for step in range(1, cfg["steps"] + 1):
        if at + batch > order.size:
            order, at = rng.permutation(fit_rows), 0
        rows = torch.from_numpy(order[at:at + batch]).to(dev)
        at += batch
        for group in opt.param_groups:
            group["lr"] = _lr(step - 1, cfg)
        conf, _ = model(x[rows], agg[rows])
        loss = nn.functional.mse_loss(conf, target[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"GCN-V: the loss is {value} at step {step}; lower "
                                     f"gcn_v.lr (now {cfg['lr']})")
        losses.append(value)
        progress.update()
        if held.any() and (step % cfg["val_every"] == 0 or step == cfg["steps"]):
            validate(step)
    info = {"steps": len(losses), "seconds": round(time.perf_counter() - start, 2),
            "loss_first": float(np.mean(losses[:10])), "loss_last": float(np.mean(losses[-10:])),
            "losses": [round(v, 6) for v in losses[:: max(1, len(losses) // 200)]]}
    state, validation = _state(model), None
    if held.any():
        state, validation = selection.result(labels, held, state)
    return {"state_dict": state, "config": {**cfg, "in_dim": int(features.shape[1])},
            "train_info": info, "validation": validation}, info


def load(checkpoint: dict, device: str = "cpu") -> GCNV:
    """The GCN-V of a checkpoint (``train``'s), in eval mode on ``device``."""
    cfg = checkpoint["config"]
    model = GCNV(cfg["in_dim"], cfg["hidden"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(pick_device(device)).eval()


@torch.inference_mode()
def predict(model: GCNV, features: np.ndarray, ids: np.ndarray, sims: np.ndarray,
            block: int = 65536, device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """``(confidence (N,) float32, L2-normalised hidden features (N, H) float32)`` of
    (N, D) ``features`` over their kNN lists ``ids``/``sims`` (N, k), in row blocks."""
    dev = pick_device(device)
    model = model.to(dev).eval()
    agg = np.asarray(affinity(ids, sims) @ features, dtype=np.float32)
    n = features.shape[0]
    conf = np.empty(n, dtype=np.float32)
    hidden = np.empty((n, model.conv.linear.out_features), dtype=np.float32)
    progress = Progress(n, "GCN-V inference", every=10.0)
    for a in range(0, n, block):
        c, h = model(torch.from_numpy(np.ascontiguousarray(features[a:a + block],
                                                           dtype=np.float32)).to(dev),
                     torch.from_numpy(agg[a:a + block]).to(dev))
        conf[a:a + block] = c.cpu().numpy()
        hidden[a:a + block] = nn.functional.normalize(h, dim=1).cpu().numpy()
        progress.update(min(block, n - a))
    return conf, hidden
