"""Drivers' first compile: optimise and compile each callee once, not once more per caller.

What numba does (0.68, ``numba/parfors/parfor_lowering.py`` and
``numba/np/ufunc/parallel.py``, ``wrappers.py``): a ``prange`` loop is
outlined into a gufunc, wrapped twice (``_GufuncWrapper``, then
``parallelgufuncwrapper``), and each of these three is a code library of its
own that links its callees in, runs the full O3 pipeline over the result and
generates machine code for all of it.  The driver then links the lot once
more.  The block kernel a loop body calls was thus optimised and compiled to
machine code four times beyond its own library (about 0.65 s each for the
eigenvalue engine, 2 s of every parallel driver's first call) although only
the driver's copy ever runs and is cached.

What this module changes, for the libraries of those three stages created
while one of *our* parallel drivers compiles (``kernel_parallel``; nothing
else, and nothing outside such a compile): they are *thin* -- they link
nothing, so their own small code is optimised and compiled alone (its
references to callees resolve to the callees' own machine code, which numba
has already added to its JIT engine), and they pass their callees on to the
library that links them.  The driver's library links the whole closure, so
its module -- the code that runs, and that the cache stores as a
self-contained object -- holds the same functions as before, optimised by
the same O3 pipeline (once, instead of after each stage).

A driver's own library, and a block kernel's (``kernel_block`` in
``_jit.py``: allocate a block's state, call the steps once per block), also
*link late*.  numba runs the full O3 pipeline over a library's module after
linking its callees in, so every callee -- already optimised and compiled in
its own library -- was optimised once more per caller up the chain (driver,
block kernel: about 0.3-0.6 s each for the eigenvalue, eigenvector and QL
kernels).  Inlining gains nothing there: the calls run once per chunk or
block, and LLVM had inlined none of them.  So such a library's own code is
optimised alone, then the closure is linked in as its libraries optimised
it, the copies no call reaches (callees' wrappers) are dropped, and all of
it goes to machine code: a self-contained module, as before, each callee's
code as its own library compiled it.  Results are the same bits: without
fast-math, LLVM's optimisations do not change floating-point results
(``tests/test_jit_compile.py`` compares against numba's own linking).

The numba internals relied on, pinned by ``tests/test_jit_compile.py`` (a
numba upgrade that changes them fails there, not silently):

* ``JITCPUCodegen.create_library`` instantiates ``codegen._library_class``;
* the three stages' library names (:data:`_THIN_NAMES`);
* ``CPUCodeLibrary.add_linking_library``/``finalize``/``_linking_libraries``
  and ``_verify_declare_only_symbols``;
* for late linking, the steps of ``CPUCodeLibrary.finalize`` that
  :meth:`ScopedCodeLibrary._finalize_late` runs in another order
  (``_optimize_final_module``, ``_get_module_for_linking``,
  ``_reload_init``, ``_finalize_final_module``).
"""

import threading

import llvmlite.binding as _llvm
from numba.core import codegen as _codegen
from numba.core import registry

#: Name prefixes of the libraries numba creates for a ``prange`` loop: the
#: outlined body (``__numba_parfor_gufunc_0x...``), ``str()`` of its
#: ``_GufuncWrapper`` and the ``parallelgufuncwrapper``.
_THIN_NAMES = ("__numba_parfor_gufunc_", "<numba.np.ufunc.wrappers._GufuncWrapper object", "parallelgufuncwrapper")

_scope = threading.local()


class ParallelDriverScope:
    """``with ParallelDriverScope():`` marks a compile of one of our parallel drivers
    (per thread, nestable): parfor libraries created inside are thin."""

    def __enter__(self):
        _scope.depth = getattr(_scope, "depth", 0) + 1

    def __exit__(self, *exc):
        _scope.depth -= 1


class DriverScope:
    """``with DriverScope(name):`` marks a compile of one of our drivers or block
    kernels (per thread, nestable): the library numba creates for that
    function itself (named ``name``, its qualified name) links late."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.outer = getattr(_scope, "driver", None)
        _scope.driver = self.name

    def __exit__(self, *exc):
        _scope.driver = self.outer


def _closure(libraries):
    """The libraries to link for ``libraries``: each, then (recursively) what a thin one passed on."""
    out, seen, stack = [], set(), list(reversed(libraries))
    while stack:
        lib = stack.pop()
        if id(lib) in seen:
            continue
        seen.add(id(lib))
        out.append(lib)
        stack.extend(reversed(getattr(lib, "_tn_deferred", ())))
    return out


class ScopedCodeLibrary(_codegen.JITCodeLibrary):
    """numba's JIT code library; *thin* (see the module docstring) when created
    inside :class:`ParallelDriverScope` for one of the three parfor stages.
    Outside that, it behaves exactly as ``JITCodeLibrary``."""

    def __init__(self, codegen, name):
        super().__init__(codegen, name)
        self._tn_thin = getattr(_scope, "depth", 0) > 0 and name.startswith(_THIN_NAMES)
        self._tn_late = name == getattr(_scope, "driver", None)
        self._tn_deferred = []

    def add_linking_library(self, library):
        if self._tn_thin:
            library._ensure_finalized()
            self._tn_deferred.append(library)
        else:
            super().add_linking_library(library)

    def finalize(self):
        # Link what thin libraries passed on (in the order numba would have
        # linked it: depth first, each library before its callees).
        if any(getattr(lib, "_tn_deferred", None) for lib in self._linking_libraries):
            self._linking_libraries = _closure(self._linking_libraries)
        if self._tn_late:
            self._finalize_late()
        else:
            super().finalize()

    def _finalize_late(self):
        # CPUCodeLibrary.finalize with the module passes before the linking.
        _codegen.require_global_compiler_lock()
        self._codegen._check_llvm_bugs()
        self._raise_if_finalized()
        self._optimize_final_module()
        seen = set()
        for library in self._linking_libraries:
            if library not in seen:
                seen.add(library)
                self._reload_init.update(library._reload_init)
                self._final_module.link_in(library._get_module_for_linking(), preserve=True)
        # The callees' copies no call reaches (their Python and C wrappers,
        # helpers LLVM inlined): linkonce_odr, so dead code for GlobalDCE.
        pm = _llvm.create_new_module_pass_manager()
        pm.add_global_dead_code_eliminate_pass()
        pm.run(self._final_module, self._codegen._pass_builder())
        self._final_module.verify()
        self._finalize_final_module()

    def _verify_declare_only_symbols(self):
        # A thin library declares numba-compiled callees it did not link; the
        # JIT engine resolves them to the callees' own libraries.
        if not self._tn_thin:
            super()._verify_declare_only_symbols()


def install():
    """Make numba's CPU codegen create :class:`ScopedCodeLibrary` (idempotent).

    Returns whether it does: not when another package has already replaced
    numba's library class (then parallel drivers compile as numba does by
    default: slower, same code).
    """
    cg = registry.cpu_target.target_context.codegen()
    if cg._library_class is _codegen.JITCodeLibrary:
        cg._library_class = ScopedCodeLibrary
    return cg._library_class is ScopedCodeLibrary
