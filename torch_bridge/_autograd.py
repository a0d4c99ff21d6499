"""Autograd for the k-th eigenpair of symmetric tridiagonal matrices.

Notation: ``T`` has diagonal ``d`` (n) and off-diagonal ``e`` (n - 1); ``(w, v)`` is
its k-th eigenpair (``v`` unit); ``P = I - v v^T``; ``R = (T - w I)^+ = P (T - w I)^+ P``.
For a matrix ``M`` only its tridiagonal part matters, contracted as
``<M, dT> = sum_i M_ii dd_i + sum_i (M_{i,i+1} + M_{i+1,i}) de_i``.

Eigenpair (first-order perturbation theory, ``v^T dv = 0``)::

    dw = v^T dT v                  -> gd_i += gw v_i^2,   ge_i += 2 gw v_i v_{i+1}
    dv = -R dT v                   -> u = R gv,
                                      gd_i -= u_i v_i,    ge_i -= u_i v_{i+1} + u_{i+1} v_i

Projected solve ``u = F(d, e, w, v, b) = R P b`` (:class:`TridiagPinvSolveFunction`).
Off the manifold of eigenpairs it is extended smoothly by
``F = P (T - w I + v v^T)^{-1} P b``, which equals ``R P b`` on it; with ``N`` that
inverse (``N = R + v v^T`` on the manifold) its differential at an eigenpair is::

    du = R (db - (v . b) dv - dT u + dw u) - v (dv . u)

and so, with ``z = R gu``, the vector-Jacobian product is::

    gb = z,  gd_i = -z_i u_i,  ge_i = -(z_i u_{i+1} + z_{i+1} u_i),
    gw = z . u,  gv = -(v . b) z - (gu . v) u

Every backward/jvp is written in torch operations calling the custom ops through
these Functions again, so double backward, ``torch.func`` transforms and
``torch.compile`` compose.  The Functions return only what callers need; they
never call the eigensolver in backward.

Plain eager mode (:func:`torch_bridge._ops.plain_eager`) takes shortcuts with
bit-identical results: kernels called without the custom-op dispatch, a first-order
eigenvalue backward as one numba pass (:mod:`torch_bridge._eager_kernels`), and
:class:`_EigvalshEager` for an eigenvalue-only output (it recomputes the eigenpair
only for a backward that records a graph).

Dynamo (torch 2.13) cannot trace a Function that defines ``jvp``, so each Function has a
twin without it (``_EighNoJvp``, ``_PinvSolveNoJvp``) that compiled code uses.

Broadening (``broadening = eps_b > 0``) replaces ``R`` by
``R_eta = P Re[(T - (w + i eta) I)^{-1}] P`` with ``eta = eps_b ||T||_1`` in the
eigenvector term.  That is not the derivative of any function, so derivatives of
``R_eta`` itself (the second derivative through an eigenvector gradient) are not
provided: they raise.
"""

import torch
import torch.nn.functional as F

from torch_bridge._ops import kth_eigh_arrays, kth_eigh_impl, kth_eigh_op, pinv_solve_impl, pinv_solve_op, plain_eager

__all__ = ["TridiagEighFunction", "TridiagPinvSolveFunction"]


def _tridiag_matvec(d, e, x):
    """``T x`` for tridiagonal ``T`` given by ``d`` (..., n), ``e`` (..., n-1)."""
    return d * x + F.pad(e * x[..., 1:], (0, 1)) + F.pad(e * x[..., :-1], (1, 0))


def _sym_outer_tridiag(a, b):
    """Gradient of ``a^T T b`` with respect to the diagonal and off-diagonal of ``T``.

    Returns ``gd_i = a_i b_i`` and ``ge_i = a_i b_{i+1} + a_{i+1} b_i``: the gradient of
    ``a^T T b`` with respect to ``d`` and ``e``.
    """
    return a * b, a[..., :-1] * b[..., 1:] + a[..., 1:] * b[..., :-1]


def _dot(a, b):
    return (a * b).sum(-1)


def _add(x, y):
    return y if x is None else x + y


def _first_order(gw, *tensors):
    """Whether a backward may leave torch: plain eager mode and no graph to record (grad
    mode off, as in a first-order backward)."""
    return not (torch.is_grad_enabled() or gw.requires_grad) and plain_eager(gw, *tensors)


def _eigenvalue_vjp_numpy(gw, v):
    """:func:`_eigenvalue_vjp` for a first-order backward, ``v`` a numpy array: one numba pass."""
    from torch_bridge._eager_kernels import eigenvalue_grads  # numba: imported by the first backward

    gd, ge = eigenvalue_grads(gw.numpy(), v)
    return torch.from_numpy(gd), torch.from_numpy(ge)


def _eigenvalue_vjp(gw, v):
    """``gd_i = gw v_i^2``, ``ge_i = 2 gw v_i v_{i+1}``: the eigenvalue's vector-Jacobian product.

    The numba pass of :func:`_eigenvalue_vjp_numpy` computes the same bits.
    """
    if _first_order(gw, v):
        return _eigenvalue_vjp_numpy(gw, v.numpy())
    q = v[..., :-1] * v[..., 1:]
    g = gw.unsqueeze(-1)
    return g * (v * v), g * (q + q)


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
        if plain_eager(d, e, w, v, b):
            return pinv_solve_impl(d, e, w, v, b, broadening)
        return pinv_solve_op(d, e, w, v, b, broadening)

    @staticmethod
    def setup_context(ctx, inputs, output):
        d, e, w, v, b, broadening = inputs
        ctx.broadening = broadening
        ctx.save_for_backward(d, e, w, v, b, output)
        ctx.save_for_forward(d, e, w, v, b, output)

    @staticmethod
    def _check_broadening(ctx, needed):
        if ctx.broadening != 0.0 and needed:
            raise RuntimeError(
                "derivatives of the broadened eigenvector gradient with respect to d, e, w or v are not "
                "implemented (eigvec_broadening > 0 is a first-order regularisation); use "
                "eigvec_broadening=0.0 for higher-order derivatives"
            )

    @staticmethod
    def backward(ctx, gu):
        d, e, w, v, b, u = ctx.saved_tensors
        _PinvSolveNoJvp._check_broadening(ctx, any(ctx.needs_input_grad[:4]))
        z = apply_pinv_solve(d, e, w, v, gu, ctx.broadening)
        gd, ge = _sym_outer_tridiag(z, u)
        gw = _dot(z, u)
        gv = -_dot(v, b)[..., None] * z - _dot(gu, v)[..., None] * u
        return -gd, -ge, gw, gv, z, None


class TridiagPinvSolveFunction(_PinvSolveNoJvp):
    __doc__ = _PinvSolveNoJvp.__doc__

    @staticmethod
    def jvp(ctx, d_t, e_t, w_t, v_t, b_t, _):
        d, e, w, v, b, u = ctx.saved_tensors
        _PinvSolveNoJvp._check_broadening(ctx, any(t is not None for t in (d_t, e_t, w_t, v_t)))
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


class _EighNoJvp(torch.autograd.Function):
    """Differentiable k-th eigenpair; see the module docstring.

    ``apply(d (B, n), e (B, n-1), k (B) int64, backend: str, broadening: float)
    -> (w (B), v (B, n))``.  All inputs share one batch shape ``B`` (the public
    functions broadcast).  ``broadening`` is the relative broadening of the
    eigenvector term (0 = exact, as ``torch.linalg.eigh``).
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(d, e, k, backend, broadening):
        # ``k``: an int64 tensor of the batch shape, or (eager fast path only) an int.
        if plain_eager(d, e, k) if isinstance(k, torch.Tensor) else plain_eager(d, e):
            return kth_eigh_impl(d, e, k, backend)
        if not isinstance(k, torch.Tensor):
            k = torch.full(d.shape[:-1], k, dtype=torch.int64)
        return kth_eigh_op(d, e, k, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        d, e, k, backend, broadening = inputs
        w, v = output
        ctx.broadening = broadening
        # Unused outputs arrive as None: an eigenvalue-only loss does no solve.
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(d, e, w, v)
        ctx.save_for_forward(d, e, w, v)

    @staticmethod
    def backward(ctx, gw, gv):
        d, e, w, v = ctx.saved_tensors
        gd = ge = None
        if gw is not None:
            gd, ge = _eigenvalue_vjp(gw, v)
        if gv is not None:
            u = apply_pinv_solve(d, e, w, v, gv, ctx.broadening)
            a, c = _sym_outer_tridiag(u, v)
            gd, ge = _add(gd, -a), _add(ge, -c)
        if gd is None:
            return None, None, None, None, None
        return gd, ge, None, None, None


class _EigvalshEager(torch.autograd.Function):
    """The eigenvalue alone, in plain eager mode without forward-mode tangents.

    ``apply(d, e, k, backend, broadening) -> w``; ``k`` an int or an int64 tensor.
    :class:`TridiagEighFunction` would do, but it returns ``v`` as a second
    differentiable output (for double backward) and saves four tensors.  Here ``v``
    stays a private numpy array for a first-order backward (one numba pass).  A
    backward that records a graph (``create_graph=True``) recomputes the eigenpair
    through :class:`TridiagEighFunction` instead, which makes ``v`` differentiable.
    """

    @staticmethod
    def forward(ctx, d, e, k, backend, broadening):
        w, ctx.v = kth_eigh_arrays(d, e, k, backend)
        ctx.k, ctx.backend, ctx.broadening = k, backend, broadening
        ctx.save_for_backward(d, e)
        return torch.from_numpy(w)

    @staticmethod
    def backward(ctx, gw):
        if _first_order(gw):
            gd, ge = _eigenvalue_vjp_numpy(gw, ctx.v)
        else:
            d, e = ctx.saved_tensors
            _, v = apply_eigh(d, e, ctx.k, ctx.backend, ctx.broadening)
            gd, ge = _eigenvalue_vjp(gw, v)
        return gd, ge, None, None, None


class TridiagEighFunction(_EighNoJvp):
    __doc__ = _EighNoJvp.__doc__

    @staticmethod
    def jvp(ctx, d_t, e_t, k_t, backend_t, broadening_t):
        d, e, w, v = ctx.saved_tensors
        d_t = torch.zeros_like(d) if d_t is None else d_t
        e_t = torch.zeros_like(e) if e_t is None else e_t
        tv = _tridiag_matvec(d_t, e_t, v)
        w_t = _dot(v, tv)
        v_t = -TridiagPinvSolveFunction.apply(d, e, w, v, tv, ctx.broadening)
        return w_t, v_t


def _pinv_solve_function():
    """The Function to use: dynamo (torch 2.13) cannot trace Functions that define ``jvp``."""
    return _PinvSolveNoJvp if torch.compiler.is_compiling() else TridiagPinvSolveFunction


# ``torch.autograd.Function.apply`` binds its arguments with ``inspect.signature`` on every
# call (tens of microseconds); in plain eager mode (no torch.func transform, nothing
# compiling or tracing) it then just calls the C implementation, which we call directly.
def _c_apply(cls):
    return super(torch.autograd.Function, cls).apply


_C_APPLY_EIGH = _c_apply(TridiagEighFunction)
_C_APPLY_PINV = _c_apply(TridiagPinvSolveFunction)
#: ``_EigvalshEager.apply``; plain eager mode only (the caller checks).
apply_eigvalsh_eager = _c_apply(_EigvalshEager)


def apply_eigh(d, e, k, backend, broadening, eager=None):
    """``TridiagEighFunction.apply`` (``_EighNoJvp`` under compile), cheap in plain eager mode.

    ``eager``: the caller's ``plain_eager(d, e)``, if known.  ``k`` may be an int only
    where that holds.
    """
    if plain_eager(d, e) if eager is None else eager:
        return _C_APPLY_EIGH(d, e, k, backend, broadening)
    return eigh_function().apply(d, e, k, backend, broadening)


def apply_pinv_solve(d, e, w, v, b, broadening):
    """``TridiagPinvSolveFunction.apply`` (no-jvp twin under compile), cheap in plain eager mode."""
    if plain_eager(d, e, w, v, b):
        return _C_APPLY_PINV(d, e, w, v, b, broadening)
    return _pinv_solve_function().apply(d, e, w, v, b, broadening)


def eigh_function():
    """:class:`TridiagEighFunction`, or its twin without ``jvp`` under ``torch.compile``.

    Dynamo rejects ``torch.autograd.Function`` subclasses with a custom ``jvp``
    ("Unsupported custom jvp"); forward-mode AD inside compiled code is not
    supported anyway, so compiled code uses the twin.
    """
    return _EighNoJvp if torch.compiler.is_compiling() else TridiagEighFunction
