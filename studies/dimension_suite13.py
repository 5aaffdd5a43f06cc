r"""The thirteenth split of the trusted-``dim`` suite (issue #14): 43 clouds written before the thirteenth tuning round.

The twelve earlier splits (:mod:`studies.dimension_suite`'s tune / held-out / fresh halves and the third to twelfth
splits of :mod:`studies.dimension_suite3` to :mod:`studies.dimension_suite12`, 447 clouds) were all opened while the
rule was tuned, so they are tuning data. This split (``split="thirteenth"``, seeds 14xx) was written and committed
*before* the thirteenth round of tuning and is measured once, after the rule is frozen. It follows the issue's family
list with shapes, densities and embeddings that are mostly new. Re-dimensioned repeats and near-repeats of earlier
families, listed so that nobody counts them as new: the ordinary clouds (the sphere :math:`S^{27}`, the ball
:math:`B^{22}`, the flat torus :math:`T^{15}`, the cube :math:`[0, 1]^{11}` and a 19-d Gaussian: every split has such
clouds at other dimensions); coordinates with Beta densities (the mixed-Beta cube at d = 7 and the semicircle
coordinates, Beta(1.5, 1.5), at d = 9: the Beta cubes of the tune, held-out, fresh, third and eighth splits, the
Kumaraswamy cubes of the ninth); the sine-skewed von Mises 4-torus (the von Mises tori of the tune, held-out, fresh,
third, seventh, eighth, ninth and tenth splits, here skewed); the separated mixture of a Gaussian, a uniform ball and
a narrow Gaussian at d = 6 (the twelfth split's separated Gaussian mixture at d = 11, the Gaussian mixtures of nine
earlier splits, the ninth split's Gaussian-plus-cube mixture at d = 9); the residual network (third, ninth, tenth,
eleventh and twelfth splits; here with the growing-cosine activation ``h cos h``); the Cauchy-activation network
``1 / (1 + h^2)`` (a bump, like the seventh and tenth splits' Gaussian-activation networks); the Smish, Logish and
ELiSH networks (self-gated activations like the sixth split's mish, the ninth's SiLU, the fifth and ninth's GELU and
the twelfth's Serf and TanhExp); the image of an interval under a random network (the GCU network curve d = 1 ->
:math:`R^{24}` + 1 %: the sixth split's ReLU network d = 1 -> :math:`R^{24}` + 1 % has the same family, d, D and noise,
and networks d = 1 -> :math:`R^{24}` + 5 % are in the fourth, ninth, tenth and twelfth splits; the Smish network d = 3
-> :math:`R^{36}` and the Cauchy network d = 5 -> :math:`R^{50}` share d and D with networks of the ninth and tenth
splits); the Lagrangian flat torus in :math:`R^6` (a flat 2-torus like the sixth split's
flat torus in :math:`R^4`, here with a hexagonal lattice); the special unitary group :math:`SU(3)` (the fifth
split's unitary group :math:`U(4)`, the fourth split's rotation groups); the complex Grassmannian
:math:`G_C(2, 5)` (the twelfth split's :math:`CP^6 = G_C(1, 7)`, the fourth and eleventh splits' real
Grassmannians); the squircle (a Lamé curve: the ninth split's superellipsoid is the surface of the same family); the
rational curve (the fifth split's moment curve and the sixth split's Bézier curve are polynomial relatives); the
uniform solid cone (the fifth split's solid helix tube and the twelfth split's solid torus, other solid 3-d regions,
and the sixth split's double cone, its surface); the log-Euclidean SPD matrices (the sixth split's Wishart 3 x 3
matrices); the :math:`l_4` ball (the fifth split's cross-polytope, the :math:`l_1` ball, and the eleventh split's
:math:`l_{1/2}` ball); the teardrop and the heart curve (cusped closed curves like the seventh split's astroid and
the eighth's deltoid); the Sudanese Möbius band (the third split's Möbius strip in :math:`R^3` and its
:math:`S^1 \times` Möbius product); the hyperbolic wrapped normal (the twelfth split's hyperbolic-uniform Poincaré
ball, another density on hyperbolic space); the vase (surfaces of revolution: the catenoid, pseudosphere, spindle
torus and others of earlier splits); the product :math:`S^2 \times S^3 \times S^4` (many earlier splits multiply
spheres):

* curves: a river meander (sine-generated curve: heading ``1.5 sin(2 pi s / L)``, uniform in arc length), Cayley's
  sextic (an inner loop), the teardrop curve (a cusp), the dumbbell curve (a tacnode at the origin), the heart curve
  (two cusps), the Steinmetz curve (the two closed loops where two cylinders of radii 1 and 1.3 meet), a squircle
  ``x^4 + y^4 = 1`` uniform in a parameter that makes the flat sides sparse, a seeded rational curve of degree 4 in
  :math:`R^{12}`, the image of an interval under a random growing-cosine-unit (``h cos h``) network;
* surfaces: the pillow (a closed surface with a fold along its rim and four corners), the umbilic torus, a Hopf torus
  in :math:`S^3` (the preimage of a wavy latitude under the Hopf map), a vase (a surface of revolution of radius
  ``1 + 0.4 sin 2z``), the minimal Lagrangian flat torus ``(e^{iu}, e^{iv}, e^{-i(u+v)}) / sqrt 3`` in :math:`S^5`,
  Bourke's crescent (a tube of radius ``sin(2 pi v)``: two tube lobes joined at three pinch points, both ends and
  ``v = 1/2``), the Sudanese Möbius band in :math:`S^3`;
* network images: Smish ``h tanh(log(1 + sigmoid h))`` (d = 3), Cauchy ``1 / (1 + h^2)`` (d = 5), Logish
  ``h log(1 + sigmoid h)`` (d = 7), ELiSH (d = 11) and a residual ``h cos h`` network (d = 18);
* non-uniform densities: mixed Beta coordinates (each coordinate its own seeded Beta(a, b), d = 7), a sine-skewed von
  Mises 4-torus, a separated mixture of three clusters of different shapes (a Gaussian, a uniform ball and a narrow
  Gaussian, unequal weights, d = 6), the uniform solid cone in :math:`R^4`, the eigenvalues of 5 x 5 GUE matrices
  (level repulsion: the density vanishes quadratically where two eigenvalues meet), Haar-uniform :math:`SU(3)`, the
  wrapped normal on the hyperboloid model of hyperbolic 3-space, semicircle (Beta(1.5, 1.5)) coordinates (d = 9);
* higher dimension: the complex Grassmannian :math:`G_C(2, 5)` (d = 12), the uniform :math:`l_4` ball (d = 14),
  log-Euclidean 5 x 5 SPD matrices ``exp(S)`` (d = 15), and ordinary clouds (:math:`S^{27}`, :math:`B^{22}`,
  :math:`T^{15}`, :math:`[0, 1]^{11}`, a 19-d Gaussian);
* products: Cayley's sextic times a Beta(2, 3) interval, the teardrop times a sphere, :math:`S^2 \times S^3 \times
  S^4`, the solid 3-cone times a circle, the Steinmetz curve times a disc, the dumbbell curve times a von Mises circle.

Scales were checked against the neighbour scale before the split was committed (geometry only, no estimate; clean clouds
of 2,500 points, 20th-neighbour distances ``k20``). Curves: no point of the meander, the Steinmetz curve (its loops 1.66
apart, ``k20`` 0.05), the squircle's other sides, the rational curve or the network curve has a 20-neighbour more than
four median neighbour arc lengths away along the curve except where the shape itself brings the curve together: the
dumbbell's tacnode (8.5 % of the points), the heart's two cusps (5.6 %), Cayley's sextic's crossing (2.0 %), the
teardrop's cusp (1.7 %); on the squircle 10.6 % of the points reach that far *along* their own side, where the density
vanishes linearly at the side's midpoint. Cayley's sextic is drawn uniform in arc length (uniform in ``t`` put 14 % of
the points within 0.01 of the origin). The meander's position is integrated in closed form (a first version interpolated
a table linearly, so that its points were exactly collinear between knots 0.0006 apart; DANCo, fitted after the first
commit, returned NaN on it; the curve itself moved by at most 1.4e-7). In the network images at most 0.012 % of the
20-neighbour pairs lie more than four median neighbour distances apart in the latent cube (the Cauchy network at gain 1;
0.19 % at gain 1.5, so the gain was lowered). Surfaces: no 20-neighbour pair of the vase, the Hopf torus or the Sudanese
band is far apart in the parameters; the umbilic torus's section is a deltoid, so the surface has three cuspidal ridges
and 50 % of its points have a 20-neighbour across a ridge (12 % of the pairs) at n = 2,500: a surface folded sharply,
2-d at every regular point. A review before any estimate measured what this list understates (none of it changes a
truth; clean TwoNN / MLE read every one of these clouds within about 0.1 of its dimension, e.g. the umbilic torus 2.10 /
2.01 and the teardrop x sphere 2.90 / 3.02 at 2,500): the crescent's tube radius vanishes at ``v = 1/2`` too, and with
``v`` uniform about 27 % / 9 % of its points (n = 2,500 / 20,000) lie where the radius is below ``k20``; the umbilic
torus, both parameters uniform, has a density diverging like ``s^(-1/2)`` at its three ridges (``s`` the arc distance
within the section: 12 % of the points within 0.05 of a ridge, 1.9 % if area-uniform); the teardrop and heart curves,
uniform in ``t``, have densities like ``s^(-1/2)`` at their cusps (about 4.5 % / 6 % of the points within arc length
0.01 of a cusp; Cayley's sextic, redrawn in arc length for the same reason, is not); in the products a neighbour whose
distance along the curve exceeds twice its Euclidean distance is more frequent than in the bare curves: dumbbell x von
Mises circle 22 % / 12 %, Cayley x Beta interval 10 % / 4.7 % (its inner loop, 6.4 % of the points, is 0.125 across,
about ``k20``), teardrop x sphere 18 % / 16 % (near the cusp); and the mixture's noise, 5 % of the whole cloud's radius
as everywhere in the suite, is 25 % of its narrow cluster's radius and 15-17 % of the other two's. (Maeder's owl, first
written here, was replaced before the commit: its two sheets lie over the same plane region and 41 % of its points had a
20-neighbour on the other sheet.) Products: in every product the 20th neighbour's displacement within each factor is
below that factor's RMS radius (teardrop x sphere: 0.26 of the sphere's 0.6 before the sphere's radius was raised to
0.8). The mixture's 20-neighbour graph at n = 2,500 splits into its three clusters (51 / 29 / 19 % of the points); the
narrowest gap between clusters (7.6) is more than twice the widest cluster's median ``k20`` (1.6), each cluster's RMS
radius (1.5 to 2.5) is at least its median ``k20`` (1.1 to 1.6), and the noise (5 % of the cloud's RMS radius 7.4) is a
quarter of the narrowest cluster's RMS radius. The covariance of every clean cloud has a condition number at most 8 over
its top ``dim`` directions except the mixture (43, the three centres). The hyperbolic wrapped normal's height ``x_0``
has median 1.65 and 99th percentile 5.5.

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`):
0 on 13 clouds, 1 % on 16, 5 % on 14. Truth = the manifold's dimension (checked by the rank of every sampler's
Jacobian in its draws, tests/test_dimension_suite13.py). Nothing here comes from a published benchmark generator
(scikit-dimension's ``BenchmarkManifolds``, DADApy's data sets). No sampler rejects draws; the circular densities are
drawn by the inverse of their CDF on a fine grid. SciPy is not used.
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


def _polar(r: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _inverse_cdf(grid: np.ndarray, dens: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The inverse of the CDF of ``dens`` (values on ``grid``), by linear interpolation of the trapezoid CDF."""
    cdf = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) / 2 * np.diff(grid))])
    cdf = cdf / cdf[-1]
    return lambda u: np.interp(u, cdf, grid)


# --- curves ------------------------------------------------------------------------------------------------------


def _bessel_j(m: int, a: float) -> float:
    """``J_m(a)`` from Bessel's integral ``(1 / 2 pi) int cos(m t - a sin t) dt`` (periodic: the grid mean is exact)."""
    t = np.linspace(0.0, 2 * math.pi, 512, endpoint=False)
    return float(np.mean(np.cos(m * t - a * np.sin(t))))


def meander_xy(s: np.ndarray, amplitude: float, wavelength: float, terms: int = 24) -> np.ndarray:
    """The sine-generated curve of heading ``amplitude sin(k s)`` (``k = 2 pi / wavelength``) at arc length ``s``.

    Integrated in closed form by the Jacobi-Anger expansions ``cos(a sin u) = J_0(a) + 2 sum J_2m(a) cos(2 m u)`` and
    ``sin(a sin u) = 2 sum J_(2m-1)(a) sin((2m - 1) u)`` (``terms`` terms each; they fall off like ``(a / 2)^m / m!``).
    """
    k = 2 * math.pi / wavelength
    x = _bessel_j(0, amplitude) * s
    y = np.zeros_like(s)
    for m in range(1, terms + 1):
        x = x + _bessel_j(2 * m, amplitude) * np.sin(2 * m * k * s) / (m * k)
        y = y + 2 * _bessel_j(2 * m - 1, amplitude) * (1 - np.cos((2 * m - 1) * k * s)) / ((2 * m - 1) * k)
    return np.stack([x, y], axis=1)


def meander(amplitude: float, wavelength: float, waves: float) -> Make:
    """A sine-generated (river-meander) curve: heading ``amplitude sin(2 pi s / wavelength)`` at arc length ``s``.

    ``s`` is uniform in ``[0, waves * wavelength]`` (uniform along the curve); the position is :func:`meander_xy`.
    """
    return fixed(lambda n, rng: meander_xy(rng.uniform(0.0, waves * wavelength, n), amplitude, wavelength))


_CAYLEY_T = np.linspace(0.0, 3 * math.pi, 20001)
_CAYLEY_S = _CAYLEY_T / 2 + 0.75 * np.sin(2 * _CAYLEY_T / 3)  # arc length: the speed is cos^2(t / 3)


def _cayley(n: int, rng: np.random.Generator) -> np.ndarray:
    t = np.interp(rng.uniform(0.0, 1.5 * math.pi, n), _CAYLEY_S, _CAYLEY_T)
    return _polar(np.cos(t / 3) ** 3, t)


def cayley_sextic() -> Make:
    """Cayley's sextic ``r = cos^3(t / 3)``, ``0 <= t <= 3 pi``, uniform in arc length (total ``3 pi / 2``).

    A closed curve that crosses itself once, at ``(-1 / 8, 0)``, and passes through the origin (``t = 3 pi / 2``)
    with infinite curvature. Uniform in ``t`` it would put 14 % of its points within arc length 0.01 of the origin
    (the speed ``cos^2(t / 3)`` vanishes there), so ``t`` is drawn uniform in arc length
    ``s(t) = t / 2 + (3 / 4) sin(2 t / 3)``, inverted on a fine grid.
    """
    return fixed(_cayley)


def _teardrop(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0.0, 2 * math.pi, n)
    return np.stack([np.cos(t), np.sin(t) * np.sin(t / 2) ** 2], axis=1)


def teardrop() -> Make:
    """The teardrop curve ``(cos t, sin t sin^2(t / 2))``, ``t`` uniform: a cusp at ``(1, 0)``, round at ``(-1, 0)``."""
    return fixed(_teardrop)


def _dumbbell(n: int, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0.0, 2 * math.pi, n)
    s = np.sin(t)
    return np.stack([s, s * s * np.cos(t)], axis=1)


def dumbbell() -> Make:
    """The dumbbell curve ``y^2 = x^4 (1 - x^2)`` as ``(sin t, sin^2 t cos t)``: two lobes tangent at the origin."""
    return fixed(_dumbbell)


def heart() -> Make:
    """The heart curve ``(16 sin^3 t, 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t) / 16``, ``t`` uniform (two cusps)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(0.0, 2 * math.pi, n)
        y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        return np.stack([16 * np.sin(t) ** 3, y], axis=1) / 16

    return fixed(sample)


def _steinmetz(n: int, rng: np.random.Generator, b: float) -> np.ndarray:
    t = rng.uniform(0.0, 2 * math.pi, n)
    side = 2.0 * rng.integers(0, 2, n) - 1.0
    return np.stack([np.cos(t), np.sin(t), side * np.sqrt(b * b - np.cos(t) ** 2)], axis=1)


def steinmetz(b: float) -> Make:
    """Where the cylinders ``x^2 + y^2 = 1`` and ``x^2 + z^2 = b^2`` (``b > 1``) meet: two closed loops (``z >< 0``).

    Uniform in the angle ``t`` of the first cylinder, each loop with probability 1 / 2; the loops are at least
    ``2 sqrt(b^2 - 1)`` apart.
    """
    return fixed(lambda n, rng: _steinmetz(n, rng, b))


def squircle() -> Make:
    """The Lamé curve ``x^4 + y^4 = 1`` as ``(sgn cos t |cos t|^(1/2), sgn sin t |sin t|^(1/2))``, ``t`` uniform.

    The parameter runs fast over the flat sides (the speed grows like ``|cos t|^(-1/2)`` near ``t = pi / 2``), so the
    sides are sparse and the rounded corners dense.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(0.0, 2 * math.pi, n)
        c, s = np.cos(t), np.sin(t)
        return np.stack([np.sign(c) * np.sqrt(np.abs(c)), np.sign(s) * np.sqrt(np.abs(s))], axis=1)

    return fixed(sample)


def rational_curve(ambient: int, degree: int, extent: float) -> Make:
    """A seeded rational curve ``p(t) / (1 + t^2)^(degree / 2)`` in ``R^ambient``, ``t`` uniform in ``|t| <= extent``.

    ``p`` has ``ambient`` coordinates, each a polynomial of degree ``degree`` with N(0, 1) coefficients, so the curve
    stays bounded and flattens towards both ends.
    """

    def make(seed: int) -> Latent:
        coef = np.random.default_rng(seed).standard_normal((degree + 1, ambient))

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            t = rng.uniform(-extent, extent, n)
            powers = t[:, None] ** np.arange(degree + 1)
            return powers @ coef / ((1 + t * t) ** (degree / 2))[:, None]

        return sample

    return make


# --- surfaces ----------------------------------------------------------------------------------------------------


def pillow(height: float) -> Make:
    """The pillow ``(cos u, cos v, height sin u sin v)``, ``u`` uniform in ``[0, pi]``, ``v`` in ``[-pi, pi]``.

    A closed surface over the square ``[-1, 1]^2``: its two halves (``z >= 0``, ``z <= 0``) meet in a fold along the
    square's rim and in four corners.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(0.0, math.pi, n)
        v = rng.uniform(-math.pi, math.pi, n)
        return np.stack([np.cos(u), np.cos(v), height * np.sin(u) * np.sin(v)], axis=1)

    return fixed(sample)


def umbilic_torus() -> Make:
    """The umbilic torus (a torus of triangular section turning a third of a turn), both parameters uniform."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(-math.pi, math.pi, n)
        v = rng.uniform(-math.pi, math.pi, n)
        rad = 7 + np.cos(u / 3 - 2 * v) + 2 * np.cos(u / 3 + v)
        z = np.sin(u / 3 - 2 * v) + 2 * np.sin(u / 3 + v)
        return np.stack([np.sin(u) * rad, np.cos(u) * rad, z], axis=1)

    return fixed(sample)


def hopf_torus(amplitude: float, waves: int) -> Make:
    """The Hopf torus over the wavy latitude ``theta = pi / 2 + amplitude sin(waves phi)`` of :math:`S^2`, in ``R^4``.

    The points ``(cos(theta / 2) e^{i (beta + phi)}, sin(theta / 2) e^{i beta})`` of :math:`S^3` map to the base
    point ``(theta, phi)`` under the Hopf map; ``phi`` and the fibre angle ``beta`` are uniform.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        phi = rng.uniform(0.0, 2 * math.pi, n)
        beta = rng.uniform(0.0, 2 * math.pi, n)
        half = (math.pi / 2 + amplitude * np.sin(waves * phi)) / 2
        a, b = np.cos(half), np.sin(half)
        return np.stack([a * np.cos(beta + phi), a * np.sin(beta + phi), b * np.cos(beta), b * np.sin(beta)], axis=1)

    return fixed(sample)


def vase(amplitude: float, height: float) -> Make:
    """The surface of revolution of radius ``1 + amplitude sin(2 z)``, ``z`` uniform in ``[0, height]``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.uniform(0.0, height, n)
        a = rng.uniform(0.0, 2 * math.pi, n)
        r = 1 + amplitude * np.sin(2 * z)
        return np.stack([r * np.cos(a), r * np.sin(a), z], axis=1)

    return fixed(sample)


def lagrangian_torus() -> Make:
    """The minimal Lagrangian flat torus ``(e^{iu}, e^{iv}, e^{-i(u + v)}) / sqrt 3`` of :math:`S^5` (hexagonal)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(0.0, 2 * math.pi, n)
        v = rng.uniform(0.0, 2 * math.pi, n)
        w = -(u + v)
        return np.stack([np.cos(u), np.sin(u), np.cos(v), np.sin(v), np.cos(w), np.sin(w)], axis=1) / math.sqrt(3)

    return fixed(sample)


def crescent() -> Make:
    """Bourke's crescent, ``u``, ``v`` uniform in ``[0, 1]``: a tube of radius ``sin(2 pi v)``, pinched thrice.

    ``(r sin(3 pi v), r cos(3 pi v), cos(2 pi u) sin(2 pi v) + 4 v - 2)`` with ``r = 2 + sin(2 pi u) sin(2 pi v)``.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.random(n)
        v = rng.random(n)
        rad = 2 + np.sin(2 * math.pi * u) * np.sin(2 * math.pi * v)
        z = np.cos(2 * math.pi * u) * np.sin(2 * math.pi * v) + 4 * v - 2
        return np.stack([rad * np.sin(3 * math.pi * v), rad * np.cos(3 * math.pi * v), z], axis=1)

    return fixed(sample)


def sudanese_moebius() -> Make:
    """The Sudanese Möbius band ``(sin(eta) e^{i phi}, cos(eta) e^{i phi / 2})`` in :math:`S^3`, in ``R^4``.

    ``eta`` uniform in ``[0, pi]``, ``phi`` in ``[0, 2 pi]``: an embedded Möbius band whose boundary
    (``eta = 0`` and ``pi``) is one round circle.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        eta = rng.uniform(0.0, math.pi, n)
        phi = rng.uniform(0.0, 2 * math.pi, n)
        a, b = np.sin(eta), np.cos(eta)
        return np.stack([a * np.cos(phi), a * np.sin(phi), b * np.cos(phi / 2), b * np.sin(phi / 2)], axis=1)

    return fixed(sample)


# --- networks ----------------------------------------------------------------------------------------------------


def _sigmoid(h: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1 + np.tanh(h / 2)))


def _elish(h: np.ndarray) -> np.ndarray:
    return np.where(h < 0, np.expm1(np.minimum(h, 0.0)), h) * _sigmoid(h)


_ACTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gcu": lambda h: h * np.cos(h),
    "smish": lambda h: h * np.tanh(np.log1p(_sigmoid(h))),
    "cauchy": lambda h: 1 / (1 + h * h),
    "logish": lambda h: h * np.log1p(_sigmoid(h)),
    "elish": _elish,
}


def act_net(d: int, ambient: int, width: int, depth: int, gain: float, act: str) -> Make:
    """A random ``depth``-layer network (growing cosine, Smish, Cauchy, Logish, ELiSH) of the cube ``[-1, 1]^d``."""
    return random_network(d, ambient, width, depth, gain, 0.5, _ACTS[act])


# --- non-uniform densities ---------------------------------------------------------------------------------------


def mixed_beta(d: int, low: float, high: float) -> Make:
    """Independent coordinates, the ``i``-th Beta(``a_i``, ``b_i``) with ``a_i``, ``b_i`` seeded in ``[low, high]``."""

    def make(seed: int) -> Latent:
        ab = np.random.default_rng(seed).uniform(low, high, (2, d))
        return lambda n, rng: rng.beta(ab[0], ab[1], (n, d))

    return make


def skewed_von_mises_torus(d: int, kappa: float, skew: float) -> Make:
    """A flat ``d``-torus (unit circles) whose angles have the sine-skewed von Mises density (seeded modes).

    Density ``exp(kappa cos(theta - mu)) (1 + skew sin(theta - mu))`` per angle, drawn by the inverse of its CDF on
    a fine grid (no rejection).
    """
    grid = np.linspace(-math.pi, math.pi, 8193)
    quantile = _inverse_cdf(grid, np.exp(kappa * np.cos(grid)) * (1 + skew * np.sin(grid)))

    def make(seed: int) -> Latent:
        mu = np.random.default_rng(seed).uniform(-math.pi, math.pi, d)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            th = quantile(rng.random((n, d))) + mu
            return np.concatenate([np.cos(th), np.sin(th)], axis=1)

        return sample

    return make


def shape_mixture(d: int, weights: tuple[float, float, float], spacing: float) -> Make:
    """Three separated clusters in ``R^d``: a standard Gaussian, a uniform ball of radius 2.5, a Gaussian of sd 0.6.

    Weights ``weights``; the centres sit on seeded orthonormal directions at distance ``spacing`` from the origin
    (``spacing sqrt 2`` apart).
    """
    w = np.asarray(weights) / sum(weights)

    def make(seed: int) -> Latent:
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, 3)))
        centres = spacing * q.T

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            j = rng.choice(3, n, p=w)
            g = rng.standard_normal((n, d))
            b = 2.5 * sample_ball(n, d, rng)
            x = np.where((j == 1)[:, None], b, g * np.where(j == 2, 0.6, 1.0)[:, None])
            return centres[j] + x

        return sample

    return make


def solid_cone(d: int) -> Make:
    """The uniform solid cone ``{|y| <= x_0 <= 1}`` in ``R^d`` (``y`` the other ``d - 1`` coordinates), tip at 0."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        x0 = rng.random(n) ** (1 / d)
        return np.concatenate([x0[:, None], x0[:, None] * sample_ball(n, d - 1, rng)], axis=1)

    return fixed(sample)


def _gue(n: int, rng: np.random.Generator, k: int) -> np.ndarray:
    re = rng.standard_normal((n, k, k))
    im = rng.standard_normal((n, k, k))
    h = (re + np.swapaxes(re, 1, 2)) / 2 + 1j * (im - np.swapaxes(im, 1, 2)) / 2
    return np.linalg.eigvalsh(h)


def gue_eigenvalues(k: int) -> Make:
    """The sorted eigenvalues of ``k x k`` GUE matrices: density ``prod (l_i - l_j)^2 exp(-sum l^2 / 2)``, d = ``k``."""
    return fixed(lambda n, rng: _gue(n, rng, k))


def _haar_unitary(n: int, rng: np.random.Generator, k: int) -> np.ndarray:
    z = rng.standard_normal((n, k, k)) + 1j * rng.standard_normal((n, k, k))
    q, r = np.linalg.qr(z)
    diag = np.diagonal(r, axis1=1, axis2=2)
    return q * (diag / np.abs(diag))[:, None, :]


def special_unitary(k: int) -> Make:
    """Haar-uniform :math:`SU(k)` (dimension ``k^2 - 1``): a Haar unitary divided by a cube root of its determinant.

    The principal ``k``-th root; which of the ``k`` roots is taken depends only on the determinant's phase, so the
    result is Haar-distributed on :math:`SU(k)` (the roots differ by central elements). Real and imaginary parts,
    ``2 k^2`` coordinates.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = _haar_unitary(n, rng, k)
        u = u / (np.linalg.det(u) ** (1 / k))[:, None, None]
        return np.concatenate([u.real.reshape(n, -1), u.imag.reshape(n, -1)], axis=1)

    return fixed(sample)


def hyperbolic_wrapped_normal(d: int, sigma: float) -> Make:
    """The wrapped normal on the hyperboloid ``x_0^2 - |y|^2 = 1`` (hyperbolic ``d``-space in ``R^(d + 1)``).

    A tangent vector ``v`` ~ N(0, ``sigma^2`` I) at ``(1, 0)`` maps to ``(cosh |v|, sinh |v| v / |v|)``.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        v = sigma * rng.standard_normal((n, d))
        r = np.linalg.norm(v, axis=1, keepdims=True)
        return np.concatenate([np.cosh(r), np.sinh(r) * v / r], axis=1)

    return fixed(sample)


def semicircle(d: int) -> Make:
    """Independent Wigner-semicircle coordinates ``2 Beta(1.5, 1.5) - 1`` (density ``(2 / pi) sqrt(1 - x^2)``)."""
    return fixed(lambda n, rng: 2 * rng.beta(1.5, 1.5, (n, d)) - 1)


# --- higher dimension --------------------------------------------------------------------------------------------


def _hermitian_flat(p: np.ndarray) -> np.ndarray:
    """Hermitian ``k x k`` matrices as ``k^2`` real coordinates (an isometry: diagonal, ``sqrt 2`` Re / Im above)."""
    k = p.shape[-1]
    iu = np.triu_indices(k, 1)
    up = p[:, iu[0], iu[1]]
    return np.concatenate([np.diagonal(p, axis1=1, axis2=2).real, math.sqrt(2) * up.real, math.sqrt(2) * up.imag], 1)


def complex_grassmannian(k: int, p: int) -> Make:
    """The complex Grassmannian :math:`G_C(p, k)` as rank-``p`` Hermitian projectors (dimension ``2 p (k - p)``)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((n, k, p)) + 1j * rng.standard_normal((n, k, p))
        q, _ = np.linalg.qr(z)
        return _hermitian_flat(q @ np.conj(np.swapaxes(q, 1, 2)))

    return fixed(sample)


def lp_ball(d: int, p: float) -> Make:
    """Uniform in the unit ``l_p`` ball of ``R^d`` (Barthe et al.: ``Y / (|Y|_p^p + E)^(1 / p)``).

    The ``|Y_i|`` have density ``exp(-y^p)`` on ``[0, inf)`` (drawn by the inverse of its CDF on a fine grid, so the
    point is a smooth function of its draws) and a random sign, ``E`` ~ Exp(1).
    """
    grid = np.linspace(0.0, 40.0 ** (1 / p), 8193)
    quantile = _inverse_cdf(grid, np.exp(-(grid**p)))

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        y = quantile(rng.random((n, d)))
        sign = 2.0 * rng.integers(0, 2, (n, d)) - 1.0
        e = rng.gamma(1.0, 1.0, n)
        return sign * y / (((y**p).sum(1) + e) ** (1 / p))[:, None]

    return fixed(sample)


def spd_lognormal(k: int, sigma: float) -> Make:
    """Log-Euclidean SPD matrices ``exp(S)``, ``S`` symmetric with N(0, ``sigma^2``) entries on and above the diagonal.

    The dimension is ``k (k + 1) / 2``. Flattened as the diagonal and ``sqrt 2`` times the upper triangle (an isometry
    of the symmetric matrices).
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        a = sigma * rng.standard_normal((n, k, k))
        s = np.triu(a) + np.swapaxes(np.triu(a, 1), 1, 2)
        lam, vec = np.linalg.eigh(s)
        m = (vec * np.exp(lam)[:, None, :]) @ np.swapaxes(vec, 1, 2)
        iu = np.triu_indices(k, 1)
        return np.concatenate([np.diagonal(m, axis1=1, axis2=2), math.sqrt(2) * m[:, iu[0], iu[1]]], axis=1)

    return fixed(sample)


def _von_mises_circle(kappa: float, radius: float) -> Latent:
    grid = np.linspace(-math.pi, math.pi, 8193)
    quantile = _inverse_cdf(grid, np.exp(kappa * np.cos(grid)))

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        a = quantile(rng.random(n))
        return radius * np.stack([np.cos(a), np.sin(a)], axis=1)

    return sample


def thirteenth_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the thirteenth split."""
    s = "thirteenth"
    return [
        # --- curves
        ("river meander, heading 1.5 sin", "curve", 1, 10, 0.0, s, 1401, meander(1.5, 4.0, 3.0)),
        ("Cayley's sextic + 1 %", "curve", 1, 8, 0.01, s, 1402, cayley_sextic()),
        ("teardrop curve + 5 %", "curve", 1, 10, 0.05, s, 1403, teardrop()),
        ("dumbbell curve + 1 %", "curve", 1, 12, 0.01, s, 1404, dumbbell()),
        ("heart curve + 5 %", "curve", 1, 8, 0.05, s, 1405, heart()),
        ("Steinmetz curve, radii 1 and 1.3", "curve", 1, 12, 0.0, s, 1406, steinmetz(1.3)),
        ("GCU net d=1 -> R^24 + 1 %", "curve", 1, 24, 0.01, s, 1407, act_net(1, 24, 24, 3, 1.5, "gcu")),
        ("squircle x^4 + y^4 = 1 + 5 %", "curve", 1, 10, 0.05, s, 1408, squircle()),
        ("rational curve of degree 4 in R^12", "curve", 1, 16, 0.0, s, 1409, rational_curve(12, 4, 3.0)),
        # --- surfaces
        ("pillow, height 0.5", "surface", 2, 10, 0.0, s, 1411, pillow(0.5)),
        ("umbilic torus + 1 %", "surface", 2, 12, 0.01, s, 1412, umbilic_torus()),
        ("Hopf torus over a wavy latitude + 5 %", "surface", 2, 12, 0.05, s, 1413, hopf_torus(0.6, 3)),
        ("vase, radius 1 + 0.4 sin 2z + 1 %", "surface", 2, 10, 0.01, s, 1414, vase(0.4, 2 * math.pi)),
        ("Lagrangian flat torus in S^5", "surface", 2, 14, 0.0, s, 1415, lagrangian_torus()),
        ("crescent + 5 %", "surface", 2, 12, 0.05, s, 1416, crescent()),
        ("Sudanese Moebius band + 1 %", "surface", 2, 12, 0.01, s, 1417, sudanese_moebius()),
        # --- network images
        ("Smish net d=3 -> R^36 + 5 %", "network", 3, 36, 0.05, s, 1421, act_net(3, 36, 36, 3, 1.5, "smish")),
        ("Cauchy-activation net d=5 -> R^50", "network", 5, 50, 0.0, s, 1422, act_net(5, 50, 48, 3, 1.0, "cauchy")),
        ("Logish net d=7 -> R^64 + 1 %", "network", 7, 64, 0.01, s, 1423, act_net(7, 64, 64, 3, 1.5, "logish")),
        ("ELiSH net d=11 -> R^96 + 5 %", "network", 11, 96, 0.05, s, 1424, act_net(11, 96, 88, 2, 1.5, "elish")),
        (
            "residual GCU net d=18 -> R^144 + 1 %",
            "network",
            18,
            144,
            0.01,
            s,
            1425,
            residual_net(18, 144, 128, 2, 0.8, _ACTS["gcu"]),
        ),
        # --- non-uniform densities
        ("mixed Beta coordinates d=7", "density", 7, 28, 0.0, s, 1431, mixed_beta(7, 0.8, 3.5)),
        (
            "sine-skewed von Mises 4-torus, kappa 2 + 1 %",
            "density",
            4,
            16,
            0.01,
            s,
            1432,
            skewed_von_mises_torus(4, 2.0, 0.8),
        ),
        (
            "separated Gaussian / ball / Gaussian mixture d=6 + 5 %",
            "density",
            6,
            24,
            0.05,
            s,
            1433,
            shape_mixture(6, (0.5, 0.3, 0.2), 9.0),
        ),
        ("uniform solid cone in R^4 + 1 %", "density", 4, 16, 0.01, s, 1434, solid_cone(4)),
        ("GUE 5x5 eigenvalues", "density", 5, 20, 0.0, s, 1435, gue_eigenvalues(5)),
        ("Haar special unitary SU(3) + 5 %", "density", 8, 32, 0.05, s, 1436, special_unitary(3)),
        (
            "wrapped normal on hyperbolic 3-space, sigma 0.7 + 1 %",
            "density",
            3,
            12,
            0.01,
            s,
            1437,
            hyperbolic_wrapped_normal(3, 0.7),
        ),
        ("semicircle (Beta(1.5, 1.5)) coordinates d=9", "density", 9, 32, 0.0, s, 1438, semicircle(9)),
        # --- higher dimension
        ("complex Grassmannian G_C(2, 5) + 1 %", "high_d", 12, 48, 0.01, s, 1441, complex_grassmannian(5, 2)),
        ("l_4 ball d=14", "high_d", 14, 48, 0.0, s, 1442, lp_ball(14, 4.0)),
        ("log-Euclidean SPD 5x5 matrices + 5 %", "high_d", 15, 48, 0.05, s, 1443, spd_lognormal(5, 0.3)),
        ("sphere S^27", "high_d", 27, 84, 0.0, s, 1444, fixed(lambda n, rng: sample_sphere(n, 27, rng))),
        ("ball B^22 + 5 %", "high_d", 22, 72, 0.05, s, 1445, fixed(lambda n, rng: sample_ball(n, 22, rng))),
        ("torus T^15 + 1 %", "high_d", 15, 48, 0.01, s, 1446, fixed(lambda n, rng: sample_torus(n, 15, rng))),
        ("cube [0,1]^11 + 5 %", "high_d", 11, 40, 0.05, s, 1447, fixed(lambda n, rng: rng.random((n, 11)))),
        ("Gaussian d=19 + 1 %", "high_d", 19, 64, 0.01, s, 1448, fixed(lambda n, rng: rng.standard_normal((n, 19)))),
        # --- products
        (
            "Cayley's sextic x Beta(2, 3) interval + 1 %",
            "product",
            2,
            12,
            0.01,
            s,
            1451,
            product(_cayley, lambda n, rng: 1.5 * rng.beta(2.0, 3.0, (n, 1))),
        ),
        (
            "teardrop curve x sphere of radius 0.8 + 5 %",
            "product",
            3,
            12,
            0.05,
            s,
            1452,
            product(_teardrop, lambda n, rng: 0.8 * sample_sphere(n, 2, rng)),
        ),
        (
            "S^2 x S^3 x S^4 + 1 %",
            "product",
            9,
            32,
            0.01,
            s,
            1453,
            product(*[lambda n, rng, k=k: sample_sphere(n, k, rng) for k in (2, 3, 4)]),
        ),
        (
            "solid 3-cone x circle of radius 0.8",
            "product",
            4,
            16,
            0.0,
            s,
            1454,
            product(solid_cone(3)(0), lambda n, rng: 0.8 * sample_sphere(n, 1, rng)),
        ),
        (
            "Steinmetz curve x disc of radius 0.7 + 5 %",
            "product",
            3,
            16,
            0.05,
            s,
            1455,
            product(lambda n, rng: _steinmetz(n, rng, 1.3), lambda n, rng: 0.7 * sample_ball(n, 2, rng)),
        ),
        (
            "dumbbell curve x von Mises circle, kappa 2",
            "product",
            2,
            10,
            0.0,
            s,
            1456,
            product(_dumbbell, _von_mises_circle(2.0, 0.5)),
        ),
    ]


__all__ = ["thirteenth_specs"]
