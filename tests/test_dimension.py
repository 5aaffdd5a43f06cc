"""Dimension estimators: known-dimension manifolds, calibration, bootstrap interval, degenerate inputs."""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest

from lightning_repgap import calibration
from lightning_repgap.calibration import (
    ball_concentration,
    calibrate_dimension,
    calibration_range,
    concentration,
    fit_gap_law,
    slope_to_dimension,
)
from lightning_repgap.dimension import (
    DuplicatePointsWarning,
    estimate_dimension,
    gap_dimension,
    mle_dimension,
    twonn_dimension,
)
from lightning_repgap.gap import gap_curve
from lightning_repgap.manifolds import embed, sample_ball, sample_cube, sample_sphere, sample_torus
from lightning_repgap.search import nearest, prepare


def naive_gap_dimension(sizes, gaps) -> float:
    """Uncalibrated gap dimension ``-2 / slope`` of the sqrt(n)-weighted log-log fit (test reference)."""
    g = np.asarray(gaps, dtype=np.float64)
    if not (np.all(np.isfinite(g)) and np.all(g > 0)):
        raise ValueError("`gaps` must be finite and positive to be fitted in log-log.")
    _, b, _ = fit_gap_law(sizes, np.log(g))
    return float(slope_to_dimension(b))


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


# ---------------------------------------------------------------------------------------------------------------
# Known answers: the acceptance criterion of the project. Uniform samples of dimension d, rotated into R^64,
# bank 20,000, 5,000 queries: the calibrated gap dimension is within 10 % of d.
# ---------------------------------------------------------------------------------------------------------------

KNOWN_N, KNOWN_M = 20_000, 5_000
KNOWN_CASES = [(shape, d) for shape in ("sphere", "torus", "cube") for d in (2, 4, 8, 16)]


@functools.cache
def _known_answer(shape: str, d: int, radius: float | None = None):
    """(naive fit, calibrated fit, ball-only calibrated dim, concentration) for one case; one seed per case."""
    rng = np.random.default_rng([KNOWN_CASES.index((shape, d)), 2024])
    if shape == "torus" and radius is not None:
        points = sample_torus(KNOWN_N + KNOWN_M, d, rng, radius=radius)
    else:
        points = SAMPLERS[shape](KNOWN_N + KNOWN_M, d, rng)
    x = embed(points, 64, rng)
    curve = gap_curve(x[:KNOWN_N], x[KNOWN_N:])
    naive = gap_dimension(curve.sizes, curve.per_query, calibrate=False)
    fit = gap_dimension(curve.sizes, curve.per_query, concentration=curve.concentration)
    ball_only = gap_dimension(curve.sizes, curve.per_query, n_bootstrap=0).dim
    return naive, fit, ball_only, curve.concentration


@pytest.mark.slow
@pytest.mark.parametrize(("shape", "d"), KNOWN_CASES)
def test_calibrated_gap_dimension_known_answer(shape, d):
    naive, fit, _, _ = _known_answer(shape, d)
    assert fit.dim == pytest.approx(d, rel=0.10), f"{shape} d={d}: naive {naive.dim:.2f}, calibrated {fit.dim:.2f}"
    assert fit.dim_raw == pytest.approx(naive.dim)  # the same fit underneath
    assert fit.dim_low <= fit.dim <= fit.dim_high
    assert fit.r2 > 0.98
    assert fit.fit_sizes.tolist() == [16 * 2**k for k in range(11)] + [KNOWN_N]  # the whole grid is fitted


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["sphere", "torus", "cube"])
def test_calibration_is_needed_and_helps_at_d16(shape):
    naive, fit, ball_only, _ = _known_answer(shape, 16)
    assert abs(naive.dim / 16 - 1) > 0.10  # sphere, cube: too low; torus: too high
    assert abs(fit.dim / 16 - 1) < 0.10
    assert abs(fit.dim / 16 - 1) < abs(naive.dim / 16 - 1) / 2
    if shape == "torus":
        # The ball alone cannot calibrate a torus: the concentration is what tells them apart.
        assert ball_only / 16 - 1 > 0.3
        assert naive.dim > 16


@pytest.mark.slow
def test_known_answer_does_not_depend_on_the_torus_radius():
    # Same angles, circles of length 1 (default) and 2 pi: every distance scales by (2 pi)^2, nothing else changes.
    _, small, _, conc_small = _known_answer("torus", 8)
    _, unit, _, conc_unit = _known_answer("torus", 8, radius=1.0)
    assert conc_unit == pytest.approx(conc_small, rel=1e-4)
    assert unit.dim_raw == pytest.approx(small.dim_raw, rel=1e-4)
    assert unit.dim == pytest.approx(small.dim, rel=1e-4)


@pytest.mark.slow
def test_concentration_is_measured_on_the_curve():
    conc = _known_answer("sphere", 8)[3]
    assert conc == pytest.approx(9.0, rel=0.03)
    assert _known_answer("torus", 8)[3] == pytest.approx(16.0, rel=0.03)
    assert _known_answer("cube", 8)[3] == pytest.approx(8 * 5 / 7, rel=0.03)


def test_curve_concentration_uses_the_queries_only():
    x = _cloud("sphere", 4, 3000, seed=3)
    plain = gap_curve(x[:2000], x[2000:2500])
    with_train = gap_curve(x[:2000], x[2000:2500], train_queries=10.0 + x[2500:])
    assert with_train.concentration == plain.concentration
    prep = prepare(x[:2000][np.random.default_rng(0).permutation(2000)], x[2000:2500])
    assert plain.concentration == pytest.approx(concentration(prep.reference32, prep.queries32), rel=1e-6)
    assert plain.concentration == pytest.approx(5.0, rel=0.05)


# ---------------------------------------------------------------------------------------------------------------
# calibration.py units
# ---------------------------------------------------------------------------------------------------------------

GRID_20K = np.r_[16 * 2 ** np.arange(11), 20000]


def test_fit_gap_law_uses_sqrt_n_weights():
    n = np.array([16.0, 64.0, 256.0, 1024.0])
    log_g = -0.5 * np.log(n)
    log_g[0] += 0.1  # a bent small-n end weighs little
    _, b, r2 = fit_gap_law(n, log_g)
    w = np.sqrt(n) / np.sqrt(n).sum()
    x = np.log(n)
    ref = (w * (x - w @ x)) @ (log_g - w @ log_g) / (w @ (x - w @ x) ** 2)
    assert float(b) == pytest.approx(ref)
    assert 0.9 < float(r2) < 1.0
    # Columns are fitted independently.
    _, bb, _ = fit_gap_law(n, np.stack([log_g, 2 * log_g], axis=1))
    assert bb.tolist() == pytest.approx([float(b), 2 * float(b)])
    assert naive_gap_dimension(n, np.exp(log_g)) == pytest.approx(-2 / float(b))
    assert naive_gap_dimension(n, np.ones(4)) == math.inf
    with pytest.raises(ValueError, match="positive"):
        naive_gap_dimension(n, np.zeros(4))


@pytest.mark.parametrize("sizes", [GRID_20K, 2 ** np.arange(6, 13), np.geomspace(1000, 1e6, 7).round()])
@pytest.mark.parametrize("reference", ["ball", "sphere", "torus"])
def test_reference_maps_are_increasing(sizes, reference):
    d_true, d_naive = calibration._reference_maps(tuple(float(v) for v in sizes))[reference]
    assert np.all(np.diff(d_true) > 0)
    assert np.all(np.diff(d_naive) > 0)
    assert np.all(np.isfinite(d_naive))
    # low d is nearly unbiased; on a sphere or a ball the naive estimate falls behind as d grows
    assert d_naive[0] == pytest.approx(1.0, rel=0.02)
    if reference != "torus":
        assert np.all(d_naive[d_true > 4] < d_true[d_true > 4])


def test_exact_sphere_curve_round_trip():
    # On S^2 the squared chordal distance of two uniform points is uniform on [0, 4] (Archimedes), so
    # E[G(n)] = int_0^4 (1 - t/4)^n dt = 4 / (n + 1) exactly. d = 2 is not a node of the tables' d grid.
    for sizes in (GRID_20K, 2 ** np.arange(3, 9), np.array([100, 1000, 10_000, 100_000, 10**6, 10**7])):
        exact = 4.0 / (sizes + 1.0)
        dim_naive = naive_gap_dimension(sizes, exact)
        assert calibrate_dimension(dim_naive, sizes, concentration=3.0) == pytest.approx(2.0, rel=2e-3)


@pytest.mark.parametrize("reference", ["ball", "sphere", "torus"])
@pytest.mark.parametrize("d", [3, 12, 16, 40])
def test_tabulated_reference_curves_round_trip(reference, d):
    tab = calibration._tables()
    dims = tab.dims[reference]
    row = int(np.argmin(np.abs(dims - d)))
    d_ref = float(dims[row])
    sizes = np.r_[64 * 2 ** np.arange(8), 20000.0]  # off the tables' n nodes at the end
    log_g = np.interp(np.log(sizes), tab.log_n, tab.log_gap[reference][row])
    dim_naive = naive_gap_dimension(sizes, np.exp(log_g))
    conc = {"ball": float(ball_concentration(d_ref)), "sphere": d_ref + 1, "torus": 2 * d_ref}[reference]
    assert calibrate_dimension(dim_naive, sizes, concentration=conc) == pytest.approx(d_ref, rel=1e-6)
    if reference == "ball":
        assert calibrate_dimension(dim_naive, sizes) == pytest.approx(d_ref, rel=1e-6)


def test_calibration_interpolates_between_references_and_clamps():
    sizes = GRID_20K
    dn = 12.0
    maps = calibration._reference_maps(tuple(float(v) for v in sizes))
    d_ball, d_sphere, d_torus = (calibration._invert(dn, *maps[name]) for name in ("ball", "sphere", "torus"))
    assert d_ball > d_sphere > d_torus  # the same naive value means a higher d on a ball than on a torus
    assert calibrate_dimension(dn, sizes) == d_ball  # None: ball only
    assert calibrate_dimension(dn, sizes, concentration=1e-3) == d_ball  # below every reference: clamp
    assert calibrate_dimension(dn, sizes, concentration=d_sphere + 1) == pytest.approx(d_sphere)
    assert calibrate_dimension(dn, sizes, concentration=2 * d_torus) == pytest.approx(d_torus)
    assert calibrate_dimension(dn, sizes, concentration=math.inf) == d_torus  # above every reference: clamp
    concs = np.linspace(1.0, 40.0, 400)
    dims = np.array([calibrate_dimension(dn, sizes, concentration=c) for c in concs])
    assert np.all(np.diff(dims) <= 1e-12)  # monotone and continuous in between
    assert np.max(np.abs(np.diff(dims))) < 0.1


def test_calibration_is_monotone_in_the_naive_dimension():
    for conc in (None, 5.0, 17.0, 32.0):
        dims = [calibrate_dimension(v, GRID_20K, conc) for v in np.geomspace(0.5, 200, 80)]
        assert np.all(np.diff(dims) > 0)


def test_calibration_edge_values_and_errors():
    lo, hi = calibration_range()
    assert (lo, hi) == (1, 2**24)
    assert calibrate_dimension(math.inf, GRID_20K, 5.0) == math.inf
    assert calibrate_dimension(math.nan, GRID_20K) == math.inf
    assert calibrate_dimension(1e300, GRID_20K, 5.0) == math.inf  # overflow is infinite, not an error
    # beyond the tables' d range: power-law continuation, still increasing
    assert calibrate_dimension(300.0, GRID_20K, 20.0) > calibrate_dimension(150.0, GRID_20K, 20.0) > 150
    with pytest.raises(ValueError, match=r"\[1, 16777216\]"):
        calibrate_dimension(3.0, [2**20, 2**24, 2**25])
    with pytest.raises(ValueError, match="at least two"):
        calibrate_dimension(3.0, [64])
    with pytest.raises(ValueError, match="concentration"):
        calibrate_dimension(3.0, GRID_20K, math.nan)
    with pytest.raises(ValueError, match="concentration"):
        calibrate_dimension(3.0, GRID_20K, -1.0)
    with pytest.raises(ValueError, match="dim_naive"):
        calibrate_dimension(0.0, GRID_20K)


def test_gap_dimension_rejects_fit_sizes_beyond_the_tables():
    sizes = np.array([2**22, 2**23, 2**24, 2**25])
    per_query = np.exp(-np.log(sizes))[:, None] * np.ones((1, 8))
    assert gap_dimension(sizes, per_query, calibrate=False, n_bootstrap=0).dim == pytest.approx(2.0)
    with pytest.raises(ValueError, match="16777216"):
        gap_dimension(sizes, per_query, n_bootstrap=0)


@pytest.mark.parametrize(
    ("shape", "d", "expected"),
    [
        ("sphere", 3, 4.0),
        ("sphere", 16, 17.0),
        ("torus", 3, 6.0),
        ("torus", 16, 32.0),
        ("cube", 10, 50 / 7),
        ("ball", 6, float(ball_concentration(6))),
    ],
)
def test_concentration_reference_values(shape, d, expected):
    rng = np.random.default_rng(d)
    sampler = {**SAMPLERS, "ball": sample_ball}[shape]
    x = embed(sampler(4096, d, rng), 48, rng)
    prep = prepare(x[:2048], x[2048:])
    assert concentration(prep.reference32, prep.queries32) == pytest.approx(expected, rel=0.04)


def test_concentration_is_scale_and_rotation_free_and_handles_degenerate_sets():
    x = _cloud("cube", 5, 2000, seed=7).astype(np.float32)
    base = concentration(x[:1000], x[1000:])
    rot = np.linalg.qr(np.random.default_rng(1).standard_normal((64, 64)))[0].astype(np.float32)
    assert concentration(3.0 * x[:1000], 3.0 * x[1000:]) == pytest.approx(base, rel=1e-4)
    assert concentration(x[:1000] @ rot, x[1000:] @ rot) == pytest.approx(base, rel=1e-3)
    assert concentration(x[:1000], x[1000:], n_sub=1) == math.inf  # a single distance: var 0, mean > 0
    assert math.isnan(concentration(np.zeros((4, 3), np.float32), np.zeros((2, 3), np.float32)))
    assert concentration(np.zeros((4, 3), np.float32), np.ones((1, 3), np.float32)) == math.inf
    with pytest.raises(ValueError, match="equal width"):
        concentration(x[:10], x[:10, :5])
    with pytest.raises(ValueError, match="n_sub"):
        concentration(x[:10], x[10:20], n_sub=0)


@pytest.mark.parametrize("method", ["gap", "twonn", "mle"])
def test_estimate_dimension_on_a_single_cloud(method):
    x = _cloud("sphere", 4, 8000, seed=3)
    assert estimate_dimension(x, method) == pytest.approx(4, rel=0.1)


def test_estimate_dimension_errors():
    x = _cloud("cube", 2, 500)
    with pytest.raises(ValueError, match="`method` must be"):
        estimate_dimension(x, "pca")
    with pytest.raises(ValueError, match="query_fraction"):
        estimate_dimension(x, "gap", query_fraction=1.0)
    with pytest.raises(ValueError, match="at least 3 points"):
        estimate_dimension(x[:2], "twonn")


def test_estimate_dimension_removes_exact_duplicate_rows_with_one_warning():
    # A cloud stacked twice is the same cloud: every method reads what it reads on the distinct rows (which are the
    # first half, in order), with one warning naming how many rows were removed. Before the fix, "auto" read a
    # 5-cube stacked twice as 4.39 via the copies' zero distances.
    x = _cloud("cube", 5, 1200, seed=1)
    twice = np.concatenate([x, x])
    for method in ("auto", "twonn"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = estimate_dimension(twice, method)
        dup = [w for w in caught if issubclass(w.category, DuplicatePointsWarning)]
        assert len(dup) == 1, [str(w.message) for w in caught]
        assert "1200 of 2400 rows" in str(dup[0].message)
        assert "removed" in str(dup[0].message)
        assert "dup_frac" not in str(dup[0].message)
        assert got == estimate_dimension(x, method)
    with pytest.raises(ValueError, match="only 2 distinct rows"):
        estimate_dimension(np.concatenate([x[:2]] * 3), "twonn")


@pytest.mark.parametrize("distinct", [3, 9, 15, 40])
def test_estimate_dimension_too_few_rows_for_the_fit_names_rows_given_and_distinct(distinct):
    # Exact copies are dropped before the split: a bank too small for the gap-law fit must say how many rows were
    # given and how many were distinct (the bare fit error named only bank sizes, as if the input were small).
    from lightning_repgap._faults import TooFewFitSizesError

    x = _cloud("cube", 3, distinct, seed=2)
    for method in ("auto", "gap"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DuplicatePointsWarning)
            with pytest.raises(TooFewFitSizesError) as err:
                estimate_dimension(np.concatenate([x] * 3), method)
        message = str(err.value)
        assert f"has {3 * distinct} rows, {distinct} distinct ({2 * distinct} exact duplicates removed)" in message
        assert "3 bank sizes >= fit_min_size=16" in message
        assert "method='twonn' or 'mle'" in message
        assert isinstance(err.value, ValueError)
    with pytest.raises(TooFewFitSizesError, match=r"has 40 rows, 40 distinct \(no exact duplicates\)"):
        estimate_dimension(_cloud("cube", 3, 40, seed=2))
    with pytest.warns(DuplicatePointsWarning):
        assert estimate_dimension(np.concatenate([x] * 3), "twonn") > 0  # the local estimators need fewer points


def test_near_copy_screen_by_query_distance_finds_the_same_copies():
    # near_copies with the table's distances compares in D dimensions only the neighbours at nearly the same
    # distance from the query (two copies always are): same answer as comparing every pair.
    from lightning_repgap._duplicates import near_copies
    from lightning_repgap.search import nearest

    rng = np.random.default_rng(4)
    bank = rng.standard_normal((600, 12))
    bank = np.concatenate([bank, bank[:150] + 1e-9 * rng.standard_normal((150, 12))])  # 150 near copies
    queries = rng.standard_normal((200, 12))
    dist_sq, index = nearest(bank, queries, k=8)
    full = near_copies(bank, index, 1e-12)
    screened = near_copies(bank, index, 1e-12, dist_sq)
    assert full.any()
    assert np.array_equal(full, screened)
