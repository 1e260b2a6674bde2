"""The import graph of sequoia/: every import (at module level, inside functions, and for type checking only),
read from the source, and its cycles.

A cycle makes a module's meaning depend on import order and keeps the parts from being
used alone. None remains: the command line and sweeps meet in one composition root
(sequoia.experiment) and one runner (sequoia.runner); the setting's loop reports to
observers instead of driving the run directory; settings name methods by a protocol
(sequoia.settings.method_contract). The test fails when a cycle appears, naming it.
Importing a submodule (``from sequoia.settings import schedule``) counts as importing
that module, not its package's ``__init__``.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sequoia"

KNOWN_CYCLES: set[frozenset[str]] = set()


def module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imported(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The sequoia modules ``module`` imports anywhere in its source (``from a.b import c``: ``a.b.c`` if it is a
    module, else ``a.b``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


def test_cycles_finds_a_cycle_and_no_more():
    assert cycles({"a": {"b"}, "b": {"a", "c"}, "c": set()}) == {frozenset({"a", "b"})}


def test_the_import_cycles_of_sequoia_are_the_known_ones():
    known = module_names()
    graph = {module: imported(module, path, known) for module, path in known.items()}
    found = cycles(graph)
    new = [sorted(cycle) for cycle in found - KNOWN_CYCLES]
    gone = [sorted(cycle) for cycle in KNOWN_CYCLES - found]
    assert not new, f"new import cycle(s): {new}"
    assert not gone, f"cycle(s) no longer there (remove them from KNOWN_CYCLES): {gone}"
