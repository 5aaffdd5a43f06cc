"""Record the torch thread count each DDP rank's search runs with (run as a script for real DDP).

python tests/_helpers/ddp_threads.py OUT_DIR

Unlike ``ddp_run.py`` this script leaves torch's thread count alone, so what the search sees is what Lightning
configured for the rank. Each rank writes ``threads-rank<r>.json``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import lightning.pytorch as pl
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from _helpers.models import MLP, QUIET_TRAINER, loaders
from lightning_repgap import _exact, _threads
from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.config import GapConfig


def main() -> None:
    out_dir = sys.argv[1]
    seen: list[dict[str, int]] = []
    prefix_search = _exact.prefix_top1_torch

    def spy(*args: Any, **kwargs: Any) -> Any:
        # The one-pass prefix search is the bulk of a measurement: record the setting it actually runs under.
        seen.append({"torch": torch.get_num_threads(), "default": _threads.default_num_threads()})
        return prefix_search(*args, **kwargs)

    _exact.prefix_top1_torch = spy  # looked up at call time by the exact engine
    pl.seed_everything(0)
    train, val = loaders(n_train=512, n_val=128)
    cb = RepresentationGapCallback(
        layer="backbone", train_probe=256, val_probe=64, config=GapConfig(n_bootstrap=10, backend="torch")
    )
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        callbacks=[cb],
        **QUIET_TRAINER,
    )
    trainer.fit(MLP(lr=0.0), train, val)
    with open(os.path.join(out_dir, f"threads-rank{trainer.global_rank}.json"), "w") as fh:
        json.dump({"searches": seen, "measurements": len(cb.history)}, fh)
    # Lightning destroys the process group at exit only for NCCL; a gloo group left to the interpreter's teardown
    # can abort the process after fit ("terminate called without an active exception", SIGABRT: pytorch#190489).
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
