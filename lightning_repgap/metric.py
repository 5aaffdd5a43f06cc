"""``RepresentationGap``: the torchmetrics face of :mod:`lightning_repgap.functional`.

The metric only accumulates representations (list states, gathered with ``cat`` across processes) and calls
:func:`~lightning_repgap.functional._gap_update` / :func:`~lightning_repgap.functional._gap_compute`; it holds no
maths of its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat
from torchmetrics.utilities.distributed import gather_all_tensors

from lightning_repgap._checks import _check_positive_int, _to_numpy
from lightning_repgap._shard import shard_of
from lightning_repgap._threads import measurement_threads
from lightning_repgap.config import GapConfig, field_names
from lightning_repgap.functional import GapInputs, GapResult, _gap_compute, _gap_update
from lightning_repgap.gap import GapCurve

__all__ = ["RepresentationGap"]

_ROLES = ("reference", "queries", "train_queries")
_SETTINGS = frozenset(field_names())


class RepresentationGap(Metric):
    r"""Representation gap, gap dimension and cross-checks between a reference bank and held-out queries.

    .. math::

        G(n) = \frac{1}{m} \sum_j \min_{i \le n} \lVert q_j - r_i \rVert^2 \sim C\, n^{-2/d}

    As input to ``update`` (keyword arguments, any of them may be omitted in a given call):

    - ``reference`` (:class:`~torch.Tensor`): ``(b, D)`` bank representations (training data, model samples)
    - ``queries`` (:class:`~torch.Tensor`): ``(b, D)`` held-out representations
    - ``train_queries`` (:class:`~torch.Tensor`): ``(b, D)`` training representations not in the bank
    - ``reference_labels`` / ``query_labels`` (:class:`~torch.Tensor`): ``(b,)`` labels, for ``knn_acc``
    - ``reference_index`` / ``query_index`` / ``train_index`` (:class:`~torch.Tensor`): ``(b,)`` integer probe
      indices. When given, ``compute`` sorts each set by index and drops repeated indices, so the result does
      not depend on the number of processes or on the padding ``DistributedSampler`` adds.

    As output of ``compute``, a ``dict`` of float32 scalar tensors: ``gap``, ``gap_norm``, ``dim``, ``dim_low``,
    ``dim_high``, ``law_r2``, ``dim_twonn``, ``dim_mle``, ``dup_frac``, ``bank_dup_frac``, ``dim_method``, plus
    ``gap_ratio`` when training queries were given, ``knn_acc`` when labels were, and ``recall`` / ``gap_rel_error``
    with an approximate ``index``. Log it with ``self.log_dict(metric.compute())`` and call ``reset()`` once per
    evaluation: the search runs in ``compute``, so do not call the metric per batch through ``forward``.

    Under DDP (states synced in ``compute``) each rank searches the bank for its share of the queries and the
    results are gathered across ranks (:mod:`lightning_repgap._shard`): every rank returns the same numbers, equal
    to one process's.

    Memory: the bank is kept until ``compute`` (``max_reference * D`` floats per process; pass
    ``compute_on_cpu=True`` to hold it off the accelerator). The states are not saved in checkpoints.

    Args:
        max_reference: cap on the bank size; extra points (by index order) are dropped with a warning.
        max_queries: cap on the number of queries (and of training queries).
        config: the analysis settings (:class:`~lightning_repgap.config.GapConfig`: grid, fit, bootstrap,
            calibration, backend, index); default ``GapConfig()``. An approximate ``index`` adds ``recall`` and
            ``gap_rel_error`` to the output.
        num_threads: search threads per process (a runtime setting, see :mod:`lightning_repgap.config`).
        kwargs: :class:`~lightning_repgap.config.GapConfig` fields as keywords (``n_bootstrap=50``; one that
            contradicts ``config`` is an error), and the standard :class:`~torchmetrics.Metric` arguments
            (``compute_on_cpu``, ``sync_on_compute``, ``process_group``, ...).

    Example:
        >>> import torch
        >>> from pprint import pprint
        >>> _ = torch.manual_seed(0)
        >>> metric = RepresentationGap()
        >>> for _ in range(4):
        ...     metric.update(reference=torch.rand(2048, 2), queries=torch.rand(256, 2))
        >>> out = metric.compute()
        >>> round(out["dim"].item())
        2
        >>> pprint(sorted(out))
        ['bank_dup_frac',
         'dim',
         'dim_high',
         'dim_low',
         'dim_method',
         'dim_mle',
         'dim_twonn',
         'dup_frac',
         'gap',
         'gap_norm',
         'law_r2']

    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    plot_lower_bound = 0.0

    reference: list[Tensor]
    queries: list[Tensor]
    train_queries: list[Tensor]
    reference_index: list[Tensor]
    queries_index: list[Tensor]
    train_queries_index: list[Tensor]
    reference_labels: list[Tensor]
    queries_labels: list[Tensor]

    def __init__(
        self,
        max_reference: int = 65536,
        max_queries: int = 16384,
        *,
        config: GapConfig | None = None,
        num_threads: int | None = None,
        **kwargs: Any,
    ) -> None:
        settings = {name: kwargs.pop(name) for name in field_names() if name in kwargs}
        super().__init__(**kwargs)
        self.max_reference = _check_positive_int(max_reference, "max_reference", minimum=2)
        self.max_queries = _check_positive_int(max_queries, "max_queries")
        #: The analysis settings of every ``compute``.
        self.config: GapConfig = GapConfig.resolve(config, settings)
        self.num_threads = None if num_threads is None else _check_positive_int(num_threads, "num_threads")
        for role in _ROLES:
            self.add_state(role, default=[], dist_reduce_fx="cat")
            self.add_state(f"{role}_index", default=[], dist_reduce_fx="cat")
        self.add_state("reference_labels", default=[], dist_reduce_fx="cat")
        self.add_state("queries_labels", default=[], dist_reduce_fx="cat")
        #: The :class:`~lightning_repgap.functional.GapResult` of the last ``compute`` (curve and fit, for plots).
        self.last_result: GapResult | None = None
        #: The gathered, index-sorted inputs of the last ``compute`` (what snapshots store); not a metric state.
        self.last_inputs: GapInputs | None = None

    def __getattr__(self, name: str) -> Any:
        # Settings were attributes (``metric.n_bootstrap``) before they moved into ``config``.
        if name in _SETTINGS and "config" in self.__dict__:
            warnings.warn(
                f"`RepresentationGap.{name}` is deprecated; read `metric.config.{name}`.",
                DeprecationWarning,
                stacklevel=2,
            )
            return getattr(self.__dict__["config"], name)
        return super().__getattr__(name)

    def update(
        self,
        reference: Tensor | None = None,
        queries: Tensor | None = None,
        train_queries: Tensor | None = None,
        reference_labels: Tensor | None = None,
        query_labels: Tensor | None = None,
        reference_index: Tensor | None = None,
        query_index: Tensor | None = None,
        train_index: Tensor | None = None,
    ) -> None:
        """Append a batch of representations (float32 on the metric's device); cheap, no search here."""
        self._append("reference", reference, reference_index, reference_labels, "reference_labels")
        self._append("queries", queries, query_index, query_labels, "query_labels")
        self._append("train_queries", train_queries, train_index, None, "")

    def _append(
        self, role: str, values: Tensor | None, index: Tensor | None, labels: Tensor | None, label_arg: str
    ) -> None:
        if values is None:
            if index is not None or labels is not None:
                raise ValueError(f"Indices or labels were given for `{role}` but `{role}` itself was not.")
            return
        if not isinstance(values, Tensor):
            raise TypeError(f"`{role}` must be a torch.Tensor, got {type(values).__name__}.")
        if not values.is_floating_point():
            raise TypeError(f"`{role}` must be a floating point tensor, got dtype {values.dtype}.")
        if values.ndim != 2:
            raise ValueError(f"`{role}` must be 2-D (batch, dim), got shape {tuple(values.shape)}.")
        b = values.shape[0]
        state = getattr(self, role)
        if _non_empty_list(state) and values.shape[1] != state[0].shape[1]:  # caught here, not as a raw cat error
            raise ValueError(
                f"`{role}` batch has shape {tuple(values.shape)} but an earlier `{role}` batch had shape "
                f"{tuple(state[0].shape)}: every batch of a set needs the same number of features."
            )
        # Half precision under AMP would corrupt squared distances: store float32.
        getattr(self, role).append(values.detach().to(device=self.device, dtype=torch.float32))
        if index is None:
            idx = torch.full((b,), -1, dtype=torch.int64, device=self.device)
        else:
            idx = torch.as_tensor(index, device=self.device).reshape(-1).to(torch.int64)
            if idx.numel() != b:
                raise ValueError(f"`{role}` has {b} rows but its index has {idx.numel()} entries.")
            if (idx < 0).any():
                raise ValueError(f"Indices of `{role}` must be non-negative, got min {int(idx.min())}.")
        getattr(self, f"{role}_index").append(idx)
        if label_arg:
            self._append_labels(role, labels, label_arg, b)

    def _append_labels(self, role: str, labels: Tensor | None, label_arg: str, b: int) -> None:
        state = "reference_labels" if role == "reference" else "queries_labels"
        if labels is not None:
            lab = torch.as_tensor(labels, device=self.device).reshape(-1)
            if lab.numel() != b:
                raise ValueError(f"`{label_arg}` has {lab.numel()} entries for {b} rows of `{role}`.")
            getattr(self, state).append(lab.to(torch.int64))
        elif getattr(self, state):
            raise ValueError(f"`{label_arg}` was given in an earlier update but not in this one.")

    def _gathered(self, role: str, cap: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Concatenate a set, sort it by probe index and drop repeats (DDP padding), then apply the cap."""
        values = getattr(self, role)
        if _empty(values):
            return None, None
        x = _to_numpy(_cat(values), role)
        idx = _to_numpy(_cat(getattr(self, f"{role}_index")), f"{role}_index")
        labels = None
        label_state = {"reference": "reference_labels", "queries": "queries_labels"}.get(role)
        if label_state is not None and not _empty(getattr(self, label_state)):
            labels = _to_numpy(_cat(getattr(self, label_state)), label_state)
            if labels.shape[0] != x.shape[0]:
                raise ValueError(f"Labels were given for only some updates of `{role}`; give them always or never.")
        has_index = idx >= 0
        if has_index.all():
            if not _strictly_increasing(idx):  # else already sorted (contiguous rank shares): no reordered copy
                keep = np.unique(idx, return_index=True)[1]  # sorted by index, first occurrence of each
                x, labels = x[keep], None if labels is None else labels[keep]
        elif has_index.any():
            raise ValueError(f"Some updates of `{role}` carried probe indices and others did not; be consistent.")
        if x.shape[0] > cap:
            warnings.warn(f"`{role}` holds {x.shape[0]} points; only the first {cap} are used.", stacklevel=3)
            x, labels = x[:cap], None if labels is None else labels[:cap]
        return x, labels

    def _sync_dist(self, dist_sync_fn: Any = gather_all_tensors, process_group: Any | None = None) -> None:
        """The ``cat`` sync of the states, each received straight into its output buffer.

        The states hold the bank (``max_reference * D`` floats): torchmetrics' default gather zero-fills a buffer per
        rank and state, then concatenates them; :meth:`~lightning_repgap._shard.Shard.gather_states` receives each
        state once, in place. Same result (every rank's rows in rank order); a custom ``dist_sync_fn`` keeps
        torchmetrics' path.
        """
        shard = shard_of(process_group or self.process_group)
        # Only ``cat`` states take the one-collective gather (a subclass's sum or mean state keeps torchmetrics').
        all_cat = all(fn is dim_zero_cat for fn in self._reductions.values())
        if dist_sync_fn is gather_all_tensors and shard is not None and all_cat:
            gathered = shard.gather_states({name: getattr(self, name) for name in self._reductions})
            if gathered is not None:
                for name, value in gathered.items():
                    setattr(self, name, value)
                return
        super()._sync_dist(dist_sync_fn, process_group=process_group)

    def _copy_state_dict(self) -> dict[str, Any]:
        """The states as they are (lists copied, tensors not): what ``sync`` restores after ``compute``.

        torchmetrics clones every tensor here, i.e. the whole local bank at each synced ``compute``. The states are
        only ever appended to or replaced, never changed in place, so the tensors themselves can be kept.
        """
        return {
            name: list(v) if isinstance(v, list) else v for name, v in ((n, getattr(self, n)) for n in self._defaults)
        }

    def reset(self) -> None:
        """Clear the states; first restore the local ones if a ``compute`` under DDP raised while they were synced.

        torchmetrics restores the local states after a synced ``compute`` only when it returns, so a measurement fault
        (e.g. too few queries) left the gathered tensors in the list states and ``reset`` failed on them.
        """
        if self._is_synced and self._cache is not None:
            self.unsync()
        super().reset()

    def compute(self) -> dict[str, Tensor]:
        """Run the blocked search and the fits on everything accumulated since the last ``reset``."""
        reference, reference_labels = self._gathered("reference", self.max_reference)
        queries, query_labels = self._gathered("queries", self.max_queries)
        train_queries, _ = self._gathered("train_queries", self.max_queries)
        if reference is None or queries is None:
            raise RuntimeError(
                "RepresentationGap.compute() needs both `reference` and `queries`; "
                f"got {'no reference' if reference is None else 'no queries'}. Call update() first."
            )
        if (reference_labels is None) != (query_labels is None):  # as the functional: never a silent drop of knn_acc
            given, missing = ("reference", "query") if query_labels is None else ("query", "reference")
            raise ValueError(
                f"`{given}_labels` were given but no `{missing}_labels`: give both (for `knn_acc`) or neither."
            )
        inputs = _gap_update(reference, queries, train_queries, reference_labels, query_labels)
        self.last_inputs = inputs
        # Synced states are the same on every rank: each rank searches for its share of the queries and hashes its
        # block of the bank for the exact copies (same numbers).
        shard = shard_of(self.process_group) if self._is_synced else None
        with measurement_threads(self.num_threads):
            self.last_result = _gap_compute(
                inputs,
                self.config,
                num_threads=self.num_threads,
                wrap_engine=None if shard is None else shard.wrap,
                find_copies=None if shard is None else shard.exact_copies_and_peak,
            )
        return {k: torch.tensor(v, dtype=torch.float32, device=self.device) for k, v in self.last_result.values.items()}

    def plot(self, val: Any = None, ax: Any = None) -> Any:
        """Log-log gap curve of the last ``compute`` (or of a given :class:`~lightning_repgap.gap.GapCurve`).

        As for every torchmetrics ``Metric``, ``val`` may also be a ``compute()`` result or a list of them: their
        scalar values are then drawn by torchmetrics' ``plot_single_or_multi_val`` (a list: one curve per key).

        Returns:
            ``(fig, ax)`` from matplotlib.

        """
        from lightning_repgap._imports import pyplot
        from lightning_repgap.plot import plot_gap_curve

        if isinstance(val, Mapping) or (
            isinstance(val, Sequence) and len(val) > 0 and all(isinstance(v, Mapping) for v in val)
        ):
            pyplot()  # the package's message when matplotlib is missing
            values: dict[str, Tensor] | list[dict[str, Tensor]] = dict(val) if isinstance(val, Mapping) else list(val)
            return self._plot(values, ax)
        if val is None:
            if self.last_result is None:
                raise RuntimeError("Nothing to plot: call compute() first or pass a GapCurve as `val`.")
            return plot_gap_curve(self.last_result.curve, fit=self.last_result.fit, ax=ax)
        if not isinstance(val, GapCurve):
            raise TypeError(
                "RepresentationGap.plot() takes nothing (the last compute's curve), a GapCurve, a compute() result or "
                f"a list of them; got {type(val).__name__}."
            )
        return plot_gap_curve(val, ax=ax)


def _cat(state: Any) -> Tensor:
    """A list state as one tensor, copied only when it holds several (a synced state already is one tensor)."""
    if isinstance(state, Tensor):
        return state
    return state[0] if len(state) == 1 else dim_zero_cat(state)


def _strictly_increasing(idx: np.ndarray) -> bool:
    """Whether ``idx`` is sorted without repeats: the index sort would return the rows as they are (no copy)."""
    return bool(np.all(idx[1:] > idx[:-1]))


def _empty(state: Any) -> bool:
    """Whether a list state holds nothing: ``[]``, or after a DDP sync the empty tensor torchmetrics puts there."""
    return (isinstance(state, list) and not state) or (isinstance(state, Tensor) and state.numel() == 0)


def _non_empty_list(state: Any) -> bool:
    return isinstance(state, list) and bool(state)
