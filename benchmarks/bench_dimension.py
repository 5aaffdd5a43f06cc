"""The full measurement (trusted ``dim`` included) against one ``nearest()`` search, and its peak memory.

    python benchmarks/bench_dimension.py [--configs 1000x10000x1000,100000x1000x2000,1000000x256x2000] [--pairs 3]

Issue #14's sizes: each ``n x D x m`` configuration runs in a fresh subprocess (so that its peak RSS is its own):
``analyze(bank, queries)`` once first (peak memory above the data, against the bound bank + 256 MiB), then
``nearest(bank, queries)`` and ``analyze`` alternated ``--pairs`` times (timings drift on a shared machine; a
ratio of runs made minutes apart says little). Data: uniform points on a flat 8-torus rotated into R^D, float32.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MIB = 1024 * 1024


def worker(n: int, dim: int, m: int, pairs: int, threads: int, precision: str = "auto") -> dict:
    """One configuration, in this (fresh) process."""
    import torch

    from lightning_repgap import GapConfig
    from lightning_repgap import analyze as _analyze
    from lightning_repgap.search import nearest as _nearest

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_all import peak_rss, rss_now, torus  # the benchmarks' shared data and memory probes

    config = GapConfig(search_precision=precision)  # type: ignore[arg-type]

    def analyze(bank: np.ndarray, queries: np.ndarray):  # type: ignore[no-untyped-def]
        return _analyze(bank, queries, config=config)

    def nearest(bank: np.ndarray, queries: np.ndarray) -> None:
        _nearest(bank, queries, search_precision=precision)  # type: ignore[arg-type]

    torch.set_num_threads(threads)
    bank, queries = torus(n, 0, dim), torus(m, 1, dim)
    base = rss_now()
    t0 = time.perf_counter()
    first = analyze(bank, queries)
    out: dict = {"n": n, "D": dim, "m": m, "precision": precision, "first_s": time.perf_counter() - t0}
    out["extra_mib"] = max(0, peak_rss() - base) / MIB
    out["bound_mib"] = bank.nbytes / MIB + 256
    out.update(dim=first.values["dim"], dim_method=first.values["dim_method"], load=os.getloadavg()[0])
    near, full = [], []
    for _ in range(pairs):
        t0 = time.perf_counter()
        nearest(bank, queries)
        near.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        analyze(bank, queries)
        full.append(time.perf_counter() - t0)
    ratio = min(full) / min(near) if pairs else math.nan  # --pairs 0: memory only
    out.update(nearest_s=near, full_s=full, ratio=ratio, load_after=os.getloadavg()[0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="1000x10000x1000,100000x1000x2000,1000000x256x2000")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--precision", default="auto", choices=("auto", "fp32", "bf16-screen"), help="GapConfig.search_precision"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        n, dim, m = (int(v) for v in args.worker.split("x"))
        print(json.dumps(worker(n, dim, m, args.pairs, args.threads, args.precision)))
        return
    for cfg in args.configs.split(","):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", cfg, "--pairs", str(args.pairs)]
        cmd += ["--threads", str(args.threads), "--precision", args.precision]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{cfg}: failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}", flush=True)
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        verdict = "ok" if r["extra_mib"] <= r["bound_mib"] else "OVER"
        print(
            f"n={r['n']:,} D={r['D']:,} m={r['m']:,} {r['precision']}: "
            f"extra {r['extra_mib']:.0f} MiB / bound {r['bound_mib']:.0f} "
            f"({verdict}); nearest {[round(v, 2) for v in r['nearest_s']]} s, full {[round(v, 2) for v in r['full_s']]}"
            f" s, full/nearest {r['ratio']:.2f}x; dim {r['dim']:.2f} (method {int(r['dim_method'])}); "
            f"load {r['load']:.1f}->{r['load_after']:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
