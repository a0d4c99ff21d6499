"""Smoke tests of the in-context benchmarks and ``--precompile`` (wiring, never speed)."""

import io

import numpy as np
import pytest

from tridiag_numba import _bench_context, _precompile


def test_round_robin_rotates_and_times_each_call():
    calls = []
    funcs = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = _bench_context.round_robin(funcs, rounds=3)
    assert calls == list("abcbcacab")
    assert all(len(t) == 3 and min(t) >= 0 for t in times.values())


def test_after_runs_first_then_times_second():
    calls = []
    times = _bench_context.after(
        lambda: calls.append("x"), {"alone": lambda: calls.append("y"), "z": lambda: calls.append("z")}, rounds=2
    )
    assert calls == ["y", "x", "z", "x", "z", "x", "y", "x"]
    assert set(times) == {"alone", "z"} and all(len(t) == 2 for t in times.values())


def test_single_call_figures_small():
    rows, data = _bench_context.single_call_figures(shape=(4, 6), rounds=3, with_torch=False)
    assert any("round-robin" in row for row in rows)
    for key in ("rr_ours", "rr_speedup_scipy", "ours_alone", "ours_after numpy eigvalsh", "numpy eigvalsh_after_ours_ratio"):
        assert np.isfinite(data[key]) and data[key] > 0, key


def test_training_steps_small():
    pytest.importorskip("torch")
    results = _bench_context.training_steps(batch_sizes=(16,), steps=2, dim=6)
    assert set(results[16]) == {"numba", "scipy", "dense", "linear"}
    assert all(t > 0 for t in results[16].values())
    assert "batch    16" in _bench_context.training_rows(results)[1]


def test_pools_lists_numba():
    assert any(line.startswith("numba: threading layer") for line in _bench_context.pools())


def test_precompile_tasks_cover_both_dtypes_and_drivers(monkeypatch):
    labels = [label for label, _ in _precompile.tasks(with_torch=False)]
    for dtype in ("float64", "float32"):
        for driver in ("parallel", "serial"):
            assert f"numpy API, {driver}, {dtype}" in labels
    ran = []
    monkeypatch.setattr(_precompile, "tasks", lambda with_torch: [("one", lambda: ran.append(1)), ("two", lambda: ran.append(2))])
    out = io.StringIO()
    times = _precompile.precompile(with_torch=False, stream=out)
    assert ran == [1, 2] and set(times) == {"one", "two"}
    assert out.getvalue().splitlines()[-1].startswith("[" + "#" * 24 + "] 2/2")
