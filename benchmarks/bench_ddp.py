"""Sharded search under DDP: each rank's ``RepresentationGap.compute`` against one process's, same data, same values.

Two gloo ranks at one thread each (the default split of a 2-core host) against one process at one thread. The
ranks hold the bank and queries split between them as the callback leaves them (the bank and training queries in
the probe pass's contiguous shares, the queries every ``W``-th as a validation loop under ``DistributedSampler``);
each rank's ``compute`` (the state gather, its share of the search, the merge and the fits) is timed after a
barrier. Runs alternate
(single, DDP, single, DDP, ...) so that load on a shared machine hits both alike; the ratio of medians is printed
for the whole ``compute`` and per phase, with the host's load, the thread settings seen inside each process and
the tile choices of the timing probes, and every logged value of every rank is checked to equal the single
process's, bit for bit.

Every process first runs a warm-up ``compute`` big enough to pay the one-time costs (imports, the per-width timing
probes of the tile library and of the bf16 screen) before anything is timed: a training run pays them once, at its
first measurement, and they do not shrink with the number of ranks. With ``--warm-up full`` the warm-up has the
measurement's own size, so the timed ``compute`` is each process' second: the first touch of the measurement's
large buffers is paid too (on Linux numpy asks for huge pages, and on a fragmented host the kernel may first
compact memory: 0.05-0.15 CPU s for the bank's float32 copy in a fresh process, about 0.005 s once paid).
Each repeat runs the single process in a fresh interpreter, as each rank runs (``--single-here``: in this
process, warm from the earlier repeats, as before).

The phases are measured by wrapping the library's functions in this process (wall and CPU seconds): ``sync`` (the
torchmetrics state gather), ``gather`` (concatenating and index-sorting the states), ``dup_scan`` (exact copies),
``search`` (the whole curve: preparing the bank, the search, the merge), ``merge`` (the collectives after the
state gather: the duplicate scan's small one, part of ``dup_scan``, and the search's, part of ``search``),
``fits`` (the trusted dimension with its bootstrap) and ``rest``; with ``--detail`` also the parts of ``search``
(``prepare``: the centred float32 bank, ``bank_bf16``: the screen's bf16 operand,
``scan``: the screen's pass over the tiles, ``rescore``, ``minima``, ``concentration``, ``knn_dist``: the table's
float64 distances when the engine did not hand them over, ``agree``: the ranks' agreement on the tile choices).

    python benchmarks/bench_ddp.py [--bank 50000] [--queries 5000] [--dim 256] [--repeats 3] [--json out.json]
        [--gemm auto|torch|numpy] [--precision auto|fp32|bf16-screen] [--warm-up probe|full] [--single-here]
        [--detail]

``--gemm`` / ``--precision`` pin the tile library and the search precision in every process alike (default:
each process' timing probes choose, and under DDP every rank runs one agreed choice), so that a probe timed on a busy
core cannot put the single process and the ranks on different paths.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import statistics
import tempfile
import time
import warnings
from contextlib import closing
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lightning_repgap import GapConfig, RepresentationGap, _agreed_tiles, _gemm, _screen, _shard, functional, metric
from lightning_repgap import gap as _gap
from lightning_repgap import search as _search
from lightning_repgap._probe_share import rank_share
from lightning_repgap.dimension import DimensionDisagreementWarning

PHASES = ("sync", "gather", "dup_scan", "search", "merge", "fits", "rest")
# (module or class, attribute, phase)
_TIMED = (
    (metric.RepresentationGap, "_sync_dist", "sync"),
    (metric.RepresentationGap, "_gathered", "gather"),
    (functional, "exact_copies_and_peak", "dup_scan"),
    (_shard.Shard, "exact_copies_and_peak", "dup_scan"),  # a rank's: its block's hashes, one small all_gather
    (functional, "build_curve", "search"),
    (_shard.Shard, "all_gather", "merge"),
    (functional, "trusted_dimension", "fits"),
)
# With --detail: the parts of ``search`` and of ``rest`` (printed after the phases, not counted in ``rest``).
DETAIL = ("validate", "prepare", "bank_bf16", "scan", "rescore", "minima", "concentration", "knn_dist", "agree")
_DETAILED = (
    (metric, "_gap_update", "validate"),
    (_search, "prepare", "prepare"),
    (_screen._Bank, "__init__", "bank_bf16"),
    (_screen, "_scan", "scan"),
    (_screen, "_rescore", "rescore"),
    (_screen, "_prefix_minima", "minima"),
    (_screen, "_knn_table", "minima"),
    (_gap, "_curve_concentration", "concentration"),
    (_gap, "_knn_dist_sq", "knn_dist"),
    (_shard.ShardedEngine, "_agreed", "agree"),
)
_clock: dict[str, list[float]] = {}


def _install_clocks(detail: bool = False) -> None:
    """Wrap the functions of every phase so that each call adds its wall and CPU seconds to ``_clock``."""
    for owner, name, phase in _TIMED + (_DETAILED if detail else ()):
        inner = getattr(owner, name)

        @functools.wraps(inner)
        def timed(*args: Any, _inner: Any = inner, _phase: str = phase, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return _inner(*args, **kwargs)
            finally:
                wall, cpu = _clock.setdefault(_phase, [0.0, 0.0])
                _clock[_phase] = [wall + time.perf_counter() - t0, cpu + time.process_time() - c0]

        setattr(owner, name, timed)


def _threads() -> dict[str, Any]:
    """The thread settings this process runs with (torch, OpenMP env, every BLAS/OpenMP pool threadpoolctl sees)."""
    from threadpoolctl import threadpool_info

    return {
        "torch": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "pools": sorted(f"{i['internal_api']}:{i['num_threads']}" for i in threadpool_info()),
        # The timing probes' choices: bf16 screen per (width, library), tile library per inner width; under DDP the
        # rank's timed tile runs per (width, library) instead of its own screen choice (the ranks' runs are pooled).
        "choices": {
            "screen": {str(k): v for k, v in _screen._probed.items()},
            "gemm": dict(_gemm._chosen),
            "agreed_runs": {str(k): v.tolist() for k, v in _agreed_tiles._seconds.items()},
        },
    }


def _data(bank: int, queries: int, dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 16-dimensional Gaussian cloud embedded in ``dim`` dimensions: bank, queries, training queries."""
    g = torch.Generator().manual_seed(0)
    basis = torch.randn(16, dim, generator=g)
    return tuple(torch.randn(n, 16, generator=g) @ basis for n in (bank, queries, queries))  # type: ignore[return-value]


# Set from --precision before any process starts (spawned ranks get it through their arguments).
_PRECISION: dict[str, Any] = {"search_precision": "auto"}


def _metric() -> RepresentationGap:
    config = GapConfig(search_precision=_PRECISION["search_precision"])
    return RepresentationGap(max_reference=2**31 - 1, max_queries=2**31 - 1, config=config, num_threads=1)


def _warm_up(dim: int, rank: int = 0, world: int = 1, full: tuple[int, int] | None = None) -> None:
    """Pay the one-time costs (imports, the timing probes) before anything is timed: a search big enough to probe.

    ``full`` = ``(bank, queries)``: a warm-up of the measurement's own size instead (``--warm-up full``), so that
    the timed ``compute`` is a process' second one, as every measurement after a training run's first: the first
    touch of buffers of that size (on Linux, numpy's huge pages, which may make the kernel compact memory first)
    is paid already.
    """
    g = torch.Generator().manual_seed(1)
    # Each process' share must reach the probes' threshold (_gemm.PROBE_MIN_WORK multiply-adds).
    n, m = (16384, 4096 * world) if full is None else full
    metric = _metric()
    reference, queries = torch.randn(n, dim, generator=g), torch.randn(m, dim, generator=g)
    if full is not None:  # data like the measured ones (another draw): the same search path, the same buffers
        basis = torch.randn(16, dim, generator=g)
        reference, queries = (torch.randn(k, 16, generator=g) @ basis for k in (n, m))
    mine = torch.arange(n)[rank::world]
    metric.update(reference=reference[mine], reference_index=mine)
    q_mine = torch.arange(m)[rank::world]
    metric.update(queries=queries[q_mine], query_index=q_mine)
    with warnings.catch_warnings():
        # Gaussian noise in `dim` dimensions: the estimators rightly disagree there; only the timings matter here.
        warnings.simplefilter("ignore", DimensionDisagreementWarning)
        metric.compute()


def _timed_compute(metric: RepresentationGap) -> dict[str, Any]:
    _clock.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    metric.compute()
    total = [time.perf_counter() - t0, time.process_time() - c0]
    phases = {p: list(_clock.get(p, [0.0, 0.0])) for p in PHASES[:-1]}
    counted = [p for p in PHASES[:-1] if p != "merge"]  # merge is part of search
    phases["rest"] = [total[i] - sum(phases[p][i] for p in counted) for i in (0, 1)]
    phases.update({p: list(_clock.get(p, [0.0, 0.0])) for p in DETAIL})
    assert metric.last_result is not None
    return {"seconds": total[0], "cpu": total[1], "phases": phases, "values": metric.last_result.values}


def _single(args: argparse.Namespace) -> dict[str, Any]:
    ref, qs, tq = _data(args.bank, args.queries, args.dim)
    _warm_up(args.dim, full=_full(args))
    metric = _metric()
    metric.update(reference=ref, queries=qs, train_queries=tq)
    return {**_timed_compute(metric), "threads": _threads()}


def _single_process(_: int, args: argparse.Namespace, out_dir: str) -> None:
    """:func:`_single` in a fresh interpreter, as each rank runs: no memory or caches left by earlier repeats."""
    _pin(args)
    torch.set_num_threads(1)
    _install_clocks(args.detail)
    with open(os.path.join(out_dir, "single.json"), "w") as fh:
        json.dump(_single(args), fh, default=str)


def _fresh_single(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_single_process, args=(args, out_dir), nprocs=1, join=True)
        return json.loads(open(os.path.join(out_dir, "single.json")).read())


def _rank(rank: int, world: int, port: int, args: argparse.Namespace, out_dir: str) -> None:
    _pin(args)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    _install_clocks(args.detail)  # spawned: a fresh interpreter
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        ref, qs, tq = _data(args.bank, args.queries, args.dim)
        _warm_up(args.dim, rank, world, _full(args))  # under DDP too: every rank computes
        metric = _metric()
        # As the callback leaves them: the bank and the training queries from the probe pass (rank_share), the
        # queries as a DistributedSampler's validation loop captures them (every W-th).
        mine = torch.tensor(rank_share(list(range(args.bank)), rank, world))
        t_mine = torch.tensor(rank_share(list(range(args.queries)), rank, world))
        q_mine = torch.arange(args.queries)[rank::world]
        metric.update(reference=ref[mine], reference_index=mine)
        metric.update(queries=qs[q_mine], query_index=q_mine, train_queries=tq[t_mine], train_index=t_mine)
        dist.barrier()
        result = {**_timed_compute(metric), "threads": _threads()}
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump(result, fh, default=str)
    finally:
        dist.destroy_process_group()


def _ddp(args: argparse.Namespace) -> list[dict[str, Any]]:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_rank, args=(2, port, args, out_dir), nprocs=2, join=True)
        return [json.loads(open(os.path.join(out_dir, f"rank{r}.json")).read()) for r in range(2)]


def _full(args: argparse.Namespace) -> tuple[int, int] | None:
    """The warm-up's ``(bank, queries)`` with ``--warm-up full`` (the validation and training queries), else None."""
    return (args.bank, 2 * args.queries) if args.warm_up == "full" else None


def _pin(args: argparse.Namespace) -> None:
    """Pin the tile library and the search precision (``auto``: each process' timing probes choose)."""
    os.environ["REPGAP_CPU_GEMM"] = args.gemm
    _PRECISION["search_precision"] = args.precision


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _median_phases(runs: list[dict[str, Any]], i: int, detail: bool) -> dict[str, float]:
    return {p: statistics.median(r["phases"][p][i] for r in runs) for p in PHASES + (DETAIL if detail else ())}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison; print and return the timings, the ratios and whether the values are identical."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=int, default=50000)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--gemm", default="auto", choices=("auto", "torch", "numpy"), help="tile library of every process"
    )
    parser.add_argument(
        "--precision", default="auto", choices=("auto", "fp32", "bf16-screen"), help="search_precision of every process"
    )
    parser.add_argument("--json", default=None, help="also write the result to this file")
    parser.add_argument(
        "--single-here",
        action="store_true",
        help="run the single process' compute in this process (warm from earlier repeats) instead of a fresh one",
    )
    parser.add_argument(
        "--warm-up",
        default="probe",
        choices=("probe", "full"),
        help="warm-up compute of each process: just big enough to probe (default), or the measurement's own size",
    )
    parser.add_argument("--detail", action="store_true", help="also time the parts of search and rest (DETAIL)")
    args = parser.parse_args(argv)
    _pin(args)
    torch.set_num_threads(1)
    _install_clocks(args.detail)
    singles: list[dict[str, Any]] = []
    ranks: list[dict[str, Any]] = []
    loads = [_load()]
    identical = True
    for _ in range(args.repeats):
        singles.append(_single(args) if args.single_here else _fresh_single(args))
        for result in _ddp(args):
            ranks.append(result)
            # float64, bit for bit (json round-trips doubles exactly)
            identical &= result["values"] == singles[-1]["values"]
        loads.append(_load())
    med = {key: statistics.median(r[key] for r in runs) for key, runs in (("seconds", singles), ("cpu", singles))}
    rank_med = {key: statistics.median(r[key] for r in ranks) for key in ("seconds", "cpu")}
    ratio, cpu_ratio = rank_med["seconds"] / med["seconds"], rank_med["cpu"] / med["cpu"]
    phases = {
        "single_wall": _median_phases(singles, 0, args.detail),
        "single_cpu": _median_phases(singles, 1, args.detail),
        "rank_wall": _median_phases(ranks, 0, args.detail),
        "rank_cpu": _median_phases(ranks, 1, args.detail),
    }
    out = {
        "bank": args.bank,
        "queries": args.queries,
        "dim": args.dim,
        "gemm": args.gemm,
        "precision": args.precision,
        "single_here": args.single_here,
        "warm_up": args.warm_up,
        "single_s": [r["seconds"] for r in singles],
        "rank_s": [r["seconds"] for r in ranks],
        "ratio": ratio,
        "single_cpu_s": [r["cpu"] for r in singles],
        "rank_cpu_s": [r["cpu"] for r in ranks],
        "cpu_ratio": cpu_ratio,
        "phases_median": phases,
        "phases_single": [r["phases"] for r in singles],
        "phases_ranks": [r["phases"] for r in ranks],
        "identical": identical,
        "load_1_5_15": loads,
        "threads": {"single": singles[-1]["threads"], "ranks": [r["threads"] for r in ranks[-2:]]},
    }
    print(
        f"bank {args.bank} x queries {args.queries} (+{args.queries} train) x D {args.dim}, {args.repeats} alternated "
        f"repeats; load (1/5/15 min) before and after each repeat: {' | '.join(loads)}"
    )
    print(
        f"{'phase':<10}{'single wall':>12}{'rank wall':>11}{'ratio':>7}{'single CPU':>12}{'rank CPU':>10}{'ratio':>7}"
    )
    for label in PHASES + (tuple(f"  {d}" for d in DETAIL) if args.detail else ()):
        p = label.strip()
        sw, rw = phases["single_wall"][p], phases["rank_wall"][p]
        sc, rc = phases["single_cpu"][p], phases["rank_cpu"][p]
        print(
            f"{label:<10}{sw:>12.3f}{rw:>11.3f}{rw / sw if sw > 1e-3 else float('nan'):>7.2f}"
            f"{sc:>12.3f}{rc:>10.3f}{rc / sc if sc > 1e-3 else float('nan'):>7.2f}"
        )
    print(
        f"{'compute':<10}{med['seconds']:>12.3f}{rank_med['seconds']:>11.3f}{ratio:>7.3f}"
        f"{med['cpu']:>12.3f}{rank_med['cpu']:>10.3f}{cpu_ratio:>7.3f}   (target: each rank <= 0.6)"
    )
    print(f"values identical on every rank, every repeat: {identical}")
    print(f"threads: single {out['threads']['single']}; ranks {out['threads']['ranks']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=str)
    return out


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
