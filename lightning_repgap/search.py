"""Exact (and opt-in approximate) nearest-neighbour search between two sets of representations.

Everything that talks to FAISS lives here, so the rest of the package works on plain arrays. Distances are
**squared** Euclidean distances (``dist_sq``) unless a name says otherwise: that is what the representation gap
needs, and what FAISS' ``METRIC_L2`` returns.

Precision. FAISS (and the torch fallback) evaluate ``||q||^2 + ||r||^2 - 2 q.r`` in float32, which loses
precision when the data sit far from the origin. So both sets are first centred on the reference mean, the
neighbours are *selected* in float32, and the winners' distances are recomputed in float64 as ``||q - r||^2``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import torch

from lightning_repgap._checks import _check_positive_int, _check_representations, _check_same_dim
from lightning_repgap._gemm import TileProduct, cpu_engine, engine_threads
from lightning_repgap._imports import _FAISS_AVAILABLE

log = logging.getLogger(__name__)

Backend = Literal["auto", "faiss", "faiss-gpu", "torch"]
_BACKENDS = ("auto", "faiss", "faiss-gpu", "torch")

# Side of the (query chunk x bank block) score tile of the torch backend: 2048^2 float32 = 16 MiB.
_TORCH_TILE = 2048
# A nearest neighbour closer than this many float32 rounding errors is re-ranked in float64.
_FLOAT32_RANKING_MARGIN = 1000.0
# Width of the column groups in which the torch search locates each tile's best score (``_RunningTop1``).
_GROUP = 128
# FAISS allocates its own bounded blocks internally; chunking queries only bounds our output copies.
_FAISS_QUERY_CHUNK = 65536


def _env_num_threads() -> int | None:
    """``REPGAP_NUM_THREADS`` as a thread count (at least 1), or ``None`` when it is unset or empty."""
    env = os.environ.get("REPGAP_NUM_THREADS")
    if not env:
        return None
    try:
        return max(1, int(env))
    except ValueError as err:
        raise ValueError(f"REPGAP_NUM_THREADS must be an integer, got {env!r}.") from err


def default_num_threads() -> int:
    """Threads a search uses when the caller does not say.

    ``REPGAP_NUM_THREADS`` wins; otherwise torch's current intra-op thread count, which Lightning already divides
    among the processes of a DDP job on one machine (when ``OMP_NUM_THREADS`` is unset), so torch and FAISS
    never oversubscribe the cores together.

    Returns:
        The thread count, at least 1.

    Raises:
        ValueError: if ``REPGAP_NUM_THREADS`` is set but is not an integer.

    Example:
        >>> default_num_threads() >= 1
        True


    """
    env = _env_num_threads()
    return max(1, torch.get_num_threads()) if env is None else env


def _requested_num_threads(num_threads: int | None) -> int | None:
    """The thread count explicitly asked for: ``num_threads``, else ``REPGAP_NUM_THREADS``, else ``None``.

    ``None`` means nobody asked, so torch keeps whatever the process (or Lightning) configured.
    """
    if num_threads is not None:
        return _check_positive_int(num_threads, "num_threads")
    return _env_num_threads()


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with torch's intra-op thread count set to ``n``, restored on exit (also on an exception).

    ``None`` leaves torch's setting alone. Nesting-safe: an inner block restores the outer block's count. The
    count is process-wide in torch, so a block must not overlap with torch work in other Python threads that
    expects another count (the package never does that).
    """
    before = torch.get_num_threads()
    if n is None or n == before:
        # Nothing to change: ``set_num_threads`` may rebuild thread pools, so do not call it needlessly.
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _faiss_threads(faiss: Any, n: int) -> Iterator[None]:
    """Run the block with FAISS' OpenMP thread count set to ``n``, restored on exit (also on an exception).

    Restoring matters beyond FAISS: the ``faiss-cpu`` and ``torch`` wheels can end up sharing one OpenMP runtime
    (they do here), and then ``faiss.omp_set_num_threads`` also changes ``torch.get_num_threads()``; left in
    place it would silently re-size every later torch operation of the process.
    """
    before = faiss.omp_get_max_threads()
    if n == before:
        yield
        return
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _search_threads(num_threads: int | None) -> contextlib.AbstractContextManager[None]:
    """Context under which every torch part of a search runs with the requested thread count.

    ``num_threads`` (validated), else ``REPGAP_NUM_THREADS``; with neither, torch's setting is not touched. The
    previous count is restored on exit. FAISS gets the same count from :func:`search_prepared`, and the two never
    run at the same time, so together they use ``num_threads`` cores at most. The entry points (:func:`nearest`,
    :func:`prefix_nearest`, ``gap_curve``; ``approximate_gap`` with :func:`_torch_threads`) wrap their whole
    computation in it, so the float64 re-ranking and other torch work between searches runs under the same count.

    Args:
        num_threads: explicit thread count (``>= 1``), or ``None``.

    Returns:
        A context manager.

    Raises:
        ValueError: if ``num_threads`` is not an integer ``>= 1``, or ``REPGAP_NUM_THREADS`` is not an integer.

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with _search_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True

    """
    return _torch_threads(_requested_num_threads(num_threads))


def resolve_backend(backend: str = "auto") -> str:
    """Turn ``backend`` into a concrete backend name: ``"faiss"``, ``"faiss-gpu"`` or ``"torch"``.

    ``"auto"`` is FAISS on the GPU when FAISS sees one, else the tiled GEMM path (``"torch"``: torch tensors, with
    each CPU tile's product on torch's or numpy's BLAS, whichever is faster here). It has the one-pass prefix
    search and the fused neighbour table; ``faiss.knn`` (faiss-cpu wheel) ranged from 12 % of the float32 GEMM
    roofline on a Xeon whose CPU its bundled OpenBLAS did not recognise to 80 % on an AMD EPYC
    (``benchmarks/run_all.py`` measures both). FAISS stays available explicitly, and is what the approximate
    indexes build on.

    Args:
        backend: one of ``"auto"``, ``"faiss"``, ``"faiss-gpu"``, ``"torch"``.

    Returns:
        The backend that will run.

    Raises:
        ValueError: for an unknown name, or ``"faiss-gpu"`` without a GPU.
        ModuleNotFoundError: if a FAISS backend is requested but FAISS is not installed.

    Example:
        >>> resolve_backend("torch")
        'torch'

    """
    if backend not in _BACKENDS:
        raise ValueError(f"`backend` must be one of {_BACKENDS}, got {backend!r}.")
    if backend == "torch" or (backend == "auto" and not _FAISS_AVAILABLE):
        return "torch"
    if not _FAISS_AVAILABLE:
        raise ModuleNotFoundError(f"backend={backend!r} needs FAISS: `pip install faiss-cpu` (or faiss-gpu).")
    import faiss

    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if backend == "faiss-gpu" and gpus == 0:
        raise ValueError("backend='faiss-gpu' but FAISS sees no GPU (is faiss-gpu installed and CUDA visible?).")
    if backend == "auto":
        return "faiss-gpu" if gpus > 0 else "torch"
    return backend


@dataclass(frozen=True)
class Prepared:
    r"""Both sets ready for the search: centred float32 copies, plus what exact float64 distances need.

    The centred bank is stored once, *augmented* with a last column :math:`-\lVert r \rVert^2 / 2` (computed in
    float64): the torch backend's GEMM tiles read it as is, so the search holds no second bank-sized copy, and
    :attr:`reference32` is a zero-copy view of its first ``D`` columns.

    The bank is kept as given (float32 or float64) rather than as a float64 copy: exact distances are only ever
    needed for a few winners per query, so their rows are gathered on demand. ``queries64`` are the queries as
    given, in float64, so ``q - r`` is exact after upcasting ``r`` (no centring needed for the difference).

    Example:
        >>> import numpy as np
        >>> prep = prepare(np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([[1.0, 1.0]]))
        >>> prep.reference32.tolist(), prep.dist_sq(np.array([[1]])).tolist()
        ([[-1.0, 0.0], [1.0, 0.0]], [[2.0]])


    """

    reference: np.ndarray
    queries64: np.ndarray
    reference_aug32: np.ndarray
    queries32: np.ndarray
    centre: np.ndarray
    rows: np.ndarray | None = None  # bank position -> row of ``reference`` (None: the identity)

    def bank_rows(self, index: np.ndarray) -> np.ndarray:
        """Rows of ``reference`` (as given, float32 or float64) at bank positions ``index``."""
        return self.reference[index if self.rows is None else self.rows[index]]

    @cached_property
    def reference_sq_sum(self) -> float:
        """``sum_i ||r_i||^2`` over the centred float32 bank, accumulated in float64; computed once, on first use.

        Not read off the ``-||r||^2 / 2`` column: those per-row float32 sums are good for ranking but would cost
        ``gap_norm`` about 1e-8 of relative precision.
        """
        return float(np.einsum("ij,ij->", self.reference32, self.reference32, dtype=np.float64))

    @property
    def reference32(self) -> np.ndarray:
        """``(n, D)`` centred float32 bank: a view of the first ``D`` columns of :attr:`reference_aug32`."""
        return self.reference_aug32[:, :-1]

    def dist_sq(self, index: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Exact float64 ``||q_j - r_index[j, l]||^2`` for queries ``rows`` (default all), computed directly.

        Args:
            index: ``(len(rows), k)`` bank row indices.
            rows: query rows the lines of ``index`` belong to.

        Returns:
            float64 array shaped like ``index``.

        """
        queries = self.queries64 if rows is None else self.queries64[rows]
        out = np.empty(index.shape, dtype=np.float64)
        for col in range(index.shape[1]):
            diff = np.subtract(queries, self.bank_rows(index[:, col]), dtype=np.float64)
            out[:, col] = np.einsum("ij,ij->i", diff, diff)
        return out


# Rows centred per step in ``prepare``: bounds the float64 temporary to 32 MiB for D = 256 (plus the gathered chunk).
_CENTRE_CHUNK = 16384


def _subtrahend(x: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The centre to subtract from ``x``: in float32 when that gives the same float32 result as float64 would.

    For float16/float32 data and a centre that float32 holds exactly, ``x - centre`` is exact in float64 and then
    rounded once, which is precisely what a float32 subtraction does, without float64 buffers (centring a
    1e6 x 256 float32 bank: 0.44 s instead of 0.67 s on the reference host).
    """
    if x.dtype == np.float64:
        return centre
    centre32 = centre.astype(np.float32)
    return centre32 if np.array_equal(centre32, centre) else centre


def _centred32(x: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """``(x - centre)`` as C-contiguous float32, chunk by chunk, rounded once (precision far from 0)."""
    out = np.empty(x.shape, dtype=np.float32)
    c = _subtrahend(x, centre)
    for i0 in range(0, x.shape[0], _CENTRE_CHUNK):
        np.subtract(x[i0 : i0 + _CENTRE_CHUNK], c, out=out[i0 : i0 + _CENTRE_CHUNK], casting="unsafe")
    return out


def _centred_aug32(x: np.ndarray, centre: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """``[x - centre, -||x - centre||^2 / 2]`` as one C-contiguous float32 ``(n, D + 1)`` array, built in chunks.

    The difference is rounded to float32 once (as in :func:`_centred32`); the norm column is summed from
    those float32 values, like the GEMM scores it is added to. With ``rows``, the result holds ``x[rows]`` in that
    order, gathered chunk by chunk: no reordered copy of the bank is ever materialised.
    """
    n, dim = (x.shape[0] if rows is None else rows.size), x.shape[1]
    out = np.empty((n, dim + 1), dtype=np.float32)
    c = _subtrahend(x, centre)
    for i0 in range(0, n, _CENTRE_CHUNK):
        chunk = x[i0 : i0 + _CENTRE_CHUNK] if rows is None else x[rows[i0 : i0 + _CENTRE_CHUNK]]
        part = out[i0 : i0 + chunk.shape[0]]
        np.subtract(chunk, c, out=part[:, :dim], casting="unsafe")
        part[:, dim] = np.einsum("ij,ij->i", part[:, :dim], part[:, :dim])
        part[:, dim] *= -0.5
    return out


def _with_norm_column(reference32: np.ndarray) -> np.ndarray:
    """``[r, -||r||^2 / 2]`` for a centred float32 bank that is not already augmented (a copy)."""
    out = np.empty((reference32.shape[0], reference32.shape[1] + 1), dtype=np.float32)
    out[:, :-1] = reference32
    out[:, -1] = -0.5 * np.einsum("ij,ij->i", reference32, reference32, dtype=np.float64)
    return out


def _is_permutation(rows: np.ndarray, n: int) -> bool:
    """Whether ``rows`` lists each of ``range(n)`` exactly once."""
    if rows.size != n:
        return False
    seen = np.zeros(n, dtype=bool)
    seen[rows] = True
    return bool(seen.all())


def prepare(reference: np.ndarray, queries: np.ndarray, rows: np.ndarray | None = None) -> Prepared:
    """Centre both sets on the bank mean (computed in float64) and make the float32 copies the search uses.

    For a float16/float32 bank the centre is that mean rounded to float32: a translation, so no distance changes,
    and both sets are then centred in float32 with the result float64 arithmetic would round to.

    Args:
        reference: ``(N, D)`` bank as given.
        queries: ``(m, D)`` queries.
        rows: use ``reference[rows]``, in that order, as the bank (e.g. a random order, or only a prefix of it)
            without ever materialising that reordered copy; default the whole of ``reference`` as given.

    Returns:
        A :class:`Prepared`.

    Example:
        >>> import numpy as np
        >>> prepare(np.array([[1e4, 1.0], [1e4, 3.0]]), np.array([[1e4, 2.0]])).queries32.tolist()
        [[0.0, 0.0]]


    """
    if rows is None or _is_permutation(rows, reference.shape[0]):
        # A reordering of every row has the same mean: no gather needed.
        centre = reference.mean(axis=0, dtype=np.float64)
    else:
        total = np.zeros(reference.shape[1], dtype=np.float64)
        for i0 in range(0, rows.size, _CENTRE_CHUNK):
            total += reference[rows[i0 : i0 + _CENTRE_CHUNK]].sum(axis=0, dtype=np.float64)
        centre = total / max(1, rows.size)
    if reference.dtype != np.float64:
        # Rounding the centre to float32 is a translation (distances unchanged) that lets float32 data be centred
        # in float32, with the same result as in float64 (see ``_subtrahend``).
        centre = centre.astype(np.float32).astype(np.float64)
    return Prepared(
        reference=reference,
        queries64=queries.astype(np.float64),
        reference_aug32=_centred_aug32(reference, centre, rows),
        queries32=_centred32(queries, centre),
        centre=centre,
        rows=rows,
    )


def _search_faiss(
    reference32: np.ndarray, queries32: np.ndarray, k: int, query_chunk: int, gpu: bool
) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    m = queries32.shape[0]
    # FAISS needs C-contiguous rows; ``Prepared.reference32`` is a strided view of the augmented bank (a copy here,
    # the FAISS backend's price: bank memory x 2).
    reference32 = np.ascontiguousarray(reference32)
    dist = np.empty((m, k), dtype=np.float32)
    idx = np.empty((m, k), dtype=np.int64)
    res = faiss.StandardGpuResources() if gpu else None
    for i0 in range(0, m, query_chunk):
        i1 = min(m, i0 + query_chunk)
        if res is not None:
            dist[i0:i1], idx[i0:i1] = faiss.knn_gpu(res, queries32[i0:i1], reference32, k)
        else:
            dist[i0:i1], idx[i0:i1] = faiss.knn(queries32[i0:i1], reference32, k)
    return dist, idx


def _search_torch(
    reference_aug32: np.ndarray, queries32: np.ndarray, k: int, query_chunk: int | None, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Blocked exact search as one GEMM per tile on ``device``.

    ``argmin_r ||q - r||^2 = argmax_r (q.r - ||r||^2 / 2)``, so appending a column of ones to the queries and
    ``-||r||^2 / 2`` to the reference turns each tile into a single matrix product followed by a max (or top-k):
    no separate pass to add norms. Tiles of ``_TORCH_TILE`` x ``_TORCH_TILE`` bound the score buffer (16 MiB).
    ``reference_aug32`` is the bank with that column already appended (:attr:`Prepared.reference_aug32`).
    """
    ref_aug = torch.from_numpy(reference_aug32).to(device)
    qs = torch.from_numpy(queries32).to(device)
    m = qs.shape[0]
    q_sq = (qs * qs).sum(dim=1)
    chunk = query_chunk or _TORCH_TILE
    out_s = torch.empty((m, k), dtype=torch.float32)
    out_i = torch.empty((m, k), dtype=torch.int64)
    engine = cpu_engine(ref_aug.shape[1], ref_aug.shape[0] * m * ref_aug.shape[1], ref_aug.device)
    with engine_threads(engine):
        for i0 in range(0, m, chunk):
            q = qs[i0 : i0 + chunk]
            q_aug = torch.cat([q, torch.ones((q.shape[0], 1), dtype=q.dtype, device=device)], dim=1)
            product = TileProduct(q_aug, engine, _TORCH_TILE)
            best_s, best_i = _top1_tiles(product, ref_aug) if k == 1 else _topk_tiles(product, ref_aug, k)
            out_s[i0 : i0 + q.shape[0]] = best_s.cpu()
            out_i[i0 : i0 + q.shape[0]] = best_i.cpu()
    return (q_sq[:, None].cpu() - 2.0 * out_s).numpy(), out_i.numpy()


def _top1_tiles(product: TileProduct, ref_aug: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best score and index per query over the whole bank, tile by tile (see :class:`_RunningTop1`)."""
    q_aug = product.q_aug
    top = _RunningTop1(q_aug.shape[0], q_aug.device, q_aug.dtype)
    for j0 in range(0, ref_aug.shape[0], _TORCH_TILE):
        top.merge(product(ref_aug[j0 : j0 + _TORCH_TILE]), j0)
    return top.score[:, None], top.index[:, None]


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

    def merge(self, scores: torch.Tensor, offset: int) -> None:
        """Fold in one tile: ``scores[i, j]`` is query ``i`` against bank row ``offset + j``."""
        value, start = _group_max(scores)
        rows = torch.nonzero(value > self.score).flatten()
        if rows.numel() == 0:
            return
        # A last, narrower group is padded with its own last column: ``argmax`` returns the first maximum, so the
        # padding never wins over the column it repeats.
        cols = torch.clamp(start[rows, None] + self._offsets, max=scores.shape[1] - 1)
        pos = scores[rows[:, None], cols].argmax(dim=1)
        self.score[rows] = value[rows]
        self.index[rows] = start[rows] + pos + offset


def _prefix_top1_torch(
    reference_aug: np.ndarray,
    queries: np.ndarray,
    sizes: np.ndarray,
    query_chunk: int | None,
    device: torch.device,
    knn_rows: np.ndarray | None = None,
    k: int = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Nearest bank row among the first ``sizes[s]`` rows, for every ``s``, in one pass over the bank.

    Tiles never straddle a size boundary, so the running best (:class:`_RunningTop1`) at each boundary is that
    prefix's nearest row: the whole curve costs one search. ``reference_aug`` is the centred bank with its
    ``-||r||^2 / 2`` column; ``queries`` are centred, of the same dtype (float32, or float64 for re-ranking).

    With ``knn_rows``, those queries also get their ``k`` nearest rows of the whole bank (``sizes[-1]`` rows) from
    the same score tiles: the neighbour table for TwoNN/MLE then costs no GEMM of its own.

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
    chunk = query_chunk or _TORCH_TILE
    engine = cpu_engine(ref_aug.shape[1], bounds[-1] * m * ref_aug.shape[1], ref_aug.device)
    with engine_threads(engine):
        for i0 in range(0, m, chunk):
            q = qs[i0 : i0 + chunk]
            c = q.shape[0]
            q_aug = torch.cat([q, torch.ones((c, 1), dtype=q.dtype, device=device)], dim=1)
            product = TileProduct(q_aug, engine, _TORCH_TILE)
            best = _RunningTop1(c, device, q.dtype)
            # The neighbour-table queries in this chunk: ``mine`` indexes ``knn_rows``, ``local`` the chunk's rows.
            mine, local, top = np.empty(0, dtype=np.int64), None, None
            if knn_rows is not None:
                mine = np.flatnonzero((knn_rows >= i0) & (knn_rows < i0 + c))
                if mine.size:
                    local = torch.from_numpy(knn_rows[mine] - i0).to(device)
                    top = _RunningTopK(mine.size, k, device, q.dtype)
            for s in range(len(sizes)):
                for j0 in range(bounds[s], bounds[s + 1], _TORCH_TILE):
                    scores = product(ref_aug[j0 : min(j0 + _TORCH_TILE, bounds[s + 1])])
                    best.merge(scores, j0)
                    if top is not None and local is not None:
                        top.merge(scores[local], j0)
                out[s, i0 : i0 + c] = best.index.cpu()
            if top is not None and knn is not None:
                knn[mine] = top.index.cpu().numpy()
    return out.numpy(), knn


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


def _prefix_top1_blocks(
    reference32: np.ndarray, queries32: np.ndarray, sizes: np.ndarray, **search_kwargs: Any
) -> np.ndarray:
    """:func:`prefix_nearest` for backends without a native version: one ``k = 1`` search per block."""
    m = queries32.shape[0]
    out = np.empty((len(sizes), m), dtype=np.int64)
    best = np.full(m, np.inf, dtype=np.float32)
    found = np.zeros(m, dtype=np.int64)
    start = 0
    for s, stop in enumerate(sizes):
        d32, idx = search_prepared(reference32[start:stop], queries32, 1, **search_kwargs)
        better = d32[:, 0] < best
        best = np.where(better, d32[:, 0], best)
        found = np.where(better, idx[:, 0] + start, found)
        out[s] = found
        start = int(stop)
    return out


def prefix_nearest(
    prepared: Prepared,
    sizes: np.ndarray,
    *,
    backend: str,
    num_threads: int | None = None,
    device: torch.device | None = None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """For every bank size ``sizes[s]``, the (float32-)nearest of the first ``sizes[s]`` bank rows to each query.

    The cost is one ``k = 1`` search of all queries against ``sizes[-1]`` bank rows, whatever the number of sizes.

    Args:
        prepared: output of :func:`prepare`.
        sizes: increasing bank sizes.
        backend: a resolved backend name.
        num_threads: threads for the search (torch and FAISS); default :func:`default_num_threads`.
        device: device of the torch backend.
        rows: rank only these queries, in **float64** (torch backend, on the CPU): for neighbours so close that
            float32 cannot order them (see :func:`needs_float64_ranking`).

    Returns:
        int64 ``(len(sizes), m)`` bank row indices (``(len(sizes), len(rows))`` with ``rows``).

    Example:
        >>> import numpy as np
        >>> prep = prepare(np.array([[5.0], [3.0], [1.0], [0.0]]), np.array([[0.2]]))
        >>> prefix_nearest(prep, np.array([1, 2, 4]), backend="torch").ravel().tolist()
        [0, 1, 3]


    """
    return _prefix_search(prepared, sizes, backend=backend, num_threads=num_threads, device=device, rows=rows)[0]


def prefix_nearest_and_knn(
    prepared: Prepared,
    sizes: np.ndarray,
    knn_rows: np.ndarray,
    n_neighbors: int,
    *,
    backend: str,
    num_threads: int | None = None,
    device: torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`prefix_nearest`, plus the ``n_neighbors`` nearest bank rows of the queries ``knn_rows``.

    On the torch backend both come from one pass over the bank: the neighbour table reads the score tiles the
    prefix search computes anyway, so it adds no GEMM. Other backends run a separate top-``k`` search.

    Args:
        prepared: output of :func:`prepare`.
        sizes: increasing bank sizes; the neighbours are searched among all ``sizes[-1]`` rows.
        knn_rows: distinct query rows that need neighbours.
        n_neighbors: neighbours per query in ``knn_rows`` (at most ``sizes[-1]``).
        backend: a resolved backend name.
        num_threads: threads for the search (torch and FAISS); default :func:`default_num_threads`.
        device: device of the torch backend.

    Returns:
        ``(winners, knn)``: as :func:`prefix_nearest`, and int64 ``(len(knn_rows), n_neighbors)`` bank rows in
        float32 order (recompute their distances with :meth:`Prepared.dist_sq` before using them).

    Example:
        >>> import numpy as np
        >>> prep = prepare(np.array([[5.0], [3.0], [1.0], [0.0]]), np.array([[0.2], [4.4]]))
        >>> winners, knn = prefix_nearest_and_knn(prep, np.array([2, 4]), np.array([1]), 2, backend="torch")
        >>> winners.tolist(), knn.tolist()
        ([[1, 0], [3, 0]], [[0, 1]])


    """
    return _prefix_search(  # type: ignore[return-value]  # knn is an array whenever knn_rows is given
        prepared,
        sizes,
        backend=backend,
        num_threads=num_threads,
        device=device,
        knn_rows=np.asarray(knn_rows, dtype=np.int64),
        k=n_neighbors,
    )


def _prefix_search(
    prepared: Prepared,
    sizes: np.ndarray,
    *,
    backend: str,
    num_threads: int | None,
    device: torch.device | None,
    rows: np.ndarray | None = None,
    knn_rows: np.ndarray | None = None,
    k: int = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The one implementation behind :func:`prefix_nearest` and :func:`prefix_nearest_and_knn`."""
    t0 = time.perf_counter()
    knn = None
    with _search_threads(num_threads):
        if rows is not None:
            # Bank centred in float64 chunk by chunk is a full float64 copy: only paid when float32 is not enough.
            centred = prepared.bank_rows(np.arange(prepared.reference_aug32.shape[0])) - prepared.centre
            aug = np.concatenate([centred, -0.5 * np.einsum("ij,ij->i", centred, centred)[:, None]], axis=1)
            del centred
            out, _ = _prefix_top1_torch(
                aug,
                prepared.queries64[rows] - prepared.centre,
                sizes,
                None,
                torch.device("cpu"),
            )
        elif backend == "torch":
            cpu = torch.device("cpu")
            out, knn = _prefix_top1_torch(
                prepared.reference_aug32, prepared.queries32, sizes, None, device or cpu, knn_rows=knn_rows, k=k
            )
        else:
            out = _prefix_top1_blocks(
                prepared.reference32, prepared.queries32, sizes, backend=backend, num_threads=num_threads, device=device
            )
            if knn_rows is not None:
                n = int(sizes[-1])
                _, knn = search_prepared(
                    prepared.reference32[:n],
                    prepared.queries32[knn_rows],
                    k,
                    backend=backend,
                    num_threads=num_threads,
                    device=device,
                )
    log.debug(
        "prefix search backend=%s n=%d m=%d D=%d sizes=%d knn=%d x %d: %.4fs",
        backend,
        int(sizes[-1]),
        prepared.queries32.shape[0],
        prepared.queries32.shape[1],
        len(sizes),
        0 if knn_rows is None else knn_rows.size,
        k,
        time.perf_counter() - t0,
    )
    return out, knn


def needs_float64_ranking(prepared: Prepared, nearest_dist_sq: np.ndarray) -> np.ndarray:
    """Queries whose nearest neighbour is too close for a float32 search to rank candidates reliably.

    The float32 score ``q.r - ||r||^2 / 2`` carries an absolute error of a few ``eps32 * (||q||^2 + ||r||^2)``; once
    the squared distance to the nearest neighbour is within a small multiple of that (very low intrinsic
    dimension with large banks, or collapsed representations), a float32 search may return a slightly farther
    point. Exact duplicates (distance 0) are found either way and are not flagged.

    Args:
        prepared: output of :func:`prepare`.
        nearest_dist_sq: ``(m,)`` exact squared distance of each query to the float32 winner.

    Returns:
        Indices of the queries to re-rank in float64.

    Example:
        >>> import numpy as np
        >>> prep = prepare(np.array([[0.0], [1.0]]), np.array([[1e-9], [0.5]]))
        >>> needs_float64_ranking(prep, np.array([1e-18, 0.25])).tolist()
        [0]


    """
    q_sq = np.einsum("ij,ij->i", prepared.queries32, prepared.queries32, dtype=np.float64)
    r_sq = prepared.reference_sq_sum / max(1, prepared.reference_aug32.shape[0])
    tolerance = _FLOAT32_RANKING_MARGIN * np.finfo(np.float32).eps * (q_sq + r_sq)
    return np.flatnonzero((nearest_dist_sq > 0) & (nearest_dist_sq < tolerance))


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
        part = scores if every else scores[rows]
        vals, ids = torch.topk(part, min(self.k, part.shape[1]), dim=1)
        old_s, old_i = (self.scores, self.index) if every else (self.scores[rows], self.index[rows])
        best_s, pos = torch.topk(torch.cat([old_s, vals], dim=1), self.k, dim=1)
        best_i = torch.gather(torch.cat([old_i, ids + offset], dim=1), 1, pos)
        if every:
            self.scores, self.index = best_s, best_i
        else:
            self.scores[rows], self.index[rows] = best_s, best_i


def _topk_tiles(product: TileProduct, ref_aug: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` scores and indices per query, merging each tile into a running top-k."""
    q_aug = product.q_aug
    top = _RunningTopK(q_aug.shape[0], k, q_aug.device, q_aug.dtype)
    for j0 in range(0, ref_aug.shape[0], _TORCH_TILE):
        top.merge(product(ref_aug[j0 : j0 + _TORCH_TILE]), j0)
    return top.scores, top.index


def search_prepared(
    reference32: np.ndarray,
    queries32: np.ndarray,
    k: int,
    *,
    backend: str,
    query_chunk_size: int | None = None,
    num_threads: int | None = None,
    device: torch.device | None = None,
    reference_aug32: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest reference rows of each query, on already centred float32 data.

    This is the single entry point to the backends; :func:`nearest` and the gap curve both go through it.

    Args:
        reference32: ``(n, D)`` centred float32 bank (:attr:`Prepared.reference32`).
        queries32: ``(m, D)`` centred float32 queries.
        k: neighbours per query.
        backend: a resolved backend name (see :func:`resolve_backend`).
        query_chunk_size: queries searched at once (default: 65536 for FAISS, 2048 for torch).
        num_threads: threads for the search: FAISS runs under ``faiss.omp_set_num_threads``, torch under
            ``torch.set_num_threads``, both restored afterwards. Default ``REPGAP_NUM_THREADS``, else torch's
            current count (which torch then keeps untouched).
        device: device of the torch backend.
        reference_aug32: the same bank with its ``-||r||^2 / 2`` column (:attr:`Prepared.reference_aug32`) for the
            torch backend, which otherwise builds that ``(n, D + 1)`` copy itself.

    Returns:
        ``(dist_sq32, index)``: float32 ``(m, k)`` squared distances as the backend computed them (good for
        ranking, not for reporting) and int64 ``(m, k)`` indices, both ascending by distance.

    Example:
        >>> import numpy as np
        >>> prep = prepare(np.array([[0.0], [1.0], [5.0]]), np.array([[0.9], [4.0]]))
        >>> search_prepared(prep.reference32, prep.queries32, 1, backend="torch")[1].ravel().tolist()
        [1, 2]


    """
    t0 = time.perf_counter()
    requested = _requested_num_threads(num_threads)
    threads = max(1, torch.get_num_threads()) if requested is None else requested
    if backend in ("faiss", "faiss-gpu"):
        import faiss

        # FAISS' OpenMP setting need not be torch's (separate runtimes), so it always gets the count explicitly.
        with _faiss_threads(faiss, threads):
            result = _search_faiss(
                reference32, queries32, k, query_chunk_size or _FAISS_QUERY_CHUNK, gpu=backend == "faiss-gpu"
            )
    elif backend == "torch":
        with _torch_threads(requested):
            aug = _with_norm_column(reference32) if reference_aug32 is None else reference_aug32
            result = _search_torch(aug, queries32, k, query_chunk_size, device or torch.device("cpu"))
    else:  # pragma: no cover - resolve_backend guards this
        raise ValueError(f"unresolved backend {backend!r}")
    log.debug(
        "knn backend=%s threads=%d n=%d m=%d D=%d k=%d: %.4fs",
        backend,
        threads,
        reference32.shape[0],
        queries32.shape[0],
        reference32.shape[1],
        k,
        time.perf_counter() - t0,
    )
    return result


def nearest(
    reference: Any,
    queries: Any,
    k: int = 1,
    *,
    backend: Backend = "auto",
    exclude_self: bool = False,
    query_chunk_size: int | None = None,
    num_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest reference points of every query, by squared Euclidean distance.

    Args:
        reference: ``(n, D)`` array or tensor (any float dtype, any device).
        queries: ``(m, D)`` array or tensor, same ``D``.
        k: neighbours per query, ``1 <= k <= n`` (``k <= n - 1`` with ``exclude_self``).
        backend: ``"auto"`` (FAISS on the GPU if it sees one, else torch; see :func:`resolve_backend`),
            ``"faiss"``, ``"faiss-gpu"`` or ``"torch"`` (tiled matmul + max/top-k on the queries' device).
        exclude_self: ``queries`` is the reference set itself (same rows, same order); drop each point's own
            match **by index**, so exact duplicates still count as neighbours at distance 0.
        query_chunk_size: queries searched at once (default: 65536 for FAISS, 2048 for torch).
        num_threads: threads for the search (torch and FAISS); default ``REPGAP_NUM_THREADS``, else torch's
            current intra-op count (see :func:`default_num_threads`).

    Returns:
        ``(dist_sq, index)``: float64 ``(m, k)`` squared distances recomputed exactly, ascending per row, and
        int64 ``(m, k)`` row indices into ``reference``.

    Raises:
        ValueError: on non-2-D, non-finite or mismatched inputs, ``k`` out of range, or ``num_threads < 1``.
        TypeError: on non-floating inputs.

    Example:
        >>> import numpy as np
        >>> ref = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
        >>> dist_sq, idx = nearest(ref, np.array([[0.9, 0.0]]), k=2, backend="torch")
        >>> idx.tolist(), np.round(dist_sq, 6).tolist()
        ([[1, 0]], [[0.01, 0.81]])

    """
    device = queries.device if isinstance(queries, torch.Tensor) else torch.device("cpu")
    ref = _check_representations(reference, "reference", min_points=1)
    qs = _check_representations(queries, "queries", min_points=1)
    _check_same_dim(ref, qs, "reference", "queries")
    k = _check_positive_int(k, "k")
    if exclude_self and ref.shape[0] != qs.shape[0]:
        raise ValueError(
            f"`exclude_self=True` needs `queries` to be `reference` itself, got {qs.shape[0]} and {ref.shape[0]} rows."
        )
    available = ref.shape[0] - int(exclude_self)
    if k > available:
        raise ValueError(f"`k`={k} exceeds the {available} reference points available to each query.")
    threads = _search_threads(num_threads)  # validates num_threads before the inputs are copied
    resolved = resolve_backend(backend)
    prep = prepare(ref, qs)
    kk = k + int(exclude_self)
    with threads:
        _, idx = search_prepared(
            prep.reference32,
            prep.queries32,
            kk,
            backend=resolved,
            query_chunk_size=query_chunk_size,
            num_threads=num_threads,
            device=device if resolved == "torch" else None,
            reference_aug32=prep.reference_aug32,
        )
    if exclude_self:
        idx = _drop_self(idx, k)
    dist_sq = prep.dist_sq(idx)
    order = np.argsort(dist_sq, axis=1, kind="stable")
    return np.take_along_axis(dist_sq, order, axis=1), np.take_along_axis(idx, order, axis=1)


def _drop_self(idx: np.ndarray, k: int) -> np.ndarray:
    """Remove row ``i``'s own index from row ``i`` of a ``(n, k + 1)`` neighbour table, keeping ``k`` columns.

    With duplicates the self-match need not be in column 0, and may even be missing when ``k + 1`` duplicates
    tie; then the last column is dropped instead.
    """
    n = idx.shape[0]
    is_self = idx == np.arange(n)[:, None]
    # Rows without their own index drop the last (farthest) column.
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    # Keep only the first self hit per row.
    first = np.argmax(is_self, axis=1)
    keep = np.ones_like(idx, dtype=bool)
    keep[np.arange(n), first] = False
    return idx[keep].reshape(n, k)
