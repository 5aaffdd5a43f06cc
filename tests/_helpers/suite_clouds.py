"""Suite clouds for tests: a split's latent sample, and a cloud's gap curve drawn exactly as the suite's study does."""

from __future__ import annotations

import numpy as np

from lightning_repgap.gap import GapCurve, gap_curve
from studies.dimension_suite import SuiteCloud, suite


def latent(split: str, name: str, n: int = 400, seed: int = 0) -> np.ndarray:
    """``n`` points of the latent manifold of the cloud ``name`` of ``split`` (before embedding and noise)."""
    cloud = next(c for c in suite(split) if c.name == name)
    return cloud.make(cloud.seed)(n, np.random.default_rng(seed))


def suite_curve(name: str, n: int) -> tuple[GapCurve, SuiteCloud]:
    """The gap curve (20-neighbour table) of a suite cloud at ``n`` points, drawn and split as the study does."""
    cloud = next(c for c in suite() if c.name == name)
    x = cloud.sample(n, np.random.default_rng(cloud.seed * 1000 + n))
    order = np.random.default_rng(0).permutation(n)
    m = round(0.2 * n)
    return gap_curve(x[order[m:]], x[order[:m]], seed=0, n_neighbors=20, neighbor_queries=m), cloud
