"""torch_bridge under torch.library.opcheck, torch.func and torch.compile."""

import pytest

torch = pytest.importorskip("torch")

import torch_bridge._ops as ops  # noqa: E402
from torch_bridge import tridiag_eigh, tridiag_eigvalsh  # noqa: E402

# Warnings raised inside torch 2.13 itself (any autograd.Function under torch.compile, and
# torch.func / inductor importing modules that call the deprecated torch.jit.script).
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:<class 'torch.autograd.function.Function'> should not be instantiated"),
]

F64 = torch.float64


def random_de(batch, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*batch, n, generator=g, dtype=F64), torch.randn(*batch, n - 1, generator=g, dtype=F64)


def loss(d, e, backend="numba"):
    """A sign-invariant loss through the eigenvalue and the eigenvector."""
    w, v = tridiag_eigh(d, e, 2, backend=backend)
    weights = torch.linspace(-1.0, 1.0, v.shape[-1], dtype=v.dtype)
    return (w**2).sum() + (weights * v**2).sum()


@pytest.mark.parametrize("backend", ["numba", "scipy"])
@pytest.mark.parametrize("batch", [(), (0,), (3,), (1, 1), (2, 2)])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_opcheck(backend, batch, n):
    d, e = random_de(batch, n)
    # One int index for all (also negative), a k per matrix, or a 0-d tensor for all.
    for k, ks in ((0, None), (-1, None), (0, torch.full(batch, n - 1)), (0, torch.tensor(0))):
        torch.library.opcheck(ops.kth_eigvalsh_op, (d, e, k, ks, backend))
        torch.library.opcheck(ops.kth_eigh_op, (d, e, k, ks, backend, 0.0))
        torch.library.opcheck(ops.kth_eigvalsh_grad_op, (d, e, k, ks, backend, 0.0))
    w, v = ops.kth_eigh_op(d, e, 0, None, backend, 0.0)
    b = torch.randn(*batch, n, dtype=F64)
    for broadening in (0.0, 0.1):
        torch.library.opcheck(ops.pinv_solve_op, (d, e, w, v, b, broadening))


@pytest.mark.parametrize("k_dims", ["int", "0d", "per-matrix", "vmapped"])
def test_vmap_rule_k_shapes(k_dims):
    """The ops' vmap rule with one int index for all, ks 0-d (one for all), per matrix, or
    itself vmapped."""
    d, e = random_de((4, 3), 6)
    ks = torch.tensor([[0, 5, 2], [1, 1, 1], [3, 4, 0], [2, 2, 5]])
    if k_dims == "int":
        out = torch.vmap(lambda d, e: ops.kth_eigh_op(d, e, -4, None, "numba", 0.0))(d, e)
        k = torch.tensor(2)
    elif k_dims == "0d":
        out = torch.vmap(lambda d, e: ops.kth_eigh_op(d, e, 0, torch.tensor(2), "numba", 0.0))(d, e)
        k = torch.tensor(2)
    elif k_dims == "per-matrix":
        out = torch.vmap(lambda d, e: ops.kth_eigh_op(d, e, 0, ks[0], "numba", 0.0))(d, e)
        k = ks[0]
    else:
        out = torch.vmap(lambda d, e, k: ops.kth_eigh_op(d, e, 0, k, "numba", 0.0))(d, e, ks)
        k = ks
    ref = ops.kth_eigh_op(d, e, 0, k.expand(4, 3), "numba", 0.0)
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    k0 = torch.tensor([0, 5, 2, 1])
    w = torch.vmap(lambda d, e, k: ops.kth_eigvalsh_op(d, e, 0, k, "numba"))(d[:, 0], e[:, 0], k0)
    torch.testing.assert_close(w, ops.kth_eigvalsh_op(d[:, 0], e[:, 0], 0, k0, "numba"))
    for k, ks in ((-4, None), (0, k0)):  # the eigenvalue with its derivatives: k for all, per matrix
        out = torch.vmap(lambda d, e, ks: ops.kth_eigvalsh_grad_op(d, e, k, ks, "numba", 0.0), in_dims=(0, 0, None if ks is None else 0))(d[:, 0], e[:, 0], ks)
        for a, b in zip(out, ops.kth_eigvalsh_grad_op(d[:, 0], e[:, 0], k, ks, "numba", 0.0)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_func_transforms_equal_eager():
    d, e = random_de((3,), 6)
    eager = torch.autograd.grad(loss(d.requires_grad_(), e.requires_grad_()), (d, e))
    d, e = d.detach(), e.detach()
    for a, b in zip(torch.func.grad(loss, argnums=(0, 1))(d, e), eager):
        torch.testing.assert_close(a, b)

    def per_matrix(d, e):
        w, v = tridiag_eigh(d, e, 2)
        return torch.cat([w[None], v**2])

    jr = torch.func.jacrev(per_matrix, argnums=(0, 1))(d[0], e[0])
    jf = torch.func.jacfwd(per_matrix, argnums=(0, 1))(d[0], e[0])
    for a, b in zip(jr, jf):
        torch.testing.assert_close(a, b)
    # jacobian of the eigenvalue row is (v^2, 2 v_i v_{i+1})
    _, v = tridiag_eigh(d[0], e[0], 2)
    torch.testing.assert_close(jr[0][0], v**2)
    torch.testing.assert_close(jr[1][0], 2 * v[:-1] * v[1:])

    vm = torch.vmap(per_matrix)(d, e)
    torch.testing.assert_close(vm, torch.stack([per_matrix(d[i], e[i]) for i in range(3)]))
    g = torch.vmap(torch.func.grad(loss, argnums=(0, 1)))(d, e)
    for i in range(3):
        for a, b in zip(g, torch.func.grad(loss, argnums=(0, 1))(d[i], e[i])):
            torch.testing.assert_close(a[i], b)


def test_vmap_makes_one_kernel_call(monkeypatch):
    calls = []
    original = ops._kth
    monkeypatch.setattr(ops, "_kth", lambda *a: calls.append(a[0].numel()) or original(*a))
    d, e = random_de((4, 3), 6)
    out = torch.vmap(lambda d, e: tridiag_eigvalsh(d, e, 1), in_dims=(1, None))(d, e[:, 0])
    assert out.shape == (3, 4)
    assert calls == [3 * 4 * 6]  # all 12 matrices of order 6 in one call


def _eigenvalue_loss(d, e):
    return (torch.linspace(-1.0, 2.0, d.shape[-2], dtype=d.dtype) * tridiag_eigvalsh(d, e, 4)).sum()


@pytest.mark.parametrize("f", [loss, _eigenvalue_loss], ids=["eigenpair", "eigenvalue"])
def test_compile_fullgraph_forward_backward_equal_eager(f):
    """One graph each way; the eigenvalue's backward (two multiplications of the op
    kth_eigvalsh_grad's outputs) is bitwise eager's, the loss up to inductor's sums."""
    d, e = random_de((2, 3), 7)
    compiled = torch.compile(f, fullgraph=True)
    dc, ec = d.clone().requires_grad_(), e.clone().requires_grad_()
    out = compiled(dc, ec)
    out.backward()
    de, ee = d.clone().requires_grad_(), e.clone().requires_grad_()
    ref = f(de, ee)
    ref.backward()
    torch.testing.assert_close(out, ref)
    exact = dict(rtol=0, atol=0) if f is _eigenvalue_loss else {}
    torch.testing.assert_close(dc.grad, de.grad, **exact)
    torch.testing.assert_close(ec.grad, ee.grad, **exact)


def test_compile_fullgraph_inference_several_k():
    d, e = random_de((2, 3), 7)
    compiled = torch.compile(lambda d, e: tridiag_eigvalsh(d, e, [0, 3, -1]), fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(d, e), tridiag_eigvalsh(d, e, [0, 3, -1]))
