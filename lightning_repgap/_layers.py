"""Layer names: the watched submodules of a model, found by name through wrappers, with helpful errors.

Layer names are the names of ``model.named_modules()`` with wrapper prefixes removed (:func:`normalize_layer_name`),
so ``"backbone"`` works for a model wrapped by ``torch.compile``, DDP or Fabric. :mod:`lightning_repgap.capture`
re-exports both public functions.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

__all__ = ["normalize_layer_name", "resolve_layers"]

# Attribute names under which wrappers hold the wrapped module: torch.compile, DDP/DataParallel, Fabric.
_WRAPPER_PREFIXES: tuple[str, ...] = ("_orig_mod", "module", "_forward_module")

# Wrapper attributes that no user code defines: stripped wherever they appear in a path, not only in front.
_RESERVED_WRAPPERS: frozenset[str] = frozenset({"_orig_mod", "_forward_module"})

# How many valid names an "unknown layer" error prints at most.
_MAX_LISTED_NAMES = 40

_NUM_SUGGESTIONS = 5


def normalize_layer_name(name: str) -> str:
    """Remove the prefixes that model wrappers add to submodule names.

    ``torch.compile`` adds ``_orig_mod.``, DDP and ``DataParallel`` add ``module.``, Fabric adds
    ``_forward_module.``. Leading wrapper components are removed repeatedly (wrappers nest). ``_orig_mod`` and
    ``_forward_module`` are also removed deeper in the path (``model.backbone = torch.compile(net)`` names its
    layers ``backbone._orig_mod.*``); ``module`` is only removed in front, since it is also a common attribute name.

    Args:
        name: a name from ``model.named_modules()`` or given by a user.

    Returns:
        The name without wrapper components; ``""`` for a wrapper or the model itself.

    Example:
        >>> normalize_layer_name("module._orig_mod.backbone.layer1")
        'backbone.layer1'
        >>> normalize_layer_name("_forward_module.module")
        ''
        >>> normalize_layer_name("encoder._orig_mod.block.module")
        'encoder.block.module'

    """
    parts = name.split(".") if name else []
    start = 0
    while start < len(parts) and parts[start] in _WRAPPER_PREFIXES:
        start += 1
    return ".".join(part for part in parts[start:] if part not in _RESERVED_WRAPPERS)


def _valid_names_message(name: str, valid: Sequence[str]) -> str:
    """List ``valid`` names, the ones closest to ``name`` first, truncated for very large models."""
    suffix = [v for v in valid if v.endswith("." + name) or name.endswith("." + v)]
    close = difflib.get_close_matches(name, valid, n=_NUM_SUGGESTIONS, cutoff=0.5)
    first = list(dict.fromkeys(suffix + close))[:_NUM_SUGGESTIONS]
    chosen = set(first)
    ordered = first + [v for v in valid if v not in chosen]
    shown = ordered[:_MAX_LISTED_NAMES]
    listing = ", ".join(repr(v) for v in shown)
    if len(ordered) > len(shown):
        listing += f", ... ({len(ordered) - len(shown)} more; print `model` to see them all)"
    hint = f" Did you mean {first[0]!r}?" if first else ""
    return f"{hint} Valid names (closest first): {listing}."


def resolve_layers(model: nn.Module, layers: str | Sequence[str]) -> dict[str, nn.Module]:
    """Map layer names to the submodules of ``model`` that they name.

    Names are compared after :func:`normalize_layer_name`, on both sides, so ``"backbone"`` finds the backbone of
    a compiled or DDP-wrapped model, and ``"module.backbone"`` copied from a wrapped model finds it in the bare one.
    A name that is exactly one of ``model.named_modules()`` always wins over a normalised match.

    Args:
        model: the module whose submodules are watched.
        layers: one name or a sequence of names. The model itself (the empty name) cannot be watched.

    Returns:
        ``{normalized_name: submodule}`` in the order given.

    Raises:
        TypeError: if ``layers`` is not a string or a sequence of strings.
        MisconfigurationException: for an empty list, an empty or duplicate name, a name matching no submodule
            (the message lists the valid names, closest first) or one matching several.

    Example:
        >>> net = nn.Sequential()
        >>> net.add_module("backbone", nn.Linear(4, 3))
        >>> net.add_module("head", nn.Linear(3, 2))
        >>> wrapped = nn.Module()
        >>> wrapped.module = net  # what DDP does
        >>> {k: type(v).__name__ for k, v in resolve_layers(wrapped, ["backbone", "module.head"]).items()}
        {'backbone': 'Linear', 'head': 'Linear'}

    """
    names = [layers] if isinstance(layers, str) else list(layers)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"`layer` must be a string or a sequence of strings, got {layers!r}.")
    if not names:
        raise MisconfigurationException("`layer` must name at least one submodule, got an empty sequence.")

    exact: dict[str, nn.Module] = {}
    by_norm: dict[str, dict[int, nn.Module]] = {}
    for raw, module in model.named_modules(remove_duplicate=False):
        exact.setdefault(raw, module)
        norm = normalize_layer_name(raw)
        if norm:
            by_norm.setdefault(norm, {})[id(module)] = module
    valid = list(by_norm)

    resolved: dict[str, nn.Module] = {}
    for name in names:
        key = normalize_layer_name(name)
        if not key:
            raise MisconfigurationException(
                f"Layer name {name!r} names the whole model; give the name of a submodule instead."
                + _valid_names_message(name, valid)
            )
        if key in resolved:
            raise MisconfigurationException(f"Layer {key!r} is listed more than once in `layer={layers!r}`.")
        candidates = by_norm.get(key)
        if name in exact and exact[name] is not model:
            resolved[key] = exact[name]
        elif candidates is None:
            raise MisconfigurationException(
                f"Layer {name!r} is not a submodule of {type(model).__name__}." + _valid_names_message(key, valid)
            )
        elif len(candidates) > 1:
            raws = [r for r, m in model.named_modules(remove_duplicate=False) if normalize_layer_name(r) == key]
            raise MisconfigurationException(
                f"Layer {name!r} is ambiguous once wrapper prefixes are removed: it matches {raws}. Use one of these"
                " full names."
            )
        else:
            resolved[key] = next(iter(candidates.values()))
        _check_not_container(key, resolved[key])
    return resolved


def _check_not_container(name: str, module: nn.Module) -> None:
    """A container without a ``forward`` of its own (``ModuleList``, ``ModuleDict``) never runs: say so now."""
    if type(module).forward is not nn.Module.forward:
        return
    children = [f"{name}.{child}" for child, _ in module.named_children()]
    listed = ", ".join(repr(c) for c in children[:_NUM_SUGGESTIONS]) + (", ..." if len(children) > 5 else "")
    raise MisconfigurationException(
        f"Layer {name!r} is a {type(module).__name__}, a container with no forward of its own: it never runs, so it"
        f" has no output to watch. Watch one of its submodules instead{': ' + listed if children else ''}."
    )
