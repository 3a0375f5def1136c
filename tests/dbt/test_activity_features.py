"""has: conditions on real Postgres: every object and aggregate against hand-written SQL.

One dbt build for the module: staging, the as-of model, the generated feature models and a
harness model with one boolean column per case (the exact expression a segment uses). Each
column is compared with an independent, naive correlated-subquery query over staging, and
the edge cases (no rows, window boundaries, NULL amounts, a deleted contact, another
account's rows, a row after the as-of date) are also asserted by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _activity import AS_OF, load_edge_cases, members, parse_condition, project_copy
from _segments import empty_raw_tables

from segmentation.compiler import features
from segmentation.compiler.literals import jinja_string
from segmentation.warehouse.dbt_runner import run_dbt

STG = "segments_staging"
# Local day of a timestamp column in the contact's account timezone, and the as-of date.
LOCAL = "cast(({col} at time zone acc.timezone) as date)"
ASOF = f"date '{AS_OF.isoformat()}'"


def naive(table: str, where: str, having: str, time_col: str) -> str:
    """Contacts for which `having` holds over their rows of `table` matching `where`."""
    cutoff = f"({LOCAL.format(col='x.' + time_col)} <= {ASOF} or x.{time_col} is null)"
    return f"""
        select c.account_id, c.contact_id
        from {STG}.stg_crm__contacts as c
        inner join {STG}.stg_crm__accounts as acc on acc.account_id = c.account_id
        where {
        having.format(
            rows=f'''(select {{agg}} from {STG}.{table} as x
            where x.account_id = c.account_id and x.contact_id = c.contact_id
            and {cutoff} and ({where}))'''
        )
    }
    """


def local(col: str) -> str:
    return LOCAL.format(col=col)


# name -> (has: YAML, independent SQL returning (account_id, contact_id) of members)
CASES: dict[str, tuple[str, str]] = {
    "open_deal_over_30_days": (
        """
        has:
          object: deals
          where:
            all:
              - {field: status, op: eq, value: open}
              - {field: created_at, op: more_than_ago, value: {days: 30}}
        """,
        naive(
            "stg_crm__deals",
            f"x.status = 'open' and {local('x.created_at')} < {ASOF} - 30",
            "{rows} >= 1",
            "created_at",
        ).replace("{agg}", "count(*)"),
    ),
    "no_conversation_90_days": (
        """
        has:
          object: conversations
          within: {last_days: 90}
          count: {eq: 0}
        """,
        naive(
            "stg_crm__conversations",
            f"{local('x.started_at')} >= {ASOF} - 90",
            "{rows} = 0",
            "started_at",
        ).replace("{agg}", "count(*)"),
    ),
    "orders_sum_1m_year": (
        """
        has:
          object: orders
          where: {field: status, op: eq, value: completed}
          within: {last_days: 365}
          sum: {field: amount, gte: 1000000}
        """,
        naive(
            "stg_crm__orders",
            f"x.status = 'completed' and {local('x.ordered_at')} >= {ASOF} - 365",
            "coalesce({rows}, 0) >= 1000000",
            "ordered_at",
        ).replace("{agg}", "sum(x.amount)"),
    ),
    "last_purchase_over_180_days": (
        """
        has:
          object: orders
          max: {field: ordered_at, op: more_than_ago, value: {days: 180}}
        """,
        naive("stg_crm__orders", "true", "{rows} < " + ASOF + " - 180", "ordered_at").replace(
            "{agg}", f"max({local('x.ordered_at')})"
        ),
    ),
    "clicked_cmp_123": (
        """
        has:
          object: campaign_events
          where:
            all:
              - {field: event_type, op: eq, value: clicked}
              - {field: campaign_id, op: eq, value: cmp_123}
        """,
        naive(
            "stg_crm__campaign_events",
            "x.event_type = 'clicked' and x.campaign_id = 'cmp_123'",
            "{rows} >= 1",
            "occurred_at",
        ).replace("{agg}", "count(*)"),
    ),
    "three_tickets_30_days": (
        """
        has: {object: tickets, within: {last_days: 30}, count: {gte: 3}}
        """,
        naive(
            "stg_crm__tickets",
            f"{local('x.created_at')} >= {ASOF} - 30",
            "{rows} >= 3",
            "created_at",
        ).replace("{agg}", "count(*)"),
    ),
    "won_over_50m_this_year": (
        """
        has:
          object: deals
          where:
            all:
              - {field: status, op: eq, value: won}
              - {field: closed_at, op: in_calendar, value: this_year}
          sum: {field: amount, gt: 50000000}
        """,
        naive(
            "stg_crm__deals",
            f"x.status = 'won' and extract(year from {local('x.closed_at')}) = 2026",
            "coalesce({rows}, 0) > 50000000",
            "created_at",
        ).replace("{agg}", "sum(x.amount)"),
    ),
    "avg_order_at_least_600k": (
        """
        has: {object: orders, avg: {field: amount, gte: 600000}}
        """,
        naive("stg_crm__orders", "true", "{rows} >= 600000", "ordered_at").replace(
            "{agg}", "avg(x.amount)"
        ),
    ),
    "min_deal_below_10": (
        """
        has: {object: deals, min: {field: amount, lt: 10}}
        """,
        naive("stg_crm__deals", "true", "{rows} < 10", "created_at").replace(
            "{agg}", "min(x.amount)"
        ),
    ),
    "two_distinct_campaigns": (
        """
        has: {object: campaign_events, count_distinct: {field: campaign_id, gte: 2}}
        """,
        naive("stg_crm__campaign_events", "true", "{rows} >= 2", "occurred_at").replace(
            "{agg}", "count(distinct x.campaign_id)"
        ),
    ),
    "never_ordered": (
        """
        has: {object: orders, max: {field: ordered_at, op: is_not_set}}
        """,
        naive("stg_crm__orders", "true", "{rows} is null", "ordered_at").replace(
            "{agg}", "max(x.ordered_at)"
        ),
    ),
    "deal_count_not_one": (
        """
        has: {object: deals, count: {neq: 1}}
        """,
        naive("stg_crm__deals", "true", "{rows} <> 1", "created_at").replace("{agg}", "count(*)"),
    ),
    "tickets_between_dates": (
        """
        has: {object: tickets, within: {between: [2026-06-01, 2026-06-25]}, count: {gte: 2}}
        """,
        naive(
            "stg_crm__tickets",
            f"{local('x.created_at')} between date '2026-06-01' and date '2026-06-25'",
            "{rows} >= 2",
            "created_at",
        ).replace("{agg}", "count(*)"),
    ),
    "any_retail_company": (
        """
        has: {object: companies, where: {field: industry, op: eq, value: retail}}
        """,
        f"""
        select c.account_id, c.contact_id from {STG}.stg_crm__contacts as c
        where exists (select 1 from {STG}.stg_crm__contact_companies as l
            join {STG}.stg_crm__companies as co
              on co.account_id = l.account_id and co.company_id = l.company_id
            where l.account_id = c.account_id and l.contact_id = c.contact_id
              and co.industry = 'retail')
        """,
    ),
    "primary_company_retail": (
        """
        has:
          object: companies
          where:
            all:
              - {field: industry, op: eq, value: retail}
              - {field: is_primary, op: is_true}
        """,
        f"""
        select c.account_id, c.contact_id from {STG}.stg_crm__contacts as c
        where exists (select 1 from {STG}.stg_crm__contact_companies as l
            join {STG}.stg_crm__companies as co
              on co.account_id = l.account_id and co.company_id = l.company_id
            where l.account_id = c.account_id and l.contact_id = c.contact_id
              and co.industry = 'retail' and l.is_primary)
        """,
    ),
    "stopped_buying": (
        """
        all:
          - has: {object: orders, within: {last_days: 90}, count: {gte: 2}}
          - has: {object: orders, within: {last_days: 30}, count: {eq: 0}}
        """,
        naive(
            "stg_crm__orders",
            f"{local('x.ordered_at')} between {ASOF} - 90 and {ASOF} - 31",
            "{rows} >= 2",
            "ordered_at",
        ).replace("{agg}", "count(*)")
        + " and not exists (select 1 from "
        + f"{STG}.stg_crm__orders as y where y.account_id = c.account_id "
        + f"and y.contact_id = c.contact_id and {local('y.ordered_at')} "
        + f"between {ASOF} - 30 and {ASOF})",
    ),
}


def harness_sql(cases: dict[str, object]) -> str:
    trees = {name: node.to_json() for name, node in cases.items()}
    objects = sorted({h.feature.object for node in cases.values() for h in features.iter_has(node)})
    columns = ",\n    ".join(
        f"{{{{ segment_node_sql(fromjson({jinja_string(tree)})) }}}} as {name}"
        for name, tree in trees.items()
    )
    return (
        "{{ config(materialized='table', schema='segments_audit') }}\n"
        "select\n    c.account_id,\n    c.contact_id,\n    " + columns + "\n"
        "from {{ ref('stg_crm__contacts') }} as c\n"
        "inner join {{ ref('int_segment_as_of') }} as a on c.account_id = a.account_id\n"
        f"{{{{ feature_joins({objects!r}) }}}}\n"
    )


@pytest.fixture(scope="module")
def built(
    pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[psycopg.Connection]:
    from segmentation.warehouse import database

    with (
        project_copy(tmp_path_factory.mktemp("activity_project")) as project,
        database.connect(pg_database, autocommit=True) as conn,
    ):
        empty_raw_tables(conn)
        load_edge_cases(conn)
        nodes = {name: parse_condition(text) for name, (text, _) in CASES.items()}
        feats = features.collect_features(nodes.values())
        features.render_feature_models(project, feats)
        harness = project / "models" / "harness"
        harness.mkdir(parents=True, exist_ok=True)
        (harness / "harness_has.sql").write_text(harness_sql(nodes))
        run_dbt(
            [
                "build",
                "--no-partial-parse",
                "--select",
                "staging int_segment_as_of features harness",
            ],
            {"as_of": AS_OF.isoformat()},
        )
        yield conn


def harness_members(conn: psycopg.Connection, name: str) -> set[tuple[str, str]]:
    return members(
        conn, f"select account_id, contact_id from segments_audit.harness_has where {name}"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_has_matches_hand_written_sql(built: psycopg.Connection, name: str) -> None:
    expected = members(built, CASES[name][1])
    assert harness_members(built, name) == expected


def test_edge_cases_by_name(built: psycopg.Connection) -> None:
    acme = lambda *ids: {("acme", i) for i in ids}  # noqa: E731
    # Deleted contact a5 is nobody's member; its open deal does not make it one.
    assert ("acme", "a5") not in harness_members(built, "open_deal_over_30_days")
    # a3's open deal was created exactly 30 days ago: not "more than 30 days ago".
    assert harness_members(built, "open_deal_over_30_days") == acme("a1") | {("beta", "b1")}
    # a2 has no rows at all: count is 0; a3's conversation exactly 90 days ago counts;
    # a4's conversation after the as-of date (in Jakarta) does not.
    assert harness_members(built, "no_conversation_90_days") == acme("a1", "a2", "a4") | {
        ("plusco", "p1")
    }
    # beta's 9M orders (one naming acme's a1) never count for acme; NULL amounts sum to 0.
    assert harness_members(built, "orders_sum_1m_year") == acme("a1", "a4") | {("beta", "b1")}
    # max over no rows is NULL: a2 is not "last purchase over 180 days ago"; a4's last
    # order is a year old.
    assert harness_members(built, "last_purchase_over_180_days") == acme("a4")
    assert harness_members(built, "never_ordered") == acme("a2") | {("plusco", "p1")}
    assert harness_members(built, "clicked_cmp_123") == acme("a1") | {("beta", "b1")}
    # t3 is exactly 30 days before the as-of date: inside the window.
    assert harness_members(built, "three_tickets_30_days") == acme("a4")
    # d2 (60M, closed 2026) counts, d3 (closed 2025) does not.
    assert harness_members(built, "won_over_50m_this_year") == acme("a1") | {("beta", "b1")}
    # a3's orders all have NULL amounts: avg is NULL, not a member.
    assert harness_members(built, "avg_order_at_least_600k") == acme("a1", "a4") | {("beta", "b1")}
    # a3's deals: NULL and 5 -> min 5 (NULL amounts are skipped).
    assert harness_members(built, "min_deal_below_10") == acme("a3") | {("beta", "b1")}
    assert harness_members(built, "two_distinct_campaigns") == acme("a1")
    assert harness_members(built, "deal_count_not_one") == acme("a1", "a2", "a3", "a4") | {
        ("beta", "b1"),
        ("plusco", "p1"),
    }
    assert harness_members(built, "any_retail_company") == acme("a1", "a3") | {("beta", "b1")}
    assert harness_members(built, "primary_company_retail") == acme("a1") | {("beta", "b1")}
    assert harness_members(built, "stopped_buying") == acme("a1")


def test_one_feature_model_per_activity_table(built: psycopg.Connection) -> None:
    rows = built.execute(
        "select table_name from information_schema.tables where table_schema = 'segments_audit' "
        "and table_name like 'int_contact_features__%' order by 1"
    ).fetchall()
    assert [r[0] for r in rows] == [
        "int_contact_features__campaign_events",
        "int_contact_features__companies",
        "int_contact_features__conversations",
        "int_contact_features__deals",
        "int_contact_features__orders",
        "int_contact_features__tickets",
    ]
    # one row per (account, contact) with rows, never a deleted or cross-account contact
    dupes = built.execute(
        "select count(*) from (select account_id, contact_id from "
        "segments_audit.int_contact_features__orders group by 1, 2 having count(*) > 1) d"
    ).fetchone()[0]
    assert dupes == 0
    keys = members(
        built, "select account_id, contact_id from segments_audit.int_contact_features__orders"
    )
    assert keys == {("acme", "a1"), ("acme", "a3"), ("acme", "a4"), ("beta", "b1")}


def test_generated_feature_model_is_project_relative(built: psycopg.Connection) -> None:
    path = Path(features.GENERATED_DIR)
    assert path.parts == ("models", "features", "generated")
