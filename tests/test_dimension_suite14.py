"""The trusted-``dim`` suite's fourteenth split (studies/dimension_suite14.py) generates what it claims, cheaply.

No estimator runs here: the split stays unopened until the rule is frozen. These tests check the split's make-up,
the geometry each generator promises (on small samples of the latent manifold) and the truth itself: the Jacobian of
every cloud's map from its random draws has rank ``dim`` at random points. Sizes, seeds and noise levels are checked
for every split by tests/test_dimension_suite.py.
"""

from __future__ import annotations

import math
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from _helpers.jacobian import sampler_ranks
from _helpers.suite_clouds import latent
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.special import iv

from studies.dimension_suite import NOISE_LEVELS, SPLITS, suite
from studies.dimension_suite14 import epicycloid_xy, fish_xy, hypocycloid_xy

_latent = partial(latent, "fourteenth")


def test_fourteenth_split_is_new_and_follows_the_issue_family_list():
    fourteenth = suite("fourteenth")
    earlier = [c for c in suite() if c.split != "fourteenth"]
    assert len(fourteenth) == 43
    assert SPLITS[SPLITS.index("thirteenth") + 1] == "fourteenth"  # written after the thirteenth
    assert SPLITS[SPLITS.index("fourteenth") + 1] == "fifteenth"  # the fifteenth split was written after it
    assert len({c.name for c in suite()}) == len(suite())  # no name reused from an earlier split
    seeds = [c.seed for c in fourteenth]
    assert len(set(seeds)) == len(seeds)
    assert all(1500 <= v < 1600 for v in seeds)
    assert not {c.seed for c in earlier} & set(seeds)
    assert [sum(c.noise == level for c in fourteenth) for level in NOISE_LEVELS] == [13, 16, 14]
    for family, least in (("curve", 6), ("surface", 5), ("network", 5), ("density", 6), ("product", 5)):
        assert sum(c.family == family for c in fourteenth) >= least, family
    assert {c.noise for c in fourteenth if c.family == "curve"} == set(NOISE_LEVELS)
    assert {c.noise for c in fourteenth if c.family == "surface"} == set(NOISE_LEVELS)
    assert sum(c.dim >= 10 for c in fourteenth) >= 8
    assert min(c.dim for c in fourteenth) == 1
    assert max(c.dim for c in fourteenth) >= 24
    assert all(10 <= c.dim <= 30 for c in fourteenth if c.family == "high_d")


def test_no_study_that_reads_trusted_readings_of_opened_splits_reads_the_fourteenth():
    # The fourteenth split is measured once after the rule is frozen: the studies that read the trusted dim of every
    # opened split (the interval's calibration table and local_bias through it, the oracle bound) must not count it.
    # (Measured since: the interval's calibration reads it as an opened split, validation §25.)
    from studies import dimension_oracle

    assert "fourteenth" not in dimension_oracle.OPENED


def test_the_module_imports_scipy_only_inside_the_samplers_that_need_it():
    # SciPy is not a runtime dependency of the package: building and sampling the split must not need it.
    code = (
        "import sys, numpy as np; import studies.dimension_suite14 as m; "
        "[spec[-1](spec[-2])(5, np.random.default_rng(0)) for spec in m.fourteenth_specs()]; "
        "print('scipy' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.strip() == "False"


def _steps(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.diff(points, axis=0), axis=1)


def test_curves_lie_where_they_claim_and_are_uniform_in_arc_length():
    tr = _latent("trefoil knot, arc-length uniform", n=4000)
    # The trefoil (sin t + 2 sin 2t, cos t - 2 cos 2t, -sin 3t): x^2 + y^2 = 5 - 4 cos 3t and z^2 = sin^2 3t, so
    # (x^2 + y^2 - 5)^2 = 16 (1 - z^2).
    assert np.allclose((tr[:, 0] ** 2 + tr[:, 1] ** 2 - 5) ** 2, 16 * (1 - tr[:, 2] ** 2), atol=1e-9)
    fi = _latent("fish curve + 1 %")
    t = np.linspace(0, 2 * math.pi, 7)
    assert np.allclose(epicycloid_xy(t)[[0, -1]], [[5 / 6, 0.0], [5 / 6, 0.0]])  # closed, a cusp at radius 5 / 6
    ep = _latent("epicycloid with 5 cusps + 5 %")
    r = np.hypot(ep[:, 0], ep[:, 1])
    assert r.min() >= 5 / 6 - 1e-9  # the cusps lie on the fixed circle (radius 5, scaled by 1 / 6)
    assert r.max() <= 7 / 6 + 1e-9
    hy = _latent("hypocycloid with 5 cusps + 5 %")
    r = np.hypot(hy[:, 0], hy[:, 1])
    assert r.max() <= 1 + 1e-9  # inside the fixed circle, touching it at the five cusps
    cusps = 2 * math.pi * np.arange(5) / 5
    assert np.allclose(hypocycloid_xy(cusps), np.stack([np.cos(cusps), np.sin(cusps)], axis=1))
    sc = _latent("scarabaeus + 1 %")
    theta = np.arctan2(sc[:, 1], sc[:, 0])
    rr = np.hypot(sc[:, 0], sc[:, 1])
    # r = 0.8 cos 2t - cos t at t = theta or theta + pi (r may be negative)
    here = 0.8 * np.cos(2 * theta) - np.cos(theta)
    opposite = 0.8 * np.cos(2 * theta) + np.cos(theta)  # r(theta + pi), read with the opposite sign
    assert np.minimum(np.abs(rr - here), np.abs(rr + opposite)).max() < 1e-9
    da = _latent("damped sine curve + 1 %")
    assert np.allclose(da[:, 1], 0.5 * np.exp(-da[:, 0] / 4) * np.sin(6 * da[:, 0]))
    el = _latent("flat ellipse, axes 1 and 0.08", n=20000)
    assert np.allclose(el[:, 0] ** 2 + (el[:, 1] / 0.08) ** 2, 1.0)
    # Uniform in arc length: the ends (|x| > 0.99, arc about 4 x 0.0177 of 4.04) hold about 1.8 % of the points;
    # uniform in the angle they would hold 9 %.
    assert float(np.mean(np.abs(el[:, 0]) > 0.99)) < 0.03
    # The fish curve: every point within a step of the finely tabulated curve, and the curve uniform in arc length
    # (a quarter of the length holds a quarter of the points).
    grid = fish_xy(np.linspace(0, 2 * math.pi, 200001))
    d, nearest = cKDTree(grid).query(fi)
    assert d.max() < 1e-4
    arc = np.concatenate([[0.0], np.cumsum(_steps(grid))])
    assert float(np.mean(arc[nearest] < arc[-1] / 4)) == pytest.approx(0.25, abs=0.06)


def test_surfaces_lie_where_they_claim():
    cp = _latent("complex parabola w = z^2 + 5 %")
    z = cp[:, 0] + 1j * cp[:, 1]
    assert np.allclose(cp[:, 2] + 1j * cp[:, 3], z * z)
    assert np.abs(z).max() <= 1.2
    cc = _latent("complex conic z1^2 + z2^2 = 1 + 1 %")
    z1, z2 = cc[:, 0] + 1j * cc[:, 1], cc[:, 2] + 1j * cc[:, 3]
    assert np.allclose(z1 * z1 + z2 * z2, 1.0)
    tu = _latent("torus of tube radius 0.3 + 0.15 cos 3u + 1 %")
    u = np.arctan2(tu[:, 1], tu[:, 0])
    assert np.allclose(np.hypot(np.hypot(tu[:, 0], tu[:, 1]) - 1, tu[:, 2]), 0.3 + 0.15 * np.cos(3 * u))
    ba = _latent("band with three half-twists + 5 %")
    u = np.arctan2(ba[:, 1], ba[:, 0])
    radial, height = np.hypot(ba[:, 0], ba[:, 1]) - 1, ba[:, 2]
    # the segment through the centre circle turns by three half-turns: (radial, height) along (cos 1.5u, sin 1.5u)
    assert np.allclose(radial * np.sin(1.5 * u) - height * np.cos(1.5 * u), 0.0, atol=1e-12)
    assert np.hypot(radial, height).max() <= 0.4 + 1e-12
    mh = _latent("Mexican-hat graph")
    r2 = mh[:, 0] ** 2 + mh[:, 1] ** 2
    assert np.allclose(mh[:, 2], 1.5 * (1 - r2) * np.exp(-r2))
    en = _latent("Enneper surface of order 2")
    assert np.isfinite(en).all()
    assert np.linalg.matrix_rank(en - en.mean(0)) == 3
    oc = _latent("octahedron surface", n=4000)
    assert np.allclose(np.abs(oc).sum(1), 1.0)
    assert np.allclose(np.mean(oc > 0, axis=0), 0.5, atol=0.03)  # every face equally likely


def test_densities_and_products_keep_their_promises():
    ca = _latent("cardioid-distribution 3-torus, rho 0.45", n=8000)
    assert np.allclose(np.hypot(ca[:, :3], ca[:, 3:]), 1.0)
    mu = np.random.default_rng(1532).uniform(-math.pi, math.pi, 3)
    rel = np.arctan2(ca[:, 3:], ca[:, :3]) - mu
    # The cardioid density (1 + 2 rho cos) / 2 pi has E cos = rho and E sin = 0.
    assert np.allclose(np.cos(rel).mean(0), 0.45, atol=0.03)
    assert np.allclose(np.sin(rel).mean(0), 0.0, atol=0.03)
    bl = _latent("Beta(3, 1.5) latitude on S^3 + 1 %", n=8000)
    assert np.allclose(np.linalg.norm(bl, axis=1), 1.0)
    assert float(((bl[:, 0] + 1) / 2).mean()) == pytest.approx(3 / 4.5, abs=0.01)  # Beta(3, 1.5) mean 2 / 3
    fu = _latent("Neal's funnel d=5, mild + 1 %", n=8000)
    assert float(np.std(fu[:, 0])) == pytest.approx(1.0, rel=0.05)
    assert float(np.var(fu[:, 1:])) == pytest.approx(math.exp(0.5), rel=0.08)  # E exp(v) = exp(1 / 2)
    cu = _latent("Haar U(4) characteristic polynomials", n=200)
    c = cu[:, :4] + 1j * cu[:, 4:]
    assert np.allclose(np.abs(c[:, 3]), 1.0)  # the constant term is the determinant: unit modulus
    # Self-reciprocal: for a unitary, c_(4-k) = conj(c_k) c_4 (with c_0 = 1).
    assert np.allclose(c[:, 2], np.conj(c[:, 0]) * c[:, 3])
    for row in c[:5]:
        assert np.allclose(np.abs(np.roots(np.concatenate([[1.0], row]))), 1.0)  # all roots on the unit circle
    ex = _latent("ex-Gaussian coordinates d=7, rate 1.5 + 5 %", n=8000)
    assert np.allclose(ex.mean(0), 1 / 1.5, atol=0.05)
    lo = _latent("Lomax(6) coordinates d=6 + 1 %", n=8000)
    assert lo.min() >= 0
    assert float(lo.mean()) == pytest.approx(1 / 5, rel=0.05)  # Lomax(shape a) has mean 1 / (a - 1)
    lg = _latent("Lagrangian Grassmannian U(3)/O(3) + 5 %", n=200)
    iu = np.triu_indices(3, 1)
    z = lg[:, :6] + 1j * lg[:, 6:]
    w = np.zeros((200, 3, 3), dtype=complex)
    w[:, np.arange(3), np.arange(3)] = z[:, :3]
    w[:, iu[0], iu[1]] = z[:, 3:] / math.sqrt(2)
    w[:, iu[1], iu[0]] = w[:, iu[0], iu[1]]
    assert np.allclose(w @ np.conj(np.swapaxes(w, 1, 2)), np.eye(3), atol=1e-10)  # symmetric and unitary
    rp = _latent("real projective space RP^12", n=200)
    assert np.allclose(rp[:, :13].sum(1), 1.0)  # trace of x x^T
    assert np.allclose((rp**2).sum(1), 1.0)  # a rank-one projector has Frobenius norm 1
    st = _latent("complex Stiefel V_2(C^5) + 1 %", n=200)
    q = st[:, :10].reshape(200, 5, 2) + 1j * st[:, 10:].reshape(200, 5, 2)
    assert np.allclose(np.conj(np.swapaxes(q, 1, 2)) @ q, np.eye(2), atol=1e-10)
    se = _latent("solid ellipsoid d=16, axes 1 to 0.5 + 5 %", n=4000)
    norm = np.linalg.norm(se / np.linspace(1, 0.5, 16), axis=1)
    assert norm.max() <= 1
    assert float(norm.mean()) == pytest.approx(16 / 17, abs=0.005)
    tb = _latent("trefoil knot x 3 Beta(2, 5) interval + 1 %", n=4000)
    assert float(tb[:, 3].mean()) == pytest.approx(3 * 2 / 7, abs=0.03)
    fs = _latent("fish curve x sphere of radius 0.5 + 5 %")
    assert np.allclose(np.linalg.norm(fs[:, 2:], axis=1), 0.5)
    cb = _latent("cardioid-distribution circle x ball B^3 of radius 0.8", n=4000)
    assert np.allclose(np.linalg.norm(cb[:, :2], axis=1), 1.0)
    assert float(cb[:, 0].mean()) == pytest.approx(0.45, abs=0.03)
    assert (np.linalg.norm(cb[:, 2:], axis=1) <= 0.8).all()
    at = _latent("torus of radii 1, 0.8, 0.65, 0.5 + 1 %")
    assert np.allclose(np.hypot(at[:, :4], at[:, 4:]), [1.0, 0.8, 0.65, 0.5])
    pc = _latent("complex parabola x circle of radius 0.6 + 5 %")
    assert np.allclose(np.linalg.norm(pc[:, 4:], axis=1), 0.6)
    ev = _latent("epicycloid x von Mises circle, kappa 1.5", n=4000)
    assert np.allclose(np.linalg.norm(ev[:, 2:], axis=1), 0.5)
    assert float(ev[:, 2].mean() / 0.5) == pytest.approx(iv(1, 1.5) / iv(0, 1.5), abs=0.03)  # von Mises(0, 1.5)
    sl = _latent("scarabaeus x Beta(3, 1.5) latitude on S^2 of radius 0.5 + 1 %")
    assert np.allclose(np.linalg.norm(sl[:, 2:], axis=1), 0.5)


def test_the_mixture_is_four_separated_clusters_of_unequal_weights():
    mix = _latent("separated four-cluster mixture d=8 + 5 %", n=2500)
    dist, idx = cKDTree(mix).query(mix, 21)
    graph = np.zeros((len(mix), len(mix)), dtype=bool)
    graph[np.repeat(np.arange(len(mix)), 20), idx[:, 1:].ravel()] = True
    count, label = connected_components(graph, directed=False)
    assert count == 4  # the 20-neighbour graph splits into the four clusters
    sizes = np.bincount(label)
    assert np.allclose(np.sort(sizes)[::-1] / len(mix), [0.4, 0.3, 0.2, 0.1], atol=0.03)
    widest = max(float(np.median(dist[label == k, 20])) for k in range(4))
    for k in range(4):  # separated: every gap wider than twice the widest cluster's median 20th-neighbour distance
        gap = cKDTree(mix[label != k]).query(mix[label == k])[0].min()
        assert gap > 2 * widest, k


@pytest.mark.parametrize("name", [c.name for c in suite("fourteenth")])
def test_every_cloud_has_its_stated_dimension(name: str) -> None:
    # The truth: at random points the sampler's Jacobian with respect to all its per-point draws has rank exactly
    # dim (a collapsed direction or an extra one would show as a singular value near 0 or one too many). No sampler
    # of this split rejects draws, so every cloud is checked, the network images included.
    cloud = next(c for c in suite("fourteenth") if c.name == name)
    rank = sampler_ranks(cloud)
    assert (rank == cloud.dim).all(), (name, np.unique(rank))
