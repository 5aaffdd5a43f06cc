r"""The eleventh split of the trusted-``dim`` suite (issue #14): 43 clouds written before the eleventh round of tuning.

The ten earlier splits (:mod:`studies.dimension_suite`'s tune / held-out / fresh halves and the third to tenth splits
of :mod:`studies.dimension_suite3` to :mod:`studies.dimension_suite10`, 361 clouds) were all opened while the rule was
tuned, so they are tuning data. This split (``split="eleventh"``, seeds 12xx) was written and committed *before* the
eleventh round of tuning and is measured once, after the rule is frozen. It follows the issue's family list with
shapes, densities and embeddings that are mostly new (re-dimensioned repeats: the Grassmannian (fourth split's
:math:`G(2, 4)`, here :math:`G(3, 7)`), uniform rotations :math:`SO(3)` (fourth, here as a factor of a product), the
residual network (third and ninth, here with an ISRU activation), and the Gaussian, cube, sphere, ball and torus at
other dimensions; and near-repeats of earlier families: the residual network (also tenth, tanh-shrink), :math:`SO(3)`
alone as the matrix-Fisher density (fourth: uniform), the wrapped-Cauchy 3-torus (the von Mises 3-tori of the tune,
held-out, eighth and tenth splits), the random-covariance mixture (third's anisotropic mixture, seventh's Gaussian
mixture d = 7), the Gaussian copula (fifth's Clayton copula), the prolate cycloid (seventh's cycloid)):

* curves: the lituus (a spiral winding into the origin as ``1 / sqrt(t)``), the conchoid of Nicomedes with its loop
  (a node, two branches with a common asymptote), the piriform (pear-shaped quartic, a cusp) with an arcsine
  parameter, both branches of the kampyle of Eudoxus (long steepening arms), a prolate cycloid (self-crossing
  loops), a degree-9 Bézier curve of random control points in :math:`R^{16}`, the Borromean rings (three mutually
  linked ellipses), the image of an interval under a random sinc network;
* surfaces: Henneberg's minimal surface, Bour's minimal surface, the breather (a pseudospherical surface), Wallis's
  conical edge, Gabriel's horn (uniform in its parameters, so crowded at the thin end), a superellipsoid
  ``|x|^6 + |y|^6 + |z|^6 = 1`` (a rounded cube: curvature on its edges), the swallowtail (two cuspidal edges);
* network images: maxout (d = 2), ISRU ``h / sqrt(1 + h^2)`` (d = 4), a softmax layer (d = 6), sinc (d = 10),
  log-cosh (d = 13) and a residual ISRU network (d = 20);
* non-uniform densities: a Gaussian copula with uniform margins (d = 5, correlation 0.9), logit-normal coordinates
  (d = 4, piled at the faces), a wrapped-Cauchy 3-torus, a "Swiss-cheese" cube (the 3-cube less twelve balls), a
  matrix-Fisher density on :math:`SO(3)`, Tukey g-and-h coordinates (d = 6), a mixture of three Gaussians with random
  covariances (d = 7), inverse-Gaussian (Wald) coordinates (d = 5);
* higher dimension: the ``l_{1/2}`` ball (a star-shaped body, d = 10), logit-normal coordinates (d = 14), g-and-h
  coordinates (d = 18), the Grassmannian :math:`G(3, 7)` (d = 12), and ordinary clouds (a 21-d Gaussian, the
  27-cube, :math:`S^{16}`, the 25-ball);
* products: the Borromean rings times an interval, Gabriel's horn times a circle, :math:`SO(3) \times S^2`, the
  swallowtail times a logit-normal interval, :math:`S^3 \times B^6 \times S^2`, the flat 11-torus.

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`):
0 on 13 clouds, 1 % on 16, 5 % on 14. Truth = the manifold's dimension. Nothing here comes from a published
benchmark generator (scikit-dimension's ``BenchmarkManifolds``, DADApy's data sets).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lightning_repgap.manifolds import sample_ball, sample_cube, sample_sphere, sample_torus
from studies.dimension_suite3 import Latent, Make, fixed
from studies.dimension_suite4 import _haar_orthogonal, grassmannian, random_network
from studies.dimension_suite7 import product
from studies.dimension_suite9 import residual_net

# --- curves ------------------------------------------------------------------------------------------------------


def lituus(t_min: float, t_max: float) -> Make:
    """The lituus ``r = 1 / sqrt(t)``, ``t`` uniform in ``[t_min, t_max]`` (winds into the origin)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(t_min, t_max, n)
        r = 1 / np.sqrt(t)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)

    return fixed(sample)


def conchoid(a: float, b: float, extent: float) -> Make:
    """The conchoid of Nicomedes ``(a + b cos t, a tan t + b sin t)``, both branches (``|t|``, ``|t - pi| <= extent``).

    With ``b > a`` the inner branch has a loop through a node at the origin.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(-extent, extent, n) + math.pi * rng.integers(0, 2, n)
        return np.stack([a + b * np.cos(t), a * np.tan(t) + b * np.sin(t)], axis=1)

    return fixed(sample)


def piriform(b: float) -> Make:
    """The piriform ``(1 + sin t, b cos t (1 + sin t))`` (``y^2 = b^2 x^3 (2 - x)``), ``t = 2 pi Beta(1/2, 1/2)``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.beta(0.5, 0.5, n)
        x = 1 + np.sin(t)
        return np.stack([x, b * np.cos(t) * x], axis=1)

    return fixed(sample)


def kampyle(extent: float) -> Make:
    """Both branches of the kampyle of Eudoxus ``x^4 = x^2 + y^2``: ``(+-sec t, tan t sec t)``, ``|t| <= extent``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(-extent, extent, n)
        sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
        return np.stack([sign / np.cos(t), np.tan(t) / np.cos(t)], axis=1)

    return fixed(sample)


def prolate_cycloid(ratio: float, periods: float) -> Make:
    """The prolate cycloid ``(t - ratio sin t, 1 - ratio cos t)`` (``ratio > 1``: a loop per period)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * periods * rng.random(n)
        return np.stack([t - ratio * np.sin(t), 1 - ratio * np.cos(t)], axis=1)

    return fixed(sample)


def bezier_curve(degree: int, ambient: int) -> Make:
    """A Bézier curve of the given degree with Gaussian control points in :math:`R^{ambient}` (from the seed)."""

    def make(seed: int) -> Latent:
        ctrl = np.random.default_rng(seed).standard_normal((degree + 1, ambient))
        k = np.arange(degree + 1)
        binom = np.array([math.comb(degree, int(i)) for i in k], dtype=float)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            t = rng.random(n)[:, None]
            return (binom * t**k * (1 - t) ** (degree - k)) @ ctrl

        return sample

    return make


def _borromean(n: int, rng: np.random.Generator) -> np.ndarray:
    t = 2 * math.pi * rng.random(n)
    ring = rng.integers(0, 3, n)
    a, b = 2 * np.cos(t), np.sin(t)
    z = np.zeros(n)
    out = np.stack([a, b, z], axis=1)  # ring 0 in the xy-plane, ring 1 in yz, ring 2 in zx (cyclic shifts)
    out[ring == 1] = np.stack([z, a, b], axis=1)[ring == 1]
    out[ring == 2] = np.stack([b, z, a], axis=1)[ring == 2]
    return out


def borromean_rings() -> Make:
    """The Borromean rings: ellipses ``(2 cos t, sin t)`` in the xy-, yz- and zx-planes (cyclically), a third each."""
    return fixed(_borromean)


# --- surfaces ----------------------------------------------------------------------------------------------------


def henneberg(u_min: float, u_max: float) -> Make:
    """Henneberg's minimal surface (non-orientable, branch points), ``u`` in ``[u_min, u_max]``, ``v`` a full turn."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(u_min, u_max, n)
        v = 2 * math.pi * rng.random(n)
        return np.stack(
            [
                2 * np.sinh(u) * np.cos(v) - 2 / 3 * np.sinh(3 * u) * np.cos(3 * v),
                2 * np.sinh(u) * np.sin(v) + 2 / 3 * np.sinh(3 * u) * np.sin(3 * v),
                2 * np.cosh(2 * u) * np.cos(2 * v),
            ],
            axis=1,
        )

    return fixed(sample)


def bour(r_min: float, r_max: float) -> Make:
    """Bour's minimal surface ``(r cos t - r^2 cos 2t / 2, -r sin t - r^2 sin 2t / 2, 4/3 r^1.5 cos 1.5t)``, 2 turns."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        r = rng.uniform(r_min, r_max, n)
        t = 4 * math.pi * rng.random(n)
        return np.stack(
            [
                r * np.cos(t) - r * r * np.cos(2 * t) / 2,
                -r * np.sin(t) - r * r * np.sin(2 * t) / 2,
                4 / 3 * r**1.5 * np.cos(1.5 * t),
            ],
            axis=1,
        )

    return fixed(sample)


def breather(b: float, u_max: float, v_max: float) -> Make:
    """The breather surface (constant negative curvature) of parameter ``b``, ``|u| <= u_max``, ``|v| <= v_max``."""
    w = math.sqrt(1 - b * b)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(-u_max, u_max, n)
        v = rng.uniform(-v_max, v_max, n)
        den = b * ((w * np.cosh(b * u)) ** 2 + (b * np.sin(w * v)) ** 2)
        c = 2 * w * np.cosh(b * u) / den
        return np.stack(
            [
                -u + 2 * (1 - b * b) * np.cosh(b * u) * np.sinh(b * u) / den,
                c * (-w * np.cos(v) * np.cos(w * v) - np.sin(v) * np.sin(w * v)),
                c * (-w * np.sin(v) * np.cos(w * v) + np.cos(v) * np.sin(w * v)),
            ],
            axis=1,
        )

    return fixed(sample)


def wallis_conical_edge(a: float, b: float, c: float, v_max: float) -> Make:
    """Wallis's conical edge ``(v cos u, v sin u, c sqrt(a^2 - b^2 cos^2 u))``, ``|v| <= v_max`` (a ruled surface)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = 2 * math.pi * rng.random(n)
        v = rng.uniform(-v_max, v_max, n)
        return np.stack([v * np.cos(u), v * np.sin(u), c * np.sqrt(a * a - (b * np.cos(u)) ** 2)], axis=1)

    return fixed(sample)


def _horn(n: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.uniform(1.0, 6.0, n)
    t = 2 * math.pi * rng.random(n)
    return np.stack([x, np.cos(t) / x, np.sin(t) / x], axis=1)


def gabriel_horn() -> Make:
    """Gabriel's horn (``y = 1 / x`` revolved), ``x`` uniform in ``[1, 6]``: the thin end is crowded."""
    return fixed(_horn)


def superellipsoid(power: float) -> Make:
    """The superellipsoid ``sum |x_i|^power = 1`` of :math:`R^3`: sphere points ``s`` go to ``sign(s) |s|^(2/power)``.

    Curvature gathers on the rounded edges and corners of the cube-like shape.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        s = sample_sphere(n, 2, rng)
        return np.sign(s) * np.abs(s) ** (2 / power)

    return fixed(sample)


def _swallowtail(n: int, rng: np.random.Generator) -> np.ndarray:
    u = rng.uniform(-2.0, 2.0, n)
    v = rng.uniform(-1.3, 1.3, n)
    return np.stack([u, -4 * v**3 - 2 * u * v, 3 * v**4 + u * v * v], axis=1)


def swallowtail() -> Make:
    """The swallowtail ``(u, -4 v^3 - 2 u v, 3 v^4 + u v^2)`` (the discriminant of a quartic): cuspidal edges."""
    return fixed(_swallowtail)


# --- networks ----------------------------------------------------------------------------------------------------


def _isru(h: np.ndarray) -> np.ndarray:
    return h / np.sqrt(1 + h * h)


_ACTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sinc": lambda h: np.sinc(h),
    "isru": _isru,
    "logcosh": lambda h: np.logaddexp(h, -h) - math.log(2),
    "softmax": lambda h: (
        np.exp(h - h.max(axis=1, keepdims=True)) / np.exp(h - h.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)
    ),
}


def act_net(d: int, ambient: int, width: int, depth: int, gain: float, act: str) -> Make:
    """A random ``depth``-layer network (sinc, ISRU, log-cosh, softmax) of a latent cube ``[-1, 1]^d``."""
    return random_network(d, ambient, width, depth, gain, 0.5, _ACTS[act])


def maxout_net(d: int, ambient: int, width: int, depth: int, gain: float) -> Make:
    """``depth - 1`` maxout layers ``h <- max(h A + a, h B + b)``, then a linear read-out to ``ambient``.

    The latent ``x`` is uniform in ``[-1, 1]^d``; weights N(0, gain^2 / fan-in), biases N(0, 0.25), from the seed.
    """

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        layers = []
        for i in [d] + [width] * (depth - 2):
            first, second = (frng.standard_normal((i, width)) * gain / math.sqrt(i) for _ in range(2))
            layers.append((first, frng.standard_normal(width) * 0.5, second, frng.standard_normal(width) * 0.5))
        out = frng.standard_normal((width, ambient)) / math.sqrt(width)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            h = rng.uniform(-1, 1, (n, d))
            for a, ab, b, bb in layers:
                h = np.maximum(h @ a + ab, h @ b + bb)
            return h @ out

        return sample

    return make


# --- non-uniform densities ---------------------------------------------------------------------------------------


def gaussian_copula(d: int, rho: float) -> Make:
    """Uniform margins coupled by a Gaussian copula of equal correlation ``rho`` (mass along the cube's diagonal)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        from scipy.special import ndtr  # scipy is a dev / study dependency: imported only where a cloud is drawn

        z = math.sqrt(rho) * rng.standard_normal((n, 1)) + math.sqrt(1 - rho) * rng.standard_normal((n, d))
        return ndtr(z)

    return fixed(sample)


def logit_normal(d: int, sigma: float) -> Make:
    """Independent logit-normal coordinates ``sigmoid(sigma Z)`` (for ``sigma`` > 1.4 piled near both faces)."""
    return fixed(lambda n, rng: 1 / (1 + np.exp(-sigma * rng.standard_normal((n, d)))))


def _wrapped_cauchy(shape: tuple[int, ...], rho: float, rng: np.random.Generator) -> np.ndarray:
    return 2 * np.arctan((1 - rho) / (1 + rho) * np.tan(math.pi * (rng.random(shape) - 0.5)))


def wrapped_cauchy_torus(d: int, rho: float) -> Make:
    """The flat ``d``-torus with independent wrapped-Cauchy(``rho``) angles (a sharp peak, heavy tails)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        a = _wrapped_cauchy((n, d), rho, rng)
        return np.concatenate([np.cos(a), np.sin(a)], axis=1)

    return fixed(sample)


def swiss_cheese(d: int, holes: int, radius: float) -> Make:
    """The unit ``d``-cube less ``holes`` balls of ``radius`` centred at seeded uniform points (by rejection)."""

    def make(seed: int) -> Latent:
        centres = np.random.default_rng(seed).random((holes, d))

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            out = np.empty((0, d))
            while len(out) < n:
                x = rng.random((2 * n, d))
                far = (((x[:, None, :] - centres[None]) ** 2).sum(2) > radius * radius).all(1)
                out = np.concatenate([out, x[far]])
            return out[:n]

        return sample

    return make


def _fisher_rotations(n: int, rng: np.random.Generator, f: np.ndarray) -> np.ndarray:
    """``n`` rotations of density ``exp(tr(diag(f) R))`` on :math:`SO(3)` by rejection from Haar (flattened)."""
    out = np.empty((0, 9))
    while len(out) < n:
        q = _haar_orthogonal(4 * n, 3, rng)
        q[:, :, 0] *= np.linalg.det(q)[:, None]
        log_accept = (np.diagonal(q, axis1=1, axis2=2) - 1) @ f
        out = np.concatenate([out, q[np.log(rng.random(4 * n)) < log_accept].reshape(-1, 9)])
    return out[:n]


def matrix_fisher(f: tuple[float, float, float]) -> Make:
    """The matrix-Fisher density ``exp(tr(diag(f) R))`` on :math:`SO(3)` (flattened ``3 x 3`` matrices)."""
    fa = np.asarray(f, dtype=float)
    return fixed(lambda n, rng: _fisher_rotations(n, rng, fa))


def g_and_h(d: int, g: float, h: float) -> Make:
    """Independent Tukey g-and-h coordinates ``(exp(g Z) - 1) / g * exp(h Z^2 / 2)`` (skewed, heavy-tailed)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((n, d))
        return np.expm1(g * z) / g * np.exp(h * z * z / 2)

    return fixed(sample)


def random_covariance_mixture(d: int, components: int, spacing: float) -> Make:
    """Gaussians with seeded random covariances ``A A^T / d`` and means ``spacing`` apart along random directions.

    Each factor's singular values are clipped from below at 1 / 5.5 of its largest (the condition number the third
    split's anisotropic mixture allows): an unclipped Gaussian factor reached 120 at seed 1237, a direction of spread
    0.017 against a 20th-neighbour distance of about 1.4, so no size of the study could read the stated dimension
    (found by a review of the split's geometry before any estimate was read on it).
    """

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        u, s, vt = np.linalg.svd(frng.standard_normal((components, d, d)) / math.sqrt(d))
        s = np.maximum(s, s.max(axis=1, keepdims=True) / 5.5)
        factors = np.einsum("kij,kj,kjl->kil", u, s, vt)
        means = spacing * np.cumsum(sample_sphere(components, d - 1, frng), axis=0)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            k = rng.integers(0, components, n)
            z = rng.standard_normal((n, d))
            return np.einsum("ni,nij->nj", z, factors[k]) + means[k]

        return sample

    return make


def wald(d: int, mean: float, scale: float) -> Make:
    """Independent inverse-Gaussian (Wald) coordinates of the given mean and scale (right-skewed)."""
    return fixed(lambda n, rng: rng.wald(mean, scale, (n, d)))


def lp_ball(d: int, p: float) -> Make:
    """Uniform in the ``l_p`` ball of :math:`R^d` (``p < 1``: star-shaped, spiky along the axes).

    ``X / (||X||_p^p + E)^(1/p)`` with ``X`` of density ``exp(-|x|^p)`` per coordinate and ``E`` ~ Exp(1) (Barthe,
    Guédon, Mendelson and Naor's representation).
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        g = rng.gamma(1 / p, 1.0, (n, d))  # |X_i|^p
        x = np.where(rng.random((n, d)) < 0.5, 1.0, -1.0) * g ** (1 / p)
        return x / (g.sum(1, keepdims=True) + rng.exponential(1.0, (n, 1))) ** (1 / p)

    return fixed(sample)


def _rotations3(n: int, rng: np.random.Generator) -> np.ndarray:
    q = _haar_orthogonal(n, 3, rng)
    q[:, :, 0] *= np.linalg.det(q)[:, None]
    return q.reshape(n, 9)


def eleventh_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the eleventh split."""
    s = "eleventh"
    return [
        # --- curves
        ("lituus, t in [0.5, 25] + 1 %", "curve", 1, 10, 0.01, s, 1201, lituus(0.5, 25.0)),
        ("conchoid of Nicomedes with a loop", "curve", 1, 8, 0.0, s, 1202, conchoid(1.0, 2.0, 1.25)),
        ("piriform, arcsine parameter + 5 %", "curve", 1, 12, 0.05, s, 1203, piriform(1.2)),
        ("kampyle of Eudoxus, both branches + 1 %", "curve", 1, 9, 0.01, s, 1204, kampyle(1.25)),
        ("sinc net d=1 -> R^28 + 5 %", "curve", 1, 28, 0.05, s, 1205, act_net(1, 28, 28, 3, 2.5, "sinc")),
        ("prolate cycloid, ratio 2, 3 periods + 1 %", "curve", 1, 10, 0.01, s, 1206, prolate_cycloid(2.0, 3.0)),
        ("Bezier curve of degree 9 in R^16 + 5 %", "curve", 1, 16, 0.05, s, 1207, bezier_curve(9, 16)),
        ("Borromean rings + 1 %", "curve", 1, 12, 0.01, s, 1208, borromean_rings()),
        # --- surfaces
        ("Henneberg surface + 1 %", "surface", 2, 12, 0.01, s, 1211, henneberg(0.05, 0.9)),
        ("Bour's minimal surface + 5 %", "surface", 2, 14, 0.05, s, 1212, bour(0.1, 1.2)),
        ("breather surface, b = 0.4", "surface", 2, 10, 0.0, s, 1213, breather(0.4, 8.0, 20.0)),
        ("Wallis's conical edge + 1 %", "surface", 2, 12, 0.01, s, 1214, wallis_conical_edge(1.0, 0.9, 1.0, 1.5)),
        ("Gabriel's horn, x in [1, 6]", "surface", 2, 9, 0.0, s, 1215, gabriel_horn()),
        ("superellipsoid |x|^6 + |y|^6 + |z|^6 = 1 + 5 %", "surface", 2, 15, 0.05, s, 1216, superellipsoid(6.0)),
        ("swallowtail", "surface", 2, 8, 0.0, s, 1217, swallowtail()),
        # --- network images
        ("maxout net d=2 -> R^36 + 5 %", "network", 2, 36, 0.05, s, 1221, maxout_net(2, 36, 32, 3, 1.5)),
        ("ISRU net d=4 -> R^48", "network", 4, 48, 0.0, s, 1222, act_net(4, 48, 48, 3, 2.0, "isru")),
        ("softmax-layer net d=6 -> R^60 + 1 %", "network", 6, 60, 0.01, s, 1223, act_net(6, 60, 48, 3, 2.0, "softmax")),
        ("sinc net d=10 -> R^90", "network", 10, 90, 0.0, s, 1224, act_net(10, 90, 80, 3, 1.5, "sinc")),
        (
            "log-cosh net d=13 -> R^104 + 5 %",
            "network",
            13,
            104,
            0.05,
            s,
            1225,
            act_net(13, 104, 96, 3, 1.5, "logcosh"),
        ),
        (
            "residual ISRU net d=20 -> R^144 + 1 %",
            "network",
            20,
            144,
            0.01,
            s,
            1226,
            residual_net(20, 144, 112, 2, 1.0, _isru),
        ),
        # --- non-uniform densities
        ("Gaussian copula d=5, rho 0.9 + 1 %", "density", 5, 20, 0.01, s, 1231, gaussian_copula(5, 0.9)),
        ("logit-normal coordinates d=4, sigma 1.8", "density", 4, 16, 0.0, s, 1232, logit_normal(4, 1.8)),
        (
            "wrapped-Cauchy 3-torus, rho 0.7 + 5 %",
            "density",
            3,
            16,
            0.05,
            s,
            1233,
            wrapped_cauchy_torus(3, 0.7),
        ),
        ("Swiss-cheese cube d=3, 12 holes + 1 %", "density", 3, 12, 0.01, s, 1234, swiss_cheese(3, 12, 0.15)),
        ("matrix-Fisher rotations SO(3), F = (4, 2, 0)", "density", 3, 16, 0.0, s, 1235, matrix_fisher((4, 2, 0))),
        ("g-and-h coordinates d=6, g 0.5, h 0.1 + 5 %", "density", 6, 24, 0.05, s, 1236, g_and_h(6, 0.5, 0.1)),
        (
            "random-covariance Gaussian mixture d=7, 3 comp. + 1 %",
            "density",
            7,
            28,
            0.01,
            s,
            1237,
            random_covariance_mixture(7, 3, 3.0),
        ),
        ("Wald coordinates d=5, mean 1, scale 0.5", "density", 5, 20, 0.0, s, 1238, wald(5, 1.0, 0.5)),
        # --- higher dimension
        ("l_1/2 ball d=10 + 1 %", "high_d", 10, 36, 0.01, s, 1241, lp_ball(10, 0.5)),
        ("logit-normal coordinates d=14, sigma 1.2", "high_d", 14, 44, 0.0, s, 1242, logit_normal(14, 1.2)),
        ("g-and-h coordinates d=18, g 0.3, h 0.05 + 1 %", "high_d", 18, 56, 0.01, s, 1243, g_and_h(18, 0.3, 0.05)),
        ("Grassmannian G(3, 7)", "high_d", 12, 56, 0.0, s, 1244, grassmannian(7, 3)),
        ("Gaussian d=21 + 5 %", "high_d", 21, 64, 0.05, s, 1245, fixed(lambda n, rng: rng.standard_normal((n, 21)))),
        ("cube [0,1]^27 + 1 %", "high_d", 27, 80, 0.01, s, 1246, fixed(lambda n, rng: sample_cube(n, 27, rng))),
        ("sphere S^16", "high_d", 16, 52, 0.0, s, 1247, fixed(lambda n, rng: sample_sphere(n, 16, rng))),
        ("ball B^25 + 5 %", "high_d", 25, 76, 0.05, s, 1248, fixed(lambda n, rng: sample_ball(n, 25, rng))),
        # --- products
        (
            "Borromean rings x [0,1] + 5 %",
            "product",
            2,
            12,
            0.05,
            s,
            1251,
            product(_borromean, lambda n, rng: rng.random((n, 1))),
        ),
        (
            "Gabriel's horn x circle + 1 %",
            "product",
            3,
            14,
            0.01,
            s,
            1252,
            product(_horn, lambda n, rng: sample_sphere(n, 1, rng)),
        ),
        (
            "SO(3) x S^2",
            "product",
            5,
            20,
            0.0,
            s,
            1253,
            product(_rotations3, lambda n, rng: sample_sphere(n, 2, rng)),
        ),
        (
            "swallowtail x logit-normal interval + 5 %",
            "product",
            3,
            12,
            0.05,
            s,
            1254,
            product(_swallowtail, lambda n, rng: 1 / (1 + np.exp(-1.5 * rng.standard_normal((n, 1))))),
        ),
        (
            "S^3 x B^6 x S^2 + 1 %",
            "product",
            11,
            40,
            0.01,
            s,
            1255,
            product(
                lambda n, rng: sample_sphere(n, 3, rng),
                lambda n, rng: sample_ball(n, 6, rng),
                lambda n, rng: sample_sphere(n, 2, rng),
            ),
        ),
        ("torus T^11 + 5 %", "product", 11, 40, 0.05, s, 1256, fixed(lambda n, rng: sample_torus(n, 11, rng))),
    ]


__all__ = ["eleventh_specs"]
