"""Both sets made ready for a search: centred float32 copies, and exact float64 distances of the winners.

FAISS (and the torch search) evaluate ``||q||^2 + ||r||^2 - 2 q.r`` in float32, which loses precision when the data
sit far from the origin. So both sets are first centred on the reference mean, the neighbours are *selected* in
float32, and the winners' distances are recomputed in float64 as ``||q - r||^2``. Queries whose nearest neighbour is
too close for float32 to rank are found by :func:`needs_float64_ranking` (the search re-ranks them in float64).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from lightning_repgap._threads import current_threads

__all__ = [
    "Prepared",
    "bank_centre",
    "centred32",
    "centred_aug32",
    "needs_float64_ranking",
    "pair_dist_sq",
    "prepare",
    "row_sq_norms",
    "rows_sum_sq64",
    "winner_distances",
    "with_norm_column",
]

# A nearest neighbour closer than this many float32 rounding errors is re-ranked in float64.
_FLOAT32_RANKING_MARGIN = 1000.0


@dataclass(frozen=True)
class Prepared:
    r"""Both sets ready for the search: centred float32 copies, plus what exact float64 distances need.

    The centred bank is stored once, *augmented* with a last column :math:`-\lVert r \rVert^2 / 2` (computed in
    float64): the torch backend's GEMM tiles read it as is, so the search holds no second bank-sized copy, and
    :attr:`reference32` is a zero-copy view of its first ``D`` columns.

    The bank and the queries are kept as given (float16, float32 or float64) rather than as float64 copies: exact
    distances are only ever needed for a few winners per query, so ``q - r`` is computed in float64 from the rows
    concerned (upcasting is exact, no centring needed for the difference).

    Example:
        >>> import numpy as np
        >>> prep = prepare(np.array([[0.0, 0.0], [2.0, 0.0]]), np.array([[1.0, 1.0]]))
        >>> prep.reference32.tolist(), prep.dist_sq(np.array([[1]])).tolist()
        ([[-1.0, 0.0], [1.0, 0.0]], [[2.0]])


    """

    reference: np.ndarray
    queries: np.ndarray
    reference_aug32: np.ndarray
    queries32: np.ndarray
    centre: np.ndarray
    rows: np.ndarray | None = None  # bank position -> row of ``reference`` (None: the identity)
    # Float64 ||r||^2 of every centred bank row, when ``prepare`` summed them while centring (``sq_norms=True``).
    sq_norms64: np.ndarray | None = None

    def bank_rows(self, index: np.ndarray) -> np.ndarray:
        """Rows of ``reference`` (as given, float32 or float64) at bank positions ``index``."""
        return self.reference[index if self.rows is None else self.rows[index]]

    @cached_property
    def reference_sq_sum(self) -> float:
        """``sum_i ||r_i||^2`` over the centred float32 bank, in float64; computed once, on first use.

        Each row's squared norm is taken in float64 and the rows are summed exactly rounded (:func:`math.fsum`), so
        the sum does not depend on the order of the rows or on how they are split: a bank shared among DDP ranks
        gives the same bits (:mod:`lightning_repgap._shard`). Not read off the ``-||r||^2 / 2`` column: those
        per-row float32 sums are good for ranking but would cost ``gap_norm`` about 1e-8 of relative precision.
        The row norms come from :attr:`sq_norms64` when the centring pass made them (the same bits: the same
        ``row_sq_norms`` of the same rows, computed while they were in cache instead of in a second pass).
        """
        norms = row_sq_norms(self.reference32) if self.sq_norms64 is None else self.sq_norms64
        return math.fsum(norms)

    @cached_property
    def queries_sq_norms64(self) -> np.ndarray:
        """Float64 ``||q||^2`` of every centred float32 query (:func:`row_sq_norms`); computed once, on first use.

        Read by :func:`needs_float64_ranking` and by the concentration's block (the same bits as its own norms of the
        block's rows: a row's value depends only on the row).
        """
        return row_sq_norms(self.queries32)

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
        # The query rows are gathered a step at a time inside pair_dist_sq, not copied here as a whole first.
        return pair_dist_sq(self.reference, self.queries, index if self.rows is None else self.rows[index], rows)


#: Columns per BLAS dot in :func:`rows_sum_sq64`: OpenBLAS splits a ``ddot`` of more than 10,000 elements among its
#: threads on x86-64, and the split (hence the bits) then follows its thread count; blocks of 8,192 never are split.
#: The thread-count independence is OpenBLAS's (numpy's PyPI wheels); a numpy built on MKL or Accelerate may thread
#: or order a dot differently.
DOT_COLUMNS = 8192


def rows_sum_sq64(diff: np.ndarray) -> np.ndarray:
    """``sum_j diff[i, j]**2`` of every row of a float64 array with unit column stride: the package's float64 norm.

    Each row is a BLAS ``ddot`` of itself (numpy's ``matmul`` of a row by a column), on blocks of ``DOT_COLUMNS``
    columns added in order: the value of a row depends only on that row (not on the other rows, their number,
    the memory alignment or the thread count), so every caller that scores the same difference (winners, the
    neighbour table, the bf16 screen's re-scoring, a DDP rank's merge) gets the same bits. The reduction order is
    the BLAS kernel's: against numpy's ``einsum`` (used before) values differ at float64 rounding level (a few
    ``1e-16`` relative; both are within ``D`` rounding errors of the exact sum), and a ``ddot`` reads the row at
    memory speed where ``einsum``'s kernel is latency-bound (about 3x faster at ``D = 10,000``).

    Example:
        >>> rows_sum_sq64(np.array([[3.0, 4.0], [1.0, 0.0]])).tolist()
        [25.0, 1.0]

    """
    if diff.dtype != np.float64:
        raise TypeError(f"rows_sum_sq64 needs a float64 array, got {diff.dtype}")
    if diff.ndim != 2:
        raise ValueError(f"rows_sum_sq64 needs a 2-d array, got shape {diff.shape}")
    if diff.shape[1] > 1 and diff.strides[1] != diff.itemsize:
        # a strided row goes through BLAS's strided ddot, which sums in another order: keep one kernel
        diff = np.ascontiguousarray(diff)
    out = np.matmul(diff[:, None, :DOT_COLUMNS], diff[:, :DOT_COLUMNS, None]).reshape(diff.shape[0])
    for c in range(DOT_COLUMNS, diff.shape[1], DOT_COLUMNS):
        block = diff[:, c : c + DOT_COLUMNS]
        out += np.matmul(block[:, None, :], block[:, :, None]).reshape(diff.shape[0])
    return out


#: Query rows per batch of :func:`pair_dist_sq` at most.
PAIR_QUERY_STEP = 256
# Bytes of float64 differences per batch of :func:`pair_dist_sq` (a batch is one gather, one subtraction and one
# row dot per pair of the batch); the query rows, the differences and the gathered rows then stay in a core's cache.
_PAIR_BYTES = 1 << 19
# Batches of query rows per step (a step is what one thread scores at a time, with buffers allocated once).
_PAIR_BATCHES = 16


def pair_dist_sq(
    reference: np.ndarray, queries: np.ndarray, index: np.ndarray, query_rows: np.ndarray | None = None
) -> np.ndarray:
    """Exact float64 ``||queries[i] - reference[index[i, l]]||^2``, ``inf`` where ``index[i, l] < 0`` (no row).

    The one place the package scores query/row pairs in float64 (winners, neighbour tables, the DDP merge). Each
    entry is computed on its own (``float64(q) - float64(r)``, then :func:`rows_sum_sq64` of that row), so neither
    the batches, nor the missing entries, nor the threads that share the steps (:func:`parallel_steps`) change any
    value.

    Args:
        reference: ``(N, D)`` rows as given (float32 or float64).
        queries: ``(m, D)`` queries as given.
        index: ``(m, k)`` rows of ``reference`` per query (``-1``: none).
        query_rows: score ``queries[query_rows[i]]`` on line ``i`` of ``index`` instead of ``queries[i]``: the rows
            are gathered one batch at a time (a neighbour table's 1,024 queries at ``D = 10^4`` would otherwise be a
            40 MB copy first); the values are the same.

    Returns:
        float64 array shaped like ``index``.

    Example:
        >>> pair_dist_sq(np.eye(2), np.zeros((1, 2)), np.array([[1, -1]])).tolist()
        [[1.0, inf]]

    """
    m, k = index.shape
    dim = queries.shape[1]
    out = np.empty(index.shape, dtype=np.float64)
    if out.size == 0 or reference.shape[0] == 0:
        out.fill(np.inf)
        return out
    rows, cols = _pair_batch(dim, k)
    # Up to _PAIR_BATCHES batches per step, fewer where that leaves threads without a step (at a small D with k = 1
    # a step is 4,096 queries: 4 steps for 8 threads at the threading threshold). Each entry is scored on its own,
    # so the steps change no value.
    threads = step_threads(index.size * dim)
    step = rows * max(1, min(_PAIR_BATCHES, -(-m // (rows * threads))))

    def run(i0: int) -> None:
        # A batch is ``rows`` queries x ``cols`` of their columns: each query row is widened once per batch of
        # rows and reused for all its columns (at D = 10^4 a batch is one query and five of its 20 neighbours), the
        # bank rows are gathered straight into a buffer of their dtype, widened (exact) and subtracted from the
        # query broadcast over its columns: float64(q) - float64(r), the bits of a float64 subtraction of the pair.
        q64_buf = np.empty(rows * dim, dtype=np.float64)
        diff_buf = np.empty(rows * cols * dim, dtype=np.float64)
        # float64 rows are gathered straight into the differences; narrower ones into a buffer of their dtype first.
        wide = reference.dtype == np.float64
        gathered_buf = diff_buf if wide else np.empty(diff_buf.size, dtype=reference.dtype)
        for r0 in range(i0, min(m, i0 + step), rows):
            nr = min(m, r0 + rows) - r0
            q64 = q64_buf[: nr * dim].reshape(nr, 1, dim)
            np.copyto(q64[:, 0], queries[r0 : r0 + nr] if query_rows is None else queries[query_rows[r0 : r0 + nr]])
            for c0 in range(0, k, cols):
                nc = min(cols, k - c0)
                diff = diff_buf[: nr * nc * dim].reshape(nr, nc, dim)  # contiguous: one row per pair
                gathered = gathered_buf[: diff.size].reshape(diff.shape)
                # mode="clip": numpy's default "raise" gathers through a temporary even with out=; a missing entry
                # (-1) gathers row 0, whose value is replaced by inf below.
                np.take(reference, index[r0 : r0 + nr, c0 : c0 + nc], axis=0, out=gathered, mode="clip")
                if not wide:
                    np.copyto(diff, gathered)
                np.subtract(q64, diff, out=diff)
                out[r0 : r0 + nr, c0 : c0 + nc] = rows_sum_sq64(diff.reshape(nr * nc, dim)).reshape(nr, nc)

    parallel_steps(run, range(0, m, step), index.size * dim)
    out[index < 0] = np.inf
    return out


def _pair_batch(dim: int, k: int) -> tuple[int, int]:
    """Query rows and columns per batch of :func:`pair_dist_sq`: about ``_PAIR_BYTES`` of float64 differences.

    All ``k`` columns of a query when they fit (then several query rows), else the line in equal parts that fit
    (at least one column each).
    """
    pairs = max(1, _PAIR_BYTES // (8 * max(1, dim)))
    cols = -(-k // -(-k // pairs)) if k > pairs else max(1, k)
    return max(1, min(PAIR_QUERY_STEP, pairs // cols)), cols


#: Float64 elements of work below which :func:`parallel_steps` stays on the calling thread.
PARALLEL_MIN_WORK = 1 << 22


def step_threads(work: int) -> int:
    """Threads :func:`parallel_steps` shares ``work`` multiply-adds among: the measurement's, or 1 when small."""
    return current_threads() if work >= PARALLEL_MIN_WORK else 1


def parallel_steps(run: Callable[[int], None], starts: range, work: int) -> None:
    """``run(i0)`` for every ``i0`` of ``starts``, on the measurement's thread count (torch's) when ``work`` is large.

    numpy's subtraction and row dots release the GIL, so the float64 scoring steps of disjoint output rows run in
    parallel (about 1.8x on two cores at ``D = 10,000``); each step writes only its own rows, so the values are
    the same bits as on one thread.
    """
    threads = min(step_threads(work), len(starts))
    if threads <= 1:
        for i0 in starts:
            run(i0)
        return
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(run, starts):  # re-raises a step's error
            pass


# Rows centred per step in ``prepare``: bounds the float64 temporary to 32 MiB for D = 256 (plus the gathered chunk).
_CENTRE_CHUNK = 16384
# ... and at most this many float32 bytes per step, so that a gathered chunk stays small at a large D (16 MiB).
_CENTRE_CHUNK_BYTES = 1 << 24
# Bytes of rows centred at a time inside a step (and gathered, in bank order, into one buffer).
_GATHER_BYTES = 1 << 19
# numpy's einsum buffer (elements): over more columns, the float32 row sum of a block of ONE row differs from the
# same row's in a block of 2 or more rows (which agree whatever their count); checked on numpy 1.26.4, 2.2.6, 2.4.6.
_EINSUM_BUFFER = 8192


def _centre_step(dim: int) -> int:
    """Rows per centring step: ``_CENTRE_CHUNK``, fewer at a large ``D`` (rows are independent: no value changes)."""
    return max(1, min(_CENTRE_CHUNK, _CENTRE_CHUNK_BYTES // max(1, 4 * dim)))


def _threaded_centre_step(dim: int, n: int) -> int:
    """Rows per centring step when the steps share the measurement's threads (:func:`parallel_steps`).

    Each thread holds one gathered chunk at a time, so the step shrinks with the thread count to keep the
    temporaries at ``_CENTRE_CHUNK_BYTES`` in all; rows are independent, so neither changes any value.
    """
    return max(1, _centre_step(dim) // max(1, step_threads(n * dim)))


def _subtrahend(x: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The centre to subtract from ``x``: in float32 when that gives the same float32 result as float64 would.

    For float16/float32 data and a centre that float32 holds exactly, ``x - centre`` is exact in float64 and then
    rounded once, which is precisely what a float32 subtraction does, without float64 buffers (faster, see
    ``docs/performance.md``).
    """
    if x.dtype == np.float64:
        return centre
    centre32 = centre.astype(np.float32)
    return centre32 if np.array_equal(centre32, centre) else centre


def centred32(x: np.ndarray, centre: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """``(x - centre)`` as C-contiguous float32, chunk by chunk, rounded once (precision far from 0).

    With ``rows``, the result holds ``x[rows]`` in that order, gathered chunk by chunk (no gathered copy of it all).
    """
    n = x.shape[0] if rows is None else rows.size
    out = np.empty((n, x.shape[1]), dtype=np.float32)
    c = _subtrahend(x, centre)
    step = _threaded_centre_step(x.shape[1], n)

    def run(i0: int) -> None:
        chunk = x[i0 : i0 + step] if rows is None else x[rows[i0 : i0 + step]]
        np.subtract(chunk, c, out=out[i0 : i0 + step], casting="unsafe")

    parallel_steps(run, range(0, n, step), n * x.shape[1])
    return out


def centred_aug32(
    x: np.ndarray,
    centre: np.ndarray,
    rows: np.ndarray | None = None,
    sq_norms64: np.ndarray | None = None,
    *,
    small_pages: bool = False,
) -> np.ndarray:
    """``[x - centre, -||x - centre||^2 / 2]`` as one C-contiguous float32 ``(n, D + 1)`` array, built in chunks.

    The difference is rounded to float32 once (as in :func:`centred32`); the norm column is summed from
    those float32 values, like the GEMM scores it is added to. With ``rows``, the result holds ``x[rows]`` in that
    order, gathered chunk by chunk: no reordered copy of the bank is ever materialised. A float64 ``(n,)``
    ``sq_norms64`` is filled with :func:`row_sq_norms` of the centred rows on the way (a chunk is still in cache).

    ``small_pages``: the output comes from torch's allocator (ordinary pages) instead of numpy's, which asks Linux
    for huge pages. Where the kernel compacts memory to find them (transparent huge pages with ``defrag`` on
    ``madvise``, on a fragmented host), a fresh bank-sized buffer can cost 0.1 s of system time; a DDP rank, which
    has just allocated the gathered bank too, paid that in most of its measurements (``docs/performance.md``).

    Raises:
        IndexError: ``rows`` holds an index ``x[rows]`` would reject (outside ``-len(x)`` to ``len(x) - 1``).
    """
    if rows is not None and rows.size and not -x.shape[0] <= int(rows.min()) <= int(rows.max()) < x.shape[0]:
        # checked here, not only by ``bank_centre``: mode="wrap" below would wrap a bad row silently
        raise IndexError(f"centred_aug32: rows must index the {x.shape[0]} rows of x, got {rows.min()}..{rows.max()}")
    n, dim = (x.shape[0] if rows is None else rows.size), x.shape[1]
    if small_pages:
        import torch  # a DDP rank has it loaded already

        out = torch.empty((n, dim + 1), dtype=torch.float32).numpy()
    else:
        out = np.empty((n, dim + 1), dtype=np.float32)
    c = _subtrahend(x, centre)
    step = _threaded_centre_step(dim, n)
    # A step is centred a block at a time (about _GATHER_BYTES of rows), so that the norm column and the float64 norms
    # read rows still in cache; with ``rows`` each block is gathered into one buffer per step (no fresh chunk-sized
    # temporary; mode="wrap" indexes as ``x[rows]`` does, rows out of range were rejected above). Every row's values
    # are the same bits whatever the block, the step and the thread count: the operations are row by row, and the
    # norm column is einsum's row sum of a block of at least 2 rows (see _norm_column: a lone row is summed twice, so
    # above its 8,192 columns a block has 2 rows at least, and only a step's last row can be left alone).
    block = max(2 if dim > _EINSUM_BUFFER else 1, min(step, _GATHER_BYTES // (x.itemsize * max(1, dim))))

    def run(i0: int) -> None:
        i1 = min(n, i0 + step)
        buf = None if rows is None else np.empty((min(block, i1 - i0), dim), dtype=x.dtype)
        pair = np.empty((2, dim), dtype=np.float32) if dim > _EINSUM_BUFFER else None
        for b0 in range(i0, i1, block):
            b1 = min(i1, b0 + block)
            if rows is None or buf is None:
                chunk = x[b0:b1]
            else:
                chunk = np.take(x, rows[b0:b1], axis=0, out=buf[: b1 - b0], mode="wrap")
            part = out[b0:b1]
            np.subtract(chunk, c, out=part[:, :dim], casting="unsafe")
            _norm_column(part, pair)
            if sq_norms64 is not None:
                sq_norms64[b0:b1] = row_sq_norms(part[:, :dim])

    parallel_steps(run, range(0, n, step), n * dim)
    return out


def _norm_column(part: np.ndarray, pair: np.ndarray | None) -> None:
    """Fill the last column of float32 ``[r, .]`` rows with ``-||r||^2 / 2``: numpy's einsum row sums, in float32.

    Above ``_EINSUM_BUFFER`` columns einsum's float32 sum of a block of ONE row differs in the last bits from the
    same row's in a block of 2 or more rows (numpy's iterator takes another path for a lone row), and every block of
    2 or more rows gives each row the same bits (observed for blocks of 2 to 64 rows at D = 8,193 to 200,001, numpy
    1.26.4, 2.2.6 and 2.4.6; tests/test_shared_work.py checks it on the installed numpy). So a one-row block is
    summed as the first row of a 2-row ``pair`` scratch holding it twice: the bits a row gets in any other block,
    whatever the steps, blocks and thread count that left it alone.
    """
    dim = part.shape[1] - 1
    if part.shape[0] == 1 and pair is not None:
        pair[0] = part[0, :dim]
        pair[1] = pair[0]
        part[0, dim] = np.einsum("ij,ij->i", pair, pair)[0]
    else:
        part[:, dim] = np.einsum("ij,ij->i", part[:, :dim], part[:, :dim])
    part[:, dim] *= -0.5


def with_norm_column(reference32: np.ndarray) -> np.ndarray:
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


# Bytes of float64 rows widened at a time by :func:`row_sq_norms` (a buffer that stays in cache).
_NORM_BYTES = 1 << 18


def row_sq_norms(x32: np.ndarray) -> np.ndarray:
    """Float64 ``||x_i||^2`` of every row of a float32 array (the same bits for a row wherever it is stored).

    Rows are widened to float64 (exact) a block at a time and summed by :func:`rows_sum_sq64`, the package's one
    float64 norm; numpy's mixed-precision ``einsum`` (used before; values differ at float64 rounding level) was
    about twice as slow at ``D >= 256``.
    """
    n, dim = x32.shape
    out = np.empty(n, dtype=np.float64)
    rows = max(1, min(4096, _NORM_BYTES // (8 * max(1, dim))))  # the buffer stays at most _NORM_BYTES (or one row)
    buf = np.empty((min(rows, n), dim), dtype=np.float64)
    for i0 in range(0, n, rows):
        block = buf[: min(rows, n - i0)]
        np.copyto(block, x32[i0 : i0 + rows])
        out[i0 : i0 + block.shape[0]] = rows_sum_sq64(block)
    return out


def bank_centre(reference: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """The centre :func:`prepare` uses: the float64 mean of ``reference[rows]``, float32-rounded for float32 data.

    Example:
        >>> bank_centre(np.array([[0.0, 1.0], [2.0, 3.0], [9.0, 9.0]]), rows=np.array([0, 1])).tolist()
        [1.0, 2.0]

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
    return centre


def prepare(
    reference: np.ndarray,
    queries: np.ndarray,
    rows: np.ndarray | None = None,
    *,
    sq_norms: bool = False,
    small_pages: bool = False,
) -> Prepared:
    """Centre both sets on the bank mean (computed in float64) and make the float32 copies the search uses.

    For a float16/float32 bank the centre is that mean rounded to float32: a translation, so no distance changes,
    and both sets are then centred in float32 with the result float64 arithmetic would round to.

    Args:
        reference: ``(N, D)`` bank as given.
        queries: ``(m, D)`` queries.
        rows: use ``reference[rows]``, in that order, as the bank (e.g. a random order, or only a prefix of it)
            without ever materialising that reordered copy; default the whole of ``reference`` as given.
        sq_norms: also sum the centred rows' float64 squared norms while centring (for
            :attr:`Prepared.reference_sq_sum`, which otherwise reads the bank again when first used).
        small_pages: allocate the centred bank through torch (ordinary pages) instead of numpy, which asks Linux for
            huge pages; see :func:`centred_aug32`. A DDP rank sets it (:mod:`lightning_repgap._shard`).

    Returns:
        A :class:`Prepared`.

    Example:
        >>> import numpy as np
        >>> prepare(np.array([[1e4, 1.0], [1e4, 3.0]]), np.array([[1e4, 2.0]])).queries32.tolist()
        [[0.0, 0.0]]


    """
    centre = bank_centre(reference, rows)
    norms = np.empty(reference.shape[0] if rows is None else rows.size) if sq_norms else None
    return Prepared(
        reference=reference,
        queries=queries,
        reference_aug32=centred_aug32(reference, centre, rows, norms, small_pages=small_pages),
        queries32=centred32(queries, centre),
        centre=centre,
        rows=rows,
        sq_norms64=norms,
    )


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
        >>> prep = prepare(np.array([[0.0], [1.0]]), np.array([[1e-9], [0.5]]))
        >>> needs_float64_ranking(prep, np.array([1e-18, 0.25])).tolist()
        [0]

    """
    q_sq = prepared.queries_sq_norms64
    r_sq = prepared.reference_sq_sum / max(1, prepared.reference_aug32.shape[0])
    tolerance = _FLOAT32_RANKING_MARGIN * np.finfo(np.float32).eps * (q_sq + r_sq)
    return np.flatnonzero((nearest_dist_sq > 0) & (nearest_dist_sq < tolerance))


def winner_distances(
    prep: Prepared,
    winners: np.ndarray,
    rows: np.ndarray | None = None,
    known: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Float64 distance ``(S, len(rows))`` of each query (``rows``, default all) to its winner at every size.

    ``winners`` are ``(S, len(rows))`` bank positions; only where the winner changed from the previous size is a
    distance recomputed. ``known`` = ``(queries, positions, dist_sq)``: float64 distances already computed by
    :meth:`Prepared.dist_sq` for the ``(r, k)`` bank positions of ``r`` queries (a neighbour table); winners found
    there are read from it (the same bits), not scored again.

    Example:
        >>> prep = prepare(np.array([[3.0], [1.0]]), np.array([[0.0]]))
        >>> winner_distances(prep, np.array([[0], [1]])).ravel().tolist()
        [9.0, 1.0]

    """
    lookup = None if known is None else _PairLookup(winners.shape[1] if rows is None else None, rows, *known)

    def dist(changed: np.ndarray, positions: np.ndarray) -> np.ndarray:
        query_rows = changed if rows is None else rows[changed]
        out = np.empty(changed.size)
        todo = np.arange(changed.size)
        if lookup is not None:
            found, values = lookup.find(query_rows, positions)
            out[found] = values
            todo = np.flatnonzero(~found)
        if todo.size:
            out[todo] = prep.dist_sq(positions[todo][:, None], rows=query_rows[todo])[:, 0]
        return out

    per_query = np.empty(winners.shape, dtype=np.float64)
    per_query[0] = dist(np.arange(winners.shape[1]), winners[0])
    for s in range(1, winners.shape[0]):
        changed = np.flatnonzero(winners[s] != winners[s - 1])
        per_query[s] = per_query[s - 1]
        per_query[s, changed] = dist(changed, winners[s, changed])
    return per_query


class _PairLookup:
    """Float64 distances of known ``(query, bank position)`` pairs (a neighbour table), found by query and position."""

    def __init__(
        self, m: int | None, rows: np.ndarray | None, queries: np.ndarray, positions: np.ndarray, dist_sq: np.ndarray
    ) -> None:
        size = int(max(queries.max(initial=-1), -1 if rows is None else rows.max(initial=-1))) + 1
        self.slot = np.full(max(size, m or 0), -1, dtype=np.int64)
        self.slot[queries] = np.arange(queries.size)
        self.positions = positions
        self.dist_sq = dist_sq

    def find(self, query_rows: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which pairs are known (bool per pair) and their distances (for the known ones, in order)."""
        slot = self.slot[query_rows] if query_rows.size else np.zeros(0, dtype=np.int64)
        has = np.flatnonzero(slot >= 0)
        match = self.positions[slot[has]] == positions[has, None]  # (pairs, k)
        hit = match.any(axis=1)
        found = np.zeros(query_rows.size, dtype=bool)
        found[has[hit]] = True
        values = self.dist_sq[slot[has[hit]], match[hit].argmax(axis=1)]
        return found, values
