"""The issue's example and the shipped examples, built by dbt on a small hand-made dataset:
members are what the rules say, templates cover every account except overrides, the
catalogue and its hashes, `segments explain`, the as-of date and hostile values."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from _segments import (
    PROJECT_DIR,
    build,
    copy_project,
    insert_accounts,
    insert_contacts,
    members,
    project_dir,
    segment_yaml,
    write_def,
)

from segmentation.cli import main as cli
from segmentation.compiler.sources import load_definitions
from segmentation.errors import DbtError
from segmentation.warehouse.dbt_runner import run_dbt

pytestmark = pytest.mark.slow

AS_OF = "2024-06-30"
HOSTILE = [
    "x'; drop table crm_raw.contacts; --",
    "back\\slash \\' end",
    "}} {{ 7*7 }} {% raw %} {# c #} %}",
    'double "quotes"',
    "new\nline",
]


def loyal(contact_id: str, **overrides: Any) -> dict[str, Any]:
    """A contact that meets every rule of loyal_customers, with some fields changed."""
    row = {
        "contact_id": contact_id,
        "account_id": "acme",
        "full_name": f"Contact {contact_id}",
        "email": f"{contact_id.lower()}@example.com",
        "phone": "+6281234567890",
        "lifecycle_stage": "Customer",
        "consent_whatsapp": True,
        "loyalty_tier": "Gold",
        "loyalty_points": 100,
        "custom_fields": {"vip_level": 2},
        "tags": ["newsletter"],
        "created_at": "2023-01-01 09:00+07",
    }
    row.update(overrides)
    return row


CONTACTS = [
    loyal("L1"),
    loyal("L2", email="l2@competitor.com"),
    loyal("L3", tags=["Do_Not_Contact"]),
    loyal("L4", loyalty_tier="silver", loyalty_points=5000),
    loyal("L5", loyalty_tier="silver", loyalty_points=4999),
    loyal("L6", custom_fields={"vip_level": "3"}),
    loyal("L7", custom_fields={"vip_level": 1}),
    loyal("L8", created_at="2024-03-01 09:00+07"),  # 121 days before the as-of date
    loyal("L9", consent_whatsapp=False),
    loyal("L10", lifecycle_stage="lead"),
    loyal("L11", email=None, phone=None),  # unknown email is not a competitor's
    loyal("L12", created_at="2024-07-01 09:00+07"),  # created after the as-of date
    loyal("B1", account_id="beta", city="Denpasar"),
    loyal("B2", account_id="beta", city="Kuta"),
    loyal("G1", account_id="gamma"),
    loyal("G2", account_id="gamma", tags=["do_not_contact"]),
    *(loyal(f"H{i}", full_name=value, consent_whatsapp=False) for i, value in enumerate(HOSTILE)),
]


def _not_cookbook(folder: str, names: list[str]) -> list[str]:
    return [
        n
        for n in names
        if n == "_groups"
        or n.startswith("rfm_")  # the RFM split: tests/dbt/test_rfm.py
        or (n.endswith(".yml") and "prd-example" in (Path(folder) / n).read_text())
    ]


@pytest.fixture(scope="module")
def built(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    project = copy_project(tmp_path_factory.mktemp("segments_example") / "project")
    shutil.rmtree(project / "segment_defs")
    # the language's own examples only: the activity cookbook's templates (tag prd-example)
    # and priority groups are exercised by test_activity_prd.py
    shutil.copytree(PROJECT_DIR / "segment_defs", project / "segment_defs", ignore=_not_cookbook)
    with psycopg.connect(dbname=pg_database, autocommit=True) as db, project_dir(project):
        for table in ("accounts", "contacts", "companies", "contact_companies"):
            db.execute(f"truncate crm_raw.{table}")
        insert_accounts(db, {"acme": "Asia/Jakarta", "beta": "Asia/Makassar", "gamma": "UTC"})
        insert_contacts(db, CONTACTS)
        # beta replaces the whatsapp_reachable template with its own rule
        write_def(
            project,
            "beta",
            "whatsapp_reachable",
            segment_yaml("beta", "whatsapp_reachable", "{field: city, op: eq, value: Denpasar}"),
        )
        hostile = [(f"  - {{field: full_name, op: eq, value: {_yaml_str(v)}}}") for v in HOSTILE]
        write_def(
            project,
            "acme",
            "hostile",
            segment_yaml("acme", "hostile", "any:\n" + "\n".join(hostile)),
        )
        build(AS_OF)
        yield project


def _yaml_str(value: str) -> str:
    """A double-quoted YAML scalar."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@pytest.fixture
def found(built: Path, db: psycopg.Connection) -> dict[tuple[str, str], set[str]]:
    return members(db)


def test_loyal_customers_members_follow_the_rules(found: dict) -> None:
    assert found[("acme", "loyal_customers")] == {"L1", "L4", "L6", "L11"}


def test_template_is_built_for_every_account_but_overrides(found: dict) -> None:
    acme_reachable = {"L1", "L2", "L4", "L5", "L6", "L7", "L8", "L10"}
    assert found[("acme", "whatsapp_reachable")] == acme_reachable
    assert found[("beta", "whatsapp_reachable")] == {"B1"}  # beta's own rule
    assert found[("gamma", "whatsapp_reachable")] == {"G1"}


def test_hostile_values_are_data(found: dict, db: psycopg.Connection) -> None:
    assert found[("acme", "hostile")] == {f"H{i}" for i in range(len(HOSTILE))}
    assert db.execute("select count(*) from crm_raw.contacts").fetchone()[0] == len(CONTACTS)


def test_catalogue_rows_and_hashes(built: Path, db: psycopg.Connection) -> None:
    with project_dir(built):
        segments = load_definitions(None, None).segments
    hashes = {(s.account, s.key): s.definition_hash for s in segments}
    rows = db.execute(
        "select account_id, segment_key, is_template, enabled, definition_hash, tags, "
        "expect_min_members, expect_max_change_pct, visibility, source_file "
        "from segments_audit.segment_catalogue order by 1, 2"
    ).fetchall()
    by_key = {(r[0], r[1]): r for r in rows}
    assert set(by_key) == {
        ("acme", "birthday_this_week"),
        ("acme", "enterprise_leads"),
        ("acme", "hostile"),
        ("acme", "loyal_customers"),
        ("acme", "whatsapp_reachable"),
        ("beta", "whatsapp_reachable"),
        ("gamma", "whatsapp_reachable"),
    }
    loyal_row = by_key[("acme", "loyal_customers")]
    assert loyal_row[2:] == (
        False,
        True,
        hashes[("acme", "loyal_customers")],
        ["retention", "loyalty"],
        1,
        50,
        "team",
        "segment_defs/acme/loyal_customers.yml",
    )
    template_hash = hashes[("*", "whatsapp_reachable")]
    assert by_key[("acme", "whatsapp_reachable")][2:5] == (True, True, template_hash)
    assert by_key[("gamma", "whatsapp_reachable")][2:5] == (True, True, template_hash)
    assert by_key[("beta", "whatsapp_reachable")][2:5] == (
        False,
        True,
        hashes[("beta", "whatsapp_reachable")],
    )


def test_every_segment_is_its_own_selectable_dbt_model(built: Path) -> None:
    with project_dir(built):
        result = run_dbt(["ls", "--select", "tag:segment", "--resource-type", "model"])
    names = sorted(str(line).rsplit(".", 1)[-1] for line in result.result)
    assert names == [
        "seg__acme__birthday_this_week",
        "seg__acme__enterprise_leads",
        "seg__acme__hostile",
        "seg__acme__loyal_customers",
        "seg__all__whatsapp_reachable",
        "seg__beta__whatsapp_reachable",
    ]


def test_explain_prints_the_sql_that_runs(
    built: Path, db: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    with project_dir(built):
        assert cli.main(["explain", "acme/loyal_customers", "--as-of", AS_OF]) == 0
    sql = capsys.readouterr().out
    assert "-- acme/loyal_customers: model seg__acme__loyal_customers" in sql
    assert "'customer'" in sql and "vip_level" in sql
    rows = db.execute(sql).fetchall()
    assert {r[2] for r in rows} == {"L1", "L4", "L6", "L11"}


def test_as_of_var_is_checked(built: Path) -> None:
    with project_dir(built), pytest.raises(DbtError, match="must be a date like"):
        run_dbt(["run", "--select", "int_segment_as_of"], {"as_of": "2024-06-31x"})


def test_default_as_of_is_today_in_each_account_timezone(
    built: Path, db: psycopg.Connection
) -> None:
    before = dt.datetime.now(dt.UTC)
    with project_dir(built):
        run_dbt(["run", "--select", "int_segment_as_of"])
    after = dt.datetime.now(dt.UTC)
    rows = dict(
        db.execute("select account_id, as_of_date from segments_audit.int_segment_as_of").fetchall()
    )
    for account, tz in {"acme": "Asia/Jakarta", "beta": "Asia/Makassar", "gamma": "UTC"}.items():
        possible = {before.astimezone(ZoneInfo(tz)).date(), after.astimezone(ZoneInfo(tz)).date()}
        assert rows[account] in possible
