"""The validation probe taken from the validation loop's own forward passes (``_val_capture``), and its fallbacks.

The DDP case (an unshuffled ``DistributedSampler``, padding included) runs in ``test_callback.py``'s two-process test.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from _helpers.models import MLP, QUIET_TRAINER, manifold_task
from torch.utils.data import DataLoader

from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.config import GapConfig


class _CountingMLP(MLP):
    """Counts the validation-set rows its backbone embeds outside the validation loop (the probe passes)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.in_val_loop = False
        self.probe_rows = 0
        self.backbone.register_forward_hook(self._count)

    def _count(self, module, args, output) -> None:
        if not self.in_val_loop and not self.training:
            self.probe_rows += output.shape[0]

    def on_validation_batch_start(self, batch, batch_idx, dataloader_idx=0):
        self.in_val_loop = True

    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
        self.in_val_loop = False


class _ShiftedValidation(MLP):
    """A validation_step that feeds the model something else than the probe pass would."""

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self(x + 1.0), y))


def _fit(model_cls, val_loader, *, epochs: int = 1, **cb_kwargs):
    pl.seed_everything(0)
    model = model_cls(lr=0.0)  # the same frozen weights in every run
    train = DataLoader(manifold_task(320), batch_size=64, shuffle=True)
    cb = RepresentationGapCallback(
        layer="backbone", train_probe=256, train_query_probe=0, config=GapConfig(n_bootstrap=10), **cb_kwargs
    )
    trainer = pl.Trainer(
        max_epochs=epochs,
        limit_train_batches=1,
        accelerator="cpu",
        devices=1,
        callbacks=[cb],
        **QUIET_TRAINER,
    )
    trainer.fit(model, train, val_loader)
    return cb, model


def _val(batch_size: int = 32, shuffle: bool = False, n: int = 128) -> DataLoader:
    return DataLoader(manifold_task(n, seed=1), batch_size=batch_size, shuffle=shuffle)


def test_whole_validation_set_probe_is_bitwise_the_probe_pass():
    # Probe = the whole validation set, probe batches = validation batches: the same rows in the same batches.
    captured, on = _fit(_CountingMLP, _val(), val_probe=128, batch_size=32)
    probed, off = _fit(_CountingMLP, _val(), val_probe=128, batch_size=32, capture_validation=False)
    assert captured.history == probed.history
    assert captured.last_timing["val_captured"] == 128
    assert probed.last_timing["val_captured"] == 0
    # The probe pass embeds the bank and, without the capture, the 128 queries; with it only the 8 check rows.
    assert off.probe_rows - on.probe_rows == 128 - 8


def test_probe_subset_in_other_batches_matches_up_to_rounding():
    captured, _ = _fit(MLP, _val(batch_size=24, n=150), val_probe=50, batch_size=64)
    probed, _ = _fit(MLP, _val(batch_size=24, n=150), val_probe=50, batch_size=64, capture_validation=False)
    assert captured.last_timing["val_captured"] == 50
    a, b = captured.history[-1], probed.history[-1]
    assert a.keys() == b.keys()
    for key, value in b.items():
        assert a[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


@pytest.fixture(scope="module")
def probe_pass_history():
    return _fit(MLP, _val(), val_probe=64, capture_validation=False)[0].history


@pytest.mark.parametrize(
    ("model", "loader", "kwargs"),
    [
        (MLP, _val(shuffle=True), {}),  # row -> sample mapping unknown
        (MLP, _val(), {"forward_fn": lambda m, b: m(b[0])}),  # the user defines the probe pass
        (_ShiftedValidation, _val(), {}),  # validation forward differs: the check catches it
    ],
    ids=["shuffled", "forward_fn", "different-forward"],
)
def test_uncertain_capture_falls_back_to_the_probe_pass(model, loader, kwargs, probe_pass_history):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        cb, _ = _fit(model, loader, val_probe=64, **kwargs)
    assert cb.last_timing["val_captured"] == 0
    assert cb.history == probe_pass_history  # every case's probe pass is MLP's forward on the same rows
    warned = [str(w.message) for w in seen if "other representations than the probe pass" in str(w.message)]
    assert bool(warned) == (model is _ShiftedValidation)


@pytest.mark.parametrize("broken", ["pool", "split_batch"], ids=["in-the-forward-hook", "at-batch-end"])
def test_a_failure_inside_the_capture_never_reaches_the_users_fit(monkeypatch, probe_pass_history, broken):
    # The hook runs inside the model's forward and batch_end on the user's batch: whatever goes wrong there must
    # fall back to the probe pass.
    import lightning_repgap._val_capture as val_capture

    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        raise RuntimeError(f"{broken} broke")

    monkeypatch.setattr(val_capture, broken, failing)
    cb, _ = _fit(MLP, _val(), val_probe=64)
    assert calls["n"] > 0  # the hook did run inside the validation forward
    assert cb.last_timing["val_captured"] == 0
    assert cb.history == probe_pass_history


def test_an_error_inside_the_captures_collective_step_is_not_taken_for_an_unreadable_layer(monkeypatch):
    # `finish` runs the capture's collective on every rank, and nothing in it may raise on one rank alone. An error
    # there (a bug) must propagate as raised: it was caught with the errors after that collective and handed to the
    # agreement on the probe pass, where a ProbeConfigurationError became a survived unreadable layer (and under
    # DDP that rank met the agreement's collective while the others waited in the capture's).
    from lightning_repgap._val_capture import ValidationCapture
    from lightning_repgap.capture import ProbeConfigurationError

    def broken(self, trainer, probe, embed):
        raise ProbeConfigurationError("finish broke before its collective")

    monkeypatch.setattr(ValidationCapture, "finish", broken)
    with pytest.raises(ProbeConfigurationError, match="finish broke"):
        _fit(MLP, _val(), val_probe=64, strict=False)
