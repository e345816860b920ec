"""Shared fixtures: small clustered data, the shared real data, a reference tiny run."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

from helpers import SHARED_DATA, snakemake, unit_rows


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
    run on SLURM, or one killed and resumed, must reproduce; what it printed is kept beside
    it in ``snakemake-all.stdout``.  With pytest-xdist the workers share it: the first to
    ask runs it, the others wait for it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # a parallel suite: one run for all workers
        root = root.parent
    workdir = root / "tiny-reference"
    printed = workdir / "snakemake-all.stdout"  # what the run printed, written last
    with FileLock(f"{workdir}.lock"):
        if not printed.exists():
            shutil.rmtree(workdir, ignore_errors=True)
            proc = snakemake(workdir, "all")
            printed.write_text(proc.stdout)
    return workdir
