"""All eigenvalues of a batch by root-free QL (LAPACK dsterf), matrices as
SIMD lanes, each result certified by Sturm counts (:func:`_ql_block`).

A speed trick beside its plain reference: QL *proposes* eigenvalues (one
Newton step, from the first sum of a Sturm pass, sharpens each proposal),
the bisection engine's own Sturm count (:func:`._sturm._sturm_pass`, here
in the forms of :mod:`._ql_ir` that compute only what certification needs,
with identical counts; on the same scaled and split matrix, with the same
pivmin) *decides*.  A proposal
``x_i`` (sorted index i) is returned only when the counts at
``lo = x_i - h`` and ``hi = x_i + h`` give ``count(lo) <= i < count(hi)``
and ``[lo, hi]`` passes the engine's stopping test
``hi - lo <= max(atol, pivmin, 2 eps max(|lo|, |hi|))`` -- exactly the
bracket the bisection route would have stopped on, so the bound is the
same (README, "Accuracy").  Everything else -- a failed count, a lane whose
QL did not converge -- is flagged, and the numpy layer recomputes it with
the bisection kernel (the reference).

One block, step by step::

    _ql_block            allocate; load; QL; sort; certify; store
      _fill_block          the engine's loader: scaled, split matrices,
                           tolerances, trivial (zero / non-finite) matrices
      _ql_load             copies for QL, each lane turned upside down
                           when that puts the smaller end diagonal on top
      _ql_scan_simd        per lane: deflated rows, the next split
      _ql_control          per lane: take 1x1/2x2 blocks, or set a shift
      _ql_sweep            one implicit QL sweep of every sweeping lane
      _certify             per eigenvalue, all lanes: a Sturm pass with
                           its sums (Newton's step from the QL value),
                           then the two counts of its bracket
      _refine              the few proposals the counts do not confirm:
                           more counts, lane by lane (bisection from the
                           verified ends)

dsterf's QL/QR iteration runs per lane on its own window [l, m] (rows
l..m of an unreduced block at the top of what is left); the sweep runs
over the union of the windows, each lane's update selected by a mask, so
the lane loop stays one SIMD loop.  QL (not QR) always: a lane whose
bottom diagonal is the smaller is loaded reversed (same eigenvalues),
which is dsterf's choice for an unsplit matrix.
"""

import math
from collections import namedtuple

import numpy as np

from numba import prange

from ._jit import kernel_block, kernel_inner, kernel_loop, kernel_parallel, kernel_serial
from ._lanes import Jobs, _fill_block
from ._bisect import _block_state
from ._layout import INFO_NO_CONVERGENCE, INFO_OK, LANES, ROW
from ._ql_ir import _ql_scan_simd, _ql_sweep_simd, _sturm_count2_simd, _sturm_count_simd, _sturm_newton_simd

#: dsterf's iteration limit: 30 sweeps per eigenvalue on average.
_MAXIT = 30
#: float32 lanes deflate an off-diagonal once ``e_i**2 <= 1e3 eps**2
#: |d_i d_{i+1}|`` (dsterf: 1 eps**2), about 30 eps relative: QL only
#: proposes, the Newton step and the counts take each value to the
#: bracket, and the last sweeps to full precision cost more than they
#: gave.  All eigenvalues, 64 float32 matrices, same process against
#: dsterf's test: random normal, uniform and graded 0.78-0.87x the time
#: at n = 16, 100, 300 (graded n = 100 0.69x); Wilkinson, Toeplitz,
#: Legendre, Hermite, Laguerre, Clement 0.90-1.0x; glued Wilkinson and
#: split 0.99-1.02x; equal pairs of diagonals coupled by 1e-3 0.64x and
#: by 1e-6 1.51x (eigenvalues 8 eps apart, proposed as one double value
#: and sorted out by more counts).  float64 gained nothing (0.96-1.0x at
#: 1e4; glued Wilkinson 1.18x) and keeps dsterf's test.
_DEFLATE_FLOAT32 = 1e3
#: Counts a proposal's bracket may step by (see :func:`_refine`).
_STEPS = 14
#: Newton steps from a QL value taken (:func:`_certify`), in tolerances:
#: from _NEWTON_SHORT (shorter ones gain nothing a bracket can show, and
#: would move values QL gets exactly, such as 1x1 blocks, by the pivmin
#: substitution's rounding) to _NEWTON_REACH.
_NEWTON_SHORT = 1.0 / 32.0
_NEWTON_REACH = 8.0

#: QL state of a block: ``qd``/``qe`` (n, ROW) the diagonal and the squared
#: off-diagonal (``qe[i]`` couples rows i and i+1; ``qe[n-1] = 0``);
#: ``fs`` (6, LANES) per lane sigma, c, s, p, gamma and h; ``js`` (6,
#: LANES) int64 per lane l (first row not yet an eigenvalue), f, m (the
#: window), jtot (sweeps), status (0 running, 1 done, 2 no convergence)
#: and the reversed flag.
QL = namedtuple("QL", ["qd", "qe", "fs", "js"])


@kernel_loop
def _ql_load(slots, ql):
    """Copy each lane's scaled, split matrix (``slots.db``/``e2b``) into
    ``qd``/``qe``, reversed where ``|d[n-1]| < |d[0]|`` (QL converges
    from the top: the smaller end first, as dsterf chooses QL or QR)."""
    db = slots.db
    e2b = slots.e2b
    qd = ql.qd
    qe = ql.qe
    js = ql.js
    n = db.shape[0]
    for l in range(LANES):
        js[5, l] = abs(db[n - 1, l]) < abs(db[0, l])
    for i in range(n):
        for l in range(LANES):
            rev = js[5, l] != 0
            qd[i, l] = db[n - 1 - i, l] if rev else db[i, l]
    for i in range(n - 1):
        for l in range(LANES):
            rev = js[5, l] != 0
            qe[i, l] = e2b[n - 1 - i, l] if rev else e2b[i + 1, l]
    for l in range(LANES):
        qe[n - 1, l] = 0.0
        js[0, l] = 0
        js[3, l] = 0
        js[4, l] = 0 if slots.job[l] >= 0 else 1


@kernel_loop
def _ql_scan_rows(qd, qe, js, eps2, lmin):
    """Per running lane from its row ``l`` (``js`` row 0) down: ``f``, the
    first row whose coupling to the next is not negligible (rows l..f-1
    are 1x1 blocks: eigenvalues), and ``m``, the first negligible coupling
    at or after f (n - 1 if none), into ``js`` rows 1, 2: the window of the
    next sweep is [f, m].  dsterf's test ``e_i**2 <= eps**2 |d_i d_{i+1}|``;
    ascending, no early exit (a select per lane and row).  The plain
    reference of :func:`._ql_ir._ql_scan_simd` (bit-identical, what the
    kernel runs)."""
    n = qd.shape[0]
    for l in range(LANES):
        js[1, l] = n - 1
        js[2, l] = n - 1
    for i in range(lmin, n - 1):
        for l in range(LANES):
            small = qe[i, l] <= eps2 * abs(qd[i, l] * qd[i + 1, l])
            f = js[1, l]
            seen = i >= js[0, l]
            before_f = f == n - 1  # f not found yet
            nf = i if (seen and before_f and not small) else f
            m = js[2, l]
            nm = i if (seen and not before_f and small and m == n - 1) else m
            js[1, l] = nf
            js[2, l] = nm


@kernel_inner(inline="always")
def _dlae2_low(a, c, b2):
    """The eigenvalues (rt1, rt2) of [[a, b], [b, c]] from ``b2 = b**2``,
    |rt1| >= |rt2| (LAPACK dlae2; the scaled matrix keeps every square
    finite)."""
    sm = a + c
    df = a - c
    rt = math.sqrt(df * df + 4.0 * b2)
    acmx = a if abs(a) > abs(c) else c
    acmn = c if abs(a) > abs(c) else a
    if sm < 0.0:
        rt1 = 0.5 * (sm - rt)
    elif sm > 0.0:
        rt1 = 0.5 * (sm + rt)
    else:
        return 0.5 * rt, -0.5 * rt
    return rt1, (acmx / rt1) * acmn - b2 / rt1


@kernel_loop
def _ql_control(ql, nmaxit):
    """Per lane after a scan: take the 1x1 blocks above ``f``; a 2x2 block
    [f, f+1] by dlae2; else set up a sweep of the window [f, m] with
    dsterf's shift (the eigenvalue of the top 2x2 nearer d_f).  Returns
    (the lowest and highest rows a sweep touches, lanes still running)."""
    qd = ql.qd
    qe = ql.qe
    js = ql.js
    n = qd.shape[0]
    T = qd.dtype.type
    lo = n
    hi = -1
    running = 0
    for l in range(LANES):
        if js[4, l] != 0:
            js[1, l] = n  # no window: the sweep's mask is empty
            js[2, l] = n
            continue
        f = js[1, l]
        m = js[2, l]
        if m < n - 1:
            qe[m, l] = 0.0  # dsterf: a negligible coupling splits for good
        if f == n - 1:  # the last row: an eigenvalue
            js[4, l] = 1
            js[1, l] = n
            js[2, l] = n
            continue
        if m == f + 1:
            rt1, rt2 = _dlae2_low(qd[f, l], qd[f + 1, l], qe[f, l])
            qd[f, l] = T(rt1)
            qd[f + 1, l] = T(rt2)
            qe[f, l] = 0.0
            js[0, l] = f + 2
            if f + 2 >= n:
                js[4, l] = 1
            else:
                running += 1
            js[1, l] = n
            js[2, l] = n
            continue
        js[0, l] = f
        if js[3, l] >= nmaxit:
            js[4, l] = 2
            js[1, l] = n
            js[2, l] = n
            continue
        js[3, l] += 1
        running += 1
        lo = min(lo, f)
        hi = max(hi, m - 1)
    _ql_shifts(ql)
    return lo, hi, running


@kernel_loop
def _ql_shifts(ql):
    """dsterf's shift (the eigenvalue of the window's top 2x2 nearer d_f)
    and the sweep's start for every lane with a window [f, m] (``js`` rows
    1, 2; f < m); one branch-free lane loop (the others compute on row
    n - 2 and discard).  ``sqrt(sg**2 + 1)`` for dlapy2: where it
    overflows, the shift is d_f either way."""
    qd = ql.qd
    qe = ql.qe
    fs = ql.fs
    js = ql.js
    n = qd.shape[0]
    T = qd.dtype.type
    one = T(1.0)
    two = T(2.0)
    for l in range(LANES):
        sweeps = js[1, l] < js[2, l]
        f = min(js[1, l], n - 2)
        m = min(js[2, l], n - 1)
        p = qd[f, l]
        rte = math.sqrt(qe[f, l])
        sg = (qd[f + 1, l] - p) / (two * rte)
        r = math.sqrt(sg * sg + one)
        sigma = p - rte / (sg + (r if sg >= 0 else -r))
        gamma = qd[m, l] - sigma
        fs[0, l] = sigma if sweeps else fs[0, l]
        fs[1, l] = one if sweeps else fs[1, l]
        fs[2, l] = T(0.0) if sweeps else fs[2, l]
        fs[3, l] = gamma * gamma if sweeps else fs[3, l]
        fs[4, l] = gamma if sweeps else fs[4, l]


@kernel_loop
def _ql_sweep_rows(qd, qe, fs, js, lo, hi):
    """Rows ``hi`` down to ``lo`` of dsterf's root-free QL inner loop, every
    lane with a window [f, m] (``js`` rows 1, 2) at once: lane l updates
    only while f <= i < m (selects; the others compute and discard).
    ``fs`` rows 0..4: sigma, c, s, p, gamma.  The plain reference of
    :func:`._ql_ir._ql_sweep_simd` (bit-identical, what the kernel runs)."""
    zero = qd.dtype.type(0.0)
    one = qd.dtype.type(1.0)
    inf = qd.dtype.type(np.inf)
    for i in range(hi, lo - 1, -1):
        for l in range(LANES):
            f = js[1, l]
            m = js[2, l]
            act = (i >= f) & (i < m)
            sigma = fs[0, l]
            c = fs[1, l]
            s = fs[2, l]
            p = fs[3, l]
            gamma = fs[4, l]
            bb = qe[i, l]
            r = p + bb
            rinv = one / r
            cn = p * rinv if rinv != inf else p / r
            sn = bb * rinv if rinv != inf else bb / r
            alpha = qd[i, l]
            gn = cn * (alpha - sigma) - sn * gamma
            dn = gamma + (alpha - gn)
            pn = gn * gn / cn if cn != zero else c * bb
            eup = s * r
            qe[i + 1, l] = eup if (act and i != m - 1) else qe[i + 1, l]
            qd[i + 1, l] = dn if act else qd[i + 1, l]
            fs[1, l] = cn if act else c
            fs[2, l] = sn if act else s
            fs[3, l] = pn if act else p
            fs[4, l] = gn if act else gamma


@kernel_loop
def _ql_sweep(ql, lo, hi):
    """One implicit QL sweep of every lane with a window (rows ``hi`` down
    to ``lo``, :func:`._ql_ir._ql_sweep_simd`), then its top row."""
    _ql_sweep_simd(ql.qd, ql.qe, ql.fs, ql.js, lo, hi)
    qd = ql.qd
    qe = ql.qe
    fs = ql.fs
    js = ql.js
    for l in range(LANES):
        f = js[1, l]
        if f < js[2, l]:
            qe[f, l] = fs[2, l] * fs[3, l]
            qd[f, l] = fs[0, l] + fs[4, l]


@kernel_loop
def _ql_run(ql, eps, nmaxit):
    """dsterf's QL iteration on every lane until each is done (or out of
    sweeps: status 2), deflating at ``e_i**2 <= eps**2 |d_i d_{i+1}|``
    (dsterf's test), float32 at ``_DEFLATE_FLOAT32`` times that."""
    T = ql.qd.dtype.type
    eps2 = T(eps * eps * (_DEFLATE_FLOAT32 if eps > 1e-10 else 1.0))
    js = ql.js
    while True:
        lmin = ql.qd.shape[0]
        for l in range(LANES):
            if js[4, l] == 0:
                lmin = min(lmin, js[0, l])
        _ql_scan_simd(ql.qd, ql.qe, js, eps2, lmin)
        lo, hi, running = _ql_control(ql, nmaxit)
        if hi >= lo:
            _ql_sweep(ql, lo, hi)
        if running == 0:
            return


@kernel_inner
def _sort_lanes(qd):
    """Each lane's eigenvalues in ascending order (in place): the plain
    reference of :func:`_sort_lanes_network`."""
    n = qd.shape[0]
    col = np.empty(n, qd.dtype)
    for l in range(LANES):
        for i in range(n):
            col[i] = qd[i, l]
        col.sort()
        for i in range(n):
            qd[i, l] = col[i]


@kernel_loop
def _compare_rows(qd, a, b):
    """The comparator (a, b), a < b, of a sorting network on every lane."""
    for l in range(LANES):
        x = qd[a, l]
        y = qd[b, l]
        qd[a, l] = x if x <= y else y
        qd[b, l] = y if x <= y else x


@kernel_loop
def _sort_lanes_network(qd):
    """:func:`_sort_lanes` as Batcher's odd-even merge sort, each
    comparator a min/max over all lanes at once (SIMD, no branches), the
    network truncated to n rows (as if padded with +inf).  Same result for
    finite values (tested for every n up to 320); 3-14x faster than
    sorting lane by lane (n = 100: 0.34 against 0.97 us a matrix; n = 16:
    0.02 against 0.29)."""
    n = qd.shape[0]
    p = 1
    while p < n:
        k = p
        while k >= 1:
            j = k % p
            while j <= n - 1 - k:
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        _compare_rows(qd, i + j, i + j + k)
                j += 2 * k
            k //= 2
        p *= 2


#: Refinement queues of a block, lane l's k-th job at ``l n + k``: ``rf``
#: (4, n LANES) the verified ends a, b, the step g and the phase (+1 search
#: up, -1 down, 3 bisect); ``ri`` (n LANES,) int64 the index; ``sl`` (3,
#: LANES) int64 per lane the queue's length, the position in it and the
#: counts the current job took; ``x`` (LANES,), ``st`` (6, LANES) a pass's
#: shifts and states.
Refine = namedtuple("Refine", ["rf", "ri", "sl", "x", "st"])


@kernel_inner(inline="always")
def _passes_stop(lo, hi, atol, pivmin, rtol):
    """The engine's stopping test (:func:`._bisect._run_block`)."""
    return hi - lo <= max(atol, pivmin, rtol * max(abs(lo), abs(hi)))


@kernel_inner(inline="always")
def _tolerance(x, atol, cap, pivmin, rtol):
    """The engine's tolerance at ``x``, with the user's ``atol`` capped at
    ``cap`` = eps max|Gershgorin bound| (a narrower bracket than allowed
    is still within the tolerance, and a wide one would take in the
    neighbours)."""
    return max(min(atol, cap), pivmin, rtol * abs(x))


@kernel_inner(inline="always")
def _half_width(x, atol, cap, pivmin, rtol, half):
    """``h`` of the bracket ``[x - h, x + h]``: half of
    :func:`_tolerance` at ``x``, halved while rounding to the grid of x
    makes the bracket fail the stopping test."""
    h = half * _tolerance(x, atol, cap, pivmin, rtol)
    for _ in range(4):
        if _passes_stop(x - h, x + h, atol, pivmin, rtol):
            break
        h = half * h
    return h


@kernel_loop
def _queue_job(rq, l, n, i, ends, h):
    """Queue eigenvalue i of lane l for :func:`_refine` from what the three
    counts showed: ``ends`` (6,) holds (point, count) for the proposal and
    both ends of its bracket.  Each point whose count is <= i is a lower
    end, else an upper end; the job starts from the closest of each (bisect
    when both exist, else step outwards from the one it has).  Ends that
    cross (counts not monotone) queue nothing: left to the bisection."""
    a = -np.inf
    b = np.inf
    for p in range(3):
        xp = ends[2 * p]
        if ends[2 * p + 1] <= i:
            a = max(a, xp)
        else:
            b = min(b, xp)
    if not a < b:
        return
    q = l * n + rq.sl[0, l]
    rq.rf[0, q] = a
    rq.rf[1, q] = b
    rq.rf[2, q] = 2.0 * h
    rq.rf[3, q] = 3.0 if (a > -np.inf and b < np.inf) else (1.0 if a > -np.inf else -1.0)
    rq.ri[q] = i
    rq.sl[0, l] += 1


@kernel_loop
def _certify(slots, ql, cb, st, ok, rq, pivmin, rtol):
    """Certify every eigenvalue ``w_i`` (sorted, ``ql.qd``) of every lane by
    Sturm counts, two passes over all lanes per index i; jobs for
    :func:`_refine` into ``rq``.

    1. The Sturm pass at ``w_i`` with its first sum
       (:func:`._ql_ir._sturm_newton_simd`: the count at w_i and
       ``s1 = sum_j 1/(w_i - lambda_j)``, as :func:`._sturm._sturm_pass`) proposes
       Newton's ``x_i = w_i - 1/s1``.  Root-free QL's values are off by up to
       ~20 eps ||T|| at n = 100 (median ~0.5, as much as the half-width h:
       the counts at ``w_i -+ h`` left ~70 % of them to :func:`_refine`);
       after the step ~1 %.  A step outside [``_NEWTON_SHORT``,
       ``_NEWTON_REACH``] tolerances, or NaN (overflow near a pole), is not
       taken: x_i = w_i.
    2. Counts at ``x_i -+ h`` (h: :func:`_half_width`), one pass for both
       (:func:`._ql_ir._sturm_count2_simd`).
       ``count(x_i - h) <= i < count(x_i + h)``: verified, ``ok[i, l]``, and
       the value is x_i (the bracket's midpoint, as bisection returns it).
    3. Otherwise the three counts' verified ends go to :func:`_refine`
       (:func:`_queue_job`; ~1 % of the eigenvalues of random matrices).

    ``cb`` (6, LANES) is work space; ``st`` (6, LANES) takes the passes'
    outputs.
    """
    qd = ql.qd
    fs = ql.fs
    atol = slots.atol
    n = qd.shape[0]
    T = qd.dtype.type
    half = T(0.5)
    one = T(1.0)
    x = cb[0]
    x2 = cb[1]
    h = cb[2]
    xn = cb[3]
    c0 = cb[4]
    ends = cb[5, :6]
    newton = st[0:2]  # s1, count at w_i
    counts = st[2:4]  # counts at x_i - h, x_i + h
    for l in range(LANES):
        rq.sl[0, l] = 0
    for i in range(n):
        for l in range(LANES):
            x[l] = qd[i, l]
        _sturm_newton_simd(slots.db, slots.e2b, x, pivmin, newton)
        for l in range(LANES):
            wl = qd[i, l]
            c0[l] = newton[1, l]
            xs = wl - one / newton[0, l]
            tl = _tolerance(wl, atol[l], fs[5, l], pivmin, rtol)
            if not T(_NEWTON_SHORT) * tl <= abs(xs - wl) <= T(_NEWTON_REACH) * tl:
                xs = wl
            xn[l] = xs
            h[l] = _half_width(xs, atol[l], fs[5, l], pivmin, rtol, half)
            x[l] = xs - h[l]
            x2[l] = xs + h[l]
        _sturm_count2_simd(slots.db, slots.e2b, x, x2, pivmin, counts)
        for l in range(LANES):
            lo = x[l]
            hi = x2[l]
            if counts[0, l] <= i and counts[1, l] >= i + 1 and _passes_stop(lo, hi, atol[l], pivmin, rtol):
                ok[i, l] = True
                qd[i, l] = xn[l]
                continue
            ok[i, l] = False
            if slots.job[l] >= 0:
                ends[0] = qd[i, l]
                ends[1] = c0[l]
                ends[2] = lo
                ends[3] = counts[0, l]
                ends[4] = hi
                ends[5] = counts[1, l]
                _queue_job(rq, l, n, i, ends, h[l])


@kernel_loop
def _refine(slots, ql, ok, rq, pivmin, rtol):
    """Finish the queued jobs of :func:`_certify` by counts: a job with
    one verified end steps 2h, 4h, 8h, ... outwards from it until a count
    verifies the other end; then (or at once, with both ends) bisection
    until the bracket passes the stopping test; the value is its midpoint
    (as bisection returns it) and ``ok``.  Jobs out of ``_STEPS`` counts
    stay not certified.

    Each lane works through its own queue, one count per full pass over
    all lanes (lanes with nothing left count at 0 and discard it).  The
    queues are short (the longest ~7 % of n on random matrices of order
    100, most lanes' empty), so this costs a few passes a block.
    """
    qd = ql.qd
    atol = slots.atol
    n = qd.shape[0]
    T = qd.dtype.type
    half = T(0.5)
    two = T(2.0)
    rf = rq.rf
    ri = rq.ri
    nql = rq.sl[0]
    cur = rq.sl[1]  # position in the lane's queue; nql[l]: done
    steps = rq.sl[2]
    x = rq.x
    st = rq.st
    busy = 0
    for l in range(LANES):
        cur[l] = 0
        steps[l] = 0
        busy += nql[l] > 0
    while busy > 0:
        for l in range(LANES):
            x[l] = T(0.0)
            if cur[l] < nql[l]:
                q = l * n + cur[l]
                ph = rf[3, q]
                x[l] = rf[0, q] + rf[2, q] if ph == 1.0 else (rf[1, q] - rf[2, q] if ph == -1.0 else half * (rf[0, q] + rf[1, q]))
        _sturm_count_simd(slots.db, slots.e2b, x, pivmin, st[5])
        for l in range(LANES):
            if cur[l] >= nql[l]:
                continue
            q = l * n + cur[l]
            i = ri[q]
            xs = x[l]
            below = st[5, l] <= i  # xs is a lower end
            ph = rf[3, q]
            if below:
                rf[0, q] = xs
            else:
                rf[1, q] = xs
            if (ph == 1.0 and not below) or (ph == -1.0 and below):
                rf[3, q] = 3.0  # bracketed: bisect
            rf[2, q] = two * rf[2, q]
            steps[l] += 1
            lo = rf[0, q]
            hi = rf[1, q]
            done = rf[3, q] == 3.0 and _passes_stop(lo, hi, atol[l], pivmin, rtol)
            if done:
                qd[i, l] = half * (lo + hi)
                ok[i, l] = True
            if done or steps[l] >= _STEPS:
                cur[l] += 1
                steps[l] = 0
                busy -= cur[l] >= nql[l]


@kernel_block
def _ql_block(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ok, info, wt, wst):
    """All eigenvalues of matrix ``lane_b[j]`` for jobs j in start..stop,
    LANES matrices at a time.

    Outputs per job j: ``w[j]`` (n,) ascending, ``ok[j]`` (n,) uint8 (1:
    certified, see the module docstring; 0: the caller recomputes that
    eigenvalue), ``info[j]``: INFO_OK, INFO_NONFINITE (w NaN, ok 1) or
    INFO_NO_CONVERGENCE (QL ran out of sweeps; ok 0).  ``lane_k`` (M,)
    zeros (the loader's index, unused here); ``wt``/``wst`` (M,) the
    loader's scratch (a trivial matrix's eigenvalue).  Zero matrices give
    exact zeros.
    """
    n = d.shape[1]
    slots, br, ps = _block_state(d)
    T = d.dtype.type
    pivmin = T(safemin)
    rtol = T(2.0 * eps)
    ql = QL(np.empty((n, ROW), d.dtype), np.empty((n, ROW), d.dtype), np.zeros((6, LANES), d.dtype),
            np.zeros((6, LANES), np.int64))
    cb = np.zeros((6, LANES), d.dtype)
    rq = Refine(np.empty((4, n * LANES), d.dtype), np.empty(n * LANES, np.int64),
                np.zeros((3, LANES), np.int64), np.zeros(LANES, d.dtype), np.zeros((6, LANES), d.dtype))
    okb = np.zeros((n, LANES), np.bool_)
    nmaxit = _MAXIT * n
    nxt = start
    while nxt < stop:
        first = nxt
        slots.sums[:] = 0.0
        slots.e2b[0, :] = 0.0
        # (lane_k: the loader's first shift, unused here.)
        jobs = Jobs(d, e, lane_b, lane_k, stop, abstol, eps, safemin, wt, wst, info)
        nxt = _fill_block(jobs, slots, br, nxt)
        for j in range(first, nxt):  # trivial matrices: w = 0 (exact) or NaN
            busy = False
            for l in range(LANES):
                busy |= slots.job[l] == j
            if not busy:
                for i in range(n):
                    w[j, i] = wt[j]
                    ok[j, i] = 1
        for l in range(LANES):
            ql.fs[5, l] = T(eps * max(abs(br.lo[l]), abs(br.hi[l])))
        _ql_load(slots, ql)
        _ql_run(ql, eps, nmaxit)
        _sort_lanes_network(ql.qd)
        _certify(slots, ql, cb, ps.st, okb, rq, pivmin, rtol)
        _refine(slots, ql, okb, rq, pivmin, rtol)
        for l in range(LANES):
            j = slots.job[l]
            if j < 0:
                continue
            conv = ql.js[4, l] == 1
            info[j] = INFO_OK if conv else INFO_NO_CONVERGENCE
            for i in range(n):
                w[j, i] = math.ldexp(float(ql.qd[i, l]), slots.expo[l])
                ok[j, i] = 1 if (conv and okb[i, l]) else 0


@kernel_parallel
def ql_eigenvalues_parallel(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ok, info, wt, wst):
    """All eigenvalues of matrix ``lane_b[j]`` into ``w[j]`` (M, n), with
    the certified flags ``ok`` (M, n) uint8 and ``info`` (M,) int32 (see
    :func:`_ql_block`); chunks of ``chunk`` jobs in parallel."""
    M = lane_b.shape[0]
    nchunks = (M + chunk - 1) // chunk
    for c in prange(nchunks):
        start = c * chunk
        stop = min(start + chunk, M)
        _ql_block(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ok, info, wt, wst)


@kernel_serial
def ql_eigenvalues_serial(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ok, info, wt, wst):
    """Serial twin of :func:`ql_eigenvalues_parallel`."""
    M = lane_b.shape[0]
    nchunks = (M + chunk - 1) // chunk
    for c in range(nchunks):
        start = c * chunk
        stop = min(start + chunk, M)
        _ql_block(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ok, info, wt, wst)
