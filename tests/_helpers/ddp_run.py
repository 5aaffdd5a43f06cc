"""Train the test MLP with a given strategy and dump what the callback logged (run as a script for real DDP).

python tests/_helpers/ddp_run.py OUT_DIR DEVICES STRATEGY
"""

from __future__ import annotations

import json
import os
import sys

import lightning.pytorch as pl
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from _helpers.models import MLP, QUIET_TRAINER, loaders
from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.config import GapConfig


def main() -> None:
    out_dir, devices, strategy = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(1)
    pl.seed_everything(0)
    model = MLP(lr=0.0)  # frozen weights: every process count must measure the same network
    train, val = loaders(n_train=1536, n_val=301)  # odd: DistributedSampler pads the validation shards
    cb = RepresentationGapCallback(
        layer="backbone",
        train_probe=1024,
        val_probe=300,
        train_query_probe=200,
        snapshot_dir=os.path.join(out_dir, "snapshots"),
        snapshot_on="evaluation",
        config=GapConfig(n_bootstrap=50),
    )
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=devices,
        strategy=strategy,
        callbacks=[cb],
        **QUIET_TRAINER,
    )
    trainer.fit(model, train, val)
    with open(os.path.join(out_dir, f"history-rank{trainer.global_rank}.json"), "w") as fh:
        json.dump(cb.history, fh)
    with open(os.path.join(out_dir, f"timing-rank{trainer.global_rank}.json"), "w") as fh:
        json.dump(cb.last_timing, fh)
    # Lightning destroys the process group at exit only for NCCL; a gloo group left to the interpreter's teardown
    # can abort the process after fit ("terminate called without an active exception", SIGABRT: pytorch#190489).
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
