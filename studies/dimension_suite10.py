r"""The tenth split of the trusted-``dim`` suite (issue #14): 43 clouds written before the tenth round of tuning.

The nine earlier splits (:mod:`studies.dimension_suite`'s tune / held-out / fresh halves and the third to ninth
splits of :mod:`studies.dimension_suite3` to :mod:`studies.dimension_suite9`, 318 clouds) were all opened while the
rule was tuned, so they are tuning data. This split (``split="tenth"``, seeds 11xx) was written and committed
*before* the tenth round of tuning and is measured once, after the rule is frozen. It follows the issue's family
list with shapes, densities and embeddings that no earlier split uses:

* curves: the cissoid of Diocles (a cusp, long arms), a right strophoid (a node and two asymptotic arms), the
  cochleoid (a spiral winding into the origin), a peanut-shaped hippopede, a limaçon with an inner loop and a
  wrapped-Laplace angle, Tschirnhausen's cubic (a loop and a node), a catenary with a logistic parameter, the image
  of an interval under a random gated (GLU) network;
* surfaces: Boy's surface (Apéry's parametrisation), a spindle torus (its tube passes through the axis), Kuen's
  surface, the figure-eight immersion of the Klein bottle, the tangent developable of a helix (a cuspidal edge),
  Catalan's minimal surface, a hyperboloid of two sheets (two components);
* network images: gated (d = 2), "snake" ``x + sin^2 x`` (d = 3), SIREN-like sine (d = 5), a deep narrow
  hard-swish network (d = 9, six layers of width 16), a residual tanh-shrink network (d = 16) and a Gaussian
  activation ``exp(-h^2)`` (d = 22);
* non-uniform densities: a Kent-like (FB5) density on :math:`S^2`, a Bingham-like density on :math:`S^3`, an
  asymmetric Dirichlet on the 5-simplex, log-logistic coordinates (d = 6), a chain of five Gaussians (d = 5), a
  two-mode von Mises 3-torus, Gaussians at the corners of a 3-cube (d = 8), hyperbolic-secant coordinates (d = 7);
* higher dimension: a Dirichlet(0.8) 12-simplex, hyperbolic-secant coordinates (d = 16), the Stiefel manifold
  :math:`V_3(R^7)` (d = 15), and ordinary clouds (a 26-d Gaussian, the 18-cube, :math:`S^{22}`, the 13-ball, the
  9-torus);
* products: the Klein bottle times a circle, the 3-simplex times :math:`S^2`, :math:`S^4 \times S^4 \times S^4`,
  Boy's surface times an interval, a cissoid times a Laplace plane, a Kent density on :math:`S^2` times a
  hippopede.

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`):
0 on 13 clouds, 1 % on 16, 5 % on 14. Truth = the manifold's dimension. Nothing here comes from a published
benchmark generator (scikit-dimension's ``BenchmarkManifolds``, DADApy's data sets).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lightning_repgap.manifolds import sample_ball, sample_cube, sample_sphere, sample_torus
from studies.dimension_suite3 import Latent, Make, fixed, klein_bottle
from studies.dimension_suite4 import dirichlet_simplex, random_network, stiefel
from studies.dimension_suite6 import ring_torus
from studies.dimension_suite7 import product
from studies.dimension_suite9 import residual_net

# --- curves ------------------------------------------------------------------------------------------------------


def _cissoid(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(-1.2, 1.2, n)
    return np.stack([2 * np.sin(t) ** 2, 2 * np.sin(t) ** 3 / np.cos(t)], axis=1)


def cissoid() -> Make:
    """The cissoid of Diocles ``(2 sin^2 t, 2 sin^3 t / cos t)``, ``t`` uniform in ``[-1.2, 1.2]`` (a cusp)."""
    return fixed(_cissoid)


def strophoid(extent: float) -> Make:
    """The right strophoid ``x = (t^2 - 1) / (t^2 + 1)``, ``y = t x``, ``t`` uniform in ``[-extent, extent]``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(-extent, extent, n)
        x = (t * t - 1) / (t * t + 1)
        return np.stack([x, t * x], axis=1)

    return fixed(sample)


def cochleoid(half_turns: float) -> Make:
    """The cochleoid ``r = sin(t) / t``, ``t`` uniform in ``[-pi half_turns, pi half_turns]`` (winds into 0)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = math.pi * half_turns * rng.uniform(-1, 1, n)
        r = np.sinc(t / math.pi)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)

    return fixed(sample)


def _hippopede(n: int, rng: np.random.Generator) -> np.ndarray:
    t = 2 * math.pi * rng.random(n)
    r = np.sqrt(4 * 0.9 * (1 - 0.9 * np.sin(t) ** 2))
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def hippopede() -> Make:
    """The hippopede ``r^2 = 4 b (a - b sin^2 t)`` with ``a = 1``, ``b = 0.9`` (a peanut), uniform in ``t``."""
    return fixed(_hippopede)


def laplace_limacon(scale: float) -> Make:
    """The limaçon ``r = 0.5 + cos t`` (an inner loop) with ``t`` a wrapped Laplace(0, ``scale``) angle."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.laplace(0.0, scale, n)
        r = 0.5 + np.cos(t)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)

    return fixed(sample)


def tschirnhausen(extent: float) -> Make:
    """Tschirnhausen's cubic ``(1 - 3 t^2, t (3 - t^2))``, ``t`` uniform in ``[-extent, extent]`` (loop, node)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(-extent, extent, n)
        return np.stack([1 - 3 * t * t, t * (3 - t * t)], axis=1)

    return fixed(sample)


def logistic_catenary(scale: float) -> Make:
    """The catenary ``(t, cosh t)`` with a logistic(0, ``scale``) parameter (sparse, steepening arms)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.logistic(0.0, scale, n)
        return np.stack([t, np.cosh(t)], axis=1)

    return fixed(sample)


# --- surfaces ----------------------------------------------------------------------------------------------------


def _boy(n: int, rng: np.random.Generator) -> np.ndarray:
    u = math.pi * (rng.random(n) - 0.5)
    v = math.pi * rng.random(n)
    den = 2 - math.sqrt(2) * np.sin(3 * u) * np.sin(2 * v)
    c2 = np.cos(v) ** 2
    x = math.sqrt(2) * c2 * np.cos(2 * u) + np.cos(u) * np.sin(2 * v)
    y = math.sqrt(2) * c2 * np.sin(2 * u) - np.sin(u) * np.sin(2 * v)
    return np.stack([x, y, 3 * c2], axis=1) / den[:, None]


def boy_surface() -> Make:
    """Boy's surface (an immersion of the projective plane) in Apéry's parametrisation, uniform in ``u, v``."""
    return fixed(_boy)


def kuen(extent: float, margin: float) -> Make:
    """Kuen's surface (constant negative curvature, two spikes), ``|u| <= extent``, ``margin <= v <= pi - margin``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(-extent, extent, n)
        v = rng.uniform(margin, math.pi - margin, n)
        den = 1 + (u * np.sin(v)) ** 2
        x = 2 * (np.cos(u) + u * np.sin(u)) * np.sin(v) / den
        y = 2 * (np.sin(u) - u * np.cos(u)) * np.sin(v) / den
        z = np.log(np.tan(v / 2)) + 2 * np.cos(v) / den
        return np.stack([x, y, z], axis=1)

    return fixed(sample)


def figure_eight_klein(radius: float) -> Make:
    """The figure-eight immersion of the Klein bottle in :math:`R^3` (a figure-eight swept with a half twist)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u, v = 2 * math.pi * rng.random((2, n))
        c, s = np.cos(u / 2), np.sin(u / 2)
        a = radius + c * np.sin(v) - s * np.sin(2 * v)
        return np.stack([a * np.cos(u), a * np.sin(u), s * np.sin(v) + c * np.sin(2 * v)], axis=1)

    return fixed(sample)


def helix_developable(turns: float, rise: float, length: float) -> Make:
    """The tangent developable of a helix: ``p(t) + s p'(t)``, ``s`` uniform in ``[0, length]`` (a cuspidal edge)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * turns * rng.random(n)
        s = length * rng.random(n)
        return np.stack([np.cos(t) - s * np.sin(t), np.sin(t) + s * np.cos(t), rise * (t + s)], axis=1)

    return fixed(sample)


def catalan(v_max: float) -> Make:
    """Catalan's minimal surface ``(u - sin u cosh v, 1 - cos u cosh v, 4 sin(u/2) sinh(v/2))``, two periods."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = 4 * math.pi * rng.random(n)
        v = rng.uniform(-v_max, v_max, n)
        return np.stack(
            [u - np.sin(u) * np.cosh(v), 1 - np.cos(u) * np.cosh(v), 4 * np.sin(u / 2) * np.sinh(v / 2)], axis=1
        )

    return fixed(sample)


def two_sheet_hyperboloid(a_max: float) -> Make:
    """The hyperboloid of two sheets ``z^2 - x^2 - y^2 = 1``, ``(sinh a cos t, sinh a sin t, +-cosh a)``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        a = a_max * rng.random(n)
        t = 2 * math.pi * rng.random(n)
        sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
        return np.stack([np.sinh(a) * np.cos(t), np.sinh(a) * np.sin(t), sign * np.cosh(a)], axis=1)

    return fixed(sample)


# --- networks ----------------------------------------------------------------------------------------------------

_ACTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "snake": lambda h: h + np.sin(h) ** 2,
    "siren": lambda h: np.sin(2.0 * h),
    "hardswish": lambda h: h * np.clip(h + 3, 0.0, 6.0) / 6,
    "tanhshrink": lambda h: h - np.tanh(h),
    "gaussian": lambda h: np.exp(-h * h),
}


def act_net(d: int, ambient: int, width: int, depth: int, gain: float, act: str) -> Make:
    """A random ``depth``-layer network (snake, sine, hard swish, Gaussian) of a latent cube ``[-1, 1]^d``."""
    return random_network(d, ambient, width, depth, gain, 0.5, _ACTS[act])


def gated_net(d: int, ambient: int, width: int, depth: int, gain: float) -> Make:
    """``depth - 1`` gated (GLU) layers ``h <- (h A + a) * sigmoid(h B + b)``, then a linear read-out to ``ambient``.

    The latent ``x`` is uniform in ``[-1, 1]^d``; weights N(0, gain^2 / fan-in), biases N(0, 0.25), from the seed.
    """

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        layers = []
        for i in [d] + [width] * (depth - 2):
            value, gate = (frng.standard_normal((i, width)) * gain / math.sqrt(i) for _ in range(2))
            layers.append((value, frng.standard_normal(width) * 0.5, gate, frng.standard_normal(width) * 0.5))
        out = frng.standard_normal((width, ambient)) / math.sqrt(width)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            h = rng.uniform(-1, 1, (n, d))
            for a, ab, b, bb in layers:
                h = (h @ a + ab) / (1 + np.exp(-(h @ b + bb)))
            return h @ out

        return sample

    return make


# --- non-uniform densities ---------------------------------------------------------------------------------------


def _rejection(n: int, rng: np.random.Generator, d: int, log_accept: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``n`` points of the unit ``d``-sphere with density proportional to ``exp(log_accept)`` (``log_accept <= 0``)."""
    out = np.empty((0, d + 1))
    while len(out) < n:
        x = sample_sphere(8 * n, d, rng)
        out = np.concatenate([out, x[np.log(rng.random(8 * n)) < log_accept(x)]])
    return out[:n]


def _kent(n: int, rng: np.random.Generator) -> np.ndarray:
    kappa, beta = 6.0, 2.5
    return _rejection(n, rng, 2, lambda x: kappa * (x[:, 0] - 1) + beta * (x[:, 1] ** 2 - x[:, 2] ** 2 - 1))


def kent_sphere() -> Make:
    """A Kent-like (FB5) density ``exp(6 x_0 + 2.5 (x_1^2 - x_2^2))`` on :math:`S^2` (an oval cap), by rejection."""
    return fixed(_kent)


def bingham_sphere(concentrations: tuple[float, ...]) -> Make:
    """A Bingham-like density ``exp(-sum_i c_i x_i^2)`` on the unit sphere of ``len(concentrations)`` coordinates."""
    c = np.asarray(concentrations)
    return fixed(lambda n, rng: _rejection(n, rng, len(c) - 1, lambda x: -(x * x) @ c))


def asymmetric_dirichlet(alpha: tuple[float, ...]) -> Make:
    """Dirichlet(``alpha``) on the ``len(alpha) - 1``-simplex (corner spikes where ``alpha < 1``, bumps elsewhere)."""
    return fixed(lambda n, rng: rng.dirichlet(np.asarray(alpha), n))


def log_logistic(d: int, shape: float) -> Make:
    """Independent log-logistic(``shape``) coordinates ``(U / (1 - U))^(1 / shape)`` (median 1, a heavy right tail)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.random((n, d))
        return (u / (1 - u)) ** (1 / shape)

    return fixed(sample)


def hyperbolic_secant(d: int) -> Make:
    """Independent hyperbolic-secant coordinates ``(2 / pi) log tan(pi U / 2)`` (unit variance, heavier than normal)."""
    return fixed(lambda n, rng: (2 / math.pi) * np.log(np.tan(0.5 * math.pi * rng.random((n, d)))))


def gaussian_chain(d: int, components: int, spacing: float) -> Make:
    """Unit Gaussians centred ``spacing`` apart along the first axis of ``d`` coordinates (a chain of blobs)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        x = rng.standard_normal((n, d))
        x[:, 0] += spacing * (rng.integers(0, components, n) - (components - 1) / 2)
        return x

    return fixed(sample)


def two_mode_von_mises_torus(d: int, kappa: float) -> Make:
    """The flat ``d``-torus: half the points von Mises(``kappa``) around angle 0, half around ``(pi/2, pi, ...)``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        mode = np.where(rng.random(n) < 0.5, 0.0, 1.0)[:, None] * (0.5 * math.pi * np.arange(1, d + 1))
        a = mode + rng.vonmises(0.0, kappa, (n, d))
        return np.concatenate([np.cos(a), np.sin(a)], axis=1)

    return fixed(sample)


def cube_corner_mixture(d: int, corners_dim: int, scale: float) -> Make:
    """Gaussians of width ``scale`` at the corners of the unit ``corners_dim``-cube (first coordinates of ``d``)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        x = scale * rng.standard_normal((n, d))
        x[:, :corners_dim] += rng.integers(0, 2, (n, corners_dim))
        return x

    return fixed(sample)


def _simplex3(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.dirichlet(np.ones(4), n)


def _circle(n: int, rng: np.random.Generator) -> np.ndarray:
    return sample_sphere(n, 1, rng)


def tenth_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the tenth split."""
    s = "tenth"
    klein = klein_bottle(2.0, 0.8)(0)
    return [
        # --- curves
        ("cissoid of Diocles + 1 %", "curve", 1, 10, 0.01, s, 1101, cissoid()),
        ("right strophoid, t in [-2.5, 2.5]", "curve", 1, 8, 0.0, s, 1102, strophoid(2.5)),
        ("cochleoid, 7 half-turns + 5 %", "curve", 1, 12, 0.05, s, 1103, cochleoid(3.5)),
        ("hippopede a=1, b=0.9 + 1 %", "curve", 1, 14, 0.01, s, 1104, hippopede()),
        ("limaçon with inner loop, Laplace angle", "curve", 1, 6, 0.0, s, 1105, laplace_limacon(1.2)),
        ("gated net d=1 -> R^24 + 5 %", "curve", 1, 24, 0.05, s, 1106, gated_net(1, 24, 24, 3, 2.5)),
        ("Tschirnhausen cubic + 1 %", "curve", 1, 10, 0.01, s, 1107, tschirnhausen(2.2)),
        ("catenary, logistic(0.4) parameter", "curve", 1, 8, 0.0, s, 1108, logistic_catenary(0.4)),
        # --- surfaces
        ("Boy's surface + 1 %", "surface", 2, 12, 0.01, s, 1111, boy_surface()),
        ("spindle torus 0.5:1 + 5 %", "surface", 2, 16, 0.05, s, 1112, ring_torus(0.5, 1.0)),
        ("Kuen surface", "surface", 2, 10, 0.0, s, 1113, kuen(4.5, 0.25)),
        ("figure-eight Klein bottle + 1 %", "surface", 2, 12, 0.01, s, 1114, figure_eight_klein(2.0)),
        ("tangent developable of a helix + 5 %", "surface", 2, 14, 0.05, s, 1115, helix_developable(2.0, 0.3, 1.5)),
        ("Catalan's surface", "surface", 2, 9, 0.0, s, 1116, catalan(1.2)),
        ("hyperboloid of two sheets + 1 %", "surface", 2, 15, 0.01, s, 1117, two_sheet_hyperboloid(1.3)),
        # --- network images
        ("gated net d=2 -> R^32 + 1 %", "network", 2, 32, 0.01, s, 1121, gated_net(2, 32, 32, 3, 2.0)),
        ("snake net d=3 -> R^40", "network", 3, 40, 0.0, s, 1122, act_net(3, 40, 40, 3, 2.0, "snake")),
        ("SIREN-like net d=5 -> R^50 + 5 %", "network", 5, 50, 0.05, s, 1123, act_net(5, 50, 50, 3, 1.5, "siren")),
        (
            "deep narrow hard-swish net d=9 -> R^72 + 1 %",
            "network",
            9,
            72,
            0.01,
            s,
            1124,
            act_net(9, 72, 16, 6, 1.6, "hardswish"),
        ),
        (
            "residual tanh-shrink net d=16 -> R^128 + 5 %",
            "network",
            16,
            128,
            0.05,
            s,
            1125,
            residual_net(16, 128, 96, 2, 1.0, _ACTS["tanhshrink"]),
        ),
        (
            "Gaussian-activation net d=22 -> R^160",
            "network",
            22,
            160,
            0.0,
            s,
            1126,
            act_net(22, 160, 128, 2, 1.0, "gaussian"),
        ),
        # --- non-uniform densities
        ("Kent density on S^2 + 1 %", "density", 2, 12, 0.01, s, 1131, kent_sphere()),
        ("Bingham density on S^3, (0, 2, 6, 12)", "density", 3, 16, 0.0, s, 1132, bingham_sphere((0, 2, 6, 12))),
        (
            "Dirichlet(3, 1, 0.5, 0.5, 2, 1) simplex d=5 + 5 %",
            "density",
            5,
            20,
            0.05,
            s,
            1133,
            asymmetric_dirichlet((3.0, 1.0, 0.5, 0.5, 2.0, 1.0)),
        ),
        ("log-logistic(3) coordinates d=6 + 1 %", "density", 6, 24, 0.01, s, 1134, log_logistic(6, 3.0)),
        ("chain of five Gaussians d=5 + 5 %", "density", 5, 20, 0.05, s, 1135, gaussian_chain(5, 5, 3.0)),
        (
            "two-mode von Mises 3-torus, kappa 5 + 1 %",
            "density",
            3,
            16,
            0.01,
            s,
            1136,
            two_mode_von_mises_torus(3, 5.0),
        ),
        ("Gaussians at 3-cube corners d=8", "density", 8, 28, 0.0, s, 1137, cube_corner_mixture(8, 3, 0.25)),
        ("hyperbolic-secant coordinates d=7 + 5 %", "density", 7, 28, 0.05, s, 1138, hyperbolic_secant(7)),
        # --- higher dimension
        ("Dirichlet(0.8) simplex d=12 + 5 %", "high_d", 12, 40, 0.05, s, 1141, dirichlet_simplex(12, 0.8)),
        ("hyperbolic-secant coordinates d=16 + 1 %", "high_d", 16, 48, 0.01, s, 1142, hyperbolic_secant(16)),
        ("Stiefel V_3(R^7)", "high_d", 15, 48, 0.0, s, 1143, stiefel(7, 3)),
        ("Gaussian d=26 + 1 %", "high_d", 26, 80, 0.01, s, 1144, fixed(lambda n, rng: rng.standard_normal((n, 26)))),
        ("cube [0,1]^18 + 5 %", "high_d", 18, 56, 0.05, s, 1145, fixed(lambda n, rng: sample_cube(n, 18, rng))),
        ("sphere S^22", "high_d", 22, 68, 0.0, s, 1146, fixed(lambda n, rng: sample_sphere(n, 22, rng))),
        ("ball B^13 + 1 %", "high_d", 13, 40, 0.01, s, 1147, fixed(lambda n, rng: sample_ball(n, 13, rng))),
        ("torus T^9 + 5 %", "product", 9, 36, 0.05, s, 1148, fixed(lambda n, rng: sample_torus(n, 9, rng))),
        # --- products
        ("Klein bottle x circle + 1 %", "product", 3, 16, 0.01, s, 1151, product(klein, _circle)),
        (
            "3-simplex x S^2",
            "product",
            5,
            20,
            0.0,
            s,
            1152,
            product(_simplex3, lambda n, rng: sample_sphere(n, 2, rng)),
        ),
        (
            "S^4 x S^4 x S^4 + 5 %",
            "product",
            12,
            40,
            0.05,
            s,
            1153,
            product(*[lambda n, rng: sample_sphere(n, 4, rng)] * 3),
        ),
        ("Boy's surface x [0,1]", "product", 3, 12, 0.0, s, 1154, product(_boy, lambda n, rng: rng.random((n, 1)))),
        (
            "cissoid x Laplace plane + 1 %",
            "product",
            3,
            12,
            0.01,
            s,
            1155,
            product(_cissoid, lambda n, rng: rng.laplace(0.0, 1.0, (n, 2))),
        ),
        ("Kent S^2 x hippopede + 5 %", "product", 3, 14, 0.05, s, 1156, product(_kent, _hippopede)),
    ]


__all__ = ["tenth_specs"]
