"""Numba kernels: Sturm-sequence bisection with Laguerre refinement, and
inverse iteration.

Everything here is pure ``@njit`` code: C-contiguous float32/float64 arrays
in, outputs and per-lane / per-matrix ``info`` codes out.  Nothing validates
and nothing raises; the numpy layer (``_api.py``) does both.  All kernels and
their helpers live in this one module because numba's on-disk cache does not
notice edits to helpers defined in other files.

Notation (LAPACK's): a symmetric tridiagonal ``T`` has diagonal ``d`` (n) and
off-diagonal ``e`` (n-1); ``w`` are eigenvalues, ``v`` eigenvectors.

Work is organised in *lanes*: one lane is one (matrix, eigenvalue index) pair.
The Sturm recurrence is a serial chain of divisions inside one matrix, so the
eigenvalue kernel interleaves ``LANES`` lanes batch-minor -- arrays of shape
``(n, LANES)`` with the lane loop innermost -- and LLVM turns the lane loop
into SIMD code that keeps many independent divisions in flight.
"""

import math

import numba
import numpy as np
from numba import prange, types
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic, overload
from numba.np.ufunc import parallel as _parallel

from ._jit import kernel_inner, kernel_parallel, kernel_serial

#: Lanes interleaved per thread (32 float64 lanes saturate the divider here).
LANES = 32
#: Row length of lane-interleaved (n, ROW) work arrays; lanes LANES..ROW-1
#: are padding.  With rows of 32 float64 (256 bytes) a column -- one matrix,
#: written while a block is loaded -- falls into 16 of the L1 cache's 64
#: sets and evicts itself; 40 (320 bytes) spreads it over all of them and
#: halved the time to load a block.
ROW = 40

#: ``info`` codes shared with the numpy layer.
INFO_OK = 0
INFO_NONFINITE = -1  # input held NaN/inf: outputs are NaN
INFO_NO_CONVERGENCE = 1  # bisection ran out of iterations
INFO_VEC_NO_CONVERGENCE = 2  # inverse iteration did not converge

# Gershgorin widening factor of dstebz.
_FUDGE = 2.1
# Laguerre steps allowed per lane: a backstop (the rtsafe-style safeguard
# already falls back to bisection whenever Laguerre stops converging fast).
_MAX_LAGUERRE = 20
# Interpolated shifts stay this fraction of the bracket away from its ends.
_CLAMP = 0.01
# With at most this many slots busy, a pass gathers just those into one or
# two vectors (_sturm_pass_gather takes up to 2 * _VEC).
_FEW_SLOTS = 16


def _float_bits(x):
    """Integer view of a float array and its format's constants (numba only)."""
    raise NotImplementedError("only callable from numba-compiled code")


@overload(_float_bits, jit_options=dict(cache=True))
def _float_bits_impl(x):
    # (bits, magnitude mask, bits of +inf, mantissa width, exponent bias - 1,
    # exponent of the smallest subnormal).
    if x.dtype == types.float32:
        return lambda x: (x.view(np.int32), np.int32(0x7FFFFFFF), np.int32(0x7F800000), 23, 126, -149)
    return lambda x: (x.view(np.int64), np.int64(0x7FFFFFFFFFFFFFFF), np.int64(0x7FF0000000000000), 52, 1022, -1074)


@kernel_inner(inline="always")
def _scale_exponent(d, e, b):
    """Binary exponent of max|T[b]| (0 for a zero matrix) and finiteness.

    Matrices are scaled by the exact power of two ``2**-ex`` so that the
    largest entry lies in [0.5, 1): then e**2 can neither overflow nor lose
    anything that matters to underflow (dstebz's requirement that
    max|T| <= sqrt(overflow) * underflow**0.25, met for every input).

    Works on bit patterns: with the sign bit cleared, IEEE floats order like
    their bits, and NaN/inf are exactly the patterns >= +inf.  An integer max
    is a vectorised reduction; a float max is not (LLVM may not reorder it
    without fast-math) and took 4x longer.
    """
    db, mask, infbits, mbits, bias, emin = _float_bits(d[b])
    eb = _float_bits(e[b])[0]
    m = db[0] & mask
    for i in range(db.shape[0]):
        v = db[i] & mask
        m = v if v > m else m
    for i in range(eb.shape[0]):
        v = eb[i] & mask
        m = v if v > m else m
    if m >= infbits:
        return 0, False, False
    if m == 0:
        return 0, True, True
    field = int(m >> mbits)
    if field == 0:  # subnormal maximum: frexp of its exact value
        return math.frexp(math.ldexp(float(m), emin))[1], True, False
    return field - bias, True, False


@kernel_inner
def _pow2_pair(ex):
    """Two factors whose product is 2**-ex, each finite and normal.

    Scaling ``x * ma * mb`` is exact (barring underflow of entries that are
    negligible anyway); a single factor 2**-ex overflows for subnormal
    matrices (ex < -1022).
    """
    h = ex // 2
    return math.ldexp(1.0, -h), math.ldexp(1.0, h - ex)


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


#: Lanes per SIMD vector in _sturm_pass_simd (LANES / _VEC vectors per state).
_VEC = 8


def _ir_arrays(context, builder, signature, args):
    """An intrinsic's array arguments as numba array structs (``.data``,
    ``.shape``); None in the places of its scalar arguments."""
    return [context.make_array(t)(context, builder, v) if isinstance(t, types.Array) else None
            for t, v in zip(signature.args, args)]


def _ir_const(vty, value):
    """Vector constant of type ``vty`` with every lane ``value``."""
    return ir.Constant(vty, [ir.Constant(vty.element, value)] * vty.count)


def _ir_splat(builder, vty, value):
    """Vector of type ``vty`` with every lane the run-time scalar ``value``."""
    v = ir.Constant(vty, ir.Undefined)
    for t in range(vty.count):
        v = builder.insert_element(v, value, ir.Constant(ir.IntType(32), t))
    return v


def _check_sturm_types(db, e2b, x, st):
    """Typing-time checks shared by the Sturm pass intrinsics."""
    for a in (db, e2b, st):
        if not (isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"):
            raise numba.core.errors.TypingError("Sturm pass: db, e2b and st must be C-contiguous 2-D arrays")
    if not (isinstance(x, types.Array) and x.ndim == 1 and x.layout == "C"):
        raise numba.core.errors.TypingError("Sturm pass: x must be a C-contiguous 1-D array")
    if not (db.dtype == e2b.dtype == x.dtype == st.dtype and isinstance(db.dtype, types.Float)):
        raise numba.core.errors.TypingError("Sturm pass: arrays of one float dtype required")


def _emit_sturm_loop(context, builder, fty, n, pivmin, xs, load_row):
    """IR of the Sturm recurrence with Laguerre sums over ``len(xs)`` vectors
    of _VEC lanes (see :func:`_sturm_pass`).  ``load_row(i, g)`` gives vector
    ``g`` of row ``i`` of (d, e**2).  Returns the state: six lists of
    allocas (r, a, c, s1, s2, count), which LLVM promotes to registers."""
    vty = ir.VectorType(fty, _VEC)
    zero, one, two = _ir_const(vty, 0.0), _ir_const(vty, 1.0), _ir_const(vty, 2.0)
    piv = _ir_splat(builder, vty, pivmin)
    negpiv = builder.fsub(zero, piv)  # exact: -pivmin
    bits = 64 if isinstance(fty, ir.DoubleType) else 32
    fabs = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty]), f"llvm.fabs.v{_VEC}f{bits}")
    groups = len(xs)
    state = [[cgutils.alloca_once_value(builder, zero) for _ in range(groups)] for _ in range(6)]
    with cgutils.for_range(builder, n) as loop:
        i = loop.index
        for g in range(groups):
            dv, e2 = load_row(i, g)
            rp = builder.load(state[0][g])
            ap = builder.load(state[1][g])
            cp = builder.load(state[2][g])
            # q = d - x - e2 r; |q| < pivmin (or NaN) -> -pivmin
            q = builder.fsub(builder.fsub(dv, xs[g]), builder.fmul(e2, rp))
            q = builder.select(builder.fcmp_ordered(">=", builder.call(fabs, [q]), piv), q, negpiv)
            rn = builder.fdiv(one, q)
            # a = (e2 a r - 1) / q;  c = e2 r (c - 2 a a) / q
            an = builder.fmul(builder.fsub(builder.fmul(builder.fmul(e2, ap), rp), one), rn)
            cn = builder.fmul(builder.fmul(builder.fmul(e2, rp),
                                           builder.fsub(cp, builder.fmul(builder.fmul(two, ap), ap))), rn)
            builder.store(rn, state[0][g])
            builder.store(an, state[1][g])
            builder.store(cn, state[2][g])
            builder.store(builder.fadd(builder.load(state[3][g]), an), state[3][g])
            builder.store(builder.fadd(builder.load(state[4][g]), builder.fsub(builder.fmul(an, an), cn)), state[4][g])
            neg = builder.select(builder.fcmp_ordered("<", q, zero), one, zero)
            builder.store(builder.fadd(builder.load(state[5][g]), neg), state[5][g])
    return state


@intrinsic(prefer_literal=False)
def _sturm_pass_simd(typingctx, db, e2b, x, pivmin, st):
    """:func:`_sturm_pass` written as LLVM IR over vectors of _VEC lanes.

    Written in numba the lane loop is vectorised, but each step loads and
    stores the six state rows through memory (LLVM cannot prove that they
    do not alias the matrix rows): 24 vector loads and 24 stores per step
    for 32 float64 lanes.  Here the state of LANES / _VEC vectors lives in
    stack slots that LLVM promotes to registers (6 x 4 = 24 of the 32 zmm
    registers for float64), so a step only loads its matrix row and the
    pass is bound by the divider (~10% faster in a block).  The operations
    are those of :func:`_sturm_step`, in the same order and without
    contraction, so the results are bit-identical to the scalar recurrence
    (tests/test_core_accuracy.py checks it).

    Requires C-contiguous 2-D ``db``/``e2b`` with at least LANES columns,
    ``x`` with at least LANES entries and ``st`` (6, >= LANES), one float dtype.
    """
    _check_sturm_types(db, e2b, x, st)
    sig = types.void(db, e2b, x, pivmin, st)

    def codegen(context, builder, signature, args):
        pv = args[3]
        dbt, pt = signature.args[0], signature.args[3]
        fty = context.get_value_type(dbt.dtype)
        vptr = ir.VectorType(fty, _VEC).as_pointer()
        i64 = ir.IntType(64)
        dba, e2ba, xa, _, sta = _ir_arrays(context, builder, signature, args)
        drow = builder.extract_value(dba.shape, 1)
        erow = builder.extract_value(e2ba.shape, 1)
        strow = builder.extract_value(sta.shape, 1)

        def vload(base, off):
            return builder.load(builder.bitcast(builder.gep(base, [off]), vptr), align=8)

        def load_row(i, g):
            goff = ir.Constant(i64, g * _VEC)
            return (vload(dba.data, builder.add(builder.mul(i, drow), goff)),
                    vload(e2ba.data, builder.add(builder.mul(i, erow), goff)))

        xs = [vload(xa.data, ir.Constant(i64, g * _VEC)) for g in range(LANES // _VEC)]
        state = _emit_sturm_loop(context, builder, fty, builder.extract_value(dba.shape, 0),
                                 context.cast(builder, pv, pt, dbt.dtype), xs, load_row)
        for f in range(6):
            for g in range(LANES // _VEC):
                off = builder.add(builder.mul(ir.Constant(i64, f), strow), ir.Constant(i64, g * _VEC))
                builder.store(builder.load(state[f][g]), builder.bitcast(builder.gep(sta.data, [off]), vptr), align=8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic(prefer_literal=False)
def _sturm_pass_gather(typingctx, db, e2b, xg, pivmin, stg, act, nact):
    """:func:`_sturm_pass_simd` for ``nact`` <= 2 _VEC gathered lanes: lane
    ``t`` runs the matrix of slot ``act[t]`` at shift ``xg[t]`` and leaves
    its state in column ``t`` of ``stg``.  The rows of the listed slots are
    gathered into one or two vectors per step.

    The last passes of a block run with a few stragglers, and a full pass
    costs as much with 1 busy slot as with 32.  With one or two vectors the
    recurrence is bound by its latency instead (~0.6 us for n = 100, about
    a third of a full pass), and a second vector costs little more than
    the first: a slot may appear twice, at two shifts (the end game's pair
    of counts, see :func:`_kth_block`).  Bit-identical to the full pass.
    ``xg`` and ``stg`` need 2 _VEC columns; gathered lanes past ``nact``
    compute on whatever ``xg`` holds there and are never stored.
    """
    _check_sturm_types(db, e2b, xg, stg)
    sig = types.void(db, e2b, xg, pivmin, stg, act, nact)

    def codegen(context, builder, signature, args):
        pv, nactv = args[3], args[6]
        dbt, pt, actt, nactt = signature.args[0], signature.args[3], signature.args[5], signature.args[6]
        fty = context.get_value_type(dbt.dtype)
        vty = ir.VectorType(fty, _VEC)
        vptr = vty.as_pointer()
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        dba, e2ba, xa, _, sta, acta, _ = _ir_arrays(context, builder, signature, args)
        nact = context.cast(builder, nactv, nactt, types.int64)
        drow = builder.extract_value(dba.shape, 1)
        erow = builder.extract_value(e2ba.shape, 1)
        strow = builder.extract_value(sta.shape, 1)
        n = builder.extract_value(dba.shape, 0)
        pivmin = context.cast(builder, pv, pt, dbt.dtype)
        # Slot of each lane; lanes past nact repeat the first slot (computed,
        # never stored).
        slots = []
        for t in range(2 * _VEC):
            use = builder.icmp_signed("<", ir.Constant(i64, t), nact)
            tt = builder.select(use, ir.Constant(i64, t), ir.Constant(i64, 0))
            slots.append(context.cast(builder, builder.load(builder.gep(acta.data, [tt])), actt.dtype, types.int64))

        def gather(base, row_off, g):
            v = ir.Constant(vty, ir.Undefined)
            for t in range(_VEC):
                val = builder.load(builder.gep(base, [builder.add(row_off, slots[g * _VEC + t])]))
                v = builder.insert_element(v, val, ir.Constant(i32, t))
            return v

        def emit(groups):
            xs = [builder.load(builder.bitcast(builder.gep(xa.data, [ir.Constant(i64, g * _VEC)]), vptr), align=8)
                  for g in range(groups)]

            def load_row(i, g):
                return gather(dba.data, builder.mul(i, drow), g), gather(e2ba.data, builder.mul(i, erow), g)

            state = _emit_sturm_loop(context, builder, fty, n, pivmin, xs, load_row)
            for t in range(groups * _VEC):
                g, u = divmod(t, _VEC)
                with builder.if_then(builder.icmp_signed("<", ir.Constant(i64, t), nact)):
                    for f in range(6):
                        val = builder.extract_element(builder.load(state[f][g]), ir.Constant(i32, u))
                        off = builder.add(builder.mul(ir.Constant(i64, f), strow), ir.Constant(i64, t))
                        builder.store(val, builder.gep(sta.data, [off]))

        with builder.if_else(builder.icmp_signed("<=", nact, ir.Constant(i64, _VEC))) as (one_vec, two_vecs):
            with one_vec:
                emit(1)
            with two_vecs:
                emit(2)
        return context.get_dummy_value()

    return sig, codegen


@kernel_inner(inline="always")
def _sturm_step(db, e2b, x, pivmin, st, i, l):
    """Step ``i`` of slot ``l``'s Sturm sequence with its Laguerre sums: the
    scalar form of :func:`_sturm_pass_simd`'s step, operation for operation
    (the reference the IR passes are tested against)."""
    zero = db.dtype.type(0.0)
    one = db.dtype.type(1.0)
    two = db.dtype.type(2.0)
    e2 = e2b[i, l]
    rp = st[0, l]
    ap = st[1, l]
    q = db[i, l] - x[l] - e2 * rp
    q = q if abs(q) >= pivmin else -pivmin
    rn = one / q
    an = (e2 * ap * rp - one) * rn
    cn = e2 * rp * (st[2, l] - two * ap * ap) * rn
    st[0, l] = rn
    st[1, l] = an
    st[2, l] = cn
    st[3, l] += an
    st[4, l] += an * an - cn
    st[5, l] += one if q < zero else zero


@kernel_inner(inline="always")
def _sturm_pass(db, e2b, x, pivmin, st):
    """One Sturm sequence per lane at shifts ``x``, with Laguerre sums.

    ``q_i = d_i - x - e_{i-1}**2 / q_{i-1}`` are the pivots of the LDL^T
    factorisation of ``T - x I``; the number of negative pivots is the number
    of eigenvalues below ``x`` (Sylvester's law of inertia).  Pivots smaller
    than ``pivmin`` are replaced by ``-pivmin`` as in dstebz.

    Because ``prod q_i = det(T - x I)``, the derivatives of the pivots give
    ``s1 = sum_j 1/(x - w_j)`` and ``s2 = sum_j 1/(x - w_j)**2`` for Laguerre's
    method at the cost of a few multiplies per step: with ``r = 1/q``,
    ``a = q'/q`` and ``c = q''/q``:
    ``q'_i = -1 + e2 a_{i-1} r_{i-1}``, ``q''_i = e2 r_{i-1} (c_{i-1} - 2 a_{i-1}**2)``.
    Overflow of a/c near a pole only spoils s1/s2 (the caller then bisects);
    the count never depends on them.

    ``db`` (n, ROW) holds the scaled diagonals, ``e2b`` (n, ROW) the squared
    off-diagonals (row 0 zero), ``x`` (LANES,) the shifts; on return ``st``
    (6, LANES) holds, per lane, the last r, a, c and then s1, s2 and the
    count.  The work is :func:`_sturm_pass_simd`'s.
    """
    _sturm_pass_simd(db, e2b, x, pivmin, st)


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


@kernel_inner(inline="always")
def _split_e2(e2, dprev, di, eps2, safemin):
    """``e2`` = e_{i-1}**2 of the scaled matrix, or zero where dstebz splits
    the matrix: ``e2 < eps**2 |d_{i-1} d_i| + safemin`` (in the matrix's
    dtype: the loop over a block's lanes stays one SIMD loop).

    Zeroing e2 there changes each eigenvalue by less than eps |d|, and the
    Sturm recurrence then restarts at row i: the count is the sum of the
    blocks' counts, exactly as dstebz counts block by block.  The safemin
    term also flushes subnormal e**2 (subnormal operands make divisions
    ~100x slower).
    """
    return e2 if e2 >= eps2 * abs(dprev * di) + safemin else e2 - e2


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


@intrinsic(prefer_literal=False)
def _block_moments(typingctx, db, e2b, acc, safemin):
    """One sweep over a loaded block: per slot the Gershgorin bounds (radius
    ``|e_{i-1}| + |e_i|``, ``e2b`` still holding ``|e|``) into ``acc[0]`` /
    ``acc[1]``, ``sum d``, ``sum d**2`` and ``sum e**2`` into ``acc[2:5]``
    (float64), and ``e2b`` replaced by ``e**2``, flushed to zero below
    ``safemin``.

    Written in numba these were three vectorised loops, each loading and
    storing its accumulators every row (~2.2 us for a block of order 100);
    here the twenty accumulator vectors stay in registers.  Operations and
    their order are those of the loops (T arithmetic, then float64 sums), so
    the results are bit-identical (checked in tests/test_core_accuracy.py).
    """
    for a in (db, e2b, acc):
        if not (isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C" and isinstance(a.dtype, types.Float)):
            raise numba.core.errors.TypingError("_block_moments: C-contiguous 2-D float arrays required")
    if db.dtype != e2b.dtype or acc.dtype != types.float64:
        raise numba.core.errors.TypingError("_block_moments: db, e2b of one dtype and float64 acc required")
    sig = types.void(db, e2b, acc, safemin)

    def codegen(context, builder, signature, args):
        smv = args[3]
        dbt, smt = signature.args[0], signature.args[3]
        fty = context.get_value_type(dbt.dtype)
        dty = ir.DoubleType()
        vt = ir.VectorType(fty, _VEC)
        vd = ir.VectorType(dty, _VEC)
        i64 = ir.IntType(64)
        dba, e2ba, acca, _ = _ir_arrays(context, builder, signature, args)
        n = builder.extract_value(dba.shape, 0)
        drow = builder.extract_value(dba.shape, 1)
        erow = builder.extract_value(e2ba.shape, 1)
        arow = builder.extract_value(acca.shape, 1)
        safemin = context.cast(builder, smv, smt, types.float64)
        groups = LANES // _VEC

        safev = _ir_splat(builder, vd, safemin)
        zt = _ir_const(vt, 0.0)

        def widen(v):
            return v if fty == dty else builder.fpext(v, vd)

        def ptr(base, off, ty):
            return builder.bitcast(builder.gep(base, [off]), ty.as_pointer())

        inits = (float("inf"), float("-inf"), 0.0, 0.0, 0.0)
        accs = [[cgutils.alloca_once_value(builder, _ir_const(vd, v)) for _ in range(groups)] for v in inits]
        last = builder.sub(n, ir.Constant(i64, 1))
        with cgutils.for_range(builder, n) as loop:
            i = loop.index
            is_last = builder.icmp_signed("==", i, last)
            nxt = builder.select(is_last, i, builder.add(i, ir.Constant(i64, 1)))
            for g in range(groups):
                goff = ir.Constant(i64, g * _VEC)
                di = builder.load(ptr(dba.data, builder.add(builder.mul(i, drow), goff), vt), align=8)
                eptr = ptr(e2ba.data, builder.add(builder.mul(i, erow), goff), vt)
                ep = builder.load(eptr, align=8)
                en = builder.load(ptr(e2ba.data, builder.add(builder.mul(nxt, erow), goff), vt), align=8)
                rad = builder.fadd(ep, builder.select(is_last, zt, en))
                a = widen(builder.fsub(di, rad))
                c = widen(builder.fadd(di, rad))
                gl = builder.load(accs[0][g])
                gu = builder.load(accs[1][g])
                builder.store(builder.select(builder.fcmp_ordered("<", a, gl), a, gl), accs[0][g])
                builder.store(builder.select(builder.fcmp_ordered(">", c, gu), c, gu), accs[1][g])
                builder.store(builder.fadd(builder.load(accs[2][g]), widen(di)), accs[2][g])
                builder.store(builder.fadd(builder.load(accs[3][g]), widen(builder.fmul(di, di))), accs[3][g])
                e2 = builder.fmul(ep, ep)
                e2w = widen(e2)
                builder.store(builder.fadd(builder.load(accs[4][g]), e2w), accs[4][g])
                builder.store(builder.select(builder.fcmp_ordered(">=", e2w, safev), e2, zt), eptr, align=8)
        for f in range(5):
            for g in range(groups):
                off = builder.add(builder.mul(ir.Constant(i64, f), arow), ir.Constant(i64, g * _VEC))
                builder.store(builder.load(accs[f][g]), ptr(acca.data, off, vd), align=8)
        return context.get_dummy_value()

    return sig, codegen


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


@kernel_inner
def _snap_single(db, e2b, l, lo, hi, r, m, pivmin, mid):
    """Eigenvalue ``r`` (0-based) of the ``m`` in the verified bracket
    (lo, hi] of slot ``l``'s split matrix, exactly, when all of them are
    eigenvalues of 1x1 blocks (diagonal entries with zero couplings); else
    ``mid``.

    "In the bracket" is decided as the Sturm count decides it (a 1x1 block
    d counts below x when d - x < 0 or |d - x| < pivmin), so the block
    values found are exactly the m eigenvalues the counts at lo and hi
    enclose.  The value is then exact, lies in the bracket (the error bound
    holds) and is monotone in the index.
    """
    n = db.shape[0]
    cand = np.empty(n, db.dtype)
    c = 0
    for i in range(n):
        if e2b[i, l] == 0 and (i == n - 1 or e2b[i + 1, l] == 0):
            qh = db[i, l] - hi
            ql = db[i, l] - lo
            below_hi = qh < 0 or abs(qh) < pivmin
            below_lo = ql < 0 or abs(ql) < pivmin
            if below_hi and not below_lo:
                cand[c] = db[i, l]
                c += 1
    if c != m or r < 0 or r >= m:
        return mid
    return np.sort(cand[:c])[r]


@kernel_inner
def _laguerre_modified(x, y, step, S1, S2, n, dprev, nlag):
    """A better shift than Laguerre's ``y`` where Laguerre converges only
    linearly; NaN where plain Laguerre is right.

    ``S1``/``S2``: sum 1/(x - w_j) and sum 1/(x - w_j)**2 over the n
    eigenvalues; ``dprev``: the previous step.  When w has a close
    neighbour on its own side, the pair looks like a double root from
    farther away than its gap, and Laguerre converges linearly (steps
    shrink ~3x a pass instead of cubically).  That is detected by the step
    ratio and by S1**2 / S2 (about the number of roots that dominate both
    sums: ~2 near a pair, with S1 pointing towards w) and answered with
    Laguerre's step for a root of multiplicity 2 (Hansen & Patrick), which
    lands near the pair.  The shift may overshoot w: the caller only ever
    uses it as a shift, never as a bound.
    """
    up = y > x
    towards = S1 < 0.0 if up else S1 > 0.0
    if towards and nlag >= 2 and S1 * S1 >= 1.6 * S2 and 0.15 * dprev < step < 0.7 * dprev:
        h2 = (0.5 * n - 1.0) * (n * S2 - S1 * S1)
        sq2 = math.sqrt(h2) if h2 > 0.0 else 0.0
        y2 = x - n / (S1 - sq2) if up else x - n / (S1 + sq2)
        if abs(y2 - x) > step and (y2 > x) == up:
            return y2
    return np.nan


@kernel_inner
def _kth_block(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info):
    """Eigenvalue ``lane_k[j]`` of matrix ``lane_b[j]`` for jobs start..stop.

    The block runs LANES slots side by side; a slot whose eigenvalue has
    converged loads the next job, so a block costs about the mean number of
    iterations per eigenvalue rather than the maximum.

    Per slot: bisection (with interpolation of the counting function) on
    Sturm counts from widened Gershgorin bounds (dstebz), switching to
    Laguerre's method once a shift ``x`` has exactly k or k + 1 eigenvalues
    below it.  Between two consecutive roots Laguerre's two candidates lie on
    either side of ``x`` and the iteration converges monotonically, never
    jumping over a root (Li & Zeng, SIAM J. Matrix Anal. Appl. 15, 1994): from
    count k + 1 the downward candidate converges to w_k, from count k the
    upward one; it converges cubically.  When its step falls below the tolerance, the next
    shift is pushed just past the estimate so that a count closes the bracket
    from the other side; when cubic convergence predicts the next iterate
    within the tolerance, a pair of counts either side of it must confirm
    that (one gathered pass in the tail, else two passes).  Only Sturm
    counts move bracket ends (Laguerre only proposes shifts), so the bracket
    always contains w and the dstebz stopping rule
    ``hi - lo <= max(abstol, pivmin, 2 eps max(|lo|, |hi|))`` decides
    convergence exactly as for bisection.
    """
    n = d.shape[1]
    # Always LANES wide: the vectorised lane loop has no fast path for a
    # remainder, so idle slots hold an inert zero matrix instead.
    L = LANES
    T = d.dtype.type
    half = T(0.5)
    # Zeros: a slot that never gets a job must hold an inert matrix (garbage
    # could be subnormal or NaN, and slow down every division of the pass).
    # Few allocations (each costs ~60 ns; a block made 25): the work arrays
    # are rows of three.
    mats = np.zeros((2, n, ROW), d.dtype)
    db = mats[0]
    e2b = mats[1]
    fstate = np.zeros((19, L), d.dtype)
    x = fstate[0]
    lo = fstate[1]
    hi = fstate[2]
    atol = fstate[3]
    dxp = fstate[4]
    st = fstate[5:11]
    x2 = fstate[11]  # second shift of an end-game pair
    # A pair evaluated in two passes: the first shift and its state, kept
    # while the second shift runs alone.
    xsave = fstate[12]
    stsave = fstate[13:19]
    # Gathered passes: shifts and states per gathered lane.
    gstate = np.zeros((7, 2 * _VEC), d.dtype)
    gx = gstate[0]
    gst = gstate[1:7]
    istate = np.zeros((11, L), np.int64)
    clo = istate[0]
    chi = istate[1]
    expo = istate[2]
    job = istate[3]
    budget = istate[4]
    nlag = istate[5]
    nint = istate[6]
    act = istate[7]  # busy slots, for _sturm_pass_gather
    # End-game pair state: 0 none; 1 the slot wants a second count at x2
    # (has it, after a gathered pass); 2 the pass could not take x2, so the
    # next one runs it alone; 3 that pass ran.
    pair = istate[8]
    cnt2 = istate[9]  # the count at x2
    single = istate[10]  # 1: the (split) matrix has a 1x1 block
    moments = np.zeros((2, L))
    mu = moments[0]
    sig = moments[1]
    pivmin = T(safemin)  # scaled so that max e**2 < 1: dstebz's safemin*max(1, e2max)
    rtol = T(2.0 * eps)

    nxt_job = _fill_block(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info,
                          db, e2b, x, lo, hi, atol, clo, chi, mu, sig, job, expo, budget, nlag, nint, dxp, single)
    running = 0
    for l in range(L):
        running += job[l] >= 0

    while running > 0:
        if running <= _FEW_SLOTS:
            nact = 0
            for l in range(L):
                if job[l] >= 0:
                    act[nact] = l
                    gx[nact] = x[l]
                    nact += 1
            # End-game pairs take the gathered lanes left over: the second
            # vector costs little more than the first.
            ntot = nact
            for l in range(L):
                if pair[l] == 1:
                    if ntot < 2 * _VEC:
                        act[ntot] = l
                        gx[ntot] = x2[l]
                        ntot += 1
                    else:
                        pair[l] = 2
            _sturm_pass_gather(db, e2b, gx, pivmin, gst, act, ntot)
            for t in range(nact):
                for f in range(6):
                    st[f, act[t]] = gst[f, t]
            for t in range(nact, ntot):
                cnt2[act[t]] = int(gst[5, t])
        else:
            _sturm_pass(db, e2b, x, pivmin, st)
            for l in range(L):
                if pair[l] == 1:
                    pair[l] = 2
        for l in range(L):
            j = job[l]
            if j < 0:
                continue
            if pair[l] == 2:
                # Run the pair's second shift alone next pass, keeping
                # this one's state: both counts then reach the update
                # below exactly as from one gathered pass, so results do
                # not depend on which lanes shared the block.
                xsave[l] = x[l]
                for f in range(6):
                    stsave[f, l] = st[f, l]
                x[l] = x2[l]
                pair[l] = 3
                continue
            if pair[l] == 3:
                cnt2[l] = int(st[5, l])
                x[l] = xsave[l]
                for f in range(6):
                    st[f, l] = stsave[f, l]
                pair[l] = 1
            k = lane_k[j]
            xl = x[l]
            cl = int(st[5, l])
            if cl <= k:
                lo[l] = xl
                clo[l] = cl
            else:
                hi[l] = xl
                chi[l] = cl
            if pair[l] != 0:
                # The pair's second count: it moves an end only inwards.
                pair[l] = 0
                xs2 = x2[l]
                c2 = cnt2[l]
                if c2 <= k:
                    if xs2 > lo[l]:
                        lo[l] = xs2
                        clo[l] = c2
                elif xs2 < hi[l]:
                    hi[l] = xs2
                    chi[l] = c2
            lol = lo[l]
            hil = hi[l]
            thr = max(atol[l], pivmin, rtol * max(abs(lol), abs(hil)))
            budget[l] -= 1
            finished = hil - lol <= thr
            if finished or budget[l] < 0:
                # The eigenvector kernel takes the scaled value: unscaled
                # subnormal eigenvalues have lost bits.
                ws[j] = half * (lol + hil)
                if finished and single[l] != 0:
                    ws[j] = _snap_single(db, e2b, l, lol, hil, k - clo[l], chi[l] - clo[l], pivmin, ws[j])
                w[j] = math.ldexp(float(ws[j]), expo[l])
                info[j] = INFO_OK if finished else INFO_NO_CONVERGENCE
                job[l] = -1
                if nxt_job < stop:
                    # Only then: the call passes ~25 arrays and cost ~0.2 us
                    # even with nothing to load (4 us of a 25-job block).
                    nxt_job = _fill_slot(d, e, lane_b, lane_k, l, nxt_job, stop, abstol, eps, safemin, w, ws, info,
                                         db, e2b, x, lo, hi, atol, clo, chi, mu, sig, job, expo, budget, nlag, nint, dxp, single)
                if job[l] < 0:
                    running -= 1
                continue
            width = hil - lol
            nxt = lol + half * width
            # Laguerre as soon as the shift has exactly k (or k + 1) eigenvalues
            # below it: the root it then converges to, monotonically, is the
            # nearest one above (below), i.e. w_k -- no need to isolate w_k
            # from the far side of the bracket first.
            lag = (cl == k or cl == k + 1) and nlag[l] < _MAX_LAGUERRE
            if lag:
                S1 = st[3, l]
                S2 = st[4, l]
                H = (n - 1) * (n * S2 - S1 * S1)
                sq = math.sqrt(H) if H > 0 else 0.0
                if cl > k:  # w below xl: the candidate that moves down
                    y = xl - n / (S1 + sq)
                else:
                    y = xl - n / (S1 - sq)
                step = abs(y - xl)
                # Crawl: one root on the other side of xl dominates both sums
                # (S1 points away from w, S1**2 ~ S2), so both candidates are
                # about its distance and the steps only double per pass.
                # Interpolating the counting function gets away faster.
                if (S1 > 0.0 if cl == k else S1 < 0.0) and S1 * S1 >= 0.9 * S2 and step < 0.05 * width:
                    lag = False
            if lag:
                nlag[l] += 1
                ymod = _laguerre_modified(xl, y, step, S1, S2, n, dxp[l], nlag[l])
                if lol < ymod < hil:
                    # Not a Laguerre point (no bound, no end game): a shift.
                    nxt = ymod
                elif step <= dxp[l]:
                    # Safeguard in the spirit of rtsafe (Numerical Recipes):
                    # accept the step only if it is no longer than the
                    # previous one.
                    # The tolerance that will apply once the bracket closes
                    # around y (thr above may still be set by a far end).
                    tfin = max(atol[l], pivmin, rtol * abs(y))
                    push = half * tfin
                    endgame = step < push
                    if endgame:
                        # Converged estimate: step a little past it so that
                        # the next count brackets w within the tolerance.
                        y = y - push if cl > k else y + push
                    elif nlag[l] >= 2 and step * step * step * step <= 0.125 * tfin * dxp[l] * dxp[l] * dxp[l]:
                        # Cubic convergence (error after a step ~ step**4 /
                        # previous step**3) predicts y within tfin/8 of w, but
                        # a prediction proves nothing: two counts, at y -+ p,
                        # must bracket w.  In a gathered pass both run in
                        # the same pass (a pair); otherwise the second is
                        # dropped, the count at y + p (on this side) is a
                        # plain Laguerre iterate and the next step ends it.
                        # p = tfin/5: width 0.4 tfin plus two roundings of
                        # y's last bit (<= tfin/4 each) stays within tfin.
                        p = 0.2 * tfin
                        near = y + p if cl > k else y - p
                        far = y - p if cl > k else y + p
                        if lol < near < hil and lol < far < hil:
                            y = near
                            x2[l] = T(far)
                            pair[l] = 1
                            endgame = True
                    if not (endgame and lol < y < hil):
                        # Exact Laguerre steps never leave the bracket; rounding
                        # near an end can, and then w lies within thr/2 of it.
                        y = min(max(y, lol + half * thr), hil - half * thr)
                    if lol < y < hil:  # False for NaN (overflow near a pole)
                        nxt = y
                else:
                    # Crawling away from a neighbouring root, the steps about
                    # double each time: jump ahead instead of bisecting a
                    # bracket whose far end is still unresolved.
                    y = xl + 2.0 * (y - xl)
                    if lol < y < hil:
                        nxt = y
            else:
                # Isolating phase: interpolate the eigenvalue counting function
                # (smooth inside the spectrum) to guess where count = k + 1/2;
                # every fifth step bisects, so the bracket shrinks at least by
                # (1 - _CLAMP)**4 * 0.5 per five steps (tuned on random
                # matrices: fewer passes than every 2nd/3rd/4th step).
                nint[l] += 1
                if nint[l] % 5 != 0:
                    frac = (k + 0.5 - clo[l]) / (chi[l] - clo[l])
                    y = lol + min(max(frac, _CLAMP), 1.0 - _CLAMP) * width
                    if sig[l] > 0.0:
                        # Interpolate in the normal model's quantile space,
                        # where the counting function is nearly linear
                        # (eigenvalues thin out towards the ends).
                        ulo = _norm_cdf((lol - mu[l]) / sig[l])
                        uhi = _norm_cdf((hil - mu[l]) / sig[l])
                        u = ulo + frac * (uhi - ulo)
                        if 0.0 < u < 1.0:
                            y = mu[l] + sig[l] * _norm_ppf(u)
                            y = min(max(y, lol + _CLAMP * width), hil - _CLAMP * width)
                    nxt = y
            dxp[l] = abs(nxt - xl)
            x[l] = T(nxt)


def chunk_size(M):
    """Jobs per parallel chunk: one chunk per thread.

    Slots refill from the chunk's queue, so only the last passes of a chunk
    run with idle slots (the tail, ~5-10 passes waiting for the slowest
    eigenvalues).  One chunk per thread pays that tail once per thread;
    jobs cost about the same, so static balance is good.
    """
    return max(1, -(-M // _num_threads()))


def _num_threads():
    """``numba.get_num_threads()``, in ~0.1 us instead of ~0.7 us.

    The public function takes two locks on every call to check that the
    threading layer is up; once it is, its ctypes getter gives the same
    answer.  (Not callable from a cached kernel: numba refuses to cache
    functions that hold its ctypes pointer.)
    """
    global _get_num_threads
    if _get_num_threads is None:
        count = numba.get_num_threads()  # starts the threading layer
        _get_num_threads = getattr(_parallel, "_get_num_threads", None) or numba.get_num_threads
        return count
    return _get_num_threads()


_get_num_threads = None


@kernel_parallel
def kth_eigenvalues_parallel(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ws, info):
    """Eigenvalue ``lane_k[j]`` of matrix ``lane_b[j]`` into ``w[j]``.

    d (B, n), e (B, n-1), lane_b/lane_k (M,) int64 with 0 <= lane_k < n;
    outputs w (M,), ws (M,) and info (M,) int32: ``w`` the eigenvalues, ``ws``
    those of the matrices scaled by :func:`_scale_exponent`'s power of two.  Chunks of ``chunk`` jobs run in
    parallel, each through one block of LANES slots.
    """
    M = lane_b.shape[0]
    nchunks = (M + chunk - 1) // chunk
    for c in prange(nchunks):
        start = c * chunk
        stop = min(start + chunk, M)
        _kth_block(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info)


@kernel_serial
def kth_eigenvalues_serial(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ws, info):
    """Serial twin of :func:`kth_eigenvalues_parallel`."""
    M = lane_b.shape[0]
    nchunks = (M + chunk - 1) // chunk
    for c in range(nchunks):
        start = c * chunk
        stop = min(start + chunk, M)
        _kth_block(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info)


@kernel_inner
def _sturm_count_value(d, e, b, x, safemin):
    """Number of eigenvalues of matrix ``b`` below ``x`` (``x`` unscaled)."""
    n = d.shape[1]
    ex, finite, is_zero = _scale_exponent(d, e, b)
    if not finite:
        return -1
    ma, mb = _pow2_pair(ex)
    # Scaled Gershgorin discs lie within [-3, 3]: clamping keeps x finite.
    xs = min(max(x * ma * mb, -8.0), 8.0)
    cnt = 0
    q = 1.0
    eprev2 = 0.0
    for i in range(n):
        q = d[b, i] * ma * mb - xs - (eprev2 / q if eprev2 != 0.0 else 0.0)
        if abs(q) < safemin:
            q = -safemin
        if q < 0.0:
            cnt += 1
        if i < n - 1:
            ei = e[b, i] * ma * mb
            eprev2 = ei * ei if ei * ei >= safemin else 0.0
    return cnt


@kernel_parallel
def value_counts_parallel(d, e, vl, vu, safemin, il, iu):
    """Index range [il, iu) of the eigenvalues in the half-open (vl, vu].

    ``il``/``iu`` (B,) int64 outputs; -1 marks a non-finite matrix.
    The count is computed in float64 for both dtypes: it only fixes how many
    eigenvalues the interval holds, not their accuracy.
    """
    B = d.shape[0]
    for b in prange(B):
        il[b] = _sturm_count_value(d, e, b, vl, safemin)
        iu[b] = _sturm_count_value(d, e, b, vu, safemin)


@kernel_serial
def value_counts_serial(d, e, vl, vu, safemin, il, iu):
    """Serial twin of :func:`value_counts_parallel`."""
    B = d.shape[0]
    for b in range(B):
        il[b] = _sturm_count_value(d, e, b, vl, safemin)
        iu[b] = _sturm_count_value(d, e, b, vu, safemin)


@kernel_inner
def _start_vector(x, seed):
    """Deterministic pseudo-random start vector in (-1, 1) (cf. dlarnv).

    Seeded by the eigenvalue's index, so a vector does not depend on which
    other eigenvalues were requested or where the matrix sits in the batch.
    splitmix64's output mixing matters: a plain LCG makes the start vectors of
    consecutive seeds nearly affine in the seed, i.e. linearly dependent,
    which starves Gram-Schmidt inside a large cluster of one direction.
    """
    state = np.uint64(seed) * np.uint64(0xD1B54A32D192ED03)
    for i in range(x.shape[0]):
        state += np.uint64(0x9E3779B97F4A7C15)
        z = state
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        x[i] = 2.0 * (float(z >> np.uint64(11)) / 9007199254740992.0) - 1.0


@kernel_inner
def _lu_shifted(ds, es, lam, a, bu, d2, cl, piv):
    """LU with partial pivoting of ``T - lam I`` (LAPACK dlagtf).

    U has diagonal ``a``, super-diagonals ``bu`` and ``d2``; ``cl`` holds the
    multipliers and ``piv[k]`` whether rows k, k+1 were swapped.
    """
    n = ds.shape[0]
    for i in range(n):
        a[i] = ds[i] - lam
    for i in range(n - 1):
        bu[i] = es[i]
        cl[i] = es[i]
        d2[i] = 0.0
    for k in range(n - 1):
        if abs(a[k]) >= abs(cl[k]):
            piv[k] = False
            mult = cl[k] / a[k] if a[k] != 0.0 else 0.0
            cl[k] = mult
            a[k + 1] -= mult * bu[k]
        else:
            piv[k] = True
            mult = a[k] / cl[k]
            a[k] = cl[k]
            temp = a[k + 1]
            a[k + 1] = bu[k] - mult * temp
            if k < n - 2:
                d2[k] = bu[k + 1]
                bu[k + 1] = -mult * d2[k]
            bu[k] = temp
            cl[k] = mult


@kernel_inner
def _lu_solve(ainv, bu, d2, cl, piv, y):
    """Solve ``(T - lam I) x = y`` in place from :func:`_lu_shifted` (dlagts).

    ``ainv`` holds the reciprocals of U's (perturbed) pivots: multiplying
    keeps the division's latency out of the back-substitution chain.  The
    solution is rescaled on the fly if it grows towards overflow (only its
    direction matters to inverse iteration).
    """
    n = ainv.shape[0]
    for k in range(n - 1):
        if not piv[k]:
            y[k + 1] -= cl[k] * y[k]
        else:
            temp = y[k]
            y[k] = y[k + 1]
            y[k + 1] = temp - cl[k] * y[k]
    for k in range(n - 1, -1, -1):
        t = y[k]
        if k < n - 1:
            t -= bu[k] * y[k + 1]
        if k < n - 2:
            t -= d2[k] * y[k + 2]
        t = t * ainv[k]
        y[k] = t
        if abs(t) > 1e150:
            for i in range(n):
                y[i] *= 1e-150


@kernel_inner
def _block_counts(ds, es2, bstart, nblk, x, cnt):
    """Per block of a split matrix, the number of its eigenvalues below ``x``
    into ``cnt[:nblk]`` (block ``q`` is rows bstart[q]..bstart[q+1]-1;
    ``es2[i]`` = e_i**2, zero at the splits)."""
    for q in range(nblk):
        c = 0
        r = 1.0
        for i in range(bstart[q], bstart[q + 1]):
            qv = ds[i] - x - (es2[i - 1] * r if i > bstart[q] else 0.0)
            if abs(qv) < 1e-300:
                qv = -1e-300
            r = 1.0 / qv
            if qv < 0.0:
                c += 1
        cnt[q] = c


@kernel_inner
def _assign_blocks(ds, es2, bstart, nblk, ws, kidx, m, onenrm, eps, blk):
    """The block of each eigenvalue ``ws[j]`` (global index ``kidx[j]``,
    consecutive) of a split matrix, into ``blk[:m]`` (as dstebz's iblock).

    Walks the global indices upwards from below the first one; index g
    (value about ``ws[g - kidx[0]]``) goes to a block with an eigenvalue
    not yet taken within ``delta`` of the value (block Sturm counts at
    value -+ delta), ``delta`` doubling from 0.5 eps |value| (at least
    1e-9 eps ||T||) until one is found: the nearest block wins.  Each block
    thus gets as many eigenvalues as it has in that range, so vectors of
    different blocks never compete for one direction.
    """
    cnt = np.zeros(nblk, np.int64)
    cnt2 = np.zeros(nblk, np.int64)
    taken = np.zeros(nblk, np.int64)
    delta0 = 8.0 * eps * onenrm + 1e-300
    _block_counts(ds, es2, bstart, nblk, ws[0] - delta0, taken)
    g = 0
    for q in range(nblk):
        g += taken[q]
    for gg in range(g, kidx[m - 1] + 1):
        j = gg - kidx[0]
        lam = ws[max(j, 0)]
        # Smallest delta first: the block whose untaken eigenvalue is
        # nearest (to a factor 2) wins.
        # (At most ~30 doublings below eps ||T||, the eigenvalues' accuracy.)
        delta = max(0.5 * eps * abs(lam), 1e-9 * eps * onenrm) + 1e-300
        pick = -1
        for _ in range(2100):
            _block_counts(ds, es2, bstart, nblk, lam + delta, cnt)
            _block_counts(ds, es2, bstart, nblk, lam - delta, cnt2)
            for q in range(nblk):  # an untaken eigenvalue within delta
                if cnt[q] > max(taken[q], cnt2[q]):
                    pick = q
                    break
            if pick < 0 and delta > delta0:
                for q in range(nblk):  # an untaken one below lam + delta
                    if cnt[q] > taken[q]:
                        pick = q
                        break
            if pick >= 0:
                break
            delta *= 2.0
        if pick < 0:
            pick = 0
        taken[pick] += 1
        if j >= 0:
            blk[j] = pick


@kernel_inner
def _stein_block(ds, es, ws, kidx, js, nj, v, row0, tnrm, eps, work, piv):
    """dstein on one block (rows row0.. of ``v``): vectors for the ``nj``
    ascending eigenvalues ``ws[js[:nj]]`` into columns ``js[:nj]``; returns
    an info code.  ``ds``/``es`` are the block's scaled entries, ``tnrm``
    the whole matrix's 1-norm.

    LU of ``T - w I`` with partial pivoting, up to 5 solves from a
    pseudo-random start until the growth shows convergence, then extra
    solves; eigenvalues closer than 10 eps |w| nudged apart; vectors of a
    cluster (consecutive gaps <= 1e-3 ||block||_1) re-orthogonalised by
    modified Gram-Schmidt, once more after the last solve (a vector that
    Gram-Schmidt shrank loses orthogonality when normalised otherwise).
    A vector whose growth test never passes is accepted only if its
    residual proves it: ||T v - w v||_2 <= 4 n eps ||T||_1, the bound
    promised.  (The eigenvalues are accurate to eps ||T||, not eps ||block||:
    a block much smaller than T can fail dstein's test, which is relative
    to the block, with a vector as good as any.)
    """
    n = ds.shape[0]
    onenrm = 0.0
    for i in range(n):
        rs = abs(ds[i])
        if i > 0:
            rs += abs(es[i - 1])
        if i < n - 1:
            rs += abs(es[i])
        onenrm = max(onenrm, rs)
    if onenrm == 0.0:
        onenrm = 1.0  # zero block: any orthonormal basis; keep the algebra defined
    # dstein's cluster rule is relative to the block, as its eigenvalues
    # (from dstebz, per block) are; ours are accurate to eps ||T||, so a
    # block much smaller than T has clusters by T's measure too.
    ortol = 1e-3 * max(onenrm, tnrm)
    dtpcrt = math.sqrt(0.1 / n)
    tolpiv = eps * onenrm
    a = work[0, :n]
    ainv = work[1, :n]
    bu = work[2, :n]
    d2 = work[3, :n]
    cl = work[4, :n]
    x = work[5, :n]
    info = INFO_OK
    gp = 0
    xjm = 0.0
    for jj in range(nj):
        j = js[jj]
        xj = ws[j]
        if jj > 0:
            pertol = 10.0 * abs(eps * xj)
            if xj - xjm < pertol:
                xj = xjm + pertol
            if xj - xjm > ortol:
                gp = jj
        xjm = xj
        _lu_shifted(ds, es, xj, a, bu, d2, cl, piv)
        for i in range(n):
            # dlagts(job=-1): perturb small pivots to keep the solve finite.
            if abs(a[i]) < tolpiv:
                a[i] = tolpiv if a[i] >= 0.0 else -tolpiv
            ainv[i] = 1.0 / a[i]
        # dstein makes 2 extra solves after the growth test passes; they
        # matter for orthogonality inside a cluster.  An isolated eigenvalue
        # (gaps > 1e-3 ||T||) needs one: after two solves the components
        # along other eigenvectors are below (eps ||T|| / gap)**2.  (With none,
        # residuals of random 6x6 matrices exceeded 10 n eps ||T||.)
        in_cluster = jj > gp or (jj + 1 < nj and (ws[js[jj + 1]] - xj) <= ortol)
        extra = 2 if in_cluster else 1
        _start_vector(x, kidx[j])
        nrmchk = 0
        converged = False
        for its in range(5 + 2):
            asum = 0.0
            for i in range(n):
                asum += abs(x[i])
            if asum == 0.0 or not (asum - asum == 0.0):
                _start_vector(x, kidx[j] + 7919 * (its + 1))
                asum = 0.0
                for i in range(n):
                    asum += abs(x[i])
            scl = n * onenrm * max(eps, abs(a[n - 1])) / asum
            for i in range(n):
                x[i] *= scl
            _lu_solve(ainv, bu, d2, cl, piv, x)
            if jj > gp:
                _mgs(x, v, js, gp, jj, row0)
            nrm = 0.0
            for i in range(n):
                nrm = max(nrm, abs(x[i]))
            if nrm < dtpcrt:
                continue
            nrmchk += 1
            if nrmchk < extra + 1:
                continue
            converged = True
            break
        if jj > gp:
            _mgs(x, v, js, gp, jj, row0)
        nrm2 = 0.0
        jmax = 0
        amax = -1.0
        for i in range(n):
            nrm2 += x[i] * x[i]
            if abs(x[i]) > amax:
                amax = abs(x[i])
                jmax = i
        scl = 1.0 / math.sqrt(nrm2) if nrm2 > 0.0 else 0.0
        if x[jmax] < 0.0:
            scl = -scl
        for i in range(n):
            v[row0 + i, j] = x[i] * scl
        if not converged:
            # Certify by the residual instead of the growth test.
            res2 = 0.0
            for i in range(n):
                r = (ds[i] - ws[j]) * v[row0 + i, j]
                if i > 0:
                    r += es[i - 1] * v[row0 + i - 1, j]
                if i < n - 1:
                    r += es[i] * v[row0 + i + 1, j]
                res2 += r * r
            if not (nrm2 > 0.0 and math.sqrt(res2) <= 4.0 * n * eps * tnrm):
                info = INFO_VEC_NO_CONVERGENCE
    return info


@kernel_inner(inline="always")
def _mgs(x, v, js, gp, jj, row0):
    """Modified Gram-Schmidt of ``x`` against columns js[gp:jj] of ``v``
    (rows row0.. of the block)."""
    n = x.shape[0]
    for c in range(gp, jj):
        col = js[c]
        dot = 0.0
        for i in range(n):
            dot += x[i] * v[row0 + i, col]
        for i in range(n):
            x[i] -= dot * v[row0 + i, col]


@kernel_inner
def _inverse_iteration(d, e, b, ws, kidx, m, v, eps, safemin):
    """Eigenvectors of matrix ``b`` for its ``m`` ascending eigenvalues ``ws``
    (of the matrix scaled by the exponent :func:`_scale_exponent` returns, as
    the eigenvalue kernel writes them), with global indices ``kidx``.

    LAPACK dstein block by block: the matrix splits where dstebz splits it
    (:func:`_split_e2`), each eigenvalue goes to its block
    (:func:`_assign_blocks`), and each block runs :func:`_stein_block`;
    a vector is zero outside its block (a 1x1 block's is a unit vector).
    Everything runs on the scaled matrix (largest entry in [0.5, 1));
    vectors are scale-invariant.  The entry of largest magnitude is made
    positive.  Returns an info code; writes columns 0..m-1 of ``v`` (n, mcols).
    """
    n = d.shape[1]
    ex, finite, is_zero = _scale_exponent(d, e, b)
    if not finite:
        for j in range(m):
            for i in range(n):
                v[i, j] = np.nan
        return INFO_NONFINITE
    ma, mb = _pow2_pair(ex)
    ds = np.empty(n)
    es = np.empty(max(n - 1, 1))
    es2 = np.zeros(n)
    for i in range(n):
        ds[i] = d[b, i] * ma * mb
    for i in range(n - 1):
        es[i] = e[b, i] * ma * mb
    # Splits, as the eigenvalue kernel makes them (in float64 here).
    bstart = np.empty(n + 1, np.int64)
    nblk = 0
    bstart[0] = 0
    for i in range(n - 1):
        es2[i] = _split_e2(es[i] * es[i], ds[i], ds[i + 1], eps * eps, safemin)
        if es2[i] == 0.0:
            nblk += 1
            bstart[nblk] = i + 1
    nblk += 1
    bstart[nblk] = n
    blk = np.zeros(max(m, 1), np.int64)
    onenrm = 0.0
    for i in range(n):
        onenrm = max(onenrm, abs(ds[i]) + (abs(es[i - 1]) if i > 0 else 0.0) + (abs(es[i]) if i < n - 1 else 0.0))
    if nblk > 1 and m > 0:
        _assign_blocks(ds, es2, bstart, nblk, ws, kidx, m, onenrm, eps, blk)
    work = np.empty((6, n))
    piv = np.empty(n, np.bool_)
    js = np.empty(max(m, 1), np.int64)
    info = INFO_OK
    for q in range(nblk):
        s0 = bstart[q]
        s1 = bstart[q + 1]
        nj = 0
        for j in range(m):
            if blk[j] == q:
                js[nj] = j
                nj += 1
        if nj == 0:
            continue
        for jj in range(nj):
            for i in range(n):
                v[i, js[jj]] = 0.0
        if s1 - s0 == 1:
            v[s0, js[0]] = 1.0
            continue
        # es[s0:s1-1] are the block's off-diagonals (the split es[s1-1]
        # is outside it).
        st = _stein_block(ds[s0:s1], es[s0:s1 - 1], ws, kidx, js, nj, v, s0, onenrm, eps, work, piv[: s1 - s0])
        if st != INFO_OK:
            info = st
    return info


@kernel_parallel
def eigenvectors_parallel(d, e, w, kidx, mcount, eps, safemin, v, info):
    """Eigenvectors for each matrix of the batch.

    d (B, n), e (B, n-1), w (B, m) ascending scaled eigenvalues (as the
    eigenvalue kernel writes them) with global indices
    kidx (B, m), mcount (B,) how many of the m are valid, v (B, n, m) output,
    info (B,) int32 output.  Parallel over matrices: vectors of one matrix
    depend on each other through cluster re-orthogonalisation.
    """
    B = d.shape[0]
    for b in prange(B):
        info[b] = _inverse_iteration(d, e, b, w[b], kidx[b], mcount[b], v[b], eps, safemin)


@kernel_serial
def eigenvectors_serial(d, e, w, kidx, mcount, eps, safemin, v, info):
    """Serial twin of :func:`eigenvectors_parallel`."""
    B = d.shape[0]
    for b in range(B):
        info[b] = _inverse_iteration(d, e, b, w[b], kidx[b], mcount[b], v[b], eps, safemin)


@kernel_inner
def _eigvec_block(d, e, ws, kidx, start, stop, eps, safemin, v, info):
    """One eigenvector each for matrices start..stop (at most LANES), with
    the matrices interleaved as SIMD lanes.

    The same algorithm as :func:`_inverse_iteration` for an isolated
    eigenvalue (LU of ``T - w I`` with partial pivoting, dlagtf; small pivots
    perturbed to eps ||T||_1; a solve that passes dstein's growth test plus
    one more), but the LU and the solves are serial chains of n steps, so
    running LANES matrices side by side keeps the divider and FMA units busy.
    Pivoting is a per-lane select.  Lanes whose matrix splits, whose first
    solve fails the growth test, or whose solve overflows, are redone by
    :func:`_inverse_iteration` (the full dstein loop, block by block).

    Layout, for speed: every loop runs over all LANES slots (a constant trip
    count; slots past ``stop`` hold the identity matrix), and each loop
    writes few distinct arrays -- U's rows live in one (n, 6, LANES) array --
    so that LLVM's runtime alias checks stay within its limit and the lane
    loops are vectorised.  Both halved this kernel's time.
    """
    n = d.shape[1]
    nl = stop - start
    L = LANES
    dm = np.empty((n, ROW))  # scaled d - w
    eb = np.empty((n, ROW))  # scaled e (eb[n-1] = 0)
    # U's pivot, first and second superdiagonal, L's multiplier, row swap
    # (1.0 / 0.0) and the pivot's reciprocal.
    U = np.empty((n, 6, L))
    cur = np.empty((2, L))
    y = np.empty((n, ROW))
    col = np.empty(n)
    lane = np.empty((4, L))  # scale factors ma, mb; shift w; 1-norm
    ok = np.ones(L, np.bool_)
    # Raw copies, one matrix at a time; non-finite matrices and idle slots
    # hold inert matrices (0 and the identity) with shift 0.
    for l in range(L):
        b = start + l
        finite = False
        ex = 0
        if l < nl:
            ex, finite, is_zero = _scale_exponent(d, e, b)
        ok[l] = finite
        ma, mb = _pow2_pair(ex)
        lane[0, l] = ma
        lane[1, l] = mb
        lane[2, l] = ws[b, 0] if finite else 0.0
        if finite:
            for i in range(n):
                dm[i, l] = d[b, i]
            for i in range(n - 1):
                eb[i, l] = e[b, i]
        else:
            for i in range(n):
                dm[i, l] = 0.0 if l < nl else 1.0
            for i in range(n - 1):
                eb[i, l] = 0.0
        eb[n - 1, l] = 0.0
    # Scale, shift, and the 1-norm (max row sum).
    for l in range(L):
        lane[3, l] = 0.0
        cur[0, l] = 0.0
    for i in range(n):
        for l in range(L):
            ma = lane[0, l]
            mb = lane[1, l]
            di = dm[i, l] * ma * mb
            ei = eb[i, l] * ma * mb
            rs = abs(di) + abs(ei) + abs(cur[0, l])
            dm[i, l] = di - lane[2, l]
            eb[i, l] = ei
            cur[0, l] = ei
            lane[3, l] = rs if rs > lane[3, l] else lane[3, l]
    for l in range(L):
        lane[3, l] = lane[3, l] if lane[3, l] > 0.0 else 1.0
    # Matrices that split (as in _split_e2) go to _inverse_iteration, which
    # works block by block.
    eps2 = eps * eps
    for i in range(n - 1):
        for l in range(L):
            w0 = lane[2, l]
            e2 = eb[i, l] * eb[i, l]
            splits = e2 < eps2 * abs((dm[i, l] + w0) * (dm[i + 1, l] + w0)) + safemin
            ok[l] = ok[l] and not splits
    # LU with partial pivoting (dlagtf); the current row's pivot candidate
    # and superdiagonal, changed by the previous step, are carried in cur.
    for l in range(L):
        cur[0, l] = dm[0, l]
        cur[1, l] = eb[0, l]
    for k in range(n - 1):
        for l in range(L):
            ak = cur[0, l]
            bk = cur[1, l]
            ck = eb[k, l]
            ak1 = dm[k + 1, l]
            bk1 = eb[k + 1, l]
            swap = abs(ak) < abs(ck)
            den = ck if swap else ak
            num = ak if swap else ck
            mult = num / den if num != 0.0 else 0.0
            U[k, 0, l] = den
            U[k, 1, l] = ak1 if swap else bk
            U[k, 2, l] = bk1 if swap else 0.0
            U[k, 3, l] = mult
            U[k, 4, l] = 1.0 if swap else 0.0
            cur[0, l] = (bk - mult * ak1) if swap else (ak1 - mult * bk)
            cur[1, l] = -mult * bk1 if swap else bk1
    for l in range(L):
        U[n - 1, 0, l] = cur[0, l]
    for i in range(n):
        for l in range(L):
            # dlagts(job=-1): perturb small pivots to keep the solve finite.
            tolpiv = eps * lane[3, l]
            p = U[i, 0, l]
            p = p if abs(p) >= tolpiv else (tolpiv if p >= 0.0 else -tolpiv)
            U[i, 0, l] = p
            U[i, 5, l] = 1.0 / p
    # Start vectors: usually every matrix asks for the same k, so all lanes
    # get the first lane's vector row by row, and only lanes with another k
    # are redone (each vector generated once per run of equal k).
    seed = kidx[start, 0]
    _start_vector(col, seed)
    for i in range(n):
        for l in range(L):
            y[i, l] = col[i]
    for l in range(1, nl):
        k = kidx[start + l, 0]
        if k == kidx[start, 0]:
            continue
        if k != seed:
            seed = k
            _start_vector(col, seed)
        for i in range(n):
            y[i, l] = col[i]
    dtpcrt = math.sqrt(0.1 / n)
    acc = np.empty(L)
    for its in range(2):
        for l in range(L):
            acc[l] = 0.0
        for i in range(n):
            for l in range(L):
                acc[l] += abs(y[i, l])
        for l in range(L):
            acc[l] = n * lane[3, l] * max(eps, abs(U[n - 1, 0, l])) / acc[l] if acc[l] > 0.0 else 0.0
        for i in range(n):
            for l in range(L):
                y[i, l] *= acc[l]
        # Solve (T - w I) x = y (dlagts): L^-1 with the row swaps ...
        for k in range(n - 1):
            for l in range(L):
                yk = y[k, l]
                yk1 = y[k + 1, l]
                m = U[k, 3, l]
                swap = U[k, 4, l] != 0.0
                y[k, l] = yk1 if swap else yk
                y[k + 1, l] = (yk - m * yk1) if swap else (yk1 - m * yk)
        # ... then U^-1; multiplying by the pivots' reciprocals keeps the
        # division's latency out of the chain.
        for l in range(L):
            y[n - 1, l] = y[n - 1, l] * U[n - 1, 5, l]
        for l in range(L):
            y[n - 2, l] = (y[n - 2, l] - U[n - 2, 1, l] * y[n - 1, l]) * U[n - 2, 5, l]
        for k in range(n - 3, -1, -1):
            for l in range(L):
                y[k, l] = (y[k, l] - U[k, 1, l] * y[k + 1, l] - U[k, 2, l] * y[k + 2, l]) * U[k, 5, l]
        if its == 0:
            for l in range(L):
                acc[l] = 0.0
            for i in range(n):
                for l in range(L):
                    a = abs(y[i, l])
                    acc[l] = a if a > acc[l] else acc[l]
            for l in range(L):
                if not acc[l] >= dtpcrt:  # also catches NaN from overflow
                    ok[l] = False
    # Norms and the (first) entry of largest magnitude, all lanes at once.
    nrm = np.zeros((2, L))
    jmax = np.zeros(L, np.int64)
    for i in range(n):
        for l in range(L):
            t = y[i, l]
            a = abs(t)
            nrm[0, l] += t * t
            bigger = a > nrm[1, l]
            nrm[1, l] = a if bigger else nrm[1, l]
            jmax[l] = i if bigger else jmax[l]
    for l in range(L):
        nrm2 = nrm[0, l]
        if not (nrm2 > 0.0 and nrm2 - nrm2 == 0.0):
            ok[l] = False
        # Sign: the entry of largest magnitude (the first on ties) positive.
        scl = 1.0 / math.sqrt(nrm2) if ok[l] else 0.0
        acc[l] = -scl if y[jmax[l], l] < 0.0 else scl
    for l in range(nl):
        b = start + l
        if not ok[l]:
            # Rare: a split matrix, a slow start or overflow (many tiny
            # pivots): the full dstein loop, block by block.
            info[b] = _inverse_iteration(d, e, b, ws[b], kidx[b], 1, v[b], eps, safemin)
            continue
        scl = acc[l]
        for i in range(n):
            v[b, i, 0] = y[i, l] * scl
        info[b] = INFO_OK


@kernel_inner
def _even_blocks(count):
    """(number, size) of blocks of at most LANES matrices covering ``count``,
    split evenly: 50 = 25 + 25, not 32 + 18 (a block costs its full width)."""
    nblocks = (count + LANES - 1) // LANES
    return nblocks, (count + nblocks - 1) // nblocks


@kernel_parallel
def eigenvector1_parallel(d, e, ws, kidx, eps, safemin, v, info):
    """One eigenvector per matrix (m = 1, no cluster to re-orthogonalise),
    LANES matrices interleaved per block, blocks in parallel.  Same
    arguments as :func:`eigenvectors_parallel` without ``mcount``."""
    B = d.shape[0]
    nblocks, size = _even_blocks(B)
    for blk in prange(nblocks):
        _eigvec_block(d, e, ws, kidx, blk * size, min(blk * size + size, B), eps, safemin, v, info)


@kernel_serial
def eigenvector1_serial(d, e, ws, kidx, eps, safemin, v, info):
    """Serial twin of :func:`eigenvector1_parallel`."""
    B = d.shape[0]
    nblocks, size = _even_blocks(B)
    for blk in range(nblocks):
        _eigvec_block(d, e, ws, kidx, blk * size, min(blk * size + size, B), eps, safemin, v, info)


@kernel_inner
def _kth_pair_chunk(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info, v, vinfo):
    """Eigenvalues of matrices start..stop (one per matrix), then their
    eigenvectors in even blocks of at most LANES."""
    _kth_block(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info)
    ws2 = ws.reshape(ws.shape[0], 1)
    kidx = lane_k.reshape(lane_k.shape[0], 1)
    nblocks, size = _even_blocks(stop - start)
    for blk in range(nblocks):
        s0 = start + blk * size
        _eigvec_block(d, e, ws2, kidx, s0, min(s0 + size, stop), eps, safemin, v, vinfo)


@kernel_parallel
def kth_eigenpairs_parallel(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ws, info, v, vinfo):
    """:func:`kth_eigenvalues_parallel` and :func:`eigenvector1_parallel` in one
    parallel region, for one eigenvalue per matrix (``lane_b = arange(B)``).

    Each thread computes the vectors of the eigenvalues it has just computed:
    one launch instead of two, and the matrices are still in its cache.
    Outputs as the two kernels': w, ws (B,), info (B,) int32, v (B, n, 1),
    vinfo (B,) int32.
    """
    M = lane_b.shape[0]
    nchunks = (M + chunk - 1) // chunk
    for c in prange(nchunks):
        start = c * chunk
        stop = min(start + chunk, M)
        _kth_pair_chunk(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info, v, vinfo)


@kernel_serial
def kth_eigenpairs_serial(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ws, info, v, vinfo):
    """Serial twin of :func:`kth_eigenpairs_parallel`."""
    M = lane_b.shape[0]
    nchunks = (M + chunk - 1) // chunk
    for c in range(nchunks):
        start = c * chunk
        stop = min(start + chunk, M)
        _kth_pair_chunk(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info, v, vinfo)
