"""First-use compile work: each kernel is compiled once per dtype, and only when used.

A cold compile costs seconds per kernel (numba types, lowers and optimises
every helper, then optimises it again inside each caller), so a needless
specialisation or an unused serial twin is seconds of a user's first call.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
from numba import types

import tridiag_numba
from tridiag_numba import _jit_link
from tridiag_numba._jit import _canonical, kernel_inner

ROOT = Path(tridiag_numba.__file__).resolve().parent.parent


@kernel_inner
def _probe_scale(x, i):
    return x * (i + 1)


@numba.njit
def _call_literal_and_int(x, i):
    return _probe_scale(x, 0) + _probe_scale(x, i)


@numba.njit(parallel=True)
def _call_from_prange(x, out):
    for i in numba.prange(out.shape[0]):
        out[i] = _probe_scale(x, i)


def test_canonical_argument_types():
    assert _canonical(types.literal(0)) == types.int64
    assert _canonical(types.uint64) == types.int64
    assert _canonical(types.float32) == types.float32
    arr = types.Array(types.float32, 2, "C")
    assert _canonical(arr) == arr


def test_helper_compiled_once_for_literal_and_prange_index():
    # numba types a literal 0 as Literal[int](0) and a prange index as uint64
    # inside the outlined loop body (int64 when the caller is typed): without
    # canonical types the helper is compiled three times here.
    assert _call_literal_and_int(2.0, 3) == 2.0 + 8.0
    out = np.zeros(5)
    _call_from_prange(2.0, out)
    np.testing.assert_array_equal(out, 2.0 * np.arange(1, 6))
    assert _probe_scale.signatures == [(types.float64, types.int64)]


_COLD_RUN = textwrap.dedent(
    """
    import hashlib
    import json
    import numpy as np
    import numba
    import tridiag_numba as tn
    from tridiag_numba import _api, _batch, _bisect, _full_spectrum, _lanes, _scaling, _stein, _stein_lanes, _sturm
    from tridiag_numba import _scheduling
    from tridiag_numba._jit import _HelperDispatcher
    from tridiag_numba._jit_link import ScopedCodeLibrary

    libraries = []
    _init = ScopedCodeLibrary.__init__

    def _record(self, codegen, name):
        _init(self, codegen, name)
        libraries.append(self)

    ScopedCodeLibrary.__init__ = _record
    _scheduling._Contention.BACKOFF = 0.0  # parallel drivers whatever the machine's load
    _scheduling._Contention.COLD_MIN_WORK = 0  # ... and whether the pool is cold
    rng = np.random.default_rng(0)
    d = rng.standard_normal((256, 60))  # above the serial threshold for every call
    e = rng.standard_normal((256, 59))
    results = [tn.kth_eigenvalue(d, e, 7)]
    results.extend(tn.eigh_tridiagonal(d, e, select="i", select_range=(3, 5)))
    results.append(tn.eigvalsh_tridiagonal(d, e, select="v", select_range=(-0.5, 0.5)))
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(r).tobytes() for r in results)).hexdigest()
    report = {}
    for mod in (_batch, _bisect, _full_spectrum, _lanes, _scaling, _stein, _stein_lanes, _sturm):
        for name, obj in vars(mod).items():
            if isinstance(obj, numba.core.dispatcher.Dispatcher):
                report[name] = [isinstance(obj, _HelperDispatcher), [str(s) for s in obj.signatures]]
    # The parfor stages' libraries: thin, linking nothing; the drivers'
    # modules define every numba-compiled function they call (self-contained,
    # as the cache stores them).
    thin = [[lib.name, lib._tn_thin, len(lib._linking_libraries)] for lib in libraries
            if lib.name.startswith(("__numba_parfor", "<numba.np.ufunc.wrappers", "parallelgufunc"))]
    late = sorted(lib.name for lib in libraries if lib._tn_late)
    undefined = {}
    for mod in (_batch, _bisect, _full_spectrum):
        for name, obj in vars(mod).items():
            if (name.endswith("_parallel") or name == "_kth_block") and isinstance(obj, numba.core.dispatcher.Dispatcher):
                for sig, cres in obj.overloads.items():
                    undefined[f"{name}{sig}"] = [f.name for f in cres.library._final_module.functions
                                                 if f.is_declaration and f.name.startswith("_ZN")]
    print(json.dumps(dict(report=report, thin=thin, late=late, undefined=undefined, digest=digest)))
    """
)


def test_cold_parallel_calls_compile_each_kernel_once_and_no_twin(tmp_path):
    """Fresh process, empty cache: parallel calls compile no serial twin,
    and every helper exactly once (float64 only here)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", _COLD_RUN], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    report = out["report"]
    compiled = {name for name, (_, sigs) in report.items() if sigs}
    assert {"kth_eigenvalues_parallel", "eigenvectors_parallel", "value_counts_parallel"} <= compiled
    assert not {name for name in compiled if name.endswith("_serial")}, compiled
    twice = {name: sigs for name, (helper, sigs) in report.items() if len(sigs) > 1}
    assert not twice, twice
    helpers = {name for name, (helper, sigs) in report.items() if helper and sigs}
    assert {"_kth_block", "_inverse_iteration", "_sturm_count_value"} <= helpers
    # kernel_loop functions (no reference counting) use numba's own
    # dispatcher; the check above that nothing compiled twice covers them.
    assert {"_stein_block", "_run_block"} <= compiled
    # _jit_link: numba's three parfor stages (names pinned there) got thin
    # libraries, three per parallel driver, and the drivers link it all.
    drivers = len(out["undefined"]) - 1  # parallel drivers compiled (one prange loop each)
    assert drivers >= 3, out["undefined"]
    assert len(out["thin"]) == 3 * drivers, out["thin"]
    assert all(is_thin and linked == 0 for _, is_thin, linked in out["thin"]), out["thin"]
    for prefix in _jit_link._THIN_NAMES:
        assert sum(name.startswith(prefix) for name, _, _ in out["thin"]) == drivers, (prefix, out["thin"])
    assert out["undefined"] == {name: [] for name in out["undefined"]}, out["undefined"]
    # The drivers and the block kernel linked late (their own code optimised
    # alone, the compiled callees linked in after), and nothing else did;
    # their modules define every callee all the same (checked just above).
    compiled_drivers = {name for name in compiled if name.endswith("_parallel")}
    assert set(out["late"]) == compiled_drivers | {"_kth_block"}, out["late"]
    assert len(out["late"]) == len(set(out["late"])), out["late"]
    # A second fresh process loads those drivers from the cache (compiles
    # nothing) and gets the same bits.
    again = subprocess.run([sys.executable, "-c", _COLD_RUN], env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "compiling" not in again.stderr, again.stderr[-3000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["digest"] == out["digest"]


def test_scoped_code_library_installed_and_inert_outside_our_drivers():
    """numba's codegen makes our library class; a parallel function of the
    user's own (``_call_from_prange`` here) gets numba's usual libraries."""
    from numba.core import registry

    codegen = registry.cpu_target.target_context.codegen()
    assert codegen._library_class is _jit_link.ScopedCodeLibrary
    made = []
    init = _jit_link.ScopedCodeLibrary.__init__

    def record(self, cg, name):
        init(self, cg, name)
        made.append(self)

    _jit_link.ScopedCodeLibrary.__init__ = record
    try:

        @numba.njit(parallel=True)
        def user_kernel(out):
            for i in numba.prange(out.shape[0]):
                out[i] = _probe_scale(1.5, i)

        out = np.zeros(4)
        user_kernel(out)
    finally:
        _jit_link.ScopedCodeLibrary.__init__ = init
    np.testing.assert_array_equal(out, 1.5 * np.arange(1, 5))
    assert any(lib.name.startswith("__numba_parfor_gufunc_") for lib in made)
    assert not any(lib._tn_thin or lib._tn_late for lib in made)


def test_pinv_solve_inputs_reach_the_kernel_read_only_whatever_their_origin():
    """One numba type per dtype: inputs that are views, converted copies or
    broadcast scalars all reach the kernel read-only (a writeable mix would
    be another compile of the kernel)."""
    from tridiag_numba import _pinv

    rng = np.random.default_rng(3)
    d, e = rng.standard_normal((3, 6)), rng.standard_normal((3, 5))
    v = np.linalg.qr(rng.standard_normal((6, 3)))[0].T.copy()
    b = rng.standard_normal((3, 6))
    w = np.zeros(3)
    _pinv.pinv_solve(d, e, w, v, b)  # views of the inputs
    _pinv.pinv_solve(d.astype(np.float32), e, 0.0, v, b)  # a converted copy, a broadcast scalar
    _pinv.pinv_solve(d[0], e[0], 0.5, v[0], b[0])  # one matrix (serial kernel)
    for kernel in (_pinv._pinv_solve_real_serial, _pinv._pinv_solve_real_parallel):
        for sig in kernel.signatures:
            assert not any(a.mutable for a in sig[:5]), sig


def test_index_arrays_reach_the_engine_writeable_whatever_their_origin(monkeypatch):
    """One numba type for ``lane_k``: an int k (the cached lane arrays), a per-matrix
    k already of the batch's shape (``broadcast_to`` would hand a read-only view),
    a list, a broadcast k, all eigenvalues of one matrix, ``select='i'`` and the
    bisection of one lossy row of the lane QL (whose index array was a read-only
    view for one row) all reach the
    engine's kernels writeable -- a read-only one was a second compile of every
    kernel (7.4 s for the eigenvalue kernel, 5.9 s for the eigenpair kernel,
    float64, on the 2-core machine)."""
    import tridiag_numba as tn
    from tridiag_numba import _kernels as K
    from tridiag_numba._validate import _prepare_k

    seen = []
    for name in ("kth_eigenvalues_serial", "kth_eigenvalues_parallel", "kth_eigenpairs_serial", "kth_eigenpairs_parallel"):
        real = getattr(K, name)

        def spy(*args, _real=real, _name=name):
            seen.append((_name, args[3].flags.writeable, args[3].flags.c_contiguous))
            return _real(*args)

        monkeypatch.setattr(K, name, spy)
    rng = np.random.default_rng(4)
    d, e = rng.standard_normal((40, 9)), rng.standard_normal((40, 8))
    ks = (3, np.arange(40) % 9, list(np.arange(40) % 9), np.array(4), np.arange(9)[None, :1], -1 - np.arange(40) % 9)
    for k in ks:
        kk = _prepare_k(d, e, k)[4]
        assert isinstance(kk, int) or (kk.flags.writeable and kk.flags.c_contiguous and kk.dtype == np.int64), k
        tn.kth_eigenvalue(d, e, k)
        tn.kth_eigenpair(d, e, k)
    big = rng.standard_normal(300), rng.standard_normal(299)
    tn.eigvalsh_tridiagonal(*big)  # all eigenvalues of one matrix: the bisection route
    tn.eigh_tridiagonal(d, e, select="i", select_range=(2, 5))
    # All eigenpairs of a batch with one row whose eigenvalues are subnormal: the lane
    # QL's values of that row are redone by bisection, one row (once a read-only view).
    d2, e2 = rng.standard_normal((60, 20)), rng.standard_normal((60, 19))
    d2[0] *= 1e-310
    e2[0] *= 1e-310
    count = len(seen)
    tn.eigh_tridiagonal(d2, e2)
    assert len(seen) > count, "the subnormal row was not redone by bisection"
    assert {name for name, _, _ in seen} >= {"kth_eigenvalues_serial", "kth_eigenpairs_serial"}, seen
    assert all(writeable and contiguous for _, writeable, contiguous in seen), seen


def _plain(dispatcher, **swap):
    """``dispatcher``'s Python function compiled by numba's own pipeline (every
    library links and optimises its callees; no cache), with the global names
    in ``swap`` (the block kernels it calls) replaced."""
    import types as pytypes

    from tridiag_numba import _jit

    f = dispatcher.py_func
    g = pytypes.FunctionType(f.__code__, {**f.__globals__, **swap}, f.__name__, f.__defaults__, f.__closure__)
    options = {k: v for k, v in _jit._COMMON.items() if k != "cache"}
    options.update(dispatcher.targetoptions.get("inline") and {"inline": dispatcher.targetoptions["inline"]} or {})
    return numba.njit(g, **options)


def _family_batch(dtype):
    from tridiag_numba import matrices as Mx

    rows = [Mx.wilkinson(21), Mx.clement(21), Mx.glued_wilkinson(3, block=7), Mx.legendre_jacobi(21),
            Mx.toeplitz_121(21)]
    d = np.array([r[0] for r in rows] * 4, np.float64)
    e = np.array([r[1] for r in rows] * 4, np.float64)
    scale = np.repeat([1.0, 1e150, 1e-150, -3.0] if dtype == np.float64 else [1.0, 1e30, 1e-30, -3.0], len(rows))
    rng = np.random.default_rng(15)
    noise = rng.standard_normal((8, 21)), rng.standard_normal((8, 20))
    d = np.concatenate([d * scale[:, None], noise[0]]).astype(dtype)
    e = np.concatenate([e * scale[:, None], noise[1]]).astype(dtype)
    return d, e


def test_late_linked_kernels_give_the_bits_of_numbas_own_linking(monkeypatch):
    """Drivers and block kernels link late (``_jit_link``): the same
    functions, each compiled once.  Their results, bit for bit, against the
    same drivers and block kernels compiled by numba's default pipeline
    (serial twins; the eigenvalue engine, the lane QL route and the fused
    eigenpair kernel; LAPACK families scaled to 1e+-150 and random
    matrices)."""
    from tridiag_numba import _api, _batch, _bisect, _kernels, _ql_lanes, _stein_lanes

    kth_block = _plain(_bisect._kth_block)
    ql_block = _plain(_ql_lanes._ql_block)
    eigvec_block = _plain(_stein_lanes._eigvec_block)
    pair_chunk = _plain(_batch._kth_pair_chunk, _kth_block=kth_block, _eigvec_block=eigvec_block)
    plain = {
        "kth_eigenvalues_serial": _plain(_batch.kth_eigenvalues_serial, _kth_block=kth_block),
        "ql_eigenvalues_serial": _plain(_ql_lanes.ql_eigenvalues_serial, _ql_block=ql_block),
        "kth_eigenpairs_serial": _plain(_batch.kth_eigenpairs_serial, _kth_pair_chunk=pair_chunk),
    }
    d, e = _family_batch(np.float64)  # float64 only: each plain kernel is a cold compile
    k = np.arange(d.shape[0]) % d.shape[1]

    def run():
        with _api.serial_kernels():
            out = [tridiag_numba.kth_eigenvalue(d, e, k), *tridiag_numba.kth_eigenpair(d, e, k),
                   tridiag_numba.eigvalsh_tridiagonal(np.tile(d, (2, 1)), np.tile(e, (2, 1)))]
        return [np.ascontiguousarray(x).view(np.uint8) for x in out]

    ours = run()
    with monkeypatch.context() as m:
        for name, kernel in plain.items():
            m.setattr(_kernels, name, kernel)
        reference = run()
    for got, ref in zip(ours, reference):
        np.testing.assert_array_equal(got, ref)
    # The reference ran (each plain kernel compiled) on numba's pipeline:
    # nothing in it linked late; ours did.
    for kernel in (kth_block, ql_block, eigvec_block, *plain.values()):
        assert kernel.overloads and all(not cres.library._tn_late for cres in kernel.overloads.values())
    for name in plain:
        assert all(cres.library._tn_late for cres in getattr(_kernels, name).overloads.values()), name
