"""The cross-validated search over stopping-rule families (studies/stopping_cv.py) and the exploratory signal."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightning_repgap.stopping import DEFAULT_MONITOR, DEFAULT_PATIENCE, KEY_DEFAULTS, replay
from studies import stopping as study
from studies import stopping_cv as cv
from studies.stopping_signal import knn_label_noise

UNTOUCHED = study.load_runs(study.UNTOUCHED_FILE) if study.UNTOUCHED_FILE.exists() else []
needs_runs = pytest.mark.skipif(not UNTOUCHED, reason="studies/stopping_fresh2.json is not in this checkout")


@needs_runs
@pytest.mark.parametrize(
    ("keys", "params", "patience"),
    [
        (DEFAULT_MONITOR, [KEY_DEFAULTS[k] for k in DEFAULT_MONITOR], DEFAULT_PATIENCE),
        (("gap_norm", "gap_ratio"), [(0.3, 0.05, 4), (0.15, 0.15, 1)], 3),
        (("dim_mle",), [(0.1, 0.1, 0)], 1),
    ],
)
def test_vectorised_band_rule_is_the_shipped_replay_on_recorded_runs(keys, params, patience):
    for regime in study.REGIMES:
        runs = [r for r in UNTOUCHED if r["regime"] == regime]
        kept, stopped = cv.rise_rule([cv._matrix(runs, k) for k in keys], params, patience)
        for run, k, s in zip(runs, kept, stopped, strict=True):
            best, stop = replay(
                [run["epochs"][key] for key in keys],
                tolerance=[p[0] for p in params],
                keep_tolerance=[p[1] for p in params],
                warmup=[p[2] for p in params],
                patience=patience,
            )
            n = len(run["epochs"]["truth"])
            assert (k, s) == (best if best >= 0 else n - 1, -1 if stop is None else stop)


def test_nan_is_no_evidence_as_in_the_shipped_rule():
    values = [5.0, 2.0, math.nan, 1.0, 1.05, math.nan, 1.3, math.nan, 1.4, 1.5]
    kept, stopped = cv.rise_rule([np.array([values])], [(0.1, 0.1, 1)], 2)
    assert (int(kept[0]), int(stopped[0])) == replay(values, tolerance=0.1, patience=2, warmup=1)


def test_lag_and_first_exit_keep_epochs_before_the_rise():
    # Flat at 1.0 from epoch 2, a first small excursion at epoch 5 (out of the keep band, not a rise), then a
    # sustained rise from epoch 8 (patience 2: stop at 9).
    x = np.array([[3.0, 2.0, 1.0, 1.0, 1.0, 1.08, 1.0, 1.0, 1.3, 1.4, 1.5]])
    band = cv.rise_rule([x], [(0.2, 0.05, 0)], 2)
    assert (int(band[0][0]), int(band[1][0])) == (7, 9)
    assert int(cv.rise_rule([x], [(0.2, 0.05, 0)], 2, keep="lag", lag=3)[0][0]) == 5  # onset 8, minus 3
    assert int(cv.rise_rule([x], [(0.2, 0.05, 0)], 2, keep="first_exit")[0][0]) == 4  # first exit at 5
    with pytest.raises(ValueError, match="keep must be"):
        cv.rise_rule([x], [(0.2, 0.05, 0)], 2, keep="minimum")


def test_a_frozen_reference_sees_a_slow_drift_that_a_running_minimum_follows():
    x = np.array([[2.0, 1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.9, 1.0, 1.1, 1.2]])
    # Running minimum 0.75: 1.0 is a 33 % rise at epoch 8, 1.1 at 9 -> stop at 9.
    assert int(cv.rise_rule([x], [(0.3, 0.3, 1)], 2)[1][0]) == 9
    # Reference frozen after 2 post-warm-up measurements (0.95): 1.2 is the first 26 %+ rise, never two in a row.
    assert int(cv.rise_rule([x], [(0.25, 0.25, 1)], 2, reference=2)[1][0]) == -1


def test_slope_rule_stops_on_a_rise_over_its_window_and_keeps_the_window_start():
    x = np.array([[3.0, 2.0, 1.0, 1.0, 1.0, 1.3, 1.6, 1.9, 2.2], [3.0, 2.0, 1.0, 1.0, 1.05, 1.0, 1.05, 1.0, 1.05]])
    kept, stopped = cv.slope_rule([x], [0.2], warmup=1, patience=2, window=2)
    assert kept.tolist() == [3, 8]
    assert stopped.tolist() == [6, -1]


def test_cross_validation_scores_each_run_with_a_rule_chosen_without_it():
    # Rule 1 is best in-sample (mean 1). Rule 0 is perfect on runs 0-2 and fails on run 3: the fold holding run 3
    # out chooses rule 0 and pays for it, so the cross-validated mean (3) is worse than the in-sample one.
    regrets = np.array([[0.0, 0.0, 0.0, 9.0], [1.0, 1.0, 1.0, 1.0]])
    folds = [np.arange(4) == i for i in range(4)]
    held, chosen = cv.cross_validate(regrets, folds)
    assert chosen == [1, 1, 1, 0]
    assert held.tolist() == [1.0, 1.0, 1.0, 9.0]
    d = cv.paired_difference(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0]))
    assert d["mean"] == pytest.approx(1.0)
    assert d["low"] <= 1.0 <= d["high"]


@needs_runs
def test_quick_study_reproduces_the_stopping_study_baselines_and_rule():
    runs = [r for r in UNTOUCHED if r["regime"] == "supervised"][::2]
    result = cv.study(runs, quick=True, log=lambda _m: None)
    reference = study.evaluate(runs, study.load_rule())["regimes"]["supervised"]["monitors"]
    assert result["baselines"]["val_loss (labels)"]["mean"] == pytest.approx(reference["val_loss (labels)"]["mean"])
    assert result["baselines"]["no stopping"]["mean"] == pytest.approx(reference["no stopping"]["mean"])
    rule = study.rule_monitor(study.load_rule()).name
    assert result["post_mortem"]["rule 0.3 (pooled, partly in-sample)"]["mean"] == pytest.approx(
        reference[rule]["mean"]
    )
    shares = [v["rule_share_of_mean_regret"] for k, v in result["post_mortem"].items() if not k.startswith("rule")]
    assert sum(shares) == pytest.approx(reference[rule]["mean"])
    for entry in result["families"].values():
        for scheme in entry["cv"].values():
            assert scheme["low"] <= scheme["mean"] <= scheme["high"]
            assert scheme["n"] == len(runs)


def test_knn_label_noise_reads_the_fraction_of_outvoted_labels():
    rng = np.random.default_rng(0)
    centres = np.eye(4) * 10
    labels = np.repeat(np.arange(4), 50)
    bank = centres[labels] + rng.normal(size=(200, 4))
    assert knn_label_noise(bank, labels) == 0.0
    flipped = labels.copy()
    flipped[::10] = (flipped[::10] + 1) % 4  # 10 % wrong labels, each inside its true cluster: outvoted
    assert knn_label_noise(bank, flipped) == pytest.approx(0.1)
