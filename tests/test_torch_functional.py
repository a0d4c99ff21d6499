"""torch_bridge: values, gradients (against dense torch.linalg.eigh), backends, shapes, errors."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch_bridge._ops as ops  # noqa: E402
from torch_bridge import (  # noqa: E402
    TridiagEigvalshFunction,
    TridiagEighFunction,
    TridiagPinvSolveFunction,
    tridiag_eigh,
    tridiag_eigvalsh,
)
from tridiag_numba._pinv import pinv_solve  # noqa: E402

# torch.func's forward-mode transforms import torch/_decomp/decompositions_for_jvp.py,
# which calls the deprecated torch.jit.script (torch 2.13): not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

F64 = torch.float64
BACKENDS = ["numba", "scipy"]


def dense(d, e):
    return torch.diag_embed(d) + torch.diag_embed(e, 1) + torch.diag_embed(e, -1)


def random_de(batch, n, dtype=F64, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(*batch, n, generator=g, dtype=F64).to(dtype)
    e = torch.randn(*batch, n - 1, generator=g, dtype=F64).to(dtype)
    return d.requires_grad_(requires_grad), e.requires_grad_(requires_grad)


def loss_weights(n, dtype=F64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g, dtype=F64).to(dtype), torch.randn(n, n, generator=g, dtype=F64).to(dtype)


def sign_invariant_loss(w, v, weights=None):
    """Uses w and v only through w, v**2 and v v^T (independent of the sign of v)."""
    a, m = loss_weights(v.shape[-1], v.dtype) if weights is None else weights
    outer = v[..., :, None] * v[..., None, :]
    return (w**2).sum() + (a * v**2).sum() + (m * outer).sum()


# ----------------------------------------------------------------------------- isolation
def test_import_tridiag_numba_does_not_import_torch():
    code = "import sys, tridiag_numba, tridiag_numba._pinv; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- forward
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch", [(), (0,), (3,), (2, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_forward_matches_dense(backend, batch, dtype):
    n = 7
    d, e = random_de(batch, n, dtype)
    ref = torch.linalg.eigvalsh(dense(d.double(), e.double()))
    tol = 1e-12 if dtype == F64 else 2e-5
    for k in (0, 3, -1):
        w = tridiag_eigvalsh(d, e, k, backend=backend)
        assert w.shape == batch and w.dtype == dtype
        torch.testing.assert_close(w.double(), ref[..., k], atol=tol, rtol=0)
        w2, v = tridiag_eigh(d, e, k, backend=backend)
        assert w2.shape == batch and v.shape == (*batch, n) and v.dtype == dtype
        torch.testing.assert_close(w2, w, atol=tol, rtol=0)
        residual = dense(d, e) @ v[..., None] - (w2[..., None] * v)[..., None]
        assert residual.abs().max().item() <= 10 * n * tol if v.numel() else True
        if v.numel():
            torch.testing.assert_close(torch.linalg.vector_norm(v, dim=-1), torch.ones(batch, dtype=dtype))


@pytest.mark.parametrize("backend", BACKENDS)
def test_several_k_and_tensor_k(backend):
    d, e = random_de((2, 3), 6)
    ref = torch.linalg.eigvalsh(dense(d, e))
    w = tridiag_eigvalsh(d, e, [0, 5, -2], backend=backend)
    assert w.shape == (2, 3, 3)
    torch.testing.assert_close(w, ref[..., [0, 5, 4]])
    w, v = tridiag_eigh(d, e, (1, 2), backend=backend)
    assert w.shape == (2, 3, 2) and v.shape == (2, 3, 6, 2)  # eigenvectors as columns
    # An integer tensor k broadcasts against the batch shape.
    k = torch.tensor([0, 2, -1])
    torch.testing.assert_close(tridiag_eigvalsh(d, e, k, backend=backend), ref[..., [0, 2, 5]][:, torch.arange(3), torch.arange(3)])
    # d and e batch shapes broadcast.
    w = tridiag_eigvalsh(d[:1], e, 2, backend=backend)
    torch.testing.assert_close(w, torch.linalg.eigvalsh(dense(d[:1].expand(2, 3, 6), e))[..., 2])


def test_n_equals_one():
    d = torch.tensor([[2.0], [-1.0]], dtype=F64, requires_grad=True)
    e = torch.zeros(2, 0, dtype=F64, requires_grad=True)
    for backend in BACKENDS:
        w, v = tridiag_eigh(d, e, 0, backend=backend)
        torch.testing.assert_close(w, d.detach()[:, 0])
        torch.testing.assert_close(v.abs(), torch.ones(2, 1, dtype=F64))
        (g,) = torch.autograd.grad(sign_invariant_loss(w, v), d)
        torch.testing.assert_close(g[:, 0], 2 * d.detach()[:, 0])


def test_noncontiguous_inputs():
    d, e = random_de((5,), 12)
    d_nc, e_nc = d[::2, ::2], e[::2, :5]  # non-contiguous views
    assert not d_nc.is_contiguous()
    for backend in BACKENDS:
        torch.testing.assert_close(
            tridiag_eigvalsh(d_nc, e_nc, 2, backend=backend),
            tridiag_eigvalsh(d_nc.contiguous(), e_nc.contiguous(), 2, backend=backend),
        )
    d_t = torch.randn(6, 3, dtype=F64).T  # transposed
    torch.testing.assert_close(tridiag_eigvalsh(d_t, torch.ones(3, 5, dtype=F64), 1), torch.linalg.eigvalsh(dense(d_t, torch.ones(3, 5, dtype=F64)))[..., 1])


@pytest.mark.parametrize("batch", [(), (3,), (2, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_op_kernel_routes_bitwise_equal(batch, dtype):
    """The ops' kernels take tridiag_numba's entry for validated input when the call is
    what the public functions pass (an int k, contiguous tensors of one dtype), else the
    numpy API: the same results to the bit, and the same error for NaN/inf."""
    d, e = random_de(batch, 7, dtype=dtype)
    d_nc, e_nc = (torch.stack([x, x], -1)[..., 0] for x in (d, e))  # equal values, not contiguous
    assert not d_nc.is_contiguous()
    for k in (0, 2, -1):
        fast = ops.kth_eigh_op(d, e, k, None, "numba", 0.0)
        for other in (ops.kth_eigh_op(d, e, 0, torch.tensor(k), "numba", 0.0), ops.kth_eigh_op(d_nc, e_nc, k, None, "numba", 0.0)):
            for a, b in zip(fast, other):
                assert a.dtype == dtype and a.is_contiguous()
                torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(ops.kth_eigvalsh_op(d, e, k, None, "numba"), fast[0], rtol=0, atol=0)
    bad = d.clone()
    bad[(0,) * len(batch) + (3,)] = float("nan")
    for args in ((bad, e, 1, None), (bad, e, 0, torch.tensor(1))):
        with pytest.raises(ValueError, match=r"^d must contain only finite values \(found NaN or inf\)$"):
            ops.kth_eigvalsh_op(*args, "numba")
        with pytest.raises(ValueError, match=r"^d must contain only finite values \(found NaN or inf\)$"):
            ops.kth_eigh_op(*args, "numba", 0.0)
    with pytest.raises(ValueError, match="k must satisfy"):  # out of range: the numpy API's check
        ops.kth_eigvalsh_op(d, e, 7, None, "numba")
    # Integer tensors straight into an op (the public functions promote them first): the
    # fake kernels give integer outputs, so the kernels refuse rather than return float64.
    di, ei = torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 2, dtype=torch.int64)
    for call in (
        lambda: ops.kth_eigvalsh_op(di, ei, 0, None, "numba"),
        lambda: ops.kth_eigh_op(di, ei, 0, None, "scipy", 0.0),
        lambda: ops.kth_eigvalsh_grad_op(di, ei, 0, None, "numba", 0.0),
    ):
        with pytest.raises(TypeError, match=r"^d must be a float32 or float64 tensor, got dtype torch.int64$"):
            call()


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_eigenvalue(backend):
    d, e = random_de((2,), 6, requires_grad=True)
    torch.autograd.gradcheck(lambda d, e: tridiag_eigvalsh(d, e, [1, -1], backend=backend), (d, e))
    torch.autograd.gradgradcheck(lambda d, e: tridiag_eigvalsh(d, e, 2, backend=backend), (d, e))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_eigenvector(backend):
    d, e = random_de((2,), 6, seed=3, requires_grad=True)

    def f(d, e):
        w, v = tridiag_eigh(d, e, 2, backend=backend)
        return w, v**2, v[..., :, None] * v[..., None, :]

    torch.autograd.gradcheck(f, (d, e))
    torch.autograd.gradgradcheck(f, (d, e))


@pytest.mark.parametrize("batch", [(), (2,), (1, 1)])
@pytest.mark.parametrize("n", [1, 2, 4])
def test_gradcheck_edge_shapes(batch, n):
    d, e = random_de(batch, n, seed=15, requires_grad=True)
    k = min(1, n - 1)
    torch.autograd.gradcheck(lambda d, e: tridiag_eigvalsh(d, e, k), (d, e), check_forward_ad=True)
    torch.autograd.gradgradcheck(lambda d, e: tridiag_eigvalsh(d, e, k), (d, e))
    eigvec = lambda d, e: tridiag_eigh(d, e, [0, -1]).eigenvectors ** 2  # noqa: E731
    torch.autograd.gradcheck(eigvec, (d, e), check_forward_ad=True)
    torch.autograd.gradgradcheck(eigvec, (d, e))


@pytest.mark.parametrize("n", [1, 2, 4])
def test_empty_batch_forward_backward(n):
    d, e = random_de((0,), n, requires_grad=True)
    w, v = tridiag_eigh(d, e, 0)
    assert w.shape == (0,) and v.shape == (0, n)
    (w.sum() + (v**2).sum()).backward()
    assert d.grad.shape == (0, n) and e.grad.shape == (0, n - 1)


def test_gradcheck_only_d_or_only_e():
    d, e = random_de((3,), 5, seed=4)
    d.requires_grad_()
    torch.autograd.gradcheck(lambda d: tridiag_eigh(d, e, 1)[1] ** 2, (d,))
    d.requires_grad_(False)
    e.requires_grad_()
    torch.autograd.gradcheck(lambda e: tridiag_eigh(d, e, 1)[1] ** 2, (e,))
    torch.autograd.gradgradcheck(lambda e: tridiag_eigvalsh(d, e, 1), (e,))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [0, 4, -1])
def test_gradients_equal_dense_eigh(backend, k):
    d, e = random_de((4,), 9, seed=5, requires_grad=True)
    w, v = tridiag_eigh(d, e, k, backend=backend)
    ours = torch.autograd.grad(sign_invariant_loss(w, v), (d, e))
    wd, vd = torch.linalg.eigh(dense(d, e))
    ref = torch.autograd.grad(sign_invariant_loss(wd[..., k], vd[..., :, k]), (d, e))
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_second_derivatives_equal_dense_eigh():
    d, e = random_de((), 6, seed=6)
    weights = loss_weights(6)

    def ours(d, e):
        w, v = tridiag_eigh(d, e, 3)
        return sign_invariant_loss(w, v, weights)

    def ref(d, e):
        wd, vd = torch.linalg.eigh(dense(d, e))
        return sign_invariant_loss(wd[3], vd[:, 3], weights)

    for a, b in zip(torch.func.hessian(ours, argnums=(0, 1))(d, e), torch.func.hessian(ref, argnums=(0, 1))(d, e)):
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, atol=1e-9, rtol=1e-9)


def test_forward_mode_matches_dense():
    d, e = random_de((3,), 7, seed=7)
    td, te = random_de((3,), 7, seed=8)

    def ours(d, e):
        w, v = tridiag_eigh(d, e, 2)
        return w, v**2

    def ref(d, e):
        wd, vd = torch.linalg.eigh(dense(d, e))
        return wd[..., 2], vd[..., :, 2] ** 2

    _, t_ours = torch.func.jvp(ours, (d, e), (td, te))
    _, t_ref = torch.func.jvp(ref, (d, e), (td, te))
    for a, b in zip(t_ours, t_ref):
        torch.testing.assert_close(a, b)


def test_backends_agree_values_vectors_gradients():
    d, e = random_de((2, 3), 20, seed=9, requires_grad=True)
    out = {}
    for backend in BACKENDS:
        w, v = tridiag_eigh(d, e, 7, backend=backend)
        out[backend] = (w, v) + torch.autograd.grad(sign_invariant_loss(w, v), (d, e))
    for a, b in zip(out["numba"], out["scipy"]):
        torch.testing.assert_close(a, b, atol=1e-11, rtol=1e-11)  # same sign convention (dstein)


def test_float32_gradients_close_to_float64():
    d, e = random_de((4,), 8, seed=10)
    grads = {}
    for dtype in (torch.float32, F64):
        dd, ee = d.to(dtype).requires_grad_(), e.to(dtype).requires_grad_()
        w, v = tridiag_eigh(dd, ee, 3)
        grads[dtype] = torch.autograd.grad(sign_invariant_loss(w, v), (dd, ee))
        assert all(g.dtype == dtype for g in grads[dtype])
    for a, b in zip(grads[torch.float32], grads[F64]):
        torch.testing.assert_close(a.double(), b, atol=1e-3, rtol=1e-3)


# ----------------------------------------------------------------------------- no-grad path
class _Counter:
    """Counts calls of ``module.name`` (patched for the test); ``vectors`` counts those
    whose argument ``want_vectors`` (at position ``flag``, if given) was true."""

    def __init__(self, monkeypatch, module, name, flag=None):
        self.calls = self.vectors = 0
        original = getattr(module, name)

        def counted(*args, **kwargs):
            self.calls += 1
            self.vectors += flag is not None and bool(args[flag])
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)


def test_inference_computes_no_eigenvectors(monkeypatch):
    kth = _Counter(monkeypatch, ops, "_kth", flag=5)  # (d, e, k, ks, backend, want_vectors)
    d, e = random_de((3,), 6)
    tridiag_eigvalsh(d, e, 1)  # nothing requires grad
    d.requires_grad_()
    with torch.no_grad():
        tridiag_eigvalsh(d, e, [0, 1])
    with torch.inference_mode():
        tridiag_eigvalsh(d, e, 2)
    assert (kth.calls, kth.vectors) == (3, 0)
    tridiag_eigvalsh(d, e, 1).sum().backward()  # training: eigenvector needed for the gradient
    assert (kth.calls, kth.vectors) == (4, 1)


def test_eigenvalue_loss_does_no_solve(monkeypatch):
    solve = _Counter(monkeypatch, ops, "_numpy_pinv_solve")  # both the op and the eager fast path
    d, e = random_de((3,), 6, requires_grad=True)
    tridiag_eigvalsh(d, e, 1).sum().backward()
    assert solve.calls == 0
    w, v = tridiag_eigh(d, e, 1)
    (v**2).sum().backward()
    assert solve.calls == 1


# ----------------------------------------------------------------------------- eigenvalue with its derivatives
def _derivatives_reference(v):
    """``(v**2, 2 v_i v_{i+1})``, the formula in torch operations."""
    return v * v, 2 * (v[..., :-1] * v[..., 1:])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch", [(), (0,), (3,), (2, 3)])
@pytest.mark.parametrize("n", [1, 2, 9])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_kth_eigvalsh_grad_op_is_the_eigenpair_formula_bitwise(backend, batch, n, dtype):
    """The op's (w, w_d, w_e) are kth_eigh's w and the formula on its v, bit for bit."""
    d, e = random_de(batch, n, dtype=dtype, seed=21)
    for k, ks in ((0, None), (-1, None), (0, torch.full(batch, n // 2)), (0, torch.tensor(n - 1))):
        w, w_d, w_e = ops.kth_eigvalsh_grad_op(d, e, k, ks, backend, 0.0)
        w_ref, v = ops.kth_eigh_op(d, e, k, ks, backend, 0.0)
        assert w.dtype == w_d.dtype == w_e.dtype == dtype
        assert w_d.shape == d.shape and w_e.shape == e.shape
        for a, b in zip((w, w_d, w_e), (w_ref, *_derivatives_reference(v))):
            assert torch.equal(a, b)


def test_eigenvalue_backward_is_two_multiplications():
    """First-order backward: gd = gw v**2, ge = gw 2 v_i v_{i+1} from the forward's
    outputs, no further kernel call (bitwise the eigenpair formula for gw = 1)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Log(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func.overloadpacket))
            return func(*args, **(kwargs or {}))

    d, e = random_de((4,), 7, seed=22, requires_grad=True)
    w = tridiag_eigvalsh(d, e, 3)
    log = Log()
    with log:
        w.sum().backward()
    assert not [name for name in log.names if "tridiag_numba" in name], log.names
    assert log.names.count("aten.mul") == 2, log.names
    _, v = tridiag_eigh(d.detach(), e.detach(), 3)
    gd, ge = _derivatives_reference(v)
    assert torch.equal(d.grad, gd) and torch.equal(e.grad, ge)


@pytest.mark.parametrize("backend", BACKENDS)
def test_eigvalsh_function_derivatives_of_its_derivatives(backend):
    """The derivatives w_d, w_e are differentiable outputs: first and second derivatives
    of all three outputs, reverse and forward mode (jvp recomputes v)."""
    d, e = random_de((2,), 6, seed=23, requires_grad=True)

    def f(d, e):
        return TridiagEigvalshFunction.apply(d, e, 2, None, backend, 0.0)

    w, w_d, w_e = f(d, e)
    _, v = tridiag_eigh(d.detach(), e.detach(), 2, backend=backend)
    for a, b in zip((w_d, w_e), _derivatives_reference(v)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.autograd.gradcheck(f, (d, e), check_forward_ad=True, check_batched_grad=True)
    torch.autograd.gradgradcheck(f, (d, e), check_fwd_over_rev=True)


@pytest.mark.parametrize("k", [0, 3, -1])
def test_eigvalsh_second_derivatives_equal_dense_eigh(k):
    """Hessians of an eigenvalue loss: reverse over reverse, and forward over reverse
    (torch.func.hessian), against torch.linalg.eigvalsh."""
    d, e = random_de((2,), 7, seed=24)
    a = torch.tensor([0.7, -1.3], dtype=F64)

    def ours(d, e):
        return (a * tridiag_eigvalsh(d, e, k)).sum()

    def ref(d, e):
        return (a * torch.linalg.eigvalsh(dense(d, e))[..., k]).sum()

    want = torch.func.hessian(ref, argnums=(0, 1))(d, e)
    for got in (torch.func.hessian(ours, argnums=(0, 1))(d, e), torch.autograd.functional.hessian(ours, (d, e))):
        for row, row_ref in zip(got, want):
            for x, y in zip(row, row_ref):
                torch.testing.assert_close(x, y, atol=1e-9, rtol=1e-9)


def test_eigvalsh_forward_mode_equal_dense_eigh():
    """Tangents through every entry to forward mode: a dual level (eager), torch.func.jvp,
    jacfwd; the saved tensors for jvp are kept only when one of these is active."""
    import torch.autograd.forward_ad as fwAD

    d, e = random_de((3,), 7, seed=25)
    td, te = random_de((3,), 7, seed=26)
    want = torch.func.jvp(lambda d, e: torch.linalg.eigvalsh(dense(d, e))[..., 2], (d, e), (td, te))[1]
    with fwAD.dual_level():
        eager = fwAD.unpack_dual(tridiag_eigvalsh(fwAD.make_dual(d, td), fwAD.make_dual(e, te), 2)).tangent
    func = torch.func.jvp(lambda d, e: tridiag_eigvalsh(d, e, 2), (d, e), (td, te))[1]
    for got in (eager, func):
        torch.testing.assert_close(got, want)
    jac = torch.func.jacfwd(lambda d: tridiag_eigvalsh(d, e, 2))(d)
    torch.testing.assert_close(torch.einsum("bij,ij->b", jac, td), torch.func.jvp(lambda d: tridiag_eigvalsh(d, e, 2), (d,), (td,))[1])


# ----------------------------------------------------------------------------- projected solve
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("broadening", [0.0, 0.05])
def test_pinv_solve_matches_dense(dtype, broadening):
    from scipy.linalg import eigh_tridiagonal

    rng = np.random.default_rng(11)
    n = 12
    d, e, b = rng.standard_normal((3, n)), rng.standard_normal((3, n - 1)), rng.standard_normal((3, n))
    for j, k in enumerate((0, 5, n - 1)):
        T = np.diag(d[j]) + np.diag(e[j], 1) + np.diag(e[j], -1)
        W, V = np.linalg.eigh(T)
        w, v = eigh_tridiagonal(d[j], e[j], select="i", select_range=(k, k))
        u = pinv_solve(d[j].astype(dtype), e[j].astype(dtype), w[0], v[:, 0], b[j].astype(dtype), broadening=broadening)
        gap = W - W[k]
        eta = broadening * np.abs(T).sum(axis=1).max()
        factor = np.divide(gap, gap**2 + eta**2, out=np.zeros(n), where=gap != 0)
        ref = V @ (factor * (V.T @ b[j]))
        tol = 1e-12 if dtype == np.float64 else 1e-4
        np.testing.assert_allclose(u, ref, atol=tol * np.abs(ref).max())
    # batched + broadcast call
    W, V = np.linalg.eigh(np.apply_along_axis(np.diag, -1, d) + np.apply_along_axis(lambda x: np.diag(x, 1) + np.diag(x, -1), -1, e))
    u = pinv_solve(d, e, W[:, 2], V[:, :, 2], b[0], broadening=broadening)
    assert u.shape == (3, n)
    np.testing.assert_allclose(np.einsum("bi,bi->b", u, V[:, :, 2]), 0, atol=1e-12)


def test_pinv_solve_validation():
    d, e, v = np.ones(3), np.ones(2), np.array([1.0, 0, 0])
    with pytest.raises(ValueError, match=r"e must have shape \(\.\.\., n - 1\)"):
        pinv_solve(d, np.ones(3), 1.0, v, v)
    with pytest.raises(ValueError, match="must not contain infs or NaNs"):
        pinv_solve(d, e, np.nan, v, v)
    with pytest.raises(TypeError, match="float16"):
        pinv_solve(d.astype(np.float16), e, 1.0, v, v)
    with pytest.raises(ValueError, match="broadening must be >= 0"):
        pinv_solve(d, e, 1.0, v, v, broadening=-1)
    assert pinv_solve(np.ones((0, 3)), np.ones((0, 2)), np.ones(0), np.ones((0, 3)), np.ones((0, 3))).shape == (0, 3)


def test_pinv_function_gradcheck_at_eigenpairs():
    """The VJP/JVP of u = P (T - w I)^+ P b, with (w, v) an eigenpair of T, against finite differences."""
    d, e = random_de((2,), 6, seed=12, requires_grad=True)
    b = torch.randn(2, 6, dtype=F64, requires_grad=True)

    def f(d, e, b):
        w, v = tridiag_eigh(d, e, 2)
        return TridiagPinvSolveFunction.apply(d, e, w, v, b, 0.0)

    torch.autograd.gradcheck(f, (d, e, b), check_forward_ad=True)
    torch.autograd.gradgradcheck(f, (d, e, b))
    # Against the dense pseudo-inverse, differentiated by torch.
    def ref(d, e, b):
        wd, vd = torch.linalg.eigh(dense(d, e))
        A = dense(d, e) - wd[..., 2, None, None] * torch.eye(6, dtype=F64)
        return (torch.linalg.pinv(A, hermitian=True, atol=1e-8) @ b[..., None])[..., 0]

    torch.testing.assert_close(f(d, e, b), ref(d, e, b))
    g = torch.randn(2, 6, dtype=F64)
    for a, r in zip(torch.autograd.grad(f(d, e, b), (d, e, b), g), torch.autograd.grad(ref(d, e, b), (d, e, b), g)):
        torch.testing.assert_close(a, r)


# ----------------------------------------------------------------------------- broadening
def test_broadening_gradient_is_lorentzian_and_bounded():
    n, k, eps_b = 6, 2, 0.01
    d, e = random_de((), n, seed=13, requires_grad=True)
    a = torch.randn(n, dtype=F64)
    w, v = tridiag_eigh(d, e, k, eigvec_broadening=eps_b)
    gd, ge = torch.autograd.grad((a * v**2).sum(), (d, e))
    # Dense reference: dv = -sum_j v_j (v_j^T dT v) f(w_j - w) with the Lorentzian f.
    T = dense(d, e).detach()
    W, V = torch.linalg.eigh(T)
    gap = W - W[k]
    eta = eps_b * T.abs().sum(1).max()
    f = torch.where(gap == 0, 0.0, gap / (gap**2 + eta**2))
    gv = 2 * a * v.detach()
    u = V @ (f * (V.T @ gv))
    ref_d = -u * v.detach()
    ref_e = -(u[:-1] * v.detach()[1:] + u[1:] * v.detach()[:-1])
    torch.testing.assert_close(gd, ref_d)
    torch.testing.assert_close(ge, ref_e)
    # Two nearly degenerate eigenvalues (weakly coupled blocks): exact gradient huge, broadened bounded.
    d2 = torch.tensor([1.0, 2.0, 1.0 + 1e-9, 2.0], dtype=F64, requires_grad=True)
    e2 = torch.tensor([0.5, 1e-7, 0.5], dtype=F64)
    grads = {}
    for b in (0.0, 1e-3):
        w, v = tridiag_eigh(d2, e2, 0, eigvec_broadening=b)
        (grads[b],) = torch.autograd.grad((torch.arange(4.0, dtype=F64) * v**2).sum(), d2)
    assert grads[0.0].abs().max() > 1e3
    assert grads[1e-3].abs().max() < 1e3
    # Broadening is first order only: derivatives of the broadened term raise.
    with pytest.raises(RuntimeError, match="broadened"):
        w, v = tridiag_eigh(d, e, k, eigvec_broadening=eps_b)
        (gd,) = torch.autograd.grad((a * v**2).sum(), d, create_graph=True)
        gd.sum().backward()


# ----------------------------------------------------------------------------- errors
def test_errors():
    d, e = random_de((2,), 4)
    with pytest.raises(ValueError, match=r"backend must be one of \{.*\}, got 'lapack'"):
        tridiag_eigvalsh(d, e, 0, backend="lapack")
    with pytest.raises(ValueError, match=r"e must have shape \(\.\.\., n - 1\) = \(\.\.\., 3\), got \(2, 4\)"):
        tridiag_eigvalsh(d, d, 0)
    with pytest.raises(ValueError, match="n >= 1"):
        tridiag_eigvalsh(d[:, :0], e[:, :0], 0)
    with pytest.raises(ValueError, match=r"k must be in \[-n, n\) = \[-4, 4\), got 4"):
        tridiag_eigvalsh(d, e, 4)
    with pytest.raises(ValueError, match=r"k must be in"):
        tridiag_eigh(d, e, [0, -5])
    with pytest.raises(TypeError, match="k must be an integer"):
        tridiag_eigvalsh(d, e, torch.tensor(1.0))
    with pytest.raises(TypeError, match="float16"):
        tridiag_eigvalsh(d.half(), e.half(), 0)
    with pytest.raises(ValueError, match="batch shapes do not broadcast"):
        tridiag_eigvalsh(d, e[:1].expand(3, 3), 0)
    with pytest.raises(ValueError, match="eigvec_broadening must be >= 0"):
        tridiag_eigh(d, e, 0, eigvec_broadening=-0.1)
    with pytest.raises(TypeError, match="k must be an int, a sequence of ints"):
        tridiag_eigvalsh(d, e, 1.0)
    with pytest.raises(TypeError, match="k must be an int, a sequence of ints"):
        tridiag_eigvalsh(d, e, [0, 1.5])
    with pytest.raises(ValueError, match="k must not be an empty sequence"):
        tridiag_eigvalsh(d, e, [])
    # NaN/inf: a ValueError naming the argument, and no advice about a check_finite
    # argument the torch API does not have.
    for backend in BACKENDS:
        for call in (tridiag_eigvalsh, tridiag_eigh):
            nan_e = torch.tensor([[0.0, float("nan"), 1.0]] * 2, dtype=F64)
            with pytest.raises(ValueError, match=r"^e must contain only finite values \(found NaN or inf\)$"):
                call(d, nan_e, 0, backend=backend)
            with pytest.raises(ValueError, match=r"^d must contain only finite values \(found NaN or inf\)$"):
                call(torch.full((4,), float("inf"), dtype=F64), e[0], 0, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("call", [tridiag_eigvalsh, tridiag_eigh])
def test_nonfinite_check_near_overflow(backend, call):
    """The NaN check on w takes finite eigenvalues whose squares overflow for finite (no
    error, no warning), and finds one non-finite matrix among finite ones."""
    s = 1e154  # |w| up to ~3e154: w**2 overflows; scipy's stebz fails from ~1e160 on
    d = torch.tensor([[s, -s, 2 * s], [-2 * s, s, s], [1.0, 2.0, 3.0]], dtype=F64)
    e = torch.tensor([[s, s], [s, -s], [0.5, 0.5]], dtype=F64)
    for k in (0, -1):
        w = call(d, e, k, backend=backend)
        w = w if call is tridiag_eigvalsh else w.eigenvalues
        # lambda_min <= min(d), lambda_max >= max(d): the extremes are of order s
        assert torch.isfinite(w).all() and w[:2].abs().min() >= s
    for i in range(3):
        bad = d.clone()
        bad[i, 1] = float("nan")
        with pytest.raises(ValueError, match=r"^d must contain only finite values"):
            call(bad, e, 1, backend=backend)


@pytest.mark.parametrize("k", [1, [0, -1]])
def test_eigh_named_tuple_columns_like_torch_linalg_eigh(k):
    d, e = random_de((2, 3), 5, seed=14)
    out = tridiag_eigh(d, e, k)
    assert type(out).__name__ == "TridiagEighResult" and out._fields == ("eigenvalues", "eigenvectors")
    ref = torch.linalg.eigh(dense(d, e))
    torch.testing.assert_close(out.eigenvalues, ref.eigenvalues[..., k])
    # Same layout as torch.linalg.eigh(...).eigenvectors[..., k]: columns (..., n, K).
    torch.testing.assert_close(out.eigenvectors.abs(), ref.eigenvectors[..., k].abs())
    w, v = out
    assert w is out.eigenvalues and v is out.eigenvectors


def test_integer_inputs_promote_to_float64():
    w = tridiag_eigvalsh(torch.tensor([2, 2, 2]), torch.tensor([-1, -1]), 0)
    assert w.dtype == F64
    torch.testing.assert_close(w, torch.tensor(2 - 2**0.5, dtype=F64))


def test_functions_exported():
    for function in (TridiagEigvalshFunction, TridiagEighFunction, TridiagPinvSolveFunction):
        assert issubclass(function, torch.autograd.Function)
        assert function.generate_vmap_rule
