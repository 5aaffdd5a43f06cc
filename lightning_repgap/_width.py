"""The width of a bank for the trusted ``dim``'s swamped-table check: its numerical rank, not its column count.

Noise that swamps the whole neighbour table fills a ball of the dimension of the space the points span, not of the
columns they are written in: zero-padded columns, dead ReLU units or a representation of numerical rank ``r < D``
leave that ball ``r``-dimensional. :func:`numerical_width` reads ``r`` from a few evenly spaced bank rows, so
``dim`` is invariant to an isometric embedding into more columns (padding, then a rotation).

The check it serves (``trusted_dimension(..., ambient=...)``: GRIDE far at least ``NOISE_AMBIENT_FAR`` of the width)
can only fire at a small width (GRIDE far rarely reads above ~30), so :data:`WIDTH_ROWS` rows are enough: a rank
below ``WIDTH_ROWS / 2`` is read, a larger one is reported as the column count, where the check cannot fire either
way (it would need GRIDE far ``>= 0.7 * 64``). Near the sample's own size the rank is not resolved: the centred
sample of a full-rank ``r``-dimensional cloud has eigenvalues down to ``(1 - sqrt(r / rows))^2`` of the mean
(Marchenko-Pastur), near 0 at ``r ~ rows`` (1 %-noisy clouds in R^128 read ranks 124-126 of 127 possible).

The width is a sample's reading: a direction carried by few rows is seen or missed by the 128 rows, so such a bank
can read anything between ``d`` and ``D`` (a plane in R^16 plus 2-5 % of its points on a 10-dimensional blob read
2-12 over 12 seeds); the check only fires where GRIDE far reaches ``NOISE_AMBIENT_FAR`` of whatever width is read.
The cap (a rank of ``WIDTH_ROWS / 2`` or more reads as ``D``) is what keeps Marchenko-Pastur shrinkage harmless:
below it the smallest sample eigenvalue of a full-rank isotropic cloud stays above ``(1 - sqrt(1/2))^2 ~ 0.09`` of
the mean, far above the ``WIDTH_TOLERANCE^2`` floor: sampling does not push its directions under the floor.

Rounding is not width. The stored values sit on their format's grid: each is off its exact value by up to half a
unit in the last place, at most ``eps * |x| / 2`` (``eps`` the format's machine epsilon), an error of variance at
most ``(eps x)^2 / 12``. Spread over every column (an isometric embedding rotates the points into all ``D``), those
errors form a ``rows x D`` noise matrix whose Gram's largest eigenvalue is about the square of (the largest row's
error norm + the largest column's): Bai-Yin ``sigma^2 (sqrt(rows) + sqrt(D))^2`` for equal variances. So a
direction counts only above :func:`rounding_floor`, four times that bound from the uncentred values (an offset's
rounding counts), as well as above the relative :data:`WIDTH_TOLERANCE`; the rounding eigenvalues measured on the
5 %-noisy circle padded to R^24-R^4096 (bfloat16, float32 + 1e4) lie 6-18 times below it, its smallest real
direction 10-570 times above.
The format is read from the values, not from a dtype (a bfloat16 bank reaches here widened to float32, and the
metric stores every batch as float32): the coarsest of bfloat16, float16, float32 in which every sampled value is
exact, else float64. Genuine float32 values are bfloat16-exact with probability ``2^-16`` each, so a sample of
them never reads as bfloat16. This keeps a bfloat16 copy of a padded cloud, or a float32 one translated by ``1e4``
(rounding ``1e-3`` of the cloud's own scale), at the unpadded cloud's width.

Limits, both towards a smaller width. Values on a coarse grid by construction (small integers, one-hot codes) read
as bfloat16 and get its floor: far below a unit step's eigenvalue (about 1) for one-hot codes, but integer counts
in the hundreds at large ``D`` can lose directions of unit steps. Where a cloud's own spread per direction is within
about ten times its rounding (bfloat16 translated by 3: rounding ``2^-6`` per value), real directions fall under
the floor: that 5 %-noisy circle padded to R^24 reads 4 of 8 (its reading, 1.065 ``noise_floor``, is the same at
widths 4, 8 and 24). A smaller width can only let the check fire earlier where GRIDE far reaches 0.7 of it.

The rows are scaled by the exact power of two of their largest magnitude before the Gram (no overflow at
``|x| ~ 1e160``, no underflow at ``1e-160``), and an eigensolver failure reads as the column count.

The cost is one ``(WIDTH_ROWS, WIDTH_ROWS)`` float64 Gram matrix of those rows (``2 WIDTH_ROWS^2 D`` flops, about
``WIDTH_ROWS / n`` of the search's ``2 n m D`` at ``m >= WIDTH_ROWS`` queries), read a column block at a time (a
few MiB of float64 whatever ``D``; the sampled rows themselves, ``WIDTH_ROWS / n`` of the bank's memory, are gathered
once and read twice: magnitude and grid, then the Gram); no pass over the bank. The rows are a
function of the bank alone, and the bank a DDP rank computes on is the gathered one, the same on every rank: every
rank reads the same width.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["WIDTH_COLUMN_BLOCK", "WIDTH_ROWS", "WIDTH_TOLERANCE", "numerical_width", "rounding_floor", "value_grid_eps"]

#: Evenly spaced bank rows whose centred span gives the width (a rank of ``WIDTH_ROWS / 2`` or more reads as ``D``).
WIDTH_ROWS = 128
#: A direction counts where its standard deviation in those rows is at least this share of the largest one (and its
#: variance above :func:`rounding_floor`). The suite's weakest noise, 1 % of the RMS radius spread over ``D``
#: directions, has ``0.01 / sqrt(D)`` of it per direction, above it for ``D <= 10,000``: noise in every column
#: reads as ``D`` from about ``3e-4`` relative per direction (one at ``3e-5`` is not counted). A direction below it
#: is not harmless by itself: ``k`` such directions of standard deviation ``s`` add ``2 k s^2`` to every squared
#: distance, which at large ``D`` can exceed the float32 search's resolution. For the check it is benign: not
#: counting it gives a smaller width, and such weak directions do not raise GRIDE far towards it.
WIDTH_TOLERANCE = 1e-4
#: Columns of the sampled rows converted to float64 at a time (``WIDTH_ROWS`` x this x 8 bytes: 8 MiB).
WIDTH_COLUMN_BLOCK = 8192


def value_grid_eps(block: np.ndarray) -> float:
    """The machine epsilon of the coarsest format every value of ``block`` is exact in (see the module).

    Args:
        block: float16, float32 or float64 values (anything else is read as float32).

    Returns:
        ``2^-7`` (bfloat16), ``2^-10`` (float16), ``2^-23`` (float32) or ``2^-52`` (float64); float16 values read
        as float16.

    Example:
        >>> value_grid_eps(np.array([0.5, 1.25])), value_grid_eps(np.array([0.1]))
        (0.0078125, 2.220446049250313e-16)
    """
    if block.dtype == np.float16:
        return float(np.finfo(np.float16).eps)
    if block.dtype == np.float64:
        with np.errstate(over="ignore"):
            single = block.astype(np.float32)
        if not np.array_equal(single, block):  # not float32 values (or beyond float32's range)
            return float(np.finfo(np.float64).eps)
    else:
        single = np.ascontiguousarray(block, dtype=np.float32)
    low = int(np.bitwise_or.reduce(single.view(np.uint32), axis=None)) & 0xFFFF  # mantissa bits any value uses
    if low == 0:
        return 2.0**-7  # bfloat16: 8 significant bits, float32's range
    if low & 0x1FFF == 0:  # 11 significant bits: float16 if also within its range (subnormals: multiples of 2^-24)
        mag = np.abs(single)
        tiny = np.ldexp(mag[mag < 2.0**-14], 24)
        if float(mag.max()) <= float(np.finfo(np.float16).max) and np.array_equal(tiny, np.round(tiny)):
            return float(np.finfo(np.float16).eps)
    return float(np.finfo(np.float32).eps)


def rounding_floor(eps: float, row_square: float, column_square: float) -> float:
    """The Gram eigenvalue below which a direction may be the stored values' rounding (see the module).

    Args:
        eps: The machine epsilon of the values' grid (:func:`value_grid_eps`).
        row_square: The largest sum of squared (uncentred: an offset's rounding counts) values of one sampled row.
        column_square: The largest sum of squared values of one column over the sampled rows.

    Returns:
        ``4 eps^2 / 12 (sqrt(row_square) + sqrt(column_square))^2``: the rounding error of a value ``x`` has
        variance at most ``(eps x)^2 / 12``, and a matrix of independent errors has squared spectral norm about
        ``(largest row's error norm + largest column's)^2`` (Bai-Yin ``sigma^2 (sqrt(D) + sqrt(rows))^2`` for equal
        variances; Bandeira-van Handel for unequal ones); four times that (twice the norm) is the margin.

    Example:
        >>> rounding_floor(2.0**-23, 128.0, 128.0) < 1e-11
        True
    """
    return eps**2 / 3.0 * (math.sqrt(row_square) + math.sqrt(column_square)) ** 2


def numerical_width(bank: np.ndarray) -> int:
    """The numerical rank of the centred bank, read on :data:`WIDTH_ROWS` evenly spaced rows (see the module).

    Args:
        bank: ``(n, D)`` points.

    Returns:
        The number of directions whose standard deviation in the sampled rows is at least :data:`WIDTH_TOLERANCE`
        of the largest one and whose variance is above :func:`rounding_floor`, at least 1; ``D`` where that count
        reaches half the rows read (a rank not resolved by the sample, see the module), where fewer than 3 rows are
        given, where the sampled rows are all equal or not finite, or where the eigensolver fails.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((500, 3))
        >>> numerical_width(x), numerical_width(np.pad(x, ((0, 0), (0, 13))))
        (3, 3)
    """
    n, width = bank.shape
    rows = np.unique(np.linspace(0, n - 1, min(n, WIDTH_ROWS)).round().astype(np.intp))
    if rows.size < 3:
        return int(width)
    magnitude, eps = 0.0, 0.0
    blocks = []  # the sampled rows in the bank's dtype, gathered once (at most WIDTH_ROWS / n of the bank's memory)
    for start in range(0, width, WIDTH_COLUMN_BLOCK):  # first pass: the largest magnitude and the values' grid
        blocks.append(np.asarray(bank[rows, start : start + WIDTH_COLUMN_BLOCK]))
        magnitude = max(magnitude, float(np.max(np.abs(blocks[-1]))))
        eps = max(eps, value_grid_eps(blocks[-1]))
    if not np.isfinite(magnitude) or magnitude <= 0.0:
        return int(width)
    exponent = int(np.frexp(magnitude)[1])  # rows scaled by an exact power of two: largest magnitude in [0.5, 1)
    gram = np.zeros((rows.size, rows.size))
    row_square = np.zeros(rows.size)
    column_square = 0.0
    for raw in blocks:  # fixed order: the same sum on every rank
        block = np.ldexp(np.asarray(raw, dtype=np.float64), -exponent)
        squares = block * block
        row_square += squares.sum(axis=1)
        column_square = max(column_square, float(squares.sum(axis=0).max()))
        block -= block.mean(axis=0)
        gram += block @ block.T
    try:
        eig = np.linalg.eigvalsh(gram)
    except np.linalg.LinAlgError:
        return int(width)
    top = float(eig[-1])
    if not np.isfinite(top) or top <= 0.0:
        return int(width)
    floor = max(WIDTH_TOLERANCE**2 * top, rounding_floor(eps, float(row_square.max()), column_square))
    rank = int(np.count_nonzero(eig >= floor))
    return int(width) if 2 * rank >= rows.size else max(1, min(rank, int(width)))
