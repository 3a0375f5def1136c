"""Helpers for the definition-security tests (tests/unit/test_security_definitions.py and
tests/dbt/test_security_definitions_build.py): a valid definition, writing and validating
a project's segment_defs/, and the stale generated files a broken definition can leave."""

from __future__ import annotations

from pathlib import Path

from segmentation.compiler.sources import load_definitions

VALID = """\
key: {key}
name: Loyal customers
account: {account}
owner: growth-team
visibility: team
where:
  all:
    - {{field: lifecycle_stage, op: eq, value: customer}}
    - {{field: loyalty_points, op: gte, value: 5000}}
"""
CONDITION_LINE = 9  # the loyalty_points condition of VALID


def write(project: Path, rel: str, text: str) -> Path:
    path = project / "segment_defs" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def errors(**kwargs: object) -> list[str]:
    return [str(e) for e in load_definitions(None, None, **kwargs).errors]  # type: ignore[arg-type]


def with_condition(condition: str, key: str = "x") -> str:
    return VALID.format(key=key, account="acme").replace(
        "{field: loyalty_points, op: gte, value: 5000}", condition
    )


def stale_generated_state(project: Path) -> None:
    """What a removed or broken definition can leave behind in the generated folders."""
    models = project / "models/segments/generated"
    models.mkdir(parents=True, exist_ok=True)
    (models / "seg__acme__ghost.sql").write_text(
        "{{ exceptions.raise_compiler_error('stale generated file') }}\n"
    )
    (models / "leftover.sql").write_text("select * from {{ ref('seg__acme__gone') }}\n")
    macros = project / "macros/segments/generated"
    macros.mkdir(parents=True, exist_ok=True)
    (macros / "segment_registry.sql").write_text(
        "{% macro postgres__segment_registry() %}{{ return(fromjson("
        '\'{"segments": [{"model": "seg__acme__gone", "enabled": true}]}\')) }}{% endmacro %}\n'
    )
