"""The memory- and time-saving paths of the full measurement give exactly what the plain paths give (issue #14)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_repgap import _gemm, _prepare
from lightning_repgap.gap import build_curve


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_centred32_gathers_chunk_by_chunk_bitwise(monkeypatch: pytest.MonkeyPatch, dtype: type) -> None:
    """``centred32(x, c, rows)`` is ``centred32(x[rows], c)`` to the bit, whatever the step (forced to 3 rows)."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((50, 7)) * 1e3 + 5e3).astype(dtype)
    centre = x.astype(np.float64).mean(axis=0)
    rows = rng.permutation(50)[:23]
    whole = _prepare.centred32(x[rows], centre)
    monkeypatch.setattr(_prepare, "_CENTRE_CHUNK_BYTES", 3 * 4 * 7)
    assert _prepare._centre_step(7) == 3
    gathered = _prepare.centred32(x, centre, rows)
    assert gathered.dtype == np.float32
    assert gathered.flags.c_contiguous
    np.testing.assert_array_equal(gathered, whole)
    np.testing.assert_array_equal(_prepare.centred_aug32(x, centre, rows)[:, :-1], whole)


def test_prepared_distances_without_float64_query_copy() -> None:
    """Winner distances are computed from the queries as given, equal to a float64 reference computation."""
    rng = np.random.default_rng(1)
    bank = rng.standard_normal((40, 5)).astype(np.float32) + 100
    queries = rng.standard_normal((9, 5)).astype(np.float32) + 100
    prep = _prepare.prepare(bank, queries)
    assert prep.queries is queries  # no copy kept
    index = rng.integers(0, 40, size=(9, 3))
    expected = ((queries.astype(np.float64)[:, None, :] - bank.astype(np.float64)[index]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(prep.dist_sq(index), expected)


def test_chunk_topk_with_row_maxima_matches_plain_merge() -> None:
    """Feeding the top-1 merge's row maxima to the neighbour table changes nothing in the table."""
    gen = torch.Generator().manual_seed(2)
    local = np.array([0, 3, 4, 9, 15], dtype=np.int64)
    plain = _gemm._ChunkTopK(local, 4, torch.device("cpu"), torch.float32)
    shared = _gemm._ChunkTopK(local, 4, torch.device("cpu"), torch.float32)
    best = _gemm._RunningTop1(16, torch.device("cpu"))
    for offset in range(0, 400, 40):
        scores = torch.randn((16, 40), generator=gen)
        plain.merge(scores, offset)
        row_max = best.merge(scores, offset)
        torch.testing.assert_close(row_max, scores.amax(dim=1), rtol=0, atol=0)
        shared.merge(scores, offset, row_max)
    assert torch.equal(plain.scores, shared.scores)
    assert torch.equal(plain.index, shared.index)


def test_curve_neighbour_table_is_the_brute_force_one() -> None:
    """End to end: the neighbour table of the prefix search holds each picked query's exact nearest rows."""
    rng = np.random.default_rng(3)
    bank, queries = rng.random((3000, 4)), rng.random((300, 4))
    curve = build_curve(bank, queries, n_neighbors=6, neighbor_queries=40, seed=0)
    assert curve.knn_dist_sq is not None
    assert curve.knn_index is not None
    pick = np.random.default_rng(0).permutation(300)[:40]
    d2 = ((queries[pick][:, None, :] - bank[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_allclose(curve.knn_dist_sq, np.sort(d2, axis=1)[:, :6], rtol=1e-12)
