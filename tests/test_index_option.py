"""The ``index`` option (exact / ivf / hnsw / auto) of the functional API, the Metric, the callback and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _helpers.cli_data import torus_arrays
from _helpers.models import MLP, QUIET_TRAINER, loaders
from lightning.pytorch.utilities.exceptions import MisconfigurationException

import lightning_repgap._ann as ann
import lightning_repgap.search as search
from lightning_repgap.callback import RepresentationGapCallback
from lightning_repgap.cli import main
from lightning_repgap.functional import _gap_compute, _gap_update, representation_gap
from lightning_repgap.manifolds import embed, sample_torus
from lightning_repgap.metric import RepresentationGap

# 20,000 bank points: the exact prefix of approximate_gap ends at max(4096, n / 64) = 4096, so the blocks
# [4096, 8192), [8192, 16384) and [16384, 20000) go through IVF indexes. An 8-torus in R^64 is hard enough for IVF
# that the calibrated search misses a few neighbours (recall < 1, a small positive error).
N_BANK = 20_000
N_QUERIES = 1_200
N_TRAIN_QUERIES = 300


def _torus(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return embed(sample_torus(n, 8, rng), 64, np.random.default_rng(9)).astype(np.float32)


@pytest.fixture(scope="module")
def inputs():
    ref, qs, tq = _torus(N_BANK, 0), _torus(N_QUERIES, 1), _torus(N_TRAIN_QUERIES, 2)
    ref_lab, q_lab = (ref[:, 0] > 0).astype(np.int64), (qs[:, 0] > 0).astype(np.int64)
    return _gap_update(ref, qs, tq, ref_lab, q_lab)


@pytest.fixture(scope="module")
def exact(inputs):
    return _gap_compute(inputs, n_bootstrap=50)


@pytest.fixture(scope="module")
def ivf(inputs):
    return _gap_compute(inputs, n_bootstrap=50, index="ivf")


def test_ivf_gives_an_upper_bound_with_measured_accuracy(exact, ivf):
    v, e = ivf.values, exact.values
    assert ivf.approximate is not None
    assert exact.approximate is None
    assert [b.method for b in ivf.approximate.blocks] == ["exact", "ivf-torch", "ivf-torch", "ivf-torch"]
    assert set(v) == set(e) | {"recall", "gap_rel_error"}
    assert 0.9 <= v["recall"] <= 1.0
    assert 0.0 <= v["gap_rel_error"] <= 0.01
    # Upper bound on the exact gap, per grid size, and within 1 % of it.
    assert np.all(ivf.curve.gaps >= exact.curve.gaps * (1 - 1e-9))
    assert np.all(ivf.curve.train_gaps >= exact.curve.train_gaps * (1 - 1e-9))
    assert v["gap"] == pytest.approx(e["gap"], rel=0.01)
    assert v["gap_ratio"] == pytest.approx(e["gap_ratio"], rel=0.02)
    assert v["dim"] == pytest.approx(e["dim"], rel=0.03)
    assert v["knn_acc"] == pytest.approx(e["knn_acc"], abs=0.02)
    assert v["gap_norm"] == pytest.approx(e["gap_norm"], rel=0.01)
    # The measured error is what it claims to be on the sampled queries among the user's queries.
    approx = ivf.approximate
    mine = approx.recall_rows[approx.recall_rows < N_QUERIES]
    true_err = ivf.curve.per_query[-1, mine].mean() / exact.curve.per_query[-1, mine].mean() - 1
    assert v["gap_rel_error"] == pytest.approx(true_err, rel=1e-6, abs=1e-12)
    true_recall = np.mean(ivf.curve.per_query[-1, mine] <= exact.curve.per_query[-1, mine] * (1 + 1e-9))
    assert v["recall"] == pytest.approx(true_recall)
    # Concentration, scale and the exact TwoNN / MLE neighbour search match the exact path.
    assert ivf.curve.concentration == pytest.approx(exact.curve.concentration, rel=1e-5)
    assert ivf.curve.scale == pytest.approx(exact.curve.scale, rel=1e-6)
    np.testing.assert_allclose(ivf.curve.knn_dist_sq, exact.curve.knn_dist_sq, rtol=1e-9)
    assert v["dim_twonn"] == e["dim_twonn"]
    assert v["dim_mle"] == e["dim_mle"]
    assert ivf.curve.backend == "ivf"


def test_auto_on_a_small_bank_is_exactly_the_exact_path(inputs, exact):
    auto = _gap_compute(inputs, n_bootstrap=50, index="auto")
    assert auto.approximate is None
    assert auto.values == exact.values
    np.testing.assert_array_equal(auto.curve.per_query, exact.curve.per_query)


# 200 queries give the calibration a coarse sample; its warning about the 0.5 % target is not what is tested here.
@pytest.mark.filterwarnings("ignore:approximate search reached")
def test_auto_switches_to_ivf_from_the_documented_bank_size(inputs, monkeypatch):
    monkeypatch.setattr(search, "AUTO_APPROXIMATE_MIN_BANK", N_BANK)
    small = _gap_update(inputs.reference[: N_BANK - 1], inputs.queries[:200])
    assert "recall" not in _gap_compute(small, n_bootstrap=0, index="auto").values
    big = _gap_compute(_gap_update(inputs.reference, inputs.queries[:200]), n_bootstrap=0, index="auto")
    assert big.approximate is not None
    assert big.approximate.index == "ivf"
    assert 0.0 < big.values["recall"] <= 1.0


def test_hnsw_through_the_functional_api():
    rng = np.random.default_rng(0)
    ref, qs = rng.random((6000, 4), dtype=np.float32), rng.random((300, 4), dtype=np.float32)
    out = representation_gap(ref, qs, index="hnsw", n_bootstrap=0)
    exact = representation_gap(ref, qs, n_bootstrap=0)
    assert set(out) == set(exact) | {"recall", "gap_rel_error"}
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in out.values())
    assert 0.0 < float(out["recall"]) <= 1.0
    assert float(out["gap"]) >= float(exact["gap"]) * (1 - 1e-6)


@pytest.mark.parametrize("bad", ["flat", "IVF", None, 3])
def test_bad_index_is_rejected_naming_the_argument(bad):
    x = np.random.default_rng(0).random((64, 2))
    with pytest.raises(ValueError, match="`index` must be"):
        representation_gap(x, x[:8], index=bad)
    with pytest.raises(ValueError, match="`index` must be"):
        RepresentationGap(index=bad)
    with pytest.raises(MisconfigurationException, match="`index` must be"):
        RepresentationGapCallback(layer="backbone", index=bad)


def test_metric_end_to_end_with_ivf(inputs, ivf):
    metric = RepresentationGap(max_reference=N_BANK, max_queries=N_QUERIES, n_bootstrap=50, index="ivf")
    ref, qs, tq = (torch.from_numpy(x) for x in (inputs.reference, inputs.queries, inputs.train_queries))
    for i in range(4):  # batches, as in an evaluation loop
        metric.update(reference=ref[i::4], reference_index=torch.arange(i, N_BANK, 4))
    metric.update(queries=qs, train_queries=tq)
    out = metric.compute()
    assert metric.last_result is not None
    assert metric.last_result.approximate is not None
    assert {"recall", "gap_rel_error"} <= set(out)
    for key in ("gap", "gap_ratio", "recall", "gap_rel_error", "dim"):
        assert float(out[key]) == pytest.approx(ivf.values[key], rel=1e-5, abs=1e-7), key


def test_callback_logs_recall_and_snapshot_replays_with_the_same_index(tmp_path, monkeypatch, capsys):
    # A 1024-point bank is all exact prefix by default; a smaller exact prefix makes its last blocks IVF.
    monkeypatch.setattr(ann, "_EXACT_MIN", 128)
    import lightning.pytorch as pl

    pl.seed_everything(0)
    snaps = tmp_path / "snaps"
    cb = RepresentationGapCallback(
        layer="backbone",
        train_probe=1024,
        val_probe=256,
        n_bootstrap=20,
        index="ivf",
        snapshot_dir=str(snaps),
        snapshot_on="evaluation",
        snapshot_dtype="float32",
        log_figures=False,
    )
    assert cb.metric_config()["index"] == "ivf"
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        callbacks=[cb],
        **QUIET_TRAINER,
        default_root_dir=tmp_path,
    )
    trainer.fit(MLP(), *loaders())
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert 0.0 < logged["repgap/recall"] <= 1.0
    assert logged["repgap/gap_rel_error"] >= 0.0
    assert {"repgap/recall", "repgap/gap_rel_error"} <= set(cb.history[-1])
    assert any(b.method == "ivf-torch" for b in cb._metric("backbone").last_result.approximate.blocks)

    out_json = tmp_path / "analysis.json"
    assert main(["analyze", str(snaps), "--json", str(out_json), "-q"]) == 0
    text = capsys.readouterr().out
    assert "backend ivf" in text
    assert "recall" in text
    (record,) = json.loads(out_json.read_text())
    assert record["config"]["index"] == "ivf"
    assert record["approximate"]["index"] == "ivf"
    for key, value in record["values"].items():
        assert value == pytest.approx(logged[f"repgap/{key}"], rel=1e-5, abs=1e-7), key


def test_cli_index_option(tmp_path, capsys):
    arrays = torus_arrays(3, n=1024, m=256, labels=False)
    paths = {}
    for key in ("reference", "queries"):
        paths[key] = tmp_path / f"{key}.npy"
        np.save(paths[key], arrays[key])
    out_json = tmp_path / "est.json"
    argv = ["estimate", str(paths["reference"]), str(paths["queries"]), "--n-bootstrap", "0", "-q"]
    assert main([*argv, "--index", "ivf", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "recall" in out
    assert "gap_rel_error" in out
    payload = json.loads(out_json.read_text())
    assert payload["config"]["index"] == "ivf"
    assert 0.0 < payload["values"]["recall"] <= 1.0
    assert payload["backend"] == "ivf"

    assert main([*argv, "--json", str(out_json)]) == 0
    capsys.readouterr()
    payload = json.loads(out_json.read_text())
    assert payload["config"]["index"] == "exact"
    assert "recall" not in payload["values"]
    assert "approximate" not in payload

    assert main([*argv, "--index", "flat"]) == 2
    assert "invalid choice: 'flat'" in capsys.readouterr().err
    for command in ("analyze", "estimate"):
        assert main([command, "--help"]) == 0
        assert "--index" in capsys.readouterr().out
