r"""The fifth split of the trusted-``dim`` suite (issue #14): 29 clouds written before the fifth round of tuning.

The four earlier splits (:mod:`studies.dimension_suite`'s tune / held-out / fresh halves,
:mod:`studies.dimension_suite3`'s third and :mod:`studies.dimension_suite4`'s fourth split, 129 clouds) were all
opened while the rule was tuned, so they are tuning data. This split (``split="fifth"``, seeds 6xx) was written and
committed *before* the fifth round of tuning and is measured once, by
``python -m studies.dimension_heldout --splits fifth``, after the rule is frozen. It is weighted toward the failure
modes the fourth split showed (noisy curves at n = 20,000, the interval's coverage on clean clouds of dimension
10-20, curved low-dimensional manifolds). Its shapes, densities and embeddings are new, not reparameterisations of
the earlier ones:

* noisy curves (1 % and 5 %): an epitrochoid (spirograph curve), the moment curve ``(t, t^2, ..., t^6)``, a
  conical spiral, a sum of random Gaussian bumps (a smooth open wiggle in :math:`R^{24}`), the baseball-seam
  curve, the images of an interval under a random GELU network and under Gaussian RBF features;
* surfaces: a catenoid, Dini's surface, a pseudosphere (tractricoid) segment, a tube around the figure-eight knot
  (noisy), Scherk's first surface and a random trigonometric-polynomial image of the 2-torus (clean);
* network images: Gaussian RBF features of a square, a hard-tanh network (d = 3 and 10), a layer-normalised tanh
  network (d = 4), a GELU network (d = 15);
* non-uniform densities: a Clayton copula, nested Gaussians of two scales, Gumbel coordinates, a thin solid tube
  (a 3-d region around a helix: 1-d at large scale, 3-d at small scale);
* high dimension, clean, varied densities: the cross-polytope (l1 ball, d = 13), logistic coordinates (d = 20),
  log-normal coordinates (d = 10), a Gaussian scale mixture (d = 18), the unitary group :math:`U(4)` (d = 16), a
  spherical cap of :math:`S^{12}`, a skewed box (a 14-cube under a linear map of condition number 10).

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`):
0 on 14 clouds, 1 % on 8, 5 % on 7. Truth = the manifold's dimension. Nothing here comes from a published benchmark
generator (scikit-dimension's ``BenchmarkManifolds``, DADApy's data sets).
"""

from __future__ import annotations

import math

import numpy as np

from lightning_repgap.manifolds import sample_sphere
from studies.dimension_suite3 import Latent, Make, fixed
from studies.dimension_suite4 import random_network

# --- curves ------------------------------------------------------------------------------------------------------


def epitrochoid(big: int, small: int, offset: float) -> Make:
    """The epitrochoid of a circle of radius ``small`` rolling on one of radius ``big`` (pen at ``offset``)."""
    ratio = (big + small) / small
    period = 2 * math.pi * small / math.gcd(big, small)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = period * rng.random(n)
        x = (big + small) * np.cos(t) - offset * np.cos(ratio * t)
        y = (big + small) * np.sin(t) - offset * np.sin(ratio * t)
        return np.stack([x, y], axis=1)

    return fixed(sample)


def moment_curve(degree: int) -> Make:
    """The moment curve ``t -> (t, t^2, ..., t^degree)`` for ``t`` uniform in ``[-1, 1]``."""
    powers = np.arange(1, degree + 1)
    return fixed(lambda n, rng: rng.uniform(-1.0, 1.0, n)[:, None] ** powers)


def conical_spiral(turns: float) -> Make:
    """A spiral on a cone, ``(r cos t, r sin t, r)`` with ``r`` growing linearly in ``t`` (uniform in ``t``)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * turns * rng.random(n)
        r = 0.1 + t / (2 * math.pi * turns)
        return np.stack([r * np.cos(t), r * np.sin(t), r], axis=1)

    return fixed(sample)


def bump_curve(ambient: int, bumps: int, width: float) -> Make:
    """``t -> sum_j a_j exp(-(t - c_j)^2 / (2 width^2))`` on ``[0, 1]``: random Gaussian bumps, seeded ``a_j, c_j``."""

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        centres = frng.random(bumps)
        coef = frng.standard_normal((bumps, ambient))

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            t = rng.random(n)
            return np.exp(-((t[:, None] - centres) ** 2) / (2 * width**2)) @ coef

        return sample

    return make


def baseball_seam(b: float) -> Make:
    """The baseball-seam curve on the unit sphere (a closed curve with four lobes), uniform in its parameter."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 4 * math.pi * rng.random(n)
        phi = math.pi / 2 - (math.pi / 2 - b) * np.cos(t)
        theta = t / 2 + b * np.sin(2 * t)
        return np.stack([np.sin(phi) * np.cos(theta), np.sin(phi) * np.sin(theta), np.cos(phi)], axis=1)

    return fixed(sample)


def rbf_features(d: int, centres: int, width: float) -> Make:
    """Gaussian RBF features ``exp(-|u - c_j|^2 / (2 width^2))`` of ``u`` uniform in ``[-1, 1]^d`` (seeded centres)."""

    def make(seed: int) -> Latent:
        c = np.random.default_rng(seed).uniform(-1.2, 1.2, (centres, d))

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            u = rng.uniform(-1.0, 1.0, (n, d))
            sq = (u * u).sum(1)[:, None] - 2 * u @ c.T + (c * c).sum(1)[None, :]
            return np.exp(-np.maximum(sq, 0.0) / (2 * width**2))

        return sample

    return make


# --- surfaces ----------------------------------------------------------------------------------------------------


def catenoid(height: float) -> Make:
    """The catenoid ``(cosh v cos u, cosh v sin u, v)``, ``|v| <= height``, uniform in ``(u, v)``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = 2 * math.pi * rng.random(n)
        v = rng.uniform(-height, height, n)
        return np.stack([np.cosh(v) * np.cos(u), np.cosh(v) * np.sin(u), v], axis=1)

    return fixed(sample)


def dini(a: float, b: float, turns: float) -> Make:
    """Dini's surface (a twisted pseudosphere) over ``turns`` turns, ``v`` in ``[0.15, 2]``, uniform in ``(u, v)``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = 2 * math.pi * turns * rng.random(n)
        v = rng.uniform(0.15, 2.0, n)
        x = a * np.cos(u) * np.sin(v)
        y = a * np.sin(u) * np.sin(v)
        z = a * (np.cos(v) + np.log(np.tan(v / 2))) + b * u
        return np.stack([x, y, z], axis=1)

    return fixed(sample)


def pseudosphere(t_max: float) -> Make:
    """One nappe of the tractricoid (``sech t`` radius), ``t`` in ``[0.2, t_max]``, uniform in ``(t, angle)``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(0.2, t_max, n)
        a = 2 * math.pi * rng.random(n)
        r = 1 / np.cosh(t)
        return np.stack([r * np.cos(a), r * np.sin(a), t - np.tanh(t)], axis=1)

    return fixed(sample)


def _figure_eight(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The figure-eight knot ``((2 + cos 2t) cos 3t, (2 + cos 2t) sin 3t, sin 4t)`` and its unit tangent."""
    r, dr = 2 + np.cos(2 * t), -2 * np.sin(2 * t)
    p = np.stack([r * np.cos(3 * t), r * np.sin(3 * t), np.sin(4 * t)], axis=1)
    dp = np.stack(
        [dr * np.cos(3 * t) - 3 * r * np.sin(3 * t), dr * np.sin(3 * t) + 3 * r * np.cos(3 * t), 4 * np.cos(4 * t)],
        axis=1,
    )
    return p, dp / np.linalg.norm(dp, axis=1, keepdims=True)


def _knot_frame(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point and an orthonormal normal frame of the figure-eight knot (the tangent is never vertical)."""
    p, tangent = _figure_eight(t)
    normal = np.cross(tangent, np.array([0.0, 0.0, 1.0]))
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    return p, normal, np.cross(tangent, normal)


def knot_tube(radius: float) -> Make:
    """The tube of ``radius`` around the figure-eight knot (a knotted torus), uniform in its two parameters."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        p, nrm, bin_ = _knot_frame(2 * math.pi * rng.random(n))
        a = 2 * math.pi * rng.random(n)[:, None]
        return p + radius * (np.cos(a) * nrm + np.sin(a) * bin_)

    return fixed(sample)


def scherk(extent: float) -> Make:
    """Scherk's first surface ``z = log(cos y / cos x)`` over ``[-extent, extent]^2`` (``extent < pi / 2``)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        xy = rng.uniform(-extent, extent, (n, 2))
        z = np.log(np.cos(xy[:, 1]) / np.cos(xy[:, 0]))
        return np.concatenate([xy, z[:, None]], axis=1)

    return fixed(sample)


def trig_torus(ambient: int, order: int) -> Make:
    """A random trigonometric polynomial of degree ``order`` in two angles: a strongly curved image of the 2-torus."""

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        # One frequency of each +-pair: k > 0, or k == 0 and j > 0.
        freqs = np.array([(j, k) for j in range(-order, order + 1) for k in range(order + 1) if k > 0 or j > 0])
        amp = np.linalg.norm(freqs, axis=1) ** -0.5
        coef = frng.standard_normal((2, len(freqs), ambient)) * amp[None, :, None]

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            phase = (2 * math.pi * rng.random((n, 2))) @ freqs.T
            return np.cos(phase) @ coef[0] + np.sin(phase) @ coef[1]

        return sample

    return make


# --- networks ----------------------------------------------------------------------------------------------------


def act_net(d: int, ambient: int, width: int, depth: int, gain: float, act: str) -> Make:
    """A random ``depth``-layer network (GELU, hard-tanh or layer-normalised tanh) of a latent cube ``[-1, 1]^d``."""

    def f(h: np.ndarray) -> np.ndarray:
        if act == "gelu":  # the tanh approximation of GELU
            return 0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))
        if act == "hardtanh":
            return np.clip(h, -1.0, 1.0)
        centred = h - h.mean(axis=1, keepdims=True)  # layer norm, then tanh
        return np.tanh(centred / np.sqrt((centred * centred).mean(axis=1, keepdims=True) + 1e-6))

    return random_network(d, ambient, width, depth, gain, 0.3, f)


# --- densities ---------------------------------------------------------------------------------------------------


def clayton(d: int, theta: float) -> Make:
    """The Clayton copula (Marshall-Olkin sampling): uniform marginals, mass piled along the lower diagonal."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        v = rng.gamma(1.0 / theta, 1.0, n)[:, None]
        return (1 + rng.exponential(1.0, (n, d)) / v) ** (-1.0 / theta)

    return fixed(sample)


def nested_gaussians(d: int, inner: float) -> Make:
    """Half the points from ``N(0, I)``, half from ``N(0, inner^2 I)``: two scales around the same centre."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        scale = np.where(rng.random(n) < 0.5, 1.0, inner)
        return rng.standard_normal((n, d)) * scale[:, None]

    return fixed(sample)


def gumbel(d: int) -> Make:
    """Independent Gumbel coordinates (skewed, one light and one heavy tail)."""
    return fixed(lambda n, rng: rng.gumbel(0.0, 1.0, (n, d)))


def solid_helix_tube(turns: float, radius: float) -> Make:
    """The solid tube of ``radius`` around a helix (radius 1, pitch 0.6): a 3-d region, uniform in its parameters."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * turns * rng.random(n)
        c = np.stack([np.cos(t), np.sin(t), 0.6 * t / (2 * math.pi)], axis=1)
        tangent = np.stack([-np.sin(t), np.cos(t), np.full_like(t, 0.6 / (2 * math.pi))], axis=1)
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
        normal = np.stack([np.cos(t), np.sin(t), np.zeros_like(t)], axis=1)
        binormal = np.cross(tangent, normal)
        disc = radius * np.sqrt(rng.random(n))[:, None]
        a = 2 * math.pi * rng.random(n)[:, None]
        return c + disc * (np.cos(a) * normal + np.sin(a) * binormal)

    return fixed(sample)


def cross_polytope(d: int) -> Make:
    """Uniform in the ``d``-dimensional l1 ball (the cross-polytope)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        e = rng.exponential(1.0, (n, d + 1))
        return (e[:, :d] / e.sum(1, keepdims=True)) * rng.choice([-1.0, 1.0], (n, d))

    return fixed(sample)


def logistic(d: int) -> Make:
    """Independent logistic coordinates."""
    return fixed(lambda n, rng: rng.logistic(0.0, 1.0, (n, d)))


def log_normal(d: int, sigma: float) -> Make:
    """Independent log-normal coordinates (strongly skewed, dense near 0)."""
    return fixed(lambda n, rng: rng.lognormal(0.0, sigma, (n, d)))


def gaussian_scale_mixture(d: int, decades: float) -> Make:
    """``s z`` with ``z ~ N(0, I)`` and ``log10 s`` uniform over ``decades``: an elliptical cloud of many scales."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        s = 10 ** rng.uniform(-decades / 2, decades / 2, n)
        return rng.standard_normal((n, d)) * s[:, None]

    return fixed(sample)


def unitary(k: int) -> Make:
    """Haar-random unitary ``k x k`` matrices, real and imaginary parts flattened (dimension ``k^2``)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        z = (rng.standard_normal((n, k, k)) + 1j * rng.standard_normal((n, k, k))) / math.sqrt(2)
        q, r = np.linalg.qr(z)
        diag = np.diagonal(r, axis1=1, axis2=2)
        q = q * (diag / np.abs(diag))[:, None, :]
        return np.concatenate([q.real.reshape(n, k * k), q.imag.reshape(n, k * k)], axis=1)

    return fixed(sample)


def spherical_cap(d: int, angle: float) -> Make:
    """Uniform on the cap of the unit ``d``-sphere within polar ``angle`` of the pole (inverse-CDF in the angle)."""
    grid = np.linspace(0.0, angle, 20001)
    cdf = np.concatenate([[0.0], np.cumsum(np.sin(grid[1:]) ** (d - 1))])
    cdf /= cdf[-1]

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        polar = np.interp(rng.random(n), cdf, grid)
        direction = sample_sphere(n, d - 1, rng)
        return np.concatenate([np.cos(polar)[:, None], np.sin(polar)[:, None] * direction], axis=1)

    return fixed(sample)


def skewed_box(d: int, condition: float) -> Make:
    """The cube ``[0, 1]^d`` under a seeded linear map with singular values from 1 to ``1 / condition``."""

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        u = np.linalg.qr(frng.standard_normal((d, d)))[0]
        v = np.linalg.qr(frng.standard_normal((d, d)))[0]
        a = u @ np.diag(np.geomspace(1.0, 1.0 / condition, d)) @ v
        return lambda n, rng: rng.random((n, d)) @ a.T

    return make


def fifth_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the fifth split."""
    s = "fifth"
    return [
        # --- noisy curves
        ("epitrochoid 5:3 + 1 %", "curve", 1, 16, 0.01, s, 601, epitrochoid(5, 3, 5.0)),
        ("moment curve degree 6 + 5 %", "curve", 1, 24, 0.05, s, 602, moment_curve(6)),
        ("conical spiral 8 turns + 1 %", "curve", 1, 12, 0.01, s, 603, conical_spiral(8.0)),
        ("Gaussian-bump curve in R^24 + 1 %", "curve", 1, 24, 0.01, s, 604, bump_curve(24, 30, 0.05)),
        ("baseball seam + 5 %", "curve", 1, 10, 0.05, s, 605, baseball_seam(0.4)),
        ("GELU net d=1 -> R^32 + 5 %", "curve", 1, 32, 0.05, s, 606, act_net(1, 32, 32, 3, 2.5, "gelu")),
        ("RBF features d=1 -> R^40 + 5 %", "curve", 1, 40, 0.05, s, 607, rbf_features(1, 40, 0.15)),
        # --- surfaces
        ("catenoid + 1 %", "surface", 2, 12, 0.01, s, 611, catenoid(1.3)),
        ("Dini's surface 2 turns + 5 %", "surface", 2, 16, 0.05, s, 612, dini(1.0, 0.2, 2.0)),
        ("pseudosphere t <= 2.5 + 1 %", "surface", 2, 10, 0.01, s, 613, pseudosphere(2.5)),
        ("figure-eight knot tube + 5 %", "surface", 2, 16, 0.05, s, 614, knot_tube(0.3)),
        ("Scherk surface", "surface", 2, 12, 0.0, s, 615, scherk(1.35)),
        ("trigonometric torus degree 3 -> R^24", "surface", 2, 24, 0.0, s, 616, trig_torus(24, 3)),
        # --- network images
        ("RBF features d=2 -> R^64 + 5 %", "network", 2, 64, 0.05, s, 621, rbf_features(2, 64, 0.4)),
        ("hard-tanh net d=3 -> R^40 + 1 %", "network", 3, 40, 0.01, s, 622, act_net(3, 40, 40, 3, 2.0, "hardtanh")),
        ("layer-norm tanh net d=4 -> R^64 + 1 %", "network", 4, 64, 0.01, s, 623, act_net(4, 64, 48, 3, 1.8, "ln")),
        ("hard-tanh net d=10 -> R^80", "network", 10, 80, 0.0, s, 624, act_net(10, 80, 64, 3, 1.5, "hardtanh")),
        ("GELU net d=15 -> R^120", "network", 15, 120, 0.0, s, 625, act_net(15, 120, 96, 2, 1.5, "gelu")),
        # --- non-uniform densities, low d
        ("Clayton copula d=3, theta=3", "density", 3, 12, 0.0, s, 631, clayton(3, 3.0)),
        ("nested Gaussians d=5, scales 1 and 0.1", "density", 5, 20, 0.0, s, 632, nested_gaussians(5, 0.1)),
        ("Gumbel d=4 + 1 %", "density", 4, 16, 0.01, s, 633, gumbel(4)),
        ("solid helix tube 5 turns", "density", 3, 12, 0.0, s, 634, solid_helix_tube(5.0, 0.15)),
        # --- high dimension, clean, varied densities
        ("cross-polytope d=13", "high_d", 13, 40, 0.0, s, 651, cross_polytope(13)),
        ("logistic d=20", "high_d", 20, 64, 0.0, s, 652, logistic(20)),
        ("log-normal d=10, sigma 0.6", "high_d", 10, 32, 0.0, s, 653, log_normal(10, 0.6)),
        ("Gaussian scale mixture d=18", "high_d", 18, 64, 0.0, s, 654, gaussian_scale_mixture(18, 1.0)),
        ("unitary group U(4)", "high_d", 16, 32, 0.0, s, 655, unitary(4)),
        ("spherical cap of S^12, 60 degrees", "high_d", 12, 40, 0.0, s, 656, spherical_cap(12, math.pi / 3)),
        ("skewed box d=14, condition 10", "high_d", 14, 48, 0.0, s, 657, skewed_box(14, 10.0)),
    ]


__all__ = ["fifth_specs"]
