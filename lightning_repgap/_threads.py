"""Thread control in one place: torch's intra-op pool, numpy's BLAS (``threadpoolctl``) and FAISS' OpenMP.

An entry point (``nearest``, ``gap_curve``, ``approximate_gap``, the functional API) enters :func:`thread_scope`
once; everything below it reads the count back from torch (:func:`current_threads`) instead of passing
``num_threads`` down. The rules:

- ``num_threads`` (validated), else ``REPGAP_NUM_THREADS``; with neither, torch's setting is not touched (Lightning
  already divides the cores among the processes of a DDP job on one machine).
- FAISS always gets the count explicitly (its OpenMP runtime need not be torch's); it is restored on exit, before
  torch's, because the ``faiss-cpu`` and ``torch`` wheels can share one OpenMP runtime, and then
  ``faiss.omp_set_num_threads`` also changes ``torch.get_num_threads()``.
- A tile loop whose products run on numpy's OpenBLAS (:func:`blas_threads`) gives OpenBLAS the count and torch one
  thread meanwhile: OpenBLAS' worker threads spin between calls, and a second torch thread fighting them halves the
  speed.

Every setting is restored on exit, also on an exception, and nested scopes restore the outer scope's counts. The
counts are process-wide, so a scope must not overlap with torch work in other Python threads that expects another
count (the package never does that).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, Literal

import torch

from lightning_repgap._checks import _check_positive_int
from lightning_repgap._float32 import full_float32, no_autocast

__all__ = [
    "GemmLibrary",
    "blas_limit",
    "blas_pools",
    "blas_threads",
    "current_threads",
    "default_num_threads",
    "faiss_threads",
    "measurement_threads",
    "requested_num_threads",
    "thread_scope",
    "torch_threads",
]

#: A library that computes the CPU score tiles (see :mod:`lightning_repgap._gemm`).
GemmLibrary = Literal["torch", "numpy"]


def _env_num_threads() -> int | None:
    """``REPGAP_NUM_THREADS`` as a thread count (at least 1), or ``None`` when it is unset or empty."""
    env = os.environ.get("REPGAP_NUM_THREADS")
    if not env:
        return None
    try:
        return max(1, int(env))
    except ValueError as err:
        raise ValueError(f"REPGAP_NUM_THREADS must be an integer, got {env!r}.") from err


def default_num_threads() -> int:
    """Threads a search uses when the caller does not say.

    ``REPGAP_NUM_THREADS`` wins; otherwise torch's current intra-op thread count, which Lightning already divides
    among the processes of a DDP job on one machine (when ``OMP_NUM_THREADS`` is unset), so torch and FAISS
    never oversubscribe the cores together.

    Returns:
        The thread count, at least 1.

    Raises:
        ValueError: if ``REPGAP_NUM_THREADS`` is set but is not an integer.

    Example:
        >>> default_num_threads() >= 1
        True

    """
    env = _env_num_threads()
    return max(1, torch.get_num_threads()) if env is None else env


def requested_num_threads(num_threads: int | None) -> int | None:
    """The thread count explicitly asked for: ``num_threads``, else ``REPGAP_NUM_THREADS``, else ``None``.

    ``None`` means nobody asked, so torch keeps whatever the process (or Lightning) configured.

    Args:
        num_threads: explicit thread count (``>= 1``), or ``None``.

    Returns:
        The validated count, or ``None``.

    Raises:
        ValueError: if ``num_threads`` is not an integer ``>= 1``, or ``REPGAP_NUM_THREADS`` is not an integer.

    Example:
        >>> requested_num_threads(3)
        3

    """
    if num_threads is not None:
        return _check_positive_int(num_threads, "num_threads")
    return _env_num_threads()


def current_threads() -> int:
    """The count the running scope gave torch (torch's own count outside any scope); at least 1."""
    return max(1, torch.get_num_threads())


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with torch's intra-op thread count set to ``n`` (``None``: untouched), restored on exit.

    Example:
        >>> before = torch.get_num_threads()
        >>> with torch_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True

    """
    before = torch.get_num_threads()
    if n is None or n == before:
        # Nothing to change: ``set_num_threads`` may rebuild thread pools, so do not call it needlessly.
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """Run the block with FAISS' OpenMP thread count set to ``n``, restored on exit (imports FAISS)."""
    import faiss

    before = faiss.omp_get_max_threads()
    if n == before:
        yield
        return
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@contextlib.contextmanager
def _scope(requested: int | None, faiss: bool) -> Iterator[int]:
    # torch's setting is entered first, so that it is restored last (FAISS' may share torch's OpenMP runtime).
    # The float32 products run at full float32 precision (no TF32 / bf16, no autocast in the caller's thread): the
    # search's error bounds assume it.
    with full_float32(), no_autocast(), torch_threads(requested):
        count = current_threads()
        with faiss_threads(count) if faiss else contextlib.nullcontext():
            yield count


def thread_scope(num_threads: int | None, *, faiss: bool = False) -> contextlib.AbstractContextManager[int]:
    """The one thread setting of a measurement: torch (and, with ``faiss``, FAISS) get the requested count.

    The scope also runs torch's float32 matmuls at full float32 precision
    (:func:`~lightning_repgap._float32.full_float32`: no TF32 or bf16 under a lowered
    ``torch.set_float32_matmul_precision``; :func:`~lightning_repgap._float32.no_autocast`: none under the caller's
    ``torch.autocast``), restored on exit like the counts.

    ``num_threads`` is validated when this is called, before any data is copied; the settings are applied when the
    ``with`` block is entered and restored when it exits. The block receives the count in force.

    Args:
        num_threads: explicit thread count (``>= 1``), else ``REPGAP_NUM_THREADS``, else torch's current count
            (then left untouched).
        faiss: also set FAISS' OpenMP count (imports FAISS); only engines that call FAISS ask for it.

    Returns:
        A context manager yielding the thread count.

    Raises:
        ValueError: if ``num_threads`` is not an integer ``>= 1``, or ``REPGAP_NUM_THREADS`` is not an integer.

    Example:
        >>> before = torch.get_num_threads()
        >>> with thread_scope(1) as count:
        ...     count, torch.get_num_threads()
        (1, 1)
        >>> torch.get_num_threads() == before
        True

    """
    return _scope(requested_num_threads(num_threads), faiss)


def blas_pools() -> Any:
    """``threadpoolctl`` controller of the pthreads-based BLAS libraries loaded (numpy's OpenBLAS), or ``None``.

    OpenMP-threaded BLAS builds (FAISS' bundled OpenBLAS) are left out on purpose: resizing them resizes an OpenMP
    runtime that torch may share. With no such library, or no ``threadpoolctl``, numpy's threads cannot be set.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    pools = ThreadpoolController().select(threading_layer="pthreads")
    return pools if pools.lib_controllers else None


@contextlib.contextmanager
def blas_limit(count: int) -> Iterator[None]:
    """Run the block with numpy's BLAS (the pthreads pools of :func:`blas_pools`) at ``count`` threads.

    torch's count is untouched; the pools' counts are restored on exit.

    Example:
        >>> before = torch.get_num_threads()
        >>> with blas_limit(1):
        ...     torch.get_num_threads() == before
        True

    """
    pools = blas_pools()
    with contextlib.nullcontext() if pools is None else pools.limit(limits=count):
        yield


@contextlib.contextmanager
def measurement_threads(num_threads: int | None) -> Iterator[int]:
    """The thread settings of a whole measurement: :func:`thread_scope`'s, with numpy's BLAS at the same count.

    numpy's BLAS runs at the measurement's count throughout, not only in the search's tiles: left at its default,
    one thread per core, the fits' small products spent about 8x their CPU time on OpenBLAS' threads, and under DDP
    every rank's pool competed for the cores of the other ranks.

    Example:
        >>> with measurement_threads(1) as count:
        ...     count, torch.get_num_threads()
        (1, 1)

    """
    with thread_scope(num_threads) as count, blas_limit(count):
        yield count


@contextlib.contextmanager
def blas_threads(library: GemmLibrary, threads: int | None = None) -> Iterator[None]:
    """Thread settings for a tile loop: with ``"numpy"``, OpenBLAS gets ``threads`` and torch one thread.

    ``threads`` defaults to torch's current count (the scope's). Both are restored on exit.
    """
    if library == "torch":
        yield
        return
    count = current_threads() if threads is None else threads
    pools = blas_pools()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.nullcontext() if pools is None else pools.limit(limits=count):
            yield
    finally:
        torch.set_num_threads(before)
