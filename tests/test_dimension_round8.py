"""Known answers for the eighth round of the trusted ``dim`` (issue #14), one per failure mode it fixed.

* The noise diagnosis's "swamped" clause (a floor-corrected dimension far below the far-scale GRIDE) is for noise that
  swamps even the 10th-20th neighbours; such noise decides the whole gap curve. On a 7-d Gaussian mixture with 1 %
  noise and on three 4-balls with 5 %, where every estimator reads about the truth and the floor explains only part
  of the curve, the clause accepted a two-law fit's 1.2 and 2.4.
* A strong spread of the log neighbour distances with a compact-looking concentration: overlapping scale mixtures
  (the gap law reads 30-55 % high) or separated clusters of different scales (the gap law is right, the local
  estimators read low at d = 20). ``dim`` moves half way (geometrically) to the local estimate.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _helpers.suite_clouds import suite_curve

import lightning_repgap._trusted_parts as parts
from lightning_repgap._local_dimension import DuplicatePointsWarning
from lightning_repgap.dimension import DimensionDisagreementWarning, trusted_dimension


def _suite_estimate(name: str, n: int):
    """The trusted ``dim`` of a suite cloud, drawn and split exactly as the suite's study does."""
    curve, cloud = suite_curve(name, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DimensionDisagreementWarning)
        warnings.simplefilter("ignore", DuplicatePointsWarning)
        est = trusted_dimension(
            curve.sizes, curve.per_query, np.sqrt(curve.knn_dist_sq), concentration=curve.concentration
        )
    return est, cloud.dim


@pytest.mark.parametrize(
    ("name", "least"),
    [
        # The seventh split's unequal 7-d mixture (six Gaussians, weights 1 to 1/6, 1 % noise) read 1.23 ...
        ("unequal Gaussian mixture d=7, 6 comp. + 1 %", 5.0),
        # ... and three 4-balls (d = 12, 5 % noise) read 2.35, at n = 2,500.
        ("B^4 x B^4 x B^4 + 5 %", 9.0),
    ],
)
def test_clouds_with_a_partial_floor_are_not_read_as_swamped(name, least):
    est, d = _suite_estimate(name, 2500)
    assert est.dim > least, est
    assert est.dim_low <= d <= est.dim_high
    assert est.method != "noise_floor"
    assert est.noise_floor < parts.NOISE_SWAMPED_FLOOR  # the floor explains only part of the curve


def test_the_swamped_clause_needs_a_floor_that_explains_the_curve():
    # A 5 %-noisy curve whose noise swamps the far scale (floor ~1 of G(n_max)) keeps the clause ...
    assert parts._noise_borne_out(1.0, 20.2, 26.1, 1.06)
    # ... a mixture whose floor explains 0.68 of G(n_max) and whose estimators agree does not.
    assert not parts._noise_borne_out(1.23, 6.21, 6.88, 0.68)


@pytest.mark.parametrize(
    ("name", "most"),
    [
        # Overlapping scale mixtures with a compact-looking concentration: the gap law read 24.9 and 16.5.
        ("two nested Gaussians d=16, scales 1 and 0.4", 0.3),
        ("log-normal radius d=12, sigma 0.4", 0.2),
        # Separated clusters of different scales: the gap law is right there (21.7) and the local estimate low (16.0).
        ("three-scale Gaussians d=20", 0.1),
    ],
)
def test_a_spread_of_scales_alone_moves_dim_half_way_to_the_local_estimate(name, most):
    est, d = _suite_estimate(name, 2500)
    assert abs(est.dim - d) / d < most, est
    assert est.method == "blend"
    assert min(est.dim_local, est.dim_gap) < est.dim < max(est.dim_local, est.dim_gap)
    assert est.dim_low <= d <= est.dim_high


@pytest.mark.parametrize("local", [(16.0, 15.0, 17.0), (6.0, 5.0, 7.0)])
def test_the_blend_and_its_interval_move_continuously_and_reach_both_readings_half_way(local):
    # The interval widens towards both estimators' intervals only where the guard moved part of the way: a switch at
    # either end of that range made dim_low / dim_high step as the weight crossed it (review of the eighth round).
    from lightning_repgap._trusted_parts import _gap_weight
    from lightning_repgap.dimension import DimensionFit, _blend

    fit = DimensionFit(10.0, 9.0, 11.0, 1.0, -0.2, 0.0, 10.0, np.array([16, 32]))
    rows = np.array([_blend(float(w), local, fit)[:3] for w in np.linspace(0.0, 1.0, 4001)])
    assert np.all(rows[:, 1] <= rows[:, 0])
    assert np.all(rows[:, 0] <= rows[:, 2])
    assert np.abs(np.diff(np.log(rows), axis=0)).max() < 0.01  # steps of 1/4000 in w move no end by 1 %
    np.testing.assert_allclose(rows[0], local)
    np.testing.assert_allclose(rows[-1], (fit.dim, fit.dim_low, fit.dim_high))
    half = _blend(_gap_weight(fit.dim, None, None) / 2, local, fit)
    assert half[1] <= min(local[1], fit.dim_low)
    assert half[2] >= max(local[2], fit.dim_high)
    assert half[3] == "blend"
