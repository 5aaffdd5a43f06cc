r"""Build ``lightning_repgap/calibration_tables.npz``: exact gap curves of the calibration's reference manifolds.

For ``n`` i.i.d. uniform bank points and an independent uniform query on the same manifold, the expected gap is

.. math::

    E[G(n)] = E \min_{i \le n} \lVert q - r_i \rVert^2 = \int_0^\infty \big(1 - F(t)\big)^n \, dt,
    \qquad F(t) = P(\lVert q - r \rVert^2 \le t),

averaged over the query's position where the manifold is not homogeneous (the ball). This script evaluates it
without any sampling noise for three references, the ones :mod:`lightning_repgap.calibration` interpolates
between (ordered by the concentration of their squared distances):

* ``ball``: uniform in the unit ``d``-ball, real ``d`` (lens volumes of two balls, regularised incomplete beta);
* ``sphere``: uniform on the unit ``d``-sphere :math:`S^d \subset R^{d+1}`, chordal distances, real ``d``;
* ``torus``: the flat torus :math:`(S^1)^d \subset R^{2d}` (product of unit circles, chordal distances),
  integer ``d``: :math:`\lVert q - r \rVert^2 = \sum_i X_i` with :math:`X_i / 4 \sim \mathrm{Beta}(1/2, 1/2)`,
  whose distribution is obtained by FFT convolution of exact bin masses, at several nested scales so that
  the smallest distances (large ``n``, small ``d``) keep a relative resolution of ``1e-4`` or better.

Quadrature: :math:`\int S^n dt = \int S^n t \, d(\ln t)`, composite Simpson on a uniform grid in :math:`\ln t` whose
step shrinks as ``1/d`` (the transition of :math:`S^n` from 1 to 0 gets sharper in :math:`\ln t` as ``d`` grows);
below the grid :math:`S^n = 1` to ``1e-9``. The ball's query radius is integrated over :math:`v = 1 - \rho^d`
(uniform), Simpson in :math:`\ln v`, which resolves the boundary layer at every ``n``.

The table holds :math:`\ln E[G(n)]` for ``n = 2**(j/4)``, ``j = 0 .. 96`` (1 to 2**24). The library interpolates
it linearly in :math:`\ln n`. Run ``--check`` for the accuracy report (quadrature refinement, FFT refinement,
the circle against the sphere formula, interpolation error, Monte Carlo). Needs scipy (the ``dev`` extra); the
library itself does not.

Usage::

    .venv/bin/python scripts/build_calibration.py            # writes the table, prints the build time
    .venv/bin/python scripts/build_calibration.py --check    # accuracy report only
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy.special import betainc, gammaln

OUT = Path(__file__).resolve().parents[1] / "lightning_repgap" / "calibration_tables.npz"

#: ``ln n`` grid: n = 2**(j/4), j = 0..96.
LOG_N = np.arange(0, 97) * (math.log(2.0) / 4.0)
#: Geometric grid of (real) dimensions for the ball and the sphere.
D_CONT = np.geomspace(1.0, 96.0, 49)
#: Integer dimensions of the flat torus.
D_TORUS = np.arange(1, 97, dtype=np.float64)

#: ``n_max * F(t_lo) = TAIL``: below ``t_lo`` the integrand ``(1 - F)^n`` is 1 to this precision.
TAIL = 1e-10


# ---------------------------------------------------------------------------------------------------------------
# quadrature helpers
# ---------------------------------------------------------------------------------------------------------------


def simpson_weights(k: int, h: float) -> np.ndarray:
    """Composite Simpson weights for ``k`` (odd) equally spaced nodes with step ``h``."""
    if k % 2 == 0 or k < 3:
        raise ValueError(f"Simpson needs an odd number >= 3 of nodes, got {k}")
    w = np.ones(k)
    w[1:-1:2] = 4.0
    w[2:-1:2] = 2.0
    return w * (h / 3.0)


def t_nodes(t_lo: float, t_hi: float, d: float, refine: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes and weights for ``int_{t_lo}^{t_hi} g(t) dt``.

    ``[t_lo, t_hi / 2]``: Simpson, uniform in ``ln t`` (step ``min(0.04, 0.4 / d)``: the drop of ``S^n`` gets
    sharper in ``ln t`` as ``d`` grows). ``[t_hi / 2, t_hi]``: Simpson, uniform in ``s = sqrt(t_hi - t)``, which
    absorbs the ``(t_hi - t)^{d/2}`` edge of ``S`` at the diameter (a square root for the circle).
    """
    mid = t_hi / 2.0
    h = min(0.04, 0.4 / d) / refine
    k = max(3, math.ceil((math.log(mid) - math.log(t_lo)) / h))
    k += 1 - k % 2  # odd
    u = np.linspace(math.log(t_lo), math.log(mid), k)
    w_lo = simpson_weights(k, float(u[1] - u[0])) * np.exp(u)
    ks = 1 + 2 * math.ceil(500 * refine)
    s = np.linspace(0.0, math.sqrt(mid), ks)
    w_hi = simpson_weights(ks, float(s[1] - s[0])) * 2.0 * s
    return np.concatenate([np.exp(u), t_hi - s * s]), np.concatenate([w_lo, w_hi])


def expected_min(log_s: np.ndarray, weights: np.ndarray, t_lo: float, log_n: np.ndarray) -> np.ndarray:
    """``t_lo + int_{t_lo}^{t_hi} S(t)^n dt`` for every ``n``; ``log_s`` is ``ln S`` at the nodes, ``(..., K)``."""
    out = np.empty((*log_s.shape[:-1], log_n.size))
    with np.errstate(under="ignore"):
        for j, n in enumerate(np.exp(log_n)):
            out[..., j] = np.exp(n * log_s) @ weights + t_lo
    return out


def log1m(f: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``ln(1 - F)`` from both ``F`` and ``S = 1 - F`` (each accurate where it is small)."""
    with np.errstate(divide="ignore"):
        return np.where(f <= 0.5, np.log1p(-np.minimum(f, 0.5)), np.log(np.maximum(s, 0.0)))


def find_t_lo(cdf: Callable[[np.ndarray], np.ndarray], t_hi: float, n_max: float) -> float:
    """Largest ``t`` (on a fine log grid) with ``n_max * F(t) <= TAIL``; ``cdf`` must be increasing."""
    t = np.exp(np.linspace(math.log(t_hi) - 120.0, math.log(t_hi), 4801))
    ok = n_max * cdf(t) <= TAIL
    return float(t[np.flatnonzero(ok)[-1]])


# ---------------------------------------------------------------------------------------------------------------
# sphere S^d (chordal distance)
# ---------------------------------------------------------------------------------------------------------------


def sphere_fs(t: np.ndarray, d: float) -> tuple[np.ndarray, np.ndarray]:
    """``F`` and ``S = 1 - F`` of the squared chordal distance of two uniform points of the unit ``S^d``."""
    t = np.clip(t, 0.0, 4.0)
    sin2 = t * (1.0 - t / 4.0)  # sin^2 of the angle, cos = 1 - t/2
    half = 0.5 * betainc(d / 2.0, 0.5, np.clip(sin2, 0.0, 1.0))
    near = t <= 2.0
    f = np.where(near, half, 1.0 - half)
    s = np.where(near, 1.0 - half, half)
    return f, s


def sphere_log_gap(d: float, log_n: np.ndarray, refine: float = 1.0) -> np.ndarray:
    """``ln E[G(n)]`` on the unit ``d``-sphere."""
    t_lo = find_t_lo(lambda t: sphere_fs(t, d)[0], 4.0, math.exp(log_n[-1]))
    t, w = t_nodes(t_lo, 4.0, d, refine)
    f, s = sphere_fs(t, d)
    return np.log(expected_min(log1m(f, s), w, t_lo, log_n))


# ---------------------------------------------------------------------------------------------------------------
# ball B^d
# ---------------------------------------------------------------------------------------------------------------


def _cap(x: np.ndarray, positive: np.ndarray, d: float) -> np.ndarray:
    """Fraction of a ``d``-ball beyond a plane at signed distance ``c`` (radius units); ``x = 1 - c^2``."""
    half = 0.5 * betainc((d + 1.0) / 2.0, 0.5, np.clip(x, 0.0, 1.0))
    return np.where(positive, half, 1.0 - half)


def ball_fs(w: np.ndarray, r: np.ndarray, d: float) -> tuple[np.ndarray, np.ndarray]:
    """``F, S``: volume fraction of the unit ball within distance ``r`` of a point at radius ``1 - w``.

    Broadcasts ``w`` against ``r``. In the lens case the factors of ``1 - c^2`` are written so that nothing
    cancels for queries close to the boundary (``w`` tiny) and small ``r``.
    """
    w, r = np.broadcast_arrays(np.asarray(w, float), np.asarray(r, float))
    p = 1.0 - w
    f = np.empty(w.shape)
    inside = r <= w
    cover = r >= 1.0 + p
    mid = ~(inside | cover)
    f[inside] = r[inside] ** d
    f[cover] = 1.0
    pm, rm, wm = p[mid], r[mid], w[mid]
    # plane of the lens at signed distance c1 from the origin (towards q), c2 = p - c1 from q (towards the origin)
    c1_pos = pm * pm + 1.0 - rm * rm >= 0.0
    x1 = (rm - wm) * (rm + wm) * (1.0 + pm - rm) * (1.0 + pm + rm) / (2.0 * pm) ** 2
    c2_pos = pm * pm - 1.0 + rm * rm >= 0.0
    x2 = (wm + rm) * (1.0 + pm - rm) * (rm - wm) * (pm + rm + 1.0) / (2.0 * pm * rm) ** 2
    f[mid] = _cap(x1, c1_pos, d) + rm**d * _cap(x2, c2_pos, d)
    f = np.clip(f, 0.0, 1.0)
    return f, 1.0 - f


def ball_log_gap(d: float, log_n: np.ndarray, refine: float = 1.0, v_lo: float = 1e-14) -> np.ndarray:
    """``ln E[G(n)]`` in the unit ``d``-ball, queries uniform in the ball."""
    t_lo = find_t_lo(lambda t: np.minimum(1.0, t ** (d / 2.0)), 4.0, math.exp(log_n[-1]))
    t, wt = t_nodes(t_lo, 4.0, d, refine)
    r = np.sqrt(t)
    # Query radius rho. Outer shell (rho^d >= 1/2): v = 1 - rho^d is uniform on [0, 1/2]; Simpson in ln v resolves
    # the boundary layer (w = 1 - rho ~ v / d) down to v_lo, plus the sliver [0, v_lo] at the boundary value.
    # Inner core (rho^d <= 1/2, mass 1/2): Gauss-Legendre in rho against the density d rho^(d-1).
    kv = math.ceil(math.log(0.5 / v_lo) / (0.08 / refine))
    kv += 1 - kv % 2
    lv = np.linspace(math.log(v_lo), math.log(0.5), kv)
    v = np.exp(lv)
    w_outer = -np.expm1(np.log1p(-v) / d)  # 1 - rho, accurate for small v
    wt_outer = simpson_weights(kv, float(lv[1] - lv[0])) * v
    rho_s = 0.5 ** (1.0 / d)
    x, gw = np.polynomial.legendre.leggauss(round(64 * refine))
    rho = 0.5 * rho_s * (x + 1.0)
    wt_inner = 0.5 * rho_s * gw * d * rho ** (d - 1.0)
    ws = np.concatenate([w_outer, 1.0 - rho, [0.0]])
    wts = np.concatenate([wt_outer, wt_inner, [v_lo]])
    e = np.empty((ws.size, log_n.size))
    for i0 in range(0, ws.size, 64):
        f, s = ball_fs(ws[i0 : i0 + 64, None], r[None, :], d)
        e[i0 : i0 + 64] = expected_min(log1m(f, s), wt, t_lo, log_n)
    return np.log(wts @ e)


# ---------------------------------------------------------------------------------------------------------------
# flat torus (S^1)^d: sum of d i.i.d. X = 4 sin^2(theta/2), X/4 ~ arcsine
# ---------------------------------------------------------------------------------------------------------------


def _arcsine_masses(edges: np.ndarray) -> np.ndarray:
    """``P(edges[j] <= X < edges[j+1])`` for ``X = 4 sin^2(theta / 2)``: ``(2/pi) (asin a_{j+1} - asin a_j)``.

    With ``a = sqrt(x) / 2``, the difference of arcsines is taken as one arcsine so that narrow bins far from 0
    keep full relative precision.
    """
    a = np.sqrt(np.clip(edges, 0.0, 4.0)) / 2.0
    lo, hi = a[:-1], a[1:]
    diff = hi * np.sqrt(np.maximum(0.0, 1.0 - lo * lo)) - lo * np.sqrt(np.maximum(0.0, 1.0 - hi * hi))
    return (2.0 / math.pi) * np.arcsin(np.clip(diff, 0.0, 1.0))


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b >= n (fast FFT length)."""
    best = 1 << max(0, (n - 1).bit_length())
    p3 = 1
    while p3 < best:
        p2 = p3
        while p2 < n:
            p2 *= 2
        best = min(best, p2)
        p3 *= 3
    return best


class TorusCDF:
    """CDF of ``sum_{i<=d} X_i`` at nested scales ``L_l = 4 d / R**l`` (FFT of exact bin masses).

    At scale ``L`` the bin width is ``L / N`` and the mass of each ``X_i`` beyond ``L`` is dropped, which is exact for
    ``t <= L`` (the sum is at most ``t`` only if every term is). The sum of ``d`` bin indices is placed at its
    Irwin-Hall mean ``J + d/2``; the linear padding ``> d N`` (scale 0: ``> N``, as each ``X_i <= 4 = L / d``)
    means no wrap-around. Each ``t`` is read from the finest scale with ``t <= 0.9 L``.
    """

    def __init__(self, d: int, t_min: float, n_top: int = 2**20, n_low: int = 2**17, ratio: float = 8.0) -> None:
        self.d = d
        self.scales = self._ladder(d, _arcsine_masses, t_min, n_top, n_low, ratio)

    @staticmethod
    def _ladder(
        terms: int,
        masses: Callable[[np.ndarray], np.ndarray],
        t_min: float,
        n_top: int,
        n_low: int,
        ratio: float,
    ) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """``(top, nodes, cdf)`` per scale of a sum of ``terms`` i.i.d. terms in [0, 4] with bin ``masses(edges)``."""
        scales: list[tuple[float, np.ndarray, np.ndarray]] = []
        big = 4.0 * terms
        level = 0
        while True:
            big_l = big / ratio**level
            n_bins = n_top if level == 0 else n_low
            dx = big_l / n_bins
            p = masses(np.arange(n_bins + 1) * dx)
            pad = _fast_len(2 * n_bins if level == 0 else terms * n_bins + 1)
            q = np.fft.irfft(np.fft.rfft(p, pad) ** terms, pad)[:n_bins]
            cdf = np.minimum(np.cumsum(np.maximum(q, 0.0)), 1.0)
            nodes = (np.arange(n_bins) + terms / 2.0 + 0.5) * dx
            scales.append((0.9 * big_l if level else big_l, nodes, cdf))
            if 0.9 * big_l / ratio < t_min or level > 60:
                return scales
            level += 1

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """``F(t)``, each ``t`` from the finest scale that covers it."""
        t = np.asarray(t, float)
        out = np.empty(t.shape)
        done = np.zeros(t.shape, bool)
        for top, nodes, cdf in reversed(self.scales):  # finest first
            sel = (~done) & (t <= top)
            out[sel] = np.interp(t[sel], nodes, cdf, left=0.0)
            done |= sel
        out[~done] = 1.0
        return out


def torus_cdf_bound(t: np.ndarray, d: int) -> np.ndarray:
    """An upper bound of ``F``, used to locate ``t_lo``: ``V_d (pi^2 t / 4)^{d/2} / (2 pi)^d``.

    ``X_i = 4 sin^2(theta_i / 2) >= (4 / pi^2) theta_i^2`` on ``|theta_i| <= pi``, so ``sum X_i <= t`` implies that
    ``theta`` lies in the ball of radius ``pi sqrt(t) / 2``, whose volume fraction of ``[-pi, pi]^d`` is at most this.
    """
    t = np.asarray(t, float) * (math.pi**2 / 4.0)
    log_vd = 0.5 * d * math.log(math.pi) - gammaln(1 + d / 2.0)
    return np.minimum(1.0, np.exp(log_vd + 0.5 * d * np.log(np.maximum(t, 1e-300)) - d * math.log(2 * math.pi)))


def torus_log_gap(d: int, log_n: np.ndarray, refine: float = 1.0, n_top: int = 2**20, n_low: int = 2**17) -> np.ndarray:
    """``ln E[G(n)]`` on the flat torus of ``d`` unit circles (``d = 1``: the circle, sphere formula)."""
    if d == 1:
        return sphere_log_gap(1.0, log_n, refine)
    t_hi = 4.0 * d
    t_lo = find_t_lo(lambda t: torus_cdf_bound(t, d), t_hi, math.exp(log_n[-1]))
    cdf = TorusCDF(d, t_lo, n_top=n_top, n_low=n_low)
    t, w = t_nodes(t_lo, t_hi, d, refine)
    f = cdf(t)
    return np.log(expected_min(log1m(f, 1.0 - f), w, t_lo, log_n))


# ---------------------------------------------------------------------------------------------------------------
# accuracy report
# ---------------------------------------------------------------------------------------------------------------


def log_gap(name: str, d: float, log_n: np.ndarray, refine: float = 1.0) -> np.ndarray:
    """``ln E[G(n)]`` of reference ``name`` (``"ball"``, ``"sphere"``, ``"torus"``: ``d`` rounded) at ``ln n``."""
    if name == "sphere":
        return sphere_log_gap(d, log_n, refine)
    if name == "ball":
        return ball_log_gap(d, log_n, refine)
    if name == "torus":
        return torus_log_gap(round(d), log_n, refine)
    raise ValueError(name)


def wls_dim(log_n: np.ndarray, log_g: np.ndarray) -> float:
    """The library's naive gap dimension: weighted LS of ln G on ln n, weights sqrt(n); ``-2 / slope``."""
    w = np.exp(log_n / 2.0)
    w /= w.sum()
    xm, ym = w @ log_n, w @ log_g
    slope = (w * (log_n - xm)) @ (log_g - ym) / (w @ (log_n - xm) ** 2)
    return -2.0 / slope


def check() -> None:
    """Print the accuracy report."""
    grid = np.log(np.r_[2.0 ** np.arange(4, 15), 20000.0])  # the validated 16 .. 16384, 20000 grid
    big = np.log(np.r_[5000.0 * 2.0 ** np.arange(0, 12), 1.6e7])  # off the table's nodes
    ends = np.r_[LOG_N[:3], LOG_N[-3:]]
    print("1) quadrature refinement (x2): max |delta ln E[G]| over n in [1, 2^24]")
    for name in ("sphere", "ball"):
        for d in (1.0, 2.0, 4.0, 16.0, 96.0):
            a, b = log_gap(name, d, LOG_N), log_gap(name, d, LOG_N, refine=2.0)
            print(f"   {name:6s} d={d:5.1f}  {np.abs(a - b).max():.2e}   (ends {np.abs(a - b)[[0, -1]]})")
    print("2) torus: FFT + quadrature refinement, max |delta ln E[G]|")
    for d in (2, 3, 4, 8, 16, 48, 96):
        a = torus_log_gap(d, LOG_N)
        b = torus_log_gap(d, LOG_N, refine=2.0, n_top=2**21, n_low=2**18)
        print(f"   torus d={d:3d}  {np.abs(a - b).max():.2e}")
    print("3) torus d=1 through the FFT path vs the sphere formula for the circle")
    cdf = TorusCDF(1, 1e-40, n_low=2**17)
    t = np.geomspace(1e-30, 3.9, 50)
    circle = sphere_fs(t, 1.0)[0]
    print(f"   max rel. error of F over t in [1e-30, 3.9]: {np.abs(cdf(t) / circle - 1).max():.2e}")
    print("4) linear interpolation in ln n vs exact, naive WLS dimension on 16..16384, 20000 and 5000..1.6e7")
    for name in ("sphere", "ball", "torus"):
        for d in (2.0, 8.0, 16.0, 64.0):
            tab = log_gap(name, d, LOG_N)
            errs = []
            for g in (grid, big):
                exact = wls_dim(g, log_gap(name, d, g))
                interp = wls_dim(g, np.interp(g, LOG_N, tab))
                errs.append(interp / exact - 1)
            print(f"   {name:6s} d={d:3.0f}  rel. error {errs[0]:+.1e} (small grid)  {errs[1]:+.1e} (large grid)")
    print("5) Monte Carlo: simulated G(n) / exact, n = 16 .. 4096, 50 banks x 4000 queries")
    print("   (s.e. ~0.1-0.3 % at large n; at small n the spread between banks dominates, ~1 %)")
    rng = np.random.default_rng(0)
    sizes = 2 ** np.arange(4, 13)
    for name, d in (("ball", 3), ("sphere", 5), ("torus", 4), ("torus", 12)):
        g_sim = np.zeros(sizes.size)
        reps = 50
        for _ in range(reps):
            m = 4000
            if name == "ball":
                x = rng.standard_normal((sizes[-1] + m, d))
                x *= rng.random((x.shape[0], 1)) ** (1 / d) / np.linalg.norm(x, axis=1, keepdims=True)
            elif name == "sphere":
                x = rng.standard_normal((sizes[-1] + m, d + 1))
                x /= np.linalg.norm(x, axis=1, keepdims=True)
            else:
                th = rng.uniform(0, 2 * np.pi, (sizes[-1] + m, d))
                x = np.concatenate([np.cos(th), np.sin(th)], axis=1)
            r, q = x[: sizes[-1]], x[sizes[-1] :]
            d2 = (q * q).sum(1)[:, None] + (r * r).sum(1)[None, :] - 2 * q @ r.T
            run = np.minimum.accumulate(d2, axis=1)
            g_sim += run[:, sizes - 1].mean(0) / reps
        ref = np.exp(log_gap(name, d, np.log(sizes.astype(float))))
        print(f"   {name:6s} d={d:2d}  " + " ".join(f"{v:.3f}" for v in g_sim / ref))
    print("   (ends of the n grid are", np.exp(ends).round(2).tolist(), ")")


def _curve(job: tuple[str, float]) -> np.ndarray:
    return log_gap(job[0], job[1], LOG_N)


def build(out: Path, jobs: int) -> None:
    """Compute every curve (``jobs`` processes) and write the table."""
    t0 = time.perf_counter()
    grids = {"sphere": D_CONT, "ball": D_CONT, "torus": D_TORUS}
    work = [(name, float(d)) for name, ds in grids.items() for d in ds]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            curves = list(pool.map(_curve, work, chunksize=1))
    else:
        curves = [_curve(job) for job in work]
    rows = {}
    for name in grids:
        rows[name] = np.stack([c for (n, _), c in zip(work, curves, strict=True) if n == name])
        if not np.all(np.isfinite(rows[name])) or not np.all(np.diff(rows[name], axis=1) < 0):
            raise RuntimeError(f"{name}: the curves must be finite and strictly decreasing in n")
    np.savez_compressed(
        out,
        log_n=LOG_N,
        d_ball=D_CONT,
        log_gap_ball=rows["ball"],
        d_sphere=D_CONT,
        log_gap_sphere=rows["sphere"],
        d_torus=D_TORUS,
        log_gap_torus=rows["torus"],
    )
    total = time.perf_counter() - t0
    print(f"wrote {out} ({out.stat().st_size / 1024:.1f} KiB) in {total:.1f} s with {jobs} process(es)")


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="print the accuracy report instead of building")
    parser.add_argument("--out", type=Path, default=OUT, help="output .npz")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    args = parser.parse_args()
    if args.check:
        check()
    else:
        build(args.out, max(1, args.jobs))


if __name__ == "__main__":
    main()
