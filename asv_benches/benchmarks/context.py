"""In context: single calls beside numpy/BLAS, scipy and torch, and a training step.

The ``time_*``/ratio benchmarks elsewhere time tight loops.  These track what a
program sees that calls this library once between calls into other libraries
(``tridiag_numba._bench_context``, the same code as the main command's "In
context" section): medians of single calls, as time ratios (lower is better).
"""

import os

from tridiag_numba import _bench, _bench_context

from .common import pin_torch_threads

#: Smoke runs (CI sets TRIDIAG_BENCH_SHAPES) take a few rounds only: wiring, not figures.
_SMOKE = bool(os.environ.get("TRIDIAG_BENCH_SHAPES"))


class SingleCalls:
    """kth_eigenvalue 50x100 float64, single calls (medians of 60)."""

    unit = "ratio (lower is better)"
    timeout = 600

    def setup_cache(self):
        if _bench.is_available("torch_dense"):
            pin_torch_threads()
        return _bench_context.single_call_figures(rounds=3 if _SMOKE else 60)[1]

    def track_round_robin_vs_scipy(self, data):
        """time(ours) / time(scipy eigvalsh_tridiagonal(select='i')), round-robin single calls."""
        return 1.0 / data["rr_speedup_scipy"]

    def track_round_robin_vs_dense(self, data):
        """time(ours) / time(numpy.linalg.eigvalsh), round-robin single calls."""
        return 1.0 / data["rr_speedup_dense"]

    def track_after_numpy_eigvalsh(self, data):
        """time(ours right after numpy.linalg.eigvalsh) / time(ours right after ours)."""
        return data["ours_after numpy eigvalsh"] / data["ours_alone"]

    def track_numpy_eigvalsh_after_ours(self, data):
        """time(numpy.linalg.eigvalsh right after ours) / time(right after itself): our cost to others."""
        return data["numpy eigvalsh_after_ours_ratio"]


class TrainingStep:
    """TridiagSpectral(8, 45, 22) Adam step on a 20k-row synthetic regression."""

    unit = "ratio (lower is better)"
    timeout = 900
    params = [[256, 2048]]
    param_names = ["batch"]

    def setup(self, batch):
        if not _bench.is_available("torch_forward_backward"):
            raise NotImplementedError("needs torch and torch_bridge")
        pin_torch_threads()
        self.times = _bench_context.training_steps(batch_sizes=(batch,), steps=2 if _SMOKE else 20, models=("numba", "scipy", "linear"))[batch]

    def track_vs_scipy_backend(self, batch):
        """time(step, numba backend) / time(step, scipy backend)."""
        return self.times["numba"] / self.times["scipy"]

    def track_vs_linear_floor(self, batch):
        """time(step, numba backend) / time(same step with a linear readout)."""
        return self.times["numba"] / self.times["linear"]
