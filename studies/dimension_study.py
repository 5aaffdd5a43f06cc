"""The trusted ``dim`` on the suite of :mod:`studies.dimension_suite`: ``estimate_dimension`` against TwoNN, MLE, DANCo.

For each cloud and size: ``estimate_dimension(x, return_estimate=True)`` (the trusted ``"auto"`` dimension, its
interval and the gap law's own interval, from one search), TwoNN and MLE (k = 20) over every point's neighbours
among all the others (their strongest setting, this library's implementations, which equal scikit-dimension's),
and scikit-dimension's DANCo where it is installed (a dev-only comparison, n = 2,500 only: at 20,000 points one
DANCo fit took over 15 minutes on this machine).

Part ``dimension`` of ``python -m studies.validation`` runs a few *tune* clouds (``--quick``); the held-out half is
measured by ``python -m studies.dimension_heldout``, once.
"""

from __future__ import annotations

import importlib.util
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lightning_repgap.dimension import (
    DimensionEstimate,
    estimate_dimension,
    mle_dimension,
    twonn_dimension,
)
from lightning_repgap.search import nearest
from studies.dimension_retune import cached_curve, read_cached
from studies.dimension_suite import SuiteCloud, suite
from studies.suite_widths import bank_width

ESTIMATORS = ("auto", "gap", "twonn", "mle", "danco")
#: The clouds of the ``--quick`` part (tune half only): one per family.
QUICK_CLOUDS = (
    "helix 10 turns",
    "von Mises torus d=3, k=2",
    "tanh net d=5 -> R^64",
    "sphere S^3 + 5 %",
    "ball B^16",
    "cube [0,1]^20",
)


@dataclass
class Row:
    """What the study measured on one cloud at one size."""

    name: str
    family: str
    split: str
    dim: int
    ambient: int
    noise: float
    n: int
    auto: float
    auto_low: float
    auto_high: float
    method: str
    disagree: bool
    gap: float
    gap_low: float
    gap_high: float
    twonn: float
    mle: float
    danco: float | None
    seconds_auto: float

    def rel_error(self, estimator: str) -> float | None:
        """``|estimate - d| / d`` (``None`` if the estimator did not run)."""
        v = getattr(self, estimator)
        return None if v is None else abs(float(v) - self.dim) / self.dim


def _danco(x: np.ndarray) -> float | None:
    if importlib.util.find_spec("skdim") is None:
        return None
    import skdim  # dev-only comparison, never a runtime dependency

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(skdim.id.DANCo().fit(x).dimension_)


def sample(cloud: SuiteCloud, n: int) -> np.ndarray:
    """The study's ``n`` points of ``cloud`` (seeded by the cloud and ``n``)."""
    return cloud.sample(n, np.random.default_rng(cloud.seed * 1000 + n))


def local_baselines(x: np.ndarray) -> tuple[float, float]:
    """TwoNN and MLE (k = 20) over every point's 20 neighbours among all the others (they do not depend on the rule)."""
    dist = np.sqrt(nearest(x, x, k=20, exclude_self=True)[0])
    return twonn_dimension(dist), mle_dimension(dist, n_neighbors=20)


def _row(
    cloud: SuiteCloud, n: int, est: DimensionEstimate, seconds: float, local: tuple[float, float], danco: float | None
) -> Row:
    return Row(
        name=cloud.name,
        family=cloud.family,
        split=cloud.split,
        dim=cloud.dim,
        ambient=cloud.ambient,
        noise=cloud.noise,
        n=n,
        auto=est.dim,
        auto_low=est.dim_low,
        auto_high=est.dim_high,
        method=est.method,
        disagree=est.disagree,
        gap=est.dim_gap,
        gap_low=est.fit.dim_low,
        gap_high=est.fit.dim_high,
        twonn=local[0],
        mle=local[1],
        danco=danco,
        seconds_auto=seconds,
    )


def measure(cloud: SuiteCloud, n: int, *, danco: bool, danco_value: float | None = None) -> Row:
    """Sample ``n`` points of ``cloud`` (seeded by the cloud and ``n``) and run every estimator.

    ``danco_value``, when given, is DANCo precomputed on the same sample (:mod:`studies.dimension_danco`) and is used
    instead of fitting DANCo here (it does not depend on the rule, and takes longer than everything else).
    """
    x = sample(cloud, n)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = estimate_dimension(x, return_estimate=True)
    seconds = time.perf_counter() - t0
    fit_danco = danco and n <= 2500 and danco_value is None
    return _row(cloud, n, est, seconds, local_baselines(x), _danco(x) if fit_danco else danco_value)


def measure_cached(cloud: SuiteCloud, n: int, cache: Path, baselines: dict[str, Any]) -> Row:
    """:func:`measure`'s row from the cloud's cached search and precomputed rule-independent baselines (fast).

    The trusted ``dim`` is :func:`~lightning_repgap.dimension.trusted_dimension` of the search
    :func:`studies.dimension_retune.cached_curve` keeps (the same sample, bank / query split and seed as
    ``estimate_dimension``, whose 20 neighbours are the first 20 of the cached 64), so it is the number
    :func:`measure` reads; TwoNN, MLE and DANCo are read from ``baselines`` (the JSON of
    ``python -m studies.dimension_danco --local``). ``seconds_auto`` times the rule on the cached search only.
    """
    c = cached_curve(cloud, n, cache)
    # The width estimate_dimension reads (the bank's numerical rank, validation §21), so that this row is the number
    # measure() reads on the same sample.
    width = bank_width(cloud, n)
    t0 = time.perf_counter()
    est = read_cached(c, ambient=width)
    seconds = time.perf_counter() - t0
    key = str(n)
    local = (float(baselines["twonn"][key][cloud.name]), float(baselines["mle"][key][cloud.name]))
    return _row(cloud, n, est, seconds, local, baselines.get("values", {}).get(key, {}).get(cloud.name))


def summarise(rows: list[Row]) -> dict[str, dict[str, Any]]:
    """Per size: mean relative error of each estimator, interval coverage and median widths."""
    out: dict[str, dict[str, Any]] = {}
    for n in sorted({r.n for r in rows}):
        rs = [r for r in rows if r.n == n]
        s: dict[str, Any] = {"clouds": len(rs)}
        for e in ESTIMATORS:
            errs = [r.rel_error(e) for r in rs]
            vals = [v for v in errs if v is not None]
            # An estimator that fails on a cloud (DANCo's NaN on exactly collinear neighbours: the fifteenth split's
            # pentagon) is averaged over the clouds it read, and the failures are counted, not hidden in a NaN mean.
            finite = [v for v in vals if np.isfinite(v)]
            s[e] = float(np.mean(finite)) if len(vals) == len(rs) and finite else None
            if len(finite) < len(vals):
                s[f"{e}_failed"] = len(vals) - len(finite)
        s["auto_coverage"] = float(np.mean([r.auto_low <= r.dim <= r.auto_high for r in rs]))
        s["gap_coverage"] = float(np.mean([r.gap_low <= r.dim <= r.gap_high for r in rs]))
        s["auto_median_rel_width"] = float(np.median([(r.auto_high - r.auto_low) / r.dim for r in rs]))
        s["gap_median_rel_width"] = float(np.median([(r.gap_high - r.gap_low) / r.dim for r in rs]))
        s["methods"] = {m: sum(r.method == m for r in rs) for m in sorted({r.method for r in rs})}
        out[str(n)] = s
    return out


def run(
    *,
    split: str = "tune",
    sizes: tuple[int, ...] = (2500, 20000),
    names: tuple[str, ...] | None = None,
    danco: bool = True,
    log: Any = None,
    reverse: bool = False,
    baselines: dict[str, Any] | None = None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Measure ``split`` (optionally only the clouds ``names``) at ``sizes``; rows and summary as JSON-able values.

    ``baselines`` (the JSON :mod:`studies.dimension_danco` writes) replaces the DANCo fits of the clouds and sizes it
    holds; with ``cache`` as well, every row comes from :func:`measure_cached` (cached searches, precomputed TwoNN and
    MLE): the same numbers in seconds instead of minutes.
    """
    rows = []
    clouds = suite(split)
    for cloud in reversed(clouds) if reverse else clouds:
        if names is not None and cloud.name not in names:
            continue
        for n in sizes:
            if cache is not None:
                if baselines is None:
                    raise ValueError("`cache` needs `baselines` (TwoNN and MLE precomputed on the same samples).")
                rows.append(measure_cached(cloud, n, cache, baselines))
                continue
            pre = (baselines or {}).get("values", {}).get(str(n), {}).get(cloud.name)
            rows.append(measure(cloud, n, danco=danco, danco_value=pre))
            if log is not None:
                log("[row] " + json.dumps(asdict(rows[-1]), default=float))
            if log is not None:
                r = rows[-1]
                log(f"[dimension] {r.name} n={n} d={r.dim} auto={r.auto:.2f} ({r.method})")
    return {"split": split, "rows": [asdict(r) for r in rows], "summary": summarise(rows)}


def run_quick(*, seed: int = 0) -> dict[str, Any]:
    """The ``--quick`` part of the validation study: :data:`QUICK_CLOUDS` at n = 2,500, no DANCo."""
    del seed  # the suite is seeded per cloud
    return run(split="tune", sizes=(2500,), names=QUICK_CLOUDS, danco=False)


def markdown(results: list[dict[str, Any]]) -> list[str]:
    """Report lines (tables) for the results of :func:`run`, one block per split."""
    lines: list[str] = []
    for res in results:
        lines += [
            f"### {res.get('title') or res['split'] + ' split'}",
            "",
            "| n | clouds | auto | gap law | TwoNN | MLE | DANCo | auto coverage "
            "| gap coverage | auto median width / d | gap median width / d | decided by |",
            "|---" * 12 + "|",
        ]
        for n, s in res["summary"].items():
            fmt = [
                ("–" if s[e] is None else f"{s[e]:.3f}")
                + (f" ({s[e + '_failed']} failed)" if s.get(e + "_failed") else "")
                for e in ESTIMATORS
            ]
            methods = ", ".join(f"{k} {v}" for k, v in s["methods"].items())
            lines.append(
                f"| {int(n):,} | {s['clouds']} | " + " | ".join(fmt) + f" | {s['auto_coverage']:.2f} | "
                f"{s['gap_coverage']:.2f} | {s['auto_median_rel_width']:.3f} | {s['gap_median_rel_width']:.3f} | "
                f"{methods} |"
            )
        lines += [
            "",
            "| cloud | d | D | noise | n | auto [95 % interval] | method | gap law | TwoNN | MLE | DANCo |",
            "|---" * 11 + "|",
        ]
        for r in res["rows"]:
            dn = "–" if r["danco"] is None else f"{r['danco']:.2f}"
            lines.append(
                f"| {r['name']} | {r['dim']} | {r['ambient']} | {r['noise']:g} | {r['n']:,} | "
                f"{r['auto']:.2f} [{r['auto_low']:.2f}, {r['auto_high']:.2f}] | {r['method']} | {r['gap']:.2f} | "
                f"{r['twonn']:.2f} | {r['mle']:.2f} | {dn} |"
            )
        lines.append("")
    return lines


__all__ = ["ESTIMATORS", "QUICK_CLOUDS", "Row", "markdown", "measure", "run", "run_quick", "summarise"]
