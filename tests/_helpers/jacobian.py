"""The Jacobian rank of a suite cloud's sampler with respect to its per-point draws (the truth check of the splits)."""

from __future__ import annotations

from typing import Any

import numpy as np

# Draws that are continuous functions of their parameters (a replay may move them by eps); every other draw (integers,
# choices, permutations) is replayed unchanged.
CONTINUOUS = (
    "random",
    "uniform",
    "standard_normal",
    "normal",
    "beta",
    "gamma",
    "laplace",
    "logistic",
    "exponential",
    "wald",
)


class Replay:
    """A stand-in for a generator: records a sampler's draws, then replays them with one coordinate moved.

    On the first pass (``record`` empty) every draw comes from a real generator and is kept; on a replay the same
    draws come back in order, the ``which``-th continuous parameter of every point moved by ``eps``. A sampler's
    output as a function of its per-point draws can so be differentiated without knowing its parametrisation.
    """

    def __init__(self, record: list[tuple[str, np.ndarray]], n: int, which: int | None = None, eps: float = 0.0):
        self.rng = np.random.default_rng(3)
        self.record, self.replay = record, bool(record)
        self.n, self.which, self.eps, self.i, self.seen = n, which, eps, 0, 0

    def __getattr__(self, name: str) -> Any:
        def draw(*args: Any, **kwargs: Any) -> np.ndarray:
            if not self.replay:
                self.record.append((name, np.asarray(getattr(self.rng, name)(*args, **kwargs))))
            kind, value = self.record[self.i]
            assert kind == name
            self.i += 1
            value = value.copy()
            if name in CONTINUOUS and value.shape[:1] == (self.n,):
                flat = value.reshape(self.n, -1)
                if self.which is not None and self.seen <= self.which < self.seen + flat.shape[1]:
                    flat[:, self.which - self.seen] += self.eps
                self.seen += flat.shape[1]
                value = flat.reshape(value.shape)
            return value

        return draw


def sampler_ranks(cloud: Any, n: int = 40, eps: float = 1e-6) -> np.ndarray:
    """Per point, the rank of ``cloud``'s sampler's Jacobian with respect to all its per-point continuous draws.

    A collapsed direction or an extra one shows as a singular value near 0 or one too many, so a cloud has its stated
    dimension where every rank equals ``cloud.dim`` (samplers that reject draws cannot be replayed this way).
    """
    sampler = cloud.make(cloud.seed)
    record: list[tuple[str, np.ndarray]] = []
    counter = Replay(record, n)
    base = sampler(n, counter)
    params = counter.seen
    assert params >= cloud.dim, (cloud.name, params)
    cols = [(sampler(n, Replay(record, n, j, eps)) - base) / eps for j in range(params)]
    sv = np.linalg.svd(np.stack(cols, axis=2), compute_uv=False)
    return (sv > 1e-5 * sv[:, :1]).sum(1)
