"""Known answers for the rank law with a noise offset (validation §23): noisy surfaces and 3-manifolds.

Shapes generated here (never suite clouds): a uniform sphere S^2, a flat 2-torus, a square [0, 1]^2 and a sphere S^3,
rotated into R^D, with the suite's isotropic noise (1 % or 5 % of the RMS radius). Each draw is searched once
(``estimate_dimension``'s split and search) and read by the rule with the rank law and without it
(``RANK_FLOOR_SHARE = -1``), so the two rules see the same search.

usage: OMP_NUM_THREADS=1 PYTHONPATH=. python -m studies.noise_rank16 [--draws 3] [--sizes 2500 20000]
"""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Callable

import numpy as np

import lightning_repgap._rank_floor as rank_floor
from lightning_repgap._width import numerical_width
from lightning_repgap.dimension import trusted_dimension
from lightning_repgap.gap import gap_curve


def _rotate_and_noise(x: np.ndarray, ambient: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    x = np.pad(x, ((0, 0), (0, ambient - x.shape[1])))
    x = x @ np.linalg.qr(rng.standard_normal((ambient, ambient)))[0]
    radius = math.sqrt(float(np.var(x, axis=0).sum()))
    return x + rng.standard_normal(x.shape) * (noise * radius / math.sqrt(ambient))


def sphere(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform on S^k in R^(k+1)."""
    g = rng.standard_normal((n, k + 1))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def flat_torus(n: int, rng: np.random.Generator) -> np.ndarray:
    """The flat 2-torus (Clifford torus) in R^4."""
    a = rng.random((n, 2)) * 2 * np.pi
    return np.concatenate([np.cos(a), np.sin(a)], 1)


SHAPES: dict[str, tuple[int, Callable[[int, np.random.Generator], np.ndarray]]] = {
    "sphere S^2": (2, lambda n, rng: sphere(n, 2, rng)),
    "flat 2-torus": (2, flat_torus),
    "square": (2, lambda n, rng: rng.random((n, 2))),
    "sphere S^3": (3, lambda n, rng: sphere(n, 3, rng)),
}


def read(x: np.ndarray, seed: int) -> tuple[tuple[float, str], tuple[float, str]]:
    """The rule's reading with and without the rank law, on one search (``estimate_dimension``'s split)."""
    order = np.random.default_rng(seed).permutation(x.shape[0])
    m = round(0.2 * x.shape[0])
    bank, queries = x[order[m:]], x[order[:m]]
    curve = gap_curve(bank, queries, seed=seed, n_neighbors=20, neighbor_queries=m)
    assert curve.knn_dist_sq is not None
    width = numerical_width(bank)
    out = []
    for share in (rank_floor.RANK_FLOOR_SHARE, -1.0):
        saved, rank_floor.RANK_FLOOR_SHARE = rank_floor.RANK_FLOOR_SHARE, share
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = trusted_dimension(
                    curve.sizes,
                    curve.per_query,
                    np.sqrt(curve.knn_dist_sq),
                    concentration=curve.concentration,
                    seed=seed,
                    ambient=width,
                )
        finally:
            rank_floor.RANK_FLOOR_SHARE = saved
        out.append((est.dim, est.method))
    return out[0], out[1]


def main() -> None:
    """Print the readings with and without the rank law."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2500, 20000])
    ap.add_argument("--ambient", type=int, nargs="+", default=[6, 10, 16, 32])
    ap.add_argument("--noise", type=float, nargs="+", default=[0.01, 0.05])
    args = ap.parse_args()
    for name, (d, make) in SHAPES.items():
        for noise in args.noise:
            for ambient in args.ambient:
                for n in args.sizes:
                    new, old = [], []
                    for seed in range(args.draws):
                        rng = np.random.default_rng(1000 * seed + ambient)
                        a, b = read(_rotate_and_noise(make(n, rng), ambient, noise, rng), seed)
                        new.append(a)
                        old.append(b)
                    fmt = " ".join(f"{v:.2f}{'*' if m == 'noise_floor' else ''}" for v, m in new)
                    fmt_old = " ".join(f"{v:.2f}{'*' if m == 'noise_floor' else ''}" for v, m in old)
                    print(f"{name:13s} d={d} {noise:.0%} R^{ambient:<2d} n={n:>5}: new {fmt} | old {fmt_old}")


if __name__ == "__main__":
    main()
