"""Shared fixtures: small clustered data, and where the shared real data lives."""

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def clustered():
    """300 unit vectors in 16-D around 12 centres, with their labels."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(12, 16))
    labels = rng.integers(0, 12, size=300)
    x = centres[labels] + 0.35 * rng.normal(size=(300, 16))
    return unit_rows(x), labels


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (it exists only beside the project's own clone)")
    return SHARED_DATA
