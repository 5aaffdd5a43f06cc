r"""The fourteenth split of the trusted-``dim`` suite (issue #14): 43 clouds written before the fourteenth tuning round.

The thirteen earlier splits (:mod:`studies.dimension_suite`'s tune / held-out / fresh halves and the third to
thirteenth splits of :mod:`studies.dimension_suite3` to :mod:`studies.dimension_suite13`, 490 clouds) were all opened
while the rule was tuned, so they are tuning data. This split (``split="fourteenth"``, seeds 15xx) was written and
committed *before* the fourteenth round of tuning and is measured once, after the rule is frozen. It follows the
issue's family list with shapes, densities and embeddings that are mostly new.

Re-dimensioned repeats and near-repeats of earlier families, listed so that nobody counts them as new: the ordinary
clouds (the sphere :math:`S^{21}`, the ball :math:`B^{19}`, the flat torus :math:`T^{17}`, the cube :math:`[0, 1]^{23}`
and a 25-d Gaussian: every split has such clouds at other dimensions); the image of an interval under a random network
(the erf network d = 1 -> :math:`R^{24}` + 5 %: networks d = 1 -> :math:`R^{24}` + 5 % are in the fourth, ninth, tenth
and twelfth splits; every split has a network curve); the penalized-tanh network d = 3 -> :math:`R^{36}` and the Ricker
network d = 5 -> :math:`R^{50}` share d and D with networks of the ninth, tenth and thirteenth splits; the activations
are relatives of earlier ones (penalized tanh of the tune split's tanh, the Ricker wavelet ``(1 - h^2) exp(-h^2 / 2)``
of the seventh and tenth splits' Gaussian and the thirteenth's Cauchy bumps, the sine-linear ``h + 0.4 sin 2h`` of the
tenth split's snake ``h + sin^2 h``, the squared softplus of the softplus networks of the third and eighth splits, the
residual erf network of the residual networks of the third and ninth to thirteenth splits); the trefoil knot (the third
split's (2, 3) torus knot is the same knot, embedded differently and drawn from a Beta parameter); the epicycloid and
hypocycloid with five cusps (the fifth split's epitrochoid, the sixth split's hypotrochoid, and the hypocycloids with
four and three cusps: the seventh split's astroid, the eighth's deltoid); the scarabaeus (a polar curve like the roses,
limaçon and cochleoid of the sixth, seventh and tenth splits); the damped sine ``(t, 0.5 exp(-t / 4) sin 6t)`` (a graph
curve like the ninth split's chirp); the band with three half-twists (the third split's Möbius strip has one, the
thirteenth's Sudanese band is another Möbius band); the Enneper surface of order 2 (the third split's Enneper patch has
order 1); the Mexican-hat graph (graph surfaces: the tune split's bumpy graphs, the sixth's egg-crate, the seventh's
graph over a Gaussian plane, the ninth's sine surface); the torus whose tube radius varies (the sixth split's ring
torus, the seventh's horn torus, the tenth's spindle torus); the octahedron surface (the boundary of the :math:`l_1`
ball; the fourth split's boundary of the 13-cube is another piecewise-flat boundary, the fifth's cross-polytope the
solid :math:`l_1` ball); the separated mixture of four clusters of different shapes at d = 8 (the thirteenth split's
Gaussian / ball / Gaussian mixture at d = 6, the twelfth's separated Gaussian mixture at d = 11, the tenth's Gaussians
at cube corners at d = 8, the ninth's Gaussian-plus-cube mixture); the cardioid-distribution torus (the von Mises tori
of eight earlier splits, the eleventh split's wrapped-Cauchy torus, the thirteenth's sine-skewed one: other circular
densities); the Beta(3, 1.5) latitude on :math:`S^3` (densities on spheres: von Mises-Fisher caps, the girdle, Kent and
Bingham densities of the seventh to twelfth splits; closest, the eighth split's sphere with a Beta(0.6, 2) height, the
same construction, as is the Beta-latitude :math:`S^2` factor of the scarabaeus product); Neal's funnel (Gaussian scale
mixtures of the fifth, sixth and eighth splits, here with the scale tied to one coordinate); the characteristic
polynomials of Haar :math:`U(4)` (the fifth split's :math:`U(4)` itself, the thirteenth's GUE eigenvalues: another
ensemble whose eigenvalues repel); the Lomax coordinates (Lomax(a) is beta-prime(1, a): the twelfth split's
beta-prime(3, 4) coordinates d = 7; the sixth split's Pareto(3) radius, heavy-tailed too); the ex-Gaussian coordinates
d = 7 (independent right-skewed coordinates at the same d and D as the ninth split's skew-normal and the eighth's
Gamma(0.5) coordinates); the Lagrangian Grassmannian :math:`U(3)/O(3)` (the fourth and eleventh splits' real
Grassmannians, the thirteenth's complex one); :math:`RP^{12}` as projectors ``x x^T`` (the sixth split's Veronese image
of :math:`S^5` is :math:`RP^5` drawn the same way; the twelfth split's :math:`CP^6` is the complex version, the same
projector embedding at the same d = 12); the complex Stiefel manifold :math:`V_2(C^5)` (the fourth and tenth splits'
real Stiefel manifolds); the solid ellipsoid d = 16 (the fourth split's ellipsoid :math:`S^{17}` is a surface, the
fifth's skewed box another anisotropic solid); the flat 4-torus of radii 1, 0.8, 0.65, 0.5 (flat tori in most splits,
the sixth's of radii 1 and 0.1); the trefoil times a Beta(2, 5) interval (the thirteenth split's Cayley's sextic times a
Beta(2, 3) interval) and the epicycloid times a von Mises circle (the thirteenth's dumbbell times a von Mises circle);
the fish curve times a sphere and the scarabaeus times a Beta-latitude :math:`S^2` (the seventh split's rose with 3
petals times :math:`S^2` + 5 %: a self-crossing planar curve times a sphere, d = 3; the scarabaeus, like the rose,
passes through the origin):

* curves (uniform in arc length): the trefoil knot ``(sin t + 2 sin 2t, cos t - 2 cos 2t, -sin 3t)``, the fish curve
  (its tail crosses itself), the epicycloid and the hypocycloid with five cusps, the scarabaeus ``r = 0.8 cos 2t -
  cos t`` (a double point at the origin), the damped sine, the ellipse of axes 1 and 0.08 (its ends turn within
  0.0064), the image of an interval under a random erf network;
* surfaces: the complex parabola ``w = z^2`` and the complex conic ``z1^2 + z2^2 = 1`` in :math:`C^2 = R^4`, the
  torus of tube radius ``0.3 + 0.15 cos 3u``, the band with three half-twists, the Mexican-hat graph ``1.5 (1 - r^2)
  exp(-r^2)``, the Enneper surface of order 2, the octahedron surface;
* network images: penalized tanh (d = 3), Ricker (d = 5), squared softplus (d = 8), ``h + 0.4 sin 2h`` (d = 12) and a
  residual erf network (d = 20);
* non-uniform densities: a separated mixture of four clusters (a Gaussian, a rotated Gaussian of axes 1.4 to 0.7, a
  uniform cube, a narrow Gaussian; weights 0.4 / 0.3 / 0.2 / 0.1, d = 8), the cardioid-distribution 3-torus (density
  ``1 + 0.9 cos(theta - mu)`` per angle), :math:`S^3` with a Beta(3, 1.5) latitude, a mild Neal's funnel (d = 5),
  the characteristic polynomials of Haar :math:`U(4)` (the circular unitary ensemble's four repelling angles, d = 4),
  ex-Gaussian (N(0, 1) + Exp(1.5)) coordinates (d = 7), Lomax(6) coordinates (d = 6), the Lagrangian Grassmannian
  :math:`U(3)/O(3)` as ``U U^T`` (d = 6);
* higher dimension: :math:`RP^{12}` (d = 12), the complex Stiefel manifold :math:`V_2(C^5)` (d = 16), the uniform
  solid ellipsoid of axes 1 to 0.5 (d = 16), and ordinary clouds (:math:`S^{21}`, :math:`B^{19}`, :math:`T^{17}`,
  :math:`[0, 1]^{23}`, a 25-d Gaussian);
* products: the trefoil times a 3 Beta(2, 5) interval, the fish curve times a sphere of radius 0.5, a
  cardioid-distribution circle times a ball :math:`B^3` of radius 0.8, the flat 4-torus of radii 1 to 0.5, the complex
  parabola times a circle, the epicycloid times a von Mises circle, the scarabaeus times a Beta-latitude 2-sphere.

Scales were checked against the neighbour scale before the split was committed (geometry only, no estimate; clean clouds
of 2,500 points, 20th-neighbour distances ``k20``). Curves (drawn from their arc length ``s``): the share of points with
a 20-neighbour more than four median 20th-neighbour arc lengths away along the curve is 0 on the trefoil, the
epicycloid, the damped sine and the flat ellipse, and where the shape itself brings the curve together it is 6.8 % on
the fish (its tail crossing), 5.5 % on the scarabaeus (its double point) and 3.2 % on the hypocycloid (its cusps). The
flat ellipse's two long sides are 0.16 apart, ten times its ``k20`` (0.016); its ends turn within 0.0064 (the radius of
curvature there), below ``k20`` at 2,500 and about three times ``k20`` (0.0020) at 20,000. In the network images at most
0.03 % of the 20-neighbour pairs lie more than four median neighbour distances apart in the latent cube (the erf curve).
The squared-softplus network was first written at d = 12, where its covariance had a condition number of 13 over its top
12 directions; it moved to d = 8 at depth 2 (5.3 to 6.5) and the sine-linear network to d = 12 (6.0). Surfaces: no
20-neighbour pair of the complex parabola, the complex conic, the band, the Mexican hat or the Enneper surface is more
than four median neighbour distances apart in the parameters (the Enneper surface is embedded over ``|z| <= 0.9``: on
40,000 points every nearest neighbour is within 0.016 in ``z``); on the varying tube no neighbour's distance along the
surface (in the parameters' metric) exceeds twice its Euclidean distance, but where the tube is thinnest (radius 0.15)
the tube radius is below the median ``k20`` (0.163) for 15 % of the points. Parametrisations that are not area-uniform
(disclosed, none changes a truth): the complex parabola is uniform in ``z`` (area density falling as ``1 / (1 + 4
|z|^2)``, 6.8-fold across the disc), the complex conic uniform in ``w`` (area density ``1 / cosh 2b``, 3.8-fold), the
varying tube and the band uniform in their two angles / parameters, the Enneper surface and the Mexican hat uniform in
the disc; the octahedron is area-uniform (sharp edges of dihedral angle 109.5 degrees and six corners). Products: in
every product the 20th neighbour's median displacement within each factor is below that factor's RMS radius (at most
0.74 of it: the flat 4-torus's circle of radius 0.5). The mixture's 20-neighbour graph at n = 2,500 splits into its four
clusters (40 / 29 / 21 / 10 % of the points); the narrowest gap between clusters (9.0) is more than three times the
widest cluster's median ``k20`` (2.3), each cluster's RMS radius (1.7 to 3.0) is at least its median ``k20`` (1.6 to
2.3), and the noise (5 % of the cloud's RMS radius 9.6, i.e. 0.48) is 29 % of the narrowest cluster's RMS radius. The
covariance of every clean cloud has a condition number at most 6.8 over its top ``dim`` directions except the mixture
(57, the four centres).

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`): 0 on
13 clouds, 1 % on 16, 5 % on 14. Truth = the manifold's dimension (checked by the rank of every sampler's Jacobian in
its draws, tests/test_dimension_suite14.py). Nothing here comes from a published benchmark generator (scikit-dimension's
``BenchmarkManifolds``, DADApy's data sets); the band with three half-twists uses the textbook Möbius-band
parametrisation that scikit-dimension's ``M11_Moebius`` also uses (there with 10 half-twists and half-width 0.5, so this
is not that cloud; the third split's Möbius strip is the same form with one half-twist). No sampler rejects draws; the
curves are drawn uniform in arc length by the inverse of a fine arc-length table, the circular density by the inverse of
its CDF on a fine grid. SciPy is not used.
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
from studies.dimension_suite13 import _haar_unitary, _inverse_cdf


def _arc_uniform(curve: Callable[[np.ndarray], np.ndarray], t0: float, t1: float, grid: int = 200001) -> Latent:
    """Points of ``curve`` (a function of its parameter on ``[t0, t1]``) uniform in arc length.

    The arc length is tabulated on ``grid`` parameter values; a uniform arc length is mapped back to the parameter by
    linear interpolation of the table (a smooth, increasing map between knots).
    """
    t = np.linspace(t0, t1, grid)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve(t), axis=0), axis=1))])

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        return curve(np.interp(rng.uniform(0.0, s[-1], n), s, t))

    return sample


# --- curves ------------------------------------------------------------------------------------------------------


def trefoil_xyz(t: np.ndarray) -> np.ndarray:
    """The trefoil knot ``(sin t + 2 sin 2t, cos t - 2 cos 2t, -sin 3t)``."""
    return np.stack([np.sin(t) + 2 * np.sin(2 * t), np.cos(t) - 2 * np.cos(2 * t), -np.sin(3 * t)], axis=1)


def fish_xy(t: np.ndarray) -> np.ndarray:
    """The fish curve ``(cos t - sin^2 t / sqrt 2, sin t cos t)`` (its tail crosses itself)."""
    return np.stack([np.cos(t) - np.sin(t) ** 2 / math.sqrt(2), np.sin(t) * np.cos(t)], axis=1)


def epicycloid_xy(t: np.ndarray, cusps: int = 5) -> np.ndarray:
    """The epicycloid with ``cusps`` cusps (a circle of radius 1 rolling outside one of radius ``cusps``), scaled."""
    k = cusps + 1
    return np.stack([k * np.cos(t) - np.cos(k * t), k * np.sin(t) - np.sin(k * t)], axis=1) / k


def hypocycloid_xy(t: np.ndarray, cusps: int = 5) -> np.ndarray:
    """The hypocycloid with ``cusps`` cusps (a circle of radius 1 rolling inside one of radius ``cusps``), scaled."""
    k = cusps - 1
    return np.stack([k * np.cos(t) + np.cos(k * t), k * np.sin(t) - np.sin(k * t)], axis=1) / cusps


def scarabaeus_xy(t: np.ndarray, a: float = 1.0, b: float = 0.8) -> np.ndarray:
    """The scarabaeus ``r = b cos 2t - a cos t`` (it passes twice through the origin)."""
    r = b * np.cos(2 * t) - a * np.cos(t)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def damped_sine_xy(t: np.ndarray) -> np.ndarray:
    """The graph ``(t, 0.5 exp(-t / 4) sin 6t)``: its curvature decays along the curve."""
    return np.stack([t, 0.5 * np.exp(-t / 4) * np.sin(6 * t)], axis=1)


def flat_ellipse_xy(t: np.ndarray, minor: float = 0.08) -> np.ndarray:
    """The ellipse of axes 1 and ``minor``: its ends turn within ``minor^2`` (0.0064)."""
    return np.stack([np.cos(t), minor * np.sin(t)], axis=1)


def arc_curve(name: str) -> Make:
    """One of this module's closed-form curves, uniform in arc length."""
    curves: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float, float]] = {
        "trefoil": (trefoil_xyz, 0.0, 2 * math.pi),
        "fish": (fish_xy, 0.0, 2 * math.pi),
        "epicycloid": (epicycloid_xy, 0.0, 2 * math.pi),
        "hypocycloid": (hypocycloid_xy, 0.0, 2 * math.pi),
        "scarabaeus": (scarabaeus_xy, 0.0, 2 * math.pi),
        "damped sine": (damped_sine_xy, 0.0, 10.0),
        "flat ellipse": (flat_ellipse_xy, 0.0, 2 * math.pi),
    }
    return fixed(_arc_uniform(*curves[name]))


# --- surfaces ----------------------------------------------------------------------------------------------------


def _disc(n: int, rng: np.random.Generator, radius: float) -> np.ndarray:
    """Uniform in the disc of ``radius`` as complex numbers."""
    return radius * np.sqrt(rng.random(n)) * np.exp(2j * math.pi * rng.random(n))


def complex_parabola(radius: float) -> Make:
    """The complex curve ``w = z^2`` in :math:`C^2 = R^4`, ``z`` uniform in the disc of ``radius`` (a real surface)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        z = _disc(n, rng, radius)
        w = z * z
        return np.stack([z.real, z.imag, w.real, w.imag], axis=1)

    return fixed(sample)


def complex_conic(height: float) -> Make:
    """The complex conic ``z1^2 + z2^2 = 1`` as ``(cos w, sin w)``, ``w = a + i b``, ``b`` in ``[-height, height]``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        a = rng.uniform(0.0, 2 * math.pi, n)
        b = rng.uniform(-height, height, n)
        ch, sh = np.cosh(b), np.sinh(b)
        return np.stack([np.cos(a) * ch, -np.sin(a) * sh, np.sin(a) * ch, np.cos(a) * sh], axis=1)

    return fixed(sample)


def varying_tube(mean: float, amplitude: float, lobes: int) -> Make:
    """A torus about the unit circle whose tube radius is ``mean + amplitude cos(lobes u)`` (both angles uniform)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(0.0, 2 * math.pi, n)
        v = rng.uniform(0.0, 2 * math.pi, n)
        rho = mean + amplitude * np.cos(lobes * u)
        ring = 1 + rho * np.cos(v)
        return np.stack([ring * np.cos(u), ring * np.sin(u), rho * np.sin(v)], axis=1)

    return fixed(sample)


def twisted_band(half_twists: int, width: float) -> Make:
    """A band about the unit circle with ``half_twists`` half-twists (odd: non-orientable), ``|v| <= width``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(0.0, 2 * math.pi, n)
        v = rng.uniform(-width, width, n)
        ring = 1 + v * np.cos(half_twists * u / 2)
        return np.stack([ring * np.cos(u), ring * np.sin(u), v * np.sin(half_twists * u / 2)], axis=1)

    return fixed(sample)


def mexican_hat(height: float, radius: float) -> Make:
    """The graph ``z = height (1 - r^2) exp(-r^2)`` over the disc of ``radius`` (uniform in the disc)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        z = _disc(n, rng, radius)
        r2 = np.abs(z) ** 2
        return np.stack([z.real, z.imag, height * (1 - r2) * np.exp(-r2)], axis=1)

    return fixed(sample)


def enneper(order: int, radius: float) -> Make:
    """The Enneper surface of ``order`` (Weierstrass data ``f = 1``, ``g = z^order``) over the disc of ``radius``."""
    m = 2 * order + 1

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        z = _disc(n, rng, radius)
        x = (z - z**m / m).real
        y = (1j * (z + z**m / m)).real
        h = (2 * z ** (order + 1) / (order + 1)).real
        return np.stack([x, y, h], axis=1)

    return fixed(sample)


def octahedron_surface() -> Make:
    """Uniform on the surface ``|x| + |y| + |z| = 1`` (signs times a flat Dirichlet(1, 1, 1) point)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        e = rng.gamma(1.0, 1.0, (n, 3))
        sign = 2.0 * rng.integers(0, 2, (n, 3)) - 1.0
        return sign * e / e.sum(1, keepdims=True)

    return fixed(sample)


# --- networks ----------------------------------------------------------------------------------------------------


def _erf(h: np.ndarray) -> np.ndarray:
    import torch

    return np.asarray(torch.erf(torch.from_numpy(np.ascontiguousarray(h, dtype=np.float64))).numpy())


_ACTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "erf": _erf,
    "penalized tanh": lambda h: np.where(h > 0, 1.0, 0.25) * np.tanh(h),
    "ricker": lambda h: (1 - h * h) * np.exp(-h * h / 2),
    "sine-linear": lambda h: h + 0.4 * np.sin(2 * h),
    "squared softplus": lambda h: np.logaddexp(0.0, h) ** 2,
}


def act_net(d: int, ambient: int, width: int, depth: int, gain: float, act: str) -> Make:
    """A random ``depth``-layer network (erf, penalized tanh, Ricker, ``h + 0.4 sin 2h``, squared softplus)."""
    return random_network(d, ambient, width, depth, gain, 0.5, _ACTS[act])


# --- non-uniform densities ---------------------------------------------------------------------------------------


def four_cluster_mixture(d: int, weights: tuple[float, float, float, float], spacing: float) -> Make:
    """Four separated clusters in ``R^d`` with weights ``weights``, centred at ``spacing`` on seeded directions.

    A standard Gaussian, a rotated Gaussian of axes 1.4 to 0.7, a uniform cube of side 3 and a Gaussian of sd 0.6;
    the centres sit on seeded orthonormal directions (``spacing sqrt 2`` apart).
    """
    w = np.asarray(weights) / sum(weights)

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(frng.standard_normal((d, 4)))
        centres = spacing * q.T
        rot, _ = np.linalg.qr(frng.standard_normal((d, d)))
        axes = np.linspace(1.4, 0.7, d)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            j = rng.choice(4, n, p=w)
            g = rng.standard_normal((n, d))
            c = rng.uniform(-1.5, 1.5, (n, d))
            x = np.where((j == 1)[:, None], (g * axes) @ rot.T, g * np.where(j == 3, 0.6, 1.0)[:, None])
            return centres[j] + np.where((j == 2)[:, None], c, x)

        return sample

    return make


def _cardioid_angles(rho: float) -> Callable[[np.ndarray], np.ndarray]:
    grid = np.linspace(-math.pi, math.pi, 8193)
    return _inverse_cdf(grid, 1 + 2 * rho * np.cos(grid))


def cardioid_torus(d: int, rho: float) -> Make:
    """A flat ``d``-torus (unit circles) whose angles have the cardioid density ``1 + 2 rho cos(theta - mu)``."""
    quantile = _cardioid_angles(rho)

    def make(seed: int) -> Latent:
        mu = np.random.default_rng(seed).uniform(-math.pi, math.pi, d)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            th = quantile(rng.random((n, d))) + mu
            return np.concatenate([np.cos(th), np.sin(th)], axis=1)

        return sample

    return make


def _cardioid_circle(rho: float, radius: float) -> Latent:
    quantile = _cardioid_angles(rho)
    return lambda n, rng: radius * np.stack([np.cos(a := quantile(rng.random(n))), np.sin(a)], axis=1)


def _beta_latitude(n: int, rng: np.random.Generator, d: int, a: float, b: float) -> np.ndarray:
    h = 2 * rng.beta(a, b, n) - 1
    return np.concatenate([h[:, None], np.sqrt(1 - h * h)[:, None] * sample_sphere(n, d - 1, rng)], axis=1)


def beta_latitude_sphere(d: int, a: float, b: float) -> Make:
    """The sphere :math:`S^d` whose height ``x_0 = 2 B - 1`` has ``B`` ~ Beta(``a``, ``b``) (the rest uniform)."""
    return fixed(lambda n, rng: _beta_latitude(n, rng, d, a, b))


def funnel(d: int) -> Make:
    """Neal's funnel, mild: ``v`` ~ N(0, 1), the other ``d - 1`` coordinates N(0, ``exp(v)``)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        v = rng.standard_normal(n)
        return np.concatenate([v[:, None], np.exp(v / 2)[:, None] * rng.standard_normal((n, d - 1))], axis=1)

    return fixed(sample)


def unitary_char_poly(k: int) -> Make:
    """The characteristic polynomial's coefficients of a Haar ``k x k`` unitary (real and imaginary parts).

    A smooth function of the unordered eigenvalues (the circular unitary ensemble: ``k`` angles that repel).
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        lam = np.linalg.eigvals(_haar_unitary(n, rng, k))
        c = np.ones((n, 1), dtype=complex)
        for j in range(k):
            c = np.concatenate([c, np.zeros((n, 1))], 1) - lam[:, j : j + 1] * np.concatenate([np.zeros((n, 1)), c], 1)
        return np.concatenate([c[:, 1:].real, c[:, 1:].imag], axis=1)

    return fixed(sample)


def ex_gaussian(d: int, rate: float) -> Make:
    """Independent exponentially modified Gaussian coordinates: N(0, 1) + Exp(``rate``)."""
    return fixed(lambda n, rng: rng.standard_normal((n, d)) + rng.exponential(1 / rate, (n, d)))


def lomax(d: int, shape: float) -> Make:
    """Independent Lomax (Pareto II) coordinates of ``shape``: ``(1 - U)^(-1 / shape) - 1``."""
    return fixed(lambda n, rng: (1 - rng.random((n, d))) ** (-1 / shape) - 1)


def _symmetric_flat(m: np.ndarray) -> np.ndarray:
    """Complex symmetric ``k x k`` matrices as real coordinates (diagonal, ``sqrt 2`` times the upper triangle)."""
    k = m.shape[-1]
    iu = np.triu_indices(k, 1)
    z = np.concatenate([np.diagonal(m, axis1=1, axis2=2), math.sqrt(2) * m[:, iu[0], iu[1]]], axis=1)
    return np.concatenate([z.real, z.imag], axis=1)


def lagrangian_grassmannian(k: int) -> Make:
    """The Lagrangian Grassmannian ``U(k) / O(k)`` as ``U U^T`` (``U`` Haar unitary), dimension ``k (k + 1) / 2``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = _haar_unitary(n, rng, k)
        return _symmetric_flat(u @ np.swapaxes(u, 1, 2))

    return fixed(sample)


# --- higher dimension --------------------------------------------------------------------------------------------


def real_projective(d: int) -> Make:
    """The real projective space :math:`RP^d` as the projectors ``x x^T``, ``x`` uniform on :math:`S^d`."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        x = sample_sphere(n, d, rng)
        iu = np.triu_indices(d + 1, 1)
        return np.concatenate([x * x, math.sqrt(2) * x[:, iu[0]] * x[:, iu[1]]], axis=1)

    return fixed(sample)


def complex_stiefel(k: int, p: int) -> Make:
    """The complex Stiefel manifold :math:`V_p(C^k)` (orthonormal ``p``-frames), Haar; dimension ``2 k p - p^2``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((n, k, p)) + 1j * rng.standard_normal((n, k, p))
        q, r = np.linalg.qr(z)
        diag = np.diagonal(r, axis1=1, axis2=2)
        q = q * (diag / np.abs(diag))[:, None, :]
        return np.concatenate([q.real.reshape(n, -1), q.imag.reshape(n, -1)], axis=1)

    return fixed(sample)


def solid_ellipsoid(d: int, shortest: float) -> Make:
    """Uniform in the solid ellipsoid of ``R^d`` with axes evenly spaced from 1 to ``shortest``."""
    axes = np.linspace(1.0, shortest, d)
    return fixed(lambda n, rng: sample_ball(n, d, rng) * axes)


# --- products ----------------------------------------------------------------------------------------------------


def _von_mises_circle(kappa: float, radius: float) -> Latent:
    grid = np.linspace(-math.pi, math.pi, 8193)
    quantile = _inverse_cdf(grid, np.exp(kappa * np.cos(grid)))
    return lambda n, rng: radius * np.stack([np.cos(a := quantile(rng.random(n))), np.sin(a)], axis=1)


def _circle(radius: float) -> Latent:
    return lambda n, rng: radius * sample_sphere(n, 1, rng)


def _anisotropic_torus(radii: tuple[float, ...]) -> Latent:
    r = np.asarray(radii)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        th = rng.uniform(0.0, 2 * math.pi, (n, len(radii)))
        return np.concatenate([r * np.cos(th), r * np.sin(th)], axis=1)

    return sample


def fourteenth_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the fourteenth split."""
    s = "fourteenth"
    return [
        # --- curves
        ("trefoil knot, arc-length uniform", "curve", 1, 12, 0.0, s, 1501, arc_curve("trefoil")),
        ("fish curve + 1 %", "curve", 1, 8, 0.01, s, 1502, arc_curve("fish")),
        ("epicycloid with 5 cusps + 5 %", "curve", 1, 10, 0.05, s, 1503, arc_curve("epicycloid")),
        ("scarabaeus + 1 %", "curve", 1, 10, 0.01, s, 1504, arc_curve("scarabaeus")),
        ("damped sine curve + 1 %", "curve", 1, 12, 0.01, s, 1505, arc_curve("damped sine")),
        ("erf net d=1 -> R^24 + 5 %", "curve", 1, 24, 0.05, s, 1506, act_net(1, 24, 24, 3, 1.5, "erf")),
        ("flat ellipse, axes 1 and 0.08", "curve", 1, 10, 0.0, s, 1507, arc_curve("flat ellipse")),
        ("hypocycloid with 5 cusps + 5 %", "curve", 1, 8, 0.05, s, 1508, arc_curve("hypocycloid")),
        # --- surfaces
        ("complex parabola w = z^2 + 5 %", "surface", 2, 12, 0.05, s, 1511, complex_parabola(1.2)),
        ("complex conic z1^2 + z2^2 = 1 + 1 %", "surface", 2, 12, 0.01, s, 1512, complex_conic(1.0)),
        ("torus of tube radius 0.3 + 0.15 cos 3u + 1 %", "surface", 2, 12, 0.01, s, 1513, varying_tube(0.3, 0.15, 3)),
        ("band with three half-twists + 5 %", "surface", 2, 10, 0.05, s, 1514, twisted_band(3, 0.4)),
        ("Mexican-hat graph", "surface", 2, 10, 0.0, s, 1515, mexican_hat(1.5, 2.2)),
        ("Enneper surface of order 2", "surface", 2, 12, 0.0, s, 1516, enneper(2, 0.9)),
        ("octahedron surface", "surface", 2, 9, 0.0, s, 1517, octahedron_surface()),
        # --- network images
        (
            "penalized-tanh net d=3 -> R^36 + 1 %",
            "network",
            3,
            36,
            0.01,
            s,
            1521,
            act_net(3, 36, 36, 3, 1.5, "penalized tanh"),
        ),
        ("Ricker-activation net d=5 -> R^50", "network", 5, 50, 0.0, s, 1522, act_net(5, 50, 48, 3, 1.0, "ricker")),
        (
            "squared-softplus net d=8 -> R^72 + 5 %",
            "network",
            8,
            72,
            0.05,
            s,
            1523,
            act_net(8, 72, 64, 2, 1.0, "squared softplus"),
        ),
        (
            "sine-linear net d=12 -> R^100 + 5 %",
            "network",
            12,
            100,
            0.05,
            s,
            1524,
            act_net(12, 100, 96, 2, 1.0, "sine-linear"),
        ),
        (
            "residual erf net d=20 -> R^160 + 1 %",
            "network",
            20,
            160,
            0.01,
            s,
            1525,
            residual_net(20, 160, 128, 2, 0.8, _erf),
        ),
        # --- non-uniform densities
        (
            "separated four-cluster mixture d=8 + 5 %",
            "density",
            8,
            32,
            0.05,
            s,
            1531,
            four_cluster_mixture(8, (0.4, 0.3, 0.2, 0.1), 11.0),
        ),
        ("cardioid-distribution 3-torus, rho 0.45", "density", 3, 16, 0.0, s, 1532, cardioid_torus(3, 0.45)),
        (
            "Beta(3, 1.5) latitude on S^3 + 1 %",
            "density",
            3,
            12,
            0.01,
            s,
            1533,
            beta_latitude_sphere(3, 3.0, 1.5),
        ),
        ("Neal's funnel d=5, mild + 1 %", "density", 5, 20, 0.01, s, 1534, funnel(5)),
        ("Haar U(4) characteristic polynomials", "density", 4, 20, 0.0, s, 1535, unitary_char_poly(4)),
        ("ex-Gaussian coordinates d=7, rate 1.5 + 5 %", "density", 7, 28, 0.05, s, 1536, ex_gaussian(7, 1.5)),
        ("Lomax(6) coordinates d=6 + 1 %", "density", 6, 24, 0.01, s, 1537, lomax(6, 6.0)),
        (
            "Lagrangian Grassmannian U(3)/O(3) + 5 %",
            "density",
            6,
            24,
            0.05,
            s,
            1538,
            lagrangian_grassmannian(3),
        ),
        # --- higher dimension
        ("real projective space RP^12", "high_d", 12, 96, 0.0, s, 1541, real_projective(12)),
        ("complex Stiefel V_2(C^5) + 1 %", "high_d", 16, 56, 0.01, s, 1542, complex_stiefel(5, 2)),
        ("solid ellipsoid d=16, axes 1 to 0.5 + 5 %", "high_d", 16, 48, 0.05, s, 1543, solid_ellipsoid(16, 0.5)),
        ("sphere S^21", "high_d", 21, 68, 0.0, s, 1544, fixed(lambda n, rng: sample_sphere(n, 21, rng))),
        ("ball B^19 + 1 %", "high_d", 19, 60, 0.01, s, 1545, fixed(lambda n, rng: sample_ball(n, 19, rng))),
        ("torus T^17 + 5 %", "high_d", 17, 52, 0.05, s, 1546, fixed(lambda n, rng: sample_torus(n, 17, rng))),
        ("cube [0,1]^23 + 1 %", "high_d", 23, 72, 0.01, s, 1547, fixed(lambda n, rng: rng.random((n, 23)))),
        ("Gaussian d=25", "high_d", 25, 80, 0.0, s, 1548, fixed(lambda n, rng: rng.standard_normal((n, 25)))),
        # --- products
        (
            "trefoil knot x 3 Beta(2, 5) interval + 1 %",
            "product",
            2,
            12,
            0.01,
            s,
            1551,
            product(_arc_uniform(trefoil_xyz, 0.0, 2 * math.pi), lambda n, rng: 3 * rng.beta(2.0, 5.0, (n, 1))),
        ),
        (
            "fish curve x sphere of radius 0.5 + 5 %",
            "product",
            3,
            12,
            0.05,
            s,
            1552,
            product(_arc_uniform(fish_xy, 0.0, 2 * math.pi), lambda n, rng: 0.5 * sample_sphere(n, 2, rng)),
        ),
        (
            "cardioid-distribution circle x ball B^3 of radius 0.8",
            "product",
            4,
            16,
            0.0,
            s,
            1553,
            product(_cardioid_circle(0.45, 1.0), lambda n, rng: 0.8 * sample_ball(n, 3, rng)),
        ),
        (
            "torus of radii 1, 0.8, 0.65, 0.5 + 1 %",
            "product",
            4,
            16,
            0.01,
            s,
            1554,
            product(_anisotropic_torus((1.0, 0.8, 0.65, 0.5))),
        ),
        (
            "complex parabola x circle of radius 0.6 + 5 %",
            "product",
            3,
            12,
            0.05,
            s,
            1555,
            product(complex_parabola(1.2)(0), _circle(0.6)),
        ),
        (
            "epicycloid x von Mises circle, kappa 1.5",
            "product",
            2,
            10,
            0.0,
            s,
            1556,
            product(_arc_uniform(epicycloid_xy, 0.0, 2 * math.pi), _von_mises_circle(1.5, 0.5)),
        ),
        (
            "scarabaeus x Beta(3, 1.5) latitude on S^2 of radius 0.5 + 1 %",
            "product",
            3,
            12,
            0.01,
            s,
            1557,
            product(
                _arc_uniform(scarabaeus_xy, 0.0, 2 * math.pi), lambda n, rng: 0.5 * _beta_latitude(n, rng, 2, 3.0, 1.5)
            ),
        ),
    ]


__all__ = ["fourteenth_specs"]
