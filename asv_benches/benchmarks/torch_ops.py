"""torch: k-th eigenvalue from tensors (d, e), forward and forward+backward.

Implementations: ``torch_bridge.tridiag_eigvalsh`` with backend "numba" (this
library, row ``tridiag_numba``) or "scipy", and ``torch.linalg.eigvalsh`` on
the dense matrix assembled from (d, e) inside the timed graph.  Skipped when
torch or torch_bridge is not importable.
"""

from .common import Comparison, params_for


class TorchForward(Comparison):
    operation = "torch_forward"
    params = params_for(operation)

    def time_torch_forward(self, implementation, shape, dtype):
        self.func()


class TorchForwardBackward(Comparison):
    """``lambda_k.sum().backward()`` into d.grad and e.grad."""

    operation = "torch_forward_backward"
    params = params_for(operation)

    def time_torch_forward_backward(self, implementation, shape, dtype):
        self.func()
