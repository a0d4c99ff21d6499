"""Which twin of a kernel runs a call: the parallel one or the serial one.

Every kernel has a parallel and a serial twin computing identical results
(:mod:`._jit`).  The numpy layer asks :func:`_use_serial` before each launch:
:func:`serial_kernels` (tests, callers that want it), a thread that may not
launch on the current threading layer, a child forked from a parent whose
layer cannot fork, and :class:`_Contention` (a cold pool, a stalled launch)
send a call to the serial twin; :func:`_timed` times each parallel launch
for the latter.
"""

import math
import os
import threading
import time
from contextlib import contextmanager

from . import _jit

__all__ = ["serial_kernels"]


class _Local(threading.local):
    # A class default: reading a thread-local attribute that was never set
    # raises and catches AttributeError inside ``getattr`` (~0.4 us a call).
    serial = False


_local = _Local()
_MAIN_THREAD = threading.main_thread().ident


@contextmanager
def serial_kernels():
    """Run this thread's calls on the serial twins of the kernels.

    The parallel and serial kernels compute identical results; tests use this
    to check that, and it is what the package does by itself off the main
    thread when numba's threading layer is not thread-safe.

    Examples
    --------
    >>> import numpy as np
    >>> from tridiag_numba import kth_eigenvalue
    >>> from tridiag_numba._api import serial_kernels
    >>> with serial_kernels():
    ...     w = kth_eigenvalue(np.full(3, 2.0), np.full(2, -1.0), 0)
    >>> round(float(w), 12)
    0.585786437627
    """
    previous = _local.serial
    _local.serial = True
    try:
        yield
    finally:
        _local.serial = previous


#: Below this many recurrence steps (lanes x n) a call runs serially: a
#: parallel launch costs a few us, and a call of about one block per thread
#: gains nothing from a second thread.
_PARALLEL_MIN_WORK = 4096


class _Contention:
    """Choose serial kernels while a parallel launch would cost more than it saves.

    Two rules, both measured on a 2-core machine (figures in the README,
    "In context"):

    * **A cold pool.**  A call that comes more than ``COLD_GAP`` seconds
      after our previous call finds numba's worker asleep (tbb parks its
      workers after a short spin) and, in a real program, the cores in the
      hands of another library's pool that is still spinning (OpenBLAS,
      torch's OpenMP threads).  Waking the worker and getting it a core cost
      50-150 us, against ~50 us for a whole 50 x 100 eigenvalue call run
      serially; right after scipy or a dense numpy ``eigvalsh`` the parallel
      kernel took 150-200 us and the serial twin 75-110 us.  So such a call
      runs serially unless its work (recurrence steps, e.g. lanes x n) is at
      least ``COLD_MIN_WORK``, where half of the work saved pays for the
      wake-up.  The pool is warm within ``COLD_GAP`` of the end of our last
      parallel call; calls in a loop (``LOOP_CALLS`` calls in a row, each
      within ``COLD_GAP`` of the previous one) wake it once and then keep
      it warm.  A single call right after another of ours (e.g. the
      eigenvector kernel after the eigenvalue kernel) does not.
    * **A stalled launch.**  Every parallel call is timed: one that took
      more than ``SLOW`` times the best time per work unit seen for its
      kernel and dtype (plus ``SLACK`` seconds), ``STRIKES`` times in a
      row, marks the cores as contended
      (tbb lets the caller run the blocks no worker has taken, but not one a
      preempted worker holds: milliseconds on a loaded machine), and calls
      run serially for ``BACKOFF`` seconds, after which a parallel call
      probes again.  A stalled probe costs one time slice per ``BACKOFF``.
      The first call of a kernel and dtype is not counted: it may include a
      compile or a cache load; nor is a call that woke a cold pool (its
      wake-up is not contention, and judging it backed tight loops off to
      the serial kernels a third of the time).

    Both only choose between kernels that give identical results.
    """

    SLOW = 4.0
    SLACK = 300e-6
    BACKOFF = 0.25
    COLD_GAP = 1e-3
    COLD_MIN_WORK = 1 << 15
    # Two stalls in a row: a quiet VM stalls a call now and then (tens of ms,
    # the hypervisor's doing), and one back-off sent a tight loop of 60 us
    # calls to the ~100 us serial kernels for BACKOFF seconds; contention
    # stalls every call.
    STRIKES = 2
    # A loop wakes the pool at its 8th call: the wake-up (~100 us in context) costs about
    # what 5-10 warm parallel calls save; 3 woke it in every 'call, call, call' pattern.
    LOOP_CALLS = 8

    def __init__(self):
        # (kernel, dtype) -> best seconds per work unit; inf after the first
        # call (a compile or cache load), which sets no standard
        self.best = {}
        self.until = 0.0
        self.last = -math.inf  # perf_counter() at the start or end of our latest call
        self.last_parallel = -math.inf  # ... at the end of our latest parallel call
        self.streak = 0  # calls in a row, each within COLD_GAP of the previous one
        self.waking = False  # the latest parallel_ok found the pool cold
        self.strikes = 0  # stalled parallel calls in a row

    def parallel_ok(self, work=math.inf):
        """Whether a call of ``work`` recurrence steps may run in parallel now
        (and note the call, for the next one's cold-pool rule)."""
        now = time.perf_counter()
        self.streak = self.streak + 1 if now - self.last <= self.COLD_GAP else 1
        self.last = now
        cold = self.waking = now - self.last_parallel > self.COLD_GAP
        if cold and work < self.COLD_MIN_WORK and self.streak < self.LOOP_CALLS:
            return False  # a cold pool
        return self.until == 0.0 or now >= self.until

    def record(self, key, work, seconds, now=None):
        """Note a parallel call of ``work`` steps that took ``seconds``, ending
        ``now`` (the caller's clock reading; default: now).

        Runs after every parallel call, so the common case (a judged call,
        no stall) is kept short: one dict lookup and two compares.
        """
        if now is None:
            now = time.perf_counter()
        self.last = self.last_parallel = now
        best = self.best.get(key)
        if best is None or self.waking:
            self._unjudged(key, best)
        elif seconds > self.SLOW * best * work + self.SLACK:
            self.strikes += 1
            if self.strikes >= self.STRIKES:
                self.until = now + self.BACKOFF
        else:
            if seconds < best * work:
                self.best[key] = seconds / work
            self.strikes = 0
            self.until = 0.0

    def _unjudged(self, key, best):
        """:meth:`record` for a call that says nothing about contention: the
        first of its kernel and dtype (it may include a compile or a cache
        load), or one that woke a cold pool.  A wake-up takes up to ~0.5 ms
        in context, and judging it backed warm loops off for BACKOFF
        seconds; a stalled pool stalls the next call too, which is judged."""
        if best is None:
            self.best[key] = math.inf  # the next call sets the standard
        if not self.waking:
            self.strikes = 0  # (a waking call leaves the streak of stalls as it was)
        self.waking = False
        self.until = 0.0


_contention = _Contention()


def _timed(parallel, work, *args):
    """``parallel(*args)``, timed for :class:`_Contention`."""
    clock = time.perf_counter
    start = clock()
    parallel(*args)
    end = clock()
    _contention.record((parallel, args[0].dtype.char), work, end - start, end)


def _use_serial(work):
    """Whether this call should run the serial twin of a kernel.

    ``work`` is the number of scalar recurrence steps (e.g. lanes x n).
    ``_local.serial`` is set by :func:`serial_kernels`, and for every thread
    of a child forked after a parallel launch on a layer that is not
    fork-safe (GNU OpenMP, see :func:`_serial_after_fork`).  Otherwise
    :class:`_Contention` decides (a cold pool, a stalled launch).
    """
    if work < _PARALLEL_MIN_WORK or _local.serial:
        return True
    if threading.get_ident() != _MAIN_THREAD and not _jit.layer_is_thread_safe():
        return True
    return not _contention.parallel_ok(work)


def _serial_after_fork():
    """In a forked child: serial kernels everywhere if the parent's layer cannot fork.

    GNU OpenMP's threads do not exist in the child, and its first parallel
    region would hang (multiprocessing's default start method and torch's
    DataLoader workers fork).  ``tbb`` and ``workqueue`` need nothing.
    """
    global _MAIN_THREAD
    _MAIN_THREAD = threading.get_ident()  # the forking thread is the child's only one
    if not _jit.layer_is_fork_safe():
        _Local.serial = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_serial_after_fork)
