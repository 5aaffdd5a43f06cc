"""Gloo ranks for ``test_shard_gloo.py``: the state gather, the shared copy scan and the tile agreement; a fault.

Imports only torch, numpy and ``lightning_repgap``'s sharding modules (each spawned rank imports this module), and
saves what it gathered to ``OUT_DIR/rank<r>.pt`` for the test to check.
"""

from __future__ import annotations

import datetime
import os
import time
import traceback

import numpy as np
import torch
import torch.distributed as dist

from lightning_repgap import _agreed_tiles
from lightning_repgap._duplicates import exact_copies_and_peak
from lightning_repgap._faults import SURVIVABLE
from lightning_repgap._shard import Shard, ShardedEngine, shard_of
from lightning_repgap.search import ExactEngine

#: Rows each of the three ranks holds: uneven, and rank 1 holds none.
COUNTS = (5, 0, 3)
#: Each rank's timed tile runs (float32, bf16; seconds): rank 0's alone would choose float32 tiles
#: (0.020 < 1.5 x 0.016), the pooled runs the screen (0.020 >= 1.5 x 0.010).
RUNS = {0: (0.020, 0.016), 1: (0.021, 0.010), 2: (0.022, 0.012)}
#: The process group's timeout in these runs: a deadlock fails the test within it, not after gloo's half hour.
TIMEOUT_S = 30


def rows(rank: int, count: int) -> torch.Tensor:
    """``count`` distinct float32 rows of width 3 that tell which rank they came from."""
    return torch.arange(count * 3, dtype=torch.float32).reshape(count, 3) + 1000 * rank


def copy_bank() -> np.ndarray:
    """A bank every rank holds: rows 8, 9, 10 copy rows 6, 0 and 0 (the last as ``-0.0``), across rank blocks."""
    bank = np.tile(np.arange(8, dtype=np.float32)[:, None], (1, 2))
    return np.concatenate([bank, bank[[6, 0]], -bank[[0]]])


def run(rank: int, world: int, port: int, out_dir: str) -> None:
    """One rank: gather uneven states on the whole group and on the subgroup of ranks 1 and 2, a state of another
    width on every rank, scan the copies, agree on the tile choices; then one message of a gather fails on rank 1
    (last: it breaks the group on purpose)."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    # A deadlock must fail the test within TIMEOUT_S, not hang it for gloo's default half hour.
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=TIMEOUT_S))
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
    try:  # rows of width 2 + rank: every rank must raise alike, before any row is sent (the group stays in step)
        shard.gather_states({"index": [torch.arange(2)], "bank": [torch.zeros(2, 2 + rank)]})
        widths: tuple[str, str, bool] | None = None
    except Exception as err:
        widths = (type(err).__name__, str(err), isinstance(err, SURVIVABLE) and isinstance(err, ValueError))
    torch.save(
        {
            "gathered": gathered,
            "widths": widths,
            "sub": sub_gathered,
            "copies": shard.exact_copies_and_peak(bank),
            "expected": exact_copies_and_peak(bank),
            "agreed": _agreed_choices(shard),
        },
        os.path.join(out_dir, f"rank{rank}.pt"),
    )
    _fail_one_message(rank, shard, out_dir)
    # No destroy_process_group: the group is broken now. Every outcome is on disk, so the rank leaves with os._exit:
    # the interpreter's own teardown would destroy gloo's pending work on the broken group, and that sometimes ends
    # the process with "terminate called without an active exception" (SIGABRT), which spawn reports as a failure
    # of both tests (seen once in a CI run). Its connections close as the process exits, as when a fit fails.
    os._exit(0)


def _agreed_choices(shard: Shard) -> list[tuple[str, str]]:
    """The tile choices this rank runs: from real timed tiles, then from the noisy runs of :data:`RUNS`."""
    engine = ShardedEngine(ExactEngine("torch", gemm="torch"), shard)
    work = _agreed_tiles.PROBE_MIN_WORK  # big enough to time
    real = engine._agreed(8, work, 100)

    def noisy_runs(dim: int, library: str) -> np.ndarray:
        fp32, bf16 = RUNS[dist.get_rank()]
        return np.array([fp32] * _agreed_tiles.RUNS + [bf16] * _agreed_tiles.RUNS)

    _agreed_tiles.tile_seconds = noisy_runs  # type: ignore[assignment]
    noisy = engine._agreed(8, work, 100)
    return [(e.precision, e.gemm) for e in (real, noisy)]  # type: ignore[attr-defined]


def _fail_one_message(rank: int, shard: Shard, out_dir: str) -> None:
    """The state gather with rank 1's first ``wait()`` failing; every rank then tries its next collective.

    Each rank saves what it raised (type name, message, whether the callback would survive it) and after how many
    seconds, to ``OUT_DIR/fault<r>.pt``; none re-raises, so that the test reads every rank's outcome.
    """
    if rank == 1:
        irecv = dist.irecv

        class Broken:
            def __init__(self, work: object) -> None:
                self.work = work

            def wait(self) -> None:
                raise RuntimeError("injected: connection reset by peer")

        dist.irecv = lambda *args, **kwargs: Broken(irecv(*args, **kwargs))  # type: ignore[assignment]
    outcome: dict[str, object] = {"steps": []}
    t0 = time.perf_counter()
    try:
        shard.gather_states({"bank": [rows(rank, 4)]})
        outcome["steps"].append("gathered")  # type: ignore[attr-defined]
        shard.all_gather(np.zeros(1))  # what the measurement does next (the search's agreement)
        outcome["steps"].append("next collective")  # type: ignore[attr-defined]
    except Exception as err:
        outcome.update(
            error=type(err).__name__,
            message=str(err),
            survivable=isinstance(err, SURVIVABLE),
            trace=traceback.format_exc(),
        )
    outcome["seconds"] = time.perf_counter() - t0
    torch.save(outcome, os.path.join(out_dir, f"fault{rank}.pt"))
    # A rank that raised leaves the group as a failed fit leaves it: its process exits, its connections close.
