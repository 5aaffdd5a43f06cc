"""A gloo rank for ``test_shard_gloo.py``: the state gather and the shared copy scan, without the Metric.

Imports only torch, numpy and ``lightning_repgap._shard`` (each spawned rank imports this module), and saves what it
gathered to ``OUT_DIR/rank<r>.pt`` for the test to check.
"""

from __future__ import annotations

import datetime
import os

import numpy as np
import torch
import torch.distributed as dist

from lightning_repgap._duplicates import exact_copies_and_peak
from lightning_repgap._shard import shard_of

#: Rows each of the three ranks holds: uneven, and rank 1 holds none.
COUNTS = (5, 0, 3)


def rows(rank: int, count: int) -> torch.Tensor:
    """``count`` distinct float32 rows of width 3 that tell which rank they came from."""
    return torch.arange(count * 3, dtype=torch.float32).reshape(count, 3) + 1000 * rank


def copy_bank() -> np.ndarray:
    """A bank every rank holds: rows 8, 9, 10 copy rows 6, 0 and 0 (the last as ``-0.0``), across rank blocks."""
    bank = np.tile(np.arange(8, dtype=np.float32)[:, None], (1, 2))
    return np.concatenate([bank, bank[[6, 0]], -bank[[0]]])


def run(rank: int, world: int, port: int, out_dir: str) -> None:
    """One rank: gather uneven states on the whole group and on the subgroup of ranks 1 and 2, scan the copies."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    # A deadlock must fail the test within a minute, not hang it for gloo's default half hour.
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60))
    try:
        shard = shard_of()
        assert shard is not None
        assert shard._point_to_point()  # the path under test; the collective would give the same values
        states = {"bank": [rows(rank, COUNTS[rank])] if COUNTS[rank] else [], "index": [torch.arange(rank + 1)]}
        gathered = shard.gather_states(states)
        sub = dist.new_group([1, 2])  # every rank creates it; only its members gather on it
        sub_gathered = None
        if rank in (1, 2):
            sub_shard = shard_of(sub)
            assert sub_shard is not None
            sub_gathered = sub_shard.gather_states({"bank": [rows(rank, rank + 1)]})
        bank = copy_bank()
        torch.save(
            {
                "gathered": gathered,
                "sub": sub_gathered,
                "copies": shard.exact_copies_and_peak(bank),
                "expected": exact_copies_and_peak(bank),
            },
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()
