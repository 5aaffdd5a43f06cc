"""The package layout rules of docs/architecture.md, checked on the source so that they stay true."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_repgap"
MODULES = sorted(PACKAGE.glob("*.py"))
MAX_LINES = 700
# torchmetrics' pattern: the Metric calls the functional's private update/compute pair.
ALLOWED_PRIVATE = {("metric", "functional", "_gap_update"), ("metric", "functional", "_gap_compute")}


def _private_imports(path: Path) -> list[tuple[str, str, str]]:
    """``(importer, public module, private name)`` for every private name imported from a public package module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lightning_repgap."):
            source = node.module.split(".", 1)[1]
            if source.startswith("_"):
                continue  # private modules exist to be imported by the package
            found += [(path.stem, source, a.name) for a in node.names if a.name.startswith("_")]
    return found


def test_the_package_has_modules():
    assert len(MODULES) > 20


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_no_module_over_the_line_limit(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_no_private_name_of_a_public_module_is_imported(path):
    assert [i for i in _private_imports(path) if i not in ALLOWED_PRIVATE] == []


def test_the_private_import_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from lightning_repgap.gap import _secret\nfrom lightning_repgap._threads import _ok\n")
    assert _private_imports(bad) == [("bad", "gap", "_secret")]


@pytest.mark.parametrize("path", [p for p in MODULES if p.stem != "__init__"], ids=lambda p: p.name)
def test_every_module_declares_all(path):
    tree = ast.parse(path.read_text())
    names = {
        t.id
        for n in tree.body
        if isinstance(n, (ast.Assign, ast.AnnAssign))
        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
        if isinstance(t, ast.Name)
    }
    assert "__all__" in names


def test_every_module_is_in_the_readme_layout_table():
    # The README's layout table is the map a newcomer reads first; a module missing from it is invisible there.
    readme = (PACKAGE.parent / "README.md").read_text()
    missing = [p.name for p in MODULES if p.stem != "__init__" and f"`{p.name}`" not in readme]
    assert missing == []


def test_every_module_is_in_the_architecture_page():
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    missing = [p.name for p in MODULES if p.stem != "__init__" and p.stem not in page]
    assert missing == []
