"""Autograd for the k-th eigenpair of symmetric tridiagonal matrices.

Notation: ``T`` has diagonal ``d`` (n) and off-diagonal ``e`` (n - 1); ``(w, v)`` is
its k-th eigenpair (``v`` unit); ``P = I - v v^T``; ``R = (T - w I)^+ = P (T - w I)^+ P``.
For a matrix ``M`` only its tridiagonal part matters, contracted as
``<M, dT> = sum_i M_ii dd_i + sum_i (M_{i,i+1} + M_{i+1,i}) de_i``.

Eigenpair (first-order perturbation theory, ``v^T dv = 0``)::

    dw = v^T dT v                  -> gd_i += gw v_i^2,   ge_i += 2 gw v_i v_{i+1}
    dv = -R dT v                   -> u = R gv,
                                      gd_i -= u_i v_i,    ge_i -= u_i v_{i+1} + u_{i+1} v_i

Eigenvalue alone (:class:`TridiagEigvalshFunction`): the op returns ``w`` with its
derivatives ``w_d = v^2``, ``w_e = 2 v_i v_{i+1}`` (computed in the same kernel call,
while ``v`` is in cache), so the first-order backward is ``gd = gw w_d``,
``ge = gw w_e``: two multiplications, no further op call.  ``w_d``, ``w_e`` are
differentiable outputs (functions of ``v``)::

    d(w_d)_i = 2 v_i dv_i,  d(w_e)_i = 2 (dv_i v_{i+1} + v_i dv_{i+1})
                                   -> gv = 2 S v,  S tridiagonal with diagonal g_{w_d}
                                      and off-diagonal g_{w_e},

then ``gv`` goes through the eigenvector term above (``v`` recomputed by
:class:`TridiagEighFunction`, so this is differentiable again).

Projected solve ``u = F(d, e, w, v, b) = R P b`` (:class:`TridiagPinvSolveFunction`).
Off the manifold of eigenpairs it is extended smoothly by
``F = P (T - w I + v v^T)^{-1} P b``, which equals ``R P b`` on it; with ``N`` that
inverse (``N = R + v v^T`` on the manifold) its differential at an eigenpair is::

    du = R (db - (v . b) dv - dT u + dw u) - v (dv . u)

and so, with ``z = R gu``, the vector-Jacobian product is::

    gb = z,  gd_i = -z_i u_i,  ge_i = -(z_i u_{i+1} + z_{i+1} u_i),
    gw = z . u,  gv = -(v . b) z - (gu . v) u

One code path: the public functions call these Functions (their forward calls the
custom ops of :mod:`torch_bridge._ops`) in every mode; each backward/jvp is written
in torch operations calling the Functions again, so double backward, ``torch.func``
transforms, ``torch.compile``, ``torch.jit.trace`` and batched gradients compose.
The same vector-Jacobian products are registered as the custom ops' own autograd
(:func:`torch.library.register_autograd`): ``torch.export`` keeps the ops, not the
Functions, and exported programs train through them.  The Functions, not the ops'
autograd, are what eager code and ``torch.func`` use: ``register_autograd`` alone
has no forward mode, and its generated Function has no ``setup_context``, which
``torch.func`` requires.

Dynamo (torch 2.13) cannot trace a Function that defines ``jvp``, so each Function has a
twin without it (``_EigvalshNoJvp``, ``_EighNoJvp``, ``_PinvSolveNoJvp``) that compiled
code uses.

Broadening (``broadening = eps_b > 0``) replaces ``R`` by
``R_eta = P Re[(T - (w + i eta) I)^{-1}] P`` with ``eta = eps_b ||T||_1`` in the
eigenvector term.  That is not the derivative of any function, so derivatives of
``R_eta`` itself (the second derivative through an eigenvector gradient) are not
provided: they raise.
"""

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import _C

from torch_bridge._ops import LIBRARY, call_op, kth_eigh_op, kth_eigvalsh_grad_op, kth_eigvalsh_op, pinv_solve_op

__all__ = [
    "TridiagEigvalshFunction",
    "TridiagEighFunction",
    "TridiagPinvSolveFunction",
    "apply_eigh",
    "apply_eigvalsh",
    "apply_eigvalsh_eager",
    "apply_pinv_solve",
]


def _tridiag_matvec(d, e, x):
    """``T x`` for tridiagonal ``T`` given by ``d`` (..., n), ``e`` (..., n-1)."""
    return d * x + F.pad(e * x[..., 1:], (0, 1)) + F.pad(e * x[..., :-1], (1, 0))


def _sym_outer_tridiag(a, b):
    """Gradient of ``a^T T b`` with respect to the diagonal and off-diagonal of ``T``.

    Returns ``gd_i = a_i b_i`` and ``ge_i = a_i b_{i+1} + a_{i+1} b_i``.
    """
    return a * b, a[..., :-1] * b[..., 1:] + a[..., 1:] * b[..., :-1]


def _dot(a, b):
    return (a * b).sum(-1)


def _add(x, y):
    return y if x is None else x + y


def _check_broadening(broadening, needed):
    if broadening != 0.0 and needed:
        raise RuntimeError(
            "derivatives of the broadened eigenvector gradient with respect to d, e, w or v are not "
            "implemented (eigvec_broadening > 0 is a first-order regularisation); use "
            "eigvec_broadening=0.0 for higher-order derivatives"
        )


# --------------------------------------------------------------------------- vector-Jacobian products
def eigenvalue_vjp(gw, v):
    """``gd_i = gw v_i^2``, ``ge_i = 2 gw v_i v_{i+1}``: the eigenvalue's vector-Jacobian product.

    Four elementwise operations (each costs mostly its dispatch at these sizes);
    ``narrow`` is a cheaper call than indexing with ``[..., :-1]``.
    """
    n = v.shape[-1]
    g = gw.unsqueeze(-1) * v
    q = g.narrow(-1, 0, n - 1) * v.narrow(-1, 1, n - 1)
    return g * v, q.add_(q)


def eigh_vjp(d, e, w, v, gw, gv, broadening):
    """``(gd, ge)`` of the eigenpair for output gradients ``gw``, ``gv`` (either may be None)."""
    gd = ge = None
    if gw is not None:
        gd, ge = eigenvalue_vjp(gw, v)
    if gv is not None:
        u = apply_pinv_solve(d, e, w, v, gv, broadening)
        a, c = _sym_outer_tridiag(u, v)
        gd, ge = _add(gd, -a), _add(ge, -c)
    return gd, ge


def eigvalsh_vjp(ctx, gw, gw_d, gw_e):
    """``(gd, ge)`` of ``(w, w_d, w_e)`` (:class:`TridiagEigvalshFunction`, op
    ``kth_eigvalsh_grad``) for output gradients ``gw``, ``gw_d``, ``gw_e`` (any may be None).

    ``ctx`` holds ``k``, ``backend``, ``broadening`` and the saved ``(d, e, w_d, w_e, ks)``.
    """
    d, e, w_d, w_e, ks = ctx.saved_tensors
    gd = ge = None
    if gw is not None:
        g = gw.unsqueeze(-1)
        gd, ge = g * w_d, g * w_e
    if gw_d is not None or gw_e is not None:
        # A derivative of the derivatives (double backward): through v, recomputed.
        w, v = apply_eigh(d, e, ctx.k, ks, ctx.backend, ctx.broadening)
        gw_d = torch.zeros_like(w_d) if gw_d is None else gw_d
        gw_e = torch.zeros_like(w_e) if gw_e is None else gw_e
        a, c = eigh_vjp(d, e, w, v, None, 2 * _tridiag_matvec(gw_d, gw_e, v), ctx.broadening)
        gd, ge = _add(gd, a), _add(ge, c)
    return gd, ge


def pinv_solve_vjp(d, e, w, v, b, u, gu, broadening, needs_input_grad):
    """``(gd, ge, gw, gv, gb)`` of ``u = F(d, e, w, v, b)`` for the output gradient ``gu``."""
    _check_broadening(broadening, any(needs_input_grad[:4]))
    z = apply_pinv_solve(d, e, w, v, gu, broadening)
    gd, ge = _sym_outer_tridiag(z, u)
    gw = _dot(z, u)
    gv = -_dot(v, b)[..., None] * z - _dot(gu, v)[..., None] * u
    return -gd, -ge, gw, gv, z


# --------------------------------------------------------------------------- Functions
class _PinvSolveNoJvp(torch.autograd.Function):
    """Differentiable ``u = P (T - w I)^+ P b``; see the module docstring.

    ``apply(d (B, n), e (B, n-1), w (B), v (B, n), b (B, n), broadening: float) -> u (B, n)``.
    Gradients are exact only at eigenpairs ``(w, v)`` of ``T`` (which is where the
    eigenvector backward evaluates it).  With ``broadening > 0`` only ``b`` is
    differentiable.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(d, e, w, v, b, broadening):
        return call_op(pinv_solve_op, d, e, w, v, b, broadening)

    @staticmethod
    def setup_context(ctx, inputs, output):
        d, e, w, v, b, broadening = inputs
        ctx.broadening = broadening
        ctx.save_for_backward(d, e, w, v, b, output)
        ctx.save_for_forward(d, e, w, v, b, output)

    @staticmethod
    def backward(ctx, gu):
        d, e, w, v, b, u = ctx.saved_tensors
        return pinv_solve_vjp(d, e, w, v, b, u, gu, ctx.broadening, ctx.needs_input_grad) + (None,)


class TridiagPinvSolveFunction(_PinvSolveNoJvp):
    __doc__ = _PinvSolveNoJvp.__doc__

    @staticmethod
    def jvp(ctx, d_t, e_t, w_t, v_t, b_t, _):
        d, e, w, v, b, u = ctx.saved_tensors
        _check_broadening(ctx.broadening, any(t is not None for t in (d_t, e_t, w_t, v_t)))
        rhs = torch.zeros_like(u) if b_t is None else b_t
        if v_t is not None:
            rhs = rhs - _dot(v, b)[..., None] * v_t
        if d_t is not None or e_t is not None:
            d_t = torch.zeros_like(d) if d_t is None else d_t
            e_t = torch.zeros_like(e) if e_t is None else e_t
            rhs = rhs - _tridiag_matvec(d_t, e_t, u)
        if w_t is not None:
            rhs = rhs + w_t[..., None] * u
        u_t = TridiagPinvSolveFunction.apply(d, e, w, v, rhs, ctx.broadening)
        if v_t is not None:
            u_t = u_t - _dot(v_t, u)[..., None] * v
        return u_t


def _eigvalsh_setup(ctx, inputs, output):
    """``setup_context`` of :class:`TridiagEigvalshFunction` and of the op ``kth_eigvalsh_grad``."""
    d, e, k, ks, backend, broadening = inputs
    _, w_d, w_e = output
    ctx.k, ctx.backend, ctx.broadening = k, backend, broadening
    # Unused outputs arrive as None: a first-order backward gets gw alone.
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(d, e, w_d, w_e, ks)
    if getattr(fwAD, "_current_level", 0) >= 0 or _C._are_functorch_transforms_active():
        # Only then can jvp be called (forward-mode AD is entered before the call:
        # a dual level, or torch.func.jvp/jacfwd); saving costs microseconds.  (Without
        # the private level counter, always save.)
        ctx.save_for_forward(d, e, w_d, w_e, ks)


class _EigvalshNoJvp(torch.autograd.Function):
    """Differentiable k-th eigenvalue, with its derivatives; see the module docstring.

    ``apply(d (B, n), e (B, n-1), k: int, ks (B) int64 or None, backend: str,
    broadening: float) -> (w (B), w_d (B, n), w_e (B, n-1))``, as the op
    ``kth_eigvalsh_grad``: ``w_d = dw/dd = v**2``, ``w_e = dw/de = 2 v_i v_{i+1}``
    (both differentiable).  Arguments as :class:`TridiagEighFunction`.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(d, e, k, ks, backend, broadening):
        return call_op(kth_eigvalsh_grad_op, d, e, k, ks, backend, broadening)

    setup_context = staticmethod(_eigvalsh_setup)

    @staticmethod
    def backward(ctx, gw, gw_d, gw_e):
        return *eigvalsh_vjp(ctx, gw, gw_d, gw_e), None, None, None, None


class TridiagEigvalshFunction(_EigvalshNoJvp):
    __doc__ = _EigvalshNoJvp.__doc__

    @staticmethod
    def jvp(ctx, d_t, e_t, k_t, ks_t, backend_t, broadening_t):
        d, e, w_d, w_e, ks = ctx.saved_tensors
        d_t = torch.zeros_like(d) if d_t is None else d_t
        e_t = torch.zeros_like(e) if e_t is None else e_t
        w_t = _dot(w_d, d_t) + _dot(w_e, e_t)
        # The derivatives' tangents, through v (recomputed): d(v_i v_j) = v_i dv_j + dv_i v_j.
        w, v = apply_eigh(d, e, ctx.k, ks, ctx.backend, ctx.broadening)
        v_t = -apply_pinv_solve(d, e, w, v, _tridiag_matvec(d_t, e_t, v), ctx.broadening)
        a, c = _sym_outer_tridiag(v, v_t)
        return w_t, 2 * a, 2 * c


class _EighNoJvp(torch.autograd.Function):
    """Differentiable k-th eigenpair; see the module docstring.

    ``apply(d (B, n), e (B, n-1), k: int, ks (B) int64 or None, backend: str,
    broadening: float) -> (w (B), v (B, n))``.  All inputs share one batch shape ``B``
    (the public functions broadcast); the index is ``k`` for every matrix, or ``ks``
    per matrix when given (as the op ``kth_eigh``).  ``broadening`` is the relative broadening of the
    eigenvector term (0 = exact, as ``torch.linalg.eigh``).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(d, e, k, ks, backend, broadening):
        return call_op(kth_eigh_op, d, e, k, ks, backend, broadening)

    @staticmethod
    def setup_context(ctx, inputs, output):
        d, e, k, ks, backend, broadening = inputs
        w, v = output
        ctx.broadening = broadening
        # Unused outputs arrive as None: an eigenvalue-only loss does no solve.
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(d, e, w, v)
        ctx.save_for_forward(d, e, w, v)

    @staticmethod
    def backward(ctx, gw, gv):
        d, e, w, v = ctx.saved_tensors
        if gv is None and gw is not None:  # an eigenvalue-only loss: eigh_vjp's first case
            return *eigenvalue_vjp(gw, v), None, None, None, None
        gd, ge = eigh_vjp(d, e, w, v, gw, gv, ctx.broadening)
        return gd, ge, None, None, None, None


class TridiagEighFunction(_EighNoJvp):
    __doc__ = _EighNoJvp.__doc__

    @staticmethod
    def jvp(ctx, d_t, e_t, k_t, ks_t, backend_t, broadening_t):
        d, e, w, v = ctx.saved_tensors
        d_t = torch.zeros_like(d) if d_t is None else d_t
        e_t = torch.zeros_like(e) if e_t is None else e_t
        tv = _tridiag_matvec(d_t, e_t, v)
        w_t = _dot(v, tv)
        v_t = -TridiagPinvSolveFunction.apply(d, e, w, v, tv, ctx.broadening)
        return w_t, v_t


# --------------------------------------------------------------------------- apply
# ``Function.apply`` (torch/autograd/function.py) binds its arguments with
# ``inspect.signature`` (a no-op for positional arguments without defaults, as here, at
# ~10 us a call), then, when no functorch transform is active, unwraps dead functorch
# wrappers and calls the C implementation; under a transform it calls
# ``custom_function_call``.  ``apply_eigvalsh``/``apply_eigh``/``apply_pinv_solve`` do the same without the
# binding, unwrapping their (known) tensor arguments one by one (``unwrap_dead_wrappers``'
# generic tuple walk costs ~1.5 us, five calls of the C function ~0.5 us).  Dynamo traces
# ``Function.apply`` itself, so compiled code calls it (the twin without jvp).
_EIGVALSH_C_APPLY = super(torch.autograd.Function, TridiagEigvalshFunction).apply
_EIGH_C_APPLY = super(torch.autograd.Function, TridiagEighFunction).apply
_PINV_C_APPLY = super(torch.autograd.Function, TridiagPinvSolveFunction).apply
_live = _C._functorch.unwrap_if_dead


def _apply(function, twin, args):
    """``function.apply(*args)`` under a functorch transform or dynamo (else the callers'
    fast path)."""
    if torch.compiler.is_compiling():
        if _C._are_functorch_transforms_active():
            return _apply_outside_dynamo(function, twin, args)
        return twin.apply(*args)
    return function.apply(*args)


@torch.compiler.disable
def _apply_outside_dynamo(function, twin, args):
    return _apply(function, twin, args)


def apply_eigvalsh(d, e, k, ks, backend, broadening):
    """``TridiagEigvalshFunction.apply(d, e, k, ks, backend, broadening)`` -> ``(w, w_d, w_e)``."""
    if _C._are_functorch_transforms_active() or torch.compiler.is_compiling():
        return _apply(TridiagEigvalshFunction, _EigvalshNoJvp, (d, e, k, ks, backend, broadening))
    return apply_eigvalsh_eager(d, e, k, ks, backend, broadening)


def apply_eigvalsh_eager(d, e, k, ks, backend, broadening):
    """:func:`apply_eigvalsh` for a caller that has checked that no functorch transform
    is active and dynamo is not tracing."""
    return _EIGVALSH_C_APPLY(_live(d), _live(e), k, ks if ks is None else _live(ks), backend, broadening)


def apply_eigh(d, e, k, ks, backend, broadening):
    """``TridiagEighFunction.apply(d, e, k, ks, backend, broadening)`` -> ``(w, v)``."""
    if _C._are_functorch_transforms_active() or torch.compiler.is_compiling():
        return _apply(TridiagEighFunction, _EighNoJvp, (d, e, k, ks, backend, broadening))
    return _EIGH_C_APPLY(_live(d), _live(e), k, ks if ks is None else _live(ks), backend, broadening)


def apply_pinv_solve(d, e, w, v, b, broadening):
    """``TridiagPinvSolveFunction.apply(d, e, w, v, b, broadening)`` -> ``u``."""
    if _C._are_functorch_transforms_active() or torch.compiler.is_compiling():
        return _apply(TridiagPinvSolveFunction, _PinvSolveNoJvp, (d, e, w, v, b, broadening))
    return _PINV_C_APPLY(_live(d), _live(e), _live(w), _live(v), _live(b), broadening)


# --------------------------------------------------------------------------- the ops' autograd
# For graphs that hold the ops themselves (torch.export): the same vector-Jacobian
# products, computed through the Functions (so they are differentiable again).
def _values_setup(ctx, inputs, output):
    d, e, k, ks, backend = inputs
    ctx.k, ctx.backend = k, backend
    ctx.save_for_backward(d, e, ks)


def _eigvalsh_backward(ctx, gw):
    d, e, ks = ctx.saved_tensors
    _, v = apply_eigh(d, e, ctx.k, ks, ctx.backend, 0.0)  # the eigenvector, recomputed
    return eigenvalue_vjp(gw, v) + (None, None, None)


def _eigh_setup(ctx, inputs, output):
    d, e, k, ks, backend, broadening = inputs
    ctx.broadening = broadening
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(d, e, *output)


def _eigh_backward(ctx, gw, gv):
    d, e, w, v = ctx.saved_tensors
    return eigh_vjp(d, e, w, v, gw, gv, ctx.broadening) + (None, None, None, None)


def _pinv_setup(ctx, inputs, output):
    d, e, w, v, b, broadening = inputs
    ctx.broadening = broadening
    ctx.save_for_backward(d, e, w, v, b, output)


def _pinv_backward(ctx, gu):
    d, e, w, v, b, u = ctx.saved_tensors
    return pinv_solve_vjp(d, e, w, v, b, u, gu, ctx.broadening, ctx.needs_input_grad) + (None,)


def _eigvalsh_grad_backward(ctx, gw, gw_d, gw_e):
    return eigvalsh_vjp(ctx, gw, gw_d, gw_e) + (None, None, None, None)


for _op, _backward, _setup in (
    (kth_eigvalsh_op, _eigvalsh_backward, _values_setup),
    (kth_eigvalsh_grad_op, _eigvalsh_grad_backward, _eigvalsh_setup),
    (kth_eigh_op, _eigh_backward, _eigh_setup),
    (pinv_solve_op, _pinv_backward, _pinv_setup),
):
    torch.library.register_autograd(_op, _backward, setup_context=_setup, lib=LIBRARY)
