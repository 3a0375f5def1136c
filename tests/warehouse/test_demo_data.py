"""The demo data generator, checked against what actually lands in crm_raw on a real server.

What needs no server (the generated text, the size checks, the default anchor) is in
tests/unit/test_demo_data_plan.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from segmentation.cli import main as cli
from segmentation.errors import DemoDataError
from segmentation.warehouse import database
from segmentation_dev import demo_data

ANCHOR = dt.date(2026, 3, 1)
SIZE = {"accounts": 3, "contacts": 300}
ACTIVITY = ("deals", "tickets", "conversations", "orders", "campaign_events")


def load(seed: int = 7, dbname: str | None = None) -> dict[str, int]:
    return demo_data.load(**SIZE, seed=seed, anchor=ANCHOR, dbname=dbname)


def checksums(conn: psycopg.Connection) -> dict[str, str]:
    """md5 of every table's rows (all columns but the load timestamp), in a stable order."""
    out = {}
    for table, columns in demo_data.COLUMNS.items():
        query = sql.SQL(
            "select md5(coalesce(string_agg(r, E'\\n' order by r), ''))"
            " from (select row({})::text as r from {}) as s"
        ).format(
            sql.SQL(", ").join(sql.Identifier(c) for c in columns),
            sql.Identifier("crm_raw", table),
        )
        out[table] = conn.execute(query).fetchone()[0]
    return out


def scalar(conn: psycopg.Connection, query: str, params: tuple | None = None) -> object:
    return conn.execute(query, params).fetchone()[0]


@pytest.fixture(scope="module")
def conn(pg_database: str) -> Iterator[psycopg.Connection]:
    with database.connect(pg_database, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def loaded(conn: psycopg.Connection) -> dict[str, int]:
    """One seed-7 load for the module; tests that load something else restore it."""
    return load()


# --------------------------------------------------------------------------- loading


def test_counts_match_the_tables(conn: psycopg.Connection, loaded: dict[str, int]) -> None:
    assert list(loaded) == list(demo_data.TABLES)
    for table, count in loaded.items():
        assert scalar(conn, f"select count(*) from crm_raw.{table}") == count, table
    assert scalar(conn, "select count(distinct contact_id) from crm_raw.contacts") == 300
    assert loaded["contacts"] > 300  # duplicate versions on top of 300 contacts


def test_same_seed_is_identical_other_seed_differs_reload_replaces(
    conn: psycopg.Connection, loaded: dict[str, int]
) -> None:
    first = checksums(conn)
    assert load(seed=7) == loaded  # a reload replaces: same counts, not doubled
    assert checksums(conn) == first
    other_counts = load(seed=8)
    other = checksums(conn)
    for table in ("users", "contacts", "companies", "deals", "conversations", "orders"):
        assert other[table] != first[table], table
    assert scalar(conn, "select count(distinct contact_id) from crm_raw.contacts") == 300
    assert other_counts["contacts"] == scalar(conn, "select count(*) from crm_raw.contacts")
    load(seed=7)
    assert checksums(conn) == first


def test_failed_load_keeps_the_previous_data(
    conn: psycopg.Connection, loaded: dict[str, int]
) -> None:
    before = checksums(conn)
    # orders is copied last: a constraint every generated order violates makes the load fail
    # after every other table was already truncated and rewritten in the same transaction.
    conn.execute(
        "alter table crm_raw.orders add constraint demo_reject check (order_id is null) not valid"
    )
    try:
        with pytest.raises(DemoDataError, match="previous crm_raw data is unchanged"):
            load(seed=9)
    finally:
        conn.execute("alter table crm_raw.orders drop constraint demo_reject")
    assert checksums(conn) == before


def test_cli_initialises_a_fresh_database_and_loads(
    pg_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = f"{pg_database}_demo"
    database.create_database(fresh)
    try:
        monkeypatch.setenv("PGDATABASE", fresh)
        argv = ["demo-data", "--accounts", "2", "--contacts", "40", "--seed", "3"]
        assert cli.main([*argv, "--anchor-date", "2026-03-01"]) == 0
        out = capsys.readouterr().out
        assert "contacts:" in out and "campaign_events:" in out
        with database.connect(fresh) as fresh_conn:
            assert scalar(fresh_conn, "select count(*) from crm_raw.accounts") == 2
            assert (
                scalar(fresh_conn, "select count(distinct contact_id) from crm_raw.contacts") == 40
            )
            latest = scalar(fresh_conn, "select max(started_at) from crm_raw.conversations")
            assert latest < dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    finally:
        database.drop_database(fresh)


# --------------------------------------------------------------------------- accounts


def test_packages_timezones_and_example_campaign(
    conn: psycopg.Connection, loaded: dict[str, int]
) -> None:
    rows = conn.execute(
        "select account_id, package, timezone from crm_raw.accounts order by account_id"
    ).fetchall()
    assert rows == [
        ("acme", "plus", "Asia/Jakarta"),
        ("globex", "ultimate", "Asia/Jakarta"),
        ("initech", "360", "Asia/Makassar"),
    ]
    assert conn.execute(
        "select account_id, channel from crm_raw.campaigns where campaign_id = 'cmp_123'"
    ).fetchall() == [("globex", "whatsapp")]
    funnel = scalar(
        conn,
        "select count(distinct event_type) from crm_raw.campaign_events"
        " where campaign_id = 'cmp_123' and account_id = 'globex'",
    )
    assert funnel >= 5
    assert scalar(conn, "select count(*) - count(distinct campaign_id) from crm_raw.campaigns") == 0


def test_ids_are_globally_unique_slugs(conn: psycopg.Connection, loaded: dict[str, int]) -> None:
    assert (
        scalar(
            conn,
            "select count(*) from crm_raw.contacts where contact_id not like account_id || '-c%'",
        )
        == 0
    )
    assert (
        scalar(
            conn,
            "select count(*) from (select contact_id from crm_raw.contacts"
            " group by 1 having count(distinct account_id) > 1) as s",
        )
        == 0
    )
    for table, key in (("deals", "deal_id"), ("conversations", "conversation_id")):
        assert (
            scalar(
                conn,
                f"select count(*) from crm_raw.{table} where {key} not like account_id || '-%'",
            )
            == 0
        )


# --------------------------------------------------------------------------- mess


def test_duplicates_differ_in_updated_at_and_a_field(
    conn: psycopg.Connection, loaded: dict[str, int]
) -> None:
    for table, key, fields in (
        ("contacts", "contact_id", "email, phone, city, lifecycle_stage"),
        ("deals", "deal_id", "status, stage, amount"),
        ("tickets", "ticket_id", "status, resolved_at"),
        ("companies", "company_id", "name"),
    ):
        dups = conn.execute(
            f"select {key}, count(*), count(distinct updated_at),"
            f" count(distinct row({fields})::text)"
            f" from crm_raw.{table} group by 1 having count(*) > 1"
        ).fetchall()
        assert {d[0].split("-")[0] for d in dups} == {"acme", "globex", "initech"}, table
        for key_value, rows, times, versions in dups:
            assert times == rows, f"{table} {key_value}: updated_at ties"
            assert versions > 1, f"{table} {key_value}: versions differ only in updated_at"
    # Some duplicated contacts list the older version after the newer one.
    assert (
        scalar(
            conn,
            "select count(*) from (select contact_id, updated_at,"
            " lag(updated_at) over (partition by contact_id order by ctid) as previous"
            " from crm_raw.contacts) as s where previous > updated_at",
        )
        > 0
    )


def test_soft_deleted_contacts_still_have_activity(
    conn: psycopg.Connection, loaded: dict[str, int]
) -> None:
    deleted = conn.execute(
        """
        with latest as (
            select distinct on (contact_id) contact_id, account_id, deleted_at
            from crm_raw.contacts order by contact_id, updated_at desc
        )
        select l.account_id, count(distinct l.contact_id)
        from latest as l
        join crm_raw.conversations as v
            on v.contact_id = l.contact_id and v.account_id = l.account_id
        where l.deleted_at is not null
        group by 1 order by 1
        """
    ).fetchall()
    assert [d[0] for d in deleted] == ["acme", "globex", "initech"]
    # ...and a deleted contact whose older version was not deleted yet.
    assert (
        scalar(
            conn,
            "select count(*) from (select contact_id from crm_raw.contacts group by 1"
            " having count(deleted_at) > 0 and count(*) > count(deleted_at)) as s",
        )
        >= 3
    )


@pytest.mark.parametrize("table", ACTIVITY)
def test_orphan_and_cross_account_activity(
    conn: psycopg.Connection, loaded: dict[str, int], table: str
) -> None:
    orphans = scalar(
        conn,
        f"select count(*) from crm_raw.{table} as a where a.contact_id is not null"
        " and not exists (select from crm_raw.contacts as c where c.contact_id = a.contact_id)",
    )
    cross = scalar(
        conn,
        f"select count(*) from crm_raw.{table} as a where exists (select from crm_raw.contacts"
        " as c where c.contact_id = a.contact_id and c.account_id <> a.account_id)",
    )
    assert orphans > 0
    assert cross > 0
    total = scalar(conn, f"select count(*) from crm_raw.{table}")
    assert orphans + cross < total * 0.1  # mess, not the norm


def test_orphans_and_cross_references_in_every_account(
    conn: psycopg.Connection, loaded: dict[str, int]
) -> None:
    for table in ("deals", "tickets", "conversations", "orders"):
        accounts = conn.execute(
            f"select distinct a.account_id from crm_raw.{table} as a"
            " left join crm_raw.contacts as c on c.contact_id = a.contact_id"
            " where c.contact_id is null or c.account_id <> a.account_id order by 1"
        ).fetchall()
        assert [a[0] for a in accounts] == ["acme", "globex", "initech"], table


def test_messy_emails_and_phones(conn: psycopg.Connection, loaded: dict[str, int]) -> None:
    def count(where: str) -> int:
        return scalar(conn, f"select count(*) from crm_raw.contacts where {where}")

    assert count("email <> trim(email) and email <> lower(email)") > 0  # ' Budi.Santoso@Gmail.COM '
    assert count("email = trim(email) and email <> lower(email)") > 0
    assert count("email = ''") > 0
    assert count("email is null") > 0
    assert count("email is not null and email not like '%@%.%'") > 0
    for pattern in (
        r"^0\d{3}-\d{4}-\d{3,4}$",  # 0812-3456-7890
        r"^\+62 \d{3} \d{4} \d{3,4}$",  # +62 812 3456 7890
        r"^62\d{9,}$",  # 62812...
        r"^\+62\d{9,}$",
        r"^\(0\d{2,3}\) \d{3}-\d{4}$",  # (021) 555-1234
        r"^[1-9]\d{2} \d{4} \d{3,4}$",  # 812 3456 7890
        r"^08\d{8,}$",
    ):
        assert count(f"phone ~ '{pattern}'") > 0, pattern
    assert count(r"phone !~ '\d{6}'") > 0  # 'n/a', '-', '12345' ...
    assert count("phone is null") > 0


def test_picklists_have_stray_case_and_spacing(
    conn: psycopg.Connection, loaded: dict[str, int]
) -> None:
    for column in ("lifecycle_stage", "city", "loyalty_tier", "lead_source"):
        values = [
            r[0]
            for r in conn.execute(
                f"select distinct {column} from crm_raw.contacts where {column} is not null"
            )
        ]
        assert any(v != v.strip() for v in values), column
        assert any(v.isupper() or v.islower() for v in values), column
        normalised = {" ".join(v.split()).lower() for v in values}
        assert len(normalised) < len(values), column  # several spellings of one value
    stages = {" ".join(v.split()).lower() for (v,) in conn.execute(
        "select distinct lifecycle_stage from crm_raw.contacts where lifecycle_stage is not null"
    )}  # fmt: skip
    assert {"lead", "customer", "marketing qualified lead"} <= stages
    tiers = {(v or "").strip().lower() for (v,) in conn.execute(
        "select distinct loyalty_tier from crm_raw.contacts"
    )}  # fmt: skip
    assert tiers == {"", "bronze", "silver", "gold", "platinum"}


def test_nulls_in_every_optional_contact_column(
    conn: psycopg.Connection, loaded: dict[str, int]
) -> None:
    required = {"contact_id", "account_id", "created_at", "updated_at"}
    for column in demo_data.COLUMNS["contacts"]:
        nulls = scalar(conn, f"select count(*) from crm_raw.contacts where {column} is null")
        if column in required:
            assert nulls == 0, column
        else:
            assert nulls > 0, column
    for table, column in (
        ("deals", "amount"),
        ("deals", "company_id"),
        ("deals", "expected_close_date"),
        ("deals", "closed_at"),
        ("tickets", "priority"),
        ("conversations", "agent_user_id"),
        ("companies", "industry"),
        ("campaigns", "sent_at"),
    ):
        assert scalar(conn, f"select count(*) from crm_raw.{table} where {column} is null") > 0


def test_names_tags_custom_fields_and_birthdays(
    conn: psycopg.Connection, loaded: dict[str, int]
) -> None:
    assert scalar(conn, "select count(*) from crm_raw.contacts where full_name ~ '[^\\x01-\\x7f]'")
    assert scalar(
        conn,
        "select count(*) from crm_raw.contacts where extract(month from date_of_birth) = 2"
        " and extract(day from date_of_birth) = 29",
    )
    tags = {r[0] for r in conn.execute("select distinct unnest(tags) from crm_raw.contacts")}
    assert {"vip", "do_not_contact", "newsletter"} <= tags
    kinds = dict(
        conn.execute(
            "select jsonb_typeof(custom_fields -> 'vip_level'), count(*) from crm_raw.contacts"
            " where custom_fields ? 'vip_level' group by 1"
        ).fetchall()
    )
    assert kinds.get("number", 0) > kinds.get("string", 0) > 0  # mostly int, some '3'
    for key in ("preferred_store", "signup_channel"):
        assert scalar(
            conn, "select count(*) from crm_raw.contacts where custom_fields ? %s", (key,)
        )
    assert scalar(conn, "select count(*) from crm_raw.contacts where custom_fields = '{}'")
    assert scalar(conn, "select count(*) from crm_raw.contacts where consent_whatsapp is null")


def test_companies_deals_and_activity_vocabularies(
    conn: psycopg.Connection, loaded: dict[str, int]
) -> None:
    def values(query: str) -> set:
        return {r[0] for r in conn.execute(query)}

    assert (
        scalar(
            conn,
            "select count(*) from (select contact_id from crm_raw.contact_companies"
            " group by 1 having count(*) filter (where is_primary) <> 1) as s",
        )
        == 0
    )
    assert scalar(conn, "select count(*) from crm_raw.contact_companies where not is_primary") > 0
    industries = values("select distinct lower(trim(industry)) from crm_raw.companies")
    assert {"retail", "manufacturing", "fintech"} <= industries
    assert values("select distinct lower(trim(status)) from crm_raw.deals") == {
        "open", "won", "lost"
    }  # fmt: skip
    assert scalar(conn, "select count(*) from crm_raw.deals where amount > 50000000") > 0
    assert values("select distinct channel from crm_raw.conversations") == set(demo_data.CHANNELS)
    assert values("select distinct event_type from crm_raw.campaign_events") == {
        "sent", "delivered", "read", "replied", "clicked", "failed", "unsubscribed"
    }  # fmt: skip
    assert values("select distinct lower(trim(status)) from crm_raw.orders") == {
        "completed", "refunded", "cancelled"
    }  # fmt: skip
    assert values("select distinct currency from crm_raw.orders") == {"IDR"}


# --------------------------------------------------------------------------- shape and time


def test_power_law_conversations(conn: psycopg.Connection, loaded: dict[str, int]) -> None:
    counts = [
        r[0]
        for r in conn.execute(
            """
            select count(v.conversation_id)
            from (select distinct account_id, contact_id from crm_raw.contacts) as c
            left join crm_raw.conversations as v
                on v.contact_id = c.contact_id and v.account_id = c.account_id
            group by c.contact_id
            order by 1 desc
            """
        )
    ]
    assert len(counts) == 300
    top_tenth = sum(counts[:30])
    assert top_tenth > 0.5 * sum(counts)
    assert counts[150] <= 1  # the median contact is quiet
    assert counts[0] >= 20  # and a few are very active


def test_loyalty_points_are_heavy_tailed(conn: psycopg.Connection, loaded: dict[str, int]) -> None:
    median, p99 = conn.execute(
        "select percentile_disc(0.5) within group (order by loyalty_points),"
        " percentile_disc(0.99) within group (order by loyalty_points) from crm_raw.contacts"
    ).fetchone()
    assert p99 > 10 * median


def test_timestamps_precede_the_anchor_in_each_account_timezone(
    conn: psycopg.Connection, loaded: dict[str, int]
) -> None:
    checks = {
        "contacts": "greatest(created_at, updated_at, deleted_at, consent_updated_at)",
        "deals": "greatest(created_at, updated_at, closed_at)",
        "tickets": "greatest(created_at, updated_at, resolved_at)",
        "conversations": "greatest(started_at, last_message_at)",
        "campaign_events": "occurred_at",
        "orders": "ordered_at",
        "campaigns": "sent_at",
    }
    for table, expression in checks.items():
        late, early = conn.execute(
            f"""
            select count(*) filter (where {expression} >= (%s::date)::timestamp at time zone a.timezone),
                   count(*) filter (where {expression} < (%s::date - 1100)::timestamp)
            from crm_raw.{table} as t join crm_raw.accounts as a using (account_id)
            """,  # noqa: E501
            (ANCHOR, ANCHOR),
        ).fetchone()
        assert (late, early) == (0, 0), table
    # Makassar is UTC+8: its latest possible moment is an hour earlier in UTC than Jakarta's.
    assert scalar(
        conn,
        "select max(ordered_at) < timestamptz '2026-03-01 00:00+08' from crm_raw.orders"
        " where account_id = 'initech'",
    )
    # Not everything is old: a share of the activity is in the last 30 days.
    recent = scalar(
        conn,
        "select count(*) from crm_raw.conversations where started_at >= timestamptz '2026-01-30'",
    )
    assert recent > 0.02 * loaded["conversations"]


def test_example_segments_have_members_in_every_account(
    conn: psycopg.Connection, loaded: dict[str, int]
) -> None:
    rows = conn.execute(
        """
        with a as (
            select account_id, (%s::date)::timestamp at time zone timezone as as_of
            from crm_raw.accounts
        ),
        stale_open_deal as (
            select distinct d.account_id, d.contact_id from crm_raw.deals as d join a using (account_id)
            where d.status = 'open' and d.created_at < a.as_of - interval '30 days'
        ),
        ticket_burst as (
            select t.account_id, t.contact_id from crm_raw.tickets as t join a using (account_id)
            where t.created_at >= a.as_of - interval '30 days'
            group by 1, 2 having count(*) >= 3
        ),
        lapsed_buyer as (
            select o.account_id, o.contact_id from crm_raw.orders as o join a using (account_id)
            where o.status = 'completed'
            group by o.account_id, o.contact_id, a.as_of
            having count(*) filter (where o.ordered_at >= a.as_of - interval '90 days'
                                      and o.ordered_at < a.as_of - interval '30 days') >= 2
               and count(*) filter (where o.ordered_at >= a.as_of - interval '30 days') = 0
        ),
        quiet as (
            select v.account_id, v.contact_id from crm_raw.conversations as v join a using (account_id)
            group by v.account_id, v.contact_id, a.as_of
            having max(v.started_at) < a.as_of - interval '90 days'
        )
        select 'stale_open_deal', account_id, count(*) from stale_open_deal group by 1, 2
        union all select 'ticket_burst', account_id, count(*) from ticket_burst group by 1, 2
        union all select 'lapsed_buyer', account_id, count(*) from lapsed_buyer group by 1, 2
        union all select 'quiet', account_id, count(*) from quiet group by 1, 2
        """,  # noqa: E501
        (ANCHOR,),
    ).fetchall()
    found = {(segment, account) for segment, account, members in rows if members > 0}
    for segment in ("stale_open_deal", "ticket_burst", "lapsed_buyer", "quiet"):
        for account in ("acme", "globex", "initech"):
            assert (segment, account) in found


def test_untrusted_text_survives_copy_verbatim(
    conn: psycopg.Connection, loaded: dict[str, int]
) -> None:
    # The generator writes hostile-looking values; COPY must store them as plain data.
    assert scalar(conn, "select count(*) from crm_raw.contacts where job_title like '%drop table%'")
    assert scalar(conn, "select count(*) from crm_raw.contacts where full_name like '%''%'")
