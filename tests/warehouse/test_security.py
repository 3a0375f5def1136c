"""Roles, grants and row-level security, proven by logging in as the roles.

`multiplexer` is a login of the weaker `app.account_id` mode; `login` a per-tenant login of
the default mode (granted acme). The by-login isolation itself: test_security_serving.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from _publish import (
    Login,
    fingerprint,
    publish_state,
    reader_login,
    set_catalogue,
    set_contacts,
    set_membership,
)
from _serving import account_login, multiplexer_login
from psycopg import errors, sql

from segmentation.steps.publish import publish
from segmentation.warehouse import bootstrap, database, security

D1 = dt.date(2026, 11, 1)
TENANT_TABLES = security.TENANT_TABLES


@pytest.fixture(scope="module")
def serving(pg_database: str) -> Iterator[psycopg.Connection]:
    """Two accounts published; also a raw contact row so the raw table is not empty."""
    with psycopg.connect(dbname=pg_database, autocommit=True) as conn, publish_state(conn):
        set_contacts(
            conn,
            [
                ("a1", "acme", "a1@example.com", "+6281200000001", True, True, True),
                ("a2", "acme", "a2@example.com", "+6281200000002", True, True, True),
                ("g1", "globex", "g1@example.com", "+6281200000003", True, True, True),
            ],
        )
        set_catalogue(conn, [("acme", "vip"), ("globex", "vip")])
        set_membership(conn, {("acme", "vip"): ["a1", "a2"], ("globex", "vip"): ["g1"]})
        conn.execute(
            "create table segments_audit.segment_group_assignments "
            "(account_id text, group_key text, contact_id text, segment_key text)"
        )
        conn.execute(
            "insert into segments_audit.segment_group_assignments values "
            "('acme', 'tier', 'a1', 'vip'), ('globex', 'tier', 'g1', 'vip')"
        )
        conn.execute("insert into crm_raw.accounts (account_id, name) values ('zz_sec', 'x')")
        publish(D1, "security", {})
        try:
            yield conn
        finally:
            conn.execute("delete from crm_raw.accounts where account_id = 'zz_sec'")


@pytest.fixture(scope="module")
def multiplexer(serving: psycopg.Connection, pg_database: str) -> Iterator[Login]:
    with multiplexer_login(serving, pg_database) as login:
        yield login


@pytest.fixture(scope="module")
def acme_login(serving: psycopg.Connection, pg_database: str) -> Iterator[Login]:
    with account_login(serving, pg_database, ["acme"]) as login:
        yield login


@pytest.fixture(params=["multiplexer", "acme_login"])
def reader(request: pytest.FixtureRequest) -> Login:
    """Each kind of Broadcast login; both must be equally unable to reach anything else."""
    return request.getfixturevalue(request.param)


def _accounts_seen(conn: psycopg.Connection) -> dict[str, set[str]]:
    return {
        table: {
            r[0]
            for r in conn.execute(
                sql.SQL("select account_id from {}").format(
                    sql.Identifier("segments_serving", table)
                )
            )
        }
        for table in TENANT_TABLES
    }


@pytest.mark.parametrize("role", [security.reader_role, security.multiplexer_role])
def test_reader_role_is_a_group_role_without_login(serving: psycopg.Connection, role) -> None:
    row = serving.execute(
        "select rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb "
        "from pg_roles where rolname = %s",
        (role(),),
    ).fetchone()
    assert row == (False, False, False, False, False)


def test_reader_sees_only_its_account_after_setting_it(multiplexer: Login) -> None:
    with multiplexer.connect() as conn:
        conn.execute("set app.account_id = 'acme'")
        assert _accounts_seen(conn) == {table: {"acme"} for table in TENANT_TABLES}
        assert conn.execute("select count(*) from segments_serving.segment_members").fetchone() == (
            2,
        )
        conn.execute("select set_config('app.account_id', 'globex', false)")
        assert _accounts_seen(conn) == {table: {"globex"} for table in TENANT_TABLES}
        # A filter naming the other account still finds nothing.
        assert conn.execute(
            "select count(*) from segments_serving.segment_members where account_id = 'acme'"
        ).fetchone() == (0,)


def test_reader_sees_nothing_without_an_account(multiplexer: Login) -> None:
    with multiplexer.connect() as conn:
        assert _accounts_seen(conn) == {table: set() for table in TENANT_TABLES}
        conn.execute("set app.account_id = 'acme'")
        conn.execute("reset app.account_id")  # now '' rather than unset
        assert _accounts_seen(conn) == {table: set() for table in TENANT_TABLES}
        conn.execute("set app.account_id = 'no_such_account'")
        assert _accounts_seen(conn) == {table: set() for table in TENANT_TABLES}


@pytest.mark.parametrize(
    "relation",
    [
        "crm_raw.contacts",
        "crm_raw.accounts",
        "segments_audit.segment_memberships",
        "segments_audit.segment_catalogue",
        "segments_staging.stg_crm__contacts",
        "segments_history.membership_changes",
        "segments_history.segment_sizes",
        "segments_serving.publish_log",
    ],
)
def test_reader_cannot_read_anything_else(reader: Login, relation: str) -> None:
    with reader.connect() as conn:
        conn.execute("set app.account_id = 'acme'")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(sql.SQL("select * from {}").format(sql.Identifier(*relation.split("."))))


@pytest.mark.parametrize(
    "statement",
    [
        "insert into segments_serving.segment_members values ('acme', 'vip', 'x', current_date)",
        "update segments_serving.segments set stale = true",
        "delete from segments_serving.broadcast_recipients",
        "truncate segments_serving.segment_members",
        "truncate segments_serving.group_assignments",
        "insert into segments_serving.publish_log (run_id, as_of, published_at, "
        "segments_published, segments_quarantined, status) "
        "values ('x', '2026-01-01', '2026-01-01', 0, 0, 'published')",
        "alter table segments_serving.segments add column x int",
        "drop table segments_serving.segment_members",
        "create table segments_serving.x (a int)",
        "create table public.x (a int)",
        "create temporary table x (a int)",
        "create view segments_serving.leak as select 1 as a",
    ],
)
def test_reader_cannot_write(reader: Login, serving: psycopg.Connection, statement: str) -> None:
    before = fingerprint(serving)
    with reader.connect() as conn:
        conn.execute("set app.account_id = 'acme'")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)
    assert fingerprint(serving) == before


def test_pipeline_role_publishes_but_cannot_alter_serving(
    serving: psycopg.Connection, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = security.pipeline_role()
    # In production dbt runs as the pipeline role and owns the candidate; here the superuser
    # created the fixtures, so hand the pipeline what dbt ownership would give it.
    for table in (
        "segments_audit.segment_catalogue",
        "segments_audit.segment_memberships",
        "segments_audit.segment_group_assignments",
        "segments_staging.stg_crm__contacts",
    ):
        serving.execute(
            sql.SQL("grant select on {} to {}").format(
                sql.Identifier(*table.split(".")), sql.Identifier(pipeline)
            )
        )
    with reader_login(serving, pg_database, group=pipeline) as login, monkeypatch.context() as env:
        env.setenv("PGUSER", login.user)
        env.setenv("PGPASSWORD", login.password)
        set_membership(serving, {("acme", "vip"): ["a1"], ("globex", "vip"): ["g1"]})
        result = publish(dt.date(2026, 11, 2), "as-pipeline", {})
        assert result.counts == {"acme": {"vip": 1}, "globex": {"vip": 1}}
        with database.connect(autocommit=True) as conn:
            # RLS applies to the pipeline too; its policy lets it see every account.
            seen = conn.execute(
                "select count(distinct account_id) from segments_serving.segments"
            ).fetchone()
            assert seen == (2,)
            for statement in (
                "truncate segments_serving.segment_members",
                "drop table segments_serving.segments",
                "alter table segments_serving.segments disable row level security",
                "select * from pg_catalog.pg_authid",
            ):
                with pytest.raises(errors.InsufficientPrivilege):
                    conn.execute(statement)
    set_membership(serving, {("acme", "vip"): ["a1", "a2"], ("globex", "vip"): ["g1"]})
    publish(dt.date(2026, 11, 2), "restore", {})


def test_init_is_idempotent_and_keeps_grants(
    serving: psycopg.Connection, multiplexer: Login, acme_login: Login
) -> None:
    bootstrap.init_db()
    bootstrap.init_db()
    with multiplexer.connect() as conn:
        conn.execute("set app.account_id = 'acme'")
        assert _accounts_seen(conn) == {table: {"acme"} for table in TENANT_TABLES}
    with acme_login.connect() as conn:
        conn.execute("set app.account_id = 'globex'")
        assert _accounts_seen(conn) == {table: {"acme"} for table in TENANT_TABLES}
