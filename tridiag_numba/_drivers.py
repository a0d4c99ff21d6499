"""Which algorithm runs a call, and the numpy layer of the LAPACK path.

``lapack_driver`` has scipy's meaning: ``'stevd'``, ``'stemr'``, ``'sterf'``,
``'stev'`` run that LAPACK routine on every matrix of the batch (in parallel,
:mod:`._full_spectrum`); ``'stebz'`` is this package's own batched bisection
+ inverse iteration (:mod:`._kernels`); ``'auto'`` picks by cost
(:func:`choose`).  Validation follows scipy's ``eigh_tridiagonal``: the
full-spectrum drivers reject ``select='i'``/``'v'``, and ``'sterf'`` computes
eigenvalues only.
"""

import contextlib
import threading

import numba
import numpy as np

from . import _full_spectrum as F

__all__ = [
    "check_combination", "check_driver", "choose", "choose_kth", "raise_info", "serial_is_cheaper", "solve", "whole_batch",
]

DRIVERS = ("auto", "stemr", "sterf", "stebz", "stev", "stevd")

#: 'auto', eigenpairs of a range: our bisection + inverse iteration while the
#: range holds at most this many eigenpairs per matrix.  Inverse iteration
#: re-orthogonalises inside clusters, O(n m^2) for m vectors of a cluster,
#: and for large n *every* eigenvalue of a wide range lies within dstein's
#: cluster gap (1e-3 ||T||) of its neighbours.
AUTO_OURS_MAX_VECTORS = 16
#: 'auto', more eigenpairs of a range: all of them by divide and conquer
#: (stevd) and the range's columns, up to this n (stevd's n x n workspace);
#: LAPACK's stebz + stein (scipy's algorithm for ranges) beyond.  MRRR
#: (stemr) is not chosen: it failed (info 22) on matrices scaled by 1e150
#: and on glued Wilkinson index ranges here, as scipy's stemr does.
AUTO_STEVD_MAX_N = 4096
#: ... and to stebz + stein when every matrix splits (exact zeros in e) into
#: blocks of at most this order: dstein's work is then per block, while
#: stevd still fills an n x n matrix (split_matrix(1000, 3), n = 3000, the
#: 1000 eigenpairs of a cluster: stevd 74 ms, scipy's stebz + stein 10 ms).
AUTO_STEIN_MAX_BLOCK = 64
#: 'auto', eigenvalues only: our bisection (all eigenvalues of batches:
#: certified lane QL, below; LAPACK's stebz for the big single matrices
#: below).  Its results are certified by Sturm counts to
#: 4 eps ||T||_1 (README, "Accuracy"); root-free QR (sterf) is ~1.2x faster
#: per matrix at n = 16 but its error grows with n: on random float32
#: matrices it reached 17 eps ||T||_1 at n = 47 (and ~10 at n = 16), so
#: 'sterf' runs only when asked for.
#: A batch of at most this many matrices of order at least LARGE_N runs on
#: LAPACK's stebz (+ stein): our lane kernels size their work arrays for 32
#: lanes (32 x n per array), which a single big matrix does not fill.
SMALL_BATCH = 4
LARGE_N = 1 << 14
#: 'auto', all eigenvalues of batches of at least AUTO_QL_MIN_BATCH matrices
#: of these orders: root-free QL with matrices as SIMD lanes
#: (:mod:`._ql_lanes`), each eigenvalue certified by the bisection's own
#: Sturm counts and stopping test (the few the counts do not certify are
#: recomputed by bisection): the same bound, 1.2-2.5x cheaper than the
#: bisection on those batches (README, "Full spectra").  A lane block
#: holds 32 matrices: smaller batches leave lanes idle and run slower than
#: the bisection (1 x 100: 7x slower), as do n = 2 and n > ~300.
AUTO_QL_MIN_BATCH = 16
AUTO_QL_MIN_N = 3
AUTO_QL_MAX_N = 320
#: 'auto', all eigenpairs (select='a' with vectors) of batches of at least
#: AUTO_ALL_MIN_BATCH matrices of orders AUTO_ALL_MIN_N..AUTO_ALL_MAX_N
#: (float32: ..AUTO_ALL_MAX_N_FLOAT32): all eigenvalues by the certified
#: lane QL, all eigenvectors by inverse iteration with the isolated
#: eigenvalues as SIMD lanes, Gram-Schmidt over near neighbours and an
#: a-posteriori certificate (:mod:`._stein_all`; matrices it does not
#: certify run stevd).  Measured per core against stevd (README, "Full
#: spectra"), float64: 1.3x at 50 x 16, 1.75x at 1000 x 16, 2.05x at
#: 1000 x 32, 1.6-1.8x at n = 64-100, 1.26x at 50 x 128, 1.15x at 50 x 160,
#: parity at n = 200; float32 (LAPACK's float32 stevd is twice as fast as
#: its float64, the lanes run in float64): 1.3x at 50 x 16, 1.55x at
#: 1000 x 32, 0.86x at 50 x 100.  Below n = 16 (0.87x at 50 x 8) and for
#: single matrices or small batches (0.45-0.9x: a lane block needs many
#: eigenvalues, stevd's per-matrix cost is small) stevd stays.
AUTO_ALL_MIN_BATCH = 32
AUTO_ALL_MIN_N = 16
AUTO_ALL_MAX_N = 128
AUTO_ALL_MAX_N_FLOAT32 = 32


def check_driver(lapack_driver):
    """scipy's checks of ``lapack_driver``'s type and value."""
    if not isinstance(lapack_driver, str):
        raise TypeError(f"lapack_driver must be a str; got {type(lapack_driver).__name__}")
    if lapack_driver not in DRIVERS:
        raise ValueError(f"lapack_driver must be one of {DRIVERS}; got {lapack_driver!r}")


def check_combination(lapack_driver, sel, eigvals_only):
    """scipy's checks of ``lapack_driver`` against ``select`` (normalised to
    ``'a'``, ``'i'``, ``'v'``) and ``eigvals_only``."""
    if lapack_driver in ("sterf", "stev", "stevd") and sel != "a":
        raise ValueError(
            f"lapack_driver={lapack_driver!r} computes the whole spectrum: it can only be used with "
            f"select='a'; got select={sel!r} (use 'stemr', 'stebz' or 'auto')"
        )
    if lapack_driver == "sterf" and not eigvals_only:
        raise ValueError(
            "lapack_driver='sterf' computes eigenvalues only: it can only be used with eigvals_only=True "
            "(use 'stevd', 'stemr', 'stev', 'stebz' or 'auto' for eigenvectors)"
        )


class _WholeBatch(threading.local):
    nb = None  # matrices of the whole batch, when one chunk of it is solved
    m = None  # eigenvalues per matrix asked of the whole batch


_whole = _WholeBatch()


@contextlib.contextmanager
def whole_batch(nb, m=None):
    """Choose algorithms as for one call on the whole batch (``nb`` matrices,
    ``m`` eigenvalues per matrix; None: the chunk's own).

    :mod:`tridiag_numba.dask` solves a batch chunk by chunk; the drivers
    differ in their last bits, so a chunk must take the algorithm the whole
    batch would take for its result not to depend on the chunking.
    (Thread-local: dask's threaded scheduler runs chunks side by side.)
    """
    saved = _whole.nb, _whole.m
    _whole.nb, _whole.m = nb, m
    try:
        yield
    finally:
        _whole.nb, _whole.m = saved


def choose(lapack_driver, sel, eigvals_only, nb, n, m, e=None, dtype=None):
    """The algorithm that runs: a LAPACK driver name (see
    ``_full_spectrum.DRIVER_CODES``), ``'ours'`` (bisection) or ``'ql'``
    (all eigenvalues by certified lane QL).  ``'sterf'``/``'stevd'``
    for a range mean: the whole spectrum, then the range's part.

    ``m`` is the number of eigenvalues per matrix asked for (the largest over
    the batch for ``'v'``).  ``e`` (B, n-1), when given, lets a wide range of
    eigenpairs of matrices that split into small blocks go to stebz + stein.
    ``dtype`` (default: ``e``'s, else float64) sets the largest order of
    ``'ours_all'`` (all eigenpairs by lane QL + lane inverse iteration).
    """
    if n == 1 or nb == 0:
        return "ours"  # exact without any solver
    nb = nb if _whole.nb is None else _whole.nb
    m = m if _whole.m is None else _whole.m
    if lapack_driver == "stebz":
        return "ours"
    if lapack_driver != "auto":
        return lapack_driver
    big_single = nb <= SMALL_BATCH and n >= LARGE_N
    if eigvals_only:
        if sel == "a" and nb >= AUTO_QL_MIN_BATCH and AUTO_QL_MIN_N <= n <= AUTO_QL_MAX_N:
            return "ql"
        return "lapack_stebz" if big_single and m <= AUTO_OURS_MAX_VECTORS else "ours"
    if sel == "a":
        if dtype is None:
            dtype = np.float64 if e is None else e.dtype
        top = AUTO_ALL_MAX_N if np.dtype(dtype) == np.float64 else AUTO_ALL_MAX_N_FLOAT32
        if nb >= AUTO_ALL_MIN_BATCH and AUTO_ALL_MIN_N <= n <= top:
            return "ours_all"
        return "stevd"
    if m <= AUTO_OURS_MAX_VECTORS:
        return "lapack_stebz" if big_single else "ours"
    if n > AUTO_STEVD_MAX_N or (e is not None and largest_block(e) <= AUTO_STEIN_MAX_BLOCK):
        return "lapack_stebz"
    return "stevd"


def largest_block(e):
    """The order of the largest unreduced block over a batch ``e`` (B, n-1):
    the matrix splits where e is exactly zero."""
    nb, n1 = e.shape
    if nb == 0:
        return 0
    # Positions of the splits per row, with sentinels at -1 and n-1.
    zero = np.flatnonzero(e.reshape(-1) == 0)
    if zero.size == 0:
        return n1 + 1
    rows, cols = np.divmod(zero, n1)
    ends = np.concatenate([rows * (n1 + 1) + cols, np.arange(nb) * (n1 + 1) - 1, np.arange(nb) * (n1 + 1) + n1])
    ends.sort()
    return int(np.diff(ends).max())


#: A batch runs on the serial kernel below this estimate of flops (~30 n^2 a
#: matrix for eigenvalues, ~4x that with vectors at the orders where that
#: matters): a parallel launch saves at most half of a ~1 ms call and, on a
#: loaded machine, costs milliseconds when a worker thread is descheduled.
PARALLEL_MIN_FLOPS = 30 * (1 << 17)


def serial_is_cheaper(n, nb, vectors):
    """Whether a batch of ``nb`` matrices of order ``n`` is too small a job
    for a parallel launch of the LAPACK kernel."""
    return 30 * nb * n * n * (4 if vectors else 1) < PARALLEL_MIN_FLOPS


def choose_kth(nb, n):
    """``'lapack_stebz'`` or ``'ours'`` for one eigenvalue (pair) per matrix."""
    if n < LARGE_N:
        return "ours"  # (before the thread-local read: every small call asks)
    nb = nb if _whole.nb is None or nb == 0 else _whole.nb
    return "lapack_stebz" if 0 < nb <= SMALL_BATCH and n >= LARGE_N else "ours"


_BLAS = []  # the threadpoolctl controller, created on first use (~80 ms)


def _blas_on_one_thread():
    """A context running BLAS on one thread (threadpoolctl, if installed).

    The parallel kernel already runs one LAPACK call per core; stevd's
    matrix products would start BLAS threads of their own on top, and on 2
    cores 4 spinning threads were slower than 2 (10 x 1000 eigenpairs).
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a dependency; optional at run time
        return contextlib.nullcontext()
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def solve(driver, d2, e2, il, iu, m, tol, vectors, serial):
    """Run LAPACK ``driver`` on each matrix of the batch.

    Parameters
    ----------
    driver : str
        A key of ``_full_spectrum.DRIVER_CODES``.
    d2, e2 : ndarray, shapes (B, n), (B, n-1)
        C-contiguous, one float dtype.
    il, iu : ndarray of int64, shape (B,)
        Eigenvalues ``il[b] .. iu[b] - 1`` (0-based) of matrix b;
        ``iu - il <= m``.  The whole-spectrum drivers need il = 0, iu = n = m.
    m : int
        Output columns.
    tol : float
        Absolute tolerance (LAPACK stebz's ``abstol``; the other drivers
        have none).
    vectors : bool
        Eigenvectors too.
    serial : bool
        Run the serial twin of the kernel.

    Returns
    -------
    w : ndarray, shape (B, m)
        Eigenvalues ascending; NaN after the ``iu[b] - il[b]`` found.
    v : ndarray, shape (B, n, m), or None
        A view of the kernel's (B, m, n) array (each vector contiguous).
    info : ndarray of int32, shape (B,)
        ``_full_spectrum`` codes: negative for non-finite input.
    """
    nb, n = d2.shape
    dtype = d2.dtype
    code = F.DRIVER_CODES[driver]
    w = np.empty((nb, m), dtype)
    vt = np.empty((nb, m, n) if vectors else (1, 1, 1), dtype)
    info = np.zeros(nb, np.int32)
    if nb and m:
        lwork, liwork = F.workspace_sizes(code, n, vectors)
        nchunk = 1 if serial else min(nb, numba.get_num_threads())
        work = np.empty((nchunk, lwork), dtype)
        iwork = np.empty((nchunk, liwork), np.int32)
        args = (code, vectors, d2, e2, il, iu, float(tol), work, iwork, w, vt, info)
        if nchunk == 1:
            F.full_spectrum_serial(*args)
        elif vectors and driver in ("stevd", "stemr"):
            with _blas_on_one_thread():
                F.full_spectrum_parallel(*args)
        else:
            F.full_spectrum_parallel(*args)
    return w, (vt.swapaxes(1, 2) if vectors else None), info


def raise_info(info, batch, driver):
    """LinAlgError naming the first failed matrix's batch index (info > 0)."""
    bad = np.flatnonzero(info > 0)
    if not bad.size:
        return
    idx = tuple(int(i) for i in np.unravel_index(bad[0], batch)) if batch else ()
    code = int(info[bad[0]])
    routine = {"lapack_stebz": "stebz/stein"}.get(driver, driver)
    if code == F.INFO_INTERNAL:
        raise RuntimeError(f"LAPACK ?{routine} rejected an argument for the matrix at batch index {idx}: a bug in tridiag_numba")
    what = {
        F.INFO_NO_CONVERGENCE: "did not converge",
        F.INFO_VEC_NO_CONVERGENCE: "eigenvectors did not converge",
        F.INFO_COUNT: "found fewer eigenvalues than requested",
    }[code]
    raise np.linalg.LinAlgError(f"LAPACK ?{routine} {what} for the matrix at batch index {idx} ({bad.size} matrices failed)")
