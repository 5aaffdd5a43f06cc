"""Griffe extension: render the Sphinx markup used inside lightning_repgap's Google-style docstrings.

The package follows torchmetrics' docstring conventions (STYLE.md §1): Google sections plus Sphinx roles
(``:func:`gap_curve```, ``:class:`~torch.Tensor```) and ``.. math::`` blocks. mkdocstrings renders docstrings as
Markdown, where those would show up verbatim. This extension rewrites them, before griffe parses the docstring:

- ``.. math::`` followed by an indented block  ->  a ``$$ ... $$`` block (pymdownx.arithmatex, generic mode);
- ``:math:`x```                                ->  ``$x$``;
- an ``Example:`` section header (napoleon and torchmetrics accept the singular; griffe only knows
  ``Examples:`` and would render the doctest as prose)  ->  ``Examples:``;
- ``:func:``, ``:class:``, ``:meth:``, ``:attr:``, ``:mod:``, ``:data:``, ``:exc:``, ``:obj:`` roles
                                               ->  an *optional* mkdocs-autorefs cross-reference: a link when the
                                                   target is documented on the site, plain code otherwise (no
                                                   warning, so ``mkdocs build --strict`` stays usable).

Relative targets (``:func:`geometric_sizes```) are resolved against the docstring's module. A leading ``~`` shows
only the last component, as in Sphinx. Only the docstring text used for the site changes; the package is untouched.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(func|class|meth|attr|mod|data|exc|obj):`(~?)([^`<>]+?)(?:\s*<([^`>]+)>)?`")
_EXAMPLE_HEADER = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_MATH_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<inline>\S.*)?$")
# Top-level packages whose names are written in full in the docstrings; anything else is relative.
_ABSOLUTE_ROOTS = ("lightning_repgap", "torch", "torchmetrics", "lightning", "numpy", "faiss", "os", "matplotlib")


def _module_path(obj: griffe.Object) -> str:
    while obj is not None and not obj.is_module:
        obj = obj.parent  # type: ignore[assignment]
    return obj.path if obj is not None else ""


def _resolve(target: str, obj: griffe.Object) -> str:
    target = target.strip().rstrip("()")
    if target.split(".", 1)[0] in _ABSOLUTE_ROOTS:
        return target
    module = _module_path(obj)
    # A method or attribute named from inside its class (``:meth:`take```) lives under the class.
    if obj.is_class and "." not in target and target in obj.members:
        return f"{obj.path}.{target}"
    if obj.parent is not None and obj.parent.is_class and "." not in target and target in obj.parent.members:
        return f"{obj.parent.path}.{target}"
    return f"{module}.{target}" if module else target


def _roles(text: str, obj: griffe.Object) -> str:
    def repl(match: re.Match[str]) -> str:
        _, tilde, title, explicit = match.groups()
        target = _resolve(explicit or title, obj)
        shown = title.strip()
        if explicit is None and tilde:
            shown = shown.rstrip("()").rsplit(".", 1)[-1]
        return f'<autoref identifier="{html.escape(target)}" optional><code>{html.escape(shown)}</code></autoref>'

    return _ROLE.sub(repl, text)


def _math_blocks(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _MATH_DIRECTIVE.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = match.group("indent")
        body: list[str] = [match.group("inline")] if match.group("inline") else []
        i += 1
        while i < len(lines):
            line = lines[i]
            if line.strip() and len(line) - len(line.lstrip()) <= len(indent):
                break
            body.append(line.strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        while body and not body[0]:
            body.pop(0)
        # A blank line inside the directive separates equations; keep them in one display.
        tex = " \\\\\n".join(part for part in "\n".join(body).split("\n\n") if part.strip())
        if out and out[-1].strip():
            out.append("")
        out.extend([f"{indent}$$", *(f"{indent}{t}" for t in tex.split("\n")), f"{indent}$$", ""])
        # Drop the blank line that followed the directive in the source, to avoid doubling it.
        if i < len(lines) and not lines[i].strip():
            i += 1
    return "\n".join(out)


def convert(text: str, obj: griffe.Object) -> str:
    """Rewrite the Sphinx markup of one docstring as Markdown (see the module docstring)."""
    text = _EXAMPLE_HEADER.sub(lambda m: f"{m.group('indent')}Examples:", text)
    text = _math_blocks(text)
    text = _MATH_ROLE.sub(lambda m: f"${m.group(1).strip()}$", text)
    return _roles(text, obj)


class SphinxMarkup(griffe.Extension):
    """Convert Sphinx roles and math directives in every docstring of the loaded packages."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the docstring of ``obj`` in place, before griffe parses it."""
        if obj.is_alias or obj.docstring is None:
            return
        obj.docstring.value = convert(obj.docstring.value, obj)
