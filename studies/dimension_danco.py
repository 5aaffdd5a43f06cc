"""DANCo on a split of the trusted-``dim`` suite, precomputed so that the split's one measurement is quick.

    python -m studies.dimension_danco --splits eleventh --out studies/danco_eleventh.json

scikit-dimension's DANCo (a dev-only comparison, never a dependency: ``pip install scikit-dimension==0.5.0``) on the
very samples :func:`studies.dimension_study.measure` draws (:func:`studies.dimension_study.sample`), at n = 2,500 by
default (at 20,000 one fit took over 15 minutes). Nothing else is computed: no trusted ``dim``, so an untouched split
stays untouched. DANCo does not depend on the rule, so its values can be computed while the rule is still being
worked on, and read by ``python -m studies.dimension_heldout --danco-json ...`` at the measurement. The JSON is
written after every cloud, and a rerun with the same ``--out`` skips the clouds it already holds. With ``--local``
it also stores TwoNN and MLE (k = 20 over all points, :func:`studies.dimension_study.local_baselines`, at
``--local-sizes``), so that ``dimension_heldout --cache`` can rebuild the measurement's rows from cached searches.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import time
from pathlib import Path
from typing import Any

from studies.dimension_study import _danco, local_baselines, sample
from studies.dimension_suite import suite


def main(argv: list[str] | None = None) -> int:
    """Fit DANCo on every cloud of the splits at the sizes and write ``{str(n): {name: value}}`` as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--splits", required=True, help="comma-separated splits of studies.dimension_suite")
    parser.add_argument("--sizes", default="2500", help="comma-separated cloud sizes for DANCo")
    parser.add_argument("--local", action="store_true", help="also TwoNN and MLE (rule-independent) on the samples")
    parser.add_argument("--local-sizes", default="2500,20000", help="comma-separated cloud sizes for --local")
    args = parser.parse_args(argv)
    try:
        version = importlib.metadata.version("scikit-dimension")
    except importlib.metadata.PackageNotFoundError:
        parser.error("DANCo needs scikit-dimension (dev-only): pip install scikit-dimension==0.5.0")
    out: dict[str, Any] = {"splits": args.splits, "scikit_dimension": version, "values": {}, "seconds": {}}
    if args.out.exists():
        out = json.loads(args.out.read_text())
    for n in (int(v) for v in args.sizes.split(",")):
        values, seconds = out["values"].setdefault(str(n), {}), out["seconds"].setdefault(str(n), {})
        for cloud in [c for split in args.splits.split(",") for c in suite(split)]:
            if cloud.name in values:
                continue
            t0 = time.perf_counter()
            values[cloud.name] = _danco(sample(cloud, n))
            seconds[cloud.name] = round(time.perf_counter() - t0, 1)
            print(f"[danco] {cloud.name} n={n}: {seconds[cloud.name]} s", file=sys.stderr, flush=True)
            args.out.write_text(json.dumps(out, indent=1) + "\n")
    for n in (int(v) for v in args.local_sizes.split(",")) if args.local else ():
        twonn, mle = (
            out.setdefault("twonn", {}).setdefault(str(n), {}),
            out.setdefault("mle", {}).setdefault(str(n), {}),
        )
        for cloud in [c for split in args.splits.split(",") for c in suite(split)]:
            if cloud.name not in twonn:
                twonn[cloud.name], mle[cloud.name] = local_baselines(sample(cloud, n))
                print(f"[local] {cloud.name} n={n}", file=sys.stderr, flush=True)
                args.out.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
