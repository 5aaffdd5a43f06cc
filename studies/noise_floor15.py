r"""Why 5 %-noisy curves in a small ambient space read high through the floor model (issue #14; validation §20).

How to run (from the repository root, with the package's venv; about ten minutes on two cores)::

    OMP_NUM_THREADS=1 PYTHONPATH=. python -m studies.noise_floor15

Two parts.

1. *How fast can the noise floor fall?* Once the bank is dense at the noise's scale, the gap is the nearest of ``K``
   noisy candidates, ``K`` growing like ``n``. For ``K`` independent squared noise differences (``chi^2`` with ``D``
   degrees of freedom) the expected minimum falls like ``K^(-2/D)`` only asymptotically; over the first doublings it
   falls much faster. The table prints the effective dimension ``-2 / slope`` of ``E min`` per doubling of ``K``
   (exact integral, no sampling). ``_trusted_parts._NOISE_DIMS`` lets the decaying floor's law go no faster than
   ``n^(-2/8)``: at ``D = 8`` the nearest of 1 to 64 candidates falls like ``d_noise`` 4.3-6.1.

2. *Known answers, searched with and without their noise.* A circle, an astroid (arc-length-uniform, so its cusps
   hold no pile-up of points) and a cardioid (parameter-uniform), rotated into ``R^D`` for ``D`` = 8, 12, 16, 32, with
   5 % noise as :mod:`studies.dimension_suite` adds it, at 2,500 and 20,000 points split as ``method="auto"`` splits
   a cloud, three draws each. Per cell: the trusted ``dim`` of each draw (method initial), and the median over the
   draws of the constant floor's share of the true noise part ``F(n) = G(n) - G_clean(n)`` at the banks the
   floor-corrected law is fitted on.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from studies.noise_floor import searched_draw


def expected_min_chi2(dof: int, k: float) -> float:
    """``E[min of k independent chi^2_dof]`` by the integral of the survival function to the power ``k``."""
    half = dof / 2.0
    x = np.linspace(0.0, dof + 40.0 * math.sqrt(dof) + 40.0, 200001)[1:]
    density = np.exp((half - 1.0) * np.log(x) - x / 2.0 - half * math.log(2.0) - math.lgamma(half))
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2.0 * np.diff(x))])
    return float(np.trapezoid(np.clip(1.0 - cdf, 0.0, 1.0) ** k, x))


def effective_noise_dims(dof: int, counts: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)) -> list[float]:
    """``-2 / slope`` of ``log E min`` against ``log K`` over each doubling of ``counts``."""
    logs = np.log([expected_min_chi2(dof, k) for k in counts])
    slopes = np.diff(logs) / np.diff(np.log(counts))
    return [float(-2.0 / s) for s in slopes]


def _circle(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.random(n) * 2 * np.pi
    return np.stack([np.cos(t), np.sin(t)], 1)


def _astroid_arc(n: int, rng: np.random.Generator) -> np.ndarray:
    # arc length from a cusp of one quarter is (3/2) sin^2 t: uniform arc length is t = arcsin(sqrt(u))
    t = np.arcsin(np.sqrt(rng.random(n))) + rng.integers(0, 4, n) * np.pi / 2
    return np.stack([np.cos(t) ** 3, np.sin(t) ** 3], 1)


def _cardioid(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.random(n) * 2 * np.pi
    r = 1 - np.cos(t)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


FAMILIES: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "circle": _circle,
    "astroid (arc-uniform)": _astroid_arc,
    "cardioid (t-uniform)": _cardioid,
}


def draw(family: str, ambient: int, n: int, rep: int, noise: float = 0.05) -> tuple[float, str, float]:
    """One draw: the trusted ``dim``, its method, and the constant floor's median share of the true noise part."""
    rng = np.random.default_rng([ambient, n, rep, sum(map(ord, family))])
    d = searched_draw(FAMILIES[family](n, rng), ambient, noise, rng)
    return d.est.dim, d.est.method, d.floor_share


def main() -> int:
    """Print the effective noise dimensions, then the known-answer draws per family, ambient width and size."""
    torch.set_num_threads(1)
    for dof in (8, 12, 16, 32):
        dims = ", ".join(f"{v:.1f}" for v in effective_noise_dims(dof))
        print(f"D = {dof}: effective d_noise of E min over K = 1, 2, ..., 128 candidates: {dims}", flush=True)
    for family in FAMILIES:
        for ambient in (8, 12, 16, 32):
            for n in (2500, 20000):
                rows = [draw(family, ambient, n, rep) for rep in range(3)]
                dims = " ".join(f"{d:.2f}{m[0]}" for d, m, _ in rows)
                err = float(np.mean([abs(d - 1.0) for d, _, _ in rows]))
                share = float(np.median([s for _, _, s in rows]))
                print(
                    f"{family} + 5 % in R^{ambient}, n = {n}: dim {dims} (mean |dim - 1| {err:.3f}), "
                    f"constant floor / true floor {share:.2f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
