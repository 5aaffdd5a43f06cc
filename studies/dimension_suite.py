r"""The seeded suite of point clouds behind the trusted ``dim`` (issue #14): generators, truth and the split.

Every cloud is drawn by this module's own code from a seed; nothing comes from a published benchmark generator.
The families are the ones where a single estimator goes wrong:

* strongly curved curves (random high-frequency Fourier curves, helices) and surfaces (rolled sheets, paraboloid
  caps, bumpy graphs);
* non-uniform densities: beta-distributed cubes, von Mises tori, Gaussian mixtures on a subspace, Gaussians;
* nonlinear embeddings: random tanh / ReLU-like networks applied to a latent cube or Gaussian;
* products of spheres, circles and intervals;
* high dimension (cubes, spheres, tori, balls of dimension 16 to 40), where local estimators read low;
* ambient noise of 0, 1 % or 5 % of the manifold's scale on top of any of these.

The truth is always the manifold's dimension (noise does not change it). Noise is isotropic Gaussian in the
ambient space, with ``E||noise||^2 = (p s)^2`` where ``s^2 = trace Cov`` of the clean cloud (so 5 % noise has
5 % of the cloud's RMS radius in total, spread over all ambient directions).

**Split.** Each family contributes specs to both halves, with different parameters (dimension, curvature,
concentration, ambient width) and different seeds: :func:`suite` returns them with ``split`` set to ``"tune"``
or ``"held_out"``. The rule behind the trusted ``dim`` is tuned on ``"tune"`` only; the ``"held_out"`` half is
opened once, by ``studies/dimension_heldout.py``, after the rule is frozen and committed. Every cloud is measured
at n = 2,500 and n = 20,000 points (``SIZES``).

**The fresh split.** Both halves above were opened while the rule was tuned (the held-out half by the first
version of the rule), so they are tuning data now. The ``"fresh"`` split (24 clouds, seeds 3xx, new shape
parameters and embeddings within the same families, four of them with 5 % noise) was committed before any further
tuning and is measured once, by ``python -m studies.dimension_heldout --splits fresh``, after the rule is final.
It was opened in turn; the ``"third"`` split (:mod:`studies.dimension_suite3`, 28 new clouds) took its place, and
after it was opened too, the ``"fourth"`` split (:mod:`studies.dimension_suite4`, 27 new clouds), and after that
one, the ``"fifth"`` split (:mod:`studies.dimension_suite5`, 29 new clouds), and after that one, the ``"sixth"``
split (:mod:`studies.dimension_suite6`, 33 new clouds), and after that one, the ``"seventh"`` split
(:mod:`studies.dimension_suite7`, 42 new clouds), and after that one, the ``"eighth"`` split
(:mod:`studies.dimension_suite8`, 42 new clouds), and after that one, the ``"ninth"`` split
(:mod:`studies.dimension_suite9`, 43 new clouds), and after that one, the ``"tenth"`` split
(:mod:`studies.dimension_suite10`, 43 new clouds), and after that one, the ``"eleventh"`` split
(:mod:`studies.dimension_suite11`, 43 new clouds), and after that one, the ``"twelfth"`` split
(:mod:`studies.dimension_suite12`, 43 new clouds), and after that one, the ``"thirteenth"`` split
(:mod:`studies.dimension_suite13`, 43 new clouds), and after that one, the ``"fourteenth"`` split
(:mod:`studies.dimension_suite14`, 43 new clouds), and after that one, the ``"fifteenth"`` split
(:mod:`studies.dimension_suite15`, 43 new clouds), and after that one, the ``"sixteenth"`` split
(:mod:`studies.dimension_suite16`, 43 new clouds).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lightning_repgap.manifolds import embed, sample_ball, sample_cube, sample_sphere, sample_torus

#: Cloud sizes the suite is measured at.
SIZES = (2500, 20000)
#: Noise levels, as a fraction of the clean cloud's RMS radius.
NOISE_LEVELS = (0.0, 0.01, 0.05)
#: The splits, in the order they were written (each opened once, then tuned on).
SPLITS = (
    "tune",
    "held_out",
    "fresh",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
)

Latent = Callable[[int, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class SuiteCloud:
    """One cloud of the suite.

    Attributes:
        name: unique, human-readable.
        family: ``"curve"``, ``"surface"``, ``"density"``, ``"network"``, ``"product"``, ``"high_d"``.
        dim: the manifold's dimension (the truth).
        ambient: the ambient dimension ``D``.
        noise: noise level as a fraction of the RMS radius.
        split: ``"tune"``, ``"held_out"``, ``"fresh"``, ``"third"``, ``"fourth"``, ``"fifth"``, ``"sixth"``,
            ``"seventh"``, ``"eighth"``, ``"ninth"``, ``"tenth"``, ``"eleventh"``, ``"twelfth"``,
            ``"thirteenth"``, ``"fourteenth"``, ``"fifteenth"`` or ``"sixteenth"``.
        seed: seed of the cloud's fixed parameters (curve coefficients, network weights, rotation); each sample
            also takes the caller's generator.
    """

    name: str
    family: str
    dim: int
    ambient: int
    noise: float
    split: str
    seed: int
    make: Callable[[int], Latent]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points of the cloud (float64, ``(n, ambient)``): latent manifold, embedding, rotation, noise."""
        x = self.make(self.seed)(n, rng)
        if x.shape[1] < self.ambient:
            x = embed(x, self.ambient, np.random.default_rng(self.seed + 7919))
        elif x.shape[1] > self.ambient:
            raise AssertionError(f"{self.name}: {x.shape[1]} coordinates for ambient {self.ambient}")
        if self.noise > 0:
            radius = math.sqrt(float(np.var(x, axis=0).sum()))
            x = x + rng.standard_normal(x.shape) * (self.noise * radius / math.sqrt(self.ambient))
        return x


# ---------------------------------------------------------------------------------------------------------------
# latent generators: each takes the spec's seed and returns a sampler (n, rng) -> (n, k)
# ---------------------------------------------------------------------------------------------------------------


def fourier_curve(ambient: int, modes: int, decay: float) -> Callable[[int], Latent]:
    """Closed curve ``sum_k a_k cos(k t) + b_k sin(k t)`` with ``modes`` harmonics of amplitude ``k^-decay``.

    High ``modes`` and low ``decay`` make a strongly curved curve (many turns at the scale of the cloud).
    """

    def make(seed: int) -> Latent:
        k = np.arange(1, modes + 1)
        coef = np.random.default_rng(seed).standard_normal((2, modes, ambient)) * (k ** (-decay))[None, :, None]

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            t = 2 * math.pi * rng.random(n)
            return np.cos(np.outer(t, k)) @ coef[0] + np.sin(np.outer(t, k)) @ coef[1]

        return sample

    return make


def helix(turns: float, pitch: float) -> Callable[[int], Latent]:
    """A helix of ``turns`` turns (radius 1, rise ``pitch`` per turn); uniform in the parameter, i.e. arc length."""

    def make(seed: int) -> Latent:
        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            t = 2 * math.pi * turns * rng.random(n)
            return np.stack([np.cos(t), np.sin(t), pitch * t / (2 * math.pi)], axis=1)

        return sample

    return make


def rolled_sheet(turns: float, width: float) -> Callable[[int], Latent]:
    """A sheet rolled ``turns`` times (Archimedean spiral times an interval), uniform in *area*."""

    def make(seed: int) -> Latent:
        t0, t1 = 2 * math.pi, 2 * math.pi * (1 + turns)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            # Arc length of the spiral r = t grows like t^2 / 2: invert it so the area density is uniform.
            u = rng.random(n)
            t = np.sqrt(t0**2 + u * (t1**2 - t0**2))
            h = width * rng.random(n)
            return np.stack([t * np.cos(t), h, t * np.sin(t)], axis=1)

        return sample

    return make


def paraboloid(d: int, curvature: float, uniform_area: bool = False) -> Callable[[int], Latent]:
    """The graph ``z = curvature * |u|^2`` over the unit ``d``-ball.

    ``u`` is uniform in the ball (so the density per area falls towards the rim), or rejection-sampled to be
    uniform in area with ``uniform_area``.
    """

    def make(seed: int) -> Latent:
        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            if not uniform_area:
                u = sample_ball(n, d, rng)
            else:
                chunks, have = [], 0
                bound = math.sqrt(1 + 4 * curvature**2)
                while have < n:
                    u = sample_ball(2 * n, d, rng)
                    jac = np.sqrt(1 + 4 * curvature**2 * (u * u).sum(1))
                    keep = u[rng.random(2 * n) * bound < jac]
                    chunks.append(keep)
                    have += keep.shape[0]
                u = np.concatenate(chunks)[:n]
            return np.concatenate([u, curvature * (u * u).sum(1, keepdims=True)], axis=1)

        return sample

    return make


def bumpy_graph(d: int, amplitude: float, frequency: float, extra: int) -> Callable[[int], Latent]:
    """The graph of ``extra`` random smooth functions (sums of sines) over the cube ``[0, 1]^d``."""

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        w = frng.standard_normal((d, extra, 3)) * frequency
        b = frng.random((extra, 3)) * 2 * math.pi

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            u = rng.random((n, d))
            z = np.sin(np.einsum("nd,dej->nej", u, w) + b).sum(-1) * amplitude / math.sqrt(3)
            return np.concatenate([u, z], axis=1)

        return sample

    return make


def beta_cube(d: int, a: float, b: float) -> Callable[[int], Latent]:
    """Independent Beta(a, b) coordinates: a strongly non-uniform density on the cube (edges or a corner)."""

    def make(seed: int) -> Latent:
        return lambda n, rng: rng.beta(a, b, (n, d))

    return make


def von_mises_torus(d: int, kappa: float) -> Callable[[int], Latent]:
    """A flat ``d``-torus (unit circles) whose angles are von Mises(``mu_i``, ``kappa``) instead of uniform."""

    def make(seed: int) -> Latent:
        mu = np.random.default_rng(seed).uniform(-math.pi, math.pi, d)

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            th = rng.vonmises(mu, kappa, (n, d))
            return np.concatenate([np.cos(th), np.sin(th)], axis=1)

        return sample

    return make


def gaussian_mixture(d: int, components: int, spread: float) -> Callable[[int], Latent]:
    """A mixture of ``components`` Gaussians in ``R^d`` with random centres (``spread`` apart) and scales."""

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        centres = frng.standard_normal((components, d)) * spread
        scales = np.exp(frng.uniform(-0.7, 0.7, components))
        weights = frng.dirichlet(np.full(components, 2.0))

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            c = rng.choice(components, size=n, p=weights)
            return centres[c] + scales[c, None] * rng.standard_normal((n, d))

        return sample

    return make


def gaussian(d: int) -> Callable[[int], Latent]:
    """The standard Gaussian in ``R^d``."""

    def make(seed: int) -> Latent:
        return lambda n, rng: rng.standard_normal((n, d))

    return make


def network(d: int, ambient: int, width: int, depth: int, gain: float, latent: str) -> Callable[[int], Latent]:
    """A random ``depth``-layer tanh network (He-like init times ``gain``) applied to a latent cube or Gaussian.

    Smooth and injective with high probability when ``width >= 2 d``: the image is a curved ``d``-manifold.
    """

    def make(seed: int) -> Latent:
        frng = np.random.default_rng(seed)
        dims = [d] + [width] * (depth - 1) + [ambient]
        ws = [frng.standard_normal((i, o)) * gain / math.sqrt(i) for i, o in itertools.pairwise(dims)]
        bs = [frng.standard_normal(o) * 0.3 for o in dims[1:]]

        def sample(n: int, rng: np.random.Generator) -> np.ndarray:
            h = rng.random((n, d)) * 2 - 1 if latent == "cube" else rng.standard_normal((n, d))
            for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
                h = h @ w + b
                if i < len(ws) - 1:
                    h = np.tanh(h)
            return h

        return sample

    return make


def product(*factors: Callable[[int], Latent]) -> Callable[[int], Latent]:
    """Independent samples of each factor, concatenated (seeds offset per factor)."""

    def make(seed: int) -> Latent:
        samplers = [f(seed + 101 * i) for i, f in enumerate(factors)]
        return lambda n, rng: np.concatenate([s(n, rng) for s in samplers], axis=1)

    return make


def sphere(d: int, radius: float = 1.0) -> Callable[[int], Latent]:
    """Uniform on the ``d``-sphere of ``radius``."""

    def make(seed: int) -> Latent:
        return lambda n, rng: radius * sample_sphere(n, d, rng)

    return make


def torus(d: int) -> Callable[[int], Latent]:
    """Uniform on the flat ``d``-torus (circles of length 1)."""

    def make(seed: int) -> Latent:
        return lambda n, rng: sample_torus(n, d, rng)

    return make


def cube(d: int) -> Callable[[int], Latent]:
    """Uniform in ``[0, 1]^d``."""

    def make(seed: int) -> Latent:
        return lambda n, rng: sample_cube(n, d, rng)

    return make


def ball(d: int) -> Callable[[int], Latent]:
    """Uniform in the unit ``d``-ball."""

    def make(seed: int) -> Latent:
        return lambda n, rng: sample_ball(n, d, rng)

    return make


# ---------------------------------------------------------------------------------------------------------------
# the suite
# ---------------------------------------------------------------------------------------------------------------


def _specs() -> list[tuple[str, str, int, int, float, str, int, Callable[[int], Latent]]]:
    """(name, family, dim, ambient, noise, split, seed, make) for every cloud."""
    t, h, f = "tune", "held_out", "fresh"
    return [
        # --- strongly curved curves
        ("Fourier curve 12 modes", "curve", 1, 32, 0.0, t, 101, fourier_curve(32, 12, 0.5)),
        ("Fourier curve 8 modes + 1 %", "curve", 1, 64, 0.01, t, 102, fourier_curve(64, 8, 0.7)),
        ("helix 10 turns", "curve", 1, 16, 0.0, t, 103, helix(10, 0.3)),
        ("Fourier curve 16 modes", "curve", 1, 48, 0.0, h, 201, fourier_curve(48, 16, 0.4)),
        ("Fourier curve 10 modes + 1 %", "curve", 1, 32, 0.01, h, 202, fourier_curve(32, 10, 0.6)),
        ("helix 14 turns", "curve", 1, 8, 0.0, h, 203, helix(14, 0.2)),
        # --- strongly curved surfaces
        ("rolled sheet 3 turns", "surface", 2, 16, 0.0, t, 111, rolled_sheet(3, 15.0)),
        ("paraboloid cap d=2, c=3", "surface", 2, 24, 0.0, t, 112, paraboloid(2, 3.0)),
        ("bumpy graph d=2", "surface", 2, 32, 0.0, t, 113, bumpy_graph(2, 0.6, 6.0, 6)),
        ("paraboloid d=3, c=2", "surface", 3, 16, 0.0, t, 114, paraboloid(3, 2.0)),
        ("rolled sheet 4 turns + 1 %", "surface", 2, 32, 0.01, h, 211, rolled_sheet(4, 10.0)),
        ("paraboloid cap d=2, c=4", "surface", 2, 12, 0.0, h, 212, paraboloid(2, 4.0)),
        ("bumpy graph d=3", "surface", 3, 48, 0.0, h, 213, bumpy_graph(3, 0.5, 5.0, 8)),
        ("paraboloid d=4, c=1.5, area-uniform", "surface", 4, 16, 0.0, h, 214, paraboloid(4, 1.5, True)),
        # --- non-uniform densities
        ("beta(0.5, 0.5) cube d=3", "density", 3, 16, 0.0, t, 121, beta_cube(3, 0.5, 0.5)),
        ("beta(2, 5) cube d=6", "density", 6, 32, 0.0, t, 122, beta_cube(6, 2.0, 5.0)),
        ("von Mises torus d=3, k=2", "density", 3, 16, 0.0, t, 123, von_mises_torus(3, 2.0)),
        ("von Mises torus d=5, k=1", "density", 5, 32, 0.01, t, 124, von_mises_torus(5, 1.0)),
        ("Gaussian mixture d=4, 5 comp.", "density", 4, 32, 0.0, t, 125, gaussian_mixture(4, 5, 3.0)),
        ("Gaussian d=8", "density", 8, 64, 0.0, t, 126, gaussian(8)),
        ("beta(0.5, 2) cube d=4", "density", 4, 16, 0.0, h, 221, beta_cube(4, 0.5, 2.0)),
        ("beta(3, 3) cube d=8 + 1 %", "density", 8, 32, 0.01, h, 222, beta_cube(8, 3.0, 3.0)),
        ("von Mises torus d=3, k=4", "density", 3, 12, 0.0, h, 223, von_mises_torus(3, 4.0)),
        ("von Mises torus d=6, k=1.5", "density", 6, 48, 0.0, h, 224, von_mises_torus(6, 1.5)),
        ("Gaussian mixture d=6, 4 comp.", "density", 6, 48, 0.0, h, 225, gaussian_mixture(6, 4, 2.5)),
        ("Gaussian d=5 + 5 %", "density", 5, 64, 0.05, h, 226, gaussian(5)),
        # --- nonlinear embeddings by random networks
        ("tanh net d=2 -> R^32", "network", 2, 32, 0.0, t, 131, network(2, 32, 32, 3, 2.0, "cube")),
        ("tanh net d=5 -> R^64", "network", 5, 64, 0.0, t, 132, network(5, 64, 64, 3, 1.5, "gauss")),
        ("tanh net d=10 -> R^128 + 1 %", "network", 10, 128, 0.01, t, 133, network(10, 128, 64, 2, 1.5, "cube")),
        ("tanh net d=3 -> R^48", "network", 3, 48, 0.0, h, 231, network(3, 48, 48, 3, 2.0, "cube")),
        ("tanh net d=6 -> R^96 + 1 %", "network", 6, 96, 0.01, h, 232, network(6, 96, 64, 3, 1.5, "gauss")),
        ("tanh net d=12 -> R^128", "network", 12, 128, 0.0, h, 233, network(12, 128, 96, 2, 1.5, "cube")),
        # --- products
        ("S^1 x [0,1]^2", "product", 3, 16, 0.0, t, 141, product(sphere(1, 0.3), cube(2))),
        ("S^2 x S^2 + 5 %", "product", 4, 32, 0.05, t, 142, product(sphere(2), sphere(2))),
        ("S^3 x T^3", "product", 6, 64, 0.0, t, 143, product(sphere(3, 0.5), torus(3))),
        ("S^1 x S^1 x [0,1]", "product", 3, 24, 0.0, h, 241, product(sphere(1), sphere(1, 0.5), cube(1))),
        ("S^2 x [0,1]^3 + 5 %", "product", 5, 32, 0.05, h, 242, product(sphere(2), cube(3))),
        ("S^4 x S^3", "product", 7, 64, 0.0, h, 243, product(sphere(4), sphere(3))),
        # --- high dimension (with and without noise)
        ("cube [0,1]^20", "high_d", 20, 64, 0.0, t, 151, cube(20)),
        ("sphere S^24 + 1 %", "high_d", 24, 128, 0.01, t, 152, sphere(24)),
        ("ball B^16", "high_d", 16, 64, 0.0, t, 153, ball(16)),
        ("torus T^12", "high_d", 12, 64, 0.0, t, 154, torus(12)),
        ("cube [0,1]^32", "high_d", 32, 96, 0.0, h, 251, cube(32)),
        ("sphere S^18", "high_d", 18, 64, 0.0, h, 252, sphere(18)),
        ("ball B^24 + 1 %", "high_d", 24, 128, 0.01, h, 253, ball(24)),
        ("torus T^16", "high_d", 16, 96, 0.0, h, 254, torus(16)),
        # --- low dimension with 5 % noise
        ("Fourier curve 6 modes + 5 %", "curve", 1, 32, 0.05, t, 104, fourier_curve(32, 6, 1.0)),
        ("sphere S^3 + 5 %", "product", 3, 32, 0.05, t, 144, sphere(3)),
        ("helix 6 turns + 5 %", "curve", 1, 16, 0.05, h, 204, helix(6, 0.5)),
        ("torus T^4 + 5 %", "product", 4, 32, 0.05, h, 244, torus(4)),
        # --- the fresh split (added after the two halves above had been opened): new seeds and shape parameters
        ("Fourier curve 20 modes", "curve", 1, 40, 0.0, f, 301, fourier_curve(40, 20, 0.45)),
        ("helix 8 turns + 1 %", "curve", 1, 12, 0.01, f, 302, helix(8, 0.4)),
        ("Fourier curve 9 modes + 5 %", "curve", 1, 24, 0.05, f, 303, fourier_curve(24, 9, 0.8)),
        ("rolled sheet 2.5 turns", "surface", 2, 20, 0.0, f, 311, rolled_sheet(2.5, 12.0)),
        ("paraboloid d=2, c=2.5, area-uniform + 1 %", "surface", 2, 20, 0.01, f, 312, paraboloid(2, 2.5, True)),
        ("bumpy graph d=2, amp. 0.8 + 5 %", "surface", 2, 24, 0.05, f, 313, bumpy_graph(2, 0.8, 4.0, 5)),
        ("paraboloid d=5, c=1", "surface", 5, 24, 0.0, f, 314, paraboloid(5, 1.0)),
        ("beta(0.7, 3) cube d=5", "density", 5, 24, 0.0, f, 321, beta_cube(5, 0.7, 3.0)),
        ("von Mises torus d=4, k=3", "density", 4, 24, 0.0, f, 322, von_mises_torus(4, 3.0)),
        ("Gaussian mixture d=3, 6 comp. + 1 %", "density", 3, 16, 0.01, f, 323, gaussian_mixture(3, 6, 2.0)),
        ("Gaussian d=10", "density", 10, 64, 0.0, f, 324, gaussian(10)),
        ("beta(0.4, 0.4) cube d=2", "density", 2, 8, 0.0, f, 325, beta_cube(2, 0.4, 0.4)),
        ("tanh net d=4 -> R^64", "network", 4, 64, 0.0, f, 331, network(4, 64, 48, 3, 1.8, "cube")),
        ("tanh net d=8 -> R^96 + 1 %", "network", 8, 96, 0.01, f, 332, network(8, 96, 64, 2, 1.5, "gauss")),
        ("tanh net d=2 -> R^24", "network", 2, 24, 0.0, f, 333, network(2, 24, 24, 4, 2.2, "gauss")),
        ("tanh net d=16 -> R^128", "network", 16, 128, 0.0, f, 334, network(16, 128, 128, 2, 1.2, "cube")),
        ("S^1 x S^2", "product", 3, 24, 0.0, f, 341, product(sphere(1), sphere(2, 0.7))),
        ("S^1 x S^1 x S^1 + 5 %", "product", 3, 24, 0.05, f, 342, product(sphere(1), sphere(1), sphere(1))),
        ("S^3 x [0,1]^3", "product", 6, 48, 0.0, f, 343, product(sphere(3, 0.6), cube(3))),
        ("sphere S^2 + 5 %", "product", 2, 16, 0.05, f, 344, sphere(2)),
        ("cube [0,1]^24", "high_d", 24, 72, 0.0, f, 351, cube(24)),
        ("sphere S^14 + 1 %", "high_d", 14, 48, 0.01, f, 352, sphere(14)),
        ("ball B^20", "high_d", 20, 80, 0.0, f, 353, ball(20)),
        ("torus T^10", "high_d", 10, 48, 0.0, f, 354, torus(10)),
    ]


def suite(split: str | None = None) -> list[SuiteCloud]:
    """The suite's clouds, optionally one split (one of :data:`SPLITS`).

    Example:
        >>> len(suite()) >= 40, {c.split for c in suite()} == set(SPLITS)
        (True, True)
        >>> splits = ("fresh", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh")
        >>> later = ("twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth")
        >>> [len(suite(s)) >= 24 for s in splits + later]
        [True, True, True, True, True, True, True, True, True, True, True, True, True, True, True]

    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"`split` must be None or one of {', '.join(map(repr, SPLITS))}, got {split!r}.")
    from studies.dimension_suite3 import third_specs  # they build on this module's SuiteCloud
    from studies.dimension_suite4 import fourth_specs
    from studies.dimension_suite5 import fifth_specs
    from studies.dimension_suite6 import sixth_specs
    from studies.dimension_suite7 import seventh_specs
    from studies.dimension_suite8 import eighth_specs
    from studies.dimension_suite9 import ninth_specs
    from studies.dimension_suite10 import tenth_specs
    from studies.dimension_suite11 import eleventh_specs
    from studies.dimension_suite12 import twelfth_specs
    from studies.dimension_suite13 import thirteenth_specs
    from studies.dimension_suite14 import fourteenth_specs
    from studies.dimension_suite15 import fifteenth_specs
    from studies.dimension_suite16 import sixteenth_specs

    specs = _specs() + third_specs() + fourth_specs() + fifth_specs() + sixth_specs() + seventh_specs()
    specs += eighth_specs() + ninth_specs() + tenth_specs() + eleventh_specs() + twelfth_specs()
    specs += thirteenth_specs() + fourteenth_specs() + fifteenth_specs() + sixteenth_specs()
    clouds = [SuiteCloud(*spec) for spec in specs]
    return [c for c in clouds if split is None or c.split == split]


__all__ = ["NOISE_LEVELS", "SIZES", "SPLITS", "SuiteCloud", "suite"]
