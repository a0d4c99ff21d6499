"""Batched symmetric tridiagonal eigensolvers as parallel Numba kernels.

The numpy API is drop-in compatible with :mod:`scipy.linalg`'s
``eigh_tridiagonal`` / ``eigvalsh_tridiagonal`` and adds ``kth_eigenvalue`` /
``kth_eigenpair`` for one eigenvalue (and vector) per matrix of a batch.
``torch_bridge`` (a separate package in this distribution) exposes the same
solvers as differentiable PyTorch operations; this package never imports torch.
"""

from ._api import ArgumentTypeError, eigh_tridiagonal, eigvalsh_tridiagonal, kth_eigenpair, kth_eigenvalue

__all__ = ["ArgumentTypeError", "eigh_tridiagonal", "eigvalsh_tridiagonal", "kth_eigenpair", "kth_eigenvalue"]
__version__ = "0.1.0"
