"""Tests for lightning_repgap.snapshot: round trips, verification, listing, atomicity under SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import lightning_repgap.snapshot as snapshot_module
from lightning_repgap.snapshot import (
    MANIFEST_NAME,
    SnapshotError,
    list_snapshots,
    load_snapshot,
    read_manifest,
    write_snapshot,
)

SNAPSHOT_SOURCE = Path(snapshot_module.__file__).resolve()


def sample_arrays(rng: np.random.Generator, n: int = 50, m: int = 20, dim: int = 8) -> dict[str, np.ndarray]:
    return {
        "ref": rng.standard_normal((n, dim)).astype(np.float32),
        "query": rng.standard_normal((m, dim)),
        "ref_index": rng.permutation(1000)[:n],
        "query_labels": rng.integers(0, 10, m).astype(np.int32),
    }


def payload_offset(path: Path) -> int:
    with open(path, "rb") as fh:
        assert np.lib.format.read_magic(fh) == (1, 0)
        np.lib.format.read_array_header_1_0(fh)
        return fh.tell()


# ------------------------------------------------------------------------------------------------ round trip


def test_round_trip_default_float16(tmp_path, rng):
    arrays = sample_arrays(rng)
    meta = {"epoch": 3, "step": 120, "layer": "backbone", "metrics": {"gap": 0.25}}
    path = write_snapshot(tmp_path, "epoch=3-step=120", arrays, meta)
    assert path == tmp_path / "epoch=3-step=120"
    assert sorted(p.name for p in path.iterdir()) == [
        "manifest.json",
        "query.npy",
        "query_labels.npy",
        "ref.npy",
        "ref_index.npy",
    ]

    stored = load_snapshot(path, as_float32=False)
    assert stored.arrays["ref"].dtype == np.float16
    assert stored.arrays["query"].dtype == np.float16
    assert stored.arrays["ref_index"].dtype == np.int64
    assert stored.arrays["query_labels"].dtype == np.int64
    np.testing.assert_array_equal(stored.arrays["ref"], arrays["ref"].astype(np.float16))
    np.testing.assert_array_equal(stored.arrays["ref_index"], arrays["ref_index"])
    np.testing.assert_array_equal(stored.arrays["query_labels"], arrays["query_labels"])
    assert stored.metadata == meta
    assert stored.path == path

    loaded = load_snapshot(path)
    assert list(loaded.arrays) == list(arrays)
    assert loaded.arrays["ref"].dtype == np.float32
    assert loaded.arrays["ref_index"].dtype == np.int64
    np.testing.assert_allclose(loaded.arrays["query"], arrays["query"], rtol=1e-3, atol=1e-3)
    loaded.arrays["ref"][0, 0] = 7.0  # loaded arrays are writable


def test_manifest_contents(tmp_path, rng):
    arrays = sample_arrays(rng)
    path = write_snapshot(tmp_path, "s", arrays, {"epoch": 0})
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    assert manifest["format_version"] == snapshot_module.FORMAT_VERSION
    entries = {e["key"]: e for e in manifest["files"]}
    assert entries["ref"]["shape"] == [50, 8]
    assert entries["ref"]["dtype"] == "float16"
    assert entries["ref_index"]["dtype"] == "int64"
    for entry in manifest["files"]:
        file = path / entry["file"]
        assert entry["bytes"] == file.stat().st_size
        assert entry["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert read_manifest(path) == manifest


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_wider_dtypes_are_exact(tmp_path, rng, dtype):
    ref = rng.standard_normal((10, 3))
    path = write_snapshot(tmp_path, "s", {"ref": ref}, {}, dtype=dtype)
    stored = load_snapshot(path, as_float32=False).arrays["ref"]
    assert stored.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(stored, ref.astype(dtype))


def test_torch_tensors_and_bool(tmp_path):
    arrays = {
        "bf16": torch.randn(4, 3, dtype=torch.bfloat16, requires_grad=False),
        "grad": torch.randn(4, 3, requires_grad=True) * 2,
        "idx": torch.arange(4, dtype=torch.int32),
        "mask": np.array([True, False, True, True]),
    }
    snap = load_snapshot(write_snapshot(tmp_path, "t", arrays, {"loss": torch.tensor(0.5)}, dtype="float32"))
    np.testing.assert_array_equal(snap.arrays["bf16"], arrays["bf16"].float().numpy())
    np.testing.assert_array_equal(snap.arrays["grad"], arrays["grad"].detach().numpy())
    assert snap.arrays["idx"].dtype == np.int64
    assert snap.arrays["mask"].dtype == np.bool_
    assert snap.metadata == {"loss": 0.5}


def test_metadata_conversion(tmp_path):
    meta = {
        "epoch": np.int64(2),
        "gap": np.float32(0.5),
        "dim": torch.tensor(3.25, dtype=torch.float64),
        "nan": float("nan"),
        "inf": np.float64(np.inf),
        "sizes": np.array([1, 2, 4]),
        "nested": {"path": tmp_path / "x", "pair": (1, 2.5)},
        "flag": np.bool_(True),
    }
    snap = load_snapshot(write_snapshot(tmp_path, "m", {"a": np.zeros(2)}, meta))
    assert snap.metadata == {
        "epoch": 2,
        "gap": 0.5,
        "dim": 3.25,
        "nan": None,
        "inf": None,
        "sizes": [1, 2, 4],
        "nested": {"path": str(tmp_path / "x"), "pair": [1, 2.5]},
        "flag": True,
    }
    assert "NaN" not in (tmp_path / "m" / MANIFEST_NAME).read_text()  # strict JSON


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ({"obj": object()}, r"metadata\['obj'\] of type object"),
        ({"deep": {"x": [1, {2, 3}]}}, r"metadata\['deep'\]\['x'\]\[1\] of type set"),
        ({"k": {1: "a"}}, "keys must be str"),
        ({"big": np.zeros(20_000)}, "store large arrays in `arrays`"),
    ],
)
def test_bad_metadata_writes_nothing(tmp_path, meta, match):
    with pytest.raises(TypeError, match=match):
        write_snapshot(tmp_path, "bad", {"a": np.zeros(2)}, meta)
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("name", ["", ".hidden", "../escape", "a/b", "x.tmp-1-2", "sp ace", "a" * 201])
def test_unsafe_names_rejected(tmp_path, name):
    with pytest.raises(ValueError, match="safe file name"):
        write_snapshot(tmp_path, name, {"a": np.zeros(2)}, {})
    with pytest.raises(ValueError, match="safe file name"):
        write_snapshot(tmp_path, "ok", {name: np.zeros(2)}, {})
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="`dtype` must be one of"):
        write_snapshot(tmp_path, "s", {"a": np.zeros(2)}, {}, dtype="bfloat16")
    with pytest.raises(ValueError, match="empty"):
        write_snapshot(tmp_path, "s", {}, {})
    with pytest.raises(ValueError, match="differ only in case"):
        write_snapshot(tmp_path, "s", {"Ref": np.zeros(2), "ref": np.zeros(2)}, {})
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        write_snapshot(tmp_path, "s", {"a": [1.0, 2.0]}, {})
    with pytest.raises(TypeError, match="floating, integer or boolean"):
        write_snapshot(tmp_path, "s", {"a": np.array(["x"])}, {})
    with pytest.raises(TypeError, match="floating, integer or boolean"):
        write_snapshot(tmp_path, "s", {"a": np.zeros(2, dtype=np.complex64)}, {})


def test_float16_overflow_is_an_error(tmp_path):
    big = np.array([[1.0, 1e5], [np.inf, 0.0]])
    with pytest.raises(ValueError, match=r"1 finite values beyond the range of float16.*'float32'"):
        write_snapshot(tmp_path, "s", {"ref": big}, {})
    assert not (tmp_path / "s" / MANIFEST_NAME).exists()
    stored = load_snapshot(write_snapshot(tmp_path, "s", {"ref": big}, {}, dtype="float32")).arrays["ref"]
    assert stored[0, 1] == 1e5
    assert np.isinf(stored[1, 0])  # genuine infinities are kept, not an overflow


# ------------------------------------------------------------------------------------------------ verification


def test_flipped_byte_detected(tmp_path, rng):
    path = write_snapshot(tmp_path, "s", sample_arrays(rng), {})
    file = path / "ref.npy"
    data = bytearray(file.read_bytes())
    data[payload_offset(file) + 17] ^= 0x01
    file.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match=r"ref\.npy: SHA-256 .* corrupted"):
        load_snapshot(path)


def test_truncated_file_detected(tmp_path, rng):
    path = write_snapshot(tmp_path, "s", sample_arrays(rng), {})
    file = path / "query.npy"
    size = file.stat().st_size
    with open(file, "r+b") as fh:
        fh.truncate(size - 3)
    with pytest.raises(SnapshotError, match=rf"query\.npy: size is {size - 3} bytes but the manifest says {size}"):
        load_snapshot(path)


def test_missing_file_detected(tmp_path, rng):
    path = write_snapshot(tmp_path, "s", sample_arrays(rng), {})
    (path / "ref_index.npy").unlink()
    with pytest.raises(SnapshotError, match=r"ref_index\.npy: listed in the manifest but missing"):
        load_snapshot(path)


def test_swapped_file_detected(tmp_path, rng):
    path = write_snapshot(tmp_path, "s", sample_arrays(rng), {})
    os.replace(path / "query.npy", path / "ref.npy")
    with pytest.raises(SnapshotError, match=r"ref\.npy"):
        load_snapshot(path)


def test_manifest_shape_mismatch_detected(tmp_path):
    path = write_snapshot(tmp_path, "s", {"ref": np.zeros((4, 6))}, {})
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    manifest["files"][0]["shape"] = [6, 4]
    (path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match=r"ref\.npy: holds float16 \[4, 6\] but the manifest says float16 \[6, 4\]"):
        load_snapshot(path)


def test_missing_manifest_is_incomplete(tmp_path, rng):
    path = write_snapshot(tmp_path, "s", sample_arrays(rng), {})
    (path / MANIFEST_NAME).unlink()
    with pytest.raises(SnapshotError, match="Incomplete snapshot"):
        load_snapshot(path)
    with pytest.raises(SnapshotError, match="not a snapshot directory"):
        load_snapshot(tmp_path / "nope")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ('{"format_version": 1}', "malformed"),
        ('{"format_version": 99, "files": []}', "format_version 99"),
        ('{"format_version": 1, "files": [{"key": "a", "file": "../../etc/passwd"}]}', "bad file entry"),
    ],
)
def test_bad_manifest(tmp_path, text, match):
    path = write_snapshot(tmp_path, "s", {"a": np.zeros(2)}, {})
    (path / MANIFEST_NAME).write_text(text)
    with pytest.raises(SnapshotError, match=match):
        load_snapshot(path)
    assert list_snapshots(tmp_path) == []  # skipped, with a warning


def test_snapshot_error_is_value_error():
    assert issubclass(SnapshotError, ValueError)


# ------------------------------------------------------------------------------------------------ listing / overwrite


def test_list_snapshots_order_and_filtering(tmp_path):
    def write(name: str, **meta: object) -> None:
        write_snapshot(tmp_path, name, {"a": np.zeros(2)}, meta)

    write("b-late", epoch=10, step=5)
    write("a-early", epoch=2, step=100)
    write("c-same-epoch", epoch=2, step=50)
    write("no-epoch")
    write("z-tie", epoch=10, step=5)
    (tmp_path / "incomplete").mkdir()
    np.save(tmp_path / "incomplete" / "ref.npy", np.zeros(3))
    (tmp_path / "stray.npy.tmp-123-abcd").write_bytes(b"partial")
    (tmp_path / "a-early" / "ref.npy.tmp-99-beef").write_bytes(b"partial")
    (tmp_path / "file.txt").write_text("not a snapshot")
    names = [p.name for p in list_snapshots(tmp_path)]
    assert names == ["no-epoch", "c-same-epoch", "a-early", "b-late", "z-tie"]
    assert load_snapshot(tmp_path / "a-early").metadata == {"epoch": 2, "step": 100}
    with pytest.raises(FileNotFoundError):
        list_snapshots(tmp_path / "missing")


def test_overwrite_replaces_files_and_drops_stale_ones(tmp_path, rng):
    path = write_snapshot(tmp_path, "s", {"ref": np.zeros((3, 2)), "old": np.ones(4)}, {"epoch": 1})
    (path / "user_notes.txt").write_text("keep me")
    new_ref = rng.standard_normal((5, 2))
    write_snapshot(tmp_path, "s", {"ref": new_ref, "query": np.ones((2, 2))}, {"epoch": 2})
    snap = load_snapshot(path)
    assert set(snap.arrays) == {"ref", "query"}
    assert snap.metadata == {"epoch": 2}
    np.testing.assert_allclose(snap.arrays["ref"], new_ref, atol=1e-3, rtol=1e-3)
    assert not (path / "old.npy").exists()
    assert (path / "user_notes.txt").exists()  # files the manifest never listed are left alone


def test_failure_mid_write_leaves_no_temp_files_and_no_manifest(tmp_path, monkeypatch):
    real_replace = os.replace
    calls = []

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(Path(dst).name)
        if Path(dst).name == "query.npy":
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(snapshot_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_snapshot(tmp_path, "s", {"ref": np.zeros((3, 2)), "query": np.zeros((2, 2))}, {})
    assert calls == ["ref.npy", "query.npy"]
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["ref.npy"]
    assert list_snapshots(tmp_path) == []


def test_failure_while_serialising_cleans_temp_files(tmp_path, monkeypatch):
    def broken_write_array(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    write_snapshot(tmp_path, "s", {"ref": np.zeros(2)}, {"epoch": 1})
    monkeypatch.setattr(snapshot_module.np.lib.format, "write_array", broken_write_array)
    with pytest.raises(KeyboardInterrupt):
        write_snapshot(tmp_path, "s", {"ref": np.ones(2)}, {"epoch": 2})
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["manifest.json", "ref.npy"]
    assert load_snapshot(tmp_path / "s").metadata == {"epoch": 1}  # the old snapshot is untouched


# ------------------------------------------------------------------------------------------------ SIGKILL

# The writer imports snapshot.py by file path, not through the package, so that it starts in a fraction of a
# second (no torch/lightning import) and the kills land in the middle of writes rather than during start-up.
WRITER = """
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("repgap_snapshot_under_test", sys.argv[1])
snapshot = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(snapshot)
root, offset = sys.argv[2], int(sys.argv[3])
base = np.random.default_rng(0).standard_normal((1024, 512)).astype(np.float32)
print("ready", flush=True)
i = offset
while True:
    # names are reused, so most writes replace an existing snapshot
    arrays = {"ref": base + i, "query": base[:512] - i, "ref_index": np.arange(1024) + i}
    snapshot.write_snapshot(root, f"snap-{i % 3}", arrays, {"epoch": i, "step": i, "writer": "sigkill"})
    i += 1
"""


def expected_arrays(epoch: int) -> dict[str, np.ndarray]:
    base = np.random.default_rng(0).standard_normal((1024, 512)).astype(np.float32)
    return {
        "ref": (base + epoch).astype(np.float16),
        "query": (base[:512] - epoch).astype(np.float16),
        "ref_index": np.arange(1024, dtype=np.int64) + epoch,
    }


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_never_leaves_a_readable_partial_snapshot(tmp_path):
    rng = random.Random(1234)
    root = tmp_path / "snaps"
    root.mkdir()
    started = time.monotonic()
    for repetition in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(SNAPSHOT_SOURCE), str(root), str(1000 * repetition)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 0.6))
            assert proc.poll() is None, "the writer died on its own"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 30

    listed = list_snapshots(root)
    assert listed, "no snapshot was ever completed: make the delays longer"
    epochs = []
    for path in listed:
        snap = load_snapshot(path, as_float32=False)  # verifies sizes, hashes, shapes, dtypes
        epoch = snap.metadata["epoch"]
        epochs.append(epoch)
        for key, expected in expected_arrays(epoch).items():
            np.testing.assert_array_equal(snap.arrays[key], expected, err_msg=f"{path.name}/{key}")
    assert epochs == sorted(epochs)
    # every final-named .npy in a directory with a manifest is complete and has the manifest's shape
    for manifest_path in root.glob(f"*/{MANIFEST_NAME}"):
        shapes = {e["file"]: tuple(e["shape"]) for e in json.loads(manifest_path.read_text())["files"]}
        for npy in manifest_path.parent.glob("*.npy"):
            assert np.load(npy).shape == shapes[npy.name]


# The crash-point writer: for k = 1, 2, ... a forked child replaces a complete snapshot (epoch 0) by a new one
# (epoch 1) and dies with os._exit, which like SIGKILL runs no cleanup, just before its k-th file-system
# operation (a write into a file, fsync, rename or unlink). This covers every step of the protocol deterministically;
# the random SIGKILL test below only samples them.
CRASH_WRITER = """
import importlib.util, os, sys
import numpy as np
spec = importlib.util.spec_from_file_location("repgap_snapshot_under_test", sys.argv[1])
snapshot = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(snapshot)
root = sys.argv[2]

def arrays(epoch):
    return {"ref": np.full((64, 16), epoch, np.float32), "query": np.full((8, 16), -epoch, np.float32),
            "old_only" if epoch == 0 else "new_only": np.arange(5) + epoch}

counter = [0]
def crashing(fn):
    def wrapper(*args, **kwargs):
        counter[0] += 1
        if counter[0] == crash_at:
            os._exit(3)
        return fn(*args, **kwargs)
    return wrapper

for crash_at in range(1, 200):
    directory = os.path.join(root, f"k{crash_at:03d}")
    snapshot.write_snapshot(directory, "s", arrays(0), {"epoch": 0})
    pid = os.fork()
    if pid == 0:
        for name in ("replace", "fsync", "unlink"):
            setattr(os, name, crashing(getattr(os, name)))
        snapshot._HashingWriter.write = crashing(snapshot._HashingWriter.write)
        snapshot.write_snapshot(directory, "s", arrays(1), {"epoch": 1})
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        print(crash_at, flush=True)  # the write completed: every crash point has been visited
        break
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_crash_at_every_step_leaves_old_or_new_snapshot(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", CRASH_WRITER, str(SNAPSHOT_SOURCE), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    completed_at = int(result.stdout.strip())
    assert completed_at > 15  # 3 arrays x (header, data, fsync) + renames + manifest + directory fsyncs
    seen = set()
    for k in range(1, completed_at + 1):
        root = tmp_path / f"k{k:03d}"
        listed = list_snapshots(root)
        assert listed in ([], [root / "s"]), f"crash point {k}"
        if not listed:
            seen.add("none")
            continue
        snap = load_snapshot(listed[0])  # sizes and hashes verified
        epoch = snap.metadata["epoch"]
        seen.add(epoch)
        assert set(snap.arrays) == {"ref", "query", "old_only" if epoch == 0 else "new_only"}, f"crash point {k}"
        assert (snap.arrays["ref"] == epoch).all(), f"crash point {k}"
        assert (snap.arrays["query"] == -epoch).all(), f"crash point {k}"
    assert seen == {0, "none", 1}  # old kept until withdrawn, withdrawn during the renames, then the new one
