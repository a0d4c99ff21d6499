"""``TridiagSpectral``: the eigenvalue "neuron" ``x -> w_k(T(x))``."""

import operator
from collections.abc import Sequence

import torch
from torch import nn

from torch_bridge._functional import tridiag_eigvalsh
from torch_bridge._ops import BACKENDS

__all__ = ["TridiagSpectral"]


def _int_arg(name, value, minimum=None):
    """``value`` as an int: TypeError for floats, bools and other non-integers (no silent
    truncation of ``1.7``), ValueError below ``minimum``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


class TridiagSpectral(nn.Module):
    """k-th eigenvalue of a symmetric tridiagonal matrix that is affine in the input.

    ``f(x) = w_k(T(x))`` with ``T(x) = A_0 + sum_i x_i A_i``: the diagonal of ``T(x)`` is
    ``nn.Linear(num_features, dim)(x)`` and the off-diagonal is
    ``nn.Linear(num_features, dim - 1)(x)``.  ``f`` is piecewise smooth, and
    Lipschitz in ``x``; with several ``k`` it outputs several eigenvalues of the same matrix.

    Parameters
    ----------
    num_features : int
        Input size, ``>= 1``.
    dim : int
        Matrix size ``n >= 1``.
    k : int or sequence of int
        Eigenvalue index/indices (0-based ascending; negative from the top), in
        ``[-dim, dim)``.  Non-integers (``1.7``, ``4.5``, ``True``) raise ``TypeError``,
        out-of-range values ``ValueError``.
    backend : {"numba", "scipy"}, optional
        Solver, see :func:`torch_bridge.tridiag_eigvalsh`.
    dtype, device : optional
        Parameter dtype (float32 default) and device (CPU only).

    Shape
    -----
    input (..., num_features) -> output (...,) for an int ``k``, (..., len(k)) otherwise.

    Notes
    -----
    Initialisation: ``nn.Linear``'s default (uniform, bound ``1 / sqrt(num_features)``)
    for the input weights; the bias of the diagonal (``A_0``'s diagonal) spreads
    evenly over ``[-1, 1]`` so that the eigenvalues of ``T(0)`` are well separated
    and ``w_k`` starts away from a crossing; the off-diagonal bias starts at
    ``1 / 2``.

    Examples
    --------
    >>> import torch
    >>> from torch_bridge import TridiagSpectral
    >>> model = TridiagSpectral(12, 9, 4, backend="scipy")
    >>> model
    TridiagSpectral(
      num_features=12, dim=9, k=4, backend='scipy'
      (diag): Linear(in_features=12, out_features=9, bias=True)
      (offdiag): Linear(in_features=12, out_features=8, bias=True)
    )
    >>> model(torch.rand(5, 12)).shape
    torch.Size([5])
    >>> TridiagSpectral(3, 4, [0, -1], backend="scipy")(torch.rand(2, 3)).shape
    torch.Size([2, 2])
    """

    def __init__(self, num_features, dim, k, *, backend="numba", dtype=None, device=None):
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {set(BACKENDS)}, got {backend!r}")
        self.num_features = _int_arg("num_features", num_features, 1)
        self.dim = _int_arg("dim", dim, 1)
        self.backend = backend
        several = isinstance(k, Sequence)
        ks = [_int_arg("k", kj) for kj in (k if several else [k])]
        if several and not ks:
            raise ValueError("k must not be an empty sequence")
        for kj in ks:
            if not -self.dim <= kj < self.dim:
                raise ValueError(f"k must be in [-dim, dim) = [{-self.dim}, {self.dim}), got {kj}")
        self.k = tuple(ks) if several else ks[0]
        factory = dict(dtype=dtype, device=device)
        self.diag = nn.Linear(self.num_features, self.dim, **factory)
        # nn.Linear(..., 0) warns on init; dim = 1 has no off-diagonal.
        self.offdiag = nn.Linear(self.num_features, self.dim - 1, **factory) if self.dim > 1 else None
        self.reset_parameters()

    def reset_parameters(self):
        """Re-initialise as described in the class Notes."""
        self.diag.reset_parameters()
        with torch.no_grad():
            bias = self.diag.bias  # on its own device, whatever torch.set_default_device says
            if self.dim > 1:
                bias.copy_(torch.linspace(-1.0, 1.0, self.dim, dtype=bias.dtype, device=bias.device))
            else:
                bias.zero_()
            if self.offdiag is not None:
                self.offdiag.reset_parameters()
                self.offdiag.bias.fill_(0.5)

    def forward(self, x):
        d = self.diag(x)
        if self.offdiag is None:
            e = d.new_zeros(d.shape[:-1] + (0,))
        else:
            e = self.offdiag(x)
        return tridiag_eigvalsh(d, e, self.k, backend=self.backend)

    def extra_repr(self):
        return f"num_features={self.num_features}, dim={self.dim}, k={self.k}, backend={self.backend!r}"
