"""What decides the quickstart's final-epoch ``dim``, and how much of its excess over 3 the probe's sample explains.

``examples/quickstart.py`` logs ``dim`` of its 128-wide ``backbone`` from a 4,096-point training bank and 1,024
validation queries; its final epoch reads 3.41 for a 3-dimensional latent, next to cross-checks TwoNN 3.17 and MLE
3.27. This study runs the quickstart unchanged, in this process, with two read-only hooks: one keeps every
``trusted_dimension`` call of the measurement (the exact search outputs the rule read), one the representations it
measured (bank, validation queries, training queries). For the final epoch it prints

* the rule's own diagnostics: the deciding branch, ``dim_gap``, ``dim_local`` and its two parts, ``weight_gap``,
  the noise diagnosis (floor share, TwoNN / GRIDE far) and the concentration;
* every local estimator at every neighbour scale on the same 1,024 rows, and the cross-checks (which read only the
  first ``CROSS_CHECK_ROWS`` rows) on each block of that many rows;
* the local estimate against the same bank from other query sets: the bank's training points that are not in it,
  8,192 fresh torus points (``FRESH_SEED``) and each 1,024-point block of them, so that the probe's sampling spread
  is seen next to the value an estimator without that spread would read at this bank size.

With ``--cache SPLIT=DIR`` (repeatable; ``default=DIR`` for the ten first splits) it also prints the signed and
absolute relative error of the opened suite's readings that the rule decides with ``"local"`` (clean clouds per size
and dimension band; then all of them, as they are and multiplied by the factor that would bring the quickstart's
final epoch to 3.30): a downward correction of the local estimate needs that estimate to read high on the suite too.

    python -m studies.quickstart_probe [--epochs 6] [--cache default=/work/cache --cache eleventh=/work/cache11 ...]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch

from lightning_repgap import functional, metric
from lightning_repgap._trusted_parts import CROSS_CHECK_ROWS, FAR_RANKS, _local_statistics
from lightning_repgap.dimension import gride_dimension, mle_dimension, trusted_dimension, twonn_dimension
from lightning_repgap.search import nearest
from studies.quickstart_dimension import _quickstart_module

FRESH_SEED = 11  # the quickstart's splits use seeds 1 (train) and 2 (validation)
FRESH_POINTS = 8_192
GRIDE_SCALES = ((1, 2), (2, 4), (5, 10), (10, 20))
MLE_NEIGHBORS = (3, 5, 10, 20)


@contextmanager
def _recording() -> Iterator[tuple[list[dict[str, Any]], list[dict[str, np.ndarray]]]]:
    """Record every ``trusted_dimension`` call of the measurement and the representations it measured (read-only)."""
    calls: list[dict[str, Any]] = []
    inputs: list[dict[str, np.ndarray]] = []
    rule, compute = functional.trusted_dimension, metric._gap_compute

    def record_rule(sizes: Any, per_query: Any, dist: Any, **kw: Any) -> Any:
        calls.append({"sizes": np.array(sizes), "per_query": np.array(per_query), "dist": np.array(dist), "kw": kw})
        return rule(sizes, per_query, dist, **kw)

    def record_inputs(gap_inputs: Any, *args: Any, **kw: Any) -> Any:
        tq = gap_inputs.train_queries
        inputs.append({
            "reference": np.array(gap_inputs.reference, dtype=np.float64),
            "queries": np.array(gap_inputs.queries, dtype=np.float64),
            "train_queries": np.zeros((0, 1)) if tq is None else np.array(tq, dtype=np.float64),
        })
        return compute(gap_inputs, *args, **kw)

    with (
        mock.patch.object(functional, "trusted_dimension", record_rule),
        mock.patch.object(metric, "_gap_compute", record_inputs),
    ):
        yield calls, inputs


def run_quickstart(out: str, epochs: int | None) -> tuple[list[dict[str, Any]], list[dict[str, np.ndarray]], Any]:
    """Run the quickstart's ``main`` unchanged under the hooks; return the calls, the inputs and the trained model."""
    quickstart = _quickstart_module()
    argv = ["quickstart.py", "--out", out] + ([] if epochs is None else ["--epochs", str(epochs)])
    with _recording() as (calls, inputs), mock.patch.object(sys, "argv", argv):
        quickstart.main()
    last = glob.glob(os.path.join(out, "quickstart", "version_0", "checkpoints", "epoch=*.ckpt"))
    if len(last) != 1:
        raise RuntimeError(f"expected one last-epoch checkpoint under {out}, found {last}")
    model = quickstart.Classifier.load_from_checkpoint(last[0], map_location="cpu").eval()
    return calls, inputs, model


def local_parts(dist: np.ndarray) -> dict[str, float]:
    """The local estimate and its two parts (TwoNN's maximum likelihood, MLE over 5 neighbours) on a table."""
    stats = _local_statistics(dist)
    if stats is None:
        return {"local": float("nan"), "twonn_ml": float("nan"), "mle5": float("nan")}
    twonn_ml, mle5 = 1.0 / float(stats[0].mean()), 1.0 / float(stats[1].mean())
    return {"local": 0.5 * (twonn_ml + mle5), "twonn_ml": twonn_ml, "mle5": mle5}


def local_bootstrap_sd(dist: np.ndarray, draws: int = 1000, seed: int = 0) -> float:
    """Bootstrap standard deviation of the local estimate over the table's rows."""
    stats = _local_statistics(dist)
    if stats is None:
        return float("nan")
    a, b = stats
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(draws, a.size))
    return float(np.std(0.5 * (1.0 / a[idx].mean(axis=1) + 1.0 / b[idx].mean(axis=1))))


def scales(dist: np.ndarray) -> dict[str, float]:
    """GRIDE over each neighbour-rank pair of ``GRIDE_SCALES`` and the MLE over each of ``MLE_NEIGHBORS``."""
    rows = dist[dist[:, 0] > 0]
    out = {f"gride {a}-{b}": gride_dimension(rows, n1=a, n2=b) for a, b in GRIDE_SCALES if rows.shape[1] >= b}
    for k in MLE_NEIGHBORS:
        if rows.shape[1] >= k:
            out[f"mle {k}"] = 1.0 / float(np.log(rows[:, k - 1 : k] / rows[:, : k - 1]).mean())
    return out


def diagnose(call: dict[str, Any]) -> dict[str, Any]:
    """Re-run the rule on one recorded call and collect what decided it (the printed diagnostics)."""
    dist = call["dist"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = trusted_dimension(call["sizes"], call["per_query"], dist, **call["kw"])
        rows = dist[dist[:, 0] > 0]
        d_far = gride_dimension(rows, n1=FAR_RANKS[0], n2=FAR_RANKS[1])
        blocks = [dist[i : i + CROSS_CHECK_ROWS] for i in range(0, dist.shape[0], CROSS_CHECK_ROWS)]
        k = min(call["kw"].get("n_neighbors", 20), dist.shape[1])
        twonn_blocks = [twonn_dimension(b) for b in blocks]
        mle_blocks = [mle_dimension(b, n_neighbors=k) for b in blocks]
        twonn_all, mle_all = twonn_dimension(dist), mle_dimension(dist, n_neighbors=k)
    parts = local_parts(dist)
    return {
        "dim": est.dim,
        "dim_low": est.dim_low,
        "dim_high": est.dim_high,
        "method": est.method,
        "dim_gap": est.dim_gap,
        "dim_local": est.dim_local,
        "weight_gap": est.weight_gap,
        "noise_floor": est.noise_floor,
        "concentration": call["kw"].get("concentration"),
        "ambient": call["kw"].get("ambient"),
        "rows": int(dist.shape[0]),
        **parts,
        "gride_far": d_far,
        "twonn_over_far": parts["twonn_ml"] / d_far,
        "local_sd": local_bootstrap_sd(dist),
        "dim_twonn": est.dim_twonn,
        "dim_mle": est.dim_mle,
        "twonn_blocks": twonn_blocks,
        "mle_blocks": mle_blocks,
        "twonn_all_rows": twonn_all,
        "mle_all_rows": mle_all,
        "scales": scales(dist),
    }


def against_bank(bank: np.ndarray, queries: np.ndarray, k: int = 20) -> dict[str, float]:
    """The local estimate (with its bootstrap sd) and GRIDE far of ``queries`` against ``bank``."""
    dist = np.sqrt(nearest(bank, queries, k=k)[0])
    rows = dist[dist[:, 0] > 0]
    return {
        "rows": int(rows.shape[0]),
        **local_parts(dist),
        "sd": local_bootstrap_sd(dist),
        "gride_far": gride_dimension(rows, n1=FAR_RANKS[0], n2=FAR_RANKS[1]),
    }


def population(model: Any, bank: np.ndarray) -> dict[str, Any]:
    """The local estimate against the final bank from the training points outside it and from fresh torus points."""
    quickstart = _quickstart_module()
    with torch.no_grad():
        train = model.backbone(quickstart.make_split(8192, seed=1).tensors[0]).double().numpy()
        fresh = model.backbone(quickstart.make_split(FRESH_POINTS, seed=FRESH_SEED).tensors[0]).double().numpy()
    _, idx = nearest(train, bank, k=1)
    outside = np.ones(train.shape[0], dtype=bool)
    outside[idx[:, 0]] = False
    blocks = [against_bank(bank, fresh[i : i + 1024])["local"] for i in range(0, fresh.shape[0], 1024)]
    return {
        "training points outside the bank": against_bank(bank, train[outside]),
        "fresh points": against_bank(bank, fresh),
        "fresh 1,024-point blocks": blocks,
    }


def suite_local_readings(caches: dict[str, Path]) -> list[dict[str, Any]]:
    """Every opened suite reading that the rule decides with ``"local"``: split, size, ``d``, noise and ``dim``."""
    from studies.dimension_suite import SIZES, SPLITS, suite
    from studies.suite_widths import bank_width

    rows = []
    for split in SPLITS:
        if split == "sixteenth" or (split not in caches and "default" not in caches):  # the sixteenth: measured once
            continue
        cache = caches.get(split, caches.get("default"))
        assert cache is not None
        for cloud in suite(split):
            for n in SIZES:
                c = dict(np.load(cache / f"c_{cloud.seed}_{n}.npz"))
                dist = np.sqrt(c["knn"][:, :20])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est = trusted_dimension(
                        c["sizes"], c["per_query"], dist, concentration=float(c["conc"]), ambient=bank_width(cloud, n)
                    )
                if est.method == "local":
                    rows.append({"split": split, "n": n, "d": cloud.dim, "noise": cloud.noise, "dim": est.dim})
    return rows


def suite_local_bias(rows: list[dict[str, Any]], factor: float) -> list[dict[str, Any]]:
    """Per size, the relative errors of the ``"local"`` readings (rows of :func:`suite_local_readings`).

    The clean clouds' signed and absolute error per dimension band, then the mean absolute error of every such reading
    as it is and multiplied by ``factor``.
    """
    out = []
    for n in sorted({r["n"] for r in rows}):
        at_n = [r for r in rows if r["n"] == n]
        for band, lo, hi in (("1-2", 0, 2), ("2-4", 2, 4), ("4+", 4, np.inf)):
            err = [r["dim"] / r["d"] - 1 for r in at_n if r["noise"] == 0 and lo <= r["d"] < hi]
            if err:
                out.append({
                    "n": n,
                    "d": band,
                    "count": len(err),
                    "signed": float(np.mean(err)),
                    "abs": float(np.mean(np.abs(err))),
                })
        all_err = np.array([r["dim"] / r["d"] for r in at_n])
        out.append({
            "n": n,
            "d": "all 'local'",
            "count": len(at_n),
            "signed": float(np.mean(all_err - 1)),
            "abs": float(np.mean(np.abs(all_err - 1))),
            "abs_scaled": float(np.mean(np.abs(factor * all_err - 1))),
        })
    return out


def _cache_arg(value: str) -> tuple[str, Path]:
    split, _, path = value.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"expected SPLIT=DIR, got {value!r}")
    return split, Path(path)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the final epoch's diagnostics, the population readings and (with caches) the suite's."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=None, help="the quickstart's --epochs (default: its own)")
    parser.add_argument("--cache", type=_cache_arg, action="append", default=[], help="SPLIT=DIR of cached searches")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="repgap-qs-probe-") as out:
        calls, inputs, model = run_quickstart(out, args.epochs)
    print(f"\n{len(calls)} measurements recorded; each epoch's rule reading:")
    for epoch, call in enumerate(calls):
        r = diagnose(call)
        print(
            f"  epoch {epoch}: dim {r['dim']:.3f} [{r['dim_low']:.2f}, {r['dim_high']:.2f}] {r['method']}, gap "
            f"{r['dim_gap']:.3f}, local {r['dim_local']:.3f} (TwoNN ML {r['twonn_ml']:.3f}, MLE5 {r['mle5']:.3f}, "
            f"sd {r['local_sd']:.3f}), weight_gap {r['weight_gap']:.2f}, floor {r['noise_floor']:.3f}, "
            f"TwoNN / GRIDE far {r['twonn_over_far']:.3f}"
        )
    last = diagnose(calls[-1])
    print("\nfinal epoch:")
    for key in ("method", "dim_gap", "dim_local", "weight_gap", "noise_floor", "concentration", "ambient", "rows"):
        print(f"  {key}: {last[key]}")
    print("  per scale on all rows: " + ", ".join(f"{k} {v:.3f}" for k, v in last["scales"].items()))
    print(f"  cross-checks (first {CROSS_CHECK_ROWS} rows): TwoNN {last['dim_twonn']:.3f}, MLE {last['dim_mle']:.3f}")
    print("  TwoNN per block of rows: " + " ".join(f"{v:.3f}" for v in last["twonn_blocks"]))
    print("  MLE per block of rows:   " + " ".join(f"{v:.3f}" for v in last["mle_blocks"]))
    print(f"  on all rows: TwoNN {last['twonn_all_rows']:.3f}, MLE {last['mle_all_rows']:.3f}")
    print("\nthe local estimate against the final bank:")
    pop = population(model, inputs[-1]["reference"])
    for name in ("training points outside the bank", "fresh points"):
        p = pop[name]
        print(
            f"  {name}: {p['rows']} rows, local {p['local']:.3f} +- {p['sd']:.3f} (TwoNN ML {p['twonn_ml']:.3f}, "
            f"MLE5 {p['mle5']:.3f}), GRIDE far {p['gride_far']:.3f}"
        )
    blocks = np.array(pop["fresh 1,024-point blocks"])
    print(
        "  fresh 1,024-point blocks: "
        + " ".join(f"{v:.3f}" for v in blocks)
        + f" (mean {blocks.mean():.3f}, sd {blocks.std(ddof=1):.3f})"
    )
    if args.cache:
        factor = 3.3 / last["dim"]
        print(
            f"\nopened suite, readings decided by 'local': dim / d - 1 (clean clouds per band; then every one, as it is"
            f" and x {factor:.4f}, the factor that brings the final epoch to 3.30)"
        )
        for row in suite_local_bias(suite_local_readings(dict(args.cache)), factor):
            scaled = f", abs x factor {row['abs_scaled']:.4f}" if "abs_scaled" in row else ""
            print(
                f"  n {row['n']:>6} d {row['d']:>11}: {row['count']:>3} readings, signed {row['signed']:+.4f}, "
                f"abs {row['abs']:.4f}{scaled}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
