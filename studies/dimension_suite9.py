r"""The ninth split of the trusted-``dim`` suite (issue #14): 43 clouds written before the ninth round of tuning.

The eight earlier splits (:mod:`studies.dimension_suite`'s tune / held-out / fresh halves and the third to eighth
splits of :mod:`studies.dimension_suite3` to :mod:`studies.dimension_suite8`, 275 clouds) were all opened while the
rule was tuned, so they are tuning data. This split (``split="ninth"``, seeds 10xx) was written and committed
*before* the ninth round of tuning and is measured once, after the rule is frozen. It follows the issue's family
list with shapes, densities and embeddings that no earlier split uses:

* curves: a tractrix (a cusp), the involute of a circle, the loop of the folium of Descartes (non-uniform speed), a
  chirp ``(t, a sin(f t^2))`` whose wiggles tighten along it, the witch of Agnesi with a Student-t(3) parameter
  (long thin tails), a bicorn (two cusps), a two-armed Fermat spiral, the image of an interval under a random
  "symlog" network;
* surfaces: the Whitney umbrella (a pinch point), a Dupin cyclide, the Bohemian dome, an astroidal ellipsoid (six
  cusps), the sine surface, Plücker's conoid, a seashell;
* network images: a residual GELU network (d = 2), bent-identity networks (d = 3 and 24), a squareplus network
  (d = 5), a hard-tanh network (d = 8, partly saturated), a residual SiLU network (d = 14);
* non-uniform densities: a Kumaraswamy(0.5, 3) cube (d = 6), Weibull(0.7) coordinates (d = 5), a banana-shaped
  (twisted) Gaussian (d = 4), a correlated von Mises 2-torus, a Gaussian-plus-cube mixture (d = 9), skew-normal
  coordinates (d = 7), a ring of six Gaussians (d = 4), a girdle density on :math:`S^4`;
* higher dimension: a Kumaraswamy(2, 0.5) cube (d = 12), Weibull(1.5) coordinates (d = 16), a thin spherical shell
  (d = 14), and ordinary clouds (a 28-d Gaussian, the 14-cube, :math:`S^{26}`, the 15-ball, the 7-torus);
* products: :math:`S^2 \times T^3`, a tractrix times the disc, :math:`S^7 \times S^7`, a 4-cube times a 4-d
  Gaussian, Plücker's conoid times a circle, an involute times a Kumaraswamy square.

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`):
0, 1 % or 5 % (at least ten clouds each). Truth = the manifold's dimension. Nothing here comes from a published
benchmark generator (scikit-dimension's ``BenchmarkManifolds``, DADApy's data sets).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lightning_repgap.manifolds import sample_ball, sample_cube, sample_sphere, sample_torus
from studies.dimension_suite3 import Latent, Make, fixed
from studies.dimension_suite4 import random_network
from studies.dimension_suite7 import product

# --- curves ------------------------------------------------------------------------------------------------------


def _tractrix(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(-3.0, 3.0, n)
    return np.stack([t - np.tanh(t), 1.0 / np.cosh(t)], axis=1)


def tractrix() -> Make:
    """The tractrix ``(t - tanh t, sech t)``, ``t`` uniform in ``[-3, 3]`` (a cusp at ``t = 0``)."""
    return fixed(_tractrix)


def _involute(n: int, rng: np.random.Generator) -> np.ndarray:
    t = 4 * math.pi * rng.random(n)
    return np.stack([np.cos(t) + t * np.sin(t), np.sin(t) - t * np.cos(t)], axis=1)


def involute() -> Make:
    """The involute of the unit circle, two turns, uniform in the unrolling angle (not in arc length)."""
    return fixed(_involute)


def folium() -> Make:
    """The loop of the folium of Descartes ``(3t, 3t^2) / (1 + t^3)``, ``t = tan(u)``, ``u`` uniform."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = np.tan(0.5 * math.pi * rng.random(n))
        return np.stack([3 * t, 3 * t**2], axis=1) / (1 + t**3)[:, None]

    return fixed(sample)


def chirp(amplitude: float, frequency: float, length: float) -> Make:
    """The graph ``(t, amplitude sin(frequency t^2))``, ``t`` uniform in ``[0, length]`` (tightening wiggles)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = length * rng.random(n)
        return np.stack([t, amplitude * np.sin(frequency * t**2)], axis=1)

    return fixed(sample)


def witch_of_agnesi(dof: float) -> Make:
    """The witch of Agnesi ``(2t, 2 / (1 + t^2))`` with a Student-t(``dof``) parameter (long, sparse arms)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.standard_t(dof, n)
        return np.stack([2 * t, 2 / (1 + t**2)], axis=1)

    return fixed(sample)


def bicorn() -> Make:
    """The bicorn ``(sin t, cos^2 t (2 + cos t) / (3 + sin^2 t))``, uniform in ``t`` (two cusps)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.random(n)
        return np.stack([np.sin(t), np.cos(t) ** 2 * (2 + np.cos(t)) / (3 + np.sin(t) ** 2)], axis=1)

    return fixed(sample)


def fermat_spiral(turns: float) -> Make:
    """Both arms of Fermat's spiral ``r = +-sqrt(t)``, ``t`` uniform in ``[0, 2 pi turns]`` (denser outside)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * turns * rng.random(n)
        r = np.sqrt(t) * np.where(rng.random(n) < 0.5, 1.0, -1.0)
        return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)

    return fixed(sample)


# --- surfaces ----------------------------------------------------------------------------------------------------


def whitney_umbrella() -> Make:
    """The Whitney umbrella ``(uv, u, v^2)`` over ``[-1, 1]^2`` (a pinch point at the origin)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u, v = rng.uniform(-1, 1, (2, n))
        return np.stack([u * v, u, v**2], axis=1)

    return fixed(sample)


def dupin_cyclide(a: float, c: float, d: float) -> Make:
    """A ring Dupin cyclide (the inversion of a torus: a tube whose radius varies), uniform in its two angles."""
    b = math.sqrt(a * a - c * c)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u, v = 2 * math.pi * rng.random((2, n))
        den = a - c * np.cos(u) * np.cos(v)
        x = (d * (c - a * np.cos(u) * np.cos(v)) + b * b * np.cos(u)) / den
        y = b * np.sin(u) * (a - d * np.cos(v)) / den
        z = b * np.sin(v) * (c * np.cos(u) - d) / den
        return np.stack([x, y, z], axis=1)

    return fixed(sample)


def bohemian_dome() -> Make:
    """The Bohemian dome ``(cos u, sin u + cos v, sin v)``, uniform in ``u, v`` (a circle swept along a circle)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u, v = 2 * math.pi * rng.random((2, n))
        return np.stack([np.cos(u), np.sin(u) + np.cos(v), np.sin(v)], axis=1)

    return fixed(sample)


def astroidal_ellipsoid() -> Make:
    """The astroidal ellipsoid ``(cos^3 u cos^3 v, sin^3 u cos^3 v, sin^3 v)``, uniform in ``u, v``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = 2 * math.pi * rng.random(n)
        v = math.pi * (rng.random(n) - 0.5)
        return np.stack([(np.cos(u) * np.cos(v)) ** 3, (np.sin(u) * np.cos(v)) ** 3, np.sin(v) ** 3], axis=1)

    return fixed(sample)


def sine_surface() -> Make:
    """The sine surface ``(sin u, sin v, sin(u + v))``, uniform in ``u, v`` (self-intersecting, curved)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u, v = 2 * math.pi * rng.random((2, n))
        return np.stack([np.sin(u), np.sin(v), np.sin(u + v)], axis=1)

    return fixed(sample)


def _pluecker(n: int, rng: np.random.Generator) -> np.ndarray:
    r = rng.random(n)
    th = 2 * math.pi * rng.random(n)
    return np.stack([r * np.cos(th), r * np.sin(th), np.sin(2 * th)], axis=1)


def pluecker_conoid() -> Make:
    """Plücker's conoid ``(r cos t, r sin t, sin 2t)``, ``r`` uniform in ``[0, 1]`` (dense near the axis)."""
    return fixed(_pluecker)


def seashell(turns: float) -> Make:
    """A seashell: a circle cross-section swept along a conical spiral of ``turns`` turns, shrinking to a tip."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = 2 * math.pi * turns * rng.random(n)
        v = 2 * math.pi * rng.random(n)
        g = np.exp(u / (2 * math.pi * turns))
        w = np.cos(v / 2) ** 2
        return np.stack(
            [2 * (1 - g) * np.cos(u) * w, 2 * (g - 1) * np.sin(u) * w, 1 - g**2 - np.sin(v) + g * np.sin(v)], axis=1
        )

    return fixed(sample)


# --- networks ----------------------------------------------------------------------------------------------------

_ACTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "symlog": lambda h: np.sign(h) * np.log1p(np.abs(h)),
    "bent": lambda h: (np.sqrt(h * h + 1) - 1) / 2 + h,
    "squareplus": lambda h: (h + np.sqrt(h * h + 4)) / 2,
    "hardtanh": lambda h: np.clip(h, -1.0, 1.0),
    "gelu": lambda h: 0.5 * h * (1 + np.tanh(0.7978845608 * (h + 0.044715 * h**3))),
    "silu": lambda h: h / (1 + np.exp(-h)),
}


def act_net(d: int, ambient: int, width: int, depth: int, gain: float, act: str) -> Make:
    """A random ``depth``-layer network (symlog, bent identity, squareplus, hard tanh) of a cube ``[-1, 1]^d``."""
    return random_network(d, ambient, width, depth, gain, 0.5, _ACTS[act])


def residual_net(
    d: int, ambient: int, width: int, blocks: int, gain: float, act: str | Callable[[np.ndarray], np.ndarray]
) -> Make:
    """``h = A x``, then ``blocks`` residual blocks ``h += W2 f(W1 h + b)``, then a linear read-out to ``ambient``.

    The latent ``x`` is uniform in ``[-1, 1]^d``; weights N(0, gain^2 / fan-in), drawn from the cloud's seed; ``act``
    names an activation of this module or is one (the tenth split passes its own).
    """
    f = _ACTS[act] if isinstance(act, str) else act

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        lift = frng.standard_normal((d, width)) * (2.0 / math.sqrt(d))
        w1 = [frng.standard_normal((width, width)) * gain / math.sqrt(width) for _ in range(blocks)]
        b1 = [frng.standard_normal(width) * 0.5 for _ in range(blocks)]
        w2 = [frng.standard_normal((width, width)) * gain / math.sqrt(width) for _ in range(blocks)]
        out = frng.standard_normal((width, ambient)) / math.sqrt(width)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            h = rng.uniform(-1, 1, (n, d)) @ lift
            for a, b, c in zip(w1, b1, w2, strict=True):
                h = h + f(h @ a + b) @ c
            return h @ out

        return sample

    return make


# --- non-uniform densities ---------------------------------------------------------------------------------------


def kumaraswamy_cube(d: int, a: float, b: float) -> Make:
    """The cube ``[0, 1]^d`` with independent Kumaraswamy(a, b) coordinates ``(1 - (1 - U)^(1/b))^(1/a)``."""
    return fixed(lambda n, rng: (1 - (1 - rng.random((n, d))) ** (1 / b)) ** (1 / a))


def weibull_coordinates(d: int, shape: float) -> Make:
    """Independent Weibull(``shape``) coordinates (shape < 1: a density spike at the corner and a long tail)."""
    return fixed(lambda n, rng: rng.weibull(shape, (n, d)))


def banana(d: int, bend: float) -> Make:
    """A twisted Gaussian: ``x_1 ~ N(0, 1)``, ``x_k = z_k + bend (x_{k-1}^2 - 1)`` (a curved, banana-shaped ridge)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((n, d))
        x = z.copy()
        for k in range(1, d):
            x[:, k] = z[:, k] + bend * (x[:, k - 1] ** 2 - 1)
        return x

    return fixed(sample)


def correlated_von_mises_torus(kappa: float) -> Make:
    """The flat 2-torus with ``a`` uniform and ``b = a + VonMises(kappa)`` (mass near the diagonal circle)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        a = 2 * math.pi * rng.random(n)
        b = a + rng.vonmises(0.0, kappa, n)
        return np.stack([np.cos(a), np.sin(a), np.cos(b), np.sin(b)], axis=1)

    return fixed(sample)


def gaussian_cube_mixture(d: int, scale: float) -> Make:
    """Half ``N(0, scale^2 I)``, half uniform in ``[-1, 1]^d`` (a sharp core on a flat plateau)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        core = rng.random(n) < 0.5
        return np.where(core[:, None], scale * rng.standard_normal((n, d)), rng.uniform(-1, 1, (n, d)))

    return fixed(sample)


def skew_normal(d: int, shape: float) -> Make:
    """Independent skew-normal(``shape``) coordinates ``(shape |z0| + z1) / sqrt(1 + shape^2)``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        z0, z1 = rng.standard_normal((2, n, d))
        return (shape * np.abs(z0) + z1) / math.sqrt(1 + shape * shape)

    return fixed(sample)


def gaussian_ring(d: int, components: int, radius: float) -> Make:
    """Equal unit Gaussians centred on a circle of ``radius`` in the first two of ``d`` coordinates."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        a = 2 * math.pi * rng.integers(0, components, n) / components
        x = rng.standard_normal((n, d))
        x[:, 0] += radius * np.cos(a)
        x[:, 1] += radius * np.sin(a)
        return x

    return fixed(sample)


def girdle_sphere(d: int, concentration: float) -> Make:
    """The unit ``d``-sphere with density ``exp(-concentration x_0^2)`` (mass near a great sub-sphere), by rejection."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        out = np.empty((0, d + 1))
        while len(out) < n:
            x = sample_sphere(4 * n, d, rng)
            out = np.concatenate([out, x[rng.random(4 * n) < np.exp(-concentration * x[:, 0] ** 2)]])
        return out[:n]

    return fixed(sample)


def spherical_shell(d: int, inner: float) -> Make:
    """Uniform in the ``d``-dimensional shell ``inner < |x| < 1`` (a thin shell: locally almost a sphere)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        r = (inner**d + (1 - inner**d) * rng.random(n)) ** (1 / d)
        return sample_sphere(n, d - 1, rng) * r[:, None]

    return fixed(sample)


def ninth_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the ninth split."""
    s = "ninth"
    gauss4: Latent = lambda n, rng: rng.standard_normal((n, 4))  # noqa: E731
    return [
        # --- curves
        ("tractrix + 1 %", "curve", 1, 10, 0.01, s, 1001, tractrix()),
        ("involute of a circle, two turns", "curve", 1, 8, 0.0, s, 1002, involute()),
        ("folium of Descartes loop + 5 %", "curve", 1, 12, 0.05, s, 1003, folium()),
        ("chirp (t, 0.25 sin 8t^2) + 1 %", "curve", 1, 16, 0.01, s, 1004, chirp(0.25, 8.0, 1.5)),
        ("witch of Agnesi, Student-t(3) parameter", "curve", 1, 6, 0.0, s, 1005, witch_of_agnesi(3.0)),
        ("symlog net d=1 -> R^24 + 5 %", "curve", 1, 24, 0.05, s, 1006, act_net(1, 24, 24, 3, 3.0, "symlog")),
        ("bicorn + 1 %", "curve", 1, 10, 0.01, s, 1007, bicorn()),
        ("Fermat spiral, both arms, 3 turns", "curve", 1, 8, 0.0, s, 1008, fermat_spiral(3.0)),
        # --- surfaces
        ("Whitney umbrella + 1 %", "surface", 2, 12, 0.01, s, 1011, whitney_umbrella()),
        ("Dupin cyclide + 5 %", "surface", 2, 16, 0.05, s, 1012, dupin_cyclide(2.0, 0.8, 1.0)),
        ("Bohemian dome", "surface", 2, 10, 0.0, s, 1013, bohemian_dome()),
        ("astroidal ellipsoid + 1 %", "surface", 2, 12, 0.01, s, 1014, astroidal_ellipsoid()),
        ("sine surface + 5 %", "surface", 2, 14, 0.05, s, 1015, sine_surface()),
        ("Plücker's conoid", "surface", 2, 9, 0.0, s, 1016, pluecker_conoid()),
        ("seashell, two turns + 1 %", "surface", 2, 15, 0.01, s, 1017, seashell(2.0)),
        # --- network images
        (
            "residual GELU net d=2 -> R^24 + 1 %",
            "network",
            2,
            24,
            0.01,
            s,
            1021,
            residual_net(2, 24, 24, 3, 1.5, "gelu"),
        ),
        ("bent-identity net d=3 -> R^36", "network", 3, 36, 0.0, s, 1022, act_net(3, 36, 36, 3, 1.5, "bent")),
        ("squareplus net d=5 -> R^50 + 5 %", "network", 5, 50, 0.05, s, 1023, act_net(5, 50, 50, 3, 2.0, "squareplus")),
        ("hard-tanh net d=8 -> R^64 + 1 %", "network", 8, 64, 0.01, s, 1024, act_net(8, 64, 64, 2, 1.2, "hardtanh")),
        (
            "residual SiLU net d=14 -> R^128 + 5 %",
            "network",
            14,
            128,
            0.05,
            s,
            1025,
            residual_net(14, 128, 96, 2, 1.0, "silu"),
        ),
        ("bent-identity net d=24 -> R^160", "network", 24, 160, 0.0, s, 1026, act_net(24, 160, 128, 2, 1.5, "bent")),
        # --- non-uniform densities
        ("Kumaraswamy(0.5, 3) cube d=6 + 1 %", "density", 6, 24, 0.01, s, 1031, kumaraswamy_cube(6, 0.5, 3.0)),
        ("Weibull(0.7) coordinates d=5", "density", 5, 20, 0.0, s, 1032, weibull_coordinates(5, 0.7)),
        ("banana Gaussian d=4, bend 0.5 + 5 %", "density", 4, 16, 0.05, s, 1033, banana(4, 0.5)),
        ("correlated von Mises 2-torus, kappa 8 + 1 %", "density", 2, 12, 0.01, s, 1034, correlated_von_mises_torus(8)),
        ("Gaussian-plus-cube mixture d=9 + 5 %", "density", 9, 32, 0.05, s, 1035, gaussian_cube_mixture(9, 0.15)),
        ("skew-normal coordinates d=7, shape 6 + 1 %", "density", 7, 28, 0.01, s, 1036, skew_normal(7, 6.0)),
        ("ring of six Gaussians d=4", "density", 4, 16, 0.0, s, 1037, gaussian_ring(4, 6, 4.0)),
        ("girdle density on S^4, concentration 8 + 5 %", "density", 4, 20, 0.05, s, 1038, girdle_sphere(4, 8.0)),
        # --- higher dimension
        ("Kumaraswamy(2, 0.5) cube d=12 + 5 %", "high_d", 12, 40, 0.05, s, 1041, kumaraswamy_cube(12, 2.0, 0.5)),
        ("Weibull(1.5) coordinates d=16 + 1 %", "high_d", 16, 48, 0.01, s, 1042, weibull_coordinates(16, 1.5)),
        ("spherical shell d=14, inner radius 0.9", "high_d", 14, 44, 0.0, s, 1043, spherical_shell(14, 0.9)),
        ("Gaussian d=28 + 1 %", "high_d", 28, 84, 0.01, s, 1044, fixed(lambda n, rng: rng.standard_normal((n, 28)))),
        ("cube [0,1]^14 + 5 %", "high_d", 14, 44, 0.05, s, 1045, fixed(lambda n, rng: sample_cube(n, 14, rng))),
        ("sphere S^26", "high_d", 26, 80, 0.0, s, 1046, fixed(lambda n, rng: sample_sphere(n, 26, rng))),
        ("ball B^15 + 1 %", "high_d", 15, 48, 0.01, s, 1047, fixed(lambda n, rng: sample_ball(n, 15, rng))),
        ("torus T^7 + 5 %", "product", 7, 28, 0.05, s, 1048, fixed(lambda n, rng: sample_torus(n, 7, rng))),
        # --- products
        (
            "S^2 x T^3 + 1 %",
            "product",
            5,
            20,
            0.01,
            s,
            1051,
            product(lambda n, rng: sample_sphere(n, 2, rng), lambda n, rng: sample_torus(n, 3, rng, 1.0)),
        ),
        ("tractrix x disc", "product", 3, 12, 0.0, s, 1052, product(_tractrix, lambda n, rng: sample_ball(n, 2, rng))),
        (
            "S^7 x S^7 + 5 %",
            "product",
            14,
            40,
            0.05,
            s,
            1053,
            product(lambda n, rng: sample_sphere(n, 7, rng), lambda n, rng: sample_sphere(n, 7, rng)),
        ),
        (
            "[0,1]^4 x Gaussian d=4",
            "product",
            8,
            24,
            0.0,
            s,
            1054,
            product(lambda n, rng: sample_cube(n, 4, rng), gauss4),
        ),
        (
            "Plücker's conoid x circle + 1 %",
            "product",
            3,
            12,
            0.01,
            s,
            1055,
            product(_pluecker, lambda n, rng: sample_sphere(n, 1, rng)),
        ),
        (
            "involute x Kumaraswamy(2, 2) square + 5 %",
            "product",
            3,
            12,
            0.05,
            s,
            1056,
            product(_involute, lambda n, rng: kumaraswamy_cube(2, 2.0, 2.0)(0)(n, rng)),
        ),
    ]


__all__ = ["ninth_specs"]
