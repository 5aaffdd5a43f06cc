r"""How far can a selection rule go? Per-cloud oracles over the trusted ``dim``'s candidates (issue #14).

How to run (from the repository root, with the package's venv; a few minutes on one thread, plus about half an hour
for ``--skdim``)::

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python -m studies.dimension_oracle --cache /work/cache \
        [--skdim] [--skdim-every 1] [--out /tmp/oracle.json]

``--cache``: a directory of ``c_<seed>_<n>.npz`` for every cloud of the opened splits at n = 2,500 and 20,000, as
written by :func:`studies.dimension_retune.cached_curve` (the ``"auto"`` split and seed, 64 neighbours per query); a
missing file is searched and written there. The eleventh split (measured once after this study) is not read: only
:data:`OPENED` (``tune`` ... ``tenth``, 361 clouds, all of them tuning data) is.

For every reading (cloud and size) it computes every candidate that :func:`lightning_repgap.dimension.trusted_dimension`
computes from its one search (the first 20 neighbours, as ``"auto"``), whether or not the rule reaches it:

* ``gap``: the calibrated gap law; ``gap_raw``: its uncalibrated ``-2 / slope``;
* ``local``: the mean of TwoNN's maximum likelihood and the MLE over 5 neighbours; ``twonn`` and ``mle5`` alone;
* ``gride_5_10`` and ``far`` (GRIDE over neighbours 10-20, the ``"local_far"`` reading);
* ``floor``: the noise-floor-corrected law, computed on every curve (not only where noise is diagnosed), the
  decaying floor's value where it explains the curve much better, else the constant floor's, never below 1;
  ``floor_const``: the constant floor's value alone (the rule falls back to it where the decaying one fails its checks);
* ``twonn_check`` and ``mle20_check``: the cross-checks ``dim_twonn`` / ``dim_mle`` (256 rows);
* ``rule``: the trusted ``dim`` itself (the blend where it blends).

and, beyond what the library computes (its table has 20 neighbours), ``gride_20_40`` and ``gride_32_64`` from the
cached 64-neighbour table. It then prints, per size and per group (split, noise level, family, all), the mean relative
error ``|x - d| / d`` of

* (a) the current rule;
* (b) the per-cloud oracle: the best candidate of each cloud, knowing the truth (a lower bound for any rule that
  *selects* one of these candidates), over the rule's own candidates (``gap``, ``local``, ``floor``, ``far``,
  ``rule``) and over every library candidate;
* (c) the oracle over ``{gap, local}`` only;
* (d) the oracle over a convex blend of any two library candidates, i.e. the distance from the truth to the hull
  of all candidates (a lower bound for any rule that *blends* two of them with weights in [0, 1]); and, for scale,
  the best *fixed* pair with an oracle weight per cloud, and the best fixed pair with one fixed weight (in sample);
* every single candidate as a fixed rule (e.g. always the gap law);
* the rule and the library oracle with every reading rounded to a whole number (at least 1): every truth of the suite
  is one, so rounding is a transformation that the suite rewards, not a selection.

It lists the readings where even the oracle over every library candidate errs by more than 10 %, with each
candidate's reading. ``--learned`` fits two leave-one-split-out learned rules on the candidates (:func:`learned`).
``--skdim`` also runs scikit-dimension 0.5.0's fast estimators (dev-only, never a dependency)
on the same 2,500-point samples (:func:`studies.dimension_retune.cached_curve`'s sample), one thread, and prints
each one's mean relative error next to the rule's on the clouds it ran on. ``--out`` writes every reading as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import json
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lightning_repgap._local_dimension import gride_dimension
from lightning_repgap._trusted_parts import (
    FAR_RANKS,
    NOISE_MIN_DIM,
    _floor_dimension,
    _floor_fit,
    _local_statistics,
    _noise_dimensions,
)
from studies.dimension_retune import cached_curve, read_cached
from studies.dimension_suite import SIZES, SPLITS, SuiteCloud, suite
from studies.suite_widths import bank_width

#: The opened splits (all tuning data); the eleventh is not read here.
OPENED = SPLITS[: SPLITS.index("tenth") + 1]
#: The candidates the rule chooses among (``rule`` is its own output, the blend where it blends).
RULE_SET = ("gap", "local", "floor", "far", "rule")
#: Every candidate the library computes from its one search (20 neighbours).
LIBRARY_SET = (*RULE_SET, "floor_const", "gap_raw", "twonn", "mle5", "gride_5_10", "twonn_check", "mle20_check")
#: Beyond the library: GRIDE at coarser neighbour scales of the cached 64-neighbour table.
EXTENDED_SET = (*LIBRARY_SET, "gride_20_40", "gride_32_64")
#: scikit-dimension's global estimators that ``--skdim`` can run (default keyword arguments).
SKDIM_ESTIMATORS = ("lPCA", "MADA", "TLE", "CorrInt", "MiND_ML", "KNN", "ESS", "TwoNN", "MLE", "DANCo")
#: The ones run by default: ESS took about 250 s per 2,500-point cloud on one thread here (DANCo: docs/validation.md).
DEFAULT_SKDIM = ("lPCA", "MADA", "TLE", "CorrInt", "MiND_ML", "KNN", "TwoNN", "MLE")


def rel_error(value: float, truth: float) -> float:
    """``|value - truth| / truth``; ``inf`` for a reading that is not a finite number.

    Example:
        >>> round(rel_error(4.4, 4.0), 12), rel_error(float("nan"), 2.0)
        (0.1, inf)
    """
    return abs(value - truth) / truth if math.isfinite(value) else math.inf


def oracle_error(values: Iterable[float], truth: float) -> float:
    """The smallest relative error of any finite candidate (the per-cloud oracle); ``inf`` if none is finite.

    Example:
        >>> oracle_error([2.0, 3.5, float("nan"), 5.0], 4.0)
        0.125
    """
    return min((rel_error(v, truth) for v in values), default=math.inf)


def hull_error(values: Iterable[float], truth: float) -> float:
    """The oracle error of a convex blend of any two finite candidates: the truth's distance to their hull.

    A blend ``t a + (1 - t) b`` (or a geometric one) with ``t`` in [0, 1] reaches every value between ``a`` and
    ``b``, so the best pair with the best weight reaches the truth exactly when the candidates bracket it, and
    otherwise the candidate nearest to it.

    Example:
        >>> hull_error([2.0, 5.0], 4.0), hull_error([2.0, 3.0], 4.0)
        (0.0, 0.25)
    """
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.inf
    lo, hi = min(finite), max(finite)
    return 0.0 if lo <= truth <= hi else min(abs(lo - truth), abs(hi - truth)) / truth


def pair_blend_error(a: np.ndarray, b: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean relative error of the geometric blend ``a^(1-t) b^t`` for each fixed weight ``t`` in ``weights``.

    Readings where either candidate is not a positive finite number count as the other one (or ``inf`` for neither).

    Example:
        >>> pair_blend_error(np.array([2.0]), np.array([8.0]), np.array([4.0]), np.array([0.0, 0.5, 1.0])).round(12)
        array([0.5, 0. , 1. ])
    """
    ok_a, ok_b = np.isfinite(a) & (a > 0), np.isfinite(b) & (b > 0)
    la = np.log(np.where(ok_a, a, np.where(ok_b, b, np.nan)))
    lb = np.log(np.where(ok_b, b, np.where(ok_a, a, np.nan)))
    blend = np.exp((1.0 - weights[:, None]) * la[None, :] + weights[:, None] * lb[None, :])
    err = np.abs(blend - truth[None, :]) / truth[None, :]
    return np.where(np.isfinite(err), err, np.inf).mean(axis=1)


def _gride(rows: np.ndarray, n1: int, n2: int) -> float:
    if rows.shape[1] < n2:
        return math.nan
    try:
        return float(gride_dimension(rows, n1=n1, n2=n2))
    except ValueError:
        return math.nan


def candidates(npz: dict[str, np.ndarray], ambient: int | None = None) -> tuple[dict[str, float], str]:
    """Every candidate of one cached search (see the module docstring) and the rule's method; ``ambient``: width."""
    knn = np.sqrt(npz["knn"])
    dist = knn[:, :20]
    conc = float(npz["conc"])
    est = read_cached(npz, ambient=ambient)
    out = {
        "rule": est.dim,
        "gap": est.dim_gap,
        "gap_raw": est.fit.dim_raw,
        "local": est.dim_local,
        "twonn_check": est.dim_twonn,
        "mle20_check": est.dim_mle,
    }
    stats = _local_statistics(dist)
    out["twonn"] = 1.0 / float(stats[0].mean()) if stats is not None else math.nan
    out["mle5"] = 1.0 / float(stats[1].mean()) if stats is not None else math.nan
    rows = dist[dist[:, 0] > 0.0]
    rows64 = knn[knn[:, 0] > 0.0]
    out["gride_5_10"] = _gride(rows, 5, 10)
    out["far"] = _gride(rows, *FAR_RANKS)
    out["gride_20_40"] = _gride(rows64, 20, 40)
    out["gride_32_64"] = _gride(rows64, 32, 64)
    sizes = np.asarray(npz["sizes"], dtype=np.float64)
    use = sizes >= 16
    gaps = np.asarray(npz["per_query"], dtype=np.float64)[use].mean(axis=1)
    _, floor = _floor_fit(sizes[use], gaps[:, None])
    with warnings.catch_warnings(), np.errstate(all="ignore"), contextlib.suppress(ValueError):
        warnings.simplefilter("ignore")
        out["floor"] = max(float(_noise_dimensions(sizes[use], gaps[:, None], floor, conc)[0]), NOISE_MIN_DIM)
        out["floor_const"] = max(_floor_dimension(sizes[use], gaps, float(floor[0]), conc), NOISE_MIN_DIM)
    out.setdefault("floor", math.nan)
    out.setdefault("floor_const", math.nan)
    return {k: float(v) for k, v in out.items()}, est.method


def read_suite(cache: Path, splits: Sequence[str] = OPENED, build_into: Path | None = None) -> list[dict[str, Any]]:
    """Every opened cloud's candidates at both sizes.

    A file missing from ``cache`` is read from ``build_into``, where it is searched and written if missing there too
    (``cache`` itself is never written); without ``build_into`` a missing file is an error.
    """
    records = []
    for split in splits:
        if split not in OPENED:
            raise ValueError(f"only the opened splits {OPENED} are read here, got {split!r}")
        for cloud in suite(split):
            for n in SIZES:
                path = cache / f"c_{cloud.seed}_{n}.npz"
                if path.exists():
                    npz = dict(np.load(path))
                elif build_into is not None:
                    build_into.mkdir(parents=True, exist_ok=True)
                    npz = cached_curve(cloud, n, build_into)
                else:
                    raise FileNotFoundError(f"missing cache file {path} ({split}: {cloud.name}, n = {n})")
                values, method = candidates(npz, bank_width(cloud, n))
                records.append(_record(cloud, n, values, method))
    return records


def _record(cloud: SuiteCloud, n: int, values: dict[str, float], method: str) -> dict[str, Any]:
    return {
        "split": cloud.split,
        "name": cloud.name,
        "family": cloud.family,
        "seed": cloud.seed,
        "d": cloud.dim,
        "ambient": cloud.ambient,
        "noise": cloud.noise,
        "n": n,
        "method": method,
        "values": values,
    }


def errors(records: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per-reading relative errors of the rule, every candidate and every oracle."""
    d = np.array([r["d"] for r in records], dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for name in EXTENDED_SET:
        out[name] = np.array([rel_error(r["values"][name], r["d"]) for r in records])
    out["oracle_rule_set"] = np.array([oracle_error([r["values"][k] for k in RULE_SET], r["d"]) for r in records])
    out["oracle_library"] = np.array([oracle_error([r["values"][k] for k in LIBRARY_SET], r["d"]) for r in records])
    out["oracle_extended"] = np.array([oracle_error([r["values"][k] for k in EXTENDED_SET], r["d"]) for r in records])
    out["oracle_gap_local"] = np.array([
        oracle_error([r["values"][k] for k in ("gap", "local")], r["d"]) for r in records
    ])
    # Every truth of the suite is a whole number: the rule (and the oracle) with readings rounded to one (at least 1).
    out["rule_rounded"] = np.array([rel_error(max(1.0, round(r["values"]["rule"])), r["d"]) for r in records])
    out["oracle_rounded"] = np.array([
        oracle_error([max(1.0, round(r["values"][k])) for k in LIBRARY_SET if math.isfinite(r["values"][k])], r["d"])
        for r in records
    ])
    out["hull_library"] = np.array([hull_error([r["values"][k] for k in LIBRARY_SET], r["d"]) for r in records])
    out["hull_gap_local"] = np.array([hull_error([r["values"][k] for k in ("gap", "local")], r["d"]) for r in records])
    assert d.size == len(records)
    return out


def best_pairs(records: Sequence[dict[str, Any]], names: Sequence[str] = LIBRARY_SET) -> list[tuple[str, float]]:
    """For each size the best fixed pair with an oracle weight per cloud, and the best pair with one fixed weight."""
    out = []
    weights = np.linspace(0.0, 1.0, 101)
    for n in SIZES:
        sel = [r for r in records if r["n"] == n]
        d = np.array([r["d"] for r in sel], dtype=np.float64)
        best_hull = (math.inf, "")
        best_fixed = (math.inf, "", 0.0)
        for a, b in itertools.combinations(names, 2):
            va = np.array([r["values"][a] for r in sel])
            vb = np.array([r["values"][b] for r in sel])
            hull = float(np.mean([hull_error([x, y], t) for x, y, t in zip(va, vb, d, strict=True)]))
            best_hull = min(best_hull, (hull, f"{a}+{b}"))
            errs = pair_blend_error(va, vb, d, weights)
            j = int(np.argmin(errs))
            best_fixed = min(best_fixed, (float(errs[j]), f"{a}^{1 - weights[j]:.2f} {b}^{weights[j]:.2f}", 0.0))
        out.append((f"n={n:,} best pair, oracle weight per cloud: {best_hull[1]}", best_hull[0]))
        out.append((f"n={n:,} best pair, one fixed weight (in sample): {best_fixed[1]}", best_fixed[0]))
    return out


def _group_of(record: dict[str, Any]) -> set[str]:
    """The groups a reading belongs to (see :func:`_group_labels`)."""
    noise = "clean" if record["noise"] == 0 else f"noise {record['noise']:.0%}"
    out = {"all", f"split {record['split']}", noise, f"family {record['family']}"}
    if not (record["family"] == "curve" and record["noise"] > 0):
        out.add("all but noisy curves")
    if record["noise"] == 0:
        out.add("clean d <= 8" if record["d"] <= 8 else "clean d > 8")
    return out


def _group_labels(records: Sequence[dict[str, Any]]) -> list[str]:
    noises = sorted({r["noise"] for r in records if r["noise"] > 0})
    families = sorted({r["family"] for r in records})
    return [
        "all",
        "all but noisy curves",
        *(f"split {s}" for s in OPENED),
        "clean",
        "clean d <= 8",
        "clean d > 8",
        *(f"noise {p:.0%}" for p in noises),
        *(f"family {f}" for f in families),
    ]


COLUMNS = (
    ("rule", "(a) rule"),
    ("oracle_rule_set", "(b) oracle, rule's set"),
    ("oracle_library", "(b) oracle, all library"),
    ("oracle_gap_local", "(c) oracle gap/local"),
    ("hull_library", "(d) 2-blend oracle"),
    ("oracle_extended", "oracle + 64-nb GRIDE"),
    ("rule_rounded", "rule rounded"),
    ("oracle_rounded", "oracle, rounded"),
    ("gap", "gap"),
    ("local", "local"),
    ("floor", "floor"),
    ("far", "far"),
)


def table(records: Sequence[dict[str, Any]], errs: dict[str, np.ndarray]) -> list[str]:
    """Markdown tables of the mean relative errors per size and group."""
    lines = []
    for n in SIZES:
        lines += [
            "",
            f"n = {n:,}",
            "",
            "| group | readings | " + " | ".join(h for _, h in COLUMNS) + " |",
            "|---|---|" + "---|" * len(COLUMNS),
        ]
        for label in _group_labels(records):
            idx = [i for i, r in enumerate(records) if r["n"] == n and label in _group_of(r)]
            if not idx:
                continue
            cells = " | ".join(f"{np.mean(errs[k][idx]):.3f}" for k, _ in COLUMNS)
            lines.append(f"| {label} | {len(idx)} | {cells} |")
    return lines


def single_candidates(records: Sequence[dict[str, Any]], errs: dict[str, np.ndarray]) -> list[str]:
    """Every candidate as a fixed rule, per size (mean relative error; ``inf`` readings counted as listed)."""
    lines = ["", "| candidate as a fixed rule | " + " | ".join(f"n={n:,}" for n in SIZES) + " |", "|---|---|---|"]
    for name in EXTENDED_SET:
        cells = []
        for n in SIZES:
            e = errs[name][[i for i, r in enumerate(records) if r["n"] == n]]
            bad = int((~np.isfinite(e)).sum())
            cells.append(f"{np.mean(e[np.isfinite(e)]):.3f}" + (f" ({bad} undefined)" if bad else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def why(record: dict[str, Any]) -> str:
    """A first reading of why every candidate misses (checked by hand in docs/validation.md)."""
    v = [x for k, x in record["values"].items() if k in LIBRARY_SET and math.isfinite(x)]
    side = "all read low" if max(v) < record["d"] else "all read high" if min(v) > record["d"] else "bracket d"
    noise = f"noise {record['noise']:.0%}" if record["noise"] else "clean"
    return f"{side}; {noise}"


def misses(records: Sequence[dict[str, Any]], errs: dict[str, np.ndarray], threshold: float = 0.10) -> list[str]:
    """The readings where the oracle over every library candidate errs by more than ``threshold``."""
    shown = ("rule", "gap", "gap_raw", "local", "twonn", "mle5", "far", "floor", "gride_20_40")
    lines = [
        "",
        f"Readings where the oracle over every library candidate errs by more than {threshold:.0%}:",
        "",
        "| split | cloud | family | d | noise | n | method | " + " | ".join(shown) + " | oracle | why |",
        "|---|---|---|---|---|---|---|" + "---|" * (len(shown) + 2),
    ]
    for i, r in enumerate(records):
        if errs["oracle_library"][i] > threshold:
            vals = " | ".join(f"{r['values'][k]:.2f}" for k in shown)
            lines.append(
                f"| {r['split']} | {r['name']} | {r['family']} | {r['d']} | {r['noise']:g} | {r['n']} | "
                f"{r['method']} | {vals} | {errs['oracle_library'][i]:.3f} | {why(r)} |"
            )
    return lines


def _features(record: dict[str, Any]) -> list[float]:
    """Scale-free features of a reading: ``log d_gap``, ``log n`` and every library candidate's ``log(x / d_gap)``."""
    v = record["values"]
    gap = v["gap"] if math.isfinite(v["gap"]) and v["gap"] > 0 else 1.0
    out = [math.log(gap), math.log(record["n"])]
    for name in LIBRARY_SET:
        x = v[name]
        out.append(math.log(x / gap) if math.isfinite(x) and x > 0 else 0.0)
    return out


def learned(records: Sequence[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """Leave-one-split-out learned rules (scikit-learn, dev-only): how much of the oracle a data-driven rule reaches.

    ``"select"``: one gradient-boosted model per library candidate predicts its relative error (capped at 2) from
    :func:`_features`; the candidate with the smallest prediction is taken. ``"regress"``: one gradient-boosted model
    predicts ``log(d / d_gap)`` from the same features (a learned correction, not a selection). Each split (``tune``
    and ``held_out`` count as two) is predicted by models fitted on the other ones. Returns the mean relative error
    per rule and size.
    """
    from sklearn.ensemble import GradientBoostingRegressor

    x = np.array([_features(r) for r in records])
    d = np.array([r["d"] for r in records], dtype=np.float64)
    err = np.array([[rel_error(r["values"][k], r["d"]) for k in LIBRARY_SET] for r in records])
    err = np.where(np.isfinite(err), err, 10.0)
    split = np.array([r["split"] for r in records])
    sizes = np.array([r["n"] for r in records])
    got = {"select": np.zeros(len(records)), "regress": np.zeros(len(records))}
    for held in OPENED:
        te, tr = split == held, split != held
        if not te.any():
            continue
        pred = np.zeros((int(te.sum()), len(LIBRARY_SET)))
        for j in range(len(LIBRARY_SET)):
            model = GradientBoostingRegressor(
                n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=0
            )
            pred[:, j] = model.fit(x[tr], np.minimum(err[tr, j], 2.0)).predict(x[te])
        got["select"][te] = err[te][np.arange(int(te.sum())), pred.argmin(axis=1)]
        model = GradientBoostingRegressor(
            n_estimators=300, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=0, loss="absolute_error"
        )
        reading = np.exp(model.fit(x[tr], np.log(d[tr]) - x[tr, 0]).predict(x[te]) + x[te, 0])
        got["regress"][te] = np.abs(reading - d[te]) / d[te]
    return {k: {n: float(v[sizes == n].mean()) for n in SIZES} for k, v in got.items()}


def run_skdim(
    clouds: Sequence[SuiteCloud],
    n: int,
    names: Sequence[str],
    log: Callable[[str], None],
    budget: float,
    partial: Path | None = None,
) -> dict[int, dict[str, float]]:
    """scikit-dimension's estimators on each cloud's ``n``-point sample: ``{seed: {estimator: value}}``.

    An estimator whose total time passes ``budget`` seconds stops being run (``nan`` from then on; reported). The
    readings so far are written to ``partial`` (JSON) after every cloud.
    """
    import skdim  # dev-only comparison, never a runtime dependency

    spent = dict.fromkeys(names, 0.0)
    out: dict[int, dict[str, float]] = {}
    for j, cloud in enumerate(clouds):
        x = cloud.sample(n, np.random.default_rng(cloud.seed * 1000 + n))
        row = {}
        for name in names:
            if spent[name] > budget:
                row[name] = math.nan
                continue
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    row[name] = float(getattr(skdim.id, name)().fit(x).dimension_)
            except Exception as exc:  # a third-party estimator failing on one cloud
                log(f"{name} failed on {cloud.name}: {type(exc).__name__}: {exc}")
                row[name] = math.nan
            spent[name] += time.perf_counter() - t0
        out[cloud.seed] = row
        if partial is not None:  # written after every cloud: a run cut short keeps what it measured
            partial.write_text(json.dumps({str(k): v for k, v in out.items()}, indent=1))
        log(f"[{j + 1}/{len(clouds)}] {cloud.name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()))
    log("skdim seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in spent.items()))
    return out


#: scikit-dimension estimators that return whole numbers (a rounded reading can equal an integer truth by rounding).
SKDIM_INTEGER = ("lPCA", "KNN")


def skdim_table(records: Sequence[dict[str, Any]], sk: dict[int, dict[str, float]], n: int) -> list[str]:
    """Each scikit-dimension estimator's mean relative error next to the rule's and the oracle's, same clouds.

    Columns: the estimator, the rule and the library oracle on the clouds it ran on; the same on the clean ones and on
    the noisy curves; and the per-cloud oracle over the library's candidates plus that estimator (what it would add).
    """
    by_seed = {r["seed"]: r for r in records if r["n"] == n}
    lines = [
        "",
        f"scikit-dimension 0.5.0 at n = {n:,} (same samples), each against the rule on the clouds it ran on:",
        "",
        "| estimator | clouds | estimator | rule | oracle (library) | oracle (library + it) | clean: estimator / rule "
        "| noisy curves: estimator / rule |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = sorted({k for v in sk.values() for k in v}, key=lambda k: (*SKDIM_ESTIMATORS, k).index(k))

    def mean(values: list[float], idx: list[int]) -> str:
        return f"{np.mean([values[i] for i in idx]):.3f}" if idx else "-"

    for name in names:
        rows = [(by_seed[s], v[name]) for s, v in sk.items() if s in by_seed and math.isfinite(v.get(name, math.nan))]
        if not rows:
            lines.append(f"| {name} | 0 | - | - | - | - | - | - |")
            continue
        est = [rel_error(v, r["d"]) for r, v in rows]
        rule = [rel_error(r["values"]["rule"], r["d"]) for r, _ in rows]
        orc = [oracle_error([r["values"][k] for k in LIBRARY_SET], r["d"]) for r, _ in rows]
        plus = [oracle_error([*(r["values"][k] for k in LIBRARY_SET), v], r["d"]) for r, v in rows]
        clean = [i for i, (r, _) in enumerate(rows) if r["noise"] == 0]
        curves = [i for i, (r, _) in enumerate(rows) if r["noise"] > 0 and r["family"] == "curve"]
        lines.append(
            f"| {name} | {len(rows)} | {np.mean(est):.3f} | {np.mean(rule):.3f} | {np.mean(orc):.3f} | "
            f"{np.mean(plus):.3f} | {mean(est, clean)} / {mean(rule, clean)} | {mean(est, curves)} / "
            f"{mean(rule, curves)} |"
        )
    # the per-cloud oracle over the library and the skdim estimators: could the published ones fill the rule's gaps?
    for label, keep in (("every", names), ("every non-integer", [k for k in names if k not in SKDIM_INTEGER])):
        both = [
            (by_seed[s], [*(by_seed[s]["values"][k] for k in LIBRARY_SET), *(v.get(k, math.nan) for k in keep)])
            for s, v in sk.items()
            if s in by_seed
        ]
        if both:
            lines.append("")
            lines.append(
                f"Per-cloud oracle over the library's candidates and {label} scikit-dimension estimator "
                f"({len(both)} clouds): {np.mean([oracle_error(vals, r['d']) for r, vals in both]):.3f}"
            )
    return lines


def _skdim_readings(args: argparse.Namespace) -> dict[int, dict[str, float]]:
    """Run scikit-dimension (``--skdim``) or read and merge earlier runs' JSON (``--skdim-json``, repeatable)."""
    sk: dict[int, dict[str, float]] = {}
    if args.skdim:
        if importlib.util.find_spec("skdim") is None:
            raise SystemExit("--skdim needs scikit-dimension (dev-only): pip install scikit-dimension==0.5.0")
        clouds = [c for s in OPENED for c in suite(s)][args.skdim_start :: args.skdim_every]
        names = tuple(args.skdim_estimators.split(","))
        out = args.skdim_json[0] if args.skdim_json else None
        return run_skdim(clouds, SIZES[0], names, lambda m: print(m, flush=True), args.skdim_budget, out)
    for path in args.skdim_json:
        for seed, row in json.loads(path.read_text()).items():
            sk.setdefault(int(seed), {}).update(row)
    return sk


def main(argv: list[str] | None = None) -> int:
    """Read the opened splits, print the oracle tables (and the scikit-dimension comparison with ``--skdim``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True, help="directory of c_<seed>_<n>.npz (read only)")
    ap.add_argument("--build-into", type=Path, default=None, help="search missing cache files and write them here")
    ap.add_argument("--skdim", action="store_true", help="also run scikit-dimension's estimators at n = 2,500")
    ap.add_argument("--skdim-estimators", default=",".join(DEFAULT_SKDIM), help="comma-separated skdim.id names")
    ap.add_argument("--skdim-every", type=int, default=1, help="run them on every k-th opened cloud only")
    ap.add_argument("--skdim-start", type=int, default=0, help="index of the first opened cloud they run on")
    ap.add_argument("--skdim-budget", type=float, default=600.0, help="seconds per estimator before it is dropped")
    ap.add_argument(
        "--skdim-json",
        type=Path,
        action="append",
        default=[],
        help="with --skdim: write the readings here (the first one given); without: read and merge them (repeatable)",
    )
    ap.add_argument("--skip-oracle", action="store_true", help="only run --skdim (no cache needed)")
    ap.add_argument("--learned", action="store_true", help="also fit leave-one-split-out learned rules (sklearn)")
    ap.add_argument("--out", type=Path, default=None, help="write every reading as JSON")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    sk = _skdim_readings(args)
    if args.skip_oracle:
        return 0
    t0 = time.perf_counter()
    records = read_suite(args.cache, build_into=args.build_into)
    errs = errors(records)
    seconds = time.perf_counter() - t0
    print(f"read {len(records)} readings of {len(records) // len(SIZES)} opened clouds in {seconds:.0f} s")
    print("\n".join(table(records, errs)))
    print("\n".join(single_candidates(records, errs)))
    print("")
    for label, value in best_pairs(records):
        print(f"{label}: {value:.3f}")
    print("\n".join(misses(records, errs)))
    if args.learned:
        rule = {
            n: float(np.mean([e for e, r in zip(errs["rule"], records, strict=True) if r["n"] == n])) for n in SIZES
        }
        print("\nLeave-one-split-out learned rules (mean relative error; the rule's in-sample value for comparison):")
        for name, by_n in learned(records).items():
            print(f"{name}: " + ", ".join(f"n={n:,} {by_n[n]:.3f} (rule {rule[n]:.3f})" for n in SIZES))
    if sk:
        print("\n".join(skdim_table(records, sk, SIZES[0])))
    if args.out is not None:
        for i, r in enumerate(records):
            r["errors"] = {k: float(v[i]) for k, v in errs.items()}
            if r["n"] == SIZES[0] and r["seed"] in sk:
                r["skdim"] = sk[r["seed"]]
        args.out.write_text(json.dumps(records, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
