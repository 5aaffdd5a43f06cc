"""Tuning harness for the trusted ``dim`` (issue #14): candidate estimates on the *tune* half of the suite only.

    python -m studies.dimension_tune --out /tmp/dim_tune.json

For every ``tune`` cloud of :mod:`studies.dimension_suite` at each size, one bank/query split (as
:func:`lightning_repgap.dimension.estimate_dimension` does it), one gap curve with a neighbour table for every query,
and every candidate the selection rule may use. The held-out half is never touched here (``suite("tune")``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np
import torch

from lightning_repgap.dimension import gap_dimension, gride_dimension, mle_dimension, twonn_dimension
from lightning_repgap.gap import gap_curve
from lightning_repgap.search import nearest
from studies.dimension_suite import SIZES, suite


def _candidates(dist: np.ndarray) -> dict[str, float]:
    """GRIDE at five scales of one neighbour table (plain distances, ascending); ``inf`` where undefined."""
    out: dict[str, float] = {}
    for n1, n2 in ((1, 2), (2, 4), (4, 8), (5, 10), (10, 20)):
        try:
            out[f"gride_{n1}_{n2}"] = gride_dimension(dist, n1=n1, n2=n2)
        except ValueError:  # noqa: PERF203 (five calls)
            out[f"gride_{n1}_{n2}"] = float("inf")
    return out


def candidates_for(x: np.ndarray, seed: int = 0, query_fraction: float = 0.2) -> dict[str, Any]:
    """Every candidate estimate from one gap curve of ``x`` split into bank and queries."""
    order = np.random.default_rng(seed).permutation(x.shape[0])
    m = max(1, round(query_fraction * x.shape[0]))
    bank, queries = x[order[m:]], x[order[:m]]
    curve = gap_curve(bank, queries, seed=seed, n_neighbors=20, neighbor_queries=m)
    assert curve.knn_dist_sq is not None
    dist = np.sqrt(curve.knn_dist_sq)
    out: dict[str, Any] = {"n": x.shape[0], "m": m, "concentration": curve.concentration}
    fit = gap_dimension(curve.sizes, curve.per_query, n_bootstrap=200, concentration=curve.concentration, seed=seed)
    out.update(gap=fit.dim, gap_low=fit.dim_low, gap_high=fit.dim_high, gap_r2=fit.r2, gap_raw=fit.dim_raw)
    for top in (3, 4, 5):
        sizes = curve.sizes[-top:]
        f = gap_dimension(sizes, curve.per_query[-top:], n_bootstrap=200, concentration=curve.concentration, seed=seed)
        out[f"gap_top{top}"] = f.dim
        out[f"gap_top{top}_low"] = f.dim_low
        out[f"gap_top{top}_high"] = f.dim_high
    out["twonn_q"] = twonn_dimension(dist)
    for k in (5, 10, 20):
        out[f"mle{k}_q"] = mle_dimension(dist, n_neighbors=k)
    out.update({f"c_{k}": v for k, v in _candidates(dist).items()})
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure the tune half and write the candidates as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    rows = []
    for cloud in suite("tune"):
        for n in (int(s) for s in args.sizes.split(",")):
            t0 = time.perf_counter()
            x = cloud.sample(n, np.random.default_rng(cloud.seed * 1000 + n))
            row = {"name": cloud.name, "family": cloud.family, "dim": cloud.dim, "noise": cloud.noise}
            row.update(candidates_for(x))
            dist_sq, _ = nearest(x, x, k=20, exclude_self=True)
            dist = np.sqrt(dist_sq)
            row["twonn_all"] = twonn_dimension(dist)
            row["mle_all"] = mle_dimension(dist, n_neighbors=20)
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            print(
                f"{cloud.name:40s} n={n:6d} d={cloud.dim:3d} gap={row['gap']:.2f} top4={row['gap_top4']:.2f} "
                f"twonn={row['twonn_q']:.2f} mle20={row['mle20_q']:.2f} twonn_all={row['twonn_all']:.2f}",
                file=sys.stderr,
                flush=True,
            )
    with open(args.out, "w") as fh:
        json.dump(rows, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
