r"""The seventh split of the trusted-``dim`` suite (issue #14): 42 clouds written before the seventh round of tuning.

The six earlier splits (:mod:`studies.dimension_suite`'s tune / held-out / fresh halves and the third to sixth
splits of :mod:`studies.dimension_suite3` to :mod:`studies.dimension_suite6`, 191 clouds) were all opened while the
rule was tuned, so they are tuning data. This split (``split="seventh"``, seeds 8xx) was written and committed
*before* the seventh round of tuning and is measured once, by ``python -m studies.dimension_heldout --splits
seventh``, after the rule is frozen. It follows the issue's family list with new shapes, densities and embeddings:

* curves: an astroid and a cycloid (cusps), an Archimedean spiral, a Clelia curve on :math:`S^2`, a (3, 5) curve on
  a flat torus in :math:`R^4`, a seeded smooth spline through random points of :math:`R^{12}`, a seven-lobed star,
  Cassini's two ovals (two components), the image of an interval under a random sigmoid network;
* surfaces: Steiner's Roman surface, a horn torus (1 : 1, a pinched centre), a hyperboloid of one sheet, a graph
  over a Gaussian-distributed plane, a cross-cap, an elliptic cylinder;
* network images: arctan (d = 3), absolute-value (d = 5), sigmoid (d = 8), Gaussian-activation (d = 14) and ReLU
  (d = 10) networks;
* non-uniform densities: a von Mises-Fisher cap on :math:`S^4`, an unequal-weight Gaussian mixture (d = 7), a
  triangular-distribution cube (d = 6), a generalised Gaussian of shape 0.7 (d = 8), a torus with von Mises angles
  of concentrations 0.5 to 8 (d = 4);
* heavy tails and scale mixtures: Student-t(4) (d = 18), an anisotropic elliptical Laplace (d = 16), a uniform
  direction times a log-normal radius (d = 12), an elliptical Laplace (d = 6), two nested Gaussians (d = 16);
* products: three 2-spheres of radii 1, 0.5 and 0.25, a rose curve times :math:`S^2`, a Gaussian times :math:`T^3`,
  a disc times :math:`S^5`, three 4-balls;
* ordinary clouds: a 24-d Gaussian, :math:`S^{20}`, the 6-cube, the 12-ball, the 8-torus, the 16-cube, :math:`S^3`.

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`):
0 on 12 clouds, 1 % on 16, 5 % on 14. Truth = the manifold's dimension. Nothing here comes from a published
benchmark generator (scikit-dimension's ``BenchmarkManifolds``, DADApy's data sets).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lightning_repgap.manifolds import sample_ball, sample_cube, sample_sphere, sample_torus
from studies.dimension_suite3 import Latent, Make, fixed
from studies.dimension_suite4 import random_network

# --- curves ------------------------------------------------------------------------------------------------------


def astroid() -> Make:
    """The astroid ``(cos^3 t, sin^3 t)``, uniform in ``t`` (four cusps)."""
    return fixed(lambda n, rng: np.stack(_cs(2 * math.pi * rng.random(n), 3), axis=1))


def _cs(t: np.ndarray, power: int) -> tuple[np.ndarray, np.ndarray]:
    return np.cos(t) ** power, np.sin(t) ** power


def cycloid(arches: int) -> Make:
    """``arches`` arches of the cycloid ``(t - sin t, 1 - cos t)``, uniform in ``t`` (cusps between arches)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * arches * rng.random(n)
        return np.stack([t - np.sin(t), 1 - np.cos(t)], axis=1)

    return fixed(sample)


def archimedean_spiral(turns: float) -> Make:
    """The Archimedean spiral ``r = t`` over ``turns`` turns, uniform in ``t`` (denser per length near the centre)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * turns * rng.random(n)
        return np.stack([t * np.cos(t), t * np.sin(t)], axis=1)

    return fixed(sample)


def clelia(ratio: float) -> Make:
    """The Clelia curve on the unit sphere: longitude ``ratio * theta``, colatitude ``theta`` in ``[0, pi]``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        th = math.pi * rng.random(n)
        ph = ratio * th
        return np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=1)

    return fixed(sample)


def flat_torus_curve(p: int, q: int, small: float) -> Make:
    """The closed curve ``(cos pt, sin pt, small cos qt, small sin qt)`` on a flat torus in :math:`R^4`."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.random(n)
        return np.stack([np.cos(p * t), np.sin(p * t), small * np.cos(q * t), small * np.sin(q * t)], axis=1)

    return fixed(sample)


def spline_curve(ambient: int, knots: int) -> Make:
    """A closed periodic curve through ``knots`` seeded Gaussian points of :math:`R^{ambient}` (trigonometric fit)."""

    def make(seed: int) -> Latent:
        pts = np.random.default_rng(seed).standard_normal((knots, ambient))
        coef = np.fft.rfft(pts, axis=0) / knots  # the trigonometric interpolant through the knots

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            t = rng.random(n)
            k = np.arange(coef.shape[0])
            w = np.where((k == 0) | ((knots % 2 == 0) & (k == knots // 2)), 1.0, 2.0)
            e = np.exp(2j * math.pi * np.outer(t, k)) * w
            return np.real(e @ coef)

        return sample

    return make


def star(lobes: int, depth: float) -> Make:
    """The star ``r = 1 + depth * cos(lobes * t)``, uniform in ``t``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.random(n)
        r = 1 + depth * np.cos(lobes * t)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)

    return fixed(sample)


def cassini_ovals(a: float, b: float) -> Make:
    """Cassini's ovals ``|z - a| |z + a| = b^2`` with ``b < a``: two closed components, uniform in the polar angle."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        # r^2 = a^2 cos 2t + sqrt(b^4 - a^4 sin^2 2t), real for |sin 2t| <= (b / a)^2; one oval per sign of cos t.
        lim = 0.5 * math.asin((b / a) ** 2)
        t = rng.uniform(-lim, lim, n)
        r = np.sqrt(a**2 * np.cos(2 * t) + np.sqrt(np.maximum(b**4 - a**4 * np.sin(2 * t) ** 2, 0.0)))
        side = rng.choice([-1.0, 1.0], n)
        return np.stack([side * r * np.cos(t), r * np.sin(t)], axis=1)

    return fixed(sample)


# --- surfaces ----------------------------------------------------------------------------------------------------


def roman_surface() -> Make:
    """Steiner's Roman surface ``(yz, xz, xy)`` of a uniform point of :math:`S^2` (self-intersecting)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        s = sample_sphere(n, 2, rng)
        return np.stack([s[:, 1] * s[:, 2], s[:, 0] * s[:, 2], s[:, 0] * s[:, 1]], axis=1)

    return fixed(sample)


def horn_torus() -> Make:
    """The horn torus (both radii 1, the tube touches the axis), uniform in its two angles."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u, v = 2 * math.pi * rng.random((2, n))
        r = 1 + np.cos(v)
        return np.stack([r * np.cos(u), r * np.sin(u), np.sin(v)], axis=1)

    return fixed(sample)


def hyperboloid(height: float) -> Make:
    """The hyperboloid of one sheet ``x^2 + y^2 - z^2 = 1``, ``|z| <= height``, uniform in ``z`` and the angle."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.uniform(-height, height, n)
        a = 2 * math.pi * rng.random(n)
        r = np.sqrt(1 + z**2)
        return np.stack([r * np.cos(a), r * np.sin(a), z], axis=1)

    return fixed(sample)


def gaussian_graph(amp: float) -> Make:
    """The graph ``z = amp * cos(x) sin(2 y)`` over a standard Gaussian plane (a non-uniform, curved surface)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        xy = rng.standard_normal((n, 2))
        return np.concatenate([xy, (amp * np.cos(xy[:, 0]) * np.sin(2 * xy[:, 1]))[:, None]], axis=1)

    return fixed(sample)


def cross_cap() -> Make:
    """The cross-cap ``(sin u sin 2v / 2, sin 2u cos^2 v, cos 2u cos^2 v)``, uniform in ``(u, v)``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = math.pi * rng.random(n)
        v = math.pi * rng.random(n) - math.pi / 2
        c2 = np.cos(v) ** 2
        return np.stack([np.sin(u) * np.sin(2 * v) / 2, np.sin(2 * u) * c2, np.cos(2 * u) * c2], axis=1)

    return fixed(sample)


def elliptic_cylinder(a: float, b: float, height: float) -> Make:
    """The cylinder over the ellipse with semi-axes ``a``, ``b``, of the given height, uniform in angle and height."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.random(n)
        return np.stack([a * np.cos(t), b * np.sin(t), height * rng.random(n)], axis=1)

    return fixed(sample)


# --- networks ----------------------------------------------------------------------------------------------------


def act_net(d: int, ambient: int, width: int, depth: int, gain: float, act: str) -> Make:
    """A random ``depth``-layer network (arctan, abs, sigmoid, Gaussian or ReLU) of a latent cube ``[-1, 1]^d``."""
    acts: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "arctan": np.arctan,
        "abs": np.abs,
        "sigmoid": lambda h: 1.0 / (1.0 + np.exp(-h)),
        "gauss": lambda h: np.exp(-(h**2)),
        "relu": lambda h: np.maximum(h, 0.0),
    }
    return random_network(d, ambient, width, depth, gain, 0.5, acts[act])


# --- non-uniform densities ---------------------------------------------------------------------------------------


def von_mises_fisher_cap(d: int, kappa: float) -> Make:
    """A von Mises-Fisher distribution on :math:`S^d` of concentration ``kappa`` (Wood's rejection sampler)."""
    p = d + 1

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        b = (-2 * kappa + math.sqrt(4 * kappa**2 + (p - 1) ** 2)) / (p - 1)
        x0 = (1 - b) / (1 + b)
        c = kappa * x0 + (p - 1) * math.log(1 - x0**2)
        w = np.empty(0)
        while w.size < n:
            z = rng.beta((p - 1) / 2, (p - 1) / 2, 2 * n)
            cand = (1 - (1 + b) * z) / (1 - (1 - b) * z)
            ok = kappa * cand + (p - 1) * np.log(1 - x0 * cand) - c >= np.log(rng.random(2 * n))
            w = np.concatenate([w, cand[ok]])
        w = w[:n]
        v = sample_sphere(n, d - 1, rng)
        return np.concatenate([w[:, None], np.sqrt(1 - w**2)[:, None] * v], axis=1)

    return fixed(sample)


def unequal_mixture(d: int, components: int, spread: float) -> Make:
    """A mixture of ``components`` Gaussians with weights ``1, 1/2, ..., 1/components`` and seeded scales 0.3-1."""

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        centres = frng.standard_normal((components, d)) * spread
        scales = frng.uniform(0.3, 1.0, components)
        weights = 1.0 / np.arange(1, components + 1)
        weights /= weights.sum()

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            j = rng.choice(components, n, p=weights)
            return centres[j] + rng.standard_normal((n, d)) * scales[j][:, None]

        return sample

    return make


def triangular_cube(d: int) -> Make:
    """The cube ``[0, 1]^d`` with independent triangular coordinates (mode at a seeded corner-ish point)."""

    def make(seed: int) -> Latent:
        mode = np.random.default_rng(seed).uniform(0.0, 1.0, d)
        return lambda n, rng: rng.triangular(0.0, mode, 1.0, (n, d))

    return make


def generalised_gaussian(d: int, shape: float) -> Make:
    """Independent coordinates with density ``exp(-|x|^shape)`` (shape < 1: heavier than Laplace tails)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        g = rng.gamma(1.0 / shape, 1.0, (n, d)) ** (1.0 / shape)
        return g * rng.choice([-1.0, 1.0], (n, d))

    return fixed(sample)


def graded_von_mises_torus(kappas: tuple[float, ...]) -> Make:
    """The flat torus with independent von Mises angles of the given concentrations (non-uniform, graded)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        a = rng.vonmises(0.0, np.asarray(kappas), (n, len(kappas)))
        return np.concatenate([np.cos(a), np.sin(a)], axis=1)

    return fixed(sample)


# --- heavy tails and scale mixtures ------------------------------------------------------------------------------


def student_t(d: int, dof: float) -> Make:
    """Multivariate Student-t with ``dof`` degrees of freedom (a Gaussian over a chi-square scale)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, d)) * np.sqrt(dof / rng.chisquare(dof, n))[:, None]

    return fixed(sample)


def elliptical_laplace(d: int, condition: float = 1.0) -> Make:
    """``sqrt(E) A z`` with ``E ~ Exp(1)``, ``z ~ N(0, I)``, ``A`` seeded with axes from 1 to ``1 / condition``."""

    def make(seed: int) -> Latent:
        q = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))[0]
        a = q * np.geomspace(1.0, 1.0 / condition, d)[None, :]

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            return (rng.standard_normal((n, d)) * np.sqrt(rng.exponential(1.0, n))[:, None]) @ a.T

        return sample

    return make


def log_normal_radius(d: int, sigma: float) -> Make:
    """A uniform direction of :math:`S^{d-1}` times a log-normal radius of log-scale ``sigma``."""
    return fixed(lambda n, rng: sample_sphere(n, d - 1, rng) * np.exp(sigma * rng.standard_normal(n))[:, None])


def two_nested_gaussians(d: int, inner: float) -> Make:
    """Half ``N(0, I)``, half ``N(0, inner^2 I)`` with the same centre: two scales at once."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        s = np.where(rng.random(n) < 0.5, 1.0, inner)
        return rng.standard_normal((n, d)) * s[:, None]

    return fixed(sample)


# --- products ----------------------------------------------------------------------------------------------------


def product(*factors: Latent) -> Make:
    """The product of independent samplers (coordinates concatenated)."""
    return fixed(lambda n, rng: np.concatenate([f(n, rng) for f in factors], axis=1))


def _sphere(d: int, radius: float = 1.0) -> Latent:
    return lambda n, rng: radius * sample_sphere(n, d, rng)


def _rose(petals: int) -> Latent:
    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = math.pi * rng.random(n)
        r = np.cos(petals * t)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)

    return sample


def seventh_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the seventh split."""
    s = "seventh"
    gauss: Latent = lambda n, rng: rng.standard_normal((n, 3))  # noqa: E731
    return [
        # --- curves
        ("astroid + 5 %", "curve", 1, 10, 0.05, s, 801, astroid()),
        ("cycloid 3 arches + 1 %", "curve", 1, 12, 0.01, s, 802, cycloid(3)),
        ("Archimedean spiral 4 turns + 1 %", "curve", 1, 16, 0.01, s, 803, archimedean_spiral(4.0)),
        ("Clelia curve ratio 6 + 5 %", "curve", 1, 20, 0.05, s, 804, clelia(6.0)),
        ("(3, 5) curve on a flat torus + 1 %", "curve", 1, 24, 0.01, s, 805, flat_torus_curve(3, 5, 0.5)),
        ("trigonometric spline through 9 points of R^12 + 5 %", "curve", 1, 32, 0.05, s, 806, spline_curve(12, 9)),
        ("seven-lobed star", "curve", 1, 8, 0.0, s, 807, star(7, 0.4)),
        ("Cassini ovals + 1 %", "curve", 1, 12, 0.01, s, 808, cassini_ovals(1.0, 0.9)),
        ("sigmoid net d=1 -> R^28 + 5 %", "curve", 1, 28, 0.05, s, 809, act_net(1, 28, 24, 3, 4.0, "sigmoid")),
        # --- surfaces
        ("Roman surface + 5 %", "surface", 2, 12, 0.05, s, 811, roman_surface()),
        ("horn torus + 1 %", "surface", 2, 16, 0.01, s, 812, horn_torus()),
        ("hyperboloid of one sheet + 5 %", "surface", 2, 10, 0.05, s, 813, hyperboloid(1.5)),
        ("graph over a Gaussian plane + 1 %", "surface", 2, 20, 0.01, s, 814, gaussian_graph(0.6)),
        ("cross-cap", "surface", 2, 12, 0.0, s, 815, cross_cap()),
        ("elliptic cylinder 2:1 + 5 %", "surface", 2, 24, 0.05, s, 816, elliptic_cylinder(2.0, 1.0, 3.0)),
        # --- network images
        ("arctan net d=3 -> R^40 + 5 %", "network", 3, 40, 0.05, s, 821, act_net(3, 40, 40, 3, 2.5, "arctan")),
        ("abs net d=5 -> R^56", "network", 5, 56, 0.0, s, 822, act_net(5, 56, 56, 3, 1.5, "abs")),
        ("sigmoid net d=8 -> R^80 + 1 %", "network", 8, 80, 0.01, s, 823, act_net(8, 80, 80, 2, 3.0, "sigmoid")),
        (
            "Gaussian-activation net d=14 -> R^112",
            "network",
            14,
            112,
            0.0,
            s,
            824,
            act_net(14, 112, 112, 2, 1.0, "gauss"),
        ),
        ("ReLU net d=10 -> R^96 + 5 %", "network", 10, 96, 0.05, s, 825, act_net(10, 96, 96, 3, 1.5, "relu")),
        # --- non-uniform densities
        ("von Mises-Fisher cap on S^4, kappa 8", "density", 4, 20, 0.0, s, 831, von_mises_fisher_cap(4, 8.0)),
        ("unequal Gaussian mixture d=7, 6 comp. + 1 %", "density", 7, 32, 0.01, s, 832, unequal_mixture(7, 6, 2.0)),
        ("triangular cube d=6", "density", 6, 24, 0.0, s, 833, triangular_cube(6)),
        ("generalised Gaussian d=8, shape 0.7 + 1 %", "density", 8, 32, 0.01, s, 834, generalised_gaussian(8, 0.7)),
        ("graded von Mises torus d=4", "density", 4, 16, 0.0, s, 835, graded_von_mises_torus((0.5, 2.0, 4.0, 8.0))),
        # --- heavy tails and scale mixtures
        ("Student-t(4) d=18", "high_d", 18, 56, 0.0, s, 841, student_t(18, 4.0)),
        ("anisotropic elliptical Laplace d=16 + 1 %", "high_d", 16, 48, 0.01, s, 842, elliptical_laplace(16, 3.0)),
        ("log-normal radius d=12, sigma 0.4", "high_d", 12, 40, 0.0, s, 843, log_normal_radius(12, 0.4)),
        ("elliptical Laplace d=6 + 5 %", "density", 6, 24, 0.05, s, 844, elliptical_laplace(6)),
        ("two nested Gaussians d=16, scales 1 and 0.4", "high_d", 16, 48, 0.0, s, 845, two_nested_gaussians(16, 0.4)),
        # --- products
        (
            "three 2-spheres of radii 1, 0.5, 0.25 + 1 %",
            "product",
            6,
            24,
            0.01,
            s,
            851,
            product(_sphere(2), _sphere(2, 0.5), _sphere(2, 0.25)),
        ),
        ("rose with 3 petals x S^2 + 5 %", "product", 3, 16, 0.05, s, 852, product(_rose(3), _sphere(2))),
        (
            "Gaussian d=3 x T^3 + 1 %",
            "product",
            6,
            24,
            0.01,
            s,
            853,
            product(gauss, lambda n, rng: sample_torus(n, 3, rng)),
        ),
        ("disc x S^5", "product", 7, 32, 0.0, s, 854, product(lambda n, rng: sample_ball(n, 2, rng), _sphere(5))),
        (
            "B^4 x B^4 x B^4 + 5 %",
            "product",
            12,
            40,
            0.05,
            s,
            855,
            product(*[lambda n, rng: sample_ball(n, 4, rng)] * 3),
        ),
        # --- ordinary clouds
        ("Gaussian d=24 + 1 %", "high_d", 24, 80, 0.01, s, 861, fixed(lambda n, rng: rng.standard_normal((n, 24)))),
        ("sphere S^20", "high_d", 20, 64, 0.0, s, 862, fixed(lambda n, rng: sample_sphere(n, 20, rng))),
        ("cube [0,1]^6 + 5 %", "density", 6, 24, 0.05, s, 863, fixed(lambda n, rng: sample_cube(n, 6, rng))),
        ("ball B^12 + 1 %", "high_d", 12, 48, 0.01, s, 864, fixed(lambda n, rng: sample_ball(n, 12, rng))),
        ("torus T^8 + 5 %", "product", 8, 32, 0.05, s, 865, fixed(lambda n, rng: sample_torus(n, 8, rng))),
        ("cube [0,1]^16 + 1 %", "high_d", 16, 56, 0.01, s, 866, fixed(lambda n, rng: sample_cube(n, 16, rng))),
        ("sphere S^3 + 1 %", "product", 3, 12, 0.01, s, 867, fixed(lambda n, rng: sample_sphere(n, 3, rng))),
    ]


__all__ = ["seventh_specs"]
