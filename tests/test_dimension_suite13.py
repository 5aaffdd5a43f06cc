"""The trusted-``dim`` suite's thirteenth split (studies/dimension_suite13.py) generates what it claims, cheaply.

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

from studies.dimension_suite import NOISE_LEVELS, SPLITS, suite
from studies.dimension_suite13 import meander_xy

_latent = partial(latent, "thirteenth")


def test_thirteenth_split_is_new_and_follows_the_issue_family_list():
    thirteenth = suite("thirteenth")
    earlier = [c for c in suite() if c.split != "thirteenth"]
    assert len(thirteenth) == 43
    assert SPLITS[SPLITS.index("twelfth") + 1] == "thirteenth"  # written after the twelfth
    assert SPLITS[SPLITS.index("thirteenth") + 1] == "fourteenth"  # the fourteenth split was written after it
    assert len({c.name for c in suite()}) == len(suite())  # no name reused from an earlier split
    seeds = [c.seed for c in thirteenth]
    assert len(set(seeds)) == len(seeds)
    assert all(1400 <= v < 1500 for v in seeds)
    assert not {c.seed for c in earlier} & set(seeds)
    assert [sum(c.noise == level for c in thirteenth) for level in NOISE_LEVELS] == [13, 16, 14]
    for family, least in (("curve", 6), ("surface", 5), ("network", 5), ("density", 6), ("product", 5)):
        assert sum(c.family == family for c in thirteenth) >= least, family
    assert {c.noise for c in thirteenth if c.family == "curve"} == set(NOISE_LEVELS)
    assert {c.noise for c in thirteenth if c.family == "surface"} == set(NOISE_LEVELS)
    assert sum(c.dim >= 10 for c in thirteenth) >= 8
    assert min(c.dim for c in thirteenth) == 1
    assert max(c.dim for c in thirteenth) >= 24
    assert all(10 <= c.dim <= 30 for c in thirteenth if c.family == "high_d")


def test_no_study_that_reads_trusted_readings_of_opened_splits_reads_the_thirteenth():
    # The thirteenth split is measured once after the rule is frozen: the studies that read the trusted dim of every
    # opened split (the interval's calibration table and local_bias through it, the oracle bound) must not count it.
    # (Measured since: the interval's calibration reads it as an opened split, validation §25.)
    from studies import dimension_oracle

    assert "thirteenth" not in dimension_oracle.OPENED


def test_the_module_imports_scipy_only_inside_the_samplers_that_need_it():
    # SciPy is not a runtime dependency of the package: building and sampling the split must not need it.
    code = (
        "import sys, numpy as np; import studies.dimension_suite13 as m; "
        "[spec[-1](spec[-2])(5, np.random.default_rng(0)) for spec in m.thirteenth_specs()]; "
        "print('scipy' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.strip() == "False"


def _arc_length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def test_curves_lie_where_they_claim():
    me = _latent("river meander, heading 1.5 sin", n=4000)
    assert np.ptp(me[:, 0]) > 3 * np.ptp(me[:, 1])  # advances along x, bends across it
    # The closed form is the sine-generated curve: unit speed, heading 1.5 sin(2 pi s / 4) (finite differences).
    arc = np.linspace(0.0, 12.0, 200001)
    step = np.diff(meander_xy(arc, 1.5, 4.0), axis=0) / np.diff(arc)[:, None]
    mid = (arc[1:] + arc[:-1]) / 2
    assert np.allclose(np.linalg.norm(step, axis=1), 1.0, atol=1e-7)
    assert np.allclose(np.arctan2(step[:, 1], step[:, 0]), 1.5 * np.sin(2 * math.pi * mid / 4), atol=1e-7)
    assert np.allclose(meander_xy(me[:1, 0] * 0, 1.5, 4.0), 0.0)  # starts at the origin
    ca = _latent("Cayley's sextic + 1 %", n=4000)
    r, x = np.hypot(ca[:, 0], ca[:, 1]), ca[:, 0]
    # Cayley's sextic r = 4 a cos^3(t / 3) is 4 (x^2 + y^2 - a x)^3 = 27 a^2 (x^2 + y^2)^2; here a = 1 / 4.
    assert np.allclose(4 * (r * r - x / 4) ** 3, 27 / 16 * r**4, atol=1e-12)
    # Uniform in arc length (3 pi / 2 in all): the arc within 0.01 of the origin (length 0.02) holds 0.4 % of the
    # points; uniform in t it would hold 14 %.
    assert float(np.mean(r < 0.01)) < 0.01
    te = _latent("teardrop curve + 5 %")
    assert np.allclose(te[:, 1] ** 2, (1 - te[:, 0] ** 2) * ((1 - te[:, 0]) / 2) ** 2)  # y = sin t sin^2(t / 2)
    du = _latent("dumbbell curve + 1 %")
    assert np.allclose(du[:, 1] ** 2, du[:, 0] ** 4 * (1 - du[:, 0] ** 2))
    he = _latent("heart curve + 5 %")
    assert np.abs(he[:, 0]).max() <= 1 + 1e-12
    st = _latent("Steinmetz curve, radii 1 and 1.3")
    assert np.allclose(st[:, 0] ** 2 + st[:, 1] ** 2, 1.0)
    assert np.allclose(st[:, 0] ** 2 + st[:, 2] ** 2, 1.69)
    assert np.abs(st[:, 2]).min() >= math.sqrt(0.69) - 1e-12  # two loops, 2 sqrt(0.69) = 1.66 apart
    assert 0.4 < float(np.mean(st[:, 2] > 0)) < 0.6
    sq = _latent("squircle x^4 + y^4 = 1 + 5 %")
    assert np.allclose(sq[:, 0] ** 4 + sq[:, 1] ** 4, 1.0)
    ra = _latent("rational curve of degree 4 in R^12", n=2000)
    assert np.isfinite(ra).all()
    assert np.linalg.norm(ra, axis=1).max() < 20  # bounded


def test_surfaces_lie_where_they_claim():
    pi = _latent("pillow, height 0.5")
    assert np.allclose(pi[:, 2] ** 2, 0.25 * (1 - pi[:, 0] ** 2) * (1 - pi[:, 1] ** 2))
    ho = _latent("Hopf torus over a wavy latitude + 5 %")
    assert np.allclose(np.linalg.norm(ho, axis=1), 1.0)  # on S^3
    # The Hopf map (z1, z2) -> 2 z1 conj(z2): its height |z1|^2 - |z2|^2 = cos(theta), theta = pi/2 + 0.6 sin(3 phi).
    z1, z2 = ho[:, 0] + 1j * ho[:, 1], ho[:, 2] + 1j * ho[:, 3]
    phi = np.angle(z1 * np.conj(z2))
    assert np.allclose(np.abs(z1) ** 2 - np.abs(z2) ** 2, np.cos(math.pi / 2 + 0.6 * np.sin(3 * phi)), atol=1e-9)
    va = _latent("vase, radius 1 + 0.4 sin 2z + 1 %")
    assert np.allclose(np.hypot(va[:, 0], va[:, 1]), 1 + 0.4 * np.sin(2 * va[:, 2]))
    la = _latent("Lagrangian flat torus in S^5")
    pairs = la[:, 0::2] + 1j * la[:, 1::2]
    assert np.allclose(np.abs(pairs), 1 / math.sqrt(3))
    assert np.allclose(np.prod(pairs, axis=1), 3**-1.5)  # e^{iu} e^{iv} e^{-i(u+v)} = 1
    su = _latent("Sudanese Moebius band + 1 %")
    assert np.allclose(np.linalg.norm(su, axis=1), 1.0)
    um = _latent("umbilic torus + 1 %")
    assert np.isfinite(um).all()
    assert np.hypot(um[:, 0], um[:, 1]).min() >= 7 - 3 - 1e-9  # a tube of deltoid section about the circle of radius 7
    cr = _latent("crescent + 5 %")
    assert np.isfinite(cr).all()
    assert np.linalg.matrix_rank(cr - cr.mean(0)) == 3


def test_densities_and_products_keep_their_promises():
    mb = _latent("mixed Beta coordinates d=7", n=8000)
    ab = np.random.default_rng(1431).uniform(0.8, 3.5, (2, 7))
    assert np.allclose(mb.mean(0), ab[0] / ab.sum(0), atol=0.015)  # each coordinate its own Beta(a, b)
    assert np.ptp(ab[0] / ab.sum(0)) > 0.2  # and they differ
    vm = _latent("sine-skewed von Mises 4-torus, kappa 2 + 1 %", n=8000)
    assert np.allclose(np.hypot(vm[:, :4], vm[:, 4:]), 1.0)
    mu = np.random.default_rng(1432).uniform(-math.pi, math.pi, 4)
    rel = np.angle(np.exp(1j * (np.arctan2(vm[:, 4:], vm[:, :4]) - mu)))
    # Concentrated about its mode (von Mises, kappa 2: E cos = I_1(2) / I_0(2) = 0.698) and skewed: E sin > 0.
    assert np.allclose(np.cos(rel).mean(0), 0.698, atol=0.03)
    assert (np.sin(rel).mean(0) > 0.15).all()
    co = _latent("uniform solid cone in R^4 + 1 %", n=8000)
    assert (np.linalg.norm(co[:, 1:], axis=1) <= co[:, 0] + 1e-12).all()
    assert float(np.mean(co[:, 0] <= 0.5)) == pytest.approx(0.5**4, abs=0.01)  # uniform: P(x_0 <= h) = h^4
    gu = _latent("GUE 5x5 eigenvalues", n=4000)
    assert (np.diff(gu, axis=1) > 0).all()  # sorted, never equal
    assert float((gu**2).sum(1).mean()) == pytest.approx(25, rel=0.05)  # E tr H^2 = k^2 (density exp(-tr H^2 / 2))
    sun = _latent("Haar special unitary SU(3) + 5 %", n=200)
    u = sun[:, :9].reshape(200, 3, 3) + 1j * sun[:, 9:].reshape(200, 3, 3)
    assert np.allclose(u @ np.conj(np.swapaxes(u, 1, 2)), np.eye(3), atol=1e-10)
    assert np.allclose(np.linalg.det(u), 1.0)
    hy = _latent("wrapped normal on hyperbolic 3-space, sigma 0.7 + 1 %")
    assert np.allclose(hy[:, 0] ** 2 - (hy[:, 1:] ** 2).sum(1), 1.0)
    assert (hy[:, 0] >= 1).all()
    se = _latent("semicircle (Beta(1.5, 1.5)) coordinates d=9", n=8000)
    assert (np.abs(se) <= 1).all()
    assert float(se.var()) == pytest.approx(0.25, rel=0.05)  # the semicircle law of radius 1 has variance 1 / 4
    gr = _latent("complex Grassmannian G_C(2, 5) + 1 %", n=200)
    iu = np.triu_indices(5, 1)
    h = np.zeros((200, 5, 5), dtype=complex)
    h[:, np.arange(5), np.arange(5)] = gr[:, :5]
    h[:, iu[0], iu[1]] = (gr[:, 5:15] + 1j * gr[:, 15:]) / math.sqrt(2)
    h[:, iu[1], iu[0]] = np.conj(h[:, iu[0], iu[1]])
    assert np.allclose(h @ h, h)  # projectors
    assert np.allclose(np.trace(h, axis1=1, axis2=2), 2.0)  # of rank two
    l4 = _latent("l_4 ball d=14", n=4000)
    norm = (l4**4).sum(1) ** 0.25
    assert norm.max() <= 1
    assert float(norm.mean()) == pytest.approx(14 / 15, abs=0.005)  # uniform: P(|x|_4 <= r) = r^14
    spd = _latent("log-Euclidean SPD 5x5 matrices + 5 %", n=200)
    m = np.zeros((200, 5, 5))
    m[:, np.arange(5), np.arange(5)] = spd[:, :5]
    m[:, iu[0], iu[1]] = spd[:, 5:] / math.sqrt(2)
    m[:, iu[1], iu[0]] = m[:, iu[0], iu[1]]
    assert (np.linalg.eigvalsh(m) > 0).all()  # positive definite
    ct = _latent("Cayley's sextic x Beta(2, 3) interval + 1 %", n=4000)
    assert ((ct[:, 2] >= 0) & (ct[:, 2] <= 1.5)).all()
    assert float(ct[:, 2].mean()) == pytest.approx(1.5 * 0.4, abs=0.02)
    ts = _latent("teardrop curve x sphere of radius 0.8 + 5 %")
    assert np.allclose(np.linalg.norm(ts[:, 2:], axis=1), 0.8)
    sss = _latent("S^2 x S^3 x S^4 + 1 %")
    for lo, hi in ((0, 3), (3, 7), (7, 12)):
        assert np.allclose(np.linalg.norm(sss[:, lo:hi], axis=1), 1.0)
    cc = _latent("solid 3-cone x circle of radius 0.8")
    assert (np.linalg.norm(cc[:, 1:3], axis=1) <= cc[:, 0] + 1e-12).all()
    assert np.allclose(np.linalg.norm(cc[:, 3:], axis=1), 0.8)
    sd = _latent("Steinmetz curve x disc of radius 0.7 + 5 %")
    assert np.allclose(sd[:, 0] ** 2 + sd[:, 2] ** 2, 1.69)
    assert (np.linalg.norm(sd[:, 3:], axis=1) <= 0.7).all()
    dv = _latent("dumbbell curve x von Mises circle, kappa 2", n=4000)
    assert np.allclose(np.linalg.norm(dv[:, 2:], axis=1), 0.5)
    assert float(dv[:, 2].mean() / 0.5) == pytest.approx(0.698, abs=0.03)  # von Mises(0, 2) angle
    mix = _latent("separated Gaussian / ball / Gaussian mixture d=6 + 5 %", n=2500)
    dist, idx = cKDTree(mix).query(mix, 21)
    graph = np.zeros((len(mix), len(mix)), dtype=bool)
    graph[np.repeat(np.arange(len(mix)), 20), idx[:, 1:].ravel()] = True
    count, label = connected_components(graph, directed=False)
    assert count == 3  # the 20-neighbour graph splits into the three clusters
    sizes = np.bincount(label)
    order = np.argsort(-sizes)
    assert np.allclose(sizes[order] / len(mix), [0.5, 0.3, 0.2], atol=0.03)  # unequal weights
    q, _ = np.linalg.qr(np.random.default_rng(1433).standard_normal((6, 3)))
    ball = mix[label == order[1]]  # the 30 % cluster: the uniform ball of radius 2.5 about the second centre
    assert np.linalg.norm(ball - 9 * q[:, 1], axis=1).max() <= 2.5 + 1e-12
    widest = max(float(np.median(dist[label == k, 20])) for k in range(3))
    for k in range(3):  # separated: every gap wider than twice the widest cluster's median 20th-neighbour distance
        gap = cKDTree(mix[label != k]).query(mix[label == k])[0].min()
        assert gap > 2 * widest, k


@pytest.mark.parametrize("name", [c.name for c in suite("thirteenth")])
def test_every_cloud_has_its_stated_dimension(name: str) -> None:
    # The truth: at random points the sampler's Jacobian with respect to all its per-point draws has rank exactly
    # dim (a collapsed direction or an extra one would show as a singular value near 0 or one too many). No sampler
    # of this split rejects draws, so every cloud is checked, the network images included.
    cloud = next(c for c in suite("thirteenth") if c.name == name)
    rank = sampler_ranks(cloud)
    assert (rank == cloud.dim).all(), (name, np.unique(rank))
