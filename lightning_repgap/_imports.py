"""Optional-dependency flags, evaluated lazily so that importing the package never imports FAISS or matplotlib."""

from __future__ import annotations

from typing import Any

from lightning_utilities.core.imports import RequirementCache

# The distribution is ``faiss-cpu`` or ``faiss-gpu`` but the module is ``faiss``: check the module.
_FAISS_AVAILABLE = RequirementCache(module="faiss")
_MATPLOTLIB_AVAILABLE = RequirementCache(module="matplotlib")


def pyplot() -> Any:
    """``matplotlib.pyplot`` on a non-interactive backend, or the package's install hint when matplotlib is missing."""
    if not _MATPLOTLIB_AVAILABLE:
        raise ModuleNotFoundError("Plotting needs matplotlib: `pip install lightning_repgap[plot]`.")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


__all__ = ["_FAISS_AVAILABLE", "_MATPLOTLIB_AVAILABLE", "pyplot"]
