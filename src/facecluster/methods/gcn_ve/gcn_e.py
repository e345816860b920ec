"""GCN-E (Yang et al., CVPR 2020, §3.4): edge connectivity on each confident vertex's
candidate set, for the links GCN-V's nearest-higher-confidence rule gets wrong.

- **Candidate set** S_i: the neighbours j ≠ i of vertex i's lists with a strictly higher
  confidence, in list order (i itself is not a node of its subgraph).
- **Subgraph** of i: node features f_j − f_i (GCN-V's L2-normalised hidden features);
  adjacency = the global symmetric, self-looped, row-normalised graph of the lists
  (``gcn_v.affinity``) restricted to S_i and row-normalised again.
- **GCN-E**: four GraphConv layers (512 → 512 → 512 → 256 → 256 by default, the first
  from the hidden width), a head Linear-PReLU-Linear → two classes, cross-entropy against
  1[y_j = y_i].  Trained on the top ``rho_train`` (reference 30%) of the train part's
  vertices by predicted confidence; SGD, lr 0.1, momentum 0.9, weight decay 1e-5, ×0.1 at
  50/80/90% of the epochs (the reference: 40 epochs with ×0.1 at 20/32/36, one subgraph per
  step with 32 steps of gradient accumulation, which a batch of 32 subgraphs matches).
- **Inference**: the top ρ vertices by confidence with at least two candidates link to the
  candidate of highest P(link); the edge is kept when their similarity is above τ, as every
  other vertex's edge to its nearest higher-confidence neighbour is.

Subgraphs are batched by size (sorted, then padded to the batch's largest), so a batch
costs what its real nodes cost, about.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ...core.device import pick_device, seed_torch
from ...core.progress import Progress, log
from .gcn_v import GraphConv, _lr, _state

LAYERS = (512, 512, 256, 256)


def candidate_sets(ids: np.ndarray, confidence: np.ndarray,
                   rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The candidate sets of vertices ``rows`` (R,): ``(positions (R, k) int64, sizes (R,))``
    where ``positions[r, :sizes[r]]`` are the list columns (into ``ids[rows[r]]``) of the
    neighbours j ≠ i with confidence strictly above i's, in list order; −1 pads."""
    lists = ids[rows]
    valid = (lists >= 0) & (lists != rows[:, None]) & \
        (confidence[np.maximum(lists, 0)] > confidence[rows][:, None])
    order = np.argsort(~valid, axis=1, kind="stable")  # valid columns first, in order
    sizes = valid.sum(axis=1)
    positions = np.where(np.arange(ids.shape[1])[None, :] < sizes[:, None], order, -1)
    return positions.astype(np.int64), sizes.astype(np.int64)


def subgraph_batch(hidden: np.ndarray, adjacency: sp.csr_matrix, ids: np.ndarray,
                   centres: np.ndarray, positions: np.ndarray, sizes: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A padded batch of B subgraphs: ``(x (B, m, H), adj (B, m, m), mask (B, m), nodes
    (B, m))``, m the largest size, ``nodes`` the vertex ids of the nodes (−1 pads).

    x holds f_j − f_i for the candidates j of centre i; adj the rows of ``adjacency``
    (N, N) restricted to the candidates and row-normalised again (a pad row stays 0)."""
    b, m = centres.size, int(max(1, sizes.max(initial=1)))
    x = np.zeros((b, m, hidden.shape[1]), dtype=np.float32)
    adj = np.zeros((b, m, m), dtype=np.float32)
    nodes = np.full((b, m), -1, dtype=np.int64)
    for r in range(b):
        s = int(sizes[r])
        if s == 0:
            continue
        members = ids[centres[r], positions[r, :s]]
        nodes[r, :s] = members
        x[r, :s] = hidden[members] - hidden[centres[r]]
        sub = adjacency[members][:, members].toarray()
        adj[r, :s, :s] = sub / np.maximum(sub.sum(axis=1, keepdims=True), 1e-12)
    return x, adj, nodes >= 0, nodes


class GCNE(nn.Module):
    """Four GraphConv layers and a two-class head on padded subgraphs.

    ``forward(x (B, m, H), adj (B, m, m))`` → logits (B, m, 2); class 1 is "links"."""

    def __init__(self, in_dim: int, layers: tuple[int, ...] = LAYERS):
        super().__init__()
        dims = (in_dim, *layers)
        self.convs = nn.ModuleList(GraphConv(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.head = nn.Sequential(nn.Linear(dims[-1], dims[-1]), nn.PReLU(dims[-1]),
                                  nn.Linear(dims[-1], 2))

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x, torch.bmm(adj, x))
        b, m, c = x.shape  # PReLU's channels are dim 1: the head sees (B·m, C)
        return self.head(x.reshape(b * m, c)).reshape(b, m, 2)


def _batches(sizes: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices into ``sizes`` in batches of about equal size: sorted by size, then cut."""
    order = np.argsort(sizes, kind="stable")
    return [order[a:a + batch_size] for a in range(0, order.size, batch_size)]


def top_vertices(confidence: np.ndarray, fraction: float) -> np.ndarray:
    """The ⌈fraction·N⌉ vertices of highest confidence (ties by index), sorted by index."""
    n = int(np.ceil(fraction * confidence.size))
    return np.sort(np.argsort(-confidence, kind="stable")[:n])


def train(hidden: np.ndarray, confidence: np.ndarray, ids: np.ndarray, sims: np.ndarray,
          labels: np.ndarray, cfg: dict, seed: int = 0, device: str = "auto"
          ) -> tuple[dict, dict]:
    """Train GCN-E on the train part: ``(checkpoint, info)``.

    ``hidden`` (N, H) GCN-V's L2-normalised hidden features, ``confidence`` (N,) its
    predicted confidences, ``ids``/``sims`` (N, k) the lists tree deduction walks,
    ``labels`` (N,).  Subgraphs of the top ``cfg['rho_train']`` vertices by confidence
    with at least one candidate; ``cfg['epochs']`` passes in batches of
    ``cfg['batch_size']`` subgraphs.  Raises ``ValueError`` when no vertex has a
    candidate, ``FloatingPointError`` on a non-finite loss."""
    from .gcn_v import affinity

    dev = pick_device(device)
    seed_torch(seed)
    rng = np.random.default_rng([seed, 5])
    adjacency = affinity(ids, sims)
    centres = top_vertices(confidence, cfg["rho_train"])
    positions, sizes = candidate_sets(ids, confidence, centres)
    keep = sizes >= 1
    centres, positions, sizes = centres[keep], positions[keep], sizes[keep]
    if centres.size == 0:
        raise ValueError("GCN-E: no confident vertex has a higher-confidence neighbour")
    batches = _batches(sizes, int(cfg["batch_size"]))
    model = GCNE(hidden.shape[1], tuple(cfg["layers"])).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          weight_decay=cfg["weight_decay"])
    steps = cfg["epochs"] * len(batches)
    schedule = {"lr": cfg["lr"], "steps": steps}
    log.info("GCN-E: %d subgraphs (mean %.1f nodes) of the top %.0f%% vertices, %d epochs",
             centres.size, sizes.mean(), 100 * cfg["rho_train"], cfg["epochs"])
    progress = Progress(steps, "GCN-E training steps", every=10.0)
    losses, step, start = [], 0, time.perf_counter()
    for _ in range(cfg["epochs"]):
        for chunk in rng.permutation(len(batches)):
            sel = batches[chunk]
            x, adj, mask, nodes = subgraph_batch(hidden, adjacency, ids, centres[sel],
                                                 positions[sel], sizes[sel])
            target = labels[np.maximum(nodes, 0)] == labels[centres[sel]][:, None]
            for group in opt.param_groups:
                group["lr"] = _lr(step, schedule)
            logits = model(torch.from_numpy(x).to(dev), torch.from_numpy(adj).to(dev))
            m = torch.from_numpy(mask).to(dev)
            loss = nn.functional.cross_entropy(logits[m],
                                               torch.from_numpy(target).to(dev)[m].long())
            opt.zero_grad()
            loss.backward()
            opt.step()
            value = float(loss.detach())
            if not np.isfinite(value):
                raise FloatingPointError(f"GCN-E: the loss is {value} at step {step}; lower "
                                         f"gcn_e.lr (now {cfg['lr']})")
            losses.append(value)
            step += 1
            progress.update()
    info = {"steps": step, "subgraphs": int(centres.size),
            "seconds": round(time.perf_counter() - start, 2),
            "loss_first": float(np.mean(losses[:10])), "loss_last": float(np.mean(losses[-10:])),
            "losses": [round(v, 6) for v in losses[:: max(1, len(losses) // 200)]]}
    return {"state_dict": _state(model),
            "config": {**cfg, "in_dim": int(hidden.shape[1])}, "train_info": info}, info


def load(checkpoint: dict, device: str = "cpu") -> GCNE:
    """The GCN-E of a checkpoint (``train``'s), in eval mode on ``device``."""
    cfg = checkpoint["config"]
    model = GCNE(cfg["in_dim"], tuple(cfg["layers"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(pick_device(device)).eval()


@torch.inference_mode()
def edge_parents(model: GCNE, hidden: np.ndarray, confidence: np.ndarray, ids: np.ndarray,
                 sims: np.ndarray, rho: float, batch_size: int = 256, device: str = "auto"
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GCN-E's parents: for the top ``rho`` vertices by confidence with two or more
    candidates, the candidate of highest P(link).  ``(vertices (R,), parent (R,),
    similarity to the parent (R,))``, the similarity read from ``sims``."""
    from .gcn_v import affinity

    dev = pick_device(device)
    model = model.to(dev).eval()
    centres = top_vertices(confidence, rho)
    positions, sizes = candidate_sets(ids, confidence, centres)
    keep = sizes >= 2
    centres, positions, sizes = centres[keep], positions[keep], sizes[keep]
    parent = np.empty(centres.size, dtype=np.int64)
    parent_sim = np.empty(centres.size, dtype=np.float32)
    if centres.size == 0:
        return centres, parent, parent_sim
    adjacency = affinity(ids, sims)
    progress = Progress(centres.size, "GCN-E subgraphs", every=10.0)
    for sel in _batches(sizes, batch_size):
        x, adj, mask, _ = subgraph_batch(hidden, adjacency, ids, centres[sel],
                                         positions[sel], sizes[sel])
        logits = model(torch.from_numpy(x).to(dev), torch.from_numpy(adj).to(dev))
        p_link = torch.softmax(logits, dim=-1)[..., 1].cpu().numpy()
        best = np.argmax(np.where(mask, p_link, -np.inf), axis=1)
        cols = positions[sel, best]
        parent[sel] = ids[centres[sel], cols]
        parent_sim[sel] = sims[centres[sel], cols]
        progress.update(sel.size)
    return centres, parent, parent_sim
