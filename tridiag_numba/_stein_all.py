"""All eigenvectors of each matrix by inverse iteration, its isolated
eigenvalues as SIMD lanes, certified after the fact (:func:`_all_vectors_chunk`).

A speed trick beside its plain reference, :func:`._stein._inverse_iteration`
(LAPACK dstein on all n eigenvalues of a matrix, what
``lapack_driver='stebz'`` runs).  Per matrix:

* a matrix that splits (or holds NaN/inf) runs the reference whole;
* otherwise every eigenvalue whose gaps to both neighbours exceed
  ``sqrt(eps) ||T||_1`` becomes one lane of :func:`_job_block` (dstein for
  an isolated eigenvalue, the lane form ``kth_eigenpair`` uses,
  :mod:`._stein_lanes`; 32 eigenvalues at a time, of one matrix or of
  consecutive ones), and the others (tight clusters) run the reference on
  just those eigenvalues, with dstein's Gram-Schmidt inside its groups;
* then :func:`_finish`: one step of Gram-Schmidt of each vector against the
  earlier ones whose eigenvalues lie within ``G = WINDOW ||T||_1 / n`` below
  its own (inverse iteration leaves vectors of eigenvalues ``i``, ``j``
  non-orthogonal by ~2 eps ||T||_1 / |w_i - w_j|, up to 37 n eps measured
  on random 16 x 16 matrices; projecting a neighbour out moves a residual
  by that product times |w_i - w_j|, i.e. by ~2 eps ||T||_1), and the
  **certificate**, from the vectors returned: every residual
  ``r_j = ||T v_j - w_j v_j||_2 <= RES_CERT eps ||T||_1`` and every product
  inside the window ``<= n eps``.  It proves the pairs beyond the window
  too: the component of a unit v_j along eigenvectors whose eigenvalues lie
  farther than G/2 from w_j is at most 2 r_j / G, so for |w_i - w_j| > G
  (those eigenvalue sets are disjoint) ``|<v_i, v_j>| <= 2 (r_i + r_j) / G
  <= 4 RES_CERT n eps / WINDOW = 8 n eps``.

A matrix that fails (or whose reference run did not converge) is reported
INFO_UNCERTIFIED, and the numpy layer recomputes it with LAPACK's stevd.
Speed: nearly every eigenvalue of a random matrix is isolated, so nearly
all the work runs as lanes; the window holds ~WINDOW eigenvalues.
"""

import math
from collections import namedtuple

import numpy as np
from numba import prange

from ._jit import kernel_inner, kernel_parallel, kernel_serial
from ._layout import INFO_OK, LANES, ROW
from ._scaling import _pow2_pair, _scale_exponent
from ._stein import _inverse_iteration, _split_points, _start_vector
from ._stein_lanes import VecBlock, _copy_lanes, _lu_lanes, _normalise_lanes, _shift_lanes, _solve_lanes

#: Gram-Schmidt window of :func:`_orthogonalise_window`, in ||T||_1 / n.
WINDOW = 2.0
#: The certificate's residual bound, in eps ||T||_1 (see the module docstring).
RES_CERT = 4.0
#: ``info`` of a matrix whose vectors the certificate rejects: the numpy
#: layer recomputes it with LAPACK's stevd.
INFO_UNCERTIFIED = -3


@kernel_inner(inline="always")
def _load_job_lanes(d, e, job_b, job_w, start, stop, vb, src):
    """:func:`._stein_lanes._load_vec_lanes` for jobs: lane l is job
    ``start + l``, the eigenvalue ``job_w`` (scaled) of matrix ``job_b``;
    idle slots hold the identity with shift 0.  Jobs come sorted by
    matrix, so a matrix's scale is found once per run of its jobs."""
    nl = stop - start
    dm = vb.dm
    eb = vb.eb
    lane = vb.lane
    ok = vb.ok
    last = -1
    ma = 1.0
    mb = 1.0
    for l in range(LANES):
        b = -1
        if l < nl:
            b = job_b[start + l]
            if b != last:
                ex, finite, is_zero = _scale_exponent(d, e, b)
                ma, mb = _pow2_pair(ex)
                last = b
        ok[l] = b >= 0
        lane[0, l] = ma if b >= 0 else 1.0
        lane[1, l] = mb if b >= 0 else 1.0
        lane[2, l] = job_w[start + l] if b >= 0 else 0.0
        src[l] = b
    _copy_lanes(d, e, src, dm, eb, vb.acc)


@kernel_inner
def _start_table(n):
    """The start vectors of all n seeds (:func:`._stein._start_vector`,
    seeded by the eigenvalue's index): rows 0..n-1 of an (n + 1, n) table,
    row n their 1-norms, summed in row order as the lanes sum them.  Every
    matrix of a batch uses the same n seeds."""
    table = np.empty((n + 1, n))
    for j in range(n):
        _start_vector(table[j], j)
        s = 0.0
        for i in range(n):
            s += abs(table[j, i])
        table[n, j] = s
    return table


@kernel_inner(inline="always")
def _start_job_lanes(table, job_j, start, stop, vb):
    """:func:`._stein_lanes._start_lanes` from the table of
    :func:`_start_table`: each lane's start vector and its 1-norm (idle
    lanes take the first lane's)."""
    y = vb.y
    acc = vb.acc
    n = y.shape[0]
    nl = stop - start
    for l in range(LANES):
        j = job_j[start + (l if l < nl else 0)]
        acc[l] = table[n, j]
        for i in range(n):
            y[i, l] = table[j, i]


@kernel_inner
def _job_block(d, e, job_b, job_j, job_w, start, stop, eps, safemin, table, v, info):
    """Vectors of jobs start..stop (at most LANES isolated eigenvalues, see
    the module docstring) into ``v[job_b, :, job_j]``.

    The steps of :func:`._stein_lanes._eigvec_block` (LU of ``T - w I``,
    a solve that passes dstein's growth test and one more, normalised with
    the largest entry positive), the start vector seeded by the
    eigenvalue's index as in the reference; a lane flagged there (slow
    start, overflow) is redone by :func:`._stein._inverse_iteration`.
    """
    n = d.shape[1]
    L = LANES
    vb = VecBlock(np.empty((n, ROW)), np.empty((n, ROW)), np.empty((n, 6, L)), np.empty((2, L)),
                  np.empty((n, ROW)), np.empty(n), np.empty((4, L)), np.ones(L, np.bool_), np.empty(L))
    nrm = np.zeros((2, L))
    iw = np.zeros((2, L), np.int64)
    jmax = iw[0]
    # The steps one by one, as in _eigvec_block (not through a shared
    # inlined sequence: numba would copy its IR once per basic block, ~3 s
    # of compile): inlined here, where the record is allocated, LLVM proves
    # the rows disjoint and vectorises the lane loops.
    _load_job_lanes(d, e, job_b, job_w, start, stop, vb, iw[1])
    _shift_lanes(vb, eps, safemin)
    _lu_lanes(vb, eps)
    _start_job_lanes(table, job_j, start, stop, vb)
    _solve_lanes(vb, eps, True)
    _solve_lanes(vb, eps, False)
    _normalise_lanes(vb, nrm, jmax)
    ok = vb.ok
    y = vb.y
    acc = vb.acc
    nl = stop - start
    # Row by row: lanes are mostly consecutive eigenvalues of one matrix,
    # so each row of y lands in a contiguous run of a row of v.
    for i in range(n):
        for l in range(nl):
            if ok[l]:
                v[job_b[start + l], i, job_j[start + l]] = y[i, l] * acc[l]
    for l in range(nl):
        q = start + l
        b = job_b[q]
        j = job_j[q]
        if ok[l]:
            continue
        w1 = np.empty(1, d.dtype)
        k1 = np.empty(1, np.int64)
        col = np.empty((n, 1), d.dtype)
        w1[0] = job_w[q]
        k1[0] = j
        st = _inverse_iteration(d, e, b, w1, k1, 1, col, eps, safemin)
        for i in range(n):
            v[b, i, j] = col[i, 0]
        if st != INFO_OK:
            info[b] = st


@kernel_inner
def _classify(d, e, b, ws, eps, safemin, cgap, iso):
    """(scaled ||T||_1 of matrix ``b`` or -1.0 if it is not finite, whether
    it runs the plain reference whole: it splits or is not finite); else
    ``iso[j]`` (n,) whether eigenvalue j's gaps to its neighbours exceed
    ``cgap ||T||_1``."""
    n = d.shape[1]
    ex, finite, is_zero = _scale_exponent(d, e, b)
    if not finite:
        return -1.0, True
    ma, mb = _pow2_pair(ex)
    ds = np.empty(n)
    es = np.empty(max(n - 1, 1))
    es2 = np.zeros(n)
    bstart = np.empty(n + 1, np.int64)
    for i in range(n):
        ds[i] = d[b, i] * ma * mb
    for i in range(n - 1):
        es[i] = e[b, i] * ma * mb
    onenrm = 0.0
    for i in range(n):
        onenrm = max(onenrm, abs(ds[i]) + (abs(es[i - 1]) if i > 0 else 0.0) + (abs(es[i]) if i < n - 1 else 0.0))
    if _split_points(ds, es, es2, eps, safemin, bstart) > 1:
        return onenrm, True
    ortol = cgap * onenrm
    for j in range(n):
        lo = j == 0 or ws[b, j] - ws[b, j - 1] > ortol
        hi = j == n - 1 or ws[b, j + 1] - ws[b, j] > ortol
        iso[j] = lo and hi
    return onenrm, False


@kernel_inner
def _clusters(d, e, b, ws, iso, eps, safemin, v):
    """The reference on the eigenvalues of matrix ``b`` that are not
    isolated (whole groups, so dstein forms the same groups); their
    columns of ``v``.  Returns an info code."""
    n = d.shape[1]
    mc = 0
    for j in range(n):
        mc += not iso[j]
    if mc == 0:
        return INFO_OK
    cols = np.empty(mc, np.int64)
    wsub = np.empty(mc, ws.dtype)
    q = 0
    for j in range(n):
        if not iso[j]:
            cols[q] = j
            wsub[q] = ws[b, j]
            q += 1
    vsub = np.empty((n, mc), v.dtype)
    st = _inverse_iteration(d, e, b, wsub, cols, mc, vsub, eps, safemin)
    for i in range(n):
        for q in range(mc):
            v[b, i, cols[q]] = vsub[i, q]
    return st


@kernel_inner
def _window_dots(W, r, kw, hull, dots):
    """Row ``r``'s terms of ``dots[t - 1, j] += W[r, j] W[r, j - t]``,
    t = 1..kw, over the columns ``hull[0, t - 1] <= j < hull[1, t - 1]``
    whose windows reach back t or more.

    Unsigned indices: with signed ones numba adds the wrap-around of
    negative indices, which LLVM cannot remove for a loop that does not
    start at a known 0, and the loop stays scalar (4x slower)."""
    Wr = W[r]
    for t in range(1, kw + 1):
        dt = dots[t - 1]
        ut = np.uint64(t)
        for j in range(np.uint64(hull[0, t - 1]), np.uint64(hull[1, t - 1])):
            dt[j] += Wr[j] * Wr[j - ut]


@kernel_inner
def _mask_dots(lo, kw, dots):
    """Zero the products outside the window (``j - t < lo[j]``)."""
    n = lo.shape[0]
    for t in range(1, kw + 1):
        for j in range(n):
            if j - t < lo[j]:
                dots[t - 1, j] = 0.0


#: Work space of :func:`_finish` (float64): the vectors W (n, n), the
#: window's products (n, n), a row, squared norms, largest entries and
#: their rows, residuals (n each).
Finish = namedtuple("Finish", ["W", "dots", "x", "nrm2", "amax", "rmax", "res"])


@kernel_inner
def _orthogonalise_window(fw, lo, kw, hull):
    """One step of Gram-Schmidt on ``fw.W``: ``v_j -= sum_t <v_j, v_{j-t}>
    v_{j-t}`` over the window, the products and the vectors taken before
    the step (so that every loop runs along rows), then each column's
    squared norm and (first) entry of largest magnitude.  The vectors are
    orthogonal to ~eps ||T|| / gap << 1 already: one step leaves the
    window's products at second order, and :func:`_finish` measures them."""
    W = fw.W
    dots = fw.dots
    x = fw.x
    n = W.shape[0]
    for t in range(kw):
        for j in range(n):
            dots[t, j] = 0.0
    for r in range(n):
        _window_dots(W, r, kw, hull, dots)
    _mask_dots(lo, kw, dots)
    for r in range(n):
        Wr = W[r]
        for j in range(n):
            x[j] = Wr[j]
        for t in range(1, kw + 1):
            dt = dots[t - 1]
            ut = np.uint64(t)
            # (unsigned indices: see _window_dots)
            for j in range(np.uint64(hull[0, t - 1]), np.uint64(hull[1, t - 1])):
                x[j] -= dt[j] * Wr[j - ut]
        for j in range(n):
            Wr[j] = x[j]


@kernel_inner
def _norms(fw):
    """Squared norms of ``fw.W``'s columns and the row of each one's
    (first) entry of largest magnitude."""
    W = fw.W
    nrm2 = fw.nrm2
    amax = fw.amax
    rmax = fw.rmax
    n = W.shape[0]
    for j in range(n):
        nrm2[j] = 0.0
        amax[j] = -1.0
        rmax[j] = 0.0
    for r in range(n):
        for j in range(n):
            a = abs(W[r, j])
            nrm2[j] += W[r, j] * W[r, j]
            big = a > amax[j]
            amax[j] = a if big else amax[j]
            rmax[j] = r if big else rmax[j]


@kernel_inner
def _finish(d, e, b, wb, v, onenrm, eps, fw, lo, hull):
    """Gram-Schmidt over the window of matrix ``b``'s vectors ``v[b]`` and
    the certificate (see the module docstring); returns whether it passed:
    no projection took more than half a vector, every residual
    ``||T v_j - w_j v_j||_2 <= RES_CERT eps ||T||_1`` and every product in
    the window ``|<v_i, v_j>| <= n eps``, all computed on the vectors
    returned.  ``fw``: :data:`Finish` work space; ``lo`` (n,), ``hull``
    (2, n) int64."""
    n = d.shape[1]
    W = fw.W
    x = fw.x
    for r in range(n):
        for j in range(n):
            W[r, j] = v[b, r, j]
    kw = _window(wb, WINDOW / n * onenrm, lo, hull)
    if kw > 0:
        _orthogonalise_window(fw, lo, kw, hull)
    _norms(fw)
    nrm2 = fw.nrm2
    rmax = fw.rmax
    ok = True
    for j in range(n):
        ok = ok and nrm2[j] >= 0.5  # else a projection took half the vector
        scl = 1.0 / math.sqrt(nrm2[j]) if nrm2[j] > 0.0 else 0.0
        x[j] = -scl if W[int(rmax[j]), j] < 0.0 else scl
    # One pass: scale row r + 1, write row r back, add row r's terms of the
    # residuals (rows r - 1..r + 1) and of the window's products.
    ex, finite, is_zero = _scale_exponent(d, e, b)
    ma, mb = _pow2_pair(ex)
    res = fw.res
    dots = fw.dots
    for t in range(kw):
        for j in range(n):
            dots[t, j] = 0.0
    for j in range(n):
        res[j] = 0.0
        W[0, j] *= x[j]
    for r in range(n):
        if r + 1 < n:
            for j in range(n):
                W[r + 1, j] *= x[j]
        for j in range(n):
            v[b, r, j] = W[r, j]
        dr = d[b, r] * ma * mb
        eu = e[b, r - 1] * ma * mb if r > 0 else 0.0
        ed = e[b, r] * ma * mb if r < n - 1 else 0.0
        ru = r - 1 if r > 0 else r
        rd = r + 1 if r < n - 1 else r
        for j in range(n):
            t = (dr - wb[j]) * W[r, j] + eu * W[ru, j] + ed * W[rd, j]
            res[j] += t * t
        _window_dots(W, r, kw, hull, dots)
    _mask_dots(lo, kw, dots)
    bound = (RES_CERT * eps * onenrm) ** 2
    for j in range(n):
        ok = ok and res[j] <= bound  # (NaN fails)
    for t in range(kw):
        for j in range(n):
            ok = ok and abs(dots[t, j]) <= n * eps
    return ok


@kernel_inner
def _window(wb, gap, lo, hull):
    """``lo[j]``: the first i with ``wb[j] - wb[i] <= gap``; ``hull[:, t-1]``
    the range of the columns j with ``j - lo[j] >= t``; returns the
    window's width max(j - lo[j])."""
    n = wb.shape[0]
    i0 = 0
    kw = 0
    for j in range(n):
        while wb[j] - wb[i0] > gap:
            i0 += 1
        lo[j] = i0
        kw = max(kw, j - i0)
    for t in range(kw):
        hull[0, t] = n
        hull[1, t] = 0
    for j in range(n):
        for t in range(j - lo[j]):
            hull[0, t] = min(hull[0, t], j)
            hull[1, t] = j + 1
    return kw


@kernel_inner
def _all_vectors_chunk(d, e, ws, start, stop, eps, safemin, v, info):
    """All n eigenvectors of matrices start..stop: ``ws`` (B, n) their
    ascending eigenvalues scaled as :func:`._scaling._scale_exponent` scales
    the matrix (as the eigenvalue kernels write them); ``v`` (B, n, n)
    output (vector j in column j), ``info`` (B,) int32 output: INFO_OK,
    INFO_NONFINITE (NaN vectors) or INFO_UNCERTIFIED (see the module
    docstring)."""
    n = d.shape[1]
    nm = stop - start
    job_b = np.empty(nm * n, np.int64)
    job_j = np.empty(nm * n, np.int64)
    job_w = np.empty(nm * n, ws.dtype)
    norms = np.empty(nm)
    iso = np.empty(n, np.bool_)
    kidx = np.arange(n)
    cgap = math.sqrt(eps)
    nj = 0
    for b in range(start, stop):
        info[b] = INFO_OK
        onenrm, whole = _classify(d, e, b, ws, eps, safemin, cgap, iso)
        norms[b - start] = onenrm
        if whole:
            info[b] = _inverse_iteration(d, e, b, ws[b], kidx, n, v[b], eps, safemin)
            continue
        info[b] = _clusters(d, e, b, ws, iso, eps, safemin, v)
        for j in range(n):
            if iso[j]:
                job_b[nj] = b
                job_j[nj] = j
                job_w[nj] = ws[b, j]
                nj += 1
    nblocks = (nj + LANES - 1) // LANES
    table = _start_table(n)
    for blk in range(nblocks):
        _job_block(d, e, job_b, job_j, job_w, blk * LANES, min(blk * LANES + LANES, nj), eps, safemin, table, v, info)
    fw = Finish(np.empty((n, n)), np.empty((n, n)), np.empty(n), np.empty(n), np.empty(n), np.empty(n), np.empty(n))
    lo = np.empty(n, np.int64)
    hull = np.empty((2, n), np.int64)
    for b in range(start, stop):
        if norms[b - start] < 0.0:
            continue  # non-finite: NaN vectors, INFO_NONFINITE
        # A vector the reference did not converge on is not certified either:
        # stevd, which 'auto' ran before, then decides (rather than an error).
        if info[b] != INFO_OK or not _finish(d, e, b, ws[b], v, norms[b - start], eps, fw, lo, hull):
            info[b] = INFO_UNCERTIFIED


@kernel_parallel
def all_vectors_parallel(d, e, ws, chunk, eps, safemin, v, info):
    """All eigenvectors of every matrix (see :func:`_all_vectors_chunk`),
    chunks of ``chunk`` matrices in parallel."""
    B = d.shape[0]
    nchunks = (B + chunk - 1) // chunk
    for c in prange(nchunks):
        _all_vectors_chunk(d, e, ws, c * chunk, min(c * chunk + chunk, B), eps, safemin, v, info)


@kernel_serial
def all_vectors_serial(d, e, ws, chunk, eps, safemin, v, info):
    """Serial twin of :func:`all_vectors_parallel`."""
    B = d.shape[0]
    nchunks = (B + chunk - 1) // chunk
    for c in range(nchunks):
        _all_vectors_chunk(d, e, ws, c * chunk, min(c * chunk + chunk, B), eps, safemin, v, info)
