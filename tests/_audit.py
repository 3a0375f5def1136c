"""Small candidate relations with the shape dbt builds, for auditing without a dbt build.

The tables mirror the shared interface (segments_audit.segment_memberships,
segment_catalogue, int_segment_scopes, segment_group_assignments, int_group_catalogue) and
the staging contract (segments_staging.stg_crm__contacts, the columns the audit reads).
`drop_candidates` removes them again so a later dbt build in the same test database finds
the names free.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

CREATE = """
create table segments_staging.stg_crm__contacts (
    contact_id text not null,
    account_id text not null,
    email text,
    phone text,
    consent_whatsapp boolean not null default false,
    consent_email boolean not null default false,
    consent_sms boolean not null default false
);
create table segments_audit.segment_memberships (
    account_id text,
    segment_key text,
    contact_id text
);
create table segments_audit.segment_catalogue (
    account_id text,
    segment_key text,
    name text,
    description text,
    owner text,
    visibility text,
    tags text[],
    enabled boolean,
    definition_hash text,
    expect_min_members int,
    expect_max_members int,
    expect_max_change_pct numeric,
    source_file text
);
create table segments_audit.int_segment_scopes (
    account_id text,
    segment_key text,
    enabled boolean
);
"""

GROUPS = """
create table segments_audit.segment_group_assignments (
    account_id text, group_key text, contact_id text, segment_key text
);
create table segments_audit.int_group_catalogue (
    account_id text, group_key text, exclusive boolean
);
"""

DROP = """
drop table if exists segments_staging.stg_crm__contacts cascade;
drop view if exists segments_staging.stg_crm__contacts cascade;
drop table if exists segments_audit.segment_memberships cascade;
drop table if exists segments_audit.segment_catalogue cascade;
drop table if exists segments_audit.int_segment_scopes cascade;
drop table if exists segments_audit.segment_group_assignments cascade;
drop table if exists segments_audit.int_group_catalogue cascade;
-- A dbt build leaves it; the audit would check its as-of date against the fixtures.
drop table if exists segments_audit.int_segment_as_of cascade;
"""


def create_candidates(conn: psycopg.Connection, *, groups: bool = False) -> None:
    conn.execute(DROP)
    conn.execute(CREATE)
    if groups:
        conn.execute(GROUPS)


def drop_candidates(conn: psycopg.Connection) -> None:
    conn.execute(DROP)


def add_contacts(conn: psycopg.Connection, account: str, count: int, prefix: str = "c") -> None:
    """`count` contacts with a valid phone, a valid email and full consent."""
    with conn.cursor() as cur:
        cur.executemany(
            "insert into segments_staging.stg_crm__contacts "
            "(contact_id, account_id, email, phone, consent_whatsapp, consent_email, consent_sms) "
            "values (%s, %s, %s, %s, true, true, true)",
            [
                (f"{prefix}{i}", account, f"{prefix}{i}@example.com", f"+62812{i:07d}")
                for i in range(count)
            ],
        )


def add_segment(
    conn: psycopg.Connection,
    account: str,
    segment: str,
    members: Iterable[str],
    *,
    enabled: bool = True,
    min_members: int | None = None,
    max_members: int | None = None,
    max_change_pct: float | None = None,
) -> None:
    conn.execute(
        "insert into segments_audit.segment_catalogue values "
        "(%s, %s, %s, 'test segment', 'data-team', 'account', '{}', %s, md5(%s), %s, %s, %s, "
        "'segment_defs/test.yml')",
        (
            account,
            segment,
            segment.title(),
            enabled,
            segment,
            min_members,
            max_members,
            max_change_pct,
        ),
    )
    add_scope(conn, account, segment, enabled=enabled)
    with conn.cursor() as cur:
        cur.executemany(
            "insert into segments_audit.segment_memberships values (%s, %s, %s)",
            [(account, segment, contact) for contact in members],
        )


def add_scope(
    conn: psycopg.Connection, account: str, segment: str, *, enabled: bool = True
) -> None:
    """A segment the definitions declare for `account` (int_segment_scopes: the audit's
    expected set), without a catalogue row or members of its own."""
    conn.execute(
        "insert into segments_audit.int_segment_scopes values (%s, %s, %s)",
        (account, segment, enabled),
    )
