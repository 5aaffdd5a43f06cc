"""The state gather and the shared duplicate scan over real gloo processes: three ranks and a two-rank subgroup.

Three ranks exercise the point-to-point gather with several peers (uneven shares, a rank without rows); the
subgroup of ranks 1 and 2 checks that peers are named by their global ranks; the shared copy scan must find what
one process finds; every rank takes the same tile choice, from real timed tiles and from noisy ones. A message of the
gather that fails on one rank stops every rank, within seconds, instead of leaving the others waiting. (The
two-rank run of the whole Metric, compared with torchmetrics' own gather, is in ``test_metric.py``.)
"""

from __future__ import annotations

import socket
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from _helpers import ddp_gather


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def three_ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """One run of three gloo ranks (:func:`ddp_gather.run`): its output directory and its wall seconds."""
    out = tmp_path_factory.mktemp("gloo")
    t0 = time.perf_counter()
    mp.spawn(ddp_gather.run, args=(3, _free_port(), str(out)), nprocs=3, join=True)
    return out, time.perf_counter() - t0


@pytest.mark.ddp
def test_gather_and_copy_scan_over_three_gloo_ranks(three_ranks):
    tmp_path = three_ranks[0]
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
    # A state of another width on every rank: the same RankWidthError (a survivable fault, and a ValueError) on
    # every rank, raised from the shape table they all hold (it was a plain ValueError, which ended the callback's
    # fit); the scan and the agreement after it ran on the same group, in step.
    widths = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)["widths"] for rank in range(3)]
    assert widths[0] == widths[1] == widths[2]
    kind, message, survivable = widths[0]
    assert (kind, survivable) == ("RankWidthError", True)
    assert "`bank` has different widths or dtypes on different ranks ([(0, 2, 0), (1, 3, 0), (2, 4, 0)]" in message
    agreed = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)["agreed"] for rank in range(3)]
    assert agreed[0] == agreed[1] == agreed[2]  # one choice on every rank, from real timings as from noisy ones
    assert agreed[0][1] == ("bf16-screen", "torch")  # rank 0's noisy runs alone would have chosen "fp32"


@pytest.mark.ddp
def test_a_failed_message_stops_every_rank_within_seconds(three_ranks):
    # Rank 1's receive fails mid-exchange: it raises an error the callback does not survive (carrying on would leave
    # it in another collective than the others); ranks 0 and 2 fail as soon as rank 1's process exits, long before
    # the group's timeout, whether they had got past the exchange or not. Never a hang.
    out, seconds = three_ranks
    assert seconds < ddp_gather.TIMEOUT_S
    failed = torch.load(out / "fault1.pt", weights_only=False)
    assert failed["error"] == "DistributedGatherError", failed.get("trace")
    assert "rank 1's message from rank 0 for `bank` failed (injected" in failed["message"]
    assert not failed["survivable"]
    assert failed["steps"] == []
    for rank in (0, 2):
        other = torch.load(out / f"fault{rank}.pt", weights_only=False)
        # At its next collective, or in the exchange itself when rank 1 exited before its sends left.
        assert other["steps"] in (["gathered"], []), other
        assert other["error"] == ("RuntimeError" if other["steps"] else "DistributedGatherError"), other["trace"]
        assert not other["survivable"]
        assert other["seconds"] < ddp_gather.TIMEOUT_S / 2, other
