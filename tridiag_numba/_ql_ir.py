"""LLVM-IR forms of the lane QL's loops: the sweep
(:func:`._ql_lanes._ql_sweep`), the deflation scan and a count-only Sturm
pass for certification.

Written in numba, the sweep's lane loop loads and stores the five state
rows of every lane through memory at every row, and LLVM guards the
vectorised loop with run-time alias checks over ~15 address ranges: it
ran at ~140 ns per row of 32 float64 lanes, about 4x the cost of its
divisions.  Here the state of LANES / _VEC vectors stays in registers for
the whole sweep (as :func:`._sturm_ir._sturm_pass_simd` does for the
Sturm pass).  The operations are :func:`._ql_lanes._ql_sweep_rows`'s, in
the same order and without contraction, so the results are bit-identical
(``tests/test_ql_lanes.py`` checks it).
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
                cn = builder.fdiv(p, r)
                sn = builder.fdiv(bb, r)
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


@intrinsic(prefer_literal=False)
def _sturm_count_simd(typingctx, db, e2b, x, pivmin, cnt):
    """The count of :func:`._sturm_ir._sturm_pass_simd` without its
    Laguerre sums: the same pivots ``q = (d - x) - e2 r``, ``|q| < pivmin
    -> -pivmin``, ``r = 1/q``, operation for operation, so the counts are
    identical (tested); into ``cnt`` (LANES,) of the matrix's dtype.
    Certification needs only counts, and the sums cost ~35% of a pass."""
    _check_sturm_types(db, e2b, x, db)
    if not (isinstance(cnt, types.Array) and cnt.ndim == 1 and cnt.layout == "C" and cnt.dtype == db.dtype):
        raise numba.core.errors.TypingError("Sturm count: cnt must be a C-contiguous 1-D array of db's dtype")
    sig = types.void(db, e2b, x, pivmin, cnt)

    def codegen(context, builder, signature, args):
        dbt, pt = signature.args[0], signature.args[3]
        fty = context.get_value_type(dbt.dtype)
        bits = 64 if isinstance(fty, ir.DoubleType) else 32
        vty = ir.VectorType(fty, _VEC)
        ity = ir.VectorType(ir.IntType(bits), _VEC)
        vptr = vty.as_pointer()
        i64 = ir.IntType(64)
        dba, e2ba, xa, _, ca = _ir_arrays(context, builder, signature, args)
        drow = builder.extract_value(dba.shape, 1)
        erow = builder.extract_value(e2ba.shape, 1)
        n = builder.extract_value(dba.shape, 0)
        groups = LANES // _VEC
        zero = _ir_const(vty, 0.0)
        one = _ir_const(vty, 1.0)
        piv = _ir_splat(builder, vty, context.cast(builder, args[3], pt, dbt.dtype))
        negpiv = builder.fsub(zero, piv)
        signbit = _ir_const(ity, bits - 1)

        def vload(base, off):
            return builder.load(builder.bitcast(builder.gep(base, [off]), vptr), align=8)

        xs = [vload(xa.data, ir.Constant(i64, g * _VEC)) for g in range(groups)]
        rp = [cgutils.alloca_once_value(builder, zero) for _ in range(groups)]
        count = [cgutils.alloca_once_value(builder, _ir_const(ity, 0)) for _ in range(groups)]
        with cgutils.for_range(builder, n) as loop:
            i = loop.index
            for g in range(groups):
                goff = ir.Constant(i64, g * _VEC)
                dv = vload(dba.data, builder.add(builder.mul(i, drow), goff))
                e2 = vload(e2ba.data, builder.add(builder.mul(i, erow), goff))
                _, _, rn, neg = _emit_pivot(builder, dv, xs[g], e2, builder.load(rp[g]), piv, negpiv, one, signbit)
                builder.store(rn, rp[g])
                builder.store(builder.add(builder.load(count[g]), neg), count[g])
        for g in range(groups):
            builder.store(builder.sitofp(builder.load(count[g]), vty),
                          builder.bitcast(builder.gep(ca.data, [ir.Constant(i64, g * _VEC)]), vptr), align=8)
        return context.get_dummy_value()

    return sig, codegen
