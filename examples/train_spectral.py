"""Train an eigenvalue "neuron" on the 12-bit toy problem.

``TridiagSpectral(12, 9, 4)`` computes ``f(x) = w_4(A_0 + sum_i x_i A_i)``, the middle
eigenvalue of a 9x9 symmetric tridiagonal matrix that is affine in the input.  It learns
the label "exactly 2 or 5 of the 12 bits are set" (not linearly separable, not monotone
in the bit count) from half of the 4096 vectors, with Adam and BCEWithLogitsLoss.

Run::

    python examples/train_spectral.py [--epochs 20] [--backend numba|scipy] [--out spectral.png]

Prints the loss per epoch and the test accuracy; when matplotlib is installed it also saves
a PNG with the learning curve and the five eigenvalue curves ``w_k(A + x B)`` of random
5x5 tridiagonal ``A``, ``B`` (the piecewise-smooth nonlinearities such a neuron is made of).
"""

import argparse
import time

import torch
from tqdm import tqdm

from torch_bridge import TridiagSpectral, tridiag_eigvalsh


def toy_problem(seed):
    """All 12-bit vectors, label 1 iff exactly 2 or 5 ones; a random half for training."""
    x = ((torch.arange(4096)[:, None] >> torch.arange(12)) & 1).to(torch.float32)
    ones = x.sum(1)
    y = ((ones == 2) | (ones == 5)).to(torch.float32)
    perm = torch.randperm(4096, generator=torch.Generator().manual_seed(seed))
    return x[perm[:2048]], y[perm[:2048]], x[perm[2048:]], y[perm[2048:]]


def train(epochs=20, batch_size=64, lr=0.1, seed=0, backend="numba"):
    """Train; returns ``(model, history)`` with per-epoch train loss and test accuracy."""
    torch.manual_seed(seed)
    x_train, y_train, x_test, y_test = toy_problem(seed)
    model = TridiagSpectral(12, 9, 4, backend=backend)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    history = {"loss": [], "accuracy": []}
    bar = tqdm(range(epochs), desc="training", unit="epoch")
    for _ in bar:
        total = 0.0
        for idx in torch.randperm(len(x_train)).split(batch_size):
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        with torch.no_grad():  # inference: eigenvalues only, no eigenvectors
            accuracy = ((model(x_test) > 0).float() == y_test).float().mean().item()
        history["loss"].append(total / len(x_train))
        history["accuracy"].append(accuracy)
        bar.set_postfix(loss=f"{history['loss'][-1]:.4f}", test_acc=f"{accuracy:.3f}")
    return model, history


def plot(history, path, seed=0):
    """Learning curve and w_k(A + x B) for random 5x5 tridiagonal A, B; returns False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    g = torch.Generator().manual_seed(seed)
    a_d, a_e, b_d, b_e = (torch.randn(n, generator=g, dtype=torch.float64) for n in (5, 4, 5, 4))
    x = torch.linspace(-3.0, 3.0, 601, dtype=torch.float64)[:, None]
    curves = tridiag_eigvalsh(a_d + x * b_d, a_e + x * b_e, list(range(5)))  # (601, 5)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    epochs = range(1, len(history["loss"]) + 1)
    ax1.plot(epochs, history["loss"], label="train loss (BCE)")
    ax1.plot(epochs, history["accuracy"], label="test accuracy")
    ax1.set_xlabel("epoch")
    ax1.set_title("TridiagSpectral(12, 9, k=4) on the 12-bit toy problem")
    ax1.legend()
    for k in range(5):
        ax2.plot(x[:, 0], curves[:, k], label=f"$\\lambda_{k}$")
    ax2.set_xlabel("x")
    ax2.set_title("$\\lambda_k(A + xB)$, random 5x5 tridiagonal A, B")
    ax2.legend()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=["numba", "scipy"], default="numba")
    parser.add_argument("--out", default="spectral.png", help="PNG path for the plots (needs matplotlib)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    model, history = train(args.epochs, args.batch_size, args.lr, args.seed, args.backend)
    print(model)
    for epoch, (loss, accuracy) in enumerate(zip(history["loss"], history["accuracy"]), 1):
        print(f"epoch {epoch:3d}  train loss {loss:.4f}  test accuracy {accuracy:.4f}")
    print(f"final test accuracy {history['accuracy'][-1]:.4f} ({time.perf_counter() - start:.1f} s)")
    if plot(history, args.out, args.seed):
        print(f"saved {args.out}")
    else:
        print("matplotlib not installed: no plot (pip install matplotlib)")


if __name__ == "__main__":
    main()
