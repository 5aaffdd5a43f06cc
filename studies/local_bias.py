r"""Two checks behind validation §14 (issue #14): the local estimators' finite-sample bias, and a noise-free copy.

How to run (from the repository root, with the package's venv; about a minute each)::

    OMP_NUM_THREADS=1 PYTHONPATH=. python -m studies.local_bias --part families
    OMP_NUM_THREADS=1 PYTHONPATH=. python -m studies.local_bias --part noise-free \
        --cloud "log-cosh net d=13 -> R^104 + 5 %"

``families``: the local estimate of the trusted ``dim`` (the mean of TwoNN's maximum likelihood and the MLE over 5
neighbours, :func:`lightning_repgap._trusted_parts._local_statistics`) on known-answer families generated here
(the cube, the ball, the sphere, the flat torus of :mod:`lightning_repgap.manifolds`, and a Gaussian; never suite
clouds), split as ``method="auto"`` splits a cloud (20 % queries, their 20 nearest bank points), printed as
``d_local / d`` per family, dimension and size. A finite-sample correction that depends on ``(n, neighbours, d)`` only
is one number per row: it can only help if the families agree on it.

``noise-free``: the trusted ``dim`` of one suite cloud (an opened split's) drawn exactly as the suite draws it, with
its stated noise and with the noise set to 0 and 1 %: is the noise what moves the reading?
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from collections.abc import Callable

import numpy as np

from lightning_repgap._trusted_parts import _local_from_means, _local_statistics
from lightning_repgap._width import numerical_width
from lightning_repgap.dimension import trusted_dimension
from lightning_repgap.gap import gap_curve
from lightning_repgap.manifolds import sample_ball, sample_cube, sample_sphere, sample_torus
from lightning_repgap.search import nearest

Sampler = Callable[[int, int, np.random.Generator], np.ndarray]
FAMILIES: dict[str, Sampler] = {
    "cube": sample_cube,
    "ball": sample_ball,
    "sphere": sample_sphere,
    "flat torus": lambda n, d, rng: sample_torus(n, d, rng),
    "Gaussian": lambda n, d, rng: rng.standard_normal((n, d)),
}
DIMS = (2, 4, 6, 8, 10, 12, 16)
SIZES = (2500, 20000)


def local_reading(x: np.ndarray) -> float:
    """The trusted ``dim``'s local estimate of ``x`` split as ``method="auto"`` splits it (20 % queries)."""
    m = round(0.2 * x.shape[0])
    order = np.random.default_rng(0).permutation(x.shape[0])
    dist_sq, _ = nearest(x[order[:m]], x[order[m:]], k=20)
    stats = _local_statistics(np.sqrt(np.asarray(dist_sq, dtype=np.float64)))
    assert stats is not None
    return float(_local_from_means(stats[0].mean(), stats[1].mean()))


def families(reps: int, seed: int) -> None:
    """Print ``d_local / d`` (mean over ``reps`` draws) per size, dimension and family."""
    rng = np.random.default_rng(seed)
    print("n       d  " + "  ".join(f"{f:>10s}" for f in FAMILIES) + "   spread (max / min)")
    for n in SIZES:
        for d in DIMS:
            ratios = [np.mean([local_reading(f(n, d, rng)) for _ in range(reps)]) / d for f in FAMILIES.values()]
            row = "  ".join(f"{r:10.3f}" for r in ratios)
            print(f"{n:6d} {d:3d}  {row}   {max(ratios) / min(ratios):.3f}", flush=True)


def noise_free(name: str, noises: tuple[float, ...]) -> None:
    """The trusted ``dim`` of the suite cloud ``name`` drawn as the suite draws it, at each noise level."""
    from studies.dimension_suite import SIZES as SUITE_SIZES
    from studies.dimension_suite import suite
    from studies.interval_calibration import OPENED

    # Only opened splits: a split kept for a one-time measurement must never be read by the trusted rule.
    cloud = next((c for s in OPENED for c in suite(s) if c.name == name), None)
    if cloud is None:
        raise SystemExit(f"no cloud named {name!r} in the opened splits ({', '.join(OPENED)})")
    for noise in noises:
        c = dataclasses.replace(cloud, noise=noise)
        for n in SUITE_SIZES:
            x = c.sample(n, np.random.default_rng(cloud.seed * 1000 + n))
            order = np.random.default_rng(0).permutation(n)
            m = round(0.2 * n)
            cur = gap_curve(x[order[m:]], x[order[:m]], seed=0, n_neighbors=20, neighbor_queries=m)
            assert cur.knn_dist_sq is not None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                e = trusted_dimension(
                    cur.sizes,
                    cur.per_query,
                    np.sqrt(cur.knn_dist_sq),
                    concentration=cur.concentration,
                    ambient=numerical_width(x[order[m:]]),  # the bank's width (§21)
                )
            print(
                f"noise {noise:.2f} n={n:5d}: dim {e.dim:.2f} ({e.method}), gap law {e.dim_gap:.2f} (uncalibrated "
                f"{e.fit.dim_raw:.2f}), local {e.dim_local:.2f}, concentration {cur.concentration:.3g}, "
                f"floor {e.noise_floor:.2f}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> None:
    """Run one part (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("families", "noise-free"), required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cloud", default="log-cosh net d=13 -> R^104 + 5 %")
    ap.add_argument("--noises", default="0,0.01,0.05")
    args = ap.parse_args(argv)
    if args.part == "families":
        families(args.reps, args.seed)
    else:
        noise_free(args.cloud, tuple(float(v) for v in args.noises.split(",")))


if __name__ == "__main__":
    main()
