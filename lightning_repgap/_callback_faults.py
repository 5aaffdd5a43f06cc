"""The callback's robustness helpers: the setup-time probe, the expected keys of a survived fault, and resume checks.

Kept apart from :mod:`lightning_repgap.callback` so that the callback's measurement code stays about measuring:
these functions read the callback's settings and call its probe helpers, and they own no state of their own.
"""

from __future__ import annotations

import ast
import contextlib
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.model_helpers import is_overridden
from lightning.pytorch.utilities.seed import isolate_rng

from lightning_repgap import _faults
from lightning_repgap._shard import shard_of
from lightning_repgap.capture import (
    ProbeConfigurationError,
    embed_batches,
    embed_inputs,
    lightning_transfer,
    resolve_layers,
    split_batch,
)

if TYPE_CHECKING:
    from lightning_repgap.callback import RepresentationGapCallback

# The metric's label arguments: a measurement logs ``knn_acc`` when both are given.
_LABELS = ("reference_labels", "query_labels")
#: Rows of the one-batch probe run when training starts.
SETUP_PROBE_ROWS = 4
# Settings that decide which points are measured and how: a change makes earlier values incomparable. (A changed
# ``seed`` is handled by ``load_state_dict`` itself: new probes are drawn and the history is kept, as documented.)
_SETTINGS = ("layer", "train_probe", "val_probe", "train_query_probe", "pooling", "prefix")


def probe_settings(cb: RepresentationGapCallback) -> dict[str, Any]:
    """The settings that define what the callback measures (stored in its state, compared on resume)."""
    pooling = cb.pooling if isinstance(cb.pooling, str) else getattr(cb.pooling, "__qualname__", repr(cb.pooling))
    return {
        "layer": list(cb.layer),
        "train_probe": cb.train_probe,
        "val_probe": cb.val_probe,
        "train_query_probe": cb.train_query_probe,
        "seed": cb.seed,
        "pooling": pooling,
        "prefix": cb.prefix,
    }


def _settings_of(key: str, state: dict[str, Any]) -> dict[str, Any]:
    """Stored settings, or those readable from the state key of a checkpoint written before they were stored."""
    if isinstance(state.get("settings"), dict):
        return dict(state["settings"])
    out: dict[str, Any] = {"layer": state.get("layer"), "seed": state.get("seed")}
    head = key.find("{")
    if head >= 0:
        with contextlib.suppress(ValueError, SyntaxError):
            out.update(ast.literal_eval(key[head:]))
    return out


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [f"{name} {old[name]!r} -> {new[name]!r}" for name in _SETTINGS if name in old and old[name] != new[name]]


def _archive(cb: RepresentationGapCallback, state: dict[str, Any], old: dict[str, Any], changes: list[str]) -> None:
    cb.archived_history.extend(state.get("archived_history", []))
    if state.get("history"):
        cb.archived_history.append({"settings": old, "history": list(state["history"])})
    rank_zero_warn(
        f"RepresentationGapCallback: the checkpoint was measured with other probe settings ({'; '.join(changes)}). "
        "Its values are not comparable with this run's: they are kept apart in `archived_history` under their old "
        "settings, and `history` starts afresh with new probes."
    )


def archive_changed_settings(cb: RepresentationGapCallback, checkpoint: dict[str, Any]) -> None:
    """On resume, find this callback's earlier state saved under another state key (changed probe sizes).

    Lightning restores a callback's state only under its exact ``state_key``, which includes the probe sizes; a
    changed ``val_probe`` would silently drop the history. A state with the same layers and another key is archived
    with a warning naming what changed.
    """
    states = checkpoint.get("callbacks") or {}
    for key, state in states.items():
        if key == cb.state_key or not key.startswith(type(cb).__name__) or not isinstance(state, dict):
            continue
        if state.get("layer") != list(cb.layer) or cb.state_key in states:
            continue
        old = _settings_of(key, state)
        _archive(cb, state, old, _changes(old, probe_settings(cb)) or [f"state key {key!r}"])


def restorable(cb: RepresentationGapCallback, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` if it was measured with this callback's settings; else archive it (warning) and restore nothing."""
    if "settings" not in state:
        return state
    old = dict(state["settings"])
    changes = _changes(old, probe_settings(cb))
    if not changes:
        return state
    _archive(cb, state, old, changes)
    return {"archived_history": list(cb.archived_history)}


def expected_keys(
    cb: RepresentationGapCallback,
    kwargs: dict[str, Any],
    fault: BaseException | None = None,
    train_queries: bool = False,
) -> list[str]:
    """The keys this layer logs when its measurement succeeds (so a survived fault logs the same keys as NaN).

    Read off the metric's arguments; after a probe pass that stopped at an unreadable layer (``fault``) they are
    incomplete, and the keys are read off the settings instead: ``train_queries`` (a training-query probe was drawn)
    and whether the probe batches of both the training and the validation set carry labels (seen when training
    started), as a measurement passes labels (and logs ``knn_acc``) only when the bank's and the queries' both have.
    """
    from lightning_repgap.search import resolve_index

    if isinstance(fault, _faults.UnreadableLayerError):
        labelled = cb._labelled and cb.reference_fn is None
        kwargs = {"train_queries": [] if train_queries else None, **dict.fromkeys(_LABELS, [] if labelled else None)}
    return _faults.expected_keys(
        train_queries=kwargs.get("train_queries") is not None,
        labels=all(kwargs.get(key) is not None for key in _LABELS),
        approximate=resolve_index(cb.config.index, max(cb.train_probe, 2)) != "exact",
    )


@contextlib.contextmanager
def val_dataloaders_loaded(trainer: Trainer) -> Iterator[None]:
    """Within the block the fit's validation DataLoaders are loaded (the callback draws probes from their datasets).

    Lightning loads them when training starts only if the first epoch validates: with ``check_val_every_n_epoch=2``
    (and no sanity check) they come at the first validation. Here they are loaded the way Lightning's fit loop does,
    under :func:`~lightning.pytorch.utilities.seed.isolate_rng` (a ``val_dataloader()`` that draws random numbers
    leaves the run's random state as it found it), and on leaving the block the loop is handed back as found, so
    Lightning loads them again at the first validation on its own ``reload_dataloaders_every_n_epochs`` schedule: a
    run's weights and loaders do not depend on the callback being there. The cost is one extra
    ``val_dataloader()`` call when training starts.

    Raises:
        MisconfigurationException: ``limit_val_batches=0`` or no ``validation_step``: no validation runs, so the
            callback would never measure.

    """
    if trainer.val_dataloaders is not None or trainer.state.fn != "fit":
        yield
        return
    if trainer.limit_val_batches == 0:
        raise MisconfigurationException(
            "RepresentationGapCallback measures at the end of validation epochs, and `limit_val_batches=0` turns "
            "validation off: it would never measure. Let some validation batches run (`limit_val_batches` > 0) or "
            "leave the callback out of this fit."
        )
    if not is_overridden("validation_step", trainer.lightning_module):
        raise MisconfigurationException(
            "RepresentationGapCallback measures at the end of validation epochs, and the LightningModule has no "
            "`validation_step`, so no validation runs: it would never measure. Define `validation_step` (it may only "
            "compute the forward) or leave the callback out of this fit."
        )
    loop = trainer.fit_loop.epoch_loop.val_loop
    stage, last_reload = trainer.state.stage, loop._last_val_dl_reload_epoch
    try:
        trainer.validating = True  # as Lightning's fit loop does when it loads them at the start of training
        try:
            with isolate_rng(include_cuda=torch.cuda.is_initialized()):
                loop.setup_data()
        finally:
            trainer.state.stage = stage
        yield
    finally:  # hand the loop back as found: Lightning loads them at the first validation, on its own schedule
        loop._combined_loader, loop._last_val_dl_reload_epoch = None, last_reload


_SETUP_ERROR = "RepresentationGapCallback: the one-batch probe at the start of training found a configuration error: "


def setup_probe(cb: RepresentationGapCallback, trainer: Trainer, pl_module: LightningModule) -> None:
    """Find configuration errors before the first epoch: datasets, probes and a one-batch pass of every layer.

    The pass runs the way measurements do (precision plugin, batch-transfer hooks, eval mode, no grad), over the
    first few probe rows, and turns what only data can reveal into a ``MisconfigurationException`` now: a layer
    that never runs in ``forward`` (or a container), one that runs several times per forward, layers that disagree
    on the batch size, and datasets the probes cannot be drawn from. With a ``reference_fn`` it is called once
    and its output's type and shape checked, without copying it (a tensor of at least ``config.min_bank_size``
    points in all, as wide as the queries: the watched layer's, or the flattened raw inputs' with ``layer=None``).
    A function that returns ``None`` then is not ready yet (a bank filled during training): it is checked at the
    first measurement instead. With no probe rows to pass (an empty validation set and a ``reference_fn``) nothing
    is checked: nothing is measured either.

    The pass and the call run under :func:`~lightning.pytorch.utilities.seed.isolate_rng`: a forward, a batch
    transfer hook or a ``reference_fn`` that draws random numbers leaves the global RNG that training uses as it
    was, so a run's weights do not depend on the callback being there. Under DDP the outcome is agreed on
    (:func:`collective_check`): when the checks fail on any rank (a ``reference_fn`` bank is per rank), every rank
    raises, instead of the others going on to wait in training's first collective.
    """
    collective_check(trainer, lambda: _setup_probe(cb, trainer, pl_module))


def _probes_labelled(
    cb: RepresentationGapCallback, trainer: Trainer, pl_module: LightningModule, datasets: dict[str, Any], probes: Any
) -> bool:
    """Whether the first probe batch of the bank's and of the queries' dataset both carry labels (no forward)."""
    transfer = lightning_transfer(trainer, pl_module)
    for role, key in (("reference", "train"), ("queries", "val")):
        rows = probes[role][:SETUP_PROBE_ROWS]
        if rows:
            batch = next(iter(cb._probe_loader(datasets[key], rows, datasets[f"{key}_collate"], trainer)))
            if split_batch(transfer(batch))[1] is None:
                return False
    return True


def _setup_probe(cb: RepresentationGapCallback, trainer: Trainer, pl_module: LightningModule) -> None:
    datasets = cb._datasets(trainer)
    indices = cb._probe_indices(datasets)  # no layer means a reference_fn (checked at construction)
    role, key = ("reference", "train") if indices["reference"] else ("queries", "val")
    rows = indices[role][:SETUP_PROBE_ROWS]
    if not rows:
        return
    loader = cb._probe_loader(datasets[key], rows, datasets[f"{key}_collate"], trainer)
    transfer = lightning_transfer(trainer, pl_module)
    with isolate_rng(include_cuda=torch.cuda.is_initialized()):
        try:
            if not cb.layer:
                probed, labels = embed_inputs(loader, transfer_fn=transfer)
            else:
                feats, labels = embed_batches(
                    pl_module,
                    loader,
                    resolve_layers(pl_module, cb.layer),
                    pooling=cb.pooling,
                    forward_fn=cb.forward_fn,
                    transfer_fn=transfer,
                    precision_context=trainer.precision_plugin.forward_context(),
                )
                probed = feats[cb.layer[0]]
        except ProbeConfigurationError as err:
            raise MisconfigurationException(f"{_SETUP_ERROR}{err}") from err
        # A measurement logs knn_acc only when both the bank's and the queries' batches carry labels.
        # (A reference_fn bank has no labels: no batch is read again to find out.)
        cb._labelled = (
            labels is not None
            and cb.reference_fn is None
            and _probes_labelled(cb, trainer, pl_module, datasets, indices)
        )
        if cb.reference_fn is None:
            return
        bank = cb._reference_fn_output(trainer, pl_module)
    if bank is None:
        rank_zero_info(
            "RepresentationGapCallback: `reference_fn` returned None when training starts (not ready yet); its bank "
            "is checked at the first measurement instead."
        )
        return
    try:  # the checks of every measurement, raised as configuration errors now
        width = bank_width(bank, trainer.world_size, cb.config.min_bank_size)
        check_bank_width(cb, width, probed)
    except (TypeError, ValueError) as err:
        raise MisconfigurationException(f"{_SETUP_ERROR}{err}") from err


def bank_width(bank: Any, world_size: int, min_bank_size: int) -> int:
    """The width of a ``reference_fn`` output (its points flattened), its type and size checked without a copy.

    Raises:
        TypeError: if it is not a tensor.
        ValueError: with fewer than 2 points, or fewer than ``min_bank_size`` over ``world_size`` ranks.

    Example:
        >>> bank_width(torch.zeros(64, 4, 4), world_size=2, min_bank_size=128)
        16

    """
    if not isinstance(bank, torch.Tensor):
        raise TypeError(f"`reference_fn` must return a torch.Tensor, got {type(bank).__name__}.")
    if bank.ndim < 2 or bank.shape[0] < 2:
        raise ValueError(
            f"`reference_fn` must return at least 2 points as an (n, ...) tensor, got shape {tuple(bank.shape)}."
        )
    n_total = bank.shape[0] * world_size
    if n_total < min_bank_size:
        raise ValueError(
            f"`reference_fn` returned {n_total} points in all; the gap-law fit needs at least {min_bank_size} (lower "
            "`fit_min_size`)."
        )
    return math.prod(bank.shape[1:])


def checked_bank(bank: Any, world_size: int, min_bank_size: int) -> torch.Tensor:
    """A ``reference_fn`` output as this rank's ``(n, D)`` float32 CPU bank, detached and flattened.

    Raises:
        TypeError: if it is not a tensor.
        ValueError: with fewer than 2 points, or fewer than ``min_bank_size`` over ``world_size`` ranks.

    """
    bank_width(bank, world_size, min_bank_size)
    return bank.detach().reshape(bank.shape[0], -1).to("cpu", torch.float32)


def check_bank_width(cb: RepresentationGapCallback, width: int, queries: torch.Tensor | None) -> None:
    """Raise a ``ValueError`` naming ``reference_fn``, the layer and both widths when bank and queries differ."""
    if queries is not None and queries.ndim == 2 and queries.shape[1] != width:
        against = f"layer {cb.layer[0]!r}" if cb.layer else "the flattened raw inputs (`layer=None`)"
        raise ValueError(
            f"`reference_fn` returned points of width {width}, but the queries, {against}, have width "
            f"{queries.shape[1]}: return representations comparable with the queries."
        )


def agreed_failure(
    trainer: Trainer, failure: BaseException | None, flag: bool = False
) -> tuple[int, str, str, bool] | None:
    """``(rank, error type name, message, flag)`` of the failure every rank agrees on, or ``None`` when none failed.

    ``flag`` is the caller's mark on this rank's failure (a configuration error, an error in the user's code), sent
    with it; flagged failures come first: the lowest flagged failing rank's, else the lowest failing rank's. Under an
    initialised process group with several ranks: one all-reduce of one integer, and only when some rank failed a
    broadcast of its error's type, message and flag. Without one, this rank's own outcome. Every rank of the group
    must call it at the same point.

    Example:
        >>> from types import SimpleNamespace
        >>> agreed_failure(SimpleNamespace(global_rank=0, world_size=1), ValueError("bad bank"))
        (0, 'ValueError', 'bad bank', False)

    """
    mine = None if failure is None else (trainer.global_rank, type(failure).__name__, str(failure), bool(flag))
    shard = shard_of() if trainer.world_size > 1 else None  # None without an initialised group of several ranks
    if shard is None:
        return mine
    world = shard.world_size
    # Flagged failures rank 0 .. world - 1, others world .. 2 world - 1, none 2 world: the minimum is the one agreed.
    code = 2 * world if failure is None else shard.rank + (0 if flag else world)
    first = torch.tensor([code], dtype=torch.int64, device=shard.device)
    dist.all_reduce(first, op=dist.ReduceOp.MIN, group=shard.group)
    agreed = int(first.item())
    if agreed == 2 * world:
        return None
    shared: list[Any] = [mine]
    dist.broadcast_object_list(shared, src=agreed % world, group=shard.group, device=shard.device)
    return tuple(shared[0])


def collective_check(trainer: Trainer, check: Callable[[], object]) -> None:
    """Run a setup ``check`` on every rank and agree on its outcome (:func:`agreed_failure`): all raise or none does.

    The rank whose check raised re-raises its own error; the others raise a ``MisconfigurationException`` (a
    ``RuntimeError`` for an error that is not one) naming that rank and its message, instead of going on alone into a
    collective that the failed rank never reaches (which waits until the process group's timeout).
    """
    failure: Exception | None = None
    try:
        check()
    except Exception as err:  # re-raised below, after every rank learnt of it
        failure = err
    agreed = agreed_failure(trainer, failure, isinstance(failure, MisconfigurationException))
    if failure is not None:
        raise failure
    if agreed is not None:
        rank, kind, message, configuration = agreed
        text = f"RepresentationGapCallback: rank {rank}'s check before training failed ({kind}): {message}"
        raise MisconfigurationException(text) if configuration else RuntimeError(text)


def agreed_probe_pass(trainer: Trainer, failure: Exception | None) -> _faults.UnreadableLayerError | None:
    """Agree on the outcome of a measurement's probe pass (:func:`agreed_failure`): the same on every rank.

    ``failure`` is this rank's error in its probe pass (``None`` when it went through). An error in the user's code or
    data (the forward, a hook, ``forward_fn``, a dataset or collate function) propagates (DESIGN §5): the rank that
    raised it re-raises it, the others raise a ``RuntimeError`` naming that rank and the error, instead of going on
    alone into the metric's gather, which the failed rank never reaches (they would wait there until the process
    group's timeout). A watched layer that could not be read (a
    :class:`~lightning_repgap.capture.ProbeConfigurationError`: it did not run, or its widths differ across batches)
    is a measurement fault: returned as a :class:`~lightning_repgap._faults.UnreadableLayerError` on every rank, for the
    callback to survive. An error in the user's code comes first. On the normal path: one all-reduce of one integer
    under an initialised group of several ranks, nothing without one. A ``BaseException`` that is no ``Exception``
    (``KeyboardInterrupt``, ``SystemExit``) on one rank bypasses the agreement on purpose: it stops that process at
    once, and the others learn of it from the process group (its timeout, or the launcher's teardown).
    """
    user_error = failure is not None and not isinstance(failure, ProbeConfigurationError)
    return _agreed_fault(trainer, failure, user_error, "probe pass", _faults.UnreadableLayerError)


_Fault = TypeVar("_Fault", bound=_faults.MeasurementFaultError)


def _agreed_fault(
    trainer: Trainer, failure: Exception | None, user_error: bool, what: str, fault_type: type[_Fault]
) -> _Fault | None:
    """The fault every rank reports for a measurement step (``what``), after one :func:`agreed_failure`.

    An error in the user's code (``user_error`` on this rank) is re-raised on its rank and named in a
    ``RuntimeError`` on the others; any other failure becomes ``fault_type`` on every rank (``"on rank r: "``
    before the message under DDP), caused by this rank's own failure where it had one.
    """
    agreed = agreed_failure(trainer, failure, user_error)
    if user_error:
        assert failure is not None
        raise failure
    if agreed is None:
        return None
    rank, kind, message, user = agreed
    if user:
        raise RuntimeError(
            f"RepresentationGapCallback: rank {rank}'s {what} raised {kind} at this measurement: {message}"
        )
    where = f"on rank {rank}: " if trainer.world_size > 1 else ""
    fault = fault_type(f"{where}{message}")
    fault.__cause__ = failure
    return fault


def role_width_error(feats: dict[str, dict[str, torch.Tensor]]) -> list[ProbeConfigurationError]:
    """``[ProbeConfigurationError]`` when a source's rows differ in width between the probe's roles, else ``[]``.

    Each role's pass can be consistent on its own and still give another width than the others (a pooling whose
    width depends on the batch's size or content): the metric's update would raise on this rank only, and under DDP
    the other ranks would wait for it in the gather. Found here, it goes through the ranks' agreement on the probe
    pass (:func:`agreed_probe_pass`), as an unreadable layer.

    Example:
        >>> role_width_error({"reference": {"fc": torch.zeros(4, 3)}, "queries": {"fc": torch.zeros(2, 3)}})
        []
        >>> role_width_error({"reference": {"fc": torch.zeros(4, 3)}, "queries": {"fc": torch.zeros(2, 2)}})
        [ProbeConfigurationError("'fc' gave rows of different widths in the probe's roles: reference 3, queries 2")]

    """
    widths: dict[str, dict[str, tuple[int, ...]]] = {}
    for role, by_source in feats.items():
        for source, rows in by_source.items():
            if source != "__index__" and rows.shape[0] > 0:
                widths.setdefault(source, {})[role] = tuple(rows.shape[1:])
    for source, by_role in widths.items():
        if len(set(by_role.values())) > 1:
            seen = ", ".join(f"{role} {'x'.join(map(str, w))}" for role, w in by_role.items())
            return [ProbeConfigurationError(f"{source!r} gave rows of different widths in the probe's roles: {seen}")]
    return []


def measured_bank(
    cb: RepresentationGapCallback, trainer: Trainer, pl_module: LightningModule, queries: torch.Tensor | None
) -> tuple[torch.Tensor | None, _faults.ReferenceBankError | None]:
    """This rank's ``reference_fn`` bank at a measurement, or the fault that every rank reports for it (DDP-agreed).

    A bank that fails the setup's checks now (a width that changed since, ``None`` from a function never ready, too
    few points) is a :class:`~lightning_repgap._faults.ReferenceBankError`: a measurement fault the callback survives
    (re-raised in strict mode), on every rank when any rank's bank fails, so that no rank meets the others' gather
    alone. An error the function itself raises propagates (an error in the user's code, DESIGN §5): on its rank as
    raised, on the others as a ``RuntimeError`` naming that rank, after the same agreement (without it, the others
    would wait for the failed rank in the next collective until the process group's timeout). Such an error comes
    before any rank's bank fault.
    """
    bank = None
    raised = False
    try:
        output = cb._reference_fn_output(trainer, pl_module)
    except Exception as err:  # the user's code: re-raised below, after every rank learnt of it
        failure: Exception | None = err
        raised = True
    else:
        try:
            bank = checked_bank(output, trainer.world_size, cb.config.min_bank_size)
            # Checked at setup; a function whose width changes later is named here, not as a bare width mismatch.
            check_bank_width(cb, bank.shape[1], queries)
        except (TypeError, ValueError) as err:
            failure = err
        else:
            failure = None
    fault = _agreed_fault(trainer, failure, raised, "`reference_fn`", _faults.ReferenceBankError)
    return (bank, None) if fault is None else (None, fault)


def as_logged(values: dict[str, float], pl_module: LightningModule) -> dict[str, Any]:
    """Values as float64 tensors for ``log_dict``, which Lightning keeps in float64.

    A plain float would become float32, where a gap of 1e-60 flushes to 0 and one of 1e60 overflows. MPS has no
    float64: float32 there.
    """
    dtype = torch.float32 if pl_module.device.type == "mps" else torch.float64
    return {key: torch.tensor(value, dtype=dtype, device=pl_module.device) for key, value in values.items()}


def snapshot_overflow(arrays: dict[str, Any], dtype: str) -> str | None:
    """Why ``arrays`` cannot be stored as ``dtype`` (finite values beyond its range), or ``None``.

    Checked before writing, so that a representation that grew past float16's range costs the snapshot (with a
    warning naming the fix), not the training run.
    """
    limit = float(np.finfo(np.dtype(dtype)).max)
    for key, value in arrays.items():
        arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if arr.dtype.kind != "f" or arr.dtype.itemsize <= np.dtype(dtype).itemsize or not arr.size:
            continue
        finite = arr[np.isfinite(arr)]
        peak = float(np.abs(finite).max(initial=0.0))
        if peak > limit:
            wider = "float32" if np.dtype(dtype).itemsize < 4 else "float64"
            return (
                f"`{key}` holds values up to {peak:.4g}, beyond the range of snapshot_dtype={dtype!r}; pass "
                f"`snapshot_dtype={wider!r}`."
            )
    return None


__all__ = [
    "agreed_failure",
    "agreed_probe_pass",
    "archive_changed_settings",
    "as_logged",
    "bank_width",
    "check_bank_width",
    "checked_bank",
    "collective_check",
    "expected_keys",
    "measured_bank",
    "probe_settings",
    "restorable",
    "role_width_error",
    "setup_probe",
    "snapshot_overflow",
]
