"""Accuracy of the core solver on the test-matrix catalogue.

Every test runs over (family, n) in ``conftest.CASES`` (n from 1 to 257:
Toeplitz(-1, 2, -1), Wilkinson W_n^+, glued Wilkinson, Clement, Jacobi
matrices of Legendre/Hermite/Laguerre, split matrices, the zero matrix,
random) x {float64, float32} x {1, big, small} scaling (1e+-150 for float64,
1e+-30 for float32).

Bounds, per matrix T of order n in the dtype's eps (LAPACK ``dstt21`` style):

* eigenvalues:  |w - w_ref| <= 4 n eps ||T||      (``C_EIG``)
* residuals:    ||T v_j - w_j v_j||_2 <= 10 n eps ||T||   (``C_RES``)
* orthogonality: max |V^T V - I| <= 10 n eps       (``C_ORTH``)
* isolated vectors (gap_j > 1e-3 ||T||) against LAPACK dstein's:
  ||v_j - v_ref_j||_inf <= 20 n eps ||T|| / gap_j

References: LAPACK dstebz/dstein (via scipy) in float64 on the exact (upcast)
matrix, closed forms (Toeplitz, Clement, split Clement, Gauss nodes from
scipy.special), and numpy.linalg.eigvalsh of the dense matrix.
"""

import contextlib

import numpy as np
import pytest

import tridiag_numba as tn
from conftest import (
    C_EIG,
    C_ORTH,
    C_RES,
    assert_eigenvalues,
    assert_eigenvectors,
    assert_sign_convention,
    assert_vectors_match,
    dense_eigvalsh,
    min_gaps,
    orthogonality,
    ref_eigh,
    ref_stein,
    residuals,
    tnorm,
)
from tridiag_numba._layout import INFO_VEC_REDO
from tridiag_numba.matrices import clement, glued_wilkinson, random_batch, toeplitz_121


def _index_range(n):
    """A middle block of indices (il, iu), inclusive, cutting through clusters."""
    il = n // 3
    iu = min(n - 1, il + max(0, n // 3))
    return il, iu


def test_eigvalsh_all(case):
    """All eigenvalues vs scipy (float64), the dense solver and closed forms."""
    w = tn.eigvalsh_tridiagonal(case.d, case.e)
    assert w.dtype == case.dtype and w.shape == (case.n,)
    assert_eigenvalues(w, case.w_ref, case.d, case.e, case.dtype, what="vs scipy")
    if case.exact is not None:
        assert_eigenvalues(w, case.exact, case.d, case.e, case.dtype,
                           what="vs closed form")
    if case.scale == "x1":
        assert_eigenvalues(w, dense_eigvalsh(case.d, case.e), case.d, case.e,
                           case.dtype, what="vs numpy dense eigvalsh")


def test_eigh_all(case):
    """All eigenpairs: eigenvalues, residual, orthogonality, sign convention."""
    w, v = tn.eigh_tridiagonal(case.d, case.e)
    assert w.dtype == v.dtype == case.dtype
    assert v.shape == (case.n, case.n)
    assert_eigenvalues(w, case.w_ref, case.d, case.e, case.dtype)
    assert_eigenvectors(case.d, case.e, w, v, case.dtype)
    assert_sign_convention(v, case.dtype)


def test_eigh_index_range(case):
    """select='i' over a middle block (through glued-Wilkinson clusters and
    the repeated eigenvalues of split matrices): eigenvalues equal the
    reference slice; residual and orthogonality within the computed range."""
    il, iu = _index_range(case.n)
    w, v = tn.eigh_tridiagonal(case.d, case.e, select="i", select_range=(il, iu))
    assert w.shape == (iu - il + 1,) and v.shape == (case.n, iu - il + 1)
    assert_eigenvalues(w, case.w_ref[il : iu + 1], case.d, case.e, case.dtype)
    assert_eigenvectors(case.d, case.e, w, v, case.dtype)
    assert_sign_convention(v, case.dtype)
    w_only = tn.eigvalsh_tridiagonal(case.d, case.e, select="i",
                                     select_range=(il, iu))
    assert_eigenvalues(w_only, case.w_ref[il : iu + 1], case.d, case.e, case.dtype)


def _value_range(w_ref, norm):
    """(lo, hi] with both ends in the widest gaps of the lower / upper half of
    the spectrum (or outside it), so the count is well defined."""
    n = w_ref.size
    pad = 0.5 * norm + 1.0 * (norm == 0)
    ext = np.concatenate([[w_ref[0] - pad], w_ref, [w_ref[-1] + pad]])
    gaps = np.diff(ext)  # gap i lies between ext[i] and ext[i+1]
    half = (n + 1) // 2  # gaps[:half] and gaps[half:] are both non-empty
    i_lo = int(np.argmax(gaps[:half]))
    i_hi = half + int(np.argmax(gaps[half:]))
    lo = 0.5 * (ext[i_lo] + ext[i_lo + 1])
    hi = 0.5 * (ext[i_hi] + ext[i_hi + 1])
    count = i_hi - i_lo
    return lo, hi, i_lo, count


def test_eigh_value_range(case):
    """select='v' with (lo, hi] in wide gaps: the count is exact and the
    eigenpairs meet the eigenvalue/residual/orthogonality bounds."""
    lo, hi, first, count = _value_range(case.w_ref, case.norm)
    lo, hi = np.asarray([lo, hi]).astype(case.dtype)
    w, v = tn.eigh_tridiagonal(case.d, case.e, select="v", select_range=(lo, hi))
    assert w.shape == (count,), f"got {w.size} eigenvalues in ({lo}, {hi}], want {count}"
    assert_eigenvalues(w, case.w_ref[first : first + count], case.d, case.e, case.dtype)
    assert_eigenvectors(case.d, case.e, w, v, case.dtype)


def test_kth_eigenvalue_every_k(case):
    """kth_eigenvalue for every k at once (k broadcast over a single matrix),
    from the bottom and (negative k) from the top, vs scipy and closed forms."""
    k = np.arange(case.n)
    w = tn.kth_eigenvalue(case.d, case.e, k)
    assert w.shape == (case.n,) and w.dtype == case.dtype
    assert_eigenvalues(w, case.w_ref, case.d, case.e, case.dtype)
    if case.exact is not None:
        assert_eigenvalues(w, case.exact, case.d, case.e, case.dtype,
                           what="vs closed form")
    w_top = tn.kth_eigenvalue(case.d, case.e, -1 - k)
    assert_eigenvalues(w_top, case.w_ref[::-1], case.d, case.e, case.dtype,
                       what="negative k")


def test_kth_eigenpair(case):
    """kth_eigenpair for the smallest, middle and largest eigenpair:
    eigenvalue bound, residual, unit norm, sign convention, and agreement
    with LAPACK dstebz+dstein (scipy select='i') where the eigenvalue is
    isolated."""
    n = case.n
    ks = np.unique([0, n // 2, n - 1])
    w, v = tn.kth_eigenpair(case.d, case.e, ks)
    assert w.shape == ks.shape and v.shape == ks.shape + (n,)
    assert w.dtype == v.dtype == case.dtype
    assert_eigenvalues(w, case.w_ref[ks], case.d, case.e, case.dtype)
    vt = np.swapaxes(v, -1, -2)  # columns, for the shared helpers
    # a single vector per k: orthogonality reduces to the unit norm
    for j in range(ks.size):
        assert_eigenvectors(case.d, case.e, w[j : j + 1], vt[:, j : j + 1], case.dtype)
    assert_sign_convention(vt, case.dtype)
    # agreement with dstein, k by k (dstein computes the reference vector of
    # eigenvalue k alone; closeness depends on the gap of w_k to the rest)
    gaps = min_gaps(case.w_ref)[ks]
    for j, k in enumerate(ks):
        _, v_s = ref_stein(case.d, case.e, k, k)
        assert_vectors_match(vt[:, j : j + 1], v_s, gaps[j : j + 1], case.d,
                             case.e, case.dtype)


def test_eigh_vectors_match_dstein(case):
    """eigh_tridiagonal vectors vs scipy's select='i' (dstebz + dstein, the
    same sign convention) for all isolated eigenvalues."""
    w, v = tn.eigh_tridiagonal(case.d, case.e)
    _, v_s = ref_stein(case.d, case.e, 0, case.n - 1)
    assert_vectors_match(v, v_s, min_gaps(case.w_ref), case.d, case.e, case.dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_glued_wilkinson_clusters_batch(dtype):
    """A batch of glued Wilkinson matrices with glue from 1e-14 to 1e-2
    (clusters from below eps to well separated) in one call: every matrix
    meets the residual/orthogonality bounds with all 10*21 vectors."""
    glues = [1e-14, 1e-10, 1e-6, 1e-2]
    pairs = [glued_wilkinson(10, glue=g) for g in glues]
    d = np.stack([p[0] for p in pairs]).astype(dtype)
    e = np.stack([p[1] for p in pairs]).astype(dtype)
    w, v = tn.eigh_tridiagonal(d, e)
    assert w.shape == (4, 210) and v.shape == (4, 210, 210)
    assert_eigenvalues(w, ref_eigh(d, e, eigvals_only=True), d, e, dtype)
    assert_eigenvectors(d, e, w, v, dtype)


EXTREME_SCALES = [
    pytest.param(np.float64, 1e-310, id="float64-subnormal"),
    pytest.param(np.float64, 2.0**-1070, id="float64-deep-subnormal"),
    pytest.param(np.float64, 1e307, id="float64-near-overflow"),
    pytest.param(np.float32, 1e-41, id="float32-subnormal"),
    pytest.param(np.float32, 1e37, id="float32-near-overflow"),
]


@pytest.mark.parametrize("dtype,scale", EXTREME_SCALES)
@pytest.mark.parametrize("family", ["toeplitz", "clement", "random"])
def test_extreme_scales(family, dtype, scale):
    """Matrices whose entries are subnormal or within a factor ~10 of
    overflow (LAPACK scales these into range before bisection):

    |w - w_ref| <= 4 n (eps ||T|| + denorm_min), and, after an exact
    power-of-two rescaling of T and w, residual <= 10 n eps ||T|| plus the
    eigenvalue's own rounding, orthogonality <= 10 n eps.
    """
    gen = {"toeplitz": lambda: toeplitz_121(9), "clement": lambda: clement(9),
           "random": lambda: random_batch((), 9, seed=5)}[family]
    d0, e0 = gen()
    d = (d0 * scale).astype(dtype)
    e = (e0 * scale).astype(dtype)
    n = d.size
    eps = np.finfo(dtype).eps
    denorm = float(np.finfo(dtype).smallest_subnormal)
    w, v = tn.eigh_tridiagonal(d, e)
    w_ref = ref_eigh(d, e, eigvals_only=True)
    err_w = C_EIG * n * (eps * tnorm(d, e) + denorm)
    assert np.all(np.abs(w.astype(np.float64) - w_ref) <= err_w), (w, w_ref)
    for k in (0, n // 2, -1):
        assert abs(float(tn.kth_eigenvalue(d, e, k)) - w_ref[k]) <= err_w
    # rescale exactly by a power of two so that ||T|| ~ 1
    p = -int(np.round(np.log2(tnorm(d, e))))
    ds, es, ws = (np.ldexp(np.asarray(a, dtype=np.float64), p) for a in (d, e, w))
    res = residuals(ds, es, ws, v).max()
    assert res <= np.ldexp(C_RES * n * eps * tnorm(d, e) + err_w, p)
    assert orthogonality(v) <= C_ORTH * n * eps


def _split_cluster(n, pos, delta, big_block):
    d = np.zeros(n)
    d[pos] = delta
    e = np.zeros(n - 1)
    if big_block:
        e[-1] = -127.0  # a [[0, -127], [-127, 0]] block at the end
    else:
        d[-1] = 100.0  # diagonal matrix
    return d, e


@pytest.mark.parametrize(
    "n,pos,delta,big_block",
    [(7, 3, 1.1920929e-07, True), (10, 5, 1.1920929e-07, True),
     (23, 15, 1.1920929e-07, True), (8, 5, 1e-9, True),
     (5, 3, 1e-7, False), (7, 5, 1e-7, False)],
)
def test_split_zero_cluster_with_near_eigenvalue(n, pos, delta, big_block):
    """Exact zeros in e (down to a diagonal matrix): a multiple zero
    eigenvalue, one eigenvalue delta far below 1e-3 ||T|| from it (one
    cluster for dstein's Gram-Schmidt) and a large block or entry (found by
    hypothesis). Every vector must be an eigenvector, not just an
    orthonormal basis of the cluster's space:
    residual <= 10 n eps ||T||, orthogonality <= 10 n eps."""
    d, e = _split_cluster(n, pos, delta, big_block)
    w, v = tn.eigh_tridiagonal(d, e)
    assert_eigenvalues(w, ref_eigh(d, e, eigvals_only=True), d, e, np.float64)
    assert_eigenvectors(d, e, w, v, np.float64)
    wk, vk = tn.kth_eigenpair(d, e, np.arange(n))
    assert_eigenvectors(d, e, wk[None], vk.T[None], np.float64, c_orth=np.inf)


def test_tiny_diagonal_entry_in_block():
    """A diagonal entry near 1e-160 at the start of a block (found by
    hypothesis): LAPACK's QR path (dsterf, behind scipy's default driver and
    numpy.linalg.eigvalsh) returns 2.30762 for the top eigenvalue, bisection
    (dstebz) and 50-digit arithmetic give 2.3072503713482153. The eigenvalue
    bound is against dstebz; the top eigenvalue against the 50-digit value."""
    d = np.zeros(11)
    d[4] = 2.45505489e-161
    e = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2.11990198e-161])
    w, v = tn.eigh_tridiagonal(d, e)
    assert_eigenvalues(w, ref_eigh(d, e, eigvals_only=True), d, e, np.float64)
    assert abs(w[-1] - 2.3072503713482153486) <= C_EIG * 11 * np.finfo(float).eps * 3
    assert_eigenvectors(d, e, w, v, np.float64)


def test_normal_quantile_of_first_shift():
    """The first shift of every lane is a normal quantile (Acklam's rational
    approximation); it only places a shift, but a wrong branch or coefficient
    would cost iterations silently (a mistyped tail coefficient here once gave
    6e-6).  Bound: Acklam's relative error 1.15e-9."""
    from scipy.special import ndtr, ndtri

    from tridiag_numba._kernels import _norm_cdf, _norm_ppf

    p = np.concatenate([np.logspace(-12, -1, 60), np.linspace(0.01, 0.99, 99), 1 - np.logspace(-12, -1, 60)])
    got = np.array([_norm_ppf(pi) for pi in p])
    np.testing.assert_allclose(got, ndtri(p), rtol=1.2e-9, atol=1e-14)
    z = np.linspace(-8, 8, 33)
    np.testing.assert_allclose([_norm_cdf(zi) for zi in z], ndtr(z), rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize(
    "spectrum",
    ["scalar", "two_far_clusters", "one_outlier", "geometric"],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kth_eigenvalue_far_from_normal_spectrum(spectrum, dtype):
    """Spectra the normal model of the first shift fits badly -- all equal
    (variance 0), two clusters 1e6 apart (the model's quantiles fall in the
    gap), one huge outlier, geometric decay over 12 decades -- still meet the
    eigenvalue bound for every k, in a batch with well-behaved matrices."""
    n = 60
    rng = np.random.default_rng(7)
    e = 1e-3 * rng.standard_normal(n - 1)
    if spectrum == "scalar":
        d, e = np.full(n, 3.0), np.zeros(n - 1)
    elif spectrum == "two_far_clusters":
        d = np.where(np.arange(n) < n // 2, 0.0, 1e6) + rng.standard_normal(n)
    elif spectrum == "one_outlier":
        d = rng.standard_normal(n)
        d[n // 3] = 1e8
    else:
        d = np.logspace(0, -12, n)
        e = 1e-14 * np.ones(n - 1)
    d, e = d.astype(dtype), e.astype(dtype)
    dd = np.stack([d, rng.standard_normal(n).astype(dtype)])
    ee = np.stack([e, rng.standard_normal(n - 1).astype(dtype)])
    k = np.arange(n)
    w = tn.kth_eigenvalue(dd[:, None, :], ee[:, None, :], k[None, :])
    for b in range(2):
        assert_eigenvalues(w[b], ref_eigh(dd[b], ee[b], eigvals_only=True), dd[b], ee[b], dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scale_exponent_bit_patterns(dtype):
    """The kernels' scale exponent (an integer max over bit patterns) equals
    frexp(max|T|) of numpy, flags NaN/inf, and handles zero and subnormal
    maxima: it decides every matrix's scaling, so it must be exact."""
    from numba import njit

    import tridiag_numba._kernels as K

    scale_exponent = njit(lambda d, e: K._scale_exponent(d, e, 0))
    fi = np.finfo(dtype)
    specials = [0.0, fi.tiny, fi.tiny / 8, fi.smallest_subnormal, fi.max, -fi.max, 0.5, 0.75,
                -1.0, np.nan, np.inf, -np.inf, -fi.tiny / 3]
    rng = np.random.default_rng(7)
    for _ in range(2000):
        n = int(rng.integers(2, 9))
        with np.errstate(over="ignore"):
            d = (rng.standard_normal(n) * 10.0 ** rng.integers(-40, 40)).astype(dtype)
            e = (rng.standard_normal(n - 1) * 10.0 ** rng.integers(-40, 40)).astype(dtype)
        for a in (d, e):
            if rng.random() < 0.5:
                a[rng.integers(a.size)] = specials[rng.integers(len(specials))]
        if rng.random() < 0.1:
            d[:] = 0
            e[:] = 0
        both = np.concatenate([d, e])
        if not np.isfinite(both).all():
            want = (0, False, False)
        elif not both.any():
            want = (0, True, True)
        else:
            want = (int(np.frexp(np.abs(both).max())[1]), True, False)
        got = scale_exponent(d[None, :], e[None, :])
        assert tuple(got) == want, (d, e, got, want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sturm_pass_intrinsics_match_scalar_steps(dtype):
    """The two LLVM-IR Sturm passes (all LANES slots as vectors, and the
    gather of up to 16 (slot, shift) lanes) are bit-identical to the scalar step
    ``_sturm_step``: counts, Laguerre sums and final pivots, including exact
    zero pivots (replaced by -pivmin), NaN shifts and idle zero slots."""
    from numba import njit

    import tridiag_numba._kernels as K

    @njit
    def scalar_pass(db, e2b, x, pivmin, st, act, nact):
        st[:, :] = 0
        for i in range(db.shape[0]):
            for t in range(nact):
                K._sturm_step(db, e2b, x, pivmin, st, i, act[t])

    full = njit(lambda db, e2b, x, pivmin, st: K._sturm_pass_simd(db, e2b, x, pivmin, st))
    gather = njit(lambda db, e2b, xg, pivmin, stg, act, nact: K._sturm_pass_gather(db, e2b, xg, pivmin, stg, act, nact))
    rng = np.random.default_rng(11)
    pivmin = dtype(np.finfo(dtype).tiny)
    for n in (1, 2, 7, 100):
        db = np.zeros((n, K.ROW), dtype)
        e2b = np.zeros((n, K.ROW), dtype)
        db[:, :27] = rng.standard_normal((n, 27)) / 4
        e2b[1:, :27] = (rng.standard_normal((n - 1, 27)) / 4) ** 2
        x = np.zeros(K.LANES, dtype)
        x[:27] = rng.standard_normal(27) / 4
        x[3] = db[0, 3]  # exact zero first pivot
        x[5] = np.nan
        x[6] = db[0, 6] + np.sqrt(e2b[min(1, n - 1), 6]) if n > 1 else x[6]
        want = np.zeros((6, K.LANES), dtype)
        scalar_pass(db, e2b, x, pivmin, want, np.arange(K.LANES), K.LANES)
        got = np.full((6, K.LANES), 7, dtype)
        full(db, e2b, x, pivmin, got)
        np.testing.assert_array_equal(got, want, err_msg=f"full pass, n = {n}")
        # Gathered lanes: slot act[t] at shift xg[t], state into column t;
        # a slot may come twice (the end game's pair of shifts).
        x_other = rng.standard_normal(K.LANES).astype(dtype) / 4
        want2 = np.zeros((6, K.LANES), dtype)
        scalar_pass(db, e2b, x_other, pivmin, want2, np.arange(K.LANES), K.LANES)
        for nact in (1, 5, 8, 9, 16):
            act = rng.choice(K.LANES, nact, replace=False).astype(np.int64)
            twice = rng.random(nact) < 0.3
            act[twice] = act[0]
            xg = np.zeros(2 * K._VEC, dtype)
            xg[:nact] = np.where(twice, x_other[act], x[act])
            stg = np.full((6, 2 * K._VEC), 7, dtype)
            gather(db, e2b, xg, pivmin, stg, np.concatenate([act, np.zeros(K.LANES - nact, np.int64)]), nact)
            expect = np.where(twice, want2[:, act], want[:, act])
            np.testing.assert_array_equal(stg[:, :nact], expect, err_msg=f"gather of {nact}, n = {n}")
            assert (stg[:, nact:] == 7).all(), "gather wrote a lane past nact"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 2, 9, 100])
def test_block_moments_matches_row_loops(dtype, n):
    """``_block_moments`` (LLVM IR, accumulators in registers) gives, bit for
    bit, what row-by-row loops in the dtype's arithmetic give: Gershgorin
    bounds, sum d, sum d**2, sum e**2 (float64 sums), e**2 flushed to zero
    below safemin and then split as dstebz splits (``_split_e2``), and the
    slots with a 1x1 block -- including idle zero slots, tiny entries and
    splits (whole, at the ends, next to each other)."""
    from numba import njit

    import tridiag_numba._kernels as K

    moments = njit(lambda db, e2b, acc, safemin, eps, single: K._block_moments(db, e2b, acc, safemin, eps, single))
    rng = np.random.default_rng(5)
    safemin = float(np.finfo(dtype).tiny)
    eps = float(np.finfo(dtype).eps)
    db = np.zeros((n, K.ROW), dtype)
    e2b = np.zeros((n, K.ROW), dtype)
    db[:, :29] = rng.standard_normal((n, 29)) / 2
    e2b[1:, :29] = np.abs(rng.standard_normal((n - 1, 29)) / 2)
    if n > 2:
        e2b[2, 4] = np.sqrt(safemin) / 4  # its square is flushed
        e2b[1:, 5] = 1e-3 * eps  # every row splits: all 1x1 blocks
        e2b[n - 1, 6] = 1e-3 * eps  # the last row is a 1x1 block
        e2b[1, 7] = 1e-3 * eps  # the first row is a 1x1 block
        db[3, 8] = 0.0  # d = 0 next to e: the test's threshold is safemin alone
        e2b[3, 8] = np.sqrt(safemin) * 2  # kept: its square is above safemin
        e2b[4, 8] = 0.0
        db[:, 9] = 1e4
        e2b[2, 9] = 0.5 * 1e4 * eps  # split: e**2 < eps**2 |d d| (relative test)
        e2b[3, 9] = 2.0 * 1e4 * eps  # kept
        db[3:5, 10] = np.sqrt(safemin) / eps  # eps**2 |d d| = safemin: the safemin term decides
        e2b[4, 10] = np.sqrt(1.5 * safemin)  # not flushed, but split
    want_e = e2b.copy()
    gl = np.full(K.LANES, np.inf)
    gu = np.full(K.LANES, -np.inf)
    sums = np.zeros((3, K.LANES))
    for i in range(n):
        di = db[i, : K.LANES]
        ep = e2b[i, : K.LANES]
        rad = ep + (e2b[i + 1, : K.LANES] if i < n - 1 else dtype(0))
        a = (di - rad).astype(np.float64)
        c = (di + rad).astype(np.float64)
        gl = np.where(a < gl, a, gl)
        gu = np.where(c > gu, c, gu)
        sums[0] += di
        sums[1] += (di * di).astype(np.float64)
        e2 = ep * ep
        sums[2] += e2
        want_e[i, : K.LANES] = np.where(e2.astype(np.float64) >= safemin, e2, dtype(0))
    # The splits and 1x1 blocks, as the numba loops computed them (_split_e2 in
    # the dtype's arithmetic; row 0 stays zero).
    eps2, tiny = dtype(eps * eps), dtype(safemin)
    single = np.zeros(K.LANES, np.int64)
    with np.errstate(invalid="ignore"):
        for i in range(1, n):
            e2 = want_e[i, : K.LANES]
            thr = eps2 * np.abs(db[i - 1, : K.LANES] * db[i, : K.LANES]) + tiny
            want_e[i, : K.LANES] = np.where(e2 >= thr, e2, e2 - e2)
    for i in range(1, n):
        single |= (want_e[i - 1, : K.LANES] == 0) & (want_e[i, : K.LANES] == 0)
    single |= want_e[n - 1, : K.LANES] == 0
    if n > 2:
        assert single[5:8].all() and not single[9] and (want_e[1:, 5] == 0).all(), "the cases above"
        assert want_e[2, 9] == 0 and want_e[3, 9] > 0 and want_e[3, 8] > 0 and want_e[4, 10] == 0
    acc = np.full((5, K.LANES), 7.0)
    got_single = np.full(K.LANES, 7, np.int64)
    got_e = e2b.copy()
    moments(db, got_e, acc, safemin, eps, got_single)
    np.testing.assert_array_equal(acc[0], gl)
    np.testing.assert_array_equal(acc[1], gu)
    np.testing.assert_array_equal(acc[2:], sums)
    np.testing.assert_array_equal(got_e[:, : K.LANES], want_e[:, : K.LANES])
    np.testing.assert_array_equal(got_e[:, K.LANES :], e2b[:, K.LANES :])
    np.testing.assert_array_equal(got_single, single)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 16, 45, 100])
@pytest.mark.parametrize("busy", [1, 8, 25, 32])
def test_scaled_transpose_matches_column_loops(dtype, n, busy):
    """``_scaled_transpose`` (LLVM IR, 8 x 8 tiles transposed in registers)
    writes, bit for bit, what the plain column loops wrote: per busy slot
    ``T(x * ma * mb)`` of its matrix's diagonal into rows 0..n-1 and the
    absolute value of its off-diagonal into rows 1..n-1, ``+0.0`` in idle
    slots (over NaN garbage), nothing past the rows and lanes it owns --
    for orders below, at and between multiples of 8, busy slots scattered
    among idle ones, matrices in any order, and scale pairs whose product
    is subnormal or huge (float32 widened for the products, as numba does)."""
    from numba import njit

    import tridiag_numba._kernels as K

    copy = njit(lambda src, lane_b, job, scale, dst, first, count: K._scaled_transpose(src, lane_b, job, scale, dst, first, count))
    rng = np.random.default_rng(n * 100 + busy)
    B = 40
    d = (rng.standard_normal((B, n)) * 3.0).astype(dtype)
    e = (rng.standard_normal((B, n - 1)) * 1e-3).astype(dtype)
    d[1, :] = -0.0  # a signed zero stays signed in a busy slot
    lane_b = rng.permutation(B).astype(np.int64)
    job = np.full(K.LANES, -1, np.int64)
    job[rng.choice(K.LANES, busy, replace=False)] = rng.choice(B, busy, replace=False)
    scale = np.full((2, K.ROW), np.nan)
    expo = rng.integers(-60, 60, K.LANES)
    scale[0, : K.LANES] = np.ldexp(1.0, -(expo // 2))
    scale[1, : K.LANES] = np.ldexp(1.0, (expo // 2) - expo)
    scale[:, 3] = (2.0**-600, 2.0**-600)  # the product underflows in float32 and float64
    scale[:, 4] = (2.0**100, 2.0**100)  # overflows float32
    db = np.full((n + 2, K.ROW), np.nan, dtype)
    e2b = np.full((n + 2, K.ROW), np.nan, dtype)
    want_d, want_e = db.copy(), e2b.copy()
    T = np.dtype(dtype).type
    with np.errstate(over="ignore", under="ignore"):
        for l in range(K.LANES):
            ma, mb = scale[0, l], scale[1, l]
            if job[l] < 0:
                want_d[:n, l] = T(0.0)
                want_e[1:n, l] = T(0.0)
                continue
            b = lane_b[job[l]]
            for i in range(n):
                want_d[i, l] = T(np.float64(d[b, i]) * ma * mb)
            for i in range(n - 1):
                want_e[i + 1, l] = abs(T(np.float64(e[b, i]) * ma * mb))
    copy(d, lane_b, job, scale, db, 0, n)
    copy(e, lane_b, job, scale, e2b, 1, n - 1)
    np.testing.assert_array_equal(db, want_d)
    np.testing.assert_array_equal(e2b, want_e)
    np.testing.assert_array_equal(np.signbit(db[:n, : K.LANES]), np.signbit(want_d[:n, : K.LANES]))



@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 45, 100])
def test_transpose_lanes_matches_lane_loops(dtype, n):
    """``_transpose_lanes`` (the eigenvector lanes' raw copy, LLVM IR) writes,
    bit for bit, what the plain loops wrote: ``float64(src[rows[l], i])`` for
    ``rows[l] >= 0``, ``fill[l]`` otherwise, rows 0..count-1 and lanes
    0..LANES-1 only; also with a matrix in several lanes (the all-eigenpairs
    route's jobs) and ``dst`` of ``src``'s dtype."""
    from numba import njit

    import tridiag_numba._kernels as K

    copy = njit(lambda src, rows, fill, dst, count: K._transpose_lanes(src, rows, fill, dst, count))
    rng = np.random.default_rng(n)
    src = rng.standard_normal((12, n)).astype(dtype)
    src[3] = -0.0
    rows = rng.integers(0, 12, K.LANES).astype(np.int64)
    rows[rng.choice(K.LANES, 9, replace=False)] = -1
    rows[5] = -2
    rows[:4] = 7  # one matrix in several lanes
    fill = np.where(rows == -1, 1.0, 0.0)
    for out_dtype in {np.float64, dtype}:
        dst = np.full((n + 1, K.ROW), np.nan, out_dtype)
        want = dst.copy()
        for l in range(K.LANES):
            for i in range(n):
                want[i, l] = src[rows[l], i] if rows[l] >= 0 else fill[l]
        copy(src, rows, fill, dst, n)
        np.testing.assert_array_equal(dst, want)
        np.testing.assert_array_equal(np.signbit(dst[:n, : K.LANES]), np.signbit(want[:n, : K.LANES]))


def _plain_eigvec_lanes(d, e, ws, ks, eps):
    """The lane kernel's inverse iteration written plainly, one loop per
    operation and all lanes at once in numpy: power-of-two scaling, dm = d -
    w, the 1-norm, LU with partial pivoting (dlagtf), pivots perturbed to
    eps ||T||_1, two solves (dlagts) of the scaled iterate, normalisation
    with the largest entry positive.  Sums run row by row (numpy's pairwise
    sum would round differently).  Returns the vectors (n, lanes), float64,
    and which lanes pass dstein's growth test after the first solve (the
    kernel redoes the others with the full dstein loop)."""
    from numba import njit

    import tridiag_numba._kernels as K

    start = njit(lambda col, seed: K._start_vector(col, seed))
    m, n = d.shape
    ex = np.frexp(np.abs(np.concatenate([d, e], axis=1)).max(axis=1))[1]
    h = ex // 2
    ma, mb = np.ldexp(1.0, -h), np.ldexp(1.0, h - ex)
    di = d.T.astype(np.float64) * ma * mb
    ei = np.vstack([e.T.astype(np.float64) * ma * mb, np.zeros((1, m))])
    eprev = np.vstack([np.zeros((1, m)), ei[:-1]])
    nrm1 = (np.abs(di) + np.abs(ei) + np.abs(eprev)).max(axis=0)
    nrm1 = np.where(nrm1 > 0, nrm1, 1.0)
    dm = di - ws
    mult, swap, u1, u2, piv = (np.zeros((n, m)) for _ in range(5))
    a, b = dm[0].copy(), ei[0].copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(n - 1):
            c, a1, b1 = ei[k], dm[k + 1], ei[k + 1]
            sw = np.abs(a) < np.abs(c)
            den, num = np.where(sw, c, a), np.where(sw, a, c)
            mult[k] = np.where(num != 0, num / den, 0.0)
            swap[k], u1[k], u2[k], piv[k] = sw, np.where(sw, a1, b), np.where(sw, b1, 0.0), den
            a, b = np.where(sw, b - mult[k] * a1, a1 - mult[k] * b), np.where(sw, -mult[k] * b1, b1)
        piv[n - 1] = a
    tol = eps * nrm1
    piv = np.where(np.abs(piv) >= tol, piv, np.where(piv >= 0, tol, -tol))
    y = np.empty((n, m))
    col = np.empty(n)
    for j, k in enumerate(ks):
        start(col, k)
        y[:, j] = col
    for solve in range(2):
        acc = np.zeros(m)
        for i in range(n):
            acc += np.abs(y[i])
        y *= np.where(acc > 0, n * nrm1 * np.maximum(eps, np.abs(piv[n - 1])) / np.where(acc > 0, acc, 1), 0.0)
        for k in range(n - 1):
            yk, yk1 = y[k].copy(), y[k + 1].copy()
            y[k] = np.where(swap[k] != 0, yk1, yk)
            y[k + 1] = np.where(swap[k] != 0, yk - mult[k] * yk1, yk1 - mult[k] * yk)
        y[n - 1] = y[n - 1] * (1.0 / piv[n - 1])
        y[n - 2] = (y[n - 2] - u1[n - 2] * y[n - 1]) * (1.0 / piv[n - 2])
        for k in range(n - 3, -1, -1):
            y[k] = (y[k] - u1[k] * y[k + 1] - u2[k] * y[k + 2]) * (1.0 / piv[k])
        if solve == 0:
            grew = np.abs(y).max(axis=0) >= np.sqrt(0.1 / n)
    nrm2 = np.zeros(m)
    for i in range(n):
        nrm2 += y[i] * y[i]
    jmax = np.abs(y).argmax(axis=0)
    scl = 1.0 / np.sqrt(nrm2)
    return y * np.where(y[jmax, np.arange(m)] < 0, -scl, scl), grew


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [2, 3, 17, 100])
def test_eigvec_lanes_match_plain_steps(dtype, n):
    """The eigenvector lanes (``_eigvec_block``: fused sweeps, matrices loaded
    eight lanes at a time, start vectors and their norms shared by lanes
    with the same k) give, bit for bit, what the plain one-loop-per-operation
    algorithm gives (:func:`_plain_eigvec_lanes`): for a full block and a
    part-filled one, k the same for most lanes and different for some."""
    import tridiag_numba._kernels as K
    from tridiag_numba._api import _consts

    rng = np.random.default_rng(11 + n)
    eps, tiny = _consts(np.dtype(dtype))
    for m in (K.LANES, 13):
        d = (rng.standard_normal((m, n)) * 3).astype(dtype)
        e = (rng.uniform(0.5, 2.0, (m, n - 1)) * rng.choice([-1, 1], (m, n - 1))).astype(dtype)
        ks = np.full(m, n // 2, np.int64)
        ks[3::5] = rng.integers(0, n, ks[3::5].size)
        w = tn.kth_eigenvalue(d, e, ks)
        _, ws, info = (np.empty(m, dtype), np.empty(m, dtype), np.empty(m, np.int32))
        K.kth_eigenvalues_serial(d, e, np.arange(m), ks, 0.0, eps, tiny, m, np.empty(m, dtype), ws, info)
        v = np.full((m, n, 1), np.nan, dtype)
        vinfo = np.full(m, 7, np.int32)
        K.eigenvector1_serial(d, e, ws.reshape(m, 1), ks.reshape(m, 1), eps, tiny, v, vinfo)
        want, grew = _plain_eigvec_lanes(d, e, ws.astype(np.float64), ks, eps)
        # Lanes the lane path cannot finish are left to the numpy layer (INFO_VEC_REDO).
        assert np.isin(vinfo, (0, INFO_VEC_REDO)).all() and (vinfo[grew] == 0).all() and np.isfinite(w).all()
        assert grew.sum() >= m // 2, "most lanes take the lane path"
        np.testing.assert_array_equal(v[grew, :, 0], want.T[grew].astype(dtype), err_msg=f"m = {m}")


# ------------------------------------------------- lanes redone by the dstein loop


def _plain_loop_vector(d, e, ws, k):
    """One matrix's vector by the full dstein loop (``_inverse_iteration``), what the lane
    kernels ran themselves for a lane they could not finish until they left it to the numpy layer."""
    import tridiag_numba._kernels as K
    from tridiag_numba._api import _consts

    n = d.shape[0]
    eps, tiny = _consts(d.dtype)
    v = np.full((1, n, 1), np.nan, d.dtype)
    info = np.full(1, 7, np.int32)
    K.eigenvectors_serial(d[None].copy(), e[None].copy(), np.array([[ws]], d.dtype), np.array([[k]], np.int64),
                          np.ones(1, np.int64), eps, tiny, v, info)
    return v[0, :, 0], int(info[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("route", ["kth_eigenpair", "eigenvector1"])
@pytest.mark.parametrize("serial", [False, True])
def test_redone_lanes_get_the_dstein_loop_vector(dtype, route, serial):
    """Lanes the lane inverse iteration leaves (a split, a slow start: 1-6 % of random
    matrices of order 2-16) get, bit for bit, the full dstein loop's vector of their own
    matrix, in their own row, through both kernels that run the lanes (the fused
    eigenpair kernel, and the vector kernel after the bisection), parallel and serial;
    and no INFO_VEC_REDO reaches the caller."""
    import tridiag_numba._api as A
    import tridiag_numba._kernels as K

    rng = np.random.default_rng(17)
    B, n = 400, 3
    d = rng.standard_normal((B, n)).astype(dtype)
    e = rng.standard_normal((B, n - 1)).astype(dtype)
    e[5, 1] = 0.0  # a split
    k = rng.integers(0, n, B)
    eps, tiny = A._consts(np.dtype(dtype))
    ws = np.empty(B, dtype)
    K.kth_eigenvalues_serial(d, e, np.arange(B), k, 0.0, eps, tiny, B, np.empty(B, dtype), ws, np.empty(B, np.int32))
    lane_v = np.full((B, n, 1), np.nan, dtype)
    lane_info = np.zeros(B, np.int32)
    K.eigenvector1_serial(d, e, ws.reshape(B, 1), k.reshape(B, 1), eps, tiny, lane_v, lane_info)
    redo = np.flatnonzero(lane_info == INFO_VEC_REDO)
    assert 5 in redo and redo.size >= 5, redo  # the test exercises the redo
    with A.serial_kernels() if serial else contextlib.nullcontext():
        if route == "kth_eigenpair":
            w, v = tn.kth_eigenpair(d, e, k)
        else:
            v, info = A._eigenvectors(d, e, ws.reshape(B, 1), k.reshape(B, 1), np.ones(B, np.int64), np.dtype(dtype))
            assert (info == 0).all()
            v = v[:, :, 0]
    for b in redo:
        want, info = _plain_loop_vector(d[b], e[b], ws[b], k[b])
        assert info == 0
        np.testing.assert_array_equal(v[b], want, err_msg=f"matrix {b}")
    others = np.setdiff1d(np.arange(B), redo)
    np.testing.assert_array_equal(v[others], lane_v[others, :, 0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_redo_kernels_parallel_and_serial_give_the_loop_vectors(dtype):
    """Both twins of the redo kernel, called directly on a batch whose every matrix
    splits (all lanes redone, enough work for the parallel twin), write exactly the
    rows asked for, each with the dstein loop's vector of its own matrix."""
    import tridiag_numba._api as A
    import tridiag_numba._kernels as K

    rng = np.random.default_rng(23)
    B, n = 300, 24
    d = rng.standard_normal((B, n)).astype(dtype)
    e = rng.standard_normal((B, n - 1)).astype(dtype)
    e[:, n // 2] = 0.0
    k = rng.integers(0, n, B)
    eps, tiny = A._consts(np.dtype(dtype))
    ws = np.empty(B, dtype)
    K.kth_eigenvalues_serial(d, e, np.arange(B), k, 0.0, eps, tiny, B, np.empty(B, dtype), ws, np.empty(B, np.int32))
    rows = np.arange(1, B, 2, dtype=np.int64)  # every other matrix: the others must stay untouched
    for kernel in (K.redo_vectors_serial, K.redo_vectors_parallel):
        v = np.full((B, n, 1), 7.0, dtype)
        info = np.full(B, 9, np.int32)
        kernel(d, e, ws.reshape(B, 1), k.reshape(B, 1), rows, eps, tiny, v, info)
        assert (v[::2] == 7.0).all() and (info[::2] == 9).all()
        assert (info[rows] == 0).all()
        for b in rows:
            np.testing.assert_array_equal(v[b, :, 0], _plain_loop_vector(d[b], e[b], ws[b], k[b])[0])
    # and through the API: every lane of the fused kernel redone
    w, v = tn.kth_eigenpair(d, e, k)
    for b in range(0, B, 7):
        np.testing.assert_array_equal(v[b], _plain_loop_vector(d[b], e[b], ws[b], k[b])[0])


def test_lane_kernels_do_not_call_the_dstein_loop():
    """The lane kernels leave the dstein loop to the numpy layer: compiled into them it
    was ~5 s of their first compile (issue 15), which most programs never need."""
    from tridiag_numba import _batch, _stein_lanes

    for func in (_stein_lanes._eigvec_block, _batch._kth_pair_chunk, _batch.eigenvector1_serial, _batch.kth_eigenpairs_serial):
        assert "_inverse_iteration" not in func.py_func.__code__.co_names, func  # the globals it calls
    assert "_inverse_iteration" in _batch.eigenvectors_serial.py_func.__code__.co_names  # (the check can fail)
    assert "_inverse_iteration" not in vars(_stein_lanes)
