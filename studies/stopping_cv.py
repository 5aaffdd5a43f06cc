"""How well can a label-free stopping rule do on the recorded supervised runs? A cross-validated answer.

Every recorded run of the stopping study has been opened (the 144 tuning runs and the 96 of ``fresh2``), so no
untouched set is left to report on. This script pools the 120 supervised runs of the three recordings and asks,
for several *families* of rules over the recorded per-epoch label-free keys, how well a rule chosen inside the
family does on runs it was not chosen on:

* **leave one data set out** (digits, glyphs, glyphs-b, glyphs-c: the rule is chosen on three, scored on the
  fourth), and **leave seed pairs out** (seeds 0-1, 2-3, 10-11, 20-21, 22-23);
* in each fold the rule of the family with the lowest mean regret on the other folds is chosen, and scored on the
  held-out runs; the held-out regrets of all folds are pooled (one per run) and compared, run by run, with
  ``val_loss``'s (Lightning's ``EarlyStopping(patience=4)`` + best checkpoint on the noisy validation loss) by a
  paired bootstrap of the mean difference;
* the *in-sample* best (chosen and scored on all 120 runs) is shown too: it is optimistic, the cross-validated
  number is the estimate.

The families (every one stops only on a sustained rise after a warm-up, keeps ``gap_ratio``'s band for generators,
and recommends the last epoch when it does not stop; no validation labels anywhere):

* ``band``: rule 0.3's family (:func:`lightning_repgap.stopping.replay`: running-minimum reference, rise and keep
  bands, keep the latest epoch in every key's keep band), over ``gap_norm`` with or without ``dim_mle``;
* ``lag``: the same stops, keeping a fixed number of epochs before the onset of the rise instead;
* ``first exit``: keeping the epoch before the triggering key first left its keep band;
* ``smoothed``: the ``band`` rule on trailing means of 3 or 5 measurements;
* ``fixed baseline``: the reference frozen after the first 3 or 5 post-warm-up measurements (a robust baseline
  instead of a running minimum), raw or smoothed;
* ``slope``: a rise over a window of 3, 5 or 8 measurements (relative), kept at the window's start;
* ``+ dim_twonn``: the ``band`` rule with the TwoNN dimension as a further key;
* ``union``: every rule of every family (the family choice made inside the cross-validation too).

``dim`` (its definition is being changed) and ``knn_acc`` (needs validation labels) are not used.

    python -m studies.stopping_cv            # ~5 min on 2 shared cores -> studies/stopping_cv.json, a markdown table
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studies.stopping import TUNING_FILES, UNTOUCHED_FILE, load_runs, regret, replay_lightning, summary

HERE = Path(__file__).resolve().parent
OUT_FILE = HERE / "stopping_cv.json"
#: ``gap_ratio``'s (tolerance, keep tolerance, warm-up): rule 0.3's, fixed (it is what stops copying generators).
GAP_RATIO = (0.15, 0.15, 1)
SEED_PAIRS = ((0, 1), (2, 3), (10, 11), (20, 21), (22, 23))
Params = tuple[float, float, int]


# ----------------------------------------------------------------------------------------------- vectorised rules


def smooth(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` measurements (fewer at the start; NaN ignored), per row.

    Example:
        >>> smooth(np.array([[1.0, 3.0, 5.0, 7.0]]), 2).tolist()
        [[1.0, 2.0, 4.0, 6.0]]

    """
    if window <= 1:
        return x
    out = np.full_like(x, math.nan)
    for t in range(x.shape[1]):
        seg = x[:, max(0, t - window + 1) : t + 1]
        finite = np.isfinite(seg)
        n = finite.sum(1)
        out[:, t] = np.where(n > 0, np.where(finite, seg, 0.0).sum(1) / np.maximum(n, 1), math.nan)
    return out


def rise_rule(
    series: Sequence[np.ndarray],
    params: Sequence[Params],
    patience: int,
    keep: str = "band",
    lag: int = 0,
    reference: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The sustained-rise rule on many runs at once (rows), with other ways of choosing the kept epoch.

    With ``keep="band"`` and ``reference=None`` this is :func:`lightning_repgap.stopping.replay` (tested equal on
    the recorded runs): per key, ``warm`` finite measurements of warm-up, then the running minimum as reference, a
    rise above ``reference * (1 + tol)``, ``patience`` rises in a row of any key stop, and the latest epoch at which
    every finite key is in its keep band (or warm-up) is kept. NaN is no evidence.

    Args:
        series: per key, a ``(runs, epochs)`` array.
        params: per key, ``(tolerance, keep_tolerance, warmup)``.
        patience: rises in a row that stop.
        keep: ``"band"`` (above), ``"lag"`` (keep ``lag`` epochs before the first rise of the stopping streak) or
            ``"first_exit"`` (keep ``lag + 1`` epochs before the stopping key first left its keep band).
        lag: see ``keep``.
        reference: ``None``: running minimum; an integer ``m``: the minimum of the first ``m`` post-warm-up
            measurements, then frozen.

    Returns:
        ``(kept, stopped)`` per run; ``stopped`` is -1 for a run that did not stop (it keeps its last epoch).

    Example:
        >>> x = np.array([[5.0, 2.0, 1.0, 1.05, 1.02, 1.3, 1.4, 1.5, 1.6]])
        >>> rise_rule([x], [(0.1, 0.1, 0)], 3)
        (array([4]), array([7]))
        >>> rise_rule([x], [(0.1, 0.1, 0)], 3, keep="lag", lag=2)
        (array([3]), array([7]))

    """
    n_runs, n_epochs = series[0].shape
    n_keys = len(series)
    ref = np.full((n_keys, n_runs), np.inf)
    wait = np.zeros((n_keys, n_runs), dtype=int)
    seen = np.zeros((n_keys, n_runs), dtype=int)
    first_exit = np.full((n_keys, n_runs), -1)
    best = np.full(n_runs, -1)
    kept = np.full(n_runs, -1)
    stopped = np.full(n_runs, -1)
    done = np.zeros(n_runs, dtype=bool)
    rows = np.arange(n_runs)
    for t in range(n_epochs):
        all_in = np.ones(n_runs, dtype=bool)
        any_finite = np.zeros(n_runs, dtype=bool)
        trigger = np.full(n_runs, -1)
        for k, (tol, keep_tol, warm) in enumerate(params):
            v = series[k][:, t]
            finite = np.isfinite(v)
            any_finite |= finite
            seen[k] += finite
            in_warmup = finite & (seen[k] <= warm)
            post = finite & (seen[k] > warm)
            update = post if reference is None else post & (seen[k] <= warm + reference)
            ref[k] = np.where(update, np.minimum(ref[k], np.where(finite, v, np.inf)), ref[k])
            r = ref[k]
            with np.errstate(invalid="ignore"):
                rise = post & (v > r + tol * np.abs(r))
                in_band = post & (v <= r + keep_tol * np.abs(r))
            wait[k] = np.where(post, np.where(rise, wait[k] + 1, 0), np.where(in_warmup, 0, wait[k]))
            all_in &= ~finite | in_warmup | in_band
            new_exit = post & ~in_band & (first_exit[k] < 0)
            first_exit[k] = np.where(new_exit, t, first_exit[k])
            trigger = np.where((trigger < 0) & post & (wait[k] >= patience), k, trigger)
        best = np.where(all_in & any_finite, t, best)
        new = (trigger >= 0) & ~done
        if new.any():
            onset = t - patience + 1
            if keep == "band":
                kv = best[new]
            elif keep == "lag":
                kv = np.full(int(new.sum()), max(0, onset - lag))
            elif keep == "first_exit":
                fe = first_exit[trigger[new], rows[new]]
                kv = np.maximum(0, np.where(fe < 0, onset, fe) - 1 - lag)
            else:
                raise ValueError(f"keep must be 'band', 'lag' or 'first_exit', got {keep!r}")
            kept[new], stopped[new] = kv, t
            done |= new
    return np.where(done & (kept >= 0), kept, n_epochs - 1), np.where(done, stopped, -1)


def slope_rule(
    series: Sequence[np.ndarray], tolerances: Sequence[float], warmup: int, patience: int, window: int, lag: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stop when a key rose by more than its tolerance (relative) over the last ``window`` measurements.

    ``patience`` such measurements in a row (after ``warmup + window`` measurements) stop; the kept epoch is the
    start of the first rising window of the streak, minus ``lag``. NaN neither rises nor resets.

    Example:
        >>> x = np.array([[3.0, 2.0, 1.0, 1.0, 1.0, 1.3, 1.6, 1.9, 2.2]])
        >>> slope_rule([x], [0.2], warmup=1, patience=2, window=2)
        (array([3]), array([6]))

    """
    n_runs, n_epochs = series[0].shape
    wait = np.zeros((len(series), n_runs), dtype=int)
    kept = np.full(n_runs, n_epochs - 1)
    stopped = np.full(n_runs, -1)
    done = np.zeros(n_runs, dtype=bool)
    for t in range(warmup + window, n_epochs):
        stop = np.zeros(n_runs, dtype=bool)
        for k, tol in enumerate(tolerances):
            v, base = series[k][:, t], series[k][:, t - window]
            finite = np.isfinite(v) & np.isfinite(base)
            with np.errstate(invalid="ignore"):
                rise = v > base + tol * np.abs(base)
            wait[k] = np.where(finite, np.where(rise, wait[k] + 1, 0), wait[k])
            stop |= wait[k] >= patience
        new = stop & ~done
        kept[new] = max(0, t - patience + 1 - window - lag)
        stopped[new] = t
        done |= new
    return kept, stopped


# -------------------------------------------------------------------------------------------------------- families

Rule = dict[str, Any]
Kept = Callable[[dict[str, np.ndarray]], np.ndarray]


def _band_rules(
    keeps: Sequence[tuple[str, int]] = (("band", 0),),
    smooths: Sequence[int] = (1,),
    references: Sequence[int | None] = (None,),
    patiences: Sequence[int] = (2, 3, 4),
    warmups: Sequence[int] = (4, 6, 8, 10),
    twonn: bool = False,
    quick: bool = False,
) -> Iterator[tuple[Rule, Kept]]:
    norm_tols, dim_tols = (
        ((0.5, 0.7), (0.25,)) if quick else ((0.3, 0.4, 0.5, 0.7, 1.0), (0.1, 0.15, 0.2, 0.25, 0.3, 0.4))
    )
    for sm, ref, (keep, lag), patience in itertools.product(smooths, references, keeps, patiences):
        # The keep tolerances matter only for the band and first-exit choices.
        norm_keeps = (0.05, 0.1, 0.2) if keep != "lag" else (0.1,)
        dim_keeps = (0.02, 0.05, 0.1) if keep != "lag" else (0.05,)
        norms = list(itertools.product(norm_tols, norm_keeps, warmups))
        dims: list[Params | None] = [None, *itertools.product(dim_tols, dim_keeps, warmups)]
        twonns: list[Params | None] = [None] + ([(t, 0.1, 8) for t in (0.2, 0.3, 0.4, 0.5)] if twonn else [])
        for norm, dim, tw in itertools.product(norms, dims, twonns):
            keys = [("gap_norm", norm)] + ([("dim_mle", dim)] if dim else []) + ([("dim_twonn", tw)] if tw else [])
            rule = {"family_keep": keep, "lag": lag, "smooth": sm, "reference": ref, "patience": patience}
            rule["keys"] = {k: list(p) for k, p in keys}

            def kept(x: dict[str, np.ndarray], keys: Any = keys, rule: Rule = rule) -> np.ndarray:
                series = [smooth(x[k], rule["smooth"]) for k, _ in keys] + [x["gap_ratio"]]
                params = [p for _, p in keys] + [GAP_RATIO]
                return rise_rule(series, params, rule["patience"], rule["family_keep"], rule["lag"], rule["reference"])[
                    0
                ]

            yield rule, kept


def _slope_rules(quick: bool = False) -> Iterator[tuple[Rule, Kept]]:
    grid = itertools.product(
        (1, 3),
        (5,) if quick else (3, 5, 8),
        (2, 3, 4),
        (0, 2, 4),
        (0.1, 0.3) if quick else (0.05, 0.1, 0.15, 0.2, 0.3),
        (4, 8),
        (None, 0.05) if quick else (None, 0.02, 0.05, 0.1, 0.15),
    )
    for sm, window, patience, lag, tol_norm, warm, tol_dim in grid:
        tols = {"gap_norm": tol_norm, **({"dim_mle": tol_dim} if tol_dim else {})}
        rule = {"window": window, "smooth": sm, "patience": patience, "lag": lag, "warmup": warm, "tolerance": tols}

        def kept(x: dict[str, np.ndarray], rule: Rule = rule) -> np.ndarray:
            series = [smooth(x[k], rule["smooth"]) for k in rule["tolerance"]]
            return slope_rule(
                series, list(rule["tolerance"].values()), rule["warmup"], rule["patience"], rule["window"], rule["lag"]
            )[0]

        yield rule, kept


def families(quick: bool = False) -> dict[str, Callable[[], Iterator[tuple[Rule, Kept]]]]:
    """The rule families compared (``quick``: a few rules of each, for the tests)."""
    pats, warms = ((2,), (8,)) if quick else ((2, 3), (6, 8, 10))
    return {
        "band (rule 0.3's family)": lambda: _band_rules(
            patiences=pats if quick else (2, 3, 4), warmups=warms if quick else (4, 6, 8, 10), quick=quick
        ),
        "lag before the rise": lambda: _band_rules(
            keeps=[("lag", lag) for lag in ((0, 4) if quick else range(9))],
            patiences=pats if quick else (2, 3, 4),
            warmups=warms if quick else (4, 6, 8, 10),
            quick=quick,
        ),
        "first keep-band exit": lambda: _band_rules(
            keeps=[("first_exit", lag) for lag in (0, 1, 2)], patiences=pats, warmups=warms, quick=quick
        ),
        "smoothed (trailing mean of 3 / 5)": lambda: _band_rules(
            smooths=(3, 5), patiences=pats, warmups=warms, quick=quick
        ),
        "fixed baseline (first 3 / 5 after warm-up)": lambda: _band_rules(
            references=(3, 5), smooths=(1, 3), patiences=pats, warmups=warms, quick=quick
        ),
        "slope over a window": lambda: _slope_rules(quick),
        "+ dim_twonn": lambda: _band_rules(twonn=True, patiences=pats, warmups=warms, quick=quick),
    }


# ------------------------------------------------------------------------------------------------ cross-validation


def cross_validate(regrets: np.ndarray, folds: Sequence[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Held-out regret per run: in each fold, the rule (row) with the lowest mean regret on the other runs.

    Args:
        regrets: ``(rules, runs)``.
        folds: boolean masks over runs (the held-out runs of each fold; together they cover every run once).

    Returns:
        ``(held_out, chosen)``: the held-out regret of every run, and the rule chosen in each fold.

    Example:
        >>> m = np.array([[0.0, 0.0, 9.0], [1.0, 1.0, 1.0]])  # rule 0: perfect on runs 0-1, fails on run 2
        >>> folds = [np.array([True, False, False]), np.array([False, True, False]), np.array([False, False, True])]
        >>> cross_validate(m, folds)
        (array([1., 1., 9.]), [1, 1, 0])

    """
    out = np.full(regrets.shape[1], math.nan)
    chosen = []
    for test in folds:
        j = int(np.argmin(regrets[:, ~test].mean(axis=1)))
        out[test] = regrets[j, test]
        chosen.append(j)
    return out, chosen


def paired_difference(a: np.ndarray, b: np.ndarray, n_bootstrap: int = 4000, seed: int = 0) -> dict[str, float]:
    """Mean of ``a - b`` over runs with a 95 % percentile bootstrap interval (runs resampled in pairs)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (n_bootstrap, len(d)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return {"mean": float(d.mean()), "low": float(low), "high": float(high)}


def pooled_supervised() -> list[dict[str, Any]]:
    """The 120 supervised runs of the three recordings (every one of them opened)."""
    return [r for path in (*TUNING_FILES, UNTOUCHED_FILE) for r in load_runs(path) if r["regime"] == "supervised"]


def _matrix(runs: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([[math.nan if v is None else float(v) for v in r["epochs"][key]] for r in runs])


KEYS = ("gap_norm", "dim_mle", "dim_twonn", "gap_ratio")


def study(
    runs: list[dict[str, Any]],
    others: dict[str, list[dict[str, Any]]] | None = None,
    quick: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every family's in-sample and cross-validated regret on ``runs`` (supervised), against the baselines.

    ``others``: runs of the other regimes (``"ssl"``, ``"generative"``), on which each family's in-sample best rule
    is scored too (a rule must not break them).
    """
    x = {k: _matrix(runs, k) for k in KEYS}
    other_x = {g: {k: _matrix(rs, k) for k in KEYS} for g, rs in (others or {}).items()}
    table = np.array([[regret(r, e) for e in range(len(r["epochs"]["truth"]))] for r in runs])
    rows = np.arange(len(runs))
    noise = np.array([r["noise"] for r in runs])
    dataset = np.array([r["dataset"] for r in runs])
    seed = np.array([r["seed"] for r in runs])
    baselines = {
        "val_loss (labels)": np.array([
            table[i, replay_lightning(_matrix([r], "val_loss")[0], "min", 4)[0]] for i, r in enumerate(runs)
        ]),
        "val_acc (labels)": np.array([
            table[i, replay_lightning(_matrix([r], "val_acc")[0], "max", 4)[0]] for i, r in enumerate(runs)
        ]),
        "no stopping": table[:, -1],
    }
    val_loss, none = baselines["val_loss (labels)"], baselines["no stopping"]
    schemes = {
        "leave one data set out": [dataset == d for d in sorted(set(dataset))],
        "leave seed pairs out": [np.isin(seed, p) for p in SEED_PAIRS if np.isin(seed, p).any()],
    }

    def by_noise(v: np.ndarray) -> dict[str, float]:
        return {f"{z:g}": float(v[noise == z].mean()) for z in sorted(set(noise))}

    out: dict[str, Any] = {
        "runs": len(runs),
        "baselines": {n: {**summary(v.tolist()), "by_noise": by_noise(v)} for n, v in baselines.items()},
        "families": {},
    }
    every_rule: list[Rule] = []
    every_regret: list[np.ndarray] = []
    every_kept: list[Kept] = []
    fams = families(quick)
    for name, make in [*fams.items(), ("union of every family", lambda: iter(()))]:
        if name.startswith("union"):
            rules, regrets, kepts = every_rule, np.array(every_regret), every_kept
        else:
            rules, kepts = [], []
            reg: list[np.ndarray] = []
            for rule, kept in make():
                rules.append({"family": name, **rule})
                kepts.append(kept)
                reg.append(table[rows, kept(x)])
            regrets = np.array(reg)
            every_rule += rules
            every_regret += reg
            every_kept += kepts
        best = int(np.argmin(regrets.mean(axis=1)))
        entry: dict[str, Any] = {
            "rules": len(rules),
            "in_sample_best": {"rule": rules[best], "mean": float(regrets[best].mean())},
            "cv": {},
            "in_sample_best_on_other_regimes": {
                g: summary([regret(r, int(e)) for r, e in zip(rs, kepts[best](other_x[g]), strict=True)])
                for g, rs in (others or {}).items()
            },
        }
        for scheme, folds in schemes.items():
            held, chosen = cross_validate(regrets, folds)
            entry["cv"][scheme] = {
                **summary(held.tolist()),
                "minus_val_loss": paired_difference(held, val_loss),
                "by_noise": by_noise(held),
                "runs_over_1_point_worse_than_no_stopping": int((held > none + 1.0).sum()),
                "chosen": [rules[j] for j in chosen],
            }
        out["families"][name] = entry
        cv = entry["cv"]["leave one data set out"]
        log(
            f"  {name}: {len(rules)} rules, in-sample {entry['in_sample_best']['mean']:.2f}, "
            f"leave-one-data-set-out {cv['mean']:.2f} (vs val_loss {cv['minus_val_loss']['mean']:+.2f})"
        )
    out["post_mortem"] = post_mortem(runs, table, x, val_loss)
    return out


def post_mortem(runs: list[dict[str, Any]], table: np.ndarray, x: dict[str, np.ndarray], val_loss: np.ndarray) -> dict:
    """Where rule 0.3 loses its regret against ``val_loss``'s, on the pooled runs (per run, averaged over all)."""
    from lightning_repgap.stopping import DEFAULT_MONITOR, DEFAULT_PATIENCE, KEY_DEFAULTS

    params = [KEY_DEFAULTS[k] for k in DEFAULT_MONITOR]
    kept, stopped = rise_rule([x[k] for k in DEFAULT_MONITOR], params, DEFAULT_PATIENCE)
    rule = table[np.arange(len(runs)), kept]
    noise = np.array([r["noise"] for r in runs])
    groups = {
        "clean-label runs": noise == 0,
        "noisy-label runs the rule stopped": (noise > 0) & (stopped >= 0),
        "noisy-label runs the rule never stopped": (noise > 0) & (stopped < 0),
    }
    n = len(runs)
    return {
        name: {
            "runs": int(m.sum()),
            "rule_share_of_mean_regret": float(rule[m].sum() / n),
            "val_loss_share_of_mean_regret": float(val_loss[m].sum() / n),
            "no_stopping_share_of_mean_regret": float(table[m, -1].sum() / n),
        }
        for name, m in groups.items()
    } | {"rule 0.3 (pooled, partly in-sample)": summary(rule.tolist())}


def markdown(result: dict[str, Any]) -> str:
    """The families' cross-validated regret against the baselines, as markdown."""
    b = result["baselines"]
    noises = list(b["no stopping"]["by_noise"])
    head = "| family (rules) | in-sample best | leave one data set out | − val_loss [95 % CI] | "
    head += " | ".join(f"{float(z):.0%}" for z in noises) + " | runs > none + 1 | leave seed pairs out | − val_loss |"
    head += " SSL, generative (in-sample best) |"
    lines = [head, "|---" * (8 + len(noises)) + "|"]
    for name, e in result["families"].items():
        lo, sp = e["cv"]["leave one data set out"], e["cv"]["leave seed pairs out"]
        d, d2 = lo["minus_val_loss"], sp["minus_val_loss"]
        lines.append(
            f"| {name} ({e['rules']}) | {e['in_sample_best']['mean']:.2f} | {lo['mean']:.2f} [{lo['low']:.2f}, "
            f"{lo['high']:.2f}] | {d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] | "
            + " | ".join(f"{lo['by_noise'][z]:.2f}" for z in noises)
            + f" | {lo['runs_over_1_point_worse_than_no_stopping']} | {sp['mean']:.2f} | {d2['mean']:+.2f} "
            f"[{d2['low']:+.2f}, {d2['high']:+.2f}] | "
            + ", ".join(f"{v['mean']:.2f}" for v in e["in_sample_best_on_other_regimes"].values())
            + " |"
        )
    for name, s in b.items():
        lines.append(
            f"| {name} | | {s['mean']:.2f} [{s['low']:.2f}, {s['high']:.2f}] | | "
            + " | ".join(f"{s['by_noise'][z]:.2f}" for z in noises)
            + " | | | | |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the study on the pooled supervised runs and write :data:`OUT_FILE`."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few rules per family (not written)")
    args = parser.parse_args(argv)
    pooled = [r for path in (*TUNING_FILES, UNTOUCHED_FILE) for r in load_runs(path)]
    others = {g: [r for r in pooled if r["regime"] == g] for g in ("ssl", "generative")}
    result = study(pooled_supervised(), others, quick=args.quick)
    if not args.quick:
        tmp = OUT_FILE.with_suffix(".tmp")  # written whole, then renamed: never half-written
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(OUT_FILE)
        print(f"wrote {OUT_FILE}")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
