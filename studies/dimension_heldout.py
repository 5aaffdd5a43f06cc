"""The held-out evaluation of the trusted ``dim`` (issue #14), written to be run ONCE, after the rule was frozen.

    python -m studies.dimension_heldout --out docs/dimension_study.json

Measures the ``held_out`` half of :mod:`studies.dimension_suite` (never looked at during tuning) and, for
comparison in the same run, the ``tune`` half, at n = 2,500 and 20,000, with :func:`studies.dimension_study.run`.
Writes the JSON of both halves and prints the summary tables; ``docs/validation.md`` quotes them. The later
untouched splits are measured the same way, once each: ``--splits third`` (:mod:`studies.dimension_suite3`),
``--splits fourth`` (:mod:`studies.dimension_suite4`), ``--splits fifth`` (:mod:`studies.dimension_suite5`),
``--splits sixth`` (:mod:`studies.dimension_suite6`), ``--splits seventh`` (:mod:`studies.dimension_suite7`),
``--splits eighth`` (:mod:`studies.dimension_suite8`), ``--splits ninth`` (:mod:`studies.dimension_suite9`),
``--splits tenth`` (:mod:`studies.dimension_suite10`), ``--splits eleventh`` (:mod:`studies.dimension_suite11`),
``--splits twelfth`` (:mod:`studies.dimension_suite12`), ``--splits thirteenth`` (:mod:`studies.dimension_suite13`),
``--splits fourteenth`` (:mod:`studies.dimension_suite14`), ``--splits fifteenth``
(:mod:`studies.dimension_suite15`) and ``--splits sixteenth`` (:mod:`studies.dimension_suite16`).
DANCo, which does not depend on the rule, can be fitted beforehand on the same samples
(``python -m studies.dimension_danco --splits eleventh --out studies/danco_eleventh.json``) and read here with
``--danco-json studies/danco_eleventh.json``. With ``--local`` that file also holds TwoNN and MLE on the same
samples, and ``--cache DIR`` reads the trusted ``dim`` from the split's cached searches
(:func:`studies.dimension_retune.cached_curve`): the same rows in about a minute instead of a quarter of an hour.
The twelfth split's rule-independent values are in ``studies/danco_twelfth.json`` (DANCo at 2,500, TwoNN and MLE at
2,500 and 20,000), so it is measured once with ``--splits twelfth --danco-json studies/danco_twelfth.json`` (add
``--cache`` with a folder of its cached searches for the fast path). The thirteenth split's are in
``studies/danco_thirteenth.json`` (the same three baselines, all 43 clouds); it is measured once, after the rule is
frozen, with ``--splits thirteenth --danco-json studies/danco_thirteenth.json --cache DIR`` (``DIR`` holding its
searches, ``c_<seed>_<n>.npz`` as :func:`studies.dimension_retune.cached_curve` writes them). The fourteenth split's
are in ``studies/danco_fourteenth.json``; it is measured once, after the rule is frozen, with ``--splits fourteenth
--danco-json studies/danco_fourteenth.json --cache DIR``. The fifteenth split's are in ``studies/danco_fifteenth.json``;
it is measured once, after the rule is frozen, with ``--splits fifteenth --danco-json studies/danco_fifteenth.json
--cache DIR``. The sixteenth split's are in ``studies/danco_sixteenth.json``; it is measured once, after the rule is
frozen, with ``--splits sixteenth --danco-json studies/danco_sixteenth.json --cache DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from studies import dimension_study


def main(argv: list[str] | None = None) -> int:
    """Run both halves and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--splits",
        default="held_out,tune",
        help="comma-separated: tune, held_out, fresh, third, fourth, fifth, sixth, seventh, eighth, ninth, tenth, "
        "eleventh, twelfth, thirteenth, fourteenth, fifteenth, sixteenth",
    )
    parser.add_argument("--sizes", default="2500,20000", help="comma-separated cloud sizes")
    parser.add_argument("--no-danco", action="store_true", help="skip the (slow) DANCo comparison")
    parser.add_argument(
        "--danco-json",
        type=Path,
        help="DANCo precomputed on the same samples by studies.dimension_danco (its values replace the fits)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="read the trusted dim from the cached searches in this folder (studies.dimension_retune.cached_curve) "
        "and TwoNN / MLE from --danco-json (written with studies.dimension_danco --local): seconds, not minutes",
    )
    parser.add_argument("--reverse", action="store_true", help="measure the clouds in reverse order (a 2nd worker)")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    baselines = None if args.danco_json is None else json.loads(args.danco_json.read_text())
    if args.cache is not None and (baselines is None or "twonn" not in baselines):
        parser.error("--cache needs --danco-json with TwoNN and MLE (python -m studies.dimension_danco --local)")
    results = []
    for split in args.splits.split(","):
        t0 = time.perf_counter()
        res = dimension_study.run(
            split=split,
            sizes=tuple(int(v) for v in args.sizes.split(",")),
            danco=not args.no_danco,
            reverse=args.reverse,
            baselines=baselines,
            cache=args.cache,
            log=lambda m: print(m, file=sys.stderr, flush=True),
        )
        res["seconds"] = time.perf_counter() - t0
        results.append(res)
        args.out.write_text(json.dumps(results, indent=1, default=float))
    print("\n".join(dimension_study.markdown(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
