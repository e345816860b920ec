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


@pytest.fixture(scope="session")
def tiny_reference(tmp_path_factory) -> Path:
    """An uninterrupted local run of the tiny workflow, never touched afterwards: what a
    run on SLURM, or one killed and resumed, must reproduce."""
    from test_pipeline import snakemake

    workdir = tmp_path_factory.mktemp("tiny-reference")
    snakemake(workdir, "all")
    return workdir


def assert_same_results(expected: Path, got: Path) -> None:
    """Two tiny runs agree: the same clusters for every method, the same summary table."""
    from facecluster import io

    ref = sorted(p.relative_to(expected) for p in (expected / "results").rglob("clusters.h5"))
    assert ref, f"no clusters under {expected}"
    assert sorted(p.relative_to(got) for p in (got / "results").rglob("clusters.h5")) == ref
    for path in ref:
        np.testing.assert_array_equal(io.read_array(got / path, "labels"),
                                      io.read_array(expected / path, "labels"), err_msg=str(path))
    assert (got / "results" / "summary.tsv").read_text() == \
        (expected / "results" / "summary.tsv").read_text()
