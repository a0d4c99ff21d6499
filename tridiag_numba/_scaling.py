"""Scaling a matrix by a power of two, and where dstebz splits it.

Every kernel works on ``T`` scaled so that its largest entry lies in
[0.5, 1): the scale is exact (a power of two), so eigenvalues scale back
exactly, and 1e+-150-scaled matrices neither overflow nor underflow in the
Sturm recurrence.  :func:`_split_e2` is dstebz's test for a negligible
off-diagonal, shared by the eigenvalue loader and inverse iteration.
"""

import math

import numpy as np
from numba import types
from numba.extending import overload

from ._jit import kernel_inner


def _float_bits(x):
    """Integer view of a float array and its format's constants (numba only)."""
    raise NotImplementedError("only callable from numba-compiled code")


# Inlined into the caller: a separate compiled function returning an array
# view would be shared between callers with and without reference counting
# (see _jit.kernel_loop) and get the view's count wrong for one of them.
@overload(_float_bits, inline="always", jit_options=dict(cache=True))
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
