"""The approximate engines (FAISS IVF / HNSW) behind the search contract: k-means, inverted lists, list scans.

Private: :func:`lightning_repgap.approximate.approximate_gap` and :class:`ApproximateEngine` (chosen by
:func:`lightning_repgap.search.engine_for` for ``index="ivf"`` / ``"hnsw"``) are the ways in, and an exact
measurement never imports this module. The algorithm and the default parameters are described in
:mod:`lightning_repgap.approximate`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lightning_repgap._checks import _check_positive_int, _check_representations, _check_same_dim
from lightning_repgap._concentration_block import ConcentrationSubset
from lightning_repgap._exact import Tiles, knn32, merge_nearest, prefix_search
from lightning_repgap._imports import _FAISS_AVAILABLE
from lightning_repgap._ivf import TorchLists, assign_tiles, kmeans
from lightning_repgap._prepare import Prepared, centred32, centred_aug32, prepare, winner_distances
from lightning_repgap._threads import current_threads, thread_scope, torch_threads
from lightning_repgap.approximate import (
    INDEXES,
    MIN_PER_LIST,
    SCANS,
    ApproximateGap,
    BlockInfo,
    default_nlist,
)
from lightning_repgap.gap import check_sizes, geometric_sizes
from lightning_repgap.search import BankSearch, PrefixMinima, sample_accuracy

__all__ = ["ApproximateEngine", "run_approximate_gap"]

log = logging.getLogger(__name__)

# Bank rows gathered, centred and indexed per step: 32 MiB of float32 at D = 256.
_CHUNK = 32768
# Smallest exact prefix; the exact prefix is at least n / _EXACT_FRACTION rows.
_EXACT_MIN = 4096
_EXACT_FRACTION = 64
# IVF: first nprobe tried, largest nprobe as a fraction of nlist, k-means sample and iterations.
_NPROBE_START = 8
_NPROBE_MAX_FRACTION = 4
_TRAIN_PER_LIST = 64
# HNSW defaults.
_HNSW_M = 32
_HNSW_EF_CONSTRUCTION = 40
_EF_SEARCH_START = 64
_EF_SEARCH_MAX = 2048
# A query counts as found when its approximate distance is within this relative tolerance of the exact one.
_FOUND_RTOL = 1e-9


@dataclass(frozen=True)
class ApproximateEngine:
    """IVF or HNSW behind the search contract (see :func:`lightning_repgap.approximate.approximate_gap`).

    Its :class:`~lightning_repgap.search.BankSearch` carries the exact sample (for
    :func:`~lightning_repgap.search.sample_accuracy`) and the :class:`~lightning_repgap.approximate.ApproximateGap`
    as ``report``; the neighbour table comes from an **exact** top-``k`` search of the neighbour-table queries,
    streamed over the bank (``knn_backend``), so TwoNN / MLE do not depend on the index.
    """

    index: str = "ivf"
    knn_backend: str = "torch"
    scan: str = "torch"
    recall_sample: int = 1000
    target_recall: float = 0.95
    target_error: float = 0.005
    exact_max: int | None = None
    seed: int | None = 0
    nlist: int | None = None
    nprobe: int | None = None
    M: int | None = None
    ef_search: int | None = None

    def __post_init__(self) -> None:
        _check_options(self)

    @property
    def name(self) -> str:
        """The index, ``"ivf"`` or ``"hnsw"``."""
        return self.index

    @property
    def label(self) -> str:
        """The index (what ``GapCurve.backend`` reports)."""
        return self.index

    @property
    def uses_faiss(self) -> bool:
        """Always: FAISS holds the indexes."""
        return True

    def search(
        self,
        reference: np.ndarray,
        queries: np.ndarray,
        order: np.ndarray | None,
        sizes: np.ndarray,
        *,
        knn_queries: np.ndarray | None = None,
        n_neighbors: int = 0,
        concentration: ConcentrationSubset | None = None,
    ) -> BankSearch:
        """See :meth:`lightning_repgap.search.SearchEngine.search`; the concentration is left to the curve builder."""
        t0 = time.perf_counter()
        run = _search(reference, queries, order, sizes, self)
        knn_rows = None
        if knn_queries is not None:
            full = np.arange(int(sizes[-1])) if order is None else order
            knn_rows = _streamed_knn(reference, full, queries[knn_queries], run.centre, n_neighbors, self.knn_backend)
        return BankSearch(
            minima=run.minima,
            centre=run.centre,
            sq_dev_sum=run.bank.sq_dev_sum(),
            knn_rows=knn_rows,
            exact_sample=(run.sample, run.exact_sample),
            report=_report(run, self.index, sizes, time.perf_counter() - t0),
        )


def run_approximate_gap(
    reference: Any, queries: Any, *, sizes: Any, min_size: int, ratio: float, num_threads: int | None, **options: Any
) -> ApproximateGap:
    """:func:`lightning_repgap.approximate.approximate_gap` (validation, one thread scope, the search)."""
    t_start = time.perf_counter()
    engine = ApproximateEngine(**options)
    ref = _check_representations(reference, "reference")
    qs = _check_representations(queries, "queries", min_points=1)
    _check_same_dim(ref, qs, "reference", "queries")
    n_max = ref.shape[0]
    grid = check_sizes(
        geometric_sizes(n_max, min_size=min(min_size, n_max), ratio=ratio) if sizes is None else sizes, n_max
    )
    scope = thread_scope(num_threads, faiss=bool(_FAISS_AVAILABLE))
    if not _FAISS_AVAILABLE:
        raise ModuleNotFoundError("approximate_gap needs FAISS: `pip install faiss-cpu`.")
    order = np.random.default_rng(engine.seed).permutation(n_max)[: int(grid[-1])] if engine.seed is not None else None
    with scope:
        run = _search(ref, qs, order, grid, engine)
    return _report(run, engine.index, grid, time.perf_counter() - t_start)


@dataclass
class _Run:
    """Everything one approximate search produced."""

    minima: PrefixMinima
    exact_sample: np.ndarray
    sample: np.ndarray
    blocks: list[BlockInfo]
    exact_size: int
    centre: np.ndarray
    bank: _Bank
    threads: int


def _report(run: _Run, index: str, grid: np.ndarray, seconds: float) -> ApproximateGap:
    per_query = run.minima.dist_sq
    recall, rel_err = sample_accuracy(per_query[:, run.sample], run.exact_sample)
    result = ApproximateGap(
        sizes=grid,
        gaps=per_query.mean(axis=1),
        per_query=per_query,
        nearest_index=run.minima.rows[-1],
        scale=run.bank.scale(),
        index=index,
        exact_size=run.exact_size,
        blocks=tuple(run.blocks),
        recall_rows=run.sample,
        recall_per_size=recall,
        gap_rel_error_per_size=rel_err,
        seconds=seconds,
        exact_sample=run.exact_sample,
    )
    log.debug(
        "approximate gap index=%s threads=%d n=%d m=%d D=%d exact<=%d recall=%.4f rel_err=%.2e: %.3fs",
        index,
        run.threads,
        int(grid[-1]),
        per_query.shape[1],
        run.centre.shape[0],
        result.exact_size,
        result.recall,
        result.gap_rel_error,
        result.seconds,
    )
    return result


def _search(
    ref: np.ndarray, qs: np.ndarray, order: np.ndarray | None, grid: np.ndarray, opts: ApproximateEngine
) -> _Run:
    """The approximate prefix minima of ``qs`` against ``ref[order]`` (inside the caller's thread scope)."""
    if not _FAISS_AVAILABLE:
        raise ModuleNotFoundError("approximate search needs FAISS: `pip install faiss-cpu`.")
    n_max = ref.shape[0]
    m = qs.shape[0]
    n_used = int(grid[-1])
    aux = np.random.default_rng(None if opts.seed is None else [opts.seed, 1])
    exact_max = max(_EXACT_MIN, n_max // _EXACT_FRACTION) if opts.exact_max is None else opts.exact_max
    n_exact = int(np.searchsorted(grid, exact_max, side="right"))
    exact_size = int(grid[n_exact - 1]) if n_exact else 0
    # ``prepare`` on the head of the (shuffled) bank: the exact prefix plus, at least, enough random points to
    # centre on. The rest of the bank is never materialised as one float32 copy: each block is centred chunk by
    # chunk (on the same centre) into its index, which holds its own copy.
    head = max(exact_size, min(n_used, _EXACT_MIN))
    head_rows = np.arange(head) if order is None else order[:head]
    prep_head = prepare(ref, qs, rows=head_rows)  # bank position p is ref[head_rows[p]]; no gathered copy of ref
    sample = np.sort(aux.permutation(m)[: min(m, opts.recall_sample)])
    run = _Run(
        minima=PrefixMinima(np.empty((grid.size, m)), np.zeros((grid.size, m), dtype=np.int64)),
        exact_sample=np.empty((grid.size, sample.size)),
        sample=sample,
        blocks=[],
        exact_size=exact_size,
        centre=prep_head.centre,
        bank=_Bank(ref, order, prep_head.centre),
        threads=current_threads(),
    )
    if n_exact:
        run.bank.count_rows(prep_head.reference32[:exact_size])
        _exact_prefix(prep_head, head_rows, grid[:n_exact], run)
    prep = dataclasses.replace(prep_head, rows=None, reference_aug32=prep_head.reference_aug32[:0])
    del prep_head
    _approximate_blocks(prep, grid, n_exact, run, opts, aux)
    approx_sample = run.minima.dist_sq[:, sample]
    # The float32-selected exact winner can lose a float64 near-tie to the approximate one: the true minimum is
    # at most both, so the smaller of the two is the better exact value, and approx >= exact holds per query.
    run.exact_sample = np.minimum(run.exact_sample, approx_sample)
    assert np.all(approx_sample >= run.exact_sample)
    assert run.bank.count == n_used
    return run


def _exact_prefix(prep_head: Prepared, head_rows: np.ndarray, grid: np.ndarray, run: _Run) -> None:
    """Exact prefix minima for the sizes ``grid`` (one torch prefix search), into ``run``.

    ``prep_head`` holds the first bank positions (``head_rows`` are their rows in ``reference``).
    """
    t0 = time.perf_counter()
    stop = int(grid[-1])
    exact = dataclasses.replace(prep_head, reference_aug32=prep_head.reference_aug32[:stop])
    # A small search made of many small torch calls: one thread avoids a fork/join barrier per call, which costs
    # milliseconds when the cores are shared (see docs/performance.md).
    with torch_threads(1):
        winners = prefix_search(exact, grid, Tiles("torch"))[0]  # head positions
    minima = PrefixMinima(winner_distances(exact, winners), head_rows[winners]).running()
    n = grid.size
    run.minima.dist_sq[:n], run.minima.rows[:n] = minima.dist_sq, minima.rows
    run.exact_sample[:n] = minima.dist_sq[:, run.sample]
    run.blocks.append(BlockInfo(0, stop, "exact", {}, 1.0, 0.0, time.perf_counter() - t0))


def _approximate_blocks(
    prep: Prepared, grid: np.ndarray, n_exact: int, run: _Run, opts: ApproximateEngine, aux: np.random.Generator
) -> None:
    """Every block past the exact prefix gets its own index, searched once and merged into ``run``."""
    import faiss

    m = prep.queries32.shape[0]
    inf_sample = np.full(run.sample.size, np.inf)
    quantizer = None
    if opts.index == "ivf" and n_exact < grid.size:
        quantizer = _train_quantizer(run.bank, run.exact_size, grid, m, opts.nlist, opts.scan, aux)
    dist, rows, exact_sample = run.minima.dist_sq, run.minima.rows, run.exact_sample
    for s in range(n_exact, grid.size):
        start = int(grid[s - 1]) if s else 0
        stop = int(grid[s])
        prev_approx, prev_exact = (dist[s - 1, run.sample], exact_sample[s - 1]) if s else (inf_sample, inf_sample)
        prefix = _Prefix(prev_approx, prev_exact, opts.target_recall, opts.target_error)
        if quantizer is not None:
            res = _ivf_block(faiss, run.bank, prep, start, stop, run.sample, prefix, quantizer, opts, run.threads)
        else:
            res = _hnsw_block(faiss, run.bank, prep, start, stop, run.sample, prefix, opts.M, opts.ef_search)
        run.blocks.append(res.info)
        prev = (dist[s - 1], rows[s - 1]) if s else (np.full(m, np.inf), np.zeros(m, dtype=np.int64))
        dist[s], rows[s] = merge_nearest(prev, (res.dist_sq, res.rows))
        exact_sample[s] = res.exact_sample if s == 0 else np.minimum(exact_sample[s - 1], res.exact_sample)


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

    def sq_dev_sum(self) -> float:
        """``sum ||r - mean||^2`` of the rows counted so far (the centre need not be their mean)."""
        mean = self.sum / max(1, self.count)
        return max(0.0, self.sum_sq - self.count * float(mean @ mean))

    def scale(self) -> float:
        """``2 * trace Cov`` of the rows counted so far."""
        return 2.0 * self.sq_dev_sum() / max(1, self.count - 1)

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


def _check_options(opts: ApproximateEngine) -> None:
    """Validate an engine's options; a ``ValueError`` naming the problem."""
    if opts.index not in INDEXES:
        raise ValueError(f"`index` must be one of {INDEXES}, got {opts.index!r}.")
    params = ((opts.nlist, "nlist"), (opts.nprobe, "nprobe"), (opts.M, "M"), (opts.ef_search, "ef_search"))
    for value, name in params:
        if value is not None:
            _check_positive_int(value, name)
    if opts.index == "hnsw" and (opts.nlist is not None or opts.nprobe is not None):
        raise ValueError("`nlist` and `nprobe` are IVF parameters; with index='hnsw' set `M` and `ef_search`.")
    if opts.index == "ivf" and (opts.M is not None or opts.ef_search is not None):
        raise ValueError("`M` and `ef_search` are HNSW parameters; with index='ivf' set `nlist` and `nprobe`.")
    if opts.nlist is not None and opts.nprobe is not None and opts.nprobe > opts.nlist:
        raise ValueError(
            f"`nprobe`={opts.nprobe} exceeds `nlist`={opts.nlist}: a query cannot probe more lists than exist."
        )
    _check_number(opts.target_recall, "target_recall", "in (0, 1]", lambda v: 0 < v <= 1)
    _check_positive_int(opts.recall_sample, "recall_sample")
    _check_number(opts.target_error, "target_error", ">= 0", lambda v: v >= 0)
    if opts.scan not in SCANS:
        raise ValueError(f"`scan` must be one of {SCANS}, got {opts.scan!r}.")
    exact_max = opts.exact_max
    if exact_max is not None and (
        isinstance(exact_max, bool) or not isinstance(exact_max, int | np.integer) or exact_max < 0
    ):
        raise ValueError(f"`exact_max` must be an integer >= 0, got {exact_max!r}.")


def _check_number(value: Any, name: str, what: str, ok: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not ok(value):
        raise ValueError(f"`{name}` must be a number {what}, got {value!r}.")


class _ExactSample:
    """Running exact nearest neighbour of the sampled queries within one block, fed chunk by chunk."""

    def __init__(self, prep: Prepared, sample: np.ndarray) -> None:
        self.prep = prep
        self.sample = sample
        self.queries32 = np.ascontiguousarray(prep.queries32[sample])
        self.best = np.full(sample.size, np.inf, dtype=np.float32)
        self.rows = np.zeros(sample.size, dtype=np.int64)

    def add(self, chunk32: np.ndarray, rows: np.ndarray) -> None:
        d32, idx = knn32(chunk32, self.queries32, 1, Tiles("torch"))
        self.best, self.rows = merge_nearest((self.best, self.rows), (d32[:, 0], rows[idx[:, 0]]))

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
    lists = min(nlist or default_nlist(largest, m, scan=scan), max(1, n_approx // MIN_PER_LIST))
    train = exact_size + np.sort(rng.choice(n_approx, min(n_approx, _TRAIN_PER_LIST * lists), replace=False))
    return kmeans(bank.gather(train), lists, rng)


def _ivf_block(
    faiss: Any,
    bank: _Bank,
    prep: Prepared,
    start: int,
    stop: int,
    sample: np.ndarray,
    prefix: _Prefix,
    centroids: torch.Tensor,
    opts: ApproximateEngine,
    threads: int,
) -> _BlockResult:
    """Build an IVF-Flat index on bank positions ``[start, stop)``, calibrate ``nprobe``, search every query."""
    from faiss.contrib.ivf_tools import add_preassigned, search_preassigned

    t0 = time.perf_counter()
    nprobe, scan = opts.nprobe, opts.scan
    n_b = stop - start
    m, dim = prep.queries32.shape
    lists = centroids.shape[0]
    exact = _ExactSample(prep, sample)
    # Both scans fill the lists in list order (rows sorted by their list), so every list is written in one piece:
    # FAISS' inverted lists then grow once to their final size instead of doubling chunk by chunk (which left up
    # to twice the block's size allocated), and the torch scan gets contiguous lists.
    assign = np.empty(n_b, dtype=np.int64)
    for p0, chunk in bank.chunks(start, stop, count=False):
        assign[p0 - start : p0 - start + chunk.shape[0]] = assign_tiles(chunk, centroids, 1)[:, 0].numpy()
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
        scan_lists = TorchLists(lists32, bounds, positions, threads).search
    exact_d = exact.dist_sq()
    t_build = time.perf_counter() - t0

    t0 = time.perf_counter()
    max_probe = min(lists, nprobe) if nprobe else max(min(_NPROBE_START, lists), lists // _NPROBE_MAX_FRACTION)
    probes = assign_tiles(prep.queries32, centroids, max_probe).numpy()

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
) -> _BlockResult:
    """Build an HNSW-Flat graph on bank positions ``[start, stop)``, calibrate ``efSearch``, search every query."""
    t0 = time.perf_counter()
    m, dim = prep.queries32.shape
    links = m_links or _HNSW_M
    hnsw = faiss.IndexHNSWFlat(dim, links)
    hnsw.hnsw.efConstruction = _HNSW_EF_CONSTRUCTION
    exact = _ExactSample(prep, sample)
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


def _streamed_knn(
    ref: np.ndarray,
    order: np.ndarray,
    queries: np.ndarray,
    centre: np.ndarray,
    k: int,
    backend: str,
) -> np.ndarray:
    """Rows of ``ref`` ``(len(queries), k)``: the ``k`` (float32-)nearest of ``ref[order]`` to each query.

    The bank is centred and searched ``_CHUNK`` rows at a time and the running top-``k`` merged, so no bank-sized
    copy is made; the curve builder recomputes the winners' distances in float64 from the data as given.
    """
    q32 = centred32(queries, centre)
    best = (np.empty((queries.shape[0], 0), dtype=np.float32), np.empty((queries.shape[0], 0), dtype=np.int64))
    for p0 in range(0, order.size, _CHUNK):
        rows = order[p0 : p0 + _CHUNK]
        aug = centred_aug32(ref, centre, rows)
        d32, idx = knn32(aug[:, :-1], q32, min(k, rows.size), Tiles(backend), reference_aug32=aug)
        best = merge_nearest(best, (d32, rows[idx]), k)
    return best[1]
