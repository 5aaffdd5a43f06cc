r"""The sixteenth split of the trusted-``dim`` suite (issue #14): 43 clouds written before the sixteenth tuning round.

The fifteen earlier splits (:mod:`studies.dimension_suite`'s tune / held-out / fresh halves and the third to fifteenth
splits of :mod:`studies.dimension_suite3` to :mod:`studies.dimension_suite15`, 576 clouds) were all opened while the
rule was tuned, so they are tuning data. This split (``split="sixteenth"``, seeds 17xx) was written and committed
*before* the sixteenth round of tuning and is measured once, after the rule is frozen. It follows the issue's family
list with shapes, densities and embeddings that are mostly new; noisy curves (six of eight curves, three at 5 %) and the
kinds where the fifteenth split's errors were largest (symmetric spaces of dimension 11 to 15 with 1 % noise, a 13-d
Gaussian, a separated mixture with 5 % noise, noisy curves with cusps and double points, small noisy ambient widths ``D
<= 8``) are included at about the earlier share, with new members: a fair, not a favourable, split.

Re-dimensioned repeats and near-repeats of earlier families, listed so that nobody counts them as new: the ordinary
clouds (the sphere :math:`S^{17}`, the ball :math:`B^{21}`, the flat torus :math:`T^{14}`, the cube :math:`[0, 1]^{19}`
and a 13-d Gaussian: every split has such clouds at other dimensions, the fifteenth a Gaussian at d = 15); the image of
an interval under a random network (the soft-clipping network d = 1 -> :math:`R^{24}` + 5 %: networks d = 1 ->
:math:`R^{24}` + 5 % are in the fourth, ninth, tenth, twelfth, fourteenth and fifteenth splits; every split has a
network curve); the activations are relatives of earlier ones (soft-clipping, a difference of two softplus ramps, of the
softplus, log-sigmoid and hard-tanh networks of the third, fifth, eighth, ninth and fifteenth splits; PFLU ``h (1 + h /
sqrt(1 + h^2)) / 2`` of the gated units swish, GELU and mish of the fourth to sixth; ISRLU of the eleventh's ISRU and
the ELU networks, and its residual network of the residual networks of the third and ninth to fifteenth splits, at the d
and D of the twelfth's LiSHT network (d = 6, :math:`R^{56}`); SQNL, a piecewise-quadratic saturating ramp, of tanh and
hard-tanh; log-cosh: the eleventh split's log-cosh network d = 13 -> :math:`R^{104}` + 5 % has the same activation, a
smooth absolute value like the seventh split's abs network); the stereographic rational map (a seeded linear image of a
patch of :math:`S^4`, its image density up to about 5^4 = 600 times higher at the cube's corners than at its centre, the
conformal factor 2 / (1 + |x|^2) running from 2 to 0.4: the polynomial maps of the fourth and fifteenth splits, the
ellipsoids of the fourth and sixth); the (3, 5) torus knot (torus knots of the third, fourteenth and fifteenth splits;
the seventh's (3, 5) curve on a flat torus in :math:`R^4` has the same winding numbers) and the line of slopes (1, sqrt
2, sqrt 3) on :math:`T^3` (the seventh's closed flat-torus curve); the lemniscate of Gerono (a figure-eight like the
sixth split's lemniscate of Bernoulli); the cycloid of Ceva (planar curves with inner loops: the sixth's roses, the
tenth's limacon, the fifteenth's Talbot curve); the ramphoid cusp (cusped curves: the fifteenth's semicubical parabola,
the astroid, deltoid and hypocycloids of the seventh, eighth and fourteenth); the Lissajous knot (the third split's
Lissajous curve 3:4:5, and its 2:3:7 curve, the same frequencies, a factor of its Lissajous x Gaussian product); the
spiral of heading ``s^3`` (a generalised Euler spiral: the fourth split's Cornu spiral has heading ``s^2``, the
thirteenth's river meander a sine heading); the helical spring (tube surfaces: the fifth split's figure-eight knot tube,
the fifteenth's torus-knot tube, the fifth's solid helix tube of dimension 3); the handkerchief surface and Cayley's
ruled cubic (graph surfaces like the saddles of the third and fourth splits and the fourteenth's Mexican hat; Cayley's
is ruled like the ninth's Plucker conoid); the limpet torus (tori of revolution with other sections in the sixth,
seventh, tenth and fifteenth splits); the graph of ``w = z^3`` (the fourteenth split's complex parabola ``w = z^2``, the
same construction at degree 3); Scherk's saddle tower (Scherk's second surface; the fifth split has the first, doubly
periodic one); the prolate spheroid with a von Mises longitude (the sixth's ellipsoid surface 1:2:4, the eighth's sphere
with a Beta height); the separated Gaussian / Laplace mixture (separated mixtures in the ninth to fifteenth splits); the
von Mises-Fisher mixture on :math:`S^3` (the fifteenth's mixture on :math:`S^2`, the eighth's cap on :math:`S^3`); the
wrapped Cauchy 3-torus (the eleventh split's wrapped-Cauchy 3-torus, rho 0.7 + 5 % in :math:`R^{16}`, the same
construction; von Mises tori of most splits, the fourteenth's cardioid 3-torus, also d = 3); Student-t(6) d = 7
(Student-t densities of the third, sixth, seventh and eighth splits); the half-normal coordinates (skewed coordinates
with a mode at a face: the fourth's exponential cube, the eighth's Gamma(0.5), the ninth's Weibull); the Dirichlet
simplex d = 3 (Dirichlet simplices of the fourth, tenth and fifteenth splits); the Beta(1.5, 0.6) cube d = 4 and the
Beta(0.8, 1.6) cube d = 13 (Beta cubes of the tune / held-out halves, the third and the eighth split); the flag manifold
(the Grassmannians of the fourth and eleventh splits, the fourth's as projection matrices); the lens space (quotients of
spheres: the fourteenth's :math:`RP^{12}`, the twelfth's :math:`CP^6`); the rotations :math:`SO(6)` (:math:`SO(3)`,
:math:`SO(5)` of the fourth split); the products (curves times a circle or an interval in the thirteenth to fifteenth
splits, the fourteenth's epicycloid times a von Mises circle and complex parabola times a circle, the fifteenth's
bifolium times a disc and Steinbach screw times a Beta interval).

* curves (uniform in arc length, by the inverse of a fine arc-length table): the (3, 5) torus knot on the torus of radii
  1 and 0.35, the lemniscate of Gerono ``(cos t, sin t cos t)`` (a double point), the straight line of slopes ``(1, sqrt
  2, sqrt 3)``, ``t`` in ``[0, 2 pi]``, on the flat 3-torus of unit circles (open), the cycloid of Ceva ``r = 1 + 2 cos
  2t`` (two inner loops; four passes through the origin) in :math:`R^3`, the ramphoid cusp ``(t^2, t^4 + t^5)`` (``|t|
  <= 1``), the Lissajous knot ``(cos(3t + 0.7), cos(2t + 0.2), cos 7t)``, the spiral of heading ``s^3`` (``|s| <= 1.8``,
  a fine cumulative table of its two integrals) and the image of an interval under a random soft-clipping network;
* surfaces: the helical spring (tube of radius 0.25 about 3 turns of the helix of radius 1 and rise 1.2; area-uniform by
  the inverse CDF of its area element in the tube angle), the handkerchief surface ``z = u^3 / 3 + u v^2 + 2 (u^2 -
  v^2)`` and Cayley's ruled cubic ``z = xy - x^3`` over ``[-1, 1]^2``, the limpet torus, the graph of ``w = z^3`` over
  the unit disc of ``C``, Scherk's saddle tower (``|w| <= 0.7``) and the prolate spheroid of half-axes 1, 1, 2 with a
  von Mises (kappa 2) longitude and area-weighted latitude;
* network images: PFLU (d = 3), a residual ISRLU network (d = 6), SQNL (d = 8), log-cosh (d = 12, :math:`R^{200}`) and
  the stereographic rational map (d = 4);
* non-uniform densities: a separated mixture of a standard Gaussian (weight 0.7) and a Laplace(0.45) cluster (0.3) 8
  apart (d = 5), a mixture of three von Mises-Fisher densities on :math:`S^3` (weights 0.55 / 0.3 / 0.15, kappas 5 / 12
  / 2), the wrapped Cauchy 3-torus (rho 0.5), Student-t(6) d = 7, half-normal coordinates d = 6, Dirichlet(0.5, 1, 2, 4)
  and Beta(1.5, 0.6) coordinates d = 4;
* higher dimension: the flag manifold of lines inside 3-planes of :math:`R^6` as pairs of projectors (d = 11), the lens
  space :math:`S^{11} / Z_3` (its Hopf image and cubic symmetric tensor, d = 11, :math:`R^{160}`), the rotations
  :math:`SO(6)` (d = 15), Beta(0.8, 1.6) coordinates d = 13 and the ordinary clouds;
* products: the lemniscate of Gerono times a wrapped Cauchy circle (rho 0.5, radius 0.5), the cycloid of Ceva times a 2
  Beta(0.5, 0.5) interval, the spiral of heading ``s^3`` (``|s| <= 1.4``) times a disc of radius 0.65, the (3, 5) torus
  knot times an interval of length 1.6, the handkerchief surface times a circle of radius 0.5, the limpet torus times a
  von Mises circle (kappa 2, radius 0.4) and Scherk's saddle tower times a 2 Beta(2, 2) interval.

Scales were checked against the neighbour scale before the split was committed (geometry only, no estimate; clean clouds
of 2,500 points, 20th-neighbour distances ``k20``; the author's draws). Curves (drawn from their arc length ``s``): the
share of points with a 20-neighbour more than four median 20th-neighbour arc lengths away along the curve (closed curves
measured round the loop) is 0 on the (3, 5) knot, the Lissajous knot and the line on :math:`T^3`; where the shape itself
brings the curve together it is 1.5-1.6 % on the lemniscate of Gerono (its double point; 0.2 % at 20,000), 6-7 % on the
ramphoid cusp (its two branches leave the cusp tangent to each other; 3.4 % at 20,000) and 13.5-14.3 % on the cycloid of
Ceva (four passes through the origin and the inner loops' crossings; 5.2 % at 20,000: more than the fifteenth split's
Talbot curve, 10-11 %; disclosed). The (3, 5) knot's strands stay more than 0.5 apart (``k20`` 0.087), the Lissajous
knot's more than 0.21 (``k20`` 0.13); the spiral's smallest radius of curvature (0.10, at its ends) is seven times its
``k20`` (0.014). In the network images drawn from a latent cube of dimension up to 4 no 20-neighbour pair lies more than
four median neighbour distances apart in the latent cube (soft-clipping, PFLU, stereographic map). Surfaces, on 40,000
clean points, every nearest neighbour is within 0.05 of the point in every parameter (scaled to ``[0, 1]``, angles
measured round) on the handkerchief, Cayley and limpet surfaces and, in ``w``, on Scherk's tower; on the spring 0.7 %
and on the spheroid 0.12 % are farther, all at the check's seam of the spring's tube-angle draw (its uniform draw near 0
and 1 is the same angle) and at the spheroid's poles. One surface is thin against the neighbour scale at 2,500 points
(disclosed; readable at 20,000): the spring's tube radius (0.25) is about its ``k20`` at 2,500 (0.27); successive turns'
tube surfaces are about 0.7 apart (2.6 ``k20``). Parametrisations that are not area-uniform (disclosed, none changes a
truth): the handkerchief and Cayley surfaces are uniform in their two parameters, the limpet torus in its two angles,
the graph of ``z^3`` and Scherk's tower uniform in the disc of their parameter. Products: in every product the 20th
neighbour's median displacement within each factor is at most 0.59 of that factor's centred RMS radius (the von Mises
circle of the limpet product, 0.58-0.63 over three draws; 0.55 for Scherk's Beta interval, 0.44 for the handkerchief's
circle, 0.42 for the interval of the knot times an interval, 0.37 for the spiral's disc; measured by the geometry review
on clean 2,500-point draws); the knot times the interval has ``k20`` 0.31 against strands at least 0.5 apart (1.6
``k20``). The mixture's 20-neighbour graph splits into its two clusters on most clean draws at n = 2,500 (7 of 8 in the
geometry review, 2 of 8 at 20,000), but Laplace / Gaussian tail points bridge it on some draws: on the noisy draws the
study measures, 2 and 1 points at 2,500 / 20,000 have a neighbour in the other cluster; the gap still exceeds 1.3 times
the wider cluster's ``k20`` on them (2.23 against 1.19 at 2,500, 2.06 against 0.79 at 20,000)
(tests/test_dimension_suite16.py checks the weights and that the gap exceeds 1.3 times the wider cluster's median
``k20``; the author's draw: gap 3.1, twice the wider ``k20`` 2.3); the noise (5 % of the cloud's RMS radius 4.2, i.e.
0.21) is 15 % of the Laplace cluster's RMS radius (1.42). The covariance of every clean cloud of dimension at least 2
has a condition number at most 5.7 over its top ``dim`` directions (the cycloid of Ceva times the Beta interval) except
the mixture (18: its two centres). Changed before the commit, on these checks: a Lissajous knot times a disc of radius
0.4 (the disc was thinner than the neighbour scale, displacement 0.94 of its radius; a scaled-down knot brought its
strands within 0.09, under ``k20``) became the spiral times a disc; the knot's interval went from length 0.8 to 1.6
(displacement 0.62 to 0.42); the spiral's disc from radius 0.5 to 0.65 (condition 7.9 to 4.7).

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`): 0 on
13 clouds, 1 % on 16, 5 % on 14. Truth = the manifold's dimension (checked by the rank of every sampler's Jacobian in
its draws, tests/test_dimension_suite16.py). Nothing here comes from a published benchmark generator (scikit-dimension's
``BenchmarkManifolds``, DADApy's data sets). No sampler rejects draws; the curves are drawn uniform in arc length by the
inverse of a fine arc-length table, the spring's tube angle, the spheroid's latitude, the von Mises longitudes and the
von Mises-Fisher heights on :math:`S^3` by the inverse of a CDF on a fine grid, the wrapped Cauchy angles by the
closed-form inverse of their CDF. SciPy is not used.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from lightning_repgap.manifolds import sample_ball, sample_cube, sample_sphere, sample_torus
from studies.dimension_suite3 import Latent, Make, fixed
from studies.dimension_suite4 import random_network
from studies.dimension_suite7 import product
from studies.dimension_suite9 import residual_net
from studies.dimension_suite13 import _inverse_cdf
from studies.dimension_suite14 import _arc_uniform, _von_mises_circle
from studies.dimension_suite15 import dirichlet, torus_knot_xyz

# --- curves ------------------------------------------------------------------------------------------------------


def gerono_xy(t: np.ndarray) -> np.ndarray:
    """The lemniscate of Gerono ``x^4 = x^2 - y^2``, ``(cos t, sin t cos t)`` (a double point at the origin)."""
    return np.stack([np.cos(t), np.sin(t) * np.cos(t)], axis=1)


def ceva_xy(t: np.ndarray) -> np.ndarray:
    """The cycloid of Ceva ``r = 1 + 2 cos 2t`` (an outer loop and two inner loops through the origin)."""
    r = 1 + 2 * np.cos(2 * t)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def ramphoid_xy(t: np.ndarray) -> np.ndarray:
    """The ramphoid cusp ``(t^2, t^4 + t^5)``: both branches leave the cusp on the same side of its tangent."""
    return np.stack([t * t, t**4 + t**5], axis=1)


def lissajous_knot_xyz(t: np.ndarray) -> np.ndarray:
    """The Lissajous knot ``(cos(3t + 0.7), cos(2t + 0.2), cos 7t)``."""
    return np.stack([np.cos(3 * t + 0.7), np.cos(2 * t + 0.2), np.cos(7 * t)], axis=1)


def winding_xy(t: np.ndarray) -> np.ndarray:
    """The straight line of slopes ``(1, sqrt 2, sqrt 3)`` on the flat 3-torus of unit circles (in ``R^6``)."""
    th = np.outer(t, [1.0, math.sqrt(2), math.sqrt(3)])
    return np.concatenate([np.cos(th), np.sin(th)], axis=1)


def torus_knot_35(t: np.ndarray) -> np.ndarray:
    """The (3, 5) torus knot on the torus of radii 1 and 0.35."""
    return torus_knot_xyz(t, 3, 5, 0.35)


_CURVES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float, float]] = {
    "torus knot": (torus_knot_35, 0.0, 2 * math.pi),
    "gerono": (gerono_xy, 0.0, 2 * math.pi),
    "ceva": (ceva_xy, 0.0, 2 * math.pi),
    "ramphoid": (ramphoid_xy, -1.0, 1.0),
    "lissajous knot": (lissajous_knot_xyz, 0.0, 2 * math.pi),
    "winding": (winding_xy, 0.0, 2 * math.pi),
}


def arc_curve(name: str) -> Make:
    """One of this module's closed-form curves, uniform in arc length."""
    return fixed(_arc_uniform(*_CURVES[name]))


def cubic_spiral(s_max: float) -> Make:
    """The generalised Euler spiral of heading ``s^3`` (curvature ``3 s^2``) at arc length ``s`` in ``[-s_max, s_max]``.

    Its points are a fine cumulative-trapezoid table of ``(int cos s^3, int sin s^3)``; ``s`` is drawn uniformly.
    """
    grid = np.linspace(-s_max, s_max, 200001)
    step = grid[1] - grid[0]
    xy = [
        np.concatenate([[0.0], np.cumsum((f(grid[1:] ** 3) + f(grid[:-1] ** 3)) / 2 * step)]) for f in (np.cos, np.sin)
    ]

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        s = rng.uniform(-s_max, s_max, n)
        return np.stack([np.interp(s, grid, xy[0]), np.interp(s, grid, xy[1])], axis=1)

    return fixed(sample)


# --- surfaces ----------------------------------------------------------------------------------------------------


def _spring(turns: float, pitch: float, radius: float) -> Latent:
    """The tube of ``radius`` about the helix of radius 1 and rise ``pitch`` per turn (area-uniform)."""
    tau = pitch / (2 * math.pi)
    kappa = 1 / (1 + tau * tau)
    grid = np.linspace(0.0, 2 * math.pi, 8193)
    quantile = _inverse_cdf(grid, 1 + kappa * radius * np.cos(grid))  # the area element about the helix

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(0.0, 2 * math.pi * turns, n)
        s = quantile(rng.random(n))
        e1 = np.stack([np.cos(t), np.sin(t), np.zeros(n)], axis=1)  # away from the axis, normal to the tangent
        tangent = np.stack([-np.sin(t), np.cos(t), np.full(n, tau)], axis=1) / math.sqrt(1 + tau * tau)
        e2 = np.cross(tangent, e1)
        core = np.stack([np.cos(t), np.sin(t), tau * t], axis=1)
        return core + radius * (np.cos(s)[:, None] * e1 + np.sin(s)[:, None] * e2)

    return sample


def handkerchief(n: int, rng: np.random.Generator) -> np.ndarray:
    """The handkerchief surface ``(u, v, u^3 / 3 + u v^2 + 2 (u^2 - v^2))`` over ``[-1, 1]^2`` (uniform in u, v)."""
    u, v = rng.uniform(-1.0, 1.0, n), rng.uniform(-1.0, 1.0, n)
    return np.stack([u, v, u**3 / 3 + u * v * v + 2 * (u * u - v * v)], axis=1)


def limpet(n: int, rng: np.random.Generator) -> np.ndarray:
    """The limpet torus ``(cos u, sin u) / (sqrt 2 + sin v)``, height ``1 / (sqrt 2 + cos v)`` (u, v uniform)."""
    u, v = rng.uniform(0.0, 2 * math.pi, n), rng.uniform(0.0, 2 * math.pi, n)
    rho = 1 / (math.sqrt(2) + np.sin(v))
    return np.stack([rho * np.cos(u), rho * np.sin(u), 1 / (math.sqrt(2) + np.cos(v))], axis=1)


def cayley_ruled(n: int, rng: np.random.Generator) -> np.ndarray:
    """Cayley's ruled cubic surface ``z = x y - x^3`` over ``[-1, 1]^2`` (uniform in x, y)."""
    x, y = rng.uniform(-1.0, 1.0, n), rng.uniform(-1.0, 1.0, n)
    return np.stack([x, y, x * y - x**3], axis=1)


def complex_cubic(n: int, rng: np.random.Generator) -> np.ndarray:
    """The graph of ``w = z^3`` over the unit disc of ``C`` (``z`` uniform in the disc), in ``R^4``."""
    z = sample_ball(n, 2, rng) @ np.array([1.0, 1j])
    w = z**3
    return np.stack([z.real, z.imag, w.real, w.imag], axis=1)


def _scherk_tower(r_max: float) -> Latent:
    """Scherk's second (saddle-tower) minimal surface from its Weierstrass data ``f = 4 / (1 - w^4)``, ``g = w``.

    ``x = 2 ln(|1 + w| / |1 - w|)``, ``y = 2 ln(|1 + i w| / |1 - i w|)``, ``z = 2 arg((1 + w^2) / (1 - w^2))``
    with ``w`` uniform in the disc ``|w| <= r_max``.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        w = r_max * (sample_ball(n, 2, rng) @ np.array([1.0, 1j]))
        x = 2 * np.log(np.abs(1 + w) / np.abs(1 - w))
        y = 2 * np.log(np.abs(1 + 1j * w) / np.abs(1 - 1j * w))
        z = 2 * np.angle((1 + w * w) / (1 - w * w))
        return np.stack([x, y, z], axis=1)

    return sample


def spheroid_von_mises(polar: float, kappa: float) -> Make:
    """The prolate spheroid of half-axes 1, 1, ``polar``: von Mises(``kappa``) longitude, area-weighted latitude."""
    grid = np.linspace(0.0, math.pi, 20001)
    quantile = _inverse_cdf(grid, np.sin(grid) * np.sqrt(np.cos(grid) ** 2 + (polar * np.sin(grid)) ** 2))
    lon = _von_mises_circle(kappa, 1.0)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        phi = quantile(rng.random(n))
        return np.concatenate([np.sin(phi)[:, None] * lon(n, rng), polar * np.cos(phi)[:, None]], axis=1)

    return fixed(sample)


# --- networks ----------------------------------------------------------------------------------------------------


def _sqnl(h: np.ndarray) -> np.ndarray:
    c = np.clip(h, -2.0, 2.0)
    return c - c * np.abs(c) / 4


_ACTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "soft-clipping": lambda h: np.logaddexp(0.0, 2 * h) / 2 - np.logaddexp(0.0, 2 * (h - 1)) / 2,
    "PFLU": lambda h: h * (1 + h / np.sqrt(1 + h * h)) / 2,
    "ISRLU": lambda h: np.where(h >= 0, h, h / np.sqrt(1 + h * h)),
    "SQNL": _sqnl,
    "log-cosh": lambda h: np.logaddexp(h, -h) - math.log(2),
}


def act_net(d: int, ambient: int, width: int, depth: int, gain: float, act: str) -> Make:
    """A random ``depth``-layer network (soft-clipping, PFLU, SQNL, log-cosh) of a latent cube ``[-1, 1]^d``."""
    return random_network(d, ambient, width, depth, gain, 0.5, _ACTS[act])


def stereographic_map(d: int, ambient: int) -> Make:
    """A seeded linear map to ``R^ambient`` of the inverse stereographic image ``(2x, |x|^2 - 1) / (1 + |x|^2)``.

    The latent ``x`` is uniform in ``[-1, 1]^d``: a rational map of the cube onto a curved cap of an ellipsoid.
    """

    def make(seed: int) -> Latent:
        w = np.random.default_rng(seed).standard_normal((d + 1, ambient)) / math.sqrt(d + 1)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            x = rng.uniform(-1.0, 1.0, (n, d))
            q = (x * x).sum(1, keepdims=True)
            return (np.concatenate([2 * x, q - 1], axis=1) / (1 + q)) @ w

        return sample

    return make


# --- non-uniform densities ---------------------------------------------------------------------------------------


def gauss_laplace_mixture(d: int, weight: float, laplace_scale: float, spacing: float) -> Make:
    """Two separated clusters in ``R^d``: a standard Gaussian (``weight``) and a Laplace(``laplace_scale``) cloud.

    The centres are ``spacing`` apart along a seeded direction.
    """

    def make(seed: int) -> Latent:
        axis = np.random.default_rng(seed).standard_normal(d)
        shift = spacing * axis / np.linalg.norm(axis)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            second = (rng.random(n) >= weight)[:, None]
            g = rng.standard_normal((n, d))
            lap = rng.laplace(0.0, laplace_scale, (n, d)) + shift
            return np.where(second, lap, g)

        return sample

    return make


def _vmf_s3(
    n: int, rng: np.random.Generator, mean: np.ndarray, quantile: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Von Mises-Fisher points on :math:`S^3` about ``mean``: the height by ``quantile``, the rest uniform on S^2."""
    w = quantile(rng.random(n))
    basis = np.linalg.qr(np.concatenate([mean[:, None], np.eye(4)[:, :3]], axis=1))[0][:, 1:]
    side = np.sqrt(np.clip(1 - w * w, 0.0, None))
    return w[:, None] * mean + side[:, None] * (sample_sphere(n, 2, rng) @ basis.T)


def vmf_mixture_s3(weights: tuple[float, ...], kappas: tuple[float, ...]) -> Make:
    """A mixture of von Mises-Fisher densities on :math:`S^3` (seeded means, unequal ``weights`` and ``kappas``).

    The height ``w`` along each mean has density ``exp(kappa w) sqrt(1 - w^2)`` (inverse CDF on a fine grid).
    """
    w = np.asarray(weights) / sum(weights)
    grid = np.linspace(-1.0, 1.0, 20001)
    quantiles = [_inverse_cdf(grid, np.exp(k * (grid - 1)) * np.sqrt(1 - grid * grid)) for k in kappas]

    def make(seed: int) -> Latent:
        means = sample_sphere(len(w), 3, np.random.default_rng(seed))

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            j = rng.choice(len(w), n, p=w)
            each = [_vmf_s3(n, rng, means[k], quantiles[k]) for k in range(len(w))]
            return np.choose(j[:, None], each)

        return sample

    return make


def _wrapped_cauchy_angles(rho: float) -> Callable[[np.ndarray], np.ndarray]:
    """The inverse CDF of the wrapped Cauchy density of ``rho`` about 0 (closed form)."""
    c = (1 - rho) / (1 + rho)
    return lambda u: 2 * np.arctan(c * np.tan(math.pi * (u - 0.5)))


def wrapped_cauchy_torus(d: int, rho: float) -> Make:
    """A flat ``d``-torus (unit circles) whose angles are wrapped Cauchy(``mu_i``, ``rho``), ``mu`` seeded."""
    angles = _wrapped_cauchy_angles(rho)

    def make(seed: int) -> Latent:
        mu = np.random.default_rng(seed).uniform(-math.pi, math.pi, d)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            th = angles(rng.random((n, d))) + mu
            return np.concatenate([np.cos(th), np.sin(th)], axis=1)

        return sample

    return make


def _wrapped_cauchy_circle(rho: float, radius: float) -> Latent:
    angles = _wrapped_cauchy_angles(rho)
    return lambda n, rng: radius * np.stack([np.cos(a := angles(rng.random(n))), np.sin(a)], axis=1)


def student_t(d: int, dof: float) -> Make:
    """The multivariate Student-t of ``dof`` degrees of freedom in ``R^d`` (a Gaussian over a shared chi scale)."""
    return fixed(lambda n, rng: rng.standard_normal((n, d)) / np.sqrt(rng.gamma(dof / 2, 2 / dof, (n, 1))))


# --- higher dimension --------------------------------------------------------------------------------------------


def _sym_coords(p: np.ndarray) -> np.ndarray:
    """A batch of symmetric matrices as the diagonal and ``sqrt 2`` times the upper triangle (an isometry)."""
    iu = np.triu_indices(p.shape[1], 1)
    return np.concatenate([np.diagonal(p, axis1=1, axis2=2), math.sqrt(2) * p[:, iu[0], iu[1]]], axis=1)


def flag_manifold(k: int, p: int) -> Make:
    """The flag manifold of lines inside ``p``-planes of ``R^k`` as pairs of projectors; dim ``p (k - p) + p - 1``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        q = np.linalg.qr(rng.standard_normal((n, k, p)))[0]
        line = q[:, :, :1] * q[:, None, :, 0]
        plane = q @ np.swapaxes(q, 1, 2)
        return np.concatenate([_sym_coords(line), _sym_coords(plane)], axis=1)

    return fixed(sample)


def lens_space(k: int, order: int) -> Make:
    r"""The lens space :math:`S^{2k-1} / Z_{order}` (``z ~ e^{2 pi i / order} z``), dimension ``2k - 1``.

    A unit ``z`` of :math:`C^k` maps to the Hermitian ``z z^*`` (its Hopf image, real coordinates as
    :func:`_sym_coords` over C) and the symmetric tensor ``z^{(x) order}`` (the monomials of degree ``order``,
    weighted by the square roots of their multinomial coefficients): together invariant under the group and injective
    on the quotient, both of norm 1.
    """
    monomials = list(itertools.combinations_with_replacement(range(k), order))
    weight = np.array([
        math.sqrt(math.factorial(order) / math.prod(math.factorial(m.count(i)) for i in set(m))) for m in monomials
    ])
    iu = np.triu_indices(k, 1)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        g = rng.standard_normal((n, 2 * k))
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        z = g[:, :k] + 1j * g[:, k:]
        h = z[:, :, None] * np.conj(z[:, None, :])
        off = math.sqrt(2) * h[:, iu[0], iu[1]]
        mono = np.stack([np.prod(z[:, list(m)], axis=1) for m in monomials], axis=1) * weight
        return np.concatenate([np.diagonal(h, axis1=1, axis2=2).real, off.real, off.imag, mono.real, mono.imag], axis=1)

    return fixed(sample)


def rotations(k: int) -> Make:
    """Haar rotations :math:`SO(k)` (QR of a Gaussian, signs fixed, one column flipped where the determinant is -1)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        q, r = np.linalg.qr(rng.standard_normal((n, k, k)))
        q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
        q[:, :, 0] *= np.sign(np.linalg.det(q))[:, None]
        return q.reshape(n, -1)

    return fixed(sample)


def sixteenth_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the sixteenth split."""
    s = "sixteenth"
    return [
        # --- curves
        ("(3, 5) torus knot + 1 %", "curve", 1, 12, 0.01, s, 1701, arc_curve("torus knot")),
        ("lemniscate of Gerono + 5 %", "curve", 1, 8, 0.05, s, 1702, arc_curve("gerono")),
        ("line of slopes (1, sqrt 2, sqrt 3) on T^3 + 1 %", "curve", 1, 12, 0.01, s, 1703, arc_curve("winding")),
        ("cycloid of Ceva", "curve", 1, 3, 0.0, s, 1704, arc_curve("ceva")),
        ("ramphoid cusp (t^2, t^4 + t^5) + 5 %", "curve", 1, 8, 0.05, s, 1705, arc_curve("ramphoid")),
        (
            "soft-clipping net d=1 -> R^24 + 5 %",
            "curve",
            1,
            24,
            0.05,
            s,
            1706,
            act_net(1, 24, 24, 3, 1.5, "soft-clipping"),
        ),
        ("Lissajous knot (3, 2, 7) + 1 %", "curve", 1, 16, 0.01, s, 1707, arc_curve("lissajous knot")),
        ("spiral of heading s^3, |s| <= 1.8", "curve", 1, 10, 0.0, s, 1708, cubic_spiral(1.8)),
        # --- surfaces
        ("helical spring, 3 turns, tube 0.25 + 1 %", "surface", 2, 12, 0.01, s, 1711, fixed(_spring(3, 1.2, 0.25))),
        ("handkerchief surface + 5 %", "surface", 2, 10, 0.05, s, 1712, fixed(handkerchief)),
        ("limpet torus", "surface", 2, 10, 0.0, s, 1713, fixed(limpet)),
        ("Cayley's ruled cubic surface + 1 %", "surface", 2, 8, 0.01, s, 1714, fixed(cayley_ruled)),
        ("graph of w = z^3 over the unit disc + 5 %", "surface", 2, 12, 0.05, s, 1715, fixed(complex_cubic)),
        ("Scherk's saddle tower, |w| <= 0.7 + 1 %", "surface", 2, 12, 0.01, s, 1716, fixed(_scherk_tower(0.7))),
        (
            "prolate spheroid 1:1:2, von Mises longitude",
            "surface",
            2,
            10,
            0.0,
            s,
            1717,
            spheroid_von_mises(2.0, 2.0),
        ),
        # --- network images
        ("PFLU net d=3 -> R^30", "network", 3, 30, 0.0, s, 1721, act_net(3, 30, 36, 3, 1.5, "PFLU")),
        (
            "residual ISRLU net d=6 -> R^56 + 1 %",
            "network",
            6,
            56,
            0.01,
            s,
            1722,
            residual_net(6, 56, 64, 2, 0.8, _ACTS["ISRLU"]),
        ),
        ("SQNL net d=8 -> R^72 + 5 %", "network", 8, 72, 0.05, s, 1723, act_net(8, 72, 64, 2, 1.2, "SQNL")),
        (
            "log-cosh net d=12 -> R^200 + 1 %",
            "network",
            12,
            200,
            0.01,
            s,
            1724,
            act_net(12, 200, 96, 2, 1.5, "log-cosh"),
        ),
        (
            "stereographic rational map d=4 -> R^32 + 5 %",
            "network",
            4,
            32,
            0.05,
            s,
            1725,
            stereographic_map(4, 32),
        ),
        # --- non-uniform densities
        (
            "separated Gaussian / Laplace mixture d=5, weights 0.7 / 0.3 + 5 %",
            "density",
            5,
            20,
            0.05,
            s,
            1731,
            gauss_laplace_mixture(5, 0.7, 0.45, 8.0),
        ),
        (
            "von Mises-Fisher mixture on S^3, weights 0.55 / 0.3 / 0.15 + 1 %",
            "density",
            3,
            12,
            0.01,
            s,
            1732,
            vmf_mixture_s3((0.55, 0.3, 0.15), (5.0, 12.0, 2.0)),
        ),
        ("wrapped Cauchy 3-torus, rho 0.5 + 1 %", "density", 3, 12, 0.01, s, 1733, wrapped_cauchy_torus(3, 0.5)),
        ("Student-t(6) d=7 + 5 %", "density", 7, 28, 0.05, s, 1734, student_t(7, 6.0)),
        (
            "half-normal coordinates d=6 + 1 %",
            "density",
            6,
            24,
            0.01,
            s,
            1735,
            fixed(lambda n, rng: np.abs(rng.standard_normal((n, 6)))),
        ),
        ("Dirichlet(0.5, 1, 2, 4) simplex d=3", "density", 3, 12, 0.0, s, 1736, dirichlet((0.5, 1.0, 2.0, 4.0))),
        (
            "Beta(1.5, 0.6) cube d=4 + 5 %",
            "density",
            4,
            16,
            0.05,
            s,
            1737,
            fixed(lambda n, rng: rng.beta(1.5, 0.6, (n, 4))),
        ),
        # --- higher dimension
        ("flag manifold of lines in 3-planes of R^6 + 1 %", "high_d", 11, 48, 0.01, s, 1741, flag_manifold(6, 3)),
        ("lens space S^11 / Z_3 + 1 %", "high_d", 11, 160, 0.01, s, 1742, lens_space(6, 3)),
        ("rotations SO(6) + 1 %", "high_d", 15, 48, 0.01, s, 1743, rotations(6)),
        (
            "Beta(0.8, 1.6) cube d=13 + 5 %",
            "high_d",
            13,
            44,
            0.05,
            s,
            1744,
            fixed(lambda n, rng: rng.beta(0.8, 1.6, (n, 13))),
        ),
        ("sphere S^17 + 5 %", "high_d", 17, 56, 0.05, s, 1745, fixed(lambda n, rng: sample_sphere(n, 17, rng))),
        ("ball B^21", "high_d", 21, 64, 0.0, s, 1746, fixed(lambda n, rng: sample_ball(n, 21, rng))),
        ("torus T^14 + 5 %", "high_d", 14, 48, 0.05, s, 1747, fixed(lambda n, rng: sample_torus(n, 14, rng))),
        ("cube [0,1]^19 + 1 %", "high_d", 19, 60, 0.01, s, 1748, fixed(lambda n, rng: sample_cube(n, 19, rng))),
        ("Gaussian d=13", "high_d", 13, 40, 0.0, s, 1749, fixed(lambda n, rng: rng.standard_normal((n, 13)))),
        # --- products
        (
            "lemniscate of Gerono x wrapped Cauchy circle + 1 %",
            "product",
            2,
            10,
            0.01,
            s,
            1751,
            product(_arc_uniform(gerono_xy, 0.0, 2 * math.pi), _wrapped_cauchy_circle(0.5, 0.5)),
        ),
        (
            "cycloid of Ceva x 2 Beta(0.5, 0.5) interval + 5 %",
            "product",
            2,
            10,
            0.05,
            s,
            1752,
            product(_arc_uniform(ceva_xy, 0.0, 2 * math.pi), lambda n, rng: 2 * rng.beta(0.5, 0.5, (n, 1))),
        ),
        (
            "spiral of heading s^3, |s| <= 1.4 x disc of radius 0.65",
            "product",
            3,
            12,
            0.0,
            s,
            1753,
            product(cubic_spiral(1.4)(0), lambda n, rng: 0.65 * sample_ball(n, 2, rng)),
        ),
        (
            "(3, 5) torus knot x interval of length 1.6",
            "product",
            2,
            12,
            0.0,
            s,
            1754,
            product(_arc_uniform(torus_knot_35, 0.0, 2 * math.pi), lambda n, rng: rng.uniform(0.0, 1.6, (n, 1))),
        ),
        (
            "handkerchief surface x circle of radius 0.5",
            "product",
            3,
            12,
            0.0,
            s,
            1755,
            product(handkerchief, lambda n, rng: 0.5 * sample_sphere(n, 1, rng)),
        ),
        (
            "limpet torus x von Mises circle, kappa 2",
            "product",
            3,
            14,
            0.0,
            s,
            1756,
            product(limpet, _von_mises_circle(2.0, 0.4)),
        ),
        (
            "Scherk's saddle tower x 2 Beta(2, 2) interval",
            "product",
            3,
            12,
            0.0,
            s,
            1757,
            product(_scherk_tower(0.7), lambda n, rng: 2 * rng.beta(2.0, 2.0, (n, 1))),
        ),
    ]


__all__ = ["sixteenth_specs"]
