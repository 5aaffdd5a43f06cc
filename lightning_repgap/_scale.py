"""Scale normalisation: every number but ``gap`` is independent of the representation's global scale.

Representations can live at any scale (1e-30 after a collapse-prone normalisation, 1e20 before one). The search
works in float32, whose squared distances under- or overflow far from unit scale, and so do the float32 moments of
the concentration. So the sets are first multiplied by a power of two that brings their largest magnitude into
``[1, 2)``: in binary floating point that multiplication is exact (no rounding, barring under/overflow, which it
removes), so every scale-free key is computed from the same numbers at every scale, and the squared-distance
results are multiplied back by the same power of two (again exactly). Sets already within ``2**±EXPONENT_SLACK``
of unit scale are left alone (no copy of the bank).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lightning_repgap.gap import GapCurve

#: Sets whose largest magnitude lies in ``[2**-EXPONENT_SLACK, 2**EXPONENT_SLACK)`` are not rescaled.
EXPONENT_SLACK = 16


def _max_abs(x: np.ndarray) -> float:
    """``max |x|`` as ``max(max x, -min x)``: the same value (one of the ``|x|``), two reads and no temporary."""
    return max(0.0, float(x.max(initial=0.0)), -float(x.min(initial=0.0)))


def unit_exponent(*sets: np.ndarray | None, known_peak: float = 0.0) -> int:
    """Power of two ``e`` such that ``max|x| * 2**-e`` lies in ``[1, 2)``; 0 when no rescaling is needed.

    ``known_peak`` is the largest magnitude of sets already measured (e.g. the bank, by
    :func:`lightning_repgap._duplicates.exact_copies_and_peak`), which are then not passed again.

    Example:
        >>> unit_exponent(np.array([[3e-20, 0.0]])), unit_exponent(np.array([[3.0]]))
        (-65, 0)

    """
    peak = max((_max_abs(x) for x in sets if x is not None and x.size), default=0.0)
    peak = max(peak, known_peak)
    if peak == 0.0 or not math.isfinite(peak):
        return 0
    exponent = math.frexp(peak)[1] - 1  # peak = m * 2**(e+1), m in [0.5, 1)
    return 0 if abs(exponent) < EXPONENT_SLACK else exponent


def rescale(x: np.ndarray, exponent: int) -> np.ndarray:
    """``x * 2**-exponent`` (exact), float16 widened to float32; ``x`` itself when ``exponent == 0``."""
    if exponent == 0:
        return x
    dtype = np.float32 if x.dtype == np.float16 else x.dtype
    return np.ldexp(x.astype(dtype, copy=False), -exponent).astype(dtype, copy=False)


def restore_curve(curve: GapCurve, exponent: int) -> GapCurve:
    """The curve in the caller's units: every squared-distance field multiplied by ``4**exponent`` (exact)."""
    if exponent == 0:
        return curve

    def back(a: np.ndarray) -> np.ndarray:
        return np.ldexp(np.asarray(a, dtype=np.float64), 2 * exponent)

    return dataclasses.replace(
        curve,
        gaps=back(curve.gaps),
        per_query=back(curve.per_query),
        scale=float(np.ldexp(curve.scale, 2 * exponent)),
        train_gaps=None if curve.train_gaps is None else back(curve.train_gaps),
        train_per_query=None if curve.train_per_query is None else back(curve.train_per_query),
        knn_dist_sq=None if curve.knn_dist_sq is None else back(curve.knn_dist_sq),
    )


__all__ = ["EXPONENT_SLACK", "rescale", "restore_curve", "unit_exponent"]
