"""All eigenpairs by lane QL + lane inverse iteration (``_stein_all``, the
'auto' route ``'ours_all'`` for batches of small matrices): accuracy on the LAPACK
tester families and statistically, the certificate and its stevd fallback,
routing, and the numpy layer's contract (non-finite input, serial =
parallel, inputs untouched).

Bounds are the package's (conftest): eigenvalues within 4 n eps ||T|| of
the float64 reference, residuals <= 10 n eps ||T||, orthogonality
<= 10 n eps over *all* pairs (not the gap-aware bound of inverse iteration:
the route's certificate proves 8 n eps), largest entry of each vector
positive.  The route runs here through ``_api._solve_all_pairs`` for any
dtype, order and batch (``'auto'`` takes it for batches of >= 32 matrices
of order 16..128, float32 16..32).
"""

import numpy as np
import pytest

import tridiag_numba as tn
from tridiag_numba import _api as A
from tridiag_numba import _drivers as D
from tridiag_numba import _stein_all as SA
from tridiag_numba import matrices as tm
from tridiag_numba._api import serial_kernels

from conftest import (
    assert_eigenvalues,
    assert_eigenvectors,
    assert_sign_convention,
    eps_of,
    orthogonality,
    residuals,
    tnorm,
)


def _route(d, e, check_finite=True):
    """(w, v) of the route for a batch d (..., n), e (..., n-1)."""
    d2, e2, batch, n, dtype = A._prepare(np.asarray(d), np.asarray(e))
    w, v, nonfinite = A._solve_all_pairs(d2, e2, batch, 0.0, dtype, check_finite)
    A._mark_nonfinite(nonfinite, w, v)
    return w.reshape(batch + (n,)), v.reshape(batch + (n, n))


def _certified(d, e):
    """Per matrix of a batch, whether the kernel certified its vectors
    (info != INFO_UNCERTIFIED), for the record of the tests below."""
    d2, e2 = np.atleast_2d(d), np.atleast_2d(e)
    _, ws, _ = A._all_scaled_eigenvalues(d2, e2, d2.shape[:1], 0.0, d2.dtype, True)
    v = np.empty(d2.shape + d2.shape[-1:], d2.dtype)
    info = np.zeros(d2.shape[0], np.int32)
    eps, tiny = A._consts(d2.dtype)
    SA.all_vectors_serial(d2, e2, ws, d2.shape[0], eps, tiny, v, info)
    return info != SA.INFO_UNCERTIFIED


# ----------------------------------------------------------- accuracy on the LAPACK families


def test_eigenpairs_on_tester_families(case):
    if case.n == 1:
        pytest.skip("n = 1 never reaches the route (exact without a solver)")
    # Three copies: lanes hold eigenvalues of consecutive matrices.
    d = np.stack([case.d] * 3)
    e = np.stack([case.e] * 3)
    w, v = _route(d, e)
    assert w.dtype == v.dtype == case.dtype
    for b in range(3):
        assert_eigenvalues(w[b], case.w_ref, case.d, case.e, case.dtype)
        if case.exact is not None:
            assert_eigenvalues(w[b], case.exact, case.d, case.e, case.dtype, what="exact eigenvalues")
        assert_eigenvectors(case.d, case.e, w[b], v[b], case.dtype)
        assert_sign_convention(v[b], case.dtype)
    np.testing.assert_array_equal(v[0], v[2])  # a matrix's result does not depend on its neighbours


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_glued_wilkinson_batch_through_auto(dtype):
    # Tight clusters (pairs ~1e-14 apart and 1e-12 glue): the reference
    # dstein on the clusters, the certificate or stevd decide.
    d, e = tm.glued_wilkinson(4)
    d = np.stack([d] * 40).astype(dtype)
    e = np.stack([e] * 40).astype(dtype)
    w, v = tn.eigh_tridiagonal(d, e)
    assert_eigenvectors(d, e, w, v, dtype)
    assert_sign_convention(v, dtype)


# ----------------------------------------------------------- statistically


def _family(kind, rng, B, n):
    if kind == "normal":
        return rng.standard_normal((B, n)), rng.standard_normal((B, n - 1))
    if kind == "uniform":  # as TensorFlow's tests draw
        return rng.uniform(0, 1, (B, n)), rng.uniform(0, 1, (B, n - 1))
    # graded over 8 decades along the diagonal
    g = 10.0 ** np.linspace(-8, 0, n)
    return rng.standard_normal((B, n)) * g, rng.standard_normal((B, n - 1)) * np.sqrt(g[1:] * g[:-1])


def _reference(d, e):
    """float64 input: LAPACK dstebz at its tightest tolerance (as
    test_core_statistical); float32: the package's float64 bisection."""
    if d.dtype == np.float64:
        from test_core_statistical import dstebz_reference

        return dstebz_reference(d, e)
    return tn.eigvalsh_tridiagonal(d.astype(np.float64), e.astype(np.float64), lapack_driver="stebz")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["normal", "uniform", "graded"])
def test_statistical(kind, dtype):
    """Random batches, n from 2 to 128: eigenvalues within 4 eps ||T||_1 of
    a float64 reference (no factor n), residuals <= 10 n eps ||T||,
    orthogonality <= 10 n eps over all pairs."""
    rng = np.random.default_rng(abs(hash((kind, np.dtype(dtype).name))) % 2**32)
    eps = eps_of(dtype)
    worst = np.zeros(3)
    for n in (2, 3, 5, 8, 13, 16, 24, 32, 50, 64, 100, 128):
        B = max(8, 12000 // (n * n) * 4)
        d, e = _family(kind, rng, B, n)
        d, e = d.astype(dtype), e.astype(dtype)
        w, v = _route(d, e)
        w_ref = _reference(d, e)
        norm = tnorm(d, e)
        err = np.abs(w - w_ref).max(axis=1) / (eps * norm)
        res = residuals(d, e, w, v).max(axis=-1) / (n * eps * norm)
        orth = orthogonality(v) / (n * eps)
        worst = np.maximum(worst, [err.max(), res.max(), orth.max()])
    print(f"worst: eigenvalues {worst[0]:.3g} eps ||T||_1, residual {worst[1]:.3g} n eps ||T||, orthogonality {worst[2]:.3g} n eps")
    assert worst[0] <= 4.0, f"eigenvalue error {worst[0]:.3g} eps ||T||"
    assert worst[1] <= 10.0, f"residual {worst[1]:.3g} n eps ||T||"
    assert worst[2] <= 10.0, f"orthogonality {worst[2]:.3g} n eps"


def _with_spectrum(lam, rng):
    """A tridiagonal matrix with eigenvalues ``lam``: Lanczos (with full
    re-orthogonalisation) on diag(lam) from a random start."""
    n = lam.size
    Q = np.zeros((n, n))
    a, b = np.zeros(n), np.zeros(n - 1)
    q = rng.standard_normal(n)
    Q[:, 0] = q / np.linalg.norm(q)
    for k in range(n):
        z = lam * Q[:, k]
        a[k] = Q[:, k] @ z
        for _ in range(2):
            z -= Q[:, : k + 1] @ (Q[:, : k + 1].T @ z)
        if k < n - 1:
            b[k] = np.linalg.norm(z)
            Q[:, k + 1] = z / b[k]
    return a, b


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("gap", [1e-2, 1e-4, 1e-6, 3e-8, 1.5e-8, 1e-9, 1e-13])
def test_near_pairs_and_triples(gap, dtype):
    """Eigenvalues ``gap`` apart (a chain of three) on either side of the
    lanes' isolation threshold sqrt(eps) ||T||_1 and of dstein's 1e-3:
    lanes + window, dstein's clusters, or stevd -- the bounds hold."""
    rng = np.random.default_rng(int(-np.log10(gap) * 10))
    ds, es = [], []
    for n in (12, 24, 40) * 3:
        lam = np.sort(rng.uniform(-1, 1, n))
        k = int(rng.integers(0, n - 2))
        lam[k + 1] = lam[k] + gap
        lam[k + 2] = lam[k + 1] + gap * rng.uniform(1, 3)
        d, e = _with_spectrum(np.sort(lam), rng)
        # Padded to n = 40 by 1x1 blocks (e = 0): n < 40 split and run
        # dstein whole, n = 40 the lanes; the certificate checks both.
        ds.append(np.pad(d, (0, 40 - n), constant_values=5.0 + d.max()))
        es.append(np.pad(e, (0, 40 - n)))
    d, e = np.array(ds).astype(dtype), np.array(es).astype(dtype)
    w, v = _route(d, e)
    assert_eigenvectors(d, e, w, v, dtype)
    assert_sign_convention(v, dtype)
    assert_eigenvalues(w, _reference(d, e), d, e, dtype)
    assert _certified(d, e).all()


# ----------------------------------------------------------- the certificate


def test_certificate_rejects_bad_vectors():
    """``_finish`` passes the route's own vectors and rejects vectors with a
    residual or an orthogonality defect above its bounds."""
    rng = np.random.default_rng(5)
    n = 24
    d = rng.standard_normal((1, n))
    e = rng.standard_normal((1, n - 1))
    _, ws, _ = A._all_scaled_eigenvalues(d, e, (1,), 0.0, d.dtype, True)
    w_ok, v_ok = _route(d, e)
    onenrm = float(np.ldexp(tnorm(d, e)[0], -np.frexp(max(np.abs(d).max(), np.abs(e).max()))[1]))
    eps = eps_of(np.float64)

    def finish(v):
        fw = SA.Finish(np.empty((n, n)), np.empty((n, n)), *[np.empty(n) for _ in range(5)])
        vv = np.ascontiguousarray(v.copy())
        return SA._finish(d, e, 0, ws[0], vv, onenrm, eps, fw, np.empty(n, np.int64), np.empty((2, n), np.int64))

    assert finish(v_ok)
    bad = v_ok.copy()
    bad[0, :, 3] += 1e-9 * bad[0, :, 7]  # residual ~1e-9 ||T||
    assert not finish(bad)
    swapped = v_ok.copy()
    swapped[0, :, [4, 5]] = swapped[0, :, [5, 4]]  # vectors for the wrong eigenvalues
    assert not finish(swapped)


def test_uncertified_matrices_take_stevd(monkeypatch):
    """A matrix the kernel reports uncertified gets LAPACK stevd's
    eigenpairs (bit for bit); the others keep the route's."""
    d, e = tm.random_batch((6,), 20, seed=3)
    w0, v0 = _route(d, e)
    original = SA.all_vectors_serial

    def reject_two(d2, e2, ws, chunk, eps, tiny, v, info):
        original(d2, e2, ws, chunk, eps, tiny, v, info)
        info[[1, 4]] = SA.INFO_UNCERTIFIED

    monkeypatch.setattr(SA, "all_vectors_serial", reject_two)
    with serial_kernels():
        w, v = _route(d, e)
    ws_, vs_ = tn.eigh_tridiagonal(d[[1, 4]], e[[1, 4]], lapack_driver="stevd")
    np.testing.assert_array_equal(w[[1, 4]], ws_)
    np.testing.assert_array_equal(v[[1, 4]], vs_)
    keep = [0, 2, 3, 5]
    np.testing.assert_array_equal(w[keep], w0[keep])
    np.testing.assert_array_equal(v[keep], v0[keep])


def test_random_batches_are_certified():
    """The route pays off only if the certificate passes: it does on every
    random normal float64 matrix here (n = 16..100)."""
    for n in (16, 50, 100):
        d, e = tm.random_batch((64,), n, seed=n)
        assert _certified(d, e).all()


# ----------------------------------------------------------- routing and the numpy contract


@pytest.mark.parametrize(
    "nb,n,dtype,expected",
    [
        (1000, 16, np.float64, "ours_all"),
        (50, 100, np.float64, "ours_all"),
        (50, 128, np.float64, "ours_all"),
        (32, 16, np.float64, "ours_all"),
        (31, 16, np.float64, "stevd"),
        (1000, 15, np.float64, "stevd"),
        (1000, 129, np.float64, "stevd"),
        (1000, 16, np.float32, "ours_all"),
        (1000, 32, np.float32, "ours_all"),
        (1000, 33, np.float32, "stevd"),
        (50, 100, np.float32, "stevd"),
        (1, 100, np.float64, "stevd"),
    ],
)
def test_auto_choice(nb, n, dtype, expected):
    assert D.choose("auto", "a", False, nb, n, n, dtype=dtype) == expected
    assert D.choose("auto", "a", False, nb, n, n, np.zeros((nb, n - 1), dtype)) == expected
    assert D.choose("stebz", "a", False, nb, n, n, dtype=dtype) == "ours"
    assert D.choose("stevd", "a", False, nb, n, n, dtype=dtype) == "stevd"


def test_auto_takes_the_route(monkeypatch):
    d, e = tm.random_batch((40,), 20, seed=9)
    calls = []
    original = A._solve_all_pairs
    monkeypatch.setattr(A, "_solve_all_pairs", lambda *a: calls.append(1) or original(*a))
    w, v = tn.eigh_tridiagonal(d, e)
    assert calls and w.shape == (40, 20) and v.shape == (40, 20, 20)
    assert_eigenvectors(d, e, w, v, np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parallel_equals_serial_and_inputs_untouched(dtype):
    d, e = tm.random_batch((2, 40), 24, dtype=dtype, seed=4)
    d0, e0 = d.copy(), e.copy()
    w, v = _route(d, e)
    with serial_kernels():
        ws_, vs_ = _route(d, e)
    np.testing.assert_array_equal(w, ws_)
    np.testing.assert_array_equal(v, vs_)
    np.testing.assert_array_equal(d, d0)
    np.testing.assert_array_equal(e, e0)
    assert w.shape == (2, 40, 24) and v.shape == (2, 40, 24, 24)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite(bad):
    d, e = tm.random_batch((40,), 16, seed=8)
    d[3, 5] = bad
    with pytest.raises(ValueError, match="finite"):
        tn.eigh_tridiagonal(d, e)
    w, v = tn.eigh_tridiagonal(d, e, check_finite=False)
    assert np.isnan(w[3]).all() and np.isnan(v[3]).all()
    ok = np.arange(40) != 3
    assert np.isfinite(w[ok]).all() and np.isfinite(v[ok]).all()
    assert_eigenvectors(d[ok], e[ok], w[ok], v[ok], np.float64)


def test_tiny_matrices_get_scaled_values_from_bisection():
    """Matrices whose eigenvalues are subnormal: QL's values scale back
    inexactly, so their scaled values come from the bisection kernel."""
    d, e = tm.random_batch((40,), 12, seed=6)
    d[:3] *= 1e-310
    e[:3] *= 1e-310
    w, v = _route(d, e)
    assert_eigenvectors(d, e, w, v, np.float64)
    assert_sign_convention(v, np.float64)
