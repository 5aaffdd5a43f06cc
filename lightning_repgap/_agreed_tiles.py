"""The tile choices DDP ranks agree on: the BLAS library of the float32 tiles, and the bf16 screen or not.

Under ``search_precision="auto"`` one process screens with bf16 tiles when one timed bf16 tile is at least
:data:`~lightning_repgap._screen.SCREEN_MIN_SPEEDUP` times faster than a float32 one
(:func:`~lightning_repgap._screen.use_screen`, timed once per process). Under DDP every rank must run the same
path (the others wait for the slowest at the merge), and rank 0's own probe alone decided before: a probe timed
while its core was busy put every rank on float32 tiles now and then (``docs/performance.md``, "Tile choice from
every rank's timings").

Here every rank times both tiles once per process (:func:`tile_seconds`: the single process' tiles, alternated
the same way, :data:`RUNS` times each instead of two), each rank's runs travel in the one small collective that
already carried rank 0's choices (:func:`ballot`), and every rank decides from all ranks' runs (:func:`decide`):
the median, over every rank's runs, of the ratio of a float32 run to the bf16 run timed right after it. Both runs
of a pair share the moment's load, and one rank's probe slowed by load moves a median of ``RUNS x W`` ratios
little; since every rank decides from the same gathered numbers, every rank takes the same choice. Whether to time
at all (the search big enough, the CPU, bf16 products accumulating in float32) and the BLAS library stay rank 0's,
as before.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from lightning_repgap._gemm import PROBE_MIN_WORK, GemmLibrary, cpu_engine
from lightning_repgap._screen import SCREEN_MIN_SPEEDUP, accumulates_in_fp32, tile_runs, use_screen
from lightning_repgap._screen_tiles import TILE

__all__ = ["RUNS", "ballot", "decide", "paired_ratios", "tile_seconds"]

log = logging.getLogger(__name__)

#: Timed runs of each tile per rank, after one warm-up run (the single process' probe times two). Paid once per
#: process; a wrong float32 choice costs every rank far more, at every measurement (``docs/performance.md``).
RUNS = 4
# Ballot codes for the screen: never (fp32, or a search too small to time), always (bf16-screen), timed here.
_NEVER, _ALWAYS, _TIMED = 0.0, 1.0, 2.0
_seconds: dict[tuple[int, str], np.ndarray] = {}


def tile_seconds(dim: int, library: GemmLibrary, size: int = TILE) -> np.ndarray:
    """``[float32 runs, bf16 runs]``, ``RUNS`` each (seconds): a ``size x size`` tile each way, timed once per process.

    The product and the row maxima of each, the two alternated after a warm-up run of both, at this scope's thread
    count (the float32 tile on ``library``); cached per width and library, as the single process' probe.
    """
    key = (dim, library)
    if key not in _seconds:
        runs = tile_runs(dim, library, RUNS, size)
        _seconds[key] = runs[:, 1:].ravel()
    return _seconds[key]


def ballot(precision: str, dim: int, work: int, device: torch.device, gemm: str) -> np.ndarray:
    """What this rank sends: ``[numpy tiles, screen code, float32 runs, bf16 runs]`` (float64, same length everywhere).

    Args:
        precision: the engine's ``search_precision``.
        dim: data dimension ``D``.
        work: this rank's search in multiply-adds (``n m D``), as the engine weighs it.
        device: where the tiles run.
        gemm: the engine's tile library option.

    Returns:
        ``1 + 1 + 2 * RUNS`` numbers; the runs are NaN unless the screen code says they were timed.

    Raises:
        RuntimeError: for ``"bf16-screen"`` where bf16 products do not accumulate in float32 (as one process).

    """
    library = cpu_engine(dim + 1, work, device, gemm)
    out = np.full(2 + 2 * RUNS, math.nan)
    out[0] = float(library == "numpy")
    if precision != "auto":
        out[1] = _ALWAYS if use_screen(precision, dim, work, device, gemm) else _NEVER
    elif device.type != "cpu" or work < PROBE_MIN_WORK or not accumulates_in_fp32(device):
        out[1] = _NEVER  # where one process would not time either
    else:
        out[1] = _TIMED
        out[2:] = tile_seconds(dim, library)
    return out


def paired_ratios(parts: list[np.ndarray]) -> np.ndarray:
    """The float32 / bf16 ratio of each timed pair of runs, of every rank that timed rank 0's library (for decide).

    A float32 run and the bf16 run right after it share the moment's load, so their ratio cancels most of it; the
    fastest runs of each kind (the single process' rule) can come from different moments, and under load, pooled
    over the ranks, they still chose float32 tiles now and then (``docs/performance.md``). Ranks that timed another
    library are left out: their float32 tiles are not the ones that will run.
    """
    same = [p[2 : 2 + RUNS] / p[2 + RUNS :] for p in parts if p[1] == _TIMED and p[0] == parts[0][0]]
    return np.concatenate(same) if same else np.empty(0)  # none (rank 0 did not time): decide never asks


def decide(parts: list[np.ndarray]) -> tuple[bool, bool]:
    """``(numpy tiles, screen)`` from every rank's :func:`ballot`, in rank order: the same on every rank.

    The library, and whether the screen was timed at all, are rank 0's. A timed choice screens when the median of
    the float32 / bf16 ratios of every rank's paired runs (:func:`paired_ratios`) is at least ``SCREEN_MIN_SPEEDUP``:
    one rank's probe slowed by load moves a median of ``RUNS x W`` ratios little.

    Example:
        >>> rank0 = np.array([0, 2, *[0.020] * RUNS, *[0.016] * RUNS])  # alone: ratio 1.25 < 1.5, float32 tiles
        >>> rank1 = np.array([0, 2, *[0.021] * RUNS, *[0.010] * RUNS])  # ratio 2.1
        >>> decide([rank0, rank1])  # median of both ranks' ratios: 1.675 >= 1.5, the screen
        (False, True)

    """
    lead = parts[0]
    numpy_tiles = bool(lead[0])
    if lead[1] != _TIMED:
        return numpy_tiles, bool(lead[1] == _ALWAYS)
    ratio = float(np.median(paired_ratios(parts)))
    screen = ratio >= SCREEN_MIN_SPEEDUP
    log.debug(  # every rank, every search: the single process' probe logs its timings once, at info
        "score tiles agreed by %d ranks: float32 / bf16 tile time, median of paired runs %.2f -> %s",
        len(parts),
        ratio,
        "bf16-screen" if screen else "fp32",
    )
    return numpy_tiles, screen
