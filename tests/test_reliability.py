"""Issue #16's rough edges: configuration errors at setup, scale and copies, loggers, resume, Metric shapes."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from test_faults import AMBIENT, PROBES, Net, _manifold, data
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from lightning_repgap._faults import STRICT_ENV, TooFewQueriesError, strict_mode
from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.dimension import DuplicatePointsWarning
from lightning_repgap.functional import MIN_QUERIES, _gap_compute, _gap_update
from lightning_repgap.metric import RepresentationGap


def _trainer(tmp_path: Path, callbacks: list[pl.Callback], **kwargs: object) -> pl.Trainer:
    defaults: dict[str, object] = {
        "max_epochs": 1,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "default_root_dir": tmp_path,
    }
    defaults.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **defaults)  # type: ignore[arg-type]


class _Steps(pl.Callback):
    def __init__(self) -> None:
        self.train_steps = 0

    def on_train_batch_start(self, *args: object) -> None:
        self.train_steps += 1


class TwiceNet(Net):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.backbone(x)
        return self.head(self.rep(self.rep(h)))


class ListNet(Net):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(16, 16), nn.Linear(16, 16)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.backbone(x)
        for block in self.blocks:
            h = torch.tanh(block(h))
        return self.head(h)


@pytest.mark.parametrize(
    ("model", "layer", "match"),
    [
        (ListNet, "blocks", "container with no forward.*'blocks.0'"),
        (TwiceNet, "rep", "ran 2 times during one probe forward pass"),
        (Net, "head", None),
    ],
)
def test_configuration_errors_are_raised_before_the_first_training_step(tmp_path, model, layer, match):
    steps = _Steps()
    cb = RepresentationGapCallback(layer=layer, **PROBES)
    trainer = _trainer(tmp_path, [cb, steps])
    if match is None:  # a healthy layer passes the probe and trains
        trainer.fit(model(), *data())
        assert steps.train_steps > 0
        return
    with pytest.raises(MisconfigurationException, match=match):
        trainer.fit(model(), *data())
    assert steps.train_steps == 0


class _Stream(IterableDataset):
    def __init__(self) -> None:
        self.x = _manifold(192, 0)

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield from zip(self.x, (self.x[:, 0] > 0).long(), strict=True)


class _StreamWithLen(_Stream):
    def __len__(self) -> int:
        return 192


@pytest.mark.parametrize("dataset_cls", [_Stream, _StreamWithLen])
def test_iterable_dataset_gets_one_clear_message_with_or_without_len(tmp_path, dataset_cls):
    ds = dataset_cls()
    cb = RepresentationGapCallback(layer="rep", **PROBES)
    with pytest.raises(MisconfigurationException, match=r"needs a map-style train dataset.*got _Stream"):
        _trainer(tmp_path, [cb], limit_train_batches=1).fit(Net(), DataLoader(ds, batch_size=64), data()[1])


def test_figures_and_scalars_share_a_step_and_csv_runs_get_pngs(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = TensorBoardLogger(tmp_path, name="tb")
    csv = CSVLogger(tmp_path, name="csv")
    cb = RepresentationGapCallback(layer="rep", **PROBES)
    _trainer(tmp_path, [cb], max_epochs=2, logger=[tb, csv]).fit(Net(), *data())
    acc = EventAccumulator(tb.log_dir)
    acc.Reload()
    scalar_steps = [e.step for e in acc.Scalars("repgap/gap")]
    image_steps = [e.step for e in acc.Images("repgap/gap_curve")]
    assert len(scalar_steps) == 2
    assert image_steps == scalar_steps
    pngs = sorted((Path(csv.log_dir) / "figures").glob("*.png"))
    assert [p.name for p in pngs] == [f"repgap_gap_curve-step={s:08d}.png" for s in scalar_steps]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert (Path(csv.log_dir) / "metrics.csv").is_file()


def test_a_logger_whose_figure_write_fails_leaves_the_figure_to_the_loggers_after_it(tmp_path):
    # Every logger is tried: the first one's OSError (a file where its figures directory should be) is raised once
    # the second has its PNG (it ended the loop, and the loggers after the failing one got no figure).
    from types import SimpleNamespace

    import matplotlib.pyplot as plt

    from lightning_repgap._figures import log_figure

    broken, kept = CSVLogger(tmp_path, name="broken", version=0), CSVLogger(tmp_path, name="kept", version=0)
    Path(broken.log_dir).mkdir(parents=True)
    (Path(broken.log_dir) / "figures").write_text("a file where the figures directory should be")
    fig, _ = plt.subplots()
    try:
        with pytest.raises(FileExistsError):
            log_figure(SimpleNamespace(loggers=[broken, kept], global_step=3), "repgap/gap_curve", fig)
    finally:
        plt.close(fig)
    pngs = sorted((Path(kept.log_dir) / "figures").glob("*.png"))
    assert [p.name for p in pngs] == ["repgap_gap_curve-step=00000003.png"]
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_with_changed_probes_warns_and_keeps_the_old_history_apart(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    first = RepresentationGapCallback(layer="rep", **PROBES)
    _trainer(tmp_path, [first, ckpt], enable_checkpointing=True).fit(Net(), *data())
    assert len(first.history) == 1
    changed = RepresentationGapCallback(layer="rep", **{**PROBES, "val_probe": 40, "pooling": "mean"})
    trainer = _trainer(tmp_path, [changed], max_epochs=2, enable_checkpointing=True)
    with pytest.warns(UserWarning, match=r"val_probe 48 -> 40; pooling 'flatten' -> 'mean'") as record:
        trainer.fit(Net(), *data(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert sum("other probe settings" in str(w.message) for w in record) == 1
    assert [h["epoch"] for h in changed.history] == [1], "the new run's history holds only its own values"
    assert len(changed.archived_history) == 1
    old = changed.archived_history[0]
    assert old["settings"]["val_probe"] == 48
    assert old["history"] == first.history
    assert changed.state_dict()["archived_history"] == changed.archived_history


def test_metric_names_both_shapes_when_widths_differ():
    metric = RepresentationGap()
    metric.update(reference=torch.rand(10, 4), queries=torch.rand(3, 4))
    with pytest.raises(ValueError, match=r"`reference` batch has shape \(2, 6\).*had shape \(10, 4\)"):
        metric.update(reference=torch.rand(2, 6))
    with pytest.raises(ValueError, match=r"`queries` batch has shape \(3, 5\).*shape \(3, 4\)"):
        metric.update(queries=torch.rand(3, 5))


def test_strict_mode_switch(monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    assert not strict_mode(None)
    monkeypatch.setenv(STRICT_ENV, "1")
    assert strict_mode(None)
    assert not strict_mode(False)


def _keys(reference: np.ndarray, queries: np.ndarray, n_bootstrap: int = 20) -> dict[str, float]:
    return _gap_compute(_gap_update(reference, queries), n_bootstrap=n_bootstrap).values


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_key_but_gap_is_independent_of_the_global_scale(dtype):
    rng = np.random.default_rng(0)
    ref, qs = rng.random((512, 4)), rng.random((128, 4))
    base = _keys(ref.astype(dtype), qs.astype(dtype))
    scales = [1e-30, 1e-12, 1e9, 1e30] if dtype == np.float64 else [1e-15, 1e15]
    for s in scales:
        out = _keys((ref * s).astype(dtype), (qs * s).astype(dtype))
        assert out["gap"] == pytest.approx(base["gap"] * s * s, rel=1e-6), s
        for key in set(base) - {"gap"}:
            assert out[key] == pytest.approx(base[key], rel=1e-6, abs=1e-12), (s, key)


@pytest.mark.parametrize("kind", ["exact", "near"])
@pytest.mark.parametrize("extra", [0.5, 1.0])
def test_copies_in_the_bank_do_not_bias_twonn_or_dim(kind, extra):
    rng = np.random.default_rng(1)
    x, qs = rng.random((2000, 4)), rng.random((500, 4))
    idx = rng.choice(len(x), int(extra * len(x)), replace=False)
    noise = 0.0 if kind == "exact" else 1e-7
    bank = np.concatenate([x, x[idx] + noise * rng.standard_normal((idx.size, 4))])
    perm = rng.permutation(len(bank))
    bank = bank[perm]
    origin = np.concatenate([np.arange(len(x)), idx])[perm]
    dedup = bank[np.sort(np.unique(origin, return_index=True)[1])]  # first copy of each point, in bank order
    with pytest.warns(DuplicatePointsWarning, match="have an exact or near copy"):
        out = _keys(bank, qs, n_bootstrap=0)
    ref = _keys(dedup, qs, n_bootstrap=0)
    share = 2 * idx.size / len(bank)
    assert out["bank_dup_frac"] == pytest.approx(share, abs=0.1 if kind == "near" else 1e-12)
    assert out["dim_twonn"] == pytest.approx(ref["dim_twonn"], rel=0.1)
    assert out["dim"] == pytest.approx(ref["dim"], rel=0.1)
    assert out["dim_mle"] == pytest.approx(ref["dim_mle"], rel=0.1)
    assert ref["bank_dup_frac"] == 0.0


@pytest.mark.parametrize("bank_copies", [False, True])
def test_each_cross_check_warning_is_emitted_once(bank_copies):
    """Queries leaked into the bank: TwoNN's and MLE's duplicate warnings once each (they were computed twice).

    With near copies in the bank the cross-checks read other rows than the trusted dimension's: that path too.
    """
    rng = np.random.default_rng(3)
    bank = rng.random((1000, 4))
    if bank_copies:
        bank = np.concatenate([bank, bank[:200] + 1e-9])
    qs = np.concatenate([bank[:20], rng.random((130, 4))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _keys(bank, qs, n_bootstrap=0)
    for name in ("TwoNN:", "MLE:"):
        assert sum(str(w.message).startswith(name) for w in caught) == 1, [str(w.message) for w in caught]


def test_fewer_queries_than_the_minimum_is_an_error_naming_it():
    """Below MIN_QUERIES the fit is refused (one query read a 5-cube as 3.20 [2.83, 3.62]); at the minimum it runs."""
    rng = np.random.default_rng(4)
    bank, qs = rng.random((1024, 4)), rng.random((MIN_QUERIES, 4))
    with pytest.raises(TooFewQueriesError, match=f"holds only 1 row; .* at least MIN_QUERIES={MIN_QUERIES}") as err:
        _keys(bank, qs[:1], n_bootstrap=0)
    assert isinstance(err.value, ValueError)
    assert set(err.value.partial) == {"gap", "gap_norm", "dup_frac", "bank_dup_frac"}  # what the callback logs
    with pytest.raises(TooFewQueriesError, match=f"holds only {MIN_QUERIES - 1} rows"):
        _keys(bank, qs[:-1], n_bootstrap=0)
    assert math.isfinite(_keys(bank, qs, n_bootstrap=0)["dim"])


def test_no_copies_no_change():
    """A bank without copies: no warning, bank_dup_frac 0, and the neighbour table used as it is."""
    rng = np.random.default_rng(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicatePointsWarning)
        out = _keys(rng.random((2048, 3)), rng.random((256, 3)))
    assert out["bank_dup_frac"] == 0.0
    assert math.isfinite(out["dim_twonn"])


def test_precision_plugins_reach_the_probe_inputs(tmp_path):
    seen: list[torch.dtype] = []

    class Spy(Net):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.dtype)
            return super().forward(x)

    cb = RepresentationGapCallback(layer="rep", **PROBES)
    _trainer(tmp_path, [cb], precision="64-true", limit_train_batches=1).fit(Spy(), *data(n_train=AMBIENT * 24))
    assert set(seen) == {torch.float64}, "every forward, probes included, sees the plugin's dtype"
    assert cb.history[-1]["repgap/valid"] == 1.0


@pytest.mark.parametrize("kind", ["wandb", "mlflow"])
def test_figures_reach_wandb_offline_and_mlflow_file_store(tmp_path, monkeypatch, kind):
    pytest.importorskip(kind, reason=f"{kind} is optional (not in the dev extra)")
    if kind == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        monkeypatch.setenv("WANDB_MODE", "offline")
        monkeypatch.setenv("WANDB_SILENT", "true")
        logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="repgap")
    else:
        from lightning.pytorch.loggers import MLFlowLogger

        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the local file store, no server or database
        logger = MLFlowLogger(experiment_name="repgap", tracking_uri=(tmp_path / "mlruns").as_uri())
    cb = RepresentationGapCallback(layer="rep", **PROBES)
    _trainer(tmp_path, [cb], logger=logger).fit(Net(), *data())
    if kind == "wandb":
        import wandb

        wandb.finish()
        images = list(tmp_path.rglob("media/images/repgap/gap_curve_*.png"))
    else:
        images = list((tmp_path / "mlruns").rglob("repgap_gap_curve/step=*.png"))
    assert len(images) == 1, sorted(str(p) for p in tmp_path.rglob("*") if p.is_file())
    assert images[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_public_gap_curve_and_estimate_dimension_are_scale_free_too():
    from lightning_repgap.dimension import estimate_dimension
    from lightning_repgap.gap import gap_curve

    x = np.random.default_rng(3).random((1500, 3))
    base_dim, base = estimate_dimension(x), gap_curve(x[:1200], x[1200:])
    for s in (1e-30, 1e30):
        assert estimate_dimension(x * s) == pytest.approx(base_dim, rel=1e-6)
        curve = gap_curve(x[:1200] * s, x[1200:] * s)
        assert curve.gap_norm == pytest.approx(base.gap_norm, rel=1e-6)
        assert curve.concentration == pytest.approx(base.concentration, rel=1e-6)
        np.testing.assert_allclose(curve.gaps, base.gaps * s * s, rtol=1e-6)


def test_representation_gap_returns_float64_for_float64_inputs_so_extreme_gaps_survive():
    from lightning_repgap.functional import representation_gap

    rng = np.random.default_rng(4)
    ref, qs = rng.random((512, 3)), rng.random((64, 3))
    base = representation_gap(ref, qs, n_bootstrap=0)
    for s in (1e-30, 1e30):
        out = representation_gap(ref * s, qs * s, n_bootstrap=0)
        assert out["gap"].dtype == torch.float64
        assert float(out["gap"]) == pytest.approx(float(base["gap"]) * s * s, rel=1e-6)
        assert float(out["dim"]) == pytest.approx(float(base["dim"]), rel=1e-6)
    assert representation_gap(ref.astype(np.float32), qs.astype(np.float32))["gap"].dtype == torch.float32
