"""RepresentationGap: functional == module, order/world-size independence, DDP (gloo), pickling, errors."""

from __future__ import annotations

import os
import pickle
import socket
from contextlib import closing

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torchmetrics.utilities.distributed import gather_all_tensors

from lightning_repgap import RepresentationGap, representation_gap
from lightning_repgap.search import ExactEngine

FAST = {"n_bootstrap": 50}


def _data(seed: int = 0, n: int = 3000, m: int = 500, d: int = 3):
    g = torch.Generator().manual_seed(seed)
    ref = torch.rand(n, d, generator=g)
    qs = torch.rand(m, d, generator=g)
    tq = torch.rand(m, d, generator=g)
    ref_lab = (ref[:, 0] > 0.5).long()
    q_lab = (qs[:, 0] > 0.5).long()
    return ref, qs, tq, ref_lab, q_lab


def _assert_same(a: dict, b: dict, rtol: float = 1e-6) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=rtol, atol=0.0, msg=key)


def test_functional_equals_metric_over_batches():
    ref, qs, tq, ref_lab, q_lab = _data()
    expected = representation_gap(ref, qs, train_queries=tq, reference_labels=ref_lab, query_labels=q_lab, **FAST)
    metric = RepresentationGap(**FAST)
    for i in range(0, 3000, 700):
        metric.update(reference=ref[i : i + 700], reference_labels=ref_lab[i : i + 700])
    for i in range(0, 500, 128):
        metric.update(queries=qs[i : i + 128], query_labels=q_lab[i : i + 128], train_queries=tq[i : i + 128])
    _assert_same(metric.compute(), expected)
    assert {"gap_ratio", "knn_acc"} <= set(expected)
    assert expected["knn_acc"] > 0.9


def test_indices_make_result_independent_of_arrival_order():
    ref, qs, *_ = _data(1)
    expected = representation_gap(ref, qs, **FAST)
    metric = RepresentationGap(**FAST)
    perm = torch.randperm(3000, generator=torch.Generator().manual_seed(3))
    for chunk in perm.split(500):
        metric.update(reference=ref[chunk], reference_index=chunk)
    # Padding repeats (as DistributedSampler adds) must not count twice or as duplicates.
    metric.update(reference=ref[:7], reference_index=torch.arange(7))
    qperm = torch.randperm(500, generator=torch.Generator().manual_seed(4))
    metric.update(queries=qs[qperm], query_index=qperm)
    out = metric.compute()
    _assert_same(out, expected)
    assert out["dup_frac"] == 0


def test_reset_and_recompute():
    ref, qs, *_ = _data(2)
    metric = RepresentationGap(**FAST)
    metric.update(reference=ref, queries=qs)
    first = metric.compute()
    metric.reset()
    with pytest.raises(RuntimeError, match="needs both `reference` and `queries`"):
        metric.compute()
    metric.update(reference=ref, queries=qs)
    _assert_same(metric.compute(), first)


def test_half_precision_inputs_are_stored_as_float32():
    ref, qs, *_ = _data(3)
    metric = RepresentationGap(**FAST)
    metric.update(reference=ref.to(torch.bfloat16), queries=qs.to(torch.float16))
    assert metric.reference[0].dtype == torch.float32
    out = metric.compute()
    assert all(torch.isfinite(v) for v in out.values())


def test_caps_apply_with_warning():
    ref, qs, *_ = _data(4)
    metric = RepresentationGap(max_reference=1024, **FAST)
    metric.update(reference=ref, queries=qs)
    with pytest.warns(UserWarning, match="only the first 1024 are used"):
        out = metric.compute()
    _assert_same(out, representation_gap(ref[:1024], qs, **FAST))


def test_pickle_and_clone_roundtrip():
    ref, qs, *_ = _data(5)
    metric = RepresentationGap(**FAST)
    metric.update(reference=ref, queries=qs)
    clone = pickle.loads(pickle.dumps(metric))
    _assert_same(clone.compute(), metric.compute())
    _assert_same(metric.clone().compute(), metric.compute())


def test_states_are_not_persisted_in_state_dict():
    metric = RepresentationGap(**FAST)
    metric.update(reference=torch.rand(100, 2), queries=torch.rand(10, 2))
    assert metric.state_dict() == {}


def test_plot_returns_figure():
    ref, qs, *_ = _data(6)
    metric = RepresentationGap(**FAST)
    metric.update(reference=ref, queries=qs)
    with pytest.raises(RuntimeError, match="call compute"):
        metric.plot()
    metric.compute()
    _, ax = metric.plot()
    assert ax.get_xscale() == "log"
    assert len(ax.lines) == 2  # curve + fitted law


def test_plot_takes_compute_results_as_every_torchmetrics_metric():
    """``plot(metric.compute())`` and ``plot([...])`` draw the values (torchmetrics' contract), no AttributeError."""
    ref, qs, *_ = _data(6)
    metric = RepresentationGap(**FAST)
    metric.update(reference=ref, queries=qs)
    values = metric.compute()
    _, ax = metric.plot(values)
    assert ax.get_ylabel() == "RepresentationGap"
    _, ax = metric.plot([values, values])
    assert ax.get_xlabel() == "Step"
    _, ax = metric.plot()  # no value: still the last curve with its law
    assert ax.get_xscale() == "log"
    with pytest.raises(TypeError, match=r"takes nothing .* a GapCurve, a compute\(\) result .* got Tensor"):
        metric.plot(values["gap"])  # one value: was AttributeError: 'Tensor' object has no attribute 'sizes'


@pytest.mark.parametrize("side", ["reference", "query"])
def test_labels_on_one_side_only_are_an_error_as_in_the_functional(side: str):
    ref, qs, _, ref_lab, q_lab = _data(7)
    metric = RepresentationGap(**FAST)
    labels = {"reference_labels": ref_lab} if side == "reference" else {"query_labels": q_lab}
    metric.update(reference=ref, queries=qs, **labels)
    with pytest.raises(ValueError, match=f"`{side}_labels` were given but no"):
        metric.compute()
    with pytest.raises(ValueError, match="must be given together"):
        representation_gap(ref, qs, **labels)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_reference": 1}, "max_reference"),
        ({"ratio": 1.0}, "ratio"),
        ({"confidence": 1.5}, "confidence"),
        ({"backend": "annoy"}, "backend"),
        ({"n_neighbors": 1}, "n_neighbors"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RepresentationGap(**kwargs)


def test_bad_update_inputs():
    metric = RepresentationGap()
    with pytest.raises(ValueError, match=r"must be 2-D \(batch, dim\), got shape \(5,\)"):
        metric.update(reference=torch.rand(5))
    with pytest.raises(TypeError, match="floating point"):
        metric.update(reference=torch.ones(5, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="has 5 rows but its index has 4"):
        metric.update(reference=torch.rand(5, 2), reference_index=torch.arange(4))
    with pytest.raises(ValueError, match="`queries` itself was not"):
        metric.update(query_index=torch.arange(4))
    metric = RepresentationGap()
    metric.update(reference=torch.rand(100, 2), queries=torch.rand(10, 3))
    with pytest.raises(ValueError, match="same number of features, got 2 and 3"):
        metric.compute()
    metric = RepresentationGap()
    metric.update(reference=torch.rand(100, 2), queries=torch.full((10, 2), float("nan")))
    with pytest.raises(ValueError, match="NaN or Inf"):
        metric.compute()


# ---------------------------------------------------------------- DDP: 2 gloo processes, uneven shards


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        ref, qs, tq, ref_lab, q_lab = _data(7)
        metric = RepresentationGap(**FAST)
        # Uneven, interleaved shards: rank 0 takes 2/3 of the bank, rank 1 the rest plus a padded repeat.
        ref_idx = torch.arange(3000)
        mine = ref_idx[ref_idx % 3 != 2] if rank == 0 else torch.cat([ref_idx[ref_idx % 3 == 2], ref_idx[:5]])
        q_idx = torch.arange(500)
        q_mine = q_idx[rank::world]
        metric.update(reference=ref[mine], reference_index=mine, reference_labels=ref_lab[mine])
        metric.update(queries=qs[q_mine], query_index=q_mine, query_labels=q_lab[q_mine])
        metric.update(train_queries=tq[q_mine], train_index=q_mine)
        searched: list[int] = []
        search = ExactEngine.search

        def spy(self, reference, queries, order, sizes, **kwargs):  # what this rank searches: bank rows x queries
            searched.append((len(order), queries.shape[0]))
            return search(self, reference, queries, order, sizes, **kwargs)

        local = {name: [t.clone() for t in getattr(metric, name)] for name in metric._defaults}
        ExactEngine.search = spy  # type: ignore[method-assign]
        out = metric.compute()
        torch.save(out, os.path.join(out_dir, f"rank{rank}.pt"))
        result = metric.last_result
        gathers = [_states_after_sync(metric, local, fn) for fn in (None, _torchmetrics_gather)]
        # An uneven second metric: rank 1 gives no training queries and more queries; widths agree.
        other = RepresentationGap(**FAST)
        other.update(queries=qs[: 7 + 10 * rank], query_index=torch.arange(7 + 10 * rank))
        if rank == 0:
            other.update(train_queries=tq[:3])
        other_local = {name: [t.clone() for t in getattr(other, name)] for name in other._defaults}
        # (torchmetrics' own gather cannot take a set that one rank never updated: its shapes differ in rank)
        gathers.append(_states_after_sync(other, other_local, None))
        widths = RepresentationGap(**FAST)  # a set with different widths on the two ranks: a clear error on both
        widths.update(queries=torch.zeros(4, 3 + rank))
        try:
            widths.sync()
            width_error = ""
        except ValueError as err:
            width_error = str(err)
        torch.save(
            {
                "values": result.values,
                "per_query": result.curve.per_query,
                "searched": searched,
                "gathers": gathers,
                "width_error": width_error,
            },
            os.path.join(out_dir, f"rank{rank}-result.pt"),
        )
    finally:
        dist.destroy_process_group()


def _torchmetrics_gather(tensor: torch.Tensor, group=None) -> list[torch.Tensor]:
    """torchmetrics' own gather under another name: ``sync`` then takes torchmetrics' path, not the Metric's."""
    return gather_all_tensors(tensor, group)


def _states_after_sync(metric: RepresentationGap, local: dict, dist_sync_fn) -> dict:
    """Every state as ``sync(dist_sync_fn)`` leaves it, after checking that ``unsync`` restores the local states."""
    metric.sync(dist_sync_fn=dist_sync_fn)
    synced = {name: getattr(metric, name) for name in local}
    metric.unsync()
    for name, tensors in local.items():
        now = getattr(metric, name)
        assert len(now) == len(tensors), name
        assert all(torch.equal(a, b) for a, b in zip(now, tensors, strict=True)), name
    return {name: (v.clone() if isinstance(v, torch.Tensor) else list(v)) for name, v in synced.items()}


@pytest.mark.ddp
def test_ddp_two_processes_match_single_process(tmp_path):
    ref, qs, tq, ref_lab, q_lab = _data(7)
    expected = representation_gap(ref, qs, train_queries=tq, reference_labels=ref_lab, query_labels=q_lab, **FAST)
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    _assert_same(r0, r1, rtol=0.0)
    _assert_same(r0, expected, rtol=1e-5)
    np.testing.assert_equal(float(r0["dup_frac"]), 0.0)
    # The search is shared (each rank searches the bank for half the queries and training queries) and every number
    # is one process's, bit for bit.
    one = RepresentationGap(**FAST)
    one.update(reference=ref, queries=qs, train_queries=tq, reference_labels=ref_lab, query_labels=q_lab)
    one.compute()
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}-result.pt", weights_only=False)
        assert got["searched"] == [(3000, 500)]
        # The Metric's one-collective gather leaves every state as torchmetrics' gather does (uneven shards, a set
        # one rank never updated), and a set whose width differs between ranks is a clear error on every rank.
        ours, theirs, uneven = got["gathers"]
        assert sorted(ours) == sorted(theirs)
        for name, value in ours.items():
            if isinstance(theirs[name], torch.Tensor) and theirs[name].numel():
                assert torch.equal(value, theirs[name]), name
            else:  # nothing on any rank
                assert len(value) == 0, name
        assert torch.equal(uneven["queries"], torch.cat([qs[:7], qs[:17]]))
        assert torch.equal(uneven["queries_index"], torch.cat([torch.arange(7), torch.arange(17)]))
        assert torch.equal(uneven["train_queries"], tq[:3])
        assert torch.equal(uneven["train_queries_index"], torch.full((3,), -1))
        assert len(uneven["reference"]) == 0
        assert "different widths" in got["width_error"]
        assert "`queries`" in got["width_error"]
        assert got["values"] == one.last_result.values
        np.testing.assert_array_equal(got["per_query"], one.last_result.curve.per_query)
