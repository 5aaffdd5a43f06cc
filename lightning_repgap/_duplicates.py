"""Copies inside the bank: exact copies by hashing rows, near copies from the neighbour table.

Copies in the bank bias every nearest-neighbour estimator: TwoNN's ratio ``r2 / r1`` is 1 when the two nearest
neighbours are a point and its copy, and the gap curve's prefixes hold fewer distinct points than their size. So,
as DADApy does with identical points, exact copies are removed from the bank before the search (:func:`exact_copies`,
O(n) hashing, no search), and the neighbour table that TwoNN and MLE read is reduced to each query's nearest
*distinct* neighbours (:func:`distinct_neighbours`), which also merges near copies.

**Near copy.** Two bank points whose squared distance is at most ``DUP_RTOL * scale`` (``scale`` = the mean squared
distance between two bank points, :data:`lightning_repgap.gap.DUP_RTOL` = 1e-9), the same tolerance as ``dup_frac``:
plain distances closer than about 3e-5 of the typical distance. In a query's row of neighbours (nearest first), a
neighbour within that tolerance of the one before it is the same point and is merged with it; the check reads the
two bank rows themselves (the table records which rows they are), so distinct points at tied distances from the
query are never merged. The share of table entries with such a copy estimates the bank's share of near copies.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator

import numpy as np

from lightning_repgap._faults import TooFewDistinctSizesError, TooFewFitSizesError
from lightning_repgap._local_dimension import DuplicatePointsWarning
from lightning_repgap._prepare import parallel_steps, step_threads

# Bytes hashed per step: what one thread hashes at a time (a step is a task of the measurement's threads).
_HASH_CHUNK_BYTES = 1 << 22
# Bytes of a step's rows hashed at once: its two temporaries (the -0.0 -> +0.0 copy as 64-bit words, and a shift of
# them) are made once per step at this size, so that every pass over the rows reads and writes a core's cache
# (1e6 x 256 float32 on the Intel host, 2 MiB L2: 256 KiB / 512 KiB / 1 MiB took 0.29 / 0.29 / 0.33 s on one thread,
# 0.24 / 0.19 / 0.20 s on two; 4 MiB steps hashed whole, as before, 0.47 / 0.25 s).
_HASH_BLOCK_BYTES = 1 << 19
#: Rows of the neighbour table compared at a time in :func:`near_copies` (bounded float64 temporaries).
_CHUNK_ROWS = 256
_MIX = np.uint64(0x9E3779B97F4A7C15)
_SHIFT = np.uint64(31)


def _row_hashes(x: np.ndarray) -> tuple[np.ndarray, float]:
    """One 64-bit hash per row of a 2-D array (``-0.0`` and ``+0.0`` hash alike), vectorised; and ``max |x|``.

    Each row's bytes are read as 64-bit words (zero-padded to a whole word); every word is multiplied by its own
    random odd constant, mixed with a shift (so that differences cannot cancel linearly across words), multiplied by
    one more odd constant and the words are summed modulo 2**64 (the last product is taken once, of the sum: the
    same value). Equal rows always hash alike; :func:`exact_copies` compares rows that share a hash value
    by value. The largest magnitude (what :func:`lightning_repgap._scale.unit_exponent` needs) is read from the same
    rows while they are in cache, which spares the measurement a pass over the bank.

    Each step hashes its rows a cache-sized block at a time, in place in two buffers of its own (no temporary per
    operation): the hash of a row depends only on the row, so neither blocks, steps nor threads change it.

    Expects what the callers' input checks leave: a floating-point array (float16 / 32 / 64) with at least one column
    and finite values (a NaN would not propagate into the returned magnitude).
    """
    width = x.shape[1] * x.dtype.itemsize
    words = -(-width // 8)
    mult = np.random.default_rng(0x5EED).integers(1, 2**63, size=words, dtype=np.uint64) | np.uint64(1)
    out = np.empty(x.shape[0], dtype=np.uint64)
    work = x.shape[0] * words
    # The steps share the measurement's threads (numpy releases the GIL; each step writes its own rows and the
    # maximum does not depend on the order).
    step = max(1, _HASH_CHUNK_BYTES // max(1, words * 8 * step_threads(work)))
    block = max(1, min(step, _HASH_BLOCK_BYTES // (words * 8)))
    peaks: dict[int, float] = {}

    def run(i0: int) -> None:
        i1 = min(x.shape[0], i0 + step)
        rows = min(block, i1 - i0)
        raw = np.empty((rows, words * 8), dtype=np.uint8)
        values = raw[:, :width].view(x.dtype)  # the row's values, in the words' first bytes
        shifted = np.empty((rows, words), dtype=np.uint64)
        peak = 0.0
        for b0 in range(i0, i1, block):
            chunk = x[b0 : min(i1, b0 + block)]
            r = chunk.shape[0]
            # max |x| as max(max x, -min x): one of the |x|, no temporary
            peak = max(peak, float(chunk.max(initial=0.0)), -float(chunk.min(initial=0.0)))
            np.add(chunk, 0.0, out=values[:r])  # -0.0 -> +0.0
            raw[:r, width:] = 0  # the last word's padding (the previous block's hashing wrote over it)
            v = raw[:r].view(np.uint64)
            np.multiply(v, mult, out=v)  # wraps modulo 2**64, as intended
            np.right_shift(v, _SHIFT, out=shifted[:r])
            np.bitwise_xor(v, shifted[:r], out=v)
            # sum_w(_MIX * y_w) = _MIX * sum_w(y_w) modulo 2**64: one product per row instead of one per word
            np.add.reduce(v, axis=1, dtype=np.uint64, out=out[b0 : b0 + r])
            np.multiply(out[b0 : b0 + r], _MIX, out=out[b0 : b0 + r])
        peaks[i0] = peak

    parallel_steps(run, range(0, x.shape[0], step), work)
    return out, max((peaks[i0] for i0 in sorted(peaks)), default=0.0)  # in row order, whatever thread ends first


def exact_copies(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Rows to keep (first occurrence of each distinct row, in order) and the share of rows that have a copy.

    :func:`exact_copies_and_peak` also returns ``max |x|``, from the same pass.

    Rows are hashed (O(n D), vectorised, no search); rows sharing a hash are then compared value by value, so a
    hash collision never merges distinct rows.

    Args:
        x: ``(n, D)`` float array.

    Returns:
        ``(keep, dup_share)``: sorted int64 row indices of the first occurrence of every distinct row, and the
        fraction of rows equal to at least one other row.

    Example:
        >>> x = np.array([[0.0, 1.0], [2.0, 3.0], [0.0, 1.0], [-0.0, 1.0]])
        >>> keep, share = exact_copies(x)
        >>> keep.tolist(), share
        ([0, 1], 0.75)

    """
    keep, share, _ = exact_copies_and_peak(x)
    return keep, share


def exact_copies_and_peak(x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """:func:`exact_copies` and the largest magnitude ``max |x|`` of the array (0 when empty), in one pass.

    Example:
        >>> keep, share, peak = exact_copies_and_peak(np.array([[0.0, -3.0], [0.0, -3.0]]))
        >>> keep.tolist(), share, peak
        ([0], 1.0, 3.0)

    """
    hashes, peak = _row_hashes(x)
    keep, share = copies_from_hashes(x, hashes)
    return keep, share, peak


def drop_exact_copies(x: np.ndarray, owner: str) -> np.ndarray:
    """``x`` without its exact duplicate rows (first occurrences kept, in order), warning once how many were removed.

    A copy is not a new point of the manifold and reads as a neighbour at distance 0 (``owner`` names the caller).

    Raises:
        ValueError: when fewer than 3 distinct rows remain.

    Example:
        >>> x = np.array([[0.0], [1.0], [0.0], [2.0]])
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     drop_exact_copies(x, "demo").ravel().tolist(), str(caught[0].message)[:40]
        ([0.0, 1.0, 2.0], 'demo: 1 of 4 rows of `points` are exact ')

    """
    keep, _ = exact_copies(x)
    if keep.size == x.shape[0]:
        return x
    if keep.size < 3:
        raise ValueError(
            f"`points` holds only {keep.size} distinct rows among {x.shape[0]} (the rest are exact duplicates); a "
            "dimension estimate needs at least 3 distinct points."
        )
    warnings.warn(
        f"{owner}: {x.shape[0] - keep.size} of {x.shape[0]} rows of `points` are exact duplicates of earlier rows and "
        f"were removed; the dimension is estimated from the {keep.size} distinct points.",
        DuplicatePointsWarning,
        stacklevel=3,
    )
    return x[keep]


@contextlib.contextmanager
def rows_for_the_fit(owner: str, given: int, distinct: int, bank: int) -> Iterator[None]:
    """Re-raise a :class:`~lightning_repgap._faults.TooFewFitSizesError` with the rows it came from, of its own type.

    A function that splits ``points`` into a bank and queries (after :func:`drop_exact_copies`) knows what the bare
    fit error cannot: how many rows were given, how many were distinct, and how many formed the bank.

    Raises:
        TooFewFitSizesError: naming ``owner``, the row counts and the fit's need (a
            :class:`~lightning_repgap._faults.TooFewDistinctSizesError` stays one, with its defined keys).

    Example:
        >>> from lightning_repgap._faults import TooFewFitSizesError
        >>> try:
        ...     with rows_for_the_fit("demo", 30, 15, 12):
        ...         raise TooFewFitSizesError("too small", sizes=[12], fit_min_size=16)
        ... except TooFewFitSizesError as err:
        ...     print(str(err)[:70])
        demo: `points` has 30 rows, 15 distinct (15 exact duplicates removed);

    """
    try:
        yield
    except TooFewFitSizesError as err:
        usable = [n for n in err.sizes if n >= err.fit_min_size]
        removed = f"{given - distinct} exact duplicates removed" if given > distinct else "no exact duplicates"
        message = (
            f"{owner}: `points` has {given} rows, {distinct} distinct ({removed}); the bank ({bank} of them, the rest "
            f"are queries) gives the gap-law fit {len(usable)} of the 3 bank sizes >= fit_min_size={err.fit_min_size} "
            f"it needs (sizes {err.sizes}): give more distinct points, or use method='twonn' or 'mle', which need "
            "fewer."
        )
        if isinstance(err, TooFewDistinctSizesError):  # keep the measurement fault's type and defined keys
            raise TooFewDistinctSizesError(
                message, err.partial, sizes=err.sizes, fit_min_size=err.fit_min_size
            ) from err
        raise TooFewFitSizesError(message, sizes=err.sizes, fit_min_size=err.fit_min_size) from err


def copies_from_hashes(x: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, float]:
    """:func:`exact_copies` from the rows' hashes (``_row_hashes``, computed by anyone: a row's hash is its own).

    Rows sharing a hash are compared value by value, so neither a collision nor where the hashes came from can
    merge distinct rows. A DDP rank hashes only its block of the bank and receives the others' hashes
    (:meth:`lightning_repgap._shard.Shard.exact_copies_and_peak`). One sort first tells whether any hash repeats
    (at 10^6 rows about 8x faster than ``np.unique``'s first occurrences and inverse); only then are rows grouped.

    Example:
        >>> x = np.array([[0.0, 1.0], [2.0, 3.0], [-0.0, 1.0]])
        >>> keep, share = copies_from_hashes(x, _row_hashes(x)[0])
        >>> keep.tolist(), round(share, 3)
        ([0, 1], 0.667)

    """
    n = x.shape[0]
    ordered = np.sort(hashes)
    if not (ordered[1:] == ordered[:-1]).any():  # no two rows share a hash (the usual case): no copies
        return np.arange(n, dtype=np.int64), 0.0
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    group = first[inverse.reshape(-1)]  # candidate first occurrence of each row's hash
    candidate = np.flatnonzero(group != np.arange(n))
    # Verify: a row is a copy only if it equals its group's first row (guards against hash collisions).
    same = np.all((x[candidate] + 0.0) == (x[group[candidate]] + 0.0), axis=1)
    copy_of = np.arange(n)
    copy_of[candidate[same]] = group[candidate[same]]
    keep = np.flatnonzero(copy_of == np.arange(n)).astype(np.int64)
    has_copy = np.zeros(n, dtype=bool)
    has_copy[candidate[same]] = True
    has_copy[group[candidate[same]]] = True
    return keep, float(has_copy.mean())


def near_copies(
    bank: np.ndarray, knn_index: np.ndarray | None, tol_sq: float, dist_sq: np.ndarray | None = None
) -> np.ndarray:
    """Which neighbours in a table are copies of the neighbour before them in their row.

    Args:
        bank: the ``(n, D)`` bank the neighbour rows index.
        knn_index: ``(r, k)`` bank rows of each query's neighbours, nearest first; ``None``: nothing is known.
        tol_sq: squared distance at or below which two bank points are the same point.
        dist_sq: the ``(r, k)`` squared query-neighbour distances of the table (optional). Two copies lie at
            nearly the same distance from the query (triangle inequality), so only neighbours within
            ``sqrt(tol_sq)`` of the one before them are compared in ``D`` dimensions: usually none.

    Returns:
        ``(r, k)`` bool, ``True`` where a neighbour lies within the tolerance of the one before it (column 0 never).

    Example:
        >>> bank = np.array([[0.0], [1.0], [1.0 + 1e-9], [3.0]])
        >>> near_copies(bank, np.array([[1, 2, 0, 3]]), 1e-12).tolist()
        [[False, True, False, False]]

    """
    if knn_index is None:
        return np.zeros((0, 0), dtype=bool)
    out = np.zeros(knn_index.shape, dtype=bool)
    if dist_sq is not None:
        dist = np.sqrt(np.asarray(dist_sq, dtype=np.float64))
        # |d_j - d_{j-1}| <= ||b_j - b_{j-1}||: a pair further apart in distance cannot be a copy (slack for rounding).
        slack = math.sqrt(max(tol_sq, 0.0)) * (1.0 + 1e-6) + 1e-12 * float(dist.max(initial=0.0))
        candidate = np.zeros(knn_index.shape, dtype=bool)
        candidate[:, 1:] = np.diff(dist, axis=1) <= slack
    else:
        candidate = np.ones(knn_index.shape, dtype=bool)
    for j in range(1, knn_index.shape[1]):
        rows = np.flatnonzero(candidate[:, j])
        for i0 in range(0, rows.size, _CHUNK_ROWS):  # a bounded float64 difference at a time, not (r, k, D)
            chunk = rows[i0 : i0 + _CHUNK_ROWS]
            a, b = knn_index[chunk, j], knn_index[chunk, j - 1]
            diff = bank[a].astype(np.float64) - bank[b].astype(np.float64)
            out[chunk, j] = np.einsum("ij,ij->i", diff, diff) <= tol_sq
    return out


def distinct_neighbours(dist: np.ndarray, same_as_previous: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Each row's neighbours with copies merged into one (the first, nearest, of each run of copies).

    Args:
        dist: ``(r, k)`` plain (not squared) distances, ascending per row.
        same_as_previous: ``(r, k)`` bool from :func:`near_copies` (an empty array: no copies known).

    Returns:
        ``(table, counts, near_share)``: ``(r, k)`` distances with each row's distinct neighbours moved to the left
        and ``NaN`` after them, the number of distinct neighbours per row, and the share of table entries that
        have a copy in their row (an estimate of the bank's share of points with a near copy).

    Example:
        >>> d = np.array([[1.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]])
        >>> same = np.array([[False, True, False, False], [False] * 4])
        >>> table, counts, share = distinct_neighbours(d, same)
        >>> table[0].tolist()[:3], counts.tolist(), share
        ([1.0, 2.0, 3.0], [3, 4], 0.25)

    """
    r, k = dist.shape
    if same_as_previous.shape != dist.shape or not same_as_previous.any():
        return dist, np.full(r, k, dtype=np.int64), 0.0
    kept = ~same_as_previous
    counts = kept.sum(axis=1)
    table = np.full((r, k), math.nan)
    rows, cols = np.nonzero(kept)
    position = np.cumsum(kept, axis=1)[rows, cols] - 1
    table[rows, position] = dist[rows, cols]
    # An entry has a copy when it merges with the one before it, or the one after it merges with it.
    in_group = same_as_previous.copy()
    in_group[:, :-1] |= same_as_previous[:, 1:]
    return table, counts.astype(np.int64), float(in_group.mean())


def estimator_tables(table: np.ndarray, counts: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The tables TwoNN and MLE read from a :func:`distinct_neighbours` result.

    TwoNN needs each row's first two distinct neighbours; MLE needs ``k`` of them for every row it uses, with
    ``k`` the largest count that at least 90 % of the rows reach (at most ``n_neighbors``), so a bank with many
    copies uses fewer neighbours rather than fewer points.

    Returns:
        ``(twonn_dist, mle_dist, k)``.

    Example:
        >>> table = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, np.nan]])
        >>> twonn, mle, k = estimator_tables(table, np.array([3, 2]), 3)
        >>> twonn.shape, mle.shape, k
        ((2, 2), (2, 2), 2)

    """
    twonn = table[counts >= 2, :2]
    k = int(min(n_neighbors, table.shape[1], max(2, math.floor(np.quantile(counts, 0.1))) if counts.size else 2))
    mle = table[counts >= k, :k]
    return twonn, mle, k


def effective_sizes(sizes: np.ndarray, share: float) -> np.ndarray:
    """Expected number of distinct points in each bank prefix when ``share`` of the bank are near-copy pairs.

    With ``P = share * n / 2`` pairs in a bank of ``n = sizes[-1]`` points in random order, a prefix of ``s``
    points holds both members of about ``P (s / n)^2`` pairs, hence ``s - P (s / n)^2`` distinct points. The gap
    law is a law in the number of *distinct* points, so the fit reads these sizes (exact copies were removed from
    the bank instead, and need no correction).

    Example:
        >>> effective_sizes(np.array([10, 100, 1000]), 1.0).tolist()  # every point has one copy
        [9.95, 95.0, 500.0]

    """
    n = float(sizes[-1])
    pairs = share * n / 2.0
    return np.asarray(sizes, dtype=np.float64) - pairs * (np.asarray(sizes, dtype=np.float64) / n) ** 2


__all__ = [
    "copies_from_hashes",
    "distinct_neighbours",
    "drop_exact_copies",
    "effective_sizes",
    "estimator_tables",
    "exact_copies",
    "exact_copies_and_peak",
    "near_copies",
]
