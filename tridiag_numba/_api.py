"""The numpy layer: validation, promotion, broadcasting, allocation, errors.

Kernels in ``_kernels.py`` never raise; every check on user input
(:mod:`._validate`) and every translation of a kernel ``info`` code into an
exception happens in this layer; :mod:`._scheduling` picks a kernel's
parallel or serial twin.
"""

import math
import operator
import sys

import numpy as np

from . import _drivers as D
from . import _kernels as K
from . import _omp_team as T
from . import _stein_all as SA
from ._layout import INFO_VEC_REDO
from ._scheduling import _timed, _use_serial, serial_kernels
from ._validate import (
    ArgumentTypeError,
    _check_tol,
    _consts,
    _prepare,
    _prepare_k,
    _raise_info,
    _raise_nonfinite,
)

__all__ = [
    "ArgumentTypeError",
    "eigh_tridiagonal",
    "eigvalsh_tridiagonal",
    "kth_eigenpair",
    "kth_eigenvalue",
    "serial_kernels",
]

_SELECT = {"a": "a", "all": "a", 0: "a", "v": "v", "value": "v", 1: "v", "i": "i", "index": "i", 2: "i"}


_modules_get = sys.modules.get
_ndarray = np.ndarray


def _lazy(d, e, k=0):
    """Whether ``d``, ``e`` or ``k`` is a dask array; then :mod:`tridiag_numba.dask`
    builds a task graph instead.  dask is not imported here: without
    ``dask.array`` in ``sys.modules`` no argument can be one."""
    da = _modules_get("dask.array")
    if da is None or (d.__class__ is _ndarray and e.__class__ is _ndarray and k.__class__ is int):
        return False  # ~0.1 us: the common call pays no isinstance
    return isinstance(d, da.Array) or isinstance(e, da.Array) or isinstance(k, da.Array)


def _lazy_call(name, *args, **kwargs):
    from . import dask

    return getattr(dask, name)(*args, **kwargs)


# ------------------------------------------------------------ kernel drivers


def _eigenvalues(d2, e2, lane_b, lane_k, tol, dtype):
    """Kernel call: eigenvalue lane_k[j] of matrix lane_b[j].

    Returns (w, ws, info): ``ws`` are the eigenvalues of the matrices scaled by
    the power of two the kernels use (input of the eigenvector kernel).
    """
    m = lane_b.shape[0]
    w = np.empty(m, dtype)  # (two allocations cost less than one and two views)
    ws = np.empty(m, dtype)
    info = np.zeros(m, np.int32)
    if m == 0:
        return w, ws, info
    eps, tiny = _consts(dtype)
    if _serial_lanes(m, d2.shape[1]):
        K.kth_eigenvalues_serial(d2, e2, lane_b, lane_k, tol, eps, tiny, K.engine_chunk(m, False), w, ws, info)
    else:
        _timed(K.kth_eigenvalues_parallel if T._runtime is None else T.kth_eigenvalues, m * d2.shape[1], d2, e2, lane_b, lane_k, tol, eps, tiny, K.engine_chunk(m, True), w, ws, info)
    return w, ws, info


def _serial_lanes(m, n):
    """Whether ``m`` eigenvalue lanes of order ``n`` run on the serial twin:
    one block of LANES lanes runs on one thread anyway."""
    return m <= K.LANES or _use_serial(m * n)


def _check_eigenvalue_info(info, batch, d2, e2, check_finite):
    """Raise for the eigenvalue kernels' ``info`` (B, m); return the (B,)
    mask of non-finite matrices, or None when every matrix was finite."""
    if not np.count_nonzero(info):
        return None
    nonfinite = (info < 0).any(axis=1)
    if check_finite and nonfinite.any():
        _raise_nonfinite(d2, e2)
    _raise_info(info.max(axis=1), batch, "eigenvalue bisection")
    return nonfinite


def _eigenvectors(d2, e2, ws, kidx, mcount, dtype):
    """Kernel call: vectors for scaled eigenvalues ws (B, m) with indices
    kidx; returns (v, info)."""
    nb, m = ws.shape
    n = d2.shape[1]
    v = np.empty((nb, n, m), dtype)
    info = np.zeros(nb, np.int32)
    if nb == 0 or m == 0:
        return v, info
    eps, tiny = _consts(dtype)
    ws = np.ascontiguousarray(ws)
    # Inverse iteration is ~4 recurrences of length n per vector.
    serial = nb == 1 or _use_serial(4 * nb * n * m)
    if m == 1 and (mcount == 1).all():
        # One vector per matrix: no cluster to re-orthogonalise, so the
        # matrices run side by side as SIMD lanes.
        if serial or nb <= K.LANES:
            K.eigenvector1_serial(d2, e2, ws, kidx, eps, tiny, v, info)
        else:
            _timed(K.eigenvector1_parallel, nb * n, d2, e2, ws, kidx, eps, tiny, v, info)
        _redo_vectors(d2, e2, ws, kidx, v, info)
    elif serial:
        K.eigenvectors_serial(d2, e2, ws, kidx, mcount, eps, tiny, v, info)
    else:
        _timed(K.eigenvectors_parallel, 4 * nb * n * m, d2, e2, ws, kidx, mcount, eps, tiny, v, info)
    return v, info


def _redo_vectors(d2, e2, ws, kidx, v, info):
    """The vectors the lane inverse iteration left to the full dstein loop
    (``info == INFO_VEC_REDO``: a split matrix, a slow start, overflow), by that loop.

    ``ws``, ``kidx`` (B, 1) as the lane kernel took them; writes those matrices'
    rows of ``v`` (B, n, 1) and ``info`` in place.  The same call on the same rows
    as when the lane kernel made it itself, so the same bits; kept out of the lane
    kernels, whose first compile it made ~5 s longer, and compiled only when a
    call needs it.
    """
    if not np.count_nonzero(info):
        return  # the common case, in ~0.3 us
    rows = np.flatnonzero(info == INFO_VEC_REDO)
    if rows.size:
        eps, tiny = _consts(v.dtype)
        work = 4 * rows.size * d2.shape[1]  # ~4 recurrences of length n per vector
        if rows.size == 1 or _use_serial(work):
            K.redo_vectors_serial(d2, e2, ws, kidx, rows, eps, tiny, v, info)
        else:
            _timed(K.redo_vectors_parallel, work, d2, e2, ws, kidx, rows, eps, tiny, v, info)


_LANE_CACHE = {}
#: Only index arrays up to this many lanes are cached (see _lane_arrays).
_LANE_CACHE_MAX_SIZE = 4096


def _lane_arrays(nb, m, lane_k):
    """(lane_b, lane_k) as int64 arrays over nb * m lanes.

    lane_b is [0]*m + [1]*m + ...; ``lane_k`` an int (the same index for
    every lane) or an int64 array (B, m).  Small index arrays are cached,
    one dict lookup a call (building them costs ~1 us, which matters next to
    a ~40 us call on a small batch and not at all on a big one, where caching
    would only pin memory).  Cached arrays are shared between calls: nothing
    may write to them.  They stay writeable because a read-only array is
    another numba type, i.e. one more compile of every kernel; so does a
    given ``lane_k`` (copied if read-only: a ``broadcast_to`` view that was
    already contiguous, e.g. the indices of one row).
    """
    const = lane_k.__class__ is int
    key = (nb, m, lane_k if const else None)
    pair = _LANE_CACHE.get(key)
    if pair is None:
        size = nb * m
        pair = (np.repeat(np.arange(nb, dtype=np.int64), m), np.full(size, lane_k, np.int64) if const else None)
        if size <= _LANE_CACHE_MAX_SIZE:
            if len(_LANE_CACHE) >= 64:
                _LANE_CACHE.clear()
            _LANE_CACHE[key] = pair
    if const:
        return pair[0], pair[1]
    lane_k = lane_k.reshape(-1)
    return pair[0], (lane_k if lane_k.flags.writeable else lane_k.copy())


def _solve(d2, e2, batch, lane_k, m, tol, dtype, want_vectors, check_finite, mcount=None):
    """Eigenvalues (and vectors) for lanes laid out as (B, m).

    ``lane_k`` is an int (one index for every matrix, m = 1) or an int64
    array (B, m).  ``mcount`` (B,): vectors wanted per matrix; required with
    vectors for n > 1 (one eigenpair per matrix takes :func:`_solve_pairs`).
    Returns (w (B, m), v (B, n, m) or None, nonfinite (B,) or None when every
    matrix was finite).
    """
    nb, n = d2.shape
    if n == 1:
        # 1x1: exact, and no kernel call.
        nonfinite = ~np.isfinite(d2[:, 0])
        if check_finite and nonfinite.any():
            _raise_nonfinite(d2, e2)
        w = np.repeat(d2, m, axis=1)
        v = np.ones((nb, 1, m), dtype) if want_vectors else None
        return w, v, nonfinite
    lane_b, lane_k = _lane_arrays(nb, m, lane_k)
    w, ws, info = _eigenvalues(d2, e2, lane_b, lane_k, tol, dtype)
    w = w.reshape(nb, m)
    ws = ws.reshape(nb, m)
    nonfinite = _check_eigenvalue_info(info.reshape(nb, m), batch, d2, e2, check_finite) if np.count_nonzero(info) else None
    if m > 1 and (ws[:, 1:] < ws[:, :-1]).any():
        # Each eigenvalue is computed independently; inside a cluster they can
        # come out one rounding apart in the wrong order.  One scale factor
        # per matrix, so the scaled values order the eigenvalues too.
        order = np.argsort(ws, axis=1, kind="stable")
        ws = np.take_along_axis(ws, order, axis=1)
        w = np.take_along_axis(w, order, axis=1)
    if not want_vectors:
        return w, None, nonfinite
    kidx = lane_k.reshape(nb, m)
    v, vinfo = _eigenvectors(d2, e2, ws, kidx, mcount, dtype)
    _raise_info(vinfo, batch, "inverse iteration")
    return w, v, nonfinite


def _solve_ql(d2, e2, batch, tol, dtype, check_finite):
    """All eigenvalues of each matrix (n >= 2) by root-free QL as lanes,
    certified by Sturm counts (:mod:`._ql_lanes`); the eigenvalues the
    counts do not certify are recomputed by bisection (:func:`_eigenvalues`).
    Returns (w (B, n) ascending, nonfinite (B,) or None)."""
    nb, n = d2.shape
    w = np.empty((nb, n), dtype)
    ok = np.zeros((nb, n), np.uint8)
    info = np.zeros(nb, np.int32)
    if nb == 0:
        return w, None
    scratch = np.empty((2, nb), dtype)
    lane_b, lane_k = _lane_arrays(nb, 1, 0)
    args = (d2, e2, lane_b, lane_k, tol, *_consts(dtype))
    outs = (w, ok, info, scratch[0], scratch[1])
    # A block of LANES matrices runs on one thread; ~3 sweeps of n steps per eigenvalue.
    if _serial_lanes(nb, 3 * n * n):
        K.ql_eigenvalues_serial(*args, nb, *outs)
    else:
        _timed(K.ql_eigenvalues_parallel, 3 * nb * n * n, *args, K.chunk_size(nb), *outs)
    nonfinite = None
    if np.count_nonzero(info):
        nonfinite = info < 0
        if check_finite and nonfinite.any():
            _raise_nonfinite(d2, e2)
    redo = np.flatnonzero(ok.reshape(-1) == 0)
    if redo.size:
        rb, rk = np.divmod(redo, n)
        wr, _, rinfo = _eigenvalues(d2, e2, rb, rk, tol, dtype)
        _raise_info(np.bincount(rb, weights=rinfo > 0, minlength=nb), batch, "eigenvalue bisection")
        w.reshape(-1)[redo] = wr
    if (w[:, 1:] < w[:, :-1]).any():
        # Within a cluster, certified values (or those of the fallback) can
        # come out one rounding apart in the wrong order.
        w.sort(axis=1)
    return w, nonfinite


def _all_scaled_eigenvalues(d2, e2, batch, tol, dtype, check_finite):
    """All eigenvalues of each matrix (n >= 2): (w (B, n), ws (B, n),
    nonfinite (B,) or None), ``ws`` those of the matrix scaled by the
    kernels' power of two (:func:`._scaling._scale_exponent`), as the
    eigenvector kernels take them.  Lane QL where it is the eigenvalue-only
    route (batches, see ``_drivers``), the bisection otherwise."""
    nb, n = d2.shape
    if D.choose("auto", "a", True, nb, n, n) == "ql":
        w, nonfinite = _solve_ql(d2, e2, batch, tol, dtype, check_finite)
        # The exponent _scale_exponent takes: max|T| = f 2**ex, f in [0.5, 1)
        # (frexp's; 0 for a zero matrix).  QL's w = ldexp(ws, ex) exactly
        # unless it is subnormal: those matrices' ws come from the bisection.
        ex = np.frexp(np.maximum(np.abs(d2).max(axis=1), np.abs(e2).max(axis=1, initial=0)))[1]
        ws = np.ldexp(w, -ex[:, None]).astype(dtype, copy=False)
        lossy = np.flatnonzero(((np.abs(w) < _consts(dtype)[1]) & (w != 0)).any(axis=1))
        if not lossy.size:
            return w, ws, nonfinite
        rows = lossy
    else:
        w, ws, nonfinite, rows = np.empty((nb, n), dtype), np.empty((nb, n), dtype), None, np.arange(nb)
    lane_k = np.ascontiguousarray(np.broadcast_to(np.arange(n, dtype=np.int64), (rows.size, n)))
    d3, e3 = np.ascontiguousarray(d2[rows]), np.ascontiguousarray(e2[rows])
    wr, wsr, info = _eigenvalues(d3, e3, *_lane_arrays(rows.size, n, lane_k), tol, dtype)
    wr, wsr = wr.reshape(-1, n), wsr.reshape(-1, n)
    if np.count_nonzero(info):
        nonfinite_r = _check_eigenvalue_info(info.reshape(-1, n), batch, d3, e3, check_finite)
        if nonfinite is None and nonfinite_r is not None:
            nonfinite = np.zeros(nb, bool)
            nonfinite[rows] = nonfinite_r
    if (wsr[:, 1:] < wsr[:, :-1]).any():
        # (see _solve: one rounding apart in the wrong order inside a cluster)
        order = np.argsort(wsr, axis=1, kind="stable")
        wr, wsr = np.take_along_axis(wr, order, axis=1), np.take_along_axis(wsr, order, axis=1)
    w[rows], ws[rows] = wr, wsr
    return w, ws, nonfinite


def _solve_all_pairs(d2, e2, batch, tol, dtype, check_finite):
    """All eigenpairs of each matrix (n >= 2) by the eigenvalue kernels and
    batched inverse iteration (:mod:`._stein_all`).  Returns (w (B, n),
    v (B, n, n), nonfinite (B,) or None)."""
    nb, n = d2.shape
    w, ws, nonfinite = _all_scaled_eigenvalues(d2, e2, batch, tol, dtype, check_finite)
    v = np.empty((nb, n, n), dtype)
    info = np.zeros(nb, np.int32)
    if nb:
        eps, tiny = _consts(dtype)
        # ~60 flops a row per vector (LU, two solves, norms, the window).
        if nb == 1 or _use_serial(60 * nb * n * n):
            SA.all_vectors_serial(d2, e2, ws, nb, eps, tiny, v, info)
        else:
            _timed(SA.all_vectors_parallel, 60 * nb * n * n, d2, e2, ws, K.chunk_size(nb), eps, tiny, v, info)
    _raise_info(info, batch, "inverse iteration")
    redo = np.flatnonzero(info == SA.INFO_UNCERTIFIED)
    if redo.size:
        # Vectors the certificate does not prove (e.g. tight clusters that
        # Gram-Schmidt had to resolve): LAPACK's divide and conquer, which
        # 'auto' ran for every matrix before.
        dr, er = np.ascontiguousarray(d2[redo]), np.ascontiguousarray(e2[redo])
        zero, full = np.zeros(redo.size, np.int64), np.full(redo.size, n, np.int64)
        w[redo], v[redo], _ = _solve_lapack("stevd", dr, er, (redo.size,), "a", zero, full, n, tol, True, check_finite)
    return w, v, nonfinite


def _solve_pairs(d2, e2, batch, kk, tol, check_finite):
    """One eigenpair per matrix (n >= 2): one fused kernel call.

    ``kk`` as :func:`_kth` takes it.  Returns (w (B,), v (B, n), nonfinite (B,)
    or None when every matrix was finite).  The common case -- every matrix
    finite, every lane's vector accepted -- tests one status array and
    returns: the torch ops call this for every forward, where each numpy
    call or Python frame between the dispatcher and the kernel shows.
    """
    nb, n = d2.shape
    dtype = d2.dtype
    w = np.empty(nb, dtype)
    ws = np.empty(nb, dtype)
    v = np.empty((nb, n), dtype)
    status = np.zeros((2, nb), np.int32)  # the eigenvalue's info and the vector's
    info, vinfo = status[0], status[1]
    if nb:
        lane_b, lane_k = _lane_arrays(nb, 1, kk)
        eps, tiny = _consts(dtype)
        v3 = v.reshape(nb, n, 1)  # the kernel's layout (B, n, m)
        if _serial_lanes(nb, n):
            K.kth_eigenpairs_serial(d2, e2, lane_b, lane_k, tol, eps, tiny, K.engine_chunk(nb, False), w, ws, info, v3, vinfo)
        else:
            _timed(K.kth_eigenpairs_parallel if T._runtime is None else T.kth_eigenpairs, nb * n, d2, e2, lane_b, lane_k, tol, eps, tiny, K.engine_chunk(nb, True), w, ws, info, v3, vinfo)
        if np.count_nonzero(status):
            nonfinite = _check_eigenvalue_info(info.reshape(nb, 1), batch, d2, e2, check_finite)
            _redo_vectors(d2, e2, ws.reshape(nb, 1), lane_k.reshape(nb, 1), v3, vinfo)
            _raise_info(vinfo, batch, "inverse iteration")
            return w, v, nonfinite
    return w, v, None


def _kth_lapack(d2, e2, batch, kk, tol, want_vectors, check_finite):
    """One eigenvalue (pair) per matrix of a few big matrices on LAPACK's
    stebz (+ stein): O(n) work arrays, a few times the input (see _drivers)."""
    nb = d2.shape[0]
    il = np.broadcast_to(np.asarray(kk, np.int64), (nb,)).copy()
    return _solve_lapack("lapack_stebz", d2, e2, batch, "i", il, il + 1, 1, tol, want_vectors, check_finite)


def _mark_nonfinite(nonfinite, *arrays):
    if nonfinite is not None and nonfinite.any():
        for a in arrays:
            if a is not None:
                a[nonfinite] = np.nan


def _kth(d2, e2, batch, kk, tol, want_vectors, check_finite):
    """One eigenvalue (pair) per matrix of validated input (see :func:`_prepare_k`).

    Returns (w (B,), v (B, n) or None, nonfinite (B,) or None when every
    matrix was finite); NaN in w and v for non-finite matrices.
    """
    nb, n = d2.shape
    if D.choose_kth(nb, n) != "ours":
        w, v, nonfinite = _kth_lapack(d2, e2, batch, kk, tol, want_vectors, check_finite)
    elif want_vectors and n > 1:
        w, v, nonfinite = _solve_pairs(d2, e2, batch, kk, tol, check_finite)
        if nonfinite is None:
            return w, v, None  # the common case
    elif n == 1:
        w, v, nonfinite = _solve(d2, e2, batch, kk, 1, tol, d2.dtype, want_vectors, check_finite)
    else:
        # _solve's work for one eigenvalue per matrix, without its (B, m)
        # bookkeeping (~0.5 us of a ~30 us call on 50 matrices of order 100).
        w, _, info = _eigenvalues(d2, e2, *_lane_arrays(nb, 1, kk), tol, d2.dtype)
        if not np.count_nonzero(info):
            return w, None, None  # the common case: every matrix finite and converged
        v = None
        nonfinite = _check_eigenvalue_info(info[:, None], batch, d2, e2, check_finite)
    w = w.reshape(nb)
    if v is not None:
        v = v.reshape(nb, n)
    if nonfinite is not None and not nonfinite.any():
        nonfinite = None  # (the 1x1 path reports a mask always)
    _mark_nonfinite(nonfinite, w, v)
    return w, v, nonfinite


# ------------------------------------------------------------------ public API


def kth_eigenvalue(d, e, k, *, check_finite=True, tol=0.0):
    """The k-th smallest eigenvalue of each symmetric tridiagonal matrix.

    Parameters
    ----------
    d : array_like, shape (..., n)
        Diagonals, real.  The dtype computed in and returned is scipy's:
        float32 for float32, float16, bool and integers of up to 16 bits;
        float64 for float64, wider integers and longdouble (mixed inputs: the
        wider of the two).
    e : array_like, shape (..., n-1)
        Off-diagonals.  The batch shapes of ``d``, ``e`` and ``k`` broadcast.
    k : int or array_like of int
        0-based index into the ascending eigenvalues; negative values count
        from the top (``-1`` is the largest).  Must satisfy ``-n <= k < n``.
    check_finite : bool, optional
        Raise on NaN/inf input (default).  With ``False`` the result for a
        matrix holding NaN/inf is NaN; other matrices are unaffected.
    tol : float, optional
        Absolute tolerance for each eigenvalue, as in scipy; ``tol <= 0``
        (default) uses ``eps * ||T||``.

    Returns
    -------
    w : ndarray, shape (...)
        ``w[...] = lambda_k(T[...])``, float32 or float64 (see ``d``).

    Raises
    ------
    ValueError
        Bad shapes, n = 0, k out of range, non-finite input.
    TypeError
        Complex, object or string input (:class:`ArgumentTypeError`, which is
        also a ``ValueError``, as scipy raises); non-integer ``k``.
    numpy.linalg.LinAlgError
        Bisection did not converge (names the batch index).

    See Also
    --------
    scipy.linalg.eigvalsh_tridiagonal : with ``select='i'``, one matrix at a time.
    kth_eigenpair : the eigenvalue with its eigenvector.

    Notes
    -----
    Sturm-sequence bisection from Gershgorin bounds with LAPACK dstebz's
    safeguards (pivmin, stopping width ``max(tol, 2 eps max(|lo|, |hi|))``),
    finished by Laguerre's method once the eigenvalue is isolated.  Each
    matrix is scaled by a power of two so that inputs of magnitude 1e±300
    neither overflow nor underflow.  Error: ``|w - w_exact| <= tol/2 +
    c * eps * ||T||`` with a small constant ``c``.  Many matrices run side by
    side as SIMD lanes on all cores.

    Examples
    --------
    >>> import numpy as np
    >>> from tridiag_numba import kth_eigenvalue
    >>> n = 5
    >>> d, e = np.full(n, 2.0), np.full(n - 1, -1.0)
    >>> w = kth_eigenvalue(d, e, [0, -1])      # smallest and largest
    >>> np.allclose(w, 2 - 2 * np.cos(np.array([1, n]) * np.pi / (n + 1)))
    True
    """
    if _lazy(d, e, k):
        return _lazy_call("kth_eigenvalue", d, e, k, check_finite=check_finite, tol=tol)
    tol = _check_tol(tol)
    d2, e2, batch, n, kk, dtype = _prepare_k(d, e, k)
    return _kth(d2, e2, batch, kk, tol, False, check_finite)[0].reshape(batch)


def kth_eigenpair(d, e, k, *, check_finite=True, tol=0.0):
    """The k-th smallest eigenvalue and its unit eigenvector, batched.

    Parameters
    ----------
    d : array_like, shape (..., n)
        Diagonals, real.  The dtype computed in and returned is scipy's:
        float32 for float32, float16, bool and integers of up to 16 bits;
        float64 for float64, wider integers and longdouble (mixed inputs: the
        wider of the two).
    e : array_like, shape (..., n-1)
        Off-diagonals.  The batch shapes of ``d``, ``e`` and ``k`` broadcast.
    k : int or array_like of int
        0-based eigenvalue index; negative counts from the top.
    check_finite : bool, optional
        Raise on NaN/inf input (default); with ``False`` such matrices give NaN.
    tol : float, optional
        Absolute eigenvalue tolerance as in scipy (``<= 0``: ``eps * ||T||``).

    Returns
    -------
    w : ndarray, shape (...)
        The eigenvalues.
    v : ndarray, shape (..., n)
        Unit 2-norm eigenvectors.  Sign convention (LAPACK dstein's): the
        entry of largest magnitude is positive (the first one on exact ties),
        so scipy's ``eigh_tridiagonal(select='i')`` vectors match.

    Raises
    ------
    ValueError, TypeError, numpy.linalg.LinAlgError
        As :func:`kth_eigenvalue`; LinAlgError also when inverse iteration
        does not converge.

    See Also
    --------
    scipy.linalg.eigh_tridiagonal : with ``select='i'``, one matrix at a time.

    Notes
    -----
    The eigenvalue as in :func:`kth_eigenvalue`; the vector by inverse
    iteration as in LAPACK dstein (LU of ``T - w I`` with partial pivoting,
    dlagtf/dlagts, small pivots perturbed).  Residual
    ``||T v - w v|| <= c * n * eps * ||T||``.

    Examples
    --------
    >>> import numpy as np
    >>> from tridiag_numba import kth_eigenpair
    >>> d, e = np.array([[2.0, 2.0, 2.0]]), np.array([[-1.0, -1.0]])
    >>> w, v = kth_eigenpair(d, e, 0)
    >>> w.shape, v.shape
    ((1,), (1, 3))
    >>> np.round(v[0], 6)
    array([0.5     , 0.707107, 0.5     ])
    """
    if _lazy(d, e, k):
        return _lazy_call("kth_eigenpair", d, e, k, check_finite=check_finite, tol=tol)
    tol = _check_tol(tol)
    d2, e2, batch, n, kk, dtype = _prepare_k(d, e, k)
    w, v, _ = _kth(d2, e2, batch, kk, tol, True, check_finite)
    return w.reshape(batch), v.reshape(batch + (n,))


def _parse_select(select, select_range, n, d2, e2, check_finite):
    """Return (il, iu, m, padded): (B,) int64 index ranges [il, iu) per matrix,
    the number m of output columns, and whether rows are NaN-padded ('v')."""
    try:
        sel = _SELECT.get(select.lower() if isinstance(select, str) else operator.index(select))
    except TypeError:
        sel = None
    if sel is None:
        raise ValueError(f"select must be one of {{'a', 'v', 'i', 'all', 'value', 'index', 0, 1, 2}}; got {select!r}")
    nb = d2.shape[0]
    if sel == "a":
        return np.zeros(nb, np.int64), np.full(nb, n, np.int64), n, False
    if select_range is None:
        raise ValueError(f"select_range is required when select={select!r}")
    sr = np.asarray(select_range)
    if sr.shape != (2,):
        raise ValueError(f"select_range must be a pair (min, max); got shape {sr.shape}")
    if sel == "i":
        if sr.dtype.kind not in "iu":
            raise ArgumentTypeError(f"select_range for select='i' must hold integers; got dtype {sr.dtype}")
        il, iu = int(sr[0]), int(sr[1])
        if not 0 <= il <= iu < n:
            raise ValueError(f"select_range for select='i' must satisfy 0 <= min <= max < n = {n}; got ({il}, {iu})")
        return np.full(nb, il, np.int64), np.full(nb, iu + 1, np.int64), iu + 1 - il, False
    if sr.dtype.kind not in "fiu":
        raise ArgumentTypeError(f"select_range for select='v' must hold real numbers; got dtype {sr.dtype}")
    vl, vu = float(sr[0]), float(sr[1])
    if vl != vl or vu != vu:
        # scipy hands NaN to LAPACK's stebz, whose failure it raises as LinAlgError
        # (a ValueError too): the same type, with the reason.
        raise np.linalg.LinAlgError(f"select_range for select='v' must not hold NaN; got ({vl}, {vu})")
    if not vl < vu:
        raise ValueError(f"select_range for select='v' must satisfy min < max; got ({vl}, {vu})")
    il = np.empty(nb, np.int64)
    iu = np.empty(nb, np.int64)
    if nb:
        fn = K.value_counts_serial if _use_serial(2 * nb * n) else K.value_counts_parallel
        fn(d2, e2, vl, vu, *_consts(d2.dtype), il, iu)
    # Non-finite matrices (count -1): no eigenvalues; their rows become NaN.
    bad = il < 0
    if check_finite and bad.any():
        _raise_nonfinite(d2, e2)
    il[bad] = 0
    iu[bad] = 0
    return il, iu, int((iu - il).max(initial=0)), True


def _select_kind(select):
    """'a', 'i' or 'v' for a ``select`` that _parse_select accepted."""
    return _SELECT[select.lower() if isinstance(select, str) else operator.index(select)]


def _solve_lapack(driver, d2, e2, batch, sel, il, iu, m, tol, want_vectors, check_finite):
    """:func:`_solve`'s work on LAPACK ``driver`` (see ``_drivers``); returns
    (w (B, m), v (B, n, m) or None, nonfinite (B,) or None)."""
    nb, n = d2.shape
    if driver in ("sterf", "stevd") and sel != "a":
        # A wide range: the whole spectrum, then each matrix's part (cheaper
        # than MRRR or bisection on the range, see _drivers).
        zero, full = np.zeros_like(il), np.full_like(iu, n)
        w, v, nonfinite = _solve_lapack(driver, d2, e2, batch, "a", zero, full, n, tol, want_vectors, check_finite)
        j = np.arange(m)
        cols = np.minimum(il[:, None] + j, n - 1)
        pad = j >= (iu - il)[:, None]
        w = np.take_along_axis(w, cols, axis=1)
        w[pad] = np.nan
        if v is not None:
            v = np.take_along_axis(v, cols[:, None, :], axis=2)
            v[np.broadcast_to(pad[:, None, :], v.shape)] = np.nan
        return w, v, nonfinite
    serial = nb < 2 or D.serial_is_cheaper(n, nb, want_vectors) or _use_serial(math.inf)
    w, v, info = D.solve(driver, d2, e2, il, iu, m, tol, want_vectors, serial)
    nonfinite = None
    if np.count_nonzero(info):
        nonfinite = info < 0
        if check_finite and nonfinite.any():
            _raise_nonfinite(d2, e2)
        D.raise_info(info, batch, driver)
    return w, v, nonfinite


def eigh_tridiagonal(
    d, e, eigvals_only=False, select="a", select_range=None, check_finite=True, tol=0.0, lapack_driver="auto"
):
    """Eigenvalues and eigenvectors of batches of symmetric tridiagonal matrices.

    Drop-in for :func:`scipy.linalg.eigh_tridiagonal` (same parameters in the
    same order), batched over leading dimensions and run in parallel.

    Parameters
    ----------
    d : array_like, shape (..., n)
        Diagonals, real.  The dtype computed in and returned is scipy's:
        float32 for float32, float16, bool and integers of up to 16 bits;
        float64 for float64, wider integers and longdouble (mixed inputs: the
        wider of the two).
    e : array_like, shape (..., n-1)
        Off-diagonals; batch shapes of ``d`` and ``e`` broadcast.
    eigvals_only : bool, optional
        Compute only the eigenvalues.
    select : {'a', 'v', 'i'}, optional
        ``'a'`` all eigenvalues; ``'i'`` indices ``min <= i <= max``
        (0-based, inclusive); ``'v'`` eigenvalues in the half-open interval
        ``(min, max]``.  ``'all'``, ``'index'``, ``'value'`` and 0, 2, 1 too.
    select_range : (min, max), optional
        The range for ``'i'`` or ``'v'``.
    check_finite : bool, optional
        Raise on NaN/inf input (default); with ``False`` such matrices give
        NaN outputs and the others are unaffected.
    tol : float, optional
        Absolute tolerance of each eigenvalue, as in scipy; ``tol <= 0``
        (default) uses ``eps * ||T||``.
    lapack_driver : str, optional
        The algorithm, as in scipy.  ``'stevd'`` (divide and conquer),
        ``'stev'`` (implicit QL/QR), ``'sterf'`` (root-free QR, eigenvalues
        only) need ``select='a'``; ``'stemr'`` (MRRR) takes any ``select``;
        these run LAPACK's routine on every matrix of the batch in parallel.
        ``'stebz'``: this package's bisection + inverse iteration.
        ``'auto'`` (default) picks by cost: sterf/stevd for the whole
        spectrum and wide ranges, bisection for a few eigenpairs per matrix,
        LAPACK's stebz + stein for a few matrices of order >= 16384; all
        eigenpairs of batches of order 16..128 (float32: 16..32) by
        certified lane QL and lane inverse iteration (stevd for any matrix
        its certificate does not pass).

    Returns
    -------
    w : ndarray, shape (..., m)
        Eigenvalues in ascending order, float32 or float64 (see ``d``).
    v : ndarray, shape (..., n, m)
        Unit eigenvectors in columns, ``v[..., :, j]`` for ``w[..., j]``;
        the entry of largest magnitude of each is positive.  Only when
        ``eigvals_only=False``.

    Raises
    ------
    ValueError
        Bad shapes, n = 0, unknown ``select``/``lapack_driver``, bad
        ``select_range``, non-finite input with ``check_finite=True``;
        ``'sterf'``/``'stev'``/``'stevd'`` with ``select`` other than
        ``'a'``, ``'sterf'`` with ``eigvals_only=False`` (as scipy).
    TypeError
        Complex, object or string input, a non-integer ``select_range``
        with ``select='i'``, a ``tol`` that is not a number
        (:class:`ArgumentTypeError`, also a ``ValueError``, as scipy raises).
    numpy.linalg.LinAlgError
        Non-convergence (names the batch index); a NaN in ``select_range``
        with ``select='v'`` (scipy's type for it; also a ``ValueError``).

    See Also
    --------
    kth_eigenpair : one eigenpair per matrix, the fast path for models.

    Notes
    -----
    With ``select='v'`` on a batch the number of eigenvalues differs per
    matrix: ``m`` is the largest count, each matrix's eigenvalues come
    first (ascending) and the rest of its row is NaN (NaN columns in ``v``).
    For a single matrix the result has exactly the eigenvalues in the range,
    as in scipy.

    ``'stebz'`` eigenvalues: bisection with Laguerre refinement (see
    :func:`kth_eigenvalue`).  Vectors: LAPACK dstein's inverse iteration with
    modified Gram-Schmidt inside clusters (gaps <= 1e-3 ||T||), so vectors of
    a computed range are orthogonal to ``c * n * eps``, also for glued
    Wilkinson matrices.  The LAPACK drivers give scipy's results (bit for
    bit where LAPACK does not rescale the matrix; sterf/stev/stevd first
    zero off-diagonals whose square would be subnormal, see the README);
    vectors they return are a view of an array with each vector contiguous
    (scipy's Fortran order).

    Examples
    --------
    >>> import numpy as np
    >>> from tridiag_numba import eigh_tridiagonal
    >>> d = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0]])
    >>> e = np.array([[0.5, 0.5], [-1.0, -1.0]])
    >>> w, v = eigh_tridiagonal(d, e, select='i', select_range=(0, 1))
    >>> w.shape, v.shape
    ((2, 2), (2, 3, 2))
    >>> T = np.diag(d[1]) + np.diag(e[1], 1) + np.diag(e[1], -1)
    >>> np.allclose(T @ v[1], v[1] * w[1])
    True
    """
    if _lazy(d, e):
        return _lazy_call("eigh_tridiagonal", d, e, eigvals_only, select, select_range, check_finite, tol, lapack_driver)
    D.check_driver(lapack_driver)
    tol = _check_tol(tol)
    d2, e2, batch, n, dtype = _prepare(d, e)
    il, iu, m, padded = _parse_select(select, select_range, n, d2, e2, check_finite)
    sel = _select_kind(select)
    D.check_combination(lapack_driver, sel, eigvals_only)
    driver = D.choose(lapack_driver, sel, eigvals_only, d2.shape[0], n, m, e2)
    if driver == "ql":
        w, nonfinite = _solve_ql(d2, e2, batch, tol, dtype, check_finite)
        _mark_nonfinite(nonfinite, w)
        return w.reshape(batch + (m,))
    if driver == "ours_all":
        w, v, nonfinite = _solve_all_pairs(d2, e2, batch, tol, dtype, check_finite)
        _mark_nonfinite(nonfinite, w, v)
        return w.reshape(batch + (m,)), v.reshape(batch + (n, m))
    if driver != "ours":
        w, v, nonfinite = _solve_lapack(driver, d2, e2, batch, sel, il, iu, m, tol, not eigvals_only, check_finite)
        _mark_nonfinite(nonfinite, w, v)
        w = w.reshape(batch + (m,))
        return w if eigvals_only else (w, v.reshape(batch + (n, m)))
    counts = iu - il
    # Lanes (b, il[b] + j); padded lanes of 'v' batches repeat a valid index.
    j = np.arange(m, dtype=np.int64)
    lane_k = il[:, None] + np.minimum(j[None, :], np.maximum(counts[:, None] - 1, 0))
    lane_k = np.ascontiguousarray(np.minimum(lane_k, n - 1))
    w, v, nonfinite = _solve(d2, e2, batch, lane_k, m, tol, dtype, not eigvals_only, check_finite, mcount=counts)
    if padded:
        pad = j[None, :] >= counts[:, None]
        w[pad] = np.nan
        if v is not None:
            v[np.broadcast_to(pad[:, None, :], v.shape)] = np.nan
    _mark_nonfinite(nonfinite, w, v)
    w = w.reshape(batch + (m,))
    if eigvals_only:
        return w
    return w, v.reshape(batch + (n, m))


def eigvalsh_tridiagonal(d, e, select="a", select_range=None, check_finite=True, tol=0.0, lapack_driver="auto"):
    """Eigenvalues of batches of symmetric tridiagonal matrices.

    Drop-in for :func:`scipy.linalg.eigvalsh_tridiagonal`, batched over
    leading dimensions; same as ``eigh_tridiagonal(..., eigvals_only=True)``.

    Parameters
    ----------
    d : array_like, shape (..., n)
        Diagonals.
    e : array_like, shape (..., n-1)
        Off-diagonals.
    select : {'a', 'v', 'i'}, optional
        All, by value ``(min, max]``, or by index ``min..max`` (inclusive).
    select_range : (min, max), optional
        The range for ``'v'`` or ``'i'``.
    check_finite : bool, optional
        Raise on NaN/inf (default); otherwise such matrices give NaN.
    tol : float, optional
        Absolute eigenvalue tolerance (``<= 0``: ``eps * ||T||``).
    lapack_driver : str, optional
        The algorithm, as in :func:`eigh_tridiagonal` (``'sterf'`` is
        root-free QR, the default's choice for all eigenvalues).

    Returns
    -------
    w : ndarray, shape (..., m)
        Ascending eigenvalues (NaN-padded for ``'v'`` on batches, see
        :func:`eigh_tridiagonal`).

    Raises
    ------
    ValueError, TypeError, numpy.linalg.LinAlgError
        As :func:`eigh_tridiagonal`.

    See Also
    --------
    kth_eigenvalue : one eigenvalue per matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from tridiag_numba import eigvalsh_tridiagonal
    >>> w = eigvalsh_tridiagonal(np.zeros(3), np.ones(2))
    >>> np.allclose(w, [-np.sqrt(2), 0, np.sqrt(2)])
    True
    """
    return eigh_tridiagonal(
        d, e, eigvals_only=True, select=select, select_range=select_range,
        check_finite=check_finite, tol=tol, lapack_driver=lapack_driver,
    )


# ------------------------------------------------- entry for validated input


def kth_prevalidated(d2, e2, k, want_vectors):
    """:func:`kth_eigenvalue` / :func:`kth_eigenpair` (``check_finite=False``,
    ``tol=0``) for callers that have validated their input: no checks, no
    promotion, no copies.  ``torch_bridge``'s ops call it.

    Parameters
    ----------
    d2 : ndarray, shape (B, n)
        C-contiguous, writeable, float32 or float64, ``n >= 1``.
    e2 : ndarray, shape (B, n-1)
        C-contiguous, writeable, ``d2``'s dtype.
    k : int or ndarray
        An int in ``[0, n)`` for every matrix, or an int64 C-contiguous array
        (B,) of indices in ``[0, n)``.
    want_vectors : bool
        Whether to compute the eigenvectors.

    Returns
    -------
    w : ndarray, shape (B,)
    v : ndarray, shape (B, n), or None
        New arrays (never views of the input); NaN for non-finite matrices.
    nonfinite : ndarray of bool, shape (B,), or None
        The matrices holding NaN/inf; None when every matrix was finite.

    Raises
    ------
    numpy.linalg.LinAlgError
        As :func:`kth_eigenpair` (batch index into B).  Anything else the
        caller must have ruled out: input outside the contract above is not
        detected (wrong results, or a numba compile for a new type).

    Examples
    --------
    >>> import numpy as np
    >>> from tridiag_numba._api import kth_prevalidated
    >>> w, v, nonfinite = kth_prevalidated(np.full((1, 3), 2.0), np.full((1, 2), -1.0), 0, True)
    >>> np.round(w, 6), np.round(v, 6), nonfinite
    (array([0.585786]), array([[0.5     , 0.707107, 0.5     ]]), None)
    """
    return _kth(d2, e2, d2.shape[:-1], k, 0.0, want_vectors, False)
