"""Public differentiable functions: ``tridiag_eigvalsh`` and ``tridiag_eigh``.

Error convention (the same as the numpy API, :mod:`tridiag_numba`): ``ValueError``
for bad shapes, ``k`` out of range, an unknown backend or non-finite values;
``TypeError`` for unsupported dtypes and a non-integer ``k``.  Tensors on a device
other than the CPU (or ``meta``) reach the custom ops, whose dispatcher raises
``NotImplementedError`` naming the backend: nothing is copied between devices.
"""

import operator
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor, _C

from torch_bridge._autograd import apply_eigh, apply_eigvalsh, apply_eigvalsh_eager
from torch_bridge._ops import BACKENDS, call_op, call_op_below_autograd, kth_eigvalsh_op

__all__ = ["TridiagEighResult", "tridiag_eigvalsh", "tridiag_eigh"]


class TridiagEighResult(NamedTuple):
    """What :func:`tridiag_eigh` returns (as ``torch.linalg.eigh``'s named tuple)."""

    #: Tensor, shape (...,) or (..., K)
    eigenvalues: Tensor
    #: Tensor, shape (..., n) or (..., n, K): eigenvectors as columns
    eigenvectors: Tensor


# So that torch.export can save programs returning it (pytree needs a stable name).
torch.utils._pytree._register_namedtuple(TridiagEighResult, serialized_type_name="torch_bridge.TridiagEighResult")

_VMAP = _C._functorch.TransformType.Vmap
_is_wrapped = _C._functorch.is_functorch_wrapped_tensor
_unwrap = _C._functorch.get_unwrapped
_FLOATS = (torch.float32, torch.float64)
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _as_float_tensor(name, x):
    if not isinstance(x, Tensor):
        x = torch.as_tensor(x)
    dtype = x.dtype
    if dtype in _FLOATS:
        return x
    if dtype in _LOW_PRECISION and x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        # As the ops' autocast rule (and torch.linalg.eigvalsh): computed in float32.
        # Cast here, before autograd sees the inputs, so that gradients come back as
        # the inputs' dtype through the cast.
        return x.to(torch.float32)
    if dtype == torch.bool or not (x.is_floating_point() or x.is_complex()):
        return x.to(torch.float64)  # integers/bool: float64 (exact for every int32; torch has no LAPACK dtype rule)
    raise TypeError(f"{name} must be a float32 or float64 tensor, got dtype {dtype}")


def _check_k(k, n):
    if not -n <= k < n:
        raise ValueError(f"k must be in [-n, n) = [{-n}, {n}), got {k}")


def _prepare(d, e, k, backend, broadening):
    """Validate and broadcast to one batch shape; returns ``(d, e, k, ks, broadening, several)``.

    The index as the ops take it: an int ``k`` in ``[-n, n)`` for every matrix (``ks``
    None), or ``ks``, an int64 tensor on the inputs' device, of the batch shape or 0-d
    (then ``k`` is 0).  ``several``: ``k`` was a sequence, whose axis is the last batch axis.
    """
    if k.__class__ is int and d.__class__ is Tensor and e.__class__ is Tensor and broadening.__class__ is float:
        # The common call, checked as below in a few comparisons (a quarter of the time).
        dtype = d.dtype
        ds = d.shape
        es = e.shape
        n = ds[-1] if ds else 0
        if (
            dtype is e.dtype
            and dtype in _FLOATS
            and n
            and es[:-1] == ds[:-1]
            and len(es) == len(ds)
            and es[-1] == n - 1
            and -n <= k < n
            and broadening >= 0.0
            and backend in BACKENDS
        ):
            return d, e, k, None, broadening, False
    return _prepare_general(d, e, k, backend, broadening)


def _prepare_general(d, e, k, backend, broadening):
    """:func:`_prepare` for any input."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {set(BACKENDS)}, got {backend!r}")
    broadening = float(broadening)
    if not broadening >= 0.0:
        raise ValueError(f"eigvec_broadening must be >= 0, got {broadening}")
    d = _as_float_tensor("d", d)
    e = _as_float_tensor("e", e)
    if d.ndim < 1 or d.shape[-1] == 0:
        raise ValueError(f"d must have shape (..., n) with n >= 1, got {tuple(d.shape)}")
    n = d.shape[-1]
    if e.ndim < 1 or e.shape[-1] != n - 1:
        raise ValueError(f"e must have shape (..., n - 1) = (..., {n - 1}), got {tuple(e.shape)}")
    if d.dtype != e.dtype:
        dtype = torch.promote_types(d.dtype, e.dtype)
        d, e = d.to(dtype), e.to(dtype)

    several = False
    if k.__class__ is not int and not isinstance(k, Tensor) and not isinstance(k, Sequence):
        try:
            k = operator.index(k)
        except TypeError:
            raise TypeError(f"k must be an int, a sequence of ints or an integer tensor, got {type(k).__name__}") from None
    if k.__class__ is int:
        _check_k(k, n)
        if d.shape[:-1] == e.shape[:-1]:
            return d, e, k, None, broadening, False  # nothing to broadcast
        batch = _broadcast_batch(d, e, ())
        return _expand(d, batch, n), _expand(e, batch, n - 1), k, None, broadening, False
    if isinstance(k, Tensor):
        if k.is_floating_point() or k.is_complex() or k.dtype == torch.bool:
            raise TypeError(f"k must be an integer or integer tensor, got dtype {k.dtype}")
        k = k.to(device=d.device, dtype=torch.int64)
    elif isinstance(k, Sequence):
        try:
            ks = [operator.index(kj) for kj in k]
        except TypeError:
            raise TypeError(f"k must be an int, a sequence of ints or an integer tensor, got {k!r}") from None
        if not ks:
            raise ValueError("k must not be an empty sequence")
        for kj in ks:
            _check_k(kj, n)
        # Built on the inputs' device, whatever torch.set_default_device says.
        k = torch.tensor(ks, dtype=torch.int64, device=d.device)
        several = True

    if several:
        # Several k's: a new batch axis of length len(k) in front of n.
        d, e = d.unsqueeze(-2), e.unsqueeze(-2)
        batch = torch.broadcast_shapes(d.shape[:-1], e.shape[:-1], k.shape)
    elif k.ndim == 0 and d.shape[:-1] == e.shape[:-1]:
        batch = d.shape[:-1]  # the common case, without broadcasting overhead
    else:
        batch = _broadcast_batch(d, e, k.shape)
    return _expand(d, batch, n), _expand(e, batch, n - 1), 0, (k if k.ndim == 0 else k.expand(batch)), broadening, several


def _broadcast_batch(d, e, k_shape):
    try:
        return torch.broadcast_shapes(d.shape[:-1], e.shape[:-1], k_shape)
    except RuntimeError:
        raise ValueError(
            f"batch shapes do not broadcast: d {tuple(d.shape[:-1])}, e {tuple(e.shape[:-1])}, "
            f"k {tuple(k_shape)}"
        ) from None


def _expand(x, batch, size):
    return x if x.shape[:-1] == batch else x.expand(*batch, size)


def _has_tangent(d, e):
    """Whether ``d`` or ``e`` carries a forward-mode AD tangent."""
    if getattr(fwAD, "_current_level", 0) < 0:
        return False  # no forward-AD level entered: no tangents exist
    return fwAD.unpack_dual(d).tangent is not None or fwAD.unpack_dual(e).tangent is not None


def _requires_grad(x):
    """``x.requires_grad`` of the tensor under any ``torch.vmap`` wrappers (which hide it)."""
    while _is_wrapped(x):
        x = _unwrap(x)
    return x.requires_grad


def _values_only(d, e):
    """Whether no derivative can be asked of an eigenvalue of ``d``, ``e``: then the
    eigenvector is not computed.

    Conservative under ``torch.compile`` (no whenever grad mode is on or a transform is
    active) and under ``torch.func`` transforms other than ``vmap`` (always no).
    """
    if torch.compiler.is_compiling():
        return not (torch.is_grad_enabled() or _C._are_functorch_transforms_active())
    transforms = _C._functorch.get_interpreter_stack()
    if transforms and any(t.key() != _VMAP for t in transforms):
        return False
    if torch.is_grad_enabled() and (_requires_grad(d) or _requires_grad(e)):
        return False
    return not _has_tangent(d, e)  # forward mode works under no_grad too


def tridiag_eigvalsh(d, e, k, *, backend="numba", eigvec_broadening=0.0):
    """k-th eigenvalue of symmetric tridiagonal matrices, differentiable.

    Parameters
    ----------
    d : Tensor, shape (..., n)
        Diagonals: float32 or float64 on the CPU (meta and fake tensors give shapes;
        integer tensors promote to float64; under ``torch.autocast("cpu")`` float16
        and bfloat16 are computed in float32, as ``torch.linalg.eigvalsh``).
    e : Tensor, shape (..., n - 1)
        Off-diagonals.  The batch shapes of ``d``, ``e`` (and a tensor ``k``) broadcast.
    k : int, sequence of int, or integer Tensor
        0-based index into the ascending eigenvalues; negative counts from the
        top (-1 is the largest).  A tensor broadcasts against the batch; a
        sequence of ``K`` ints adds a trailing output axis of length ``K``.
    backend : {"numba", "scipy"}, optional
        ``"numba"`` (default): the batched kernels of :mod:`tridiag_numba`.
        ``"scipy"``: a loop of :func:`scipy.linalg.eigh_tridiagonal` calls
        (``select='i'``), the reference and baseline.
    eigvec_broadening : float, optional
        Relative broadening of the eigenvector term; matters for second
        derivatives only.  See :func:`tridiag_eigh`.

    Returns
    -------
    w : Tensor, shape (...,) or (..., K)
        ``d``'s dtype.  Gradients: ``dw/dd_i = v_i^2``, ``dw/de_i = 2 v_i v_{i+1}``.

    Raises
    ------
    ValueError
        Bad shapes, ``k`` out of range, unknown backend, NaN/inf entries.
    TypeError
        Unsupported dtypes (float16 and bfloat16 outside autocast, complex) or a
        non-integer ``k``.
    NotImplementedError
        Tensors on another device than the CPU (the dispatcher's error; no silent
        device copies).

    Notes
    -----
    Without autograd (grad mode off, or no input requiring grad, and no
    forward-mode tangent or ``torch.func`` transform) only the eigenvalue is computed
    (bisection, op ``tridiag_numba::kth_eigvalsh``); otherwise the eigenpair, of which
    the eigenvalue and its derivatives ``v**2``, ``2 v_i v_{i+1}`` are kept for backward
    (:class:`TridiagEigvalshFunction`, op ``tridiag_numba::kth_eigvalsh_grad``).  Works
    under ``torch.compile(fullgraph=True)``, ``torch.func`` (``grad``, ``jacrev``,
    ``jacfwd``, ``vmap``, also compiled), double backward, batched gradients
    (``is_grads_batched``), ``torch.jit.trace`` and ``torch.export``.

    Examples
    --------
    >>> import torch
    >>> from torch_bridge import tridiag_eigvalsh
    >>> d = torch.tensor([2.0, 0.0, 1.0], dtype=torch.float64, requires_grad=True)
    >>> e = torch.tensor([1.0, 0.5], dtype=torch.float64)
    >>> w = tridiag_eigvalsh(d, e, -1, backend="scipy")
    >>> dense = torch.diag(d) + torch.diag(e, 1) + torch.diag(e, -1)
    >>> torch.allclose(w, torch.linalg.eigvalsh(dense)[-1])
    True
    >>> w.backward()
    >>> float(d.grad.sum())  # sum of v_i^2
    1.0
    >>> tridiag_eigvalsh(d.detach(), e, [0, 2], backend="scipy").shape
    torch.Size([2])
    """
    d, e, k, ks, broadening, _ = _prepare(d, e, k, backend, eigvec_broadening)
    if _C._are_functorch_transforms_active() or torch.compiler.is_compiling():
        if _values_only(d, e):
            return call_op(kth_eigvalsh_op, d, e, k, ks, backend)
        return apply_eigvalsh(d, e, k, ks, backend, broadening)[0]
    # Plain eager mode: _values_only's and apply_eigvalsh's checks, made once.
    if (torch.is_grad_enabled() and (d.requires_grad or e.requires_grad)) or _has_tangent(d, e):
        return apply_eigvalsh_eager(d, e, k, ks, backend, broadening)[0]
    return call_op_below_autograd(kth_eigvalsh_op, d, e, k, ks, backend)


def tridiag_eigh(d, e, k, *, backend="numba", eigvec_broadening=0.0):
    """k-th eigenpair of symmetric tridiagonal matrices, differentiable in both outputs.

    Parameters
    ----------
    d : Tensor, shape (..., n)
        Diagonals (float32 or float64, CPU).
    e : Tensor, shape (..., n - 1)
        Off-diagonals; batch shapes broadcast.
    k : int, sequence of int, or integer Tensor
        As in :func:`tridiag_eigvalsh`; a sequence of ``K`` ints adds an axis:
        eigenvalues (..., K), eigenvectors (..., n, K) as columns.
    backend : {"numba", "scipy"}, optional
        See :func:`tridiag_eigvalsh`.
    eigvec_broadening : float, optional
        Relative broadening ``eps_b >= 0`` of the eigenvector derivative.  0
        (default) matches ``torch.linalg.eigh``: the derivative contains
        ``1 / (w_j - w_k)``, which blows up as another eigenvalue approaches
        ``w_k``.  With ``eps_b > 0`` that factor becomes the Lorentzian
        ``(w_j - w_k) / ((w_j - w_k)^2 + eta^2)``, ``eta = eps_b * ||T||_1``
        (max absolute row sum), bounded by ``1 / (2 eta)``; computed with one
        complex-shifted tridiagonal solve.  Derivatives of that broadened
        gradient (double backward through ``v``) then raise.

    Returns
    -------
    TridiagEighResult
        Named tuple, as ``torch.linalg.eigh``'s:

        eigenvalues : Tensor, shape (...,) or (..., K)
            The k-th eigenvalue(s).
        eigenvectors : Tensor, shape (..., n) or (..., n, K)
            The unit eigenvector(s), as columns for a sequence ``k`` (as
            ``torch.linalg.eigh(T).eigenvectors[..., k]``); the entry of largest
            magnitude is positive.

    Raises
    ------
    ValueError, TypeError, NotImplementedError
        As :func:`tridiag_eigvalsh`.

    Notes
    -----
    Backward: ``u = (T - w I)^+ g_v`` by one O(n) tridiagonal LU solve (no dense
    matrix, no other eigenpairs), then ``g_d = g_w v^2 - u v`` and
    ``g_e,i = 2 g_w v_i v_{i+1} - (u_i v_{i+1} + u_{i+1} v_i)``.  The eigenvector
    is determined up to sign only: use sign-invariant losses (e.g. of ``v**2``)
    when comparing with other solvers.  An unreduced tridiagonal matrix
    (``e_i != 0``) has simple eigenvalues, but they can be arbitrarily close:
    then the eigenvector itself is ill-conditioned and so is its gradient.

    Examples
    --------
    >>> import torch
    >>> from torch_bridge import tridiag_eigh
    >>> d = torch.tensor([2.0, 0.0, 1.0], dtype=torch.float64)
    >>> e = torch.tensor([1.0, 0.5], dtype=torch.float64, requires_grad=True)
    >>> w, v = tridiag_eigh(d, e, 0, backend="scipy")
    >>> T = torch.diag(d) + torch.diag(e, 1) + torch.diag(e, -1)
    >>> torch.allclose(T @ v, w * v)
    True
    >>> (v[0] ** 2).backward()
    >>> e.grad.shape
    torch.Size([2])
    >>> both = tridiag_eigh(d, e.detach(), [0, -1])   # eigenvectors as columns
    >>> both.eigenvalues.shape, both.eigenvectors.shape
    (torch.Size([2]), torch.Size([3, 2]))
    >>> torch.allclose(T.detach() @ both.eigenvectors, both.eigenvectors * both.eigenvalues)
    True
    """
    d, e, k, ks, broadening, several = _prepare(d, e, k, backend, eigvec_broadening)
    w, v = apply_eigh(d, e, k, ks, backend, broadening)
    return TridiagEighResult(w, v.transpose(-1, -2) if several else v)
