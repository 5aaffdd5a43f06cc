r"""``RepresentationGapEarlyStopping``: a label-free stopping rule on the representation gap (DESIGN §7).

The rule reads one key that :class:`~lightning_repgap.callback.RepresentationGapCallback` logs (by default
``repgap/gap_norm``) and stops at the onset of a *sustained rise*, the signature of memorisation: with noisy labels,
or a generator copying its training set, the gap rises steadily once the network starts memorising, while in
runs that keep generalising it stays within a few per cent of its running minimum. Its minimum is not the best
checkpoint (it is often reached in the first epochs of a clean run), so the rule does not keep the minimum:

- the *reference* is the lowest value measured so far (after ``warmup`` measurements);
- a measurement within ``tolerance`` of the reference, :math:`v \le r + \mathrm{tolerance} \cdot |r|`, is *in the
  band*: its epoch becomes the recommendation (the latest in-band epoch, so a run that stays flat keeps training
  and keeps its latest weights) and the patience counter resets;
- a measurement above the band adds one to the counter; ``patience`` of them in a row stop training, and the
  recommended weights are those of the last in-band epoch, before the rise;
- a NaN or infinite value (an undefined measurement) is no evidence: it changes nothing.

:func:`rise_decision` is that rule as a pure function of its previous state and one measurement. The callback and
the stopping study (``studies/stopping.py``) both call it, so the study's replayed decisions are the callback's.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_repgap.callback import RepresentationGapCallback

#: Keys the rule may monitor: label-free ``RepresentationGapCallback`` keys (``knn_acc`` needs labels).
MONITORABLE = ("gap_norm", "gap", "dim", "dim_twonn", "dim_mle", "gap_ratio")

# The study's defaults (studies/stopping.py, tuned on its tuning half; see docs/stopping.md).
DEFAULT_MONITOR = "gap_norm"
DEFAULT_TOLERANCE = 0.1
DEFAULT_PATIENCE = 4
DEFAULT_WARMUP = 2


@dataclass(frozen=True)
class RiseState:
    """State of the rule between measurements (plain values, stored in checkpoints).

    Attributes:
        reference: lowest value measured after the warm-up (``inf`` before).
        best_epoch: the recommended epoch: the latest measurement in the band (``-1``: none yet).
        best_value: the monitored value at ``best_epoch``.
        wait: measurements above the band since the last one in it.
        seen: finite measurements so far.

    """

    reference: float = math.inf
    best_epoch: int = -1
    best_value: float = math.nan
    wait: int = 0
    seen: int = 0


def rise_decision(
    state: RiseState, epoch: int, value: float, *, tolerance: float, patience: int, warmup: int = 0
) -> tuple[RiseState, bool, bool]:
    """One step of the sustained-rise rule: update ``state`` with the ``value`` measured after ``epoch``.

    Args:
        state: the state after the previous measurement (``RiseState()`` before the first).
        epoch: the epoch the value was measured after.
        value: the monitored value; NaN or infinite means "no evidence" and leaves everything unchanged.
        tolerance: relative width of the band above the reference that still counts as "not rising".
        patience: measurements above the band, in a row, that stop training.
        warmup: first finite measurements that are recommended but neither set the reference nor stop.

    Returns:
        ``(new_state, recommend, stop)``: ``recommend`` when this epoch's weights become the recommendation,
        ``stop`` when training should stop now.

    Example:
        >>> state, stops = RiseState(), []
        >>> for epoch, v in enumerate([1.0, 0.8, 0.82, 0.9, 1.0, 1.1]):
        ...     state, recommend, stop = rise_decision(state, epoch, v, tolerance=0.05, patience=2)
        ...     stops.append(stop)
        >>> state.best_epoch, stops.index(True)
        (2, 4)

    """
    if not math.isfinite(value):
        return state, False, False
    seen = state.seen + 1
    if seen <= warmup:
        return replace(state, best_epoch=epoch, best_value=value, wait=0, seen=seen), True, False
    reference = min(state.reference, value)
    if value <= reference + tolerance * abs(reference):
        return RiseState(reference, epoch, value, 0, seen), True, False
    wait = state.wait + 1
    return replace(state, reference=reference, wait=wait, seen=seen), False, wait >= patience


def replay(
    values: Sequence[float], *, tolerance: float, patience: int, warmup: int = 0, epochs: Sequence[int] | None = None
) -> tuple[int, int | None]:
    """Run :func:`rise_decision` over a recorded sequence, as the callback would during training.

    Args:
        values: the monitored value at each measurement.
        tolerance: see :func:`rise_decision`.
        patience: see :func:`rise_decision`.
        warmup: see :func:`rise_decision`.
        epochs: the epoch of each measurement (default ``0, 1, 2, ...``).

    Returns:
        ``(best_epoch, stopped_epoch)``: the recommended epoch (``-1`` if every value was NaN) and the epoch after
        which training stopped (``None`` if it ran to the end).

    Example:
        >>> replay([1.0, 0.8, 0.82, 0.9, 1.0, 1.1], tolerance=0.05, patience=2)
        (2, 4)
        >>> replay([1.0, 1.01, float("nan"), 0.99], tolerance=0.05, patience=2)
        (3, None)

    """
    epochs = list(range(len(values))) if epochs is None else list(epochs)
    state = RiseState()
    for epoch, value in zip(epochs, values, strict=True):
        state, _, stop = rise_decision(
            state, epoch, float(value), tolerance=tolerance, patience=patience, warmup=warmup
        )
        if stop:
            return state.best_epoch, epoch
    return state.best_epoch, None


class RepresentationGapEarlyStopping(Callback):
    r"""Stop training when the representation gap rises for good, and keep the weights from before the rise.

    Needs a :class:`~lightning_repgap.callback.RepresentationGapCallback` in the same Trainer and no labels::

        trainer = Trainer(callbacks=[RepresentationGapCallback(layer="backbone"), RepresentationGapEarlyStopping()])

    After every measurement of the gap callback it applies :func:`rise_decision` to the monitored key. The moment
    an epoch becomes the recommendation its weights are saved with ``trainer.save_checkpoint`` (so through the
    Trainer's checkpoint IO and strategy) to ``best_model_path``; a stop sets ``trainer.should_stop``. Every rank
    takes rank zero's decision. The defaults are the ones the stopping study chose on its tuning runs
    (``docs/stopping.md``): where validation labels exist, ``EarlyStopping(monitor="val_loss")`` was the better
    rule for supervised training in that study.

    Args:
        monitor: the gap callback's key to watch, without its prefix (one of :data:`MONITORABLE`).
        tolerance: relative band above the running minimum that does not count as a rise.
        patience: measurements above the band, in a row, that stop training.
        warmup: first measurements that never set the reference nor stop.
        layer: the watched layer whose key is read when the gap callback watches several layers.
        dirpath: directory of the recommended checkpoint; default ``<log_dir or default_root_dir>/checkpoints``.
        filename: file name of that checkpoint, without ``.ckpt``.
        save_weights: save the recommended weights (``False``: only ``best_epoch`` is reported).
        verbose: log each stop and recommendation on rank zero.

    Attributes:
        best_epoch: the recommended epoch (``-1`` before any finite measurement).
        stopped_epoch: the epoch after which the rule stopped training (``None`` if it did not).
        best_model_path: path of the saved recommended weights (``None`` until saved).

    Example:
        >>> stopper = RepresentationGapEarlyStopping(patience=3)
        >>> stopper.state_key
        "RepresentationGapEarlyStopping{'monitor': 'gap_norm', 'tolerance': 0.1, 'patience': 3, 'warmup': 2}"

    """

    def __init__(
        self,
        monitor: str = DEFAULT_MONITOR,
        tolerance: float = DEFAULT_TOLERANCE,
        patience: int = DEFAULT_PATIENCE,
        warmup: int = DEFAULT_WARMUP,
        layer: str | None = None,
        dirpath: str | None = None,
        filename: str = "repgap-best",
        save_weights: bool = True,
        verbose: bool = False,
    ) -> None:
        if monitor not in MONITORABLE:
            raise MisconfigurationException(f"`monitor` must be one of {MONITORABLE}, got {monitor!r}.")
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance < math.inf:
            raise MisconfigurationException(f"`tolerance` must be a finite number >= 0, got {tolerance!r}.")
        for name, value, minimum in (("patience", patience, 1), ("warmup", warmup, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise MisconfigurationException(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
        if not filename or os.sep in filename:
            raise MisconfigurationException(f"`filename` must be a plain file name, got {filename!r}.")
        self.monitor = monitor
        self.tolerance = float(tolerance)
        self.patience = patience
        self.warmup = warmup
        self.layer = layer
        self.dirpath = dirpath
        self.filename = filename
        self.save_weights = bool(save_weights)
        self.verbose = bool(verbose)
        self.state = RiseState()
        self.stopped_epoch: int | None = None
        self.best_model_path: str | None = None
        self._key: str | None = None
        self._gap: RepresentationGapCallback | None = None

    @property
    def best_epoch(self) -> int:
        """The recommended epoch (``-1`` before any finite measurement)."""
        return self.state.best_epoch

    @property
    def state_key(self) -> str:
        """Key of this callback's state in checkpoints."""
        return self._generate_state_key(
            monitor=self.monitor, tolerance=self.tolerance, patience=self.patience, warmup=self.warmup
        )

    def state_dict(self) -> dict[str, Any]:
        """Plain values: the rule's state, the stop epoch and the recommended checkpoint's path."""
        return {
            "state": asdict(self.state),
            "stopped_epoch": self.stopped_epoch,
            "best_model_path": self.best_model_path,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the rule mid-patience: a resumed run reaches the decision the uninterrupted one would."""
        self.state = RiseState(**state_dict.get("state", {}))
        self.stopped_epoch = state_dict.get("stopped_epoch")
        self.best_model_path = state_dict.get("best_model_path")

    # ------------------------------------------------------------------------------------------ hooks

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Find the gap callback and check that it logs the monitored key often enough, before training starts."""
        if stage != "fit":
            return
        self._gap = self._find_gap_callback(trainer)
        self._key = self._resolve_key(self._gap)
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

    def _resolve_key(self, gap: RepresentationGapCallback) -> str:
        sources = list(gap.layer) or ["input"]
        if self.monitor == "gap_ratio" and gap.train_query_probe == 0:
            raise MisconfigurationException(
                "RepresentationGapEarlyStopping(monitor='gap_ratio') needs RepresentationGapCallback("
                "train_query_probe > 0); it is 0, so `gap_ratio` is never logged."
            )
        if len(sources) == 1:
            return f"{gap.prefix}/{self.monitor}"
        if self.layer is None:
            raise MisconfigurationException(
                f"The RepresentationGapCallback watches {sources}; give RepresentationGapEarlyStopping(layer=...) "
                "to choose whose key to monitor."
            )
        return f"{gap.prefix}/{self.layer}/{self.monitor}"

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Apply the rule to this epoch's measurement (if the gap callback measured), save and stop as it says."""
        gap = self._gap
        if gap is None or self._key is None or self._should_skip(trainer, gap):
            return
        epoch = trainer.current_epoch
        raw = trainer.callback_metrics.get(self._key)
        value = math.nan if raw is None else float(raw)
        state, recommend, stop = rise_decision(
            self.state, epoch, value, tolerance=self.tolerance, patience=self.patience, warmup=self.warmup
        )
        # Every rank takes rank zero's decision (the logged values already agree; this makes it certain).
        state, recommend, stop = trainer.strategy.broadcast((state, recommend, stop), src=0)
        self.state = state
        if recommend:
            if self.save_weights:
                self._save(trainer)
            if self.verbose:
                rank_zero_info(f"RepresentationGapEarlyStopping: epoch {epoch} recommended ({self._key}={value:.4g}).")
        if stop:
            self.stopped_epoch = epoch
            trainer.should_stop = True
            if self.verbose:
                rank_zero_info(
                    f"RepresentationGapEarlyStopping: {self._key} above {1 + self.tolerance:g} x its minimum for "
                    f"{self.patience} measurements; stopped after epoch {epoch}, recommending epoch {state.best_epoch}."
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

    def _save(self, trainer: Trainer) -> None:
        """Save the current weights as the recommendation: temporary file, then an atomic rename on rank zero."""
        assert self.dirpath is not None
        path = os.path.join(self.dirpath, f"{self.filename}.ckpt")
        tmp = os.path.join(self.dirpath, f".{self.filename}.ckpt.tmp")
        trainer.save_checkpoint(tmp)
        trainer.strategy.barrier("RepresentationGapEarlyStopping.save")
        if trainer.is_global_zero:
            os.replace(tmp, path)
        trainer.strategy.barrier("RepresentationGapEarlyStopping.saved")
        self.best_model_path = path


__all__ = ["RepresentationGapEarlyStopping", "RiseState", "replay", "rise_decision"]
