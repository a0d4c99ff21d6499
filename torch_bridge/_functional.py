"""Public differentiable functions: ``tridiag_eigvalsh`` and ``tridiag_eigh``."""

import operator
from collections.abc import Sequence

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor

from torch_bridge._autograd import apply_eigh, apply_eigvalsh_eager
from torch_bridge._ops import BACKENDS, kth_eigvalsh_impl, kth_eigvalsh_op, plain_eager

__all__ = ["tridiag_eigvalsh", "tridiag_eigh"]


_FLOATS = (torch.float32, torch.float64)


def _as_float_tensor(name, x):
    if not isinstance(x, Tensor):
        x = torch.as_tensor(x)
    if not x.is_cpu:
        raise ValueError(
            f"{name} is on device {x.device!s}; tridiag_numba's kernels run on the CPU only: "
            f"pass {name}.cpu() (and move the result back) explicitly"
        )
    if x.dtype in _FLOATS:
        return x
    if x.dtype == torch.bool or not (x.is_floating_point() or x.is_complex()):
        return x.to(torch.float64)  # integers/bool promote to float64, as in the numpy API
    raise TypeError(f"{name} must be a float32 or float64 tensor, got dtype {x.dtype}")


def _prepare(d, e, k, backend, broadening):
    """Validate and broadcast to one batch shape; returns ``(d, e, k, broadening)``.

    ``k`` comes back as an int (a single int ``k``, left for the eager fast path to pass
    straight to the numpy API; :func:`_k_tensor` makes the op's tensor) or as an int64
    tensor of the batch shape.
    """
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
    if isinstance(k, Tensor):
        if k.is_floating_point() or k.is_complex() or k.dtype == torch.bool:
            raise TypeError(f"k must be an integer or integer tensor, got dtype {k.dtype}")
        k = k.to(device=d.device, dtype=torch.int64)
    elif isinstance(k, Sequence):
        ks = [operator.index(kj) for kj in k]
        if not ks:
            raise ValueError("k must not be an empty sequence")
        for kj in ks:
            if not -n <= kj < n:
                raise ValueError(f"k must be in [-n, n) = [{-n}, {n}), got {kj}")
        k = torch.tensor(ks, dtype=torch.int64)
        several = True
    else:
        try:
            k = operator.index(k)
        except TypeError:
            raise TypeError(f"k must be an int, a sequence of ints or an integer tensor, got {type(k).__name__}") from None
        if not -n <= k < n:
            raise ValueError(f"k must be in [-n, n) = [{-n}, {n}), got {k}")
        if d.shape[:-1] == e.shape[:-1]:
            return d, e, k, broadening  # the common case, without broadcasting overhead
        k = torch.tensor(k, dtype=torch.int64)

    if several:
        # Several k's: a new batch axis of length len(k) in front of n.
        d, e = d.unsqueeze(-2), e.unsqueeze(-2)
        batch = torch.broadcast_shapes(d.shape[:-1], e.shape[:-1], k.shape)
    elif k.ndim == 0 and d.shape[:-1] == e.shape[:-1]:
        batch = d.shape[:-1]  # the common case, without broadcasting overhead
    else:
        try:
            batch = torch.broadcast_shapes(d.shape[:-1], e.shape[:-1], k.shape)
        except RuntimeError:
            raise ValueError(
                f"batch shapes do not broadcast: d {tuple(d.shape[:-1])}, e {tuple(e.shape[:-1])}, "
                f"k {tuple(k.shape)}"
            ) from None
    if d.shape[:-1] != batch:
        d = d.expand(*batch, n)
    if e.shape[:-1] != batch:
        e = e.expand(*batch, n - 1)
    k = k.expand(batch)
    return d, e, k, broadening


def _k_tensor(k, d):
    """``k`` as the ops take it: an int64 tensor of the batch shape of ``d``."""
    if isinstance(k, Tensor):
        return k
    return torch.tensor(k, dtype=torch.int64).expand(d.shape[:-1])


def _has_tangent(d, e):
    """Whether ``d`` or ``e`` carries a forward-mode AD tangent."""
    if getattr(fwAD, "_current_level", 0) < 0:
        return False  # no forward-AD level entered: no tangents exist
    return fwAD.unpack_dual(d).tangent is not None or fwAD.unpack_dual(e).tangent is not None


def _needs_autograd(d, e):
    """Whether an eigenvector is needed for derivatives (reverse or forward mode)."""
    return (torch.is_grad_enabled() and (d.requires_grad or e.requires_grad)) or _has_tangent(d, e)


def tridiag_eigvalsh(d, e, k, *, backend="numba", eigvec_broadening=0.0):
    """k-th eigenvalue of symmetric tridiagonal matrices, differentiable.

    Parameters
    ----------
    d : Tensor, shape (..., n)
        Diagonals (float32 or float64, CPU; integer tensors promote to float64).
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
        Bad shapes, ``k`` out of range, unknown backend, NaN/inf entries, or a
        non-CPU tensor (no silent device copies).
    TypeError
        Unsupported dtypes (float16, bfloat16, complex) or a non-integer ``k``.

    Notes
    -----
    Without autograd (grad mode off, or no input requiring grad, and no
    forward-mode tangent) only the eigenvalue is computed (bisection); otherwise
    the eigenvector is computed too and saved for backward.  Works under
    ``torch.compile(fullgraph=True)``, ``torch.func`` (``grad``, ``jacrev``,
    ``jacfwd``, ``vmap``) and double backward.

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
    d, e, k, broadening = _prepare(d, e, k, backend, eigvec_broadening)
    eager = plain_eager(d, e)  # plain eager mode: skip the custom-op dispatch
    if not _needs_autograd(d, e):
        if eager:
            return kth_eigvalsh_impl(d, e, k, backend)
        return kth_eigvalsh_op(d, e, _k_tensor(k, d), backend)
    if eager and not _has_tangent(d, e):  # reverse mode only: v need not be an output
        return apply_eigvalsh_eager(d, e, k, backend, broadening)
    if not eager:
        k = _k_tensor(k, d)
    w, _ = apply_eigh(d, e, k, backend, broadening, eager)
    return w


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
        ``w`` (..., K), ``v`` (..., K, n).
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
    w : Tensor, shape (...,)
        The k-th eigenvalue.
    v : Tensor, shape (..., n)
        Its unit eigenvector; the entry of largest magnitude is positive.

    Raises
    ------
    ValueError, TypeError
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
    """
    d, e, k, broadening = _prepare(d, e, k, backend, eigvec_broadening)
    eager = plain_eager(d, e)
    if not eager:
        k = _k_tensor(k, d)
    return apply_eigh(d, e, k, backend, broadening, eager)
