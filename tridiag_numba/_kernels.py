"""The kernels' public face: every name the numpy API, the torch bridge, the
benchmarks and the tests use, re-exported from the modules that hold them.

Pure ``@njit`` code throughout: C-contiguous float32/float64 arrays in,
outputs and per-lane / per-matrix ``info`` codes out.  Nothing validates and
nothing raises; the numpy layer (``_api.py``) does both.  The algorithm, one
concern per module (dependencies run down the list):

* :mod:`._jit` -- every numba option: the decorators (``kernel_inner``,
  ``kernel_loop`` for hot loops without reference counting,
  ``kernel_parallel``/``kernel_serial``), the threading layer and the cache
  key over all kernel sources;
* :mod:`._layout` -- lanes (``LANES``, ``ROW``) and ``info`` codes;
* :mod:`._scaling` -- power-of-two scaling and dstebz's split test;
* :mod:`._sturm_ir` -- LLVM-IR forms of the Sturm pass and the block
  moments, each tested bit-identical against its plain reference;
* :mod:`._sturm` -- the Sturm recurrence (scalar reference step, the pass,
  the count at one value);
* :mod:`._lanes` -- the named lane state (``Jobs``, ``Bracket``, ``Slots``),
  a lane's initial bracket and first shift, filling slots;
* :mod:`._shifts` -- where a slot counts next: Laguerre with the end game,
  interpolation of the counting function (reads the bracket, never
  writes it);
* :mod:`._bisect` -- the eigenvalue engine's loop over slots (passes,
  counts, finishing and refilling): **the bracket invariant**
  (``_move_bracket``, the one writer of ``Bracket`` after ``_lane_start``);
* :mod:`._stein` -- **inverse iteration** (dstein) block by block of a
  split matrix;
* :mod:`._stein_lanes` -- inverse iteration for one eigenvalue per matrix,
  matrices as SIMD lanes (falls back to :mod:`._stein`);
* :mod:`._ql_lanes` -- all eigenvalues of a matrix by root-free QL
  (dsterf), matrices as SIMD lanes, **certified by Sturm counts** (what
  the counts do not certify, the numpy layer recomputes by bisection);
* :mod:`._order` -- stable ordering of a few values (cold paths), without
  numba's ``np.sort``;
* :mod:`._batch` -- parallel drivers and their serial twins, chunking and
  **the thread count** (which twin runs is the numpy layer's choice,
  ``_scheduling._use_serial``).

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
from ._load_ir import _scaled_transpose, _transpose_lanes  # noqa: F401
from ._sturm import (  # noqa: F401
    _sturm_step,
    _sturm_pass,
    _sturm_count_value,
)
from ._lanes import (  # noqa: F401
    _FUDGE,
    _MAX_LAGUERRE,
    _CLAMP,
    Jobs,
    Bracket,
    Slots,
    _norm_cdf,
    _norm_ppf,
    _lane_start,
    _load_lane,
    _start_counters,
    _fill_slot,
    _copy_scaled,
    _fill_block,
)
from ._bisect import (  # noqa: F401
    _FEW_SLOTS,
    Pass,
    _move_bracket,
    _snap_single,
    _hold_pair_first,
    _take_counts,
    _finish_job,
    _count_pass,
    _block_state,
    _run_block,
    _kth_block,
)
from ._shifts import (  # noqa: F401
    _laguerre_modified,
    _laguerre_shift,
    _interpolated_shift,
)
from ._stein import (  # noqa: F401
    _start_vector,
    _lu_shifted,
    _lu_solve,
    _block_counts,
    _assign_blocks,
    SteinBlock,
    _norm1,
    _factor,
    _iterate,
    _store_vector,
    _stein_block,
    _mgs,
    _split_points,
    _block_columns,
    _inverse_iteration,
)
from ._stein_lanes import (  # noqa: F401
    VecBlock,
    _load_vec_lanes,
    _shift_lanes,
    _lu_lanes,
    _start_lanes,
    _solve_lanes,
    _normalise_lanes,
    _eigvec_block,
)
from ._batch import (  # noqa: F401
    chunk_size,
    engine_chunk,
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
    redo_vectors_parallel,
    redo_vectors_serial,
)
from ._ql_lanes import (  # noqa: F401
    QL,
    ql_eigenvalues_parallel,
    ql_eigenvalues_serial,
)
