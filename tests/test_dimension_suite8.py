"""The trusted-``dim`` suite's eighth split (studies/dimension_suite8.py) generates what it claims, cheaply.

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

_latent = partial(latent, "eighth")


def test_eighth_split_is_new_and_follows_the_issue_family_list():
    eighth = suite("eighth")
    earlier = [c for c in suite() if c.split != "eighth"]
    assert len(eighth) >= 40
    assert SPLITS[SPLITS.index("seventh") + 1] == "eighth"  # written after the seventh
    assert len({c.name for c in suite()}) == len(suite())  # no name reused from an earlier split
    seeds = [c.seed for c in eighth]
    assert len(set(seeds)) == len(seeds)
    assert all(900 <= v < 1000 for v in seeds)
    assert not {c.seed for c in earlier} & set(seeds)
    for level in NOISE_LEVELS:
        assert sum(c.noise == level for c in eighth) >= 10, level
    for family, least in (("curve", 6), ("surface", 4), ("network", 4), ("density", 5), ("product", 4)):
        assert sum(c.family == family for c in eighth) >= least, family
    assert {c.noise for c in eighth if c.family == "curve"} == set(NOISE_LEVELS)
    assert sum(c.dim >= 10 for c in eighth) >= 8


def test_curves_and_surfaces_lie_where_they_claim():
    ca = _latent("Beta(2, 5) cardioid + 1 %")
    r, t = np.hypot(ca[:, 0], ca[:, 1]), np.arctan2(ca[:, 1], ca[:, 0])
    assert np.allclose(r, 1 - np.cos(t))
    de = _latent("deltoid")
    z = de[:, 0] + 1j * de[:, 1]  # deltoid: z = 2 e^{it} + e^{-2it}, so |z| <= 3 and |z| >= 1
    assert np.abs(z).max() <= 3 + 1e-9
    assert np.abs(z).min() >= 1 - 1e-9
    vm = _latent("von Mises circle, kappa 4", n=4000)
    assert np.allclose(np.hypot(vm[:, 0], vm[:, 1]), 1.0)
    assert float(vm[:, 0].mean()) == pytest.approx(0.87, abs=0.03)  # I1(4) / I0(4)
    pa = _latent("steep paraboloid over a disc + 1 %")
    assert np.allclose(pa[:, 2], 2.0 * (pa[:, 0] ** 2 + pa[:, 1] ** 2))
    to = _latent("ring torus, von Mises tube angle + 5 %")
    assert np.allclose((np.hypot(to[:, 0], to[:, 1]) - 2) ** 2 + to[:, 2] ** 2, 1.0)
    bs = _latent("sphere with Beta(0.6, 2) height", n=4000)
    assert np.allclose(np.linalg.norm(bs, axis=1), 1.0)
    assert float(bs[:, 2].mean()) == pytest.approx(2 * 0.6 / 2.6 - 1, abs=0.03)
    cl = _latent("random closed curve in R^20, 12 modes + 5 %")
    assert np.linalg.matrix_rank(cl - cl.mean(0)) == 20  # a curve that turns through every direction


def test_densities_products_and_networks_keep_their_promises():
    arc = _latent("arcsine cube d=5 + 1 %", n=8000)
    assert float(np.var(arc)) == pytest.approx(1 / 8, abs=0.01)  # Beta(1/2, 1/2) variance
    vt = _latent("von Mises 3-torus, kappa 3 + 5 %", n=4000)
    assert np.allclose(np.hypot(vt[:, :3], vt[:, 3:]), 1.0)
    ng = np.linalg.norm(_latent("two nested Gaussians d=8, scales 1 and 0.3", n=4000), axis=1) / math.sqrt(8)
    assert float(np.mean(ng < 0.6)) == pytest.approx(0.5, abs=0.05)
    ln = np.linalg.norm(_latent("log-normal radius d=20, sigma 0.3", n=4000), axis=1)
    assert np.std(np.log(ln)) == pytest.approx(0.3, abs=0.03)
    ci = _latent("four circles of radii 1, 0.7, 0.4, 0.2 + 1 %")
    assert np.allclose(np.linalg.norm(ci.reshape(-1, 4, 2), axis=2), [1.0, 0.7, 0.4, 0.2])
    ss = _latent("S^4 x S^4 + 5 %")
    assert np.allclose(np.linalg.norm(ss.reshape(-1, 2, 5), axis=2), 1.0)
    for name, d in (("tanh net d=2 -> R^30 + 1 %", 2), ("ELU net d=12 -> R^100 + 5 %", 12)):
        net = _latent(name)
        assert np.linalg.matrix_rank(net - net.mean(0), tol=1e-6 * np.abs(net).max()) >= d, name
