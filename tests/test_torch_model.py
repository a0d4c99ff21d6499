"""TridiagSpectral: construction, shapes, and learning the 12-bit toy problem."""

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch_bridge import TridiagSpectral  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_repr_shapes_and_validation():
    model = TridiagSpectral(12, 9, 4)
    assert "TridiagSpectral(\n  num_features=12, dim=9, k=4, backend='numba'\n  (diag): Linear" in repr(model)
    x = torch.rand(5, 12)
    assert model(x).shape == (5,) and model(x).dtype == torch.float32
    assert model(x[0]).shape == ()
    several = TridiagSpectral(3, 4, [0, -1], backend="scipy", dtype=torch.float64)
    y = several(torch.rand(2, 3, dtype=torch.float64))
    assert y.shape == (2, 2) and bool((y[:, 0] <= y[:, 1]).all())
    one = TridiagSpectral(3, 1, 0)
    x = torch.rand(4, 3)
    torch.testing.assert_close(one(x), one.diag(x)[:, 0])
    assert sum(p.numel() for p in one.parameters()) == 4
    with pytest.raises(ValueError, match=r"backend must be one of"):
        TridiagSpectral(3, 4, 0, backend="torch")
    with pytest.raises(ValueError, match=r"k must be in \[-dim, dim\) = \[-4, 4\), got 4"):
        TridiagSpectral(3, 4, 4)


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((3, 4, 1.7), TypeError, r"k must be an int, got 1.7"),
        ((3, 4, [0, 1.5]), TypeError, r"k must be an int, got 1.5"),
        ((3, 4, True), TypeError, r"k must be an int, got True"),
        ((3, 4.5, 1), TypeError, r"dim must be an int, got 4.5"),
        ((3.0, 4, 1), TypeError, r"num_features must be an int, got 3.0"),
        ((3, 0, 0), ValueError, r"dim must be >= 1, got 0"),
        ((0, 4, 0), ValueError, r"num_features must be >= 1, got 0"),
        ((3, 4, []), ValueError, r"k must not be an empty sequence"),
        ((3, 4, [0, -5]), ValueError, r"k must be in \[-dim, dim\)"),
    ],
)
def test_strict_arguments(args, error, message):
    with pytest.raises(error, match=message):
        TridiagSpectral(*args)


def test_gradients_reach_all_parameters():
    model = TridiagSpectral(5, 6, [1, 2], dtype=torch.float64)
    model(torch.rand(8, 5, dtype=torch.float64)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def toy_problem(seed):
    """Label 1 iff a 12-bit vector has exactly 2 or 5 ones; a random half for training."""
    x = ((torch.arange(4096)[:, None] >> torch.arange(12)) & 1).to(torch.float32)
    ones = x.sum(1)
    y = ((ones == 2) | (ones == 5)).to(torch.float32)
    perm = torch.randperm(4096, generator=torch.Generator().manual_seed(seed))
    return x[perm[:2048]], y[perm[:2048]], x[perm[2048:]], y[perm[2048:]]


def test_learns_toy_problem():
    # Seeded; 20 epochs of batch 64 reached 98-99.9 % test accuracy over 5 seeds
    # (float32 and float64) in about a second of compute here.
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = toy_problem(seed=0)
    model = TridiagSpectral(12, 9, 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(20):
        for idx in torch.randperm(2048).split(64):
            optimizer.zero_grad()
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = ((model(x_test) > 0).float() == y_test).float().mean().item()
    assert accuracy >= 0.95


def test_example_script_runs(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_spectral.py"), "--epochs", "2", "--out", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout
