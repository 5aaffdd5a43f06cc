"""The state gather and the shared duplicate scan over real gloo processes: three ranks and a two-rank subgroup.

Three ranks exercise the point-to-point gather with several peers (uneven shares, a rank without rows); the
subgroup of ranks 1 and 2 checks that peers are named by their global ranks. Each result is compared with
torchmetrics' own gather and with one process's duplicate scan.
"""

from __future__ import annotations

import os
import socket
from contextlib import closing

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torchmetrics.utilities.distributed import gather_all_tensors

from lightning_repgap._duplicates import exact_copies_and_peak
from lightning_repgap._shard import shard_of


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(rank: int, count: int) -> torch.Tensor:
    return torch.arange(count * 3, dtype=torch.float32).reshape(count, 3) + 1000 * rank


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        counts = [5, 0, 3]  # uneven, and rank 1 holds nothing
        states = {"bank": [_rows(rank, counts[rank])] if counts[rank] else [], "index": [torch.arange(rank + 1)]}
        shard = shard_of()
        assert shard is not None
        ours = shard.gather_states(states)
        assert ours is not None
        theirs = torch.cat([t for t in gather_all_tensors(states["index"][0]) if t.numel()])
        sub = dist.new_group([1, 2])  # every rank creates it; only its members gather on it
        sub_out = None
        if rank in (1, 2):
            sub_shard = shard_of(sub)
            assert sub_shard is not None
            sub_out = sub_shard.gather_states({"bank": [_rows(rank, rank + 1)]})
        # The shared duplicate scan on a bank every rank holds, copies across the ranks' blocks.
        bank = np.tile(np.arange(8, dtype=np.float32)[:, None], (1, 2))
        bank = np.concatenate([bank, bank[[6, 0]], -bank[[0]]])  # rows 8, 9, 10 copy rows 6, 0, 0 (-0.0 == 0.0)
        copies = shard.exact_copies_and_peak(bank)
        torch.save(
            {"ours": ours, "theirs": theirs, "sub": sub_out, "copies": copies, "expected": exact_copies_and_peak(bank)},
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_gather_and_copy_scan_over_three_gloo_ranks(tmp_path):
    mp.spawn(_worker, args=(3, _free_port(), str(tmp_path)), nprocs=3, join=True)
    bank = torch.cat([_rows(0, 5), _rows(2, 3)])
    for rank in range(3):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        assert torch.equal(got["ours"]["bank"], bank)
        assert torch.equal(got["ours"]["index"], torch.tensor([0, 0, 1, 0, 1, 2]))
        assert torch.equal(got["ours"]["index"], got["theirs"])
        if rank:
            assert torch.equal(got["sub"]["bank"], torch.cat([_rows(1, 2), _rows(2, 3)]))
        keep, share, peak = got["copies"]
        np.testing.assert_array_equal(keep, got["expected"][0])
        assert (share, peak) == got["expected"][1:]
        np.testing.assert_array_equal(keep, np.arange(8))
