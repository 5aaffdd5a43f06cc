r"""``RepresentationGapEarlyStopping``: a label-free stopping rule on the representation gap (DESIGN §7).

The rule reads keys that :class:`~lightning_repgap.callback.RepresentationGapCallback` logs (by default
``repgap/gap_norm``, ``repgap/dim_mle`` and ``repgap/gap_ratio``) and stops only on strong evidence of
memorisation: a *large, sustained rise* of any of them (with noisy labels ``gap_norm`` rises steadily once a
classifier starts memorising, and the Levina-Bickel dimension ``dim_mle`` rises with it, also on runs where
``gap_norm`` rises too little; ``gap_ratio`` rises by orders of magnitude once a generator starts copying its
training set). Their minima are not the best checkpoint (``gap_norm`` is often lowest in the first epochs of a clean
run, and with clean labels it can drift up by more than half while accuracy still improves), so the rule neither
keeps a minimum nor stops on small drifts. Per key:

- the first ``warmup`` finite measurements neither set the reference nor stop;
- the *reference* :math:`r` is the lowest value measured after the warm-up;
- a measurement :math:`v \le r + \mathrm{keep\_tolerance} \cdot |r|` is *in the keep band*;
- a measurement :math:`v > r + \mathrm{tolerance} \cdot |r|` (``tolerance`` >= ``keep_tolerance``) is *a rise*;
  ``patience`` rises in a row, for any key, stop training; a measurement that is not a rise resets the count;
- a NaN or infinite value (an undefined measurement) is no evidence: it changes nothing.

An epoch at which every key with a finite value is in its keep band (or still in its warm-up) becomes the
provisional recommendation, and its weights are saved. A stop keeps that recommendation: the weights from before
the rise. A run that ends without a stop recommends its final weights (no evidence of memorisation: the study found
no stopping close to optimal there).

:func:`stopping_decision` is that rule as a pure function of its previous state and one measurement (built on the
per-key :func:`rise_decision`); :func:`replay` runs it over recorded values. The callback and the stopping study
(``studies/stopping.py``) both call it, so the study's replayed decisions are the callback's.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_repgap._faults import MeasurementFaultError
from lightning_repgap.callback import RepresentationGapCallback

#: Keys the rule may monitor: label-free ``RepresentationGapCallback`` keys (``knn_acc`` needs labels).
MONITORABLE = ("gap_norm", "gap", "dim", "dim_twonn", "dim_mle", "gap_ratio")

# The study's defaults (studies/stopping.py, chosen on its tuning runs; frozen in studies/stopping_rule.json).
DEFAULT_MONITOR = ("gap_norm", "dim_mle", "gap_ratio")
DEFAULT_PATIENCE = 2
#: Per key, the (tolerance, keep_tolerance, warmup) used when none is given: the study's values for its three keys;
#: the other keys get ``gap_norm``'s (they were not chosen by the study).
KEY_DEFAULTS = {"gap_norm": (0.7, 0.1, 8), "dim_mle": (0.25, 0.05, 8), "gap_ratio": (0.15, 0.15, 1)}


@dataclass(frozen=True)
class RiseState:
    """State of the rule for one key between measurements (plain values, stored in checkpoints).

    Attributes:
        reference: lowest value measured after the warm-up (``inf`` before).
        best_epoch: the latest epoch this key was in its keep band or warm-up (``-1``: none yet).
        best_value: the monitored value at ``best_epoch``.
        wait: rises in a row (measurements above the ``tolerance`` band) since the last measurement that was not one.
        seen: finite measurements so far.

    """

    reference: float = math.inf
    best_epoch: int = -1
    best_value: float = math.nan
    wait: int = 0
    seen: int = 0


def rise_decision(
    state: RiseState,
    epoch: int,
    value: float,
    *,
    tolerance: float,
    patience: int,
    warmup: int = 0,
    keep_tolerance: float | None = None,
) -> tuple[RiseState, bool, bool]:
    """One step of the sustained-rise rule for one key: update ``state`` with the ``value`` measured after ``epoch``.

    Args:
        state: the state after the previous measurement (``RiseState()`` before the first).
        epoch: the epoch the value was measured after.
        value: the monitored value; NaN or infinite means "no evidence" and leaves everything unchanged.
        tolerance: relative rise above the reference that counts as a rise (evidence towards stopping).
        patience: rises in a row that stop training.
        warmup: first finite measurements that are recommended but neither set the reference nor stop.
        keep_tolerance: relative band above the reference whose epochs are recommended (default ``tolerance``;
            at most ``tolerance``).

    Returns:
        ``(new_state, recommend, stop)``: ``recommend`` when this epoch is in the keep band (or the warm-up),
        ``stop`` when training should stop now.

    Example:
        >>> state, stops = RiseState(), []
        >>> for epoch, v in enumerate([1.0, 0.8, 0.82, 0.9, 1.0, 1.1]):
        ...     state, recommend, stop = rise_decision(state, epoch, v, tolerance=0.2, patience=2, keep_tolerance=0.05)
        ...     stops.append(stop)
        >>> state.best_epoch, stops.index(True)
        (2, 5)

    """
    if not math.isfinite(value):
        return state, False, False
    keep = tolerance if keep_tolerance is None else keep_tolerance
    seen = state.seen + 1
    if seen <= warmup:
        return replace(state, best_epoch=epoch, best_value=value, wait=0, seen=seen), True, False
    reference = min(state.reference, value)
    wait = state.wait + 1 if value > reference + tolerance * abs(reference) else 0
    if value <= reference + keep * abs(reference):
        return RiseState(reference, epoch, value, wait, seen), True, wait >= patience
    return replace(state, reference=reference, wait=wait, seen=seen), False, wait >= patience


@dataclass(frozen=True)
class StopState:
    """State of the whole rule: one :class:`RiseState` per monitored key and the recommended epoch.

    Attributes:
        keys: per-key states, in the order of the monitored keys.
        best_epoch: the provisional recommendation: the latest epoch at which every key with a finite value was in
            its keep band or warm-up (``-1``: none yet).

    """

    keys: tuple[RiseState, ...]
    best_epoch: int = -1

    @classmethod
    def start(cls, n_keys: int) -> StopState:
        """The state before the first measurement."""
        return cls(tuple(RiseState() for _ in range(n_keys)))


def stopping_decision(
    state: StopState,
    epoch: int,
    values: Sequence[float],
    *,
    tolerance: Sequence[float],
    patience: int,
    warmup: Sequence[int],
    keep_tolerance: Sequence[float] | None = None,
) -> tuple[StopState, bool, bool]:
    """One step of the rule over several keys: update ``state`` with the ``values`` measured after ``epoch``.

    Args:
        state: the state after the previous measurement (``StopState.start(len(values))`` before the first).
        epoch: the epoch the values were measured after.
        values: one value per monitored key; NaN or infinite values are no evidence.
        tolerance: per key, see :func:`rise_decision`.
        patience: rises in a row, for any one key, that stop training.
        warmup: per key, see :func:`rise_decision`.
        keep_tolerance: per key, see :func:`rise_decision` (default ``tolerance``).

    Returns:
        ``(new_state, recommend, stop)``: ``recommend`` when this epoch's weights become the provisional
        recommendation, ``stop`` when training should stop now.

    Example:
        >>> state = StopState.start(2)
        >>> for epoch, pair in enumerate([(1.0, 5.0), (0.9, 5.0), (0.91, 9.0), (0.9, 9.5)]):
        ...     state, recommend, stop = stopping_decision(
        ...         state, epoch, pair, tolerance=(0.1, 0.1), patience=2, warmup=(0, 0)
        ...     )
        >>> state.best_epoch, stop
        (1, True)

    """
    keeps = tolerance if keep_tolerance is None else keep_tolerance
    if not len(values) == len(tolerance) == len(keeps) == len(warmup) == len(state.keys):
        raise ValueError(
            f"One value, tolerance, keep tolerance and warm-up per key: got {len(values)} values, "
            f"{len(tolerance)} tolerances, {len(keeps)} keep tolerances, {len(warmup)} warm-ups for "
            f"{len(state.keys)} keys."
        )
    keys, in_band, stop = [], [], False
    for key_state, value, tol, keep, warm in zip(state.keys, values, tolerance, keeps, warmup, strict=True):
        new, recommend, key_stop = rise_decision(
            key_state, epoch, float(value), tolerance=tol, patience=patience, warmup=warm, keep_tolerance=keep
        )
        keys.append(new)
        if math.isfinite(value):
            in_band.append(recommend)
        stop = stop or key_stop
    recommend = bool(in_band) and all(in_band)
    return StopState(tuple(keys), epoch if recommend else state.best_epoch), recommend, stop


def replay(
    values: Sequence[float] | Sequence[Sequence[float]],
    *,
    tolerance: float | Sequence[float],
    patience: int,
    warmup: int | Sequence[int] = 0,
    keep_tolerance: float | Sequence[float] | None = None,
    epochs: Sequence[int] | None = None,
) -> tuple[int, int | None]:
    """Run :func:`stopping_decision` over recorded sequences, as the callback would during training.

    Args:
        values: the monitored value at each measurement, or one such sequence per key.
        tolerance: per key (a number applies to every key), see :func:`rise_decision`.
        patience: see :func:`stopping_decision`.
        warmup: per key (a number applies to every key), see :func:`rise_decision`.
        keep_tolerance: per key (a number applies to every key; default ``tolerance``), see :func:`rise_decision`.
        epochs: the epoch of each measurement (default ``0, 1, 2, ...``).

    Returns:
        ``(best_epoch, stopped_epoch)``: the recommended epoch and the epoch after which training stopped. A run
        that did not stop recommends its last epoch and has ``stopped_epoch`` ``None``.

    Example:
        >>> replay([1.0, 0.8, 0.82, 0.9, 1.0, 1.1], tolerance=0.05, patience=2)
        (2, 4)
        >>> replay([1.0, 0.8, 0.82, 0.9, 1.0, 1.1], tolerance=0.5, patience=2, keep_tolerance=0.05)
        (5, None)
        >>> replay([1.0, 1.01, float("nan"), 0.99], tolerance=0.05, patience=2)
        (3, None)
        >>> replay([[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]], tolerance=(0.1, 0.2), patience=2)
        (1, 3)

    """
    nested = len(values) > 0 and isinstance(values[0], Sequence)
    series: list[list[float]] = (
        [[float(v) for v in row] for row in values]  # type: ignore[union-attr]
        if nested
        else [[float(v) for v in values]]  # type: ignore[arg-type]
    )
    n_keys = len(series)
    tolerances = _per_key(tolerance, n_keys, "tolerance")
    keeps = tolerances if keep_tolerance is None else _per_key(keep_tolerance, n_keys, "keep_tolerance")
    warmups = _per_key(warmup, n_keys, "warmup")
    steps = len(series[0])
    epochs = list(range(steps)) if epochs is None else list(epochs)
    state = StopState.start(n_keys)
    for i, epoch in enumerate(epochs):
        state, _, stop = stopping_decision(
            state,
            epoch,
            [s[i] for s in series],
            tolerance=tolerances,
            patience=patience,
            warmup=warmups,
            keep_tolerance=keeps,
        )
        if stop:
            return state.best_epoch, epoch
    return (epochs[-1] if epochs else -1), None


def _per_key(value: Any, n_keys: int, name: str) -> tuple[Any, ...]:
    """A scalar for every key, or one value per key (checked)."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        return (value,) * n_keys
    if len(value) != n_keys:
        raise ValueError(f"`{name}` needs one value per monitored key ({n_keys}), got {list(value)}.")
    return tuple(value)


def _rule_args(
    keys: list[str],
    tolerance: float | Sequence[float] | None,
    keep_tolerance: float | Sequence[float] | None,
    warmup: int | Sequence[int] | None,
) -> tuple[tuple[Any, ...], tuple[Any, ...], list[Any]]:
    """Per key tolerance, keep tolerance and warm-up (:data:`KEY_DEFAULTS` where not given), checked."""
    defaults = [KEY_DEFAULTS.get(k, KEY_DEFAULTS["gap_norm"]) for k in keys]
    if keep_tolerance is None:
        keep_tolerance = tolerance if tolerance is not None else [d[1] for d in defaults]
    if tolerance is None:
        tolerance = [d[0] for d in defaults]
    if warmup is None:
        warmup = [d[2] for d in defaults]
    try:
        given = _per_key(tolerance, len(keys), "tolerance")
        keeps = _per_key(keep_tolerance, len(keys), "keep_tolerance")
        warmups = list(_per_key(warmup, len(keys), "warmup"))
    except ValueError as err:
        raise MisconfigurationException(str(err)) from None
    for name, values, shown in (("tolerance", given, tolerance), ("keep_tolerance", keeps, keep_tolerance)):
        for t in values:
            if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t < math.inf:
                raise MisconfigurationException(f"`{name}` must be finite numbers >= 0, got {shown!r}.")
    if any(k > t for k, t in zip(keeps, given, strict=True)):
        raise MisconfigurationException(
            f"`keep_tolerance` ({list(keeps)}) must not exceed `tolerance` ({list(given)}): an epoch recommended "
            "for keeping cannot be evidence of a rise."
        )
    for w in warmups:
        if isinstance(w, bool) or not isinstance(w, int) or w < 0:
            raise MisconfigurationException(f"`warmup` must be integers >= 0, got {w!r}.")
    return given, keeps, warmups


class RepresentationGapEarlyStopping(Callback):
    r"""Stop training when the representation gap rises far and for good, and keep the weights from before the rise.

    Needs a :class:`~lightning_repgap.callback.RepresentationGapCallback` in the same Trainer and no labels::

        trainer = Trainer(callbacks=[RepresentationGapCallback(layer="backbone"), RepresentationGapEarlyStopping()])

    After every measurement of the gap callback it applies :func:`stopping_decision` to the monitored keys. The moment
    an epoch becomes the provisional recommendation its weights are saved with ``trainer.save_checkpoint`` (so through
    the Trainer's checkpoint IO and strategy) to ``<filename>.ckpt``; a stop sets ``trainer.should_stop``. A run that
    ends without a stop recommends its final weights, saved at the end of training to ``<filename>-final.ckpt``
    (another file, so a resumed run still has the provisional recommendation's weights). Every rank takes rank zero's
    decision. A failed save (an ``OSError``) never ends ``fit``: it warns, ``best_model_path`` becomes ``None`` until
    the next save succeeds, and the decision is kept. The defaults are the ones the stopping study chose on its tuning
    runs; on its untouched runs (``docs/stopping.md``) the rule helped with noisy labels and diffusion models and
    matched not stopping on contrastive encoders, but the labelled ``EarlyStopping(monitor="val_loss")`` remained
    at least as good on classifiers: where trustworthy validation labels exist, prefer it.

    Args:
        monitor: the gap callback's key(s) to watch, without the prefix (each one of :data:`MONITORABLE`).
        tolerance: relative rise above the running minimum that counts as evidence of memorisation (one for every
            key, or one per key; default: :data:`KEY_DEFAULTS`).
        patience: rises in a row, for any one key, that stop training.
        warmup: first measurements of a key that never set its reference nor stop (one for every key, or one per
            key; default: :data:`KEY_DEFAULTS`).
        keep_tolerance: relative band above the running minimum whose epochs are recommended, at most ``tolerance``
            (one for every key, or one per key; default: :data:`KEY_DEFAULTS`, or ``tolerance`` when that is given).
        layer: the watched layer whose key is read when the gap callback watches several layers.
        dirpath: directory of the recommended checkpoint; default ``<log_dir or default_root_dir>/checkpoints``.
        filename: file name of that checkpoint, without ``.ckpt``.
        save_weights: save the recommended weights (``False``: only ``best_epoch`` is reported).
        verbose: log each stop and recommendation on rank zero.

    Attributes:
        best_epoch: the recommended epoch: during training the provisional recommendation (``-1`` before any finite
            measurement), after a ``fit`` that did not stop the final epoch.
        stopped_epoch: the epoch after which the rule stopped training (``None`` if it did not).
        best_model_path: path of the saved recommended weights (``None`` until saved, or after a failed save).

    Example:
        >>> stopper = RepresentationGapEarlyStopping(monitor="gap_norm", tolerance=0.5, patience=3, warmup=5)
        >>> stopper.keep_tolerance, "'keep_tolerance': [0.5]" in stopper.state_key
        ([0.5], True)

    """

    def __init__(
        self,
        monitor: str | Sequence[str] = DEFAULT_MONITOR,
        tolerance: float | Sequence[float] | None = None,
        patience: int = DEFAULT_PATIENCE,
        warmup: int | Sequence[int] | None = None,
        keep_tolerance: float | Sequence[float] | None = None,
        layer: str | None = None,
        dirpath: str | None = None,
        filename: str = "repgap-best",
        save_weights: bool = True,
        verbose: bool = False,
    ) -> None:
        keys = [monitor] if isinstance(monitor, str) else list(monitor)
        if not keys or any(k not in MONITORABLE for k in keys) or len(set(keys)) != len(keys):
            raise MisconfigurationException(
                f"`monitor` must be one or more distinct keys of {MONITORABLE}, got {monitor!r}."
            )
        given, keeps, warmups = _rule_args(keys, tolerance, keep_tolerance, warmup)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise MisconfigurationException(f"`patience` must be integers >= 1, got {patience!r}.")
        if not filename or os.sep in filename:
            raise MisconfigurationException(f"`filename` must be a plain file name, got {filename!r}.")
        self.monitor = keys
        self.tolerance = [float(t) for t in given]
        self.keep_tolerance = [float(k) for k in keeps]
        self.patience = patience
        self.warmup = warmups
        self.layer = layer
        self.dirpath = dirpath
        self.filename = filename
        self.save_weights = bool(save_weights)
        self.verbose = bool(verbose)
        self.state = StopState.start(len(keys))
        self.stopped_epoch: int | None = None
        self.best_model_path: str | None = None
        self._keys: list[str] | None = None
        self._gap: RepresentationGapCallback | None = None
        self._last_epoch = -1
        self._final_epoch: int | None = None  # set when a fit ends without a stop
        self._kept_path: str | None = None  # the provisional recommendation's checkpoint

    @property
    def best_epoch(self) -> int:
        """The recommended epoch (``-1`` before any finite measurement; the final epoch after a fit without a stop)."""
        return self.state.best_epoch if self._final_epoch is None else self._final_epoch

    @property
    def state_key(self) -> str:
        """Key of this callback's state in checkpoints."""
        return self._generate_state_key(
            monitor=self.monitor,
            tolerance=self.tolerance,
            keep_tolerance=self.keep_tolerance,
            patience=self.patience,
            warmup=self.warmup,
        )

    def state_dict(self) -> dict[str, Any]:
        """Plain values: the rule's state, the stop epoch and the recommended checkpoint's path."""
        return {
            "monitor": list(self.monitor),
            "state": asdict(self.state),
            "stopped_epoch": self.stopped_epoch,
            "best_model_path": self._kept_path,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the rule mid-patience: a resumed run reaches the decision the uninterrupted one would.

        State dicts written before ``monitor`` was stored in them (0.2.0) load when they hold one state per monitored
        key; a state for other keys is a clear error, never a silent mix-up of keys.
        """
        saved = state_dict.get("state")
        if saved is not None:
            monitor = state_dict.get("monitor")
            if (monitor is not None and list(monitor) != self.monitor) or len(saved["keys"]) != len(self.monitor):
                shown = monitor if monitor is not None else f"{len(saved['keys'])} key(s)"
                raise ValueError(
                    f"RepresentationGapEarlyStopping state for monitor {shown} cannot be loaded into a callback that "
                    f"monitors {self.monitor}: build it with the monitor the checkpoint was written with (the "
                    "default monitor changed after 0.2.0 from ['gap_norm', 'gap_ratio'] to ['gap_norm', 'dim_mle', "
                    "'gap_ratio'])."
                )
            self.state = StopState(tuple(RiseState(**k) for k in saved["keys"]), saved.get("best_epoch", -1))
        self.stopped_epoch = state_dict.get("stopped_epoch")
        self.best_model_path = self._kept_path = state_dict.get("best_model_path")

    # ------------------------------------------------------------------------------------------ hooks

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Find the gap callback and check that it logs the monitored key often enough, before training starts."""
        if stage != "fit":
            return
        self._final_epoch = None
        self._gap = self._find_gap_callback(trainer)
        self._keys = [self._resolve_key(self._gap, key) for key in self.monitor]
        interval = self._gap.every_n_epochs * (trainer.check_val_every_n_epoch or 1)
        if interval > self.patience:
            raise MisconfigurationException(
                f"RepresentationGapEarlyStopping(patience={self.patience}) counts measurements, and the gap is "
                f"measured only every {interval} epochs (every_n_epochs={self._gap.every_n_epochs} x "
                f"check_val_every_n_epoch={trainer.check_val_every_n_epoch}): a rise would need "
                f"{interval * self.patience} epochs to be confirmed. Measure at least every {self.patience} epochs "
                "(the rule was tuned on one measurement per epoch)."
            )
        if self.save_weights:
            dirpath = self.dirpath or os.path.join(trainer.log_dir or trainer.default_root_dir, "checkpoints")
            self.dirpath = trainer.strategy.broadcast(dirpath)

    def _find_gap_callback(self, trainer: Trainer) -> RepresentationGapCallback:
        found = [cb for cb in trainer.callbacks if isinstance(cb, RepresentationGapCallback)]  # type: ignore[attr-defined]
        if not found:
            raise MisconfigurationException(
                "RepresentationGapEarlyStopping reads the keys RepresentationGapCallback logs, but the Trainer has no "
                "RepresentationGapCallback: use callbacks=[RepresentationGapCallback(layer=...), "
                "RepresentationGapEarlyStopping()]."
            )
        if self.layer is not None:
            found = [cb for cb in found if self.layer in cb.layer]
            if not found:
                raise MisconfigurationException(
                    f"RepresentationGapEarlyStopping(layer={self.layer!r}): no RepresentationGapCallback watches "
                    "that layer."
                )
        if len(found) > 1:
            raise MisconfigurationException(
                f"RepresentationGapEarlyStopping found {len(found)} RepresentationGapCallbacks; give `layer` to "
                "choose one (it must be watched by exactly one of them)."
            )
        return found[0]

    def _resolve_key(self, gap: RepresentationGapCallback, key: str) -> str:
        sources = list(gap.layer) or ["input"]
        if key == "gap_ratio" and gap.train_query_probe == 0:
            raise MisconfigurationException(
                "RepresentationGapEarlyStopping monitors 'gap_ratio', which needs RepresentationGapCallback("
                "train_query_probe > 0); it is 0, so `gap_ratio` is never logged."
            )
        if len(sources) == 1:
            return f"{gap.prefix}/{key}"
        if self.layer is None:
            raise MisconfigurationException(
                f"The RepresentationGapCallback watches {sources}; give RepresentationGapEarlyStopping(layer=...) "
                "to choose whose key to monitor."
            )
        return f"{gap.prefix}/{self.layer}/{key}"

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Apply the rule to this epoch's measurement (if the gap callback measured), save and stop as it says."""
        gap = self._gap
        if gap is None or self._keys is None or self._should_skip(trainer, gap):
            return
        epoch = trainer.current_epoch
        raws = [trainer.callback_metrics.get(key) for key in self._keys]
        values = [math.nan if raw is None else float(raw) for raw in raws]
        state, recommend, stop = stopping_decision(
            self.state,
            epoch,
            values,
            tolerance=self.tolerance,
            patience=self.patience,
            warmup=self.warmup,
            keep_tolerance=self.keep_tolerance,
        )
        # Every rank takes rank zero's decision (the logged values already agree; this makes it certain).
        state, recommend, stop = trainer.strategy.broadcast((state, recommend, stop), src=0)
        self.state = state
        shown = ", ".join(f"{k}={v:.4g}" for k, v in zip(self._keys, values, strict=True))
        if recommend:
            if self.save_weights:
                self.best_model_path = self._kept_path = self._save(trainer, epoch, self.filename)
            if self.verbose:
                rank_zero_info(f"RepresentationGapEarlyStopping: epoch {epoch} recommended ({shown}).")
        if stop:
            self.stopped_epoch = epoch
            trainer.should_stop = True
            if self.verbose:
                rank_zero_info(
                    f"RepresentationGapEarlyStopping: a key rose above its tolerance for {self.patience} measurements "
                    f"({shown}); stopped after epoch {epoch}, recommending epoch {state.best_epoch}."
                )

    @staticmethod
    def _should_skip(trainer: Trainer, gap: RepresentationGapCallback) -> bool:
        """Skip where the gap callback does not measure: sanity checks, dev runs, other stages, off-schedule."""
        return (
            trainer.sanity_checking
            or bool(getattr(trainer, "fast_dev_run", False))
            or trainer.state.fn != "fit"
            or (trainer.current_epoch + 1) % gap.every_n_epochs != 0
        )

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Remember the last trained epoch: a run that ends without a stop recommends it."""
        self._last_epoch = trainer.current_epoch

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Without a stop there is no evidence of memorisation: recommend (and save) the final weights."""
        if self._gap is None or self.stopped_epoch is not None or self._last_epoch < 0:
            return
        self._final_epoch = self._last_epoch
        if self._final_epoch != self.state.best_epoch and self.save_weights:
            self.best_model_path = self._save(trainer, self._final_epoch, f"{self.filename}-final")
        if self.verbose:
            rank_zero_info(
                f"RepresentationGapEarlyStopping: no stop; recommending the final epoch {self._final_epoch}."
            )

    def _save(self, trainer: Trainer, epoch: int, filename: str) -> str | None:
        """Save the current weights to ``<filename>.ckpt`` (a temporary file renamed on rank zero); its path.

        A failure to write (``OSError``) warns and returns ``None``: the measurement never ends a user's ``fit``.
        A :class:`~lightning_repgap._faults.MeasurementFaultError` is not such a failure: it is the gap callback's
        strict-mode fault (a snapshot written with the checkpoint, raised on every rank), and propagates.
        Every rank takes the same path: the ranks agree on success before rank zero renames.
        """
        assert self.dirpath is not None
        path = os.path.join(self.dirpath, f"{filename}.ckpt")
        tmp = os.path.join(self.dirpath, f".{filename}.ckpt.tmp")
        error: OSError | None = None
        try:
            # A full checkpoint (Lightning's default), said explicitly: Lightning logs a line per save otherwise.
            trainer.save_checkpoint(tmp, weights_only=False)
        except OSError as err:
            if isinstance(err, MeasurementFaultError):  # the gap callback's strict-mode snapshot fault, every rank's
                raise
            error = err
            # Trainer.save_checkpoint ends with a barrier that the failing rank skipped; join it.
            trainer.strategy.barrier("Trainer.save_checkpoint")
        ok = bool(trainer.strategy.reduce_boolean_decision(error is None, all=True))
        if ok and trainer.is_global_zero:
            try:
                os.replace(tmp, path)
            except OSError as err:
                ok, error = False, err
        if bool(trainer.strategy.broadcast(ok, src=0)):
            return path
        if trainer.is_global_zero:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        rank_zero_warn(
            f"RepresentationGapEarlyStopping could not save the weights of epoch {epoch} to {path} "
            f"({error or 'failed on another rank'}); training goes on and the decision is kept, but best_model_path "
            "is None until a later recommendation is saved."
        )
        return None  # the file on disk (if any) holds older weights than the recommendation's


__all__ = ["RepresentationGapEarlyStopping", "RiseState", "StopState", "replay", "rise_decision", "stopping_decision"]
