"""Known answers for the sixth round of the trusted ``dim`` (issue #14): densities over many scales, noise at large n.

* A density spread over scales (a Gaussian scale mixture) has squared distances far less concentrated than any
  compact shape of its dimension; the gap law's calibration, which reads the shape from that concentration, then
  extrapolates and over-reads by 50-70 %. ``dim`` must come from the local estimators there, and only there.
* A noisy curve at large n: the gap curve's floor decays like the noise's own law, and the constant floor's value is
  not borne out by the neighbour table. The diagnosis must accept the decaying floor's value (which is), instead of
  reading the noise at the far neighbour scale (``"local_far"`` read a 5 %-noisy circle as 6-dimensional).
* ``"local_far"`` is only for weak noise, where no floor shows in the gap curve.
* Separated clusters (class-structured data) lower the concentration as well, but not the spread of the log neighbour
  distances: the guard must not fire on them, and the gap law reads them.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import lightning_repgap._trusted_parts as parts
from lightning_repgap._local_dimension import DuplicatePointsWarning, gride_dimension
from lightning_repgap.calibration import ball_concentration
from lightning_repgap.dimension import DimensionDisagreementWarning, trusted_dimension, warn_disagreement
from lightning_repgap.gap import gap_curve
from lightning_repgap.manifolds import embed, sample_ball


def _estimate(x: np.ndarray, **kwargs):
    n_q = x.shape[0] // 5
    curve = gap_curve(x[n_q:], x[:n_q], n_neighbors=20, neighbor_queries=n_q)
    args = (curve.sizes, curve.per_query, np.sqrt(curve.knn_dist_sq))
    kwargs.setdefault("concentration", curve.concentration)
    with warnings.catch_warnings():
        # Only the warnings these clouds may raise; anything else surfaces.
        warnings.simplefilter("ignore", DimensionDisagreementWarning)
        warnings.simplefilter("ignore", DuplicatePointsWarning)
        return trusted_dimension(*args, **kwargs), curve


def test_a_density_spread_over_scales_is_read_by_the_local_estimators():
    rng = np.random.default_rng(11)
    d, n = 14, 3000
    scales = 10 ** rng.uniform(-0.5, 0.5, n)
    x = embed(rng.standard_normal((n, d)) * scales[:, None], 32, rng)
    est, curve = _estimate(x)
    assert curve.concentration < parts.HETEROGENEOUS_CONCENTRATION * float(ball_concentration(est.dim_gap))
    assert parts._density_spread(np.sqrt(curve.knn_dist_sq), est.dim_gap) > parts.HETEROGENEOUS_SPREAD_FULL
    assert est.dim_gap > 1.3 * d  # the gap law over-reads ...
    assert est.method == "local"  # ... so the local estimate decides
    assert est.dim == est.dim_local
    assert abs(est.dim - d) / d < 0.1
    assert est.dim_low <= d <= est.dim_high
    with pytest.warns(DimensionDisagreementWarning, match="density spreads over scales"):
        warn_disagreement(est)  # the warning names the reason the local estimate decided
    # The same dimension without the spread of scales: the gap law keeps deciding.
    plain, plain_curve = _estimate(embed(rng.standard_normal((n, d)), 32, rng))
    assert plain_curve.concentration > 2 * parts.HETEROGENEOUS_CONCENTRATION * ball_concentration(plain.dim_gap)
    assert plain.method in ("gap", "blend")
    with pytest.warns(DimensionDisagreementWarning, match="Curved or noisy"):
        warn_disagreement(plain)


def test_the_guard_needs_the_calibration_a_low_concentration_and_a_spread_of_scales():
    rng = np.random.default_rng(5)
    x = embed(sample_ball(3000, 16, rng), 40, rng)
    est, curve = _estimate(x)
    assert est.method == "gap"
    low = 0.5 * parts.HETEROGENEOUS_CONCENTRATION * float(ball_concentration(est.dim_gap))
    # A uniform ball's neighbour distances do not spread over scales: even a low concentration leaves the gap law.
    assert parts._density_spread(np.sqrt(curve.knn_dist_sq), est.dim_gap) < parts.HETEROGENEOUS_SPREAD
    ball_low, _ = _estimate(x, concentration=low)
    assert ball_low.method == "gap"
    assert ball_low.dim == est.dim
    # A density spread over scales: with a low concentration the local estimate decides ...
    d, n = 14, 3000
    mixture = embed(rng.standard_normal((n, d)) * 10 ** rng.uniform(-0.5, 0.5, n)[:, None], 32, rng)
    spread, _ = _estimate(mixture)
    low = 0.5 * parts.HETEROGENEOUS_CONCENTRATION * float(ball_concentration(spread.dim_gap))
    guarded, _ = _estimate(mixture, concentration=low)
    assert guarded.method == "local"
    assert guarded.dim == guarded.dim_local
    # ... well above the threshold the gap law does; without calibration there is no concentration to judge.
    above, _ = _estimate(mixture, concentration=2.5 * low)
    assert above.method in ("gap", "blend")
    assert above.weight_gap == 1.0 if above.method == "gap" else above.weight_gap > 0
    uncalibrated, _ = _estimate(mixture, concentration=low, calibrate=False)
    assert uncalibrated.method in ("gap", "blend")
    # In between, the weight ramps: never a step from the gap law to the local estimate.
    mid = math.sqrt(parts.HETEROGENEOUS_CONCENTRATION * parts.HETEROGENEOUS_CONCENTRATION_FULL)
    share = mid / parts.HETEROGENEOUS_CONCENTRATION * 2 * low
    halfway, _ = _estimate(mixture, concentration=share)
    assert halfway.method == "blend"
    assert 0.0 < halfway.weight_gap < 1.0
    assert halfway.dim_local < halfway.dim < halfway.dim_gap


def _clusters(n: int, d: int, k: int, separation: float, ambient: int, kind: str, rng) -> np.ndarray:
    """``k`` clusters of intrinsic dimension ``d``, each in its own random ``d``-plane, centres ``separation`` apart."""
    centres = rng.standard_normal((k, ambient))
    centres *= separation / np.linalg.norm(centres, axis=1, keepdims=True)
    label = rng.integers(0, k, n)
    out = np.empty((n, ambient))
    for c in range(k):
        m = label == c
        z = rng.standard_normal((m.sum(), d)) if kind == "gauss" else sample_ball(m.sum(), d, rng)
        out[m] = embed(z, ambient, rng) + centres[c]
    return out


@pytest.mark.parametrize(("k", "kind"), [(2, "ball"), (2, "gauss"), (3, "ball"), (3, "gauss")])
def test_separated_clusters_are_read_by_the_gap_law(k, kind):
    # Class-structured data: between-cluster pairs lower the concentration (below the guard's threshold for two
    # clusters), but each cluster is uniform or Gaussian, so the neighbour distances do not spread over scales.
    d = 16
    rng = np.random.default_rng(20 + k)
    x = _clusters(4000, d, k, 40.0, 64, kind, rng)
    est, curve = _estimate(x)
    if k == 2:
        assert curve.concentration < parts.HETEROGENEOUS_CONCENTRATION * float(ball_concentration(est.dim_gap))
    assert est.method in ("gap", "blend")
    assert abs(est.dim - d) / d < 0.1
    assert est.dim_low <= d <= est.dim_high


def test_a_noisy_curve_at_large_n_is_read_through_its_decaying_floor():
    rng = np.random.default_rng(1)
    n, ambient = 12000, 8
    t = 2 * math.pi * rng.random(n)
    x = embed(np.stack([np.cos(t), np.sin(t)], axis=1), ambient, rng)
    x = x + rng.standard_normal(x.shape) * (0.05 * math.sqrt(float(np.var(x, axis=0).sum())) / math.sqrt(ambient))
    est, curve = _estimate(x)
    # The case: the dimension falls with the scale, a floor shows, but the constant floor's value is not borne out.
    dist = np.sqrt(curve.knn_dist_sq)
    rows = dist[dist[:, 0] > 0]
    d_far = gride_dimension(rows, n1=parts.FAR_RANKS[0], n2=parts.FAR_RANKS[1])
    d_near = float(1.0 / np.log(rows[:, 1] / rows[:, 0]).mean())
    sizes = curve.sizes.astype(np.float64)
    use = sizes >= 16
    gaps = curve.per_query[use].mean(axis=1)
    _, floor = parts._floor_fit(sizes[use], gaps[:, None])
    assert floor[0] / gaps[-1] >= parts.NOISE_FLOOR_FRACTION
    constant = parts._floor_dimension(sizes[use], gaps, float(floor[0]), curve.concentration)
    assert not parts._noise_acceptable(d_far, d_near)(constant)
    assert d_far > 4  # the far scale sees the noise as well
    assert est.method == "noise_floor"
    assert est.dim == pytest.approx(1.0, abs=0.4)
    assert est.dim_low <= 1.0 <= est.dim_high


def test_the_far_scale_is_not_read_where_a_floor_shows(monkeypatch):
    # The same noisy circle with the noise diagnosis made to refuse every floor: the far scale (which sees the noise)
    # must not decide, since the gap curve's floor is plain; the reading falls back to the ordinary rule.
    rng = np.random.default_rng(1)
    n, ambient = 6000, 8
    t = 2 * math.pi * rng.random(n)
    x = embed(np.stack([np.cos(t), np.sin(t)], axis=1), ambient, rng)
    x = x + rng.standard_normal(x.shape) * (0.05 * math.sqrt(float(np.var(x, axis=0).sum())) / math.sqrt(ambient))
    monkeypatch.setattr(parts, "NOISE_MAX_DIM", 0.0)  # no floor value is acceptable
    est, _ = _estimate(x)
    assert est.noise_floor >= parts.NOISE_FLOOR_FRACTION
    assert est.method != "local_far"
    assert est.method != "noise_floor"


@pytest.mark.parametrize(("weights", "kind"), [((2, 1), "ball"), ((4, 2, 1), "gauss")])
def test_clusters_of_different_densities_keep_the_gap_law(weights, kind):
    # Class-structured data whose classes differ in density (2x and 4x: cluster sizes in those ratios, same shape and
    # scale): the log neighbour distances differ by log(ratio) / d between clusters, far from a density spread over
    # scales, so the heterogeneity guard must not move ``dim`` off the gap law.
    d, n, ambient = 16, 4000, 64
    rng = np.random.default_rng(31 + len(weights))
    p = np.asarray(weights, dtype=np.float64) / sum(weights)
    label = rng.choice(len(weights), n, p=p)
    centres = rng.standard_normal((len(weights), ambient))
    centres *= 40.0 / np.linalg.norm(centres, axis=1, keepdims=True)
    x = np.empty((n, ambient))
    for c in range(len(weights)):
        m = label == c
        z = rng.standard_normal((m.sum(), d)) if kind == "gauss" else sample_ball(m.sum(), d, rng)
        x[m] = embed(z, ambient, rng) + centres[c]
    est, curve = _estimate(x)
    share = curve.concentration / float(ball_concentration(est.dim_gap))
    assert parts._heterogeneity(share, parts._density_spread(np.sqrt(curve.knn_dist_sq), est.dim_gap)) == 0.0
    assert est.method in ("gap", "blend")
    assert abs(est.dim - d) / d < 0.1
    assert est.dim_low <= d <= est.dim_high
