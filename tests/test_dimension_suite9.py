"""The trusted-``dim`` suite's ninth split (studies/dimension_suite9.py) generates what it claims, cheaply.

No estimator runs here: the split stays unopened until the rule is frozen. These tests check the split's make-up
and the geometry each generator promises (on small samples of the latent manifold); sizes, seeds and noise levels
are checked for every split by tests/test_dimension_suite.py.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
from _helpers.suite_clouds import latent

from studies.dimension_suite import NOISE_LEVELS, SPLITS, suite

_latent = partial(latent, "ninth")


def test_ninth_split_is_new_and_follows_the_issue_family_list():
    ninth = suite("ninth")
    earlier = [c for c in suite() if c.split != "ninth"]
    assert len(ninth) >= 42
    assert SPLITS[SPLITS.index("eighth") + 1] == "ninth"  # written after the eighth
    assert len({c.name for c in suite()}) == len(suite())  # no name reused from an earlier split
    seeds = [c.seed for c in ninth]
    assert len(set(seeds)) == len(seeds)
    assert all(1000 <= v < 1100 for v in seeds)
    assert not {c.seed for c in earlier} & set(seeds)
    for level in NOISE_LEVELS:
        assert sum(c.noise == level for c in ninth) >= 10, level
    for family, least in (("curve", 6), ("surface", 5), ("network", 5), ("density", 6), ("product", 5)):
        assert sum(c.family == family for c in ninth) >= least, family
    assert {c.noise for c in ninth if c.family == "curve"} == set(NOISE_LEVELS)
    assert {c.noise for c in ninth if c.family == "surface"} == set(NOISE_LEVELS)
    assert sum(c.dim >= 10 for c in ninth) >= 8
    assert min(c.dim for c in ninth) == 1
    assert max(c.dim for c in ninth) >= 24


def test_curves_lie_where_they_claim():
    tr = _latent("tractrix + 1 %")
    t = np.arccosh(1 / tr[:, 1]) * np.sign(tr[:, 0])  # sech t = y; x = t - tanh t has the sign of t
    assert np.allclose(tr[:, 0], t - np.tanh(t))
    inv = _latent("involute of a circle, two turns")
    # The involute's point at angle t is at distance t from the circle's tangent point: |p|^2 = 1 + t^2.
    assert float(np.linalg.norm(inv, axis=1).max()) <= math.sqrt(1 + (4 * math.pi) ** 2) + 1e-9
    fo = _latent("folium of Descartes loop + 5 %")
    assert np.allclose(fo[:, 0] ** 3 + fo[:, 1] ** 3, 3 * fo[:, 0] * fo[:, 1])
    ch = _latent("chirp (t, 0.25 sin 8t^2) + 1 %")
    assert np.allclose(ch[:, 1], 0.25 * np.sin(8 * ch[:, 0] ** 2))
    wi = _latent("witch of Agnesi, Student-t(3) parameter")
    assert np.allclose(wi[:, 1] * (4 + wi[:, 0] ** 2), 8.0)  # y (x^2 + 4a^2) = 8a^3 with a = 1
    bi = _latent("bicorn + 1 %")
    x, y = bi[:, 0], bi[:, 1]
    assert np.allclose(y**2 * (1 - x**2), (x**2 + 2 * y - 1) ** 2, atol=1e-9)  # the bicorn's implicit equation
    fe = _latent("Fermat spiral, both arms, 3 turns", n=4000)
    r2 = (fe**2).sum(1)  # +-sqrt(t) (cos t, sin t): |p|^2 = t, so p is parallel to (cos |p|^2, sin |p|^2)
    assert np.allclose(fe[:, 0] * np.sin(r2) - fe[:, 1] * np.cos(r2), 0.0)
    assert float(np.mean(fe[:, 0] * np.cos(r2) + fe[:, 1] * np.sin(r2) > 0)) == pytest.approx(0.5, abs=0.05)


def test_surfaces_lie_where_they_claim():
    wu = _latent("Whitney umbrella + 1 %")
    assert np.allclose(wu[:, 0] ** 2, wu[:, 1] ** 2 * wu[:, 2])  # x^2 = y^2 z
    bd = _latent("Bohemian dome")
    s = np.sqrt(1 - bd[:, 0] ** 2)
    off = np.minimum(np.abs((bd[:, 1] - s) ** 2 + bd[:, 2] ** 2 - 1), np.abs((bd[:, 1] + s) ** 2 + bd[:, 2] ** 2 - 1))
    assert float(off.max()) < 1e-9
    ae = _latent("astroidal ellipsoid + 1 %")
    assert np.allclose((np.abs(ae) ** (2 / 3)).sum(1), 1.0)
    pc = _latent("Plücker's conoid")
    assert np.allclose(pc[:, 2] * (pc[:, 0] ** 2 + pc[:, 1] ** 2), 2 * pc[:, 0] * pc[:, 1])
    ss = _latent("sine surface + 5 %")
    u, v = np.arcsin(ss[:, 0]), np.arcsin(ss[:, 1])  # sin(u + v) is one of the four sign choices of cos
    cands = [ss[:, 0] * b * np.cos(v) + ss[:, 1] * a * np.cos(u) for a in (1, -1) for b in (1, -1)]
    assert float(np.min(np.abs(np.array(cands) - ss[:, 2]), axis=0).max()) < 1e-9
    cy = _latent("Dupin cyclide + 5 %", n=2000)
    assert np.isfinite(cy).all()
    assert np.linalg.matrix_rank(cy - cy.mean(0)) == 3


def test_densities_products_and_networks_keep_their_promises():
    ku = _latent("Kumaraswamy(0.5, 3) cube d=6 + 1 %", n=8000)
    # Kumaraswamy(a, b): P(X <= x) = 1 - (1 - x^a)^b, so P(X <= 1/4) = 1 - (1/2)^3.
    assert float(np.mean(ku < 0.25)) == pytest.approx(7 / 8, abs=0.01)
    cv = _latent("correlated von Mises 2-torus, kappa 8 + 1 %", n=4000)
    assert np.allclose(np.hypot(cv[:, 0], cv[:, 1]), 1.0)
    diff = np.angle((cv[:, 0] + 1j * cv[:, 1]) * (cv[:, 2] - 1j * cv[:, 3]))
    assert float(np.cos(diff).mean()) == pytest.approx(0.9356, abs=0.01)  # I1(8) / I0(8)
    gs = _latent("girdle density on S^4, concentration 8 + 5 %", n=4000)
    assert np.allclose(np.linalg.norm(gs, axis=1), 1.0)
    assert float(np.mean(gs[:, 0] ** 2)) < 0.5 * float(np.mean(gs[:, 1] ** 2))
    sh = np.linalg.norm(_latent("spherical shell d=14, inner radius 0.9"), axis=1)
    assert sh.min() >= 0.9 - 1e-12
    assert sh.max() <= 1.0 + 1e-12
    st = _latent("S^2 x T^3 + 1 %")
    assert np.allclose(np.linalg.norm(st[:, :3], axis=1), 1.0)
    assert np.allclose(np.hypot(st[:, 3:6], st[:, 6:9]), 1.0)
    s7 = _latent("S^7 x S^7 + 5 %")
    assert np.allclose(np.linalg.norm(s7.reshape(-1, 2, 8), axis=2), 1.0)
    for name, d in (("residual GELU net d=2 -> R^24 + 1 %", 2), ("residual SiLU net d=14 -> R^128 + 5 %", 14)):
        net = _latent(name)
        assert np.linalg.matrix_rank(net - net.mean(0), tol=1e-6 * np.abs(net).max()) >= d, name
