"""LLVM-IR intrinsics for loading a block: the transposed copies.

A block keeps its matrices lane-interleaved, ``(n, ROW)`` with one slot per
column (:mod:`._layout`), while the input holds one matrix per row.  The
plain copy (:func:`._lanes._copy_scaled` before this module; the reference
loops in ``tests/test_core_accuracy.py``) writes one column at a time: one
scalar store per entry, each into another cache line, ~1 store a cycle.
:func:`_scaled_transpose` reads eight slots' matrices eight entries at a
time, transposes each 8 x 8 tile in registers (three rounds of two-input
shuffles) and writes whole rows of eight lanes: a block of 25 matrices of
order 100 loads in ~2.2 us instead of ~3.2 us (float64; float32 ~2.1
against ~3.5), ~4 % of a 50 x 100 ``kth_eigenvalue`` call.
:func:`_transpose_lanes` is the same tile loop for the eigenvector lanes'
raw copy (:func:`._stein_lanes._copy_lanes`).

Same operations, in the same order, as the plain loops: ``T(x * ma * mb)``
(float32 widened to float64 for the two products, as numba does), ``abs``
of that for the off-diagonals, ``+0.0`` for idle slots; bit-identical
(``test_scaled_transpose_matches_column_loops``,
``test_transpose_lanes_matches_lane_loops``).
"""

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._layout import LANES
from ._sturm_ir import _VEC, _ir_arrays, _ir_const, _ir_fabs

_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


def _shuffle_masks(width):
    """Positions of the two-input shuffles of a transpose round that pairs
    vectors ``a`` and ``b``: blocks of ``width`` lanes, alternating a, b."""
    lo, hi = [], []
    for blk in range(0, _VEC, 2 * width):
        lo += list(range(blk, blk + width)) + [_VEC + x for x in range(blk, blk + width)]
        hi += list(range(blk + width, blk + 2 * width)) + [_VEC + x for x in range(blk + width, blk + 2 * width)]
    return lo, hi


def _transpose(builder, rows):
    """The transpose of the ``_VEC`` x ``_VEC`` tile ``rows`` (``out[c][t] = rows[t][c]``).

    Round ``s`` pairs the vectors whose indices differ in bit ``s`` and
    interleaves blocks of ``2**s`` lanes.  Each value's (row, column) is
    tracked through the rounds, and the result is checked to be the
    transpose when the IR is built (a wrong mask fails the compile, not a
    result)."""
    vecs = list(rows)
    labels = [[(t, c) for c in range(_VEC)] for t in range(_VEC)]
    s = 0
    while (1 << s) < _VEC:
        step = 1 << s
        lo, hi = _shuffle_masks(step)
        masks = [ir.Constant(ir.VectorType(_I32, _VEC), [ir.Constant(_I32, x) for x in m]) for m in (lo, hi)]
        for a in range(_VEC):
            if a & step:
                continue
            b = a | step
            both = labels[a] + labels[b]
            va, vb = vecs[a], vecs[b]
            vecs[a] = builder.shuffle_vector(va, vb, masks[0])
            vecs[b] = builder.shuffle_vector(va, vb, masks[1])
            labels[a], labels[b] = [both[x] for x in lo], [both[x] for x in hi]
        s += 1
    out = [None] * _VEC
    for a in range(_VEC):
        col = labels[a][0][1]
        assert labels[a] == [(t, col) for t in range(_VEC)], labels[a]
        out[col] = vecs[a]
    return out


def _check_arrays(name, src, rows, dst, lanes, same_dtype):
    """Typing-time checks shared by the intrinsics below."""
    arrays = (src, rows, dst) + lanes
    if not all(isinstance(a, types.Array) and a.layout == "C" for a in arrays):
        raise numba.core.errors.TypingError(f"{name}: C-contiguous arrays required")
    if not (src.ndim == dst.ndim == 2 and rows.ndim == 1 and rows.dtype == types.int64):
        raise numba.core.errors.TypingError(f"{name}: 2-D src and dst, 1-D int64 indices required")
    if not (isinstance(src.dtype, types.Float) and isinstance(dst.dtype, types.Float)):
        raise numba.core.errors.TypingError(f"{name}: float src and dst required")
    if same_dtype and src.dtype != dst.dtype:
        raise numba.core.errors.TypingError(f"{name}: src and dst of one dtype required")


def _at(builder, base, off, ty):
    """Pointer to a ``ty`` at element ``off`` of ``base``."""
    return builder.bitcast(builder.gep(base, [off]), ty.as_pointer())


def _emit_tiles(builder, srca, dsta, first, count, lane_row, finish):
    """The loop both intrinsics share: for each group of ``_VEC`` lanes, the
    ``src`` (B, m) rows that ``lane_row(g, t, row)`` stores into the i64
    alloca ``row`` (left at 0 for an idle lane, whose values ``finish``
    replaces), ``count`` entries each, into rows ``first``.. of ``dst`` at
    lanes ``g * _VEC``.., transposed tile by tile; ``finish(g, v)`` turns a
    vector of ``src``'s entries (one per lane) into what is stored."""
    fty = srca.data.type.pointee
    vt = ir.VectorType(fty, _VEC)
    dvt = ir.VectorType(dsta.data.type.pointee, _VEC)
    m = builder.extract_value(srca.shape, 1)
    drow = builder.extract_value(dsta.shape, 1)
    tiles = builder.and_(count, ir.Constant(_I64, -_VEC))

    def store_row(i, g, v):
        off = builder.add(builder.mul(builder.add(i, first), drow), ir.Constant(_I64, g * _VEC))
        builder.store(v, _at(builder, dsta.data, off, dvt), align=4)

    for g in range(LANES // _VEC):
        bases = []
        for t in range(_VEC):
            row = cgutils.alloca_once_value(builder, ir.Constant(_I64, 0))
            lane_row(g, t, row)
            bases.append(builder.gep(srca.data, [builder.mul(builder.load(row), m)]))
        with cgutils.for_range_slice(builder, ir.Constant(_I64, 0), tiles, ir.Constant(_I64, _VEC)) as (i0, _):
            tile = [builder.load(_at(builder, p, i0, vt), align=4) for p in bases]
            for c, col in enumerate(_transpose(builder, tile)):
                store_row(builder.add(i0, ir.Constant(_I64, c)), g, finish(g, col))
        with cgutils.for_range_slice(builder, tiles, count, ir.Constant(_I64, 1)) as (i, _):
            v = ir.Constant(vt, ir.Undefined)
            for t, p in enumerate(bases):
                v = builder.insert_element(v, builder.load(builder.gep(p, [i])), ir.Constant(_I32, t))
            store_row(i, g, finish(g, v))


@intrinsic(prefer_literal=False)
def _scaled_transpose(typingctx, src, lane_b, job, scale, dst, first, count):
    """Copy the slots' matrices into a block, transposed and scaled.

    For every slot ``l`` < LANES and ``i < count``:
    ``dst[first + i, l] = T(src[lane_b[job[l]], i] * scale[0, l] * scale[1, l])``
    (its absolute value when ``first == 1``: the off-diagonals ``|e|`` go to
    rows 1..n-1) for a busy slot (``job[l] >= 0``), ``+0.0`` for an idle one.
    ``src`` (B, m) C-contiguous with ``count <= m``; ``dst`` (>= first + count,
    >= LANES) C-contiguous of ``src``'s dtype; ``scale`` (2, >= LANES)
    float64; ``lane_b``/``job`` int64.  Eight slots at a time, eight entries
    per tile (the last ``count % 8`` one entry at a time).
    """
    _check_arrays("_scaled_transpose", src, lane_b, dst, (job, scale), True)
    if not (job.ndim == 1 and job.dtype == types.int64 and scale.ndim == 2 and scale.dtype == types.float64):
        raise numba.core.errors.TypingError("_scaled_transpose: 1-D int64 job and 2-D float64 scale required")
    sig = types.void(src, lane_b, job, scale, dst, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        fty = context.get_value_type(signature.args[0].dtype)
        dty = ir.DoubleType()
        vt = ir.VectorType(fty, _VEC)
        vd = ir.VectorType(dty, _VEC)
        vi = ir.VectorType(_I64, _VEC)
        srca, lba, joba, sca, dsta, _, _ = _ir_arrays(context, builder, signature, args)
        first, count = args[5], args[6]
        srow = builder.extract_value(sca.shape, 1)
        zero = _ir_const(vt, 0.0)
        absolute = builder.icmp_signed("==", first, ir.Constant(_I64, 1))
        groups = []
        for g in range(LANES // _VEC):
            goff = ir.Constant(_I64, g * _VEC)
            jobs = builder.load(_at(builder, joba.data, goff, vi), align=8)
            groups.append((
                builder.load(_at(builder, sca.data, goff, vd), align=8),
                builder.load(_at(builder, sca.data, builder.add(srow, goff), vd), align=8),
                jobs,
                builder.icmp_signed(">=", jobs, _ir_const(vi, 0)),
            ))

        def lane_row(g, t, row):
            j = builder.extract_element(groups[g][2], ir.Constant(_I32, t))
            with builder.if_then(builder.icmp_signed(">=", j, ir.Constant(_I64, 0))):
                builder.store(builder.load(builder.gep(lba.data, [j])), row)

        def finish(g, v):
            # T(x * ma * mb) as numba computes it: float32 widened for the products.
            ma, mb, _, busy = groups[g]
            x = v if fty == dty else builder.fpext(v, vd)
            y = builder.fmul(builder.fmul(x, ma), mb)
            y = y if fty == dty else builder.fptrunc(y, vt)
            y = builder.select(absolute, _ir_fabs(builder, y), y)
            return builder.select(busy, y, zero)

        _emit_tiles(builder, srca, dsta, first, count, lane_row, finish)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic(prefer_literal=False)
def _transpose_lanes(typingctx, src, rows, fill, dst, count):
    """Copy matrices into lanes, transposed and widened to ``dst``'s dtype.

    For every lane ``l`` < LANES and ``i < count``: ``dst[i, l] = src[rows[l], i]``
    (exactly: float32 widens) when ``rows[l] >= 0``, else ``fill[l]``.
    ``src`` (B, m) C-contiguous with ``count <= m``; ``dst`` (>= count,
    >= LANES) C-contiguous, float64 or ``src``'s dtype; ``rows`` int64,
    ``fill`` float64 (>= LANES,).  The eigenvector lanes' raw copy
    (:func:`._stein_lanes._copy_lanes`).
    """
    _check_arrays("_transpose_lanes", src, rows, dst, (fill,), False)
    if not (fill.ndim == 1 and fill.dtype == types.float64 and (dst.dtype == src.dtype or dst.dtype == types.float64)):
        raise numba.core.errors.TypingError("_transpose_lanes: 1-D float64 fill and a float64 (or src's dtype) dst required")
    sig = types.void(src, rows, fill, dst, types.int64)

    def codegen(context, builder, signature, args):
        fty = context.get_value_type(signature.args[0].dtype)
        oty = context.get_value_type(signature.args[3].dtype)
        vo = ir.VectorType(oty, _VEC)
        vi = ir.VectorType(_I64, _VEC)
        vd = ir.VectorType(ir.DoubleType(), _VEC)
        srca, rowsa, filla, dsta, _ = _ir_arrays(context, builder, signature, args)
        groups = []
        for g in range(LANES // _VEC):
            goff = ir.Constant(_I64, g * _VEC)
            rws = builder.load(_at(builder, rowsa.data, goff, vi), align=8)
            fv = builder.load(_at(builder, filla.data, goff, vd), align=8)
            fv = fv if oty == ir.DoubleType() else builder.fptrunc(fv, vo)
            groups.append((rws, builder.icmp_signed(">=", rws, _ir_const(vi, 0)), fv))

        def lane_row(g, t, row):
            r = builder.extract_element(groups[g][0], ir.Constant(_I32, t))
            builder.store(builder.select(builder.icmp_signed(">=", r, ir.Constant(_I64, 0)), r, ir.Constant(_I64, 0)), row)

        def finish(g, v):
            _, busy, fv = groups[g]
            x = v if fty == oty else builder.fpext(v, vo)
            return builder.select(busy, x, fv)

        _emit_tiles(builder, srca, dsta, ir.Constant(_I64, 0), args[4], lane_row, finish)
        return context.get_dummy_value()

    return sig, codegen
