"""The bisection engine's parallel calls run on another library's OpenMP team.

A torch program runs torch's operations on torch's intra-op pool: GNU OpenMP,
whose threads keep spinning for milliseconds after each parallel region.
Our kernels' own pool (numba's tbb layer) then fights those threads for the
cores: a ``TridiagSpectral`` training step at batch 2048 took 2.72 ms with
torch on 2 threads against 2.02 ms with torch on one (same process, 2 cores),
and the kernel there ran at the speed of its serial twin.  Launched on
torch's own team instead, our chunks run on the threads that are spinning
anyway.

:func:`use_openmp_runtime` registers a GNU OpenMP runtime (the bridge passes
the ``libgomp`` torch loaded); from then on :func:`kth_eigenvalues` and
:func:`kth_eigenpairs` stand in for the parallel drivers ``kth_eigenvalues_parallel``
and ``kth_eigenpairs_parallel`` (same arguments, same results): every thread of
the team that ``GOMP_parallel`` starts takes chunks of ``chunk`` jobs from a
shared counter (an atomic add) and runs each through the *serial* twin
(:mod:`._batch`), already compiled and cached -- only a small callback per
kind and dtype is compiled here.  Chunks do not change results
(``_batch.engine_chunk``), so the bits are those of the serial twin.

GNU OpenMP does not survive ``fork``: a forked child drops the runtime and
goes back to numba's layer (tbb, which forks safely).
"""

import ctypes
import os

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, types
from numba.extending import intrinsic

from . import _jit, _jit_link
from . import _kernels as K

__all__ = ["active", "kth_eigenpairs", "kth_eigenvalues", "use_openmp_runtime"]

# The argument block a launch passes to every thread, int64 slots:
# 0-8 the arrays' addresses (d, e, lane_b, lane_k, w, ws, info, v, vinfo),
# 9 jobs M, 10 order n, 11 rows of d, 12 chunk, 13 the chunk counter,
# 14-16 abstol, eps, safemin (float64 bits).
_SLOTS = 17
_COUNTER = 13


@intrinsic
def _voidptr(typingctx, address):
    """The int64 ``address`` as a ``void*`` (for ``numba.carray``)."""

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.voidptr))

    return types.voidptr(types.int64), codegen


@intrinsic
def _fetch_add(typingctx, address, delta):
    """``*address += delta`` atomically (an int64 at ``address``); returns the old value."""

    def codegen(context, builder, signature, args):
        ptr = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
        return builder.atomic_rmw("add", ptr, args[1], "seq_cst")

    return types.int64(types.int64, types.int64), codegen


@intrinsic
def _gomp_parallel(typingctx, launch, callback, data, threads):
    """``GOMP_parallel(callback, data, threads, 0)`` through the address ``launch``
    (libgomp's entry: ``void (void (*)(void *), void *, unsigned, unsigned)``)."""

    def codegen(context, builder, signature, args):
        byte_ptr = ir.IntType(8).as_pointer()
        body_type = ir.FunctionType(ir.VoidType(), [byte_ptr])
        u32 = ir.IntType(32)
        launch_type = ir.FunctionType(ir.VoidType(), [body_type.as_pointer(), byte_ptr, u32, u32])
        builder.call(
            builder.inttoptr(args[0], launch_type.as_pointer()),
            [
                builder.inttoptr(args[1], body_type.as_pointer()),
                builder.inttoptr(args[2], byte_ptr),
                builder.trunc(args[3], u32),
                ir.Constant(u32, 0),
            ],
        )
        return context.get_dummy_value()

    return types.void(types.int64, types.int64, types.int64, types.int64), codegen


@intrinsic
def _callbacks_read(typingctx, d, e, lane_b, lane_k, w, ws, info, v, vinfo):
    """Whether the arrays are what the callbacks read them as (a constant of the
    compiled launcher): C-contiguous, the float arrays of one float dtype, the
    indices int64, the codes int32 -- the numpy layer's contract; anything else
    would be read as garbage."""
    floats = (d, e, w, ws, v)
    arrays = floats + (lane_b, lane_k, info, vinfo)
    fits = (
        all(isinstance(x, types.Array) and x.layout == "C" for x in arrays)
        and d.dtype in (types.float32, types.float64)
        and all(x.dtype == d.dtype for x in floats)
        and lane_b.dtype == lane_k.dtype == types.int64
        and info.dtype == vinfo.dtype == types.int32
    )

    def codegen(context, builder, signature, args):
        return context.get_constant(types.boolean, fits)

    return types.boolean(d, e, lane_b, lane_k, w, ws, info, v, vinfo), codegen


@_jit.kernel_inner
def _launch_team(launch, callback, threads, d, e, lane_b, lane_k, w, ws, info, v, vinfo, m, n, rows, chunk, abstol, eps, safemin):
    """Fill a launch's argument block (see ``_SLOTS``) and run ``callback`` on
    the team of ``launch`` (``GOMP_parallel``'s address); the calling thread is
    the team's master.  Returns False (nothing run) if the arrays do not fit the
    callbacks.  Compiled, GIL released: from Python, numpy's ``.ctypes.data``
    (~1.7 us an array) and a ctypes call made the launch 6.3 us against tbb's
    2.5 us on an empty workload; this is 2.6 us."""
    if not _callbacks_read(d, e, lane_b, lane_k, w, ws, info, v, vinfo):
        return False
    block = np.empty(_SLOTS + 1, np.int64)  # + the counter
    block[0] = d.ctypes.data
    block[1] = e.ctypes.data
    block[2] = lane_b.ctypes.data
    block[3] = lane_k.ctypes.data
    block[4] = w.ctypes.data
    block[5] = ws.ctypes.data
    block[6] = info.ctypes.data
    block[7] = v.ctypes.data
    block[8] = vinfo.ctypes.data
    block[9] = m
    block[10] = n
    block[11] = rows
    block[12] = chunk
    block[_COUNTER] = block.ctypes.data + _SLOTS * 8
    f = block.view(np.float64)
    f[14] = abstol
    f[15] = eps
    f[16] = safemin
    block[_SLOTS] = 0
    _gomp_parallel(launch, callback, block.ctypes.data, threads)
    return True


def _callback(kind, dtype):
    """The ``void(void*)`` function each team thread runs, for ``kind`` 'values'
    or 'pairs' and a float dtype: take chunks from the counter until none is
    left, each through the serial twin."""
    dt = np.dtype(dtype).type

    def values(block):
        a = carray(block, (_SLOTS,), dtype=np.int64)
        f = carray(block, (_SLOTS,), dtype=np.float64)
        m, n, rows, chunk = a[9], a[10], a[11], a[12]
        d = carray(_voidptr(a[0]), (rows, n), dtype=dt)
        e = carray(_voidptr(a[1]), (rows, n - 1), dtype=dt)
        lane_b = carray(_voidptr(a[2]), (m,), dtype=np.int64)
        lane_k = carray(_voidptr(a[3]), (m,), dtype=np.int64)
        w = carray(_voidptr(a[4]), (m,), dtype=dt)
        ws = carray(_voidptr(a[5]), (m,), dtype=dt)
        info = carray(_voidptr(a[6]), (m,), dtype=np.int32)
        counter = a[_COUNTER]
        c = _fetch_add(counter, 1)
        while c * chunk < m:
            s, u = c * chunk, min(c * chunk + chunk, m)
            K.kth_eigenvalues_serial(d, e, lane_b[s:u], lane_k[s:u], f[14], f[15], f[16], chunk, w[s:u], ws[s:u], info[s:u])
            c = _fetch_add(counter, 1)

    def pairs(block):
        # One job per matrix (lane_b = arange(M)): a chunk is rows s:u of everything.
        a = carray(block, (_SLOTS,), dtype=np.int64)
        f = carray(block, (_SLOTS,), dtype=np.float64)
        m, n, chunk = a[9], a[10], a[12]
        d = carray(_voidptr(a[0]), (m, n), dtype=dt)
        e = carray(_voidptr(a[1]), (m, n - 1), dtype=dt)
        lane_b = carray(_voidptr(a[2]), (m,), dtype=np.int64)
        lane_k = carray(_voidptr(a[3]), (m,), dtype=np.int64)
        w = carray(_voidptr(a[4]), (m,), dtype=dt)
        ws = carray(_voidptr(a[5]), (m,), dtype=dt)
        info = carray(_voidptr(a[6]), (m,), dtype=np.int32)
        v = carray(_voidptr(a[7]), (m, n, 1), dtype=dt)
        vinfo = carray(_voidptr(a[8]), (m,), dtype=np.int32)
        counter = a[_COUNTER]
        c = _fetch_add(counter, 1)
        while c * chunk < m:
            s, u = c * chunk, min(c * chunk + chunk, m)
            K.kth_eigenpairs_serial(
                d[s:u], e[s:u], lane_b[: u - s], lane_k[s:u], f[14], f[15], f[16], chunk,
                w[s:u], ws[s:u], info[s:u], v[s:u], vinfo[s:u],
            )
            c = _fetch_add(counter, 1)

    body = values if kind == "values" else pairs
    _jit._KERNELS.add(body)  # cached under the package's stamp (it links the serial twins)
    # Linked late as the drivers are (._jit_link): the serial twin's code goes in as
    # its own library optimised it, not through the O3 pipeline once more.
    with _jit_link.DriverScope(body.__qualname__):
        return cfunc(types.void(types.voidptr), nogil=True, cache=True, error_model="numpy")(body)


_runtime = None  # the address of the registered runtime's GOMP_parallel, or None
_callbacks = {}  # (kind, dtype char) -> compiled callback


def use_openmp_runtime(library):
    """Run the engine's parallel calls on the GNU OpenMP runtime ``library``
    (a loaded ``libgomp``: a path or soname, opened with ``RTLD_NOLOAD``), or
    on numba's layer again for None.  Returns whether a runtime is in use."""
    global _runtime
    if library is None:
        _runtime = None
        return False
    try:
        # A handle on the loaded library only: not RTLD_GLOBAL, which would make its
        # symbols the ones every later library binds to.
        lib = ctypes.CDLL(library, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        launch = ctypes.cast(lib.GOMP_parallel, ctypes.c_void_p).value
    except (OSError, AttributeError):
        _runtime = None
        return False
    _runtime = launch
    return True


def active():
    """Whether a runtime is registered (then the numpy layer launches here)."""
    return _runtime is not None


def _launch(kind, arrays, m, n, rows, chunk, abstol, eps, safemin):
    """Run ``kind``'s callback on the team; False (nothing run) if the arrays do
    not fit it."""
    dtype = arrays[0].dtype
    key = (kind, dtype.char)
    callback = _callbacks.get(key)
    if callback is None:
        if dtype.char not in "fd":
            return False
        callback = _callbacks[key] = _callback(kind, dtype)
    return _launch_team(_runtime, callback.address, K._num_threads(), *arrays, m, n, rows, chunk, abstol, eps, safemin)


def kth_eigenvalues(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ws, info):
    """``kth_eigenvalues_parallel`` on the registered team (same arguments and results)."""
    arrays = (d, e, lane_b, lane_k, w, ws, info, w, info)  # (slots 7-8 unused)
    if not _launch("values", arrays, lane_b.shape[0], d.shape[1], d.shape[0], chunk, abstol, eps, safemin):
        K.kth_eigenvalues_parallel(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ws, info)


def kth_eigenpairs(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ws, info, v, vinfo):
    """``kth_eigenpairs_parallel`` on the registered team (same arguments and
    results; ``lane_b = arange(B)``, as the numpy layer passes it)."""
    arrays = (d, e, lane_b, lane_k, w, ws, info, v, vinfo)
    if not _launch("pairs", arrays, lane_b.shape[0], d.shape[1], d.shape[0], chunk, abstol, eps, safemin):
        K.kth_eigenpairs_parallel(d, e, lane_b, lane_k, abstol, eps, safemin, chunk, w, ws, info, v, vinfo)


def _drop_after_fork():
    global _runtime
    _runtime = None  # GNU OpenMP's team does not exist in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_after_fork)
