"""The exact search shared among DDP ranks: each rank searches its share of the bank, the results are merged.

Under DDP every rank holds the same gathered bank and queries (the Metric's ``cat`` states); without sharding each
rank would run the same full search. :class:`ShardedEngine` wraps an exact
:class:`~lightning_repgap.search.SearchEngine`: rank ``r`` of ``W`` searches the bank *positions*
``r, r + W, r + 2W, ...`` (so every grid prefix is split evenly, whatever the sizes), then

- the per-size minima (:class:`~lightning_repgap.search.PrefixMinima`, float64 distances and rows) are
  all-gathered and merged by elementwise minimum in rank order, the merge a single search uses between blocks;
- each rank's neighbour table (its ``n_neighbors`` nearest rows of the neighbour-table queries) is all-gathered and
  the ``n_neighbors`` nearest of the ``W * n_neighbors`` candidates kept, by float64 distance;
- the centre is computed on every rank from the whole bank, as one search computes it; each rank squares only its
  rows for ``scale``, and the per-row float64 norms are gathered and summed exactly rounded (order-free), so both
  are bitwise those of one process.

Every rank ends with the same :class:`~lightning_repgap.search.BankSearch`, equal to the one-process search: the
per-size minima are each query's float64 nearest distance (the exact engine's contract), whichever rank found it.
Only exact float64 ties between two distinct rows (or float32 near-ties at the ``k``-th neighbour of the
fp32-selected table) can name a different row; the distances, and so every logged number, are the same. Works on
any ``torch.distributed`` backend: CPU tensors on gloo, CUDA tensors on NCCL. Approximate engines are never sharded
(their index build is not a per-row loop).

Collectives run inside the search, so every rank of the group must compute: the Metric calls it only when its
states were synced (``Metric.compute`` on every rank, as Lightning and torchmetrics require anyway).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lightning_repgap._prepare import bank_centre, centred32, pair_dist_sq, row_sq_norms
from lightning_repgap.search import BankSearch, PrefixMinima, SearchEngine

__all__ = ["Shard", "ShardedEngine", "rank_counts", "shard_of"]

log = logging.getLogger(__name__)

_CPU = torch.device("cpu")
# Bank rows centred per step when squaring a rank's share (a bounded temporary).
_CHUNK = 16384


@dataclass(frozen=True)
class Shard:
    """One rank's place in a process group: which share of the bank it searches, and where collectives run.

    Attributes:
        rank: this process' rank in ``group``.
        world_size: number of processes in ``group``.
        group: the ``torch.distributed`` process group (``None``: the default group).
        device: device of the tensors handed to collectives (CPU for gloo, the current CUDA device for NCCL).

    """

    rank: int
    world_size: int
    group: Any = None
    device: torch.device = _CPU

    def wrap(self, engine: SearchEngine) -> SearchEngine:
        """``engine`` sharded over the group when it is exact and there is more than one rank; else ``engine``."""
        if self.world_size < 2 or engine.name != "exact":
            return engine
        return ShardedEngine(engine, self)

    def all_gather(self, array: np.ndarray) -> list[np.ndarray]:
        """Every rank's ``array`` (same shape and dtype on all ranks), in rank order."""
        import torch.distributed as dist

        tensor = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        out = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(out, tensor, group=self.group)
        return [t.cpu().numpy() for t in out]


def shard_of(group: Any = None) -> Shard | None:
    """This process' :class:`Shard` of ``group`` when ``torch.distributed`` runs with several ranks, else ``None``.

    Example:
        >>> shard_of() is None  # no process group in a plain Python session
        True

    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None
    world = dist.get_world_size(group)
    if world < 2:
        return None
    device = torch.device("cpu")
    if dist.get_backend(group) == "nccl":  # NCCL moves CUDA tensors only
        device = torch.device("cuda", torch.cuda.current_device())
    return Shard(rank=dist.get_rank(group), world_size=world, group=group, device=device)


def rank_counts(sizes: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """How many of the first ``sizes[s]`` bank positions rank ``rank`` holds (positions ``rank + k * world_size``).

    Example:
        >>> rank_counts(np.array([1, 2, 5, 8]), 1, 3).tolist()
        [0, 1, 2, 3]

    """
    return np.maximum(0, (sizes - rank + world_size - 1) // world_size)


@dataclass(frozen=True)
class ShardedEngine:
    """An exact engine whose search is shared among the ranks of a :class:`Shard` (see the module docstring).

    Attributes:
        inner: the exact engine each rank runs on its share of the bank.
        shard: this rank's place in the group.

    """

    inner: SearchEngine
    shard: Shard

    @property
    def name(self) -> str:
        """The inner engine's name (``"exact"``)."""
        return self.inner.name

    @property
    def label(self) -> str:
        """The inner engine's label (the backend): a sharded search is the same search."""
        return self.inner.label

    @property
    def uses_faiss(self) -> bool:
        """Whether the inner engine calls FAISS."""
        return self.inner.uses_faiss

    def search(
        self,
        reference: np.ndarray,
        queries: np.ndarray,
        order: np.ndarray | None,
        sizes: np.ndarray,
        *,
        knn_queries: np.ndarray | None = None,
        n_neighbors: int = 0,
    ) -> BankSearch:
        """See :meth:`lightning_repgap.search.SearchEngine.search`; the result is the same on every rank."""
        rank, world = self.shard.rank, self.shard.world_size
        n = int(sizes[-1])
        rows = np.arange(n) if order is None else np.asarray(order)
        # The centre one search would use; the scale from every rank's rows (an exactly rounded sum: same bits).
        centre = bank_centre(reference, rows)
        sq_dev_sum = self._sq_dev_sum(reference, rows, centre)
        counts = rank_counts(sizes, rank, world)
        local_sizes = np.unique(counts[counts > 0])
        m = queries.shape[0]
        dist_sq = np.full((len(sizes), m), np.inf)
        found_rows = np.full((len(sizes), m), -1, dtype=np.int64)
        k_local = 0
        local_knn = None
        if local_sizes.size:
            k_local = min(n_neighbors, int(local_sizes[-1])) if knn_queries is not None else 0
            local = self.inner.search(
                reference,
                queries,
                rows[rank::world],
                local_sizes,
                knn_queries=knn_queries if k_local else None,
                n_neighbors=k_local,
            )
            have = np.flatnonzero(counts > 0)
            at = np.searchsorted(local_sizes, counts[have])
            dist_sq[have] = local.minima.dist_sq[at]
            found_rows[have] = local.minima.rows[at]
            local_knn = local.knn_rows
        minima = None
        for d, r in zip(self.shard.all_gather(dist_sq), self.shard.all_gather(found_rows), strict=True):
            part = PrefixMinima(d, r)
            minima = part if minima is None else minima.merge(part)  # rank order: ties keep the lower rank
        assert minima is not None
        knn_rows = None
        if knn_queries is not None and n_neighbors:
            table = np.full((len(knn_queries), n_neighbors), -1, dtype=np.int64)
            if local_knn is not None:
                table[:, :k_local] = local_knn
            knn_rows = _nearest_candidates(reference, queries[knn_queries], self.shard.all_gather(table), n_neighbors)
        log.debug("sharded search rank %d/%d: %d of %d bank positions", rank, world, int(counts[-1]), n)
        return BankSearch(minima=minima, centre=centre, sq_dev_sum=sq_dev_sum, knn_rows=knn_rows)

    def _sq_dev_sum(self, reference: np.ndarray, rows: np.ndarray, centre: np.ndarray) -> float:
        """:attr:`Prepared.reference_sq_sum` of the whole bank, each rank squaring only its own rows."""
        rank, world = self.shard.rank, self.shard.world_size
        mine = rows[rank::world]
        norms = np.zeros(-(-rows.size // world))  # every rank's share padded to the largest
        for i0 in range(0, mine.size, _CHUNK):
            chunk = mine[i0 : i0 + _CHUNK]
            norms[i0 : i0 + chunk.size] = row_sq_norms(centred32(reference[chunk], centre))
        shares = [part[: rows[r::world].size] for r, part in enumerate(self.shard.all_gather(norms))]
        return math.fsum(np.concatenate(shares))


def _nearest_candidates(reference: np.ndarray, queries: np.ndarray, tables: list[np.ndarray], k: int) -> np.ndarray:
    """The ``k`` rows nearest to each query (float64 distances) among every rank's candidates (``-1``: none)."""
    rows = np.concatenate(tables, axis=1)
    dist = pair_dist_sq(reference, queries, rows)
    keep = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(rows, keep, axis=1)
