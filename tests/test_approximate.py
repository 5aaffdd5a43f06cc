"""Approximate (IVF / HNSW) gap curve: measured recall and error, upper-bound property, argument errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_repgap.approximate import (
    AUTO_APPROXIMATE_MIN_BANK,
    ApproximateGap,
    approximate_gap,
    auto_index,
    default_nlist,
)
from lightning_repgap.gap import gap_curve
from lightning_repgap.manifolds import embed, sample_torus

N_BANK = 50_000
N_QUERIES = 1_500
DIM = 64


def _manifold(n: int, seed: int) -> np.ndarray:
    """Uniform points on a flat 6-torus (12 coordinates) rotated into R^64, float32."""
    rng = np.random.default_rng(seed)
    return embed(sample_torus(n, 6, rng), DIM, np.random.default_rng(99)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return _manifold(N_BANK, 0), _manifold(N_QUERIES, 1)


@pytest.fixture(scope="module")
def exact(data):
    ref, qs = data
    return gap_curve(ref, qs, backend="torch")


@pytest.fixture(scope="module")
def ivf(data) -> ApproximateGap:
    ref, qs = data
    return approximate_gap(ref, qs, index="ivf", recall_sample=500)


def _brute_force_prefix_minima(ref: np.ndarray, qs: np.ndarray, sizes: np.ndarray, seed: int) -> np.ndarray:
    """(S, m) float64 exact prefix minima over the bank in ``gap_curve``'s shuffled order, by plain numpy."""
    order = np.random.default_rng(seed).permutation(ref.shape[0])
    bank = ref[order].astype(np.float64)
    q = qs.astype(np.float64)
    out = np.empty((sizes.size, q.shape[0]))
    best = np.full(q.shape[0], np.inf)
    start = 0
    for s, stop in enumerate(sizes):
        block = bank[start:stop]
        for j0 in range(0, block.shape[0], 8192):
            b = block[j0 : j0 + 8192]
            d = (q * q).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * q @ b.T
            best = np.minimum(best, d.min(axis=1))
        out[s] = best
        start = int(stop)
    return np.maximum(out, 0.0)


def test_ivf_recall_and_gap_error_on_manifold(ivf, exact):
    assert isinstance(ivf, ApproximateGap)
    np.testing.assert_array_equal(ivf.sizes, exact.sizes)
    assert ivf.blocks[0].method == "exact"
    assert any(b.method == "ivf-torch" for b in ivf.blocks)
    assert ivf.recall >= 0.95
    assert (ivf.recall_per_size >= 0.95).all()
    # Calibrated to 0.5 % on the sample at the end of every approximate block.
    assert 0.0 <= ivf.gap_rel_error <= 0.005
    assert (ivf.gap_rel_error_per_size <= 0.005 + 1e-12).all()
    # Against the exact curve over *all* queries, not only the measured sample.
    true_rel = ivf.gaps / exact.gaps - 1.0
    assert (true_rel >= -1e-12).all()
    assert (true_rel <= 0.01).all()
    true_recall = np.mean(ivf.per_query[-1] <= exact.per_query[-1] * (1 + 1e-9))
    assert true_recall >= 0.95
    assert abs(true_recall - ivf.recall) < 0.03  # the sample estimates the whole


def test_approximate_upper_bounds_exact_per_query(ivf, exact):
    # Every approximate value is the exact float64 distance to a real bank point of the prefix.
    assert (ivf.per_query >= exact.per_query * (1 - 1e-9)).all()
    assert (np.diff(ivf.gaps) <= 0).all()
    assert (np.diff(ivf.per_query, axis=0) <= 0).all()


def test_reported_recall_matches_brute_force(data, ivf):
    ref, qs = data
    rows = ivf.recall_rows
    assert rows.size == 500
    bf = _brute_force_prefix_minima(ref, qs[rows], ivf.sizes, seed=0)
    approx = ivf.per_query[:, rows]
    tol = 1e-9 * bf + 1e-12
    assert (approx >= bf - tol).all()
    recall_bf = np.mean(approx <= bf + tol, axis=1)
    np.testing.assert_allclose(ivf.recall_per_size, recall_bf, atol=2.0 / rows.size)
    rel_bf = approx.mean(axis=1) / bf.mean(axis=1) - 1.0
    np.testing.assert_allclose(ivf.gap_rel_error_per_size, rel_bf, rtol=1e-6, atol=1e-9)


def test_nearest_index_and_scale_are_consistent(data, ivf, exact):
    ref, qs = data
    d = ((ref[ivf.nearest_index].astype(np.float64) - qs.astype(np.float64)) ** 2).sum(axis=1)
    np.testing.assert_allclose(d, ivf.per_query[-1], rtol=1e-10)
    assert ivf.scale == pytest.approx(exact.scale, rel=1e-5)
    assert ivf.gap_norm == pytest.approx(ivf.gap / ivf.scale)


def test_hnsw_recall_and_gap_error():
    ref, qs = _manifold(12_000, 2), _manifold(600, 3)
    res = approximate_gap(ref, qs, index="hnsw", recall_sample=300, exact_max=2048)
    exact = gap_curve(ref, qs, backend="torch")
    assert {b.method for b in res.blocks} == {"exact", "hnsw"}
    assert all(b.params["M"] == 32 and b.params["ef_search"] >= 64 for b in res.blocks[1:])
    assert res.recall >= 0.95
    assert (res.gaps / exact.gaps - 1 <= 0.01).all()
    assert (res.per_query >= exact.per_query * (1 - 1e-9)).all()


def test_faiss_scan_matches_quality():
    ref, qs = _manifold(20_000, 4), _manifold(800, 5)
    res = approximate_gap(ref, qs, scan="faiss", recall_sample=400, exact_max=2048)
    exact = gap_curve(ref, qs, backend="torch")
    assert any(b.method == "ivf-faiss" for b in res.blocks)
    assert res.recall >= 0.95
    assert (res.gaps / exact.gaps - 1 <= 0.01).all()
    assert (res.per_query >= exact.per_query * (1 - 1e-9)).all()


def test_explicit_parameters_are_used_as_given():
    ref, qs = _manifold(12_000, 6), _manifold(300, 7)
    res = approximate_gap(ref, qs, nlist=40, nprobe=3, exact_max=1024, recall_sample=100)
    for block in res.blocks[1:]:
        assert block.params == {"nlist": 40, "nprobe": 3}
    hnsw = approximate_gap(ref, qs, index="hnsw", M=8, ef_search=16, exact_max=1024, recall_sample=100)
    assert all(b.params == {"M": 8, "ef_search": 16} for b in hnsw.blocks[1:])


def test_everything_exact_when_exact_max_covers_the_bank(rng):
    ref, qs = rng.standard_normal((3000, 8)), rng.standard_normal((200, 8))
    res = approximate_gap(ref, qs, exact_max=3000, recall_sample=50)
    exact = gap_curve(ref, qs, backend="torch")
    assert [b.method for b in res.blocks] == ["exact"]
    assert res.exact_size == 3000
    assert res.recall == 1.0
    assert res.gap_rel_error == 0.0
    np.testing.assert_allclose(res.per_query, exact.per_query, rtol=1e-12)


def test_hard_data_warns_and_still_bounds(rng):
    # Isotropic Gaussian in 48 dimensions: no low-dimensional structure for IVF to exploit.
    ref = rng.standard_normal((12_000, 48)).astype(np.float32)
    qs = rng.standard_normal((300, 48)).astype(np.float32)
    with pytest.warns(UserWarning, match="largest setting tried"):
        res = approximate_gap(ref, qs, target_recall=1.0, exact_max=1024, recall_sample=300)
    assert res.recall < 1.0
    assert (res.gap_rel_error_per_size >= 0).all()
    exact = gap_curve(ref, qs, backend="torch")
    assert (res.per_query >= exact.per_query * (1 - 1e-9)).all()


def test_accepts_torch_tensors():
    ref, qs = _manifold(10_000, 8), _manifold(300, 9)
    a = approximate_gap(ref, qs, exact_max=1024, recall_sample=100)
    b = approximate_gap(torch.from_numpy(ref), torch.from_numpy(qs), exact_max=1024, recall_sample=100)
    np.testing.assert_array_equal(a.per_query, b.per_query)
    h = approximate_gap(torch.from_numpy(ref).half(), torch.from_numpy(qs).half(), exact_max=1024, recall_sample=50)
    assert h.per_query.dtype == np.float64
    assert np.isfinite(h.gaps).all()


def test_seed_none_keeps_order_and_sample_is_capped(rng):
    ref, qs = rng.random((5000, 3)), rng.random((40, 3))
    res = approximate_gap(ref, qs, seed=None, sizes=[1000, 5000], exact_max=1000, recall_sample=1000)
    exact = gap_curve(ref, qs, seed=None, sizes=[1000, 5000], backend="torch")
    assert res.recall_rows.size == 40
    np.testing.assert_allclose(res.per_query[0], exact.per_query[0], rtol=1e-12)
    assert (res.per_query[1] >= exact.per_query[1] * (1 - 1e-9)).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"index": "flat"}, "`index` must be one of"),
        ({"scan": "gpu"}, "`scan` must be one of"),
        ({"index": "hnsw", "nprobe": 4}, "IVF parameters"),
        ({"index": "ivf", "M": 16}, "HNSW parameters"),
        ({"nlist": 8, "nprobe": 9}, "exceeds `nlist`"),
        ({"nlist": 0}, "`nlist` must be an integer >= 1"),
        ({"ef_search": 2.5, "index": "hnsw"}, "`ef_search` must be an integer"),
        ({"target_recall": 0.0}, "`target_recall`"),
        ({"target_recall": 1.5}, "`target_recall`"),
        ({"target_error": -0.1}, "`target_error`"),
        ({"recall_sample": 0}, "`recall_sample`"),
        ({"exact_max": -1}, "`exact_max`"),
        ({"sizes": [100, 50]}, "strictly increasing"),
        ({"sizes": [100, 5000]}, "bank has only 2000"),
        ({"sizes": [10.5, 20.0]}, "strictly increasing"),
    ],
)
def test_bad_arguments_raise(rng, kwargs, match):
    ref, qs = rng.random((2000, 4)), rng.random((50, 4))
    with pytest.raises(ValueError, match=match):
        approximate_gap(ref, qs, **kwargs)


def test_bad_data_raises(rng):
    ref, qs = rng.random((2000, 4)), rng.random((50, 4))
    with pytest.raises(ValueError, match="same number of features"):
        approximate_gap(ref, rng.random((50, 5)))
    bad = qs.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        approximate_gap(ref, bad)
    with pytest.raises(TypeError, match="floating point"):
        approximate_gap(ref.astype(np.int64), qs)


def test_auto_index_and_default_nlist():
    assert auto_index(AUTO_APPROXIMATE_MIN_BANK - 1) == "exact"
    assert auto_index(AUTO_APPROXIMATE_MIN_BANK) == "ivf"
    with pytest.raises(ValueError, match="n_bank"):
        auto_index(0)
    assert default_nlist(500_000, 10_000) == 396
    assert default_nlist(500_000, 10_000, scan="faiss") == 4 * 396
    assert default_nlist(1000, 10_000) == 1000 // 39
    with pytest.raises(ValueError, match="`scan`"):
        default_nlist(1000, 10, scan="hnsw")


def test_cluster_sums_in_tiles_match_index_add():
    # Memory bound: the k-means sums are one-hot GEMMs over row tiles, never one (n x k) matrix; same sums.
    from lightning_repgap._ivf import ROW_TILE as _ROW_TILE
    from lightning_repgap._ivf import cluster_sums as _cluster_sums

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2 * _ROW_TILE + 123, 6, generator=gen, dtype=torch.float64)
    assign = torch.randint(0, 37, (x.shape[0],), generator=gen)
    expected = torch.zeros(37, 6, dtype=torch.float64).index_add_(0, assign, x)
    torch.testing.assert_close(_cluster_sums(x, assign, 37), expected, rtol=1e-12, atol=1e-12)
