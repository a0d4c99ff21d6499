"""The eigenvalue engine over lanes: bisection with Laguerre steps and the
end game, for a chunk of jobs (:func:`_kth_block`).

The bracket invariant -- ``lo``/``hi`` with Sturm counts ``clo``/``chi``,
``clo <= k < chi`` -- is kept here: after :func:`._lanes._lane_start` sets the
Gershgorin bracket, the only writer of ``lo``/``hi``/``clo``/``chi`` is
:func:`_move_bracket`, which takes a shift together with its Sturm count.
Laguerre steps and interpolation only propose the next shift.
"""

import math

import numpy as np

from ._jit import kernel_inner
from ._lanes import _CLAMP, _MAX_LAGUERRE, _fill_block, _fill_slot, _norm_cdf, _norm_ppf
from ._layout import INFO_NO_CONVERGENCE, INFO_OK, LANES, ROW
from ._order import rth_smallest
from ._sturm import _sturm_pass
from ._sturm_ir import _VEC, _sturm_pass_gather


# With at most this many slots busy, a pass gathers just those into one or
# two vectors (_sturm_pass_gather takes up to 2 * _VEC).
_FEW_SLOTS = 16


@kernel_inner(inline="always")
def _move_bracket(l, k, xs, c, inward_only, lo, hi, clo, chi):
    """Slot ``l``'s bracket after a Sturm count: ``c`` eigenvalues lie below
    the shift ``xs``, so ``xs`` becomes the lower end (with count ``c``) if
    ``c <= k`` and the upper end otherwise.

    The one writer of ``lo``/``hi``/``clo``/``chi`` once
    :func:`._lanes._lane_start` has set the Gershgorin bracket: every end is a
    shift with its count, so ``clo <= k < chi`` holds and the bracket always
    contains eigenvalue ``k``.  ``inward_only`` (the second count of an
    end-game pair) ignores a shift that would widen the bracket.
    """
    if c <= k:
        if not inward_only or xs > lo[l]:
            lo[l] = xs
            clo[l] = c
    elif not inward_only or xs < hi[l]:
        hi[l] = xs
        chi[l] = c


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
    return rth_smallest(cand, c, r)


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
            _move_bracket(l, k, xl, cl, False, lo, hi, clo, chi)
            if pair[l] != 0:
                # The pair's second count: it moves an end only inwards.
                pair[l] = 0
                _move_bracket(l, k, x2[l], cnt2[l], True, lo, hi, clo, chi)
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
