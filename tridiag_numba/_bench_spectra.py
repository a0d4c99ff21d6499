"""The full-spectrum benchmark grid: ``python -m tridiag_numba --spectra-grid``.

All eigenvalues, all eigenpairs, index ranges, a 1000-fold cluster and one
eigenpair of a matrix of order 10**6 -- this library against scipy (and dense
numpy ``eigvalsh``/``eigh`` for small matrices), timed side
by side in this process by interleaved repetition
(:func:`tridiag_numba._bench.compare`); medians are reported.  The 10**6
cells also report the peak memory traced during one call (numpy and numba
allocations, via :mod:`tracemalloc`).  Dense numpy is timed for n <= 100.

The cells are issue 12's: n in {16, 100, 1000, 4000} x batch in {1, 50, 1000}
with batch * n**2 <= 2e8, eigenvalues only and with vectors, plus the rows of
its table.
"""

import tracemalloc

import numpy as np

from . import _bench
from . import _drivers as D
from . import matrices as tm

#: (batch, n) of the grid: batch * n**2 <= 2e8.
GRID = [(b, n) for n in (16, 100, 1000, 4000) for b in (1, 50, 1000) if b * n * n <= 2e8]
#: Dense eigh (numpy) is timed for small matrices only, up to this many
#: matrix entries: beyond, it is no contender and takes minutes.
DENSE_MAX_N = 100
DENSE_MAX_ENTRIES = 2 * 10**6


def _cells():
    """(label, batch, n, kind, extra) for every row; kind is one of
    'values', 'vectors', 'index', 'cluster', 'kth_pair', 'kth_value'."""
    cells = []
    for kind in ("values", "vectors"):
        for b, n in GRID:
            cells.append((f"{'eigvalsh' if kind == 'values' else 'eigh'} all {b}x{n}", b, n, kind, None))
    cells += [
        ("eigh all 10x1000", 10, 1000, "vectors", None),
        ("eigh all 1000x32", 1000, 32, "vectors", None),
        ("eigh select='i' 10 pairs 1000x32", 1000, 32, "index", (11, 20)),
        ("eigh select='i' 1000-fold cluster n=3000", 1, 3000, "cluster", (1000, 1999)),
        ("kth_eigenpair n=10^6", 1, 10**6, "kth_pair", None),
        ("kth_eigenvalue n=10^6", 1, 10**6, "kth_value", None),
    ]
    return cells


def _problem(b, n, kind, seed):
    if kind == "cluster":
        d, e = tm.split_matrix(1000, block=3)
        return d, e
    rng = np.random.default_rng(seed)
    shape = (n,) if b == 1 and kind.startswith("kth") else (b, n)
    return rng.standard_normal(shape), rng.standard_normal(shape[:-1] + (n - 1,))


def _funcs(d, e, kind, extra, with_dense):
    import scipy.linalg as sl

    import tridiag_numba as tn

    n = d.shape[-1]
    if kind == "values":
        funcs = {"tridiag_numba": lambda: tn.eigvalsh_tridiagonal(d, e), "scipy": lambda: sl.eigvalsh_tridiagonal(d, e)}
    elif kind == "vectors":
        funcs = {"tridiag_numba": lambda: tn.eigh_tridiagonal(d, e), "scipy": lambda: sl.eigh_tridiagonal(d, e)}
    elif kind in ("index", "cluster"):
        funcs = {
            "tridiag_numba": lambda: tn.eigh_tridiagonal(d, e, select="i", select_range=extra),
            "scipy": lambda: sl.eigh_tridiagonal(d, e, select="i", select_range=extra),
        }
    else:
        k = n // 2
        if kind == "kth_pair":
            funcs = {
                "tridiag_numba": lambda: tn.kth_eigenpair(d, e, k),
                "scipy": lambda: sl.eigh_tridiagonal(d, e, select="i", select_range=(k, k)),
            }
        else:
            funcs = {
                "tridiag_numba": lambda: tn.kth_eigenvalue(d, e, k),
                "scipy": lambda: sl.eigvalsh_tridiagonal(d, e, select="i", select_range=(k, k)),
            }
    if with_dense and kind in ("values", "vectors") and n <= DENSE_MAX_N and d.size * n <= DENSE_MAX_ENTRIES:
        dense = _bench.dense_from_tridiagonal(d, e)
        funcs["numpy_dense"] = (lambda: np.linalg.eigvalsh(dense)) if kind == "values" else (lambda: np.linalg.eigh(dense))
    return funcs


def _route(b, n, kind, extra, e):
    if kind.startswith("kth"):
        return D.choose_kth(b, n)
    sel = "a" if kind in ("values", "vectors") else "i"
    m = n if sel == "a" else extra[1] - extra[0] + 1
    return D.choose("auto", sel, kind == "values", b, n, m, e.reshape(-1, n - 1))


def _peak_mib(func):
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _fmt(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            break
    return f"{seconds / scale:.3g} {unit}"


def run(*, repeat=3, min_time=0.02, max_time=20.0, with_dense=True, seed=0, progress=None, out=print):
    """Time every cell; print one Markdown table row per cell as it finishes.

    Returns a list of dicts (label, route, times, ratios) for the caller.
    """
    header = "| case | route | tridiag_numba | scipy | scipy/ours | numpy dense | dense/ours |"
    out(header)
    out("|---|---|---|---|---|---|---|")
    rows = []
    for label, b, n, kind, extra in _cells():
        if progress is not None:
            progress(f"{label}: inputs")
        d, e = _problem(b, n, kind, seed)
        funcs = _funcs(d, e, kind, extra, with_dense)
        timings = _bench.compare(
            funcs, repeat=repeat, min_time=min_time, max_time=max_time, warmup=["tridiag_numba"],
            progress=None if progress is None else (lambda msg, label=label: progress(f"{label}: {msg}")),
        )
        ours = timings["tridiag_numba"].median
        row = {"label": label, "route": _route(b, n, kind, extra, e), "ours": ours}
        cells = [_fmt(ours)]
        for name in ("scipy", "numpy_dense"):
            if name in timings:
                t = timings[name].median
                row[name] = t
                cells += [_fmt(t), f"{t / ours:.3g}x"]
            else:
                cells += ["-", "-"]
        if kind.startswith("kth"):
            input_mib = (d.nbytes + e.nbytes) / 2**20
            mem = {name: _peak_mib(f) for name, f in funcs.items()}
            row["memory"] = mem
            label = (
                f"{label} (peak traced memory: ours {mem['tridiag_numba']:.0f} MiB, scipy {mem['scipy']:.0f} MiB, "
                f"input {input_mib:.0f} MiB)"
            )
        out(f"| {label} | {row['route']} | " + " | ".join(cells) + " |")
        rows.append(row)
        del d, e, funcs
    return rows
