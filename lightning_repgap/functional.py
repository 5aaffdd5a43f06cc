"""Functional interface: every ``repgap/`` quantity from plain arrays, with no Trainer and no state.

Follows the torchmetrics split: :func:`_gap_update` validates and converts, :func:`_gap_compute` turns arrays into
numbers, :func:`representation_gap` is the public one-call version. :class:`~lightning_repgap.metric.
RepresentationGap` calls the same two private functions, so the Metric and the functional cannot drift apart.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lightning_repgap._checks import _check_gap_sets, _check_labels
from lightning_repgap.approximate import APPROXIMATE_KEYS, ApproximateGap, IndexOption
from lightning_repgap.dimension import DimensionFit, gap_dimension, mle_dimension, twonn_dimension
from lightning_repgap.gap import GapCurve, build_curve
from lightning_repgap.search import Backend

log = logging.getLogger(__name__)

#: Keys always present in the result, in logging order.
CORE_KEYS = ("gap", "gap_norm", "dim", "dim_low", "dim_high", "law_r2", "dim_twonn", "dim_mle", "dup_frac")
#: Keys present only when their inputs were given (``train_queries``; both label vectors).
OPTIONAL_KEYS = ("gap_ratio", "knn_acc")
#: Keys present only with an approximate ``index``: accuracy measured on an exact sample of the queries.
ACCURACY_KEYS = APPROXIMATE_KEYS


@dataclass(frozen=True)
class GapInputs:
    """Validated inputs of :func:`_gap_compute` (float32 or float64 arrays, see ``_check_representations``)."""

    reference: np.ndarray
    queries: np.ndarray
    train_queries: np.ndarray | None = None
    reference_labels: np.ndarray | None = None
    query_labels: np.ndarray | None = None


@dataclass(frozen=True)
class GapResult:
    """Everything :func:`_gap_compute` measured: the scalars and the objects they came from (for plots).

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
    *,
    sizes: Any = None,
    min_size: int = 16,
    ratio: float = 2.0,
    seed: int | None = 0,
    fit_min_size: int = 16,
    n_neighbors: int = 20,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    calibrate: bool = True,
    backend: Backend = "auto",
    num_threads: int | None = None,
    index: IndexOption = "exact",
) -> GapResult:
    """One blocked search, then the fit, the cross-check estimators and the derived ratios.

    With an approximate ``index`` (``"auto"`` resolved by :func:`~lightning_repgap.approximate.resolve_index`) the
    curve comes from :func:`~lightning_repgap.approximate.approximate_gap` and ``recall`` / ``gap_rel_error`` are
    added; with ``"exact"`` nothing differs from the exact search.
    """
    t0 = time.perf_counter()
    n_max = inputs.reference.shape[0]
    k = min(max(2, n_neighbors), n_max)
    curve = build_curve(
        inputs.reference,
        inputs.queries,
        inputs.train_queries,
        sizes=sizes,
        min_size=min_size,
        ratio=ratio,
        seed=seed,
        n_neighbors=k,
        backend=backend,
        num_threads=num_threads,
        index=index,
    )
    approximate: ApproximateGap | None = curve.report
    accuracy = dict(curve.accuracy)
    t_search = time.perf_counter() - t0
    fit = gap_dimension(
        curve.sizes,
        curve.per_query,
        fit_min_size=fit_min_size,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        calibrate=calibrate,
        concentration=curve.concentration,
        seed=0 if seed is None else seed,
    )
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


def _cross_check(estimator: Any, dist: np.ndarray, **kwargs: Any) -> float:
    """Run a cross-check estimator; a degenerate neighbour table gives ``inf`` with a warning, never a crash."""
    try:
        return float(estimator(dist, **kwargs))
    except ValueError as err:
        warnings.warn(f"{estimator.__name__} is undefined here and is reported as inf: {err}", stacklevel=3)
        return float("inf")


def representation_gap(
    reference: Any,
    queries: Any,
    *,
    train_queries: Any = None,
    reference_labels: Any = None,
    query_labels: Any = None,
    sizes: Any = None,
    min_size: int = 16,
    ratio: float = 2.0,
    seed: int | None = 0,
    fit_min_size: int = 16,
    n_neighbors: int = 20,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    calibrate: bool = True,
    backend: Backend = "auto",
    num_threads: int | None = None,
    index: IndexOption = "exact",
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

    Args:
        reference: ``(n, D)`` bank, e.g. training representations or model samples.
        queries: ``(m, D)`` held-out representations.
        train_queries: ``(m', D)`` training representations not in the bank.
        reference_labels: ``(n,)`` labels of the bank.
        query_labels: ``(m,)`` labels of the queries.
        sizes: explicit grid of bank sizes; default geometric from ``min_size`` with ``ratio``.
        min_size: first grid size.
        ratio: grid growth factor.
        seed: seed of the bank order and of the bootstrap (``None``: keep the given order).
        fit_min_size: smallest bank size in the law fit.
        n_neighbors: neighbours for MLE (TwoNN uses the first two).
        n_bootstrap: bootstrap resamples of the queries for the interval.
        confidence: interval coverage.
        calibrate: correct the finite-sample bias of the gap dimension.
        backend: ``"auto"``, ``"faiss"``, ``"faiss-gpu"`` or ``"torch"``.
        num_threads: threads for the search (torch and FAISS); default ``REPGAP_NUM_THREADS``, else torch's current
            intra-op count, which Lightning divides among the processes of a DDP job on one machine.
        index: ``"exact"`` (default), ``"ivf"`` or ``"hnsw"`` (FAISS indexes, see
            :func:`~lightning_repgap.approximate.approximate_gap`), or ``"auto"`` (exact below
            ``AUTO_APPROXIMATE_MIN_BANK`` = 1,000,000 bank points, ``"ivf"`` from there on). An approximate index
            adds ``recall`` (fraction of sampled queries whose nearest bank point was found) and ``gap_rel_error``
            (``G_approx / G_exact - 1 >= 0`` on that sample); its gap is an upper bound on the exact one.
            ``dim_twonn`` / ``dim_mle`` still come from an exact neighbour search of 256 queries.

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
    inputs = _gap_update(reference, queries, train_queries, reference_labels, query_labels)
    result = _gap_compute(
        inputs,
        sizes=sizes,
        min_size=min_size,
        ratio=ratio,
        seed=seed,
        fit_min_size=fit_min_size,
        n_neighbors=n_neighbors,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        calibrate=calibrate,
        backend=backend,
        num_threads=num_threads,
        index=index,
    )
    return {k: torch.tensor(v, dtype=torch.float32) for k, v in result.values.items()}
