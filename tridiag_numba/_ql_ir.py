"""LLVM-IR forms of the lane QL's loops: the sweep
(:func:`._ql_lanes._ql_sweep`), the deflation scan, and the Sturm passes
of certification (count only, two counts, count with Newton's sum).

Written in numba, the sweep's lane loop loads and stores the five state
rows of every lane through memory at every row, and LLVM guards the
vectorised loop with run-time alias checks over ~15 address ranges: it
ran at ~140 ns per row of 32 float64 lanes, about 4x the cost of its
divisions.  Here the state of LANES / _VEC vectors stays in registers for
the whole sweep (as :func:`._sturm_ir._sturm_pass_simd` does for the
Sturm pass).  The operations are :func:`._ql_lanes._ql_sweep_rows`'s, in
the same order and without contraction, so the results are bit-identical
(``tests/test_ql_lanes.py`` checks it).

The sweep is bound by its divisions: one reciprocal ``1 / r`` gives both
``c = p / r`` and ``s = e**2 / r`` (two divisions a row instead of three;
each value within an ulp of the quotient: QL only proposes, the Sturm
counts decide).  Where ``1 / r`` overflows (``r`` zero or below 1 / max,
e.g. float32 matrices graded over 20 decades) those lanes divide: products
with an infinite reciprocal made NaN, QL then ran out of sweeps and the
bisection redid the lanes (64x100 float32 graded by 10**(-0.2 i): 93 ms
against 1.7 ms).  All eigenvalues, 50x100 to 1000x100 float64, tester
families included: 0.83-0.90x the time of three divisions; float32
0.92-1.02x.
"""

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._layout import LANES
from ._sturm_ir import _VEC, _check_sturm_types, _emit_pivot, _ir_arrays, _ir_const, _ir_fabs, _ir_splat


def _lane_ptr(builder, arr, row, stride, g, ty):
    """Pointer (to ``ty``) to vector ``g`` of _VEC lanes in row ``row`` of a
    lane-interleaved array ``arr`` with row length ``stride``."""
    off = builder.add(builder.mul(row, stride), ir.Constant(ir.IntType(64), g * _VEC))
    return builder.bitcast(builder.gep(arr.data, [off]), ty.as_pointer())


@intrinsic(prefer_literal=False)
def _ql_sweep_simd(typingctx, qd, qe, fs, js, lo, hi):
    """Rows ``hi`` down to ``lo`` of one QL sweep of every lane (see
    :func:`._ql_lanes._ql_sweep_rows`): ``qd``/``qe`` (n, >= LANES), ``fs``
    (6, LANES) sigma, c, s, p, gamma (c..gamma updated), ``js`` (6, LANES)
    int64 with each lane's window f, m in rows 1 and 2."""
    for a in (qd, qe, fs, js):
        if not (isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"):
            raise numba.core.errors.TypingError("QL sweep: C-contiguous 2-D arrays required")
    if not (qd.dtype == qe.dtype == fs.dtype and isinstance(qd.dtype, types.Float) and js.dtype == types.int64):
        raise numba.core.errors.TypingError("QL sweep: qd, qe, fs of one float dtype and js int64 required")
    sig = types.void(qd, qe, fs, js, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        fty = context.get_value_type(qd.dtype)
        vty = ir.VectorType(fty, _VEC)
        i64 = ir.IntType(64)
        ivty = ir.VectorType(i64, _VEC)
        qda, qea, fsa, jsa, _, _ = _ir_arrays(context, builder, signature, args)
        lo = args[4]
        hi = args[5]
        drow = builder.extract_value(qda.shape, 1)
        erow = builder.extract_value(qea.shape, 1)
        frow = builder.extract_value(fsa.shape, 1)
        jrow = builder.extract_value(jsa.shape, 1)
        groups = LANES // _VEC

        def const_row(k):
            return ir.Constant(i64, k)

        sigma = [builder.load(_lane_ptr(builder, fsa, const_row(0), frow, g, vty), align=8) for g in range(groups)]
        f = [builder.load(_lane_ptr(builder, jsa, const_row(1), jrow, g, ivty), align=8) for g in range(groups)]
        m = [builder.load(_lane_ptr(builder, jsa, const_row(2), jrow, g, ivty), align=8) for g in range(groups)]
        mlast = [builder.sub(m[g], _ir_splat(builder, ivty, ir.Constant(i64, 1))) for g in range(groups)]
        state = [[cgutils.alloca_once_value(builder, builder.load(_lane_ptr(builder, fsa, const_row(k), frow, g, vty), align=8))
                  for g in range(groups)] for k in (1, 2, 3, 4)]
        zero = ir.Constant(vty, [ir.Constant(fty, 0.0)] * _VEC)
        one = ir.Constant(vty, [ir.Constant(fty, 1.0)] * _VEC)
        inf = ir.Constant(vty, [ir.Constant(fty, float("inf"))] * _VEC)
        quot = [[cgutils.alloca_once(builder, vty) for g in range(groups)] for k in range(2)]  # c, s of a row
        count = builder.add(builder.sub(hi, lo), ir.Constant(i64, 1))
        with cgutils.for_range(builder, count) as loop:
            i = builder.sub(hi, loop.index)
            i1 = builder.add(i, ir.Constant(i64, 1))
            iv = _ir_splat(builder, ivty, i)
            for g in range(groups):
                act = builder.and_(builder.icmp_signed(">=", iv, f[g]), builder.icmp_signed("<", iv, m[g]))
                eact = builder.and_(act, builder.icmp_signed("!=", iv, mlast[g]))
                c = builder.load(state[0][g])
                s = builder.load(state[1][g])
                p = builder.load(state[2][g])
                gamma = builder.load(state[3][g])
                pqe = _lane_ptr(builder, qea, i, erow, g, vty)
                pqd = _lane_ptr(builder, qda, i, drow, g, vty)
                pqe1 = _lane_ptr(builder, qea, i1, erow, g, vty)
                pqd1 = _lane_ptr(builder, qda, i1, drow, g, vty)
                bb = builder.load(pqe, align=8)
                alpha = builder.load(pqd, align=8)
                r = builder.fadd(p, bb)
                rinv = builder.fdiv(one, r)
                builder.store(builder.fmul(p, rinv), quot[0][g])
                builder.store(builder.fmul(bb, rinv), quot[1][g])
                # 1 / r overflows (r = 0, or r below 1 / max): those lanes divide.
                overflow = builder.fcmp_ordered("==", rinv, inf)
                any_overflow = builder.icmp_unsigned("!=", builder.bitcast(overflow, ir.IntType(_VEC)), ir.Constant(ir.IntType(_VEC), 0))
                with builder.if_then(any_overflow, likely=False):
                    for q, num in zip(quot, (p, bb)):
                        builder.store(builder.select(overflow, builder.fdiv(num, r), builder.load(q[g])), q[g])
                cn = builder.load(quot[0][g])
                sn = builder.load(quot[1][g])
                gn = builder.fsub(builder.fmul(cn, builder.fsub(alpha, sigma[g])), builder.fmul(sn, gamma))
                dn = builder.fadd(gamma, builder.fsub(alpha, gn))
                pn = builder.select(builder.fcmp_unordered("!=", cn, zero),
                                    builder.fdiv(builder.fmul(gn, gn), cn), builder.fmul(c, bb))
                eup = builder.fmul(s, r)
                builder.store(builder.select(eact, eup, builder.load(pqe1, align=8)), pqe1, align=8)
                builder.store(builder.select(act, dn, builder.load(pqd1, align=8)), pqd1, align=8)
                builder.store(builder.select(act, cn, c), state[0][g])
                builder.store(builder.select(act, sn, s), state[1][g])
                builder.store(builder.select(act, pn, p), state[2][g])
                builder.store(builder.select(act, gn, gamma), state[3][g])
        for k in range(4):
            for g in range(groups):
                builder.store(builder.load(state[k][g]), _lane_ptr(builder, fsa, const_row(k + 1), frow, g, vty), align=8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic(prefer_literal=False)
def _ql_scan_simd(typingctx, qd, qe, js, eps2, lmin):
    """:func:`._ql_lanes._ql_scan_rows` with each lane's l, f, m in
    registers: rows ``lmin`` .. n-2 of the deflation test
    ``qe[i] <= eps2 |qd[i] qd[i+1]|``; f, m into ``js`` rows 1, 2."""
    for a in (qd, qe, js):
        if not (isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"):
            raise numba.core.errors.TypingError("QL scan: C-contiguous 2-D arrays required")
    if not (qd.dtype == qe.dtype == eps2 and isinstance(qd.dtype, types.Float) and js.dtype == types.int64):
        raise numba.core.errors.TypingError("QL scan: qd, qe, eps2 of one float dtype and js int64 required")
    sig = types.void(qd, qe, js, eps2, types.int64)

    def codegen(context, builder, signature, args):
        fty = context.get_value_type(qd.dtype)
        vty = ir.VectorType(fty, _VEC)
        i64 = ir.IntType(64)
        ivty = ir.VectorType(i64, _VEC)
        qda, qea, jsa, _, _ = _ir_arrays(context, builder, signature, args)
        lmin = args[4]
        drow = builder.extract_value(qda.shape, 1)
        erow = builder.extract_value(qea.shape, 1)
        jrow = builder.extract_value(jsa.shape, 1)
        n = builder.extract_value(qda.shape, 0)
        groups = LANES // _VEC

        last = _ir_splat(builder, ivty, builder.sub(n, ir.Constant(i64, 1)))
        ev = _ir_splat(builder, vty, args[3])
        lrow = [builder.load(_lane_ptr(builder, jsa, ir.Constant(i64, 0), jrow, g, ivty), align=8) for g in range(groups)]
        f = [cgutils.alloca_once_value(builder, last) for _ in range(groups)]
        m = [cgutils.alloca_once_value(builder, last) for _ in range(groups)]
        count = builder.sub(builder.sub(n, ir.Constant(i64, 1)), lmin)
        with builder.if_then(builder.icmp_signed(">", count, ir.Constant(i64, 0))):
            with cgutils.for_range(builder, count) as loop:
                i = builder.add(lmin, loop.index)
                i1 = builder.add(i, ir.Constant(i64, 1))
                iv = _ir_splat(builder, ivty, i)
                for g in range(groups):
                    e2 = builder.load(_lane_ptr(builder, qea, i, erow, g, vty), align=8)
                    d0 = builder.load(_lane_ptr(builder, qda, i, drow, g, vty), align=8)
                    d1 = builder.load(_lane_ptr(builder, qda, i1, drow, g, vty), align=8)
                    small = builder.fcmp_ordered("<=", e2, builder.fmul(ev, _ir_fabs(builder, builder.fmul(d0, d1))))
                    fg = builder.load(f[g])
                    mg = builder.load(m[g])
                    seen = builder.icmp_signed(">=", iv, lrow[g])
                    before_f = builder.icmp_signed("==", fg, last)
                    take_f = builder.and_(builder.and_(seen, before_f), builder.not_(small))
                    take_m = builder.and_(builder.and_(seen, builder.not_(before_f)),
                                          builder.and_(small, builder.icmp_signed("==", mg, last)))
                    builder.store(builder.select(take_f, iv, fg), f[g])
                    builder.store(builder.select(take_m, iv, mg), m[g])
        for g in range(groups):
            builder.store(builder.load(f[g]), _lane_ptr(builder, jsa, ir.Constant(i64, 1), jrow, g, ivty), align=8)
            builder.store(builder.load(m[g]), _lane_ptr(builder, jsa, ir.Constant(i64, 2), jrow, g, ivty), align=8)
        return context.get_dummy_value()

    return sig, codegen


def _emit_counts(context, builder, signature, args, nx, with_s1):
    """IR of ``nx`` count-only Sturm recurrences sharing each row's loads
    (shifts in ``args[2:2 + nx]``, pivmin next): the pivots, their
    reciprocals and the counts operation for operation as
    :func:`._sturm_ir._emit_sturm_loop`, so the counts are the engine's;
    with ``with_s1`` (nx = 1) also its ``a`` recurrence and
    ``s1 = sum a``.  Returns (counts, s1 or None): lists over the vectors
    of LANES / _VEC lanes (counts per shift)."""
    dbt, pt = signature.args[0], signature.args[2 + nx]
    fty = context.get_value_type(dbt.dtype)
    bits = 64 if isinstance(fty, ir.DoubleType) else 32
    vty = ir.VectorType(fty, _VEC)
    ity = ir.VectorType(ir.IntType(bits), _VEC)
    vptr = vty.as_pointer()
    i64 = ir.IntType(64)
    arrays = _ir_arrays(context, builder, signature, args)
    dba, e2ba = arrays[0], arrays[1]
    drow = builder.extract_value(dba.shape, 1)
    erow = builder.extract_value(e2ba.shape, 1)
    n = builder.extract_value(dba.shape, 0)
    groups = LANES // _VEC
    zero = _ir_const(vty, 0.0)
    one = _ir_const(vty, 1.0)
    piv = _ir_splat(builder, vty, context.cast(builder, args[2 + nx], pt, dbt.dtype))
    negpiv = builder.fsub(zero, piv)
    signbit = _ir_const(ity, bits - 1)
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty, vty, vty]), f"llvm.fma.v{_VEC}f{bits}")

    def vload(base, off):
        return builder.load(builder.bitcast(builder.gep(base, [off]), vptr), align=8)

    xs = [[vload(arrays[2 + k].data, ir.Constant(i64, g * _VEC)) for g in range(groups)] for k in range(nx)]
    rp = [[cgutils.alloca_once_value(builder, zero) for _ in range(groups)] for _ in range(nx)]
    count = [[cgutils.alloca_once_value(builder, _ir_const(ity, 0)) for _ in range(groups)] for _ in range(nx)]
    ap = [cgutils.alloca_once_value(builder, zero) for _ in range(groups)]
    s1 = [cgutils.alloca_once_value(builder, zero) for _ in range(groups)]
    with cgutils.for_range(builder, n) as loop:
        i = loop.index
        for g in range(groups):
            goff = ir.Constant(i64, g * _VEC)
            dv = vload(dba.data, builder.add(builder.mul(i, drow), goff))
            e2 = vload(e2ba.data, builder.add(builder.mul(i, erow), goff))
            for k in range(nx):
                z, _, rn, neg = _emit_pivot(builder, dv, xs[k][g], e2, builder.load(rp[k][g]), piv, negpiv, one, signbit)
                builder.store(rn, rp[k][g])
                builder.store(builder.add(builder.load(count[k][g]), neg), count[k][g])
                if with_s1:  # a = w a_prev - r, w = z r: _emit_sturm_loop's operations
                    an = builder.call(fma, [builder.fmul(z, rn), builder.load(ap[g]), builder.fneg(rn)])
                    builder.store(an, ap[g])
                    builder.store(builder.fadd(builder.load(s1[g]), an), s1[g])
    counts = [[builder.sitofp(builder.load(count[k][g]), vty) for g in range(groups)] for k in range(nx)]
    return counts, ([builder.load(s1[g]) for g in range(groups)] if with_s1 else None)


def _store_rows(context, builder, arr_type, arr_value, rows):
    """Store ``rows`` (lists of LANES / _VEC vectors) into consecutive rows
    of the C-contiguous float array ``arr_value`` (1-D: one row)."""
    arr = context.make_array(arr_type)(context, builder, arr_value)
    i64 = ir.IntType(64)
    stride = builder.extract_value(arr.shape, 1) if arr_type.ndim == 2 else ir.Constant(i64, 0)
    for f, row in enumerate(rows):
        for g, v in enumerate(row):
            off = builder.add(builder.mul(ir.Constant(i64, f), stride), ir.Constant(i64, g * _VEC))
            builder.store(v, builder.bitcast(builder.gep(arr.data, [off]), v.type.as_pointer()), align=8)


def _check_out(out, db, rows):
    if not (isinstance(out, types.Array) and out.ndim == (1 if rows == 1 else 2) and out.layout == "C" and out.dtype == db.dtype):
        raise numba.core.errors.TypingError(
            f"Sturm count: the output must be a C-contiguous {1 if rows == 1 else 2}-D array of db's dtype")


def _counts_codegen(nx, with_s1):
    """Codegen of a count pass at ``nx`` shifts (arguments db, e2b, the
    shifts, pivmin, the output): the counts, after ``s1`` with
    ``with_s1``, into consecutive rows of the output (:func:`_emit_counts`)."""
    out = 3 + nx

    def codegen(context, builder, signature, args):
        counts, s1 = _emit_counts(context, builder, signature, args, nx, with_s1)
        _store_rows(context, builder, signature.args[out], args[out], ([s1] if with_s1 else []) + counts)
        return context.get_dummy_value()

    return codegen


@intrinsic(prefer_literal=False)
def _sturm_count_simd(typingctx, db, e2b, x, pivmin, cnt):
    """The count of :func:`._sturm_ir._sturm_pass_simd` without its
    Laguerre sums: the same pivots ``q = (d - x) - e2 r``, ``|q| < pivmin
    -> -pivmin``, ``r = 1/q``, operation for operation, so the counts are
    identical (tested); into ``cnt`` (LANES,) of the matrix's dtype.
    Certification needs only counts, and the sums cost ~35% of a pass."""
    _check_sturm_types(db, e2b, x, db)
    _check_out(cnt, db, 1)
    return types.void(db, e2b, x, pivmin, cnt), _counts_codegen(1, False)


@intrinsic(prefer_literal=False)
def _sturm_count2_simd(typingctx, db, e2b, x1, x2, pivmin, cnt):
    """:func:`_sturm_count_simd` at two shifts per lane in one loop: counts
    at ``x1`` into ``cnt[0]``, at ``x2`` into ``cnt[1]`` (``cnt`` (2,
    LANES)), identical to two single passes (tested).  The rows are loaded
    once, and the two recurrences interleave: 0.6-0.7x the time of two
    passes in float32 (whose 32 lanes are too few vectors to hide the
    divider's latency), ~0.95x in float64."""
    _check_sturm_types(db, e2b, x1, db)
    _check_sturm_types(db, e2b, x2, db)
    _check_out(cnt, db, 2)
    return types.void(db, e2b, x1, x2, pivmin, cnt), _counts_codegen(2, False)


@intrinsic(prefer_literal=False)
def _sturm_newton_simd(typingctx, db, e2b, x, pivmin, out):
    """:func:`._sturm_ir._sturm_pass_simd` without the second sum: into
    ``out`` (2, LANES) ``s1 = sum_j 1/(x - lambda_j)`` and the count, both
    identical to that pass's (tested).  Newton's step needs s1 alone; the
    second sum's recurrence is ~20% of the pass."""
    _check_sturm_types(db, e2b, x, db)
    _check_out(out, db, 2)
    return types.void(db, e2b, x, pivmin, out), _counts_codegen(1, True)
