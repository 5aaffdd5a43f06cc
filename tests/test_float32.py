"""The search's float32 products run at full float32 precision whatever ``set_float32_matmul_precision`` says.

Below ``"highest"`` torch may compute float32 matmuls with TF32 (CUDA) or bf16 (oneDNN on CPUs with bf16 units, e.g.
AVX-512 BF16 / AMX Xeons), outside the exact search's float32 error bounds. The guard (``_float32.full_float32``,
entered with every search's thread scope) is checked on the CPU: the flags inside the search, restored after it,
also on an exception, across nested scopes and threads; and the answer under ``"medium"`` (exact on a host whose
CPU matmuls turn bf16 then, as the Xeon this was written on: 5 of 256 wrong neighbours on main's code).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch

import lightning_repgap._exact as exact_module
from lightning_repgap._float32 import full_float32, matmul_precisions
from lightning_repgap.gap import gap_curve
from lightning_repgap.search import nearest

FULL = {"ieee", "highest"}


@pytest.fixture
def medium() -> Iterator[tuple[str, ...]]:
    """``torch.set_float32_matmul_precision("medium")`` for the test (as Lightning's tip suggests), then undone."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        yield matmul_precisions()
    finally:
        torch.set_float32_matmul_precision(before)


def _cloud(n: int, m: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, dim)).astype(np.float32), rng.standard_normal((m, dim)).astype(np.float32)


def test_the_search_runs_at_full_float32_and_restores_the_setting_even_on_an_error(medium, monkeypatch):
    assert not set(medium) <= FULL  # the fixture did lower it
    seen = []
    real = exact_module.search_torch

    def spy(*args, **kwargs):
        seen.append(matmul_precisions())
        if len(seen) == 2:
            raise RuntimeError("injected failure inside the search")
        return real(*args, **kwargs)

    monkeypatch.setattr(exact_module, "search_torch", spy)
    reference, queries = _cloud(512, 32, 16)
    nearest(reference, queries, backend="torch", search_precision="fp32")
    assert matmul_precisions() == medium
    with pytest.raises(RuntimeError, match="injected"):
        nearest(reference, queries, backend="torch", search_precision="fp32")
    assert matmul_precisions() == medium
    assert torch.get_float32_matmul_precision() == "medium"
    assert len(seen) == 2
    assert all(set(s) <= FULL for s in seen), seen


def test_nearest_is_exact_under_medium_matmul_precision(medium):
    # 4096 x 64 Gaussian bank: nearest neighbours closer together than bf16's error. Float64 brute force is the truth.
    reference, queries = _cloud(4096, 256, 64)
    d64 = ((queries[:, None, :].astype(np.float64) - reference[None].astype(np.float64)) ** 2).sum(-1)
    dist, index = nearest(reference, queries, backend="torch", gemm="torch", search_precision="fp32")
    np.testing.assert_array_equal(index[:, 0], d64.argmin(axis=1))
    np.testing.assert_allclose(dist[:, 0], d64.min(axis=1), rtol=1e-12)  # float64, summed in another order
    curve = gap_curve(reference, queries, backend="torch", n_neighbors=3, neighbor_queries=64)
    with full_float32():  # the same answer as at full precision, bit for bit
        again = gap_curve(reference, queries, backend="torch", n_neighbors=3, neighbor_queries=64)
    np.testing.assert_array_equal(curve.per_query, again.per_query)
    np.testing.assert_array_equal(curve.knn_dist_sq, again.knn_dist_sq)


def test_nested_and_concurrent_scopes_restore_once_the_last_exits(medium):
    entered, release = threading.Event(), threading.Event()
    inside: list[tuple[str, ...]] = []

    def other() -> None:
        with full_float32():
            entered.set()
            release.wait(10)
            inside.append(matmul_precisions())

    thread = threading.Thread(target=other)
    with full_float32():
        thread.start()
        assert entered.wait(10)
        with full_float32():
            assert set(matmul_precisions()) <= FULL
        assert set(matmul_precisions()) <= FULL  # the inner scope's exit did not restore
    assert set(matmul_precisions()) <= FULL  # the other thread's scope is still open
    release.set()
    thread.join(10)
    assert set(inside[0]) <= FULL
    assert matmul_precisions() == medium


def _read(getter: Callable[[], object]) -> object:
    try:
        return getter()
    except RuntimeError:  # torch refuses the mix of the legacy and new APIs
        return "refuses"


def _reads() -> tuple[object, ...]:
    """What torch's getters read, both APIs (a getter that refuses the mix of the legacy and new APIs: "refuses")."""
    legacy = (torch.get_float32_matmul_precision, lambda: torch.backends.cuda.matmul.allow_tf32)
    return (matmul_precisions(), *(_read(getter) for getter in legacy))


def _set_new_api_medium_values() -> None:
    # Medium's per-backend values written with the new API over a legacy "highest": the legacy getters refuse the mix.
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    torch.backends.mkldnn.matmul.fp32_precision = "bf16"


def _allow_tf32() -> None:
    torch.backends.cuda.matmul.allow_tf32 = True


_LOWERINGS = {
    "legacy high": lambda: torch.set_float32_matmul_precision("high"),
    "legacy medium": lambda: torch.set_float32_matmul_precision("medium"),
    "allow_tf32": _allow_tf32,
}
if hasattr(torch.backends.cuda.matmul, "fp32_precision") and hasattr(torch.backends.mkldnn, "matmul"):
    _LOWERINGS["new API, medium's values"] = _set_new_api_medium_values


@pytest.mark.parametrize("lower", list(_LOWERINGS))
def test_both_apis_read_full_precision_inside_the_scope_and_as_before_after_it(lower):
    # Torch >= 2.9's legacy getters refuse a mix of the legacy and the per-backend API. The guard used to write the
    # per-backend values under a legacy "high" / "medium" / allow_tf32: inside, `allow_tf32` raised ("mix of the
    # legacy and new APIs") and `get_float32_matmul_precision` read "high" (stale).
    backends = [torch.backends.cuda.matmul, getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)]
    start = [(b, b.fp32_precision) for b in backends if hasattr(b, "fp32_precision")]  # the session's, restored
    torch.set_float32_matmul_precision("highest")
    try:
        _LOWERINGS[lower]()
        before = _reads()
        with full_float32():
            inside = _reads()
        after = _reads()
    finally:
        torch.set_float32_matmul_precision("highest")
        for backend, value in start:
            backend.fp32_precision = value
    assert set(inside[0]) <= FULL, inside
    assert inside[1:] == ("highest", False), inside
    assert after == before


def test_the_search_under_the_callers_cpu_autocast_gives_the_answer_without_it():
    # Under torch.autocast("cpu", dtype=torch.bfloat16) float32 matmuls come out in bf16: the search raised an
    # index-put dtype error (float32 table, bf16 scores). The search scope switches autocast off in the caller's
    # thread (autocast is thread-local) and leaves it on for the caller afterwards.
    reference, queries = _cloud(4096, 256, 64)
    d64 = ((queries[:, None, :].astype(np.float64) - reference[None].astype(np.float64)) ** 2).sum(-1)
    plain = nearest(reference, queries, k=3, backend="torch", gemm="torch", search_precision="fp32")
    curve = gap_curve(reference, queries, backend="torch", n_neighbors=3, neighbor_queries=64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        dist, index = nearest(reference, queries, k=3, backend="torch", gemm="torch", search_precision="fp32")
        again = gap_curve(reference, queries, backend="torch", n_neighbors=3, neighbor_queries=64)
        assert torch.is_autocast_enabled("cpu")  # the caller's autocast, untouched
    np.testing.assert_array_equal(index[:, 0], d64.argmin(axis=1))
    np.testing.assert_array_equal(index, plain[1])
    np.testing.assert_array_equal(dist, plain[0])
    np.testing.assert_array_equal(again.per_query, curve.per_query)
    np.testing.assert_array_equal(again.knn_dist_sq, curve.knn_dist_sq)
