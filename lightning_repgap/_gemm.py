"""The matrix product behind every score tile of the torch search on the CPU, on the faster of two BLAS libraries.

The exact search is a GEMM with a short inner dimension (``D + 1``, e.g. 257). torch's CPU wheels link Intel MKL,
numpy's wheels OpenBLAS, and their kernels differ at such shapes by tens of percent, in either direction depending
on the CPU (``docs/performance.md`` has measurements; ``benchmarks/run_all.py`` reports both). So the first search
big enough to care times one tile with each and keeps the faster for the process, unless the ``gemm`` argument of
the search (``"torch"``, ``"numpy"``, ``"auto"``) or, when that is ``"auto"``, ``REPGAP_CPU_GEMM`` says.

The reductions after each product (``amax``, ``topk``) stay in torch, on one thread while OpenBLAS owns the
cores (see :func:`lightning_repgap._threads.blas_threads`). OpenBLAS gets the search's thread count through
``threadpoolctl``; without it (or without a pthreads-based BLAS under numpy, whose threads could then not be set)
``"auto"`` keeps torch.

Both libraries compute the same float32 products up to rounding, so they pick the same neighbours except where
two candidates are within float32 rounding of each other; the distances reported are recomputed in float64 either
way. Pin ``gemm`` (or ``REPGAP_CPU_GEMM``) when bit-identical results across machines matter more than speed.

This module also holds the torch tile kernels of the exact search: one GEMM per (query chunk x bank block) tile,
reduced to a running best (top-1) or top-``k`` per query while the tile is in cache.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Literal, cast, get_args

import numpy as np
import torch

from lightning_repgap._concentration_block import TileBlock
from lightning_repgap._threads import GemmLibrary, blas_pools, blas_threads, current_threads

__all__ = [
    "GEMM_OPTIONS",
    "PROBE_MIN_WORK",
    "TILE",
    "GemmOption",
    "TileProduct",
    "check_gemm",
    "cpu_engine",
    "prefix_top1_torch",
    "search_torch",
]

log = logging.getLogger(__name__)

#: The ``gemm`` argument: which library computes the CPU score tiles (``"auto"``: the faster one, measured once).
GemmOption = Literal["auto", "torch", "numpy"]
GEMM_OPTIONS: tuple[str, ...] = get_args(GemmOption)
#: Below this many multiply-adds per search (16 full 2048 x 2048 tiles at D = 256) the choice is not worth a probe.
PROBE_MIN_WORK = 16 * 2048 * 2048 * 256
# numpy is chosen only when clearly faster: near-equal timings would otherwise flip the choice from run to run.
_MIN_SPEEDUP = 1.1
_chosen: dict[int, GemmLibrary] = {}
#: Side of the (query chunk x bank block) score tile of the torch search: 2048^2 float32 = 16 MiB.
TILE = 2048
# Width of the column groups in which the torch search locates each tile's best score (``_RunningTop1``).
_GROUP = 128


def check_gemm(gemm: str) -> GemmOption:
    """``gemm`` itself if it is one of :data:`GEMM_OPTIONS`, else a ``ValueError`` naming the choices.

    Example:
        >>> check_gemm("numpy")
        'numpy'

    """
    if gemm not in GEMM_OPTIONS:
        raise ValueError(f"`gemm` must be one of {GEMM_OPTIONS}, got {gemm!r}.")
    return cast(GemmOption, gemm)


def _env_engine() -> str:
    value = os.environ.get("REPGAP_CPU_GEMM", "auto").strip().lower() or "auto"
    if value not in GEMM_OPTIONS:
        raise ValueError(f"REPGAP_CPU_GEMM must be one of {GEMM_OPTIONS}, got {value!r}.")
    return value


def cpu_engine(inner_dim: int, work: int, device: torch.device, gemm: str = "auto") -> GemmLibrary:
    """The library that computes the score tiles of one search.

    Args:
        inner_dim: columns of the augmented operands (``D + 1``).
        work: multiply-adds of the search (``n * m * inner_dim``), to skip probing for small searches.
        device: where the operands live; anything but the CPU uses torch.
        gemm: ``"torch"`` or ``"numpy"`` to force a library; ``"auto"`` follows ``REPGAP_CPU_GEMM`` (default
            ``"auto"``: the faster one on this host, timed once per process and width).

    Returns:
        ``"torch"`` or ``"numpy"``.

    Example:
        >>> cpu_engine(257, 1000, torch.device("cpu"))  # too small to probe
        'torch'

    """
    requested: str = check_gemm(gemm)
    if requested == "auto":
        requested = _env_engine()
    if device.type != "cpu" or requested == "torch":
        return "torch"
    if requested == "numpy":
        return "numpy"
    if inner_dim in _chosen:
        return _chosen[inner_dim]
    # Cheap tests first: scanning the loaded libraries for a BLAS whose threads can be set takes milliseconds.
    if work < PROBE_MIN_WORK or blas_pools() is None:
        return "torch"
    _chosen[inner_dim] = _probe(inner_dim)
    return _chosen[inner_dim]


def _probe(inner_dim: int, size: int = 2048) -> GemmLibrary:
    """Time one ``size x size x inner_dim`` product with each library (best of 2 after a warm-up)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, inner_dim), dtype=np.float32)
    b = rng.standard_normal((size, inner_dim), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
    threads = current_threads()
    candidates: dict[GemmLibrary, Callable[[], object]] = {
        "torch": lambda: torch.mm(ta, tb.T, out=tout),
        "numpy": lambda: np.matmul(a, b.T, out=out),
    }
    seconds: dict[GemmLibrary, float] = {}
    for name, run in candidates.items():
        with blas_threads(name, threads):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                run()
                times.append(time.perf_counter() - t0)
        seconds[name] = min(times[1:])
    choice: GemmLibrary = "numpy" if seconds["torch"] > _MIN_SPEEDUP * seconds["numpy"] else "torch"
    log.info(
        "CPU score tiles (%dx%dx%d, %d threads): torch %.1f ms, numpy %.1f ms -> %s",
        size,
        size,
        inner_dim,
        threads,
        1e3 * seconds["torch"],
        1e3 * seconds["numpy"],
        choice,
    )
    return choice


class TileProduct:
    """``q_aug @ block.T`` for one query chunk against successive bank blocks, on the chosen library.

    With ``"numpy"`` the product is written into one reused buffer and returned as a torch view of it: each tile
    must be consumed before the next one is asked for (the search loops do).
    """

    def __init__(self, q_aug: torch.Tensor, engine: GemmLibrary, max_block: int) -> None:
        self.q_aug = q_aug
        self.engine = engine
        if engine == "numpy":
            self._q = q_aug.numpy()
            self._buffer = np.empty(q_aug.shape[0] * max_block, dtype=self._q.dtype)

    def __call__(self, block: torch.Tensor) -> torch.Tensor:
        if self.engine == "torch":
            return self.q_aug @ block.T
        out = self._buffer[: self._q.shape[0] * block.shape[0]].reshape(self._q.shape[0], block.shape[0])
        np.matmul(self._q, block.numpy().T, out=out)
        return torch.from_numpy(out)


class _RunningTop1:
    """Running best score and bank index of each query of a chunk, fed tile by tile.

    A row-wise ``max`` with indices over a whole tile costs about half the tile's GEMM on the CPU, while value-only
    reductions cost a few percent. So each tile is reduced to the best value of every ``_GROUP``-wide column group
    (``amax``), the best group is picked from those few values, and only the queries whose best improved look for
    the index, inside their winning group (``_GROUP`` scores, gathered from the tile while it is still in cache).
    In a bank of random order a query improves in about ``ln(tiles)`` tiles, so that last step is noise.
    """

    def __init__(self, rows: int, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.score = torch.full((rows,), -float("inf"), dtype=dtype, device=device)
        self.index = torch.zeros(rows, dtype=torch.int64, device=device)
        self._offsets = torch.arange(_GROUP, device=device)

    def merge(self, scores: torch.Tensor, offset: int) -> torch.Tensor:
        """Fold in one tile: ``scores[i, j]`` is query ``i`` against bank row ``offset + j``; returns its row maxima.

        The row maxima (exact, whatever the grouping) spare a neighbour table fed the same tile its own ``amax``.
        """
        value, start = _group_max(scores)
        rows = torch.nonzero(value > self.score).flatten()
        if rows.numel() == 0:
            return value
        # A last, narrower group is padded with its own last column: ``argmax`` returns the first maximum, so the
        # padding never wins over the column it repeats.
        cols = torch.clamp(start[rows, None] + self._offsets, max=scores.shape[1] - 1)
        pos = scores[rows[:, None], cols].argmax(dim=1)
        self.score[rows] = value[rows]
        self.index[rows] = start[rows] + pos + offset
        return value


class _RunningTopK:
    """Running top-``k`` scores (descending) and bank indices of a fixed set of queries, fed tile by tile."""

    def __init__(self, rows: int, k: int, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.k = k
        self.scores = torch.full((rows, k), -float("inf"), dtype=dtype, device=device)
        self.index = torch.zeros((rows, k), dtype=torch.int64, device=device)

    def merge(self, scores: torch.Tensor, offset: int) -> None:
        """Fold in one tile: ``scores[i, j]`` is query ``i`` against bank row ``offset + j``.

        Only the queries whose best score in the tile beats their current ``k``-th best are merged (a row-wise
        ``amax`` is cheap, ``topk`` is not). In a bank of random order a tile of ``w`` rows holds a new top-``k``
        member of the ``t``-th tile's query with probability about ``k / t``, so most queries skip most tiles.
        """
        hit = scores.amax(dim=1) > self.scores[:, -1]
        rows = torch.nonzero(hit).flatten()
        if rows.numel() == 0:
            return
        every = rows.numel() == hit.numel()
        self._fold(scores if every else scores[rows], rows, every, offset)

    def _fold(self, part: torch.Tensor, rows: torch.Tensor, every: bool, offset: int) -> None:
        """Merge ``part`` (the tile's lines of ``rows``, or of every row when ``every``) into the running top-k."""
        vals, ids = torch.topk(part, min(self.k, part.shape[1]), dim=1)
        old_s, old_i = (self.scores, self.index) if every else (self.scores[rows], self.index[rows])
        best_s, pos = torch.topk(torch.cat([old_s, vals], dim=1), self.k, dim=1)
        best_i = torch.gather(torch.cat([old_i, ids + offset], dim=1), 1, pos)
        if every:
            self.scores, self.index = best_s, best_i
        else:
            self.scores[rows], self.index[rows] = best_s, best_i


def _group_max(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the best score of a tile and the first column of the ``_GROUP``-wide group that holds it."""
    c, w = scores.shape
    full = w // _GROUP
    parts = []
    if full:
        parts.append(scores[:, : full * _GROUP].reshape(c, full, _GROUP).amax(dim=2))
    if w % _GROUP:
        parts.append(scores[:, full * _GROUP :].amax(dim=1, keepdim=True))
    value, group = (parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)).max(dim=1)
    return value, group * _GROUP


def _top1_tiles(product: TileProduct, ref_aug: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best score and index per query over the whole bank, tile by tile (see :class:`_RunningTop1`)."""
    q_aug = product.q_aug
    top = _RunningTop1(q_aug.shape[0], q_aug.device, q_aug.dtype)
    for j0 in range(0, ref_aug.shape[0], TILE):
        top.merge(product(ref_aug[j0 : j0 + TILE]), j0)
    return top.score[:, None], top.index[:, None]


def _topk_tiles(product: TileProduct, ref_aug: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` scores and indices per query, merging each tile into a running top-k."""
    q_aug = product.q_aug
    top = _RunningTopK(q_aug.shape[0], k, q_aug.device, q_aug.dtype)
    for j0 in range(0, ref_aug.shape[0], TILE):
        top.merge(product(ref_aug[j0 : j0 + TILE]), j0)
    return top.scores, top.index


def _augmented(q: torch.Tensor) -> torch.Tensor:
    """``[q, 1]``: the queries' side of the ``q.r - ||r||^2 / 2`` score."""
    return torch.cat([q, torch.ones((q.shape[0], 1), dtype=q.dtype, device=q.device)], dim=1)


def search_torch(
    reference_aug32: np.ndarray,
    queries32: np.ndarray,
    k: int,
    query_chunk: int | None,
    device: torch.device,
    gemm: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Blocked exact search as one GEMM per tile on ``device``.

    ``argmin_r ||q - r||^2 = argmax_r (q.r - ||r||^2 / 2)``, so appending a column of ones to the queries and
    ``-||r||^2 / 2`` to the reference turns each tile into a single matrix product followed by a max (or top-k):
    no separate pass to add norms. Tiles of ``TILE`` x ``TILE`` bound the score buffer (16 MiB).
    ``reference_aug32`` is the bank with that column already appended.

    Returns:
        ``(dist_sq32, index)``, both ``(m, k)``, ascending by distance.
    """
    ref_aug = torch.from_numpy(reference_aug32).to(device)
    qs = torch.from_numpy(queries32).to(device)
    m = qs.shape[0]
    q_sq = (qs * qs).sum(dim=1)
    chunk = query_chunk or TILE
    out_s = torch.empty((m, k), dtype=torch.float32)
    out_i = torch.empty((m, k), dtype=torch.int64)
    engine = cpu_engine(ref_aug.shape[1], ref_aug.shape[0] * m * ref_aug.shape[1], ref_aug.device, gemm)
    with blas_threads(engine):
        for i0 in range(0, m, chunk):
            q = qs[i0 : i0 + chunk]
            product = TileProduct(_augmented(q), engine, TILE)
            best_s, best_i = _top1_tiles(product, ref_aug) if k == 1 else _topk_tiles(product, ref_aug, k)
            out_s[i0 : i0 + q.shape[0]] = best_s.cpu()
            out_i[i0 : i0 + q.shape[0]] = best_i.cpu()
    return (q_sq[:, None].cpu() - 2.0 * out_s).numpy(), out_i.numpy()


def prefix_top1_torch(
    reference_aug: np.ndarray,
    queries: np.ndarray,
    sizes: np.ndarray,
    device: torch.device,
    *,
    knn_rows: np.ndarray | None = None,
    k: int = 0,
    gemm: str = "auto",
    block: TileBlock | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Nearest bank row among the first ``sizes[s]`` rows, for every ``s``, in one pass over the bank.

    Each ``TILE``-wide tile of the bank is one product, reduced one size block (column slice) at a time, so the
    running best (:class:`_RunningTop1`) at each boundary is that prefix's nearest row: the whole curve costs one
    search. ``reference_aug`` is the centred bank with its ``-||r||^2 / 2`` column; ``queries`` are centred, of the
    same dtype (float32, or float64 for re-ranking).

    With ``knn_rows``, those queries also get their ``k`` nearest rows of the whole bank (``sizes[-1]`` rows) from
    the same score tiles: the neighbour table for TwoNN/MLE then costs no GEMM of its own. With ``block``, the
    concentration's distances are copied out of the same tiles too (:class:`~lightning_repgap._concentration_block.
    TileBlock`).

    Returns:
        ``(winners, knn)``: int64 ``(len(sizes), m)`` bank rows, and ``(len(knn_rows), k)`` bank rows sorted by
        descending float32 score (``None`` without ``knn_rows``).
    """
    ref_aug = torch.from_numpy(reference_aug).to(device)
    qs = torch.from_numpy(queries).to(device)
    m = qs.shape[0]
    out = torch.empty((len(sizes), m), dtype=torch.int64)
    knn = None if knn_rows is None else np.empty((knn_rows.size, k), dtype=np.int64)
    bounds = [0, *(int(v) for v in sizes)]
    engine = cpu_engine(ref_aug.shape[1], bounds[-1] * m * ref_aug.shape[1], ref_aug.device, gemm)
    with blas_threads(engine):
        for i0 in range(0, m, TILE):
            q = qs[i0 : i0 + TILE]
            # The neighbour-table queries in this chunk: ``mine`` indexes ``knn_rows``, ``local`` the chunk's rows.
            top, mine = None, np.empty(0, dtype=np.int64)
            if knn_rows is not None:
                mine = np.flatnonzero((knn_rows >= i0) & (knn_rows < i0 + q.shape[0]))
                top = _ChunkTopK(knn_rows[mine] - i0, k, device, q.dtype) if mine.size else None
            best = _RunningTop1(q.shape[0], device, q.dtype)
            product = TileProduct(_augmented(q), engine, TILE)
            s = 0
            for j0 in range(0, bounds[-1], TILE):
                # One product per tile of the bank, whatever the sizes: the small first blocks (16, 32, ... rows)
                # share a tile instead of each re-reading the whole query chunk for a thin, slow GEMM. The tile is
                # then reduced one size block at a time (column slices in bank order), so the running best at
                # each boundary is still that prefix's nearest row.
                j1 = min(j0 + TILE, bounds[-1])
                scores = product(ref_aug[j0:j1])
                if block is not None:
                    block.take(i0, scores, j0)
                a = j0
                while a < j1:
                    b = min(j1, bounds[s + 1])
                    part = scores if b - a == scores.shape[1] else scores[:, a - j0 : b - j0]
                    row_max = best.merge(part, a)
                    if top is not None:
                        top.merge(part, a, row_max)
                    if b == bounds[s + 1]:
                        out[s, i0 : i0 + q.shape[0]] = best.index.cpu()
                        s += 1
                    a = b
            if top is not None and knn is not None:
                knn[mine] = top.index.cpu().numpy()
    return out.numpy(), knn


class _ChunkTopK(_RunningTopK):
    """:class:`_RunningTopK` of some rows (``local``) of a query chunk, fed the chunk's whole tiles."""

    def __init__(self, local: np.ndarray, k: int, device: torch.device, dtype: torch.dtype) -> None:
        super().__init__(local.size, k, device, dtype)
        self.local = torch.from_numpy(local).to(device)

    def merge(self, scores: torch.Tensor, offset: int, row_max: torch.Tensor | None = None) -> None:
        """Fold in the chunk's tile; ``row_max`` (the chunk's row maxima, if known) spares an ``amax`` of ``local``.

        Only the rows that improve are gathered from the tile (not all of ``local`` first): the same rows as
        :meth:`_RunningTopK.merge` selects, so the same result.
        """
        if row_max is None:
            super().merge(scores[self.local], offset)
            return
        hit = row_max[self.local] > self.scores[:, -1]
        rows = torch.nonzero(hit).flatten()
        if rows.numel() == 0:
            return
        every = rows.numel() == hit.numel()
        self._fold(scores[self.local if every else self.local[rows]], rows, every, offset)
