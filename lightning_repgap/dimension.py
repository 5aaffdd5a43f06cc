r"""Intrinsic-dimension estimators: the gap scaling law, the trusted ``dim``, and (re-exported) TwoNN and MLE.

The gap law :math:`G(n) \propto n^{-2/d}` gives the **gap dimension** :math:`d_{gap} = -2 / \text{slope}` of
:math:`\log G` against :math:`\log n`. TwoNN and MLE are the usual nearest-neighbour estimators, computed from
the neighbour distances the gap search already produced, as cross-checks.

At the bank sizes one can afford the naive :math:`-2 / \text{slope}` is biased at high dimension, in a direction
that depends on the shape of the data; :func:`gap_dimension` corrects it by default with
:mod:`lightning_repgap.calibration` (exact reference curves and the concentration of the squared distances).

Units matter: the gap works with *squared* distances (``dist_sq``); TwoNN and MLE take *plain* distances
(``dist``), since squaring halves the TwoNN slope.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np

from lightning_repgap._checks import _check_representations
from lightning_repgap._clusters import _bands, _cluster_noise, _cluster_split
from lightning_repgap._duplicates import drop_exact_copies, rows_for_the_fit
from lightning_repgap._gap_fit import DimensionFit, gap_dimension
from lightning_repgap._local_dimension import (
    DuplicatePointsWarning,
    _cross_check,
    _ratio_input,
    gride_dimension,
    mle_dimension,
    twonn_dimension,
)
from lightning_repgap._rank_floor import rank_floor_reading
from lightning_repgap._trusted_parts import (
    AUTO_GAP_FROM,
    AUTO_LOCAL_BELOW,
    CLUSTER_SPLIT,
    CROSS_CHECK_ROWS,
    DISAGREEMENT_FACTOR,
    FAR_RANKS,
    HETEROGENEOUS_CONCENTRATION,
    HETEROGENEOUS_SPREAD,
    INTERVAL_FLOOR,
    INTERVAL_SPREAD,
    METHOD_CODES,
    NEIGHBOR_QUERIES,
    NOISE_EVIDENT_RATIO,
    NOISE_FLOOR_FRACTION,
    NOISE_FLOOR_FRACTION_HIGH,
    NOISE_MIN_DIM,
    NOISE_SCALE_RATIO,
    _bootstrap_counts,
    _calibrated_interval,
    _density_spread,
    _disagreement_message,
    _draw_interval,
    _floor_fit,
    _gap_weight,
    _gride_draws,
    _local_estimate,
    _local_statistics,
    _noise_acceptable,
    _noise_readings,
    _scale_spread,
    _weighted_medians,
)
from lightning_repgap._width import numerical_width
from lightning_repgap.gap import gap_curve
from lightning_repgap.search import Backend, nearest

__all__ = [
    "CLUSTER_SPLIT",
    "CROSS_CHECK_ROWS",
    "HETEROGENEOUS_CONCENTRATION",
    "HETEROGENEOUS_SPREAD",
    "INTERVAL_FLOOR",
    "INTERVAL_SPREAD",
    "METHOD_CODES",
    "NEIGHBOR_QUERIES",
    "NOISE_AMBIENT_FAR",
    "DimensionDisagreementWarning",
    "DimensionEstimate",
    "DimensionFit",
    "DuplicatePointsWarning",
    "estimate_dimension",
    "gap_dimension",
    "gride_dimension",
    "mle_dimension",
    "trusted_dimension",
    "twonn_dimension",
    "warn_disagreement",
]

log = logging.getLogger(__name__)

#: Noise swamps the whole neighbour table where GRIDE over neighbours 10-20 reads at least this share of the ambient
#: dimension ``D`` (``trusted_dimension(..., ambient=D)``): the far neighbours then lie inside the noise's own
#: ``D``-dimensional ball (pure Gaussian noise reads 0.77-0.98 ``D`` there at ``D <= 16``), and the table can neither
#: show the manifold nor bear out a floor-corrected law, so the "swamped" clause stops asking the constant floor for
#: ``_trusted_parts.NOISE_SWAMPED_FLOOR`` of the gap. That share is a proxy which falls with ``n`` at a fixed noise
#: where ``D`` is small (the noise's own gap law, ``n^(-2/D)``, keeps falling under a constant floor: a 5 %-noisy
#: circle in R^8 0.92-0.94 at n = 10,000, 0.69-0.77 at 40,000). 0.7 ``D`` does not separate noise from clean data:
#: on the opened suite (``d / D <= 0.5``) every reading at or above it is a noisy curve, but clean clouds with ``d``
#: near ``D`` reach it too (a 7-cube in R^8 0.71-0.78, full-rank Gaussians 0.8-1.2); what keeps them off the noise
#: branch is the rest of it (the fall with the scale, a floor, a floor-corrected value at most a quarter of GRIDE far;
#: validation §18). ``estimate_dimension`` and the metric pass the bank's numerical rank as ``D``
#: (``_width.numerical_width``): zero-padded or dead columns change nothing (validation §21).
NOISE_AMBIENT_FAR = 0.7


# ---------------------------------------------------------------------------------------------------------------
# the trusted dimension: one number from the gap law, a noise-floor fit and local neighbour estimators
# ---------------------------------------------------------------------------------------------------------------


class DimensionDisagreementWarning(UserWarning):
    """The gap law and the local estimators disagree beyond their intervals: read ``dim`` with care."""


@dataclass(frozen=True)
class DimensionEstimate:
    r"""Result of :func:`trusted_dimension`: one trusted ``dim`` and where it came from.

    Attributes:
        dim: the trusted intrinsic dimension.
        dim_low: lower end of its interval: the bootstrap interval widened by the disagreement of the local
            estimators across neighbour scales and a floor for the shape bias no estimator sees
            (:data:`INTERVAL_SPREAD`, :data:`INTERVAL_FLOOR`; ``INTERVAL_FLOOR_GAP`` where the gap law decides), its
            log half-widths then scaled by a split-conformal factor per method and bank size (``INTERVAL_SCALE``)
            aiming at 95 % coverage (on the suite's splits measured once before any tuning on them, from 0.81 / 0.93
            at n = 2,500 / 20,000 on the eleventh to 0.93 / 0.95 on the fifteenth: docs/validation.md); the point
            itself without a bootstrap.
        dim_high: upper end of its interval.
        method: which estimator decided (keys of :data:`METHOD_CODES`): ``"gap"`` the calibrated gap law (high
            dimension), ``"local"`` the mean of TwoNN's maximum likelihood and the MLE over 5 neighbours (low
            dimension, or a density spread over scales: :data:`HETEROGENEOUS_CONCENTRATION`), ``"blend"`` a
            geometric blend of the two (gap dimension between 8 and 12, or a density partly spread over scales),
            ``"noise_floor"`` the gap law after removing a noise floor, constant or decaying like the noise's own
            gap law (ambient noise detected), ``"local_far"`` GRIDE over neighbours 10-20 (weak noise: the
            dimension falls with the scale, no floor; or noise whose floor-corrected law reads above GRIDE far).
        dim_gap: the calibrated gap-law dimension (:func:`gap_dimension`).
        dim_local: the local estimate (``nan`` if the neighbour table is degenerate).
        dim_twonn: TwoNN cross-check (scikit-dimension's fit) on the first :data:`CROSS_CHECK_ROWS` rows.
        dim_mle: Levina–Bickel MLE cross-check on the same rows.
        weight_gap: weight of the gap law in ``dim`` (0: ``"local"``, ``"local_far"``; 1: ``"gap"``, ``"noise_floor"``).
        noise_floor: fitted constant floor of :math:`G(n)` as a fraction of :math:`G(n_{max})` (the noise
            diagnosis's first test; the reported value may come from a decaying floor).
        disagree: the gap law and the local estimate disagree beyond their intervals (see
            :data:`DISAGREEMENT_FACTOR`), or the cloud is read as separated clusters (``clusters``).
        fit: the gap-law fit (for plots and the law's :math:`R^2`).
        clusters: the per-query gaps split into two groups at some bank size (separated clusters, part of them
            still without a bank point: :data:`CLUSTER_SPLIT`); ``dim`` is then the local estimate, or the
            within-cluster curve's noise-floor reading (whose ``dim_gap``, ``noise_floor`` and ``fit`` it reports).

    Example:
        >>> [METHOD_CODES[m] for m in ("gap", "local", "blend", "noise_floor", "local_far")]
        [0, 1, 2, 3, 4]

    """

    dim: float
    dim_low: float
    dim_high: float
    method: str
    dim_gap: float
    dim_local: float
    dim_twonn: float
    dim_mle: float
    weight_gap: float
    noise_floor: float
    disagree: bool
    fit: DimensionFit = field(repr=False)
    clusters: bool = False

    @property
    def method_code(self) -> int:
        """Integer code of :attr:`method` (:data:`METHOD_CODES`), logged as ``dim_method``."""
        return METHOD_CODES[self.method]


def _blend(w: float, local: tuple[float, float, float], fit: DimensionFit) -> tuple[float, float, float, str]:
    """``dim``, its interval and method from the local estimate ``(d, lo, hi)`` and the gap law, blended with ``w``.

    Geometric interpolation of the points and of the interval ends. Where the density guard moved part of the way
    (``w`` below the weight that the gap dimension alone gives, ``w0``), it cannot tell which reading is right (an
    overlapping scale mixture or clusters of different scales), so the interval widens towards the hull of both
    estimators' intervals: fully half way (``w = w0 / 2``, where the spread alone puts it), not at all at either end,
    geometrically in between, so that no end of the interval steps as ``w`` moves.

    Example:
        >>> fit = DimensionFit(10.0, 9.0, 11.0, 1.0, -0.2, 0.0, 10.0, np.array([16, 32]))
        >>> [tuple(round(v, 2) for v in _blend(w, (16.0, 15.0, 17.0), fit)[:3]) for w in (0.0, 0.001, 0.275)]
        [(16.0, 15.0, 17.0), (15.99, 14.96, 16.99), (14.06, 9.0, 17.0)]
    """

    def mix(a: float, b: float, t: float) -> float:
        return math.exp((1.0 - t) * math.log(a) + t * math.log(b)) if 0 < t < 1 else (a if t <= 0 else b)

    d_local, local_lo, local_hi = local
    dim, low, high = (mix(a, b, w) for a, b in ((d_local, fit.dim), (local_lo, fit.dim_low), (local_hi, fit.dim_high)))
    w0 = _gap_weight(fit.dim, None, None)
    if 0 < w < w0 and low > 0:
        reach = min(1.0, 2.0 * min(w, w0 - w) / w0)
        low = mix(low, min(low, local_lo, fit.dim_low), reach)
        high = mix(high, max(high, local_hi, fit.dim_high), reach)
    return dim, low, high, "local" if w == 0 else "gap" if w == 1 else "blend"


def _floor_draws(
    sizes: np.ndarray,
    pq: np.ndarray,
    n_bootstrap: int,
    rng: np.random.Generator,
    conc: float | None,
    accept: Callable[[float], bool],
) -> np.ndarray:
    """Bootstrap draws of the noise-floor reading over the queries (columns of ``pq``), chosen as the point is."""
    if not n_bootstrap:
        return np.zeros(0)
    drawn = _bootstrap_counts(pq.shape[1], n_bootstrap, rng)  # integers: their half-sums are exact
    boot_gaps = np.maximum(pq @ (drawn / pq.shape[1]).T, np.finfo(np.float64).tiny)
    return _noise_readings(sizes, boot_gaps, _weighted_medians(pq, drawn), conc, accept)[0]


def trusted_dimension(
    sizes: Any,
    per_query: Any,
    dist: Any,
    *,
    concentration: float | None = None,
    fit_min_size: int = 16,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    calibrate: bool = True,
    n_neighbors: int = 20,
    seed: int = 0,
    ambient: int | None = None,
) -> DimensionEstimate:
    r"""The trusted intrinsic dimension: the gap law where it is right, local estimators where they are.

    From one search's outputs (the per-query prefix minima and the neighbour table) it computes

    * the calibrated gap-law dimension ``d_gap`` (:func:`gap_dimension`), accurate at high dimension where
      nearest-neighbour estimators read far too low;
    * a local estimate ``d_local``, the mean of TwoNN's maximum likelihood :math:`1 / E\log(r_2/r_1)` and the
      Levina–Bickel MLE over :data:`LOCAL_NEIGHBORS` neighbours, accurate at low dimension on curved or
      non-uniform data, where the gap law, fitted over all bank sizes, sees the curvature;
    * a noise diagnosis: ambient noise makes TwoNN read above GRIDE over neighbours 10 and 20 (the dimension
      falls with the scale, :data:`NOISE_SCALE_RATIO`) and adds a constant floor to :math:`G(n)`
      (:data:`NOISE_FLOOR_FRACTION`; :data:`NOISE_FLOOR_FRACTION_HIGH` where the gap law reads ``>= 12``), and the
      neighbour table bears the floor out (:data:`NOISE_AGREEMENT`: the floor-corrected dimension agrees with GRIDE
      far, or the noise is strong); then ``dim`` is the gap law of :math:`G(n) - \text{floor}`, or, where a floor
      that decays like the noise's own gap law explains the curve much better (``_trusted_parts.NOISE_DECAY_GAIN``;
      noisy curves at large ``n``) and its value passes the same checks, the manifold's law of that two-law fit;
      the same law read on the per-query gaps' median curve replaces that value where it passes the checks, reads
      lower and reads as a curve (below ``_trusted_parts.NOISE_MEDIAN_MAX_DIM``; the mean over the few banks above
      the noise is decided by far queries: ``_noise_readings``). Where that value does not read as a curve and the
      noise's reach lies well inside the neighbour table (the table's mean squared distance over ranks 1-20, fitted
      as :math:`c\,\Gamma(k + 2/d)/\Gamma(k)` plus an offset, leaves the offset at most
      ``_rank_floor.RANK_FLOOR_SHARE`` of the 20th rank's), ``dim`` is that rank law's ``d`` instead: the table is
      the gap curve's fine end, where the manifold is resolved and the noise adds one offset. The
      floor-corrected law is read only where TwoNN also reads at least :data:`NOISE_SCALE_RATIO` times the gap law
      (clean clouds with density spikes read them level, and fall to the blend), and never below 1
      (``_trusted_parts.NOISE_MIN_DIM``: no gap curve of a set of positive length falls faster than ``n^-2``). Where
      the noise is evident (TwoNN at least ``_trusted_parts.NOISE_EVIDENT_RATIO`` times the gap law, a floor shows)
      but no floor-corrected value is borne out, ``dim`` is the lower of the gap law and GRIDE far. Given ``ambient``,
      a table whose far scale reads at least :data:`NOISE_AMBIENT_FAR` of it is swamped by the noise, and a
      floor-corrected value far below it needs no floor share (see there).
      When the dimension falls with the scale but no floor shows (weak noise: the floor explains less than
      :data:`NOISE_FLOOR_FRACTION` of :math:`G(n_{max})`) and ``d_gap <= 8``, ``dim`` is GRIDE over
      neighbours 10 and 20 (:data:`FAR_RANKS`, method ``"local_far"``): the 10th to 20th neighbours lie beyond the
      noise that the nearest ones see; so too where GRIDE far reads below the floor-corrected law (noise only raises
      the far reading; the coarse-scale curvature that the law's few small banks see only raises the law).

    Separated clusters come first: where the per-query gaps at some bank size split into two groups with an empty band
    between them (:data:`CLUSTER_SPLIT`: part of the clusters hold no bank point yet; no connected set shows it),
    ``clusters`` is set and ``dim`` is ``d_local`` (method ``"local"``), unless the whole rule, run on the curve from
    where every cluster holds bank points, finds a floor (``_clusters.CLUSTER_NOISE_FLOOR`` of the gap at least) that
    ``d_local`` reads ``CLUSTER_NOISE_RATIO`` times (below ``CLUSTER_NOISE_SURE`` ``dim_high`` reaches ``d_local``).

    Otherwise ``dim`` is ``d_local`` when ``d_gap <= 8``, ``d_gap`` when ``d_gap >= 12``, and in between
    :math:`d_{local}^{1-w} d_{gap}^{w}` with ``w`` linear in :math:`\log d_{gap}`; but ``w`` moves to 0 (``d_local``)
    where the density spreads over scales: the squared distances are far less concentrated than a ball's of
    dimension ``d_gap`` (:data:`HETEROGENEOUS_CONCENTRATION`) *and* the log distance to the 20th neighbour spreads
    across queries far more than a Gaussian's (:data:`HETEROGENEOUS_SPREAD`), each ramping linearly in log. Such a
    density bends the gap curve, and the calibration, which reads the shape from the concentration, would
    extrapolate; separated clusters lower the concentration too, but not that spread, and keep the gap law. The
    spread alone (a compact-looking concentration) moves ``w`` half way (:data:`HETEROGENEOUS_SPREAD_ONLY`), and the
    interval then widens towards both estimators' intervals. With ``calibrate=False`` there is no calibration to
    extrapolate and this guard is skipped. The interval combines bootstrap intervals the same way (the queries,
    columns of ``per_query``, are resampled for the gap law and the noise floor, the rows of ``dist`` for the local
    estimates), then widens it on the log scale by the spread of the local estimators across neighbour scales and a
    floor (:data:`INTERVAL_SPREAD`; not for noise readings, whose fine scales read the noise): sampling error alone
    misses the biases of curvature, density and noise. That is only its shape: its log half-widths are multiplied by a
    split-conformal scale per method and bank size (``INTERVAL_SCALE`` in ``_trusted_parts``), calibrated at
    ``confidence=0.95`` on the suite's opened clouds (0.9497 / 0.955 at n = 2,500 / 20,000 leaving each split out,
    the shape chosen in-sample, 0.86-1.00 per split; on the splits measured once before any tuning on them, 0.81 /
    0.93 (eleventh) to 1.00 / 1.00 (fourteenth), 0.93 / 0.95 on the fifteenth, 0.98 / 0.98 on the sixteenth; other
    confidence levels scale the same shape, uncalibrated).

    Args:
        sizes: ``(S,)`` increasing bank sizes.
        per_query: ``(S, m)`` per-query squared prefix minima (:attr:`lightning_repgap.gap.GapCurve.per_query`).
        dist: ``(r, k)`` **plain** distances of ``r`` queries to their ``k >= 2`` nearest bank points, ascending
            per row, rows in random order (the square root of :attr:`lightning_repgap.gap.GapCurve.knn_dist_sq`).
            More rows make ``d_local`` more precise (relative standard error about ``0.8 / sqrt(r)``).
        concentration: :attr:`lightning_repgap.gap.GapCurve.concentration`, for the gap law's calibration.
        fit_min_size: smallest bank size in the law fit.
        n_bootstrap: bootstrap resamples (0: the interval is the point).
        confidence: coverage of the interval.
        calibrate: calibrate the gap law (see :func:`gap_dimension`); ``False`` also skips the guard against
            densities spread over scales (:data:`HETEROGENEOUS_CONCENTRATION`).
        n_neighbors: neighbours of the ``dim_mle`` cross-check.
        seed: seed of the bootstraps.
        ambient: the width ``D`` of the points, if known: the dimension of the space they span, their numerical rank
            (what ``estimate_dimension`` and the metric pass, ``_width.numerical_width`` of the bank): where
            GRIDE far reads at least :data:`NOISE_AMBIENT_FAR` of it, noise swamps the whole table (see there).
            ``None``: not used. A positive integer (``ValueError`` otherwise).

    Returns:
        A :class:`DimensionEstimate`.

    Raises:
        ValueError: as :func:`gap_dimension`, or for a ``dist`` that is not 2-D with at least 2 columns.

    Example:
        >>> import numpy as np
        >>> from lightning_repgap.gap import gap_curve
        >>> from lightning_repgap.manifolds import embed, sample_sphere
        >>> rng = np.random.default_rng(0)
        >>> x = embed(sample_sphere(10000, 2, rng), 16, rng)
        >>> curve = gap_curve(x[:8000], x[8000:], n_neighbors=20, neighbor_queries=2000)
        >>> est = trusted_dimension(curve.sizes, curve.per_query, np.sqrt(curve.knn_dist_sq),
        ...                         concentration=curve.concentration)
        >>> round(est.dim, 1), est.method, est.method_code, est.dim_low <= est.dim <= est.dim_high
        (2.0, 'local', 1, True)

    """
    if ambient is not None and (isinstance(ambient, bool) or not isinstance(ambient, int | np.integer) or ambient < 1):
        raise ValueError(f"`ambient` must be a positive integer (the points' width) or None, got {ambient!r}.")
    d_arr = _ratio_input(dist, "dist", 2)
    fit = gap_dimension(
        sizes,
        per_query,
        fit_min_size=fit_min_size,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        calibrate=calibrate,
        concentration=concentration,
        seed=seed,
    )
    cross = d_arr[:CROSS_CHECK_ROWS]
    dim_twonn = _cross_check(twonn_dimension, cross)
    dim_mle = _cross_check(mle_dimension, cross, n_neighbors=min(n_neighbors, cross.shape[1]))

    rng = np.random.default_rng(seed + 1)
    interval = functools.partial(_draw_interval, alpha=(1.0 - confidence) / 2.0)

    # local estimate and its bootstrap over the rows of the neighbour table
    stats = _local_statistics(d_arr)
    d_local, local_draws = _local_estimate(stats, n_bootstrap, rng)
    local_lo, local_hi = interval(d_local, local_draws) if math.isfinite(d_local) else (math.nan, math.nan)

    # noise: the dimension falls with the scale, and a constant floor explains the top of the curve
    sizes_arr = np.asarray(sizes, dtype=np.float64).reshape(-1)
    use = sizes_arr >= fit_min_size
    pq = np.asarray(per_query, dtype=np.float64)[use]
    gaps = pq.mean(axis=1)
    _, floor = _floor_fit(sizes_arr[use], gaps[:, None])
    floor_frac = float(floor[0] / gaps[-1])
    noisy = falls = False
    d_floor = d_floor_mean = d_far = d_near = math.nan
    conc = concentration if calibrate else None
    accept: Callable[[float], bool] | None = None
    n1, n2 = FAR_RANKS
    # Where the gap law decides, high dimension alone makes the estimators fall with the scale: ask for more floor.
    floor_needed = NOISE_FLOOR_FRACTION if fit.dim < AUTO_GAP_FROM else NOISE_FLOOR_FRACTION_HIGH
    if stats is not None and d_arr.shape[1] >= n2:
        rows = d_arr[d_arr[:, 0] > 0.0]  # duplicates were already reported by the local estimate
        with contextlib.suppress(ValueError):  # a degenerate far scale: no diagnosis
            d_far = gride_dimension(rows, n1=n1, n2=n2)
        d_near = 1.0 / stats[0].mean()  # TwoNN's maximum likelihood
        falls = d_far > 0 and d_near >= NOISE_SCALE_RATIO * d_far
        if falls and floor_frac >= floor_needed:
            # The value the floor model would report (the decaying floor's where it explains the curve much better and
            # passes the checks, else the constant floor's) must be borne out by the neighbour table.
            # Noise that swamps the whole table (its far scale reads the ambient dimension) needs no floor share.
            swamped_table = ambient is not None and d_far >= NOISE_AMBIENT_FAR * ambient
            accept = _noise_acceptable(d_far, d_near, 1.0 if swamped_table else floor_frac)
            # the lower median, as _weighted_medians reads it under the bootstrap's integer counts (one definition);
            # only here, where the floor model is read: every other reading skips the partition
            mid = (pq.shape[1] - 1) // 2
            medians = np.partition(pq, mid, axis=1)[:, mid]
            readings, by_mean = _noise_readings(sizes_arr[use], gaps[:, None], medians[:, None], conc, accept)
            d_floor, d_floor_mean = float(readings[0]), float(by_mean[0])
            noisy = math.isfinite(d_floor) and accept(d_floor)

    # Noise only raises the far-scale GRIDE, and the coarse-scale curvature that the floor-corrected law's few small
    # banks see (a curve winding through a surface) only raises that law: where GRIDE far reads lower than the mean
    # curve's law, it is finer (the median curve's value only replaces the mean's as the "noise_floor" reading).
    far_finer = noisy and 0 < d_far < d_floor_mean and math.isfinite(d_local)
    # Noise raises the nearest neighbours' reading and flattens the gap curve (a lower slope): both must show. A clean
    # cloud whose density spikes make every estimator fall with the scale reads TwoNN level with the gap law.
    floor_borne_out = noisy and d_near >= NOISE_SCALE_RATIO * fit.dim
    # Noise so strong that TwoNN reads far above the gap law, with a floor but no floor-corrected value the table bears
    # out (the floor fit fails): the local estimators read the noise, and every reading it reaches is raised by it, so
    # ``dim`` is the lower of the gap law and the far scale.
    evident = (
        falls and not noisy and floor_frac >= floor_needed and d_near >= NOISE_EVIDENT_RATIO * fit.dim and fit.dim > 0
    )
    # Separated clusters (CLUSTER_SPLIT): the floor model and the law over all banks misread the clusters filling.
    bands = _bands(pq, pq.shape[0])
    clusters = math.isfinite(d_local) and _cluster_split(sizes_arr[use], pq, bands) >= CLUSTER_SPLIT
    # Noise within separated clusters: the whole rule on the curve from where every cluster holds bank points.
    kw: dict[str, Any] = {"dist": d_arr, "concentration": concentration, "fit_min_size": fit_min_size, "seed": seed}
    kw["ambient"] = ambient
    rule = functools.partial(
        trusted_dimension, n_bootstrap=n_bootstrap, confidence=confidence, n_neighbors=n_neighbors, **kw
    )
    within = clusters and _cluster_noise(sizes_arr[use], pq, d_local, rule, bands, calibrate)
    if within:
        return dataclasses.replace(within, clusters=True, disagree=True)
    far_finer = far_finer and not clusters
    if clusters:
        dim, dim_low, dim_high, method, w = d_local, local_lo, local_hi, "local", 0.0  # the local estimate as it is
    elif floor_borne_out and not far_finer:
        # d_floor is the diagnosis's value (the median curve's or the mean curve's, each the decaying floor's where it
        # explains the curve much better and passes the checks); the bootstrap draws are chosen the same way. Where it
        # does not read as a curve and the noise's reach lies well inside the neighbour table, the table's rank law
        # with an offset reads the manifold at the largest bank instead (_rank_floor; validation §23); its draws are
        # the same fit on resampled rows (the gates not re-applied).
        ranked = rank_floor_reading(rows, d_floor, n_bootstrap, seed + 2)
        if ranked is None:
            assert accept is not None
            ranked = d_floor, _floor_draws(sizes_arr[use], pq, n_bootstrap, rng, conc, accept)
        d_floor, draws = ranked
        # No gap curve of a set of positive length falls faster than a curve's n^-2: a floor-corrected reading below 1
        # is the subtraction's error (a floor fitted above the noise's level at the small banks), not a dimension.
        reading = max(d_floor, NOISE_MIN_DIM)
        lo, hi = interval(reading, np.maximum(draws, NOISE_MIN_DIM))
        dim, dim_low, dim_high, method, w = reading, lo, hi, "noise_floor", 1.0
    elif (
        far_finer
        or (falls and floor_frac < NOISE_FLOOR_FRACTION and fit.dim <= AUTO_LOCAL_BELOW and math.isfinite(d_local))
        or (evident and d_far < fit.dim)
    ):
        # Weak noise: the dimension falls with the scale, the gap curve shows no floor (or the floor-corrected law reads
        # higher than the far scale); read it at the far scale.
        draws = np.zeros(0)
        if n_bootstrap:
            draws = _gride_draws(rows, _bootstrap_counts(rows.shape[0], n_bootstrap, rng), n1, n2)
        lo, hi = interval(d_far, draws)
        dim, dim_low, dim_high, method, w = d_far, lo, hi, "local_far", 0.0
    elif evident or not math.isfinite(d_local) or not math.isfinite(fit.dim):
        dim, dim_low, dim_high, method, w = fit.dim, fit.dim_low, fit.dim_high, "gap", 1.0
    else:
        w = _gap_weight(fit.dim, conc, _density_spread(d_arr, fit.dim))
        dim, dim_low, dim_high, method = _blend(w, (d_local, local_lo, local_hi), fit)

    if n_bootstrap and math.isfinite(dim) and dim > 0 and math.isfinite(dim_low) and math.isfinite(dim_high):
        dim_low, dim_high = _calibrated_interval(
            dim,
            dim_low,
            dim_high,
            confidence,
            # No scale spread for the gap law nor for the noise readings (_calibrated_interval drops it there too):
            # not computed where it is not used.
            0.0 if method in ("gap", "noise_floor", "local_far") else _scale_spread(d_arr, stats),
            method,
            d_floor_mean if far_finer else (fit.dim if method == "noise_floor" else math.nan),
            w,
            float(sizes_arr[-1]),
        )

    disagree = clusters or bool(
        math.isfinite(d_local)
        and math.isfinite(fit.dim)
        and (local_hi < fit.dim_low or fit.dim_high < local_lo)
        and max(d_local, fit.dim) > DISAGREEMENT_FACTOR * min(d_local, fit.dim)
    )
    return DimensionEstimate(
        dim=float(dim),
        dim_low=float(min(dim_low, dim)),
        dim_high=float(max(dim_high, dim)),
        method=method,
        dim_gap=fit.dim,
        dim_local=d_local,
        dim_twonn=dim_twonn,
        dim_mle=dim_mle,
        weight_gap=w,
        noise_floor=floor_frac,
        disagree=disagree,
        fit=fit,
        clusters=clusters,
    )


@overload
def estimate_dimension(
    points: Any,
    method: Literal["auto", "gap", "twonn", "mle"] = ...,
    *,
    query_fraction: float = ...,
    n_neighbors: int = ...,
    calibrate: bool = ...,
    seed: int = ...,
    backend: Backend = ...,
    return_estimate: Literal[False] = ...,
) -> float: ...


@overload
def estimate_dimension(
    points: Any,
    method: Literal["auto"] = ...,
    *,
    query_fraction: float = ...,
    n_neighbors: int = ...,
    calibrate: bool = ...,
    seed: int = ...,
    backend: Backend = ...,
    return_estimate: Literal[True],
) -> DimensionEstimate: ...


def estimate_dimension(
    points: Any,
    method: Literal["auto", "gap", "twonn", "mle"] = "auto",
    *,
    query_fraction: float = 0.2,
    n_neighbors: int = 20,
    calibrate: bool = True,
    seed: int = 0,
    backend: Backend = "auto",
    return_estimate: bool = False,
) -> float | DimensionEstimate:
    """Intrinsic dimension of a single point cloud: the trusted ``"auto"``, or the gap law, TwoNN or MLE alone.

    ``"auto"`` and ``"gap"`` split the cloud at random (``seed``) into a bank (``1 - query_fraction``) and queries
    and run one search: the gap curve plus every query's ``n_neighbors`` nearest bank points. ``"auto"`` returns
    :func:`trusted_dimension` of it (the same number as ``repgap/dim``), ``"gap"`` the calibrated gap dimension.
    ``"twonn"`` and ``"mle"`` search each point's neighbours among the others. Exact duplicate rows are removed first.

    Args:
        points: ``(n, D)`` array or tensor.
        method: ``"auto"``, ``"gap"``, ``"twonn"`` or ``"mle"``.
        query_fraction: share of the points used as queries by ``"auto"`` and ``"gap"``.
        n_neighbors: neighbours for ``"mle"`` (and the ``dim_mle`` cross-check of ``"auto"``).
        calibrate: correct the finite-sample bias of the gap law.
        seed: seed of the split and the bank order.
        backend: nearest-neighbour backend (see :func:`lightning_repgap.search.resolve_backend`).
        return_estimate: with ``"auto"``, return the whole :class:`DimensionEstimate` (interval, ``method``).

    Returns:
        The estimated dimension, or a :class:`DimensionEstimate` with ``return_estimate=True``.

    Raises:
        ValueError: for an unknown ``method``, a ``query_fraction`` outside ``(0, 1)``, too few (distinct) points
            (for ``"auto"`` and ``"gap"`` a :class:`~lightning_repgap._faults.TooFewFitSizesError` naming the rows
            given and distinct), or ``return_estimate=True`` with a method other than ``"auto"``.

    Example:
        >>> import numpy as np
        >>> from lightning_repgap.manifolds import embed, sample_sphere
        >>> rng = np.random.default_rng(0)
        >>> x = embed(sample_sphere(6000, 3, rng), 16, rng)
        >>> [round(estimate_dimension(x, m)) for m in ("auto", "gap", "twonn", "mle")]
        [3, 3, 3, 3]
        >>> estimate_dimension(x, return_estimate=True).method
        'local'

    """
    if method not in ("auto", "gap", "twonn", "mle"):
        raise ValueError(f"`method` must be 'auto', 'gap', 'twonn' or 'mle', got {method!r}.")
    if return_estimate and method != "auto":
        raise ValueError(f"`return_estimate=True` needs method='auto', got {method!r}.")
    given = _check_representations(points, "points", min_points=3)
    x = drop_exact_copies(given, "estimate_dimension")
    if method in ("auto", "gap"):
        if not 0.0 < query_fraction < 1.0:
            raise ValueError(f"`query_fraction` must be in (0, 1), got {query_fraction!r}.")
        order = np.random.default_rng(seed).permutation(x.shape[0])
        n_queries = max(1, round(query_fraction * x.shape[0]))
        bank, queries = x[order[n_queries:]], x[order[:n_queries]]
        with rows_for_the_fit(f"estimate_dimension(method={method!r})", given.shape[0], x.shape[0], bank.shape[0]):
            if method == "gap":
                curve = gap_curve(bank, queries, seed=seed, backend=backend)
                cp = curve.concentration
                return gap_dimension(
                    curve.sizes, curve.per_query, n_bootstrap=0, calibrate=calibrate, concentration=cp
                ).dim
            k = min(max(n_neighbors, 20), bank.shape[0])
            curve = gap_curve(bank, queries, seed=seed, backend=backend, n_neighbors=k, neighbor_queries=n_queries)
            assert curve.knn_dist_sq is not None
            est = trusted_dimension(
                curve.sizes,
                curve.per_query,
                np.sqrt(curve.knn_dist_sq),
                concentration=curve.concentration,
                calibrate=calibrate,
                n_neighbors=n_neighbors,
                n_bootstrap=200,
                seed=seed,
                ambient=numerical_width(bank),
            )
        if est.disagree:
            warn_disagreement(est)
        return est if return_estimate else est.dim
    k = 2 if method == "twonn" else min(n_neighbors, x.shape[0] - 1)
    dist = np.sqrt(nearest(x, x, k=k, exclude_self=True, backend=backend)[0])
    return twonn_dimension(dist) if method == "twonn" else mle_dimension(dist, n_neighbors=k)


def warn_disagreement(est: DimensionEstimate, stacklevel: int = 3) -> None:
    """Warn (:class:`DimensionDisagreementWarning`) that the gap law and the local estimators disagree."""
    warnings.warn(_disagreement_message(est), DimensionDisagreementWarning, stacklevel=stacklevel)
