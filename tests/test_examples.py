"""Every example runs top to bottom and prints what it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def _run(script: str, *args: str, timeout: int = 300) -> str:
    proc = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_quickstart_logs_every_epoch(tmp_path):
    out = _run("quickstart.py", "--epochs", "2", "--out", str(tmp_path))
    rows = [line.split() for line in out.splitlines() if re.match(r"^\s+\d+\s+0\.\d+", line)]
    assert [r[0] for r in rows] == ["0", "1"]
    for row in rows:
        dim = float(row[3])
        assert 2.0 < dim < 6.0, row  # a 3-manifold seen through a trained layer
    assert (tmp_path / "quickstart").exists()


@pytest.mark.slow
def test_known_dimension_example():
    out = _run("known_dimension.py", "--n", "4096", "--queries", "1024")
    table = [line for line in out.splitlines() if re.match(r"^\s*(sphere|torus|cube)\s+\d", line)]
    assert len(table) == 9
    for line in table:
        _, d, _, dim = line.split()[:4]
        assert float(dim) == pytest.approx(int(d), rel=0.25), line
