"""Where torch stages run: CUDA when it is there, the CPU otherwise."""

from __future__ import annotations

import torch


def pick_device(device: str = "auto") -> torch.device:
    """``'auto'`` is CUDA when torch sees a GPU, else the CPU; ``'cpu'``, ``'cuda'`` and
    ``'cuda:N'`` are taken as asked, and a GPU asked for but absent is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not {device!r}")
    if device != "cpu" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch sees no GPU")
    return torch.device(device)
