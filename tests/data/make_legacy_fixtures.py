"""Write the legacy fixtures under ``tests/data/legacy_0_1_0/`` with the release as it stood at commit 268bd18.

Run once, from the repository root, on that commit (the callback still took its analysis settings as flat
arguments then): ``python tests/data/make_legacy_fixtures.py``. The files are committed; ``test_legacy.py`` checks
that checkpoints and snapshots written by that release still load and reproduce their logged numbers.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from lightning.pytorch import Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _helpers.models import MLP, loaders  # noqa: E402

from lightning_repgap import RepresentationGapCallback  # noqa: E402

OUT = HERE / "legacy_0_1_0"


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    seed_everything(0)
    callback = RepresentationGapCallback(
        layer="backbone",
        train_probe=128,
        val_probe=32,
        train_query_probe=16,
        seed=3,
        snapshot_dir=str(OUT / "snapshots"),
        snapshot_dtype="float32",
        snapshot_on="evaluation",
        backend="torch",
        index="exact",
        log_figures=False,
        min_size=8,
        fit_min_size=16,
        n_bootstrap=20,
        calibrate=False,
    )
    trainer = Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback, ModelCheckpoint(dirpath=OUT, filename="last", save_last=False)],
    )
    trainer.fit(MLP(width=8), *loaders(n_train=256, n_val=64, batch_size=64))
    print(sorted(p.relative_to(OUT).as_posix() for p in OUT.rglob("*") if p.is_file()))


if __name__ == "__main__":
    main()
