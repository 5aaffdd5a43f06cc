"""Part 4 of the validation study: which stopping rule works, on real training runs, without labels?

Three regimes are recorded by :mod:`studies.stopping_record` (every epoch's ``repgap/*`` keys, baselines and the
truth; see its docstring). Each monitor is replayed as it would run in a Trainer, and scored by its *regret*: the
truth at the checkpoint it keeps against the truth at the run's best epoch.

* Lightning's ``EarlyStopping(monitor, mode, patience=4, check_finite=False)`` with a best-checkpoint
  ``ModelCheckpoint`` on the same key (the README's old recipe), for the baselines and for raw ``repgap`` keys;
* no stopping (the last epoch);
* the sustained-rise rule of :mod:`lightning_repgap.stopping`, replayed through the very function the callback
  calls (:func:`lightning_repgap.stopping.replay`).

Regret: in accuracy points (supervised: clean test accuracy; SSL: 5-NN accuracy) and, for the generative regime,
in per cent of the best epoch's gap from fresh data to fresh samples.

Tuning discipline. Three sets of runs were recorded, in this order. ``studies/stopping_runs.json`` (96 runs) was
recorded in two halves; a first rule (0.1.x) was chosen on one and scored on the other. ``studies/stopping_fresh.json``
(48 runs, :data:`studies.stopping_record.PLANS` ``"fresh"``) was planned and committed before the second rule (0.2)
was chosen on the 96, and scored once with it. All 144 are *tuning* runs now (:func:`load_tuning_runs`; :func:`tune`
reads all of them). ``studies/stopping_fresh2.json`` (96 runs, plan ``"fresh2"``: seeds 20-25, a data set never
used, new widths and sizes) is the *untouched* set of the third rule: its plan was committed and its recording
started before any rule of the third search was scored, and it is scored once, with the frozen rule
(``studies/stopping_rule.json``).

    python -m studies.stopping_record studies/stopping_fresh2.json --plan=fresh2  # record the untouched set
    python -m studies.stopping tune                                # choose the rule on the 144 tuning runs
    python -m studies.stopping evaluate                            # untouched-set regret -> docs/stopping.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lightning_repgap.stopping import replay

HERE = Path(__file__).resolve().parent
RUNS_FILE = HERE / "stopping_runs.json"
FRESH_FILE = HERE / "stopping_fresh.json"
#: Every run the rules were chosen on (the second file was the untouched set of the previous rule).
TUNING_FILES = (RUNS_FILE, FRESH_FILE)
#: The untouched runs of the present rule.
UNTOUCHED_FILE = HERE / "stopping_fresh2.json"
RULE_FILE = HERE / "stopping_rule.json"
RESULTS_FILE = HERE.parent / "docs" / "stopping.json"
REGIMES = ("supervised", "ssl", "generative")
#: Patience of the Lightning ``EarlyStopping`` baselines (the README's old recipe).
BASELINE_PATIENCE = 4
#: Regret unit per regime: accuracy points, or per cent of the best epoch's gap.
UNITS = {"supervised": "points", "ssl": "points", "generative": "%"}
#: The tuning grid. Per key, the values tried for its rise ``tolerance`` (evidence towards stopping), its
#: ``keep_tolerance`` (the band of recommended epochs) and its warm-up: ``gap_norm`` (memorising classifiers),
#: optionally ``dim_mle`` (the Levina-Bickel dimension; with noisy labels it rises while a classifier memorises, on
#: runs where ``gap_norm`` rises too little), and ``gap_ratio`` (copying generators, its band fixed by the previous
#: searches). ``patience`` is at least 2 by design: one measurement is never enough evidence to end a run.
GRID: dict[str, Any] = {
    "gap_norm": {"tolerance": (0.5, 0.7, 1.0), "keep_tolerance": (0.05, 0.1, 0.2), "warmup": (6, 8, 10)},
    "dim_mle": {"tolerance": (0.15, 0.2, 0.25, 0.3, 0.4), "keep_tolerance": (0.02, 0.05, 0.1), "warmup": (4, 6, 8, 10)},
    "gap_ratio": {"tolerance": (0.15,), "keep_tolerance": (0.15,), "warmup": (1,)},
    "patience": (2, 3, 4),
}
#: The rules frozen before this grid, kept in the comparison: 0.1.x (chosen on half of the first 96 runs) and 0.2
#: (chosen on all 96, scored once on the 48 of ``studies/stopping_fresh.json``).
PREVIOUS_RULES: dict[str, dict[str, Any]] = {
    "0.1.x": {
        "monitor": ["gap_norm", "gap_ratio"],
        "tolerance": [0.3, 0.15],
        "keep_tolerance": [0.3, 0.15],
        "patience": 4,
        "warmup": [5, 1],
    },
    "0.2": {
        "monitor": ["gap_norm", "gap_ratio"],
        "tolerance": [0.7, 0.15],
        "keep_tolerance": [0.1, 0.15],
        "patience": 3,
        "warmup": [8, 1],
    },
}


@dataclass(frozen=True)
class Monitor:
    """One way of choosing the kept checkpoint: a Lightning baseline, no stopping, or the rise rule."""

    name: str
    kind: str  # "lightning", "none" or "rule"
    key: str | tuple[str, ...] = ""
    mode: str = "min"
    params: dict[str, Any] = field(default_factory=dict)

    def kept(self, epochs: dict[str, list[float]]) -> tuple[int, int | None]:
        """``(kept_epoch, stopped_epoch)`` on one recorded run (``stopped_epoch`` ``None``: ran to the end)."""
        n = len(epochs["truth"])
        if self.kind == "none":
            return n - 1, None
        if self.kind == "lightning":
            assert isinstance(self.key, str)
            values = [math.nan if v is None else float(v) for v in epochs[self.key]]
            return replay_lightning(values, self.mode, BASELINE_PATIENCE)
        series = [[math.nan if v is None else float(v) for v in epochs[k]] for k in self.key]
        best, stopped = replay(series, **self.params)
        return (n - 1 if best < 0 else best), stopped  # stopped before any finite measurement: the last weights


def replay_lightning(values: Sequence[float], mode: str, patience: int) -> tuple[int, int | None]:
    """Lightning's ``EarlyStopping(min_delta=0, check_finite=False)`` + ``ModelCheckpoint(save_top_k=1)``.

    EarlyStopping counts a NaN as no improvement; ModelCheckpoint treats a NaN as the worst value and keeps the
    first checkpoint until a strictly better one comes.

    Returns:
        ``(kept_epoch, stopped_epoch)``.

    Example:
        >>> replay_lightning([3.0, 2.0, 2.5, 2.1, 2.0, 2.2], "min", 3)
        (1, 4)

    """
    sign = 1.0 if mode == "min" else -1.0
    best_es, wait = math.inf, 0
    best_ckpt, kept = math.inf, 0
    for epoch, raw in enumerate(values):
        v = sign * raw
        if v < best_es:  # False for NaN
            best_es, wait = v, 0
        else:
            wait += 1
        ckpt_v = math.inf if math.isnan(v) else v
        if epoch == 0 or ckpt_v < best_ckpt:
            best_ckpt, kept = ckpt_v, epoch
        if wait >= patience:
            return kept, epoch
    return kept, None


def regret(run: dict[str, Any], epoch: int) -> float:
    """Truth lost by keeping ``epoch`` instead of the run's best one (points, or per cent of the best gap)."""
    truth = np.asarray(run["epochs"]["truth"], dtype=float)
    if run["regime"] == "generative":
        return float(100 * (truth[epoch] / np.nanmin(truth) - 1))
    return float(100 * (np.nanmax(truth) - truth[epoch]))


def monitors(regime: str, rule: dict[str, Any] | None) -> list[Monitor]:
    """The monitors compared in a regime: the rule (if given), the baselines and raw repgap keys."""
    out = [] if rule is None else [rule_monitor(rule)]
    for version, previous_rule in PREVIOUS_RULES.items():
        previous = rule_monitor(previous_rule)
        if rule is not None and previous.name != out[0].name:
            out.append(Monitor(f"previous rule ({version} defaults)", "rule", previous.key, params=previous.params))
    out.append(Monitor("no stopping", "none"))
    if regime == "supervised":
        out += [
            Monitor("val_loss (labels)", "lightning", "val_loss", "min"),
            Monitor("val_acc (labels)", "lightning", "val_acc", "max"),
        ]
    elif regime == "ssl":
        out += [
            Monitor("RankMe", "lightning", "rankme", "max"),
            Monitor("SSL val loss", "lightning", "val_loss", "min"),
        ]
    else:
        out.append(Monitor("denoising val loss", "lightning", "val_loss", "min"))
    out += [
        Monitor("EarlyStopping(repgap/gap_norm, min)", "lightning", "gap_norm", "min"),
        Monitor("EarlyStopping(repgap/dim, min)", "lightning", "dim", "min"),
    ]
    return out


def rule_monitor(rule: dict[str, Any]) -> Monitor:
    """The rise rule with the given ``monitor``, ``tolerance``, ``keep_tolerance``, ``patience`` and ``warmup``."""
    keys = tuple(rule["monitor"])
    params = {
        "tolerance": tuple(rule["tolerance"]),
        "keep_tolerance": tuple(rule.get("keep_tolerance", rule["tolerance"])),
        "patience": rule["patience"],
        "warmup": tuple(rule["warmup"]),
    }
    shown = {k: (list(v) if isinstance(v, tuple) else v) for k, v in {"monitor": keys, **params}.items()}
    name = "RepresentationGapEarlyStopping(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"
    return Monitor(name, "rule", keys, params=params)


def candidates() -> list[dict[str, Any]]:
    """Every rule of :data:`GRID` (keep tolerances at most the tolerances), and the :data:`PREVIOUS_RULES`."""

    def per_key(key: str) -> list[tuple[float, float, int]]:
        g = GRID[key]
        return [(t, k, w) for t, k, w in itertools.product(g["tolerance"], g["keep_tolerance"], g["warmup"]) if k <= t]

    out = list(PREVIOUS_RULES.values())
    optional: list[tuple[float, float, int] | None] = [None, *per_key("dim_mle")]
    for norm, mle, ratio, patience in itertools.product(
        per_key("gap_norm"), optional, per_key("gap_ratio"), GRID["patience"]
    ):
        keys = [("gap_norm", norm)] + ([] if mle is None else [("dim_mle", mle)]) + [("gap_ratio", ratio)]
        out.append({
            "monitor": [k for k, _ in keys],
            "tolerance": [v[0] for _, v in keys],
            "keep_tolerance": [v[1] for _, v in keys],
            "patience": patience,
            "warmup": [v[2] for _, v in keys],
        })
    return out


def score(runs: list[dict[str, Any]], monitor: Monitor) -> dict[str, Any]:
    """Regret of every run, and whether the generative run kept a memorised checkpoint it could have avoided."""
    rows: list[dict[str, Any]] = []
    for run in runs:
        kept, stopped = monitor.kept(run["epochs"])
        row: dict[str, Any] = {"regret": regret(run, kept), "kept": kept, "stopped": stopped}
        if run["regime"] == "generative":
            row["memorised_kept"] = bool(run["epochs"]["memorised"][kept]) and avoidable_memorisation(run)
        rows.append(row)
    return {"rows": rows, **summary([r["regret"] for r in rows])}


def avoidable_memorisation(run: dict[str, Any]) -> bool:
    """True when some non-memorised epoch's truth is within 10 % of the best epoch's."""
    truth = np.asarray(run["epochs"]["truth"], dtype=float)
    memorised = np.asarray(run["epochs"]["memorised"], dtype=bool)
    return bool(((~memorised) & (truth <= 1.1 * np.nanmin(truth))).any())


def summary(regrets: Sequence[float], n_bootstrap: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean and worst regret, with a 95 % percentile bootstrap interval of the mean over runs."""
    x = np.asarray(regrets, dtype=float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), (n_bootstrap, len(x)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return {"mean": float(x.mean()), "low": float(low), "high": float(high), "worst": float(x.max()), "n": len(x)}


# ---------------------------------------------------------------------------------------------------------- tuning


def objective(
    by_regime: dict[str, list[dict[str, Any]]],
    rule: dict[str, Any],
    references: dict[str, dict[str, Any]] | None = None,
) -> tuple[int, float]:
    """What the tuning minimises: ``(targets missed, score)``, compared in that order.

    *Targets missed*: how many of the issue's targets (:func:`targets`) the rule misses on these runs. *Score*:
    each regime's mean regret over its no-stopping regret (floored at 1 point, or 10 % for the generative gap, so
    each regime weighs the same whatever its scale), summed, plus 0.1 for every run that breaks a per-run target
    (a supervised run more than 1 point worse than not stopping, a generative run keeping an avoidable memorised
    checkpoint). ``references``: the baselines' tables per regime (:func:`reference_tables`), computed once.
    """
    monitor = rule_monitor(rule)
    total = 0.0
    result: dict[str, Any] = {"rule": rule, "regimes": {}}
    refs = references if references is not None else reference_tables(by_regime)
    for regime, runs in by_regime.items():
        table = {monitor.name: score(runs, monitor), **refs[regime]}
        rows = table[monitor.name]["rows"]
        none = [r["regret"] for r in table["no stopping"]["rows"]]
        floor = 10.0 if regime == "generative" else 1.0
        total += float(np.mean([r["regret"] for r in rows])) / max(float(np.mean(none)), floor)
        if regime == "supervised":
            total += 0.1 * sum(r["regret"] > n + 1.0 for r, n in zip(rows, none, strict=True))
        if regime == "generative":
            total += 0.1 * sum(r["memorised_kept"] for r in rows)
        entry: dict[str, Any] = {"monitors": table}
        if regime == "supervised":
            entry["by_noise"] = _by_noise(runs, table)
        result["regimes"][regime] = entry
    missed = sum(not ok for ok in targets(result, rule).values())
    return missed, total


def reference_tables(by_regime: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per regime, the scores of the baselines the targets compare the rule with."""
    return {g: {m.name: score(runs, m) for m in _reference_monitors(g)} for g, runs in by_regime.items()}


def _reference_monitors(regime: str) -> list[Monitor]:
    """The baselines the targets compare the rule with: no stopping, and val_loss (supervised) or RankMe (SSL)."""
    out = [Monitor("no stopping", "none")]
    if regime == "supervised":
        out.append(Monitor("val_loss (labels)", "lightning", "val_loss", "min"))
    elif regime == "ssl":
        out.append(Monitor("RankMe", "lightning", "rankme", "max"))
    return out


def _by_noise(runs: list[dict[str, Any]], table: dict[str, Any]) -> dict[str, Any]:
    """Per label-noise level, each monitor's regret summary."""
    return {
        str(noise): {
            name: summary([row["regret"] for row, r in zip(s["rows"], runs, strict=True) if r["noise"] == noise])
            for name, s in table.items()
        }
        for noise in sorted({r["noise"] for r in runs})
    }


def tune(runs: list[dict[str, Any]], log: Callable[[str], None] = print) -> dict[str, Any]:
    """Choose the rule on the tuning runs (every run of ``runs``: the 144 of :data:`TUNING_FILES`).

    Ties (equal objective to 1e-9) go to fewer dimension keys (``dim`` is an estimate whose definition may change;
    ``gap_norm`` is a plain ratio of distances), then fewer keys, larger patience, smaller tolerances and warm-ups.
    """
    by_regime = {g: [r for r in runs if r["regime"] == g] for g in REGIMES}
    by_regime = {g: rs for g, rs in by_regime.items() if rs}
    references = reference_tables(by_regime)
    results: list[tuple[tuple[int, float], int, int, int, float, int, dict[str, Any]]] = []
    for rule in candidates():
        n_dim = sum(k.startswith("dim") for k in rule["monitor"])
        missed, total = objective(by_regime, rule, references)
        results.append((
            (missed, round(total, 9)),
            n_dim,
            len(rule["monitor"]),
            -rule["patience"],
            sum(rule["tolerance"]),
            sum(rule["warmup"]),
            rule,
        ))
    results.sort(key=lambda t: t[:6])
    for obj, *_, rule in results[:10]:
        log(f"  targets missed {obj[0]}, score {obj[1]:.3f}  {rule}")
    best = results[0][-1]
    previous = {
        version: next(obj for obj, *_, rule in results if rule is previous_rule)
        for version, previous_rule in PREVIOUS_RULES.items()
    }
    return {
        **best,
        "targets_missed_on_tuning_runs": results[0][0][0],
        "score": results[0][0][1],
        "tuning_runs": {g: len(rs) for g, rs in by_regime.items()},
        "rules_tried": len(results),
        "previous_rules": {
            version: {"targets_missed": obj[0], "score": obj[1], **PREVIOUS_RULES[version]}
            for version, obj in previous.items()
        },
        "runner_up": [{"targets_missed": o[0], "score": o[1], **r} for o, *_, r in results[1:6]],
    }


# ------------------------------------------------------------------------------------------------------ evaluation


def evaluate(runs: list[dict[str, Any]], rule: dict[str, Any], split: str = "all") -> dict[str, Any]:
    """Every monitor's regret on the runs of one split (``"all"``: every run), per regime, noise level and run."""
    out: dict[str, Any] = {"rule": rule, "split": split, "regimes": {}}
    for regime in REGIMES:
        part = [r for r in runs if r["regime"] == regime and (split == "all" or r["split"] == split)]
        if not part:
            continue
        table = {m.name: score(part, m) for m in monitors(regime, rule)}
        entry: dict[str, Any] = {"unit": UNITS[regime], "runs": [_label(r) for r in part], "monitors": table}
        if regime == "supervised":
            entry["by_noise"] = {
                str(noise): {
                    name: summary([
                        row["regret"] for row, r in zip(s["rows"], part, strict=True) if r["noise"] == noise
                    ])
                    for name, s in table.items()
                }
                for noise in sorted({r["noise"] for r in part})
            }
        out["regimes"][regime] = entry
    out["targets"] = targets(out, rule)
    return out


def _label(run: dict[str, Any]) -> str:
    extra = f"noise{run['noise']:g}" if "noise" in run else f"n{run['n_train']}"
    return f"{run['dataset']}-{run['arch']}-w{run['width']}-n{run['n_train']}-{extra}-s{run['seed']}"


def targets(result: dict[str, Any], rule: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets, each True (met) or False (missed), on the evaluated half."""
    name = rule_monitor(rule).name
    out: dict[str, bool] = {}
    regimes = result["regimes"]
    if "supervised" in regimes:
        sup = regimes["supervised"]["monitors"]
        rows, none = sup[name]["rows"], sup["no stopping"]["rows"]
        out["supervised: mean regret <= val_loss's"] = sup[name]["mean"] <= sup["val_loss (labels)"]["mean"]
        out["supervised: better than no stopping at every noise level where stopping matters"] = all(
            v[name]["mean"] < v["no stopping"]["mean"]
            for v in regimes["supervised"]["by_noise"].values()
            if v["no stopping"]["mean"] > 0.5
        )
        out["supervised: never > 1 point worse than no stopping"] = all(
            r["regret"] <= n["regret"] + 1.0 for r, n in zip(rows, none, strict=True)
        )
    if "ssl" in regimes:
        ssl = regimes["ssl"]["monitors"]
        out["ssl: mean regret <= RankMe's"] = ssl[name]["mean"] <= ssl["RankMe"]["mean"]
    if "generative" in regimes:
        gen = regimes["generative"]["monitors"][name]
        out["generative: mean gap within 10 % of the best epoch's"] = gen["mean"] <= 10.0
        out["generative: no avoidable memorised checkpoint kept"] = not any(r["memorised_kept"] for r in gen["rows"])
    return out


def markdown(result: dict[str, Any]) -> str:
    """Regret tables (mean [95 % CI], worst) per regime, as markdown."""
    lines = []
    for regime, entry in result["regimes"].items():
        unit = entry["unit"]
        lines += [f"**{regime}** ({len(entry['runs'])} runs; regret in {unit})", ""]
        lines += ["| monitor | mean regret [95 % CI] | worst |", "|---|---|---|"]
        for name, s in entry["monitors"].items():
            lines.append(f"| {name} | {s['mean']:.2f} [{s['low']:.2f}, {s['high']:.2f}] | {s['worst']:.2f} |")
        lines.append("")
        if "by_noise" in entry:
            # The rule, the last frozen rule, no stopping and the labelled baseline.
            wanted = ("previous rule (0.2 defaults)", "no stopping", "val_loss (labels)")
            first = next(iter(entry["monitors"]))
            names = [first] + [n for n in wanted if n in entry["monitors"] and n != first]
            lines += ["| label noise | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
            for noise, table in entry["by_noise"].items():
                cells = [f"{table[n]['mean']:.2f} (worst {table[n]['worst']:.1f})" for n in names]
                lines.append(f"| {float(noise):.0%} | " + " | ".join(cells) + " |")
            lines.append("")
    lines += ["| target | met |", "|---|---|"]
    lines += [f"| {k} | {'yes' if v else '**no**'} |" for k, v in result["targets"].items()]
    return "\n".join(lines) + "\n"


def summary_table(result: dict[str, Any]) -> str:
    """One row per regime: the rule, the regime's reference baseline and no stopping (mean [95 % CI], worst)."""
    name = rule_monitor(result["rule"]).name
    refs = {"supervised": "val_loss (labels)", "ssl": "RankMe", "generative": "denoising val loss"}
    lines = [
        "| regime (runs, unit) | RepresentationGapEarlyStopping | reference baseline | no stopping |",
        "|---|---|---|---|",
    ]
    for regime, entry in result["regimes"].items():
        table = entry["monitors"]

        def cell(key: str, table: dict[str, Any] = table) -> str:
            s = table[key]
            return f"{s['mean']:.2f} [{s['low']:.2f}, {s['high']:.2f}], worst {s['worst']:.1f}"

        lines.append(
            f"| {regime} ({len(entry['runs'])}, {entry['unit']}) | {cell(name)} | {refs[regime]}: "
            f"{cell(refs[regime])} | {cell('no stopping')} |"
        )
    return "\n".join(lines) + "\n"


def headline(result: dict[str, Any]) -> dict[str, float]:
    """The rule's and the reference baselines' mean regrets, for the validation study's headline table."""
    name = rule_monitor(result["rule"]).name
    out = {}
    refs = {"supervised": "val_loss (labels)", "ssl": "RankMe", "generative": "denoising val loss"}
    for regime, entry in result["regimes"].items():
        table = entry["monitors"]
        out[f"stopping: {regime} rule mean regret ({entry['unit']})"] = table[name]["mean"]
        out[f"stopping: {regime} {refs[regime]} mean regret ({entry['unit']})"] = table[refs[regime]]["mean"]
        out[f"stopping: {regime} no-stopping mean regret ({entry['unit']})"] = table["no stopping"]["mean"]
    return out


def load_runs(path: Path = RUNS_FILE) -> list[dict[str, Any]]:
    """The recorded runs."""
    return json.loads(path.read_text())["runs"]


def load_tuning_runs() -> list[dict[str, Any]]:
    """Every tuning run: the 96 of ``studies/stopping_runs.json`` and the 48 of ``studies/stopping_fresh.json``."""
    return [run for path in TUNING_FILES for run in load_runs(path)]


def load_rule(path: Path = RULE_FILE) -> dict[str, Any]:
    """The frozen rule chosen by :func:`tune`."""
    return json.loads(path.read_text())


def run(*, quick: bool, seed: int = 0, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The validation study's part 4: record the untouched set, replay the frozen rule on it.

    The full mode records every run of the untouched (``"fresh2"``) plan again and scores the frozen rule on it. The
    quick mode records a handful of short tuning-plan runs (to exercise the recorder and the replay end to end) and
    scores the committed untouched recordings. The rule is never re-tuned here.
    """
    from studies import stopping_record

    say = log or (lambda _m: None)
    rule = load_rule()
    if quick:
        recorded = stopping_record.record(quick=True, log=say)
        runs = load_runs(UNTOUCHED_FILE)
    else:
        recorded = stopping_record.record(plan="fresh2", log=say)
        runs = recorded["runs"]
    result = evaluate(runs, rule)
    result["quick_runs"] = evaluate(recorded["runs"], rule) if quick else None
    result["record_seconds"] = recorded["seconds"]
    result["headline"] = headline(result)
    return result


def main(argv: list[str] | None = None) -> int:
    """``tune`` (every tuning run) or ``evaluate`` (the untouched runs) on the recorded runs."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("tune", "evaluate"))
    parser.add_argument(
        "--runs", type=Path, default=None, help="default: tune the 144 tuning runs, evaluate the untouched fresh2 runs"
    )
    args = parser.parse_args(argv)
    if args.command == "tune":
        runs = load_runs(args.runs) if args.runs else load_tuning_runs()
        rule = tune(runs)
        RULE_FILE.write_text(json.dumps(rule, indent=1) + "\n")
        print(f"wrote {RULE_FILE}: {rule_monitor(rule).name}")
        print(markdown(evaluate(runs, rule)))
        return 0
    runs = load_runs(args.runs or UNTOUCHED_FILE)
    result = evaluate(runs, load_rule())
    if args.runs is None:
        RESULTS_FILE.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
