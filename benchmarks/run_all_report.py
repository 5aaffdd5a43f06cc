"""The Markdown report of ``run_all.py``: its tables, targets and verdicts from the raw results (no measuring here).

Kept apart from ``run_all.py`` (which runs the configurations in subprocesses) so that each file reads as one job;
``run_all.py --from-json OUT.json`` rewrites a report from a previous run's raw results with these functions.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import math
import os
import platform
import statistics
from pathlib import Path

import numpy as np
from run_all import MANIFOLD_DIM, D, coretype  # beside this module (its directory is on sys.path)


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def _pct(r: dict, peak: float) -> float | None:
    if "seconds" not in r or "flops" not in r:
        return None
    return 100.0 * r["flops"] / r["seconds"] / 1e9 / peak


def gfs(r: dict) -> float | None:
    return r["flops"] / r["seconds"] / 1e9 if "seconds" in r and "flops" in r else None


def mem(r: dict) -> str:
    if "extra_mib" not in r:
        return "—"
    target = r["bank_mib"] + 256
    return f"{r['extra_mib']:.0f} / {target:.0f} ({'ok' if r['extra_mib'] <= target else 'over'})"


def phase_peaks(r: dict) -> str:
    peaks = r.get("phase_peak_mib") or {}
    names = ("search_prepared", "nearest", "full")
    return " / ".join(fmt(peaks.get(k), ".0f") for k in names) if peaks else "—"


def load(r: dict) -> str:
    return f"{r['load_before']:.1f}→{r['load_after']:.1f}" if "load_after" in r else "—"


def _tile_lines(p: dict, res: dict, peak: float) -> list[str]:
    """The table of the tiles' GEMM alone, when the exact runs measured it."""
    tiles = [(n, m, res.get(f"exact{n}", {})) for n, m in p["exact_m"].items()]
    tiles = [(n, m, r) for n, m, r in tiles if "tile_gemm_s" in r]
    if not tiles:
        return []
    lines = [
        "",
        "Where the time goes: the same tiles' matrix products alone (2048 x 2048 score tiles, D + 1 columns, "
        "no reduction), in the same process: the ceiling of this tiling on this BLAS, whatever the search does "
        "around it.",
        "",
        "| n | m | tile library | tiles' GEMM alone (s) | % of roofline | search (s) | search / tiles' GEMM |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, m, r in tiles:
        gemm_pct = 100.0 * r["flops"] / r["tile_gemm_s"] / 1e9 / peak
        lines.append(
            f"| {n:,} | {m:,} | {r.get('engine', 'torch')} | {fmt(r['tile_gemm_s'])} | {fmt(gemm_pct, '.1f')} % | "
            f"{fmt(r['seconds'])} | {fmt(r['seconds'] / r['tile_gemm_s'])}x |"
        )
    return lines


def _ddp_lines(run: dict) -> list[str]:
    """The DDP section: each rank's ``compute`` against one process's, per phase, from ``bench_ddp.py``."""
    lines = ["", "## Sharded search under DDP (2 ranks x 1 thread vs one 1-thread process)", ""]
    if "result" not in run:
        return [*lines, f"Not measured: {run.get('error', 'not run')}."]
    r = run["result"]
    lines += [
        f"`python benchmarks/bench_ddp.py {' '.join(run['argv'])}`: bank {r['bank']:,} x {r['queries']:,} queries "
        f"(+ as many training queries) x D {r['dim']}, gloo, runs alternated, medians; tile library "
        f"`{r.get('gemm')}`, precision `{r.get('precision')}`; load (1/5/15 min) before and after each repeat: "
        f"{' | '.join(str(x) for x in r.get('load_1_5_15', []))}.",
        "",
        "| phase | one process, wall s | each rank, wall s | one process, CPU s | each rank, CPU s |",
        "|---|---|---|---|---|",
    ]
    ph = r.get("phases_median", {})
    for name in ph.get("single_wall", {}):
        cells = " | ".join(fmt(ph[k].get(name), ".3f") for k in ("single_wall", "rank_wall", "single_cpu", "rank_cpu"))
        lines.append(f"| {name} | {cells} |")
    med = statistics.median
    lines.append(
        f"| **compute** | {fmt(med(r['single_s']), '.3f')} | {fmt(med(r['rank_s']), '.3f')} | "
        f"{fmt(med(r['single_cpu_s']), '.3f')} | {fmt(med(r['rank_cpu_s']), '.3f')} |"
    )
    lines += [
        "",
        f"Each rank / one process: wall {fmt(r['ratio'], '.3f')}, CPU {fmt(r['cpu_ratio'], '.3f')}; values identical "
        f"to the single process on every rank in every repeat: **{r['identical']}**.",
    ]
    return lines


def _ddp_target(run: dict) -> str:
    """The DDP row of the targets: CPU and wall ratios judged apart (each rank has a core of its own only on a
    quiet host, where the wall ratio approaches the CPU one), and the values identical."""
    r = run.get("result")
    if r is None:
        return "| DDP: each rank's `compute` ≤ 0.6x one process's, values identical | not measured | n/a |"
    same = bool(r["identical"])
    return (
        f"| DDP: each rank's `compute` ≤ 0.6x one process's, values identical | CPU {fmt(r['cpu_ratio'], '.3f')}x, "
        f"wall {fmt(r['ratio'], '.3f')}x, identical: {same} | CPU {verdict(r['cpu_ratio'] <= 0.6 and same)}, "
        f"wall {verdict(r['ratio'] <= 0.6 and same)} |"
    )


def _callback_lines(run: dict) -> list[str]:
    """The callback's overhead table (probe passes, search, the rest) before and after the validation-loop capture."""
    lines = ["", "## Callback overhead per validation (ResNet-18-sized CNN, BERT-base-sized encoder)", ""]
    if "result" not in run:
        return [*lines, f"Not measured: {run.get('error', 'not run')}."]
    lines += [
        f"`python benchmarks/bench_callback.py {' '.join(run['argv'])}`: random weights and data, 32x32 images / "
        "32 tokens; *before*: the validation probe embedded by its own pass, *after*: read off the validation loop. "
        "CPU seconds of the process (wall seconds in parentheses).",
        "",
        "| model | when | validation loop | probe passes | search | rest | hook | rows captured |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, by in run["result"].items():
        for when, r in by.items():
            cells = " | ".join(
                f"{fmt(r.get(f'{k}_cpu'))} ({fmt(r.get(f'{k}_wall'))})"
                for k in ("validation_loop", "probe_passes", "search", "rest", "hook")
            )
            lines.append(f"| {name} | {when} | {cells} | {int(r.get('val_captured', 0))} |")
    return lines


def write_report(args: argparse.Namespace, p: dict, res: dict, load_start, load_end, total: float) -> None:
    thr = args.threads
    peak = res["roof"].get("gflops", float("nan"))
    slow_m = p["slow_m"]
    n_base = min(p["exact_m"])
    ct = coretype()

    # ------------------------------------------------------------------ report
    import faiss
    import sklearn
    import torch

    def pct(r: dict) -> float | None:
        return _pct(r, peak)

    cpu = "?"
    with contextlib.suppress(OSError, StopIteration):
        info = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `python benchmarks/run_all.py{' --quick' if args.quick else ''}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC in {total / 60:.1f} min.",
        "",
        f"- Machine: {cpu}, {os.cpu_count()} cores, {thr} threads used; Python {platform.python_version()}, "
        f"torch {torch.__version__}, faiss {faiss.__version__}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}.",
        f"- Load average (1/5/15 min) at start {load_start[0]:.2f}/{load_start[1]:.2f}/{load_start[2]:.2f}, at end "
        f"{load_end[0]:.2f}/{load_end[1]:.2f}/{load_end[2]:.2f}: the {os.cpu_count()} cores are shared with other "
        "processes, so absolute times are pessimistic; ratios measured minutes apart are noisy. Each row's "
        "1-min load before→after its run is given.",
        f"- Data: flat {MANIFOLD_DIM}-torus rotated into R^{D}, float32; queries drawn independently. "
        "Each configuration in a fresh process; *extra MiB* = peak RSS minus RSS with the data loaded, "
        "shown as `extra / (bank + 256 MiB)`.",
        "",
        "## Roofline (float32 GEMM)",
        "",
        "| threads | GFLOP/s | best at | load |",
        "|---|---|---|---|",
        f"| {thr} | {fmt(res['roof'].get('gflops'), '.1f')} | {res['roof'].get('where', '—')} | {load(res['roof'])} |",
        f"| 1 | {fmt(res['roof1'].get('gflops'), '.1f')} | {res['roof1'].get('where', '—')} | {load(res['roof1'])} |",
        "",
        f"The roofline is the {thr}-thread figure. % of roofline = 2·n·m·D / time / roofline.",
        "",
        "## Exact search (k = 1)",
        "",
        "| method | n | m | seconds | GFLOP/s | % of roofline | extra MiB / (bank + 256) | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [("torch GEMM (`search_prepared`, backend torch)", f"exact{n}", n, m) for n, m in p["exact_m"].items()]
    rows += [("torch GEMM, **1 thread**", "exact1t", n_base, slow_m)]
    rows += [("`faiss.knn` (wheel's OpenBLAS, autodetected)", "faiss", n_base, slow_m)]
    if ct:
        rows += [(f"`faiss.knn`, `OPENBLAS_CORETYPE={ct}`", "faiss_ct", n_base, slow_m)]
    rows += [("`torch.cdist` + `topk` (256-query chunks)", "cdist", n_base, slow_m)]
    rows += [("scikit-learn `NearestNeighbors(algorithm='brute')`", "sklearn", n_base, slow_m)]
    for label, key, n, mm in rows:
        r = res.get(key, {})
        if "error" in r:
            lines.append(f"| {label} | {n:,} | {mm:,} | {r['error']} | | | | |")
            continue
        lines.append(
            f"| {label} | {n:,} | {mm:,} | {fmt(r.get('seconds'))} | {fmt(gfs(r), '.1f')} | {fmt(pct(r), '.1f')} % | "
            f"{mem(r)} | {load(r)} |"
        )
    lines += _tile_lines(p, res, peak)
    lines += [
        "",
        "## Full measurement vs one search",
        "",
        "`lightning_repgap.analyze` (input checks, centring, prefix gap curve with the TwoNN/MLE neighbour table, "
        "float64 winners, law fit + bootstrap CI + calibration) against one exact search of the same data, two ways: "
        "the bare tiled search on data already centred (`search_prepared`: the strict baseline) and `nearest` (what a "
        "user calls for one exact search: checks, centring, search, float64 distances). The three alternate in one "
        "process; ratios are best full / best baseline. *Extra MiB*: `analyze` run alone in a fresh process (peak RSS "
        "minus RSS with the data loaded), against the bound; *phase peaks*: each contender's own peak in the "
        "alternating process (the kernel's peak counter restarted before each call), search / nearest / full; "
        "they read low where the allocator reuses memory an earlier contender freed (small banks), so the bound "
        "is judged on the first.",
        "",
        "| n | m | `search_prepared` (s), each run | `nearest` (s), each run | full measurement (s), each run | "
        "full / `search_prepared` | full / `nearest` | extra MiB / (bank + 256) | phase peaks (MiB) | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ratios, user_ratios = {}, {}
    for n, m in p["exact_m"].items():
        f = res.get(f"full{n}", {})
        runs_s, runs_n, runs_f = f.get("search_s", []), f.get("nearest_s", []), f.get("full_s", [])
        ratios[n] = min(runs_f) / min(runs_s) if runs_s and runs_f else None
        user_ratios[n] = min(runs_f) / min(runs_n) if runs_n and runs_f else None
        lines.append(
            f"| {n:,} | {m:,} | {', '.join(fmt(x) for x in runs_s) or '—'} | {', '.join(fmt(x) for x in runs_n) or '—'}"
            f" | {', '.join(fmt(x) for x in runs_f) or '—'} | {fmt(ratios[n])}x | {fmt(user_ratios[n])}x | "
            f"{mem(res.get(f'fullmem{n}', {}))} | {phase_peaks(f)} | {load(f)} |"
        )
    lines += [
        "",
        "## Approximate search (`approximate_gap`)",
        "",
        "Recall and error are measured by `approximate_gap` itself on 1,000 queries also searched exactly; *true "
        "error* compares its G(n_max) with the full exact measurement's (same seed, same bank order) over the "
        "queries both used (the exact run's m first ones). Speed-up is against one exact torch search of the same "
        "n, scaled linearly to this m when the exact run used fewer queries (marked ~).",
        "",
        "| index | n | m | seconds | build / search (s) | recall | gap rel. error | true error | speed-up | "
        "last block params | extra MiB / (bank + 256) | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    am = p["approx_m"]
    for n in p["approx_n"]:
        for key, label in (("ivf", "IVF, torch scan"), ("ivff", "IVF, FAISS scan"), ("hnsw", "HNSW")):
            r = res.get(f"{key}{n}", {})
            if "error" in r:
                lines.append(f"| {label} | {n:,} | {am:,} | {r['error']} | | | | | | | | |")
                continue
            full = res.get(f"full{n}", {})
            em = p["exact_m"].get(n)
            true = r["gap_first"][str(em)] / full["gap"] - 1 if "gap" in full and str(em) in r["gap_first"] else None
            ex = res.get(f"exact{n}", {})
            speed = ex["seconds"] * am / em / r["seconds"] if "seconds" in ex and em else None
            mark = "~" if em and em != am else ""
            params = ", ".join(f"{k}={v}" for k, v in r.get("params", {}).items())
            lines.append(
                f"| {label} | {n:,} | {am:,} | {fmt(r.get('seconds'))} | {fmt(r.get('build_s'), '.1f')} / "
                f"{fmt(r.get('search_s'), '.1f')} | {fmt(r.get('recall'), '.3f')} | "
                f"{fmt(100 * r['rel_err'], '.3f')} % | "
                f"{fmt(None if true is None else 100 * true, '.3f')}{'' if true is None else ' %'} | "
                f"{mark}{fmt(speed, '.2f')}{'' if speed is None else 'x'} | {params} | {mem(r)} | {load(r)} |"
            )

    screen = res.get("screen")
    if screen:
        import bench_screen  # beside this script (its directory is on sys.path)

        runs = {k: v for k, v in screen.items() if k != "cfg"}
        lines += ["", "## bf16 screen vs peers (OpenBLAS kernel hint set / unset)", ""]
        lines += bench_screen.report(runs, screen["cfg"])

    lines += _ddp_lines(res.get("ddp", {}))
    lines += _callback_lines(res.get("callback", {}))

    # ------------------------------------------------------------------ targets
    big = p["approx_n"][-1]
    ex_big = [res.get(f"exact{n}", {}) for n in p["exact_m"]]
    best_pct = max((pct(r) or 0.0) for r in ex_big) if ex_big else None
    full_ratio = max((r for r in ratios.values() if r is not None), default=None)
    user_ratio = max((r for r in user_ratios.values() if r is not None), default=None)
    ivf_big = res.get(f"ivf{big}", {})
    approx_ok = None
    if "seconds" in ivf_big:
        approx_ok = ivf_big["seconds"] <= 20 and ivf_big["rel_err"] <= 0.01
    mems = [(k, r) for k, r in res.items() if "extra_mib" in r]
    over = [k for k, r in mems if r["extra_mib"] > r["bank_mib"] + 256]
    lines += [
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        f"| exact search ≥ 90 % of roofline | {fmt(best_pct, '.1f')} % (best exact torch row) | "
        f"{verdict(None if best_pct is None else best_pct >= 90)} |",
        f"| full measurement ≤ 1.2x one search (bare `search_prepared`) | {fmt(full_ratio)}x (worst size) | "
        f"{verdict(None if full_ratio is None else full_ratio <= 1.2)} |",
        f"| full measurement ≤ 1.2x one search (`nearest`) | {fmt(user_ratio)}x (worst size) | "
        f"{verdict(None if user_ratio is None else user_ratio <= 1.2)} |",
        f"| {big:,} x {am:,} x {D} approximate ≤ 20 s with gap rel. error ≤ 1 % | "
        f"{fmt(ivf_big.get('seconds'))} s, {fmt(100 * ivf_big['rel_err'] if 'rel_err' in ivf_big else None, '.3f')} % "
        f"(IVF, torch scan) | {verdict(approx_ok)} |",
        f"| peak extra memory ≤ bank + 256 MiB | over in: {', '.join(over) or 'none'} ({len(mems)} configurations) | "
        f"{verdict(not over if mems else None)} |",
        _ddp_target(res.get("ddp", {})),
    ]
    if args.quick:
        lines += ["", "_Quick run: sizes below the targets' (1e6); the verdicts are indicative only._"]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out} ({total / 60:.1f} min)")
