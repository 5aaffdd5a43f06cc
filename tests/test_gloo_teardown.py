"""Every script of the repository that starts a process group ends it: destroyed, or left with ``os._exit``.

Lightning destroys the process group it started at interpreter exit only for NCCL. A gloo group left to the
interpreter's teardown can abort the process after ``fit`` has returned (SIGABRT, "terminate called without an
active exception", pytorch#190489), which fails a test that checks the process' return code, at random. So a test
helper, benchmark, example, script or study that starts a group (``init_process_group`` itself, or a ``Trainer`` with
a DDP ``strategy``) destroys it (``destroy_process_group``) or leaves deliberately with ``os._exit``, which runs no
teardown at all (the gloo helpers whose group a failed rank leaves half torn down).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for d in ("tests", "benchmarks", "examples", "scripts", "studies") for p in (ROOT / d).rglob("*.py"))


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def starts_group(tree: ast.AST) -> bool:
    """Whether the code calls ``init_process_group`` or passes a ``strategy`` other than the literal ``"auto"``."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if _called(node) == "init_process_group":
            return True
        for kw in node.keywords:
            if kw.arg == "strategy" and not (isinstance(kw.value, ast.Constant) and kw.value.value == "auto"):
                return True
    return False


def ends_group(tree: ast.AST) -> bool:
    """Whether the code calls ``destroy_process_group`` or ``os._exit``."""
    return any(isinstance(n, ast.Call) and _called(n) in ("destroy_process_group", "_exit") for n in ast.walk(tree))


def test_the_scan_sees_the_repository_s_group_starters():
    starters = [p.name for p in SCRIPTS if starts_group(ast.parse(p.read_text()))]
    # The gloo metric test, the Lightning DDP helpers and the two DDP benchmarks at least.
    assert {"test_metric.py", "ddp_run.py", "ddp_setup_check.py", "ddp_gather.py", "bench_ddp.py"} <= set(starters)


def test_the_check_can_fail():
    left = ast.parse('trainer = Trainer(strategy="ddp", devices=2)\ntrainer.fit(model)\n')
    assert starts_group(left)
    assert not ends_group(left)
    assert not starts_group(ast.parse('Trainer(strategy="auto")\n'))
    assert ends_group(ast.parse("import torch.distributed as dist\ndist.destroy_process_group()\n"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_script_that_starts_a_process_group_ends_it(path):
    tree = ast.parse(path.read_text())
    assert not starts_group(tree) or ends_group(tree)
