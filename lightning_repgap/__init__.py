"""lightning_repgap: representation-gap monitoring for PyTorch Lightning.

Importing the package never imports FAISS or matplotlib; they load on first use.
"""

from lightning_repgap.dimension import DimensionFit, gap_dimension, mle_dimension, twonn_dimension
from lightning_repgap.functional import representation_gap
from lightning_repgap.gap import GapCurve, gap_curve, geometric_sizes
from lightning_repgap.metric import RepresentationGap
from lightning_repgap.search import nearest

__version__ = "0.1.0"

__all__ = [
    "DimensionFit",
    "GapCurve",
    "RepresentationGap",
    "gap_curve",
    "gap_dimension",
    "geometric_sizes",
    "mle_dimension",
    "nearest",
    "representation_gap",
    "twonn_dimension",
]
