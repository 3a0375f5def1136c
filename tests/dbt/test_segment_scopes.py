"""int_segment_scopes, the one template expansion, on real Postgres: which definition applies
to which account (package gating, account overrides), and that the catalogue, the template
segment models and the audit's expected set all follow it."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from _activity import insert, project_copy, write
from _segments import empty_raw_tables

from segmentation.steps import audit
from segmentation.steps import definitions as api
from segmentation.warehouse.dbt_runner import run_dbt

AS_OF = "2026-06-30"
CREATED = "2025-01-01 00:00+07"


@pytest.fixture(scope="module")
def scoped(
    pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[psycopg.Connection]:
    """Accounts acme (ultimate), beta (360), plusco (plus); three templates, of which beta
    disables `leads` with its own file and acme overrides `reachable` with its own rule."""
    with (
        project_copy(tmp_path_factory.mktemp("scopes_project")) as project,
        psycopg.connect(dbname=pg_database, autocommit=True) as db,
    ):
        empty_raw_tables(db)
        insert(
            db,
            "accounts",
            "account_id, name, package, timezone",
            [
                ("acme", "Acme", "ultimate", "Asia/Jakarta"),
                ("beta", "Beta", "360", "UTC"),
                ("plusco", "Plus Co", "plus", "UTC"),
            ],
        )
        insert(
            db,
            "contacts",
            "contact_id, account_id, lifecycle_stage, consent_whatsapp, loyalty_points, created_at",
            [
                (f"{account[0]}{i}", account, "lead", True, 10 * i, CREATED)
                for account in ("acme", "beta", "plusco")
                for i in (1, 2)
            ],
        )
        # Every contact bought: a plus account would match the has: template if it were built.
        insert(
            db,
            "orders",
            "order_id, account_id, contact_id, amount, currency, status, ordered_at",
            [
                (f"o_{account}", account, f"{account[0]}1", 100, "IDR", "completed", CREATED)
                for account in ("acme", "beta", "plusco")
            ],
        )
        defs = project / "segment_defs"
        write(defs, "*", "buyers", "has: {object: orders}")
        write(defs, "*", "leads", "{field: lifecycle_stage, op: eq, value: lead}")
        write(defs, "*", "reachable", "{field: consent_whatsapp, op: is_true}")
        write(defs, "beta", "leads", "{field: lifecycle_stage, op: eq, value: lead}", False)
        write(defs, "acme", "reachable", "{field: loyalty_points, op: gte, value: 20}")
        api.compile_definitions()
        run_dbt(
            [
                "build",
                "--no-partial-parse",
                "--select",
                "staging intermediate features segments marts",
            ],
            {"as_of": AS_OF},
        )
        yield db


def _scopes(db: psycopg.Connection) -> dict[tuple[str, str], tuple[str, bool, str]]:
    rows = db.execute(
        "select account_id, segment_key, source, enabled, model_name "
        "from segments_audit.int_segment_scopes"
    ).fetchall()
    return {(a, k): (s, e, m) for a, k, s, e, m in rows}


def _members(db: psycopg.Connection) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for account, key, contact in db.execute(
        "select account_id, segment_key, contact_id from segments_audit.segment_memberships"
    ).fetchall():
        out.setdefault((account, key), set()).add(contact)
    return out


def test_templates_expand_per_account_with_gating_and_overrides(
    scoped: psycopg.Connection,
) -> None:
    assert _scopes(scoped) == {
        ("acme", "buyers"): ("template", True, "seg__all__buyers"),
        ("beta", "buyers"): ("template", True, "seg__all__buyers"),
        # plusco: no buyers row at all (has: needs ultimate or 360)
        ("acme", "leads"): ("template", True, "seg__all__leads"),
        ("beta", "leads"): ("account", False, "seg__beta__leads"),
        ("plusco", "leads"): ("template", True, "seg__all__leads"),
        ("acme", "reachable"): ("account", True, "seg__acme__reachable"),
        ("beta", "reachable"): ("template", True, "seg__all__reachable"),
        ("plusco", "reachable"): ("template", True, "seg__all__reachable"),
    }


def test_an_account_override_disabling_a_template_builds_nothing_for_it(
    scoped: psycopg.Connection,
) -> None:
    found = _members(scoped)
    assert ("beta", "leads") not in found
    assert found[("acme", "leads")] == {"a1", "a2"}
    assert found[("plusco", "leads")] == {"p1", "p2"}
    # acme's own reachable rule, not the template's
    assert found[("acme", "reachable")] == {"a2"}
    assert found[("beta", "reachable")] == {"b1", "b2"}
    disabled = scoped.execute(
        "select enabled, is_template from segments_audit.segment_catalogue "
        "where account_id = 'beta' and segment_key = 'leads'"
    ).fetchall()
    assert disabled == [(False, False)]


def test_a_plus_account_skips_an_activity_template(scoped: psycopg.Connection) -> None:
    found = _members(scoped)
    assert found[("acme", "buyers")] == {"a1"}
    assert found[("beta", "buyers")] == {"b1"}
    assert ("plusco", "buyers") not in found  # p1 bought, but plus has no activity
    catalogued = scoped.execute(
        "select count(*) from segments_audit.segment_catalogue "
        "where account_id = 'plusco' and segment_key = 'buyers'"
    ).fetchone()[0]
    assert catalogued == 0


def test_the_catalogue_lists_exactly_the_scopes(scoped: psycopg.Connection) -> None:
    catalogue = scoped.execute(
        "select account_id, segment_key, is_template, enabled, model_name "
        "from segments_audit.segment_catalogue order by 1, 2"
    ).fetchall()
    scopes = scoped.execute(
        "select account_id, segment_key, is_template, enabled, model_name "
        "from segments_audit.int_segment_scopes order by 1, 2"
    ).fetchall()
    assert catalogue == scopes


def test_the_audit_expects_exactly_the_enabled_catalogue(scoped: psycopg.Connection) -> None:
    audit.prepare_relations({})
    expected = scoped.execute(
        "select account_id, segment_key from segments_audit.audit_expected_segments order by 1, 2"
    ).fetchall()
    catalogue = scoped.execute(
        "select account_id, segment_key from segments_audit.segment_catalogue "
        "where enabled order by 1, 2"
    ).fetchall()
    assert expected == catalogue
    assert ("beta", "leads") not in expected and ("plusco", "buyers") not in expected
    assert len(expected) == 7
