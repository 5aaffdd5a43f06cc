"""Which probe rows each DDP rank embeds, and the loader of a probe pass.

Every rank embeds every ``world_size``-th row of a probe; the Metric gathers the rows of all ranks and sorts them by
probe index, dropping repeats. A rank whose share is empty (fewer probe rows than ranks) would have nothing to embed
and nothing to send, so it embeds one row of the probe again instead: the repeat is dropped, no number changes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset

__all__ = ["loader_batch_size", "probe_loader", "rank_share"]


def rank_share(indices: list[int], rank: int, world_size: int) -> list[int]:
    """Rank ``rank``'s rows of a probe: every ``world_size``-th index; one repeated index when that share is empty.

    Example:
        >>> rank_share([10, 11, 12], 1, 2), rank_share([10], 1, 2), rank_share([], 0, 2)
        ([11], [10], [])

    """
    mine = indices[rank::world_size]
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
