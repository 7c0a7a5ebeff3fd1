"""The package layering of src/tideserve: every import across packages is one the module map
in tideserve/__init__.py allows, and no two packages import each other, even through others.
Read from the source (AST), so an import inside a function counts too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tideserve

ROOT = Path(tideserve.__file__).parent
UNIT_LINE = re.compile(r"^    (\w+)\s")  # "    control      what it owns"
DEPS_LINE = re.compile(r"^ {17}-> (.*)$")  # "                 -> what it may import"
MORE_DEPS = re.compile(r"^ {20}(\S.*)$")  # a wrapped continuation


def module_map() -> dict[str, set[str] | None]:
    """Package -> packages it may import (None: the wiring, which may import anything)."""
    deps: dict[str, list[str]] = {}
    unit = None
    for line in (tideserve.__doc__ or "").splitlines():
        if (match := UNIT_LINE.match(line)) is not None:
            unit = match.group(1)
        elif unit is not None and (match := DEPS_LINE.match(line) or MORE_DEPS.match(line)):
            deps.setdefault(unit, []).extend(match.group(1).split())
    return {name: None if names == ["*"] else set(names) - {"-"}
            for name, names in deps.items()}


def unit_of(path: Path) -> str:
    """The package (or top-level module) a source file belongs to."""
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def imported_units(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = ["tideserve", *path.relative_to(ROOT).parent.parts]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            targets = [".".join([*base, node.module] if node.module else base)]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            if parts[0] == "tideserve" and len(parts) > 1:
                found.add(parts[1])
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        if path.parent == ROOT and path.name == "__init__.py":
            continue
        unit = unit_of(path)
        graph.setdefault(unit, set()).update(imported_units(path) - {unit})
    return graph


def test_every_unit_is_on_the_map() -> None:
    assert sorted(set(import_graph()) - set(module_map())) == []


def test_imports_follow_the_module_map() -> None:
    allowed = module_map()
    broken = {
        unit: sorted(deps - (allowed[unit] or set()))
        for unit, deps in import_graph().items()
        if allowed.get(unit) is not None and deps - (allowed[unit] or set())
    }
    assert broken == {}, "imports the module map in tideserve/__init__.py does not allow"


def in_cycles(graph: dict[str, set[str]]) -> list[str]:
    """The units that reach themselves through the graph's edges."""

    def reaches(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph.get(start, ()))
        while todo:
            unit = todo.pop()
            if unit not in seen:
                seen.add(unit)
                todo.extend(graph.get(unit, ()))
        return seen

    return sorted(unit for unit in graph if unit in reaches(unit))


def test_no_package_imports_itself_through_others() -> None:
    assert in_cycles(import_graph()) == []


def test_the_map_names_only_real_units_and_allows_no_cycle() -> None:
    allowed = module_map()
    layers = {unit: deps for unit, deps in allowed.items() if deps is not None}
    for unit, deps in layers.items():
        assert deps <= set(allowed), (unit, sorted(deps - set(allowed)))
    assert in_cycles(layers) == []
