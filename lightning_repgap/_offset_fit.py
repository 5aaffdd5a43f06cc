"""Least squares of a law with a non-negative offset, shared by the noise-floor fits of the trusted dimension."""

from __future__ import annotations

import numpy as np

__all__ = ["offset_fit_solve"]


def offset_fit_solve(
    su: np.ndarray, sv: np.ndarray, suu: np.ndarray, suv: np.ndarray, svv: np.ndarray, total: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve ``min sum w (1 - a u - b v)^2`` over ``a`` and ``b >= 0`` from its weighted sums: ``(a, b, residual)``.

    ``su``, ``sv``, ``suu``, ``suv`` and ``svv`` are the sums of ``w u``, ``w v``, ``w u^2``, ``w u v`` and ``w v^2``
    (broadcastable), ``total`` the sum of the weights. Where the free optimum puts ``b`` below zero (or the system is
    singular), ``b = 0`` and ``a`` is the one-parameter optimum. The residual is the weighted sum of squares.

    Example:
        >>> u, v = np.array([1.0, 2.0, 3.0]), np.array([1.5, 1.0, 0.5])  # 1 = 0.25 u + 0.5 v exactly
        >>> a, b, resid = offset_fit_solve(u.sum(), v.sum(), u @ u, u @ v, v @ v, total=3.0)
        >>> float(a), float(b), abs(float(resid)) < 1e-12
        (0.25, 0.5, True)
    """
    det = suu * svv - suv * suv
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (su * svv - sv * suv) / det
        b = (sv * suu - su * suv) / det
    neg = ~(b >= 0)
    a = np.where(neg, su / suu, a)
    b = np.where(neg, 0.0, b)
    resid = total - 2.0 * (a * su + b * sv) + a * a * suu + 2.0 * a * b * suv + b * b * svv
    return a, b, resid
