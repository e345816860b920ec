"""The Face Transformer's networks (Yang et al., 2021, ``papers/face-transformer_2021.txt``):
the Relation Encoder (RE, §3.3) and the Linkage Predictor (LP, §3.4), their training on
labeled faces, and their inference in row blocks.

Notation: f (N, D) the unit face features; ``ids`` (N, k) the kNN lists, each face itself
first; for face q, its *context* is ``ids[q, 1:hop2+1]`` and its *candidates*
``ids[q, 1:hop1+1]`` (the paper's hop2 and hop1 nearest neighbours; the face itself is
neither: it enters RE as the query and LP as g_q).

- Eq. 1-3, :class:`Attention`: M(Q, K, V) = cat(O_1..O_h) W^O, O_i = softmax(Q W_i^Q
  (K W_i^K)^T / √d_h) V W_i^V, h heads of width d_h (the paper's scaled softmax; it writes
  √d, we read d as the head's width, as the Transformer does).
- Eq. 4 / 7, :class:`SelfAttentionLayer`: x^l = LN(dropout(M(x^{l−1}, x^{l−1}, x^{l−1}))
  + x^{l−1}).  The paper also says "a residual connection around each of the two
  sub-layers"; its equations show one.  ``ff`` > 0 adds the Transformer's feed-forward
  sub-layer (x = LN(dropout(FF(x)) + x)); 0, the default, follows the equations.
- Eq. 5-6, :class:`RelationEncoder`: the context passes d_e self-attention layers; f̃_q =
  M(f_q, K^{d_e}, V^{d_e}); g_q = LN(f̃_q + f_q).
- Eq. 7-9, :class:`LinkagePredictor`: the candidates' g pass d_e self-attention layers
  (attending only among the query's own candidates); e_{q,k} = cat(g_q, g^{d_e}_{q,k})
  (Eq. 8 prints g_k for the first half; the text says the query's: g_q); logits = C(e),
  C a two-layer MLP with PReLU (hidden width ``mlp``: not given by the paper); P(same) =
  softmax(logits)[1].
- ``mode: re_only`` (Table 5): no LP; P(same) = 1 − e, e = ¼‖N(g_q) − N(g_k)‖² (Eq. 11-12),
  N the L2 normalisation.  ``mode: lp_only``: no RE; g = f (scaled, below).

Choices the paper leaves open, each an option of ``MODEL``: the input scale (the unit
features × √D by default: a unit row's coordinates are about 1/√D, and unscaled the
attention's output swamps f in Eq. 6's residual: on synthetic-small the enhanced features'
cosine then ranked pairs worse than the raw cosine, AUC 0.66 against 0.94); the optimiser
(AdamW, or SGD with momentum 0.9), the MLP's hidden width, the feed-forward sub-layer, the number of
training steps (the paper: 60 epochs of MS1M part0 at batch 32, about a million steps on
a V100; here ``steps`` of ``batch_size`` queries, chosen to fit 2 CPU cores).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ...core.device import pick_device, seed_torch
from ...core.progress import Progress, log
from ...core.selection import HeldOutSelection

MODES = ("both", "re_only", "lp_only")


class Attention(nn.Module):
    """Multi-head attention M(Q, K, V) (Eq. 1-3): ``forward(query (B, m, D), context
    (B, n, D), pad (B, n) bool, True where a context row is padding) -> (B, m, D)``.
    A query whose context is all padding attends to all of it (zero rows): no NaN."""

    def __init__(self, dim: int, heads: int, head_dim: int):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.q, self.k, self.v = (nn.Linear(dim, inner) for _ in range(3))
        self.out = nn.Linear(inner, dim)  # W^O

    def forward(self, query: torch.Tensor, context: torch.Tensor,
                pad: torch.Tensor | None = None) -> torch.Tensor:
        b, m, _ = query.shape
        n = context.shape[1]

        def split(x, length):
            return x.view(b, length, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.q(query), m), split(self.k(context), n), split(self.v(context), n)
        mask = None
        if pad is not None:
            keep = ~(pad & ~pad.all(dim=1, keepdim=True))
            mask = keep[:, None, None, :]  # (B, 1, 1, n): True = attend
        o = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(o.transpose(1, 2).reshape(b, m, self.heads * self.head_dim))


class SelfAttentionLayer(nn.Module):
    """Eq. 4 / 7: x = LN(dropout(M(x, x, x)) + x), then with ``ff`` > 0 the feed-forward
    sub-layer x = LN(dropout(FF(x)) + x).  (B, n, D) -> (B, n, D)."""

    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float, ff: int = 0):
        super().__init__()
        self.attention = Attention(dim, heads, head_dim)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.ff = None
        if ff:
            self.ff = nn.Sequential(nn.Linear(dim, ff), nn.ReLU(), nn.Linear(ff, dim))
            self.ff_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(self.drop(self.attention(x, x, pad)) + x)
        if self.ff is not None:
            x = self.ff_norm(self.drop(self.ff(x)) + x)
        return x


class RelationEncoder(nn.Module):
    """RE (Eq. 4-6): ``forward(f (B, D), context (B, hop2, D), pad (B, hop2)) -> g (B, D)``."""

    def __init__(self, dim: int, depth: int, heads: int, head_dim: int, dropout: float,
                 ff: int = 0):
        super().__init__()
        self.layers = nn.ModuleList(SelfAttentionLayer(dim, heads, head_dim, dropout, ff)
                                    for _ in range(depth))
        self.attention = Attention(dim, heads, head_dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, f: torch.Tensor, context: torch.Tensor,
                pad: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            context = layer(context, pad)
        f_tilde = self.attention(f[:, None, :], context, pad)[:, 0]  # Eq. 5
        return self.norm(f_tilde + f)  # Eq. 6


EDGES = ("cat", "cat_cosine", "symmetric")


class LinkagePredictor(nn.Module):
    """LP (Eq. 7-9): ``forward(g_q (B, D), g_cand (B, hop1, D), pad (B, hop1)) -> logits
    (B, hop1, 2)`` (class 1: the same identity).

    ``edge`` is the edge embedding fed to the MLP, with h_k the candidate after LP's
    layers and g_k before them: ``cat``: [g_q ‖ h_k] (Eq. 8); ``cat_cosine``: [g_q ‖ h_k ‖
    cos(g_q, g_k)]; ``symmetric``: [g_q ⊙ h_k ‖ |g_q − h_k| ‖ cos(g_q, g_k)], which does not
    say where in feature space the pair lies, only how the two compare (not in the paper:
    an option, see ``face_transformer.MODEL``)."""

    def __init__(self, dim: int, depth: int, heads: int, head_dim: int, dropout: float,
                 ff: int = 0, mlp: int = 256, edge: str = "cat"):
        super().__init__()
        if edge not in EDGES:
            raise ValueError(f"edge must be one of {EDGES}, not {edge!r}")
        self.layers = nn.ModuleList(SelfAttentionLayer(dim, heads, head_dim, dropout, ff)
                                    for _ in range(depth))
        self.edge = edge
        self.classifier = nn.Sequential(nn.Linear(2 * dim + int(edge != "cat"), mlp),
                                        nn.PReLU(), nn.Linear(mlp, 2))

    def forward(self, g_q: torch.Tensor, g_cand: torch.Tensor,
                pad: torch.Tensor | None = None) -> torch.Tensor:
        g_k = g_cand
        for layer in self.layers:
            g_cand = layer(g_cand, pad)
        q = g_q[:, None, :].expand_as(g_cand)
        if self.edge == "symmetric":
            parts = [q * g_cand, (q - g_cand).abs()]
        else:
            parts = [q, g_cand]  # Eq. 8
        if self.edge != "cat":
            parts.append((nn.functional.normalize(q, dim=-1)
                          * nn.functional.normalize(g_k, dim=-1)).sum(-1, keepdim=True))
        return self.classifier(torch.cat(parts, dim=-1))  # Eq. 9 before the softmax


class FaceTransformer(nn.Module):
    """RE and LP as ``mode`` combines them (``both``, ``re_only``, ``lp_only``)."""

    def __init__(self, dim: int, mode: str = "both", depth: int = 2, heads: int = 4,
                 head_dim: int = 64, dropout: float = 0.4, ff: int = 0, mlp: int = 256,
                 edge: str = "cat", scale_input: bool = True):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.scale = math.sqrt(dim) if scale_input else 1.0
        self.re = RelationEncoder(dim, depth, heads, head_dim, dropout, ff) \
            if mode != "lp_only" else None
        self.lp = LinkagePredictor(dim, depth, heads, head_dim, dropout, ff, mlp, edge) \
            if mode != "re_only" else None

    def encode(self, f: torch.Tensor, context: torch.Tensor | None = None,
               pad: torch.Tensor | None = None) -> torch.Tensor:
        """g (B, D) of unit features f (B, D) and their context (B, hop2, D): RE's enhanced
        features, or (without RE) f itself; both scaled by ``scale`` first."""
        if self.re is None:
            return f * self.scale
        return self.re(f * self.scale, context * self.scale, pad)

    def log_probs(self, g_q: torch.Tensor, g_cand: torch.Tensor,
                  pad: torch.Tensor) -> torch.Tensor:
        """log P(same identity) and log P(not) of every (query, candidate): (B, hop1, 2),
        class 1 the same identity."""
        if self.lp is not None:
            return torch.log_softmax(self.lp(g_q, g_cand, pad), dim=-1)
        a = nn.functional.normalize(g_q, dim=-1)[:, None, :]
        b = nn.functional.normalize(g_cand, dim=-1)
        e = (0.25 * (a - b).pow(2).sum(-1)).clamp(1e-6, 1 - 1e-6)  # Eq. 11
        return torch.stack([torch.log(e), torch.log1p(-e)], dim=-1)  # Eq. 12: (e, 1 − e)


def _gather(table: torch.Tensor, idx: np.ndarray, dev) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``table[idx]`` (…, D) with zero rows and a True pad where idx < 0."""
    index = torch.from_numpy(np.ascontiguousarray(idx, dtype=np.int64)).to(dev)
    pad = index < 0
    return table[index.clamp_min(0)].masked_fill(pad.unsqueeze(-1), 0.0), pad


def lists_of(ids: np.ndarray, hop: int) -> np.ndarray:
    """Each face's ``hop`` nearest others: ``ids[:, 1:hop+1]`` (N, hop), −1-padded when
    the lists are shorter.  Raises ValueError when a list does not start with its face."""
    n = ids.shape[0]
    if n and not np.all((ids[:, 0] == np.arange(n)) | (ids[:, 0] < 0)):
        raise ValueError("kNN lists must hold each face itself first")
    out = ids[:, 1:hop + 1]
    if out.shape[1] < hop:
        out = np.concatenate([out, np.full((n, hop - out.shape[1]), -1, ids.dtype)], axis=1)
    return np.ascontiguousarray(out)


def _encode_rows(model: FaceTransformer, feats: torch.Tensor, context: np.ndarray,
                 rows: np.ndarray, dev) -> torch.Tensor:
    """g of faces ``rows`` (R,) -> (R, D)."""
    if model.re is None:
        return model.encode(feats[torch.from_numpy(rows.astype(np.int64)).to(dev)])
    ctx, pad = _gather(feats, context[rows], dev)
    return model.encode(feats[torch.from_numpy(rows.astype(np.int64)).to(dev)], ctx, pad)


def _batch_log_probs(model, feats, context, candidates, queries, dev):
    """Training/validation forward pass of a batch of queries: log probs (B, hop1, 2) and
    the candidates' pad (B, hop1).  RE runs on the queries and every candidate."""
    cand = candidates[queries]
    used, inverse = np.unique(np.concatenate([queries, cand[cand >= 0]]), return_inverse=True)
    g = _encode_rows(model, feats, context, used, dev)
    g_q = g[torch.from_numpy(inverse[:queries.size]).to(dev)]
    local = np.full(cand.shape, -1, dtype=np.int64)
    local[cand >= 0] = inverse[queries.size:]
    g_cand, pad = _gather(g, local, dev)
    return model.log_probs(g_q, g_cand, pad), pad


# The paper's features are 256-D (its lr 0.002 is for them).  Adam moves each weight by
# about lr a step, so a layer's output moves by about lr times its fan-in, and the layers
# here are as wide as the features: wider features take lr · 256 / D.  At D = 512 the
# unscaled lr collapsed training after about 250 steps (held-out score 0.77 at step 200,
# 0.26 at 400: gen-d512's train part); lr · ½ held 0.945 and 0.943 (README, Face
# Transformer).  D ≤ 256 trains at lr itself.
REFERENCE_DIM = 256


def learning_rate(cfg: dict, dim: int) -> float:
    """The base learning rate for features of ``dim`` dimensions: ``cfg['lr']`` up to
    ``REFERENCE_DIM``, ``cfg['lr'] · REFERENCE_DIM / dim`` beyond."""
    return float(cfg["lr"]) * min(1.0, REFERENCE_DIM / dim)


def _lr_factor(step: int, warmup: int, steps: int) -> float:
    """Linear warm-up over ``warmup`` steps, then a cosine decay to 0 at ``steps`` (§4.1)."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def _state(model: nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def build(cfg: dict, dim: int) -> FaceTransformer:
    """The network of the ``model`` settings ``cfg`` for D = ``dim``."""
    return FaceTransformer(dim, cfg["mode"], cfg["depth"], cfg["heads"], cfg["head_dim"],
                           cfg["dropout"], cfg["ff"], cfg["mlp"], cfg["edge"],
                           cfg["scale_input"])


def train(features: np.ndarray, ids: np.ndarray, labels: np.ndarray, cfg: dict,
          seed: int = 0, device: str = "auto", held: np.ndarray | None = None,
          score: Callable | None = None) -> tuple[dict, dict]:
    """Train RE and LP (as ``cfg['mode']`` has them) on labeled faces: ``(checkpoint,
    info)``.

    ``features`` (N, D) unit rows, ``ids`` (N, k) the kNN lists (self first, k > hop1),
    ``labels`` (N,).  A step draws ``batch_size`` queries (without replacement, epoch by
    epoch) and minimises the cross-entropy of every (query, candidate) edge against
    1[same identity], averaged over the batch's edges (the paper's 2-class softmax).  The
    learning rate (:func:`learning_rate`: ``lr``, scaled down for D > 256) warms up
    linearly over ``warmup`` steps, then follows a cosine to 0.
    With ``held`` (N,) bool (faces of held-out identities) and ``score``, those faces are
    never queries nor candidates of training; before training and every ``val_every``
    steps ``score(model)`` rates the model (score entries over τ) and
    ``core.selection.HeldOutSelection`` keeps the best-scoring one (a later one on a tie,
    never the untrained one).

    Raises ``FloatingPointError`` when the loss is not finite."""
    dev = pick_device(device)
    seed_torch(seed)
    rng = np.random.default_rng([seed, 5])
    n, dim = features.shape
    held = np.zeros(n, dtype=bool) if held is None or score is None else held
    visible = np.where(held[np.maximum(ids, 0)] | (ids < 0), -1, ids)  # training side only
    context, candidates = lists_of(visible, cfg["hop2"]), lists_of(visible, cfg["hop1"])
    target = torch.from_numpy(labels[np.maximum(candidates, 0)] == labels[:, None]).long()
    fit_rows = np.flatnonzero(~held & (candidates >= 0).any(axis=1))
    if fit_rows.size == 0:
        raise ValueError("no training face has a neighbour: the train part is too small")
    feats = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(dev)
    model = build(cfg, dim).to(dev)
    params = list(model.parameters())
    lr = learning_rate(cfg, dim)
    if cfg["optimizer"] == "adamw":
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg["weight_decay"])
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=cfg["weight_decay"])
    batch = min(int(cfg["batch_size"]), fit_rows.size)
    losses = []
    selection = HeldOutSelection("Face Transformer", lambda: _state(model), "tau", "τ")

    def validate(step: int) -> None:
        model.eval()
        scores = score(model)
        model.train()
        selection.observe(step, scores)

    start = time.perf_counter()
    if held.any():
        log.info("Face Transformer validation: %d of %d identities held out (%d faces)",
                 np.unique(labels[held]).size, np.unique(labels).size, int(held.sum()))
        validate(0)
    progress = Progress(cfg["steps"], "Face Transformer training steps", every=10.0)
    order, at = rng.permutation(fit_rows), 0
    model.train()
    for step in range(1, cfg["steps"] + 1):
        if at + batch > order.size:
            order, at = rng.permutation(fit_rows), 0
        queries = order[at:at + batch]
        at += batch
        for group in opt.param_groups:
            group["lr"] = lr * _lr_factor(step - 1, cfg["warmup"], cfg["steps"])
        logp, pad = _batch_log_probs(model, feats, context, candidates, queries, dev)
        y = target[torch.from_numpy(queries)].to(dev)
        keep = ~pad
        loss = nn.functional.nll_loss(logp[keep], y[keep])
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"Face Transformer: the loss is {value} at step {step}; "
                                     f"lower model.lr (now {cfg['lr']}, {lr:g} at D {dim})")
        losses.append(value)
        progress.update()
        if held.any() and (step % cfg["val_every"] == 0 or step == cfg["steps"]):
            validate(step)
    info = {"steps": len(losses), "seconds": round(time.perf_counter() - start, 2), "lr": lr,
            "loss_first": float(np.mean(losses[:10])), "loss_last": float(np.mean(losses[-10:])),
            "losses": [round(v, 5) for v in losses[:: max(1, len(losses) // 200)]]}
    state, validation = _state(model), None
    if held.any():
        state, validation = selection.result(labels, held, state)
    return {"state_dict": state, "config": {**cfg, "dim": int(dim)}, "train_info": info,
            "validation": validation}, info


def load(checkpoint: dict, device: str = "cpu") -> FaceTransformer:
    """The network of a checkpoint (``train``'s), in eval mode on ``device``."""
    model = build(checkpoint["config"], checkpoint["config"]["dim"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(pick_device(device)).eval()


@torch.inference_mode()
def relations(model: FaceTransformer, features: np.ndarray, ids: np.ndarray, hop2: int,
              block: int = 8192, device: str = "auto") -> np.ndarray:
    """g (N, D) float32 of every face (``FaceTransformer.encode``: RE's, from its ``hop2``
    context in ``ids``; without RE the scaled features), in blocks."""
    dev = pick_device(device)
    model = model.to(dev).eval()
    feats = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(dev)
    context = lists_of(ids, hop2)
    out = np.empty(features.shape, dtype=np.float32)
    progress = Progress(features.shape[0], "Relation Encoder", every=10.0)
    for a in range(0, features.shape[0], block):
        rows = np.arange(a, min(a + block, features.shape[0]))
        out[rows] = _encode_rows(model, feats, context, rows, dev).cpu().numpy()
        progress.update(rows.size)
    return out


@torch.inference_mode()
def link_probabilities(model: FaceTransformer, g: np.ndarray, ids: np.ndarray, hop1: int,
                       block: int = 1024, device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """LP's P(same identity) of every face with each of its ``hop1`` candidates:
    ``(candidates (N, hop1) int64, p (N, hop1) float32)``, p 0 at padding.  ``g`` (N, D)
    are ``relations``' (RE's, or without RE the scaled features)."""
    dev = pick_device(device)
    model = model.to(dev).eval()
    table = torch.from_numpy(np.ascontiguousarray(g, dtype=np.float32)).to(dev)
    cand = lists_of(ids, hop1)
    p = np.zeros(cand.shape, dtype=np.float32)
    progress = Progress(g.shape[0], "Linkage Predictor", every=10.0)
    for a in range(0, g.shape[0], block):
        rows = np.arange(a, min(a + block, g.shape[0]))
        g_cand, pad = _gather(table, cand[rows], dev)
        logp = model.log_probs(table[a:a + rows.size], g_cand, pad)
        p[rows] = logp[..., 1].exp().masked_fill(pad, 0.0).cpu().numpy()
        progress.update(rows.size)
    return cand.astype(np.int64), p
