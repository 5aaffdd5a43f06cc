"""EXPLORATORY: one candidate new signal for the stopping rule, recorded on a small set of supervised runs.

Not part of the validation study and not used by :class:`~lightning_repgap.RepresentationGapEarlyStopping`. The
cross-validated search of :mod:`studies.stopping_cv` found that the recorded label-free keys cannot separate the
slow memorisation of noisy labels by MLPs from the drift of clean runs. This script records one more cheap signal the
callback could log, to see whether it separates them:

``knn_label_noise``: the fraction of the bank's training representations whose 5 nearest other bank
representations (cosine) vote, by majority, for a label other than the point's own training label. It reads the
*training* labels of the bank (which the training loop has anyway), never validation labels. The idea (deep k-NN
noisy-label detection, Bahri et al. 2020): before a network memorises, a mislabelled training point sits among
points of its true class, so the vote estimates the label-noise rate (about 0.2 at 20 % noise); while it memorises,
mislabelled points move to the cluster of their wrong label and the fraction falls. With clean labels it falls to
about 0 early and stays there. So an *absolute* fall of this fraction after the warm-up is evidence of memorisation
that clean runs cannot produce, whatever their architecture or data set.

    python -m studies.stopping_signal studies/stopping_signal.json   # 12 runs, seed 30 (never used by any plan)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studies import stopping_record

#: Neighbours in the vote.
K = 5
#: The exploratory runs: digits and glyphs-c x MLP and CNN x 0 / 20 / 40 % label noise, seed 30 (a seed no plan of
#: :mod:`studies.stopping_record` uses), width 128, 600 training images.
CONFIGS = [
    {
        "regime": "supervised",
        "dataset": dataset,
        "arch": arch,
        "noise": noise,
        "seed": 30,
        "width": 128,
        "n_train": 600,
        "weight_decay": 0.0,
        "split": "signal",
    }
    for dataset in ("digits", "glyphs-c")
    for arch in ("mlp", "cnn")
    for noise in (0.0, 0.2, 0.4)
]


def knn_label_noise(bank: np.ndarray, labels: np.ndarray, k: int = K) -> float:
    """Fraction of bank points whose ``k`` nearest other bank points (cosine) vote for another label.

    Args:
        bank: ``(n, d)`` representations of training inputs.
        labels: ``(n,)`` their training labels (integers).
        k: neighbours in the vote (ties go to the smallest label).

    Returns:
        The disagreeing fraction, in ``[0, 1]``.

    Example:
        >>> bank = np.array([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2], [0.0, 1.0], [0.1, 0.9], [0.2, 0.8]])
        >>> knn_label_noise(bank, np.array([0, 0, 1, 1, 1, 1]), k=2)
        0.16666666666666666

    """
    b = bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)
    sim = b @ b.T
    np.fill_diagonal(sim, -np.inf)  # leave one out
    nn_idx = np.argsort(-sim, axis=1)[:, :k]
    votes = np.zeros((len(b), int(labels.max()) + 1))
    np.add.at(votes, (np.arange(len(b))[:, None], labels[nn_idx]), 1.0)
    return float((votes.argmax(1) != labels).mean())


def _extra(bank: np.ndarray, bank_labels: np.ndarray, _val: np.ndarray) -> dict[str, float]:
    return {"knn_label_noise": knn_label_noise(bank, bank_labels)}


def record(epochs: int = 40) -> dict[str, Any]:
    """Train every run of :data:`CONFIGS` and record the study's keys plus ``knn_label_noise`` every epoch."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    try:
        runs = []
        for i, cfg in enumerate(CONFIGS):
            runs.append(stopping_record.run_supervised(cfg, epochs, extra=_extra))
            print(f"  [{i + 1}/{len(CONFIGS)}] {cfg['dataset']} {cfg['arch']} noise {cfg['noise']}", file=sys.stderr)
    finally:
        torch.set_num_threads(threads)
    return {"exploratory": True, "k": K, "seconds": time.perf_counter() - t0, "runs": runs}


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "stopping_signal.json"
    rec = record()
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, separators=(",", ":")))
    tmp.replace(out)
    print(f"wrote {out} ({len(rec['runs'])} runs, {rec['seconds']:.0f} s)")
