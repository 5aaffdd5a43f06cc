"""Part 1 of the validation study: is the asymptotic law right, and how good is each dimension estimator?

A suite of point clouds whose intrinsic dimension is known by construction (flat and curved, compact and not,
with and without boundary, products, non-uniform densities, ambient noise; d from 1 to 30, ambient D up to 256).
For each cloud: the calibrated gap-law dimension (a bank/query split, one blocked search), TwoNN and MLE over the
whole cloud, and, where the volume is known, the measured G(n_max) against the closed form of DESIGN §1.

The suite has two parts. ``tuned`` clouds are the shapes the calibration tables were built from (uniform balls,
spheres and flat tori; ``scripts/build_calibration.py``) plus the cubes of the known-answer tests: they were
looked at while the estimator was developed. ``held_out`` clouds were added for this study and nothing was
changed after seeing them; their errors are the honest ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from lightning_repgap.dimension import gap_dimension, mle_dimension, twonn_dimension
from lightning_repgap.gap import gap_curve
from lightning_repgap.manifolds import (
    embed,
    predicted_gap,
    sample_ball,
    sample_cube,
    sample_sphere,
    sample_torus,
    sphere_volume,
    unit_ball_volume,
)
from lightning_repgap.search import nearest

Sampler = Callable[[int, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Cloud:
    """One point cloud of the suite: a sampler of ``(n, D)`` points whose intrinsic dimension is ``dim``."""

    name: str
    dim: int
    ambient: int
    split: str  # "tuned" or "held_out"
    sample: Sampler
    volume: float | None = None  # manifold volume when the closed-form G(n) applies (uniform, no noise)


@dataclass
class CloudResult:
    """What the study measured on one cloud."""

    name: str
    split: str
    dim: int
    ambient: int
    n: int
    gap_dim: float
    gap_dim_low: float
    gap_dim_high: float
    twonn: float
    mle: float
    law_r2: float
    gap_over_predicted: float | None
    seconds: float

    def rel_error(self, estimator: str) -> float:
        """``|estimate - d| / d`` of ``estimator`` (``"gap_dim"``, ``"twonn"`` or ``"mle"``)."""
        return abs(float(getattr(self, estimator)) - self.dim) / self.dim


ESTIMATORS = ("gap_dim", "twonn", "mle")


def _embedded(points: Callable[[int, np.random.Generator], np.ndarray], ambient: int) -> Sampler:
    """Sample with ``points`` and rotate into ``R^ambient`` (distances unchanged)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        return embed(points(n, rng), ambient, rng)

    return sample


def _swiss_roll(n: int, rng: np.random.Generator) -> np.ndarray:
    """The classic Swiss roll (non-uniform in area: t is uniform, the arc length grows with t)."""
    t = 1.5 * math.pi * (1 + 2 * rng.random(n))
    h = 21 * rng.random(n)
    return np.stack([t * np.cos(t), h, t * np.sin(t)], axis=1)


def _closed_curve(ambient: int, seed: int) -> Sampler:
    """A smooth closed curve (a 1-manifold) through ``R^ambient`` made of random low Fourier modes."""
    coef = np.random.default_rng(seed).standard_normal((2, 4, ambient)) / np.arange(1, 5)[None, :, None]

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.random(n)
        k = np.arange(1, 5)
        return np.cos(np.outer(t, k)) @ coef[0] + np.sin(np.outer(t, k)) @ coef[1]

    return sample


def _sine_features(d: int, ambient: int, scale: float, seed: int) -> Sampler:
    """A curved embedding of the cube ``[0, 1]^d``: random Fourier features ``sin(W x + b)`` into ``R^ambient``."""
    frng = np.random.default_rng(seed)
    w = frng.standard_normal((d, ambient)) * scale
    b = frng.random(ambient) * 2 * math.pi

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        return np.sin(sample_cube(n, d, rng) @ w + b)

    return sample


def _product(
    *parts: Callable[[int, np.random.Generator], np.ndarray],
) -> Callable[[int, np.random.Generator], np.ndarray]:
    """Independent uniform samples of each factor, concatenated: uniform on the product manifold."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        return np.concatenate([p(n, rng) for p in parts], axis=1)

    return sample


def _noisy(sampler: Sampler, sigma: float) -> Sampler:
    """Add isotropic Gaussian noise of standard deviation ``sigma`` per ambient coordinate."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        x = sampler(n, rng)
        return x + sigma * rng.standard_normal(x.shape)

    return sample


def _gaussian(d: int) -> Callable[[int, np.random.Generator], np.ndarray]:
    return lambda n, rng: rng.standard_normal((n, d))


def _sphere(d: int) -> Callable[[int, np.random.Generator], np.ndarray]:
    return lambda n, rng: sample_sphere(n, d, rng)


def _torus(d: int) -> Callable[[int, np.random.Generator], np.ndarray]:
    return lambda n, rng: sample_torus(n, d, rng)


def _cube(d: int) -> Callable[[int, np.random.Generator], np.ndarray]:
    return lambda n, rng: sample_cube(n, d, rng)


def _ball(d: int) -> Callable[[int, np.random.Generator], np.ndarray]:
    return lambda n, rng: sample_ball(n, d, rng)


def suite() -> list[Cloud]:
    """The study's point clouds: 12 ``tuned`` and 16 ``held_out``, d from 1 to 30, D from 8 to 256."""
    tuned = [Cloud(f"sphere S^{d}", d, 64, "tuned", _embedded(_sphere(d), 64), sphere_volume(d)) for d in (2, 4, 8, 16)]
    tuned += [Cloud(f"flat torus T^{d}", d, 64, "tuned", _embedded(_torus(d), 64), 1.0) for d in (2, 4, 8, 16)]
    tuned += [Cloud(f"cube [0,1]^{d}", d, 64, "tuned", _embedded(_cube(d), 64), 1.0) for d in (2, 4, 8, 16)]
    held_out = [
        Cloud("closed curve", 1, 32, "held_out", _closed_curve(32, seed=11)),
        Cloud("Swiss roll", 2, 3, "held_out", _swiss_roll),
        Cloud("Swiss roll in R^64", 2, 64, "held_out", _embedded(_swiss_roll, 64)),
        Cloud("ball B^3", 3, 8, "held_out", _embedded(_ball(3), 8), unit_ball_volume(3)),
        Cloud("S^2 x T^2", 4, 64, "held_out", _embedded(_product(_sphere(2), _torus(2)), 64)),
        Cloud("sine features of [0,1]^3", 3, 64, "held_out", _sine_features(3, 64, 1.5, seed=12)),
        Cloud("sine features of [0,1]^6", 6, 128, "held_out", _sine_features(6, 128, 1.0, seed=13)),
        Cloud("Gaussian N(0, I_5)", 5, 32, "held_out", _embedded(_gaussian(5), 32)),
        Cloud("S^3 x [0,1]^3", 6, 64, "held_out", _embedded(_product(_sphere(3), _cube(3)), 64)),
        Cloud("ball B^10", 10, 64, "held_out", _embedded(_ball(10), 64), unit_ball_volume(10)),
        Cloud("S^5 x S^5", 10, 128, "held_out", _embedded(_product(_sphere(5), _sphere(5)), 128)),
        Cloud("S^4 + noise 0.01", 4, 64, "held_out", _noisy(_embedded(_sphere(4), 64), 0.01)),
        Cloud("T^8 + noise 0.002", 8, 256, "held_out", _noisy(_embedded(_torus(8), 256), 0.002)),
        Cloud("sphere S^12 in R^256", 12, 256, "held_out", _embedded(_sphere(12), 256), sphere_volume(12)),
        Cloud("cube [0,1]^24", 24, 64, "held_out", _embedded(_cube(24), 64), 1.0),
        Cloud("sphere S^30", 30, 128, "held_out", _embedded(_sphere(30), 128), sphere_volume(30)),
    ]
    return tuned + held_out


def measure_cloud(cloud: Cloud, *, n_bank: int, n_queries: int, n_neighbors: int = 20, seed: int = 0) -> CloudResult:
    """Sample ``n_bank + n_queries`` points of ``cloud`` and run the three estimators on them.

    The gap law uses the first ``n_bank`` points as the bank and the rest as queries; TwoNN and MLE use every point's
    neighbours among all the others (their usual, strongest setting).
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    x = cloud.sample(n_bank + n_queries, rng).astype(np.float64)
    bank, queries = x[:n_bank], x[n_bank:]
    curve = gap_curve(bank, queries, seed=seed)
    fit = gap_dimension(curve.sizes, curve.per_query, n_bootstrap=100, concentration=curve.concentration, seed=seed)
    dist_sq, _ = nearest(x, x, k=n_neighbors, exclude_self=True)
    dist = np.sqrt(dist_sq)
    ratio = None
    if cloud.volume is not None:
        ratio = curve.gap / float(predicted_gap(n_bank, cloud.dim, cloud.volume))
    return CloudResult(
        name=cloud.name,
        split=cloud.split,
        dim=cloud.dim,
        ambient=cloud.ambient,
        n=x.shape[0],
        gap_dim=fit.dim,
        gap_dim_low=fit.dim_low,
        gap_dim_high=fit.dim_high,
        twonn=twonn_dimension(dist),
        mle=mle_dimension(dist, n_neighbors=n_neighbors),
        law_r2=fit.r2,
        gap_over_predicted=ratio,
        seconds=time.perf_counter() - t0,
    )


def summarise(results: list[CloudResult]) -> dict[str, dict[str, float]]:
    """Mean relative error of each estimator on each split and on the whole suite."""
    out: dict[str, dict[str, float]] = {}
    for split in ("tuned", "held_out", "all"):
        rows = [r for r in results if split in ("all", r.split)]
        if rows:
            out[split] = {e: float(np.mean([r.rel_error(e) for r in rows])) for e in ESTIMATORS}
    return out


def run(*, n_bank: int, n_queries: int, clouds: list[Cloud] | None = None, seed: int = 0) -> dict[str, object]:
    """Measure every cloud of the suite; return the rows and the summary as plain JSON-able values."""
    results = [measure_cloud(c, n_bank=n_bank, n_queries=n_queries, seed=seed) for c in (clouds or suite())]
    return {"rows": [asdict(r) for r in results], "summary": summarise(results), "n_bank": n_bank}


__all__ = ["ESTIMATORS", "Cloud", "CloudResult", "measure_cloud", "run", "suite", "summarise"]
