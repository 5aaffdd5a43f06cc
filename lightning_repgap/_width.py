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

The cost is one ``(WIDTH_ROWS, WIDTH_ROWS)`` float64 Gram matrix of those rows (``2 WIDTH_ROWS^2 D`` flops, about
``WIDTH_ROWS / n`` of the search's ``2 n m D`` at ``m >= WIDTH_ROWS`` queries), read a column block at a time (a
few MiB whatever ``D``); no pass over the bank. The rows are a function of the bank alone, and the bank a DDP rank
computes on is the gathered one, the same on every rank: every rank reads the same width.
"""

from __future__ import annotations

import numpy as np

__all__ = ["WIDTH_COLUMN_BLOCK", "WIDTH_ROWS", "WIDTH_TOLERANCE", "numerical_width"]

#: Evenly spaced bank rows whose centred span gives the width (a rank of ``WIDTH_ROWS / 2`` or more reads as ``D``).
WIDTH_ROWS = 128
#: A direction counts where its standard deviation in those rows is at least this share of the largest one. Float32
#: rounding of an isometric embedding leaves about ``eps_32 = 1.2e-7`` of the magnitude per direction (a rotation's
#: accumulated rounding a few times that), a thousand times below it; the suite's weakest noise, 1 % of the RMS
#: radius spread over ``D`` directions, has ``0.01 / sqrt(D)`` of it per direction, above it for ``D <= 10,000``. A
#: direction below it also lies below the float32 search's distance resolution (``sqrt(eps_32) ~ 3.5e-4`` of the
#: magnitude): it cannot shape the neighbour table.
WIDTH_TOLERANCE = 1e-4
#: Columns of the sampled rows converted to float64 at a time (``WIDTH_ROWS`` x this x 8 bytes: 8 MiB).
WIDTH_COLUMN_BLOCK = 8192


def numerical_width(bank: np.ndarray) -> int:
    """The numerical rank of the centred bank, read on :data:`WIDTH_ROWS` evenly spaced rows (see the module).

    Args:
        bank: ``(n, D)`` points.

    Returns:
        The number of directions whose standard deviation in the sampled rows is at least :data:`WIDTH_TOLERANCE`
        of the largest one, at least 1; ``D`` where that count reaches half the rows read (a rank not resolved by
        the sample, see the module), where fewer than 3 rows are given, or where the sampled rows are all equal.

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
    gram = np.zeros((rows.size, rows.size))
    for start in range(0, width, WIDTH_COLUMN_BLOCK):  # fixed order: the same sum on every rank
        block = np.asarray(bank[rows, start : start + WIDTH_COLUMN_BLOCK], dtype=np.float64)
        block -= block.mean(axis=0)
        gram += block @ block.T
    eig = np.linalg.eigvalsh(gram)
    top = float(eig[-1])
    if not np.isfinite(top) or top <= 0.0:
        return int(width)
    rank = int(np.count_nonzero(eig >= WIDTH_TOLERANCE**2 * top))
    return int(width) if 2 * rank >= rows.size else max(1, min(rank, int(width)))
