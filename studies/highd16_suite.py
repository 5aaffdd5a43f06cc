"""The d >= 10 readings of the opened suite (validation §24, highd16): where the gap law's error sits, and variants.

``diagnose`` reads the cached searches of every opened cloud with ``d >= 10`` (never the sixteenth split) and prints
(a) the calibrated gap law's error by the concentration's bracket among the calibration's references (below the
ball's, ball to sphere, sphere to torus, beyond the torus), (b) the correlation of the clean readings' log error with
candidate diagnostics, and (c) the error of a fit over the larger banks only. ``evaluate VARIANT OUT.json`` reads the
trusted ``dim`` of all 576 opened clouds x 2 sizes with the gap law's calibration replaced by a variant (``main``,
``products``: :mod:`studies.product_calibration`; ``consistent``: every reference's concentration at one common
dimension, the fixed point) and writes the readings as ``/work/eval_suite.py`` does (compare with it).

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m studies.highd16_suite diagnose`` (needs the caches).
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

import lightning_repgap._gap_fit as gap_fit
from lightning_repgap._local_dimension import gride_dimension
from lightning_repgap.calibration import (
    _invert,
    _reference_maps,
    ball_concentration,
    calibrate_dimension,
    fit_gap_law,
    slope_to_dimension,
)
from lightning_repgap.dimension import trusted_dimension
from studies.dimension_suite import SIZES, SPLITS, suite
from studies.product_calibration import calibrate_products
from studies.suite_widths import bank_width

CACHE = Path("/work/cache")
CACHES = {"eleventh": Path("/work/cache11"), "twelfth": Path("/work/cache12"), "thirteenth": Path("/work/cache13")}
CACHES |= {"fourteenth": Path("/work/cache14"), "fifteenth": Path("/work/cache15")}
OPENED = [s for s in SPLITS if s != "sixteenth"]  # never the sixteenth split


def _clouds() -> Iterator[tuple[str, Any, int, dict[str, np.ndarray]]]:
    for split in OPENED:
        for cloud in suite(split):
            for n in SIZES:
                yield split, cloud, n, dict(np.load(CACHES.get(split, CACHE) / f"c_{cloud.seed}_{n}.npz"))


def consistent(dim_naive: float, fit_sizes: Any, concentration: float | None = None) -> float:
    """Every reference's concentration at one common dimension ``d`` (ball, ``d + 1``, ``2 d``): the fixed point."""
    if concentration is None or not math.isfinite(dim_naive):
        return calibrate_dimension(dim_naive, fit_sizes, concentration)
    maps = _reference_maps(tuple(np.asarray(fit_sizes, dtype=np.float64).reshape(-1).tolist()))
    db, ds, dt = (_invert(dim_naive, *maps[k]) for k in ("ball", "sphere", "torus"))

    def excess(d: float) -> float:
        cb, cs, ct = float(ball_concentration(d)), d + 1.0, 2.0 * d
        if concentration < cs:
            w = 0.0 if concentration <= cb or cs <= cb else (concentration - cb) / (cs - cb)
            return (1 - w) * db + w * ds - d
        w = min(1.0, (concentration - cs) / (ct - cs))
        return (1 - w) * ds + w * dt - d

    lo, hi = min(db, ds, dt), max(db, ds, dt)
    if excess(lo) <= 0:
        return lo
    if excess(hi) >= 0:
        return hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
    return 0.5 * (lo + hi)


def evaluate(variant: str, out: str) -> None:
    """Trusted ``dim`` of every opened cloud with the gap law's calibration replaced by ``variant``."""
    gap_fit.calibrate_dimension = {
        "main": calibrate_dimension,
        "products": calibrate_products,
        "consistent": consistent,
    }[variant]
    rows = {}
    for split, cloud, n, c in _clouds():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = trusted_dimension(
                c["sizes"],
                c["per_query"],
                np.sqrt(c["knn"][:, :20]),
                concentration=float(c["conc"]),
                ambient=bank_width(cloud, n),
            )
        rows[f"{split}|{cloud.name}|{n}"] = {
            "d": float(cloud.dim),
            "noise": float(cloud.noise),
            "dim": e.dim,
            "lo": e.dim_low,
            "hi": e.dim_high,
            "method": e.method,
        }
    Path(out).write_text(json.dumps(rows, indent=0))


def diagnose() -> None:
    """Print the bracket, correlation and window tables of §24."""
    rows: list[dict[str, Any]] = []
    for _split, cloud, n, c in _clouds():
        if cloud.dim < 10 or "sinc" in cloud.name:  # the sinc network reads ~20 by every estimator: apart
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = trusted_dimension(
                c["sizes"], c["per_query"], np.sqrt(c["knn"][:, :20]), concentration=float(c["conc"]), n_bootstrap=0
            )
        if e.method not in ("gap", "blend"):
            continue
        sizes = c["sizes"].astype(float)
        use = sizes >= 16
        s, g = sizes[use], c["per_query"][use].mean(axis=1)
        raw = float(slope_to_dimension(fit_gap_law(s, np.log(g))[1]))
        maps = _reference_maps(tuple(s.tolist()))
        db, ds, dt = (_invert(raw, *maps[k]) for k in ("ball", "sphere", "torus"))
        conc = float(c["conc"])
        bracket = (
            "below ball"
            if conc <= float(ball_concentration(db))
            else "ball-sphere"
            if conc < ds + 1
            else "sphere-torus"
            if conc <= 2 * dt
            else "beyond torus"
        )
        windows = {}
        for lo in (64, 256, 1024):
            m = s >= lo
            if m.sum() >= 3:
                naive_w = float(slope_to_dimension(fit_gap_law(s[m], np.log(g[m]))[1]))
                windows[lo] = calibrate_dimension(naive_w, s[m], conc)
        dist = np.sqrt(c["knn"][:, :20])
        dist = dist[dist[:, 0] > 0]
        x = np.log(s)
        rows.append({
            "n": n,
            "noise": cloud.noise,
            "d": cloud.dim,
            "gap": e.dim_gap,
            "bracket": bracket,
            "windows": windows,
            "conc/ball": math.log(conc / float(ball_concentration(e.dim_gap))),
            "curvature": float(np.polyfit(x, np.log(g), 2, w=s**0.25)[0]),
            "1-R2": math.log(1 - e.fit.r2 + 1e-9),
            "log n/2^(d/2)": math.log(n) - e.dim_gap / 2 * math.log(2),
            "TwoNN/gap": math.log(e.dim_local / e.dim_gap),
            "GRIDE(10,20)/gap": math.log(gride_dimension(dist, n1=10, n2=20) / e.dim_gap),
        })
    for n in SIZES:
        for noise in (0.0, 0.01, 0.05):
            sel = [r for r in rows if r["n"] == n and r["noise"] == noise]
            table: dict[str, list[float]] = {}
            for r in sel:
                table.setdefault(r["bracket"], []).append(r["gap"] / r["d"] - 1)
            text = ", ".join(
                f"{b}: {len(v)} |err| {np.mean(np.abs(v)):.3f} signed {np.mean(v):+.3f}" for b, v in table.items()
            )
            print(f"n={n} noise {noise}: {text}")
            win = {
                lo: np.mean([abs(r["windows"][lo] / r["d"] - 1) for r in sel if lo in r["windows"]])
                for lo in (64, 256, 1024)
            }
            full = np.mean([abs(r["gap"] / r["d"] - 1) for r in sel])
            print(
                f"   gap |err| full window {full:.4f}; banks >= 64 / 256 / 1024: "
                + " / ".join(f"{v:.4f}" for v in win.values())
            )
        clean = [r for r in rows if r["n"] == n and r["noise"] == 0.0]
        err = np.array([math.log(r["gap"] / r["d"]) for r in clean])
        for key in ("conc/ball", "curvature", "1-R2", "log n/2^(d/2)", "TwoNN/gap", "GRIDE(10,20)/gap"):
            v = np.array([r[key] for r in clean])
            resid = err - np.polyval(np.polyfit(v, err, 1), v)
            print(
                f"   clean n={n}: {key:18s} corr {np.corrcoef(v, err)[0, 1]:+.2f}, "
                f"mean |log err| {np.mean(np.abs(err)):.3f} -> {np.mean(np.abs(resid)):.3f} after a linear fit"
            )


if __name__ == "__main__":
    if sys.argv[1] == "diagnose":
        diagnose()
    else:
        evaluate(sys.argv[2], sys.argv[3])
