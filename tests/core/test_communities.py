"""Infomap's modules on a link list (core.communities)."""

import subprocess
import sys

import numpy as np

from facecluster.core.communities import infomap_modules


def test_two_triangles_and_an_unlinked_item():
    src = np.array([0, 1, 2, 3, 4, 5])
    dst = np.array([1, 2, 0, 4, 5, 3])
    labels = infomap_modules(7, src, dst, np.ones(6))
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2]


def test_infomap_runs_in_a_process_that_imported_faiss_after_it():
    """SWIG gave infomap's result walk faiss's iterator type when faiss was imported after
    infomap, and the process died (benchmarks/evaluate.py scans every method in one)."""
    code = ("import infomap, faiss, numpy as np\n"
            "from facecluster.core.communities import infomap_modules\n"
            "print(infomap_modules(4, np.array([0, 2]), np.array([1, 3]), np.ones(2)).tolist())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[0, 0, 1, 1]"
