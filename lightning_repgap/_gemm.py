"""The matrix product behind every score tile of the torch search on the CPU, on the faster of two BLAS libraries.

The exact search is a GEMM with a short inner dimension (``D + 1``, e.g. 257). torch's CPU wheels link Intel MKL,
numpy's wheels OpenBLAS, and their kernels differ at such shapes by tens of percent, in either direction depending
on the CPU: on the AMD EPYC reference host OpenBLAS ran the 2048 x 2048 x 257 tile at ~180 GFLOP/s and MKL at
~130 (``benchmarks/run_all.py`` reports both). So the first search big enough to care times one tile with each
and keeps the faster for the process, unless ``REPGAP_CPU_GEMM`` (``"torch"``, ``"numpy"``, ``"auto"``) says.

The reductions after each product (``amax``, ``topk``) stay in torch, on one thread while OpenBLAS owns the
cores: its worker threads spin between calls, and a second torch thread fighting them halves the speed (measured
75 against 165 GFLOP/s). OpenBLAS gets the search's thread count through ``threadpoolctl``; without it (or
without a pthreads-based BLAS under numpy, whose threads could then not be set) ``"auto"`` keeps torch.

Both libraries compute the same float32 products up to rounding, so they pick the same neighbours except where
two candidates are within float32 rounding of each other; the distances reported are recomputed in float64 either
way. Pin ``REPGAP_CPU_GEMM`` when bit-identical results across machines matter more than speed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
import torch

log = logging.getLogger(__name__)

Engine = Literal["torch", "numpy"]
_ENGINES = ("auto", "torch", "numpy")
# Below this many multiply-adds per search (16 full 2048 x 2048 tiles at D = 256) the choice is not worth a probe.
_PROBE_MIN_WORK = 16 * 2048 * 2048 * 256
# numpy is chosen only when clearly faster: near-equal timings would otherwise flip the choice from run to run.
_MIN_SPEEDUP = 1.1
_chosen: dict[int, Engine] = {}


def _blas_pools() -> Any:
    """``threadpoolctl`` controller of the pthreads-based BLAS libraries loaded (numpy's OpenBLAS), or ``None``.

    OpenMP-threaded BLAS builds (FAISS' bundled OpenBLAS) are left out on purpose: resizing them resizes an OpenMP
    runtime that torch may share. With no such library, or no ``threadpoolctl``, numpy's threads cannot be set.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    pools = ThreadpoolController().select(threading_layer="pthreads")
    return pools if pools.lib_controllers else None


def _env_engine() -> str:
    value = os.environ.get("REPGAP_CPU_GEMM", "auto").strip().lower() or "auto"
    if value not in _ENGINES:
        raise ValueError(f"REPGAP_CPU_GEMM must be one of {_ENGINES}, got {value!r}.")
    return value


def cpu_engine(inner_dim: int, work: int, device: torch.device) -> Engine:
    """The library that computes the score tiles of one search.

    Args:
        inner_dim: columns of the augmented operands (``D + 1``).
        work: multiply-adds of the search (``n * m * inner_dim``), to skip probing for small searches.
        device: where the operands live; anything but the CPU uses torch.

    Returns:
        ``"torch"`` or ``"numpy"``.

    Example:
        >>> cpu_engine(257, 1000, torch.device("cpu"))  # too small to probe
        'torch'

    """
    requested = _env_engine()
    if device.type != "cpu" or requested == "torch":
        return "torch"
    if requested == "numpy":
        return "numpy"
    if inner_dim in _chosen:
        return _chosen[inner_dim]
    # Cheap tests first: scanning the loaded libraries for a BLAS whose threads can be set takes milliseconds.
    if work < _PROBE_MIN_WORK or _blas_pools() is None:
        return "torch"
    _chosen[inner_dim] = _probe(inner_dim)
    return _chosen[inner_dim]


def _probe(inner_dim: int, size: int = 2048) -> Engine:
    """Time one ``size x size x inner_dim`` product with each library (best of 2 after a warm-up)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, inner_dim), dtype=np.float32)
    b = rng.standard_normal((size, inner_dim), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
    threads = max(1, torch.get_num_threads())
    candidates: dict[Engine, Callable[[], object]] = {
        "torch": lambda: torch.mm(ta, tb.T, out=tout),
        "numpy": lambda: np.matmul(a, b.T, out=out),
    }
    seconds: dict[Engine, float] = {}
    for name, run in candidates.items():
        with engine_threads(name, threads):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                run()
                times.append(time.perf_counter() - t0)
        seconds[name] = min(times[1:])
    choice: Engine = "numpy" if seconds["torch"] > _MIN_SPEEDUP * seconds["numpy"] else "torch"
    log.info(
        "CPU score tiles (%dx%dx%d, %d threads): torch %.1f ms, numpy %.1f ms -> %s",
        size,
        size,
        inner_dim,
        threads,
        1e3 * seconds["torch"],
        1e3 * seconds["numpy"],
        choice,
    )
    return choice


@contextlib.contextmanager
def engine_threads(engine: Engine, threads: int | None = None) -> Iterator[None]:
    """Thread settings for a tile loop: with ``"numpy"``, OpenBLAS gets ``threads`` and torch one thread.

    ``threads`` defaults to torch's current count (the search's, set by the caller). Both are restored on exit.
    """
    if engine == "torch":
        yield
        return
    count = max(1, torch.get_num_threads()) if threads is None else threads
    pools = _blas_pools()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.nullcontext() if pools is None else pools.limit(limits=count):
            yield
    finally:
        torch.set_num_threads(before)


class TileProduct:
    """``q_aug @ block.T`` for one query chunk against successive bank blocks, on the chosen library.

    With ``"numpy"`` the product is written into one reused buffer and returned as a torch view of it: each tile
    must be consumed before the next one is asked for (the search loops do).
    """

    def __init__(self, q_aug: torch.Tensor, engine: Engine, max_block: int) -> None:
        self.q_aug = q_aug
        self.engine = engine
        if engine == "numpy":
            self._q = q_aug.numpy()
            self._buffer = np.empty(q_aug.shape[0] * max_block, dtype=self._q.dtype)

    def __call__(self, block: torch.Tensor) -> torch.Tensor:
        if self.engine == "torch":
            return self.q_aug @ block.T
        out = self._buffer[: self._q.shape[0] * block.shape[0]].reshape(self._q.shape[0], block.shape[0])
        np.matmul(self._q, block.numpy().T, out=out)
        return torch.from_numpy(out)
