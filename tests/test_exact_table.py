"""The exact engine's neighbour table holds the true k nearest rows in float64 (not float32's), ties aside."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_repgap._exact import Tiles, knn32
from lightning_repgap._exact_table import (
    _column_error,
    _least_columns,
    _pair_tolerance,
    exact_table,
    float64_top_k,
)
from lightning_repgap._prepare import prepare
from lightning_repgap.gap import gap_curve
from lightning_repgap.search import ExactEngine

BACKENDS = ["faiss", "torch"]


def _brute_top_k(bank: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 ``||q - r||^2`` computed directly for every pair, the ``k`` least per query (stable on ties)."""
    index, dist = [], []
    for i0 in range(0, queries.shape[0], 16):
        d = ((queries[i0 : i0 + 16, None, :] - bank[None, :, :]) ** 2).sum(axis=-1)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        index.append(order)
        dist.append(np.take_along_axis(d, order, axis=1))
    return np.concatenate(index), np.concatenate(dist)


def _dense_line(seed: int, n: int, m: int, dim: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A dense 1-d segment in ``dim`` dimensions: neighbour gaps ~1e-4 apart, float32 errors ~1e-7 of the norms."""
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(dim)
    x = 1e3 + rng.random(n + m)[:, None] * (direction / np.linalg.norm(direction))[None, :]
    return x[:n], x[n:]


def _assert_exact(bank: np.ndarray, queries: np.ndarray, knn: np.ndarray, dist: np.ndarray, k: int) -> None:
    want_index, want_dist = _brute_top_k(bank, queries, k)
    order = np.argsort(dist, axis=1, kind="stable")
    np.testing.assert_allclose(np.take_along_axis(dist, order, axis=1), want_dist, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(np.sort(knn, axis=1), np.sort(want_index, axis=1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_table_of_a_dense_line_is_the_float64_top_k(backend):
    # 20,000 points on a segment: the 20th and 21st neighbours of many queries are within float32 error of each
    # other, and float32's top 20 held the farther one (about a fifth of the rows before the fix, torch backend).
    # The FAISS case passed before the fix too (its float32 errors are smaller here): it covers that path.
    bank, queries = _dense_line(0, 20_000, 120)
    res = ExactEngine(backend).search(
        bank, queries, None, np.array([1000, 20_000]), knn_queries=np.arange(120), n_neighbors=20
    )
    assert res.knn_rows is not None
    assert res.knn_dist_sq is not None
    _assert_exact(bank, queries, res.knn_rows, res.knn_dist_sq, 20)


def test_the_curve_table_of_a_dense_line_is_the_float64_top_k():
    bank, queries = _dense_line(1, 20_000, 100)
    curve = gap_curve(bank, queries, n_neighbors=20, neighbor_queries=100, seed=0)
    assert curve.knn_dist_sq is not None
    assert curve.knn_index is not None
    # The table's rows are the queries in some order: match each row to its query by the nearest distance.
    want_index, want_dist = _brute_top_k(bank, queries, 20)
    rows = np.argmin(np.abs(curve.knn_dist_sq[:, :1] - want_dist[:, 0][None, :]), axis=1)
    assert np.unique(rows).size == rows.size
    np.testing.assert_allclose(curve.knn_dist_sq, want_dist[rows], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(np.sort(curve.knn_index, axis=1), np.sort(want_index[rows], axis=1))


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    intrinsic=st.integers(1, 3),
    dim=st.integers(3, 40),
    far=st.floats(1.0, 1e3),
    k=st.integers(1, 30),
)
def test_random_low_dimensional_clouds_get_the_float64_top_k(seed, intrinsic, dim, far, k):
    """Curved low-dimensional clouds, dense enough for float32 near ties at the ``k``-th neighbour.

    One bank row is moved ``far`` times as far from the mean: the per-row margin bounds the float32 error of the
    rows left out by their distance, not by the farthest bank row (a wrong bound would lose a neighbour here).
    """
    rng = np.random.default_rng(seed)
    n, m = 6000, 60
    t = rng.random((n + m, intrinsic)) * 2 * np.pi
    x = np.concatenate([np.cos(t), np.sin(t)], axis=1) @ rng.standard_normal((2 * intrinsic, dim))
    x[int(rng.integers(n))] *= far
    res = ExactEngine("torch").search(
        x[:n], x[n:], None, np.array([n // 4, n]), knn_queries=np.arange(m), n_neighbors=k
    )
    assert res.knn_rows is not None
    assert res.knn_dist_sq is not None
    _assert_exact(x[:n], x[n:], res.knn_rows, res.knn_dist_sq, k)


def _counting(monkeypatch) -> list[int]:
    """Rows sent to the float64 search, per call."""
    calls: list[int] = []
    real = float64_top_k

    def counting(prepared, which, k):
        calls.append(which.size)
        return real(prepared, which, k)

    monkeypatch.setattr("lightning_repgap._exact_table.float64_top_k", counting)
    return calls


def _worst_row_tolerance(prep, rows):
    # The pair bound against the bank's largest norm: at least every per-row margin of the settle check / 2.
    r_max = float(prep.sq_norms64.max())
    return _pair_tolerance(prep, prep.queries_sq_norms64[rows], r_max, _column_error(prep))


def test_rows_the_float32_ranking_settles_are_kept_and_the_others_searched_again(monkeypatch):
    # A Gaussian cloud: the k-th and (k+1)-th neighbours are far apart relative to float32 error, so (nearly)
    # every row is kept as float32 selected it, the (k+1)-th candidate dropped.
    rng = np.random.default_rng(5)
    bank, queries = rng.standard_normal((3000, 16)), rng.standard_normal((50, 16))
    prep = prepare(bank, queries, sq_norms=True)
    rows, tiles = np.arange(50), Tiles("torch")
    want_index, _ = _brute_top_k(bank, queries, 6)
    dist = prep.dist_sq(want_index, rows=rows)
    calls = _counting(monkeypatch)
    table, got = exact_table(prep, rows, want_index, dist, 5, tiles)
    settled = dist[:, 5] - dist[:, 4] > 2 * _worst_row_tolerance(prep, rows)
    assert settled.sum() >= 45
    np.testing.assert_array_equal(table[settled], want_index[settled, :5])
    np.testing.assert_array_equal(got[settled], dist[settled, :5])
    _assert_exact(bank, queries, table, got, 5)
    # Float32 ranked the 6th nearest before the 5th: every row is ambiguous; the wider float32 search of those
    # rows settles them (2k + 16 candidates), and no row needs the float64 search.
    swapped = want_index[:, [0, 1, 2, 3, 5, 4]]
    table, got = exact_table(prep, rows, swapped, prep.dist_sq(swapped, rows=rows), 5, tiles)
    _assert_exact(bank, queries, table, got, 5)
    assert calls == []
    # With a tolerance no candidate gap can beat, every row goes on to the float64 search, and is still exact.
    monkeypatch.setattr("lightning_repgap._exact_table._pair_tolerance", lambda prepared, q, r, c: np.full(q.size, 1e9))
    table, got = exact_table(prep, rows, swapped, prep.dist_sq(swapped, rows=rows), 5, tiles)
    _assert_exact(bank, queries, table, got, 5)
    assert calls == [50]


def test_float64_top_k_over_several_bank_chunks(monkeypatch):
    monkeypatch.setattr("lightning_repgap._exact_table._CHUNK_BYTES", 8 * 3 * 7)  # 7 bank rows per chunk
    rng = np.random.default_rng(2)
    bank, queries = rng.standard_normal((200, 3)) + 50.0, rng.standard_normal((9, 3)) + 50.0
    prep = prepare(bank, queries)
    table, dist = float64_top_k(prep, np.arange(9), 12)
    want_index, want_dist = _brute_top_k(bank, queries, 12)
    np.testing.assert_array_equal(table, want_index)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-12, atol=0)


def test_float64_top_k_memory_stays_bounded_with_many_rows():
    # 256 rows against 100,000 bank rows in D = 8: one Gram block of them all was 256 x 100,000 float64 (195 MiB,
    # three such temporaries: about 600 MiB peak before the fix); row groups keep it to a few 8 MiB blocks.
    bank, queries = _dense_line(3, 100_000, 256)
    prep = prepare(bank, queries)
    rows = np.arange(256)
    tracemalloc.start()
    try:
        table, dist = float64_top_k(prep, rows, 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20
    want_index, want_dist = _brute_top_k(bank, queries[:16], 20)
    np.testing.assert_array_equal(table[:16], want_index)
    np.testing.assert_allclose(dist[:16], want_dist, rtol=1e-12, atol=0)


def test_a_dense_line_goes_to_the_float64_search_and_comes_back_exact():
    # No monkeypatching: 50,000 points on a segment in D = 4 leave about two thirds of the rows ambiguous after
    # the wider float32 search too, so the float64 search of the bank decides them.
    bank, queries = _dense_line(4, 50_000, 64, dim=4)
    res = ExactEngine("torch", precision="fp32").search(
        bank, queries, None, np.array([10_000, 50_000]), knn_queries=np.arange(64), n_neighbors=20
    )
    assert res.knn_rows is not None
    assert res.knn_dist_sq is not None
    _assert_exact(bank, queries, res.knn_rows, res.knn_dist_sq, 20)


def test_exact_copies_are_settled_without_the_float64_search(monkeypatch):
    # 100 copies of each bank point and queries that are copies too: the k + 1 candidates are all at distance 0,
    # and nothing is closer than 0. Every row went to the float64 search before the fix.
    rng = np.random.default_rng(6)
    base = rng.standard_normal((200, 5))
    bank, queries = np.repeat(base, 100, axis=0), base[:50].copy()
    calls = _counting(monkeypatch)
    res = ExactEngine("torch", precision="fp32").search(
        bank, queries, None, np.array([5000, 20_000]), knn_queries=np.arange(50), n_neighbors=20
    )
    assert calls == []
    assert res.knn_rows is not None
    assert res.knn_dist_sq is not None
    np.testing.assert_array_equal(res.knn_dist_sq, 0.0)
    np.testing.assert_array_equal(res.knn_rows // 100, np.repeat(np.arange(50)[:, None], 20, axis=1))


def test_a_query_with_a_near_copy_among_exact_copies_is_still_exact(monkeypatch):
    # The k + 1 candidates hold copies at distance 0, but fewer than k + 1 of them: not settled by the zero rule.
    rng = np.random.default_rng(7)
    base = rng.standard_normal((300, 5))
    bank = np.concatenate([np.repeat(base[:1], 10, axis=0), base[1:] + 1e-3, base])
    prep = prepare(bank, base[:1].copy(), sq_norms=True)
    want_index, _ = _brute_top_k(bank, base[:1], 13)
    dist = prep.dist_sq(want_index, rows=np.array([0]))
    table, got = exact_table(prep, np.array([0]), want_index, dist, 12, Tiles("torch"))
    _assert_exact(bank, base[:1], table, got, 12)


def test_one_far_bank_row_does_not_send_every_row_to_the_float64_search(monkeypatch):
    # A 4-d manifold in D = 64 with one bank row moved 300x as far: the bank-wide max ||r||^2 made every row's
    # margin 90,000x too wide, and all 256 rows went to the float64 search before the fix. Rows left out that
    # could matter are within ||q|| + sqrt(d_k) of the centre, so the far row's norm does not enter the margin.
    rng = np.random.default_rng(0)
    x = np.tanh(rng.standard_normal((20_256, 4)) @ rng.standard_normal((4, 64)))
    x[7] *= 300
    calls = _counting(monkeypatch)
    res = ExactEngine("torch", precision="fp32").search(
        x[:20_000], x[20_000:], None, np.array([5000, 20_000]), knn_queries=np.arange(256), n_neighbors=20
    )
    assert sum(calls) <= 25
    assert res.knn_rows is not None
    assert res.knn_dist_sq is not None
    _assert_exact(x[:20_000], x[20_000:], res.knn_rows, res.knn_dist_sq, 20)


def test_a_norm_column_off_by_more_than_the_statistical_bound_is_caught():
    # The float32 norm column's error is systematic on common-mode data (it grows like D, not sqrt(D)): simulated
    # here by moving the nearest row's column so that its float32 score falls between the 7th and 8th nearest's.
    # The float32 top k + 1 = 6 then misses it, and the gap after them is wide against the statistical bound: the
    # margin must know the column is off (it measures the column's error), else the row is settled wrong.
    bank, queries = _dense_line(8, 500, 1)
    prep = prepare(bank, queries, sq_norms=True)
    index, dist = _brute_top_k(bank, queries, 8)
    prep.reference_aug32[index[0, 0], -1] -= np.float32(((dist[0, 6] + dist[0, 7]) / 2 - dist[0, 0]) / 2)
    rows, tiles = np.array([0]), Tiles("torch")
    _, found = knn32(prep.reference32, prep.queries32, 6, tiles, reference_aug32=prep.reference_aug32)
    assert index[0, 0] not in found
    table, got = exact_table(prep, rows, found, prep.dist_sq(found, rows=rows), 5, tiles)
    _assert_exact(bank, queries, table, got, 5)


def test_a_bank_of_k_plus_one_rows_is_sorted_without_the_float64_search(monkeypatch):
    # 21 bank rows on a circle round the query, distances 1 + i 1e-9 apart (within float32 error): every row is
    # ambiguous, and the k + 1 candidates are the whole bank, so they are sorted in float64 as they are (they
    # went to the float64 search of the bank before).
    i = np.arange(21)
    angle = 2 * np.pi * ((7 * i) % 21) / 21
    bank = np.sqrt(1.0 + i * 1e-9)[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    queries = np.zeros((1, 2))
    calls = _counting(monkeypatch)
    res = ExactEngine("torch", precision="fp32").search(
        bank, queries, None, np.array([10, 21]), knn_queries=np.arange(1), n_neighbors=20
    )
    assert calls == []
    assert res.knn_rows is not None
    assert res.knn_dist_sq is not None
    _assert_exact(bank, queries, res.knn_rows, res.knn_dist_sq, 20)
    np.testing.assert_array_equal(res.knn_rows, np.arange(20)[None, :])


def test_a_left_out_neighbour_within_the_two_pair_bound_is_not_settled():
    # A float32 ranking that leaves the true k-th neighbour out, within the two pairs' error bound, must send the row
    # on (the left-out row's own error term is what catches it; the query sits at the centre, so |q| << |o|).
    k, ang = 5, np.linspace(0.0, 2 * np.pi, 7, endpoint=False)

    def build(e: float) -> tuple[np.ndarray, np.ndarray]:
        d = np.array([1.0, 1.001, 1.002, 1.003, 2.0, 2.0 + 0.5 * e, 2.0 + 1.8 * e])  # row 4 is the true k-th
        near = np.sqrt(d)[:, None] * np.stack([np.cos(ang), np.sin(ang)], axis=1)
        far = np.array([[10.0, 0.0], [-10.0, 0.0]])
        return np.concatenate([near, far]), np.zeros((1, 2))

    bank, q = build(0.0)
    prep = prepare(bank, q, sq_norms=True)
    e = float(_pair_tolerance(prep, prep.queries_sq_norms64, 2.0, _column_error(prep))[0])
    bank, q = build(e)
    prep, rows = prepare(bank, q, sq_norms=True), np.array([0])
    cand = np.array([[0, 1, 2, 3, 5, 6]])  # row 4 ranked after row 6: within e(q, 4) + e(q, 6)
    table, _ = exact_table(prep, rows, cand, prep.dist_sq(cand, rows=rows), k, Tiles("torch"))
    assert sorted(table[0].tolist()) == [0, 1, 2, 3, 4]


def test_least_columns_is_a_stable_sort_on_ties():
    rng = np.random.default_rng(0)
    for _ in range(200):
        gram = rng.integers(0, 4, size=(5, 30)).astype(np.float64)  # many ties at every cut
        keep = int(rng.integers(1, 30))
        expect = np.argsort(gram, axis=1, kind="stable")[:, :keep]
        np.testing.assert_array_equal(_least_columns(gram, keep), expect)
