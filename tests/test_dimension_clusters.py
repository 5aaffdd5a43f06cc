"""Known answers for separated clusters in the trusted ``dim`` (issue #14, twelfth session).

While part of k separated clusters hold no bank point, a query's nearest bank point lies either in its own cluster or
at least the separation away: the per-query gaps split into two groups with an empty band between them, the gap curve
falls like the share of empty clusters and then follows the clusters' own law. The noise-floor model read that as a
curve under a floor (``dim`` 1.00, ``"noise_floor"``). A connected set, noisy or not, shows no empty band
(:data:`~lightning_repgap._trusted_parts.CLUSTER_SPLIT`), and keeps its reading.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import lightning_repgap._clusters as clusters
import lightning_repgap._trusted_parts as parts
from lightning_repgap import estimate_dimension, representation_gap
from lightning_repgap.dimension import DimensionDisagreementWarning, warn_disagreement
from lightning_repgap.manifolds import embed, sample_sphere


def _clusters(n: int, k: int, d: int, ambient: int, sep: float, seed: int) -> np.ndarray:
    """``n`` points of ``k`` unit isotropic ``d``-dimensional Gaussians in random ``d``-planes of R^ambient."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(k, size=n)
    centers = sep * rng.standard_normal((k, ambient))
    bases = [np.linalg.qr(rng.standard_normal((ambient, d)))[0] for _ in range(k)]
    z = rng.standard_normal((n, d))
    return centers[labels] + np.einsum("nij,nj->ni", np.stack(bases)[labels], z)


@pytest.mark.parametrize(
    ("k", "d", "ambient"),
    [
        (32, 6, 128),  # the previous rule read 1.00 [0.84, 1.19] ("noise_floor")
        (16, 12, 64),  # the previous rule read 1.00 [0.54, 1.87] ("noise_floor")
    ],
)
def test_clean_separated_clusters_are_not_read_through_the_noise_floor(k: int, d: int, ambient: int) -> None:
    x = _clusters(2500, k, d, ambient, 3.0, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DimensionDisagreementWarning)
        est = estimate_dimension(x, return_estimate=True)
    assert est.clusters, est
    assert est.method == "local", est
    assert est.method_code == 1, est
    assert abs(est.dim - d) / d < 0.2, est
    assert est.dim_low <= d <= est.dim_high, est
    assert est.disagree, est


def test_many_small_clusters_read_their_own_dimension_with_a_warning_naming_them() -> None:
    # 100 clean 6-d Gaussians in R^64 (about 20 bank points each): the previous rule read 0.55 [0.08, 3.56]
    # ("local_far": GRIDE over neighbours 10-20 reaches into other clusters).
    x = _clusters(2500, 100, 6, 64, 3.0, seed=4)
    with pytest.warns(DimensionDisagreementWarning, match="separated clusters"):
        est = estimate_dimension(x, return_estimate=True)
    assert est.clusters, est
    assert est.method == "local", est
    assert est.dim > 3.0, est  # the clusters' own 6, read low where the 5th neighbour may leave the cluster
    with pytest.warns(DimensionDisagreementWarning, match="separated clusters"):
        warn_disagreement(est)


def test_a_noisy_curve_is_still_read_through_the_floor() -> None:
    # A circle in R^64 + 5 % noise: no empty band in the per-query gaps, so the noise paths decide as before.
    rng = np.random.default_rng(77)
    x = embed(sample_sphere(2500, 1, rng), 64, rng)
    x = x - x.mean(axis=0)
    x += rng.standard_normal(x.shape) * (0.05 * math.sqrt((x**2).sum(axis=1).mean()) / 8.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DimensionDisagreementWarning)  # the noise's reading disagrees with the floor's
        est = estimate_dimension(x, return_estimate=True)
    assert not est.clusters, est
    assert est.method == "noise_floor", est
    assert abs(est.dim - 1) < 0.3, est


def test_the_split_is_scale_invariant_and_absent_on_a_connected_cloud() -> None:
    rng = np.random.default_rng(0)
    sizes = np.array([16, 32, 64])
    connected = rng.exponential(size=(3, 400)) ** 2  # a curve's squared nearest distances: one continuous spread
    assert clusters._cluster_split(sizes, connected) < parts.CLUSTER_SPLIT
    assert clusters._cluster_split(sizes, 1e6 * connected) == pytest.approx(clusters._cluster_split(sizes, connected))
    split = connected.copy()
    split[1, :100] *= 1e10  # a quarter of the queries still a separation away
    assert clusters._cluster_split(sizes, split) >= parts.CLUSTER_SPLIT
    assert clusters._cluster_split(sizes, 7.0 * split) == pytest.approx(clusters._cluster_split(sizes, split))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_few_queries_on_a_connected_set_are_not_read_as_separated_clusters(seed: int) -> None:
    # With 20 queries the spacing of the smallest log gaps is heavy-tailed on any connected set; maximised over every
    # bank size it passed for a band when one query on either side was enough (a square read as clusters in 6 of 6).
    rng = np.random.default_rng(seed)
    bank, queries = rng.random((2048, 2)), rng.random((20, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        representation_gap(bank, queries, n_bootstrap=20)
    assert not any("separated clusters" in str(w.message) for w in caught)
