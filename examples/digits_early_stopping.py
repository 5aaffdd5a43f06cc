"""Label-free early stopping on noisy labels: RepresentationGapEarlyStopping against val_loss and no stopping.

scikit-learn's bundled digits (1797 images of 8x8 pixels, no download) are split once into train (1200),
validation (300) and test (297). A fraction ``--noise`` of the training *and* validation labels is replaced by a
wrong class (40 % by default); the test labels stay clean and only score the kept weights. A small CNN is trained
three times from the same initial weights and the same data order, each run watching its penultimate layer
``features`` with ``RepresentationGapCallback``:

* ``RepresentationGapEarlyStopping()``: the label-free rule with the stopping study's defaults (``docs/stopping.md``).
  It stops when ``repgap/gap_norm`` has stayed far above its running minimum (more than the tolerance) for
  ``patience`` epochs (the network has started memorising the wrong labels) and keeps the weights of the last
  epoch within ``keep_tolerance`` of the minimum, before that rise (``best_model_path``, saved by the callback
  itself); a run without such a rise keeps its final weights;
* ``EarlyStopping(monitor="val_loss")`` with a best checkpoint on ``val_loss``: needs validation labels (noisy here);
* no stopping: the last epoch's weights.

The callback's probe passes do not consume the training RNG, so the runs are the same run until one stops. With
clean labels (``--noise 0``) the gap stays flat and the rule does not stop: a run that keeps generalising keeps
training. Runs on a CPU in a minute or two.

    python examples/digits_early_stopping.py [--noise 0.4] [--max-epochs 30]
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

from lightning_repgap import RepresentationGapCallback, RepresentationGapEarlyStopping


def digit_splits(noise: float, seed: int = 0) -> dict[str, TensorDataset]:
    """Train / val / test splits of the 1797 digits (pixels scaled to [0, 1]); train and val labels noised."""
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    rng = np.random.default_rng(seed)
    perm = torch.from_numpy(rng.permutation(len(y)))
    parts = {"train": perm[:1200], "val": perm[1200:1500], "test": perm[1500:]}
    out = {}
    for name, idx in parts.items():
        labels = y[idx].clone()
        if name != "test":  # the test labels stay clean: they only score the kept weights
            flip = torch.from_numpy(rng.random(len(idx)) < noise)
            labels[flip] = (labels[flip] + torch.from_numpy(rng.integers(1, 10, int(flip.sum())))) % 10
        out[name] = TensorDataset(x[idx], labels)
    return out


class DigitsCNN(pl.LightningModule):
    def __init__(self, width: int = 64, lr: float = 2e-3) -> None:
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
    rule: str, init: dict[str, torch.Tensor], data: dict[str, TensorDataset], args: argparse.Namespace, out: str
) -> dict:
    """Train from ``init`` under one stopping rule; test the weights it keeps and the last weights."""
    model = DigitsCNN()
    model.load_state_dict(init)
    pl.seed_everything(args.seed, verbose=False)  # the same shuffling order in every run
    gap = RepresentationGapCallback(layer="features", train_probe=768, train_query_probe=128, val_probe=300)
    callbacks: list[pl.Callback] = [gap]
    stopper = best = None
    if rule == "RepresentationGapEarlyStopping":
        stopper = RepresentationGapEarlyStopping(dirpath=os.path.join(out, rule))
        callbacks.append(stopper)
    elif rule == "val_loss":
        best = ModelCheckpoint(dirpath=os.path.join(out, rule), monitor="val_loss", mode="min")
        callbacks += [EarlyStopping(monitor="val_loss", mode="min", patience=4), best]
    logger = CSVLogger(out, name=rule, version=0)
    trainer = pl.Trainer(
        max_epochs=args.max_epochs,
        accelerator="cpu",
        callbacks=callbacks,
        logger=logger,
        enable_checkpointing=best is not None,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=10,
    )
    trainer.fit(model, DataLoader(data["train"], batch_size=64, shuffle=True), DataLoader(data["val"], batch_size=300))
    epochs_run = trainer.current_epoch
    test = DataLoader(data["test"], batch_size=300)
    acc_last = trainer.test(copy.deepcopy(model), test, verbose=False)[0]["test_acc"]
    path = stopper.best_model_path if stopper is not None else best.best_model_path if best is not None else None
    acc_kept = trainer.test(model, test, ckpt_path=path, verbose=False)[0]["test_acc"] if path else acc_last
    kept = torch.load(path, weights_only=False, map_location="cpu")["epoch"] if path else epochs_run - 1
    epochs: dict[str, dict[str, str]] = {}  # the CSV has one row per logging call: merge them per epoch
    with open(os.path.join(logger.log_dir, "metrics.csv")) as fh:
        for r in csv.DictReader(fh):
            epochs.setdefault(r["epoch"], {}).update({k: v for k, v in r.items() if v})
    return {
        "rule": rule,
        "stopped": epochs_run - 1,
        "kept": kept,
        "acc_kept": acc_kept,
        "acc_last": acc_last,
        "rows": [r for r in epochs.values() if "val_loss" in r],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noise", type=float, default=0.4, help="fraction of wrong train and val labels")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="log directory (default: a temporary one)")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # keep the runs' banners out of the way
    out = args.out or tempfile.mkdtemp(prefix="repgap-digits-")
    data = digit_splits(args.noise, args.seed)
    pl.seed_everything(args.seed, verbose=False)
    init = copy.deepcopy(DigitsCNN().state_dict())  # every run starts from these weights

    results = [run(rule, init, data, args, out) for rule in ("RepresentationGapEarlyStopping", "val_loss", "none")]

    print(f"\ndigits, {args.noise:.0%} wrong train/val labels, clean test labels; max_epochs={args.max_epochs}")
    print(f"{'rule':>30} {'stopped_epoch':>13} {'kept_epoch':>10} {'test_acc(kept)':>14} {'test_acc(last)':>14}")
    for r in results:
        print(f"{r['rule']:>30} {r['stopped']:>13d} {r['kept']:>10d} {r['acc_kept']:14.4f} {r['acc_last']:14.4f}")

    # The runs are the same run up to the first stop: check it, then print the longest run's epochs.
    first_stop = min(r["stopped"] for r in results)
    same = all(
        a[k] == b[k]
        for r in results[1:]
        for a, b in zip(results[0]["rows"][: first_stop + 1], r["rows"][: first_stop + 1], strict=True)
        for k in ("val_loss", "repgap/gap_norm")
    )
    print(f"\nthe runs are identical up to epoch {first_stop} (val_loss and gap_norm compared): {same}")
    longest = max(results, key=lambda r: len(r["rows"]))
    print(f"\n{'epoch':>5} {'val_loss':>8} {'val_acc':>7} {'gap_norm':>9} {'dim':>6} {'gap_ratio':>9}")
    for r in sorted(longest["rows"], key=lambda r: int(r["epoch"])):
        print(
            f"{int(r['epoch']):>5} {float(r['val_loss']):8.4f} {float(r['val_acc']):7.3f} "
            f"{float(r['repgap/gap_norm']):9.5f} {float(r['repgap/dim']):6.2f} {float(r['repgap/gap_ratio']):9.3f}"
        )


if __name__ == "__main__":
    main()
