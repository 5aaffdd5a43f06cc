r"""Nearest-neighbour intrinsic-dimension estimators: TwoNN, Levina–Bickel MLE and GRIDE.

They read a table of each point's *plain* (not squared) distances to its nearest neighbours, ascending per row, as
the gap search produces it. :mod:`lightning_repgap.dimension` re-exports the public ones; the trusted dimension
combines them with the gap law.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np

from lightning_repgap._checks import _check_positive_int

__all__ = ["DuplicatePointsWarning", "gride_dimension", "mle_dimension", "twonn_dimension"]


class DuplicatePointsWarning(UserWarning):
    """Zero nearest-neighbour distances were found and left out of a ratio-based estimator."""


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
            "out of the estimate (exact duplicates; `representation_gap` reports the queries' share as `dup_frac`).",
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


def gride_dimension(dist: Any, *, n1: int = 1, n2: int = 2) -> float:
    r"""Maximum-likelihood dimension from the ratios :math:`\mu = r_{n_2} / r_{n_1}` (GRIDE, Denti et al. 2022).

    For a locally uniform ``d``-dimensional density the ratio has density
    :math:`f(\mu) = \frac{d\,(\mu^d - 1)^{n_2 - n_1 - 1}}{B(n_2 - n_1, n_1)\, \mu^{(n_2 - 1) d + 1}}`;
    ``n1=1, n2=2`` is TwoNN's likelihood, larger ranks look at a larger scale (less sensitive to noise, more to
    curvature). The likelihood is maximised on a log grid of ``d`` and refined by golden section.

    Args:
        dist: ``(n, >= n2)`` **plain** distances, ascending per row.
        n1: rank of the inner neighbour (1-based).
        n2: rank of the outer neighbour, ``> n1``.

    Returns:
        The estimated dimension.

    Example:
        >>> import numpy as np
        >>> from lightning_repgap.search import nearest
        >>> x = np.random.default_rng(0).random((4000, 3))
        >>> dist_sq, _ = nearest(x, x, k=8, exclude_self=True)
        >>> round(gride_dimension(np.sqrt(dist_sq), n1=4, n2=8))
        3

    """
    if not 1 <= n1 < n2:
        raise ValueError(f"GRIDE needs 1 <= n1 < n2, got n1={n1!r}, n2={n2!r}.")
    arr = _ratio_input(dist, "dist", n2)
    d = _drop_zero_rows(arr, "GRIDE", 3)
    log_mu = np.log(d[:, n2 - 1] / d[:, n1 - 1])
    log_mu = log_mu[log_mu > 0]
    if log_mu.size < 3:
        raise ValueError("GRIDE: fewer than 3 points with distinct neighbour distances; the dimension is undefined.")
    return _gride_mle(log_mu, n2 - n1, n2 - 1)


def _gride_loglik(dims: np.ndarray, log_mu: np.ndarray, gap_rank: int, outer: int) -> np.ndarray:
    """Mean log-likelihood of ``log_mu`` for each of ``dims`` (constants dropped)."""
    dl = np.outer(dims, log_mu)  # (G, N)
    ll = np.log(dims) - outer * dims * float(log_mu.mean())
    if gap_rank > 1:
        # log(mu^d - 1) = d log mu + log(1 - mu^-d), accurate for large d log mu
        ll = ll + (gap_rank - 1) * (dl + np.log(-np.expm1(-dl))).mean(axis=1)
    return ll


def _gride_mle(log_mu: np.ndarray, gap_rank: int, outer: int) -> float:
    if gap_rank == 1:
        # closed form: d = 1 / (outer * mean log mu)
        return 1.0 / (outer * float(log_mu.mean()))
    grid = np.geomspace(0.05, 1000.0, 241)
    ll = _gride_loglik(grid, log_mu, gap_rank, outer)
    j = int(np.argmax(ll))
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = math.log(lo), math.log(hi)
    for _ in range(40):
        c, e = b - golden * (b - a), a + golden * (b - a)
        fc, fe = _gride_loglik(np.exp([c, e]), log_mu, gap_rank, outer)
        if fc > fe:
            b = e
        else:
            a = c
    return math.exp((a + b) / 2.0)


def _cross_check(estimator: Any, dist: np.ndarray, **kwargs: Any) -> float:
    """Run a cross-check estimator; a degenerate neighbour table gives ``inf`` with a warning, never a crash."""
    try:
        return float(estimator(dist, **kwargs))
    except ValueError as err:
        warnings.warn(f"{estimator.__name__} is undefined here and is reported as inf: {err}", stacklevel=3)
        return math.inf
