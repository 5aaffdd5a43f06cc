"""What a measurement of the callback leaves behind on global rank zero: its figures and its snapshots.

Kept apart from :mod:`lightning_repgap.callback` so that the callback's module stays about scheduling and measuring:
these functions read the callback's settings and its pending snapshots (``cb._pending_snapshot``), and hold no state
of their own. Every one is a no-op on the other ranks.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import numpy as np
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from lightning_repgap import _callback_faults as _cf
from lightning_repgap._faults import FigureIOError, SnapshotIOError, SnapshotOverflowError
from lightning_repgap._figures import image_loggers, log_figure
from lightning_repgap.metric import RepresentationGap

if TYPE_CHECKING:
    from lightning_repgap.callback import RepresentationGapCallback

__all__ = ["ROLES", "after_compute", "log_profile_figure", "write_pending"]

log = logging.getLogger("lightning_repgap.callback")

#: The probe roles, in the order of the metric's update arguments.
ROLES = ("reference", "queries", "train_queries")


def log_profile_figure(cb: RepresentationGapCallback, trainer: Trainer, values: dict[str, float]) -> None:
    """The per-layer profile of a measurement's ``values`` (several layers) as a figure, to every image logger."""
    if not image_loggers(trainer):
        return
    from lightning_repgap.plot import plot_layer_profile

    rows = cb._profile_rows(values)
    try:
        fig, _ = plot_layer_profile(
            [r["layer"] for r in rows],
            [r["gap_norm"] for r in rows],
            [r["dim"] for r in rows],
            dim_low=[r["dim_low"] for r in rows],
            dim_high=[r["dim_high"] for r in rows],
            title=f"epoch {trainer.current_epoch}",
        )
    except ModuleNotFoundError as err:  # matplotlib missing (no layer's curve was drawn to find out): as below
        _cannot_draw(cb, err)
        return
    _send_figure(cb, trainer, f"{cb.prefix}/layer_profile", fig)


def after_compute(
    cb: RepresentationGapCallback,
    trainer: Trainer,
    pl_module: LightningModule,
    layer: str,
    metric: RepresentationGap,
    result: dict[str, float],
    indices: dict[str, list[int]],
) -> None:
    """Rank-zero side effects of a measurement: the figure and the snapshot."""
    if not trainer.is_global_zero:
        return
    if cb.log_figures and metric.last_result is not None:
        _log_curve_figure(cb, trainer, layer, metric)
    if cb.snapshot_dir is not None and metric.last_inputs is not None:
        inputs = metric.last_inputs
        arrays: dict[str, Any] = {"reference": inputs.reference, "queries": inputs.queries}
        if inputs.train_queries is not None:
            arrays["train_queries"] = inputs.train_queries
        if inputs.reference_labels is not None and inputs.query_labels is not None:
            arrays["reference_labels"] = inputs.reference_labels
            arrays["query_labels"] = inputs.query_labels
        for role, key in zip(ROLES, ("reference_index", "query_index", "train_index"), strict=True):
            if indices[role] and not (role == "reference" and cb.reference_fn is not None):
                arrays[key] = np.sort(np.asarray(indices[role], dtype=np.int64))
        metadata = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "layer": layer,
            "metrics": result,
            "config": cb.config.to_dict(),
            "probe_sizes": {role: len(v) for role, v in indices.items()},
        }
        name = f"epoch={trainer.current_epoch:04d}-step={trainer.global_step:08d}-{_safe(layer)}"
        cb._pending_snapshot = [p for p in cb._pending_snapshot if p[0] != name]
        cb._pending_snapshot.append((name, arrays, metadata))
        if cb.snapshot_on == "evaluation":
            write_pending(cb, trainer)


def write_pending(cb: RepresentationGapCallback, trainer: Trainer) -> None:
    """Write the pending snapshots (rank zero; the other ranks drop theirs), surviving I/O errors."""
    if not trainer.is_global_zero or cb.snapshot_dir is None:
        cb._pending_snapshot = []
        return
    from lightning_repgap.snapshot import write_snapshot

    pending, cb._pending_snapshot = cb._pending_snapshot, []
    for name, arrays, metadata in pending:
        overflow = _cf.snapshot_overflow(arrays, cb.snapshot_dtype)
        if overflow is not None:
            cb._faults.survive_io(SnapshotOverflowError(f"snapshot {name!r} not written: {overflow}"), "snapshot")
            continue
        try:
            path = write_snapshot(cb.snapshot_dir, name, arrays, metadata, dtype=cb.snapshot_dtype)
        except OSError as err:  # full disk, permissions: the write is atomic, earlier snapshots are intact
            fault = SnapshotIOError(f"snapshot {name!r} could not be written: {err}.")
            fault.__cause__ = err  # strict mode may hold it and raise it later, outside this block
            cb._faults.survive_io(fault, "snapshot")
            continue
        log.debug("repgap snapshot written to %s", path)


def _log_curve_figure(cb: RepresentationGapCallback, trainer: Trainer, layer: str, metric: RepresentationGap) -> None:
    if not image_loggers(trainer):
        return
    try:
        fig, _ = metric.plot()
    except ModuleNotFoundError as err:
        _cannot_draw(cb, err)
        return
    _send_figure(cb, trainer, cb._key(layer, "gap_curve"), fig)


def _cannot_draw(cb: RepresentationGapCallback, err: ModuleNotFoundError) -> None:
    """Without matplotlib: say so once and draw no more figures; training goes on."""
    rank_zero_warn(f"RepresentationGapCallback(log_figures=True) cannot draw: {err}")
    cb.log_figures = False


def _send_figure(cb: RepresentationGapCallback, trainer: Trainer, tag: str, fig: Any) -> None:
    """Log ``fig`` to every image logger and close it; a failed write is survived as a :class:`FigureIOError`.

    Only global rank zero writes figures: an error here that ended the fit would also leave the other ranks waiting
    for it in the broadcast of the values (until the process group's timeout). In strict mode the fault is held
    (:meth:`~lightning_repgap._faults.FaultPolicy.holding_io`) and raised on every rank after that broadcast.
    """
    import matplotlib.pyplot as plt

    try:
        log_figure(trainer, tag, fig)
    except OSError as err:  # full disk, permissions: the scalars are logged, only this figure is lost
        fault = FigureIOError(f"figure {tag!r} could not be written: {err}.")
        fault.__cause__ = err  # strict mode may hold it and raise it later, outside this block
        cb._faults.survive_io(fault, "figure")
    finally:
        plt.close(fig)


def _safe(name: str) -> str:
    """A layer name as a file-name component."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "layer"
