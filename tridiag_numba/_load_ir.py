"""LLVM-IR intrinsic for loading a block: the scaled, transposed copy.

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

Same operations, in the same order, as the plain loops: ``T(x * ma * mb)``
(float32 widened to float64 for the two products, as numba does), ``abs``
of that for the off-diagonals, ``+0.0`` for idle slots; bit-identical
(``test_scaled_transpose_matches_column_loops``).
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
    arrays = (src, lane_b, job, scale, dst)
    if not all(isinstance(a, types.Array) and a.layout == "C" for a in arrays):
        raise numba.core.errors.TypingError("_scaled_transpose: C-contiguous arrays required")
    if not (src.ndim == dst.ndim == scale.ndim == 2 and lane_b.ndim == job.ndim == 1):
        raise numba.core.errors.TypingError("_scaled_transpose: 2-D src, dst, scale and 1-D lane_b, job required")
    if not (src.dtype == dst.dtype and isinstance(src.dtype, types.Float) and scale.dtype == types.float64
            and lane_b.dtype == job.dtype == types.int64):
        raise numba.core.errors.TypingError("_scaled_transpose: src, dst of one float dtype, float64 scale, int64 indices")
    sig = types.void(src, lane_b, job, scale, dst, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        fty = context.get_value_type(signature.args[0].dtype)
        dty = ir.DoubleType()
        vt = ir.VectorType(fty, _VEC)
        vd = ir.VectorType(dty, _VEC)
        vi = ir.VectorType(_I64, _VEC)
        srca, lba, joba, sca, dsta, _, _ = _ir_arrays(context, builder, signature, args)
        first, count = args[5], args[6]
        m = builder.extract_value(srca.shape, 1)
        drow = builder.extract_value(dsta.shape, 1)
        srow = builder.extract_value(sca.shape, 1)
        zero = _ir_const(vt, 0.0)
        absolute = builder.icmp_signed("==", first, ir.Constant(_I64, 1))

        def at(base, off, ty):
            return builder.bitcast(builder.gep(base, [off]), ty.as_pointer())

        def scaled(v, ma, mb, busy):
            # T(x * ma * mb) as numba computes it: float32 widened for the products.
            x = v if fty == dty else builder.fpext(v, vd)
            y = builder.fmul(builder.fmul(x, ma), mb)
            y = y if fty == dty else builder.fptrunc(y, vt)
            y = builder.select(absolute, _ir_fabs(builder, y), y)
            return builder.select(busy, y, zero)

        def store_row(i, g, v):
            row = builder.add(i, first)
            builder.store(v, at(dsta.data, builder.add(builder.mul(row, drow), ir.Constant(_I64, g * _VEC)), vt), align=4)

        tiles = builder.and_(count, ir.Constant(_I64, -_VEC))
        for g in range(LANES // _VEC):
            goff = ir.Constant(_I64, g * _VEC)
            ma = builder.load(at(sca.data, goff, vd), align=8)
            mb = builder.load(at(sca.data, builder.add(srow, goff), vd), align=8)
            jobs = builder.load(at(joba.data, goff, vi), align=8)
            busy = builder.icmp_signed(">=", jobs, _ir_const(vi, 0))
            bases = []
            for t in range(_VEC):
                # An idle slot reads matrix 0 (its values are replaced by zeros).
                row = cgutils.alloca_once_value(builder, ir.Constant(_I64, 0))
                j = builder.extract_element(jobs, ir.Constant(_I32, t))
                with builder.if_then(builder.icmp_signed(">=", j, ir.Constant(_I64, 0))):
                    builder.store(builder.load(builder.gep(lba.data, [j])), row)
                bases.append(builder.gep(srca.data, [builder.mul(builder.load(row), m)]))
            with cgutils.for_range_slice(builder, ir.Constant(_I64, 0), tiles, ir.Constant(_I64, _VEC)) as (i0, _):
                tile = [builder.load(builder.bitcast(builder.gep(p, [i0]), vt.as_pointer()), align=4) for p in bases]
                for c, col in enumerate(_transpose(builder, tile)):
                    store_row(builder.add(i0, ir.Constant(_I64, c)), g, scaled(col, ma, mb, busy))
            with cgutils.for_range_slice(builder, tiles, count, ir.Constant(_I64, 1)) as (i, _):
                v = ir.Constant(vt, ir.Undefined)
                for t, p in enumerate(bases):
                    v = builder.insert_element(v, builder.load(builder.gep(p, [i])), ir.Constant(_I32, t))
                store_row(i, g, scaled(v, ma, mb, busy))
        return context.get_dummy_value()

    return sig, codegen
