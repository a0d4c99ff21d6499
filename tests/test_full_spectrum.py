"""The LAPACK path: lapack_driver='stevd'/'stemr'/'sterf'/'stev', 'auto'
routing, the large-n route of kth_eigenvalue/kth_eigenpair (LAPACK stebz +
stein), scipy's validation of lapack_driver, and the cacheable bindings.

Bounds are the package's (conftest): eigenvalues within 4 n eps ||T|| of a
float64 bisection reference, residuals <= 10 n eps ||T||, orthogonality
<= 10 n eps, largest entry of each vector positive.
"""

import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
import scipy.linalg as sl

import tridiag_numba as tn
from tridiag_numba import _drivers as D
from tridiag_numba import matrices as tm
from tridiag_numba._api import serial_kernels

from conftest import (
    DTYPES,
    assert_eigenvalues,
    assert_eigenvectors,
    assert_sign_convention,
    ref_eigh,
)

VECTOR_DRIVERS = ["stevd", "stemr", "stev"]
ALL_DRIVERS = VECTOR_DRIVERS + ["sterf"]


def _batch(shape, n, dtype, seed=0):
    return tm.random_batch(shape, n, dtype=dtype, seed=seed)


# ----------------------------------------------------------- accuracy on the LAPACK families


@pytest.mark.parametrize("driver", ALL_DRIVERS)
def test_eigenvalues_on_tester_families(case, driver):
    w = tn.eigvalsh_tridiagonal(case.d, case.e, lapack_driver=driver)
    assert w.dtype == case.dtype
    if case.scale == "x1":
        # The same LAPACK routine on the same input (scaled by an exact power
        # of two): scipy's result, bit for bit.  At 1e+-150 LAPACK rescales
        # by a factor that is not a power of two, so only the bounds apply.
        np.testing.assert_array_equal(w, sl.eigvalsh_tridiagonal(case.d, case.e, lapack_driver=driver))
    assert_eigenvalues(w, case.w_ref, case.d, case.e, case.dtype)
    if case.exact is not None:
        assert_eigenvalues(w, case.exact, case.d, case.e, case.dtype, what="exact eigenvalues")


def _scipy_signs(v):
    """scipy's vectors with this package's sign convention (largest entry
    positive, the first on ties)."""
    v = np.array(v)
    top = v[np.abs(v).argmax(axis=0), np.arange(v.shape[1])]
    return v * np.where(top < 0, -1, 1)


@pytest.mark.parametrize("driver", VECTOR_DRIVERS)
def test_eigenpairs_on_tester_families(case, driver):
    try:
        w_sp, v_sp = sl.eigh_tridiagonal(case.d, case.e, lapack_driver=driver)
    except np.linalg.LinAlgError:
        # dstemr fails (info 22) on some of these (e.g. matrices scaled by
        # 1e150): the same LAPACK routine fails the same way here.
        with pytest.raises(np.linalg.LinAlgError, match=f"LAPACK \\?{driver} did not converge"):
            tn.eigh_tridiagonal(case.d, case.e, lapack_driver=driver)
        return
    w, v = tn.eigh_tridiagonal(case.d, case.e, lapack_driver=driver)
    assert w.dtype == v.dtype == case.dtype
    assert v.shape == (case.n, case.n)
    if case.scale == "x1":
        # The same LAPACK routine on the same input (scaled by an exact power
        # of two): scipy's result, bit for bit (up to the sign convention),
        # so also its accuracy and orthogonality.
        np.testing.assert_array_equal(w, w_sp)
        np.testing.assert_array_equal(v, _scipy_signs(v_sp))
    assert_eigenvalues(w, case.w_ref, case.d, case.e, case.dtype)
    # MRRR's orthogonality constant is larger than inverse iteration's
    # (scipy's stemr: 44 n eps on wilkinson(21)); stevd/stev meet the package's.
    assert_eigenvectors(case.d, case.e, w, v, case.dtype, c_orth=50.0 if driver == "stemr" else 10.0)
    assert_sign_convention(v, case.dtype)


def test_stemr_index_range_on_tester_families(case):
    lo, hi = case.n // 4, max(case.n // 4, (3 * case.n) // 4 - 1)
    kwargs = dict(select="i", select_range=(lo, hi), lapack_driver="stemr")
    try:
        sl.eigh_tridiagonal(case.d, case.e, **kwargs)
    except np.linalg.LinAlgError:
        with pytest.raises(np.linalg.LinAlgError, match="LAPACK \\?stemr did not converge"):
            tn.eigh_tridiagonal(case.d, case.e, **kwargs)
        return
    w, v = tn.eigh_tridiagonal(case.d, case.e, **kwargs)
    assert w.shape == (hi - lo + 1,) and v.shape == (case.n, hi - lo + 1)
    assert_eigenvalues(w, case.w_ref[lo : hi + 1], case.d, case.e, case.dtype)
    assert_eigenvectors(case.d, case.e, w, v, case.dtype, c_orth=50.0)
    assert_sign_convention(v, case.dtype)


@pytest.mark.parametrize("driver", ["sterf", "stev", "stevd", "auto"])
@pytest.mark.parametrize("dtype,tiny_e", [(np.float64, 1.7e-158), (np.float64, 1e-155), (np.float32, 1e-25)])
def test_subnormal_squares_of_e(driver, dtype, tiny_e):
    # LAPACK's sterf squares e: with e = (0, ..., tiny, 0.75) and d = 0 a
    # subnormal square made it return 0.7499999984 for 0.75 (as scipy's
    # eigvalsh_tridiagonal does); such entries are zeroed first (Weyl: each
    # eigenvalue moves by at most |tiny|).
    d = np.zeros(14, dtype)
    e = np.zeros(13, dtype)
    e[11], e[12] = tiny_e, 0.75
    w = tn.eigvalsh_tridiagonal(d, e, lapack_driver=driver)
    exact = np.array([-0.75] + [0.0] * 12 + [0.75])
    assert_eigenvalues(w, exact, d, e, dtype)


@pytest.mark.parametrize("driver", ALL_DRIVERS + ["lapack_stebz"])
@pytest.mark.parametrize(
    "dtype,scale", [(np.float64, 1e-310), (np.float64, 2.0**-1070), (np.float64, 1e307), (np.float32, 1e-41), (np.float32, 1e37)]
)
def test_extreme_scales(driver, dtype, scale, monkeypatch):
    # Subnormal and near-overflow matrices: the power-of-two scaling must
    # come in two factors (2**1070 itself overflows).
    d0, e0 = tm.clement(9)
    d, e = (d0 * scale).astype(dtype), (e0 * scale).astype(dtype)
    n = d.size
    ref = ref_eigh(d, e, eigvals_only=True)
    bound = 4 * n * (np.finfo(dtype).eps * np.abs(ref).max() * 2 + float(np.finfo(dtype).smallest_subnormal))
    if driver == "lapack_stebz":
        monkeypatch.setattr(D, "LARGE_N", 1)
        w = np.array([tn.kth_eigenvalue(d, e, k) for k in range(n)])
    else:
        try:
            w = tn.eigvalsh_tridiagonal(d, e, lapack_driver=driver)
        except np.linalg.LinAlgError:
            assert driver == "stemr"  # scipy's stemr fails on these too
            with pytest.raises(np.linalg.LinAlgError):
                sl.eigvalsh_tridiagonal(d, e, lapack_driver="stemr")
            return
    assert np.all(np.abs(w.astype(np.float64) - ref) <= bound)


def test_lapack_bisection_route_on_tester_families(case, monkeypatch):
    # kth_eigenpair of a few big matrices runs LAPACK stebz + stein on the
    # matrix scaled by a power of two; force that route for these sizes.
    monkeypatch.setattr(D, "LARGE_N", 1)
    k = case.n // 2
    w, v = tn.kth_eigenpair(case.d, case.e, k)
    assert_eigenvalues(w[None], case.w_ref[k : k + 1], case.d, case.e, case.dtype)
    assert_eigenvectors(case.d, case.e, w[None], v[:, None], case.dtype)
    assert_sign_convention(v[:, None], case.dtype)
    assert tn.kth_eigenvalue(case.d, case.e, k) == w


@pytest.mark.parametrize("dtype", DTYPES)
def test_auto_on_glued_wilkinson_batch(dtype):
    # 12 glued W21+ blocks: clusters of 12 eigenvalues within 1e-12 of each
    # other; every route of 'auto' must keep the vectors orthogonal.
    d, e = tm.glued_wilkinson(12)
    d, e = np.stack([d, -d]).astype(dtype), np.stack([e, e]).astype(dtype)
    n = d.shape[-1]
    ref = ref_eigh(d, e, eigvals_only=True)
    for select, rng in (("a", None), ("i", (0, n - 1)), ("i", (10, 200)), ("i", (50, 60))):
        w, v = tn.eigh_tridiagonal(d, e, select=select, select_range=rng)
        lo, hi = (0, n - 1) if rng is None else rng
        assert_eigenvalues(w, ref[:, lo : hi + 1], d, e, dtype)
        assert_eigenvectors(d, e, w, v, dtype)


def test_thousand_fold_cluster():
    # The case: 1000 copies of clement(3) (eigenvalues -2, 0, 2,
    # each 1000 times), select='i' over the middle cluster.
    d, e = tm.split_matrix(1000, block=3)
    w, v = tn.eigh_tridiagonal(d, e, select="i", select_range=(1000, 1999))
    np.testing.assert_array_equal(w.shape, (1000,))
    assert np.abs(w).max() <= 4 * 3000 * np.finfo(float).eps * 4
    assert_eigenvectors(d, e, w, v, np.float64)


# ----------------------------------------------------------- shapes, dtypes, batches


@pytest.mark.parametrize("driver", ALL_DRIVERS + ["auto"])
@pytest.mark.parametrize("shape", [(), (0,), (1,), (3,), (2, 3), (0, 4)])
@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_shapes(driver, shape, n, dtype):
    d, e = _batch(shape, n, dtype)
    w = tn.eigvalsh_tridiagonal(d, e, lapack_driver=driver)
    assert w.shape == shape + (n,) and w.dtype == dtype
    if driver != "sterf":
        w2, v = tn.eigh_tridiagonal(d, e, lapack_driver=driver)
        assert v.shape == shape + (n, n) and v.dtype == dtype
    if np.prod(shape):
        assert_eigenvalues(w, ref_eigh(d, e, eigvals_only=True), d, e, dtype)
        if driver != "sterf":
            assert_eigenvectors(d, e, w2, v, dtype)


@pytest.mark.parametrize("driver", VECTOR_DRIVERS + ["auto"])
def test_broadcasting_and_layouts(driver):
    d, e = _batch((4, 6), 9, np.float64)
    d_f = np.asfortranarray(d)
    e_b = e[:, :1, :]  # (4, 1, 8), broadcast over the second axis
    w, v = tn.eigh_tridiagonal(d_f, e_b, lapack_driver=driver)
    w2, v2 = tn.eigh_tridiagonal(np.ascontiguousarray(d), np.ascontiguousarray(np.broadcast_to(e_b, (4, 6, 8))), lapack_driver=driver)
    np.testing.assert_array_equal(w, w2)
    np.testing.assert_array_equal(v, v2)


@pytest.mark.parametrize("driver", ALL_DRIVERS + ["auto"])
def test_inputs_not_modified(driver):
    d, e = _batch((3,), 20, np.float64)
    d0, e0 = d.copy(), e.copy()
    tn.eigh_tridiagonal(d, e, eigvals_only=driver == "sterf", lapack_driver=driver)
    np.testing.assert_array_equal(d, d0)
    np.testing.assert_array_equal(e, e0)
    d.flags.writeable = e.flags.writeable = False
    tn.eigvalsh_tridiagonal(d, e, lapack_driver=driver)  # read-only input works


@pytest.mark.parametrize("driver", ["stevd", "stemr", "auto"])
def test_parallel_equals_serial(driver):
    d, e = _batch((64,), 40, np.float64, seed=3)
    w, v = tn.eigh_tridiagonal(d, e, lapack_driver=driver)
    with serial_kernels():
        ws, vs = tn.eigh_tridiagonal(d, e, lapack_driver=driver)
    np.testing.assert_array_equal(w, ws)
    np.testing.assert_array_equal(v, vs)


@pytest.mark.parametrize("vectors", [False, True])
def test_value_range_batch(vectors):
    # select='v' with stemr: per-matrix counts, NaN padding like the bisection path.
    d, e = _batch((5,), 30, np.float64, seed=4)
    lo, hi = -0.5, 1.0
    out = tn.eigh_tridiagonal(d, e, eigvals_only=not vectors, select="v", select_range=(lo, hi), lapack_driver="stemr")
    ref = tn.eigh_tridiagonal(d, e, eigvals_only=not vectors, select="v", select_range=(lo, hi), lapack_driver="stebz")
    w, wr = (out[0], ref[0]) if vectors else (out, ref)
    assert w.shape == wr.shape
    np.testing.assert_array_equal(np.isnan(w), np.isnan(wr))
    np.testing.assert_allclose(w, wr, atol=1e-13, equal_nan=True)
    for b in range(5):
        wb = w[b][~np.isnan(w[b])]
        assert np.all((wb > lo) & (wb <= hi))
        assert wb.size == np.sum((sl.eigvalsh_tridiagonal(d[b], e[b]) > lo) & (sl.eigvalsh_tridiagonal(d[b], e[b]) <= hi))
        if vectors:
            assert_eigenvectors(d[b], e[b], wb, out[1][b][:, : wb.size], np.float64)
            assert np.isnan(out[1][b][:, wb.size :]).all()


# ----------------------------------------------------------- non-finite input


@pytest.mark.parametrize("driver", ALL_DRIVERS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite(driver, bad):
    d, e = _batch((3,), 10, np.float64)
    e[1, 4] = bad
    vectors = driver != "sterf"
    with pytest.raises(ValueError, match="^e must contain only finite"):
        tn.eigh_tridiagonal(d, e, eigvals_only=not vectors, lapack_driver=driver)
    out = tn.eigh_tridiagonal(d, e, eigvals_only=not vectors, check_finite=False, lapack_driver=driver)
    w = out[0] if vectors else out
    assert np.isnan(w[1]).all() and np.isfinite(w[[0, 2]]).all()
    if vectors:
        assert np.isnan(out[1][1]).all() and np.isfinite(out[1][[0, 2]]).all()


@pytest.mark.parametrize("vectors", [False, True])
def test_nonfinite_large_n_route(vectors, monkeypatch):
    monkeypatch.setattr(D, "LARGE_N", 1)
    d, e = _batch((3,), 10, np.float64)
    d[2, 3] = np.nan
    fn = tn.kth_eigenpair if vectors else tn.kth_eigenvalue
    with pytest.raises(ValueError, match="^d must contain only finite"):
        fn(d, e, 4)
    out = fn(d, e, 4, check_finite=False)
    w = out[0] if vectors else out
    assert np.isnan(w[2]) and np.isfinite(w[:2]).all()
    if vectors:
        assert np.isnan(out[1][2]).all() and np.isfinite(out[1][:2]).all()


# ----------------------------------------------------------- scipy's validation


@pytest.mark.parametrize("driver", ["sterf", "stev", "stevd"])
@pytest.mark.parametrize("select,select_range", [("i", (0, 1)), ("v", (-1.0, 1.0))])
@pytest.mark.parametrize("eigvals_only", [True, False])
def test_whole_spectrum_drivers_reject_ranges(driver, select, select_range, eigvals_only):
    d, e = _batch((), 4, np.float64)
    with pytest.raises(ValueError):  # scipy raises too
        sl.eigh_tridiagonal(d, e, eigvals_only=eigvals_only, select=select, select_range=select_range, lapack_driver=driver)
    with pytest.raises(ValueError, match=f"lapack_driver='{driver}'.*select='a'; got select='{select}'"):
        tn.eigh_tridiagonal(d, e, eigvals_only=eigvals_only, select=select, select_range=select_range, lapack_driver=driver)


def test_sterf_rejects_eigenvectors():
    d, e = _batch((2,), 4, np.float64)
    with pytest.raises(ValueError):
        sl.eigh_tridiagonal(d[0], e[0], lapack_driver="sterf")
    with pytest.raises(ValueError, match="lapack_driver='sterf' computes eigenvalues only"):
        tn.eigh_tridiagonal(d, e, lapack_driver="sterf")
    assert tn.eigvalsh_tridiagonal(d, e, lapack_driver="sterf").shape == (2, 4)


@pytest.mark.parametrize("driver,exc", [("dstevd", ValueError), ("STEMR", ValueError), (None, TypeError), (1, TypeError)])
def test_driver_type_and_value(driver, exc):
    d, e = _batch((), 4, np.float64)
    with pytest.raises(exc, match="lapack_driver"):
        tn.eigh_tridiagonal(d, e, lapack_driver=driver)


@pytest.mark.parametrize("driver", ["stemr", "stebz", "auto"])
@pytest.mark.parametrize("select,select_range", [("a", None), ("i", (1, 2)), ("v", (-1.0, 1.0))])
def test_range_drivers_accept_every_select(driver, select, select_range):
    d, e = _batch((2,), 5, np.float64, seed=5)
    w, v = tn.eigh_tridiagonal(d, e, select=select, select_range=select_range, lapack_driver=driver)
    for b in range(2):
        ws = sl.eigh_tridiagonal(d[b], e[b], eigvals_only=True, select=select, select_range=select_range)
        np.testing.assert_allclose(w[b][: ws.size], ws, atol=1e-13)


# ----------------------------------------------------------- 'auto' and the large-n route


@pytest.mark.parametrize(
    "args,expected",
    [
        (("a", True, 1000, 16, 16), "ql"),
        (("a", True, 1000, 100, 100), "ql"),
        (("a", True, 15, 100, 100), "ours"),
        (("a", True, 1000, 2, 2), "ours"),
        (("a", True, 1000, 321, 321), "ours"),
        (("a", True, 1, 100, 100), "ours"),
        (("a", True, 1, 1000, 1000), "ours"),
        (("i", True, 1000, 32, 20), "ours"),
        (("i", True, 1000, 32, 4), "ours"),
        (("a", True, 1, 1 << 20, 1 << 20), "ours"),
        (("a", False, 1, 4000, 4000), "stevd"),
        (("a", False, 1000, 16, 16), "ours_all"),
        (("a", False, 1000, 200, 200), "stevd"),
        (("a", False, 10, 16, 16), "stevd"),
        (("i", False, 1, 3000, 1000), "stevd"),
        (("i", False, 1, 100, 90), "stevd"),
        (("v", False, 1, 100, 90), "stevd"),
        (("v", False, 1, 100, 10), "ours"),
        (("i", False, 1, 10**5, 100), "lapack_stebz"),
        (("i", False, 50, 100, 5), "ours"),
        (("i", True, 50, 100, 5), "ours"),
        (("i", True, 50, 100, 60), "ours"),
        (("i", True, 1, 1 << 20, 1), "lapack_stebz"),
        (("i", False, 1, 1 << 20, 1), "lapack_stebz"),
        (("a", False, 5, 1, 1), "ours"),
    ],
)
def test_auto_choice(args, expected):
    sel, eigvals_only, nb, n, m = args
    assert D.choose("auto", sel, eigvals_only, nb, n, m) == expected
    assert D.choose("stebz", sel, eigvals_only, nb, n, m) == "ours"


def test_auto_split_matrices_go_to_stein():
    # A wide range of eigenpairs of a matrix that splits into small blocks:
    # dstein works per block, stevd would fill an n x n matrix.
    d, e = tm.split_matrix(1000, block=3)
    assert D.largest_block(e[None]) == 3
    assert D.choose("auto", "i", False, 1, 3000, 1000, e[None]) == "lapack_stebz"
    _, e_rand = _batch((2,), 3000, np.float64)
    assert D.choose("auto", "i", False, 2, 3000, 1000, e_rand) == "stevd"


@pytest.mark.parametrize(
    "e,expected",
    [([[1, 1, 0, 1, 1, 1, 1, 0, 1]], 5), ([[0] * 9], 1), ([[1] * 9, [1] * 4 + [0] + [1] * 4], 10), (np.empty((0, 9)), 0)],
)
def test_largest_block(e, expected):
    assert D.largest_block(np.asarray(e, dtype=float)) == expected


def test_large_n_route_memory_and_result():
    # kth_eigenpair / kth_eigenvalue of one matrix with n >= LARGE_N: work
    # arrays O(n) -- at most 10x the input (the lane kernels held 32-lane
    # rows: ~135x) -- and scipy's answer.
    n = 2 * D.LARGE_N
    d, e = _batch((), n, np.float64, seed=6)
    k = n // 3
    tn.kth_eigenpair(d, e, k)  # compile/load outside the measurement
    tracemalloc.start()
    try:
        w, v = tn.kth_eigenpair(d, e, k)
        peak_pair = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        wv = tn.kth_eigenvalue(d, e, k)
        peak_value = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    input_bytes = d.nbytes + e.nbytes
    assert peak_pair <= 10 * input_bytes, peak_pair / input_bytes
    assert peak_value <= 10 * input_bytes, peak_value / input_bytes
    w_ref, v_ref = sl.eigh_tridiagonal(d, e, select="i", select_range=(k, k))
    assert wv == w
    assert abs(w - w_ref[0]) <= 4 * n * np.finfo(float).eps * np.abs(d).max() * 3
    assert_eigenvectors(d, e, w[None], v[:, None], np.float64)


# ----------------------------------------------------------- the bindings


def test_bindings_cache_in_a_fresh_process(tmp_path):
    # The kernels call LAPACK through symbols registered at import, so numba
    # can cache them: a second process loads them from the cache.
    script = textwrap.dedent(
        """
        import numpy as np
        import tridiag_numba as tn
        from tridiag_numba import _full_spectrum as F
        d = np.arange(6.0).reshape(2, 3); e = np.ones((2, 2))
        w, v = tn.eigh_tridiagonal(d, e, lapack_driver="stevd")
        stats = F.full_spectrum_serial.stats  # a 2x3 batch runs serially
        print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
        """
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=os.pathsep.join([os.getcwd()] + sys.path))
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True) for _ in range(2)]
    first, second = (tuple(int(x) for x in r.stdout.split()) for r in runs)
    assert first[1] >= 1  # compiled
    assert second == (1, 0)  # loaded from the cache, nothing compiled
