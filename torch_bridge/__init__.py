"""Differentiable k-th eigenvalue/eigenvector of symmetric tridiagonal matrices for PyTorch.

The only part of the project that imports torch.  Public API:

* :func:`tridiag_eigvalsh` -- ``w (...,)`` or ``(..., K)``, differentiable in ``d``, ``e``;
* :func:`tridiag_eigh` -- ``(w, v)``, differentiable through both;
* :class:`TridiagSpectral` -- ``nn.Module`` computing ``w_k(A_0 + sum_i x_i A_i)``;
* :class:`TridiagEighFunction`, :class:`TridiagPinvSolveFunction` -- the
  ``torch.autograd.Function`` classes, for composing your own operations.

Kernels run as ``torch.library`` custom ops ``tridiag_numba::kth_eigvalsh``,
``tridiag_numba::kth_eigh`` and ``tridiag_numba::pinv_solve`` (CPU; float32/float64),
so ``torch.compile(fullgraph=True)``, ``torch.func`` and double backward work.  In plain
eager mode (nothing compiling, no ``torch.func`` transform, no dispatch/torch-function mode,
plain tensors) the same kernels are called directly, skipping the custom-op and
``autograd.Function.apply`` dispatch overhead, and a first-order backward of the
eigenvalue is one numba pass instead of torch operations; results and gradients are
identical.
``examples/train_spectral.py`` trains a :class:`TridiagSpectral` on a toy problem.

Sharing the cores: the numba kernels run on numba's tbb threading layer and back off
to serial kernels while another pool (torch's OpenMP threads, OpenBLAS) keeps the
cores busy (see ``tridiag_numba._jit`` and ``tridiag_numba._api._Contention``); no
environment variable is needed.  Forked DataLoader workers may call them too.
"""

from torch_bridge._autograd import TridiagEighFunction, TridiagPinvSolveFunction
from torch_bridge._functional import tridiag_eigh, tridiag_eigvalsh
from torch_bridge._nn import TridiagSpectral
from torch_bridge._ops import BACKENDS

__all__ = [
    "BACKENDS",
    "TridiagEighFunction",
    "TridiagPinvSolveFunction",
    "TridiagSpectral",
    "tridiag_eigh",
    "tridiag_eigvalsh",
]
