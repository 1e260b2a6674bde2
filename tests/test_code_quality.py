"""Properties of the code itself that the design promises: small CLI steps, public APIs, light layering."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sequoia"


def test_no_function_of_the_cli_is_over_complexity_10():
    radon = pytest.importorskip("radon.complexity")
    blocks = radon.cc_visit((PACKAGE / "cli.py").read_text())
    too_complex = {block.name: block.complexity for block in blocks if block.complexity > 10}
    assert not too_complex


def test_no_private_simple_parsing_api_is_used():
    private = re.compile(r"\._actions|_add_action|_preprocessing")
    hits = [str(path) for path in PACKAGE.rglob("*.py") if private.search(path.read_text())]
    assert not hits


def imported_modules(path: Path) -> set[str]:
    """The modules a file imports when it runs (imports for type checkers only are left out)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_runs_do_not_import_methods():
    for path in (PACKAGE / "runs").glob("*.py"):
        assert not any(name.startswith("sequoia.methods") for name in imported_modules(path)), path.name


def test_ewc_is_a_plugin_only():
    from sequoia.methods.ewc import EWC

    assert "fit" not in vars(EWC) and "on_task_switch" not in vars(EWC)


def test_fault_hooks_are_off_unless_asked_for(monkeypatch):
    from sequoia.runs.monitor import TrainingMonitor

    monkeypatch.delenv("SEQUOIA_FAULT", raising=False)
    assert TrainingMonitor().fault is None
    monkeypatch.setenv("SEQUOIA_FAULT", "nan@phase=1,step=2")
    assert TrainingMonitor().fault.where == {"phase": 1, "step": 2}
