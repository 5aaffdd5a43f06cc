r"""Opt-in approximate nearest-neighbour search (FAISS IVF or HNSW) for banks too big for the exact search.

The exact gap curve costs one search of the ``m`` queries against the ``n`` bank points: ``2 n m D`` flops,
about 5 TFLOP for ``n = 1e6, m = 1e4, D = 256`` (~25 s on two AVX-512 cores). :func:`approximate_gap` trades a
measured, reported amount of accuracy for time. It never replaces the exact path silently: the exact functions
in :mod:`lightning_repgap.gap` and :mod:`lightning_repgap.functional` are unchanged, and :func:`auto_index` only
*documents* where an automatic choice would switch.

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

Speed notes (2 cores, AVX-512, faiss-cpu wheel)
    The wheel's bundled OpenBLAS does not recognise this CPU and runs its SSE3 ("Prescott") kernels, so every
    FAISS operation that is a matrix product (``IndexFlatL2`` search, k-means, IVF coarse quantization) runs at a
    fraction of the machine's GEMM speed. The matrix-product parts of the IVF (k-means, assigning bank points to
    lists, choosing the lists each query probes) therefore run as torch GEMMs; FAISS holds the inverted lists and
    scans them (``add_preassigned`` / ``search_preassigned`` from ``faiss.contrib.ivf_tools``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import logging
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from lightning_repgap._checks import _check_positive_int, _check_representations, _check_same_dim
from lightning_repgap._imports import _FAISS_AVAILABLE
from lightning_repgap.calibration import concentration as _concentration
from lightning_repgap.gap import CONCENTRATION_SUBSET, GapCurve, _spread, geometric_sizes
from lightning_repgap.search import (
    Prepared,
    _centred32,
    _centred_aug32,
    _faiss_threads,
    _requested_num_threads,
    _search_threads,
    _torch_threads,
    prefix_nearest,
    prepare,
    resolve_backend,
    search_prepared,
)

log = logging.getLogger(__name__)

IndexKind = Literal["ivf", "hnsw"]
_INDEXES = ("ivf", "hnsw")
#: The ``index`` argument of ``representation_gap``, ``RepresentationGap`` and ``RepresentationGapCallback``.
IndexOption = Literal["exact", "ivf", "hnsw", "auto"]
INDEX_OPTIONS = ("exact", "ivf", "hnsw", "auto")
#: Result keys added by an approximate index (absent from exact results), in logging order.
APPROXIMATE_KEYS = ("recall", "gap_rel_error")
_SCANS = ("torch", "faiss")

#: Bank size from which :func:`auto_index` would pick an approximate index.
AUTO_APPROXIMATE_MIN_BANK = 1_000_000

# Bank rows gathered, centred and indexed per step: 32 MiB of float32 at D = 256.
_CHUNK = 32768
# Rows per tile of the torch centroid GEMMs (bounds the score buffer to _ROW_TILE * nlist floats).
_ROW_TILE = 8192
# Torch list scan: the score tile of one GEMM.
_SCORE_ROWS = 2048
_SCORE_COLS = 8192
# Smallest exact prefix; the exact prefix is at least n / _EXACT_FRACTION rows.
_EXACT_MIN = 4096
_EXACT_FRACTION = 64
# IVF: nominal nprobe used to size nlist, first nprobe tried, k-means sample and iterations.
_NPROBE_NOMINAL = 16
_NPROBE_START = 8
_NPROBE_MAX_FRACTION = 4
_TRAIN_PER_LIST = 64
_MIN_PER_LIST = 39
_KMEANS_ITERS = 10
# Cost of one distance in FAISS' IVF-Flat scan relative to one in a torch GEMM (memory-bound scan, measured).
_FAISS_SCAN_COST = 16
# HNSW defaults.
_HNSW_M = 32
_HNSW_EF_CONSTRUCTION = 40
_EF_SEARCH_START = 64
_EF_SEARCH_MAX = 2048
# A query counts as found when its approximate distance is within this relative tolerance of the exact one.
_FOUND_RTOL = 1e-9


def auto_index(n_bank: int) -> str:
    """Index an automatic choice would use for a bank of ``n_bank`` points: ``"flat"`` (exact) or ``"ivf"``.

    Exact search costs ``2 n m D`` flops and runs near the GEMM roofline; an IVF index built for one measurement
    costs about ``4 n sqrt(16 m) D`` flops (build + scan, see the module notes) plus the exact recall sample and
    fixed overheads, and it gives up a little accuracy. Below a million points the exact search takes seconds
    to tens of seconds on two cores and is preferred; from ``AUTO_APPROXIMATE_MIN_BANK = 1_000_000`` points on,
    ``"ivf"`` (with measured recall) is the recommended opt-in. HNSW is never chosen automatically: building its
    graph costs more than one exact search.

    This function only documents the rule; the exact functions do not call it.

    Args:
        n_bank: number of bank (reference) points.

    Returns:
        ``"flat"`` or ``"ivf"``.

    Raises:
        ValueError: if ``n_bank`` is not a positive integer.

    Example:
        >>> auto_index(50_000), auto_index(2_000_000)
        ('flat', 'ivf')

    """
    n_bank = _check_positive_int(n_bank, "n_bank")
    return "ivf" if n_bank >= AUTO_APPROXIMATE_MIN_BANK else "flat"


def _check_index(index: Any) -> IndexOption:
    """``index`` itself if it is one of :data:`INDEX_OPTIONS`; a ``ValueError`` naming the choices otherwise."""
    if not isinstance(index, str) or index not in INDEX_OPTIONS:
        raise ValueError(f"`index` must be 'exact', 'ivf', 'hnsw' or 'auto', got {index!r}.")
    return index  # type: ignore[return-value]


def resolve_index(index: str, n_bank: int) -> str:
    """The search an ``index`` argument stands for: ``"exact"``, ``"ivf"`` or ``"hnsw"``.

    ``"auto"`` follows :func:`auto_index` (``"flat"`` is ``"exact"``): exact below
    ``AUTO_APPROXIMATE_MIN_BANK`` bank points, ``"ivf"`` from there on.

    Args:
        index: ``"exact"``, ``"ivf"``, ``"hnsw"`` or ``"auto"``.
        n_bank: number of bank points (decides ``"auto"``).

    Returns:
        ``"exact"``, ``"ivf"`` or ``"hnsw"``.

    Raises:
        ValueError: for any other ``index``.

    Example:
        >>> resolve_index("auto", 50_000), resolve_index("auto", 2_000_000), resolve_index("hnsw", 10)
        ('exact', 'ivf', 'hnsw')

    """
    if _check_index(index) == "auto":
        chosen = auto_index(n_bank)
        return "exact" if chosen == "flat" else chosen
    return index


def default_nlist(block_size: int, n_queries: int, *, scan: str = "torch") -> int:
    """Default IVF list count for a block: ``sqrt(c * 16 m n_b / (n_b + m))``, at most ``n_b / 39``.

    Balances the build (assigning ``n_b`` points to ``nlist`` centroids, a GEMM) against the scan (``m``
    queries times ``nprobe ~ 16`` lists of ``n_b / nlist`` points) of an index used for one measurement.
    ``c`` is how much slower a scanned distance is than a GEMM one: 1 for the torch scan (also a GEMM), 16 for
    FAISS' per-query scan (measured on the reference machine), which therefore gets 4x more, smaller lists.

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
    if scan not in _SCANS:
        raise ValueError(f"`scan` must be one of {_SCANS}, got {scan!r}.")
    cost = _FAISS_SCAN_COST if scan == "faiss" else 1
    balanced = round(math.sqrt(cost * _NPROBE_NOMINAL * m * n_b / (n_b + m)))
    return max(1, min(balanced, n_b // _MIN_PER_LIST))


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


class _Bank:
    """The bank in its prefix order, handed out as centred float32 chunks, never as one full copy."""

    def __init__(self, reference: np.ndarray, order: np.ndarray | None, centre: np.ndarray) -> None:
        self.reference = reference
        self.order = order
        self.centre = centre
        # Sums of the centred rows and of their squared norms, accumulated as rows are handed out (for ``scale``).
        self.sum = np.zeros(reference.shape[1], dtype=np.float64)
        self.sum_sq = 0.0
        self.count = 0

    def scale(self) -> float:
        """``2 * trace Cov`` of the rows counted so far (the centre need not be their mean)."""
        mean = self.sum / max(1, self.count)
        sum_sq = self.sum_sq - self.count * float(mean @ mean)
        return 2.0 * max(0.0, sum_sq) / max(1, self.count - 1)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """Bank rows (indices into ``reference``) at prefix ``positions``."""
        return positions if self.order is None else self.order[positions]

    def _raw(self, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
        for p0 in range(start, stop, _CHUNK):
            p1 = min(stop, p0 + _CHUNK)
            yield p0, self.reference[p0:p1] if self.order is None else self.reference[self.order[p0:p1]]

    def centred(self, raw: np.ndarray) -> np.ndarray:
        """``raw - centre`` as C-contiguous float32, subtracted in float64 (as :func:`search.prepare` does)."""
        out = np.empty(raw.shape, dtype=np.float32)
        np.subtract(raw, self.centre, out=out, casting="unsafe")
        return out

    def count_rows(self, rows32: np.ndarray) -> None:
        """Add centred float32 rows to the ``scale`` sums."""
        self.sum += rows32.sum(axis=0, dtype=np.float64)
        self.sum_sq += float(np.einsum("ij,ij->", rows32, rows32, dtype=np.float64))
        self.count += rows32.shape[0]

    def chunks(self, start: int, stop: int, *, count: bool = True) -> Iterator[tuple[int, np.ndarray]]:
        """``(first position, centred float32 chunk)`` over ``[start, stop)``.

        With ``count`` the rows add to ``sum_sq``: every bank position must be counted exactly once.
        """
        for p0, raw in self._raw(start, stop):
            out = self.centred(raw)
            if count:
                self.count_rows(out)
            yield p0, out

    def gather(self, positions: np.ndarray, *, count: bool = False) -> np.ndarray:
        """Centred float32 rows at prefix ``positions`` (see :meth:`chunks` for ``count``)."""
        out = self.centred(self.reference[self.rows(positions)])
        if count:
            self.count_rows(out)
        return out


@dataclass
class _BlockResult:
    rows: np.ndarray  # (m,) bank rows found, -1 where none
    dist_sq: np.ndarray  # (m,) float64, inf where none
    exact_sample: np.ndarray  # (k,) float64 exact minimum within the block for the sampled queries
    info: BlockInfo


def _check_options(
    index: str, nlist: Any, nprobe: Any, m_links: Any, ef_search: Any, target_recall: Any, recall_sample: Any
) -> None:
    if index not in _INDEXES:
        raise ValueError(f"`index` must be one of {_INDEXES}, got {index!r}.")
    for value, name in ((nlist, "nlist"), (nprobe, "nprobe"), (m_links, "M"), (ef_search, "ef_search")):
        if value is not None:
            _check_positive_int(value, name)
    if index == "hnsw" and (nlist is not None or nprobe is not None):
        raise ValueError("`nlist` and `nprobe` are IVF parameters; with index='hnsw' set `M` and `ef_search`.")
    if index == "ivf" and (m_links is not None or ef_search is not None):
        raise ValueError("`M` and `ef_search` are HNSW parameters; with index='ivf' set `nlist` and `nprobe`.")
    if nlist is not None and nprobe is not None and nprobe > nlist:
        raise ValueError(f"`nprobe`={nprobe} exceeds `nlist`={nlist}: a query cannot probe more lists than exist.")
    if isinstance(target_recall, bool) or not isinstance(target_recall, int | float) or not 0 < target_recall <= 1:
        raise ValueError(f"`target_recall` must be a number in (0, 1], got {target_recall!r}.")
    _check_positive_int(recall_sample, "recall_sample")


def _check_grid(sizes: Any, n_max: int, min_size: int, ratio: float) -> np.ndarray:
    if sizes is None:
        return geometric_sizes(n_max, min_size=min(min_size, n_max), ratio=ratio)
    arr = np.asarray(sizes).reshape(-1)
    if arr.size == 0 or not np.issubdtype(arr.dtype, np.integer) or (np.diff(arr) <= 0).any() or arr[0] < 1:
        raise ValueError(f"`sizes` must be strictly increasing positive integers, got {np.asarray(sizes)}.")
    if arr[-1] > n_max:
        raise ValueError(f"`sizes` ends at {int(arr[-1])} but the bank has only {n_max} points.")
    return arr.astype(np.int64)


def approximate_gap(
    reference: Any,
    queries: Any,
    *,
    index: IndexKind = "ivf",
    scan: Literal["torch", "faiss"] = "torch",
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
            current intra-op count (see :func:`~lightning_repgap.search.default_num_threads`). The exact prefix
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
    t_start = time.perf_counter()
    _check_options(index, nlist, nprobe, M, ef_search, target_recall, recall_sample)
    if isinstance(target_error, bool) or not isinstance(target_error, int | float) or not target_error >= 0:
        raise ValueError(f"`target_error` must be a number >= 0, got {target_error!r}.")
    if scan not in _SCANS:
        raise ValueError(f"`scan` must be one of {_SCANS}, got {scan!r}.")
    ref = _check_representations(reference, "reference")
    qs = _check_representations(queries, "queries", min_points=1)
    _check_same_dim(ref, qs, "reference", "queries")
    n_max, dim = ref.shape
    m = qs.shape[0]
    grid = _check_grid(sizes, n_max, min_size, ratio)
    if exact_max is None:
        exact_max = max(_EXACT_MIN, n_max // _EXACT_FRACTION)
    elif isinstance(exact_max, bool) or not isinstance(exact_max, int | np.integer) or exact_max < 0:
        raise ValueError(f"`exact_max` must be an integer >= 0, got {exact_max!r}.")
    requested = _requested_num_threads(num_threads)
    if not _FAISS_AVAILABLE:
        raise ModuleNotFoundError("approximate_gap needs FAISS: `pip install faiss-cpu`.")
    import faiss

    threads = max(1, torch.get_num_threads()) if requested is None else requested

    n_used = int(grid[-1])
    order = np.random.default_rng(seed).permutation(n_max)[:n_used] if seed is not None else None
    aux = np.random.default_rng(None if seed is None else [seed, 1])
    n_exact = int(np.searchsorted(grid, exact_max, side="right"))
    exact_size = int(grid[n_exact - 1]) if n_exact else 0
    # ``prepare`` on the head of the (shuffled) bank: the exact prefix plus, at least, enough random points to
    # centre on. The rest of the bank is never materialised as one float32 copy: each block is centred chunk by
    # chunk (on the same centre) into its index, which holds its own copy.
    head = max(exact_size, min(n_used, _EXACT_MIN))
    head_rows = np.arange(head) if order is None else order[:head]
    prep_head = prepare(ref, qs, rows=head_rows)  # bank position p is ref[head_rows[p]]; no gathered copy of ref
    bank = _Bank(ref, order, prep_head.centre)
    prep = dataclasses.replace(prep_head, rows=None, reference_aug32=prep_head.reference_aug32[:0])
    sample = np.sort(aux.permutation(m)[: min(m, recall_sample)])

    n_sizes = grid.size
    per_query = np.empty((n_sizes, m), dtype=np.float64)
    exact_sample = np.empty((n_sizes, sample.size), dtype=np.float64)
    nearest = np.zeros(m, dtype=np.int64)
    blocks: list[BlockInfo] = []
    # torch's GEMMs (k-means, list assignment, exact sample) get FAISS' thread count; the two never overlap. torch's
    # setting is entered first, so that it is restored last (FAISS' may share torch's OpenMP runtime).
    with _torch_threads(requested), _faiss_threads(faiss, threads):
        if n_exact:
            bank.count_rows(prep_head.reference32[:exact_size])
            blocks.append(_exact_prefix(prep_head, head_rows, grid[:n_exact], per_query, nearest))
            exact_sample[:n_exact] = per_query[:n_exact, sample]
        del prep_head
        inf_sample = np.full(sample.size, np.inf)
        if index == "ivf" and n_exact < n_sizes:
            quantizer = _train_quantizer(bank, exact_size, grid, m, nlist, scan, aux)
        for s in range(n_exact, n_sizes):
            start = int(grid[s - 1]) if s else 0
            stop = int(grid[s])
            prev_approx, prev_exact = (per_query[s - 1, sample], exact_sample[s - 1]) if s else (inf_sample, inf_sample)
            prefix = _Prefix(prev_approx, prev_exact, target_recall, target_error)
            if index == "ivf":
                res = _ivf_block(faiss, bank, prep, start, stop, sample, prefix, quantizer, nprobe, threads, scan)
            else:
                res = _hnsw_block(faiss, bank, prep, start, stop, sample, prefix, M, ef_search, threads)
            blocks.append(res.info)
            prev = per_query[s - 1] if s else np.full(m, np.inf)
            better = res.dist_sq < prev
            per_query[s] = np.where(better, res.dist_sq, prev)
            nearest = np.where(better, res.rows, nearest)
            exact_sample[s] = res.exact_sample if s == 0 else np.minimum(exact_sample[s - 1], res.exact_sample)

    approx_sample = per_query[:, sample]
    # The float32-selected exact winner can lose a float64 near-tie to the approximate one: the true minimum is
    # at most both, so the smaller of the two is the better exact value, and approx >= exact holds per query.
    exact_sample = np.minimum(exact_sample, approx_sample)
    assert np.all(approx_sample >= exact_sample)
    recall, rel_err = _accuracy(approx_sample, exact_sample)
    assert bank.count == n_used
    scale = bank.scale()
    result = ApproximateGap(
        sizes=grid,
        gaps=per_query.mean(axis=1),
        per_query=per_query,
        nearest_index=nearest,
        scale=scale,
        index=index,
        exact_size=exact_size,
        blocks=tuple(blocks),
        recall_rows=sample,
        recall_per_size=recall,
        gap_rel_error_per_size=rel_err,
        seconds=time.perf_counter() - t_start,
        exact_sample=exact_sample,
    )
    log.debug(
        "approximate gap index=%s threads=%d n=%d m=%d D=%d exact<=%d recall=%.4f rel_err=%.2e: %.3fs",
        index,
        threads,
        int(grid[-1]),
        m,
        dim,
        result.exact_size,
        result.recall,
        result.gap_rel_error,
        result.seconds,
    )
    return result


def _accuracy(approx: np.ndarray, exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-size recall and relative gap error of ``(S, k)`` approximate minima against the exact ones."""
    recall = np.mean(approx <= exact * (1 + _FOUND_RTOL), axis=1)
    exact_mean = exact.mean(axis=1)
    approx_mean = approx.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_err = np.where(exact_mean > 0, approx_mean / exact_mean - 1.0, np.where(approx_mean > 0, np.inf, 0.0))
    # approx >= exact per query; only rounding of the means could say otherwise.
    return recall, np.maximum(rel_err, 0.0)


def _exact_prefix(
    prep_head: Prepared, head_rows: np.ndarray, grid: np.ndarray, per_query: np.ndarray, nearest: np.ndarray
) -> BlockInfo:
    """Exact prefix minima for the sizes ``grid`` (one torch prefix search); fills ``per_query`` and ``nearest``.

    ``prep_head`` holds the first bank positions (``head_rows`` are their rows in ``reference``).
    """
    t0 = time.perf_counter()
    stop = int(grid[-1])
    exact = dataclasses.replace(prep_head, reference_aug32=prep_head.reference_aug32[:stop])
    # A small search made of many small torch calls: one thread avoids a fork/join barrier per call, which costs
    # milliseconds when the cores are shared (measured 2.5-10x faster here under load, ~2x slower when idle).
    winners = prefix_nearest(exact, grid, backend="torch", num_threads=1)  # head positions
    per_query[0] = exact.dist_sq(winners[0][:, None])[:, 0]
    nearest[:] = head_rows[winners[0]]
    for s in range(1, grid.size):
        changed = np.flatnonzero(winners[s] != winners[s - 1])
        d = exact.dist_sq(winners[s, changed][:, None], rows=changed)[:, 0]
        per_query[s] = per_query[s - 1]
        better = d < per_query[s, changed]
        per_query[s, changed[better]] = d[better]
        nearest[changed[better]] = head_rows[winners[s, changed[better]]]
    return BlockInfo(0, stop, "exact", {}, 1.0, 0.0, time.perf_counter() - t0)


class _ExactSample:
    """Running exact nearest neighbour of the sampled queries within one block, fed chunk by chunk."""

    def __init__(self, prep: Prepared, sample: np.ndarray, threads: int) -> None:
        self.prep = prep
        self.sample = sample
        self.queries32 = np.ascontiguousarray(prep.queries32[sample])
        self.threads = threads
        self.best = np.full(sample.size, np.inf, dtype=np.float32)
        self.rows = np.zeros(sample.size, dtype=np.int64)

    def add(self, chunk32: np.ndarray, rows: np.ndarray) -> None:
        d32, idx = search_prepared(chunk32, self.queries32, 1, backend="torch", num_threads=self.threads)
        better = d32[:, 0] < self.best
        self.best = np.where(better, d32[:, 0], self.best)
        self.rows = np.where(better, rows[idx[:, 0]], self.rows)

    def dist_sq(self) -> np.ndarray:
        return self.prep.dist_sq(self.rows[:, None], rows=self.sample)[:, 0]


def _winners(prep: Prepared, bank: _Bank, start: int, ids: np.ndarray, rows: np.ndarray | None = None) -> Any:
    """Bank rows and exact float64 distances of block-local ``ids`` (``-1``: nothing found -> row -1, inf)."""
    found = ids >= 0
    bank_rows = np.full(ids.shape, -1, dtype=np.int64)
    bank_rows[found] = bank.rows(ids[found] + start)
    dist = np.full(ids.shape, np.inf)
    qrows = np.flatnonzero(found) if rows is None else rows[found]
    dist[found] = prep.dist_sq(bank_rows[found][:, None], rows=qrows)[:, 0]
    return bank_rows, dist


@dataclass(frozen=True)
class _Prefix:
    """Sampled queries' approximate and exact minima before the current block, and what calibration aims for."""

    approx: np.ndarray
    exact: np.ndarray
    target_recall: float
    target_error: float

    def measure(self, block_approx: np.ndarray, block_exact: np.ndarray) -> tuple[float, float]:
        """Recall and relative gap error at the end of the current block, given its approximate/exact minima."""
        approx = np.minimum(self.approx, block_approx)
        exact = np.minimum(np.minimum(self.exact, block_exact), approx)
        recall = float(np.mean(approx <= exact * (1 + _FOUND_RTOL)))
        exact_mean = float(exact.mean())
        error = float(approx.mean()) / exact_mean - 1.0 if exact_mean > 0 else 0.0
        return recall, error

    def met(self, recall: float, error: float) -> bool:
        """Whether the calibration can stop."""
        return recall >= self.target_recall and error <= self.target_error


def _assign_tiles(x32: np.ndarray, centroids: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` nearest centroids of each row (ascending distance), as tiled torch GEMMs."""
    neg_half = -0.5 * (centroids * centroids).sum(dim=1)
    x = torch.from_numpy(x32)
    out = torch.empty((x.shape[0], k), dtype=torch.int64)
    for i0 in range(0, x.shape[0], _ROW_TILE):
        scores = torch.addmm(neg_half, x[i0 : i0 + _ROW_TILE], centroids.T)
        out[i0 : i0 + _ROW_TILE] = scores.argmax(dim=1, keepdim=True) if k == 1 else scores.topk(k, dim=1).indices
    return out


def _kmeans(x32: np.ndarray, k: int, rng: np.random.Generator) -> torch.Tensor:
    """Lloyd's k-means with torch GEMMs; empty clusters are re-seeded on random sample points."""
    x = torch.from_numpy(x32)
    centroids = x[torch.from_numpy(rng.choice(x.shape[0], k, replace=False))].clone()
    for _ in range(_KMEANS_ITERS):
        assign = _assign_tiles(x32, centroids, 1)[:, 0]
        counts = torch.bincount(assign, minlength=k)
        sums = _cluster_sums(x, assign, k)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None].to(sums.dtype)
        empty = torch.nonzero(~filled).flatten()
        if empty.numel():
            centroids[empty] = x[torch.from_numpy(rng.choice(x.shape[0], empty.numel(), replace=False))]
    return centroids


def _cluster_sums(x: torch.Tensor, assign: torch.Tensor, k: int) -> torch.Tensor:
    """``(k, D)`` sums of the rows of ``x`` per cluster, as one-hot GEMMs over ``_ROW_TILE`` rows at a time.

    ``index_add_`` is an order of magnitude slower on the CPU; a one-hot matrix of all rows at once would hold
    ``n x k`` floats (640 MB for the 101,000 training points and 1,583 lists of a 1e6 bank with the FAISS scan).
    """
    sums = torch.zeros((k, x.shape[1]), dtype=x.dtype)
    for i0 in range(0, x.shape[0], _ROW_TILE):
        part = assign[i0 : i0 + _ROW_TILE]
        one_hot = torch.zeros((part.shape[0], k), dtype=x.dtype)
        one_hot[torch.arange(part.shape[0]), part] = 1.0
        sums += one_hot.T @ x[i0 : i0 + _ROW_TILE]
    return sums


class _TorchLists:
    """Inverted lists as one list-sorted float32 array, scanned with one GEMM per list.

    FAISS scans a list once per query that probes it (memory-bound: 2-8 GFLOP/s here). Here the (query, list)
    pairs are sorted by list, and each list meets all the queries that probe it in one matrix product.

    The lists are small, so the products are many and small: run through torch's intra-op thread pool, each
    would pay a fork/join barrier, which costs milliseconds once the cores are shared with other processes. So
    the lists are split among ``threads`` Python threads, each running single-threaded torch calls (which
    release the GIL) on its own lists.
    """

    def __init__(self, lists32: np.ndarray, bounds: np.ndarray, positions: np.ndarray, threads: int) -> None:
        self.x = torch.from_numpy(lists32)
        self.neg_half = -0.5 * (self.x * self.x).sum(dim=1)
        self.bounds = bounds.tolist()
        self.positions = positions
        self.threads = threads

    def search(self, queries32: np.ndarray, probes: np.ndarray) -> np.ndarray:
        """Block position of the nearest point in the probed lists of each query (``-1`` if they are empty)."""
        q = torch.from_numpy(queries32)
        n_q, n_p = probes.shape
        n_lists = len(self.bounds) - 1
        flat = torch.from_numpy(probes).reshape(-1)
        order = torch.argsort(flat, stable=True)
        owner = order // n_p  # query of each (query, list) pair, pairs sorted by list
        pairs = torch.bincount(flat, minlength=n_lists)
        pair_start = [0, *torch.cumsum(pairs, 0).tolist()]
        pair_value = torch.full((flat.numel(),), -math.inf)
        pair_col = torch.zeros(flat.numel(), dtype=torch.int64)  # column within the list, then within the block
        # Split the lists into contiguous groups of about equal work (pairs x list length), one per thread.
        work = np.cumsum(pairs.numpy() * np.diff(np.asarray(self.bounds)))
        cuts = np.searchsorted(work, work[-1] * np.arange(1, self.threads) / self.threads) if work[-1] else []
        edges = [0, *(int(c) + 1 for c in cuts), n_lists]

        def scan(first: int, last: int) -> None:
            for lst in range(first, last):
                a, b = self.bounds[lst], self.bounds[lst + 1]
                for r0 in range(pair_start[lst], pair_start[lst + 1], _SCORE_ROWS):
                    r1 = min(pair_start[lst + 1], r0 + _SCORE_ROWS)
                    q_rows = q[owner[r0:r1]]
                    for c0 in range(a, b, _SCORE_COLS):
                        c1 = min(b, c0 + _SCORE_COLS)
                        value, col = torch.addmm(self.neg_half[c0:c1], q_rows, self.x[c0:c1].T).max(dim=1)
                        if c0 > a:  # a list wider than one tile: keep the better of the tiles
                            better = value > pair_value[r0:r1]
                            value = torch.where(better, value, pair_value[r0:r1])
                            col = torch.where(better, col + (c0 - a), pair_col[r0:r1])
                        pair_value[r0:r1] = value
                        pair_col[r0:r1] = col

        with _torch_threads(1), concurrent.futures.ThreadPoolExecutor(self.threads) as pool:
            jobs = [pool.submit(scan, lo, hi) for lo, hi in itertools.pairwise(edges) if hi > lo]
            for job in jobs:
                job.result()
        pair_col += torch.tensor(self.bounds[:-1])[flat[order]]
        best = torch.full((n_q,), -math.inf).scatter_reduce(0, owner, pair_value, "amax")
        won = (pair_value == best[owner]) & (pair_value > -math.inf)
        arg = torch.full((n_q,), -1, dtype=torch.int64)
        arg[owner[won]] = pair_col[won]
        out = np.full(n_q, -1, dtype=np.int64)
        found = (arg >= 0).numpy()
        out[found] = self.positions[arg.numpy()[found]]
        return out


def _train_quantizer(
    bank: _Bank,
    exact_size: int,
    grid: np.ndarray,
    m: int,
    nlist: int | None,
    scan: str,
    rng: np.random.Generator,
) -> torch.Tensor:
    """Centroids shared by every IVF block: sized for the largest block, trained on the approximate part."""
    n_approx = int(grid[-1]) - exact_size
    largest = int(np.diff(np.concatenate([[exact_size], grid[grid > exact_size]])).max())
    lists = min(nlist or default_nlist(largest, m, scan=scan), max(1, n_approx // _MIN_PER_LIST))
    train = exact_size + np.sort(rng.choice(n_approx, min(n_approx, _TRAIN_PER_LIST * lists), replace=False))
    return _kmeans(bank.gather(train), lists, rng)


def _ivf_block(
    faiss: Any,
    bank: _Bank,
    prep: Prepared,
    start: int,
    stop: int,
    sample: np.ndarray,
    prefix: _Prefix,
    centroids: torch.Tensor,
    nprobe: int | None,
    threads: int,
    scan: str,
) -> _BlockResult:
    """Build an IVF-Flat index on bank positions ``[start, stop)``, calibrate ``nprobe``, search every query."""
    from faiss.contrib.ivf_tools import add_preassigned, search_preassigned

    t0 = time.perf_counter()
    n_b = stop - start
    m, dim = prep.queries32.shape
    lists = centroids.shape[0]
    exact = _ExactSample(prep, sample, threads)
    # Both scans fill the lists in list order (rows sorted by their list), so every list is written in one piece:
    # FAISS' inverted lists then grow once to their final size instead of doubling chunk by chunk (which left up
    # to twice the block's size allocated), and the torch scan gets contiguous lists.
    assign = np.empty(n_b, dtype=np.int64)
    for p0, chunk in bank.chunks(start, stop, count=False):
        assign[p0 - start : p0 - start + chunk.shape[0]] = _assign_tiles(chunk, centroids, 1)[:, 0].numpy()
    positions = np.argsort(assign, kind="stable")
    if scan == "faiss":
        quantizer = faiss.IndexFlatL2(dim)
        quantizer.add(centroids.numpy())
        ivf = faiss.IndexIVFFlat(quantizer, dim, lists)
        for c0 in range(0, n_b, _CHUNK):
            block_pos = positions[c0 : c0 + _CHUNK]
            chunk = bank.gather(start + block_pos, count=True)
            add_preassigned(ivf, chunk, assign[block_pos], ids=np.ascontiguousarray(block_pos))
            exact.add(chunk, bank.rows(start + block_pos))
        del assign, positions

        def scan_lists(queries32: np.ndarray, probes: np.ndarray) -> np.ndarray:
            ivf.nprobe = probes.shape[1]
            return search_preassigned(ivf, queries32, 1, probes)[1][:, 0]

    else:
        bounds = np.concatenate([[0], np.cumsum(np.bincount(assign, minlength=lists))])
        lists32 = np.empty((n_b, dim), dtype=np.float32)
        for c0 in range(0, n_b, _CHUNK):
            rows = start + positions[c0 : c0 + _CHUNK]
            lists32[c0 : c0 + rows.size] = bank.gather(rows, count=True)
            exact.add(lists32[c0 : c0 + rows.size], bank.rows(rows))
        scan_lists = _TorchLists(lists32, bounds, positions, threads).search
    exact_d = exact.dist_sq()
    t_build = time.perf_counter() - t0

    t0 = time.perf_counter()
    max_probe = min(lists, nprobe) if nprobe else max(min(_NPROBE_START, lists), lists // _NPROBE_MAX_FRACTION)
    probes = _assign_tiles(prep.queries32, centroids, max_probe).numpy()

    def search(rows: np.ndarray, p0: int, p1: int) -> tuple[np.ndarray, np.ndarray]:
        ids = scan_lists(prep.queries32[rows], np.ascontiguousarray(probes[rows, p0:p1]))
        return _winners(prep, bank, start, ids, rows)

    # Calibration widens the probe set step by step; each step scans only the lists added to it.
    probe = max_probe if nprobe else min(_NPROBE_START, lists)
    sample_rows, sample_d = search(sample, 0, probe)
    recall, error = prefix.measure(sample_d, exact_d)
    while not nprobe and not prefix.met(recall, error) and probe < max_probe:
        wider = min(2 * probe, max_probe)
        more_rows, more_d = search(sample, probe, wider)
        better = more_d < sample_d
        sample_rows, sample_d = np.where(better, more_rows, sample_rows), np.where(better, more_d, sample_d)
        probe = wider
        recall, error = prefix.measure(sample_d, exact_d)
    if not nprobe and not prefix.met(recall, error):
        _warn_recall(prefix, recall, error, f"nprobe={probe} of nlist={lists}", start, stop)
    rest = np.setdiff1d(np.arange(m), sample, assume_unique=True)
    rows, dist = np.empty(m, dtype=np.int64), np.empty(m)
    rows[sample], dist[sample] = sample_rows, sample_d
    if rest.size:
        rows[rest], dist[rest] = search(rest, 0, probe)
    params = {"nlist": lists, "nprobe": probe}
    info = BlockInfo(start, stop, f"ivf-{scan}", params, recall, t_build, time.perf_counter() - t0)
    log.debug("ivf block [%d, %d): %s", start, stop, info)
    return _BlockResult(rows, dist, exact_d, info)


def _hnsw_block(
    faiss: Any,
    bank: _Bank,
    prep: Prepared,
    start: int,
    stop: int,
    sample: np.ndarray,
    prefix: _Prefix,
    m_links: int | None,
    ef_search: int | None,
    threads: int,
) -> _BlockResult:
    """Build an HNSW-Flat graph on bank positions ``[start, stop)``, calibrate ``efSearch``, search every query."""
    t0 = time.perf_counter()
    m, dim = prep.queries32.shape
    links = m_links or _HNSW_M
    hnsw = faiss.IndexHNSWFlat(dim, links)
    hnsw.hnsw.efConstruction = _HNSW_EF_CONSTRUCTION
    exact = _ExactSample(prep, sample, threads)
    for p0, chunk in bank.chunks(start, stop):
        hnsw.add(chunk)
        exact.add(chunk, bank.rows(np.arange(p0, p0 + chunk.shape[0])))
    exact_d = exact.dist_sq()
    t_build = time.perf_counter() - t0

    t0 = time.perf_counter()

    def search(rows: np.ndarray, ef: int) -> tuple[np.ndarray, np.ndarray]:
        hnsw.hnsw.efSearch = ef
        _, ids = hnsw.search(prep.queries32[rows], 1)
        return _winners(prep, bank, start, ids[:, 0], rows)

    ef = ef_search or _EF_SEARCH_START
    while True:
        sample_rows, sample_d = search(sample, ef)
        recall, error = prefix.measure(sample_d, exact_d)
        if ef_search or prefix.met(recall, error) or ef >= _EF_SEARCH_MAX:
            break
        ef = min(2 * ef, _EF_SEARCH_MAX)
    if not ef_search and not prefix.met(recall, error):
        _warn_recall(prefix, recall, error, f"ef_search={ef}", start, stop)
    rest = np.setdiff1d(np.arange(m), sample, assume_unique=True)
    rows, dist = np.empty(m, dtype=np.int64), np.empty(m)
    rows[sample], dist[sample] = sample_rows, sample_d
    if rest.size:
        rows[rest], dist[rest] = search(rest, ef)
    info = BlockInfo(start, stop, "hnsw", {"M": links, "ef_search": ef}, recall, t_build, time.perf_counter() - t0)
    log.debug("hnsw block [%d, %d): %s", start, stop, info)
    return _BlockResult(rows, dist, exact_d, info)


def _warn_recall(prefix: _Prefix, recall: float, error: float, setting: str, start: int, stop: int) -> None:
    msg = (
        f"approximate search reached recall {recall:.3f} (target {prefix.target_recall}) and gap error"
        f" {100 * error:.2f} % (target {100 * prefix.target_error:.2f} %) at bank size {stop} (block [{start}, {stop}))"
        f" with the largest setting tried ({setting}); the data may be too high-dimensional for this index: the"
        " reported `recall` and `gap_rel_error` say what that costs, and the exact `gap_curve` is the alternative."
    )
    log.warning(msg)
    warnings.warn(msg, stacklevel=3)


def _approximate_curve(
    ref: np.ndarray,
    qs: np.ndarray,
    tq: np.ndarray | None,
    *,
    index: IndexKind,
    sizes: Any = None,
    min_size: int = 16,
    ratio: float = 2.0,
    seed: int | None = 0,
    n_neighbors: int = 0,
    neighbor_queries: int = 256,
    backend: str = "auto",
    num_threads: int | None = None,
) -> tuple[GapCurve, ApproximateGap, dict[str, float]]:
    """:func:`lightning_repgap.gap._gap_curve` with the curve from :func:`approximate_gap` (validated inputs).

    The queries and the training queries are searched together, as one query set (as the exact path does), and
    split afterwards. Everything else of the :class:`~lightning_repgap.gap.GapCurve` is computed as the exact path
    computes it, without a bank-sized float32 copy:

    - ``concentration`` from the same rows (the first ``CONCENTRATION_SUBSET`` of the shuffled bank, evenly spread
      queries), centred on the mean of those bank rows;
    - ``knn_dist_sq`` (TwoNN / MLE) from an **exact** top-``n_neighbors`` search of the same random
      ``neighbor_queries`` queries, streamed over the bank in chunks: it costs ``neighbor_queries / m`` of an exact
      search (a few %), less than the recall sample, and keeps the cross-checks independent of the index.

    Returns:
        ``(curve, approximate, accuracy)``: ``curve.backend`` is the index (``"ivf"`` / ``"hnsw"``), and
        ``accuracy`` holds ``recall`` and ``gap_rel_error`` at :math:`n_{max}` measured on the sampled queries
        among ``qs`` (all sampled queries if none of them is one of ``qs``).

    """
    n_max = ref.shape[0]
    m = qs.shape[0]
    n_neighbors = int(n_neighbors)
    if not 0 <= n_neighbors <= n_max:
        raise ValueError(f"`n_neighbors` must be in [0, {n_max}] (the bank size), got {n_neighbors}.")
    resolved = resolve_backend(backend)
    threads = _search_threads(num_threads)  # validates num_threads
    all_queries = qs if tq is None else np.concatenate([qs, tq])
    approx = approximate_gap(
        ref, all_queries, index=index, sizes=sizes, min_size=min_size, ratio=ratio, seed=seed, num_threads=num_threads
    )
    n_used = int(approx.sizes[-1])
    # The bank order of approximate_gap and _gap_curve (the same permutation of the same seed).
    order = np.random.default_rng(seed).permutation(n_max)[:n_used] if seed is not None else np.arange(n_used)
    conc_rows = order[:CONCENTRATION_SUBSET] if seed is not None else order[_spread(n_used, CONCENTRATION_SUBSET)]
    centre = ref[conc_rows].mean(axis=0, dtype=np.float64)
    concentration = _concentration(
        _centred32(ref[conc_rows], centre), _centred32(qs[_spread(m, CONCENTRATION_SUBSET)], centre)
    )
    knn_dist_sq = None
    if n_neighbors:
        n_pick = _check_positive_int(neighbor_queries, "neighbor_queries")
        pick = np.random.default_rng(seed).permutation(m)[:n_pick]
        with threads:
            knn_dist_sq = _streamed_knn(ref, order, qs[pick], centre, n_neighbors, resolved, num_threads)

    sampled = approx.recall_rows
    mine = sampled < m
    if not mine.any():
        mine[:] = True
    recall, rel_err = _accuracy(approx.per_query[-1:, sampled[mine]], approx.exact_sample[-1:, mine])
    accuracy = {"recall": float(recall[-1]), "gap_rel_error": float(rel_err[-1])}
    curve = GapCurve(
        sizes=approx.sizes,
        gaps=approx.per_query[:, :m].mean(axis=1),
        per_query=np.ascontiguousarray(approx.per_query[:, :m]),
        nearest_index=approx.nearest_index[:m],
        scale=approx.scale,
        concentration=concentration,
        train_gaps=None if tq is None else approx.per_query[:, m:].mean(axis=1),
        train_per_query=None if tq is None else np.ascontiguousarray(approx.per_query[:, m:]),
        knn_dist_sq=knn_dist_sq,
        backend=index,
    )
    return curve, approx, accuracy


def _streamed_knn(
    ref: np.ndarray,
    order: np.ndarray,
    queries: np.ndarray,
    centre: np.ndarray,
    k: int,
    backend: str,
    num_threads: int | None,
) -> np.ndarray:
    """Exact float64 squared distances ``(len(queries), k)`` (ascending) to the ``k`` nearest of ``ref[order]``.

    The bank is centred and searched ``_CHUNK`` rows at a time and the running top-``k`` merged, so no bank-sized
    copy is made; the winners' distances are recomputed in float64 from the data as given.
    """
    q32 = _centred32(queries, centre)
    best_d = np.empty((queries.shape[0], 0), dtype=np.float32)
    best_rows = np.empty((queries.shape[0], 0), dtype=np.int64)
    for p0 in range(0, order.size, _CHUNK):
        rows = order[p0 : p0 + _CHUNK]
        aug = _centred_aug32(ref, centre, rows)
        d32, idx = search_prepared(
            aug[:, :-1], q32, min(k, rows.size), backend=backend, num_threads=num_threads, reference_aug32=aug
        )
        cand_d = np.concatenate([best_d, d32], axis=1)
        cand_rows = np.concatenate([best_rows, rows[idx]], axis=1)
        keep = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
        best_d = np.take_along_axis(cand_d, keep, axis=1)
        best_rows = np.take_along_axis(cand_rows, keep, axis=1)
    # Prepared.dist_sq recomputes the winners exactly from the data as given (``best_rows`` are rows of ``ref``).
    exact = Prepared(
        reference=ref,
        queries64=queries.astype(np.float64),
        reference_aug32=np.empty((0, ref.shape[1] + 1), dtype=np.float32),
        queries32=q32,
        centre=centre,
    )
    out = exact.dist_sq(best_rows)
    out.sort(axis=1)
    return out
