"""Train with ``LightningCLI`` and configure ``RepresentationGapCallback`` from YAML only.

Nothing in this script mentions the callback: ``examples/cli_config.yaml`` adds it under ``trainer.callbacks`` with a
``class_path`` and its ``init_args`` (layer, probe sizes, fit settings), next to the label-free
``RepresentationGapEarlyStopping`` that reads ``repgap/gap_norm``. On the command line
``--trainer.callbacks.init_args.<arg>=...`` changes the *last* callback of the list (here the stopping rule, e.g.
``--trainer.callbacks.init_args.patience=5``); to change the gap callback,
edit the YAML or pass a second ``--config`` file. The model is a small MLP classifier with a ``backbone``
and the data are points on a 3-torus in R^32 (as in ``quickstart.py``). The CLI needs
``jsonargparse[signatures]``. After ``fit`` the script prints the callback's ``history``; the same values are in
the CSV logger's ``metrics.csv``.

    python examples/train_cli.py fit --config examples/cli_config.yaml
    python examples/train_cli.py fit --config examples/cli_config.yaml --trainer.max_epochs=2 \\
        --trainer.logger.init_args.save_dir=/tmp/repgap-cli
    python examples/train_cli.py fit --print_config --config examples/cli_config.yaml   # the resolved config
"""

from __future__ import annotations

import math
import os

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LightningCLI
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.stopping import RepresentationGapEarlyStopping


def torus_points(n: int, seed: int, ambient_dim: int = 32) -> TensorDataset:
    """Points on a 3-torus, curved into R^ambient_dim by one fixed embedding, with a smooth binary label."""
    g = torch.Generator().manual_seed(seed)
    angles = torch.rand(n, 3, generator=g) * 2 * math.pi
    circle = torch.cat([angles.cos(), angles.sin()], dim=1)
    embedding = torch.randn(6, ambient_dim, generator=torch.Generator().manual_seed(0))
    x = torch.tanh(circle @ embedding)
    y = (torch.sin(angles[:, 0] + angles[:, 1]) * torch.cos(angles[:, 2]) > 0).long()
    return TensorDataset(x, y)


class TorusDataModule(pl.LightningDataModule):
    """Train and validation splits drawn from disjoint seeds.

    Args:
        n_train: training points.
        n_val: validation points.
        batch_size: batch size of both loaders.
        seed: seed of the training split (the validation split uses ``seed + 1``).

    """

    def __init__(self, n_train: int = 8192, n_val: int = 2048, batch_size: int = 128, seed: int = 1) -> None:
        super().__init__()
        self.n_train, self.n_val, self.batch_size, self.seed = n_train, n_val, batch_size, seed

    def setup(self, stage: str) -> None:
        self.train_set = torus_points(self.n_train, self.seed)
        self.val_set = torus_points(self.n_val, self.seed + 1)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=4 * self.batch_size)


class TorusClassifier(pl.LightningModule):
    """An MLP whose hidden layers form the ``backbone`` that the callback watches.

    Args:
        in_dim: input width.
        width: hidden width.
        lr: Adam learning rate.

    """

    def __init__(self, in_dim: int = 32, width: int = 128, lr: float = 3e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.backbone = nn.Sequential(nn.Linear(in_dim, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
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
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


class RepGapCLI(LightningCLI):
    """``LightningCLI`` that prints what the YAML-configured ``RepresentationGapCallback`` measured."""

    def after_fit(self) -> None:
        if not self.trainer.is_global_zero:
            return
        for cb in self.trainer.callbacks:
            if isinstance(cb, RepresentationGapCallback):
                print_history(cb)
        for cb in self.trainer.callbacks:
            if isinstance(cb, RepresentationGapEarlyStopping):
                for key, tol, keep, warm in zip(cb.monitor, cb.tolerance, cb.keep_tolerance, cb.warmup, strict=True):
                    print(
                        f"RepresentationGapEarlyStopping(repgap/{key}): tolerance {tol:g}, keep tolerance {keep:g}, "
                        f"warm-up {warm}"
                    )
                print(
                    f"  best_epoch {cb.best_epoch}, stopped_epoch {cb.stopped_epoch} (None: did not stop), "
                    f"weights in {cb.best_model_path}"
                )
        stopper = self.trainer.early_stopping_callback
        if stopper is not None:
            print(f"EarlyStopping({stopper.monitor}): best {float(stopper.best_score):.5f}, ", end="")
            print(f"stopped_epoch {stopper.stopped_epoch} (0: did not stop early)")
        if self.trainer.logger is not None and self.trainer.logger.log_dir:
            print(f"logged to {os.path.join(self.trainer.logger.log_dir, 'metrics.csv')}")


def print_history(cb: RepresentationGapCallback) -> None:
    """One row per measurement from ``cb.history`` (keys ``repgap/<key>``, or ``repgap/<layer>/<key>``)."""
    print(f"\nRepresentationGapCallback(layer={cb.layer}, train_probe={cb.train_probe}, val_probe={cb.val_probe})")
    for layer in cb.layer:
        prefix = cb.prefix if len(cb.layer) == 1 else f"{cb.prefix}/{layer}"
        print(
            f"{layer:>10} {'epoch':>5} {'gap':>9} {'gap_norm':>9} {'dim [95% CI]':>19} {'R^2':>6} {'TwoNN':>6} "
            f"{'knn_acc':>7} {'gap_ratio':>9}"
        )
        for h in cb.history:
            v = {k.removeprefix(prefix + "/"): x for k, x in h.items()}
            ci = f"{v['dim']:.2f} [{v['dim_low']:.2f}, {v['dim_high']:.2f}]"
            print(
                f"{'':>10} {h['epoch']:>5} {v['gap']:9.4f} {v['gap_norm']:9.5f} {ci:>19} {v['law_r2']:6.3f} "
                f"{v['dim_twonn']:6.2f} {v.get('knn_acc', float('nan')):7.3f} {v.get('gap_ratio', float('nan')):9.3f}"
            )


def main() -> None:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    RepGapCLI(TorusClassifier, TorusDataModule, save_config_kwargs={"overwrite": True})


if __name__ == "__main__":
    main()
