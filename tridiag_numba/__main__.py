"""``python -m tridiag_numba``: check the answers against scipy, then time them.

1. Prints versions, numba's threading layer and thread count, and the time of
   the first ``kth_eigenvalue`` call in this process (numba cache load, or a
   compile when the cache is cold -- run the command twice to see both).
2. Checks this library against ``scipy.linalg`` on the default case (50
   random 100x100 matrices, k = 50): eigenvalue errors, eigenvector residuals
   and the angle to scipy's eigenvector, in units of ``n * eps * ||T||`` per
   matrix.  Prints PASS or FAIL; on FAIL exits with status 1 without timing.
3. Prints a side-by-side table of time per call on the whole batch for this
   library, scipy's tridiagonal solvers (a Python loop over LAPACK calls) and
   dense eigh (numpy; torch if installed), with how many times faster this
   library is.  All implementations of a row are timed in this process by
   interleaved repetition (:func:`tridiag_numba._bench.compare`).
4. Prints in-context figures (:mod:`tridiag_numba._bench_context`): single
   calls round-robin with scipy and dense eigh, a call right after a dense
   numpy ``eigvalsh`` and after a torch matmul, and a ``TridiagSpectral``
   training step against the scipy backend, dense ``eigvalsh`` and a linear
   readout (``--no-context`` skips them).

``--precompile`` only compiles every kernel into numba's cache (progress bar).

Progress goes to stderr, results to stdout.
"""

import argparse
import os
import platform
import sys
import time

import numpy as np

from tridiag_numba import _bench, _dask_ensemble

#: Errors are measured in units of n * eps * ||T|| per matrix (||T|| = max abs row sum);
#: the same constants as the core tests (tests/conftest.py).
EIGENVALUE_BOUND = 4.0
RESIDUAL_BOUND = 10.0
#: ||v - v_scipy|| * gap / (n * eps * ||T||) <= residual(ours) + residual(scipy): an
#: eigenvector with residual r is within angle r / gap of the exact one (Davis-Kahan).
EIGENVECTOR_BOUND = 2 * RESIDUAL_BOUND

DEFAULT_SIZES = "50x100,4096x45,100000x16"
DEFAULT_OPERATIONS = "kth_eigenvalue,kth_eigenpair"
_COLUMN_NAMES = {
    "tridiag_numba": "tridiag_numba",
    "scipy": "scipy tridiagonal",
    "numpy_dense": "numpy dense eigh",
    "torch_dense": "torch dense eigh",
}
_SHORT_NAMES = {
    "kth_eigenvalue": "eigenvalue",
    "kth_eigenpair": "eigenpair",
    "eigvalsh_all": "all (a)",
    "eigvalsh_index": "range (i)",
    "torch_forward": "torch fwd",
    "torch_forward_backward": "torch f+b",
}


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m tridiag_numba",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help="comma-separated batch shapes BATCHxN; k = N // 2",
    )
    parser.add_argument("--dtype", default="float64", choices=_bench.DTYPES)
    parser.add_argument(
        "--operations",
        default=DEFAULT_OPERATIONS,
        help="comma-separated, from: " + ", ".join(_bench.OPERATIONS),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer and shorter repeats (numbers get noisier)",
    )
    parser.add_argument("--no-dense", action="store_true", help="skip dense eigh (numpy and torch)")
    parser.add_argument("--no-torch", action="store_true", help="skip everything that needs torch")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="interleaved repeats per implementation (default 5, --quick 2); "
        "slow rows (scipy on big batches) get fewer, at least one",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random matrices")
    _dask_ensemble.add_arguments(parser)
    parser.add_argument(
        "--spectra-grid",
        action="store_true",
        help="time the full-spectrum grid (all eigenvalues/eigenpairs, ranges, n up to 10**6; "
        "tridiag_numba/_bench_spectra.py, several minutes) instead of the default table",
    )
    parser.add_argument(
        "--no-context",
        action="store_true",
        help="skip the in-context figures (single calls beside numpy/scipy/torch, training steps)",
    )
    parser.add_argument(
        "--precompile",
        action="store_true",
        help="only compile every kernel (float32 and float64, torch ops unless --no-torch) into numba's cache, with a progress bar",
    )
    args = parser.parse_args(argv)
    try:
        args.sizes = [_bench.parse_shape(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError as exc:
        parser.error(f"--sizes: {exc}")
    args.operations = [s.strip() for s in args.operations.split(",") if s.strip()]
    for op in args.operations:
        if op not in _bench.OPERATIONS:
            parser.error(f"--operations: one of {list(_bench.OPERATIONS)}, got {op!r}")
    if args.repeat is not None and args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    if args.quick:
        args.repeat, args.min_time, args.max_time = args.repeat or 2, 0.005, 1.0
    else:
        args.repeat, args.min_time, args.max_time = args.repeat or 5, 0.02, 3.0
    return args


class _Progress:
    """Progress lines on stderr, prefixed with the seconds since start."""

    def __init__(self):
        self.start = time.perf_counter()
        self.context = ""

    def __call__(self, message):
        elapsed = time.perf_counter() - self.start
        print(f"[{elapsed:7.1f} s] {self.context}{message}", file=sys.stderr, flush=True)


def _format_time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            break
    return f"{seconds / scale:.3g} {unit}"


def _versions(with_torch):
    import numba
    import scipy

    import tridiag_numba

    try:
        from importlib.metadata import version

        ours = getattr(tridiag_numba, "__version__", None) or version("tridiag-numba")
    except Exception:  # noqa: BLE001 -- not installed (running from a checkout)
        ours = "unknown (not installed)"
    parts = [
        f"tridiag_numba {ours} ({os.path.dirname(tridiag_numba.__file__)})",
        f"python {platform.python_version()}",
        f"numpy {np.__version__}",
        f"scipy {scipy.__version__}",
        f"numba {numba.__version__}",
    ]
    if not with_torch:
        parts.append("torch skipped (--no-torch)")
    elif _bench.is_available("torch_dense"):
        import torch

        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    else:
        parts.append("torch not installed")
    return parts


def _threading():
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = f"not initialised (requested {numba.config.THREADING_LAYER!r})"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cache = numba.config.CACHE_DIR or "default (__pycache__ beside the sources)"
    return (
        f"numba threading layer {layer}, {numba.get_num_threads()} threads "
        f"(NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}, {cpus} CPUs usable); "
        f"NUMBA_CACHE_DIR {cache}"
    )


# --------------------------------------------------------------------------- correctness


def _tridiagonal_matvec(d, e, v):
    """T @ v for a batch: d (B, n), e (B, n-1), v (B, n, m)."""
    tv = d[..., :, None] * v
    tv[..., :-1, :] += e[..., :, None] * v[..., 1:, :]
    tv[..., 1:, :] += e[..., :, None] * v[..., :-1, :]
    return tv


def check_against_scipy(dtype="float64", seed=0):
    """Compare this library with scipy.linalg on 50 random 100x100 matrices, k = 50.

    The reference is scipy on the same values in float64.  Returns
    ``(passed, lines)``; every error is a maximum over the batch in units of
    ``n * eps * ||T||`` of its matrix (eps of `dtype`, ||T|| the max abs row
    sum); an exception from this library counts as a failure.
    """
    from scipy import linalg

    import tridiag_numba

    p = _bench.make_problem(50, 100, dtype, seed=seed)
    d, e, k, (il, iu) = p.d, p.e, p.k, p.select_range
    n = d.shape[-1]
    d64, e64 = d.astype(np.float64), e.astype(np.float64)
    abs_e = np.abs(e64)
    norm = np.abs(d64)
    norm[:, :-1] += abs_e
    norm[:, 1:] += abs_e
    unit = n * np.finfo(dtype).eps * norm.max(axis=-1)  # (B,)
    w_all = linalg.eigvalsh_tridiagonal(d64, e64)
    gap = np.minimum(
        np.abs(w_all[:, k] - w_all[:, k - 1]),
        np.abs(w_all[:, k + 1] - w_all[:, k]) if k + 1 < n else np.inf,
    )
    w_k = linalg.eigvalsh_tridiagonal(d64, e64, select="i", select_range=(k, k))[:, 0]
    wv_k, v_k = linalg.eigh_tridiagonal(d64, e64, select="i", select_range=(k, k))
    w_range = linalg.eigvalsh_tridiagonal(d64, e64, select="i", select_range=(il, iu))

    def value_error(w, ref):
        w = np.asarray(w, dtype=np.float64).reshape(ref.shape)
        return np.max(np.abs(w - ref).reshape(len(unit), -1).max(axis=-1) / unit)

    def pair_errors(w, v):
        w = np.asarray(w, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64)[:, :, None]
        residual = np.linalg.norm(_tridiagonal_matvec(d64, e64, v) - w[:, None, None] * v, axis=(1, 2))
        sign = np.sign(np.sum(v[:, :, 0] * v_k[:, :, 0], axis=-1))
        angle = np.linalg.norm(v[:, :, 0] - sign[:, None] * v_k[:, :, 0], axis=-1)
        return (
            value_error(w, wv_k[:, 0]),
            np.max(residual / unit),
            np.max(angle * gap / unit),
        )

    checks = [  # (what, callable returning a list of (quantity, error, bound))
        (
            "kth_eigenvalue(d, e, 50)",
            lambda: [("|w - w_scipy|", value_error(tridiag_numba.kth_eigenvalue(d, e, k), w_k), EIGENVALUE_BOUND)],
        ),
        (
            "kth_eigenpair(d, e, 50)",
            lambda: list(
                zip(
                    ("|w - w_scipy|", "||T v - w v||", "||v - v_scipy|| * gap"),
                    pair_errors(*tridiag_numba.kth_eigenpair(d, e, k)),
                    (EIGENVALUE_BOUND, RESIDUAL_BOUND, EIGENVECTOR_BOUND),
                )
            ),
        ),
        (
            "eigvalsh_tridiagonal(d, e)",
            lambda: [("|w - w_scipy|", value_error(tridiag_numba.eigvalsh_tridiagonal(d, e), w_all), EIGENVALUE_BOUND)],
        ),
        (
            f"eigvalsh_tridiagonal(select='i', ({il}, {iu}))",
            lambda: [
                (
                    "|w - w_scipy|",
                    value_error(tridiag_numba.eigvalsh_tridiagonal(d, e, select="i", select_range=(il, iu)), w_range),
                    EIGENVALUE_BOUND,
                )
            ],
        ),
    ]
    passed = True
    lines = [
        f"Correctness vs scipy.linalg (float64 reference) on 50x100 {dtype}, k = {k}, seed {seed}; "
        "max over the batch, in units of n*eps*||T|| per matrix:"
    ]
    for what, run in checks:
        try:
            results = run()
        except Exception as exc:  # noqa: BLE001 -- report any failure of ours as FAIL
            passed = False
            lines.append(f"  {what:44s} raised {type(exc).__name__}: {exc}  FAIL")
            continue
        for i, (quantity, error, bound) in enumerate(results):
            ok = bool(error <= bound)  # NaN fails
            passed &= ok
            lines.append(
                f"  {what if i == 0 else '':44s} {quantity:22s} {error:9.3g} <= {bound:g}  {'PASS' if ok else 'FAIL'}"
            )
    lines.append("PASS" if passed else "FAIL")
    return passed, lines


# --------------------------------------------------------------------------- timing


def _implementations(operation, args):
    names = []
    for name in _bench.implementations(operation):
        if args.no_dense and name.endswith("_dense"):
            continue
        if args.no_torch and "torch" in (name + operation):
            continue
        if not _bench.is_available(name, operation):
            continue
        names.append(name)
    return names


def _table(args, progress):
    available = {op: _implementations(op, args) for op in args.operations}
    columns = [name for name in _bench.IMPLEMENTATIONS if any(name in names for names in available.values())]
    if "tridiag_numba" not in columns:
        print("(nothing to time: torch_bridge or torch missing for the chosen operations)")
        return [], {}
    width = 22
    header = f"{'batch':>11s} {'k':>5s}  {'operation':<11s}" + "".join(
        f"{_COLUMN_NAMES[c]:>{width}s}" for c in columns
    )
    out = [header]
    print("\n" + header, flush=True)
    labels = {}
    for shape in args.sizes:
        problem = _bench.make_problem(*shape, dtype=args.dtype, seed=args.seed)
        for op in args.operations:
            names = available[op]
            progress.context = f"{_bench.format_shape(shape)} {_bench.OPERATIONS[op]}: "
            progress("building inputs")
            funcs = {name: _bench.build(op, name, problem) for name in names}
            for name in names:
                labels.setdefault(name, set()).add(_bench.label(op, name))
            timings = _bench.compare(
                funcs,
                repeat=args.repeat,
                min_time=args.min_time,
                max_time=args.max_time,
                warmup=[name for name in names if _bench.needs_warmup(name)],
                progress=progress,
            )
            ours = timings["tridiag_numba"].best
            cells = []
            for c in columns:
                if c not in timings:
                    cells.append(f"{'-':>{width}s}")
                elif c == "tridiag_numba":
                    cells.append(f"{_format_time(ours):>{width}s}")
                else:
                    best = timings[c].best
                    cells.append(f"{_format_time(best) + f' ({best / ours:.3g}x)':>{width}s}")
            row = f"{_bench.format_shape(shape):>11s} {problem.k:>5d}  {_SHORT_NAMES[op]:<11s}" + "".join(cells)
            out.append(row)
            print(row, flush=True)
        del problem  # the dense 100000x16x16 batch is 200 MB
    progress.context = ""
    return out, labels


def _context(args, progress):
    """The in-context figures (tridiag_numba._bench_context): what a program calling
    this library between numpy, scipy and torch calls sees."""
    from tridiag_numba import _bench_context

    print(
        "\nIn context (single calls timed one by one, medians; the tight-loop table above is the best case):",
        flush=True,
    )
    for line in _bench_context.context_report(with_torch=not args.no_torch, quick=args.quick, progress=progress):
        print(line, flush=True)


def main(argv=None):
    args = _parse_args(argv)
    if args.dask is not None:
        return _dask_ensemble.run(args)
    progress = _Progress()
    if args.precompile:
        from tridiag_numba._precompile import precompile

        precompile(with_torch=not args.no_torch)
        return 0
    import tridiag_numba

    print("tridiag_numba benchmark: " + "; ".join(_versions(not args.no_torch)))
    progress("first kth_eigenvalue call (numba cache load or compile)")
    p = _bench.make_problem(50, 100, args.dtype, seed=args.seed)
    try:
        start = time.perf_counter()
        tridiag_numba.kth_eigenvalue(p.d, p.e, p.k)
        first_call = time.perf_counter() - start
        print(f"first kth_eigenvalue call in this process (50x100 {args.dtype}): {first_call:.3f} s")
    except Exception as exc:  # noqa: BLE001 -- the check below reports it as FAIL
        print(f"first kth_eigenvalue call raised {type(exc).__name__}: {exc}")
    print(_threading())

    progress("checking against scipy")
    passed, lines = check_against_scipy(args.dtype, seed=args.seed)
    print("\n".join(lines), flush=True)
    if not passed:
        return 1

    print(
        f"\nTime per call on the whole batch ({args.dtype}; best of up to {args.repeat} interleaved repeats "
        f"of >= {args.min_time * 1e3:g} ms each; slow rows get fewer). (Nx) = time / time of tridiag_numba, "
        "i.e. how many times faster tridiag_numba is."
    )
    if args.spectra_grid:
        from tridiag_numba import _bench_spectra

        print("Full-spectrum grid: medians of interleaved repeats; (Nx) = how many times faster tridiag_numba is.")
        _bench_spectra.run(repeat=args.repeat, max_time=5.0 if args.quick else 20.0, with_dense=not args.no_dense,
                           seed=args.seed, progress=progress)
        progress("done")
        return 0
    _, labels = _table(args, progress)
    print("\nCalls timed:")
    for name, texts in labels.items():
        print(f"  {_bench.IMPLEMENTATIONS[name]:26s} " + "; ".join(sorted(texts)))
    print("Dense matrices are built before timing; torch rows time the graph from (d, e).")
    if not args.no_context:
        _context(args, progress)
    progress("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
