"""The trusted-``dim`` suite's twelfth split (studies/dimension_suite12.py) generates what it claims, cheaply.

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

_latent = partial(latent, "twelfth")


def test_twelfth_split_is_new_and_follows_the_issue_family_list():
    twelfth = suite("twelfth")
    earlier = [c for c in suite() if c.split != "twelfth"]
    assert len(twelfth) == 43
    assert SPLITS[SPLITS.index("eleventh") + 1] == "twelfth"  # written after the eleventh
    assert SPLITS[SPLITS.index("twelfth") + 1] == "thirteenth"  # the thirteenth split was written after it
    assert len({c.name for c in suite()}) == len(suite())  # no name reused from an earlier split
    seeds = [c.seed for c in twelfth]
    assert len(set(seeds)) == len(seeds)
    assert all(1300 <= v < 1400 for v in seeds)
    assert not {c.seed for c in earlier} & set(seeds)
    assert [sum(c.noise == level for c in twelfth) for level in NOISE_LEVELS] == [13, 16, 14]
    for family, least in (("curve", 6), ("surface", 5), ("network", 5), ("density", 6), ("product", 5)):
        assert sum(c.family == family for c in twelfth) >= least, family
    assert {c.noise for c in twelfth if c.family == "curve"} == set(NOISE_LEVELS)
    assert {c.noise for c in twelfth if c.family == "surface"} == set(NOISE_LEVELS)
    assert sum(c.dim >= 10 for c in twelfth) >= 8
    assert min(c.dim for c in twelfth) == 1
    assert max(c.dim for c in twelfth) >= 24
    assert all(10 <= c.dim <= 30 for c in twelfth if c.family == "high_d")


def test_no_study_that_reads_trusted_readings_of_opened_splits_reads_the_twelfth():
    # The twelfth split is measured once after the rule is frozen: the studies that read the trusted dim of every
    # opened split (the interval's calibration table, the oracle bound) must not count it among them until then.
    # (Measured since: the interval's calibration reads it as an opened split, validation §25.)
    from studies import dimension_oracle

    assert "twelfth" not in dimension_oracle.OPENED


def test_the_module_imports_scipy_only_inside_the_samplers_that_need_it():
    # SciPy is not a runtime dependency of the package: building the suite must not need it.
    code = "import sys; import studies.dimension_suite12 as m; m.twelfth_specs(); print('scipy' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.strip() == "False"


def test_curves_lie_where_they_claim():
    se = _latent("Seiffert's spherical spiral, k 0.3 + 1 %")
    assert np.allclose(np.linalg.norm(se, axis=1), 1.0)
    sp = _latent("Newton's serpentine + 5 %")
    assert np.allclose(sp[:, 1], sp[:, 0] / (1 + sp[:, 0] ** 2))
    assert np.abs(sp[:, 0]).max() > 4  # the long arms (cot 0.2 = 4.93)
    ch = _latent("Chebyshev curve (T3, T4, T5), |t| <= 0.9")
    cheb = np.polynomial.chebyshev.chebval
    assert np.allclose(cheb(ch[:, 0], [0, 0, 0, 0, 1]), cheb(ch[:, 1], [0, 0, 0, 1]))  # T_4(T_3) = T_3(T_4)
    assert (np.abs(ch) <= 1 + 1e-12).all()
    ge = _latent("gear curve, 8 teeth + 5 %")
    angle = np.arctan2(ge[:, 1], ge[:, 0])
    assert np.allclose(np.hypot(ge[:, 0], ge[:, 1]), 1 + np.tanh(5 * np.sin(8 * angle)) / 5)
    be = _latent("bean curve")
    x, y = be[:, 0], be[:, 1]
    assert np.allclose(x**4 + x * x * y * y + y**4, x * (x * x + y * y))
    bu = _latent("butterfly curve + 1 %")
    assert np.isfinite(bu).all()
    assert np.linalg.matrix_rank(bu - bu.mean(0)) == 2
    fr = _latent("Freeth's nephroid + 1 %", n=4000)
    # |r| = |1 + 2 sin(t / 2)| <= 1 exactly when sin(t / 2) <= 0, half the draws (the inner loop, where r < 0, and the
    # arcs joining it); the outer curve reaches radius 3.
    assert float(np.mean(np.hypot(fr[:, 0], fr[:, 1]) <= 1.0)) == pytest.approx(0.5, abs=0.03)
    assert np.hypot(fr[:, 0], fr[:, 1]).max() == pytest.approx(3.0, abs=1e-3)


def test_surfaces_lie_where_they_claim():
    dd = _latent("ding-dong surface + 1 %")
    assert np.allclose(dd[:, 0] ** 2 + dd[:, 1] ** 2, dd[:, 2] ** 2 * (1 - dd[:, 2]))
    co = _latent("corkscrew surface, shift 0.25 + 5 %")
    u = np.arctan2(co[:, 1], co[:, 0])  # cos v >= 0: the azimuth is u itself
    assert np.allclose(co[:, 0] ** 2 + co[:, 1] ** 2 + (co[:, 2] - 0.25 * u) ** 2, 1.0)
    hh = _latent("hyperbolic helicoid, twist 3")
    assert (np.linalg.norm(hh, axis=1) < 1).all()
    et = _latent("elliptic torus, section turning 3 half-turns + 5 %")
    u = np.arctan2(et[:, 1], et[:, 0])
    rho, z, al = np.hypot(et[:, 0], et[:, 1]) - 2.0, et[:, 2], 1.5 * u
    section = ((rho * np.cos(al) + z * np.sin(al)) / 0.8) ** 2 + ((z * np.cos(al) - rho * np.sin(al)) / 0.3) ** 2
    assert np.allclose(section, 1.0)  # the tube's section, turned back by 3 u / 2, is the ellipse of axes 0.8, 0.3
    le = _latent("lemniscate of revolution + 1 %")
    r2 = (le**2).sum(1)
    assert np.allclose(r2**2, le[:, 0] ** 2 - le[:, 1] ** 2 - le[:, 2] ** 2)  # (x^2 + y^2)^2 = x^2 - y^2, revolved
    for name in ("Richmond's minimal surface + 1 %", "tranguloid trefoil"):
        surf = _latent(name)
        assert np.isfinite(surf).all(), name
        assert np.linalg.matrix_rank(surf - surf.mean(0)) == 3, name


def test_densities_and_products_keep_their_promises():
    pb = _latent("hyperbolic-uniform Poincare ball d=3 + 1 %", n=8000)
    rho = 2 * np.arctanh(np.linalg.norm(pb, axis=1))  # the hyperbolic radius
    assert rho.max() <= 2.0 + 1e-9
    # Uniform in hyperbolic volume: P(rho <= 1) = (sinh 2 / 4 - 1 / 2) / (sinh 4 / 4 - 1) = 0.070 (0.125 in volume).
    assert float(np.mean(rho <= 1)) == pytest.approx(0.0699, abs=0.012)
    tc = _latent("Student-t copula d=4, rho 0.6, 2 dof", n=8000)
    assert ((tc > 0) & (tc < 1)).all()
    assert np.allclose(tc.mean(0), 0.5, atol=0.02)
    assert np.allclose(np.quantile(tc, [0.1, 0.9], axis=0), [[0.1] * 4, [0.9] * 4], atol=0.02)  # uniform margins
    # Tail dependence: both of two coordinates in their top 2 % far more often than independence (0.0004) allows.
    assert float(np.mean((tc[:, 0] > 0.98) & (tc[:, 1] > 0.98))) > 0.005
    vm = _latent("von Mises-Fisher density on S^6, kappa 4 + 5 %", n=8000)
    assert np.allclose(np.linalg.norm(vm, axis=1), 1.0)  # on S^6 in R^7
    # The von Mises-Fisher mean resultant length on S^6: E[x_0] = I_{7/2}(kappa) / I_{5/2}(kappa) = 0.468 at kappa 4
    # (0 for the uniform sphere); the density exp(4 x_0) falls 3,000-fold from the mode to the antipode.
    assert float(vm[:, 0].mean()) == pytest.approx(float(iv(3.5, 4.0) / iv(2.5, 4.0)), abs=0.012)
    assert np.allclose(vm[:, 1:].mean(0), 0.0, atol=0.03)  # isotropic about the mode
    assert np.allclose(vm[:, 1:].var(0), (1 - (vm[:, 0] ** 2).mean()) / 6, rtol=0.1)
    rc = _latent("raised-cosine coordinates d=5 + 1 %", n=8000)
    assert (np.abs(rc) <= 1).all()
    assert float(rc.var()) == pytest.approx(1 / 3 - 2 / math.pi**2, rel=0.05)
    st = _latent("solid torus, radii 1 and 0.5")
    assert ((np.hypot(st[:, 0], st[:, 1]) - 1) ** 2 + st[:, 2] ** 2 <= 0.25 + 1e-12).all()
    for name, k, var in (
        ("LKJ 4x4 correlation matrices, eta 2 + 1 %", 4, 1 / 7),
        ("LKJ 7x7 correlation matrices, eta 3", 7, 1 / 12),
    ):
        off = _latent(name, n=4000)
        mats = np.tile(np.eye(k), (len(off), 1, 1))
        iu = np.triu_indices(k, 1)
        mats[:, iu[0], iu[1]] = off
        mats[:, iu[1], iu[0]] = off
        assert (np.linalg.eigvalsh(mats)[:, 0] > -1e-12).all(), name  # correlation matrices
        # LKJ(eta): every correlation is 2 Beta(b, b) - 1 with b = eta - 1 + k / 2, of variance 1 / (2 b + 1).
        assert float(off.var()) == pytest.approx(var, rel=0.08), name
    bp = _latent("beta-prime(3, 4) coordinates d=7", n=8000)
    assert (bp > 0).all()
    assert float(bp.mean()) == pytest.approx(1.0, abs=0.04)  # a / (b - 1)
    for name, k in (("complex projective space CP^6", 7), ("CP^2 x S^2", 3)):
        flat = _latent(name, n=200)[:, : k * k]
        iu = np.triu_indices(k, 1)
        h = np.zeros((200, k, k), dtype=complex)
        h[:, np.arange(k), np.arange(k)] = flat[:, :k]
        m = len(iu[0])
        h[:, iu[0], iu[1]] = (flat[:, k : k + m] + 1j * flat[:, k + m :]) / math.sqrt(2)
        h[:, iu[1], iu[0]] = np.conj(h[:, iu[0], iu[1]])
        assert np.allclose(h @ h, h), name  # projectors
        assert np.allclose(np.trace(h, axis1=1, axis2=2), 1.0), name  # of rank one
        assert np.allclose(np.linalg.norm(flat, axis=1), 1.0), name  # the embedding is isometric (|P|_F = 1)
    cs = _latent("CP^2 x S^2")
    assert np.allclose(np.linalg.norm(cs[:, 9:], axis=1), 1.0)
    ps = _latent("S^5 x T^2 x [0,2]^2 + 1 %")
    assert np.allclose(np.linalg.norm(ps[:, :6], axis=1), 1.0)
    assert np.allclose(np.hypot(ps[:, 6:8], ps[:, 8:10]), 1.0)  # the torus: cosines, then sines
    assert ((ps[:, 10:] >= 0) & (ps[:, 10:] <= 2)).all()
    mix = _latent("separated Gaussian mixture d=11, 4 unequal comp. + 5 %", n=4000)
    dist, idx = cKDTree(mix).query(mix, 21)
    graph = np.zeros((len(mix), len(mix)), dtype=bool)
    graph[np.repeat(np.arange(len(mix)), 20), idx[:, 1:].ravel()] = True
    count, label = connected_components(graph, directed=False)
    assert count == 4  # the 20-neighbour graph splits into the four clusters
    sizes = np.bincount(label)
    order = np.argsort(-sizes)
    assert np.allclose(sizes[order] / len(mix), [0.4, 0.25, 0.2, 0.15], atol=0.03)  # unequal weights
    scales = [float(mix[label == k].std(0).mean()) for k in order]
    assert np.allclose(scales, [1.0, 0.5, 0.7, 0.85], rtol=0.1)  # unequal scales, per axis
    widest = max(float(np.median(dist[label == k, 20])) for k in range(4))
    for k in range(4):  # separated: every gap wider than twice the widest cluster's median 20th-neighbour distance
        gap = cKDTree(mix[label != k]).query(mix[label == k])[0].min()
        assert gap > 2 * widest, k
    pd = _latent("hyperbolic-uniform Poincare disc x circle + 1 %")
    assert (np.linalg.norm(pd[:, :2], axis=1) <= math.tanh(1.0) + 1e-12).all()
    assert np.allclose(np.linalg.norm(pd[:, 2:], axis=1), 0.8)


@pytest.mark.parametrize("name", [c.name for c in suite("twelfth")])
def test_every_cloud_has_its_stated_dimension(name: str) -> None:
    # The truth: at random points the sampler's Jacobian with respect to all its per-point draws has rank exactly
    # dim (a collapsed direction or an extra one would show as a singular value near 0 or one too many). No sampler
    # of this split rejects draws, so every cloud is checked, the network images included.
    cloud = next(c for c in suite("twelfth") if c.name == name)
    rank = sampler_ranks(cloud)
    assert (rank == cloud.dim).all(), (name, np.unique(rank))
