"""The trusted-``dim`` suite's sixth split (studies/dimension_suite6.py) generates what it claims, cheaply.

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

_latent = partial(latent, "sixth")


def test_sixth_split_is_new_and_weighted_toward_the_failure_modes():
    sixth = suite("sixth")
    earlier = [c for c in suite() if c.split != "sixth"]
    assert len(sixth) >= 30
    assert "sixth" in SPLITS
    assert {c.split for c in suite()} == set(SPLITS)
    assert len({c.name for c in suite()}) == len(suite())  # no name reused from an earlier split
    seeds = [c.seed for c in sixth]
    assert len(set(seeds)) == len(seeds)
    assert all(700 <= v < 800 for v in seeds)
    assert not {c.seed for c in earlier} & set(seeds)
    assert all(c.noise in NOISE_LEVELS for c in sixth)
    noisy_curves = [c for c in sixth if c.family == "curve" and c.noise > 0]
    assert len(noisy_curves) >= 6
    assert {c.noise for c in noisy_curves} == {0.01, 0.05}
    noisy_surfaces = [c for c in sixth if c.family == "surface" and c.noise > 0]
    assert len(noisy_surfaces) >= 4
    assert {c.noise for c in noisy_surfaces} == {0.01, 0.05}
    assert sum(c.family == "high_d" and 10 <= c.dim <= 20 for c in sixth) >= 6
    assert sum(c.family == "network" for c in sixth) >= 4
    assert sum(c.family == "product" for c in sixth) >= 3
    assert sum(c.noise == 0 for c in sixth) >= 10  # ordinary clean clouds too: a fair test


# Sampling, determinism and the stated noise level: tests/test_dimension_suite.py, parametrized by split.


def test_curves_lie_on_their_curves():
    r = _latent("rose with 5 petals + 5 %")
    assert np.allclose(np.hypot(r[:, 0], r[:, 1]), np.abs(np.cos(5 * np.arctan2(r[:, 1], r[:, 0]))))
    sp = _latent("logarithmic spiral 3 turns + 1 %")
    rad = np.hypot(sp[:, 0], sp[:, 1])
    assert rad.min() >= 1.0 - 1e-12
    assert rad.max() <= math.exp(0.12 * 6 * math.pi) + 1e-9
    assert np.allclose(np.cos(np.arctan2(sp[:, 1], sp[:, 0])), np.cos(np.log(rad) / 0.12))
    hy = np.hypot(*_latent("hypotrochoid 7:2 + 5 %").T)
    assert hy.min() >= 2.0 - 1e-9
    assert hy.max() <= 8.0 + 1e-9
    cr = _latent("crown with 9 waves + 1 %")
    assert np.allclose(np.hypot(cr[:, 0], cr[:, 1]), 1.0)
    assert np.allclose(cr[:, 2], 0.4 * np.sin(9 * np.arctan2(cr[:, 1], cr[:, 0])))
    le = _latent("lemniscate of Bernoulli + 5 %")
    sq = (le**2).sum(1)
    assert np.allclose(sq**2, le[:, 0] ** 2 - le[:, 1] ** 2)
    wob = _latent("wobbling circle on S^7 + 1 %")
    assert wob.shape[1] == 8
    assert np.allclose(np.linalg.norm(wob, axis=1), 1.0)
    # A curve parameterised by the angle of its first two coordinates (the normalisation keeps that angle): in
    # that order it moves at a bounded speed.
    angle = np.arctan2(wob[:, 1], wob[:, 0])
    order = np.argsort(angle)
    speed = np.linalg.norm(np.diff(wob[order], axis=0), axis=1) / np.maximum(np.diff(angle[order]), 1e-12)
    assert speed.max() < 20 * np.median(speed)


def test_surfaces_lie_on_their_surfaces():
    to = _latent("ring torus 3:1 + 5 %")
    assert np.allclose((np.hypot(to[:, 0], to[:, 1]) - 3.0) ** 2 + to[:, 2] ** 2, 1.0)
    el = _latent("ellipsoid surface 1:2:4 + 1 %")
    assert np.allclose(el[:, 0] ** 2 + (el[:, 1] / 2) ** 2 + (el[:, 2] / 4) ** 2, 1.0)
    eg = _latent("egg-crate graph + 5 %")
    assert np.allclose(eg[:, 2], 0.3 * np.sin(5 * eg[:, 0]) * np.sin(5 * eg[:, 1]))
    co = _latent("double cone + 1 %", n=4000)
    assert np.allclose(co[:, 0] ** 2 + co[:, 1] ** 2, co[:, 2] ** 2)
    assert np.abs(co[:, 2]).max() <= 1.0
    assert abs(float(np.mean(co[:, 2] > 0)) - 0.5) < 0.05  # both nappes
    assert float(np.mean(np.abs(co[:, 2]) < 0.5)) == pytest.approx(0.25, abs=0.03)  # uniform in area
    ve = _latent("Veronese image of S^5 + 1 %", n=50)
    iu = np.triu_indices(6)
    m = np.zeros((50, 6, 6))
    m[:, iu[0], iu[1]] = ve / np.where(iu[0] == iu[1], 1.0, math.sqrt(2.0))
    m = m + np.triu(m, 1).transpose(0, 2, 1)
    eig = np.linalg.eigvalsh(m)
    assert np.allclose(eig[:, -1], 1.0)  # x x^T of a unit vector: one eigenvalue 1, the rest 0
    assert np.allclose(eig[:, :-1], 0.0, atol=1e-10)


def test_densities_products_and_networks_keep_their_promises():
    wi = _latent("Wishart 3x3 matrices", n=200)
    iu = np.triu_indices(3)
    m = np.zeros((200, 3, 3))
    m[:, iu[0], iu[1]] = wi / np.where(iu[0] == iu[1], 1.0, math.sqrt(2.0))
    m = m + np.triu(m, 1).transpose(0, 2, 1)
    assert np.linalg.eigvalsh(m).min() > 0  # positive definite
    assert np.allclose(np.trace(m, axis1=1, axis2=2).mean(), 3.0, atol=0.3)  # E W / dof = I
    t = _latent("Student-t(2.5) d=12", n=20000)
    g = np.random.default_rng(0).standard_normal((20000, 12))
    # Heavy tails: the norm's 99.9 % quantile over its median is far above a Gaussian's.
    tail = np.quantile(np.linalg.norm(t, axis=1), 0.999) / np.median(np.linalg.norm(t, axis=1))
    assert tail > 2 * np.quantile(np.linalg.norm(g, axis=1), 0.999) / np.median(np.linalg.norm(g, axis=1))
    mix = np.linalg.norm(_latent("Gaussian scale mixture d=12, 2 decades", n=4000), axis=1)
    assert np.std(np.log10(mix)) == pytest.approx(0.5, abs=0.06)  # log10 of the scale: sd 2 decades / 4
    lap = _latent("elliptical Laplace d=10", n=20000)
    assert np.allclose((lap**2).sum(1).mean(), 10.0, rtol=0.05)  # E[E] E|z|^2 = 10
    pa = np.linalg.norm(_latent("Pareto(3) radius d=14", n=4000), axis=1)
    assert pa.min() >= 1.0
    assert pa.max() > 5.0
    three = _latent("three-scale Gaussians d=20", n=3000)
    assert np.linalg.norm(three - three.mean(0), axis=1).max() < 10
    ci = _latent("circles of radii 1, 0.3, 0.1")
    assert np.allclose(np.hypot(ci[:, :3], ci[:, 3:]), [1.0, 0.3, 0.1])
    ft = _latent("flat torus radii 1 and 0.1 + 1 %")
    assert np.allclose(np.hypot(ft[:, :2], ft[:, 2:]), [1.0, 0.1])
    st = _latent("S^2 x Student-t(3) plane + 5 %")
    assert np.allclose(np.linalg.norm(st[:, :3], axis=1), 1.0)
    ss = _latent("S^4 x S^1 + 5 %")
    assert np.allclose(np.linalg.norm(ss[:, :5], axis=1), 1.0)
    assert np.allclose(np.linalg.norm(ss[:, 5:], axis=1), 0.5)
    # The network images of an interval are continuous curves: the sampler draws its latent u first, so the same
    # generator state recovers u; ordered by u, the image moves at a bounded speed (Lipschitz), never jumps, and
    # never stalls (a flat stretch would make part of the "curve" a point, of dimension 0).
    for name in ("softsign net d=1 -> R^40 + 5 %", "ReLU net d=1 -> R^24 + 1 %"):
        net = _latent(name, n=2000)
        u = np.random.default_rng(0).uniform(-1, 1, (2000, 1))[:, 0]
        order = np.argsort(u)
        speed = np.linalg.norm(np.diff(net[order], axis=0), axis=1) / np.maximum(np.diff(u[order]), 1e-12)
        assert np.var(net, axis=0).sum() > 1e-3, name
        assert speed.max() < 20 * np.median(speed), name
        assert speed.min() > 0.05 * np.median(speed), name
