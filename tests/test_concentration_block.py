"""The concentration read from the exact search's own tiles: the same value as a product of its own, on every path."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lightning_repgap._concentration_block import ConcentrationSubset, RowMoments, TileBlock, block_moments
from lightning_repgap._imports import _FAISS_AVAILABLE
from lightning_repgap._prepare import prepare
from lightning_repgap.gap import gap_curve
from lightning_repgap.search import ExactEngine


def _cloud(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32) + 3.0


def test_row_moments_combine_to_the_moments_of_the_whole_block():
    d = np.random.default_rng(0).gamma(3.0, size=(37, 53)) * 1e3
    mom = RowMoments.of(d)
    assert mom.concentration() == pytest.approx(d.mean() ** 2 / d.var(), rel=1e-12)
    # Rows combined in order: the moments of a block split by rows are the rows' moments, whatever the split.
    np.testing.assert_array_equal(np.concatenate([RowMoments.of(d[:20]).sums, RowMoments.of(d[20:]).sums]), mom.sums)
    np.testing.assert_array_equal(np.concatenate([RowMoments.of(d[:20]).m2, RowMoments.of(d[20:]).m2]), mom.m2)
    assert RowMoments.of(np.full((3, 4), 2.0)).concentration() == np.inf
    assert np.isnan(RowMoments.of(np.zeros((3, 4))).concentration())


@pytest.mark.parametrize("shuffled", [True, False])
def test_the_block_from_the_tiles_equals_its_own_product_across_query_chunks_and_bank_tiles(shuffled):
    # 2,500 queries: two query chunks of the tiles; 3,000 bank rows: the unshuffled subset spans two bank tiles.
    bank, queries = _cloud(3000, 12, 1), _cloud(2500, 12, 2)
    order = np.random.default_rng(3).permutation(3000) if shuffled else None
    positions = np.arange(1024) if shuffled else np.linspace(0, 2999, 1024).round().astype(np.int64)
    subset = ConcentrationSubset(np.linspace(0, 2499, 1024).round().astype(np.int64), positions)
    found = ExactEngine("torch", gemm="torch", precision="fp32").search(
        bank, queries, order, np.array([100, 3000]), concentration=subset
    )
    prep = prepare(bank, queries, rows=np.arange(3000) if order is None else order)
    block = TileBlock(subset, prep.queries32)
    assert not block.filled  # no tile taken: the moments come from one product of the subset
    own = block_moments(prep.reference_aug32[positions], prep.queries32[subset.queries])
    assert found.concentration is not None
    np.testing.assert_array_equal(found.concentration.sums, own.sums)
    np.testing.assert_array_equal(found.concentration.m2, own.m2)


def test_the_concentration_is_repeatable_and_agrees_across_blas_thread_counts():
    # At D > 10,000 the float32 product's bits can follow the BLAS's thread split: OpenBLAS's separate concentration
    # GEMM did (before it was read from the tiles), and torch's own tiles do on an Intel Xeon with MKL (5028.5777 on
    # one thread, 5028.5776 on two: 9e-9 relative), not on the AMD EPYC where the tiles were first checked. The
    # contract is therefore: the same bits for the same thread count, float32-rounding agreement across counts.
    x = _cloud(1200, 10_001, 4)
    values = []
    for threads in (1, 2, 2):
        with threadpool_limits(threads, user_api="blas"):
            values.append(gap_curve(x[:600], x[600:], num_threads=threads, backend="torch").concentration)
    assert values[1] == values[2]
    assert values[0] == pytest.approx(values[1], rel=1e-6)


@pytest.mark.skipif(not _FAISS_AVAILABLE, reason="needs faiss")
def test_faiss_and_the_screen_compute_the_same_concentration_as_the_float32_tiles():
    bank, queries = _cloud(1500, 20, 5), _cloud(400, 20, 6)
    tiles = gap_curve(bank, queries, backend="torch", search_precision="fp32", gemm="torch").concentration
    assert gap_curve(bank, queries, backend="faiss").concentration == tiles
    assert gap_curve(bank, queries, backend="torch", search_precision="bf16-screen").concentration == tiles


def test_a_query_searched_alone_gets_the_same_block_as_among_others():
    # A DDP rank may hold a single query: its one-row tile runs torch's small-matrix kernel (other bits), so the block
    # then comes from a product padded to MIN_SIDE rows, whose bits are those of the one process's wide tiles.
    bank, queries = _cloud(700, 30, 7), _cloud(50, 30, 8)
    subset = ConcentrationSubset(np.array([0]), np.arange(512))
    engine = ExactEngine("torch", gemm="torch", precision="fp32")
    alone = engine.search(bank, queries[:1], None, np.array([700]), concentration=subset).concentration
    among = engine.search(bank, queries, None, np.array([700]), concentration=subset).concentration
    assert alone is not None
    assert among is not None
    np.testing.assert_array_equal(alone.sums, among.sums)
    np.testing.assert_array_equal(alone.m2, among.m2)


def test_the_concentration_reads_the_spread_queries_and_the_first_shuffled_bank_rows():
    # Queries sorted along one axis (as data sorted by class come): a wrong subset (the first 1,024 instead of 1,024
    # spread over all 2,500) or a shifted bank position changes the value far beyond float32 rounding.
    bank, queries = _cloud(3000, 12, 9), _cloud(2500, 12, 10)
    queries = queries[np.argsort(queries[:, 0])]
    found = gap_curve(bank, queries, backend="torch", search_precision="fp32", gemm="torch", seed=0).concentration
    order = np.random.default_rng(0).permutation(3000)
    r = bank[order[:1024]].astype(np.float64)
    q = queries[np.linspace(0, 2499, 1024).round().astype(np.int64)].astype(np.float64)
    dist = ((q[:, None, :] - r[None, :, :]) ** 2).sum(-1)
    assert found == pytest.approx(dist.mean() ** 2 / dist.var(), rel=1e-5)


@pytest.mark.parametrize("dim", [8, 40, 300])
def test_the_public_concentration_is_the_curves_bit_for_bit(dim):
    # calibration.concentration shares the library's code (norm column, product, per-row moments): given the centred
    # rows the search reads, it returns GapCurve.concentration exactly (its own GEMM differed at float32 rounding).
    from lightning_repgap._prepare import bank_centre, centred32
    from lightning_repgap.calibration import concentration

    bank, queries = _cloud(3000, dim, 11) + 3.0, _cloud(500, dim, 12) + 3.0
    found = gap_curve(bank, queries, backend="torch", search_precision="fp32", gemm="torch", seed=5).concentration
    centre = bank_centre(bank)
    order = np.random.default_rng(5).permutation(3000)
    assert concentration(centred32(bank, centre, order[:1024]), centred32(queries, centre)) == found


def test_an_all_equal_block_has_no_spread():
    # Every distance the same, over a width that is not a power of two: the rows' combination must not round a
    # variance into existence (the separate GEMM's value was inf here too).
    assert RowMoments.of(np.full((999, 1000), 7.3)).concentration() == np.inf
