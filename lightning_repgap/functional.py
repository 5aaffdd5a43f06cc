"""Functional interface: every ``repgap/`` quantity from plain arrays, with no Trainer and no state.

Follows the torchmetrics split: ``_gap_update`` validates and converts, ``_gap_compute`` turns arrays into numbers;
:func:`representation_gap` is the public one-call version returning a dict of tensors, and :func:`analyze` the one
returning the full typed :class:`GapResult` (values, curve, fit). :class:`~lightning_repgap.metric.RepresentationGap`
calls the same two private functions, so the Metric and the functional cannot drift apart. The settings travel as
one :class:`~lightning_repgap.config.GapConfig`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from typing_extensions import Unpack

from lightning_repgap._checks import _check_gap_sets, _check_labels
from lightning_repgap._duplicates import (
    distinct_neighbours,
    effective_sizes,
    estimator_tables,
    exact_copies_and_peak,
    near_copies,
)
from lightning_repgap._faults import (
    DegenerateRepresentationError,
    TooFewDistinctPointsError,
    TooFewDistinctSizesError,
    TooFewQueriesError,
)
from lightning_repgap._local_dimension import _cross_check
from lightning_repgap._scale import rescale, restore_curve, unit_exponent
from lightning_repgap._threads import measurement_threads
from lightning_repgap._width import numerical_width
from lightning_repgap.approximate import APPROXIMATE_KEYS, ApproximateGap
from lightning_repgap.config import GapConfig, GapSettings
from lightning_repgap.dimension import (
    CROSS_CHECK_ROWS,
    NEIGHBOR_QUERIES,
    DimensionEstimate,
    DimensionFit,
    DuplicatePointsWarning,
    mle_dimension,
    trusted_dimension,
    twonn_dimension,
    warn_disagreement,
)
from lightning_repgap.gap import DUP_RTOL, GapCurve, build_curve
from lightning_repgap.search import SearchEngine

__all__ = [
    "ACCURACY_KEYS",
    "CORE_KEYS",
    "MIN_QUERIES",
    "OPTIONAL_KEYS",
    "GapInputs",
    "GapResult",
    "analyze",
    "representation_gap",
]

log = logging.getLogger(__name__)

#: Keys always present in the result, in logging order.
CORE_KEYS = (
    "gap",
    "gap_norm",
    "dim",
    "dim_low",
    "dim_high",
    "law_r2",
    "dim_twonn",
    "dim_mle",
    "dup_frac",
    "bank_dup_frac",
    "dim_method",
)
#: Fewest queries the gap-law fit accepts. G(n) is a mean over the queries and its interval a bootstrap over them: a
#: single query read a 5-cube as 3.20 [2.83, 3.62] (law_r2 0.76), and below about 8 the interval cannot cover.
MIN_QUERIES = 8
#: Keys present only when their inputs were given (``train_queries``; both label vectors).
OPTIONAL_KEYS = ("gap_ratio", "knn_acc")
#: Keys present only with an approximate ``index``: accuracy measured on an exact sample of the queries.
ACCURACY_KEYS = APPROXIMATE_KEYS


@dataclass(frozen=True)
class GapInputs:
    """Validated inputs of one measurement (float16, float32 or float64 arrays, see ``_check_representations``)."""

    reference: np.ndarray
    queries: np.ndarray
    train_queries: np.ndarray | None = None
    reference_labels: np.ndarray | None = None
    query_labels: np.ndarray | None = None


@dataclass(frozen=True)
class GapResult:
    """Everything one measurement produced (:func:`analyze`): the scalars and the objects they came from.

    Attributes:
        values: ``{key: float}``, the keys of :func:`representation_gap` in logging order.
        curve: the gap curve :math:`G(n)` with its per-query minima and neighbour table.
        fit: the gap-law fit (slope, interval, :math:`R^2`, the sizes used): ``law_r2``, and ``dim`` when
            ``dimension.method`` is ``"gap"``.
        approximate: see below.
        dimension: the trusted dimension behind ``dim``, ``dim_low``, ``dim_high`` and ``dim_method``: the
            estimator that decided (``method``) and each component estimate.

    ``approximate`` is the :class:`~lightning_repgap.approximate.ApproximateGap` behind ``curve`` (blocks, index
    parameters, per-size recall and error) when an approximate ``index`` ran, else ``None``.
    """

    values: dict[str, float]
    curve: GapCurve
    fit: DimensionFit
    approximate: ApproximateGap | None = None
    dimension: DimensionEstimate | None = None


def _gap_update(
    reference: Any,
    queries: Any,
    train_queries: Any = None,
    reference_labels: Any = None,
    query_labels: Any = None,
) -> GapInputs:
    """Validate and convert the inputs (2-D, floating, finite, same width, label lengths)."""
    ref, qs, tq = _check_gap_sets(reference, queries, train_queries)
    if (reference_labels is None) != (query_labels is None):
        raise ValueError("`reference_labels` and `query_labels` must be given together (for `knn_acc`).")
    ref_lab = q_lab = None
    if reference_labels is not None:
        ref_lab = _check_labels(reference_labels, ref.shape[0], "reference_labels")
        q_lab = _check_labels(query_labels, qs.shape[0], "query_labels")
    return GapInputs(ref, qs, tq, ref_lab, q_lab)


def _gap_compute(
    inputs: GapInputs,
    config: GapConfig | None = None,
    *,
    num_threads: int | None = None,
    wrap_engine: Callable[[SearchEngine], SearchEngine] | None = None,
    find_copies: Callable[[np.ndarray], tuple[np.ndarray, float, float]] | None = None,
    **settings: Unpack[GapSettings],
) -> GapResult:
    """One blocked search, then the fit, the cross-check estimators and the derived ratios.

    ``wrap_engine`` is handed to :func:`~lightning_repgap.gap.build_curve` (the Metric shares the exact search among
    DDP ranks with it); every number is the same with or without it. ``find_copies`` replaces
    :func:`~lightning_repgap._duplicates.exact_copies_and_peak` (the Metric shares its hashing among the ranks).

    With an approximate ``index`` (``"auto"`` resolved by :func:`~lightning_repgap.approximate.resolve_index`) the
    curve comes from :func:`~lightning_repgap.approximate.approximate_gap` and ``recall`` / ``gap_rel_error`` are
    added; with ``"exact"`` nothing differs from the exact search.

    Callers run it inside :func:`~lightning_repgap._threads.measurement_threads` (a ``with`` block adds no frame, so
    warnings still point at the user's call).
    """
    config = GapConfig.resolve(config, settings)
    t0 = time.perf_counter()
    # Exact copies leave the bank before the search (as DADApy removes identical points); see _duplicates.
    # The same pass over the bank measures its largest magnitude, for the unit scale below.
    keep, exact_share, bank_peak = (find_copies or exact_copies_and_peak)(inputs.reference)
    reference = inputs.reference if keep.size == inputs.reference.shape[0] else inputs.reference[keep]
    if keep.size < 2:
        raise _collapsed(inputs)
    # Copies leaving fewer distinct points than the largest size: a measurement fault. A bank given with fewer rows
    # than that is a bad `sizes` (the size check's ValueError below), with or without copies.
    if config.sizes is not None and keep.size < config.sizes[-1] <= inputs.reference.shape[0]:
        raise TooFewDistinctSizesError(
            f"only {keep.size} distinct bank points remain after removing {inputs.reference.shape[0] - keep.size} "
            f"exact copies, fewer than the largest of `sizes` ({config.sizes[-1]}): give a bank of more distinct "
            "points or smaller `sizes`.",
            sizes=list(config.sizes),
            fit_min_size=config.fit_min_size,
        )
    n_max = reference.shape[0]
    k = min(max(2, config.n_neighbors), n_max)
    # Scale-free keys must not depend on the global scale: search at unit scale (exact power-of-two factor).
    exponent = unit_exponent(inputs.queries, inputs.train_queries, known_peak=bank_peak)
    tq = None if inputs.train_queries is None else rescale(inputs.train_queries, exponent)
    curve = build_curve(
        rescale(reference, exponent),
        rescale(inputs.queries, exponent),
        tq,
        sizes=config.sizes,
        min_size=config.min_size,
        ratio=config.ratio,
        seed=config.seed,
        n_neighbors=k,
        # The trusted dim's local estimate reads the neighbour table: up to NEIGHBOR_QUERIES queries get one (fused
        # into the exact search; an approximate index searches those queries exactly, as for the cross-checks).
        neighbor_queries=NEIGHBOR_QUERIES,
        backend=config.backend,
        num_threads=num_threads,
        index=config.index,
        search_precision=config.search_precision,
        wrap_engine=wrap_engine,
    )
    curve = restore_curve(curve, exponent)
    copies = near_copies(reference, curve.knn_index, DUP_RTOL * curve.scale, curve.knn_dist_sq)
    if keep.size < inputs.reference.shape[0]:  # rows of the de-duplicated bank -> rows of the bank as given
        knn_index = None if curve.knn_index is None else keep[curve.knn_index]
        curve = dataclasses.replace(curve, nearest_index=keep[curve.nearest_index], knn_index=knn_index)
    approximate: ApproximateGap | None = curve.report
    accuracy = dict(curve.accuracy)
    t_search = time.perf_counter() - t0
    assert curve.knn_dist_sq is not None
    table, counts, near_share = distinct_neighbours(np.sqrt(curve.knn_dist_sq), copies)
    defined = _defined_values(curve, inputs, max(exact_share, near_share))
    _check_fit_defined(curve, config.fit_min_size, defined, removed=inputs.reference.shape[0] - keep.size)
    if inputs.queries.shape[0] < MIN_QUERIES:
        raise TooFewQueriesError(
            f"`queries` holds only {inputs.queries.shape[0]} row{'s' if inputs.queries.shape[0] > 1 else ''}; the "
            f"gap-law fit (G(n) is the queries' mean, its interval a bootstrap over them) needs at least "
            f"MIN_QUERIES={MIN_QUERIES}: pass more held-out queries.",
            defined,
        )
    if defined["bank_dup_frac"] > 0:
        warnings.warn(
            f"{defined['bank_dup_frac']:.1%} of the bank's points have an exact or near copy in the bank; exact copies "
            f"were removed before the search ({inputs.reference.shape[0] - keep.size} rows) and TwoNN/MLE use each "
            "query's nearest distinct neighbours (see `bank_dup_frac`).",
            DuplicatePointsWarning,
            stacklevel=3,
        )
    fit_sizes, fit_per_query, fit_min = curve.sizes, curve.per_query, config.fit_min_size
    if near_share > 0 and (curve.sizes >= config.fit_min_size).sum() >= 3:
        # Near copies make a prefix hold fewer distinct points than its size: fit the law in distinct points.
        use = curve.sizes >= config.fit_min_size
        fit_sizes, fit_per_query, fit_min = effective_sizes(curve.sizes, near_share)[use], curve.per_query[use], 1
    _, mle_dist, k_mle = estimator_tables(table, counts, k)
    # The cross-checks keep their meaning: TwoNN and MLE on the first CROSS_CHECK_ROWS rows of the table.
    cross_twonn, cross_mle, k_cross = estimator_tables(table[:CROSS_CHECK_ROWS], counts[:CROSS_CHECK_ROWS], k)
    # trusted_dimension runs both on the first CROSS_CHECK_ROWS rows of `mle_dist`: the same tables, so the same
    # values, when every row keeps k_mle distinct neighbours and the first rows agree on k (always without copies).
    # Then its values are reused; otherwise its own cross-checks, which are not reported, stay silent. Either way each
    # estimator's warnings are emitted once.
    shared = k_cross == k_mle and bool((counts >= k_mle).all())
    # A law that does not hold (a flat curve: one distinct query, say) gives an infinite dimension; it is reported
    # below as undefined instead of through numpy's floating-point warnings on the way.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"), _silent_cross_checks(not shared):
        est = trusted_dimension(
            fit_sizes,
            fit_per_query,
            mle_dist,  # every row's nearest distinct neighbours (the full table when the bank has no copies)
            concentration=curve.concentration,
            fit_min_size=fit_min,
            n_bootstrap=config.n_bootstrap,
            confidence=config.confidence,
            calibrate=config.calibrate,
            n_neighbors=k_mle,
            seed=0 if config.seed is None else config.seed,
            ambient=numerical_width(reference),  # the bank's numerical rank: padding changes nothing
        )
    fit = est.fit
    if not all(math.isfinite(v) for v in (est.dim, est.dim_low, est.dim_high, fit.r2)):
        warnings.warn(
            "the gap-law fit is undefined on this data (the gap does not shrink with the bank size, e.g. a single "
            "distinct query): `dim`, `dim_low`, `dim_high` or `law_r2` is not finite.",
            UserWarning,
            stacklevel=3,
        )
    elif est.disagree:
        warn_disagreement(est)
    if shared:
        dim_twonn, dim_mle = est.dim_twonn, est.dim_mle
    else:
        dim_twonn = _cross_check(twonn_dimension, cross_twonn)
        dim_mle = _cross_check(mle_dimension, cross_mle, n_neighbors=k_cross)
    values = {
        "gap": defined["gap"],
        "gap_norm": defined["gap_norm"],
        "dim": est.dim,
        "dim_low": est.dim_low,
        "dim_high": est.dim_high,
        "law_r2": fit.r2,
        "dim_twonn": dim_twonn,
        "dim_mle": dim_mle,
        "dim_method": float(est.method_code) if math.isfinite(est.dim) else math.nan,  # undefined with `dim`
        **{key: v for key, v in defined.items() if key not in ("gap", "gap_norm")},
    }
    values.update(accuracy)
    log.debug(
        "repgap n=%d m=%d D=%d backend=%s: search %.4fs, total %.4fs%s",
        n_max,
        inputs.queries.shape[0],
        inputs.reference.shape[1],
        curve.backend,
        t_search,
        time.perf_counter() - t0,
        "".join(f", {k} {v:.4g}" for k, v in accuracy.items()),
    )
    return GapResult(values=values, curve=curve, fit=fit, approximate=approximate, dimension=est)


@contextlib.contextmanager
def _silent_cross_checks(silent: bool) -> Iterator[None]:
    """With ``silent``, the block's TwoNN / MLE cross-check warnings are dropped (the caller warns for its own).

    Without it the warning filters are not touched at all: ``catch_warnings`` swaps process-wide state.
    """
    if not silent:
        yield
        return
    with warnings.catch_warnings():
        for name in ("twonn_dimension", "mle_dimension", "TwoNN", "MLE"):
            warnings.filterwarnings("ignore", message=f"{name}[: ]")
        yield


def _defined_values(curve: GapCurve, inputs: GapInputs, bank_dup_frac: float) -> dict[str, float]:
    """The keys that need no fit: defined whenever the search ran (reported even when the fit is undefined)."""
    values = {"gap": curve.gap, "gap_norm": curve.gap_norm, "dup_frac": curve.dup_frac, "bank_dup_frac": bank_dup_frac}
    if curve.gap_ratio is not None:
        values["gap_ratio"] = curve.gap_ratio
    if inputs.reference_labels is not None and inputs.query_labels is not None:
        values["knn_acc"] = float(np.mean(inputs.reference_labels[curve.nearest_index] == inputs.query_labels))
    return values


def _check_fit_defined(curve: GapCurve, fit_min_size: int, defined: dict[str, float], removed: int) -> None:
    """Raise :class:`TooFewDistinctPointsError` (with the defined keys) when copies leave no law to fit."""
    fit_gaps = curve.gaps[curve.sizes >= fit_min_size]
    if removed and fit_gaps.size < 3:
        raise TooFewDistinctSizesError(
            f"only {curve.sizes[-1]} distinct bank points remain after removing {removed} exact copies; the gap-law "
            f"fit needs 3 bank sizes >= fit_min_size={fit_min_size}.",
            defined,
            sizes=curve.sizes.tolist(),
            fit_min_size=fit_min_size,
        )
    if (fit_gaps <= 0).any():
        raise TooFewDistinctPointsError(
            "the gap is zero at some bank size: every query has an exact copy in the bank (train/validation leakage "
            "or a collapsed representation), so no scaling law can be fitted (see `dup_frac`).",
            defined,
        )


def _collapsed(inputs: GapInputs) -> DegenerateRepresentationError:
    """The error for a bank whose points are all one point, with the keys that stay defined."""
    origin = inputs.reference[:1].astype(np.float64)
    dist_sq = ((inputs.queries.astype(np.float64) - origin) ** 2).sum(axis=1)
    partial = {"gap": float(dist_sq.mean()), "dup_frac": float(np.mean(dist_sq == 0)), "bank_dup_frac": 1.0}
    return DegenerateRepresentationError(
        f"all {inputs.reference.shape[0]} bank points are identical (a collapsed representation: dead or saturated "
        "units, a zero or constant layer); distances have no scale, so only `gap` and `dup_frac` are defined.",
        partial,
    )


def analyze(
    reference: Any,
    queries: Any,
    *,
    train_queries: Any = None,
    reference_labels: Any = None,
    query_labels: Any = None,
    config: GapConfig | None = None,
    num_threads: int | None = None,
    **settings: Unpack[GapSettings],
) -> GapResult:
    r"""Measure the representation gap of ``queries`` against the bank ``reference`` and return everything.

    The typed counterpart of :func:`representation_gap`: the same numbers (``values``), plus the gap curve
    :math:`G(n)` and the law fit they came from, for tables, figures and offline analysis.

    Args:
        reference: ``(n, D)`` bank, e.g. training representations or model samples.
        queries: ``(m, D)`` held-out representations.
        train_queries: ``(m', D)`` training representations not in the bank (adds ``gap_ratio``).
        reference_labels: ``(n,)`` labels of the bank (with ``query_labels``: adds ``knn_acc``).
        query_labels: ``(m,)`` labels of the queries.
        config: the analysis settings; default ``GapConfig()``.
        num_threads: search threads per process (a runtime setting, see :mod:`lightning_repgap.config`).
        settings: :class:`~lightning_repgap.config.GapConfig` fields as keywords (``min_size=32``), instead of
            or on top of ``config`` (a keyword that contradicts ``config`` is an error).

    Returns:
        A :class:`GapResult`: ``values`` (the keys of :func:`representation_gap`, as floats), ``curve``
        (:class:`~lightning_repgap.gap.GapCurve`), ``fit`` (:class:`~lightning_repgap.dimension.DimensionFit`) and
        ``approximate`` (the approximate search's record, or ``None``).

    Raises:
        ValueError: for bad inputs (shapes, non-finite values, label lengths) or settings.
        TypeError: for an unknown keyword.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> result = analyze(rng.random((8192, 2)), rng.random((1024, 2)), config=GapConfig(n_bootstrap=50))
        >>> round(result.values["dim"]), result.curve.sizes[:3].tolist(), len(result.fit.fit_sizes) >= 3
        (2, [16, 32, 64], True)

    """
    inputs = _gap_update(reference, queries, train_queries, reference_labels, query_labels)
    with measurement_threads(num_threads):
        return _gap_compute(inputs, GapConfig.resolve(config, settings), num_threads=num_threads)


def representation_gap(
    reference: Any,
    queries: Any,
    *,
    train_queries: Any = None,
    reference_labels: Any = None,
    query_labels: Any = None,
    config: GapConfig | None = None,
    num_threads: int | None = None,
    **settings: Unpack[GapSettings],
) -> dict[str, torch.Tensor]:
    r"""All representation-gap quantities of ``queries`` against the bank ``reference``.

    .. math::

        G(n) = \frac{1}{m} \sum_j \min_{i \le n} \lVert q_j - r_i \rVert^2 \sim C\, n^{-2/d}

    Keys (each a float32 scalar tensor): ``gap`` :math:`G(n_{max})`; ``gap_norm`` the gap over
    ``2 trace Cov(reference)``; ``dim``, ``dim_low``, ``dim_high`` the trusted dimension and its calibrated interval;
    ``law_r2`` the log-log fit's :math:`R^2`; ``dim_twonn``, ``dim_mle`` cross-checks from the same search;
    ``dup_frac`` the fraction of queries duplicated in the bank; ``gap_ratio`` (with ``train_queries``)
    :math:`G_{test} / G_{train}`; ``knn_acc`` (with both label vectors) 1-NN label agreement; ``recall`` and
    ``gap_rel_error`` (with an approximate ``index``) the accuracy of the search measured on an exact sample.
    :func:`analyze` returns the same values with the curve and the fit.

    Args:
        reference: ``(n, D)`` bank, e.g. training representations or model samples.
        queries: ``(m, D)`` held-out representations.
        train_queries: ``(m', D)`` training representations not in the bank.
        reference_labels: ``(n,)`` labels of the bank.
        query_labels: ``(m,)`` labels of the queries.
        config: the analysis settings (:class:`~lightning_repgap.config.GapConfig`); default ``GapConfig()``.
        num_threads: search threads per process (a runtime setting, see :mod:`lightning_repgap.config`).
        settings: :class:`~lightning_repgap.config.GapConfig` fields as keywords: ``sizes``, ``min_size``,
            ``ratio``, ``seed``, ``fit_min_size``, ``n_neighbors``, ``n_bootstrap``, ``confidence``, ``calibrate``,
            ``backend``, ``index`` (see there). Passing one that contradicts ``config`` is an error.

    Returns:
        A dict of scalar tensors, keys as above (float32; float64 for float64 inputs).

    Raises:
        ValueError: for invalid inputs; :class:`~lightning_repgap._faults.TooFewQueriesError` (a ``ValueError``) for
            fewer than :data:`MIN_QUERIES` queries.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> out = representation_gap(rng.random((8192, 2)), rng.random((1024, 2)))
        >>> sorted(out)  # doctest: +NORMALIZE_WHITESPACE
        ['bank_dup_frac', 'dim', 'dim_high', 'dim_low', 'dim_method', 'dim_mle', 'dim_twonn', 'dup_frac', 'gap',
         'gap_norm', 'law_r2']
        >>> round(out["dim"].item())
        2

    """
    result = analyze(
        reference,
        queries,
        train_queries=train_queries,
        reference_labels=reference_labels,
        query_labels=query_labels,
        config=GapConfig.resolve(config, settings),
        num_threads=num_threads,
    )
    # The caller's precision: float64 inputs get float64 values (a gap of 1e-60 must survive), others float32.
    dtype = torch.float64 if str(getattr(reference, "dtype", "")) in ("float64", "torch.float64") else torch.float32
    return {k: torch.tensor(v, dtype=dtype) for k, v in result.values.items()}
