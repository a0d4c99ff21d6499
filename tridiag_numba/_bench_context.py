"""In-context timings: single calls beside numpy/BLAS, scipy and torch, and a training step.

``_bench.compare`` times each callable in tight loops (many calls per repeat,
best of): a kernel then runs with warm caches and with its own worker threads
awake.  A real program calls this library once between calls into other
libraries, whose thread pools (OpenBLAS's, torch's OpenMP pool) keep spinning
for a while after their own work.  The figures here are what such a program
sees:

* :func:`round_robin` -- one call of each implementation in turn, each timed
  on its own, the starting implementation rotating every round; medians.
* :func:`after` -- one call of ``second`` timed right after one untimed call
  of ``first`` (e.g. ours right after a dense ``numpy.linalg.eigvalsh``, or
  the dense call right after ours), interleaved with the same call right after
  itself ("alone"), so both see the same machine load.
* :func:`training_steps` -- an optimiser step of a ``TridiagSpectral`` model
  on a synthetic tabular regression (20 000 rows, 8 features), interleaved
  step by step with the same model on the scipy backend, with dense
  ``torch.linalg.eigvalsh``, and with a linear readout (the floor: the same
  layers, loss and Adam step without an eigenvalue).

:func:`context_report` runs them all and returns printable lines;
``python -m tridiag_numba`` and the asv suite call it.  Nothing here imports
torch before a torch entry is built.
"""

import gc
import os
import statistics
import time

from tridiag_numba import _bench

__all__ = ["TARGETS", "after", "context_report", "pools", "round_robin", "target_rows", "training_steps"]


def _timed(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _rotate(names, rounds, visit):
    """Call ``visit(name)`` for every name, ``rounds`` times, the first name rotating
    each round; returns ``{name: [visit's results]}``.  The garbage collector is off
    (as in timeit), so that a collection lands on no call."""
    results = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            for i in range(len(names)):
                name = names[(r + i) % len(names)]
                results[name].append(visit(name))
    finally:
        if gc_was_enabled:
            gc.enable()
    return results


def round_robin(funcs, rounds=100):
    """Seconds of single calls, one call of each callable per round, in rotating order.

    Parameters
    ----------
    funcs : mapping of str to callable
        Zero-argument callables (each already called once: nothing here warms up).
    rounds : int
        Calls per callable.

    Returns
    -------
    dict of str to list of float
        Per-call seconds, ``rounds`` entries each.
    """
    return _rotate(list(funcs), rounds, lambda name: _timed(funcs[name]))


def after(second, firsts, rounds=60):
    """Seconds of one call of ``second`` right after one untimed call of each of ``firsts``.

    Parameters
    ----------
    second : callable
        The call timed.
    firsts : mapping of str to callable
        What runs just before it.  Include ``second`` itself (e.g. under the
        name ``"alone"``) for the reference: the same call after itself.
    rounds : int
        Timed calls per entry; the entries take turns, rotating each round.

    Returns
    -------
    dict of str to list of float
    """

    def visit(name):
        firsts[name]()
        return _timed(second)

    return _rotate(list(firsts), rounds, visit)


def median(times):
    return statistics.median(times)


def pools():
    """One line per native thread pool loaded in this process (threadpoolctl), or a note."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["(threadpoolctl not installed: thread pools not listed)"]
    import numba

    lines = []
    for pool in threadpool_info():
        lines.append(
            f"{pool.get('user_api')}: {pool.get('internal_api')} {pool.get('version')} "
            f"({pool.get('threading_layer', '-')}), {pool.get('num_threads')} threads"
        )
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not started"
    lines.append(f"numba: threading layer {layer}, {numba.get_num_threads()} threads")
    return lines


# ----------------------------------------------------------------- single calls


def _torch_matmul(size=384):
    """A torch float32 matmul big enough to run on torch's intra-op pool."""
    import torch

    a = torch.randn(size, size)
    b = torch.randn(size, size)
    return lambda: torch.mm(a, b)


def single_call_figures(shape=(50, 100), dtype="float64", rounds=100, with_torch=True):
    """Medians of single calls of ``kth_eigenvalue`` (and its baselines) in context.

    Returns ``(rows, data)``: printable rows and a dict of the medians (seconds)
    and ratios, for asv.
    """
    p = _bench.make_problem(*shape, dtype=dtype)
    ours = _bench.build("kth_eigenvalue", "tridiag_numba", p)
    scipy_call = _bench.build("kth_eigenvalue", "scipy", p)
    dense = _bench.build("kth_eigenvalue", "numpy_dense", p)
    for f in (ours, scipy_call, dense):
        f()
    data = {}
    rr = round_robin({"ours": ours, "scipy": scipy_call, "numpy_dense": dense}, rounds=rounds)
    m = {k: median(v) for k, v in rr.items()}
    data.update({f"rr_{k}": v for k, v in m.items()})
    data["rr_speedup_scipy"] = m["scipy"] / m["ours"]
    data["rr_speedup_dense"] = m["numpy_dense"] / m["ours"]
    firsts = {"alone": ours, "after numpy eigvalsh": dense, "after scipy": scipy_call}
    if with_torch and _bench.is_available("torch_dense"):
        firsts["after torch matmul"] = _torch_matmul()
        firsts["after torch matmul"]()
    aft = {k: median(v) for k, v in after(ours, firsts, rounds=rounds).items()}
    data.update({f"ours_{k}": v for k, v in aft.items()})
    theirs = {"numpy eigvalsh": (dense, {"alone": dense, "after ours": ours})}
    if "after torch matmul" in firsts:
        mm = firsts["after torch matmul"]
        theirs["torch matmul"] = (mm, {"alone": mm, "after ours": ours})
    their = {}
    for name, (call, f) in theirs.items():
        t = {k: median(v) for k, v in after(call, f, rounds=max(10, rounds // 3)).items()}
        their[name] = t
        data[f"{name}_after_ours_ratio"] = t["after ours"] / t["alone"]

    us = lambda s: f"{s * 1e6:8.1f} us"  # noqa: E731
    rows = [
        f"kth_eigenvalue {_bench.format_shape(shape)} {dtype}, single calls, medians of {rounds}:",
        f"  round-robin (ours, scipy, numpy dense; one call each): ours {us(m['ours'])}, "
        f"scipy {us(m['scipy'])} ({data['rr_speedup_scipy']:.0f}x), "
        f"numpy dense {us(m['numpy_dense'])} ({data['rr_speedup_dense']:.0f}x)",
    ]
    for k, v in aft.items():
        extra = "" if k == "alone" else f"  ({v / aft['alone']:.2f}x alone)"
        rows.append(f"  ours {k:24s} {us(v)}{extra}")
    for name, t in their.items():
        rows.append(
            f"  {name} alone {us(t['alone'])}, right after ours {us(t['after ours'])} "
            f"({t['after ours'] / t['alone']:.2f}x)"
        )
    return rows, data


def torch_figures(shape=(50, 100), rounds=60):
    """Round-robin single forward+backward calls: numba backend, scipy backend, dense autograd."""
    p = _bench.make_problem(*shape, dtype="float64")
    funcs = {
        name: _bench.build("torch_forward_backward", name, p) for name in ("tridiag_numba", "scipy", "torch_dense")
    }
    for f in funcs.values():
        f()
    m = {k: median(v) for k, v in round_robin(funcs, rounds=rounds).items()}
    data = {
        "torch_fb_ours": m["tridiag_numba"],
        "torch_fb_speedup_scipy": m["scipy"] / m["tridiag_numba"],
        "torch_fb_speedup_dense": m["torch_dense"] / m["tridiag_numba"],
    }
    rows = [
        f"torch forward+backward {_bench.format_shape(shape)} float64, round-robin single calls, medians of {rounds}: "
        f"ours {m['tridiag_numba'] * 1e6:.0f} us, scipy backend {m['scipy'] * 1e6:.0f} us "
        f"({data['torch_fb_speedup_scipy']:.1f}x), dense autograd {m['torch_dense'] * 1e6:.0f} us "
        f"({data['torch_fb_speedup_dense']:.0f}x)"
    ]
    return rows, data


# ----------------------------------------------------------------- training step


def _regression_data(rows=20000, features=8, seed=0):
    """Synthetic tabular regression: smooth and interacting features, plus noise."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, features, generator=g)
    y = torch.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + 0.3 * x[:, 3].abs() + 0.1 * torch.randn(rows, generator=g)
    return x, y


def _dense_readout(model):
    """``model``'s layers, with ``torch.linalg.eigvalsh`` of the dense matrix as readout."""
    import torch

    def forward(x):
        d = model.diag(x)
        e = model.offdiag(x)
        a = torch.diag_embed(d) + torch.diag_embed(e, 1) + torch.diag_embed(e, -1)
        return torch.linalg.eigvalsh(a)[..., model.k]

    return forward


def _linear_readout(model):
    """The floor: ``model``'s layers and a linear readout instead of an eigenvalue."""

    def forward(x):
        return model.diag(x).sum(-1) + model.offdiag(x).sum(-1)

    return forward


def training_steps(batch_sizes=(256, 2048), steps=40, features=8, dim=45, seed=0, models=("numba", "scipy", "dense", "linear")):
    """Seconds per Adam step of a TridiagSpectral regression model, step by step interleaved.

    Models: ``TridiagSpectral(features, dim, dim // 2)`` with backend numba and
    scipy, the same layers with dense ``torch.linalg.eigvalsh``, and with a
    linear readout (``models`` picks among them).  The scipy and dense models
    run fewer steps (they take 10-100x longer).  Returns ``{batch_size: {model:
    median seconds}}``.
    """
    import torch

    from torch_bridge import TridiagSpectral

    x, y = _regression_data(features=features, seed=seed)
    results = {}
    for batch in batch_sizes:
        steppers = {}
        for name in models:
            torch.manual_seed(seed)
            model = TridiagSpectral(features, dim, dim // 2, backend="scipy" if name == "scipy" else "numba")
            forward = {"dense": _dense_readout, "linear": _linear_readout}.get(name, lambda m: m)(model)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            gen = torch.Generator().manual_seed(seed + batch)

            def step(forward=forward, opt=opt, gen=gen):
                idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.mse_loss(forward(x[idx]), y[idx])
                loss.backward()
                opt.step()

            step()
            steppers[name] = step
        slow = {"scipy", "dense"}
        n_slow = max(3, steps // (4 if batch > 1000 else 2))
        times = {name: [] for name in steppers}
        for r in range(steps):
            for name in steppers:
                if name in slow and r >= n_slow:
                    continue
                times[name].append(_timed(steppers[name]))
        results[batch] = {name: median(t) for name, t in times.items()}
    return results


def training_rows(results):
    rows = ["TridiagSpectral(8, 45, 22) training step (Adam, MSE, 20k-row synthetic regression), medians:"]
    for batch, m in results.items():
        rows.append(
            f"  batch {batch:5d}: numba {m['numba'] * 1e3:7.2f} ms, scipy backend {m['scipy'] * 1e3:7.2f} ms "
            f"({m['scipy'] / m['numba']:.1f}x), dense eigvalsh {m['dense'] * 1e3:7.2f} ms "
            f"({m['dense'] / m['numba']:.1f}x), linear-readout floor {m['linear'] * 1e3:6.2f} ms "
            f"(numba = {m['numba'] / m['linear']:.2f}x floor)"
        )
    return rows


#: Issue 15's in-context targets: (label, key of the figures, ">=" or "<=", bound).
TARGETS = (
    ("round-robin kth_eigenvalue 50x100: scipy / ours", "rr_speedup_scipy", ">=", 50.0),
    ("round-robin kth_eigenvalue 50x100: numpy dense / ours", "rr_speedup_dense", ">=", 300.0),
    ("ours right after numpy eigvalsh / ours alone", "after_dense_ratio", "<=", 2.0),
    ("torch forward+backward round-robin: scipy backend / ours", "torch_fb_speedup_scipy", ">=", 20.0),
    ("torch forward+backward round-robin: dense autograd / ours", "torch_fb_speedup_dense", ">=", 100.0),
    ("training step, batch 256: scipy backend / numba", "train_256_speedup_scipy", ">=", 15.0),
    ("training step, batch 2048: scipy backend / numba", "train_2048_speedup_scipy", ">=", 40.0),
    ("training step, batch 2048: numba / linear-readout floor", "train_2048_vs_floor", "<=", 2.0),
)


def training_data(results):
    """The targets' keys from :func:`training_steps`' results."""
    data = {}
    for batch, m in results.items():
        data[f"train_{batch}_speedup_scipy"] = m["scipy"] / m["numba"]
        data[f"train_{batch}_vs_floor"] = m["numba"] / m["linear"]
    return data


def target_rows(data):
    """One line per target of :data:`TARGETS` found in ``data``: the ratio measured and met or not."""
    rows = []
    for label, key, op, bound in TARGETS:
        if key in data:
            met = data[key] >= bound if op == ">=" else data[key] <= bound
            rows.append(f"  {label:58s} {data[key]:8.2f}x  (target {op} {bound:g}x: {'met' if met else 'NOT met'})")
    return rows


def load_average():
    """The 1/5/15-minute load averages as text (in-context figures depend on them), or ''."""
    try:
        return "load average %.2f, %.2f, %.2f" % os.getloadavg()
    except (AttributeError, OSError):
        return ""


def context_report(with_torch=True, quick=False, progress=None):
    """All in-context figures as printable lines (see the module docstring), ending with
    the targets of :data:`TARGETS` and the ratios measured in this run."""
    say = progress or (lambda message: None)
    rounds = 30 if quick else 100
    start_load = load_average()
    say("in context: single calls")
    rows, data = single_call_figures(rounds=rounds, with_torch=with_torch)
    data["after_dense_ratio"] = data["ours_after numpy eigvalsh"] / data["ours_alone"]
    if with_torch and _bench.is_available("torch_forward_backward"):
        say("in context: torch forward+backward")
        torch_rows, torch_data = torch_figures(rounds=rounds // 2)
        rows += torch_rows
        data.update(torch_data)
        say("in context: training steps")
        results = training_steps(steps=10 if quick else 40)
        rows += training_rows(results)
        data.update(training_data(results))
    rows.append("Thread pools in this process: " + "; ".join(pools()))
    rows.append(f"Targets (issue 15; same run; {start_load} at the start, {load_average()} at the end):")
    rows += target_rows(data)
    return rows
