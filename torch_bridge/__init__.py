"""Differentiable k-th eigenvalue/eigenvector of symmetric tridiagonal matrices for PyTorch.

The only part of the project that imports torch.  Public API:

* :func:`tridiag_eigvalsh` -- ``w (...,)`` or ``(..., K)``, differentiable in ``d``, ``e``;
* :func:`tridiag_eigh` -- named tuple ``(eigenvalues, eigenvectors)`` (vectors as
  columns, as ``torch.linalg.eigh``), differentiable through both;
* :class:`TridiagSpectral` -- ``nn.Module`` computing ``w_k(A_0 + sum_i x_i A_i)``;
* :class:`TridiagEigvalshFunction`, :class:`TridiagEighFunction`,
  :class:`TridiagPinvSolveFunction` -- the ``torch.autograd.Function`` classes, for
  composing your own operations.

Kernels run as ``torch.library`` custom ops ``tridiag_numba::kth_eigvalsh``,
``::kth_eigvalsh_grad``, ``::kth_eigh`` and ``::pinv_solve`` (CPU; float32/float64;
fake kernels for meta/fake tensors; vmap, autocast and autograd rules), called through
one ``torch.autograd.Function`` layer in every mode -- plain eager, ``torch.func``,
``torch.compile``, ``torch.jit.trace``, ``torch.export``, batched gradients -- so the
functions behave as a torch op under each of them.
``examples/train_spectral.py`` trains a :class:`TridiagSpectral` on a toy problem.

``torch.export``: an exported program refers to the ops by name; ``import torch_bridge``
registers them, so do that before ``torch.export.load`` (and before running a loaded
program) in a fresh process.

Sharing the cores: from the first call on, the bisection kernels' parallel calls run on
torch's own intra-op OpenMP team (``tridiag_numba._omp_team``; Linux, torch built with GNU
OpenMP, as its CPU wheels), whose threads are spinning anyway after torch's operations;
other kernels run on numba's tbb threading layer and back off to serial kernels while
another pool keeps the cores busy (``tridiag_numba._scheduling._Contention``).  No
environment variable is needed.  Forked DataLoader workers may call them too (a forked
child goes back to numba's layer).
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # also when torch is blocked (sys.modules["torch"] = None)
    raise ImportError(
        'torch_bridge needs PyTorch, which is not installed: pip install "tridiag-numba[torch]"'
    ) from exc

from torch_bridge._autograd import TridiagEigvalshFunction, TridiagEighFunction, TridiagPinvSolveFunction
from torch_bridge._functional import TridiagEighResult, tridiag_eigh, tridiag_eigvalsh
from torch_bridge._nn import TridiagSpectral
from torch_bridge._ops import BACKENDS

__all__ = [
    "BACKENDS",
    "TridiagEigvalshFunction",
    "TridiagEighFunction",
    "TridiagEighResult",
    "TridiagPinvSolveFunction",
    "TridiagSpectral",
    "tridiag_eigh",
    "tridiag_eigvalsh",
]
