r"""Point clouds of known intrinsic dimension, with the closed-form gap they should produce.

Used by the known-answer tests, the calibration of the gap dimension, the examples and the benchmarks. All
samplers draw **uniformly** (with respect to the manifold's volume) and return float64 arrays.

The asymptotic gap of ``n`` uniform points on a ``d``-dimensional manifold of volume ``Vol`` is

.. math::

    G(n) \approx \Gamma(1 + 2/d)\, \Big(\frac{n V_d}{\mathrm{Vol}}\Big)^{-2/d}, \qquad
    V_d = \frac{\pi^{d/2}}{\Gamma(1 + d/2)}.
"""

from __future__ import annotations

import math

import numpy as np

from lightning_repgap._checks import _check_positive_int


def unit_ball_volume(d: int) -> float:
    """Volume :math:`V_d` of the unit ``d``-ball.

    Example:
        >>> round(unit_ball_volume(2), 6) == round(math.pi, 6)
        True

    """
    return math.pi ** (d / 2) / math.gamma(1 + d / 2)


def predicted_gap(n: float | np.ndarray, d: int, volume: float) -> float | np.ndarray:
    r"""Asymptotic :math:`G(n) = \Gamma(1 + 2/d) (n V_d / \mathrm{Vol})^{-2/d}` for uniform data.

    Example:
        >>> round(float(predicted_gap(1000, 2, 1.0)), 6)  # unit square: Gamma(2) / (1000 pi)
        0.000318

    """
    return math.gamma(1 + 2 / d) * (np.asarray(n, dtype=np.float64) * unit_ball_volume(d) / volume) ** (-2 / d)


def sphere_volume(d: int, radius: float = 1.0) -> float:
    """Surface volume of the ``d``-sphere of ``radius`` in :math:`R^{d+1}`.

    Example:
        >>> round(sphere_volume(2), 4)  # the unit 2-sphere: 4 pi
        12.5664
    """
    return 2 * math.pi ** ((d + 1) / 2) / math.gamma((d + 1) / 2) * radius**d


def sample_cube(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform points in the unit cube :math:`[0, 1]^d` (volume 1).

    Example:
        >>> sample_cube(3, 2, np.random.default_rng(0)).shape
        (3, 2)
    """
    return rng.random((_check_positive_int(n, "n"), _check_positive_int(d, "d")))


def sample_ball(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform points in the unit ``d``-ball (volume :func:`unit_ball_volume`).

    Example:
        >>> bool((np.linalg.norm(sample_ball(100, 3, np.random.default_rng(0)), axis=1) <= 1).all())
        True
    """
    x = rng.standard_normal((_check_positive_int(n, "n"), _check_positive_int(d, "d")))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x * rng.random((n, 1)) ** (1.0 / d)


def sample_sphere(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform points on the unit ``d``-sphere in :math:`R^{d+1}` (volume :func:`sphere_volume`).

    Example:
        >>> x = sample_sphere(4, 2, np.random.default_rng(0))
        >>> x.shape, bool(np.allclose(np.linalg.norm(x, axis=1), 1.0))
        ((4, 3), True)
    """
    x = rng.standard_normal((_check_positive_int(n, "n"), _check_positive_int(d, "d") + 1))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def sample_torus(n: int, d: int, rng: np.random.Generator, radius: float | None = None) -> np.ndarray:
    r"""``n`` uniform points on the flat ``d``-torus, a product of ``d`` circles embedded in :math:`R^{2d}`.

    The default radius :math:`1 / (2\pi)` gives circles of length 1, so the torus has volume 1 and, locally,
    the geometry of the unit cube without its boundary (chordal distances differ from geodesic ones only at
    fourth order).

    Example:
        >>> sample_torus(5, 3, np.random.default_rng(0)).shape
        (5, 6)
    """
    r = 1.0 / (2 * math.pi) if radius is None else radius
    theta = 2 * math.pi * rng.random((_check_positive_int(n, "n"), _check_positive_int(d, "d")))
    return r * np.concatenate([np.cos(theta), np.sin(theta)], axis=1)


def random_rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random orthogonal ``dim x dim`` matrix (QR of a Gaussian matrix with the sign fix).

    Example:
        >>> q = random_rotation(4, np.random.default_rng(0))
        >>> bool(np.allclose(q @ q.T, np.eye(4)))
        True
    """
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def embed(points: np.ndarray, ambient_dim: int, rng: np.random.Generator) -> np.ndarray:
    """Zero-pad ``(n, k)`` points to ``ambient_dim`` columns and apply a random rotation: distances unchanged.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = sample_sphere(5, 2, rng)
        >>> y = embed(x, 64, rng)
        >>> y.shape, bool(np.allclose(np.linalg.norm(y, axis=1), 1.0))
        ((5, 64), True)

    """
    n, k = points.shape
    if ambient_dim < k:
        raise ValueError(f"`ambient_dim`={ambient_dim} is smaller than the points' {k} coordinates.")
    padded = np.zeros((n, ambient_dim))
    padded[:, :k] = points
    return padded @ random_rotation(ambient_dim, rng).T


__all__ = [
    "embed",
    "predicted_gap",
    "random_rotation",
    "sample_ball",
    "sample_cube",
    "sample_sphere",
    "sample_torus",
    "sphere_volume",
    "unit_ball_volume",
]
