"""Inverse iteration (LAPACK dstein), block by block of a split matrix.

One shifted LU (dlagtf) and its solves, the start vector, the assignment of
eigenvalues to the blocks where dstebz splits the matrix, and the dstein
loop per block with reorthogonalisation of close eigenvalues
(:func:`_inverse_iteration` for one matrix).
"""

import math
from collections import namedtuple

import numpy as np

from ._jit import kernel_inner, kernel_loop
from ._layout import INFO_NONFINITE, INFO_OK, INFO_VEC_NO_CONVERGENCE
from ._scaling import _pow2_pair, _scale_exponent, _split_e2


@kernel_inner
def _start_vector(x, seed):
    """Deterministic pseudo-random start vector in (-1, 1) (cf. dlarnv).

    Seeded by the eigenvalue's index, so a vector does not depend on which
    other eigenvalues were requested or where the matrix sits in the batch.
    splitmix64's output mixing matters: a plain LCG makes the start vectors of
    consecutive seeds nearly affine in the seed, i.e. linearly dependent,
    which starves Gram-Schmidt inside a large cluster of one direction.
    """
    state = np.uint64(seed) * np.uint64(0xD1B54A32D192ED03)
    for i in range(x.shape[0]):
        state += np.uint64(0x9E3779B97F4A7C15)
        z = state
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        x[i] = 2.0 * (float(z >> np.uint64(11)) / 9007199254740992.0) - 1.0


@kernel_inner
def _lu_shifted(ds, es, lam, a, bu, d2, cl, piv):
    """LU with partial pivoting of ``T - lam I`` (LAPACK dlagtf).

    U has diagonal ``a``, super-diagonals ``bu`` and ``d2``; ``cl`` holds the
    multipliers and ``piv[k]`` whether rows k, k+1 were swapped.
    """
    n = ds.shape[0]
    for i in range(n):
        a[i] = ds[i] - lam
    for i in range(n - 1):
        bu[i] = es[i]
        cl[i] = es[i]
        d2[i] = 0.0
    for k in range(n - 1):
        if abs(a[k]) >= abs(cl[k]):
            piv[k] = False
            mult = cl[k] / a[k] if a[k] != 0.0 else 0.0
            cl[k] = mult
            a[k + 1] -= mult * bu[k]
        else:
            piv[k] = True
            mult = a[k] / cl[k]
            a[k] = cl[k]
            temp = a[k + 1]
            a[k + 1] = bu[k] - mult * temp
            if k < n - 2:
                d2[k] = bu[k + 1]
                bu[k + 1] = -mult * d2[k]
            bu[k] = temp
            cl[k] = mult


@kernel_inner
def _lu_solve(ainv, bu, d2, cl, piv, y):
    """Solve ``(T - lam I) x = y`` in place from :func:`_lu_shifted` (dlagts).

    ``ainv`` holds the reciprocals of U's (perturbed) pivots: multiplying
    keeps the division's latency out of the back-substitution chain.  The
    solution is rescaled on the fly if it grows towards overflow (only its
    direction matters to inverse iteration).
    """
    n = ainv.shape[0]
    for k in range(n - 1):
        if not piv[k]:
            y[k + 1] -= cl[k] * y[k]
        else:
            temp = y[k]
            y[k] = y[k + 1]
            y[k + 1] = temp - cl[k] * y[k]
    for k in range(n - 1, -1, -1):
        t = y[k]
        if k < n - 1:
            t -= bu[k] * y[k + 1]
        if k < n - 2:
            t -= d2[k] * y[k + 2]
        t = t * ainv[k]
        y[k] = t
        if abs(t) > 1e150:
            for i in range(n):
                y[i] *= 1e-150


@kernel_inner
def _block_counts(ds, es2, bstart, nblk, x, cnt):
    """Per block of a split matrix, the number of its eigenvalues below ``x``
    into ``cnt[:nblk]`` (block ``q`` is rows bstart[q]..bstart[q+1]-1;
    ``es2[i]`` = e_i**2, zero at the splits)."""
    for q in range(nblk):
        c = 0
        r = 1.0
        for i in range(bstart[q], bstart[q + 1]):
            qv = ds[i] - x - (es2[i - 1] * r if i > bstart[q] else 0.0)
            if abs(qv) < 1e-300:
                qv = -1e-300
            r = 1.0 / qv
            if qv < 0.0:
                c += 1
        cnt[q] = c


@kernel_inner
def _assign_blocks(ds, es2, bstart, nblk, ws, kidx, m, onenrm, eps, blk):
    """The block of each eigenvalue ``ws[j]`` (global index ``kidx[j]``,
    consecutive) of a split matrix, into ``blk[:m]`` (as dstebz's iblock).

    Walks the global indices upwards from below the first one; index g
    (value about ``ws[g - kidx[0]]``) goes to a block with an eigenvalue
    not yet taken within ``delta`` of the value (block Sturm counts at
    value -+ delta), ``delta`` doubling from 0.5 eps |value| (at least
    1e-9 eps ||T||) until one is found: the nearest block wins.  Each block
    thus gets as many eigenvalues as it has in that range, so vectors of
    different blocks never compete for one direction.
    """
    cnt = np.zeros(nblk, np.int64)
    cnt2 = np.zeros(nblk, np.int64)
    taken = np.zeros(nblk, np.int64)
    delta0 = 8.0 * eps * onenrm + 1e-300
    _block_counts(ds, es2, bstart, nblk, ws[0] - delta0, taken)
    g = 0
    for q in range(nblk):
        g += taken[q]
    for gg in range(g, kidx[m - 1] + 1):
        j = gg - kidx[0]
        lam = ws[max(j, 0)]
        # Smallest delta first: the block whose untaken eigenvalue is
        # nearest (to a factor 2) wins.
        # (At most ~30 doublings below eps ||T||, the eigenvalues' accuracy.)
        delta = max(0.5 * eps * abs(lam), 1e-9 * eps * onenrm) + 1e-300
        pick = -1
        for _ in range(2100):
            _block_counts(ds, es2, bstart, nblk, lam + delta, cnt)
            _block_counts(ds, es2, bstart, nblk, lam - delta, cnt2)
            for q in range(nblk):  # an untaken eigenvalue within delta
                if cnt[q] > max(taken[q], cnt2[q]):
                    pick = q
                    break
            if pick < 0 and delta > delta0:
                for q in range(nblk):  # an untaken one below lam + delta
                    if cnt[q] > taken[q]:
                        pick = q
                        break
            if pick >= 0:
                break
            delta *= 2.0
        if pick < 0:
            pick = 0
        taken[pick] += 1
        if j >= 0:
            blk[j] = pick


#: One block's dstein context: its scaled diagonal ``ds`` (nb,) and
#: off-diagonal ``es`` (nb-1,); the eigenvalues ``ws``, their global indices
#: ``kidx`` (seeds) and the ``js`` (ascending) of those in this block;
#: ``v``, whose rows ``row0``.. the block's vectors fill; work space
#: ``work`` (6, >= nb) and ``piv`` (nb,) bool.  The functions that take it
#: run without reference counting (:func:`._jit.kernel_loop`).
SteinBlock = namedtuple("SteinBlock", ["ds", "es", "ws", "kidx", "js", "v", "row0", "work", "piv"])


@kernel_inner
def _norm1(ds, es):
    """||T||_1 of a tridiagonal (max absolute row sum); 1 for a zero matrix
    (any orthonormal basis is right; keeps the algebra defined)."""
    n = ds.shape[0]
    onenrm = 0.0
    for i in range(n):
        rs = abs(ds[i])
        if i > 0:
            rs += abs(es[i - 1])
        if i < n - 1:
            rs += abs(es[i])
        onenrm = max(onenrm, rs)
    return onenrm if onenrm != 0.0 else 1.0


@kernel_loop
def _factor(sb, xj, tolpiv):
    """LU of the block's ``T - xj I`` (dlagtf) into ``sb.work``/``sb.piv``,
    pivots perturbed to ``tolpiv`` as dlagts(job=-1) does (to keep the
    solves finite), and their reciprocals."""
    n = sb.ds.shape[0]
    a = sb.work[0, :n]
    ainv = sb.work[1, :n]
    _lu_shifted(sb.ds, sb.es, xj, a, sb.work[2, :n], sb.work[3, :n], sb.work[4, :n], sb.piv)
    for i in range(n):
        if abs(a[i]) < tolpiv:
            a[i] = tolpiv if a[i] >= 0.0 else -tolpiv
        ainv[i] = 1.0 / a[i]


@kernel_loop
def _iterate(sb, jj, gp, big, extra):
    """dstein's iteration for the block's vector ``jj`` into ``sb.work[5]``:
    up to 5 solves from the pseudo-random start until the growth test
    passes, then ``extra`` more; each solve re-orthogonalised against the
    cluster's earlier vectors ``gp..jj-1``.  ``big`` is n ||T||_1 max(eps,
    |u_nn|), dstein's scale of the right-hand side.  Returns whether the
    growth test passed."""
    n = sb.ds.shape[0]
    x = sb.work[5, :n]
    seed = sb.kidx[sb.js[jj]]
    dtpcrt = math.sqrt(0.1 / n)
    _start_vector(x, seed)
    nrmchk = 0
    for its in range(5 + 2):
        asum = 0.0
        for i in range(n):
            asum += abs(x[i])
        if asum == 0.0 or not (asum - asum == 0.0):
            _start_vector(x, seed + 7919 * (its + 1))
            asum = 0.0
            for i in range(n):
                asum += abs(x[i])
        scl = big / asum
        for i in range(n):
            x[i] *= scl
        _lu_solve(sb.work[1, :n], sb.work[2, :n], sb.work[3, :n], sb.work[4, :n], sb.piv, x)
        if jj > gp:
            _mgs(x, sb.v, sb.js, gp, jj, sb.row0)
        nrm = 0.0
        for i in range(n):
            nrm = max(nrm, abs(x[i]))
        if nrm < dtpcrt:
            continue
        nrmchk += 1
        if nrmchk >= extra + 1:
            return True
    return False


@kernel_loop
def _store_vector(sb, jj, gp, converged, tnrm, eps):
    """Vector ``jj`` of the block from ``sb.work[5]`` into its column of
    ``v``: re-orthogonalised once more (a vector that Gram-Schmidt shrank
    loses orthogonality when normalised otherwise), normalised with its
    largest entry positive.  A vector whose growth test never passed is
    accepted only if its residual proves it, ||T v - w v||_2 <= 4 n eps
    ||T||_1; returns an info code."""
    n = sb.ds.shape[0]
    ds = sb.ds
    es = sb.es
    v = sb.v
    row0 = sb.row0
    x = sb.work[5, :n]
    j = sb.js[jj]
    if jj > gp:
        _mgs(x, v, sb.js, gp, jj, row0)
    nrm2 = 0.0
    jmax = 0
    amax = -1.0
    for i in range(n):
        nrm2 += x[i] * x[i]
        if abs(x[i]) > amax:
            amax = abs(x[i])
            jmax = i
    scl = 1.0 / math.sqrt(nrm2) if nrm2 > 0.0 else 0.0
    if x[jmax] < 0.0:
        scl = -scl
    for i in range(n):
        v[row0 + i, j] = x[i] * scl
    if converged:
        return INFO_OK
    res2 = 0.0
    for i in range(n):
        r = (ds[i] - sb.ws[j]) * v[row0 + i, j]
        if i > 0:
            r += es[i - 1] * v[row0 + i - 1, j]
        if i < n - 1:
            r += es[i] * v[row0 + i + 1, j]
        res2 += r * r
    if nrm2 > 0.0 and math.sqrt(res2) <= 4.0 * n * eps * tnrm:
        return INFO_OK
    return INFO_VEC_NO_CONVERGENCE


@kernel_loop
def _stein_block(ds, es, ws, kidx, js, nj, v, row0, tnrm, eps, work, piv):
    """dstein on one block (rows row0.. of ``v``): vectors for the ``nj``
    ascending eigenvalues ``ws[js[:nj]]`` into columns ``js[:nj]``; returns
    an info code.  ``ds``/``es`` are the block's scaled entries, ``tnrm``
    the whole matrix's 1-norm.

    LU of ``T - w I`` with partial pivoting (:func:`_factor`), up to 5
    solves from a pseudo-random start until the growth shows convergence,
    then extra solves (:func:`_iterate`); eigenvalues closer than 10 eps |w|
    nudged apart; vectors of a cluster (consecutive gaps <= 1e-3
    ||block||_1) re-orthogonalised by modified Gram-Schmidt, once more
    before they are stored (:func:`_store_vector`).  A vector whose growth
    test never passes is accepted only if its residual proves it:
    ||T v - w v||_2 <= 4 n eps ||T||_1, the bound promised.  (The
    eigenvalues are accurate to eps ||T||, not eps ||block||: a block much
    smaller than T can fail dstein's test, which is relative to the block,
    with a vector as good as any.)
    """
    n = ds.shape[0]
    sb = SteinBlock(ds, es, ws, kidx, js, v, row0, work, piv)
    onenrm = _norm1(ds, es)
    # dstein's cluster rule is relative to the block, as its eigenvalues
    # (from dstebz, per block) are; ours are accurate to eps ||T||, so a
    # block much smaller than T has clusters by T's measure too.
    ortol = 1e-3 * max(onenrm, tnrm)
    info = INFO_OK
    gp = 0
    xjm = 0.0
    for jj in range(nj):
        xj = ws[js[jj]]
        if jj > 0:
            pertol = 10.0 * abs(eps * xj)
            if xj - xjm < pertol:
                xj = xjm + pertol
            if xj - xjm > ortol:
                gp = jj
        xjm = xj
        _factor(sb, xj, eps * onenrm)
        # dstein makes 2 extra solves after the growth test passes; they
        # matter for orthogonality inside a cluster.  An isolated eigenvalue
        # (gaps > 1e-3 ||T||) needs one: after two solves the components
        # along other eigenvectors are below (eps ||T|| / gap)**2.  (With none,
        # residuals of random 6x6 matrices exceeded 10 n eps ||T||.)
        in_cluster = jj > gp or (jj + 1 < nj and (ws[js[jj + 1]] - xj) <= ortol)
        extra = 2 if in_cluster else 1
        big = n * onenrm * max(eps, abs(work[0, n - 1]))
        converged = _iterate(sb, jj, gp, big, extra)
        st = _store_vector(sb, jj, gp, converged, tnrm, eps)
        if st != INFO_OK:
            info = st
    return info


@kernel_inner(inline="always")
def _mgs(x, v, js, gp, jj, row0):
    """Modified Gram-Schmidt of ``x`` against columns js[gp:jj] of ``v``
    (rows row0.. of the block)."""
    n = x.shape[0]
    for c in range(gp, jj):
        col = js[c]
        dot = 0.0
        for i in range(n):
            dot += x[i] * v[row0 + i, col]
        for i in range(n):
            x[i] -= dot * v[row0 + i, col]


@kernel_inner
def _split_points(ds, es, es2, eps, safemin, bstart):
    """Where dstebz splits the scaled matrix (:func:`._scaling._split_e2`,
    as the eigenvalue kernel does, in float64 here): ``es2[i]`` = e_i**2 or
    zero at a split, block ``q`` = rows ``bstart[q]..bstart[q+1]-1``;
    returns the number of blocks."""
    n = ds.shape[0]
    nblk = 0
    bstart[0] = 0
    for i in range(n - 1):
        es2[i] = _split_e2(es[i] * es[i], ds[i], ds[i + 1], eps * eps, safemin)
        if es2[i] == 0.0:
            nblk += 1
            bstart[nblk] = i + 1
    nblk += 1
    bstart[nblk] = n
    return nblk


@kernel_inner
def _block_columns(blk, q, m, js):
    """The eigenvalues (of ``m``) that :func:`_assign_blocks` gave block
    ``q``, ascending, into ``js``; returns how many."""
    nj = 0
    for j in range(m):
        if blk[j] == q:
            js[nj] = j
            nj += 1
    return nj


@kernel_inner
def _inverse_iteration(d, e, b, ws, kidx, m, v, eps, safemin):
    """Eigenvectors of matrix ``b`` for its ``m`` ascending eigenvalues ``ws``
    (of the matrix scaled by the exponent :func:`_scale_exponent` returns, as
    the eigenvalue kernel writes them), with global indices ``kidx``.

    LAPACK dstein block by block: the matrix splits where dstebz splits it
    (:func:`_split_e2`), each eigenvalue goes to its block
    (:func:`_assign_blocks`), and each block runs :func:`_stein_block`;
    a vector is zero outside its block (a 1x1 block's is a unit vector).
    Everything runs on the scaled matrix (largest entry in [0.5, 1));
    vectors are scale-invariant.  The entry of largest magnitude is made
    positive.  Returns an info code; writes columns 0..m-1 of ``v`` (n, mcols).
    """
    n = d.shape[1]
    ex, finite, is_zero = _scale_exponent(d, e, b)
    if not finite:
        for j in range(m):
            for i in range(n):
                v[i, j] = np.nan
        return INFO_NONFINITE
    ma, mb = _pow2_pair(ex)
    ds = np.empty(n)
    es = np.empty(max(n - 1, 1))
    es2 = np.zeros(n)
    for i in range(n):
        ds[i] = d[b, i] * ma * mb
    for i in range(n - 1):
        es[i] = e[b, i] * ma * mb
    bstart = np.empty(n + 1, np.int64)
    nblk = _split_points(ds, es, es2, eps, safemin, bstart)
    blk = np.zeros(max(m, 1), np.int64)
    onenrm = 0.0
    for i in range(n):
        onenrm = max(onenrm, abs(ds[i]) + (abs(es[i - 1]) if i > 0 else 0.0) + (abs(es[i]) if i < n - 1 else 0.0))
    if nblk > 1 and m > 0:
        _assign_blocks(ds, es2, bstart, nblk, ws, kidx, m, onenrm, eps, blk)
    work = np.empty((6, n))
    piv = np.empty(n, np.bool_)
    js = np.empty(max(m, 1), np.int64)
    info = INFO_OK
    for q in range(nblk):
        s0 = bstart[q]
        s1 = bstart[q + 1]
        nj = _block_columns(blk, q, m, js)
        if nj == 0:
            continue
        for jj in range(nj):
            for i in range(n):
                v[i, js[jj]] = 0.0
        if s1 - s0 == 1:
            v[s0, js[0]] = 1.0
            continue
        # es[s0:s1-1] are the block's off-diagonals (the split es[s1-1]
        # is outside it).
        st = _stein_block(ds[s0:s1], es[s0:s1 - 1], ws, kidx, js, nj, v, s0, onenrm, eps, work, piv[: s1 - s0])
        if st != INFO_OK:
            info = st
    return info
