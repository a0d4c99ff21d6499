"""The one place that sets numba options for every kernel of the package.

Why these options:

* ``cache=True`` -- a cold parallel compile costs seconds; the on-disk cache
  brings the first call of a fresh process down to a cache load.
* ``nogil=True`` -- kernels release the GIL, so Python threads (and torch's
  autograd engine) can run them concurrently.
* ``error_model="numpy"`` -- float division by zero gives inf/nan instead of
  raising ``ZeroDivisionError``; the python error model also adds a branch to
  every division, which blocks vectorisation of the lane loops.
* no ``fastmath`` -- it makes ``isnan``/``isinf`` constant ``False`` and lets
  LLVM reassociate the Sturm recurrence, whose error analysis assumes IEEE
  arithmetic.

Every parallel driver has a serial twin (``kernel_serial``) compiled from its
own Python function: numba's ``workqueue`` threading layer aborts the process
when two Python threads launch parallel kernels at once, so the numpy layer
runs the serial twin off the main thread when the layer is not thread-safe.
"""

from functools import partial

import numba

_COMMON = dict(nogil=True, cache=True, error_model="numpy")

#: Batch drivers whose outer loop is a ``numba.prange`` over blocks of matrices.
kernel_parallel = partial(numba.njit, parallel=True, **_COMMON)
#: Serial twins of the batch drivers (same body, ``prange`` runs as ``range``).
kernel_serial = partial(numba.njit, parallel=False, **_COMMON)
#: Helpers called from drivers; inlined by LLVM where profitable.
kernel_inner = partial(numba.njit, **_COMMON)
