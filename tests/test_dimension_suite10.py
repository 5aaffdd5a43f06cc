"""The trusted-``dim`` suite's tenth split (studies/dimension_suite10.py) generates what it claims, cheaply.

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

_latent = partial(latent, "tenth")


def test_tenth_split_is_new_and_follows_the_issue_family_list():
    tenth = suite("tenth")
    earlier = [c for c in suite() if c.split != "tenth"]
    assert len(tenth) >= 42
    assert SPLITS[SPLITS.index("ninth") + 1] == "tenth"  # written after the ninth
    assert len({c.name for c in suite()}) == len(suite())  # no name reused from an earlier split
    seeds = [c.seed for c in tenth]
    assert len(set(seeds)) == len(seeds)
    assert all(1100 <= v < 1200 for v in seeds)
    assert not {c.seed for c in earlier} & set(seeds)
    for level in NOISE_LEVELS:
        assert sum(c.noise == level for c in tenth) >= 10, level
    for family, least in (("curve", 6), ("surface", 5), ("network", 5), ("density", 6), ("product", 5)):
        assert sum(c.family == family for c in tenth) >= least, family
    assert {c.noise for c in tenth if c.family == "curve"} == set(NOISE_LEVELS)
    assert {c.noise for c in tenth if c.family == "surface"} == set(NOISE_LEVELS)
    assert sum(c.dim >= 10 for c in tenth) >= 8
    assert min(c.dim for c in tenth) == 1
    assert max(c.dim for c in tenth) >= 24


def test_curves_lie_where_they_claim():
    ci = _latent("cissoid of Diocles + 1 %")
    assert np.allclose(ci[:, 1] ** 2 * (2 - ci[:, 0]), ci[:, 0] ** 3)  # y^2 (2a - x) = x^3, a = 1
    st = _latent("right strophoid, t in [-2.5, 2.5]")
    assert np.allclose(st[:, 1] ** 2 * (1 - st[:, 0]), st[:, 0] ** 2 * (1 + st[:, 0]))
    co = _latent("cochleoid, 7 half-turns + 5 %")
    r2 = (co**2).sum(1)
    turns = (co[:, 1] / r2 - np.arctan2(co[:, 1], co[:, 0])) / math.pi  # r t = sin t: y / r^2 = t = angle + k pi
    assert np.allclose(turns, np.round(turns), atol=1e-6)
    assert float(np.sqrt(r2).max()) <= 1.0 + 1e-12
    hi = _latent("hippopede a=1, b=0.9 + 1 %")
    q = (hi**2).sum(1)
    assert np.allclose(q**2, 4 * 0.9 * q - 4 * 0.81 * hi[:, 1] ** 2)  # (x^2 + y^2)^2 = 4ab (x^2 + y^2) - 4b^2 y^2
    li = _latent("limaçon with inner loop, Laplace angle", n=4000)
    q = (li**2).sum(1)
    assert np.allclose((q - li[:, 0]) ** 2, 0.25 * q)  # r = b + a cos t with a = 1, b = 1/2
    assert float(np.mean(li[:, 0] > 1.0)) > 0.4  # the Laplace angle piles mass near t = 0 (the far side, x ~ 1.5)
    ts = _latent("Tschirnhausen cubic + 1 %")
    assert np.allclose(27 * ts[:, 1] ** 2, (1 - ts[:, 0]) * (8 + ts[:, 0]) ** 2)
    ca = _latent("catenary, logistic(0.4) parameter")
    assert np.allclose(ca[:, 1], np.cosh(ca[:, 0]))


def test_surfaces_lie_where_they_claim():
    bo = _latent("Boy's surface + 1 %", n=2000)
    assert np.isfinite(bo).all()
    assert np.linalg.matrix_rank(bo - bo.mean(0)) == 3
    assert bo[:, 2].min() >= 0.0
    assert bo[:, 2].max() <= 3 / (2 - math.sqrt(2)) + 1e-9
    sp = _latent("spindle torus 0.5:1 + 5 %")
    rho = np.hypot(sp[:, 0], sp[:, 1])  # the tube passes through the axis: the centre radius may be +-rho
    off = np.minimum(np.abs((rho - 0.5) ** 2 + sp[:, 2] ** 2 - 1), np.abs((rho + 0.5) ** 2 + sp[:, 2] ** 2 - 1))
    assert float(off.max()) < 1e-9
    assert float(np.mean(rho < 0.5)) > 0.05  # the inner (lemon) part is sampled too
    kl = _latent("figure-eight Klein bottle + 1 %")
    u = np.arctan2(kl[:, 1], kl[:, 0])
    a = np.hypot(kl[:, 0], kl[:, 1]) - 2.0
    sin_v = np.cos(u / 2) * a + np.sin(u / 2) * kl[:, 2]  # undo the half twist (u/2 up to pi: both signs flip)
    sin_2v = -np.sin(u / 2) * a + np.cos(u / 2) * kl[:, 2]
    assert np.allclose(sin_2v**2, 4 * sin_v**2 * (1 - sin_v**2))  # the figure-eight (sin v, sin 2v)
    de = _latent("tangent developable of a helix + 5 %")
    s = np.sqrt(np.maximum((de[:, :2] ** 2).sum(1) - 1, 0.0))  # |p + s p'|^2 = 1 + s^2 in the plane
    t = np.arctan2(de[:, 1], de[:, 0]) - np.arctan(s)  # the angle of p + s p' is t + atan(s)
    wraps = (de[:, 2] / 0.3 - s - t) / (2 * math.pi)  # the height is 0.3 (t + s)
    assert np.allclose(wraps, np.round(wraps), atol=1e-6)
    assert s.max() <= 1.5 + 1e-9
    hy = _latent("hyperboloid of two sheets + 1 %")
    assert np.allclose(hy[:, 2] ** 2 - hy[:, 0] ** 2 - hy[:, 1] ** 2, 1.0)
    assert float(np.mean(hy[:, 2] > 0)) == pytest.approx(0.5, abs=0.1)
    for name in ("Kuen surface", "Catalan's surface"):
        surf = _latent(name)
        assert np.isfinite(surf).all(), name
        assert np.linalg.matrix_rank(surf - surf.mean(0)) == 3, name


def test_densities_products_and_networks_keep_their_promises():
    ke = _latent("Kent density on S^2 + 1 %", n=4000)
    assert np.allclose(np.linalg.norm(ke, axis=1), 1.0)
    assert float(ke[:, 0].mean()) > 0.6  # a cap around x_0
    assert float(np.var(ke[:, 1])) > 1.5 * float(np.var(ke[:, 2]))  # oval: wider along x_1 than x_2
    bi = _latent("Bingham density on S^3, (0, 2, 6, 12)", n=4000)
    assert np.allclose(np.linalg.norm(bi, axis=1), 1.0)
    second = (bi**2).mean(0)
    assert (np.diff(second) < 0).all()  # the larger the concentration, the less mass along that axis
    di = _latent("Dirichlet(3, 1, 0.5, 0.5, 2, 1) simplex d=5 + 5 %", n=8000)
    assert np.allclose(di.sum(1), 1.0)
    assert np.allclose(di.mean(0), np.array([3, 1, 0.5, 0.5, 2, 1]) / 8, atol=0.01)
    ll = _latent("log-logistic(3) coordinates d=6 + 1 %", n=4000)
    assert float(np.mean(ll <= 2.0)) == pytest.approx(8 / 9, abs=0.01)  # P(X <= x) = 1 / (1 + x^-3)
    hs = _latent("hyperbolic-secant coordinates d=7 + 5 %", n=4000)
    # P(X <= x) = (2 / pi) atan(exp(pi x / 2)).
    assert float(np.mean(hs <= 1.0)) == pytest.approx(2 / math.pi * math.atan(math.exp(math.pi / 2)), abs=0.01)
    ch = _latent("chain of five Gaussians d=5 + 5 %", n=8000)
    assert float(np.var(ch[:, 0])) == pytest.approx(1 + 9 * 2, rel=0.05)  # unit blobs at 3 (-2, ..., 2)
    assert float(np.var(ch[:, 1])) == pytest.approx(1.0, rel=0.05)
    vm = _latent("two-mode von Mises 3-torus, kappa 5 + 1 %", n=4000)
    assert np.allclose(np.hypot(vm[:, :3], vm[:, 3:]), 1.0)
    assert float(np.mean(vm[:, 1] < 0)) == pytest.approx(0.5, abs=0.05)  # the second mode's second angle is pi
    cc = _latent("Gaussians at 3-cube corners d=8", n=8000)
    assert np.allclose(np.var(cc, axis=0), [0.3125] * 3 + [0.0625] * 5, rtol=0.08)  # 1/4 + 1/16 on the corners
    kc = _latent("Klein bottle x circle + 1 %")
    assert np.allclose(np.linalg.norm(kc[:, 4:], axis=1), 1.0)
    s4 = _latent("S^4 x S^4 x S^4 + 5 %")
    assert np.allclose(np.linalg.norm(s4.reshape(-1, 3, 5), axis=2), 1.0)
    ss = _latent("3-simplex x S^2")
    assert np.allclose(ss[:, :4].sum(1), 1.0)
    assert np.allclose(np.linalg.norm(ss[:, 4:], axis=1), 1.0)


class _FixedLatent:
    """Stands in for the generator's rng: its one ``uniform`` draw (the latent points) returns given points."""

    def __init__(self, points: np.ndarray) -> None:
        self.points = points

    def uniform(self, low: float, high: float, shape: tuple[int, int]) -> np.ndarray:
        assert tuple(shape) == self.points.shape
        return self.points.copy()


@pytest.mark.parametrize(
    ("name", "d"),
    [
        ("gated net d=2 -> R^32 + 1 %", 2),
        ("deep narrow hard-swish net d=9 -> R^72 + 1 %", 9),
        ("residual tanh-shrink net d=16 -> R^128 + 5 %", 16),
    ],
)
def test_network_images_do_not_collapse_a_latent_direction(name: str, d: int) -> None:
    # A curved image always has a high global rank, so check the map itself: its finite-difference Jacobian keeps
    # all d directions at every sampled latent point (a collapsed direction has a singular value near 0).
    cloud = {c.name: c for c in suite("tenth")}[name]
    net = cloud.make(cloud.seed)
    x = np.random.default_rng(5).uniform(-1.0, 1.0, (50, d))
    eps = 1e-6
    base = net(50, _FixedLatent(x))
    jac = np.stack([(net(50, _FixedLatent(x + eps * np.eye(d)[i])) - base) / eps for i in range(d)], axis=1)
    sv = np.linalg.svd(jac, compute_uv=False)
    assert (sv[:, -1] / sv[:, 0] > 1e-5).all(), name
