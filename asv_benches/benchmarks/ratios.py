"""Time ratios ours / baseline, measured in one process by interleaved repetition.

asv treats lower as better for every benchmark, ``track_*`` included, so the
tracked number is a time ratio: 0.01 means this library takes 1 % of the
baseline's time (100x faster); a regression makes it go up.  Both timings
come from ``tridiag_numba._bench.compare`` (round-robin repeats, best of),
so machine load hits numerator and denominator alike.  float64 only.
"""

from tridiag_numba import _bench

from .common import SHAPES, skip_reason


class RatioVsDense:
    """time(tridiag_numba) / time(numpy.linalg.eigvalsh or eigh on the dense batch)."""

    baseline = "numpy_dense"
    unit = "ratio (time ours / time dense eigh; lower is better)"
    params = [["kth_eigenvalue", "kth_eigenpair", "eigvalsh_all"], SHAPES]
    param_names = ["operation", "shape"]
    timeout = 300

    def setup(self, operation, shape):
        reason = skip_reason(operation, self.baseline, shape)
        if reason is not None:
            raise NotImplementedError(reason)
        problem = _bench.make_problem(*_bench.parse_shape(shape), dtype="float64")
        self.funcs = {name: _bench.build(operation, name, problem) for name in ("tridiag_numba", self.baseline)}
        self.funcs["tridiag_numba"]()

    def track_ratio(self, operation, shape):
        timings = _bench.compare(self.funcs, repeat=5, min_time=0.02, max_time=3.0, warmup=())
        return _bench.ratio(timings, "tridiag_numba", self.baseline)


class RatioVsScipy(RatioVsDense):
    """time(tridiag_numba) / time(scipy.linalg.eigvalsh_tridiagonal or eigh_tridiagonal)."""

    baseline = "scipy"
    unit = "ratio (time ours / time scipy tridiagonal; lower is better)"
