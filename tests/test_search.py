"""Nearest-neighbour backends against numpy brute force."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import brute_force_dist_sq

from lightning_repgap._gemm import TILE, prefix_top1_torch
from lightning_repgap.search import (
    AUTO_APPROXIMATE_MIN_BANK,
    INDEX_OPTIONS,
    auto_index,
    engine_for,
    merge_nearest,
    nearest,
    prefix_nearest,
    prefix_nearest_and_knn,
    prepare,
    resolve_backend,
    resolve_index,
)

BACKENDS = ["faiss", "torch"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [1, 3, 7])
@pytest.mark.parametrize("chunk", [None, 1, 37])
def test_matches_brute_force(rng, backend, k, chunk):
    ref = rng.standard_normal((700, 13))
    qs = rng.standard_normal((90, 13))
    dist_sq, idx = nearest(ref, qs, k=k, backend=backend, query_chunk_size=chunk)
    full = brute_force_dist_sq(ref, qs)
    expected_idx = np.argsort(full, axis=1)[:, :k]
    np.testing.assert_array_equal(idx, expected_idx)
    np.testing.assert_allclose(dist_sq, np.take_along_axis(full, expected_idx, axis=1), rtol=1e-12)
    assert dist_sq.dtype == np.float64
    assert idx.dtype == np.int64


@pytest.mark.parametrize("backend", BACKENDS)
def test_torch_tiles_cover_bank_larger_than_tile(rng, backend):
    # More than one 2048-wide tile on the torch path, to exercise the cross-tile merge.
    ref = rng.standard_normal((5000, 4))
    qs = rng.standard_normal((300, 4))
    _, idx = nearest(ref, qs, k=2, backend=backend)
    full = brute_force_dist_sq(ref, qs)
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1)[:, :2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_far_from_origin_is_exact(rng, backend):
    ref = rng.standard_normal((400, 8))
    qs = rng.standard_normal((50, 8))
    d0, i0 = nearest(ref, qs, backend=backend)
    d1, i1 = nearest(ref + 1e4, qs + 1e4, backend=backend)
    np.testing.assert_array_equal(i0, i1)
    np.testing.assert_allclose(d0, d1, rtol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exclude_self_drops_own_index_even_with_duplicates(backend):
    pts = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    dist_sq, idx = nearest(pts, pts, k=1, exclude_self=True, backend=backend)
    assert (idx[:, 0] != np.arange(4)).all()
    # The duplicate pair sees each other at distance zero.
    assert idx[0, 0] == 1
    assert idx[1, 0] == 0
    np.testing.assert_allclose(dist_sq[:, 0], [0.0, 0.0, 1.0, 4.0])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_accepts_torch_tensors_of_any_float_dtype(dtype):
    ref = torch.randn(200, 6, generator=torch.Generator().manual_seed(0)).to(dtype)
    qs = torch.randn(20, 6, generator=torch.Generator().manual_seed(1)).to(dtype)
    dist_sq, idx = nearest(ref, qs)
    full = brute_force_dist_sq(ref.float().numpy(), qs.float().numpy())
    np.testing.assert_array_equal(idx[:, 0], full.argmin(axis=1))
    assert isinstance(dist_sq, np.ndarray)


def test_backends_agree(rng):
    ref = rng.standard_normal((3000, 32)).astype(np.float32)
    qs = rng.standard_normal((400, 32)).astype(np.float32)
    a = nearest(ref, qs, k=5, backend="faiss")
    b = nearest(ref, qs, k=5, backend="torch")
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0], rtol=1e-12)


@pytest.mark.parametrize(
    ("reference", "queries", "kwargs", "error", "match"),
    [
        (np.zeros((5, 3)), np.zeros((2, 4)), {}, ValueError, "same number of features"),
        (np.zeros(5), np.zeros((2, 5)), {}, ValueError, r"must be 2-D .* got shape \(5,\)"),
        (np.zeros((5, 3), dtype=np.int64), np.zeros((2, 3)), {}, TypeError, "floating point"),
        (np.full((5, 3), np.nan), np.zeros((2, 3)), {}, ValueError, "NaN or Inf in 5 of 5 rows"),
        (np.zeros((5, 3)), np.zeros((2, 3)), {"k": 6}, ValueError, "exceeds the 5 reference points"),
        (np.zeros((5, 3)), np.zeros((2, 3)), {"k": 0}, ValueError, "`k` must be an integer >= 1"),
        (np.zeros((5, 3)), np.zeros((2, 3)), {"backend": "annoy"}, ValueError, "`backend` must be one of"),
        (np.zeros((5, 3)), np.zeros((2, 3)), {"exclude_self": True}, ValueError, "exclude_self"),
        ([[0.0, 1.0]], np.zeros((2, 2)), {}, TypeError, "numpy array or a torch tensor"),
        (np.zeros((0, 3)), np.zeros((2, 3)), {}, ValueError, r"at least 1 point, got 0"),
    ],
)
def test_bad_input_is_named(reference, queries, kwargs, error, match):
    with pytest.raises(error, match=match):
        nearest(reference, queries, **kwargs)


def test_auto_backend_is_torch_on_a_cpu_only_machine():
    assert resolve_backend("auto") == "torch"
    assert resolve_backend("faiss") == "faiss"


def test_faiss_gpu_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="sees no GPU"):
        resolve_backend("faiss-gpu")


def test_prepare_keeps_one_augmented_copy_of_the_bank_and_gathers_rows_lazily():
    # Memory bound (issue 6): prepare() holds the bank as given plus ONE float32 (n, D + 1) centred copy whose last
    # column the torch GEMM reads directly; a bank order is applied chunk by chunk, not as a reordered copy.
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((5000, 8)).astype(np.float32) + 100.0
    qs = rng.standard_normal((40, 8)).astype(np.float32) + 100.0
    order = rng.permutation(5000)[:3000]
    prep = prepare(ref, qs, rows=order)
    assert prep.reference is ref
    assert np.shares_memory(prep.reference32, prep.reference_aug32)
    assert prep.reference_aug32.shape == (3000, 9)
    explicit = prepare(ref[order], qs)
    np.testing.assert_allclose(prep.reference_aug32, explicit.reference_aug32, rtol=0, atol=1e-4)
    np.testing.assert_allclose(prep.centre, explicit.centre, rtol=1e-12)
    centred = ref[order].astype(np.float64) - prep.centre
    np.testing.assert_allclose(prep.reference_aug32[:, -1], -0.5 * (centred**2).sum(1), rtol=1e-6)
    idx = rng.integers(0, 3000, (40, 3))
    np.testing.assert_array_equal(prep.dist_sq(idx), explicit.dist_sq(idx))
    sizes = np.array([100, 1000, 3000])
    np.testing.assert_array_equal(
        prefix_nearest(prep, sizes, backend="torch"), prefix_nearest(explicit, sizes, backend="torch")
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", [1, 20])
def test_prefix_search_with_a_neighbour_table_matches_brute_force(backend, k):
    # Several query chunks (2048 rows each) and several tiles, a grid starting below k: the fused table must still
    # hold the k nearest of the whole bank (sizes[-1] rows), in order, for exactly the requested queries.
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((6000, 5))
    qs = rng.standard_normal((4500, 5))
    prep = prepare(ref, qs)
    sizes = np.array([8, 64, 512, 4096, 5500])
    knn_rows = rng.permutation(4500)[:300]
    winners, knn = prefix_nearest_and_knn(prep, sizes, knn_rows, k, backend=backend)
    np.testing.assert_array_equal(winners, prefix_nearest(prep, sizes, backend=backend))
    full = brute_force_dist_sq(ref[:5500], qs[knn_rows])
    # The same k neighbours; their order is float32's (callers re-sort by exact distances), so near ties may swap.
    np.testing.assert_array_equal(np.sort(knn, axis=1), np.sort(np.argsort(full, axis=1)[:, :k], axis=1))
    for s, size in enumerate(sizes):
        np.testing.assert_array_equal(winners[s, knn_rows], np.argmin(full[:, :size], axis=1))


def test_prefix_blocks_sharing_a_tile_and_straddling_tiles_match_brute_force():
    # One product per bank tile, reduced one size block at a time: several small blocks in the first tile, a block
    # ending one row short of and one row past a tile boundary, a block spanning a whole tile. Float64 operands (the
    # re-ranking's path), so the brute force's argmin is the answer with no float32 near ties.
    rng = np.random.default_rng(5)
    ref, qs = rng.standard_normal((2 * TILE + 300, 4)), rng.standard_normal((70, 4))
    aug = np.concatenate([ref, -0.5 * (ref**2).sum(1, keepdims=True)], axis=1)
    sizes = np.array([3, 5, 40, TILE - 1, TILE, TILE + 1, 2 * TILE, 2 * TILE + 1, 2 * TILE + 300])
    winners, knn = prefix_top1_torch(aug, qs, sizes, torch.device("cpu"), knn_rows=np.array([4, 60, 9]), k=6)
    full = brute_force_dist_sq(ref, qs)
    for s, size in enumerate(sizes):
        np.testing.assert_array_equal(winners[s], np.argmin(full[:, :size], axis=1))
    assert knn is not None
    np.testing.assert_array_equal(np.sort(knn, axis=1), np.sort(np.argsort(full[[4, 60, 9]], axis=1)[:, :6], axis=1))


def test_prepare_with_a_full_permutation_and_the_norm_column_sum():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((3000, 6)) * 3.0 + 50.0
    qs = rng.standard_normal((10, 6)) + 50.0
    order = rng.permutation(3000)
    prep = prepare(ref, qs, rows=order)
    np.testing.assert_allclose(prep.centre, ref.mean(axis=0), rtol=1e-13)
    centred = ref - ref.mean(axis=0)
    assert prep.reference_sq_sum == pytest.approx(float((centred**2).sum()), rel=1e-7)
    repeated = np.concatenate([order[:2000], order[:1000]])  # not a permutation: the mean of the rows it names
    np.testing.assert_allclose(prepare(ref, qs, rows=repeated).centre, ref[repeated].mean(axis=0), rtol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_engine_minima_of_a_split_bank_merge_to_the_full_search(rng, backend):
    # The contract a DDP engine relies on: per-size minima over disjoint parts of the bank merge by elementwise
    # minimum into the minima over the whole bank.
    ref, qs = rng.standard_normal((3000, 6)), rng.standard_normal((120, 6))
    order = rng.permutation(3000)
    sizes = np.array([100, 400, 1600, 3000])
    engine = engine_for("exact", backend=backend)
    full = engine.search(ref, qs, order, sizes).minima.running()
    parts = []
    for rank in (0, 1):
        mine = np.flatnonzero(np.arange(3000) % 2 == rank)  # bank positions this "rank" holds
        local_sizes = np.searchsorted(mine, sizes)  # its positions below each global size
        parts.append(engine.search(ref, qs, order[mine], local_sizes).minima.running())
    merged = parts[0].merge(parts[1])
    np.testing.assert_array_equal(merged.rows, full.rows)
    np.testing.assert_array_equal(merged.dist_sq, full.dist_sq)
    expected = np.stack([brute_force_dist_sq(ref[order[:n]], qs).min(axis=1) for n in sizes])
    np.testing.assert_allclose(full.dist_sq, expected, rtol=1e-12)


def test_merge_nearest_is_a_stable_top_k(rng):
    d = rng.integers(0, 5, (40, 9)).astype(np.float64)  # many ties
    idx = np.tile(np.arange(9), (40, 1))
    best = (np.empty((40, 0)), np.empty((40, 0), dtype=np.int64))
    for j0 in range(0, 9, 4):  # blocks of 4, 4, 1 columns, merged in bank order
        best = merge_nearest(best, (d[:, j0 : j0 + 4], idx[:, j0 : j0 + 4]), 3)
    keep = np.argsort(d, axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(best[1], keep)
    np.testing.assert_array_equal(best[0], np.take_along_axis(d, keep, axis=1))


def test_engine_names_and_auto_index():
    assert INDEX_OPTIONS == ("exact", "ivf", "hnsw", "auto")
    assert resolve_index("auto", AUTO_APPROXIMATE_MIN_BANK - 1) == auto_index(1) == "exact"
    assert resolve_index("auto", AUTO_APPROXIMATE_MIN_BANK) == "ivf"
    with pytest.raises(ValueError, match="`index` must be"):
        engine_for("flat")
    with pytest.raises(ValueError, match="`gemm` must be one of"):
        engine_for("exact", gemm="mkl")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="takes no options"):
        engine_for("exact", seed=0)


def test_an_exact_measurement_never_imports_approximate_search_code(tmp_path):
    # Functional API, Metric and CLI-style gap_curve with the default index: the approximate engines stay unloaded.
    script = """
import sys
import numpy as np
import torch
from lightning_repgap.functional import representation_gap
from lightning_repgap.gap import gap_curve
from lightning_repgap.metric import RepresentationGap

rng = np.random.default_rng(0)
ref, qs = rng.standard_normal((600, 5)), rng.standard_normal((80, 5))
representation_gap(ref, qs, n_bootstrap=0)
representation_gap(ref, qs, n_bootstrap=0, index="auto")
gap_curve(ref, qs, n_neighbors=3)
metric = RepresentationGap(n_bootstrap=0)
metric.update(reference=torch.from_numpy(ref), queries=torch.from_numpy(qs))
metric.compute()
loaded = sorted(m for m in sys.modules if m in ("lightning_repgap._ann", "lightning_repgap._ivf"))
print("LOADED", loaded)
"""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LOADED []" in proc.stdout, proc.stdout


@pytest.mark.parametrize("sizes", [[16, 16, 32], [0, 32], [32, 16], [4, 200]])
def test_prefix_search_names_sizes_that_are_not_strictly_increasing_within_the_bank(sizes):
    # The tile loops record a winner at each size boundary: a repeated, zero, decreasing or too large size would
    # leave winners unset (uninitialised indices) instead of failing.
    rng = np.random.default_rng(0)
    prep = prepare(rng.standard_normal((100, 3)), rng.standard_normal((5, 3)))
    with pytest.raises(ValueError, match="strictly increasing"):
        prefix_nearest(prep, np.array(sizes), backend="torch")
    with pytest.raises(ValueError, match="strictly increasing"):
        prefix_nearest_and_knn(prep, np.array(sizes), np.array([0]), 2, backend="torch")
