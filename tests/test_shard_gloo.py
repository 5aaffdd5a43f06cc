"""The state gather and the shared duplicate scan over real gloo processes: three ranks and a two-rank subgroup.

Three ranks exercise the point-to-point gather with several peers (uneven shares, a rank without rows); the
subgroup of ranks 1 and 2 checks that peers are named by their global ranks; the shared copy scan must find what
one process finds. (The two-rank run of the whole Metric, compared with torchmetrics' own gather, is in
``test_metric.py``.)
"""

from __future__ import annotations

import socket
from contextlib import closing

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from _helpers import ddp_gather


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.ddp
def test_gather_and_copy_scan_over_three_gloo_ranks(tmp_path):
    mp.spawn(ddp_gather.run, args=(3, _free_port(), str(tmp_path)), nprocs=3, join=True)
    bank = torch.cat([ddp_gather.rows(r, n) for r, n in enumerate(ddp_gather.COUNTS) if n])
    for rank in range(3):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        assert torch.equal(got["gathered"]["bank"], bank)
        assert torch.equal(got["gathered"]["index"], torch.tensor([0, 0, 1, 0, 1, 2]))
        if rank:
            assert torch.equal(got["sub"]["bank"], torch.cat([ddp_gather.rows(1, 2), ddp_gather.rows(2, 3)]))
        keep, share, peak = got["copies"]
        np.testing.assert_array_equal(keep, got["expected"][0])
        assert (share, peak) == got["expected"][1:]
        np.testing.assert_array_equal(keep, np.arange(8))
