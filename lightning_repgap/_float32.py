"""Full float32 precision for the search's products: no TF32 (CUDA) or bf16 (oneDNN on CPU) in float32 matmuls.

The exact search's float32 error bounds (the winners' float64 re-score, the neighbour table's settle check, the
bf16 screen's float32 side) assume float32 products accumulated in float32. ``torch.set_float32_matmul_precision``
below ``"highest"`` (or ``torch.backends.cuda.matmul.allow_tf32``, or the per-backend ``fp32_precision`` of torch
>= 2.9) lets torch compute them with TF32 on CUDA, and on CPUs with bf16 units (AVX-512 BF16, AMX) with bf16 through
oneDNN: errors of about 1e-3 relative instead of 1e-7, far outside the bounds (on an Intel Xeon with AMX a 512 x 256
by 256 x 512 product moved by 0.19 under ``"medium"``, by 5e-5 at ``"highest"``), so an "exact" answer could be
wrong. :func:`full_float32` turns that off for the search and restores the caller's setting afterwards.

The flags are process-wide. Nested and concurrent scopes (other Python threads) share one setting: the first scope
in saves and sets it, the last one out restores it. Torch work in other threads during a search therefore runs at
full float32 precision too (slower, never less exact); the package's own searches never overlap with such work.

Torch >= 2.9 keeps two APIs over these flags: the legacy one (``set_float32_matmul_precision``, ``allow_tf32``) and
the per-backend ``fp32_precision``, and its legacy getters refuse a "mix" of the two. Where the legacy getter reads
(the caller used the legacy API, or none), the scope sets ``"highest"`` through it and, on exit, restores the legacy
setting and then each backend's value as they were: inside, either API reads full precision. Where it refuses (the
caller mixed the APIs already), the backends alone are set and restored; the legacy getters read full precision
inside and refuse again after. Caveat: a backend left at ``"none"`` (deferring to ``torch.backends.fp32_precision``)
is read, and so restored, as the value it defers to: the same precision, but no longer following a later change of
``torch.backends.fp32_precision``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["full_float32", "matmul_precisions", "no_autocast"]

_LOCK = threading.Lock()
_depth = 0
_saved: Any = None


def _precision_backends() -> list[Any]:
    """The per-backend matmul precision settings of torch >= 2.9 (CUDA's cuBLAS, oneDNN's), or ``[]`` before."""
    found = []
    for parent in (torch.backends.cuda, getattr(torch.backends, "mkldnn", None)):
        matmul = getattr(parent, "matmul", None)
        if matmul is not None and hasattr(matmul, "fp32_precision"):
            found.append(matmul)
    return found


def matmul_precisions() -> tuple[str, ...]:
    """The float32 matmul settings in force: each backend's ``fp32_precision`` (torch >= 2.9), else the global one.

    Full precision reads ``("ieee", "ieee")`` (``("highest",)`` before torch 2.9); ``"none"`` defers to
    ``torch.backends.fp32_precision``.

    Example:
        >>> len(matmul_precisions()) >= 1
        True

    """
    backends = _precision_backends()
    if backends:
        return tuple(str(b.fp32_precision) for b in backends)
    return (torch.get_float32_matmul_precision(),)


def _legacy_setting() -> str | None:
    """What ``torch.get_float32_matmul_precision`` reads, or ``None`` where it refuses (the two APIs were mixed)."""
    try:
        return torch.get_float32_matmul_precision()
    except RuntimeError:
        return None


def _enter() -> Any:
    backends = _precision_backends()
    if not backends:  # before torch 2.9: one setting (``allow_tf32`` is the same flag)
        before = torch.get_float32_matmul_precision()
        if before != "highest":
            torch.set_float32_matmul_precision("highest")
        return before
    saved = [(b, b.fp32_precision) for b in backends]
    legacy = _legacy_setting()
    if legacy == "highest" and all(value == "ieee" for _, value in saved):
        return None  # full precision already, and read so by either API
    if legacy is not None:
        # The legacy setter writes the legacy setting and every backend's: inside the scope both APIs read full
        # precision (``allow_tf32`` False, ``get_float32_matmul_precision`` "highest"). Writing the backends alone
        # would leave the legacy setting as it was: its getters would read it stale, or refuse the mix.
        torch.set_float32_matmul_precision("highest")
    else:  # the user mixed the APIs already (the legacy getter refuses): the backends alone, value by value
        for backend, value in saved:
            if value != "ieee":
                backend.fp32_precision = "ieee"
    return legacy, saved


def _restore(saved: Any) -> None:
    if saved is None:
        return
    if isinstance(saved, str):
        if saved != "highest":
            torch.set_float32_matmul_precision(saved)
        return
    legacy, values = saved
    if legacy is not None:
        torch.set_float32_matmul_precision(legacy)  # the legacy setting; then each backend's value as it was
    for backend, value in values:
        if backend.fp32_precision != value:
            backend.fp32_precision = value


@contextlib.contextmanager
def full_float32() -> Iterator[None]:
    """Run the block with float32 matmuls at full float32 precision; the caller's setting is restored on exit.

    Also on an exception, and only when the outermost of nested or concurrent scopes exits.

    Example:
        >>> before = torch.get_float32_matmul_precision()
        >>> torch.set_float32_matmul_precision("medium")
        >>> with full_float32():
        ...     set(matmul_precisions()) <= {"ieee", "highest"}
        True
        >>> torch.get_float32_matmul_precision()
        'medium'
        >>> torch.set_float32_matmul_precision(before)

    """
    global _depth, _saved
    with _LOCK:
        if _depth == 0:
            _saved = _enter()
        _depth += 1
    try:
        yield
    finally:
        with _LOCK:
            _depth -= 1
            if _depth == 0:
                saved, _saved = _saved, None
                _restore(saved)


#: Device types whose autocast state a search scope checks (the devices the search runs on).
_AUTOCAST_DEVICES = ("cpu", "cuda", "mps", "xpu")


def _autocast_enabled(device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))  # torch >= 2.4
    except (TypeError, RuntimeError):  # older torch: no device argument (CUDA's state), or an unknown device type
        if device_type == "cpu":
            return bool(torch.is_autocast_cpu_enabled())
        return device_type == "cuda" and bool(torch.is_autocast_enabled())


@contextlib.contextmanager
def no_autocast() -> Iterator[None]:
    """Run the block with autocast off on every device type where the caller turned it on (restored on exit).

    Under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (or CUDA's) torch computes float32 matmuls in bf16 or
    float16 and returns them so: outside the exact search's float32 bounds, and of another dtype than its float32
    tables (an index-put error). Autocast is thread-local: the caller's thread is the one to switch off.

    Example:
        >>> with torch.autocast("cpu", dtype=torch.bfloat16), no_autocast():
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.float32

    """
    with contextlib.ExitStack() as stack:
        for device_type in _AUTOCAST_DEVICES:
            if _autocast_enabled(device_type):
                stack.enter_context(torch.autocast(device_type, enabled=False))
        yield
