"""The kernels as ``torch.library`` custom ops (no autograd of their own).

Three ops, each taking tensors with one common batch shape ``B`` (the public
functions broadcast before calling them):

* ``tridiag_numba::kth_eigvalsh(d (B, n), e (B, n-1), k (B) int64, backend) -> w (B)``
* ``tridiag_numba::kth_eigh(d, e, k, backend) -> (w (B), v (B, n))``
* ``tridiag_numba::pinv_solve(d, e, w (B), v (B, n), b (B, n), broadening) -> u (B, n)``

Each has a fake (meta) kernel with the real kernel's shape, dtype and (contiguous)
strides, and a vmap rule that folds the vmapped dimension into the batch, so
``torch.compile(fullgraph=True)`` traces through them and ``torch.vmap`` makes one
batched kernel call.  Autograd lives in :mod:`torch_bridge._autograd`: an outer
``torch.autograd.Function`` whose backward calls these ops again, which is what makes
double backward, ``torch.func`` and compile work together (``register_autograd`` on
the op alone fails under ``torch.func``, pytorch issue 179652).
"""

import numpy as np
import torch
from torch import Tensor, _C

__all__ = ["BACKENDS", "kth_eigvalsh_op", "kth_eigh_op", "pinv_solve_op", "plain_eager"]

#: Accepted values of ``backend``.
BACKENDS = ("numba", "scipy")


# --------------------------------------------------------------------------- numpy backends
def _scipy_eigh_k(d, e, k, eigvals_only):
    """Baseline: one LAPACK call (``dstebz`` + ``dstein``) per matrix, a Python loop."""
    from scipy.linalg import eigh_tridiagonal

    batch, n = d.shape[:-1], d.shape[-1]
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
        out = eigh_tridiagonal(d2[j], e2[j], eigvals_only=eigvals_only, select="i", select_range=(kj, kj))
        if eigvals_only:
            w[j] = out[0]
        else:
            w[j] = out[0][0]
            v[j] = out[1][:, 0]
    w = w.reshape(batch)
    return w if eigvals_only else (w, v.reshape(d.shape))


def _numpy_eigvalsh_k(backend, d, e, k):
    if backend == "scipy":
        return _scipy_eigh_k(d, e, k, eigvals_only=True)
    from tridiag_numba import kth_eigenvalue

    return kth_eigenvalue(d, e, k)


def _numpy_eigh_k(backend, d, e, k):
    if backend == "scipy":
        return _scipy_eigh_k(d, e, k, eigvals_only=False)
    from tridiag_numba import kth_eigenpair

    return kth_eigenpair(d, e, k)


def _numpy_pinv_solve(d, e, w, v, b, broadening):
    from tridiag_numba._pinv import pinv_solve

    return pinv_solve(d, e, w, v, b, broadening=broadening)


_NUMPY_DTYPE = {torch.float32: np.float32, torch.float64: np.float64}


def _fresh(x, dtype, *inputs) -> np.ndarray:
    """``x`` as a C-contiguous, writeable array of ``dtype`` never aliasing ``inputs``.

    ``x`` itself when the kernel returned a suitable array of its own (the usual case);
    otherwise a copy (opcheck checks that outputs neither alias inputs nor each other).
    """
    want = _NUMPY_DTYPE[dtype]
    if type(x) is np.ndarray and x.dtype == want:
        flags = x.flags
        if flags.c_contiguous and flags.writeable:
            for a in inputs:  # a loop, not any(<generator>): this runs on every call
                if np.may_share_memory(x, a):
                    break
            else:
                return x
    return np.array(x, dtype=want, order="C", copy=True)


def _from_numpy(x, dtype, *inputs) -> Tensor:
    """:func:`_fresh` as a tensor (zero-copy)."""
    return torch.from_numpy(_fresh(x, dtype, *inputs))


def _k_numpy(k):
    return k.numpy() if isinstance(k, Tensor) else k


# --------------------------------------------------------------------------- implementations
# Plain functions on CPU tensors (``k``: an int or an int64 tensor broadcasting against
# the batch).  The custom ops below call them; so does the eager fast path of
# :mod:`torch_bridge._functional` / :mod:`torch_bridge._autograd`, which skips the
# custom-op dispatch (tens of microseconds a call) when nothing traces or transforms.
def kth_eigvalsh_impl(d: Tensor, e: Tensor, k, backend: str) -> Tensor:
    if d.shape[:-1].numel() == 0:
        return d.new_empty(d.shape[:-1])
    dn, en = d.detach().numpy(), e.detach().numpy()
    return _from_numpy(_numpy_eigvalsh_k(backend, dn, en, _k_numpy(k)), d.dtype, dn, en)


def kth_eigh_arrays(d: Tensor, e: Tensor, k, backend: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`kth_eigh_impl` returning numpy arrays (fresh: never aliasing ``d``, ``e`` or each other)."""
    want = _NUMPY_DTYPE[d.dtype]
    if d.shape[:-1].numel() == 0:
        return np.empty(d.shape[:-1], want), np.empty(d.shape, want)
    dn, en = d.detach().numpy(), e.detach().numpy()
    w, v = _numpy_eigh_k(backend, dn, en, _k_numpy(k))
    w = _fresh(w, d.dtype, dn, en)
    return w, _fresh(v, d.dtype, dn, en, w)


def kth_eigh_impl(d: Tensor, e: Tensor, k, backend: str) -> tuple[Tensor, Tensor]:
    w, v = kth_eigh_arrays(d, e, k, backend)
    return torch.from_numpy(w), torch.from_numpy(v)


def pinv_solve_impl(d: Tensor, e: Tensor, w: Tensor, v: Tensor, b: Tensor, broadening: float) -> Tensor:
    if d.shape[:-1].numel() == 0:
        return torch.empty_like(b, memory_format=torch.contiguous_format)
    arrays = tuple(x.detach().numpy() for x in (d, e, w, v, b))
    return _from_numpy(_numpy_pinv_solve(*arrays, broadening), b.dtype, *arrays)


# --------------------------------------------------------------------------- ops
@torch.library.custom_op("tridiag_numba::kth_eigvalsh", mutates_args=())
def kth_eigvalsh_op(d: Tensor, e: Tensor, k: Tensor, backend: str) -> Tensor:
    """k-th eigenvalue of each matrix: w (B,)."""
    return kth_eigvalsh_impl(d, e, k, backend)


@kth_eigvalsh_op.register_fake
def _(d, e, k, backend):
    return d.new_empty(d.shape[:-1])


@torch.library.custom_op("tridiag_numba::kth_eigh", mutates_args=())
def kth_eigh_op(d: Tensor, e: Tensor, k: Tensor, backend: str) -> tuple[Tensor, Tensor]:
    """k-th eigenpair of each matrix: w (B,), v (B, n)."""
    return kth_eigh_impl(d, e, k, backend)


@kth_eigh_op.register_fake
def _(d, e, k, backend):
    return d.new_empty(d.shape[:-1]), d.new_empty(d.shape)


@torch.library.custom_op("tridiag_numba::pinv_solve", mutates_args=())
def pinv_solve_op(d: Tensor, e: Tensor, w: Tensor, v: Tensor, b: Tensor, broadening: float) -> Tensor:
    """u = P (T - w I)^+ P b (broadened: P Re[(T - (w + i eta) I)^{-1}] P b): u (B, n)."""
    return pinv_solve_impl(d, e, w, v, b, broadening)


@pinv_solve_op.register_fake
def _(d, e, w, v, b, broadening):
    return torch.empty_like(b, memory_format=torch.contiguous_format)


# --------------------------------------------------------------------------- eager fast path
_is_wrapped = _C._functorch.is_functorch_wrapped_tensor


def plain_eager(*tensors) -> bool:
    """Whether the kernels may be called directly instead of through the custom ops.

    True in plain eager mode: not compiling (checked first, so dynamo never traces the
    rest), no ``torch.func`` transform active, no dispatch or torch-function mode
    (fake tensors, ``make_fx``/export tracing, ...), and plain ``torch.Tensor`` inputs.
    Then a direct call is exactly what the op would do, minus its dispatch overhead.
    """
    if torch.compiler.is_compiling():
        return False
    for x in tensors:
        if type(x) is not Tensor or _is_wrapped(x):
            return False
    return not (
        _C._are_functorch_transforms_active()
        or _C._len_torch_dispatch_stack()
        or _C._is_torch_function_mode_enabled()
    )


# --------------------------------------------------------------------------- vmap rules
def _batch_first(x, bdim, size):
    """Move the vmapped dimension of ``x`` to the front (expanding unbatched inputs)."""
    if bdim is None:
        return x.expand(size, *x.shape)
    return x.movedim(bdim, 0)


@torch.library.register_vmap(kth_eigvalsh_op)
def _(info, in_dims, d, e, k, backend):
    d, e, k = (_batch_first(x, bd, info.batch_size) for x, bd in zip((d, e, k), in_dims[:3]))
    return kth_eigvalsh_op(d, e, k, backend), 0


@torch.library.register_vmap(kth_eigh_op)
def _(info, in_dims, d, e, k, backend):
    d, e, k = (_batch_first(x, bd, info.batch_size) for x, bd in zip((d, e, k), in_dims[:3]))
    return kth_eigh_op(d, e, k, backend), (0, 0)


@torch.library.register_vmap(pinv_solve_op)
def _(info, in_dims, d, e, w, v, b, broadening):
    args = (_batch_first(x, bd, info.batch_size) for x, bd in zip((d, e, w, v, b), in_dims[:5]))
    return pinv_solve_op(*args, broadening), 0
