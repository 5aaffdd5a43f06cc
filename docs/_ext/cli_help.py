"""MkDocs hook: replace ``<!-- repgap-help: COMMAND -->`` markers with the live ``--help`` text of the CLI.

``<!-- repgap-help: -->`` gives ``repgap --help``, ``<!-- repgap-help: analyze -->`` gives
``repgap analyze --help``. The text comes from :func:`lightning_repgap.cli.build_parser` at build time, so the page
never drifts from the parser. A marker that cannot be filled is a build warning (an error under ``--strict``).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

log = logging.getLogger("mkdocs.hooks.repgap_help")

_MARKER = re.compile(r"<!--\s*repgap-help:\s*(?P<command>[a-z-]*)\s*-->")
_WIDTH = "100"


def _help(command: str) -> str:
    import argparse

    from lightning_repgap.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = _WIDTH  # argparse reads the width when a formatter is created
    try:
        parser = build_parser()
        if not command:
            return parser.format_help()
        for action in parser._actions:  # argparse has no public access to subparsers
            if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                return action.choices[command].format_help()
        raise KeyError(f"`repgap` has no subcommand {command!r}")
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Fill every marker of the page."""

    def repl(match: re.Match[str]) -> str:
        command = match.group("command")
        try:
            text = _help(command).rstrip()
        except Exception as err:  # any failure must surface as a build warning
            log.warning("%s: cannot render `repgap %s --help`: %s", page.file.src_uri, command, err)
            return match.group(0)
        return f"```text\n$ repgap {command + ' ' if command else ''}--help\n{text}\n```"

    return _MARKER.sub(repl, markdown)
