"""dask arrays through the public API: lazy results, bit-identical to numpy.

Every call is computed on a real ``distributed.LocalCluster`` (two worker
processes on loopback) and on dask's threaded scheduler, and compared with
the numpy path *bit for bit*: each task runs the numpy path on its chunk, and
every eigenvalue request is computed independently of the other matrices of
a batch, so nothing may differ -- any difference means chunks interfere or a
chunk saw the wrong matrices, ``k`` or padding.
"""

import importlib.util
import pathlib

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

import tridiag_numba as tn  # noqa: E402
import tridiag_numba._kernels as kernels  # noqa: E402
from tridiag_numba._api import serial_kernels  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


#: Loopback only.  The scheduler serves HTTP (health, metrics) even without a
#: dashboard, and with ``dashboard_address=None`` it binds port 8787, which
#: another cluster on the machine may hold (a warning, an error here): port 0
#: takes a free port.
CLUSTER = dict(processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0")


@pytest.fixture(scope="module")
def client():
    # Fill numba's cache with the serial kernels that tasks run, in both
    # dtypes, before the workers start (a cold cache would make each worker
    # compile them once: slow, not wrong).
    with serial_kernels():
        for dtype in (np.float64, np.float32):
            d, e = _batch((37,), 9, dtype)
            for call in _calls(9).values():
                call(d, e, np.arange(37) % 9)
    with distributed.LocalCluster(n_workers=2, **CLUSTER) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(params=["distributed", "threads"])
def compute(request):
    """``dask.compute`` on the LocalCluster, or on the threaded scheduler with two threads."""
    if request.param == "distributed":
        c = request.getfixturevalue("client")
        return lambda *xs: c.compute(list(xs), sync=True)
    return lambda *xs: dask.compute(*xs, scheduler="threads", num_workers=2)


def _batch(shape, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    d = rng.standard_normal(shape + (n,)).astype(dtype)
    e = rng.standard_normal(shape + (n - 1,)).astype(dtype)
    # Clusters and exact ties: copies of one matrix, and a split (e = 0).
    if d.size and len(shape) and shape[0] > 3:
        d[1], e[1] = d[0], e[0]
        e[2, ..., n // 2] = 0
    return d, e


def _calls(n):
    """The public functions with each selection, for matrices of order n;
    the same calls for numpy and dask inputs."""
    return {
        "kth_eigenvalue": lambda d, e, k: tn.kth_eigenvalue(d, e, k),
        "kth_eigenvalue_int": lambda d, e, k: tn.kth_eigenvalue(d, e, -2),
        "kth_eigenpair": lambda d, e, k: tn.kth_eigenpair(d, e, k),
        "eigvalsh_a": lambda d, e, k: tn.eigvalsh_tridiagonal(d, e),
        "eigvalsh_i": lambda d, e, k: tn.eigvalsh_tridiagonal(d, e, select="i", select_range=(1, n // 2)),
        "eigvalsh_v": lambda d, e, k: tn.eigvalsh_tridiagonal(d, e, select="v", select_range=(-0.5, 1.0)),
        "eigh_a": lambda d, e, k: tn.eigh_tridiagonal(d, e),
        "eigh_i": lambda d, e, k: tn.eigh_tridiagonal(d, e, select="i", select_range=(n - 2, n - 1)),
        "eigh_v": lambda d, e, k: tn.eigh_tridiagonal(d, e, select="v", select_range=(-0.5, 1.0)),
    }


def _tuple(x):
    return x if isinstance(x, tuple) else (x,)


# Batch shape, n, chunks of d, chunks of e, chunks of k (None: k is numpy).
CHUNKINGS = {
    "batch chunks": ((37,), 9, (8, 9), (8, 8), (8,)),
    "one chunk": ((37,), 9, (37, 9), (37, 8), None),
    "matrix axis split": ((37,), 9, (10, 4), (16, 3), (5,)),
    "2-d batch, e broadcast": ((6, 7), 5, (4, 3, 5), None, (2, 7)),
    "single matrix": ((), 6, (6,), (5,), None),
    "empty batch": ((0,), 6, (4, 6), (4, 5), (4,)),
    "empty batch axis": ((3, 0), 4, (2, 2, 4), (2, 2, 3), None),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(CHUNKINGS))
def test_matches_numpy_bit_for_bit(compute, case, dtype):
    shape, n, dchunks, echunks, kchunks = CHUNKINGS[case]
    d, e = _batch(shape, n, dtype)
    if echunks is None:  # e broadcast along the first batch axis
        e = e[:1]
    k = (np.arange(int(np.prod(shape))) % (2 * n) - n).reshape(shape)
    dd = da.from_array(d, chunks=dchunks)
    ed = da.from_array(e, chunks=echunks or (1,) + dchunks[1:-1] + (n - 1,))
    kd = k if kchunks is None else da.from_array(k, chunks=kchunks)
    lazy, expected = {}, {}
    for name, call in _calls(n).items():
        expected[name] = _tuple(call(d, e, k))
        lazy[name] = _tuple(call(dd, ed, kd))
        for x, ref in zip(lazy[name], expected[name]):
            assert isinstance(x, da.Array), name
            assert (x.shape, x.dtype) == (ref.shape, ref.dtype), name
            # Batch axes chunked like d's batch; the matrix/eigenvalue axes whole.
            nb = len(shape)
            assert x.chunks[:nb] == da.from_array(d, chunks=dchunks).chunks[:nb] or not nb, name
            assert all(len(c) == 1 for c in x.chunks[nb:]), name
    names = list(lazy)
    results = compute(*[x for name in names for x in lazy[name]])
    i = 0
    for name in names:
        for ref in expected[name]:
            np.testing.assert_array_equal(results[i], ref, err_msg=f"{case}: {name}")
            assert results[i].dtype == ref.dtype
            i += 1


def test_order_one_matrices(compute):
    """n = 1: e has a zero-length axis (one empty chunk); no kernel runs."""
    d, e = np.arange(10.0).reshape(10, 1), np.zeros((10, 0))
    dd, ed = da.from_array(d, chunks=(4, 1)), da.from_array(e, chunks=(4, 0))
    calls = [
        lambda d, e: tn.kth_eigenvalue(d, e, 0),
        lambda d, e: tn.kth_eigenpair(d, e, -1),
        lambda d, e: tn.eigh_tridiagonal(d, e),
        lambda d, e: tn.eigvalsh_tridiagonal(d, e, select="v", select_range=(2, 5)),
    ]
    lazy = [x for call in calls for x in _tuple(call(dd, ed))]
    expected = [x for call in calls for x in _tuple(call(d, e))]
    for got, ref in zip(compute(*lazy), expected):
        np.testing.assert_array_equal(got, ref)


def test_mixed_numpy_and_dask_operands(compute):
    """Only e (or only k) a dask array: the result is lazy and chunked like it."""
    d, e = _batch((20,), 7, np.float64)
    k = np.arange(20) % 7
    w1 = tn.kth_eigenvalue(d, da.from_array(e, chunks=(6, 6)), 3)
    w2, v2 = tn.kth_eigenpair(d, e, da.from_array(k, chunks=5))
    assert w1.chunks == ((6, 6, 6, 2),) and w2.chunks == ((5, 5, 5, 5),) and v2.chunks == ((5, 5, 5, 5), (7,))
    r1, r2, s2 = compute(w1, w2, v2)
    np.testing.assert_array_equal(r1, tn.kth_eigenvalue(d, e, 3))
    np.testing.assert_array_equal(r2, tn.kth_eigenpair(d, e, k)[0])
    np.testing.assert_array_equal(s2, tn.kth_eigenpair(d, e, k)[1])


def test_integer_input_promotes_like_numpy(compute):
    d = np.arange(24).reshape(4, 6) % 5
    e = np.ones((4, 5), np.int32)
    w = tn.eigvalsh_tridiagonal(da.from_array(d, chunks=2), da.from_array(e, chunks=2))
    assert w.dtype == np.float64
    np.testing.assert_array_equal(compute(w)[0], tn.eigvalsh_tridiagonal(d, e))


# ------------------------------------------------------------- bad input


def _raises_like_numpy(call, numpy_args, dask_args):
    with pytest.raises(Exception) as expected:
        call(*numpy_args)
    with pytest.raises(expected.type) as got:
        call(*dask_args)  # at graph building: shapes and dtypes need no data
    assert str(got.value) == str(expected.value)


BAD_INPUT = {
    "e too long": (lambda d, e: tn.kth_eigenvalue(d, e, 0), (4, 5), (4, 5)),
    "batch shapes": (lambda d, e: tn.eigvalsh_tridiagonal(d, e), (4, 5), (3, 4)),
    "k broadcast": (lambda d, e: tn.kth_eigenvalue(d, e, np.zeros(3, int)), (4, 5), (4, 4)),
    "n = 0": (lambda d, e: tn.kth_eigenpair(d, e, 0), (4, 0), (4, 0)),
    "scalar d": (lambda d, e: tn.kth_eigenvalue(d, e, 0), (), (0,)),
    "k out of range": (lambda d, e: tn.kth_eigenvalue(d, e, 5), (4, 5), (4, 4)),
    "k array out of range": (lambda d, e: tn.kth_eigenpair(d, e, np.array([0, 1, -6, 2])), (4, 5), (4, 4)),
    "k float": (lambda d, e: tn.kth_eigenvalue(d, e, np.zeros(4)), (4, 5), (4, 4)),
    "select": (lambda d, e: tn.eigh_tridiagonal(d, e, select="x"), (4, 5), (4, 4)),
    "select_range i": (lambda d, e: tn.eigvalsh_tridiagonal(d, e, select="i", select_range=(2, 5)), (4, 5), (4, 4)),
    "select_range v": (lambda d, e: tn.eigh_tridiagonal(d, e, select="v", select_range=(1.0, 0.0)), (4, 5), (4, 4)),
    "tol": (lambda d, e: tn.kth_eigenvalue(d, e, 0, tol=np.nan), (4, 5), (4, 4)),
    "lapack_driver": (lambda d, e: tn.eigvalsh_tridiagonal(d, e, lapack_driver="dsyev"), (4, 5), (4, 4)),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_same_error_as_numpy(case):
    call, dshape, eshape = BAD_INPUT[case]
    d, e = np.ones(dshape), np.ones(eshape)
    _raises_like_numpy(call, (d, e), (da.from_array(d, chunks=2), da.from_array(e, chunks=2)))


@pytest.mark.parametrize("dtype", [np.complex128, object, "U3"])
@pytest.mark.parametrize("which", ["d", "e"])
def test_bad_dtype_same_error_as_numpy(dtype, which):
    d, e = np.ones((4, 5)), np.ones((4, 4))
    if which == "d":
        d = d.astype(dtype)
    else:
        e = e.astype(dtype)
    dd = da.from_array(d, chunks=2) if dtype in (np.complex128,) else d
    ed = da.from_array(e, chunks=2)
    _raises_like_numpy(lambda d, e: tn.kth_eigenvalue(d, e, 0), (d, e), (dd, ed))


@pytest.mark.parametrize("dd,de", [(np.float16, np.float16), (np.int8, np.int64), (">f8", ">f8"), (">f4", np.float32)])
def test_dtype_rule_as_numpy(dd, de):
    """The dask graph computes in the dtype the numpy path does (scipy's rule), same values."""
    rng = np.random.default_rng(5)
    d = (rng.standard_normal((6, 5)) * 4).astype(dd)
    e = (rng.standard_normal((6, 4)) * 4).astype(de)
    want = tn.kth_eigenvalue(d, e, 2)
    got = tn.kth_eigenvalue(da.from_array(d, chunks=2), da.from_array(e, chunks=3), 2)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.compute(scheduler="sync"), want)
    w_want = tn.eigvalsh_tridiagonal(d, e)
    w_got = tn.eigvalsh_tridiagonal(da.from_array(d, chunks=2), da.from_array(e, chunks=2))
    assert w_got.dtype == w_want.dtype
    np.testing.assert_array_equal(w_got.compute(scheduler="sync"), w_want)


CALLS_FOR_NAN = {
    "kth_eigenvalue": lambda d, e, **kw: tn.kth_eigenvalue(d, e, 1, **kw),
    "kth_eigenpair": lambda d, e, **kw: tn.kth_eigenpair(d, e, 1, **kw),
    "eigvalsh_a": lambda d, e, **kw: tn.eigvalsh_tridiagonal(d, e, **kw),
    "eigh_i": lambda d, e, **kw: tn.eigh_tridiagonal(d, e, select="i", select_range=(0, 2), **kw),
    "eigvalsh_v": lambda d, e, **kw: tn.eigvalsh_tridiagonal(d, e, select="v", select_range=(-1, 1), **kw),
}


@pytest.mark.parametrize("where", ["d", "e"])
@pytest.mark.parametrize("name", list(CALLS_FOR_NAN))
def test_nonfinite_raises_at_compute_like_numpy(compute, name, where):
    """NaN/inf need the data: the task raises the numpy path's ValueError at
    compute time (select='v' counts eigenvalues first, so it raises then);
    with check_finite=False the matrix gives NaN, bit-identical to numpy."""
    call = CALLS_FOR_NAN[name]
    d, e = _batch((12,), 6, np.float64)
    (d if where == "d" else e)[9, 2] = np.nan if where == "d" else np.inf
    with pytest.raises(ValueError) as expected:
        call(d, e)
    dd, ed = da.from_array(d, chunks=(4, 6)), da.from_array(e, chunks=(4, 5))
    with pytest.raises(ValueError) as got:
        compute(*_tuple(call(dd, ed)))
    assert str(got.value) == str(expected.value)
    results = compute(*_tuple(call(dd, ed, check_finite=False)))
    for got_x, ref in zip(results, _tuple(call(d, e, check_finite=False))):
        np.testing.assert_array_equal(got_x, ref)


def test_nonfinite_check_is_lazy():
    d = da.from_array(np.full((8, 4), np.nan), chunks=4)
    w = tn.kth_eigenvalue(d, da.ones((8, 3), chunks=4), 0)  # builds the graph without reading d
    with pytest.raises(ValueError, match="d must contain only finite values"):
        w.compute(scheduler="sync")


def test_dask_k_out_of_range_raises_at_compute(compute):
    d, e = _batch((12,), 6, np.float64)
    k = da.from_array(np.r_[np.zeros(11, int), 6], chunks=4)
    w = tn.kth_eigenvalue(d, e, k)
    with pytest.raises(ValueError, match=r"k must satisfy -n <= k < n for n = 6; got k in \[0, 6\]"):
        compute(w)


# --------------------------------------------------------- threads, cache


def test_tasks_run_serial_kernels(monkeypatch):
    """Two dask threads must not each launch a parallel kernel (2 x 2 numba
    threads on 2 cores; an abort under the workqueue layer): tasks run the
    serial twins, also for batches big enough for the parallel drivers."""
    called = []
    for name in dir(kernels):
        if name.endswith("_parallel"):
            fn = getattr(kernels, name)
            monkeypatch.setattr(kernels, name, lambda *a, _fn=fn, _name=name: called.append(_name) or _fn(*a))
    d, e = _batch((2048,), 40, np.float64)
    tn.kth_eigenvalue(d, e, 3)
    assert called, "the spy must see the numpy path's parallel kernels"
    called.clear()
    dd, ed = da.from_array(d, chunks=(512, 40)), da.from_array(e, chunks=(512, 39))
    w, (w2, v2) = tn.kth_eigenvalue(dd, ed, 3), tn.kth_eigenpair(dd, ed, 3)
    r = dask.compute(w, w2, v2, tn.eigh_tridiagonal(dd, ed, select="v", select_range=(0, 1)), scheduler="threads", num_workers=2)
    assert called == []
    np.testing.assert_array_equal(r[0], tn.kth_eigenvalue(d, e, 3))


def _cache_stats():
    """(hits, misses) of numba's on-disk cache over every kernel, in this process."""
    import numba

    import tridiag_numba._kernels as K

    hits = misses = 0
    for fn in vars(K).values():
        if isinstance(fn, numba.core.registry.CPUDispatcher):
            hits += sum(fn.stats.cache_hits.values())
            misses += sum(fn.stats.cache_misses.values())
    return hits, misses


def test_workers_load_kernels_from_numba_cache():
    """A fresh worker process loads the kernels from the on-disk cache that
    this process wrote: no compile in a worker, let alone per task."""
    d, e = _batch((64,), 8, np.float32)
    with serial_kernels():  # the kernels a task runs, now in the cache
        expected = tn.kth_eigenpair(d, e, 2)
    with distributed.LocalCluster(n_workers=1, **CLUSTER) as cluster, distributed.Client(cluster) as c:
        assert c.run(_cache_stats) == {w: (0, 0) for w in c.scheduler_info()["workers"]}
        w, v = c.compute(list(tn.kth_eigenpair(da.from_array(d, chunks=16), da.from_array(e, chunks=16), 2)), sync=True)
        stats = c.run(_cache_stats)
    np.testing.assert_array_equal(w, expected[0])
    np.testing.assert_array_equal(v, expected[1])
    assert all(hits >= 1 and misses == 0 for hits, misses in stats.values()), stats


# -------------------------------------------------------- examples, demo


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_xarray_example_runs(capsys):
    pytest.importorskip("xarray")
    example = _load(ROOT / "examples" / "xarray_ensemble.py", "xarray_ensemble")
    assert example.main(["--members", "24", "--disorder", "3", "--sites", "12", "--chunk", "10"]) == 0
    assert "identical to the numpy path: True" in capsys.readouterr().out


@pytest.mark.parametrize("scheduler, lazy_arrays", [("cluster", False), ("threads", True)])
def test_ensemble_demo_matches_numpy_path(client, capsys, scheduler, lazy_arrays):
    """``python -m tridiag_numba --dask N``: generated in the tasks from
    per-chunk seeds, reduced to statistics; the same statistics, bit for bit,
    as the in-process numpy loop over the same chunks (exit status 1 if not)."""
    from tridiag_numba import __main__ as cli

    argv = ["--dask", "3e4", "--dask-chunk", "7000", "--dask-compare"]
    argv += ["--dask-scheduler", client.scheduler.address if scheduler == "cluster" else "threads"]
    argv += ["--dask-lazy-arrays"] if lazy_arrays else []
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "30,000 matrices" in out and "same statistics as the numpy path: True" in out
