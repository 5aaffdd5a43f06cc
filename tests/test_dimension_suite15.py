"""The trusted-``dim`` suite's fifteenth split (studies/dimension_suite15.py) generates what it claims, cheaply.

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
from studies.dimension_suite15 import pentagon_xy, talbot_xy

_latent = partial(latent, "fifteenth")


def test_fifteenth_split_is_new_and_follows_the_issue_family_list():
    fifteenth = suite("fifteenth")
    earlier = [c for c in suite() if c.split != "fifteenth"]
    assert len(fifteenth) == 43
    assert SPLITS[SPLITS.index("fourteenth") + 1] == "fifteenth"  # written after the fourteenth
    assert SPLITS[SPLITS.index("fifteenth") + 1] == "sixteenth"  # the sixteenth split was written after it
    assert len({c.name for c in suite()}) == len(suite())  # no name reused from an earlier split
    seeds = [c.seed for c in fifteenth]
    assert len(set(seeds)) == len(seeds)
    assert all(1600 <= v < 1700 for v in seeds)
    assert not {c.seed for c in earlier} & set(seeds)
    assert [sum(c.noise == level for c in fifteenth) for level in NOISE_LEVELS] == [13, 16, 14]
    for family, least in (("curve", 6), ("surface", 5), ("network", 5), ("density", 6), ("product", 5)):
        assert sum(c.family == family for c in fifteenth) >= least, family
    assert {c.noise for c in fifteenth if c.family == "curve"} == set(NOISE_LEVELS)
    assert {c.noise for c in fifteenth if c.family == "surface"} == set(NOISE_LEVELS)
    assert sum(c.family == "curve" and c.noise > 0 for c in fifteenth) >= 6  # noisy curves: where the error is
    assert sum(c.dim >= 10 for c in fifteenth) >= 8
    assert min(c.dim for c in fifteenth) == 1
    assert max(c.dim for c in fifteenth) >= 24
    assert all(10 <= c.dim <= 30 for c in fifteenth if c.family == "high_d")


def test_no_study_that_reads_trusted_readings_of_opened_splits_reads_the_fifteenth():
    # The fifteenth split is measured once after the rule is frozen: the studies that read the trusted dim of every
    # opened split (the interval's calibration table and local_bias through it, the oracle bound) must not count it.
    # (Measured since: the interval's calibration reads it as an opened split, validation §25.)
    from studies import dimension_oracle

    assert "fifteenth" not in dimension_oracle.OPENED


def test_the_module_imports_scipy_only_inside_the_samplers_that_need_it():
    # SciPy is not a runtime dependency of the package: building and sampling the split must not need it.
    code = (
        "import sys, numpy as np; import studies.dimension_suite15 as m; "
        "[spec[-1](spec[-2])(5, np.random.default_rng(0)) for spec in m.fifteenth_specs()]; "
        "print('scipy' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.strip() == "False"


def test_curves_lie_where_they_claim():
    kn = _latent("(2, 7) torus knot + 1 %", n=4000)
    ring = np.hypot(kn[:, 0], kn[:, 1])
    assert np.allclose(np.hypot(ring - 1, kn[:, 2]), 0.4)  # on the torus of radii 1 and 0.4
    # (2, 7): the poloidal angle is 7 / 2 times the toroidal one (mod pi, as the knot goes round twice)
    phi, psi = np.arctan2(kn[:, 1], kn[:, 0]), np.arctan2(kn[:, 2], ring - 1)
    assert np.allclose(np.sin(2 * psi - 7 * phi), 0.0, atol=1e-6)
    tr = _latent("trisectrix of Maclaurin + 5 %")
    x, y = tr[:, 0], tr[:, 1]
    assert np.allclose(2 * x * (x * x + y * y), 3 * x * x - y * y)
    assert (x > -0.5).all()  # the asymptote x = -1 / 2 is not reached
    ta = _latent("Talbot's curve + 1 %")
    grid = talbot_xy(np.linspace(0, 2 * math.pi, 200001))
    assert cKDTree(grid).query(ta)[0].max() < 1e-4
    bi = _latent("bifolium + 5 %")
    x, y = bi[:, 0], bi[:, 1]
    assert np.allclose((x * x + y * y) ** 2, 2 * x * y * y)  # r = 2 sin^2 t cos t in Cartesian form
    pe = _latent("regular pentagon", n=5000)
    apothem = math.cos(math.pi / 5)
    normals = np.stack([np.cos(np.pi * (2 * np.arange(5) + 1) / 5), np.sin(np.pi * (2 * np.arange(5) + 1) / 5)], axis=1)
    assert np.allclose((pe @ normals.T).max(1), apothem)  # on the boundary: the largest support value is the apothem
    assert np.allclose(np.bincount(np.argmax(pe @ normals.T, axis=1), minlength=5) / 5000, 0.2, atol=0.03)
    assert np.allclose(pentagon_xy(np.array([0.0, 5.0])), [[1.0, 0.0], [1.0, 0.0]])  # closed
    ch = _latent("polygonal chain of 24 vertices in R^16 + 1 %")
    assert ch.shape[1] == 16
    sc = _latent("semicubical parabola, t in [-1, 1]", n=4000)
    assert np.allclose(sc[:, 0] ** 3, sc[:, 1] ** 2)
    # Uniform in arc length: the upper branch holds half the points.
    assert float(np.mean(sc[:, 1] > 0)) == pytest.approx(0.5, abs=0.03)


def test_surfaces_lie_where_they_claim():
    st = _latent("Steinbach screw")
    v = np.mod(np.arctan2(st[:, 1], st[:, 0]), math.pi)  # (u cos v, u sin v) with v in [0, pi) and u signed
    u = np.hypot(st[:, 0], st[:, 1]) * np.sign(st[:, 1] + 1e-300 * np.sign(st[:, 0]))
    assert np.allclose(st[:, 2], v * np.cos(u), atol=1e-9)
    kt = _latent("tube about the (2, 5) torus knot + 1 %", n=2000)
    t = np.linspace(0, 2 * math.pi, 100001)
    ring = 1 + 0.45 * np.cos(5 * t)
    core = np.stack([ring * np.cos(2 * t), ring * np.sin(2 * t), 0.45 * np.sin(5 * t)], axis=1)
    assert np.allclose(cKDTree(core).query(kt)[0], 0.12, atol=1e-3)  # every point 0.12 from the knot
    cone = _latent("cone over a three-lobed curve")
    z = cone[:, 2]
    rho = np.hypot(cone[:, 0], cone[:, 1]) / z
    assert np.allclose(rho, 1 + 0.35 * np.cos(3 * np.arctan2(cone[:, 1], cone[:, 0])))
    assert z.min() >= 0.2 - 1e-12
    et = _latent("torus of elliptic section 0.5 x 0.25 + 1 %")
    assert np.allclose(((np.hypot(et[:, 0], et[:, 1]) - 1) / 0.5) ** 2 + (et[:, 2] / 0.25) ** 2, 1.0)
    cr = _latent("Cassini oval of revolution, b = 1.1 + 1 %", n=4000)
    x, rr = cr[:, 0], np.hypot(cr[:, 1], cr[:, 2])
    assert np.allclose((x * x + rr * rr) ** 2 - 2 * (x * x - rr * rr), 1.1**4 - 1)
    # Area-uniform: the two halves (x > 0, x < 0) hold equal shares, and the ends |x| > 1 hold their area's share.
    assert float(np.mean(x > 0)) == pytest.approx(0.5, abs=0.03)
    en = _latent("Enneper surface of order 3 + 5 %")
    assert np.isfinite(en).all()
    assert np.linalg.matrix_rank(en - en.mean(0)) == 3


def test_the_associate_surface_has_the_catenoid_metric_and_one_sheet():
    # Every member of the catenoid-helicoid family is isometric to the catenoid: with X(u, v) the surface,
    # |X_u|^2 = |X_v|^2 = cosh^2 v and X_u . X_v = 0. The replayed draws give the two partial derivatives.
    from studies.dimension_suite15 import associate_surface

    sample = associate_surface(math.pi / 4, 1.2)(0)
    rng = np.random.default_rng(0)
    u, v = rng.uniform(-math.pi, math.pi, 200), rng.uniform(-1.2, 1.2, 200)

    class Fixed:
        def __init__(self, du: float = 0.0, dv: float = 0.0) -> None:
            self.draws = iter([u + du, v + dv])

        def uniform(self, *args: object) -> np.ndarray:
            return next(self.draws)

    eps = 1e-6
    base = sample(200, Fixed())  # type: ignore[arg-type]
    xu = (sample(200, Fixed(du=eps)) - base) / eps  # type: ignore[arg-type]
    xv = (sample(200, Fixed(dv=eps)) - base) / eps  # type: ignore[arg-type]
    assert np.allclose((xu**2).sum(1), np.cosh(v) ** 2, rtol=1e-4)
    assert np.allclose((xv**2).sum(1), np.cosh(v) ** 2, rtol=1e-4)
    assert np.allclose((xu * xv).sum(1), 0.0, atol=1e-4)
    pts = sample(3000, np.random.default_rng(1))
    assert np.abs(pts[:, 2]).max() <= (math.pi + 1.2) / math.sqrt(2) + 1e-9
    graph = cKDTree(pts).query(pts, 11)[1]
    adjacency = np.zeros((3000, 3000), dtype=bool)
    adjacency[np.repeat(np.arange(3000), 10), graph[:, 1:].ravel()] = True
    assert connected_components(adjacency, directed=False)[0] == 1  # one sheet


def test_densities_and_products_keep_their_promises():
    vm = _latent("von Mises-Fisher mixture on S^2, weights 0.5 / 0.3 / 0.2 + 1 %", n=4000)
    assert np.allclose(np.linalg.norm(vm, axis=1), 1.0)
    di = _latent("Dirichlet(0.7, 1, 1.5, 2, 3, 4) simplex d=5", n=8000)
    assert np.allclose(di.sum(1), 1.0)
    assert np.allclose(di.mean(0), np.array([0.7, 1, 1.5, 2, 3, 4]) / 12.2, atol=0.005)
    bv = _latent("bimodal von Mises 4-torus, kappa 3 + 5 %", n=4000)
    assert np.allclose(np.hypot(bv[:, :4], bv[:, 4:]), 1.0)
    sb = _latent("sorted Beta(2, 3) samples d=3", n=8000)
    assert (np.diff(sb, axis=1) >= 0).all()
    assert float(sb.mean()) == pytest.approx(2 / 5, abs=0.01)  # the mean of the sorted draws is Beta(2, 3)'s mean
    fr = _latent("Frank copula pairs d=4, theta 5 + 1 %", n=8000)
    assert np.allclose(fr.mean(0), 0.5, atol=0.02)  # uniform marginals
    assert np.allclose(np.sort(fr[:, 2])[[800, 4000, 7200]], [0.1, 0.5, 0.9], atol=0.02)
    # Frank's copula of theta 5 has Spearman rho 1 - 12 (D1 - D2) / theta ~ 0.64.
    rho = np.corrcoef(fr[:, 0], fr[:, 2])[0, 1]
    assert 0.55 < rho < 0.72
    lg = _latent("log-Gamma(1.5) coordinates d=6 + 5 %", n=8000)
    assert float(np.exp(lg).mean()) == pytest.approx(1.5, rel=0.05)
    stf = _latent("real Stiefel V_4(R^6) + 1 %", n=200).reshape(200, 6, 4)
    assert np.allclose(np.swapaxes(stf, 1, 2) @ stf, np.eye(4), atol=1e-10)
    sp = _latent("S^5 x S^4 x S^3 of radii 1, 0.8, 0.6")
    assert np.allclose(np.linalg.norm(sp[:, :6], axis=1), 1.0)
    assert np.allclose(np.linalg.norm(sp[:, 6:11], axis=1), 0.8)
    assert np.allclose(np.linalg.norm(sp[:, 11:], axis=1), 0.6)
    hp = _latent("quaternionic projective space HP^4 + 1 %", n=100)
    m = 10
    iu = np.triu_indices(m, 1)
    p = np.zeros((100, m, m), dtype=complex)
    p[:, np.arange(m), np.arange(m)] = hp[:, :m]
    p[:, iu[0], iu[1]] = (hp[:, m : m + 45] + 1j * hp[:, m + 45 :]) / math.sqrt(2)
    p[:, iu[1], iu[0]] = np.conj(p[:, iu[0], iu[1]])
    assert np.allclose(p @ p, p, atol=1e-10)  # a projector
    assert np.allclose(np.trace(p, axis1=1, axis2=2), 2.0)  # of rank two
    tk = _latent("Talbot's curve x 3 Kumaraswamy(2, 5) interval + 1 %", n=8000)
    # Kumaraswamy(a, b) has mean b B(1 + 1 / a, b).
    assert float(tk[:, 2].mean() / 3) == pytest.approx(5 * math.gamma(1.5) * math.gamma(5) / math.gamma(6.5), abs=0.01)
    pp = _latent("pentagon x pentagon of circumradius 0.6", n=2000)
    assert np.allclose(np.linalg.norm(pp[:, 2:], axis=1).max(), 0.6, atol=1e-3)
    dv = _latent("Dirichlet(1, 2, 4) triangle x von Mises circle, kappa 2 + 1 %", n=2000)
    assert np.allclose(dv[:, :3].sum(1), 1.0)
    assert np.allclose(np.linalg.norm(dv[:, 3:], axis=1), 0.4)
    bd = _latent("bifolium x disc of radius 0.35")
    assert (np.linalg.norm(bd[:, 2:], axis=1) <= 0.35).all()
    vv = _latent("von Mises-Fisher mixture S^2 x S^2 of radius 0.7 + 1 %")
    assert np.allclose(np.linalg.norm(vv[:, :3], axis=1), 1.0)
    assert np.allclose(np.linalg.norm(vv[:, 3:], axis=1), 0.7)


def test_the_mixture_is_three_separated_clusters_of_unequal_weights():
    mix = _latent("separated Gaussian mixture d=6, weights 0.6 / 0.3 / 0.1 + 5 %", n=2500)
    dist, idx = cKDTree(mix).query(mix, 21)
    graph = np.zeros((len(mix), len(mix)), dtype=bool)
    graph[np.repeat(np.arange(len(mix)), 20), idx[:, 1:].ravel()] = True
    count, label = connected_components(graph, directed=False)
    assert count == 3  # the 20-neighbour graph splits into the three clusters
    sizes = np.bincount(label)
    assert np.allclose(np.sort(sizes)[::-1] / len(mix), [0.6, 0.3, 0.1], atol=0.03)
    widest = max(float(np.median(dist[label == k, 20])) for k in range(3))
    for k in range(3):  # separated: every gap wider than twice the widest cluster's median 20th-neighbour distance
        gap = cKDTree(mix[label != k]).query(mix[label == k])[0].min()
        assert gap > 2 * widest, k


@pytest.mark.parametrize("name", [c.name for c in suite("fifteenth")])
def test_every_cloud_has_its_stated_dimension(name: str) -> None:
    # The truth: at random points the sampler's Jacobian with respect to all its per-point draws has rank exactly
    # dim (a collapsed direction or an extra one would show as a singular value near 0 or one too many). No sampler
    # of this split rejects draws, so every cloud is checked, the network images included.
    cloud = next(c for c in suite("fifteenth") if c.name == name)
    rank = sampler_ranks(cloud)
    assert (rank == cloud.dim).all(), (name, np.unique(rank))
