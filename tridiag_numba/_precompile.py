"""``python -m tridiag_numba --precompile``: compile every kernel ahead of time.

A fresh install compiles each kernel the first time a call needs it (one
dtype, parallel or serial driver at a time: seconds each).  This runs every
public entry point on tiny inputs, float64 and float32, once on the parallel
drivers and once on their serial twins, and the torch operations forward and
backward when torch is installed, so that later processes load machine code
from numba's cache.  A progress bar goes to stderr.
"""

import sys
import time
from contextlib import contextmanager
from functools import partial

import numpy as np

__all__ = ["precompile", "tasks"]


def _inputs(dtype, batch, n=24):
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, n)).astype(dtype), rng.standard_normal((batch, n - 1)).astype(dtype)


@contextmanager
def _parallel_forced():
    """Parallel drivers for every call big enough for them, whatever the load."""
    from tridiag_numba import _scheduling

    backoff, cold = _scheduling._Contention.BACKOFF, _scheduling._Contention.COLD_MIN_WORK
    _scheduling._Contention.BACKOFF, _scheduling._Contention.COLD_MIN_WORK = 0.0, 0
    try:
        yield
    finally:
        _scheduling._Contention.BACKOFF, _scheduling._Contention.COLD_MIN_WORK = backoff, cold


def _numpy_calls(d, e):
    import tridiag_numba as tn

    n = d.shape[-1]
    k = np.arange(d.shape[0]) % n
    tn.kth_eigenvalue(d, e, n // 2)
    tn.kth_eigenvalue(d, e, k)
    tn.kth_eigenpair(d, e, n // 2)
    tn.eigvalsh_tridiagonal(d, e)
    tn.eigh_tridiagonal(d, e, select="i", select_range=(2, 2))
    tn.eigh_tridiagonal(d, e, select="i", select_range=(2, 4))
    tn.eigh_tridiagonal(d, e, select="v", select_range=(-0.5, 0.5))
    # All eigenpairs: lane QL + lane inverse iteration ('auto' on float64
    # batches), and the LAPACK kernel (_full_spectrum: one kernel for every
    # driver code).
    tn.eigh_tridiagonal(d, e)
    tn.eigh_tridiagonal(d, e, lapack_driver="stevd")
    # Split matrices: every lane of the vector kernels is redone by the full
    # dstein loop (its own kernel, compiled only when needed; _api._redo_vectors).
    split = e.copy()
    split[:, n // 2] = 0.0
    tn.kth_eigenpair(d, split, n // 2)
    tn.eigh_tridiagonal(d, split, select="i", select_range=(2, 2))


def _torch_calls(d, e):
    import torch

    from torch_bridge import tridiag_eigh, tridiag_eigvalsh

    n = d.shape[-1]
    dt = torch.from_numpy(d).requires_grad_()
    et = torch.from_numpy(e).requires_grad_()
    tridiag_eigvalsh(dt, et, n // 2).sum().backward()
    out = tridiag_eigh(dt, et, n // 2)
    (out[0].sum() + out[1].sum()).backward()
    with torch.no_grad():
        tridiag_eigvalsh(dt, et, n // 2)


def tasks(with_torch=True):
    """``[(label, callable)]``: every kernel x dtype x driver that users can reach."""
    from tridiag_numba._api import serial_kernels

    have_torch = False
    if with_torch:
        try:
            import torch  # noqa: F401

            import torch_bridge  # noqa: F401

            have_torch = True
        except ImportError:
            pass
    out = []
    for dtype in ("float64", "float32"):
        big = _inputs(dtype, 512)  # lanes x n far above the serial threshold
        for what, calls in (("numpy API", _numpy_calls), ("torch forward+backward", _torch_calls)):
            if calls is _torch_calls and not have_torch:
                continue
            out.append((f"{what}, parallel, {dtype}", partial(_under, _parallel_forced, calls, big)))
            out.append((f"{what}, serial, {dtype}", partial(_under, serial_kernels, calls, big)))
    return out


def _under(context, calls, args):
    """``calls(*args)`` inside ``context``: the numpy API's calls on numba's own
    layer, the torch bridge's on torch's OpenMP team where the bridge uses it
    (:mod:`._omp_team`), so that both sets of parallel kernels get compiled."""
    from . import _omp_team

    saved = _omp_team._runtime
    if calls is _torch_calls:
        from torch_bridge._ops import share_torch_team

        share_torch_team()
    else:
        _omp_team.use_openmp_runtime(None)
    try:
        with context():
            calls(*args)
    finally:
        _omp_team._runtime = saved


def _bar(done, total, label, elapsed, width=24):
    filled = width * done // total
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {elapsed:6.1f} s  {label}"


def precompile(with_torch=True, stream=None):
    """Compile (or load from numba's cache) every kernel; returns seconds per task."""
    from tridiag_numba import _jit

    stream = sys.stderr if stream is None else stream
    tty = getattr(stream, "isatty", lambda: False)()
    todo = tasks(with_torch)
    start = time.perf_counter()
    times = {}
    with _jit.compile_notices(False):
        for i, (label, run) in enumerate(todo):
            line = _bar(i, len(todo), label, time.perf_counter() - start)
            print(("\r" + line.ljust(100)) if tty else line, end="" if tty else "\n", file=stream, flush=True)
            t = time.perf_counter()
            run()
            times[label] = time.perf_counter() - t
    line = _bar(len(todo), len(todo), "done", time.perf_counter() - start)
    print(("\r" + line.ljust(100) + "\n") if tty else line, end="", file=stream, flush=True)
    return times
