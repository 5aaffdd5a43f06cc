"""``repgap analyze``: re-analyse the snapshots written by ``RepresentationGapCallback``.

Reads each manifest, rebuilds its :class:`~lightning_repgap.config.GapConfig`, recomputes every value with
:func:`~lightning_repgap.functional.analyze`, and compares it with the values logged in training.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_repgap import _scan
from lightning_repgap._cli_common import (
    EXIT_OK,
    CLIError,
    check_output,
    check_plotting,
    curve_json,
    fmt,
    render_table,
    save_figure,
    warn,
    write_json,
)
from lightning_repgap.config import GapConfig, field_names
from lightning_repgap.functional import ACCURACY_KEYS, GapResult, analyze
from lightning_repgap.snapshot import MANIFEST_NAME, SnapshotError, list_snapshots, load_snapshot, read_manifest

#: Exit code of ``repgap analyze`` when it analysed what it could but skipped damaged snapshots.
EXIT_DAMAGED = 1

__all__ = ["cmd_analyze"]

# Recomputed values further than this (relative) from the logged ones are listed after the table.
_MISMATCH_RTOL = 1e-3

# ---------------------------------------------------------------------------------------------------- analyze


@dataclass
class _Entry:
    """A snapshot found on disk, described by its manifest (arrays not loaded yet)."""

    path: Path
    metadata: dict[str, Any]
    shapes: dict[str, list[int]]
    dtypes: dict[str, str]

    @property
    def epoch(self) -> int | None:
        value = self.metadata.get("epoch")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def step(self) -> int | None:
        value = self.metadata.get("step")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def layer(self) -> str:
        value = self.metadata.get("layer")
        return "-" if value is None else str(value)

    def describe(self) -> str:
        epoch = "-" if self.epoch is None else f"{self.epoch:04d}"
        step = "-" if self.step is None else str(self.step)
        text = f"epoch={epoch} step={step} layer={self.layer}"
        ref, qs = self.shapes.get("reference"), self.shapes.get("queries")
        if ref and qs and len(ref) == 2:
            text += f": bank {ref[0]} x {ref[1]}, {qs[0]} queries"
        return text


@dataclass
class _Analysis:
    """One re-analysed snapshot."""

    entry: _Entry
    result: GapResult
    config: GapConfig
    seconds: float
    logged: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        meta = self.entry.metadata
        return {
            "snapshot": str(self.entry.path),
            "name": self.entry.path.name,
            "epoch": meta.get("epoch"),
            "step": meta.get("step"),
            "layer": meta.get("layer"),
            "values": self.result.values,
            **curve_json(self.result),
            "logged": self.logged,
            "config": self.config.to_dict(),
            "storage_dtype": self.entry.dtypes.get("reference"),
            "shapes": self.entry.shapes,
            "probe_sizes": meta.get("probe_sizes"),
            "seconds": self.seconds,
        }


def _find_snapshots(root: Path) -> list[Path]:
    """``root`` itself when it is a snapshot directory, else the complete snapshots under it, oldest first."""
    if not root.exists():
        raise CLIError(f"{root} does not exist.")
    if not root.is_dir():
        raise CLIError(f"{root} is not a directory.")
    if (root / MANIFEST_NAME).is_file():
        return [root]
    paths = list_snapshots(root)
    if not paths:
        incomplete = [p.name for p in root.iterdir() if p.is_dir() and not (p / MANIFEST_NAME).exists()]
        hint = (
            f" ({len(incomplete)} subdirectories have no {MANIFEST_NAME}: writes that did not finish?)"
            if incomplete
            else ""
        )
        raise CLIError(f"no complete snapshot in {root}{hint}.")
    return paths


def _read_entry(path: Path) -> _Entry:
    try:
        manifest = read_manifest(path)
    except SnapshotError as err:
        raise CLIError(f"corrupt snapshot: {err}") from None
    files = manifest["files"]
    return _Entry(
        path=path,
        metadata=dict(manifest.get("metadata", {})),
        shapes={f["key"]: f["shape"] for f in files},
        dtypes={f["key"]: f["dtype"] for f in files},
    )


def _filter_layers(entries: list[_Entry], wanted: Sequence[str] | None) -> list[_Entry]:
    if not wanted:
        return entries
    present = list(dict.fromkeys(e.layer for e in entries))
    unknown = [name for name in wanted if name not in present]
    if unknown:
        raise CLIError(
            f"unknown layer {', '.join(map(repr, unknown))}; layers present: {', '.join(map(repr, present))}."
        )
    return [e for e in entries if e.layer in wanted]


def _snapshot_config(entries: Sequence[_Entry]) -> dict[Path, GapConfig]:
    """Each snapshot's stored ``config`` as a :class:`GapConfig`; warn once about keys it does not have."""
    configs: dict[Path, GapConfig] = {}
    unknown: dict[str, int] = {}
    missing = 0
    for entry in entries:
        config = entry.metadata.get("config")
        if not isinstance(config, dict):
            missing += 1
            config = {}
        for key in config:
            if key not in field_names():
                unknown[key] = unknown.get(key, 0) + 1
        try:
            configs[entry.path] = GapConfig.from_dict({k: v for k, v in config.items() if k in field_names()})
        except ValueError as err:
            raise CLIError(f"{entry.path}: bad config in {MANIFEST_NAME}: {err}") from None
    if unknown:
        listed = ", ".join(f"{k!r} ({n} snapshot{'s' * (n > 1)})" for k, n in sorted(unknown.items()))
        warn(f"ignoring config keys that GapConfig does not have: {listed}.")
    if missing:
        warn(
            f"{missing} snapshot(s) carry no 'config' metadata; using the GapConfig defaults, so the values "
            "may differ from those logged in training."
        )
    return configs


def _analyze_one(entry: _Entry, config: GapConfig, backend: str | None, index: str | None = None) -> _Analysis:
    try:
        snap = load_snapshot(entry.path)
    except SnapshotError as err:
        raise CLIError(f"corrupt snapshot: {err}") from None
    arrays = snap.arrays
    missing = [k for k in ("reference", "queries") if k not in arrays]
    if missing:
        raise CLIError(
            f"{entry.path} has no {' or '.join(map(repr, missing))} array (it holds {sorted(arrays)}); it was not "
            "written by RepresentationGapCallback."
        )
    labels = "reference_labels" in arrays and "query_labels" in arrays
    overrides = {k: v for k, v in (("backend", backend), ("index", index)) if v is not None}
    t0 = time.perf_counter()
    try:
        config = config.replace(**overrides)
        result = analyze(
            arrays["reference"],
            arrays["queries"],
            train_queries=arrays.get("train_queries"),
            reference_labels=arrays["reference_labels"] if labels else None,
            query_labels=arrays["query_labels"] if labels else None,
            config=config,
        )
    except (ValueError, TypeError) as err:
        raise CLIError(f"{entry.path}: {err}") from None
    logged = entry.metadata.get("metrics")
    return _Analysis(
        entry=entry,
        result=result,
        config=config,
        seconds=time.perf_counter() - t0,
        logged=dict(logged) if isinstance(logged, dict) else {},
    )


def _analysis_table(records: Sequence[_Analysis]) -> str:
    extras = [k for k in ("gap_ratio", "knn_acc", *ACCURACY_KEYS) if any(k in r.result.values for r in records)]
    if any(r.result.values.get("dup_frac", 0.0) > 0 for r in records):
        extras.append("dup_frac")
    headers = ["epoch", "step", "layer", "gap", "gap_norm", "dim [low, high]", "law R^2", "twonn", "mle", *extras]
    rows = []
    for r in records:
        v = r.result.values
        e = r.entry
        rows.append([
            "-" if e.epoch is None else str(e.epoch),
            "-" if e.step is None else str(e.step),
            e.layer,
            fmt(v.get("gap"), ".4g"),
            fmt(v.get("gap_norm"), ".4g"),
            f"{fmt(v.get('dim'), '.2f')} [{fmt(v.get('dim_low'), '.2f')}, {fmt(v.get('dim_high'), '.2f')}]",
            fmt(v.get("law_r2"), ".4f"),
            fmt(v.get("dim_twonn"), ".2f"),
            fmt(v.get("dim_mle"), ".2f"),
            *(fmt(v.get(k), ".3f") for k in extras),
        ])
    return render_table(headers, rows, left=(2,))


def _relative_diff(recomputed: float, logged: Any) -> float | None:
    if not isinstance(logged, (int, float)) or isinstance(logged, bool):
        return None
    a, b = float(recomputed), float(logged)
    if not (math.isfinite(a) and math.isfinite(b)):
        return None if a == b else math.inf
    return abs(a - b) / max(abs(b), 1e-12)


def _logged_check(records: Sequence[_Analysis]) -> str | None:
    """One line comparing the recomputed values with those logged in training, plus any large mismatches."""
    worst = 0.0
    compared = 0
    mismatches: list[str] = []
    for r in records:
        diffs: dict[str, float] = {}
        for key, value in r.result.values.items():
            diff = _relative_diff(value, r.logged.get(key))
            if diff is not None:
                diffs[key] = diff
        if not diffs:
            continue
        compared += 1
        worst = max(worst, *diffs.values())
        bad = [
            f"{k} {r.result.values[k]:.6g} vs {float(r.logged[k]):.6g}" for k, d in diffs.items() if d > _MISMATCH_RTOL
        ]
        if bad:
            mismatches.append(f"  {r.entry.path.name}: {'; '.join(bad)}")
    if not compared:
        return None
    dtypes = sorted({r.entry.dtypes.get("reference", "?") for r in records})
    line = (
        f"vs. values logged in training: max relative difference {worst:.2g} over {compared} snapshot(s) "
        f"(stored as {', '.join(dtypes)})"
    )
    if mismatches:
        note = " float16 storage rounds the representations;" if "float16" in dtypes else ""
        line += f"\ndifferences above {_MISMATCH_RTOL:g} (other backend or library version?{note}):\n"
        line += "\n".join(mismatches)
    return line


def _x_positions(records: Sequence[_Analysis]) -> list[float]:
    """Epoch of each record; the position in the list when a snapshot has no epoch."""
    return [float(i if r.entry.epoch is None else r.entry.epoch) for i, r in enumerate(records)]


def _plot_analysis(records: Sequence[_Analysis], path: Path) -> None:
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from lightning_repgap.plot import plot_dimension_history

    xs = _x_positions(records)
    layers = list(dict.fromkeys(r.entry.layer for r in records))
    styles = ("-", "--", ":", "-.")
    norm = Normalize(vmin=min(xs), vmax=max(xs) if max(xs) > min(xs) else min(xs) + 1)
    cmap = colormaps["viridis"]
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax_gap, ax_dim = fig.subplots(1, 2)
    for x, r in zip(xs, records, strict=True):
        curve = r.result.curve
        style = styles[layers.index(r.entry.layer) % len(styles)]
        ax_gap.plot(curve.sizes, curve.gaps, color=cmap(norm(x)), ls=style, marker="o", ms=3)
    ax_gap.set_xscale("log")
    ax_gap.set_yscale("log")
    ax_gap.set_xlabel("bank size n")
    ax_gap.set_ylabel("representation gap G(n)")
    ax_gap.set_title("gap curves")
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax_gap, label="epoch")
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    if len(layers) > 1:
        handles = [Line2D([], [], color="k", ls=styles[i % len(styles)]) for i in range(len(layers))]
        ax_gap.legend(handles, layers, fontsize="small", title="layer")
    for layer in layers:
        pts = [(x, r.result.values) for x, r in zip(xs, records, strict=True) if r.entry.layer == layer]
        pts = [(x, v) for x, v in pts if math.isfinite(v["dim"])]
        if not pts:
            continue
        dims = [v["dim"] for _, v in pts]
        low = [v["dim_low"] if math.isfinite(v["dim_low"]) else v["dim"] for _, v in pts]
        high = [v["dim_high"] if math.isfinite(v["dim_high"]) else v["dim"] for _, v in pts]
        plot_dimension_history([x for x, _ in pts], dims, low=low, high=high, ax=ax_dim, label=layer)
    ax_dim.set_title("dimension dim (calibrated interval)")
    ax_dim.xaxis.set_major_locator(MaxNLocator(integer=True))
    save_figure(fig, path)


def _analyze_entries(
    entries: list[_Entry], args: argparse.Namespace, damaged: list[tuple[Path, str]], *, stop_at_damage: bool
) -> list[_Analysis]:
    """Analyse each snapshot; a damaged one is added to ``damaged`` (or raised with ``stop_at_damage``)."""
    configs = _snapshot_config(entries)
    records = []
    for i, entry in enumerate(entries, 1):
        if not args.quiet:
            print(f"[{i}/{len(entries)}] {entry.describe()}", file=sys.stderr, flush=True)
        try:
            records.append(_analyze_one(entry, configs[entry.path], args.backend, args.index))
        except CLIError as err:  # one damaged snapshot must not hide the others (unless --strict)
            if stop_at_damage:
                raise
            damaged.append((entry.path, str(err)))
    return records


def _report_skipped(damaged: list[tuple[Path, str]], incomplete: list[Path]) -> None:
    for path, reason in damaged:
        print(f"skipped damaged snapshot {path}: {reason}", file=sys.stderr, flush=True)
    for path in incomplete:
        print(f"skipped incomplete snapshot {path} (no {MANIFEST_NAME}: a write that did not finish)", file=sys.stderr)


def cmd_analyze(args: argparse.Namespace) -> int:
    json_path, plot_path = args.json, args.plot
    check_output(json_path, "--json")
    check_output(plot_path, "--plot")
    check_plotting(plot_path)
    root = args.snapshot_dir
    paths = _find_snapshots(root)
    single = paths == [root]
    damaged, incomplete = ([], []) if single else _scan.unreadable(root)
    if damaged and args.strict:
        raise CLIError(f"corrupt snapshot: {damaged[0][1]}")
    entries = _filter_layers([_read_entry(p) for p in paths], args.layer)
    t0 = time.perf_counter()
    records = _analyze_entries(entries, args, damaged, stop_at_damage=single or args.strict)
    _report_skipped(damaged, incomplete)
    if not records:
        raise CLIError(f"no snapshot in {root} could be analysed ({len(damaged)} damaged).")
    if not args.quiet:
        print(f"analysed {len(records)} snapshot(s) in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    if damaged or incomplete:
        skipped = len(damaged) + len(incomplete)
        print(f"skipped {skipped} snapshot(s): {len(damaged)} damaged, {len(incomplete)} incomplete")

    backends = sorted({r.result.curve.backend for r in records})
    print(f"{root}: {len(records)} snapshot(s), backend {', '.join(backends)}")
    print(_analysis_table(records))
    check = _logged_check(records)
    if check:
        print(check)
    if json_path is not None:
        write_json(json_path, [r.to_json() for r in records])
        print(f"wrote {json_path}")
    if plot_path is not None:
        _plot_analysis(records, plot_path)
        print(f"wrote {plot_path}")
    return EXIT_DAMAGED if damaged else EXIT_OK
