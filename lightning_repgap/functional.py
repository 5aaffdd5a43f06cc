"""Functional interface: every ``repgap/`` quantity from plain arrays, with no Trainer and no state.

Follows the torchmetrics split: ``_gap_update`` validates and converts, ``_gap_compute`` turns arrays into numbers;
:func:`representation_gap` is the public one-call version returning a dict of tensors, and :func:`analyze` the one
returning the full typed :class:`GapResult` (values, curve, fit). :class:`~lightning_repgap.metric.RepresentationGap`
calls the same two private functions, so the Metric and the functional cannot drift apart. The settings travel as
one :class:`~lightning_repgap.config.GapConfig`.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from typing_extensions import Unpack

from lightning_repgap._checks import _check_gap_sets, _check_labels
from lightning_repgap.approximate import APPROXIMATE_KEYS, ApproximateGap
from lightning_repgap.config import GapConfig, GapSettings
from lightning_repgap.dimension import DimensionFit, gap_dimension, mle_dimension, twonn_dimension
from lightning_repgap.gap import GapCurve, build_curve

__all__ = [
    "ACCURACY_KEYS",
    "CORE_KEYS",
    "OPTIONAL_KEYS",
    "GapInputs",
    "GapResult",
    "analyze",
    "representation_gap",
]

log = logging.getLogger(__name__)

#: Keys always present in the result, in logging order.
CORE_KEYS = ("gap", "gap_norm", "dim", "dim_low", "dim_high", "law_r2", "dim_twonn", "dim_mle", "dup_frac")
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
        fit: the gap-law fit behind ``dim`` (slope, interval, :math:`R^2`, the sizes used).
        approximate: see below.

    ``approximate`` is the :class:`~lightning_repgap.approximate.ApproximateGap` behind ``curve`` (blocks, index
    parameters, per-size recall and error) when an approximate ``index`` ran, else ``None``.
    """

    values: dict[str, float]
    curve: GapCurve
    fit: DimensionFit
    approximate: ApproximateGap | None = None


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
    **settings: Unpack[GapSettings],
) -> GapResult:
    """One blocked search, then the fit, the cross-check estimators and the derived ratios.

    With an approximate ``index`` (``"auto"`` resolved by :func:`~lightning_repgap.approximate.resolve_index`) the
    curve comes from :func:`~lightning_repgap.approximate.approximate_gap` and ``recall`` / ``gap_rel_error`` are
    added; with ``"exact"`` nothing differs from the exact search.
    """
    config = GapConfig.resolve(config, settings)
    t0 = time.perf_counter()
    n_max = inputs.reference.shape[0]
    k = min(max(2, config.n_neighbors), n_max)
    curve = build_curve(
        inputs.reference,
        inputs.queries,
        inputs.train_queries,
        sizes=config.sizes,
        min_size=config.min_size,
        ratio=config.ratio,
        seed=config.seed,
        n_neighbors=k,
        backend=config.backend,
        num_threads=num_threads,
        index=config.index,
    )
    approximate: ApproximateGap | None = curve.report
    accuracy = dict(curve.accuracy)
    t_search = time.perf_counter() - t0
    fit = gap_dimension(
        curve.sizes,
        curve.per_query,
        fit_min_size=config.fit_min_size,
        n_bootstrap=config.n_bootstrap,
        confidence=config.confidence,
        calibrate=config.calibrate,
        concentration=curve.concentration,
        seed=0 if config.seed is None else config.seed,
    )
    values = _values(inputs, curve, fit, k)
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
    return GapResult(values=values, curve=curve, fit=fit, approximate=approximate)


def _values(inputs: GapInputs, curve: GapCurve, fit: DimensionFit, k: int) -> dict[str, float]:
    """The logged scalars of one measurement, in logging order (without the approximate search's accuracy)."""
    assert curve.knn_dist_sq is not None
    dist = np.sqrt(curve.knn_dist_sq)
    values = {
        "gap": curve.gap,
        "gap_norm": curve.gap_norm,
        "dim": fit.dim,
        "dim_low": fit.dim_low,
        "dim_high": fit.dim_high,
        "law_r2": fit.r2,
        "dim_twonn": _cross_check(twonn_dimension, dist),
        "dim_mle": _cross_check(mle_dimension, dist, n_neighbors=k),
        "dup_frac": curve.dup_frac,
    }
    if curve.gap_ratio is not None:
        values["gap_ratio"] = curve.gap_ratio
    if inputs.reference_labels is not None and inputs.query_labels is not None:
        values["knn_acc"] = float(np.mean(inputs.reference_labels[curve.nearest_index] == inputs.query_labels))
    return values


def _cross_check(estimator: Any, dist: np.ndarray, **kwargs: Any) -> float:
    """Run a cross-check estimator; a degenerate neighbour table gives ``inf`` with a warning, never a crash."""
    try:
        return float(estimator(dist, **kwargs))
    except ValueError as err:
        warnings.warn(f"{estimator.__name__} is undefined here and is reported as inf: {err}", stacklevel=3)
        return float("inf")


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
    ``2 trace Cov(reference)``; ``dim``, ``dim_low``, ``dim_high`` the gap dimension and its bootstrap interval;
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
        A dict of float32 scalar tensors, keys as above.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> out = representation_gap(rng.random((8192, 2)), rng.random((1024, 2)))
        >>> sorted(out)
        ['dim', 'dim_high', 'dim_low', 'dim_mle', 'dim_twonn', 'dup_frac', 'gap', 'gap_norm', 'law_r2']
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
    return {k: torch.tensor(v, dtype=torch.float32) for k, v in result.values.items()}
