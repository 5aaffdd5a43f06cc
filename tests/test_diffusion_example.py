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
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads(out.read_text())


@pytest.mark.slow
def test_prints_the_tables(quick_run):
    stdout, result = quick_run
    for sweep in result["sweeps"]:
        assert sweep["label"] in stdout
    assert "held-out -> training set, all n" in stdout
    assert "repgap/gap_ratio" in stdout  # the Lightning run's table


@pytest.mark.slow
def test_memorisers_gap_follows_the_law(quick_run):
    # A memoriser's samples are its training points, so its held-out gap is the training set's: that gap's fitted
    # exponent is -2/d (the quotient dimension d - 1 for the equivariant sweep's orbit distances).
    _, result = quick_run
    assert {(s["d"], s["equivariant"]) for s in result["sweeps"]} == {(2, False), (4, False), (3, True)}
    for sweep in result["sweeps"]:
        slope = sweep["fits"]["held_train"]["slope"]
        assert slope == pytest.approx(-2 / sweep["d"], rel=0.2), sweep["label"]


@pytest.mark.slow
def test_small_training_sets_are_memorised_large_ones_are_not(quick_run):
    _, result = quick_run
    for sweep in result["sweeps"]:
        ratio = sweep["gap_ratio"]
        assert ratio[0] > ratio[-1], sweep["label"]
        assert ratio[-1] < 2.0, sweep["label"]  # largest n: samples about as close to fresh as to training data
    d4 = next(s for s in result["sweeps"] if s["d"] == 4 and not s["equivariant"])
    assert d4["gap_ratio"][0] > 10  # n = 16 on the 4-torus: the samples sit on the training points
    assert d4["novelty"][0] < 0.3
    # ... so the held-out -> samples gap is close to the held-out -> training-set gap (within a factor 2)
    assert d4["held_samples"][0] > 0.5 * d4["held_train"][0]


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
