"""Check the built sdist and wheel: version, licence, package data and entry point, before anything is installed.

Used by ``scripts/check_wheel.sh``; prints one line per archive and exits non-zero naming every missing or wrong
item. The expected version is read from the source (``lightning_repgap/__init__.py``) without importing it.

    python scripts/check_dist.py DIST_DIR
"""

from __future__ import annotations

import argparse
import ast
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "lightning_repgap"
# Package data the library cannot work without (the calibration tables) or that typing users need.
PACKAGE_DATA = ("calibration_tables.npz", "py.typed")
# Release files at the top of the sdist.
SDIST_FILES = ("LICENSE", "README.md", "pyproject.toml", "PKG-INFO", "CHANGELOG.md", "CITATION.cff", "CONTRIBUTING.md")
# Only the library is installed: these would shadow or leak repository code into site-packages.
FORBIDDEN_TOP_LEVEL = ("tests", "studies", "benchmarks", "examples", "scripts", "docs")


def source_version() -> str:
    """``__version__`` of ``lightning_repgap/__init__.py``, read statically (as setuptools does)."""
    tree = ast.parse((ROOT / NAME / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    raise SystemExit(f"no literal __version__ in {NAME}/__init__.py")


def check_metadata(text: str, version: str, where: str) -> list[str]:
    """Problems in a PKG-INFO / METADATA file."""
    meta = HeaderParser().parsestr(text)
    problems = []
    if meta["Version"] != version:
        problems.append(f"{where}: Version {meta['Version']!r}, expected {version!r}")
    if meta["License-Expression"] != "Apache-2.0":
        problems.append(f"{where}: License-Expression {meta['License-Expression']!r}, expected 'Apache-2.0'")
    if "LICENSE" not in (meta.get_all("License-File") or []):
        problems.append(f"{where}: no License-File: LICENSE")
    if not any(req.startswith("torch") for req in meta.get_all("Requires-Dist") or []):
        problems.append(f"{where}: torch is not a declared dependency")
    return problems


def check_sdist(path: Path, version: str) -> list[str]:
    """Problems in the source distribution (the wheel is built from it, so it must carry the package data)."""
    prefix = f"{NAME}-{version}/"
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
        pkg_info = tar.extractfile(prefix + "PKG-INFO") if prefix + "PKG-INFO" in names else None
        problems = check_metadata(pkg_info.read().decode(), version, path.name) if pkg_info else []
    wanted = [prefix + f for f in SDIST_FILES] + [f"{prefix}{NAME}/{f}" for f in PACKAGE_DATA]
    problems += [f"{path.name}: missing {w}" for w in wanted if w not in names]
    return problems


def check_wheel(path: Path, version: str) -> list[str]:
    """Problems in the wheel: package data, licence file, metadata, console script, nothing but the package."""
    dist_info = f"{NAME}-{version}.dist-info/"
    with zipfile.ZipFile(path) as whl:
        names = set(whl.namelist())
        read = {n: whl.read(n).decode() for n in (dist_info + "METADATA", dist_info + "entry_points.txt") if n in names}
    problems = [f"{path.name}: missing {NAME}/{f}" for f in PACKAGE_DATA if f"{NAME}/{f}" not in names]
    if dist_info + "licenses/LICENSE" not in names:
        problems.append(f"{path.name}: missing {dist_info}licenses/LICENSE")
    if dist_info + "METADATA" in read:
        problems += check_metadata(read[dist_info + "METADATA"], version, path.name)
    else:
        problems.append(f"{path.name}: missing {dist_info}METADATA")
    if "repgap = lightning_repgap.cli:main" not in read.get(dist_info + "entry_points.txt", ""):
        problems.append(f"{path.name}: no console script 'repgap = lightning_repgap.cli:main'")
    top = {n.split("/", 1)[0] for n in names}
    problems += [f"{path.name}: ships top-level {t!r}" for t in FORBIDDEN_TOP_LEVEL if t in top]
    return problems


def main(argv: list[str] | None = None) -> int:
    """Check the one sdist and the one wheel in ``DIST_DIR``; 0 if both are complete, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dist_dir", type=Path)
    args = parser.parse_args(argv)
    version = source_version()
    sdists = sorted(args.dist_dir.glob("*.tar.gz"))
    wheels = sorted(args.dist_dir.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        print(f"check_dist: expected one sdist and one wheel in {args.dist_dir}, found {sdists + wheels}")
        return 1
    expected = {f"{NAME}-{version}.tar.gz", f"{NAME}-{version}-py3-none-any.whl"}
    problems = [
        f"unexpected file name {p.name} (version {version})" for p in (*sdists, *wheels) if p.name not in expected
    ]
    problems += check_sdist(sdists[0], version) + check_wheel(wheels[0], version)
    for problem in problems:
        print(f"check_dist: {problem}")
    if not problems:
        print(f"check_dist: {sdists[0].name} and {wheels[0].name} carry {', '.join(PACKAGE_DATA)} and LICENSE")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
