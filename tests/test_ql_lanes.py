"""All eigenvalues by lane QL certified by Sturm counts (tridiag_numba._ql_lanes).

Bounds (``eps`` of the dtype computed in, ``||T||_1`` the max column sum):

* every eigenvalue of ``eigvalsh_tridiagonal`` (``'auto'``, which runs the
  QL route for all eigenvalues): ``|w - w_ref| <= 4 eps ||T||_1``
  (``C_GATE``, the README's bound, as for the bisection route);
* 1x1 blocks of split matrices (diagonal matrices included): exact;
* the IR sweep: bit-identical to its plain numba reference;
* a proposal moved off its eigenvalue: certification must not pass it
  (and the test shows the same check fails when certification is skipped).
"""

import numba
import numpy as np
import pytest
import scipy.linalg.lapack

import tridiag_numba as tn
from tridiag_numba import _drivers as D
from tridiag_numba import _kernels as K
from tridiag_numba import _ql_lanes as Q
from tridiag_numba._bisect import _block_state
from tridiag_numba._lanes import Jobs, _fill_block
from tridiag_numba._layout import LANES, ROW
from tridiag_numba._ql_ir import _ql_scan_simd, _ql_sweep_simd, _sturm_count2_simd, _sturm_count_simd, _sturm_newton_simd
from tridiag_numba._sturm import _sturm_pass
from tridiag_numba.matrices import split_matrix

from conftest import CASES, DTYPES, get_case
from test_core_statistical import random_family

C_GATE = 4.0


def norm1(d, e):
    r = np.abs(d).astype(np.float64)
    r[..., :-1] += np.abs(e)
    r[..., 1:] += np.abs(e)
    return r.max(axis=-1)


def dstebz64(d, e):
    """LAPACK dstebz at its tightest tolerance, one float64 matrix."""
    n = d.shape[-1]
    if n == 1:
        return d.copy()
    m, w, _, _, info = scipy.linalg.lapack.dstebz(d, e, 2, 0.0, 0.0, 1, n, np.finfo(float).tiny, "E")
    assert info == 0 and m == n
    return w


def reference(d, e):
    """float64 reference eigenvalues (B, n) of the upcast matrices: LAPACK
    dstebz for float64 input; our float64 bisection route for float32 (its
    own error, ~eps64, is ~1e-9 of the float32 bound)."""
    d64 = d.astype(np.float64)
    e64 = e.astype(np.float64)
    if d.dtype == np.float64:
        return np.array([dstebz64(d64[b], e64[b]) for b in range(d.shape[0])]).reshape(d.shape)
    return tn.eigvalsh_tridiagonal(d64, e64, lapack_driver="stebz")


def via_ql(d, e, **kwargs):
    """Eigenvalues of one matrix through the QL route ('auto' takes it for
    batches of AUTO_QL_MIN_BATCH or more): the matrix repeated, every copy's
    result checked equal (lanes do not interact)."""
    nb = D.AUTO_QL_MIN_BATCH
    assert D.choose("auto", "a", True, nb, d.shape[-1], d.shape[-1]) == "ql"
    w = tn.eigvalsh_tridiagonal(np.tile(d, (nb, 1)), np.tile(e, (nb, 1)), **kwargs)
    for b in range(1, nb):
        np.testing.assert_array_equal(w[b], w[0])
    return w[0]


def worst_ratio(w, ref, d, e, dtype):
    """max |w - ref| / (eps ||T||_1) over the batch."""
    unit = np.finfo(dtype).eps * norm1(d, e)[..., None]
    return float((np.abs(w - ref) / np.where(unit > 0, unit, 1.0)).max(initial=0.0))


# ---------------------------------------------------------------- routing


@pytest.mark.parametrize("nb,n", [(16, 3), (50, 16), (1000, 16), (50, 100), (1000, 100), (64, 300)])
def test_auto_routes_all_eigenvalues_of_batches_to_ql(nb, n):
    assert D.choose("auto", "a", True, nb, n, n) == "ql"
    assert D.choose("stebz", "a", True, nb, n, n) == "ours"  # scipy's meaning: bisection
    assert D.choose("sterf", "a", True, nb, n, n) == "sterf"


# ------------------------------------------------------------ the IR sweep


@numba.njit(error_model="numpy")
def _sweep_both(qd, qe, fs, js, lo, hi, ir):
    if ir:
        _ql_sweep_simd(qd, qe, fs, js, lo, hi)
    else:
        Q._ql_sweep_rows(qd, qe, fs, js, lo, hi)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [3, 17, 100])
@pytest.mark.parametrize("tiny_lanes", [False, True])
def test_sweep_ir_matches_reference_bit_for_bit(dtype, n, tiny_lanes):
    """``tiny_lanes``: in lanes 3-12 the squares are subnormal, so that
    ``1 / (p + e**2)`` overflows (those lanes divide: finite c and s)."""
    rng = np.random.default_rng(n)
    qd = rng.standard_normal((n, ROW)).astype(dtype)
    qe = rng.random((n, ROW)).astype(dtype)
    qe[rng.random((n, ROW)) < 0.05] = 0.0  # c = 0 branches too
    fs = rng.standard_normal((6, LANES)).astype(dtype)
    fs[3] = np.abs(fs[3])
    if tiny_lanes:
        tiny = np.finfo(dtype).tiny
        qd[:, 3:13] *= dtype(np.sqrt(tiny))
        qe[:, 3:13] = dtype(tiny / 8) * (0.5 + rng.random((n, 10))).astype(dtype)  # no zeros: r > 0
        fs[3, 3:13] = dtype(tiny / 16)
    js = np.zeros((6, LANES), np.int64)
    js[1] = rng.integers(0, n - 1, LANES)
    js[2] = np.minimum(js[1] + rng.integers(0, n, LANES), n - 1)
    js[1, :3] = n  # lanes without a window
    js[2, :3] = n
    outs = []
    for ir in (False, True):
        arrays = [a.copy() for a in (qd, qe, fs, js)]
        _sweep_both(*arrays, 0, n - 2, ir)
        outs.append(arrays)
    for ref, got in zip(*outs):
        np.testing.assert_array_equal(got, ref)
    assert not np.array_equal(outs[0][0], qd)  # the sweep did something
    if tiny_lanes and n > 3:  # the overflow branch ran, and gave finite quotients
        with np.errstate(over="ignore", divide="ignore"):
            assert np.isinf(dtype(1) / (fs[3, 3:13] + qe[0, 3:13])).any()
        assert np.isfinite(outs[1][2][1:3, 3:13]).all()


@numba.njit(error_model="numpy")
def _scan_both(qd, qe, js, eps2, lmin, ir):
    if ir:
        _ql_scan_simd(qd, qe, js, eps2, lmin)
    else:
        Q._ql_scan_rows(qd, qe, js, eps2, lmin)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [2, 3, 17, 100])
def test_scan_ir_matches_reference(dtype, n):
    rng = np.random.default_rng(n)
    qd = rng.standard_normal((n, ROW)).astype(dtype)
    qe = rng.random((n, ROW)).astype(dtype)
    qe[rng.random((n, ROW)) < 0.2] = 0.0  # negligible couplings
    qd[rng.random((n, ROW)) < 0.05] = 0.0
    js = np.zeros((6, LANES), np.int64)
    js[0] = rng.integers(0, n, LANES)
    eps2 = dtype(np.finfo(dtype).eps ** 2)
    lmin = int(js[0].min())
    outs = []
    for ir in (False, True):
        j = js.copy()
        _scan_both(qd, qe, j, eps2, lmin, ir)
        outs.append(j)
    np.testing.assert_array_equal(outs[1], outs[0])
    assert (outs[0][1] >= js[0]).all() or n == 2


@numba.njit(error_model="numpy")
def _certification_passes(db, e2b, x, x2, pivmin, st, st2, cnt, newton, cnt2):
    """The engine's pass at x and x2, and the certification's passes."""
    _sturm_pass(db, e2b, x, pivmin, st)
    _sturm_pass(db, e2b, x2, pivmin, st2)
    _sturm_count_simd(db, e2b, x, pivmin, cnt)
    _sturm_newton_simd(db, e2b, x, pivmin, newton)
    _sturm_count2_simd(db, e2b, x, x2, pivmin, cnt2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_certification_passes_match_sturm_pass(dtype, n):
    """The certification's passes give the engine's counts
    (``_sturm_pass``), and the Newton pass its first sum, bit for bit, also
    at shifts on eigenvalues, at pivmin and where the sums overflow."""
    rng = np.random.default_rng(n)
    db = rng.standard_normal((n, ROW)).astype(dtype)
    e2b = (rng.standard_normal((n, ROW)) ** 2).astype(dtype)
    e2b[0] = 0.0
    e2b[rng.random((n, ROW)) < 0.1] = 0.0
    pivmin = dtype(np.finfo(dtype).tiny)
    for trial in range(20):
        x = rng.standard_normal(LANES).astype(dtype) * 2
        x[:4] = db[0, :4]  # exact zero pivots
        x2 = (x + rng.standard_normal(LANES) * 0.1).astype(dtype)
        x2[4:8] = db[-1, 4:8]
        st, st2, newton, cnt2 = (np.zeros((6 if k < 2 else 2, LANES), dtype) for k in range(4))
        cnt = np.zeros(LANES, dtype)
        _certification_passes(db, e2b, x, x2, pivmin, st, st2, cnt, newton, cnt2)
        np.testing.assert_array_equal(cnt, st[5])
        np.testing.assert_array_equal(newton[1], st[5])
        np.testing.assert_array_equal(newton[0], st[3])  # NaN where the sums overflowed, in both
        np.testing.assert_array_equal(cnt2[0], st[5])
        np.testing.assert_array_equal(cnt2[1], st2[5])


@numba.njit(error_model="numpy")
def _both_sorts(qd):
    """(reference per-lane sort, sorting network) of copies of ``qd``."""
    ref = qd.copy()
    net = qd.copy()
    Q._sort_lanes(ref)
    Q._sort_lanes_network(net)
    return ref, net


@pytest.mark.parametrize("dtype", DTYPES)
def test_sorting_network_matches_reference_sort(dtype):
    """Every lane of every order 1..320 (the route's range and past the
    powers of two), with ties, constant and reversed columns, infinities
    and signed zeros: the network sorts as the reference does (the lanes
    beyond LANES are padding, untouched by both)."""
    rng = np.random.default_rng(5)
    for n in range(1, 321):
        qd = rng.standard_normal((n, ROW)).astype(dtype)
        qd[:, 1] = np.round(qd[:, 1])  # ties
        qd[:, 2] = 0.5  # constant
        qd[:, 3] = np.arange(n, 0, -1)  # reversed
        qd[rng.random(n) < 0.2, 4] = np.inf
        qd[rng.random(n) < 0.2, 5] = -np.inf
        qd[:, 6] = np.where(rng.random(n) < 0.5, -0.0, 0.0)
        ref, net = _both_sorts(qd)
        np.testing.assert_array_equal(net[:, :LANES], ref[:, :LANES], err_msg=f"n = {n}")
        assert (net[1:, :LANES] >= net[:-1, :LANES]).all()


# --------------------------------------------------- LAPACK tester families


@pytest.mark.parametrize("scale", ["x1", "big", "small"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family,size", [c for c in CASES if 3 <= get_case(*c, np.float64, "x1").n <= D.AUTO_QL_MAX_N])
def test_families_within_bound(family, size, dtype, scale):
    case = get_case(family, size, dtype, scale)
    w = via_ql(case.d, case.e)
    assert w.dtype == dtype
    assert np.all(np.diff(w) >= 0)
    bound = C_GATE * case.eps * case.norm
    assert np.abs(w - case.w_ref).max() <= bound + 2 * case.n * np.finfo(dtype).tiny
    # ... and agrees with the bisection route to twice that.
    wb = tn.eigvalsh_tridiagonal(case.d, case.e, lapack_driver="stebz")
    assert np.abs(w - wb).max() <= 2 * bound + 4 * case.n * np.finfo(dtype).tiny


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("coupling", [1e-3, 1e-6, 1e-9])
def test_near_degenerate_pairs_within_bound(monkeypatch, dtype, coupling):
    """Equal diagonal pairs coupled by ``coupling`` (eigenvalues d +- coupling,
    a few eps apart in float32): float32's looser deflation proposes such a
    pair as one double value, and the counts must still bracket each
    eigenvalue.  Bound against LAPACK dstebz in float64; most values are
    certified in the kernel (the bisection fallback recomputes few)."""
    from tridiag_numba import _api

    rng = np.random.default_rng(3)
    nb, n = 64, 100
    d = np.repeat(rng.standard_normal((nb, n // 2)), 2, axis=1).astype(dtype)
    e = np.zeros((nb, n - 1))
    e[:, 0::2] = coupling
    e[:, 1::2] = 1e-3 * rng.standard_normal((nb, n // 2 - 1))
    e = e.astype(dtype)
    ref = reference(d, e)  # (float32: through the float64 bisection, before the spy)
    recomputed = []
    real = _api._eigenvalues
    monkeypatch.setattr(_api, "_eigenvalues", lambda d2, e2, rb, rk, *a: (recomputed.append(rb.size), real(d2, e2, rb, rk, *a))[1])
    w = tn.eigvalsh_tridiagonal(d, e)
    assert worst_ratio(w, ref, d, e, dtype) <= C_GATE
    assert np.all(np.diff(w, axis=1) >= 0)
    assert sum(recomputed) <= 0.01 * nb * n


@pytest.mark.parametrize("dtype", DTYPES)
def test_family_batch_matches_single_calls(dtype):
    """A batch of different families of one order gives what each matrix
    gives alone (lanes do not interact)."""
    n = 21
    cases = [get_case(f, n, dtype, "x1") for f in ("wilkinson", "clement", "toeplitz", "legendre")]
    d = np.stack([c.d for c in cases] * 10)
    e = np.stack([c.e for c in cases] * 10)
    w = tn.eigvalsh_tridiagonal(d, e)
    for b in range(4):
        np.testing.assert_array_equal(w[b], via_ql(d[b], e[b]))
    np.testing.assert_array_equal(w[4:], np.tile(w[:4], (9, 1)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_and_alone_agree(dtype):
    """What the README states: a matrix alone (bisection) and in a batch
    (QL route) agree within the bound, not necessarily bit for bit; with
    ``lapack_driver='stebz'`` the batch gives each matrix's own bits."""
    rng = np.random.default_rng(11)
    d = rng.random((40, 30)).astype(dtype)
    e = rng.random((40, 29)).astype(dtype)
    assert D.choose("auto", "a", True, 40, 30, 30) == "ql" and D.choose("auto", "a", True, 1, 30, 30) == "ours"
    w = tn.eigvalsh_tridiagonal(d, e)
    alone = np.stack([tn.eigvalsh_tridiagonal(d[b], e[b]) for b in range(40)])
    unit = np.finfo(dtype).eps * norm1(d, e)[:, None]
    assert (np.abs(w.astype(float) - alone) <= C_GATE * unit).all()
    bisected = tn.eigvalsh_tridiagonal(d, e, lapack_driver="stebz")
    np.testing.assert_array_equal(bisected, alone)


# ------------------------------------------------------------ exact splits


@pytest.mark.parametrize("dtype", DTYPES)
def test_diagonal_matrices_exact(dtype):
    rng = np.random.default_rng(7)
    d = rng.standard_normal((40, 9)).astype(dtype)
    d[:, ::3] = 0.0
    e = np.zeros((40, 8), dtype)
    np.testing.assert_array_equal(tn.eigvalsh_tridiagonal(d, e), np.sort(d, axis=1))
    np.testing.assert_array_equal(via_ql(np.array([0.01, 0, 0], dtype), np.zeros(2, dtype)), np.array([0, 0, 0.01], dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_blocks_exact_1x1(dtype):
    """1x1 blocks (zero couplings on both sides) come back exactly; the
    other blocks within the bound."""
    d, e = split_matrix(6, block=4)
    d = d.astype(dtype)
    e = e.astype(dtype)
    d1 = np.concatenate([d, np.array([0.375, -2.5], dtype)])
    e1 = np.concatenate([e, np.zeros(2, dtype)])
    w = via_ql(d1, e1)
    assert 0.375 in w and -2.5 in w
    ref = reference(d1[None], e1[None])[0]
    assert worst_ratio(w[None], ref[None], d1[None], e1[None], dtype) <= C_GATE


# ------------------------------------------------------------ batch shapes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0,), (1,), (2, 3), (4, 5), (33,), (70,)])
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_batch_shapes(dtype, shape, n):
    rng = np.random.default_rng(n)
    d = rng.standard_normal(shape + (n,)).astype(dtype)
    e = rng.standard_normal(shape + (n - 1,)).astype(dtype)
    w = tn.eigvalsh_tridiagonal(d, e)
    assert w.shape == shape + (n,) and w.dtype == dtype
    if d.size:
        d2 = d.reshape(-1, n)
        e2 = e.reshape(d2.shape[0], n - 1)
        assert worst_ratio(w.reshape(-1, n), reference(d2, e2), d2, e2, dtype) <= C_GATE


def test_broadcast_and_inputs_unchanged():
    d = np.linspace(-1.0, 1.0, 12).reshape(1, 12)
    e = np.full((20, 11), 0.5)
    d0, e0 = d.copy(), e.copy()
    w = tn.eigvalsh_tridiagonal(d, e)
    assert w.shape == (20, 12)
    np.testing.assert_array_equal(w[0], w[2])
    np.testing.assert_array_equal(d, d0)
    np.testing.assert_array_equal(e, e0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nonfinite_and_zero_matrices(dtype):
    d = np.ones((20, 6), dtype)
    e = np.full((20, 5), 0.5, dtype)
    d[1, 2] = np.nan
    e[2, 0] = np.inf
    d[3] = 0.0
    e[3] = 0.0
    with pytest.raises(ValueError, match="finite"):
        tn.eigvalsh_tridiagonal(d, e)
    w = tn.eigvalsh_tridiagonal(d, e, check_finite=False)
    assert np.isnan(w[1]).all() and np.isnan(w[2]).all()
    np.testing.assert_array_equal(w[3], 0.0)
    np.testing.assert_array_equal(w[0], via_ql(d[0], e[0]))


@pytest.mark.parametrize("tol", [1e-3, 1e-9])
def test_user_tol(tol):
    """An explicit tol: every eigenvalue within tol + the bound of the
    reference (scipy's meaning of tol: the bracket's width)."""
    rng = np.random.default_rng(3)
    d = rng.standard_normal((64, 30))
    e = rng.standard_normal((64, 29))
    w = tn.eigvalsh_tridiagonal(d, e, tol=tol)
    ref = reference(d, e)
    assert np.abs(w - ref).max() <= tol + C_GATE * np.finfo(float).eps * norm1(d, e).max()


# ---------------------------------------------- certification and fallback


@numba.njit(error_model="numpy")
def _block_with_proposals(d, e, bump, certify):
    """One block through the QL route's steps, with ``bump`` (n, LANES)
    added to the sorted QL proposals before certification; returns the
    values (n, LANES) scaled back and ok (n, LANES).  ``certify=False``
    skips the counts (every proposal accepted): what a kernel without the
    check would return."""
    n = d.shape[1]
    M = d.shape[0]
    lane_b = np.arange(M)
    lane_k = np.zeros(M, np.int64)
    wt = np.empty(M, d.dtype)
    wst = np.empty(M, d.dtype)
    info = np.zeros(M, np.int32)
    slots, br, ps = _block_state(d)
    T = d.dtype.type
    eps = np.finfo(d.dtype).eps
    tiny = np.finfo(d.dtype).tiny
    ql = Q.QL(np.empty((n, ROW), d.dtype), np.empty((n, ROW), d.dtype), np.zeros((6, LANES), d.dtype),
              np.zeros((6, LANES), np.int64))
    rq = Q.Refine(np.empty((4, n * LANES), d.dtype), np.empty(n * LANES, np.int64),
                  np.zeros((3, LANES), np.int64), np.zeros(LANES, d.dtype), np.zeros((6, LANES), d.dtype))
    ok = np.ones((n, LANES), np.bool_)
    jobs = Jobs(d, e, lane_b, lane_k, M, 0.0, eps, tiny, wt, wst, info)
    slots.sums[:] = 0.0
    _fill_block(jobs, slots, br, 0)
    for l in range(LANES):
        ql.fs[5, l] = T(eps * max(abs(br.lo[l]), abs(br.hi[l])))
    Q._ql_load(slots, ql)
    Q._ql_run(ql, eps, 30 * n)
    Q._sort_lanes_network(ql.qd)
    for i in range(n):
        for l in range(LANES):
            ql.qd[i, l] += T(bump[i, l])
    if certify:
        Q._certify(slots, ql, np.zeros((6, LANES), d.dtype), ps.st, ok, rq, T(tiny), T(2 * eps))
        Q._refine(slots, ql, ok, rq, T(tiny), T(2 * eps))
    out = np.empty((n, LANES))
    for l in range(LANES):
        for i in range(n):
            out[i, l] = np.ldexp(float(ql.qd[i, l]), slots.expo[l])
    return out, ok


@pytest.mark.parametrize("certify,size", [
    (True, 50.0), (True, 3.0), (True, 0.7),
    pytest.param(False, 50.0, marks=pytest.mark.xfail(strict=True)),
])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [4, 40])
def test_certification_rejects_wrong_proposals(dtype, n, certify, size):
    """Proposals moved by ``size`` eps ||T||_1 (a QL gone wrong) are never
    certified as they are: each is either rejected (ok False: the caller
    recomputes it by bisection) or moved back within the bound, by Newton's
    step (0.7 and 3: within its reach, then the counts check it) or by
    counts from the ends the first counts verified (50: beyond the reach).
    Without certification (xfail, strict) the same check fails: the test
    can see a wrong proposal."""
    rng = np.random.default_rng(n)
    d = rng.standard_normal((LANES, n)).astype(dtype)
    e = rng.standard_normal((LANES, n - 1)).astype(dtype)
    unit = np.finfo(dtype).eps * norm1(d, e)  # (LANES,)
    bump = np.zeros((n, LANES))
    hit = rng.random((n, LANES)) < 0.3
    bump[hit] = (size * unit[None, :] * np.where(rng.random((n, LANES)) < 0.5, -1, 1))[hit]
    # The bump is in the scaled matrix's units: scale like the kernel.
    scale = np.ldexp(1.0, -np.frexp(np.maximum(np.abs(d).max(1), np.abs(e).max(1)))[1])
    bump *= scale[None, :]
    w, ok = _block_with_proposals(d, e, bump, certify)
    ref = reference(d, e).T  # (n, LANES)
    err = np.abs(w - ref) / unit[None, :]
    assert hit.any()
    assert (err[ok] <= C_GATE).all()
    if certify:
        assert ok[~hit].mean() > 0.99  # untouched proposals pass


@pytest.mark.parametrize("dtype", DTYPES)
def test_fallback_recomputes_what_the_kernel_does_not_certify(monkeypatch, dtype):
    """The numpy layer recomputes every eigenvalue the kernel leaves
    uncertified (ok 0), and whole matrices whose QL did not converge, by
    the bisection kernel: the result equals the bisection route there."""
    rng = np.random.default_rng(11)
    nb, n = 40, 12
    d = rng.standard_normal((nb, n)).astype(dtype)
    e = rng.standard_normal((nb, n - 1)).astype(dtype)
    bad = rng.random((nb, n)) < 0.2
    real = {name: getattr(K, name) for name in ("ql_eigenvalues_serial", "ql_eigenvalues_parallel")}

    def corrupt(name):
        def kernel(d2, e2, lane_b, lane_k, tol, eps, tiny, chunk, w, ok, info, wt, wst):
            real[name](d2, e2, lane_b, lane_k, tol, eps, tiny, chunk, w, ok, info, wt, wst)
            w[bad] = 1e3  # garbage, flagged as uncertified
            ok[bad] = 0
            info[5] = 1  # "QL did not converge" for matrix 5
            w[5] = -1e3
            ok[5] = 0
        return kernel

    for name in real:
        monkeypatch.setattr(K, name, corrupt(name))
    w = tn.eigvalsh_tridiagonal(d, e)
    wb = tn.eigvalsh_tridiagonal(d, e, lapack_driver="stebz")
    redo = bad.copy()
    redo[5] = True
    assert np.abs(w).max() < 100
    np.testing.assert_array_equal(w[redo], wb[redo])
    assert worst_ratio(w, reference(d, e), d, e, dtype) <= C_GATE


@pytest.mark.parametrize("dtype,rate", [(np.float32, 0.2), (np.float32, 0.25), (np.float64, 1.6), (np.float64, 3.2)])
def test_strongly_graded_matrices_stay_on_ql(monkeypatch, dtype, rate):
    """Matrices graded as ``10**(-rate i)`` (their squares reach subnormals,
    where a reciprocal overflows): QL converges and the counts certify
    nearly every value, so the bisection fallback recomputes at most 1 %
    (with an infinite reciprocal multiplied in, QL ran out of sweeps and the
    fallback redid whole matrices, 55x slower), within the bound."""
    rng = np.random.default_rng(7)
    nb, n = 64, 100
    g = 10.0 ** (-np.arange(n) * rate)
    d = (rng.standard_normal((nb, n)) * g).astype(dtype)
    e = (rng.standard_normal((nb, n - 1)) * g[1:]).astype(dtype)
    from tridiag_numba import _api

    recomputed = []
    real = _api._eigenvalues
    monkeypatch.setattr(_api, "_eigenvalues", lambda d2, e2, rb, rk, *a: (recomputed.append(rb.size), real(d2, e2, rb, rk, *a))[1])
    w = tn.eigvalsh_tridiagonal(d, e)
    assert sum(recomputed) <= 0.01 * nb * n
    assert worst_ratio(w, reference(d, e), d, e, dtype) <= C_GATE


# ----------------------------------------------------------- statistical


@pytest.mark.parametrize("dtype,count", [(np.float32, 30_000), (np.float64, 3_000)])
@pytest.mark.parametrize("family", ["normal", "uniform", "graded"])
def test_statistical(dtype, count, family):
    """Random matrices, n log-uniform in [2, 100], through the public
    eigvalsh_tridiagonal: every eigenvalue within 4 eps ||T||_1 of the
    float64 reference."""
    rng = np.random.default_rng([("normal", "uniform", "graded").index(family), np.dtype(dtype).itemsize])
    ns = np.clip(np.rint(np.exp(rng.uniform(np.log(1.5), np.log(100.5), count // 3))).astype(int), 2, 100)
    worst = 0.0
    for n, cnt in zip(*np.unique(ns, return_counts=True)):
        d, e = random_family(rng, family, int(cnt), int(n))
        d = d.astype(dtype)
        e = e.astype(dtype)
        w = tn.eigvalsh_tridiagonal(d, e)
        worst = max(worst, worst_ratio(w, reference(d, e), d, e, dtype))
    assert worst <= C_GATE, worst
