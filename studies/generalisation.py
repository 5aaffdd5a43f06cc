"""Part 3 of the validation study: does the representation gap predict generalisation?

A full-factorial grid of small MLPs on scikit-learn's digits (shipped with the package, no download): width
{32, 256} x depth {1, 3} x training-set size {300, 1200} x label noise {0, 0.3} x augmentation {off, on} x weight
decay {1e-4, 0.3} = 64 models (the quick mode trains a 24-model subset for fewer epochs). Every model trains for
the same number of steps. At the end of training the study records

* the true generalisation gap: test loss - train loss (on the labels the model was trained on, noisy or not) and
  test error - train error, plus the test error itself;
* the library's quantities on three layers (first hidden, penultimate, logits), with the bank = the training
  set's representations minus a 20 % probe, the queries = the test set's, and the train queries = that probe:
  ``gap_norm``, ``gap_ratio``, ``dim``, ``knn_acc`` (1-NN agreement between a test point's label and its nearest
  training point's training label);
* baselines: the parameter norm, the train loss and a sharpness proxy (the train-loss increase under a random
  weight perturbation of 5 % of each tensor's RMS, averaged over 5 draws).

Each quantity has an expected sign fixed before looking (a larger ``gap_ratio`` or ``gap_norm``, a lower
``knn_acc``, a larger parameter norm or sharpness, a lower train loss: a larger generalisation gap), and Kendall's
tau against the loss gap is reported in that orientation, with a 95 % bootstrap interval over models.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_repgap.functional import representation_gap

LAYERS = ("first", "penultimate", "logits")
REPGAP_KEYS = ("gap_norm", "gap", "gap_ratio", "dim", "knn_acc")
# +1: a larger value should mean a larger generalisation gap; -1: a smaller one.
EXPECTED_SIGN = {"gap_norm": 1, "gap": 1, "gap_ratio": 1, "dim": 1, "knn_acc": -1}
BASELINE_SIGN = {"param_norm": 1, "train_loss": -1, "sharpness": 1}


@dataclass(frozen=True)
class Config:
    """One model of the grid."""

    width: int
    depth: int
    n_train: int
    label_noise: float
    augment: bool
    weight_decay: float

    @property
    def name(self) -> str:
        """A short label such as ``w256-d3-n300-noise0.3-noaug-wd0.3``."""
        aug = "aug" if self.augment else "noaug"
        return f"w{self.width}-d{self.depth}-n{self.n_train}-noise{self.label_noise:g}-{aug}-wd{self.weight_decay:g}"


def grid(quick: bool) -> list[Config]:
    """The full factorial (64 configs) or, for ``quick``, a fixed 24-config subset covering every level."""
    full = [
        Config(w, d, n, p, a, wd)
        for w, d, n, p, a, wd in itertools.product(
            (32, 256), (1, 3), (300, 1200), (0.0, 0.3), (False, True), (1e-4, 0.3)
        )
    ]
    if not quick:
        return full
    return [full[i] for i in np.random.default_rng(0).choice(len(full), size=24, replace=False)]


def load_digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits scaled to [0, 1]: a fixed 1200-image training pool and 597 test images."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order[:1200]], y[order[:1200]], x[order[1200:]], y[order[1200:]]


class MLP(nn.Module):
    """``depth`` hidden ReLU layers of ``width`` units and a linear head."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        dims = [64] + [width] * depth
        self.hidden = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in itertools.pairwise(dims))
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits."""
        for layer in self.hidden:
            x = layer(x)
        return self.head(x)

    @torch.no_grad()
    def representations(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        """The first hidden layer's, the penultimate layer's and the logits' outputs, as float64 arrays."""
        out = {}
        h = x
        for i, layer in enumerate(self.hidden):
            h = layer(h)
            if i == 0:
                out["first"] = h
        out["penultimate"] = h
        out["logits"] = self.head(h)
        return {k: v.double().numpy() for k, v in out.items()}


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Shift each 8x8 image by up to one pixel (zero fill) and add a little pixel noise."""
    img = x.view(-1, 1, 8, 8)
    padded = nn.functional.pad(img, (1, 1, 1, 1))
    dx, dy = (int(v) for v in torch.randint(0, 3, (2,), generator=gen))
    shifted = padded[:, :, dy : dy + 8, dx : dx + 8].reshape(x.shape)
    return shifted + 0.05 * torch.randn(shifted.shape, generator=gen)


def _loss_and_error(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        logits = model(x)
        return float(nn.functional.cross_entropy(logits, y)), float((logits.argmax(1) != y).float().mean())


def _sharpness(model: nn.Module, x: torch.Tensor, y: torch.Tensor, base_loss: float, seed: int) -> float:
    """Mean train-loss increase under Gaussian weight noise of 5 % of each tensor's RMS (5 draws)."""
    gen = torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    saved = [p.detach().clone() for p in params]
    increases = []
    with torch.no_grad():
        for _ in range(5):
            for p, p0 in zip(params, saved, strict=True):
                p.copy_(p0 + 0.05 * p0.pow(2).mean().sqrt() * torch.randn(p0.shape, generator=gen))
            increases.append(_loss_and_error(model, x, y)[0] - base_loss)
        for p, p0 in zip(params, saved, strict=True):
            p.copy_(p0)
    return float(np.mean(increases))


def train_and_measure(config: Config, data: tuple[np.ndarray, ...], *, steps: int, seed: int = 0) -> dict[str, Any]:
    """Train one model of the grid and return its true gaps, the repgap quantities per layer and the baselines."""
    x_pool, y_pool, x_test, y_test = data
    rng = np.random.default_rng(seed)
    x_tr, y_clean = x_pool[: config.n_train], y_pool[: config.n_train]
    y_tr = y_clean.copy()
    flip = rng.random(config.n_train) < config.label_noise
    y_tr[flip] = (y_tr[flip] + rng.integers(1, 10, flip.sum())) % 10  # always a wrong label
    xs, ys = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    xt, yt = torch.from_numpy(x_test), torch.from_numpy(y_test)

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = MLP(config.width, config.depth)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=config.weight_decay)
    batch = 64
    step = 0
    while step < steps:
        for idx in torch.randperm(config.n_train, generator=gen).split(batch):
            xb = _augment(xs[idx], gen) if config.augment else xs[idx]
            loss = nn.functional.cross_entropy(model(xb), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step == steps:
                break
    model.eval()

    train_loss, train_err = _loss_and_error(model, xs, ys)
    test_loss, test_err = _loss_and_error(model, xt, yt)
    row: dict[str, Any] = {
        "config": config.name,
        **{f: getattr(config, f) for f in ("width", "depth", "n_train", "label_noise", "augment", "weight_decay")},
        "train_loss": train_loss,
        "test_loss": test_loss,
        "loss_gap": test_loss - train_loss,
        "error_gap": test_err - train_err,
        "test_error": test_err,
        "param_norm": float(torch.cat([p.detach().reshape(-1) for p in model.parameters()]).norm()),
        "sharpness": _sharpness(model, xs, ys, train_loss, seed),
    }
    # The train-query probe: 20 % of the training set, trained on but not in the bank.
    probe = rng.permutation(config.n_train)
    n_probe = config.n_train // 5
    probe_idx, bank_idx = probe[:n_probe], probe[n_probe:]
    reps_train, reps_test = model.representations(xs), model.representations(xt)
    for layer in LAYERS:
        values = representation_gap(
            reps_train[layer][bank_idx],
            reps_test[layer],
            train_queries=reps_train[layer][probe_idx],
            reference_labels=y_tr[bank_idx],
            query_labels=y_test,
            n_bootstrap=0,
            seed=seed,
        )
        for key in REPGAP_KEYS:
            row[f"{layer}/{key}"] = float(values[key])
    return row


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b (ties counted as neither concordant nor discordant, with the tie correction)."""
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    iu = np.triu_indices(len(a), k=1)
    da, db = da[iu], db[iu]
    denom = np.sqrt(np.count_nonzero(da) * np.count_nonzero(db))
    return float((da * db).sum() / denom) if denom > 0 else float("nan")


def tau_table(rows: list[dict[str, Any]], target: str, *, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Oriented Kendall tau of every predictor against ``target`` with a percentile bootstrap interval over models."""
    predictors = {f"{layer}/{key}": EXPECTED_SIGN[key] for layer in LAYERS for key in REPGAP_KEYS}
    predictors.update(BASELINE_SIGN)
    y = np.array([r[target] for r in rows])
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(rows), len(rows)) for _ in range(n_bootstrap)]
    out = {}
    for name, sign in predictors.items():
        x = sign * np.array([r[name] for r in rows], dtype=np.float64)
        boot = [kendall_tau(x[d], y[d]) for d in draws]
        low, high = np.nanquantile(boot, [0.025, 0.975])
        out[name] = {
            "tau": kendall_tau(x, y),
            "low": float(low),
            "high": float(high),
            "baseline": name in BASELINE_SIGN,
        }
    return out


def run(*, quick: bool, steps: int, seed: int = 0, log: Any = None) -> dict[str, Any]:
    """Train the grid, then rank every predictor by its oriented tau against the loss gap and the error gap."""
    t0 = time.perf_counter()
    data = load_digits_split(seed)
    rows = []
    configs = grid(quick)
    threads = torch.get_num_threads()
    # These models are tiny: one thread trains them 10x faster than two on a shared 2-core machine (thread
    # synchronisation per small op dominates). The library's measurements use its own default.
    torch.set_num_threads(1)
    try:
        for i, config in enumerate(configs):
            rows.append(train_and_measure(config, data, steps=steps, seed=seed + i))
            if log is not None:
                log(f"  [{i + 1}/{len(configs)}] {config.name}: loss gap {rows[-1]['loss_gap']:.3f}")
    finally:
        torch.set_num_threads(threads)
    return {
        "rows": rows,
        "tau_loss_gap": tau_table(rows, "loss_gap", seed=seed),
        "tau_error_gap": tau_table(rows, "error_gap", seed=seed),
        "steps": steps,
        "seconds": time.perf_counter() - t0,
    }
