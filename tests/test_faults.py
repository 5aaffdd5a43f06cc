"""Fault injection: the callback never aborts ``fit`` for a listed measurement cause, and never logs a wrong number.

Every case runs a real (tiny) ``Trainer.fit`` with one injected cause and asserts that (1) the fit finishes, (2) no
file on disk is partial (no temporary file, every snapshot with a manifest loads and verifies), (3) every logged key
is its expected value, or NaN with ``valid == 0`` and the expected warning class, emitted once per cause and layer.
Strict mode is off here (the ``faults`` marker, see ``conftest.py``); everywhere else it is on.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_repgap._figures as figures_module
import lightning_repgap._imports as imports_module
import lightning_repgap.snapshot as snapshot_module
from lightning_repgap._faults import (
    STRICT_ENV,
    DegenerateRepresentationError,
    DegenerateRepresentationWarning,
    FaultPolicy,
    FigureIOError,
    FigureIOWarning,
    MeasurementFaultWarning,
    NonFiniteRepresentationError,
    NonFiniteRepresentationWarning,
    ReferenceBankError,
    ReferenceBankWarning,
    SnapshotIOError,
    SnapshotIOWarning,
    TooFewDistinctPointsError,
    TooFewDistinctPointsWarning,
    TooFewDistinctSizesError,
    TooFewFitSizesError,
    TooFewQueriesError,
    TooFewQueriesWarning,
    UndefinedValueWarning,
    UnreadableLayerError,
    UnreadableLayerWarning,
    expected_keys,
)
from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.capture import ProbeConfigurationError
from lightning_repgap.config import GapConfig
from lightning_repgap.dimension import DuplicatePointsWarning
from lightning_repgap.snapshot import MANIFEST_NAME, load_snapshot

pytestmark = pytest.mark.faults

# Tiny but complete: a 128-point bank gives a 4-size law fit from fit_min_size=16.
PROBES = {
    "train_probe": 128,
    "val_probe": 48,
    "train_query_probe": 32,
    "config": GapConfig(n_bootstrap=20),
    "batch_size": 64,
}
AMBIENT = 8


def _manifold(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(n, 2, generator=g) * 2 * math.pi
    proj = torch.randn(4, AMBIENT, generator=torch.Generator().manual_seed(7))
    return torch.cat([torch.sin(z), torch.cos(z)], dim=1) @ proj


def _labels(x: torch.Tensor) -> torch.Tensor:
    return (x[:, 0] > 0).long()


def data(
    n_train: int = 192, n_val: int = 64, train: torch.Tensor | None = None, val: torch.Tensor | None = None
) -> tuple[DataLoader, DataLoader]:
    xt = _manifold(n_train, 0) if train is None else train
    xv = _manifold(n_val, 1) if val is None else val
    return (
        DataLoader(TensorDataset(xt, _labels(torch.nan_to_num(xt))), batch_size=64, shuffle=True),
        DataLoader(TensorDataset(xv, _labels(torch.nan_to_num(xv))), batch_size=64),
    )


class Inject(nn.Module):
    """Applies ``fn(x, epoch)`` in eval mode only (the probe pass), so training itself stays healthy."""

    def __init__(self, fn: Callable[[torch.Tensor, int], torch.Tensor] | None = None) -> None:
        super().__init__()
        self.fn = fn
        self.epoch = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fn is None or self.training:
            return x
        return self.fn(x, self.epoch)


class Net(pl.LightningModule):
    """``pre`` (input side) -> backbone -> ``rep`` (the usual watched layer) -> head."""

    def __init__(self, rep: Callable[..., torch.Tensor] | None = None, pre: Callable[..., torch.Tensor] | None = None):
        super().__init__()
        self.pre = Inject(pre)
        self.backbone = nn.Sequential(nn.Linear(AMBIENT, 16), nn.Tanh())
        self.rep = Inject(rep)
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rep(self.backbone(self.pre(x))))

    def on_validation_epoch_start(self) -> None:
        self.rep.epoch = self.pre.epoch = self.current_epoch

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-2)


@dataclasses.dataclass
class Case:
    """One injected cause and what must come out of it."""

    name: str
    rep: Callable[..., torch.Tensor] | None = None
    pre: Callable[..., torch.Tensor] | None = None
    data: Callable[[], tuple[DataLoader, DataLoader]] = data
    cb: dict[str, Any] = dataclasses.field(default_factory=dict)
    trainer: dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int = 1
    warning: type[Warning] | None = None
    #: Keys expected NaN in the *last* epoch (everything else must be finite); "all" = every key.
    nan: tuple[str, ...] | str = ()
    #: Exact expected values of the last epoch (``None``: computed by ``check``).
    values: dict[str, float] = dataclasses.field(default_factory=dict)
    #: ``valid`` per epoch.
    valid: tuple[float, ...] = (1.0,)
    layer: str | list[str] = "rep"
    setup: Callable[[pytest.MonkeyPatch, Path], None] | None = None
    check: Callable[[RepresentationGapCallback, Path], None] | None = None
    #: The model's class (``rep`` and ``pre`` passed on).
    net: Callable[..., pl.LightningModule] | None = None


def _nan_rows(x: torch.Tensor, epoch: int) -> torch.Tensor:
    x = x.clone()
    x[0] = math.nan
    return x


def _disk_full(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The second file of every snapshot hits ENOSPC after part of it was written."""
    real = snapshot_module._write_temp
    calls = {"n": 0}

    def write_temp(directory: Path, filename: str, fill: Any, temps: list[Path]) -> Any:
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            tmp = directory / f".{filename}.partial.tmp"
            tmp.write_bytes(b"\x93NUMPY half")
            temps.append(tmp)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(directory, filename, fill, temps)

    monkeypatch.setattr(snapshot_module, "_write_temp", write_temp)


def _rename_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class FailingOs:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        @staticmethod
        def replace(src: Any, dst: Any) -> None:
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(snapshot_module, "os", FailingOs())


def _figure_write_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every figure's PNG (the CSV logger's) hits ENOSPC at its rename into place."""

    class FullDiskOs:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        @staticmethod
        def replace(src: Any, dst: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(figures_module, "os", FullDiskOs())


class SkipsRep(Net):
    """A forward that leaves ``rep`` out in eval mode from the second epoch on (a schedule that changes the forward)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.backbone(self.pre(x))
        return self.head(z if not self.training and self.current_epoch >= 1 else self.rep(z))


class RaggedInValidation(Net):
    """``seq``, watched, gets a width that changes from one validation batch to the next (padding to each batch's
    longest sequence); in probe passes (outside ``validation_step``) it is always 2 wide."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seq = nn.Identity()
        self._batch: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seq(x[:, : 2 + (self._batch or 0) % 2])
        return super().forward(x)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._batch = batch_idx
        try:
            super().validation_step(batch, batch_idx)
        finally:
            self._batch = None


class WidthByContent(Net):
    """``seq``, watched, is 3 wide for a batch holding a row with ``x0 > 100`` (padding to the batch's longest
    sequence), else 2: each pass is consistent on its own, a validation batch and a probe batch may not agree."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seq = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seq(x[:, : 2 + int(bool((x[:, 0] > 100).any()))])
        return super().forward(x)


def _val_with_a_long_row() -> tuple[DataLoader, DataLoader]:
    """128 validation rows, the first with ``x0 = 1000``: its batch (the only one validated) is 3 wide in ``seq``."""
    xv = _manifold(128, 1)
    xv[0, 0] = 1000.0
    return data(n_val=128, val=xv)


def _width_by_batch_size(x: torch.Tensor) -> torch.Tensor:
    """A pooling whose width is 3 for a full probe batch of 64 rows and 2 for a shorter one (a ragged flatten)."""
    return x.flatten(1)[:, : 2 + (x.shape[0] == 64)]


def _collapsed_train() -> tuple[DataLoader, DataLoader]:
    return data(train=torch.ones(192, AMBIENT))


def _leaky() -> tuple[DataLoader, DataLoader]:
    x = _manifold(128, 0)
    return data(train=x, val=x[:64])


def _duplicated_rows() -> tuple[DataLoader, DataLoader]:
    x = _manifold(128, 0)
    return data(train=torch.cat([x, x[:64]]))


def _near_copies() -> tuple[DataLoader, DataLoader]:
    x = _manifold(128, 0)
    return data(train=torch.cat([x, x[:64] * (1 + 1e-7)]))


def _lattice() -> tuple[DataLoader, DataLoader]:
    # Queries at the centres of a full grid's cells: every query's two nearest bank points tie (TwoNN undefined).
    g = torch.stack(torch.meshgrid(torch.arange(12.0), torch.arange(12.0), indexing="ij"), -1).reshape(-1, 2)
    c = torch.stack(torch.meshgrid(torch.arange(11.0), torch.arange(11.0), indexing="ij"), -1).reshape(-1, 2) + 0.5
    pad = lambda t: torch.cat([t, torch.zeros(t.shape[0], AMBIENT - 2)], 1)  # noqa: E731
    return data(train=pad(g), val=pad(c[:64]))


def _ref_fn(values: torch.Tensor) -> Callable[[pl.LightningModule], torch.Tensor]:
    return lambda module: values


def _narrower_at_the_first_measurement(module: pl.LightningModule) -> torch.Tensor:
    """Width 16 (the layer's) when training starts and from the second epoch on; 8 at the first measurement."""
    narrow = not module.trainer.training and module.current_epoch == 0
    return _manifold(128, 2) @ torch.eye(AMBIENT, 16)[:, : 8 if narrow else 16]


def _not_a_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where the snapshot directory should be")


SNAP = {"snapshot_on": "evaluation", "snapshot_dtype": "float32"}
DEAD = (
    "gap_norm",
    "dim",
    "dim_low",
    "dim_high",
    "law_r2",
    "dim_twonn",
    "dim_mle",
    "dim_method",
    "gap_ratio",
    "knn_acc",
)
FIT_ONLY = ("dim", "dim_low", "dim_high", "law_r2", "dim_twonn", "dim_mle", "dim_method")

CASES = [
    Case("dead_relu", rep=lambda x, e: torch.relu(x - 1e6), warning=DegenerateRepresentationWarning, nan=DEAD,
         values={"gap": 0.0, "dup_frac": 1.0, "bank_dup_frac": 1.0}, valid=(0.0,)),
    Case("zero_layer_signed_zeros", rep=lambda x, e: x * 0.0, warning=DegenerateRepresentationWarning, nan=DEAD,
         values={"gap": 0.0, "dup_frac": 1.0, "bank_dup_frac": 1.0}, valid=(0.0,)),
    Case("constant_output", rep=lambda x, e: torch.ones_like(x) * 3.0, warning=DegenerateRepresentationWarning,
         nan=DEAD, values={"gap": 0.0, "dup_frac": 1.0}, valid=(0.0,)),
    Case("collapsed_bank_distinct_queries", data=_collapsed_train, layer="pre", warning=DegenerateRepresentationWarning,
         nan=DEAD, values={"dup_frac": 0.0, "bank_dup_frac": 1.0}, valid=(0.0,)),
    Case("nan_everywhere", rep=lambda x, e: x * math.nan, warning=NonFiniteRepresentationWarning, nan="all",
         valid=(0.0,)),
    Case("nan_in_one_row_per_batch", rep=_nan_rows, warning=NonFiniteRepresentationWarning, nan="all", valid=(0.0,)),
    Case("inf_in_validation_inputs", layer="pre",
         data=lambda: data(val=torch.cat([_manifold(63, 1), torch.full((1, AMBIENT), math.inf)])),
         warning=NonFiniteRepresentationWarning, nan="all", valid=(0.0,)),
    Case("neg_inf_from_log", rep=lambda x, e: torch.log(torch.relu(x)), warning=NonFiniteRepresentationWarning,
         nan="all", valid=(0.0,)),
    Case("overflow_to_inf", rep=lambda x, e: x * 1e38 * 1e38, warning=NonFiniteRepresentationWarning, nan="all",
         valid=(0.0,)),
    Case("diverges_in_second_epoch", rep=lambda x, e: x * math.nan if e >= 1 else x, epochs=2,
         warning=NonFiniteRepresentationWarning, nan="all", valid=(1.0, 0.0)),
    Case("recovers_after_first_epoch", rep=lambda x, e: x * math.nan if e == 0 else x, epochs=2,
         warning=NonFiniteRepresentationWarning, valid=(0.0, 1.0)),
    Case("warned_once_over_three_epochs", rep=lambda x, e: x * 0.0, epochs=3, warning=DegenerateRepresentationWarning,
         nan=DEAD, values={"gap": 0.0}, valid=(0.0, 0.0, 0.0)),
    Case("every_query_leaked_into_bank", data=_leaky, layer="pre", cb={"train_query_probe": 0},
         warning=TooFewDistinctPointsWarning, nan=FIT_ONLY, values={"gap": 0.0, "gap_norm": 0.0, "dup_frac": 1.0},
         valid=(0.0,)),
    Case("quantised_to_three_points", rep=lambda x, e: torch.sign(x[:, :1]).expand_as(x),
         warning=TooFewDistinctPointsWarning, nan=FIT_ONLY, valid=(0.0,)),
    Case("half_the_bank_duplicated", data=_duplicated_rows, layer="pre", cb={"train_query_probe": 0},
         warning=DuplicatePointsWarning),
    Case("near_copies_in_bank", data=_near_copies, layer="pre", cb={"train_query_probe": 0},
         warning=DuplicatePointsWarning),
    # Explicit sizes up to the bank: its exact copies leave fewer distinct points than the largest size (a ValueError
    # from the size check, which ended the fit after its first epoch).
    Case("explicit_sizes_beyond_the_distinct_bank", data=_duplicated_rows, layer="pre",
         cb={"train_query_probe": 0, "config": GapConfig(sizes=(16, 32, 64, 128))},
         warning=TooFewDistinctPointsWarning, nan="all", valid=(0.0,)),
    Case("twonn_undefined_on_lattice", data=_lattice, layer="pre", cb={"train_probe": 144, "train_query_probe": 0},
         warning=UndefinedValueWarning, nan=("dim_twonn",), valid=(0.0,)),
    Case("snapshot_disk_full", setup=_disk_full, cb=SNAP, warning=SnapshotIOWarning),
    Case("snapshot_rename_fails", setup=_rename_fails, cb=SNAP, warning=SnapshotIOWarning),
    Case("snapshot_dir_is_a_file", setup=_not_a_dir, cb={**SNAP, "snapshot_dir": "blocker/snaps"},
         warning=SnapshotIOWarning),
    Case("snapshot_float16_overflow", rep=lambda x, e: x * 1e6, cb={"snapshot_on": "evaluation"},
         warning=SnapshotIOWarning),
    Case("snapshot_disk_full_at_checkpoint", setup=_disk_full, cb={"snapshot_on": "checkpoint"},
         trainer={"enable_checkpointing": True}, warning=SnapshotIOWarning),
    Case("figure_disk_full", setup=_figure_write_fails, cb={"log_figures": True}, epochs=2, warning=FigureIOWarning,
         valid=(1.0, 1.0)),
    Case("figure_disk_full_two_layers", setup=_figure_write_fails, layer=["pre", "rep"], cb={"log_figures": True},
         warning=FigureIOWarning),
    Case("layer_skipped_from_the_second_epoch", net=SkipsRep, epochs=2, warning=UnreadableLayerWarning, nan="all",
         valid=(1.0, 0.0)),
    Case("pooled_width_differs_between_bank_batches", cb={"pooling": _width_by_batch_size, "train_probe": 100},
         warning=UnreadableLayerWarning, nan="all", valid=(0.0,)),
    Case("width_differs_between_validation_batches", net=RaggedInValidation, layer="seq",
         data=lambda: data(n_val=128)),
    # limit_val_batches=1: the validation loop captures the first 64 probe rows (3 wide), the probe pass embeds the
    # other 64 (2 wide); their concatenation raised a RuntimeError after the capture's collective, outside the
    # agreement on the probe pass (under DDP the other ranks waited in it).
    Case("width_changes_between_capture_and_probe_pass", net=WidthByContent, layer="seq", data=_val_with_a_long_row,
         cb={"val_probe": 128, "train_query_probe": 0}, trainer={"limit_val_batches": 1},
         warning=UnreadableLayerWarning, nan="all", valid=(0.0,)),
    # Each role's pass is consistent on its own: the bank is one probe batch of 64 rows (3 wide), the queries one of
    # 48 (2 wide). The metric's update raised a ValueError on the mismatch (under DDP, on one rank alone).
    Case("width_differs_between_roles", cb={"pooling": _width_by_batch_size, "train_probe": 64, "val_probe": 48,
                                            "train_query_probe": 0, "capture_validation": False},
         warning=UnreadableLayerWarning, nan="all", valid=(0.0,)),
    Case("dead_layer_with_snapshot", rep=lambda x, e: x * 0.0, cb=SNAP, warning=DegenerateRepresentationWarning,
         nan=DEAD, values={"gap": 0.0}, valid=(0.0,)),
    Case("one_of_two_layers_dead", rep=lambda x, e: x * 0.0, layer=["pre", "rep"],
         warning=DegenerateRepresentationWarning, nan=DEAD, values={"gap": 0.0}, valid=(0.0,)),
    Case("reference_fn_nan", layer="rep", cb={"reference_fn": _ref_fn(torch.full((128, 16), math.nan))},
         warning=NonFiniteRepresentationWarning, nan="all", valid=(0.0,)),
    Case("reference_fn_collapsed", layer="rep", cb={"reference_fn": _ref_fn(torch.zeros(128, 16))},
         warning=DegenerateRepresentationWarning, nan=DEAD, values={"bank_dup_frac": 1.0}, valid=(0.0,)),
    Case("reference_fn_width_changes_after_setup", layer="rep", epochs=2,
         cb={"reference_fn": _narrower_at_the_first_measurement}, warning=ReferenceBankWarning, valid=(0.0, 1.0)),
    Case("reference_fn_never_ready", layer="rep", cb={"reference_fn": lambda module: None},
         warning=ReferenceBankWarning, nan="all", valid=(0.0,)),
    Case("approximate_index_dead_layer", rep=lambda x, e: x * 0.0, cb={"config": GapConfig(index="ivf")},
         warning=DegenerateRepresentationWarning, nan=(*DEAD, "recall", "gap_rel_error"), values={"gap": 0.0},
         valid=(0.0,)),
    Case("early_stopping_sees_nan", rep=lambda x, e: x * math.nan if e == 1 else x, epochs=3,
         trainer={"callbacks_extra": "early_stopping"}, warning=NonFiniteRepresentationWarning, valid=(1.0, 0.0, 1.0)),
    Case("checkpoint_monitors_nan", rep=lambda x, e: x * 0.0 if e == 0 else x, epochs=2,
         trainer={"callbacks_extra": "checkpoint", "enable_checkpointing": True},
         warning=DegenerateRepresentationWarning, valid=(0.0, 1.0)),
    Case("precision_64_true", trainer={"precision": "64-true"}),
    Case("precision_bf16_true", trainer={"precision": "bf16-true"}),
    Case("precision_16_true", trainer={"precision": "16-true"}),
    Case("precision_bf16_mixed", trainer={"precision": "bf16-mixed"}),
    Case("too_few_queries", cb={"val_probe": 4, "train_query_probe": 0}, warning=TooFewQueriesWarning,
         nan=FIT_ONLY, valid=(0.0,)),
    Case("all_queries_identical", layer="pre", data=lambda: data(val=torch.ones(64, AMBIENT)),
         warning=UndefinedValueWarning, nan=("dim", "dim_low", "dim_high", "dim_method"), valid=(0.0,)),
]  # fmt: skip


def _fit(case: Case, tmp_path: Path) -> tuple[RepresentationGapCallback, pl.Trainer]:
    cb_kwargs = {**PROBES, "log_figures": False, **case.cb}
    if "snapshot_on" in cb_kwargs:
        cb_kwargs["snapshot_dir"] = str(tmp_path / cb_kwargs.get("snapshot_dir", "snaps"))
    cb = RepresentationGapCallback(layer=case.layer, **cb_kwargs)
    trainer_kwargs = {"enable_checkpointing": False, **case.trainer}
    extra = trainer_kwargs.pop("callbacks_extra", None)
    callbacks: list[pl.Callback] = [cb]
    if extra == "early_stopping":
        callbacks.append(EarlyStopping(monitor="repgap/gap_norm", mode="min", patience=5, check_finite=False))
    if extra == "checkpoint" or trainer_kwargs.get("enable_checkpointing"):
        callbacks.append(ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="repgap/dim", mode="min"))
    trainer = pl.Trainer(
        max_epochs=case.epochs,
        accelerator="cpu",
        devices=1,
        callbacks=callbacks,
        logger=CSVLogger(tmp_path, name="csv"),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        **trainer_kwargs,
    )
    pl.seed_everything(0, verbose=False)
    trainer.fit((case.net or Net)(rep=case.rep, pre=case.pre), *case.data())
    return cb, trainer


def _assert_nothing_partial(root: Path) -> None:
    for path in root.rglob("*"):
        assert ".tmp" not in path.name, f"temporary file left behind: {path}"
        assert "partial" not in path.name, f"partial file left behind: {path}"
        if path.name == MANIFEST_NAME:
            load_snapshot(path.parent)  # verifies every file's size and sha256


def _layer_values(entry: dict[str, Any], prefix: str) -> dict[str, float]:
    return {k[len(prefix) :]: v for k, v in entry.items() if k.startswith(prefix) and "/" not in k[len(prefix) :]}


@pytest.fixture(autouse=True)
def _not_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STRICT_ENV, raising=False)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fit_survives(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if case.setup is not None:
        case.setup(monkeypatch, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cb, trainer = _fit(case, tmp_path)
    assert trainer.state.status == "finished", "the fit must run to its end"
    assert [h["epoch"] for h in cb.history] == list(range(case.epochs))
    faults = [w for w in caught if issubclass(w.category, MeasurementFaultWarning)]
    stray = [w for w in caught if issubclass(w.category, RuntimeWarning) and "encountered in" in str(w.message)]
    assert not stray, f"raw numpy warnings: {[str(w.message) for w in stray]}"
    if case.warning is None:
        assert not faults, [str(w.message) for w in faults]
    else:
        matching = [w for w in caught if issubclass(w.category, case.warning)]
        assert matching, f"expected a {case.warning.__name__}, got {[w.category.__name__ for w in caught]}"
        if issubclass(case.warning, MeasurementFaultWarning):
            assert len(matching) == 1, "warned once per cause and layer"
            layers = [case.layer] if isinstance(case.layer, str) else case.layer
            if case.warning not in (SnapshotIOWarning, FigureIOWarning):
                assert any(repr(name) in str(matching[0].message) for name in layers), "the warning names the layer"
    _assert_nothing_partial(tmp_path)

    layers = [case.layer] if isinstance(case.layer, str) else case.layer
    for name in layers:
        prefix = "repgap/" if len(layers) == 1 else f"repgap/{name}/"
        valid = [h[prefix + "valid"] for h in cb.history]
        last = _layer_values(cb.history[-1], prefix)
        keys = expected_keys(
            train_queries=cb.train_query_probe > 0,
            labels=cb.reference_fn is None,
            approximate=cb.config.index == "ivf",
        )
        assert set(last) == {*keys, "valid"}, "every key is logged, defined or not"
        logged = {k[len(prefix) :]: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(prefix)}
        for key, value in last.items():  # what was logged is what the history says
            assert math.isnan(logged[key]) if math.isnan(value) else logged[key] == pytest.approx(value, rel=1e-6)
        if len(layers) > 1 and name == "pre":
            assert valid == [1.0] * case.epochs
            continue
        assert tuple(valid) == case.valid
        nan = set(last) - {"valid"} if case.nan == "all" else set(case.nan) & set(last)
        for key, value in last.items():
            if key in nan:
                assert math.isnan(value), f"{key} should be NaN, got {value}"
            else:
                assert math.isfinite(value), f"{key} should be defined, got {value}"
        for key, value in case.values.items():
            assert last[key] == pytest.approx(value, abs=1e-12), key
    if case.check is not None:
        case.check(cb, tmp_path)


def _unlabelled_val() -> tuple[DataLoader, DataLoader]:
    """Labelled training rows; validation targets as class probabilities (no label vector: no ``knn_acc``)."""
    train, _ = data()
    xv = _manifold(64, 1)
    probs = nn.functional.one_hot(_labels(xv), 2).float()
    return train, DataLoader(TensorDataset(xv, probs), batch_size=64)


def test_a_fault_epoch_logs_the_keys_of_a_normal_epoch_when_only_the_training_set_has_labels(tmp_path: Path) -> None:
    # knn_acc needs the bank's and the queries' labels: with unlabelled validation rows no epoch logs it, the epoch of
    # an unreadable layer included (it logged knn_acc as NaN there: the flag was read off the training set alone).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cb, trainer = _fit(Case("val_unlabelled", net=SkipsRep, epochs=2, data=_unlabelled_val), tmp_path)
    assert trainer.state.status == "finished"
    assert any(issubclass(w.category, UnreadableLayerWarning) for w in caught)
    first, second = (_layer_values(h, "repgap/") for h in cb.history)
    assert (first["valid"], second["valid"]) == (1.0, 0.0)
    assert "knn_acc" not in first
    assert set(second) == set(first)


def test_strict_mode_reraises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(DegenerateRepresentationError, match="identical"):
        _fit(Case("strict", rep=lambda x, e: x * 0.0), tmp_path)
    monkeypatch.delenv(STRICT_ENV)
    cb = RepresentationGapCallback(layer="rep", strict=True, **PROBES)
    trainer = pl.Trainer(max_epochs=1, callbacks=[cb], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, num_sanity_val_steps=0, default_root_dir=tmp_path)  # fmt: skip
    with pytest.raises(NonFiniteRepresentationError, match="NaN"):
        trainer.fit(Net(rep=lambda x, e: x * math.nan), *data())


def test_strict_mode_reraises_an_unreadable_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(UnreadableLayerError, match="'rep' produced no output during the probe pass") as raised:
        _fit(Case("strict_skip", net=SkipsRep, epochs=2), tmp_path)
    assert isinstance(raised.value.__cause__, ProbeConfigurationError)


@pytest.mark.parametrize("kind", ["snapshot", "figure"])
def test_a_strict_mode_io_fault_keeps_the_os_error_as_its_cause(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Strict mode holds rank zero's I/O fault and raises it after the values' broadcast, outside the `except` that
    # caught the write's OSError: without an explicit cause the traceback lost the OSError (errno, path, frames).
    monkeypatch.setenv(STRICT_ENV, "1")
    if kind == "snapshot":
        _not_a_dir(monkeypatch, tmp_path)
        case = Case("strict_snap", cb={**SNAP, "snapshot_dir": "blocker/snaps"})
        fault, cause = SnapshotIOError, errno.ENOTDIR
    else:
        _figure_write_fails(monkeypatch, tmp_path)
        case = Case("strict_fig", cb={"log_figures": True})
        fault, cause = FigureIOError, errno.ENOSPC
    with pytest.raises(fault, match="could not be written") as raised:
        _fit(case, tmp_path)
    assert isinstance(raised.value.__cause__, OSError)
    assert not isinstance(raised.value.__cause__, fault)
    assert raised.value.__cause__.errno == cause


def test_a_layer_profile_without_matplotlib_warns_and_the_fit_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both layers collapse (a zero input layer): no layer's gap curve is drawn (those draws warned about a missing
    # matplotlib and turned figures off), but the two-layer profile still was, and its ModuleNotFoundError ended fit.
    monkeypatch.setattr(imports_module, "_MATPLOTLIB_AVAILABLE", False)
    case = Case("profile_no_mpl", pre=lambda x, e: x * 0.0, layer=["pre", "rep"], cb={"log_figures": True})
    with pytest.warns(UserWarning, match="cannot draw: Plotting needs matplotlib"):
        cb, trainer = _fit(case, tmp_path)
    assert trainer.state.status == "finished"
    assert cb.log_figures is False
    assert [h["repgap/rep/valid"] for h in cb.history] == [0.0]


def test_strict_mode_reraises_a_reference_fn_bank_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The measurement's bank check is a survivable fault now; strict mode still raises it, as the error the check
    # raised before (a ValueError naming reference_fn, the layer and both widths; a TypeError for None).
    monkeypatch.setenv(STRICT_ENV, "1")
    case = Case("strict_bank", layer="rep", cb={"reference_fn": _narrower_at_the_first_measurement})
    with pytest.raises(ReferenceBankError, match=r"width 8, but the queries, layer 'rep', have width 16") as raised:
        _fit(case, tmp_path)
    assert isinstance(raised.value, ValueError)
    assert isinstance(raised.value, TypeError)
    assert isinstance(raised.value.__cause__, ValueError)


def test_an_error_raised_by_reference_fn_propagates_outside_strict_mode(tmp_path: Path) -> None:
    # An error in the user's code is no bank fault, although a ValueError as the bank checks raise: it propagates
    # as raised at the first measurement (DESIGN §5), not survived as a ReferenceBankError with strict mode off.
    calls: list[bool] = []

    def bank(module: pl.LightningModule) -> torch.Tensor:
        calls.append(module.trainer.training)
        if not module.trainer.training:  # the measurement (training starts with a call in training)
            raise ValueError("the user's bank sampler broke")
        return _manifold(128, 2) @ torch.eye(AMBIENT, 16)

    case = Case("raising_bank", layer="rep", cb={"reference_fn": bank, "strict": False})
    with pytest.raises(ValueError, match="the user's bank sampler broke") as raised:
        _fit(case, tmp_path)
    assert not isinstance(raised.value, ReferenceBankError)
    assert calls == [True, False]


def test_scale_free_keys_do_not_move_with_the_representation_scale(tmp_path: Path) -> None:
    """No silent wrong number: at 1e-30 and 1e30 the run logs the unit-scale keys, and gap times s^2."""
    runs = {}
    for s in (1.0, 1e-30, 1e30):
        cb, _ = _fit(Case(f"scale{s}", rep=lambda x, e, s=s: x * s), tmp_path / str(s))
        runs[s] = _layer_values(cb.history[-1], "repgap/")
    for s in (1e-30, 1e30):
        assert runs[s]["valid"] == 1.0
        assert runs[s]["gap"] / s**2 == pytest.approx(runs[1.0]["gap"], rel=1e-6)
        for key in set(runs[1.0]) - {"gap"}:
            assert runs[s][key] == pytest.approx(runs[1.0][key], rel=1e-6, abs=1e-12), key


def test_all_identical_bank_in_the_functional_api_is_a_clear_error() -> None:
    from lightning_repgap.functional import representation_gap

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on the way
        with pytest.raises(DegenerateRepresentationError, match="all 64 bank points are identical"):
            representation_gap(np.ones((64, 3)), np.random.default_rng(0).random((8, 3)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        representation_gap(np.full((64, 3), np.nan), np.ones((8, 3)))


@pytest.mark.parametrize("first_queries", [True, False], ids=["queries-first", "distinct-first"])
def test_too_few_queries_and_too_few_distinct_points_warn_separately(first_queries: bool) -> None:
    """Each cause warns once per layer with its own fix, whichever came first (they shared a warn-once key)."""
    faults = [TooFewQueriesError("2 queries."), TooFewDistinctPointsError("3 distinct bank points.")]
    policy = FaultPolicy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for fault in (faults if first_queries else faults[::-1]) * 2:  # each cause twice: warned once
            policy.survive(fault, "rep", ["gap", "dim"])
    by_type = {type(w.message): str(w.message) for w in caught}
    assert len(caught) == 2
    assert set(by_type) == {TooFewQueriesWarning, TooFewDistinctPointsWarning}
    assert "`val_probe`" in by_type[TooFewQueriesWarning]
    assert "`train_probe`" in by_type[TooFewDistinctPointsWarning]
    assert issubclass(TooFewQueriesWarning, TooFewDistinctPointsWarning)  # filters on the old class still apply


def test_a_bank_left_too_small_by_copies_carries_its_sizes_and_fit_min_size() -> None:
    """``TooFewDistinctSizesError`` is a survivable fault (with the defined keys) and a ``TooFewFitSizesError`` that
    carries the distinct bank's sizes and ``fit_min_size`` (it carried ``[]`` and 0); ``rows_for_the_fit`` keeps it."""
    from lightning_repgap._duplicates import rows_for_the_fit
    from lightning_repgap.functional import representation_gap

    rng = np.random.default_rng(0)
    copies = np.concatenate([rng.random((20, 3))] * 10)  # 200 rows, 20 distinct: sizes 16, 20 only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicatePointsWarning)
        with pytest.raises(TooFewDistinctSizesError, match="exact copies") as err:
            representation_gap(copies, rng.random((16, 3)), n_bootstrap=0, fit_min_size=18)
    fault = err.value
    assert isinstance(fault, TooFewFitSizesError)
    assert isinstance(fault, TooFewDistinctPointsError)
    assert fault.fit_min_size == 18
    assert fault.sizes[-1] == 20
    assert len(fault.sizes) >= 2
    assert sum(n >= 18 for n in fault.sizes) < 3
    assert fault.partial["gap"] > 0
    with (
        pytest.raises(TooFewDistinctSizesError, match="has 200 rows, 20 distinct") as kept,
        rows_for_the_fit("demo", 200, 20, 16),
    ):
        raise fault
    assert (kept.value.sizes, kept.value.fit_min_size, kept.value.partial) == (fault.sizes, 18, fault.partial)
    # Explicit sizes beyond the distinct bank: the same fault, not "`sizes` must be ... (the bank has only 20 points)".
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicatePointsWarning)
        with pytest.raises(TooFewDistinctSizesError, match=r"20 distinct bank points .* largest of `sizes` \(200\)"):
            representation_gap(copies, rng.random((16, 3)), n_bootstrap=0, sizes=(16, 32, 64, 200))


def test_explicit_sizes_beyond_a_bank_without_copies_stay_a_bad_sizes_error() -> None:
    """Fewer rows than the largest of ``sizes`` is a bad ``sizes``, not a fault of copies ("after removing 0")."""
    from lightning_repgap.functional import representation_gap

    rng = np.random.default_rng(0)
    for bank in (rng.random((100, 3)), np.concatenate([rng.random((50, 3))] * 2)):  # no copies; 50 copies
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DuplicatePointsWarning)
            with pytest.raises(ValueError, match=r"`sizes` must be strictly increasing") as err:
                representation_gap(bank, rng.random((16, 3)), n_bootstrap=0, sizes=(16, 32, 64, 200))
        assert not isinstance(err.value, TooFewDistinctPointsError)


def test_case_list_covers_thirty_causes() -> None:
    assert len({c.name for c in CASES}) >= 30


@pytest.mark.parametrize(("dtype", "scale", "wider"), [("float16", 1e6, "float32"), ("float32", 1e39, "float64")])
def test_a_snapshot_beyond_its_dtype_names_the_dtype_fix_not_the_disk(
    tmp_path: Path, dtype: str, scale: float, wider: str
) -> None:
    """The overflow warning says to widen ``snapshot_dtype``; disk space and permissions are not the cause."""
    from types import SimpleNamespace

    from lightning_repgap import _callback_outputs

    arrays = {"reference": np.full((4, 2), scale), "queries": np.ones((2, 2))}
    cb = SimpleNamespace(
        _pending_snapshot=[("epoch=0000", arrays, {"epoch": 0})],
        snapshot_dir=str(tmp_path),
        snapshot_dtype=dtype,
        _faults=FaultPolicy(strict=False),
    )
    with pytest.warns(SnapshotIOWarning) as caught:
        _callback_outputs.write_pending(cb, SimpleNamespace(is_global_zero=True))  # type: ignore[arg-type]
    message = str(caught[0].message)
    assert f"pass `snapshot_dtype={wider!r}`" in message
    assert "wider `snapshot_dtype`" in message
    assert "disk space" not in message
    assert not list(tmp_path.iterdir())  # nothing written
