"""The search contract: for every bank size of a grid, each query's nearest bank row (+ an optional neighbour table).

Distances are **squared** Euclidean distances (``dist_sq``) unless a name says otherwise: that is what the
representation gap needs, and what FAISS' ``METRIC_L2`` returns.

One contract, several engines. :class:`SearchEngine` is what the curve builder
(:func:`lightning_repgap.gap.build_curve`) calls: given the bank (``reference[order]``), the queries and the grid
``sizes``, an engine returns a :class:`BankSearch` whose :class:`PrefixMinima` hold, per size and per query, the
exact float64 squared distance to the nearest bank row it found among the first ``sizes[s]`` rows and that row.
Two such results over the same queries merge by an elementwise minimum (:meth:`PrefixMinima.merge`, through the one
merge helper :func:`merge_nearest`), which is what an engine over a bank split across DDP ranks, or a
low-precision screen whose candidates are re-scored exactly, returns and combines. Engines are chosen by name
(:func:`engine_for`):

- ``"exact"``: float32 selection on centred data (torch tiled GEMMs in one pass over the bank, or FAISS flat
  search block by block), float64 distances of the winners, and a float64 re-ranking of the queries whose nearest
  neighbour is too close for float32 (:func:`~lightning_repgap._prepare.needs_float64_ranking`); or, with
  ``precision="bf16-screen"`` (or ``"auto"`` where a probe finds bf16 tiles faster), bf16 tiles that screen the
  bank with a rigorous error bound and a float64 re-scoring of every candidate (private module ``_screen``);
- ``"ivf"``, ``"hnsw"``: approximate FAISS indexes (private module ``_ann``, imported only when chosen), with
  recall and error measured against an exact sample of the queries.

The exact kernels (torch tiles, FAISS' flat search) are in the private ``_exact``; the approximate indexes are in
``_ann``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from lightning_repgap._accuracy import sample_accuracy
from lightning_repgap._checks import _check_choice, _check_positive_int, _check_representations, _check_same_dim
from lightning_repgap._concentration_block import ConcentrationSubset, RowMoments, TileBlock
from lightning_repgap._exact import Tiles, knn32, merge_nearest, prefix_search, rank_float64
from lightning_repgap._exact_table import exact_table
from lightning_repgap._gemm import GemmOption, check_gemm
from lightning_repgap._imports import _FAISS_AVAILABLE
from lightning_repgap._prepare import Prepared, needs_float64_ranking, prepare, winner_distances
from lightning_repgap._screen import check_precision, screen_if_chosen
from lightning_repgap._threads import default_num_threads, thread_scope
from lightning_repgap.config import BACKENDS, INDEX_OPTIONS, SEARCH_PRECISIONS, Backend, IndexOption, SearchPrecision

__all__ = [
    "AUTO_APPROXIMATE_MIN_BANK",
    "BACKENDS",
    "INDEX_OPTIONS",
    "SEARCH_PRECISIONS",
    "Backend",
    "BankSearch",
    "ExactEngine",
    "IndexOption",
    "PrefixMinima",
    "Prepared",
    "SearchEngine",
    "SearchPrecision",
    "auto_index",
    "check_index",
    "check_precision",
    "default_num_threads",
    "engine_for",
    "merge_nearest",
    "nearest",
    "prefix_nearest",
    "prefix_nearest_and_knn",
    "prepare",
    "resolve_backend",
    "resolve_index",
    "sample_accuracy",
    "search_prepared",
]

log = logging.getLogger(__name__)

#: Bank size from which :func:`auto_index` picks an approximate index: beyond every size measured so far, because
#: at none of them was IVF at least 3x faster than the exact search at <= 1 % gap error (``docs/performance.md``).
AUTO_APPROXIMATE_MIN_BANK = 100_000_000


def resolve_backend(backend: str = "auto") -> str:
    """Turn ``backend`` into a concrete backend name: ``"faiss"``, ``"faiss-gpu"`` or ``"torch"``.

    ``"auto"`` is FAISS on the GPU when FAISS sees one, else the tiled GEMM path (``"torch"``: torch tensors, with
    each CPU tile's product on torch's or numpy's BLAS, whichever is faster here). It has the one-pass prefix
    search and the fused neighbour table; ``faiss.knn`` runs far from the GEMM roofline on some CPUs (see
    ``docs/performance.md``; ``benchmarks/run_all.py`` measures both). FAISS stays available explicitly.

    Args:
        backend: one of :data:`BACKENDS`.

    Returns:
        The backend that will run.

    Raises:
        ValueError: for an unknown name, or ``"faiss-gpu"`` without a GPU.
        ModuleNotFoundError: if a FAISS backend is requested but FAISS is not installed.

    Example:
        >>> resolve_backend("torch")
        'torch'

    """
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {BACKENDS}, got {backend!r}.")
    if backend == "torch" or (backend == "auto" and not _FAISS_AVAILABLE):
        return "torch"
    if not _FAISS_AVAILABLE:
        raise ModuleNotFoundError(f"backend={backend!r} needs FAISS: `pip install faiss-cpu` (or faiss-gpu).")
    import faiss

    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if backend == "faiss-gpu" and gpus == 0:
        raise ValueError("backend='faiss-gpu' but FAISS sees no GPU (is faiss-gpu installed and CUDA visible?).")
    if backend == "auto":
        return "faiss-gpu" if gpus > 0 else "torch"
    return backend


def auto_index(n_bank: int) -> str:
    """The engine ``index="auto"`` runs for a bank of ``n_bank`` points: ``"exact"`` or ``"ivf"``.

    Exact search costs ``2 n m D`` flops and runs near the GEMM roofline; an IVF index built for one measurement
    costs about ``4 n sqrt(16 m) D`` flops (build + scan) plus the exact recall sample and fixed overheads, and it
    gives up a little accuracy. ``"auto"`` switches only where the approximate search is at least 3x faster at
    <= 1 % gap error; measured on 1e5 and 1e6 points (``benchmarks/bench_screen.py --crossover``) it was slower, so
    below ``AUTO_APPROXIMATE_MIN_BANK = 100_000_000`` points (more than the sizes measured) the exact search is
    chosen, and ``"ivf"`` (with measured recall) from there on. HNSW is never chosen automatically: building its
    graph costs more than one exact search.

    Args:
        n_bank: number of bank (reference) points.

    Returns:
        ``"exact"`` or ``"ivf"``.

    Raises:
        ValueError: if ``n_bank`` is not a positive integer.

    Example:
        >>> auto_index(2_000_000), auto_index(200_000_000)
        ('exact', 'ivf')

    """
    n_bank = _check_positive_int(n_bank, "n_bank")
    return "ivf" if n_bank >= AUTO_APPROXIMATE_MIN_BANK else "exact"


def check_index(index: Any) -> IndexOption:
    """``index`` itself if it is one of :data:`INDEX_OPTIONS`; a ``ValueError`` naming the choices otherwise.

    Example:
        >>> check_index("hnsw")
        'hnsw'

    """
    return _check_choice(index, "index", INDEX_OPTIONS)


def resolve_index(index: str, n_bank: int) -> str:
    """The engine an ``index`` argument stands for: ``"exact"``, ``"ivf"`` or ``"hnsw"`` (``"auto"``: see below).

    Args:
        index: one of :data:`INDEX_OPTIONS`; ``"auto"`` is :func:`auto_index` of ``n_bank``.
        n_bank: number of bank points (decides ``"auto"``).

    Returns:
        ``"exact"``, ``"ivf"`` or ``"hnsw"``.

    Raises:
        ValueError: for any other ``index``.

    Example:
        >>> resolve_index("auto", 50_000), resolve_index("auto", 200_000_000), resolve_index("hnsw", 10)
        ('exact', 'ivf', 'hnsw')

    """
    return auto_index(n_bank) if check_index(index) == "auto" else index


@dataclass(frozen=True)
class PrefixMinima:
    """Per grid size ``s`` and query ``j``: the nearest bank row found among the first ``sizes[s]``, and its distance.

    Attributes:
        dist_sq: float64 ``(S, m)`` exact squared distance to ``rows[s, j]`` (``inf`` where nothing was found).
        rows: int64 ``(S, m)`` row of the reference (as passed) found nearest (``-1`` where nothing was found).

    Example:
        >>> a = PrefixMinima(np.array([[4.0], [1.0]]), np.array([[0], [3]]))
        >>> b = PrefixMinima(np.full((2, 1), 2.0), np.ones((2, 1), dtype=np.int64))
        >>> a.running().dist_sq.ravel().tolist(), a.merge(b).rows.ravel().tolist()
        ([4.0, 1.0], [1, 3])

    """

    dist_sq: np.ndarray
    rows: np.ndarray

    def merge(self, other: PrefixMinima) -> PrefixMinima:
        """Elementwise minimum with another engine's (or rank's, or block's) minima over the same queries."""
        dist, rows = merge_nearest((self.dist_sq, self.rows), (other.dist_sq, other.rows))
        return PrefixMinima(dist, rows)

    def running(self) -> PrefixMinima:
        """Running minimum over the sizes: ``G(n)`` can only fall as the bank grows (earliest row on ties)."""
        dist = np.empty_like(self.dist_sq)
        rows = np.empty_like(self.rows)
        best = (self.dist_sq[0], self.rows[0])
        for s in range(self.dist_sq.shape[0]):
            best = merge_nearest(best, (self.dist_sq[s], self.rows[s]))
            dist[s], rows[s] = best
        return PrefixMinima(dist, rows)


@dataclass(frozen=True)
class BankSearch:
    """What an engine returns: the per-size minima plus what the curve builder needs from its copy of the bank.

    Attributes:
        minima: per-size nearest rows of every query (merge by elementwise minimum).
        centre: float64 ``(D,)`` translation of the engine's float32 copies (concentration is computed on it).
        sq_dev_sum: ``sum_i ||r_i - mean||^2`` over the bank rows searched, accumulated in float64.
        knn_rows: int64 ``(len(knn_queries), n_neighbors)`` rows of the reference nearest to the neighbour-table
            queries (float32 order), or ``None``.
        exact_sample: ``(query indices, float64 (S, k) exact prefix minima)`` of queries also searched exactly, for
            engines whose results are approximate (see :func:`sample_accuracy`); ``None`` for exact engines.
        report: engine-specific details (``ApproximateGap`` for the approximate indexes), or ``None``.
        knn_dist_sq: float64 squared distances at ``knn_rows``, entry for entry, when the engine already scored
            them exactly as :func:`~lightning_repgap._prepare.pair_dist_sq` does; ``None``: the curve builder
            computes them.
        prepared: the engine's centred copies (:class:`~lightning_repgap._prepare.Prepared`, bank positions in
            ``order``) when it made them for exactly this bank and these queries; the curve builder reads the
            concentration's rows from them instead of centring those rows again. ``None`` for engines whose copies
            are something else (an approximate index, one DDP rank's share). They are a float32 copy of the whole
            bank: a caller that keeps a ``BankSearch`` beyond building its curve should drop them
            (``dataclasses.replace(found, prepared=None)``).
        concentration: the moments of the ``concentration`` subset's squared distances, when the engine computed
            them (:mod:`~lightning_repgap._concentration_block`); ``None``: the curve builder computes them.

    """

    minima: PrefixMinima
    centre: np.ndarray
    sq_dev_sum: float
    knn_rows: np.ndarray | None = None
    exact_sample: tuple[np.ndarray, np.ndarray] | None = None
    report: Any = None
    knn_dist_sq: np.ndarray | None = None
    prepared: Prepared | None = None
    concentration: RowMoments | None = None


class SearchEngine(Protocol):
    """An engine behind the search contract, chosen by name with :func:`engine_for`.

    ``search`` runs inside the caller's :func:`~lightning_repgap._threads.thread_scope` (entered once, with FAISS'
    count too when ``uses_faiss``); engines read the count from it, they take no ``num_threads``.
    """

    @property
    def name(self) -> str:
        """The engine's name (``"exact"``, ``"ivf"``, ``"hnsw"``), reported as ``GapCurve.backend`` when approximate."""
        ...

    @property
    def label(self) -> str:
        """What ``GapCurve.backend`` reports: the exact backend that ran, or the approximate index."""
        ...

    @property
    def uses_faiss(self) -> bool:
        """Whether the engine calls FAISS (the thread scope then sets FAISS' count too)."""
        ...

    def search(
        self,
        reference: np.ndarray,
        queries: np.ndarray,
        order: np.ndarray | None,
        sizes: np.ndarray,
        *,
        knn_queries: np.ndarray | None = None,
        n_neighbors: int = 0,
        concentration: ConcentrationSubset | None = None,
    ) -> BankSearch:
        """Nearest bank row of every query for each size of ``sizes`` (the bank is ``reference[order]``).

        Args:
            reference: ``(N, D)`` float32/float64 reference set, validated.
            queries: ``(m, D)`` queries, validated, same ``D``.
            order: bank position -> row of ``reference`` (``sizes[-1]`` entries); ``None``: the identity.
            sizes: strictly increasing bank sizes, the last at most ``N``.
            knn_queries: distinct query indices that also need their ``n_neighbors`` nearest rows of the whole
                (``sizes[-1]``-row) bank, or ``None``.
            n_neighbors: neighbours per ``knn_queries`` query.
            concentration: the concentration's queries and bank positions (``None``: no moments returned).

        Returns:
            A :class:`BankSearch`.
        """
        ...


@dataclass(frozen=True)
class ExactEngine:
    """Exact search: float32 selection on centred data, float64 winners, float64 re-ranking of near ties.

    Attributes:
        backend: a resolved backend (:func:`resolve_backend`): ``"torch"`` (one pass over the bank for every size,
            with the neighbour table from the same tiles) or ``"faiss"`` / ``"faiss-gpu"`` (one flat search per
            block, merged; a separate top-``k`` search for the neighbour table).
        gemm: library of the torch backend's CPU tiles, see :func:`lightning_repgap._gemm.cpu_engine`.
        device: device of the torch backend (default the CPU).
        precision: arithmetic of the torch backend's tiles, see :data:`~lightning_repgap.config.SearchPrecision`;
            the screen falls back to float32 tiles by itself where its bound is too loose for the data.
        query_chunk: queries per chunk of the bf16 screen (``None``: its default tile); the results do not depend
            on it. A DDP rank sets it for its share of the queries (:mod:`lightning_repgap._shard`).
        small_pages: the centred bank in ordinary pages (see :func:`~lightning_repgap._prepare.centred_aug32`); a
            DDP rank sets it.

    Example:
        >>> bank, queries = np.array([[5.0], [3.0], [1.0], [0.0]]), np.array([[0.2]])
        >>> res = ExactEngine("torch").search(bank, queries, None, np.array([1, 2, 4]))
        >>> res.minima.rows.ravel().tolist(), res.minima.dist_sq.ravel().round(2).tolist()
        ([0, 1, 3], [23.04, 7.84, 0.04])

    """

    backend: str = "torch"
    gemm: GemmOption = "auto"
    device: torch.device | None = None
    precision: SearchPrecision = "auto"
    query_chunk: int | None = field(default=None, repr=False)
    small_pages: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:  # a chunk of < 1 query would make the screen skip its pass, not fail
        if self.query_chunk is not None and (isinstance(self.query_chunk, bool) or self.query_chunk < 1):
            raise ValueError(f"ExactEngine: query_chunk must be a positive number of queries, got {self.query_chunk!r}")

    @property
    def name(self) -> str:
        """``"exact"``."""
        return "exact"

    @property
    def label(self) -> str:
        """The backend."""
        return self.backend

    @property
    def uses_faiss(self) -> bool:
        """Whether the backend calls FAISS (its thread count must then be set)."""
        return self.backend != "torch"

    @property
    def tiles(self) -> Tiles:
        """Where its float32 searches run."""
        return Tiles(self.backend, self.gemm, self.device)

    def search(
        self,
        reference: np.ndarray,
        queries: np.ndarray,
        order: np.ndarray | None,
        sizes: np.ndarray,
        *,
        knn_queries: np.ndarray | None = None,
        n_neighbors: int = 0,
        concentration: ConcentrationSubset | None = None,
    ) -> BankSearch:
        """See :meth:`SearchEngine.search`."""
        rows = np.arange(int(sizes[-1])) if order is None else order
        # The bank in ``order``, without a reordered copy of it; its squared norms summed on the way (sq_dev_sum).
        prep = prepare(reference, queries, rows=rows, sq_norms=True, small_pages=self.small_pages)
        screened = screen_if_chosen(
            self.precision, self.tiles, prep, sizes, knn_queries, n_neighbors, query_chunk=self.query_chunk
        )
        conc = None if concentration is None else TileBlock(concentration, prep.queries32)
        if screened is not None:
            return BankSearch(
                minima=PrefixMinima(screened.dist_sq, rows[screened.winners]),
                centre=prep.centre,
                sq_dev_sum=prep.reference_sq_sum,
                knn_rows=None if screened.knn is None else rows[screened.knn],
                knn_dist_sq=screened.knn_dist_sq,
                prepared=prep,
                concentration=None if conc is None else conc.moments(prep.reference_aug32),
            )
        # One candidate more than the table holds: the float32 ranking's check (_exact_table.exact_table).
        wide = min(n_neighbors + 1, int(sizes[-1]))
        winners, knn = prefix_search(prep, sizes, self.tiles, knn_rows=knn_queries, k=wide, block=conc)
        known = knn_dist = None
        if knn is not None and knn_queries is not None:
            # The neighbour table's float64 distances, needed anyway: winners found in it are not scored twice.
            knn, knn_dist = exact_table(
                prep, knn_queries, knn, prep.dist_sq(knn, rows=knn_queries), n_neighbors, self.tiles
            )
            known = (knn_queries, knn, knn_dist)
        dist = winner_distances(prep, winners, known=known)
        # dist[-1] is the float64 distance of each query's float32 winner in the whole bank: what the check needs.
        risky = needs_float64_ranking(prep, dist[-1])
        if risky.size:
            log.debug("re-ranking %d of %d queries in float64", risky.size, winners.shape[1])
            winners[:, risky] = rank_float64(prep, sizes, risky)
            dist[:, risky] = winner_distances(prep, winners[:, risky], rows=risky)
        return BankSearch(
            minima=PrefixMinima(dist, rows[winners]),
            centre=prep.centre,
            sq_dev_sum=prep.reference_sq_sum,
            knn_rows=None if knn is None else rows[knn],
            knn_dist_sq=knn_dist,
            prepared=prep,
            # FAISS: no tiles, a product; the tiles' block reads the query norms the ranking check summed (same bits)
            concentration=None if conc is None else conc.moments(prep.reference_aug32, prep.queries_sq_norms64),
        )


def engine_for(
    name: str,
    *,
    backend: str = "auto",
    gemm: GemmOption = "auto",
    device: torch.device | None = None,
    precision: SearchPrecision = "auto",
    **options: Any,
) -> SearchEngine:
    """The engine called ``name``: ``"exact"`` (:class:`ExactEngine`), ``"ivf"`` or ``"hnsw"`` (approximate).

    Args:
        name: ``"exact"``, ``"ivf"`` or ``"hnsw"`` (resolve ``"auto"`` first with :func:`resolve_index`).
        backend: exact backend (:data:`BACKENDS`), resolved here; also the exact search of an approximate engine's
            neighbour table.
        gemm: library of the CPU score tiles (``"auto"``, ``"torch"``, ``"numpy"``); ``"auto"`` follows
            ``REPGAP_CPU_GEMM``, else the faster on this host.
        device: device of the torch backend.
        precision: arithmetic of the exact engine's tiles (``"auto"``, ``"fp32"``, ``"bf16-screen"``).
        **options: parameters of the approximate engines (``seed``, ``nlist``, ``nprobe``, ...; see
            :func:`lightning_repgap.approximate.approximate_gap`).

    Returns:
        A :class:`SearchEngine`.

    Raises:
        ValueError: for an unknown name, backend or ``gemm``, or options an exact engine does not take.

    Example:
        >>> engine_for("exact", backend="torch")
        ExactEngine(backend='torch', gemm='auto', device=None, precision='auto')

    """
    resolved = resolve_backend(backend)
    check_gemm(gemm)
    check_precision(precision)
    if name == "exact":
        if options:
            raise ValueError(f"the exact engine takes no options, got {sorted(options)}.")
        return ExactEngine(resolved, gemm, device, precision)
    if name in ("ivf", "hnsw"):
        from lightning_repgap._ann import ApproximateEngine  # only an approximate measurement imports it

        return ApproximateEngine(index=name, knn_backend=resolved, **options)
    raise ValueError(f"`index` must be one of ('exact', 'ivf', 'hnsw') once resolved, got {name!r}.")


def search_prepared(
    reference32: np.ndarray,
    queries32: np.ndarray,
    k: int,
    *,
    backend: str,
    query_chunk_size: int | None = None,
    num_threads: int | None = None,
    device: torch.device | None = None,
    reference_aug32: np.ndarray | None = None,
    gemm: GemmOption = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest reference rows of each query, on already centred float32 data.

    Args:
        reference32: ``(n, D)`` centred float32 bank (:attr:`Prepared.reference32`).
        queries32: ``(m, D)`` centred float32 queries.
        k: neighbours per query.
        backend: a resolved backend name (see :func:`resolve_backend`).
        query_chunk_size: queries searched at once (default: 65536 for FAISS, 2048 for torch).
        num_threads: threads for the search (torch and FAISS, both restored afterwards); default
            ``REPGAP_NUM_THREADS``, else torch's current count (which torch then keeps untouched).
        device: device of the torch backend.
        reference_aug32: the same bank with its ``-||r||^2 / 2`` column (:attr:`Prepared.reference_aug32`) for the
            torch backend, which otherwise builds that ``(n, D + 1)`` copy itself.
        gemm: library of the torch backend's CPU tiles (``"auto"``, ``"torch"``, ``"numpy"``).

    Returns:
        ``(dist_sq32, index)``: float32 ``(m, k)`` squared distances as the backend computed them (good for
        ranking, not for reporting) and int64 ``(m, k)`` indices, both ascending by distance.

    Example:
        >>> prep = prepare(np.array([[0.0], [1.0], [5.0]]), np.array([[0.9], [4.0]]))
        >>> search_prepared(prep.reference32, prep.queries32, 1, backend="torch")[1].ravel().tolist()
        [1, 2]

    """
    engine = ExactEngine(backend, check_gemm(gemm), device)
    with thread_scope(num_threads, faiss=engine.uses_faiss):
        return knn32(reference32, queries32, k, engine.tiles, query_chunk_size, reference_aug32)


def nearest(
    reference: Any,
    queries: Any,
    k: int = 1,
    *,
    backend: Backend = "auto",
    exclude_self: bool = False,
    query_chunk_size: int | None = None,
    num_threads: int | None = None,
    gemm: GemmOption = "auto",
    search_precision: SearchPrecision = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest reference points of every query, by squared Euclidean distance.

    Args:
        reference: ``(n, D)`` array or tensor (any float dtype, any device).
        queries: ``(m, D)`` array or tensor, same ``D``.
        k: neighbours per query, ``1 <= k <= n`` (``k <= n - 1`` with ``exclude_self``).
        backend: ``"auto"`` (FAISS on the GPU if it sees one, else torch; see :func:`resolve_backend`),
            ``"faiss"``, ``"faiss-gpu"`` or ``"torch"`` (tiled matmul + max/top-k on the queries' device).
        exclude_self: ``queries`` is the reference set itself (same rows, same order); drop each point's own
            match **by index**, so exact duplicates still count as neighbours at distance 0.
        query_chunk_size: queries searched at once (default: 65536 for FAISS, 2048 for torch).
        num_threads: threads for the search (torch and FAISS); default ``REPGAP_NUM_THREADS``, else torch's
            current intra-op count (see :func:`default_num_threads`).
        gemm: library of the CPU score tiles (``"auto"``, ``"torch"``, ``"numpy"``); wins over ``REPGAP_CPU_GEMM``.
        search_precision: arithmetic of the torch backend's tiles (``"auto"``, ``"fp32"``, ``"bf16-screen"``; see
            :data:`~lightning_repgap.config.SearchPrecision`). With the bf16 screen the neighbours are those of a
            float64 brute force (ties: the lower index first).

    Returns:
        ``(dist_sq, index)``: float64 ``(m, k)`` squared distances recomputed exactly, ascending per row, and
        int64 ``(m, k)`` row indices into ``reference``.

    Raises:
        ValueError: on non-2-D, non-finite or mismatched inputs, ``k`` out of range, or ``num_threads < 1``.
        TypeError: on non-floating inputs.

    Example:
        >>> ref = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
        >>> dist_sq, idx = nearest(ref, np.array([[0.9, 0.0]]), k=2, backend="torch")
        >>> idx.tolist(), np.round(dist_sq, 6).tolist()
        ([[1, 0]], [[0.01, 0.81]])

    """
    device = queries.device if isinstance(queries, torch.Tensor) else torch.device("cpu")
    ref = _check_representations(reference, "reference", min_points=1)
    qs = _check_representations(queries, "queries", min_points=1)
    _check_same_dim(ref, qs, "reference", "queries")
    k = _check_positive_int(k, "k")
    if exclude_self and ref.shape[0] != qs.shape[0]:
        raise ValueError(
            f"`exclude_self=True` needs `queries` to be `reference` itself, got {qs.shape[0]} and {ref.shape[0]} rows."
        )
    available = ref.shape[0] - int(exclude_self)
    if k > available:
        raise ValueError(f"`k`={k} exceeds the {available} reference points available to each query.")
    resolved = resolve_backend(backend)
    precision = check_precision(search_precision)
    engine = ExactEngine(resolved, check_gemm(gemm), device if resolved == "torch" else None, precision)
    scope = thread_scope(num_threads, faiss=engine.uses_faiss)  # validates num_threads before the inputs are copied
    prep = prepare(ref, qs)
    kk = k + int(exclude_self)
    with scope:
        sizes = np.array([ref.shape[0]])
        screened = screen_if_chosen(
            precision, engine.tiles, prep, sizes, np.arange(qs.shape[0]) if kk > 1 else None, kk
        )
        if screened is not None:
            idx = screened.winners.T if screened.knn is None else screened.knn
        else:
            _, idx = knn32(prep.reference32, prep.queries32, kk, engine.tiles, query_chunk_size, prep.reference_aug32)
    if exclude_self:
        idx = _drop_self(idx, k)
    dist_sq = prep.dist_sq(idx)
    order = np.argsort(dist_sq, axis=1, kind="stable")
    return np.take_along_axis(dist_sq, order, axis=1), np.take_along_axis(idx, order, axis=1)


def _drop_self(idx: np.ndarray, k: int) -> np.ndarray:
    """Remove row ``i``'s own index from row ``i`` of a ``(n, k + 1)`` neighbour table, keeping ``k`` columns.

    With duplicates the self-match need not be in column 0, and may even be missing when ``k + 1`` duplicates
    tie; then the last column is dropped instead.
    """
    n = idx.shape[0]
    is_self = idx == np.arange(n)[:, None]
    # Rows without their own index drop the last (farthest) column.
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    # Keep only the first self hit per row.
    first = np.argmax(is_self, axis=1)
    keep = np.ones_like(idx, dtype=bool)
    keep[np.arange(n), first] = False
    return idx[keep].reshape(n, k)


def prefix_nearest(
    prepared: Prepared,
    sizes: np.ndarray,
    *,
    backend: str,
    num_threads: int | None = None,
    device: torch.device | None = None,
    rows: np.ndarray | None = None,
    gemm: GemmOption = "auto",
) -> np.ndarray:
    """For every bank size ``sizes[s]``, the (float32-)nearest of the first ``sizes[s]`` bank rows to each query.

    The cost is one ``k = 1`` search of all queries against ``sizes[-1]`` bank rows, whatever the number of sizes.

    Args:
        prepared: output of :func:`prepare`.
        sizes: strictly increasing bank sizes, each at least 1.
        backend: a resolved backend name.
        num_threads: threads for the search (torch and FAISS); default :func:`default_num_threads`.
        device: device of the torch backend.
        rows: rank only these queries, in **float64** (torch backend, on the CPU): for neighbours so close that
            float32 cannot order them (see :func:`~lightning_repgap._prepare.needs_float64_ranking`).
        gemm: library of the torch backend's CPU tiles.

    Returns:
        int64 ``(len(sizes), m)`` bank row indices (``(len(sizes), len(rows))`` with ``rows``).

    Example:
        >>> prep = prepare(np.array([[5.0], [3.0], [1.0], [0.0]]), np.array([[0.2]]))
        >>> prefix_nearest(prep, np.array([1, 2, 4]), backend="torch").ravel().tolist()
        [0, 1, 3]

    """
    engine = ExactEngine(backend, check_gemm(gemm), device)
    with thread_scope(num_threads, faiss=engine.uses_faiss):
        if rows is not None:
            return rank_float64(prepared, sizes, rows)
        return prefix_search(prepared, sizes, engine.tiles)[0]


def prefix_nearest_and_knn(
    prepared: Prepared,
    sizes: np.ndarray,
    knn_rows: np.ndarray,
    n_neighbors: int,
    *,
    backend: str,
    num_threads: int | None = None,
    device: torch.device | None = None,
    gemm: GemmOption = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`prefix_nearest`, plus the ``n_neighbors`` nearest bank rows of the queries ``knn_rows``.

    On the torch backend both come from one pass over the bank: the neighbour table reads the score tiles the
    prefix search computes anyway, so it adds no GEMM. Other backends run a separate top-``k`` search.

    Args:
        prepared: output of :func:`prepare`.
        sizes: strictly increasing bank sizes; the neighbours are searched among all ``sizes[-1]`` rows.
        knn_rows: distinct query rows that need neighbours.
        n_neighbors: neighbours per query in ``knn_rows`` (at most ``sizes[-1]``).
        backend: a resolved backend name.
        num_threads: threads for the search (torch and FAISS); default :func:`default_num_threads`.
        device: device of the torch backend.
        gemm: library of the torch backend's CPU tiles.

    Returns:
        ``(winners, knn)``: as :func:`prefix_nearest`, and int64 ``(len(knn_rows), n_neighbors)`` bank rows in
        float32 order (recompute their distances with :meth:`Prepared.dist_sq` before using them): float32's top
        ``k``, which a near tie at the ``k``-th can make differ from float64's (:meth:`ExactEngine.search` checks).

    Example:
        >>> prep = prepare(np.array([[5.0], [3.0], [1.0], [0.0]]), np.array([[0.2], [4.4]]))
        >>> winners, knn = prefix_nearest_and_knn(prep, np.array([2, 4]), np.array([1]), 2, backend="torch")
        >>> winners.tolist(), knn.tolist()
        ([[1, 0], [3, 0]], [[0, 1]])

    """
    engine = ExactEngine(backend, check_gemm(gemm), device)
    with thread_scope(num_threads, faiss=engine.uses_faiss):
        return prefix_search(  # type: ignore[return-value]  # knn is an array whenever knn_rows is given
            prepared, sizes, engine.tiles, knn_rows=np.asarray(knn_rows, dtype=np.int64), k=n_neighbors
        )
