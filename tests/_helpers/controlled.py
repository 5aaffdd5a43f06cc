"""A model whose representation gap follows a schedule, to test EarlyStopping on ``repgap/gap_norm``."""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule
from torch import nn


class NoisyFeatures(nn.Module):
    """Returns ``[x, alpha * h(x)]`` where ``h`` is a fixed pseudo-random function of the input.

    ``h(x)`` adds ``noise_dim`` directions that differ for every sample, so a larger ``alpha`` means held-out points
    sit farther from the bank: ``gap_norm`` grows with ``alpha`` deterministically.
    """

    def __init__(self, in_dim: int, noise_dim: int = 8) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.register_buffer("proj", torch.randn(in_dim, noise_dim, generator=g) * 100.0)
        self.alpha = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.alpha * torch.sin(x @ self.proj)], dim=1)


class ScheduledGapModel(LightningModule):
    """``backbone`` = :class:`NoisyFeatures` with ``alpha`` set from ``schedule[current_epoch]``."""

    def __init__(self, schedule: list[float], in_dim: int = 16) -> None:
        super().__init__()
        self.schedule = schedule
        self.backbone = NoisyFeatures(in_dim)
        self.head = nn.Linear(in_dim + 8, 2)

    def on_train_epoch_start(self) -> None:
        self.backbone.alpha = self.schedule[min(self.current_epoch, len(self.schedule) - 1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)
