"""The validation probe read off the validation loop's own forward passes, instead of a second pass over it.

When the validation loader visits the dataset in an order known in advance (a ``SequentialSampler``, or a
``DistributedSampler`` without shuffling, which Lightning puts there under DDP, padding included), the dataset index
of every row of every validation batch is known before the batch runs. :class:`ValidationCapture` then hooks the
watched layers for the duration of each validation batch that holds probe rows and keeps those rows, pooled exactly
as the probe pass pools them, with the batch's labels. At the measurement the ranks agree (one small collective)
on which probe rows were captured somewhere; only the rest go through the probe pass.

It falls back to the probe pass, never failing the fit, whenever the mapping or the forward is not certain:

- the loader is not the probe's (another dataset), shuffles, has a custom sampler or batch sampler, or is iterable;
- a watched layer did not fire exactly once per batch with one row per sample (``torch.compile``'d models, a
  ``validation_step`` that calls the model twice or not at all), or its rows differ in width from batch to batch;
- a custom ``forward_fn`` defines the probe pass, or no layer is watched (raw inputs);
- the check fails: each measurement re-embeds a few captured rows with the probe pass and compares them
  (a ``validation_step`` that feeds the model something else than ``forward`` would, MC dropout, ...); then the
  capture is switched off for the rest of the run, with one warning.

Rows come from validation batches rather than probe batches, so a model whose per-sample output depends on the
batch it sits in (batch statistics in eval mode) differs from the probe pass exactly as it would with another
``batch_size``; the check above catches it when the difference exceeds floating-point rounding.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, IterableDataset, SequentialSampler

from lightning_repgap._probe_share import rank_share
from lightning_repgap.capture import Pooling, ProbeConfigurationError, pool, resolve_layers, split_batch

if TYPE_CHECKING:
    from lightning_repgap.callback import RepresentationGapCallback

__all__ = ["CHECK_ROWS", "ValidationCapture", "arm", "split_queries"]

log = logging.getLogger(__name__)

#: Captured rows re-embedded by the probe pass at each measurement, to check that both passes agree.
CHECK_ROWS = 8
# Largest |captured - probe| relative to the rows' largest magnitude that still counts as floating-point rounding.
_TOLERANCE = {"full": 1e-4, "half": 3e-2}


def _visit_order(loader: Any, dataset: Any, num_batches: int) -> list[list[int]] | None:
    """Dataset indices of the rows of each batch this rank's validation loader yields, or ``None`` if not certain."""
    if not isinstance(loader, DataLoader) or loader.dataset is not dataset or isinstance(dataset, IterableDataset):
        return None
    batch_sampler = loader.batch_sampler
    if type(batch_sampler) is not BatchSampler:  # a custom grouping of rows into batches
        return None
    sampler = batch_sampler.sampler
    if type(sampler) is SequentialSampler or (isinstance(sampler, DistributedSampler) and not sampler.shuffle):
        # Neither draws random numbers when iterated: listing it now gives the order the loop will see.
        return [list(map(int, batch)) for _, batch in zip(range(num_batches), batch_sampler, strict=False)]
    return None


class ValidationCapture:
    """Collects the validation probe's rows of the watched layers during one validation epoch (one instance per run).

    Attributes:
        enabled: ``False`` once the check found the validation forward differs from the probe pass (for the run).

    """

    def __init__(self) -> None:
        self.enabled = True
        self._batches: list[list[int]] | None = None
        self._wanted: dict[int, int] = {}  # dataset index -> position in the validation probe
        self._layers: Mapping[str, nn.Module] = {}
        self._pooling: Pooling = "flatten"
        self._handles: list[Any] = []
        self._rows: dict[str, list[Tensor]] = {}
        self._fired: dict[str, int] = {}
        self._index: list[int] = []
        self._seen: set[int] = set()
        self._labels: list[Tensor] | None = []
        self._pending: tuple[list[int], Tensor, Any] = ([], torch.empty(0), None)
        self._ok = False
        #: Validation-probe rows this rank took from the validation loop at the last measurement.
        self.last_count = 0

    # ---------------------------------------------------------------------------------------- during validation

    def start(
        self, trainer: Trainer, layers: Mapping[str, nn.Module], pooling: Pooling, probe: list[int], dataset: Any
    ) -> None:
        """Arm the capture for this validation epoch if the order of the loader's rows is certain."""
        self.stop()
        loaders = trainer.val_dataloaders
        loader = loaders[0] if isinstance(loaders, list | tuple) and loaders else loaders
        num_batches = trainer.num_val_batches[0] if trainer.num_val_batches else 0
        certain = self.enabled and layers and math.isfinite(num_batches)  # inf: an iterable loader of unknown length
        self._batches = _visit_order(loader, dataset, int(num_batches)) if certain else None
        self._ok = self._batches is not None
        self._wanted = {index: pos for pos, index in enumerate(probe)}
        self._layers, self._pooling = layers, pooling
        self._rows = {name: [] for name in layers}
        self._index, self._labels, self._seen = [], [], set()

    def batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int) -> None:
        """Hook the watched layers if this batch holds probe rows not captured yet."""
        if not self._ok or dataloader_idx != 0 or self._batches is None:
            return
        if batch_idx >= len(self._batches) or batch is None:
            self._ok = False
            return
        indices = self._batches[batch_idx]
        keep = [row for row, index in enumerate(indices) if index in self._wanted and index not in self._seen]
        if not keep:
            return
        rows = torch.as_tensor(keep, dtype=torch.long)
        self._fired = dict.fromkeys(self._layers, 0)
        for name, module in self._layers.items():
            self._handles.append(module.register_forward_hook(self._hook(name, rows, len(indices))))
        self._pending = ([indices[row] for row in keep], rows, batch)

    def _hook(self, name: str, rows: Tensor, batch_rows: int) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            self._fired[name] += 1
            # This runs inside the user's forward: an exception here would end their fit, and the probe pass can
            # always take over, so any failure only switches the capture off for this epoch.
            try:
                pooled = pool(output, self._pooling)
                if pooled.shape[0] != batch_rows:
                    self._ok = False
                    return
                self._rows[name].append(pooled[rows.to(pooled.device)].to("cpu", torch.float32).clone())
            except Exception as err:
                log.debug("validation capture off for this epoch: %r", err)
                self._ok = False

        return hook

    def batch_end(self) -> None:
        """Unhook; keep the batch's rows if every layer fired exactly once."""
        if not self._handles:
            return
        self.stop()
        indices, rows, batch = self._pending
        if any(count != 1 for count in self._fired.values()):
            self._ok = False
        if not self._ok:
            return
        try:  # the user's validation batch: whatever its form, the probe pass can take over
            _, labels = split_batch(batch)
        except Exception as err:
            log.debug("validation capture off for this epoch: %r", err)
            self._ok = False
            return
        self._index.extend(indices)
        self._seen.update(indices)
        if self._labels is not None and labels is not None and labels.shape[0] > int(rows.max()):
            self._labels.append(labels.detach()[rows.to(labels.device)].to("cpu", torch.int64))
        else:
            self._labels = None

    def stop(self) -> None:
        """Remove every hook (also when validation is interrupted)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ---------------------------------------------------------------------------------------- at the measurement

    def finish(
        self, trainer: Trainer, probe: list[int], embed: Callable[[list[int]], dict[str, Tensor]]
    ) -> tuple[dict[str, Tensor], Tensor | None, list[int]] | None:
        """This rank's captured rows and the probe indices no rank captured; ``None``: the probe pass does all.

        Every rank calls it (one collective under DDP): the ranks agree on success and on what was captured
        somewhere. Before that, ``embed(indices)`` (the probe pass) re-embeds a few captured rows as a check.

        Nothing before that collective may raise on one rank only, or the others would wait in it: the rows are
        concatenated only after their widths were found equal from batch to batch (else the capture fails, agreed),
        every batch kept one row per layer and index (the hooks and ``batch_end`` check it), and ``embed`` is the
        caller's guarded probe pass, which records an error for the ranks' later agreement instead of raising.
        After it, the labels are 1-D vectors (:func:`~lightning_repgap.capture.split_batch`), and the caller guards
        the rest (:func:`split_queries`).

        Returns:
            ``({layer: rows, "__index__": indices}, labels, missing)``: the rows this rank captured, sorted by index,
            their labels (``None`` if a batch had none), and the probe indices left to the probe pass.

        """
        self.stop()
        self.last_count = 0
        if self._batches is None:  # not armed this epoch (same decision on every rank: same loaders, same flag)
            return None
        self._batches = None
        order = sorted(range(len(self._index)), key=self._index.__getitem__)
        index = [self._index[i] for i in order]
        reason = "" if self._ok else "a watched layer did not fire once per validation batch with one row per sample"
        if not reason and any(len({c.shape[1:] for c in chunks}) > 1 for chunks in self._rows.values()):
            reason = "a watched layer's rows differ in width from one validation batch to another"
        feats = {} if reason else {name: torch.cat(chunks)[order] for name, chunks in self._rows.items() if chunks}
        if not reason and index:
            probed = embed(index[:CHECK_ROWS])
            if not _agrees(feats, probed, str(trainer.precision)):
                reason = "the validation loop's forward pass gives other representations than the probe pass"
        flags = torch.zeros(len(probe) + 1, dtype=torch.int64)
        flags[[self._wanted[i] for i in index]] = 1
        flags[-1] = int(bool(reason))
        if trainer.world_size > 1:  # any rank's failure sends every rank back to the probe pass
            flags = trainer.strategy.reduce(flags.to(trainer.strategy.root_device), reduce_op="sum").cpu()
        if int(flags[-1]) > 0:
            self.disable(reason or "the validation capture failed on another rank")
            return None
        missing = [i for i, hit in zip(probe, flags[:-1].tolist(), strict=True) if not hit]
        feats["__index__"] = torch.as_tensor(index, dtype=torch.int64)
        labels = torch.cat(self._labels)[order] if self._labels else None
        self._rows = {}
        self.last_count = len(index)
        return feats, labels, missing

    def disable(self, reason: str) -> None:
        """Switch the capture off for the rest of the run, saying why once."""
        if self.enabled:
            rank_zero_warn(
                f"RepresentationGapCallback: {reason}; the validation probe gets its own forward pass from now on "
                "(`capture_validation=False` skips the attempt)."
            )
        self.enabled = False


def _agrees(captured: Mapping[str, Tensor], probed: Mapping[str, Tensor], precision: str) -> bool:
    """Whether the probe pass reproduced the captured rows up to floating-point rounding."""
    tol = _TOLERANCE["half" if "16" in precision else "full"]
    for name, rows in probed.items():
        ref = captured[name][: rows.shape[0]]
        if ref.shape != rows.shape:
            return False
        scale = float(ref.abs().max()) if ref.numel() else 0.0
        if ref.numel() and float((ref - rows).abs().max()) > tol * max(scale, 1e-30):
            return False
    return True


def arm(cb: RepresentationGapCallback, trainer: Trainer, pl_module: LightningModule) -> None:
    """Start the capture for this validation epoch (when the callback measures in it and nothing forbids it)."""
    cap = cb._val_capture
    if not (cb.capture_validation and cb.layer and cb.forward_fn is None and cap.enabled):
        return
    try:
        datasets = cb._datasets(trainer)
        probe = cb._probe_indices(datasets)["queries"]
        layers = resolve_layers(pl_module, cb.layer)
    except Exception:  # the measurement reports configuration problems itself, with its own message
        return
    cap.start(trainer, layers, cb.pooling, probe, datasets["val"])


def split_queries(
    trainer: Trainer,
    probe: list[int],
    got: tuple[dict[str, Tensor], Tensor | None, list[int]] | None,
    embed: Callable[[list[int]], tuple[dict[str, Tensor], Tensor | None]],
) -> tuple[dict[str, Tensor], Tensor | None]:
    """This rank's validation-probe rows: those captured during validation plus its share of the rest, embedded.

    ``got`` is what :meth:`ValidationCapture.finish` returned (after its collective, which the caller runs outside
    its guard), ``embed(indices)`` the probe pass over the given dataset indices (``({layer: rows}, labels)``).

    Raises:
        ProbeConfigurationError: when a layer's captured rows and its probe pass's rows differ in width (a width that
            depends on the batch's content, with ``limit_val_batches`` leaving rows to the probe pass). It comes after
            the capture's collective: the caller hands it to the ranks' agreement, as an error of ``embed``.

    """
    rank, world = trainer.global_rank, trainer.world_size
    if got is None:
        mine = rank_share(probe, rank, world)
        feats, labels = embed(mine)
        return {**feats, "__index__": torch.as_tensor(mine, dtype=torch.int64)}, labels
    captured, captured_labels, missing = got
    mine = missing[rank::world]
    if not mine and captured["__index__"].numel() == 0:
        mine = [probe[rank % len(probe)]]  # every rank sends rows (a repeat is dropped by the metric)
    if not mine:
        return captured, captured_labels
    probed, labels = embed(mine)
    index = torch.as_tensor(mine, dtype=torch.int64)
    if captured["__index__"].numel() == 0:
        return {**probed, "__index__": index}, labels
    for name, rows in probed.items():  # each pass is consistent on its own (checked), the two may not agree
        if rows.shape[1:] != captured[name].shape[1:]:
            raise ProbeConfigurationError(
                f"layer {name!r} gave the validation probe's rows of width {tuple(captured[name].shape[1:])} in the "
                f"validation loop and of width {tuple(rows.shape[1:])} in the probe pass for the rows it missed"
            )
    feats = {name: torch.cat([captured[name], rows]) for name, rows in probed.items()}
    feats["__index__"] = torch.cat([captured["__index__"], index])
    both = captured_labels is not None and labels is not None  # 1-D label vectors (split_batch): no width to differ
    return feats, torch.cat([captured_labels, labels]) if both else None  # type: ignore[list-item]
