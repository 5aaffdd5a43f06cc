"""Thread control: ``num_threads`` / ``REPGAP_NUM_THREADS`` reach torch and FAISS, and nothing else changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_repgap import _exact, _gemm
from lightning_repgap._threads import default_num_threads, thread_scope, torch_threads
from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.functional import representation_gap
from lightning_repgap.gap import gap_curve
from lightning_repgap.metric import RepresentationGap
from lightning_repgap.search import nearest, prepare, search_prepared

# torch's count while a test runs; the requests below differ from it, so a test sees whether they were applied.
BASE = 2


@pytest.fixture(autouse=True)
def _known_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("REPGAP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(BASE)
    yield
    torch.set_num_threads(before)


def _spy(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, *, fail: bool = False) -> list[int]:
    """Record ``torch.get_num_threads()`` each time ``module.name`` runs (then raise, with ``fail``)."""
    seen: list[int] = []
    original = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        if fail:
            raise RuntimeError("boom")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return seen


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.standard_normal((3000, 8)), rng.standard_normal((200, 8))


@pytest.mark.parametrize("requested", [1, 3])
def test_torch_search_runs_under_requested_count_and_restores(monkeypatch, data, requested):
    seen = _spy(monkeypatch, _gemm, "_top1_tiles")
    prep = prepare(*data)
    with thread_scope(requested):
        search_prepared(prep.reference32, prep.queries32, 1, backend="torch")
    assert seen == [requested]
    assert torch.get_num_threads() == BASE


def test_count_is_restored_when_the_search_raises(monkeypatch, data):
    seen = _spy(monkeypatch, _gemm, "_topk_tiles", fail=True)
    with pytest.raises(RuntimeError, match="boom"):
        nearest(*data, k=3, backend="torch", num_threads=1)
    assert seen == [1]
    assert torch.get_num_threads() == BASE


def test_without_a_request_torch_is_left_alone(monkeypatch, data):
    calls: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    gap_curve(*data, n_neighbors=5, backend="torch")
    nearest(*data, k=2, backend="torch")
    assert calls == []


def test_env_var_is_honoured_and_the_argument_wins(monkeypatch, data):
    seen = _spy(monkeypatch, _gemm, "_topk_tiles")
    monkeypatch.setenv("REPGAP_NUM_THREADS", "1")
    assert default_num_threads() == 1
    nearest(*data, k=2, backend="torch")
    nearest(*data, k=2, backend="torch", num_threads=3)
    assert seen == [1, 3]
    assert torch.get_num_threads() == BASE


@pytest.mark.parametrize("call", [default_num_threads, lambda: nearest(np.eye(3), np.eye(3), backend="torch")])
def test_bad_env_value_raises_a_clear_error(monkeypatch, call):
    monkeypatch.setenv("REPGAP_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="REPGAP_NUM_THREADS must be an integer, got 'two'"):
        call()


def test_every_torch_step_of_a_gap_curve_uses_the_count(monkeypatch):
    # Dense 1-D data: the nearest neighbours are too close for float32, so the float64 re-ranking runs too.
    rng = np.random.default_rng(0)
    ref, qs = rng.random((4096, 1)), rng.random((64, 1))
    prefix = _spy(monkeypatch, _exact, "prefix_top1_torch")
    topk = _spy(monkeypatch, _gemm, "_topk_tiles")
    gap_curve(ref, qs, n_neighbors=4, backend="torch", num_threads=1)
    assert prefix == [1, 1], "the float32 search (with the neighbour table) and the float64 re-ranking"
    # The table's rows with a near tie at the 4th neighbour (dense 1-D data) get one wider float32 search, on the count.
    assert topk == [1], "the neighbour table's ambiguous rows: one wider float32 search of those rows"
    assert torch.get_num_threads() == BASE
    # Ordinary data: no ambiguous row, the neighbour table comes from the prefix search's own tiles alone.
    topk.clear()
    gap_curve(rng.standard_normal((4096, 8)), rng.standard_normal((64, 8)), n_neighbors=4, backend="torch")
    assert topk == [], "the neighbour table comes from the prefix search's own tiles"


def test_nested_settings_restore_the_outer_one():
    with torch_threads(1):
        with torch_threads(3):
            assert torch.get_num_threads() == 3
        assert torch.get_num_threads() == 1
        with torch_threads(None):
            assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == BASE


def test_faiss_gets_the_same_count_and_torch_keeps_its_own(monkeypatch, data):
    faiss = pytest.importorskip("faiss")
    seen: list[int] = []
    original = _exact.search_faiss

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(faiss.omp_get_max_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(_exact, "search_faiss", spy)
    nearest(*data, backend="faiss", num_threads=1)
    # faiss-cpu and torch may share one OpenMP runtime: FAISS' setting must not leak into torch's.
    assert torch.get_num_threads() == BASE
    nearest(*data, backend="faiss")
    monkeypatch.setenv("REPGAP_NUM_THREADS", "3")
    nearest(*data, backend="faiss")
    assert seen == [1, BASE, 3]
    assert torch.get_num_threads() == BASE


def test_approximate_gap_runs_its_torch_work_under_the_count(monkeypatch):
    pytest.importorskip("faiss")
    from lightning_repgap import _ann, approximate

    rng = np.random.default_rng(0)
    ref, qs = rng.random((6000, 4)), rng.random((100, 4))
    kmeans = _spy(monkeypatch, _ann, "kmeans")
    prefix = _spy(monkeypatch, _exact, "prefix_top1_torch")
    approximate.approximate_gap(ref, qs, exact_max=1024, recall_sample=50, num_threads=3)
    assert kmeans == [3]
    assert prefix == [1], "the exact prefix keeps its single thread"
    assert torch.get_num_threads() == BASE


def test_results_do_not_depend_on_the_count(rng):
    ref, qs, tq = rng.standard_normal((5000, 16)), rng.standard_normal((300, 16)), rng.standard_normal((100, 16))
    one = gap_curve(ref, qs, train_queries=tq, n_neighbors=8, backend="torch", num_threads=1)
    two = gap_curve(ref, qs, train_queries=tq, n_neighbors=8, backend="torch", num_threads=2)
    for field in ("gaps", "per_query", "train_per_query", "knn_dist_sq"):
        np.testing.assert_allclose(getattr(one, field), getattr(two, field), rtol=1e-12, atol=0)
    np.testing.assert_array_equal(one.nearest_index, two.nearest_index)
    d1, i1 = nearest(ref, qs, k=5, backend="torch", num_threads=1)
    d2, i2 = nearest(ref, qs, k=5, backend="torch", num_threads=2)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(d1, d2, rtol=1e-12, atol=0)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_counts_are_rejected(data, bad):
    with pytest.raises(ValueError, match="`num_threads` must be an integer >= 1"):
        RepresentationGap(num_threads=bad)
    with pytest.raises(MisconfigurationException, match="`num_threads` must be an integer >= 1"):
        RepresentationGapCallback(num_threads=bad)
    with pytest.raises(ValueError, match="`num_threads` must be an integer >= 1"):
        representation_gap(*data, num_threads=bad)
    with pytest.raises(ValueError, match="`num_threads` must be an integer >= 1"):
        nearest(*data, num_threads=bad)


def test_metric_and_callback_pass_the_count_through(monkeypatch):
    seen = _spy(monkeypatch, _exact, "prefix_top1_torch")
    cb = RepresentationGapCallback(layer="backbone", num_threads=1, backend="torch")
    metric = cb._metric("backbone")
    assert metric.num_threads == 1
    assert "num_threads" not in cb.metric_config(), "a machine setting, not part of the measurement"
    gen = torch.Generator().manual_seed(0)
    metric.update(reference=torch.rand(512, 3, generator=gen), queries=torch.rand(64, 3, generator=gen))
    metric.compute()
    assert seen
    assert set(seen) == {1}
    assert torch.get_num_threads() == BASE


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_ranks_split_the_cores(tmp_path):
    # Lightning's DDP launchers call `_set_num_threads_if_needed(num_processes)` in every rank: without
    # OMP_NUM_THREADS it sets torch to (usable CPUs) // (processes on this machine), which the search inherits.
    script = os.path.join(os.path.dirname(__file__), "_helpers", "ddp_threads.py")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "REPGAP_NUM_THREADS")}
    env["PYTHONWARNINGS"] = "ignore"
    proc = subprocess.run(
        [sys.executable, script, str(tmp_path)], capture_output=True, text=True, timeout=600, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Lightning counts the CPUs this process may run on (sched_getaffinity), which is os.cpu_count() unless pinned.
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    expected = max(1, cpus // 2)
    for rank in (0, 1):
        record = json.loads((tmp_path / f"threads-rank{rank}.json").read_text())
        assert record["measurements"] == 1
        assert record["searches"], f"rank {rank} ran no search"
        assert all(s == {"torch": expected, "default": expected} for s in record["searches"]), (rank, record)
