"""Gap curve and dimension of point clouds whose intrinsic dimension is known.

Samples uniform points on a d-sphere, a d-torus and a d-cube, hides them in R^64 with a random rotation, and
prints the gap curve G(n), the fitted gap dimension with its 95 % interval, the TwoNN and MLE cross-checks and
the closed-form prediction of G(n_max). No Trainer involved: this is the functional API on plain arrays.

    python examples/known_dimension.py [--n 8192] [--queries 2048]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from lightning_repgap import gap_curve, representation_gap
from lightning_repgap.manifolds import embed, predicted_gap, sample_cube, sample_sphere, sample_torus, sphere_volume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8192, help="bank size")
    parser.add_argument("--queries", type=int, default=2048, help="held-out queries")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shapes = {
        "sphere": (sample_sphere, sphere_volume),
        "torus": (sample_torus, lambda d: 1.0),
        "cube": (sample_cube, lambda d: 1.0),
    }
    print(f"bank n={args.n}, queries m={args.queries}, ambient dimension D=64\n")
    head = f"{'shape':>7} {'d':>3} | {'dim [95% CI]':>20} {'R^2':>6} {'TwoNN':>6} {'MLE':>6}"
    print(f"{head} | {'G(n)':>9} {'predicted':>9}")
    for d in (2, 4, 8):
        for name, (sampler, volume) in shapes.items():
            pts = embed(sampler(args.n + args.queries, d, rng), 64, rng)
            ref, qs = pts[: args.n], pts[args.n :]
            out = {k: float(v) for k, v in representation_gap(ref, qs).items()}
            ci = f"{out['dim']:.2f} [{out['dim_low']:.2f}, {out['dim_high']:.2f}]"
            pred = float(predicted_gap(args.n, d, volume(d)))
            print(
                f"{name:>7} {d:>3} | {ci:>20} {out['law_r2']:6.3f} {out['dim_twonn']:6.2f} {out['dim_mle']:6.2f} |"
                f" {out['gap']:9.3e} {pred:9.3e}"
            )
    pts = embed(sample_torus(args.n + args.queries, 2, rng), 64, rng)
    curve = gap_curve(pts[: args.n], pts[args.n :])
    print("\nG(n) on the 2-torus (slope -2/d = -1 on log-log axes):")
    for n, g in zip(curve.sizes, curve.gaps, strict=True):
        print(f"  n={n:6d}  G={g:.3e}  n*G={n * g:.4f}  (asymptote {math.gamma(2) / math.pi:.4f})")


if __name__ == "__main__":
    main()
