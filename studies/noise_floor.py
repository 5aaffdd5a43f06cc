r"""Why the floor-corrected gap law reads noisy curves high (issue #14; validation §16).

How to run (from the repository root, with the package's venv; about four minutes)::

    OMP_NUM_THREADS=1 PYTHONPATH=. python -m studies.noise_floor

Known-answer families generated here (never suite clouds): a circle, a segment, a Lissajous 3:4:5 curve (uneven
speed, coming close to itself) and a flat 2-torus, embedded by a random rotation in ``R^D`` (D = 10, 16), with
isotropic Gaussian noise of 1 % or 5 % of the clean cloud's RMS radius (as :mod:`studies.dimension_suite` adds it),
at 2,500 and 20,000 points split as ``method="auto"`` splits a cloud. Each draw is searched twice, with and without
its noise (the same points, the same split and bank order), so the noise's true share of the gap,
``F(n) = G(n) - G_clean(n)``, is known at every bank size. Per draw it prints the trusted ``dim`` and its method,
the constant floor ``B`` of :func:`lightning_repgap._trusted_parts._floor_fit` as a share of ``F(n)`` at the bank
sizes the floor-corrected law is fitted on (median), and the *oracle* reading: the calibrated gap law of
``G - F = G_clean`` over those same sizes (what the floor-corrected law would read with the true floor).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lightning_repgap import _trusted_parts as tp
from lightning_repgap._width import numerical_width
from lightning_repgap.calibration import calibrate_dimension, fit_gap_law, slope_to_dimension
from lightning_repgap.dimension import DimensionEstimate, trusted_dimension
from lightning_repgap.gap import gap_curve


def _circle(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.random(n) * 2 * np.pi
    return np.stack([np.cos(t), np.sin(t)], 1)


def _segment(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random((n, 1))


def _lissajous(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.random(n) * 2 * np.pi
    return np.stack([np.sin(3 * t), np.sin(4 * t + 0.5), np.sin(5 * t + 1.0)], 1)


def _torus(n: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.random((n, 2)) * 2 * np.pi
    return np.concatenate([np.cos(a), np.sin(a)], 1)


FAMILIES: dict[str, tuple[Callable[[int, np.random.Generator], np.ndarray], int]] = {
    "circle": (_circle, 1),
    "segment": (_segment, 1),
    "Lissajous 3:4:5": (_lissajous, 1),
    "flat 2-torus": (_torus, 2),
}


def _law(sizes: np.ndarray, gaps: np.ndarray, concentration: float) -> float:
    _, slope, _ = fit_gap_law(sizes, np.log(gaps))
    return calibrate_dimension(float(slope_to_dimension(slope)), sizes, concentration)


@dataclass
class NoisyDraw:
    """A clean draw embedded in R^D, its noisy copy, both searched, and the trusted reading of the noisy one."""

    est: DimensionEstimate
    sizes: np.ndarray  # the bank sizes from 16 up (those the floor model fits on)
    gaps: np.ndarray  # the noisy search's mean gap at those sizes
    gaps0: np.ndarray  # the same queries' mean gap without their noise
    floor_share: float  # the constant floor's median share of the true noise part, where _floor_dimension fits
    ok: np.ndarray  # those sizes
    concentration0: float  # the clean search's concentration


def searched_draw(clean: np.ndarray, ambient: int, noise: float, rng: np.random.Generator) -> NoisyDraw:
    """Rotate ``clean`` into R^``ambient``, add the suite's noise, search both copies and read the noisy one."""
    rot, _ = np.linalg.qr(rng.standard_normal((ambient, ambient)))
    x = np.pad(clean, ((0, 0), (0, ambient - clean.shape[1]))) @ rot
    radius = math.sqrt(float(np.var(x, axis=0).sum()))
    noisy = x + rng.standard_normal(x.shape) * (noise * radius / math.sqrt(ambient))
    m = round(0.2 * len(clean))
    curve = gap_curve(noisy[m:], noisy[:m], seed=0, n_neighbors=20, neighbor_queries=m)
    curve0 = gap_curve(x[m:], x[:m], seed=0)
    assert curve.knn_dist_sq is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = trusted_dimension(
            curve.sizes,
            curve.per_query,
            np.sqrt(curve.knn_dist_sq),
            concentration=curve.concentration,
            n_bootstrap=0,
            ambient=numerical_width(noisy[m:]),  # the bank's width, as estimate_dimension reads it (§21)
        )
    use = curve.sizes >= 16
    sizes = curve.sizes[use].astype(np.float64)
    gaps, gaps0 = curve.per_query[use].mean(axis=1), curve0.per_query[use].mean(axis=1)
    _, floor = tp._floor_fit(sizes, gaps[:, None])
    ok = gaps - floor[0] > tp.FLOOR_FIT_SHARE * gaps  # the sizes _floor_dimension fits on
    if ok.sum() < 3:
        ok[:3] = True
    share = float(np.median(floor[0] / (gaps - gaps0)[ok]))
    return NoisyDraw(est, sizes, gaps, gaps0, share, ok, curve0.concentration)


def draw(family: str, ambient: int, noise: float, n: int, rep: int) -> dict[str, float | str]:
    """One draw: the trusted ``dim``, the fitted floor's share of the true floor, and the oracle reading."""
    make, _ = FAMILIES[family]
    rng = np.random.default_rng(ambient * 100 + round(noise * 100) + n + 7 * rep + 1)
    d = searched_draw(make(n, rng), ambient, noise, rng)
    return {
        "dim": d.est.dim,
        "method": d.est.method,
        "floor_share": d.floor_share,
        "oracle": _law(d.sizes[d.ok], d.gaps0[d.ok], d.concentration0),
    }


def main() -> int:
    """Print every draw and, per family and noise level, the mean over the draws the floor model decided."""
    torch.set_num_threads(1)
    for family, (_, dim) in FAMILIES.items():
        for noise in (0.01, 0.05):
            kept: list[dict[str, float | str]] = []
            for ambient in (10, 16):
                for n in (2500, 20000):
                    for rep in range(3):
                        r = draw(family, ambient, noise, n, rep)
                        print(
                            f"{family} D={ambient} noise={noise:.0%} n={n} rep={rep}: dim {r['dim']:.2f} "
                            f"({r['method']}), floor / true floor {r['floor_share']:.2f}, oracle {r['oracle']:.2f}",
                            flush=True,
                        )
                        if r["method"] == "noise_floor":
                            kept.append(r)
            if kept:
                mean = {k: float(np.mean([float(r[k]) for r in kept])) for k in ("dim", "floor_share", "oracle")}
                print(
                    f"== {family} (d = {dim}) + {noise:.0%}: {len(kept)} of 12 draws 'noise_floor': dim / d "
                    f"{mean['dim'] / dim:.3f}, floor / true floor {mean['floor_share']:.2f}, "
                    f"oracle / d {mean['oracle'] / dim:.3f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
