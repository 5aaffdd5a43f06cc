"""Every script of the repository that starts a process group ends it: destroyed, or left with ``os._exit``.

Lightning destroys the process group it started at interpreter exit only for NCCL. A gloo group left to the
interpreter's teardown can abort the process after ``fit`` has returned (SIGABRT, "terminate called without an
active exception", pytorch#190489), which fails a test that checks the process' return code, at random. So a test
helper, benchmark, example, script or study that starts a group (``init_process_group`` itself, or a ``Trainer`` with
a DDP ``strategy``, several ``devices`` or several nodes) destroys it (``destroy_process_group``) or leaves
deliberately with ``os._exit``, which runs no teardown at all (the gloo helpers whose group a failed rank leaves half
torn down).
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


def _literal(node: ast.expr, *values: object) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (str, int) and node.value in values


def starts_group(tree: ast.AST) -> bool:
    """Whether the code calls ``init_process_group``, or a ``...Trainer`` that runs several processes.

    A ``Trainer`` call starts a group when it passes a ``strategy`` other than the literal ``"auto"`` or
    ``"single_device"``, or ``devices`` / ``num_nodes`` other than the literal 1 (``Trainer(devices=2)`` picks DDP
    itself). Calls of other names are not looked at (``SimpleImputer(strategy="mean")`` starts nothing).
    """
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _called(node)
        if name == "init_process_group":
            return True
        if not name.endswith("Trainer"):
            continue
        for kw in node.keywords:
            if kw.arg == "strategy" and not _literal(kw.value, "auto", "single_device"):
                return True
            if kw.arg in ("devices", "num_nodes") and not _literal(kw.value, 1):
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
    # Several devices start DDP without a strategy, or with "auto"; a strategy keyword of another call starts nothing.
    assert starts_group(ast.parse('pl.Trainer(accelerator="cpu", devices=2)\n'))
    assert starts_group(ast.parse('Trainer(strategy="auto", devices=2)\n'))
    assert starts_group(ast.parse("Trainer(num_nodes=2)\n"))
    assert not starts_group(ast.parse('Trainer(strategy="single_device", devices=1, num_nodes=1)\n'))
    assert not starts_group(ast.parse('SimpleImputer(strategy="mean")\n'))
    assert ends_group(ast.parse("import torch.distributed as dist\ndist.destroy_process_group()\n"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_script_that_starts_a_process_group_ends_it(path):
    tree = ast.parse(path.read_text())
    assert not starts_group(tree) or ends_group(tree)
