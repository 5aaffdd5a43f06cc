"""The validation study (studies/): its building blocks against brute force, and the --quick run's bounds."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import kendalltau

from studies import equivariance, generalisation, law, validation

ROOT = os.path.join(os.path.dirname(__file__), "..")


def test_suite_covers_what_the_issue_asks():
    clouds = law.suite()
    assert len(clouds) >= 20
    dims = [c.dim for c in clouds]
    assert min(dims) == 1
    assert max(dims) >= 30
    assert max(c.ambient for c in clouds) <= 256
    assert {c.split for c in clouds} == {"tuned", "held_out"}
    assert len({c.name for c in clouds}) == len(clouds)
    rng = np.random.default_rng(0)
    for cloud in clouds:
        x = cloud.sample(50, rng)
        assert x.shape == (50, cloud.ambient), cloud.name
        assert np.isfinite(x).all(), cloud.name


def test_measure_cloud_recovers_a_circle_dimension():
    circle = next(c for c in law.suite() if c.dim == 1)
    result = law.measure_cloud(circle, n_bank=2000, n_queries=500)
    for estimator in law.ESTIMATORS:
        assert result.rel_error(estimator) < 0.1, estimator


@pytest.mark.parametrize("seed", [0, 1])
def test_kendall_tau_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, 40).astype(float)
    b = a + rng.integers(0, 3, 40)
    assert generalisation.kendall_tau(a, b) == pytest.approx(kendalltau(a, b).statistic, abs=1e-12)


def test_shift_orbit_distance_is_the_exact_minimum_over_real_shifts():
    rng = np.random.default_rng(0)
    queries, bank = (equivariance.shift_signals(n, rng)[0] for n in (5, 7))
    exact = equivariance.shift_orbit_distances(queries, bank)
    # Brute force: every bank signal under 4096 shifts (a 1/128-sample grid), nearest copy per pair.
    spec = np.fft.rfft(bank, axis=1)
    shifts = np.arange(4096) * equivariance.LENGTH / 4096
    phase = np.exp(-2j * np.pi * np.outer(shifts, np.arange(spec.shape[1])) / equivariance.LENGTH)
    copies = np.fft.irfft(spec[:, None, :] * phase[None], n=equivariance.LENGTH, axis=-1)  # (n, K, L)
    brute = ((queries[:, None, None, :] - copies[None]) ** 2).sum(-1).min(-1)
    assert (exact <= brute + 1e-9).all()  # never above a shift that exists
    # The grid itself is off by up to c''(s) (ds / 2)^2 / 2, about 3e-5 here; a 64-point grid without the Newton
    # refinement is off by up to 0.2 on these signals.
    np.testing.assert_allclose(exact, brute, rtol=0, atol=1e-4)


def test_rotation_orbit_distance_closed_form_matches_brute_force():
    rng = np.random.default_rng(1)
    queries, bank = equivariance.rotated_patterns(4, rng), equivariance.rotated_patterns(6, rng)
    exact = equivariance.rotation_orbit_distances(queries, bank)
    theta = np.linspace(0, 2 * math.pi, 20000, endpoint=False)
    pts = bank.reshape(6, 1, equivariance.N_POINTS, 2)
    c, s = np.cos(theta)[None, :, None], np.sin(theta)[None, :, None]
    rotated = np.stack([c * pts[..., 0] - s * pts[..., 1], s * pts[..., 0] + c * pts[..., 1]], -1).reshape(6, -1, 10)
    brute = ((queries[:, None, None, :] - rotated[None]) ** 2).sum(-1).min(-1)
    assert (exact <= brute + 1e-12).all()
    np.testing.assert_allclose(exact, brute, rtol=1e-6, atol=1e-6)


def test_canonicalisation_removes_the_group_element():
    rng = np.random.default_rng(2)
    x, _ = equivariance.shift_signals(3, rng)
    shifted = np.fft.irfft(np.fft.rfft(x, axis=1) * np.exp(-2j * np.pi * 3.7 * np.arange(17) / 32), n=32, axis=1)
    np.testing.assert_allclose(equivariance.canonicalise_shift(shifted), equivariance.canonicalise_shift(x), atol=1e-9)
    p = equivariance.rotated_patterns(3, rng)
    rotated = equivariance._rotate(p.reshape(3, 5, 2), np.full(3, 1.3)).reshape(3, 10)
    np.testing.assert_allclose(
        equivariance.canonicalise_rotation(rotated), equivariance.canonicalise_rotation(p), atol=1e-9
    )


def test_quick_bounds_name_each_violation():
    good = {
        "law: gap-law mean relative error, all clouds": 0.05,
        "law: best estimator's mean relative error, all clouds": 0.05,
        "equivariance: smallest dimension drop / group dimension": 0.9,
        "generalisation: best repgap tau against the loss gap": 0.7,
        "generalisation: best baseline tau against the loss gap": 0.4,
    }
    assert validation.check_quick_bounds(good) == []
    bad = {**good, "law: gap-law mean relative error, all clouds": 0.2}
    assert [f.split(" =")[0] for f in validation.check_quick_bounds(bad)] == [
        "law: gap-law mean relative error, all clouds"
    ]
    beaten = {**good, "generalisation: best baseline tau against the loss gap": 0.8}
    assert "no repgap quantity beats every baseline" in validation.check_quick_bounds(beaten)[0]


def test_unknown_part_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        validation.main(["--parts", "law,bogus"])
    assert "unknown part(s) ['bogus']" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_study_reproduces_the_headline_within_bounds(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "studies.validation", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "validation.json").read_text())
    assert validation.check_quick_bounds(results["headline"]) == []
    report = (tmp_path / "validation.md").read_text()
    for heading in ("## 1.", "## 2.", "## 3.", "## 4."):
        assert heading in report
    assert len(results["generalisation"]["rows"]) >= 24
    assert len(results["law"]["rows"]) >= 20


def test_quickstart_study_reads_a_known_torus_and_names_the_decider():
    from lightning_repgap.dimension import METHOD_CODES
    from lightning_repgap.manifolds import embed, sample_torus
    from studies.quickstart_dimension import readings

    rng = np.random.default_rng(3)
    cloud = embed(sample_torus(2_560, 3, rng), 24, rng)
    r = readings(cloud)
    assert r["n"] == 2_560
    assert r["method"] in METHOD_CODES
    for key in ("dim", "gap", "local", "twonn", "mle"):
        assert abs(r[key] - 3) / 3 < 0.15, (key, r[key])
    assert r["dim_low"] <= r["dim"] <= r["dim_high"]


def test_heldout_reads_precomputed_danco_for_the_clouds_it_holds(tmp_path, capsys, monkeypatch):
    # The eleventh split's DANCo is fitted beforehand (studies.dimension_danco) on the very samples the measurement
    # draws; the measurement must take those values, for the clouds and sizes the file holds, instead of fitting.
    from studies import dimension_heldout, dimension_study

    cloud = "helix 10 turns"
    path = tmp_path / "danco.json"
    path.write_text(json.dumps({"values": {"2500": {cloud: 123.5}}}))
    whole = dimension_study.suite
    monkeypatch.setattr(dimension_study, "_danco", lambda x: -1.0)  # a fit here would read -1
    monkeypatch.setattr(dimension_study, "suite", lambda split: [c for c in whole(split) if c.name == cloud])
    out = tmp_path / "res.json"
    argv = ["--out", str(out), "--splits", "tune", "--sizes", "2500,3000", "--danco-json", str(path)]
    assert dimension_heldout.main(argv) == 0
    rows = json.loads(out.read_text())[0]["rows"]
    assert [(r["n"], r["danco"]) for r in rows] == [(2500, 123.5), (3000, None)]  # no DANCo fit above 2,500
    assert "DANCo" in capsys.readouterr().out


def test_cached_measurement_reads_what_the_full_measurement_reads(tmp_path):
    # dimension_heldout --cache rebuilds the rows from a cached search (studies.dimension_retune.cached_curve) and
    # precomputed TwoNN / MLE: every number must equal the full measurement's on the same sample.
    from studies import dimension_study

    cloud = next(c for c in dimension_study.suite("tune") if c.name == "helix 10 turns")
    full = dimension_study.measure(cloud, 2500, danco=False)
    x = dimension_study.sample(cloud, 2500)
    twonn, mle = dimension_study.local_baselines(x)
    baselines = {"twonn": {"2500": {cloud.name: twonn}}, "mle": {"2500": {cloud.name: mle}}, "values": {}}
    fast = dimension_study.measure_cached(cloud, 2500, tmp_path, baselines)
    assert (tmp_path / f"c_{cloud.seed}_2500.npz").exists()
    assert (fast.method, fast.disagree) == (full.method, full.disagree)
    keep = ("auto", "auto_low", "auto_high", "gap", "gap_low", "gap_high", "twonn", "mle")
    assert {k: getattr(fast, k) for k in keep} == pytest.approx({k: getattr(full, k) for k in keep}, rel=1e-9)
    assert fast.danco is None
    with pytest.raises(ValueError, match="needs `baselines`"):
        dimension_study.run(split="tune", sizes=(2500,), names=(cloud.name,), cache=tmp_path)


def test_dimension_study_summary_counts_an_estimators_failures_instead_of_a_nan_mean():
    from studies.dimension_study import Row, markdown, summarise

    def row(name: str, danco: float) -> Row:
        auto = (1.1, 0.9, 1.3, "local", False)
        return Row(name, "curve", "x", 1, 2, 0.0, 100, *auto, 1.2, 1.1, 1.3, 1.0, 1.0, danco, 0.0)

    summary = summarise([row("a", 1.5), row("b", float("nan"))])["100"]
    assert summary["danco"] == pytest.approx(0.5)
    assert summary["danco_failed"] == 1
    assert "auto_failed" not in summary
    assert "0.500 (1 failed)" in "\n".join(markdown([{"split": "x", "rows": [], "summary": {"100": summary}}]))


def test_quickstart_probe_replays_the_metric_and_reads_a_known_torus():
    # studies.quickstart_probe records the rule's inputs inside a measurement and re-runs the rule on them: the replay
    # must reproduce the metric's logged dim exactly, and its diagnostics must read a known 3-torus as 3.
    import torch

    from lightning_repgap.manifolds import embed, sample_torus
    from lightning_repgap.metric import RepresentationGap
    from studies import quickstart_probe

    rng = np.random.default_rng(5)
    x = embed(sample_torus(7_168, 3, rng), 24, rng).astype(np.float32)
    bank, queries, fresh = x[:4_096], x[4_096:5_120], x[5_120:].astype(np.float64)
    gap = RepresentationGap()
    with quickstart_probe._recording() as (calls, inputs):
        gap.update(reference=torch.from_numpy(bank), queries=torch.from_numpy(queries))
        logged = gap.compute()
    assert len(calls) == len(inputs) == 1
    np.testing.assert_array_equal(inputs[0]["reference"], bank.astype(np.float64))
    r = quickstart_probe.diagnose(calls[0])
    assert r["dim"] == pytest.approx(float(logged["dim"]), rel=1e-6)
    assert r["method"] == "local"
    assert r["weight_gap"] == 0.0
    assert r["dim_local"] == pytest.approx(r["local"], rel=1e-12)  # the local estimate is the mean of its two parts
    assert r["local"] == pytest.approx(0.5 * (r["twonn_ml"] + r["mle5"]))
    assert len(r["twonn_blocks"]) == 4
    assert r["twonn_blocks"][0] == pytest.approx(r["dim_twonn"])  # the cross-check reads the first block of rows
    for value in (r["local"], r["gride_far"], r["twonn_all_rows"], r["mle_all_rows"], *r["scales"].values()):
        assert abs(value - 3) / 3 < 0.1, r
    p = quickstart_probe.against_bank(bank.astype(np.float64), fresh)
    assert p["rows"] == 2_048
    assert abs(p["local"] - 3) / 3 < 0.1
    assert 0 < p["sd"] < 0.2


def test_quickstart_probe_suite_bias_reads_signed_and_scaled_errors():
    from studies.quickstart_probe import suite_local_bias

    rows = [
        {"split": "tune", "n": 2500, "d": 3.0, "noise": 0.0, "dim": 3.3},  # +10 %
        {"split": "tune", "n": 2500, "d": 2.0, "noise": 0.0, "dim": 1.9},  # -5 %
        {"split": "tune", "n": 2500, "d": 5.0, "noise": 0.05, "dim": 5.5},  # noisy: only in the "all" row
    ]
    out = {r["d"]: r for r in suite_local_bias(rows, factor=0.9)}
    assert out["2-4"]["count"] == 2
    assert out["2-4"]["signed"] == pytest.approx(0.025)
    assert out["2-4"]["abs"] == pytest.approx(0.075)
    assert "4+" not in out  # the noisy 5-d reading is not a clean one
    every = out["all 'local'"]
    assert every["count"] == 3
    assert every["abs"] == pytest.approx((0.1 + 0.05 + 0.1) / 3)
    assert every["abs_scaled"] == pytest.approx((0.01 + 0.145 + 0.01) / 3)
