r"""Part 2 of the validation study: does a symmetry lower the dimension, and by how much?

Three data sets with an exact continuous symmetry, each made from 2 latent parameters and a group element drawn
uniformly:

* ``shift``: band-limited periodic signals of length 32, circularly shifted by a real amount (group: the circle,
  dimension 1);
* ``rotation``: patterns of 5 points in the plane, rotated about their centroid (group SO(2), dimension 1);
* ``two shifts``: two-channel signals whose channels are shifted independently (group: the 2-torus, dimension 2).

For each, the gap dimension of the raw data (expected: 2 + group dimension) is compared with that of a
representation invariant to the group (canonicalised: the group element is undone; expected 2) and, for the
one-dimensional groups, with the *orbit-minimised* gap, :math:`\\min_g \\lVert q - g\\,r \\rVert^2`, computed by
searching a bank that holds every training point under ``K`` evenly spaced group elements. For the shift data two
classifiers are also trained: a plain MLP, which can learn the invariance only from examples, and the same MLP
averaged over all 32 whole-sample shifts (invariant by construction); their penultimate features are measured.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from lightning_repgap.dimension import gap_dimension
from lightning_repgap.gap import gap_curve, geometric_sizes

LENGTH = 32
N_POINTS = 5


@dataclass
class Measurement:
    """The gap dimension of one view of one data set."""

    data: str
    view: str
    group_dim: int
    expected: int
    dim: float
    dim_low: float
    dim_high: float
    slope: float
    test_acc: float | None = None


def _band_limited(latent: np.ndarray, shift: np.ndarray, rotate_mode2: bool = True) -> np.ndarray:
    """Signals from latents (u, v): Fourier modes 1, 2 and 4, then a circular shift by a real ``shift``."""
    u, v = latent[:, 0], latent[:, 1]
    coef = np.zeros((latent.shape[0], 5), dtype=np.complex128)
    coef[:, 1] = 1.0 + u
    coef[:, 2] = (0.3 + 0.7 * v) * (np.exp(1j * np.pi * v) if rotate_mode2 else 1.0)
    coef[:, 4] = 0.3 * u * v
    modes = np.arange(5)
    phase = np.exp(-2j * np.pi * np.outer(shift, modes) / LENGTH)
    basis = np.exp(2j * np.pi * np.outer(modes, np.arange(LENGTH)) / LENGTH)
    return np.real((coef * phase) @ basis)


def shift_signals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` shifted signals ``(n, 32)`` and their labels (which half of [0, 1] each latent is in)."""
    latent = rng.random((n, 2))
    x = _band_limited(latent, rng.random(n) * LENGTH)
    return x, (latent[:, 0] > 0.5).astype(np.int64) + 2 * (latent[:, 1] > 0.5).astype(np.int64)


def canonicalise_shift(x: np.ndarray) -> np.ndarray:
    """Undo the shift of each channel of ``(n, C * 32)`` signals: the phase of mode 1 is set to 0."""
    channels = x.reshape(x.shape[0], -1, LENGTH)
    spec = np.fft.rfft(channels, axis=-1)
    angle = np.angle(spec[..., 1:2])
    out = np.fft.irfft(spec * np.exp(-1j * angle * np.arange(spec.shape[-1])), n=LENGTH, axis=-1)
    return out.reshape(x.shape[0], -1)


def shift_orbit_distances(queries: np.ndarray, bank: np.ndarray, *, grid: int = 64, chunk: int = 32) -> np.ndarray:
    r"""``(m, n)`` orbit distances :math:`\min_s \lVert q - \mathrm{shift}_s\, r \rVert^2` over real shifts ``s``.

    By Parseval the squared distance is :math:`|q|^2 + |r|^2 - 2 c(s)` with the cross-correlation
    :math:`c(s) = \sum_k w_k \mathrm{Re}(Q_k \bar R_k e^{i \omega k s})`, a trigonometric polynomial in ``s``:
    its maximum is located on a ``grid`` of shifts and then refined by Newton steps, so the result is exact to
    float64 round-off rather than to the grid spacing (a bank expanded by ``K`` discrete copies would leave an
    error of order :math:`(L / K)^2` that biases the fitted dimension upwards).
    """
    q_spec, r_spec = np.fft.rfft(queries, axis=1), np.fft.rfft(bank, axis=1)
    # Only the modes the data use (band-limited signals): the others add nothing but cost.
    modes = np.flatnonzero(np.abs(r_spec).max(axis=0) > 1e-9 * np.abs(r_spec).max())
    weight = np.where((modes == 0) | (modes == LENGTH // 2), 1.0, 2.0) / LENGTH  # Parseval for a real rfft
    omega = 2 * np.pi * modes / LENGTH
    qs = torch.from_numpy(q_spec[:, modes] * weight)
    rs = torch.from_numpy(np.conj(r_spec[:, modes]))
    om = torch.from_numpy(omega)
    s_grid = torch.arange(grid, dtype=torch.float64) * LENGTH / grid
    norms = (queries**2).sum(1)[:, None] + (bank**2).sum(1)[None, :]
    out = np.empty((queries.shape[0], bank.shape[0]))
    for lo in range(0, queries.shape[0], chunk):
        prod = qs[lo : lo + chunk, None, :] * rs[None]  # (c, n, F) complex
        # c(s) on the grid, then Newton on c'(s) = 0 from the best grid point.
        phase = torch.exp(1j * om[:, None] * s_grid[None, :])  # (F, G)
        corr = (prod @ phase).real  # (c, n, G)
        s = s_grid[corr.argmax(dim=-1)]
        for _ in range(4):
            rot = prod * torch.exp(1j * om * s[..., None])
            d1 = (rot * (1j * om)).real.sum(-1)
            d2 = -(rot * om**2).real.sum(-1)
            s = s - d1 / torch.where(d2 < 0, d2, torch.full_like(d2, -1e-12))
        best = (prod * torch.exp(1j * om * s[..., None])).real.sum(-1)
        best = torch.maximum(best, corr.amax(dim=-1))  # never worse than the grid
        out[lo : lo + chunk] = norms[lo : lo + chunk] - 2 * best.numpy()
    return np.maximum(out, 0.0)


def two_shift_signals(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 64)``: two channels sharing latents (u, v), each shifted by its own real amount."""
    latent = rng.random((n, 2))
    first = _band_limited(latent, rng.random(n) * LENGTH)
    second = _band_limited(latent[:, ::-1], rng.random(n) * LENGTH, rotate_mode2=False)
    return np.concatenate([first, second], axis=1)


def _pattern(latent: np.ndarray) -> np.ndarray:
    """``(n, 5, 2)`` point patterns whose shape depends smoothly on the latents (u, v); centroid at 0."""
    u, v = latent[:, :1], latent[:, 1:]
    angles = np.array([0.0, 1.1, 2.3, 3.6, 4.9])[None, :] + 0.6 * u * np.sin(np.arange(N_POINTS))[None, :]
    radii = 1.0 + 0.5 * v * np.cos(2 * np.arange(N_POINTS))[None, :] + 0.3 * u
    pts = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=-1)
    return pts - pts.mean(axis=1, keepdims=True)


def _rotate(pts: np.ndarray, theta: np.ndarray) -> np.ndarray:
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    return np.stack([c * pts[..., 0] - s * pts[..., 1], s * pts[..., 0] + c * pts[..., 1]], axis=-1)


def rotated_patterns(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 10)``: 5-point patterns rotated by a uniform angle, flattened."""
    pts = _rotate(_pattern(rng.random((n, 2))), rng.random(n) * 2 * math.pi)
    return pts.reshape(n, -1)


def canonicalise_rotation(x: np.ndarray) -> np.ndarray:
    """Rotate each pattern so that its first point lies on the positive x axis."""
    pts = x.reshape(x.shape[0], N_POINTS, 2)
    return _rotate(pts, -np.arctan2(pts[:, 0, 1], pts[:, 0, 0])).reshape(x.shape[0], -1)


def rotation_orbit_distances(queries: np.ndarray, bank: np.ndarray) -> np.ndarray:
    r"""``(m, n)`` exact orbit distances :math:`\min_\theta \lVert q - R_\theta r \rVert^2` of flattened patterns.

    With the points as complex numbers a rotation multiplies by :math:`e^{i\theta}`, so the minimum is
    :math:`|q|^2 + |r|^2 - 2 |\langle q, r \rangle|` (2-D Procrustes without reflection), no search over angles.
    """
    qc = queries[:, 0::2] + 1j * queries[:, 1::2]
    rc = bank[:, 0::2] + 1j * bank[:, 1::2]
    norms = (queries**2).sum(1)[:, None] + (bank**2).sum(1)[None, :]
    return np.maximum(norms - 2 * np.abs(qc @ rc.conj().T), 0.0)


def _fit(bank: np.ndarray, queries: np.ndarray) -> tuple[float, float, float, float]:
    """Calibrated gap dimension [95 % CI] and the raw log-log slope of ``queries`` against ``bank``."""
    curve = gap_curve(bank, queries)
    fit = gap_dimension(curve.sizes, curve.per_query, concentration=curve.concentration)
    return fit.dim, fit.dim_low, fit.dim_high, fit.slope


def _fit_orbit(distances: np.ndarray) -> tuple[float, float, float, float]:
    """The same fit from an ``(m, n)`` matrix of orbit distances (bank already in random order)."""
    sizes = geometric_sizes(distances.shape[1], min_size=16)
    per_query = np.stack([distances[:, :n].min(axis=1) for n in sizes])
    # The orbit distance lives on the quotient space, whose shape no Euclidean concentration describes: calibrate
    # against uniform balls (the correction is below 1 % at d <= 3).
    fit = gap_dimension(sizes, per_query)
    return fit.dim, fit.dim_low, fit.dim_high, fit.slope


class _MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Linear(LENGTH, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.head = nn.Linear(64, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _ShiftAveraged(_MLP):
    """The same MLP with its features averaged over all 32 whole-sample circular shifts of the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        shifted = torch.stack([torch.roll(x, s, dims=1) for s in range(LENGTH)], dim=1)  # (B, 32, L)
        return self.features(shifted).mean(dim=1)


def _train(model: _MLP, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> _MLP:
    """Adam, batches of 128, one thread (small models train faster without thread synchronisation)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_loop(model, x, y, epochs, seed)
    finally:
        torch.set_num_threads(threads)


def _train_loop(model: _MLP, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> _MLP:
    gen = torch.Generator().manual_seed(seed)
    xs, ys = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(xs), generator=gen).split(128):
            loss = nn.functional.cross_entropy(model(xs[batch]), ys[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def _features(model: _MLP, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs = torch.from_numpy(x.astype(np.float32))
    z = model.embed(xs) if isinstance(model, _ShiftAveraged) else model.features(xs)
    return z.double().numpy(), model.head(z).argmax(dim=1).numpy()


def run(*, n_bank: int, n_queries: int, epochs: int, seed: int = 0) -> dict[str, object]:
    """Measure every view of every data set; return rows and the dimension drops as plain JSON-able values."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    rows: list[Measurement] = []

    def add(
        data: str,
        view: str,
        group_dim: int,
        expected: int,
        fit: tuple[float, ...],
        acc: float | None = None,
    ) -> None:
        dim, low, high, slope = fit
        rows.append(Measurement(data, view, group_dim, expected, dim, low, high, slope, test_acc=acc))

    views: list[tuple[str, int, Callable[[int, np.random.Generator], np.ndarray], Callable[..., np.ndarray]]] = [
        ("shift", 1, lambda n, r: shift_signals(n, r)[0], canonicalise_shift),
        ("rotation", 1, rotated_patterns, canonicalise_rotation),
        ("two shifts", 2, two_shift_signals, canonicalise_shift),
    ]
    for data, group_dim, sample, canonicalise in views:
        bank, queries = sample(n_bank, rng), sample(n_queries, rng)
        add(data, "raw", group_dim, 2 + group_dim, _fit(bank, queries))
        add(data, "canonicalised", group_dim, 2, _fit(canonicalise(bank), canonicalise(queries)))
        if group_dim == 1:
            orbit_distances = shift_orbit_distances if data == "shift" else rotation_orbit_distances
            add(data, "orbit-minimised gap", group_dim, 2, _fit_orbit(orbit_distances(queries, bank)))

    x_train, y_train = shift_signals(n_bank, rng)
    x_test, y_test = shift_signals(n_queries, rng)
    for name, cls in (("plain MLP features", _MLP), ("shift-averaged MLP features", _ShiftAveraged)):
        torch.manual_seed(seed)
        model = _train(cls(), x_train, y_train, epochs, seed)
        z_train, _ = _features(model, x_train)
        z_test, pred = _features(model, x_test)
        add("shift", name, 1, 3 if cls is _MLP else 2, _fit(z_train, z_test), float((pred == y_test).mean()))

    drops = {}
    for data, group_dim, *_ in views:
        raw = next(r.dim for r in rows if r.data == data and r.view == "raw")
        drops[data] = {
            r.view: {"drop": raw - r.dim, "group_dim": group_dim}
            for r in rows
            if r.data == data and r.view not in ("raw", "plain MLP features", "shift-averaged MLP features")
        }
    plain = next(r.dim for r in rows if r.view == "plain MLP features")
    averaged = next(r.dim for r in rows if r.view == "shift-averaged MLP features")
    drops["shift"]["trained: plain -> shift-averaged"] = {"drop": plain - averaged, "group_dim": 1}
    return {"rows": [asdict(r) for r in rows], "drops": drops, "seconds": time.perf_counter() - t0}
