"""The exact search shared among DDP ranks: each rank searches the whole bank for its share of the queries.

Under DDP every rank holds the same gathered bank and queries (the Metric's ``cat`` states); without sharding each
rank would run the same full search. :class:`ShardedEngine` wraps an exact
:class:`~lightning_repgap.search.SearchEngine`: rank ``r`` of ``W`` searches the whole bank (every grid size) for the
queries ``r, r + W, r + 2W, ...`` (screened in a few balanced chunks, :func:`balanced_chunk`), then each rank's own
columns of the per-size minima and its own lines of the neighbour table (with their float64 distances) are
all-gathered in one collective and put in place. Each query's results come from one search over the same bank,
centred on the same centre, as in one process, so they are that process's: the exact engine's results are per
query (a query's float64 minima and float32 candidates do not depend on which other queries share its tiles or
chunk). The centre and ``sq_dev_sum``
come from the rank's own preparation of the whole bank, the same as one process's, bit for bit. The concentration's
moments travel in the same collective: each rank's rows of the block (its queries among the subset, read from its
own search, :mod:`~lightning_repgap._concentration_block`), put in query order and combined as one process combines
them (bit for bit on torch's tiles at equal BLAS thread counts; see :mod:`~lightning_repgap._concentration_block`
for numpy's).

Why the queries and not the bank positions: the search's cost per query falls with the bank share less than in
proportion (each grid size starts new tiles, and a half bank has as many sizes as the whole one: the bf16 screen's
half-bank search cost 64 % of the whole, its half-query search 53 %, ``docs/performance.md``), and a query split
needs no merge of candidates by distance, only a concatenation. What stays per rank is the bank's preparation
(``O(n D)``, against the search's ``O(n m D / W)``). The scan for exact copies before the search is shared by bank
rows instead (:meth:`Shard.exact_copies_and_peak`: each rank hashes its block, the hashes are all-gathered), and
the Metric's states reach every rank by point-to-point messages on gloo (:meth:`Shard.gather_states`).

The ranks also agree on how the tiles run: where the exact engine would choose by timing probes (the bf16 screen
or float32 tiles, torch's or numpy's BLAS), every rank takes the same choice, so that no rank is left on a slower
path than the others (every rank waits for the slowest at the merge): the library is rank 0's, and the screen is
chosen from every rank's timed tiles (:mod:`~lightning_repgap._agreed_tiles`), so that one probe timed on a busy
core cannot put every rank on float32 tiles.

Works on any ``torch.distributed`` backend: CPU tensors on gloo, CUDA tensors on NCCL. Approximate engines are never
sharded (their index build is not a per-query loop). Collectives run inside the search, so every rank of the group
must compute: the Metric calls it only when its states were synced (``Metric.compute`` on every rank, as Lightning
and torchmetrics require anyway).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lightning_repgap._agreed_tiles import ballot, decide
from lightning_repgap._concentration_block import ConcentrationSubset, RowMoments
from lightning_repgap._duplicates import _row_hashes, copies_from_hashes
from lightning_repgap._faults import RankWidthError
from lightning_repgap._gemm import GemmOption
from lightning_repgap._screen_tiles import TILE
from lightning_repgap.search import BankSearch, ExactEngine, PrefixMinima, SearchEngine

# gloo's all_gather_into_tensor: present in the torch this is tested on, absent in the oldest releases
# ``torch>=2.2`` admits; 2.4 is a safe floor for it.
_INTO_TENSOR_ON_GLOO = tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 4)

__all__ = ["DistributedGatherError", "Shard", "ShardedEngine", "balanced_chunk", "shard_of"]

# What a state may hold for the one-collective gather (others fall back to torchmetrics' own gather).
_DTYPES = (torch.float32, torch.int64, torch.float64, torch.int32, torch.float16, torch.bfloat16)

log = logging.getLogger(__name__)

_CPU = torch.device("cpu")


@dataclass(frozen=True)
class Shard:
    """One rank's place in a process group: which share of the queries it searches, and where collectives run.

    Attributes:
        rank: this process' rank in ``group``.
        world_size: number of processes in ``group``.
        group: the ``torch.distributed`` process group (``None``: the default group).
        device: device of the tensors handed to collectives (CPU for gloo, the current CUDA device for NCCL).

    """

    rank: int
    world_size: int
    group: Any = None
    device: torch.device = _CPU

    def wrap(self, engine: SearchEngine) -> SearchEngine:
        """``engine`` sharded over the group when it is exact and there is more than one rank; else ``engine``."""
        if self.world_size < 2 or engine.name != "exact":
            return engine
        return ShardedEngine(engine, self)

    def all_gather(self, array: np.ndarray) -> list[np.ndarray]:
        """Every rank's ``array`` (same shape and dtype on all ranks), in rank order."""
        import torch.distributed as dist

        tensor = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        out = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(out, tensor, group=self.group)
        return [t.cpu().numpy() for t in out]

    def exact_copies_and_peak(self, x: np.ndarray) -> tuple[np.ndarray, float, float]:
        """:func:`~lightning_repgap._duplicates.exact_copies_and_peak` of the bank every rank holds, the hashing shared.

        Rank ``r`` hashes the ``r``-th of ``W`` contiguous blocks of rows and takes their largest magnitude; one
        ``all_gather`` brings every block's hashes and magnitude to every rank, which then groups the rows as one
        process does (a row's hash is its own, and rows that share one are compared value by value). Every rank
        must call it with the same ``x`` (the synced bank): it is a collective.

        Returns:
            ``(keep, dup_share, peak)``, the same as one process's, bit for bit.

        """
        n, world = x.shape[0], self.world_size
        block = -(-n // world)
        lo, hi = min(n, self.rank * block), min(n, (self.rank + 1) * block)
        hashes, peak = _row_hashes(x[lo:hi])
        # Hashes as int64 (their bits), padded to the block, then the block's peak as the bits of a float64.
        payload = np.zeros(block + 1, dtype=np.int64)
        payload[: hi - lo] = hashes.view(np.int64)
        payload[-1] = np.float64(peak).view(np.int64)
        parts = self.all_gather(payload)
        every = np.concatenate([part[: max(0, min(n, (r + 1) * block) - r * block)] for r, part in enumerate(parts)])
        keep, share = copies_from_hashes(x, every.view(np.uint64))
        return keep, share, max(float(part[-1:].view(np.float64)[0]) for part in parts)

    def gather_states(self, states: dict[str, Any]) -> dict[str, Any] | None:
        """The ``cat`` sync of list states: every rank's rows of each state, concatenated in rank order.

        What torchmetrics' ``gather_all_tensors`` + ``dim_zero_cat`` give, with fewer copies of the (large) bank:
        one collective for every state's shape, then every rank's rows of each state received straight into its
        output buffer (torchmetrics zero-fills a list of buffers per rank and concatenates them afterwards, after a
        barrier and a shape exchange per state). On gloo the rows travel by point-to-point messages
        (:func:`_exchange_rows`: uneven shares need no padding); elsewhere (NCCL) by one ``all_gather`` per state,
        a shorter share sending a padded copy and the output compacted. A state no rank holds stays ``[]``.

        Args:
            states: ``{name: list of tensors or one tensor}``, each 1-D or 2-D, in the same order on every rank.

        Returns:
            ``{name: tensor or []}``, or ``None`` (on every rank) when some state holds something else (then the
            caller falls back to torchmetrics' gather).

        Raises:
            RankWidthError: on every rank, when a state's rows are of different widths or dtypes on different ranks
                (a ``ValueError``; the callback survives it as an unreadable layer).

        """
        names = list(states)
        local = {name: _joined(states[name]) for name in names}
        # Per state: rows, width (0 for 1-D), dtype code; -1 for a form this gather does not take.
        meta = torch.tensor([_shape_code(local[name]) for name in names], dtype=torch.int64).reshape(-1)
        every = torch.empty(self.world_size * meta.numel(), dtype=torch.int64, device=self.device)
        _all_gather_single(every, meta.to(self.device), self.group)
        shapes = every.cpu().reshape(self.world_size, len(names), 3)
        if (shapes < 0).any():
            return None
        # Every state's form is checked before any is gathered: every rank holds the same table, so every rank raises
        # at the same state, before any row is sent (no bank shipped only to be refused).
        plan: dict[str, tuple[list[int], int, int] | None] = {}
        for i, name in enumerate(names):
            rows = shapes[:, i, 0].tolist()
            held = [r for r in range(self.world_size) if rows[r] > 0]
            forms = {(int(shapes[r, i, 1]), int(shapes[r, i, 2])) for r in held}
            if len(forms) > 1:
                raise RankWidthError(
                    f"`{name}` has different widths or dtypes on different ranks "
                    f"({sorted((r, *map(int, shapes[r, i, 1:])) for r in held)} as (rank, width, dtype code)): "
                    "every rank must update the metric with the same number of features."
                )
            plan[name] = (rows, *forms.pop()) if held else None
        out: dict[str, Any] = {}
        for name, step in plan.items():
            if step is None:
                out[name] = []
                continue
            rows, width, code = step
            out[name] = self._gather_rows(local[name], rows, width, _DTYPES[code], name)
        return out

    def _gather_rows(
        self, tensor: torch.Tensor | None, rows: list[int], width: int, dtype: torch.dtype, name: str = ""
    ) -> Any:
        """Every rank's rows of one state (``rows[r]`` of them on rank ``r``), concatenated in rank order."""
        top = max(rows)
        trail = (width,) if width else ()
        device = tensor.device if tensor is not None else self.device
        send = tensor.to(self.device) if tensor is not None else None
        if self._point_to_point():
            return _exchange_rows(send, rows, trail, dtype, self, name).to(device)
        if send is None or send.shape[0] < top:  # pad to the longest share: all_gather takes one size
            padded = torch.empty((top, *trail), dtype=dtype, device=self.device)
            if send is not None:
                padded[: send.shape[0]] = send
            send = padded
        buffer = torch.empty((self.world_size * top, *trail), dtype=dtype, device=self.device)
        _all_gather_single(buffer, send.contiguous(), self.group)
        if any(r != top for r in rows):
            buffer = torch.cat([buffer[r * top : r * top + n] for r, n in enumerate(rows)])
        return buffer.to(device)

    def _point_to_point(self) -> bool:
        """Whether states travel by point-to-point sends (gloo) instead of ``all_gather_into_tensor`` (NCCL, others).

        On gloo, sends and receives straight into the output buffer cost each rank less than
        ``all_gather_into_tensor`` for a bank share (see ``docs/performance.md``); NCCL keeps its collective.
        """
        import torch.distributed as dist

        return self.device.type == "cpu" and dist.get_backend(self.group) == "gloo"


def _exchange_rows(
    send: torch.Tensor | None, rows: list[int], trail: tuple[int, ...], dtype: torch.dtype, shard: Shard, name: str = ""
) -> torch.Tensor:
    """:meth:`Shard._gather_rows` by point-to-point messages: every rank's rows received straight into place.

    The rank copies its own rows into the output and sends them to every other rank, and receives each other rank's
    rows into their block (all messages posted before any is waited for, so no order of ranks can deadlock). Uneven
    shares need no padding, and a rank without rows sends nothing. A failed message raises
    :class:`DistributedGatherError` naming ``name`` (the state), the peer and what ``wait()`` raised.
    """
    import torch.distributed as dist

    rank, world, group = shard.rank, shard.world_size, shard.group
    starts = np.concatenate([[0], np.cumsum(rows)]).tolist()
    out = torch.empty((starts[-1], *trail), dtype=dtype, device=shard.device)
    mine = out[starts[rank] : starts[rank + 1]]
    if send is not None and rows[rank]:
        mine.copy_(send)
    peers = [r for r in range(world) if r != rank]
    # isend / irecv name peers by their global rank (the group's rank r is not rank r of the default group).
    target = {r: (r if group is None else dist.get_global_rank(group, r)) for r in peers}
    requests = []
    for r in peers:
        if rows[r]:
            requests.append(("from", r, dist.irecv(out[starts[r] : starts[r + 1]], target[r], group=group)))
        if rows[rank]:
            requests.append(("to", r, dist.isend(mine, target[r], group=group)))
    for way, r, request in requests:
        if request is None:  # only for a process outside the group, which gathers nothing
            continue
        try:
            request.wait()
        except Exception as err:
            # The requests still posted are not waited for: this process stops here (see the error's docstring).
            raise DistributedGatherError(name, rank, way, r, err) from err
    return out


class DistributedGatherError(RuntimeError):
    """A message of the gloo state gather failed (a peer gone, a broken connection, the process group's timeout).

    Deliberately not a :class:`~lightning_repgap._faults.MeasurementFaultError`: the callback does not survive it, and
    the fit stops. A failed message means the process group itself is broken or the ranks have diverged, and other
    ranks may already have completed the exchange and moved on to their next collective; a rank that carried on (NaN
    keys, training resumed) would then meet them in a different collective, which hangs until the group's timeout
    or pairs mismatched messages. So this rank stops here, and the others stop at their next message or collective
    with it, when its process exits and closes its connections (or at the group's timeout). See "Distributed
    training" in the callback docs.

    Args:
        state: the Metric state being gathered.
        rank: this process' rank in the group.
        way: ``"from"`` (a receive) or ``"to"`` (a send).
        peer: the other rank of the failed message, in the group.
        cause: the error ``wait()`` raised.

    """

    def __init__(self, state: str, rank: int, way: str, peer: int, cause: BaseException) -> None:
        super().__init__(
            f"DDP state gather: rank {rank}'s message {way} rank {peer} for `{state}` failed ({cause}). The process "
            "group is broken or the ranks have diverged; the measurement cannot be skipped safely on one rank, so "
            "the run stops here (the other ranks stop once this process has exited)."
        )


def _joined(state: Any) -> Any:
    """A list state (or an already joined one) as one tensor; ``None`` when it holds nothing, else the state as is."""
    if isinstance(state, torch.Tensor):
        return state if state.numel() else None
    if isinstance(state, list) and all(isinstance(t, torch.Tensor) for t in state):
        return None if not state else state[0] if len(state) == 1 else torch.cat(state)
    return state  # not a tensor: refused by _shape_code


def _shape_code(tensor: Any) -> list[int]:
    """``[rows, width (0 for 1-D), dtype code]``; ``[0, 0, 0]`` when empty, ``[-1, -1, -1]`` for any other form."""
    if tensor is None:
        return [0, 0, 0]
    if not isinstance(tensor, torch.Tensor) or tensor.ndim not in (1, 2) or tensor.dtype not in _DTYPES:
        return [-1, -1, -1]
    return [tensor.shape[0], tensor.shape[1] if tensor.ndim == 2 else 0, _DTYPES.index(tensor.dtype)]


def _all_gather_single(output: torch.Tensor, tensor: torch.Tensor, group: Any) -> None:
    """``all_gather`` of equal-size ``tensor`` s into one preallocated ``output`` (rank ``r``'s at block ``r``).

    ``all_gather_into_tensor`` writes straight into ``output``; gloo gained it only in recent torch releases, so
    older ones (which ``torch>=2.2`` admits) gather into the ``output``'s per-rank blocks, views of the same buffer.
    """
    import torch.distributed as dist

    if _INTO_TENSOR_ON_GLOO or dist.get_backend(group) != "gloo":
        dist.all_gather_into_tensor(output, tensor, group=group)
    else:
        dist.all_gather(list(output.chunk(dist.get_world_size(group))), tensor, group=group)


def balanced_chunk(count: int, tile: int = TILE) -> int:
    """Queries per chunk of the bf16 screen for ``count`` queries: the nearest whole number of chunks to ``tile``.

    Every chunk pays fixed costs for each bank tile it passes over (the bound, the thresholds, the row maxima of
    narrow tiles), whatever its number of queries. A rank's share of the queries cut at ``tile`` would leave a
    small last chunk that pays them in full: a 5,000-query share is 2,048 + 2,048 + 904 queries, against 2 x 2,500
    here (the single process' 10,000 queries stay 5 chunks: 5 x 2,000 by this rule, 4 x 2,048 + 1,808 as it runs).
    A chunk can reach 1.5 x ``tile`` queries (3,071 for 3,071), and the screen's per-chunk temporaries grow with it
    (a 3,071 x 2,048 float32 tile: 8 MiB more than a full one).

    Example:
        >>> balanced_chunk(5000), balanced_chunk(10000), balanced_chunk(100), balanced_chunk(3000)
        (2500, 2000, 100, 3000)

    """
    chunks = max(1, round(count / tile))
    return max(1, -(-count // chunks))


def shard_of(group: Any = None) -> Shard | None:
    """This process' :class:`Shard` of ``group`` when ``torch.distributed`` runs with several ranks, else ``None``.

    Example:
        >>> shard_of() is None  # no process group in a plain Python session
        True

    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return None
    world = dist.get_world_size(group)
    if world < 2:
        return None
    device = torch.device("cpu")
    if dist.get_backend(group) == "nccl":  # NCCL moves CUDA tensors only
        device = torch.device("cuda", torch.cuda.current_device())
    return Shard(rank=dist.get_rank(group), world_size=world, group=group, device=device)


@dataclass(frozen=True)
class ShardedEngine:
    """An exact engine whose search is shared among the ranks of a :class:`Shard` (see the module docstring).

    Attributes:
        inner: the exact engine each rank runs on its share of the queries.
        shard: this rank's place in the group.

    """

    inner: SearchEngine
    shard: Shard

    @property
    def name(self) -> str:
        """The inner engine's name (``"exact"``)."""
        return self.inner.name

    @property
    def label(self) -> str:
        """The inner engine's label (the backend): a sharded search is the same search."""
        return self.inner.label

    @property
    def uses_faiss(self) -> bool:
        """Whether the inner engine calls FAISS."""
        return self.inner.uses_faiss

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
        """See :meth:`lightning_repgap.search.SearchEngine.search`; the result is the same on every rank."""
        rank, world = self.shard.rank, self.shard.world_size
        m = queries.shape[0]
        # Every W-th query, so that each rank gets its share of every kind of query: the validation and the training
        # queries (searched together, one after the other) and the neighbour-table queries (drawn among the first).
        count = len(range(rank, m, world))
        # A rank without queries (fewer queries than ranks) searches one and drops it: it still takes part in the
        # collectives, and its centre and sq_dev_sum are everyone's.
        mine = queries[rank::world] if count else queries[:1]
        engine = self._agreed(queries.shape[1], int(sizes[-1]) * mine.shape[0] * queries.shape[1], mine.shape[0])
        local_knn = None
        own = np.zeros(0, dtype=bool)
        if knn_queries is not None:
            knn_queries = np.asarray(knn_queries, dtype=np.int64)
            own = knn_queries % world == rank
            local_knn = knn_queries[own] // world
        with_knn = local_knn is not None and local_knn.size > 0 and n_neighbors > 0
        # The concentration's rows this rank searches (its queries among the subset's); merged below in query order.
        conc_own = np.zeros(0, dtype=bool) if concentration is None else concentration.queries % world == rank
        local_conc = None
        if concentration is not None and count and conc_own.any():
            local_conc = ConcentrationSubset(concentration.queries[conc_own] // world, concentration.positions)
        local = engine.search(
            reference,
            mine,
            order,
            sizes,
            knn_queries=local_knn if with_knn else None,
            n_neighbors=n_neighbors if with_knn else 0,
            concentration=local_conc,
        )
        # One collective for everything: each rank's own columns of the minima (its queries) and its own lines of the
        # neighbour table, with their float64 distances when the engine scored them (the same bits as the curve
        # builder's own scoring, see BankSearch.knn_dist_sq: no rank scores the other ranks' lines again).
        n_sizes, width = len(sizes), -(-m // world)
        has_table = knn_queries is not None and n_neighbors > 0
        lines = knn_queries.size if has_table and knn_queries is not None else 0
        conc_rows = 0 if concentration is None else concentration.queries.size
        parts = self.shard.all_gather(
            np.concatenate([
                _payload(local, count, n_sizes, width, lines, n_neighbors, own, with_knn),
                _moment_bits(local.concentration if local_conc is not None else None, conc_own, conc_rows),
            ])
        )
        sums, m2 = np.empty(conc_rows), np.empty(conc_rows)
        conc_owner = None if concentration is None else concentration.queries % world
        dist_sq = np.empty((n_sizes, m))
        found_rows = np.empty((n_sizes, m), dtype=np.int64)
        table = np.empty((lines, n_neighbors), dtype=np.int64)
        table_dist = np.empty((lines, n_neighbors))
        owner = None if knn_queries is None else knn_queries % world
        scored = True
        for r, whole in enumerate(parts):
            part, got = whole[: whole.size - 2 * conc_rows], whole[whole.size - 2 * conc_rows :].view(np.float64)
            if conc_owner is not None:
                theirs = conc_owner == r
                sums[theirs], m2[theirs] = got[:conc_rows][theirs], got[conc_rows:][theirs]
            d, rows, t, td, flag = _unpack(part, n_sizes, width, lines, n_neighbors)
            taken = len(range(r, m, world))
            dist_sq[:, r::world] = d[:, :taken]
            found_rows[:, r::world] = rows[:, :taken]
            if lines:
                assert owner is not None
                mine_r = owner == r
                table[mine_r], table_dist[mine_r] = t[mine_r], td[mine_r]
                scored &= flag
        log.debug("sharded search rank %d/%d: %d of %d queries", rank, world, count, m)
        return BankSearch(
            minima=PrefixMinima(dist_sq, found_rows),
            centre=local.centre,
            sq_dev_sum=local.sq_dev_sum,
            knn_rows=table if has_table else None,
            knn_dist_sq=table_dist if has_table and scored else None,
            concentration=None if concentration is None else RowMoments(sums, m2, concentration.positions.size),
        )

    def _agreed(self, dim: int, work: int, count: int) -> SearchEngine:
        """The inner engine with its timed choices (screen or float32 tiles, BLAS library) pinned to the agreed ones.

        The library is rank 0's; the screen is chosen from every rank's timed tiles
        (:mod:`~lightning_repgap._agreed_tiles`), in one ``all_gather``, so every rank takes the same choice.

        ``work`` is this rank's search in multiply-adds (``n m D``), as the engine itself would weigh it; ``count``
        its number of queries, cut into balanced chunks for the screen (:func:`balanced_chunk`).
        """
        inner = self.inner
        if not isinstance(inner, ExactEngine) or inner.backend != "torch":
            return inner
        # The rank's bank copy in ordinary pages: numpy's huge-page request for it, right after the gathered bank's
        # allocation, made the kernel compact memory in most measurements on a fragmented host (docs/performance.md).
        inner = dataclasses.replace(inner, query_chunk=inner.query_chunk or balanced_chunk(count), small_pages=True)
        device = inner.device or _CPU
        # Each rank's library and timed tile runs, gathered in one collective; the same choice from them everywhere.
        mine = ballot(inner.precision, dim, work, device, inner.gemm)
        numpy_tiles, screen = decide(self.shard.all_gather(mine))
        gemm: GemmOption = "numpy" if numpy_tiles else "torch"
        return dataclasses.replace(inner, gemm=gemm, precision="bf16-screen" if screen else "fp32")


def _moment_bits(moments: RowMoments | None, own: np.ndarray, rows: int) -> np.ndarray:
    """A rank's rows of the concentration's moments, as int64 bits: ``[sums (rows,), m2 (rows,)]``, its own filled.

    Every rank's own rows are its queries' (every ``W``-th), so the rows merge into the one-process order exactly.
    """
    out = np.zeros((2, rows))
    if moments is not None:
        out[0, own], out[1, own] = moments.sums, moments.m2
    return out.ravel().view(np.int64)


def _payload(
    local: BankSearch, count: int, n_sizes: int, width: int, lines: int, k: int, own: np.ndarray, with_knn: bool
) -> np.ndarray:
    """What a rank sends (int64, the same length on every rank): its minima, its table lines, their distances.

    ``[dist bits (n_sizes, width), rows (n_sizes, width), table (lines, k), table distance bits (lines, k), scored]``:
    the rank's ``count <= width`` columns of the minima (padding after them), the neighbour table with this rank's
    lines filled, and whether its engine scored the table's float64 distances (``1``, or ``0``: the curve builder
    scores them). float64 values travel as their bits, unchanged.
    """
    dist = np.full((n_sizes, width), np.inf)
    rows = np.full((n_sizes, width), -1, dtype=np.int64)
    if count:
        dist[:, :count] = local.minima.dist_sq
        rows[:, :count] = local.minima.rows
    table = np.full((lines, k), -1, dtype=np.int64)
    table_dist = np.full((lines, k), np.inf)
    scored = True
    if lines and with_knn:
        assert local.knn_rows is not None
        table[own] = local.knn_rows
        if local.knn_dist_sq is None:
            scored = False
        else:
            table_dist[own] = local.knn_dist_sq
    pieces = (dist.view(np.int64), rows, table, table_dist.view(np.int64), np.array([int(scored)]))
    return np.concatenate([p.ravel() for p in pieces])


def _unpack(
    part: np.ndarray, n_sizes: int, width: int, lines: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """One rank's :func:`_payload`, split again: minima distances and rows, table, table distances, scored."""
    sizes = (n_sizes * width, n_sizes * width, lines * k, lines * k)
    cuts = np.cumsum(sizes)
    dist, rows, table, table_dist = (p for p in np.split(part[: cuts[-1]], cuts[:-1]))
    return (
        dist.view(np.float64).reshape(n_sizes, width),
        rows.reshape(n_sizes, width),
        table.reshape(lines, k),
        table_dist.view(np.float64).reshape(lines, k),
        bool(part[-1]),
    )
