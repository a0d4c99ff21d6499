"""Lane state, named, and loading lanes: each (matrix, index) job's bracket,
first guess and scaled rows, into the slots of a block of ``LANES``.

The eigenvalue engine's state is three records of arrays (numba passes a
namedtuple of arrays like the arrays themselves; fields are read by name):

* :data:`Jobs` -- the chunk of work and where results go (inputs, outputs,
  tolerances);
* :data:`Bracket` -- per slot, the ends ``lo < hi`` and their Sturm counts
  ``clo <= k < chi``;
* :data:`Slots` -- per slot, everything else: the scaled matrix, the shift,
  the job it runs and its counters.

The functions that take the records are compiled without reference
counting (:func:`._jit.kernel_loop`): they work on arrays their caller
allocated and return scalars.

:func:`_lane_start` sets a lane's initial bracket -- the Gershgorin interval
widened as in dstebz, with counts 0 and n -- and its first shift (a Gaussian
quantile of the matrix's moments).  After that the only writer of the
bracket is :func:`._bisect._move_bracket`, which takes a shift with its
Sturm count.
"""

from collections import namedtuple

import math

import numpy as np

from ._jit import kernel_inner, kernel_loop
from ._layout import INFO_NONFINITE, INFO_OK, LANES
from ._scaling import _pow2_pair, _scale_exponent, _split_e2
from ._load_ir import _scaled_transpose
from ._sturm_ir import _block_moments


#: A chunk of jobs: job ``j`` is eigenvalue ``lane_k[j]`` of matrix ``lane_b[j]``
#: (``d`` (B, n), ``e`` (B, n-1)); jobs up to ``stop`` belong to the chunk.
#: Results go to ``w`` (eigenvalue), ``ws`` (of the scaled matrix) and
#: ``info``; ``abstol``, ``eps``, ``safemin`` as in dstebz.
Jobs = namedtuple("Jobs", ["d", "e", "lane_b", "lane_k", "stop", "abstol", "eps", "safemin", "w", "ws", "info"])

#: Per slot (LANES,): the bracket ends ``lo < hi`` (the matrix's dtype) and
#: their Sturm counts ``clo <= k < chi`` (int64).  Written by
#: :func:`_lane_start` (the Gershgorin interval) and then only by
#: :func:`._bisect._move_bracket`.
Bracket = namedtuple("Bracket", ["lo", "hi", "clo", "chi"])

#: Per slot: the scaled matrix ``db`` (n, ROW) and ``e2b`` (n, ROW, squared
#: off-diagonals, row 0 zero); in the matrix's dtype the shift ``x``, the
#: tolerance ``atol`` and the last step ``dxp``; in float64 the spectrum's
#: mean ``mu`` and standard deviation ``sig``; in int64 the ``job`` (-1:
#: idle), the scale exponent ``expo``, the iteration ``budget`` left, the
#: Laguerre and interpolation steps taken (``nlag``, ``nint``) and
#: ``single`` (1: the split matrix has a 1x1 block).
#: ``sums`` (7, LANES) and ``scratch`` (n,), float64 and the matrix's dtype,
#: are work space for :func:`_fill_block` and :func:`._bisect._snap_single`.
Slots = namedtuple(
    "Slots",
    ["db", "e2b", "x", "atol", "dxp", "mu", "sig", "job", "expo", "budget", "nlag", "nint", "single", "sums", "scratch"],
)

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


@kernel_loop
def _lane_start(jobs, slots, br, l, k, sums):
    """Set slot ``l``'s bracket, tolerance, spectrum moments and first shift
    for eigenvalue ``k``; return the iteration budget.

    ``sums`` = (gl, gu, sd, sd2, se2, ma, mb): the scaled matrix's
    Gershgorin bounds, ``sum d``, ``sum d**2``, ``sum e**2`` and the two
    scale factors (:func:`._scaling._pow2_pair`), all float64.
    """
    gl, gu, sd, sd2, se2, ma, mb = sums
    n = slots.db.shape[0]
    eps = jobs.eps
    safemin = jobs.safemin
    x = slots.x
    T = x.dtype.type
    tnorm = max(abs(gl), abs(gu))
    widen = _FUDGE * tnorm * eps * n + _FUDGE * 2.0 * safemin
    br.lo[l] = T(gl - widen)
    br.hi[l] = T(gu + widen)
    br.clo[l] = 0
    br.chi[l] = n
    if jobs.abstol > 0.0:
        slots.atol[l] = T(max(jobs.abstol * ma * mb, safemin))
    else:
        slots.atol[l] = T(eps * tnorm)
    # First shift: the (k + 1/2)/n quantile of the normal distribution with
    # the spectrum's mean and variance (trace(T) = sum w, trace(T**2) =
    # sum w**2).  Spectra of random and perturbed matrices are bell-shaped,
    # so this lands within ~1-2 eigenvalue spacings of w_k; the quantile of
    # the Gershgorin interval misses by ~5-20 (discs overestimate the
    # spread).  Any guess is safe: it is only a shift.
    m1 = sd / n
    var = (sd2 + 2.0 * se2) / n - m1 * m1
    slots.mu[l] = m1
    slots.sig[l] = math.sqrt(var) if var > 0.0 else 0.0
    lo = br.lo[l]
    hi = br.hi[l]
    width = hi - lo
    x0 = m1 + slots.sig[l] * _norm_ppf((k + 0.5) / n)
    x[l] = T(min(max(x0, lo + _CLAMP * width), hi - _CLAMP * width))
    # dstebz's iteration bound for bisection down to pivmin; interpolation
    # steps shrink less than bisection (see ._bisect._interpolated_shift),
    # hence the margin.
    maxit = int((math.log(tnorm + safemin) - math.log(safemin)) / math.log(2.0)) + 2
    return 6 * maxit + _MAX_LAGUERRE


@kernel_loop
def _load_lane(jobs, slots, br, b, k, l):
    """Scale matrix ``b`` (n >= 2) into slot ``l`` of a block; set its
    Gershgorin bracket, moments and first shift for eigenvalue ``k``
    (:func:`_lane_start`); split it as dstebz does (:func:`_split_e2`).

    Returns (status, exponent, iteration budget, single): status 0 running,
    2 zero matrix (w = 0), 3 non-finite input; single 1 if the split matrix
    has a 1x1 block.
    """
    d = jobs.d
    e = jobs.e
    db = slots.db
    e2b = slots.e2b
    n = d.shape[1]
    T = db.dtype.type
    zero = T(0.0)
    ex, finite, is_zero = _scale_exponent(d, e, b)
    if not finite or is_zero:
        # A zero matrix keeps the slot's arithmetic harmless while it idles.
        for i in range(n):
            db[i, l] = zero
            e2b[i, l] = zero
        slots.x[l] = zero
        return (3 if not finite else 2), 0, 0, 0
    ma, mb = _pow2_pair(ex)
    eps2 = T(jobs.eps * jobs.eps)
    tiny = T(jobs.safemin)
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
    return 0, ex, _lane_start(jobs, slots, br, l, k, (gl, gu, sd, sd2, se2, ma, mb)), single


@kernel_inner(inline="always")
def _start_counters(slots, l):
    """Zero slot ``l``'s step counters; no previous step yet."""
    slots.nlag[l] = 0
    slots.nint[l] = 0
    slots.dxp[l] = np.inf


@kernel_loop
def _fill_slot(jobs, slots, br, l, nxt_job):
    """Load the next job with work to do into slot ``l``; return the new
    ``nxt_job``.  Trivial jobs (zero or non-finite matrices) finish on the
    spot; with no jobs left the slot goes idle (``job[l] = -1``)."""
    slots.job[l] = -1
    while nxt_job < jobs.stop:
        j = nxt_job
        nxt_job += 1
        status, ex, bud, one = _load_lane(jobs, slots, br, jobs.lane_b[j], jobs.lane_k[j], l)
        if status == 0:
            slots.job[l] = j
            slots.expo[l] = ex
            slots.single[l] = one
            slots.budget[l] = bud
            _start_counters(slots, l)
            return nxt_job
        jobs.w[j] = np.nan if status == 3 else 0.0
        jobs.ws[j] = jobs.w[j]
        jobs.info[j] = INFO_NONFINITE if status == 3 else INFO_OK
    return nxt_job


@kernel_loop
def _copy_scaled(jobs, slots, nxt_job, scale):
    """Per slot of an empty block: the next job with work to do and its exact
    power-of-two scale (factors into ``scale`` (2, LANES)); then every slot's
    scaled ``d`` and ``|e|`` (``e2b`` rows 1..n-1, squared later) by
    :func:`._load_ir._scaled_transpose`.  Return the new ``nxt_job``.
    Trivial jobs (zero or non-finite matrices) finish on the spot and the
    next job takes the slot.  A slot left without a job gets the inert zero
    matrix (``e2b`` row 0 is zero already)."""
    d = jobs.d
    e = jobs.e
    n = d.shape[1]
    for l in range(LANES):
        slots.job[l] = -1
        while nxt_job < jobs.stop:
            j = nxt_job
            nxt_job += 1
            ex, finite, is_zero = _scale_exponent(d, e, jobs.lane_b[j])
            if not finite or is_zero:
                jobs.w[j] = np.nan if not finite else 0.0
                jobs.ws[j] = jobs.w[j]
                jobs.info[j] = INFO_NONFINITE if not finite else INFO_OK
                continue
            slots.job[l] = j
            slots.expo[l] = ex
            ma, mb = _pow2_pair(ex)
            scale[0, l] = ma
            scale[1, l] = mb
            break
    _scaled_transpose(d, jobs.lane_b, slots.job, scale, slots.db, 0, n)
    _scaled_transpose(e, jobs.lane_b, slots.job, scale, slots.e2b, 1, n - 1)
    return nxt_job


@kernel_loop
def _fill_block(jobs, slots, br, nxt_job):
    """Load the first jobs into all slots of a block; return the new ``nxt_job``.

    Same result, bit for bit, as :func:`_fill_slot` slot by slot, but the
    Gershgorin bounds and moments come from one sweep across all slots
    (:func:`_block_moments`): one matrix at a time they are chains of
    dependent max/min/add (~500 ns per 100x100 matrix).  ``e2b`` row 0 and
    ``slots.sums`` must be zero on entry; the rest of ``db``/``e2b`` is
    written here (idle slots get the inert zero matrix).
    """
    tmp = slots.sums
    # 1. Per slot: the scaled copy of its matrix.
    nxt_job = _copy_scaled(jobs, slots, nxt_job, tmp[0:2])
    # 2. Gershgorin bounds and moments; e**2 with the subnormal flush, split
    #    as dstebz splits (_split_e2), and the slots with a 1x1 block.
    acc = tmp[2:7]
    _block_moments(slots.db, slots.e2b, acc, jobs.safemin, jobs.eps, slots.single)
    # 3. Each busy slot's bracket and first shift.
    for l in range(LANES):
        j = slots.job[l]
        if j < 0:
            continue
        sums = (acc[0, l], acc[1, l], acc[2, l], acc[3, l], acc[4, l], tmp[0, l], tmp[1, l])
        slots.budget[l] = _lane_start(jobs, slots, br, l, jobs.lane_k[j], sums)
        _start_counters(slots, l)
    return nxt_job
