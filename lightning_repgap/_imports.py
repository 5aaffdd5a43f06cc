"""Optional-dependency flags, evaluated lazily so that importing the package never imports FAISS or matplotlib."""

from __future__ import annotations

from lightning_utilities.core.imports import RequirementCache

# The distribution is ``faiss-cpu`` or ``faiss-gpu`` but the module is ``faiss``: check the module.
_FAISS_AVAILABLE = RequirementCache(module="faiss")
_MATPLOTLIB_AVAILABLE = RequirementCache(module="matplotlib")

__all__ = ["_FAISS_AVAILABLE", "_MATPLOTLIB_AVAILABLE"]
