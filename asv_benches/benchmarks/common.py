"""Shared parameters and the base class of the timed comparisons.

Inputs, implementations and the timing helper all come from
``tridiag_numba._bench``, the registry ``python -m tridiag_numba`` uses too.
"""

import os

from tridiag_numba import _bench

#: ``TRIDIAG_BENCH_SHAPES=8x20,64x8`` replaces the shapes, for quick smoke tests
#: of the suite (CI); results of such a run are not comparable, do not save them.
SHAPES = os.environ.get("TRIDIAG_BENCH_SHAPES", "").split(",") if os.environ.get("TRIDIAG_BENCH_SHAPES") else [
    _bench.format_shape(shape) for shape in _bench.SHAPES
]
for _shape in SHAPES:
    _bench.parse_shape(_shape)  # a typo fails discovery loudly
DTYPES = list(_bench.DTYPES)

#: scipy's batching is a Python loop over one LAPACK call per matrix: on
#: 100000x16 every scipy call takes 2-6 s whatever it computes.  Only the
#: issue's headline operations are timed there; the rest would add minutes and
#: no information.
_SCIPY_BIG_BATCH_OPERATIONS = ("kth_eigenvalue", "kth_eigenpair")


def skip_reason(operation, implementation, shape):
    """Why a combination is not benchmarked here, or None."""
    if not _bench.is_available(implementation, operation):
        return f"{implementation} / {operation} needs torch (and torch_bridge), not importable"
    batch, _ = _bench.parse_shape(shape)
    if implementation == "scipy" and batch >= 100000 and operation not in _SCIPY_BIG_BATCH_OPERATIONS:
        return f"scipy {operation} on {shape}: seconds per call of Python-loop overhead"
    return None


def pin_torch_threads():
    """Give torch as many threads as numba has, so dense and ours share the cores alike."""
    import torch

    torch.set_num_threads(int(os.environ.get("NUMBA_NUM_THREADS", "2")))


class Comparison:
    """Time one registry operation; parameters implementation x shape x dtype.

    Subclasses set ``operation`` and ``params`` and define one ``time_*``
    method calling ``self.func()``.  ``setup`` builds the inputs (dense
    matrices included) and calls the operation once when its first call costs
    more than later ones (JIT compile, numba cache load, torch's lazy
    initialisation), so those are never timed.
    """

    operation = None
    param_names = ["implementation", "shape", "dtype"]
    timeout = 300
    # (min, max repeats, max seconds): scipy on 100000x16 takes seconds per call
    repeat = (1, 10, 10.0)

    def setup(self, implementation, shape, dtype):
        reason = skip_reason(self.operation, implementation, shape)
        if reason is not None:
            raise NotImplementedError(reason)
        if "torch" in implementation + self.operation:
            pin_torch_threads()
        problem = _bench.make_problem(*_bench.parse_shape(shape), dtype=dtype)
        self.func = _bench.build(self.operation, implementation, problem)
        if _bench.needs_warmup(implementation):
            self.func()


def params_for(operation):
    return [_bench.implementations(operation), SHAPES, DTYPES]
