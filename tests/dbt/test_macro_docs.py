"""Every macro is documented in YAML (macros/<folder>/_<folder>__macros.yml), so it shows in
`dbt docs`: a description, and each argument named as in the Jinja definition, with a
description and a type from dbt's vocabulary. Checked by `dbt parse` with dbt's own
`validate_macro_args` on a copy of the project: no patch for a missing macro, no mismatched
or mistyped argument."""

from __future__ import annotations

from pathlib import Path

import pytest
from _segments import PROJECT_DIR, copy_project, project_dir

pytestmark = pytest.mark.slow

PROBLEMS = {"MacroNotFoundForPatch", "InvalidMacroAnnotation"}


def test_every_macro_has_yaml_docs(pg_database: str, tmp_path: Path) -> None:
    from dbt.cli.main import dbtRunner

    from segmentation.warehouse.dbt_runner import profiles_dir

    project = copy_project(tmp_path / "project")
    with (project / "dbt_project.yml").open("a") as f:
        f.write("\nflags:\n  validate_macro_args: true\n")
    events: list[str] = []

    def collect(event: object) -> None:
        info = event.info  # type: ignore[attr-defined]
        if info.name in PROBLEMS:
            events.append(f"{info.name}: {info.msg}")

    with project_dir(project):
        result = dbtRunner(callbacks=[collect]).invoke(
            ["parse", "--project-dir", str(project), "--profiles-dir", str(profiles_dir())]
        )
    assert result.success, result.exception
    assert events == []
    macros = [m for m in result.result.macros.values() if m.package_name == "segmentation"]
    assert len(macros) > 80
    undocumented = [
        f"{m.original_file_path}: {m.name}"
        + ("" if m.description else " (no description)")
        + "".join(f" ({a.name}: no description)" for a in m.arguments if not a.description)
        for m in macros
        if not m.description or any(not a.description for a in m.arguments)
    ]
    assert undocumented == []
    # every folder of macros/ has its YAML file
    for folder in {Path(m.original_file_path).parent for m in macros}:
        name = "_macros.yml" if folder == Path("macros") else f"_{folder.name}__macros.yml"
        assert (PROJECT_DIR / folder / name).is_file(), folder
