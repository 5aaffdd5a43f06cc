"""lightning_repgap: representation-gap monitoring for PyTorch Lightning.

Public names are imported on first use (PEP 562), so ``import lightning_repgap`` is cheap and never imports
FAISS, matplotlib, torchmetrics or Lightning; the ``repgap`` command line relies on that to start quickly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_EXPORTS = {
    "DimensionFit": "lightning_repgap.dimension",
    "estimate_dimension": "lightning_repgap.dimension",
    "gap_dimension": "lightning_repgap.dimension",
    "mle_dimension": "lightning_repgap.dimension",
    "twonn_dimension": "lightning_repgap.dimension",
    "representation_gap": "lightning_repgap.functional",
    "GapConfig": "lightning_repgap.config",
    "GapResult": "lightning_repgap.functional",
    "analyze": "lightning_repgap.functional",
    "GapCurve": "lightning_repgap.gap",
    "gap_curve": "lightning_repgap.gap",
    "geometric_sizes": "lightning_repgap.gap",
    "RepresentationGap": "lightning_repgap.metric",
    "RepresentationGapCallback": "lightning_repgap.callback",
    "RepresentationGapEarlyStopping": "lightning_repgap.stopping",
    "nearest": "lightning_repgap.search",
}

__all__ = [
    "DimensionFit",
    "GapConfig",
    "GapCurve",
    "GapResult",
    "RepresentationGap",
    "RepresentationGapCallback",
    "RepresentationGapEarlyStopping",
    "analyze",
    "estimate_dimension",
    "gap_curve",
    "gap_dimension",
    "geometric_sizes",
    "mle_dimension",
    "nearest",
    "representation_gap",
    "twonn_dimension",
]

if TYPE_CHECKING:
    from lightning_repgap.callback import RepresentationGapCallback
    from lightning_repgap.config import GapConfig
    from lightning_repgap.dimension import (
        DimensionFit,
        estimate_dimension,
        gap_dimension,
        mle_dimension,
        twonn_dimension,
    )
    from lightning_repgap.functional import GapResult, analyze, representation_gap
    from lightning_repgap.gap import GapCurve, gap_curve, geometric_sizes
    from lightning_repgap.metric import RepresentationGap
    from lightning_repgap.search import nearest
    from lightning_repgap.stopping import RepresentationGapEarlyStopping


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lightning_repgap' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
