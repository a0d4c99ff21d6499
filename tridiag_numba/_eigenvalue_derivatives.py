"""The derivatives of an eigenvalue from its eigenvector, in one pass.

For a simple eigenvalue ``w`` of the symmetric tridiagonal ``T`` (diagonal ``d``,
off-diagonal ``e``) with unit eigenvector ``v``, ``dw = v^T dT v``, so::

    dw/dd_i = v_i^2,    dw/de_i = 2 v_i v_{i+1}

``torch_bridge`` returns these with the eigenvalue when a gradient may be asked
(op ``tridiag_numba::kth_eigvalsh_grad``): its backward is then two broadcast
multiplications by the incoming gradient.  One pass over ``v`` while it is still
in cache costs a few microseconds on 50 x 100; the same five elementwise
operations through numpy or torch cost several times that.  The arithmetic is
the formula's (no fastmath, so no contraction): ``w_d`` is exactly ``v * v`` and
``w_e`` exactly ``2 * (v[:, :-1] * v[:, 1:])`` (doubling is exact).
"""

from ._jit import kernel_loop

__all__ = ["eigenvalue_derivatives"]


@kernel_loop
def eigenvalue_derivatives(v, w_d, w_e):
    """Write ``w_d = v**2`` and ``w_e = 2 v_i v_{i+1}`` for each row of ``v``.

    Parameters
    ----------
    v : ndarray, shape (B, n)
        Unit eigenvectors, one per matrix; float32 or float64, ``n >= 1``.
    w_d : ndarray, shape (B, n)
        Output: ``dw/dd``, ``v``'s dtype.
    w_e : ndarray, shape (B, n - 1)
        Output: ``dw/de``, ``v``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([[0.6, 0.8]])
    >>> w_d, w_e = np.empty((1, 2)), np.empty((1, 1))
    >>> eigenvalue_derivatives(v, w_d, w_e)
    >>> np.round(w_d, 12), np.round(w_e, 12)
    (array([[0.36, 0.64]]), array([[0.96]]))
    """
    nb, n = v.shape
    for b in range(nb):
        for i in range(n - 1):
            q = v[b, i] * v[b, i + 1]
            w_d[b, i] = v[b, i] * v[b, i]
            w_e[b, i] = q + q
        w_d[b, n - 1] = v[b, n - 1] * v[b, n - 1]
