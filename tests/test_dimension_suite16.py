"""The trusted-``dim`` suite's sixteenth split (studies/dimension_suite16.py) generates what it claims, cheaply.

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

_latent = partial(latent, "sixteenth")


def test_sixteenth_split_is_new_and_follows_the_issue_family_list():
    sixteenth = suite("sixteenth")
    earlier = [c for c in suite() if c.split != "sixteenth"]
    assert len(sixteenth) == 43
    assert SPLITS[SPLITS.index("fifteenth") + 1] == "sixteenth"  # written after the fifteenth
    assert SPLITS[-1] == "sixteenth"
    assert len({c.name for c in suite()}) == len(suite())  # no name reused from an earlier split
    seeds = [c.seed for c in sixteenth]
    assert len(set(seeds)) == len(seeds)
    assert all(1700 <= v < 1800 for v in seeds)
    assert not {c.seed for c in earlier} & set(seeds)
    assert [sum(c.noise == level for c in sixteenth) for level in NOISE_LEVELS] == [13, 16, 14]
    for family, least in (("curve", 6), ("surface", 5), ("network", 5), ("density", 6), ("product", 5)):
        assert sum(c.family == family for c in sixteenth) >= least, family
    assert {c.noise for c in sixteenth if c.family == "curve"} == set(NOISE_LEVELS)
    assert {c.noise for c in sixteenth if c.family == "surface"} == set(NOISE_LEVELS)
    assert sum(c.family == "curve" and c.noise > 0 for c in sixteenth) >= 6  # noisy curves: where the error is
    assert sum(c.dim >= 10 for c in sixteenth) >= 8
    assert min(c.dim for c in sixteenth) == 1
    assert max(c.dim for c in sixteenth) >= 21
    assert all(10 <= c.dim <= 30 for c in sixteenth if c.family == "high_d")
    assert min(c.ambient for c in sixteenth) <= 3
    assert max(c.ambient for c in sixteenth) >= 200
    assert sum(c.ambient <= 8 and c.noise > 0 for c in sixteenth) >= 3  # small noisy ambient widths: hard


def test_no_study_that_reads_trusted_readings_of_opened_splits_reads_the_sixteenth():
    # The sixteenth split is measured once after the rule is frozen: the studies that read the trusted dim of every
    # opened split (the interval's calibration table and local_bias through it, the oracle bound, the widths study)
    # must not count it.
    from studies import dimension_oracle, interval_calibration, suite_widths

    assert "sixteenth" not in interval_calibration.OPENED
    assert "sixteenth" not in dimension_oracle.OPENED
    assert "sixteenth" not in suite_widths.OPENED


def test_the_module_does_not_import_scipy():
    # SciPy is not a runtime dependency of the package: building and sampling the split must not need it.
    code = (
        "import sys, numpy as np; import studies.dimension_suite16 as m; "
        "[spec[-1](spec[-2])(5, np.random.default_rng(0)) for spec in m.sixteenth_specs()]; "
        "print('scipy' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.strip() == "False"


def test_curves_lie_where_they_claim():
    kn = _latent("(3, 5) torus knot + 1 %", n=4000)
    ring = np.hypot(kn[:, 0], kn[:, 1])
    assert np.allclose(np.hypot(ring - 1, kn[:, 2]), 0.35)  # on the torus of radii 1 and 0.35
    phi, psi = np.arctan2(kn[:, 1], kn[:, 0]), np.arctan2(kn[:, 2], ring - 1)
    assert np.allclose(np.sin(3 * psi - 5 * phi), 0.0, atol=1e-6)  # (3, 5): 3 psi = 5 phi mod 2 pi
    ge = _latent("lemniscate of Gerono + 5 %")
    assert np.allclose(ge[:, 0] ** 4, ge[:, 0] ** 2 - ge[:, 1] ** 2)
    ce = _latent("cycloid of Ceva")
    # r = 1 + 2 cos 2t (r of either sign) times r^2: r^3 = r^2 + 2 (x^2 - y^2), so |p|^6 = (|p|^2 + 2 (x^2 - y^2))^2.
    r2 = (ce**2).sum(1)
    assert np.allclose(r2**3, (r2 + 2 * (ce[:, 0] ** 2 - ce[:, 1] ** 2)) ** 2, atol=1e-9)
    ra = _latent("ramphoid cusp (t^2, t^4 + t^5) + 5 %")
    assert (ra[:, 0] >= 0).all()
    t = np.sqrt(ra[:, 0])
    assert np.all(np.isclose(ra[:, 1], t**4 + t**5) | np.isclose(ra[:, 1], t**4 - t**5))
    wi = _latent("line of slopes (1, sqrt 2, sqrt 3) on T^3 + 1 %")
    assert np.allclose(np.hypot(wi[:, :3], wi[:, 3:]), 1.0)
    li = _latent("Lissajous knot (3, 2, 7) + 1 %")
    assert np.abs(li).max() <= 1.0
    from studies.dimension_suite16 import cubic_spiral

    # Parametrised by arc length s (heading s^3): the chord between draws s and s + h is at most h, and about h for a
    # small h (speed 1), and the heading of that chord is about s^3.
    sample = cubic_spiral(1.8)(0)

    class Fixed:
        def __init__(self, s: np.ndarray) -> None:
            self.s = s

        def uniform(self, *args: object) -> np.ndarray:
            return self.s

    s = np.linspace(-1.7, 1.7, 200)
    h = 1e-3
    a, b = sample(200, Fixed(s)), sample(200, Fixed(s + h))  # type: ignore[arg-type]
    chord = b - a
    assert np.allclose(np.linalg.norm(chord, axis=1), h, rtol=1e-3)
    assert np.allclose(np.arctan2(chord[:, 1], chord[:, 0]), np.angle(np.exp(1j * (s + h / 2) ** 3)), atol=1e-3)


def test_curves_are_uniform_in_arc_length():
    # Equal arc-length pieces hold equal shares: the cumulative arc length at the sorted draw is close to uniform.
    from studies import dimension_suite16 as m

    for name, key in (
        ("lemniscate of Gerono + 5 %", "gerono"),
        ("(3, 5) torus knot + 1 %", "torus knot"),
        ("ramphoid cusp (t^2, t^4 + t^5) + 5 %", "ramphoid"),
    ):
        f, t0, t1 = m._CURVES[key]
        t = np.linspace(t0, t1, 200001)
        s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(f(t), axis=0), axis=1))])
        pts = _latent(name, n=4000)
        nearest = cKDTree(f(t)).query(pts)[1]
        frac = np.sort(s[nearest] / s[-1])
        assert np.abs(frac - (np.arange(4000) + 0.5) / 4000).max() < 0.03, name


def test_surfaces_lie_where_they_claim():
    hk = _latent("handkerchief surface + 5 %")
    u, v = hk[:, 0], hk[:, 1]
    assert np.allclose(hk[:, 2], u**3 / 3 + u * v * v + 2 * (u * u - v * v))
    li = _latent("limpet torus")
    rho = np.hypot(li[:, 0], li[:, 1])
    # (sqrt 2 + sin v) = 1 / rho and (sqrt 2 + cos v) = 1 / z lie on the unit circle about (sqrt 2, sqrt 2)
    assert np.allclose((1 / rho - math.sqrt(2)) ** 2 + (1 / li[:, 2] - math.sqrt(2)) ** 2, 1.0)
    ca = _latent("Cayley's ruled cubic surface + 1 %")
    assert np.allclose(ca[:, 2], ca[:, 0] * ca[:, 1] - ca[:, 0] ** 3)
    cc = _latent("graph of w = z^3 over the unit disc + 5 %")
    z = cc[:, 0] + 1j * cc[:, 1]
    assert np.allclose(z**3, cc[:, 2] + 1j * cc[:, 3])
    assert np.abs(z).max() <= 1.0
    sc = _latent("Scherk's saddle tower, |w| <= 0.7 + 1 %", n=2000)
    assert np.isfinite(sc).all()
    sph = _latent("prolate spheroid 1:1:2, von Mises longitude", n=4000)
    assert np.allclose(sph[:, 0] ** 2 + sph[:, 1] ** 2 + sph[:, 2] ** 2 / 4, 1.0)
    sprg = _latent("helical spring, 3 turns, tube 0.25 + 1 %", n=2000)
    grid = np.linspace(0.0, 6 * math.pi, 60001)
    tau = 1.2 / (2 * math.pi)
    helix = np.stack([np.cos(grid), np.sin(grid), tau * grid], axis=1)
    assert np.allclose(cKDTree(helix).query(sprg)[0], 0.25, atol=2e-3)  # every point 0.25 from the helix


def test_the_saddle_tower_is_conformal_with_its_weierstrass_metric():
    # A Weierstrass-Enneper surface of data (f, g) is conformal in w = u + i v with |X_u| = |X_v| = |f| (1 + |g|^2) / 2
    # (Scherk's saddle tower: f = 4 / (1 - w^4), g = w); the module's coordinates are twice the integrals, hence the
    # factor 4 below. The replayed draws give the two partial derivatives.
    from studies.dimension_suite16 import _scherk_tower

    sample = _scherk_tower(0.7)
    w = (
        0.6
        * np.sqrt(np.random.default_rng(0).random(200))
        * np.exp(2j * math.pi * np.random.default_rng(1).random(200))
    )

    class Fixed:
        def __init__(self, dw: complex = 0.0) -> None:
            self.w = w + dw

        def standard_normal(self, *args: object) -> np.ndarray:  # sample_ball's direction (it normalises it)
            return np.stack([self.w.real, self.w.imag], axis=1)

        def random(self, *args: object) -> np.ndarray:  # sample_ball's radius draw U, radius U^(1/2) (times 0.7)
            return (np.abs(self.w) / 0.7)[:, None] ** 2

    eps = 1e-6
    base = sample(200, Fixed())  # type: ignore[arg-type]
    xu = (sample(200, Fixed(eps)) - base) / eps  # type: ignore[arg-type]
    xv = (sample(200, Fixed(1j * eps)) - base) / eps  # type: ignore[arg-type]
    metric = 4 * (4 / np.abs(1 - w**4) * (1 + np.abs(w) ** 2) / 2) ** 2
    assert np.allclose((xu**2).sum(1), metric, rtol=1e-4)
    assert np.allclose((xv**2).sum(1), metric, rtol=1e-4)
    assert np.allclose((xu * xv).sum(1), 0.0, atol=1e-4)


def test_densities_and_high_d_clouds_keep_their_promises():
    vm = _latent("von Mises-Fisher mixture on S^3, weights 0.55 / 0.3 / 0.15 + 1 %", n=4000)
    assert np.allclose(np.linalg.norm(vm, axis=1), 1.0)
    wc = _latent("wrapped Cauchy 3-torus, rho 0.5 + 1 %", n=8000)
    assert np.allclose(np.hypot(wc[:, :3], wc[:, 3:]), 1.0)
    # The wrapped Cauchy of rho has mean resultant length rho.
    assert np.allclose(np.hypot(wc[:, :3].mean(0), wc[:, 3:].mean(0)), 0.5, atol=0.02)
    st = _latent("Student-t(6) d=7 + 5 %", n=20000)
    assert float(st.var()) == pytest.approx(6 / 4, rel=0.1)  # var of a t(6) coordinate: 6 / (6 - 2)
    hn = _latent("half-normal coordinates d=6 + 1 %", n=8000)
    assert (hn >= 0).all()
    assert float(hn.mean()) == pytest.approx(math.sqrt(2 / math.pi), abs=0.01)
    di = _latent("Dirichlet(0.5, 1, 2, 4) simplex d=3", n=8000)
    assert np.allclose(di.sum(1), 1.0)
    assert np.allclose(di.mean(0), np.array([0.5, 1, 2, 4]) / 7.5, atol=0.005)
    fl = _latent("flag manifold of lines in 3-planes of R^6 + 1 %", n=50)
    iu = np.triu_indices(6, 1)

    def unpack(c: np.ndarray) -> np.ndarray:
        p = np.zeros((len(c), 6, 6))
        p[:, np.arange(6), np.arange(6)] = c[:, :6]
        p[:, iu[0], iu[1]] = c[:, 6:] / math.sqrt(2)
        p[:, iu[1], iu[0]] = p[:, iu[0], iu[1]]
        return p

    line, plane = unpack(fl[:, :21]), unpack(fl[:, 21:])
    assert np.allclose(line @ line, line)
    assert np.allclose(plane @ plane, plane)
    assert np.allclose(np.trace(line, axis1=1, axis2=2), 1.0)
    assert np.allclose(np.trace(plane, axis1=1, axis2=2), 3.0)
    assert np.allclose(plane @ line, line)  # the line lies in the plane
    ro = _latent("rotations SO(6) + 1 %", n=50).reshape(50, 6, 6)
    assert np.allclose(np.swapaxes(ro, 1, 2) @ ro, np.eye(6), atol=1e-10)
    assert np.allclose(np.linalg.det(ro), 1.0)
    le = _latent("lens space S^11 / Z_3 + 1 %", n=50)
    assert np.allclose(np.linalg.norm(le[:, :36], axis=1), 1.0)  # |z z^*| = |z|^2 = 1
    assert np.allclose(np.linalg.norm(le[:, 36:], axis=1), 1.0)  # |z (x) z (x) z| = |z|^3 = 1


def test_the_lens_space_map_is_invariant_under_the_group_and_separates_its_orbits():
    from studies.dimension_suite16 import lens_space

    sample = lens_space(6, 3)(0)

    class Fixed:
        def __init__(self, g: np.ndarray) -> None:
            self.g = g

        def standard_normal(self, *args: object) -> np.ndarray:
            return self.g.copy()

    g = np.random.default_rng(0).standard_normal((20, 12))
    z = g[:, :6] + 1j * g[:, 6:]
    base = sample(20, Fixed(g))  # type: ignore[arg-type]
    for k, same in ((1, True), (2, True), (0.5, False)):
        w = z * np.exp(2j * math.pi * k / 3)  # a cube root of unity (k = 1, 2) or not (k = 1/2)
        moved = sample(20, Fixed(np.concatenate([w.real, w.imag], axis=1)))  # type: ignore[arg-type]
        assert np.allclose(moved, base) == same, k


def test_the_mixture_is_two_separated_clusters_of_unequal_weights():
    mix = _latent("separated Gaussian / Laplace mixture d=5, weights 0.7 / 0.3 + 5 %", n=2500)
    dist, idx = cKDTree(mix).query(mix, 21)
    graph = np.zeros((len(mix), len(mix)), dtype=bool)
    graph[np.repeat(np.arange(len(mix)), 20), idx[:, 1:].ravel()] = True
    count, label = connected_components(graph, directed=False)
    assert count == 2  # the 20-neighbour graph splits into the two clusters
    sizes = np.bincount(label)
    assert np.allclose(np.sort(sizes)[::-1] / len(mix), [0.7, 0.3], atol=0.03)
    widest = max(float(np.median(dist[label == k, 20])) for k in range(2))
    gap = cKDTree(mix[label == 0]).query(mix[label == 1])[0].min()
    assert gap > 1.3 * widest


@pytest.mark.parametrize("name", [c.name for c in suite("sixteenth")])
def test_every_cloud_has_its_stated_dimension(name: str) -> None:
    # The truth: at random points the sampler's Jacobian with respect to all its per-point draws has rank exactly
    # dim (a collapsed direction or an extra one would show as a singular value near 0 or one too many). No sampler
    # of this split rejects draws, so every cloud is checked, the network images included.
    cloud = next(c for c in suite("sixteenth") if c.name == name)
    rank = sampler_ranks(cloud)
    assert (rank == cloud.dim).all(), (name, np.unique(rank))
