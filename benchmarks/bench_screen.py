"""The bf16 screen against faiss, scikit-learn and torch in one run, with the OpenBLAS kernel hint set and unset.

    nice -n 10 python benchmarks/bench_screen.py [--quick] [--threads 2] [--out benchmarks/SCREEN.md]
    nice -n 10 python benchmarks/bench_screen.py --crossover  # exact vs IVF/HNSW: 1e5 / 1e6 bank, 1e3 (and 1e4) queries

Each configuration runs in its own subprocess (this script with ``--worker``): once with the environment as it
is, minus ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` ("unset": a user's machine), once with both set ("set":
the core type from the CPU flags, as ``run_all.py`` forces for FAISS' bundled OpenBLAS, and this CPU's L2 size
from sysfs). Within a worker the contenders alternate (best of ``--repeat``), on Gaussian and flat 8-torus data
(bank 1e5, 5e3 queries, D = 256): the bf16 and float32 GEMM throughput of this host (the premise: bf16 >= 2.5x
fp32), one faiss ``IndexFlatL2`` search, ``nearest`` (bf16 screen / fp32 tiles), the whole ``representation_gap``
(screen / fp32), scikit-learn's brute force and ``torch.cdist`` + ``topk`` (on fewer queries, scaled; not with
``--quick``), and G(n) of the screen against a float64 brute force over the same bank order. A third worker (the
environment as it is) times the full measurement (``analyze``, default keys) against one ``nearest()`` on the same
data, alternated, at issue #14's sizes (flat 8-torus in R^D): (n, D, m) = (1e3, 1e4, 1e3), (1e5, 1e3, 2e3) and
(1e5, 256, 5e3). The run ends with the target ratios, each marked met or missed; ``--quick`` (best of 1, no
scikit-learn / cdist) runs in a few minutes on a quiet 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HINT = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _best(fns: dict, repeat: int) -> dict:
    """Best time of each callable, the callables alternating ``repeat`` times (after one warm-up round)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(repeat + 1):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if r:
                times[k].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


def _burst(fn: Callable[[], object], calls: int = 4) -> float:
    """Mean time of ``calls`` back-to-back calls of ``fn``, after a pause and one untimed call."""
    time.sleep(0.3)  # OpenBLAS's threads spin for a while after a numpy product; let them park first
    fn()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def _gemm_rates(threads: int) -> dict:
    """GFLOP/s of bf16 (torch, oneDNN) and fp32 (best of torch/MKL and numpy/OpenBLAS) products, alternated."""
    import torch

    torch.set_num_threads(threads)
    out = {}
    for label, (m, n, k) in {"square": (2048, 2048, 2048), "tile": (2048, 2048, 264)}.items():
        a, b = torch.randn(m, k), torch.randn(n, k)
        a16, b16 = a.bfloat16(), b.bfloat16()
        an, bn = a.numpy(), b.numpy()
        res = np.empty((m, n), dtype=np.float32)
        # Each product is timed over a burst of calls after a pause: alternating single calls let OpenBLAS's
        # spin-waiting threads, still busy after a numpy product, halve the next torch product (measured).
        products: dict[str, Callable[[], object]] = {
            "bf16": lambda a16=a16, b16=b16: a16 @ b16.T,
            "fp32_torch": lambda a=a, b=b: a @ b.T,
            "fp32_numpy": lambda an=an, bn=bn, res=res: np.matmul(an, bn.T, out=res),
        }
        bursts: dict[str, list[float]] = {key: [] for key in products}
        for _ in range(3):  # the bursts alternate, as the contenders do
            for key, fn in products.items():
                bursts[key].append(_burst(fn))
        t = {key: min(v) for key, v in bursts.items()}
        flops = 2.0 * m * n * k / 1e9
        fp32 = max(flops / t["fp32_torch"], flops / t["fp32_numpy"])
        out[label] = {"bf16": flops / t["bf16"], "fp32": fp32, "ratio": flops / t["bf16"] / fp32}
    return out


def _data(kind: str, n: int, m: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == "gaussian":
        rng = np.random.default_rng(0)
        return rng.standard_normal((n, dim), dtype=np.float32), rng.standard_normal((m, dim), dtype=np.float32)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_all import torus

    return torus(n, 0, dim), torus(m, 1, dim)


def _brute_gaps(bank: np.ndarray, queries: np.ndarray, order: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Float64 G(n) over the bank in ``order``: exact differences for the winners, float64 products to find them."""
    import torch

    b = torch.from_numpy(bank[order].astype(np.float64))
    b_sq = (b * b).sum(1)
    q64 = queries.astype(np.float64)
    best = np.empty((len(sizes), queries.shape[0]))
    bounds = [0, *sizes.tolist()]
    for i0 in range(0, queries.shape[0], 500):
        q = torch.from_numpy(q64[i0 : i0 + 500])
        d = ((q * q).sum(1)[:, None] + b_sq[None, :] - 2 * q @ b.T).numpy()
        run_idx = np.zeros(q.shape[0], dtype=np.int64)
        run_val = np.full(q.shape[0], np.inf)
        for s in range(len(sizes)):
            blk = d[:, bounds[s] : bounds[s + 1]]
            j = blk.argmin(axis=1)
            v = blk[np.arange(blk.shape[0]), j]
            better = v < run_val
            run_val = np.where(better, v, run_val)
            run_idx = np.where(better, j + bounds[s], run_idx)
            diff = q64[i0 : i0 + 500] - bank[order[run_idx]].astype(np.float64)
            best[s, i0 : i0 + 500] = np.einsum("ij,ij->i", diff, diff)
    return best.mean(axis=1)


def _row(kind: str, cfg: dict) -> dict:
    """One data set: every contender's time, alternated, and the screened G(n) against float64."""
    import faiss

    from lightning_repgap import gap_curve, representation_gap
    from lightning_repgap.search import nearest

    n, m, dim, repeat, threads = cfg["n"], cfg["m"], cfg["dim"], cfg["repeat"], cfg["threads"]
    bank, queries = _data(kind, n, m, dim)
    index = faiss.IndexFlatL2(dim)
    index.add(bank)

    def gap(precision: str) -> object:
        return representation_gap(bank, queries, num_threads=threads, n_bootstrap=0, search_precision=precision)

    row = _best(
        {
            "faiss_flat": lambda: index.search(queries, 1),
            "nearest_screen": lambda: nearest(bank, queries, num_threads=threads, search_precision="bf16-screen"),
            "nearest_fp32": lambda: nearest(bank, queries, num_threads=threads, search_precision="fp32"),
            "gap_screen": lambda: gap("bf16-screen"),
            "gap_fp32": lambda: gap("fp32"),
        },
        repeat,
    )
    if cfg["slow_m"]:
        row.update(_slow_peers(bank, queries, cfg))
    # Exactness: the screened curve against a float64 brute force over the same bank order.
    curve = gap_curve(bank, queries, num_threads=threads, search_precision="bf16-screen")
    brute = _brute_gaps(bank, queries, np.random.default_rng(0).permutation(n), curve.sizes)
    row["gap_max_rel_err"] = float(np.max(np.abs(curve.gaps / brute - 1)))
    return row


def _slow_peers(bank: np.ndarray, queries: np.ndarray, cfg: dict) -> dict:
    """scikit-learn's brute force and ``torch.cdist`` + ``topk`` on ``slow_m`` queries, scaled to all of them."""
    import torch
    from sklearn.neighbors import NearestNeighbors

    threads, m = cfg["threads"], queries.shape[0]
    few = queries[: cfg["slow_m"]]
    nn = NearestNeighbors(n_neighbors=1, algorithm="brute", n_jobs=threads).fit(bank)
    rb, qb = torch.from_numpy(bank), torch.from_numpy(few)

    def cdist() -> None:
        for i in range(0, len(few), 256):
            torch.cdist(qb[i : i + 256], rb).topk(1, dim=1, largest=False)

    slow = _best({"sklearn": lambda: nn.kneighbors(few, 1), "cdist": cdist}, 1)
    return {k: v * m / few.shape[0] for k, v in slow.items()}


def run_worker(cfg: dict) -> dict:
    import faiss
    import torch

    threads = cfg["threads"]
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    out: dict = {"load_before": os.getloadavg()[0], "env": {k: os.environ.get(k) for k in HINT}}
    out["gemm"] = _gemm_rates(threads)
    for kind in cfg["data"]:
        out[kind] = _row(kind, cfg)
    out["load_after"] = os.getloadavg()[0]
    return out


def run_sizes(cfg: dict) -> dict:
    """The full measurement (``analyze``, default keys) against one ``nearest()``, alternated, per (n, D, m)."""
    import warnings

    import torch

    from lightning_repgap import analyze
    from lightning_repgap.search import nearest

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_all import torus

    torch.set_num_threads(cfg["threads"])
    out: dict = {"load_before": os.getloadavg()[0], "rows": []}
    for n, dim, m in cfg["sizes"]:
        bank, queries = torus(n, 0, dim), torus(m, 1, dim)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the disagreement warning of a curved manifold is not the point here
            t = _best(
                {
                    "nearest": lambda b=bank, q=queries: nearest(b, q, num_threads=cfg["threads"]),
                    "full": lambda b=bank, q=queries: analyze(b, q, num_threads=cfg["threads"]),
                },
                cfg["repeat"],
            )
        out["rows"].append({"n": n, "dim": dim, "m": m, **t, "load": os.getloadavg()[0]})
    out["load_after"] = os.getloadavg()[0]
    return out


def run_crossover(cfg: dict) -> dict:
    """Exact (``search_precision="auto"``) vs ``index="ivf"`` / ``"hnsw"`` gap curves, alternated, per size."""
    import torch

    from lightning_repgap import gap_curve

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_all import torus

    torch.set_num_threads(cfg["threads"])
    out: dict = {"load_before": os.getloadavg()[0], "rows": []}
    for n, m in cfg["sizes"]:
        bank, queries = torus(n, 0), torus(m, 1)
        curves: dict = {}
        seconds: dict = {}
        for name, kwargs in (("exact", {}), ("ivf", {"index": "ivf"}), ("hnsw", {"index": "hnsw"})):
            if name == "hnsw" and n > cfg.get("hnsw_max", 100_000):
                continue  # building the graph alone costs more than the exact search there
            t0 = time.perf_counter()
            curves[name] = gap_curve(bank, queries, num_threads=cfg["threads"], **kwargs)
            seconds[name] = time.perf_counter() - t0
        exact = curves["exact"].gaps[-1]
        row = {"n": n, "m": m, "exact_s": seconds["exact"], "backend": curves["exact"].backend}
        for name in seconds:
            if name != "exact":
                row[f"{name}_s"] = seconds[name]
                row[f"{name}_err"] = float(curves[name].gaps[-1] / exact - 1)
                row[f"{name}_speedup"] = seconds["exact"] / seconds[name]
        out["rows"].append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    out["load_after"] = os.getloadavg()[0]
    return out


def hint_env() -> dict[str, str]:
    """The OpenBLAS kernel hint: the core type from the CPU flags (as ``run_all.py`` forces it) and the L2 size."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run_all import coretype

    env = {}
    ct = coretype()
    if ct:
        env["OPENBLAS_CORETYPE"] = ct
    try:
        size = Path("/sys/devices/system/cpu/cpu0/cache/index2/size").read_text().strip()
        env["OPENBLAS_L2_SIZE"] = str(int(size.rstrip("K")) * 1024 if size.endswith("K") else int(size))
    except (OSError, ValueError):
        pass
    return env


def spawn(cfg: dict, hint: bool | None) -> dict:
    """Run one worker: without the OpenBLAS hint (``False``), with it (``True``) or in the environment as is."""
    env = dict(os.environ) if hint is None else {k: v for k, v in os.environ.items() if k not in HINT}
    if hint:
        env.update(hint_env())
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(results: dict, cfg: dict) -> list[str]:
    """Markdown lines: the GEMM premise, then per data set and hint setting the times and the ratios."""
    slow = f"scikit-learn and torch.cdist on {cfg['slow_m']:,} queries, scaled to {cfg['m']:,}" if cfg["slow_m"] else ""
    lines = [
        f"Bank {cfg['n']:,} x {cfg['m']:,} queries x D = {cfg['dim']}, {cfg['threads']} threads, best of "
        f"{cfg['repeat']} alternated; {slow or 'no scikit-learn / cdist (--quick)'}. Ratios: faiss `IndexFlatL2` "
        "time / ours (> 1: ours faster).",
        "",
        "| OpenBLAS hint | data | bf16 / fp32 GEMM (tile, square) | faiss flat (s) | `nearest` screen / fp32 (s) | "
        "`representation_gap` screen / fp32 (s) | sklearn / cdist (s) | faiss / `nearest` | "
        "faiss / `representation_gap` | G(n) vs float64, max rel. |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for hint, res in results.items():
        if hint == "sizes":
            continue
        if "error" in res:
            lines.append(f"| {hint} | {res['error']} | | | | | | | | |")
            continue
        g = res["gemm"]
        ratio = f"{g['tile']['ratio']:.2f}x, {g['square']['ratio']:.2f}x"
        for kind in cfg["data"]:
            r = res[kind]
            peers = f"{r['sklearn']:.2f} / {r['cdist']:.2f}" if "sklearn" in r else "-"
            lines.append(
                f"| {hint} | {kind} | {ratio} | {r['faiss_flat']:.3f} | {r['nearest_screen']:.3f} / "
                f"{r['nearest_fp32']:.3f} | {r['gap_screen']:.3f} / {r['gap_fp32']:.3f} | {peers} | "
                f"{r['faiss_flat'] / r['nearest_screen']:.2f}x | {r['faiss_flat'] / r['gap_screen']:.2f}x | "
                f"{r['gap_max_rel_err']:.1e} |"
            )
        lines.append(
            f"| {hint} | GEMM GFLOP/s | bf16 {g['tile']['bf16']:.0f} / fp32 {g['tile']['fp32']:.0f} (tile); "
            f"bf16 {g['square']['bf16']:.0f} / fp32 {g['square']['fp32']:.0f} (square) | load "
            f"{res['load_before']:.1f}->{res['load_after']:.1f} | | | | | | |"
        )
    sizes = results.get("sizes", {})
    if sizes:
        lines += ["", "Full measurement (`analyze`, default keys) / one `nearest()`, same data, alternated:", ""]
        lines += ["| (n, D, m) | `nearest` (s) | full (s) | full / nearest | load |", "|---|---|---|---|---|"]
        for r in sizes.get("rows", []):
            lines.append(
                f"| ({r['n']:,}, {r['dim']:,}, {r['m']:,}) | {r['nearest']:.3f} | {r['full']:.3f} | "
                f"{r['full'] / r['nearest']:.2f}x | {r['load']:.1f} |"
            )
        if "error" in sizes:
            lines.append(f"| {sizes['error']} | | | | |")
    return [*lines, "", *targets(results, cfg)]


def targets(results: dict, cfg: dict) -> list[str]:
    """Issue #17's and #14's speed targets, each with the value measured in this run and met / missed."""
    out = ["Targets (this run):", ""]

    def mark(name: str, value: float, goal: float, above: bool) -> None:
        met = value >= goal if above else value <= goal
        sign = ">=" if above else "<="
        out.append(f"- {name}: {value:.3g} (target {sign} {goal:g}): {'met' if met else 'MISSED'}")

    for hint, res in results.items():
        if hint == "sizes" or "error" in res:
            continue
        mark(f"bf16 / fp32 GEMM, tile shape, hint {hint} (premise)", res["gemm"]["tile"]["ratio"], 2.5, True)
        for kind in cfg["data"]:
            r = res[kind]
            mark(f"faiss / `nearest`, {kind}, hint {hint}", r["faiss_flat"] / r["nearest_screen"], 2.0, True)
            mark(f"faiss / `representation_gap`, {kind}, hint {hint}", r["faiss_flat"] / r["gap_screen"], 1.8, True)
            mark(f"G(n) max rel. error vs float64, {kind}, hint {hint}", r["gap_max_rel_err"], 1e-9, False)
    for r in results.get("sizes", {}).get("rows", []):
        mark(
            f"full / `nearest` at (n, D, m) = ({r['n']:,}, {r['dim']:,}, {r['m']:,})",
            r["full"] / r["nearest"],
            1.2,
            False,
        )
    return out


def config(quick: bool, threads: int, repeat: int = 3) -> dict:
    """The run's sizes: always the target's (bank 1e5, 5e3 queries, D = 256); ``quick``: best of 1, no slow peers."""
    return {
        "n": 100_000,
        "m": 5_000,
        "dim": 256,
        "threads": threads,
        "repeat": 1 if quick else repeat,
        "slow_m": 0 if quick else 1000,
        "data": ["gaussian", "torus"],
    }


def sizes_config(quick: bool, threads: int, repeat: int) -> dict:
    """Issue #14's sizes for the full measurement against ``nearest()``."""
    return {
        "sizes_run": True,
        "sizes": [[1_000, 10_000, 1_000], [100_000, 1_000, 2_000], [100_000, 256, 5_000]],
        "threads": threads,
        "repeat": 1 if quick else repeat,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="best of 1, no scikit-learn / cdist (a few minutes)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--crossover", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).with_name("SCREEN.md")))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        cfg = json.loads(args.worker)
        if cfg.get("crossover"):
            print(json.dumps(run_crossover(cfg)))
        elif cfg.get("sizes_run"):
            print(json.dumps(run_sizes(cfg)))
        else:
            print(json.dumps(run_worker(cfg)))
        return
    if args.crossover:
        sizes = [[100_000, 1_000], [1_000_000, 1_000], [1_000_000, 10_000]] if not args.quick else [[20_000, 500]]
        res = spawn({"crossover": True, "sizes": sizes, "threads": args.threads}, hint=False)
        print(json.dumps(res, indent=1))
        return
    cfg = config(args.quick, args.threads, args.repeat)
    results = {}
    for hint in (False, True):
        label = "set" if hint else "unset"
        print(f"bench_screen: hint {label} ...", flush=True)
        results[label] = spawn(cfg, hint)
    print("bench_screen: full measurement / nearest ...", flush=True)
    results["sizes"] = spawn(sizes_config(args.quick, args.threads, args.repeat), hint=None)
    lines = report(results, cfg)
    print("\n".join(lines))
    Path(args.out).with_suffix(".json").write_text(json.dumps({"cfg": cfg, "results": results}, indent=1))
    Path(args.out).write_text("# bf16 screen vs peers\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
