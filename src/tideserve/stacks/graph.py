"""Which resources a resource depends on (Ref, Fn::GetAtt, Fn::Sub variables, DependsOn), and
the order that respects them: creation order, and its reverse for deletion."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tideserve.errors import ValidationError
from tideserve.stacks.template import ResourceDecl

_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


def references(value: Any, names: frozenset[str]) -> set[str]:
    """The names in `names` that `value` refers to through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    _walk(value, names, found)
    return found


def _walk(value: Any, names: frozenset[str], found: set[str]) -> None:
    if isinstance(value, list):
        for item in value:
            _walk(item, names, found)
        return
    if not isinstance(value, dict):
        return
    if len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref" and isinstance(arg, str) and arg in names:
            found.add(arg)
            return
        if key == "Fn::GetAtt":
            target = arg.split(".", 1)[0] if isinstance(arg, str) else (arg or [None])[0]
            if target in names:
                found.add(target)
            return
        if key == "Fn::Sub":
            text = arg if isinstance(arg, str) else (arg[0] if arg else "")
            local = set(arg[1]) if isinstance(arg, list) and len(arg) > 1 else set()
            for var in _SUB_VAR.findall(str(text)):
                target = var.split(".", 1)[0]
                if target in names and var not in local:
                    found.add(target)
    for item in value.values():
        _walk(item, names, found)


def dependencies(resources: Mapping[str, ResourceDecl]) -> dict[str, set[str]]:
    """Each resource's prerequisites among `resources`."""
    names = frozenset(resources)
    deps: dict[str, set[str]] = {}
    for name, decl in resources.items():
        needed = references(decl.properties, names)
        for target in decl.depends_on:
            if target not in names:
                raise ValidationError(
                    f"Template format error: Unresolved resource dependencies [{target}] in "
                    "the Resources block of the template")
            needed.add(target)
        deps[name] = needed
    return deps


def creation_order(deps: Mapping[str, Iterable[str]]) -> list[str]:
    """A topological order (prerequisites first, ties in template order)."""
    return [name for wave in creation_waves(deps) for name in wave]


def creation_waves(deps: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Groups that can be made at once, each needing only earlier groups (ties in template
    order); a cycle is AWS's "Circular dependency between resources: [...]"."""
    remaining = {name: set(needed) for name, needed in deps.items()}
    waves: list[list[str]] = []
    while remaining:
        ready = [name for name, needed in remaining.items() if not needed]
        if not ready:
            raise ValidationError("Circular dependency between resources: "
                                  f"[{', '.join(sorted(remaining))}]")
        for name in ready:
            del remaining[name]
        for needed in remaining.values():
            needed.difference_update(ready)
        waves.append(ready)
    return waves
