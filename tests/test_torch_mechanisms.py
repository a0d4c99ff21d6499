"""torch_bridge behaves as a torch op under torch's mechanisms (issue 11's table).

Each test is one row: what ``torch.linalg.eigvalsh``/``eigh`` does there, we do.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import torch_bridge._ops as ops  # noqa: E402
from torch_bridge import TridiagSpectral, tridiag_eigh, tridiag_eigvalsh  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:<class 'torch.autograd.function.Function'> should not be instantiated"),
    # torch.jit.trace itself is deprecated in torch 2.13 (we test that it still records the op).
    pytest.mark.filterwarnings(r"ignore:`torch.jit.trace\w*` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]

F64 = torch.float64
ROOT = Path(__file__).resolve().parents[1]
OPS = ("tridiag_numba::kth_eigvalsh", "tridiag_numba::kth_eigvalsh_grad", "tridiag_numba::kth_eigh", "tridiag_numba::pinv_solve")


def random_de(batch, n, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(*batch, n, generator=g, dtype=F64).to(dtype),
        torch.randn(*batch, n - 1, generator=g, dtype=F64).to(dtype),
    )


def dense(d, e):
    return torch.diag_embed(d) + torch.diag_embed(e, 1) + torch.diag_embed(e, -1)


def eigvec_loss(d, e, k=2):
    """Sign-invariant, through the eigenvalue and the eigenvector."""
    w, v = tridiag_eigh(d, e, k)
    return (w**2).sum() + (torch.linspace(-1.0, 1.0, v.shape[-1], dtype=v.dtype) * v**2).sum()


# ----------------------------------------------------------------------------- one path
def test_plain_eager_goes_through_the_custom_ops():
    """No shortcut: the profiler (which sees dispatcher calls) records the ops in plain eager mode."""
    d, e = random_de((3,), 6)
    d.requires_grad_()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        with torch.no_grad():
            tridiag_eigvalsh(d, e, 1)
        tridiag_eigvalsh(d, e, 1).sum().backward()
        eigvec_loss(d, e).backward()
    names = {evt.key for evt in prof.key_averages()}
    assert set(OPS) <= names, names


# ----------------------------------------------------------------------------- saved tensors
@pytest.mark.parametrize("which", ["eigvalsh", "eigh"])
def test_second_backward_raises(which):
    d, e = random_de((2,), 5)
    d.requires_grad_()
    out = tridiag_eigvalsh(d, e, 1) if which == "eigvalsh" else tridiag_eigh(d, e, 1).eigenvectors ** 2
    out.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        out.sum().backward()
    # retain_graph=True keeps it, as in torch: the gradient doubles.
    d.grad = None
    out = tridiag_eigvalsh(d, e, 1)
    out.sum().backward(retain_graph=True)
    first = d.grad.clone()
    out.sum().backward()
    torch.testing.assert_close(d.grad, 2 * first)


# ----------------------------------------------------------------------------- jit.trace
def test_jit_trace_records_the_op_not_a_constant():
    model = TridiagSpectral(4, 6, 2, dtype=F64)
    x, x2 = torch.randn(5, 4, dtype=F64), torch.randn(5, 4, dtype=F64)
    with torch.no_grad():
        traced = torch.jit.trace(model, (x,))
        assert "tridiag_numba::kth_eigvalsh" in str(traced.graph)
        torch.testing.assert_close(traced(x2), model(x2), rtol=0, atol=0)
        assert not torch.equal(traced(x2), model(x))


def test_jit_trace_with_grad_trains():
    model = TridiagSpectral(4, 6, [0, 2], dtype=F64)
    x, x2 = torch.randn(5, 4, dtype=F64), torch.randn(5, 4, dtype=F64)
    traced = torch.jit.trace(model, (x,), check_trace=False)
    traced(x2).sum().backward()
    traced_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x2).sum().backward()
    for a, b in zip(traced_grads, (p.grad for p in model.parameters())):
        torch.testing.assert_close(a, b)


# ----------------------------------------------------------------------------- batched gradients
def test_is_grads_batched():
    d, e = random_de((3,), 6)
    d.requires_grad_()
    w = tridiag_eigvalsh(d, e, 1)
    (rows,) = torch.autograd.grad(w, d, torch.eye(3, dtype=F64), is_grads_batched=True)
    _, v = tridiag_eigh(d.detach(), e, 1)
    torch.testing.assert_close(rows, _eigvalsh_jacobian_rows(v))
    # Through the eigenvector (a projected solve in backward), against the loop.
    w, v = tridiag_eigh(d, e, 1)
    out = (v**2).sum(-1) + v[..., 0] * v[..., 1]
    basis = torch.eye(3, dtype=F64)
    (batched,) = torch.autograd.grad(out, d, basis, is_grads_batched=True, retain_graph=True)
    looped = torch.stack([torch.autograd.grad(out, d, g, retain_graph=True)[0] for g in basis])
    torch.testing.assert_close(batched, looped)


def _eigvalsh_jacobian_rows(v):
    """Row i of dw/dd for w (3,) and d (3, n): zero except in matrix i, where it is v_i**2."""
    rows = torch.zeros(3, *v.shape, dtype=v.dtype)
    for i in range(3):
        rows[i, i] = v[i] ** 2
    return rows


def test_vmap_over_inputs_requiring_grad_keeps_the_graph():
    """Inside torch.vmap a batched tensor hides requires_grad; the gradient must still flow."""
    d, e = random_de((3,), 6, seed=9)
    d.requires_grad_()
    w = torch.vmap(lambda d: tridiag_eigvalsh(d, e[0], 1))(d)
    (g,) = torch.autograd.grad((w * torch.arange(3.0, dtype=F64)).sum(), d)
    (ref,) = torch.autograd.grad((tridiag_eigvalsh(d, e[0], 1) * torch.arange(3.0, dtype=F64)).sum(), d)
    torch.testing.assert_close(g, ref, rtol=0, atol=0)


def test_jacobian_vectorize_equals_loop_and_dense():
    d, e = random_de((), 6, seed=2)

    def f(d, e):
        w, v = tridiag_eigh(d, e, 2)
        return torch.cat([w[None], v**2])

    def ref(d, e):
        wd, vd = torch.linalg.eigh(dense(d, e))
        return torch.cat([wd[2, None], vd[:, 2] ** 2])

    fast = torch.autograd.functional.jacobian(f, (d, e), vectorize=True)
    slow = torch.autograd.functional.jacobian(f, (d, e))
    dens = torch.autograd.functional.jacobian(ref, (d, e))
    for a, b, c in zip(fast, slow, dens):
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, c)


@pytest.mark.parametrize("backend", ["numba", "scipy"])
def test_gradcheck_batched_grad_and_forward_ad(backend):
    d, e = random_de((2,), 5, seed=3)
    d.requires_grad_()
    e.requires_grad_()
    checks = dict(check_batched_grad=True, check_forward_ad=True, check_batched_forward_grad=True)
    torch.autograd.gradcheck(lambda d, e: tridiag_eigvalsh(d, e, [1, -1], backend=backend), (d, e), **checks)
    torch.autograd.gradcheck(lambda d, e: tridiag_eigh(d, e, 2, backend=backend).eigenvectors ** 2, (d, e), **checks)
    torch.autograd.gradgradcheck(lambda d, e: tridiag_eigvalsh(d, e, 2, backend=backend), (d, e), check_batched_grad=True)


# ----------------------------------------------------------------------------- compile around torch.func
@pytest.mark.parametrize("which", ["eigvalsh", "eigh"])
def test_compile_func_jvp(which):
    d, e = random_de((3,), 6, seed=4)
    t = torch.randn(3, 6, dtype=F64)

    def f(d):
        if which == "eigvalsh":
            return tridiag_eigvalsh(d, e, 2)
        return tridiag_eigh(d, e, 2).eigenvectors ** 2

    ref = torch.func.jvp(f, (d,), (t,))[1]
    dense_ref = torch.func.jvp(lambda d: _dense_k(d, e, which), (d,), (t,))[1]
    torch.testing.assert_close(ref, dense_ref)
    out = torch.compile(lambda d, t: torch.func.jvp(f, (d,), (t,)))(d, t)[1]
    assert out.abs().max() > 0.1
    torch.testing.assert_close(out, ref)


def _dense_k(d, e, which):
    w, v = torch.linalg.eigh(dense(d, e))
    return w[..., 2] if which == "eigvalsh" else v[..., :, 2] ** 2


@pytest.mark.parametrize("which", ["eigvalsh", "eigh"])
def test_compile_func_grad(which):
    d, e = random_de((3,), 6, seed=5)

    def f(d):
        return tridiag_eigvalsh(d, e, 2).sum() if which == "eigvalsh" else eigvec_loss(d, e)

    ref = torch.func.grad(f)(d)
    torch.testing.assert_close(torch.compile(torch.func.grad(f))(d), ref)
    dd = d.clone().requires_grad_()
    f(dd).backward()
    torch.testing.assert_close(ref, dd.grad)


# ----------------------------------------------------------------------------- autocast
def test_autocast_bfloat16_runs_in_float32():
    torch.manual_seed(0)
    model = TridiagSpectral(4, 6, 2)
    x = torch.randn(5, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d, e = model.diag(x), model.offdiag(x)
        assert d.dtype == torch.bfloat16  # what nn.Linear gives under autocast
        y = model(x)
    assert y.dtype == torch.float32  # as torch.linalg.eigvalsh under autocast
    torch.testing.assert_close(y, tridiag_eigvalsh(d.float(), e.float(), 2), rtol=0, atol=0)
    y.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())
    # Outside autocast, bfloat16 stays an error (no silent upcast).
    with pytest.raises(TypeError, match="bfloat16"):
        tridiag_eigvalsh(d, e, 2)


def test_ops_autocast_rule():
    d, e = random_de((2,), 5, dtype=torch.bfloat16)
    k = torch.tensor(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        w = ops.kth_eigvalsh_op(d, e, 1, None, "numba")
        w2, v = ops.kth_eigh_op(d, e, 0, k, "numba", 0.0)
    assert w.dtype == w2.dtype == v.dtype == torch.float32
    torch.testing.assert_close(w, ops.kth_eigvalsh_op(d.float(), e.float(), 1, None, "numba"))


# ----------------------------------------------------------------------------- meta / fake / devices
BATCHES = [(), (0,), (2,), (1, 1)]


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", [1, 2, 5])
def test_meta_tensors_give_shapes(batch, n):
    d, e = (x.to("meta") for x in random_de(batch, n))
    assert tridiag_eigvalsh(d, e, 0).shape == batch
    w, v = tridiag_eigh(d, e, -1)
    assert (w.shape, v.shape, v.device.type) == (batch, (*batch, n), "meta")
    w, v = tridiag_eigh(d, e, [0, n - 1])
    assert (w.shape, v.shape) == ((*batch, 2), (*batch, n, 2))
    # With a gradient to come (the op with the eigenvalue's derivatives), and backward.
    d.requires_grad_()
    w = tridiag_eigvalsh(d, e, 0)
    assert w.shape == batch and w.grad_fn is not None
    w.sum().backward()
    assert (d.grad.shape, d.grad.device.type) == ((*batch, n), "meta")


def test_fake_tensors_give_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    d, e = random_de((3, 2), 6)
    with FakeTensorMode() as mode:
        df, ef = mode.from_tensor(d), mode.from_tensor(e)
        assert tridiag_eigvalsh(df, ef, [0, 1, 2]).shape == (3, 2, 3)
        w, v = tridiag_eigh(df.requires_grad_(), ef, 1)
        assert v.shape == (3, 2, 6)
        (v**2).sum().backward()  # fake backward: shapes only
        assert df.grad.shape == (3, 2, 6)


def test_default_device_does_not_move_k():
    d, e = random_de((3,), 6, seed=6)
    ref = tridiag_eigvalsh(d, e, 1), tridiag_eigvalsh(d, e, [0, -1]), tridiag_eigh(d, e, -1)[1]
    torch.set_default_device("meta")
    try:
        out = tridiag_eigvalsh(d, e, 1), tridiag_eigvalsh(d, e, [0, -1]), tridiag_eigh(d, e, -1)[1]
        model = TridiagSpectral(3, 4, 1, device="cpu")
        y = model(torch.rand(2, 3, device="cpu"))
    finally:
        torch.set_default_device(None)
    for a, b in zip(out, ref):
        assert a.device.type == "cpu"
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert y.device.type == "cpu" and torch.isfinite(y).all()


@pytest.mark.parametrize("name", OPS)
def test_ops_registered_for_cpu_and_meta_only(name):
    """Other devices (cuda, mps, ...) get the dispatcher's NotImplementedError: no kernel for them."""
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    assert has(name, "CPU") and has(name, "Meta") and has(name, "AutocastCPU") and has(name, "Autograd")
    for key in ("CUDA", "MPS", "XPU", "PrivateUse1", "CompositeImplicitAutograd", "CompositeExplicitAutograd"):
        assert not has(name, key), key


def test_dispatcher_error_for_a_backend_without_kernel():
    """What a CUDA tensor gets, shown with the one backend key we can exercise here: the
    dispatcher raises NotImplementedError naming the op (no .numpy() on a device tensor)."""
    d, e = random_de((2,), 4)
    with pytest.raises(NotImplementedError, match="tridiag_numba::kth_eigvalsh"):
        torch.ops.tridiag_numba.kth_eigvalsh.default.redispatch(
            torch._C.DispatchKeySet(torch._C.DispatchKey.CUDA), d, e, 0, None, "numba"
        )


# ----------------------------------------------------------------------------- export
def _export_cases():
    torch.manual_seed(0)
    model = TridiagSpectral(4, 6, [1, 3], dtype=F64)
    return model, torch.randn(5, 4, dtype=F64)


@pytest.mark.parametrize("grad_mode", [True, False])
def test_exported_program_trains(grad_mode):
    model, x = _export_cases()
    with torch.set_grad_enabled(grad_mode):
        ep = torch.export.export(model, (x,))
    graph = str(ep.graph_module.code)
    assert ("tridiag_numba.kth_eigvalsh_grad" if grad_mode else "tridiag_numba.kth_eigvalsh.default") in graph
    exported = ep.module()
    x2 = torch.randn(7, 4, dtype=F64)[:5]
    out = exported(x2)
    out.square().sum().backward()
    ref = model(x2)
    ref.square().sum().backward()
    torch.testing.assert_close(out, ref)
    grads = dict(exported.named_parameters())
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name].grad, p.grad)


class _EigvecModule(torch.nn.Module):
    def forward(self, d, e):
        return tridiag_eigh(d, e, 2).eigenvectors ** 2


def test_exported_eigenvector_trains_and_double_backward():
    d, e = random_de((3,), 6, seed=7)
    ep = torch.export.export(_EigvecModule(), (d, e))
    assert "tridiag_numba.kth_eigh" in str(ep.graph_module.code)
    mod = ep.module()
    dd, ee = d.clone().requires_grad_(), e.clone().requires_grad_()
    torch.autograd.gradcheck(lambda d, e: mod(d, e), (dd, ee))
    torch.autograd.gradgradcheck(lambda d, e: mod(d, e), (dd, ee))


class _EigvalshModule(torch.nn.Module):
    def forward(self, d, e):
        return tridiag_eigvalsh(d, e, 2)


def test_exported_eigenvalue_double_backward():
    """The graph holds kth_eigvalsh_grad; its registered autograd (the Function's
    formulas) gives first and second derivatives."""
    d, e = random_de((3,), 6, seed=8)
    ep = torch.export.export(_EigvalshModule(), (d.clone().requires_grad_(), e.clone().requires_grad_()))
    assert "tridiag_numba.kth_eigvalsh_grad" in str(ep.graph_module.code)
    mod = ep.module()
    dd, ee = d.clone().requires_grad_(), e.clone().requires_grad_()
    torch.autograd.gradcheck(lambda d, e: mod(d, e), (dd, ee))
    torch.autograd.gradgradcheck(lambda d, e: mod(d, e), (dd, ee))


class _EighModule(torch.nn.Module):
    def forward(self, d, e):
        return tridiag_eigh(d, e, [0, -1])


def test_exported_named_tuple_saves_and_loads(tmp_path):
    d, e = random_de((3,), 5, seed=8)
    torch.export.save(torch.export.export(_EighModule(), (d, e)), tmp_path / "eigh.pt2")
    out = torch.export.load(tmp_path / "eigh.pt2").module()(d, e)
    ref = tridiag_eigh(d, e, [0, -1])
    assert type(out) is type(ref)
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_export_load_in_a_fresh_process_needs_import_torch_bridge(tmp_path):
    model, x = _export_cases()
    path = tmp_path / "spectral.pt2"
    torch.export.save(torch.export.export(model, (x,)), path)
    torch.save({"x": x, "y": model(x).detach()}, tmp_path / "io.pt")
    code = textwrap.dedent(
        f"""
        import sys, torch
        if sys.argv[1] == "import":
            import torch_bridge  # registers the tridiag_numba ops
        ep = torch.export.load({str(path)!r})
        io = torch.load({str(tmp_path / "io.pt")!r})
        torch.testing.assert_close(ep.module()(io["x"]), io["y"])
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-c", code]
    ok = subprocess.run(run + ["import"], capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr
    bare = subprocess.run(run + ["no-import"], capture_output=True, text=True, env=env, timeout=300)
    assert bare.returncode != 0 and "tridiag_numba" in bare.stderr


# ----------------------------------------------------------------------------- import without torch
def test_import_without_torch_has_an_install_hint():
    code = "import sys; sys.modules['torch'] = None; import torch_bridge"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and 'pip install "tridiag-numba[torch]"' in proc.stderr
