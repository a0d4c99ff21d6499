"""Shared helpers for the core-solver tests: reference solutions, error
measures and the catalogue of test matrices.

Error measures follow LAPACK's test drivers (``dstt21``/``dstt22``): every
error is divided by ``n * eps * ||T||`` (or ``n * eps`` for orthogonality)
and the ratio must stay below a small constant, where ``eps`` is the
machine epsilon of the dtype the solver computed in and ``||T||`` is the
max-abs-row-sum norm of the matrix. References are always computed in
float64 from the exact (upcast) input matrix, so float32 results are judged
against the float32 bound ``n * eps32 * ||T||``.
"""

import functools
import os

import numpy as np
import pytest
import scipy.linalg
from hypothesis import settings

from tridiag_numba import matrices as tm

# hypothesis: no deadline (the first example pays for numba compilation);
# HYPOTHESIS_PROFILE=thorough for a longer local search.
settings.register_profile("default", deadline=None, max_examples=40)
settings.register_profile("thorough", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# --- bound constants ---------------------------------------------------------
#: |w - w_ref| <= C_EIG * n * eps * ||T|| + n * tiny
C_EIG = 4.0
#: max_j ||T v_j - w_j v_j||_2 <= C_RES * n * eps * ||T|| + n * tiny
C_RES = 10.0
#: max |V^T V - I| <= C_ORTH * n * eps
C_ORTH = 10.0
#: eigenvalues closer than GAP_MIN * ||T|| form a cluster (dstein's rule,
#: Reference-LAPACK SRC/dstein.f: ORTOL = 1e-3 * ||block||_1); vectors are
#: compared one by one only outside clusters.
GAP_MIN = 1e-3

#: Scale factors applied to ``(d, e)``: large/small enough that squaring an
#: entry (as a naive Sturm recurrence or dense reduction would) overflows or
#: underflows in the given dtype.
SCALES = {
    np.dtype(np.float64): {"x1": 1.0, "big": 1e150, "small": 1e-150},
    np.dtype(np.float32): {"x1": 1.0, "big": 1e30, "small": 1e-30},
}
DTYPES = [np.float64, np.float32]


def eps_of(dtype):
    return float(np.finfo(dtype).eps)


def tiny_of(dtype):
    return float(np.finfo(dtype).tiny)


def tnorm(d, e):
    """max-abs-row-sum norm ||T||, in float64, per matrix: shape (...,)."""
    d = np.abs(np.asarray(d, dtype=np.float64))
    e = np.abs(np.asarray(e, dtype=np.float64))
    batch = np.broadcast_shapes(d.shape[:-1], e.shape[:-1])
    r = np.broadcast_to(d, batch + d.shape[-1:]).copy()
    r[..., :-1] += e
    r[..., 1:] += e
    return r.max(axis=-1)


def eig_bound(d, e, dtype, c=C_EIG):
    """Absolute eigenvalue error bound c*n*eps*||T|| + n*tiny per matrix.

    The ``n * tiny`` floor only matters for the zero matrix (``||T|| = 0``),
    where bisection may legitimately land on +-pivmin (dstebz).
    """
    n = np.shape(d)[-1]
    return c * n * eps_of(dtype) * tnorm(d, e) + n * tiny_of(dtype)


def as64(*arrays):
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


# --- references -----------------------------------------------------------------
def _pow2_scale(d, e):
    """A power of two s with max|T entries| / s in [0.5, 2]: dividing by it is
    exact, so the scaled matrix has exactly the scaled spectrum and the same
    eigenvectors. LAPACK dstebz/dstein do not scale internally (dstebz
    requires entries well inside the overflow/underflow range)."""
    big = max(np.abs(d).max(initial=0.0), np.abs(e).max(initial=0.0))
    return float(np.ldexp(1.0, int(np.round(np.log2(big))))) if big > 0 else 1.0


def _lapack_bisection(d, e, eigvals_only, select, select_range):
    """One float64 matrix through dstebz (+ dstein) on the exactly rescaled
    matrix. Bisection is used as the reference because it is robust: the
    QR-based dsterf behind scipy's default driver ('stevd') and behind
    numpy.linalg.eigvalsh mis-splits matrices with diagonal entries near
    1e-160 (e.g. d = [0]*4 + [2.5e-161] + [0]*6,
    e = [0]*4 + [1, 1, 1, 1, 2, 2.1e-161] gives a top eigenvalue 2.30762
    instead of 2.30725)."""
    s = _pow2_scale(d, e)
    sel = select
    rng = select_range
    if isinstance(sel, str) and sel.lower() in ("a", "all"):
        sel, rng = "i", (0, d.size - 1)
    elif isinstance(sel, str) and sel.lower() in ("v", "value"):
        rng = (rng[0] / s, rng[1] / s)
    out = scipy.linalg.eigh_tridiagonal(
        d / s, e / s, eigvals_only=eigvals_only, select=sel, select_range=rng,
        lapack_driver="stebz",
    )
    return out * s if eigvals_only else (out[0] * s, out[1])


def ref_eigh(d, e, eigvals_only=False, select="a", select_range=None):
    """LAPACK dstebz (+ dstein) in float64 on the upcast matrix, looped over
    the batch dimensions (same m for every matrix). select is 'a', 'i' or
    'v' (string forms)."""
    d, e = as64(d, e)
    batch = np.broadcast_shapes(d.shape[:-1], e.shape[:-1])
    d = np.broadcast_to(d, batch + d.shape[-1:])
    e = np.broadcast_to(e, batch + e.shape[-1:])
    ws, vs = [], []
    for idx in np.ndindex(batch):
        out = _lapack_bisection(d[idx], e[idx], eigvals_only, select, select_range)
        if eigvals_only:
            ws.append(out)
        else:
            ws.append(out[0])
            vs.append(out[1])
    if not batch:
        return ws[0] if eigvals_only else (ws[0], vs[0])
    w = np.stack(ws).reshape(batch + ws[0].shape)
    if eigvals_only:
        return w
    return w, np.stack(vs).reshape(batch + vs[0].shape)


def ref_stein(d, e, il, iu):
    """Eigenpairs il..iu (inclusive, 0-based) of one matrix from LAPACK
    dstebz + dstein in float64 (scipy's select='i' path): dstein makes the
    entry of largest magnitude of each vector positive, the same convention
    as tridiag_numba."""
    d, e = as64(d, e)
    return _lapack_bisection(d, e, False, "i", (il, iu))


def dense_eigvalsh(d, e):
    """Eigenvalues of the dense float64 matrix from numpy.linalg.eigvalsh
    (an independent algorithm: Householder reduction + QR)."""
    return np.linalg.eigvalsh(tm.dense(d, e, dtype=np.float64))


# --- error measures ---------------------------------------------------------------
def residuals(d, e, w, v):
    """||T v_j - w_j v_j||_2 for every column j, in float64: shape (..., m).

    Uses the tridiagonal product directly (no dense matrix), so it stays
    accurate for 1e+-150-scaled matrices.
    """
    d, e, w, v = as64(d, e, w, v)
    tv = d[..., :, None] * v
    tv[..., 1:, :] += e[..., :, None] * v[..., :-1, :]
    tv[..., :-1, :] += e[..., :, None] * v[..., 1:, :]
    r = tv - w[..., None, :] * v
    return np.sqrt(np.sum(r * r, axis=-2))


def orthogonality(v):
    """max |V^T V - I| per matrix, in float64: shape (...,)."""
    v = np.asarray(v, dtype=np.float64)
    m = v.shape[-1]
    if m == 0:
        return np.zeros(v.shape[:-2])
    g = np.swapaxes(v, -1, -2) @ v - np.eye(m)
    return np.abs(g).max(axis=(-1, -2))


def min_gaps(w):
    """Distance from each eigenvalue to its nearest neighbour (inf if alone)."""
    w = np.asarray(w, dtype=np.float64)
    gaps = np.full(w.shape, np.inf)
    if w.size > 1:
        dw = np.diff(w)
        gaps[1:] = dw
        gaps[:-1] = np.minimum(gaps[:-1], dw)
    return gaps


# --- assertions -------------------------------------------------------------------
def assert_eigenvalues(w, w_ref, d, e, dtype, c=C_EIG, what="eigenvalues"):
    """|w - w_ref| <= c * n * eps * ||T|| + n * tiny, elementwise per matrix."""
    w = np.asarray(w, dtype=np.float64)
    w_ref = np.asarray(w_ref, dtype=np.float64)
    assert w.shape == w_ref.shape, f"{what}: shape {w.shape} != {w_ref.shape}"
    assert np.all(np.isfinite(w)), f"{what}: non-finite values {w}"
    bound = np.asarray(eig_bound(d, e, dtype, c))[..., None]
    err = np.abs(w - w_ref)
    bad = err > bound
    if np.any(bad):
        ratio = np.max(err / np.where(bound > 0, bound, np.inf) * c)
        raise AssertionError(
            f"{what}: |w - w_ref| / (n eps ||T||) up to {ratio:.3g} > {c} "
            f"at {np.argwhere(bad)[:5].tolist()}; w={w[bad][:5]}, "
            f"w_ref={w_ref[bad][:5]}"
        )


def pairwise_orth_bound(w, norm, n, eps, c=C_ORTH):
    """Bound on |v_i^T v_j| for inverse iteration (dstein) with eigenvalues w.

    Vectors of one cluster (consecutive gaps <= GAP_MIN ||T||) are
    re-orthogonalised: c n eps. Vectors of different clusters are each
    accurate to O(eps ||T|| / gap) only (the LU solves are backward stable
    with respect to ||T||, not to the gap), so there the bound is
    c n eps max(1, ||T|| / |w_i - w_j|) -- at most about 1000 c n eps.
    Gaps within a factor 2 of the cluster threshold get the looser bound.
    """
    w = np.asarray(w, dtype=np.float64)
    m = w.size
    bound = np.full((m, m), c * n * eps)
    if m < 2 or norm == 0:
        return bound
    # cluster id: increments at every gap that might exceed the threshold
    cid = np.concatenate([[0], np.cumsum(np.diff(w) > 0.5 * GAP_MIN * norm)])
    # Gaps can be exact zeros or subnormal (norm / gap then overflows to inf:
    # no bound, rightly).
    with np.errstate(divide="ignore", over="ignore"):
        far = c * n * eps * np.maximum(1.0, norm / np.abs(w[:, None] - w[None, :]))
    other = cid[:, None] != cid[None, :]
    bound[other] = far[other]
    return bound


def assert_eigenvectors(d, e, w, v, dtype, c_res=C_RES, c_orth=C_ORTH,
                        gap_aware=False):
    """Residual max_j ||T v_j - w_j v_j|| <= c_res * n * eps * ||T|| + n * tiny
    and orthogonality max |V^T V - I| <= c_orth * n * eps, per matrix.

    With ``gap_aware=True`` (for arbitrary matrices, e.g. from hypothesis)
    the orthogonality bound for vectors of different clusters is relaxed to
    the one inverse iteration guarantees (see ``pairwise_orth_bound``).
    """
    n = np.shape(d)[-1]
    eps = eps_of(dtype)
    assert np.all(np.isfinite(v)), "eigenvectors contain non-finite values"
    res = residuals(d, e, w, v)
    bound = (c_res * n * eps * tnorm(d, e) + n * tiny_of(dtype))[..., None]
    if np.any(res > bound):
        ratio = np.max(res / (n * eps * np.maximum(tnorm(d, e), tiny_of(dtype)))[..., None])[()]
        raise AssertionError(
            f"residual ||Tv - wv|| / (n eps ||T||) = {ratio:.3g} > {c_res}"
        )
    if gap_aware:
        d64, e64, w64, v64 = as64(d, e, w, v)
        for idx in np.ndindex(np.broadcast_shapes(d64.shape[:-1], w64.shape[:-1])):
            wi, vi = w64[idx], v64[idx]
            g = np.abs(vi.T @ vi - np.eye(wi.size))
            bnd = pairwise_orth_bound(wi, float(tnorm(d64[idx], e64[idx])), n, eps,
                                      c_orth)
            if np.any(g > bnd):
                i, j = np.unravel_index(np.argmax(g / bnd), g.shape)
                raise AssertionError(
                    f"orthogonality |v_{i}^T v_{j} - delta| = {g[i, j]:.3g} > "
                    f"{bnd[i, j]:.3g} (w_i={wi[i]:.17g}, w_j={wi[j]:.17g}) in "
                    f"matrix {idx}"
                )
        return
    orth = orthogonality(v)
    if np.any(orth > c_orth * n * eps):
        raise AssertionError(
            f"orthogonality |V^T V - I| / (n eps) = {np.max(orth) / (n * eps):.3g} "
            f"> {c_orth}"
        )


def assert_sign_convention(v, dtype):
    """Every eigenvector (column of v, shape (..., n, m)) has its entry of
    largest magnitude positive. When several entries tie within rounding
    (|v_i| >= (1 - 8 eps) max|v|, e.g. symmetric/antisymmetric vectors of
    persymmetric matrices), the convention is ambiguous in floating point and
    only "one of the tied entries is positive" is required."""
    v = np.asarray(v, dtype=np.float64)
    a = np.abs(v)
    top = a.max(axis=-2, keepdims=True)
    tied = a >= top * (1 - 8 * eps_of(dtype))
    ok = np.any(tied & (v > 0), axis=-2)
    assert np.all(ok), (
        "sign convention (largest |v_i| positive) violated in columns "
        f"{np.argwhere(~ok)[:5].tolist()}"
    )


def assert_vectors_match(v, v_ref, gaps, d, e, dtype, c=2 * C_RES):
    """Columns of v match v_ref (same sign convention) where the eigenvalue
    is isolated: ||v_j - v_ref_j||_inf <= c * n * eps * ||T|| / gap_j
    (Davis-Kahan: sin(angle) <= residual / gap), for gap_j > GAP_MIN ||T||
    and when the largest entry of v_ref_j is unambiguous (otherwise up to
    sign). ``gaps[j]`` is the distance from the eigenvalue of column j to
    the rest of the spectrum (see ``min_gaps``). Returns the number of
    columns compared."""
    n = np.shape(d)[-1]
    norm = float(tnorm(d, e))
    v = np.asarray(v, dtype=np.float64)
    v_ref = np.asarray(v_ref, dtype=np.float64)
    compared = 0
    for j in range(v_ref.shape[-1]):
        if not gaps[j] > GAP_MIN * norm:
            continue
        tol = c * n * eps_of(dtype) * (norm / gaps[j])  # ratio first: no underflow
        a = np.sort(np.abs(v_ref[:, j]))
        if a.size > 1 and a[-1] - a[-2] <= 2 * tol:
            # sign set by a near-tie: compare up to sign only
            err = min(np.abs(v[:, j] - v_ref[:, j]).max(),
                      np.abs(v[:, j] + v_ref[:, j]).max())
        else:
            err = np.abs(v[:, j] - v_ref[:, j]).max()
        assert err <= tol, (
            f"eigenvector {j}: ||v - v_ref||_inf = {err:.3g} > {tol:.3g} "
            f"(gap {gaps[j]:.3g}, ||T|| {norm:.3g})"
        )
        compared += 1
    return compared


# --- catalogue of test matrices ---------------------------------------------------
#: (family, size) pairs; sizes spread over 1..257. Each entry maps to a
#: generator call and, where one exists, the exact spectrum.
def _split_toeplitz(n_blocks):
    return tm.split_matrix(n_blocks, block=tm.toeplitz_121(3))


FAMILIES = {
    # name: (generator(size) -> (d, e), exact(size) -> w or None)
    "toeplitz": (tm.toeplitz_121, tm.toeplitz_121_eigenvalues),
    "wilkinson": (tm.wilkinson, None),
    "glued_wilkinson": (tm.glued_wilkinson, None),  # size = number of W21+ blocks
    "clement": (tm.clement, tm.clement_eigenvalues),
    "legendre": (tm.legendre_jacobi, lambda n: _roots("legendre", n)),
    "hermite": (tm.hermite_jacobi, lambda n: _roots("hermite", n)),
    "laguerre": (tm.laguerre_jacobi, lambda n: _roots("laguerre", n)),
    # size = number of clement(5) blocks: spectrum -4,-2,0,2,4 each x size
    "split_clement": (
        lambda k: tm.split_matrix(k, block=5),
        lambda k: np.repeat(tm.clement_eigenvalues(5), k),
    ),
    "split_toeplitz": (_split_toeplitz, None),
    # size = n of the zero matrix (split_matrix of 1x1 zero blocks)
    "zero": (lambda n: tm.split_matrix(n, block=1), lambda n: np.zeros(n)),
    "random": (lambda n: tm.random_batch((), n, seed=1000 + n), None),
}

CASES = [
    ("toeplitz", s) for s in (1, 2, 3, 10, 64, 257)
] + [
    ("wilkinson", s) for s in (1, 3, 21, 100, 257)
] + [
    ("glued_wilkinson", s) for s in (1, 2, 6, 12)
] + [
    ("clement", s) for s in (1, 2, 7, 64, 257)
] + [
    ("legendre", s) for s in (1, 5, 64, 257)
] + [
    ("hermite", s) for s in (1, 7, 64, 257)
] + [
    ("laguerre", s) for s in (1, 7, 64, 200)
] + [
    ("split_clement", s) for s in (1, 3, 20)
] + [
    ("split_toeplitz", s) for s in (2, 30)
] + [
    ("zero", s) for s in (1, 4)
] + [
    ("random", s) for s in (1, 2, 5, 33, 257)
]


def _roots(kind, n):
    import scipy.special as sp

    fn = {"legendre": sp.roots_legendre, "hermite": sp.roots_hermite,
          "laguerre": sp.roots_laguerre}[kind]
    return np.sort(fn(n)[0])


class Case:
    """One test matrix in one dtype at one scale, with float64 references."""

    def __init__(self, family, size, dtype, scale):
        gen, exact = FAMILIES[family]
        d, e = gen(size)
        s = SCALES[np.dtype(dtype)][scale]
        self.family, self.size, self.scale = family, size, scale
        self.dtype = np.dtype(dtype)
        self._d = (s * d).astype(dtype)
        self._e = (s * e).astype(dtype)
        self.n = d.size
        self.eps = eps_of(dtype)
        self.norm = float(tnorm(self._d, self._e))
        self.exact = None if exact is None else s * exact(size)
        self.w_ref = ref_eigh(self._d, self._e, eigvals_only=True)

    @property
    def d(self):
        return self._d.copy()

    @property
    def e(self):
        return self._e.copy()

    def __repr__(self):
        return f"Case({self.family}, size={self.size}, {self.dtype}, {self.scale})"


@functools.lru_cache(maxsize=None)
def get_case(family, size, dtype, scale):
    return Case(family, size, dtype, scale)


def case_params():
    """pytest params for every (family, size) x dtype x scale."""
    return [
        pytest.param((f, s, np.dtype(dt), sc), id=f"{f}-{s}-{np.dtype(dt).name}-{sc}")
        for f, s in CASES
        for dt in DTYPES
        for sc in ("x1", "big", "small")
    ]


@pytest.fixture(params=case_params())
def case(request):
    """A test matrix (family x size x dtype x scale) with references."""
    return get_case(*request.param)


@pytest.fixture(autouse=True)
def _numba_layer_unless_asked():
    """Every test's engine calls run on numba's layer unless it registers an
    OpenMP team itself (``tests/test_torch_team.py``): the torch bridge's first
    call hands the engine's parallel calls to torch's team for the rest of the
    process (:mod:`tridiag_numba._omp_team`), which would otherwise change the
    kernels of every later test in the session."""
    from tridiag_numba import _omp_team

    saved = _omp_team._runtime
    _omp_team.use_openmp_runtime(None)
    yield
    _omp_team._runtime = saved
