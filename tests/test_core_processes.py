"""Forked children after a parallel call in the parent, and numba's threading layer.

multiprocessing's default start method on Linux and torch's DataLoader
workers ``fork``.  GNU OpenMP's pool does not survive a fork: before the tbb
layer and the fork fallback, a child calling a parallel kernel after the
parent had run one hung forever.  Every test runs under a timeout, so a hang
fails instead of blocking the suite.
"""

import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tridiag_numba as tn
from tridiag_numba import _jit, _scheduling
from tridiag_numba.matrices import random_batch

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 180
fork_only = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork start method on this platform"
)


def _big_batch(seed):
    """Large enough (lanes x n well above the API's threshold) for the parallel kernels."""
    return random_batch((256,), 48, seed=seed)


def _child_call(seed):
    d, e = _big_batch(seed)
    return tn.kth_eigenvalue(d, e, 7), tn.kth_eigenpair(d, e, -1)[0]


@pytest.fixture
def parent_ran_parallel(monkeypatch):
    """Run a parallel kernel in this (parent) process first, so the pool exists when we fork."""
    monkeypatch.setattr(_scheduling._Contention, "BACKOFF", 0.0)
    monkeypatch.setattr(_scheduling._Contention, "COLD_MIN_WORK", 0)
    monkeypatch.setattr(_scheduling._contention, "until", 0.0)
    d, e = _big_batch(0)
    tn.kth_eigenvalue(d, e, 3)
    assert _jit.threading_layer() is not None


def test_default_layer_is_fork_and_thread_safe(parent_ran_parallel):
    """With the tbb dependency installed, numba runs the tbb layer (not GNU OpenMP)."""
    if numba_layer_forced():
        pytest.skip("NUMBA_THREADING_LAYER is set in the environment")
    assert _jit.threading_layer() == "tbb"
    assert _jit.layer_is_fork_safe() and _jit.layer_is_thread_safe()


def numba_layer_forced():
    return os.environ.get("NUMBA_THREADING_LAYER", "default") != "default"


@fork_only
def test_fork_pool_after_parallel_call(parent_ran_parallel):
    """A fork Pool's children run parallel-sized calls and agree with the parent bit for bit."""
    want = [_child_call(s) for s in (1, 2, 3)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        got = pool.map_async(_child_call, (1, 2, 3)).get(timeout=TIMEOUT)
    for (w1, w2), (g1, g2) in zip(want, got):
        np.testing.assert_array_equal(g1, w1)
        np.testing.assert_array_equal(g2, w2)


_OMP_SCRIPT = textwrap.dedent(
    """
    import multiprocessing, sys
    import numba
    from numba.np.ufunc import parallel
    import tridiag_numba as tn
    from tridiag_numba.matrices import random_batch

    def call(seed):
        # 1024 x 48: enough work for a parallel launch even on a cold pool (_scheduling._Contention)
        d, e = random_batch((1024,), 48, seed=seed)
        return float(tn.kth_eigenvalue(d, e, 7).sum())

    if __name__ == "__main__":
        want = [call(s) for s in (1, 2)]  # parallel in the parent: GNU OpenMP's pool starts
        layer = numba.threading_layer()
        with multiprocessing.get_context("fork").Pool(2) as pool:
            got = pool.map_async(call, (1, 2)).get(timeout=60)
        print(layer, got == want)
    """
)


@fork_only
def test_fork_after_gnu_openmp_falls_back_to_serial(tmp_path):
    """Under numba's omp layer (not fork-safe), forked children run the serial kernels
    instead of hanging in libgomp."""
    script = tmp_path / "omp_fork.py"
    script.write_text(_OMP_SCRIPT)
    env = dict(os.environ, NUMBA_THREADING_LAYER="omp", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    try:
        proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("a child forked after a GNU OpenMP parallel call hung")
    if proc.returncode != 0 and "No threading layer could be loaded" in proc.stderr:
        pytest.skip("numba's omp layer is not available here")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["omp", "True"], proc.stdout + proc.stderr[-2000:]


@fork_only
def test_torch_dataloader_workers_call_the_library(parent_ran_parallel):
    """A DataLoader with two forked workers whose dataset calls the library (and torch_bridge)."""
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, Dataset

    from torch_bridge import tridiag_eigvalsh

    class Spectra(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            d, e = _big_batch(10 + i)
            w = tn.kth_eigenvalue(d, e, 5)
            wt = tridiag_eigvalsh(torch.from_numpy(d), torch.from_numpy(e), 5)
            return torch.from_numpy(w), wt

    loader = DataLoader(Spectra(), batch_size=2, num_workers=2, multiprocessing_context="fork", timeout=TIMEOUT)
    batches = list(loader)
    assert len(batches) == 2
    for j, (w, wt) in enumerate(batches):
        for r in range(2):
            d, e = _big_batch(10 + 2 * j + r)
            want = tn.kth_eigenvalue(d, e, 5)
            np.testing.assert_array_equal(w[r].numpy(), want)
            np.testing.assert_array_equal(wt[r].numpy(), want)
