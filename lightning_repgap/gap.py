r"""The representation-gap curve :math:`G(n)`, computed for every bank size of a grid in one search.

.. math::

    G(n) = \frac{1}{m} \sum_{j=1}^{m} \min_{i \le n} \lVert q_j - r_i \rVert^2

The bank is cut into blocks whose boundaries are the grid sizes :math:`n_1 < n_2 < \dots < n_S = n_{max}`;
the queries are searched against each block with ``k = 1`` and a per-query running minimum gives
:math:`G(n_s)` after block :math:`s`. Every bank point is visited once, so the whole curve costs one exact
search of the queries against the full bank (the ``knn_ground_truth`` loop of FAISS contrib, with ``k = 1``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lightning_repgap._checks import _check_gap_sets, _check_positive_int
from lightning_repgap.calibration import concentration as _concentration
from lightning_repgap.search import (
    Backend,
    Prepared,
    _search_threads,
    needs_float64_ranking,
    prefix_nearest,
    prefix_nearest_and_knn,
    prepare,
    resolve_backend,
)

log = logging.getLogger(__name__)

#: Squared distances at or below ``DUP_RTOL * scale`` count as duplicates (train/test leakage, collapsed points).
DUP_RTOL = 1e-9
#: Queries and bank points whose pairwise squared distances give :attr:`GapCurve.concentration` (one GEMM).
CONCENTRATION_SUBSET = 1024


def geometric_sizes(n_max: int, *, min_size: int = 16, ratio: float = 2.0) -> np.ndarray:
    """Bank sizes ``min_size * ratio**k`` below ``n_max``, followed by ``n_max`` itself.

    Args:
        n_max: largest bank size (the whole bank).
        min_size: first size of the grid.
        ratio: growth factor between consecutive sizes, ``> 1`` (``2`` doubles, ``sqrt(2)`` is finer).

    Returns:
        Strictly increasing int64 sizes ending at ``n_max``.

    Example:
        >>> geometric_sizes(100, min_size=10).tolist()
        [10, 20, 40, 80, 100]

    """
    n_max = _check_positive_int(n_max, "n_max")
    min_size = _check_positive_int(min_size, "min_size")
    if not ratio > 1.0:
        raise ValueError(f"`ratio` must be > 1, got {ratio!r}.")
    sizes: list[int] = []
    k = 0
    while True:
        s = round(min_size * ratio**k)
        if s >= n_max:
            break
        if not sizes or s > sizes[-1]:
            sizes.append(s)
        k += 1
    sizes.append(n_max)
    return np.asarray(sizes, dtype=np.int64)


@dataclass(frozen=True)
class GapCurve:
    """Result of :func:`gap_curve`.

    Attributes:
        sizes: int64 ``(S,)`` bank sizes ``n``.
        gaps: float64 ``(S,)`` :math:`G(n)` for the queries.
        per_query: float64 ``(S, m)`` squared distance of each query to its nearest point among the first
            ``n`` bank points; bootstrap confidence intervals resample its columns without searching again.
        nearest_index: int64 ``(m,)`` row of ``reference`` (as passed, before shuffling) nearest to each query.
        scale: ``2 * trace Cov(reference)``, the mean squared distance between two random bank points.
        concentration: ``mean^2 / var`` of the squared distances between up to ``CONCENTRATION_SUBSET`` queries
            (evenly spread over ``queries``) and as many bank points (the first of the shuffled bank): ``d + 1``
            on a ``d``-sphere, ``2 d`` on a flat ``d``-torus. Feeds the calibration of the gap dimension
            (:func:`lightning_repgap.calibration.calibrate_dimension`).
        train_gaps: float64 ``(S,)`` the same curve for the extra training queries, if any were given.
        train_per_query: float64 ``(S, m_train)`` per-query minima of the training queries, if any.
        knn_dist_sq: float64 ``(min(m, neighbor_queries), k)`` squared distances of a random subset of the
            queries to their ``k`` nearest bank points (ascending), when ``n_neighbors > 0``; feeds TwoNN and MLE.
        backend: the search backend that ran.
        knn_index: int64, same shape as ``knn_dist_sq``: the ``reference`` row (as passed) of each neighbour, so
            copies among a query's neighbours can be recognised (:mod:`lightning_repgap._duplicates`); ``None``
            when no neighbour table was computed or the engine does not report it.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> curve = gap_curve(rng.random((2048, 2)), rng.random((256, 2)), train_queries=rng.random((256, 2)))
        >>> curve.per_query.shape, curve.dup_frac, 0.5 < curve.gap_ratio < 2.0
        ((8, 256), 0.0, True)

    """

    sizes: np.ndarray
    gaps: np.ndarray
    per_query: np.ndarray
    nearest_index: np.ndarray
    scale: float
    concentration: float
    train_gaps: np.ndarray | None = None
    train_per_query: np.ndarray | None = None
    knn_dist_sq: np.ndarray | None = None
    backend: str = ""
    knn_index: np.ndarray | None = None

    @property
    def gap(self) -> float:
        """:math:`G(n_{max})`, the gap against the whole bank."""
        return float(self.gaps[-1])

    @property
    def gap_norm(self) -> float:
        """:math:`G(n_{max})` over the mean squared distance of two bank points: scale-free, in ``[0, ~1]``.

        A bank collapsed to one point has ``scale == 0``: the result is ``0`` if the queries sit on it, else
        ``inf`` (a collapsed representation is as far from generalising as it gets).
        """
        if self.scale > 0:
            return self.gap / self.scale
        return 0.0 if self.gap == 0 else math.inf

    @property
    def dup_frac(self) -> float:
        """Fraction of queries at (numerically) zero distance from a bank point: leakage or collapse."""
        return float(np.mean(self.per_query[-1] <= DUP_RTOL * self.scale))

    @property
    def gap_ratio(self) -> float | None:
        """``G_test(n_max) / G_train(n_max)``; ``None`` without training queries.

        Near 1: held-out data lie as close to the bank as unseen training data do. Above 1: held-out
        representations are off the manifold the training data span.
        """
        if self.train_gaps is None:
            return None
        train = float(self.train_gaps[-1])
        if train > 0:
            return self.gap / train
        return 1.0 if self.gap == 0 else math.inf


def _validate_sizes(sizes: Any, n_max: int) -> np.ndarray:
    arr = np.asarray(sizes, dtype=np.int64).reshape(-1)
    if arr.size == 0 or (np.diff(arr) <= 0).any() or arr[0] < 1 or arr[-1] > n_max:
        raise ValueError(
            f"`sizes` must be strictly increasing integers in [1, {n_max}] (the bank size), got {np.asarray(sizes)}."
        )
    return arr


def gap_curve(
    reference: Any,
    queries: Any,
    *,
    train_queries: Any = None,
    sizes: Any = None,
    min_size: int = 16,
    ratio: float = 2.0,
    seed: int | None = 0,
    n_neighbors: int = 0,
    neighbor_queries: int = 256,
    backend: Backend = "auto",
    num_threads: int | None = None,
) -> GapCurve:
    r"""Representation gap :math:`G(n)` of ``queries`` against growing prefixes of ``reference``.

    Args:
        reference: ``(n_max, D)`` bank: training representations, model samples, any reference set.
        queries: ``(m, D)`` held-out representations.
        train_queries: optional ``(m', D)`` training representations *not* in the bank, for ``gap_ratio``.
        sizes: explicit increasing bank sizes; default :func:`geometric_sizes` with ``min_size``, ``ratio``.
        min_size: first grid size when ``sizes`` is not given.
        ratio: grid growth factor when ``sizes`` is not given.
        seed: the bank is put in a random order drawn from ``seed`` before its prefixes are taken, so that a
            bank sorted by class does not bias the curve; ``None`` keeps the given order.
        n_neighbors: also return the ``n_neighbors`` nearest bank points of ``neighbor_queries`` random queries
            (for TwoNN/MLE). A top-k search costs several times a ``k = 1`` one per query, so only a subset
            pays it: with the default 256 and 10,000 queries it adds about 3 % to the curve's cost. TwoNN's
            relative standard error is about ``1 / sqrt(neighbor_queries)`` (6 % at 256).
        neighbor_queries: how many queries get the ``n_neighbors`` search.
        backend: search backend, see :func:`lightning_repgap.search.nearest`.
        num_threads: threads for the search (torch and FAISS); default ``REPGAP_NUM_THREADS``, else torch's
            current intra-op count, which Lightning divides among the processes of a DDP job on one machine.

    Returns:
        A :class:`GapCurve`.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> curve = gap_curve(rng.random((4096, 2)), rng.random((512, 2)), min_size=64)
        >>> curve.sizes.tolist()
        [64, 128, 256, 512, 1024, 2048, 4096]
        >>> bool(np.all(np.diff(curve.gaps) < 0))
        True

    """
    from lightning_repgap._scale import rescale, restore_curve, unit_exponent  # (imports this module)

    ref, qs, tq = _check_gap_sets(reference, queries, train_queries)
    # Search at unit scale (an exact power-of-two factor) so float32 neither under- nor overflows; see _scale.
    exponent = unit_exponent(ref, qs, tq)
    ref, qs = rescale(ref, exponent), rescale(qs, exponent)
    tq = None if tq is None else rescale(tq, exponent)
    curve = _gap_curve(
        ref,
        qs,
        tq,
        sizes=sizes,
        min_size=min_size,
        ratio=ratio,
        seed=seed,
        n_neighbors=n_neighbors,
        neighbor_queries=neighbor_queries,
        backend=backend,
        num_threads=num_threads,
        device=queries.device if isinstance(queries, torch.Tensor) else None,
    )
    return restore_curve(curve, exponent)


def _gap_curve(
    ref: np.ndarray,
    qs: np.ndarray,
    tq: np.ndarray | None,
    *,
    sizes: Any = None,
    min_size: int = 16,
    ratio: float = 2.0,
    seed: int | None = 0,
    n_neighbors: int = 0,
    neighbor_queries: int = 256,
    backend: Backend = "auto",
    num_threads: int | None = None,
    device: torch.device | None = None,
) -> GapCurve:
    """:func:`gap_curve` on inputs already validated by ``_check_gap_sets`` (no second pass over the bank)."""
    n_max = ref.shape[0]
    grid = geometric_sizes(n_max, min_size=min(min_size, n_max), ratio=ratio) if sizes is None else sizes
    grid = _validate_sizes(grid, n_max)
    n_neighbors = int(n_neighbors)
    searched = int(grid[-1])  # bank points that take part; the neighbour table is drawn from them
    if not 0 <= n_neighbors <= searched:
        raise ValueError(
            f"`n_neighbors` must be in [0, {searched}] (the largest bank size searched), got {n_neighbors}."
        )
    resolved = resolve_backend(backend)
    threads = _search_threads(num_threads)  # validates num_threads before the bank is copied

    order = np.random.default_rng(seed).permutation(n_max) if seed is not None else np.arange(n_max)
    # Only the first ``grid[-1]`` bank points take part; the rest of ``reference`` is ignored.
    order = order[: grid[-1]]
    all_queries = qs if tq is None else np.concatenate([qs, tq])
    prep = prepare(ref, all_queries, rows=order)  # the bank in ``order``, without a reordered copy of it
    m = qs.shape[0]
    knn_dist_sq = None
    pick = None
    if n_neighbors:
        n_pick = _check_positive_int(neighbor_queries, "neighbor_queries")
        pick = np.random.default_rng(seed).permutation(m)[:n_pick]
    # One thread setting for every torch step (float32 search with its neighbour table, float64 re-ranking): the
    # inner searches then find it already in place instead of switching torch's pool back and forth.
    with threads:
        per_query, nearest_pos, knn_i = _blocked_search(
            prep, grid, backend=resolved, num_threads=num_threads, device=device, knn_rows=pick, n_neighbors=n_neighbors
        )
    knn_index = None
    if knn_i is not None:
        knn_dist_sq = prep.dist_sq(knn_i, rows=pick)
        sorter = np.argsort(knn_dist_sq, axis=1, kind="stable")  # float64 order; the rows move with their distances
        knn_dist_sq = np.take_along_axis(knn_dist_sq, sorter, axis=1)
        knn_index = order[np.take_along_axis(knn_i, sorter, axis=1)]
    centred = prep.reference32
    scale = 2.0 * prep.reference_sq_sum / max(1, centred.shape[0] - 1)
    # The user's queries only (not train queries), evenly spread in case they come sorted (e.g. by class); the
    # bank rows are already in random order, except with seed=None, where they get spread out the same way.
    conc_q = prep.queries32[_spread(m, CONCENTRATION_SUBSET)]
    conc_r = prep.reference32 if seed is not None else prep.reference32[_spread(centred.shape[0], CONCENTRATION_SUBSET)]
    concentration = _concentration(conc_r, conc_q, n_sub=CONCENTRATION_SUBSET)
    return GapCurve(
        sizes=grid,
        gaps=per_query[:, :m].mean(axis=1),
        per_query=np.ascontiguousarray(per_query[:, :m]),
        nearest_index=order[nearest_pos[:m]],
        scale=scale,
        concentration=concentration,
        train_gaps=None if tq is None else per_query[:, m:].mean(axis=1),
        train_per_query=None if tq is None else np.ascontiguousarray(per_query[:, m:]),
        knn_dist_sq=knn_dist_sq,
        backend=resolved,
        knn_index=knn_index,
    )


def _spread(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` row indices spread evenly over ``range(n)``."""
    if n <= k:
        return np.arange(n)
    return np.linspace(0, n - 1, k).round().astype(np.int64)


def _blocked_search(
    prep: Prepared,
    grid: np.ndarray,
    *,
    backend: str,
    num_threads: int | None,
    device: torch.device | None,
    knn_rows: np.ndarray | None = None,
    n_neighbors: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Exact float64 prefix minima ``(S, m)`` and each query's nearest bank position, from one prefix search.

    With ``knn_rows``, also those queries' ``n_neighbors`` nearest bank positions (float32 order), from the same
    pass (see :func:`~lightning_repgap.search.prefix_nearest_and_knn`); ``None`` otherwise.

    Winners are chosen in float32; only their distances are recomputed in float64, and only where the winner
    changed from the previous size. Queries whose nearest neighbour is too close for float32 to rank (very low
    dimension with a large bank, collapsed representations) are searched again in float64. A running minimum
    keeps the curve monotone even if float32 ranking and float64 distances disagree on a near-tie.
    """
    knn = None
    if knn_rows is None:
        winners = prefix_nearest(prep, grid, backend=backend, num_threads=num_threads, device=device)
    else:
        winners, knn = prefix_nearest_and_knn(
            prep, grid, knn_rows, n_neighbors, backend=backend, num_threads=num_threads, device=device
        )
    per_query = _winner_distances(prep, winners)
    # per_query[-1] is the float64 distance of each query's float32 winner in the whole bank: what the check needs.
    risky = needs_float64_ranking(prep, per_query[-1])
    if risky.size:
        log.debug("re-ranking %d of %d queries in float64", risky.size, winners.shape[1])
        winners[:, risky] = prefix_nearest(prep, grid, backend=backend, num_threads=num_threads, rows=risky)
        per_query[:, risky] = _winner_distances(prep, winners[:, risky], rows=risky)
    first_best = np.argmin(per_query, axis=0)
    np.minimum.accumulate(per_query, axis=0, out=per_query)
    return per_query, winners[first_best, np.arange(winners.shape[1])], knn


def _winner_distances(prep: Prepared, winners: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Float64 distance ``(S, len(rows))`` of each query (``rows``, default all) to its winner at every size.

    Only where the winner changed from the previous size is a distance recomputed.
    """
    per_query = np.empty(winners.shape, dtype=np.float64)
    per_query[0] = prep.dist_sq(winners[0][:, None], rows=rows)[:, 0]
    for s in range(1, winners.shape[0]):
        changed = np.flatnonzero(winners[s] != winners[s - 1])
        per_query[s] = per_query[s - 1]
        query_rows = changed if rows is None else rows[changed]
        per_query[s, changed] = prep.dist_sq(winners[s, changed][:, None], rows=query_rows)[:, 0]
    return per_query
