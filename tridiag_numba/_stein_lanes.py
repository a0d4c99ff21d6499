"""Inverse iteration for one eigenvalue per matrix, matrices as SIMD lanes
(:func:`_eigvec_block`); lanes that need the full dstein loop fall back to
:func:`._stein._inverse_iteration`.
"""

import math

import numpy as np

from ._jit import kernel_inner
from ._layout import INFO_OK, LANES, ROW
from ._scaling import _pow2_pair, _scale_exponent
from ._stein import _inverse_iteration, _start_vector


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
