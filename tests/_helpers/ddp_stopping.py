"""Two DDP ranks whose gap callbacks log different values: both must take rank zero's stopping decision.

Rank zero's checkpoint IO fails (``OSError``) on epoch 1's save: every rank must carry on past it, together.

python tests/_helpers/ddp_stopping.py OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys

import lightning.pytorch as pl
import torch
from lightning.pytorch.plugins import TorchCheckpointIO
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.stopping import RepresentationGapEarlyStopping

# Rank 0 recommends epoch 2 and stops after epoch 5; rank 1's values alone would stop after epoch 3.
VALUES = {0: [2.0, 1.0, 1.02, 1.5, 1.6, 1.7, 1.8, 1.9], 1: [1.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]}


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Linear(4, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.backbone(x))

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class FlakyIO(TorchCheckpointIO):
    """Fails epoch 1's write (only rank zero writes)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        if checkpoint["epoch"] == 1:
            raise OSError(28, "No space left on device")
        super().save_checkpoint(checkpoint, path, storage_options)


class Replayed(RepresentationGapCallback):
    def on_train_start(self, trainer, pl_module):
        pass  # replays recorded values: no probes to draw from the tiny data set, so no setup-time probe pass

    def on_validation_epoch_end(self, trainer, pl_module):
        value = VALUES[trainer.global_rank][trainer.current_epoch]
        pl_module.log("repgap/gap_norm", value, on_epoch=True, sync_dist=False)


def main() -> None:
    out = sys.argv[1]
    torch.set_num_threads(1)
    data = TensorDataset(torch.randn(16, 4), torch.randint(0, 2, (16,)))
    stopper = RepresentationGapEarlyStopping(
        monitor="gap_norm", tolerance=0.1, patience=3, warmup=0, dirpath=os.path.join(out, "ckpt")
    )
    trainer = pl.Trainer(
        max_epochs=8,
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        callbacks=[Replayed(layer="backbone", train_probe=64, val_probe=8), stopper],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        plugins=[FlakyIO()],
    )
    trainer.fit(Tiny(), DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    trainer.strategy.barrier()
    result = {
        "best_epoch": stopper.best_epoch,
        "stopped_epoch": stopper.stopped_epoch,
        "epochs_run": trainer.current_epoch,
        "files": sorted(os.listdir(os.path.join(out, "ckpt"))),
        "best_model_path": stopper.best_model_path,
    }
    with open(os.path.join(out, f"rank{trainer.global_rank}.json"), "w") as fh:
        json.dump(result, fh)
    # Lightning destroys the process group at exit only for NCCL; a gloo group left to the interpreter's teardown
    # can abort the process after fit ("terminate called without an active exception", SIGABRT: pytorch#190489).
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
