"""The exact engine's neighbour table made exact: the ``k`` nearest bank rows in float64, not in float32.

The float32 search selects ``k + 1`` candidates per table row (one more than asked); their distances are scored in
float64 anyway. Every bank row left out scored at most the last candidate's float32 score, so its float64 distance
is at least the last candidate's minus twice :func:`table_tolerance` (the float32 error of two pairs). A row whose
``k`` first candidates are all closer than that floor is exact as it is (its ``k + 1``-th candidate is dropped); the
other rows, the ambiguous ones (a near tie between the ``k``-th and ``k + 1``-th neighbour within float32 error:
low intrinsic dimension with large banks), get a wider float32 search of their own (``2k + 16`` candidates, the same
check against the last of them), and the few that this cannot settle are searched in float64 by
:func:`float64_top_k`. Each row's answer is the float64 top ``k`` whichever way it was found, so the table does not
depend on how the queries are split (DDP ranks, chunks) or on the backend. This mirrors the
winners' float32-ranking check (:func:`~lightning_repgap._prepare.needs_float64_ranking`), applied to the gap
between the ``k``-th neighbour and the rest of the bank rather than to the nearest distance.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from lightning_repgap._exact import Tiles, knn32, merge_nearest
from lightning_repgap._prepare import Prepared, row_sq_norms

__all__ = ["exact_table", "float64_top_k", "table_tolerance"]

log = logging.getLogger(__name__)

# Float64 Gram-trick candidates kept per ambiguous row beyond ``k`` before the direct float64 re-scoring.
_GRAM_SPARE = 8
# Float64 bytes of one bank chunk centred by :func:`float64_top_k` (32 MiB).
_CHUNK_BYTES = 1 << 25


def table_tolerance(prepared: Prepared, rows: np.ndarray) -> np.ndarray:
    r"""Per query of ``rows``: a bound on ``|float32 search distance - float64 distance|`` for any bank row.

    ``(4 sqrt(D + 1) + 4) eps32 (||q||^2 + max ||r||^2)`` (centred norms): the float32 score
    ``q.r - ||r||^2 / 2`` sums ``D + 1`` products whose rounding errors add up like a random walk (``sqrt(D + 1)``
    roundings of size ``eps32 (||q||^2 + ||r||^2) / 2`` each, four standard deviations, doubled into distance units),
    plus the rounding of the centred data to float32 (``4 eps32 (||q||^2 + ||r||^2)`` at most). The worst case of a
    float32 sum (``(D + 1) eps32``) is met only by adversarial data; this is the statistical bound, far above the
    errors of real GEMM tiles (blocked, fused multiply-adds) at every ``D`` measured.

    Example:
        >>> from lightning_repgap._prepare import prepare
        >>> prep = prepare(np.array([[0.0], [2.0]]), np.array([[1.0]]))
        >>> bool(table_tolerance(prep, np.array([0]))[0] < 1e-5)
        True

    """
    dim = prepared.queries32.shape[1]
    norms = prepared.sq_norms64 if prepared.sq_norms64 is not None else row_sq_norms(prepared.reference32)
    r_max = float(norms.max(initial=0.0))
    q_sq = prepared.queries_sq_norms64[rows]
    return (4.0 * math.sqrt(dim + 1) + 4.0) * float(np.finfo(np.float32).eps) * (q_sq + r_max)


def exact_table(
    prepared: Prepared, rows: np.ndarray, candidates: np.ndarray, dist_sq: np.ndarray, k: int, tiles: Tiles
) -> tuple[np.ndarray, np.ndarray]:
    """The true ``k`` nearest bank positions of the queries ``rows`` (ties aside), with their float64 distances.

    Args:
        prepared: output of :func:`~lightning_repgap._prepare.prepare`.
        rows: ``(r,)`` query rows of the table.
        candidates: ``(r, k + 1)`` bank positions, by descending float32 score (the float32 search's top ``k + 1``),
            or ``(r, k)`` when ``k`` is the whole bank.
        dist_sq: their float64 squared distances (:meth:`Prepared.dist_sq`).
        k: neighbours per row.
        tiles: where the float32 search ran (the ambiguous rows' wider float32 search runs there too).

    Returns:
        ``(table, dist)``: ``(r, k)`` bank positions and float64 squared distances. Rows the float32 ranking
        settles keep their float32 order (the last candidate dropped); re-searched rows come ascending by float64
        distance, earliest position first on ties.

    """
    if candidates.shape[1] <= k:  # the whole bank: nothing left out
        return candidates, dist_sq
    tolerance = table_tolerance(prepared, rows)
    ambiguous = np.flatnonzero(dist_sq[:, :k].max(axis=1, initial=-np.inf) >= dist_sq[:, k] - 2.0 * tolerance)
    table, dist = candidates[:, :k].copy(), dist_sq[:, :k].copy()
    n = prepared.reference_aug32.shape[0]
    if ambiguous.size and n > k + 1:
        # First a wider float32 search of those rows alone (2k + 16 candidates): a near tie at the k-th rarely
        # spans that many, and it reads the float32 bank once, not a float64 copy of it.
        wide = min(n, 2 * k + 16)
        q32 = prepared.queries32[rows[ambiguous]]
        _, more = knn32(prepared.reference32, q32, wide, tiles, reference_aug32=prepared.reference_aug32)
        more_dist = prepared.dist_sq(more, rows=rows[ambiguous])
        settled = _settled(more, more_dist, k, tolerance[ambiguous]) if wide < n else np.ones(more.shape[0], bool)
        order = np.lexsort((more, more_dist), axis=1)[:, :k]
        table[ambiguous[settled]] = np.take_along_axis(more, order, axis=1)[settled]
        dist[ambiguous[settled]] = np.take_along_axis(more_dist, order, axis=1)[settled]
        ambiguous = ambiguous[~settled]
    if ambiguous.size:
        log.debug("neighbour table: %d of %d rows re-searched in float64", ambiguous.size, rows.size)
        table[ambiguous], dist[ambiguous] = float64_top_k(prepared, rows[ambiguous], k)
    return table, dist


def _settled(candidates: np.ndarray, dist_sq: np.ndarray, k: int, tolerance: np.ndarray) -> np.ndarray:
    """Rows whose ``k`` float64-nearest candidates are all closer than any bank row left out can be (bool)."""
    kth = np.partition(dist_sq[:, :-1], k - 1, axis=1)[:, k - 1]
    return kth < dist_sq[:, -1] - 2.0 * tolerance


def float64_top_k(prepared: Prepared, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest bank positions of the queries ``rows`` in float64, with :meth:`Prepared.dist_sq` distances.

    The bank is centred in float64 a chunk at a time (no float64 copy of it all); the float64 Gram trick keeps
    ``k + 8`` candidates per row, whose distances are then computed directly (the package's float64 distance, the
    same bits as everywhere else) and sorted, earliest position first on ties.

    Example:
        >>> from lightning_repgap._prepare import prepare
        >>> prep = prepare(np.array([[5.0], [3.0], [1.0], [0.0]]), np.array([[0.9]]))
        >>> table, dist = float64_top_k(prep, np.array([0]), 2)
        >>> table.tolist(), dist.round(2).tolist()
        ([[2, 3]], [[0.01, 0.81]])

    """
    n = prepared.reference_aug32.shape[0]
    keep = min(n, k + _GRAM_SPARE)
    queries = prepared.queries[rows].astype(np.float64) - prepared.centre
    q_sq = np.einsum("ij,ij->i", queries, queries)
    best = (np.empty((rows.size, 0)), np.empty((rows.size, 0), dtype=np.int64))
    step = max(1, _CHUNK_BYTES // (8 * max(1, queries.shape[1])))
    for j0 in range(0, n, step):
        j1 = min(n, j0 + step)
        chunk = prepared.bank_rows(np.arange(j0, j1)).astype(np.float64) - prepared.centre
        gram = q_sq[:, None] + np.einsum("ij,ij->i", chunk, chunk)[None, :] - 2.0 * (queries @ chunk.T)
        part = np.argsort(gram, axis=1, kind="stable")[:, :keep]  # ascending, earliest column first on ties
        best = merge_nearest(best, (np.take_along_axis(gram, part, axis=1), part + j0), k=keep)
    exact = prepared.dist_sq(best[1], rows=rows)
    order = np.lexsort((best[1], exact), axis=1)[:, :k]
    return np.take_along_axis(best[1], order, axis=1), np.take_along_axis(exact, order, axis=1)
