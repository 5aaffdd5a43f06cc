"""The exact engine's neighbour table made exact: the ``k`` nearest bank rows in float64, not in float32.

The float32 search selects ``k + 1`` candidates per table row (one more than asked); their distances are scored in
float64 anyway. Every bank row left out scored at most the last candidate's float32 score, so its float64 distance
is at least the last candidate's minus the float32 errors of the two pairs (a statistical bound,
:func:`_pair_tolerance`: four standard deviations of a random walk of roundings, not the worst case; per row, see
:func:`_settled`). A row whose ``k`` first candidates are all closer than that floor, or are all exact copies of
the query, is exact as it is (its ``k + 1``-th candidate is dropped); the other rows, the ambiguous ones (a near
tie between the ``k``-th and ``k + 1``-th neighbour within float32 error:
low intrinsic dimension with large banks), get a wider float32 search of their own (``2k + 16`` candidates, the same
check against the last of them), and the few that this cannot settle are searched in float64 by
:func:`float64_top_k`. Where float32's errors stay within that bound, each row's answer is the float64 top ``k``
whichever way it was found, so the table does not depend on how the queries are split (DDP ranks, chunks) or on the
backend (FAISS sums its own norms, whose error the bound's column term does not measure). This mirrors the
winners' float32-ranking check (:func:`~lightning_repgap._prepare.needs_float64_ranking`), applied to the gap
between the ``k``-th neighbour and the rest of the bank rather than to the nearest distance.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from lightning_repgap._exact import Tiles, knn32, merge_nearest
from lightning_repgap._prepare import Prepared, row_sq_norms

__all__ = ["exact_table", "float64_top_k"]

log = logging.getLogger(__name__)

# Float64 Gram-trick candidates kept per ambiguous row beyond ``k`` before the direct float64 re-scoring.
_GRAM_SPARE = 8
# Float64 bytes of one bank chunk centred by :func:`float64_top_k` (32 MiB).
_CHUNK_BYTES = 1 << 25
# Float64 bytes of one Gram block (a group of rows against a bank chunk) in :func:`float64_top_k` (8 MiB).
_GRAM_BYTES = 1 << 23


def _bank_sq_norms(prepared: Prepared) -> np.ndarray:
    """Float64 ``||r||^2`` of every centred float32 bank row."""
    return prepared.sq_norms64 if prepared.sq_norms64 is not None else row_sq_norms(prepared.reference32)


def _pair_tolerance(prepared: Prepared, q_sq: np.ndarray, r_sq: np.ndarray | float, column: float) -> np.ndarray:
    r"""A statistical bound on the float32 search distance's error for queries of norm^2 ``q_sq``, rows of ``r_sq``.

    ``(4 sqrt(D + 1) + 4) eps32 (||q||^2 + ||r||^2)``: the float32 score ``q.r - ||r||^2 / 2`` sums ``D + 1``
    products whose rounding errors add up like a random walk (``sqrt(D + 1)`` roundings of size
    ``eps32 (||q||^2 + ||r||^2) / 2`` each, four standard deviations, doubled into distance units), plus the rounding
    of the centred data to float32 (``4 eps32 (||q||^2 + ||r||^2)`` at most). The worst case of a float32 sum
    (``(D + 1) eps32``) is met only by adversarial data: this bound is statistical, far above the errors of real GEMM
    tiles (blocked, fused multiply-adds) at every ``D`` measured. The bank's norm column (a float32 sum of ``D``
    squares, whose error is systematic on common-mode data: it grows like ``D``, not ``sqrt(D)``) is not left to
    that estimate: its error is known exactly, and ``column`` (:func:`_column_error`: its largest ratio to
    ``||r||^2``) times ``||r||^2`` is added.
    """
    dim = prepared.queries32.shape[1]
    eps = float(np.finfo(np.float32).eps)
    return (4.0 * math.sqrt(dim + 1) + 4.0) * eps * (q_sq + r_sq) + column * r_sq


def _column_error(prepared: Prepared) -> float:
    """``max_r |(-2 col_r) - ||r||^2| / ||r||^2``: the norm column's float32 error relative to the float64 norm."""
    norms = _bank_sq_norms(prepared)
    err = np.abs(-2.0 * prepared.reference_aug32[:, -1].astype(np.float64) - norms)
    ratio = np.divide(err, norms, out=np.zeros_like(err), where=norms > 0)
    # A zero row has a zero column (the float32 sum of zeros); anything else would be inf here, never hidden.
    ratio[(norms <= 0) & (err > 0)] = np.inf
    return float(ratio.max(initial=0.0))


def exact_table(
    prepared: Prepared, rows: np.ndarray, candidates: np.ndarray, dist_sq: np.ndarray, k: int, tiles: Tiles
) -> tuple[np.ndarray, np.ndarray]:
    """The true ``k`` nearest bank positions of the queries ``rows`` (ties aside), with their float64 distances.

    Statistical: the float32 error bound (:func:`_pair_tolerance`) is four standard deviations of a random walk
    of roundings, not the worst case of a float32 sum (which only adversarial data meet).

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
    table, dist = candidates[:, :k].copy(), dist_sq[:, :k].copy()
    n = prepared.reference_aug32.shape[0]
    if candidates.shape[1] >= n:  # the k + 1 candidates are the whole bank: sort them in float64
        order = np.lexsort((candidates, dist_sq), axis=1)[:, :k]
        return np.take_along_axis(candidates, order, axis=1), np.take_along_axis(dist_sq, order, axis=1)
    # The bank's part of the margins, read once for both checks (O(n) each: the largest norm, the column's error).
    norms = _bank_sq_norms(prepared)
    bank = (norms, float(norms.max(initial=0.0)), _column_error(prepared))
    ambiguous = np.flatnonzero(~_settled(prepared, rows, candidates, dist_sq, k, bank))
    if ambiguous.size:
        # First a wider float32 search of those rows alone (2k + 16 candidates): a near tie at the k-th rarely
        # spans that many, and it reads the float32 bank once, not a float64 copy of it.
        wide = min(n, 2 * k + 16)
        q32 = prepared.queries32[rows[ambiguous]]
        _, more = knn32(prepared.reference32, q32, wide, tiles, reference_aug32=prepared.reference_aug32)
        more_dist = prepared.dist_sq(more, rows=rows[ambiguous])
        whole = wide >= n
        settled = (
            np.ones(more.shape[0], bool) if whole else _settled(prepared, rows[ambiguous], more, more_dist, k, bank)
        )
        order = np.lexsort((more, more_dist), axis=1)[:, :k]
        table[ambiguous[settled]] = np.take_along_axis(more, order, axis=1)[settled]
        dist[ambiguous[settled]] = np.take_along_axis(more_dist, order, axis=1)[settled]
        ambiguous = ambiguous[~settled]
    if ambiguous.size:
        log.debug("neighbour table: %d of %d rows re-searched in float64", ambiguous.size, rows.size)
        table[ambiguous], dist[ambiguous] = float64_top_k(prepared, rows[ambiguous], k)
    return table, dist


def _settled(
    prepared: Prepared,
    rows: np.ndarray,
    candidates: np.ndarray,
    dist_sq: np.ndarray,
    k: int,
    bank: tuple[np.ndarray, float, float],
) -> np.ndarray:
    r"""Rows whose ``k`` float64-nearest candidates are all closer than any bank row left out can be (bool).

    ``candidates`` are a float32 search's top ``w > k`` by score ``s = q.r - ||r||^2 / 2`` (distance
    ``||q||^2 - 2 s``); ``c`` is the last of them, ``d_k`` the largest float64 distance among the ``k`` nearest of
    the others. A bank row ``o`` left out scored ``s32(o) <= s32(c)``, so in distance units
    ``d(o) >= d(c) - e(q, c) - e(q, o)``, ``e`` the pair's float32 error (:func:`_pair_tolerance`, which grows
    with ``||r||^2``). Only an ``o`` with ``d(o) < d_k`` could change the answer, and such an ``o`` has
    ``||o|| <= ||q|| + ||q - o|| < ||q|| + sqrt(d_k)`` (triangle inequality; inflated by ``4 eps32`` for the
    float32 rounding of the centred data the norms are of). So ``e(q, o)`` is bounded with
    ``||o||^2 <= min(max ||r||^2, (||q|| + sqrt(d_k))^2 (1 + 4 eps32)^2)``: a far outlier in the bank does not
    widen every row's margin, and ``e(q, c)`` uses ``c``'s own norm. The row is settled when
    ``d_k < d(c) - e(q, c) - e(q, o)``: every ``o`` that could matter is farther than ``d_k``. It is settled also
    when ``d_k == 0``: its ``k`` nearest are exact copies of the query, and nothing is closer than 0. ``bank`` holds
    the bank's float64 norms, their largest and :func:`_column_error`, computed once by the caller.
    """
    norms, r_max, column = bank
    q_sq = prepared.queries_sq_norms64[rows]
    kth = np.partition(dist_sq[:, :-1], k - 1, axis=1)[:, k - 1]
    reach = (np.sqrt(q_sq) + np.sqrt(np.maximum(kth, 0.0))) * (1.0 + 4.0 * float(np.finfo(np.float32).eps))
    omitted = np.minimum(r_max, reach * reach)
    margin = _pair_tolerance(prepared, q_sq, norms[candidates[:, -1]], column)
    margin += _pair_tolerance(prepared, q_sq, omitted, column)
    return (kth < dist_sq[:, -1] - margin) | (kth == 0)


def float64_top_k(prepared: Prepared, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest bank positions of the queries ``rows`` in float64, with :meth:`Prepared.dist_sq` distances.

    The bank is centred in float64 a chunk at a time (no float64 copy of it all), and the rows are taken a group
    at a time, so the float64 Gram block of a group against a chunk stays within 8 MiB (its few temporaries, 16 MiB
    at most) and the chunk within 32 MiB. The Gram trick keeps ``k + 8`` candidates per row (a partition, earliest
    column first on ties at the cut), whose distances are then computed directly (the package's float64 distance,
    the same bits as everywhere else) and sorted, earliest position first on ties. Cost: one float64 pass over the
    bank per row, ``O(n D)`` each.

    Example:
        >>> from lightning_repgap._prepare import prepare
        >>> prep = prepare(np.array([[5.0], [3.0], [1.0], [0.0]]), np.array([[0.9]]))
        >>> table, dist = float64_top_k(prep, np.array([0]), 2)
        >>> table.tolist(), dist.round(2).tolist()
        ([[2, 3]], [[0.01, 0.81]])

    """
    n = prepared.reference_aug32.shape[0]
    if rows.size == 0:
        return np.empty((0, min(n, k)), dtype=np.int64), np.empty((0, min(n, k)))
    keep = min(n, k + _GRAM_SPARE)
    queries = np.subtract(prepared.queries[rows], prepared.centre, dtype=np.float64)
    q_sq = np.einsum("ij,ij->i", queries, queries)
    best = (np.empty((rows.size, 0)), np.empty((rows.size, 0), dtype=np.int64))
    dim = max(1, queries.shape[1])
    step = max(1, min(_CHUNK_BYTES // (8 * dim), _GRAM_BYTES // (8 * max(1, min(rows.size, 64)))))
    group = max(1, _GRAM_BYTES // (8 * step))
    for j0 in range(0, n, step):
        j1 = min(n, j0 + step)
        # one float64 copy of the chunk (not a float64 copy and then a centred one)
        chunk = np.subtract(prepared.bank_rows(np.arange(j0, j1)), prepared.centre, dtype=np.float64)
        c_sq = np.einsum("ij,ij->i", chunk, chunk)
        found_d, found_i = [], []
        for i0 in range(0, rows.size, group):
            gram = queries[i0 : i0 + group] @ chunk.T
            gram *= -2.0
            gram += c_sq[None, :]
            gram += q_sq[i0 : i0 + group, None]
            part = _least_columns(gram, min(keep, j1 - j0))
            found_d.append(np.take_along_axis(gram, part, axis=1))
            found_i.append(part + j0)
            del gram
        best = merge_nearest(best, (np.concatenate(found_d), np.concatenate(found_i)), k=keep)
    exact = prepared.dist_sq(best[1], rows=rows)
    order = np.lexsort((best[1], exact), axis=1)[:, :k]
    return np.take_along_axis(best[1], order, axis=1), np.take_along_axis(exact, order, axis=1)


def _least_columns(gram: np.ndarray, keep: int) -> np.ndarray:
    """Per row, the ``keep`` columns of least value, ascending, earliest column first on ties (as a stable sort)."""
    if keep >= gram.shape[1]:
        return np.argsort(gram, axis=1, kind="stable")
    part = np.argpartition(gram, keep - 1, axis=1)[:, :keep].copy()  # a copy: the full index array is freed
    vals = np.take_along_axis(gram, part, axis=1)
    # Rows with more columns at the cut value than the partition kept: which of the tied columns it kept is
    # arbitrary, so those rows (exact copies, mostly) are sorted in full, stably.
    tied = np.flatnonzero((gram <= vals.max(axis=1)[:, None]).sum(axis=1) > keep)
    if tied.size:
        part[tied] = np.argsort(gram[tied], axis=1, kind="stable")[:, :keep]
        vals[tied] = np.take_along_axis(gram[tied], part[tied], axis=1)
    order = np.lexsort((part, vals), axis=1)
    return np.take_along_axis(part, order, axis=1)
