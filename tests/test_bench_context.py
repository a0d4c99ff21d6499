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


def test_target_rows_report_each_ratio_against_its_bound():
    data = {"rr_speedup_scipy": 60.0, "rr_speedup_dense": 120.0, "after_dense_ratio": 1.5, "train_2048_vs_floor": 3.0}
    rows = _bench_context.target_rows(data)
    assert len(rows) == 4
    assert "60.00x" in rows[0] and "target >= 50x: met" in rows[0]
    assert "120.00x" in rows[1] and "target >= 300x: NOT met" in rows[1]
    assert "target <= 2x: met" in rows[2]
    assert "3.00x" in rows[3] and "target <= 2x: NOT met" in rows[3]


def test_training_data_gives_the_targets_keys():
    results = {256: {"numba": 1.0, "scipy": 20.0, "dense": 30.0, "linear": 0.5}, 2048: {"numba": 2.0, "scipy": 50.0, "dense": 90.0, "linear": 1.0}}
    data = _bench_context.training_data(results)
    assert data == {"train_256_speedup_scipy": 20.0, "train_256_vs_floor": 2.0, "train_2048_speedup_scipy": 25.0, "train_2048_vs_floor": 2.0}
    keys = {key for _, key, _, _ in _bench_context.TARGETS}
    assert {"train_256_speedup_scipy", "train_2048_speedup_scipy", "train_2048_vs_floor"} <= keys


def test_context_report_ends_with_the_targets(monkeypatch):
    monkeypatch.setattr(
        _bench_context,
        "single_call_figures",
        lambda rounds, with_torch: (["row"], {"rr_speedup_scipy": 51.0, "rr_speedup_dense": 10.0, "ours_after numpy eigvalsh": 3.0, "ours_alone": 1.0}),
    )
    rows = _bench_context.context_report(with_torch=False, quick=True)
    i = next(i for i, row in enumerate(rows) if row.startswith("Targets"))
    assert "load average" in rows[i]
    assert [r.split()[-1] for r in rows[i + 1:]] == ["met)", "met)", "met)"]
    assert "NOT met" in rows[i + 2] and "NOT met" in rows[i + 3] and "3.00x" in rows[i + 3]
