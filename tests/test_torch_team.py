"""The engine's parallel calls on torch's own OpenMP team (:mod:`tridiag_numba._omp_team`).

The torch bridge registers the GNU OpenMP runtime torch loaded; from then on
``kth_eigenvalues`` / ``kth_eigenpairs`` launch on torch's team, each thread
taking chunks from an atomic counter through the serial twins.  The results
must be the serial twins' bits (any chunking gives them), calls from several
threads must work, and a child forked after a team launch must fall back
(GNU OpenMP does not survive ``fork``)."""

import concurrent.futures
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tridiag_numba as tn  # noqa: E402
from tridiag_numba import _omp_team, _scheduling  # noqa: E402
from tridiag_numba._api import serial_kernels  # noqa: E402
from tridiag_numba.matrices import clement, glued_wilkinson, random_batch, split_matrix, wilkinson  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
needs_gomp = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and torch.backends.openmp.is_available()),
    reason="torch without GNU OpenMP on this platform",
)
pytestmark = needs_gomp


@pytest.fixture
def team(monkeypatch):
    """torch's team registered; parallel calls not sent to the serial twins by the
    contention rules; the launches counted."""
    monkeypatch.setattr(_scheduling._Contention, "BACKOFF", 0.0)
    monkeypatch.setattr(_scheduling._Contention, "COLD_MIN_WORK", 0)
    monkeypatch.setattr(_scheduling._contention, "until", 0.0)
    torch.ones(1)  # torch's runtime is loaded by then anyway
    assert _omp_team.use_openmp_runtime("libgomp.so.1")
    launches = []
    for name in ("kth_eigenvalues", "kth_eigenpairs"):
        real = getattr(_omp_team, name)

        def spy(*args, _real=real, _name=name):
            launches.append(_name)
            return _real(*args)

        monkeypatch.setattr(_omp_team, name, spy)
    return launches


def _batch(dtype, n=40, B=150):
    d, e = random_batch((B,), n, dtype=np.float64, seed=11)
    for row, (dk, ek) in enumerate((wilkinson(n + 1), glued_wilkinson(2, glue=1e-10), clement(n), split_matrix(4, 10)), start=1):
        d[row], e[row] = dk[:n], ek[: n - 1]
    d[6], e[6] = 0.0, 0.0
    d[8] *= 1e-150
    e[8] *= 1e-150
    e[9, 17] = 0.0
    d[12, 3] = np.nan
    return d.astype(dtype), e.astype(dtype)


def _calls(d, e):
    n = d.shape[-1]
    k = (np.arange(d.shape[0]) * 5) % n
    return {
        "kth_eigenvalue int k": tn.kth_eigenvalue(d, e, 7, check_finite=False),
        "kth_eigenvalue per-matrix k": tn.kth_eigenvalue(d, e, k, check_finite=False),
        "kth_eigenpair": tn.kth_eigenpair(d, e, -3, check_finite=False),
        "kth_eigenpair per-matrix k": tn.kth_eigenpair(d, e, k, check_finite=False),
        "eigvalsh select='i'": tn.eigvalsh_tridiagonal(d[:60], e[:60], select="i", select_range=(2, 9), check_finite=False),
    }


def _assert_same(a, b):
    for key in a:
        x = a[key] if isinstance(a[key], tuple) else (a[key],)
        y = b[key] if isinstance(b[key], tuple) else (b[key],)
        for xi, yi in zip(x, y):
            np.testing.assert_array_equal(xi, yi, err_msg=key)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_team_gives_the_serial_twins_bits(dtype, team):
    d, e = _batch(dtype)
    d0, e0 = d.copy(), e.copy()
    on_team = _calls(d, e)
    assert {"kth_eigenvalues", "kth_eigenpairs"} <= set(team), team
    with serial_kernels():
        serial = _calls(d, e)
    _assert_same(on_team, serial)
    assert np.isnan(on_team["kth_eigenvalue int k"][12]) and np.isfinite(np.delete(on_team["kth_eigenvalue int k"], 12)).all()
    np.testing.assert_array_equal(d, d0)
    np.testing.assert_array_equal(e, e0)


def test_team_from_several_threads(team):
    """Python threads launching at once each get a team of their own; every result
    is the main thread's."""
    batches = [random_batch((200,), 40, seed=s) for s in range(6)]  # above the parallel threshold
    want = [(tn.kth_eigenvalue(d, e, 4), tn.kth_eigenpair(d, e, 9)) for d, e in batches]
    count = len(team)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda de: (tn.kth_eigenvalue(*de, 4), tn.kth_eigenpair(*de, 9)), batches * 3))
    assert len(team) > count
    for (w, (wp, vp)), (w2, (wp2, vp2)) in zip(want * 3, got):
        np.testing.assert_array_equal(w, w2)
        np.testing.assert_array_equal(wp, wp2)
        np.testing.assert_array_equal(vp, vp2)


@pytest.mark.parametrize(
    "misfit",
    ["strided output", "float32 output beside float64 input", "int32 indices", "int64 codes"],
)
def test_arrays_the_callbacks_cannot_read_go_to_numba(team, misfit, monkeypatch):
    """Arrays outside the numpy layer's contract are not read as raw memory: the
    compiled launcher refuses them and the call goes to numba's parallel driver,
    with the driver's results."""
    import tridiag_numba._kernels as K
    from tridiag_numba._validate import _consts

    d, e = random_batch((70,), 12, seed=5)
    lane_b, lane_k = np.arange(70), np.full(70, 3)
    eps, tiny = _consts(np.float64)
    w_ref, ws_ref, info_ref = np.empty(70), np.empty(70), np.zeros(70, np.int32)
    K.kth_eigenvalues_serial(d, e, lane_b, lane_k, 0.0, eps, tiny, 32, w_ref, ws_ref, info_ref)
    w, ws, info = np.full(70, np.nan), np.empty(70), np.zeros(70, np.int32)
    if misfit == "strided output":
        w = np.full((70, 2), np.nan)[:, 0]
    elif misfit == "float32 output beside float64 input":
        w = np.full(70, np.nan, np.float32)
    elif misfit == "int32 indices":
        lane_k = lane_k.astype(np.int32)
    else:
        info = info.astype(np.int64)
    assert not _omp_team._launch("values", (d, e, lane_b, lane_k, w, ws, info, w, info), 70, 12, 70, 32, 0.0, eps, tiny)
    assert np.isnan(w).all()  # the team ran nothing
    args = (d, e, lane_b, lane_k, 0.0, eps, tiny, 32, w, ws, info)
    if misfit == "strided output":  # numba's driver, for real
        _omp_team.kth_eigenvalues(*args)
        np.testing.assert_array_equal(w, w_ref)
        return
    drivers = []  # the other misfits would compile a driver each: the hand-over is spied
    monkeypatch.setattr(K, "kth_eigenvalues_parallel", lambda *a: drivers.append(a))
    _omp_team.kth_eigenvalues(*args)
    assert len(drivers) == 1 and all(x is y for x, y in zip(drivers[0], args))
    assert np.isnan(w).all()


def test_unknown_runtime_is_not_registered():
    assert not _omp_team.use_openmp_runtime("libdoes-not-exist.so.1")
    assert not _omp_team.active()


def test_bridge_registers_torch_team_and_children_fall_back():
    """In a fresh process: the bridge's first call registers torch's team and the
    eigenpair kernel launches there; a child forked afterwards (multiprocessing's
    fork, as DataLoader workers) drops it and computes on numba's layer."""
    code = textwrap.dedent(
        """
        import multiprocessing, numpy as np, torch
        import torch_bridge, tridiag_numba as tn
        from tridiag_numba import _omp_team, _scheduling
        from tridiag_numba.matrices import random_batch

        # Parallel whatever the machine's load (the contention rules would choose serial kernels).
        _scheduling._Contention.COLD_MIN_WORK = 0
        _scheduling._Contention.BACKOFF = 0.0

        launches = []
        real = _omp_team.kth_eigenpairs
        def spy(*args):
            launches.append(1)
            return real(*args)
        _omp_team.kth_eigenpairs = spy
        d = torch.randn(400, 60, dtype=torch.float64, requires_grad=True)
        e = torch.randn(400, 59, dtype=torch.float64, requires_grad=True)
        for _ in range(3):
            torch_bridge.tridiag_eigvalsh(d, e, 5).sum().backward()
        assert _omp_team.active(), "not registered"
        assert launches, "no launch on the team"

        def child(seed):
            dn, en = random_batch((300,), 50, seed=seed)
            return _omp_team.active(), tn.kth_eigenpair(dn, en, 4)[0], tn.kth_eigenvalue(dn, en, 7)

        if __name__ == "__main__":
            with multiprocessing.get_context("fork").Pool(2) as pool:
                out = pool.map(child, [1, 2])
            for seed, (active, w, w7) in zip([1, 2], out):
                dn, en = random_batch((300,), 50, seed=seed)
                assert not active
                np.testing.assert_array_equal(w, tn.kth_eigenpair(dn, en, 4)[0])
                np.testing.assert_array_equal(w7, tn.kth_eigenvalue(dn, en, 7))
            print("OK")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout + out.stderr
