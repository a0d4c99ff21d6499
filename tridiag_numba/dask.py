"""The numpy API on dask arrays: lazy, chunked along the batch.

``tridiag_numba.kth_eigenvalue`` and the other public functions hand a call
to this module when ``d``, ``e`` (or ``k``) is a :class:`dask.array.Array`,
and return lazy dask arrays; the functions here are the same four under
their own names, for callers who want a dask result from numpy input too.

Design:

* One task per batch chunk runs the numpy function on that chunk
  (:func:`dask.array.apply_gufunc`, signature ``(n),(n-1)->()`` and so on),
  so every check, promotion and kernel of the numpy path is the one that runs,
  and results are bit-identical to it (every eigenvalue request is computed
  independently of the other matrices of a batch).  ``lapack_driver='auto'``
  picks its algorithm by the batch's size: each task picks it for the *whole*
  batch (``_drivers.whole_batch``), not for its chunk.  One choice depends on
  the data -- wide ranges of eigenpairs of matrices that all split into small
  blocks go to LAPACK stebz + stein -- and is made per chunk: there a chunk
  may take another algorithm than the whole batch would, and its results
  then differ from the numpy path's in the last bits (within the same bounds).
* The matrix axis must be whole in a task.  A split matrix axis is
  *rechunked*, not rejected: the result is well defined, and the merge only
  concatenates the pieces of the same matrices (no shuffle across the batch);
  a block grows by the number of pieces, its batch chunks stay.
* Inside a task the *serial* kernels run: dask supplies the parallelism (one
  task per worker thread), the convention dask.distributed applies to BLAS and
  OpenMP (its workers start with ``OMP_NUM_THREADS=1``).  A parallel kernel
  per task would put ``threads x numba threads`` on the cores -- and numba's
  ``workqueue`` layer aborts when two threads launch parallel kernels.
* Validation that needs only shapes and dtypes happens when the graph is
  built, with the numpy path's messages.  What needs the data -- non-finite
  input with ``check_finite=True``, ``k`` out of range when ``k`` is itself a
  dask array -- raises the numpy path's exception from the task, i.e. at
  ``compute()``.  ``select='v'`` needs the largest eigenvalue count of the
  batch for the output width, so it counts eigenvalues first (one eager pass
  of two Sturm counts per matrix).

dask is imported when a function runs, not when this module is imported.

Examples
--------
>>> import dask.array as da
>>> import numpy as np
>>> import tridiag_numba as tn
>>> d = da.from_array(np.full((6, 4), 2.0), chunks=(3, 4))
>>> e = da.from_array(np.full((6, 3), -1.0), chunks=(3, 3))
>>> w = tn.kth_eigenvalue(d, e, 0)        # lazy: shape (6,), chunks ((3, 3),)
>>> w.chunks
((3, 3),)
>>> bool(np.allclose(w.compute(scheduler="sync"), 2 - 2 * np.cos(np.pi / 5)))
True
"""

import math

import numpy as np

from . import _api
from . import _drivers
from . import _validate

__all__ = ["eigh_tridiagonal", "eigvalsh_tridiagonal", "kth_eigenpair", "kth_eigenvalue", "per_task"]


def _da():
    import dask.array

    return dask.array


def _is_dask(x):
    return isinstance(x, _da().Array)


# ---------------------------------------------------------- tasks (per chunk)


def per_task(fn):
    """``fn`` made to run the serial kernels: for functions that dask calls
    on numpy blocks, e.g. ``xarray.apply_ufunc(..., dask="parallelized")`` or
    ``dask.array.map_blocks``.

    Parameters
    ----------
    fn : callable
        A function of :mod:`tridiag_numba` (or any function calling one).

    Returns
    -------
    callable
        ``fn`` with the same arguments and results, whose kernels run on the
        calling thread only (bit-identical results).

    Examples
    --------
    >>> import numpy as np
    >>> import tridiag_numba as tn
    >>> from tridiag_numba.dask import per_task
    >>> f = per_task(tn.kth_eigenvalue)
    >>> round(float(f(np.full(3, 2.0), np.full(2, -1.0), 0)), 12)
    0.585786437627
    """
    return _PerTask(fn)


class _PerTask:
    # A class, not a closure: tasks are pickled to dask.distributed workers.
    # ``whole``: (matrices, eigenvalues per matrix) of the whole batch, so
    # that a chunk takes the algorithm the whole batch would take.
    def __init__(self, fn, whole=(None, None)):
        self.fn = fn
        self.whole = whole
        self.__name__ = getattr(fn, "__name__", "per_task")
        self.__doc__ = getattr(fn, "__doc__", None)

    def __call__(self, *args, **kwargs):
        with _api.serial_kernels(), _drivers.whole_batch(*self.whole):
            try:
                return self.fn(*args, **kwargs)
            except np.linalg.LinAlgError as exc:
                # The batch index in the message is the one inside this chunk.
                raise np.linalg.LinAlgError(f"{exc} [index within one dask chunk of the batch]") from None


def _kth_task(d, e, k=None, *, kk=None, pair, check_finite, tol, nb):
    fn = _api.kth_eigenpair if pair else _api.kth_eigenvalue
    return _PerTask(fn, (nb, None))(d, e, kk if k is None else k, check_finite=check_finite, tol=tol)


def _eigh_task(d, e, *, m, select, select_range, check_finite, tol, eigvals_only, lapack_driver, nb):
    out = _PerTask(_api.eigh_tridiagonal, (nb, m))(
        d, e, eigvals_only=eigvals_only, select=select, select_range=select_range, check_finite=check_finite, tol=tol,
        lapack_driver=lapack_driver,
    )
    w, v = (out, None) if eigvals_only else out
    if w.shape[-1] < m:
        # select='v': this chunk's largest count is below the batch's; pad
        # with NaN rows/columns exactly as the numpy path pads a whole batch.
        w = np.concatenate([w, np.full(w.shape[:-1] + (m - w.shape[-1],), np.nan, w.dtype)], axis=-1)
        if v is not None:
            v = np.concatenate([v, np.full(v.shape[:-1] + (m - v.shape[-1],), np.nan, v.dtype)], axis=-1)
    return w if eigvals_only else (w, v)


def _count_task(d, e, *, select, select_range, check_finite):
    """The number of eigenvalues in ``select_range`` of each matrix of a chunk."""
    with _api.serial_kernels():
        d2, e2, batch, n, _ = _validate._prepare(d, e)
        il, iu, _, _ = _api._parse_select(select, select_range, n, d2, e2, check_finite)
    return (iu - il).reshape(batch)


# ------------------------------------------------------------ graph building


def _as_input(x, name):
    """``x`` as a dask array of real numbers in native byte order (the numpy
    path's error otherwise); the solver dtype is chosen from both operands."""
    da = _da()
    if not _is_dask(x):
        x = np.asarray(x)
    dtype = _validate._as_real_array(np.empty(0, x.dtype), name).dtype
    x = da.asarray(x)
    if any(math.isnan(s) for s in x.shape):
        raise ValueError(f"{name} has unknown chunk sizes (shape {x.shape}); call {name}.compute_chunk_sizes() first")
    return x if x.dtype == dtype else x.astype(dtype)


def _broadcast_batch(d, e, k_shape=()):
    """The numpy path's shape checks and messages (``_validate._prepare``);
    returns (batch, n)."""
    n = _validate._core_size(d, e)
    return _validate._batch_shape(d, e, k_shape), n


def _batch_chunks(batch, arrays, dtype, n):
    """Batch chunks for every operand: those of the first dask operand that
    spans the whole batch, else dask's auto chunks."""
    for x, core in arrays:
        if _is_dask(x) and x.shape[: x.ndim - core] == batch:
            return x.chunks[: len(batch)]
    return _da().core.normalize_chunks("auto", batch + (n,), dtype=dtype)[: len(batch)]


def _align(x, batch, chunks, core_size):
    """``x`` broadcast to ``batch`` (+ a core axis of ``core_size``) with the
    given batch chunks and the core axis in one chunk.

    A split matrix axis is merged here: a block then holds the same matrices
    as before and grows by the number of pieces the axis was split into.
    """
    core = () if core_size is None else (core_size,)
    shape = batch + core
    target = chunks + tuple((c,) for c in core)
    # Chunks of x's own axes (size-1 axes stay one chunk; they broadcast).
    own = tuple((1,) if s == 1 else t for s, t in zip(x.shape, target[len(target) - x.ndim :]))
    x = x.rechunk(own)
    return x if x.shape == shape else _da().broadcast_to(x, shape, chunks=target)


def _operands(d, e, k=None):
    """Validated, broadcast and aligned dask operands: (d, e, k, batch, n, dtype).

    ``k`` comes back as an int (normalised), a dask int64 array over the
    batch, or None (no ``k`` argument).
    """
    given = [(d, 1), (e, 1), (k, 0)]  # the caller's chunking decides, not da.asarray's
    d = _as_input(d, "d")
    e = _as_input(e, "e")
    k_arr = None
    if k is not None and not _is_dask(k) and not _validate._is_int_scalar(k):
        k_arr = np.asarray(k)
    elif k is not None and _is_dask(k):
        k_arr = k
    batch, n = _broadcast_batch(d, e, () if k_arr is None else k_arr.shape)
    dtype = _validate._solver_dtype(d.dtype, e.dtype)
    if k is not None:
        if k_arr is None:
            k = _validate._normalise_k(k, n)  # int: checked now
        elif _is_dask(k_arr):
            _validate._normalise_k(np.empty(0, k_arr.dtype), n)  # dtype now; range in the tasks
        else:
            k_arr = _validate._normalise_k(k_arr, n)
    chunks = _batch_chunks(batch, given, dtype, n)
    d = _align(d.astype(dtype), batch, chunks, n)
    e = _align(e.astype(dtype), batch, chunks, n - 1)
    if k_arr is not None:
        k = _align(_da().asarray(k_arr), batch, chunks, None)
    return d, e, k, batch, n, dtype


def _meta(ndim, dtype):
    return np.empty((0,) * ndim, dtype)


# --------------------------------------------------------------- public API


def kth_eigenvalue(d, e, k, *, check_finite=True, tol=0.0):
    """:func:`tridiag_numba.kth_eigenvalue` as a lazy dask array.

    Parameters
    ----------
    d : dask or numpy array, shape (..., n)
    e : dask or numpy array, shape (..., n-1)
    k : int or (dask) array of int, broadcast against the batch
    check_finite, tol
        As :func:`tridiag_numba.kth_eigenvalue`.

    Returns
    -------
    w : dask.array.Array, shape (...)
        Chunked like the batch of ``d`` (or of the first dask operand).

    Raises
    ------
    ValueError, TypeError
        Shapes, dtypes and ``k`` (an int or numpy ``k``) now; non-finite
        input and the range of a dask ``k`` at ``compute()``.

    Examples
    --------
    >>> import dask.array as da
    >>> from tridiag_numba.dask import kth_eigenvalue
    >>> w = kth_eigenvalue(da.ones((4, 3), chunks=2), da.zeros((4, 2), chunks=2), -1)
    >>> w.shape, w.dtype, w.compute(scheduler="sync").tolist()
    ((4,), dtype('float64'), [1.0, 1.0, 1.0, 1.0])
    """
    tol = _validate._check_tol(tol)
    d, e, k, batch, n, dtype = _operands(d, e, k)
    args, sig, kwargs = _k_args(d, e, k, "()")
    return _da().apply_gufunc(
        _kth_task, sig, *args, meta=_meta(len(batch), dtype), pair=False, check_finite=check_finite, tol=tol,
        nb=math.prod(batch), **kwargs
    )


def _k_args(d, e, k, out):
    if isinstance(k, int):
        return (d, e), f"(n),(m)->{out}", {"kk": k}
    return (d, e, k), f"(n),(m),()->{out}", {}


def kth_eigenpair(d, e, k, *, check_finite=True, tol=0.0):
    """:func:`tridiag_numba.kth_eigenpair` as lazy dask arrays.

    Parameters
    ----------
    d, e, k, check_finite, tol
        As :func:`kth_eigenvalue` of this module.

    Returns
    -------
    w : dask.array.Array, shape (...)
    v : dask.array.Array, shape (..., n)
        Batch chunks as ``w``; the vector axis in one chunk.

    Examples
    --------
    >>> import dask.array as da
    >>> from tridiag_numba.dask import kth_eigenpair
    >>> w, v = kth_eigenpair(da.ones((4, 3), chunks=2), da.zeros((4, 2), chunks=2), 0)
    >>> v.shape, v.chunks
    ((4, 3), ((2, 2), (3,)))
    """
    tol = _validate._check_tol(tol)
    d, e, k, batch, n, dtype = _operands(d, e, k)
    args, sig, kwargs = _k_args(d, e, k, "(),(n)")
    meta = (_meta(len(batch), dtype), _meta(len(batch) + 1, dtype))
    return _da().apply_gufunc(
        _kth_task, sig, *args, meta=meta, pair=True, check_finite=check_finite, tol=tol, nb=math.prod(batch), **kwargs
    )


def eigh_tridiagonal(
    d, e, eigvals_only=False, select="a", select_range=None, check_finite=True, tol=0.0, lapack_driver="auto"
):
    """:func:`tridiag_numba.eigh_tridiagonal` as lazy dask arrays.

    Parameters
    ----------
    d : dask or numpy array, shape (..., n)
    e : dask or numpy array, shape (..., n-1)
    eigvals_only, select, select_range, check_finite, tol, lapack_driver
        As :func:`tridiag_numba.eigh_tridiagonal`.

    Returns
    -------
    w : dask.array.Array, shape (..., m)
    v : dask.array.Array, shape (..., n, m)
        Only when ``eigvals_only=False``.

    Notes
    -----
    ``m`` must be known to build the graph: ``n`` for ``'a'``, the index
    range for ``'i'``, and for ``'v'`` the largest eigenvalue count in
    ``(min, max]`` over the batch, which is computed here (one pass of two
    Sturm counts per matrix); its rows are NaN-padded as on the numpy path.

    Examples
    --------
    >>> import dask.array as da
    >>> from tridiag_numba.dask import eigh_tridiagonal
    >>> w, v = eigh_tridiagonal(da.ones((4, 3), chunks=2), da.zeros((4, 2), chunks=2), select="i", select_range=(1, 2))
    >>> w.shape, v.shape, v.chunks
    ((4, 2), (4, 3, 2), ((2, 2), (3,), (2,)))
    """
    _drivers.check_driver(lapack_driver)
    tol = _validate._check_tol(tol)
    d, e, _, batch, n, dtype = _operands(d, e)
    # select / select_range checked with the numpy path's code, on no matrices.
    _, _, m, padded = _api._parse_select(select, select_range, n, np.empty((0, n), dtype), np.empty((0, n - 1), dtype), check_finite)
    _drivers.check_combination(lapack_driver, _api._select_kind(select), eigvals_only)
    if padded:
        counts = _da().apply_gufunc(
            _count_task, "(n),(m)->()", d, e, meta=_meta(len(batch), np.int64),
            select=select, select_range=select_range, check_finite=check_finite,
        )
        m = int(counts.max().compute()) if counts.size else 0
    kwargs = dict(m=m, select=select, select_range=select_range, check_finite=check_finite, tol=tol, eigvals_only=eigvals_only,
                  lapack_driver=lapack_driver, nb=math.prod(batch))
    b = len(batch)
    if eigvals_only:
        return _da().apply_gufunc(_eigh_task, "(n),(l)->(j)", d, e, output_sizes={"j": m}, meta=_meta(b + 1, dtype), **kwargs)
    meta = (_meta(b + 1, dtype), _meta(b + 2, dtype))
    return _da().apply_gufunc(_eigh_task, "(n),(l)->(j),(n,j)", d, e, output_sizes={"j": m}, meta=meta, **kwargs)


def eigvalsh_tridiagonal(d, e, select="a", select_range=None, check_finite=True, tol=0.0, lapack_driver="auto"):
    """:func:`tridiag_numba.eigvalsh_tridiagonal` as a lazy dask array.

    Parameters
    ----------
    d, e, select, select_range, check_finite, tol, lapack_driver
        As :func:`eigh_tridiagonal` of this module.

    Returns
    -------
    w : dask.array.Array, shape (..., m)

    Examples
    --------
    >>> import dask.array as da
    >>> from tridiag_numba.dask import eigvalsh_tridiagonal
    >>> eigvalsh_tridiagonal(da.zeros((5, 3), chunks=2), da.ones((5, 2), chunks=2)).chunks
    ((2, 2, 1), (3,))
    """
    return eigh_tridiagonal(
        d, e, eigvals_only=True, select=select, select_range=select_range,
        check_finite=check_finite, tol=tol, lapack_driver=lapack_driver,
    )
