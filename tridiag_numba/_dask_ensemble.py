"""``python -m tridiag_numba --dask N``: the k-th eigenvalue of N random matrices on dask.

A random-matrix ensemble too big to hold: N matrices of order n (d and e
standard normal), generated *inside the tasks* from per-chunk seeds, passed
to :func:`tridiag_numba.kth_eigenvalue` as lazy dask arrays, and reduced per
chunk to (count, sum, sum of squares, min, max) -- so memory holds a few
chunks per worker, never the ensemble.  Prints a progress bar (stderr), the
statistics of the eigenvalue and the throughput in matrices per second.

With ``--dask-compare`` the same chunks (same seeds, same generation code)
also run in this process through the numpy path -- parallel kernels on every
core, one chunk at a time -- interleaved with the dask runs, and both print
their throughput, peak memory and statistics, which must be identical.

Nothing here imports dask before a run starts.
"""

import contextlib
import math
import os
import statistics
import sys
import threading
import time

import numpy as np

#: Columns of a chunk's statistics row.
_STATS = ("count", "sum", "sumsq", "min", "max")


def _count(text):
    """A count such as ``1e8`` or ``250000``."""
    value = float(text)
    if not (value >= 1 and value == int(value)):
        raise ValueError(f"not a positive integer: {text}")
    return int(value)


def add_arguments(parser):
    """The ``--dask*`` options of ``python -m tridiag_numba``."""
    group = parser.add_argument_group("dask ensemble (python -m tridiag_numba --dask N)")
    group.add_argument("--dask", type=_count, metavar="N", default=None,
                       help="instead of the benchmark: the k-th eigenvalue (k = n // 2) of N random matrices on dask")
    group.add_argument("--dask-n", type=int, default=16, help="matrix order n")
    group.add_argument("--dask-chunk", type=_count, default=250_000, help="matrices per task")
    group.add_argument("--dask-scheduler", default="local",
                       help="'local': a LocalCluster, one single-threaded worker process per core, on loopback; "
                            "'threads': dask's threaded scheduler; or a scheduler address tcp://host:8786")
    group.add_argument("--dask-compare", action="store_true",
                       help="also run the numpy path on the same matrices in this process, interleaved")
    group.add_argument("--dask-lazy-arrays", action="store_true",
                       help="run tn.kth_eigenvalue on lazy dask arrays of the ensemble instead of one task per chunk")
    group.add_argument("--dask-repeat", type=int, default=1, help="runs of each path (medians are printed)")


# ------------------------------------------------------------- in the tasks


def chunk_matrices(index, size, n, seed, dtype):
    """The matrices of chunk ``index``: ``d`` (size, n) and ``e`` (size, n-1).

    Seeded by ``(seed, index)``, so a chunk is the same wherever it is made.
    """
    rng = np.random.default_rng([seed, index])
    d = rng.standard_normal((size, n)).astype(dtype, copy=False)
    e = rng.standard_normal((size, n - 1)).astype(dtype, copy=False)
    return d, e


def chunk_stats(w):
    """(1, 5): count, sum, sum of squares, min, max of a chunk's eigenvalues (float64)."""
    w = w.astype(np.float64, copy=False)
    if not w.size:
        return np.array([[0.0, 0.0, 0.0, np.inf, -np.inf]])
    # np.sum, not np.dot: BLAS sums in an order that depends on its thread count.
    return np.array([[w.size, w.sum(), np.sum(w * w), w.min(), w.max()]])


def combine(rows):
    """Ensemble statistics from chunk rows, in chunk order (so both paths agree bit for bit)."""
    rows = np.asarray(rows).reshape(-1, 5)
    count, total, sumsq = rows[:, 0].sum(), rows[:, 1].sum(), rows[:, 2].sum()
    mean = total / count
    return {"count": int(count), "mean": mean, "std": math.sqrt(max(sumsq / count - mean * mean, 0.0)),
            "min": rows[:, 3].min(), "max": rows[:, 4].max()}


def _chunk_sizes(total, chunk):
    full, rest = divmod(total, chunk)
    return (chunk,) * full + ((rest,) if rest else ())


def _generate_pair(offsets, *, chunk, n, seed, float_dtype):
    """``(d, e)`` of the chunk whose matrix indices are ``offsets``."""
    i = int(offsets[0]) // chunk if offsets.size else 0
    return chunk_matrices(i, offsets.size, n, seed, float_dtype)


def lazy_ensemble(total, n, chunk, seed, dtype):
    """Lazy ``(d, e)`` dask arrays of the ensemble, one chunk per task.

    One task makes a chunk's ``d`` and ``e`` (a two-output gufunc over the
    matrix indices), so both stay on one worker and stay contiguous:
    separate tasks for ``d`` and ``e`` (dask does not fuse them into the
    solver's task) may run on different workers and ship a chunk between them.
    """
    import dask.array as da

    offsets = da.arange(total, chunks=chunk)
    meta = (np.empty((0, 0), dtype), np.empty((0, 0), dtype))
    return da.apply_gufunc(_generate_pair, "()->(n),(m)", offsets, output_sizes={"n": n, "m": n - 1}, meta=meta,
                           chunk=chunk, n=n, seed=seed, float_dtype=np.dtype(dtype))


def _chunk_task(index, *, sizes, n, seed, float_dtype):
    """Generate, solve and reduce one chunk in one task: nothing but the
    (1, 5) statistics row leaves the worker."""
    import tridiag_numba as tn
    from tridiag_numba.dask import per_task

    i = int(index[0])
    d, e = chunk_matrices(i, sizes[i], n, seed, float_dtype)
    return chunk_stats(per_task(tn.kth_eigenvalue)(d, e, n // 2))


def stats_graph(total, n, chunk, seed, dtype, lazy_arrays=False):
    """A dask array (chunks, 5) of per-chunk statistics.

    Default: one task per chunk (:func:`_chunk_task`).  ``lazy_arrays``: the
    public API on lazy arrays, ``tn.kth_eigenvalue(d, e, k)`` with ``d``, ``e``
    from :func:`lazy_ensemble` -- the same results, a few more tasks per chunk
    and the output of the generating task kept until the solver has run.
    """
    import dask.array as da

    import tridiag_numba as tn

    sizes = _chunk_sizes(total, chunk)
    if lazy_arrays:
        d, e = lazy_ensemble(total, n, chunk, seed, dtype)
        w = tn.kth_eigenvalue(d, e, n // 2)
        return w.map_blocks(chunk_stats, chunks=((1,) * len(sizes), (5,)), new_axis=1, dtype=np.float64)
    index = da.arange(len(sizes), chunks=1)
    return index.map_blocks(_chunk_task, chunks=((1,) * len(sizes), (5,)), new_axis=1, dtype=np.float64,
                            sizes=sizes, n=n, seed=seed, float_dtype=np.dtype(dtype))


# ------------------------------------------------------------------ the runs


class _PeakRSS:
    """Peak resident memory of some processes, sampled every 20 ms in a thread."""

    def __init__(self, pids):
        import psutil

        self.procs = [psutil.Process(p) for p in pids]
        self.base = [p.memory_info().rss for p in self.procs]
        self.peak = list(self.base)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.02):
            for i, p in enumerate(self.procs):
                self.peak[i] = max(self.peak[i], p.memory_info().rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def growth_mb(self):
        """Peak minus starting RSS per process, MB."""
        return [(p - b) / 1e6 for p, b in zip(self.peak, self.base)]


def _bar(done, total, start, width=30):
    filled = int(width * done / max(total, 1))
    print(f"\r[{'#' * filled}{' ' * (width - filled)}] {done}/{total} chunks  {time.perf_counter() - start:6.1f} s",
          end="" if done < total else "\n", file=sys.stderr, flush=True)


def run_numpy(total, n, chunk, seed, dtype, progress=True):
    """The single-process numpy path: chunk by chunk, parallel kernels."""
    import tridiag_numba as tn

    sizes = _chunk_sizes(total, chunk)
    rows = []
    start = time.perf_counter()
    for i, size in enumerate(sizes):
        d, e = chunk_matrices(i, size, n, seed, dtype)
        rows.append(chunk_stats(tn.kth_eigenvalue(d, e, n // 2)))
        if progress:
            _bar(i + 1, len(sizes), start)
    return combine(rows), time.perf_counter() - start


def run_dask(total, n, chunk, seed, dtype, client=None, lazy_arrays=False, progress=True):
    """The same on dask (:func:`stats_graph`).

    With a ``distributed.Client`` chunks stream back as they finish (progress
    bar on stderr); otherwise dask's threaded scheduler with its ProgressBar.
    """
    parts = stats_graph(total, n, chunk, seed, dtype, lazy_arrays)
    start = time.perf_counter()
    if client is None:
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr) if progress else _nothing():
            rows = parts.compute(scheduler="threads")
    else:
        from distributed import as_completed

        blocks = parts.to_delayed().ravel().tolist()
        futures = client.compute(blocks)
        order = {f.key: i for i, f in enumerate(futures)}
        rows = [None] * len(futures)
        for done, (future, row) in enumerate(as_completed(futures, with_results=True), 1):
            rows[order[future.key]] = row
            if progress:
                _bar(done, len(futures), start)
    return combine(rows), time.perf_counter() - start


@contextlib.contextmanager
def _nothing():
    yield


def _start_client(scheduler):
    if scheduler == "threads":
        return None, None
    import distributed

    if scheduler == "local":
        # Loopback only; the scheduler's HTTP server (dashboard if bokeh is
        # installed) on a free port, not on 8787 that another cluster may hold.
        cluster = distributed.LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address="127.0.0.1:0")
        return distributed.Client(cluster), cluster
    return distributed.Client(scheduler), None


def _worker_pids(client):
    if client is None:
        return [os.getpid()]
    if any(not addr.startswith(("tcp://127.", "inproc://")) for addr in client.scheduler_info()["workers"]):
        return []  # remote workers: their memory is not ours to sample
    return list(client.run(os.getpid).values())


def _describe(client, scheduler):
    if client is None:
        return "dask threaded scheduler, one thread per core, in this process"
    workers = client.scheduler_info()["workers"].values()
    threads = sorted({w["nthreads"] for w in workers})
    kind = "LocalCluster" if scheduler == "local" else f"cluster at {scheduler}"
    return f"{kind}: {len(workers)} worker processes x {'/'.join(map(str, threads))} thread(s)"


def _warm(n, dtype):
    """One tiny chunk, so timed runs exclude numba's cache load (or compile)."""
    import tridiag_numba as tn
    from tridiag_numba._api import serial_kernels

    d, e = chunk_matrices(0, 64, n, 0, dtype)
    with serial_kernels():
        tn.kth_eigenvalue(d, e, n // 2)
    tn.kth_eigenvalue(d, e, n // 2)
    return True


def run(args):
    """Entry point of ``python -m tridiag_numba --dask N``; returns the exit status."""
    total, n, chunk, seed, dtype = args.dask, args.dask_n, min(args.dask_chunk, args.dask), args.seed, args.dtype
    if n < 1 or args.dask_repeat < 1:
        raise SystemExit(f"--dask-n and --dask-repeat must be >= 1, got {n} and {args.dask_repeat}")
    nchunks = len(_chunk_sizes(total, chunk))
    chunk_mb = chunk * (2 * n - 1) * np.dtype(dtype).itemsize / 1e6
    print(f"dask ensemble: lambda_{n // 2} of {total:,} matrices, random {n}x{n} symmetric tridiagonal "
          f"({dtype}, d and e standard normal), {nchunks} chunks of <= {chunk:,} ({chunk_mb:.0f} MB of d and e each), "
          "generated inside the tasks from per-chunk seeds")
    start = time.perf_counter()
    client, cluster = _start_client(args.dask_scheduler)
    try:
        if client is not None:
            client.run(_warm, n, dtype)
        _warm(n, dtype)
        # One untimed chunk per worker thread: the first tasks of a fresh
        # worker pay for imports and for the first touch of chunk-sized memory.
        nthreads = os.cpu_count() if client is None else sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
        run_dask(min(total, chunk * nthreads), n, chunk, seed + 1, dtype, client, args.dask_lazy_arrays, progress=False)
        print(f"{_describe(client, args.dask_scheduler)}; ready in {time.perf_counter() - start:.1f} s "
              "(numba kernels loaded from the on-disk cache, or compiled once per process)")
        results = {"dask": [], "numpy": []}
        stats = {}
        for r in range(args.dask_repeat):
            paths = ("numpy", "dask") if args.dask_compare and r % 2 == 0 else ("dask", "numpy") if args.dask_compare else ("dask",)
            for path in paths:
                pids = [os.getpid()] if path == "numpy" else _worker_pids(client)
                with _PeakRSS(pids) as rss:
                    if path == "numpy":
                        stats[path], seconds = run_numpy(total, n, chunk, seed, dtype)
                    else:
                        stats[path], seconds = run_dask(total, n, chunk, seed, dtype, client, args.dask_lazy_arrays)
                growth = rss.growth_mb() if pids else []
                results[path].append(total / seconds)
                mem = (f"; peak RSS growth {', '.join(f'{g:.0f}' for g in growth)} MB "
                       + ("(this process)" if path == "numpy" or client is None else "(per worker)")) if growth else ""
                print(f"run {r + 1} {path:5s}: {total:,} matrices in {seconds:.2f} s = {total / seconds:.3g} matrices/s{mem}",
                      flush=True)
        s = stats["dask"]
        print(f"lambda_{n // 2}: mean {s['mean']:.6g}, std {s['std']:.6g}, min {s['min']:.6g}, max {s['max']:.6g} "
              f"over {s['count']:,} matrices")
        rate = statistics.median(results["dask"])
        print(f"dask throughput (median of {len(results['dask'])}): {rate:.3g} matrices/s")
        if args.dask_compare:
            same = stats["dask"] == stats["numpy"]
            base = statistics.median(results["numpy"])
            print(f"numpy path in this process (median of {len(results['numpy'])}): {base:.3g} matrices/s; "
                  f"dask / numpy = {rate / base:.2f}; same statistics as the numpy path: {same}")
            if not same:
                return 1
        return 0
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
