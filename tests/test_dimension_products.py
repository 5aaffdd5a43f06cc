"""The product-of-spheres calibration studied in docs/validation.md §24 (highd16; a study, not adopted).

Products of round spheres :math:`(S^m)^k` (compact, positively curved, high ``d``) have a concentration of squared
distances between the sphere's (``d + 1``) and the flat torus' (``2 d``). The library's calibration interpolates
linearly in the concentration between those two references, and reads the products 5-10 % low on their exact curves
(§24). ``studies.product_calibration`` interpolates between neighbouring members of the product family instead; these
known answers guard what §24 reports of it: sampled products read level, the sphere and the torus still read their
dimension, and outside the sphere-to-torus range it returns the library's calibration as it is.
"""

from __future__ import annotations

import numpy as np
import pytest

from lightning_repgap._gap_fit import gap_dimension
from lightning_repgap.calibration import calibrate_dimension
from lightning_repgap.gap import gap_curve
from lightning_repgap.manifolds import embed, sample_sphere, sample_torus
from studies.product_calibration import calibrate_products


def _fit(x: np.ndarray, seed: int):
    curve = gap_curve(x[:8000], x[8000:], seed=seed)
    fit = gap_dimension(curve.sizes, curve.per_query, concentration=curve.concentration, n_bootstrap=0)
    return fit, curve.concentration


def test_products_of_round_spheres_read_their_dimension():
    # (S^2)^8, (S^3)^5 and (S^4)^4 (d = 16, 15, 16) in R^64, bank 8,000: the library's calibration read them 7.8 % low
    # on average over these 12 clouds (-2 % to -16 % each) when §24 was written; the product family reads them level.
    # The library's bias is not asserted: a test must not fail when the library's calibration improves.
    study = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        for m, k in ((2, 8), (4, 4), (3, 5)):
            x = embed(np.hstack([sample_sphere(10000, m, rng) for _ in range(k)]), 64, rng)
            fit, conc = _fit(x, seed)
            study.append(calibrate_products(fit.dim_raw, fit.fit_sizes, conc) / (m * k) - 1.0)
    assert abs(np.mean(study)) <= 0.03
    assert max(abs(e) for e in study) <= 0.12


@pytest.mark.parametrize("d", [12, 16])
def test_sphere_torus_and_outside_range(d):
    rng = np.random.default_rng(d)
    for x in (embed(sample_sphere(10000, d, rng), 64, rng), embed(sample_torus(10000, d, rng), 64, rng)):
        fit, conc = _fit(x, d)
        assert calibrate_products(fit.dim_raw, fit.fit_sizes, conc) == pytest.approx(d, rel=0.08)
    sizes = 2.0 ** np.arange(4, 14)
    for conc in (0.3 * d, 0.9 * d, 5.0 * d, None):
        assert calibrate_products(0.9 * d, sizes, conc) == calibrate_dimension(0.9 * d, sizes, conc)
