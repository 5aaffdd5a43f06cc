"""Shared pieces of the ``repgap`` command: its error type, warnings, tables and atomic output files."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from lightning_repgap.functional import ACCURACY_KEYS, CORE_KEYS, OPTIONAL_KEYS, GapResult
from lightning_repgap.snapshot import atomic_write, jsonable

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "PROG",
    "CLIError",
    "check_output",
    "check_plotting",
    "curve_json",
    "fmt",
    "ordered_keys",
    "render_table",
    "save_figure",
    "show_warning",
    "warn",
    "write_json",
]

PROG = "repgap"
#: Exit code of a successful run.
EXIT_OK = 0
#: Exit code for bad input (also what argparse uses for usage errors).
EXIT_ERROR = 2
#: Exit code after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """Bad input or environment: printed as ``repgap: error: <message>``, exit code 2."""


# ---------------------------------------------------------------------------------------------------- helpers


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Library warnings as one ``repgap: warning:`` line, without source location."""
    del category, filename, lineno, file, line
    warn(str(message))


def fmt(value: Any, spec: str) -> str:
    """Format a number for a table; ``None`` (absent) is ``-``, non-finite values print as ``inf``/``nan``."""
    if value is None:
        return "-"
    return format(float(value), spec)


def write_json(path: Path, payload: Any) -> None:
    text = json.dumps(jsonable(payload), indent=2, allow_nan=False) + "\n"
    _write_bytes(path, text.encode("utf-8"))


def _write_bytes(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data)
    except OSError as err:
        raise CLIError(f"cannot write {path}: {err.strerror or err}") from None


def check_output(path: Path | None, option: str) -> None:
    """Fail before any work if an output file cannot be created where asked."""
    if path is None:
        return
    if path.is_dir():
        raise CLIError(f"{option} {path} is a directory; give a file name.")
    if not path.parent.is_dir():
        raise CLIError(f"{option} {path}: the directory {path.parent} does not exist.")


def check_plotting(path: Path | None) -> None:
    if path is None:
        return
    from lightning_repgap._imports import _MATPLOTLIB_AVAILABLE

    if not _MATPLOTLIB_AVAILABLE:
        raise CLIError("--plot needs matplotlib: `pip install lightning_repgap[plot]`.")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[int] = ()) -> str:
    """Plain-text table: numbers right-aligned, columns in ``left`` left-aligned."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def ordered_keys(values: dict[str, float]) -> list[str]:
    known = [k for k in (*CORE_KEYS, *OPTIONAL_KEYS, *ACCURACY_KEYS) if k in values]
    return known + sorted(k for k in values if k not in known)


def curve_json(result: GapResult) -> dict[str, Any]:
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


def save_figure(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _write_bytes(path, buf.getvalue())
