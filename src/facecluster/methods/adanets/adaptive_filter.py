"""The Ada-NETS adaptive filter (§3.2.2, Eq. 4-5, Table 5): how many candidates to keep.

For vertex i the filter reads the sequence of its first k candidates'
features in structure-space order, ``features[cand_ids[i, :k]]`` (k×D; the
candidate lists hold i itself first, so this is the paper's [v_i, v_i1, …]),
and estimates k_off = argmax_j Q(j) (Eq. 4), the prefix length whose F_β
against i's identity is best.  A bidirectional LSTM with a shortcut, a per-step
L2 normalisation, a mean over steps and two fully connected layers with a
shortcut make one vector per vertex; a head per estimation method (Table 5,
appendix A.3) turns it into k̂_off ∈ 1..k:

- ``reg``    (E_reg, the paper's choice): regress k_off/k with the Huber loss
  (δ = 1, Eq. 5) on the relative error, as the reference code does;
  k̂_off = round(k·output) clipped to [1, k].
- ``cls``    (E_cls): a k-way softmax over 1..k, cross-entropy.
- ``qseq``   (E_Qseq): regress Q(j) for every j (mean squared error);
  k̂_off = the first argmax of the predicted curve.
- ``qparam`` (E_Qparam): regress the coefficients (a, b, c) of the least-squares
  quadratic a·t² + b·t + c, t = j/k, through each vertex's Q curve;
  k̂_off = the first argmax of that quadratic over j = 1..k.

Training follows the paper: SGD with momentum 0.9, weight decay 1e-5, lr 0.01
on a cosine schedule.  Batches are gathered from the N×D features on the fly,
so memory stays O(batch·k·D).  The reference model (LSTM hidden 256 on the raw
256-D features, MLP 256→512→256) costs seconds per thousand sequences on two
CPU cores; the defaults here put a linear projection before the LSTM and shrink
it, and ``REFERENCE`` holds the overrides that rebuild the reference.  One
addition to the paper, on by default (``probe_similarity``): each step's input
also carries cos(v_i, v_ij), the similarity profile a narrow projection would
otherwise have to learn to recompute.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...core import io
from ...core.device import pick_device, seed_torch
from ...core.progress import Progress, log
from .settings import FILTER as PARAMS
from .settings import VARIANTS

# Overrides that rebuild the reference code's filter (for 256-D features).
REFERENCE: dict = {"optimizer": "sgd", "lr": 0.01, "proj": 0, "hidden": 256, "mlp_hidden": 512, "dropout": 0.5,
                   "probe_similarity": False, "batch_size": 1024, "steps": 40000}

_MODEL_KEYS = ("k", "dim", "variant", "proj", "hidden", "mlp_hidden", "dropout", "probe_similarity")
_FLOAT_KEYS = ("lr", "momentum", "weight_decay", "max_seconds", "huber_delta", "dropout",
               "val_fraction")


def filter_config(**overrides) -> dict:
    """``PARAMS`` resolved with ``overrides``; ``ParamError`` (a ValueError) names an unknown
    key or a bad value."""
    cfg = PARAMS.resolve(overrides, where="filter")
    for key, entry in PARAMS.entries.items():
        if entry.schema.get("type") == "integer":
            cfg[key] = int(cfg[key])
    for key in _FLOAT_KEYS:
        cfg[key] = float(cfg[key])
    return cfg


class AdaptiveFilter(nn.Module):
    r"""Estimate k_off from the sequence of a vertex's candidate features.

    With X ∈ R^{B×k×D} the candidates' features (padding rows zero) and W the
    working width (``proj``, or D without a projection); x_1 is the probe
    itself, so x_j·x_1 is the cosine profile for unit-length features:

    .. math::
        Z &= X P^\top \quad (\text{or } Z = X) \qquad
            [\,\|\, x_j \cdot x_1\ \text{per step when } probe\_similarity]\\
        H &= \mathrm{BiLSTM}(Z) \in R^{B×k×2h}, \qquad
            U_j = (H_j O^\top + Z_j)/\sqrt2 \\
        u &= \mathrm{normalize}\Big(\tfrac1k \sum_j \mathrm{normalize}(U_j)\Big) \\
        g &= \big(u + \mathrm{PReLU}(W_2\,\mathrm{PReLU}(W_1 u))\big)/\sqrt2 \\
        \text{out} &= \text{head}(g)

    The head is Linear(W→1) for ``reg`` (k_off/k), Linear(W→k) for ``cls``
    (logits over 1..k) and ``qseq`` (Q(1..k)), Linear(W→3) for ``qparam``
    (a, b, c).  ``decode`` turns the output into k̂_off ∈ 1..k; ``loss``
    compares it with ``targets``.
    """

    def __init__(self, k: int, dim: int, variant: str = "reg", proj: int = 64, hidden: int = 64,
                 mlp_hidden: int = 128, dropout: float = 0.0, probe_similarity: bool = True,
                 huber_delta: float = 1.0):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        if k < 1 or dim < 1:
            raise ValueError(f"k and dim must be ≥ 1, not k={k}, dim={dim}")
        self.k, self.dim, self.variant = int(k), int(dim), variant
        self.probe_similarity = bool(probe_similarity)
        self.huber_delta = float(huber_delta)
        width = proj or dim
        self.project = nn.Linear(dim, proj) if proj else None
        self.lstm = nn.LSTM(width + int(self.probe_similarity), hidden, batch_first=True,
                            bidirectional=True)
        self.lstm_out = nn.Linear(2 * hidden, width)
        # The two fully connected layers with a shortcut around them.
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp_hidden), nn.PReLU(mlp_hidden), nn.Dropout(dropout),
            nn.Linear(mlp_hidden, width), nn.PReLU(width), nn.Dropout(dropout),
        )
        n_out = {"reg": 1, "cls": self.k, "qseq": self.k, "qparam": 3}[variant]
        self.head = nn.Linear(width, n_out)
        # Fitted values of the quadratic at t = j/k, j = 1..k: (k, 3) design matrix.
        self.register_buffer("quad_design", _quadratic_design(self.k), persistent=False)

    @classmethod
    def from_config(cls, config: dict) -> "AdaptiveFilter":
        """The (untrained) filter a ``filter_config`` with ``k`` and ``dim`` set describes."""
        model = cls(**{key: config[key] for key in _MODEL_KEYS}, huber_delta=config["huber_delta"])
        model.config = dict(config)
        return model

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """``seq`` (B, k, D), the probe first → the head's raw output (B, n_out)."""
        z = self.project(seq) if self.project is not None else seq
        # Cosine with the probe; zero at padding steps (zero features).
        sim = torch.bmm(seq, seq[:, 0, :, None]) if self.probe_similarity else None
        return self.forward_projected(z, sim)

    def forward_projected(self, z: torch.Tensor, sim: torch.Tensor | None) -> torch.Tensor:
        """The same from the steps already projected, ``z`` (B, k, W), and the cosine of
        each step with the probe, ``sim`` (B, k, 1) (None without ``probe_similarity``).

        Inference uses this: the projection is linear, so projecting every vertex once
        and gathering the W-wide rows gives the same ``z`` as gathering D-wide rows and
        projecting each sequence, at W/D of the memory traffic; the cosines are the
        candidates' similarities the kNN stage already computed.
        """
        lstm_in = torch.cat([z, sim], dim=-1) if self.probe_similarity else z
        h, _ = self.lstm(lstm_in)
        u = (self.lstm_out(h) + z) / math.sqrt(2.0)
        u = F.normalize(F.normalize(u, dim=-1).mean(dim=1), dim=-1)
        g = (u + self.mlp(u)) / math.sqrt(2.0)
        return self.head(g)

    def decode(self, out: torch.Tensor) -> torch.Tensor:
        """Head output (B, n_out) → k̂_off (B,) int64 in 1..k."""
        if self.variant == "reg":
            return torch.round(out[:, 0] * self.k).clamp(1, self.k).long()
        if self.variant == "qparam":
            out = out @ self.quad_design.T  # the fitted Q curve at j = 1..k
        # torch.argmax returns the first maximum, as Eq. 4's k_off does.
        return out.argmax(dim=1) + 1

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch; ``target`` as made by ``targets``."""
        if self.variant == "reg":
            # Eq. 5 on the relative error, as the reference code: ξ = k̂/k_off − 1.
            xi = (out[:, 0] / target - 1.0).abs()
            delta = self.huber_delta
            return torch.where(xi < delta, 0.5 * xi * xi, delta * (xi - 0.5 * delta)).mean()
        if self.variant == "cls":
            return F.cross_entropy(out, target)
        return F.mse_loss(out, target)


def _quadratic_design(k: int) -> torch.Tensor:
    t = torch.arange(1, k + 1, dtype=torch.float64) / k
    return torch.stack([t * t, t, torch.ones_like(t)], dim=1).float()


def quadratic_fit(quality: np.ndarray) -> np.ndarray:
    """Least-squares (a, b, c) of Q(j) ≈ a·t² + b·t + c, t = j/k, per row of ``quality`` (N, k)."""
    k = quality.shape[1]
    design = _quadratic_design(k).double().numpy()
    if k < 3:  # underdetermined: pinv gives the minimum-norm fit
        log.warning("qparam with k=%d < 3: the quadratic is not determined by Q", k)
    return (np.asarray(quality, dtype=np.float64) @ np.linalg.pinv(design).T).astype(np.float32)


def targets(variant: str, k_off: np.ndarray, quality: np.ndarray | None, k: int) -> np.ndarray:
    """Each vertex's training target for ``variant``.

    ``reg``: k_off/k; ``cls``: the class k_off − 1; ``qseq``: Q(1..k); ``qparam``: (a, b, c).
    """
    if variant == "reg":
        return (np.asarray(k_off, dtype=np.float32) / k).astype(np.float32)
    if variant == "cls":
        return np.asarray(k_off, dtype=np.int64) - 1
    if quality is None:
        raise ValueError(f"variant {variant!r} needs the Q(j) curves (quality)")
    quality = np.asarray(quality, dtype=np.float32)
    if quality.ndim != 2 or quality.shape[1] < k:
        raise ValueError(f"quality must be (N, ≥{k}), not {quality.shape}")
    if variant == "qseq":
        return np.ascontiguousarray(quality[:, :k])
    return quadratic_fit(quality[:, :k])


def _check_inputs(features: np.ndarray, cand_ids: np.ndarray,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    features = np.ascontiguousarray(features, dtype=np.float32)
    if features.ndim != 2 or cand_ids.ndim != 2 or cand_ids.shape[0] != features.shape[0]:
        raise ValueError("features (N, D) and cand_ids (N, k) disagree: "
                         f"{features.shape}, {cand_ids.shape}")
    if cand_ids.shape[1] < k:
        raise ValueError(f"the filter reads k={k} candidates; cand_ids has {cand_ids.shape[1]}")
    cand = cand_ids[:, :k]
    if cand.size and (cand.min() < -1 or cand.max() >= features.shape[0]):
        raise ValueError("cand_ids must lie in [-1, N): -1 pads, anything else indexes features")
    return features, cand


def _features_tensor(features: np.ndarray, device: torch.device) -> torch.Tensor:
    """``features`` as a tensor on ``device``, sharing memory on the CPU (read only here)."""
    with warnings.catch_warnings():
        # A read-only array (np.load with mmap_mode) is fine: nothing writes into it.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(features).to(device)


def _gather(features: torch.Tensor, cand: np.ndarray, rows: np.ndarray,
            device: torch.device) -> torch.Tensor:
    """The (B, k, D) sequences of ``rows``; id −1 (padding) gives a zero vector."""
    ids = torch.from_numpy(cand[rows].astype(np.int64)).to(device)
    pad = ids < 0
    seq = features[ids.clamp_min(0)]
    return seq.masked_fill_(pad.unsqueeze(-1), 0.0)


def _lr_at(progress: float, step: int, cfg: dict) -> float:
    """Linear warm-up over ``warmup_steps`` then cosine decay to 0 at ``progress`` = 1."""
    if step < cfg["warmup_steps"]:
        return cfg["lr"] * (step + 1) / cfg["warmup_steps"]
    start = cfg["warmup_steps"] / cfg["steps"]
    frac = min(1.0, max(0.0, (progress - start) / max(1e-12, 1.0 - start)))
    return cfg["lr"] * 0.5 * (1.0 + math.cos(math.pi * frac))


def train_filter(features: np.ndarray, cand_ids: np.ndarray, k_off: np.ndarray,
                 quality: np.ndarray | None, config: dict, seed: int = 0,
                 device: str = "auto", cand_sims: np.ndarray | None = None
                 ) -> tuple[dict, dict]:
    """Train an adaptive filter on labelled data; return ``(checkpoint, train_info)``.

    ``features`` (N, D) float32 unit rows; ``cand_ids`` (N, ≥k) int candidate ids in
    structure-space order with i itself first, −1 for padding; ``k_off`` (N,) in 1..k
    (Eq. 4); ``quality`` the Q(j) curves (N, ≥k), needed by ``qseq`` and ``qparam``;
    ``cand_sims`` (N, ≥k), the candidates' cosines, give the checkpoint the training
    lists' statistics that ``guard_k_hat`` checks new predictions against.
    ``config`` goes through ``filter_config``; its ``k`` = 0 and ``dim`` = 0 are taken
    from the data.  The same seed on the same device gives the same model unless the
    ``max_seconds`` budget stops the run.  The caller sets torch's thread count.
    """
    cfg = filter_config(**config)
    n = features.shape[0]
    cfg["k"] = cfg["k"] or int(cand_ids.shape[1])
    cfg["dim"] = cfg["dim"] or int(features.shape[1])
    if cfg["dim"] != features.shape[1]:
        raise ValueError(f"config dim={cfg['dim']} but features are {features.shape[1]}-D")
    k = cfg["k"]
    features, cand = _check_inputs(features, cand_ids, k)
    k_off = np.asarray(k_off)
    if k_off.shape != (n,) or k_off.min() < 1 or k_off.max() > k:
        raise ValueError(f"k_off must be (N,) = ({n},) with values in 1..{k}")
    target_all = targets(cfg["variant"], k_off, quality, k)
    dev = pick_device(device)

    # Hold out a validation sample to report what the filter learned.
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = int(round(cfg["val_fraction"] * n)) if n >= 20 else 0
    val_rows, train_rows = np.sort(order[:n_val]), order[n_val:]
    if train_rows.size == 0:
        raise ValueError("no vertices left to train on")
    batch = min(cfg["batch_size"], train_rows.size)

    features_t = _features_tensor(features, dev)
    target_t = torch.from_numpy(target_all).to(dev)
    cuda_devices = [dev] if dev.type == "cuda" else []
    losses: list[float] = []
    t0 = time.perf_counter()
    stopped_by = "steps"
    # A forked RNG keeps the caller's global torch random state untouched.
    with torch.random.fork_rng(devices=cuda_devices):
        seed_torch(seed)
        model = AdaptiveFilter.from_config(cfg).to(dev)
        if cfg["variant"] == "reg":
            # Start from the mean target: the constant predictor is the floor to beat.
            with torch.no_grad():
                model.head.bias.fill_(float(np.mean(target_all[train_rows])))
        if cfg["optimizer"] == "sgd":
            optimizer = torch.optim.SGD(model.parameters(), lr=cfg["lr"],
                                        momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
        else:
            optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"],
                                         weight_decay=cfg["weight_decay"])
        log.info("adaptive filter (%s): training on %d vertices (%d held out), k=%d, D=%d, "
                 "proj=%d, hidden=%d, %d parameters, batch %d, %d steps, device %s",
                 cfg["variant"], train_rows.size, n_val, k, cfg["dim"], cfg["proj"],
                 cfg["hidden"], sum(p.numel() for p in model.parameters()), batch,
                 cfg["steps"], dev)
        model.train()
        perm, pos = rng.permutation(train_rows), 0
        window_loss, window_err, window_n = 0.0, 0.0, 0
        for step in range(cfg["steps"]):
            elapsed = time.perf_counter() - t0
            if cfg["max_seconds"] and elapsed >= cfg["max_seconds"]:
                stopped_by = "time"
                break
            # With a time budget the cosine runs over whichever limit comes first.
            progress = step / cfg["steps"]
            if cfg["max_seconds"]:
                progress = max(progress, elapsed / cfg["max_seconds"])
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(progress, step, cfg)
            if pos + batch > perm.size:
                perm, pos = rng.permutation(train_rows), 0
            rows = perm[pos:pos + batch]
            pos += batch

            seq = _gather(features_t, cand, rows, dev)
            idx = torch.from_numpy(rows).to(dev)
            out = model(seq)
            loss = model.loss(out, target_t[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"adaptive filter: loss {value} at step {step}")
            losses.append(value)
            with torch.no_grad():
                err = np.abs(model.decode(out.detach()).cpu().numpy() - k_off[rows]).mean()
            window_loss += value
            window_err += float(err)
            window_n += 1
            if (step + 1) % cfg["log_every"] == 0 or step + 1 == cfg["steps"]:
                log.info("adaptive filter: step %d/%d, lr %.5f, loss %.4f, |k̂−k_off| %.2f, "
                         "%.1f s",
                         step + 1, cfg["steps"], optimizer.param_groups[0]["lr"],
                         window_loss / window_n, window_err / window_n, time.perf_counter() - t0)
                window_loss, window_err, window_n = 0.0, 0.0, 0
    seconds = time.perf_counter() - t0
    if stopped_by == "time":
        log.info("adaptive filter: time budget of %.0f s reached after %d steps",
                 cfg["max_seconds"], len(losses))

    info: dict = {"losses": losses, "steps": len(losses), "seconds": seconds,
                  "stopped_by": stopped_by, "seed": int(seed), "device": str(dev),
                  "n_train": int(train_rows.size), "n_val": int(n_val)}
    if n_val:
        pred = _predict(model, features_t, cand, val_rows, 4096, dev)
        constant = int(np.clip(np.round(k_off[train_rows].mean()), 1, k))
        info["val_mae"] = float(np.abs(pred - k_off[val_rows]).mean())
        info["val_mae_constant"] = float(np.abs(constant - k_off[val_rows]).mean())
        log.info("adaptive filter: held-out |k̂−k_off| %.2f (constant %d: %.2f) "
                 "after %d steps in %.1f s",
                 info["val_mae"], constant, info["val_mae_constant"], len(losses), seconds)
    state = {name: value.detach().cpu() for name, value in model.state_dict().items()}
    checkpoint = {"state_dict": state, "config": cfg, "train_info": info,
                  "train_stats": train_statistics(k_off, cand_sims[:, :k])
                  if cand_sims is not None else None}
    return checkpoint, info


def train_statistics(k_off: np.ndarray, cand_sims: np.ndarray) -> dict:
    """What the training lists looked like: the mean k_off, and the median cosine of the last
    candidate a list kept (over the vertices that kept one besides themselves)."""
    k_off = np.asarray(k_off)
    kept = k_off > 1
    ends = cand_sims[np.flatnonzero(kept), k_off[kept] - 1] if kept.any() else np.zeros(0)
    from ...core.health import similarity_profile

    return {"mean_k_off": float(k_off.mean()), "k": int(cand_sims.shape[1]),
            "boundary_cosine": float(np.median(ends)) if ends.size else None,
            "profile": similarity_profile(np.sort(cand_sims, axis=1)[:, ::-1])}


def guard_k_hat(k_hat: np.ndarray, cand_sims: np.ndarray, stats: dict | None,
                ratio: float = 0.5) -> tuple[np.ndarray, list[dict]]:
    """``k_hat``, or, when the filter collapsed on data unlike its training data, the
    structure-space kNN lists cut at the training lists' typical end: (k̂ (N,), findings).

    Collapsed: the lists keep fewer than ``ratio`` times the candidates a face has at or
    above ``stats['boundary_cosine']`` (the median cosine at which the training lists
    ended), while faces have two such candidates on average (themselves and one more).
    The fall-back keeps each face's candidates down to that cosine, in structure order.
    The lists' similarity profile is also held against the training lists'
    (``core.health.profile_shift``).
    """
    from ...core.health import finding, profile_shift, similarity_profile

    if not stats:
        return k_hat, []
    shift = profile_shift(stats.get("profile"), similarity_profile(
        np.sort(cand_sims, axis=1)[:, ::-1]))
    if stats.get("boundary_cosine") is None:
        return k_hat, shift
    k = min(int(stats.get("k") or cand_sims.shape[1]), cand_sims.shape[1])
    expected = np.clip((cand_sims[:, :k] >= stats["boundary_cosine"]).sum(axis=1), 1, k)
    if expected.mean() < 2 or k_hat.mean() >= ratio * expected.mean():
        return k_hat, shift
    return expected.astype(np.int32), shift + [finding(
        "filter_collapsed",
        f"the adaptive filter kept {k_hat.mean():.1f} candidates a face on average, where the "
        f"lists hold {expected.mean():.1f} at or above cosine {stats['boundary_cosine']:.2f}, "
        f"at which its training lists ended: the data is unlike its training data; the graph "
        f"falls back to the structure-space kNN lists cut at that cosine",
        mean_k_hat=float(k_hat.mean()), mean_expected=float(expected.mean()))]


def _projected_features(model: AdaptiveFilter, features_t: torch.Tensor,
                        block: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """Every vertex's projected step input (N, W), and the value of a padding step (W,):
    the projection of a zero vector, its bias."""
    if model.project is None:
        return features_t, torch.zeros(features_t.shape[1], device=features_t.device)
    with torch.inference_mode():
        z = torch.cat([model.project(features_t[a:a + block])
                       for a in range(0, features_t.shape[0], block)])
        return z, model.project.bias.detach().clone()


def _predict_projected(model: AdaptiveFilter, features_t: torch.Tensor, cand: np.ndarray,
                       cand_sims: np.ndarray, batch_size: int, dev: torch.device) -> np.ndarray:
    """k̂_off of every vertex through ``forward_projected`` (see there), in batches."""
    model.eval()
    z_all, z_pad = _projected_features(model, features_t)
    n = cand.shape[0]
    out = np.empty(n, dtype=np.int32)
    progress = Progress(n, "adaptive filter: k̂_off")
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            ids = torch.from_numpy(cand[start:stop].astype(np.int64)).to(dev)
            pad = ids < 0
            z = z_all[ids.clamp_min(0)]
            z[pad] = z_pad
            sim = None
            if model.probe_similarity:
                sim = np.ascontiguousarray(cand_sims[start:stop], dtype=np.float32)
                # Out of place: the tensor may share memory with the caller's array.
                sim = torch.from_numpy(sim).to(dev).masked_fill(pad, 0.0).unsqueeze(-1)
            out[start:stop] = model.decode(model.forward_projected(z, sim)).cpu().numpy()
            progress.update(stop - start)
    return out


def _predict(model: AdaptiveFilter, features_t: torch.Tensor, cand: np.ndarray,
             rows: np.ndarray, batch_size: int, dev: torch.device, what: str = "") -> np.ndarray:
    was_training = model.training
    model.eval()
    out = np.empty(rows.size, dtype=np.int32)
    progress = Progress(rows.size, what) if what else None
    try:
        with torch.inference_mode():
            for start in range(0, rows.size, batch_size):
                block = rows[start:start + batch_size]
                seq = _gather(features_t, cand, block, dev)
                out[start:start + block.size] = model.decode(model(seq)).cpu().numpy()
                if progress:
                    progress.update(block.size)
    finally:
        model.train(was_training)
    return out


def predict_k_off(model: AdaptiveFilter, features: np.ndarray, cand_ids: np.ndarray,
                  cand_sims: np.ndarray | None = None, batch_size: int = 1024,
                  device: str = "auto") -> np.ndarray:
    """k̂_off (N,) int32 in 1..k for every vertex, in blocks of ``batch_size`` sequences.

    Reads the first ``model.k`` columns of ``cand_ids``; moves ``model`` to ``device``.
    With ``cand_sims``, each candidate's cosine with its vertex (the candidates
    artifact's ``sims``), the features are projected once and the sequences gathered
    from the projection (``AdaptiveFilter.forward_projected``): the same k̂_off up to
    float rounding, without the (batch, k, D) gather.  The LSTM is most of the cost;
    batches of 1,024 ran it fastest on two cores (69 s for 584k sequences, against 84 s
    for 4,096 and 89 s for 16,384).
    """
    if features.shape[1] != model.dim:
        raise ValueError(f"the filter was trained on {model.dim}-D features, "
                         f"not {features.shape[1]}-D")
    features, cand = _check_inputs(features, cand_ids, model.k)
    dev = pick_device(device)
    model.to(dev)
    features_t = _features_tensor(features, dev)
    if cand_sims is not None:
        if cand_sims.shape[0] != cand.shape[0] or cand_sims.shape[1] < model.k:
            raise ValueError(f"cand_sims {cand_sims.shape} does not match cand_ids "
                             f"{cand_ids.shape} (k={model.k})")
        return _predict_projected(model, features_t, cand, cand_sims[:, :model.k],
                                  int(batch_size), dev)
    rows = np.arange(features.shape[0])
    return _predict(model, features_t, cand, rows, int(batch_size), dev, "adaptive filter: k̂_off")


def save_checkpoint(path, checkpoint: dict) -> None:
    """``torch.save`` ``checkpoint`` to ``path`` atomically (see ``io.save_torch``)."""
    io.save_torch(path, checkpoint)


def load_checkpoint(path, device: str = "cpu") -> AdaptiveFilter:
    """The filter saved at ``path`` (weights only: no code is unpickled), in eval mode.

    Its ``config`` and ``train_info`` are kept as attributes of the module.
    """
    dev = pick_device(device)
    checkpoint = torch.load(path, map_location=dev, weights_only=True)
    cfg = filter_config(**checkpoint["config"])
    model = AdaptiveFilter.from_config(cfg)
    model.load_state_dict(checkpoint["state_dict"])
    model.train_info = checkpoint.get("train_info", {})
    model.train_stats = checkpoint.get("train_stats")
    return model.to(dev).eval()
