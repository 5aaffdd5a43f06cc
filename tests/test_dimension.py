"""Dimension estimators: known-dimension manifolds, bootstrap interval, degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_repgap.dimension import (
    DuplicatePointsWarning,
    gap_dimension,
    mle_dimension,
    twonn_dimension,
)
from lightning_repgap.gap import gap_curve
from lightning_repgap.manifolds import embed, sample_cube, sample_sphere, sample_torus
from lightning_repgap.search import nearest

SAMPLERS = {"sphere": sample_sphere, "torus": sample_torus, "cube": sample_cube}


def _cloud(shape: str, d: int, n: int, seed: int = 0, ambient: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return embed(SAMPLERS[shape](n, d, rng), ambient, rng)


@pytest.mark.parametrize("d", [2, 3, 5])
def test_twonn_and_mle_recover_low_dimensions(d):
    x = _cloud("torus", d, 6000, seed=d)
    dist_sq, _ = nearest(x, x, k=20, exclude_self=True)
    dist = np.sqrt(dist_sq)
    assert twonn_dimension(dist) == pytest.approx(d, rel=0.1)
    assert mle_dimension(dist, n_neighbors=20) == pytest.approx(d, rel=0.1)
    for comb in ("mean", "median"):
        assert mle_dimension(dist, n_neighbors=20, comb=comb) == pytest.approx(d, rel=0.15)


def test_twonn_on_squared_distances_would_halve_the_estimate():
    # Documents the unit convention: TwoNN takes plain distances.
    x = _cloud("torus", 4, 6000, seed=1)
    dist_sq, _ = nearest(x, x, k=2, exclude_self=True)
    assert twonn_dimension(dist_sq) == pytest.approx(twonn_dimension(np.sqrt(dist_sq)) / 2, rel=1e-6)


@pytest.mark.parametrize("d", [2, 4])
def test_gap_dimension_uncalibrated_low_d(d):
    x = _cloud("torus", d, 12000, seed=d)
    curve = gap_curve(x[:10000], x[10000:])
    fit = gap_dimension(curve.sizes, curve.per_query, calibrate=False)
    assert fit.dim == pytest.approx(d, rel=0.1)
    assert fit.r2 > 0.98
    assert fit.dim_low <= fit.dim <= fit.dim_high
    assert fit.dim_high - fit.dim_low < 0.3 * d


def test_bootstrap_interval_contains_estimate_and_shrinks_with_more_queries():
    x = _cloud("sphere", 3, 9000, seed=5)
    widths = []
    for m in (250, 2000):
        curve = gap_curve(x[:6000], x[6000 : 6000 + m])
        fit = gap_dimension(curve.sizes, curve.per_query, n_bootstrap=300)
        assert fit.dim_low <= fit.dim <= fit.dim_high
        widths.append(fit.dim_high - fit.dim_low)
    assert widths[1] < widths[0]


def test_no_bootstrap_gives_point_interval():
    x = _cloud("cube", 2, 3000)
    curve = gap_curve(x[:2500], x[2500:])
    fit = gap_dimension(curve.sizes, curve.per_query, n_bootstrap=0, calibrate=False)
    assert fit.dim_low == fit.dim == fit.dim_high


def test_fewer_than_three_sizes_raises():
    x = _cloud("cube", 2, 600)
    curve = gap_curve(x[:500], x[500:], sizes=[100, 250, 500])
    with pytest.raises(ValueError, match="at least 3 bank sizes >= fit_min_size=200"):
        gap_dimension(curve.sizes, curve.per_query, fit_min_size=200)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"must have shape \(len\(sizes\), m\) = \(3, m\)"):
        gap_dimension([64, 128, 256], np.ones((4, 10)))


def test_all_duplicates_cannot_be_fitted():
    ref = np.random.default_rng(0).random((512, 3))
    curve = gap_curve(ref, ref[:50])
    with pytest.raises(ValueError, match="exact duplicate"):
        gap_dimension(curve.sizes, curve.per_query)


def test_duplicates_are_dropped_from_ratio_estimators_with_warning():
    x = _cloud("torus", 2, 3000)
    dist_sq, _ = nearest(x, x, k=20, exclude_self=True)
    dist = np.sqrt(dist_sq)
    dist[:100, 0] = 0.0  # 100 points with an exact duplicate
    with pytest.warns(DuplicatePointsWarning, match="100 of 3000 points"):
        d_twonn = twonn_dimension(dist)
    with pytest.warns(DuplicatePointsWarning):
        d_mle = mle_dimension(dist)
    assert np.isfinite(d_twonn)
    assert np.isfinite(d_mle)
    with pytest.warns(DuplicatePointsWarning), pytest.raises(ValueError, match="TwoNN needs at least 3 points"):
        twonn_dimension(np.zeros((10, 2)))


@pytest.mark.parametrize(
    ("fn", "kwargs", "match"),
    [
        (twonn_dimension, {"discard_fraction": 1.0}, "discard_fraction"),
        (mle_dimension, {"n_neighbors": 1}, "n_neighbors"),
        (mle_dimension, {"comb": "mode"}, "comb"),
    ],
)
def test_bad_estimator_arguments(fn, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(np.ones((10, 5)), **kwargs)


def test_bad_distance_tables():
    with pytest.raises(ValueError, match="at least 2 neighbour columns"):
        twonn_dimension(np.ones((10, 1)))
    with pytest.raises(ValueError, match="non-negative"):
        twonn_dimension(-np.ones((10, 2)))


def test_mle_clamps_neighbours_with_warning():
    x = _cloud("torus", 2, 2000)
    dist_sq, _ = nearest(x, x, k=5, exclude_self=True)
    with pytest.warns(UserWarning, match="only 5 neighbour distances"):
        assert mle_dimension(np.sqrt(dist_sq), n_neighbors=20) == pytest.approx(2, rel=0.2)
