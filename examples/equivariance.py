"""Equivariance lowers the dimension: the gap of shift-invariant representations closes faster.

Every input is a periodic signal of length 32 made from two latent parameters (u, v) in [0, 1]^2, which set the
amplitudes (and one relative phase) of its Fourier modes 1, 2 and 4, and then shifted circularly by a random,
continuous amount s in [0, 32). The signal is band-limited (nothing above mode 4 of the 16 a length-32 signal
holds), so a shift by any real s is an exact symmetry of the sampled data, not an interpolation. The label
(4 classes: which half of [0, 1] u and v fall in) depends on (u, v) only.

The raw signals therefore fill a 3-dimensional manifold (2 latents times the shift circle). A representation that
is invariant to the shift cannot see the circle: its dimension is 2. DESIGN §1 predicts the gap dimension to
drop by the dimension of the group (1 here), and the gap G(n) ~ n^(-2/d) to close faster: slope -2/3 versus -1.

Part 1 measures this without any training, on three views of the same data: the raw signal, the signal shifted
back to a canonical position (phase of mode 1 set to 0) and its |FFT|. Part 2 trains three small classifiers and
measures their feature layers: a plain MLP (which can only learn the invariance approximately, from data), a
circular CNN with global average pooling (invariant to whole-sample shifts by construction) and an MLP on |FFT|
(invariant to every shift). Everything uses the functional ``representation_gap``: bank = training
representations, queries = held-out ones. Runs on a CPU in well under a minute.

What it shows (seeds 0-3): the raw signals measure 2.8-3.0 and both invariant views 1.95-2.05, with slopes of about
-0.7 and -1.0. The plain MLP's features keep the shift direction (about 3) while both invariant models measure
about 2; the |FFT| model also has the best test accuracy. The circular CNN is exactly invariant only to
whole-sample shifts; the remaining sub-sample variation of its features is too small to register.

    python examples/equivariance.py [--bank 8192] [--queries 2048] [--epochs 15]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from torch import nn

from lightning_repgap import GapCurve, gap_curve, gap_dimension, representation_gap

LENGTH = 32
LATENT_DIM = 2
N_CLASSES = 4


def make_signals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` signals, their latents (u, v) and labels; each signal is shifted by a uniform real amount."""
    latent = rng.random((n, LATENT_DIM))
    u, v = latent[:, 0], latent[:, 1]
    coef = np.zeros((n, 5), dtype=np.complex128)  # Fourier coefficients of modes 0..4 before the shift
    coef[:, 1] = 1.0 + u
    coef[:, 2] = (0.3 + 0.7 * v) * np.exp(1j * np.pi * v)  # the relative phase varies too: |FFT| drops it
    coef[:, 4] = 0.3 * u * v
    shift = rng.random(n) * LENGTH
    modes = np.arange(5)
    phase = np.exp(-2j * np.pi * np.outer(shift, modes) / LENGTH)  # x(t - s) in the Fourier domain
    basis = np.exp(2j * np.pi * np.outer(modes, np.arange(LENGTH)) / LENGTH)
    signals = np.real((coef * phase) @ basis).astype(np.float32)
    labels = (u > 0.5).astype(np.int64) + 2 * (v > 0.5).astype(np.int64)
    return signals, latent, labels


def canonicalise(x: np.ndarray) -> np.ndarray:
    """Shift each signal (by a real amount, in the Fourier domain) so that its first mode has phase 0."""
    spec = np.fft.rfft(x, axis=1)
    angle = np.angle(spec[:, 1:2])
    return np.fft.irfft(spec * np.exp(-1j * angle * np.arange(spec.shape[1])), n=x.shape[1], axis=1)


def fft_magnitude(x: np.ndarray) -> np.ndarray:
    """|FFT|: invariant to every circular shift, by the shift theorem."""
    return np.abs(np.fft.rfft(x, axis=1))


class PlainMLP(nn.Module):
    """No symmetry built in: must learn from examples that a shifted signal has the same label."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Linear(LENGTH, 128), nn.ReLU(), nn.Linear(128, width), nn.ReLU())
        self.head = nn.Linear(width, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class CircularCNN(nn.Module):
    """Circular convolutions (shift-equivariant) then a global average (shift-invariant)."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(1, 32, 5, padding=2, padding_mode="circular"),
            nn.ReLU(),
            nn.Conv1d(32, 64, 5, padding=2, padding_mode="circular"),
            nn.ReLU(),
        )
        self.features = nn.Sequential(nn.Linear(64, width), nn.ReLU())
        self.head = nn.Linear(width, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.conv(x[:, None]).mean(dim=-1)))


class FFTMLP(nn.Module):
    """An MLP on |FFT|: exactly invariant to all shifts, including fractional ones."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Linear(LENGTH // 2 + 1, 128), nn.ReLU(), nn.Linear(128, width), nn.ReLU())
        self.head = nn.Linear(width, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(torch.fft.rfft(x).abs()))


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xs), generator=gen)
        for batch in perm.split(128):
            loss = nn.functional.cross_entropy(model(xs[batch]), ys[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def embed(model: nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output of ``model.features`` (the penultimate layer) and the predicted class."""
    captured: list[torch.Tensor] = []
    hook = model.features.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        logits = model(torch.from_numpy(x))
    finally:
        hook.remove()
    return captured[0].numpy(), logits.argmax(dim=1).numpy()


def measure(bank: np.ndarray, queries: np.ndarray) -> tuple[dict[str, float], GapCurve]:
    """``representation_gap`` plus the gap curve and its raw log-log slope (-2/d when the law holds)."""
    values = {k: float(v) for k, v in representation_gap(bank, queries).items()}
    curve = gap_curve(bank, queries)
    values["slope"] = gap_dimension(curve.sizes, curve.per_query, n_bootstrap=0).slope
    return values, curve


def row(name: str, m: dict[str, float], acc: str = "") -> str:
    ci = f"{m['dim']:.2f} [{m['dim_low']:.2f}, {m['dim_high']:.2f}]"
    return (
        f"{name:>26} {ci:>19} {m['law_r2']:6.3f} {m['dim_twonn']:6.2f} {m['gap_norm']:9.2e} {m['slope']:7.3f} {acc:>8}"
    )


HEADER = (
    f"{'representation':>26} {'dim [95% CI]':>19} {'R^2':>6} {'TwoNN':>6} {'gap_norm':>9} {'slope':>7} {'test_acc':>8}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bank", type=int, default=8192, help="training signals (the bank; part 2 trains on them)")
    parser.add_argument("--queries", type=int, default=2048, help="held-out signals (queries and test set)")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs of each model in part 2")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    rng = np.random.default_rng(args.seed)
    x_train, _, y_train = make_signals(args.bank, rng)
    x_test, _, y_test = make_signals(args.queries, rng)
    print(
        f"signals of length {LENGTH}: {LATENT_DIM} latent parameters + 1 continuous circular shift; "
        f"bank n={args.bank}, queries m={args.queries}"
    )
    print(f"expected dimension: {LATENT_DIM + 1} with the shift, {LATENT_DIM} without; slope -2/d\n")

    print("Part 1: the same data, with and without the shift (no training)")
    print(HEADER)
    views = {
        "raw signal": lambda x: x,
        "canonicalised (shift out)": canonicalise,
        "|FFT| (shift-invariant)": fft_magnitude,
    }
    curves = {}
    for name, view in views.items():
        values, curves[name.split(" ")[0]] = measure(view(x_train), view(x_test))
        print(row(name, values))

    print("\nG(n) / G(n0): the gap of the invariant views closes faster")
    sizes = next(iter(curves.values())).sizes
    print(f"{'n':>6} " + " ".join(f"{name:>14}" for name in curves) + f" {'(n/n0)^-2/3':>12} {'(n/n0)^-1':>10}")
    for i, n in enumerate(sizes):
        ratios = " ".join(f"{c.gaps[i] / c.gaps[0]:14.4f}" for c in curves.values())
        print(f"{n:6d} {ratios} {(n / sizes[0]) ** (-2 / 3):12.4f} {(n / sizes[0]) ** -1.0:10.4f}")

    print(f"\nPart 2: trained classifiers ({args.epochs} epochs each), penultimate layer `features`")
    print(HEADER)
    for name, cls in (
        ("plain MLP", PlainMLP),
        ("circular CNN + avg pool", CircularCNN),
        ("|FFT| + MLP", FFTMLP),
    ):
        torch.manual_seed(args.seed)
        model = train(cls(), x_train, y_train, args.epochs, args.seed)
        z_train, _ = embed(model, x_train)
        z_test, pred = embed(model, x_test)
        acc = float((pred == y_test).mean())
        print(row(name, measure(z_train, z_test)[0], f"{acc:.3f}"))


if __name__ == "__main__":
    main()
