"""examples/diffusion.py in its reduced CI mode: the gap law, memorisation versus generalisation, the callback path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "examples", "diffusion.py")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("diffusion") / "quick.json"
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads(out.read_text())


@pytest.mark.slow
def test_prints_the_tables_and_the_rule(quick_run):
    stdout, result = quick_run
    for sweep in result["sweeps"]:
        assert sweep["label"] in stdout
    assert "held-out -> training set, all n" in stdout
    assert "held-out -> samples,      fitted n (*)" in stdout
    assert "memorises: every n up to the first whose novelty exceeds 0.05" in stdout
    assert "within 15 % of pred" in stdout
    assert "repgap/gap_ratio" in stdout  # the Lightning run's table


@pytest.mark.slow
def test_models_gap_follows_the_law_where_it_memorises(quick_run):
    # The acceptance criterion: over the sizes the model memorises (novelty <= 0.05, data-driven) where the law is
    # asymptotic, the held-out -> SAMPLES gap falls as n^(-2/d), the quotient dimension d - 1 for the equivariant
    # sweep's orbit distances. The fit needs at least 3 sizes, so that it is a slope and not a two-point ratio.
    _, result = quick_run
    assert {(s["d"], s["equivariant"]) for s in result["sweeps"]} == {(2, False), (4, False), (3, True)}
    for sweep in result["sweeps"]:
        fit = sweep["fits"]["held_samples_memorising"]
        assert fit is not None, sweep["label"]
        assert len(fit["sizes"]) >= 3, sweep["label"]
        assert fit["sizes"] == [n for n, f in zip(sweep["sizes"], sweep["fitted"], strict=True) if f]
        assert fit["slope"] == pytest.approx(-2 / sweep["d"], rel=0.2), sweep["label"]


@pytest.mark.slow
def test_fitted_sizes_are_memorised_and_asymptotic(quick_run):
    # What the fit rests on: at those n the samples are copies (their gap is the training set's, within 15 %), and
    # the mean gap of n i.i.d. points is within 15 % of the closed form.
    _, result = quick_run
    for sweep in result["sweeps"]:
        for k, fitted in enumerate(sweep["fitted"]):
            if fitted:
                assert sweep["novelty"][k] <= 0.05
                assert sweep["expected"][k] >= 0.85 * sweep["pred"][k]
                assert 0.85 < sweep["held_samples"][k] / sweep["held_train"][k] < 1.05, (sweep["label"], k)


@pytest.mark.slow
def test_memorisers_gap_follows_the_law(quick_run):
    # A memoriser's samples are its training points, so its held-out gap is the training set's.
    _, result = quick_run
    for sweep in result["sweeps"]:
        slope = sweep["fits"]["held_train"]["slope"]
        assert slope == pytest.approx(-2 / sweep["d"], rel=0.2), sweep["label"]


@pytest.mark.slow
def test_small_training_sets_are_memorised_large_ones_are_not(quick_run):
    _, result = quick_run
    for sweep in result["sweeps"]:
        memorising, novelty = sweep["memorising"], sweep["novelty"]
        assert memorising[0], sweep["label"]
        assert not memorising[-1], sweep["label"]  # the switch lies inside every quick grid
        assert novelty[-1] > 10 * novelty[0], sweep["label"]
        assert sweep["gap_ratio"][0] > 10 * sweep["gap_ratio"][-1], sweep["label"]
    d4 = next(s for s in result["sweeps"] if s["d"] == 4 and not s["equivariant"])
    assert d4["gap_ratio"][0] > 1000  # n = 45 on the 4-torus: the samples sit on the training points
    assert d4["novelty"][0] < 0.01


@pytest.mark.slow
def test_equivariance_lowers_the_fitted_dimension(quick_run):
    _, result = quick_run
    plain = next(s for s in result["sweeps"] if s["d"] == 4 and not s["equivariant"])
    equi = next(s for s in result["sweeps"] if s["equivariant"])
    assert equi["fits"]["held_train"]["dim"] < plain["fits"]["held_train"]["dim"] - 0.5


@pytest.mark.slow
def test_callback_sees_memorisation_grow(quick_run):
    _, result = quick_run
    history = result["lightning"]
    assert [h["epoch"] for h in history] == [0, 1]
    assert history[-1]["repgap/gap_ratio"] > history[0]["repgap/gap_ratio"]
