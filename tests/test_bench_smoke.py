"""Smoke tests of the benchmark registry and ``python -m tridiag_numba`` on tiny sizes.

They check wiring (every registered implementation runs and agrees with
scipy, the timing helper returns sane numbers, the main command passes its
own check and prints the table), never speed.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import linalg

from tridiag_numba import _bench
from tridiag_numba.__main__ import check_against_scipy, main

REPO = Path(__file__).resolve().parents[1]
NUMPY_OPERATIONS = ["kth_eigenvalue", "kth_eigenpair", "eigvalsh_all", "eigvalsh_index"]
TORCH_OPERATIONS = ["torch_forward", "torch_forward_backward"]


def _wanted(operation, w_all, problem):
    """The eigenvalues `operation` asks for, from all of them (batch, n)."""
    k, (il, iu) = problem.k, problem.select_range
    if operation in ("kth_eigenvalue", "kth_eigenpair"):
        return w_all[:, k : k + 1]
    return w_all[:, il : iu + 1] if operation == "eigvalsh_index" else w_all


def _eigenvalues(operation, implementation, out, problem):
    """The eigenvalues an entry's output holds, as float64 (batch, m); dense ones return all."""
    w = np.asarray(out[0] if operation == "kth_eigenpair" else out, dtype=np.float64)
    if implementation.endswith("_dense"):
        return _wanted(operation, w, problem)
    return w.reshape(problem.shape[0], -1)


@pytest.mark.parametrize("dtype", _bench.DTYPES)
@pytest.mark.parametrize("operation", NUMPY_OPERATIONS)
def test_registry_entries_agree_with_scipy(operation, dtype):
    problem = _bench.make_problem(3, 5, dtype)
    d64, e64 = problem.d.astype(np.float64), problem.e.astype(np.float64)
    expected = _wanted(operation, linalg.eigvalsh_tridiagonal(d64, e64), problem)
    names = [name for name in _bench.implementations(operation) if _bench.is_available(name)]
    assert names[:3] == ["tridiag_numba", "scipy", "numpy_dense"]
    for name in names:
        w = _eigenvalues(operation, name, _bench.build(operation, name, problem)(), problem)
        # standard normal entries, n = 5: 4 * n * eps * ||T|| < 400 eps
        np.testing.assert_allclose(w, expected, rtol=0, atol=400 * np.finfo(dtype).eps, err_msg=name)


@pytest.mark.parametrize("operation", TORCH_OPERATIONS)
def test_torch_entries_run(operation):
    if not _bench.is_available(operation):
        pytest.skip("torch or torch_bridge not importable")
    problem = _bench.make_problem(3, 5, "float64")
    for name in _bench.implementations(operation):
        _bench.build(operation, name, problem)()


def test_build_names_what_is_registered():
    with pytest.raises(KeyError, match="registered"):
        _bench.build("kth_eigenvalue", "nope", _bench.make_problem(2, 3))


def test_problem_inputs():
    p = _bench.make_problem(4, 6, "float32", seed=1)
    assert p.d.shape == (4, 6) and p.e.shape == (4, 5) and p.dtype == np.float32
    assert p.k == 3 and p.select_range == (1, 3)
    np.testing.assert_array_equal(p.d, _bench.make_problem(4, 6, "float32", seed=1).d)
    a = p.dense
    assert a.shape == (4, 6, 6)
    np.testing.assert_array_equal(a, np.swapaxes(a, -1, -2))
    np.testing.assert_array_equal(np.diagonal(a, 1, -2, -1), p.e)


@pytest.mark.parametrize("text", ["4", "4x", "ax5", "0x5", "4x1"])
def test_parse_shape_rejects(text):
    with pytest.raises(ValueError, match="shape"):
        _bench.parse_shape(text)


def test_compare_interleaves_and_caps_repeats():
    calls = []
    funcs = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    timings = _bench.compare(funcs, repeat=3, min_time=1e-4, warmup=["a"])
    assert list(timings) == ["a", "b"]
    for t in timings.values():
        assert len(t.times) == 3 and t.number >= 1 and 0 < t.best <= t.median
    assert timings["a"].first_call >= 0 and np.isnan(timings["b"].first_call)
    assert _bench.ratio(timings, "a", "b") > 0
    # a callable slower than max_time gets a single repeat
    slow = _bench.compare({"s": lambda: None}, repeat=5, min_time=1e-4, max_time=0.0)
    assert len(slow["s"].times) == 1


def test_warm_up_runs_a_loop_past_the_serial_start():
    """The warm-up calls a callable once and then as a loop, long enough that
    the numpy layer leaves its serial start (_scheduling._Contention.LOOP_CALLS) and
    loads the parallel kernel before autorange sizes the repeats."""
    from tridiag_numba import _scheduling

    assert _bench.WARM_LOOP > _scheduling._Contention.LOOP_CALLS
    calls = []
    autoranged = []
    funcs = {"a": lambda: calls.append(len(autoranged))}
    real = _bench.autorange

    def spy(func, min_time=0.02):
        autoranged.append(len(calls))
        return real(func, min_time)

    try:
        _bench.autorange = spy
        _bench.compare(funcs, repeat=1, min_time=1e-4)
    finally:
        _bench.autorange = real
    assert autoranged == [1 + _bench.WARM_LOOP]


def test_check_against_scipy_passes():
    passed, lines = check_against_scipy("float64")
    assert passed, "\n".join(lines)


def test_main_rejects_bad_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--sizes", "50"])
    assert exc.value.code == 2
    assert "--sizes" in capsys.readouterr().err


def test_main_command_runs():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-m", "tridiag_numba", "--sizes", "4x6", "--quick", "--no-torch", "--no-context"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "\nPASS\n" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("4x6")]
    assert [row[2] for row in rows] == ["eigenvalue", "eigenpair"]
    assert "first kth_eigenvalue call" in out and "threading layer" in out
    assert "done" in proc.stderr
