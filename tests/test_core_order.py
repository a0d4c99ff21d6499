"""The kernels' stable ordering (``_order``) against numpy's stable sort.

It replaces ``np.sort``/``np.argsort`` inside kernels (see ``_order``'s
docstring); it must give numpy's stable order exactly, ties and signed zeros
included, so that results stay bit for bit what they were.
"""

import numpy as np
import pytest

from tridiag_numba._order import argsort_stable


def _cases(dtype):
    rng = np.random.default_rng(7)
    yield np.array([], dtype)
    yield np.array([3.0], dtype)
    yield np.array([-0.0, 0.0, -0.0, 0.0, 1.0, -1.0], dtype)
    yield np.zeros(40, dtype)
    yield np.arange(37, dtype=dtype)
    yield np.arange(37, dtype=dtype)[::-1].copy()
    for m in (2, 3, 15, 16, 17, 64, 257):
        yield rng.standard_normal(m).astype(dtype)
        yield rng.integers(-3, 4, m).astype(dtype)  # many ties
        yield np.where(rng.random(m) < 0.5, -0.0, 0.0).astype(dtype)
        # Sorted runs, as LAPACK stebz's block order leaves them.
        yield np.concatenate([np.sort(rng.standard_normal(m // 3 + 1)) for _ in range(3)]).astype(dtype)
    yield np.array([np.inf, -np.inf, 1.0, np.finfo(dtype).tiny, -np.finfo(dtype).max], dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_argsort_stable_is_numpy_stable_argsort(dtype):
    for x in _cases(dtype):
        m = x.shape[0]
        idx = np.full(m + 2, -1, np.int64)  # the kernel writes only idx[:m]
        before = x.copy()
        argsort_stable(x, m, idx)
        np.testing.assert_array_equal(idx[:m], np.argsort(x, kind="stable"))
        assert (idx[m:] == -1).all()
        np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_argsort_stable_of_a_prefix(dtype):
    x = np.array([5.0, 1.0, 4.0, 1.0, -2.0, 9.0], dtype)
    idx = np.zeros(6, np.int64)
    argsort_stable(x, 4, idx)
    np.testing.assert_array_equal(idx[:4], [1, 3, 2, 0])
