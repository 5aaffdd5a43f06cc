r"""The sixth split of the trusted-``dim`` suite (issue #14): 33 clouds written before the sixth round of tuning.

The five earlier splits (:mod:`studies.dimension_suite`'s tune / held-out / fresh halves and the third, fourth and
fifth splits of :mod:`studies.dimension_suite3`, :mod:`studies.dimension_suite4` and :mod:`studies.dimension_suite5`,
158 clouds) were all opened while the rule was tuned, so they are tuning data. This split (``split="sixth"``, seeds
7xx) was written and committed *before* the sixth round of tuning and is measured once, by
``python -m studies.dimension_heldout --splits sixth``, after the rule is frozen. It is weighted toward the failure
modes the fifth split showed (noisy curves and surfaces at 1 % and 5 %, heavy-tailed and scale-mixture densities
of dimension 10-20, curved manifolds, nonlinear network images, products), with a few ordinary clouds so that it
stays a fair test. Its shapes, densities and embeddings are new:

* noisy curves: a five-petal rose, a logarithmic spiral, a hypotrochoid, a "crown" (a circle with a vertical
  wave), the lemniscate of Bernoulli, a wobbling great circle normalised onto :math:`S^7`, and the images of an
  interval under random softsign and ReLU networks;
* noisy surfaces: a ring torus (3 : 1), an ellipsoid with axes 1, 2, 4, an egg-crate graph, a double cone;
* network images: softsign (d = 2), ReLU (d = 6 and 18), mish (d = 4) and SELU (d = 12) networks;
* heavy tails and scale mixtures, d = 10-20: Student-t with 2.5 and 5 degrees of freedom, a two-decade Gaussian
  scale mixture, the elliptical (multivariate) Laplace, a Pareto-radius cloud, a three-scale Gaussian mixture;
* curved and non-uniform: Wishart-distributed 3 x 3 positive-definite matrices (d = 6), the quadratic (Veronese)
  image of :math:`S^5` (the real projective space, d = 5);
* products: three circles of radii 1, 0.3 and 0.1, a flat torus of radii 1 and 0.1, :math:`S^2` times a
  Student-t plane, :math:`S^4 \times S^1`;
* ordinary clouds: a 9-sphere, a 3-d Gaussian, the 12-cube, a flat 5-torus.

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`):
0 on 13 clouds, 1 % on 11, 5 % on 9. Truth = the manifold's dimension. Nothing here comes from a published
benchmark generator (scikit-dimension's ``BenchmarkManifolds``, DADApy's data sets).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lightning_repgap.manifolds import sample_cube, sample_sphere, sample_torus
from studies.dimension_suite3 import Latent, Make, fixed
from studies.dimension_suite4 import random_network

# --- curves ------------------------------------------------------------------------------------------------------


def rose(petals: int) -> Make:
    """The rose ``r = cos(petals * t)`` (odd ``petals``: one pass over ``t`` in ``[0, pi)``), uniform in ``t``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = math.pi * rng.random(n)
        r = np.cos(petals * t)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)

    return fixed(sample)


def log_spiral(turns: float, growth: float) -> Make:
    """The logarithmic spiral ``r = exp(growth * t)`` over ``turns`` turns, uniform in ``t`` (dense near the centre)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * turns * rng.random(n)
        r = np.exp(growth * t)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)

    return fixed(sample)


def hypotrochoid(big: int, small: int, offset: float) -> Make:
    """The hypotrochoid of a circle of radius ``small`` rolling inside one of radius ``big`` (pen at ``offset``)."""
    ratio = (big - small) / small
    period = 2 * math.pi * small / math.gcd(big, small)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = period * rng.random(n)
        x = (big - small) * np.cos(t) + offset * np.cos(ratio * t)
        y = (big - small) * np.sin(t) - offset * np.sin(ratio * t)
        return np.stack([x, y], axis=1)

    return fixed(sample)


def crown(waves: int, height: float) -> Make:
    """A circle with a vertical wave, ``(cos t, sin t, height * sin(waves * t))``, uniform in ``t``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.random(n)
        return np.stack([np.cos(t), np.sin(t), height * np.sin(waves * t)], axis=1)

    return fixed(sample)


def lemniscate() -> Make:
    """The lemniscate of Bernoulli ``(cos t, sin t cos t) / (1 + sin^2 t)``, uniform in ``t``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.random(n)
        s = 1 + np.sin(t) ** 2
        return np.stack([np.cos(t) / s, np.sin(t) * np.cos(t) / s], axis=1)

    return fixed(sample)


def sphere_wobble(ambient: int, modes: int, amplitude: float) -> Make:
    """A great circle plus seeded harmonics ``amplitude / k`` in the other coordinates, normalised onto the sphere."""

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        k = np.arange(2, modes + 2)
        coef = frng.standard_normal((2, modes, ambient - 2)) * (amplitude / k)[None, :, None]

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            t = 2 * math.pi * rng.random(n)
            rest = np.cos(np.outer(t, k)) @ coef[0] + np.sin(np.outer(t, k)) @ coef[1]
            x = np.concatenate([np.cos(t)[:, None], np.sin(t)[:, None], rest], axis=1)
            return x / np.linalg.norm(x, axis=1, keepdims=True)

        return sample

    return make


# --- surfaces ----------------------------------------------------------------------------------------------------


def ring_torus(big: float, small: float) -> Make:
    """The torus of revolution with radii ``big`` and ``small``, uniform in its two angles (not in area)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u, v = 2 * math.pi * rng.random((2, n))
        r = big + small * np.cos(v)
        return np.stack([r * np.cos(u), r * np.sin(u), small * np.sin(v)], axis=1)

    return fixed(sample)


def ellipsoid_surface(axes: tuple[float, float, float]) -> Make:
    """The ellipsoid surface with semi-axes ``axes``: a uniform point of :math:`S^2` stretched along the axes."""
    scale = np.asarray(axes)
    return fixed(lambda n, rng: sample_sphere(n, 2, rng) * scale)


def egg_crate(freq: float, amp: float) -> Make:
    """The graph ``z = amp * sin(freq x) sin(freq y)`` over ``[-1, 1]^2``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        xy = rng.uniform(-1.0, 1.0, (n, 2))
        z = amp * np.sin(freq * xy[:, 0]) * np.sin(freq * xy[:, 1])
        return np.concatenate([xy, z[:, None]], axis=1)

    return fixed(sample)


def double_cone(height: float) -> Make:
    """The double cone ``x^2 + y^2 = z^2``, ``|z| <= height``, uniform in area (a singular apex)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        z = height * np.sqrt(rng.random(n)) * rng.choice([-1.0, 1.0], n)
        a = 2 * math.pi * rng.random(n)
        return np.stack([np.abs(z) * np.cos(a), np.abs(z) * np.sin(a), z], axis=1)

    return fixed(sample)


# --- networks ----------------------------------------------------------------------------------------------------


def _selu(h: np.ndarray) -> np.ndarray:
    return 1.0507 * np.where(h > 0, h, 1.67326 * np.expm1(np.minimum(h, 0.0)))


def act_net(d: int, ambient: int, width: int, depth: int, gain: float, act: str) -> Make:
    """A random ``depth``-layer network (softsign, ReLU, mish or SELU) of a latent cube ``[-1, 1]^d``."""
    acts: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "softsign": lambda h: h / (1 + np.abs(h)),
        "relu": lambda h: np.maximum(h, 0.0),
        "mish": lambda h: h * np.tanh(np.logaddexp(0.0, h)),
        "selu": _selu,
    }
    return random_network(d, ambient, width, depth, gain, 0.3, acts[act])


# --- heavy tails and scale mixtures ------------------------------------------------------------------------------


def student_t(d: int, dof: float, condition: float = 1.0) -> Make:
    """Multivariate Student-t (a Gaussian over a chi-square scale), axes from 1 to ``1 / condition`` (seeded)."""

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        q = np.linalg.qr(frng.standard_normal((d, d)))[0]
        a = q * np.geomspace(1.0, 1.0 / condition, d)[None, :]

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            w = np.sqrt(dof / rng.chisquare(dof, n))[:, None]
            return (rng.standard_normal((n, d)) * w) @ a.T

        return sample

    return make


def scale_mixture(d: int, decades: float) -> Make:
    """``s z``, ``z ~ N(0, I)``, ``log10 s`` Gaussian with standard deviation ``decades / 4``: many scales at once."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        s = 10 ** (rng.standard_normal(n) * decades / 4)
        return rng.standard_normal((n, d)) * s[:, None]

    return fixed(sample)


def elliptical_laplace(d: int) -> Make:
    """The multivariate (elliptical) Laplace distribution: ``sqrt(E) z`` with ``E ~ Exp(1)``, ``z ~ N(0, I)``."""
    return fixed(lambda n, rng: rng.standard_normal((n, d)) * np.sqrt(rng.exponential(1.0, n))[:, None])


def pareto_radius(d: int, alpha: float) -> Make:
    """A uniform direction times a Pareto radius ``1 + Pareto(alpha)``: a hollow centre and a heavy radial tail."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        return sample_sphere(n, d - 1, rng) * (1.0 + rng.pareto(alpha, n))[:, None]

    return fixed(sample)


def three_scale_gaussians(d: int, scales: tuple[float, float, float]) -> Make:
    """Equal thirds from ``N(0, s^2 I)`` for each ``s`` in ``scales``, centred at seeded points at distance 2."""

    def make(seed: int) -> Latent:
        centres = np.random.default_rng(seed).standard_normal((3, d))
        centres *= 2.0 / np.linalg.norm(centres, axis=1, keepdims=True)
        s = np.asarray(scales)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            j = rng.integers(0, 3, n)
            return centres[j] + rng.standard_normal((n, d)) * s[j][:, None]

        return sample

    return make


# --- curved, non-uniform -----------------------------------------------------------------------------------------


def wishart(k: int, dof: int) -> Make:
    """Wishart ``W_k(I, dof) / dof`` matrices, upper triangle: ``k (k + 1) / 2`` entries (off-diagonal x sqrt 2)."""
    iu = np.triu_indices(k)
    weight = np.where(iu[0] == iu[1], 1.0, math.sqrt(2.0))

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        g = rng.standard_normal((n, dof, k))
        w = np.einsum("nij,nik->njk", g, g) / dof
        return w[:, iu[0], iu[1]] * weight

    return fixed(sample)


def veronese_sphere(d: int) -> Make:
    """``x -> x x^T`` on the unit ``d``-sphere (upper triangle, off-diagonal x sqrt 2): real projective ``d``-space."""
    iu = np.triu_indices(d + 1)
    weight = np.where(iu[0] == iu[1], 1.0, math.sqrt(2.0))

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        x = sample_sphere(n, d, rng)
        return x[:, iu[0]] * x[:, iu[1]] * weight

    return fixed(sample)


# --- products and ordinary clouds --------------------------------------------------------------------------------


def circles(*radii: float) -> Make:
    """The product of circles of the given radii (a flat torus of very different scales), uniform in the angles."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        a = 2 * math.pi * rng.random((n, len(radii)))
        r = np.asarray(radii)
        return np.concatenate([r * np.cos(a), r * np.sin(a)], axis=1)

    return fixed(sample)


def sphere_times_t(k: int, t_dim: int, dof: float) -> Make:
    """The unit ``k``-sphere times a ``t_dim``-dimensional Student-t of ``dof`` degrees of freedom (scale 0.5)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        w = np.sqrt(dof / rng.chisquare(dof, n))[:, None]
        return np.concatenate([sample_sphere(n, k, rng), 0.5 * w * rng.standard_normal((n, t_dim))], axis=1)

    return fixed(sample)


def spheres(a: int, b: int, radius_b: float) -> Make:
    """The product of the unit ``a``-sphere and the ``b``-sphere of ``radius_b``."""
    return fixed(lambda n, rng: np.concatenate([sample_sphere(n, a, rng), radius_b * sample_sphere(n, b, rng)], 1))


def sixth_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the sixth split."""
    s = "sixth"
    return [
        # --- noisy curves
        ("rose with 5 petals + 5 %", "curve", 1, 12, 0.05, s, 701, rose(5)),
        ("logarithmic spiral 3 turns + 1 %", "curve", 1, 10, 0.01, s, 702, log_spiral(3.0, 0.12)),
        ("hypotrochoid 7:2 + 5 %", "curve", 1, 16, 0.05, s, 703, hypotrochoid(7, 2, 3.0)),
        ("crown with 9 waves + 1 %", "curve", 1, 20, 0.01, s, 704, crown(9, 0.4)),
        ("lemniscate of Bernoulli + 5 %", "curve", 1, 8, 0.05, s, 705, lemniscate()),
        ("wobbling circle on S^7 + 1 %", "curve", 1, 24, 0.01, s, 706, sphere_wobble(8, 6, 0.6)),
        ("softsign net d=1 -> R^40 + 5 %", "curve", 1, 40, 0.05, s, 707, act_net(1, 40, 32, 3, 3.0, "softsign")),
        ("ReLU net d=1 -> R^24 + 1 %", "curve", 1, 24, 0.01, s, 708, act_net(1, 24, 32, 3, 2.0, "relu")),
        # --- noisy surfaces
        ("ring torus 3:1 + 5 %", "surface", 2, 12, 0.05, s, 711, ring_torus(3.0, 1.0)),
        ("ellipsoid surface 1:2:4 + 1 %", "surface", 2, 16, 0.01, s, 712, ellipsoid_surface((1.0, 2.0, 4.0))),
        ("egg-crate graph + 5 %", "surface", 2, 20, 0.05, s, 713, egg_crate(5.0, 0.3)),
        ("double cone + 1 %", "surface", 2, 10, 0.01, s, 714, double_cone(1.0)),
        # --- network images
        ("softsign net d=2 -> R^32 + 5 %", "network", 2, 32, 0.05, s, 721, act_net(2, 32, 32, 3, 3.0, "softsign")),
        ("mish net d=4 -> R^48", "network", 4, 48, 0.0, s, 722, act_net(4, 48, 48, 3, 1.8, "mish")),
        ("ReLU net d=6 -> R^64", "network", 6, 64, 0.0, s, 723, act_net(6, 64, 64, 3, 1.6, "relu")),
        ("SELU net d=12 -> R^96 + 1 %", "network", 12, 96, 0.01, s, 724, act_net(12, 96, 96, 2, 1.2, "selu")),
        ("ReLU net d=18 -> R^128", "network", 18, 128, 0.0, s, 725, act_net(18, 128, 128, 2, 1.4, "relu")),
        # --- heavy tails and scale mixtures, d = 10-20
        ("Student-t(2.5) d=12", "high_d", 12, 40, 0.0, s, 731, student_t(12, 2.5)),
        ("anisotropic Student-t(5) d=16 + 1 %", "high_d", 16, 48, 0.01, s, 732, student_t(16, 5.0, 4.0)),
        ("Gaussian scale mixture d=12, 2 decades", "high_d", 12, 48, 0.0, s, 733, scale_mixture(12, 2.0)),
        ("elliptical Laplace d=10", "high_d", 10, 32, 0.0, s, 734, elliptical_laplace(10)),
        ("Pareto(3) radius d=14", "high_d", 14, 48, 0.0, s, 735, pareto_radius(14, 3.0)),
        ("three-scale Gaussians d=20", "high_d", 20, 64, 0.0, s, 736, three_scale_gaussians(20, (0.2, 0.5, 1.0))),
        # --- curved, non-uniform
        ("Wishart 3x3 matrices", "density", 6, 24, 0.0, s, 741, wishart(3, 5)),
        ("Veronese image of S^5 + 1 %", "surface", 5, 32, 0.01, s, 742, veronese_sphere(5)),
        # --- products
        ("circles of radii 1, 0.3, 0.1", "product", 3, 16, 0.0, s, 751, circles(1.0, 0.3, 0.1)),
        ("flat torus radii 1 and 0.1 + 1 %", "product", 2, 12, 0.01, s, 752, circles(1.0, 0.1)),
        ("S^2 x Student-t(3) plane + 5 %", "product", 4, 24, 0.05, s, 753, sphere_times_t(2, 2, 3.0)),
        ("S^4 x S^1 + 5 %", "product", 5, 32, 0.05, s, 754, spheres(4, 1, 0.5)),
        # --- ordinary clouds
        ("sphere S^9 + 1 %", "high_d", 9, 40, 0.01, s, 761, fixed(lambda n, rng: sample_sphere(n, 9, rng))),
        ("Gaussian d=3", "density", 3, 16, 0.0, s, 762, fixed(lambda n, rng: rng.standard_normal((n, 3)))),
        ("cube [0,1]^12", "high_d", 12, 40, 0.0, s, 763, fixed(lambda n, rng: sample_cube(n, 12, rng))),
        ("flat torus T^5", "product", 5, 24, 0.0, s, 764, fixed(lambda n, rng: sample_torus(n, 5, rng))),
    ]


__all__ = ["sixth_specs"]
