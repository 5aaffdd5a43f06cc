"""Separated clusters in the trusted ``dim``: the empty band of the per-query gaps, the fill, and noise within them.

:func:`lightning_repgap.dimension.trusted_dimension` reads a cloud as separated clusters where the per-query gaps at
some bank size split into two groups (:func:`_cluster_split`), and then diagnoses noise within the clusters on the gap
curve from where every cluster holds bank points (:func:`_cluster_noise`). The constants are re-exported by
:mod:`lightning_repgap._trusted_parts`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from lightning_repgap.calibration import calibration_range

__all__ = [
    "CLUSTER_EDGE",
    "CLUSTER_NOISE_FLOOR",
    "CLUSTER_NOISE_RATIO",
    "CLUSTER_NOISE_SIZES",
    "CLUSTER_NOISE_SURE",
    "CLUSTER_SHARE",
    "CLUSTER_SPLIT",
]

#: Separated clusters: a query's nearest bank point lies in its own cluster once that cluster holds a bank point, else
#: in another one, at least the separation away. While part of the clusters hold no bank point yet (bank sizes up to a
#: few times the number of clusters), the per-query gaps fall into two groups, separated by an empty band of the ratio
#: of between- to within-cluster squared distances: the gap curve falls like the share of empty clusters
#: (``exp(-n / k)``, faster than any power law) and then follows the clusters' own law, which the noise-floor model
#: reads as a curve (``dim`` near 1) under a floor. A connected set, with or without ambient noise, has a continuous
#: distribution of nearest-neighbour distances: no empty band. :func:`_cluster_split` is the widest empty band of the
#: sorted log per-query gaps (with at least :data:`CLUSTER_SHARE` of the queries on either side), the largest over the
#: fitted bank sizes; from this value ``dim`` is the local estimate, which reads the clusters' own dimension. On the
#: suite's 361 opened clouds (722 readings) the band is at most 1.02 (a catenary with a logistic parameter); clean
#: separated clusters built for the rule read 1.4-7.7. Tuned on a seeded development set of clusters (clus12).
CLUSTER_SPLIT = 1.5
#: See :data:`CLUSTER_SPLIT`: the least share of the queries on either side of the empty band (a few outlying queries
#: of a heavy-tailed density leave gaps of their own).
CLUSTER_SHARE = 0.05
#: See :data:`CLUSTER_SPLIT`: the least number of queries on either side of the band (review: with 8-40 queries a 1- to
#: 4-d cube read as separated clusters in most draws under a floor of one query; from 200 queries the share decides).
CLUSTER_EDGE = 10
#: Noise within separated clusters: once every cluster holds bank points (:func:`_cluster_fill`), the gap curve is the
#: clusters' own curve (each cluster's ``(w_i n)^{-2/d}``: the same law in ``n``). Ambient noise of a few % of the
#: clusters' spread swamps their nearest neighbours, so the local estimate reads the noise (clusters of noisy segments,
#: truth 1: 10-28), while that curve shows the floor. Over at least this many bank sizes from there, the whole rule is
#: run on it; its reading is taken where it diagnoses a noise floor and the local estimate reads at least
#: :data:`CLUSTER_NOISE_RATIO` times it.
CLUSTER_NOISE_SIZES = 3
#: See :data:`CLUSTER_NOISE_SIZES`. Noise swamping the clusters' nearest neighbours makes the local estimate read many
#: times their own floor-corrected law (noisy curves 7-28, noisy 2- to 8-d Gaussians 4.4-6.8, one 3.0); clean clusters
#: whose own curve still bends while small ones fill read at most 3.2 (tuned in-sample: ``studies/cluster_sets.py``).
CLUSTER_NOISE_RATIO = 4.0
#: See :data:`CLUSTER_NOISE_SIZES`: the within-cluster reading is taken only where its constant floor explains at least
#: this fraction of :math:`G(n_{max})` (its ``noise_floor``). Noise that swamps the clusters' nearest neighbours (what
#: the ratio test takes the local estimate to read) makes the floor most of the gap: the readings that the within-
#: cluster curve made better showed 0.78-1.04 (two barely better ones 0.71 and 0.76). The 3-5 sizes after the fill of 6-
#: to 12-d Gaussian clusters under 1-2 % noise, whose local estimate read their own dimension (7-10), bend as the
#: clusters' own law does; a floor explained 0.51-0.63 of the gap and its floor-corrected law fell to 1
#: (``_trusted_parts.NOISE_MIN_DIM``): every such reading was made worse. Half way between (review of the thirteenth
#: session; in-sample: ``studies/cluster_sets.py`` and the review's generator). Anisotropic 8-d clusters under 1 % and 5
#: % noise (0.80) are still made worse at n = 2,500.
CLUSTER_NOISE_FLOOR = 0.7
#: See :data:`CLUSTER_NOISE_FLOOR`: below this floor fraction the diagnosis is not sure (anisotropic 8-d clusters under
#: 1 % noise read 0.80 and were made worse), so the interval reaches up to the local estimate, the other reading.
CLUSTER_NOISE_SURE = 0.9


def _bands(per_query: np.ndarray, rows: int) -> list[tuple[float, float]]:
    """Per row of ``per_query`` (the first ``rows``): the widest empty band of the sorted log gaps and its midpoint.

    At least :data:`CLUSTER_EDGE` queries (and :data:`CLUSTER_SHARE` of them) on either side; ``(0, inf)`` where there
    are too few queries. Zeros (duplicates) are left out.
    """
    out = []
    for row in np.asarray(per_query, dtype=np.float64)[:rows]:
        v = np.sort(np.log(row[row > 0.0]))
        # At least CLUSTER_EDGE queries on either side: with a few queries the spacing of the smallest (or largest)
        # log gaps is heavy-tailed on any connected set and, maximised over every size, passes for a band.
        edge = max(CLUSTER_EDGE, math.ceil(CLUSTER_SHARE * v.size))
        if v.size - 2 * edge < 1:
            out.append((0.0, math.inf))
            continue
        spacing = v[edge : v.size - edge + 1] - v[edge - 1 : v.size - edge]
        j = int(np.argmax(spacing))
        out.append((float(spacing[j]), 0.5 * float(v[edge - 1 + j] + v[edge + j])))
    return out


def _cluster_split(sizes: np.ndarray, per_query: np.ndarray, bands: list[tuple[float, float]] | None = None) -> float:
    """The widest empty band of the sorted log per-query gaps at any bank size (see :data:`CLUSTER_SPLIT`).

    ``sizes`` ``(S,)`` and ``per_query`` ``(S, m)`` are the fitted bank sizes and their per-query squared prefix
    minima; zeros (duplicates) are left out. At least :data:`CLUSTER_SHARE` of the queries must lie on either side of
    the band. Invariant to scale, rotation and translation (a difference of logs of squared distances). ``bands``:
    :func:`_bands` of the same rows where already computed (shared with :func:`_cluster_fill`).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> near, far = rng.uniform(1.0, 2.0, 300), rng.uniform(100.0, 200.0, 200)
        >>> round(_cluster_split(np.array([16, 32]), np.stack([np.concatenate([near, far]), near[:1].repeat(500)])), 1)
        3.9
    """
    bands = _bands(per_query, len(sizes)) if bands is None else bands
    return max([0.0] + [width for width, _ in bands])


def _cluster_fill(
    sizes: np.ndarray, per_query: np.ndarray, bands: list[tuple[float, float]] | None = None
) -> int | None:
    """The first bank size (index) from which every cluster holds bank points (see :data:`CLUSTER_NOISE_SIZES`).

    The first size after the last one with a band of :data:`CLUSTER_SPLIT` at which no query's gap lies beyond that
    band's midpoint (no query is a separation away any more); ``None`` without a band, ``len(sizes)`` if never.
    ``bands``: :func:`_bands` of the same rows where already computed.
    """
    bands = _bands(per_query, len(sizes)) if bands is None else bands
    last = [i for i, (width, _) in enumerate(bands) if width >= CLUSTER_SPLIT]
    if not last:
        return None
    i, mid = last[-1] + 1, bands[last[-1]][1]
    while i < len(sizes) and (np.log(per_query[i][per_query[i] > 0.0]) > mid).any():
        i += 1
    return i


def _cluster_noise(
    sizes: np.ndarray,
    per_query: np.ndarray,
    d_local: float,
    read: Callable[..., Any],
    bands: list[tuple[float, float]],
    calibrate: bool,
) -> Any | None:
    """The within-cluster noise-floor reading of separated clusters (see :data:`CLUSTER_NOISE_SIZES`), or ``None``.

    Args:
        sizes: the fitted bank sizes ``(S,)``.
        per_query: their per-query squared gaps ``(S, m)``.
        d_local: the local estimate over the whole cloud.
        read: the whole rule (``trusted_dimension`` with the caller's neighbour table and settings but ``calibrate``),
            called as ``read(sizes, per_query, calibrate=calibrate)`` on a part of the curve.
        bands: :func:`_bands` of ``per_query`` (computed once for :func:`_cluster_split` too).
        calibrate: the caller's ``calibrate`` (then the part's sizes must lie in the calibration's range).

    Returns:
        ``read``'s estimate on the sizes from :func:`_cluster_fill` on, where there are at least
        :data:`CLUSTER_NOISE_SIZES` of them (inside :func:`~lightning_repgap.calibration.calibration_range` when
        calibrating), it diagnoses a noise floor (method ``"noise_floor"``) explaining at least
        :data:`CLUSTER_NOISE_FLOOR` of its :math:`G(n_{max})`, and ``d_local`` reads at least
        :data:`CLUSTER_NOISE_RATIO` times its ``dim``; else ``None``. Its ``dim`` is the floor-corrected law over
        these few sizes, raised to 1 (``_trusted_parts.NOISE_MIN_DIM``) where it falls below (such a value says "a
        curve under a floor", not how far below 1 the law read), and its interval is conditional on the floor
        diagnosis: the bootstrap of a few sizes' fit, which leaves out the chance that the floor is the clusters' own
        bend; where the floor explains less than :data:`CLUSTER_NOISE_SURE` of the gap, ``dim_high`` reaches
        ``d_local`` (the other reading).
    """
    fill = _cluster_fill(sizes, per_query, bands)
    if fill is None or len(sizes) - fill < CLUSTER_NOISE_SIZES:
        return None
    lo, hi = calibration_range()
    if calibrate and (sizes[fill] < lo or sizes[-1] > hi):  # the within-cluster fit needs the calibration's range
        return None
    within = read(sizes[fill:], per_query[fill:], calibrate=calibrate)
    if within.method != "noise_floor" or within.noise_floor < CLUSTER_NOISE_FLOOR:
        return None
    if d_local < CLUSTER_NOISE_RATIO * within.dim:
        return None
    if within.noise_floor < CLUSTER_NOISE_SURE:  # the floor may be partly the clusters' own bend: reach both readings
        return dataclasses.replace(within, dim_high=max(within.dim_high, d_local))
    return within
