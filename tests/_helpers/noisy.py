"""Known-answer noisy clouds for the trusted ``dim``'s noise tests."""

from __future__ import annotations

import math

import numpy as np


def noisy_circle(n: int, seed: int, ambient: int = 8, noise: float = 0.05) -> np.ndarray:
    """A uniform circle rotated into ``R^ambient``, with the suite's isotropic noise (``noise`` of the RMS radius)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 2.0 * np.pi, n)
    x = np.pad(np.stack([np.cos(t), np.sin(t)], 1), ((0, 0), (0, ambient - 2)))
    x = x @ np.linalg.qr(rng.standard_normal((ambient, ambient)))[0]
    radius = math.sqrt(float(np.var(x, axis=0).sum()))
    return x + rng.standard_normal(x.shape) * (noise * radius / math.sqrt(ambient))
