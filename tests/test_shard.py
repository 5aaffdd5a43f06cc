"""The exact search shared among ranks (``_shard``): W simulated ranks (threads) give one process's search exactly.

The real two-process gloo run is in ``test_metric.py::test_ddp_two_processes_match_single_process``.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from lightning_repgap import RepresentationGap, _agreed_tiles, _duplicates, _screen, _shard
from lightning_repgap._concentration_block import ConcentrationSubset
from lightning_repgap._prepare import prepare
from lightning_repgap._probe_share import rank_share
from lightning_repgap._shard import Shard, ShardedEngine, shard_of
from lightning_repgap.gap import build_curve
from lightning_repgap.search import BankSearch, ExactEngine, engine_for


@dataclass
class _Board:
    """What ``torch.distributed.all_gather`` does, for ranks that are threads of this process."""

    world: int
    slots: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.slots = [None] * self.world
        self.barrier = threading.Barrier(self.world, timeout=20)  # a failing rank must not hang the others

    def gather(self, rank: int, array: np.ndarray) -> list[np.ndarray]:
        self.slots[rank] = np.array(array, copy=True)
        self.barrier.wait()
        out = [np.array(s, copy=True) for s in self.slots]
        self.barrier.wait()  # nobody overwrites a slot before every rank has read it
        return out


@dataclass(frozen=True)
class _ThreadShard(Shard):
    board: _Board | None = None

    def all_gather(self, array: np.ndarray) -> list[np.ndarray]:
        assert self.board is not None
        return self.board.gather(self.rank, array)


def _sharded(world: int, run):
    board = _Board(world)
    with ThreadPoolExecutor(world) as pool:
        futures = [pool.submit(run, _ThreadShard(rank=r, world_size=world, board=board)) for r in range(world)]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:  # the first failure, not the broken barrier it left the other ranks waiting at
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
    return [f.result() for f in futures]


def _data(n: int = 700, m: int = 90, d: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    ref = (rng.standard_normal((n, d)) * 3 + 100).astype(np.float32)  # off-centre: the centre matters
    return ref, (rng.standard_normal((m, d)) * 3 + 100).astype(np.float32)


@pytest.mark.parametrize(
    ("world", "shuffled", "precision", "m"),
    [
        (2, True, "auto", 90),
        (3, True, "fp32", 90),
        (2, False, "fp32", 90),
        (3, False, "auto", 90),
        (2, True, "bf16-screen", 90),
        # Uneven shares (46 + 45; 31 + 30 + 30): a short, non-empty share pads the merge's collective.
        (2, True, "fp32", 91),
        (3, False, "bf16-screen", 91),
    ],
)
def test_sharded_engine_equals_one_search(world, shuffled, precision, m):
    ref, qs = _data(m=m)
    order = np.random.default_rng(1).permutation(ref.shape[0])[:650] if shuffled else None
    # Tiny first sizes and a table wider than the first prefixes; the picked queries fall in every rank's share.
    sizes = np.array([1, 2, 3, 7, 40, 300, 650])
    pick = np.array([0, 5, 17, 33, 89, 60])
    # The concentration's block: a subset of the queries (every rank holds some) against spread bank positions.
    conc = ConcentrationSubset(np.arange(1, m, 2), np.arange(0, 650, 3))
    engine = ExactEngine("torch", precision=precision)
    one = engine.search(ref, qs, order, sizes, knn_queries=pick, n_neighbors=12, concentration=conc)

    def run(shard: Shard) -> BankSearch:
        return shard.wrap(engine).search(ref, qs, order, sizes, knn_queries=pick, n_neighbors=12, concentration=conc)

    results = _sharded(world, run)
    for res in results:
        np.testing.assert_array_equal(res.minima.dist_sq, one.minima.dist_sq)
        np.testing.assert_array_equal(res.minima.rows, one.minima.rows)
        np.testing.assert_array_equal(res.centre, one.centre)
        assert res.sq_dev_sum == one.sq_dev_sum
        # The table is the same neighbours (its column order is not part of the contract: gap sorts it).
        np.testing.assert_array_equal(np.sort(res.knn_rows, axis=1), np.sort(one.knn_rows, axis=1))
        # ... with the same float64 distances, gathered from the rank that scored each line.
        np.testing.assert_array_equal(_by_row(res), _by_row(one))
        # The concentration's moments: each rank's rows, merged in query order, are the one search's bit for bit.
        assert res.concentration is not None
        assert one.concentration is not None
        np.testing.assert_array_equal(res.concentration.sums, one.concentration.sums)
        np.testing.assert_array_equal(res.concentration.m2, one.concentration.m2)
        assert res.concentration.concentration() == one.concentration.concentration()


def test_sharded_table_of_a_dense_line_is_the_float64_top_k():
    # A dense 1-d segment: float32's top k holds the wrong k-th neighbour on many rows, which each rank re-searches
    # for its own lines; the gathered table is the one search's and a float64 brute force's.
    rng = np.random.default_rng(4)
    x = 1e3 + rng.random(8090)[:, None] * (rng.standard_normal(6) / 3.0)[None, :]
    ref, qs = x[:8000], x[8000:]
    sizes, pick = np.array([500, 8000]), np.arange(0, 90, 2)
    engine = ExactEngine("torch", precision="fp32")
    one = engine.search(ref, qs, None, sizes, knn_queries=pick, n_neighbors=16)
    results = _sharded(
        2, lambda shard: shard.wrap(engine).search(ref, qs, None, sizes, knn_queries=pick, n_neighbors=16)
    )
    full = ((qs[pick, None, :] - ref[None, :, :]) ** 2).sum(axis=-1)
    want = np.sort(np.argsort(full, axis=1, kind="stable")[:, :16], axis=1)
    np.testing.assert_array_equal(np.sort(one.knn_rows, axis=1), want)
    for res in results:
        np.testing.assert_array_equal(_by_row(res), _by_row(one))


def _by_row(found: BankSearch) -> np.ndarray:
    """Each neighbour-table line's (row, float64 distance) pairs, sorted by row: independent of column order."""
    assert found.knn_rows is not None
    assert found.knn_dist_sq is not None
    order = np.argsort(found.knn_rows, axis=1, kind="stable")
    return np.stack([np.take_along_axis(a, order, axis=1) for a in (found.knn_rows, found.knn_dist_sq)])


def test_screen_results_do_not_depend_on_the_query_chunk(monkeypatch):
    # Ranks cut their share of the queries into balanced chunks (not the single process' TILE-sized ones): each
    # query's candidates come from its own bounds and are re-scored in float64, so any chunking gives the same bits.
    ref, qs = _data(m=90)
    sizes = np.array([1, 3, 40, 300, 700])
    pick = np.array([0, 5, 17, 33, 89, 60])
    chunks: list[int] = []
    screen = _screen.screen_search

    def spy(*args, **kwargs):
        chunks.append(kwargs["query_chunk"])
        return screen(*args, **kwargs)

    monkeypatch.setattr(_screen, "screen_search", spy)
    results = [
        ExactEngine("torch", precision="bf16-screen", query_chunk=c).search(
            ref, qs, None, sizes, knn_queries=pick, n_neighbors=9
        )
        for c in (None, 7, 31, 90)
    ]
    assert chunks == [_screen.TILE, 7, 31, 90]
    for res in results[1:]:
        np.testing.assert_array_equal(res.minima.dist_sq, results[0].minima.dist_sq)
        np.testing.assert_array_equal(res.minima.rows, results[0].minima.rows)
        np.testing.assert_array_equal(_by_row(res), _by_row(results[0]))
    # A rank's share is cut into the nearest whole number of TILE-sized chunks, balanced.
    assert [_shard.balanced_chunk(c) for c in (1, 2048, 3071, 3073, 5000, 10000)] == [1, 2048, 3071, 1537, 2500, 2000]
    chunks.clear()
    engine = ExactEngine("torch", precision="bf16-screen")
    for res in _sharded(2, lambda shard: shard.wrap(engine).search(ref, qs, None, sizes)):
        np.testing.assert_array_equal(res.minima.dist_sq, results[0].minima.dist_sq)
    assert chunks == [45, 45]  # each rank's 45 queries in one chunk


def test_a_table_without_distances_is_scored_by_the_curve_builder(monkeypatch):
    # An engine that leaves the table's distances to the curve builder (knn_dist_sq None) on one rank: the gathered
    # table has none either (the builder scores every line), and the rows are still everyone's.
    ref, qs = _data()
    sizes = np.array([16, 700])
    pick = np.array([0, 5, 17, 33])
    one = ExactEngine("torch").search(ref, qs, None, sizes, knn_queries=pick, n_neighbors=5)
    search = ExactEngine.search
    local = threading.local()

    def unscored(self, *args, **kwargs):
        found = search(self, *args, **kwargs)
        return dataclasses.replace(found, knn_dist_sq=None) if local.rank == 1 else found

    monkeypatch.setattr(ExactEngine, "search", unscored)

    def run(shard: Shard) -> BankSearch:
        local.rank = shard.rank
        return shard.wrap(ExactEngine("torch")).search(ref, qs, None, sizes, knn_queries=pick, n_neighbors=5)

    for res in _sharded(2, run):
        assert res.knn_dist_sq is None
        np.testing.assert_array_equal(np.sort(res.knn_rows, axis=1), np.sort(one.knn_rows, axis=1))
        np.testing.assert_array_equal(res.minima.dist_sq, one.minima.dist_sq)


def test_each_rank_searches_the_bank_for_its_share_of_the_queries(monkeypatch):
    ref, qs = _data()
    sizes = np.array([16, 64, 256, 700])
    searched: list[tuple[int, int, int, str]] = []
    search = ExactEngine.search

    def spy(self, reference, queries, order, sizes, knn_queries=None, n_neighbors=0, concentration=None):
        searched.append((len(order), queries.shape[0], len(knn_queries), self.precision, self.small_pages))
        return search(self, reference, queries, order, sizes, knn_queries=knn_queries, n_neighbors=n_neighbors)

    monkeypatch.setattr(ExactEngine, "search", spy)
    pick = np.arange(30)  # the neighbour-table queries are the first ones (as in build_curve): still shared evenly
    _sharded(
        2,
        lambda shard: shard.wrap(ExactEngine("torch")).search(
            ref, qs, np.arange(700), sizes, knn_queries=pick, n_neighbors=3
        ),
    )
    # The whole bank, half of the 90 queries each, on the float32 tiles the (too small to probe) search gets, with
    # the bank's copy in ordinary pages.
    assert sorted(searched) == [(700, 45, 15, "fp32", True), (700, 45, 15, "fp32", True)]


def test_the_bank_copy_in_small_pages_is_the_same_copy():
    ref, qs = _data()
    rows = np.random.default_rng(3).permutation(ref.shape[0])
    a = prepare(ref, qs, rows=rows, sq_norms=True)
    b = prepare(ref, qs, rows=rows, sq_norms=True, small_pages=True)
    np.testing.assert_array_equal(a.reference_aug32, b.reference_aug32)
    np.testing.assert_array_equal(a.sq_norms64, b.sq_norms64)
    assert b.reference_aug32.flags.c_contiguous
    assert b.reference_aug32.dtype == np.float32


def test_fewer_queries_than_ranks():
    ref, qs = _data(m=2)
    sizes = np.array([5, 50, 700])
    engine = ExactEngine("torch")
    one = engine.search(ref, qs, None, sizes, knn_queries=np.array([1]), n_neighbors=4)
    results = _sharded(
        3, lambda shard: shard.wrap(engine).search(ref, qs, None, sizes, knn_queries=np.array([1]), n_neighbors=4)
    )
    for res in results:  # rank 2 has no query: it searches one for nothing, and still gets everyone's result
        np.testing.assert_array_equal(res.minima.dist_sq, one.minima.dist_sq)
        np.testing.assert_array_equal(res.minima.rows, one.minima.rows)
        np.testing.assert_array_equal(np.sort(res.knn_rows, axis=1), np.sort(one.knn_rows, axis=1))
        np.testing.assert_array_equal(_by_row(res), _by_row(one))  # the table's float64 distances too
        assert (res.sq_dev_sum, res.centre.tolist()) == (one.sq_dev_sum, one.centre.tolist())


# Per rank: the library it timed, its float32 runs, its bf16 runs (seconds, repeated to RUNS each). Rank 0's runs
# alone choose one way, the median of the ranks' paired ratios the other. In the first case rank 2 times another
# library than rank 0: its ratios (0.08), which would flip the choice, must not count.
_NOISY_BF16 = {0: ("numpy", [0.020], [0.016]), 1: ("numpy", [0.021], [0.010]), 2: ("torch", [0.001], [0.012])}
_NOISY_FP32 = {0: ("numpy", [0.040], [0.010]), 1: ("numpy", [0.012], [0.011]), 2: ("numpy", [0.013], [0.010])}


def _runs(fp32: list[float], bf16: list[float]) -> np.ndarray:
    return np.concatenate([np.resize(fp32, _agreed_tiles.RUNS), np.resize(bf16, _agreed_tiles.RUNS)])


@pytest.mark.parametrize(("runs", "expected"), [(_NOISY_BF16, "bf16-screen"), (_NOISY_FP32, "fp32")])
def test_ranks_take_one_choice_from_every_ranks_timed_tiles(monkeypatch, runs, expected):
    # A probe timed on a busy core can mislead one rank: every rank runs the choice made on all ranks' runs (the
    # median of their paired ratios; the library stays rank 0's), the same choice everywhere, from the one collective
    # that carried rank 0's choice before.
    ref, qs = _data()
    sizes = np.array([16, 700])
    local = threading.local()
    works: list[int] = []  # each rank weighs its own search, n m D multiply-adds, as the engine does
    monkeypatch.setattr(_agreed_tiles, "PROBE_MIN_WORK", 0)  # time this small search as a big one
    monkeypatch.setattr(_agreed_tiles, "accumulates_in_fp32", lambda device: True)

    def library(dim, work, *rest):
        works.append(work)
        return runs[local.rank][0]

    monkeypatch.setattr(_agreed_tiles, "cpu_engine", library)
    monkeypatch.setattr(_agreed_tiles, "tile_seconds", lambda dim, lib: _runs(*runs[local.rank][1:]))
    ballots = [_ballot(runs[r][0] == "numpy", _runs(*runs[r][1:])) for r in range(3)]
    assert _agreed_tiles.decide(ballots[:1])[1] != (expected == "bf16-screen")  # rank 0's runs alone: the other way
    if runs[2][0] != runs[0][0]:  # counting rank 2's runs (another library) would have flipped the choice
        relabelled = [*ballots[:2], np.array([ballots[0][0], *ballots[2][1:]])]
        assert _agreed_tiles.decide(relabelled)[1] != (expected == "bf16-screen")
    chosen: list[tuple[str, str]] = []
    search = ExactEngine.search

    def spy(self, *args, **kwargs):
        chosen.append((self.precision, self.gemm))
        return search(self, *args, **kwargs)

    monkeypatch.setattr(ExactEngine, "search", spy)
    gathers = [0, 0, 0]

    def run(shard: Shard) -> BankSearch:
        local.rank = shard.rank
        gather = shard.all_gather

        def counted(array):
            gathers[shard.rank] += 1
            return gather(array)

        object.__setattr__(shard, "all_gather", counted)
        return shard.wrap(ExactEngine("torch")).search(ref, qs, None, sizes)

    one = ExactEngine("torch", precision="fp32").search(ref, qs, None, sizes)
    chosen.clear()
    for res in _sharded(3, run):
        np.testing.assert_array_equal(res.minima.dist_sq, one.minima.dist_sq)
    assert chosen == [(expected, "numpy")] * 3
    assert works == [700 * 30 * 5] * 3
    assert gathers == [2, 2, 2]  # the agreement and the merge: no collective more than before


def _ballot(numpy_tiles: bool, runs: np.ndarray) -> np.ndarray:
    return np.array([float(numpy_tiles), 2.0, *runs])


def test_decide_keeps_rank_zeros_untimed_choices():
    timed = _ballot(True, _runs([0.030], [0.010]))
    never = np.array([1.0, 0.0, *[np.nan] * 2 * _agreed_tiles.RUNS])
    always = np.array([0.0, 1.0, *[np.nan] * 2 * _agreed_tiles.RUNS])
    assert _agreed_tiles.decide([never, timed]) == (True, False)  # rank 0's search too small to time: no screen
    assert _agreed_tiles.decide([always, timed]) == (False, True)  # search_precision="bf16-screen"
    assert _agreed_tiles.decide([timed, never]) == (True, True)  # a rank that did not time adds nothing
    assert len(timed) == 2 + 2 * _agreed_tiles.RUNS


def test_curve_through_wrap_engine_is_the_same_curve():
    ref, qs = _data(seed=2)
    tq = _data(m=40, seed=3)[1]
    kwargs = {"train_queries": tq, "min_size": 16, "n_neighbors": 6, "neighbor_queries": 50, "backend": "torch"}
    one = build_curve(ref, qs, **kwargs)
    curves = _sharded(3, lambda shard: build_curve(ref, qs, wrap_engine=shard.wrap, **kwargs))
    for curve in curves:
        np.testing.assert_array_equal(curve.per_query, one.per_query)
        np.testing.assert_array_equal(curve.train_per_query, one.train_per_query)
        np.testing.assert_array_equal(curve.knn_dist_sq, one.knn_dist_sq)
        assert (curve.scale, curve.concentration) == (one.scale, one.concentration)


def test_wrap_leaves_approximate_engines_and_single_ranks_alone():
    exact = ExactEngine("torch")
    assert Shard(rank=0, world_size=1).wrap(exact) is exact
    assert isinstance(Shard(rank=0, world_size=2).wrap(exact), ShardedEngine)
    pytest.importorskip("faiss")
    ivf = engine_for("ivf", backend="torch")
    assert Shard(rank=1, world_size=2).wrap(ivf) is ivf


def test_no_process_group():
    assert shard_of() is None
    assert _shard.__all__


def test_the_measurement_runs_numpys_blas_at_its_thread_count(monkeypatch):
    # A DDP rank runs at 1 thread of a shared machine; numpy's OpenBLAS, left at one thread per core, made the fits'
    # small products cost ~8x their CPU time and competed with the other ranks for their cores.
    from threadpoolctl import threadpool_info

    from lightning_repgap import functional
    from lightning_repgap._threads import blas_pools

    if blas_pools() is None:
        pytest.skip("no pthreads BLAS whose threads can be set")
    seen: list[list[int]] = []
    fits = functional.trusted_dimension

    def counts() -> list[int]:  # numpy's pthreads pools (FAISS' OpenMP-threaded OpenBLAS is left alone on purpose)
        return [p["num_threads"] for p in threadpool_info() if p.get("threading_layer") == "pthreads"]

    def spy(*args, **kwargs):
        seen.append(counts())
        return fits(*args, **kwargs)

    monkeypatch.setattr(functional, "trusted_dimension", spy)
    ref, qs = _data(n=600, m=60)
    before = counts()
    functional.analyze(ref, qs, num_threads=1, n_bootstrap=10)
    metric = RepresentationGap(num_threads=1, n_bootstrap=10)
    metric.update(reference=torch.from_numpy(ref), queries=torch.from_numpy(qs))
    metric.compute()
    assert len(seen) == 2  # the functional and the Metric
    assert set(seen[0] + seen[1]) == {1}
    assert counts() == before  # restored


@pytest.mark.parametrize(("n", "world"), [(10, 3), (9, 3), (2, 3), (1, 2), (0, 2), (7, 1)])
def test_probe_shares_are_contiguous_blocks_in_rank_order(n, world):
    indices = list(range(100, 100 + 3 * n, 3))  # sorted probe indices, as the callback draws them
    shares = [rank_share(indices, r, world) for r in range(world)]
    joined = [i for share in shares for i in share]
    if n >= world:  # every index once, the blocks in rank order: the gathered rows are sorted already
        assert joined == indices
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    else:  # a rank without rows repeats one (dropped again by the Metric)
        assert sorted(set(joined)) == indices
        assert all(shares) == bool(indices)


def test_sorted_probe_indices_keep_the_gathered_rows_without_a_copy():
    rows = torch.rand(50, 4)
    metric = RepresentationGap()
    metric.update(reference=rows, reference_index=torch.arange(50) * 2)
    x, _ = metric._gathered("reference", 1000)
    assert np.shares_memory(x, rows.numpy())
    metric = RepresentationGap()
    metric.update(reference=rows, reference_index=torch.arange(49, -1, -1))  # reversed: sorted into a copy
    x, _ = metric._gathered("reference", 1000)
    assert not np.shares_memory(x, rows.numpy())
    np.testing.assert_array_equal(x, rows.numpy()[::-1])


@pytest.mark.parametrize("chunk", [0, -3, True])
def test_a_query_chunk_below_one_query_is_refused(chunk):
    # A chunk of no queries would make the screen skip its pass and return nothing found: a clear error instead.
    with pytest.raises(ValueError, match="query_chunk must be a positive number"):
        ExactEngine("torch", query_chunk=chunk)


@pytest.mark.parametrize(("n", "world"), [(103, 2), (103, 3), (2, 3), (1, 2), (64, 4)])
def test_shared_copy_scan_equals_one_process(monkeypatch, n, world):
    # Uneven blocks, copies whose two rows sit in different ranks' blocks, -0.0 against +0.0 across a boundary, and
    # the largest magnitude in the last block: every rank finds what one process finds, hashing only its own block.
    rng = np.random.default_rng(n + world)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    if n > 10:
        x[n - 1] = x[0]  # first block <-> last block
        x[n // 2 + 1] = x[n // 2 - 1]  # around the middle: different blocks for 2 and 3 ranks
        x[n // 2 + 5] = x[1]
        x[n // 2 + 5, 2] = 0.0
        x[1, 2] = -0.0  # a signed zero must still count as a copy
        x[n - 2, 4] = -40.0  # the peak, far from rank 0's block
    expected = _duplicates.exact_copies_and_peak(x)
    hashed: list[int] = []
    row_hashes = _duplicates._row_hashes

    def spy(rows):
        hashed.append(rows.shape[0])
        return row_hashes(rows)

    monkeypatch.setattr(_shard, "_row_hashes", spy)
    results = _sharded(world, lambda shard: shard.exact_copies_and_peak(x))
    for keep, share, peak in results:
        np.testing.assert_array_equal(keep, expected[0])
        assert (share, peak) == expected[1:]
    assert sum(hashed) == n  # every row once ...
    assert max(hashed) <= -(-n // world)  # ... each rank its own block
    if n > 10:  # the test data hold what they should
        assert expected[0].size == n - 3
        assert expected[2] == 40.0
