"""Synthetic snapshot directories for the ``repgap`` CLI tests, laid out as ``RepresentationGapCallback`` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lightning_repgap.functional import representation_gap
from lightning_repgap.manifolds import embed, sample_torus
from lightning_repgap.snapshot import write_snapshot

#: The callback's ``metric_config()`` keys, with a small bootstrap to keep tests fast.
CONFIG: dict[str, Any] = {"min_size": 16, "seed": 0, "fit_min_size": 64, "n_bootstrap": 20, "calibrate": True}


def torus_arrays(
    d: int, *, n: int = 512, m: int = 128, ambient: int = 16, seed: int = 0, labels: bool = True
) -> dict[str, np.ndarray]:
    """Bank, queries and unseen training queries on a flat ``d``-torus in ``R^ambient``, float32, with labels."""
    rng = np.random.default_rng(seed)
    pts = embed(sample_torus(n + 2 * m, d, rng), ambient, rng).astype(np.float32)
    arrays = {"reference": pts[:n], "queries": pts[n : n + m], "train_queries": pts[n + m :]}
    if labels:
        lab = (pts[:, 0] > 0).astype(np.int64)
        arrays["reference_labels"] = lab[:n]
        arrays["query_labels"] = lab[n : n + m]
    arrays["reference_index"] = np.arange(n)
    arrays["query_index"] = np.arange(m)
    arrays["train_index"] = np.arange(n, n + m)
    return arrays


def logged_metrics(arrays: dict[str, np.ndarray], config: dict[str, Any]) -> dict[str, float]:
    """What the callback would log for these (float32) arrays: ``representation_gap`` with the same config."""
    labels = "reference_labels" in arrays
    out = representation_gap(
        arrays["reference"],
        arrays["queries"],
        train_queries=arrays.get("train_queries"),
        reference_labels=arrays["reference_labels"] if labels else None,
        query_labels=arrays["query_labels"] if labels else None,
        **config,
    )
    return {k: float(v) for k, v in out.items()}


def write_run(
    root: Path,
    *,
    epochs: tuple[int, ...] = (0, 1, 2),
    layers: tuple[str, ...] = ("backbone",),
    config: dict[str, Any] | None = None,
    dtype: str = "float32",
    **kwargs: Any,
) -> dict[str, dict[str, float]]:
    """Write one snapshot per (epoch, layer), named like the callback's; return ``{name: logged metrics}``.

    Later epochs use a lower-dimensional torus (the representation "compresses"), so rows differ.
    """
    config = dict(CONFIG if config is None else config)
    expected = {}
    for epoch in epochs:
        for j, layer in enumerate(layers):
            arrays = torus_arrays(max(1, 3 - epoch) + j, seed=10 * epoch + j, **kwargs)
            metrics = logged_metrics(arrays, {k: v for k, v in config.items() if k != "unknown_option"})
            step = 100 * (epoch + 1)
            name = f"epoch={epoch:04d}-step={step:08d}-{layer}"
            metadata = {
                "epoch": epoch,
                "step": step,
                "layer": layer,
                "metrics": metrics,
                "config": config,
                "probe_sizes": {"reference": len(arrays["reference"]), "queries": len(arrays["queries"])},
            }
            write_snapshot(root, name, arrays, metadata, dtype=dtype)
            expected[name] = metrics
    return expected
