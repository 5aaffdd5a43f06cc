"""Figures: the log-log gap curve with its fitted law, and the dimension over training. matplotlib is optional."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lightning_repgap._imports import pyplot
from lightning_repgap.dimension import DimensionFit
from lightning_repgap.gap import GapCurve


def plot_gap_curve(
    curve: GapCurve, *, fit: DimensionFit | None = None, ax: Any = None, label: str | None = None
) -> tuple[Any, Any]:
    """Plot :math:`G(n)` against ``n`` on log-log axes, with the fitted power law when ``fit`` is given.

    Args:
        curve: the measured curve.
        fit: the law fit over ``fit.fit_sizes``, drawn dashed.
        ax: axes to draw on; a new figure otherwise.
        label: legend label of the measured curve.

    Returns:
        ``(fig, ax)``.

    Example:
        >>> import numpy as np
        >>> from lightning_repgap.gap import gap_curve
        >>> rng = np.random.default_rng(0)
        >>> fig, ax = plot_gap_curve(gap_curve(rng.random((1024, 2)), rng.random((128, 2))))
        >>> ax.get_xscale(), ax.get_yscale()
        ('log', 'log')

    """
    plt = pyplot()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 4))
    line = ax.plot(curve.sizes, curve.gaps, marker="o", label=label or "G(n) held-out")[0]
    if curve.train_gaps is not None:
        ax.plot(curve.sizes, curve.train_gaps, marker=".", ls=":", color=line.get_color(), label="G(n) train")
    if fit is not None:
        xs = fit.fit_sizes.astype(np.float64)
        ax.plot(
            xs,
            np.exp(fit.intercept + fit.slope * np.log(xs)),
            ls="--",
            color="k",
            label=f"fit: d={fit.dim:.2f} [{fit.dim_low:.2f}, {fit.dim_high:.2f}], R²={fit.r2:.3f}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("bank size n")
    ax.set_ylabel("representation gap G(n)")
    ax.legend(fontsize="small")
    return fig, ax


def plot_dimension_history(
    steps: Sequence[float],
    dims: Sequence[float],
    *,
    low: Sequence[float] | None = None,
    high: Sequence[float] | None = None,
    ax: Any = None,
    label: str = "gap dimension",
) -> tuple[Any, Any]:
    """Plot the estimated dimension (with its interval when given) against training step or epoch.

    Returns:
        ``(fig, ax)``.

    Example:
        >>> fig, ax = plot_dimension_history([0, 1, 2], [8.0, 6.5, 6.0], low=[7, 6, 5.5], high=[9, 7, 6.5])
        >>> ax.get_ylabel()
        'dimension'

    """
    plt = pyplot()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(5, 4))
    ax.plot(steps, dims, marker="o", label=label)
    if low is not None and high is not None:
        ax.fill_between(steps, low, high, alpha=0.25)
    ax.set_xlabel("epoch")
    ax.set_ylabel("dimension")
    ax.legend(fontsize="small")
    return fig, ax


def plot_layer_profile(
    layers: Sequence[str],
    gap_norm: Sequence[float],
    dims: Sequence[float],
    *,
    dim_low: Sequence[float] | None = None,
    dim_high: Sequence[float] | None = None,
    title: str | None = None,
) -> tuple[Any, Any]:
    """Normalised gap and gap dimension through a network, one point per watched layer (input to output).

    The intrinsic-dimension profile of Ansuini et al. (2019), with the gap next to it: where the representation
    compresses, the dimension drops and held-out points move closer to the bank.

    Returns:
        ``(fig, (ax_gap, ax_dim))``.

    Example:
        >>> fig, (ax_gap, ax_dim) = plot_layer_profile(["conv1", "conv2", "fc"], [0.2, 0.1, 0.05], [12, 8, 5])
        >>> [t.get_text() for t in ax_dim.get_xticklabels()]
        ['conv1', 'conv2', 'fc']

    """
    plt = pyplot()
    if not len(layers) == len(gap_norm) == len(dims):
        raise ValueError(
            f"`layers`, `gap_norm` and `dims` must have one entry per layer, got {len(layers)}, {len(gap_norm)}, "
            f"{len(dims)}."
        )
    fig, (ax_gap, ax_dim) = plt.subplots(2, 1, figsize=(max(4, 1.2 * len(layers)), 5), sharex=True)
    pos = np.arange(len(layers))
    ax_gap.plot(pos, gap_norm, marker="o")
    ax_gap.set_yscale("log")
    ax_gap.set_ylabel("gap_norm")
    ax_dim.plot(pos, dims, marker="o", color="C1")
    if dim_low is not None and dim_high is not None:
        ax_dim.fill_between(pos, dim_low, dim_high, color="C1", alpha=0.25)
    ax_dim.set_ylabel("gap dimension")
    ax_dim.set_xticks(pos, list(layers), rotation=30, ha="right")
    if title:
        ax_gap.set_title(title)
    fig.tight_layout()
    return fig, (ax_gap, ax_dim)


__all__ = ["plot_dimension_history", "plot_gap_curve", "plot_layer_profile"]
