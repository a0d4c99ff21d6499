"""Property-based tests (hypothesis; profile in conftest: 40 examples, no
deadline): invariants of the symmetric tridiagonal eigenproblem that hold
for every matrix.

Matrices are drawn with n in 1..24 and entries mixing wide-range floats
(subnormals included) with small integers and exact zeros (so ties, split
matrices and exactly repeated eigenvalues occur). Bounds, per matrix T of
order n, eps of float64 (each with an n * tiny floor for subnormal T):

* agreement with LAPACK dstebz:  |w - w_ref| <= 4 n eps ||T||; residual
  <= 10 n eps ||T||; |v_i^T v_j - delta_ij| <= 10 n eps within a cluster
  (gaps <= 1e-3 ||T||) and <= 10 n eps max(1, ||T|| / |w_i - w_j|) across
  clusters (inverse iteration's guarantee; LAPACK dstein has the same)
* trace:   |sum(w) - sum(d)| <= 8 n eps ||T||   (n eigenvalues, each within
  O(eps ||T||) by the backward stability of Sturm counts, plus summation)
* shift:   |w(T + sI) - (w(T) + s)| <= 4 n eps (||T|| + ||T + sI||)
* scale:   |w(aT) - a w(T)| <= 8 n eps ||aT|| (a < 0 reverses the order)
* sign flips of e (T' = D T D, D = diag(+-1)): |w(T') - w(T)| <= 4 n eps ||T||
  and, for isolated eigenvalues (gap > 1e-3 ||T||),
  ||v' - D v||_inf <= 20 n eps ||T|| / gap up to the sign of the column.
"""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tridiag_numba as tn
from conftest import (
    C_EIG,
    C_RES,
    GAP_MIN,
    assert_eigenvalues,
    assert_eigenvectors,
    assert_sign_convention,
    eps_of,
    min_gaps,
    ref_eigh,
    tnorm,
)

EPS = eps_of(np.float64)

# Wide-range floats (incl. subnormals), small integers (ties) and exact
# zeros (zeros in e split the matrix into blocks with shared eigenvalues).
_entries = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
    st.integers(-3, 3).map(float),
    st.just(0.0),
)


@st.composite
def tridiagonals(draw, max_n=24):
    n = draw(st.integers(1, max_n))
    d = draw(hnp.arrays(np.float64, n, elements=_entries))
    e = draw(hnp.arrays(np.float64, n - 1, elements=_entries))
    return d, e


@given(tridiagonals())
def test_agrees_with_scipy(de):
    d, e = de
    w, v = tn.eigh_tridiagonal(d, e)
    assert_eigenvalues(w, ref_eigh(d, e, eigvals_only=True), d, e, np.float64)
    assert_eigenvectors(d, e, w, v, np.float64, gap_aware=True)
    assert_sign_convention(v, np.float64)


@given(tridiagonals(), st.data())
def test_kth_eigenvalue_matches_sorted_spectrum(de, data):
    d, e = de
    n = d.size
    k = data.draw(st.integers(-n, n - 1))
    w_ref = ref_eigh(d, e, eigvals_only=True)
    w = tn.kth_eigenvalue(d, e, k)
    assert_eigenvalues(np.atleast_1d(w), w_ref[[k]], d, e, np.float64)


@given(tridiagonals())
def test_trace(de):
    d, e = de
    n = d.size
    w = tn.eigvalsh_tridiagonal(d, e)
    bound = 2 * C_EIG * n * EPS * tnorm(d, e) + n * np.finfo(np.float64).tiny
    assert abs(w.sum() - d.sum()) <= bound


@given(tridiagonals(), st.floats(-1e3, 1e3))
def test_shift_equivariance(de, s):
    d, e = de
    n = d.size
    w = tn.eigvalsh_tridiagonal(d, e)
    ws = tn.eigvalsh_tridiagonal(d + s, e)
    bound = C_EIG * n * EPS * (tnorm(d, e) + tnorm(d + s, e)) + n * np.finfo(float).tiny
    assert np.all(np.abs(ws - (w + s)) <= bound)


@given(tridiagonals(),
       st.one_of(st.floats(1e-3, 1e3), st.floats(-1e3, -1e-3), st.sampled_from([-1.0, 2.0**-60, 2.0**60])))
def test_scale_equivariance(de, alpha):
    """w(alpha T) = alpha w(T); for alpha < 0 the order reverses."""
    d, e = de
    n = d.size
    w = tn.eigvalsh_tridiagonal(d, e)
    wa, va = tn.eigh_tridiagonal(alpha * d, alpha * e)
    want = alpha * w if alpha > 0 else (alpha * w)[::-1]
    # both spectra carry their own error; w(T) is rounded at T's scale (down
    # to the subnormal grid), which alpha magnifies: hence the (1 + |alpha|) tiny
    tiny = np.finfo(float).tiny
    bound = 2 * C_EIG * n * (EPS * abs(alpha) * tnorm(d, e) + (1 + abs(alpha)) * tiny)
    assert np.all(np.abs(wa - want) <= bound)
    assert_eigenvectors(alpha * d, alpha * e, wa, va, np.float64, gap_aware=True)


@given(tridiagonals(), st.data())
def test_sign_of_e_irrelevant(de, data):
    """T' = D T D with D = diag(+-1) (flipping signs of e): same eigenvalues;
    eigenvectors v' = D v up to column sign where eigenvalues are isolated."""
    d, e = de
    n = d.size
    flips = np.array(data.draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n - 1,
                                        max_size=n - 1)))
    dsign = np.concatenate([[1.0], np.cumprod(flips)])  # D_{i+1} = D_i * flip_i
    e2 = e * flips
    np.testing.assert_array_equal(e2 * dsign[:-1] * dsign[1:], e)  # D T' D = T
    w, v = tn.eigh_tridiagonal(d, e)
    w2, v2 = tn.eigh_tridiagonal(d, e2)
    assert_eigenvalues(w2, w, d, e, np.float64)
    norm = float(tnorm(d, e))
    gaps = min_gaps(w)
    dv = dsign[:, None] * v
    for j in range(n):
        if not gaps[j] > GAP_MIN * norm:
            continue
        tol = 2 * C_RES * n * EPS * (norm / gaps[j])  # ratio first: no underflow
        err = min(np.abs(v2[:, j] - dv[:, j]).max(), np.abs(v2[:, j] + dv[:, j]).max())
        assert err <= tol, f"column {j}: {err:.3g} > {tol:.3g}"


@given(st.integers(1, 5), tridiagonals(max_n=12), st.data())
def test_batch_of_shifted_copies(batch, de, data):
    """A batch of shifted copies T + s_b I in one call: each row equals the
    spectrum of T shifted by s_b (within the shift bound)."""
    d, e = de
    n = d.size
    shifts = np.array(data.draw(st.lists(st.floats(-100, 100), min_size=batch,
                                         max_size=batch)))
    db = d[None, :] + shifts[:, None]
    w = tn.eigvalsh_tridiagonal(db, e)
    w0 = ref_eigh(d, e, eigvals_only=True)
    bound = C_EIG * n * EPS * (tnorm(d, e) + tnorm(db, e))[:, None] + 1e-300
    assert np.all(np.abs(w - (w0[None, :] + shifts[:, None])) <= bound)
