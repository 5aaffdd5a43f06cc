"""The callback's constructor arguments: layer names, Lightning-style errors, and the 0.1 analysis arguments.

Kept apart from :mod:`lightning_repgap.callback` so that the callback reads as what it does during ``fit``. The six
flat analysis arguments of 0.1 (``backend``, ``index``, ``min_size``, ``fit_min_size``, ``n_bootstrap``,
``calibrate``) still work until 0.3, folded into the callback's :class:`~lightning_repgap.config.GapConfig` with a
``DeprecationWarning`` naming the new spelling.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_repgap.config import Backend, GapConfig, IndexOption

__all__: list[str] = []  # private helpers of lightning_repgap.callback

_T = TypeVar("_T")


def _misconfigured(check: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``check(*args, **kwargs)`` with its ``ValueError`` raised as Lightning's ``MisconfigurationException``."""
    try:
        return check(*args, **kwargs)
    except ValueError as err:
        raise MisconfigurationException(str(err)) from None


def _check_layers(layer: str | Sequence[str] | None, reference_fn: Any) -> list[str]:
    """The watched layer names as a list (empty: the raw inputs, which needs a ``reference_fn``)."""
    layers = [] if layer is None else [layer] if isinstance(layer, str) else list(layer)
    if layer is not None and (not layers or not all(isinstance(n, str) and n for n in layers)):
        raise MisconfigurationException(f"`layer` must be a non-empty name or list of names, got {layer!r}.")
    if not layers and reference_fn is None:
        raise MisconfigurationException(
            "`layer=None` measures raw inputs against a `reference_fn` bank; give a `reference_fn` or a `layer`."
        )
    if reference_fn is not None and len(layers) > 1:
        raise MisconfigurationException(
            f"`reference_fn` provides one bank, so it can be compared with one layer at most; got {layers}."
        )
    if len(set(layers)) != len(layers):
        raise MisconfigurationException(f"`layer` lists a name twice: {layers}.")
    return layers


def _deprecated_args(
    *,
    backend: Backend | None = None,
    index: IndexOption | None = None,
    min_size: int | None = None,
    fit_min_size: int | None = None,
    n_bootstrap: int | None = None,
    calibrate: bool | None = None,
) -> dict[str, Any]:
    """The analysis arguments of 0.1 that were given (typed here so that LightningCLI still accepts them).

    LightningCLI passes all six, as ``None`` when the YAML does not set them: those ``None`` mean "not given".
    """
    given = {
        "backend": backend,
        "index": index,
        "min_size": min_size,
        "fit_min_size": fit_min_size,
        "n_bootstrap": n_bootstrap,
        "calibrate": calibrate,
    }
    return {k: v for k, v in given.items() if v is not None}


# The analysis arguments of 0.1, accepted with a DeprecationWarning until 0.3.
_N_DEPRECATED_ARGS = len(inspect.signature(_deprecated_args).parameters)


def _analysis_config(config: GapConfig | None, seed: int, deprecated: Mapping[str, Any]) -> GapConfig:
    """``config`` with the callback's ``seed``, plus the analysis arguments of 0.1 (with a ``DeprecationWarning``)."""
    if deprecated:
        spelled = ", ".join(f"{k}={v!r}" for k, v in deprecated.items())
        warnings.warn(
            f"RepresentationGapCallback({spelled}) is deprecated and will be removed in 0.3; pass "
            f"`config=GapConfig({spelled})` instead.",
            DeprecationWarning,
            stacklevel=4,
        )
    config = GapConfig.resolve(config, deprecated)
    if config.seed != seed and config.seed != GapConfig().seed:
        raise ValueError(
            f"`config.seed`={config.seed} differs from the callback's `seed`={seed}, which draws the probes and "
            "orders the bank; give the seed once, as `seed=`."
        )
    return config.replace(seed=seed)
