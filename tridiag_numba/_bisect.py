"""The eigenvalue engine over lanes: bisection with Laguerre steps and the
end game, for a chunk of jobs (:func:`_kth_block`).

The bracket invariant -- ``lo``/``hi`` with Sturm counts ``clo``/``chi``,
``clo <= k < chi`` (the :data:`._lanes.Bracket` record) -- is kept here:
after :func:`._lanes._lane_start` sets the Gershgorin bracket, the only
writer of ``lo``/``hi``/``clo``/``chi`` is :func:`_move_bracket`, which
takes a shift together with its Sturm count (``tests/test_core_layout.py``
fails on any other writer).  Laguerre steps, the end game and interpolation
(:func:`_laguerre_shift`, :func:`_interpolated_shift`) only propose the
next shift.

The shift proposals live in :mod:`._shifts` (which reads the bracket and
never writes it).  One pass of a block, function by function::

    _kth_block                 allocate the records (_block_state)
    _run_block                 loop (no reference counting): pass, then every busy slot
      _count_pass              Sturm counts at all shifts (full or gathered)
      _hold_pair_first         end-game pair run in two passes: park count 1
      per slot, after its count (written out in _run_block):
        _take_counts             counts -> _move_bracket
        _finish_job              converged: store w, load the next job
        else the next shift (._shifts):
          _laguerre_shift          Laguerre step and end game (pairs)
          _interpolated_shift      isolating phase: interpolation, bisection
"""

import math
from collections import namedtuple

import numpy as np

from ._jit import kernel_block, kernel_inner, kernel_loop
from ._lanes import _MAX_LAGUERRE, Bracket, Jobs, Slots, _fill_block, _fill_slot
from ._layout import INFO_NO_CONVERGENCE, INFO_OK, LANES, ROW
from ._shifts import _interpolated_shift, _laguerre_shift
from ._sturm import _sturm_pass
from ._sturm_ir import _VEC, _sturm_pass_gather


# With at most this many slots busy, a pass gathers just those into one or
# two vectors (_sturm_pass_gather takes up to 2 * _VEC).
_FEW_SLOTS = 16

#: A pass's results and the end game's pairs of shifts.  ``st`` (6, LANES):
#: per slot the last r, a, c, then the Laguerre sums s1, s2 and the count
#: (see :func:`._sturm._sturm_pass`).  ``x2``: a pair's second shift;
#: ``pair``: 0 none, 1 the slot wants a count at ``x2`` (has it, ``cnt2``,
#: after a gathered pass), 2 the pass could not take ``x2`` so the next one
#: runs it alone, 3 that pass ran; ``xsave``/``stsave``: the first shift
#: and its state, parked meanwhile.  ``gx`` (2 _VEC,), ``gst`` (6, 2 _VEC)
#: and ``act``: the shifts, states and slots of a gathered pass.
Pass = namedtuple("Pass", ["st", "x2", "pair", "cnt2", "xsave", "stsave", "gx", "gst", "act"])


@kernel_inner(inline="always")
def _move_bracket(br, l, k, xs, c, inward_only):
    """Slot ``l``'s bracket after a Sturm count: ``c`` eigenvalues lie below
    the shift ``xs``, so ``xs`` becomes the lower end (with count ``c``) if
    ``c <= k`` and the upper end otherwise.

    The one writer of the :data:`._lanes.Bracket` ``br`` (``lo``/``hi``/
    ``clo``/``chi``) once :func:`._lanes._lane_start` has set the Gershgorin
    bracket: every end is a shift with its count, so ``clo <= k < chi``
    holds and the bracket always contains eigenvalue ``k``.
    ``inward_only`` (the second count of an end-game pair) ignores a shift
    that would widen the bracket.
    """
    if c <= k:
        if not inward_only or xs > br.lo[l]:
            br.lo[l] = xs
            br.clo[l] = c
    elif not inward_only or xs < br.hi[l]:
        br.hi[l] = xs
        br.chi[l] = c


@kernel_loop
def _snap_single(slots, br, l, k, pivmin, mid):
    """Eigenvalue ``k`` of slot ``l``'s split matrix, exactly, when all the
    ``m = chi - clo`` eigenvalues in its verified bracket (lo, hi] are
    eigenvalues of 1x1 blocks (diagonal entries with zero couplings); else
    ``mid``.

    "In the bracket" is decided as the Sturm count decides it (a 1x1 block
    d counts below x when d - x < 0 or |d - x| < pivmin), so the block
    values found are exactly the m eigenvalues the counts at lo and hi
    enclose.  The value is then exact, lies in the bracket (the error bound
    holds) and is monotone in the index.
    """
    db = slots.db
    e2b = slots.e2b
    lo = br.lo[l]
    hi = br.hi[l]
    r = k - br.clo[l]  # 0-based, among the m
    m = br.chi[l] - br.clo[l]
    n = db.shape[0]
    cand = slots.scratch
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
    # Insertion sort (numba's np.sort for fewer than 16 values) in the
    # block's scratch: no allocation in the engine's loop (see _run_block).
    for i in range(1, c):
        v = cand[i]
        t = i
        while t > 0 and v < cand[t - 1]:
            cand[t] = cand[t - 1]
            t -= 1
        cand[t] = v
    return cand[r]


@kernel_inner(inline="always")
def _hold_pair_first(slots, ps, l):
    """If slot ``l``'s end-game pair could not share the last pass (pair 2),
    park that pass's shift and state and run the pair's second shift alone
    next pass; return whether the slot waits.

    Both counts then reach :func:`_take_counts` exactly as from one
    gathered pass, so results do not depend on which lanes shared the
    block.
    """
    if ps.pair[l] != 2:
        return False
    ps.xsave[l] = slots.x[l]
    for f in range(6):
        ps.stsave[f, l] = ps.st[f, l]
    slots.x[l] = ps.x2[l]
    ps.pair[l] = 3
    return True


@kernel_inner(inline="always")
def _take_counts(slots, br, ps, l, k):
    """Move slot ``l``'s bracket with the count at its shift and, for an
    end-game pair, the count at the second shift (which only moves an end
    inwards); return the count at the shift."""
    if ps.pair[l] == 3:  # the pair ran in two passes: restore the first
        ps.cnt2[l] = int(ps.st[5, l])
        slots.x[l] = ps.xsave[l]
        for f in range(6):
            ps.st[f, l] = ps.stsave[f, l]
        ps.pair[l] = 1
    cl = int(ps.st[5, l])
    _move_bracket(br, l, k, slots.x[l], cl, False)
    if ps.pair[l] != 0:
        ps.pair[l] = 0
        _move_bracket(br, l, k, ps.x2[l], ps.cnt2[l], True)
    return cl


@kernel_inner(inline="always")
def _finish_job(jobs, slots, br, l, k, finished, nxt_job, pivmin):
    """Store slot ``l``'s eigenvalue (the bracket's midpoint, or exact for a
    1x1 block) and status, then load the next job into the slot; return the
    new ``nxt_job``."""
    j = slots.job[l]
    lol = br.lo[l]
    hil = br.hi[l]
    half = slots.x.dtype.type(0.5)
    # The eigenvector kernel takes the scaled value: unscaled
    # subnormal eigenvalues have lost bits.
    jobs.ws[j] = half * (lol + hil)
    if finished and slots.single[l] != 0:
        jobs.ws[j] = _snap_single(slots, br, l, k, pivmin, jobs.ws[j])
    jobs.w[j] = math.ldexp(float(jobs.ws[j]), slots.expo[l])
    jobs.info[j] = INFO_OK if finished else INFO_NO_CONVERGENCE
    slots.job[l] = -1
    if nxt_job < jobs.stop:
        # Only then: the call passes the records' ~30 arrays and cost
        # ~0.2 us even with nothing to load (4 us of a 25-job block).
        nxt_job = _fill_slot(jobs, slots, br, l, nxt_job)
    return nxt_job


@kernel_inner(inline="always")
def _count_pass(slots, ps, running, pivmin):
    """Sturm counts (and Laguerre sums) at every busy slot's shift into
    ``ps.st``.

    With few slots busy, one gathered pass over just those, plus the
    second shifts of end-game pairs in the lanes left over (their counts
    into ``ps.cnt2``): the second vector costs little more than the first.
    Otherwise the full pass, and pairs wait for the next one (pair 2).
    """
    pair = ps.pair
    if running <= _FEW_SLOTS:
        act = ps.act
        gx = ps.gx
        nact = 0
        for l in range(LANES):
            if slots.job[l] >= 0:
                act[nact] = l
                gx[nact] = slots.x[l]
                nact += 1
        ntot = nact
        for l in range(LANES):
            if pair[l] == 1:
                if ntot < 2 * _VEC:
                    act[ntot] = l
                    gx[ntot] = ps.x2[l]
                    ntot += 1
                else:
                    pair[l] = 2
        _sturm_pass_gather(slots.db, slots.e2b, gx, pivmin, ps.gst, act, ntot)
        for t in range(nact):
            for f in range(6):
                ps.st[f, act[t]] = ps.gst[f, t]
        for t in range(nact, ntot):
            ps.cnt2[act[t]] = int(ps.gst[5, t])
    else:
        _sturm_pass(slots.db, slots.e2b, slots.x, pivmin, ps.st)
        for l in range(LANES):
            if pair[l] == 1:
                pair[l] = 2


@kernel_inner
def _block_state(d):
    """Zeroed state of a block of LANES slots for matrices like ``d``:
    (:data:`._lanes.Slots`, :data:`._lanes.Bracket`, :data:`Pass`).

    Zeros, but for the matrices: :func:`._lanes._fill_block` writes every
    slot's column (a slot that never gets a job the inert zero matrix), and
    the padding lanes LANES..ROW-1 are never read; only ``e2b`` row 0 (zero
    in every matrix) is set here.  Zeroing the whole (2, n, ROW) block, 64
    KB at n = 100, cost ~0.6 us a block (2 % of a 50 x 100 call).
    Few allocations (each costs ~60 ns; a block made 25): the records'
    arrays are rows of six.
    """
    n = d.shape[1]
    L = LANES
    mats = np.empty((2, n, ROW), d.dtype)
    mats[1, 0, :] = 0.0
    fstate = np.zeros((19, L), d.dtype)
    gstate = np.zeros((7, 2 * _VEC), d.dtype)
    istate = np.zeros((11, L), np.int64)
    moments = np.zeros((9, L))
    scratch = np.zeros(n, d.dtype)
    slots = Slots(mats[0], mats[1], fstate[0], fstate[3], fstate[4], moments[0], moments[1],
                  istate[3], istate[2], istate[4], istate[5], istate[6], istate[10], moments[2:9], scratch)
    br = Bracket(fstate[1], fstate[2], istate[0], istate[1])
    ps = Pass(fstate[5:11], fstate[11], istate[8], istate[9], fstate[12], fstate[13:19],
              gstate[0], gstate[1:7], istate[7])
    return slots, br, ps


@kernel_block
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
    # Always LANES wide: the vectorised lane loop has no fast path for a
    # remainder, so idle slots hold an inert zero matrix instead.
    jobs = Jobs(d, e, lane_b, lane_k, stop, abstol, eps, safemin, w, ws, info)
    slots, br, ps = _block_state(d)
    _run_block(jobs, slots, br, ps, start)


@kernel_loop
def _run_block(jobs, slots, br, ps, start):
    """The passes of :func:`_kth_block` over a zeroed block state.

    Compiled without reference counting (:func:`._jit.kernel_loop`): the
    per-slot helpers take the state records, and numba would otherwise
    increment and decrement the count of every array of every record at
    every inlined call, per slot and pass (3-4x slower).  Nothing below
    allocates; :func:`_kth_block` owns the arrays.
    """
    T = slots.x.dtype.type
    pivmin = T(jobs.safemin)  # scaled so that max e**2 < 1: dstebz's safemin*max(1, e2max)
    rtol = T(2.0 * jobs.eps)
    nxt_job = _fill_block(jobs, slots, br, start)
    running = 0
    for l in range(LANES):
        running += slots.job[l] >= 0
    while running > 0:
        _count_pass(slots, ps, running, pivmin)
        for l in range(LANES):
            if slots.job[l] < 0 or _hold_pair_first(slots, ps, l):
                continue
            # Slot l after its pass: its counts move the bracket; then it
            # either finishes its job (dstebz's stopping rule, or out of
            # budget) and loads the next, or sets its next shift.  (Written
            # out here, not as inlined functions that inline the steps: numba
            # copies an inlined function's IR once per basic block, and
            # inlining those steps twice over cost ~1.5 s of the first compile.)
            k = jobs.lane_k[slots.job[l]]
            cl = _take_counts(slots, br, ps, l, k)
            xl = slots.x[l]  # after _take_counts: a parked pair's first shift is back
            lol = br.lo[l]
            hil = br.hi[l]
            thr = max(slots.atol[l], pivmin, rtol * max(abs(lol), abs(hil)))
            slots.budget[l] -= 1
            finished = hil - lol <= thr
            if finished or slots.budget[l] < 0:
                nxt_job = _finish_job(jobs, slots, br, l, k, finished, nxt_job, pivmin)
            else:
                # The next shift (._shifts).  Laguerre as soon as the shift
                # has exactly k (or k + 1) eigenvalues below it: the root it
                # then converges to, monotonically, is the nearest one above
                # (below), i.e. w_k -- no need to isolate w_k from the far
                # side of the bracket first.  Otherwise, and while Laguerre
                # crawls, interpolation.
                nxt = np.nan
                if (cl == k or cl == k + 1) and slots.nlag[l] < _MAX_LAGUERRE:
                    nxt = _laguerre_shift(slots, br, ps, l, k, cl, thr, pivmin, rtol)
                if nxt != nxt:
                    nxt = _interpolated_shift(slots, br, l, k)
                slots.dxp[l] = abs(nxt - xl)
                slots.x[l] = slots.x.dtype.type(nxt)
            if slots.job[l] < 0:
                running -= 1
