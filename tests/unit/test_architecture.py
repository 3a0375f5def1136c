"""The package's layers (docs/architecture.md): no import cycles, the DAG calls only the
pipeline steps, and nothing registers itself by being imported. import-linter checks the
layer contracts themselves (pyproject.toml, `make lint`)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def _cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if not imported.startswith(package):
                continue
            if state.get(imported) == 1:
                found.append([*stack[stack.index(imported) :], imported])
            elif imported not in state:
                visit(imported)
        stack.pop()
        state[module] = 2

    for module in modules:
        if module not in state:
            visit(module)
    return found


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("segmentation", "segmentation_dev")
    assert _cycles(graph, "segmentation") == []
    assert _cycles(graph, "segmentation_dev") == []


def test_the_dag_imports_only_the_pipeline_steps() -> None:
    tree = ast.parse((ROOT / "dags" / "segment_refresh.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    ours = {m for m in imported if m.split(".")[0].startswith("segmentation")}
    assert ours, "the DAG should call the pipeline steps"
    allowed = ("segmentation.steps.", "segmentation.settings")
    assert sorted(m for m in ours if not m.startswith(allowed)) == []


def test_no_module_registers_itself_by_import() -> None:
    """Node parsers are one explicit table (language/grammar.py), not decorators that fill a
    global when their module is imported."""
    from segmentation.language import activity, grammar, validate

    assert set(grammar.NODE_PARSERS) == {"all", "any", "not", "field", "has", "in_segment"}
    assert grammar.NODE_PARSERS["has"] is activity.parse_has
    assert not hasattr(validate, "NODE_PARSERS")
    for path in (ROOT / "src").rglob("*.py"):
        text = path.read_text()
        assert "noqa: F401 - registers" not in text, path


def test_every_environment_variable_is_in_the_settings_table() -> None:
    """SEGMENTS_* variables are read only through settings.env and documented in one table."""
    import re

    from segmentation import settings

    used: set[str] = set()
    for folder in ("src", "dags"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            used |= set(re.findall(r"\b(SEGMENTS_[A-Z_]+)\b", text))
            if path.name != "settings.py":
                assert not re.search(r"environ(?:\.get)?\W+SEGMENTS_", text), path
    used.discard("SEGMENTS_SERVING")  # the DAG's Asset, not a variable
    assert sorted(used - set(settings.SETTINGS)) == []
    docs = (ROOT / "docs" / "configuration.md").read_text()
    assert settings.settings_table() in docs, "regenerate the table in docs/configuration.md"
