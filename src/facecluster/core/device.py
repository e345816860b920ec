"""Where torch stages run: CUDA when it is there, the CPU otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


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


# torch's own thread count, read before this module first changes it: what a model that
# imported torch leaves (torch_state_kept).
_THREADS_OF_TORCH: list[int] = []


def torch_threads(threads: int) -> None:
    """Let torch's CPU kernels use ``threads`` threads (at least one): a stage's share."""
    import torch

    if not _THREADS_OF_TORCH:
        _THREADS_OF_TORCH.append(torch.get_num_threads())
    torch.set_num_threads(max(1, int(threads)))


def seed_torch(seed: int) -> None:
    """Seed torch's generators and switch its kernels to their deterministic versions, so
    that a training run from scratch gives the same weights twice at the same thread count.

    With more than one CPU thread the backward of a gather of rows that a batch repeats
    (``table[index]``, index_put with accumulation) adds in an order that varies from run
    to run: three 60-step trainings of an attention model on the default set's train part
    gave three different sets of weights (checked 2026-12-01; the same every time with one
    thread or with the deterministic kernels, at no measured cost; README,
    Reproducibility).  The setting is process-wide and stays on after training
    (``torch.use_deterministic_algorithms``; a model's ``fit`` and ``predict`` restore
    it: ``torch_state_kept``); ``warn_only``: an operation with no
    deterministic kernel (some on CUDA) warns instead of failing.
    cuBLAS's deterministic workspace is asked for unless the environment already sets one
    (it must be set before CUDA's first matrix product to take effect)."""
    import os

    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


@contextmanager
def torch_state_kept() -> Iterator[None]:
    """Leave torch's process-wide state as it was found: its CPU and CUDA random
    generators, the deterministic-kernels switch (``seed_torch`` sets both) and the CPU
    thread count (``torch_threads``).  ``ClusterModel.fit`` and ``predict`` train and infer
    inside it, so that a caller's own torch work is not reseeded, made deterministic or
    given another thread count by a model.  A CUDA generator not yet made on entry is
    seeded on exit as the caller's CPU generator was (``initial_seed``), as torch's lazy
    seeding would have.

    torch not imported on entry is not imported (a method without torch costs no second
    and no few hundred MB for it); if the model imports it, it is left
    as a plain import leaves it: generators on a fresh random seed (``torch.seed``, as
    torch seeds itself on import), the deterministic kernels off, torch's own thread
    count."""
    import sys

    if "torch" not in sys.modules:
        try:
            yield
        finally:
            if "torch" in sys.modules:
                _as_imported(sys.modules["torch"])
        return
    import torch

    cpu = torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.random.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        elif torch.cuda.is_available():  # the model's seed may be queued for it
            torch.cuda.manual_seed_all(torch.initial_seed())
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_num_threads(threads)


def _as_imported(torch) -> None:
    """torch's process-wide state as a plain ``import torch`` leaves it."""
    torch.seed()  # CPU and CUDA, from a non-deterministic seed
    torch.use_deterministic_algorithms(False)
    if _THREADS_OF_TORCH:
        torch.set_num_threads(_THREADS_OF_TORCH[0])
