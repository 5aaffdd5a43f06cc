r"""Intrinsic-dimension estimators: the gap scaling law, TwoNN and Levina–Bickel MLE.

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

import logging
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lightning_repgap._checks import _check_positive_int, _check_representations
from lightning_repgap.calibration import calibrate_dimension, fit_gap_law, slope_to_dimension
from lightning_repgap.gap import gap_curve
from lightning_repgap.search import Backend, nearest

log = logging.getLogger(__name__)


class DuplicatePointsWarning(UserWarning):
    """Zero nearest-neighbour distances were found and left out of a ratio-based estimator."""


@dataclass(frozen=True)
class DimensionFit:
    r"""Result of :func:`gap_dimension`.

    Attributes:
        dim: gap dimension (calibrated unless ``calibrate=False``).
        dim_low: lower end of the bootstrap confidence interval.
        dim_high: upper end of the bootstrap confidence interval.
        r2: coefficient of determination of the log-log fit; well below ~0.98 means the power law does not
            hold over the fitted sizes (too few points, or not yet in the asymptotic regime).
        slope: fitted slope of :math:`\log G` against :math:`\log n`.
        intercept: fitted intercept.
        dim_raw: ``-2 / slope`` before calibration.
        fit_sizes: the bank sizes the fit used.

    Example:
        >>> import numpy as np
        >>> from lightning_repgap.gap import gap_curve
        >>> rng = np.random.default_rng(0)
        >>> curve = gap_curve(rng.random((4096, 2)), rng.random((512, 2)))
        >>> fit = gap_dimension(curve.sizes, curve.per_query, concentration=curve.concentration)
        >>> fit.dim_low <= fit.dim <= fit.dim_high, round(fit.slope, 1)
        (True, -1.0)

    """

    dim: float
    dim_low: float
    dim_high: float
    r2: float
    slope: float
    intercept: float
    dim_raw: float
    fit_sizes: np.ndarray = field(repr=False)


def gap_dimension(
    sizes: Any,
    per_query: Any,
    *,
    fit_min_size: int = 16,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    calibrate: bool = True,
    concentration: float | None = None,
    seed: int = 0,
) -> DimensionFit:
    r"""Fit :math:`\log G(n) = a + b \log n` and return :math:`d_{gap} = -2 / b` with a bootstrap interval.

    The fit is weighted least squares over the grid sizes ``>= fit_min_size``, weights :math:`\propto \sqrt{n}`
    (:func:`lightning_repgap.calibration.fit_gap_law`). The naive :math:`-2 / b` is biased at high dimension (low
    on spheres, balls and cubes, high on flat tori); ``calibrate=True`` corrects it with exact reference curves
    and the ``concentration`` of the squared distances (:func:`lightning_repgap.calibration.calibrate_dimension`).
    The confidence interval resamples the queries (columns of ``per_query``) with replacement and refits, with
    no new search; both ends are calibrated like the point estimate.

    Args:
        sizes: ``(S,)`` increasing bank sizes.
        per_query: ``(S, m)`` squared distance of each query to its nearest point among the first ``n`` bank
            points (:attr:`lightning_repgap.gap.GapCurve.per_query`).
        fit_min_size: smallest bank size used in the fit; the smallest sizes are not yet asymptotic.
        n_bootstrap: bootstrap resamples for the interval (0 disables it: the interval is the point).
        confidence: coverage of the interval.
        calibrate: correct the finite-sample bias (see :func:`~lightning_repgap.calibration.calibrate_dimension`).
        concentration: ``mean^2 / var`` of the squared query-bank distances
            (:attr:`lightning_repgap.gap.GapCurve.concentration`); ``None`` calibrates against uniform balls only,
            which overestimates torus-like data. Ignored when ``calibrate=False``.
        seed: seed of the bootstrap.

    Returns:
        A :class:`DimensionFit`.

    Raises:
        ValueError: if fewer than 3 sizes are ``>= fit_min_size``, shapes disagree, or (``calibrate=True``) the fit
            sizes lie outside :func:`lightning_repgap.calibration.calibration_range`.

    Example:
        >>> import numpy as np
        >>> from lightning_repgap.gap import gap_curve
        >>> rng = np.random.default_rng(0)
        >>> curve = gap_curve(rng.random((8192, 2)), rng.random((1024, 2)))
        >>> fit = gap_dimension(curve.sizes, curve.per_query, calibrate=False)
        >>> round(fit.dim, 1), fit.r2 > 0.99
        (2.0, True)

    """
    sizes_arr = np.asarray(sizes, dtype=np.float64).reshape(-1)
    pq = np.asarray(per_query, dtype=np.float64)
    if pq.ndim != 2 or pq.shape[0] != sizes_arr.size:
        raise ValueError(f"`per_query` must have shape (len(sizes), m) = ({sizes_arr.size}, m), got {tuple(pq.shape)}.")
    n_bootstrap = _check_positive_int(n_bootstrap, "n_bootstrap", minimum=0)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must be in (0, 1), got {confidence!r}.")
    use = sizes_arr >= fit_min_size
    if use.sum() < 3:
        raise ValueError(
            f"The gap-law fit needs at least 3 bank sizes >= fit_min_size={fit_min_size}, got sizes "
            f"{sizes_arr.astype(int).tolist()}: use a larger bank, a smaller `fit_min_size` or a finer grid."
        )
    pq = pq[use]
    m = pq.shape[1]
    gaps = pq.mean(axis=1)
    if (gaps <= 0).any():
        raise ValueError(
            "The gap is zero at some bank size: every query has an exact duplicate in the bank, so no scaling law "
            "can be fitted (see `dup_frac`)."
        )
    fit_sizes = sizes_arr[use]
    a, b, r2 = fit_gap_law(fit_sizes, np.log(gaps))
    dim_raw = float(slope_to_dimension(b))

    low_raw = high_raw = dim_raw
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, m, size=(n_bootstrap, m))
        counts = np.stack([np.bincount(row, minlength=m) for row in draws]).astype(np.float64)
        boot_gaps = pq @ counts.T / m  # (S_fit, B)
        boot_gaps = np.maximum(boot_gaps, np.finfo(np.float64).tiny)
        _, boot_b, _ = fit_gap_law(fit_sizes, np.log(boot_gaps))
        boot_dims = slope_to_dimension(boot_b)
        alpha = (1.0 - confidence) / 2.0
        low_raw, high_raw = (float(v) for v in np.quantile(boot_dims, [alpha, 1.0 - alpha]))
        # Keep the point estimate inside its interval even for skewed bootstrap distributions.
        low_raw, high_raw = min(low_raw, dim_raw), max(high_raw, dim_raw)

    if calibrate:
        dim, dim_low, dim_high = (
            calibrate_dimension(v, fit_sizes, concentration) for v in (dim_raw, low_raw, high_raw)
        )
        # The calibration is monotone in the naive dimension in practice; keep the point inside its interval anyway.
        dim_low, dim_high = min(dim_low, dim), max(dim_high, dim)
    else:
        dim, dim_low, dim_high = dim_raw, low_raw, high_raw
    return DimensionFit(
        dim=float(dim),
        dim_low=float(dim_low),
        dim_high=float(dim_high),
        r2=float(r2),
        slope=float(b),
        intercept=float(a),
        dim_raw=dim_raw,
        fit_sizes=fit_sizes.astype(np.int64),
    )


def _ratio_input(dist: Any, name: str, min_cols: int) -> np.ndarray:
    arr = np.asarray(dist, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < min_cols:
        raise ValueError(f"`{name}` must be 2-D with at least {min_cols} neighbour columns, got {tuple(arr.shape)}.")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"`{name}` must hold finite, non-negative distances.")
    return arr


def _drop_zero_rows(dist: np.ndarray, estimator: str, min_rows: int) -> np.ndarray:
    """Leave out points whose nearest neighbour is at distance 0 (duplicates): their ratios are undefined."""
    zero = dist[:, 0] <= 0.0
    if zero.any():
        warnings.warn(
            f"{estimator}: {int(zero.sum())} of {dist.shape[0]} points have a duplicate at distance 0 and are left "
            "out of the estimate (see `dup_frac`).",
            DuplicatePointsWarning,
            stacklevel=3,
        )
        dist = dist[~zero]
    if dist.shape[0] < min_rows:
        raise ValueError(
            f"{estimator} needs at least {min_rows} points with a non-zero nearest-neighbour distance, got "
            f"{dist.shape[0]}."
        )
    return dist


def twonn_dimension(dist: Any, *, discard_fraction: float = 0.1) -> float:
    r"""TwoNN intrinsic dimension (Facco et al., 2017) from each point's two nearest-neighbour distances.

    With :math:`\mu_i = r_2 / r_1`, :math:`-\log(1 - F(\mu)) = d \log \mu`; the slope is fitted through the
    origin after discarding the largest ``discard_fraction`` of the ratios, as scikit-dimension's ``TwoNN``.

    Args:
        dist: ``(n, >=2)`` **plain** (not squared) distances to the nearest neighbours, ascending per row.
        discard_fraction: fraction of the largest ratios left out of the fit.

    Returns:
        The estimated dimension.

    Example:
        >>> import numpy as np
        >>> from lightning_repgap.search import nearest
        >>> x = np.random.default_rng(0).random((4000, 3))
        >>> dist_sq, _ = nearest(x, x, k=2, exclude_self=True)
        >>> round(twonn_dimension(np.sqrt(dist_sq)))
        3

    """
    if not 0.0 <= discard_fraction < 1.0:
        raise ValueError(f"`discard_fraction` must be in [0, 1), got {discard_fraction!r}.")
    d = _drop_zero_rows(_ratio_input(dist, "dist", 2), "TwoNN", 3)
    mu = np.sort(d[:, 1] / d[:, 0])
    n = mu.size
    keep = max(2, math.floor(n * (1.0 - discard_fraction)))
    f_emp = np.arange(1, n + 1, dtype=np.float64) / n
    x = np.log(mu[:keep])
    y = -np.log1p(-f_emp[:keep])
    sxx = float(x @ x)
    if sxx <= 0:
        raise ValueError("TwoNN: every distance ratio r2/r1 equals 1 (ties everywhere); the dimension is undefined.")
    return float(x @ y / sxx)


def mle_dimension(dist: Any, *, n_neighbors: int = 20, comb: Literal["mle", "mean", "median"] = "mle") -> float:
    r"""Levina–Bickel maximum-likelihood intrinsic dimension from ``n_neighbors`` nearest-neighbour distances.

    Pointwise :math:`\hat m_k(x) = \big[\frac{1}{k-1} \sum_{j<k} \log(T_k / T_j)\big]^{-1}`, combined over points
    by ``comb``: ``"mle"`` inverts the mean of the inverses (MacKay & Ghahramani's correction, the
    scikit-dimension default), ``"mean"`` and ``"median"`` average the pointwise values.

    Args:
        dist: ``(n, >= n_neighbors)`` **plain** distances, ascending per row.
        n_neighbors: ``k``, at least 2; clamped with a warning to the columns available.
        comb: how pointwise estimates are combined.

    Returns:
        The estimated dimension.

    Example:
        >>> import numpy as np
        >>> from lightning_repgap.search import nearest
        >>> x = np.random.default_rng(0).random((4000, 3))
        >>> dist_sq, _ = nearest(x, x, k=20, exclude_self=True)
        >>> round(mle_dimension(np.sqrt(dist_sq)))
        3

    """
    k = _check_positive_int(n_neighbors, "n_neighbors", minimum=2)
    if comb not in ("mle", "mean", "median"):
        raise ValueError(f"`comb` must be 'mle', 'mean' or 'median', got {comb!r}.")
    arr = _ratio_input(dist, "dist", 2)
    if k > arr.shape[1]:
        warnings.warn(
            f"MLE: n_neighbors={k} but only {arr.shape[1]} neighbour distances were given; using {arr.shape[1]}.",
            UserWarning,
            stacklevel=2,
        )
        k = arr.shape[1]
    d = _drop_zero_rows(arr[:, :k], "MLE", 2)
    logs = np.log(d[:, -1:] / d[:, :-1]).sum(axis=1)  # sum_j log(T_k / T_j), j < k
    if comb == "mle":
        # 1 / mean(1 / m_k(x)): MacKay & Ghahramani combine the inverses, which removes most of the bias.
        mean_inv = float(np.mean(logs / (k - 1)))
        if mean_inv <= 0:
            raise ValueError("MLE: all neighbour distances are equal; the dimension is undefined.")
        return 1.0 / mean_inv
    with np.errstate(divide="ignore"):
        pointwise = (k - 1) / logs
    pointwise = pointwise[np.isfinite(pointwise)]
    if pointwise.size == 0:
        raise ValueError("MLE: all neighbour distances are equal; the dimension is undefined.")
    return float(np.mean(pointwise) if comb == "mean" else np.median(pointwise))


def estimate_dimension(
    points: Any,
    method: Literal["gap", "twonn", "mle"] = "gap",
    *,
    query_fraction: float = 0.2,
    n_neighbors: int = 20,
    calibrate: bool = True,
    seed: int = 0,
    backend: Backend = "auto",
) -> float:
    """Intrinsic dimension of a single point cloud, by the gap law, TwoNN or MLE.

    For ``"gap"`` the cloud is split at random (``seed``) into a bank (``1 - query_fraction``) and queries, and
    the calibrated gap dimension of that split is returned. ``"twonn"`` and ``"mle"`` search each point's
    neighbours among the others (the point itself excluded by index, so duplicates count at distance 0).

    Args:
        points: ``(n, D)`` array or tensor.
        method: ``"gap"``, ``"twonn"`` or ``"mle"``.
        query_fraction: share of the points used as queries by ``"gap"``.
        n_neighbors: neighbours for ``"mle"``.
        calibrate: correct the finite-sample bias of ``"gap"``.
        seed: seed of the split and the bank order.
        backend: nearest-neighbour backend (see :func:`lightning_repgap.search.resolve_backend`).

    Returns:
        The estimated dimension.

    Raises:
        ValueError: for an unknown ``method``, a ``query_fraction`` outside ``(0, 1)`` or too few points.

    Example:
        >>> import numpy as np
        >>> from lightning_repgap.manifolds import embed, sample_sphere
        >>> rng = np.random.default_rng(0)
        >>> x = embed(sample_sphere(6000, 3, rng), 16, rng)
        >>> [round(estimate_dimension(x, m)) for m in ("gap", "twonn", "mle")]
        [3, 3, 3]

    """
    if method not in ("gap", "twonn", "mle"):
        raise ValueError(f"`method` must be 'gap', 'twonn' or 'mle', got {method!r}.")
    x = _check_representations(points, "points", min_points=3)
    if method == "gap":
        if not 0.0 < query_fraction < 1.0:
            raise ValueError(f"`query_fraction` must be in (0, 1), got {query_fraction!r}.")
        order = np.random.default_rng(seed).permutation(x.shape[0])
        n_queries = max(1, round(query_fraction * x.shape[0]))
        curve = gap_curve(x[order[n_queries:]], x[order[:n_queries]], seed=seed, backend=backend)
        fit = gap_dimension(
            curve.sizes, curve.per_query, n_bootstrap=0, calibrate=calibrate, concentration=curve.concentration
        )
        return fit.dim
    k = 2 if method == "twonn" else min(n_neighbors, x.shape[0] - 1)
    dist_sq, _ = nearest(x, x, k=k, exclude_self=True, backend=backend)
    dist = np.sqrt(dist_sq)
    return twonn_dimension(dist) if method == "twonn" else mle_dimension(dist, n_neighbors=k)
