r"""The third split of the trusted-``dim`` suite (issue #14): 28 clouds written before the last round of tuning.

The first two halves and the first fresh split of :mod:`studies.dimension_suite` were all opened while the rule
was tuned, so they are tuning data. This split (``split="third"``, seeds 4xx) was written and committed *before*
that tuning and is measured once, by ``python -m studies.dimension_heldout --splits third``, after the rule is
frozen. Its shapes, densities and embeddings are new, not reparameterisations of the earlier ones:

* curves: a torus knot sampled with a non-uniform (beta) parameter, a Lissajous curve, a spherical spiral
  (loxodrome), the image of an interval under a leaky-ReLU network;
* surfaces: a Möbius strip (uniform in its parameters, so not in area), an Enneper patch, a Klein bottle in
  :math:`R^4`, a saddle over a disc;
* densities: a von Mises–Fisher-like (projected Gaussian) 3-sphere, a corner-heavy beta cube, a wide von Mises
  8-torus, a Student-t cloud, a twelve-dimensional Gaussian mixture, a ball with a radial beta density;
* embeddings: random sine, softplus and residual-tanh networks;
* products: circle x beta interval x 2-sphere, 2-torus x 3-ball, 5-sphere x 5-sphere;
* high dimension: a 28-ball, a 30-sphere, a beta(2, 2) 14-cube, a 22-torus, an 18-dimensional Gaussian.

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`):
0 on 15 clouds, 1 % on 9, 5 % on 4. Truth = the manifold's dimension. Nothing here comes from a published benchmark
generator.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from lightning_repgap.manifolds import sample_ball, sample_sphere, sample_torus

Latent = Callable[[int, np.random.Generator], np.ndarray]
Make = Callable[[int], Latent]


def fixed(fn: Latent) -> Make:
    """A sampler without seeded parameters (shared by the later suites' generators)."""
    return lambda seed: fn


def torus_knot(p: int, q: int, a: float, b: float) -> Make:
    """The ``(p, q)`` torus knot (radii 2 and 1), parameter drawn from Beta(a, b): non-uniform along the curve."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.beta(a, b, n)
        r = 2 + np.cos(q * t)
        return np.stack([r * np.cos(p * t), r * np.sin(p * t), np.sin(q * t)], axis=1)

    return fixed(sample)


def lissajous(fx: int, fy: int, fz: int) -> Make:
    """A closed Lissajous curve with random phases (seeded)."""

    def make(seed: int) -> Latent:
        ph = np.random.default_rng(seed).uniform(0, 2 * math.pi, 3)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            t = 2 * math.pi * rng.random(n)
            return np.stack([np.sin(fx * t + ph[0]), np.sin(fy * t + ph[1]), np.sin(fz * t + ph[2])], axis=1)

        return sample

    return make


def loxodrome(turns: float) -> Make:
    """A spherical spiral from pole to pole with ``turns`` turns, uniform in the polar parameter."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        s = rng.uniform(-1.0, 1.0, n)
        th = np.arccos(s)
        ph = 2 * math.pi * turns * (s + 1) / 2
        return np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=1)

    return fixed(sample)


def mobius(width: float) -> Make:
    """A Möbius strip (radius 1, half-width ``width``), uniform in ``(u, v)`` (not in area)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = 2 * math.pi * rng.random(n)
        v = width * rng.uniform(-1, 1, n)
        r = 1 + v * np.cos(u / 2)
        return np.stack([r * np.cos(u), r * np.sin(u), v * np.sin(u / 2)], axis=1)

    return fixed(sample)


def enneper(radius: float) -> Make:
    """Enneper's minimal surface over the disc of ``radius`` (uniform in the parameter disc)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        uv = radius * sample_ball(n, 2, rng)
        u, v = uv[:, 0], uv[:, 1]
        return np.stack([u - u**3 / 3 + u * v * v, v - v**3 / 3 + v * u * u, u * u - v * v], axis=1)

    return fixed(sample)


def klein_bottle(big: float, small: float) -> Make:
    """The Klein bottle embedded in :math:`R^4`, uniform in its two angles."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u, v = 2 * math.pi * rng.random(n), 2 * math.pi * rng.random(n)
        r = big + small * np.cos(v)
        return np.stack(
            [r * np.cos(u), r * np.sin(u), small * np.sin(v) * np.cos(u / 2), small * np.sin(v) * np.sin(u / 2)],
            axis=1,
        )

    return fixed(sample)


def saddle(curvature: float) -> Make:
    """The saddle ``z = c (x^2 - y^2)`` over the unit disc."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        xy = sample_ball(n, 2, rng)
        return np.concatenate([xy, curvature * (xy[:, :1] ** 2 - xy[:, 1:] ** 2)], axis=1)

    return fixed(sample)


def projected_gaussian_sphere(d: int, shift: float) -> Make:
    """A ``d``-sphere with a one-sided density: a Gaussian shifted by ``shift`` along a seeded axis, normalised."""

    def make(seed: int) -> Latent:
        axis = np.random.default_rng(seed).standard_normal(d + 1)
        axis *= shift / np.linalg.norm(axis)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            g = rng.standard_normal((n, d + 1)) + axis
            return g / np.linalg.norm(g, axis=1, keepdims=True)

        return sample

    return make


def beta_cube(d: int, a: float, b: float) -> Make:
    """Independent Beta(a, b) coordinates."""
    return fixed(lambda n, rng: rng.beta(a, b, (n, d)))


def wide_von_mises_torus(d: int, kappa: float, radii: tuple[float, float]) -> Make:
    """A ``d``-torus with circle radii spread over ``radii`` (seeded) and von Mises(``kappa``) angles."""

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        mu = frng.uniform(-math.pi, math.pi, d)
        rad = np.exp(frng.uniform(math.log(radii[0]), math.log(radii[1]), d))

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            th = rng.vonmises(mu, kappa, (n, d))
            return np.concatenate([rad * np.cos(th), rad * np.sin(th)], axis=1)

        return sample

    return make


def student_t(d: int, dof: float) -> Make:
    """Independent Student-t coordinates (heavy tails)."""
    return fixed(lambda n, rng: rng.standard_t(dof, (n, d)))


def anisotropic_mixture(d: int, components: int, spread: float) -> Make:
    """A mixture of Gaussians with random full covariances (condition number up to ~30) and centres."""

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        centres = frng.standard_normal((components, d)) * spread
        chols = [
            np.linalg.qr(frng.standard_normal((d, d)))[0] * np.exp(frng.uniform(-1.7, 0.0, d))
            for _ in range(components)
        ]
        weights = frng.dirichlet(np.full(components, 1.5))

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            c = rng.choice(components, size=n, p=weights)
            z = rng.standard_normal((n, d))
            out = np.empty((n, d))
            for j in range(components):
                sel = c == j
                out[sel] = centres[j] + z[sel] @ chols[j].T
            return out

        return sample

    return make


def radial_beta_ball(d: int, a: float, b: float) -> Make:
    """Directions uniform, radius Beta(a, b): a ball whose density piles up at the centre or the rim."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        return sample_sphere(n, d - 1, rng) * rng.beta(a, b, n)[:, None]

    return fixed(sample)


def net(d: int, ambient: int, width: int, depth: int, gain: float, act: str, latent: str) -> Make:
    """A random ``depth``-layer network with activation ``act`` (sine, softplus, leaky, residual tanh)."""

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        dims = [d] + [width] * (depth - 1) + [ambient]
        ws = [frng.standard_normal((i, o)) * gain / math.sqrt(i) for i, o in itertools.pairwise(dims)]
        bs = [frng.standard_normal(o) * 0.5 for o in dims[1:]]

        def f(h: np.ndarray) -> np.ndarray:
            if act == "sin":
                return np.sin(h)
            if act == "softplus":
                return np.logaddexp(0.0, h)
            if act == "leaky":
                return np.where(h > 0, h, 0.2 * h)
            return np.tanh(h)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            h = rng.uniform(-1, 1, (n, d)) if latent == "cube" else rng.standard_normal((n, d))
            for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
                z = h @ w + b
                if i == len(ws) - 1:
                    h = z
                elif act == "restanh" and z.shape == h.shape:
                    h = h + np.tanh(z)
                else:
                    h = f(z)
            return h

        return sample

    return make


def product(*factors: Make) -> Make:
    """Independent samples of each factor, concatenated."""

    def make(seed: int) -> Latent:
        samplers = [fac(seed + 37 * i) for i, fac in enumerate(factors)]
        return lambda n, rng: np.concatenate([s(n, rng) for s in samplers], axis=1)

    return make


def sphere(d: int, radius: float = 1.0) -> Make:
    """Uniform on the ``d``-sphere."""
    return fixed(lambda n, rng: radius * sample_sphere(n, d, rng))


def ball(d: int, radius: float = 1.0) -> Make:
    """Uniform in the ``d``-ball."""
    return fixed(lambda n, rng: radius * sample_ball(n, d, rng))


def torus(d: int) -> Make:
    """Uniform on the flat ``d``-torus."""
    return fixed(lambda n, rng: sample_torus(n, d, rng))


def gaussian(d: int) -> Make:
    """The standard Gaussian."""
    return fixed(lambda n, rng: rng.standard_normal((n, d)))


def third_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the third split."""
    s = "third"
    return [
        ("torus knot (2,3), beta(2,2) parameter", "curve", 1, 20, 0.0, s, 401, torus_knot(2, 3, 2.0, 2.0)),
        ("Lissajous 3:4:5 + 1 %", "curve", 1, 16, 0.01, s, 402, lissajous(3, 4, 5)),
        ("loxodrome 7 turns + 5 %", "curve", 1, 24, 0.05, s, 403, loxodrome(7.0)),
        ("leaky net d=1 -> R^32 + 5 %", "curve", 1, 32, 0.05, s, 404, net(1, 32, 32, 3, 2.5, "leaky", "cube")),
        ("Moebius strip", "surface", 2, 18, 0.0, s, 411, mobius(0.4)),
        ("Enneper patch r=1.5 + 1 %", "surface", 2, 24, 0.01, s, 412, enneper(1.5)),
        ("Klein bottle in R^4 + 5 %", "surface", 2, 20, 0.05, s, 413, klein_bottle(2.0, 0.8)),
        ("saddle c=2.5", "surface", 2, 12, 0.0, s, 414, saddle(2.5)),
        ("projected-Gaussian S^3 + 1 %", "density", 3, 20, 0.01, s, 421, projected_gaussian_sphere(3, 1.5)),
        ("beta(0.3, 1) cube d=7", "density", 7, 28, 0.0, s, 422, beta_cube(7, 0.3, 1.0)),
        (
            "wide von Mises torus d=8, k=0.7 + 1 %",
            "density",
            8,
            40,
            0.01,
            s,
            423,
            wide_von_mises_torus(8, 0.7, (0.4, 2.0)),
        ),
        ("Student-t(3) d=4", "density", 4, 20, 0.0, s, 424, student_t(4, 3.0)),
        ("anisotropic mixture d=12, 8 comp.", "density", 12, 64, 0.0, s, 425, anisotropic_mixture(12, 8, 1.5)),
        ("radial beta(0.5, 1) ball d=5", "density", 5, 24, 0.0, s, 426, radial_beta_ball(5, 0.5, 1.0)),
        ("sine net d=3 -> R^40", "network", 3, 40, 0.0, s, 431, net(3, 40, 40, 3, 1.5, "sin", "cube")),
        ("softplus net d=6 -> R^80 + 1 %", "network", 6, 80, 0.01, s, 432, net(6, 80, 64, 3, 1.8, "softplus", "gauss")),
        (
            "residual tanh net d=14 -> R^128",
            "network",
            14,
            128,
            0.0,
            s,
            433,
            net(14, 128, 14, 4, 1.2, "restanh", "cube"),
        ),
        ("sine net d=20 -> R^160", "network", 20, 160, 0.0, s, 434, net(20, 160, 96, 2, 1.0, "sin", "gauss")),
        (
            "S^1 x beta interval x S^2 + 5 %",
            "product",
            4,
            24,
            0.05,
            s,
            441,
            product(sphere(1), beta_cube(1, 0.5, 2.0), sphere(2, 0.6)),
        ),
        ("T^2 x B^3", "product", 5, 32, 0.0, s, 442, product(torus(2), ball(3, 0.3))),
        ("S^5 x S^5 + 1 %", "product", 10, 48, 0.01, s, 443, product(sphere(5), sphere(5, 0.5))),
        ("S^1 x Moebius", "product", 3, 24, 0.0, s, 444, product(sphere(1, 0.5), mobius(0.3))),
        ("ball B^28", "high_d", 28, 96, 0.0, s, 451, ball(28)),
        ("sphere S^30 + 1 %", "high_d", 30, 128, 0.01, s, 452, sphere(30)),
        ("beta(2, 2) cube d=14", "high_d", 14, 56, 0.0, s, 453, beta_cube(14, 2.0, 2.0)),
        ("torus T^22", "high_d", 22, 96, 0.0, s, 454, torus(22)),
        ("Gaussian d=18 + 1 %", "high_d", 18, 72, 0.01, s, 455, gaussian(18)),
        (
            "Lissajous 2:3:7 x Gaussian d=2 + 1 %",
            "product",
            3,
            24,
            0.01,
            s,
            456,
            product(lissajous(2, 3, 7), gaussian(2)),
        ),
    ]


__all__ = ["third_specs"]
