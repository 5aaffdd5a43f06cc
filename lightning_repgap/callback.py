"""``RepresentationGapCallback``: measure the representation gap of named layers during ``Trainer.fit``.

At the end of each validation epoch (every ``every_n_epochs``, never during sanity checking or ``fast_dev_run``)
the callback embeds fixed probes of training and validation samples through the watched layers, computes the
:class:`~lightning_repgap.metric.RepresentationGap` metric and logs it with ``pl_module.log_dict``, so that
:class:`~lightning_repgap.stopping.RepresentationGapEarlyStopping` and ``ModelCheckpoint(monitor=...)`` see the values
in the same epoch.

Logged keys (``prefix`` defaults to ``repgap``; with several layers each key is ``repgap/<layer>/<key>``):
``gap``, ``gap_norm``, ``dim``, ``dim_low``, ``dim_high``, ``law_r2``, ``dim_twonn``, ``dim_mle``, ``dup_frac``,
``bank_dup_frac``, ``dim_method`` (which estimator decided ``dim``: 0 gap law, 1 local, 2 blend, 3 gap law above a
noise floor, 4 far-scale GRIDE), ``valid`` (1 when every key is defined, 0 when a measurement fault left some NaN; see
:mod:`lightning_repgap._faults`), ``gap_ratio`` (when ``train_query_probe > 0``), ``knn_acc`` (when batches carry
integer labels), and ``recall`` and ``gap_rel_error`` (with an approximate ``index``: the search's accuracy
measured on an exact sample of the queries).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, get_args

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.seed import isolate_rng
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset

from lightning_repgap import _callback_faults as _cf
from lightning_repgap import _callback_outputs as _co
from lightning_repgap import _val_capture as _vc
from lightning_repgap._callback_args import (
    _N_DEPRECATED_ARGS,
    _analysis_config,
    _check_layers,
    _deprecated_args,
    _misconfigured,
)
from lightning_repgap._checks import _check_choice, _check_positive_int
from lightning_repgap._faults import (
    SURVIVABLE,
    FaultPolicy,
    FigureIOError,
    MeasurementFaultError,
    SnapshotIOError,
    io_fault,
    strict_mode,
)
from lightning_repgap._probe_share import loader_batch_size, probe_loader, rank_share
from lightning_repgap.capture import (
    POOLINGS,
    Pooling,
    capture,
    embed_batches,
    embed_inputs,
    lightning_transfer,
    resolve_layers,
)
from lightning_repgap.config import GapConfig, field_names
from lightning_repgap.metric import RepresentationGap

__all__ = ["RepresentationGapCallback", "SnapshotDtype", "SnapshotOn"]

log = logging.getLogger(__name__)

#: When snapshots are written: at each checkpoint save, or after every measurement.
SnapshotOn = Literal["checkpoint", "evaluation"]
#: Storage dtype of the floating arrays of a snapshot.
SnapshotDtype = Literal["float16", "float32", "float64"]
_CONFIG_FIELDS = frozenset(field_names())
_T = TypeVar("_T")
_ROLES = _co.ROLES
# Source name of the raw inputs, measured when no layer is watched (``layer=None`` with a ``reference_fn``).
_INPUT = "input"


class RepresentationGapCallback(Callback):
    r"""Log the representation gap, the gap dimension and their cross-checks for one or more layers.

    Probes are fixed index subsets drawn once from ``seed``: ``train_probe`` training samples form the bank,
    ``val_probe`` validation samples are the queries, and ``train_query_probe`` further training samples (disjoint
    from the bank) give ``gap_ratio``. They are saved in the checkpoint, so a resumed run measures the same points.
    Under DDP every rank embeds its share, the metric gathers them, and all ranks log rank zero's numbers.

    Args:
        layer: name(s) of submodules as in ``model.named_modules()`` (wrapper prefixes such as ``_orig_mod.`` or
            ``module.`` are ignored).
        train_probe: bank size (training samples); clamped with a warning to what the dataset holds.
        val_probe: number of validation samples used as queries; the gap-law fit needs at least
            :data:`~lightning_repgap.functional.MIN_QUERIES` (8): with fewer, the fit's keys are logged as NaN with a
            :class:`~lightning_repgap._faults.TooFewQueriesWarning`.
        train_query_probe: extra training samples for ``gap_ratio``; ``None`` means ``val_probe``, ``0`` disables.
        every_n_epochs: measure after every ``n``-th validation epoch (``(epoch + 1) % n == 0``).
        seed: the run's seed: it draws the probes and, replacing ``config.seed``, orders the bank and seeds the
            bootstrap.
        pooling: ``"flatten"``, ``"mean"``, ``"tokens_mean"``, ``"cls"`` or a callable; see
            :func:`lightning_repgap.capture.pool`.
        batch_size: batch size of the probe passes; default: the training loader's, else 256.
        snapshot_dir: directory for on-disk snapshots of the representations (``None``: no snapshots); a leading
            ``~`` is expanded to the user's home, as for ``ModelCheckpoint``'s ``dirpath``.
        snapshot_dtype: storage dtype of snapshots: ``"float16"``, ``"float32"`` or ``"float64"``.
        snapshot_on: ``"checkpoint"`` writes the latest measurement when a checkpoint is saved;
            ``"evaluation"`` writes after every measurement.
        config: the analysis settings (:class:`~lightning_repgap.config.GapConfig`: grid, fit, bootstrap,
            calibration, backend, index); default ``GapConfig()``. Stored in snapshot manifests, so
            ``repgap analyze`` replays the same measurement. An approximate ``index`` also logs
            ``<prefix>/recall`` and ``<prefix>/gap_rel_error``. The bank needs ``train_probe >=
            config.min_bank_size`` points (``4 * fit_min_size``, more with a coarser grid).
        num_threads: search threads per process (a runtime setting, see :mod:`lightning_repgap.config`).
        log_figures: log the log-log gap curve as a figure to every logger that takes images (TensorBoard, Weights &
            Biases, MLflow; CSV runs get PNG files in ``figures/`` next to ``metrics.csv``), at the step of the
            epoch's scalars (needs matplotlib).
        prefix: first component of the logged keys.
        forward_fn: ``forward_fn(pl_module, batch)`` for probe passes; default calls ``pl_module(inputs)`` with
            the inputs taken from the batch by :func:`lightning_repgap.capture.split_batch`.
        reference_fn: ``reference_fn(pl_module) -> Tensor`` of shape ``(n, ...)`` giving the bank instead of the
            training probe, e.g. samples drawn from a generative model (DESIGN §6). It runs without gradients
            and with every module mode restored afterwards. With ``layer=None`` the queries are the raw inputs of
            the validation probe (flattened), so generator samples and data are compared in data space; with one
            ``layer`` they are that layer's representations. ``gap_ratio`` then compares held-out data with
            training data (``train_query_probe``) as seen from the samples: much above 1 means the model
            reproduces its training set (memorisation). Under DDP every rank calls it and the bank is the
            concatenation of all ranks' samples. It is also called once when training starts (the global RNG
            restored afterwards), so that a bank that is not a tensor, too small, or of another width than the
            queries is a configuration error then (its type and shape are read, nothing is copied); one that returns
            ``None`` then is not ready yet (a bank filled during training) and is checked at the first measurement.
        strict: re-raise measurement faults instead of surviving them. By default (``None``: the environment
            variable ``REPGAP_STRICT=1`` turns it on) a degenerate or non-finite representation, too few distinct
            points or a failed snapshot write never aborts ``fit``: the undefined keys are logged as NaN,
            ``<prefix>/valid`` as 0, and one warning per cause and layer names the fix (see
            :mod:`lightning_repgap._faults`). Configuration errors are raised when training starts, never later.
        capture_validation: take the validation probe's representations from the validation loop's own forward
            passes where its loader's order says which batch row is which probe sample (sequential or unshuffled
            distributed sampler), instead of a second pass; anything uncertain falls back to the probe pass, see
            :mod:`lightning_repgap._val_capture`.
        kwargs: deprecated analysis arguments ``backend``, ``index``, ``min_size``, ``fit_min_size``,
            ``n_bootstrap``, ``calibrate``: they still work, with a ``DeprecationWarning``; pass
            ``config=GapConfig(...)`` instead. They will be removed in 0.3.

    Example:
        >>> cb = RepresentationGapCallback(layer="encoder", train_probe=2048, val_probe=512)
        >>> cb.state_key
        "RepresentationGapCallback{'layer': ['encoder'], 'train_probe': 2048, 'val_probe': 512}"
        >>> RepresentationGapCallback(layer="encoder", config=GapConfig(n_bootstrap=50)).config.n_bootstrap
        50

    """

    def __init__(
        self,
        layer: str | Sequence[str] | None = "backbone",
        train_probe: int = 4096,
        val_probe: int = 1024,
        train_query_probe: int | None = None,
        every_n_epochs: int = 1,
        seed: int = 0,
        pooling: str | Callable[[Tensor], Tensor] = "flatten",
        batch_size: int | None = None,
        snapshot_dir: str | None = None,
        snapshot_dtype: SnapshotDtype = "float16",
        snapshot_on: SnapshotOn = "checkpoint",
        config: GapConfig | None = None,
        num_threads: int | None = None,
        log_figures: bool = True,
        prefix: str = "repgap",
        forward_fn: Callable[[torch.nn.Module, Any], Any] | None = None,
        reference_fn: Callable[[LightningModule], Tensor] | None = None,
        strict: bool | None = None,
        capture_validation: bool = True,
        **kwargs: Any,
    ) -> None:
        self.reference_fn = reference_fn
        self.layer = _check_layers(layer, reference_fn)
        self.seed = int(seed)
        legacy = _deprecated_args(**kwargs)
        if len(kwargs) < _N_DEPRECATED_ARGS:  # not LightningCLI's fill-in: an explicit None is a bad value
            legacy = dict(kwargs)
        #: The analysis settings (its ``seed`` is the callback's).
        self.config: GapConfig = _misconfigured(_analysis_config, config, self.seed, legacy)
        self.train_probe = _misconfigured(_check_positive_int, train_probe, "train_probe", minimum=2)
        self.val_probe = _misconfigured(_check_positive_int, val_probe, "val_probe")
        self.train_query_probe = (
            self.val_probe
            if train_query_probe is None
            else _misconfigured(_check_positive_int, train_query_probe, "train_query_probe", minimum=0)
        )
        self.every_n_epochs = _misconfigured(_check_positive_int, every_n_epochs, "every_n_epochs")
        self.pooling: Pooling = (
            pooling if callable(pooling) else _misconfigured(_check_choice, pooling, "pooling", POOLINGS)
        )
        self.batch_size = None if batch_size is None else _misconfigured(_check_positive_int, batch_size, "batch_size")
        # As ModelCheckpoint's dirpath: a leading ``~`` is the user's home, not a folder named ``~`` in the cwd.
        self.snapshot_dir = None if snapshot_dir is None else os.path.expanduser(snapshot_dir)
        self.snapshot_dtype: SnapshotDtype = _misconfigured(
            _check_choice, snapshot_dtype, "snapshot_dtype", get_args(SnapshotDtype)
        )
        self.snapshot_on: SnapshotOn = _misconfigured(_check_choice, snapshot_on, "snapshot_on", get_args(SnapshotOn))
        self.num_threads = (
            None if num_threads is None else _misconfigured(_check_positive_int, num_threads, "num_threads")
        )
        self.log_figures = bool(log_figures)
        if not prefix or not isinstance(prefix, str):
            raise MisconfigurationException(f"`prefix` must be a non-empty string, got {prefix!r}.")
        self.prefix = prefix.rstrip("/")
        self.forward_fn = forward_fn
        if self.config.sizes is not None and self.config.fit_size_count(self.config.sizes[-1]) < 3:
            raise MisconfigurationException(
                f"`config.sizes`={list(self.config.sizes)} holds fewer than 3 sizes >= `fit_min_size`="
                f"{self.config.fit_min_size}: the gap-law fit needs 3."
            )
        if reference_fn is None and self.train_probe < self.config.min_bank_size:
            raise MisconfigurationException(
                f"`train_probe`={self.train_probe} is too small for a gap-law fit from `fit_min_size`="
                f"{self.config.fit_min_size} on this grid (`min_size`={self.config.min_size}, `ratio`="
                f"{self.config.ratio:g}{'' if self.config.sizes is None else f', `sizes`={list(self.config.sizes)}'}): "
                f"it needs at least 3 grid sizes >= `fit_min_size`, i.e. train_probe >= {self.config.min_bank_size}."
            )

        # Probe indices into the train / val datasets, drawn at the first measurement or restored from a checkpoint.
        self.probe_indices: dict[str, list[int]] | None = None
        #: One dict per measurement: epoch, step, layer and every logged value.
        self.history: list[dict[str, Any]] = []
        #: Seconds spent in the last measurement: ``probe`` (forward passes) and ``compute`` (search and fits).
        self.last_timing: dict[str, float] = {}
        self._pending_snapshot: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self._metrics: dict[str, RepresentationGap] = {}
        self.strict = strict
        self._faults = FaultPolicy(strict_mode(strict))
        self.capture_validation = bool(capture_validation)
        self._val_capture = _vc.ValidationCapture()
        self._labelled = False  # whether probe batches carry labels (seen when training starts)
        #: Histories of earlier runs measured with other probe settings (resumed from a checkpoint), kept apart.
        self.archived_history: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        # The analysis settings were attributes (``cb.n_bootstrap``) before they moved into ``config``.
        if name in _CONFIG_FIELDS and "config" in self.__dict__:
            warnings.warn(
                f"`RepresentationGapCallback.{name}` is deprecated; read `callback.config.{name}`.",
                DeprecationWarning,
                stacklevel=2,
            )
            return getattr(self.__dict__["config"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------------------------------ Lightning state

    @property
    def state_key(self) -> str:
        """Key of this callback's state in checkpoints; distinct per layer list and probe sizes."""
        return self._generate_state_key(layer=self.layer, train_probe=self.train_probe, val_probe=self.val_probe)

    def state_dict(self) -> dict[str, Any]:
        """Plain values only: probe indices, seed, layers and the history of logged values."""
        return {
            "seed": self.seed,
            "layer": list(self.layer),
            "probe_indices": self.probe_indices,
            "history": list(self.history),
            "settings": _cf.probe_settings(self),
            "archived_history": list(self.archived_history),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore probes and history; probes saved under a different seed are dropped with a warning."""
        state_dict = _cf.restorable(self, state_dict)  # other probe settings: archived, nothing restored
        self.history = list(state_dict.get("history", []))
        self.archived_history = list(state_dict.get("archived_history", self.archived_history))
        indices = state_dict.get("probe_indices")
        if indices is not None and state_dict.get("seed", self.seed) != self.seed:
            rank_zero_warn(
                f"RepresentationGapCallback: the checkpoint's probes were drawn with seed {state_dict.get('seed')}, "
                f"this callback has seed {self.seed}; new probes will be drawn (values are not comparable)."
            )
            indices = None
        self.probe_indices = indices

    # ------------------------------------------------------------------------------------------ hooks

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Keep the history of a checkpointed run whose probe settings differ from this callback's (with a warning)."""
        _cf.archive_changed_settings(self, checkpoint)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Configuration checks that need data: probe datasets and a one-batch probe of every watched layer."""
        if not bool(getattr(trainer, "fast_dev_run", False)):
            _cf.setup_probe(self, trainer, pl_module)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Check the layer names against the model now, before any training step runs (on every rank, agreed)."""
        if self.layer:
            _cf.collective_check(trainer, lambda: resolve_layers(pl_module, self.layer))
        if self.snapshot_dir is not None:
            # Every rank must agree on the directory; only rank zero writes into it.
            self.snapshot_dir = trainer.strategy.broadcast(self.snapshot_dir)
        self._metrics = {}

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Arm the capture of the validation probe during this validation loop, when the callback measures after it."""
        if not self._should_skip(trainer):
            _vc.arm(self, trainer, pl_module)

    def on_validation_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Hook the watched layers for a validation batch holding validation-probe rows."""
        self._val_capture.batch_start(batch, batch_idx, dataloader_idx)

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any, **kw: Any) -> None:
        """Unhook and keep the batch's probe rows."""
        self._val_capture.batch_end()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """Never leave a hook behind."""
        self._val_capture.stop()

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Measure and log, unless this validation run is a sanity check, a dev run or off the schedule."""
        if self._should_skip(trainer):
            return
        values = self.measure(trainer, pl_module)
        # The values are already identical on every rank; syncing them is exact and keeps Lightning from warning
        # about unsynced epoch-level logs under DDP.
        logged = _cf.as_logged(values, pl_module)
        pl_module.log_dict(logged, on_step=False, on_epoch=True, sync_dist=trainer.world_size > 1)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Write the pending snapshot (``snapshot_on="checkpoint"``) when a checkpoint is saved."""
        if self.snapshot_on == "checkpoint":
            with self._faults.holding_io() as held:  # rank zero's strict-mode I/O fault: raised on every rank below
                _co.write_pending(self, trainer)
            io = _held_io(held)
            # Every rank saves (Trainer.save_checkpoint's contract): only a strict run that writes snapshots can hold
            # a fault for the others (snapshot_dir is the same on every rank: broadcast at setup).
            if self._faults.strict and trainer.world_size > 1 and self.snapshot_dir is not None:
                io = trainer.strategy.broadcast(io, src=0)
            if io is not None:
                raise held[0] if held else io_fault(*io)

    def _should_skip(self, trainer: Trainer) -> bool:
        return (
            trainer.sanity_checking
            or bool(getattr(trainer, "fast_dev_run", False))
            or trainer.state.fn != "fit"
            or (trainer.current_epoch + 1) % self.every_n_epochs != 0
        )

    # ------------------------------------------------------------------------------------------ measurement

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, float]:
        """Embed the probes, compute the metric for every layer and return the values to log.

        Returns:
            ``{"<prefix>/<key>": value}`` (``"<prefix>/<layer>/<key>"`` with several layers), identical on all ranks.

        """
        t0 = time.perf_counter()
        datasets = self._datasets(trainer)
        indices = self._probe_indices(datasets)
        feats, labels, fault = self._embed_probes(trainer, pl_module, datasets, indices)
        t1 = time.perf_counter()
        values: dict[str, float] = {}
        with self._faults.holding_io() as held:  # rank zero's strict-mode I/O fault: raised on every rank below
            for name in self._sources():
                args = _update_args(name, feats, labels)
                values.update(self._compute_layer(trainer, pl_module, name, args, indices, fault))
            if len(self._sources()) > 1 and self.log_figures and trainer.is_global_zero:
                _co.log_profile_figure(self, trainer, values)
        io = _held_io(held)
        # Identical numbers on every rank (EarlyStopping decisions and logged values must agree).
        values, io = trainer.strategy.broadcast((values, io), src=0)
        if io is not None:
            raise held[0] if held else io_fault(*io)
        t2 = time.perf_counter()
        self.last_timing = {"probe": t1 - t0, "compute": t2 - t1, "val_captured": self._val_capture.last_count}
        log.debug("repgap epoch=%d probe %.3fs compute %.3fs", trainer.current_epoch, t1 - t0, t2 - t1)
        self.history.append({"epoch": trainer.current_epoch, "step": trainer.global_step, **values})
        return values

    def _embed_probes(
        self, trainer: Trainer, pl_module: LightningModule, datasets: dict[str, Any], indices: dict[str, list[int]]
    ) -> tuple[dict[str, dict[str, Tensor]], dict[str, Tensor | None], MeasurementFaultError | None]:
        """Embed this rank's share of every probe (watched layers or raw inputs) and the ``reference_fn`` bank.

        An error in the probe pass (the user's forward, a hook, ``forward_fn``, the data, a layer that cannot be read)
        is agreed on before any rank goes on (:func:`~lightning_repgap._callback_faults.agreed_probe_pass`): after it
        this rank embeds nothing more but still meets the other ranks' collectives up to that agreement (the
        validation capture's reduce).

        Returns:
            ``({role: {source: features, "__index__": probe indices}}, {role: labels or None}, fault or None)``: the
            fault is a probe pass's or a ``reference_fn`` bank's, the same on every rank.

        """
        failed: list[Exception] = []  # this rank's first error in the probe pass
        feats: dict[str, dict[str, Tensor]] = {}
        labels: dict[str, Tensor | None] = {}
        for role, dataset_key in (("reference", "train"), ("queries", "val"), ("train_queries", "train")):
            if not indices[role] or (role == "reference" and self.reference_fn is not None):
                continue

            def embed(rows: list[int], key: str = dataset_key) -> tuple[dict[str, Tensor], Tensor | None]:
                if failed:  # nothing more to embed: the error is raised after the ranks agreed
                    return {}, None
                try:
                    return self._embed_rows(trainer, pl_module, datasets, key, rows)
                except Exception as err:  # re-raised by agreed_probe_pass, on every rank
                    failed.append(err)
                    return {}, None

            if role == "queries":  # rows the validation loop captured, plus the probe pass for the rest
                # The capture's collective, on every rank (nothing in it raises on one rank alone): not guarded, so a
                # bug there propagates instead of sending this rank into the agreement while the others wait in it.
                got = self._val_capture.finish(trainer, indices[role], lambda rows: embed(rows)[0])
                try:  # after that collective: an error here goes through the agreement, as embed's do
                    feats[role], labels[role] = _vc.split_queries(trainer, indices[role], got, embed)
                except Exception as err:
                    failed.append(err)
                    feats[role], labels[role] = {}, None
                continue
            mine = rank_share(indices[role], trainer.global_rank, trainer.world_size)
            feats[role], labels[role] = embed(mine)
            feats[role]["__index__"] = torch.as_tensor(mine, dtype=torch.int64)
        if not failed:  # a source of another width in another role would fail the metric's update on this rank only
            failed.extend(_cf.role_width_error(feats))
        fault: MeasurementFaultError | None = _cf.agreed_probe_pass(trainer, failed[0] if failed else None)
        if fault is None and self.reference_fn is not None:  # agreed: every rank or none calls it
            source = self._sources()[0]
            bank, fault = _cf.measured_bank(self, trainer, pl_module, feats.get("queries", {}).get(source))
            if bank is not None:
                feats["reference"] = {source: bank}
            labels["reference"] = None
        return feats, labels, fault

    def _embed_rows(
        self, trainer: Trainer, pl_module: LightningModule, datasets: dict[str, Any], key: str, rows: list[int]
    ) -> tuple[dict[str, Tensor], Tensor | None]:
        """The probe pass over ``rows`` of the ``key`` dataset: ``({source: features}, labels or None)``."""
        loader = self._probe_loader(datasets[key], rows, datasets[f"{key}_collate"], trainer)
        transfer = lightning_transfer(trainer, pl_module)
        if not self.layer:
            inputs, labels = embed_inputs(loader, transfer_fn=transfer)
            return {_INPUT: inputs}, labels
        context = trainer.precision_plugin.forward_context()
        return embed_batches(
            pl_module, loader, resolve_layers(pl_module, self.layer), pooling=self.pooling, forward_fn=self.forward_fn,
            transfer_fn=transfer, precision_context=context,
        )  # fmt: skip

    def _compute_layer(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        name: str,
        update_args: dict[str, Tensor | None],
        indices: dict[str, list[int]],
        fault: MeasurementFaultError | None = None,
    ) -> dict[str, float]:
        """One source's metric (gathered over ranks), its figure and snapshot; returns its logged keys."""
        metric = self._metric(name)
        metric.reset()
        metric.last_inputs = metric.last_result = None  # a fault must not leave the previous epoch's data behind
        try:
            if fault is not None:  # found before the gather, the same on every rank: no rank gathers
                raise fault
            metric.update(**update_args)
            metric.compute()
            assert metric.last_result is not None
            result = dict(metric.last_result.values)  # float64: a gap of 1e-60 must not flush to 0 in float32
        except SURVIVABLE as caught:  # only the listed measurement causes; anything else propagates
            expected = _cf.expected_keys(self, update_args, caught, bool(indices["train_queries"]))
            result = self._faults.survive(caught, name, expected)
        finally:
            metric.reset()
        result, valid = self._faults.finish(result, name)
        _co.after_compute(self, trainer, pl_module, name, metric, result, indices)
        return {self._key(name, key): value for key, value in {**result, "valid": valid}.items()}

    def layer_profile(self, index: int = -1) -> list[dict[str, Any]]:
        """Per-layer values of one measurement (default: the latest), in the order the layers were given.

        Returns:
            One dict per watched layer: ``{"layer": name, "gap": ..., "gap_norm": ..., "dim": ..., ...}``.

        Example:
            >>> cb = RepresentationGapCallback(layer=["a", "b"], train_probe=256, val_probe=64)
            >>> cb.history = [{"epoch": 0, "step": 1, "repgap/a/dim": 9.0, "repgap/b/dim": 4.0}]
            >>> cb.layer_profile()
            [{'layer': 'a', 'dim': 9.0}, {'layer': 'b', 'dim': 4.0}]

        """
        return self._profile_rows(self.history[index]) if self.history else []

    def _profile_rows(self, entry: dict[str, Any]) -> list[dict[str, Any]]:
        """:meth:`layer_profile`'s rows of one measurement's values (a history entry)."""
        rows = []
        for name in self._sources():
            head = self._key(name, "")
            rows.append({"layer": name, **{k[len(head) :]: v for k, v in entry.items() if k.startswith(head)}})
        return rows

    def _key(self, layer: str, key: str) -> str:
        return f"{self.prefix}/{key}" if len(self._sources()) == 1 else f"{self.prefix}/{layer}/{key}"

    def _sources(self) -> list[str]:
        """What is measured: the watched layers, or the raw inputs (``"input"``) when no layer is given."""
        return list(self.layer) if self.layer else [_INPUT]

    def _reference_fn_output(self, trainer: Trainer, pl_module: LightningModule) -> Any:
        """What ``reference_fn`` returns, run without gradients, with every module mode and the global RNG restored.

        The RNG too: random draws inside the function (a sampled bank) must not move training's seed stream.
        """
        assert self.reference_fn is not None
        precision = trainer.precision_plugin.forward_context()
        with isolate_rng(include_cuda=torch.cuda.is_initialized()), capture(pl_module, {}, precision_context=precision):
            return self.reference_fn(pl_module)

    def _metric(self, layer: str) -> RepresentationGap:
        if layer not in self._metrics:
            self._metrics[layer] = RepresentationGap(
                # A reference_fn bank is as large as the function makes it (times the number of ranks).
                max_reference=max(2, self.train_probe) if self.reference_fn is None else 2**31 - 1,
                max_queries=max(self.val_probe, self.train_query_probe, 1),
                config=self.config,
                num_threads=self.num_threads,
            )
        return self._metrics[layer]

    def metric_config(self) -> dict[str, Any]:
        """Deprecated: ``callback.config.to_dict()``, the settings stored in snapshot manifests.

        Returns:
            :meth:`GapConfig.to_dict <lightning_repgap.config.GapConfig.to_dict>` of :attr:`config`.

        """
        warnings.warn(
            "`RepresentationGapCallback.metric_config()` is deprecated; use `callback.config.to_dict()`.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.config.to_dict()

    # ------------------------------------------------------------------------------------------ probes

    def _datasets(self, trainer: Trainer) -> dict[str, Any]:
        """The map-style train and val datasets behind the trainer's loaders, with their collate functions."""
        out: dict[str, Any] = {}
        with _cf.val_dataloaders_loaded(trainer):  # not loaded yet when the first epoch does not validate
            for key, loader in (("train", trainer.train_dataloader), ("val", trainer.val_dataloaders)):
                if isinstance(loader, list | tuple):
                    loader = loader[0] if loader else None
                if isinstance(loader, dict):
                    loader = next(iter(loader.values()), None)
                if not isinstance(loader, DataLoader):
                    raise MisconfigurationException(
                        f"RepresentationGapCallback needs the {key} DataLoader to draw probes from, got "
                        f"{type(loader).__name__}. Pass DataLoaders to `fit(...)` or use a LightningDataModule."
                    )
                dataset = loader.dataset
                iterable = isinstance(dataset, IterableDataset)  # may define __len__, but __getitem__ raises
                if iterable or not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
                    raise MisconfigurationException(
                        f"RepresentationGapCallback needs a map-style {key} dataset (with __len__ and __getitem__) "
                        f"to draw fixed probes, got {type(dataset).__name__}."
                    )
                out[key] = dataset
                out[f"{key}_collate"] = loader.collate_fn
                out[f"{key}_batch_size"] = loader.batch_size
        return out

    def _probe_indices(self, datasets: dict[str, Any]) -> dict[str, list[int]]:
        n_train, n_val = len(datasets["train"]), len(datasets["val"])
        stored = self.probe_indices
        if stored is not None:
            flat_train = stored.get("reference", []) + stored.get("train_queries", [])
            if (flat_train and max(flat_train) >= n_train) or (
                stored.get("queries") and max(stored["queries"]) >= n_val
            ):
                rank_zero_warn(
                    "RepresentationGapCallback: the restored probe indices do not fit the current datasets "
                    f"(train {n_train}, val {n_val}); new probes are drawn and values are not comparable."
                )
                stored = None
        if stored is None:
            stored = self._draw_probes(n_train, n_val)
            self.probe_indices = stored
        return stored

    def _draw_probes(self, n_train: int, n_val: int) -> dict[str, list[int]]:
        # With a reference_fn the bank comes from the function: no training probe is drawn for it.
        bank = self.train_probe if self.reference_fn is None else 0
        extra = self.train_query_probe
        if bank + extra > n_train:
            # Keep the bank's share: the gap needs the bank more than the ratio needs its queries.
            extra = min(extra, n_train // 5) if bank else n_train
            bank = min(bank, n_train - extra)
            rank_zero_warn(
                f"RepresentationGapCallback: train_probe={self.train_probe} + train_query_probe="
                f"{self.train_query_probe} exceed the {n_train} training samples; using {bank} + {extra}."
            )
        queries = self.val_probe
        if queries > n_val:
            rank_zero_warn(f"RepresentationGapCallback: val_probe={queries} exceeds the {n_val} validation samples.")
            queries = n_val
        if self.reference_fn is None and bank < self.config.min_bank_size:
            raise MisconfigurationException(
                f"RepresentationGapCallback: only {bank} training samples are available for the bank; the gap-law "
                f"fit needs at least {self.config.min_bank_size} (lower `fit_min_size` or `min_size` in `config`)."
            )
        rng = np.random.default_rng(self.seed)
        train_perm = rng.permutation(n_train)
        val_perm = rng.permutation(n_val)
        probes = {
            "reference": np.sort(train_perm[:bank]).tolist(),
            "queries": np.sort(val_perm[:queries]).tolist(),
            "train_queries": np.sort(train_perm[bank : bank + extra]).tolist(),
        }
        rank_zero_info(
            f"RepresentationGapCallback: probes drawn with seed {self.seed}: bank {bank}, queries {queries}, "
            f"train queries {extra}."
        )
        return probes

    def _probe_loader(self, dataset: Dataset, indices: list[int], collate: Any, trainer: Trainer) -> DataLoader:
        return probe_loader(dataset, indices, collate, self.batch_size or loader_batch_size(trainer) or 256)


def _held_io(held: list[SnapshotIOError | FigureIOError]) -> tuple[str, str] | None:
    """Rank zero's first held I/O fault as ``(type name, message)`` for the other ranks, or ``None``."""
    return (type(held[0]).__name__, f"on rank 0: {held[0]}") if held else None


def _update_args(
    name: str, feats: dict[str, dict[str, Tensor]], labels: dict[str, Tensor | None]
) -> dict[str, Tensor | None]:
    """The ``RepresentationGap.update`` arguments of one source: its features per role, indices, labels."""
    args: dict[str, Tensor | None] = {}
    for role, index_arg in zip(_ROLES, ("reference_index", "query_index", "train_index"), strict=True):
        if role in feats and name in feats[role]:  # not after a probe pass that failed on this rank
            args[role] = feats[role][name]
            args[index_arg] = feats[role].get("__index__")
    if labels.get("reference") is not None and labels.get("queries") is not None:
        args["reference_labels"] = labels["reference"]
        args["query_labels"] = labels["queries"]
    return args
