r"""The width the trusted ``dim`` reads for each opened suite cloud: its bank's numerical rank (issue #14; §21).

How to run (from the repository root, with the package's venv; about five minutes on 2 cores)::

    OMP_NUM_THREADS=1 PYTHONPATH=. python -m studies.suite_widths --out widths.json

``estimate_dimension`` and the metric pass the bank's numerical rank
(:func:`lightning_repgap._width.numerical_width`) as ``trusted_dimension(..., ambient=...)``; the cached searches
of the opened splits were read with the column count (``cloud.ambient``). This study draws every cloud of the
opened splits at both sizes as :func:`studies.dimension_retune.cached_curve` does (same seed, same 20 % query
split), computes the width of its bank, prints every cloud whose width differs from its column count and writes
``{"split|name|n": width}``; with ``--caches`` it also reads each cached search with both widths and lists the
readings (``dim``, interval, method) that differ. It never reads the sixteenth split.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from lightning_repgap.dimension import trusted_dimension
from studies.dimension_retune import search_width
from studies.dimension_suite import SIZES, SPLITS, SuiteCloud, suite

#: The splits read here: every opened one (never the sixteenth, to be measured once).
OPENED = tuple(s for s in SPLITS if s != "sixteenth")
#: Where each split's cached searches are (``--caches``): the ten first splits share one directory.
CACHE_DIRS = {
    "eleventh": "cache11",
    "twelfth": "cache12",
    "thirteenth": "cache13",
    "fourteenth": "cache14",
    "fifteenth": "cache15",
}


def bank_width(cloud: SuiteCloud, n: int) -> int:
    """The numerical width of the bank ``estimate_dimension(x, method="auto")`` searches for ``cloud`` at ``n``."""
    return search_width(cloud.sample(n, np.random.default_rng(cloud.seed * 1000 + n)))


def _reading(c: dict[str, np.ndarray], ambient: int) -> tuple[float, float, float, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = trusted_dimension(
            c["sizes"], c["per_query"], np.sqrt(c["knn"][:, :20]), concentration=float(c["conc"]), ambient=ambient
        )
    return e.dim, e.dim_low, e.dim_high, e.method


def main(argv: list[str] | None = None) -> int:
    """Print the clouds whose width is not their column count (and, with caches, every reading that changes)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--caches", type=Path, default=None, help="parent of cache/, cache11/ ... cache14/")
    args = parser.parse_args(argv)
    widths: dict[str, int] = {}
    columns: dict[str, int] = {}
    changed = 0
    for split in OPENED:
        for cloud in suite(split):
            for n in SIZES:
                key = f"{split}|{cloud.name}|{n}"
                widths[key], columns[key] = bank_width(cloud, n), cloud.ambient
                if widths[key] != cloud.ambient:
                    print(f"{key}: width {widths[key]} of {cloud.ambient} columns")
                if args.caches is not None:
                    cache = args.caches / CACHE_DIRS.get(split, "cache") / f"c_{cloud.seed}_{n}.npz"
                    c = dict(np.load(cache))
                    before, after = _reading(c, cloud.ambient), _reading(c, widths[key])
                    if before != after:
                        changed += 1
                        print(f"  changed: {key}: {before} -> {after}")
    args.out.write_text(json.dumps(widths, indent=0))
    below = sum(1 for k, w in widths.items() if w < columns[k])
    print(f"{len(widths)} readings, {below} with a width below the column count")
    if args.caches is not None:
        print(f"readings changed by the width: {changed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
