"""Known answers for the oracle study's pure helpers (studies/dimension_oracle.py, issue #14)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightning_repgap.gap import gap_curve
from lightning_repgap.manifolds import embed, sample_sphere
from studies import dimension_oracle as study


def test_oracle_and_hull_errors_are_lower_bounds():
    rng = np.random.default_rng(0)
    for _ in range(200):
        truth = float(rng.uniform(1.0, 30.0))
        values = list(rng.uniform(0.5, 40.0, size=int(rng.integers(1, 6))))
        errors = [abs(v - truth) / truth for v in values]
        assert study.oracle_error(values, truth) == pytest.approx(min(errors))
        assert study.hull_error(values, truth) <= study.oracle_error(values, truth) + 1e-12
        # a blend of the two candidates that bracket the truth reaches it
        if min(values) <= truth <= max(values):
            assert study.hull_error(values, truth) == 0.0
        else:
            assert study.hull_error(values, truth) == pytest.approx(study.oracle_error(values, truth))
    assert study.oracle_error([math.nan, math.inf], 3.0) == math.inf
    assert study.hull_error([math.nan], 3.0) == math.inf


def test_fixed_pair_blend_matches_its_ends_and_geometric_middle():
    a, b, truth = np.array([2.0, 9.0]), np.array([8.0, 1.0]), np.array([4.0, 3.0])
    err = study.pair_blend_error(a, b, truth, np.array([0.0, 0.5, 1.0]))
    assert err[0] == pytest.approx(np.mean(np.abs(a - truth) / truth))
    assert err[2] == pytest.approx(np.mean(np.abs(b - truth) / truth))
    assert err[1] == pytest.approx(0.0)  # sqrt(2 * 8) = 4 and sqrt(9 * 1) = 3
    # a missing candidate counts as the other one
    assert study.pair_blend_error(np.array([np.nan]), np.array([5.0]), np.array([4.0]), np.array([0.3]))[
        0
    ] == pytest.approx(0.25)


def test_candidates_of_a_clean_sphere_agree_with_the_truth():
    rng = np.random.default_rng(0)
    x = embed(sample_sphere(2500, 3, rng), 16, rng)
    curve = gap_curve(x[500:], x[:500], seed=0, n_neighbors=64, neighbor_queries=500)
    npz = {"sizes": curve.sizes, "per_query": curve.per_query, "knn": curve.knn_dist_sq, "conc": curve.concentration}
    values, method = study.candidates(npz)
    assert set(values) == set(study.EXTENDED_SET)
    assert method == "local"
    # a clean 3-sphere: the gap law, the local estimators at every scale and the rule read about 3
    for name in ("rule", "gap", "local", "far", "gride_5_10", "gride_20_40"):
        assert values[name] == pytest.approx(3.0, rel=0.12), name
    assert study.oracle_error([values[k] for k in study.LIBRARY_SET], 3.0) < 0.03
