"""Batch drivers: the ``numba.prange`` loops over chunks of matrices/jobs and
their serial twins, the chunk size and the thread count.

Every ``*_parallel`` driver has a ``*_serial`` twin with the same body
(see :mod:`._jit` for why); the numpy layer picks one.  The thread count is
:func:`_num_threads` (numba's, read cheaply), :func:`chunk_size` makes
one chunk per thread, :func:`engine_chunk` one block per chunk.
"""

import numba
from numba import prange
from numba.np.ufunc import parallel as _parallel

from ._bisect import _kth_block
from ._jit import kernel_inner, kernel_parallel, kernel_serial
from ._layout import LANES
from ._stein import _inverse_iteration
from ._stein_lanes import _eigvec_block
from ._sturm import _sturm_count_value


def chunk_size(M):
    """Jobs per parallel chunk of the lane QL and all-vectors kernels: one
    chunk per thread (for the bisection engine see :func:`engine_chunk`).

    Slots refill from the chunk's queue, so only the last passes of a chunk
    run with idle slots (the tail, ~5-10 passes waiting for the slowest
    eigenvalues).  One chunk per thread pays that tail once per thread;
    jobs cost about the same, so static balance is good.
    """
    return max(1, -(-M // _num_threads()))


#: Below this many jobs a serial call of the bisection engine runs them
#: through one block, refilling its slots (see :func:`engine_chunk`).
_REFILL_MAX = LANES + LANES // 2


def engine_chunk(M, parallel):
    """Jobs per chunk of the bisection engine's kernels (``kth_eigenvalues_*``,
    ``kth_eigenpairs_*``) for ``M`` jobs: one block of LANES.

    Measured on 2 cores (tight loops, 16 <= n <= 1000, float32 and float64,
    one or ten eigenvalues per matrix, eigenvalues and eigenpairs): chunks of
    one block ran 0.60-0.93x the time of one chunk per thread in parallel,
    and 0.67-1.04x one chunk of all jobs serially (1.04 at n = 1000, within
    the noise).  So a block whose slots refill from a long queue costs more
    per job than fresh blocks, against what :func:`chunk_size` assumes; why
    was not pinned down (a refill loads one matrix into its slot alone, where
    a fresh block loads LANES together; a chunk's eigenvectors follow its
    eigenvalues while its matrices are still in cache).  Many chunks also let
    the threads balance the load when another library's threads hold a
    core.  Only a serial call of fewer than ``_REFILL_MAX`` jobs is cheaper
    as one block with a few refills (33 jobs: 26 against 33 us at n = 100)
    than with a second, mostly idle block.  The results do not depend on the
    chunks (each slot's passes are its own; ``tests/test_core_threads.py``
    runs chunks of 1, 5, 31, 32, 33 and all jobs).
    """
    if parallel or M >= _REFILL_MAX:
        return LANES
    return max(M, 1)


def _num_threads():
    """``numba.get_num_threads()``, in ~0.1 us instead of ~0.7 us.

    The public function takes two locks on every call to check that the
    threading layer is up; once it is, its ctypes getter gives the same
    answer.  (Not callable from a cached kernel: numba refuses to cache
    functions that hold its ctypes pointer.)
    """
    global _get_num_threads
    if _get_num_threads is None:
        count = numba.get_num_threads()  # starts the threading layer
        _get_num_threads = getattr(_parallel, "_get_num_threads", None) or numba.get_num_threads
        return count
    return _get_num_threads()


_get_num_threads = None


@kernel_parallel
def kth_eigenvalues_parallel(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ws, info):
    """Eigenvalue ``lane_k[j]`` of matrix ``lane_b[j]`` into ``w[j]``.

    d (B, n), e (B, n-1), lane_b/lane_k (M,) int64 with 0 <= lane_k < n;
    outputs w (M,), ws (M,) and info (M,) int32: ``w`` the eigenvalues, ``ws``
    those of the matrices scaled by :func:`_scale_exponent`'s power of two.  Chunks of ``chunk`` jobs run in
    parallel, each through one block of LANES slots.
    """
    M = lane_b.shape[0]
    nchunks = (M + chunk - 1) // chunk
    for c in prange(nchunks):
        start = c * chunk
        stop = min(start + chunk, M)
        _kth_block(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info)


@kernel_serial
def kth_eigenvalues_serial(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ws, info):
    """Serial twin of :func:`kth_eigenvalues_parallel`."""
    M = lane_b.shape[0]
    nchunks = (M + chunk - 1) // chunk
    for c in range(nchunks):
        start = c * chunk
        stop = min(start + chunk, M)
        _kth_block(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info)


@kernel_parallel
def value_counts_parallel(d, e, vl, vu, eps, safemin, il, iu):
    """Index range [il, iu) of the eigenvalues in the half-open (vl, vu].

    ``il``/``iu`` (B,) int64 outputs; -1 marks a non-finite matrix.
    ``eps``/``safemin`` of the dtype, as for the eigenvalue kernel: the
    counts are those of the matrix split as it splits it
    (:func:`._sturm._sturm_count_value`).
    """
    B = d.shape[0]
    for b in prange(B):
        il[b] = _sturm_count_value(d, e, b, vl, eps, safemin)
        iu[b] = _sturm_count_value(d, e, b, vu, eps, safemin)


@kernel_serial
def value_counts_serial(d, e, vl, vu, eps, safemin, il, iu):
    """Serial twin of :func:`value_counts_parallel`."""
    B = d.shape[0]
    for b in range(B):
        il[b] = _sturm_count_value(d, e, b, vl, eps, safemin)
        iu[b] = _sturm_count_value(d, e, b, vu, eps, safemin)


@kernel_parallel
def eigenvectors_parallel(d, e, w, kidx, mcount, eps, safemin, v, info):
    """Eigenvectors for each matrix of the batch.

    d (B, n), e (B, n-1), w (B, m) ascending scaled eigenvalues (as the
    eigenvalue kernel writes them) with global indices
    kidx (B, m), mcount (B,) how many of the m are valid, v (B, n, m) output,
    info (B,) int32 output.  Parallel over matrices: vectors of one matrix
    depend on each other through cluster re-orthogonalisation.
    """
    B = d.shape[0]
    for b in prange(B):
        info[b] = _inverse_iteration(d, e, b, w[b], kidx[b], mcount[b], v[b], eps, safemin)


@kernel_serial
def eigenvectors_serial(d, e, w, kidx, mcount, eps, safemin, v, info):
    """Serial twin of :func:`eigenvectors_parallel`."""
    B = d.shape[0]
    for b in range(B):
        info[b] = _inverse_iteration(d, e, b, w[b], kidx[b], mcount[b], v[b], eps, safemin)


@kernel_parallel
def redo_vectors_parallel(d, e, ws, kidx, rows, eps, safemin, v, info):
    """LAPACK dstein's full loop (:func:`._stein._inverse_iteration`) for the
    matrices ``rows`` (int64), one vector each, in place in ``v`` (B, n, 1)
    and ``info``: the lanes :func:`eigenvector1_parallel` and
    :func:`kth_eigenpairs_parallel` left (``INFO_VEC_REDO``).  ``ws``, ``kidx``
    (B, 1) as those kernels took them: the call they made themselves before,
    now compiled only when a program needs it."""
    for j in prange(rows.shape[0]):
        b = rows[j]
        info[b] = _inverse_iteration(d, e, b, ws[b], kidx[b], 1, v[b], eps, safemin)


@kernel_serial
def redo_vectors_serial(d, e, ws, kidx, rows, eps, safemin, v, info):
    """Serial twin of :func:`redo_vectors_parallel`."""
    for j in range(rows.shape[0]):
        b = rows[j]
        info[b] = _inverse_iteration(d, e, b, ws[b], kidx[b], 1, v[b], eps, safemin)


@kernel_inner
def _even_blocks(count):
    """(number, size) of blocks of at most LANES matrices covering ``count``,
    split evenly: 50 = 25 + 25, not 32 + 18 (a block costs its full width)."""
    nblocks = (count + LANES - 1) // LANES
    return nblocks, (count + nblocks - 1) // nblocks


@kernel_parallel
def eigenvector1_parallel(d, e, ws, kidx, eps, safemin, v, info):
    """One eigenvector per matrix (m = 1, no cluster to re-orthogonalise),
    LANES matrices interleaved per block, blocks in parallel.  Same
    arguments as :func:`eigenvectors_parallel` without ``mcount``; a matrix
    the lanes cannot finish gets ``info = INFO_VEC_REDO`` and no vector
    (the caller runs :func:`redo_vectors_serial`/``_parallel`` on it:
    ``_api._redo_vectors``)."""
    B = d.shape[0]
    nblocks, size = _even_blocks(B)
    for blk in prange(nblocks):
        _eigvec_block(d, e, ws, kidx, blk * size, min(blk * size + size, B), eps, safemin, v, info)


@kernel_serial
def eigenvector1_serial(d, e, ws, kidx, eps, safemin, v, info):
    """Serial twin of :func:`eigenvector1_parallel`."""
    B = d.shape[0]
    nblocks, size = _even_blocks(B)
    for blk in range(nblocks):
        _eigvec_block(d, e, ws, kidx, blk * size, min(blk * size + size, B), eps, safemin, v, info)


@kernel_inner(inline="always")
def _kth_pair_chunk(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info, v, vinfo):
    """Eigenvalues of matrices start..stop (one per matrix), then their
    eigenvectors in even blocks of at most LANES.

    Inlined into the two drivers (numba IR; it allocates nothing, so the
    parfor pass has nothing to hoist): as a function of its own its library
    -- both block kernels -- would be optimised and compiled to machine code
    once more on the first call (~2 s).
    """
    _kth_block(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info)
    ws2 = ws.reshape(ws.shape[0], 1)
    kidx = lane_k.reshape(lane_k.shape[0], 1)
    nblocks, size = _even_blocks(stop - start)
    for blk in range(nblocks):
        s0 = start + blk * size
        _eigvec_block(d, e, ws2, kidx, s0, min(s0 + size, stop), eps, safemin, v, vinfo)


@kernel_parallel
def kth_eigenpairs_parallel(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ws, info, v, vinfo):
    """:func:`kth_eigenvalues_parallel` and :func:`eigenvector1_parallel` in one
    parallel region, for one eigenvalue per matrix (``lane_b = arange(B)``).

    Each thread computes the vectors of the eigenvalues it has just computed:
    one launch instead of two, and the matrices are still in its cache.
    Outputs as the two kernels': w, ws (B,), info (B,) int32, v (B, n, 1),
    vinfo (B,) int32 (``INFO_VEC_REDO``: see :func:`eigenvector1_parallel`).
    """
    M = lane_b.shape[0]
    nchunks = (M + chunk - 1) // chunk
    for c in prange(nchunks):
        start = c * chunk
        stop = min(start + chunk, M)
        _kth_pair_chunk(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info, v, vinfo)


@kernel_serial
def kth_eigenpairs_serial(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ws, info, v, vinfo):
    """Serial twin of :func:`kth_eigenpairs_parallel`."""
    M = lane_b.shape[0]
    nchunks = (M + chunk - 1) // chunk
    for c in range(nchunks):
        start = c * chunk
        stop = min(start + chunk, M)
        _kth_pair_chunk(d, e, lane_b, lane_k, start, stop, abstol, eps, safemin, w, ws, info, v, vinfo)
