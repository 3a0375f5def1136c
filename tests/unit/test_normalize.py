"""The Python twins of the staging normalisers and the warning for a value that can never
match the normalised data: `lifecycle_stage eq 'Customer'` (staging snake-cases picklists)
and `country eq 'Indonesia'` (staging stores ISO alpha-2) are named with file:line and the
normalised form, from validate (text and JSON). The alias table is one file, and the dbt
macro generated from it is the committed one. (SQL and Python agreeing on PostgreSQL:
tests/dbt/test_normalize_sql.py.)"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from segmentation.cli import main as cli
from segmentation.language import normalize
from segmentation.steps import definitions
from segmentation_dev import country_aliases as generator

PROJECT = Path(__file__).resolve().parents[2]

LOYAL = """\
key: loyal_id
account: acme
visibility: team
name: Loyal customers
description: Customers in Indonesia
owner: crm-team
where:
  all:
    - field: lifecycle_stage
      op: eq
      value: Customer
    - field: country
      op: in
      value: [ID, Indonesia, Narnia]
    - has:
        object: tickets
        where:
          field: status
          op: eq
          value: Open
        within: {last_days: 30}
"""

CLEAN = """\
key: clean
account: acme
visibility: team
name: Clean
description: Values as staging stores them
owner: crm-team
where:
  all:
    - field: lifecycle_stage
      op: in
      value: [customer, marketing_qualified_lead]
    - field: country
      op: eq
      value: ID
    - field: full_name
      op: eq
      value: Budi Santoso
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(PROJECT / "dbt_project.yml", tmp_path / "dbt_project.yml")
    shutil.copytree(PROJECT / "segment_defs", tmp_path / "segment_defs")
    monkeypatch.setenv("SEGMENTS_PROJECT_DIR", str(tmp_path))
    return tmp_path


def test_picklist_twin() -> None:
    assert normalize.normalize_picklist("  Marketing Qualified Lead ") == "marketing_qualified_lead"
    assert normalize.normalize_picklist("Customer") == "customer"
    assert normalize.normalize_picklist("--VIP--") == "vip"
    assert normalize.normalize_picklist(" _ ") is None
    assert normalize.normalize_picklist(None) is None


def test_country_twin() -> None:
    assert normalize.normalize_country("Indonesia") == "ID"
    assert normalize.normalize_country(" id ") == "ID"
    assert normalize.normalize_country("IDN") == "ID"
    assert normalize.normalize_country("United States of America") == "US"
    assert normalize.normalize_country("Narnia") is None
    assert normalize.normalize_country("  ") is None
    assert normalize.country_key("  Côte d'Ivoire ") == "côte d ivoire"


def test_the_alias_table_is_one_file_the_package_ships() -> None:
    shipped = PROJECT / "src/segmentation/language" / normalize.ALIASES_FILE
    assert shipped.resolve() == (PROJECT / "seeds/country_aliases.csv").resolve()
    aliases = normalize.country_aliases()
    assert len(aliases) > 900
    assert aliases["indonesia"] == "ID" and aliases["uk"] == "GB" and aliases["ri"] == "ID"


def test_a_bad_alias_row_names_its_line() -> None:
    with pytest.raises(ValueError, match=r"x\.csv:3: \['Bad', 'ID'\]"):
        normalize.parse_country_aliases("alias,code\nindonesia,ID\nBad,ID\n", "x.csv")
    with pytest.raises(ValueError, match="appears twice"):
        normalize.parse_country_aliases("alias,code\nid,ID\nid,ID\n")


def test_the_committed_macro_is_generated_from_the_csv() -> None:
    committed = (PROJECT / generator.MACRO).read_text(encoding="utf-8")
    assert committed == generator.expected(PROJECT), (
        "macros/staging/country_aliases.sql is out of date: run "
        "`.venv/bin/python -m segmentation_dev.country_aliases`"
    )


def test_the_normalised_columns_are_the_ones_staging_normalises() -> None:
    """NORMALISED lists exactly the columns the staging models pass through a normaliser."""
    found: dict[tuple[str, str], str] = {}
    call = re.compile(
        r"\{\{\s*normalize_(picklist|country)\('(?:source\.)?(\w+)'.*?\}\}\s+as\s+(\w+)", re.S
    )
    for path in sorted((PROJECT / "models/staging/crm").glob("stg_crm__*.sql")):
        for kind, _column, alias in call.findall(path.read_text()):
            found[(path.stem, alias)] = kind
    assert found == normalize.NORMALISED


def test_validate_warns_with_file_line_and_the_normalised_form(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / "segment_defs/acme/loyal_id.yml"
    path.write_text(LOYAL)
    (project / "segment_defs/acme/clean.yml").write_text(CLEAN)
    assert cli.main(["validate", "--offline", "--format", "json"]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    mine = [w for w in warnings if "loyal_id.yml" in w or "clean.yml" in w]
    file = "segment_defs/acme/loyal_id.yml"
    assert mine == [
        f"{file}:9:7: lifecycle_stage eq: 'Customer' never matches, staging stores "
        "lifecycle_stage in lower snake_case (did you mean 'customer'?)",
        f"{file}:12:7: country in: 'Indonesia' never matches, staging stores country as an "
        "ISO 3166-1 alpha-2 code like 'ID' (did you mean 'ID'?)",
        f"{file}:12:7: country in: 'Narnia' never matches, staging stores country as an "
        "ISO 3166-1 alpha-2 code like 'ID', and 'Narnia' is no country it knows",
        f"{file}:18:11: status eq: 'Open' never matches, staging stores status in lower "
        "snake_case (did you mean 'open'?)",
    ]


def test_validate_text_shows_the_warning(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "segment_defs/acme/loyal_id.yml").write_text(LOYAL)
    assert cli.main(["validate", "--offline", str(project / "segment_defs/acme/loyal_id.yml")]) == 0
    err = capsys.readouterr().err
    assert "loyal_id.yml:9:7: lifecycle_stage eq: 'Customer' never matches" in err
    assert "did you mean 'customer'?" in err
    # compile (and so every run) warns the same way
    plan = definitions.compile([project / "segment_defs/acme/loyal_id.yml"], offline=True)
    assert any("did you mean 'ID'?" in w for w in plan.warnings())
