"""Two gloo ranks of a real ``Trainer.fit`` whose callback check fails on one rank only (``test_callback_gloo.py``).

Each rank is a process of :func:`torch.multiprocessing.spawn` that Lightning sees as launched externally (as under
``torchrun``: ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` set), so that a rank's exception stays its own (no launcher
kills its peers) and each rank saves its own outcome to ``OUT_DIR/<case>-rank<r>.json``: the error's type and message
(or none), the training steps run, the seconds the fit took, and the callback's history. Cases:

- ``"layer"``: the watched layer exists on rank 0 only (the layer check at ``setup``);
- ``"bank"``: ``reference_fn`` returns ``None`` on rank 0 (not ready: checked later) and a bank of the wrong width on
  rank 1 (the check when training starts);
- ``"measure_raises"``: ``reference_fn``'s bank is right on both ranks at the start of training, and on rank 1 changes
  width at the first measurement (a measurement fault, survived with ``strict=False``); right again at the second; at
  the third, rank 1's ``reference_fn`` itself raises :data:`USER_ERROR` (an error in the user's code: it propagates)
  while rank 0's bank changes width (a fault that the error must take precedence over).
  One fit for both, to keep the gloo runs few.
- ``"probe_raises"``: on rank 1 only, the model's ``forward`` leaves the watched layer out in the second measurement's
  probe pass (an unreadable layer: a measurement fault, survived with ``strict=False``) and raises
  :data:`PROBE_ERROR` in the third's (its first forward there: the bank's, before the validation capture's own
  reduce); the process group's timeout is :data:`PROBE_TIMEOUT_S`. Each rank also saves ``raised_at``, the wall time
  when it caught its error, and rank 1 ``forward_raised_at``, when its forward raised.
- ``"capture_width"``: one epoch, one validation batch of 32 rows per rank (``limit_val_batches=1``): the validation
  capture takes those, the probe pass embeds the rest; on rank 1 only, the watched layer is 3 wide in a probe batch of
  32 rows and 2 wide elsewhere (a width that depends on the batch), so rank 1's captured and probed rows disagree
  (a measurement fault, survived with ``strict=False``; it raised on rank 1 alone, after the capture's collective);
- ``"strict_figure"``: ``strict=True``, figures on, and rank 0's CSV logger finds a file where its figures directory
  should be: a :class:`~lightning_repgap._faults.FigureIOError` that every rank must raise (rank 0 raised it alone);
- ``"rank_width"``: the watched layer (an identity ``seq``) is 2 wide on rank 0 and 3 wide on rank 1, the same in
  every batch of a rank (each rank's checks pass): the metric's gather finds the widths differ between ranks
  (a measurement fault, survived with ``strict=False``, on every rank alike);
- ``"strict_ckpt"``: ``strict=True``, ``snapshot_on="checkpoint"`` with a file where rank 0's snapshot directory
  should be, and a ``ModelCheckpoint``: the :class:`~lightning_repgap._faults.SnapshotIOError` of rank 0's write
  when the checkpoint is saved (every rank saves it) must be raised on every rank.

After the ``"layer"`` fit, :func:`subclass_check` runs the agreement of a setup check alone on the same process group.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import time
import traceback
from types import SimpleNamespace

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from _helpers.models import MLP, QUIET_TRAINER, ProbePassMLP, loaders
from lightning_repgap._callback_faults import collective_check
from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.config import GapConfig

#: The process group's timeout in these runs: a rank left waiting fails within it, not after gloo's half hour.
TIMEOUT_S = 40
WORLD = 2
#: What rank 1's ``reference_fn`` raises at the third measurement of ``"measure_raises"`` (a ``ValueError``, as the
#: bank checks raise, to show that it is not taken for a bad bank).
USER_ERROR = "the user's bank sampler broke"
#: What rank 1's ``forward`` raises in the second measurement's probe pass of ``"probe_raises"``.
PROBE_ERROR = "the user's forward broke in the probe pass"
#: The process group's timeout of ``"probe_raises"``: a rank left waiting fails within it (short: a hang on code that
#: does not agree shows within ~20 s, not minutes).
PROBE_TIMEOUT_S = 20
#: The cases with a model and settings of their own (no ``reference_fn``; the process group's timeout of
#: ``"probe_raises"``).
_OWN = ("capture_width", "strict_figure", "rank_width", "strict_ckpt")
#: Wall time (``time.time()``) when rank 1's forward raised in ``"probe_raises"``.
_FORWARD_RAISED: list[float] = []


class ProbeRaising(ProbePassMLP):
    """The test MLP whose ``forward`` on rank 1 skips ``backbone`` in the second measurement's probe pass and raises in
    the third's, and only there.

    The probe pass is :attr:`~_helpers.models.ProbePassMLP.in_probe_pass`.
    """

    def __init__(self, rank: int) -> None:
        super().__init__(lr=0.0)
        self.rank = rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probe_pass = self.in_probe_pass
        if probe_pass and self.rank == 1 and self.current_epoch == 1:
            return self.head(torch.zeros(x.shape[0], self.head.in_features))
        if probe_pass and self.rank == 1 and self.current_epoch == 2:
            _FORWARD_RAISED.append(time.time())
            raise ValueError(PROBE_ERROR)
        return super().forward(x)


class WidthByBatch(ProbeRaising):
    """The test MLP with an identity ``seq`` (watched) that is 3 wide in rank 1's probe batches of 32 rows, else 2."""

    def __init__(self, rank: int) -> None:
        super().__init__(rank)
        self.seq = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probe_pass = self.in_probe_pass
        self.seq(x[:, : 3 if (probe_pass and self.rank == 1 and x.shape[0] == 32) else 2])
        return MLP.forward(self, x)


class WidthByRank(MLP):
    """The test MLP with an identity ``seq`` (watched) that is ``2 + rank`` wide on every batch of its rank."""

    def __init__(self, rank: int) -> None:
        super().__init__(lr=0.0)
        self.rank = rank
        self.seq = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seq(x[:, : 2 + self.rank])
        return super().forward(x)


def _bank(case: str, rank: int, pl_module: pl.LightningModule) -> torch.Tensor | None:
    training = pl_module.trainer.training  # the call when training starts; measurements run in validation
    if case == "bank":
        return None if rank == 0 else torch.randn(256, 3)
    epoch = pl_module.current_epoch
    if rank == 1 and not training and epoch == 2:
        raise ValueError(USER_ERROR)
    width = 32 if (not training and (rank, epoch) in ((1, 0), (0, 2))) else 64
    return pl_module.backbone(torch.randn(256, 16))[:, :width]


def run(rank: int, port: int, out_dir: str, case: str) -> None:
    """One rank of one case; never raises (the outcome is saved), and leaves with ``os._exit``."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD), RANK=str(rank), LOCAL_RANK=str(rank)
    )
    os.environ["NODE_RANK"] = "0"
    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)
    models = {"probe_raises": ProbeRaising, "capture_width": WidthByBatch, "rank_width": WidthByRank}
    model = models.get(case, lambda r: MLP(lr=0.0))(rank)
    if case == "layer" and rank == 0:
        model.extra = nn.Identity()  # no parameters: DDP's own checks see the same model on both ranks
    not_a_dir = os.path.join(out_dir, "not-a-directory")
    if case == "strict_ckpt" and rank == 0:
        with open(not_a_dir, "w") as fh:
            fh.write("a file where the snapshot directory should be")
    layer = {"layer": "extra", "capture_width": "seq", "rank_width": "seq"}.get(case, "backbone")
    cb = RepresentationGapCallback(
        layer=layer,
        val_probe=128 if case == "capture_width" else 64,
        train_query_probe=0,
        reference_fn=None if case in ("layer", "probe_raises", *_OWN) else (lambda m: _bank(case, rank, m)),
        config=GapConfig(n_bootstrap=0),
        log_figures=case == "strict_figure",
        strict=case.startswith("strict_"),
        snapshot_dir=not_a_dir if case == "strict_ckpt" else None,
        snapshot_on="checkpoint",
    )
    timeout = datetime.timedelta(seconds=PROBE_TIMEOUT_S if case in ("probe_raises", *_OWN) else TIMEOUT_S)
    extra: dict[str, object] = {"limit_val_batches": 1} if case == "capture_width" else {}
    callbacks: list[pl.Callback] = [cb]
    if case == "strict_ckpt":
        extra["enable_checkpointing"] = True
        callbacks.append(ModelCheckpoint(dirpath=os.path.join(out_dir, "ckpt"), every_n_epochs=1, save_top_k=-1))
    if case == "strict_figure":
        extra["logger"] = CSVLogger(out_dir, name="csv", version=0)
        if rank == 0:
            os.makedirs(os.path.join(out_dir, "csv", "version_0"), exist_ok=True)
            with open(os.path.join(out_dir, "csv", "version_0", "figures"), "w") as fh:
                fh.write("a file where the figures directory should be")
    trainer = pl.Trainer(
        max_epochs=3 if case in ("measure_raises", "probe_raises") else 1,
        accelerator="cpu",
        devices=WORLD,
        strategy=DDPStrategy(process_group_backend="gloo", timeout=timeout),
        callbacks=callbacks,
        **{**QUIET_TRAINER, **extra},
        limit_train_batches=2,
    )
    outcome: dict[str, object] = {"error": None, "message": ""}
    t0 = time.perf_counter()
    train, val = loaders(n_train=512, n_val=128, batch_size=64)
    if case == "capture_width":  # validation batches of 32 rows; probe batches of the training loader's 64
        val = loaders(n_train=512, n_val=128, batch_size=32)[1]
    try:
        trainer.fit(model, train, val)
    except Exception as err:
        outcome.update(error=type(err).__name__, message=str(err), trace=traceback.format_exc(), raised_at=time.time())
    outcome.update(seconds=time.perf_counter() - t0, steps=trainer.global_step, forward_raised_at=_FORWARD_RAISED[:1])
    if case == "layer" and dist.is_initialized():  # a second check on the same group: no further spawn
        outcome["subclass"] = subclass_check(rank)
    outcome["history"] = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in h.items()} for h in cb.history
    ]
    with open(os.path.join(out_dir, f"{case}-rank{rank}.json"), "w") as fh:
        json.dump(outcome, fh)
    # The group may be half torn down on one side (a rank that failed): leave without the interpreter's teardown,
    # as the gloo gather test does; every outcome is on disk.
    os._exit(0)


class LayerMissingError(MisconfigurationException):
    """A configuration error of its own class (a ``MisconfigurationException`` under another name)."""


def subclass_check(rank: int) -> dict[str, object]:
    """:func:`~lightning_repgap._callback_faults.collective_check` alone, on the fit's process group (kept after it).

    Rank 1's check raises a :class:`LayerMissingError`; returns the type and message of what this rank raised.
    """
    outcome: dict[str, object] = {"error": None, "message": ""}

    def check() -> None:
        if rank == 1:
            raise LayerMissingError("no layer 'extra' on rank 1")

    try:
        collective_check(SimpleNamespace(global_rank=rank, world_size=WORLD), check)  # type: ignore[arg-type]
    except Exception as err:
        outcome.update(error=type(err).__name__, message=str(err), trace=traceback.format_exc())
    return outcome
