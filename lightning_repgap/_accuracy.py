"""How an approximate engine did against the exact search on a sample of its queries."""

from __future__ import annotations

import numpy as np

__all__ = ["sample_accuracy"]

# A query counts as found when its distance is within this relative tolerance of the exact one.
_FOUND_RTOL = 1e-9


def sample_accuracy(found: np.ndarray, exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Any engine against the exact search on a sample: per-size recall and relative gap error.

    Args:
        found: float64 ``(S, k)`` prefix minima the engine found for ``k`` sampled queries (``>= exact``).
        exact: float64 ``(S, k)`` exact prefix minima of the same queries.

    Returns:
        ``(recall, gap_rel_error)``, each float64 ``(S,)``: the fraction of queries at the exact distance (ties
        with another row count as found), and ``mean(found) / mean(exact) - 1 >= 0``.

    Example:
        >>> r, e = sample_accuracy(np.array([[1.0, 2.0]]), np.array([[1.0, 1.0]]))
        >>> r.tolist(), e.tolist()
        ([0.5], [0.5])

    """
    recall = np.mean(found <= exact * (1 + _FOUND_RTOL), axis=1)
    exact_mean = np.ascontiguousarray(exact).mean(axis=1)  # C order: numpy sums a strided row in another order
    found_mean = np.ascontiguousarray(found).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_err = np.where(exact_mean > 0, found_mean / exact_mean - 1.0, np.where(found_mean > 0, np.inf, 0.0))
    # found >= exact per query; only rounding of the means could say otherwise.
    return recall, np.maximum(rel_err, 0.0)
