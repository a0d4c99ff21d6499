"""The kernels' structure that correctness rests on, checked on the source.

The eigenvalue engine's bracket (``lo < hi`` with Sturm counts ``clo <= k <
chi``) contains eigenvalue k only because every end is a shift together
with its count.  ``_lanes._lane_start`` sets the Gershgorin bracket and
``_bisect._move_bracket`` is the one function that moves it afterwards;
Laguerre steps, the end game and interpolation only propose shifts.  A new
writer anywhere else would bypass that proof, so this test fails on it.
"""

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

import tridiag_numba

PACKAGE = Path(tridiag_numba.__file__).resolve().parent
BRACKET = {"lo", "hi", "clo", "chi"}


def _bracket_writes():
    """(module, function) pairs whose code stores into ``<record>.lo[...]``
    etc., and those that bind a bracket field to a local name (an alias
    would hide a write from the first check)."""
    writers, aliases = set(), set()
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            for node in ast.walk(func):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
                for t in targets:
                    if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Attribute) and t.value.attr in BRACKET:
                        writers.add((path.stem, func.name))
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute) and node.value.attr in BRACKET:
                    aliases.add((path.stem, func.name))
    return writers, aliases


def test_bracket_has_one_writer_after_lane_start():
    writers, aliases = _bracket_writes()
    assert writers == {("_lanes", "_lane_start"), ("_bisect", "_move_bracket")}
    assert not aliases, f"bracket arrays bound to local names in {sorted(aliases)}"


@pytest.mark.parametrize("twin", ["parallel", "serial"])
def test_kernels_keep_reference_counts_of_their_arrays(twin):
    """The engine's loops run without reference counting (``_jit.kernel_loop``)
    and call helpers that count.  A helper compiled once for both kinds of
    caller would leak or free the arrays it hands back; every array passed
    to a driver keeps its reference count over repeated calls (NaN and zero
    matrices included: they take the early-finish paths)."""
    import tridiag_numba._kernels as K
    from tridiag_numba._api import _consts

    rng = np.random.default_rng(3)
    B, n = 70, 12
    d = rng.standard_normal((B, n))
    e = rng.standard_normal((B, n - 1))
    d[3] = 0.0
    e[3] = 0.0
    d[5, 2] = np.nan
    e[7, 4] = 0.0  # a split
    lane_b = np.arange(B)
    lane_k = np.full(B, n // 2)
    w, ws = np.empty(B), np.empty(B)
    info, vinfo = np.empty(B, np.int32), np.empty(B, np.int32)
    v = np.empty((B, n, 1))
    eps, tiny = _consts(np.float64)
    arrays = (d, e, lane_b, lane_k, w, ws, info, v, vinfo)
    chunk = B if twin == "serial" else K.chunk_size(B)
    values = getattr(K, f"kth_eigenvalues_{twin}")
    pairs = getattr(K, f"kth_eigenpairs_{twin}")
    vectors = getattr(K, f"eigenvector1_{twin}")
    kidx = lane_k.reshape(B, 1)
    ws2 = ws.reshape(B, 1)
    values(d, e, lane_b, lane_k, 0.0, eps, tiny, chunk, w, ws, info)  # compile first
    pairs(d, e, lane_b, lane_k, 0.0, eps, tiny, chunk, w, ws, info, v, vinfo)
    vectors(d, e, ws2, kidx, eps, tiny, v, vinfo)
    before = [sys.getrefcount(a) for a in arrays]
    for _ in range(5):
        values(d, e, lane_b, lane_k, 0.0, eps, tiny, chunk, w, ws, info)
        pairs(d, e, lane_b, lane_k, 0.0, eps, tiny, chunk, w, ws, info, v, vinfo)
        vectors(d, e, ws2, kidx, eps, tiny, v, vinfo)
    assert [sys.getrefcount(a) for a in arrays] == before


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_idle_slots_get_the_inert_zero_matrix(dtype):
    """``_block_state`` leaves a block's matrices uninitialised (zeroing them
    cost ~0.6 us a block); ``_fill_block`` must write every slot's column, a
    slot that gets no job the zero matrix: garbage (NaN, subnormals) in an
    idle lane would slow down every division of the block's passes.  Here
    the memory holds NaN, and 3 jobs (one of them a zero matrix, which
    finishes on the spot) leave 30 of the 32 slots idle."""
    import tridiag_numba._kernels as K
    from tridiag_numba._api import _consts

    rng = np.random.default_rng(5)
    B, n = 3, 7
    d = rng.standard_normal((B, n)).astype(dtype)
    e = rng.standard_normal((B, n - 1)).astype(dtype)
    d[1] = 0.0
    e[1] = 0.0
    eps, tiny = _consts(np.dtype(dtype))
    w, ws, info = np.empty(B, dtype), np.empty(B, dtype), np.empty(B, np.int32)
    jobs = K.Jobs(d, e, np.arange(B), np.full(B, 2), B, 0.0, eps, tiny, w, ws, info)
    slots, br, ps = K._block_state(d)
    assert not slots.e2b[0, : K.LANES].any()  # row 0 of every matrix: zero
    slots.db[...] = np.nan
    slots.e2b[1:] = np.nan
    assert K._fill_block(jobs, slots, br, 0) == B
    busy = slots.job[: K.LANES] >= 0
    assert list(slots.job[: K.LANES][busy]) == [0, 2]
    idle = np.flatnonzero(~busy)
    assert not slots.db[:, idle].any() and not slots.e2b[:, idle].any()
    assert np.isfinite(slots.db[:, : K.LANES]).all() and np.isfinite(slots.e2b[:, : K.LANES]).all()
    assert w[1] == 0.0 and info[1] == 0
