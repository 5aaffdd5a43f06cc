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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lightning_repgap._checks import _check_gap_sets, _check_positive_int, check_sizes
from lightning_repgap._concentration_block import ConcentrationSubset, block_moments
from lightning_repgap._gemm import GemmOption
from lightning_repgap._prepare import centred32, centred_aug32, pair_dist_sq
from lightning_repgap._threads import thread_scope
from lightning_repgap.search import (
    Backend,
    BankSearch,
    IndexOption,
    SearchEngine,
    SearchPrecision,
    engine_for,
    resolve_index,
    sample_accuracy,
)

__all__ = ["CONCENTRATION_SUBSET", "DUP_RTOL", "GapCurve", "build_curve", "check_sizes", "gap_curve", "geometric_sizes"]

log = logging.getLogger(__name__)

#: Squared distances at or below ``DUP_RTOL * scale`` count as duplicates (train/test leakage, collapsed points).
DUP_RTOL = 1e-9
#: Queries and bank points whose pairwise squared distances give :attr:`GapCurve.concentration` (read from the
#: exact search's own float32 tiles where they run: no product of its own).
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
        backend: the search that ran: the exact backend (``"torch"``, ``"faiss"``, ...) or the approximate index
            (``"ivf"``, ``"hnsw"``).
        accuracy: with an approximate engine, ``recall`` and ``gap_rel_error`` at :math:`n_{max}` measured against
            an exact search of a sample of the queries (:func:`lightning_repgap.search.sample_accuracy`); empty
            for the exact engine.
        report: the engine's own details (``ApproximateGap`` for an approximate index), else ``None``.
        knn_index: int64, same shape as ``knn_dist_sq``: the ``reference`` row (as passed) of each neighbour, so
            copies among a query's neighbours can be recognised (:mod:`lightning_repgap._duplicates`); ``None``
            without a neighbour table.

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
    accuracy: Mapping[str, float] = field(default_factory=dict)
    report: Any = None
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
    index: IndexOption = "exact",
    gemm: GemmOption = "auto",
    search_precision: SearchPrecision = "auto",
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
            pays it (a few % of the curve's cost at the default 256). TwoNN's relative standard error is about
            ``1 / sqrt(neighbor_queries)`` (6 % at 256).
        neighbor_queries: how many queries get the ``n_neighbors`` search.
        backend: exact search backend, see :func:`lightning_repgap.search.nearest`.
        num_threads: threads for the search (torch and FAISS); default ``REPGAP_NUM_THREADS``, else torch's
            current intra-op count, which Lightning divides among the processes of a DDP job on one machine.
        index: search engine: ``"exact"``, ``"ivf"`` / ``"hnsw"`` (approximate, with measured accuracy) or
            ``"auto"`` (:func:`lightning_repgap.search.auto_index`).
        gemm: library of the CPU score tiles (``"auto"``, ``"torch"``, ``"numpy"``); wins over ``REPGAP_CPU_GEMM``.
        search_precision: arithmetic of the exact search's tiles (``"auto"``, ``"fp32"``, ``"bf16-screen"``; see
            :data:`~lightning_repgap.config.SearchPrecision`); the answer is exact either way.

    Returns:
        A :class:`GapCurve`.

    Example:
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
    curve = build_curve(
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
        index=index,
        gemm=gemm,
        device=queries.device if isinstance(queries, torch.Tensor) else None,
        search_precision=search_precision,
    )
    return restore_curve(curve, exponent)


def build_curve(
    reference: np.ndarray,
    queries: np.ndarray,
    train_queries: np.ndarray | None = None,
    *,
    sizes: Any = None,
    min_size: int = 16,
    ratio: float = 2.0,
    seed: int | None = 0,
    n_neighbors: int = 0,
    neighbor_queries: int = 256,
    backend: Backend = "auto",
    num_threads: int | None = None,
    index: IndexOption = "exact",
    gemm: GemmOption = "auto",
    device: torch.device | None = None,
    engine: SearchEngine | None = None,
    search_precision: SearchPrecision = "auto",
    wrap_engine: Callable[[SearchEngine], SearchEngine] | None = None,
) -> GapCurve:
    """The one curve builder: one engine search, then running minima, scale, concentration and neighbour distances.

    :func:`gap_curve` on inputs already validated by ``_check_gap_sets`` (no second pass over the bank). The queries
    and the training queries are searched together, as one query set, and split afterwards.

    Args:
        reference: ``(n_max, D)`` validated bank.
        queries: ``(m, D)`` validated queries.
        train_queries: ``(m', D)`` validated training queries, or ``None``.
        sizes: see :func:`gap_curve`.
        min_size: see :func:`gap_curve`.
        ratio: see :func:`gap_curve`.
        seed: see :func:`gap_curve`; also seeds an approximate engine's sample and k-means.
        n_neighbors: see :func:`gap_curve`.
        neighbor_queries: see :func:`gap_curve`.
        backend: see :func:`gap_curve`.
        num_threads: see :func:`gap_curve`; the one thread scope of the whole search.
        index: see :func:`gap_curve`.
        gemm: see :func:`gap_curve`.
        device: device of the torch backend (default the CPU).
        engine: a ready :class:`~lightning_repgap.search.SearchEngine`; overrides ``index``, ``backend``, ``gemm``
            and ``device``.
        search_precision: see :func:`gap_curve`.
        wrap_engine: applied to the engine before it runs, e.g. to share an exact search among DDP ranks
            (``lightning_repgap._shard``); it must return an engine with the same contract.

    Returns:
        A :class:`GapCurve`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> build_curve(rng.random((256, 3)), rng.random((32, 3)), sizes=[64, 256]).gaps.shape
        (2,)

    """
    n_max = reference.shape[0]
    grid = geometric_sizes(n_max, min_size=min(min_size, n_max), ratio=ratio) if sizes is None else sizes
    grid = check_sizes(grid, n_max)
    n_neighbors = int(n_neighbors)
    searched = int(grid[-1])  # bank points that take part; the neighbour table is drawn from them
    if not 0 <= n_neighbors <= searched:
        raise ValueError(
            f"`n_neighbors` must be in [0, {searched}] (the largest bank size searched), got {n_neighbors}."
        )
    if engine is None:
        name = resolve_index(index, n_max)
        options: dict[str, Any] = {} if name == "exact" else {"seed": seed}
        engine = engine_for(name, backend=backend, gemm=gemm, device=device, precision=search_precision, **options)
    if wrap_engine is not None:
        engine = wrap_engine(engine)
    scope = thread_scope(num_threads, faiss=engine.uses_faiss)  # validates num_threads before the bank is copied
    # Only the first ``grid[-1]`` bank points take part; the rest of ``reference`` is ignored.
    order = np.random.default_rng(seed).permutation(n_max)[:searched] if seed is not None else None
    all_queries = queries if train_queries is None else np.concatenate([queries, train_queries])
    m = queries.shape[0]
    pick = None
    if n_neighbors:
        n_pick = _check_positive_int(neighbor_queries, "neighbor_queries")
        pick = np.random.default_rng(seed).permutation(m)[:n_pick]
    subset = _concentration_subset(order, searched, m)
    with scope:
        found = engine.search(
            reference, all_queries, order, grid, knn_queries=pick, n_neighbors=n_neighbors, concentration=subset
        )
    minima = found.minima.running()
    per_query = minima.dist_sq
    knn = None if pick is None else _knn_dist_sq(reference, queries, pick, found)
    return GapCurve(
        sizes=grid,
        gaps=per_query[:, :m].mean(axis=1),
        per_query=np.ascontiguousarray(per_query[:, :m]),
        nearest_index=minima.rows[-1, :m],
        scale=2.0 * found.sq_dev_sum / max(1, searched - 1),
        concentration=_curve_concentration(reference, queries, subset, order, found),
        train_gaps=None if train_queries is None else per_query[:, m:].mean(axis=1),
        train_per_query=None if train_queries is None else np.ascontiguousarray(per_query[:, m:]),
        knn_dist_sq=None if knn is None else knn[0],
        backend=engine.label,
        accuracy=_accuracy(found, m),
        report=found.report,
        knn_index=None if knn is None else knn[1],
    )


def _concentration_subset(order: np.ndarray | None, searched: int, m: int) -> ConcentrationSubset:
    """The queries and bank positions behind :attr:`GapCurve.concentration`: ``CONCENTRATION_SUBSET`` of each.

    The user's queries only (the first ``m`` searched; not train queries), evenly spread in case they come sorted
    (e.g. by class); the first bank positions, which hold rows in random order, except without a shuffle (``order``
    is ``None``), where the positions get spread out the same way.
    """
    positions = np.arange(min(searched, CONCENTRATION_SUBSET)) if order is not None else None
    if positions is None:
        positions = _spread(searched, CONCENTRATION_SUBSET)
    return ConcentrationSubset(_spread(m, CONCENTRATION_SUBSET), positions)


def _curve_concentration(
    reference: np.ndarray,
    queries: np.ndarray,
    subset: ConcentrationSubset,
    order: np.ndarray | None,
    found: BankSearch,
) -> float:
    """:attr:`GapCurve.concentration`: ``mean^2 / var`` of the squared distances of ``subset`` (see above).

    From the moments the engine took from its search (:attr:`BankSearch.concentration`: the exact engine's float32
    tiles, or its own product of the subset); otherwise (an approximate index) from one product of the subset's rows,
    centred on the engine's ``centre`` as its float32 copies are, with the same norm column and the same product
    (:func:`~lightning_repgap._concentration_block.block_moments`).
    """
    moments = found.concentration
    if moments is None:
        rows = subset.positions if order is None else order[subset.positions]
        # Gathered while centred, a chunk at a time: no gathered float copy of the rows besides the centred one.
        moments = block_moments(
            centred_aug32(reference, found.centre, rows), centred32(queries, found.centre, subset.queries)
        )
    return moments.concentration()


def _knn_dist_sq(
    reference: np.ndarray, queries: np.ndarray, pick: np.ndarray, found: BankSearch
) -> tuple[np.ndarray, np.ndarray]:
    """Exact float64 squared distances (ascending) of the neighbour-table queries to their neighbours, and the rows.

    The table's queries are ``queries[pick]``. The rows move with their distances, so ``rows[i, j]`` is the bank
    row at ``dist_sq[i, j]``.
    """
    knn_rows = found.knn_rows
    assert knn_rows is not None
    # An engine that scored them already (both exact engines) hands over the same float64 values; otherwise the
    # picked queries are gathered a step at a time by pair_dist_sq (no copy of all of them first).
    out = pair_dist_sq(reference, queries, knn_rows, pick) if found.knn_dist_sq is None else found.knn_dist_sq
    sorter = np.argsort(out, axis=1, kind="stable")
    return np.take_along_axis(out, sorter, axis=1), np.take_along_axis(knn_rows, sorter, axis=1)


def _accuracy(found: BankSearch, m: int) -> dict[str, float]:
    """Recall and relative gap error at :math:`n_{max}` on the exactly searched sample, among the user's queries.

    All sampled queries count if none of them is one of the ``m`` user queries. Empty for an exact engine.
    """
    if found.exact_sample is None:
        return {}
    sampled, exact = found.exact_sample
    mine = sampled < m
    if not mine.any():
        mine[:] = True
    recall, rel_err = sample_accuracy(found.minima.dist_sq[-1:, sampled[mine]], exact[-1:, mine])
    return {"recall": float(recall[-1]), "gap_rel_error": float(rel_err[-1])}


def _spread(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` row indices spread evenly over ``range(n)``."""
    if n <= k:
        return np.arange(n)
    return np.linspace(0, n - 1, k).round().astype(np.int64)
