"""``GapConfig``: the analysis settings that change the numbers, validated once and passed around as one object.

The functional API (:func:`~lightning_repgap.functional.analyze`, :func:`~lightning_repgap.functional.
representation_gap`), the :class:`~lightning_repgap.metric.RepresentationGap` metric, the
:class:`~lightning_repgap.callback.RepresentationGapCallback` and the ``repgap`` CLI all take a :class:`GapConfig`;
snapshot manifests store it (:meth:`GapConfig.to_dict`) so that ``repgap analyze`` replays the same measurement.
Settings that do not change the numbers (thread counts) are not part of it: they are runtime arguments of the
functions and classes, and never follow a snapshot to another machine.

**Threads.** ``num_threads``, wherever it is taken, is the number of threads of the search (torch and FAISS) per
process. By default it is ``REPGAP_NUM_THREADS`` if set, else torch's current intra-op count, which Lightning
divides among the processes of a DDP job on one machine. It never changes the numbers, so it is not a
:class:`GapConfig` field and is never stored in a snapshot.

The vocabularies of the string settings are the ``Literal`` types below; the accepted values are derived from them
with :func:`typing.get_args`, never typed out a second time.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from typing import Any, Literal, TypedDict, get_args

import numpy as np

from lightning_repgap._checks import _check_choice, _check_positive_int

__all__ = [
    "BACKENDS",
    "INDEX_OPTIONS",
    "SEARCH_PRECISIONS",
    "Backend",
    "GapConfig",
    "GapSettings",
    "IndexOption",
    "SearchPrecision",
    "field_names",
]

#: Nearest-neighbour backend: ``"auto"`` (FAISS on a GPU if present, else the torch GEMM path), ``"faiss"``,
#: ``"faiss-gpu"`` or ``"torch"``.
Backend = Literal["auto", "faiss", "faiss-gpu", "torch"]
#: Search: ``"exact"``, the approximate FAISS indexes ``"ivf"`` / ``"hnsw"``, or ``"auto"`` (``"ivf"`` from
#: 100,000,000 bank points on, exact below: IVF was not faster at the sizes measured).
IndexOption = Literal["exact", "ivf", "hnsw", "auto"]
#: Arithmetic of the exact search's score tiles: ``"fp32"``, ``"bf16-screen"`` (bf16 tiles screen the bank with a
#: rigorous error bound, every candidate is re-scored in float64: the same answer as a float64 brute force) or
#: ``"auto"`` (the screen where a measured probe finds bf16 tiles clearly faster, see ``docs/performance.md``).
SearchPrecision = Literal["auto", "fp32", "bf16-screen"]
#: The accepted ``backend`` values, from :data:`Backend`.
BACKENDS: tuple[str, ...] = get_args(Backend)
#: The accepted ``index`` values, from :data:`IndexOption`.
INDEX_OPTIONS: tuple[str, ...] = get_args(IndexOption)
#: The accepted ``search_precision`` values, from :data:`SearchPrecision`.
SEARCH_PRECISIONS: tuple[str, ...] = get_args(SearchPrecision)

# The gap-law fit needs at least 3 sizes of a doubling grid from `fit_min_size`: a bank of 4 * fit_min_size.
_FIT_SIZES_FACTOR = 4


class GapSettings(TypedDict, total=False):
    """The fields of :class:`GapConfig` as keyword arguments (``representation_gap(..., min_size=32)``)."""

    sizes: Any
    min_size: int
    ratio: float
    seed: int | None
    fit_min_size: int
    n_neighbors: int
    n_bootstrap: int
    confidence: float
    calibrate: bool
    backend: Backend
    index: IndexOption
    search_precision: SearchPrecision


@dataclasses.dataclass(frozen=True)
class GapConfig:
    """Settings of one representation-gap measurement: the grid, the fit, the bootstrap, the engine.

    Every field is checked when the object is built, so a bad value fails at construction (in a callback: at
    ``__init__``, before training), with a message naming the field.

    Args:
        sizes: explicit strictly increasing bank sizes of the curve (a tuple); ``None``: a geometric grid from
            ``min_size`` with ``ratio`` up to the bank size.
        min_size: first size of the geometric grid.
        ratio: growth factor of the grid, ``> 1`` (``2`` doubles, ``sqrt(2)`` is finer).
        seed: seed of the bank order and of the bootstrap; ``None`` keeps the given order (bootstrap seed 0).
        fit_min_size: smallest bank size in the gap-law fit; the bank needs at least ``4 * fit_min_size`` points
            (:attr:`min_bank_size`, more with a coarser grid) for a fit over 3 sizes.
        n_neighbors: neighbours for the MLE cross-check (TwoNN uses the first two), ``>= 2``.
        n_bootstrap: bootstrap resamples of the queries for ``dim_low`` / ``dim_high``; ``0``: no interval.
        confidence: coverage of the bootstrap interval, in ``(0, 1)``.
        calibrate: correct the finite-sample bias of the gap dimension.
        backend: nearest-neighbour backend, one of :data:`BACKENDS`.
        index: ``"exact"`` (default), ``"ivf"`` or ``"hnsw"`` (approximate FAISS indexes with measured accuracy:
            they add ``recall`` and ``gap_rel_error``, and their gap is an upper bound on the exact one), or
            ``"auto"`` (exact below 100,000,000 bank points, ``"ivf"`` from there on). ``dim_twonn`` / ``dim_mle``
            always come from an exact search.
        search_precision: arithmetic of the exact search's score tiles (torch backend): ``"fp32"``,
            ``"bf16-screen"`` or ``"auto"`` (see :data:`SearchPrecision`). Every choice gives the exact answer;
            only the speed differs.

    Example:
        >>> config = GapConfig(n_bootstrap=50, index="exact")
        >>> config.n_bootstrap, config.min_bank_size
        (50, 64)
        >>> GapConfig.from_dict(config.to_dict()) == config
        True
        >>> GapConfig(backend="annoy")
        Traceback (most recent call last):
        ...
        ValueError: `backend` must be one of 'auto', 'faiss', 'faiss-gpu', 'torch'; got 'annoy'.

    """

    sizes: tuple[int, ...] | None = None
    min_size: int = 16
    ratio: float = 2.0
    seed: int | None = 0
    fit_min_size: int = 16
    n_neighbors: int = 20
    n_bootstrap: int = 200
    confidence: float = 0.95
    calibrate: bool = True
    backend: Backend = "auto"
    index: IndexOption = "exact"
    search_precision: SearchPrecision = "auto"

    def __post_init__(self) -> None:
        checked = {
            "sizes": _check_sizes(self.sizes),
            "min_size": _check_positive_int(self.min_size, "min_size"),
            "ratio": _check_ratio(self.ratio),
            "seed": None if self.seed is None else _check_positive_int(self.seed, "seed", minimum=0),
            "fit_min_size": _check_positive_int(self.fit_min_size, "fit_min_size"),
            "n_neighbors": _check_positive_int(self.n_neighbors, "n_neighbors", minimum=2),
            "n_bootstrap": _check_positive_int(self.n_bootstrap, "n_bootstrap", minimum=0),
            "confidence": _check_confidence(self.confidence),
            "calibrate": _check_bool(self.calibrate, "calibrate"),
            "backend": _check_choice(self.backend, "backend", BACKENDS),
            "index": _check_choice(self.index, "index", INDEX_OPTIONS),
            "search_precision": _check_choice(self.search_precision, "search_precision", SEARCH_PRECISIONS),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)  # frozen: normalise in place once, at construction

    @property
    def min_bank_size(self) -> int:
        """Smallest bank for a gap-law fit: at least ``4 * fit_min_size``, and a grid with 3 sizes ``>= fit_min_size``.

        With the default doubling grid from 16 that is ``4 * fit_min_size`` (64); a coarser grid (a larger ``ratio``
        or ``min_size``) needs a larger bank, explicit ``sizes`` a bank of at least their largest. Explicit ``sizes``
        with fewer than 3 entries ``>= fit_min_size`` serve no bank: :meth:`fit_size_count` says so.

        Example:
            >>> GapConfig().min_bank_size, GapConfig(ratio=4.0).min_bank_size, GapConfig(min_size=64).min_bank_size
            (64, 65, 129)

        """
        least = _FIT_SIZES_FACTOR * self.fit_min_size
        if self.sizes is not None:
            return max(least, self.sizes[-1])
        # The count is constant between grid points: the smallest bank is 4 * fit_min_size or one past a grid point.
        size, k = self.min_size, 0
        while self.fit_size_count(least) < 3:
            while size < least:
                k += 1
                size = round(self.min_size * self.ratio**k)
            least = size + 1
        return least

    def fit_size_count(self, n_bank: int) -> int:
        """How many sizes of the curve of a bank of ``n_bank`` points the gap-law fit reads (it needs 3).

        Returns:
            The number of the grid's sizes ``>= fit_min_size`` (0 when explicit ``sizes`` exceed the bank).

        Example:
            >>> GapConfig().fit_size_count(64), GapConfig(ratio=4.0).fit_size_count(64)
            (3, 2)

        """
        from lightning_repgap.gap import geometric_sizes  # imports torch: not at module level (snapshot readers)

        n_bank = _check_positive_int(n_bank, "n_bank")
        if self.sizes is not None:
            grid = np.asarray(self.sizes) if self.sizes[-1] <= n_bank else np.zeros(0)
        else:
            grid = geometric_sizes(n_bank, min_size=min(self.min_size, n_bank), ratio=self.ratio)
        return int((grid >= self.fit_min_size).sum())

    def replace(self, **changes: Any) -> GapConfig:
        """A copy with some fields changed (validated again).

        Returns:
            The new :class:`GapConfig`.

        """
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, as stored in snapshot manifests (``sizes`` as a list).

        Returns:
            ``{field: value}`` for every field.

        """
        out = dataclasses.asdict(self)
        if self.sizes is not None:
            out["sizes"] = list(self.sizes)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, strict: bool = True) -> GapConfig:
        """Build a config from :meth:`to_dict` output (or any subset of it; missing fields take their defaults).

        Snapshots written before this class existed stored a subset of the fields under the same names, so they
        load unchanged.

        Args:
            values: ``{field: value}``.
            strict: raise on keys that are not fields; with ``False`` they are ignored with a ``UserWarning``.

        Returns:
            The validated :class:`GapConfig`.

        Raises:
            TypeError: for an unknown key (when ``strict``).
            ValueError: for a bad value.

        """
        names = field_names()
        unknown = sorted(str(k) for k in values if k not in names)
        if unknown and strict:
            raise TypeError(f"Unknown GapConfig field(s) {unknown}; the fields are {sorted(names)}.")
        if unknown:
            warnings.warn(f"Ignoring settings that GapConfig does not have: {unknown}.", UserWarning, stacklevel=2)
        return cls(**{k: v for k, v in values.items() if k in names})

    @classmethod
    def resolve(cls, config: GapConfig | None, settings: Mapping[str, Any]) -> GapConfig:
        """The config of a call that takes ``config=`` and/or the fields as keyword arguments.

        Args:
            config: a config, or ``None`` for the defaults.
            settings: fields given as keyword arguments.

        Returns:
            ``config`` updated with ``settings``.

        Raises:
            TypeError: for a keyword that is not a field.
            ValueError: when ``config`` is given together with a keyword whose value differs from the config's.

        """
        unknown = sorted(k for k in settings if k not in field_names())
        if unknown:
            raise TypeError(f"Unexpected keyword argument(s) {unknown}; the GapConfig fields are {field_names()}.")
        if config is None:
            return cls(**settings)
        if not isinstance(config, GapConfig):
            raise TypeError(f"`config` must be a GapConfig or None, got {type(config).__name__}.")
        merged = config.replace(**settings)
        conflicts = [k for k in settings if getattr(merged, k) != getattr(config, k)]
        if conflicts:
            listed = ", ".join(f"{k}={settings[k]!r} (config: {getattr(config, k)!r})" for k in conflicts)
            raise ValueError(f"Both `config` and conflicting keyword arguments were given: {listed}. Give one.")
        return config


def field_names() -> tuple[str, ...]:
    """The names of the :class:`GapConfig` fields, in declaration order.

    Returns:
        The names.

    """
    return tuple(f.name for f in dataclasses.fields(GapConfig))


def _check_sizes(sizes: Any) -> tuple[int, ...] | None:
    if sizes is None:
        return None
    try:
        arr = np.asarray(sizes)
    except (TypeError, ValueError):
        arr = np.asarray([], dtype=float)
    ok = arr.ndim == 1 and arr.size > 0 and np.issubdtype(arr.dtype, np.integer) and bool((arr >= 1).all())
    if not ok or (np.diff(arr) <= 0).any():
        raise ValueError(f"`sizes` must be strictly increasing integers >= 1, or None; got {sizes!r}.")
    return tuple(int(s) for s in arr)


def _check_ratio(ratio: Any) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, int | float | np.number) or not ratio > 1.0:
        raise ValueError(f"`ratio` must be > 1, got {ratio!r}.")
    if not math.isfinite(ratio):
        raise ValueError(f"`ratio` must be finite, got {ratio!r}.")
    return float(ratio)


def _check_confidence(confidence: Any) -> float:
    number = isinstance(confidence, int | float | np.number) and not isinstance(confidence, bool)
    if not number or not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must be in (0, 1), got {confidence!r}.")
    return float(confidence)


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)
