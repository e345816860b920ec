"""Where the torch stages run: CUDA when torch sees a GPU, the CPU otherwise."""

import os

import pytest
import torch

from facecluster.core.device import pick_device, seed_torch


def test_auto_picks_cuda_when_torch_sees_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("cuda")
    assert pick_device("cuda:1") == torch.device("cuda:1")
    assert pick_device("cpu") == torch.device("cpu"), "the CPU when asked, GPU or not"


def test_auto_falls_back_to_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="requested but torch sees no GPU"):
        pick_device("cuda")


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="'auto', 'cpu' or 'cuda'"):
        pick_device("gpu")


def test_seed_torch_seeds_and_turns_the_deterministic_kernels_on(monkeypatch):
    """The same draws after the same seed, the deterministic kernels on (warning, not
    failing, where an operation has none), cuBLAS's workspace asked for unless set."""
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        seed_torch(3)
        first = torch.rand(4)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        seed_torch(3)
        assert torch.equal(torch.rand(4), first)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
        seed_torch(3)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8", "a user's setting is kept"
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def test_torch_state_kept_restores_what_a_training_changes():
    """Inside: seed_torch and torch_threads as a training calls them; after: the caller's
    generator, deterministic switch and thread count as they were."""
    from facecluster.core.device import torch_state_kept, torch_threads

    threads = torch.get_num_threads()
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(False)
    torch.set_num_threads(1)
    try:
        torch.manual_seed(123)
        expected = torch.rand(5)
        torch.manual_seed(123)
        with torch_state_kept():
            seed_torch(7)
            torch_threads(2)
            torch.rand(3)
            assert torch.are_deterministic_algorithms_enabled()
            assert torch.get_num_threads() == 2
        assert torch.equal(torch.rand(5), expected)
        assert torch.initial_seed() == 123
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.get_num_threads() == 1
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.set_num_threads(threads)


def test_a_model_without_torch_does_not_import_it_and_one_that_imports_it_leaves_it_plain():
    """In a fresh interpreter: clustering with a method that never uses torch imported it
    (1.5 s of a 3 s first call here, a few hundred MB) only to save and restore its state;
    now it is not imported.  A model that imports torch itself leaves it as a plain import
    would: not on the model's seed, deterministic kernels off, torch's own thread count
    (OMP_NUM_THREADS=1 here)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import sys
        import numpy as np
        import facecluster
        from facecluster.core.device import seed_torch, torch_state_kept, torch_threads
        x = np.random.default_rng(0).normal(size=(200, 16)).astype(np.float32)
        facecluster.cluster(x, method="knn_threshold")
        print("imported", "torch" in sys.modules)
        with torch_state_kept():
            import torch
            seed_torch(7)
            torch_threads(2)
        print("seed", torch.initial_seed(), "deterministic",
              torch.are_deterministic_algorithms_enabled(), "threads", torch.get_num_threads())
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    assert out[:2] == ["imported", "False"], out
    assert out[2] == "seed" and int(out[3]) != 7, out
    assert out[4:] == ["deterministic", "False", "threads", "1"], out


def test_a_model_leaves_the_callers_torch_state_as_it_found_it():
    """``fit`` trains with seed_torch, a process-wide setting: a caller's draws after
    fitting were the model's seed's and its kernels deterministic.  A model now leaves
    both as they were, and still trains the same weights twice."""
    import numpy as np

    import facecluster
    from facecluster.core import ingest

    features, labels, _, _ = ingest.load_part(
        {"generator": {"preset": "tiny", "seed": 0, "dim": 32}}, "train")
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(False)
    torch.set_num_threads(1)  # two threads beside another test's: minutes, not seconds
    try:
        torch.manual_seed(123)
        expected = torch.rand(5)
        torch.manual_seed(123)
        settings = {"cut": 0.7, "model": {"epochs": 1}, "refit": False}
        model = facecluster.model("ndde_tpdi", **settings).fit(features, labels)
        first = model.predict(features)
        assert torch.equal(torch.rand(5), expected), "the caller's generator was reseeded"
        assert not torch.are_deterministic_algorithms_enabled()
        again = facecluster.model("ndde_tpdi", **settings).fit(features, labels)
        np.testing.assert_array_equal(again.predict(features), first)
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.set_num_threads(threads)
