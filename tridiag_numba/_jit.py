"""The one place that sets numba options for every kernel of the package.

Why these options:

* ``cache=True`` -- a cold parallel compile costs seconds; the on-disk cache
  brings the first call of a fresh process down to a cache load.  The cache
  of every kernel is keyed on the sources of the whole package
  (:class:`KernelSourcesLocator`), not only on the file that defines it.
* ``nogil=True`` -- kernels release the GIL, so Python threads (and torch's
  autograd engine) can run them concurrently.
* ``error_model="numpy"`` -- float division by zero gives inf/nan instead of
  raising ``ZeroDivisionError``; the python error model also adds a branch to
  every division, which blocks vectorisation of the lane loops.
* ``no_cfunc_wrapper=True`` -- numba otherwise adds a C-callable wrapper to
  every compiled function (for ``cfunc``-style first-class function use,
  which nothing here does), and lowers, optimises and compiles it on the
  first call: a few per cent of a cold compile.
* no ``fastmath`` -- it makes ``isnan``/``isinf`` constant ``False`` and lets
  LLVM reassociate the Sturm recurrence, whose error analysis assumes IEEE
  arithmetic.

Threading layer: numba's ``tbb`` layer, from the ``tbb`` pip dependency.  Its
worker threads take work from the calling thread's queue instead of being
handed a fixed share, so a worker that the OS has not scheduled yet (both
cores busy with another library's spinning pool) delays nothing: the caller
runs the remaining blocks itself.  With GNU OpenMP (numba's ``omp`` layer)
every thread owns a static share and the caller waits for the slowest one:
right after ``numpy.linalg.eigvalsh`` a 40 us call took milliseconds.  tbb is
also thread- and fork-safe.  pip installs ``libtbb`` into ``<prefix>/lib``,
which the dynamic loader does not search, so :func:`_preload_tbb` loads it
by path before numba looks for it by name.

Every parallel driver has a serial twin (``kernel_serial``) compiled from its
own Python function, compiled only when it is used: the numpy layer runs it
for small batches, inside ``serial_kernels()``, off the main thread when the
layer is not thread-safe, and in a child forked from a process whose layer is
not fork-safe (see ``tridiag_numba._api``).
"""

import ctypes
import hashlib
import importlib.metadata
import os
import re
import sys
import time
import weakref
from contextlib import contextmanager

import numba
from numba.core import caching, event, registry, types

from . import _jit_link

__all__ = [
    "KernelSourcesLocator",
    "compile_notices",
    "kernel_block",
    "kernel_inner",
    "kernel_loop",
    "kernel_parallel",
    "kernel_serial",
    "layer_is_fork_safe",
    "layer_is_thread_safe",
    "threading_layer",
]

# ``_nrt=True`` is numba's default, set explicitly so that a helper never
# inherits ``kernel_loop``'s ``_nrt=False`` from the caller it is first
# compiled for: numba keeps one compiled version per signature, and a
# helper compiled without reference counting but later called from counted
# code (or the reverse) corrupts the counts of the arrays it returns.
_COMMON = dict(nogil=True, cache=True, error_model="numpy", _nrt=True, no_cfunc_wrapper=True)

#: Python functions compiled through the decorators below (their caches are
#: keyed on the whole package's sources).
_KERNELS = weakref.WeakSet()


def _canonical(ty):
    """The argument type a helper is compiled for, given the type at a call site.

    Two call sites that pass the same values with different numba types would
    otherwise compile (and optimise, and cache) the helper twice: a literal
    constant (``Literal[int](0)``) beside an ``int64``, or a ``prange`` index,
    which is ``uint64`` in the parallel loop body that numba outlines but
    ``int64`` when the driver itself is typed.  Indices and counts are far
    below 2**63, so ``int64`` holds them all.
    """
    ty = types.unliteral(ty)
    return types.int64 if ty == types.uint64 else ty


class _HelperDispatcher(registry.CPUDispatcher):
    """numba's dispatcher, compiling kernel helpers for canonical argument types only.

    Used for ``kernel_inner`` (helpers called from other kernels, where numba
    types each call site and compiles one specialisation per distinct type
    tuple).  The call sites' own types still convert to the canonical ones.
    """

    def get_call_template(self, args, kws):
        args = tuple(_canonical(a) for a in args)
        kws = {k: _canonical(v) for k, v in kws.items()}
        return super().get_call_template(args, kws)


class _LateDispatcher(registry.CPUDispatcher):
    """numba's dispatcher for the drivers (serial twins) and block kernels:
    compiles inside :class:`._jit_link.DriverScope`, so that the function's
    own code is optimised alone and its callees are linked in as their own
    libraries compiled them, not optimised once more (see :mod:`._jit_link`,
    "links late")."""

    def compile(self, sig):
        with _jit_link.DriverScope(self.py_func.__qualname__):
            return super().compile(sig)


class _ParallelDispatcher(_LateDispatcher):
    """:class:`_LateDispatcher` for the parallel drivers, also inside
    :class:`._jit_link.ParallelDriverScope`: the block kernel a ``prange``
    body calls is optimised and compiled to machine code once, in the
    driver, instead of once more per parfor stage (see :mod:`._jit_link`)."""

    def compile(self, sig):
        with _jit_link.ParallelDriverScope():
            return super().compile(sig)


class _BlockDispatcher(_LateDispatcher, _HelperDispatcher):
    """The block kernels' dispatcher: late linking, canonical argument types."""


_jit_link.install()


def _decorator(options, doc, dispatcher=None):
    def kernel(func=None, **extra):
        if func is None:  # used as @kernel_inner(inline="always")
            return lambda f: kernel(f, **extra)
        _KERNELS.add(func)
        targetoptions = {**options, **extra}
        if dispatcher is None or numba.config.DISABLE_JIT or targetoptions.get("inline", "never") != "never":
            return numba.njit(func, **targetoptions)
        cache = targetoptions.pop("cache")
        disp = dispatcher(py_func=func, locals={}, targetoptions={"nopython": True, **targetoptions})
        if cache:
            disp.enable_caching()
        return disp

    kernel.__doc__ = doc
    return kernel


kernel_parallel = _decorator(
    dict(parallel=True, **_COMMON),
    "Batch drivers whose outer loop is a ``numba.prange`` over blocks of matrices.",
    dispatcher=_ParallelDispatcher,
)
kernel_serial = _decorator(
    dict(parallel=False, **_COMMON),
    "Serial twins of the batch drivers (same body, ``prange`` runs as ``range``).",
    dispatcher=_LateDispatcher,
)
kernel_inner = _decorator(
    _COMMON, "Helpers called from drivers; inlined by LLVM where profitable.", dispatcher=_HelperDispatcher
)
# A block kernel (one chunk of a driver's work: allocate the block's state,
# then call the steps, each a compiled function of its own, once per block)
# links late: LLVM inlined none of those calls (checked on the final
# modules), so optimising the steps once more inside the block kernel's
# module only cost compile time.
kernel_block = _decorator(
    _COMMON, "Block kernels: a driver's chunk of work, calling its steps once per block.", dispatcher=_BlockDispatcher
)
# numba increments and decrements the reference count of every array
# argument of every call and of every record field it reads (atomic
# operations, and calls inside a lane loop that stop its vectorisation; the
# pruning pass misses them across branches).  The engine's loop, whose
# helpers take records of arrays, paid that per slot and pass: 3-4x slower.
# A ``kernel_loop`` function works on arrays its caller allocated: it must
# not allocate (numba refuses) nor return an array, and then it may be
# called from any kernel.
kernel_loop = _decorator(
    {**_COMMON, "_nrt": False}, "Hot loops over preallocated state: no reference counting, no allocation."
)


# ----------------------------------------------------------- threading layer

_TBB_LIBRARY = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib", "win32": "tbb12.dll"}


def _preload_tbb():
    """Load pip's ``libtbb`` by path so that numba's ``tbb`` layer finds it by name.

    Does nothing when numba's threads already run, when the ``tbb``
    distribution is not installed or when its library cannot be loaded (numba
    then falls back to ``omp`` or ``workqueue``, which the numpy layer handles).
    """
    from numba.np.ufunc import parallel

    name = _TBB_LIBRARY.get(sys.platform)
    if name is None or parallel._is_initialized:
        return
    try:
        files = importlib.metadata.files("tbb") or ()
    except importlib.metadata.PackageNotFoundError:
        return
    for f in files:
        if f.name == name:
            try:
                ctypes.CDLL(os.fspath(f.locate()), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                pass
            return


_preload_tbb()


def threading_layer():
    """numba's threading layer, or None while no parallel kernel has started it."""
    try:
        return numba.threading_layer()
    except ValueError:
        return None


def layer_is_thread_safe():
    """Whether two Python threads may launch parallel kernels at once (not ``workqueue``)."""
    return threading_layer() in ("tbb", "omp")


def layer_is_fork_safe():
    """Whether a child forked after a parallel launch may launch parallel kernels.

    GNU OpenMP's pool does not survive ``fork``: the child's first parallel
    region waits forever for threads that do not exist (or libgomp aborts).
    ``tbb`` and ``workqueue`` re-create their threads in the child.
    """
    return threading_layer() in (None, "tbb", "workqueue")


# ------------------------------------------------------------------- caching


#: A line applying a numba decorator (ours from this module, or numba's own).
_DEFINES_KERNELS = re.compile(
    rb"^[ \t]*@(?:kernel_inner|kernel_block|kernel_loop|kernel_parallel|kernel_serial|numba\.|njit|jit|intrinsic|overload|register_jitable)",
    re.MULTILINE,
)


def _package_stamp():
    """SHA-256 over the package's kernel modules: every ``.py`` file that applies a
    numba decorator, and this one (the options).  Memoised on (path, mtime, size)."""
    root = os.path.dirname(os.path.abspath(__file__))
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(x for x in dirnames if x != "__pycache__")
        for filename in sorted(x for x in filenames if x.endswith(".py")):
            path = os.path.join(dirpath, filename)
            st = os.stat(path)
            entries.append((os.path.relpath(path, root), st.st_mtime_ns, st.st_size))
    return _hash_files(root, tuple(entries))


_STAMPS = {}
#: Modules without kernels whose edits change compiled code: the options, and
#: how parallel drivers are linked.
_OPTION_FILES = (os.path.basename(__file__), "_jit_link.py")


def _hash_files(root, entries):
    stamp = _STAMPS.get(entries)
    if stamp is None:
        digest = hashlib.sha256()
        for relpath, _, _ in entries:
            with open(os.path.join(root, relpath), "rb") as f:
                source = f.read()
            if relpath in _OPTION_FILES or _DEFINES_KERNELS.search(source):
                digest.update(relpath.encode())
                digest.update(hashlib.sha256(source).digest())
        stamp = _STAMPS[entries] = digest.hexdigest()
    return stamp


class KernelSourcesLocator(caching._CacheLocator):
    """numba cache locator for this package's kernels: fresh only if no source changed.

    numba's own locators stamp a cached function with the hash of the one file
    that defines it, so an edit to a helper in another module would leave
    callers running stale machine code.  This locator wraps the locator numba
    would have chosen (same cache directory, same file names) and adds the
    hash of every kernel module of the package to the stamp (found by
    scanning for numba decorators, so new modules count without a list; a
    module that only feeds kernels constants must define them beside the
    kernels).  It serves only
    functions compiled through this module's decorators.
    """

    def __init__(self, inner):
        self._inner = inner

    def ensure_cache_path(self):
        self._inner.ensure_cache_path()

    def get_cache_path(self):
        return self._inner.get_cache_path()

    def get_source_stamp(self):
        return (self._inner.get_source_stamp(), _package_stamp())

    def get_disambiguator(self):
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func, py_file):
        if py_func not in _KERNELS:
            return None
        for base in caching.CacheImpl._locator_classes:
            if base is not cls:
                inner = base.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner)
        return None


if not any(c.__name__ == KernelSourcesLocator.__name__ for c in caching.CacheImpl._locator_classes):
    caching.CacheImpl._locator_classes.insert(0, KernelSourcesLocator)


# ------------------------------------------------------- first-use message


class _CompileNotice(event.Listener):
    """One line on stderr while numba compiles one of our drivers (not on a cache load).

    numba fires ``numba:compile`` only after its cache missed; helpers compiled
    on behalf of a driver are nested inside it and stay silent.
    """

    def __init__(self):
        self.depth = 0
        self.start = 0.0
        self.enabled = True

    def _ours(self, ev):
        dispatcher = ev.data.get("dispatcher") if isinstance(ev.data, dict) else None
        return getattr(dispatcher, "py_func", None) in _KERNELS

    def on_start(self, ev):
        if not self._ours(ev):
            return
        self.depth += 1
        if self.depth == 1 and self.enabled:
            self.start = time.perf_counter()
            args = ev.data.get("args") or ()
            dtype = getattr(args[0], "dtype", "") if args else ""
            print(
                f"tridiag_numba: compiling {ev.data['dispatcher'].py_func.__name__}({dtype}) for first use; "
                "cached for later runs ...",
                end="",
                file=sys.stderr,
                flush=True,
            )

    def on_end(self, ev):
        if not self._ours(ev):
            return
        self.depth -= 1
        if self.depth == 0 and self.enabled:
            print(f" {time.perf_counter() - self.start:.1f} s", file=sys.stderr, flush=True)


_NOTICE = next((x for x in event._registered.get("numba:compile", ()) if type(x).__name__ == "_CompileNotice"), None)
if _NOTICE is None:
    _NOTICE = _CompileNotice()
    event.register("numba:compile", _NOTICE)


@contextmanager
def compile_notices(enabled):
    """Switch the compile notice on or off inside the block (``--precompile`` draws a bar instead)."""
    previous = _NOTICE.enabled
    _NOTICE.enabled = enabled
    try:
        yield
    finally:
        _NOTICE.enabled = previous
