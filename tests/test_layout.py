"""The package's layout: no two modules of ``remn/`` import each other, directly or round a loop.

Every ``import`` counts, also one inside a function: a cycle hidden in a function still ties
the two modules together (and breaks as soon as someone moves the import to the top).
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "remn"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``module -> the modules of the package it imports`` (``from a import b`` names ``a.b`` when
    that is a module, else ``a``); imports from outside the package are left out."""
    files = {_module_name(path): path for path in sorted(package.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level + 1] if node.level else []
                stem = ".".join([*base, *(node.module.split(".") if node.module else [])])
                for alias in node.names:
                    child = f"{stem}.{alias.name}"
                    targets.add(child if child in files else stem)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_graph_sees_relative_absolute_and_function_level_imports():
    graph = import_graph()
    assert "remn.model.network" in graph["remn.model.checkpoint"]  # from .network import ...
    assert "remn.outputs" in graph["remn.model.checkpoint"]  # from ..outputs import, inside a function
    assert "remn.data.masks" in graph["remn.data.train_video"]  # from remn.data.masks import ...
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_inside_remn():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_over_600_lines_unless_its_docstring_says_why():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > 600 and "Why one module of more than 600 lines" not in (
            ast.get_docstring(ast.parse(text)) or ""
        ):
            long.append(str(path))
    assert not long, f"modules over 600 lines without a reason in their docstring: {long}"
    scripts = [p.name for p in (REPO / "scripts").glob("*.py") if len(p.read_text().splitlines()) > 200]
    assert not scripts, f"scripts over 200 lines: {scripts}"
