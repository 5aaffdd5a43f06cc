"""One epoch of the test MLP under 2-process DDP with fewer probe rows than ranks; dump what the callback logged.

python tests/_helpers/ddp_tiny_probe.py OUT_DIR DEVICES CAPTURE_VALIDATION(0|1)

Writes ``history-rank<r>.json`` (the logged values), ``config-rank<r>.json`` (the metric's analysis settings) and
``inputs-rank<r>.npz`` (the gathered, index-sorted inputs of the last ``compute``).
"""

from __future__ import annotations

import json
import os
import sys

import lightning.pytorch as pl
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from _helpers.models import MLP, QUIET_TRAINER, loaders
from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.config import GapConfig


def main() -> None:
    out_dir, devices, capture = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    torch.set_num_threads(1)
    pl.seed_everything(0)
    model = MLP(lr=0.0)  # frozen weights: every process count must measure the same network
    train, val = loaders(n_train=256, n_val=8, batch_size=64)
    cb = RepresentationGapCallback(
        layer="backbone",
        train_probe=128,
        val_probe=1,  # one validation row and one training query for two ranks: one rank's share is empty
        train_query_probe=1,
        capture_validation=capture,
        config=GapConfig(n_bootstrap=0),
        strict=False,  # one query is below MIN_QUERIES: the callback logs what is defined and NaN for the fit
    )
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        callbacks=[cb],
        **QUIET_TRAINER,
        limit_train_batches=1,
    )
    trainer.fit(model, train, val)
    rank = trainer.global_rank
    with open(os.path.join(out_dir, f"history-rank{rank}.json"), "w") as fh:
        json.dump(cb.history, fh)
    metric = cb._metric("backbone")
    with open(os.path.join(out_dir, f"config-rank{rank}.json"), "w") as fh:
        json.dump(metric.config.to_dict(), fh)
    inputs = metric.last_inputs
    keys = ("reference", "queries", "train_queries", "reference_labels", "query_labels")
    arrays = {k: getattr(inputs, k) for k in keys}
    np.savez(os.path.join(out_dir, f"inputs-rank{rank}.npz"), **arrays)
    # Lightning destroys the process group at exit only for NCCL; a gloo group left to the interpreter's teardown
    # can abort the process after fit ("terminate called without an active exception", SIGABRT: pytorch#190489).
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
