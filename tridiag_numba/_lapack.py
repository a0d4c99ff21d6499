"""LAPACK's tridiagonal eigensolvers, callable from numba kernels.

scipy ships LAPACK's routines as C functions in ``scipy.linalg.cython_lapack``
(Fortran calling convention: every argument by pointer, the hidden string
lengths supplied by scipy's wrappers).  This module makes six of them --
``stevd`` (divide and conquer), ``stemr`` (MRRR), ``sterf`` (root-free QR),
``stev`` (implicit QL/QR), ``stebz`` (bisection) and ``stein`` (inverse
iteration) -- callable from ``@njit`` code, in float32 (``s``) and float64
(``d``).

How, and why this way:

* At import, each routine's address is registered with LLVM's dynamic linker
  under a private symbol name (``llvmlite.binding.add_symbol``).
* Each binding is a numba ``@intrinsic`` that *declares* that symbol in the
  kernel's LLVM IR and calls it.  The compiled kernel refers to the routine by
  name, never by address, so numba can cache it on disk (numba refuses to
  cache functions holding ctypes pointers as constants); when a cached kernel
  is loaded in a new process, the symbol resolves to that process's address,
  which this module registered at import -- before any kernel that uses it
  is loaded, because the kernel modules import this one.
* The intrinsic takes the routine's arguments in LAPACK's order.  Array
  arguments pass their data pointer (a slice ``a[i:]`` points at element i);
  scalar arguments are stored in a stack slot of the routine's C type
  (``char``, ``int``, or the real type of the routine's precision) and pass
  that slot's address.  Outputs (``info``, ``m``, ...) must be arrays.
* ``s`` or ``d`` is chosen at typing time from the dtype of the first real
  array argument, so one kernel source serves both precisions.

The tridiagonal drivers keep no global state (all workspace is passed in), so
they are safe to call concurrently from a ``prange``.  Workspace sizes are
LAPACK's documented minima (see each binding's docstring); no workspace query.
"""

from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.errors import TypingError
from numba.extending import get_cython_function_address, intrinsic

__all__ = ["stebz", "stein", "stemr", "sterf", "stev", "stevd", "symbol_name"]

#: Argument kinds of each routine, in LAPACK's order: ``c`` a char scalar,
#: ``i`` an int scalar, ``r`` a real scalar, ``I`` an int32 array, ``R`` a real
#: array (float64 for ``d``, float32 for ``s`` routines).
_SPECS = {
    # jobz, n, d, e, z, ldz, work, lwork, iwork, liwork, info
    "stevd": "ciRRRiRiIiI",
    # jobz, range, n, d, e, vl, vu, il, iu, m, w, z, ldz, nzc, isuppz, tryrac,
    # work, lwork, iwork, liwork, info
    "stemr": "cciRRrriiIRRiiIIRiIiI",
    # n, d, e, info
    "sterf": "iRRI",
    # jobz, n, d, e, z, ldz, work, info
    "stev": "ciRRRiRI",
    # range, order, n, vl, vu, il, iu, abstol, d, e, m, nsplit, w, iblock,
    # isplit, work, iwork, info
    "stebz": "ccirriirRRIIRIIRII",
    # n, d, e, m, w, iblock, isplit, z, ldz, work, iwork, ifail, info
    "stein": "iRRiRIIRiRIII",
}

_PREFIX = "tridiag_numba_lapack_"


def symbol_name(routine):
    """The LLVM symbol under which LAPACK ``routine`` (e.g. ``'dstevd'``) is
    registered."""
    return _PREFIX + routine


def _register_symbols():
    for name in _SPECS:
        for prefix in "sd":
            routine = prefix + name
            address = get_cython_function_address("scipy.linalg.cython_lapack", routine)
            llvm_binding.add_symbol(symbol_name(routine), address)


_register_symbols()


def _check_args(name, spec, args):
    """Typing-time check of the argument list; returns the precision prefix."""
    if len(args) != len(spec):
        raise TypingError(f"{name}: expected {len(spec)} arguments, got {len(args)}")
    prefix = None
    for i, (kind, ty) in enumerate(zip(spec, args)):
        if kind in "IR":
            if not isinstance(ty, types.Array) or ty.layout not in "CA":
                raise TypingError(f"{name}: argument {i + 1} must be an array, got {ty}")
            if kind == "I" and ty.dtype != types.int32:
                raise TypingError(f"{name}: argument {i + 1} must be an int32 array, got {ty}")
            if kind == "R":
                if ty.dtype not in (types.float32, types.float64):
                    raise TypingError(f"{name}: argument {i + 1} must be float32/float64, got {ty}")
                this = "d" if ty.dtype == types.float64 else "s"
                if prefix is not None and this != prefix:
                    raise TypingError(f"{name}: real arrays of mixed precision")
                prefix = this
        elif not isinstance(ty, (types.Integer, types.Float, types.IntegerLiteral)):
            raise TypingError(f"{name}: argument {i + 1} must be a scalar, got {ty}")
    return prefix


def _scalar_slot(context, builder, kind, real, ty, value):
    """A stack slot holding ``value`` converted to LAPACK's type for ``kind``."""
    if kind == "c":
        target, lty = types.int8, ir.IntType(8)
    elif kind == "i":
        target, lty = types.int32, ir.IntType(32)
    else:
        target = real
        lty = context.get_value_type(real)
    converted = context.cast(builder, value, ty, target)
    slot = cgutils.alloca_once(builder, lty)
    builder.store(converted, slot)
    return builder.bitcast(slot, ir.IntType(8).as_pointer())


def _binding(name):
    spec = _SPECS[name]

    def typer(typingctx, *args):
        prefix = _check_args(name, spec, args)
        real = types.float64 if prefix == "d" else types.float32
        routine = prefix + name

        def codegen(context, builder, signature, llargs):
            bytep = ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.VoidType(), [bytep] * len(spec))
            fn = cgutils.get_or_insert_function(builder.module, fnty, symbol_name(routine))
            # ``*args`` arrive as one tuple (numba's StarArgTuple).
            values = cgutils.unpack_tuple(builder, llargs[0])
            pointers = []
            for kind, ty, value in zip(spec, signature.args[0].types, values):
                if kind in "IR":
                    array = context.make_array(ty)(context, builder, value)
                    pointers.append(builder.bitcast(array.data, bytep))
                else:
                    pointers.append(_scalar_slot(context, builder, kind, real, ty, value))
            builder.call(fn, pointers)
            return context.get_dummy_value()

        return types.void(types.StarArgTuple.from_types(args)), codegen

    typer.__name__ = name
    typer.__qualname__ = name
    typer.__doc__ = f"LAPACK ?{name}; argument kinds {spec!r} (see the module's _SPECS)."
    return intrinsic(prefer_literal=False)(typer)


#: ``stevd(jobz, n, d, e, z, ldz, work, lwork, iwork, liwork, info)``:
#: divide and conquer.  jobz 'V': lwork >= 1 + 4n + n**2, liwork >= 3 + 5n;
#: 'N': 1 and 1.
stevd = _binding("stevd")
#: ``stemr(jobz, range, n, d, e, vl, vu, il, iu, m, w, z, ldz, nzc, isuppz,
#: tryrac, work, lwork, iwork, liwork, info)``: MRRR.  ``e`` has length n;
#: lwork >= 18n ('V') / 12n ('N'), liwork >= 10n / 8n, isuppz 2 * max(1, m).
stemr = _binding("stemr")
#: ``sterf(n, d, e, info)``: all eigenvalues, Pal-Walker-Kahan QL/QR.
sterf = _binding("sterf")
#: ``stev(jobz, n, d, e, z, ldz, work, info)``: implicit QL/QR;
#: work >= max(1, 2n - 2) with vectors.
stev = _binding("stev")
#: ``stebz(range, order, n, vl, vu, il, iu, abstol, d, e, m, nsplit, w,
#: iblock, isplit, work, iwork, info)``: bisection; work 4n, iwork 3n.
stebz = _binding("stebz")
#: ``stein(n, d, e, m, w, iblock, isplit, z, ldz, work, iwork, ifail, info)``:
#: inverse iteration; work 5n, iwork n, ifail m.
stein = _binding("stein")
