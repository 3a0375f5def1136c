"""The PRD's example segments (segment_defs/_all/*.yml with has: / in_segment, and the
lifecycle priority group) on demo data: they validate, build with the rest of the project,
and their members equal independent hand-written SQL over the same staged rows. The demo's
'acme' is on package plus, so the templates skip it (and the compiler says so)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator

import psycopg
import pytest
from _activity import REPO, members, project_copy

from segmentation.steps import definitions as api
from segmentation.warehouse.dbt_runner import run_dbt
from segmentation_dev import demo_data
from segmentation_dev.prd_reference import reference_sql

AS_OF = dt.date(2026, 6, 30)
PRD = [
    "open_deal_over_30_days",
    "no_conversation_90_days",
    "active_leads",
    "loyal_buyers",
    "churn_risk",
    "clicked_campaign_cmp_123",
    "frequent_tickets_30_days",
    "big_won_deals_this_year",
    "retail_companies",
    "stopped_buying",
    "loyal_not_at_risk",
]


def hand_members(db: psycopg.Connection, key: str) -> set[tuple[str, str]]:
    return members(db, reference_sql(AS_OF)[key])


@pytest.fixture(scope="module")
def built(
    pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[psycopg.Connection, list[str]]]:
    with (
        project_copy(tmp_path_factory.mktemp("prd_project")) as project,
        psycopg.connect(dbname=pg_database, autocommit=True) as db,
    ):
        shutil.copytree(REPO / "segment_defs", project / "segment_defs", dirs_exist_ok=True)
        demo_data.load(accounts=3, contacts=2000, seed=7, anchor=AS_OF)
        result = api.compile_definitions()
        run_dbt(
            [
                "build",
                "--no-partial-parse",
                "--select",
                # rfm_scores: the shipped RFM templates (rfm.* fields) join it
                "staging intermediate marts features segments path:models/analytics/rfm",
            ],
            {"as_of": AS_OF.isoformat()},
        )
        yield db, sorted(result.models)


def built_members(db: psycopg.Connection, key: str) -> set[tuple[str, str]]:
    return members(
        db,
        "select account_id, contact_id from segments_audit.segment_memberships "
        "where segment_key = %s",
        key,
    )


@pytest.mark.parametrize("key", sorted(reference_sql(AS_OF)))
def test_prd_example_matches_hand_written_sql(
    built: tuple[psycopg.Connection, list[str]], key: str
) -> None:
    db, models = built
    assert f"seg__all__{key}" in models
    assert built_members(db, key) == hand_members(db, key)


def test_segment_references_on_demo_data(built: tuple[psycopg.Connection, list[str]]) -> None:
    db, _ = built
    loyal = built_members(db, "loyal_buyers")
    at_risk = built_members(db, "churn_risk")
    assert built_members(db, "loyal_not_at_risk") == loyal - at_risk


def test_demo_data_gives_members_and_skips_plus_accounts(
    built: tuple[psycopg.Connection, list[str]],
) -> None:
    db, _ = built
    counts = dict(
        db.execute(
            "select segment_key, count(*) from segments_audit.segment_memberships group by 1"
        ).fetchall()
    )
    non_empty = [k for k in PRD if counts.get(k, 0) > 0]
    assert len(non_empty) >= 8, counts
    plus = db.execute(
        "select count(*) from segments_audit.segment_memberships m "
        "join segments_staging.stg_crm__accounts a using (account_id) "
        "where a.package = 'plus' and m.segment_key = any(%s)",
        (PRD,),
    ).fetchone()[0]
    assert plus == 0


def test_lifecycle_group_on_demo_data(built: tuple[psycopg.Connection, list[str]]) -> None:
    db, _ = built
    dupes = db.execute(
        "select count(*) from (select 1 from segments_audit.segment_group_assignments "
        "group by account_id, group_key, contact_id having count(*) > 1) d"
    ).fetchone()[0]
    assert dupes == 0
    order = ["loyal_buyers", "stopped_buying", "churn_risk", "active_leads"]
    expected: dict[str, str] = {}
    contacts = members(
        db,
        "select c.account_id, c.contact_id from segments_staging.stg_crm__contacts c "
        "join segments_audit.int_segment_as_of a using (account_id) where c.account_id = "
        "'globex' and (c.created_at is null or "
        "cast((c.created_at at time zone a.timezone) as date) <= a.as_of_date)",
    )
    sets = {k: built_members(db, k) for k in order}
    for contact in contacts:
        expected[contact[1]] = next((k for k in order if contact in sets[k]), "other")
    got = dict(
        db.execute(
            "select contact_id, segment_key from segments_audit.segment_group_assignments "
            "where account_id = 'globex' and group_key = 'lifecycle'"
        ).fetchall()
    )
    assert got == expected
    assert len(set(got.values())) >= 3


def test_gated_templates_are_not_catalogued_for_plus_accounts(
    built: tuple[psycopg.Connection, list[str]],
) -> None:
    """A template with has: is not built for a plus account at all: no catalogue row, so the
    audit expects nothing and Broadcast never sees an always-empty segment for it."""
    db, _ = built
    by_package = dict(
        db.execute(
            "select a.package, array_agg(distinct c.segment_key order by c.segment_key) "
            "from segments_audit.segment_catalogue c "
            "join segments_staging.stg_crm__accounts a using (account_id) group by 1"
        ).fetchall()
    )
    assert not set(by_package["plus"]) & set(PRD), by_package["plus"]
    assert set(PRD) <= set(by_package["ultimate"])
    assert set(PRD) <= set(by_package["360"])
    # basic-attribute templates still reach plus accounts
    assert "whatsapp_reachable" in by_package["plus"]
