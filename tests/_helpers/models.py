"""Small Lightning models and data for callback tests: a synthetic task on a low-dimensional manifold."""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

# The Trainer arguments every test run shares: no logger, checkpoints, progress bar, summary or sanity steps.
QUIET_TRAINER: dict[str, Any] = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
}


def manifold_task(n: int, *, latent_dim: int = 3, ambient: int = 16, seed: int = 0) -> TensorDataset:
    """Points on a smooth ``latent_dim``-manifold in R^ambient with a label from a nonlinear function of the latent."""
    g = torch.Generator().manual_seed(seed)
    proj_g = torch.Generator().manual_seed(1234)  # same embedding for every split
    z = torch.rand(n, latent_dim, generator=g) * 2 * math.pi
    features = torch.cat([torch.sin(z), torch.cos(z)], dim=1)
    proj = torch.randn(2 * latent_dim, ambient, generator=proj_g) / math.sqrt(2 * latent_dim)
    x = features @ proj
    y = (torch.sin(z).sum(dim=1) > 0).long()
    return TensorDataset(x.float(), y)


class MLP(LightningModule):
    """``backbone`` (the watched layer) followed by a linear ``head``."""

    def __init__(self, ambient: int = 16, width: int = 64, lr: float = 1e-2) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(ambient, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.head = nn.Linear(width, 2)
        self.lr = lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class ProbePassMLP(MLP):
    """The test MLP that knows whether a forward is the callback's probe pass (:attr:`in_probe_pass`).

    The probe pass is the forward outside ``validation_step`` while the trainer validates (the one when training starts
    runs while it trains; the validation loop's own forwards run inside ``validation_step``).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._in_step = False

    @property
    def in_probe_pass(self) -> bool:
        return self.trainer.validating and not self._in_step

    def validation_step(self, batch, batch_idx):
        self._in_step = True
        try:
            return super().validation_step(batch, batch_idx)
        finally:
            self._in_step = False


def loaders(n_train: int = 2048, n_val: int = 512, batch_size: int = 128, seed: int = 0):
    train = DataLoader(manifold_task(n_train, seed=seed), batch_size=batch_size, shuffle=True)
    val = DataLoader(manifold_task(n_val, seed=seed + 1), batch_size=batch_size)
    return train, val
