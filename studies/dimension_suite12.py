r"""The twelfth split of the trusted-``dim`` suite (issue #14): 43 clouds written before the twelfth round of tuning.

The eleven earlier splits (:mod:`studies.dimension_suite`'s tune / held-out / fresh halves and the third to eleventh
splits of :mod:`studies.dimension_suite3` to :mod:`studies.dimension_suite11`, 404 clouds) were all opened while the
rule was tuned, so they are tuning data. This split (``split="twelfth"``, seeds 13xx) was written and committed
*before* the twelfth round of tuning and is measured once, after the rule is frozen. It follows the issue's family
list with shapes, densities and embeddings that are mostly new. Re-dimensioned repeats and near-repeats of earlier
families, listed so that nobody counts them as new: the residual network (third, ninth, tenth and eleventh splits;
here with an ``asinh`` activation); the Gaussian, sphere, ball and torus at other dimensions (and spheres, tori and
intervals as factors of products); the Student-t copula (the eleventh split's Gaussian copula, the fifth's Clayton
copula); the solid torus (the fifth split's solid helix tube, a 3-d region around a curve); the lemniscate of
revolution (the sixth split's lemniscate of Bernoulli, here revolved into a surface); Seiffert's spherical spiral (a
curve on :math:`S^2` like the third split's loxodrome and the seventh's Clelia curve); the Chebyshev curve (a
degenerate Lissajous curve: the third split has a Lissajous curve); Freeth's nephroid (not the eighth split's
nephroid, an epicycloid, but the same name); the complex projective spaces :math:`CP^2` and :math:`CP^6` as rank-one
Hermitian projectors (the fourth split's real projective plane and Grassmannian :math:`G(2, 4)`, the eleventh's
:math:`G(3, 7)`, are real relatives); Johnson SU coordinates at d = 15 (close to the eleventh split's g-and-h
coordinates at d = 18 and the tenth's hyperbolic-secant coordinates at d = 16); the Gudermannian network (a tanh-like
activation: the tanh networks of the tune, held-out, fresh and eighth splits); the Serf and TanhExp networks
(self-gated activations like the sixth split's mish, the ninth's SiLU and the fifth and ninth's GELU); the hyperbolic
helicoid (the fourth split's helicoid); beta-prime coordinates (the eleventh split's Wald and the ninth's Weibull
coordinates, also right-skewed); raised-cosine coordinates (the held-out split's Beta(3, 3) cube and the third's
Beta(2, 2) cube, also vanishing at the faces); the von Mises-Fisher density on :math:`S^6` (the seventh split's cap
on :math:`S^4`, the eighth's on :math:`S^3`); the separated Gaussian mixture at d = 11 (Gaussian mixtures of the
tune, held-out, fresh, third, seventh, eighth, ninth, tenth and eleventh splits at d = 3 to 10 and 12):

* curves: Seiffert's spherical spiral (arc length from Jacobi's elliptic functions), Newton's serpentine with its
  long arms (a uniform angle parameter, so sparse on the arms), a Chebyshev curve ``(T_3(t), T_4(t), T_5(t + 0.1))``,
  one lap of Fay's butterfly curve (self-crossing wings), a gear curve (eight teeth), the bean curve (a quartic
  through the origin), Freeth's nephroid (an inner loop), the image of an interval under a random ``asinh`` network;
* surfaces: Richmond's minimal surface (a planar end), the tranguloid trefoil, the corkscrew (a sheared sphere), the
  ding-dong surface (uniform in its parameters: a smooth cap at its tip, a double cone at the origin where the
  density grows like ``1 / r``), a hyperbolic helicoid, an elliptic torus whose tube section turns three half-turns,
  the lemniscate of Bernoulli revolved about its axis (a double cone at the origin; there and at the poles
  ``(+-1, 0, 0)`` on the axis the density grows like ``1 / r``);
* network images: TanhExp ``h tanh(e^h)`` (d = 4), LiSHT ``h tanh h`` (d = 6), Gudermannian (d = 9), Serf
  ``h erf(softplus h)`` (d = 13) and a residual ``asinh`` network (d = 16);
* non-uniform densities: the Poincaré ball, uniform in *hyperbolic* volume (piled at the rim, d = 3), a Student-t
  copula (tail dependence, d = 4), a von Mises-Fisher density on :math:`S^6` (d = 6), raised-cosine coordinates
  (d = 5), a solid torus uniform in its parameters, LKJ-distributed 4 x 4 correlation matrices (the elliptope, d = 6),
  an affine-coupling flow of a Gaussian (d = 8), beta-prime coordinates (d = 7), four separated Gaussians of unequal
  weights and scales (d = 11);
* higher dimension: :math:`CP^6` (d = 12), Johnson SU (d = 15) and raised-cosine (d = 20) coordinates, LKJ 7 x 7
  correlation matrices (d = 21), and ordinary clouds (a 23-d Gaussian, :math:`S^{25}`, the 17-ball, the flat
  13-torus);
* products: the bean curve times a circle, the hyperbolic-uniform Poincaré disc times a circle,
  :math:`CP^2 \times S^2`, the Chebyshev curve times a Johnson SU plane, :math:`S^5 \times T^2 \times [0, 2]^2`,
  :math:`S^1 \times S^9`.

Scales were checked against the neighbour scale before the split was committed (geometry only, no estimate): no factor
of a product is much smaller than the other factors (the butterfly curve times a circle and a :math:`S^5 \times T^2
\times [0, 1]^2` with circles of length 1 were replaced for that reason, their 20th-neighbour distance at n = 2,500
reaching the small factor's size); curves are short enough that other laps stay beyond the 20th neighbour at most points
(Seiffert's spiral shortened to length 20, about 6.2 pole-to-pole passes, the butterfly curve to one lap of twelve,
the corkscrew to one embedded turn: at n = 2,500, 16 % of the spiral's points and 24 % of the butterfly's still have a
point of another pass among their 20 neighbours, at the poles and where the wings cross, against 89 % and 100 % before;
the corkscrew 1 %, against 56 %); the hyperbolic-uniform Poincaré ball stops at hyperbolic radius 2 (Euclidean
0.76), where the rim is 13 times denser than the centre (at radius 3 the mass sat in a shell about as thin as the
20th-neighbour distance); in the network images at most 0.1 % of the 20-neighbour pairs at n = 2,500 lie more than four
median neighbour distances apart in the latent cube (no fold within the neighbour scale); the coupling flow's
log-scales are bounded, so its anisotropy is too.

A geometry review after the split was committed, before any trusted ``dim`` was computed on it, found that it lacked
two families every earlier split had, a Gaussian mixture of separated clusters and a von Mises-type density, and
replaced two near-repeats by them: an erf network d = 2 -> R^32 + 5 % (close to the tune split's tanh network d = 2
-> R^32) and Johnson SU coordinates d = 6 + 5 % (close to the eleventh split's g-and-h coordinates d = 6 + 5 %); only
the rule-independent DANCo / TwoNN / MLE values had been computed on them. The new clouds keep the replaced ones'
noise (5 %) and were checked by geometry only. In the mixture (weights 0.4 / 0.25 / 0.2 / 0.15, scales 1 / 0.5 /
0.7 / 0.85) no point's 20 neighbours at n = 2,500 leave its cluster, the narrowest gap between two clusters (6.7) is
more than twice the widest cluster's median 20th-neighbour distance (2.9), each cluster's RMS radius (1.6 to 3.3) is
at least its median 20th-neighbour distance (1.5 to 2.9) and the smallest cluster holds about 300 points; the noise
(5 % of the whole cloud's RMS radius 7.5) is a quarter of the narrowest cluster's RMS radius. The von Mises-Fisher
density (``kappa`` 4) puts the median point 1.03 rad from its mode, 90 % within 1.5 rad: a non-uniform cap covering
most of a hemisphere, isotropic about its mode, so no lower-dimensional set holds the mass.

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`):
0 on 13 clouds, 1 % on 16, 5 % on 14. Truth = the manifold's dimension. Nothing here comes from a published
benchmark generator (scikit-dimension's ``BenchmarkManifolds``, DADApy's data sets). SciPy (Jacobi's elliptic
functions, ``erf``, Student's t distribution) is imported inside the samplers that need it, not at module level.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lightning_repgap.manifolds import sample_ball, sample_sphere, sample_torus
from studies.dimension_suite3 import Latent, Make, fixed
from studies.dimension_suite4 import random_network
from studies.dimension_suite7 import product
from studies.dimension_suite9 import residual_net

# --- curves ------------------------------------------------------------------------------------------------------


def _polar(r: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def seiffert_spiral(k: float, length: float) -> Make:
    """Seiffert's spherical spiral ``(sn(s) cos(k s), sn(s) sin(k s), cn(s))`` (modulus ``k``), ``0 <= s <= length``.

    ``s`` is the arc length on the unit sphere, so the points are uniform along the curve; it runs from pole to
    pole while turning about the axis.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        from scipy.special import ellipj  # lazily: scipy is not a runtime dependency

        s = rng.uniform(0.0, length, n)
        sn, cn, _, _ = ellipj(s, k * k)
        return np.stack([sn * np.cos(k * s), sn * np.sin(k * s), cn], axis=1)

    return fixed(sample)


def serpentine(t_min: float) -> Make:
    """Newton's serpentine ``y = x / (1 + x^2)`` as ``(cot t, sin t cos t)``, ``t`` uniform in ``[t_min, pi - t_min]``.

    The uniform angle makes the long arms sparse.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(t_min, math.pi - t_min, n)
        return np.stack([np.cos(t) / np.sin(t), np.sin(t) * np.cos(t)], axis=1)

    return fixed(sample)


def _chebyshev(t: np.ndarray, degree: int) -> np.ndarray:
    return np.polynomial.chebyshev.chebval(t, [0.0] * degree + [1.0])


def _chebyshev_knot(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(-0.9, 0.9, n)
    return np.stack([_chebyshev(t, 3), _chebyshev(t, 4), _chebyshev(t + 0.1, 5)], axis=1)


def chebyshev_knot() -> Make:
    """The Chebyshev curve ``(T_3(t), T_4(t), T_5(t + 0.1))``, ``t`` uniform in ``[-0.9, 0.9]`` (an arc in the cube).

    The three derivatives ``3 U_2``, ``4 U_3``, ``5 U_4(t + 0.1)`` never vanish together: an immersed curve, all of
    whose coordinates stay in ``[-1, 1]``.
    """
    return fixed(_chebyshev_knot)


def _butterfly(n: int, rng: np.random.Generator) -> np.ndarray:
    t = 2 * math.pi * rng.random(n)
    r = np.exp(np.sin(t)) - 2 * np.cos(4 * t) + np.sin((2 * t - math.pi) / 24) ** 5
    return _polar(r, t)


def butterfly() -> Make:
    """Fay's butterfly curve ``r = e^sin(t) - 2 cos 4t + sin^5((2t - pi) / 24)``, ``t`` uniform in ``[0, 2 pi]``.

    One of the twelve laps the whole curve takes to close (the twelve nearly repeat each other, so a whole curve
    would sit within a neighbour distance of itself at n = 2,500): self-crossing wings, an open arc.
    """
    return fixed(_butterfly)


def gear(teeth: int, sharpness: float) -> Make:
    """The gear curve ``r = 1 + tanh(b sin(teeth t)) / b`` (``b`` = ``sharpness``), ``t`` uniform on the circle."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.random(n)
        return _polar(1 + np.tanh(sharpness * np.sin(teeth * t)) / sharpness, t)

    return fixed(sample)


def _bean(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(-math.pi / 2, math.pi / 2, n)
    c, s = np.cos(t), np.sin(t)
    return _polar(c / (c**4 + c * c * s * s + s**4), t)


def bean() -> Make:
    """The bean curve ``x^4 + x^2 y^2 + y^4 = x (x^2 + y^2)``, ``r = cos t / (c^4 + c^2 s^2 + s^4)``, ``|t| < pi / 2``.

    ``c``, ``s`` are ``cos t``, ``sin t``; both ends of the parameter meet at the origin.
    """
    return fixed(_bean)


def freeth_nephroid() -> Make:
    """Freeth's nephroid ``r = 1 + 2 sin(t / 2)``, ``t`` uniform in ``[0, 4 pi]`` (an outer curve and an inner loop)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 4 * math.pi * rng.random(n)
        return _polar(1 + 2 * np.sin(t / 2), t)

    return fixed(sample)


# --- surfaces ----------------------------------------------------------------------------------------------------


def richmond(r_min: float, r_max: float) -> Make:
    """Richmond's minimal surface (one planar end), ``r`` uniform in ``[r_min, r_max]``, ``phi`` a full turn."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        r = rng.uniform(r_min, r_max, n)
        p = 2 * math.pi * rng.random(n)
        return np.stack(
            [
                -np.cos(p) / (2 * r) - r**3 * np.cos(3 * p) / 6,
                -np.sin(p) / (2 * r) + r**3 * np.sin(3 * p) / 6,
                r * np.cos(p),
            ],
            axis=1,
        )

    return fixed(sample)


def tranguloid_trefoil() -> Make:
    """Bagula's tranguloid trefoil, both parameters uniform in ``[-pi, pi]``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(-math.pi, math.pi, n)
        v = rng.uniform(-math.pi, math.pi, n)
        a, b = 2 + np.cos(v), 2 + np.cos(v + 2 * math.pi / 3)
        return np.stack(
            [
                2 * np.sin(3 * u) / a,
                2 * (np.sin(u) + 2 * np.sin(2 * u)) / b,
                (np.cos(u) - 2 * np.cos(2 * u)) * a * b / 4,
            ],
            axis=1,
        )

    return fixed(sample)


def corkscrew(shift: float) -> Make:
    """The corkscrew surface ``(cos u cos v, sin u cos v, sin v + shift u)``, ``|u| <= pi``, ``|v| <= pi / 2``.

    A unit sphere whose meridians are shifted along the axis by ``shift`` per radian: a sphere slit open along a
    meridian and sheared, embedded for ``shift < 1 / pi`` (the pole segments of height ``2 pi shift`` do not meet).
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(-math.pi, math.pi, n)
        v = rng.uniform(-math.pi / 2, math.pi / 2, n)
        return np.stack([np.cos(u) * np.cos(v), np.sin(u) * np.cos(v), np.sin(v) + shift * u], axis=1)

    return fixed(sample)


def ding_dong() -> Make:
    """The ding-dong surface ``(v sqrt(1 - v) cos u, v sqrt(1 - v) sin u, v)``, ``v`` uniform in ``[-1, 1]``.

    Its tip at ``v = 1`` is a smooth cap (``z = 1 - x^2 - y^2`` to first order, a finite density); its singular point
    is the double cone ``x^2 + y^2 = z^2`` at the origin (``v = 0``), where the density uniform in ``(u, v)`` grows
    like ``1 / r``.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = 2 * math.pi * rng.random(n)
        v = rng.uniform(-1.0, 1.0, n)
        w = v * np.sqrt(1 - v)
        return np.stack([w * np.cos(u), w * np.sin(u), v], axis=1)

    return fixed(sample)


def hyperbolic_helicoid(twist: float, extent: float) -> Make:
    """The hyperbolic helicoid of parameter ``twist`` (``|u|, |v| <= extent``), bounded by the unit ball's scale."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(-extent, extent, n)
        v = rng.uniform(-extent, extent, n)
        den = 1 + np.cosh(u) * np.cosh(v)
        return np.stack(
            [np.sinh(v) * np.cos(twist * u) / den, np.sinh(v) * np.sin(twist * u) / den, np.cosh(v) * np.sinh(u) / den],
            axis=1,
        )

    return fixed(sample)


def twisted_elliptic_torus(big: float, a: float, b: float, half_turns: int) -> Make:
    """A torus (radius ``big``) whose elliptic tube section (axes ``a``, ``b``) turns ``half_turns`` half-turns."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = 2 * math.pi * rng.random(n)
        v = 2 * math.pi * rng.random(n)
        al = half_turns * u / 2
        ex, ey = a * np.cos(v), b * np.sin(v)
        rho = ex * np.cos(al) - ey * np.sin(al)
        z = ex * np.sin(al) + ey * np.cos(al)
        return np.stack([(big + rho) * np.cos(u), (big + rho) * np.sin(u), z], axis=1)

    return fixed(sample)


def lemniscate_of_revolution() -> Make:
    """The lemniscate of Bernoulli ``(cos t, sin t cos t) / (1 + sin^2 t)`` revolved about its axis (two lobes).

    Uniform in ``t`` and the angle of revolution: where the curve meets the axis, at the double cone at the origin
    and at the poles ``(+-1, 0, 0)``, the density grows like ``1 / r``.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.random(n)
        p = math.pi * rng.random(n)
        den = 1 + np.sin(t) ** 2
        x, y = np.cos(t) / den, np.sin(t) * np.cos(t) / den
        return np.stack([x, y * np.cos(p), y * np.sin(p)], axis=1)

    return fixed(sample)


# --- networks ----------------------------------------------------------------------------------------------------


def _erf(h: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # lazily: scipy is not a runtime dependency

    return np.asarray(erf(h))


_ACTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "asinh": np.arcsinh,
    "tanhexp": lambda h: h * np.tanh(np.exp(np.minimum(h, 30.0))),
    "lisht": lambda h: h * np.tanh(h),
    "gd": lambda h: 2 * np.arctan(np.tanh(h / 2)),
    "serf": lambda h: h * _erf(np.logaddexp(0.0, h)),
}


def act_net(d: int, ambient: int, width: int, depth: int, gain: float, act: str) -> Make:
    """A random ``depth``-layer network (asinh, TanhExp, LiSHT, Gudermannian, Serf) of the cube ``[-1, 1]^d``."""
    return random_network(d, ambient, width, depth, gain, 0.5, _ACTS[act])


# --- non-uniform densities ---------------------------------------------------------------------------------------


def _hyperbolic_radius(n: int, rng: np.random.Generator, d: int, rho_max: float) -> np.ndarray:
    """Hyperbolic radii of density ``sinh^(d-1)`` on ``[0, rho_max]`` (inverse CDF on a fine grid)."""
    grid = np.linspace(0.0, rho_max, 8193)
    dens = np.sinh(grid) ** (d - 1)
    cdf = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) / 2)])
    return np.interp(rng.random(n) * cdf[-1], cdf, grid)


def poincare_ball(d: int, rho_max: float) -> Make:
    """The Poincaré ``d``-ball, uniform in *hyperbolic* volume up to hyperbolic radius ``rho_max``.

    A point at hyperbolic radius ``rho`` lies at Euclidean radius ``tanh(rho / 2)``; the Euclidean density grows like
    ``(1 - r^2)^-d`` towards the rim.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        r = np.tanh(_hyperbolic_radius(n, rng, d, rho_max) / 2)
        return r[:, None] * sample_sphere(n, d - 1, rng)

    return fixed(sample)


def t_copula(d: int, rho: float, dof: float) -> Make:
    """Uniform margins coupled by a Student-t copula (equal correlation ``rho``, ``dof`` degrees of freedom)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        from scipy.special import stdtr  # lazily: scipy is not a runtime dependency

        z = math.sqrt(rho) * rng.standard_normal((n, 1)) + math.sqrt(1 - rho) * rng.standard_normal((n, d))
        w = rng.gamma(dof / 2, 2.0, (n, 1)) / dof
        return np.asarray(stdtr(dof, z / np.sqrt(w)))

    return fixed(sample)


def johnson_su(d: int, gamma: float, delta: float) -> Make:
    """Independent Johnson SU coordinates ``sinh((Z - gamma) / delta)`` (skewed, heavier tails than a Gaussian)."""
    return fixed(lambda n, rng: np.sinh((rng.standard_normal((n, d)) - gamma) / delta))


def _raised_cosine_quantile(u: np.ndarray) -> np.ndarray:
    """Quantile of the raised cosine ``(1 + cos(pi x)) / 2`` on ``[-1, 1]`` (bisection on its CDF, 60 steps)."""
    lo, hi = np.full(u.shape, -1.0), np.full(u.shape, 1.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        below = (1 + mid + np.sin(math.pi * mid) / math.pi) / 2 < u
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (lo + hi) / 2


def raised_cosine(d: int) -> Make:
    """Independent raised-cosine coordinates, density ``(1 + cos(pi x)) / 2`` on ``[-1, 1]`` (zero at the faces)."""
    return fixed(lambda n, rng: _raised_cosine_quantile(rng.random((n, d))))


def solid_torus(big: float, small: float) -> Make:
    """The solid torus of radii ``big`` and ``small``, uniform in its parameters (angle and a point of the disc)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = 2 * math.pi * rng.random(n)
        disc = small * sample_ball(n, 2, rng)
        rad = big + disc[:, 0]
        return np.stack([rad * np.cos(u), rad * np.sin(u), disc[:, 1]], axis=1)

    return fixed(sample)


def _lkj_upper(n: int, rng: np.random.Generator, k: int, eta: float) -> np.ndarray:
    """Upper triangles of ``n`` LKJ(``eta``) ``k x k`` correlation matrices (Lewandowski et al.'s C-vine method)."""
    partial = np.zeros((n, k, k))
    corr = np.zeros((n, k, k))
    beta = eta + (k - 1) / 2
    for i in range(k - 1):
        beta -= 0.5
        for j in range(i + 1, k):
            partial[:, i, j] = 2 * rng.beta(beta, beta, n) - 1
            p = partial[:, i, j]
            for m in range(i - 1, -1, -1):  # partial correlations back to correlations
                p = (
                    p * np.sqrt((1 - partial[:, m, j] ** 2) * (1 - partial[:, m, i] ** 2))
                    + partial[:, m, j] * partial[:, m, i]
                )
            corr[:, i, j] = p
    iu = np.triu_indices(k, 1)
    return corr[:, iu[0], iu[1]]


def lkj_correlations(k: int, eta: float) -> Make:
    """LKJ(``eta``)-distributed ``k x k`` correlation matrices as their ``k (k - 1) / 2`` off-diagonal entries.

    The set of correlation matrices (the elliptope) is a convex body with a curved boundary; ``eta > 1`` piles the
    mass towards the identity.
    """
    return fixed(lambda n, rng: _lkj_upper(n, rng, k, eta))


def coupling_flow(d: int, layers: int, hidden: int, scale: float) -> Make:
    """A Gaussian in ``R^d`` through ``layers`` seeded affine coupling layers (a RealNVP-like diffeomorphism).

    Each layer permutes the coordinates and maps the second half ``b <- b exp(s) + t`` with ``s = scale tanh(.)``
    and ``t`` small tanh networks of the first half: the log-scale is bounded by ``scale`` per layer, so the image is
    no more anisotropic than ``exp(2 scale)`` per coordinate and layer pair.
    """

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        half = d // 2
        params = []
        for _ in range(layers):
            perm = frng.permutation(d)
            w1 = frng.standard_normal((half, hidden)) / math.sqrt(half)
            b1 = frng.standard_normal(hidden) * 0.5
            ws = frng.standard_normal((hidden, d - half)) / math.sqrt(hidden)
            wt = frng.standard_normal((hidden, d - half)) / math.sqrt(hidden)
            params.append((perm, w1, b1, ws, wt))

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            z = rng.standard_normal((n, d))
            for perm, w1, b1, ws, wt in params:
                z = z[:, perm]
                h = np.tanh(z[:, :half] @ w1 + b1)
                z = np.concatenate([z[:, :half], z[:, half:] * np.exp(scale * np.tanh(h @ ws)) + h @ wt], axis=1)
            return z

        return sample

    return make


def beta_prime(d: int, a: float, b: float) -> Make:
    """Independent beta-prime(``a``, ``b``) coordinates ``G_a / G_b`` (right-skewed, a heavy right tail)."""
    return fixed(lambda n, rng: rng.gamma(a, 1.0, (n, d)) / rng.gamma(b, 1.0, (n, d)))


def von_mises_fisher(d: int, kappa: float) -> Make:
    """The von Mises-Fisher density ``exp(kappa x_0)`` on :math:`S^d` (in :math:`R^{d+1}`), drawn without rejection.

    The height ``w = x_0`` has density proportional to ``exp(kappa w) (1 - w^2)^((d - 2) / 2)`` on ``[-1, 1]`` and is
    drawn by the inverse of its CDF on a fine grid (so every point is a smooth function of its draws, unlike a
    rejection sampler); the rest is ``sqrt(1 - w^2)`` times a uniform point of :math:`S^{d-1}`.
    """
    grid = np.linspace(-1.0, 1.0, 8193)
    dens = np.exp(kappa * (grid - 1)) * (1 - grid**2) ** ((d - 2) / 2)
    cdf = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) / 2)])

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        w = np.interp(rng.random(n) * cdf[-1], cdf, grid)
        return np.concatenate([w[:, None], np.sqrt(1 - w**2)[:, None] * sample_sphere(n, d - 1, rng)], axis=1)

    return fixed(sample)


def separated_mixture(d: int, weights: tuple[float, ...], scales: tuple[float, ...], spacing: float) -> Make:
    """Separated Gaussians in ``R^d`` of unequal ``weights`` and ``scales`` (isotropic, standard deviation per axis).

    The centres sit on seeded orthonormal directions at seeded distances ``uniform(spacing, 1.5 spacing) sqrt(d)``
    from the origin, so any two are at least ``spacing sqrt(2 d)`` apart, while a cluster's RMS radius is its scale
    times ``sqrt(d)``: with scales at most 1 and ``spacing`` 2 the clusters are separated by gaps wider than their
    own radii.
    """
    w, sd = np.asarray(weights) / sum(weights), np.asarray(scales)

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(frng.standard_normal((d, len(w))))
        centres = (q * frng.uniform(spacing, 1.5 * spacing, len(w)) * math.sqrt(d)).T

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            j = rng.choice(len(w), n, p=w)
            return centres[j] + rng.standard_normal((n, d)) * sd[j][:, None]

        return sample

    return make


def _projectors(n: int, rng: np.random.Generator, k: int) -> np.ndarray:
    """Rank-one Hermitian projectors ``v v*`` of ``C^k`` (``v`` uniform on the unit sphere): :math:`CP^{k-1}`.

    Flattened as the real diagonal and ``sqrt(2)`` times the real and imaginary parts of the upper triangle (an
    isometric embedding of the Hermitian matrices), ``k^2`` coordinates; the dimension is ``2 (k - 1)``.
    """
    s = sample_sphere(n, 2 * k - 1, rng)
    v = s[:, :k] + 1j * s[:, k:]
    p = v[:, :, None] * np.conj(v[:, None, :])
    iu = np.triu_indices(k, 1)
    up = p[:, iu[0], iu[1]]
    return np.concatenate([np.diagonal(p, axis1=1, axis2=2).real, math.sqrt(2) * up.real, math.sqrt(2) * up.imag], 1)


def complex_projective(k: int) -> Make:
    """The complex projective space :math:`CP^{k-1}` (dimension ``2 (k - 1)``), Fubini-Study uniform."""
    return fixed(lambda n, rng: _projectors(n, rng, k))


def _circle(radius: float) -> Latent:
    return lambda n, rng: radius * sample_sphere(n, 1, rng)


def twelfth_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the twelfth split."""
    s = "twelfth"
    disc = poincare_ball(2, 2.0)(0)
    su2: Latent = johnson_su(2, 0.5, 1.5)(0)
    return [
        # --- curves
        ("Seiffert's spherical spiral, k 0.3 + 1 %", "curve", 1, 12, 0.01, s, 1301, seiffert_spiral(0.3, 20.0)),
        ("Newton's serpentine + 5 %", "curve", 1, 10, 0.05, s, 1302, serpentine(0.2)),
        ("Chebyshev curve (T3, T4, T5), |t| <= 0.9", "curve", 1, 9, 0.0, s, 1303, chebyshev_knot()),
        ("butterfly curve + 1 %", "curve", 1, 10, 0.01, s, 1304, butterfly()),
        ("gear curve, 8 teeth + 5 %", "curve", 1, 12, 0.05, s, 1305, gear(8, 5.0)),
        ("asinh net d=1 -> R^24 + 5 %", "curve", 1, 24, 0.05, s, 1306, act_net(1, 24, 24, 3, 2.5, "asinh")),
        ("bean curve", "curve", 1, 8, 0.0, s, 1307, bean()),
        ("Freeth's nephroid + 1 %", "curve", 1, 10, 0.01, s, 1308, freeth_nephroid()),
        # --- surfaces
        ("Richmond's minimal surface + 1 %", "surface", 2, 12, 0.01, s, 1311, richmond(0.4, 1.3)),
        ("tranguloid trefoil", "surface", 2, 14, 0.0, s, 1312, tranguloid_trefoil()),
        ("corkscrew surface, shift 0.25 + 5 %", "surface", 2, 10, 0.05, s, 1313, corkscrew(0.25)),
        ("ding-dong surface + 1 %", "surface", 2, 12, 0.01, s, 1314, ding_dong()),
        ("hyperbolic helicoid, twist 3", "surface", 2, 10, 0.0, s, 1315, hyperbolic_helicoid(3.0, 3.0)),
        (
            "elliptic torus, section turning 3 half-turns + 5 %",
            "surface",
            2,
            15,
            0.05,
            s,
            1316,
            twisted_elliptic_torus(2.0, 0.8, 0.3, 3),
        ),
        ("lemniscate of revolution + 1 %", "surface", 2, 9, 0.01, s, 1317, lemniscate_of_revolution()),
        # --- network images
        ("TanhExp net d=4 -> R^44", "network", 4, 44, 0.0, s, 1322, act_net(4, 44, 40, 3, 1.5, "tanhexp")),
        ("LiSHT net d=6 -> R^56 + 1 %", "network", 6, 56, 0.01, s, 1323, act_net(6, 56, 48, 3, 1.2, "lisht")),
        ("Gudermannian net d=9 -> R^80", "network", 9, 80, 0.0, s, 1324, act_net(9, 80, 72, 3, 1.5, "gd")),
        ("Serf net d=13 -> R^104 + 5 %", "network", 13, 104, 0.05, s, 1325, act_net(13, 104, 96, 2, 1.2, "serf")),
        (
            "residual asinh net d=16 -> R^128 + 1 %",
            "network",
            16,
            128,
            0.01,
            s,
            1326,
            residual_net(16, 128, 112, 2, 1.0, np.arcsinh),
        ),
        # --- non-uniform densities
        ("hyperbolic-uniform Poincare ball d=3 + 1 %", "density", 3, 12, 0.01, s, 1331, poincare_ball(3, 2.0)),
        ("Student-t copula d=4, rho 0.6, 2 dof", "density", 4, 16, 0.0, s, 1332, t_copula(4, 0.6, 2.0)),
        ("von Mises-Fisher density on S^6, kappa 4 + 5 %", "density", 6, 24, 0.05, s, 1339, von_mises_fisher(6, 4.0)),
        ("raised-cosine coordinates d=5 + 1 %", "density", 5, 20, 0.01, s, 1334, raised_cosine(5)),
        ("solid torus, radii 1 and 0.5", "density", 3, 12, 0.0, s, 1335, solid_torus(1.0, 0.5)),
        ("LKJ 4x4 correlation matrices, eta 2 + 1 %", "density", 6, 24, 0.01, s, 1336, lkj_correlations(4, 2.0)),
        ("affine-coupling flow of a Gaussian d=8 + 5 %", "density", 8, 32, 0.05, s, 1337, coupling_flow(8, 4, 16, 0.4)),
        ("beta-prime(3, 4) coordinates d=7", "density", 7, 28, 0.0, s, 1338, beta_prime(7, 3.0, 4.0)),
        (
            "separated Gaussian mixture d=11, 4 unequal comp. + 5 %",
            "density",
            11,
            40,
            0.05,
            s,
            1330,
            separated_mixture(11, (0.4, 0.25, 0.2, 0.15), (1.0, 0.5, 0.7, 0.85), 2.0),
        ),
        # --- higher dimension
        ("complex projective space CP^6", "high_d", 12, 64, 0.0, s, 1341, complex_projective(7)),
        ("Johnson SU coordinates d=15 + 1 %", "high_d", 15, 48, 0.01, s, 1342, johnson_su(15, -0.3, 2.0)),
        ("raised-cosine coordinates d=20 + 5 %", "high_d", 20, 64, 0.05, s, 1343, raised_cosine(20)),
        ("Gaussian d=23 + 1 %", "high_d", 23, 72, 0.01, s, 1344, fixed(lambda n, rng: rng.standard_normal((n, 23)))),
        ("sphere S^25", "high_d", 25, 80, 0.0, s, 1345, fixed(lambda n, rng: sample_sphere(n, 25, rng))),
        ("ball B^17 + 5 %", "high_d", 17, 56, 0.05, s, 1346, fixed(lambda n, rng: sample_ball(n, 17, rng))),
        ("torus T^13 + 1 %", "high_d", 13, 48, 0.01, s, 1347, fixed(lambda n, rng: sample_torus(n, 13, rng))),
        ("LKJ 7x7 correlation matrices, eta 3", "high_d", 21, 64, 0.0, s, 1348, lkj_correlations(7, 3.0)),
        # --- products
        ("bean curve x circle of radius 0.5 + 5 %", "product", 2, 12, 0.05, s, 1351, product(_bean, _circle(0.5))),
        (
            "hyperbolic-uniform Poincare disc x circle + 1 %",
            "product",
            3,
            12,
            0.01,
            s,
            1352,
            product(disc, _circle(0.8)),
        ),
        (
            "CP^2 x S^2",
            "product",
            6,
            24,
            0.0,
            s,
            1353,
            product(lambda n, rng: _projectors(n, rng, 3), lambda n, rng: sample_sphere(n, 2, rng)),
        ),
        (
            "Chebyshev curve x Johnson SU plane + 5 %",
            "product",
            3,
            12,
            0.05,
            s,
            1354,
            product(_chebyshev_knot, su2),
        ),
        (
            "S^5 x T^2 x [0,2]^2 + 1 %",
            "product",
            9,
            32,
            0.01,
            s,
            1355,
            product(
                lambda n, rng: sample_sphere(n, 5, rng),
                lambda n, rng: sample_torus(n, 2, rng, radius=1.0),
                lambda n, rng: 2 * rng.random((n, 2)),
            ),
        ),
        (
            "S^1 x S^9 + 5 %",
            "product",
            10,
            36,
            0.05,
            s,
            1356,
            product(_circle(1.0), lambda n, rng: sample_sphere(n, 9, rng)),
        ),
    ]


__all__ = ["twelfth_specs"]
