"""Exact search against this machine's float32 GEMM roofline, and the full measurement against one search.

Prints, from one run: the measured float32 GEMM throughput (the roofline, best of torch and numpy), the time of
one exact k=1 search of m queries against n bank points per backend and its share of the roofline
(2 n m D flops / peak), and the time of the complete measurement (blocked gap curve + law fit + bootstrap CI +
TwoNN/MLE) as a ratio to one search.

    python benchmarks/bench_search.py [--n 100000] [--m 10000] [--dim 256] [--threads 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from lightning_repgap import GapConfig, analyze
from lightning_repgap.search import prepare, search_prepared


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up: thread pools, page faults, BLAS dispatch
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gemm_peak(threads: int, repeat: int) -> tuple[float, str]:
    """Best float32 GEMM GFLOP/s over a few square sizes, torch (MKL) and numpy (OpenBLAS)."""
    torch.set_num_threads(threads)
    best, where = 0.0, ""
    for size in (1024, 2048, 4096):
        a = torch.randn(size, size)
        b = torch.randn(size, size)
        t = best_time(lambda a=a, b=b: a @ b, repeat)
        gf = 2 * size**3 / t / 1e9
        if gf > best:
            best, where = gf, f"torch {size}^3"
        an, bn = a.numpy(), b.numpy()
        t = best_time(lambda an=an, bn=bn: an @ bn, repeat)
        gf = 2 * size**3 / t / 1e9
        if gf > best:
            best, where = gf, f"numpy {size}^3"
    return best, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="bank size")
    parser.add_argument("--m", type=int, default=10_000, help="number of queries")
    parser.add_argument("--dim", type=int, default=256, help="representation width D")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="faiss,torch")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    qs = rng.standard_normal((args.m, args.dim)).astype(np.float32)
    flops = 2.0 * args.n * args.m * args.dim

    peak, where = gemm_peak(args.threads, args.repeat)
    print(f"machine: {args.threads} threads; float32 GEMM roofline {peak:.1f} GFLOP/s ({where})")
    print(f"problem: n={args.n} bank x m={args.m} queries x D={args.dim}: {flops / 1e9:.1f} GFLOP per search")
    print()
    print("| backend | one exact search (s) | GFLOP/s | % of roofline | full measurement (s) | full / search |")
    print("|---|---|---|---|---|---|")
    prep = prepare(ref, qs)
    for backend in args.backends.split(","):

        def one_search(backend: str = backend) -> None:
            aug = prep.reference_aug32 if backend == "torch" else None  # as the library calls it
            search_prepared(
                prep.reference32, prep.queries32, 1, backend=backend, num_threads=args.threads, reference_aug32=aug
            )

        t_search = best_time(one_search, args.repeat)

        def full(backend: str = backend) -> None:
            analyze(ref, qs, config=GapConfig(backend=backend), num_threads=args.threads)

        t_full = best_time(full, args.repeat)
        gf = flops / t_search / 1e9
        print(
            f"| {backend} | {t_search:.3f} | {gf:.1f} | {100 * gf / peak:.1f} % | {t_full:.3f} | "
            f"{t_full / t_search:.2f}x |"
        )


if __name__ == "__main__":
    main()
