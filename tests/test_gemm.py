"""The CPU score-tile product: both libraries give the same search, the choice and the thread settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import brute_force_dist_sq

from lightning_repgap import _gemm
from lightning_repgap.gap import gap_curve
from lightning_repgap.search import nearest

threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture(autouse=True)
def _fresh_choice(monkeypatch):
    monkeypatch.setattr(_gemm, "_chosen", {})


def _blas_threads() -> frozenset[int]:
    # numpy's OpenBLAS (pthreads); FAISS' OpenMP-threaded OpenBLAS is deliberately left alone by the search.
    infos = threadpoolctl.threadpool_info()
    return frozenset(info["num_threads"] for info in infos if info.get("threading_layer") == "pthreads")


@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_both_libraries_find_the_brute_force_neighbours(monkeypatch, engine):
    monkeypatch.setenv("REPGAP_CPU_GEMM", engine)
    rng = np.random.default_rng(0)
    ref, qs = rng.standard_normal((5000, 7)), rng.standard_normal((2500, 7))  # 3 bank tiles, 2 query chunks
    full = brute_force_dist_sq(ref, qs)
    _, idx = nearest(ref, qs, k=3, backend="torch")
    np.testing.assert_array_equal(idx, np.argsort(full, axis=1)[:, :3])
    curve = gap_curve(ref, qs, min_size=64, seed=None, n_neighbors=4, neighbor_queries=2500, backend="torch")
    np.testing.assert_allclose(curve.gaps[-1], full.min(axis=1).mean(), rtol=1e-12)
    np.testing.assert_allclose(curve.gaps[0], full[:, :64].min(axis=1).mean(), rtol=1e-12)
    # Every query got a neighbour table (in a random row order): the same multiset of distances as brute force.
    expected = np.sort(np.sort(full, axis=1)[:, :4].ravel())
    np.testing.assert_allclose(np.sort(curve.knn_dist_sq.ravel()), expected, rtol=1e-12)


def test_the_numpy_product_gives_the_torch_curve(monkeypatch):
    rng = np.random.default_rng(1)
    ref, qs = rng.standard_normal((6000, 12)), rng.standard_normal((900, 12))
    curves = {}
    for engine in ("torch", "numpy"):
        monkeypatch.setenv("REPGAP_CPU_GEMM", engine)
        curves[engine] = gap_curve(ref, qs, n_neighbors=6, backend="torch")
    np.testing.assert_allclose(curves["numpy"].per_query, curves["torch"].per_query, rtol=1e-12)
    np.testing.assert_allclose(curves["numpy"].knn_dist_sq, curves["torch"].knn_dist_sq, rtol=1e-12)


def test_numpy_tiles_run_blas_at_the_search_count_and_torch_on_one_thread(monkeypatch):
    pytest.importorskip("faiss")  # loaded on purpose: its OpenMP OpenBLAS must not be what gets resized
    monkeypatch.setenv("REPGAP_CPU_GEMM", "numpy")
    seen: list[tuple[int, frozenset[int]]] = []
    original = _gemm.TileProduct.__call__

    def spy(self: _gemm.TileProduct, block: torch.Tensor) -> torch.Tensor:
        seen.append((torch.get_num_threads(), _blas_threads()))
        return original(self, block)

    monkeypatch.setattr(_gemm.TileProduct, "__call__", spy)
    before_torch, before_blas = torch.get_num_threads(), _blas_threads()
    rng = np.random.default_rng(2)
    nearest(rng.standard_normal((3000, 5)), rng.standard_normal((50, 5)), backend="torch", num_threads=1)
    assert seen
    assert set(seen) == {(1, frozenset({1}))}
    seen.clear()
    nearest(rng.standard_normal((3000, 5)), rng.standard_normal((50, 5)), backend="torch", num_threads=2)
    assert set(seen) == {(1, frozenset({2}))}
    assert torch.get_num_threads() == before_torch
    assert _blas_threads() == before_blas


def test_small_searches_never_probe_and_large_ones_probe_once(monkeypatch):
    monkeypatch.delenv("REPGAP_CPU_GEMM", raising=False)
    calls: list[int] = []
    monkeypatch.setattr(_gemm, "_probe", lambda inner: calls.append(inner) or "numpy")
    cpu = torch.device("cpu")
    assert _gemm.cpu_engine(257, 1000, cpu) == "torch"
    assert calls == []
    big = _gemm.PROBE_MIN_WORK
    assert _gemm.cpu_engine(257, big, cpu) == "numpy"
    assert _gemm.cpu_engine(257, 1000, cpu) == "numpy", "the process keeps its choice for that width"
    assert calls == [257]
    assert _gemm.cpu_engine(257, big, torch.device("meta")) == "torch", "off the CPU, always torch"


def test_the_probe_returns_a_library():
    assert _gemm._probe(33, size=256) in ("torch", "numpy")


def test_a_bad_setting_is_named(monkeypatch):
    monkeypatch.setenv("REPGAP_CPU_GEMM", "mkl")
    with pytest.raises(ValueError, match="REPGAP_CPU_GEMM must be one of"):
        nearest(np.zeros((10, 2)), np.zeros((2, 2)), backend="torch")


@pytest.mark.parametrize(("env", "arg"), [("numpy", "torch"), ("torch", "numpy")])
def test_the_gemm_argument_wins_over_the_environment(monkeypatch, env, arg):
    monkeypatch.setenv("REPGAP_CPU_GEMM", env)
    used: list[str] = []
    original = _gemm.TileProduct.__init__

    def spy(self: _gemm.TileProduct, q_aug: torch.Tensor, engine: str, max_block: int) -> None:
        used.append(engine)
        original(self, q_aug, engine, max_block)  # type: ignore[arg-type]

    monkeypatch.setattr(_gemm.TileProduct, "__init__", spy)
    rng = np.random.default_rng(3)
    ref, qs = rng.standard_normal((3000, 5)), rng.standard_normal((60, 5))
    with_arg = gap_curve(ref, qs, n_neighbors=3, backend="torch", gemm=arg)
    _, idx = nearest(ref, qs, k=2, backend="torch", gemm=arg)
    assert used
    assert set(used) == {arg}
    used.clear()
    from_env = gap_curve(ref, qs, n_neighbors=3, backend="torch")
    assert set(used) == {env}
    np.testing.assert_allclose(with_arg.per_query, from_env.per_query, rtol=1e-12)
    np.testing.assert_array_equal(idx, np.argsort(brute_force_dist_sq(ref, qs), axis=1)[:, :2])
    assert _gemm.cpu_engine(257, 1000, torch.device("cpu"), arg) == arg
    with pytest.raises(ValueError, match="`gemm` must be one of"):
        gap_curve(ref, qs, gemm="mkl")  # type: ignore[arg-type]
