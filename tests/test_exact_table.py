"""The exact engine's neighbour table holds the true k nearest rows in float64 (not float32's), ties aside."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_repgap._exact import Tiles
from lightning_repgap._exact_table import exact_table, float64_top_k, table_tolerance
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
    offset=st.floats(0.0, 1e3),
    k=st.integers(1, 30),
)
def test_random_low_dimensional_clouds_get_the_float64_top_k(seed, intrinsic, dim, offset, k):
    """Curved low-dimensional clouds, dense enough for float32 near ties at the ``k``-th neighbour."""
    rng = np.random.default_rng(seed)
    n, m = 6000, 60
    t = rng.random((n + m, intrinsic)) * 2 * np.pi
    x = np.concatenate([np.cos(t), np.sin(t)], axis=1) @ rng.standard_normal((2 * intrinsic, dim)) + offset
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
    settled = dist[:, 5] - dist[:, 4] > 2 * table_tolerance(prep, rows)
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
    monkeypatch.setattr("lightning_repgap._exact_table._pair_tolerance", lambda prepared, q, r: np.full(q.size, 1e9))
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
