"""Projected pseudo-inverse solve ``u = P (T - w I)^+ P b`` for eigenvector gradients.

For an eigenpair ``(w, v)`` of a symmetric tridiagonal ``T`` (diagonal ``d``,
off-diagonal ``e``) and ``P = I - v v^T``, the derivative of ``v`` is
``dv = -(T - w I)^+ dT v`` (``v^T dv = 0``), so every eigenvector gradient and
tangent needs one solve with the singular matrix ``T - w I`` on the complement of
``v``.  This module does it in O(n) per matrix:

1. project the right-hand side, ``y = b - (v . b) v``;
2. LU-factor ``T - w I`` with partial pivoting (LAPACK ``dgttrf``/``dlagtf``) and
   back-substitute with pivots smaller than ``eps * ||T - w I||_1`` perturbed to
   that size, as LAPACK ``dlagts`` (``job = -1``) does for inverse iteration;
3. project the solution, ``u = x - (v . x) v``.

The system is (nearly) singular on purpose: the component of ``y`` along ``v`` is
at rounding level and is amplified at most to the size of the true solution,
and step 3 removes it; the error in the complement is the usual
``eps ||T|| / gap`` of eigenvector perturbation theory.

With a broadening ``eta > 0`` the solve is done with the complex shift
``T - (w + i eta) I`` and ``u = P Re[(T - (w + i eta) I)^{-1}] P b``, i.e. each
``1 / (w_j - w)`` of the spectral sum is replaced by the Lorentzian
``(w_j - w) / ((w_j - w)^2 + eta^2)``: bounded by ``1 / (2 eta)`` and well
conditioned (``||T|| / eta``), unlike squaring ``T - w I``.

The kernel and its helpers live in this one module (numba's cache does not see
edits in other files); numba options come from :mod:`tridiag_numba._jit`.
"""

import numpy as np
from numba import prange

from tridiag_numba._jit import kernel_inner, kernel_parallel, kernel_serial

__all__ = ["pinv_solve"]

#: ``info`` codes of the kernels.
INFO_OK = 0
INFO_NONFINITE_INPUT = 1
INFO_NONFINITE_OUTPUT = 2


@kernel_inner
def _tridiag_solve_perturbed(dl, dd, du, du2, x, tiny):
    """Solve a tridiagonal system in place, perturbing tiny pivots.

    ``dl``, ``dd``, ``du`` (lengths n-1, n, n-1) hold the sub-, main and
    super-diagonal and are overwritten by the LU factors; ``du2`` (n) receives
    the second super-diagonal of U; ``x`` holds the right-hand side and
    receives the solution.  Elimination is LAPACK ``dgttrf`` (row interchange
    when ``|dl[i]| > |dd[i]|``) fused with the forward substitution;
    back-substitution replaces pivots with ``|p| < tiny`` by ``tiny * p / |p|``
    (``tiny`` when ``p == 0``), as ``dlagts`` with ``job = -1``.  Works for real
    and complex arrays.
    """
    n = dd.shape[0]
    for i in range(n - 1):
        du2[i] = dd[i] * 0
        if abs(dd[i]) >= abs(dl[i]):
            # No interchange; a zero column below a zero pivot needs no elimination.
            if dl[i] != 0:
                fact = dl[i] / dd[i]
                dl[i] = fact
                dd[i + 1] = dd[i + 1] - fact * du[i]
                x[i + 1] = x[i + 1] - fact * x[i]
            else:
                dl[i] = dl[i] * 0
        else:
            fact = dd[i] / dl[i]
            dd[i] = dl[i]
            dl[i] = fact
            temp = du[i]
            du[i] = dd[i + 1]
            dd[i + 1] = temp - fact * dd[i + 1]
            if i < n - 2:
                du2[i] = du[i + 1]
                du[i + 1] = -fact * du[i + 1]
            t = x[i]
            x[i] = x[i + 1]
            x[i + 1] = t - fact * x[i + 1]
    for i in range(n - 1, -1, -1):
        t = x[i]
        if i + 1 < n:
            t = t - du[i] * x[i + 1]
        if i + 2 < n:
            t = t - du2[i] * x[i + 2]
        p = dd[i]
        ap = abs(p)
        if ap < tiny:
            if ap == 0:
                p = p * 0 + tiny
            else:
                p = p * (tiny / ap)
        x[i] = t / p


@kernel_inner
def _pinv_solve_one(d, e, lam, v, b, shift, eps, u, dl, dd, du, du2, x):
    """``u = P Re[(T - shift I)^{-1}] P b`` for one matrix; returns an info code.

    ``shift`` is ``lam`` (real work arrays) or ``lam + i eta`` (complex ones).
    """
    n = d.shape[0]
    finite = np.isfinite(lam)
    for i in range(n):
        finite = finite and np.isfinite(d[i]) and np.isfinite(v[i]) and np.isfinite(b[i])
    for i in range(n - 1):
        finite = finite and np.isfinite(e[i])
    if not finite:
        for i in range(n):
            u[i] = np.nan
        return INFO_NONFINITE_INPUT
    # Project the right-hand side onto the complement of v.
    c = 0.0
    for i in range(n):
        c += v[i] * b[i]
    # ||T - lam I||_1 (max absolute column sum = row sum: symmetric).
    anorm = 0.0
    for i in range(n):
        s = abs(d[i] - lam)
        if i > 0:
            s += abs(e[i - 1])
        if i < n - 1:
            s += abs(e[i])
        anorm = max(anorm, s)
    tiny = eps * anorm
    if tiny == 0.0:
        # T = lam I (n = 1 or a zero matrix): P kills everything below.
        tiny = 1.0
    for i in range(n):
        dd[i] = d[i] - shift
        x[i] = b[i] - c * v[i]
    for i in range(n - 1):
        dl[i] = e[i]
        du[i] = e[i]
    _tridiag_solve_perturbed(dl, dd, du, du2, x, tiny)
    # Project the (real part of the) solution onto the complement of v.
    c = 0.0
    for i in range(n):
        c += v[i] * x[i].real
    ok = True
    for i in range(n):
        ui = x[i].real - c * v[i]
        u[i] = ui
        ok = ok and np.isfinite(ui)
    if not ok:
        return INFO_NONFINITE_OUTPUT
    return INFO_OK


# Parallel drivers and their serial twins: separate Python functions (see _jit.py).
@kernel_parallel
def _pinv_solve_real_parallel(d, e, w, v, b, eps, u, info):
    nb, n = d.shape
    for j in prange(nb):
        dl = np.empty(max(n - 1, 0), d.dtype)
        du = np.empty(max(n - 1, 0), d.dtype)
        dd = np.empty(n, d.dtype)
        du2 = np.empty(n, d.dtype)
        x = np.empty(n, d.dtype)
        info[j] = _pinv_solve_one(d[j], e[j], w[j], v[j], b[j], w[j], eps, u[j], dl, dd, du, du2, x)


@kernel_serial
def _pinv_solve_real_serial(d, e, w, v, b, eps, u, info):
    nb, n = d.shape
    for j in prange(nb):
        dl = np.empty(max(n - 1, 0), d.dtype)
        du = np.empty(max(n - 1, 0), d.dtype)
        dd = np.empty(n, d.dtype)
        du2 = np.empty(n, d.dtype)
        x = np.empty(n, d.dtype)
        info[j] = _pinv_solve_one(d[j], e[j], w[j], v[j], b[j], w[j], eps, u[j], dl, dd, du, du2, x)


@kernel_parallel
def _pinv_solve_broadened_parallel(d, e, w, v, b, eta, eps, u, info):
    nb, n = d.shape
    for j in prange(nb):
        dl = np.empty(max(n - 1, 0), np.complex128)
        du = np.empty(max(n - 1, 0), np.complex128)
        dd = np.empty(n, np.complex128)
        du2 = np.empty(n, np.complex128)
        x = np.empty(n, np.complex128)
        shift = complex(w[j], eta[j])
        info[j] = _pinv_solve_one(d[j], e[j], w[j], v[j], b[j], shift, eps, u[j], dl, dd, du, du2, x)


@kernel_serial
def _pinv_solve_broadened_serial(d, e, w, v, b, eta, eps, u, info):
    nb, n = d.shape
    for j in prange(nb):
        dl = np.empty(max(n - 1, 0), np.complex128)
        du = np.empty(max(n - 1, 0), np.complex128)
        dd = np.empty(n, np.complex128)
        du2 = np.empty(n, np.complex128)
        x = np.empty(n, np.complex128)
        shift = complex(w[j], eta[j])
        info[j] = _pinv_solve_one(d[j], e[j], w[j], v[j], b[j], shift, eps, u[j], dl, dd, du, du2, x)


def _use_serial(work):
    """Whether the serial twins should run: the numpy layer's policy (``serial_kernels``,
    non-thread-safe threading layer off the main thread, small work)."""
    from tridiag_numba._api import _use_serial as policy

    return policy(work)


def _as_float(name, x):
    x = np.asarray(x)
    if x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer):
        return x.astype(np.float64)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a real float32/float64 (or integer) array, got dtype {x.dtype}")
    return x


def pinv_solve(d, e, w, v, b, *, broadening=0.0, check_finite=True):
    """Projected pseudo-inverse solve for eigenvector derivatives.

    Computes ``u = P (T - w I)^+ P b`` with ``P = I - v v^T`` for symmetric
    tridiagonal ``T`` and its eigenpair ``(w, v)``, in O(n) per matrix.

    Parameters
    ----------
    d : array_like, shape (..., n)
        Diagonal of ``T``.
    e : array_like, shape (..., n - 1)
        Off-diagonal of ``T``.
    w : array_like, shape (...,)
        An eigenvalue of each ``T``.
    v : array_like, shape (..., n)
        The unit eigenvector belonging to ``w``.
    b : array_like, shape (..., n)
        Right-hand sides.
    broadening : float, optional
        Relative broadening ``eps_b >= 0``.  With ``eta = eps_b * ||T||_1`` the
        operator becomes ``P Re[(T - (w + i eta) I)^{-1}] P``: each
        ``1 / (w_j - w)`` is replaced by ``(w_j - w) / ((w_j - w)^2 + eta^2)``.
        0 (default) is the exact pseudo-inverse.
    check_finite : bool, optional
        Raise ``ValueError`` on NaN/inf inputs (default).  Otherwise such a
        matrix gives NaN outputs.

    Returns
    -------
    u : ndarray, shape (..., n)
        Orthogonal to ``v``.  float32 when all inputs are float32, else float64.

    Raises
    ------
    ValueError
        On inconsistent shapes, ``n = 0``, negative ``broadening`` or (with
        ``check_finite``) non-finite inputs.
    TypeError
        On unsupported dtypes.
    numpy.linalg.LinAlgError
        When the solution overflows (names the batch index).

    Notes
    -----
    LU with partial pivoting of ``T - w I`` as LAPACK ``dgttrf``; pivots below
    ``eps ||T - w I||_1`` are perturbed as in ``dlagts`` (``job = -1``), which
    LAPACK's inverse iteration (``dstein``) uses on the same singular matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.linalg import eigh_tridiagonal
    >>> d, e = np.array([2.0, 0.0, 1.0]), np.array([1.0, 0.5])
    >>> w, v = eigh_tridiagonal(d, e, select="i", select_range=(1, 1))
    >>> b = np.array([1.0, 2.0, 3.0])
    >>> u = pinv_solve(d, e, w[0], v[:, 0], b)
    >>> T = np.diag(d) + np.diag(e, 1) + np.diag(e, -1)
    >>> np.allclose(u, np.linalg.pinv(T - w[0] * np.eye(3)) @ b)
    True
    """
    d = _as_float("d", d)
    e = _as_float("e", e)
    w = _as_float("w", w)
    v = _as_float("v", v)
    b = _as_float("b", b)
    broadening = float(broadening)
    if not broadening >= 0.0:
        raise ValueError(f"broadening must be >= 0, got {broadening}")
    if d.ndim < 1 or d.shape[-1] == 0:
        raise ValueError(f"d must have shape (..., n) with n >= 1, got {d.shape}")
    n = d.shape[-1]
    if e.ndim < 1 or e.shape[-1] != n - 1:
        raise ValueError(f"e must have shape (..., n - 1) = (..., {n - 1}), got {e.shape}")
    for name, x in (("v", v), ("b", b)):
        if x.ndim < 1 or x.shape[-1] != n:
            raise ValueError(f"{name} must have shape (..., n) = (..., {n}), got {x.shape}")
    try:
        batch = np.broadcast_shapes(d.shape[:-1], e.shape[:-1], w.shape, v.shape[:-1], b.shape[:-1])
    except ValueError:
        raise ValueError(
            "batch shapes do not broadcast: "
            f"d {d.shape[:-1]}, e {e.shape[:-1]}, w {w.shape}, v {v.shape[:-1]}, b {b.shape[:-1]}"
        ) from None
    dtype = np.result_type(d, e, w, v, b)
    if check_finite:
        for name, x in (("d", d), ("e", e), ("w", w), ("v", v), ("b", b)):
            if not np.isfinite(x).all():
                raise ValueError(f"{name} must not contain infs or NaNs")
    nb = int(np.prod(batch))

    def flat(x, tail):
        x = np.ascontiguousarray(np.broadcast_to(x, batch + tail).reshape((nb,) + tail), dtype=dtype)
        # Always read-only (a view of the input is, a converted copy is made
        # so): one numba type per dtype, not a compile per writeable mix.
        x.flags.writeable = False
        return x

    d2, e2, v2, b2 = flat(d, (n,)), flat(e, (n - 1,)), flat(v, (n,)), flat(b, (n,))
    w2 = flat(w, ())
    u = np.empty((nb, n), dtype)
    info = np.zeros(nb, np.int32)
    if nb:
        eps = float(np.finfo(dtype).eps)
        serial = nb == 1 or _use_serial(2 * nb * n)
        if broadening == 0.0:
            kernel = _pinv_solve_real_serial if serial else _pinv_solve_real_parallel
            kernel(d2, e2, w2, v2, b2, eps, u, info)
        else:
            rows = np.abs(d2)
            rows[:, :-1] += np.abs(e2)
            rows[:, 1:] += np.abs(e2)
            eta = broadening * rows.max(axis=1).astype(np.float64)
            kernel = _pinv_solve_broadened_serial if serial else _pinv_solve_broadened_parallel
            kernel(d2, e2, w2, v2, b2, eta, eps, u, info)
    bad = np.flatnonzero(info == INFO_NONFINITE_OUTPUT)
    if bad.size:
        index = np.unravel_index(bad[0], batch) if batch else ()
        raise np.linalg.LinAlgError(f"pinv_solve: the solution overflowed for the matrix at batch index {index}")
    return u.reshape(batch + (n,))
