"""The exact search's kernels: dispatch of float32 searches to the torch tiles or FAISS' flat search, and merges.

Runs inside a :func:`~lightning_repgap._threads.thread_scope` entered by the caller; nothing here sets threads.
:class:`lightning_repgap.search.ExactEngine` is the engine built on these.
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

import numpy as np
import torch

from lightning_repgap._checks import check_sizes
from lightning_repgap._concentration_block import TileBlock
from lightning_repgap._gemm import prefix_top1_torch, search_torch
from lightning_repgap._prepare import Prepared, with_norm_column
from lightning_repgap._threads import current_threads

__all__ = ["Tiles", "knn32", "merge_nearest", "prefix_search", "rank_float64", "search_faiss"]

log = logging.getLogger(__name__)

# FAISS allocates its own bounded blocks internally; chunking queries only bounds our output copies.
_FAISS_QUERY_CHUNK = 65536


class Tiles(NamedTuple):
    """Where a float32 search runs: a resolved ``backend``, the CPU ``gemm`` library option, the torch ``device``."""

    backend: str
    gemm: str = "auto"
    device: torch.device | None = None


def merge_nearest(
    best: tuple[np.ndarray, np.ndarray], found: tuple[np.ndarray, np.ndarray], k: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The one merge of search results: the nearest (or ``k`` nearest) of two ``(distance, index)`` sets.

    Ties keep ``best``'s entries first (a stable merge), so merging blocks in bank order keeps the earliest row, as
    a single search over the whole bank would.

    Args:
        best: ``(dist, index)`` so far.
        found: ``(dist, index)`` of the new block (or rank, or engine).
        k: ``None``: top-1, elementwise strict minimum of same-shaped arrays (any shape, e.g. ``(S, m)`` per-size
            minima); an integer: top-``k`` of ``(m, k_best)`` and ``(m, k_found)`` rows sorted ascending.

    Returns:
        ``(dist, index)``: shaped like ``best`` for top-1, ``(m, min(k, k_best + k_found))`` for top-``k``.

    Example:
        >>> d, i = merge_nearest((np.array([1.0, 2.0]), np.array([0, 1])), (np.array([1.0, 0.5]), np.array([7, 8])))
        >>> d.tolist(), i.tolist()
        ([1.0, 0.5], [0, 8])

    """
    best_d, best_i = best
    dist, index = found
    if k is None:
        better = dist < best_d
        return np.where(better, dist, best_d), np.where(better, index, best_i)
    cand_d = np.concatenate([best_d, dist], axis=1)
    cand_i = np.concatenate([best_i, index], axis=1)
    keep = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(cand_d, keep, axis=1), np.take_along_axis(cand_i, keep, axis=1)


def search_faiss(
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


def knn32(
    reference32: np.ndarray,
    queries32: np.ndarray,
    k: int,
    tiles: Tiles,
    query_chunk_size: int | None = None,
    reference_aug32: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` float32-nearest rows per query (float32 distances), inside a thread scope already entered."""
    t0 = time.perf_counter()
    if tiles.backend != "torch":
        gpu = tiles.backend == "faiss-gpu"
        result = search_faiss(reference32, queries32, k, query_chunk_size or _FAISS_QUERY_CHUNK, gpu=gpu)
    else:
        aug = with_norm_column(reference32) if reference_aug32 is None else reference_aug32
        device = tiles.device or torch.device("cpu")
        result = search_torch(aug, queries32, k, query_chunk_size, device, tiles.gemm)
    log.debug(
        "knn backend=%s threads=%d n=%d m=%d D=%d k=%d: %.4fs",
        tiles.backend,
        current_threads(),
        reference32.shape[0],
        queries32.shape[0],
        reference32.shape[1],
        k,
        time.perf_counter() - t0,
    )
    return result


def _prefix_blocks(prepared: Prepared, sizes: np.ndarray, tiles: Tiles) -> np.ndarray:
    """Prefix winners for backends without a one-pass version: one ``k = 1`` search per block, merged."""
    m = prepared.queries32.shape[0]
    out = np.empty((len(sizes), m), dtype=np.int64)
    best = (np.full(m, np.inf, dtype=np.float32), np.zeros(m, dtype=np.int64))
    start = 0
    for s, stop in enumerate(sizes):
        d32, idx = knn32(prepared.reference32[start:stop], prepared.queries32, 1, tiles)
        best = merge_nearest(best, (d32[:, 0], idx[:, 0] + start))
        out[s] = best[1]
        start = int(stop)
    return out


def rank_float64(prepared: Prepared, sizes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Prefix winners of the queries ``rows``, ranked in float64 on the CPU (torch tiles), for near ties.

    The bank centred in float64 is a full float64 copy: only paid when float32 is not enough.
    """
    sizes = check_sizes(sizes, prepared.reference_aug32.shape[0])
    centred = prepared.bank_rows(np.arange(prepared.reference_aug32.shape[0])) - prepared.centre
    aug = np.concatenate([centred, -0.5 * np.einsum("ij,ij->i", centred, centred)[:, None]], axis=1)
    del centred
    return prefix_top1_torch(
        aug, prepared.queries[rows].astype(np.float64) - prepared.centre, sizes, torch.device("cpu")
    )[0]


def prefix_search(
    prepared: Prepared,
    sizes: np.ndarray,
    tiles: Tiles,
    knn_rows: np.ndarray | None = None,
    k: int = 0,
    block: TileBlock | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Float32 prefix winners ``(S, m)`` (bank positions), plus the neighbour table of ``knn_rows`` if given.

    ``block`` is filled from the torch backend's tiles; it is left untouched by the other backends (no tiles).
    """
    # The tile loops record a winner at each size boundary: repeated, unordered or zero sizes would leave rows unset.
    sizes = check_sizes(sizes, prepared.reference_aug32.shape[0])
    t0 = time.perf_counter()
    knn = None
    if tiles.backend == "torch":
        device = tiles.device or torch.device("cpu")
        out, knn = prefix_top1_torch(
            prepared.reference_aug32,
            prepared.queries32,
            sizes,
            device,
            knn_rows=knn_rows,
            k=k,
            gemm=tiles.gemm,
            block=block,
        )
    else:
        out = _prefix_blocks(prepared, sizes, tiles)
        if knn_rows is not None:
            n = int(sizes[-1])
            _, knn = knn32(prepared.reference32[:n], prepared.queries32[knn_rows], k, tiles)
    log.debug(
        "prefix search backend=%s n=%d m=%d D=%d sizes=%d knn=%d x %d: %.4fs",
        tiles.backend,
        int(sizes[-1]),
        prepared.queries32.shape[0],
        prepared.queries32.shape[1],
        len(sizes),
        0 if knn_rows is None else knn_rows.size,
        k,
        time.perf_counter() - t0,
    )
    return out, knn
