"""The ``repgap`` command line: ``analyze`` reproduces logged numbers, ``estimate`` on raw arrays, errors, help."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers.cli_data import CONFIG, logged_metrics, torus_arrays, write_run

from lightning_repgap import __version__
from lightning_repgap.cli import main
from lightning_repgap.config import GapConfig
from lightning_repgap.functional import MIN_QUERIES, representation_gap
from lightning_repgap.gap import geometric_sizes
from lightning_repgap.snapshot import write_snapshot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LAYERS = ("backbone", "head")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Six snapshots (3 epochs x 2 layers) and the metrics 'logged' for each, keyed by snapshot name."""
    root = tmp_path_factory.mktemp("run")
    expected = write_run(root, layers=LAYERS)
    return root, expected


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _error(capsys, *argv: str) -> str:
    """Run a command that must fail cleanly; return its one-line message."""
    code, out, err = _run(capsys, *argv)
    assert code == 2, (out, err)
    assert err.startswith("repgap: error: ") or "error:" in err, err
    return err


def _assert_values_close(actual: dict, expected: dict, rtol: float = 1e-5) -> None:
    assert set(actual) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(actual[key], value, rtol=rtol, atol=0, err_msg=key)


def _table_rows(out: str) -> list[list[str]]:
    """Data rows of the analyze table (lines below the dashed rule, up to the first non-row line)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if set(line.replace(" ", "")) == {"-"}) + 1
    rows = []
    for line in lines[start:]:
        if not re.match(r"^\s*(\d+|-)\s", line):
            break
        rows.append(line.split())
    return rows


# ------------------------------------------------------------------------------------------------ analyze


def test_analyze_json_reproduces_logged_metrics(run_dir, tmp_path, capsys):
    root, expected = run_dir
    out_json = tmp_path / "gap.json"
    code, out, err = _run(capsys, "analyze", root, "--json", out_json, "--quiet")
    assert code == 0, err
    assert err == ""
    records = json.loads(out_json.read_text())
    assert [r["name"] for r in records] == list(expected)  # oldest first, then by name
    sizes = geometric_sizes(512, min_size=CONFIG["min_size"]).tolist()
    for record in records:
        logged = expected[record["name"]]
        _assert_values_close(record["values"], logged)
        _assert_values_close(record["logged"], logged, rtol=1e-12)
        epoch = int(record["name"][6:10])
        assert (record["epoch"], record["step"]) == (epoch, 100 * (epoch + 1))
        assert record["layer"] in LAYERS
        assert Path(record["snapshot"]) == root / record["name"]
        assert record["curve"]["sizes"] == sizes
        assert len(record["curve"]["gaps"]) == len(sizes) == len(record["curve"]["train_gaps"])
        assert record["curve"]["gaps"][-1] == pytest.approx(record["values"]["gap"], rel=1e-12)
        assert record["config"] == GapConfig(**CONFIG).to_dict()  # the stored settings, defaults filled in
        assert record["storage_dtype"] == "float32"
    # The table: one row per snapshot, the stated columns, values as logged.
    assert "dim [low, high]" in out
    assert "law R^2" in out
    assert "gap_ratio" in out
    assert "knn_acc" in out
    rows = _table_rows(out)
    assert len(rows) == len(expected)
    for row, (name, logged) in zip(rows, expected.items(), strict=True):
        assert row[0] == str(int(name[6:10]))
        assert row[2] == name.rsplit("-", 1)[1]
        assert float(row[3]) == pytest.approx(logged["gap"], rel=1e-3)
        assert float(row[4]) == pytest.approx(logged["gap_norm"], rel=1e-3)
        assert float(row[5]) == pytest.approx(logged["dim"], abs=0.006)
    assert re.search(r"max relative difference \S+ over 6 snapshot\(s\) \(stored as float32\)", out)
    worst = float(re.search(r"max relative difference (\S+)", out).group(1))
    assert worst < 1e-5
    assert "differences above" not in out
    assert f"wrote {out_json}" in out
    assert [p.name for p in tmp_path.iterdir()] == ["gap.json"]  # no temporary file left behind


def test_analyze_single_snapshot_directory(run_dir, tmp_path, capsys):
    root, expected = run_dir
    name = list(expected)[3]
    out_json = tmp_path / "one.json"
    code, out, _ = _run(capsys, "analyze", root / name, "--json", out_json, "-q")
    assert code == 0
    (record,) = json.loads(out_json.read_text())
    assert record["name"] == name
    _assert_values_close(record["values"], expected[name])
    assert len(_table_rows(out)) == 1


def test_analyze_layer_filter(run_dir, tmp_path, capsys):
    root, _ = run_dir
    out_json = tmp_path / "head.json"
    code, out, _ = _run(capsys, "analyze", root, "--layer", "head", "--json", out_json, "-q")
    assert code == 0
    records = json.loads(out_json.read_text())
    assert [r["layer"] for r in records] == ["head"] * 3
    assert [r["epoch"] for r in records] == [0, 1, 2]
    rows = _table_rows(out)
    assert [row[2] for row in rows] == ["head"] * 3
    # Repeating --layer selects several.
    code, out, _ = _run(capsys, "analyze", root, "--layer", "head", "--layer", "backbone", "-q")
    assert code == 0
    assert len(_table_rows(out)) == 6


def test_analyze_unknown_layer_lists_present_layers(run_dir, capsys):
    root, _ = run_dir
    err = _error(capsys, "analyze", root, "--layer", "encoder")
    assert "unknown layer 'encoder'" in err
    assert "'backbone', 'head'" in err


def test_analyze_progress_on_stderr_unless_quiet(run_dir, capsys):
    root, _ = run_dir
    code, out, err = _run(capsys, "analyze", root, "--layer", "backbone")
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("[")]
    assert lines[0] == "[1/3] epoch=0000 step=100 layer=backbone: bank 512 x 16, 128 queries"
    assert lines[-1].startswith("[3/3] epoch=0002 step=300 layer=backbone")
    assert "analysed 3 snapshot(s)" in err
    assert "[1/3]" not in out  # progress never pollutes the table
    code, _, err = _run(capsys, "analyze", root, "--layer", "backbone", "--quiet")
    assert code == 0
    assert err == ""


def test_analyze_plot_writes_png(run_dir, tmp_path, capsys):
    root, _ = run_dir
    png = tmp_path / "gap.png"
    code, out, _ = _run(capsys, "analyze", root, "--plot", png, "-q")
    assert code == 0
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000
    assert f"wrote {png}" in out
    assert [p.name for p in tmp_path.iterdir()] == ["gap.png"]


def test_analyze_float16_snapshot_reproduces_stored_data(tmp_path, capsys):
    """Float16 storage rounds the data: the CLI recomputes exactly from what is stored, and says how it was stored."""
    write_run(tmp_path / "run", epochs=(0,), dtype="float16")
    out_json = tmp_path / "out.json"
    code, out, _ = _run(capsys, "analyze", tmp_path / "run", "--json", out_json, "-q")
    assert code == 0
    (record,) = json.loads(out_json.read_text())
    stored = {
        k: v.astype(np.float16).astype(np.float32) if v.dtype.kind == "f" else v for k, v in torus_arrays(3).items()
    }
    _assert_values_close(record["values"], logged_metrics(stored, CONFIG))
    assert record["storage_dtype"] == "float16"
    assert "(stored as float16)" in out


def test_analyze_passes_config_through_and_warns_about_unknown_keys(tmp_path, capsys):
    config = {**CONFIG, "ratio": 1.5, "n_bootstrap": 0, "n_neighbors": 10, "unknown_option": 3}
    expected = write_run(tmp_path / "run", epochs=(1,), config=config)
    out_json = tmp_path / "out.json"
    code, _, err = _run(capsys, "analyze", tmp_path / "run", "--json", out_json, "-q")
    assert code == 0
    assert "warning" in err
    assert "'unknown_option' (1 snapshot)" in err
    (record,) = json.loads(out_json.read_text())
    _assert_values_close(record["values"], expected[record["name"]])
    assert record["curve"]["sizes"] == geometric_sizes(512, min_size=16, ratio=1.5).tolist()
    assert record["values"]["dim_low"] == record["values"]["dim"] == record["values"]["dim_high"]  # no bootstrap
    assert "unknown_option" not in record["config"]


def test_analyze_without_config_uses_defaults_with_a_warning(tmp_path, capsys):
    arrays = torus_arrays(2, labels=False)
    write_snapshot(tmp_path / "run", "s", arrays, {"epoch": 0, "step": 5, "layer": "z"}, dtype="float32")
    out_json = tmp_path / "out.json"
    code, out, err = _run(capsys, "analyze", tmp_path / "run", "--json", out_json, "-q")
    assert code == 0
    assert "no 'config' metadata" in err
    (record,) = json.loads(out_json.read_text())
    _assert_values_close(record["values"], logged_metrics(arrays, {}))
    assert record["logged"] == {}
    assert "knn_acc" not in out
    assert "vs. values logged" not in out


def test_analyze_backend_override(run_dir, tmp_path, capsys):
    root, expected = run_dir
    out_json = tmp_path / "faiss.json"
    code, out, _ = _run(capsys, "analyze", root, "--layer", "backbone", "--backend", "faiss", "--json", out_json, "-q")
    assert code == 0
    assert "backend faiss" in out
    for record in json.loads(out_json.read_text()):
        assert record["backend"] == "faiss"
        assert record["config"]["backend"] == "faiss"
        # Both searches are exact, but float32 ranking may break near-ties differently (winners are re-measured in
        # float64); on the 1-torus of epoch 2 that moves gap_ratio by ~3e-5.
        _assert_values_close(record["values"], expected[record["name"]], rtol=1e-3)


def test_analyze_missing_directory(tmp_path, capsys):
    err = _error(capsys, "analyze", tmp_path / "nowhere")
    assert "nowhere does not exist" in err


def test_analyze_path_is_a_file(tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    assert "is not a directory" in _error(capsys, "analyze", tmp_path / "file.txt")


def test_analyze_directory_without_complete_snapshot(tmp_path, capsys):
    err = _error(capsys, "analyze", tmp_path)
    assert f"no complete snapshot in {tmp_path}" in err
    # A write that never finished: arrays, no manifest.
    partial = tmp_path / "epoch=0000-step=00000100-backbone"
    partial.mkdir()
    np.save(partial / "reference.npy", np.zeros((4, 2), np.float32))
    err = _error(capsys, "analyze", tmp_path)
    assert "no complete snapshot" in err
    assert "1 subdirectories have no manifest.json" in err


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_analyze_corrupt_snapshot(tmp_path, capsys, damage):
    write_run(tmp_path / "run", epochs=(0, 1))
    victim = next((tmp_path / "run").glob("epoch=0001*")) / "queries.npy"
    if damage == "flip":
        data = bytearray(victim.read_bytes())
        data[-5] ^= 0xFF
        victim.write_bytes(bytes(data))
    elif damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:-16])
    else:
        victim.unlink()
    # The damaged snapshot is skipped with one line naming the file and the damage; the others are analysed, and the
    # exit code (1) says something was skipped. --strict stops at it with the usual error.
    code, out, err = _run(capsys, "analyze", tmp_path / "run", "-q")
    assert code == 1, (out, err)
    skipped = [line for line in err.splitlines() if line.startswith("skipped damaged snapshot")]
    assert len(skipped) == 1
    assert "corrupt snapshot" in skipped[0]
    assert "queries.npy" in skipped[0]
    assert {"flip": "SHA-256", "truncate": "size", "delete": "missing"}[damage] in skipped[0]
    assert "skipped 1 snapshot(s): 1 damaged, 0 incomplete" in out
    assert len(_table_rows(out)) == 1
    err = _error(capsys, "analyze", tmp_path / "run", "-q", "--strict")
    assert "corrupt snapshot" in err
    assert "queries.npy" in err


def test_analyze_skips_a_broken_manifest_and_counts_incomplete_writes(tmp_path, capsys):
    write_run(tmp_path / "run", epochs=(0, 1))
    broken = next((tmp_path / "run").glob("epoch=0001*"))
    (broken / "manifest.json").write_text("{not json")
    (tmp_path / "run" / "epoch=0002-unfinished").mkdir()
    code, out, err = _run(capsys, "analyze", tmp_path / "run", "-q")
    assert code == 1, (out, err)
    assert sum(line.startswith("skipped damaged snapshot") for line in err.splitlines()) == 1
    assert sum(line.startswith("skipped incomplete snapshot") for line in err.splitlines()) == 1
    assert "skipped 2 snapshot(s): 1 damaged, 1 incomplete" in out
    assert "not valid JSON" in _error(capsys, "analyze", tmp_path / "run", "-q", "--strict")
    (broken / "manifest.json").unlink()  # now only an unfinished write besides it: skipped, counted, exit 0
    code, out, err = _run(capsys, "analyze", tmp_path / "run", "-q")
    assert code == 0, (out, err)
    assert "skipped 2 snapshot(s): 0 damaged, 2 incomplete" in out


def test_analyze_corrupt_manifest_of_a_single_snapshot(tmp_path, capsys):
    write_run(tmp_path / "run", epochs=(0,))
    snap = next((tmp_path / "run").iterdir())
    (snap / "manifest.json").write_text("{not json")
    err = _error(capsys, "analyze", snap)
    assert "corrupt snapshot" in err
    assert "not valid JSON" in err


def test_analyze_snapshot_without_queries(tmp_path, capsys):
    write_snapshot(tmp_path, "s", {"reference": np.zeros((8, 2))}, {"epoch": 0}, dtype="float32")
    err = _error(capsys, "analyze", tmp_path)
    assert "has no 'queries' array" in err


def test_analyze_library_error_names_the_snapshot(tmp_path, capsys):
    """A bank too small for the law fit: the library's ValueError, prefixed with the snapshot path."""
    arrays = torus_arrays(2, n=100, m=20, labels=False)
    write_snapshot(tmp_path, "tiny", arrays, {"epoch": 0, "config": CONFIG}, dtype="float32")
    err = _error(capsys, "analyze", tmp_path, "-q")
    assert str(tmp_path / "tiny") in err
    assert "at least 3 bank sizes" in err


def test_analyze_unwritable_output_fails_before_work(run_dir, tmp_path, capsys):
    root, _ = run_dir
    err = _error(capsys, "analyze", root, "--json", tmp_path / "missing" / "out.json")
    assert "does not exist" in err
    assert "[1/" not in err  # nothing was computed
    err = _error(capsys, "analyze", root, "--plot", tmp_path)
    assert "is a directory" in err


# ------------------------------------------------------------------------------------------------ estimate


@pytest.fixture(scope="module")
def raw_arrays(tmp_path_factory):
    """Bank, queries and training queries on a 3-torus, as .npy, .pt (tensor) and .pt (dict of one tensor)."""
    d = tmp_path_factory.mktemp("raw")
    arrays = torus_arrays(3, n=1024, m=256, labels=False)
    paths = {}
    for key in ("reference", "queries", "train_queries"):
        paths[f"{key}.npy"] = d / f"{key}.npy"
        np.save(paths[f"{key}.npy"], arrays[key])
    paths["queries.pt"] = d / "queries.pt"
    torch.save(torch.from_numpy(arrays["queries"]), paths["queries.pt"])
    paths["reference.pt"] = d / "reference.pt"
    torch.save({"features": torch.from_numpy(arrays["reference"])}, paths["reference.pt"])
    return arrays, paths


ESTIMATE_OPTS = ("--n-bootstrap", "20", "-q")


def test_estimate_npy_prints_every_value_and_the_curve(raw_arrays, tmp_path, capsys):
    arrays, paths = raw_arrays
    out_json = tmp_path / "est.json"
    code, out, err = _run(
        capsys,
        "estimate",
        paths["reference.npy"],
        paths["queries.npy"],
        "--train-queries",
        paths["train_queries.npy"],
        "--json",
        out_json,
        *ESTIMATE_OPTS,
    )
    assert code == 0, err
    expected = {
        k: float(v)
        for k, v in representation_gap(
            arrays["reference"], arrays["queries"], train_queries=arrays["train_queries"], n_bootstrap=20
        ).items()
    }
    printed = dict(re.findall(r"^(\w+)\s+(\S+)$", out, flags=re.MULTILINE))
    for key, value in expected.items():
        assert float(printed[key]) == pytest.approx(value, rel=1e-5), key
    payload = json.loads(out_json.read_text())
    _assert_values_close(payload["values"], expected)
    sizes = geometric_sizes(1024).tolist()
    assert payload["curve"]["sizes"] == sizes
    assert payload["config"] == {
        "sizes": None,
        "min_size": 16,
        "ratio": 2.0,
        "seed": 0,
        "fit_min_size": 16,
        "n_neighbors": 20,
        "n_bootstrap": 20,
        "confidence": 0.95,
        "calibrate": True,
        "backend": "auto",
        "index": "exact",
        "search_precision": "auto",
    }
    # The curve table: one row per size, G(n) and G_train(n), fitted sizes starred.
    curve_rows = re.findall(r"^\s*(\d+)\s+(\S+)\s+(\S+)(\s+\*)?$", out, flags=re.MULTILINE)
    assert [int(r[0]) for r in curve_rows] == sizes
    np.testing.assert_allclose([float(r[1]) for r in curve_rows], payload["curve"]["gaps"], rtol=1e-5)
    assert [bool(r[3]) for r in curve_rows] == [n >= 16 for n in sizes]
    assert "G_train(n)" in out


def test_estimate_pt_tensor_and_single_tensor_dict(raw_arrays, tmp_path, capsys):
    arrays, paths = raw_arrays
    out_json = tmp_path / "pt.json"
    code, out, _ = _run(
        capsys, "estimate", paths["reference.pt"], paths["queries.pt"], "--json", out_json, *ESTIMATE_OPTS
    )
    assert code == 0
    expected = {
        k: float(v) for k, v in representation_gap(arrays["reference"], arrays["queries"], n_bootstrap=20).items()
    }
    _assert_values_close(json.loads(out_json.read_text())["values"], expected)
    assert "1024 x 16 float32" in out
    assert "gap_ratio" not in out


def test_estimate_options_reach_the_computation(raw_arrays, tmp_path, capsys):
    arrays, paths = raw_arrays
    out_json = tmp_path / "opts.json"
    argv = ["--min-size", "32", "--fit-min-size", "128", "--n-bootstrap", "0", "--seed", "3", "--no-calibrate"]
    code, _, _ = _run(
        capsys,
        "estimate",
        paths["reference.npy"],
        paths["queries.npy"],
        *argv,
        "--backend",
        "torch",
        "--json",
        out_json,
    )
    assert code == 0
    payload = json.loads(out_json.read_text())
    assert payload["config"] == {
        "sizes": None,
        "min_size": 32,
        "ratio": 2.0,
        "seed": 3,
        "fit_min_size": 128,
        "n_neighbors": 20,
        "n_bootstrap": 0,
        "confidence": 0.95,
        "calibrate": False,
        "backend": "torch",
        "index": "exact",
        "search_precision": "auto",
    }
    assert payload["curve"]["sizes"] == geometric_sizes(1024, min_size=32).tolist()
    assert payload["fit"]["fit_sizes"] == [128, 256, 512, 1024]
    assert payload["backend"] == "torch"
    expected = representation_gap(
        arrays["reference"], arrays["queries"], min_size=32, fit_min_size=128, n_bootstrap=0, seed=3, calibrate=False
    )
    _assert_values_close(payload["values"], {k: float(v) for k, v in expected.items()})


def test_estimate_grid_hint_matches_the_error_type_not_its_text(raw_arrays, capsys, monkeypatch):
    # The --min-size / --fit-min-size hint is given for a TooFewFitSizesError, whatever its wording (it used to
    # match the text "bank sizes >= fit_min_size"), and for nothing else.
    import lightning_repgap.cli as cli_module
    from lightning_repgap._faults import TooFewDistinctSizesError, TooFewFitSizesError

    _, paths = raw_arrays
    ref, qs = paths["reference.npy"], paths["queries.npy"]

    def raising(error):
        def analyze(*args, **kwargs):
            raise error

        return analyze

    hint = "here --min-size 16 with --ratio 2.0 gives the bank sizes"
    for error in (TooFewFitSizesError("grid too short."), TooFewDistinctSizesError("copies left 2 sizes.")):
        monkeypatch.setattr(cli_module, "analyze", raising(error))
        assert hint in _error(capsys, "estimate", ref, qs, "-q")
    monkeypatch.setattr(cli_module, "analyze", raising(ValueError("3 bank sizes >= fit_min_size=16 elsewhere.")))
    assert hint not in _error(capsys, "estimate", ref, qs, "-q")
    monkeypatch.undo()
    # The library raises the type: a bank of copies, and a grid cut short by --min-size.
    copies = np.concatenate([np.load(ref)[:20]] * 10)
    with pytest.raises(TooFewDistinctSizesError, match="exact copies") as err:
        representation_gap(copies, np.load(qs), n_bootstrap=0)
    assert isinstance(err.value, TooFewFitSizesError)
    with pytest.raises(TooFewFitSizesError, match="at least 3 bank sizes"):
        representation_gap(np.load(ref), np.load(qs), min_size=1024, n_bootstrap=0)


def test_estimate_plot_writes_png(raw_arrays, tmp_path, capsys):
    _, paths = raw_arrays
    png = tmp_path / "curve.png"
    code, _, _ = _run(capsys, "estimate", paths["reference.npy"], paths["queries.npy"], "--plot", png, *ESTIMATE_OPTS)
    assert code == 0
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 5_000


def test_estimate_errors(raw_arrays, tmp_path, capsys):
    arrays, paths = raw_arrays
    ref, qs = paths["reference.npy"], paths["queries.npy"]
    assert "TRAIN " in _error(capsys, "estimate", tmp_path / "absent.npy", qs)
    assert "absent.npy does not exist" in _error(capsys, "estimate", tmp_path / "absent.npy", qs)
    assert "TEST" in _error(capsys, "estimate", ref, tmp_path / "absent.pt")

    (tmp_path / "feats.csv").write_text("1,2\n")
    err = _error(capsys, "estimate", ref, tmp_path / "feats.csv")
    assert "unsupported file type '.csv'" in err
    assert ".npy, .pt or .pth" in err

    np.save(tmp_path / "flat.npy", np.zeros(10, np.float32))
    assert "expected a 2-D (n, D) array, got shape (10,)" in _error(capsys, "estimate", tmp_path / "flat.npy", qs)
    torch.save(torch.zeros(4, 5, 6), tmp_path / "cube.pt")
    assert "got shape (4, 5, 6)" in _error(capsys, "estimate", ref, tmp_path / "cube.pt")

    np.save(tmp_path / "wide.npy", np.zeros((10, 17), np.float32))
    err = _error(capsys, "estimate", ref, tmp_path / "wide.npy")
    assert "TRAIN has 16 columns but TEST has 17" in err
    err = _error(capsys, "estimate", ref, qs, "--train-queries", tmp_path / "wide.npy")
    assert "--train-queries has 17" in err

    torch.save({"a": torch.zeros(2, 2), "b": torch.zeros(2, 2)}, tmp_path / "two.pt")
    assert "dict with keys ['a', 'b']" in _error(capsys, "estimate", ref, tmp_path / "two.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    assert "holds a list" in _error(capsys, "estimate", ref, tmp_path / "list.pt")

    (tmp_path / "garbage.npy").write_bytes(b"not an npy file")
    err = _error(capsys, "estimate", tmp_path / "garbage.npy", qs)
    assert "cannot read it as .npy: it is not a valid .npy file" in err
    assert "pickled" not in err
    np.save(tmp_path / "objects.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    assert "Object arrays cannot be loaded" in _error(capsys, "estimate", tmp_path / "objects.npy", qs)
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file")
    assert "cannot read it with torch.load" in _error(capsys, "estimate", ref, tmp_path / "garbage.pt")

    # Errors found by the library itself: its message, unchanged, plus which file is which argument.
    bad = arrays["reference"].copy()
    bad[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    err = _error(capsys, "estimate", tmp_path / "nan.npy", qs, "-q")
    assert "`reference` contains NaN or Inf in 1 of 1024 rows (first: row 3)" in err
    assert "TRAIN is `reference`" in err
    np.save(tmp_path / "ints.npy", np.ones((300, 16), np.int64))
    assert "must hold floating point values" in _error(capsys, "estimate", tmp_path / "ints.npy", qs, "-q")
    err = _error(capsys, "estimate", ref, qs, "--fit-min-size", "1024", "-q")
    assert "at least 3 bank sizes >= fit_min_size=1024" in err
    err = _error(capsys, "estimate", ref, qs, "--min-size", "1024", "-q")  # name the option the user passed
    assert "here --min-size 1024 with --ratio 2.0 gives the bank sizes" in err
    assert "--fit-min-size 16" in err

    # Fewer queries than the fit accepts: an error naming the minimum and the fix (a single query used to read dim).
    np.save(tmp_path / "few.npy", arrays["queries"][: MIN_QUERIES - 1])
    err = _error(capsys, "estimate", ref, tmp_path / "few.npy", "-q")
    assert f"`queries` holds only {MIN_QUERIES - 1} rows" in err
    assert f"needs at least MIN_QUERIES={MIN_QUERIES}: pass more held-out queries" in err
    assert "TEST is `queries`" in err
    np.save(tmp_path / "empty.npy", np.zeros((0, 16), np.float32))
    assert "`queries` needs at least 1 point, got 0" in _error(capsys, "estimate", ref, tmp_path / "empty.npy", "-q")

    # Usage errors are argparse's (exit 2, usage line).
    err = _error(capsys, "estimate", ref, qs, "--min-size", "0")
    assert "argument --min-size: must be >= 1, got 0" in err
    err = _error(capsys, "estimate", ref, qs, "--backend", "gpu")
    assert "invalid choice: 'gpu'" in err
    assert "unsupported" not in err


# ------------------------------------------------------------------------------------------------ help / version


def test_version(capsys):
    code, out, _ = _run(capsys, "--version")
    assert code == 0
    assert out == f"repgap {__version__}\n"


def test_no_command_prints_help_and_fails(capsys):
    code, out, err = _run(capsys)
    assert code == 2
    assert "analyze" in err
    assert "estimate" in err
    assert out == ""


@pytest.mark.parametrize(
    ("argv", "must_mention"),
    [
        ([], ["analyze", "estimate", "--version", "examples:", "repgap analyze "]),
        (
            ["analyze"],
            ["SNAPSHOT_DIR", "--json", "--plot", "--layer", "--backend", "--quiet", "manifest.json", "example:"],
        ),
        (
            ["estimate"],
            [
                "TRAIN",
                "TEST",
                "--train-queries",
                "--json",
                "--plot",
                "--min-size",
                "--fit-min-size",
                "--n-bootstrap",
                "--seed",
                "--no-calibrate",
                "--backend",
                ".npy",
                "single tensor",
                "(default: 200)",
                "example:",
            ],
        ),
    ],
)
def test_help_explains_every_option(capsys, argv, must_mention):
    code, out, _ = _run(capsys, *argv, "--help")
    assert code == 0
    text = " ".join(out.split())  # argparse wraps lines
    for word in must_mention:
        assert word in text, word
    # Every option has a help string.
    assert not re.search(r"^\s+--[\w-]+( \S+)?\s*$\n\s+--", out, flags=re.MULTILINE)


def test_module_entry_point_runs_without_importing_lightning():
    """``python -m lightning_repgap.cli --help`` works; the CLI never imports Lightning (checked via -X importtime)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lightning_repgap.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage: repgap")
    imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "lightning_repgap.snapshot" in imported
    assert not {m for m in imported if m == "lightning" or m.startswith("lightning.")}


# ------------------------------------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_analyze_reproduces_a_real_callback_run(tmp_path, capsys):
    """Snapshots written by RepresentationGapCallback during fit: ``analyze`` gives back the logged numbers."""
    from _helpers.models import MLP, loaders
    from lightning.pytorch import Trainer, seed_everything

    from lightning_repgap.callback import RepresentationGapCallback

    seed_everything(0)
    cb = RepresentationGapCallback(
        layer="backbone",
        train_probe=1024,
        val_probe=256,
        n_bootstrap=20,
        snapshot_dir=str(tmp_path / "snaps"),
        snapshot_on="evaluation",
        snapshot_dtype="float32",
        log_figures=False,
    )
    trainer = Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[cb],
    )
    trainer.fit(MLP(), *loaders())
    assert len(cb.history) == 2

    out_json = tmp_path / "gap.json"
    code, out, err = _run(capsys, "analyze", tmp_path / "snaps", "--json", out_json, "-q")
    assert code == 0, err
    records = json.loads(out_json.read_text())
    assert [(r["epoch"], r["step"]) for r in records] == [(h["epoch"], h["step"]) for h in cb.history]
    for record, logged in zip(records, cb.history, strict=True):
        values = {k.removeprefix("repgap/"): v for k, v in logged.items() if k.startswith("repgap/")}
        assert values.pop("valid") == 1.0  # the callback's own flag (every key defined); analyze recomputes the rest
        assert "gap_ratio" in values
        _assert_values_close(record["values"], values)
    assert "differences above" not in out
