"""Two gloo ranks of a real ``Trainer.fit`` whose callback check fails on one rank only (``test_callback_ddp.py``).

Each rank is a process of :func:`torch.multiprocessing.spawn` that Lightning sees as launched externally (as under
``torchrun``: ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` set), so that a rank's exception stays its own (no launcher
kills its peers) and each rank saves its own outcome to ``OUT_DIR/<case>-rank<r>.json``: the error's type and message
(or none), the training steps run, the seconds the fit took, and the callback's history. Cases:

- ``"layer"``: the watched layer exists on rank 0 only (the layer check at ``setup``);
- ``"bank"``: ``reference_fn`` returns ``None`` on rank 0 (not ready: checked later) and a bank of the wrong width on
  rank 1 (the check when training starts);
- ``"measure"``: ``reference_fn``'s bank is right on both ranks at the start of training, and on rank 1 changes width
  at the first measurement (a measurement fault, survived with ``strict=False``); right again at the second.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import time
import traceback

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch import nn

from _helpers.models import MLP, QUIET_TRAINER, loaders
from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.config import GapConfig

#: The process group's timeout in these runs: a rank left waiting fails within it, not after gloo's half hour.
TIMEOUT_S = 40
WORLD = 2


def _bank(case: str, rank: int, pl_module: pl.LightningModule) -> torch.Tensor | None:
    training = pl_module.trainer.training  # the call when training starts; measurements run in validation
    if case == "bank":
        return None if rank == 0 else torch.randn(256, 3)
    epoch = pl_module.current_epoch
    width = 32 if (rank == 1 and not training and epoch == 0) else 64
    return pl_module.backbone(torch.randn(256, 16))[:, :width]


def run(rank: int, port: int, out_dir: str, case: str) -> None:
    """One rank of one case; never raises (the outcome is saved), and leaves with ``os._exit``."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD), RANK=str(rank), LOCAL_RANK=str(rank)
    )
    os.environ["NODE_RANK"] = "0"
    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)
    model = MLP(lr=0.0)
    if case == "layer" and rank == 0:
        model.extra = nn.Identity()  # no parameters: DDP's own checks see the same model on both ranks
    cb = RepresentationGapCallback(
        layer="extra" if case == "layer" else "backbone",
        val_probe=64,
        train_query_probe=0,
        reference_fn=None if case == "layer" else (lambda m: _bank(case, rank, m)),
        config=GapConfig(n_bootstrap=0),
        log_figures=False,
        strict=False,
    )
    trainer = pl.Trainer(
        max_epochs=2 if case == "measure" else 1,
        accelerator="cpu",
        devices=WORLD,
        strategy=DDPStrategy(process_group_backend="gloo", timeout=datetime.timedelta(seconds=TIMEOUT_S)),
        callbacks=[cb],
        **QUIET_TRAINER,
        limit_train_batches=2,
    )
    outcome: dict[str, object] = {"error": None, "message": ""}
    t0 = time.perf_counter()
    try:
        trainer.fit(model, *loaders(n_train=512, n_val=128, batch_size=64))
    except Exception as err:
        outcome.update(error=type(err).__name__, message=str(err), trace=traceback.format_exc())
    outcome.update(seconds=time.perf_counter() - t0, steps=trainer.global_step)
    outcome["history"] = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in h.items()} for h in cb.history
    ]
    with open(os.path.join(out_dir, f"{case}-rank{rank}.json"), "w") as fh:
        json.dump(outcome, fh)
    # The group may be half torn down on one side (a rank that failed): leave without the interpreter's teardown,
    # as the gloo gather test does; every outcome is on disk.
    os._exit(0)
