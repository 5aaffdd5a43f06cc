"""What a snapshot root holds besides its complete snapshots: damaged manifests and unfinished writes.

:func:`lightning_repgap.snapshot.list_snapshots` returns the complete snapshots only. ``repgap analyze`` must also
*say* what it skipped, one line each, so a run that lost snapshots to a full disk or a killed job does not look
complete.
"""

from __future__ import annotations

from pathlib import Path

from lightning_repgap.snapshot import MANIFEST_NAME, TMP_MARK, SnapshotError, read_manifest


def unreadable(root: Path) -> tuple[list[tuple[Path, str]], list[Path]]:
    """Snapshot directories under ``root`` whose manifest cannot be read, and those without a manifest.

    Args:
        root: a snapshot root (as given to :func:`~lightning_repgap.snapshot.write_snapshot`).

    Returns:
        ``(damaged, incomplete)``: ``[(directory, reason)]`` for unreadable manifests, sorted by name, and the
        directories with no manifest at all (a write that never finished), sorted by name.

    """
    damaged: list[tuple[Path, str]] = []
    incomplete: list[Path] = []
    for child in sorted(root.iterdir()):
        if child.name.startswith(".") or TMP_MARK in child.name or not child.is_dir():
            continue
        if not (child / MANIFEST_NAME).is_file():
            incomplete.append(child)
            continue
        try:
            read_manifest(child)
        except SnapshotError as err:
            damaged.append((child, str(err)))
    return damaged, incomplete


__all__ = ["unreadable"]
