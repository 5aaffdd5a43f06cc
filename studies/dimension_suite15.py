r"""The fifteenth split of the trusted-``dim`` suite (issue #14): 43 clouds written before the fifteenth tuning round.

The fourteen earlier splits (:mod:`studies.dimension_suite`'s tune / held-out / fresh halves and the third to
fourteenth splits of :mod:`studies.dimension_suite3` to :mod:`studies.dimension_suite14`, 533 clouds) were all opened
while the rule was tuned, so they are tuning data. This split (``split="fifteenth"``, seeds 16xx) was written and
committed *before* the fifteenth round of tuning and is measured once, after the rule is frozen. It follows the issue's
family list with shapes, densities and embeddings that are mostly new; noisy curves (six of eight curves, three at
5 %) are included because that is where the rule's error concentrates.

Re-dimensioned repeats and near-repeats of earlier families, listed so that nobody counts them as new: the ordinary
clouds (the sphere :math:`S^{23}`, the ball :math:`B^{26}`, the flat torus :math:`T^{20}`, the cube :math:`[0, 1]^{21}`
and a 15-d Gaussian: every split has such clouds at other dimensions); the image of an interval under a random network
(the tanhshrink network d = 1 -> :math:`R^{24}` + 5 %: networks d = 1 -> :math:`R^{24}` + 5 % are in the fourth, ninth,
tenth, twelfth and fourteenth splits; every split has a network curve); the log-sigmoid network d = 3 -> :math:`R^{36}`
and the hard-swish network d = 5 -> :math:`R^{50}` share d and D with networks of the ninth, tenth, thirteenth and
fourteenth splits; the activations are relatives of earlier ones (log-sigmoid is the reflected softplus of the third and
eighth splits, hard-swish the piecewise swish / SiLU of the fourth, sech a bump like the Gaussian, Cauchy and Ricker
bumps of the seventh, tenth, thirteenth and fourteenth splits, tanhshrink ``h - tanh h`` of the tune split's tanh, the
residual softsign network of the sixth and eighth splits' softsign and the residual networks of the third and ninth to
fourteenth splits; a geometry review found hard-swish ``h clip(h + 3, 0, 6) / 6`` and tanhshrink to be exactly the tenth
split's activations, used there in its hard-swish d = 9 and residual tanh-shrink d = 16 networks); the random cubic
polynomial map (the fourth split's quadratic map d = 4, the eleventh's Bezier curve and the thirteenth's rational curve
are other polynomial maps); the (2, 7) torus knot (the third split's (2, 3) torus knot, drawn from a Beta parameter, and
the fourteenth's trefoil: other torus knots) and the tube about the (2, 5) torus knot (the fifth split's figure-eight
knot tube: another knot tube); Talbot's curve, the bifolium and the trisectrix of Maclaurin (planar algebraic curves
with cusps or double points like the fish, scarabaeus, folium of Descartes, strophoid and Tschirnhausen cubic of the
ninth, tenth and fourteenth splits); the regular pentagon (a piecewise-flat closed curve: the fourth split's boundary of
the 13-cube and the fourteenth's octahedron surface are piecewise-flat boundaries); the semicubical parabola (cusped
curves: the astroid, deltoid and hypocycloids of the seventh, eighth and fourteenth splits); the polygonal chain in
:math:`R^{16}` (random curves in high ambient space: the eighth split's random closed Fourier curve, the seventh's
trigonometric spline); the Steinbach screw (a ruled screw surface like the fourth split's helicoid and the twelfth's
hyperbolic helicoid); the catenoid-helicoid associate surface (the fifth split's catenoid, the fourth's helicoid: the
same minimal family at another angle); the cone over a three-lobed curve (the sixth split's double cone); the torus of
elliptic section (the ring, horn and spindle tori of the sixth, seventh and tenth splits, the fourteenth's varying
tube); the Cassini oval of revolution (the seventh split's Cassini ovals as a curve, the twelfth's lemniscate of
revolution); the Enneper surface of order 3 (the third split's order 1, the fourteenth's order 2); the separated
three-Gaussian mixture (separated mixtures in the ninth to fourteenth splits; closest, the twelfth's separated Gaussian
mixture d = 11 and the thirteenth's Gaussian / ball / Gaussian mixture at d = 6, the same d); the von Mises-Fisher
mixture on :math:`S^2` (von Mises-Fisher caps of the seventh, eighth and twelfth splits, the Kent density of the tenth
on :math:`S^2`); the Dirichlet simplex d = 5 (Dirichlet(0.6) d = 4 in the fourth split, Dirichlet(0.8) d = 12 in the
tenth; closest, the tenth split's Dirichlet(3, 1, 0.5, 0.5, 2, 1) simplex d = 5 + 5 %, also with unequal parameters and
the same d); the bimodal von Mises 4-torus (von Mises tori of eight earlier splits, the fourteenth's cardioid torus:
other circular densities); the sorted Beta(2, 3) samples (Beta coordinates in the third, eighth and thirteenth splits;
the thirteenth split's sorted GUE eigenvalues are a density on the same ordered cone, one that vanishes at the cone's
walls where the sorted Beta density does not); the Frank copula pairs (the Clayton, Gaussian and Student-t copulas of
the fifth, eleventh and twelfth splits); the log-Gamma(1.5) coordinates (the seventh and eighth splits' log-normal
radii, the eighth's Gamma(0.5) coordinates: skewed independent coordinates); the real Stiefel manifold :math:`V_4(R^6)`
(the fourth split's :math:`V_2(R^5)`, the tenth's :math:`V_3(R^7)`, the fourteenth's complex :math:`V_2(C^5)`); the
product of spheres of radii 1, 0.8, 0.6 (the third split's :math:`S^5 \times S^5`, the sixth's circles of radii 1, 0.3,
0.1); the hyperbolic-paraboloid quadric graph d = 16 (the third split's saddle, a graph surface of the same kind at d =
2); the quaternionic projective space :math:`HP^4` as projectors (the twelfth split's :math:`CP^6` and the fourteenth's
:math:`RP^{12}`: the same projector embedding over the other two division algebras); the products of a curve and an
interval or a circle (the thirteenth and fourteenth splits' curves times Beta intervals and von Mises circles); the
pentagon times a pentagon (the flat tori of most splits, here with flat sides); the von Mises-Fisher mixture :math:`S^2
\times S^2` (products of spheres with densities: the tenth split's Kent :math:`S^2` times a hippopede).

* curves (uniform in arc length, by the inverse of a fine arc-length table): the (2, 7) torus knot on the torus of
  radii 1 and 0.4, the trisectrix of Maclaurin ``2x (x^2 + y^2) = 3x^2 - y^2`` (its loop and both arms, slope ``y / x``
  in ``[-3, 3]``; a double point at the origin), Talbot's curve (``a = 1.1``, ``b = 0.666``, ``f = 1``: four cusps and
  self-crossings), the bifolium ``r = 2 sin^2 t cos t`` (two leaves meeting at the origin), the regular pentagon, the
  semicubical parabola ``(t^2, t^3)`` (a cusp), a seeded open polygonal chain of 24 vertices in :math:`R^{16}` and the
  image of an interval under a random tanhshrink network;
* surfaces: the Steinbach screw ``(u cos v, u sin v, v cos u)`` (``|u| <= 1.2``, ``v`` in ``[0, pi]``), the tube of
  radius 0.12 about the (2, 5) torus knot on the torus of radii 1 and 0.45, the catenoid-helicoid associate surface at
  45 degrees (``|v| <= 1.2``), the cone from the origin over the curve ``rho = 1 + 0.35 cos 3s`` in the plane ``z = 1``
  (``z`` in ``[0.2, 1]``), the torus of elliptic section (half-axes 0.5 and 0.25), the Cassini oval ``b = 1.1`` revolved
  about its long axis (area-uniform), the Enneper surface of order 3 over ``|z| <= 0.8``;
* network images: log-sigmoid (d = 3), hard-swish (d = 5), sech (d = 7), a random cubic polynomial map (d = 6: every
  monomial of degree 1 to 3, weighted 1 / 0.5 / 0.3 by degree) and a residual softsign network (d = 10);
* non-uniform densities: a separated mixture of three Gaussians of unequal weights 0.6 / 0.3 / 0.1 and scales 1 / 0.8
  / 0.6 (the second anisotropic, axes 1.3 to 0.7; d = 6), a mixture of three von Mises-Fisher densities on :math:`S^2`
  (weights 0.5 / 0.3 / 0.2, concentrations 6 / 2 / 15), Dirichlet(0.7, 1, 1.5, 2, 3, 4) (d = 5), the 4-torus whose
  angles have two unequal von Mises modes 2.2 apart (kappa 3, weights 1 and 0.6), the order statistics of three
  Beta(2, 3) draws, two independent Frank-copula pairs (theta 5) and log-Gamma(1.5) coordinates (d = 6);
* higher dimension: the real Stiefel manifold :math:`V_4(R^6)` (d = 14), :math:`S^5 \times S^4 \times S^3` of radii 1,
  0.8, 0.6 (d = 12), the graph of ``x^T A x / 2`` over :math:`[-1, 1]^{16}` with ``A`` a seeded rotation of ``diag(1,
  -1, ...)`` (a hyperbolic paraboloid of signature (8, 8), d = 16), the quaternionic projective space :math:`HP^4` as
  rank-two Hermitian projectors of :math:`C^{10}` (d = 16), and ordinary clouds (:math:`S^{23}`, :math:`B^{26}`,
  :math:`T^{20}`, :math:`[0, 1]^{21}`, a 15-d Gaussian);
* products: Talbot's curve times a 3 Kumaraswamy(2, 5) interval, the semicubical parabola times a circle of radius 0.5,
  the pentagon times a pentagon of circumradius 0.6, a Dirichlet(1, 2, 4) triangle times a von Mises circle (kappa 2,
  radius 0.4), the Steinbach screw times a 2 Beta(0.7, 0.7) interval, the bifolium times a disc of radius 0.35, and a
  von Mises-Fisher mixture :math:`S^2` times another of radius 0.7.

Scales were checked against the neighbour scale before the split was committed (geometry only, no estimate; clean clouds
of 2,500 points, 20th-neighbour distances ``k20``). Curves (drawn from their arc length ``s``): the share of points with
a 20-neighbour more than four median 20th-neighbour arc lengths away along the curve (closed curves measured round the
loop) is 0 on the torus knot and the pentagon, and where the shape itself brings the curve together it is about 1 % on
the semicubical parabola (its cusp), about 2 % on the trisectrix (its double point), 2-3 % on the bifolium (its leaves
meet at the origin) and 10-11 % on Talbot's curve (its cusps and self-crossings; 3 % at 20,000): the author's draws read
0.8 / 1.8 / 2.2 / 9.7 %, the geometry review's, on the study's own seeds, 1.2 / 2.0 / 2.8 / 11.2 %; the knot's strands
stay apart (0 %). In the network images drawn from a latent cube of dimension up to 3 no 20-neighbour pair lies more
than four median neighbour distances apart in the latent cube (tanhshrink, log-sigmoid). Surfaces, on 40,000 clean
points, every nearest neighbour is within 0.05 of the point in every parameter (scaled to ``[0, 1]``, angles measured
round) on the Steinbach screw, the knot tube, the associate surface, the cone and the elliptic torus; on the Cassini
surface 0.04 % and on the Enneper surface 0.01 % of the points have a nearest neighbour farther in a parameter, all at
the parametrisations' own degenerate points (the revolution axis, the disc's centre). Two surfaces are thin against the
neighbour scale at 2,500 points (disclosed; readable at 20,000): the knot tube's radius (0.12) is below its median
``k20`` at 2,500 (0.18; 0.067 at 20,000), so at the smaller size the tube is not much wider than the neighbourhoods; its
strands come no closer than 0.61 (tube surfaces 0.37 apart, twice ``k20``) and the knot's radius of curvature is at
least 0.59. The elliptic torus's half-height (0.25) is 1.3 times its ``k20`` at 2,500 (0.195). Parametrisations that are
not area-uniform (disclosed, none changes a truth): the Steinbach screw and the associate surface are uniform in their
two parameters, the knot tube uniform in the knot's arc length and the angle about it (the area element varies with the
tube's curvature), the elliptic torus uniform in its two angles, the Enneper surface uniform in the disc; the cone is
area-uniform along its rulings, the Cassini surface area-uniform. Products: in every product the 20th neighbour's median
displacement within each factor is below half that factor's RMS radius (at most 0.46 of it: the bifolium's disc). The
mixture's 20-neighbour graph at n = 2,500 splits into its three clusters (tests/test_dimension_suite15.py checks the
weights and that every gap exceeds twice the widest cluster's median ``k20``); the noise (5 % of the cloud's RMS radius
5.6, i.e. 0.28) is 19 % of the narrowest cluster's RMS radius (0.6 sqrt 6). The covariance of every clean cloud has a
condition number at most about 6.5 over its top ``dim`` directions (the residual softsign network and the sorted Beta
draws; 5.9-6.5 over draws of 2,500 to 4,000 points) except the mixture (28-30: its three centres). The Steinbach screw
was first drawn with ``v`` in ``[0, 2 pi]`` (condition 10: a tall sheet) and moved to ``[0, pi]``; the interval of
Talbot's curve times an interval from length 1.5 to 3 and the bifolium's disc from radius 0.25 to 0.35 (conditions 10
and 9.6 before, under 5 after). The sorted Beta draws were first written at d = 5 (condition 16: the ordered cone is
thin) and moved to d = 3 (6.0).

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`): 0 on
13 clouds, 1 % on 16, 5 % on 14. Truth = the manifold's dimension (checked by the rank of every sampler's Jacobian in
its draws, tests/test_dimension_suite15.py). Nothing here comes from a published benchmark generator (scikit-dimension's
``BenchmarkManifolds``, DADApy's data sets). No sampler rejects draws; the curves are drawn uniform in arc length by the
inverse of a fine arc-length table, the circular densities and the Cassini surface's polar angle by the inverse of a
CDF on a fine grid, the von Mises-Fisher heights by the closed-form inverse of their CDF. SciPy is not used.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lightning_repgap.manifolds import sample_ball, sample_cube, sample_sphere, sample_torus
from studies.dimension_suite3 import Latent, Make, fixed
from studies.dimension_suite4 import random_network
from studies.dimension_suite7 import product
from studies.dimension_suite9 import residual_net
from studies.dimension_suite13 import _inverse_cdf
from studies.dimension_suite14 import _arc_uniform, _von_mises_circle, enneper

# --- curves ------------------------------------------------------------------------------------------------------


def torus_knot_xyz(t: np.ndarray, p: int = 2, q: int = 7, minor: float = 0.4) -> np.ndarray:
    """The ``(p, q)`` torus knot on the ring torus of radii 1 and ``minor``."""
    ring = 1 + minor * np.cos(q * t)
    return np.stack([ring * np.cos(p * t), ring * np.sin(p * t), minor * np.sin(q * t)], axis=1)


def trisectrix_xy(m: np.ndarray) -> np.ndarray:
    """The trisectrix of Maclaurin ``2x (x^2 + y^2) = 3x^2 - y^2``, by the slope ``m = y / x`` (a loop and two arms)."""
    x = (3 - m * m) / (2 * (1 + m * m))
    return np.stack([x, m * x], axis=1)


def talbot_xy(t: np.ndarray, a: float = 1.1, b: float = 0.666, f: float = 1.0) -> np.ndarray:
    """Talbot's curve ``((a^2 + f^2 sin^2 t) cos t / a, (a^2 - 2 f^2 + f^2 sin^2 t) sin t / b)`` (four cusps)."""
    s2 = np.sin(t) ** 2
    return np.stack([(a * a + f * f * s2) * np.cos(t) / a, (a * a - 2 * f * f + f * f * s2) * np.sin(t) / b], axis=1)


def bifolium_xy(t: np.ndarray) -> np.ndarray:
    """The bifolium ``r = 2 sin^2 t cos t``, ``t`` in ``[0, pi]`` (two leaves meeting at the origin)."""
    r = 2 * np.sin(t) ** 2 * np.cos(t)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def pentagon_xy(t: np.ndarray) -> np.ndarray:
    """The boundary of the regular pentagon of circumradius 1, ``t`` in ``[0, 5]`` (one unit of ``t`` per side)."""
    k = np.minimum(np.floor(t), 4.0)
    frac = (t - k)[:, None]
    a = 2 * math.pi * k / 5
    b = 2 * math.pi * (k + 1) / 5
    start = np.stack([np.cos(a), np.sin(a)], axis=1)
    end = np.stack([np.cos(b), np.sin(b)], axis=1)
    return (1 - frac) * start + frac * end


def semicubical_xy(t: np.ndarray) -> np.ndarray:
    """The semicubical parabola ``(t^2, t^3)`` (a cusp at the origin)."""
    return np.stack([t * t, t**3], axis=1)


def arc_curve(name: str) -> Make:
    """One of this module's closed-form curves, uniform in arc length."""
    curves: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float, float]] = {
        "torus knot": (torus_knot_xyz, 0.0, 2 * math.pi),
        "trisectrix": (trisectrix_xy, -3.0, 3.0),
        "talbot": (talbot_xy, 0.0, 2 * math.pi),
        "bifolium": (bifolium_xy, 0.0, math.pi),
        "pentagon": (pentagon_xy, 0.0, 5.0),
        "semicubical": (semicubical_xy, -1.0, 1.0),
    }
    return fixed(_arc_uniform(*curves[name]))


def polygonal_chain(ambient: int, vertices: int) -> Make:
    """An open polygonal chain through ``vertices`` seeded Gaussian points of ``R^ambient`` (sd ``1 / sqrt ambient``).

    Uniform in arc length (every corner is a kink of the curve).
    """

    def make(seed: int) -> Latent:
        pts = np.random.default_rng(seed).standard_normal((vertices, ambient)) / math.sqrt(ambient)
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        s = np.concatenate([[0.0], np.cumsum(seg)])

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            u = rng.uniform(0.0, s[-1], n)
            k = np.clip(np.searchsorted(s, u, side="right") - 1, 0, vertices - 2)
            frac = ((u - s[k]) / seg[k])[:, None]
            return (1 - frac) * pts[k] + frac * pts[k + 1]

        return sample

    return make


# --- surfaces ----------------------------------------------------------------------------------------------------


def _steinbach(u_max: float) -> Latent:
    """Points of the Steinbach screw ``(u cos v, u sin v, v cos u)``, ``|u| <= u_max``, ``v`` in ``[0, pi]``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(-u_max, u_max, n)
        v = rng.uniform(0.0, math.pi, n)
        return np.stack([u * np.cos(v), u * np.sin(v), v * np.cos(u)], axis=1)

    return sample


def steinbach_screw(u_max: float) -> Make:
    """The Steinbach screw ``(u cos v, u sin v, v cos u)`` (``u``, ``v`` uniform: not area-uniform)."""
    return fixed(_steinbach(u_max))


def knot_tube(p: int, q: int, minor: float, radius: float) -> Make:
    """The tube of ``radius`` about the ``(p, q)`` torus knot on the torus of radii 1 and ``minor``.

    The knot is drawn uniform in arc length and the angle about it uniformly; the normal frame is the unit vector from
    the torus's core circle to the knot (orthogonal to the knot's tangent) and the tangent's cross product with it.
    """
    t_grid = np.linspace(0.0, 2 * math.pi, 200001)
    arc = np.concatenate([
        [0.0],
        np.cumsum(np.linalg.norm(np.diff(torus_knot_xyz(t_grid, p, q, minor), axis=0), axis=1)),
    ])

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = np.interp(rng.uniform(0.0, arc[-1], n), arc, t_grid)
        s = rng.uniform(0.0, 2 * math.pi, n)
        ring = 1 + minor * np.cos(q * t)
        core = np.stack([ring * np.cos(p * t), ring * np.sin(p * t), minor * np.sin(q * t)], axis=1)
        e1 = np.stack([np.cos(q * t) * np.cos(p * t), np.cos(q * t) * np.sin(p * t), np.sin(q * t)], axis=1)
        tangent = np.stack(
            [
                -p * ring * np.sin(p * t) - q * minor * np.sin(q * t) * np.cos(p * t),
                p * ring * np.cos(p * t) - q * minor * np.sin(q * t) * np.sin(p * t),
                q * minor * np.cos(q * t),
            ],
            axis=1,
        )
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
        e2 = np.cross(tangent, e1)
        return core + radius * (np.cos(s)[:, None] * e1 + np.sin(s)[:, None] * e2)

    return fixed(sample)


def associate_surface(angle: float, v_max: float) -> Make:
    """The catenoid-helicoid associate minimal surface at ``angle`` (0: helicoid, pi / 2: catenoid).

    ``u`` uniform in ``[-pi, pi]`` and ``v`` in ``[-v_max, v_max]``.
    """
    c, s = math.cos(angle), math.sin(angle)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(-math.pi, math.pi, n)
        v = rng.uniform(-v_max, v_max, n)
        x = c * np.sinh(v) * np.sin(u) + s * np.cosh(v) * np.cos(u)
        y = -c * np.sinh(v) * np.cos(u) + s * np.cosh(v) * np.sin(u)
        return np.stack([x, y, c * u + s * v], axis=1)

    return fixed(sample)


def lobed_cone(lobes: int, depth: float, inner: float) -> Make:
    """The cone from the origin over the curve ``(rho cos s, rho sin s, 1)``, ``rho = 1 + depth cos(lobes s)``.

    The radial parameter ``r`` in ``[inner, 1]`` has density proportional to ``r`` (area-uniform along the rulings),
    ``s`` is uniform.
    """

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        r = np.sqrt(inner**2 + (1 - inner**2) * rng.random(n))
        s = rng.uniform(0.0, 2 * math.pi, n)
        rho = 1 + depth * np.cos(lobes * s)
        return r[:, None] * np.stack([rho * np.cos(s), rho * np.sin(s), np.ones(n)], axis=1)

    return fixed(sample)


def elliptic_torus(a: float, b: float) -> Make:
    """The torus about the unit circle whose section is the ellipse of half-axes ``a`` (radial) and ``b`` (height)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform(0.0, 2 * math.pi, n)
        v = rng.uniform(0.0, 2 * math.pi, n)
        ring = 1 + a * np.cos(v)
        return np.stack([ring * np.cos(u), ring * np.sin(u), b * np.sin(v)], axis=1)

    return fixed(sample)


def cassini_revolution(b: float) -> Make:
    """The Cassini oval ``(x^2 + y^2)^2 - 2 (x^2 - y^2) = b^4 - 1`` (``b > 1``: one loop) revolved about its long axis.

    Area-uniform: the polar angle of the oval is drawn from the area weight ``y |dgamma|`` (inverse CDF on a fine grid),
    the revolution angle uniformly.
    """
    grid = np.linspace(0.0, math.pi, 20001)
    oval = _cassini_xy(grid, b)
    speed = np.gradient(oval, grid, axis=0)
    quantile = _inverse_cdf(grid, oval[:, 1] * np.linalg.norm(speed, axis=1))

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        xy = _cassini_xy(quantile(rng.random(n)), b)
        phi = rng.uniform(0.0, 2 * math.pi, n)
        return np.stack([xy[:, 0], xy[:, 1] * np.cos(phi), xy[:, 1] * np.sin(phi)], axis=1)

    return fixed(sample)


def _cassini_xy(theta: np.ndarray, b: float) -> np.ndarray:
    r = np.sqrt(np.cos(2 * theta) + np.sqrt(b**4 - np.sin(2 * theta) ** 2))
    return np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)


# --- networks ----------------------------------------------------------------------------------------------------

_ACTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanhshrink": lambda h: h - np.tanh(h),
    "log-sigmoid": lambda h: -np.logaddexp(0.0, -h),
    "hard-swish": lambda h: h * np.clip(h + 3, 0.0, 6.0) / 6,
    "sech": lambda h: 1 / np.cosh(h),
    "softsign": lambda h: h / (1 + np.abs(h)),
}


def act_net(d: int, ambient: int, width: int, depth: int, gain: float, act: str) -> Make:
    """A random ``depth``-layer network (tanhshrink, log-sigmoid, hard-swish, sech) of a latent cube ``[-1, 1]^d``."""
    return random_network(d, ambient, width, depth, gain, 0.5, _ACTS[act])


def cubic_map(d: int, ambient: int, weights: tuple[float, float, float]) -> Make:
    """A random polynomial map of degree 3 of the cube ``[-1, 1]^d``.

    Every monomial of degree 1 to 3, weighted by degree (``weights``), times a seeded Gaussian matrix to ``R^ambient``.
    """
    import itertools

    monomials = [m for k in (1, 2, 3) for m in itertools.combinations_with_replacement(range(d), k)]

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        scale = np.array([weights[len(m) - 1] for m in monomials])
        w = frng.standard_normal((len(monomials), ambient)) * scale[:, None] / math.sqrt(ambient)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            x = rng.uniform(-1.0, 1.0, (n, d))
            feats = np.stack([np.prod(x[:, list(m)], axis=1) for m in monomials], axis=1)
            return feats @ w

        return sample

    return make


# --- non-uniform densities ---------------------------------------------------------------------------------------


def unequal_mixture(
    d: int, weights: tuple[float, float, float], scales: tuple[float, float, float], spacing: float
) -> Make:
    """Three separated Gaussians in ``R^d`` of ``weights`` and ``scales``.

    The second is anisotropic (axes 1.3 to 0.7 times its scale, rotated); the centres sit at ``spacing`` on seeded
    orthonormal directions.
    """
    w = np.asarray(weights) / sum(weights)
    sc = np.asarray(scales)

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(frng.standard_normal((d, 3)))
        centres = spacing * q.T
        rot, _ = np.linalg.qr(frng.standard_normal((d, d)))
        axes = np.linspace(1.3, 0.7, d)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            j = rng.choice(3, n, p=w)
            g = rng.standard_normal((n, d)) * sc[j][:, None]
            g = np.where((j == 1)[:, None], (g * axes) @ rot.T, g)
            return centres[j] + g

        return sample

    return make


def _vmf_s2(n: int, rng: np.random.Generator, mean: np.ndarray, kappa: float) -> np.ndarray:
    """Von Mises-Fisher points on :math:`S^2` about ``mean`` (the closed-form inverse of the height's CDF)."""
    u = rng.random(n)
    w = 1 + np.log(u + (1 - u) * math.exp(-2 * kappa)) / kappa
    phi = rng.uniform(0.0, 2 * math.pi, n)
    q, _ = np.linalg.qr(np.concatenate([mean[:, None], np.eye(3)[:, :2]], axis=1))
    e1, e2 = q[:, 1], q[:, 2]
    side = np.sqrt(np.clip(1 - w * w, 0.0, None))
    return w[:, None] * mean + side[:, None] * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2)


def _vmf_mixture(weights: tuple[float, ...], kappas: tuple[float, ...], seed: int) -> Latent:
    w = np.asarray(weights) / sum(weights)
    means = sample_sphere(len(weights), 2, np.random.default_rng(seed))

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        j = rng.choice(len(w), n, p=w)
        each = [_vmf_s2(n, rng, means[k], kappas[k]) for k in range(len(w))]
        return np.choose(j[:, None], each)

    return sample


def vmf_mixture(weights: tuple[float, ...], kappas: tuple[float, ...]) -> Make:
    """A mixture of von Mises-Fisher densities on :math:`S^2` (seeded means, unequal ``weights`` and ``kappas``)."""
    return lambda seed: _vmf_mixture(weights, kappas, seed)


def dirichlet(alpha: tuple[float, ...]) -> Make:
    """Dirichlet(``alpha``) points of the simplex (normalised Gamma draws), dimension ``len(alpha) - 1``."""
    a = np.asarray(alpha)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        g = rng.gamma(a, 1.0, (n, len(a)))
        return g / g.sum(1, keepdims=True)

    return fixed(sample)


def bimodal_von_mises_torus(d: int, kappa: float, shift: float, second: float) -> Make:
    """A flat ``d``-torus (unit circles) whose angles have two unequal von Mises modes ``shift`` apart.

    The density per angle is ``exp(kappa cos(t - mu)) + second exp(kappa cos(t - mu - shift))``, ``mu`` seeded.
    """
    grid = np.linspace(-math.pi, math.pi, 8193)
    quantile = _inverse_cdf(grid, np.exp(kappa * np.cos(grid)) + second * np.exp(kappa * np.cos(grid - shift)))

    def make(seed: int) -> Latent:
        mu = np.random.default_rng(seed).uniform(-math.pi, math.pi, d)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            th = quantile(rng.random((n, d))) + mu
            return np.concatenate([np.cos(th), np.sin(th)], axis=1)

        return sample

    return make


def sorted_beta(d: int, a: float, b: float) -> Make:
    """The order statistics of ``d`` independent Beta(``a``, ``b``) draws (a density on the ordered cone)."""
    return fixed(lambda n, rng: np.sort(rng.beta(a, b, (n, d)), axis=1))


def frank_pairs(pairs: int, theta: float) -> Make:
    """``pairs`` independent pairs from Frank's copula of ``theta`` (conditional inverse), dimension ``2 pairs``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.random((n, pairs))
        w = rng.random((n, pairs))
        e = np.exp(-theta * u)
        v = -np.log1p(w * math.expm1(-theta) / (w + (1 - w) * e)) / theta
        return np.concatenate([u, v], axis=1)

    return fixed(sample)


def log_gamma(d: int, shape: float) -> Make:
    """Independent log-Gamma(``shape``) coordinates (left-skewed: a long exponential tail toward minus infinity)."""
    return fixed(lambda n, rng: np.log(rng.gamma(shape, 1.0, (n, d))))


# --- higher dimension --------------------------------------------------------------------------------------------


def real_stiefel(k: int, p: int) -> Make:
    """The real Stiefel manifold :math:`V_p(R^k)` (orthonormal ``p``-frames), Haar; dimension ``kp - p (p + 1) / 2``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        q, r = np.linalg.qr(rng.standard_normal((n, k, p)))
        q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
        return q.reshape(n, -1)

    return fixed(sample)


def sphere_product(dims: tuple[int, ...], radii: tuple[float, ...]) -> Make:
    """The product of round spheres :math:`S^{d_i}` of ``radii`` (uniform on each)."""
    return product(*[(lambda n, rng, k=k, r=r: r * sample_sphere(n, k, rng)) for k, r in zip(dims, radii, strict=True)])


def quadric_graph(d: int, seed_shift: int = 0) -> Make:
    """The graph ``(x, x^T A x / 2)`` over the cube ``[-1, 1]^d``: a hyperbolic paraboloid.

    ``A`` is a seeded rotation of ``diag(1, -1, 1, ...)`` (signature ``(d / 2, d / 2)``).
    """

    def make(seed: int) -> Latent:
        q, _ = np.linalg.qr(np.random.default_rng(seed + seed_shift).standard_normal((d, d)))
        a = q @ np.diag(np.where(np.arange(d) % 2 == 0, 1.0, -1.0)) @ q.T

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            x = rng.uniform(-1.0, 1.0, (n, d))
            return np.concatenate([x, 0.5 * np.einsum("ni,ij,nj->n", x, a, x)[:, None]], axis=1)

        return sample

    return make


def quaternionic_projective(k: int) -> Make:
    """The quaternionic projective space :math:`HP^{k-1}` (dimension ``4 (k - 1)``) as rank-two complex projectors.

    A unit quaternion vector ``z + w j`` (``z, w`` in :math:`C^k`, Gaussian then normalised) spans the complex plane
    of ``(z, w)`` and ``(-conj w, conj z)`` in :math:`C^{2k}`; its projector (a Hermitian ``2k x 2k`` matrix) is
    written as real coordinates (the diagonal and ``sqrt 2`` times the real and imaginary upper triangle).
    """
    m = 2 * k
    iu = np.triu_indices(m, 1)

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        g = rng.standard_normal((n, 4 * k))
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        z = g[:, :k] + 1j * g[:, k : 2 * k]
        w = g[:, 2 * k : 3 * k] + 1j * g[:, 3 * k :]
        a = np.concatenate([z, w], axis=1)
        b = np.concatenate([-np.conj(w), np.conj(z)], axis=1)
        proj = a[:, :, None] * np.conj(a[:, None, :]) + b[:, :, None] * np.conj(b[:, None, :])
        upper = math.sqrt(2) * proj[:, iu[0], iu[1]]
        return np.concatenate([np.diagonal(proj, axis1=1, axis2=2).real, upper.real, upper.imag], axis=1)

    return fixed(sample)


# --- products ----------------------------------------------------------------------------------------------------


def _regular_polygon(radius: float) -> Latent:
    table = _arc_uniform(pentagon_xy, 0.0, 5.0)
    return lambda n, rng: radius * table(n, rng)


def _kumaraswamy(a: float, b: float, length: float) -> Latent:
    return lambda n, rng: length * (1 - (1 - rng.random((n, 1))) ** (1 / b)) ** (1 / a)


def fifteenth_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the fifteenth split."""
    s = "fifteenth"
    return [
        # --- curves
        ("(2, 7) torus knot + 1 %", "curve", 1, 12, 0.01, s, 1601, arc_curve("torus knot")),
        ("trisectrix of Maclaurin + 5 %", "curve", 1, 10, 0.05, s, 1602, arc_curve("trisectrix")),
        ("Talbot's curve + 1 %", "curve", 1, 10, 0.01, s, 1603, arc_curve("talbot")),
        ("bifolium + 5 %", "curve", 1, 8, 0.05, s, 1604, arc_curve("bifolium")),
        ("regular pentagon", "curve", 1, 8, 0.0, s, 1605, arc_curve("pentagon")),
        ("tanhshrink net d=1 -> R^24 + 5 %", "curve", 1, 24, 0.05, s, 1606, act_net(1, 24, 24, 3, 1.5, "tanhshrink")),
        ("polygonal chain of 24 vertices in R^16 + 1 %", "curve", 1, 16, 0.01, s, 1607, polygonal_chain(16, 24)),
        ("semicubical parabola, t in [-1, 1]", "curve", 1, 8, 0.0, s, 1608, arc_curve("semicubical")),
        # --- surfaces
        ("Steinbach screw", "surface", 2, 10, 0.0, s, 1611, steinbach_screw(1.2)),
        ("tube about the (2, 5) torus knot + 1 %", "surface", 2, 12, 0.01, s, 1612, knot_tube(2, 5, 0.45, 0.12)),
        (
            "catenoid-helicoid associate surface, 45 degrees + 5 %",
            "surface",
            2,
            12,
            0.05,
            s,
            1613,
            associate_surface(math.pi / 4, 1.2),
        ),
        ("cone over a three-lobed curve", "surface", 2, 10, 0.0, s, 1614, lobed_cone(3, 0.35, 0.2)),
        ("torus of elliptic section 0.5 x 0.25 + 1 %", "surface", 2, 12, 0.01, s, 1615, elliptic_torus(0.5, 0.25)),
        ("Cassini oval of revolution, b = 1.1 + 1 %", "surface", 2, 12, 0.01, s, 1616, cassini_revolution(1.1)),
        ("Enneper surface of order 3 + 5 %", "surface", 2, 14, 0.05, s, 1617, enneper(3, 0.8)),
        # --- network images
        ("log-sigmoid net d=3 -> R^36", "network", 3, 36, 0.0, s, 1621, act_net(3, 36, 36, 3, 1.5, "log-sigmoid")),
        ("hard-swish net d=5 -> R^50 + 1 %", "network", 5, 50, 0.01, s, 1622, act_net(5, 50, 48, 3, 1.5, "hard-swish")),
        ("sech net d=7 -> R^64 + 5 %", "network", 7, 64, 0.05, s, 1623, act_net(7, 64, 64, 2, 1.0, "sech")),
        ("cubic polynomial map d=6 -> R^40 + 1 %", "network", 6, 40, 0.01, s, 1624, cubic_map(6, 40, (1.0, 0.5, 0.3))),
        (
            "residual softsign net d=10 -> R^96",
            "network",
            10,
            96,
            0.0,
            s,
            1625,
            residual_net(10, 96, 96, 2, 0.8, _ACTS["softsign"]),
        ),
        # --- non-uniform densities
        (
            "separated Gaussian mixture d=6, weights 0.6 / 0.3 / 0.1 + 5 %",
            "density",
            6,
            24,
            0.05,
            s,
            1631,
            unequal_mixture(6, (0.6, 0.3, 0.1), (1.0, 0.8, 0.6), 7.0),
        ),
        (
            "von Mises-Fisher mixture on S^2, weights 0.5 / 0.3 / 0.2 + 1 %",
            "density",
            2,
            10,
            0.01,
            s,
            1632,
            vmf_mixture((0.5, 0.3, 0.2), (6.0, 2.0, 15.0)),
        ),
        (
            "Dirichlet(0.7, 1, 1.5, 2, 3, 4) simplex d=5",
            "density",
            5,
            20,
            0.0,
            s,
            1633,
            dirichlet((0.7, 1, 1.5, 2, 3, 4)),
        ),
        (
            "bimodal von Mises 4-torus, kappa 3 + 5 %",
            "density",
            4,
            20,
            0.05,
            s,
            1634,
            bimodal_von_mises_torus(4, 3.0, 2.2, 0.6),
        ),
        ("sorted Beta(2, 3) samples d=3", "density", 3, 12, 0.0, s, 1635, sorted_beta(3, 2.0, 3.0)),
        ("Frank copula pairs d=4, theta 5 + 1 %", "density", 4, 16, 0.01, s, 1636, frank_pairs(2, 5.0)),
        ("log-Gamma(1.5) coordinates d=6 + 5 %", "density", 6, 24, 0.05, s, 1637, log_gamma(6, 1.5)),
        # --- higher dimension
        ("real Stiefel V_4(R^6) + 1 %", "high_d", 14, 48, 0.01, s, 1641, real_stiefel(6, 4)),
        (
            "S^5 x S^4 x S^3 of radii 1, 0.8, 0.6",
            "high_d",
            12,
            48,
            0.0,
            s,
            1642,
            sphere_product((5, 4, 3), (1.0, 0.8, 0.6)),
        ),
        ("hyperbolic-paraboloid quadric graph d=16 + 5 %", "high_d", 16, 52, 0.05, s, 1643, quadric_graph(16)),
        ("quaternionic projective space HP^4 + 1 %", "high_d", 16, 100, 0.01, s, 1644, quaternionic_projective(5)),
        ("sphere S^23", "high_d", 23, 72, 0.0, s, 1645, fixed(lambda n, rng: sample_sphere(n, 23, rng))),
        ("ball B^26 + 5 %", "high_d", 26, 80, 0.05, s, 1646, fixed(lambda n, rng: sample_ball(n, 26, rng))),
        ("torus T^20 + 1 %", "high_d", 20, 64, 0.01, s, 1647, fixed(lambda n, rng: sample_torus(n, 20, rng))),
        ("cube [0,1]^21 + 5 %", "high_d", 21, 64, 0.05, s, 1648, fixed(lambda n, rng: sample_cube(n, 21, rng))),
        ("Gaussian d=15", "high_d", 15, 48, 0.0, s, 1649, fixed(lambda n, rng: rng.standard_normal((n, 15)))),
        # --- products
        (
            "Talbot's curve x 3 Kumaraswamy(2, 5) interval + 1 %",
            "product",
            2,
            12,
            0.01,
            s,
            1651,
            product(_arc_uniform(talbot_xy, 0.0, 2 * math.pi), _kumaraswamy(2.0, 5.0, 3.0)),
        ),
        (
            "semicubical parabola x circle of radius 0.5 + 5 %",
            "product",
            2,
            10,
            0.05,
            s,
            1652,
            product(_arc_uniform(semicubical_xy, -1.0, 1.0), lambda n, rng: 0.5 * sample_sphere(n, 1, rng)),
        ),
        (
            "pentagon x pentagon of circumradius 0.6",
            "product",
            2,
            10,
            0.0,
            s,
            1653,
            product(_regular_polygon(1.0), _regular_polygon(0.6)),
        ),
        (
            "Dirichlet(1, 2, 4) triangle x von Mises circle, kappa 2 + 1 %",
            "product",
            3,
            12,
            0.01,
            s,
            1654,
            product(dirichlet((1.0, 2.0, 4.0))(0), _von_mises_circle(2.0, 0.4)),
        ),
        (
            "Steinbach screw x 2 Beta(0.7, 0.7) interval + 5 %",
            "product",
            3,
            12,
            0.05,
            s,
            1655,
            product(_steinbach(1.2), lambda n, rng: 2 * rng.beta(0.7, 0.7, (n, 1))),
        ),
        (
            "bifolium x disc of radius 0.35",
            "product",
            3,
            10,
            0.0,
            s,
            1656,
            product(_arc_uniform(bifolium_xy, 0.0, math.pi), lambda n, rng: 0.35 * sample_ball(n, 2, rng)),
        ),
        (
            "von Mises-Fisher mixture S^2 x S^2 of radius 0.7 + 1 %",
            "product",
            4,
            16,
            0.01,
            s,
            1657,
            product(
                _vmf_mixture((0.5, 0.3, 0.2), (6.0, 2.0, 15.0), 1657),
                lambda n, rng: 0.7 * _vmf_mixture((0.7, 0.3), (4.0, 10.0), 1658)(n, rng),
            ),
        ),
    ]


__all__ = ["fifteenth_specs"]
