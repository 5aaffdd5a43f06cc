"""Shared fixtures: seeded generators and small reference implementations in plain numpy."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_repgap._faults import STRICT_ENV


@pytest.fixture(autouse=True)
def _strict_faults(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs the callback in strict mode (a survived fault re-raises), except the fault-injection suite."""
    if request.node.get_closest_marker("faults") is None:
        monkeypatch.setenv(STRICT_ENV, "1")
    else:
        monkeypatch.delenv(STRICT_ENV, raising=False)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def brute_force_dist_sq(reference: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """All squared distances in float64, computed as ||q - r||^2 directly (no norm expansion)."""
    ref = np.asarray(reference, dtype=np.float64)
    qs = np.asarray(queries, dtype=np.float64)
    return ((qs[:, None, :] - ref[None, :, :]) ** 2).sum(axis=-1)


def brute_force_gap_curve(reference: np.ndarray, queries: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """G(n) for each n in sizes, for the bank in the order given."""
    d = brute_force_dist_sq(reference, queries)
    return np.array([d[:, :n].min(axis=1).mean() for n in sizes])
