"""Priority groups on real Postgres: the exclusive assignment built by int_group_catalogue /
segment_group_assignments (the validation errors are in tests/unit/test_groups_validate.py)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from _activity import insert, messages, project_copy, write, write_group
from _segments import empty_raw_tables

from segmentation.compiler import activity_compile, render
from segmentation.compiler.sources import load_definitions
from segmentation.warehouse.dbt_runner import run_dbt

# --- the assignment on real Postgres ---

GROUP_AS_OF = "2026-06-30"


@pytest.fixture(scope="module")
def assigned(
    pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[psycopg.Connection]:
    with (
        project_copy(tmp_path_factory.mktemp("groups_project")) as project,
        psycopg.connect(dbname=pg_database, autocommit=True) as db,
    ):
        empty_raw_tables(db)
        insert(
            db,
            "accounts",
            "account_id, name, package, timezone",
            [("acme", "Acme", "ultimate", "Asia/Jakarta"), ("beta", "Beta", "plus", "UTC")],
        )
        insert(
            db,
            "contacts",
            "contact_id, account_id, lifecycle_stage, loyalty_points, created_at, deleted_at",
            [
                ("c1", "acme", "customer", 9000, "2025-01-01 00:00+07", None),  # champions
                ("c2", "acme", "customer", 2000, "2025-01-01 00:00+07", None),  # loyal
                ("c3", "acme", "customer", 10, "2025-01-01 00:00+07", None),  # customers
                ("c4", "acme", "lead", 5, "2025-01-01 00:00+07", None),  # other
                ("c5", "acme", "lead", 6000, "2025-01-01 00:00+07", None),  # champions
                ("c6", "acme", "lead", None, "2025-01-01 00:00+07", None),  # other
                ("c7", "acme", "customer", 9000, "2026-07-01 00:00+07", None),  # after as-of
                ("c8", "acme", "customer", 9000, "2025-01-01 00:00+07", "2026-01-01 00:00+07"),
                ("b1", "beta", "customer", 9000, "2025-01-01 00:00+07", None),
            ],
        )
        defs = project / "segment_defs"
        files = [
            write(defs, "acme", "champions", "{field: loyalty_points, op: gte, value: 5000}"),
            write(defs, "acme", "loyal", "{field: loyalty_points, op: gte, value: 1000}"),
            write(defs, "acme", "customers", "{field: lifecycle_stage, op: eq, value: customer}"),
            write(defs, "beta", "champions", "{field: loyalty_points, op: gte, value: 5000}"),
        ]
        write_group(
            defs,
            "acme",
            "lifecycle",
            "group: lifecycle\norder: [champions, loyal, customers]\nfallback: other\n",
        )
        write_group(defs, "acme", "vip", "group: vip\norder: [loyal, champions]\n")
        definitions = load_definitions(files)
        assert not definitions.issues, definitions.errors
        activity_plan = activity_compile.plan(definitions.segments, defs, None)
        assert not activity_plan.issues, messages(activity_plan, defs)
        render.render(definitions, project)
        activity_compile.render(project, activity_plan)
        run_dbt(
            [
                "build",
                "--no-partial-parse",
                "--select",
                "staging intermediate marts features segments",
            ],
            {"as_of": GROUP_AS_OF},
        )
        yield db


def assignments(db: psycopg.Connection, group: str) -> dict[str, tuple[str, bool]]:
    rows = db.execute(
        "select contact_id, segment_key, is_fallback from segments_audit.segment_group_assignments "
        "where account_id = 'acme' and group_key = %s",
        (group,),
    ).fetchall()
    return {c: (s, f) for c, s, f in rows}


def test_first_match_wins_and_fallback_takes_the_rest(assigned: psycopg.Connection) -> None:
    assert assignments(assigned, "lifecycle") == {
        "c1": ("champions", False),
        "c2": ("loyal", False),
        "c3": ("customers", False),
        "c4": ("other", True),
        "c5": ("champions", False),
        "c6": ("other", True),
    }
    # order matters: in 'vip' loyal comes first, and there is no fallback
    assert assignments(assigned, "vip") == {
        "c1": ("loyal", False),
        "c2": ("loyal", False),
        "c5": ("loyal", False),
    }


def test_each_contact_has_at_most_one_segment_per_exclusive_group(
    assigned: psycopg.Connection,
) -> None:
    duplicates = assigned.execute(
        "select account_id, group_key, contact_id from segments_audit.segment_group_assignments "
        "group by 1, 2, 3 having count(*) > 1"
    ).fetchall()
    assert duplicates == []
    # contacts in several ordered segments exist, so the uniqueness is not vacuous
    multi = assigned.execute(
        "select count(*) from (select contact_id from segments_audit.segment_memberships "
        "where account_id = 'acme' group by 1 having count(*) > 1) m"
    ).fetchone()[0]
    assert multi >= 2
    # never another account's contacts, a deleted one, or one created after the as-of date
    others = assigned.execute(
        "select contact_id from segments_audit.segment_group_assignments "
        "where account_id <> 'acme' or contact_id in ('b1', 'c7', 'c8')"
    ).fetchall()
    assert others == []


def test_group_catalogue(assigned: psycopg.Connection) -> None:
    rows = assigned.execute(
        "select account_id, group_key, exclusive, segment_keys, fallback "
        "from segments_audit.int_group_catalogue order by group_key"
    ).fetchall()
    assert rows == [
        ("acme", "lifecycle", True, ["champions", "loyal", "customers"], "other"),
        ("acme", "vip", True, ["loyal", "champions"], None),
    ]
