"""``GapConfig``: validation, round trips, and one object shared by the functional API and the Metric."""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest
import torch

from lightning_repgap import GapConfig, GapResult, RepresentationGap, analyze, representation_gap
from lightning_repgap.config import BACKENDS, INDEX_OPTIONS, Backend, GapSettings, IndexOption, field_names


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((1024, 3)), rng.random((128, 3))


def test_vocabularies_come_from_the_literals():
    assert typing.get_args(Backend) == BACKENDS == ("auto", "faiss", "faiss-gpu", "torch")
    assert typing.get_args(IndexOption) == INDEX_OPTIONS == ("exact", "ivf", "hnsw", "auto")


def test_keyword_settings_match_the_fields():
    # The TypedDict that types ``**settings`` must list exactly the dataclass fields.
    assert tuple(GapSettings.__annotations__) == field_names()
    assert field_names() == tuple(f.name for f in dataclasses.fields(GapConfig))


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("sizes", [32, 16]),
        ("sizes", [0, 4]),
        ("sizes", [1.5, 3.0]),
        ("sizes", []),
        ("min_size", 0),
        ("ratio", 1.0),
        ("ratio", True),
        ("seed", -1),
        ("fit_min_size", 0),
        ("n_neighbors", 1),
        ("n_bootstrap", -1),
        ("confidence", 1.0),
        ("calibrate", "yes"),
        ("backend", "annoy"),
        ("index", "flat"),
    ],
)
def test_bad_values_name_the_field(field, bad):
    with pytest.raises(ValueError, match=f"`{field}` must"):
        GapConfig(**{field: bad})


def test_values_are_normalised_and_round_trip():
    config = GapConfig(sizes=np.array([16, 32, 64]), seed=np.int64(4), ratio=2, n_bootstrap=np.int32(7))
    assert config.sizes == (16, 32, 64)
    assert type(config.seed) is int
    assert type(config.ratio) is float
    assert type(config.n_bootstrap) is int
    assert GapConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["sizes"] == [16, 32, 64]
    assert hash(config) == hash(GapConfig.from_dict(config.to_dict()))  # frozen: usable as a key
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 1  # type: ignore[misc]
    assert config.replace(seed=None).seed is None
    assert GapConfig(fit_min_size=32).min_bank_size == 128


def test_min_bank_size_follows_the_grid():
    # A coarser grid needs a larger bank for 3 fit sizes (a bank of 64 on a ratio-4 grid has sizes 16 and 64 only).
    for config in (GapConfig(), GapConfig(ratio=4.0), GapConfig(min_size=64), GapConfig(fit_min_size=8, min_size=20)):
        n = config.min_bank_size
        assert n >= 4 * config.fit_min_size
        assert config.fit_size_count(n) >= 3
        assert n == 4 * config.fit_min_size or config.fit_size_count(n - 1) < 3
    assert (GapConfig(ratio=4.0).min_bank_size, GapConfig(min_size=64).min_bank_size) == (65, 129)
    assert GapConfig(sizes=(16, 32, 500)).min_bank_size == 500
    assert GapConfig(sizes=(16, 32, 500)).fit_size_count(499) == 0


def test_from_dict_reads_old_manifests_and_rejects_unknown_keys():
    old = {"min_size": 8, "seed": 3, "fit_min_size": 16, "n_bootstrap": 20, "calibrate": False, "backend": "torch"}
    config = GapConfig.from_dict(old)
    assert (config.min_size, config.seed, config.calibrate, config.ratio) == (8, 3, False, 2.0)
    with pytest.raises(TypeError, match="num_threads"):
        GapConfig.from_dict({**old, "num_threads": 2})
    with pytest.warns(UserWarning, match="num_threads"):
        assert GapConfig.from_dict({**old, "num_threads": 2}, strict=False) == config


def test_functional_takes_keywords_or_a_config_and_rejects_conflicts(data):
    ref, qs = data
    by_kwargs = representation_gap(ref, qs, n_bootstrap=20, min_size=32, seed=5)
    config = GapConfig(n_bootstrap=20, min_size=32, seed=5)
    by_config = representation_gap(ref, qs, config=config)
    assert {k: float(v) for k, v in by_kwargs.items()} == {k: float(v) for k, v in by_config.items()}
    # Agreeing keywords are accepted, contradicting ones are an error naming both values.
    assert float(representation_gap(ref, qs, config=config, seed=5)["gap"]) == float(by_config["gap"])
    with pytest.raises(ValueError, match=r"n_bootstrap=50 \(config: 20\)"):
        representation_gap(ref, qs, config=config, n_bootstrap=50)
    with pytest.raises(TypeError, match="bogus"):
        representation_gap(ref, qs, bogus=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="`config` must be a GapConfig"):
        representation_gap(ref, qs, config={"seed": 1})  # type: ignore[arg-type]
    # A setting the defaults would not pick changes the numbers: the keyword really reaches the computation.
    assert float(representation_gap(ref, qs, config=config.replace(seed=6))["law_r2"]) != float(by_config["law_r2"])


def test_analyze_returns_the_typed_result_of_the_functional(data):
    ref, qs = data
    result = analyze(ref, qs, train_queries=qs[:64] + 0.01, n_bootstrap=20)
    assert isinstance(result, GapResult)
    out = representation_gap(ref, qs, train_queries=qs[:64] + 0.01, config=GapConfig(n_bootstrap=20))
    assert list(result.values) == list(out)
    for key, value in out.items():
        # float64 inputs give float64 values (issue #16: extreme gaps must survive); compare in the returned dtype.
        assert float(torch.tensor(result.values[key], dtype=value.dtype)) == float(value), key
    assert result.curve.sizes[-1] == ref.shape[0]
    assert result.values["law_r2"] == result.fit.r2
    assert result.dimension is not None
    assert result.values["dim"] == result.dimension.dim
    sized = analyze(ref, qs, sizes=(64, 256, 1024), n_bootstrap=0)
    assert sized.curve.sizes.tolist() == [64, 256, 1024]


def test_metric_uses_the_same_config(data):
    ref, qs = data
    config = GapConfig(n_bootstrap=20, sizes=(32, 128, 512, 1024))
    metric = RepresentationGap(config=config)
    assert metric.config == config
    metric.update(reference=torch.from_numpy(ref).float(), queries=torch.from_numpy(qs).float())
    out = metric.compute()
    assert metric.last_result is not None
    assert metric.last_result.curve.sizes.tolist() == [32, 128, 512, 1024]
    expected = representation_gap(ref.astype(np.float32), qs.astype(np.float32), config=config)
    assert {k: float(v) for k, v in out.items()} == {k: float(v) for k, v in expected.items()}
    assert RepresentationGap(n_bootstrap=20, sizes=(32, 128, 512, 1024)).config == config
    with pytest.raises(ValueError, match="conflicting"):
        RepresentationGap(config=config, n_bootstrap=5)
    with pytest.warns(DeprecationWarning, match=r"metric\.config\.n_bootstrap"):
        assert metric.n_bootstrap == 20
