"""The ``repgap`` command: re-analyse representation snapshots, or raw arrays, offline.

Two subcommands:

* ``repgap analyze SNAPSHOT_DIR`` loads every snapshot written by
  :class:`~lightning_repgap.callback.RepresentationGapCallback` (or one snapshot directory), recomputes every
  ``repgap/`` quantity with the configuration stored in the snapshot, prints one table row per snapshot, checks the
  numbers against the values logged during training, and optionally writes JSON and a PNG figure.
* ``repgap estimate TRAIN TEST`` measures the gap of two raw ``(n, D)`` arrays (``.npy`` or ``.pt``).

The program is a thin layer over :mod:`lightning_repgap.snapshot` and :mod:`lightning_repgap.functional`: it
never imports Lightning, imports matplotlib itself only to draw, and writes every output file atomically
(temporary file, then :func:`os.replace`). Problems with the input (missing or corrupt files, bad shapes, unknown
layer names) are reported as one ``repgap: error: ...`` line on stderr with exit code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import math
import os
import secrets
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import lightning_repgap
from lightning_repgap import _scan
from lightning_repgap.approximate import INDEX_OPTIONS
from lightning_repgap.functional import ACCURACY_KEYS, CORE_KEYS, OPTIONAL_KEYS, GapResult, _gap_compute, _gap_update
from lightning_repgap.functional import representation_gap as _representation_gap
from lightning_repgap.snapshot import MANIFEST_NAME, SnapshotError, list_snapshots, load_snapshot, read_manifest

__all__ = ["build_parser", "main"]

PROG = "repgap"
#: Exit code of a successful run.
EXIT_OK = 0
#: Exit code for bad input (also what argparse uses for usage errors).
EXIT_ERROR = 2
#: ``repgap analyze`` analysed what it could but skipped damaged snapshots.
EXIT_DAMAGED = 1
#: Exit code after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130

_BACKENDS = ("auto", "faiss", "faiss-gpu", "torch")
# Keyword arguments of `representation_gap` that carry data, not configuration.
_DATA_ARGS = frozenset({"train_queries", "reference_labels", "query_labels"})
_ARRAY_SUFFIXES = (".npy", ".pt", ".pth")
# Recomputed values further than this (relative) from the logged ones are listed after the table.
_MISMATCH_RTOL = 1e-3


class CLIError(Exception):
    """Bad input or environment: printed as ``repgap: error: <message>``, exit code 2."""


# ---------------------------------------------------------------------------------------------------- helpers


def _config_keys() -> frozenset[str]:
    """Configuration arguments of ``representation_gap`` that ``_gap_compute`` also takes (stays in sync)."""
    public = inspect.signature(_representation_gap).parameters
    private = inspect.signature(_gap_compute).parameters
    return frozenset(
        name for name, p in public.items() if p.kind is p.KEYWORD_ONLY and name not in _DATA_ARGS and name in private
    )


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Library warnings as one ``repgap: warning:`` line, without source location."""
    del category, filename, lineno, file, line
    _warn(str(message))


def _fmt(value: Any, spec: str) -> str:
    """Format a number for a table; ``None`` (absent) is ``-``, non-finite values print as ``inf``/``nan``."""
    if value is None:
        return "-"
    return format(float(value), spec)


def _jsonable(value: Any) -> Any:
    """Strict-JSON version of ``value``: numpy types to Python, non-finite floats to ``None``, paths to str."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary sibling of ``path``, fsync it and rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise CLIError(f"cannot write {path}: {err.strerror or err}") from None


def _write_json(path: Path, payload: Any) -> None:
    text = json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n"
    _atomic_write(path, text.encode("utf-8"))


def _check_output(path: Path | None, option: str) -> None:
    """Fail before any work if an output file cannot be created where asked."""
    if path is None:
        return
    if path.is_dir():
        raise CLIError(f"{option} {path} is a directory; give a file name.")
    if not path.parent.is_dir():
        raise CLIError(f"{option} {path}: the directory {path.parent} does not exist.")


def _check_plotting(path: Path | None) -> None:
    if path is None:
        return
    from lightning_repgap._imports import _MATPLOTLIB_AVAILABLE

    if not _MATPLOTLIB_AVAILABLE:
        raise CLIError("--plot needs matplotlib: `pip install lightning_repgap[plot]`.")


def _render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[int] = ()) -> str:
    """Plain-text table: numbers right-aligned, columns in ``left`` left-aligned."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def _ordered_keys(values: dict[str, float]) -> list[str]:
    known = [k for k in (*CORE_KEYS, *OPTIONAL_KEYS, *ACCURACY_KEYS) if k in values]
    return known + sorted(k for k in values if k not in known)


def _curve_json(result: GapResult) -> dict[str, Any]:
    curve, fit = result.curve, result.fit
    out: dict[str, Any] = {"sizes": curve.sizes, "gaps": curve.gaps}
    if curve.train_gaps is not None:
        out["train_gaps"] = curve.train_gaps
    payload = {
        "curve": out,
        "fit": {
            "slope": fit.slope,
            "intercept": fit.intercept,
            "dim_raw": fit.dim_raw,
            "r2": fit.r2,
            "fit_sizes": fit.fit_sizes,
        },
        "backend": curve.backend,
    }
    approx = result.approximate
    if approx is not None:
        # Per grid size, over the whole sample of queries searched exactly (queries and training queries).
        payload["approximate"] = {
            "index": approx.index,
            "exact_size": approx.exact_size,
            "recall_sample": int(approx.recall_rows.size),
            "recall_per_size": approx.recall_per_size,
            "gap_rel_error_per_size": approx.gap_rel_error_per_size,
            "blocks": [
                {"start": b.start, "stop": b.stop, "method": b.method, "params": b.params, "recall": b.recall}
                for b in approx.blocks
            ],
        }
    return payload


def _save_figure(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _atomic_write(path, buf.getvalue())


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
    config: dict[str, Any]
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
            **_curve_json(self.result),
            "logged": self.logged,
            "config": self.config,
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


def _snapshot_config(entries: Sequence[_Entry]) -> dict[Path, dict[str, Any]]:
    """Each snapshot's stored ``config`` restricted to ``representation_gap`` arguments; warn once about the rest."""
    accepted = _config_keys()
    configs: dict[Path, dict[str, Any]] = {}
    unknown: dict[str, int] = {}
    missing = 0
    for entry in entries:
        config = entry.metadata.get("config")
        if not isinstance(config, dict):
            missing += 1
            config = {}
        for key in config:
            if key not in accepted:
                unknown[key] = unknown.get(key, 0) + 1
        configs[entry.path] = {k: v for k, v in config.items() if k in accepted}
    if unknown:
        listed = ", ".join(f"{k!r} ({n} snapshot{'s' * (n > 1)})" for k, n in sorted(unknown.items()))
        _warn(f"ignoring config keys that representation_gap does not accept: {listed}.")
    if missing:
        _warn(
            f"{missing} snapshot(s) carry no 'config' metadata; using representation_gap defaults, so the values "
            "may differ from those logged in training."
        )
    return configs


def _analyze_one(entry: _Entry, config: dict[str, Any], backend: str | None, index: str | None = None) -> _Analysis:
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
    config = dict(config)
    if backend is not None:
        config["backend"] = backend
    if index is not None:
        config["index"] = index
    t0 = time.perf_counter()
    try:
        inputs = _gap_update(
            arrays["reference"],
            arrays["queries"],
            arrays.get("train_queries"),
            arrays["reference_labels"] if labels else None,
            arrays["query_labels"] if labels else None,
        )
        result = _gap_compute(inputs, **config)
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
            _fmt(v.get("gap"), ".4g"),
            _fmt(v.get("gap_norm"), ".4g"),
            f"{_fmt(v.get('dim'), '.2f')} [{_fmt(v.get('dim_low'), '.2f')}, {_fmt(v.get('dim_high'), '.2f')}]",
            _fmt(v.get("law_r2"), ".4f"),
            _fmt(v.get("dim_twonn"), ".2f"),
            _fmt(v.get("dim_mle"), ".2f"),
            *(_fmt(v.get(k), ".3f") for k in extras),
        ])
    return _render_table(headers, rows, left=(2,))


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
    ax_dim.set_title("gap dimension (bootstrap interval)")
    ax_dim.xaxis.set_major_locator(MaxNLocator(integer=True))
    _save_figure(fig, path)


def _cmd_analyze(args: argparse.Namespace) -> int:
    json_path, plot_path = args.json, args.plot
    _check_output(json_path, "--json")
    _check_output(plot_path, "--plot")
    _check_plotting(plot_path)
    root = args.snapshot_dir
    paths = _find_snapshots(root)
    single = paths == [root]
    damaged, incomplete = ([], []) if single else _scan.unreadable(root)
    if damaged and args.strict:
        raise CLIError(f"corrupt snapshot: {damaged[0][1]}")
    entries = _filter_layers([_read_entry(p) for p in paths], args.layer)
    configs = _snapshot_config(entries)
    records = []
    t0 = time.perf_counter()
    for i, entry in enumerate(entries, 1):
        if not args.quiet:
            print(f"[{i}/{len(entries)}] {entry.describe()}", file=sys.stderr, flush=True)
        try:
            records.append(_analyze_one(entry, configs[entry.path], args.backend, args.index))
        except CLIError as err:  # one damaged snapshot must not hide the others (unless --strict)
            if single or args.strict:
                raise
            damaged.append((entry.path, str(err)))
    for path, reason in damaged:
        print(f"skipped damaged snapshot {path}: {reason}", file=sys.stderr, flush=True)
    for path in incomplete:
        print(f"skipped incomplete snapshot {path} (no {MANIFEST_NAME}: a write that did not finish)", file=sys.stderr)
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
        _write_json(json_path, [r.to_json() for r in records])
        print(f"wrote {json_path}")
    if plot_path is not None:
        _plot_analysis(records, plot_path)
        print(f"wrote {plot_path}")
    return EXIT_DAMAGED if damaged else EXIT_OK


# ---------------------------------------------------------------------------------------------------- estimate


def _load_array(path: Path, what: str) -> Any:
    """Read an ``(n, D)`` array from ``.npy`` or ``.pt``/``.pth`` (a tensor, or a dict holding one tensor)."""
    if path.suffix.lower() not in _ARRAY_SUFFIXES:
        raise CLIError(f"{what} {path}: unsupported file type {path.suffix!r}; use .npy, .pt or .pth.")
    if not path.is_file():
        raise CLIError(f"{what} {path} does not exist." if not path.exists() else f"{what} {path} is not a file.")
    if path.suffix.lower() == ".npy":
        try:
            arr: Any = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise CLIError(f"{what} {path}: cannot read it as .npy: {err}") from None
    else:
        arr = _load_torch(path, what)
    if arr.ndim != 2:
        raise CLIError(f"{what} {path}: expected a 2-D (n, D) array, got shape {tuple(arr.shape)}.")
    return arr


def _load_torch(path: Path, what: str) -> Any:
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for an unreadable or unsafe file
        raise CLIError(f"{what} {path}: cannot read it with torch.load(weights_only=True): {err}") from None
    if isinstance(obj, dict):
        tensors = [v for v in obj.values() if isinstance(v, torch.Tensor)]
        if len(obj) != 1 or len(tensors) != 1:
            raise CLIError(
                f"{what} {path}: holds a dict with keys {sorted(map(str, obj))}; expected a tensor or a dict with a "
                "single tensor."
            )
        obj = tensors[0]
    if not isinstance(obj, torch.Tensor):
        raise CLIError(f"{what} {path}: holds a {type(obj).__name__}; expected a tensor or a dict with one tensor.")
    return obj


def _describe_array(arr: Any) -> str:
    dtype = str(arr.dtype).removeprefix("torch.")
    return f"{arr.shape[0]} x {arr.shape[1]} {dtype}"


def _estimate_report(args: argparse.Namespace, arrays: dict[str, Any], result: GapResult) -> str:
    rows = [[label, str(path), _describe_array(arrays[key])] for key, label, path in _estimate_inputs(args)]
    head = _render_table(["input", "file", "shape"], rows, left=(0, 1, 2))
    values = result.values
    value_rows = [[k, _fmt(values[k], ".6g")] for k in _ordered_keys(values)]
    curve, fit = result.curve, result.fit
    fit_sizes = set(fit.fit_sizes.tolist())
    headers = ["n", "G(n)"] + (["G_train(n)"] if curve.train_gaps is not None else []) + ["in fit"]
    curve_rows = []
    for s, n in enumerate(curve.sizes.tolist()):
        row = [str(n), _fmt(curve.gaps[s], ".6g")]
        if curve.train_gaps is not None:
            row.append(_fmt(curve.train_gaps[s], ".6g"))
        curve_rows.append([*row, "*" if n in fit_sizes else ""])
    return "\n\n".join([
        head + f"\nbackend: {curve.backend}",
        _render_table(["key", "value"], value_rows, left=(0,)),
        _render_table(headers, curve_rows, left=(len(headers) - 1,)),
    ])


def _estimate_inputs(args: argparse.Namespace) -> list[tuple[str, str, Path]]:
    inputs = [("reference", "TRAIN (bank)", args.train), ("queries", "TEST (queries)", args.test)]
    if args.train_queries is not None:
        inputs.append(("train_queries", "--train-queries", args.train_queries))
    return inputs


def _cmd_estimate(args: argparse.Namespace) -> int:
    _check_output(args.json, "--json")
    _check_output(args.plot, "--plot")
    _check_plotting(args.plot)
    arrays = {key: _load_array(path, label.split()[0]) for key, label, path in _estimate_inputs(args)}
    ref, qs = arrays["reference"], arrays["queries"]
    for key in ("queries", "train_queries"):
        if key in arrays and arrays[key].shape[1] != ref.shape[1]:
            raise CLIError(
                f"TRAIN has {ref.shape[1]} columns but {'TEST' if key == 'queries' else '--train-queries'} has "
                f"{arrays[key].shape[1]}: the arrays must have the same width D."
            )
    config: dict[str, Any] = {
        "min_size": args.min_size,
        "seed": args.seed,
        "fit_min_size": args.fit_min_size,
        "n_bootstrap": args.n_bootstrap,
        "calibrate": not args.no_calibrate,
        "backend": args.backend or "auto",
        "index": args.index,
    }
    if not args.quiet:
        print(f"measuring: bank {_describe_array(ref)}, queries {_describe_array(qs)}", file=sys.stderr, flush=True)
    try:
        result = _gap_compute(_gap_update(ref, qs, arrays.get("train_queries")), **config)
    except (ValueError, TypeError) as err:
        names = "`reference`" in str(err) or "`queries`" in str(err) or "`train_queries`" in str(err)
        hint = " (TRAIN is `reference`, TEST is `queries`, --train-queries is `train_queries`)" if names else ""
        raise CLIError(f"{err}{hint}") from None
    print(_estimate_report(args, arrays, result))
    if args.json is not None:
        payload = {
            "train": args.train,
            "test": args.test,
            "train_queries": args.train_queries,
            "values": result.values,
            **_curve_json(result),
            "config": config,
        }
        _write_json(args.json, payload)
        print(f"wrote {args.json}")
    if args.plot is not None:
        from matplotlib.figure import Figure

        from lightning_repgap.plot import plot_gap_curve

        fig = Figure(figsize=(5.5, 4.5), layout="constrained")
        plot_gap_curve(result.curve, fit=result.fit, ax=fig.subplots())
        _save_figure(fig, args.plot)
        print(f"wrote {args.plot}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- parser


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the descriptions' line breaks (the examples)."""


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


_MAIN_DESCRIPTION = """\
Measure the representation gap G(n) (mean squared distance from a held-out representation to its nearest
training representation among the first n), its scaling-law dimension d = -2 / slope of log G vs log n,
and the TwoNN / MLE cross-checks, offline.

examples:
  repgap analyze runs/repgap_snapshots --json gap.json --plot gap.png
  repgap estimate train_feats.npy test_feats.pt --n-bootstrap 500
"""

_ANALYZE_DESCRIPTION = """\
Re-analyse snapshots written by RepresentationGapCallback(snapshot_dir=...). SNAPSHOT_DIR is either the root
holding snapshot subdirectories (incomplete ones, without manifest.json, are skipped) or one snapshot
directory. Every snapshot is verified against its manifest and recomputed with the configuration stored in
it; one table row is printed per snapshot (oldest first), then a comparison with the values logged during
training.

example:
  repgap analyze lightning_logs/repgap --layer backbone --json gap.json --plot gap.png
"""

_ESTIMATE_DESCRIPTION = """\
Measure the representation gap of raw arrays: TRAIN is the bank (e.g. training representations or model
samples), TEST the held-out queries. Both are 2-D (n, D) floating arrays in a .npy file (numpy.save) or a
.pt/.pth file (torch.save of a tensor, or of a dict holding a single tensor; loaded with weights_only=True).
Prints every value of representation_gap and the curve (n, G(n)).

example:
  repgap estimate train.npy test.npy --train-queries heldout_train.npy --json out.json --plot curve.png
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``repgap`` argument parser (exposed for documentation tools).

    Returns:
        The parser; each subcommand stores its handler as ``func``.

    """
    parser = argparse.ArgumentParser(prog=PROG, description=_MAIN_DESCRIPTION, formatter_class=_HelpFormatter)
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {lightning_repgap.__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    analyze = sub.add_parser(
        "analyze",
        help="re-analyse snapshots written by RepresentationGapCallback",
        description=_ANALYZE_DESCRIPTION,
        formatter_class=_HelpFormatter,
    )
    analyze.add_argument("snapshot_dir", type=Path, metavar="SNAPSHOT_DIR", help="snapshot root or one snapshot")
    _add_outputs(
        analyze,
        "a list with one object per snapshot: path, epoch, step, layer, recomputed values, curve, fit and the values"
        " logged in training",
        "two panels: the log-log gap curves of every snapshot (colour: epoch) and the gap dimension with its"
        " bootstrap interval over epochs, per layer",
    )
    analyze.add_argument(
        "--layer",
        action="append",
        metavar="NAME",
        help="only analyse snapshots of this layer (repeat for several); default: all layers",
    )
    analyze.add_argument(
        "--backend",
        choices=_BACKENDS,
        default=None,
        help="nearest-neighbour backend; default: the one in the snapshot's config, else auto",
    )
    analyze.add_argument(
        "--index",
        choices=INDEX_OPTIONS,
        default=None,
        help="exact search or an approximate FAISS index (ivf, hnsw; adds recall and gap_rel_error); auto: ivf from"
        " 1,000,000 bank points; default: the one in the snapshot's config, else exact",
    )
    analyze.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    analyze.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first damaged snapshot (exit 2); default: skip it with one line and exit 1 at the end",
    )
    analyze.set_defaults(func=_cmd_analyze)

    estimate = sub.add_parser(
        "estimate",
        help="measure the gap between two raw (n, D) arrays (.npy or .pt)",
        description=_ESTIMATE_DESCRIPTION,
        formatter_class=_HelpFormatter,
    )
    estimate.add_argument("train", type=Path, metavar="TRAIN", help="bank: (n, D) array, .npy or .pt/.pth")
    estimate.add_argument("test", type=Path, metavar="TEST", help="queries: (m, D) array, .npy or .pt/.pth")
    estimate.add_argument(
        "--train-queries",
        type=Path,
        metavar="FILE",
        help="further training representations, not in TRAIN, for gap_ratio = G_test / G_train (.npy or .pt)",
    )
    _add_outputs(estimate, "values, curve, fit and configuration", "the log-log gap curve with the fitted law")
    estimate.add_argument(
        "--min-size",
        type=_int_at_least(1),
        default=16,
        metavar="N",
        help="first bank size of the geometric grid (default: %(default)s)",
    )
    estimate.add_argument(
        "--fit-min-size",
        type=_int_at_least(1),
        default=16,
        metavar="N",
        help="smallest bank size in the law fit (default: %(default)s)",
    )
    estimate.add_argument(
        "--n-bootstrap",
        type=_int_at_least(0),
        default=200,
        metavar="N",
        help="bootstrap resamples of the queries for dim_low/dim_high; 0: no interval (default: %(default)s)",
    )
    estimate.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the bank order and the bootstrap (default: %(default)s)",
    )
    estimate.add_argument(
        "--no-calibrate", action="store_true", help="report the raw gap dimension, without finite-sample calibration"
    )
    estimate.add_argument(
        "--backend",
        choices=_BACKENDS,
        default="auto",
        help="nearest-neighbour backend; auto: FAISS on a GPU if present, else the torch GEMM path (default: auto)",
    )
    estimate.add_argument(
        "--index",
        choices=INDEX_OPTIONS,
        default="exact",
        help="exact search or an approximate FAISS index (ivf, hnsw), which adds the recall and gap_rel_error"
        " measured on an exact sample of the queries; auto: ivf from 1,000,000 bank points (default: %(default)s)",
    )
    estimate.add_argument("--quiet", "-q", action="store_true", help="no progress line on stderr")
    estimate.set_defaults(func=_cmd_estimate)
    return parser


def _add_outputs(parser: argparse.ArgumentParser, json_content: str, plot_content: str) -> None:
    parser.add_argument(
        "--json",
        type=Path,
        metavar="OUT.json",
        help=f"write {json_content} to OUT.json (strict JSON: inf/nan become null; written atomically)",
    )
    parser.add_argument(
        "--plot", type=Path, metavar="OUT.png", help=f"write a PNG figure: {plot_content} (needs matplotlib)"
    )


def _exit_code(code: object) -> int:
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``repgap`` command.

    Args:
        argv: the arguments after the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        The exit code: 0 on success, 2 for usage errors and bad input (message on stderr), 130 after Ctrl-C.

    Example:
        >>> main(["--version"])  # doctest: +ELLIPSIS
        repgap 0...
        0

    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors exit from inside argparse
        return _exit_code(exc.code)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return int(args.func(args))
        except CLIError as err:
            print(f"{PROG}: error: {err}", file=sys.stderr, flush=True)
            return EXIT_ERROR
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
