"""Batched LAPACK drivers: all eigenvalues, all or many eigenpairs.

Bisection and inverse iteration (``_bisect.py``, ``_stein.py``) are the right tool for a
few eigenpairs per matrix; for all of them, or a large part of the
spectrum, LAPACK's dedicated algorithms do O(n^2) work or less with small
constants: ``sterf`` (root-free QR, eigenvalues only), ``stev`` (implicit
QL/QR), ``stevd`` (divide and conquer), ``stemr`` (MRRR, also for index
ranges) and ``stebz`` + ``stein`` (bisection + inverse iteration, LAPACK's
own, which scales O(n m^2) over clusters and needs O(n) memory).

The kernel here runs one of them per matrix of a batch, on all cores: the
batch is split into one contiguous chunk per thread, each chunk allocates
its LAPACK workspace once and reuses it for its matrices.  Like every
kernel of the package it never raises; it writes per-matrix ``info`` codes.

Output layout: eigenvectors of matrix ``b`` are written as LAPACK's
column-major ``Z`` (leading dimension n) into ``vt[b]`` of shape (m, n), so
``vt[b, j]`` is eigenvector j, contiguous; the numpy layer returns the view
``vt.swapaxes(-1, -2)`` of shape (..., n, m) -- no copy, and for one matrix
the same Fortran-ordered layout scipy returns.  Each vector's entry of
largest magnitude is made positive (LAPACK ``dstein``'s convention, which
the rest of the package follows).
"""

import math

import numpy as np
from numba import prange

from . import _lapack as L
from ._jit import kernel_inner, kernel_parallel, kernel_serial
from ._order import argsort_stable

#: Driver codes of the kernel.
STERF, STEV, STEVD, STEMR, STEBZ_STEIN = 0, 1, 2, 3, 4
DRIVER_CODES = {"sterf": STERF, "stev": STEV, "stevd": STEVD, "stemr": STEMR, "lapack_stebz": STEBZ_STEIN}

#: ``info`` codes (shared meaning with ``_kernels``: negative = non-finite).
INFO_OK = 0
INFO_NONFINITE = -1  # the matrix holds NaN/inf: outputs are NaN
INFO_NO_CONVERGENCE = 1  # LAPACK reported info > 0 for the eigenvalues
INFO_VEC_NO_CONVERGENCE = 2  # stein: some vectors did not converge
INFO_INTERNAL = 3  # LAPACK rejected an argument (a bug here, never the user's)
INFO_COUNT = 4  # the driver found fewer eigenvalues than the range holds

_V = np.int8(ord("V"))
_N = np.int8(ord("N"))
_A = np.int8(ord("A"))
_I = np.int8(ord("I"))
_B = np.int8(ord("B"))
_E = np.int8(ord("E"))


def workspace_sizes(driver, n, vectors):
    """(real, int) workspace lengths one thread needs for ``driver`` (LAPACK's
    documented minima), besides the copies of d and e."""
    if driver == STEVD:
        return (1 + 4 * n + n * n, 3 + 5 * n) if vectors else (1, 1)
    if driver == STEMR:
        return (18 * n, 10 * n + 2 * n) if vectors else (12 * n, 8 * n + 2 * n)
    if driver == STEV:
        return (max(1, 2 * n - 2), 1)
    if driver == STEBZ_STEIN:
        # stebz: work 4n, iwork 3n; stein: work 5n, iwork n, ifail m <= n;
        # plus w, iblock, isplit (n each).
        return (5 * n + n, 3 * n + 3 * n)
    return (1, 1)


@kernel_inner
def _finite(d, e):
    for x in d:
        if not math.isfinite(x):
            return False
    for x in e:
        if not math.isfinite(x):
            return False
    return True


@kernel_inner
def _fix_signs(vt, m):
    """Make the entry of largest magnitude of each vector ``vt[j]`` positive
    (the first such entry on ties), as LAPACK's dstein does."""
    n = vt.shape[1]
    for j in range(m):
        big = 0.0
        at = 0
        for i in range(n):
            a = abs(vt[j, i])
            if a > big:
                big = a
                at = i
        if vt[j, at] < 0:
            for i in range(n):
                vt[j, i] = -vt[j, i]


@kernel_inner
def _lapack_status(lapack_info, fail_code):
    if lapack_info == 0:
        return INFO_OK
    return fail_code if lapack_info > 0 else INFO_INTERNAL


@kernel_inner
def _pow2_scale(d, e):
    """Two powers of two s1, s2 with max|T| * s1 * s2 in [0.5, 1) (1, 1 for a
    zero matrix): scaling by them, one after the other, is exact and keeps
    e**2 in range.  Two factors, because for subnormal or near-overflow
    matrices 2**-exponent itself overflows or underflows."""
    big = 0.0
    for x in d:
        big = max(big, abs(x))
    for x in e:
        big = max(big, abs(x))
    if big == 0.0:
        return 1.0, 1.0
    ex = -math.frexp(big)[1]
    half = ex // 2
    return math.ldexp(1.0, half), math.ldexp(1.0, ex - half)


@kernel_inner
def _scaled_copy(d, e, dc, ec):
    """Copy ``s * d`` into ``dc`` and ``s * e`` into ``ec`` with s the power
    of two that puts max|T| in [0.5, 1) (exact), and zero the entries of e
    whose square would be subnormal (|e| < sqrt(safemin)); returns s as
    the pair of factors of _pow2_scale.

    Why: LAPACK's sterf (also behind stev/stevd without vectors) works on
    e**2, and a subnormal square wrecks it: d = 0, e = (..., 1e-158, 0.75)
    gave 0.7499999984 for the eigenvalue 0.75 (scipy's eigvalsh_tridiagonal
    returns the same wrong value).  Zeroing such an entry moves each
    eigenvalue by at most |e| < 1.5e-154 ||T|| (Weyl; float32: 1.1e-19
    ||T||), and after the scaling LAPACK's own rescaling never applies.
    """
    n = d.shape[0]
    s1, s2 = _pow2_scale(d, e)
    small = 1.0842021724855044e-19 if d.itemsize == 4 else 1.4916681462400413e-154
    for i in range(n):
        dc[i] = d[i] * s1 * s2
    for i in range(n - 1):
        x = e[i] * s1 * s2
        ec[i] = x if abs(x) >= small else 0.0
    return s1, s2


@kernel_inner
def _stebz_stein(n, d, e, dc, ec, il, iu, tol, vectors, wb, vtb, work, iwork, info1):
    """LAPACK bisection (+ inverse iteration) for eigenvalues il..iu-1
    (0-based) of the matrix ``d``/``e``; returns (status, number found).

    dstebz needs max|T| <= sqrt(overflow) * underflow**0.25 and loses
    accuracy to underflow in e**2 for tiny matrices: outside [2**-200,
    2**200] (float32: [2**-30, 2**30]) the matrix is scaled by a power of
    two into ``dc``/``ec``
    (exact); otherwise LAPACK reads ``d``/``e`` directly (neither routine
    writes them), which saves four passes over a big matrix."""
    s1, s2 = _pow2_scale(d, e)
    # float32: sqrt(overflow) * underflow**0.25 ~ 2**32, and e**2 underflows
    # below ~2**-63.  (s1 * s2 may over/underflow: then it is out of range.)
    limit = 2.0**30 if d.itemsize == 4 else 2.0**200
    if not 1.0 / limit <= s1 * s2 <= limit:
        for i in range(n):
            dc[i] = d[i] * s1 * s2
        for i in range(n - 1):
            ec[i] = e[i] * s1 * s2
        d = dc[:n]
        e = ec[: n - 1]
    else:
        s1 = s2 = 1.0
    ws = work[:n]
    wk = work[n:]
    iblock = iwork[:n]
    isplit = iwork[n : 2 * n]
    iw = iwork[2 * n :]
    mout = info1[1:2]
    nsplit = info1[2:3]
    # Order "B" (by split block) is what stein needs; "E" is ascending.
    L.stebz(_I, _B if vectors else _E, n, 0.0, 0.0, il + 1, iu, tol * s1 * s2, d, e, mout, nsplit, ws, iblock, isplit, wk, iw, info1)
    status = _lapack_status(info1[0], INFO_NO_CONVERGENCE)
    m = mout[0]
    if status != INFO_OK:
        return status, 0
    if vectors and m > 0:
        ifail = iw[n:]
        L.stein(n, d, e, m, ws, iblock, isplit, vtb, n, wk, iw[:n], ifail, info1)
        status = _lapack_status(info1[0], INFO_VEC_NO_CONVERGENCE)
        # Block order -> ascending order (stebz's order 'B' groups the
        # eigenvalues by diagonal block, which stein needs).
        sorted_ = True
        for j in range(1, m):
            if ws[j] < ws[j - 1]:
                sorted_ = False
        if not sorted_:
            perm = np.empty(m, np.int64)
            argsort_stable(ws, m, perm)
            tmp = vtb[:m].copy()
            wtmp = ws[:m].copy()
            # Element loops: a row assignment compiles numba's shape-mismatch
            # error path (string formatting, ~2 s) into every caller.
            for j in range(m):
                for i in range(n):
                    vtb[j, i] = tmp[perm[j], i]
                ws[j] = wtmp[perm[j]]
    for j in range(m):
        wb[j] = ws[j] / s1 / s2
    return status, m


@kernel_inner
def _solve_one(driver, vectors, n, d, e, il, iu, tol, wb, vtb, dc, ec, wsc, work, iwork, info1):
    """One matrix: eigenvalues il..iu-1 into ``wb`` (and vectors into
    ``vtb`` rows).  ``dc``, ``ec``, ``wsc`` are n long (stemr's w must be,
    whatever the range).  Returns (status, number of eigenvalues written)."""
    lwork, liwork = work.shape[0], iwork.shape[0]
    if driver == STEBZ_STEIN:
        return _stebz_stein(n, d, e, dc, ec, il, iu, tol, vectors, wb, vtb, work, iwork, info1)
    # The drivers overwrite d (the full-spectrum ones with the eigenvalues)
    # and e: they get copies, scaled for the QR/QL-based ones (see
    # _scaled_copy) and unscaled at the end.  stemr gets d and e as they
    # are: MRRR is not scale-invariant bit for bit, and 'auto' never picks
    # it, so an explicit 'stemr' gives scipy's result (and its failures).
    if driver == STEMR:
        s1 = s2 = 1.0
        for i in range(n):
            dc[i] = d[i]
        for i in range(n - 1):
            ec[i] = e[i]
    else:
        s1, s2 = _scaled_copy(d, e, wb, ec)
    if driver == STERF:
        L.sterf(n, wb, ec, info1)
    elif driver == STEV:
        L.stev(_V if vectors else _N, n, wb, ec, vtb, n if vectors else 1, work, info1)
    elif driver == STEVD:
        L.stevd(_V if vectors else _N, n, wb, ec, vtb, n if vectors else 1, work, lwork, iwork, liwork, info1)
    else:
        full = il == 0 and iu == n
        ec[n - 1] = 0.0
        mout = info1[1:2]
        tryrac = info1[2:3]
        tryrac[0] = 1  # let stemr try for high relative accuracy, as scipy's default
        m_cols = iu - il
        isuppz = iwork[liwork - 2 * n :]
        L.stemr(
            _V if vectors else _N, _A if full else _I, n, dc, ec, 0.0, 0.0, il + 1, iu,
            mout, wsc, vtb, n if vectors else 1, m_cols if vectors else 1, isuppz, tryrac,
            work, lwork, iwork[: liwork - 2 * n], liwork - 2 * n, info1,
        )
        status = _lapack_status(info1[0], INFO_NO_CONVERGENCE)
        found = min(mout[0], wb.shape[0])
        for j in range(found):
            wb[j] = wsc[j] / s1 / s2
        if status == INFO_OK and vectors:
            _fix_signs(vtb, found)
        return status, found
    status = _lapack_status(info1[0], INFO_NO_CONVERGENCE)
    for j in range(n):
        wb[j] = wb[j] / s1 / s2
    if status == INFO_OK and vectors:
        _fix_signs(vtb, n)
    return status, n


@kernel_inner
def _chunk(driver, vectors, d, e, il, iu, tol, start, stop, work, iwork, w, vt, info):
    n = d.shape[1]
    dc = np.empty(n, d.dtype)
    ec = np.empty(n, d.dtype)
    wsc = np.empty(n, d.dtype)
    info1 = np.zeros(3, np.int32)
    for b in range(start, stop):
        m = iu[b] - il[b]
        if not _finite(d[b], e[b]):
            info[b] = INFO_NONFINITE
            found = 0
        elif m == 0:
            found = 0
        else:
            # Matrices without vectors share one dummy row of vt.
            vtb = vt[b] if vectors else vt[0]
            status, found = _solve_one(driver, vectors, n, d[b], e[b], il[b], iu[b], tol, w[b], vtb, dc, ec, wsc, work, iwork, info1)
            if status == INFO_OK and found < m:
                status = INFO_COUNT
            info[b] = status
        # NaN for whatever was not computed (non-finite input, failures).
        for j in range(found, w.shape[1]):
            w[b, j] = np.nan
        if vectors:
            for j in range(found, vt.shape[1]):
                vt[b, j, :] = np.nan


@kernel_parallel
def full_spectrum_parallel(driver, vectors, d, e, il, iu, tol, work, iwork, w, vt, info):
    """Run LAPACK ``driver`` (a code of DRIVER_CODES) on each matrix
    ``(d[b], e[b])`` for the eigenvalues il[b]..iu[b]-1: w (B, m), vt
    (B, m, n) when ``vectors`` (else (1, 1, 1)), info (B,) int32.

    ``work``/``iwork`` (nchunk, size) hold one LAPACK workspace per chunk
    of the batch (see workspace_sizes); they come from numpy, whose big
    allocations get transparent huge pages: stevd's n x n workspace then
    costs fewer TLB misses (allocated here, n = 2000 ran ~25% slower than
    scipy's own call)."""
    nb = d.shape[0]
    nchunk = work.shape[0]
    for c in prange(nchunk):
        _chunk(driver, vectors, d, e, il, iu, tol, c * nb // nchunk, (c + 1) * nb // nchunk, work[c], iwork[c], w, vt, info)


@kernel_serial
def full_spectrum_serial(driver, vectors, d, e, il, iu, tol, work, iwork, w, vt, info):
    """Serial twin of :func:`full_spectrum_parallel`."""
    nb = d.shape[0]
    nchunk = work.shape[0]
    for c in prange(nchunk):
        _chunk(driver, vectors, d, e, il, iu, tol, c * nb // nchunk, (c + 1) * nb // nchunk, work[c], iwork[c], w, vt, info)
