"""Why the quickstart's ``dim`` reads above 3: its representation's dimension against the sample size.

The quickstart (``examples/quickstart.py``) trains an MLP on points of a 3-torus curved into R^32 and logs, every
epoch, the dimension of its 128-wide ``backbone`` representation measured on a 4,096-point bank and 1,024 queries.
Its final epoch reads about 3.4, not 3. This study asks whether that excess belongs to the estimator or to the
representation at that sample size. It trains the quickstart unchanged (its own ``main``, in a child process, with
its default epochs), loads the last checkpoint, maps fresh torus points through the trained backbone and reads
every estimator at growing sample sizes, next to the same estimators on the inputs themselves.

A reading that falls towards 3 as the sample grows, on the representation only, is finite-sample geometry of the
learned map (folds and stretches that a 4,096-point sample still resolves as extra directions), which no estimator
sees past at that size without guessing.

    python -m studies.quickstart_dimension [--quick] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_repgap.dimension import estimate_dimension
from lightning_repgap.snapshot import atomic_write

ROOT = Path(__file__).resolve().parents[1]
SIZES = (5_120, 20_480, 81_920)  # a fifth of each is queries: 4,096 bank points at the first, as in the quickstart
QUICK_SIZES = (1_280, 2_560)
FRESH_SEED = 11  # the quickstart's splits use seeds 1 (train) and 2 (validation)


def _quickstart_module() -> Any:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import quickstart
    finally:
        sys.path.pop(0)
    return quickstart


def train_quickstart(out: str, epochs: int | None) -> str:
    """Run the quickstart unchanged in a child process; return its last-epoch checkpoint."""
    cmd = [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--out", out]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 (our own script)
    last = glob.glob(os.path.join(out, "quickstart", "version_0", "checkpoints", "epoch=*.ckpt"))
    if len(last) != 1:
        raise RuntimeError(f"expected one last-epoch checkpoint under {out}, found {last}")
    return last[0]


def readings(points: np.ndarray) -> dict[str, Any]:
    """Every estimator on one cloud: the trusted ``dim`` (with its interval and deciding estimator), TwoNN, MLE."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the disagreement warning is expected here; its numbers are reported
        est = estimate_dimension(points, return_estimate=True)
        twonn = estimate_dimension(points, "twonn")
        mle = estimate_dimension(points, "mle")
    return {
        "n": len(points),
        "dim": est.dim,
        "dim_low": est.dim_low,
        "dim_high": est.dim_high,
        "method": est.method,
        "gap": est.dim_gap,
        "local": est.dim_local,
        "twonn": twonn,
        "mle": mle,
    }


def run(quick: bool) -> dict[str, Any]:
    """Train the quickstart, then read the trained representation and the inputs at each sample size."""
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    quickstart = _quickstart_module()
    sizes = QUICK_SIZES if quick else SIZES
    with tempfile.TemporaryDirectory(prefix="repgap-qs-study-") as out:
        ckpt = train_quickstart(out, epochs=1 if quick else None)
        model = quickstart.Classifier.load_from_checkpoint(ckpt, map_location="cpu").eval()
    fresh = quickstart.make_split(max(sizes), seed=FRESH_SEED).tensors[0]
    with torch.no_grad():
        rep = model.backbone(fresh).numpy()
    inputs = fresh.numpy()
    views = (("representation", rep), ("input", inputs))
    rows = [{"view": view, **readings(cloud[:n])} for view, cloud in views for n in sizes]
    return {"latent_dim": quickstart.LATENT_DIM, "quick": quick, "rows": rows}


def main() -> None:
    """Command line: print the readings, optionally write them to JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one epoch and small samples (a smoke run)")
    parser.add_argument("--out", default=None, help="also write the readings to this JSON file")
    args = parser.parse_args()
    result = run(args.quick)
    print(f"{'view':>14} {'n':>7} {'dim [95% CI]':>20} {'decided':>12} {'gap':>6} {'TwoNN':>6} {'MLE':>6}")
    for r in result["rows"]:
        ci = f"{r['dim']:.2f} [{r['dim_low']:.2f}, {r['dim_high']:.2f}]"
        print(
            f"{r['view']:>14} {r['n']:>7,} {ci:>20} {r['method']:>12} {r['gap']:6.2f} {r['twonn']:6.2f} {r['mle']:6.2f}"
        )
    if args.out:
        atomic_write(args.out, json.dumps(result, indent=1).encode())


if __name__ == "__main__":
    main()
