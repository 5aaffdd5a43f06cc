"""RepresentationGapEarlyStopping: the pure rule, the callback in real Trainers, and the study's replay."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
from dataclasses import asdict

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.plugins import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_repgap._faults import SnapshotIOError
from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.config import GapConfig
from lightning_repgap.stopping import (
    RepresentationGapEarlyStopping,
    RiseState,
    StopState,
    replay,
    rise_decision,
    stopping_decision,
)
from studies import stopping as study

RUNS = study.load_runs() if study.RUNS_FILE.exists() else []
FRESH = study.load_runs(study.FRESH_FILE) if study.FRESH_FILE.exists() else []
UNTOUCHED = study.load_runs(study.UNTOUCHED_FILE) if study.UNTOUCHED_FILE.exists() else []


# ------------------------------------------------------------------------------------------------ the pure rule


def test_rule_stops_on_a_sustained_rise_and_recommends_the_last_epoch_before_it():
    values = [5.0, 2.0, 1.0, 1.05, 1.02, 1.3, 1.4, 1.5, 1.6]
    assert replay(values, tolerance=0.1, patience=3) == (4, 7)
    # One step above the band is not a sustained rise: it comes back, the counter resets; without a stop the run
    # keeps its final weights.
    assert replay([1.0, 1.3, 1.0, 1.3, 1.0, 1.3], tolerance=0.1, patience=2) == (5, None)


def test_flat_run_never_stops_and_keeps_its_latest_weights():
    values = [1.0 + 0.01 * math.sin(k) for k in range(40)]
    assert replay(values, tolerance=0.05, patience=2) == (39, None)


def test_nan_is_no_evidence_never_a_reason_to_stop():
    nan = math.nan
    assert replay([nan] * 10, tolerance=0.0, patience=1) == (9, None)
    # NaNs between out-of-band values neither count towards patience nor reset it.
    assert replay([1.0, 2.0, nan, nan, nan, 2.0], tolerance=0.1, patience=2) == (0, 5)
    state = RiseState(reference=1.0, best_epoch=3, best_value=1.0, wait=1, seen=4)
    for bad in (nan, math.inf, -math.inf):
        assert rise_decision(state, 9, bad, tolerance=0.1, patience=2) == (state, False, False)


def test_several_keys_stop_on_any_rise_and_recommend_epochs_where_all_are_in_band():
    flat, rising = [1.0] * 8, [1.0, 1.0, 1.0, 1.5, 1.6, 1.7, 1.8, 1.9]
    assert replay([flat, rising], tolerance=0.1, patience=3) == (2, 5)
    assert replay([rising, flat], tolerance=0.1, patience=3) == (2, 5)
    # A key with no evidence (NaN) neither blocks a recommendation nor stops.
    assert replay([flat, [math.nan] * 8], tolerance=0.1, patience=3) == (7, None)
    # One rule step with a value above one key's band: no recommendation, no stop yet.
    state = StopState.start(2)
    state, recommend, stop = stopping_decision(state, 0, [1.0, 1.0], tolerance=[0.1, 0.1], patience=2, warmup=[0, 0])
    state, recommend, stop = stopping_decision(state, 1, [1.0, 2.0], tolerance=[0.1, 0.1], patience=2, warmup=[0, 0])
    assert (state.best_epoch, recommend, stop) == (0, False, False)
    with pytest.raises(ValueError, match="One value, tolerance, keep tolerance and warm-up per key"):
        stopping_decision(state, 2, [1.0], tolerance=[0.1, 0.1], patience=2, warmup=[0, 0])


def test_small_drifts_are_kept_large_rises_stop_and_no_stop_keeps_the_last_epoch():
    # A clean run: up 40 % over its minimum (beyond the keep band, short of the rise tolerance) never stops, and the
    # rule then recommends the final weights, not the last epoch within the keep band.
    drift = [1.0, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.26]
    assert replay(drift, tolerance=0.5, keep_tolerance=0.1, patience=2) == (7, None)
    # A memorising run: up 60 % and more for 2 measurements stops and keeps the last epoch within 10 % of the minimum.
    rise = [1.0, 0.9, 0.95, 1.1, 1.3, 1.45, 1.6, 1.7]
    assert replay(rise, tolerance=0.5, keep_tolerance=0.1, patience=2) == (2, 6)
    # Between the bands is neither a recommendation nor evidence: the counter resets.
    assert replay([1.0, 1.6, 1.3, 1.6, 1.3, 1.6], tolerance=0.5, keep_tolerance=0.1, patience=2) == (5, None)
    state, recommend, stop = rise_decision(
        RiseState(1.0, 0, 1.0, 1, 1), 1, 1.3, tolerance=0.5, patience=2, keep_tolerance=0.1
    )
    assert (state.wait, state.best_epoch, recommend, stop) == (0, 0, False, False)


def test_warmup_measurements_neither_set_the_reference_nor_stop():
    values = [0.1, 5.0, 5.0, 5.0, 5.0]  # an early dip (a near-untrained network) is not the reference
    assert replay(values, tolerance=0.1, patience=2, warmup=0) == (0, 2)
    assert replay(values, tolerance=0.1, patience=2, warmup=1) == (4, None)


# ---------------------------------------------------------------------------------- the callback in a Trainer


class Tiny(pl.LightningModule):
    """A two-layer model with a ``backbone``; one batch per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.backbone(x))

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _loaders():
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g))
    return DataLoader(data, batch_size=16), DataLoader(data, batch_size=16)


class Replayed(RepresentationGapCallback):
    """A gap callback that logs recorded values (by epoch) instead of measuring: the rule's input, controlled."""

    def __init__(self, values: dict[str, list[float]], **kwargs) -> None:
        super().__init__(layer="backbone", train_probe=64, val_probe=8, **kwargs)
        self.values = values

    def on_train_start(self, trainer, pl_module):
        pass  # replays recorded values: no probes to draw from the tiny data set, so no setup-time probe pass

    def on_validation_epoch_end(self, trainer, pl_module):
        if self._should_skip(trainer):
            return
        epoch = trainer.current_epoch
        pl_module.log_dict({f"repgap/{k}": float(v[epoch]) for k, v in self.values.items()}, on_epoch=True)


def _trainer(tmp_path, callbacks, max_epochs, **kwargs):
    defaults = {
        "max_epochs": max_epochs,
        "accelerator": "cpu",
        "devices": 1,
        "callbacks": callbacks,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "default_root_dir": tmp_path,
    }
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


def _fit(tmp_path, values, stopper, max_epochs=None, **kwargs):
    n = len(next(iter(values.values())))
    trainer = _trainer(tmp_path, [Replayed(values), stopper], max_epochs or n, **kwargs)
    trainer.fit(Tiny(), *_loaders())
    return trainer


def _recorded_cases():
    """Per regime, the first recorded run the frozen rule stops and the first it lets run to the end."""
    if not RUNS:
        return []
    rule = study.load_rule()
    monitor = study.rule_monitor(rule)
    cases, seen = [], set()
    for run in RUNS + FRESH:
        key = (run["regime"], monitor.kept(run["epochs"])[1] is None)
        if key not in seen:
            seen.add(key)
            cases.append(pytest.param(run, rule, id=f"{run['regime']}-{study._label(run)}"))
    return cases


@pytest.mark.skipif(not RUNS, reason="studies/stopping_runs.json not recorded")
@pytest.mark.parametrize(("run", "rule"), _recorded_cases())
def test_callback_makes_the_studys_replayed_decision_on_recorded_runs(tmp_path, run, rule):
    values = {key: run["epochs"][key] for key in rule["monitor"]}
    params = {k: rule[k] for k in ("tolerance", "keep_tolerance", "patience", "warmup")}
    stopper = RepresentationGapEarlyStopping(monitor=rule["monitor"], **params)
    trainer = _fit(tmp_path, values, stopper)
    kept, stopped = study.rule_monitor(rule).kept(run["epochs"])
    assert (stopper.best_epoch, stopper.stopped_epoch) == (kept, stopped)
    assert trainer.current_epoch == (len(run["epochs"]["truth"]) if stopped is None else stopped + 1)
    # The saved weights are the recommended epoch's (saved after it, or at the end of training without a stop).
    saved = torch.load(stopper.best_model_path, weights_only=False)
    assert saved["epoch"] in ((kept,) if stopped is not None else (kept, trainer.current_epoch))
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in trainer.lightning_module.state_dict().items()) == (
        stopped is None or kept == stopped
    )


def test_saves_the_recommended_weights_the_moment_they_are_recommended(tmp_path):
    class Spy(pl.Callback):
        def __init__(self):
            self.saved = {}

        def on_validation_end(self, trainer, pl_module):
            if stopper.best_model_path and os.path.exists(stopper.best_model_path):
                ckpt = torch.load(stopper.best_model_path, weights_only=False)
                self.saved[trainer.current_epoch] = ckpt["epoch"]

    stopper = RepresentationGapEarlyStopping(monitor="gap_norm", tolerance=0.1, patience=2, warmup=0)
    spy = Spy()
    values = {"gap_norm": [3.0, 1.0, 1.05, 2.0, 2.0, 2.0]}
    trainer = _trainer(tmp_path, [Replayed(values), stopper, spy], 6)
    trainer.fit(Tiny(), *_loaders())
    assert spy.saved == {0: 0, 1: 1, 2: 2, 3: 2, 4: 2}
    assert (stopper.best_epoch, stopper.stopped_epoch) == (2, 4)
    assert not [f for f in os.listdir(os.path.dirname(stopper.best_model_path)) if f.endswith(".tmp")]
    # The checkpoint restores the recommended weights through the Trainer.
    model = Tiny.load_from_checkpoint(stopper.best_model_path)
    assert isinstance(model, Tiny)


def test_saves_full_checkpoints_without_lightnings_per_save_log_line(tmp_path, caplog):
    # Lightning logs "`weights_only` was not set" at every save that leaves it unset: the quickstart printed it
    # once per epoch. The checkpoint is a full one (callbacks' states included), as before.
    stopper = RepresentationGapEarlyStopping(monitor="gap_norm", tolerance=0.5, warmup=0)
    with caplog.at_level("INFO", logger="lightning.pytorch.trainer.connectors.checkpoint_connector"):
        _fit(tmp_path, {"gap_norm": [1.0, 0.9, 1.0]}, stopper)
    assert not [r for r in caplog.records if "weights_only" in r.getMessage()]
    assert "callbacks" in torch.load(stopper.best_model_path, weights_only=False)


def test_nan_keys_never_stop_a_run(tmp_path):
    stopper = RepresentationGapEarlyStopping(monitor="gap_norm", tolerance=0.0, patience=1, warmup=0)
    _fit(tmp_path, {"gap_norm": [1.0] + [math.nan] * 7}, stopper)
    assert (stopper.best_epoch, stopper.stopped_epoch) == (7, None)
    # Never a finite value: no evidence at all, the final weights, as the study's replay says.
    blind = RepresentationGapEarlyStopping(monitor="gap_norm", tolerance=0.0, patience=1, warmup=0)
    _fit(tmp_path / "blind", {"gap_norm": [math.nan] * 4}, blind)
    assert (blind.best_epoch, blind.stopped_epoch) == replay([math.nan] * 4, tolerance=0.0, patience=1) == (3, None)
    assert os.path.basename(blind.best_model_path) == "repgap-best-final.ckpt"


def test_without_a_stop_the_final_weights_are_recommended_and_saved(tmp_path):
    stopper = RepresentationGapEarlyStopping(monitor="gap_norm", tolerance=0.5, keep_tolerance=0.1, warmup=0)
    trainer = _fit(tmp_path, {"gap_norm": [1.0, 0.9, 1.0, 1.1, 1.2, 1.3]}, stopper)
    assert (stopper.best_epoch, stopper.stopped_epoch) == (5, None)
    saved = torch.load(stopper.best_model_path, weights_only=False)["state_dict"]
    assert all(torch.equal(saved[k], v) for k, v in trainer.lightning_module.state_dict().items())


class FlakyIO(TorchCheckpointIO):
    """Checkpoint IO whose writes fail (``OSError``) for the given epochs: a full disk, a lost mount."""

    def __init__(self, fail_epochs):
        super().__init__()
        self.fail_epochs = set(fail_epochs)

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        if checkpoint["epoch"] in self.fail_epochs:
            raise OSError(28, "No space left on device")
        super().save_checkpoint(checkpoint, path, storage_options)


def test_a_failed_save_warns_and_never_ends_fit_or_changes_the_decision(tmp_path):
    values = {"gap_norm": [3.0, 1.0, 1.05, 2.0, 2.0, 2.0]}
    params = {"monitor": "gap_norm", "tolerance": 0.1, "patience": 2, "warmup": 0}
    clean = RepresentationGapEarlyStopping(**params)
    _fit(tmp_path / "clean", values, clean)
    # Epoch 1's save fails, epoch 2's succeeds: same decision, and the path names epoch 2's weights.
    flaky = RepresentationGapEarlyStopping(**params)
    with pytest.warns(UserWarning, match="could not save the weights of epoch 1"):
        trainer = _fit(tmp_path / "flaky", values, flaky, plugins=[FlakyIO({1})])
    assert (flaky.best_epoch, flaky.stopped_epoch) == (clean.best_epoch, clean.stopped_epoch) == (2, 4)
    assert trainer.current_epoch == 5
    assert torch.load(flaky.best_model_path, weights_only=False)["epoch"] == 2
    # The recommended epoch's own save fails: the decision stands, no path names stale weights, no temporary file.
    lost = RepresentationGapEarlyStopping(**params)
    with pytest.warns(UserWarning, match="could not save the weights of epoch 2"):
        _fit(tmp_path / "lost", values, lost, plugins=[FlakyIO({2})])
    assert (lost.best_epoch, lost.stopped_epoch, lost.best_model_path) == (2, 4, None)
    assert not [f for f in os.listdir(tmp_path / "lost" / "checkpoints") if f.endswith(".tmp")]


def test_resumed_run_reaches_the_uninterrupted_decision(tmp_path):
    values = {"gap_norm": [2.0, 1.0, 1.02, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9]}
    whole = RepresentationGapEarlyStopping(monitor="gap_norm", tolerance=0.1, patience=4, warmup=0)
    _fit(tmp_path / "whole", values, whole)
    assert (whole.best_epoch, whole.stopped_epoch) == (2, 6)
    # Killed after epoch 4, mid-patience (two rises counted), then resumed from the last checkpoint.
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
    first = RepresentationGapEarlyStopping(monitor="gap_norm", tolerance=0.1, patience=4, warmup=0)
    trainer = _trainer(tmp_path / "run", [Replayed(values), first, ckpt], 5, enable_checkpointing=True)
    trainer.fit(Tiny(), *_loaders())
    assert first.stopped_epoch is None
    assert first.state.keys[0].wait == 2
    resumed = RepresentationGapEarlyStopping(monitor="gap_norm", tolerance=0.1, patience=4, warmup=0)
    trainer = _trainer(tmp_path / "run", [Replayed(values), resumed], 10)
    trainer.fit(Tiny(), *_loaders(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert (resumed.best_epoch, resumed.stopped_epoch) == (2, 6)
    # The first fit ended without a stop, so it recommended its final weights, in another file: the provisional
    # recommendation's checkpoint still holds epoch 2's weights when the resumed run stops.
    assert (first.best_epoch, os.path.basename(first.best_model_path)) == (4, "repgap-best-final.ckpt")
    assert torch.load(resumed.best_model_path, weights_only=False)["epoch"] == 2


def test_works_with_the_real_gap_callback(tmp_path):
    gap = RepresentationGapCallback(
        layer="backbone", train_probe=64, val_probe=16, config=GapConfig(n_bootstrap=0), log_figures=False
    )
    stopper = RepresentationGapEarlyStopping()
    g = torch.Generator().manual_seed(1)
    train, val = (
        TensorDataset(torch.randn(n, 4, generator=g), torch.randint(0, 2, (n,), generator=g)) for n in (96, 32)
    )
    trainer = _trainer(tmp_path, [gap, stopper], 3)
    trainer.fit(Tiny(), DataLoader(train, batch_size=32), DataLoader(val, batch_size=32))
    assert 0 <= stopper.best_epoch <= 2
    assert os.path.exists(stopper.best_model_path)


def test_a_strict_snapshot_fault_in_the_weights_save_ends_fit_as_that_fault(tmp_path):
    # The gap callback writes its snapshot when a checkpoint is saved; the stopper's own save of the recommended
    # weights is such a checkpoint. Strict mode's SnapshotIOError (an OSError) raised there was taken for a failed
    # weights save and swallowed ("could not save the weights"): strict mode must end the fit with it.
    (tmp_path / "blocker").write_text("a file where the snapshot directory should be")
    gap = RepresentationGapCallback(
        layer="backbone", train_probe=64, val_probe=16, config=GapConfig(n_bootstrap=0), log_figures=False,
        snapshot_dir=str(tmp_path / "blocker" / "snaps"), snapshot_on="checkpoint", strict=True,
    )  # fmt: skip
    stopper = RepresentationGapEarlyStopping(warmup=0)
    g = torch.Generator().manual_seed(1)
    train, val = (
        TensorDataset(torch.randn(n, 4, generator=g), torch.randint(0, 2, (n,), generator=g)) for n in (96, 32)
    )
    trainer = _trainer(tmp_path, [gap, stopper], 2)
    with pytest.raises(SnapshotIOError, match="could not be written"):
        trainer.fit(Tiny(), DataLoader(train, batch_size=32), DataLoader(val, batch_size=32))
    assert stopper.best_model_path is None


def test_lightning_replay_matches_lightnings_early_stopping_and_checkpoint(tmp_path):
    values = [3.0, 2.0, math.nan, 2.5, 1.5, 1.6, 1.7, 1.5, 1.8, 1.9]
    es = EarlyStopping(monitor="repgap/gap_norm", mode="min", patience=3, check_finite=False)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="repgap/gap_norm", mode="min", save_top_k=1)
    trainer = _trainer(tmp_path, [Replayed({"gap_norm": values}), es, ckpt], len(values), enable_checkpointing=True)
    trainer.fit(Tiny(), *_loaders())
    kept = torch.load(ckpt.best_model_path, weights_only=False)["epoch"]
    assert study.replay_lightning(values, "min", 3) == (kept, es.stopped_epoch)


# ------------------------------------------------------------------------------------------------ configuration


def test_missing_gap_callback_is_a_setup_error(tmp_path):
    trainer = _trainer(tmp_path, [RepresentationGapEarlyStopping()], 2)
    with pytest.raises(MisconfigurationException, match="has no RepresentationGapCallback"):
        trainer.fit(Tiny(), *_loaders())


def test_measuring_less_often_than_the_patience_is_a_setup_error(tmp_path):
    gap = Replayed({"gap_norm": [1.0] * 8}, every_n_epochs=3)
    trainer = _trainer(tmp_path, [gap, RepresentationGapEarlyStopping(patience=2)], 8)
    with pytest.raises(MisconfigurationException, match="only every 3 epochs"):
        trainer.fit(Tiny(), *_loaders())
    # Within the patience it runs, and only measured epochs count.
    values = {"gap_norm": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]}
    stopper = RepresentationGapEarlyStopping(monitor="gap_norm", patience=2, tolerance=0.1, warmup=0)
    trainer = _trainer(tmp_path, [Replayed(values, every_n_epochs=2), stopper], 8)
    trainer.fit(Tiny(), *_loaders())
    assert (stopper.best_epoch, stopper.stopped_epoch) == (1, 5)


def test_key_resolution_errors(tmp_path):
    two = RepresentationGapCallback(layer=["backbone", "head"], train_probe=64, val_probe=8)
    trainer = _trainer(tmp_path, [two, RepresentationGapEarlyStopping()], 2)
    with pytest.raises(MisconfigurationException, match=r"give RepresentationGapEarlyStopping\(layer=\.\.\.\)"):
        trainer.fit(Tiny(), *_loaders())
    no_ratio = RepresentationGapCallback(layer="backbone", train_probe=64, val_probe=8, train_query_probe=0)
    trainer = _trainer(
        tmp_path, [no_ratio, RepresentationGapEarlyStopping(monitor="gap_ratio", tolerance=0.15, warmup=1)], 2
    )
    with pytest.raises(MisconfigurationException, match="train_query_probe"):
        trainer.fit(Tiny(), *_loaders())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"monitor": "knn_acc"}, "`monitor` must be one or more"),
        ({"monitor": "val_loss"}, "`monitor` must be one or more"),
        ({"monitor": ["gap_norm", "gap_norm"]}, "`monitor` must be one or more distinct"),
        ({"monitor": ["gap_norm", "dim"], "tolerance": [0.1, 0.2, 0.3]}, "one value per monitored key"),
        ({"tolerance": -0.1}, "`tolerance`"),
        ({"tolerance": math.nan}, "`tolerance`"),
        ({"patience": 0}, "`patience`"),
        ({"warmup": 1.5}, "`warmup`"),
        ({"filename": ""}, "`filename`"),
        ({"keep_tolerance": -0.1}, "`keep_tolerance`"),
        ({"tolerance": 0.2, "keep_tolerance": 0.3}, "must not exceed `tolerance`"),
        ({"monitor": "gap_norm", "keep_tolerance": [0.1, 0.1]}, "one value per monitored key"),
    ],
)
def test_constructor_rejects_bad_values(kwargs, match):
    with pytest.raises(MisconfigurationException, match=match):
        RepresentationGapEarlyStopping(**kwargs)


def test_state_key_state_dict_pickle_and_cli_config():
    stopper = RepresentationGapEarlyStopping(monitor=["gap_norm", "gap_ratio"], tolerance=0.2, patience=3)
    stopper.state = StopState((RiseState(0.5, 7, 0.52, 2, 9), RiseState(1.1, 8, 1.2, 0, 9)), best_epoch=7)
    restored = RepresentationGapEarlyStopping(monitor=["gap_norm", "gap_ratio"], tolerance=0.2, patience=3)
    restored.load_state_dict(pickle.loads(pickle.dumps(stopper.state_dict())))
    assert restored.state == stopper.state
    assert pickle.loads(pickle.dumps(stopper)).state == stopper.state
    assert "'patience': 3" in stopper.state_key
    # LightningCLI builds callbacks from the constructor's plain-value hints.
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(RepresentationGapEarlyStopping, "stop")
    cfg = parser.parse_args(["--stop.monitor=dim", "--stop.tolerance=0.3", "--stop.patience=5", "--stop.warmup=2"])
    built = RepresentationGapEarlyStopping(**cfg.stop)
    assert (built.monitor, built.tolerance, built.patience, built.warmup) == (["dim"], [0.3], 5, [2])
    cfg = parser.parse_args(["--stop.monitor=[gap_norm, gap_ratio]", "--stop.tolerance=[0.3, 0.15]"])
    built = RepresentationGapEarlyStopping(**cfg.stop)
    assert (built.monitor, built.tolerance, built.keep_tolerance) == (
        ["gap_norm", "gap_ratio"],
        [0.3, 0.15],
        [0.3, 0.15],
    )
    cfg = parser.parse_args([
        "--stop.monitor=[gap_norm, gap_ratio]",
        "--stop.tolerance=[0.6, 0.2]",
        "--stop.keep_tolerance=[0.05, 0.1]",
    ])
    built = RepresentationGapEarlyStopping(**cfg.stop)
    assert (built.tolerance, built.keep_tolerance, built.warmup) == ([0.6, 0.2], [0.05, 0.1], [8, 1])


def test_state_dicts_of_0_2_load_and_a_state_for_other_keys_is_a_clear_error():
    two_keys = {"keys": [asdict(RiseState(0.5, 7, 0.52, 2, 9)), asdict(RiseState(1.1, 8, 1.2, 1, 9))], "best_epoch": 7}
    old = {"state": two_keys, "stopped_epoch": None, "best_model_path": None}  # 0.2.0's format: no "monitor"
    restored = RepresentationGapEarlyStopping(monitor=["gap_norm", "gap_ratio"])
    restored.load_state_dict(old)
    assert restored.state == StopState((RiseState(0.5, 7, 0.52, 2, 9), RiseState(1.1, 8, 1.2, 1, 9)), best_epoch=7)
    # 0.2.0's default monitor had two keys; the default now has three: loading must not mix the keys up.
    with pytest.raises(
        ValueError, match=r"state for monitor 2 key\(s\) cannot be loaded .* monitors \['gap_norm', 'dim_mle'"
    ):
        RepresentationGapEarlyStopping().load_state_dict(old)
    new = RepresentationGapEarlyStopping(monitor=["gap_norm", "dim_mle"]).state_dict()
    with pytest.raises(
        ValueError, match=r"monitor \['gap_norm', 'dim_mle'\] cannot be loaded .* \['gap_norm', 'gap_ratio'\]"
    ):
        RepresentationGapEarlyStopping(monitor=["gap_norm", "gap_ratio"]).load_state_dict(new)


def test_top_level_export():
    import lightning_repgap

    assert lightning_repgap.RepresentationGapEarlyStopping is RepresentationGapEarlyStopping


@pytest.mark.ddp
@pytest.mark.slow
def test_every_ddp_rank_takes_the_same_decision(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "_helpers", "ddp_stopping.py")
    proc = subprocess.run(
        [sys.executable, script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]
    assert (ranks[0]["best_epoch"], ranks[0]["stopped_epoch"]) == (2, 5)
    assert ranks[0]["files"] == ["repgap-best.ckpt"]


def test_defaults_are_the_studys_frozen_rule():
    rule = study.load_rule()
    stopper = RepresentationGapEarlyStopping()
    assert stopper.monitor == rule["monitor"]
    assert stopper.tolerance == rule["tolerance"]
    assert stopper.keep_tolerance == rule["keep_tolerance"]
    assert stopper.patience == rule["patience"]
    assert stopper.warmup == rule["warmup"]


def test_quick_bounds_guard_the_stopping_headline():
    from studies import validation

    good = {
        "stopping: supervised rule mean regret (points)": 3.0,
        "stopping: supervised no-stopping mean regret (points)": 7.0,
        "stopping: generative rule mean regret (%)": 1.0,
        "stopping: generative no-stopping mean regret (%)": 11.0,
    }
    assert validation.check_quick_bounds(good) == []
    worse = {**good, "stopping: generative no-stopping mean regret (%)": 0.5}
    assert validation.check_quick_bounds(worse) == [
        "stopping: the rule does not beat no stopping on the generative runs"
    ]
    too_high = {**good, "stopping: supervised rule mean regret (points)": 6.0}
    assert [f.split(" =")[0] for f in validation.check_quick_bounds(too_high)] == [
        "stopping: supervised rule mean regret (points)"
    ]


@pytest.mark.skipif(not RUNS, reason="studies/stopping_runs.json not recorded")
def test_recordings_hold_every_regime_split_and_key():
    by = {}
    for run in RUNS:
        by.setdefault((run["regime"], run["split"]), []).append(run)
        n = len(run["epochs"]["truth"])
        for key in ("gap_norm", "gap_ratio", "dim", "val_loss"):
            assert len(run["epochs"][key]) == n, (study._label(run), key)
    for regime in study.REGIMES:
        assert len(by[(regime, "tune")]) + len(by[(regime, "held_out")]) >= 24, regime
        assert len(by[(regime, "tune")]) == len(by[(regime, "held_out")]), regime
    archs = {r["arch"] for r in RUNS if r["regime"] in ("supervised", "ssl")}
    assert {"mlp", "cnn"} <= archs
    assert {0.0, 0.2, 0.4} <= {r["noise"] for r in RUNS if r["regime"] == "supervised"}


@pytest.mark.skipif(not (FRESH and UNTOUCHED), reason="studies/stopping_fresh*.json not recorded")
@pytest.mark.parametrize("plan", ["fresh", "fresh2"])
def test_later_run_sets_follow_their_committed_plan_and_share_no_seed_with_earlier_ones(plan):
    from studies import stopping_record

    runs, earlier = (FRESH, RUNS) if plan == "fresh" else (UNTOUCHED, RUNS + FRESH)
    expected = {
        "supervised": stopping_record.supervised_configs(False, plan),
        "ssl": stopping_record.ssl_configs(False, plan),
        "generative": stopping_record.generative_configs(False, plan),
    }
    recorded = {g: [{k: v for k, v in r.items() if k != "epochs"} for r in runs if r["regime"] == g] for g in expected}
    assert recorded == expected
    assert {r["seed"] for r in runs}.isdisjoint({r["seed"] for r in earlier})
    assert {"mlp", "cnn"} <= {r["arch"] for r in runs}
    for run in runs:
        n = len(run["epochs"]["truth"])
        keys = ("gap_norm", "dim_mle", "gap_ratio", "val_loss")
        assert all(len(run["epochs"][k]) == n for k in keys), study._label(run)


@pytest.mark.skipif(not RUNS, reason="studies/stopping_runs.json not recorded")
def test_the_keys_the_rule_reads_are_measured_today_as_they_were_recorded():
    # The rule's thresholds were tuned on recorded values: if the package's gap_norm, dim_mle or gap_ratio changed
    # meaning, the recordings (and the frozen rule) would be stale. Retrain a recorded run's first epochs and compare.
    from studies import stopping_record

    cfg = stopping_record.supervised_configs(True)[0]
    recorded = next(r for r in RUNS if all(r[k] == cfg[k] for k in cfg))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        today = stopping_record.run_supervised(cfg, 4)
    finally:
        torch.set_num_threads(threads)
    for key in study.load_rule()["monitor"]:
        assert today["epochs"][key] == pytest.approx(recorded["epochs"][key][:4], rel=1e-4), key
