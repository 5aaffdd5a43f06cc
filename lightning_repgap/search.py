"""Exact (and opt-in approximate) nearest-neighbour search between two sets of representations.

Everything that talks to FAISS lives here, so the rest of the package works on plain arrays. Distances are
**squared** Euclidean distances (``dist_sq``) unless a name says otherwise: that is what the representation gap
needs, and what FAISS' ``METRIC_L2`` returns.

Precision. FAISS (and the torch fallback) evaluate ``||q||^2 + ||r||^2 - 2 q.r`` in float32, which loses
precision when the data sit far from the origin. So both sets are first centred on the reference mean, the
neighbours are *selected* in float32, and the winners' distances are recomputed in float64 as ``||q - r||^2``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from lightning_repgap._checks import _check_positive_int, _check_representations, _check_same_dim
from lightning_repgap._imports import _FAISS_AVAILABLE

log = logging.getLogger(__name__)

Backend = Literal["auto", "faiss", "faiss-gpu", "torch"]
_BACKENDS = ("auto", "faiss", "faiss-gpu", "torch")

# Side of the (query chunk x bank block) score tile of the torch backend: 2048^2 float32 = 16 MiB.
_TORCH_TILE = 2048
# FAISS allocates its own bounded blocks internally; chunking queries only bounds our output copies.
_FAISS_QUERY_CHUNK = 65536


def default_num_threads() -> int:
    """Threads given to FAISS when the caller does not say.

    ``REPGAP_NUM_THREADS`` wins; otherwise torch's intra-op thread count, which Lightning already divides among
    the processes of a DDP job on one machine, so FAISS and torch never oversubscribe the cores together.
    """
    env = os.environ.get("REPGAP_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError as err:
            raise ValueError(f"REPGAP_NUM_THREADS must be an integer, got {env!r}.") from err
    return max(1, torch.get_num_threads())


def resolve_backend(backend: str = "auto") -> str:
    """Turn ``backend`` into a concrete backend name: ``"faiss"``, ``"faiss-gpu"`` or ``"torch"``.

    ``"auto"`` prefers FAISS on the GPU when FAISS sees one, then FAISS on the CPU, then the torch fallback.

    Args:
        backend: one of ``"auto"``, ``"faiss"``, ``"faiss-gpu"``, ``"torch"``.

    Returns:
        The backend that will run.

    Raises:
        ValueError: for an unknown name.
        ModuleNotFoundError: if a FAISS backend is requested but FAISS is not installed.

    Example:
        >>> resolve_backend("torch")
        'torch'

    """
    if backend not in _BACKENDS:
        raise ValueError(f"`backend` must be one of {_BACKENDS}, got {backend!r}.")
    if backend == "torch":
        return backend
    if not _FAISS_AVAILABLE:
        if backend == "auto":
            return "torch"
        raise ModuleNotFoundError(f"backend={backend!r} needs FAISS: `pip install faiss-cpu` (or faiss-gpu).")
    import faiss

    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if backend == "faiss-gpu" and gpus == 0:
        raise ValueError("backend='faiss-gpu' but FAISS sees no GPU (is faiss-gpu installed and CUDA visible?).")
    if backend == "auto":
        return "faiss-gpu" if gpus > 0 else "faiss"
    return backend


@dataclass(frozen=True)
class Prepared:
    """Both sets centred on the reference mean, in float64 (for exact distances) and float32 (for the search)."""

    reference64: np.ndarray
    queries64: np.ndarray
    reference32: np.ndarray
    queries32: np.ndarray


def prepare(reference: np.ndarray, queries: np.ndarray) -> Prepared:
    """Centre both float64 sets on the reference mean and make C-contiguous float32 copies for the search."""
    centre = reference.mean(axis=0)
    ref64 = reference - centre
    q64 = queries - centre
    return Prepared(
        reference64=ref64,
        queries64=q64,
        reference32=np.ascontiguousarray(ref64, dtype=np.float32),
        queries32=np.ascontiguousarray(q64, dtype=np.float32),
    )


def _search_faiss(
    reference32: np.ndarray, queries32: np.ndarray, k: int, query_chunk: int, gpu: bool
) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    m = queries32.shape[0]
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
    reference32: np.ndarray, queries32: np.ndarray, k: int, query_chunk: int | None, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Blocked exact search as one GEMM per tile on ``device``.

    ``argmin_r ||q - r||^2 = argmax_r (q.r - ||r||^2 / 2)``, so appending a column of ones to the queries and
    ``-||r||^2 / 2`` to the reference turns each tile into a single matrix product followed by a max (or top-k):
    no separate pass to add norms. Tiles of ``_TORCH_TILE`` x ``_TORCH_TILE`` bound the score buffer (16 MiB).
    """
    ref = torch.from_numpy(reference32).to(device)
    qs = torch.from_numpy(queries32).to(device)
    m = qs.shape[0]
    ref_aug = torch.cat([ref, -0.5 * (ref * ref).sum(dim=1, keepdim=True)], dim=1)
    q_sq = (qs * qs).sum(dim=1)
    chunk = query_chunk or _TORCH_TILE
    out_s = torch.empty((m, k), dtype=torch.float32)
    out_i = torch.empty((m, k), dtype=torch.int64)
    for i0 in range(0, m, chunk):
        q = qs[i0 : i0 + chunk]
        q_aug = torch.cat([q, torch.ones((q.shape[0], 1), dtype=q.dtype, device=device)], dim=1)
        best_s, best_i = _top1_tiles(q_aug, ref_aug) if k == 1 else _topk_tiles(q_aug, ref_aug, k)
        out_s[i0 : i0 + q.shape[0]] = best_s.cpu()
        out_i[i0 : i0 + q.shape[0]] = best_i.cpu()
    return (q_sq[:, None].cpu() - 2.0 * out_s).numpy(), out_i.numpy()


def _top1_tiles(q_aug: torch.Tensor, ref_aug: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best score and index per query, locating the argmax lazily.

    A row-wise ``max`` with indices costs about half a tile's GEMM on the CPU, while ``amax`` (values only) costs
    a few percent. So each tile only updates the best value and *which tile* holds it; at the end each query's
    winning tile is searched again for the index: one extra tile per query, ``_TORCH_TILE / n`` of the work.
    """
    n = ref_aug.shape[0]
    best_s = torch.full((q_aug.shape[0],), -float("inf"), device=q_aug.device)
    best_tile = torch.zeros(q_aug.shape[0], dtype=torch.int64, device=q_aug.device)
    for t, j0 in enumerate(range(0, n, _TORCH_TILE)):
        vals = (q_aug @ ref_aug[j0 : j0 + _TORCH_TILE].T).amax(dim=1)
        better = vals > best_s
        best_s = torch.where(better, vals, best_s)
        best_tile = torch.where(better, t, best_tile)
    best_i = torch.zeros(q_aug.shape[0], dtype=torch.int64, device=q_aug.device)
    for t in torch.unique(best_tile).tolist():
        rows = torch.nonzero(best_tile == t).flatten()
        j0 = t * _TORCH_TILE
        best_i[rows] = (q_aug[rows] @ ref_aug[j0 : j0 + _TORCH_TILE].T).argmax(dim=1) + j0
    return best_s[:, None], best_i[:, None]


def _topk_tiles(q_aug: torch.Tensor, ref_aug: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` scores and indices per query, merging each tile's top-k into a running top-k."""
    n = ref_aug.shape[0]
    best_s = torch.full((q_aug.shape[0], k), -float("inf"), device=q_aug.device)
    best_i = torch.zeros((q_aug.shape[0], k), dtype=torch.int64, device=q_aug.device)
    for j0 in range(0, n, _TORCH_TILE):
        scores = q_aug @ ref_aug[j0 : j0 + _TORCH_TILE].T
        vals, ids = torch.topk(scores, min(k, scores.shape[1]), dim=1)
        best_s, pos = torch.topk(torch.cat([best_s, vals], dim=1), k, dim=1)
        best_i = torch.gather(torch.cat([best_i, ids + j0], dim=1), 1, pos)
    return best_s, best_i


def exact_dist_sq(reference64: np.ndarray, queries64: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Squared distances ``||q_j - r_idx[j, l]||^2`` in float64, computed directly (not via norms)."""
    out = np.empty(idx.shape, dtype=np.float64)
    for col in range(idx.shape[1]):
        diff = queries64 - reference64[idx[:, col]]
        out[:, col] = np.einsum("ij,ij->i", diff, diff)
    return out


def search_prepared(
    reference32: np.ndarray,
    queries32: np.ndarray,
    k: int,
    *,
    backend: str,
    query_chunk_size: int | None = None,
    num_threads: int | None = None,
    device: torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest reference rows of each query, on already centred, C-contiguous float32 data.

    This is the single entry point to the backends; :func:`nearest` and the gap curve both go through it.

    Returns:
        ``(dist_sq32, index)``: float32 ``(m, k)`` squared distances as the backend computed them (good for
        ranking, not for reporting) and int64 ``(m, k)`` indices, both ascending by distance.

    """
    t0 = time.perf_counter()
    threads = num_threads or default_num_threads()
    if backend in ("faiss", "faiss-gpu"):
        import faiss

        faiss.omp_set_num_threads(threads)
        result = _search_faiss(
            reference32, queries32, k, query_chunk_size or _FAISS_QUERY_CHUNK, gpu=backend == "faiss-gpu"
        )
    elif backend == "torch":
        result = _search_torch(reference32, queries32, k, query_chunk_size, device or torch.device("cpu"))
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
        backend: ``"auto"`` (FAISS if installed, GPU if FAISS sees one, else torch), ``"faiss"``,
            ``"faiss-gpu"`` or ``"torch"`` (blocked matmul + top-k on the queries' device).
        exclude_self: ``queries`` is the reference set itself (same rows, same order); drop each point's own
            match **by index**, so exact duplicates still count as neighbours at distance 0.
        query_chunk_size: queries searched at once (default: 65536 for FAISS, 2048 for torch).
        num_threads: FAISS threads; default :func:`default_num_threads`.

    Returns:
        ``(dist_sq, index)``: float64 ``(m, k)`` squared distances recomputed exactly, ascending per row, and
        int64 ``(m, k)`` row indices into ``reference``.

    Raises:
        ValueError: on non-2-D, non-finite or mismatched inputs, or ``k`` out of range.
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
    resolved = resolve_backend(backend)
    prep = prepare(ref, qs)
    kk = k + int(exclude_self)
    _, idx = search_prepared(
        prep.reference32,
        prep.queries32,
        kk,
        backend=resolved,
        query_chunk_size=query_chunk_size,
        num_threads=num_threads,
        device=device if resolved == "torch" else None,
    )
    if exclude_self:
        idx = _drop_self(idx, k)
    dist_sq = exact_dist_sq(prep.reference64, prep.queries64, idx)
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
