"""RepresentationGapCallback under real Trainer runs: logging, EarlyStopping, resume, DDP, model state, errors."""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import pickle
import random
import subprocess
import sys

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from _helpers.controlled import ScheduledGapModel
from _helpers.models import MLP, ProbePassMLP, loaders
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_repgap._faults import TooFewQueriesError
from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.config import GapConfig
from lightning_repgap.functional import analyze
from lightning_repgap.snapshot import list_snapshots, load_snapshot

SMALL = {"train_probe": 1024, "val_probe": 256, "n_bootstrap": 50}


def _trainer(tmp_path, callbacks, max_epochs=3, **kwargs):
    defaults = {
        "max_epochs": max_epochs,
        "accelerator": "cpu",
        "devices": 1,
        "callbacks": callbacks,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": tmp_path,
    }
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


def test_end_to_end_csv_has_every_epoch(tmp_path):
    pl.seed_everything(0)
    cb = RepresentationGapCallback(layer="backbone", **SMALL)
    logger = CSVLogger(tmp_path, name="run")
    trainer = _trainer(tmp_path, [cb], max_epochs=3, logger=logger, num_sanity_val_steps=2)
    train, val = loaders()
    trainer.fit(MLP(), train, val)
    with open(os.path.join(logger.log_dir, "metrics.csv")) as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("repgap/gap")]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2], "one measurement per epoch, none for the sanity check"
    for row in rows:
        for key in ("repgap/gap", "repgap/gap_norm", "repgap/dim", "repgap/dim_low", "repgap/law_r2"):
            assert math.isfinite(float(row[key])), key
        assert float(row["repgap/dim_low"]) <= float(row["repgap/dim"]) <= float(row["repgap/dim_high"])
    # The labelled batches give knn_acc; the extra train probe gives gap_ratio.
    assert {"repgap/knn_acc", "repgap/gap_ratio"} <= set(rows[0])
    assert [h["epoch"] for h in cb.history] == [0, 1, 2]


def test_values_reach_callback_metrics_for_monitors(tmp_path):
    cb = RepresentationGapCallback(layer="backbone", **SMALL)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="repgap/gap_norm", mode="min", save_top_k=1)
    trainer = _trainer(tmp_path, [cb, ckpt], max_epochs=2, enable_checkpointing=True)
    trainer.fit(MLP(), *loaders())
    assert "repgap/gap_norm" in trainer.callback_metrics
    assert ckpt.best_model_score is not None
    assert float(ckpt.best_model_score) == pytest.approx(min(h["repgap/gap_norm"] for h in cb.history))


def _run_schedule(tmp_path, schedule):
    cb = RepresentationGapCallback(layer="backbone", train_query_probe=0, **SMALL)
    stop = EarlyStopping(monitor="repgap/gap_norm", mode="min", patience=1)
    trainer = _trainer(tmp_path, [cb, stop], max_epochs=len(schedule), num_sanity_val_steps=0)
    trainer.fit(ScheduledGapModel(schedule), *loaders())
    return cb, stop, trainer


def test_early_stopping_stops_when_gap_stops_improving(tmp_path):
    cb, stop, _ = _run_schedule(tmp_path, [1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    norms = [h["repgap/gap_norm"] for h in cb.history]
    assert norms[1] < norms[0]
    assert stop.stopped_epoch == 2, norms
    assert len(cb.history) == 3 < 8


def test_early_stopping_keeps_going_while_gap_improves(tmp_path):
    schedule = [2.0, 1.0, 0.5, 0.25, 0.12, 0.06]
    cb, stop, _ = _run_schedule(tmp_path, schedule)
    norms = [h["repgap/gap_norm"] for h in cb.history]
    assert all(b < a for a, b in itertools.pairwise(norms)), norms
    assert stop.stopped_epoch == 0
    assert len(cb.history) == len(schedule)


def test_resume_reuses_probes_and_continues_history(tmp_path, monkeypatch):
    ckpt_dir = tmp_path / "ckpt"
    cb1 = RepresentationGapCallback(layer="backbone", **SMALL)
    ckpt = ModelCheckpoint(dirpath=ckpt_dir, save_last=True)
    trainer = _trainer(tmp_path, [cb1, ckpt], max_epochs=2, enable_checkpointing=True)
    trainer.fit(MLP(), *loaders())
    saved = {k: list(v) for k, v in cb1.probe_indices.items()}

    cb2 = RepresentationGapCallback(layer="backbone", **SMALL)

    def no_redraw(*args, **kwargs):
        raise AssertionError("a resumed run must reuse the checkpoint's probes, not draw new ones")

    monkeypatch.setattr(cb2, "_draw_probes", no_redraw)
    trainer2 = _trainer(tmp_path, [cb2, ModelCheckpoint(dirpath=ckpt_dir)], max_epochs=4, enable_checkpointing=True)
    trainer2.fit(MLP(), *loaders(), ckpt_path=str(ckpt_dir / "last.ckpt"))
    assert cb2.probe_indices == saved
    assert [h["epoch"] for h in cb2.history] == [0, 1, 2, 3]
    assert cb2.history[:2] == cb1.history


def test_model_state_restored_and_no_hooks_left(tmp_path):
    model = MLP()
    model.head.eval()  # a deliberately frozen submodule must stay in eval mode
    seen = {}

    class Spy(pl.Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            # Runs after the gap callback (callbacks run in list order).
            seen.setdefault("hooks", []).append(
                sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in pl_module.modules())
            )

        def on_train_epoch_start(self, trainer, pl_module):
            seen.setdefault("train_modes", []).append((pl_module.training, pl_module.head.training))

    cb = RepresentationGapCallback(layer="backbone", **SMALL)
    trainer = _trainer(tmp_path, [cb, Spy()], max_epochs=3, num_sanity_val_steps=0)
    rng_before = torch.random.get_rng_state()
    cb_state = {}

    original = cb.measure

    def spy_measure(trainer, pl_module):
        modes = {name: m.training for name, m in pl_module.named_modules()}
        rng = torch.random.get_rng_state()
        out = original(trainer, pl_module)
        cb_state["modes_equal"] = modes == {name: m.training for name, m in pl_module.named_modules()}
        cb_state["rng_equal"] = torch.equal(rng, torch.random.get_rng_state())
        return out

    cb.measure = spy_measure
    trainer.fit(model, *loaders())
    assert cb_state == {"modes_equal": True, "rng_equal": True}
    assert seen["hooks"] == [0, 0, 0]
    assert seen["train_modes"][1:] == [(True, False), (True, False)]
    assert not torch.equal(rng_before, torch.random.get_rng_state())  # training itself did use the RNG


def test_unknown_layer_lists_valid_names(tmp_path):
    cb = RepresentationGapCallback(layer="backbon", **SMALL)
    trainer = _trainer(tmp_path, [cb], max_epochs=1)
    with pytest.raises(MisconfigurationException, match="backbone"):
        trainer.fit(MLP(), *loaders())


def test_several_layers_get_their_own_keys(tmp_path):
    cb = RepresentationGapCallback(layer=["backbone.1", "backbone"], **SMALL)
    trainer = _trainer(tmp_path, [cb], max_epochs=1)
    trainer.fit(MLP(), *loaders())
    keys = set(trainer.callback_metrics)
    assert {"repgap/backbone.1/dim", "repgap/backbone/dim", "repgap/backbone/gap_norm"} <= keys
    assert "repgap/dim" not in keys


def test_layer_profile_table_and_figure(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="tb")
    cb = RepresentationGapCallback(layer=["backbone.0", "backbone.2", "head"], **SMALL)
    _trainer(tmp_path, [cb], max_epochs=1, logger=logger).fit(MLP(), *loaders())
    profile = cb.layer_profile()
    assert [row["layer"] for row in profile] == ["backbone.0", "backbone.2", "head"]
    assert all({"gap_norm", "dim", "dim_low", "dim_high"} <= set(row) for row in profile)
    assert profile[0]["dim"] == cb.history[-1]["repgap/backbone.0/dim"]
    acc = EventAccumulator(logger.log_dir)
    acc.Reload()
    assert "repgap/layer_profile" in acc.Tags()["images"]


def test_every_n_epochs_and_fast_dev_run(tmp_path):
    cb = RepresentationGapCallback(layer="backbone", every_n_epochs=2, **SMALL)
    _trainer(tmp_path, [cb], max_epochs=4).fit(MLP(), *loaders())
    assert [h["epoch"] for h in cb.history] == [1, 3]
    cb = RepresentationGapCallback(layer="backbone", **SMALL)
    _trainer(tmp_path, [cb], fast_dev_run=True).fit(MLP(), *loaders())
    assert cb.history == []


def test_snapshots_on_checkpoint(tmp_path):
    snap = tmp_path / "snaps"
    cb = RepresentationGapCallback(layer="backbone", snapshot_dir=str(snap), **SMALL)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_epochs=1)
    _trainer(tmp_path, [cb, ckpt], max_epochs=2, enable_checkpointing=True).fit(MLP(), *loaders())
    paths = list_snapshots(snap)
    assert len(paths) == 2
    last = load_snapshot(paths[-1])
    assert last.metadata["epoch"] == 1
    assert last.arrays["reference"].shape == (1024, 64)
    assert last.arrays["queries"].shape == (256, 64)
    assert last.metadata["metrics"]["gap"] == pytest.approx(cb.history[-1]["repgap/gap"])
    assert (last.arrays["reference_index"] == sorted(cb.probe_indices["reference"])).all()


def test_probe_larger_than_dataset_is_clamped_with_warning(tmp_path):
    cb = RepresentationGapCallback(layer="backbone", train_probe=4096, val_probe=1024, n_bootstrap=20)
    trainer = _trainer(tmp_path, [cb], max_epochs=1)
    with pytest.warns(UserWarning, match="exceed the 2048 training samples"):
        trainer.fit(MLP(), *loaders(n_train=2048, n_val=300))
    sizes = {k: len(v) for k, v in cb.probe_indices.items()}
    assert sizes["reference"] + sizes["train_queries"] <= 2048
    assert sizes["queries"] == 300
    assert not set(cb.probe_indices["reference"]) & set(cb.probe_indices["train_queries"])


def test_tensorboard_figure_is_logged(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="tb")
    cb = RepresentationGapCallback(layer="backbone", **SMALL)
    _trainer(tmp_path, [cb], max_epochs=1, logger=logger).fit(MLP(), *loaders())
    acc = EventAccumulator(logger.log_dir)
    acc.Reload()
    assert "repgap/gap_curve" in acc.Tags()["images"]


def test_state_key_state_dict_and_pickle():
    cb = RepresentationGapCallback(layer="encoder", train_probe=2048, val_probe=512)
    assert cb.state_key == "RepresentationGapCallback{'layer': ['encoder'], 'train_probe': 2048, 'val_probe': 512}"
    cb.probe_indices = {"reference": [1, 2], "queries": [3], "train_queries": []}
    cb.history = [{"epoch": 0, "repgap/gap": 1.0}]
    clone = pickle.loads(pickle.dumps(cb))
    assert clone.state_dict() == cb.state_dict()
    other = RepresentationGapCallback(layer="encoder", train_probe=2048, val_probe=512, seed=1)
    with pytest.warns(UserWarning, match="drawn with seed 0"):
        other.load_state_dict(cb.state_dict())
    assert other.probe_indices is None
    assert other.history == cb.history


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layer": []}, "non-empty"),
        ({"layer": ["a", "a"]}, "twice"),
        ({"train_probe": 50}, "too small for a gap-law fit"),
        ({"val_probe": 0}, "val_probe"),
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"pooling": "max"}, "pooling"),
        ({"snapshot_dtype": "int8"}, "snapshot_dtype"),
        ({"snapshot_on": "never"}, "snapshot_on"),
        ({"backend": "annoy"}, "backend"),
    ],
)
def test_constructor_rejects_bad_values(kwargs, match):
    with pytest.raises(MisconfigurationException, match=match):
        RepresentationGapCallback(**kwargs)


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_matches_single_process_and_writes_once(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "_helpers", "ddp_run.py")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    runs = {}
    for devices, strategy in ((1, "auto"), (2, "ddp")):
        out = tmp_path / f"d{devices}"
        out.mkdir()
        proc = subprocess.run(
            [sys.executable, script, str(out), str(devices), strategy],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[devices] = out
    single = json.loads((runs[1] / "history-rank0.json").read_text())
    rank0 = json.loads((runs[2] / "history-rank0.json").read_text())
    rank1 = json.loads((runs[2] / "history-rank1.json").read_text())
    assert rank0 == rank1, "every rank must log the same numbers"
    # The validation probe came from the validation loops (each rank its shard, padding repeats included).
    captured = [json.loads((runs[2] / f"timing-rank{r}.json").read_text())["val_captured"] for r in (0, 1)]
    assert min(captured) > 0
    assert sum(captured) >= 300
    assert json.loads((runs[1] / "timing-rank0.json").read_text())["val_captured"] == 300
    assert len(single) == len(rank0) == 2
    for a, b in zip(single, rank0, strict=True):
        for key, value in a.items():
            if key.startswith("repgap/"):
                assert b[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    snaps = list_snapshots(runs[2] / "snapshots")
    assert len(snaps) == 2
    files = sorted(p.name for p in (runs[2] / "snapshots").rglob("*") if p.is_file())
    assert all(".tmp-" not in f for f in files)
    assert len(files) == 2 * len(os.listdir(snaps[0]))


def test_bf16_mixed_precision_and_datamodule(tmp_path):
    class DataModule(pl.LightningDataModule):
        def train_dataloader(self):
            return loaders()[0]

        def val_dataloader(self):
            return loaders()[1]

    cb = RepresentationGapCallback(layer="backbone", **SMALL)
    trainer = _trainer(tmp_path, [cb], max_epochs=1, precision="bf16-mixed")
    trainer.fit(MLP(), datamodule=DataModule())
    assert len(cb.history) == 1
    values = [v for k, v in cb.history[0].items() if k.startswith("repgap/")]
    assert values
    assert all(math.isfinite(v) for v in values)


# ---------------------------------------------------------------- reference_fn: a generator's samples as the bank


def _train_inputs() -> torch.Tensor:
    return torch.stack([x for x, _ in loaders()[0].dataset])


def test_reference_fn_detects_memorisation_in_data_space(tmp_path):
    from _helpers.models import manifold_task

    train_x = _train_inputs()
    fresh = manifold_task(4096, seed=99).tensors[0]  # new draws from the data distribution
    seen = {}

    def memoriser(pl_module):
        seen["training"] = pl_module.training
        seen["grad"] = torch.is_grad_enabled()
        return train_x + 1e-3 * torch.randn(train_x.shape, generator=torch.Generator().manual_seed(0))

    results = {}
    for name, fn in {"memoriser": memoriser, "generaliser": lambda pl_module: fresh[:2048]}.items():
        cb = RepresentationGapCallback(
            layer=None, reference_fn=fn, val_probe=256, train_query_probe=256, n_bootstrap=20
        )
        _trainer(tmp_path, [cb], max_epochs=1, num_sanity_val_steps=0).fit(MLP(), *loaders())
        results[name] = cb.history[-1]
    assert seen == {"training": False, "grad": False}
    assert results["memoriser"]["repgap/gap_ratio"] > 100  # held-out data far from samples that copy training data
    assert 0.7 < results["generaliser"]["repgap/gap_ratio"] < 1.4
    assert results["generaliser"]["repgap/dim"] == pytest.approx(3, rel=0.35)  # the data's 3-d manifold


def test_reference_fn_with_a_layer_compares_representations(tmp_path):
    def bank(pl_module):
        return pl_module.backbone(_train_inputs()[:1024]).to(torch.float16)

    cb = RepresentationGapCallback(layer="backbone", reference_fn=bank, val_probe=256, n_bootstrap=20, prefix="gen")
    trainer = _trainer(tmp_path, [cb], max_epochs=1)
    trainer.fit(MLP(), *loaders())
    assert math.isfinite(float(trainer.callback_metrics["gen/gap_norm"]))


def _fixed_bank() -> torch.Tensor:
    return torch.randn(1024, 16, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda b: b.double(), id="float64"),
        pytest.param(lambda b: b.clone().requires_grad_(True) * 1.0, id="requires-grad"),
        pytest.param(lambda b: b.t().contiguous().t(), id="non-contiguous"),
        pytest.param(lambda b: b.reshape(1024, 4, 4), id="unflattened"),
    ],
)
def test_reference_fn_bank_dtype_grad_and_layout_do_not_change_the_result(tmp_path, variant):
    # The callback detaches, flattens and casts whatever the function returns; the logged numbers must be those of
    # the plain float32 bank.
    results = {}
    for name, fn in {"plain": lambda m: _fixed_bank(), "variant": lambda m: variant(_fixed_bank())}.items():
        cb = RepresentationGapCallback(layer=None, reference_fn=fn, val_probe=128, config=GapConfig(n_bootstrap=0))
        _trainer(tmp_path, [cb], max_epochs=1, num_sanity_val_steps=0).fit(MLP(), *loaders())
        results[name] = cb.history[-1]
    assert results["variant"].keys() == results["plain"].keys()
    for key, value in results["plain"].items():
        assert results["variant"][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_reference_fn_bank_on_another_device(tmp_path):  # pragma: no cover - no GPU on the CI machine
    cb = RepresentationGapCallback(layer=None, reference_fn=lambda m: _fixed_bank().cuda(), val_probe=128)
    _trainer(tmp_path, [cb], max_epochs=1, num_sanity_val_steps=0).fit(MLP(), *loaders())
    assert math.isfinite(cb.history[-1]["repgap/gap"])


@pytest.mark.parametrize(
    ("fn", "error", "match"),
    [
        (lambda m: [1.0, 2.0], TypeError, "must return a torch.Tensor"),
        (lambda m: torch.zeros(1, 4), ValueError, "at least 2 points"),
        (lambda m: torch.randn(10, 4), ValueError, "returned 10 points in all; the gap-law fit needs at least"),
        (
            lambda m: torch.randn(512, 3),
            ValueError,
            r"width 3, but the queries, the flattened raw inputs \(`layer=None`\)",
        ),
    ],
)
def test_reference_fn_errors(tmp_path, fn, error, match):
    # Raised when training starts (the function is called once then), as a configuration error whose cause is the
    # check's own error; no training step has run.
    cb = RepresentationGapCallback(layer=None, reference_fn=fn, val_probe=64, config=GapConfig(n_bootstrap=0))
    trainer = _trainer(tmp_path, [cb], max_epochs=1)
    with pytest.raises(MisconfigurationException, match=match) as err:
        trainer.fit(MLP(), *loaders())
    assert isinstance(err.value.__cause__, error)
    assert trainer.global_step == 0
    assert cb.history == []


def test_reference_fn_width_mismatch_with_a_layer_is_caught_before_the_first_step(tmp_path):
    # The layer's width (64) is known from the one-batch probe at the start of training: a bank of another width is
    # a configuration error then, naming reference_fn, the layer and both widths (it was found only after epoch 0).
    calls = []

    def bank(pl_module):
        calls.append(pl_module.training)
        return torch.randn(512, 3)

    cb = RepresentationGapCallback(layer="backbone", reference_fn=bank, val_probe=64, config=GapConfig(n_bootstrap=0))
    trainer = _trainer(tmp_path, [cb], max_epochs=1)
    with pytest.raises(MisconfigurationException, match=r"width 3, but the queries, layer 'backbone', have width 64"):
        trainer.fit(MLP(), *loaders())
    assert trainer.global_step == 0
    assert calls == [False]  # called once, in eval mode, before training


def test_reference_fn_width_change_after_setup_keeps_the_measurement_error(tmp_path):
    # Only the first call's width can be checked at setup: a function that changes width later still gets the
    # error naming reference_fn, the layer and both widths at the measurement.
    calls = []

    def bank(pl_module):
        calls.append(1)
        return torch.randn(512, 64 if len(calls) == 1 else 32)

    cb = RepresentationGapCallback(layer="backbone", reference_fn=bank, val_probe=64, config=GapConfig(n_bootstrap=0))
    trainer = _trainer(tmp_path, [cb], max_epochs=1, num_sanity_val_steps=0)
    with pytest.raises(ValueError, match=r"width 32, but the queries, layer 'backbone', have width 64"):
        trainer.fit(MLP(), *loaders())
    assert trainer.global_step > 0
    assert len(calls) == 2


def test_an_error_in_the_probe_pass_propagates_as_raised_and_leaves_no_hook(tmp_path):
    # An error in the user's code during a measurement's probe pass (the model's forward outside validation_step while
    # the trainer validates: only the probe pass runs it there) is no measurement fault: it ends the fit as raised,
    # also with strict=False, and no hook is left behind. Without a forward_fn the validation capture is armed: its
    # hooks ran in every validation batch, and the probe pass that raised re-embedded captured rows as its check.
    class BrokenError(ValueError):
        pass

    class ProbeRaising(ProbePassMLP):
        def forward(self, x):
            if self.in_probe_pass:  # the probe pass (the one at setup runs in training)
                raise BrokenError("the user's forward broke")
            return super().forward(x)

    config = GapConfig(n_bootstrap=0)
    cb = RepresentationGapCallback(layer="backbone", val_probe=64, strict=False, config=config)
    model = ProbeRaising()
    trainer = _trainer(tmp_path, [cb], max_epochs=1, num_sanity_val_steps=0, limit_train_batches=2)
    with pytest.raises(BrokenError, match="the user's forward broke"):
        trainer.fit(model, *loaders())
    assert trainer.global_step > 0
    assert cb.history == []
    assert cb._val_capture.last_count == 64  # the capture was armed and took every validation-probe row
    assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("layer", [None, "backbone"])
def test_reference_fn_setup_call_leaves_the_global_rng(tmp_path, layer):
    # The call at setup (and the one-batch probe) runs under isolate_rng: with a callback that never measures,
    # the shuffled training run ends with the weights of the run without it (it did not: the bank's draws moved
    # the loader's shuffling seed).
    def bank(pl_module):  # draws from every global generator, as a sampler's reference_fn does
        random.random()
        np.random.rand()
        out = torch.randn(1024, 16)
        return out if layer is None else pl_module.backbone(out)

    weights = []
    never_measures = RepresentationGapCallback(layer=layer, reference_fn=bank, val_probe=128, every_n_epochs=100)
    for callbacks in ([], [never_measures]):
        pl.seed_everything(0)
        model = MLP()
        _trainer(tmp_path, callbacks, max_epochs=1, num_sanity_val_steps=0).fit(model, *loaders())
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_reference_fn_at_every_measurement_leaves_the_global_rng(tmp_path):
    # Not only the setup call: the call at each measurement runs under isolate_rng too, so a callback measuring
    # every epoch with a sampled bank ends a shuffled run with the weights of the run without it (it did not).
    def bank(pl_module):
        return torch.randn(1024, 16)

    weights = []
    every_epoch = RepresentationGapCallback(
        layer=None, reference_fn=bank, val_probe=128, config=GapConfig(n_bootstrap=0)
    )
    for callbacks in ([], [every_epoch]):
        pl.seed_everything(0)
        model = MLP()
        _trainer(tmp_path, callbacks, max_epochs=2, num_sanity_val_steps=0).fit(model, *loaders())
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert len(every_epoch.history) == 2
    assert torch.equal(weights[0], weights[1])


def test_reference_fn_setup_check_reads_the_shape_without_copying(tmp_path):
    # At setup only the type and shape are checked: a bank on the meta device (no data to copy) passes there and
    # a real bank is measured later; the check used to copy the whole bank to CPU float32 (which fails for meta).
    calls = []

    def bank(pl_module):
        calls.append(1)
        return torch.empty(1024, 4, 4, device="meta") if len(calls) == 1 else _fixed_bank()

    cb = RepresentationGapCallback(layer=None, reference_fn=bank, val_probe=128, config=GapConfig(n_bootstrap=0))
    _trainer(tmp_path, [cb], max_epochs=1, num_sanity_val_steps=0).fit(MLP(), *loaders())
    assert len(calls) == 2
    assert math.isfinite(cb.history[-1]["repgap/gap"])


def test_reference_fn_not_ready_at_setup_is_checked_at_the_first_measurement(tmp_path, caplog):
    # A bank filled during training returns None before it: not a configuration error at setup (it was); the
    # measurement after the first epoch reads the bank then, and a None there is still the measurement's TypeError.
    calls = []

    def filled_later(pl_module):
        calls.append(1)
        return None if len(calls) == 1 else _fixed_bank()

    config = GapConfig(n_bootstrap=0)
    cb = RepresentationGapCallback(layer=None, reference_fn=filled_later, val_probe=128, config=config)
    with caplog.at_level("INFO"):
        _trainer(tmp_path, [cb], max_epochs=1, num_sanity_val_steps=0).fit(MLP(), *loaders())
    assert "returned None when training starts" in caplog.text
    assert len(calls) == 2
    assert math.isfinite(cb.history[-1]["repgap/gap"])

    never = RepresentationGapCallback(layer=None, reference_fn=lambda m: None, val_probe=128)
    trainer = _trainer(tmp_path, [never], max_epochs=1, num_sanity_val_steps=0)
    with pytest.raises(TypeError, match=r"must return a torch\.Tensor, got NoneType"):
        trainer.fit(MLP(), *loaders())
    assert trainer.global_step > 0


@pytest.mark.parametrize("layer", [None, "backbone"])
def test_reference_fn_with_an_empty_validation_set_trains(tmp_path, layer):
    # No validation rows: no query to probe or measure. Training runs as without a reference_fn check (it failed
    # at setup with a bare "`batches` is empty" for layer=None).
    train, _ = loaders()
    empty = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.empty(0, 16), torch.empty(0).long()))
    calls = []

    def bank(pl_module):
        calls.append(1)
        return torch.randn(1024, 16 if layer is None else 64)

    cb = RepresentationGapCallback(layer=layer, reference_fn=bank, config=GapConfig(n_bootstrap=0))
    trainer = _trainer(tmp_path, [cb], max_epochs=1, num_sanity_val_steps=0)
    trainer.fit(MLP(), train, empty)
    assert trainer.global_step > 0
    assert cb.history == []


def test_reference_fn_configuration_errors():
    with pytest.raises(MisconfigurationException, match="give a `reference_fn` or a `layer`"):
        RepresentationGapCallback(layer=None)
    with pytest.raises(MisconfigurationException, match="one layer at most"):
        RepresentationGapCallback(layer=["a", "b"], reference_fn=lambda m: torch.zeros(2, 2))


@pytest.mark.ddp
def test_ddp_rank_with_an_empty_probe_share(tmp_path):
    # One validation row and one training query for two ranks: rank 1's share of each is empty. It embeds a repeat
    # instead (dropped by the metric's index sort), so the probe pass does not fail on an empty loader.
    script = os.path.join(os.path.dirname(__file__), "_helpers", "ddp_tiny_probe.py")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, script, str(tmp_path), "2", "0"], capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    logged = [(tmp_path / f"history-rank{r}.json").read_text() for r in (0, 1)]
    assert logged[0] == logged[1]  # the same numbers on every rank (json text: NaN compares equal)
    inputs = np.load(tmp_path / "inputs-rank0.npz")
    assert inputs["queries"].shape[0] == inputs["train_queries"].shape[0] == 1  # the repeats were dropped
    assert inputs["reference"].shape[0] == 128
    # ... and every logged number is one process's measurement of those inputs, bit for bit.
    config = GapConfig.from_dict(json.loads((tmp_path / "config-rank0.json").read_text()))
    keys = ("reference", "queries", "train_queries", "reference_labels", "query_labels")
    # One query is below MIN_QUERIES: the fit is refused, and the keys it defines are logged, the rest as NaN.
    with pytest.raises(TooFewQueriesError, match="MIN_QUERIES") as refused:
        analyze(**{k: inputs[k] for k in keys}, config=config)
    expected = refused.value.partial
    assert set(expected) >= {"gap", "gap_norm", "dup_frac", "gap_ratio"}
    history = json.loads(logged[0])[-1]
    for key, value in expected.items():
        np.testing.assert_equal(history[f"repgap/{key}"], value)
    for key in ("dim", "dim_low", "dim_high", "law_r2", "dim_twonn", "dim_mle"):
        assert math.isnan(history[f"repgap/{key}"])
    assert history["repgap/valid"] == 0


def test_a_first_epoch_without_validation_still_draws_probes_from_the_fits_loaders(tmp_path):
    # check_val_every_n_epoch=2: Lightning loads the validation loaders when training starts only if epoch 0
    # validates. The setup probe found none and told the user to pass DataLoaders to fit, which they had done.
    cb = RepresentationGapCallback(layer="backbone", train_probe=256, val_probe=64, config=GapConfig(n_bootstrap=0))
    trainer = _trainer(tmp_path, [cb], max_epochs=2, check_val_every_n_epoch=2, num_sanity_val_steps=0)
    trainer.fit(MLP(), *loaders(n_train=512, n_val=128))
    assert [h["epoch"] for h in cb.history] == [1]  # the one validation measured, from the same loaders
    assert cb.history[0]["repgap/valid"] == 1.0
    # The loop was handed back as found: Lightning loaded the loaders itself, at the first validation.
    assert trainer.fit_loop.epoch_loop.val_loop._last_val_dl_reload_epoch == 1


@pytest.mark.parametrize("reload", [0, 1])
def test_loading_the_validation_loaders_early_leaves_the_run_and_its_reload_schedule_alone(tmp_path, reload):
    # Loading the validation loaders when training starts (epoch 0 does not validate) must not move Lightning's
    # own loads nor spend the run's random numbers: a val_dataloader() that draws from the global RNG would
    # otherwise change the training batches, and so the weights, of a run with the callback.
    class RandomValLoader(MLP):
        def __init__(self):
            super().__init__()
            self.calls: list[int] = []

        def train_dataloader(self):
            return loaders(n_train=512, n_val=128)[0]

        def val_dataloader(self):
            self.calls.append(self.trainer.current_epoch)
            torch.rand(1)  # e.g. random_split without a generator
            return loaders(n_train=512, n_val=128)[1]

    def run(callbacks):
        pl.seed_everything(0, verbose=False)
        model = RandomValLoader()
        trainer = _trainer(
            tmp_path,
            callbacks,
            max_epochs=4,
            check_val_every_n_epoch=2,
            num_sanity_val_steps=0,
            reload_dataloaders_every_n_epochs=reload,
        )
        trainer.fit(model)
        return model.calls, [p.detach().clone() for p in model.parameters()]

    calls, weights = run([])
    cb = RepresentationGapCallback(layer="backbone", train_probe=256, val_probe=64, config=GapConfig(n_bootstrap=0))
    calls_cb, weights_cb = run([cb])
    assert calls_cb == [0, *calls]  # one extra call when training starts; Lightning's own schedule unchanged
    assert all(torch.equal(a, b) for a, b in zip(weights, weights_cb, strict=True))
    assert [h["epoch"] for h in cb.history] == [1, 3]


def test_a_module_without_validation_step_is_a_clear_setup_error(tmp_path):
    class NoValidation(MLP):
        validation_step = pl.LightningModule.validation_step

    cb = RepresentationGapCallback(layer="backbone", train_probe=256, val_probe=64, config=GapConfig(n_bootstrap=0))
    trainer = _trainer(tmp_path, [cb], max_epochs=1)
    with pytest.raises(MisconfigurationException, match="no `validation_step`"):
        trainer.fit(NoValidation(), *loaders(n_train=512, n_val=128))


def test_validation_turned_off_is_a_clear_setup_error(tmp_path):
    cb = RepresentationGapCallback(layer="backbone", train_probe=256, val_probe=64, config=GapConfig(n_bootstrap=0))
    trainer = _trainer(tmp_path, [cb], max_epochs=1, limit_val_batches=0)
    with pytest.raises(MisconfigurationException, match="`limit_val_batches=0` turns validation off") as raised:
        trainer.fit(MLP(), *loaders(n_train=512, n_val=128))
    assert "Pass DataLoaders" not in str(raised.value)
    assert trainer.global_step == 0  # raised when training started, before the first step


def test_the_setup_probe_reads_the_validation_rows_once_with_a_reference_fn(tmp_path):
    # A reference_fn bank has no labels, so whether the probe batches carry labels (read off a second pass over the
    # first validation probe batch) never matters: that batch was read twice. No validation runs in this fit (epoch
    # 0 does not validate), so every validation read is the setup probe's.
    from lightning_repgap._callback_faults import SETUP_PROBE_ROWS

    class Counted(torch.utils.data.Dataset):
        def __init__(self, dataset):
            self.dataset, self.reads = dataset, 0

        def __len__(self):
            return len(self.dataset)

        def __getitem__(self, i):
            self.reads += 1
            return self.dataset[i]

    train, val = loaders(n_train=512, n_val=128)
    counted = Counted(val.dataset)
    cb = RepresentationGapCallback(
        layer="backbone", reference_fn=lambda m: m.backbone(torch.randn(256, 16)), val_probe=64,
        config=GapConfig(n_bootstrap=0),
    )  # fmt: skip
    trainer = _trainer(
        tmp_path, [cb], max_epochs=1, check_val_every_n_epoch=2, limit_train_batches=1, num_sanity_val_steps=0
    )
    trainer.fit(MLP(), train, torch.utils.data.DataLoader(counted, batch_size=128))
    assert counted.reads == SETUP_PROBE_ROWS
    assert cb._labelled is False


def test_a_strict_ddp_checkpoint_broadcasts_rank_zeros_snapshot_outcome_only_when_snapshots_are_written(tmp_path):
    # The broadcast tells every rank of rank zero's held snapshot fault; without a snapshot_dir there is none to
    # hold, and a strict DDP run paid one broadcast per checkpoint for nothing. (A two-rank trainer's surface.)
    from types import SimpleNamespace

    calls = []
    strategy = SimpleNamespace(broadcast=lambda obj, src=0: calls.append(obj) or obj)
    trainer = SimpleNamespace(world_size=2, is_global_zero=True, strategy=strategy)
    cb = RepresentationGapCallback(layer="backbone", strict=True)
    cb.on_save_checkpoint(trainer, None, {})
    assert calls == []
    cb.snapshot_dir = str(tmp_path)  # nothing pending: nothing written, and the (empty) outcome is still agreed on
    cb.on_save_checkpoint(trainer, None, {})
    assert calls == [None]
