"""Release files agree with each other and with pyproject.toml; the version has one source."""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml
from setuptools.config.pyprojecttoml import read_configuration

import lightning_repgap

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    # setuptools' reader, not tomllib: the package supports Python 3.10, which has no tomllib.
    return read_configuration(ROOT / "pyproject.toml", expand=False)


def test_installed_metadata_version_is_the_package_version():
    assert importlib.metadata.version("lightning_repgap") == lightning_repgap.__version__


def test_setuptools_reads_the_version_statically_without_importing_the_package():
    # The version is `attr: lightning_repgap.__version__`; setuptools must read the literal from the source (as in
    # an isolated build, where torch is absent), not import the package.
    code = (
        "import sys\n"
        "from setuptools.config.pyprojecttoml import read_configuration\n"
        "config = read_configuration('pyproject.toml')\n"
        "imported = sorted(m for m in sys.modules if m.split('.')[0] in ('lightning_repgap', 'torch', 'numpy'))\n"
        "print(config['project']['version'], imported)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == lightning_repgap.__version__
    assert out.strip().endswith("[]"), out
    project = _pyproject()["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]


def test_license_file_is_the_declared_license():
    project = _pyproject()["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(re.findall(r"^\s+\d\. [A-Z]", text, re.M)) == 9  # sections 1-9, in full


def test_citation_agrees_with_the_package():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    assert str(cff["version"]) == lightning_repgap.__version__
    assert cff["license"] == _pyproject()["project"]["license"]
    assert cff["type"] == "software"
    (paper,) = cff["references"]
    assert paper["title"].startswith("Representation Gap: Explaining the Unreasonable Effectiveness")
    assert paper["year"] == 2026
    assert paper["authors"][0]["family-names"] == "Perera"


def test_changelog_has_a_section_for_this_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert versions[0] == "Unreleased"
    assert lightning_repgap.__version__ in versions
    assert "0.1.0" in versions


def test_pre_commit_runs_the_same_checks_as_ci():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    ci_lines = {
        shlex.join(shlex.split(line, comments=True)) for line in (ROOT / ".ci" / "run").read_text().splitlines()
    }
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert {hook["id"] for hook in hooks} == {"ruff-check", "ruff-format", "mypy"}
    for hook in hooks:
        assert config["repos"][0]["repo"] == "local"
        assert hook["language"] == "system"
        assert shlex.join(shlex.split(hook["entry"])) in ci_lines, hook["entry"]
