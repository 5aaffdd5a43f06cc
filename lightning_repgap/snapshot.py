"""Atomic on-disk snapshots of representations: ``.npy`` arrays plus a JSON manifest.

A snapshot is a directory ``root/name/`` holding one ``<key>.npy`` per array and a ``manifest.json`` that lists
every file with its shape, dtype, byte size and SHA-256, next to free-form metadata (epoch, step, layer, metrics).

**Crash safety.** Nothing half-written is ever visible under a final name:

1. each array is written to ``<key>.npy.tmp-<pid>-<random>`` in the snapshot directory, flushed and ``fsync``-ed;
2. when the directory already holds a snapshot, its ``manifest.json`` is removed first, which withdraws it;
3. each temporary file is renamed over its final name with :func:`os.replace` (atomic on POSIX and Windows);
4. ``manifest.json`` is written the same way, **last**, and the directory is ``fsync``-ed.

A directory without ``manifest.json`` is an *incomplete snapshot*: :func:`list_snapshots` skips it and
:func:`load_snapshot` refuses it. A process killed at any moment therefore leaves either the previous complete
snapshot, no snapshot, or the new complete one; never a manifest listing a file that is not the one it describes,
and :func:`load_snapshot` checks sizes and hashes anyway. Temporary files of a killed writer stay behind; nothing
ever reads them and they can be deleted at any time.

Floating arrays are stored as ``float16`` by default (half the size of ``float32``; a representation gap needs
about three significant digits); a value that overflows ``float16`` is an error rather than a silent ``inf``.
Integer arrays (probe indices, labels) are stored as ``int64``. Metadata is stored as strict JSON: numpy and torch
scalars become Python numbers, non-finite floats become ``null``.

This module imports neither torch nor Lightning, so the ``repgap`` CLI can read snapshots quickly; torch tensors
are still accepted when torch is loaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "TMP_MARK",
    "Snapshot",
    "SnapshotError",
    "atomic_write",
    "jsonable",
    "list_snapshots",
    "load_snapshot",
    "read_manifest",
    "write_snapshot",
]

log = logging.getLogger(__name__)

#: Version of the on-disk layout written by :func:`write_snapshot`.
FORMAT_VERSION = 1
#: File name of the manifest, written last.
MANIFEST_NAME = "manifest.json"

_FLOAT_DTYPES = ("float16", "float32", "float64")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=-]{0,199}")
#: Marks the temporary names of files and directories being written (never part of a complete snapshot).
TMP_MARK = ".tmp-"
_HASH_CHUNK = 1 << 20
# numpy writes version 1.0 headers (at most 64 KiB) for everything this module stores.
_MAX_HEADER = 1 << 17
# Largest array accepted inside the JSON metadata; bigger ones belong in `arrays`.
_MAX_METADATA_ELEMENTS = 10_000


class SnapshotError(ValueError):
    """A snapshot on disk is incomplete, corrupted, or does not match its manifest."""


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A snapshot loaded and verified by :func:`load_snapshot`.

    Attributes:
        path: the snapshot directory.
        arrays: ``{key: array}`` in manifest order.
        metadata: the metadata given to :func:`write_snapshot`, as read back from JSON.

    """

    path: Path
    arrays: dict[str, np.ndarray]
    metadata: dict[str, Any]


def _check_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value) or TMP_MARK in value:
        raise ValueError(
            f"{what} must be a safe file name: 1-200 characters from letters, digits, '.', '_', '=', '-', starting"
            f" with a letter or digit and not containing {TMP_MARK!r}; got {value!r}."
        )


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _tensor_to_numpy(value: Any) -> np.ndarray:
    tensor = value.detach().cpu()
    if tensor.dtype.is_floating_point and tensor.element_size() == 2:
        tensor = tensor.float()  # numpy has no bfloat16; float16 goes through float32 losslessly
    return np.asarray(tensor.numpy())


def _prepare_array(key: str, value: np.ndarray | Tensor, dtype: str) -> np.ndarray:
    """Convert one array to its stored dtype: floats to ``dtype``, integers to int64, booleans kept."""
    arr = _tensor_to_numpy(value) if _is_tensor(value) else value
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"arrays[{key!r}] must be a numpy array or a torch tensor, got {type(value).__name__}.")
    kind = arr.dtype.kind
    if kind == "f":
        with np.errstate(over="ignore"):
            out = arr.astype(dtype, copy=False)
        if out.dtype.itemsize < arr.dtype.itemsize:
            overflow = np.isinf(out) & np.isfinite(arr)
            if overflow.any():
                raise ValueError(
                    f"arrays[{key!r}] has {int(overflow.sum())} finite values beyond the range of {dtype} (max"
                    f" |x| = {float(np.abs(arr[np.isfinite(arr)]).max()):.4g}); pass a wider `dtype`, e.g. 'float32'."
                )
    elif kind in "iu":
        if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            raise ValueError(f"arrays[{key!r}] holds uint64 values that do not fit in int64.")
        out = arr.astype(np.int64, copy=False)
    elif kind == "b":
        out = arr
    else:
        raise TypeError(f"arrays[{key!r}] must hold floating, integer or boolean values, got dtype {arr.dtype}.")
    return np.ascontiguousarray(out)


def jsonable(value: Any, *, max_array_elements: int | None = None, name: str = "value") -> Any:
    """Convert ``value`` to strict JSON types: numpy/torch scalars and arrays to Python, non-finite floats to ``None``.

    The one converter behind snapshot manifests and the ``repgap`` CLI's JSON output.

    Args:
        value: nested mappings (``str`` keys), lists, tuples, numbers, strings, paths, numpy or torch arrays.
        max_array_elements: largest array accepted (``None``: any size).
        name: what ``value`` is, for error messages (``metadata['epoch']``).

    Returns:
        The same structure in ``dict`` / ``list`` / ``int`` / ``float`` / ``str`` / ``bool`` / ``None``.

    Raises:
        TypeError: for a non-``str`` key, an array over ``max_array_elements``, or a type JSON cannot hold; the
            message locates the value.

    Example:
        >>> jsonable({"gap": np.float32(0.5), "sizes": np.arange(3), "dim": float("inf"), "out": Path("a/b")})
        {'gap': 0.5, 'sizes': [0, 1, 2], 'dim': None, 'out': 'a/b'}

    """
    return _jsonable(value, name, max_array_elements)


def _jsonable(value: Any, where: str, limit: int | None) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _jsonable(value.item(), where, limit)
    if isinstance(value, np.ndarray) or _is_tensor(value):
        size = value.size if isinstance(value, np.ndarray) else value.numel()
        if limit is not None and size > limit:
            raise TypeError(f"{where} is an array of {size} elements; store large arrays in `arrays`, not metadata.")
        return _jsonable(_tensor_to_numpy(value).tolist() if _is_tensor(value) else value.tolist(), where, limit)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has a key {k!r} of type {type(k).__name__}; JSON keys must be str.")
            out[k] = _jsonable(v, f"{where}[{k!r}]", limit)
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]", limit) for i, v in enumerate(value)]
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"{where} of type {type(value).__name__} is not JSON-serialisable.")


class _HashingWriter:
    """File-like wrapper that hashes and counts what is written through it."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha256.update(view)
        self._fh.write(view)
        self.size += view.nbytes
        return view.nbytes


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(
    directory: Path, filename: str, fill: Callable[[Any], object], temps: list[Path]
) -> tuple[Path, int, str]:
    """Write a temporary sibling of ``filename`` with ``fill(writer)``, fsync it; return (path, size, sha256)."""
    tmp = directory / f"{filename}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    temps.append(tmp)
    with os.fdopen(fd, "wb") as fh:
        writer = _HashingWriter(fh)
        fill(writer)
        fh.flush()
        os.fsync(fh.fileno())
    return tmp, writer.size, writer.sha256.hexdigest()


def _npy_fill(arr: np.ndarray) -> Callable[[Any], object]:
    def fill(writer: Any) -> None:
        np.lib.format.write_array(writer, arr, allow_pickle=False)

    return fill


def _old_files(directory: Path) -> list[str]:
    """File names listed by an existing manifest in ``directory`` (empty if none or unreadable)."""
    try:
        manifest = read_manifest(directory)
    except SnapshotError:
        return []
    return [e["file"] for e in manifest.get("files", []) if isinstance(e, dict) and _safe_file(e.get("file"))]


def _safe_file(name: Any) -> bool:
    return isinstance(name, str) and bool(_SAFE_NAME.fullmatch(name)) and TMP_MARK not in name


def write_snapshot(
    root: str | os.PathLike[str],
    name: str,
    arrays: Mapping[str, np.ndarray | Tensor],
    metadata: Mapping[str, Any],
    dtype: str = "float16",
) -> Path:
    """Write arrays and metadata to ``root/name/`` atomically, manifest last.

    Args:
        root: directory holding the snapshots; created if needed.
        name: the snapshot's directory name (a safe file name, e.g. ``"epoch=3-step=400"``).
        arrays: ``{key: array}``; each is stored as ``<key>.npy``. Keys are safe file names.
        metadata: JSON-serialisable mapping (numpy/torch scalars and small arrays are converted, non-finite floats
            become ``null``). ``epoch`` and ``step`` entries order :func:`list_snapshots`.
        dtype: storage dtype of floating arrays: ``"float16"``, ``"float32"`` or ``"float64"``.

    Returns:
        The snapshot directory.

    Raises:
        ValueError: for an unsafe name or key, an unknown ``dtype``, no arrays, or values overflowing ``dtype``.
        TypeError: for arrays that are not numeric arrays/tensors, or metadata that is not JSON-serialisable.

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> path = write_snapshot(root, "epoch=0", {"ref": np.ones((4, 3)), "idx": np.arange(4)}, {"epoch": 0})
        >>> sorted(p.name for p in path.iterdir())
        ['idx.npy', 'manifest.json', 'ref.npy']
        >>> snap = load_snapshot(path, as_float32=False)
        >>> snap.arrays["ref"].dtype, snap.arrays["idx"].dtype, snap.metadata
        (dtype('float16'), dtype('int64'), {'epoch': 0})

    """
    _check_name(name, "`name`")
    if dtype not in _FLOAT_DTYPES:
        raise ValueError(f"`dtype` must be one of {list(_FLOAT_DTYPES)}, got {dtype!r}.")
    if not arrays:
        raise ValueError("`arrays` is empty: a snapshot needs at least one array.")
    folded: dict[str, str] = {}
    for key in arrays:
        _check_name(key, f"Array key {key!r}")
        if key.casefold() in folded:  # distinct keys must stay distinct files on case-insensitive file systems
            raise ValueError(f"Array keys {folded[key.casefold()]!r} and {key!r} differ only in case.")
        folded[key.casefold()] = key
    meta = jsonable(dict(metadata), max_array_elements=_MAX_METADATA_ELEMENTS, name="metadata")
    prepared = {key: _prepare_array(key, value, dtype) for key, value in arrays.items()}

    directory = Path(root) / name
    directory.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    try:
        entries = []
        renames = []
        for key, arr in prepared.items():
            filename = f"{key}.npy"
            tmp, size, digest = _write_temp(directory, filename, _npy_fill(arr), temps)
            renames.append((tmp, directory / filename))
            entries.append({
                "key": key,
                "file": filename,
                "shape": list(arr.shape),
                "dtype": arr.dtype.name,
                "bytes": size,
                "sha256": digest,
            })
        manifest = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "created_unix": time.time(),
            "metadata": meta,
            "files": entries,
        }
        text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"

        manifest_path = directory / MANIFEST_NAME
        stale = [f for f in _old_files(directory) if f not in {e["file"] for e in entries}]
        if manifest_path.exists():
            manifest_path.unlink()  # withdraw the old snapshot before touching its files
            _fsync_dir(directory)
        for tmp, final in renames:
            os.replace(tmp, final)
        for filename in stale:
            (directory / filename).unlink(missing_ok=True)
        _fsync_dir(directory)
        atomic_write(manifest_path, text.encode())
    finally:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    log.debug("wrote snapshot %s (%d arrays)", directory, len(entries))
    return directory


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` so that ``path`` is never seen half-written.

    The bytes go to a temporary sibling (``<name>.tmp-<pid>-<random>``), which is flushed, ``fsync``-ed and renamed
    over ``path`` with :func:`os.replace`; the directory is then ``fsync``-ed. On failure the temporary file is
    removed and ``path`` keeps its previous content. Every file this package writes goes through here (or, for
    arrays streamed while hashed, through the same temporary-file helper).

    Args:
        path: the file to create or replace; its directory must exist.
        data: the complete new content.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: if the directory is missing or not writable (``path`` is untouched).

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "out.json"
        >>> atomic_write(target, b"{}").read_bytes(), [p.name for p in target.parent.iterdir()]
        (b'{}', ['out.json'])

    """
    target = Path(path)
    temps: list[Path] = []
    try:
        tmp, _, _ = _write_temp(target.parent, target.name, lambda w: w.write(data), temps)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
    return target


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check the manifest of the snapshot directory ``path``, without reading the arrays.

    Args:
        path: a snapshot directory.

    Returns:
        The manifest: ``format_version``, ``name``, ``created_unix``, ``metadata`` and ``files`` (a list of
        ``{"key", "file", "shape", "dtype", "bytes", "sha256"}``).

    Raises:
        SnapshotError: if ``path`` is not a directory, has no manifest (an incomplete snapshot), or the manifest is
            unreadable, malformed, or from a newer format version.

    Example:
        >>> import tempfile
        >>> path = write_snapshot(tempfile.mkdtemp(), "s", {"q": np.zeros((2, 2))}, {"step": 7})
        >>> manifest = read_manifest(path)
        >>> manifest["metadata"], [(f["file"], f["shape"], f["dtype"]) for f in manifest["files"]]
        ({'step': 7}, [('q.npy', [2, 2], 'float16')])

    """
    directory = Path(path)
    if not directory.is_dir():
        raise SnapshotError(f"{directory} is not a snapshot directory (it does not exist or is not a directory).")
    manifest_path = directory / MANIFEST_NAME
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SnapshotError(
            f"Incomplete snapshot: {directory} has no {MANIFEST_NAME} (its write did not finish, or it is not a"
            " snapshot directory)."
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SnapshotError(f"Cannot read {manifest_path}: {err}") from err
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as err:
        raise SnapshotError(f"{manifest_path} is not valid JSON: {err}") from err
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise SnapshotError(f"{manifest_path} is malformed: expected an object with a 'files' list.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise SnapshotError(
            f"{manifest_path} has format_version {version!r}; this version of lightning_repgap reads up to"
            f" {FORMAT_VERSION}."
        )
    if not isinstance(manifest.get("metadata", {}), dict):
        raise SnapshotError(f"{manifest_path} is malformed: 'metadata' must be an object.")
    for entry in manifest["files"]:
        _check_entry(entry, manifest_path)
    return manifest


def _check_entry(entry: Any, manifest_path: Path) -> None:
    ok = (
        isinstance(entry, dict)
        and isinstance(entry.get("key"), str)
        and _safe_file(entry.get("file"))
        and isinstance(entry.get("shape"), list)
        and all(isinstance(s, int) and s >= 0 for s in entry["shape"])
        and entry.get("dtype") in (*_FLOAT_DTYPES, "int64", "bool")
        and isinstance(entry.get("bytes"), int)
        and isinstance(entry.get("sha256"), str)
    )
    if not ok:
        raise SnapshotError(f"{manifest_path} is malformed: bad file entry {entry!r}.")


def _read_verified(file: Path, entry: dict[str, Any]) -> bytearray:
    """Read ``file`` once and check its size and SHA-256 against the manifest ``entry``."""
    try:
        with open(file, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size != entry["bytes"]:
                raise SnapshotError(
                    f"{file}: size is {size} bytes but the manifest says {entry['bytes']} (truncated or replaced)."
                )
            data = bytearray(size)
            if fh.readinto(data) != size:
                raise SnapshotError(f"{file}: changed size while being read.")
    except FileNotFoundError:
        raise SnapshotError(f"{file}: listed in the manifest but missing.") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise SnapshotError(
            f"{file}: SHA-256 {digest} does not match the manifest ({entry['sha256']}); it is corrupted."
        )
    return data


def _decode_npy(data: bytearray, file: Path) -> np.ndarray:
    """Decode ``.npy`` bytes without copying the payload."""
    header = io.BytesIO(bytes(data[:_MAX_HEADER]))
    try:
        version = np.lib.format.read_magic(header)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(header)
        else:
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(header)
    except ValueError as err:
        raise SnapshotError(f"{file}: not a valid .npy file ({err}).") from err
    if dtype.hasobject:
        raise SnapshotError(f"{file}: holds Python objects, which snapshots never contain.")
    count = math.prod(shape)
    offset = header.tell()
    if len(data) - offset != count * dtype.itemsize:
        raise SnapshotError(f"{file}: payload has {len(data) - offset} bytes, header implies {count * dtype.itemsize}.")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if fortran_order else "C")


def load_snapshot(path: str | os.PathLike[str], *, as_float32: bool = True) -> Snapshot:
    """Load a snapshot directory and verify every file against its manifest.

    Args:
        path: a directory written by :func:`write_snapshot`.
        as_float32: return floating arrays as ``float32`` (the default) rather than their stored dtype.

    Returns:
        The verified :class:`Snapshot`.

    Raises:
        SnapshotError: if the manifest is missing ("incomplete snapshot") or malformed, or a listed file is
            missing, has the wrong size or hash, or decodes to another shape or dtype. The message names the file.

    Example:
        >>> import tempfile
        >>> path = write_snapshot(tempfile.mkdtemp(), "s", {"ref": np.full((3, 2), 0.1)}, {"epoch": 1})
        >>> snap = load_snapshot(path)
        >>> snap.arrays["ref"].dtype, snap.arrays["ref"].shape, snap.metadata["epoch"]
        (dtype('float32'), (3, 2), 1)

    """
    directory = Path(path)
    manifest = read_manifest(directory)
    arrays: dict[str, np.ndarray] = {}
    for entry in manifest["files"]:
        file = directory / entry["file"]
        arr = _decode_npy(_read_verified(file, entry), file)
        if list(arr.shape) != entry["shape"] or arr.dtype.name != entry["dtype"]:
            raise SnapshotError(
                f"{file}: holds {arr.dtype.name} {list(arr.shape)} but the manifest says {entry['dtype']}"
                f" {entry['shape']}."
            )
        if as_float32 and arr.dtype.kind == "f":
            arr = arr.astype(np.float32, copy=False)
        arrays[entry["key"]] = arr
    return Snapshot(path=directory, arrays=arrays, metadata=dict(manifest.get("metadata", {})))


def _order_key(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return -1.0


def _iter_candidates(root: Path) -> Iterator[Path]:
    for child in root.iterdir():
        if child.name.startswith(".") or TMP_MARK in child.name or not child.is_dir():
            continue
        yield child


def list_snapshots(root: str | os.PathLike[str]) -> list[Path]:
    """List the complete snapshots under ``root``, oldest first.

    A snapshot is complete when its directory holds a readable ``manifest.json``; directories without one (a
    write in progress or killed) and temporary files are ignored, and a corrupt manifest is skipped with a
    warning. The files themselves are verified by :func:`load_snapshot`, not here.

    Args:
        root: the directory given to :func:`write_snapshot`.

    Returns:
        Snapshot directories sorted by metadata ``(epoch, step)`` (missing values count as -1), then by name.

    Raises:
        FileNotFoundError: if ``root`` is not a directory.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> for epoch in (10, 2):
        ...     _ = write_snapshot(root, f"epoch={epoch}", {"ref": np.zeros((2, 2))}, {"epoch": epoch, "step": 0})
        >>> (root / "epoch=11").mkdir()  # no manifest: incomplete
        >>> [p.name for p in list_snapshots(root)]
        ['epoch=2', 'epoch=10']

    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise FileNotFoundError(f"Snapshot root {root_path} is not a directory.")
    found: list[tuple[float, float, str, Path]] = []
    for child in _iter_candidates(root_path):
        if not (child / MANIFEST_NAME).is_file():
            continue
        try:
            metadata = read_manifest(child).get("metadata", {})
        except SnapshotError as err:
            log.warning("skipping snapshot %s: %s", child, err)
            continue
        found.append((_order_key(metadata.get("epoch")), _order_key(metadata.get("step")), child.name, child))
    found.sort(key=lambda item: item[:3])
    return [item[3] for item in found]
