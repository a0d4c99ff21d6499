"""Symmetric tridiagonal test matrices with known spectra.

Every generator returns the diagonal ``d`` (shape ``(n,)``) and the
off-diagonal ``e`` (shape ``(n-1,)``) as float64 arrays, the same
``(d, e)`` pair that :func:`tridiag_numba.eigh_tridiagonal` and
:func:`scipy.linalg.eigh_tridiagonal` take. Where the spectrum has a closed
form a companion ``*_eigenvalues`` function returns it in ascending order.

The families are the classic ones from the eigensolver literature (LAPACK's
test suite ``dchkst``, Parlett, *The Symmetric Eigenvalue Problem*; Dhillon,
Parlett and Voemel, LAWN 163 / LAWN 172):

=====================  =====================================================
generator              what it stresses
=====================  =====================================================
:func:`toeplitz_121`   smooth spectrum, eigenvalues crowd at both ends
:func:`wilkinson`      pairs of eigenvalues agreeing to many digits
:func:`glued_wilkinson` tight clusters (orthogonality of inverse iteration)
:func:`clement`        zero diagonal (zero Sturm pivots), integer spectrum
:func:`legendre_jacobi` Gauss-Legendre nodes, clustered near +-1
:func:`hermite_jacobi` Gauss-Hermite nodes, growing norm
:func:`laguerre_jacobi` Gauss-Laguerre nodes, graded spectrum
:func:`split_matrix`   exact zeros in ``e``: exactly repeated eigenvalues
:func:`random_batch`   batches of random matrices in any float dtype
=====================  =====================================================

Scaling a matrix (for over/underflow tests) is left to the caller:
``(s * d, s * e)`` has eigenvalues ``s * w``.

This module is pure numpy; it never imports numba.
"""

import numpy as np

__all__ = [
    "clement",
    "clement_eigenvalues",
    "dense",
    "glued_wilkinson",
    "hermite_jacobi",
    "laguerre_jacobi",
    "legendre_jacobi",
    "random_batch",
    "split_matrix",
    "toeplitz_121",
    "toeplitz_121_eigenvalues",
    "wilkinson",
]


def _check_n(n, name="n", minimum=1):
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(n).__name__}")
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}")
    return int(n)


def toeplitz_121(n):
    """The second-difference matrix ``tridiag(-1, 2, -1)``.

    Parameters
    ----------
    n : int
        Matrix order, ``n >= 1``.

    Returns
    -------
    d : ndarray, shape (n,)
        All entries 2.
    e : ndarray, shape (n-1,)
        All entries -1.

    See Also
    --------
    toeplitz_121_eigenvalues : its exact spectrum.

    Examples
    --------
    >>> from tridiag_numba.matrices import toeplitz_121
    >>> d, e = toeplitz_121(4)
    >>> d
    array([2., 2., 2., 2.])
    >>> e
    array([-1., -1., -1.])
    """
    n = _check_n(n)
    return np.full(n, 2.0), np.full(n - 1, -1.0)


def toeplitz_121_eigenvalues(n):
    """Exact eigenvalues of :func:`toeplitz_121` ``(n)``, ascending.

    ``lambda_j = 2 - 2 cos(j pi / (n + 1))`` for ``j = 1, ..., n``.

    Parameters
    ----------
    n : int
        Matrix order, ``n >= 1``.

    Returns
    -------
    w : ndarray, shape (n,)
        Eigenvalues in ascending order, all in ``(0, 4)``.

    Examples
    --------
    >>> from tridiag_numba.matrices import toeplitz_121_eigenvalues
    >>> toeplitz_121_eigenvalues(3)  # 2 - sqrt(2), 2, 2 + sqrt(2)
    array([0.58578644, 2.        , 3.41421356])
    """
    n = _check_n(n)
    j = np.arange(1, n + 1)
    # 4 sin^2(x/2) == 2 - 2 cos(x), without cancellation for small j.
    return 4.0 * np.sin(j * np.pi / (2 * (n + 1))) ** 2


def wilkinson(n):
    """Wilkinson's matrix ``W_n^+``: ``d_i = |i - (n-1)/2|``, ``e_i = 1``.

    For odd ``n`` (the classic case, e.g. ``W_21^+``) the diagonal is the
    integers ``m, m-1, ..., 1, 0, 1, ..., m`` with ``m = (n-1)/2``, and the
    largest eigenvalues come in nearly equal pairs (for ``W_21^+`` the top
    two, about 10.746, differ by about 7e-14).

    Parameters
    ----------
    n : int
        Matrix order, ``n >= 1`` (even ``n`` gives half-integer diagonals).

    Returns
    -------
    d : ndarray, shape (n,)
    e : ndarray, shape (n-1,)
        All entries 1.

    Examples
    --------
    >>> from tridiag_numba.matrices import wilkinson
    >>> d, e = wilkinson(5)
    >>> d
    array([2., 1., 0., 1., 2.])
    >>> e
    array([1., 1., 1., 1.])
    """
    n = _check_n(n)
    return np.abs(np.arange(n) - (n - 1) / 2.0), np.ones(n - 1)


def glued_wilkinson(n_blocks, block=21, glue=1e-12):
    """Copies of ``W_block^+`` glued together by small off-diagonals.

    The matrix of Dhillon, Parlett and Voemel (LAWN 163, "glued Wilkinson"):
    ``n_blocks`` copies of :func:`wilkinson` ``(block)`` on the diagonal,
    consecutive blocks joined by an off-diagonal entry ``glue``. Every
    eigenvalue of ``W_block^+`` becomes a cluster of ``n_blocks`` eigenvalues
    of width about ``glue``: the hard case for orthogonality of inverse
    iteration.

    Parameters
    ----------
    n_blocks : int
        Number of copies, ``>= 1``.
    block : int, optional
        Order of each copy (default 21).
    glue : float, optional
        Off-diagonal entry joining consecutive blocks (default 1e-12).

    Returns
    -------
    d : ndarray, shape (n_blocks * block,)
    e : ndarray, shape (n_blocks * block - 1,)

    Examples
    --------
    >>> import numpy as np
    >>> from tridiag_numba.matrices import glued_wilkinson
    >>> d, e = glued_wilkinson(2, block=3, glue=1e-12)
    >>> d
    array([1., 0., 1., 1., 0., 1.])
    >>> e
    array([1.e+00, 1.e+00, 1.e-12, 1.e+00, 1.e+00])
    """
    n_blocks = _check_n(n_blocks, "n_blocks")
    block = _check_n(block, "block")
    db, eb = wilkinson(block)
    d = np.tile(db, n_blocks)
    e = np.full(n_blocks * block - 1, float(glue))
    for b in range(n_blocks):
        e[b * block : b * block + block - 1] = eb
    return d, e


def clement(n):
    """Clement's (Kac's) matrix: ``d = 0``, ``e_i = sqrt(i (n - i))``.

    Parameters
    ----------
    n : int
        Matrix order, ``n >= 1``.

    Returns
    -------
    d : ndarray, shape (n,)
        All zeros: every Sturm sequence at ``x = 0`` meets a zero pivot.
    e : ndarray, shape (n-1,)
        ``e[i-1] = sqrt(i * (n - i))`` for ``i = 1, ..., n-1``.

    See Also
    --------
    clement_eigenvalues : its exact (integer) spectrum.

    Examples
    --------
    >>> from tridiag_numba.matrices import clement
    >>> d, e = clement(3)
    >>> d
    array([0., 0., 0.])
    >>> e**2
    array([2., 2.])
    """
    n = _check_n(n)
    i = np.arange(1, n, dtype=np.float64)
    return np.zeros(n), np.sqrt(i * (n - i))


def clement_eigenvalues(n):
    """Exact eigenvalues of :func:`clement` ``(n)``: ``-(n-1), -(n-3), ..., n-1``.

    Parameters
    ----------
    n : int
        Matrix order, ``n >= 1``.

    Returns
    -------
    w : ndarray, shape (n,)
        Ascending; integers stored as float64.

    Examples
    --------
    >>> from tridiag_numba.matrices import clement_eigenvalues
    >>> clement_eigenvalues(4)
    array([-3., -1.,  1.,  3.])
    """
    n = _check_n(n)
    return np.arange(-(n - 1), n, 2, dtype=np.float64)


def legendre_jacobi(n):
    """Jacobi matrix of the Legendre polynomials on ``[-1, 1]``.

    The symmetric three-term recurrence of the orthonormal Legendre
    polynomials: ``d = 0``, ``e_k = k / sqrt(4 k^2 - 1)`` for
    ``k = 1, ..., n-1``. Its eigenvalues are the Gauss-Legendre nodes, the
    roots of ``P_n`` (Golub and Welsch, 1969), as returned by
    :func:`scipy.special.roots_legendre`.

    Parameters
    ----------
    n : int
        Matrix order (number of nodes), ``n >= 1``.

    Returns
    -------
    d : ndarray, shape (n,)
    e : ndarray, shape (n-1,)

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import roots_legendre
    >>> from tridiag_numba.matrices import dense, legendre_jacobi
    >>> d, e = legendre_jacobi(5)
    >>> bool(np.allclose(np.linalg.eigvalsh(dense(d, e)), roots_legendre(5)[0]))
    True
    """
    n = _check_n(n)
    k = np.arange(1, n, dtype=np.float64)
    return np.zeros(n), k / np.sqrt(4.0 * k * k - 1.0)


def hermite_jacobi(n, kind="physicists"):
    """Jacobi matrix of the Hermite polynomials.

    ``d = 0`` and, for ``k = 1, ..., n-1``:

    * ``kind="physicists"`` (``H_n``, weight ``exp(-x^2)``):
      ``e_k = sqrt(k / 2)``; eigenvalues are
      :func:`scipy.special.roots_hermite` nodes;
    * ``kind="probabilists"`` (``He_n``, weight ``exp(-x^2/2)``):
      ``e_k = sqrt(k)``; eigenvalues are
      :func:`scipy.special.roots_hermitenorm` nodes.

    The largest node grows like ``sqrt(2 n)`` (physicists').

    Parameters
    ----------
    n : int
        Matrix order (number of nodes), ``n >= 1``.
    kind : {"physicists", "probabilists"}, optional
        Which normalisation (default ``"physicists"``, matching
        ``roots_hermite``).

    Returns
    -------
    d : ndarray, shape (n,)
    e : ndarray, shape (n-1,)

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import roots_hermite
    >>> from tridiag_numba.matrices import dense, hermite_jacobi
    >>> d, e = hermite_jacobi(6)
    >>> bool(np.allclose(np.linalg.eigvalsh(dense(d, e)), roots_hermite(6)[0]))
    True
    """
    n = _check_n(n)
    if kind not in ("physicists", "probabilists"):
        raise ValueError(
            f"kind must be one of ('physicists', 'probabilists'), got {kind!r}"
        )
    k = np.arange(1, n, dtype=np.float64)
    return np.zeros(n), np.sqrt(k / 2.0 if kind == "physicists" else k)


def laguerre_jacobi(n, alpha=0.0):
    """Jacobi matrix of the generalised Laguerre polynomials ``L_n^(alpha)``.

    ``d_k = 2 k + 1 + alpha`` for ``k = 0, ..., n-1`` and
    ``e_k = sqrt(k (k + alpha))`` for ``k = 1, ..., n-1``; weight
    ``x^alpha exp(-x)`` on ``[0, inf)``. Its eigenvalues are the
    Gauss-Laguerre nodes (:func:`scipy.special.roots_laguerre` for
    ``alpha = 0``, :func:`scipy.special.roots_genlaguerre` otherwise): a
    graded spectrum from ``O(1/n)`` up to about ``4 n``.

    Parameters
    ----------
    n : int
        Matrix order (number of nodes), ``n >= 1``.
    alpha : float, optional
        ``alpha > -1`` (default 0).

    Returns
    -------
    d : ndarray, shape (n,)
    e : ndarray, shape (n-1,)

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.special import roots_laguerre
    >>> from tridiag_numba.matrices import dense, laguerre_jacobi
    >>> d, e = laguerre_jacobi(4)
    >>> d
    array([1., 3., 5., 7.])
    >>> bool(np.allclose(np.linalg.eigvalsh(dense(d, e)), roots_laguerre(4)[0]))
    True
    """
    n = _check_n(n)
    alpha = float(alpha)
    if not alpha > -1.0:
        raise ValueError(f"alpha must be > -1, got {alpha}")
    k = np.arange(n, dtype=np.float64)
    return 2.0 * k + 1.0 + alpha, np.sqrt(k[1:] * (k[1:] + alpha))


def split_matrix(n_blocks, block=None):
    """Copies of one tridiagonal block joined by exact zeros in ``e``.

    The matrix is the direct sum of ``n_blocks`` identical blocks, so every
    eigenvalue of the block is an eigenvalue of the matrix with multiplicity
    exactly ``n_blocks`` -- in floating point too, as the blocks are bitwise
    identical. A solver must split at the zeros (LAPACK ``dstebz``) and
    return an orthonormal basis of each eigenspace.

    Parameters
    ----------
    n_blocks : int
        Number of copies, ``>= 1``.
    block : int or tuple of ndarray, optional
        An int ``m`` uses :func:`clement` ``(m)`` (integer eigenvalues
        ``-(m-1), ..., m-1``, so the spectrum of the whole matrix is
        ``numpy.repeat(clement_eigenvalues(m), n_blocks)``); a pair
        ``(d_block, e_block)`` uses that block. Default ``clement(5)``.

    Returns
    -------
    d : ndarray, shape (n_blocks * m,)
    e : ndarray, shape (n_blocks * m - 1,)
        Zero at indices ``m-1, 2m-1, ...`` (between blocks).

    Examples
    --------
    >>> from tridiag_numba.matrices import split_matrix, toeplitz_121
    >>> d, e = split_matrix(3, block=toeplitz_121(2))
    >>> d
    array([2., 2., 2., 2., 2., 2.])
    >>> e
    array([-1.,  0., -1.,  0., -1.])
    """
    n_blocks = _check_n(n_blocks, "n_blocks")
    if block is None:
        block = 5
    if isinstance(block, (int, np.integer)) and not isinstance(block, bool):
        db, eb = clement(block)
    else:
        db, eb = (np.asarray(a, dtype=np.float64) for a in block)
        if db.ndim != 1 or eb.shape != (db.size - 1,) or db.size == 0:
            raise ValueError(
                "block must be an int or a pair (d_block, e_block) of shapes "
                f"(m,) and (m-1,) with m >= 1, got shapes {db.shape} and {eb.shape}"
            )
    m = db.size
    d = np.tile(db, n_blocks)
    e = np.zeros(n_blocks * m - 1)
    for b in range(n_blocks):
        e[b * m : b * m + m - 1] = eb
    return d, e


def random_batch(shape, n, dtype=np.float64, seed=None):
    """A batch of random symmetric tridiagonal matrices.

    Entries of ``d`` and ``e`` are independent standard normal, drawn in
    float64 with :func:`numpy.random.default_rng` ``(seed)`` and then cast.

    Parameters
    ----------
    shape : int or tuple of int
        Batch shape (``()`` for a single matrix).
    n : int
        Matrix order, ``n >= 1``.
    dtype : dtype, optional
        Floating dtype of the result (default float64).
    seed : None, int or numpy.random.Generator, optional
        Seed for reproducibility.

    Returns
    -------
    d : ndarray, shape (*shape, n)
    e : ndarray, shape (*shape, n-1)

    Examples
    --------
    >>> import numpy as np
    >>> from tridiag_numba.matrices import random_batch
    >>> d, e = random_batch((2, 3), 5, dtype=np.float32, seed=0)
    >>> d.shape, e.shape, d.dtype
    ((2, 3, 5), (2, 3, 4), dtype('float32'))
    """
    n = _check_n(n)
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating dtype, got {dtype}")
    rng = np.random.default_rng(seed)
    d = rng.standard_normal(shape + (n,)).astype(dtype)
    e = rng.standard_normal(shape + (n - 1,)).astype(dtype)
    return d, e


def dense(d, e, dtype=None):
    """The dense symmetric matrix (or batch of matrices) with diagonal ``d``
    and off-diagonal ``e``.

    Parameters
    ----------
    d : array_like, shape (..., n)
    e : array_like, shape (..., n-1)
        Leading (batch) dimensions broadcast against those of ``d``.
    dtype : dtype, optional
        Dtype of the result (default: ``numpy.result_type(d, e)``). Pass
        ``numpy.float64`` to build a float64 reference matrix from float32
        inputs; the conversion is exact.

    Returns
    -------
    a : ndarray, shape (..., n, n)

    Examples
    --------
    >>> from tridiag_numba.matrices import dense
    >>> dense([1.0, 2.0], [3.0])
    array([[1., 3.],
           [3., 2.]])
    """
    d = np.asarray(d)
    e = np.asarray(e)
    if dtype is None:
        dtype = np.result_type(d, e)
    n = d.shape[-1]
    if e.shape[-1] != n - 1:
        raise ValueError(
            f"e must have shape (..., {n - 1}) for d of shape (..., {n}), "
            f"got {e.shape}"
        )
    batch = np.broadcast_shapes(d.shape[:-1], e.shape[:-1])
    a = np.zeros(batch + (n, n), dtype=dtype)
    i = np.arange(n)
    a[..., i, i] = d
    a[..., i[:-1], i[1:]] = e
    a[..., i[1:], i[:-1]] = e
    return a
