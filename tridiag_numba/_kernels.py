"""The kernels' public face: every name the numpy API, the torch bridge, the
benchmarks and the tests use, re-exported from the modules that hold them.

Pure ``@njit`` code throughout: C-contiguous float32/float64 arrays in,
outputs and per-lane / per-matrix ``info`` codes out.  Nothing validates and
nothing raises; the numpy layer (``_api.py``) does both.  The algorithm, one
concern per module:

* :mod:`._layout` -- lanes (``LANES``, ``ROW``) and ``info`` codes;
* :mod:`._scaling` -- power-of-two scaling and dstebz's split test;
* :mod:`._sturm` -- the Sturm recurrence (scalar reference step, the pass,
  the count at one value);
* :mod:`._sturm_ir` -- its LLVM-IR forms, tested bit-identical against
  ``_sturm_step``;
* :mod:`._lanes` -- a lane's initial bracket and first shift, filling slots;
* :mod:`._bisect` -- the eigenvalue engine (bisection, Laguerre, end game)
  and the bracket invariant;
* :mod:`._stein` -- inverse iteration (dstein) block by block;
* :mod:`._stein_lanes` -- inverse iteration with matrices as SIMD lanes;
* :mod:`._order` -- stable ordering of a few values (cold paths), without
  numba's ``np.sort``;
* :mod:`._batch` -- parallel drivers and their serial twins, chunking and
  the thread count.

Callers look drivers up here at call time (``K.kth_eigenvalues_parallel``),
so patching a name on this module reaches every caller.
"""

# ruff: noqa: F401

from ._layout import (  # noqa: F401
    LANES,
    ROW,
    INFO_OK,
    INFO_NONFINITE,
    INFO_NO_CONVERGENCE,
    INFO_VEC_NO_CONVERGENCE,
)
from ._scaling import (  # noqa: F401
    _float_bits,
    _scale_exponent,
    _pow2_pair,
    _split_e2,
)
from ._sturm_ir import (  # noqa: F401
    _VEC,
    _ir_arrays,
    _ir_const,
    _ir_splat,
    _check_sturm_types,
    _emit_sturm_loop,
    _sturm_pass_simd,
    _sturm_pass_gather,
    _block_moments,
)
from ._sturm import (  # noqa: F401
    _sturm_step,
    _sturm_pass,
    _sturm_count_value,
)
from ._lanes import (  # noqa: F401
    _FUDGE,
    _MAX_LAGUERRE,
    _CLAMP,
    _norm_cdf,
    _norm_ppf,
    _lane_start,
    _load_lane,
    _fill_slot,
    _fill_block,
)
from ._bisect import (  # noqa: F401
    _FEW_SLOTS,
    _snap_single,
    _laguerre_modified,
    _kth_block,
)
from ._stein import (  # noqa: F401
    _start_vector,
    _lu_shifted,
    _lu_solve,
    _block_counts,
    _assign_blocks,
    _stein_block,
    _mgs,
    _inverse_iteration,
)
from ._stein_lanes import (  # noqa: F401
    _eigvec_block,
)
from ._batch import (  # noqa: F401
    chunk_size,
    _num_threads,
    kth_eigenvalues_parallel,
    kth_eigenvalues_serial,
    value_counts_parallel,
    value_counts_serial,
    eigenvectors_parallel,
    eigenvectors_serial,
    _even_blocks,
    eigenvector1_parallel,
    eigenvector1_serial,
    _kth_pair_chunk,
    kth_eigenpairs_parallel,
    kth_eigenpairs_serial,
)
