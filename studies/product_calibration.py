r"""A calibration between the round sphere and the flat torus over products of round spheres (study; not adopted).

Studied in docs/validation.md §24 (highd16) and not adopted: exact on every product of round spheres, but near the
torus' end it amplifies a naive reading's sampling error more than the library's calibration does, and the suite's
tori read higher (in-sample 0.0779 -> 0.0782 at n = 2,500). The library keeps
:func:`lightning_repgap.calibration.calibrate_dimension`.


:func:`lightning_repgap.calibration.calibrate_dimension` interpolates linearly in the concentration between the
sphere :math:`S^d` (``d + 1``) and the flat torus :math:`(S^1)^d` (``2 d``). The naive gap dimension's bias is not
linear in the concentration over that range: products of ``k`` round spheres :math:`(S^m)^k`, which lie in it
(concentration ``d (m + 1) / m``, ``d = m k``), read 5-10 % low at ``d = 12 .. 24`` on their exact curves
(docs/validation.md §24). :func:`calibrate_products` inverts the naive dimension in every member of that family too
(exact curves for ``m`` in ``2, 3, 4, 6, 8``: ``studies/calibration_products.npz``, built by
``scripts/build_calibration_products.py``) and interpolates between the two neighbouring members whose concentration
brackets the data's, each evaluated at its own inverted dimension as the sphere and the torus are. It is exact on
every tabulated product, on spheres and on tori, and equals :func:`~lightning_repgap.calibration.calibrate_dimension`
below the sphere's concentration (ball to sphere) and beyond the torus'.
"""

from __future__ import annotations

import functools
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np

from lightning_repgap.calibration import _invert, _reference_maps, calibrate_dimension, fit_gap_law, slope_to_dimension

__all__ = ["calibrate_products"]

_TABLE_FILE = "calibration_products.npz"
#: Factor dimensions ``m`` of the products used (the table may hold more).
PRODUCT_FACTORS: tuple[int, ...] = (2, 3, 4, 6, 8)


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """``ln n`` grid and, per factor dimension ``m``, the tabulated ``d`` and ``ln E[G(n)]`` rows."""
    with np.load(Path(__file__).with_name(_TABLE_FILE)) as z:
        log_n = np.array(z["log_n"])
        rows = {int(m): (np.array(z[f"d_{int(m)}"]), np.array(z[f"log_gap_{int(m)}"])) for m in z["m"]}
    return log_n, rows


@functools.lru_cache(maxsize=64)
def _product_maps(fit_sizes: tuple[float, ...]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per ``m``, ``(d, naive d)`` for a fit over ``fit_sizes`` (as ``calibration._reference_maps``)."""
    log_n, rows = _tables()
    x = np.log(np.asarray(fit_sizes))
    pos = np.interp(x, log_n, np.arange(log_n.size, dtype=np.float64))
    lo = np.minimum(np.floor(pos).astype(np.int64), log_n.size - 2)
    frac = pos - lo
    maps = {}
    for m, (dims, log_gap) in rows.items():
        log_g = log_gap[:, lo] * (1.0 - frac) + log_gap[:, lo + 1] * frac
        _, slope, _ = fit_gap_law(fit_sizes, log_g.T)
        maps[m] = (dims, slope_to_dimension(slope))
    return maps


def calibrate_products(dim_naive: float, fit_sizes: Any, concentration: float | None = None) -> float:
    r"""Calibrated gap dimension, interpolating between neighbouring products of round spheres.

    As :func:`~lightning_repgap.calibration.calibrate_dimension` (same arguments, checks and errors), except where
    the concentration lies between the sphere's (``d_sphere + 1``) and the torus' (``2 d_torus``): there the
    references are the sphere, the products :math:`(S^m)^k` for ``m = 8, 6, 4, 3, 2`` (concentration
    ``d_m (m + 1) / m`` at their own inverted dimension ``d_m``; a product is used only where ``d_m >= m``, where it
    starts from :math:`S^m` itself) and the torus, in that order, and the result interpolates linearly in the
    concentration between the two neighbours that bracket it.

    Example:
        >>> import numpy as np
        >>> sizes = 2.0 ** np.arange(4, 15)
        >>> from lightning_repgap.calibration import calibrate_dimension
        >>> naive = 15.82  # the exact curve of (S^2)^8, d = 16, on this grid
        >>> round(calibrate_dimension(naive, sizes, 24.0), 1), round(calibrate_products(naive, sizes, 24.0), 1)
        (14.6, 16.0)

    """
    base = calibrate_dimension(dim_naive, fit_sizes, concentration)
    if concentration is None or not math.isfinite(base):
        return base
    sizes = tuple(np.asarray(fit_sizes, dtype=np.float64).reshape(-1).tolist())
    maps = _reference_maps(sizes)
    d_sphere = _invert(dim_naive, *maps["sphere"])
    d_torus = _invert(dim_naive, *maps["torus"])
    c_sphere, c_torus = d_sphere + 1.0, 2.0 * d_torus
    if not c_sphere <= concentration <= c_torus:
        return base
    refs = [(c_sphere, d_sphere)]
    for m, table in sorted(_product_maps(sizes).items(), reverse=True):
        if m not in PRODUCT_FACTORS:
            continue
        d_m = _invert(dim_naive, *table)
        if math.isfinite(d_m) and d_m >= m:
            refs.append((d_m * (m + 1.0) / m, d_m))
    refs.append((c_torus, d_torus))
    for (c0, d0), (c1, d1) in itertools.pairwise(refs):
        if concentration <= c1:
            w = (concentration - c0) / (c1 - c0) if c1 > c0 else 1.0
            return float((1.0 - min(max(w, 0.0), 1.0)) * d0 + min(max(w, 0.0), 1.0) * d1)
    return d_torus
