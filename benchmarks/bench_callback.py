"""Wall time the callback adds to a validation, as a ratio to (probe forward passes + one exact search).

Trains the same model twice for a few epochs, with and without ``RepresentationGapCallback``, and compares the
mean time per epoch. The denominator is measured in the same run: the probe forward passes alone (via
``embed_batches``) plus one ``k = 1`` search of all probe queries against the bank.

    python benchmarks/bench_callback.py [--train-probe 4096] [--val-probe 1024] [--width 512] [--epochs 4]
"""

from __future__ import annotations

import argparse
import time

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.capture import embed_batches, resolve_layers
from lightning_repgap.search import prepare, resolve_backend, search_prepared


class Net(pl.LightningModule):
    def __init__(self, in_dim: int, width: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Linear(in_dim, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width)
        )
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.backbone(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-2)


class EpochTimer(pl.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self._t = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking and hasattr(self, "_t"):
            self.times.append(time.perf_counter() - self._t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-probe", type=int, default=4096)
    p.add_argument("--val-probe", type=int, default=1024)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--in-dim", type=int, default=256)
    p.add_argument("--n-train", type=int, default=16384)
    p.add_argument("--epochs", type=int, default=4)
    args = p.parse_args()
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n_train + 4096, args.in_dim, generator=g)
    y = torch.randint(0, 10, (x.shape[0],), generator=g)
    train = DataLoader(TensorDataset(x[: args.n_train], y[: args.n_train]), batch_size=256, shuffle=True)
    val = DataLoader(TensorDataset(x[args.n_train :], y[args.n_train :]), batch_size=256)

    def run(with_cb: bool) -> tuple[list[float], RepresentationGapCallback | None]:
        pl.seed_everything(0, verbose=False)
        timer = EpochTimer()
        cb = RepresentationGapCallback(layer="backbone", train_probe=args.train_probe, val_probe=args.val_probe)
        callbacks = [timer, cb] if with_cb else [timer]
        trainer = pl.Trainer(
            max_epochs=args.epochs,
            accelerator="cpu",
            devices=1,
            callbacks=callbacks,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        if with_cb:
            hook = cb.on_validation_epoch_end

            def timed_hook(trainer, pl_module):
                t0 = time.perf_counter()
                hook(trainer, pl_module)
                hook_times.append(time.perf_counter() - t0)

            cb.on_validation_epoch_end = timed_hook  # type: ignore[method-assign]
        trainer.fit(Net(args.in_dim, args.width), train, val)
        return timer.times[1:], (cb if with_cb else None)  # first epoch warms up

    hook_times: list[float] = []
    base, _ = run(False)
    with_cb, cb = run(True)
    added = float(np.mean(with_cb) - np.mean(base))
    hook = float(np.median(hook_times[1:]))

    # Denominator, same run: forward passes over the probes, plus one k=1 search of every probe query.
    model = Net(args.in_dim, args.width).eval()
    assert cb is not None
    assert cb.probe_indices is not None
    layers = resolve_layers(model, "backbone")
    probe_x = {role: x[np.asarray(idx, dtype=np.int64)] for role, idx in cb.probe_indices.items() if idx}
    t0 = time.perf_counter()
    feats = {}
    for role, xs in probe_x.items():
        feats[role], _ = embed_batches(model, [(b,) for b in xs.split(256)], layers)
    t_forward = time.perf_counter() - t0
    queries = torch.cat([feats["queries"]["backbone"], feats["train_queries"]["backbone"]]).double().numpy()
    prep = prepare(feats["reference"]["backbone"].double().numpy(), queries)
    search_prepared(prep.reference32, prep.queries32, 1, backend=resolve_backend("auto"))
    t0 = time.perf_counter()
    search_prepared(prep.reference32, prep.queries32, 1, backend=resolve_backend("auto"))
    t_search = time.perf_counter() - t0
    print(f"epoch without callback {np.mean(base):.3f}s, with {np.mean(with_cb):.3f}s: added {added:.3f}s")
    print(f"callback's own timing: probe {cb.last_timing['probe']:.3f}s, compute {cb.last_timing['compute']:.3f}s")
    print(f"probe forward {t_forward:.3f}s + one search {t_search:.3f}s = {t_forward + t_search:.3f}s")
    print(f"callback hook wall time per validation (median): {hook:.3f}s")
    print(f"hook / (forward + search) = {hook / (t_forward + t_search):.2f}  (target <= 1.15)")
    print(f"epoch-time difference / (forward + search) = {added / (t_forward + t_search):.2f}")


if __name__ == "__main__":
    main()
