"""Every speed and memory number of the project from one command, written to a markdown file.

    python benchmarks/run_all.py [--quick] [--out benchmarks/RESULTS.md] [--threads 2]

Each configuration runs in a fresh subprocess (this script with ``--worker``), so that its peak RSS
(``ru_maxrss``) is its own: "extra memory" is that peak minus the process's RSS once the data are in memory
(libraries imported, bank and queries generated), compared with the target "bank size + 256 MiB".

Data: uniform points on a flat 8-torus (16 coordinates) rotated into R^D (D = 256), float32, the bank and the
queries drawn independently: a representation-like manifold of low intrinsic dimension in a wide space.

Configurations (full run; ``--quick`` shrinks sizes so that it finishes in a minute or two):

- float32 GEMM roofline of this machine (best of torch and numpy over square sizes), at ``--threads`` and at 1;
- one exact k=1 search, torch backend (``search_prepared``), at n = 1e5 (m = 1e4) and 1e6 (m = 2,000: 1e4 would
  be ~5 TFLOP, too long for a ~15 min budget on shared cores; speed-ups are scaled to m), best of 3, and on 1
  thread;
- ``faiss.knn`` as shipped, and with ``OPENBLAS_CORETYPE`` forced (the faiss-cpu wheel's OpenBLAS does not
  recognise recent Xeons and falls back to SSE3 kernels), ``torch.cdist`` + ``topk``, and scikit-learn's
  ``NearestNeighbors(algorithm="brute")`` on n = 1e5 (fewer queries: they are slow; GFLOP/s is comparable);
- the same tiles' matrix products alone (no reduction): how close the search is to what its BLAS gives that shape;
- the full measurement (``lightning_repgap.analyze``: curve, fit, bootstrap, TwoNN/MLE) against one search,
  alternated three times in one process;
- ``approximate_gap`` with IVF (torch list scan and FAISS scan) and HNSW at n = 1e5 and 1e6: time, measured
  recall and gap error on its exact sample, the true error of G(n_max) against the full exact measurement;
- the bf16 screen (``search_precision``) beside faiss ``IndexFlatL2``, scikit-learn and torch, with the OpenBLAS
  kernel hint (``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE``) set and unset, each in its own subprocess
  (``bench_screen.py``; its bf16 / fp32 GEMM ratio is measured in the same processes).

The machine is shared: the load average is recorded before and after every configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

D = 256
MANIFOLD_DIM = 8
MIB = 1024 * 1024


# ---------------------------------------------------------------------------------------------------------------
# worker side
# ---------------------------------------------------------------------------------------------------------------


def rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def reset_peak() -> bool:
    """Restart the kernel's peak-RSS counter (``VmHWM``; Linux >= 4.0), so that one phase's peak can be read alone."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_since_reset() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return peak_rss()


def phase_peak_mib(fn: Callable[[], object]) -> tuple[object, float | None]:
    """Run ``fn`` and return its result and its own peak RSS above the RSS it started from (None: not readable)."""
    gc.collect()
    ok = reset_peak()
    base = rss_now()
    result = fn()
    return result, (max(0, peak_since_reset() - base) / MIB if ok else None)


def torus(n: int, seed: int, dim: int = D) -> np.ndarray:
    """``n`` uniform points on the flat 8-torus rotated into R^dim, float32, generated in chunks (no big temp)."""
    rot, _ = np.linalg.qr(np.random.default_rng(12345).standard_normal((dim, 2 * MANIFOLD_DIM)))
    rot = rot.astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for i0 in range(0, n, 16384):
        k = min(n, i0 + 16384) - i0
        theta = 2 * math.pi * rng.random((k, MANIFOLD_DIM))
        x = (np.concatenate([np.cos(theta), np.sin(theta)], axis=1) / (2 * math.pi)).astype(np.float32)
        out[i0 : i0 + k] = x @ rot.T
    return out


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gemm_peak(threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    best, where = 0.0, ""
    for size in (1024, 2048, 4096):
        a = torch.randn(size, size)
        b = torch.randn(size, size)
        a @ b  # warm-up
        an, bn = a.numpy(), b.numpy()
        for name, fn in (("torch", lambda a=a, b=b: a @ b), ("numpy", lambda an=an, bn=bn: an @ bn)):
            t = best_time(fn, 3)
            gf = 2 * size**3 / t / 1e9
            if gf > best:
                best, where = gf, f"{name} {size}^3"
    return {"gflops": best, "where": where}


def tile_gemm(reference_aug32: np.ndarray, queries32: np.ndarray) -> str:
    """The torch search's matrix products alone, same tiles and library, no reduction: the ceiling of that tiling.

    Returns the library that computed them (``lightning_repgap._gemm``: torch's or numpy's BLAS).
    """
    import torch

    from lightning_repgap._gemm import TILE, TileProduct, cpu_engine
    from lightning_repgap._threads import blas_threads

    ref = torch.from_numpy(reference_aug32)
    qs = torch.from_numpy(queries32)
    engine = cpu_engine(ref.shape[1], ref.shape[0] * qs.shape[0] * ref.shape[1], ref.device)
    with blas_threads(engine):
        for i0 in range(0, qs.shape[0], TILE):
            q = qs[i0 : i0 + TILE]
            product = TileProduct(torch.cat([q, torch.ones(q.shape[0], 1)], dim=1), engine, TILE)
            for j0 in range(0, ref.shape[0], TILE):
                product(ref[j0 : j0 + TILE])
    return engine


def _exact_torch(cfg: dict, ref: np.ndarray, qs: np.ndarray) -> dict:
    from lightning_repgap.search import prepare, search_prepared

    out: dict = {}
    t0 = time.perf_counter()
    prep = prepare(ref, qs)
    out["prepare_s"] = time.perf_counter() - t0
    # Best of ``repeat``, search and tiles' GEMM alternating: single runs on a shared machine vary by ~20 %.
    search_s, gemm_s = [], []
    for _ in range(cfg.get("repeat", 1)):
        search_s.append(
            best_time(
                lambda: search_prepared(
                    prep.reference32, prep.queries32, 1, backend="torch", reference_aug32=prep.reference_aug32
                ),
                1,
            )
        )
        if cfg.get("tile_gemm"):
            out["engine"] = tile_gemm(prep.reference_aug32, prep.queries32)  # the library the search used
            gemm_s.append(best_time(lambda: tile_gemm(prep.reference_aug32, prep.queries32), 1))
    out["seconds"] = min(search_s)
    out["runs_s"] = search_s
    if gemm_s:
        out["tile_gemm_s"] = min(gemm_s)
    return out


def _full_measurement(cfg: dict, ref: np.ndarray, qs: np.ndarray) -> dict:
    from lightning_repgap import analyze
    from lightning_repgap.search import nearest, prepare, search_prepared

    out: dict = {}
    # Interleaved with one exact search in the same process (search, full, search, full, ...): the machine's
    # speed drifts by tens of percent over minutes, so a ratio of runs made minutes apart says little.
    # Two baselines: the bare tiled search on already centred data (the strict one), and ``nearest`` (what a
    # user calls for one exact search: checks, centring, search, float64 distances of the winners).
    # Each phase's own peak memory is read with the kernel's peak counter restarted before it (the process's
    # lifetime peak would charge the full measurement with the bare search's prepared copies); the bound's verdict
    # comes from the "full-memory" configuration, which runs ``analyze`` alone in a fresh process.
    full_s: list[float] = []
    search_s: list[float] = []
    nearest_s: list[float] = []
    peaks: dict[str, float | None] = {}

    def bare_search() -> None:
        prep = prepare(ref, qs)
        search_prepared(prep.reference32, prep.queries32, 1, backend="torch", reference_aug32=prep.reference_aug32)

    for _ in range(cfg.get("pairs", 1)):
        for name, fn, runs in (
            ("search_prepared", bare_search, search_s),
            ("nearest", lambda: nearest(ref, qs, backend="torch"), nearest_s),
            ("full", lambda: analyze(ref, qs, backend="torch"), full_s),
        ):
            t0 = time.perf_counter()
            result, peak = phase_peak_mib(fn)
            runs.append(time.perf_counter() - t0)
            peaks[name] = peak if peak is None or peaks.get(name) is None else max(peak, peaks[name] or 0.0)
    out["seconds"] = min(full_s)
    out["full_s"], out["search_s"], out["nearest_s"] = full_s, search_s, nearest_s
    out["phase_peak_mib"] = peaks
    out["gap"] = result.values["gap"]  # type: ignore[attr-defined]
    return out


def _full_memory(ref: np.ndarray, qs: np.ndarray) -> dict:
    """``analyze`` alone, its time and its own peak memory (``VmHWM`` restarted first, so that the data's generation
    before it does not count); where the counter cannot be restarted, the process's lifetime peak stands."""
    from lightning_repgap import analyze

    t0 = time.perf_counter()
    result, own_peak = phase_peak_mib(lambda: analyze(ref, qs, backend="torch"))
    out = {"seconds": time.perf_counter() - t0, "gap": result.values["gap"]}  # type: ignore[attr-defined]
    if own_peak is not None:
        out["extra_mib"] = own_peak
    return out


def run_worker(cfg: dict) -> dict:
    import torch

    threads = cfg["threads"]
    torch.set_num_threads(threads)
    os.environ.setdefault("REPGAP_NUM_THREADS", str(threads))
    kind = cfg["kind"]
    out: dict = {"load_before": os.getloadavg()[0]}
    if kind == "roofline":
        out.update(gemm_peak(cfg["gemm_threads"]))
        out["load_after"] = os.getloadavg()[0]
        return out

    n, m = cfg["n"], cfg["m"]
    ref = torus(n, 0)
    qs = torus(m, 1)
    import faiss  # noqa: F401 - imported before the baseline, like every library the configurations use
    import sklearn.neighbors  # noqa: F401

    from lightning_repgap._gemm import PROBE_MIN_WORK, cpu_engine
    from lightning_repgap.approximate import approximate_gap
    from lightning_repgap.search import prepare, search_prepared

    # The one-time choice of the CPU tile library (~0.1 s per process) is made here, not inside a timed search.
    out["engine"] = cpu_engine(D + 1, PROBE_MIN_WORK, torch.device("cpu"))
    base = rss_now()
    out["bank_mib"] = ref.nbytes / MIB
    out["flops"] = 2.0 * n * m * D
    if kind == "exact-torch":
        out.update(_exact_torch(cfg, ref, qs))
    elif kind == "faiss-knn":
        prep = prepare(ref, qs)
        out["seconds"] = best_time(lambda: search_prepared(prep.reference32, prep.queries32, 1, backend="faiss"), 1)
    elif kind == "cdist-topk":
        r, q = torch.from_numpy(ref), torch.from_numpy(qs)

        def cdist() -> None:
            for i0 in range(0, m, 256):
                torch.cdist(q[i0 : i0 + 256], r).topk(1, dim=1, largest=False)

        out["seconds"] = best_time(cdist, 1)
    elif kind == "sklearn-brute":
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=1, algorithm="brute", n_jobs=threads).fit(ref)
        out["seconds"] = best_time(lambda: nn.kneighbors(qs, 1), 1)
    elif kind == "full":
        out.update(_full_measurement(cfg, ref, qs))
    elif kind == "full-memory":  # analyze alone, once, in this fresh process: the memory bound's own number
        out.update(_full_memory(ref, qs))
    elif kind == "approx":
        res = approximate_gap(ref, qs, index=cfg["index"], scan=cfg.get("scan", "torch"))
        out["seconds"] = res.seconds
        out["gap"] = res.gap
        # The first k queries are the same points for every m (same generator stream): G(n_max) over them
        # compares with an exact run that used only k queries.
        out["gap_first"] = {str(k): float(res.per_query[-1, :k].mean()) for k in cfg.get("compare_m", [])}
        out["recall"] = res.recall
        out["rel_err"] = res.gap_rel_error
        out["exact_size"] = res.exact_size
        last = res.blocks[-1]
        out["params"] = last.params
        out["build_s"] = sum(b.build_seconds for b in res.blocks)
        out["search_s"] = sum(b.search_seconds for b in res.blocks)
    else:
        raise ValueError(kind)
    # The "full" configuration's lifetime peak mixes its three contenders' memory: kept for reference only.
    out.setdefault("lifetime_extra_mib" if kind == "full" else "extra_mib", max(0, peak_rss() - base) / MIB)
    out["load_after"] = os.getloadavg()[0]
    return out


# ---------------------------------------------------------------------------------------------------------------
# driver side
# ---------------------------------------------------------------------------------------------------------------


def coretype() -> str | None:
    """OpenBLAS core type to force for FAISS' bundled OpenBLAS, from the CPU flags."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    if " avx512f" in flags:
        return "SkylakeX"
    if " avx2" in flags:
        return "Haswell"
    return None


def _run_child(
    cmd: list[str], label: str, timeout: float, env: dict | None = None
) -> tuple[subprocess.CompletedProcess, float] | dict:
    """Run one benchmark child process: ``(completed process, wall s)``, or ``{"error": ...}`` if it timed out.

    Every child of this report is handled alike: its output captured, a timeout, and the last line of its stderr as
    the error when it fails (the caller decides what counts as failure)."""
    t0 = time.perf_counter()
    print(f"  running {label} ...", end="", flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        print(" timed out")
        return {"error": f"timed out after {timeout:.0f} s"}
    return proc, time.perf_counter() - t0


def _child_error(proc: subprocess.CompletedProcess, wall: float) -> dict:
    print(f" failed ({wall:.0f} s)")
    return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}


def spawn(cfg: dict, env_extra: dict | None = None, timeout: float = 1800) -> dict:
    env = {**os.environ, **(env_extra or {})}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)]
    ran = _run_child(cmd, cfg["name"], timeout, env)
    if isinstance(ran, dict):
        return ran
    proc, wall = ran
    if proc.returncode != 0:
        return _child_error(proc, wall)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f" {result.get('seconds', 0):.2f} s (process {wall:.0f} s, load {result['load_before']:.1f})")
    return result


def run_script(name: str, argv: list[str], timeout: float = 1800) -> dict:
    """Run a sibling benchmark script that writes its results with ``--json``; its result, or ``{"error": ...}``."""
    with tempfile.TemporaryDirectory(prefix="run_all-") as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, str(Path(__file__).with_name(name)), *argv, "--json", str(out)]
        ran = _run_child(cmd, f"{name} {' '.join(argv)}", timeout)
        if isinstance(ran, dict):
            return ran
        proc, wall = ran
        if proc.returncode != 0 or not out.exists():
            return _child_error(proc, wall)
        print(f" done ({wall:.0f} s)")
        return {"result": json.loads(out.read_text()), "wall_s": wall, "argv": argv}


def plan(quick: bool, threads: int) -> dict:
    """Sizes. ``exact_m[n]``: queries of the exact runs at bank size n (1e6 x 1e4 exact is ~5 TFLOP: too long on
    shared cores for the time budget, so 2,000 queries there; times are then also extrapolated to m)."""
    if quick:
        exact_m, slow_m = {100_000: 2_000}, 1_000
        approx_n, approx_m = [10_000, 100_000], 2_000
    else:
        exact_m, slow_m = {100_000: 10_000, 1_000_000: 2_000}, 2_000
        approx_n, approx_m = [100_000, 1_000_000], 10_000
    return {"exact_m": exact_m, "slow_m": slow_m, "approx_n": approx_n, "approx_m": approx_m, "threads": threads}


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (10-20 minutes on 2 cores)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("RESULTS.md")))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--limit", type=float, default=200.0, help="skip an approximate run estimated (from the smaller n) longer (s)"
    )
    parser.add_argument("--from-json", help="rewrite the report from a previous run's raw results (OUT.json)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return

    p = plan(args.quick, args.threads)
    thr = args.threads
    if args.from_json:
        raw = json.loads(Path(args.from_json).read_text())
        write_report(args, p, raw["res"], raw["load_start"], raw["load_end"], raw["total"])
        return
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    print(f"run_all: {'quick' if args.quick else 'full'}, threads={thr}, load {load_start[0]:.2f}")
    res: dict[str, dict] = {}
    res["roof"] = spawn({
        "name": f"GEMM roofline ({thr} threads)",
        "kind": "roofline",
        "threads": thr,
        "gemm_threads": thr,
    })
    res["roof1"] = spawn({"name": "GEMM roofline (1 thread)", "kind": "roofline", "threads": 1, "gemm_threads": 1})
    slow_m = p["slow_m"]
    for n, m in p["exact_m"].items():
        res[f"exact{n}"] = spawn({
            "name": f"exact torch n={n}",
            "kind": "exact-torch",
            "n": n,
            "m": m,
            "threads": thr,
            "tile_gemm": True,
            "repeat": 3,
        })
        res[f"full{n}"] = spawn({
            "name": f"full measurement n={n}",
            "kind": "full",
            "n": n,
            "m": m,
            "threads": thr,
            "pairs": 3,
        })
        res[f"fullmem{n}"] = spawn({
            "name": f"full measurement alone (memory) n={n}",
            "kind": "full-memory",
            "n": n,
            "m": m,
            "threads": thr,
        })
    n_base = min(p["exact_m"])
    base_cfg = {"n": n_base, "m": slow_m, "threads": thr}
    res["exact1t"] = spawn({**base_cfg, "name": "exact torch, 1 thread", "kind": "exact-torch", "threads": 1})
    res["faiss"] = spawn({**base_cfg, "name": "faiss.knn", "kind": "faiss-knn"})
    ct = coretype()
    if ct:
        res["faiss_ct"] = spawn(
            {**base_cfg, "name": f"faiss.knn CORETYPE={ct}", "kind": "faiss-knn"}, {"OPENBLAS_CORETYPE": ct}
        )
    res["cdist"] = spawn({**base_cfg, "name": "torch.cdist+topk", "kind": "cdist-topk"})
    res["sklearn"] = spawn({**base_cfg, "name": "sklearn brute", "kind": "sklearn-brute"})
    prev: dict[str, tuple[int, float]] = {}
    compare = sorted(set(p["exact_m"].values()))
    for n in p["approx_n"]:
        am = p["approx_m"]
        for key, index, scan in (("ivf", "ivf", "torch"), ("ivff", "ivf", "faiss"), ("hnsw", "hnsw", "torch")):
            cfg = {"name": f"approx {index}/{scan} n={n}", "kind": "approx", "n": n, "m": am, "threads": thr}
            if key != "ivf" and key in prev:  # IVF with the torch scan always runs: it is the target's row
                n0, t0 = prev[key]
                est = t0 * (n / n0) * (math.log(n) / math.log(n0) if key == "hnsw" else 1.0)
                if est > args.limit:
                    why = f"skipped: estimated {est:.0f} s from n={n0:,} (--limit {args.limit:.0f})"
                    res[f"{key}{n}"] = {"error": why}
                    print(f"  {cfg['name']}: {why}")
                    continue
            res[f"{key}{n}"] = spawn({**cfg, "index": index, "scan": scan, "compare_m": compare})
            if "seconds" in res[f"{key}{n}"]:
                prev[key] = (n, res[f"{key}{n}"]["seconds"])
    import bench_screen  # beside this script (its directory is on sys.path)

    screen_cfg = bench_screen.config(args.quick, thr)
    res["screen"] = {"cfg": screen_cfg}
    for hint in (False, True):
        label = "set" if hint else "unset"
        print(f"  running bf16 screen vs peers, OpenBLAS hint {label} ...", flush=True)
        res["screen"][label] = bench_screen.spawn(screen_cfg, hint)
    # The DDP target (2 ranks at 1 thread against one 1-thread process) and the callback's overhead table come
    # from their own scripts, run here so that every target of the speed work reads off one run.
    ddp_argv = ["--bank", "10000", "--queries", "1000", "--repeats", "1"] if args.quick else ["--repeats", "2"]
    res["ddp"] = run_script("bench_ddp.py", ddp_argv)
    callback_argv = ["--table", "--repeats", "1"] + (["--models", "bert"] if args.quick else [])
    res["callback"] = run_script("bench_callback.py", callback_argv, timeout=3600)
    load_end = os.getloadavg()
    total = time.perf_counter() - t_start
    raw = {"res": res, "load_start": load_start, "load_end": load_end, "total": total}
    Path(args.out).with_suffix(".json").write_text(json.dumps(raw, indent=1))
    write_report(args, p, res, load_start, load_end, total)


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


if __name__ == "__main__":
    main()
