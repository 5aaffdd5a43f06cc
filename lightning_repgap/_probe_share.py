"""Which probe rows each DDP rank embeds, and the loader of a probe pass.

Every rank embeds one contiguous block of a probe's (sorted) indices, the blocks in rank order and at most one row
apart in length; the Metric gathers the rows of all ranks in rank order and sorts them by probe index, dropping
repeats. Contiguous blocks make that gathered order the sorted one already, so the Metric keeps the gathered bank
as it is instead of reordering a copy of it (every ``world_size``-th row, the former split, interleaves the ranks'
rows and needs that copy). A rank whose share is empty (fewer probe rows than ranks) would have nothing to embed
and nothing to send, so it embeds one row of the probe again instead: the repeat is dropped, no number changes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

__all__ = ["loader_batch_size", "probe_loader", "rank_share"]


def rank_share(indices: list[int], rank: int, world_size: int) -> list[int]:
    """Rank ``rank``'s rows of a probe: its contiguous block of ``indices``; one repeated index when it is empty.

    The first ``len(indices) % world_size`` ranks take one row more than the others.

    Example:
        >>> rank_share([10, 11, 12], 0, 2), rank_share([10, 11, 12], 1, 2), rank_share([10], 1, 2), rank_share([], 0, 2)
        ([10, 11], [12], [10], [])

    """
    base, extra = divmod(len(indices), world_size)
    start = rank * base + min(rank, extra)
    mine = indices[start : start + base + (rank < extra)]
    if not mine and indices:
        mine = [indices[rank % len(indices)]]  # dropped again by the Metric's index sort
    return mine


def loader_batch_size(trainer: Any) -> int | None:
    """The training loader's batch size, if it has one."""
    return getattr(trainer.train_dataloader, "batch_size", None)


def probe_loader(dataset: Dataset, indices: list[int], collate: Any, batch_size: int) -> DataLoader:
    """A sequential, single-process loader over ``dataset[indices]``, with a private random generator."""
    return DataLoader(
        Subset(dataset, indices),
        batch_size=batch_size,
        shuffle=False,
        num_workers=0,
        collate_fn=collate,
        # A private generator: probe passes must not consume the global RNG that training uses.
        generator=torch.Generator(),
    )
