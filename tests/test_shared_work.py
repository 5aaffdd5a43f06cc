"""Work the full measurement shares between its stages gives the same bits as doing it again separately."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import lightning_repgap._duplicates as duplicates_module
import lightning_repgap._prepare as prepare_module
import lightning_repgap._screen as screen_module
from lightning_repgap._duplicates import exact_copies, exact_copies_and_peak
from lightning_repgap._prepare import pair_dist_sq, prepare, rows_sum_sq64, winner_distances
from lightning_repgap._scale import unit_exponent
from lightning_repgap.gap import _concentration_subset, _curve_concentration
from lightning_repgap.search import ExactEngine


def _torus(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    theta = 2 * np.pi * rng.random((n, 3))
    rot, _ = np.linalg.qr(np.random.default_rng(99).standard_normal((dim, 6)))
    return (np.concatenate([np.cos(theta), np.sin(theta)], axis=1) @ rot.T + 5.0).astype(np.float32)


def test_float64_scoring_on_several_threads_gives_the_same_bits(monkeypatch):
    rng = np.random.default_rng(0)
    reference, queries = rng.standard_normal((400, 3000)).astype(np.float32), rng.standard_normal((120, 3000))
    index = rng.integers(-1, 400, (120, 7))
    prep = prepare(reference, queries)
    qi, pos = rng.integers(0, 120, 900), rng.integers(0, 400, 900)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, one_rescored = pair_dist_sq(reference, queries, index), screen_module._rescore(prep, qi, pos)
        torch.set_num_threads(2)
        monkeypatch.setattr(prepare_module, "PARALLEL_MIN_WORK", 0)
        two, two_rescored = pair_dist_sq(reference, queries, index), screen_module._rescore(prep, qi, pos)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one_rescored, two_rescored)
    assert np.isinf(two[index < 0]).all()


def test_a_step_error_is_raised_not_swallowed(monkeypatch):
    monkeypatch.setattr(prepare_module, "PARALLEL_MIN_WORK", 0)

    def run(i0: int) -> None:
        if i0 == 3:
            raise ValueError("step 3")

    with pytest.raises(ValueError, match="step 3"):
        prepare_module.parallel_steps(run, range(5), 10)


@pytest.mark.parametrize("precision", ["fp32", "bf16-screen"])
def test_the_engine_hands_over_exact_neighbour_distances_and_its_copies(precision):
    bank, queries = _torus(3000, 24, 1), _torus(300, 24, 2)
    order = np.random.default_rng(3).permutation(3000)
    sizes = np.array([64, 256, 1024, 3000])
    pick = np.random.default_rng(4).permutation(300)[:200]
    found = ExactEngine("torch", precision=precision).search(
        bank, queries, order, sizes, knn_queries=pick, n_neighbors=6
    )
    assert found.knn_rows is not None
    assert found.knn_dist_sq is not None
    assert found.prepared is not None
    # Entry for entry what the curve builder would compute itself, and the winners' distances likewise.
    np.testing.assert_array_equal(found.knn_dist_sq, pair_dist_sq(bank, queries[pick], found.knn_rows))
    expected = pair_dist_sq(bank, queries, found.minima.rows.T).T
    np.testing.assert_array_equal(found.minima.dist_sq, expected)
    # The concentration's moments taken from the engine's float32 tiles (the screen: its own product of the subset)
    # equal one product of the subset's rows centred again from the data, bit for bit (torch's tiles).
    for rows in (order, None):
        subset = _concentration_subset(rows, 3000, 300)
        engine = ExactEngine("torch", gemm="torch", precision=precision)
        found = engine.search(bank, queries, rows, sizes, knn_queries=pick, n_neighbors=6, concentration=subset)
        assert found.concentration is not None
        again = dataclasses.replace(found, prepared=None, concentration=None)
        assert _curve_concentration(bank, queries, subset, rows, found) == _curve_concentration(
            bank, queries, subset, rows, again
        )


def test_winner_distances_read_from_a_table_equal_scoring_them():
    bank, queries = _torus(500, 16, 5), _torus(60, 16, 6)
    prep = prepare(bank, queries)
    rng = np.random.default_rng(7)
    winners = np.sort(rng.integers(0, 500, (5, 60)), axis=0)
    table_queries = rng.permutation(60)[:40]
    table = np.concatenate([winners[2:4, table_queries].T, rng.integers(0, 500, (40, 3))], axis=1)
    known = (table_queries, table, prep.dist_sq(table, rows=table_queries))
    np.testing.assert_array_equal(winner_distances(prep, winners, known=known), winner_distances(prep, winners))
    rows = np.arange(10, 50)
    np.testing.assert_array_equal(
        winner_distances(prep, winners[:, rows], rows=rows, known=known),
        winner_distances(prep, winners[:, rows], rows=rows),
    )


def test_one_pass_gives_the_peak_and_the_squared_norms(monkeypatch):
    x = _torus(2000, 40, 8) * np.float32(3e-25)
    x[7] = x[3]
    keep, share, peak = exact_copies_and_peak(x)
    assert (keep.tolist(), share) == (exact_copies(x)[0].tolist(), exact_copies(x)[1])
    assert peak == float(np.abs(x).max())
    assert unit_exponent(np.zeros((1, 40)), known_peak=peak) == unit_exponent(x)
    monkeypatch.setattr(prepare_module, "_CENTRE_CHUNK", 37)  # many chunks, rows split anywhere
    order = np.random.default_rng(9).permutation(2000)[:1500]
    fused = prepare(x, x[:10], rows=order, sq_norms=True)
    assert fused.sq_norms64 is not None
    assert fused.reference_sq_sum == prepare(x, x[:10], rows=order).reference_sq_sum


def _threads(count: int) -> None:
    torch.set_num_threads(count)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_centring_and_hashing_on_several_threads_give_the_same_bits(monkeypatch, dtype):
    x = (_torus(3000, 30, 10) * 7.0).astype(dtype)
    x[11] = x[5]
    x[12, 0] = -0.0 if x[12, 0] == 0 else x[12, 0]
    queries = _torus(500, 30, 11).astype(dtype)
    order = np.random.default_rng(12).permutation(3000)
    before = torch.get_num_threads()
    try:
        _threads(1)
        one = prepare(x, queries, rows=order, sq_norms=True)
        one_plain = prepare(x, queries)
        one_hash = duplicates_module._row_hashes(x)
        _threads(2)
        # Many small steps, each on either thread.
        monkeypatch.setattr(prepare_module, "PARALLEL_MIN_WORK", 0)  # the hashing asks _prepare.step_threads too
        monkeypatch.setattr(prepare_module, "_CENTRE_CHUNK_BYTES", 4 * 30 * 41)
        monkeypatch.setattr(duplicates_module, "_HASH_CHUNK_BYTES", 8 * 30 * 23)
        two = prepare(x, queries, rows=order, sq_norms=True)
        two_plain = prepare(x, queries)
        two_hash = duplicates_module._row_hashes(x)
    finally:
        torch.set_num_threads(before)
    for a, b in ((one, two), (one_plain, two_plain)):
        np.testing.assert_array_equal(a.reference_aug32, b.reference_aug32)
        np.testing.assert_array_equal(a.queries32, b.queries32)
    assert one.sq_norms64 is not None
    assert two.sq_norms64 is not None
    np.testing.assert_array_equal(one.sq_norms64, two.sq_norms64)
    np.testing.assert_array_equal(one_hash[0], two_hash[0])
    assert one_hash[1] == two_hash[1] == float(np.abs(x.astype(np.float64)).max())
    assert one_hash[0][11] == one_hash[0][5]


def test_the_screen_answers_do_not_depend_on_the_first_shift_product(monkeypatch):
    bank, queries = _torus(6000, 20, 13), _torus(700, 20, 14)
    order = np.random.default_rng(15).permutation(6000)
    sizes = np.array([100, 1000, 6000])
    pick = np.arange(0, 700, 3)

    def run() -> object:
        return ExactEngine("torch", precision="bf16-screen").search(
            bank, queries, order, sizes, knn_queries=pick, n_neighbors=5
        )

    torch_calls: list[int] = []
    torch_scores = screen_module._first_scores

    def torch_spy(q32: np.ndarray, first_rows: np.ndarray, dim: int) -> np.ndarray:
        torch_calls.append(q32.shape[0])
        return torch_scores(q32, first_rows, dim)

    monkeypatch.setattr(screen_module, "_first_scores", torch_spy)
    torch_first = run()
    numpy_calls: list[int] = []

    def numpy_first(q32: np.ndarray, first_rows: np.ndarray, dim: int) -> np.ndarray:
        numpy_calls.append(q32.shape[0])
        return q32 @ first_rows[:, :dim].T + first_rows[:, dim]  # the product before it moved to torch

    monkeypatch.setattr(screen_module, "_first_scores", numpy_first)
    numpy_found = run()
    # Both runs went through the screen (a fall-back to float32 tiles would compare nothing here).
    assert sum(torch_calls) == sum(numpy_calls) == 700
    np.testing.assert_array_equal(torch_first.minima.dist_sq, numpy_found.minima.dist_sq)
    np.testing.assert_array_equal(torch_first.minima.rows, numpy_found.minima.rows)
    np.testing.assert_array_equal(torch_first.knn_rows, numpy_found.knn_rows)
    np.testing.assert_array_equal(torch_first.knn_dist_sq, numpy_found.knn_dist_sq)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_pair_scoring_in_step_buffers_gives_the_bits_of_scoring_each_column_alone(dtype):
    rng = np.random.default_rng(20)
    reference = (rng.standard_normal((300, 700)) * 3 + 100).astype(dtype)
    # 200 queries at D = 700: whole lines of 5 columns, batches of several query rows and a partial last one.
    queries = (rng.standard_normal((200, 700)) * 3 + 100).astype(dtype)
    index = rng.integers(0, 300, (200, 5))
    index[7, 2] = index[140, 0] = -1  # missing entries in a batch: inf, the other pairs scored as usual
    expected = np.full(index.shape, np.inf)
    for i, j in zip(*np.nonzero(index >= 0), strict=True):
        diff = np.subtract(queries[i : i + 1], reference[index[i, j]][None], dtype=np.float64)
        expected[i, j] = rows_sum_sq64(diff)[0]
    np.testing.assert_array_equal(pair_dist_sq(reference, queries, index), expected)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_pair_scoring_of_lines_split_into_column_batches_gives_the_bits_of_each_pair_alone(monkeypatch, dtype):
    # At a large D a batch holds one query and part of its line (D = 10^4: five of its 20 neighbours); here the batch
    # is shrunk to 3 pairs of D = 90 (one query row, 3 of its 8 columns, the last batch of each line 2), with missing
    # entries, gathered query rows and the steps shared between two threads.
    rng = np.random.default_rng(22)
    reference = (rng.standard_normal((60, 90)) * 3 + 100).astype(dtype)
    queries = (rng.standard_normal((80, 90)) * 3 + 100).astype(dtype)
    rows = rng.permutation(80)[:70]
    index = rng.integers(-1, 60, (70, 8))
    expected = np.full(index.shape, np.inf)
    for i, j in zip(*np.nonzero(index >= 0), strict=True):
        diff = np.subtract(queries[rows[i]][None], reference[index[i, j]][None], dtype=np.float64)
        expected[i, j] = rows_sum_sq64(diff)[0]
    monkeypatch.setattr(prepare_module, "_PAIR_BYTES", 3 * 8 * 90)
    assert prepare_module._pair_batch(90, 8) == (1, 3)
    monkeypatch.setattr(prepare_module, "PARALLEL_MIN_WORK", 0)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        np.testing.assert_array_equal(pair_dist_sq(reference, queries, index, rows), expected)
    finally:
        torch.set_num_threads(before)


def test_float64_row_norms_depend_only_on_the_row():
    # Past 10,000 elements OpenBLAS splits one ddot among its threads (bits then follow the thread count): the row dot
    # is taken on blocks of DOT_COLUMNS, so neither the BLAS threads, nor the other rows, nor the alignment matter.
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 2 * prepare_module.DOT_COLUMNS + 1000)) * 1e3
    with threadpool_limits(1, user_api="blas"):
        one = rows_sum_sq64(x)
    with threadpool_limits(2, user_api="blas"):
        two = rows_sum_sq64(x)
    buf = np.empty(x.size + 1)
    shifted = buf[1:].reshape(x.shape)  # 8-byte aligned, not 16/64
    shifted[:] = x
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, rows_sum_sq64(shifted))
    np.testing.assert_array_equal(one[2:3], rows_sum_sq64(x[2:3]))
    exact = np.array([float(np.sum(np.asarray(row, dtype=np.longdouble) ** 2)) for row in x])
    assert np.max(np.abs(one - exact) / exact) < x.shape[1] * np.finfo(np.float64).eps
    # a strided view is read through the same contiguous kernel; a non-float64 array is refused, not downcast
    np.testing.assert_array_equal(rows_sum_sq64(np.asfortranarray(x)), one)
    with pytest.raises(TypeError, match="float64"):
        rows_sum_sq64(x.astype(np.float32))


def test_pair_scoring_past_one_dot_block_equals_scoring_each_pair_alone():
    # D on both sides of the DOT_COLUMNS block edge: the pair code sums the blocks as the kernel does
    rng = np.random.default_rng(21)
    for dim in (prepare_module.DOT_COLUMNS, prepare_module.DOT_COLUMNS + 1, 20_000):
        reference = rng.standard_normal((12, dim)).astype(np.float32)
        queries = rng.standard_normal((9, dim)).astype(np.float32)
        index = rng.integers(0, 12, (9, 3))
        expected = np.array([
            [rows_sum_sq64(np.subtract(queries[i : i + 1], reference[j][None], dtype=np.float64))[0] for j in row]
            for i, row in enumerate(index)
        ])
        np.testing.assert_array_equal(pair_dist_sq(reference, queries, index), expected)


def test_pair_scoring_of_gathered_query_rows_equals_scoring_a_gathered_copy():
    rng = np.random.default_rng(8)
    reference = rng.standard_normal((90, 40)).astype(np.float32)
    queries = rng.standard_normal((70, 40)).astype(np.float32)
    rows = rng.permutation(70)[:33]
    index = rng.integers(-1, 90, (33, 4))
    np.testing.assert_array_equal(
        pair_dist_sq(reference, queries, index, rows), pair_dist_sq(reference, queries[rows], index)
    )


def _row_hash_by_definition(x: np.ndarray) -> np.ndarray:
    """The documented hash, one row at a time: zero-padded 64-bit words, times their constants, mixed, summed."""
    width = x.shape[1] * x.dtype.itemsize
    words = -(-width // 8)
    mult = np.random.default_rng(0x5EED).integers(1, 2**63, size=words, dtype=np.uint64) | np.uint64(1)
    out = np.empty(x.shape[0], dtype=np.uint64)
    for i, row in enumerate(x):
        raw = np.zeros(words * 8, dtype=np.uint8)
        raw[:width] = (row + 0.0).astype(x.dtype).view(np.uint8)
        v = raw.view(np.uint64) * mult
        v ^= v >> np.uint64(31)
        v *= duplicates_module._MIX
        out[i] = v.sum(dtype=np.uint64)
    return out


@pytest.mark.parametrize(("dtype", "dim"), [(np.float16, 30), (np.float32, 7), (np.float64, 5), (np.float32, 64)])
def test_row_hashes_in_blocks_equal_the_hash_of_each_row(monkeypatch, dtype, dim):
    # Widths that are not a whole number of 64-bit words (float16 x 30, float32 x 7) pad the last word with zeros;
    # a block's hashing must not leave the previous block's bytes in that padding.
    x = (np.random.default_rng(3).standard_normal((517, dim)) * 3).astype(dtype)
    x[40] = x[3]
    x[41] = -0.0
    x[42] = 0.0
    monkeypatch.setattr(duplicates_module, "_HASH_BLOCK_BYTES", 8 * 13)  # a few rows per block, many blocks
    hashes, peak = duplicates_module._row_hashes(x)
    np.testing.assert_array_equal(hashes, _row_hash_by_definition(x))
    assert peak == float(np.abs(x.astype(np.float64)).max())
    assert hashes[40] == hashes[3]
    assert hashes[41] == hashes[42]


def test_rows_sharing_a_hash_are_compared_by_value():
    x = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0], [4.0, 5.0], [8.0, 9.0]])
    distinct = np.arange(6, dtype=np.uint64)
    keep, share = duplicates_module.copies_from_hashes(x, distinct)
    assert keep.tolist() == list(range(6))
    assert share == 0.0
    collided = np.array([10, 11, 12, 11, 12, 13], dtype=np.uint64)  # rows 1 and 3 collide; 2 and 4 are copies
    keep, share = duplicates_module.copies_from_hashes(x, collided)
    assert keep.tolist() == [0, 1, 2, 3, 5]
    assert share == pytest.approx(2 / 6)


@pytest.mark.parametrize("dim", [3, 256, 8192, 10_000])
def test_centring_in_gathered_blocks_of_any_size_gives_the_same_bits(monkeypatch, dim):
    # Above einsum's 8,192-column buffer its row sum of a ONE-row block differs from that of a block of 2 or more
    # rows: a block of one row must still give the bits of one einsum over the whole bank (blocks of 1 and 3 rows
    # asked for here; above 8,192 columns blocks of 2 and 3 rows, and the 61st row left alone in its block).
    n = 61 if dim > 1000 else 1000
    x = (np.random.default_rng(dim).standard_normal((n, dim)) * 3 + 7).astype(np.float32)
    order = np.random.default_rng(1).permutation(n)
    default = prepare(x, x[:3], rows=order, sq_norms=True)
    r32 = x[order] - default.centre.astype(np.float32)
    np.testing.assert_array_equal(default.reference32, r32)
    # the norm column by definition: one einsum over all the rows at once (the same bits for 2 rows or 1,000)
    np.testing.assert_array_equal(default.reference_aug32[:, -1], -0.5 * np.einsum("ij,ij->i", r32, r32))
    assert default.sq_norms64 is not None
    exact = np.array([math.fsum(v * v for v in row.astype(np.float64).tolist()) for row in r32])
    np.testing.assert_allclose(default.sq_norms64, exact, rtol=1e-12, atol=0.0)
    for rows in (1, 3):
        monkeypatch.setattr(prepare_module, "_GATHER_BYTES", 4 * dim * rows)
        blocks = prepare(x, x[:3], rows=order, sq_norms=True)
        np.testing.assert_array_equal(blocks.reference_aug32, default.reference_aug32)
        assert blocks.sq_norms64 is not None
        np.testing.assert_array_equal(blocks.sq_norms64, default.sq_norms64)


@pytest.mark.parametrize(("n", "dim"), [(1_000, 4_200), (420, 10_000)])
def test_centring_gives_the_same_bits_on_one_and_two_threads(n, dim):
    # n * D is at least PARALLEL_MIN_WORK: the centring steps are shared between two threads, and shrink to half.
    # At D = 10,000 a step is 419 rows on one thread (the last step: ONE row, row 419) and 209 on two; a one-row
    # block's einsum row sum differs above 8,192 columns unless it is computed as a block of two rows.
    assert n * dim >= prepare_module.PARALLEL_MIN_WORK
    x = (np.random.default_rng(n).standard_normal((n, dim)) * 1e-3 + 7).astype(np.float32)
    before = torch.get_num_threads()
    try:
        runs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            runs.append(prepare(x, x[:3], sq_norms=True))
    finally:
        torch.set_num_threads(before)
    one, two = runs
    r32 = x - one.centre.astype(np.float32)
    np.testing.assert_array_equal(one.reference32, r32)
    np.testing.assert_array_equal(one.reference_aug32, two.reference_aug32)
    np.testing.assert_array_equal(one.reference_aug32[:, -1], -0.5 * np.einsum("ij,ij->i", r32, r32))
    assert one.sq_norms64 is not None
    assert two.sq_norms64 is not None
    np.testing.assert_array_equal(one.sq_norms64, two.sq_norms64)


def test_centring_rejects_rows_out_of_range_instead_of_wrapping():
    # centred_aug32 gathers with np.take(mode="wrap"): row n would silently be row 0. It is called directly (the
    # concentration's subset, the ANN engine's chunks), not only through prepare's bank_centre.
    x = np.arange(12.0, dtype=np.float32).reshape(4, 3)
    centre = np.zeros(3)
    for bad in ([0, 4], [-5, 1]):
        with pytest.raises(IndexError, match="rows must index the 4 rows"):
            prepare_module.centred_aug32(x, centre, np.array(bad))
    aug = prepare_module.centred_aug32(x, centre, np.array([3, -4, -1]))  # what x[rows] accepts, x[rows] it gives
    np.testing.assert_array_equal(aug[:, :-1], x[[3, -4, -1]])
    np.testing.assert_array_equal(aug[:, -1], -0.5 * (x[[3, 0, 3]] ** 2).sum(axis=1))
