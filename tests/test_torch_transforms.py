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
@pytest.mark.parametrize("batch", [(3,), (2, 2)])
def test_opcheck(backend, batch):
    d, e = random_de(batch, 5)
    k = torch.full(batch, 1)
    torch.library.opcheck(ops.kth_eigvalsh_op, (d, e, k, backend))
    torch.library.opcheck(ops.kth_eigh_op, (d, e, k, backend))
    w, v = ops.kth_eigh_op(d, e, k, backend)
    b = torch.randn(*batch, 5, dtype=F64)
    for broadening in (0.0, 0.1):
        torch.library.opcheck(ops.pinv_solve_op, (d, e, w, v, b, broadening))


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
    original = ops._numpy_eigvalsh_k
    monkeypatch.setattr(ops, "_numpy_eigvalsh_k", lambda *a: calls.append(a[1].shape) or original(*a))
    d, e = random_de((4, 3), 6)
    out = torch.vmap(lambda d, e: tridiag_eigvalsh(d, e, 1), in_dims=(1, None))(d, e[:, 0])
    assert out.shape == (3, 4)
    assert calls == [(3, 4, 6)]


def test_compile_fullgraph_forward_backward_equal_eager():
    d, e = random_de((4,), 8)
    compiled = torch.compile(loss, fullgraph=True)
    dc, ec = d.clone().requires_grad_(), e.clone().requires_grad_()
    out = compiled(dc, ec)
    out.backward()
    de, ee = d.clone().requires_grad_(), e.clone().requires_grad_()
    ref = loss(de, ee)
    ref.backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(dc.grad, de.grad)
    torch.testing.assert_close(ec.grad, ee.grad)


def test_compile_fullgraph_inference_several_k():
    d, e = random_de((2, 3), 7)
    compiled = torch.compile(lambda d, e: tridiag_eigvalsh(d, e, [0, 3, -1]), fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(d, e), tridiag_eigvalsh(d, e, [0, 3, -1]))


# ----------------------------------------------------------------------------- eager fast path
class _RecordOps(torch.utils._python_dispatch.TorchDispatchMode):
    """A pass-through dispatch mode recording the ops it sees (disables the eager fast path)."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.seen.add(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


def _results(d, e, backend):
    """Inference, eigenpair, first and second derivatives through w and v."""
    with torch.no_grad():
        inference = tridiag_eigvalsh(d, e, 2, backend=backend)
    d, e = d.clone().requires_grad_(), e.clone().requires_grad_()
    g_w = torch.autograd.grad(tridiag_eigvalsh(d, e, 2, backend=backend).sum(), (d, e), create_graph=True)
    w, v = tridiag_eigh(d, e, 2, backend=backend)
    weights = torch.linspace(-1.0, 1.0, v.shape[-1], dtype=v.dtype)
    g_v = torch.autograd.grad((w**2).sum() + (weights * v**2).sum(), (d, e), create_graph=True)
    gg = torch.autograd.grad(sum((g**2).sum() for g in g_w + g_v), (d, e))
    # first-order backwards (no graph recorded: the eager path computes them in numba)
    scale = torch.linspace(0.5, 2.0, w.numel(), dtype=w.dtype).reshape(w.shape)
    g1_w = torch.autograd.grad((scale * tridiag_eigvalsh(d, e, 2, backend=backend)).sum(), (d, e))
    w1, v1 = tridiag_eigh(d, e, 2, backend=backend)
    g1_v = torch.autograd.grad((scale * w1).sum() + (weights * v1**2).sum(), (d, e))
    return (inference, w, v) + g_w + g_v + gg + g1_w + g1_v


@pytest.mark.parametrize("backend", ["numba", "scipy"])
def test_eager_fast_path_equals_custom_op_path(backend, monkeypatch):
    """Plain eager mode calls the kernels directly; under any dispatch mode (as when tracing)
    the custom ops run.  Both give bit-identical results and derivatives."""
    import torch_bridge._autograd as autograd
    import torch_bridge._functional as functional

    d, e = random_de((2, 3), 7)
    mode = _RecordOps()
    with mode:
        via_ops = _results(d, e, backend)
    assert {"tridiag_numba.kth_eigvalsh", "tridiag_numba.kth_eigh", "tridiag_numba.pinv_solve"} <= mode.seen

    def forbidden(*args):
        raise AssertionError("custom op called in plain eager mode")

    for module, name in ((functional, "kth_eigvalsh_op"), (autograd, "kth_eigh_op"), (autograd, "pinv_solve_op")):
        monkeypatch.setattr(module, name, forbidden)
    fast = _results(d, e, backend)
    for a, b in zip(fast, via_ops):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
