"""LLVM-IR intrinsics for the Sturm pass and the block moments.

These are performance forms of plain loops: :func:`_sturm_pass_simd` and
:func:`_sturm_pass_gather` run :func:`._sturm._sturm_step` over all slots /
a gathered few, operation for operation, and :func:`_block_moments` runs
the row loops of a block's Gershgorin/moment sums with accumulators in
registers.  Each is tested bit-identical against its scalar reference in
``tests/test_core_accuracy.py`` (``test_sturm_pass_intrinsics_match_scalar_steps``,
``test_block_moments_matches_row_loops``).
"""

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._layout import LANES


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


def _ir_fabs(builder, v):
    """|v| of a float vector (llvm.fabs)."""
    vty = v.type
    bits = 64 if isinstance(vty.element, ir.DoubleType) else 32
    fabs = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty]), f"llvm.fabs.v{vty.count}f{bits}")
    return builder.call(fabs, [v])


def _check_sturm_types(db, e2b, x, st):
    """Typing-time checks shared by the Sturm pass intrinsics."""
    for a in (db, e2b, st):
        if not (isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"):
            raise numba.core.errors.TypingError("Sturm pass: db, e2b and st must be C-contiguous 2-D arrays")
    if not (isinstance(x, types.Array) and x.ndim == 1 and x.layout == "C"):
        raise numba.core.errors.TypingError("Sturm pass: x must be a C-contiguous 1-D array")
    if not (db.dtype == e2b.dtype == x.dtype == st.dtype and isinstance(db.dtype, types.Float)):
        raise numba.core.errors.TypingError("Sturm pass: arrays of one float dtype required")


def _emit_pivot(builder, dv, x, e2, r_prev, piv, negpiv, one, signbit):
    """One step of the Sturm recurrence on a vector of lanes: ``z = e2 r_prev``,
    the pivot ``q = (d - x) - z`` (``|q| < pivmin`` or NaN -> ``-pivmin``),
    ``r = 1 / q`` and ``neg`` (1 where q < 0, in the count's integer type:
    q's sign bit).  Shared by the pass with Laguerre sums and the count-only
    pass, so their counts are the same operation for operation."""
    z = builder.fmul(e2, r_prev)
    q = builder.fsub(builder.fsub(dv, x), z)
    q = builder.select(builder.fcmp_ordered(">=", _ir_fabs(builder, q), piv), q, negpiv)
    rn = builder.fdiv(one, q)
    neg = builder.lshr(builder.bitcast(q, signbit.type), signbit)
    return z, q, rn, neg


def _emit_sturm_loop(context, builder, fty, n, pivmin, xs, load_row):
    """IR of the Sturm recurrence with Laguerre sums over ``len(xs)`` vectors
    of _VEC lanes (see :func:`._sturm._sturm_pass`).  ``load_row(i, g)``
    gives vector ``g`` of row ``i`` of (d, e**2).  Returns the final state:
    six lists of vectors (r, a, b, s1, s2, count), after the loop.

    The count runs in integers: the sign bit of the pivot (never zero or
    NaN after the pivmin substitution, so set exactly when q < 0) added to
    an integer vector, one operation fewer per step than compare, select
    and add; it is converted to the float state once, after the loop."""
    vty = ir.VectorType(fty, _VEC)
    bits = 64 if isinstance(fty, ir.DoubleType) else 32
    ity = ir.VectorType(ir.IntType(bits), _VEC)
    zero, one = _ir_const(vty, 0.0), _ir_const(vty, 1.0)
    piv = _ir_splat(builder, vty, pivmin)
    negpiv = builder.fsub(zero, piv)  # exact: -pivmin
    signbit = _ir_const(ity, bits - 1)
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty, vty, vty]), f"llvm.fma.v{_VEC}f{bits}")
    groups = len(xs)
    state = [[cgutils.alloca_once_value(builder, zero) for _ in range(groups)] for _ in range(5)]
    count = [cgutils.alloca_once_value(builder, _ir_const(ity, 0)) for _ in range(groups)]
    with cgutils.for_range(builder, n) as loop:
        i = loop.index
        for g in range(groups):
            dv, e2 = load_row(i, g)
            rp = builder.load(state[0][g])
            ap = builder.load(state[1][g])
            bp = builder.load(state[2][g])
            # q = d - x - e2 r; |q| < pivmin (or NaN) -> -pivmin
            z, q, rn, neg = _emit_pivot(builder, dv, xs[g], e2, rp, piv, negpiv, one, signbit)
            # w = e2 r_prev r;  a = w a_prev - r;  b = a a + w (a_prev a_prev + b_prev)
            wn = builder.fmul(z, rn)
            an = builder.call(fma, [wn, ap, builder.fneg(rn)])  # exact: one vfmsub
            bn = builder.call(fma, [an, an, builder.fmul(wn, builder.call(fma, [ap, ap, bp]))])
            builder.store(rn, state[0][g])
            builder.store(an, state[1][g])
            builder.store(bn, state[2][g])
            builder.store(builder.fadd(builder.load(state[3][g]), an), state[3][g])
            builder.store(builder.fadd(builder.load(state[4][g]), bn), state[4][g])
            builder.store(builder.add(builder.load(count[g]), neg), count[g])
    out = [[builder.load(state[f][g]) for g in range(groups)] for f in range(5)]
    out.append([builder.sitofp(builder.load(count[g]), vty) for g in range(groups)])
    return out


@intrinsic(prefer_literal=False)
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (``llvm.fma``), for floats of one type: the
    scalar form of the fused operations of :func:`_emit_sturm_loop`."""
    if not (isinstance(a, types.Float) and a == b == c):
        raise numba.core.errors.TypingError("_fma: three floats of one type required")
    sig = a(a, b, c)

    def codegen(context, builder, signature, args):
        fty = context.get_value_type(signature.return_type)
        bits = 64 if isinstance(fty, ir.DoubleType) else 32
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(fty, [fty] * 3), f"llvm.fma.f{bits}")
        return builder.call(fn, list(args))

    return sig, codegen


@intrinsic(prefer_literal=False)
def _sturm_pass_simd(typingctx, db, e2b, x, pivmin, st):
    """:func:`_sturm_pass` written as LLVM IR over vectors of _VEC lanes.

    Written in numba the lane loop is vectorised, but each step loads and
    stores the six state rows through memory (LLVM cannot prove that they
    do not alias the matrix rows): 24 vector loads and 24 stores per step
    for 32 float64 lanes.  Here the state of LANES / _VEC vectors lives in
    stack slots that LLVM promotes to registers (6 x 4 = 24 of the 32 zmm
    registers for float64), so a step only loads its matrix row (~10%
    faster in a block); what remains is bound by the divider and the
    floating-point operations together (see :func:`._sturm._sturm_pass`).
    The operations are those of :func:`_sturm_step`, in the same order, its
    fused multiply-adds as ``llvm.fma`` and nothing else contracted, so the
    results are bit-identical to the scalar recurrence
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
                builder.store(state[f][g], builder.bitcast(builder.gep(sta.data, [off]), vptr), align=8)
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
    of counts, see :func:`._bisect._laguerre_shift`).  Bit-identical to the full pass.
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
                        val = builder.extract_element(state[f][g], ir.Constant(i32, u))
                        off = builder.add(builder.mul(ir.Constant(i64, f), strow), ir.Constant(i64, t))
                        builder.store(val, builder.gep(sta.data, [off]))

        with builder.if_else(builder.icmp_signed("<=", nact, ir.Constant(i64, _VEC))) as (one_vec, two_vecs):
            with one_vec:
                emit(1)
            with two_vecs:
                emit(2)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic(prefer_literal=False)
def _block_moments(typingctx, db, e2b, acc, safemin, eps, single):
    """One sweep over a loaded block: per slot the Gershgorin bounds (radius
    ``|e_{i-1}| + |e_i|``, ``e2b`` still holding ``|e|``) into ``acc[0]`` /
    ``acc[1]``, ``sum d``, ``sum d**2`` and ``sum e**2`` into ``acc[2:5]``
    (float64), and ``e2b`` replaced by ``e**2``, flushed to zero below
    ``safemin`` and then zeroed where dstebz splits the matrix
    (:func:`._scaling._split_e2` with ``eps``, on the flushed value and
    ``d`` of rows i-1, i; row 0 stays as it is, zero); ``single`` (LANES,)
    int64 gets 1 for the slots whose split matrix has a 1x1 block (split
    ``e2b`` rows i-1 and i both zero, row n counting as zero), else 0.

    Written in numba these were five vectorised loops, each loading and
    storing its accumulators every row (~2.2 us for the three of the
    moments, ~0.9 us for the two of the splits, for a block of order 100);
    here the accumulators stay in registers.  Operations and their order
    are those of the loops (T arithmetic, then float64 sums), so the results
    are bit-identical (checked in tests/test_core_accuracy.py).
    """
    for a in (db, e2b, acc):
        if not (isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C" and isinstance(a.dtype, types.Float)):
            raise numba.core.errors.TypingError("_block_moments: C-contiguous 2-D float arrays required")
    if db.dtype != e2b.dtype or acc.dtype != types.float64:
        raise numba.core.errors.TypingError("_block_moments: db, e2b of one dtype and float64 acc required")
    if not (isinstance(single, types.Array) and single.ndim == 1 and single.dtype == types.int64):
        raise numba.core.errors.TypingError("_block_moments: single must be a 1-D int64 array")
    sig = types.void(db, e2b, acc, safemin, eps, single)

    def codegen(context, builder, signature, args):
        smv = args[3]
        dbt, smt = signature.args[0], signature.args[3]
        epv, ept = args[4], signature.args[4]
        fty = context.get_value_type(dbt.dtype)
        dty = ir.DoubleType()
        vt = ir.VectorType(fty, _VEC)
        vd = ir.VectorType(dty, _VEC)
        i64 = ir.IntType(64)
        dba, e2ba, acca, _, _, sga = _ir_arrays(context, builder, signature, args)
        n = builder.extract_value(dba.shape, 0)
        drow = builder.extract_value(dba.shape, 1)
        erow = builder.extract_value(e2ba.shape, 1)
        arow = builder.extract_value(acca.shape, 1)
        safemin = context.cast(builder, smv, smt, types.float64)
        groups = LANES // _VEC

        safev = _ir_splat(builder, vd, safemin)
        zt = _ir_const(vt, 0.0)
        # The split test's constants in T, as the numba loops take them: T(eps * eps), T(safemin).
        eps64 = context.cast(builder, epv, ept, types.float64)
        eps2v = _ir_splat(builder, vt, context.cast(builder, builder.fmul(eps64, eps64), types.float64, dbt.dtype))
        tinyv = _ir_splat(builder, vt, context.cast(builder, safemin, types.float64, dbt.dtype))
        bty = ir.VectorType(ir.IntType(1), _VEC)
        no = ir.Constant(bty, [ir.Constant(ir.IntType(1), 0)] * _VEC)

        def widen(v):
            return v if fty == dty else builder.fpext(v, vd)

        def ptr(base, off, ty):
            return builder.bitcast(builder.gep(base, [off]), ty.as_pointer())

        inits = (float("inf"), float("-inf"), 0.0, 0.0, 0.0)
        accs = [[cgutils.alloca_once_value(builder, _ir_const(vd, v)) for _ in range(groups)] for v in inits]
        # Carried per group: d of the previous row, whether its split e**2
        # was zero, and the 1x1-block flags.
        dprevs = [cgutils.alloca_once_value(builder, zt) for _ in range(groups)]
        zprevs = [cgutils.alloca_once_value(builder, no) for _ in range(groups)]
        sings = [cgutils.alloca_once_value(builder, no) for _ in range(groups)]
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
                ef = builder.select(builder.fcmp_ordered(">=", e2w, safev), e2, zt)
                # dstebz's split (_split_e2): ef >= eps2 |d_{i-1} d_i| + safemin, else ef - ef.
                # (Row 0, zero, stays zero: with d_{-1} = 0 its threshold is safemin.)
                dprev = builder.load(dprevs[g])
                thr = builder.fadd(builder.fmul(eps2v, _ir_fabs(builder, builder.fmul(dprev, di))), tinyv)
                es = builder.select(builder.fcmp_ordered(">=", ef, thr), ef, builder.fsub(ef, ef))
                builder.store(es, eptr, align=8)
                zero_now = builder.fcmp_ordered("==", es, zt)
                zprev = builder.load(zprevs[g])
                sing = builder.load(sings[g])
                sing = builder.or_(sing, builder.and_(zprev, zero_now))  # (zprev starts false)
                builder.store(sing, sings[g])
                builder.store(zero_now, zprevs[g])
                builder.store(di, dprevs[g])
        for f in range(5):
            for g in range(groups):
                off = builder.add(builder.mul(ir.Constant(i64, f), arow), ir.Constant(i64, g * _VEC))
                builder.store(builder.load(accs[f][g]), ptr(acca.data, off, vd), align=8)
        ity = ir.VectorType(i64, _VEC)
        for g in range(groups):
            # the last row counts: row n is zero
            sing = builder.or_(builder.load(sings[g]), builder.load(zprevs[g]))
            builder.store(builder.zext(sing, ity), ptr(sga.data, ir.Constant(i64, g * _VEC), ity), align=8)
        return context.get_dummy_value()

    return sig, codegen
