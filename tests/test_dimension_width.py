"""Known answers for the width behind the swamped-table check (issue #14, validation §21).

The check ("noise that swamps the whole neighbour table needs no floor share", ``NOISE_AMBIENT_FAR``) compares GRIDE
far with the dimension of the noise's own ball, the dimension of the space the points span. With the column count as
that width, zero-padding a noisy cloud (or rotating it into more columns: an isometry, which must change no key)
switched the check off and the rule read the noise's dimension: a 5 %-noisy circle in R^8 read 1.26 (``noise_floor``)
and 7.50 (``local``) padded to R^24. ``estimate_dimension`` and the metric now pass the bank's numerical rank.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lightning_repgap import estimate_dimension, representation_gap
from lightning_repgap._width import WIDTH_ROWS, numerical_width
from lightning_repgap.dimension import DimensionEstimate


def _noisy_circle(n: int, seed: int, ambient: int = 8, noise: float = 0.05) -> np.ndarray:
    """A uniform circle rotated into ``R^ambient``, with the suite's isotropic noise (``noise`` of the RMS radius)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 2.0 * np.pi, n)
    x = np.pad(np.stack([np.cos(t), np.sin(t)], 1), ((0, 0), (0, ambient - 2)))
    x = x @ np.linalg.qr(rng.standard_normal((ambient, ambient)))[0]
    radius = math.sqrt(float(np.var(x, axis=0).sum()))
    return x + rng.standard_normal(x.shape) * (noise * radius / math.sqrt(ambient))


def _padded(x: np.ndarray, width: int, seed: int) -> np.ndarray:
    """``x`` zero-padded to ``width`` columns and rotated there: every distance kept (an isometric embedding)."""
    rotation = np.linalg.qr(np.random.default_rng(seed).standard_normal((width, width)))[0]
    return np.pad(x, ((0, 0), (0, width - x.shape[1]))) @ rotation


def _estimate(x: np.ndarray) -> DimensionEstimate:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimate_dimension(x, return_estimate=True)


def _same(a: DimensionEstimate, b: DimensionEstimate) -> None:
    for key in ("dim", "dim_low", "dim_high"):
        assert getattr(b, key) == pytest.approx(getattr(a, key), rel=1e-6), (key, a, b)
    assert b.method == a.method, (a, b)


def test_padding_a_swamped_noisy_circle_changes_no_reading() -> None:
    # Before this change the padded copies read 7.50 through "local" (the noise ball's dimension), the original 1.26.
    x = _noisy_circle(20000, 0)
    plain = _estimate(x)
    assert plain.method == "noise_floor", plain
    assert abs(plain.dim - 1.0) <= 0.4, plain
    _same(plain, _estimate(_padded(x, 24, 1)))
    _same(plain, _estimate(_padded(x, 40, 2).astype(np.float32)))  # float32 rounding of the rotation too


def test_padding_changes_no_key_of_the_metric() -> None:
    # The functional API (and the Metric, which computes on the gathered bank) reads the width from the bank too.
    # Before this change the padded copy read 7.84 through "local" (dim_method 1), the original 1.07 (3).
    x = _noisy_circle(20000, 1)
    big = _padded(x, 32, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = representation_gap(x[4000:], x[:4000])
        padded = representation_gap(big[4000:], big[:4000])
    assert plain["dim_method"].item() == padded["dim_method"].item() == 3.0, (plain, padded)  # "noise_floor"
    for key in ("dim", "dim_low", "dim_high"):
        assert padded[key].item() == pytest.approx(plain[key].item(), rel=1e-5), key


def test_the_width_is_the_numerical_rank() -> None:
    rng = np.random.default_rng(0)
    lat = rng.standard_normal((3000, 5)) * np.array([1.0, 0.5, 0.2, 0.1, 0.05])
    assert numerical_width(lat) == 5
    assert numerical_width(_padded(lat, 64, 1)) == 5
    assert numerical_width(_padded(lat, 64, 1).astype(np.float32)) == 5
    assert numerical_width(_padded(lat, 64, 1) + 1e3) == 5  # translation: the rows are centred
    assert numerical_width(_padded(lat, 64, 1) * 1e-30) == 5  # scale
    # noise in every column is width: 1 % of the RMS radius over 64 columns is seen
    noisy = _padded(lat, 64, 1) + rng.standard_normal((3000, 64)) * (0.01 * 1.15 / 8.0)
    assert numerical_width(noisy) == 64
    # a rank the sample cannot resolve reads as the column count (a 1 %-noisy cloud in R^128 has rank 128, but 128
    # centred rows of it show a few eigenvalues near 0: Marchenko-Pastur at a ratio near 1)
    wide = _padded(lat, 128, 2) + rng.standard_normal((3000, 128)) * (0.01 * 1.15 / math.sqrt(128))
    assert numerical_width(wide) == 128
    assert numerical_width(rng.standard_normal((3000, 2 * WIDTH_ROWS))) == 2 * WIDTH_ROWS
    assert numerical_width(np.ones((50, 7))) == 7  # all rows equal: nothing to read
