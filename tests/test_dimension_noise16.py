"""Known answers for the rank law with a noise offset (issue #14, validation §23).

Ambient noise adds about the same offset to every squared neighbour distance where the neighbours are chosen by the
manifold (the noise's reach lies well inside the table). The neighbour table at the largest bank is then the gap
curve's fine end plus a constant, :math:`c\\,\\Gamma(k + 2/d)/\\Gamma(k) + \\delta` over the ranks ``k``, and its fit
reads noisy surfaces where the floor model, fitted over three decades of banks under a decaying floor, scatters.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

import lightning_repgap._rank_floor as rank_floor
from lightning_repgap import estimate_dimension
from lightning_repgap._local_dimension import gride_dimension
from lightning_repgap.dimension import DimensionEstimate
from lightning_repgap.search import nearest


def _noisy(x: np.ndarray, ambient: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Rotated into ``R^ambient`` with the suite's isotropic noise (``noise`` of the RMS radius)."""
    x = np.pad(x, ((0, 0), (0, ambient - x.shape[1])))
    x = x @ np.linalg.qr(rng.standard_normal((ambient, ambient)))[0]
    radius = math.sqrt(float(np.var(x, axis=0).sum()))
    return x + rng.standard_normal(x.shape) * (noise * radius / math.sqrt(ambient))


def _sphere(n: int, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_normal((n, 3))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def _flat_torus(n: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.random((n, 2)) * 2 * np.pi
    return np.concatenate([np.cos(a), np.sin(a)], 1)


def _estimate(x: np.ndarray, seed: int) -> DimensionEstimate:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimate_dimension(x, return_estimate=True, seed=seed)


def test_the_rank_law_reads_through_a_constant_offset() -> None:
    # A clean square's neighbour table with a constant offset added to every squared distance (the noise's share
    # where the neighbours are chosen by the manifold): the plain far scale reads high, the rank law does not.
    rng = np.random.default_rng(0)
    bank, queries = rng.random((20000, 2)), rng.random((2000, 2))
    sq, _ = nearest(bank, queries, k=20)
    sq = sq[(queries > 0.05).all(1) & (queries < 0.95).all(1)].astype(np.float64)  # away from the edges
    offset = 0.1 * float(sq[:, -1].mean())
    noisy = np.sqrt(sq + offset)
    assert gride_dimension(noisy, n1=10, n2=20) > 2.3
    d, share, _ = rank_floor.rank_floor_fit(np.square(noisy).mean(axis=0)[:, None])
    assert abs(float(d[0]) - 2.0) <= 0.06
    assert abs(float(share[0]) - offset / float(np.square(noisy)[:, -1].mean())) <= 0.02
    # Without the offset the fitted offset vanishes and the law reads the same.
    d0, share0, _ = rank_floor.rank_floor_fit(sq.mean(axis=0)[:, None])
    assert abs(float(d0[0]) - 2.0) <= 0.06
    assert float(share0[0]) <= 0.02


def test_noisy_surfaces_read_two_at_a_small_bank() -> None:
    # 5 % noise on a sphere S^2 and a flat 2-torus in R^16 and R^32, n = 2,500, three draws each. The floor model read
    # them 1.84-2.27 (mean |dim - 2| 0.13); the rank law 1.99-2.14.
    errors = []
    for make in (_sphere, _flat_torus):
        for ambient in (16, 32):
            for seed in range(3):
                rng = np.random.default_rng(1000 * seed + ambient)
                est = _estimate(_noisy(make(2500, rng), ambient, 0.05, rng), seed)
                assert est.method == "noise_floor", est
                assert est.dim_low <= 2.0 <= est.dim_high, est
                assert abs(est.dim - 2.0) <= 0.15, est
                errors.append(abs(est.dim - 2.0))
    assert float(np.mean(errors)) <= 0.09, errors


def test_a_swamped_table_or_a_curve_keeps_the_floor_model() -> None:
    # At n = 20,000 the noise's reach holds many bank points: the nearest are chosen for their noise, the offset falls
    # over the ranks, and the fitted offset's share of the last rank is above RANK_FLOOR_SHARE: no rank law.
    rng = np.random.default_rng(10)
    x = _noisy(_sphere(20000, rng), 10, 0.05, rng)
    order = np.random.default_rng(0).permutation(x.shape[0])
    sq, _ = nearest(x[order[4000:]], x[order[:4000]], k=20)
    rows = np.sqrt(sq.astype(np.float64))
    _, share, _ = rank_floor.rank_floor_fit(np.square(rows).mean(axis=0)[:, None])
    assert float(share[0]) > rank_floor.RANK_FLOOR_SHARE
    assert rank_floor.rank_floor_reading(rows, 2.0, 10, 0) is None
    # A reading that is a curve's keeps the median curve's law (NOISE_MEDIAN_MAX_DIM), whatever the table.
    flat = np.sqrt(np.tile(np.arange(1.0, 21.0) ** 2, (64, 1)))
    assert rank_floor.rank_floor_reading(flat, 1.2, 0, 0) is None
    assert rank_floor.rank_floor_reading(flat, 2.0, 0, 0) is not None


def _offset_square_table(rng: np.random.Generator) -> np.ndarray:
    """A clean square's 20-neighbour table (away from the edges) with a constant offset on every squared distance."""
    bank, queries = rng.random((20000, 2)), rng.random((2000, 2))
    sq, _ = nearest(bank, queries, k=20)
    sq = sq[(queries > 0.05).all(1) & (queries < 0.95).all(1)].astype(np.float64)
    return np.sqrt(sq + 0.1 * float(sq[:, -1].mean()))


def test_a_few_rows_jumping_to_a_far_group_do_not_read_the_rank_law() -> None:
    # 1 % of the rows whose ranks 8-20 lie in a far group (a small far cluster): their squared distances dominate the
    # mean curve and bend it; the law would read far below 2 with a tiny offset. The misfit gate refuses it.
    rng = np.random.default_rng(3)
    rows = _offset_square_table(rng)
    d, _, misfit = rank_floor.rank_floor_fit(np.square(rows).mean(axis=0)[:, None])
    assert abs(float(d[0]) - 2.0) <= 0.06
    assert float(misfit[0]) <= 0.02
    assert rank_floor.rank_floor_reading(rows, 2.0, 0, 0) is not None
    jumped = rows.copy()
    few = rng.choice(rows.shape[0], rows.shape[0] // 100, replace=False)
    jumped[few, 7:] = 30.0 * rows[few, 7:]
    _, _, misfit_jump = rank_floor.rank_floor_fit(np.square(jumped).mean(axis=0)[:, None])
    assert float(misfit_jump[0]) > rank_floor.RANK_FLOOR_MAX_MISFIT
    assert rank_floor.rank_floor_reading(jumped, 2.0, 0, 0) is None


def test_the_rank_law_is_scale_invariant() -> None:
    rng = np.random.default_rng(4)
    means = np.square(_offset_square_table(rng)).mean(axis=0)[:, None]
    want = rank_floor.rank_floor_fit(means)
    for scale in (2.0**-40, 2.0**60):  # exact scalings: the same bits
        np.testing.assert_array_equal(np.concatenate(rank_floor.rank_floor_fit(means * scale)), np.concatenate(want))
    for scale in (1e-160, 1e-6, 1e6, 1e100):
        got = rank_floor.rank_floor_fit(means * scale)
        assert got[0][0] == want[0][0]
        np.testing.assert_allclose(got[1], want[1], rtol=1e-9)


def test_a_law_beyond_the_grid_is_no_fit() -> None:
    # m_k proportional to k^8 (a "dimension" of 0.25, below the grid's 0.5): the best grid point is the grid's end,
    # which is not a fit; so too a flat table (beyond 64).
    k = np.arange(1.0, 21.0)
    for means in (k**8, np.ones(20)):
        d, share, misfit = rank_floor.rank_floor_fit(means[:, None])
        assert math.isnan(float(d[0]))
        assert math.isnan(float(share[0]))
        assert math.isnan(float(misfit[0]))


def test_a_small_far_group_does_not_pull_a_noisy_sphere_to_one() -> None:
    # A 5 %-noisy sphere in R^16, n = 2,500, with 8 points replaced by one tight far group (0.3 % of the cloud): the
    # rank law without its misfit gate read 0.74-0.83, clipped to 1.00; the floor model reads 1.5-1.8.
    for seed in (501, 502):
        rng = np.random.default_rng(seed)
        x = _noisy(_sphere(2500, rng), 16, 0.05, rng)
        far = rng.choice(2500, 8, replace=False)
        x[far] = 6.0 * x[0] + 0.01 * rng.standard_normal((8, 16))
        est = _estimate(x, seed)
        assert est.dim >= 1.4, est
