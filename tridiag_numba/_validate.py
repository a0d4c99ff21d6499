"""Checks of the numpy API's arguments, and the conversions they imply.

Each function names the argument at fault in its error (``ValueError`` for
values and shapes, :class:`ArgumentTypeError` for types); none calls a kernel.
"""

import math

import numpy as np

__all__ = ["ArgumentTypeError"]

_ndarray = np.ndarray


class ArgumentTypeError(TypeError, ValueError):
    """An argument of a type or dtype the solvers do not take.

    A ``TypeError``, as this package raises for types, and a ``ValueError``,
    which is what :mod:`scipy.linalg` raises for the same input (object or
    string arrays, a non-integer ``select_range`` with ``select='i'``, a
    ``tol`` that is not a number): code written against scipy's functions
    catches it too (numpy's ``AxisError`` is a ``ValueError`` and an
    ``IndexError`` for the same reason).
    """


def _as_real_array(x, name):
    """``x`` as an array of real numbers (bool, integer or floating) in native
    byte order, without a copy when it already is one; see :func:`_solver_dtype`."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise ArgumentTypeError(f"{name} must be a real array (float, integer or bool); got dtype {a.dtype}")
    if not a.dtype.isnative:
        # Byte-swapped input (e.g. '>f8' read from a file): the kernels are
        # compiled for native floats only.
        a = a.astype(a.dtype.newbyteorder("="))
    return a


def _solver_dtype(*dtypes):
    """The dtype the solvers compute in (and return), scipy.linalg's rule:
    the result type of the inputs and float32, so float16, bool and integers
    of up to 16 bits give float32, wider integers float64; longdouble is
    computed in float64, as LAPACK does for scipy."""
    dtype = np.result_type(*dtypes, np.float32)
    return _F64 if dtype.itemsize > 8 else dtype


_F64 = np.dtype(np.float64)


def _raise_nonfinite(d2, e2):
    """Raise the ValueError of ``check_finite=True``, naming the argument.

    The kernels detect non-finite matrices themselves (info < 0) while they
    scale them, so the common, finite case costs no extra pass over the data.
    """
    name = "d" if not np.isfinite(d2).all() else "e"
    raise ValueError(
        f"{name} must contain only finite values (found NaN or inf); "
        "pass check_finite=False to get NaN results for those matrices instead"
    )


def _core_size(d, e):
    """n, after checking the matrix axes of ``d`` (..., n) and ``e`` (..., n-1)
    (anything with ``ndim`` and ``shape``: numpy or dask arrays)."""
    if d.ndim < 1:
        raise ValueError(f"d must have shape (..., n) with n >= 1; got a scalar (shape {d.shape})")
    n = d.shape[-1]
    if n == 0:
        raise ValueError(f"d must have shape (..., n) with n >= 1; got shape {d.shape} (n = 0)")
    if e.ndim < 1 or e.shape[-1] != n - 1:
        raise ValueError(f"e must have shape (..., n-1) = (..., {n - 1}) to match d of shape {d.shape}; got e of shape {e.shape}")
    return n


def _batch_shape(d, e, extra_batch=()):
    """The broadcast batch shape of ``d`` (..., n), ``e`` (..., n-1) and
    ``extra_batch`` (``k``'s shape), or a ValueError quoting all three."""
    try:
        return np.broadcast_shapes(d.shape[:-1], e.shape[:-1], tuple(extra_batch))
    except ValueError:
        raise ValueError(
            f"batch shapes do not broadcast: d {d.shape[:-1]} (from shape {d.shape}), e {e.shape[:-1]} (from shape {e.shape})"
            + (f", k {tuple(extra_batch)}" if len(extra_batch) else "")
        ) from None


def _prepare(d, e, extra_batch=()):
    """Validate ``d``/``e``; return (d2, e2, batch_shape, n, dtype).

    d2 is (B, n) and e2 (B, n-1), C-contiguous, writeable, of one float dtype,
    broadcast to ``batch_shape`` (which also absorbs ``extra_batch``).
    """
    if d.__class__ is _ndarray and e.__class__ is _ndarray and not extra_batch:
        # Fast path for the common call (~2 us of a ~40 us 50x100 call):
        # same float dtype, matching shapes, C-contiguous and writeable.
        ds = d.shape
        es = e.shape
        dt = d.dtype
        if ds and len(es) == len(ds) and es[-1] == ds[-1] - 1 >= 0 and es[:-1] == ds[:-1] and dt is e.dtype and dt.char in "fd" and dt.isnative:
            # carray: C-contiguous, writeable and aligned (one flag read each)
            if d.flags.carray and e.flags.carray:
                n = ds[-1]
                if len(ds) == 2:
                    return d, e, ds[:-1], n, dt
                nb = d.size // n
                return d.reshape(nb, n), e.reshape(nb, n - 1), ds[:-1], n, dt
    d = _as_real_array(d, "d")
    e = _as_real_array(e, "e")
    n = _core_size(d, e)
    batch = d.shape[:-1]
    if e.shape[:-1] != batch or (extra_batch and tuple(extra_batch) != batch):
        batch = _batch_shape(d, e, extra_batch)
        if d.shape[:-1] != batch:
            d = np.broadcast_to(d, batch + (n,))
        if e.shape[:-1] != batch:
            e = np.broadcast_to(e, batch + (n - 1,))
    dtype = _solver_dtype(d.dtype, e.dtype)
    nb = math.prod(batch)
    d2 = _contiguous(d, dtype).reshape(nb, n)
    e2 = _contiguous(e, dtype).reshape(nb, n - 1)
    return d2, e2, batch, n, dtype


def _is_int_scalar(k):
    return isinstance(k, (int, np.integer)) and not isinstance(k, bool)


def _prepare_k(d, e, k):
    """_prepare plus k: k becomes an int, or an int64 array over the batch."""
    if k.__class__ is int or _is_int_scalar(k):
        d2, e2, batch, n, dtype = _prepare(d, e)
        return d2, e2, batch, n, (int(k) % n if -n <= k < n else _normalise_k(k, n)), dtype
    kk = np.asarray(k)
    d2, e2, batch, n, dtype = _prepare(d, e, extra_batch=kk.shape)
    kk = np.ascontiguousarray(np.broadcast_to(_normalise_k(kk, n), batch)).reshape(-1)
    if not kk.flags.writeable:
        # broadcast_to's view (k already of the batch's shape): read-only is another
        # numba type, i.e. a second compile of every kernel beside the int-k path's.
        kk = kk.copy()
    return d2, e2, batch, n, kk, dtype


def _contiguous(a, dtype):
    # One memory layout per dtype (C-contiguous, writeable): every other
    # combination would be a separate numba compile of seconds.
    out = np.ascontiguousarray(a, dtype=dtype)
    return out if out.flags.writeable else out.copy()


def _check_tol(tol):
    if tol.__class__ is float and math.isfinite(tol):
        return tol
    try:
        tol = float(tol)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"tol must be a real number; got {tol!r}") from None
    if not math.isfinite(tol):
        raise ValueError(f"tol must be finite; got {tol}")
    return tol


def _normalise_k(k, n):
    """k in [0, n) from k in [-n, n): a Python int, or an int64 array."""
    if _is_int_scalar(k):
        if not -n <= k < n:
            raise ValueError(f"k must satisfy -n <= k < n for n = {n}; got k = {k}")
        return int(k) % n
    k = np.asarray(k)
    if k.dtype.kind not in "iu":
        raise TypeError(f"k must be an integer or an integer array; got dtype {k.dtype}")
    if k.size:
        kmin, kmax = int(k.min()), int(k.max())
        if kmin < -n or kmax >= n:
            raise ValueError(f"k must satisfy -n <= k < n for n = {n}; got k in [{kmin}, {kmax}]")
    return np.where(k < 0, k + n, k).astype(np.int64)


_CONSTS = {np.dtype(t): (float(np.finfo(t).eps), float(np.finfo(t).tiny)) for t in (np.float32, np.float64)}


def _consts(dtype):
    c = _CONSTS.get(dtype)  # a dtype instance: no np.dtype() call (~0.2 us)
    return c if c is not None else _CONSTS[np.dtype(dtype)]


def _raise_info(info, batch, what):
    """Translate kernel info codes into LinAlgError naming the batch index."""
    if not np.count_nonzero(info):
        return
    bad = np.flatnonzero(info > 0)
    if bad.size:
        idx = np.unravel_index(bad[0], batch) if batch else ()
        raise np.linalg.LinAlgError(
            f"{what} did not converge for the matrix at batch index {tuple(int(i) for i in idx)}"
            f" ({bad.size} matrices failed)"
        )
