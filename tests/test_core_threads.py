"""Parallel vs serial kernels, and calls from several Python threads.

The serial twins run the same kernel bodies with ``prange`` as ``range``
(tridiag_numba._jit), and every eigenvalue request is computed
independently, so results must be bitwise identical -- any difference
means that work items interfere (shared scratch, lane coupling, races).
Concurrent calls from a thread pool must give the main thread's results
(numba's ``workqueue`` layer aborts the process when two threads launch
parallel kernels at once; the API must fall back to the serial twins).
"""

import concurrent.futures
import threading

import numpy as np
import pytest

import tridiag_numba as tn
from conftest import assert_eigenvalues, assert_eigenvectors, ref_eigh
from tridiag_numba import _scheduling
from tridiag_numba._api import serial_kernels
from tridiag_numba._validate import _consts
from tridiag_numba.matrices import clement, glued_wilkinson, random_batch, split_matrix, wilkinson


def _calls(d, e):
    """Every public entry point (batches of >= 128 matrices of order >= 30
    are large enough for the API to pick the parallel drivers)."""
    n = d.shape[-1]
    k = np.arange(d.shape[0]) % n
    return {
        "eigvalsh": tn.eigvalsh_tridiagonal(d, e),
        "eigh": tn.eigh_tridiagonal(d, e),
        "eigh_i": tn.eigh_tridiagonal(d, e, select="i", select_range=(n // 4, n // 2)),
        "eigh_v": tn.eigh_tridiagonal(d, e, select="v", select_range=(-0.5, 1.5)),
        "kth_eigenvalue": tn.kth_eigenvalue(d, e, k),
        "kth_eigenpair": tn.kth_eigenpair(d, e, -1 - k),
    }


def _assert_identical(a, b, what):
    for key in a:
        x = a[key] if isinstance(a[key], tuple) else (a[key],)
        y = b[key] if isinstance(b[key], tuple) else (b[key],)
        for xi, yi in zip(x, y):
            np.testing.assert_array_equal(xi, yi, err_msg=f"{what}: {key}")


@pytest.fixture
def parallel_calls(monkeypatch):
    """Record which ``*_parallel`` kernels of tridiag_numba._kernels run, so
    the comparison below cannot silently compare serial with serial."""
    import tridiag_numba._kernels as kernels

    # The contention guard must not send these calls to the serial twins on a busy machine.
    monkeypatch.setattr(_scheduling._Contention, "BACKOFF", 0.0)
    monkeypatch.setattr(_scheduling._Contention, "COLD_MIN_WORK", 0)
    monkeypatch.setattr(_scheduling._contention, "until", 0.0)
    called = []
    for name in dir(kernels):
        fn = getattr(kernels, name)
        if name.endswith("_parallel") and callable(fn):
            def spy(*args, _fn=fn, _name=name):
                called.append(_name)
                return _fn(*args)

            monkeypatch.setattr(kernels, name, spy)
    return called


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parallel_equals_serial(dtype, parallel_calls):
    """Parallel and serial drivers give bitwise identical results; the
    parallel results are also correct (eigenvalue/residual bounds)."""
    d, e = random_batch((160,), 40, dtype=dtype, seed=42)
    gd, ge = glued_wilkinson(2, glue=1e-10)  # clusters too (n = 42)
    d[3, :] = gd[:40]
    e[3, :] = ge[:39]
    par = _calls(d, e)
    assert parallel_calls, "no parallel kernel ran on a batch of 160 matrices"
    ran_parallel = set(parallel_calls)
    parallel_calls.clear()
    with serial_kernels():
        ser = _calls(d, e)
    assert not parallel_calls, f"parallel kernels ran inside serial_kernels(): {parallel_calls}"
    assert len(ran_parallel) >= 2, f"only {ran_parallel} ran in parallel"
    # kth_eigenpair's fused eigenvalue + eigenvector kernel among them.
    assert "kth_eigenpairs_parallel" in ran_parallel, ran_parallel
    _assert_identical(par, ser, "parallel vs serial")
    w, v = par["eigh"]
    assert_eigenvalues(w, ref_eigh(d, e, eigvals_only=True), d, e, dtype)
    assert_eigenvectors(d, e, w, v, dtype)


def _chunk_batch(dtype, n=42, B=75):
    """B matrices of order n: random, the LAPACK tester kinds (cut to n), a zero
    matrix, a split one and one holding NaN, so that blocks mix fast, slow and
    inert slots whatever the chunking."""
    d, e = random_batch((B,), n, dtype=np.float64, seed=7)
    for row, (dk, ek) in enumerate((wilkinson(n + 1), glued_wilkinson(2, glue=1e-10), clement(n), split_matrix(3, 14)), start=1):
        d[row], e[row] = dk[:n], ek[: n - 1]
    d[9], e[9] = 0.0, 0.0
    e[11, 20] = 0.0
    d[13, 5] = np.nan
    return d.astype(dtype), e.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("twin", ["parallel", "serial"])
def test_engine_results_do_not_depend_on_the_chunks(dtype, twin):
    """The bisection engine's kernels give the same bits for any chunk size: the
    numpy layer picks it for speed (``_batch.engine_chunk``: one block per chunk,
    one refilling block for a few jobs serially), never for results.  Chunks of
    1, 5, 31, 32, 33 and all jobs, two eigenvalues per matrix and one eigenpair."""
    import tridiag_numba._kernels as K

    d, e = _chunk_batch(dtype)
    B, n = d.shape
    eps, tiny = _consts(np.dtype(dtype))
    values = getattr(K, f"kth_eigenvalues_{twin}")
    pairs = getattr(K, f"kth_eigenpairs_{twin}")
    lane_b = np.repeat(np.arange(B, dtype=np.int64), 2)
    lane_k = np.tile(np.array([3, n - 2], np.int64), B)
    pair_b = np.arange(B, dtype=np.int64)
    pair_k = (np.arange(B, dtype=np.int64) * 7) % n
    results = {}
    for chunk in (1, 5, 31, 32, 33, 2 * B):
        out_v = (np.full(2 * B, -7.0, dtype), np.full(2 * B, -7.0, dtype), np.full(2 * B, 99, np.int32))
        values(d, e, lane_b, lane_k, 0.0, eps, tiny, chunk, *out_v)
        out_p = (np.empty(B, dtype), np.empty(B, dtype), np.zeros(B, np.int32), np.full((B, n, 1), -7.0, dtype), np.zeros(B, np.int32))
        pairs(d, e, pair_b, pair_k, 0.0, eps, tiny, chunk, *out_p)
        results[chunk] = out_v + out_p
    assert results[32][2][26] < 0 and np.isnan(results[32][0][26])  # the NaN matrix is flagged (lanes 26, 27)
    ok = results[32][2] == 0
    assert ok.sum() >= 2 * B - 2  # every finite matrix converged
    finite = np.isfinite(d).all(axis=1)
    ref = ref_eigh(d[finite], e[finite], eigvals_only=True)
    w = results[32][0].reshape(B, 2)[finite]
    np.testing.assert_allclose(w, ref[:, [3, n - 2]], rtol=0, atol=float(64 * eps * np.abs(ref).max()))
    for chunk, out in results.items():
        for got, want in zip(out, results[32]):
            np.testing.assert_array_equal(got, want, err_msg=f"chunk {chunk}")


def test_serial_kernels_is_thread_local_and_restores():
    """serial_kernels() affects only the calling thread and is re-entrant."""
    d, e = random_batch((64,), 20, seed=1)
    want = tn.kth_eigenvalue(d, e, 3)
    with serial_kernels():
        with serial_kernels():
            pass
        inner = tn.kth_eigenvalue(d, e, 3)
    np.testing.assert_array_equal(inner, want)
    np.testing.assert_array_equal(tn.kth_eigenvalue(d, e, 3), want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thread_pool_matches_main_thread(dtype):
    """4 Python threads call every entry point at once (each on its own
    batch, several rounds, behind a barrier so the calls overlap): each
    result is identical to the main thread's result on the same input."""
    inputs = [random_batch((128,), 33, dtype=dtype, seed=100 + i) for i in range(4)]
    want = [_calls(d, e) for d, e in inputs]
    barrier = threading.Barrier(4)

    def work(i):
        barrier.wait()
        return [_calls(*inputs[i]) for _ in range(3)]

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(4)))
    for i, rounds in enumerate(results):
        for r, got in enumerate(rounds):
            _assert_identical(want[i], got, f"thread {i}, round {r}")


def test_thread_pool_inside_serial_context_and_main_parallel():
    """A worker thread inside serial_kernels() while the main thread runs the
    parallel drivers at the same time: both get the reference answers."""
    d, e = random_batch((160,), 30, seed=7)
    want = _calls(d, e)

    def worker():
        with serial_kernels():
            return [_calls(d, e) for _ in range(2)]

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        fut = pool.submit(worker)
        mains = [_calls(d, e) for _ in range(2)]
        others = fut.result()
    for got in mains + others:
        _assert_identical(want, got, "concurrent serial/parallel")


def test_contention_guard_backs_off_and_probes_again(monkeypatch):
    """A parallel call far slower than the best seen for its kernel sends calls to the
    serial twins for BACKOFF seconds; the next parallel call after that probes again."""
    clock = [100.0]
    monkeypatch.setattr(_scheduling.time, "perf_counter", lambda: clock[0])
    guard = _scheduling._Contention()
    kernel = object()
    guard.record(kernel, 10000, 20.0)  # the first call (a compile) is not counted
    assert guard.parallel_ok()
    guard.record(kernel, 10000, 50e-6)  # 5 ns per step: the best so far
    guard.record(kernel, 10000, 60e-6)  # a little slower: still fine
    assert guard.parallel_ok()
    stalled = guard.SLOW * 50e-6 + guard.SLACK + 1e-6
    guard.record(kernel, 10000, stalled)  # one stall: a hiccup, not contention
    assert guard.parallel_ok()
    guard.record(kernel, 10000, 60e-6)  # ... and a normal call clears it
    for _ in range(guard.STRIKES):  # stalls in a row (a worker waited for a time slice)
        guard.record(kernel, 10000, stalled)
    assert not guard.parallel_ok()
    clock[0] += guard.BACKOFF / 2
    assert not guard.parallel_ok()
    clock[0] += guard.BACKOFF
    assert guard.parallel_ok()  # probe
    guard.record(kernel, 20000, 100e-6)  # the probe ran at full speed
    assert guard.parallel_ok() and guard.until == 0.0


def test_waking_a_cold_pool_is_not_a_stall(monkeypatch):
    """The call that wakes a cold pool may be slow (the worker's wake-up), and is not
    judged: judging it backed tight loops off to the serial kernels a third of the time
    (main command, 50 x 100 eigenpair: 120 us instead of 60 us).  The next call, on a
    warm pool, is judged as before."""
    clock = [100.0]
    monkeypatch.setattr(_scheduling.time, "perf_counter", lambda: clock[0])
    guard = _scheduling._Contention()
    kernel, big, gap = object(), guard.COLD_MIN_WORK, guard.COLD_GAP
    guard.record(kernel, big, 1.0)  # first call: not counted
    guard.record(kernel, big, 50e-6)  # the best so far
    stalled = guard.SLOW * 50e-6 + guard.SLACK + 1e-6
    clock[0] += 20 * gap  # another library ran: the pool is cold
    assert guard.parallel_ok(big)
    guard.record(kernel, big, stalled)  # the waking call, slow
    assert guard.parallel_ok(big)  # not a stall: no back-off
    for _ in range(guard.STRIKES):  # slow on a warm pool: stalls
        guard.record(kernel, big, stalled)
    assert not guard.parallel_ok(big)


def test_timed_judges_the_kernel_call_alone(monkeypatch):
    """``_timed`` times the kernel call alone (per kernel and dtype), and the
    call's end is the guard's mark of a warm pool."""
    clock = [100.0]
    monkeypatch.setattr(_scheduling.time, "perf_counter", lambda: clock[0])
    guard = _scheduling._Contention()
    monkeypatch.setattr(_scheduling, "_contention", guard)

    def kernel(a):
        clock[0] += 50e-6 if a.dtype == np.float64 else 20e-6

    for dtype in (np.float64, np.float32):
        for _ in range(2):  # the first call of a kernel and dtype is not counted
            assert guard.parallel_ok(guard.COLD_MIN_WORK)
            clock[0] += 1e-6  # the numpy layer's own work, before the launch
            _scheduling._timed(kernel, 10000, np.zeros(3, dtype))
            assert guard.last_parallel == guard.last == clock[0]
    assert guard.best == {(kernel, "d"): pytest.approx(5e-9), (kernel, "f"): pytest.approx(2e-9)}


def test_contention_backoff_runs_serial_kernels(monkeypatch, parallel_calls):
    """While the guard backs off, the numpy layer runs the serial twins (same results)."""
    d, e = random_batch((160,), 40, seed=3)
    want = tn.kth_eigenvalue(d, e, 5)
    assert parallel_calls
    parallel_calls.clear()
    monkeypatch.setattr(_scheduling._contention, "until", _scheduling.time.perf_counter() + 60.0)
    np.testing.assert_array_equal(tn.kth_eigenvalue(d, e, 5), want)
    assert not parallel_calls


def test_cold_pool_runs_small_calls_serially(monkeypatch):
    """A call runs in parallel only if its work is at least COLD_MIN_WORK, or the pool is
    warm (within COLD_GAP of our last parallel call), or it is the LOOP_CALLS-th call in a
    row each within COLD_GAP of the previous one; the guard's back-off wins over all."""
    clock = [100.0]
    monkeypatch.setattr(_scheduling.time, "perf_counter", lambda: clock[0])
    guard = _scheduling._Contention()
    small, big, gap = guard.COLD_MIN_WORK - 1, guard.COLD_MIN_WORK, guard.COLD_GAP
    for _ in range(guard.LOOP_CALLS - 1):  # the first calls of a loop: cold pool
        assert not guard.parallel_ok(small)
        clock[0] += gap / 2
    assert guard.parallel_ok(small)  # a loop: wake the pool
    clock[0] += 2 * gap
    assert not guard.parallel_ok(small)  # after another library's work: cold again
    clock[0] += 2 * gap
    assert guard.parallel_ok(big)  # enough work to pay for waking the pool
    kernel = object()
    guard.record(kernel, big, 1.0)  # first call of the kernel: not counted
    clock[0] += 10 * gap  # a long parallel call, ending now ...
    guard.record(kernel, big, 10 * gap)
    clock[0] += gap / 2
    assert guard.parallel_ok(small)  # ... leaves the pool warm for the next call
    clock[0] += 2 * gap
    assert not guard.parallel_ok(small)
    clock[0] += gap / 2
    assert not guard.parallel_ok(small)  # right after a serial call of ours: the pool is still cold
    guard.until = clock[0] + guard.BACKOFF  # a stall seen: the back-off wins over a warm pool
    guard.last_parallel = clock[0]
    assert not guard.parallel_ok(small) and not guard.parallel_ok(big)


def test_cold_pool_rule_in_the_numpy_layer(monkeypatch, parallel_calls):
    """Through the numpy layer, with a frozen clock (every call 'right after' the previous):
    the first LOOP_CALLS - 1 calls run the serial twin, the next ones the parallel kernel,
    a call after a long gap the serial twin again; results identical."""
    d, e = random_batch((160,), 40, seed=5)  # 6400 steps: above _PARALLEL_MIN_WORK, below COLD_MIN_WORK
    monkeypatch.setattr(_scheduling._Contention, "COLD_MIN_WORK", 160 * 40 + 1)
    clock = [100.0]
    monkeypatch.setattr(_scheduling.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(_scheduling, "_contention", _scheduling._Contention())
    want = tn.kth_eigenvalue(d, e, 7)
    for _ in range(_scheduling._Contention.LOOP_CALLS - 2):
        np.testing.assert_array_equal(tn.kth_eigenvalue(d, e, 7), want)
    assert not parallel_calls
    for _ in range(2):
        np.testing.assert_array_equal(tn.kth_eigenvalue(d, e, 7), want)
    assert parallel_calls == ["kth_eigenvalues_parallel"] * 2
    clock[0] += 2 * _scheduling._Contention.COLD_GAP
    np.testing.assert_array_equal(tn.kth_eigenvalue(d, e, 7), want)
    assert len(parallel_calls) == 2
