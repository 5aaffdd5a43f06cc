r"""Build ``studies/calibration_products.npz``: exact gap curves of products of round spheres.

The calibration (:mod:`lightning_repgap.calibration`) interpolates in the concentration between the round sphere
:math:`S^d` (concentration ``d + 1``) and the flat torus :math:`(S^1)^d` (``2 d``). Products of ``k`` round spheres
:math:`(S^m)^k` (``d = m k``, chordal distances in :math:`R^{(m+1)k}`) lie between them (concentration
``k (m + 1) = d (m + 1) / m``), and a linear interpolation over that whole range reads them 5-10 % low at
``d = 12 .. 24`` (validation §24): the bias of the naive gap dimension is not linear in the concentration. This
script tabulates the exact curves of the products for ``m`` in :data:`M_VALUES`, so that
:mod:`studies.product_calibration` (a study, not adopted: validation §24) interpolates between neighbouring
members of the family only.

The squared distance is :math:`\sum_{i \le k} X_i` with :math:`X_i / 4 \sim \mathrm{Beta}(m/2, m/2)` (the torus'
arcsine law at ``m = 1``); its distribution is obtained, as the torus' in ``scripts/build_calibration.py``, by FFT
convolution of exact bin masses at nested scales, and :math:`E[G(n)] = \int (1 - F)^n dt` by the same quadrature on
the same ``ln n`` grid. Needs scipy (the ``dev`` extra); the library itself does not.

Usage::

    .venv/bin/python scripts/build_calibration_products.py           # writes the table
    .venv/bin/python scripts/build_calibration_products.py --check   # m = 1 against the torus, k = 1 the sphere
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from scipy.special import betainc, betaln

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_calibration as bc

OUT = Path(__file__).resolve().parents[1] / "studies" / "calibration_products.npz"
#: Dimension of the round factors; ``m = 1`` is the torus and ``k = 1`` the sphere, both in the main table.
M_VALUES = (2, 3, 4, 6, 8)
#: Largest dimension tabulated (as the main table).
D_MAX = 96


class ProductCDF(bc.TorusCDF):
    """CDF of ``sum_{i<=k} X_i``, ``X_i / 4 ~ Beta(m/2, m/2)``, at nested scales (see ``bc.TorusCDF``)."""

    def __init__(
        self, m: int, k: int, t_min: float, n_top: int = 2**20, n_low: int = 2**17, ratio: float = 8.0
    ) -> None:
        self.d = m * k

        def masses(edges: np.ndarray) -> np.ndarray:  # X_i / 4 ~ Beta(m/2, m/2): exact bin masses
            return np.diff(betainc(m / 2.0, m / 2.0, np.clip(edges / 4.0, 0.0, 1.0)))

        self.scales = self._ladder(k, masses, t_min, n_top, n_low, ratio)


def product_cdf_bound(t: np.ndarray, m: int, k: int) -> np.ndarray:
    """An upper bound of ``F``: every term is at most ``t``, and ``P(X / 4 <= u) <= u^(m/2) / ((m/2) B(m/2, m/2))``."""
    u = np.clip(np.asarray(t, float) / 4.0, 1e-300, 1.0)
    one = np.exp(0.5 * m * np.log(u) - math.log(m / 2.0) - betaln(m / 2.0, m / 2.0))
    return np.minimum(1.0, one) ** k


def product_log_gap(m: int, k: int, log_n: np.ndarray, refine: float = 1.0) -> np.ndarray:
    """``ln E[G(n)]`` on :math:`(S^m)^k` (unit spheres, chordal distances)."""
    if k == 1:
        return bc.sphere_log_gap(float(m), log_n, refine)
    d, t_hi = m * k, 4.0 * k
    t_lo = bc.find_t_lo(lambda t: product_cdf_bound(t, m, k), t_hi, math.exp(log_n[-1]))
    cdf = ProductCDF(m, k, t_lo)
    t, w = bc.t_nodes(t_lo, t_hi, d, refine)
    f = cdf(t)
    return np.log(bc.expected_min(bc.log1m(f, 1.0 - f), w, t_lo, log_n))


def check() -> None:
    """Largest |difference| of ``ln E[G]``: ``m = 1`` products against the torus table's formula."""
    for k in (4, 12, 24):
        a = product_log_gap(1, k, bc.LOG_N) if k > 1 else None
        b = bc.torus_log_gap(k, bc.LOG_N)
        print(f"(S^1)^{k}: max |ln E[G] - torus| = {np.max(np.abs(a - b)):.2e}")


def main() -> None:
    """Write the table (or run the check)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true")
    if parser.parse_args().check:
        check()
        return
    out: dict[str, np.ndarray] = {"log_n": bc.LOG_N, "m": np.array(M_VALUES)}
    for m in M_VALUES:
        ks = np.arange(1, D_MAX // m + 1)
        out[f"d_{m}"] = (m * ks).astype(np.float64)
        out[f"log_gap_{m}"] = np.stack([product_log_gap(m, int(k), bc.LOG_N) for k in ks])
        print(f"m = {m}: {ks.size} dimensions", flush=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
