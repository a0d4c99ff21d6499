"""The numpy API contract: shapes, broadcasting, select forms, dtype rules,
validation errors, non-finite handling and input layouts.

Numerical checks use the bounds of ``conftest`` (|w - w_ref| <= 4 n eps ||T||,
residual <= 10 n eps ||T||, |V^T V - I| <= 10 n eps); layout and
read-only variants must give results identical (bitwise) to the C-contiguous
call, since the API normalises them to the same kernel input.
"""

import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg

import tridiag_numba as tn
from conftest import (
    C_EIG,
    assert_eigenvalues,
    assert_eigenvectors,
    assert_sign_convention,
    assert_vectors_match,
    eps_of,
    min_gaps,
    ref_eigh,
    tnorm,
)
from tridiag_numba.matrices import clement, random_batch

N = 6


def names(arg):
    """pytest.raises(match=...) pattern: the message names ``arg`` as a word."""
    return rf"(?<![A-Za-z0-9_]){re.escape(arg)}(?![A-Za-z0-9_])"


def _batch(shape, n=N, dtype=np.float64, seed=0):
    return random_batch(shape, n, dtype=dtype, seed=seed)


# --- public surface ----------------------------------------------------------------
def test_public_names():
    for name in ("eigh_tridiagonal", "eigvalsh_tridiagonal", "kth_eigenvalue",
                 "kth_eigenpair"):
        assert name in tn.__all__
        assert callable(getattr(tn, name))
        assert getattr(tn, name).__doc__


def test_import_does_not_import_torch():
    code = "import sys, tridiag_numba; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


# --- batch shapes ------------------------------------------------------------------
BATCHES = [(), (0,), (3,), (2, 3)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", BATCHES, ids=str)
def test_batch_shapes(batch, dtype):
    """Every function on batch shapes (), (0,), (3,), (2, 3): output shapes
    and dtypes, and per-matrix agreement with scipy."""
    d, e = _batch(batch, dtype=dtype)
    w = tn.eigvalsh_tridiagonal(d, e)
    assert w.shape == batch + (N,) and w.dtype == dtype
    w2, v = tn.eigh_tridiagonal(d, e)
    assert w2.shape == batch + (N,) and v.shape == batch + (N, N)
    assert v.dtype == dtype
    wi, vi = tn.eigh_tridiagonal(d, e, select="i", select_range=(1, 3))
    assert wi.shape == batch + (3,) and vi.shape == batch + (N, 3)
    wk = tn.kth_eigenvalue(d, e, 2)
    assert wk.shape == batch and wk.dtype == dtype
    wp, vp = tn.kth_eigenpair(d, e, 2)
    assert wp.shape == batch and vp.shape == batch + (N,) and vp.dtype == dtype
    if 0 in batch:
        return
    w_ref = ref_eigh(d, e, eigvals_only=True)
    for got in (w, w2):
        assert_eigenvalues(got, w_ref, d, e, dtype)
    assert_eigenvalues(wi, w_ref[..., 1:4], d, e, dtype)
    assert_eigenvalues(wk[..., None], w_ref[..., 2:3], d, e, dtype)
    assert_eigenvalues(wp[..., None], w_ref[..., 2:3], d, e, dtype)
    assert_eigenvectors(d, e, w2, v, dtype)
    assert_eigenvectors(d, e, wi, vi, dtype)
    assert_eigenvectors(d, e, wp[..., None], vp[..., :, None], dtype)


def test_zero_size_batch_value_range():
    """select='v' on an empty batch: m = max count over no matrices = 0."""
    d, e = _batch((0,))
    w, v = tn.eigh_tridiagonal(d, e, select="v", select_range=(-1.0, 1.0))
    assert w.shape == (0, 0) and v.shape == (0, N, 0)
    d, e = _batch((2, 0))
    assert tn.kth_eigenvalue(d, e, -1).shape == (2, 0)


def test_batch_equals_single_calls():
    """Each matrix of a batch gets exactly the answer it gets alone (within
    the eigenvalue bound; the batch must not couple matrices)."""
    d, e = _batch((5,), n=9, seed=3)
    d[2] *= 1e6  # very different norms in one batch
    e[4] *= 1e-6
    w, v = tn.eigh_tridiagonal(d, e)
    for i in range(5):
        wi, vi = tn.eigh_tridiagonal(d[i], e[i])
        assert_eigenvalues(w[i], wi, d[i], e[i], np.float64)
        assert_vectors_match(v[i], vi, min_gaps(wi), d[i], e[i], np.float64)


# --- broadcasting ------------------------------------------------------------------
def test_broadcast_d_e():
    """d (2, 1, n) and e (3, n-1) broadcast to the batch (2, 3)."""
    d, _ = _batch((2, 1), seed=1)
    _, e = _batch((3,), seed=2)
    w, v = tn.eigh_tridiagonal(d, e)
    assert w.shape == (2, 3, N) and v.shape == (2, 3, N, N)
    db = np.broadcast_to(d, (2, 3, N))
    eb = np.broadcast_to(e, (2, 3, N - 1))
    assert_eigenvalues(w, ref_eigh(db, eb, eigvals_only=True), db, eb, np.float64)
    assert_eigenvectors(db, eb, w, v, np.float64)
    wk = tn.kth_eigenvalue(d, e, 0)
    assert wk.shape == (2, 3)


def test_broadcast_single_matrix_against_batched_e():
    d, _ = _batch(())
    _, e = _batch((4,), seed=5)
    w = tn.eigvalsh_tridiagonal(d, e)
    db = np.broadcast_to(d, (4, N))
    assert w.shape == (4, N)
    assert_eigenvalues(w, ref_eigh(db, e, eigvals_only=True), db, e, np.float64)


def test_broadcast_k():
    """k (2, 1) against a batch (3,) gives (2, 3); k (N,) against one matrix
    gives all eigenvalues."""
    d, e = _batch((3,), seed=7)
    k = np.array([[0], [-1]])
    w, v = tn.kth_eigenpair(d, e, k)
    assert w.shape == (2, 3) and v.shape == (2, 3, N)
    w_ref = ref_eigh(d, e, eigvals_only=True)
    want = np.stack([w_ref[:, 0], w_ref[:, -1]])
    db = np.broadcast_to(d, (2, 3, N))
    eb = np.broadcast_to(e, (2, 3, N - 1))
    assert_eigenvalues(w[..., None], want[..., None], db, eb, np.float64)
    assert_eigenvectors(db, eb, w[..., None], v[..., None], np.float64)
    w_all = tn.kth_eigenvalue(d[0], e[0], np.arange(N))
    assert_eigenvalues(w_all, w_ref[0], d[0], e[0], np.float64)


def test_negative_k():
    """k = -1 is the largest, k = -n the smallest; mixed signs in one array."""
    d, e = _batch((), seed=11)
    w_ref = ref_eigh(d, e, eigvals_only=True)
    k = np.array([-1, -N, 0, N - 1, -2])
    w = tn.kth_eigenvalue(d, e, k)
    assert_eigenvalues(w, w_ref[k], d, e, np.float64)
    assert_eigenvalues(np.atleast_1d(tn.kth_eigenvalue(d, e, -1)), w_ref[-1:], d, e,
                       np.float64)
    wp, vp = tn.kth_eigenpair(d, e, -N)
    assert_eigenvalues(np.atleast_1d(wp), w_ref[:1], d, e, np.float64)


def test_python_int_k_gives_scalar_batch():
    d, e = _batch(())
    w = tn.kth_eigenvalue(d, e, 0)
    assert np.shape(w) == ()
    w, v = tn.kth_eigenpair(d, e, np.int32(1))
    assert np.shape(w) == () and v.shape == (N,)


# --- select forms ------------------------------------------------------------------
# scipy's integer codes (scipy.linalg._decomp._conv_dict): 0 all, 1 value, 2 index
SELECT_FORMS = [
    ("a", None, ["a", "all", 0, "A", "ALL", np.int64(0)]),
    ("i", (1, 4), ["i", "index", 2, "I", "Index"]),
    ("v", (-0.5, 1.0), ["v", "value", 1, "V"]),
]


@pytest.mark.parametrize("short,rng,forms", SELECT_FORMS, ids=["a", "i", "v"])
def test_select_long_forms(short, rng, forms):
    """Long, integer (scipy's codes: 1 = 'v', 2 = 'i') and upper-case select
    forms (scipy lower-cases strings) give identical results to the short
    form."""
    d, e = _batch((2,), seed=13)
    w0, v0 = tn.eigh_tridiagonal(d, e, select=short, select_range=rng)
    # Eigenvalues only may take another algorithm (sterf instead of stevd
    # for select='a'): compare like with like.
    wv0 = tn.eigvalsh_tridiagonal(d, e, select=short, select_range=rng)
    for form in forms:
        w, v = tn.eigh_tridiagonal(d, e, select=form, select_range=rng)
        np.testing.assert_array_equal(w, w0, err_msg=f"select={form!r}")
        np.testing.assert_array_equal(v, v0, err_msg=f"select={form!r}")
        w = tn.eigvalsh_tridiagonal(d, e, select=form, select_range=rng)
        np.testing.assert_array_equal(w, wv0, err_msg=f"select={form!r}")


def test_eigvals_only():
    d, e = _batch((3,))
    w = tn.eigh_tridiagonal(d, e, eigvals_only=True)
    assert isinstance(w, np.ndarray)
    np.testing.assert_array_equal(w, tn.eigvalsh_tridiagonal(d, e))
    w = tn.eigh_tridiagonal(d, e, eigvals_only=True, select="i", select_range=(2, 2))
    assert w.shape == (3, 1)


@pytest.mark.parametrize("driver", ["auto", "stemr", "stebz", "sterf", "stev",
                                    "stevd"])
def test_lapack_driver_accepted(driver):
    """Every driver name scipy 1.17 accepts is accepted (and ignored)."""
    d, e = _batch(())
    w = tn.eigvalsh_tridiagonal(d, e, lapack_driver=driver)
    assert_eigenvalues(w, ref_eigh(d, e, eigvals_only=True), d, e, np.float64)


def test_value_range_batch_nan_padding():
    """select='v' on a batch: m = the largest count; each row holds its
    eigenvalues ascending then NaN; vectors of padded columns are NaN."""
    dc, ec = clement(5)  # eigenvalues -4, -2, 0, 2, 4
    d = np.stack([dc, dc + 10.0, 0.5 * dc])
    e = np.stack([ec, ec, 0.5 * ec])
    lo, hi = -1.5, 3.5  # counts: {0, 2} -> 2; none -> 0; {-1, 0, 1, 2} -> 4
    w, v = tn.eigh_tridiagonal(d, e, select="v", select_range=(lo, hi))
    assert w.shape == (3, 4) and v.shape == (3, 5, 4)
    counts = [2, 0, 4]
    exact = [np.array([0.0, 2.0]), np.array([]), np.array([-1.0, 0.0, 1.0, 2.0])]
    for i, c in enumerate(counts):
        assert np.all(np.isnan(w[i, c:])) and np.all(np.isnan(v[i, :, c:]))
        assert_eigenvalues(w[i, :c], exact[i], d[i], e[i], np.float64)
        assert_eigenvectors(d[i], e[i], w[i, :c], v[i, :, :c], np.float64)
    wo = tn.eigvalsh_tridiagonal(d, e, select="v", select_range=(lo, hi))
    # Eigenvalues only may take another algorithm ('auto': sterf for wide
    # ranges): same padding, values within the bound.
    np.testing.assert_array_equal(np.isnan(wo), np.isnan(w))
    for i, c in enumerate(counts):
        assert_eigenvalues(wo[i, :c], exact[i], d[i], e[i], np.float64)


# --- same as scipy on single matrices ---------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "select,rng",
    [("a", None), ("i", (0, 0)), ("i", (2, 7)), ("i", (0, 9)), ("v", (-1.0, 1.0)),
     ("v", (-100.0, 100.0)), ("v", (50.0, 60.0))],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_as_scipy(select, rng, dtype, seed):
    """Same output types, shapes and dtypes as scipy.linalg.eigh_tridiagonal
    on one matrix (scipy run in the input dtype), eigenvalues within the
    bound, and for select='i' the same vectors as scipy's dstein where
    isolated."""
    d, e = random_batch((), 10, dtype=dtype, seed=seed)
    w_s, v_s = scipy.linalg.eigh_tridiagonal(d, e, select=select, select_range=rng)
    w, v = tn.eigh_tridiagonal(d, e, select=select, select_range=rng)
    assert type(w) is type(w_s) and w.shape == w_s.shape and w.dtype == w_s.dtype
    assert v.shape == v_s.shape and v.dtype == v_s.dtype
    w_ref, _ = ref_eigh(d, e, select=select, select_range=rng)
    assert w.shape == w_ref.shape, "count differs from scipy's (float64) count"
    assert_eigenvalues(w, w_ref, d, e, dtype)
    assert_eigenvectors(d, e, w, v, dtype)
    assert_sign_convention(v, dtype)
    if select == "i":
        w_all = ref_eigh(d, e, eigvals_only=True)
        _, v_st = scipy.linalg.eigh_tridiagonal(*(a.astype(np.float64) for a in (d, e)),
                                                select="i", select_range=rng)
        assert_vectors_match(v, v_st, min_gaps(w_all)[rng[0] : rng[1] + 1], d, e, dtype)
    w_only = tn.eigvalsh_tridiagonal(d, e, select=select, select_range=rng)
    assert w_only.shape == w_s.shape and w_only.dtype == w_s.dtype


# --- n = 1 -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_n_equals_one(dtype):
    d = np.array([3.0], dtype=dtype)
    e = np.array([], dtype=dtype)
    w, v = tn.eigh_tridiagonal(d, e)
    np.testing.assert_array_equal(w, [3.0])
    np.testing.assert_array_equal(v, [[1.0]])
    assert w.dtype == v.dtype == dtype
    w, v = tn.eigh_tridiagonal(d, e, select="i", select_range=(0, 0))
    np.testing.assert_array_equal(w, [3.0])
    w, v = tn.eigh_tridiagonal(d, e, select="v", select_range=(2.0, 3.0))
    np.testing.assert_array_equal(w, [3.0])  # half-open (2, 3] contains 3
    w, v = tn.eigh_tridiagonal(d, e, select="v", select_range=(3.0, 4.0))
    assert w.shape == (0,) and v.shape == (1, 0)
    for k in (0, -1):
        assert tn.kth_eigenvalue(d, e, k) == 3.0
        wk, vk = tn.kth_eigenpair(d, e, k)
        assert wk == 3.0 and vk.shape == (1,) and vk[0] == 1.0
    # a batch of 1x1 matrices, negative entries (vector sign stays +1)
    db = np.array([[-2.0], [5.0], [0.0]], dtype=dtype)
    eb = np.zeros((3, 0), dtype=dtype)
    w, v = tn.eigh_tridiagonal(db, eb)
    np.testing.assert_array_equal(w, db)
    np.testing.assert_array_equal(v, np.ones((3, 1, 1)))


# --- dtype rules -------------------------------------------------------------------------
# scipy.linalg's rule: the result type of d, e and float32, longdouble computed in float64.
@pytest.mark.parametrize(
    "dd,de,want",
    [
        (np.float64, np.float64, np.float64),
        (np.float32, np.float32, np.float32),
        (np.float32, np.float64, np.float64),
        (np.float64, np.float32, np.float64),
        (np.int64, np.int64, np.float64),
        (np.int32, np.int32, np.float64),
        (np.uint64, np.uint64, np.float64),
        (np.int8, np.uint16, np.float32),
        (np.int16, np.int16, np.float32),
        (np.bool_, np.bool_, np.float32),
        (np.float16, np.float16, np.float32),
        (np.float16, np.float64, np.float64),
        (np.float32, np.int64, np.float64),
        (np.int64, np.float32, np.float64),
        (np.longdouble, np.longdouble, np.float64),
        (np.dtype(">f8"), np.dtype(">f8"), np.float64),
        (np.dtype(">f4"), np.float32, np.float32),
    ],
    ids=lambda t: np.dtype(t).str,
)
def test_dtype_rules(dd, de, want):
    """Every function computes in (and returns) the dtype scipy's eigh_tridiagonal returns."""
    d = np.array([2, 1, 0, 1], dtype=dd)
    e = np.array([1, 1, 0], dtype=de)
    d_in, e_in = d.copy(), e.copy()
    w, v = tn.eigh_tridiagonal(d, e)
    assert w.dtype == want and v.dtype == want
    assert w.dtype == scipy.linalg.eigh_tridiagonal(d, e)[0].dtype
    assert tn.eigvalsh_tridiagonal(d, e).dtype == want
    assert tn.eigh_tridiagonal(d, e, select="i", select_range=(1, 2))[1].dtype == want
    assert tn.kth_eigenvalue(d, e, 1).dtype == want
    wk, vk = tn.kth_eigenpair(d, e, 1)
    assert wk.dtype == want and vk.dtype == want
    np.testing.assert_array_equal(d, d_in)  # inputs unmodified (and not byte-swapped in place)
    np.testing.assert_array_equal(e, e_in)
    d64, e64 = d.astype(np.float64), e.astype(np.float64)
    assert_eigenvalues(w, ref_eigh(d64, e64, eigvals_only=True), d64, e64, want)
    # The same values as from the converted arrays (the conversion is the whole effect).
    np.testing.assert_array_equal(tn.kth_eigenvalue(d, e, 1), tn.kth_eigenvalue(d.astype(want), e.astype(want), 1))


@pytest.mark.parametrize("order", [">", "<"])
@pytest.mark.parametrize("dtype", ["f4", "f8"])
def test_byte_order_batch(order, dtype):
    """Non-native byte order (arrays read from files) on every path, batched."""
    rng = np.random.default_rng(3)
    d = rng.standard_normal((40, 20)).astype(order + dtype)
    e = rng.standard_normal((40, 19)).astype(order + dtype)
    native = np.dtype(dtype)
    dn, en = d.astype(native), e.astype(native)
    np.testing.assert_array_equal(tn.eigvalsh_tridiagonal(d, e), tn.eigvalsh_tridiagonal(dn, en))
    for got, want in zip(tn.eigh_tridiagonal(d, e), tn.eigh_tridiagonal(dn, en)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(tn.kth_eigenvalue(d, e, 3), tn.kth_eigenvalue(dn, en, 3))
    for got, want in zip(tn.kth_eigenpair(d, e, -1), tn.kth_eigenpair(dn, en, -1)):
        np.testing.assert_array_equal(got, want)
    assert d.dtype.str[0] in "<>" and (d.dtype.isnative == (order == "<" if np.little_endian else order == ">"))


def test_python_lists():
    w, v = tn.eigh_tridiagonal([2, 2, 2], [-1, -1])
    assert w.dtype == np.float64
    np.testing.assert_allclose(w, [2 - np.sqrt(2), 2, 2 + np.sqrt(2)], atol=1e-14)


# --- bad inputs ----------------------------------------------------------------------------
D5 = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
E4 = np.array([1.0, 1.0, 1.0, 1.0])

ALL_FUNCS = {
    "eigvalsh": lambda d, e, **kw: tn.eigvalsh_tridiagonal(d, e, **kw),
    "eigh": lambda d, e, **kw: tn.eigh_tridiagonal(d, e, **kw),
    "kth_eigenvalue": lambda d, e, **kw: tn.kth_eigenvalue(d, e, 0, **kw),
    "kth_eigenpair": lambda d, e, **kw: tn.kth_eigenpair(d, e, 0, **kw),
}

BAD_MATRICES = [
    # (id, d, e, exception, argument named)
    ("n=0", np.array([]), np.array([]), ValueError, "d"),
    ("d scalar", np.float64(1.0), np.array([]), ValueError, "d"),
    ("e too long", D5, np.ones(5), ValueError, "e"),
    ("e too short", D5, np.ones(3), ValueError, "e"),
    ("e scalar", D5, np.float64(1.0), ValueError, "e"),
    ("batch mismatch", np.ones((2, 5)), np.ones((3, 4)), ValueError, "e"),
    ("complex d", D5 + 0j, E4, TypeError, "d"),
    ("complex e", D5, E4 + 1j, TypeError, "e"),
    ("object d", D5.astype(object), E4, TypeError, "d"),
    ("object e", D5, E4.astype(object), TypeError, "e"),
    ("str d", np.array(["1", "2", "3", "4", "5"]), E4, TypeError, "d"),
    ("nan d", np.array([1.0, np.nan, 3.0, 4.0, 5.0]), E4, ValueError, "d"),
    ("inf d", np.array([1.0, 2.0, 3.0, 4.0, -np.inf]), E4, ValueError, "d"),
    ("nan e", D5, np.array([1.0, 1.0, np.nan, 1.0]), ValueError, "e"),
    ("inf e", D5, np.array([np.inf, 1.0, 1.0, 1.0]), ValueError, "e"),
]


@pytest.mark.parametrize("func", list(ALL_FUNCS))
@pytest.mark.parametrize("case_id,d,e,exc,arg", BAD_MATRICES,
                         ids=[b[0] for b in BAD_MATRICES])
def test_bad_matrix(func, case_id, d, e, exc, arg):
    with pytest.raises(exc, match=names(arg)) as err:
        ALL_FUNCS[func](d, e)
    if exc is TypeError:
        # scipy raises ValueError for object and string arrays: both are caught.
        assert isinstance(err.value, ValueError) and isinstance(err.value, tn.ArgumentTypeError)


def test_bad_matrix_in_batch_names_argument():
    """A NaN in one matrix of a batch is still rejected (check_finite=True)."""
    d, e = _batch((4,))
    e[3, 1] = np.nan
    with pytest.raises(ValueError, match=names("e")):
        tn.eigh_tridiagonal(d, e)


BAD_SELECT = [
    # (id, kwargs, exception, argument named)
    ("unknown select str", dict(select="x"), ValueError, "select"),
    ("unknown select int", dict(select=3), ValueError, "select"),
    ("select None", dict(select=None), ValueError, "select"),
    ("i past end", dict(select="i", select_range=(0, 5)), ValueError, "select_range"),
    ("i negative", dict(select="i", select_range=(-1, 2)), ValueError, "select_range"),
    ("i reversed", dict(select="i", select_range=(3, 1)), ValueError, "select_range"),
    # scipy raises ValueError: ArgumentTypeError is one (and a TypeError)
    ("i floats", dict(select="i", select_range=(0.5, 2.5)), tn.ArgumentTypeError,
     "select_range"),
    ("tol str", dict(tol="x"), tn.ArgumentTypeError, "tol"),
    ("i missing", dict(select="i"), ValueError, "select_range"),
    ("i three", dict(select="i", select_range=(0, 1, 2)), ValueError, "select_range"),
    ("v reversed", dict(select="v", select_range=(2.0, 1.0)), ValueError, "select_range"),
    ("v missing", dict(select="v"), ValueError, "select_range"),
    ("v nan", dict(select="v", select_range=(np.nan, 1.0)), np.linalg.LinAlgError, "select_range"),  # scipy's type
    ("v nan hi", dict(select="v", select_range=(1.0, np.nan)), np.linalg.LinAlgError, "select_range"),
    # (lo, lo] is empty; scipy's dstebz rejects vl >= vu with a ValueError too
    ("v empty", dict(select="v", select_range=(1.0, 1.0)), ValueError, "select_range"),
    ("driver", dict(lapack_driver="dsyevr"), ValueError, "lapack_driver"),
    ("driver type", dict(lapack_driver=1), (TypeError, ValueError), "lapack_driver"),
]


@pytest.mark.parametrize("func", ["eigvalsh", "eigh"])
@pytest.mark.parametrize("case_id,kwargs,exc,arg", BAD_SELECT,
                         ids=[b[0] for b in BAD_SELECT])
def test_bad_select(func, case_id, kwargs, exc, arg):
    with pytest.raises(exc, match=names(arg)):
        ALL_FUNCS[func](D5, E4, **kwargs)
    # Drop-in: where scipy rejects the argument too, its exception class catches
    # ours (a NaN range: LinAlgError, which scipy raises for LAPACK's failure on
    # it).  scipy ignores tol with select='a'; we reject it up front.
    scipy_func = {"eigvalsh": scipy.linalg.eigvalsh_tridiagonal, "eigh": scipy.linalg.eigh_tridiagonal}[func]
    try:
        scipy_func(D5, E4, **kwargs)
    except Exception as theirs:
        with pytest.raises(type(theirs)):
            ALL_FUNCS[func](D5, E4, **kwargs)


@pytest.mark.parametrize("func", ["kth_eigenvalue", "kth_eigenpair"])
@pytest.mark.parametrize(
    "k,exc",
    [(5, ValueError), (-6, ValueError), (np.array([0, 2, 7]), ValueError),
     (np.array([-9, 0]), ValueError), (1.5, (TypeError, ValueError)),
     (np.array([0.0, 1.0]), (TypeError, ValueError)),
     (np.zeros(3, dtype=int), ValueError)],  # (3,) vs batch (2,): no broadcast
    ids=["n", "-n-1", "array past end", "array below -n", "float", "float array",
         "shape"],
)
def test_bad_k(func, k, exc):
    d, e = _batch((2,), n=5)
    fn = getattr(tn, func)
    with pytest.raises(exc, match=names("k")):
        fn(d, e, k)


# --- check_finite=False --------------------------------------------------------------------
@pytest.mark.parametrize("func", ["eigvalsh", "eigh", "eigh_i", "eigh_v",
                                  "kth_eigenvalue", "kth_eigenpair"])
def test_check_finite_false_nan_isolated(func):
    """NaN in one matrix and inf in another: those matrices' outputs are all
    NaN; the clean matrices match their stand-alone results (eigenvalue
    bound) and are finite."""
    d, e = _batch((4,), n=7, seed=21)
    clean = (d.copy(), e.copy())
    d[1, 3] = np.nan
    e[2, 0] = np.inf
    call = {
        "eigvalsh": lambda d, e, **kw: (tn.eigvalsh_tridiagonal(d, e, **kw),),
        "eigh": lambda d, e, **kw: tn.eigh_tridiagonal(d, e, **kw),
        "eigh_i": lambda d, e, **kw: tn.eigh_tridiagonal(
            d, e, select="i", select_range=(2, 4), **kw),
        "eigh_v": lambda d, e, **kw: tn.eigh_tridiagonal(
            d, e, select="v", select_range=(-1.0, 1.0), **kw),
        "kth_eigenvalue": lambda d, e, **kw: (tn.kth_eigenvalue(d, e, 3, **kw),),
        "kth_eigenpair": lambda d, e, **kw: tn.kth_eigenpair(d, e, 3, **kw),
    }[func]
    out = call(d, e, check_finite=False)
    for bad in (1, 2):
        for o in out:
            assert np.all(np.isnan(o[bad])), f"matrix {bad} should be all NaN"
    for good in (0, 3):
        ref = call(clean[0][good], clean[1][good])
        w, w_ref = np.asarray(out[0][good]), np.asarray(ref[0])
        if func == "eigh_v":  # the batch may pad with NaN beyond this count
            assert np.all(np.isnan(w[w_ref.size:]))
            w = w[: w_ref.size]
        assert np.all(np.isfinite(w))
        assert_eigenvalues(np.atleast_1d(w), np.atleast_1d(w_ref), clean[0][good],
                           clean[1][good], np.float64)


def test_check_finite_false_single_matrix():
    d = np.array([1.0, np.nan, 2.0])
    e = np.array([0.5, 0.5])
    w, v = tn.eigh_tridiagonal(d, e, check_finite=False)
    assert w.shape == (3,) and np.all(np.isnan(w)) and np.all(np.isnan(v))
    assert np.isnan(tn.kth_eigenvalue(d, e, 0, check_finite=False))


# --- tol ----------------------------------------------------------------------------------
@pytest.mark.parametrize("tol", [1e-3, 1e-8])
def test_tol(tol):
    """tol is scipy's absolute tolerance: |w - w_ref| <= tol/2 + 4 n eps ||T||."""
    d, e = _batch((3,), n=20, seed=4)
    w_ref = ref_eigh(d, e, eigvals_only=True)
    bound = tol / 2 + C_EIG * 20 * eps_of(np.float64) * tnorm(d, e)[:, None]
    for w in (tn.eigvalsh_tridiagonal(d, e, tol=tol),
              tn.eigh_tridiagonal(d, e, tol=tol)[0],
              tn.kth_eigenvalue(d, e, np.arange(20)[:, None], tol=tol).T):
        assert np.all(np.abs(w - w_ref) <= bound)


# --- inputs untouched; layouts --------------------------------------------------------------
def _all_outputs(d, e, k=None):
    k = 1 if k is None else k
    out = {
        "eigvalsh": tn.eigvalsh_tridiagonal(d, e),
        "eigh": tn.eigh_tridiagonal(d, e),
        "eigh_i": tn.eigh_tridiagonal(d, e, select="i", select_range=(1, 3)),
        "eigh_v": tn.eigh_tridiagonal(d, e, select="v", select_range=(-0.5, 2.0)),
        "kth_eigenvalue": tn.kth_eigenvalue(d, e, k),
        "kth_eigenpair": tn.kth_eigenpair(d, e, k),
    }
    return {key: val if isinstance(val, tuple) else (val,) for key, val in out.items()}


def _assert_same_outputs(a, b, what):
    for key in a:
        for x, y in zip(a[key], b[key]):
            np.testing.assert_array_equal(x, y, err_msg=f"{what}: {key}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inputs_not_modified(dtype):
    d, e = _batch((3,), dtype=dtype, seed=8)
    k = np.array([0, -1, 2])
    d0, e0, k0 = d.copy(), e.copy(), k.copy()
    _all_outputs(d, e, k)
    tn.eigh_tridiagonal(d, e, check_finite=False, tol=1e-3)
    np.testing.assert_array_equal(d, d0)
    np.testing.assert_array_equal(e, e0)
    np.testing.assert_array_equal(k, k0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["readonly", "strided", "fortran", "reversed",
                                    "broadcast_view"])
def test_layouts_identical(layout, dtype):
    """Read-only, strided, Fortran-ordered, negative-stride and broadcast
    (zero-stride) inputs give bitwise the same results as C-contiguous
    copies of the same values."""
    d, e = _batch((3,), dtype=dtype, seed=9)
    k = np.array([0, 1, -1])
    if layout == "readonly":
        dv, ev, kv = d.copy(), e.copy(), k.copy()
        for a in (dv, ev, kv):
            a.setflags(write=False)
    elif layout == "strided":
        big_d = np.zeros((6, 2 * N), dtype=dtype)
        big_e = np.zeros((6, 3 * (N - 1)), dtype=dtype)
        big_k = np.zeros(6, dtype=int)
        big_d[::2, ::2], big_e[::2, ::3], big_k[::2] = d, e, k
        dv, ev, kv = big_d[::2, ::2], big_e[::2, ::3], big_k[::2]
    elif layout == "fortran":
        dv, ev, kv = np.asfortranarray(d), np.asfortranarray(e), k
        assert not dv.flags.c_contiguous
    elif layout == "reversed":
        dv, ev, kv = d[::-1, ::-1], e[::-1, ::-1], k[::-1]
    else:  # broadcast_view: zero strides along the batch
        dv, ev, kv = np.broadcast_to(d[:1], d.shape), np.broadcast_to(e[:1], e.shape), k
    want = _all_outputs(np.ascontiguousarray(dv), np.ascontiguousarray(ev),
                        np.ascontiguousarray(kv))
    got = _all_outputs(dv, ev, kv)
    _assert_same_outputs(want, got, layout)
