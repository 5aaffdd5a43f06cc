"""The trusted-``dim`` suite's seventh split (studies/dimension_suite7.py) generates what it claims, cheaply.

No estimator runs here: the split stays unopened until the rule is frozen. These tests check the clouds' sizes,
seeds, noise and the geometry each generator promises (on small samples of the latent manifold).
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
from _helpers.suite_clouds import latent

from studies.dimension_suite import NOISE_LEVELS, SPLITS, suite

_latent = partial(latent, "seventh")


def test_seventh_split_is_new_and_follows_the_issue_family_list():
    seventh = suite("seventh")
    earlier = [c for c in suite() if c.split != "seventh"]
    assert len(seventh) >= 40
    assert SPLITS[SPLITS.index("sixth") + 1] == "seventh"  # written after the sixth
    assert len({c.name for c in suite()}) == len(suite())  # no name reused from an earlier split
    seeds = [c.seed for c in seventh]
    assert len(set(seeds)) == len(seeds)
    assert all(800 <= v < 900 for v in seeds)
    assert not {c.seed for c in earlier} & set(seeds)
    assert all(c.noise in NOISE_LEVELS for c in seventh)
    for level in NOISE_LEVELS:  # every noise level on a fair share of the clouds
        assert sum(c.noise == level for c in seventh) >= 10, level
    for family, least in (("curve", 6), ("surface", 4), ("network", 4), ("density", 5), ("product", 4)):
        assert sum(c.family == family for c in seventh) >= least, family
    assert {c.noise for c in seventh if c.family == "curve"} == set(NOISE_LEVELS)
    assert sum(c.dim >= 10 for c in seventh) >= 8


def test_curves_lie_on_their_curves():
    a = _latent("astroid + 5 %")
    assert np.allclose(np.abs(a[:, 0]) ** (2 / 3) + np.abs(a[:, 1]) ** (2 / 3), 1.0)
    cy = _latent("cycloid 3 arches + 1 %")
    t = np.arccos(1 - cy[:, 1])  # recover t mod 2 pi up to reflection: x - t + sin t is a multiple of 2 pi
    k = np.round((cy[:, 0] - (t - np.sin(t))) / (2 * math.pi))
    k2 = np.round((cy[:, 0] - (-t + np.sin(t))) / (2 * math.pi))
    ok = np.isclose(cy[:, 0], t - np.sin(t) + 2 * math.pi * k) | np.isclose(cy[:, 0], -t + np.sin(t) + 2 * math.pi * k2)
    assert ok.all()
    assert cy[:, 0].max() <= 6 * math.pi + 1e-9
    cl = _latent("Clelia curve ratio 6 + 5 %")
    assert np.allclose(np.linalg.norm(cl, axis=1), 1.0)
    ft = _latent("(3, 5) curve on a flat torus + 1 %")
    assert np.allclose(np.hypot(ft[:, 0], ft[:, 1]), 1.0)
    assert np.allclose(np.hypot(ft[:, 2], ft[:, 3]), 0.5)
    sp = _latent("trigonometric spline through 9 points of R^12 + 5 %", n=2000)
    knots = np.random.default_rng(806).standard_normal((9, 12))
    # The interpolant passes through (within sampling resolution) every knot: each knot has a close sample.
    gap = np.sqrt(((knots[:, None, :] - sp[None]) ** 2).sum(-1)).min(1)
    assert gap.max() < 0.1 * np.linalg.norm(knots, axis=1).mean()
    st = _latent("seven-lobed star")
    assert np.allclose(np.hypot(st[:, 0], st[:, 1]), 1 + 0.4 * np.cos(7 * np.arctan2(st[:, 1], st[:, 0])))
    ca = _latent("Cassini ovals + 1 %")
    prod = np.hypot(ca[:, 0] - 1, ca[:, 1]) * np.hypot(ca[:, 0] + 1, ca[:, 1])
    assert np.allclose(prod, 0.81)
    assert abs(float(np.mean(ca[:, 0] > 0)) - 0.5) < 0.1  # both ovals


def test_surfaces_lie_on_their_surfaces():
    ro = _latent("Roman surface + 5 %")
    x, y, z = ro.T
    assert np.allclose((x * y) ** 2 + (y * z) ** 2 + (x * z) ** 2, x * y * z)  # Steiner's equation for r = 1
    ho = _latent("horn torus + 1 %")
    assert np.allclose((np.hypot(ho[:, 0], ho[:, 1]) - 1) ** 2 + ho[:, 2] ** 2, 1.0)
    hy = _latent("hyperboloid of one sheet + 5 %")
    assert np.allclose(hy[:, 0] ** 2 + hy[:, 1] ** 2 - hy[:, 2] ** 2, 1.0)
    gg = _latent("graph over a Gaussian plane + 1 %", n=4000)
    assert np.allclose(gg[:, 2], 0.6 * np.cos(gg[:, 0]) * np.sin(2 * gg[:, 1]))
    assert np.std(gg[:, 0]) == pytest.approx(1.0, abs=0.05)
    cc = _latent("cross-cap")
    # Implicit form of this cross-cap: with r^2 = y^2 + z^2 = cos^4 v and x = sin u sin 2v / 2.
    assert np.allclose(np.hypot(cc[:, 1], cc[:, 2]) ** 0.5 <= 1.0 + 1e-12, True)
    assert np.linalg.matrix_rank(cc - cc.mean(0)) == 3
    el = _latent("elliptic cylinder 2:1 + 5 %")
    assert np.allclose((el[:, 0] / 2) ** 2 + el[:, 1] ** 2, 1.0)


def test_densities_and_products_keep_their_promises():
    vm = _latent("von Mises-Fisher cap on S^4, kappa 8", n=4000)
    assert np.allclose(np.linalg.norm(vm, axis=1), 1.0)
    # Mean resultant length of a vMF on S^4 (p = 5) at kappa 8: I_{5/2}(8) / I_{3/2}(8) ~ 0.75.
    assert float(vm[:, 0].mean()) == pytest.approx(0.75, abs=0.03)
    tri = _latent("triangular cube d=6")
    assert tri.min() >= 0
    assert tri.max() <= 1
    gg = _latent("generalised Gaussian d=8, shape 0.7 + 1 %", n=8000)
    kurt = ((gg - gg.mean(0)) ** 4).mean(0) / gg.var(0) ** 2
    assert kurt.min() > 4.0  # heavier tails than Laplace's 6 on average; well above a Gaussian's 3
    vt = _latent("graded von Mises torus d=4", n=4000)
    assert np.allclose(np.hypot(vt[:, :4], vt[:, 4:]), 1.0)
    conc = np.hypot(vt[:, :4].mean(0), vt[:, 4:].mean(0))
    assert np.all(np.diff(conc) > 0)  # concentration grows along the angles
    lap = _latent("anisotropic elliptical Laplace d=16 + 1 %", n=8000)
    sv = np.linalg.svd(lap - lap.mean(0), compute_uv=False)
    assert sv[0] / sv[-1] == pytest.approx(3.0, rel=0.15)
    ln = np.linalg.norm(_latent("log-normal radius d=12, sigma 0.4", n=4000), axis=1)
    assert np.std(np.log(ln)) == pytest.approx(0.4, abs=0.03)
    ng = np.linalg.norm(_latent("two nested Gaussians d=16, scales 1 and 0.4", n=4000), axis=1) / 4
    assert float(np.mean(ng < 0.6)) == pytest.approx(0.5, abs=0.05)
    sph = _latent("three 2-spheres of radii 1, 0.5, 0.25 + 1 %")
    assert np.allclose(np.linalg.norm(sph.reshape(-1, 3, 3), axis=2), [1.0, 0.5, 0.25])
    rs = _latent("rose with 3 petals x S^2 + 5 %")
    assert np.allclose(np.linalg.norm(rs[:, 2:], axis=1), 1.0)
    balls = _latent("B^4 x B^4 x B^4 + 5 %")
    assert (np.linalg.norm(balls.reshape(-1, 3, 4), axis=2) <= 1.0).all()
    # The network images are not degenerate: their latent dimension survives (full-rank local Jacobians).
    for name, d in (("arctan net d=3 -> R^40 + 5 %", 3), ("Gaussian-activation net d=14 -> R^112", 14)):
        net = _latent(name, n=400)
        assert np.linalg.matrix_rank(net - net.mean(0), tol=1e-6 * np.abs(net).max()) >= d, name
