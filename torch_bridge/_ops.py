"""The kernels as ``torch.library`` custom ops.

Three ops, each taking tensors with one common batch shape ``B`` (the public
functions broadcast before calling them).  The eigenvalue index is ``k``, an int for
every matrix, unless ``ks`` is given: an int64 tensor of shape ``B`` or ``()`` (then
``k`` is ignored).  An int needs no tensor built per call and takes the kernels'
faster path:

* ``tridiag_numba::kth_eigvalsh(d (B, n), e (B, n-1), k, ks (B) or () or None, backend) -> w (B)``
* ``tridiag_numba::kth_eigh(d, e, k, ks, backend, broadening) -> (w (B), v (B, n))``
* ``tridiag_numba::kth_eigvalsh_grad(d, e, k, ks, backend, broadening) -> (w (B), w_d (B, n), w_e (B, n-1))``:
  the eigenvalue with its derivatives ``w_d = dw/dd = v**2``, ``w_e = dw/de = 2 v_i v_{i+1}``
  (what a gradient of the eigenvalue needs; see :mod:`torch_bridge._autograd`)
* ``tridiag_numba::pinv_solve(d, e, w (B), v (B, n), b (B, n), broadening) -> u (B, n)``

Every op has a kernel for the CPU only: tensors on another device get the
dispatcher's ``NotImplementedError`` naming the op and the backend.
Each also has

* a fake kernel (meta tensors, ``FakeTensorMode``, ``torch.compile``, ``torch.export``)
  with the real kernel's shape, dtype and (contiguous) strides;
* a vmap rule folding the vmapped dimension into the batch (one kernel call);
* an autocast rule (``torch.float32`` on the CPU), as ``torch.linalg.eigvalsh``;
* an autograd formula, registered in :mod:`torch_bridge._autograd`, so that a
  ``torch.export``-ed program (which keeps these ops) can be trained.

``broadening`` of ``kth_eigh`` and ``kth_eigvalsh_grad`` does not change their outputs; it is the relative
broadening of the eigenvector derivative, an argument of the op so that an exported
graph carries it to the op's autograd formula.
"""

import sys

import numpy as np
import torch
from torch import Tensor, _C


__all__ = [
    "BACKENDS",
    "LIBRARY",
    "call_op",
    "call_op_below_autograd",
    "kth_eigh_op",
    "kth_eigvalsh_grad_op",
    "kth_eigvalsh_op",
    "pinv_solve_op",
]

#: Accepted values of ``backend``.
BACKENDS = ("numba", "scipy")


# --------------------------------------------------------------------------- numpy backends
def _raise_nonfinite(d, e):
    """The torch layer's error for NaN/inf input (no ``check_finite`` argument to point to)."""
    name = "d" if not np.isfinite(d).all() else "e"
    raise ValueError(f"{name} must contain only finite values (found NaN or inf)")


def _scipy_eigh_k(d, e, k, eigvals_only):
    """Baseline: one LAPACK call (``dstebz`` + ``dstein``) per matrix, a Python loop."""
    from scipy.linalg import eigh_tridiagonal

    batch, n = d.shape[:-1], d.shape[-1]
    if not (np.isfinite(d).all() and np.isfinite(e).all()):
        _raise_nonfinite(d, e)
    nb = int(np.prod(batch))
    d2 = d.reshape(nb, n)
    e2 = e.reshape(nb, n - 1)
    k2 = np.broadcast_to(k, batch).reshape(nb)
    w = np.empty(nb, d.dtype)
    v = None if eigvals_only else np.empty(d2.shape, d.dtype)
    for j in range(nb):
        kj = int(k2[j])
        if not -n <= kj < n:
            raise ValueError(f"k must be in [-n, n) = [{-n}, {n}), got {kj}")
        kj %= n
        if n == 1:  # scipy's LAPACK path needs n >= 2 for select='i'
            w[j] = d2[j, 0]
            if v is not None:
                v[j, 0] = 1.0
            continue
        out = eigh_tridiagonal(
            d2[j], e2[j], eigvals_only=eigvals_only, select="i", select_range=(kj, kj), check_finite=False
        )
        if eigvals_only:
            w[j] = out[0]
        else:
            w[j] = out[0][0]
            v[j] = out[1][:, 0]
    w = w.reshape(batch)
    return w if eigvals_only else (w, v.reshape(d.shape))


def _k_numpy(k, ks):
    """The index for the numpy API: an int (its fast path) for ``ks`` None or 0-d, else an array."""
    if ks is None:
        return k
    return int(ks) if ks.ndim == 0 else ks.numpy(force=True)


#: tridiag_numba._api.kth_prevalidated (its contract: ``d`` (B, n), ``e`` (B, n-1)
#: C-contiguous of one float dtype, ``k`` an int in ``[0, n)``), imported by the first
#: call (numba is heavy).
_entry = None


def _first_call():
    """Import the numpy layer's entry, and hand the engine's parallel calls to
    torch's own intra-op team (:mod:`tridiag_numba._omp_team`): torch's OpenMP
    threads spin for milliseconds after each of its parallel regions, and our
    kernels' own pool fought them for the cores (a training step at batch 2048:
    2.72 ms with torch on 2 threads, 2.02 ms with torch on one)."""
    global _entry
    from tridiag_numba._api import kth_prevalidated

    share_torch_team()
    _entry = kth_prevalidated


def share_torch_team():
    """Run the engine's parallel kernels on torch's intra-op OpenMP team from now
    on (see :func:`_first_call`); returns whether it is in use (GNU OpenMP on
    Linux: torch's CPU wheels)."""
    from tridiag_numba import _omp_team

    if torch.backends.openmp.is_available() and sys.platform.startswith("linux"):
        # The GNU OpenMP runtime torch loaded (its soname; RTLD_NOLOAD: never a new one).
        return _omp_team.use_openmp_runtime("libgomp.so.1")
    return False


def _numpy_kth(backend, d, e, k, want_vectors):
    """``(w, v or None)``: the k-th eigenvalue (and eigenvector) of each matrix of the numpy
    arrays ``d`` (..., n), ``e`` (..., n-1) through the numpy API; ``k`` an int or an int
    array broadcasting against the batch."""
    if backend == "scipy":
        out = _scipy_eigh_k(d, e, k, eigvals_only=not want_vectors)
        return out if want_vectors else (out, None)
    from tridiag_numba import kth_eigenpair, kth_eigenvalue

    if _entry is None:
        _first_call()
    # The kernels flag non-finite matrices for free (NaN results); the check is on w.
    if want_vectors:
        w, v = kth_eigenpair(d, e, k, check_finite=False)
    else:
        w, v = kth_eigenvalue(d, e, k, check_finite=False), None
    if np.isnan(w).any():
        _raise_nonfinite(d, e)
    return w, v


def _numpy_pinv_solve(d, e, w, v, b, broadening):
    from tridiag_numba._pinv import pinv_solve

    return pinv_solve(d, e, w, v, b, broadening=broadening)


_NUMPY_DTYPE = {torch.float32: np.float32, torch.float64: np.float64}
_derivatives = None  # tridiag_numba._eigenvalue_derivatives.eigenvalue_derivatives, imported by the first call


def _fresh(x, dtype, *inputs):
    """``x`` as a C-contiguous array of ``dtype`` never aliasing ``inputs`` (``x`` itself
    when the kernel returned a suitable array of its own, the usual case).

    opcheck checks that outputs alias neither inputs nor each other.
    """
    if type(x) is np.ndarray and x.dtype == dtype:
        flags = x.flags
        if flags.c_contiguous and flags.writeable:
            for a in inputs:  # a loop, not any(<generator>): this runs on every call
                if np.may_share_memory(x, a):
                    break
            else:
                return x
    return np.array(x, dtype=dtype, order="C", copy=True)


# --------------------------------------------------------------------------- ops
# Defined with torch.library.Library rather than torch.library.custom_op: the same
# registrations (schema, CPU kernel, fake kernel, vmap, autocast, autograd), without
# custom_op's Python wrappers around the kernel (~50 us a call measured in a training
# step here).  The dispatcher calls the kernels only with plain CPU tensors, below
# autograd, functorch and every mode (they may still carry requires_grad, hence
# ``numpy(force=True)``, which detaches).
#: The library holding the ops' registrations (they last as long as it does).
LIBRARY = torch.library.Library("tridiag_numba", "DEF")


def _define(schema, kernel, fake):
    """Define ``tridiag_numba::<schema>`` with a CPU kernel and a fake kernel; return its overload."""
    name = schema.split("(", 1)[0]
    LIBRARY.define(schema)
    LIBRARY.impl(name, kernel, "CPU")
    qualname = f"tridiag_numba::{name}"
    torch.library.register_fake(qualname, fake, lib=LIBRARY)
    # As torch.linalg.eigvalsh: low-precision inputs are computed in float32.
    torch.library.register_autocast(qualname, "cpu", torch.float32, lib=LIBRARY)
    return getattr(torch.ops.tridiag_numba, name).default


def _kth(d: Tensor, e: Tensor, k: int, ks: Tensor | None, backend: str, want_vectors: bool):
    """The common part of the CPU kernels of ``kth_eigvalsh`` (``want_vectors`` False),
    ``kth_eigh`` and ``kth_eigvalsh_grad``: ``(w (B), v (B, n) or None)`` as new
    C-contiguous numpy arrays of the inputs' dtype."""
    dtype = d.dtype
    if ks is None and backend == "numba" and dtype is e.dtype and dtype in _NUMPY_DTYPE and d.is_contiguous() and e.is_contiguous():
        # What the public functions pass (see _prepare): the numpy layer's entry for
        # validated input, without a second round of checks and copies (same results).
        if _entry is None:
            _first_call()
        dn, en = d.numpy(force=True), e.numpy(force=True)
        shape = dn.shape
        n = shape[-1] if shape else 0
        if n and dn.size and en.shape == shape[:-1] + (n - 1,) and -n <= k < n:
            if len(shape) == 2:
                w, v, nonfinite = _entry(dn, en, k % n, want_vectors)
            else:
                nb = dn.size // n
                w, v, nonfinite = _entry(dn.reshape(nb, n), en.reshape(nb, n - 1), k % n, want_vectors)
                w, v = w.reshape(shape[:-1]), (None if v is None else v.reshape(shape))
            if nonfinite is not None:
                _raise_nonfinite(dn, en)
            return w, v
    dn, en = d.numpy(force=True), e.numpy(force=True)
    shape = dn.shape
    if shape[:-1].count(0):  # an empty batch
        return np.empty(shape[:-1], dn.dtype), np.empty(shape, dn.dtype)
    want = _NUMPY_DTYPE.get(dtype)
    if want is None:  # integers, which the numpy API promotes (the public functions do so first)
        raise TypeError(f"d must be a float32 or float64 tensor, got dtype {dtype}")
    w, v = _numpy_kth(backend, dn, en, _k_numpy(k, ks), want_vectors)
    return _fresh(w, want, dn, en), (None if v is None else _fresh(v, want, dn, en, w))


def _kth_eigvalsh(d: Tensor, e: Tensor, k: int, ks: Tensor | None, backend: str) -> Tensor:
    """k-th eigenvalue of each matrix: w (B,)."""
    return torch.from_numpy(_kth(d, e, k, ks, backend, False)[0])


def _kth_eigvalsh_fake(d, e, k, ks, backend):
    return d.new_empty(d.shape[:-1])


def _kth_eigh(d: Tensor, e: Tensor, k: int, ks: Tensor | None, backend: str, broadening: float) -> tuple[Tensor, Tensor]:
    """k-th eigenpair of each matrix: w (B,), v (B, n)."""
    w, v = _kth(d, e, k, ks, backend, True)
    return torch.from_numpy(w), torch.from_numpy(v)


def _kth_eigh_fake(d, e, k, ks, backend, broadening):
    return d.new_empty(d.shape[:-1]), d.new_empty(d.shape)


def _kth_eigvalsh_grad(d: Tensor, e: Tensor, k: int, ks: Tensor | None, backend: str, broadening: float):
    """k-th eigenvalue of each matrix and its derivatives: w (B,), w_d = v**2 (B, n),
    w_e = 2 v_i v_{i+1} (B, n-1)."""
    global _derivatives
    if _derivatives is None:
        from tridiag_numba._eigenvalue_derivatives import eigenvalue_derivatives as _derivatives
    w, v = _kth(d, e, k, ks, backend, True)
    shape = v.shape
    n = shape[-1]
    w_d = np.empty(shape, v.dtype)
    w_e = np.empty(shape[:-1] + (n - 1,), v.dtype)
    if not v.size:
        pass  # an empty batch (of any dtype: no kernel call)
    elif len(shape) == 2:
        _derivatives(v, w_d, w_e)
    else:
        nb = v.size // n
        _derivatives(v.reshape(nb, n), w_d.reshape(nb, n), w_e.reshape(nb, n - 1))
    return torch.from_numpy(w), torch.from_numpy(w_d), torch.from_numpy(w_e)


def _kth_eigvalsh_grad_fake(d, e, k, ks, backend, broadening):
    shape = d.shape
    return d.new_empty(shape[:-1]), d.new_empty(shape), d.new_empty(shape[:-1] + (shape[-1] - 1,))


def _pinv_solve(d: Tensor, e: Tensor, w: Tensor, v: Tensor, b: Tensor, broadening: float) -> Tensor:
    """u = P (T - w I)^+ P b (broadened: P Re[(T - (w + i eta) I)^{-1}] P b): u (B, n)."""
    if d.shape[:-1].numel() == 0:
        return torch.empty_like(b, memory_format=torch.contiguous_format)
    arrays = tuple(x.numpy(force=True) for x in (d, e, w, v, b))
    return torch.from_numpy(_fresh(_numpy_pinv_solve(*arrays, broadening), _NUMPY_DTYPE[b.dtype], *arrays))


def _pinv_solve_fake(d, e, w, v, b, broadening):
    return torch.empty_like(b, memory_format=torch.contiguous_format)


kth_eigvalsh_op = _define(
    "kth_eigvalsh(Tensor d, Tensor e, SymInt k, Tensor? ks, str backend) -> Tensor", _kth_eigvalsh, _kth_eigvalsh_fake
)
kth_eigh_op = _define(
    "kth_eigh(Tensor d, Tensor e, SymInt k, Tensor? ks, str backend, float broadening) -> (Tensor, Tensor)",
    _kth_eigh,
    _kth_eigh_fake,
)
kth_eigvalsh_grad_op = _define(
    "kth_eigvalsh_grad(Tensor d, Tensor e, SymInt k, Tensor? ks, str backend, float broadening) -> (Tensor, Tensor, Tensor)",
    _kth_eigvalsh_grad,
    _kth_eigvalsh_grad_fake,
)
pinv_solve_op = _define(
    "pinv_solve(Tensor d, Tensor e, Tensor w, Tensor v, Tensor b, float broadening) -> Tensor",
    _pinv_solve,
    _pinv_solve_fake,
)


def call_op(op, *args):
    """``op(*args)``; with grad mode off, entered below autograd.

    With grad mode off an op's autograd kernel only passes the call on (its check
    costs tens of microseconds in Python); dispatching below autograd skips just that
    step -- tracing, autocast, functorch and dispatch modes still see the call.
    Dynamo traces the plain call.
    """
    if torch.is_grad_enabled() or torch.compiler.is_compiling():
        return op(*args)
    with _C._AutoDispatchBelowAutograd():
        return op(*args)


def call_op_below_autograd(op, *args):
    """``op(*args)`` entered below autograd, for a caller that knows that no derivative
    can be asked of the result (plain eager mode, no input requiring grad or carrying a
    tangent); see :func:`call_op`."""
    with _C._AutoDispatchBelowAutograd():
        return op(*args)


# --------------------------------------------------------------------------- vmap rules
def _batch_first(x, bdim, size):
    """Move the vmapped dimension of ``x`` to the front (expanding unbatched inputs)."""
    if bdim is None:
        return x.expand(size, *x.shape)
    return x.movedim(bdim, 0)


def _ks_batched(ks, bdim, batch):
    """``ks`` for the batch shape ``batch = (size, *B)`` of the vmapped ``d``: None, 0-d, or ``batch``."""
    if bdim is None and (ks is None or ks.ndim == 0):
        return ks
    ks = _batch_first(ks, bdim, batch[0])  # (size,) or (size, *B), or B when unbatched
    return ks.reshape(ks.shape + (1,) * (len(batch) - ks.ndim)).expand(batch)


@torch.library.register_vmap("tridiag_numba::kth_eigvalsh", lib=LIBRARY)
def _(info, in_dims, d, e, k, ks, backend):
    d, e = (_batch_first(x, bd, info.batch_size) for x, bd in zip((d, e), in_dims[:2]))
    return kth_eigvalsh_op(d, e, k, _ks_batched(ks, in_dims[3], d.shape[:-1]), backend), 0


@torch.library.register_vmap("tridiag_numba::kth_eigh", lib=LIBRARY)
def _(info, in_dims, d, e, k, ks, backend, broadening):
    d, e = (_batch_first(x, bd, info.batch_size) for x, bd in zip((d, e), in_dims[:2]))
    return kth_eigh_op(d, e, k, _ks_batched(ks, in_dims[3], d.shape[:-1]), backend, broadening), (0, 0)


@torch.library.register_vmap("tridiag_numba::kth_eigvalsh_grad", lib=LIBRARY)
def _(info, in_dims, d, e, k, ks, backend, broadening):
    d, e = (_batch_first(x, bd, info.batch_size) for x, bd in zip((d, e), in_dims[:2]))
    return kth_eigvalsh_grad_op(d, e, k, _ks_batched(ks, in_dims[3], d.shape[:-1]), backend, broadening), (0, 0, 0)


@torch.library.register_vmap("tridiag_numba::pinv_solve", lib=LIBRARY)
def _(info, in_dims, d, e, w, v, b, broadening):
    args = (_batch_first(x, bd, info.batch_size) for x, bd in zip((d, e, w, v, b), in_dims[:5]))
    return pinv_solve_op(*args, broadening), 0
