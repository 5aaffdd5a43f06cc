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
import torch
from _helpers.noisy import noisy_circle

import lightning_repgap.functional as functional
from lightning_repgap import estimate_dimension, representation_gap
from lightning_repgap._width import WIDTH_COLUMN_BLOCK, WIDTH_ROWS, numerical_width
from lightning_repgap.dimension import DimensionEstimate


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
    x = noisy_circle(20000, 0)
    plain = _estimate(x)
    assert plain.method == "noise_floor", plain
    assert abs(plain.dim - 1.0) <= 0.4, plain
    _same(plain, _estimate(_padded(x, 24, 1)))
    _same(plain, _estimate(_padded(x, 40, 2).astype(np.float32)))  # float32 rounding of the rotation too


def test_padding_changes_no_key_of_the_metric() -> None:
    # The functional API (and the Metric, which computes on the gathered bank) reads the width from the bank too.
    # Before this change the padded copy read 7.84 through "local" (dim_method 1), the original 1.07 (3).
    x = noisy_circle(20000, 1)
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


def _close(a: DimensionEstimate, b: DimensionEstimate) -> None:
    """The same reading up to the stored values' rounding (it moves the bootstrap interval's ends by ~1e-3)."""
    assert b.method == a.method, (a, b)
    assert b.dim == pytest.approx(a.dim, rel=1e-3), (a, b)
    for key in ("dim_low", "dim_high"):
        assert getattr(b, key) == pytest.approx(getattr(a, key), rel=1e-2), (key, a, b)


def test_coarse_or_offset_values_keep_the_padded_width() -> None:
    # The stored values' rounding (up to eps * |x| / 2 per value) is spread over every padded column by the rotation;
    # above 1e-4 of the cloud's scale it read as width. Before the rounding floor the padded copy read width 24 and
    # 7.54 through "local" both as bfloat16 (eps 2^-7) and as float32 translated by 1e4 (rounding ~1e-3 of the scale).
    x = noisy_circle(20000, 0)
    plain = _estimate(x)
    assert plain.method == "noise_floor", plain
    assert abs(plain.dim - 1.0) <= 0.4, plain
    padded = _padded(x, 24, 1)
    as_bf16 = torch.tensor(padded, dtype=torch.bfloat16)  # estimate_dimension widens it to float32
    assert numerical_width(as_bf16.float().numpy()) == 8
    _close(plain, _estimate(as_bf16))
    assert numerical_width(padded.astype(np.float16).astype(np.float32)) == 8  # float16 batches the metric stored
    shifted = (padded + 1e4).astype(np.float32)
    assert numerical_width(shifted) == 8
    _close(plain, _estimate(shifted))


def test_extreme_magnitudes_read_the_same_width() -> None:
    # The rows are scaled by an exact power of two before the Gram: float64 values near 1e160 overflowed it
    # (eigvalsh raised LinAlgError) and values near 1e-160 underflowed it (read as the column count).
    rng = np.random.default_rng(0)
    lat = _padded(rng.standard_normal((3000, 5)) * np.array([1.0, 0.5, 0.2, 0.1, 0.05]), 64, 1)
    for scale in (1e-160, 1e-300, 1e160, 1e300):
        assert numerical_width(lat * scale) == 5, scale


def test_the_tolerance_sits_between_3e_5_and_3e_4() -> None:
    # A direction at 3e-5 of the largest standard deviation is below WIDTH_TOLERANCE (1e-4), one at 3e-4 above.
    rng = np.random.default_rng(1)
    lat = rng.standard_normal((3000, 6)) * np.array([1.0, 0.5, 0.2, 0.1, 0.05, 0.0])
    for share, width in ((3e-5, 5), (3e-4, 6)):
        lat[:, 5] = rng.standard_normal(3000) * share
        assert numerical_width(_padded(lat, 40, 2)) == width, share


def test_the_metric_reads_evenly_spaced_rows_of_a_sorted_bank(monkeypatch: pytest.MonkeyPatch) -> None:
    # A class-sorted bank: the last quarter (one class) has a third direction its first 128 rows never see.
    rng = np.random.default_rng(2)
    points = np.zeros((4500, 16))
    points[:, :2] = rng.standard_normal((4500, 2))
    points[3500:, 2] = rng.standard_normal(1000) * 0.5
    points = _padded(points, 16, 3)
    bank, queries = points[250:4250], np.concatenate([points[:250], points[4250:]])
    assert numerical_width(bank[:WIDTH_ROWS]) == 2  # a first-rows sample misses it
    seen: list[int] = []
    trusted = functional.trusted_dimension

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(int(kwargs["ambient"]))  # type: ignore[call-overload]
        return trusted(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(functional, "trusted_dimension", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        representation_gap(queries, bank)
    assert seen == [3], seen


def test_a_bank_wider_than_one_column_block_reads_its_planted_rank() -> None:
    # 8,300 columns: two column blocks of the Gram. Six directions spread over every column, a seventh only in the
    # columns of the second block: a Gram that dropped or double-counted a block would read 6 or a wrong rank.
    rng = np.random.default_rng(3)
    width = WIDTH_COLUMN_BLOCK + 108
    basis = np.linalg.qr(rng.standard_normal((width, 6)))[0].T
    bank = rng.standard_normal((200, 6)) @ basis
    bank[:, WIDTH_COLUMN_BLOCK:] += np.outer(rng.standard_normal(200), rng.standard_normal(108) / math.sqrt(108))
    assert numerical_width(bank) == 7
    assert numerical_width(bank[:, :WIDTH_COLUMN_BLOCK]) == 6
