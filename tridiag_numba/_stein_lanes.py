"""Inverse iteration for one eigenvalue per matrix, matrices as SIMD lanes
(:func:`_eigvec_block`); lanes that need the full dstein loop
(:func:`._stein._inverse_iteration`) are marked ``INFO_VEC_REDO``, and the numpy
layer runs that loop on their matrices (``_api._redo_vectors``).

The same algorithm as :func:`._stein._inverse_iteration` for an isolated
eigenvalue, step by step over all lanes of a block::

    _eigvec_block        allocate; the steps below on the VecBlock record;
                         store vectors; mark the lanes to redo
      _load_vec_lanes      raw copies of the block's matrices
      _shift_lanes         scale, shift by w, 1-norm, split test
      _lu_lanes            LU of T - w I with partial pivoting (dlagtf),
                           perturbed pivots and their reciprocals
      _start_lanes         pseudo-random start vectors and their 1-norms
      _solve_lanes         one solve (dlagts) of every lane, + growth test
      _normalise_lanes     norm, sign, fallback flags

Each step sweeps the block's (n, ROW) arrays as few times as the order of
its floating-point operations allows (a sweep costs ~0.5-1 us at n = 100:
the arrays do not fit in L1): work that does not depend on the order of the
rows (a maximum, an element-wise scale or test) rides along a sweep that
runs anyway; sums keep their row order, so the results are bit-identical to
one loop per operation.
"""

import math
from collections import namedtuple

import numpy as np

from ._jit import kernel_inner
from ._layout import INFO_OK, INFO_VEC_REDO, LANES, ROW
from ._load_ir import _transpose_lanes
from ._scaling import _pow2_pair, _scale_exponent
from ._stein import _start_vector

#: Work arrays of a block, float64 whatever the input dtype; ``(n, ROW)``
#: unless noted.  ``dm``: scaled d - w; ``eb``: scaled e (``eb[n-1] = 0``);
#: ``U`` (n, 6, LANES): U's pivot, first and second superdiagonal, L's
#: multiplier, row swap (1.0 / 0.0) and the pivot's reciprocal; ``cur``
#: (2, LANES): the LU step's carried row; ``y``: the iterate; ``col`` (n,):
#: one start vector; ``lane`` (4, LANES): scale factors ma, mb, shift w,
#: 1-norm; ``ok`` (LANES,) bool: the lane needs no fallback; ``acc``
#: (LANES,): per-lane scale factors and norms.
VecBlock = namedtuple("VecBlock", ["dm", "eb", "U", "cur", "y", "col", "lane", "ok", "acc"])


@kernel_inner(inline="always")
def _load_vec_lanes(d, e, ws, start, stop, vb, src):
    """Raw copies of matrices start..stop, one per lane; non-finite matrices
    and idle slots hold inert matrices (0 and the identity) with shift 0.

    The copy transposes: each matrix becomes a column (:func:`_copy_lanes`).
    ``src`` (LANES,) int64 work space: each lane's matrix, or -1 (idle) or
    -2 (non-finite)."""
    nl = stop - start
    dm = vb.dm
    eb = vb.eb
    lane = vb.lane
    ok = vb.ok
    for l in range(LANES):
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
        src[l] = b if finite else (-2 if l < nl else -1)
    _copy_lanes(d, e, src, dm, eb, vb.acc)


@kernel_inner(inline="always")
def _copy_lanes(d, e, src, dm, eb, fill):
    """Matrix ``src[l]`` of ``d``/``e`` into column l of ``dm``/``eb``
    (``eb[n-1] = 0``); ``src[l]`` -1: the identity, -2: the zero matrix.
    The copy transposes; :func:`._load_ir._transpose_lanes` does it eight
    lanes by eight entries at a time in registers (the vector part of a
    25-lane block at n = 100 ~1 us faster than eight lanes at a time down
    the rows).
    ``fill`` (LANES,) float64 work space."""
    n = d.shape[1]
    for l in range(LANES):
        fill[l] = 1.0 if src[l] == -1 else 0.0
    _transpose_lanes(d, src, fill, dm, n)
    for l in range(LANES):
        fill[l] = 0.0
    _transpose_lanes(e, src, fill, eb, n - 1)
    for l in range(LANES):
        eb[n - 1, l] = 0.0


@kernel_inner(inline="always")
def _shift_lanes(vb, eps, safemin):
    """Scale and shift every lane (``dm = d - w``), its 1-norm (max row
    sum) into ``lane[3]``; lanes whose matrix splits (as in
    :func:`._scaling._split_e2`) are flagged for the block-by-block
    fallback.  One sweep: the split test of rows i-1, i runs at row i, on
    row i-1's values carried in ``cur``."""
    dm = vb.dm
    eb = vb.eb
    lane = vb.lane
    cur = vb.cur
    ok = vb.ok
    n = dm.shape[0]
    L = LANES
    eps2 = eps * eps
    for l in range(L):
        ma = lane[0, l]
        mb = lane[1, l]
        di = dm[0, l] * ma * mb
        ei = eb[0, l] * ma * mb
        dm0 = di - lane[2, l]
        dm[0, l] = dm0
        eb[0, l] = ei
        cur[0, l] = ei
        cur[1, l] = dm0
        rs = abs(di) + abs(ei)  # (+ |e_{-1}| = 0: the same bits)
        lane[3, l] = rs if rs > 0.0 else 0.0
    for i in range(1, n):
        for l in range(L):
            ma = lane[0, l]
            mb = lane[1, l]
            w0 = lane[2, l]
            di = dm[i, l] * ma * mb
            ei = eb[i, l] * ma * mb
            eprev = cur[0, l]
            rs = abs(di) + abs(ei) + abs(eprev)
            dmi = di - w0
            dm[i, l] = dmi
            eb[i, l] = ei
            lane[3, l] = rs if rs > lane[3, l] else lane[3, l]
            e2 = eprev * eprev
            splits = e2 < eps2 * abs((cur[1, l] + w0) * (dmi + w0)) + safemin
            ok[l] = ok[l] and not splits
            cur[0, l] = ei
            cur[1, l] = dmi
    for l in range(L):
        lane[3, l] = lane[3, l] if lane[3, l] > 0.0 else 1.0


@kernel_inner(inline="always")
def _lu_lanes(vb, eps):
    """LU with partial pivoting of every lane's ``T - w I`` (dlagtf) into
    ``U``; pivoting is a per-lane select.  Small pivots are perturbed to
    eps ||T||_1 as dlagts(job=-1) does, to keep the solves finite."""
    dm = vb.dm
    eb = vb.eb
    U = vb.U
    cur = vb.cur
    lane = vb.lane
    n = dm.shape[0]
    L = LANES
    # The current row's pivot candidate and superdiagonal, changed by the
    # previous step, are carried in cur.
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
            U[k, 1, l] = ak1 if swap else bk
            U[k, 2, l] = bk1 if swap else 0.0
            U[k, 3, l] = mult
            U[k, 4, l] = 1.0 if swap else 0.0
            cur[0, l] = (bk - mult * ak1) if swap else (ak1 - mult * bk)
            cur[1, l] = -mult * bk1 if swap else bk1
            # The pivot, perturbed once the step is done (the solves use it).
            tolpiv = eps * lane[3, l]
            p = den if abs(den) >= tolpiv else (tolpiv if den >= 0.0 else -tolpiv)
            U[k, 0, l] = p
            U[k, 5, l] = 1.0 / p
    for l in range(L):
        tolpiv = eps * lane[3, l]
        p = cur[0, l]
        p = p if abs(p) >= tolpiv else (tolpiv if p >= 0.0 else -tolpiv)
        U[n - 1, 0, l] = p
        U[n - 1, 5, l] = 1.0 / p


@kernel_inner(inline="always")
def _start_lanes(kidx, start, stop, vb):
    """Start vectors (:func:`._stein._start_vector`, seeded by the index),
    and each one's 1-norm into ``acc`` (summed in row order, as
    :func:`_solve_lanes` sums a lane).

    Usually every matrix asks for the same k, so all lanes get the first
    lane's vector row by row, and only lanes with another k are redone
    (each vector generated, and its norm summed, once per run of equal k)."""
    y = vb.y
    col = vb.col
    acc = vb.acc
    n = y.shape[0]
    seed = kidx[start, 0]
    _start_vector(col, seed)
    s = 0.0
    for i in range(n):
        s += abs(col[i])
    for i in range(n):
        for l in range(LANES):
            y[i, l] = col[i]
    for l in range(LANES):
        acc[l] = s
    for l in range(1, stop - start):
        k = kidx[start + l, 0]
        if k == kidx[start, 0]:
            continue
        if k != seed:
            seed = k
            _start_vector(col, seed)
            s = 0.0
            for i in range(n):
                s += abs(col[i])
        for i in range(n):
            y[i, l] = col[i]
        acc[l] = s


@kernel_inner(inline="always")
def _solve_lanes(vb, eps, growth):
    """One step of inverse iteration on every lane: scale ``y`` (as dstein
    does), then solve ``(T - w I) y_new = y`` with the LU (dlagts).  With
    ``growth`` (the first solve, on the start vectors, whose 1-norms
    :func:`_start_lanes` left in ``acc``), lanes whose solution stays below
    dstein's growth threshold sqrt(0.1 / n) are flagged for the fallback."""
    y = vb.y
    U = vb.U
    acc = vb.acc
    lane = vb.lane
    ok = vb.ok
    n = y.shape[0]
    L = LANES
    if not growth:
        for l in range(L):
            acc[l] = 0.0
        for i in range(n):
            for l in range(L):
                acc[l] += abs(y[i, l])
    for l in range(L):
        acc[l] = n * lane[3, l] * max(eps, abs(U[n - 1, 0, l])) / acc[l] if acc[l] > 0.0 else 0.0
    # L^-1 with the row swaps, scaling each row as it is reached ...
    for l in range(L):
        y[0, l] *= acc[l]
    for k in range(n - 1):
        for l in range(L):
            yk = y[k, l]
            yk1 = y[k + 1, l] * acc[l]
            m = U[k, 3, l]
            swap = U[k, 4, l] != 0.0
            y[k, l] = yk1 if swap else yk
            y[k + 1, l] = (yk - m * yk1) if swap else (yk1 - m * yk)
    # ... then U^-1; multiplying by the pivots' reciprocals keeps the
    # division's latency out of the chain.  With ``growth``, the largest
    # |y| on the way into ``acc`` (in any order the same: NaN never wins).
    for l in range(L):
        y[n - 1, l] = y[n - 1, l] * U[n - 1, 5, l]
        y[n - 2, l] = (y[n - 2, l] - U[n - 2, 1, l] * y[n - 1, l]) * U[n - 2, 5, l]
        if growth:
            a = abs(y[n - 1, l])
            b = abs(y[n - 2, l])
            a = a if a > 0.0 else 0.0
            acc[l] = b if b > a else a
    for k in range(n - 3, -1, -1):
        for l in range(L):
            yk = (y[k, l] - U[k, 1, l] * y[k + 1, l] - U[k, 2, l] * y[k + 2, l]) * U[k, 5, l]
            y[k, l] = yk
            if growth:
                a = abs(yk)
                acc[l] = a if a > acc[l] else acc[l]
    if growth:
        dtpcrt = math.sqrt(0.1 / n)
        for l in range(L):
            if not acc[l] >= dtpcrt:  # also catches NaN from overflow
                ok[l] = False


@kernel_inner(inline="always")
def _normalise_lanes(vb, nrm, jmax):
    """Per lane, the factor into ``acc`` that makes ``y`` a unit vector
    whose (first) entry of largest magnitude is positive; lanes with a zero
    or non-finite norm are flagged for the fallback.  ``nrm`` (2, LANES)
    and ``jmax`` (LANES,) are zeroed work space."""
    y = vb.y
    acc = vb.acc
    ok = vb.ok
    n = y.shape[0]
    L = LANES
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


# Not ``kernel_block`` (late linking, :mod:`._jit_link`): linked late it ran
# 35-60% slower per core (kth_eigenpair 50 x 100: 122 against 90 us; 4096 x 45:
# 6.3 against 4.0 ms, serial kernels, thread CPU), the eigenvalue blocks not.
@kernel_inner
def _eigvec_block(d, e, ws, kidx, start, stop, eps, safemin, v, info):
    """One eigenvector each for matrices start..stop (at most LANES), with
    the matrices interleaved as SIMD lanes.

    The same algorithm as :func:`._stein._inverse_iteration` for an isolated
    eigenvalue (LU of ``T - w I`` with partial pivoting, dlagtf; small pivots
    perturbed to eps ||T||_1; a solve that passes dstein's growth test plus
    one more), but the LU and the solves are serial chains of n steps, so
    running LANES matrices side by side keeps the divider and FMA units busy.
    Pivoting is a per-lane select.  Lanes whose matrix splits, whose first
    solve fails the growth test, or whose solve overflows get
    ``info = INFO_VEC_REDO`` and no vector: the caller redoes them with
    :func:`._stein._inverse_iteration` (the full dstein loop, block by block).

    Layout, for speed: every loop runs over all LANES slots (a constant trip
    count; slots past ``stop`` hold the identity matrix), and each loop
    writes few distinct arrays -- U's rows live in one (n, 6, LANES) array --
    so that LLVM's runtime alias checks stay within its limit and the lane
    loops are vectorised.  Both halved this kernel's time.
    """
    n = d.shape[1]
    L = LANES
    vb = VecBlock(np.empty((n, ROW)), np.empty((n, ROW)), np.empty((n, 6, L)), np.empty((2, L)),
                  np.empty((n, ROW)), np.empty(n), np.empty((4, L)), np.ones(L, np.bool_), np.empty(L))
    nrm = np.zeros((2, L))
    iw = np.zeros((2, L), np.int64)  # jmax (zeroed) and the lanes' matrices
    jmax = iw[0]
    # The lane steps (see the module docstring), inlined here where the
    # record is allocated: LLVM sees the arrays' constant row lengths (ROW,
    # LANES) and proves the rows of ``y``/``U`` disjoint, which the lane
    # loops need to be vectorised (as separate functions they ran ~1.5x
    # slower).  Called from here directly, not from one inlined function of
    # steps: numba copies an inlined function's IR once per basic block, so
    # inlining the inlined steps again cost ~3 s of the first compile.
    _load_vec_lanes(d, e, ws, start, stop, vb, iw[1])
    _shift_lanes(vb, eps, safemin)
    _lu_lanes(vb, eps)
    _start_lanes(kidx, start, stop, vb)
    # A solve that passes dstein's growth test, plus one more.
    _solve_lanes(vb, eps, True)
    _solve_lanes(vb, eps, False)
    _normalise_lanes(vb, nrm, jmax)
    ok = vb.ok
    y = vb.y
    acc = vb.acc
    for l in range(stop - start):
        b = start + l
        if not ok[l]:
            # A split matrix, a slow start or overflow (many tiny pivots;
            # 0.1-6 % of random matrices of order 2-16, rarer above): the full
            # dstein loop, block by block, which the numpy layer runs on these
            # matrices afterwards.  Not called from here: it and its helpers
            # were ~5 s of this kernel's first compile.
            info[b] = INFO_VEC_REDO
            continue
        scl = acc[l]
        for i in range(n):
            v[b, i, 0] = y[i, l] * scl
        info[b] = INFO_OK
