r"""Opt-in approximate nearest-neighbour search (FAISS IVF or HNSW) for banks too big for the exact search.

The exact gap curve costs one search of the ``m`` queries against the ``n`` bank points: ``2 n m D`` flops.
:func:`approximate_gap` trades a measured, reported amount of accuracy for time. It never replaces the exact
search silently: it runs only when ``index="ivf"`` or ``"hnsw"`` is asked for (or ``"auto"`` on a bank of at least
``AUTO_APPROXIMATE_MIN_BANK`` points, see :func:`~lightning_repgap.search.auto_index`). Behind the search contract
of :mod:`lightning_repgap.search` it is one more engine (``ApproximateEngine`` in the private module ``_ann``, which
this module imports only when an approximate search runs), and the curve is built by the same
:func:`lightning_repgap.gap.build_curve` as the exact one.

How the curve is computed
    Like the exact path, the (shuffled) bank is cut at the grid sizes :math:`n_1 < \dots < n_S`, and a running
    per-query minimum over the blocks :math:`[n_{s-1}, n_s)` gives :math:`G(n_s)` for every ``s``:

    - the prefix up to ``exact_max`` (default ``max(4096, n / 64)`` rows, i.e. at most ~1.6 % of an exact search)
      is searched **exactly** with the one-pass torch prefix search;
    - every later block gets **its own index** (IVF or HNSW), built from that block only, searched once, then
      freed. Every bank point is indexed once, so the curve costs the same as one index over the whole bank,
      every grid size gets a value of the same quality (one index over the full bank would give
      :math:`G(n_{max})` only), and at most one block (about half the bank) is held in an index at a time.

Exact where it matters
    Each block's winner is recomputed in float64 with :meth:`lightning_repgap.search.Prepared.dist_sq`. It is
    the distance to a real bank point of the prefix, so every per-query value is an **upper bound** on the exact
    nearest distance, and the approximate :math:`G(n)` is an upper bound on the exact one (the relative error
    reported is ``>= 0``).

Measured, not assumed
    ``recall_sample`` random queries are also searched exactly (torch backend, block by block, so the exact
    per-size minima are known for them). ``recall`` is the fraction of them whose approximate nearest point is
    at the exact nearest distance (ties with another index count as found), and ``gap_rel_error`` is
    :math:`\bar d_{approx} / \bar d_{exact} - 1` over the same queries, both per grid size.

Default parameters (``n_b`` = block size, ``m`` = number of queries)
    IVF, ``nlist``: the index is built for *one* measurement, so its build (k-means assignment of the block,
    ``~ n_b * nlist`` distance evaluations) and its scan (``~ m * nprobe * n_b / nlist``) are balanced:
    ``nlist = sqrt(16 m n_b / (n_b + m))`` for the largest block ``n_b`` (about ``sqrt(16 m)``: 400 for
    ``m = 1e4``; :func:`default_nlist`), capped at 39 points per list (FAISS' k-means minimum). FAISS' usual
    ``4 sqrt(n) .. 16 sqrt(n)`` assumes an index queried millions of times; for ``n = 1e6`` and ``m = 1e4`` it
    would spend more on assigning the bank to 4000 centroids than the exact search itself costs. One coarse
    quantizer serves every block (10 Lloyd iterations on ``64 * nlist`` random points of the approximate part of
    the bank), so the blocks' lists partition those of one index over the whole bank; smaller blocks just have
    shorter lists (and the calibration gives them the ``nprobe`` they need).

    IVF, ``nprobe``: *calibrated*: starting at 8, doubled until, on the exact sample, the recall at the end of
    the block reaches ``target_recall`` (0.95) **and** the relative gap error is at most ``target_error``
    (0.5 %): recall alone does not bound the error of the number reported (a missed neighbour can be far). At
    most ``nlist / 4`` (past that, IVF is slower than the exact search): a warning says so, and the reached
    recall and error are reported.

    HNSW: ``M = 32``, ``efConstruction = 40``; ``efSearch`` calibrated like ``nprobe``, from 64, doubled up to
    2048. HNSW's build (graph insertion, not a matrix product) costs more than an exact search unless an index
    is reused many times; it is offered for completeness and for banks queried repeatedly.

    An explicitly passed ``nlist``/``nprobe``/``M``/``ef_search`` is used as given (no calibration).

Speed
    The matrix-product parts of the IVF (k-means, assigning bank points to lists, choosing the lists each query
    probes) run as torch GEMMs, and the default list scan too; FAISS holds the inverted lists and scans them with
    ``scan="faiss"`` (``add_preassigned`` / ``search_preassigned`` from ``faiss.contrib.ivf_tools``). Why, with
    measurements, is in ``docs/performance.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from lightning_repgap._checks import _check_positive_int
from lightning_repgap.search import (
    AUTO_APPROXIMATE_MIN_BANK,
    INDEX_OPTIONS,
    IndexOption,
    auto_index,
    check_index,
    resolve_index,
)

__all__ = [
    "APPROXIMATE_KEYS",
    "AUTO_APPROXIMATE_MIN_BANK",
    "INDEXES",
    "INDEX_OPTIONS",
    "MIN_PER_LIST",
    "SCANS",
    "ApproximateGap",
    "BlockInfo",
    "IndexKind",
    "IndexOption",
    "Scan",
    "approximate_gap",
    "auto_index",
    "check_index",
    "default_nlist",
    "resolve_index",
]

#: An approximate index.
IndexKind = Literal["ivf", "hnsw"]
INDEXES: tuple[str, ...] = get_args(IndexKind)
#: How IVF lists are scanned.
Scan = Literal["torch", "faiss"]
SCANS: tuple[str, ...] = get_args(Scan)
#: Result keys added by an approximate index (absent from exact results), in logging order.
APPROXIMATE_KEYS = ("recall", "gap_rel_error")
#: Fewest bank points per IVF list (FAISS' k-means minimum).
MIN_PER_LIST = 39
# Nominal nprobe used to size nlist.
_NPROBE_NOMINAL = 16
# Cost of one distance in FAISS' IVF-Flat scan relative to one in a torch GEMM (memory-bound scan, measured).
_FAISS_SCAN_COST = 16


def default_nlist(block_size: int, n_queries: int, *, scan: str = "torch") -> int:
    """Default IVF list count for a block: ``sqrt(c * 16 m n_b / (n_b + m))``, at most ``n_b / 39``.

    Balances the build (assigning ``n_b`` points to ``nlist`` centroids, a GEMM) against the scan (``m``
    queries times ``nprobe ~ 16`` lists of ``n_b / nlist`` points) of an index used for one measurement.
    ``c`` is how much slower a scanned distance is than a GEMM one: 1 for the torch scan (also a GEMM), 16 for
    FAISS' per-query scan (memory-bound; see ``docs/performance.md``), which therefore gets 4x more, smaller lists.

    Args:
        block_size: points in the block ``n_b``.
        n_queries: queries searched against it ``m``.
        scan: ``"torch"`` or ``"faiss"``, the list scan that will run.

    Returns:
        The number of inverted lists, ``>= 1``.

    Example:
        >>> default_nlist(500_000, 10_000), default_nlist(500_000, 10_000, scan="faiss")
        (396, 1584)

    """
    n_b = _check_positive_int(block_size, "block_size")
    m = _check_positive_int(n_queries, "n_queries")
    if scan not in SCANS:
        raise ValueError(f"`scan` must be one of {SCANS}, got {scan!r}.")
    cost = _FAISS_SCAN_COST if scan == "faiss" else 1
    balanced = round(math.sqrt(cost * _NPROBE_NOMINAL * m * n_b / (n_b + m)))
    return max(1, min(balanced, n_b // MIN_PER_LIST))


@dataclass(frozen=True)
class BlockInfo:
    """How one block ``[start, stop)`` of the (shuffled) bank was searched.

    Attributes:
        start: first bank position of the block.
        stop: one past its last position.
        method: ``"exact"``, ``"ivf-torch"``, ``"ivf-faiss"`` or ``"hnsw"``.
        params: index parameters used (``nlist``, ``nprobe`` / ``M``, ``ef_search``); empty for exact.
        recall: measured recall at bank size ``stop`` (the sampled queries' nearest point among the first
            ``stop`` found); the calibration of ``nprobe`` / ``ef_search`` aims it at ``target_recall``
            (and the error at ``target_error``).
        build_seconds: time to train and fill the index (exact: 0).
        search_seconds: time of the searches, calibration included.

    """

    start: int
    stop: int
    method: str
    params: dict[str, int]
    recall: float
    build_seconds: float
    search_seconds: float


@dataclass(frozen=True)
class ApproximateGap:
    """Result of :func:`approximate_gap`.

    Attributes:
        sizes: int64 ``(S,)`` bank sizes ``n``.
        gaps: float64 ``(S,)`` approximate :math:`G(n)`, each an upper bound on the exact value.
        per_query: float64 ``(S, m)`` exact float64 squared distance of each query to the nearest point the
            search found among the first ``n`` bank points (``>=`` the exact minimum).
        nearest_index: int64 ``(m,)`` row of ``reference`` (as passed) found nearest to each query.
        scale: ``2 * trace Cov`` of the bank points used (as :attr:`GapCurve.scale`).
        index: ``"ivf"`` or ``"hnsw"``.
        exact_size: the grid sizes up to this one were searched exactly (``0``: none).
        blocks: how each block was searched.
        recall_rows: int64 indices of the queries searched exactly as well.
        recall_per_size: float64 ``(S,)`` fraction of ``recall_rows`` whose approximate nearest distance equals
            the exact one, per size.
        gap_rel_error_per_size: float64 ``(S,)`` ``mean(approx) / mean(exact) - 1 >= 0`` over ``recall_rows``.
        seconds: wall time of the whole call.
        exact_sample: float64 ``(S, len(recall_rows))`` exact prefix minima of the ``recall_rows`` queries (what
            ``recall_per_size`` and ``gap_rel_error_per_size`` compare ``per_query[:, recall_rows]`` with), so the
            accuracy can be re-measured on a subset of the queries.

    """

    sizes: np.ndarray
    gaps: np.ndarray
    per_query: np.ndarray
    nearest_index: np.ndarray
    scale: float
    index: str
    exact_size: int
    blocks: tuple[BlockInfo, ...]
    recall_rows: np.ndarray
    recall_per_size: np.ndarray
    gap_rel_error_per_size: np.ndarray
    seconds: float
    exact_sample: np.ndarray

    @property
    def gap(self) -> float:
        """Approximate :math:`G(n_{max})`."""
        return float(self.gaps[-1])

    @property
    def gap_norm(self) -> float:
        """Approximate :math:`G(n_{max})` over ``scale`` (see :attr:`GapCurve.gap_norm`)."""
        if self.scale > 0:
            return self.gap / self.scale
        return 0.0 if self.gap == 0 else math.inf

    @property
    def recall(self) -> float:
        """Measured recall at :math:`n_{max}` on ``recall_rows``."""
        return float(self.recall_per_size[-1])

    @property
    def gap_rel_error(self) -> float:
        """Measured relative error of :math:`G(n_{max})` on ``recall_rows`` (``>= 0``)."""
        return float(self.gap_rel_error_per_size[-1])


def approximate_gap(
    reference: Any,
    queries: Any,
    *,
    index: IndexKind = "ivf",
    scan: Scan = "torch",
    sizes: Any = None,
    min_size: int = 16,
    ratio: float = 2.0,
    recall_sample: int = 1000,
    target_recall: float = 0.95,
    target_error: float = 0.005,
    exact_max: int | None = None,
    seed: int | None = 0,
    nlist: int | None = None,
    nprobe: int | None = None,
    M: int | None = None,  # noqa: N803 - FAISS' name for the HNSW degree
    ef_search: int | None = None,
    num_threads: int | None = None,
) -> ApproximateGap:
    r"""Approximate gap curve :math:`G(n)` from FAISS IVF or HNSW indexes, with measured recall and error.

    The same curve as :func:`lightning_repgap.gap.gap_curve` (same ``seed`` gives the same bank order, hence the
    same prefixes), from approximate indexes past the first ``exact_max`` bank points; see the module notes for
    the algorithm and the default-parameter rules. Every value is an upper bound on the exact one.

    Args:
        reference: ``(n_max, D)`` bank (array or tensor, any float dtype, any device; searched on the CPU).
        queries: ``(m, D)`` held-out representations.
        index: ``"ivf"`` (inverted lists; the fast choice for a one-off measurement) or ``"hnsw"`` (graph).
        scan: how IVF lists are scanned: ``"torch"`` (default; one GEMM per list and group of queries) or
            ``"faiss"`` (FAISS ``IndexIVFFlat``, one pass over a list per query: memory-bound on the CPU).
        sizes: explicit increasing bank sizes; default :func:`~lightning_repgap.gap.geometric_sizes`.
        min_size: first grid size when ``sizes`` is not given.
        ratio: grid growth factor when ``sizes`` is not given.
        recall_sample: number of random queries also searched exactly to measure recall and error
            (all queries if fewer). Costs ``recall_sample / m`` of an exact search.
        target_recall: recall the calibration of ``nprobe`` / ``ef_search`` aims for.
        target_error: relative gap error (on the exact sample) the calibration also aims for: it widens the search
            until both targets are met at the end of each block.
        exact_max: grid sizes up to this are searched exactly; default ``max(4096, n_max // 64)``; ``0``
            searches every block approximately.
        seed: seed of the bank order (as in ``gap_curve``), the recall sample and the k-means initialisation;
            ``None`` keeps the bank order and draws the rest at random.
        nlist: IVF lists (one quantizer for all blocks, at most 1 per 39 bank points); default
            :func:`default_nlist` of the largest block.
        nprobe: IVF lists probed per query; default calibrated for ``target_recall`` and ``target_error``.
        M: HNSW links per node; default 32.
        ef_search: HNSW search breadth; default calibrated like ``nprobe``.
        num_threads: threads for FAISS (``faiss.omp_set_num_threads``) and for the torch GEMMs (k-means, list
            assignment, exact sample), both restored on return; default ``REPGAP_NUM_THREADS``, else torch's
            current intra-op count (see :func:`~lightning_repgap._threads.default_num_threads`). The exact prefix
            always runs on one torch thread.

    Returns:
        An :class:`ApproximateGap`.

    Raises:
        ValueError: for an unknown ``index``, parameters of the other index, non-positive parameters,
            ``nprobe > nlist``, ``target_recall`` outside ``(0, 1]``, ``target_error < 0``, bad ``sizes``, or
            invalid data.
        TypeError: for non-floating data.
        ModuleNotFoundError: if FAISS is not installed.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> ref, qs = rng.random((20_000, 4)), rng.random((500, 4))
        >>> res = approximate_gap(ref, qs, exact_max=1024, recall_sample=200)
        >>> res.recall >= 0.95, 0 <= res.gap_rel_error < 0.01
        (True, True)
        >>> [b.method for b in res.blocks][:2]
        ['exact', 'ivf-torch']

    """
    from lightning_repgap._ann import run_approximate_gap  # only an approximate measurement imports it

    return run_approximate_gap(
        reference,
        queries,
        index=index,
        scan=scan,
        sizes=sizes,
        min_size=min_size,
        ratio=ratio,
        recall_sample=recall_sample,
        target_recall=target_recall,
        target_error=target_error,
        exact_max=exact_max,
        seed=seed,
        nlist=nlist,
        nprobe=nprobe,
        M=M,
        ef_search=ef_search,
        num_threads=num_threads,
    )
