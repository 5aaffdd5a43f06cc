"""Quickstart: watch the representation gap of an MLP's hidden layer while it trains.

The data lie on a 3-dimensional manifold (a product of three circles) embedded in R^32; the label is a
nonlinear function of the latent angles. ``RepresentationGapCallback`` measures, after every validation epoch,
the gap from held-out representations of the ``backbone`` layer to the training ones, the dimension implied by
its decay, and the TwoNN / MLE cross-checks, and logs them under ``repgap/`` like any other metric. Runs on a
CPU in well under a minute.

    python examples/quickstart.py [--epochs 6]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import tempfile

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.stopping import RepresentationGapEarlyStopping

LATENT_DIM = 3


def make_split(n: int, seed: int) -> TensorDataset:
    """Points on a 3-torus in R^32 (one fixed embedding for all splits) with a smooth nonlinear label."""
    g = torch.Generator().manual_seed(seed)
    angles = torch.rand(n, LATENT_DIM, generator=g) * 2 * math.pi
    circle = torch.cat([angles.cos(), angles.sin()], dim=1)
    embedding = torch.randn(2 * LATENT_DIM, 32, generator=torch.Generator().manual_seed(0))
    x = torch.tanh(circle @ embedding)  # a curved, not linear, embedding of the manifold
    y = (torch.sin(angles[:, 0] + angles[:, 1]) * torch.cos(angles[:, 2]) > 0).long()
    return TensorDataset(x, y)


class Classifier(pl.LightningModule):
    def __init__(self, width: int = 128) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(32, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_epoch=True, on_step=False)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(dim=1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", default=None, help="log directory (default: a temporary one)")
    args = parser.parse_args()
    pl.seed_everything(0, verbose=False)
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    train = DataLoader(make_split(8192, seed=1), batch_size=128, shuffle=True)
    val = DataLoader(make_split(2048, seed=2), batch_size=512)
    gap = RepresentationGapCallback(layer="backbone", train_probe=4096, val_probe=1024)
    out = args.out or tempfile.mkdtemp(prefix="repgap-quickstart-")
    logger = CSVLogger(out, name="quickstart")
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        callbacks=[gap, RepresentationGapEarlyStopping()],  # label-free stopping: docs/stopping.md
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Classifier(), train, val)

    with open(os.path.join(logger.log_dir, "metrics.csv")) as fh:
        logged = list(csv.DictReader(fh))
    rows = [r for r in logged if r.get("repgap/gap")]
    val_acc = {r["epoch"]: r["val_acc"] for r in logged if r.get("val_acc")}
    print(f"\nlogged to {logger.log_dir}/metrics.csv (latent dimension of the data: {LATENT_DIM})\n")
    print(
        f"{'epoch':>5} {'val_acc':>7} {'gap_norm':>9} {'dim [95% CI]':>20} {'R^2':>6} {'TwoNN':>6} {'MLE':>6} "
        f"{'gap_ratio':>9} {'knn_acc':>7}"
    )
    for r in rows:
        ci = f"{float(r['repgap/dim']):.2f} [{float(r['repgap/dim_low']):.2f}, {float(r['repgap/dim_high']):.2f}]"
        print(
            f"{r['epoch']:>5} {float(val_acc.get(r['epoch'], 'nan')):7.3f} {float(r['repgap/gap_norm']):9.5f} "
            f"{ci:>20} {float(r['repgap/law_r2']):6.3f} {float(r['repgap/dim_twonn']):6.2f} "
            f"{float(r['repgap/dim_mle']):6.2f} {float(r['repgap/gap_ratio']):9.3f} {float(r['repgap/knn_acc']):7.3f}"
        )


if __name__ == "__main__":
    main()
