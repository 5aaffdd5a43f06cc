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
import gc
import json
import math
import os
import resource
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
    from run_all_report import write_report  # beside this script (it imports this module's data constants)

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


if __name__ == "__main__":
    main()
