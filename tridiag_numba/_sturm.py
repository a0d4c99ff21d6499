"""The Sturm recurrence: the scalar reference step, the pass over lanes, and
the count of eigenvalues below one value.

:func:`_sturm_step` is the reference, in plain Python-numba, for the IR
passes of :mod:`._sturm_ir`; :func:`_sturm_pass` (what the bisection engine
calls) explains the recurrence and runs its SIMD form.
"""

from ._jit import kernel_inner
from ._scaling import _pow2_pair, _scale_exponent, _split_e2
from ._sturm_ir import _fma, _sturm_pass_simd


@kernel_inner(inline="always")
def _sturm_step(db, e2b, x, pivmin, st, i, l):
    """Step ``i`` of slot ``l``'s Sturm sequence with its Laguerre sums: the
    scalar form of :func:`_sturm_pass_simd`'s step, operation for operation
    (the reference the IR passes are tested against)."""
    zero = db.dtype.type(0.0)
    one = db.dtype.type(1.0)
    e2 = e2b[i, l]
    rp = st[0, l]
    ap = st[1, l]
    z = e2 * rp
    q = db[i, l] - x[l] - z
    q = q if abs(q) >= pivmin else -pivmin
    rn = one / q
    wn = z * rn
    an = _fma(wn, ap, -rn)
    bn = _fma(an, an, wn * _fma(ap, ap, st[2, l]))
    st[0, l] = rn
    st[1, l] = an
    st[2, l] = bn
    st[3, l] += an
    st[4, l] += bn
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
    method at the cost of a few multiplies per step.  With ``r = 1/q``,
    ``a = q'/q`` and ``b = -a'`` (so ``s1 = sum a_i``, ``s2 = sum b_i``) and
    ``w_i = e2 r_{i-1} r_i``:
    ``a_i = w_i a_{i-1} - r_i``, ``b_i = a_i**2 + w_i (a_{i-1}**2 + b_{i-1})``
    (from ``q'_i = -1 + e2 a_{i-1} r_{i-1}`` and
    ``q''_i = e2 r_{i-1} (q''_{i-1}/q_{i-1} - 2 a_{i-1}**2)``): three fused
    multiply-adds and two multiplies a step.  A pass is bound by its
    floating-point operations more than by the divider (on AMD Zen 4, 32
    float64 lanes: ~11 ns a step for the count alone, 17.5 ns with the sums
    written as ``c = q''/q``, 15 ns like this).  The fused operations round
    once (``llvm.fma``, IEEE on every target), so the IR pass and this
    reference agree bit for bit.  Overflow of a/b near a pole only spoils
    s1/s2 (the caller then bisects); the count never depends on them (the
    pivots ``q`` are those of the count-only recurrence).

    ``db`` (n, ROW) holds the scaled diagonals, ``e2b`` (n, ROW) the squared
    off-diagonals (row 0 zero), ``x`` (LANES,) the shifts; on return ``st``
    (6, LANES) holds, per lane, the last r, a, b and then s1, s2 and the
    count.  The work is :func:`_sturm_pass_simd`'s.
    """
    _sturm_pass_simd(db, e2b, x, pivmin, st)


@kernel_inner
def _sturm_count_value(d, e, b, x, eps, safemin):
    """Number of eigenvalues of matrix ``b`` below ``x`` (``x`` unscaled).

    The matrix is split where dstebz splits it (:func:`._scaling._split_e2`,
    in the matrix's dtype with its ``eps`` and ``safemin``, operation for
    operation as the eigenvalue kernel's loaders split it), so the count is
    that of the matrix whose eigenvalues the kernel returns: ``select='v'``
    takes exactly the eigenvalues of 1x1 blocks that lie in (vl, vu], as
    dstebz does.  The recurrence itself runs in float64 for both dtypes (it
    only fixes how many eigenvalues the interval holds, not their accuracy),
    with ``safemin`` as pivmin.
    """
    n = d.shape[1]
    T = d.dtype.type
    ex, finite, is_zero = _scale_exponent(d, e, b)
    if not finite:
        return -1
    ma, mb = _pow2_pair(ex)
    # Scaled Gershgorin discs lie within [-3, 3]: clamping keeps x finite.
    xs = min(max(x * ma * mb, -8.0), 8.0)
    eps2 = T(eps * eps)
    tiny = T(safemin)
    cnt = 0
    q = 1.0
    e2 = 0.0
    dprev = T(0.0)
    for i in range(n):
        di = T(d[b, i] * ma * mb)
        if i > 0:
            ei = abs(T(e[b, i - 1] * ma * mb))
            e2 = float(_split_e2(T(ei * ei), dprev, di, eps2, tiny))
        q = di - xs - (e2 / q if e2 != 0.0 else 0.0)
        if abs(q) < safemin:
            q = -safemin
        if q < 0.0:
            cnt += 1
        dprev = di
    return cnt
