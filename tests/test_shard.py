"""The exact search shared among ranks (``_shard``): W simulated ranks (threads) give one process's search exactly.

The real two-process gloo run is in ``test_metric.py::test_ddp_two_processes_match_single_process``.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pytest

from lightning_repgap import _shard
from lightning_repgap._shard import Shard, ShardedEngine, rank_counts, shard_of
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


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("shuffled", [True, False])
def test_sharded_engine_equals_one_search(world, shuffled):
    ref, qs = _data()
    order = np.random.default_rng(1).permutation(ref.shape[0])[:650] if shuffled else None
    # Steps smaller than the world size (some ranks hold nothing of the first prefixes) and a table wider than the
    # first prefix of any rank.
    sizes = np.array([1, 2, 3, 7, 40, 300, 650])
    pick = np.array([0, 5, 17, 33, 89])
    engine = ExactEngine("torch")
    one = engine.search(ref, qs, order, sizes, knn_queries=pick, n_neighbors=12)

    def run(shard: Shard) -> BankSearch:
        return shard.wrap(engine).search(ref, qs, order, sizes, knn_queries=pick, n_neighbors=12)

    results = _sharded(world, run)
    for res in results:
        np.testing.assert_array_equal(res.minima.dist_sq, one.minima.dist_sq)
        np.testing.assert_array_equal(res.minima.rows, one.minima.rows)
        np.testing.assert_array_equal(res.centre, one.centre)
        assert res.sq_dev_sum == one.sq_dev_sum
        # The table is the same neighbours (its column order is not part of the contract: gap sorts it).
        np.testing.assert_array_equal(np.sort(res.knn_rows, axis=1), np.sort(one.knn_rows, axis=1))


def test_each_rank_searches_only_its_share(monkeypatch):
    ref, qs = _data()
    sizes = np.array([16, 64, 256, 700])
    searched: list[tuple[int, list[int]]] = []
    search = ExactEngine.search

    def spy(self, reference, queries, order, sizes, **kwargs):
        searched.append((len(order), sizes.tolist()))
        return search(self, reference, queries, order, sizes, **kwargs)

    monkeypatch.setattr(ExactEngine, "search", spy)
    _sharded(2, lambda shard: shard.wrap(ExactEngine("torch")).search(ref, qs, None, sizes))
    assert sorted(searched) == [(350, [8, 32, 128, 350]), (350, [8, 32, 128, 350])]


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


def test_rank_counts_and_no_process_group():
    sizes = np.array([1, 2, 3, 4, 10])
    counts = [rank_counts(sizes, r, 3) for r in range(3)]
    np.testing.assert_array_equal(sum(counts), sizes)  # every position belongs to exactly one rank
    assert shard_of() is None
    assert _shard.__all__
