"""Shared fixtures: seeded generators and small reference implementations in plain numpy."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_repgap._faults import STRICT_ENV

# The slowest modules (each 1-2 minutes on a 2-core host: the diffusion example's run, the quick validation study,
# the examples, the gloo suites) go first, so that scripts/test.sh's two workers (one module at a time) do not end
# with one of them running alone while the other worker idles. The rest keeps its collection order.
SLOW_MODULES_FIRST = (
    "test_diffusion_example.py",
    "test_studies.py",
    "test_examples.py",
    "test_callback_gloo.py",
    "test_callback.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the slow modules' tests to the front, in :data:`SLOW_MODULES_FIRST` order (a stable sort)."""
    rank = {name: i for i, name in enumerate(SLOW_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


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
