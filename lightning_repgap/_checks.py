"""Input validation shared by the functional API and the Metric.

Every check names the argument and echoes what it received, so that a user can fix the call without reading the
source. Conversion happens here too, once, at the boundary: everything past this module works on float64 or
float32 numpy arrays.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch

from lightning_repgap._faults import NonFiniteRepresentationError, TooFewFitSizesError

__all__ = [
    "ArrayLike",
    "_check_choice",
    "_check_fit_sizes",
    "_check_gap_sets",
    "_check_labels",
    "_check_positive_int",
    "_check_representations",
    "_check_same_dim",
    "_to_numpy",
    "check_sizes",
]

ArrayLike = np.ndarray | torch.Tensor


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """Convert a tensor or array to numpy on the CPU, without copying when it is already one."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise TypeError(f"`{name}` must be a real floating tensor, got dtype {x.dtype}.")
        x = x.detach()
        if x.dtype == torch.bfloat16:
            # numpy has no bfloat16; widen it before leaving torch (float16 has a numpy twin and stays half size).
            x = x.to(torch.float32)
        return x.cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"`{name}` must be a numpy array or a torch tensor, got {type(x).__name__}.")


_KEPT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _check_representations(x: Any, name: str, *, min_points: int = 2) -> np.ndarray:
    """Validate a set of representations and return it as a 2-D float16, float32 or float64 numpy array.

    Args:
        x: ``(n, D)`` array or tensor of floating point values.
        name: argument name used in error messages.
        min_points: smallest admissible ``n``.

    Returns:
        The same values as a C-contiguous ``(n, D)`` array: float16, float32 and float64 keep their dtype (no copy
        when already contiguous), any other floating dtype becomes float32. A float16 bank (e.g. a snapshot) is
        therefore not widened here: the search centres it into its float32 buffer chunk by chunk, so it never
        exists in memory as both float16 and float32, and large banks are never duplicated in float64.

    Raises:
        TypeError: if ``x`` is not a floating point array or tensor.
        ValueError: if ``x`` is not 2-D, has fewer than ``min_points`` rows, no columns, or non-finite values.

    """
    arr = _to_numpy(x, name)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"`{name}` must hold floating point values, got dtype {arr.dtype}.")
    if arr.ndim != 2:
        raise ValueError(
            f"`{name}` must be 2-D (n_points, dim), got shape {tuple(arr.shape)}."
            " Pool or flatten the representation first."
        )
    if arr.shape[1] == 0:
        raise ValueError(f"`{name}` has zero features, got shape {tuple(arr.shape)}.")
    if arr.shape[0] < min_points:
        raise ValueError(
            f"`{name}` needs at least {min_points} point{'s' if min_points > 1 else ''}, got {arr.shape[0]} (shape "
            f"{tuple(arr.shape)})."
        )
    out = np.ascontiguousarray(arr, dtype=arr.dtype if arr.dtype in _KEPT_DTYPES else np.float32)
    if not _all_finite(out):
        bad_rows = np.flatnonzero(~np.isfinite(out).all(axis=1))
        raise NonFiniteRepresentationError(
            f"`{name}` contains NaN or Inf in {bad_rows.size} of {arr.shape[0]} rows (first: row {int(bad_rows[0])})."
        )
    return out


# Rows checked per step by ``_all_finite``: a 4 MiB boolean temporary for D = 256 instead of one of the bank's size.
_FINITE_CHUNK = 16384


def _all_finite(x: np.ndarray) -> bool:
    """``np.isfinite(x).all()`` chunk by chunk: a 1e6 x 256 bank would otherwise need a 256 MB boolean array."""
    return all(bool(np.isfinite(x[i0 : i0 + _FINITE_CHUNK]).all()) for i0 in range(0, x.shape[0], _FINITE_CHUNK))


def _check_same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise if two sets of representations live in spaces of different dimension."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same number of features, got {a.shape[1]} and {b.shape[1]}."
        )


def _check_labels(labels: Any, n: int, name: str) -> np.ndarray:
    """Validate a label vector of length ``n`` and return it as a 1-D numpy array."""
    arr = _to_numpy(labels, name)
    arr = np.asarray(arr).reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"`{name}` must be a vector of {n} labels, got shape {tuple(arr.shape)}.")
    return arr


def _check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Raise unless ``value`` is an integer ``>= minimum``; return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """Raise unless ``value`` is one of ``choices`` (derive them from the ``Literal`` with ``typing.get_args``).

    Returns:
        ``value`` itself.

    """
    if not isinstance(value, Hashable) or value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}; got {value!r}.")
    return value


def _check_fit_sizes(sizes: np.ndarray, fit_min_size: int) -> np.ndarray:
    """The mask of ``sizes >= fit_min_size``, which must hold at least 3 sizes for the gap-law fit.

    Raises:
        TooFewFitSizesError: (a ``ValueError``) with fewer than 3, carrying ``sizes`` and ``fit_min_size``.

    """
    use = sizes >= fit_min_size
    if use.sum() < 3:
        listed = sizes.astype(int).tolist()
        raise TooFewFitSizesError(
            f"The gap-law fit needs at least 3 bank sizes >= fit_min_size={fit_min_size}, got sizes {listed}: use a "
            "larger bank, a smaller `fit_min_size` or a finer grid.",
            sizes=listed,
            fit_min_size=fit_min_size,
        )
    return use


def _check_gap_sets(
    reference: Any, queries: Any, train_queries: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate a bank, its queries and optional training queries: each 2-D, floating, finite, all the same width.

    Returns:
        ``(reference, queries, train_queries)`` as arrays (see :func:`_check_representations`); the bank needs at
        least 2 points, the query sets at least 1.

    """
    ref = _check_representations(reference, "reference")
    qs = _check_representations(queries, "queries", min_points=1)
    _check_same_dim(ref, qs, "reference", "queries")
    tq = None
    if train_queries is not None:
        tq = _check_representations(train_queries, "train_queries", min_points=1)
        _check_same_dim(ref, tq, "reference", "train_queries")
    return ref, qs, tq


def check_sizes(sizes: Any, n_max: int) -> np.ndarray:
    """``sizes`` as int64 if they are strictly increasing integers in ``[1, n_max]``; a ``ValueError`` otherwise.

    Args:
        sizes: bank sizes (integers, or floats holding integers).
        n_max: bank size.

    Returns:
        The sizes, int64 ``(S,)``.

    Example:
        >>> check_sizes([16, 32.0], 100).tolist()
        [16, 32]

    """
    arr = np.asarray(sizes).reshape(-1)
    numeric = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    if not (arr.size and numeric and np.all(arr == np.round(arr))) or (np.diff(arr) <= 0).any() or arr[0] < 1:
        raise ValueError(f"`sizes` must be strictly increasing integers in [1, {n_max}], got {np.asarray(sizes)}.")
    if arr[-1] > n_max:
        raise ValueError(
            f"`sizes` must be strictly increasing integers in [1, {n_max}] (the bank has only {n_max} points),"
            f" got {np.asarray(sizes)}."
        )
    return arr.astype(np.int64)
