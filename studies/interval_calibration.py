r"""Split-conformal calibration of the trusted ``dim``'s interval (issue #14), validated leave-one-split-out.

How to run (from the repository root, with the package's venv; a few minutes, more under load). The one command
that refits the table (on the project's host, where the caches live)::

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python -m studies.interval_calibration --cache-root /work/cache \
        --cache eleventh=/work/cache11 --cache twelfth=/work/cache12 --cache thirteenth=/work/cache13 \
        --cache fourteenth=/work/cache14 --cache fifteenth=/work/cache15

Caches: one directory per split holding ``c_<seed>_<n>.npz`` for every cloud of that split of
:mod:`studies.dimension_suite` at n = 2,500 and 20,000 (the gap curve and 64-neighbour table of the ``"auto"``
split and seed, as written by :func:`studies.dimension_retune.cached_curve`). ``--cache-root`` is the directory of
every split not named by a ``--cache SPLIT=DIR``; a missing file is an error (nothing is searched here).

What it does: :func:`lightning_repgap.dimension.trusted_dimension` on every cloud of the opened splits (:data:`OPENED`:
576 clouds, 1,152 readings) exactly as ``method="auto"`` computes it, but with :data:`INTERVAL_SCALE
<lightning_repgap._trusted_parts.INTERVAL_SCALE>` set to 1 (the uncalibrated shape of the interval). ``dim`` is not
affected by the interval. For each reading the score is the factor ``q`` its log half-width (on the side of the
truth) needs to reach the truth (0 where the shape-bias floor alone reaches it); then the conformal quantile (rank
``ceil(0.95 (N + 1))`` of ``N``) of: ``"local"`` and ``"gap"`` together at each size; ``"local_far"`` and
``"noise_floor"`` each over both sizes; ``"blend"`` at each size, of the value its ramp needs where the linear
interpolation between ``"local"`` and ``"gap"`` misses. It prints

* the leave-one-split-out table: calibrate on the other splits, coverage and median width / d on the one left out,
  for each split and pooled (the honest numbers);
* the in-sample numbers (calibrated on all opened splits, measured on them; optimistic by construction) and, for
  comparison, those of the uncalibrated shape and of the gap law's own bootstrap interval;
* the table to paste into ``INTERVAL_SCALE`` in ``lightning_repgap/_trusted_parts.py`` (calibrated on all
  opened splits).

``--out`` writes every reading (split, cloud, n, d, dim, method, weight, the shape's ends, the scores) as JSON.
If the point-estimate rule changes, re-run this against the new rule and paste the printed table; the module's
``INTERVAL_SCALE`` is ignored here (set to 1 while reading), so the result does not depend on the pasted values.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import lightning_repgap._trusted_parts as parts
from studies.dimension_retune import read_cached
from studies.dimension_suite import SIZES, SPLITS, suite
from studies.suite_widths import bank_width

LEVEL = 0.95
METHODS = ("local", "gap", "blend", "local_far", "noise_floor")
PLAIN = ("local", "gap")  # one value per size for both
# one value for both sizes: "local_far" has too few readings (34 and 9 with the ninth round's rule; 24 and 6
# before), "noise_floor"'s shape is mostly the model's reach to the plain gap law, whose size does not shrink with n
POOLED = ("local_far", "noise_floor")
#: The opened splits the table is calibrated on (each added once it had been measured: the twelfth to the fifteenth,
#: measured once each in validation §15, §17, §19 and §22, were added in §25). A split written after the fifteenth
#: (the sixteenth) is never read here before its own measurement.
OPENED = SPLITS[: SPLITS.index("fifteenth") + 1]


def conformal_quantile(scores: list[float], level: float = LEVEL) -> float:
    """The split-conformal quantile: the ``ceil(level (N + 1))``-th smallest score (the largest when that is > N).

    Example:
        >>> conformal_quantile([float(i) for i in range(1, 20)])
        19.0
        >>> conformal_quantile([float(i) for i in range(1, 40)])
        38.0
    """
    if not scores:
        return 1.0  # no reading of that kind: keep the uncalibrated shape
    ranked = sorted(scores)
    k = math.ceil(level * (len(ranked) + 1))
    return ranked[min(k, len(ranked)) - 1]


def read_suite(roots: dict[str, Path], default: Path, n_bootstrap: int) -> list[dict[str, Any]]:
    """Every opened cloud's reading with the uncalibrated interval shape (``INTERVAL_SCALE`` set to 1)."""
    saved = dict(parts.INTERVAL_SCALE)
    z = statistics.NormalDist().inv_cdf(0.5 + LEVEL / 2.0)
    rows = []
    try:
        parts.INTERVAL_SCALE.update(dict.fromkeys(saved, (1.0, 1.0)))
        for split in OPENED:
            cache = roots.get(split, default)
            for cloud in suite(split):
                for n in SIZES:
                    path = cache / f"c_{cloud.seed}_{n}.npz"
                    if not path.exists():
                        raise FileNotFoundError(f"missing cache file {path} ({split}: {cloud.name}, n = {n})")
                    est = read_cached(dict(np.load(path)), n_bootstrap=n_bootstrap, ambient=bank_width(cloud, n))
                    d, dim = float(cloud.dim), est.dim
                    if d < dim:
                        side = math.log(dim / est.dim_low) if est.dim_low > 0 else math.inf
                    else:
                        side = math.log(est.dim_high / dim)
                    need = abs(math.log(dim / d))
                    least = z * parts._interval_floor(est.method, est.weight_gap)
                    rows.append({
                        "split": split,
                        "name": cloud.name,
                        "n": n,
                        "d": d,
                        "noise": cloud.noise,
                        "dim": dim,
                        "dim_gap": est.dim_gap,
                        "gap_low": est.fit.dim_low,
                        "gap_high": est.fit.dim_high,
                        "method": est.method,
                        "w": est.weight_gap,
                        "floor_share": est.noise_floor,
                        "dim_local": est.dim_local,
                        "dim_twonn": est.dim_twonn,
                        "dim_mle": est.dim_mle,
                        "clusters": est.clusters,
                        "low": est.dim_low,
                        "high": est.dim_high,
                        "log_low": math.log(dim / est.dim_low) if est.dim_low > 0 else math.inf,
                        "log_high": math.log(est.dim_high / dim),
                        "least": least,
                        # the factor the shape's half-width needs (0: the floor alone reaches the truth)
                        "score": 0.0 if need <= least else (need / side if side > 0 else math.inf),
                    })
    finally:
        parts.INTERVAL_SCALE.update(saved)
    return rows


def _round_up(q: float) -> float:
    return math.ceil(q * 1000.0 - 1e-9) / 1000.0


def _ramp(w: float) -> float:
    return min(1.0, w / parts.INTERVAL_BLEND_RAMP, (1.0 - w) / parts.INTERVAL_BLEND_RAMP)


def calibrate(rows: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """The conformal table ``INTERVAL_SCALE`` from ``rows`` (see the module docstring for the groups)."""
    table: dict[str, list[float]] = {m: [1.0, 1.0] for m in METHODS}
    for i, n in enumerate(SIZES):
        # "local" and "gap" share one value per size: the gap law alone decides 62-65 readings per size, and the
        # conformal rank of so few falls on one of their few largest scores (separate scales came out wider and no
        # better calibrated: validation §14).
        q = conformal_quantile([r["score"] for r in rows if r["method"] in PLAIN and r["n"] == n])
        table["local"][i] = table["gap"][i] = q
    for m in POOLED:
        table[m] = [conformal_quantile([r["score"] for r in rows if r["method"] == m])] * 2
    for i, n in enumerate(SIZES):
        # the blend's own value only where the linear interpolation between "local" and "gap" misses
        need = []
        for r in rows:
            if r["method"] == "blend" and r["n"] == n:
                lin = (1.0 - r["w"]) * table["local"][i] + r["w"] * table["gap"][i]
                need.append(0.0 if r["score"] <= lin else r["score"] / max(_ramp(r["w"]), 1e-12))
        table["blend"][i] = conformal_quantile(need)
    # rounded up: rounding to nearest could drop the reading that sets a quantile below its own score
    return {m: (_round_up(a), _round_up(b)) for m, (a, b) in table.items()}


def apply(row: dict[str, Any], table: dict[str, tuple[float, float]]) -> tuple[float, float]:
    """The calibrated interval of one reading under ``table`` (as the library computes it at the suite's sizes)."""
    saved = dict(parts.INTERVAL_SCALE)
    try:
        parts.INTERVAL_SCALE.update(table)
        q = parts._interval_scale(row["method"], row["w"], parts.INTERVAL_BANKS[SIZES.index(row["n"])])
    finally:
        parts.INTERVAL_SCALE.update(saved)
    dim = row["dim"]
    low = dim * math.exp(-max(q * row["log_low"], row["least"])) if math.isfinite(row["log_low"]) else row["low"]
    return low, dim * math.exp(max(q * row["log_high"], row["least"]))


def summary(rows: Sequence[dict[str, Any]], ends: Sequence[tuple[float, float]]) -> str:
    """Coverage and median width / d at each size (sizes without a reading are left out)."""
    out = []
    for n in SIZES:
        pick = [(r, e) for r, e in zip(rows, ends, strict=True) if r["n"] == n]
        if not pick:
            continue
        cov = np.mean([lo <= r["d"] <= hi for r, (lo, hi) in pick])
        width = np.median([(hi - lo) / r["d"] for r, (lo, hi) in pick])
        out.append(f"n={n:5d}: {len(pick):3d} cov {cov:.3f} width {width:.3f}")
    return "   ".join(out)


def main(argv: list[str] | None = None) -> None:
    """Read the suite, print the leave-one-split-out table, the in-sample numbers and the table to paste."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-root", type=Path, required=True, help="cache directory of every split not in --cache")
    ap.add_argument("--cache", action="append", default=[], metavar="SPLIT=DIR", help="one split's cache directory")
    ap.add_argument("--n-bootstrap", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None, help="write every reading as JSON")
    args = ap.parse_args(argv)
    roots = {}
    for item in args.cache:
        split, _, path = item.partition("=")
        if split not in OPENED or not path:
            raise SystemExit(f"--cache wants SPLIT=DIR with SPLIT one of {', '.join(OPENED)}, got {item!r}")
        roots[split] = Path(path)
    rows = read_suite(roots, args.cache_root, args.n_bootstrap)

    print("leave-one-split-out (calibrated on the other splits, measured on this one):")
    held_rows, held_ends = [], []
    for split in OPENED:
        table = calibrate([r for r in rows if r["split"] != split])
        mine = [r for r in rows if r["split"] == split]
        ends = [apply(r, table) for r in mine]
        held_rows += mine
        held_ends += ends
        print(f"  {split:9s} {summary(mine, ends)}")
    print(f"  {'pooled':9s} {summary(held_rows, held_ends)}")
    for method in METHODS:
        pick = [(r, e) for r, e in zip(held_rows, held_ends, strict=True) if r["method"] == method]
        if pick:
            cov = np.mean([lo <= r["d"] <= hi for r, (lo, hi) in pick])
            print(f"    {method:11s} {len(pick):3d} readings, cov {cov:.3f};   {summary(*zip(*pick, strict=True))}")
    table = calibrate(rows)
    print("in-sample (calibrated on all opened splits):")
    print(f"  calibrated   {summary(rows, [apply(r, table) for r in rows])}")
    print(f"  uncalibrated {summary(rows, [(r['low'], r['high']) for r in rows])}")
    print(f"  gap law      {summary(rows, [(r['gap_low'], r['gap_high']) for r in rows])}")
    print("INTERVAL_SCALE (paste into lightning_repgap/_trusted_parts.py):")
    print("{\n" + "".join(f'    "{m}": ({a}, {b}),\n' for m, (a, b) in table.items()) + "}")
    if args.out is not None:
        from lightning_repgap.snapshot import atomic_write

        atomic_write(args.out, json.dumps(rows).encode())


if __name__ == "__main__":
    main()
