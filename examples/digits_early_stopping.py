"""Early stopping on the representation gap versus on the validation loss, with a small CNN on 8x8 digits.

scikit-learn's bundled digits (1797 images of 8x8 pixels, no download) are split once into train (1200),
validation (300) and test (297). A small CNN is trained twice from the same initial weights and the same data
order. Both runs watch the CNN's penultimate layer ``features`` with ``RepresentationGapCallback``; one stops with
``EarlyStopping(monitor="repgap/gap_norm")``, the other with ``EarlyStopping(monitor="val_loss")``, and each keeps
the best checkpoint under its own criterion. The test split is never used for stopping: it only scores the
restored checkpoints. The callback's probe passes do not consume the training RNG, so the two runs are the same
run until the first one stops; only the stopping rule differs.

Probe sizes fit the small dataset: a bank of 768 training images (``train_probe``; the gap-law fit needs at least
4 * ``fit_min_size`` = 256), 128 further training images for ``gap_ratio`` and all 300 validation images as
queries. Runs on a CPU in about a minute.

What it shows (seed 0): on this task ``gap_norm`` is lowest after the first epoch and then rises slowly, at every
layer of the CNN, while the validation loss keeps falling for another ten epochs. Stopping on ``gap_norm`` therefore
ends training after ``1 + patience`` epochs; the weights at that point are decent, but its best checkpoint is an
almost untrained network. The per-epoch table shows why: a normalised gap is not a loss, and for a classifier it
need not fall while the classes separate. ``knn_acc`` tracks ``val_acc`` much more closely here.

    python examples/digits_early_stopping.py [--max-epochs 30] [--patience 4]
"""

from __future__ import annotations

import argparse
import copy
import csv
import logging
import os
import tempfile

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_repgap.callback import RepresentationGapCallback


def digit_splits(seed: int = 0) -> dict[str, TensorDataset]:
    """Train / val / test splits of the 1797 digits (pixel values scaled to [0, 1])."""
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    parts = {"train": perm[:1200], "val": perm[1200:1500], "test": perm[1500:]}
    return {name: TensorDataset(x[idx], y[idx]) for name, idx in parts.items()}


class DigitsCNN(pl.LightningModule):
    def __init__(self, width: int = 64, lr: float = 1e-3) -> None:
        super().__init__()
        self.lr = lr
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 32 x 4 x 4
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, width),
            nn.ReLU(),
        )
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

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

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_acc", (self(x).argmax(dim=1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def run(
    monitor: str, init: dict[str, torch.Tensor], data: dict[str, TensorDataset], args: argparse.Namespace, out: str
) -> dict:
    """Train from ``init`` until ``EarlyStopping(monitor)`` fires; test the best checkpoint under ``monitor``."""
    model = DigitsCNN()
    model.load_state_dict(init)
    pl.seed_everything(args.seed, verbose=False)  # the same shuffling order in both runs
    name = monitor.replace("/", "_")
    gap = RepresentationGapCallback(layer="features", train_probe=768, train_query_probe=128, val_probe=300)
    # A repgap/ key is NaN in an epoch whose measurement is undefined (the fault policy): that must not stop training.
    stop = EarlyStopping(
        monitor=monitor, mode="min", patience=args.patience, check_finite=not monitor.startswith("repgap/")
    )
    best = ModelCheckpoint(dirpath=os.path.join(out, name, "checkpoints"), monitor=monitor, mode="min")
    logger = CSVLogger(out, name=name, version=0)
    trainer = pl.Trainer(
        max_epochs=args.max_epochs,
        accelerator="cpu",
        callbacks=[gap, stop, best],
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=10,
    )
    loader = DataLoader(data["train"], batch_size=64, shuffle=True)
    trainer.fit(model, loader, DataLoader(data["val"], batch_size=300))
    epochs_run = trainer.current_epoch  # epochs completed
    last_model = copy.deepcopy(model)
    test = DataLoader(data["test"], batch_size=300)
    acc_last = trainer.test(last_model, test, verbose=False)[0]["test_acc"]
    acc_best = trainer.test(model, test, ckpt_path="best", verbose=False)[0]["test_acc"]
    best_epoch = torch.load(best.best_model_path, weights_only=True, map_location="cpu")["epoch"]
    epochs: dict[str, dict[str, str]] = {}  # the CSV has one row per logging call: merge them per epoch
    with open(os.path.join(logger.log_dir, "metrics.csv")) as fh:
        for r in csv.DictReader(fh):
            epochs.setdefault(r["epoch"], {}).update({k: v for k, v in r.items() if v})
    return {
        "monitor": monitor,
        "stopped": epochs_run - 1,
        "best_epoch": best_epoch,
        "acc_best": acc_best,
        "acc_last": acc_last,
        "rows": [r for r in epochs.values() if "val_loss" in r],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=4, help="EarlyStopping patience, in validation epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="log directory (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # keep the two runs' banners out of the way
    out = args.out or tempfile.mkdtemp(prefix="repgap-digits-")
    data = digit_splits(args.seed)
    pl.seed_everything(args.seed, verbose=False)
    init = copy.deepcopy(DigitsCNN().state_dict())  # both runs start from these weights

    results = [run(monitor, init, data, args, out) for monitor in ("repgap/gap_norm", "val_loss")]

    sizes = ", ".join(f"{k} {len(v)}" for k, v in data.items())
    print(f"\ndigits: {sizes}; max_epochs={args.max_epochs}, patience={args.patience}; logs in {out}\n")
    print(f"{'monitor':>16} {'stopped_epoch':>13} {'best_epoch':>10} {'test_acc(best)':>14} {'test_acc(last)':>14}")
    for r in results:
        print(
            f"{r['monitor']:>16} {r['stopped']:>13d} {r['best_epoch']:>10d} {r['acc_best']:14.4f} {r['acc_last']:14.4f}"
        )

    # The table runs to the longer run's end: both runs are the same run up to the first stop (checked below).
    by_epoch: dict[int, dict[str, str]] = {}
    same = True
    for r in results:
        for row in r["rows"]:
            epoch = int(row["epoch"])
            if epoch in by_epoch:
                same &= all(by_epoch[epoch][k] == row[k] for k in ("val_loss", "repgap/gap_norm"))
            by_epoch.setdefault(epoch, row)
    first_stop = min(r["stopped"] for r in results)
    print(f"\nthe two runs are identical up to epoch {first_stop} (val_loss and gap_norm compared): {same}")
    notes: dict[int, list[str]] = {}
    for r in results:
        notes.setdefault(r["best_epoch"], []).append(f"best {r['monitor'].split('/')[-1]}")
        notes.setdefault(r["stopped"], []).append(f"stop on {r['monitor'].split('/')[-1]}")
    print(
        f"{'epoch':>5} {'train_loss':>10} {'val_loss':>8} {'val_acc':>7} {'gap_norm':>9} {'dim [95% CI]':>19} "
        f"{'R^2':>6} {'TwoNN':>6} {'knn_acc':>7} {'gap_ratio':>9}  notes"
    )
    for epoch, r in sorted(by_epoch.items()):
        ci = f"{float(r['repgap/dim']):.2f} [{float(r['repgap/dim_low']):.2f}, {float(r['repgap/dim_high']):.2f}]"
        print(
            f"{epoch:>5} {float(r.get('train_loss', 'nan')):10.4f} {float(r['val_loss']):8.4f} "
            f"{float(r['val_acc']):7.3f} {float(r['repgap/gap_norm']):9.5f} {ci:>19} {float(r['repgap/law_r2']):6.3f} "
            f"{float(r['repgap/dim_twonn']):6.2f} {float(r['repgap/knn_acc']):7.3f} "
            f"{float(r['repgap/gap_ratio']):9.3f}  {', '.join(notes.get(epoch, []))}"
        )


if __name__ == "__main__":
    main()
