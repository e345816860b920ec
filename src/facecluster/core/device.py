"""Where torch stages run: CUDA when it is there, the CPU otherwise."""

from __future__ import annotations


def pick_device(device: str = "auto") -> "torch.device":  # noqa: F821
    """``'auto'`` is CUDA when torch sees a GPU, else the CPU; ``'cpu'``, ``'cuda'`` and
    ``'cuda:N'`` are taken as asked, and a GPU asked for but absent is an error.  torch is
    imported here, not with the module: the methods import this at registry load."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not {device!r}")
    if device != "cpu" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch sees no GPU")
    return torch.device(device)


def torch_threads(threads: int) -> None:
    """Let torch's CPU kernels use ``threads`` threads (at least one): a stage's share."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
