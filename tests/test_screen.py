"""The bf16 screen: its error bound holds, and its answers are a float64 brute force's, on adversarial data."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import lightning_repgap._prepare as prepare_module
import lightning_repgap._screen as screen_module
from lightning_repgap import GapConfig, gap_curve
from lightning_repgap._prepare import pair_dist_sq, prepare, rows_sum_sq64
from lightning_repgap._screen import (
    OUTPUT_ROUNDING,
    TILE,
    _Bank,
    _Chunk,
    accumulates_in_fp32,
    float64_slack,
    screen_search,
    tile_error,
    use_screen,
)
from lightning_repgap._screen_tiles import bf16_bits, widen_bits
from lightning_repgap._threads import thread_scope
from lightning_repgap.search import ExactEngine, check_precision, nearest

CPU = torch.device("cpu")


def _brute(bank: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Float64 ``||q - r||^2`` of every pair, as the search's re-scoring computes it."""
    q64 = queries.astype(np.float64)
    out = np.empty((queries.shape[0], bank.shape[0]))
    for j in range(bank.shape[0]):
        diff = np.subtract(q64, bank[j], dtype=np.float64)
        out[:, j] = rows_sum_sq64(diff)
    return out


def _check_exact(bank, queries, sizes, knn_rows=None, k=0, expect_screen=True):
    prep = prepare(bank, queries)
    res = screen_search(prep, np.asarray(sizes), CPU, knn_rows=knn_rows, k=k)
    assert (res is not None) == expect_screen
    if res is None:
        return None
    d = _brute(bank, queries)
    for s, size in enumerate(sizes):
        # np.argmin returns the first minimum: the earliest bank position on ties, as the screen must.
        np.testing.assert_array_equal(res.winners[s], d[:, :size].argmin(axis=1))
        np.testing.assert_array_equal(res.dist_sq[s], d[:, :size].min(axis=1))
    if knn_rows is not None:
        expected = np.argsort(d[knn_rows, : sizes[-1]], axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(res.knn, expected)
    return res


def _gaussian(n, m, dim, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dim)).astype(dtype), rng.standard_normal((m, dim)).astype(dtype)


@pytest.mark.parametrize("kind", ["gaussian", "offset", "heavy_tails", "mixed_norms", "low_dim_float64", "tiny_scale"])
def test_the_bound_holds_on_every_entry_of_a_tile(kind):
    rng = np.random.default_rng(1)
    bank, queries = _gaussian(600, 300, 48, seed=1)
    if kind == "offset":
        bank, queries = bank.astype(np.float64) + 1e6, queries.astype(np.float64) + 1e6
    elif kind == "heavy_tails":
        bank, queries = (
            rng.standard_cauchy((600, 48)).astype(np.float32),
            rng.standard_cauchy((300, 48)).astype(np.float32),
        )
    elif kind == "mixed_norms":
        bank = bank * np.float32(10.0) ** rng.integers(-3, 4, (600, 1)).astype(np.float32)
    elif kind == "low_dim_float64":
        bank, queries = rng.random((600, 3)), rng.random((300, 3))
    elif kind == "tiny_scale":
        bank, queries = bank * np.float32(1e-20), queries * np.float32(1e-20)
    prep = prepare(bank, queries)
    screened = _Bank(prep.reference_aug32, CPU)
    chunk = _Chunk(prep.queries32, screened, prep.reference_aug32[:64], CPU)
    chunk.set_shift(np.linspace(-5.0, 5.0, queries.shape[0]))  # any shift is valid
    out = (chunk.mat @ screened.mat.T).double().numpy()
    err = tile_error(chunk, screened, 0, bank.shape[0], float64_slack(chunk, bank.shape[1], screened.norm.max()))
    # The true score of the exact centred data, in float64 (exact enough: far below the bound).
    q = queries.astype(np.float64) - prep.centre
    r = bank.astype(np.float64) - prep.centre
    true = q @ r.T - 0.5 * np.einsum("ij,ij->i", r, r)[None, :] - chunk.shift[:, None]
    slack = OUTPUT_ROUNDING * np.abs(out) + err[:, None]
    assert np.all(np.abs(true - out) <= slack)
    # ... and it is not vacuous: the bound is within a small factor of the worst error seen.
    assert np.max(np.abs(true - out) / slack) > 0.02


def test_gaussian_prefix_minima_and_neighbour_table_equal_float64_brute_force():
    bank, queries = _gaussian(3 * TILE + 100, 300, 40)
    res = _check_exact(bank, queries, [16, 100, 1000, TILE, 3 * TILE + 100], knn_rows=np.arange(0, 300, 3), k=7)
    assert res.candidates < 30 * 300  # screening does screen


def test_bank_rows_past_the_cached_operand_are_rounded_per_tile_with_the_same_answer(monkeypatch):
    """A bank whose bf16 operand would exceed the cache budget: rows past it are rounded tile by tile, exactly."""
    bank, queries = _gaussian(3 * TILE + 100, 200, 40, seed=3)
    sizes = [16, 100, 1000, TILE, 3 * TILE + 100]
    rows = np.arange(0, 200, 4)
    whole = screen_search(prepare(bank, queries), np.asarray(sizes), CPU, knn_rows=rows, k=5)
    monkeypatch.setattr(screen_module, "_CACHE_BYTES", 0)  # only the first _PRIME rows stay cached
    assert _Bank(prepare(bank, queries).reference_aug32, CPU).cached == screen_module._PRIME < bank.shape[0]
    part = _check_exact(bank, queries, sizes, knn_rows=rows, k=5)
    np.testing.assert_array_equal(np.asarray(part.winners), np.asarray(whole.winners))
    np.testing.assert_array_equal(np.asarray(part.dist_sq), np.asarray(whole.dist_sq))
    np.testing.assert_array_equal(part.knn, whole.knn)
    assert part.candidates == whole.candidates  # the same screened scores, not just the same answer


def test_near_ties_are_ordered_by_float64():
    # Pairs of bank points at distances from the query that differ by far less than float32 (or bf16) resolves.
    rng = np.random.default_rng(2)
    queries = rng.standard_normal((64, 16))
    direction = rng.standard_normal((64, 16))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    far = queries + direction
    nearer = queries + direction * (1 - 1e-11)  # 1e-11 closer: invisible to float32
    bank = np.concatenate([far, nearer, rng.standard_normal((500, 16)) * 3])
    _check_exact(bank, queries, [64, 128, bank.shape[0]], knn_rows=np.arange(64), k=3)


def test_duplicates_resolve_to_the_earliest_row():
    bank, queries = _gaussian(400, 50, 24)
    bank = np.concatenate([bank, bank, queries[:10], queries[:10]])  # exact copies, and queries in the bank
    _check_exact(bank, queries, [400, 800, 820], knn_rows=np.arange(50), k=4)


def test_huge_offsets_are_centred_first():
    bank, queries = _gaussian(1500, 200, 32)
    _check_exact(bank.astype(np.float64) + 1e7, queries.astype(np.float64) + 1e7, [100, 1500], np.arange(20), 5)


def test_clustered_data_with_many_candidates_stays_exact():
    # Every bank point of a cluster is at nearly the same distance from the query at its centre.
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((40, 32)) * 10
    shell = rng.standard_normal((40, 40, 32))
    shell /= np.linalg.norm(shell, axis=2, keepdims=True)
    bank = (centres[:, None, :] + shell * (1 + 1e-4 * rng.random((40, 40, 1)))).reshape(-1, 32)
    bank = bank[rng.permutation(bank.shape[0])]
    queries = centres + 1e-6 * rng.standard_normal(centres.shape)
    res = _check_exact(bank, queries, [50, 500, 1600], knn_rows=np.arange(20), k=10)
    assert res.candidates > 30 * 40  # a whole cluster survives the screen per query, and the answer is still exact


def test_a_useless_bound_falls_back_after_one_tile(caplog):
    # Queries at the centre of a sphere of bank points whose distances differ by 1e-8, far below the bf16 bound
    # (~1e-5 here): every point is a candidate.
    rng = np.random.default_rng(4)
    bank = rng.standard_normal((3 * TILE, 16))
    bank *= (1 + 1e-8 * rng.random((3 * TILE, 1))) / np.linalg.norm(bank, axis=1, keepdims=True)
    queries = 1e-9 * rng.standard_normal((TILE, 16))
    with caplog.at_level(logging.INFO, logger="lightning_repgap._screen"):
        _check_exact(bank, queries, [3 * TILE], expect_screen=False)
    (message,) = [r.getMessage() for r in caplog.records if "gave up" in r.getMessage()]
    assert f"after {TILE * TILE} scored pairs" in message  # detected on the first tile, not at the end
    # The engine then runs the float32 tiles (whose float32 ranking is good to float32 precision here).
    found = ExactEngine("torch", precision="bf16-screen").search(bank, queries, None, np.array([3 * TILE]))
    np.testing.assert_allclose(found.minima.dist_sq[-1], _brute(bank, queries).min(axis=1), rtol=1e-6)


def test_nearest_and_gap_curve_with_the_screen_equal_float64_brute_force():
    bank, queries = _gaussian(2500, 120, 20, seed=5)
    d = _brute(bank, queries)
    for k in (1, 4):
        dist, idx = nearest(bank, queries, k=k, backend="torch", search_precision="bf16-screen")
        np.testing.assert_array_equal(idx, np.argsort(d, axis=1, kind="stable")[:, :k])
        np.testing.assert_array_equal(dist, np.take_along_axis(d, idx, axis=1))
    self_d, self_i = nearest(bank[:300], bank[:300], k=2, exclude_self=True, search_precision="bf16-screen")
    ref_d, ref_i = nearest(bank[:300], bank[:300], k=2, exclude_self=True, search_precision="fp32")
    np.testing.assert_array_equal(self_i, ref_i)
    np.testing.assert_allclose(self_d, ref_d, rtol=1e-12)
    fast = gap_curve(bank, queries, backend="torch", search_precision="bf16-screen", n_neighbors=5)
    slow = gap_curve(bank, queries, backend="torch", search_precision="fp32", n_neighbors=5)
    order = np.random.default_rng(0).permutation(bank.shape[0])
    for s, size in enumerate(fast.sizes):
        np.testing.assert_allclose(fast.gaps[s], d[:, order[:size]].min(axis=1).mean(), rtol=1e-12)
    np.testing.assert_allclose(fast.gaps, slow.gaps, rtol=1e-9)
    np.testing.assert_array_equal(fast.knn_index, slow.knn_index)


def test_search_precision_is_validated_stored_and_chosen():
    with pytest.raises(ValueError, match="`search_precision` must be one of"):
        GapConfig(search_precision="bf32")
    with pytest.raises(ValueError, match="`search_precision` must be one of"):
        check_precision("fp16")
    config = GapConfig(search_precision="fp32")
    assert config.to_dict()["search_precision"] == "fp32"
    assert GapConfig.from_dict(config.to_dict()) == config
    assert GapConfig().search_precision == "auto"
    assert use_screen("fp32", 256, 10**12, CPU) is False
    assert use_screen("bf16-screen", 256, 1, CPU) is True
    assert use_screen("auto", 256, 1000, CPU) is False  # too small to probe
    assert accumulates_in_fp32(CPU)  # the bound's assumption, on this host


def test_the_shift_columns_round_like_torch():
    # The per-tile shift is written on the operand's bits in numpy: it must round exactly as torch's bf16 cast does
    # (round to nearest even, ties included), or the shift the bound assumes would not be the one multiplied.
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(20000) * 10.0 ** rng.integers(-30, 30, 20000)).astype(np.float32)
    ties = (np.arange(1, 2001, dtype=np.uint32) << 16 | 0x8000).view(np.float32)  # exactly halfway between bf16s
    x = np.concatenate([x, ties, -ties, np.float32([0.0, -0.0, 3.3e38, -3.3e38])])
    expected = torch.from_numpy(x).to(torch.bfloat16)
    np.testing.assert_array_equal(bf16_bits(x), expected.view(torch.int16).numpy().view(np.uint16))
    np.testing.assert_array_equal(widen_bits(bf16_bits(x)), expected.float().numpy())


def test_pair_distances_do_not_depend_on_the_step(monkeypatch):
    rng = np.random.default_rng(7)
    reference, queries = rng.standard_normal((300, 5000)).astype(np.float32), rng.standard_normal((90, 5000))
    index = rng.integers(-1, 300, (90, 3))
    small = pair_dist_sq(reference, queries, index)  # a few rows per step at this D
    monkeypatch.setattr(prepare_module, "_PAIR_BYTES", 1 << 40)  # one step of PAIR_QUERY_STEP rows
    np.testing.assert_array_equal(small, pair_dist_sq(reference, queries, index))
    assert np.isinf(small[index < 0]).all()


def test_pair_distances_give_every_thread_a_step_at_a_small_width(monkeypatch):
    # k = 1 at D = 256 just above the threading threshold (2^22 multiply-adds): 16,384 queries. At 16 batches of 256
    # queries per step that made 4 steps, so 4 of 8 threads idled; the steps now shrink to leave one per thread
    # (and the same bits: each pair is scored on its own; threads count only the steps, with the GIL released).
    rng = np.random.default_rng(9)
    reference, queries = rng.standard_normal((64, 256)), rng.standard_normal((16384, 256))
    index = rng.integers(0, 64, (16384, 1))
    steps: list[int] = []
    real = prepare_module.parallel_steps

    def spy(run, starts, work):
        steps.append(len(starts))
        real(run, starts, work)

    one = pair_dist_sq(reference, queries, index)
    monkeypatch.setattr(prepare_module, "parallel_steps", spy)
    with thread_scope(8):
        eight = pair_dist_sq(reference, queries, index)
    assert steps == [8]
    np.testing.assert_array_equal(one, eight)


def test_rescoring_does_not_depend_on_its_step_and_stays_small_at_a_large_width(monkeypatch):
    rng = np.random.default_rng(8)
    bank, queries = rng.standard_normal((200, 4000)).astype(np.float32), rng.standard_normal((50, 4000))
    prep = prepare(bank, queries)
    qi, pos = rng.integers(0, 50, 700), rng.integers(0, 200, 700)
    calls: list[int] = []
    original = type(prep).bank_rows

    def spy(self, rows):  # type: ignore[no-untyped-def]
        calls.append(len(rows))
        return original(self, rows)

    monkeypatch.setattr(type(prep), "bank_rows", spy)
    small = screen_module._rescore(prep, qi, pos)
    assert max(calls) * 8 * 4000 <= screen_module._RESCORE_BYTES  # float64 differences bounded by bytes, not rows
    monkeypatch.setattr(screen_module, "_RESCORE_BYTES", 1 << 40)
    np.testing.assert_array_equal(small, screen_module._rescore(prep, qi, pos))
    np.testing.assert_allclose(small, _brute(bank, queries)[qi, pos], rtol=0, atol=0)


def _prefix_minima_by_definition(qi, pos, dist, m, sizes):
    """Per size and query: least ``(distance, position)`` among the candidates with ``pos < size``, one by one."""
    winners = np.full((len(sizes), m), -1, dtype=np.int64)
    dist_sq = np.full((len(sizes), m), np.inf)
    for s, size in enumerate(sizes):
        for q in range(m):
            sel = np.flatnonzero((qi == q) & (pos < size))
            best = min(zip(dist[sel].tolist(), pos[sel].tolist(), strict=True))
            dist_sq[s, q], winners[s, q] = best
    return winners, dist_sq


@pytest.mark.parametrize("seed", range(6))
def test_prefix_minima_are_the_least_distance_earliest_position_at_every_size(seed):
    # Heavy ties (integer distances), ties across size blocks, repeated sizes and candidates past the last size.
    rng = np.random.default_rng(seed)
    m, n = 9, 400
    sizes = np.array([3, 10, 10, 50, 51, 200, 300])
    extra = 12 * m
    qi = np.concatenate([np.arange(m), rng.integers(0, m, extra)])
    pos = np.concatenate([rng.integers(0, 3, m), rng.integers(0, n, extra)])
    dist = rng.integers(0, 4, qi.size).astype(np.float64) if seed % 2 else rng.random(qi.size).round(1)
    perm = rng.permutation(qi.size)
    qi, pos, dist = qi[perm], pos[perm], dist[perm]
    winners, dist_sq = screen_module._prefix_minima(qi, pos, dist, m, sizes)
    want_w, want_d = _prefix_minima_by_definition(qi, pos, dist, m, sizes)
    np.testing.assert_array_equal(winners, want_w)
    np.testing.assert_array_equal(dist_sq, want_d)
    assert winners.dtype == np.int64


@pytest.mark.parametrize("width", [2048, 1696, 320])
def test_tile_candidates_are_every_hit_entry_reaching_its_threshold(width):
    # Whole 64-column groups (2048, 320) and a narrower last group (1696); signed zeros at a zero threshold.
    from lightning_repgap._screen_tiles import candidates

    rng = np.random.default_rng(width)
    tile = torch.from_numpy(rng.standard_normal((300, width)).astype(np.float32)).to(torch.bfloat16)
    tile[tile.abs() < 0.05] = 0.0
    tile[:, ::7] = torch.where(tile[:, ::7] == 0, torch.tensor(-0.0, dtype=torch.bfloat16), tile[:, ::7])
    hit = np.sort(rng.choice(300, 120, replace=False))
    thr = np.full(300, np.inf)
    thr[hit] = rng.choice([0.0, -0.0, 1.5, 2.5], hit.size)
    wide = tile.float().numpy()
    want_r, want_c = np.nonzero(wide[hit] >= thr[hit, None])
    # without and with the screen's reused buffers (the screen always passes them)
    buffers = (torch.empty(tile.numel(), dtype=torch.bfloat16), torch.empty(256 * width))
    for rows, cols, values in (candidates(tile, hit, thr), candidates(tile, hit, thr, *buffers)):
        np.testing.assert_array_equal(rows, hit[want_r])
        np.testing.assert_array_equal(cols, want_c)
        np.testing.assert_array_equal(values, wide[hit[want_r], want_c].astype(np.float64))
