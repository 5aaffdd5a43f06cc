"""IVF building blocks as torch GEMMs: k-means, assignment to the nearest centroids, and the list scan.

FAISS scans an inverted list once per query that probes it (memory-bound); here every matrix-product part of the
IVF (training the coarse quantizer, assigning bank points and queries to lists, scanning lists) is a GEMM.
Used by the IVF engine in ``_ann``.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import math

import numpy as np
import torch

from lightning_repgap._threads import torch_threads

__all__ = ["ROW_TILE", "TorchLists", "assign_tiles", "cluster_sums", "kmeans"]

#: Rows per tile of the torch centroid GEMMs (bounds the score buffer to ``ROW_TILE * nlist`` floats).
ROW_TILE = 8192
# Torch list scan: the score tile of one GEMM.
_SCORE_ROWS = 2048
_SCORE_COLS = 8192
_KMEANS_ITERS = 10


def assign_tiles(x32: np.ndarray, centroids: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` nearest centroids of each row (ascending distance), as tiled torch GEMMs."""
    neg_half = -0.5 * (centroids * centroids).sum(dim=1)
    x = torch.from_numpy(x32)
    out = torch.empty((x.shape[0], k), dtype=torch.int64)
    for i0 in range(0, x.shape[0], ROW_TILE):
        scores = torch.addmm(neg_half, x[i0 : i0 + ROW_TILE], centroids.T)
        out[i0 : i0 + ROW_TILE] = scores.argmax(dim=1, keepdim=True) if k == 1 else scores.topk(k, dim=1).indices
    return out


def kmeans(x32: np.ndarray, k: int, rng: np.random.Generator) -> torch.Tensor:
    """Lloyd's k-means with torch GEMMs; empty clusters are re-seeded on random sample points."""
    x = torch.from_numpy(x32)
    centroids = x[torch.from_numpy(rng.choice(x.shape[0], k, replace=False))].clone()
    for _ in range(_KMEANS_ITERS):
        assign = assign_tiles(x32, centroids, 1)[:, 0]
        counts = torch.bincount(assign, minlength=k)
        sums = cluster_sums(x, assign, k)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None].to(sums.dtype)
        empty = torch.nonzero(~filled).flatten()
        if empty.numel():
            centroids[empty] = x[torch.from_numpy(rng.choice(x.shape[0], empty.numel(), replace=False))]
    return centroids


def cluster_sums(x: torch.Tensor, assign: torch.Tensor, k: int) -> torch.Tensor:
    """``(k, D)`` sums of the rows of ``x`` per cluster, as one-hot GEMMs over ``ROW_TILE`` rows at a time.

    ``index_add_`` is an order of magnitude slower on the CPU; a one-hot matrix of all rows at once would hold
    ``n x k`` floats (640 MB for the 101,000 training points and 1,583 lists of a 1e6 bank with the FAISS scan).
    """
    sums = torch.zeros((k, x.shape[1]), dtype=x.dtype)
    for i0 in range(0, x.shape[0], ROW_TILE):
        part = assign[i0 : i0 + ROW_TILE]
        one_hot = torch.zeros((part.shape[0], k), dtype=x.dtype)
        one_hot[torch.arange(part.shape[0]), part] = 1.0
        sums += one_hot.T @ x[i0 : i0 + ROW_TILE]
    return sums


class TorchLists:
    """Inverted lists as one list-sorted float32 array, scanned with one GEMM per list.

    FAISS scans a list once per query that probes it (memory-bound, see docs/performance.md). Here the (query, list)
    pairs are sorted by list, and each list meets all the queries that probe it in one matrix product.

    The lists are small, so the products are many and small: run through torch's intra-op thread pool, each
    would pay a fork/join barrier, which costs milliseconds once the cores are shared with other processes. So
    the lists are split among ``threads`` Python threads, each running single-threaded torch calls (which
    release the GIL) on its own lists.
    """

    def __init__(self, lists32: np.ndarray, bounds: np.ndarray, positions: np.ndarray, threads: int) -> None:
        self.x = torch.from_numpy(lists32)
        self.neg_half = -0.5 * (self.x * self.x).sum(dim=1)
        self.bounds = bounds.tolist()
        self.positions = positions
        self.threads = threads

    def search(self, queries32: np.ndarray, probes: np.ndarray) -> np.ndarray:
        """Block position of the nearest point in the probed lists of each query (``-1`` if they are empty)."""
        q = torch.from_numpy(queries32)
        n_q, n_p = probes.shape
        n_lists = len(self.bounds) - 1
        flat = torch.from_numpy(probes).reshape(-1)
        order = torch.argsort(flat, stable=True)
        owner = order // n_p  # query of each (query, list) pair, pairs sorted by list
        pairs = torch.bincount(flat, minlength=n_lists)
        pair_start = [0, *torch.cumsum(pairs, 0).tolist()]
        pair_value = torch.full((flat.numel(),), -math.inf)
        pair_col = torch.zeros(flat.numel(), dtype=torch.int64)  # column within the list, then within the block
        # Split the lists into contiguous groups of about equal work (pairs x list length), one per thread.
        work = np.cumsum(pairs.numpy() * np.diff(np.asarray(self.bounds)))
        cuts = np.searchsorted(work, work[-1] * np.arange(1, self.threads) / self.threads) if work[-1] else []
        edges = [0, *(int(c) + 1 for c in cuts), n_lists]

        def scan(first: int, last: int) -> None:
            for lst in range(first, last):
                a, b = self.bounds[lst], self.bounds[lst + 1]
                for r0 in range(pair_start[lst], pair_start[lst + 1], _SCORE_ROWS):
                    r1 = min(pair_start[lst + 1], r0 + _SCORE_ROWS)
                    q_rows = q[owner[r0:r1]]
                    for c0 in range(a, b, _SCORE_COLS):
                        c1 = min(b, c0 + _SCORE_COLS)
                        value, col = torch.addmm(self.neg_half[c0:c1], q_rows, self.x[c0:c1].T).max(dim=1)
                        if c0 > a:  # a list wider than one tile: keep the better of the tiles
                            better = value > pair_value[r0:r1]
                            value = torch.where(better, value, pair_value[r0:r1])
                            col = torch.where(better, col + (c0 - a), pair_col[r0:r1])
                        pair_value[r0:r1] = value
                        pair_col[r0:r1] = col

        with torch_threads(1), concurrent.futures.ThreadPoolExecutor(self.threads) as pool:
            jobs = [pool.submit(scan, lo, hi) for lo, hi in itertools.pairwise(edges) if hi > lo]
            for job in jobs:
                job.result()
        pair_col += torch.tensor(self.bounds[:-1])[flat[order]]
        best = torch.full((n_q,), -math.inf).scatter_reduce(0, owner, pair_value, "amax")
        won = (pair_value == best[owner]) & (pair_value > -math.inf)
        arg = torch.full((n_q,), -1, dtype=torch.int64)
        arg[owner[won]] = pair_col[won]
        out = np.full(n_q, -1, dtype=np.int64)
        found = (arg >= 0).numpy()
        out[found] = self.positions[arg.numpy()[found]]
        return out
