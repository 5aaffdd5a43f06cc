"""The per-tile work of the bf16 screen (:mod:`lightning_repgap._screen`) after each product.

Running lower bounds per query (the best, and the ``k``-th best of the neighbour-table rows, with floors from a
sample of the bank), candidate extraction through column-group maxima, the choice of threads for these reductions,
the end-of-pass filter that spares the float64 re-scoring of candidates that later tiles beat, and the bf16 bit
helpers (numpy on the operands' bits, no torch call). ``docs/performance.md`` ("Low-precision screening") explains
why each is exact.
"""

from __future__ import annotations

import time

import numpy as np
import torch

__all__ = [
    "EPS64",
    "GROUP_SCRATCH_ROWS",
    "OUTPUT_ROUNDING",
    "TILE",
    "U16",
    "Reductions",
    "RunningBounds",
    "bf16_bits",
    "candidates",
    "flat_view",
    "group_maxima",
    "still_able_to_win",
    "upper_inverse",
    "widen_bits",
]

U16 = 2.0**-8  # bf16 unit roundoff (8 significant bits, round to nearest even)
EPS64 = 2.0**-52
#: A bf16 output ``O`` is within ``OUTPUT_ROUNDING * |O|`` of the float32 sum it rounds (round to nearest even).
OUTPUT_ROUNDING = U16 / (1.0 - U16)
_OUT = OUTPUT_ROUNDING
#: Queries and bank rows per score tile.
TILE = 2048
# Columns per group of a hit row whose maximum is compared first (see candidates).
_GROUP = 64
#: Rows of a hit-row block widened to float32 at once by :func:`group_maxima` (a 2 MiB buffer at the tile's width).
GROUP_SCRATCH_ROWS = 256
# Slack of the end-of-pass filter: its bounds are float64 sums (keeping more is always safe).
_ULPS = 64 * EPS64
# Full tiles whose row maxima are timed with each thread count (see Reductions).
_TRIALS = 2


class RunningBounds:
    """Per query of a chunk: the running ``k``-th best lower bound on the true score (``k = 1`` for most rows).

    Lower bounds of distinct bank points only: each tile's points enter once, either through :meth:`fill` (a row
    whose table is not full yet: its top ``k`` of the tile) or through :meth:`merge` (its candidates: a point that
    can enter a full table has an upper bound above the table's ``k``-th entry, so it is a candidate).
    """

    def __init__(self, rows: int, knn_local: np.ndarray, k: int) -> None:
        self.best = np.full(rows, -np.inf)
        self.knn_local = knn_local
        self.k = k
        self.table = np.full((knn_local.size, k), -np.inf)  # descending lower bounds of the neighbour-table rows
        self.slot = np.full(rows, -1, dtype=np.int64)
        self.slot[knn_local] = np.arange(knn_local.size)
        # Floors from a sample of the bank (:meth:`prime`): the k-th best and the best of the sample's lower bounds.
        self.floor_k = np.full(knn_local.size, -np.inf)
        self.floor_1 = np.full(knn_local.size, -np.inf)
        self.floor_1_valid = False  # the best of the sample bounds prefixes that hold the whole sample only

    def prime(self, mat: torch.Tensor, sample: torch.Tensor, shift: np.ndarray, err: np.ndarray) -> None:
        """Floors for the neighbour-table rows from ``sample``, the first bank rows (one small bf16 product).

        ``mat`` is the chunk's operand, ``shift`` its exact shift and ``err`` the bound over the sample (per row of
        the chunk). The ``k``-th largest lower bound of ``k`` distinct bank points bounds the ``k``-th best of the
        whole bank from below, so the tables' threshold starts high instead of rising slowly from the first, small
        tiles (which would pass a neighbour-table row about ``k ln(n / k)`` points more than the floor does).
        """
        local = self.knn_local
        rows = torch.from_numpy(local).to(mat.device)
        top = torch.topk(mat[rows] @ sample.T, self.k, dim=1).values.double().cpu().numpy()  # bounds rise with it
        low = shift[local, None] + top - _OUT * np.abs(top) - err[local, None]
        self.floor_k, self.floor_1 = low[:, -1], low[:, 0]

    def kth(self) -> np.ndarray:
        """Per neighbour-table row: the lower bound on its ``k``-th best true score over the whole bank."""
        return np.maximum(self.table[:, -1], self.floor_k)

    def threshold(self) -> np.ndarray:
        """Per query: the lower bound a candidate's upper bound must reach.

        A neighbour-table row needs the points that can enter its table *or* be the nearest at a prefix size.
        """
        out = self.best.copy()
        if self.knn_local.size:
            best = self.best[self.knn_local]
            if self.floor_1_valid:
                best = np.maximum(best, self.floor_1)
            out[self.knn_local] = np.minimum(best, self.kth())
        return out

    def fill(self, out: torch.Tensor, shift: np.ndarray, err: np.ndarray) -> np.ndarray:
        """Merge the tile's top ``k`` into the tables that are not full; returns which tables (a mask)."""
        filled = self.table[:, -1] == -np.inf
        if not filled.any():
            return filled
        need = np.flatnonzero(filled)
        local = self.knn_local[need]
        vals = out[torch.from_numpy(local).to(out.device)]
        best = torch.topk(vals, min(self.k, vals.shape[1]), dim=1).values.double().cpu().numpy()
        bound = shift[local, None] + best - _OUT * np.abs(best) - err[local, None]
        merged = np.concatenate([self.table[need], bound], axis=1)
        merged.sort(axis=1)
        self.table[need] = merged[:, ::-1][:, : self.k]
        return filled

    def merge(self, rows: np.ndarray, lower: np.ndarray, filled: np.ndarray) -> bool:
        """Merge candidates (chunk ``rows``, lower bounds ``lower``) into the full tables of their rows.

        Returns:
            Whether any table took candidates.
        """
        if not self.knn_local.size:
            return False
        slot = self.slot[rows]
        use = slot >= 0
        use[use] = ~filled[slot[use]]
        if not use.any():
            return False
        slot, lower = slot[use], lower[use]
        above = lower > self.table[slot, -1]  # only these can enter a table
        if not above.any():
            return False
        slot, lower = slot[above], lower[above]
        order = np.argsort(slot, kind="stable")
        slot, lower = slot[order], lower[order]
        # ``slot`` is sorted: its runs are the touched tables (np.unique would sort it again)
        start = np.flatnonzero(np.concatenate(([True], slot[1:] != slot[:-1])))
        touched, counts = slot[start], np.diff(np.append(start, slot.size))
        # Each touched table and its new entries side by side (padded with -inf), sorted once.
        merged = np.full((touched.size, self.k + int(counts.max())), -np.inf)
        merged[:, : self.k] = self.table[touched]
        line = np.repeat(np.arange(touched.size), counts)
        merged[line, self.k + np.arange(slot.size) - start[line]] = lower
        merged.sort(axis=1)
        self.table[touched] = merged[:, : -self.k - 1 : -1]
        return True


def upper_inverse(tau: np.ndarray) -> np.ndarray:
    """Smallest output ``O`` with ``O + u|O| >= tau`` (``O + u|O|`` increases with ``O``)."""
    return np.where(tau >= 0, tau / (1.0 + _OUT), tau / (1.0 - _OUT))


class Reductions:
    """Threads of the per-tile work after the product (row maxima, candidates), chosen by timing it in place.

    The row maxima of a tile cost a fraction of its product. With all threads they take about half as long on a
    quiet host, but on a busy one every parallel region waits for its threads and one thread is several times
    faster. So the first ``2 * _TRIALS`` full tiles (at least half a tile of rows) time both, alternated, and the
    faster count is kept.
    """

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.seconds: dict[int, list[float]] = {1: [], threads: []} if threads > 1 else {}
        self.chosen = 1 if threads > 1 else threads

    def row_max(self, out: torch.Tensor) -> np.ndarray:
        """Row maxima of the tile as float64; leaves torch on the chosen thread count for the rest of the tile."""
        # Trials on full-width tiles of at least half a tile of rows: a DDP rank's balanced chunks (e.g. 2,500 or
        # 1,250 queries, ``_shard.balanced_chunk``) are never exactly one tile, and must still get to choose.
        trial = bool(self.seconds) and max(out.shape) >= TILE and min(out.shape) >= TILE // 2
        count = self.chosen
        if trial:
            count = 1 if len(self.seconds[1]) <= len(self.seconds[self.threads]) else self.threads
        torch.set_num_threads(count)
        t0 = time.perf_counter()
        o_max = out.amax(dim=1)
        if trial:
            self.seconds[count].append(time.perf_counter() - t0)
            if len(self.seconds[self.threads]) == _TRIALS:
                self.chosen = min(self.seconds, key=lambda c: min(self.seconds[c]))
                self.seconds = {}
                torch.set_num_threads(self.chosen)
        return o_max.double().cpu().numpy()


def still_able_to_win(
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]], block_best: np.ndarray, top: RunningBounds
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A chunk's candidates with the mask of those that can still win, judged with the bounds at the end of the pass.

    A candidate of size block ``s`` can only be the nearest at a prefix size ``>= sizes[s]``, whose best true score
    is at least the running lower bound at the end of block ``s``; a neighbour-table candidate must reach its row's
    final ``k``-th lower bound. Early tiles pass many points that later tiles beat: they need no float64 re-scoring.
    """
    kth = np.full(block_best.shape[1], np.inf)
    if top.knn_local.size:
        kth[top.knn_local] = top.kth()
    out = []
    for rows, pos, upper, s in found:
        # A few float64 ulps of slack: ``upper`` and the bounds are float64 sums (keeping more is always safe).
        upper = upper + _ULPS * (np.abs(upper) + np.abs(block_best[s, rows]))
        out.append((rows, pos, (upper >= block_best[s, rows]) | (upper >= kth[rows])))
    return out


def candidates(
    out: torch.Tensor,
    hit: np.ndarray,
    thr: np.ndarray,
    buffer: torch.Tensor | None = None,
    scratch: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, column, float64 value)`` of the tile's entries ``>= thr[row]``, among the rows ``hit``.

    A hit row holds a few candidates among thousands of columns: its ``_GROUP``-wide column groups are reduced to
    their maxima first (:func:`group_maxima`), and only the groups whose maximum reaches the threshold are widened
    and compared (numpy). Scanning every column of every hit row in numpy cost several times the row maxima of the
    whole tile. Narrow tiles (the first prefix sizes) are scanned whole. The hit rows are gathered into ``buffer``
    (flat, at least the tile's size) when one is given, instead of a new tensor; ``scratch`` is handed to
    :func:`group_maxima`.
    """
    width = out.shape[1]
    hit_t = torch.from_numpy(hit).to(out.device)
    # The rows' thresholds as float32 values <= thr (thr is float32 already, see _round_down).
    row_thr = thr[hit].astype(np.float32)
    if width < 4 * _GROUP:
        values = _widen(out[hit_t].cpu())
        r, c = np.nonzero(values >= row_thr[:, None])
        return hit[r], c, values[r, c].astype(np.float64)
    sub = _rows(out, hit_t, buffer)  # gathered while the tile is in cache
    gmax = group_maxima(sub, scratch)
    r, g = np.nonzero(gmax.cpu().numpy() >= row_thr[:, None])
    cols = g[:, None] * _GROUP + np.arange(_GROUP)
    if width % _GROUP == 0:
        # Whole groups: each passing group is one contiguous run of the row, gathered as a block (the same entries
        # as the element-wise gather below, several times faster).
        bits = sub.cpu().view(torch.int16).numpy().reshape(sub.shape[0], width // _GROUP, _GROUP)[r, g]
        values = (bits.astype(np.int32) << 16).view(np.float32)
        rr, cc = np.nonzero(values >= row_thr[r, None])
        return hit[r[rr]], cols[rr, cc], values[rr, cc].astype(np.float64)
    inside = cols < width  # the last, narrower group
    np.minimum(cols, width - 1, out=cols)
    values = _widen(sub.cpu(), r[:, None], cols)
    rr, cc = np.nonzero((values >= row_thr[r, None]) & inside)
    return hit[r[rr]], cols[rr, cc], values[rr, cc].astype(np.float64)


def group_maxima(sub: torch.Tensor, scratch: torch.Tensor | None = None) -> torch.Tensor:
    """Float32 maxima of the ``_GROUP``-wide column groups of each row of a bf16 tile (the last group may be narrower).

    The rows are widened to float32 a block at a time (into ``scratch``, flat float32, when given) and reduced
    there: torch's CPU reductions run several times faster on float32 than on bf16, and widening is exact, so
    the maxima are the bf16 maxima's values.
    """
    rows, width = sub.shape
    full = width // _GROUP
    gmax = torch.empty((rows, full + (1 if width % _GROUP else 0)), dtype=torch.float32, device=sub.device)
    if scratch is None:
        scratch = torch.empty(GROUP_SCRATCH_ROWS * width, dtype=torch.float32, device=sub.device)
    step = max(1, scratch.numel() // width)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        wide = flat_view(scratch, r1 - r0, width)
        wide.copy_(sub[r0:r1])
        torch.amax(wide[:, : full * _GROUP].reshape(r1 - r0, full, _GROUP), dim=2, out=gmax[r0:r1, :full])
        if width % _GROUP:
            gmax[r0:r1, full] = wide[:, full * _GROUP :].amax(dim=1)
    return gmax


def flat_view(buffer: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """The first ``rows * cols`` entries of a flat buffer as a contiguous ``(rows, cols)`` tensor."""
    return buffer[: rows * cols].view(rows, cols)


def _rows(tile: torch.Tensor, rows: torch.Tensor, buffer: torch.Tensor | None) -> torch.Tensor:
    """``tile[rows]``, written into the front of ``buffer`` (flat) when given."""
    if buffer is None:
        return tile[rows]
    return torch.index_select(tile, 0, rows, out=flat_view(buffer, rows.numel(), tile.shape[1]))


def _widen(tile: torch.Tensor, *index: np.ndarray) -> np.ndarray:
    """bf16 entries (all, or ``tile[index]``) as float32: the same bits, widened (numpy, no torch call per group)."""
    bits = tile.view(torch.int16).numpy()
    if index:
        bits = bits[index]
    return (bits.astype(np.int32) << 16).view(np.float32)


def bf16_bits(x32: np.ndarray) -> np.ndarray:
    """Bits of ``x32`` (finite float32) rounded to bf16, to nearest even, as ``Tensor.to(torch.bfloat16)`` rounds."""
    b = x32.view(np.uint32)
    return ((b + (0x7FFF + ((b >> 16) & 1))) >> 16).astype(np.uint16)


def widen_bits(bits: np.ndarray) -> np.ndarray:
    """bf16 bits as the float32 values they stand for (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)
