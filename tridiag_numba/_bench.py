"""One registry of timed comparisons, shared by ``python -m tridiag_numba`` and asv.

The registry maps an *operation* (k-th eigenvalue, k-th eigenpair, all
eigenvalues, an index range, and the torch forward / forward+backward passes)
to its *implementations*: this library, ``scipy.linalg``'s tridiagonal
solvers, and dense ``eigh`` from numpy and torch.  Each entry is a *builder*:
it takes a :class:`Problem` and returns a zero-argument callable that runs the
operation once on the whole batch.  Everything that is not the operation
itself -- random inputs, the dense ``(B, n, n)`` matrices, torch tensors --
is built before the callable is returned, so it is never timed.

:func:`compare` times several callables side by side in one process by
interleaved (round-robin) repetition, so that load from other processes hits
all of them alike, and returns per-call times from which :func:`ratio` forms
time ratios.

Nothing here times anything, compiles a kernel or imports torch at import
time; torch and ``torch_bridge`` are imported lazily by the builders that need
them, and :func:`is_available` says whether they can be.
"""

import gc
import importlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

__all__ = [
    "DTYPES",
    "IMPLEMENTATIONS",
    "OPERATIONS",
    "SHAPES",
    "Problem",
    "Timing",
    "autorange",
    "build",
    "compare",
    "dense_from_tridiagonal",
    "first_call_latency",
    "format_shape",
    "implementations",
    "is_available",
    "label",
    "make_problem",
    "needs_warmup",
    "parse_shape",
    "ratio",
]

#: Batch shapes (number of matrices, matrix order) of the issue's benchmark table.
SHAPES = ((50, 100), (4096, 45), (100000, 16))
DTYPES = ("float64", "float32")

#: Human-readable names of the operations, in table order.
OPERATIONS = {
    "kth_eigenvalue": "k-th eigenvalue",
    "kth_eigenpair": "k-th eigenpair",
    "eigvalsh_all": "all eigenvalues (select='a')",
    "eigvalsh_index": "eigenvalues il..iu (select='i')",
    "torch_forward": "torch k-th eigenvalue, forward",
    "torch_forward_backward": "torch k-th eigenvalue, forward+backward",
}

#: Human-readable names of the implementations, in table order.
IMPLEMENTATIONS = {
    "tridiag_numba": "tridiag_numba",
    "scipy": "scipy.linalg tridiagonal",
    "numpy_dense": "numpy.linalg dense",
    "torch_dense": "torch.linalg dense",
}

#: Which optional modules an implementation (or an operation) needs.
_NEEDS = {
    "torch_dense": ("torch",),
    "torch_forward": ("torch", "torch_bridge"),
    "torch_forward_backward": ("torch", "torch_bridge"),
}


def is_available(*names):
    """Whether every implementation/operation in `names` can run here.

    torch and ``torch_bridge`` are optional: this looks them up with
    :func:`importlib.util.find_spec` (``torch_bridge`` is imported, because a
    present but broken bridge should count as unavailable), never failing.
    """
    for name in names:
        for module in _NEEDS.get(name, ()):
            try:
                if module == "torch_bridge":
                    importlib.import_module(module)
                elif importlib.util.find_spec(module) is None:
                    return False
            except Exception:  # noqa: BLE001 -- any import failure means "not here"
                return False
    return True


def parse_shape(text):
    """Parse ``"50x100"`` into ``(50, 100)`` (batch size, matrix order)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        batch, n = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"shape must look like '50x100' (batch x n), got {text!r}") from None
    if batch < 1 or n < 2:
        raise ValueError(f"shape needs batch >= 1 and n >= 2, got {text!r}")
    return batch, n


def format_shape(shape):
    """Inverse of :func:`parse_shape`: ``(50, 100)`` -> ``"50x100"``."""
    return "{}x{}".format(*shape)


def dense_from_tridiagonal(d, e):
    """Dense symmetric matrices ``(..., n, n)`` from diagonals ``d (..., n)``, ``e (..., n-1)``."""
    n = d.shape[-1]
    a = np.zeros(d.shape + (n,), dtype=d.dtype)
    i = np.arange(n)
    a[..., i, i] = d
    a[..., i[:-1], i[1:]] = e
    a[..., i[1:], i[:-1]] = e
    return a


@dataclass
class Problem:
    """A seeded batch of random symmetric tridiagonal matrices and what to compute.

    Attributes
    ----------
    d, e : ndarray, shapes (batch, n) and (batch, n - 1)
        Diagonals, standard normal entries, C-contiguous, of `dtype`.
    k : int
        Index (0-based, ascending) of the eigenvalue the k-th operations ask for.
    select_range : (int, int)
        Inclusive index range of the ``select='i'`` operation.
    """

    d: np.ndarray
    e: np.ndarray
    k: int
    select_range: tuple
    _torch_cache: dict = field(default_factory=dict, repr=False)

    @property
    def shape(self):
        return self.d.shape

    @property
    def dtype(self):
        return self.d.dtype

    @cached_property
    def dense(self):
        """The batch as dense matrices ``(batch, n, n)``, built once."""
        return dense_from_tridiagonal(self.d, self.e)

    def torch_tensor(self, name):
        """``torch.from_numpy`` of ``d``, ``e`` or ``dense``, built once (shares memory)."""
        if name not in self._torch_cache:
            import torch

            self._torch_cache[name] = torch.from_numpy(getattr(self, name))
        return self._torch_cache[name]


def make_problem(batch, n, dtype="float64", k=None, seed=0):
    """A :class:`Problem` of `batch` random ``n x n`` matrices.

    Entries of `d` and `e` are standard normal, drawn in float64 from a
    generator seeded with ``(seed, batch, n)`` and rounded to `dtype`.  `k`
    defaults to ``n // 2``, the middle of the spectrum (50x100 -> k = 50, as in
    the issue's table).  The index range is ``(n // 4, n // 2)``, about a
    quarter of the spectrum.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    rng = np.random.default_rng([seed, batch, n])
    dtype = np.dtype(dtype)
    d = rng.standard_normal((batch, n)).astype(dtype)
    e = rng.standard_normal((batch, n - 1)).astype(dtype)
    k = n // 2 if k is None else int(k)
    return Problem(d=d, e=e, k=k, select_range=(n // 4, n // 2))


# --------------------------------------------------------------------------- registry

#: operation -> implementation -> (label, builder(problem) -> zero-argument callable)
_REGISTRY = {op: {} for op in OPERATIONS}


def _register(operation, implementation, text):
    def decorate(builder):
        _REGISTRY[operation][implementation] = (text, builder)
        return builder

    return decorate


def implementations(operation):
    """Implementation names registered for `operation`, in table order."""
    return [name for name in IMPLEMENTATIONS if name in _REGISTRY[operation]]


def label(operation, implementation):
    """What exactly an entry calls, e.g. ``"scipy.linalg.eigvalsh_tridiagonal(select='i')"``."""
    return _REGISTRY[operation][implementation][0]


def build(operation, implementation, problem):
    """The zero-argument callable that runs `operation` on `problem` once.

    Raises
    ------
    KeyError
        If `implementation` is not registered for `operation`.
    ImportError
        If it needs torch / ``torch_bridge`` and they are not importable.
    """
    try:
        _, builder = _REGISTRY[operation][implementation]
    except KeyError:
        raise KeyError(
            f"no implementation {implementation!r} of {operation!r}; "
            f"registered: {implementations(operation) if operation in _REGISTRY else list(_REGISTRY)}"
        ) from None
    return builder(problem)


def _ours():
    import tridiag_numba

    return tridiag_numba


# this library
@_register("kth_eigenvalue", "tridiag_numba", "tridiag_numba.kth_eigenvalue")
def _ours_kth_eigenvalue(p):
    f, d, e, k = _ours().kth_eigenvalue, p.d, p.e, p.k
    return lambda: f(d, e, k)


@_register("kth_eigenpair", "tridiag_numba", "tridiag_numba.kth_eigenpair")
def _ours_kth_eigenpair(p):
    f, d, e, k = _ours().kth_eigenpair, p.d, p.e, p.k
    return lambda: f(d, e, k)


@_register("eigvalsh_all", "tridiag_numba", "tridiag_numba.eigvalsh_tridiagonal")
def _ours_eigvalsh_all(p):
    f, d, e = _ours().eigvalsh_tridiagonal, p.d, p.e
    return lambda: f(d, e)


@_register("eigvalsh_index", "tridiag_numba", "tridiag_numba.eigvalsh_tridiagonal(select='i')")
def _ours_eigvalsh_index(p):
    f, d, e, r = _ours().eigvalsh_tridiagonal, p.d, p.e, p.select_range
    return lambda: f(d, e, select="i", select_range=r)


# scipy.linalg: batches with a Python loop over LAPACK ?stebz/?stemr calls (scipy >= 1.16)
@_register("kth_eigenvalue", "scipy", "scipy.linalg.eigvalsh_tridiagonal(select='i')")
def _scipy_kth_eigenvalue(p):
    from scipy.linalg import eigvalsh_tridiagonal

    d, e, r = p.d, p.e, (p.k, p.k)
    return lambda: eigvalsh_tridiagonal(d, e, select="i", select_range=r)


@_register("kth_eigenpair", "scipy", "scipy.linalg.eigh_tridiagonal(select='i')")
def _scipy_kth_eigenpair(p):
    from scipy.linalg import eigh_tridiagonal

    d, e, r = p.d, p.e, (p.k, p.k)
    return lambda: eigh_tridiagonal(d, e, select="i", select_range=r)


@_register("eigvalsh_all", "scipy", "scipy.linalg.eigvalsh_tridiagonal")
def _scipy_eigvalsh_all(p):
    from scipy.linalg import eigvalsh_tridiagonal

    d, e = p.d, p.e
    return lambda: eigvalsh_tridiagonal(d, e)


@_register("eigvalsh_index", "scipy", "scipy.linalg.eigvalsh_tridiagonal(select='i')")
def _scipy_eigvalsh_index(p):
    from scipy.linalg import eigvalsh_tridiagonal

    d, e, r = p.d, p.e, p.select_range
    return lambda: eigvalsh_tridiagonal(d, e, select="i", select_range=r)


# dense eigh on the (B, n, n) batch, built before timing; slicing the result is free
@_register("kth_eigenvalue", "numpy_dense", "numpy.linalg.eigvalsh")
@_register("eigvalsh_all", "numpy_dense", "numpy.linalg.eigvalsh")
@_register("eigvalsh_index", "numpy_dense", "numpy.linalg.eigvalsh")
def _numpy_dense_eigvalsh(p):
    a = p.dense
    return lambda: np.linalg.eigvalsh(a)


@_register("kth_eigenpair", "numpy_dense", "numpy.linalg.eigh")
def _numpy_dense_eigh(p):
    a = p.dense
    return lambda: np.linalg.eigh(a)


@_register("kth_eigenvalue", "torch_dense", "torch.linalg.eigvalsh")
@_register("eigvalsh_all", "torch_dense", "torch.linalg.eigvalsh")
@_register("eigvalsh_index", "torch_dense", "torch.linalg.eigvalsh")
def _torch_dense_eigvalsh(p):
    import torch

    a = p.torch_tensor("dense")
    return lambda: torch.linalg.eigvalsh(a)


@_register("kth_eigenpair", "torch_dense", "torch.linalg.eigh")
def _torch_dense_eigh(p):
    import torch

    a = p.torch_tensor("dense")
    return lambda: torch.linalg.eigh(a)


# torch: from tensors d, e to lambda_k (forward) and its gradient w.r.t. d and e
def _torch_inputs(p, requires_grad):
    d = p.torch_tensor("d").clone().requires_grad_(requires_grad)
    e = p.torch_tensor("e").clone().requires_grad_(requires_grad)
    return d, e


def _bridge_callable(p, backend, backward):
    from torch_bridge import tridiag_eigvalsh

    d, e = _torch_inputs(p, backward)
    k = p.k
    if not backward:
        return lambda: tridiag_eigvalsh(d, e, k, backend=backend)

    def forward_backward():
        d.grad = e.grad = None
        tridiag_eigvalsh(d, e, k, backend=backend).sum().backward()

    return forward_backward


def _torch_dense_callable(p, backward):
    import torch

    d, e = _torch_inputs(p, backward)
    k = p.k

    def forward():
        # the dense matrix is part of the graph from (d, e) to lambda_k, so it is timed
        a = torch.diag_embed(d) + torch.diag_embed(e, 1) + torch.diag_embed(e, -1)
        return torch.linalg.eigvalsh(a)[..., k]

    if not backward:
        return forward

    def forward_backward():
        d.grad = e.grad = None
        forward().sum().backward()

    return forward_backward


@_register("torch_forward", "tridiag_numba", "torch_bridge.tridiag_eigvalsh(backend='numba')")
def _bridge_numba_forward(p):
    return _bridge_callable(p, "numba", backward=False)


@_register("torch_forward", "scipy", "torch_bridge.tridiag_eigvalsh(backend='scipy')")
def _bridge_scipy_forward(p):
    return _bridge_callable(p, "scipy", backward=False)


@_register("torch_forward", "torch_dense", "torch.linalg.eigvalsh(dense from d, e)")
def _torch_dense_forward(p):
    return _torch_dense_callable(p, backward=False)


@_register("torch_forward_backward", "tridiag_numba", "torch_bridge.tridiag_eigvalsh(backend='numba')")
def _bridge_numba_forward_backward(p):
    return _bridge_callable(p, "numba", backward=True)


@_register("torch_forward_backward", "scipy", "torch_bridge.tridiag_eigvalsh(backend='scipy')")
def _bridge_scipy_forward_backward(p):
    return _bridge_callable(p, "scipy", backward=True)


@_register("torch_forward_backward", "torch_dense", "torch.linalg.eigvalsh(dense from d, e)")
def _torch_dense_forward_backward(p):
    return _torch_dense_callable(p, backward=True)


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Per-call times of one callable, from :func:`compare`.

    Attributes
    ----------
    number : int
        Calls per repeat (from :func:`autorange`); each time is the mean of these.
    times : list of float
        Seconds per call, one entry per repeat.
    first_call : float
        Seconds of the warm-up call (NaN without one); for this library's
        first call in a process it includes the numba cache load or compile.
    """

    number: int
    times: list
    first_call: float

    @property
    def best(self):
        return min(self.times)

    @property
    def median(self):
        return statistics.median(self.times)


def _time_calls(func, number):
    """Seconds per call of `number` calls of `func`, garbage collector off (as timeit)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            func()
        return (time.perf_counter() - start) / number
    finally:
        if gc_was_enabled:
            gc.enable()


def autorange(func, min_time=0.02):
    """Calls per repeat so that one repeat of `func` takes at least `min_time` seconds.

    Like :meth:`timeit.Timer.autorange`: tries 1, 2, 5, 10, 20, 50, ... calls.
    Returns ``(number, seconds_per_call)``; a callable slower than `min_time`
    is called once.
    """
    number = 1
    while True:
        for factor in (1, 2, 5):
            n = number * factor
            per_call = _time_calls(func, n)
            if per_call * n >= min_time:
                return n, per_call
        number *= 10


def needs_warmup(implementation):
    """Whether the first call of `implementation` costs more than later ones.

    This library compiles or loads its kernels from numba's cache and torch
    initialises lazily; scipy and numpy do neither, and on 100000 matrices a
    warm-up call of scipy's loop would cost seconds for nothing.
    """
    return implementation not in ("scipy", "numpy_dense")


#: Calls of the warm-up loop after the first call (more than
#: ``_scheduling._Contention.LOOP_CALLS``, after which a loop runs in parallel).
WARM_LOOP = 12


def compare(funcs, *, repeat=5, min_time=0.02, max_time=5.0, warmup=None, progress=None):
    """Time several callables side by side in this process by interleaved repetition.

    Each callable in `warmup` is called once (JIT compile, numba cache load,
    lazy imports; its time is reported as the first call) and then
    ``WARM_LOOP`` times untimed (the paths a loop takes).  Then :func:`autorange` sizes each callable's repeats
    to >= `min_time` seconds; its last measurement is the first repeat.  The
    other repeats run round-robin -- one repeat of each callable in turn, the
    starting callable rotating each round -- so that a burst of load from other
    processes lands on all of them alike.  A callable whose repeats would take
    longer than `max_time` seconds in total gets fewer repeats (at least one):
    scipy's Python loop over 100000 matrices takes seconds per call.

    Parameters
    ----------
    funcs : mapping of str to callable
        Zero-argument callables, e.g. from :func:`build`.
    repeat : int
        Repeats per callable (before the `max_time` cap).
    min_time : float
        Minimum seconds per repeat.
    max_time : float
        Cap on the seconds spent in the repeats of one callable.
    warmup : iterable of str, optional
        Names of the callables to call once before timing; default all.
    progress : callable(str), optional
        Called with a short message before each phase (e.g. to print to stderr).

    Returns
    -------
    dict of str to Timing
        In the order of `funcs`.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    names = list(funcs)
    warmup = set(names if warmup is None else warmup)
    first, number, repeats, times = {}, {}, {}, {}
    for name in names:
        if name in warmup:
            if progress is not None:
                progress(f"warm-up {name}")
            first[name] = _time_calls(funcs[name], 1)
            # A loop of calls takes other paths than one call: this library
            # runs a single call on a cold thread pool serially and a loop's
            # later calls in parallel (_scheduling._Contention), so the parallel
            # kernel is loaded from numba's cache only inside a loop.  Warm
            # that path too, or its ~30 ms load lands in autorange, which then
            # sizes repeats of a few calls that never leave the serial start.
            _time_calls(funcs[name], WARM_LOOP)
        else:
            first[name] = float("nan")
        if progress is not None:
            progress(f"autorange {name}")
        number[name], per_call = autorange(funcs[name], min_time)
        times[name] = [per_call]
        repeats[name] = max(1, min(repeat, int(max_time / (per_call * number[name]))))
    rounds = max(repeats.values())
    for r in range(1, rounds):
        if progress is not None:
            progress(f"repeat {r + 1}/{rounds}")
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            if len(times[name]) < repeats[name]:
                times[name].append(_time_calls(funcs[name], number[name]))
    return {name: Timing(number[name], times[name], first[name]) for name in names}


def ratio(timings, name, reference, stat="best"):
    """``time(name) / time(reference)`` from :func:`compare`'s result (< 1: `name` is faster)."""
    return getattr(timings[name], stat) / getattr(timings[reference], stat)


# --------------------------------------------------------------------------- first call


_FIRST_CALL_SCRIPT = """
import json, sys, time
import numpy as np
batch, n, dtype = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
d = rng.standard_normal((batch, n)).astype(dtype)
e = rng.standard_normal((batch, n - 1)).astype(dtype)
t0 = time.perf_counter()
import tridiag_numba
t1 = time.perf_counter()
tridiag_numba.kth_eigenvalue(d, e, n // 2)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_call": t2 - t1}))
"""


def first_call_latency(cache_dir, shape=(50, 100), dtype="float64", timeout=600):
    """Import time and first ``kth_eigenvalue`` call time in a fresh Python process.

    The child runs with ``NUMBA_CACHE_DIR=cache_dir``: an empty directory
    measures a cold compile, a directory filled by an earlier call measures a
    cache load.  Returns ``{"import": seconds, "first_call": seconds}``.
    """
    env = dict(os.environ, NUMBA_CACHE_DIR=os.fspath(cache_dir))
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL_SCRIPT, str(shape[0]), str(shape[1]), str(dtype)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
