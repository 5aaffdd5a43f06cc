"""Markdown report of the validation study (the documentation page ``docs/validation.md``)."""

from __future__ import annotations

from typing import Any

from studies.generalisation import BASELINE_SIGN, EXPECTED_SIGN


def _f(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _law(part: dict[str, Any]) -> list[str]:
    lines = [
        "## 1. Is the asymptotic law right?",
        "",
        f"Each cloud: {part['n_bank']:,} bank points and a disjoint set of queries for the gap law (calibrated, 95 % "
        "bootstrap interval over queries); TwoNN and MLE (k = 20) over all points. *G / pred* is the measured "
        "G(n_max) over the closed form Γ(1 + 2/d)(n V_d / Vol)^(-2/d), where the volume is known. *tuned* clouds are "
        "the shapes the calibration was built from or developed on; *held_out* clouds were added for this study and "
        "nothing was changed after seeing their results.",
        "",
    ]
    rows = [
        [
            r["split"],
            r["name"],
            str(r["dim"]),
            str(r["ambient"]),
            f"{r['gap_dim']:.2f} [{r['gap_dim_low']:.2f}, {r['gap_dim_high']:.2f}]",
            _f(r["twonn"]),
            _f(r["mle"]),
            _f(r["law_r2"], 4),
            _f(r["gap_over_predicted"]),
        ]
        for r in part["rows"]
    ]
    lines += _table(["split", "cloud", "d", "D", "gap law [95 % CI]", "TwoNN", "MLE", "law R²", "G / pred"], rows)
    lines += ["", "Mean relative error |estimate − d| / d:", ""]
    lines += _table(
        ["clouds", "gap law", "TwoNN", "MLE"],
        [[split, *(f"{v[e]:.3f}" for e in ("gap_dim", "twonn", "mle"))] for split, v in part["summary"].items()],
    )
    return [*lines, ""]


def _equivariance(part: dict[str, Any]) -> list[str]:
    lines = [
        "## 2. Does equivariance lower the dimension?",
        "",
        "Raw data = 2 latent parameters + a group element; an invariant view should measure 2. The orbit-minimised "
        "gap uses min over the group of the distance (exact, no discretised orbit). *drop* = raw dimension minus "
        "the view's (for the trained models: plain MLP minus shift-averaged MLP).",
        "",
    ]
    rows = [
        [
            r["data"],
            r["view"],
            str(r["group_dim"]),
            str(r["expected"]),
            f"{r['dim']:.2f} [{r['dim_low']:.2f}, {r['dim_high']:.2f}]",
            f"{r['slope']:.3f}",
            _f(r["test_acc"], 3),
        ]
        for r in part["rows"]
    ]
    lines += _table(["data", "view", "group dim", "expected d", "gap dim [95 % CI]", "slope", "test acc"], rows)
    lines += ["", "Dimension drop against the group's dimension:", ""]
    drop_rows = [
        [data, view, f"{v['drop']:.2f}", str(v["group_dim"]), f"{v['drop'] / v['group_dim']:.2f}"]
        for data, views in part["drops"].items()
        for view, v in views.items()
    ]
    lines += _table(["data", "view", "drop", "group dim", "drop / group dim"], drop_rows)
    return [*lines, ""]


def _generalisation(part: dict[str, Any]) -> list[str]:
    rows = part["rows"]
    lines = [
        "## 3. Does the gap predict generalisation?",
        "",
        f"{len(rows)} MLPs on scikit-learn digits, {part['steps']} training steps each (the grid is in "
        "`studies/generalisation.py`). Kendall's tau of each quantity against the true generalisation gap, "
        "oriented by the sign fixed before the study (+1: larger value, larger gap): "
        + ", ".join(f"`{k}` {v:+d}" for k, v in {**EXPECTED_SIGN, **BASELINE_SIGN}.items())
        + ". 95 % bootstrap intervals over models. Baselines are in *italics*.",
        "",
    ]
    for target, title in (("tau_loss_gap", "test loss − train loss"), ("tau_error_gap", "test error − train error")):
        lines += [f"### Against {title}", ""]
        ranked = sorted(part[target].items(), key=lambda kv: -kv[1]["tau"])
        lines += _table(
            ["quantity", "tau", "95 % CI"],
            [
                [f"*{k}*" if v["baseline"] else f"`{k}`", f"{v['tau']:+.3f}", f"[{v['low']:+.2f}, {v['high']:+.2f}]"]
                for k, v in ranked
            ],
        )
        lines.append("")
    lines += ["### Per model", ""]
    lines += _table(
        [
            "config",
            "loss gap",
            "error gap",
            "test error",
            "logits gap_norm",
            "penult. gap_norm",
            "gap_ratio",
            "knn_acc",
        ],
        [
            [
                r["config"],
                f"{r['loss_gap']:.3f}",
                f"{r['error_gap']:.3f}",
                f"{r['test_error']:.3f}",
                f"{r['logits/gap_norm']:.2e}",
                f"{r['penultimate/gap_norm']:.2e}",
                f"{r['penultimate/gap_ratio']:.2f}",
                f"{r['penultimate/knn_acc']:.3f}",
            ]
            for r in rows
        ],
    )
    return [*lines, ""]


def _verdicts(results: dict[str, Any]) -> list[str]:
    """The issue's targets, each with the measured value and whether this run met it."""

    def line(ok: bool, text: str) -> str:
        return f"- **{'met' if ok else 'NOT met'}**: {text}"

    out = ["## Against the targets", ""]
    if "law" in results:
        summary = results["law"]["summary"]
        best = min(summary["all"], key=summary["all"].get)
        out.append(
            line(
                summary["all"][best] <= 0.09,
                f"best estimator mean relative error ≤ 0.09: `{best}` {summary['all'][best]:.3f} over all clouds "
                f"(tuned {summary['tuned'][best]:.3f}, held out {summary['held_out'][best]:.3f})",
            )
        )
        out.append(
            line(
                summary["all"]["gap_dim"] <= 0.12 and summary["held_out"]["gap_dim"] <= 0.12,
                f"gap-law mean relative error ≤ 0.12: {summary['all']['gap_dim']:.3f} over all clouds, "
                f"{summary['held_out']['gap_dim']:.3f} on the held-out ones",
            )
        )
        worst = sorted(results["law"]["rows"], key=lambda r: -abs(r["gap_dim"] - r["dim"]) / r["dim"])[:3]
        out.append(
            "- gap law's worst clouds: "
            + "; ".join(f"{r['name']} {r['gap_dim']:.2f} for d = {r['dim']}" for r in worst)
        )
    if "equivariance" in results:
        drops = [
            f"{data} / {view}: {v['drop']:.2f} for a group of dimension {v['group_dim']}"
            for data, views in results["equivariance"]["drops"].items()
            for view, v in views.items()
        ]
        out.append("- dimension drops: " + "; ".join(drops))
    if "generalisation" in results:
        taus = results["generalisation"]["tau_loss_gap"]
        best_name = max((k for k, v in taus.items() if not v["baseline"]), key=lambda k: taus[k]["tau"])
        base_name = max((k for k, v in taus.items() if v["baseline"]), key=lambda k: taus[k]["tau"])
        b, c = taus[best_name], taus[base_name]
        out.append(
            line(
                b["tau"] >= 0.6 and b["tau"] > c["tau"],
                f"a repgap quantity with tau ≥ 0.6 against the loss gap and above every baseline: `{best_name}` "
                f"{b['tau']:+.3f} [{b['low']:+.2f}, {b['high']:+.2f}], best baseline *{base_name}* "
                f"{c['tau']:+.3f} [{c['low']:+.2f}, {c['high']:+.2f}]",
            )
        )
    return [*out, ""]


def render(results: dict[str, Any]) -> str:
    """The whole report as markdown."""
    mode = "quick mode (reduced sizes)" if results.get("quick") else "full study"
    lines = [
        "# Validation study",
        "",
        "Generated by `python -m studies.validation` "
        f"({mode}, seed {results.get('seed', 0)}); every number below was measured in that run. "
        "Run times: "
        + ", ".join(
            f"{p} {results[p]['seconds']:.0f} s"
            for p in ("law", "equivariance", "generalisation", "stopping")
            if p in results
        )
        + " (2 CPU cores).",
        "",
        "## Headline",
        "",
    ]
    lines += _table(["quantity", "value"], [[k, f"{v:.3f}"] for k, v in results["headline"].items()])
    lines.append("")
    lines += _verdicts(results)
    if "law" in results:
        lines += _law(results["law"])
    if "equivariance" in results:
        lines += _equivariance(results["equivariance"])
    if "generalisation" in results:
        lines += _generalisation(results["generalisation"])
    if "stopping" in results:
        from studies.stopping import markdown

        lines += [
            "## 4. Which stopping rule works without labels?",
            "",
            "Regret (truth at the kept checkpoint against the best epoch) of each monitor replayed as early stopping "
            "on the held-out half of the recorded runs (`docs/stopping.md` explains the regimes and the rule).",
            "",
            markdown(results["stopping"]),
        ]
    if "dimension" in results:
        lines += _dimension(results["dimension"])
    return "\n".join(lines)


def _dimension(part: dict[str, Any]) -> list[str]:
    from studies.dimension_study import markdown

    source = (
        f" (from `{part['from_json']}`, written by `python -m studies.dimension_heldout`)"
        if "from_json" in part
        else ""
    )
    lines = [
        "## 5. The trusted dim",
        "",
        f'`estimate_dimension(x)` (method `"auto"`, the number logged as `dim`){source} on the seeded suite of '
        "`studies/dimension_suite.py`, against TwoNN and MLE (k = 20, over every point's neighbours) and DANCo "
        "(scikit-dimension, dev-only, n = 2,500 only). Mean relative error |estimate − d| / d; *coverage*: share of "
        "clouds whose 95 % interval contains d; widths relative to d. The *tune* half was used to choose the rule; "
        "the *held_out* half was measured once, after the first rule was committed, and used for tuning since; the "
        "*fresh* split (24 new clouds) was committed before the retuning and measured once, after it.",
        "",
    ]
    return lines + markdown(part["results"])
