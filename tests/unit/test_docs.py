"""The docs cannot rot: every YAML block of docs/*.md is a valid definition (or a valid
condition list, validated inside one), and docs/authoring.md's reference is the one the
language's tables generate, listing every field, operator and aggregate with an example
that validates. Offline: the context is a copy of segment_defs/, no database."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from segmentation.language.activity import AGGREGATES, OBJECTS
from segmentation.language.catalogue import CATALOGUE
from segmentation.language.operators import OPERATORS
from segmentation.steps import definitions
from segmentation_dev import authoring_doc

PROJECT = Path(__file__).resolve().parents[2]
DOCS = sorted((PROJECT / "docs").glob("*.md"))
# ```yaml blocks; "```yaml schematic" marks a block that shows a shape with placeholders.
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
WRAPPER = """\
key: {key}
name: Doc example
account: acme
owner: docs
visibility: team
where:
{where}
"""


def yaml_blocks() -> list[tuple[str, int, str]]:
    blocks = []
    for doc in DOCS:
        text = doc.read_text()
        for match in FENCE.finditer(text):
            info = match["info"].split()
            if info[:1] == ["yaml"] and "schematic" not in info:
                line = text.count("\n", 0, match.start()) + 1
                blocks.append((doc.name, line, match["body"]))
    return blocks


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project holding a copy of segment_defs/ (the context references resolve in)."""
    shutil.copy(PROJECT / "dbt_project.yml", tmp_path / "dbt_project.yml")
    shutil.copytree(PROJECT / "segment_defs", tmp_path / "segment_defs")
    monkeypatch.setenv("SEGMENTS_PROJECT_DIR", str(tmp_path))
    return tmp_path


def place(project: Path, body: str, key: str) -> Path:
    """Where a doc block goes: its own path for a definition, else wrapped as where:."""
    data = yaml.safe_load(body)
    first = body.splitlines()[0]
    if first.startswith("# segment_defs/"):  # the block names its file
        path = project / first[2:].strip()
        text = body
    elif isinstance(data, dict) and "key" in data:
        folder = "_all" if data.get("account") == "*" else str(data["account"])
        path = project / "segment_defs" / folder / f"{data['key']}.yml"
        text = body
    else:
        if isinstance(data, dict) and set(data) == {"where"}:  # a `where:` fragment
            data = data["where"]
        items = data if isinstance(data, list) else [data]
        where = textwrap.indent(yaml.safe_dump(items, sort_keys=False), "  ")
        path = project / "segment_defs" / "acme" / f"{key}.yml"
        text = WRAPPER.format(key=key, where=where)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_docs_have_yaml_examples() -> None:
    names = {name for name, _, _ in yaml_blocks()}
    assert {"authoring.md", "cookbook.md", "segment-language.md"} <= names


def test_every_yaml_block_in_the_docs_validates(project: Path) -> None:
    placed = {}
    for n, (name, line, body) in enumerate(yaml_blocks()):
        placed[place(project, body, f"doc_block_{n:03d}")] = f"docs/{name}:{line}"
    plan = definitions.compile(list(placed), offline=True)
    where = {str(p.relative_to(project)): doc for p, doc in placed.items()}
    problems = [f"{where.get(e.loc.file, e.loc.file)} ({e})" for e in plan.errors]
    assert not problems, "\n".join(problems)
    validated = {s.source_file for s in plan.segments}
    definitions_placed = {w for w in where if "/_groups/" not in w}
    assert definitions_placed <= validated, definitions_placed - validated


def test_every_reference_example_validates(project: Path) -> None:
    paths = []
    for n, example in enumerate(authoring_doc.examples()):
        key = f"ref_example_{n:03d}"
        text = WRAPPER.format(key=key, where=f"  - {example}")
        path = project / "segment_defs" / "acme" / f"{key}.yml"
        path.write_text(text)
        paths.append(path)
    plan = definitions.compile(paths, offline=True)
    assert not plan.errors, "\n".join(str(e) for e in plan.errors)
    assert len(plan.segments) == len(paths)


def test_the_authoring_reference_is_the_generated_one() -> None:
    text = (PROJECT / authoring_doc.DOC).read_text()
    assert authoring_doc.with_reference(text) == text, (
        "docs/authoring.md's reference is out of date: python -m segmentation_dev.authoring_doc"
    )


def test_the_reference_lists_every_field_operator_and_aggregate() -> None:
    text = (PROJECT / authoring_doc.DOC).read_text()
    reference = text[text.index(authoring_doc.START) : text.index(authoring_doc.END)]
    missing = [f for f in CATALOGUE.fields if f"| `{f}` |" not in reference]
    missing += [o for o in OPERATORS if f"| `{o}` |" not in reference]
    missing += [a for a in AGGREGATES if f"| `{a}` |" not in reference]
    missing += [
        f"{obj.name}.{f}"
        for obj in OBJECTS.values()
        for f in obj.fields
        if f"| `{obj.name}` | `{f}` |" not in reference
    ]
    assert not missing
    assert "when the value is unset (NULL)" in reference
    assert "## Exit codes" in text and "| 2 | usage error" in text


def test_the_readme_points_at_the_authoring_guide() -> None:
    assert "docs/authoring.md" in (PROJECT / "README.md").read_text()
