"""Known answers for noise that swamps the whole neighbour table (issue #14, validation §18).

At a large ``n`` and a small ambient dimension ``D``, 5 % ambient noise puts even the 10th to 20th neighbours inside
the noise's own ``D``-dimensional ball: the table reads about ``D`` at every scale (GRIDE far at least
``NOISE_AMBIENT_FAR * D``), so it cannot bear out the floor-corrected law, and the "swamped" clause asked the constant
floor to explain ``NOISE_SWAMPED_FLOOR`` of the gap. Under the noise's own gap law (``n^(-2/D)``, steep for small
``D``) that constant share falls as ``n`` grows, and the rule read the noise's dimension. Given ``ambient``, a table
whose far scale reads the ambient dimension needs no floor share.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from _helpers.noisy import noisy_circle

import lightning_repgap._trusted_parts as parts
from lightning_repgap import estimate_dimension
from lightning_repgap.dimension import NOISE_AMBIENT_FAR, gride_dimension, trusted_dimension
from lightning_repgap.gap import gap_curve


def test_a_circle_whose_noise_swamps_the_table_reads_one() -> None:
    # Before this change these read 7.76 / 7.68 through "local" (the noise ball's dimension; D = 8).
    for seed in (0, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = estimate_dimension(noisy_circle(40000, seed), return_estimate=True, seed=seed)
        assert est.method == "noise_floor", est
        assert abs(est.dim - 1.0) <= 0.4, est
        assert est.dim_low <= 1.0 <= est.dim_high, est


def test_the_table_reads_the_ambient_dimension_and_the_constant_floor_share_falls_short() -> None:
    # The mechanism on one search: GRIDE far reads near D, the constant floor explains less than NOISE_SWAMPED_FLOOR of
    # G(n_max), and without the ambient dimension the rule reads the noise's dimension; with it, the curve.
    x = noisy_circle(40000, 0)
    order = np.random.default_rng(0).permutation(x.shape[0])
    bank, queries = x[order[8000:]], x[order[:8000]]
    curve = gap_curve(bank, queries, seed=0, n_neighbors=20, neighbor_queries=8000)
    assert curve.knn_dist_sq is not None
    dist = np.sqrt(curve.knn_dist_sq)
    assert gride_dimension(dist, n1=10, n2=20) >= NOISE_AMBIENT_FAR * 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {"concentration": curve.concentration, "n_bootstrap": 0}
        blind = trusted_dimension(curve.sizes, curve.per_query, dist, **kw)
        seen = trusted_dimension(curve.sizes, curve.per_query, dist, ambient=8, **kw)
    assert blind.noise_floor < parts.NOISE_SWAMPED_FLOOR, blind
    assert blind.dim > 5.0, blind
    assert seen.method == "noise_floor", seen
    assert abs(seen.dim - 1.0) <= 0.4, seen


def test_a_gaussian_mixture_far_below_the_ambient_dimension_keeps_its_reading() -> None:
    # The guard the floor share was added for: unequal 7-d Gaussians in R^32 + 1 % (the swamped clause without the
    # floor share read such a mixture 1.23). Its far scale reads far below 0.7 D: the ambient dimension changes nothing.
    rng = np.random.default_rng(3)
    sizes = rng.multinomial(2500, np.array([0.3, 0.25, 0.2, 0.12, 0.08, 0.05]))
    parts_ = [
        rng.standard_normal((k, 7)) * s + rng.standard_normal(7) * 6.0
        for k, s in zip(sizes, np.geomspace(0.3, 1.5, 6), strict=True)
    ]
    lat = np.concatenate(parts_)
    x = np.pad(lat, ((0, 0), (0, 25))) @ np.linalg.qr(rng.standard_normal((32, 32)))[0]
    radius = math.sqrt(float(np.var(x, axis=0).sum()))
    x = x + rng.standard_normal(x.shape) * (0.01 * radius / math.sqrt(32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = estimate_dimension(x, return_estimate=True)
    assert est.dim > 5.0, est


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_ambient_must_be_a_positive_integer(bad: object) -> None:
    # A zero or negative width would switch the swamped-table check on for every cloud: a clear error instead.
    sizes = 16 * 2 ** np.arange(6)
    per_query = np.tile((sizes**-1.0)[:, None], (1, 30)) * np.linspace(0.5, 1.5, 30)
    dist = np.sort(np.random.default_rng(0).random((30, 20)), axis=1) + 0.1
    with pytest.raises(ValueError, match="ambient"):
        trusted_dimension(sizes, per_query, dist, ambient=bad)  # type: ignore[arg-type]
