"""The numpy layer's entry for validated input (``_api.kth_prevalidated``, what
torch_bridge's ops call) against the public API it skips the checks of.

Same kernels, same routing: results must be bitwise those of ``kth_eigenvalue`` /
``kth_eigenpair(check_finite=False)``, with the non-finite matrices reported, and
the outputs new arrays (the torch ops hand them out without a copy).
"""

import numpy as np
import pytest

import tridiag_numba as tn
from tridiag_numba import _drivers
from tridiag_numba._api import kth_prevalidated
from tridiag_numba.matrices import clement, glued_wilkinson, random_batch, split_matrix, wilkinson


def _families(dtype):
    """(name, d (B, n), e (B, n-1)) of the LAPACK tester kinds, random batches and scalings."""
    out = [(f"random {nb}x{n}", *random_batch((nb,), n, dtype=dtype, seed=n)) for nb, n in ((1, 1), (3, 1), (1, 2), (7, 5), (50, 100))]
    for name, (d, e) in (
        ("wilkinson 21", wilkinson(21)),
        ("glued wilkinson", glued_wilkinson(4)),
        ("clement 30", clement(30)),
        ("split", split_matrix(3, 7)),
    ):
        out.append((name, d[None].astype(dtype), e[None].astype(dtype)))
    d, e = random_batch((4,), 40, dtype=np.float64, seed=1)
    for scale in (1e150, 1e-150) if dtype == np.float64 else (1e18, 1e-18):
        out.append((f"scaled {scale:g}", (d * scale).astype(dtype), (e * scale).astype(dtype)))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("want_vectors", [False, True])
def test_bitwise_equal_to_the_public_api(dtype, want_vectors):
    for name, d, e in _families(dtype):
        n = d.shape[-1]
        d0, e0 = d.copy(), e.copy()
        for k in sorted({0, n // 2, n - 1}):
            w, v, nonfinite = kth_prevalidated(d, e, k, want_vectors)
            assert nonfinite is None, name
            assert w.shape == d.shape[:-1] and w.dtype == dtype, name
            if want_vectors:
                w_ref, v_ref = tn.kth_eigenpair(d, e, k, check_finite=False)
                np.testing.assert_array_equal(v, v_ref, err_msg=name)
                assert v.shape == d.shape and v.dtype == dtype
                assert not np.may_share_memory(v, w)
            else:
                w_ref = tn.kth_eigenvalue(d, e, k, check_finite=False)
                assert v is None
            np.testing.assert_array_equal(w, w_ref, err_msg=name)
            for out in (w, v):
                if out is not None:
                    assert out.flags.c_contiguous and out.flags.writeable
                    assert not (np.may_share_memory(out, d) or np.may_share_memory(out, e))
        np.testing.assert_array_equal(d, d0)  # inputs untouched
        np.testing.assert_array_equal(e, e0)


@pytest.mark.parametrize("want_vectors", [False, True])
def test_per_matrix_k(want_vectors):
    d, e = random_batch((6,), 9, seed=3)
    k = np.array([0, 8, 3, 4, 4, 1], np.int64)
    w, v, _ = kth_prevalidated(d, e, k, want_vectors)
    ref = tn.kth_eigenpair(d, e, k, check_finite=False) if want_vectors else (tn.kth_eigenvalue(d, e, k, check_finite=False),)
    np.testing.assert_array_equal(w, ref[0])
    if want_vectors:
        np.testing.assert_array_equal(v, ref[1])


@pytest.mark.parametrize("n", [1, 6])
@pytest.mark.parametrize("want_vectors", [False, True])
def test_nonfinite_matrices_reported(n, want_vectors):
    """Exactly the matrices holding NaN/inf are flagged, with NaN results; the others are
    as the public API gives them."""
    d, e = random_batch((5,), n, seed=4)
    d[1, 0] = np.nan
    d[3, -1] = np.inf
    if n > 1:
        e[4, 0] = -np.inf
    bad = np.array([False, True, False, True, n > 1])
    w, v, nonfinite = kth_prevalidated(d, e, n // 2, want_vectors)
    np.testing.assert_array_equal(nonfinite, bad)
    assert np.isnan(w[bad]).all() and np.isfinite(w[~bad]).all()
    ref = tn.kth_eigenpair(d, e, n // 2, check_finite=False) if want_vectors else (tn.kth_eigenvalue(d, e, n // 2, check_finite=False),)
    np.testing.assert_array_equal(w, ref[0])
    if want_vectors:
        assert np.isnan(v[bad]).all()
        np.testing.assert_array_equal(v, ref[1])


@pytest.mark.parametrize("want_vectors", [False, True])
def test_few_large_matrices_take_the_same_lapack_route(want_vectors):
    """One matrix of order LARGE_N: the public API runs LAPACK's stebz (+ stein); so does the entry."""
    n = _drivers.LARGE_N
    assert _drivers.choose_kth(1, n) == "lapack_stebz"
    d, e = random_batch((1,), n, seed=5)
    w, v, nonfinite = kth_prevalidated(d, e, 7, want_vectors)
    assert nonfinite is None
    if want_vectors:
        w_ref, v_ref = tn.kth_eigenpair(d, e, 7)
        np.testing.assert_array_equal(v, v_ref)
    else:
        w_ref = tn.kth_eigenvalue(d, e, 7)
    np.testing.assert_array_equal(w, w_ref)
