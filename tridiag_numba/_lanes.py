"""Loading lanes: each (matrix, index) job's bracket, first guess and scaled
rows, into the slots of a block of ``LANES``.

:func:`_lane_start` sets a lane's initial bracket -- the Gershgorin interval
widened as in dstebz, with counts 0 and n -- and its first shift (a Gaussian
quantile of the matrix's moments); after that only Sturm counts move the
bracket ends (:mod:`._bisect`).
"""

import math

import numpy as np

from ._jit import kernel_inner
from ._layout import INFO_NONFINITE, INFO_OK, LANES
from ._scaling import _pow2_pair, _scale_exponent, _split_e2
from ._sturm_ir import _block_moments


# Gershgorin widening factor of dstebz.
_FUDGE = 2.1
# Laguerre steps allowed per lane: a backstop (the rtsafe-style safeguard
# already falls back to bisection whenever Laguerre stops converging fast).
_MAX_LAGUERRE = 20
# Interpolated shifts stay this fraction of the bracket away from its ends.
_CLAMP = 0.01


@kernel_inner
def _norm_cdf(z):
    """Standard normal distribution function."""
    return 0.5 * math.erfc(-z * 0.7071067811865476)


@kernel_inner
def _norm_ppf(p):
    """Standard normal quantile for 0 < p < 1 (P. J. Acklam's rational
    approximation, relative error < 1.15e-9: it only places shifts, never
    decides a result, so no refinement step is spent on it)."""
    if p < 0.02425 or p > 0.97575:
        q = math.sqrt(-2.0 * math.log(min(p, 1.0 - p)))
        z = (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e00) * q
               - 2.549732539343734e00) * q + 4.374664141464968e00) * q + 2.938163982698783e00) / (
            (((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e00) * q
             + 3.754408661907416e00) * q + 1.0)
        return z if p < 0.5 else -z
    q = p - 0.5
    r = q * q
    return (((((-3.969683028665376e01 * r + 2.209460984245205e02) * r - 2.759285104469687e02) * r
              + 1.383577518672690e02) * r - 3.066479806614716e01) * r + 2.506628277459239e00) * q / (
        ((((-5.447609879822406e01 * r + 1.615858368580409e02) * r - 1.556989798598866e02) * r
          + 6.680131188771972e01) * r - 1.328068155288572e01) * r + 1.0)


@kernel_inner
def _lane_start(l, k, n, gl, gu, sd, sd2, se2, ma, mb, abstol, eps, safemin, x, lo, hi, atol, clo, chi, mu, sig):
    """Set slot ``l``'s bracket, tolerance, spectrum moments and first shift
    from the scaled matrix's Gershgorin bounds ``gl``/``gu`` and the sums
    ``sd = sum d``, ``sd2 = sum d**2``, ``se2 = sum e**2``; return the
    iteration budget."""
    T = x.dtype.type
    tnorm = max(abs(gl), abs(gu))
    widen = _FUDGE * tnorm * eps * n + _FUDGE * 2.0 * safemin
    lo[l] = T(gl - widen)
    hi[l] = T(gu + widen)
    clo[l] = 0
    chi[l] = n
    if abstol > 0.0:
        atol[l] = T(max(abstol * ma * mb, safemin))
    else:
        atol[l] = T(eps * tnorm)
    # First shift: the (k + 1/2)/n quantile of the normal distribution with
    # the spectrum's mean and variance (trace(T) = sum w, trace(T**2) =
    # sum w**2).  Spectra of random and perturbed matrices are bell-shaped,
    # so this lands within ~1-2 eigenvalue spacings of w_k; the quantile of
    # the Gershgorin interval misses by ~5-20 (discs overestimate the
    # spread).  Any guess is safe: it is only a shift.
    m1 = sd / n
    var = (sd2 + 2.0 * se2) / n - m1 * m1
    mu[l] = m1
    sig[l] = math.sqrt(var) if var > 0.0 else 0.0
    width = hi[l] - lo[l]
    x0 = m1 + sig[l] * _norm_ppf((k + 0.5) / n)
    x[l] = T(min(max(x0, lo[l] + _CLAMP * width), hi[l] - _CLAMP * width))
    # dstebz's iteration bound for bisection down to pivmin; interpolation
    # steps shrink less than bisection (see _kth_block), hence the margin.
    maxit = int((math.log(tnorm + safemin) - math.log(safemin)) / math.log(2.0)) + 2
    return 6 * maxit + _MAX_LAGUERRE


@kernel_inner
def _load_lane(d, e, b, k, l, abstol, eps, safemin, db, e2b, x, lo, hi, atol, clo, chi, mu, sig):
    """Scale matrix ``b`` (n >= 2) into slot ``l`` of a block; set its Gershgorin bracket,
    the mean ``mu`` and standard deviation ``sig`` of its eigenvalues and a first shift
    for eigenvalue ``k``; split it as dstebz does (:func:`_split_e2`).

    Returns (status, exponent, iteration budget, single): status 0 running,
    2 zero matrix (w = 0), 3 non-finite input; single 1 if the split matrix
    has a 1x1 block.
    """
    n = d.shape[1]
    T = db.dtype.type
    zero = T(0.0)
    ex, finite, is_zero = _scale_exponent(d, e, b)
    if not finite or is_zero:
        # A zero matrix keeps the slot's arithmetic harmless while it idles.
        for i in range(n):
            db[i, l] = zero
            e2b[i, l] = zero
        x[l] = zero
        return (3 if not finite else 2), 0, 0, 0
    ma, mb = _pow2_pair(ex)
    eps2 = T(eps * eps)
    tiny = T(safemin)
    dprev = zero
    zprev = True  # e2b row i-1 zero: rows i-1, i are split
    single = 0
    gl = np.inf
    gu = -np.inf
    # Typed T, so that float32 sums and radii round as in _fill_block.
    eprev = zero
    sd = 0.0
    sd2 = 0.0
    se2 = 0.0
    for i in range(n):
        di = T(d[b, i] * ma * mb)
        enext = abs(T(e[b, min(i, n - 2)] * ma * mb))
        enext = enext if i < n - 1 else zero
        db[i, l] = di
        e2 = _split_e2(T(eprev * eprev), dprev, di, eps2, tiny)
        e2b[i, l] = e2
        # Row i-1 is a 1x1 block when e2b rows i-1 and i are both zero.
        if zprev and e2 == zero and i > 0:
            single = 1
        zprev = e2 == zero
        dprev = di
        sd += di
        sd2 += di * di
        se2 += eprev * eprev
        rad = eprev + enext
        gl = min(gl, di - rad)
        gu = max(gu, di + rad)
        eprev = enext
    if zprev:  # the last row
        single = 1
    return 0, ex, _lane_start(l, k, n, gl, gu, sd, sd2, se2, ma, mb, abstol, eps, safemin,
                              x, lo, hi, atol, clo, chi, mu, sig), single


@kernel_inner
def _fill_slot(d, e, lane_b, lane_k, l, nxt_job, stop, abstol, eps, safemin, w, ws, info,
               db, e2b, x, lo, hi, atol, clo, chi, mu, sig, job, expo, budget, nlag, nint, dxp, single):
    """Load the next job with work to do into slot ``l``; return the new
    ``nxt_job``.  Trivial jobs (zero or non-finite matrices) finish on the
    spot; with no jobs left the slot goes idle (``job[l] = -1``)."""
    job[l] = -1
    while nxt_job < stop:
        j = nxt_job
        nxt_job += 1
        status, ex, bud, one = _load_lane(d, e, lane_b[j], lane_k[j], l, abstol, eps, safemin, db, e2b, x, lo, hi, atol, clo, chi, mu, sig)
        if status == 0:
            job[l] = j
            expo[l] = ex
            single[l] = one
            budget[l] = bud
            nlag[l] = 0
            nint[l] = 0
            dxp[l] = np.inf
            return nxt_job
        w[j] = np.nan if status == 3 else 0.0
        ws[j] = w[j]
        info[j] = INFO_NONFINITE if status == 3 else INFO_OK
    return nxt_job


@kernel_inner
def _fill_block(d, e, lane_b, lane_k, nxt_job, stop, abstol, eps, safemin, w, ws, info,
                db, e2b, x, lo, hi, atol, clo, chi, mu, sig, job, expo, budget, nlag, nint, dxp, single):
    """Load the first jobs into all slots of a block; return the new ``nxt_job``.

    Same result, bit for bit, as :func:`_fill_slot` slot by slot, but the
    Gershgorin bounds and moments come from one sweep across all slots
    (:func:`_block_moments`): one matrix at a time they are chains of
    dependent max/min/add (~500 ns per 100x100 matrix).  ``db``/``e2b`` must
    be zero on entry: idle slots keep the inert zero matrix.
    """
    n = d.shape[1]
    L = LANES
    T = db.dtype.type
    # 1. Per slot: the exact power-of-two scale of its matrix (a vectorised
    #    scan of the matrix's own rows), then the scaled copy into the
    #    slot's column.  Trivial jobs (zero or non-finite matrices) finish
    #    on the spot and the next job takes the slot.
    tmp = np.zeros((7, L))
    sa = tmp[0]
    sb = tmp[1]
    for l in range(L):
        job[l] = -1
        while nxt_job < stop:
            j = nxt_job
            nxt_job += 1
            b = lane_b[j]
            ex, finite, is_zero = _scale_exponent(d, e, b)
            if not finite or is_zero:
                w[j] = np.nan if not finite else 0.0
                ws[j] = w[j]
                info[j] = INFO_NONFINITE if not finite else INFO_OK
                continue
            job[l] = j
            expo[l] = ex
            ma, mb = _pow2_pair(ex)
            sa[l] = ma
            sb[l] = mb
            for i in range(n):
                db[i, l] = T(d[b, i] * ma * mb)
            for i in range(n - 1):
                e2b[i + 1, l] = abs(T(e[b, i] * ma * mb))
            break
    # 2. Gershgorin bounds and moments; then e**2 with the subnormal flush.
    acc = tmp[2:7]
    _block_moments(db, e2b, acc, safemin)
    gl = acc[0]
    gu = acc[1]
    sd = acc[2]
    sd2 = acc[3]
    se2 = acc[4]
    # 3. dstebz's splits (_split_e2), all slots at once, and which slots
    #    have a 1x1 block (e2b rows i and i+1 both zero; row n counts as zero).
    eps2 = T(eps * eps)
    tiny = T(safemin)
    zero = T(0.0)
    for i in range(1, n):
        for l in range(L):
            e2b[i, l] = _split_e2(e2b[i, l], db[i - 1, l], db[i, l], eps2, tiny)
    for l in range(L):
        single[l] = 0
    for i in range(1, n):
        for l in range(L):
            single[l] |= (e2b[i - 1, l] == zero) & (e2b[i, l] == zero)
    for l in range(L):
        single[l] |= e2b[n - 1, l] == zero
    for l in range(L):
        j = job[l]
        if j < 0:
            continue
        budget[l] = _lane_start(l, lane_k[j], n, gl[l], gu[l], sd[l], sd2[l], se2[l], sa[l], sb[l],
                                abstol, eps, safemin, x, lo, hi, atol, clo, chi, mu, sig)
        nlag[l] = 0
        nint[l] = 0
        dxp[l] = np.inf
    return nxt_job
