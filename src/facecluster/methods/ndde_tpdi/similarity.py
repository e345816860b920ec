"""The learned pairwise similarity of the hard-clusters paper's code: for each anchor, its
kNN list passes one transformer encoder layer whose attention runs across that anchor's
neighbours, and a pair head scores each (anchor, neighbour) as the same identity or not.

For anchor i with neighbours x_0 = f_i, x_1, …, x_{k−1} (unit rows, by cosine):

    z_r = W_in x_r                       (an input projection; none in the reference size)
    q_r = k_r = z_r + PE(r),  v_r = z_r  (a sinusoidal encoding of the rank r)
    h = LayerNorm(z + MHA(q, k, v)),  h' = LayerNorm(h + FF(h))          (post-norm)
    logit_r = MLP([h'_0 ‖ h'_r])         (2·d → 256 → 128 → 1, ReLU)
    d_ir = 1 − sigmoid(logit_r)

trained with BCE against 1[y_r = y_i] over all k pairs of every anchor (Adam, weight decay
5e-4).  The reference code passes a (B, k, d) tensor to an attention that expects
(k, B, d), so it attends across the anchors of a batch at the same rank; here the batch is
the first axis (``batch_first``), and a test shows that permuting the anchors of a batch
changes no anchor's output.  Its ``optimizer.step()`` also runs twice per batch; here once.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn

from ...core.device import pick_device, seed_torch
from ...core.progress import Progress, log


def rank_encoding(k: int, width: int) -> torch.Tensor:
    """The sinusoidal encoding of ranks 0..k−1: (k, width)."""
    position = torch.arange(k, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    pe = torch.zeros(k, width)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq[: width // 2])
    return pe


class PairSimilarity(nn.Module):
    """Scores every (anchor, neighbour) pair of a batch of kNN lists.

    ``forward(x)`` takes x (B, k, D), each list's features with the anchor first, and returns
    logits (B, k) (position 0 scores the anchor with itself).
    """

    def __init__(self, dim: int, k: int, width: int = 64, heads: int = 4, ff: int = 256,
                 dropout: float = 0.2, project: bool = True):
        super().__init__()
        if not project:
            width = dim
        if width % heads:
            raise ValueError(f"width {width} must be a multiple of heads {heads}")
        self.project = nn.Linear(dim, width) if project else nn.Identity()
        self.register_buffer("pe", rank_encoding(k, width), persistent=False)
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, ff), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(ff, width))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(2 * width, 256), nn.ReLU(), nn.Linear(256, 128),
                                  nn.ReLU(), nn.Linear(128, 1))
        self.k = k

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        z = self.project(x)
        qk = z + self.pe[: z.shape[1]]
        attended, _ = self.attention(qk, qk, z, key_padding_mask=pad, need_weights=False)
        h = self.norm1(z + self.drop(attended))
        h = self.norm2(h + self.drop(self.ff(h)))
        pairs = torch.cat([h[:, :1].expand_as(h), h], dim=-1)
        return self.head(pairs).squeeze(-1)


def _batch(features: torch.Tensor, ids: np.ndarray, rows: np.ndarray, dev):
    idx = torch.from_numpy(ids[rows].astype(np.int64)).to(dev)
    pad = idx < 0
    x = features[idx.clamp_min(0)].masked_fill(pad.unsqueeze(-1), 0.0)
    return x, pad


def train(features: np.ndarray, ids: np.ndarray, labels: np.ndarray, cfg: dict, seed: int = 0,
          device: str = "auto") -> tuple[dict, dict]:
    """Train the pair similarity on labeled faces; (checkpoint, info).  ``ids`` (N, k) are
    the kNN lists (self first), ``labels`` (N,) the identities; ``cfg`` the ``model``
    settings (width, heads, ff, dropout, project, lr, weight_decay, epochs, batch_size)."""
    dev = pick_device(device)
    seed_torch(seed)
    rng = np.random.default_rng(seed)
    n, k = ids.shape
    model = PairSimilarity(features.shape[1], k, cfg["width"], cfg["heads"], cfg["ff"],
                           cfg["dropout"], cfg["project"]).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    feats = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(dev)
    target_all = torch.from_numpy(
        (labels[np.maximum(ids, 0)] == labels[:, None]).astype(np.float32)).to(dev)
    batch = min(cfg["batch_size"], n)
    steps = cfg["epochs"] * math.ceil(n / batch)
    progress = Progress(steps, "pair similarity training steps", every=10.0)
    losses, start = [], time.perf_counter()
    model.train()
    for epoch in range(cfg["epochs"]):
        order = rng.permutation(n)
        for a in range(0, n, batch):
            rows = order[a:a + batch]
            x, pad = _batch(feats, ids, rows, dev)
            logits = model(x, pad)
            weight = (~pad).float()
            loss = nn.functional.binary_cross_entropy_with_logits(
                logits, target_all[torch.from_numpy(rows).to(dev)], weight=weight,
                reduction="sum") / weight.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            progress.update()
        log.info("pair similarity: epoch %d/%d, loss %.4f", epoch + 1, cfg["epochs"],
                 float(np.mean(losses[-math.ceil(n / batch):])))
    info = {"steps": len(losses), "seconds": round(time.perf_counter() - start, 2),
            "loss_first": float(np.mean(losses[:5])), "loss_last": float(np.mean(losses[-5:])),
            "losses": [round(v, 5) for v in losses[:: max(1, len(losses) // 200)]]}
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    return {"state_dict": state, "config": {**cfg, "dim": int(features.shape[1]), "k": int(k)},
            "train_info": info}, info


def load(checkpoint: dict, device: str = "cpu") -> PairSimilarity:
    cfg = checkpoint["config"]
    model = PairSimilarity(cfg["dim"], cfg["k"], cfg["width"], cfg["heads"], cfg["ff"],
                           cfg["dropout"], cfg["project"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(pick_device(device)).eval()


@torch.inference_mode()
def distances(model: PairSimilarity, features: np.ndarray, ids: np.ndarray,
              batch: int = 1024, device: str = "auto") -> np.ndarray:
    """d (N, k) = 1 − sigmoid(logit) of every listed pair; 1 at padding."""
    dev = pick_device(device)
    model = model.to(dev).eval()
    if ids.shape[1] > model.k:
        raise ValueError(f"the similarity was trained on lists of {model.k}; these hold "
                         f"{ids.shape[1]}: use the kNN k it was trained with")
    feats = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(dev)
    out = np.ones(ids.shape, dtype=np.float32)
    progress = Progress(ids.shape[0], "pair similarity: distances")
    for a in range(0, ids.shape[0], batch):
        rows = np.arange(a, min(a + batch, ids.shape[0]))
        x, pad = _batch(feats, ids, rows, dev)
        d = 1.0 - torch.sigmoid(model(x, pad))
        out[rows] = d.masked_fill(pad, 1.0).cpu().numpy()
        progress.update(rows.size)
    return out
