"""Compiled kernels (numba) for the loops over kNN lists that no array expression does
without materialising far more than it reads.  Imported lazily: the first call compiles
(a few seconds, then cached beside the module)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, cache=True, nogil=True)
def _shared_sums(ids, left, right, start, stop, product, chunks, out):
    n, k = ids.shape
    rows = stop - start
    per = (rows + chunks - 1) // chunks
    for t in numba.prange(chunks):
        mark = np.full(n, -1, dtype=np.int64)   # column of l in row i's list, or −1
        lo = start + t * per
        hi = min(stop, lo + per)
        for i in range(lo, hi):
            for c in range(k):
                l = ids[i, c]
                if l >= 0:
                    mark[l] = c
            for c in range(k):
                j = ids[i, c]
                if j < 0:
                    continue
                acc = 0.0
                for m in range(k):
                    l = ids[j, m]
                    if l >= 0:
                        pos = mark[l]
                        if pos >= 0:
                            if product:
                                acc += left[i, pos] * right[j, m]
                            else:
                                acc += left[i, pos] + right[j, m]
                out[i, c] = acc
            for c in range(k):
                l = ids[i, c]
                if l >= 0:
                    mark[l] = -1


def shared_sums(ids, left, right, start, stop, product, threads, out):
    """Rows ``start:stop`` of ``core.sparse.shared_neighbour_sums`` into ``out``."""
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    chunks = max(1, min(stop - start, 4 * threads))
    _shared_sums(ids, left, right, start, stop, product, chunks, out)
