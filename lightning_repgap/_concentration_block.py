r"""The concentration's squared distances, read from the exact search's own float32 score tiles.

:attr:`~lightning_repgap.gap.GapCurve.concentration` is :math:`\mathrm{mean}^2 / \mathrm{var}` of the squared
distances between a subset of the queries (:data:`~lightning_repgap.gap.CONCENTRATION_SUBSET`, spread evenly) and
the first bank positions. Those distances are a block of the matrix the float32 tiles of the exact search compute
anyway: a tile holds :math:`s = q \cdot r - \lVert r \rVert^2 / 2` (the norm column folded into the product), so
:math:`\lVert q - r \rVert^2 = \lVert q \rVert^2 - 2 s`. :class:`TileBlock` copies that block out of the tiles as
they pass (no product of its own); :func:`block_moments` computes the same values with one product of the subset
alone, for the searches whose tiles are not float32 (the bf16 screen, FAISS, the approximate indexes).

The moments are kept **per query row** (:class:`RowMoments`: the row's float64 sum and its centred sum of squares)
and combined in query order (:meth:`RowMoments.concentration`), so a DDP rank, which searches every ``W``-th query,
contributes its rows and the ranks' rows combine to the one-process value bit for bit
(:mod:`lightning_repgap._shard`). A row's values depend only on the tile product's bits for that row: torch's CPU
product (MKL) gave the same bits for a row whatever the other rows and the tile width in every check; the thread
count (1 or 2) left them unchanged on an AMD EPYC but not on an Intel Xeon at ``D`` = 10,001 (9e-9 relative: MKL
splits the product among its threads there), and numpy's OpenBLAS product follows its thread count at a large ``D``.
So the value is the same bit for bit for the same BLAS thread count and agrees to float32 rounding across counts.
Bit-for-bit agreement between DDP and one process holds on torch's tiles at equal thread counts: where the probe
chose numpy's tiles and one side meets a tile narrower than :data:`MIN_SIDE` (a rank's short last chunk), that side's
block comes from :func:`block_moments` (torch's product) and can differ from the other's at float32 rounding level.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from lightning_repgap._prepare import rows_sum_sq64

__all__ = ["ConcentrationSubset", "RowMoments", "TileBlock", "block_moments"]

# Query rows widened to float64 at a time for their norms (2.5 MB at D = 10,000).
_NORM_STEP = 32
#: Smallest product side read for the block. torch's CPU product (MKL) switches to small-matrix kernels, which sum in
#: another order, for an operand of up to 11 rows (a chunk of 1-11 queries, a bank tile of 1-11 rows); from 12 on, a
#: row's bits did not depend on the shape in any check on the reference host. Tiles narrower than this are not read
#: (the block then comes from :func:`block_moments`, whose operands are padded to at least this size).
MIN_SIDE = 16


class ConcentrationSubset(NamedTuple):
    """Which distances the concentration reads.

    Attributes:
        queries: int64 increasing indices into the searched query set.
        positions: int64 increasing bank positions (in the search's order).

    """

    queries: np.ndarray
    positions: np.ndarray


class RowMoments(NamedTuple):
    """Per query row of a block: its float64 sum and centred sum of squares over ``width`` distances.

    Example:
        >>> d = np.array([[1.0, 3.0], [5.0, 7.0]])
        >>> mom = RowMoments.of(d)
        >>> mom.sums.tolist(), mom.m2.tolist(), round(mom.concentration(), 6)  # mean 4, var 5
        ([4.0, 12.0], [2.0, 2.0], 3.2)

    """

    sums: np.ndarray
    m2: np.ndarray
    width: int

    @classmethod
    def of(cls, dist: np.ndarray) -> RowMoments:
        """The moments of each row of a float64 ``(k, width)`` block (two passes per row: nothing cancels).

        Both are BLAS row dots (:func:`~lightning_repgap._prepare.rows_sum_sq64`'s kernel), so a row's moments
        depend on that row alone, not on the other rows of the block.
        """
        dist = np.ascontiguousarray(dist, dtype=np.float64)
        ones = np.ones((1, dist.shape[1], 1))
        sums = np.matmul(dist[:, None, :], ones).reshape(dist.shape[0])
        centred = dist - (sums / dist.shape[1])[:, None]
        m2 = rows_sum_sq64(centred)
        # A constant row has no spread, although its rounded mean can leave a tiny one in the centred values.
        m2[dist.max(axis=1) == dist.min(axis=1)] = 0.0
        return cls(sums, m2, dist.shape[1])

    def concentration(self) -> float:
        """``mean^2 / var`` over every row, the rows combined in their order (Chan's pairwise update, vectorised).

        ``inf`` if every distance is the same non-zero value, ``nan`` if they are all zero.
        """
        n = self.sums.size * self.width
        if not self.m2.any() and (self.sums == self.sums[0]).all():
            # Every distance equal: the variance is exactly 0 (the combination below could round to a tiny one).
            mean = float(self.sums[0]) / self.width
            return math.inf if mean > 0 else math.nan
        mean = float(self.sums.sum()) / n
        between = self.sums / self.width - mean
        var = (float(self.m2.sum()) + self.width * float(between @ between)) / n
        if var > 0:
            return mean * mean / var
        return math.inf if mean > 0 else math.nan


def _distances(scores: np.ndarray, q_sq64: np.ndarray) -> np.ndarray:
    """``max(|q|^2 - 2 s, 0)`` in float64 from float32 scores ``s`` (rows) and float64 query norms."""
    out = scores.astype(np.float64)
    out *= -2.0
    out += q_sq64[:, None]
    return np.maximum(out, 0.0, out=out)


def _query_sq_norms(queries32: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Float64 ``|q|^2`` of centred float32 query rows (:func:`rows_sum_sq64`: a row's bits depend on that row only).

    Widened to float64 :data:`_NORM_STEP` rows at a time: no float64 copy of all of them at a large ``D``.
    """
    n = queries32.shape[0] if rows is None else rows.size
    out = np.empty(n)
    for a in range(0, n, _NORM_STEP):
        part = queries32[a : a + _NORM_STEP] if rows is None else queries32[rows[a : a + _NORM_STEP]]
        out[a : a + part.shape[0]] = rows_sum_sq64(part.astype(np.float64))
    return out


class TileBlock:
    """The concentration's block of distances, copied out of a search's float32 score tiles as they are made.

    Args:
        subset: the queries (indices into the searched queries) and bank positions of the block.
        queries32: the searched centred float32 queries (only the subset's rows are read, for their norms).

    The search calls :meth:`take` with every tile (``scores[i, j]`` is query ``i0 + i`` against bank position
    ``j0 + j``); afterwards :meth:`moments` gives the block's :class:`RowMoments`.
    """

    def __init__(self, subset: ConcentrationSubset, queries32: np.ndarray) -> None:
        self.subset = subset
        self.queries32 = queries32
        self._block = np.zeros((subset.queries.size, subset.positions.size), dtype=np.float32)
        self.filled = False
        self._narrow = False  # a tile with entries of the block was too small to be read (see MIN_SIDE)

    def take(self, i0: int, scores: torch.Tensor, j0: int) -> None:
        """Copy the block's entries of one tile (a no-op for a tile that holds none)."""
        q, p = self.subset
        qa, qb = np.searchsorted(q, [i0, i0 + scores.shape[0]])
        pa, pb = np.searchsorted(p, [j0, j0 + scores.shape[1]])
        if qa == qb or pa == pb:
            return
        if min(scores.shape) < MIN_SIDE:
            self._narrow = True
            return
        rows, cols = (_index(ids) for ids in (q[qa:qb] - i0, p[pa:pb] - j0))
        part = scores[rows if isinstance(rows, slice) else torch.from_numpy(rows)]
        part = part[:, cols if isinstance(cols, slice) else torch.from_numpy(cols)]
        self._block[qa:qb, pa:pb] = part.cpu().numpy()
        self.filled = True

    def moments(self, reference_aug32: np.ndarray, query_sq_norms64: np.ndarray | None = None) -> RowMoments:
        """The block's per-row moments: from the tiles taken, or, if none was (no float32 tiles ran), one product.

        Args:
            reference_aug32: the search's augmented centred bank (read only without tiles).
            query_sq_norms64: float64 ``|q|^2`` of every searched query when the search has them already
                (:attr:`~lightning_repgap._prepare.Prepared.queries_sq_norms64`: the bits of the block's own norms);
                default: the block's rows are summed here.
        """
        q, p = self.subset
        if not self.filled or self._narrow:
            return block_moments(reference_aug32[_index(p)], self.queries32[q])
        q_sq = _query_sq_norms(self.queries32, q) if query_sq_norms64 is None else query_sq_norms64[q]
        return RowMoments.of(_distances(self._block, q_sq))


def _index(ids: np.ndarray) -> slice | np.ndarray:
    """Increasing indices as a slice when they are a run (a view, no gather), else as they are."""
    if ids.size and int(ids[-1]) - int(ids[0]) == ids.size - 1:
        return slice(int(ids[0]), int(ids[-1]) + 1)
    return ids


def block_moments(reference_aug32: np.ndarray, queries32: np.ndarray) -> RowMoments:
    """:class:`RowMoments` of the block computed by one product of its own rows: the searches without float32 tiles.

    The same scores as the torch tiles (torch's product of ``[q, 1]`` and the augmented bank rows), so the same
    moments where the tiles would have run on torch's library.

    Args:
        reference_aug32: ``(k_r, D + 1)`` the block's centred bank rows with their ``-||r||^2 / 2`` column, as the
            search's augmented bank holds them.
        queries32: ``(k_q, D)`` the block's centred float32 queries.

    Returns:
        The block's :class:`RowMoments`.

    Example:
        >>> r = np.array([[0.0, 0.0, -0.0], [2.0, 0.0, -2.0]], dtype=np.float32)  # [r, -|r|^2 / 2]
        >>> block_moments(r, np.array([[1.0, 1.0]], dtype=np.float32)).sums.tolist()  # 2 + 2
        [4.0]

    """
    k_q, k_r = queries32.shape[0], reference_aug32.shape[0]
    # Zero rows pad either operand to MIN_SIDE rows, so that the product runs the kernels the tiles run.
    q_aug = np.zeros((max(k_q, MIN_SIDE), queries32.shape[1] + 1), dtype=np.float32)
    q_aug[:k_q, :-1] = queries32
    q_aug[:k_q, -1] = 1.0
    r_aug = reference_aug32
    if k_r < MIN_SIDE:
        r_aug = np.zeros((MIN_SIDE, reference_aug32.shape[1]), dtype=np.float32)
        r_aug[:k_r] = reference_aug32
    scores = (torch.from_numpy(q_aug) @ torch.from_numpy(np.ascontiguousarray(r_aug)).T).numpy()[:k_q, :k_r]
    return RowMoments.of(_distances(scores, _query_sq_norms(queries32)))
