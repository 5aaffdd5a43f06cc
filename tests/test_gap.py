"""The blocked gap curve: brute-force agreement, closed-form constant, invariances, precision, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import brute_force_gap_curve
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_repgap.dimension import gap_dimension
from lightning_repgap.gap import gap_curve, geometric_sizes
from lightning_repgap.manifolds import embed, predicted_gap, sample_cube, sample_torus


@pytest.mark.parametrize("backend", ["faiss", "torch"])
@pytest.mark.parametrize("ratio", [2.0, np.sqrt(2.0)])
def test_block_method_equals_brute_force(rng, backend, ratio):
    ref = rng.standard_normal((1500, 10))
    qs = rng.standard_normal((200, 10))
    curve = gap_curve(ref, qs, ratio=ratio, seed=None, backend=backend)
    expected = brute_force_gap_curve(ref, qs, curve.sizes)
    np.testing.assert_allclose(curve.gaps, expected, rtol=1e-9)
    assert curve.sizes[-1] == 1500


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_block_method_spanning_many_tiles_and_groups(rng, backend):
    # Bank larger than one 2048-wide torch tile, grid sizes that cut through 256-wide column groups.
    ref = rng.standard_normal((5000, 6))
    qs = rng.standard_normal((300, 6))
    curve = gap_curve(ref, qs, sizes=[7, 300, 2049, 2050, 4100, 5000], seed=None, backend=backend)
    np.testing.assert_allclose(curve.gaps, brute_force_gap_curve(ref, qs, curve.sizes), rtol=1e-9)
    d = ((qs[:, None] - ref[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(curve.nearest_index, d.argmin(axis=1))


def test_seed_shuffles_bank_before_taking_prefixes(rng):
    ref = rng.standard_normal((600, 5))
    qs = rng.standard_normal((80, 5))
    curve = gap_curve(ref, qs, seed=7)
    order = np.random.default_rng(7).permutation(600)
    np.testing.assert_allclose(curve.gaps, brute_force_gap_curve(ref[order], qs, curve.sizes), rtol=1e-9)
    # nearest_index refers to rows of the reference as passed, not as shuffled.
    d = ((qs[:, None] - ref[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(curve.nearest_index, d.argmin(axis=1))


def test_per_query_minima_are_consistent(rng):
    curve = gap_curve(rng.random((1000, 3)), rng.random((64, 3)))
    assert curve.per_query.shape == (curve.sizes.size, 64)
    np.testing.assert_allclose(curve.per_query.mean(axis=1), curve.gaps)
    assert (np.diff(curve.per_query, axis=0) <= 0).all(), "running minima never increase"


def test_train_curve_and_ratio(rng):
    ref = rng.random((2000, 2))
    curve = gap_curve(ref, rng.random((300, 2)), train_queries=rng.random((300, 2)))
    assert curve.train_gaps is not None
    assert 0.7 < curve.gap_ratio < 1.4  # same distribution on both sides
    far = gap_curve(ref, rng.random((300, 2)) + 3.0, train_queries=rng.random((300, 2)))
    assert far.gap_ratio > 100


def test_dup_frac_counts_leaked_queries(rng):
    ref = rng.standard_normal((500, 4))
    qs = np.concatenate([ref[:30], rng.standard_normal((70, 4))])
    curve = gap_curve(ref, qs)
    assert curve.dup_frac == pytest.approx(0.3)
    assert np.isfinite(curve.gap_norm)


def test_collapsed_bank_gives_inf_norm_not_nan():
    curve = gap_curve(np.ones((50, 3)), np.zeros((5, 3)))
    assert curve.gap_norm == np.inf
    same = gap_curve(np.ones((50, 3)), np.ones((5, 3)))
    assert same.gap_norm == 0.0
    assert same.dup_frac == 1.0


def test_far_from_origin_gives_same_gap(rng):
    ref = rng.standard_normal((3000, 16)) * 0.01
    qs = rng.standard_normal((300, 16)) * 0.01
    centred = gap_curve(ref, qs)
    shifted = gap_curve(ref + 1e4, qs + 1e4)
    np.testing.assert_allclose(shifted.gaps, centred.gaps, rtol=1e-6)


@pytest.mark.parametrize(
    ("sampler", "d", "n"),
    [(sample_torus, 2, 20000), (sample_torus, 4, 20000), (sample_cube, 2, 20000), (sample_cube, 4, 20000)],
)
def test_closed_form_constant(sampler, d, n):
    """G(n) of uniform points of volume 1 matches Gamma(1 + 2/d) (n V_d)^(-2/d) within 10 %."""
    rng = np.random.default_rng(d)
    # One rotation for both sets: ``embed`` draws a fresh one per call.
    both = embed(np.concatenate([sampler(n, d, rng), sampler(4000, d, rng)]), 64, rng)
    ref, qs = both[:n], both[n:]
    curve = gap_curve(ref, qs, sizes=[n // 2, n])
    predicted = predicted_gap(curve.sizes, d, 1.0)
    np.testing.assert_allclose(curve.gaps, predicted, rtol=0.10)


def test_geometric_sizes_grid():
    assert geometric_sizes(16, min_size=16).tolist() == [16]
    assert geometric_sizes(10, min_size=16).tolist() == [10]
    fine = geometric_sizes(1000, min_size=16, ratio=np.sqrt(2))
    assert (np.diff(fine) > 0).all()
    assert fine[-1] == 1000
    with pytest.raises(ValueError, match="ratio"):
        geometric_sizes(100, ratio=1.0)


_points = st.integers(min_value=0, max_value=2**32 - 1).map(lambda s: np.random.default_rng(s))


@settings(max_examples=25, deadline=None)
@given(
    rng=_points,
    shift=st.floats(-100, 100),
    scale=st.floats(0.01, 100),
)
def test_invariances(rng, shift, scale):
    """Query order, translation and rotation leave G unchanged; scaling by c scales G by c^2."""
    ref = rng.standard_normal((400, 6))
    qs = rng.standard_normal((60, 6))
    base = gap_curve(ref, qs)
    perm = rng.permutation(60)
    np.testing.assert_allclose(gap_curve(ref, qs[perm]).gaps, base.gaps, rtol=1e-9)
    rot = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    moved = gap_curve(ref @ rot.T + shift, qs @ rot.T + shift)
    np.testing.assert_allclose(moved.gaps, base.gaps, rtol=1e-8)
    scaled = gap_curve(ref * scale, qs * scale)
    np.testing.assert_allclose(scaled.gaps, base.gaps * scale**2, rtol=1e-8)
    assert scaled.gap_norm == pytest.approx(base.gap_norm, rel=1e-8)
    fits = [gap_dimension(c.sizes, c.per_query, fit_min_size=16, n_bootstrap=0) for c in (base, scaled)]
    assert fits[1].dim == pytest.approx(fits[0].dim, rel=1e-8)


def test_accepts_torch_half_precision(rng):
    ref = torch.from_numpy(rng.standard_normal((300, 8))).to(torch.bfloat16)
    qs = torch.from_numpy(rng.standard_normal((30, 8))).to(torch.float16)
    curve = gap_curve(ref, qs)
    assert np.isfinite(curve.gaps).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sizes": [10, 5, 20]}, "strictly increasing"),
        ({"sizes": [10, 2000]}, r"\[1, 100\]"),
        ({"ratio": 0.5}, "ratio"),
        ({"n_neighbors": 101}, "n_neighbors"),
    ],
)
def test_bad_arguments(rng, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gap_curve(rng.random((100, 2)), rng.random((10, 2)), **kwargs)


def test_single_point_bank_is_rejected(rng):
    with pytest.raises(ValueError, match="`reference` needs at least 2 points"):
        gap_curve(rng.random((1, 2)), rng.random((10, 2)))


def test_mismatched_train_queries(rng):
    with pytest.raises(ValueError, match="`reference` and `train_queries` must have the same number of features"):
        gap_curve(rng.random((100, 2)), rng.random((10, 2)), train_queries=rng.random((10, 3)))


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_neighbours_too_close_for_float32_are_ranked_in_float64(backend):
    # A 1-d manifold with a large bank: nearest squared distances ~1e-8 of the spread, below float32's resolution
    # of the q.r expansion. Without the float64 re-ranking the gap at n=20000 came out ~2x too large.
    rng = np.random.default_rng(0)
    x = embed(sample_torus(20300, 1, rng), 32, rng) + 5.0
    ref, qs = x[:20000], x[20000:]
    curve = gap_curve(ref, qs, seed=None, sizes=[5000, 20000], backend=backend)
    mins = np.stack([((q - ref) ** 2).sum(axis=1) for q in qs])  # (m, n), one query at a time
    expected = [mins[:, :n].min(axis=1).mean() for n in curve.sizes]
    np.testing.assert_allclose(curve.gaps, expected, rtol=1e-9)


def test_a_float16_bank_is_measured_as_its_float32_widening_without_a_widened_copy():
    # Snapshots store float16 by default: the bank must not be held as float16 *and* float32 (memory bound), and
    # the numbers must be exactly those of the same values in float32 (float16 -> float32 is exact).
    from lightning_repgap._checks import _check_representations
    from lightning_repgap.approximate import approximate_gap
    from lightning_repgap.functional import representation_gap

    rng = np.random.default_rng(0)
    ref16 = (embed(sample_torus(6000, 3, rng), 32, rng) + 5.0).astype(np.float16)
    qs16 = (embed(sample_torus(400, 3, rng), 32, rng) + 5.0).astype(np.float16)
    assert _check_representations(ref16, "reference") is ref16
    assert _check_representations(torch.from_numpy(ref16), "reference").dtype == np.float16
    ref32, qs32 = ref16.astype(np.float32), qs16.astype(np.float32)
    for half, full in (
        (gap_curve(ref16, qs16, n_neighbors=5), gap_curve(ref32, qs32, n_neighbors=5)),
        (gap_curve(torch.from_numpy(ref16), torch.from_numpy(qs16)), gap_curve(ref32, qs32)),
    ):
        np.testing.assert_array_equal(half.per_query, full.per_query)
        np.testing.assert_array_equal(half.nearest_index, full.nearest_index)
        if full.knn_dist_sq is not None:
            np.testing.assert_array_equal(half.knn_dist_sq, full.knn_dist_sq)
        assert half.scale == full.scale
    half_values = {k: float(v) for k, v in representation_gap(ref16, qs16, n_bootstrap=20).items()}
    full_values = {k: float(v) for k, v in representation_gap(ref32, qs32, n_bootstrap=20).items()}
    np.testing.assert_equal(half_values, full_values)
    ivf16 = approximate_gap(ref16, qs16, exact_max=1024, recall_sample=100)
    ivf32 = approximate_gap(ref32, qs32, exact_max=1024, recall_sample=100)
    np.testing.assert_array_equal(ivf16.per_query, ivf32.per_query)


def test_neighbour_table_larger_than_the_searched_bank_is_an_error():
    # With explicit sizes only the first sizes[-1] bank points are searched: 20 neighbours of 10 points would be
    # padding, not neighbours.
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"`n_neighbors` must be in \[0, 10\] \(the largest bank size searched\)"):
        gap_curve(rng.random((100, 3)), rng.random((5, 3)), sizes=[5, 10], n_neighbors=20)
    curve = gap_curve(rng.random((100, 3)), rng.random((5, 3)), sizes=[5, 10], n_neighbors=10)
    assert curve.knn_dist_sq.shape == (5, 10)
    assert np.isfinite(curve.knn_dist_sq).all()
