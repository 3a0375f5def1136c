"""With the database unreachable: `segments validate` and `segments compile` say they checked
offline and which checks that skipped (also in `--format json`), while the pipeline's own
validation (the DAG's validate task, `segments run`) refuses to run offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from segmentation.cli import main as cli
from segmentation.errors import DatabaseError
from segmentation.steps import definitions, pipeline

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(PROJECT / "dbt_project.yml", tmp_path / "dbt_project.yml")
    shutil.copytree(PROJECT / "segment_defs", tmp_path / "segment_defs")
    monkeypatch.setenv("SEGMENTS_PROJECT_DIR", str(tmp_path))
    return tmp_path


def test_the_pipelines_validation_never_runs_offline(project: Path) -> None:
    with pytest.raises(DatabaseError) as raised:
        pipeline.validate()
    message = str(raised.value)
    assert "can't be read (PGHOST=/nonexistent/segments-unit-lane, PGPORT=1" in message
    assert "accounts exist in crm_raw.accounts; package gating" in message
    assert "Nothing was built" in message


def test_a_plan_compiled_offline_earlier_is_not_the_runs_validation(project: Path) -> None:
    """`segments compile --offline` wrote the plan file; the run must not take it as checked."""
    definitions.compile_definitions(offline=True)
    assert definitions.read_plan()["accounts"] is None
    with pytest.raises(DatabaseError, match="an offline check would skip"):
        pipeline.validate()


def test_validate_json_lists_the_skipped_checks(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["validate", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["offline"].startswith("checked offline (database not reachable: PGHOST=")
    assert report["skipped_checks"] == list(definitions.OFFLINE_SKIPS)
    assert any(c.startswith("accounts exist") for c in report["skipped_checks"])
    assert any(c.startswith("package gating") for c in report["skipped_checks"])


def test_validate_offline_by_choice_says_so(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["validate", "--offline"]) == 0
    err = capsys.readouterr().err
    assert "checked offline (--offline); skipped: accounts exist in crm_raw.accounts" in err


def test_compile_says_it_checked_offline(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compile"]) == 0
    out, err = capsys.readouterr()
    assert out.strip()  # the model names
    assert "checked offline (database not reachable: PGHOST=" in err
    assert "skipped: accounts exist in crm_raw.accounts; package gating" in err
