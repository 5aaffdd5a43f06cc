r"""Low-precision screening with exact answers: bf16 score tiles, a rigorous error bound, float64 re-scoring.

Each (query chunk x bank block) tile is one bf16 GEMM with float32 accumulation (rounded to bf16 on output, the
only form torch's fast CPU kernels, oneDNN's, return). From the norms of the operands and the unit roundoffs of the
formats, every screened score carries a bound :math:`E` on its error; a bank point whose *upper* bound on the true
score reaches the query's running *lower* bound on its best (``k``-th best for the neighbour table) is a candidate,
and every candidate is re-scored in float64 exactly like a float64 brute force does. The answer is the float64
brute force's, not an approximation of it. ``docs/performance.md`` ("Low-precision screening") states the bound.

The score of query :math:`q` and bank row :math:`r` (both centred) is :math:`q \cdot r - \lVert r\rVert^2/2`, shifted
by a per-query constant :math:`c` (the running best so far, as two bf16 columns): candidates then have scores near
0, so the bf16 rounding of the output, relative to the score, is tiny where it matters. The operands are

- queries: ``[bf16(q), 1, 1, -c_hi, -c_lo]``;
- bank: ``[bf16(r), -h_1, -h_2, 1, 1]`` with :math:`h_1 + h_2 \approx \lVert r \rVert^2 / 2` (two bf16 parts),

and the bound per query and tile (maxima of bank-row quantities over the tile) is

.. math::

    E = \alpha_q R + \beta_q \Delta + \eta + \gamma_K\,(\beta_q (R + \Delta) + N + |c|) + \sigma,

with :math:`\alpha_q \ge \lVert q - \mathrm{bf16}(q) \rVert`, :math:`\beta_q = \lVert \mathrm{bf16}(q) \rVert`,
:math:`R \ge \lVert r \rVert`, :math:`\Delta \ge \lVert r - \mathrm{bf16}(r) \rVert` (both including the float32
rounding of the centring), :math:`\eta` the error of the norm column, :math:`N = \lVert r \rVert^2/2`,
:math:`\gamma_K = K u_{32} / (1 - K u_{32})` the float32 accumulation over the :math:`K` columns and :math:`\sigma`
the float64 rounding of the brute force itself. An output :math:`O` rounded to bf16 is within
:math:`u_{16} |O| / (1 - u_{16})` of the float32 sum.

When the bound is too wide for the data (many candidates), the screen gives up early (a candidate budget checked
after every tile) and the caller runs the float32 search instead.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lightning_repgap._checks import _check_choice
from lightning_repgap._exact import Tiles
from lightning_repgap._gemm import PROBE_MIN_WORK, TileProduct, cpu_engine
from lightning_repgap._prepare import Prepared, parallel_steps, rows_sum_sq64
from lightning_repgap._screen_tiles import (
    EPS64,
    GROUP_SCRATCH_ROWS,
    OUTPUT_ROUNDING,
    TILE,
    U16,
    Reductions,
    RunningBounds,
    bf16_bits,
    candidates,
    flat_view,
    still_able_to_win,
    upper_inverse,
    widen_bits,
)
from lightning_repgap._threads import blas_threads, current_threads
from lightning_repgap.config import SEARCH_PRECISIONS, SearchPrecision

__all__ = [
    "OUTPUT_ROUNDING",
    "SCREEN_MIN_SPEEDUP",
    "ScreenResult",
    "accumulates_in_fp32",
    "check_precision",
    "float64_slack",
    "screen_if_chosen",
    "screen_search",
    "tile_error",
    "tile_runs",
    "use_screen",
]

log = logging.getLogger(__name__)

U32 = 2.0**-24
_OUT = OUTPUT_ROUNDING
# Extra columns: two for the norm, two for the shift; the width is padded to a multiple of this (faster kernels).
_EXTRA = 4
_PAD = 8
# Candidate budget: this many per query (first tiles, neighbour tables) plus one per this many scored pairs.
_BUDGET_PER_QUERY = 64
_BUDGET_PAIRS = 512
#: ``search_precision="auto"`` screens when a bf16 tile (product + group maxima) is this much faster than a float32 one.
SCREEN_MIN_SPEEDUP = 1.5
_probed: dict[tuple[int, str], bool] = {}
# Bytes of the float32 temporary in which the bank's bf16 residuals are computed, a step of rows at a time.
_STEP_BYTES = 16 * 2**20
# Bytes of the bank's bf16 operand built once (the first rows); the rows beyond are rounded per tile.
_CACHE_BYTES = 64 * 2**20
# Rows scored in float64 at once while re-scoring candidates (bounds the float64 temporaries).
_RESCORE_CHUNK = 4096
# ... and at most this many bytes of float64 differences per step (one core's cache: the steps run on the measurement's
# threads, see _prepare.parallel_steps; 16 MiB steps on one thread were 2-4x slower on two cores).
_RESCORE_BYTES = 2**20
# Bank positions that set the neighbour tables' first floors (see _Top.prime).
_PRIME = 4096


@dataclass(frozen=True)
class ScreenResult:
    """Exact float64 results of a screened search.

    Attributes:
        winners: int64 ``(S, m)`` bank positions nearest among the first ``sizes[s]`` (earliest on ties).
        dist_sq: float64 ``(S, m)`` their squared distances, as a float64 brute force computes them.
        knn: int64 ``(len(knn_rows), k)`` bank positions of the neighbour table, ascending by float64 distance, or
            ``None``.
        knn_dist_sq: float64 their squared distances (the re-scoring's, as a float64 brute force computes them), or
            ``None``.
        candidates: (query, bank point) pairs that passed the screen (those still able to win at the end of the pass
            were re-scored in float64).

    """

    winners: np.ndarray
    dist_sq: np.ndarray
    knn: np.ndarray | None
    candidates: int
    knn_dist_sq: np.ndarray | None = None


def accumulates_in_fp32(device: torch.device) -> bool:
    """Whether bf16 products on ``device`` accumulate in float32 (the bound assumes it).

    ``256 + 255 * 1`` is 511 in float32 (512 once rounded to bf16) but stays 256 if the sum is kept in bf16.

    Example:
        >>> isinstance(accumulates_in_fp32(torch.device("cpu")), bool)
        True

    """
    a = torch.ones((1, 256), dtype=torch.bfloat16, device=device)
    a[0, 0] = 256.0
    b = torch.ones((1, 256), dtype=torch.bfloat16, device=device)
    return abs(float((a @ b.T).float().item()) - 511.0) <= 2.0


def check_precision(precision: Any) -> SearchPrecision:
    """``precision`` itself if it is one of :data:`SEARCH_PRECISIONS`; a ``ValueError`` naming the choices otherwise.

    Example:
        >>> check_precision("fp32")
        'fp32'

    """
    return _check_choice(precision, "search_precision", SEARCH_PRECISIONS)


def screen_if_chosen(
    precision: str,
    tiles: Tiles,
    prep: Prepared,
    sizes: np.ndarray,
    knn_rows: np.ndarray | None,
    k: int,
    query_chunk: int | None = None,
) -> ScreenResult | None:
    """The screen's exact result where ``precision`` and the probe choose it; ``None``: run the float32 tiles.

    ``query_chunk``: queries per chunk of the screen (default ``TILE``; see :func:`screen_search`).
    """
    if tiles.backend != "torch":
        return None
    device = tiles.device or torch.device("cpu")
    dim = prep.queries32.shape[1]
    if not use_screen(precision, dim, int(sizes[-1]) * prep.queries32.shape[0] * dim, device, tiles.gemm):
        return None
    return screen_search(prep, sizes, device, knn_rows=knn_rows, k=k, query_chunk=query_chunk or TILE)


def use_screen(precision: str, dim: int, work: int, device: torch.device, gemm: str = "auto") -> bool:
    """Whether an exact search of ``work`` multiply-adds in ``dim`` dimensions runs the bf16 screen.

    Args:
        precision: ``"fp32"`` (never), ``"bf16-screen"`` (always; an error where bf16 products do not accumulate in
            float32, which the bound assumes) or ``"auto"``: on the CPU, for searches big enough to care
            (:data:`~lightning_repgap._gemm.PROBE_MIN_WORK`), when one timed bf16 tile is at least
            :data:`SCREEN_MIN_SPEEDUP` times faster than a float32 tile on the library ``gemm`` picks (timed once per
            process, width and library).
        dim: data dimension ``D``.
        work: ``n * m * D`` of the search.
        device: where the tiles run.
        gemm: the float32 tiles' library option (see :func:`lightning_repgap._gemm.cpu_engine`).

    Returns:
        ``True`` to screen.

    Raises:
        RuntimeError: for ``"bf16-screen"`` on a device whose bf16 products do not accumulate in float32.

    Example:
        >>> use_screen("auto", 16, 1000, torch.device("cpu"))  # too small to probe
        False

    """
    if precision == "fp32":
        return False
    if precision == "bf16-screen":
        if not accumulates_in_fp32(device):
            raise RuntimeError(
                f"search_precision='bf16-screen': bf16 products on {device} do not accumulate in float32."
            )
        return True
    if device.type != "cpu" or work < PROBE_MIN_WORK:
        return False
    library = cpu_engine(dim + 1, work, device, gemm)
    key = (dim, library)
    if key not in _probed:
        _probed[key] = accumulates_in_fp32(device) and _probe(dim, library)
    return _probed[key]


def tile_runs(dim: int, library: str, runs: int, size: int = TILE) -> np.ndarray:
    """Seconds of ``runs + 1`` ``size x size`` tiles each way, ``[[float32...], [bf16...]]``; the first is a warm-up.

    Each run is the product and its row maxima (the scan's work per tile), the float32 tile (on ``library``, at this
    scope's thread count) and the bf16 one alternated, so that a float32 run and the bf16 run after it share the
    moment's load. The single process' probe and the DDP ranks' agreement (:mod:`~lightning_repgap._agreed_tiles`)
    time the same tiles.
    """
    gen = torch.Generator().manual_seed(0)
    a32 = torch.randn((size, dim + 1), generator=gen)
    b32 = torch.randn((size, dim + 1), generator=gen)
    width = -(-(dim + _EXTRA) // _PAD) * _PAD  # the screen's operand: D and its extra columns, padded
    a16 = torch.randn((size, width), generator=gen).to(torch.bfloat16)
    b16 = torch.randn((size, width), generator=gen).to(torch.bfloat16)
    product = TileProduct(a32, library, size)  # type: ignore[arg-type]
    threads = current_threads()
    seconds = np.empty((2, runs + 1))
    for i in range(runs + 1):
        with blas_threads(library, threads):  # type: ignore[arg-type]
            t0 = time.perf_counter()
            product(b32).amax(dim=1)
            seconds[0, i] = time.perf_counter() - t0
        t0 = time.perf_counter()
        (a16 @ b16.T).amax(dim=1)
        seconds[1, i] = time.perf_counter() - t0
    return seconds


def _probe(dim: int, library: str, size: int = TILE) -> bool:
    """Time one ``size x size`` tile both ways (product + group maxima; best of 2 after a warm-up, alternated)."""
    threads = current_threads()
    seconds = tile_runs(dim, library, 2, size)
    t32, t16 = float(seconds[0, 1:].min()), float(seconds[1, 1:].min())
    choice = t32 >= SCREEN_MIN_SPEEDUP * t16
    log.info(
        "score tiles (%dx%dx%d, %d threads): float32 (%s) %.1f ms, bf16 %.1f ms -> %s",
        size,
        size,
        dim,
        threads,
        library,
        1e3 * t32,
        1e3 * t16,
        "bf16-screen" if choice else "fp32",
    )
    return choice


def _gamma(k: int) -> float:
    return k * U32 / (1.0 - k * U32)


def _split2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (float32) as ``hi + lo`` bf16 parts (``x - hi`` is exact in float32)."""
    hi = x.to(torch.bfloat16)
    lo = (x - hi.float()).to(torch.bfloat16)
    return hi, lo


def _round_down(thr: np.ndarray) -> np.ndarray:
    """A float32 value ``<= thr`` (elementwise), for comparisons with the bf16 outputs (exact in float32)."""
    out = thr.astype(np.float32)
    return np.where(out > thr, np.nextafter(out, np.float32(-np.inf)), out)


class _Bank:
    """The bank as bf16 GEMM operand, plus the per-row quantities of the bound.

    The bf16 operand of the first :attr:`cached` rows (at most :data:`_CACHE_BYTES`) is built once; the rows beyond
    are rounded again for each tile that reads them (:meth:`operand`). A whole bf16 copy of a large bank would be
    half the bank's size again, over the measurement's memory bound (bank + 256 MiB); a tile's rounding costs
    about 1/``TILE`` of its product.
    """

    def __init__(self, reference_aug32: np.ndarray, device: torch.device) -> None:
        r32 = torch.from_numpy(reference_aug32[:, :-1])
        n, dim = r32.shape
        self.dim = dim
        self.width = -(-(dim + _EXTRA) // _PAD) * _PAD
        self.device = device
        self.cached = min(n, max(_PRIME, _CACHE_BYTES // (2 * self.width)))
        self._r32 = r32
        half_sq = -torch.from_numpy(np.ascontiguousarray(reference_aug32[:, -1]))  # ||r||^2 / 2, float32
        self._hi, self._lo = _split2(half_sq)
        mat = torch.empty((self.cached, self.width), dtype=torch.bfloat16)
        resid = torch.empty(n, dtype=torch.float32)
        rows = max(1, min(n, _STEP_BYTES // (4 * dim)))
        step = torch.empty((rows, dim), dtype=torch.float32)
        low16 = torch.empty((rows, dim), dtype=torch.bfloat16)
        # One step's rows: rounded to bf16, widened back and subtracted in place (``bf(r) - r`` is exact in float32),
        # on one thread: these passes are memory-bound, and on a busy host every parallel region waits.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for i0 in range(0, n, rows):
                i1 = min(n, i0 + rows)
                low, tmp = low16[: i1 - i0], step[: i1 - i0]
                low.copy_(r32[i0:i1])
                tmp.copy_(low)
                tmp.sub_(r32[i0:i1])
                torch.linalg.vector_norm(tmp, dim=1, out=resid[i0:i1])
                if i0 < self.cached:
                    c1 = min(i1, self.cached)
                    mat[i0:c1, :dim].copy_(low[: c1 - i0])
        finally:
            torch.set_num_threads(threads)
        self._fill_columns(mat, 0, self.cached)
        self.mat = mat.to(device)
        self._tile: torch.Tensor | None = None
        self.first_rows = reference_aug32[:64]  # a few float32 rows, for each chunk's first shift
        gamma_d = _gamma(dim + 1)
        half = half_sq.double().numpy()
        # ||r|| of the float32 row (its float32 sum of squares is within gamma_d), then of the exact centred row.
        norm = np.sqrt(2.0 * half * (1.0 + gamma_d)) * (1.0 + 2.01 * U32)
        self.norm = norm
        self.resid = resid.double().numpy() * (1.0 + 1e-4) + 1.01 * U32 * norm
        # |h_1 + h_2 - ||x||^2 / 2|: bf16 split, float32 sum of squares, float32 rounding of the centred row.
        self.eta = half * (1.01 * U16 * U16 + 1.01 * gamma_d + 2.1 * U32)
        self.half = half
        self._maxima: dict[tuple[int, int], tuple[float, float, float, float]] = {}

    def _fill_columns(self, mat: torch.Tensor, j0: int, j1: int) -> None:
        """The norm columns (``-h_1``, ``-h_2``), the shift columns' ones and the zero padding of rows ``j0:j1``."""
        dim = self.dim
        mat[:, dim] = -self._hi[j0:j1]
        mat[:, dim + 1] = -self._lo[j0:j1]
        mat[:, dim + 2 : dim + _EXTRA] = 1.0
        mat[:, dim + _EXTRA :] = 0.0

    def operand(self, j0: int, j1: int) -> torch.Tensor:
        """Bank rows ``j0:j1`` as bf16 operand (at most ``TILE`` rows past :attr:`cached`); valid till the next call."""
        if j1 <= self.cached:
            return self.mat[j0:j1]
        if self._tile is None:
            self._tile = torch.empty((TILE, self.width), dtype=torch.bfloat16)
        tile = self._tile[: j1 - j0]
        tile[:, : self.dim].copy_(self._r32[j0:j1])  # the same rounding as the cached rows'
        self._fill_columns(tile, j0, j1)
        return tile.to(self.device)

    def tile_bounds(self, j0: int, j1: int) -> tuple[float, float, float, float]:
        """Maxima over bank rows ``j0:j1`` of ``R``, ``Delta``, ``eta``, ``N`` (every query chunk asks again)."""
        if (j0, j1) not in self._maxima:
            self._maxima[j0, j1] = (
                float(self.norm[j0:j1].max()),
                float(self.resid[j0:j1].max()),
                float(self.eta[j0:j1].max()),
                float(self.half[j0:j1].max()),
            )
        return self._maxima[j0, j1]


class _Chunk:
    """A query chunk as bf16 GEMM operand, with its shift columns and the per-query quantities of the bound."""

    def __init__(self, q32: np.ndarray, bank: _Bank, first_rows: np.ndarray, device: torch.device) -> None:
        q = torch.from_numpy(q32)
        self.dim = dim = bank.dim
        mat = torch.zeros((q.shape[0], bank.width), dtype=torch.bfloat16)
        mat[:, :dim] = q
        mat[:, dim : dim + 2] = 1.0
        low = mat[:, :dim]
        self.mat = mat.to(device)
        gamma_d = _gamma(dim)
        q_norm = torch.linalg.vector_norm(q, dim=1).double().numpy() * (1.0 + gamma_d)
        self.alpha = torch.linalg.vector_norm(torch.sub(q, low), dim=1).double().numpy() * (1.0 + 1e-4)
        self.alpha += 1.01 * U32 * q_norm
        self.beta = torch.linalg.vector_norm(low, dim=1, dtype=torch.float32).double().numpy() * (1.0 + gamma_d)
        self.q_norm = q_norm
        # The first shift: the best float32 score against a few bank rows (any value is valid, a close one is tight).
        scores = _first_scores(q32, first_rows, dim)
        self.shift = np.zeros(q.shape[0])
        self.set_shift(scores.max(axis=1).astype(np.float64))

    def set_shift(self, target: np.ndarray) -> None:
        """Shift the scores by (about) ``target``; :attr:`shift` is the exact shift, a sum of two bf16 values."""
        t32 = target.astype(np.float32)
        if self.mat.device.type == "cpu":
            # Once per tile: numpy on the operand's bits, no torch call (each one costs a parallel region).
            hi_bits = bf16_bits(t32)
            hi32 = widen_bits(hi_bits)
            lo_bits = bf16_bits(t32 - hi32)  # exact in float32
            bits = self.mat.view(torch.int16).numpy().view(np.uint16)
            bits[:, self.dim + 2] = hi_bits ^ 0x8000  # -hi: the sign bit flipped
            bits[:, self.dim + 3] = lo_bits ^ 0x8000
            self.shift = hi32.astype(np.float64) + widen_bits(lo_bits)
            return
        hi, lo = _split2(torch.from_numpy(t32))
        self.mat[:, self.dim + 2] = -hi.to(self.mat.device)
        self.mat[:, self.dim + 3] = -lo.to(self.mat.device)
        self.shift = hi.double().cpu().numpy() + lo.double().cpu().numpy()


def _first_scores(q32: np.ndarray, first_rows: np.ndarray, dim: int) -> np.ndarray:
    """Float32 scores ``q.r - ||r||^2 / 2`` of a chunk against a few bank rows, as a torch product.

    Not numpy's: an OpenBLAS product leaves its worker threads spinning for a while, and the bf16 tiles that
    follow at once would share the cores with them (about half speed; see ``docs/performance.md``).
    """
    rows = torch.from_numpy(np.ascontiguousarray(first_rows[:, :dim]))
    return (torch.from_numpy(q32) @ rows.T).numpy() + first_rows[:, dim]


def tile_error(chunk: _Chunk, bank: _Bank, j0: int, j1: int, sigma: np.ndarray) -> np.ndarray:
    """Per query of ``chunk``: the bound ``E`` on ``|true shifted score - float32 sum|`` over bank rows ``j0:j1``.

    ``sigma`` (:func:`float64_slack`) lets the float64 brute force's own rounding never drop its winner.
    """
    big_r, delta, eta, half = bank.tile_bounds(j0, j1)
    err = chunk.alpha * big_r + chunk.beta * delta + eta + sigma + 1e-30 * (1 + chunk.beta) * (1 + big_r)
    # float32 accumulation of the K products and the norm and shift columns (bf16 x bf16 products are exact)
    err += _gamma(bank.width) * (chunk.beta * (big_r + delta) + half * 1.01 + np.abs(chunk.shift))
    return err * (1.0 + 1e-9)  # the float64 evaluation of this bound


def float64_slack(chunk: _Chunk, dim: int, r_max: float) -> np.ndarray:
    """Rounding of a float64 ``||q - r||^2`` (halved, in score units, for two points): ``(D + 3) eps64 (|q|+|r|)^2``."""
    return (dim + 3) * EPS64 * (chunk.q_norm + r_max) ** 2 * 1.01


def _budget(m: int, knn_count: int, k: int, pairs: int) -> int:
    return _BUDGET_PER_QUERY * m + 4 * k * knn_count + pairs // _BUDGET_PAIRS


def screen_search(
    prep: Prepared,
    sizes: np.ndarray,
    device: torch.device,
    knn_rows: np.ndarray | None = None,
    k: int = 0,
    query_chunk: int = TILE,
) -> ScreenResult | None:
    """Exact prefix minima (and neighbour table) by bf16 screening and float64 re-scoring; ``None``: fall back.

    Runs inside the caller's thread scope. The bank is processed in position order and tiles never straddle a size
    boundary, so a point matters at some prefix size only if its upper bound reaches the running lower bound at
    its tile: one pass with a running threshold yields every candidate of every size.

    Args:
        prep: the prepared (centred) bank and queries.
        sizes: increasing bank sizes.
        device: where the tiles are computed.
        knn_rows: distinct queries that also need their ``k`` nearest bank points of the whole ``sizes[-1]`` bank.
        k: neighbours per ``knn_rows`` query.
        query_chunk: queries screened together (one bf16 operand, one pass over the bank). Every chunk pays fixed
            costs per bank tile, so a DDP rank's share is cut into a few balanced chunks
            (:mod:`lightning_repgap._shard`). The results do not depend on it: each query's candidates are judged
            by its own bounds and re-scored in float64.

    Returns:
        A :class:`ScreenResult`, or ``None`` when the candidates exceed the budget (the bound is too loose for the
        data): the caller then runs the float32 search.
    """
    t0 = time.perf_counter()
    q32 = prep.queries32
    m = q32.shape[0]
    bounds = [0, *(int(v) for v in sizes)]
    n = bounds[-1]
    bank = _Bank(prep.reference_aug32[:n], device)
    knn_rows = np.empty(0, dtype=np.int64) if knn_rows is None else np.asarray(knn_rows, dtype=np.int64)
    k = int(k) if knn_rows.size else 1
    threads = torch.get_num_threads()
    try:
        found = _scan(q32, bank, bounds, knn_rows, k, device, threads, t0, query_chunk)
    finally:
        torch.set_num_threads(threads)
    if found is None:
        return None
    cand_q, cand_j, total = found
    t1 = time.perf_counter()
    qi = np.concatenate(cand_q)
    pos = np.concatenate(cand_j)
    dist = _rescore(prep, qi, pos)
    winners, dist_sq = _prefix_minima(qi, pos, dist, m, sizes)
    knn, knn_dist = _knn_table(qi, pos, dist, knn_rows, k) if knn_rows.size else (None, None)
    log.debug(
        "bf16 screen n=%d m=%d D=%d: %d candidates (%.2f per query), tiles %.4fs, re-scoring %.4fs",
        n,
        m,
        bank.dim,
        total,
        total / max(1, m),
        t1 - t0,
        time.perf_counter() - t1,
    )
    return ScreenResult(winners, dist_sq, knn, total, knn_dist)


def _scan(
    q32: np.ndarray,
    bank: _Bank,
    bounds: list[int],
    knn_rows: np.ndarray,
    k: int,
    device: torch.device,
    threads: int,
    t0: float,
    query_chunk: int = TILE,
) -> tuple[list[np.ndarray], list[np.ndarray], int] | None:
    """The pass over the tiles: candidate ``(query, bank position)`` lists and their count; ``None``: gave up."""
    m = q32.shape[0]
    r_max = float(bank.norm.max())
    first_rows = bank.first_rows
    cand_q: list[np.ndarray] = []
    cand_j: list[np.ndarray] = []
    total = pairs = 0
    reduce = Reductions(threads)
    # The tiles' products and their gathered hit rows go to two buffers made once: a fresh 8 MiB tile per product
    # (and a gather of varying size) made glibc raise its mmap threshold and serve them from a fragmenting heap,
    # which cost hundreds of MiB of RSS above the bank (docs/performance.md, "Memory").
    tile_buf = torch.empty(min(query_chunk, m) * TILE, dtype=torch.bfloat16, device=device)
    rows_buf = torch.empty_like(tile_buf)
    scratch = torch.empty(GROUP_SCRATCH_ROWS * TILE, dtype=torch.float32, device=device)  # group_maxima's float32 rows
    for i0 in range(0, m, query_chunk):
        i1 = min(m, i0 + query_chunk)
        chunk = _Chunk(q32[i0:i1], bank, first_rows, device)
        mine = np.flatnonzero((knn_rows >= i0) & (knn_rows < i1))
        top = RunningBounds(i1 - i0, knn_rows[mine] - i0, k)
        sigma = float64_slack(chunk, bank.dim, r_max)
        sample = min(bounds[-1], _PRIME)
        if sample >= k and mine.size:
            err = tile_error(chunk, bank, 0, sample, sigma)
            top.prime(chunk.mat, bank.operand(0, sample), chunk.shift, err)
        # This chunk's candidates: row, bank position, upper bound on the true score, and size block.
        found: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = []
        block_best = np.empty((len(bounds) - 1, i1 - i0))
        for s in range(len(bounds) - 1):
            top.floor_1_valid = bounds[s + 1] >= sample  # this block's prefix sizes all hold the sample
            for j0 in range(bounds[s], bounds[s + 1], TILE):
                j1 = min(j0 + TILE, bounds[s + 1])
                err = tile_error(chunk, bank, j0, j1, sigma)
                torch.set_num_threads(threads)
                out = torch.matmul(chunk.mat, bank.operand(j0, j1).T, out=flat_view(tile_buf, i1 - i0, j1 - j0))
                o_max = reduce.row_max(out)  # one pass over the tile; the rest of the tile on the same threads
                pairs += (i1 - i0) * (j1 - j0)
                if not np.isfinite(o_max).all():
                    _fallback("non-finite screened scores", t0)
                    return None
                np.maximum(top.best, chunk.shift + o_max - _OUT * np.abs(o_max) - err, out=top.best)
                filled = top.fill(out, chunk.shift, err)
                thr = _round_down(upper_inverse(top.threshold() - chunk.shift - err))
                hit = np.flatnonzero(o_max >= thr)
                if hit.size:
                    rows, cols, vals = candidates(out, hit, thr, rows_buf, scratch)
                    if top.merge(rows, chunk.shift[rows] + vals - _OUT * np.abs(vals) - err[rows], filled):
                        # Tables rose: keep only what still reaches them (each table only ever rises).
                        keep = vals >= upper_inverse(top.threshold()[rows] - chunk.shift[rows] - err[rows])
                        rows, cols, vals = rows[keep], cols[keep], vals[keep]
                    total += rows.size
                    if total > _budget(m, knn_rows.size, k, pairs):
                        _fallback(f"{total} candidates after {pairs} scored pairs", t0)
                        return None
                    upper = chunk.shift[rows] + vals + _OUT * np.abs(vals) + err[rows]
                    found.append((rows, cols + j0, upper, s))
                # The next tile's shift: this query's best lower bound so far (rounded to bf16 x 2).
                target = top.threshold()
                chunk.set_shift(np.where(np.isfinite(target), target, top.best))
            block_best[s] = top.best
        for rows, pos, keep in still_able_to_win(found, block_best, top):
            cand_q.append(rows[keep] + i0)
            cand_j.append(pos[keep])
    return cand_q, cand_j, total


def _fallback(reason: str, t0: float) -> None:
    log.info("bf16 screen gave up (%s) after %.4fs; running the float32 search", reason, time.perf_counter() - t0)


def _rescore(prep: Prepared, qi: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Float64 ``||q - r||^2`` of candidate pairs, computed exactly as :meth:`Prepared.dist_sq` does."""
    out = np.empty(qi.size, dtype=np.float64)
    step = max(1, min(_RESCORE_CHUNK, _RESCORE_BYTES // (8 * prep.queries.shape[1])))

    def run(c0: int) -> None:  # each pair on its own: steps and threads change no value
        sl = slice(c0, c0 + step)
        diff = np.subtract(prep.queries[qi[sl]], prep.bank_rows(pos[sl]), dtype=np.float64)
        out[sl] = rows_sum_sq64(diff)

    parallel_steps(run, range(0, qi.size, step), qi.size * prep.queries.shape[1])
    return out


def _prefix_minima(
    qi: np.ndarray, pos: np.ndarray, dist: np.ndarray, m: int, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per size and query: the candidate of least float64 distance among the first ``sizes[s]`` (earliest on ties).

    No sort: each (size block, query) keeps its least distance and, among the candidates at that distance, its
    earliest position (block ``b`` holds the positions ``sizes[b - 1] <= pos < sizes[b]``); size ``s`` then takes
    block ``s``'s candidate only where it is strictly closer than size ``s - 1``'s winner, since an earlier block's
    positions all come first. ``dist`` holds float64 sums of squares, never NaN nor ``-0.0`` (a NaN would hide its
    block's candidates from the ties; a ``-0.0`` tied with ``+0.0`` could return either sign).
    """
    count = len(sizes)
    block = np.searchsorted(sizes, pos, side="right")  # sizes ascend: pos < sizes[s] exactly when block <= s
    key = block * m + qi
    best = np.full((count + 1) * m, np.inf)
    np.minimum.at(best, key, dist)
    tie = dist == best[key]
    none = np.iinfo(np.int64).max
    where = np.full((count + 1) * m, none, dtype=np.int64)
    np.minimum.at(where, key[tie], pos[tie])
    dist_sq, winners = best[: count * m].reshape(count, m), where[: count * m].reshape(count, m)
    for s in range(1, count):
        stay = ~(dist_sq[s] < dist_sq[s - 1])
        dist_sq[s, stay] = dist_sq[s - 1, stay]
        winners[s, stay] = winners[s - 1, stay]
    if (winners == none).any():  # cannot happen: every query's first tile holds a candidate
        raise RuntimeError("bf16 screen: a query has no candidate; please report this as a bug.")
    return winners, dist_sq


def _knn_table(
    qi: np.ndarray, pos: np.ndarray, dist: np.ndarray, knn_rows: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` candidates of least float64 distance (earliest on ties) of each ``knn_rows`` query, ascending.

    Returns their bank positions and their float64 distances (so the neighbour table needs no second scoring).
    """
    slot = np.full(int(qi.max(initial=0)) + 1, -1, dtype=np.int64)
    slot[knn_rows] = np.arange(knn_rows.size)
    keep = slot[qi] >= 0
    row, pos, dist = slot[qi[keep]], pos[keep], dist[keep]
    order = np.lexsort((pos, dist, row))
    row, pos, dist = row[order], pos[order], dist[order]
    starts = np.searchsorted(row, np.arange(knn_rows.size))
    rank = np.arange(row.size) - starts[row]
    table = np.full((knn_rows.size, k), -1, dtype=np.int64)
    use = rank < k
    table[row[use], rank[use]] = pos[use]
    if (table < 0).any():
        raise RuntimeError("bf16 screen: a neighbour-table query has fewer than k candidates; please report this.")
    table_dist = np.empty(table.shape)
    table_dist[row[use], rank[use]] = dist[use]
    return table, table_dist
