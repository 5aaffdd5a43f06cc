"""How often two DDP ranks' agreed tile choice falls to float32: rank 0's own probe against every rank's runs pooled.

Two gloo ranks at one thread each time the bf16 screen's tile against the float32 tile, many times, both ranks at
once (after a barrier), as they do at a training run's first measurement. Each round runs both rules, in alternating
order: *rank 0* (the choice before: rank 0's own probe, :func:`lightning_repgap._screen._probe`, decides for
everyone) and *agreed* (:mod:`lightning_repgap._agreed_tiles`: the median of every rank's paired float32 / bf16
ratios). Prints how often each rule chose float32 tiles, and, from the agreed rounds' runs, how often other
statistics of the same runs would have (rank 0's runs alone; the fastest run of each kind pooled over the ranks),
with the host's load (1/5/15 min) before and after. Every rank's runs are saved with ``--json``.

    python benchmarks/bench_tile_agreement.py [--rounds 40] [--dim 256] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import tempfile
from contextlib import closing
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lightning_repgap import _agreed_tiles, _screen
from lightning_repgap._gemm import PROBE_MIN_WORK, cpu_engine
from lightning_repgap._shard import shard_of


def _rank(rank: int, world: int, port: int, rounds: int, dim: int, out_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=600))
    try:
        shard = shard_of()
        assert shard is not None
        cpu = torch.device("cpu")
        library = cpu_engine(dim + 1, PROBE_MIN_WORK, cpu)  # timed once, as in a run
        out: dict[str, list[Any]] = {"rank0": [], "agreed": [], "libraries": [], "parts": []}
        for i in range(rounds):
            for rule in ("rank0", "agreed") if i % 2 == 0 else ("agreed", "rank0"):
                dist.barrier()
                if rule == "rank0":
                    mine = np.array([float(_screen._probe(dim, library))])
                    out["rank0"].append(bool(shard.all_gather(mine)[0][0]))
                    continue
                _agreed_tiles._seconds.clear()  # time afresh: each round is a new process' first measurement
                parts = shard.all_gather(_agreed_tiles.ballot("auto", dim, PROBE_MIN_WORK, cpu, "auto"))
                out["agreed"].append(_agreed_tiles.decide(parts)[1])
                out["libraries"].append([bool(p[0]) for p in parts])
                out["parts"].append([p.tolist() for p in parts])
        if rank == 0:
            with open(os.path.join(out_dir, "out.json"), "w") as fh:
                json.dump({**out, "library": library}, fh)
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the rounds; print and return how often each rule chose float32 tiles."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--json", default=None, help="also write the result to this file")
    args = parser.parse_args(argv)
    load = [" ".join(f"{v:.2f}" for v in os.getloadavg())]
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_rank, args=(2, port, args.rounds, args.dim, out_dir), nprocs=2, join=True)
        with open(os.path.join(out_dir, "out.json")) as fh:
            out = json.load(fh)
    load.append(" ".join(f"{v:.2f}" for v in os.getloadavg()))
    out.update(dim=args.dim, rounds=args.rounds, load_1_5_15=load)
    threshold = _screen.SCREEN_MIN_SPEEDUP
    print(f"{args.rounds} rounds, D {args.dim}, float32 tiles on {out['library']}; load {' -> '.join(load)}")
    split = sum(len(set(libs)) > 1 for libs in out["libraries"])
    print(f"rounds whose ranks had timed different tile libraries (their float32 runs not pooled): {split}")
    for rule in ("rank0", "agreed"):
        print(f"{rule:>7}: float32 chosen {out[rule].count(False)} of {len(out[rule])}")
    runs = _agreed_tiles.RUNS
    parts = [np.array(p) for p in out["parts"]]  # rounds x ranks x ballot
    stats = {
        "rank 0's runs alone, median ratio": [np.median(p[0, 2 : 2 + runs] / p[0, 2 + runs :]) for p in parts],
        "fastest runs pooled": [p[:, 2 : 2 + runs].min() / p[:, 2 + runs :].min() for p in parts],
        "median of paired ratios (agreed)": [np.median(_agreed_tiles.paired_ratios(list(p))) for p in parts],
    }
    for name, ratios in stats.items():
        below = sum(r < threshold for r in ratios)
        print(f"  {name}: below {threshold} in {below} of {len(ratios)} rounds (median {np.median(ratios):.2f})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    main()
