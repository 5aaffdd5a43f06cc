r"""Exact known answers for the gap law's calibration on compact, positively curved spaces (validation §24, highd16).

Products of round spheres :math:`(S^m)^k` and the real projective space :math:`RP^d` (Veronese embedding
:math:`x \\mapsto x x^T`, squared distance :math:`2 - 2 (x \\cdot y)^2`, :math:`(x \\cdot y)^2 \\sim Beta(1/2, d/2)`)
are homogeneous: the distance law :math:`F` is the same from every query, so :math:`E[G(n)] = \\int (1 - F)^n dt` is
exact, with no sampling. This prints, for the suite's two bank grids (n = 2,500: sizes 16 .. 2,000; n = 20,000:
16 .. 16,000), the naive gap dimension, each reference's inversion (ball, sphere, torus), main's calibrated value
(``calibrate_dimension`` at the exact concentration) and the product family's (``calibrate_products``), all over
``d``; and the torus' sensitivity (a naive reading 3 % above its exact curve). Needs scipy (the ``dev`` extra).

``sampled`` reads sampled clouds with ``estimate_dimension`` instead (products of spheres, round spheres, SO(6), SO(7)).

Run: ``PYTHONPATH=. .venv/bin/python -m studies.highd16_products [sampled]``
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import betainc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import build_calibration as bc
import build_calibration_products as bp

from lightning_repgap.calibration import (
    _invert,
    _reference_maps,
    calibrate_dimension,
    fit_gap_law,
    slope_to_dimension,
)
from studies.product_calibration import calibrate_products

GRIDS = {
    2500: np.array([16, 32, 64, 128, 256, 512, 1024, 2000.0]),
    20000: np.array([16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16000.0]),
}


def rp_log_gap(d: int, log_n: np.ndarray) -> np.ndarray:
    """``ln E[G(n)]`` on :math:`RP^d` in the Veronese embedding (squared distance at most 2)."""

    def surv(t: np.ndarray) -> np.ndarray:
        return betainc(0.5, d / 2.0, np.clip(1.0 - t / 2.0, 0.0, 1.0))

    t_lo = bc.find_t_lo(lambda t: 1.0 - surv(t), 2.0, math.exp(log_n[-1]))
    t, w = bc.t_nodes(t_lo, 2.0, d)
    s = surv(t)
    return np.log(bc.expected_min(bc.log1m(1.0 - s, s), w, t_lo, log_n))


def row(name: str, d: int, conc: float, log_gap: np.ndarray) -> str:
    """One line: per grid the naive, the three references' inversions, main's and the products' calibration."""
    out = [f"{name:10s} d={d:2d} conc/d={conc / d:5.2f}"]
    for n, sizes in GRIDS.items():
        lg = np.interp(np.log(sizes), bc.LOG_N, log_gap)
        _, b, _ = fit_gap_law(sizes, lg)
        raw = float(slope_to_dimension(b))
        maps = _reference_maps(tuple(sizes.tolist()))
        refs = " ".join(f"{k[:3]} {_invert(raw, *maps[k]) / d:.3f}" for k in ("ball", "sphere", "torus"))
        main = calibrate_dimension(raw, sizes, conc) / d
        prod = calibrate_products(raw, sizes, conc) / d
        out.append(f"| n={n}: naive {raw / d:.3f} {refs} main {main:.3f} products {prod:.3f}")
    return " ".join(out)


def main() -> None:
    """Print the table."""
    for d in (12, 16, 20, 24, 30):
        for m in (1, 2, 3, 4, 5, 6, 10):
            if d % m == 0 and d // m >= 2:
                print(row(f"(S^{m})^{d // m}", d, d * (m + 1.0) / m, bp.product_log_gap(m, d // m, bc.LOG_N)))
        print(row(f"S^{d}", d, d + 1.0, bc.sphere_log_gap(float(d), bc.LOG_N)))
        print(row(f"RP^{d}", d, d * (d + 3) / 2.0, rp_log_gap(d, bc.LOG_N)))
        sizes = GRIDS[2500]
        log_gap = np.interp(np.log(sizes), bc.LOG_N, bc.torus_log_gap(d, bc.LOG_N))
        high = 1.03 * float(slope_to_dimension(fit_gap_law(sizes, log_gap)[1]))
        main_value = calibrate_dimension(high, sizes, 2.0 * d) / d
        products = calibrate_products(high, sizes, 2.0 * d) / d
        print(f"   torus (S^1)^{d}, naive 3 % high, n=2500: main {main_value:.3f} products {products:.3f}")


def _special_orthogonal(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((n, k * k))
    for i in range(n):
        q, r = np.linalg.qr(rng.standard_normal((k, k)))
        q = q * np.sign(np.diag(r))
        if np.linalg.det(q) < 0:
            q[:, 0] = -q[:, 0]
        out[i] = q.ravel()
    return out


def sampled() -> None:
    """``estimate_dimension`` on sampled products of spheres, round spheres and SO(6), SO(7) (n = 2,500 / 20,000)."""
    import warnings

    from lightning_repgap.dimension import estimate_dimension
    from lightning_repgap.manifolds import embed, sample_sphere

    def product(m: int, k: int) -> Any:
        return lambda n, rng: np.hstack([sample_sphere(n, m, rng) for _ in range(k)])

    cases: list[tuple[str, int, Any]] = [
        (f"(S^{m})^{d // m}", d, product(m, d // m)) for d in (12, 16, 20) for m in (1, 2, 4, d) if d % m == 0
    ]
    cases += [
        ("SO(6)", 15, lambda n, rng: _special_orthogonal(n, 6, rng)),
        ("SO(7)", 21, lambda n, rng: _special_orthogonal(n, 7, rng)),
    ]
    for name, d, make in cases:
        for n in (2500, 20000):
            rng = np.random.default_rng(1000 + d * 7 + n % 97)
            x = make(int(n / 0.8), rng)
            x = embed(x, max(2 * x.shape[1], 48) if x.shape[1] < 48 else x.shape[1], rng)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                e = estimate_dimension(x, return_estimate=True)
            print(
                f"{name:10s} d={d:2d} n={n:5d} dim={e.dim:6.2f} ({e.dim / d - 1:+.3f}) gap={e.dim_gap:6.2f} {e.method}"
            )


if __name__ == "__main__":
    sampled() if sys.argv[1:] == ["sampled"] else main()
