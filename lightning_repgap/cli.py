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
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import lightning_repgap
from lightning_repgap._cli_analyze import cmd_analyze
from lightning_repgap._cli_common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    PROG,
    CLIError,
    check_output,
    check_plotting,
    curve_json,
    fmt,
    ordered_keys,
    render_table,
    save_figure,
    show_warning,
    write_json,
)
from lightning_repgap._faults import TooFewFitSizesError
from lightning_repgap.config import BACKENDS, INDEX_OPTIONS, SEARCH_PRECISIONS, GapConfig
from lightning_repgap.functional import GapResult, analyze

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "PROG", "CLIError", "build_parser", "main"]
_ARRAY_SUFFIXES = (".npy", ".pt", ".pth")


# ---------------------------------------------------------------------------------------------------- estimate


def _load_array(path: Path, what: str) -> Any:
    """Read an ``(n, D)`` array from ``.npy`` or ``.pt``/``.pth`` (a tensor, or a dict holding one tensor)."""
    if path.suffix.lower() not in _ARRAY_SUFFIXES:
        raise CLIError(f"{what} {path}: unsupported file type {path.suffix!r}; use .npy, .pt or .pth.")
    if not path.is_file():
        raise CLIError(f"{what} {path} does not exist." if not path.exists() else f"{what} {path} is not a file.")
    if path.suffix.lower() == ".npy":
        with path.open("rb") as fh:
            magic = fh.read(6)
        if magic != b"\x93NUMPY":  # np.load takes any other file for a pickle and says it holds pickled data
            raise CLIError(f"{what} {path}: cannot read it as .npy: it is not a valid .npy file (no .npy header).")
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
    head = render_table(["input", "file", "shape"], rows, left=(0, 1, 2))
    values = result.values
    value_rows = [[k, fmt(values[k], ".6g")] for k in ordered_keys(values)]
    curve, fit = result.curve, result.fit
    fit_sizes = set(fit.fit_sizes.tolist())
    headers = ["n", "G(n)"] + (["G_train(n)"] if curve.train_gaps is not None else []) + ["in fit"]
    curve_rows = []
    for s, n in enumerate(curve.sizes.tolist()):
        row = [str(n), fmt(curve.gaps[s], ".6g")]
        if curve.train_gaps is not None:
            row.append(fmt(curve.train_gaps[s], ".6g"))
        curve_rows.append([*row, "*" if n in fit_sizes else ""])
    return "\n\n".join([
        head + f"\nbackend: {curve.backend}",
        render_table(["key", "value"], value_rows, left=(0,)),
        render_table(headers, curve_rows, left=(len(headers) - 1,)),
    ])


def _estimate_inputs(args: argparse.Namespace) -> list[tuple[str, str, Path]]:
    inputs = [("reference", "TRAIN (bank)", args.train), ("queries", "TEST (queries)", args.test)]
    if args.train_queries is not None:
        inputs.append(("train_queries", "--train-queries", args.train_queries))
    return inputs


def _cmd_estimate(args: argparse.Namespace) -> int:
    check_output(args.json, "--json")
    check_output(args.plot, "--plot")
    check_plotting(args.plot)
    arrays = {key: _load_array(path, label.split()[0]) for key, label, path in _estimate_inputs(args)}
    ref, qs = arrays["reference"], arrays["queries"]
    for key in ("queries", "train_queries"):
        if key in arrays and arrays[key].shape[1] != ref.shape[1]:
            raise CLIError(
                f"TRAIN has {ref.shape[1]} columns but {'TEST' if key == 'queries' else '--train-queries'} has "
                f"{arrays[key].shape[1]}: the arrays must have the same width D."
            )
    config = _estimate_config(args)
    if not args.quiet:
        print(f"measuring: bank {_describe_array(ref)}, queries {_describe_array(qs)}", file=sys.stderr, flush=True)
    try:
        result = analyze(ref, qs, train_queries=arrays.get("train_queries"), config=config)
    except (ValueError, TypeError) as err:
        names = "`reference`" in str(err) or "`queries`" in str(err) or "`train_queries`" in str(err)
        hint = " (TRAIN is `reference`, TEST is `queries`, --train-queries is `train_queries`)" if names else ""
        if isinstance(err, TooFewFitSizesError):  # name the options the user passed, not the config fields
            grid = "--sizes" if args.sizes is not None else f"--min-size {args.min_size} with --ratio {args.ratio}"
            hint += (
                f" (here {grid} gives the bank sizes and `fit_min_size` is --fit-min-size {args.fit_min_size}: "
                f"lower {'--min-size' if args.sizes is None else 'or add --sizes'} or --fit-min-size)"
            )
        raise CLIError(f"{err}{hint}") from None
    print(_estimate_report(args, arrays, result))
    _estimate_outputs(args, result, config)
    return EXIT_OK


def _estimate_config(args: argparse.Namespace) -> GapConfig:
    """The :class:`GapConfig` of ``repgap estimate``'s options."""
    try:
        return GapConfig(
            sizes=args.sizes,
            min_size=args.min_size,
            ratio=args.ratio,
            seed=args.seed,
            fit_min_size=args.fit_min_size,
            n_neighbors=args.n_neighbors,
            n_bootstrap=args.n_bootstrap,
            confidence=args.confidence,
            calibrate=not args.no_calibrate,
            backend=args.backend,
            index=args.index,
            search_precision=args.search_precision,
        )
    except ValueError as err:
        raise CLIError(str(err)) from None


def _estimate_outputs(args: argparse.Namespace, result: GapResult, config: GapConfig) -> None:
    if args.json is not None:
        payload = {
            "train": args.train,
            "test": args.test,
            "train_queries": args.train_queries,
            "values": result.values,
            **curve_json(result),
            "config": config.to_dict(),
        }
        write_json(args.json, payload)
        print(f"wrote {args.json}")
    if args.plot is not None:
        from matplotlib.figure import Figure

        from lightning_repgap.plot import plot_gap_curve

        fig = Figure(figsize=(5.5, 4.5), layout="constrained")
        plot_gap_curve(result.curve, fit=result.fit, ax=fig.subplots())
        save_figure(fig, args.plot)
        print(f"wrote {args.plot}")


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
training representation among the first n), the trusted intrinsic dimension `dim` (the calibrated gap law
d = -2 / slope of log G vs log n where it is right, local estimators where they are), and the TwoNN / MLE
cross-checks, offline.

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
        " calibrated interval over epochs, per layer",
    )
    analyze.add_argument(
        "--layer",
        action="append",
        metavar="NAME",
        help="only analyse snapshots of this layer (repeat for several); default: all layers",
    )
    analyze.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="nearest-neighbour backend; default: the one in the snapshot's config, else auto",
    )
    analyze.add_argument(
        "--index",
        choices=INDEX_OPTIONS,
        default=None,
        help="exact search or an approximate FAISS index (ivf, hnsw; adds recall and gap_rel_error); auto: ivf from"
        " 100,000,000 bank points; default: the one in the snapshot's config, else exact",
    )
    analyze.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    analyze.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first damaged snapshot (exit 2); default: skip it with one line and exit 1 at the end",
    )
    analyze.set_defaults(func=cmd_analyze)

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
    _add_config_options(estimate)
    estimate.add_argument("--quiet", "-q", action="store_true", help="no progress line on stderr")
    estimate.set_defaults(func=_cmd_estimate)
    return parser


def _float_in(low: float, high: float | None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > low or (high is not None and not value < high):
            bound = f"> {low}" if high is None else f"in ({low}, {high})"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = "number"
    return parse


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`GapConfig` field, defaults taken from ``GapConfig()``."""
    default = GapConfig()
    add = parser.add_argument
    add(
        "--sizes",
        type=_int_list,
        default=None,
        metavar="N,N,...",
        help="explicit increasing bank sizes of the curve (default: a geometric grid from --min-size with --ratio)",
    )
    add(
        "--min-size",
        type=_int_at_least(1),
        default=default.min_size,
        metavar="N",
        help="first bank size of the geometric grid (default: %(default)s)",
    )
    add(
        "--ratio",
        type=_float_in(1.0, None),
        default=default.ratio,
        metavar="R",
        help="growth factor of the grid, > 1 (default: %(default)s)",
    )
    add(
        "--fit-min-size",
        type=_int_at_least(1),
        default=default.fit_min_size,
        metavar="N",
        help="smallest bank size in the law fit (default: %(default)s)",
    )
    add(
        "--n-neighbors",
        type=_int_at_least(2),
        default=default.n_neighbors,
        metavar="K",
        help="neighbours for the MLE cross-check (default: %(default)s)",
    )
    add(
        "--n-bootstrap",
        type=_int_at_least(0),
        default=default.n_bootstrap,
        metavar="N",
        help="bootstrap resamples of the queries for dim_low/dim_high; 0: no interval (default: %(default)s)",
    )
    add(
        "--confidence",
        type=_float_in(0.0, 1.0),
        default=default.confidence,
        metavar="C",
        help="coverage of the dim_low/dim_high interval; calibrated only at 0.95 (default: %(default)s)",
    )
    add(
        "--seed",
        type=_int_at_least(0),
        default=default.seed,
        metavar="S",
        help="seed of the bank order and the bootstrap (default: %(default)s)",
    )
    add("--no-calibrate", action="store_true", help="report the raw gap dimension, without finite-sample calibration")
    add(
        "--backend",
        choices=BACKENDS,
        default=default.backend,
        help="nearest-neighbour backend; auto: FAISS on a GPU if present, else the torch GEMM path (default: auto)",
    )
    add(
        "--index",
        choices=INDEX_OPTIONS,
        default=default.index,
        help="exact search or an approximate FAISS index (ivf, hnsw), which adds the recall and gap_rel_error"
        " measured on an exact sample of the queries; auto: ivf from 100,000,000 bank points (default: %(default)s)",
    )
    add(
        "--search-precision",
        choices=SEARCH_PRECISIONS,
        default=default.search_precision,
        help="arithmetic of the exact search's score tiles; bf16-screen: bf16 tiles with a rigorous error bound and"
        " float64 re-scoring of every candidate (exact answers); auto: where a probe finds bf16 faster"
        " (default: %(default)s)",
    )


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
        warnings.showwarning = show_warning
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
