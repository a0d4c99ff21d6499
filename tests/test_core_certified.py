"""Certified eigenvalues (issue 10): reproducers of wrong results, splits.

Every eigenvalue the kernels return lies in an interval whose two ends were
verified by Sturm counts, of width at most the stopping tolerance; these are
the matrices on which an unverified end-game shortcut returned wrong values.
Bounds: the reported eigenvalue within 1 ulp (of the dtype) of LAPACK's
value on the exact matrix; the others within 1 ulp or eps ||T||_1
(bisection's accuracy is absolute: small eigenvalues carry eps ||T|| of
error, in LAPACK too).
"""

import numpy as np
import pytest
import scipy.linalg

import tridiag_numba as tn


def ulps(got, want, dtype):
    """|got - want| in units of the dtype's spacing at ``want``."""
    want = np.asarray(want, np.float64)
    return np.abs(np.asarray(got, np.float64) - want) / np.spacing(np.abs(want).astype(dtype)).astype(np.float64)


def lapack_eigvalsh(d, e):
    """Eigenvalues of the upcast matrix (LAPACK dstebz via scipy, float64)."""
    return scipy.linalg.eigvalsh_tridiagonal(np.float64(d), np.float64(e), lapack_driver="stebz", tol=1e-300)


REPRODUCERS = {
    # float32, n = 3: the top eigenvalue was 1.3430693 (418 eps ||T||).
    "float32_n3": (np.float32([0.5978164076805115, 0.7501299381256104, 0.31666088104248047]),
                   np.float32([0.6643416881561279, 0.02472539432346821]), 2),
    # float64, n = 6: kth_eigenvalue(d, e, 1) was -0.41226782225183606.
    "float64_n6": (np.array([0.276619000133556, 0.8125679279288068, 0.010415443170263772,
                             0.13162705184051948, 0.21707305911652452, 0.7812481023857696]),
                   np.array([0.8857179956946238, 0.19183694095509451, 0.05654691417360469,
                             0.8620462796705172, 0.035390707013562506]), 1),
    # Worst of the old code in tests/test_core_statistical.py's float32 gate (2166 eps ||T||).
    "float32_gate": (np.float32([0.5985610485076904, 0.8004645705223083, 0.8989096879959106]),
                     np.float32([0.05569782853126526, 0.024481337517499924]), 2),
}


@pytest.mark.parametrize("name", sorted(REPRODUCERS))
def test_reproducers_within_one_ulp_of_lapack(name):
    d, e, k = REPRODUCERS[name]
    ref = lapack_eigvalsh(d, e)
    w_all = tn.eigvalsh_tridiagonal(d, e, lapack_driver="stebz")
    w_k = tn.kth_eigenvalue(d, e, k)
    w_pair, _ = tn.kth_eigenpair(d, e, k)
    w_h, _ = tn.eigh_tridiagonal(d, e, lapack_driver="stebz")
    unit = np.finfo(d.dtype).eps * (np.abs(np.float64(d)).max() + 2 * np.abs(np.float64(e)).max())
    for w in (w_all, w_h):
        assert ulps(w[k], ref[k], d.dtype) <= 1, (w, ref)
        assert ((ulps(w, ref, d.dtype) <= 1) | (np.abs(w - ref) <= unit)).all(), (w, ref)
    assert ulps(w_k, ref[k], d.dtype) <= 1, (w_k, ref[k])
    assert ulps(w_pair, ref[k], d.dtype) <= 1, (w_pair, ref[k])
    # An explicit tol did not help before: it must not hurt now.
    w_tol = tn.kth_eigenvalue(d, e, k, tol=float(np.finfo(d.dtype).eps))
    assert ulps(w_tol, ref[k], d.dtype) <= 1
