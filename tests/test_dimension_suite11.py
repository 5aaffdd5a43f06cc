"""The trusted-``dim`` suite's eleventh split (studies/dimension_suite11.py) generates what it claims, cheaply.

No estimator runs here: the split stays unopened until the rule is frozen. These tests check the split's make-up,
the geometry each generator promises (on small samples of the latent manifold) and the truth itself: the Jacobian of
every parametrised cloud's map from its random draws has rank ``dim`` at random points. Sizes, seeds and noise levels
are checked for every split by tests/test_dimension_suite.py.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from _helpers.jacobian import sampler_ranks
from _helpers.suite_clouds import latent

from studies.dimension_suite import NOISE_LEVELS, SPLITS, suite

_latent = partial(latent, "eleventh")


def test_eleventh_split_is_new_and_follows_the_issue_family_list():
    eleventh = suite("eleventh")
    earlier = [c for c in suite() if c.split != "eleventh"]
    assert len(eleventh) == 43
    assert SPLITS[SPLITS.index("tenth") + 1] == "eleventh"
    assert SPLITS[SPLITS.index("tenth") + 1] == "eleventh"  # written after the tenth
    assert len({c.name for c in suite()}) == len(suite())  # no name reused from an earlier split
    seeds = [c.seed for c in eleventh]
    assert len(set(seeds)) == len(seeds)
    assert all(1200 <= v < 1300 for v in seeds)
    assert not {c.seed for c in earlier} & set(seeds)
    assert [sum(c.noise == level for c in eleventh) for level in NOISE_LEVELS] == [13, 16, 14]
    for family, least in (("curve", 6), ("surface", 5), ("network", 5), ("density", 6), ("product", 5)):
        assert sum(c.family == family for c in eleventh) >= least, family
    assert {c.noise for c in eleventh if c.family == "curve"} == set(NOISE_LEVELS)
    assert {c.noise for c in eleventh if c.family == "surface"} == set(NOISE_LEVELS)
    assert sum(c.dim >= 10 for c in eleventh) >= 8
    assert min(c.dim for c in eleventh) == 1
    assert max(c.dim for c in eleventh) >= 24


def test_curves_lie_where_they_claim():
    li = _latent("lituus, t in [0.5, 25] + 1 %")
    r2 = (li**2).sum(1)
    turns = (1 / r2 - np.arctan2(li[:, 1], li[:, 0])) / (2 * math.pi)  # r^2 t = 1: t = 1 / r^2 = angle + 2 k pi
    assert np.allclose(turns, np.round(turns), atol=1e-6)
    co = _latent("conchoid of Nicomedes with a loop")
    assert np.allclose((co[:, 0] - 1) ** 2 * (co**2).sum(1), 4 * co[:, 0] ** 2)  # (x - a)^2 (x^2 + y^2) = b^2 x^2
    assert float(np.mean(co[:, 0] < 1)) == pytest.approx(0.5, abs=0.1)  # the loop's branch lies left of x = a
    pi = _latent("piriform, arcsine parameter + 5 %", n=4000)
    assert np.allclose(pi[:, 1] ** 2, 1.44 * pi[:, 0] ** 3 * (2 - pi[:, 0]))
    # The arcsine parameter piles mass at t = 0: 0.13 of it within 0.1 of (1, 1.2) (0.02 for a uniform t).
    assert float(np.mean(np.hypot(pi[:, 0] - 1, pi[:, 1] - 1.2) < 0.1)) > 0.1
    ka = _latent("kampyle of Eudoxus, both branches + 1 %")
    assert np.allclose(ka[:, 0] ** 4, (ka**2).sum(1))
    assert float(np.mean(ka[:, 0] > 0)) == pytest.approx(0.5, abs=0.1)
    pc = _latent("prolate cycloid, ratio 2, 3 periods + 1 %")
    a = np.arccos((1 - pc[:, 1]) / 2)  # the height gives t up to its sign and period; the abscissa decides
    wraps = [(pc[:, 0] - (s * a - 2 * np.sin(s * a))) / (2 * math.pi) for s in (1.0, -1.0)]
    assert np.any([np.abs(w - np.round(w)) < 1e-6 for w in wraps], axis=0).all()
    bo = _latent("Borromean rings + 1 %", n=3000)
    zero = np.isclose(bo, 0.0)
    assert (zero.sum(1) >= 1).all()  # every point in one of the coordinate planes
    for i in range(3):  # ring i: the ellipse (2 cos t, sin t) in the plane of coordinates (i, i + 1)
        ring = bo[zero[:, (i + 2) % 3] & ~zero[:, i]]
        assert len(ring) > 800
        assert np.allclose((ring[:, i] / 2) ** 2 + ring[:, (i + 1) % 3] ** 2, 1.0)


def test_surfaces_lie_where_they_claim():
    bour = _latent("Bour's minimal surface + 5 %")
    assert np.isfinite(bour).all()
    wa = _latent("Wallis's conical edge + 1 %")
    cos_u2 = wa[:, 0] ** 2 / np.maximum((wa[:, :2] ** 2).sum(1), 1e-300)
    assert np.allclose(wa[:, 2] ** 2, 1 - 0.81 * cos_u2)  # z^2 = c^2 (a^2 - b^2 cos^2 u)
    gh = _latent("Gabriel's horn, x in [1, 6]", n=4000)
    assert np.allclose(np.hypot(gh[:, 1], gh[:, 2]) * gh[:, 0], 1.0)
    assert float(np.mean(gh[:, 0] < 3.5)) == pytest.approx(0.5, abs=0.05)  # uniform in x, not in area
    se = _latent("superellipsoid |x|^6 + |y|^6 + |z|^6 = 1 + 5 %")
    assert np.allclose((np.abs(se) ** 6).sum(1), 1.0)
    sw = _latent("swallowtail")
    # The points (u, p, q) are where x^4 + u x^2 + p x + q has a double root (there its derivative vanishes too).
    for u, p, q in sw[:100]:
        roots = np.roots([1.0, 0.0, u, p, q])
        assert float(np.abs(4 * roots**3 + 2 * u * roots + p).min()) < 1e-4
    for name in ("Henneberg surface + 1 %", "breather surface, b = 0.4"):
        surf = _latent(name)
        assert np.isfinite(surf).all(), name
        assert np.linalg.matrix_rank(surf - surf.mean(0)) == 3, name


def test_densities_products_and_networks_keep_their_promises():
    cop = _latent("Gaussian copula d=5, rho 0.9 + 1 %", n=4000)
    assert ((cop > 0) & (cop < 1)).all()
    assert np.allclose(cop.mean(0), 0.5, atol=0.05)
    corr = np.corrcoef(cop.T)[np.triu_indices(5, 1)]
    assert (corr > 0.8).all()  # Spearman's rho of a Gaussian copula: (6 / pi) asin(rho / 2) = 0.89
    lo = _latent("logit-normal coordinates d=4, sigma 1.8", n=4000)
    assert float(np.mean((lo < 0.1) | (lo > 0.9))) > float(np.mean((lo > 0.4) & (lo < 0.6)))  # piled at the faces
    wc = _latent("wrapped-Cauchy 3-torus, rho 0.7 + 5 %", n=4000)
    assert np.allclose(np.hypot(wc[:, :3], wc[:, 3:]), 1.0)
    assert np.allclose(wc[:, :3].mean(0), 0.7, atol=0.03)  # E cos(theta) = rho for the wrapped Cauchy
    sc = _latent("Swiss-cheese cube d=3, 12 holes + 1 %")
    cloud = next(c for c in suite("eleventh") if c.name.startswith("Swiss-cheese"))
    centres = np.random.default_rng(cloud.seed).random((12, 3))
    assert (((sc[:, None] - centres[None]) ** 2).sum(2) > 0.15**2).all()
    assert ((sc >= 0) & (sc <= 1)).all()
    mf = _latent("matrix-Fisher rotations SO(3), F = (4, 2, 0)", n=2000).reshape(-1, 3, 3)
    assert np.allclose(np.einsum("nij,nkj->nik", mf, mf), np.eye(3))
    assert np.allclose(np.linalg.det(mf), 1.0)
    diag = np.diagonal(mf, axis1=1, axis2=2).mean(0)
    assert diag[0] > diag[1] > diag[2]  # concentrated around I, most along the first axis
    assert diag[0] > 0.6
    gh = _latent("g-and-h coordinates d=6, g 0.5, h 0.1 + 5 %", n=8000)
    assert float(np.median(gh)) == pytest.approx(0.0, abs=0.05)  # the median of Z maps to 0
    assert float(np.mean(gh > 0)) == pytest.approx(0.5, abs=0.02)
    assert float(np.quantile(gh, 0.99)) > 2 * -float(np.quantile(gh, 0.01))  # skewed right
    wa = _latent("Wald coordinates d=5, mean 1, scale 0.5", n=8000)
    assert float(wa.mean()) == pytest.approx(1.0, abs=0.05)
    assert float(wa.var()) == pytest.approx(2.0, rel=0.15)  # mean^3 / scale
    lp = _latent("l_1/2 ball d=10 + 1 %", n=4000)
    norm = (np.sqrt(np.abs(lp)).sum(1)) ** 2
    assert norm.max() <= 1.0
    assert float(np.mean(norm <= 0.5**0.1)) == pytest.approx(0.5, abs=0.03)  # P(||x|| <= r) = r^d
    gr = _latent("Grassmannian G(3, 7)").reshape(-1, 7, 7)
    assert np.allclose(gr @ gr, gr)
    assert np.allclose(np.trace(gr, axis1=1, axis2=2), 3.0)
    so = _latent("SO(3) x S^2")
    rot = so[:, :9].reshape(-1, 3, 3)
    assert np.allclose(np.linalg.det(rot), 1.0)
    assert np.allclose(np.linalg.norm(so[:, 9:], axis=1), 1.0)
    s3 = _latent("S^3 x B^6 x S^2 + 1 %")
    assert np.allclose(np.linalg.norm(s3[:, :4], axis=1), 1.0)
    assert (np.linalg.norm(s3[:, 4:10], axis=1) <= 1.0).all()
    assert np.allclose(np.linalg.norm(s3[:, 10:], axis=1), 1.0)
    sm = _latent("softmax-layer net d=6 -> R^60 + 1 %")
    assert sm.shape[1] == 60


_REJECTION = ("Swiss-cheese cube d=3, 12 holes + 1 %", "matrix-Fisher rotations SO(3), F = (4, 2, 0)")


@pytest.mark.parametrize("name", [c.name for c in suite("eleventh") if c.name not in _REJECTION])
def test_every_parametrised_cloud_has_its_stated_dimension(name: str) -> None:
    # The truth: at random points the sampler's Jacobian with respect to all its per-point draws has rank exactly
    # dim (a collapsed direction or an extra one would show as a singular value near 0 or one too many). The two
    # rejection samplers are open subsets of the 3-cube and of SO(3), checked above.
    cloud = next(c for c in suite("eleventh") if c.name == name)
    rank = sampler_ranks(cloud)
    assert (rank == cloud.dim).all(), (name, np.unique(rank))


def test_the_suite_imports_and_lists_its_clouds_without_scipy():
    # scipy is a dev / study dependency only: listing the suite (which imports every split's module) must not need it;
    # only drawing a Gaussian-copula cloud does. A subprocess, so that the blocked import touches no other test.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['scipy'] = None\n"
        "sys.modules['scipy.special'] = None\n"
        "from studies.dimension_suite import suite\n"
        "assert len(suite('eleventh')) == 43\n"
        "assert not any(m == 'scipy' or m.startswith('scipy.') for m, v in sys.modules.items() if v is not None)\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
