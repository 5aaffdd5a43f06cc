"""The callback's fault policy: which measurement failures are survived, and how.

The functional API and the Metric raise a clear error for bad input. The callback must never end a user's training
run because of the *measurement* (DESIGN §5): for the causes listed in :class:`Cause`, the library raises one of the
:class:`MeasurementFaultError` subclasses below, the callback catches exactly those, logs ``NaN`` for the keys that are
undefined and ``<prefix>/valid = 0``, warns once per cause and layer (naming the layer, or the snapshot or figure
that could not be written, and the fix) and carries on.
Anything else is a bug or a configuration error and propagates.

Strict mode (``RepresentationGapCallback(strict=True)`` or the environment variable ``REPGAP_STRICT=1``) re-raises
the fault instead (under DDP on every rank: a failed write on rank zero is held and raised after the ranks learnt of
it); the test suite runs with it on, so that a test never passes on a silently swallowed fault.
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import ClassVar

#: Environment variable that turns strict mode on (``1``, ``true`` or ``yes``) when the callback's ``strict`` is None.
STRICT_ENV = "REPGAP_STRICT"


class Cause(str, enum.Enum):
    """The measurement failures the callback survives (each has its exception and warning class)."""

    DEGENERATE = "degenerate"
    """The bank collapsed to a single point (dead ReLU, zero layer, constant output): distances carry no scale."""
    NON_FINITE = "non_finite"
    """NaN or Inf in the watched layer's output."""
    TOO_FEW_DISTINCT = "too_few_distinct"
    """Too few distinct points for the law fit, or every query duplicated in the bank (the gap is 0)."""
    TOO_FEW_QUERIES = "too_few_queries"
    """Fewer queries than the law fit needs (``val_probe`` or the validation set too small)."""
    SNAPSHOT_IO = "snapshot_io"
    """A snapshot could not be written (full disk, permissions): the measurement itself is fine."""
    FIGURE_IO = "figure_io"
    """A figure could not be written to a logger (full disk, permissions): the logged values are fine."""
    UNDEFINED_VALUE = "undefined_value"
    """A key came out non-finite (e.g. a cross-check estimator undefined on this data) and is logged as NaN."""
    UNREADABLE_LAYER = "unreadable_layer"
    """A watched layer could not be read in a measurement's probe pass (it did not run, ran several times per forward,
    or its rows or widths disagree across batches or between the probe's roles), although the one-batch check when
    training started passed."""
    REFERENCE_BANK = "reference_bank"
    """A ``reference_fn`` returned no usable bank at a measurement (not a tensor, too few points, another width)."""


class MeasurementFaultWarning(UserWarning):
    """Base class of the warnings the callback emits instead of aborting ``fit``."""


class DegenerateRepresentationWarning(MeasurementFaultWarning):
    """A watched layer's representation collapsed; its keys are NaN this epoch."""


class NonFiniteRepresentationWarning(MeasurementFaultWarning):
    """A watched layer produced NaN/Inf; its keys are NaN this epoch."""


class TooFewDistinctPointsWarning(MeasurementFaultWarning):
    """Too few distinct points for the fit; the undefined keys are NaN this epoch."""


class TooFewQueriesWarning(TooFewDistinctPointsWarning):
    """Fewer queries than the fit needs (a :class:`TooFewDistinctPointsWarning`); the fit's keys are NaN this epoch."""


class SnapshotIOWarning(MeasurementFaultWarning):
    """A snapshot could not be written; training and logging go on."""


class FigureIOWarning(MeasurementFaultWarning):
    """A figure could not be written to a logger; training, the logged values and snapshots go on."""


class UndefinedValueWarning(MeasurementFaultWarning):
    """A logged key was not finite and is logged as NaN."""


class UnreadableLayerWarning(MeasurementFaultWarning):
    """A watched layer could not be read in a measurement's probe pass; every key is NaN this epoch."""


class ReferenceBankWarning(MeasurementFaultWarning):
    """A ``reference_fn`` bank failed the measurement's checks; every key is NaN this epoch."""


class MeasurementFaultError(Exception):
    """Base class of the library errors that the callback survives (see the module docstring).

    Args:
        message: what went wrong, naming the fix.
        partial: keys that are still defined (e.g. ``gap`` and ``dup_frac`` when only the fit is undefined).

    """

    cause: ClassVar[Cause]
    warning: ClassVar[type[MeasurementFaultWarning]]
    fix: ClassVar[str] = ""

    def __init__(self, message: str, partial: Mapping[str, float] | None = None) -> None:
        super().__init__(message)
        self.partial: dict[str, float] = dict(partial or {})


class DegenerateRepresentationError(MeasurementFaultError, ValueError):
    """Every bank point is the same point: no distance scale, no gap law."""

    cause = Cause.DEGENERATE
    warning = DegenerateRepresentationWarning
    fix = "watch a layer before the collapse, check for dead activations or a zero/constant output"


class NonFiniteRepresentationError(MeasurementFaultError, ValueError):
    """NaN or Inf values in a set of representations."""

    cause = Cause.NON_FINITE
    warning = NonFiniteRepresentationWarning
    fix = "the model diverged or the layer overflows in this precision: lower the learning rate or watch another layer"


class TooFewDistinctPointsError(MeasurementFaultError, ValueError):
    """Too few distinct bank points for the fit, or every query sits on a bank point."""

    cause = Cause.TOO_FEW_DISTINCT
    warning = TooFewDistinctPointsWarning
    fix = "use a larger or more diverse probe (`train_probe`), a smaller `fit_min_size`, or check for train/val leakage"


class TooFewQueriesError(TooFewDistinctPointsError):
    """Fewer queries than the gap-law fit needs (:data:`lightning_repgap.functional.MIN_QUERIES`).

    Its own cause (and warning), so that the callback's warn-once registry shows its ``val_probe`` fix even after a
    :class:`TooFewDistinctPointsError` was warned about for the same layer, and the other way round.
    """

    cause = Cause.TOO_FEW_QUERIES
    warning = TooFewQueriesWarning
    fix = "use more queries: a larger `val_probe` (or more validation samples)"


class TooFewFitSizesError(ValueError):
    """Fewer than 3 bank sizes ``>= fit_min_size`` for the gap-law fit: the bank is too small for the grid.

    Raised as its own type so that callers such as ``repgap estimate`` can react to it without reading its text.
    Raised as such it is a bad input to the functional API (a grid or ``fit_min_size`` the bank cannot serve), which
    the callback's settings rule out at construction; its subclass :class:`TooFewDistinctSizesError` (a bank left too
    small by its exact copies) is also a measurement fault, which the callback survives.

    Args:
        message: what went wrong, naming the fix.
        sizes: the bank sizes of the curve (empty when unknown).
        fit_min_size: the smallest size the fit reads (0 when unknown).

    """

    def __init__(self, message: str, *args: object, sizes: Sequence[int] = (), fit_min_size: int = 0) -> None:
        super().__init__(message, *args)
        self.sizes: list[int] = [int(n) for n in sizes]
        self.fit_min_size = int(fit_min_size)


class TooFewDistinctSizesError(TooFewDistinctPointsError, TooFewFitSizesError):
    """Removing the bank's exact copies left fewer than 3 fit sizes: both a measurement fault and a too-small bank.

    Args:
        message: what went wrong, naming the fix.
        partial: keys that are still defined (``gap``, ``dup_frac``, ...).
        sizes: the bank sizes of the curve of the distinct points (empty when unknown).
        fit_min_size: the smallest size the fit reads (0 when unknown).

    """

    def __init__(
        self,
        message: str,
        partial: Mapping[str, float] | None = None,
        *,
        sizes: Sequence[int] = (),
        fit_min_size: int = 0,
    ) -> None:
        super().__init__(message, partial)  # MeasurementFaultError's, then TooFewFitSizesError's with no sizes
        self.sizes = [int(n) for n in sizes]
        self.fit_min_size = int(fit_min_size)


class SnapshotIOError(MeasurementFaultError, OSError):
    """A snapshot could not be written (the previous snapshots are untouched: writes are atomic)."""

    cause = Cause.SNAPSHOT_IO
    warning = SnapshotIOWarning
    fix = "free disk space or fix `snapshot_dir`'s permissions"


class SnapshotOverflowError(SnapshotIOError):
    """A snapshot was not written: its values exceed the range of ``snapshot_dtype`` (disk and permissions are fine)."""

    fix = "store snapshots in a wider `snapshot_dtype` ('float32', or 'float64' beyond float32's range)"


class FigureIOError(MeasurementFaultError, OSError):
    """A figure could not be written to a logger (a CSV run's PNG, an MLflow file store): only the figure is lost."""

    cause = Cause.FIGURE_IO
    warning = FigureIOWarning
    fix = "free disk space or fix the permissions of the logger's directory (`log_figures=False` draws none)"


class UnreadableLayerError(MeasurementFaultError, RuntimeError):
    """A watched layer the one-batch check at the start of training passed could not be read at a measurement.

    The forward changed since (a branch that skips the layer from some epoch on, a layer run twice), or what only a
    full pass shows: outputs whose width differs from batch to batch (``"flatten"`` pooling of padded sequences), also
    between the validation loop's captured rows and the probe pass's, or between the bank and the queries.
    A configuration that only shows after an epoch is a measurement fault (DESIGN §5: a run is never aborted after
    its first epoch over the measurement); under DDP every rank raises it when any rank's probe pass found it.
    """

    cause = Cause.UNREADABLE_LAYER
    warning = UnreadableLayerWarning
    fix = (
        "watch a layer that runs once per forward in every epoch, with outputs of one size (a pooling such as 'mean' "
        "for variable sizes), or pass a `forward_fn`"
    )


class RankWidthError(UnreadableLayerError, ValueError):
    """The rows of one metric state are of one width on each rank, but not of the same width on every rank.

    Raised by the metric's gather under DDP, on every rank alike (each rank sees every rank's shapes): for the
    callback an unreadable layer (the forward differs between ranks, e.g. a width that depends on the rank's data),
    survived on every rank; a ``ValueError`` for a user of the metric who updates ranks with different widths.
    """


class ReferenceBankError(MeasurementFaultError, TypeError, ValueError):
    """A ``reference_fn`` output at a measurement that is no bank for the queries (checked at setup on the first call).

    A ``TypeError`` and a ``ValueError``, as the checks it reports (not a tensor; too few points or another width than
    the queries). After setup a bad bank is a measurement fault, not a configuration error (DESIGN §5: a run is never
    aborted after its first epoch over the measurement); under DDP every rank raises it when any rank's bank fails.
    """

    cause = Cause.REFERENCE_BANK
    warning = ReferenceBankWarning
    fix = (
        "make `reference_fn` return an (n, ...) tensor as wide as the queries (as at the start of training), with at "
        "least `config.min_bank_size` points over all ranks"
    )


#: The exceptions the callback catches, and nothing else.
SURVIVABLE: tuple[type[MeasurementFaultError], ...] = (
    DegenerateRepresentationError,
    NonFiniteRepresentationError,
    TooFewDistinctPointsError,
    SnapshotIOError,
    FigureIOError,
    UnreadableLayerError,
    ReferenceBankError,
)


def strict_mode(strict: bool | None) -> bool:
    """``strict`` if given, else whether ``REPGAP_STRICT`` is set to ``1``/``true``/``yes``.

    Example:
        >>> strict_mode(True), strict_mode(False)
        (True, False)

    """
    if strict is not None:
        return bool(strict)
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes")


class FaultPolicy:
    """Warn-once registry and NaN filling for one callback (not saved in checkpoints).

    Args:
        strict: re-raise every fault instead of surviving it (see :func:`strict_mode`).
        owner: name used at the start of every warning.

    Example:
        >>> policy = FaultPolicy(strict=False)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     out = policy.survive(DegenerateRepresentationError("collapsed", {"gap": 1.0}), "fc", ["gap", "dim"])
        ...     _ = policy.survive(DegenerateRepresentationError("collapsed"), "fc", ["gap", "dim"])
        >>> out["gap"], math.isnan(out["dim"]), len(caught)
        (1.0, True, 1)

    """

    def __init__(self, strict: bool = False, owner: str = "RepresentationGapCallback") -> None:
        self.strict = strict
        self.owner = owner
        self._warned: set[tuple[Cause, str]] = set()
        self._held: list[SnapshotIOError | FigureIOError] | None = None

    @contextlib.contextmanager
    def holding_io(self) -> Iterator[list[SnapshotIOError | FigureIOError]]:
        """Within this block strict mode keeps the I/O faults of :meth:`survive_io` in the yielded list.

        Only global rank zero writes figures and snapshots: a fault raised there at once would leave the other ranks
        waiting for it in their next collective. The caller raises the held fault on every rank after telling them.
        """
        self._held = []
        try:
            yield self._held
        finally:
            self._held = None

    def warn_once(self, cause: Cause, layer: str, message: str, category: type[Warning]) -> None:
        """Warn about ``cause`` for ``layer`` the first time only (rank zero only under DDP)."""
        if (cause, layer) in self._warned:
            return
        self._warned.add((cause, layer))
        from lightning.pytorch.utilities.rank_zero import rank_zero_only

        if getattr(rank_zero_only, "rank", 0) == 0:
            warnings.warn(f"{self.owner}: {message}", category, stacklevel=3)

    def survive(self, fault: MeasurementFaultError, layer: str, expected: Iterable[str]) -> dict[str, float]:
        """Values for ``expected`` keys after ``fault``: the fault's partial values, NaN elsewhere.

        Raises:
            MeasurementFaultError: ``fault`` itself in strict mode.

        """
        if self.strict:
            raise fault
        self.warn_once(
            fault.cause,
            layer,
            f"layer {layer!r}: {fault} The undefined keys are logged as NaN and `valid` as 0 this epoch; training"
            f" goes on. Fix: {fault.fix}. (Strict mode, `strict=True` or {STRICT_ENV}=1, raises instead.)",
            fault.warning,
        )
        return {key: float(fault.partial.get(key, math.nan)) for key in expected}

    def survive_io(self, fault: SnapshotIOError | FigureIOError, layer: str) -> None:
        """Warn once about a failed snapshot or figure write (re-raised in strict mode, or held: :meth:`holding_io`)."""
        if self.strict and self._held is not None:
            self._held.append(fault)
            return
        if self.strict:
            raise fault
        lost = "figure" if isinstance(fault, FigureIOError) else "snapshot"
        self.warn_once(
            fault.cause,
            layer,
            f"{fault} Training goes on without this {lost}. Fix: {fault.fix}.",
            fault.warning,
        )

    def finish(self, values: Mapping[str, float], layer: str) -> tuple[dict[str, float], float]:
        """Replace non-finite values by NaN (warning once per layer) and return them with the ``valid`` flag.

        ``valid`` is ``1.0`` when every value is finite, else ``0.0``. ``inf`` is never logged: a monitor comparing
        it would act on a number that means "undefined".
        """
        out = {key: float(v) for key, v in values.items()}
        bad = sorted(key for key, v in out.items() if not math.isfinite(v))
        undefined = [key for key in bad if not math.isnan(out[key])]
        if undefined:
            self.warn_once(
                Cause.UNDEFINED_VALUE,
                layer,
                f"layer {layer!r}: {undefined} came out infinite (undefined on this representation) and are logged as"
                " NaN, with `valid` 0.",
                UndefinedValueWarning,
            )
        for key in bad:
            out[key] = math.nan
        return out, 0.0 if bad else 1.0


def io_fault(kind: str, message: str) -> SnapshotIOError | FigureIOError:
    """The I/O fault of type name ``kind`` (an I/O fault's class name, as rank zero held it) with ``message``.

    Example:
        >>> io_fault("FigureIOError", "on rank 0: figure 'repgap/gap_curve' could not be written.")
        FigureIOError("on rank 0: figure 'repgap/gap_curve' could not be written.")
        >>> type(io_fault("SnapshotOverflowError", "on rank 0: snapshot 'epoch=0000' not written")).__name__
        'SnapshotOverflowError'

    """
    kinds = {cls.__name__: cls for cls in (SnapshotOverflowError, FigureIOError)}
    return kinds.get(kind, SnapshotIOError)(message)


def expected_keys(*, train_queries: bool, labels: bool, approximate: bool) -> list[str]:
    """The keys a successful measurement logs for these inputs (the order of :mod:`lightning_repgap.functional`)."""
    from lightning_repgap.functional import ACCURACY_KEYS, CORE_KEYS

    keys = list(CORE_KEYS)
    if train_queries:
        keys.append("gap_ratio")
    if labels:
        keys.append("knn_acc")
    if approximate:
        keys.extend(ACCURACY_KEYS)
    return keys


__all__ = [
    "SURVIVABLE",
    "Cause",
    "DegenerateRepresentationError",
    "DegenerateRepresentationWarning",
    "FaultPolicy",
    "FigureIOError",
    "FigureIOWarning",
    "MeasurementFaultError",
    "MeasurementFaultWarning",
    "NonFiniteRepresentationError",
    "NonFiniteRepresentationWarning",
    "RankWidthError",
    "ReferenceBankError",
    "ReferenceBankWarning",
    "SnapshotIOError",
    "SnapshotIOWarning",
    "SnapshotOverflowError",
    "TooFewDistinctPointsError",
    "TooFewDistinctPointsWarning",
    "TooFewDistinctSizesError",
    "TooFewFitSizesError",
    "TooFewQueriesError",
    "TooFewQueriesWarning",
    "UndefinedValueWarning",
    "UnreadableLayerError",
    "UnreadableLayerWarning",
    "expected_keys",
    "io_fault",
    "strict_mode",
]
