"""Known answers for the fifth round of the trusted ``dim`` (issue #14): the decaying noise floor, the gap-law floor.

* A noisy curve's gap curve does not flatten to a constant: once the bank is dense at the noise's scale, the nearest
  of ever more noisy neighbours keeps coming closer, like the gap law of the noise's own high dimension. A constant
  floor fitted over every size under-corrects and reads the curve as 1.2-2.2-dimensional; the decaying floor must
  recover 1, and must not be used where the constant floor explains the curve.
* Where the gap law decides, the interval has a wider shape-bias floor (``INTERVAL_FLOOR_GAP``) than the local
  estimators' (``INTERVAL_FLOOR``).
"""

from __future__ import annotations

import math
import statistics
import warnings

import numpy as np
import pytest

import lightning_repgap._trusted_parts as parts
from lightning_repgap.dimension import trusted_dimension
from lightning_repgap.gap import gap_curve
from lightning_repgap.manifolds import embed, sample_cube

SIZES = 16.0 * 2.0 ** np.arange(11)


@pytest.mark.parametrize(("noise_dim", "level"), [(12, 3e-4), (20, 1e-3), (40, 1e-3)])
def test_a_floor_that_decays_like_the_noise_is_removed(noise_dim, level):
    # G(n) = n^-2 (a curve) + level * n^(-2 / noise_dim) (the noise's own slow law).
    gaps = SIZES**-2.0 + level * SIZES ** (-2.0 / noise_dim)
    _, floor = parts._floor_fit(SIZES, gaps[:, None])
    constant = parts._floor_dimension(SIZES, gaps, float(floor[0]), None)
    raw, gain = parts._decaying_floor_fit(SIZES, gaps[:, None])
    chosen = parts._noise_dimensions(SIZES, gaps[:, None], floor, None)[0]
    assert constant > 1.2  # the constant floor under-corrects
    assert gain[0] <= parts.NOISE_DECAY_GAIN
    assert raw[0] == pytest.approx(1.0, abs=0.08)
    assert chosen == pytest.approx(1.0, abs=0.08)


def test_a_decaying_floor_value_that_fails_the_checks_is_not_used():
    # The decaying fit's grid reaches d of about 100: its value must pass the checks that diagnosed the noise.
    gaps = SIZES**-2.0 + 1e-3 * SIZES ** (-2.0 / 20)
    _, floor = parts._floor_fit(SIZES, gaps[:, None])
    constant = parts._floor_dimension(SIZES, gaps, float(floor[0]), None)
    seen: list[float] = []

    def reject(value: float) -> bool:
        seen.append(value)
        return False

    kept = parts._noise_dimensions(SIZES, gaps[:, None], floor, None, reject)[0]
    assert seen  # the decaying value was offered ...
    assert seen[0] == pytest.approx(1.0, abs=0.08)  # ... and refused
    assert kept == constant
    assert parts._noise_dimensions(SIZES, gaps[:, None], floor, None, lambda v: True)[0] == pytest.approx(1.0, abs=0.08)


def test_the_decaying_fit_ignores_residuals_it_cannot_trust():
    # A constant floor explains the first curve to rounding (a residual of 0, or rounded below it), and the second
    # vanishes (1 / G^2 overflows): the gain must say "no better" (inf), never a NaN or a negative ratio.
    curves = np.stack([1e-3 / SIZES + 5.0, np.full_like(SIZES, 1e-300)], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and quietly
        _, gain = parts._decaying_floor_fit(SIZES, curves)
    assert gain[0] == np.inf
    assert not gain[1] <= parts.NOISE_DECAY_GAIN


def test_a_constant_floor_keeps_the_constant_floor_model():
    # A 3-dimensional law under a truly constant floor, plus a little curvature of its own: nothing to gain.
    rng = np.random.default_rng(0)
    gaps = SIZES ** (-2.0 / 3.0) * (1 + 0.3 / np.log(SIZES)) + 0.01
    gaps *= 1 + 0.002 * rng.standard_normal(SIZES.size)
    _, floor = parts._floor_fit(SIZES, gaps[:, None])
    _, gain = parts._decaying_floor_fit(SIZES, gaps[:, None])
    assert gain[0] > parts.NOISE_DECAY_GAIN
    chosen = parts._noise_dimensions(SIZES, gaps[:, None], floor, None)[0]
    assert chosen == parts._floor_dimension(SIZES, gaps, float(floor[0]), None)


def test_the_gap_law_interval_has_its_own_shape_floor(monkeypatch):
    # A clean 20-cube: the gap law decides, no scale spread enters, so the floor sets the interval's minimum width.
    rng = np.random.default_rng(4)
    x = embed(sample_cube(3000, 20, rng), 40, rng)
    curve = gap_curve(x[:2400], x[2400:], n_neighbors=20, neighbor_queries=600)
    args = (curve.sizes, curve.per_query, np.sqrt(curve.knn_dist_sq))
    est = trusted_dimension(*args, concentration=curve.concentration)
    assert est.method == "gap"
    z = statistics.NormalDist().inv_cdf(0.975)
    assert math.log(est.dim_high / est.dim_low) >= 2 * z * parts.INTERVAL_FLOOR_GAP - 1e-9
    assert est.dim_low <= 20 <= est.dim_high
    monkeypatch.setattr(parts, "INTERVAL_FLOOR_GAP", parts.INTERVAL_FLOOR)
    narrow = trusted_dimension(*args, concentration=curve.concentration)
    assert narrow.dim == est.dim
    assert narrow.dim_high / narrow.dim_low < est.dim_high / est.dim_low
