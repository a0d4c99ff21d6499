"""The eigenvalue's first-order backward as one numba pass, for plain eager mode.

``gd_i = g v_i^2`` and ``ge_i = 2 g v_i v_{i+1}`` are five elementwise operations on
small arrays; through torch (or numpy) each costs several times its arithmetic, and
right after the engine or the eigensolver each also runs cold.  One fused pass costs
about one call.  Same arithmetic in the same order as the torch formula in
:mod:`torch_bridge._autograd` (no fastmath, so no FMA contraction): the same bits.

Imported with the first backward, so that ``import torch_bridge`` stays light.
"""

import numpy as np

from tridiag_numba._jit import kernel_inner

__all__ = ["eigenvalue_grads"]


@kernel_inner
def _eigenvalue_grads(g, v):
    nb, n = v.shape
    gd = np.empty((nb, n), v.dtype)
    ge = np.empty((nb, n - 1), v.dtype)
    for b in range(nb):
        gb = g[b]
        for i in range(n - 1):
            q = v[b, i] * v[b, i + 1]
            gd[b, i] = gb * (v[b, i] * v[b, i])
            ge[b, i] = gb * (q + q)
        gd[b, n - 1] = gb * (v[b, n - 1] * v[b, n - 1])
    return gd, ge


def eigenvalue_grads(g, v):
    """``(g v_i^2, 2 g v_i v_{i+1})`` for ``g`` (...) and ``v`` (..., n), as new arrays.

    Parameters
    ----------
    g : numpy.ndarray, shape (...)
        Gradient of the eigenvalues (any strides, e.g. broadcast from a sum).
    v : numpy.ndarray, shape (..., n)
        The eigenvectors, same dtype.

    Returns
    -------
    gd : numpy.ndarray, shape (..., n)
    ge : numpy.ndarray, shape (..., n - 1)
    """
    if v.ndim == 2:
        return _eigenvalue_grads(g, v)
    n = v.shape[-1]  # the kernel takes one batch axis
    gd, ge = _eigenvalue_grads(g.reshape(-1), v.reshape(-1, n))
    return gd.reshape(v.shape), ge.reshape(v.shape[:-1] + (n - 1,))
