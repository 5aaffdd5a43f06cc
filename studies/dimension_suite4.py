r"""The fourth split of the trusted-``dim`` suite (issue #14): 27 clouds written before the fourth round of tuning.

The three earlier splits (:mod:`studies.dimension_suite`'s tune / held-out / fresh halves and
:mod:`studies.dimension_suite3`'s third split, 102 clouds) were all opened while the rule was tuned, so they are
tuning data. This split (``split="fourth"``, seeds 5xx) was written and committed *before* the fourth round of
tuning and is measured once, by ``python -m studies.dimension_heldout --splits fourth``, after the rule is frozen.
Its shapes, densities and embeddings are new, not reparameterisations of the earlier ones:

* curves: Viviani's curve, a toroidal spiral (a curve winding around a torus), a Cornu (Euler) spiral segment, the
  images of an interval under random ELU and swish networks;
* surfaces: a helicoid, a star-shaped bumpy sphere, the Veronese surface (:math:`RP^2` in :math:`R^6`), a monkey
  saddle, the image of a square under a random cosine (random-feature) map;
* densities: a Dirichlet simplex, Laplace coordinates, an exponential (one-sided) cube, a Gaussian whose axes'
  scales fall geometrically;
* embeddings: random ELU, swish (SiLU) and cosine random-feature maps, a quadratic (polynomial-feature) map;
* groups and homogeneous spaces: Haar-random rotations :math:`SO(3)` and :math:`SO(5)` as flattened matrices, the
  Grassmannian :math:`G(2, 4)` as projection matrices, the Stiefel manifold :math:`V_2(R^5)`;
* high dimension, clean: :math:`SO(5)` (d = 10), the boundary of the 13-cube (d = 12), a swish network (d = 12), a
  uniform 16-simplex, a product of five 3-spheres (d = 15), Laplace coordinates (d = 14), a stretched 17-sphere
  (ellipsoid), an anisotropic Gaussian (d = 20).

Noise (isotropic, a fraction of the clean cloud's RMS radius, as in :class:`studies.dimension_suite.SuiteCloud`):
0 on 16 clouds, 1 % on 7, 5 % on 4; the noisy ones are low-dimensional, most under nonlinear embeddings. Truth =
the manifold's dimension. Nothing here comes from a published benchmark generator.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from lightning_repgap.manifolds import sample_sphere
from studies.dimension_suite3 import Latent, Make, fixed, product, sphere


def viviani(a: float) -> Make:
    """Viviani's curve (a sphere of radius ``2 a`` cut by a cylinder), uniform in its parameter."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(-2 * math.pi, 2 * math.pi, n)
        return np.stack([a * (1 + np.cos(t)), a * np.sin(t), 2 * a * np.sin(t / 2)], axis=1)

    return fixed(sample)


def toroidal_spiral(windings: int, big: float, small: float) -> Make:
    """A curve winding ``windings`` times around the tube of a torus (radii ``big``, ``small``) in one turn."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        t = 2 * math.pi * rng.random(n)
        r = big + small * np.cos(windings * t)
        return np.stack([r * np.cos(t), r * np.sin(t), small * np.sin(windings * t)], axis=1)

    return fixed(sample)


def cornu_spiral(length: float) -> Make:
    """A segment ``[-length, length]`` of the Euler (Cornu) spiral: curvature grows linearly along it."""
    grid = np.linspace(-length, length, 20001)
    step = grid[1] - grid[0]
    cx = np.concatenate([[0.0], np.cumsum(np.cos(grid[:-1] ** 2) * step)])
    cy = np.concatenate([[0.0], np.cumsum(np.sin(grid[:-1] ** 2) * step)])

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        s = rng.uniform(-length, length, n)
        return np.stack([np.interp(s, grid, cx), np.interp(s, grid, cy)], axis=1)

    return fixed(sample)


def helicoid(turns: float, width: float) -> Make:
    """A helicoid of ``turns`` turns and half-width ``width``, uniform in its parameters."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = width * rng.uniform(-1, 1, n)
        v = 2 * math.pi * turns * rng.random(n)
        return np.stack([u * np.cos(v), u * np.sin(v), 0.5 * v], axis=1)

    return fixed(sample)


def bumpy_sphere(amplitude: float, order: int) -> Make:
    """The sphere with radius ``1 + amplitude * (random degree-``order`` trigonometric bump)`` (seeded)."""

    def make(seed: int) -> Latent:
        w = np.random.default_rng(seed).standard_normal((order, 3)) * order
        ph = np.random.default_rng(seed + 1).uniform(0, 2 * math.pi, order)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            u = sample_sphere(n, 2, rng)
            r = 1 + amplitude * np.sin(u @ w.T + ph).mean(axis=1)
            return u * r[:, None]

        return sample

    return make


def veronese() -> Make:
    """The Veronese surface: ``u -> (u_i u_j)_{i <= j}`` for ``u`` uniform on the 2-sphere (:math:`RP^2` in R^6)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = sample_sphere(n, 2, rng)
        cols = [u[:, i] * u[:, j] * (1.0 if i == j else math.sqrt(2)) for i in range(3) for j in range(i, 3)]
        return np.stack(cols, axis=1)

    return fixed(sample)


def monkey_saddle(c: float) -> Make:
    """The monkey saddle ``z = c (x^3 - 3 x y^2)`` over the unit square ``[-1, 1]^2``."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        xy = rng.uniform(-1, 1, (n, 2))
        z = c * (xy[:, 0] ** 3 - 3 * xy[:, 0] * xy[:, 1] ** 2)
        return np.concatenate([xy, z[:, None]], axis=1)

    return fixed(sample)


def random_features(d: int, ambient: int, bandwidth: float) -> Make:
    """A random cosine feature map ``sqrt(2/D) cos(W u + b)`` of a latent cube (smooth, curved at ``bandwidth``)."""

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        w = frng.standard_normal((d, ambient)) * bandwidth
        b = frng.uniform(0, 2 * math.pi, ambient)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            return math.sqrt(2.0 / ambient) * np.cos(rng.uniform(-1, 1, (n, d)) @ w + b)

        return sample

    return make


def quadratic_map(d: int) -> Make:
    """``u -> (u, (u_i u_j)_{i <= j})`` of a latent Gaussian: the polynomial-feature embedding of degree 2."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        u = rng.standard_normal((n, d))
        quad = [u[:, i] * u[:, j] for i in range(d) for j in range(i, d)]
        return np.concatenate([u, 0.5 * np.stack(quad, axis=1)], axis=1)

    return fixed(sample)


def dirichlet_simplex(d: int, alpha: float) -> Make:
    """Dirichlet(``alpha``) on the ``d``-simplex (``d + 1`` coordinates); ``alpha = 1`` is uniform."""
    return fixed(lambda n, rng: rng.dirichlet(np.full(d + 1, alpha), n))


def laplace(d: int) -> Make:
    """Independent Laplace coordinates (a sharp peak and exponential tails)."""
    return fixed(lambda n, rng: rng.laplace(0.0, 1.0, (n, d)))


def exponential_cube(d: int) -> Make:
    """Independent Exponential(1) coordinates: one-sided, piled up at a corner."""
    return fixed(lambda n, rng: rng.exponential(1.0, (n, d)))


def anisotropic_gaussian(d: int, ratio: float) -> Make:
    """A Gaussian whose axes' standard deviations fall geometrically from 1 to ``1 / ratio``."""
    scales = np.geomspace(1.0, 1.0 / ratio, d)
    return fixed(lambda n, rng: rng.standard_normal((n, d)) * scales)


def ellipsoid(d: int, ratio: float) -> Make:
    """The unit ``d``-sphere stretched along its axes by factors falling geometrically from 1 to ``1 / ratio``."""
    scales = np.geomspace(1.0, 1.0 / ratio, d + 1)
    return fixed(lambda n, rng: sample_sphere(n, d, rng) * scales)


def cube_boundary(k: int) -> Make:
    """Uniform on the boundary of ``[0, 1]^k`` (a ``(k - 1)``-manifold, flat with corners)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        x = rng.random((n, k))
        face = rng.integers(0, k, n)
        x[np.arange(n), face] = rng.integers(0, 2, n).astype(np.float64)
        return x

    return fixed(sample)


def _haar_orthogonal(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` Haar-random ``k x k`` orthogonal matrices (QR of Gaussians with the sign fix)."""
    q, r = np.linalg.qr(rng.standard_normal((n, k, k)))
    return q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]


def rotations(k: int) -> Make:
    """Haar-random rotations :math:`SO(k)` as flattened ``k x k`` matrices (dimension ``k (k - 1) / 2``)."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        q = _haar_orthogonal(n, k, rng)
        det = np.linalg.det(q)
        q[:, :, 0] *= det[:, None]  # flip one column of the reflections: SO(k)
        return q.reshape(n, k * k)

    return fixed(sample)


def grassmannian(k: int, p: int) -> Make:
    """The Grassmannian :math:`G(p, k)` as ``k x k`` projection matrices (dimension ``p (k - p)``), Haar-uniform."""

    def sample(n: int, rng: np.random.Generator) -> np.ndarray:
        frame = _haar_orthogonal(n, k, rng)[:, :, :p]
        return np.einsum("nip,njp->nij", frame, frame).reshape(n, k * k)

    return fixed(sample)


def stiefel(k: int, p: int) -> Make:
    """The Stiefel manifold :math:`V_p(R^k)` of orthonormal ``p``-frames (dimension ``k p - p (p + 1) / 2``)."""
    return fixed(lambda n, rng: _haar_orthogonal(n, k, rng)[:, :, :p].reshape(n, k * p))


def random_network(
    d: int, ambient: int, width: int, depth: int, gain: float, bias: float, f: Callable[[np.ndarray], np.ndarray]
) -> Make:
    """A random ``depth``-layer network with activation ``f`` (not after the last layer) of a latent cube ``[-1, 1]^d``.

    Weights N(0, gain^2 / fan-in) and biases N(0, bias^2), drawn from the cloud's seed.
    """

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        dims = [d] + [width] * (depth - 1) + [ambient]
        ws = [frng.standard_normal((i, o)) * gain / math.sqrt(i) for i, o in itertools.pairwise(dims)]
        bs = [frng.standard_normal(o) * bias for o in dims[1:]]

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            h = rng.uniform(-1, 1, (n, d))
            for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
                h = h @ w + b
                if i < len(ws) - 1:
                    h = f(h)
            return h

        return sample

    return make


def act_net(d: int, ambient: int, width: int, depth: int, gain: float, act: str) -> Make:
    """A random ``depth``-layer network with ELU or swish (SiLU) activations of a latent cube ``[-1, 1]^d``."""

    def f(h: np.ndarray) -> np.ndarray:
        if act == "elu":
            return np.where(h > 0, h, np.expm1(np.minimum(h, 0.0)))
        return h / (1.0 + np.exp(-h))  # swish / SiLU

    return random_network(d, ambient, width, depth, gain, 0.4, f)


def fourth_specs() -> list[tuple[str, str, int, int, float, str, int, Make]]:
    """(name, family, dim, ambient, noise, split, seed, make) of the fourth split."""
    s = "fourth"
    return [
        ("Viviani curve + 1 %", "curve", 1, 12, 0.01, s, 501, viviani(1.0)),
        ("toroidal spiral 9 windings", "curve", 1, 16, 0.0, s, 502, toroidal_spiral(9, 2.0, 0.7)),
        ("Cornu spiral [-3, 3] + 1 %", "curve", 1, 10, 0.01, s, 503, cornu_spiral(3.0)),
        ("ELU net d=1 -> R^24 + 5 %", "curve", 1, 24, 0.05, s, 504, act_net(1, 24, 24, 3, 2.0, "elu")),
        ("swish net d=1 -> R^40 + 1 %", "curve", 1, 40, 0.01, s, 505, act_net(1, 40, 32, 4, 2.5, "swish")),
        ("helicoid 2 turns", "surface", 2, 16, 0.0, s, 511, helicoid(2.0, 1.5)),
        ("bumpy sphere + 5 %", "surface", 2, 20, 0.05, s, 512, bumpy_sphere(0.3, 6)),
        ("Veronese surface", "surface", 2, 12, 0.0, s, 513, veronese()),
        ("monkey saddle c=1.5", "surface", 2, 10, 0.0, s, 514, monkey_saddle(1.5)),
        ("cosine features d=2 -> R^64 + 5 %", "network", 2, 64, 0.05, s, 515, random_features(2, 64, 3.0)),
        ("Dirichlet(0.6) simplex d=4", "density", 4, 20, 0.0, s, 521, dirichlet_simplex(4, 0.6)),
        ("exponential cube d=3 + 1 %", "density", 3, 16, 0.01, s, 522, exponential_cube(3)),
        ("Laplace d=6", "density", 6, 24, 0.0, s, 523, laplace(6)),
        ("ELU net d=3 -> R^48 + 5 %", "network", 3, 48, 0.05, s, 531, act_net(3, 48, 48, 3, 1.8, "elu")),
        ("quadratic map d=4", "network", 4, 24, 0.0, s, 532, quadratic_map(4)),
        ("swish net d=5 -> R^64 + 1 %", "network", 5, 64, 0.01, s, 533, act_net(5, 64, 64, 3, 2.0, "swish")),
        ("rotations SO(3)", "product", 3, 12, 0.0, s, 541, rotations(3)),
        ("Grassmannian G(2, 4) + 1 %", "product", 4, 24, 0.01, s, 542, grassmannian(4, 2)),
        ("Stiefel V_2(R^5)", "product", 7, 16, 0.0, s, 543, stiefel(5, 2)),
        ("rotations SO(5)", "high_d", 10, 32, 0.0, s, 551, rotations(5)),
        ("boundary of the 13-cube", "high_d", 12, 40, 0.0, s, 552, cube_boundary(13)),
        ("swish net d=12 -> R^96", "high_d", 12, 96, 0.0, s, 553, act_net(12, 96, 64, 3, 1.5, "swish")),
        ("Laplace d=14", "high_d", 14, 48, 0.0, s, 554, laplace(14)),
        (
            "S^3 x S^3 x S^3 x S^3 x S^3",
            "high_d",
            15,
            48,
            0.0,
            s,
            555,
            product(sphere(3), sphere(3, 0.8), sphere(3, 0.6), sphere(3, 0.5), sphere(3, 0.4)),
        ),
        ("uniform simplex d=16", "high_d", 16, 48, 0.0, s, 556, dirichlet_simplex(16, 1.0)),
        ("ellipsoid S^17, axes 1 to 1/3", "high_d", 17, 64, 0.0, s, 557, ellipsoid(17, 3.0)),
        ("anisotropic Gaussian d=20 + 1 %", "high_d", 20, 80, 0.01, s, 558, anisotropic_gaussian(20, 4.0)),
    ]


__all__ = ["fourth_specs"]
