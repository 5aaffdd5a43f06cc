"""Send a matplotlib figure to every logger of a Trainer that can hold images, at the step of its scalars.

Lightning logs epoch-level values (what the callback logs in ``on_validation_epoch_end``) at
``fit_loop.epoch_loop._batches_that_stepped``, which at the end of a training epoch is one less than
``trainer.global_step``; a figure logged at ``global_step`` would land one step after its scalars. So figures use
the same step as the scalars (:func:`logged_step`).

Loggers: TensorBoard (``add_figure``), Weights & Biases (``log_image``, an RGB array: no extra dependency of wandb),
MLflow (``log_figure`` as an artifact ``<tag>/step=<step>.png``) and CSV (a PNG next to ``metrics.csv``, in
``figures/``, written atomically). Other loggers get nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger


def logged_step(trainer: Trainer) -> int:
    """The step Lightning gives to values logged at epoch level right now."""
    epoch_loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    step = getattr(epoch_loop, "_batches_that_stepped", None)
    return int(step) if isinstance(step, int) else int(trainer.global_step)


def image_loggers(trainer: Trainer) -> list[Any]:
    """The trainer's loggers that :func:`log_figure` writes to."""
    kinds = (TensorBoardLogger, WandbLogger, MLFlowLogger, CSVLogger)
    return [lg for lg in trainer.loggers if isinstance(lg, kinds)]


def _rgb(fig: Any) -> Any:
    import numpy as np

    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _safe(tag: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", tag)


def _save_png_atomically(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=100)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def log_figure(trainer: Trainer, tag: str, fig: Any) -> None:
    """Log ``fig`` under ``tag`` to every image-capable logger, at the step of the epoch's scalars.

    Args:
        trainer: the running trainer (call on global rank zero only).
        tag: e.g. ``"repgap/gap_curve"``.
        fig: a matplotlib figure; not closed here.

    Raises:
        OSError: the first logger's write error, raised after every logger was tried (one logger's full disk or
            permissions do not cost the others the figure).

    """
    step = logged_step(trainer)
    failure: OSError | None = None
    for lg in image_loggers(trainer):
        try:
            _log_to(lg, tag, fig, step)
        except OSError as err:  # noqa: PERF203 (raised below, once the loggers after this one have the figure)
            failure = failure or err
    if failure is not None:
        raise failure


def _log_to(lg: Any, tag: str, fig: Any, step: int) -> None:
    if isinstance(lg, TensorBoardLogger):
        lg.experiment.add_figure(tag, fig, global_step=step, close=False)
    elif isinstance(lg, WandbLogger):
        lg.log_image(key=tag, images=[_rgb(fig)], step=step)
    elif isinstance(lg, MLFlowLogger):
        lg.experiment.log_figure(lg.run_id, fig, f"{_safe(tag)}/step={step:08d}.png")
    else:  # CSVLogger: next to metrics.csv
        _save_png_atomically(fig, Path(lg.log_dir) / "figures" / f"{_safe(tag)}-step={step:08d}.png")


__all__ = ["image_loggers", "log_figure", "logged_step"]
