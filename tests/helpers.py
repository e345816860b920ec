"""Helpers the tests share: where the repository and the shared real data are, small
clustered data, and running the workflow through the real snakemake command."""

import logging
import os
import re
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def snakemake(workdir: Path, *args: str, configs: tuple[Path, ...] = (),
              check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake on the tiny config (plus ``configs`` merged over it) in ``workdir``;
    ``env`` adds environment variables."""
    cmd = ["snakemake", *args, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
           "--configfile", str(REPO / "config" / "tiny.yaml"), *map(str, configs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def scheduled_rules(output: str) -> dict[str, int]:
    """The 'Job stats' table of a (dry) run: rule name -> job count."""
    stats = output.split("Job stats:", 1)[1]
    rows = re.findall(r"^(\w+)\s+(\d+)\s*$", stats, flags=re.M)
    return {rule: int(n) for rule, n in rows if rule != "total"}


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def assert_same_results(expected: Path, got: Path) -> None:
    """Two tiny runs agree: the same clusters for every method, the same summary table."""
    from facecluster.core import io

    ref = sorted(p.relative_to(expected) for p in (expected / "results").rglob("clusters.h5"))
    assert ref, f"no clusters under {expected}"
    assert sorted(p.relative_to(got) for p in (got / "results").rglob("clusters.h5")) == ref
    for path in ref:
        np.testing.assert_array_equal(io.read_array(got / path, "labels"),
                                      io.read_array(expected / path, "labels"), err_msg=str(path))
    assert (got / "results" / "summary.tsv").read_text() == \
        (expected / "results" / "summary.tsv").read_text()


@contextmanager
def warnings_logged():
    """The WARNING records of the ``facecluster`` logger while inside (its own handler:
    ``setup_logging``, which a command line run calls, turns propagation to pytest off)."""
    from facecluster.core.progress import log

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    log.addHandler(handler)
    try:
        yield records
    finally:
        log.removeHandler(handler)
