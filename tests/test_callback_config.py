"""The callback's ``config`` argument, its deprecated flat analysis arguments, and LightningCLI configuration."""

from __future__ import annotations

import os
import sys
import warnings

import pytest
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_repgap import GapConfig, RepresentationGapCallback

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def test_config_reaches_the_metric_and_the_manifest():
    config = GapConfig(n_bootstrap=37, ratio=1.5, n_neighbors=7, confidence=0.9, sizes=(64, 128, 256))
    cb = RepresentationGapCallback(layer="backbone", seed=4, config=config, num_threads=1)
    assert cb.config == config.replace(seed=4)  # the callback's seed is the run's one seed
    metric = cb._metric("backbone")
    assert metric.config == cb.config
    assert metric.num_threads == 1
    assert "num_threads" not in cb.config.to_dict()
    # The default config carries the callback's seed as well.
    assert RepresentationGapCallback(layer="backbone", seed=9).config == GapConfig(seed=9)


def test_config_errors_are_configuration_errors():
    with pytest.raises(MisconfigurationException, match=r"`config\.seed`=5 differs from the callback's `seed`=0"):
        RepresentationGapCallback(layer="backbone", config=GapConfig(seed=5))
    # The minimum bank follows the config's fit_min_size: one rule, GapConfig.min_bank_size.
    with pytest.raises(MisconfigurationException, match="train_probe >= 512"):
        RepresentationGapCallback(layer="backbone", train_probe=500, config=GapConfig(fit_min_size=128))
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_bootstrapp'"):
        RepresentationGapCallback(layer="backbone", n_bootstrapp=3)


def test_a_grid_too_coarse_for_the_bank_is_refused_before_training():
    # 3 fit sizes need more than 4 * fit_min_size points on a coarser grid: refused here, not after the first epoch.
    with pytest.raises(MisconfigurationException, match="train_probe >= 65"):
        RepresentationGapCallback(layer="backbone", train_probe=64, config=GapConfig(ratio=4.0))
    with pytest.raises(MisconfigurationException, match="train_probe >= 129"):
        RepresentationGapCallback(layer="backbone", train_probe=128, config=GapConfig(min_size=64))
    with pytest.raises(MisconfigurationException, match="train_probe >= 5000"):
        RepresentationGapCallback(layer="backbone", train_probe=4096, config=GapConfig(sizes=(16, 32, 64, 5000)))
    with pytest.raises(MisconfigurationException, match="fewer than 3 sizes >= `fit_min_size`=16"):
        RepresentationGapCallback(layer="backbone", config=GapConfig(sizes=(8, 16, 32)))
    RepresentationGapCallback(layer="backbone", train_probe=65, config=GapConfig(ratio=4.0))


def test_a_bank_clamped_below_the_grid_is_refused_when_training_starts(tmp_path):
    import lightning.pytorch as pl
    from _helpers.models import MLP, loaders

    cb = RepresentationGapCallback(layer="backbone", train_probe=1024, val_probe=64, config=GapConfig(ratio=4.0))
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", devices=1, callbacks=[cb], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    # 80 training samples: a bank of 64 (16 go to `gap_ratio`), whose ratio-4 grid has only 2 fit sizes.
    with (
        pytest.warns(UserWarning, match="exceed the 80 training samples"),
        pytest.raises(MisconfigurationException, match="needs at least 65"),
    ):
        trainer.fit(MLP(), *loaders(n_train=80, n_val=64))
    assert trainer.global_step == 0


def test_flat_analysis_arguments_are_deprecated_but_work():
    with pytest.warns(DeprecationWarning, match=r"pass `config=GapConfig\(n_bootstrap=50, calibrate=False\)`"):
        cb = RepresentationGapCallback(layer="backbone", n_bootstrap=50, calibrate=False)
    assert cb.config == GapConfig(n_bootstrap=50, calibrate=False)
    with pytest.warns(DeprecationWarning, match=r"callback\.config\.n_bootstrap"):
        assert cb.n_bootstrap == 50
    with pytest.warns(DeprecationWarning, match=r"config\.to_dict\(\)"):
        assert cb.metric_config() == cb.config.to_dict()
    # Given together with a config, a contradicting flat argument is an error, an agreeing one is not.
    with (
        pytest.warns(DeprecationWarning, match="is deprecated"),
        pytest.raises(MisconfigurationException, match="conflicting"),
    ):
        RepresentationGapCallback(layer="backbone", config=GapConfig(n_bootstrap=20), n_bootstrap=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new spelling warns about nothing
        RepresentationGapCallback(layer="backbone", config=GapConfig(n_bootstrap=50, calibrate=False))


def _parse(tmp_path, text: str) -> RepresentationGapCallback:
    pytest.importorskip("jsonargparse")
    from lightning.pytorch.cli import LightningCLI

    sys.path.insert(0, EXAMPLES)
    try:
        import train_cli
    finally:
        sys.path.remove(EXAMPLES)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    cli = LightningCLI(
        train_cli.TorusClassifier,
        train_cli.TorusDataModule,
        run=False,
        args=["--config", str(path), "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"],
    )
    (cb,) = [c for c in cli.trainer.callbacks if isinstance(c, RepresentationGapCallback)]
    return cb


def test_lightning_cli_builds_the_config_from_yaml(tmp_path):
    with open(os.path.join(EXAMPLES, "cli_config.yaml")) as fh:
        example = fh.read()
    assert "config:" in example
    assert _parse(tmp_path, example).config == GapConfig(fit_min_size=16, n_bootstrap=200, index="exact")
    callback = """
trainer:
  callbacks:
    - class_path: lightning_repgap.RepresentationGapCallback
      init_args:
        layer: backbone
        seed: 2
        config:
          sizes: [64, 128, 256]
          ratio: 1.5
          n_bootstrap: 37
          calibrate: false
          backend: torch
"""
    expected = GapConfig(sizes=(64, 128, 256), ratio=1.5, n_bootstrap=37, calibrate=False, backend="torch", seed=2)
    assert _parse(tmp_path, callback).config == expected
    # A YAML written for 0.1 (flat analysis arguments; sizes and ratio did not exist) still works, with the
    # deprecation warning.
    old_yaml = callback.replace("        config:\n          sizes: [64, 128, 256]\n          ratio: 1.5\n", "")
    with pytest.warns(DeprecationWarning, match="config=GapConfig"):
        old = _parse(tmp_path, old_yaml.replace("          ", "        "))
    assert old.config == expected.replace(sizes=None, ratio=2.0)


def test_a_home_relative_snapshot_dir_is_expanded(tmp_path, monkeypatch):
    # As ModelCheckpoint's dirpath: "~/runs" must not become a folder named "~" in the working directory.
    monkeypatch.setenv("HOME", str(tmp_path))
    cb = RepresentationGapCallback(layer="backbone", snapshot_dir="~/runs")
    assert cb.snapshot_dir == os.path.join(str(tmp_path), "runs")
    assert RepresentationGapCallback(layer="backbone").snapshot_dir is None
