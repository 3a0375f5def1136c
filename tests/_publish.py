"""Helpers for the publish, history and security tests: small candidate fixtures built with
psycopg in the real schemas (no dbt), a login role that is a member of the reader role, and
fingerprints of the serving tables.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from segmentation.warehouse import security

SERVING_TABLES = {
    "segments": "account_id, segment_key",
    "segment_members": "account_id, segment_key, contact_id",
    "group_assignments": "account_id, group_key, contact_id",
    "broadcast_recipients": "account_id, segment_key, contact_id, channel",
    "publish_log": "publish_id",
}
HISTORY_TABLES = ("membership_changes", "segment_sizes", "membership_state", "recorded_dates")

CATALOGUE_DDL = """
    account_id text, segment_key text, name text, description text, owner text,
    visibility text, tags text[], enabled boolean, definition_hash text,
    expect_min_members int, expect_max_members int, expect_max_change_pct numeric,
    source_file text
"""
MEMBERSHIP_DDL = "account_id text, segment_key text, contact_id text"
# The columns of int_segment_scopes the audit reads (its expected set).
SCOPES_DDL = "account_id text, segment_key text, enabled boolean"
GROUPS_DDL = "account_id text, group_key text, contact_id text, segment_key text"
CONTACTS_DDL = """
    contact_id text, account_id text, full_name text, email text, phone text,
    consent_whatsapp boolean, consent_email boolean, consent_sms boolean
"""


def replace_table(conn: psycopg.Connection, schema: str, name: str, ddl: str) -> None:
    """Replace whatever relation (a dbt view or table) has this name by an empty fixture table."""
    kind = conn.execute(
        "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relname = %s",
        (schema, name),
    ).fetchone()
    ident = sql.Identifier(schema, name)
    if kind and kind[0] in ("v", "m"):
        conn.execute(sql.SQL("drop view if exists {} cascade").format(ident))
    conn.execute(sql.SQL("drop table if exists {} cascade").format(ident))
    conn.execute(sql.SQL("create table {} (" + ddl + ")").format(ident))


def reset_publish_state(conn: psycopg.Connection) -> None:
    """Empty serving and history, and install empty candidate and contact fixture tables."""
    for table in SERVING_TABLES:
        conn.execute(
            sql.SQL("truncate {} restart identity").format(
                sql.Identifier("segments_serving", table)
            )
        )
    for table in HISTORY_TABLES:
        conn.execute(sql.SQL("truncate {}").format(sql.Identifier("segments_history", table)))
    replace_table(conn, "segments_audit", "segment_catalogue", CATALOGUE_DDL)
    replace_table(conn, "segments_audit", "segment_memberships", MEMBERSHIP_DDL)
    replace_table(conn, "segments_audit", "int_segment_scopes", SCOPES_DDL)
    conn.execute("drop table if exists segments_audit.segment_group_assignments")
    replace_table(conn, "segments_staging", "stg_crm__contacts", CONTACTS_DDL)


def drop_fixtures(conn: psycopg.Connection) -> None:
    """Empty serving and history and drop the fixture tables, so a later dbt build in the
    same test database finds the names free and a later publish test starts from nothing."""
    reset_publish_state(conn)
    for name in (
        "segments_audit.segment_catalogue",
        "segments_audit.segment_memberships",
        "segments_audit.int_segment_scopes",
        "segments_audit.segment_group_assignments",
        "segments_staging.stg_crm__contacts",
    ):
        conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(*name.split("."))))


@contextmanager
def publish_state(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """Around one test: a clean serving/history with empty fixtures; dropped afterwards."""
    reset_publish_state(conn)
    try:
        yield conn
    finally:
        drop_fixtures(conn)


def set_catalogue(
    conn: psycopg.Connection,
    segments: Iterable[tuple[str, str]],
    *,
    disabled: Iterable[tuple[str, str]] = (),
    hash_suffix: str = "v1",
) -> None:
    """Candidate catalogue: one enabled row per (account, segment), plus disabled ones; the
    same rows as the definitions' scopes (int_segment_scopes, the audit's expected set)."""
    conn.execute("truncate segments_audit.segment_catalogue")
    conn.execute("truncate segments_audit.int_segment_scopes")
    rows = [(a, s, True) for a, s in segments] + [(a, s, False) for a, s in disabled]
    with conn.cursor() as cur:
        cur.executemany("insert into segments_audit.int_segment_scopes values (%s, %s, %s)", rows)
        cur.executemany(
            "insert into segments_audit.segment_catalogue values "
            "(%s, %s, %s, %s, 'crm-team', 'account', %s, %s, %s, 1, 100000, 50, %s)",
            [
                (
                    a,
                    s,
                    s.replace("_", " ").title(),
                    f"Contacts in {s}",
                    ["test"],
                    enabled,
                    f"{s}-{hash_suffix}",
                    f"segment_defs/{a}/{s}.yml",
                )
                for a, s, enabled in rows
            ],
        )


def set_membership(conn: psycopg.Connection, members: dict[tuple[str, str], Iterable[str]]) -> None:
    """Replace the candidate membership with {(account, segment): contact ids}."""
    with conn.transaction():
        conn.execute("truncate segments_audit.segment_memberships")
        with (
            conn.cursor() as cur,
            cur.copy(
                "copy segments_audit.segment_memberships (account_id, segment_key, contact_id) "
                "from stdin"
            ) as copy,
        ):
            for (account, segment), contacts in members.items():
                for contact in contacts:
                    copy.write_row((account, segment, contact))


def set_contacts(conn: psycopg.Connection, rows: Iterable[tuple]) -> None:
    """Staged contacts: (contact_id, account_id, email, phone, wa, email_ok, sms)."""
    conn.execute("truncate segments_staging.stg_crm__contacts")
    with conn.cursor() as cur:
        cur.executemany(
            "insert into segments_staging.stg_crm__contacts "
            "(contact_id, account_id, full_name, email, phone, consent_whatsapp, consent_email, "
            "consent_sms) values (%s, %s, 'Name ' || %s, %s, %s, %s, %s, %s)",
            [(c, a, c, email, phone, wa, em, sms) for c, a, email, phone, wa, em, sms in rows],
        )


def fingerprint(conn: psycopg.Connection) -> dict[str, tuple[int, str]]:
    """(row count, md5 of all rows in key order) of every serving table."""
    result = {}
    for table, key in SERVING_TABLES.items():
        count, digest = conn.execute(
            sql.SQL(
                "select count(*), md5(coalesce(string_agg(t::text, '|' order by " + key + "), ''))"
                " from {} as t"
            ).format(sql.Identifier("segments_serving", table))
        ).fetchone()
        result[table] = (count, digest)
    return result


def members(conn: psycopg.Connection, account: str, segment: str) -> dict[str, object]:
    rows = conn.execute(
        "select contact_id, member_since from segments_serving.segment_members "
        "where account_id = %s and segment_key = %s",
        (account, segment),
    ).fetchall()
    return dict(rows)


@dataclass(frozen=True)
class Login:
    """A login role that is a member of the reader role, for connecting as Broadcast."""

    user: str
    password: str
    dbname: str

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGDATABASE": self.dbname,
        }

    def connect(self, autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(
            dbname=self.dbname, user=self.user, password=self.password, autocommit=autocommit
        )


@contextmanager
def reader_login(
    conn: psycopg.Connection, dbname: str, group: str | None = None
) -> Iterator[Login]:
    """Create `segments_test_login_<hex>` (LOGIN, member of the reader role or `group`); drop
    it after. Only this throw-away login role is dropped; the shared roles are never touched.
    """
    user = f"segments_test_login_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    conn.execute(
        sql.SQL("create role {} login password {} in role {}").format(
            sql.Identifier(user),
            sql.Literal(password),
            sql.Identifier(group or security.reader_role()),
        )
    )
    try:
        yield Login(user, password, dbname)
    finally:
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where usename = %s", (user,)
        )
        conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(user)))


def segments_run(as_of: dt.date, run_id: str) -> subprocess.Popen[str]:
    """A real `segments run` in its own process (and process group, so it can be killed)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "segmentation.cli.main",
            "run",
            "--as-of",
            as_of.isoformat(),
            "--run-id",
            run_id,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        start_new_session=True,
    )


def free_lease(conn: psycopg.Connection) -> None:
    """Release the run lease, whoever holds it."""
    if not conn.execute("select to_regclass('segments_control.run_lease')").fetchone()[0]:
        return  # (only without the fix: lets the tests show what fails then)
    conn.execute(
        "update segments_control.run_lease set run_id = null, as_of = null, acquired_at = null, "
        "expires_at = null, holder = null, session_pid = null, session_token = null"
    )


def wait_for_build(conn: psycopg.Connection, proc: subprocess.Popen[str]) -> str:
    """Block until the `segments run` in `proc` is inside dbt building a segments_audit
    table; return that statement."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it reached its build"
        row = conn.execute(
            "select query from pg_stat_activity where datname = current_database() "
            "and state = 'active' and pid <> pg_backend_pid() "
            "and query like '%\"app\": \"dbt\"%' and query ilike '%create%table%segments_audit%'"
        ).fetchone()
        if row:
            return row[0]
        time.sleep(0.05)
    raise AssertionError("the run never reached its dbt build")
