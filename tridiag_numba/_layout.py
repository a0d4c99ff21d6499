"""Lane layout and ``info`` status codes shared by every kernel module.

Work is organised in *lanes*: one lane is one (matrix, eigenvalue index) pair.
The Sturm recurrence is a serial chain of divisions inside one matrix, so the
eigenvalue kernel interleaves ``LANES`` lanes batch-minor -- arrays of shape
``(n, ROW)`` with the lane loop innermost -- and LLVM turns the lane loop
into SIMD code that keeps many independent divisions in flight.

Notation (LAPACK's): a symmetric tridiagonal ``T`` has diagonal ``d`` (n) and
off-diagonal ``e`` (n-1); ``w`` are eigenvalues, ``v`` eigenvectors.
"""




#: Lanes interleaved per thread (32 float64 lanes saturate the divider here).
LANES = 32
#: Row length of lane-interleaved (n, ROW) work arrays; lanes LANES..ROW-1
#: are padding.  With rows of 32 float64 (256 bytes) a column -- one matrix,
#: written while a block is loaded -- falls into 16 of the L1 cache's 64
#: sets and evicts itself; 40 (320 bytes) spreads it over all of them and
#: halved the time to load a block column by column.  (The loaders now
#: write whole 8-lane rows, :mod:`._load_ir`; 40 was kept, not re-measured.)
ROW = 40

#: ``info`` codes shared with the numpy layer.
INFO_OK = 0
INFO_NONFINITE = -1  # input held NaN/inf: outputs are NaN
INFO_NO_CONVERGENCE = 1  # bisection ran out of iterations
INFO_VEC_NO_CONVERGENCE = 2  # inverse iteration did not converge
# The lane inverse iteration (:mod:`._stein_lanes`) left this vector to the full
# dstein loop, which the numpy layer runs (``_api._redo_vectors``); positive, so
# that a caller that forgot raises instead of returning the unwritten vector.
INFO_VEC_REDO = 3
