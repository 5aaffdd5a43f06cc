r"""The eighth split of the trusted-``dim`` suite (issue #14): 42 clouds written before the eighth round of tuning.

The seven earlier splits (:mod:`studies.dimension_suite`'s tune / held-out / fresh halves and the third to seventh
splits of :mod:`studies.dimension_suite3` to :mod:`studies.dimension_suite7`, 233 clouds) were all opened while the
rule was tuned, so they are tuning data. This split (``split="eighth"``, seeds 9xx) was written and committed
*before* the eighth round of tuning and is measured once, by ``python -m studies.dimension_heldout --splits
eighth``, after the rule is frozen. It follows the issue's family list with new shapes, densities and embeddings:

* curves: a cardioid with a Beta-distributed parameter (a cusp, non-uniform), a nephroid, a deltoid, a helix of
  growing pitch, a seeded random closed curve of :math:`R^{20}` with a slowly decaying spectrum, a circle with a
  von Mises angle, the image of an interval under a random tanh network;
* surfaces: a steep paraboloid over a disc, a ring torus with a von Mises tube angle, a sphere with a
  Beta-distributed height, a narrow Gaussian bump over a square, a spiral sheet;
* network images: tanh (d = 2), softplus (d = 4), leaky-ReLU (d = 6), sine (d = 9), ELU (d = 12) and softsign
  (d = 16) networks;
* non-uniform densities: an arcsine (Beta(0.5, 0.5)) cube (d = 5), a Beta(5, 2) cube (d = 9), a von Mises 3-torus,
  an equal four-component Gaussian mixture (d = 10), an unequal eight-component mixture (d = 5), Gamma(0.5)
  coordinates (d = 7), a von Mises-Fisher cap on :math:`S^3`;
* heavy tails and scale mixtures: Student-t(3) (d = 10), Student-t(2.5) (d = 6), two nested Gaussians (d = 8,
  scales 1 and 0.3), a Gaussian with a uniform scale in [0.5, 2] (d = 14), a log-normal radius (d = 20), an
  elliptical Laplace (d = 12, axes 1 to 1/2);
* products: four circles of radii 1, 0.7, 0.4, 0.2, a 3-cube times :math:`S^3`, a 5-d Gaussian times a circle, a
  helix times the 3-ball, :math:`S^4 \times S^4`;
* ordinary clouds: a 30-d Gaussian, the 10-cube, :math:`S^{11}`, the 18-ball, the 5-torus, the square.

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`):
0 on 12 clouds, 1 % on 16, 5 % on 14. Truth = the manifold's dimension. Nothing here comes from a published
benchmark generator (scikit-dimension's ``BenchmarkManifolds``, DADApy's data sets).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lightning_repgap.manifolds import sample_ball, sample_cube, sample_sphere, sample_torus
from studies.dimension_suite import fourier_curve, paraboloid
from studies.dimension_suite3 import Latent, Make, fixed
from studies.dimension_suite4 import random_network
from studies.dimension_suite7 import (
    elliptical_laplace,
    log_normal_radius,
    product,
    unequal_mixture,
    von_mises_fisher_cap,
)

# --- curves ------------------------------------------------------------------------------------------------------


def beta_cardioid(a: float, b: float) -> Make:
    """The cardioid ``r = 1 - cos t`` with ``t = 2 pi Beta(a, b)`` (a cusp at ``t = 0``, non-uniform along it)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.beta(a, b, n)
        r = 1 - np.cos(t)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)

    return fixed(sample)


def nephroid() -> Make:
    """The nephroid ``(3 cos t - cos 3t, 3 sin t - sin 3t)``, uniform in ``t`` (two cusps)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.random(n)
        return np.stack([3 * np.cos(t) - np.cos(3 * t), 3 * np.sin(t) - np.sin(3 * t)], axis=1)

    return fixed(sample)


def deltoid() -> Make:
    """The deltoid ``(2 cos t + cos 2t, 2 sin t - sin 2t)``, uniform in ``t`` (three cusps)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.random(n)
        return np.stack([2 * np.cos(t) + np.cos(2 * t), 2 * np.sin(t) - np.sin(2 * t)], axis=1)

    return fixed(sample)


def growing_helix(turns: float, rise: float) -> Make:
    """The helix ``(cos t, sin t, rise * (t / 2 pi)^2)``: the pitch grows along it; uniform in ``t``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * turns * rng.random(n)
        return np.stack([np.cos(t), np.sin(t), rise * (t / (2 * math.pi)) ** 2], axis=1)

    return fixed(sample)


def von_mises_circle(kappa: float) -> Make:
    """The unit circle with a von Mises angle of concentration ``kappa`` (dense on one side, sparse on the other)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        a = rng.vonmises(0.0, kappa, n)
        return np.stack([np.cos(a), np.sin(a)], axis=1)

    return fixed(sample)


# --- surfaces ----------------------------------------------------------------------------------------------------


def von_mises_ring_torus(big: float, small: float, kappa: float) -> Make:
    """A ring torus in :math:`R^3` with a uniform long angle and a von Mises tube angle of concentration ``kappa``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = 2 * math.pi * rng.random(n)
        v = rng.vonmises(0.0, kappa, n)
        r = big + small * np.cos(v)
        return np.stack([r * np.cos(u), r * np.sin(u), small * np.sin(v)], axis=1)

    return fixed(sample)


def beta_height_sphere(a: float, b: float) -> Make:
    """The unit 2-sphere with height ``z = 2 Beta(a, b) - 1`` and a uniform longitude (non-uniform in area)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        z = 2 * rng.beta(a, b, n) - 1
        ph = 2 * math.pi * rng.random(n)
        r = np.sqrt(1 - z**2)
        return np.stack([r * np.cos(ph), r * np.sin(ph), z], axis=1)

    return fixed(sample)


def gaussian_bump(width: float, height: float) -> Make:
    """The graph ``z = height * exp(-|xy - 1/2|^2 / width^2)`` over the unit square (a narrow bump)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        xy = rng.random((n, 2))
        z = height * np.exp(-((xy - 0.5) ** 2).sum(1) / width**2)
        return np.concatenate([xy, z[:, None]], axis=1)

    return fixed(sample)


def spiral_sheet(t0: float, t1: float, width: float) -> Make:
    """The sheet ``(t cos t, t sin t, h)``, ``t`` uniform in ``[t0, t1]`` (not in area), ``h`` uniform in width."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(t0, t1, n)
        return np.stack([t * np.cos(t), t * np.sin(t), width * rng.random(n)], axis=1)

    return fixed(sample)


# --- networks ----------------------------------------------------------------------------------------------------


def act_net(d: int, ambient: int, width: int, depth: int, gain: float, act: str) -> Make:
    """A random ``depth``-layer network (tanh, softplus, leaky ReLU, sine, ELU, softsign) of a cube ``[-1, 1]^d``."""
    acts: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "tanh": np.tanh,
        "softplus": lambda h: np.logaddexp(0.0, h),
        "leaky": lambda h: np.where(h > 0, h, 0.1 * h),
        "sin": np.sin,
        "elu": lambda h: np.where(h > 0, h, np.expm1(np.minimum(h, 0.0))),
        "softsign": lambda h: h / (1.0 + np.abs(h)),
    }
    return random_network(d, ambient, width, depth, gain, 0.5, acts[act])


# --- non-uniform densities ---------------------------------------------------------------------------------------


def beta_coordinates(d: int, a: float, b: float) -> Make:
    """The cube ``[0, 1]^d`` with independent Beta(a, b) coordinates."""
    return fixed(lambda n, rng: rng.beta(a, b, (n, d)))


def von_mises_torus(d: int, kappa: float) -> Make:
    """The flat ``d``-torus with independent von Mises angles of concentration ``kappa``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        a = rng.vonmises(0.0, kappa, (n, d))
        return np.concatenate([np.cos(a), np.sin(a)], axis=1)

    return fixed(sample)


def equal_mixture(d: int, components: int, spread: float) -> Make:
    """Equal-weight mixture of unit Gaussians at seeded centres ``spread * N(0, I)``."""

    def make(seed: int) -> Latent:
        centres = np.random.default_rng(seed).standard_normal((components, d)) * spread

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            return centres[rng.integers(0, components, n)] + rng.standard_normal((n, d))

        return sample

    return make


def gamma_coordinates(d: int, shape: float) -> Make:
    """Independent Gamma(``shape``) coordinates (shape < 1: a density spike at the corner)."""
    return fixed(lambda n, rng: rng.gamma(shape, 1.0, (n, d)))


# --- heavy tails and scale mixtures ------------------------------------------------------------------------------


def student(d: int, dof: float) -> Make:
    """Multivariate Student-t with ``dof`` degrees of freedom."""
    return fixed(lambda n, rng: rng.standard_normal((n, d)) * np.sqrt(dof / rng.chisquare(dof, n))[:, None])


def nested(d: int, inner: float) -> Make:
    """Half ``N(0, I)``, half ``N(0, inner^2 I)``, same centre."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        s = np.where(rng.random(n) < 0.5, 1.0, inner)
        return rng.standard_normal((n, d)) * s[:, None]

    return fixed(sample)


def uniform_scale_gaussian(d: int, low: float, high: float) -> Make:
    """``s * N(0, I)`` with ``s`` uniform in ``[low, high]`` (a continuous scale mixture)."""
    return fixed(lambda n, rng: rng.standard_normal((n, d)) * rng.uniform(low, high, n)[:, None])


# --- products ----------------------------------------------------------------------------------------------------


def _circle(radius: float) -> Latent:
    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        a = 2 * math.pi * rng.random(n)
        return radius * np.stack([np.cos(a), np.sin(a)], axis=1)

    return sample


def _helix(n: int, rng: np.random.Generator) -> np.ndarray:
    t = 6 * math.pi * rng.random(n)
    return np.stack([np.cos(t), np.sin(t), 0.3 * t], axis=1)


def eighth_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the eighth split."""
    s = "eighth"
    return [
        # --- curves
        ("Beta(2, 5) cardioid + 1 %", "curve", 1, 10, 0.01, s, 901, beta_cardioid(2.0, 5.0)),
        ("nephroid + 5 %", "curve", 1, 12, 0.05, s, 902, nephroid()),
        ("deltoid", "curve", 1, 8, 0.0, s, 903, deltoid()),
        ("helix of growing pitch + 1 %", "curve", 1, 16, 0.01, s, 904, growing_helix(5.0, 0.1)),
        ("random closed curve in R^20, 12 modes + 5 %", "curve", 1, 24, 0.05, s, 905, fourier_curve(20, 12, 0.8)),
        ("von Mises circle, kappa 4", "curve", 1, 6, 0.0, s, 906, von_mises_circle(4.0)),
        ("tanh net d=1 -> R^20 + 1 %", "curve", 1, 20, 0.01, s, 907, act_net(1, 20, 20, 3, 3.0, "tanh")),
        # --- surfaces
        ("steep paraboloid over a disc + 1 %", "surface", 2, 12, 0.01, s, 911, paraboloid(2, 2.0)),
        ("ring torus, von Mises tube angle + 5 %", "surface", 2, 16, 0.05, s, 912, von_mises_ring_torus(2, 1, 2)),
        ("sphere with Beta(0.6, 2) height", "surface", 2, 10, 0.0, s, 913, beta_height_sphere(0.6, 2.0)),
        ("narrow Gaussian bump over a square + 1 %", "surface", 2, 20, 0.01, s, 914, gaussian_bump(0.15, 0.5)),
        ("spiral sheet, non-uniform + 5 %", "surface", 2, 14, 0.05, s, 915, spiral_sheet(4.0, 14.0, 6.0)),
        # --- network images
        ("tanh net d=2 -> R^30 + 1 %", "network", 2, 30, 0.01, s, 921, act_net(2, 30, 32, 3, 2.0, "tanh")),
        ("softplus net d=4 -> R^48 + 5 %", "network", 4, 48, 0.05, s, 922, act_net(4, 48, 48, 3, 2.0, "softplus")),
        ("leaky-ReLU net d=6 -> R^64", "network", 6, 64, 0.0, s, 923, act_net(6, 64, 64, 3, 1.5, "leaky")),
        ("sine net d=9 -> R^90 + 1 %", "network", 9, 90, 0.01, s, 924, act_net(9, 90, 90, 2, 2.0, "sin")),
        ("ELU net d=12 -> R^100 + 5 %", "network", 12, 100, 0.05, s, 925, act_net(12, 100, 100, 3, 1.5, "elu")),
        ("softsign net d=16 -> R^120", "network", 16, 120, 0.0, s, 926, act_net(16, 120, 120, 2, 2.0, "softsign")),
        # --- non-uniform densities
        ("arcsine cube d=5 + 1 %", "density", 5, 20, 0.01, s, 931, beta_coordinates(5, 0.5, 0.5)),
        ("Beta(5, 2) cube d=9", "density", 9, 32, 0.0, s, 932, beta_coordinates(9, 5.0, 2.0)),
        ("von Mises 3-torus, kappa 3 + 5 %", "density", 3, 12, 0.05, s, 933, von_mises_torus(3, 3.0)),
        ("equal Gaussian mixture d=10, 4 comp. + 1 %", "density", 10, 40, 0.01, s, 934, equal_mixture(10, 4, 3.0)),
        ("unequal Gaussian mixture d=5, 8 comp. + 5 %", "density", 5, 24, 0.05, s, 935, unequal_mixture(5, 8, 2.5)),
        ("Gamma(0.5) coordinates d=7", "density", 7, 28, 0.0, s, 936, gamma_coordinates(7, 0.5)),
        ("von Mises-Fisher cap on S^3, kappa 3 + 1 %", "density", 3, 16, 0.01, s, 937, von_mises_fisher_cap(3, 3.0)),
        # --- heavy tails and scale mixtures
        ("Student-t(3) d=10 + 1 %", "high_d", 10, 40, 0.01, s, 941, student(10, 3.0)),
        ("Student-t(2.5) d=6 + 5 %", "density", 6, 24, 0.05, s, 942, student(6, 2.5)),
        ("two nested Gaussians d=8, scales 1 and 0.3", "density", 8, 32, 0.0, s, 943, nested(8, 0.3)),
        (
            "Gaussian with uniform scale 0.5-2, d=14 + 1 %",
            "high_d",
            14,
            48,
            0.01,
            s,
            944,
            uniform_scale_gaussian(14, 0.5, 2.0),
        ),
        ("log-normal radius d=20, sigma 0.3", "high_d", 20, 64, 0.0, s, 945, log_normal_radius(20, 0.3)),
        ("elliptical Laplace d=12, axes 1 to 1/2 + 5 %", "high_d", 12, 40, 0.05, s, 946, elliptical_laplace(12, 2.0)),
        # --- products
        (
            "four circles of radii 1, 0.7, 0.4, 0.2 + 1 %",
            "product",
            4,
            16,
            0.01,
            s,
            951,
            product(_circle(1.0), _circle(0.7), _circle(0.4), _circle(0.2)),
        ),
        (
            "[0,1]^3 x S^3 + 5 %",
            "product",
            6,
            24,
            0.05,
            s,
            952,
            product(lambda n, rng: sample_cube(n, 3, rng), lambda n, rng: sample_sphere(n, 3, rng)),
        ),
        (
            "Gaussian d=5 x circle",
            "product",
            6,
            24,
            0.0,
            s,
            953,
            product(lambda n, rng: rng.standard_normal((n, 5)), _circle(1.0)),
        ),
        ("helix x B^3 + 1 %", "product", 4, 16, 0.01, s, 954, product(_helix, lambda n, rng: sample_ball(n, 3, rng))),
        (
            "S^4 x S^4 + 5 %",
            "product",
            8,
            32,
            0.05,
            s,
            955,
            product(lambda n, rng: sample_sphere(n, 4, rng), lambda n, rng: sample_sphere(n, 4, rng)),
        ),
        # --- ordinary clouds
        ("Gaussian d=30 + 5 %", "high_d", 30, 96, 0.05, s, 961, fixed(lambda n, rng: rng.standard_normal((n, 30)))),
        ("cube [0,1]^10", "high_d", 10, 40, 0.0, s, 962, fixed(lambda n, rng: sample_cube(n, 10, rng))),
        ("sphere S^11 + 1 %", "high_d", 11, 36, 0.01, s, 963, fixed(lambda n, rng: sample_sphere(n, 11, rng))),
        ("ball B^18 + 5 %", "high_d", 18, 64, 0.05, s, 964, fixed(lambda n, rng: sample_ball(n, 18, rng))),
        ("torus T^5", "product", 5, 20, 0.0, s, 965, fixed(lambda n, rng: sample_torus(n, 5, rng))),
        ("square [0,1]^2 + 1 %", "surface", 2, 8, 0.01, s, 966, fixed(lambda n, rng: sample_cube(n, 2, rng))),
    ]


__all__ = ["eighth_specs"]
