"""The trusted-``dim`` suite's fifth split (studies/dimension_suite5.py) generates what it claims, cheaply.

No estimator runs here: the split stays unopened until the rule is frozen. These tests check the clouds' sizes,
seeds, noise and the geometry each generator promises (on small samples of the latent manifold).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
from _helpers.suite_clouds import latent

from lightning_repgap.manifolds import embed
from studies import dimension_suite5 as s5
from studies.dimension_suite import NOISE_LEVELS, SPLITS, suite

_latent = partial(latent, "fifth")


def test_fifth_split_is_new_and_weighted_toward_the_failure_modes():
    fifth = suite("fifth")
    earlier = [c for c in suite() if c.split != "fifth"]
    assert len(fifth) >= 27
    assert {c.split for c in suite()} == set(SPLITS)
    assert len({c.name for c in suite()}) == len(suite())  # no name reused from an earlier split
    seeds = [c.seed for c in fifth]
    assert len(set(seeds)) == len(seeds)
    assert all(600 <= v < 700 for v in seeds)
    assert not {c.seed for c in earlier} & set(seeds)
    assert all(c.noise in NOISE_LEVELS for c in fifth)
    noisy_curves = [c for c in fifth if c.family == "curve" and c.noise > 0]
    assert len(noisy_curves) >= 6
    assert {c.noise for c in noisy_curves} == {0.01, 0.05}
    assert sum(c.family == "surface" and c.noise > 0 for c in fifth) >= 3
    assert sum(c.noise == 0 and 10 <= c.dim <= 20 for c in fifth) >= 8
    assert sum(c.family == "network" for c in fifth) >= 4


@pytest.mark.parametrize(
    "split",
    [
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
    ],
)
def test_every_cloud_of_a_split_samples_its_size_deterministically_with_the_stated_noise(split):
    n = 300
    for cloud in suite(split):
        x = cloud.sample(n, np.random.default_rng(1))
        assert x.shape == (n, cloud.ambient), cloud.name
        assert np.isfinite(x).all(), cloud.name
        assert np.array_equal(x, cloud.sample(n, np.random.default_rng(1))), cloud.name
        assert not np.array_equal(x, cloud.sample(n, np.random.default_rng(2))), cloud.name
        # The same generator state gives the clean cloud first; the rest is the noise, at the stated level.
        clean = cloud.make(cloud.seed)(n, np.random.default_rng(1))
        assert clean.shape[0] == n, cloud.name
        assert clean.shape[1] <= cloud.ambient, cloud.name
        # The latent cloud has at least as many coordinates as its dimension and is not degenerate.
        assert clean.shape[1] >= cloud.dim, cloud.name
        assert np.linalg.matrix_rank(clean - clean.mean(0), tol=1e-8) >= min(cloud.dim, clean.shape[1]), cloud.name
        if clean.shape[1] < cloud.ambient:
            clean = embed(clean, cloud.ambient, np.random.default_rng(cloud.seed + 7919))
        radius = math.sqrt(float(np.var(clean, axis=0).sum()))
        ratio = math.sqrt(float(((x - clean) ** 2).sum(1).mean())) / radius
        assert ratio == pytest.approx(cloud.noise, rel=0.1, abs=1e-12), cloud.name


def test_curve_and_surface_generators_lie_on_their_manifolds():
    t = _latent("moment curve degree 6 + 5 %")
    assert np.allclose(t, t[:, :1] ** np.arange(1, 7))
    seam = _latent("baseball seam + 5 %")
    assert np.allclose(np.linalg.norm(seam, axis=1), 1.0)
    cat = _latent("catenoid + 1 %")
    assert np.allclose(np.hypot(cat[:, 0], cat[:, 1]), np.cosh(cat[:, 2]))
    sch = _latent("Scherk surface")
    assert np.allclose(sch[:, 2], np.log(np.cos(sch[:, 1]) / np.cos(sch[:, 0])))
    ps = _latent("pseudosphere t <= 2.5 + 1 %")
    # Tractricoid: radius sech(t) at height t - tanh(t); recover t from the radius and check the height.
    tt = np.arccosh(1 / np.hypot(ps[:, 0], ps[:, 1]))
    assert np.allclose(ps[:, 2], tt - np.tanh(tt))
    tube = _latent("figure-eight knot tube + 5 %")
    grid = np.linspace(0, 2 * math.pi, 20000, endpoint=False)
    knot, _ = s5._figure_eight(grid)
    dist = np.sqrt(((tube[:, None, :] - knot[None]) ** 2).sum(-1)).min(1)
    assert np.allclose(dist, 0.3, atol=2e-3)
    helix_tube = _latent("solid helix tube 5 turns")
    assert np.hypot(helix_tube[:, 0], helix_tube[:, 1]).max() <= 1.15 + 1e-9


def test_density_and_group_generators_keep_their_promises():
    l1 = _latent("cross-polytope d=13")
    assert l1.shape[1] == 13
    assert np.abs(l1).sum(1).max() <= 1.0
    # Uniform in the l1 ball: the l1 norm's CDF is r^13, so its mean is 13 / 14.
    assert np.abs(l1).sum(1).mean() == pytest.approx(13 / 14, abs=0.01)
    u = _latent("unitary group U(4)", n=50)
    q = u[:, :16].reshape(50, 4, 4) + 1j * u[:, 16:].reshape(50, 4, 4)
    assert np.allclose(q @ np.conj(np.transpose(q, (0, 2, 1))), np.eye(4), atol=1e-10)
    cap = _latent("spherical cap of S^12, 60 degrees")
    assert cap.shape[1] == 13
    assert np.allclose(np.linalg.norm(cap, axis=1), 1.0)
    assert cap[:, 0].min() >= 0.5 - 1e-9
    assert cap[:, 0].min() < 0.6
    cop = _latent("Clayton copula d=3, theta=3", n=4000)
    assert cop.min() > 0
    assert cop.max() < 1
    assert np.allclose(cop.mean(0), 0.5, atol=0.03)  # uniform marginals
    assert np.corrcoef(cop.T)[0, 1] > 0.5  # mass along the diagonal
    nested = _latent("nested Gaussians d=5, scales 1 and 0.1", n=4000)
    norms = np.sort(np.linalg.norm(nested, axis=1))
    assert norms[1800] < 0.5 < norms[2200]  # half the points at scale 0.1, half at scale 1
    box = _latent("skewed box d=14, condition 10")
    sv = np.linalg.svd(np.cov(box.T), compute_uv=False)
    assert 20 < sv[0] / sv[-1] < 400  # covariance condition number ~ 10^2
