r"""The gap-law fit: :func:`gap_dimension` and its result :class:`DimensionFit` (public in `dimension.py`).

The gap law :math:`G(n) \propto n^{-2/d}` gives the **gap dimension** :math:`d_{gap} = -2 / \text{slope}` of
:math:`\log G` against :math:`\log n`, with a bootstrap interval over the queries and the calibration of
:mod:`lightning_repgap.calibration`. Kept apart from the trusted ``dim``'s rule (:mod:`lightning_repgap.dimension`)
so that the rule's module stays small; the public names live in :mod:`lightning_repgap.dimension`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lightning_repgap._checks import _check_fit_sizes, _check_positive_int
from lightning_repgap._trusted_parts import _bootstrap_counts
from lightning_repgap.calibration import calibrate_dimension, fit_gap_law, slope_to_dimension

__all__ = ["DimensionFit", "gap_dimension"]


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
        ValueError: if fewer than 3 sizes are ``>= fit_min_size`` (a
            :class:`~lightning_repgap._faults.TooFewFitSizesError`), shapes disagree, or (``calibrate=True``) the fit
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
    use = _check_fit_sizes(sizes_arr, fit_min_size)
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
        counts = _bootstrap_counts(m, n_bootstrap, rng)  # the same draws, one bincount
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
