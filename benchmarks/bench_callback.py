"""Wall time the callback adds to a validation, as a ratio to (probe forward passes + one exact search).

Trains the same model twice for a few epochs, with and without ``RepresentationGapCallback``, and compares the
mean time per epoch. The denominator is measured in the same run: the probe forward passes alone (via
``embed_batches``) plus one ``k = 1`` search of all probe queries against the bank.

    python benchmarks/bench_callback.py [--train-probe 4096] [--val-probe 1024] [--width 512] [--epochs 4]

``--table`` instead times where a validation's measurement goes for a ResNet-18-sized CNN on 32x32 images and a
BERT-base-sized encoder (both in plain torch, random weights and data, nothing downloaded): probe forward passes,
the search, and the rest of the hook (fits, bootstrap, gather, logging), with the validation probe embedded by its
own pass (``capture_validation=False``, before) and read off the validation loop (after), runs alternated:

    python benchmarks/bench_callback.py --table [--models resnet18,bert] [--repeats 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_repgap import functional
from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.capture import embed_batches, resolve_layers
from lightning_repgap.config import GapConfig
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


# ------------------------------------------------------------------------------------------- the overhead table


class _Block(nn.Module):
    """ResNet basic block (two 3x3 convolutions, batch norm, identity or 1x1 projection shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.short(x))


def resnet18_backbone() -> nn.Module:
    """ResNet-18 for 32x32 inputs (CIFAR stem: 3x3 convolution, no max-pool): 11.2 M parameters, 512 channels."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [_Block(cin, cout, stride), _Block(cout, cout, 1)]
        cin = cout
    return nn.Sequential(*layers)


class BertSized(nn.Module):
    """BERT-base shape: 30522-token embedding, 12 post-norm layers of width 768, 12 heads, 3072 hidden (110 M)."""

    def __init__(self, seq_len: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(30522, 768)
        self.pos = nn.Parameter(torch.zeros(1, seq_len, 768))
        layer = nn.TransformerEncoderLayer(768, 12, 3072, dropout=0.1, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 12, enable_nested_tensor=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embed(tokens) + self.pos)


class Classifier(pl.LightningModule):
    """A backbone, then mean pooling and a linear head; ``backbone`` is the watched layer."""

    def __init__(self, backbone: nn.Module, width: int, pool_dims: tuple[int, ...]) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(width, 10)
        self.pool_dims = pool_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x).mean(dim=self.pool_dims))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


#: Per model: the module, its inputs, the pooling of the watched layer, and probe sizes that keep a run to minutes.
MODELS: dict[str, dict[str, Any]] = {
    "resnet18": {"train_probe": 2048, "val_probe": 512, "batch": 128, "pooling": "mean", "width": 512},
    "bert": {"train_probe": 256, "val_probe": 128, "batch": 32, "pooling": "tokens_mean", "seq_len": 32, "width": 768},
}


def _model_and_data(name: str) -> tuple[pl.LightningModule, TensorDataset, TensorDataset]:
    spec = MODELS[name]
    g = torch.Generator().manual_seed(0)
    n_train, n_val = spec["train_probe"] + spec["val_probe"], spec["val_probe"]
    if name == "resnet18":
        model = Classifier(resnet18_backbone(), 512, (2, 3))
        x = torch.randn(n_train + n_val, 3, 32, 32, generator=g)
    else:
        model = Classifier(BertSized(spec["seq_len"]), 768, (1,))
        x = torch.randint(0, 30522, (n_train + n_val, spec["seq_len"]), generator=g)
    y = torch.randint(0, 10, (x.shape[0],), generator=g)
    return model, TensorDataset(x[:n_train], y[:n_train]), TensorDataset(x[n_train:], y[n_train:])


def _one_run(name: str, capture: bool) -> dict[str, float]:
    """Fit for one epoch of 2 training batches; the split of its validation's hook time."""
    spec = MODELS[name]
    # One-time costs (imports, the per-width GEMM library probe) are paid here, not in the timed measurement.
    g = torch.Generator().manual_seed(1)
    functional.representation_gap(
        torch.randn(512, spec["width"], generator=g), torch.randn(64, spec["width"], generator=g)
    )
    pl.seed_everything(0, verbose=False)
    model, train_set, val_set = _model_and_data(name)
    train = DataLoader(train_set, batch_size=spec["batch"], shuffle=True)
    val = DataLoader(val_set, batch_size=spec["batch"])
    cb = RepresentationGapCallback(
        layer="backbone",
        train_probe=spec["train_probe"],
        val_probe=spec["val_probe"],
        pooling=spec["pooling"],
        config=GapConfig(),
        log_figures=False,
        capture_validation=capture,
    )
    # Wall and CPU seconds (this process, all threads: far less sensitive to other jobs on a shared host).
    spent: dict[str, list[float]] = {k: [0.0, 0.0] for k in ("validation_loop", "probe_passes", "search", "hook")}

    def clock(key: str, fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[key][0] += time.perf_counter() - t0
                spent[key][1] += time.process_time() - c0

        return timed

    class Clock(pl.Callback):
        def on_validation_epoch_start(self, trainer, pl_module):
            self.t = (time.perf_counter(), time.process_time())

        def on_validation_epoch_end(self, trainer, pl_module):  # runs before the measuring callback's hook
            spent["validation_loop"] = [time.perf_counter() - self.t[0], time.process_time() - self.t[1]]

    build_curve = functional.build_curve
    cb.on_validation_epoch_end = clock("hook", cb.on_validation_epoch_end)  # type: ignore[method-assign]
    cb._embed_probes = clock("probe_passes", cb._embed_probes)  # type: ignore[method-assign]
    functional.build_curve = clock("search", build_curve)  # type: ignore[assignment]
    try:
        trainer = pl.Trainer(
            max_epochs=1,
            limit_train_batches=2,
            accelerator="cpu",
            devices=1,
            callbacks=[Clock(), cb],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        trainer.fit(model, train, val)
    finally:
        functional.build_curve = build_curve  # type: ignore[assignment]
    out = {"val_captured": float(cb.last_timing["val_captured"]), "gap_norm": cb.history[-1]["repgap/gap_norm"]}
    for i, unit in enumerate(("wall", "cpu")):
        out.update({f"{key}_{unit}": value[i] for key, value in spent.items()})
        out[f"rest_{unit}"] = out[f"hook_{unit}"] - out[f"probe_passes_{unit}"] - out[f"search_{unit}"]
    return out


def overhead_table(argv: list[str] | None = None) -> dict[str, Any]:
    """Time the hook's parts before and after the validation-loop capture, print a Markdown table, return it."""
    p = argparse.ArgumentParser(description="callback overhead table")
    p.add_argument("--table", action="store_true")
    p.add_argument("--models", default="resnet18,bert")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows: dict[str, Any] = {}
    for name in args.models.split(","):
        runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
        for _ in range(args.repeats):  # alternated, so that a change in load hits both
            runs["before"].append(_one_run(name, capture=False))
            runs["after"].append(_one_run(name, capture=True))
        rows[name] = {k: {key: float(np.median([r[key] for r in v])) for key in v[0]} for k, v in runs.items()}
    print("CPU seconds of the process (wall seconds in parentheses)")
    print("| model | probes | capture | validation loop | probe passes | search | rest | hook | rows captured |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, by in rows.items():
        spec = MODELS[name]
        for when, r in by.items():
            cells = " | ".join(
                f"{r[f'{k}_cpu']:.2f} ({r[f'{k}_wall']:.2f})"
                for k in ("validation_loop", "probe_passes", "search", "rest", "hook")
            )
            print(
                f"| {name} | bank {spec['train_probe']}, queries {spec['val_probe']} + {spec['val_probe']} | {when} | "
                f"{cells} | {int(r['val_captured'])} |"
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return rows


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
    import sys

    if "--table" in sys.argv:
        overhead_table()
    else:
        main()
