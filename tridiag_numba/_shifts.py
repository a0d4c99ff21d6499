"""Shift proposals of the eigenvalue engine: where slot ``l`` counts next.

:func:`._bisect._run_block` chooses between Laguerre's method with the end
game (:func:`_laguerre_shift`, once the count at the shift is k or k + 1)
and interpolation of the counting function (:func:`_interpolated_shift`).
These functions read the bracket (:data:`._lanes.Bracket`) and never write
it: a shift is only a place to count, and only the count moves an end
(:func:`._bisect._move_bracket`).  The end game's pair of shifts is
requested through ``ps.x2``/``ps.pair`` (:data:`._bisect.Pass`).
"""

import math

import numpy as np

from ._jit import kernel_inner
from ._lanes import _CLAMP, _norm_cdf, _norm_ppf


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


@kernel_inner(inline="always")
def _laguerre_shift(slots, br, ps, l, k, cl, thr, pivmin, rtol):
    """Slot ``l``'s next shift by Laguerre's method and the end game, once
    the count ``cl`` at its shift ``x`` is k or k + 1; NaN when Laguerre is
    crawling (the caller interpolates instead).

    The rtsafe-style safeguard falls back to the bracket's midpoint when a
    step is longer than the previous one.  End game: a converged estimate is
    pushed just past itself so the next count closes the bracket from the
    other side; or, when cubic convergence predicts it within the
    tolerance, a pair of shifts either side of it (``ps.x2``, ``ps.pair``)
    asks two counts to confirm it.  Only proposes shifts: the counts move
    the bracket (:func:`_move_bracket`).
    """
    n = slots.db.shape[0]
    T = slots.x.dtype.type
    half = T(0.5)
    xl = slots.x[l]
    lol = br.lo[l]
    hil = br.hi[l]
    dxp = slots.dxp[l]
    width = hil - lol
    nxt = lol + half * width
    S1 = ps.st[3, l]
    S2 = ps.st[4, l]
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
        return np.nan
    slots.nlag[l] += 1
    nlag = slots.nlag[l]
    ymod = _laguerre_modified(xl, y, step, S1, S2, n, dxp, nlag)
    if lol < ymod < hil:
        # Not a Laguerre point (no bound, no end game): a shift.
        nxt = ymod
    elif step <= dxp:
        # Safeguard in the spirit of rtsafe (Numerical Recipes):
        # accept the step only if it is no longer than the
        # previous one.
        # The tolerance that will apply once the bracket closes
        # around y (thr may still be set by a far end).
        tfin = max(slots.atol[l], pivmin, rtol * abs(y))
        push = half * tfin
        endgame = step < push
        if endgame:
            # Converged estimate: step a little past it so that
            # the next count brackets w within the tolerance.
            y = y - push if cl > k else y + push
        elif nlag >= 2 and step * step * step * step <= 0.125 * tfin * dxp * dxp * dxp:
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
                ps.x2[l] = T(far)
                ps.pair[l] = 1
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
    return nxt


@kernel_inner(inline="always")
def _interpolated_shift(slots, br, l, k):
    """Slot ``l``'s next shift in the isolating phase: where the eigenvalue
    counting function, interpolated between the bracket ends, reaches
    k + 1/2; every fifth step the midpoint.

    The counting function is smooth inside the spectrum; bisecting every
    fifth step makes the bracket shrink at least by (1 - _CLAMP)**4 * 0.5
    per five steps (tuned on random matrices: fewer passes than every
    2nd/3rd/4th step).
    """
    T = slots.x.dtype.type
    half = T(0.5)
    lol = br.lo[l]
    hil = br.hi[l]
    width = hil - lol
    nxt = lol + half * width
    slots.nint[l] += 1
    if slots.nint[l] % 5 != 0:
        mu = slots.mu[l]
        sig = slots.sig[l]
        frac = (k + 0.5 - br.clo[l]) / (br.chi[l] - br.clo[l])
        y = lol + min(max(frac, _CLAMP), 1.0 - _CLAMP) * width
        if sig > 0.0:
            # Interpolate in the normal model's quantile space,
            # where the counting function is nearly linear
            # (eigenvalues thin out towards the ends).
            ulo = _norm_cdf((lol - mu) / sig)
            uhi = _norm_cdf((hil - mu) / sig)
            u = ulo + frac * (uhi - ulo)
            if 0.0 < u < 1.0:
                y = mu + sig * _norm_ppf(u)
                y = min(max(y, lol + _CLAMP * width), hil - _CLAMP * width)
        nxt = y
    return nxt
