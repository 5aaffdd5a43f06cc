"""Sharded search under DDP: each rank's ``RepresentationGap.compute`` against one process's, same data, same values.

Two gloo ranks at one thread each (the default split of a 2-core host) against one process at one thread. The
ranks hold the bank and queries split between them, as a DDP validation leaves them; each rank's ``compute``
(the state gather, its half of the search, the merge and the fits) is timed after a barrier. Runs alternate
(single, DDP, single, DDP, ...) so that load on a shared machine hits both alike; the ratio of medians is printed,
and every logged value of every rank is checked to equal the single process's, bit for bit.

    python benchmarks/bench_ddp.py [--bank 50000] [--queries 5000] [--dim 256] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import tempfile
import time
from contextlib import closing
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lightning_repgap import GapConfig, RepresentationGap


def _data(bank: int, queries: int, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 16-dimensional Gaussian cloud embedded in ``dim`` dimensions: bank, queries, training queries."""
    g = torch.Generator().manual_seed(0)
    basis = torch.randn(16, dim, generator=g)
    return tuple(torch.randn(n, 16, generator=g) @ basis for n in (bank, queries, queries))  # type: ignore[return-value]


def _metric() -> RepresentationGap:
    return RepresentationGap(max_reference=2**31 - 1, max_queries=2**31 - 1, config=GapConfig(), num_threads=1)


def _warm_up(dim: int) -> None:
    """Pay the one-time costs (imports, the per-width GEMM library probe) before anything is timed."""
    g = torch.Generator().manual_seed(1)
    metric = _metric()
    metric.update(reference=torch.randn(512, dim, generator=g), queries=torch.randn(64, dim, generator=g))
    metric.compute()


def _single(args: argparse.Namespace) -> tuple[float, float, dict[str, float]]:
    ref, qs, tq = _data(args.bank, args.queries, args.dim)
    _warm_up(args.dim)
    metric = _metric()
    metric.update(reference=ref, queries=qs, train_queries=tq)
    t0, c0 = time.perf_counter(), time.process_time()
    metric.compute()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert metric.last_result is not None
    return seconds, cpu, dict(metric.last_result.values)


def _rank(rank: int, world: int, port: int, args: argparse.Namespace, out_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        ref, qs, tq = _data(args.bank, args.queries, args.dim)
        _warm_up(args.dim)  # under DDP too: every rank computes
        metric = _metric()
        mine, q_mine = torch.arange(args.bank)[rank::world], torch.arange(args.queries)[rank::world]
        metric.update(reference=ref[mine], reference_index=mine)
        metric.update(queries=qs[q_mine], query_index=q_mine, train_queries=tq[q_mine], train_index=q_mine)
        dist.barrier()
        t0, c0 = time.perf_counter(), time.process_time()
        metric.compute()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert metric.last_result is not None
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump({"seconds": seconds, "cpu": cpu, "values": metric.last_result.values}, fh)
    finally:
        dist.destroy_process_group()


def _ddp(args: argparse.Namespace) -> list[dict[str, Any]]:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_rank, args=(2, port, args, out_dir), nprocs=2, join=True)
        return [json.loads(open(os.path.join(out_dir, f"rank{r}.json")).read()) for r in range(2)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison; print and return the timings, the ratio and whether the values are identical."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=int, default=50000)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the result to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    single: list[float] = []
    ranks: list[float] = []
    single_cpu: list[float] = []
    ranks_cpu: list[float] = []
    identical = True
    for _ in range(args.repeats):
        seconds, cpu, values = _single(args)
        single.append(seconds)
        single_cpu.append(cpu)
        for result in _ddp(args):
            ranks.append(result["seconds"])
            ranks_cpu.append(result["cpu"])
            identical &= result["values"] == values  # float64, bit for bit (json round-trips doubles exactly)
    ratio = statistics.median(ranks) / statistics.median(single)
    # CPU seconds of each process: what the wall ratio becomes when each rank has a core of its own.
    cpu_ratio = statistics.median(ranks_cpu) / statistics.median(single_cpu)
    out = {
        "bank": args.bank,
        "queries": args.queries,
        "dim": args.dim,
        "single_s": single,
        "rank_s": ranks,
        "ratio": ratio,
        "single_cpu_s": single_cpu,
        "rank_cpu_s": ranks_cpu,
        "cpu_ratio": cpu_ratio,
        "identical": identical,
    }
    print(
        f"bank {args.bank} x queries {args.queries} (+{args.queries} train) x D {args.dim}: one process 1 thread "
        f"median {statistics.median(single):.3f}s; 2 gloo ranks x 1 thread, each rank's compute median "
        f"{statistics.median(ranks):.3f}s; ratio {ratio:.3f} (target <= 0.6), CPU-time ratio {cpu_ratio:.3f}; "
        f"values identical: {identical}"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
