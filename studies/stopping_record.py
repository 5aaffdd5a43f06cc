"""Recordings of the stopping study: every epoch's ``repgap/*`` keys, the baselines and the truth, in three regimes.

Each regime trains many small models and, after every epoch, records what
``RepresentationGapCallback`` would log (the same :func:`~lightning_repgap.representation_gap` call on the same
probes: a bank of training representations, validation queries, further training queries for ``gap_ratio``), the
label-free and labelled baselines, and the truth the stopping rule is scored against:

* ``supervised``: MLPs and CNNs on scikit-learn's digits and on generated 8x8 "glyphs", with 0 / 20 / 40 % label
  noise on the training and validation labels. Truth: accuracy on clean test labels. Baselines: ``val_loss`` and
  ``val_acc`` on the noisy validation labels.
* ``ssl``: SimCLR-style contrastive training (augmentations: shifts, pixel dropout, contrast, noise) of MLP and
  CNN encoders on the same images without labels. Truth: 5-NN accuracy of the test split against the labelled
  training images. Baselines: RankMe (effective rank of the validation embeddings) and the contrastive loss on
  validation images (fixed augmentations).
* ``generative``: DDPMs (``examples/diffusion.py``'s denoiser and schedule) on small training sets of points on
  flat 2- and 4-tori in R^16, trained past memorisation. The callback's bank is 256 samples (one fixed noise
  seed), its queries 512 validation points and its training queries the training set. Truth: the gap from 1024
  fresh data points to 512 fresh samples (another noise seed), and the samples' novelty against the training set
  (memorised: novelty below ``examples/diffusion.py``'s threshold). Baseline: the denoising loss on the validation
  points (fixed noise).

Everything is written to one JSON file, so the rule can be tuned and replayed without training again. Every
regime is written as soon as it is recorded; ``--regimes=`` records a subset (the committed file was recorded as
three such processes and merged, to finish on a shared machine):

    python -m studies.stopping_record studies/stopping_runs.json [--quick] [--regimes=supervised,ssl,generative]
    python -m studies.stopping_record studies/stopping_fresh.json --plan=fresh   # the second rule's evaluation set
    python -m studies.stopping_record studies/stopping_fresh2.json --plan=fresh2  # the untouched evaluation set
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from lightning_repgap.functional import representation_gap

ROOT = Path(__file__).resolve().parent.parent
#: The keys recorded from the callback's measurement (``knn_acc`` needs labels; kept for reference only).
REPGAP_KEYS = (
    "gap",
    "gap_norm",
    "dim",
    "dim_low",
    "dim_high",
    "law_r2",
    "dim_twonn",
    "dim_mle",
    "dup_frac",
    "gap_ratio",
)
#: Bootstrap resamples of the recorded measurements (only ``dim_low`` / ``dim_high`` depend on it).
N_BOOTSTRAP = 50


def _measure(bank: np.ndarray, queries: np.ndarray, train_queries: np.ndarray) -> dict[str, float]:
    """What the callback logs for one measurement; NaN for every key when the measurement is undefined."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = representation_gap(
                bank, queries, train_queries=train_queries, n_bootstrap=N_BOOTSTRAP, seed=0, num_threads=1
            )
        return {k: float(out[k]) for k in REPGAP_KEYS if k in out}
    except (ValueError, RuntimeError):  # the callback logs NaN and carries on
        return dict.fromkeys(REPGAP_KEYS, math.nan)


# ----------------------------------------------------------------------------------------------------------- data


def load_images(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 1, 8, 8)`` float32 images in about [0, 1] and their labels: ``"digits"`` or ``"glyphs"``."""
    if dataset == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return (d.images[:, None] / 16.0).astype(np.float32), d.target.astype(np.int64)
    if dataset == "glyphs":
        return glyphs(2000, np.random.default_rng(1234))
    if dataset == "glyphs-b":  # the fresh evaluation set's second data set: other prototypes, same generator
        return glyphs(2000, np.random.default_rng(5678))
    if dataset == "glyphs-c":  # the fresh2 evaluation set's second data set: prototypes never used before
        return glyphs(2000, np.random.default_rng(9012))
    raise ValueError(f"unknown dataset {dataset!r}")


def glyphs(n: int, rng: np.random.Generator, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Generated 8x8 images: a smooth random 12x12 prototype per class, randomly cropped, scaled and noised."""
    field = rng.normal(size=(classes, 16, 16))
    k = np.exp(-0.5 * (np.arange(-3, 4) / 1.3) ** 2)
    k /= k.sum()
    for axis in (1, 2):  # separable Gaussian blur
        field = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), axis, field)
    field = field[:, 2:14, 2:14]
    field = (field - field.min(axis=(1, 2), keepdims=True)) / np.ptp(field, axis=(1, 2), keepdims=True)
    y = rng.integers(0, classes, n)
    dx, dy = rng.integers(0, 4, n), rng.integers(0, 4, n)
    rows = dy[:, None] + np.arange(8)
    cols = dx[:, None] + np.arange(8)
    x = field[y[:, None, None], rows[:, :, None], cols[:, None, :]]
    x = x * rng.uniform(0.6, 1.4, (n, 1, 1)) + rng.normal(0, 0.3, (n, 8, 8))
    return x[:, None].astype(np.float32), y.astype(np.int64)


def split(n_total: int, n_train: int, seed: int, n_val: int = 300) -> dict[str, np.ndarray]:
    """Disjoint train / val / test indices; the test split is everything not in the largest training set."""
    perm = np.random.default_rng(seed).permutation(n_total)
    return {"train": perm[:n_train], "val": perm[1000 : 1000 + n_val], "test": perm[1000 + n_val :]}


def add_label_noise(y: np.ndarray, rate: float, rng: np.random.Generator, classes: int = 10) -> np.ndarray:
    """Replace a ``rate`` fraction of labels by a different, uniformly drawn class."""
    y = y.copy()
    flip = rng.random(len(y)) < rate
    y[flip] = (y[flip] + rng.integers(1, classes, flip.sum())) % classes
    return y


# --------------------------------------------------------------------------------------------------------- models


class Net(nn.Module):
    """An MLP or a small CNN on 8x8 images: ``features`` (the watched layer, ``width`` units) and a linear head."""

    def __init__(self, arch: str, width: int, out: int, channels: int | None = None) -> None:
        super().__init__()
        if arch == "mlp":
            self.features: nn.Module = nn.Sequential(
                nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()
            )
        elif arch == "cnn":
            c = channels or max(8, width // 8)
            self.features = nn.Sequential(
                nn.Conv2d(1, c, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(c, 2 * c, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(2 * c * 16, width),
                nn.ReLU(),
            )
        else:
            raise ValueError(f"unknown arch {arch!r}")
        self.head: nn.Module = nn.Linear(width, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Head output (logits, or projections for SSL)."""
        return self.head(self.features(x))


@torch.no_grad()
def _features(model: Net, x: torch.Tensor) -> np.ndarray:
    model.eval()
    out = torch.cat([model.features(b) for b in x.split(512)]).double().numpy()
    model.train()
    return out


def _probes(n_train: int, seed: int, bank_max: int = 768) -> tuple[np.ndarray, np.ndarray]:
    """The callback's probes into the training set: bank and training queries (its clamping rule)."""
    extra = min(128, n_train // 5)
    bank = min(bank_max, n_train - extra)
    perm = np.random.default_rng(seed).permutation(n_train)
    return np.sort(perm[:bank]), np.sort(perm[bank : bank + extra])


# ---------------------------------------------------------------------------------------------------- supervised


def supervised_configs(quick: bool, plan: str = "tuning") -> list[dict[str, Any]]:
    """2 data sets x 2 architectures x 3 noise levels x 4 seeds; width, training-set size, weight decay by seed.

    The ``"fresh"`` plan (the untouched evaluation set, :data:`PLANS`): digits and ``glyphs-b`` x 2 architectures x
    3 noise levels x seeds 10 and 11, with a width (128) and training-set sizes (700, 500) the tuning runs lack.
    The ``"fresh2"`` plan (the untouched set of the third rule): digits and ``glyphs-c`` x 2 architectures x 3 noise
    levels x seeds 20-23, widths 128 / 192 / 96 / 128 (the width-128 MLPs were the previous rule's failures),
    training-set sizes 600 / 800 / 500 / 1000.
    """
    fields = ("width", "n_train", "weight_decay")
    noises = (0.0, 0.2, 0.4)
    if plan == "fresh2":
        fresh2 = {20: (128, 600, 0.0), 21: (192, 800, 1e-4), 22: (96, 500, 0.0), 23: (128, 1000, 1e-4)}
        return _seeded_plan("supervised", "glyphs-c", fresh2, fields, "fresh2", noises)
    if plan == "fresh":
        fresh = {10: (128, 700, 0.0), 11: (128, 500, 1e-4)}
        return _seeded_plan("supervised", "glyphs-b", fresh, fields, "fresh", noises)
    variants = [(64, 1000, 0.0), (256, 400, 1e-4), (256, 1000, 1e-4), (64, 400, 0.0)]  # per seed
    out = []
    for dataset, arch, noise, seed in itertools.product(
        ("digits", "glyphs"), ("mlp", "cnn"), (0.0, 0.2, 0.4), range(4)
    ):
        width, n_train, wd = variants[seed]
        out.append({
            "regime": "supervised",
            "dataset": dataset,
            "arch": arch,
            "noise": noise,
            "seed": seed,
            "width": width,
            "n_train": n_train,
            "weight_decay": wd,
            "split": _split_of(dataset, seed),
        })
    if quick:
        return [c for c in out if c["seed"] == 3 and c["arch"] == "mlp" and c["dataset"] == "digits" and c["noise"]]
    return out


def _seeded_plan(
    regime: str,
    second: str,
    variants: dict[int, tuple[Any, ...]],
    fields: tuple[str, ...],
    split: str,
    noises: tuple[float, ...] | None = None,
) -> list[dict[str, Any]]:
    """An untouched plan: digits and ``second`` x 2 architectures (x ``noises``) x the seeds of ``variants``.

    ``variants`` maps each seed to its values of ``fields`` (e.g. width, training-set size, weight decay).
    """
    out = []
    for dataset, arch, noise, seed in itertools.product(
        ("digits", second), ("mlp", "cnn"), (None,) if noises is None else noises, sorted(variants)
    ):
        cfg: dict[str, Any] = {"regime": regime, "dataset": dataset, "arch": arch}
        if noise is not None:
            cfg["noise"] = noise
        cfg["seed"] = seed
        cfg.update(zip(fields, variants[seed], strict=True))
        cfg["split"] = split
        out.append(cfg)
    return out


def _split_of(dataset: str, seed: int) -> str:
    """Tuning / held-out split by data set and seed: each half holds every data set and every variant."""
    first = dataset in ("digits", "torus2")
    return "tune" if (seed % 4 < 2) == first else "held_out"


def run_supervised(
    cfg: dict[str, Any],
    epochs: int,
    extra: Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Train one classifier and record every epoch.

    ``extra`` (exploratory signals, :mod:`studies.stopping_signal`): called after every epoch with the bank's
    representations, the bank's (noisy) training labels and the validation representations; its keys are recorded
    too. ``None`` (every plan) records exactly the keys above.
    """
    x_all, y_all = load_images(cfg["dataset"])
    idx = split(len(y_all), cfg["n_train"], seed=100 + cfg["seed"])
    rng = np.random.default_rng(200 + cfg["seed"])
    x = {k: torch.from_numpy(x_all[v]) for k, v in idx.items()}
    y_clean = {k: torch.from_numpy(y_all[v]) for k, v in idx.items()}
    y_train = torch.from_numpy(add_label_noise(y_all[idx["train"]], cfg["noise"], rng))
    y_val = torch.from_numpy(add_label_noise(y_all[idx["val"]], cfg["noise"], rng))
    bank, train_q = _probes(cfg["n_train"], cfg["seed"])
    torch.manual_seed(cfg["seed"])
    gen = torch.Generator().manual_seed(cfg["seed"])
    model = Net(cfg["arch"], cfg["width"], 10)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=cfg["weight_decay"])
    rows = []
    for _ in range(epochs):
        for b in torch.randperm(cfg["n_train"], generator=gen).split(32):
            loss = F.cross_entropy(model(x["train"][b]), y_train[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val_logits, test_logits = model(x["val"]), model(x["test"])
        model.train()
        feats = _features(model, x["train"])
        val_feats = _features(model, x["val"])
        row = _measure(feats[bank], val_feats, feats[train_q])
        if extra is not None:
            row.update(extra(feats[bank], y_train[bank].numpy(), val_feats))
        row["val_loss"] = float(F.cross_entropy(val_logits, y_val))
        row["val_acc"] = float((val_logits.argmax(1) == y_val).float().mean())
        row["truth"] = float((test_logits.argmax(1) == y_clean["test"]).float().mean())
        rows.append(row)
    return {**cfg, "epochs": _columns(rows)}


# ----------------------------------------------------------------------------------------------------------- SSL


def ssl_configs(quick: bool, plan: str = "tuning") -> list[dict[str, Any]]:
    """2 data sets x 2 encoders x 6 seeds; width, training-set size and augmentation strength vary by seed.

    The ``"fresh"`` plan: digits and ``glyphs-b`` x 2 encoders x seeds 10-12 (widths 96 / 192 / 128, 300 / 500 /
    250 images, augmentation strengths 0.75 / 1.0 / 0.5). The ``"fresh2"`` plan: digits and ``glyphs-c`` x 2
    encoders x seeds 20-25 (widths 160 / 96 / 128 / 192 / 64 / 128, 400 / 300 / 500 / 250 / 450 / 350 images,
    augmentation strengths 0.75 / 1.0 / 0.6 / 0.9 / 0.5 / 1.0).
    """
    fields = ("width", "n_train", "augment")
    if plan == "fresh2":
        fresh2 = {
            20: (160, 400, 0.75),
            21: (96, 300, 1.0),
            22: (128, 500, 0.6),
            23: (192, 250, 0.9),
            24: (64, 450, 0.5),
            25: (128, 350, 1.0),
        }
        return _seeded_plan("ssl", "glyphs-c", fresh2, fields, "fresh2")
    if plan == "fresh":
        fresh = {10: (96, 300, 0.75), 11: (192, 500, 1.0), 12: (128, 250, 0.5)}
        return _seeded_plan("ssl", "glyphs-b", fresh, fields, "fresh")
    variants = [(64, 600, 1.0), (256, 200, 1.0), (256, 600, 0.5), (64, 200, 0.5), (128, 400, 1.0), (128, 400, 0.5)]
    out = []
    for dataset, arch, seed in itertools.product(("digits", "glyphs"), ("mlp", "cnn"), range(6)):
        width, n_train, strength = variants[seed]
        out.append({
            "regime": "ssl",
            "dataset": dataset,
            "arch": arch,
            "seed": seed,
            "width": width,
            "n_train": n_train,
            "augment": strength,
            "split": _split_of(dataset, seed if seed < 4 else seed - 4),
        })
    if quick:
        return [c for c in out if c["seed"] == 3 and c["dataset"] == "digits" and c["arch"] == "mlp"]
    return out


def augment(x: torch.Tensor, gen: torch.Generator, strength: float) -> torch.Tensor:
    """Per-image random shift by up to one pixel, pixel dropout, contrast change and Gaussian noise."""
    b = x.shape[0]
    padded = F.pad(x, (1, 1, 1, 1))
    dx, dy = torch.randint(0, 3, (2, b), generator=gen)
    rows = dy[:, None] + torch.arange(8)
    cols = dx[:, None] + torch.arange(8)
    out = padded[torch.arange(b)[:, None, None], 0, rows[:, :, None], cols[:, None, :]][:, None]
    keep = (torch.rand(out.shape, generator=gen) > 0.2 * strength).float()
    scale = 1 + strength * (torch.rand(b, 1, 1, 1, generator=gen) - 0.5) * 0.6
    return out * keep * scale + 0.1 * strength * torch.randn(out.shape, generator=gen)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float = 0.2) -> torch.Tensor:
    """SimCLR's normalised-temperature cross entropy over a batch of positive pairs."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / tau
    sim.fill_diagonal_(-math.inf)
    n = z1.shape[0]
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, target)


def rankme(z: np.ndarray) -> float:
    """RankMe (Garrido et al. 2023): exp of the entropy of the normalised singular values of the embeddings."""
    s = np.linalg.svd(z, compute_uv=False)
    p = s / s.sum() + 1e-7
    return float(np.exp(-(p * np.log(p)).sum()))


def knn_accuracy(bank: np.ndarray, labels: np.ndarray, queries: np.ndarray, truth: np.ndarray, k: int = 5) -> float:
    """k-NN (cosine) majority vote accuracy of ``queries`` against a labelled ``bank``."""
    b = bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    nn_idx = np.argsort(-(q @ b.T), axis=1)[:, :k]
    votes = np.zeros((len(q), int(labels.max()) + 1))
    np.add.at(votes, (np.arange(len(q))[:, None], labels[nn_idx]), 1.0)
    return float((votes.argmax(1) == truth).mean())


def run_ssl(cfg: dict[str, Any], epochs: int, steps_per_epoch: int = 15) -> dict[str, Any]:
    """Train one contrastive encoder and record every epoch."""
    x_all, y_all = load_images(cfg["dataset"])
    idx = split(len(y_all), cfg["n_train"], seed=300 + cfg["seed"])
    x = {k: torch.from_numpy(x_all[v]) for k, v in idx.items()}
    y = {k: y_all[v] for k, v in idx.items()}
    bank, train_q = _probes(cfg["n_train"], cfg["seed"])
    torch.manual_seed(cfg["seed"])
    gen = torch.Generator().manual_seed(cfg["seed"])
    model = Net(cfg["arch"], cfg["width"], 32, channels=max(8, cfg["width"] // 16))
    model.head = nn.Sequential(nn.Linear(cfg["width"], 64), nn.ReLU(), nn.Linear(64, 32))  # projector
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-5)
    rows = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            xb = x["train"][torch.randint(0, cfg["n_train"], (128,), generator=gen)]
            loss = nt_xent(model(augment(xb, gen, cfg["augment"])), model(augment(xb, gen, cfg["augment"])))
            opt.zero_grad()
            loss.backward()
            opt.step()
        feats, val = _features(model, x["train"]), _features(model, x["val"])
        row = _measure(feats[bank], val, feats[train_q])
        row["rankme"] = rankme(val)
        fixed = torch.Generator().manual_seed(0)  # the same validation views every epoch
        model.eval()
        with torch.no_grad():
            views = [model(augment(x["val"], fixed, cfg["augment"])) for _ in range(2)]
            row["val_loss"] = float(nt_xent(*views))
        model.train()
        row["truth"] = knn_accuracy(feats, y["train"], _features(model, x["test"]), y["test"])
        rows.append(row)
    return {**cfg, "epochs": _columns(rows)}


# ----------------------------------------------------------------------------------------------------- generative


def _diffusion_example() -> Any:
    """``examples/diffusion.py`` as a module: its DDPM, denoiser and memorisation threshold are reused as they are."""
    name = "repgap_diffusion_example"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "diffusion.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def memorised_novelty() -> float:
    """The novelty below which ``examples/diffusion.py`` calls a model memorised (its ``--memorising-novelty``)."""
    return float(_diffusion_example().parse_args([]).memorising_novelty)


def generative_configs(quick: bool, plan: str = "tuning") -> list[dict[str, Any]]:
    """2 widths x 2 tori x 3 training-set sizes x 2 seeds (each width one batched ensemble).

    The ``"fresh"`` plan: one ensemble of width 80 on 2-, 3- and 4-tori (the 3-torus is new) x 48 / 96 training
    points x seeds 10 and 11. The ``"fresh2"`` plan: two ensembles, of widths 72 and 88, on 2-, 3- and 4-tori x
    40 / 80 training points x seeds 20 and 21.
    """
    if plan == "fresh2":
        return [
            {
                "regime": "generative",
                "dataset": f"torus{d}",
                "arch": "ddpm-mlp",
                "width": width,
                "d": d,
                "n_train": n,
                "seed": seed,
                "split": "fresh2",
            }
            for width, d, n, seed in itertools.product((72, 88), (2, 3, 4), (40, 80), (20, 21))
        ]
    if plan == "fresh":
        return [
            {
                "regime": "generative",
                "dataset": f"torus{d}",
                "arch": "ddpm-mlp",
                "width": 80,
                "d": d,
                "n_train": n,
                "seed": seed,
                "split": "fresh",
            }
            for d, n, seed in itertools.product((2, 3, 4), (48, 96), (10, 11))
        ]
    out = []
    for width, d, n, seed in itertools.product((64, 96), (2, 4), (32, 64, 128), (0, 1)):
        out.append({
            "regime": "generative",
            "dataset": f"torus{d}",
            "arch": "ddpm-mlp",
            "width": width,
            "d": d,
            "n_train": n,
            "seed": seed,
            "split": _split_of(f"torus{d}", seed),
        })
    if quick:
        return [c for c in out if c["width"] == 64 and c["seed"] == 1 and c["d"] == 2]
    return out


def run_generative(
    cfgs: list[dict[str, Any]], epochs: int, steps_per_epoch: int = 200, n_samples: int = 256, log: Any = None
) -> list[dict[str, Any]]:
    """Train one batched ensemble of DDPMs (all ``cfgs`` share a width) and record every member every epoch."""
    ex = _diffusion_example()
    args = ex.parse_args([])
    ambient, members = 16, len(cfgs)
    pools, held, fresh = [], [], []
    for c in cfgs:
        rng = np.random.default_rng([c["d"], c["seed"]])
        torus = ex.Torus.make(c["d"], ambient, rng)
        pools.append(torus.sample(128, rng)[: c["n_train"]])
        held.append(torus.sample(512, rng))
        fresh.append(torus.sample(1024, rng))
    scale = np.array([1 / np.sqrt(np.mean(p**2)) for p in pools])
    torch.manual_seed(1000 + cfgs[0]["seed"])
    diffusion = ex.Diffusion(args.timesteps)
    model = ex.Denoiser(members, ambient, args.timesteps, cfgs[0]["width"], args.depth)
    ema = ex.copy.deepcopy(model).requires_grad_(False)
    opt = ex.adam(model.parameters(), args.lr)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=total, pct_start=0.05)
    n_max = max(len(p) for p in pools)
    data = torch.zeros(members, n_max, ambient)
    for k, p in enumerate(pools):
        data[k, : len(p)] = torch.as_tensor(p * scale[k], dtype=torch.float32)
    sizes = torch.tensor([len(p) for p in pools], dtype=torch.float32)[:, None]
    member = torch.arange(members)[:, None]
    scale_t = torch.as_tensor(scale, dtype=torch.float32)[:, None, None]
    held_t = torch.stack([torch.as_tensor(h, dtype=torch.float32) for h in held]) * scale_t
    novelty_threshold = memorised_novelty()
    rows: list[list[dict[str, float]]] = [[] for _ in cfgs]
    for epoch in range(epochs):
        t0 = time.perf_counter()
        for _ in range(steps_per_epoch):
            idx = (torch.rand(members, args.batch) * sizes).long()
            loss = diffusion.loss(model, data[member, idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ex.ema_update(ema, model, args.ema)
        bank = (diffusion.sample(ema, members, n_samples, ambient, seed=1) / scale_t).double().numpy()
        new = (diffusion.sample(ema, members, 2 * n_samples, ambient, seed=2) / scale_t).double().numpy()
        val_loss = _denoising_loss(diffusion, ema, held_t)
        for k in range(members):
            row = _measure(bank[k], held[k], pools[k])
            row["val_loss"] = float(val_loss[k])
            row["truth"] = _gap(new[k], fresh[k])  # fresh data -> fresh samples
            row["novelty"] = _gap(pools[k], new[k]) / _gap(pools[k], fresh[k])
            row["memorised"] = float(row["novelty"] < novelty_threshold)
            rows[k].append(row)
        if log is not None:
            log(f"  generative w{cfgs[0]['width']} epoch {epoch + 1}/{epochs} ({time.perf_counter() - t0:.0f} s)")
    return [{**c, "epochs": _columns(r)} for c, r in zip(cfgs, rows, strict=True)]


def _gap(reference: np.ndarray, queries: np.ndarray) -> float:
    """Mean squared distance from each query to its nearest reference point."""
    d = (queries**2).sum(1)[:, None] + (reference**2).sum(1)[None] - 2 * queries @ reference.T
    return float(np.maximum(d.min(1), 0).mean())


@torch.no_grad()
def _denoising_loss(diffusion: Any, model: nn.Module, x0: torch.Tensor, repeats: int = 4) -> np.ndarray:
    """Per-member weighted denoising loss on held-out points, with fixed timesteps and noise."""
    gen = torch.Generator().manual_seed(0)
    total = torch.zeros(x0.shape[0])
    for _ in range(repeats):
        t = torch.randint(0, diffusion.steps, x0.shape[:2], generator=gen)
        xt = diffusion.sqrt_ab[t, None] * x0 + diffusion.sqrt_1mab[t, None] * torch.randn(x0.shape, generator=gen)
        total += ((model(xt, t) - x0) ** 2).mean(-1).mul(diffusion.weight[t]).mean(-1)
    return (total / repeats).numpy()


# ---------------------------------------------------------------------------------------------------------- driver


def _columns(rows: list[dict[str, float]]) -> dict[str, list[float]]:
    """Per-epoch rows -> one list per key (5 significant digits keep the file small; NaN stays NaN)."""
    keys = sorted({k for r in rows for k in r})
    return {k: [float(f"{r.get(k, math.nan):.5g}") for r in rows] for k in keys}


EPOCHS = {"supervised": (40, 12), "ssl": (25, 8), "generative": (24, 6)}
#: The recording plans. ``"tuning"``: the 96 runs of ``studies/stopping_runs.json`` (its two halves, ``split``
#: ``"tune"`` / ``"held_out"``, were both opened while choosing rules, so both are tuning data now). ``"fresh"``:
#: 48 runs with new seeds, a new data set (``glyphs-b``), new widths, training-set sizes and a 3-torus, written to
#: ``studies/stopping_fresh.json`` and scored once, with the final rule, as the untouched evaluation set. The plan
#: was committed before any rule was scored on it. After the second rule was scored on it, it became tuning data
#: too. ``"fresh2"``: 96 runs with seeds 20-25, a data set never used (``glyphs-c``), width 128 / 192 / 96 MLPs and
#: CNNs, written to ``studies/stopping_fresh2.json``; its plan was committed, and its recording started, before the
#: third rule was explored, and it is scored once with that rule frozen.
PLANS = ("tuning", "fresh", "fresh2")


def record(
    quick: bool = False,
    regimes: tuple[str, ...] = ("supervised", "ssl", "generative"),
    log: Any = None,
    plan: str = "tuning",
) -> dict:
    """Train every run of the selected regimes and plan and return the recordings (``{"runs": [...], ...}``)."""
    if plan not in PLANS:
        raise ValueError(f"unknown plan {plan!r}; choose from {PLANS}")
    if quick and plan != "tuning":
        raise ValueError("--quick records a few short runs of the tuning plan only")
    say: Callable[[str], None] = log or (lambda _msg: None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is faster than two on a shared machine
    runs: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    try:
        for regime in regimes:
            t0 = time.perf_counter()
            epochs = EPOCHS[regime][1 if quick else 0]
            if regime == "supervised":
                for i, c in enumerate(supervised_configs(quick, plan)):
                    runs.append(run_supervised(c, epochs))
                    say(f"  supervised [{i + 1}] {c['dataset']} {c['arch']} noise {c['noise']} seed {c['seed']}")
            elif regime == "ssl":
                for i, c in enumerate(ssl_configs(quick, plan)):
                    runs.append(run_ssl(c, epochs))
                    say(f"  ssl [{i + 1}] {c['dataset']} {c['arch']} seed {c['seed']}")
            else:
                cfgs = generative_configs(quick, plan)
                for width in sorted({c["width"] for c in cfgs}):
                    group = [c for c in cfgs if c["width"] == width]
                    runs.extend(run_generative(group, epochs, steps_per_epoch=100 if quick else 200, log=say))
            seconds[regime] = time.perf_counter() - t0
            say(f"[stopping] {regime} recorded in {seconds[regime]:.0f} s")
    finally:
        torch.set_num_threads(threads)
    return {"quick": quick, "plan": plan, "n_bootstrap": N_BOOTSTRAP, "seconds": seconds, "runs": runs}


if __name__ == "__main__":
    import json

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "studies" / "stopping_runs.json"
    quick = "--quick" in sys.argv
    plans = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--plan=")]
    regimes = [a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--regimes=")]
    t_start = time.perf_counter()
    rec: dict[str, Any] = {"runs": [], "seconds": {}}
    # Written after each regime, so a partial run is kept.
    for regime in regimes[0] if regimes else ("supervised", "ssl", "generative"):
        part = record(
            quick=quick,
            regimes=(regime,),
            log=lambda m: print(m, file=sys.stderr, flush=True),
            plan=plans[0] if plans else "tuning",
        )
        rec = {**part, "runs": rec["runs"] + part["runs"], "seconds": {**rec["seconds"], **part["seconds"]}}
        rec["total_seconds"] = time.perf_counter() - t_start
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, separators=(",", ":")))
        tmp.replace(out)
        print(f"wrote {out} ({len(rec['runs'])} runs, {rec['total_seconds']:.0f} s)", flush=True)
