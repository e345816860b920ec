"""Where the torch stages run: CUDA when torch sees a GPU, the CPU otherwise."""

import pytest
import torch

from facecluster.core.device import pick_device


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
