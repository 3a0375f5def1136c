"""The hostile reader (issue 8: H4, M2, M3, M7): a login that is a member of Broadcast's reader
role and sends arbitrary SQL. Every test logs in as such a login on the real server."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import psycopg
import pytest
from _publish import (
    Login,
    publish_state,
    reader_login,
    set_catalogue,
    set_contacts,
    set_membership,
)
from _serving import account_login, known_accounts, multiplexer_login
from psycopg import errors, sql

from segmentation.cli import main as cli
from segmentation.errors import DatabaseError, SecuritySetupError
from segmentation.steps.publish import publish
from segmentation.warehouse import bootstrap, security

TENANT_TABLES = security.TENANT_TABLES
ACCOUNTS = ("acme", "globex", "initech")
# Very different sizes, so that any estimate derived from them differs too.
SIZES = {"acme": 40, "globex": 3000, "initech": 7}


@pytest.fixture(scope="module")
def serving(pg_database: str) -> Iterator[psycopg.Connection]:
    """Three accounts published; globex's and initech's segments have keys of their own."""
    with (
        psycopg.connect(dbname=pg_database, autocommit=True) as conn,
        publish_state(conn),
        known_accounts(conn, ACCOUNTS),
    ):
        contacts = [
            (f"{a}{i}", a, f"{a}{i}@example.com", f"+62812{n:02d}{i:06d}", True, True, True)
            for n, a in enumerate(ACCOUNTS)
            for i in range(SIZES[a])
        ]
        set_contacts(conn, contacts)
        segments = [(a, "vip") for a in ACCOUNTS] + [("globex", "g_only"), ("initech", "i_only")]
        set_catalogue(conn, segments)
        membership = {(a, "vip"): [f"{a}{i}" for i in range(SIZES[a])] for a in ACCOUNTS}
        membership[("globex", "g_only")] = [f"globex{i}" for i in range(SIZES["globex"])]
        membership[("initech", "i_only")] = [f"initech{i}" for i in range(SIZES["initech"])]
        set_membership(conn, membership)
        conn.execute(
            "create table segments_audit.segment_group_assignments "
            "(account_id text, group_key text, contact_id text, segment_key text)"
        )
        conn.execute(
            "insert into segments_audit.segment_group_assignments "
            "select account_id, 'tier', contact_id, segment_key "
            "from segments_audit.segment_memberships where segment_key = 'vip'"
        )
        publish(dt.date(2026, 11, 1), "hostile-reader", {})
        for table in TENANT_TABLES:
            conn.execute(sql.SQL("analyze {}").format(sql.Identifier("segments_serving", table)))
        yield conn


@pytest.fixture(scope="module")
def acme(serving: psycopg.Connection, pg_database: str) -> Iterator[Login]:
    with account_login(serving, pg_database, ["acme"]) as login:
        yield login


def _accounts_seen(conn: psycopg.Connection) -> dict[str, set[str]]:
    return {
        table: {
            r[0]
            for r in conn.execute(
                sql.SQL("select distinct account_id from {}").format(
                    sql.Identifier("segments_serving", table)
                )
            )
        }
        for table in TENANT_TABLES
    }


# --- H4: tenants are separated by login ---------------------------------------------------


def test_a_login_reads_only_its_accounts_whatever_it_sets(acme: Login) -> None:
    only_acme = {table: {"acme"} for table in TENANT_TABLES}
    with acme.connect() as conn:
        assert _accounts_seen(conn) == only_acme
        for account in ("globex", "initech", "", "acme"):
            conn.execute("select set_config('app.account_id', %s, false)", (account,))
            assert _accounts_seen(conn) == only_acme
            with conn.transaction():
                conn.execute("select set_config('app.account_id', %s, true)", (account,))
                assert _accounts_seen(conn) == only_acme
        assert conn.execute(
            "select count(*) from segments_serving.broadcast_recipients "
            "where account_id in ('globex', 'initech')"
        ).fetchone() == (0,)
        # Acting as the group role instead of the login matches no grant: nothing.
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(security.reader_role())))
        assert _accounts_seen(conn) == {table: set() for table in TENANT_TABLES}
        conn.execute("reset role")
        # It sees its own grants and nobody else's.
        assert conn.execute(
            "select role_name, account_id from segments_serving.reader_accounts"
        ).fetchall() == [(acme.user, "acme")]
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "insert into segments_serving.reader_accounts values (current_user, 'globex')"
            )


def test_grant_and_revoke_change_what_a_login_reads(
    serving: psycopg.Connection, pg_database: str
) -> None:
    with reader_login(serving, pg_database) as login:
        with login.connect() as conn:
            assert _accounts_seen(conn) == {table: set() for table in TENANT_TABLES}
        assert security.grant_reader(login.user, ["acme", "globex"]).accounts == (
            "acme",
            "globex",
        )
        with login.connect() as conn:
            assert _accounts_seen(conn) == {table: {"acme", "globex"} for table in TENANT_TABLES}
            assert security.revoke_reader(login.user, ["acme"]).accounts == ("globex",)
            # Takes effect at the next statement of an open session.
            assert _accounts_seen(conn) == {table: {"globex"} for table in TENANT_TABLES}
        assert security.revoke_reader(login.user).accounts == ()
        member = serving.execute(
            "select pg_has_role(%s, %s, 'member')", (login.user, security.reader_role())
        ).fetchone()
        assert member == (False,)
        # Out of the reader role, it may not even connect.
        with pytest.raises(psycopg.OperationalError, match="CONNECT privilege"):
            login.connect().close()


def test_grant_reader_cli(serving: psycopg.Connection, pg_database: str, capsys) -> None:
    with reader_login(serving, pg_database) as login:
        argv = ["grant-reader", login.user, "--account", "initech", "--account", "acme"]
        assert cli.main(argv) == 0
        assert (
            f"{login.user} reads acme, initech (at most 10 connections)" in capsys.readouterr().out
        )
        with login.connect() as conn:
            assert _accounts_seen(conn) == {table: {"acme", "initech"} for table in TENANT_TABLES}
        assert cli.main(["revoke-reader", login.user, "--account", "initech"]) == 0
        assert f"{login.user} still reads acme" in capsys.readouterr().out
        assert cli.main(["revoke-reader", login.user, "--account", "initech"]) == 1
        assert "does not read initech (it reads acme)" in capsys.readouterr().err
        assert cli.main(["revoke-reader", login.user]) == 0
        assert "reads no account any more" in capsys.readouterr().out


def test_grant_reader_refuses_what_it_cannot_make_safe(
    serving: psycopg.Connection, pg_database: str
) -> None:
    def refused(role: str, accounts: list[str], match: str) -> None:
        with pytest.raises(SecuritySetupError, match=match):
            security.grant_reader(role, accounts)

    with reader_login(serving, pg_database) as login:
        refused(login.user, ["acme", "no_such_account"], r"unknown account no_such_account")
        assert security._mapped_accounts(serving, login.user) == ()  # nothing half-granted
        refused(login.user, [], "at least one --account")
    for bad in ('x"; drop table t; --', "Broadcast", "a-b", "", "x" * 64):
        refused(bad, ["acme"], "not a valid role name")
    refused("segments_no_such_login", ["acme"], "does not exist.*create role")
    for group in (security.reader_role(), security.multiplexer_role(), security.pipeline_role()):
        refused(group, ["acme"], "group roles")
    superuser = serving.execute("select current_user").fetchone()[0]
    refused(superuser, ["acme"], "superuser or has BYPASSRLS")
    with multiplexer_login(serving, pg_database) as login:
        refused(login.user, ["acme"], f"member of {security.multiplexer_role()}")
    with reader_login(serving, pg_database) as login:
        serving.execute(sql.SQL("alter role {} nologin").format(sql.Identifier(login.user)))
        refused(login.user, ["acme"], "cannot log in")


def test_grant_reader_as_another_login_is_refused_clearly(
    serving: psycopg.Connection, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        reader_login(serving, pg_database) as login,
        reader_login(serving, pg_database, group=security.pipeline_role()) as pipeline,
    ):
        monkeypatch.setenv("PGUSER", pipeline.user)
        monkeypatch.setenv("PGPASSWORD", pipeline.password)
        with pytest.raises(SecuritySetupError, match="Run it as the owner of the serving"):
            security.grant_reader(login.user, ["acme"])
        monkeypatch.undo()
        assert security._mapped_accounts(serving, login.user) == ()


def test_init_forgets_the_grants_of_a_dropped_login(
    serving: psycopg.Connection, pg_database: str
) -> None:
    """Otherwise a new login created later with the same name would read those accounts."""
    with reader_login(serving, pg_database) as login:
        security.grant_reader(login.user, ["globex"])
    assert security._mapped_accounts(serving, login.user) == ("globex",)
    bootstrap.init_db()
    assert security._mapped_accounts(serving, login.user) == ()


def test_init_takes_back_roles_granted_to_the_reader_roles(
    serving: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reader role of this test's own: roles are global to the server, and another module
    # (another pytest-xdist worker) relies on the shared reader role holding nothing.
    reader, pipeline = f"segments_test_reader_{secrets.token_hex(4)}", security.pipeline_role()
    monkeypatch.setenv("SEGMENTS_READER_ROLE", reader)
    bootstrap.init_db()
    grant = sql.SQL("grant {} to {}").format(sql.Identifier(pipeline), sql.Identifier(reader))
    serving.execute(grant)
    try:
        bootstrap.init_db()
        assert serving.execute(
            "select pg_has_role(%s, %s, 'member')", (reader, pipeline)
        ).fetchone() == (False,)
    finally:
        monkeypatch.undo()
        bootstrap.init_db()
        serving.execute(sql.SQL("drop owned by {}").format(sql.Identifier(reader)))
        serving.execute(sql.SQL("drop role {}").format(sql.Identifier(reader)))


def test_force_row_level_security_on_every_serving_table(serving: psycopg.Connection) -> None:
    rows = serving.execute(
        "select c.relname, c.relrowsecurity, c.relforcerowsecurity from pg_class c "
        "join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'segments_serving' and c.relkind = 'r' order by 1"
    ).fetchall()
    assert {name for name, _, _ in rows} == {*security.SERVING_TABLES, security.READER_ACCOUNTS}
    assert all(enabled and forced for _, enabled, forced in rows), rows


@pytest.mark.parametrize(
    ("query", "table"),
    [
        (
            "select contact_id from segments_serving.segment_members where segment_key = 'vip'",
            "segment_members",
        ),
        (
            "select segment_key from segments_serving.segment_members where contact_id = 'acme1'",
            "segment_members",
        ),
        (
            "select address from segments_serving.broadcast_recipients where segment_key = 'vip'",
            "broadcast_recipients",
        ),
        ("select name from segments_serving.segments where segment_key = 'vip'", "segments_"),
    ],
)
def test_the_login_policy_is_an_index_condition(acme: Login, query: str, table: str) -> None:
    """With sequential scans priced out, the plan uses the index with the policy's account
    list in its condition: the policy does not force a scan over every tenant's rows."""
    with acme.connect() as conn:
        conn.execute("set enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute("explain " + query))
        # Which of the table's indexes wins is the planner's choice (costs are close).
        used = re.findall(r"(?:Index (?:Only )?Scan using|Bitmap Index Scan on) (\w+)", plan)
        assert any(name.startswith(table) for name in used), plan
        assert re.search(r"Index Cond: \(\(account_id = ANY \(\$\d+\)\)", plan), plan
        assert "SubPlan" not in plan, plan


def _estimate(conn: psycopg.Connection, query: str) -> int:
    plan = conn.execute("explain (format json) " + query).fetchone()[0]
    return plan[0]["Plan"]["Plan Rows"]


@pytest.mark.parametrize("mode", ["login", "multiplexer"])
def test_explain_estimates_reveal_nothing_about_other_tenants(
    serving: psycopg.Connection, acme: Login, pg_database: str, mode: str
) -> None:
    """globex has 3000 members and initech 7: their estimates must not tell them apart."""
    probes = [
        ("select * from segments_serving.segment_members where account_id = %s", ACCOUNTS[1:]),
        ("select * from segments_serving.broadcast_recipients where account_id = %s", ACCOUNTS[1:]),
        (
            "select * from segments_serving.segment_members where segment_key = %s",
            ("g_only", "i_only"),
        ),
        (
            "select * from segments_serving.broadcast_recipients where address = %s",
            ("globex1@example.com", "initech1@example.com"),
        ),
    ]
    with multiplexer_login(serving, pg_database) as multiplexer:
        login = acme if mode == "login" else multiplexer
        with login.connect() as conn:
            conn.execute("set app.account_id = 'acme'")
            for template, values in probes:
                estimates = {
                    v: _estimate(conn, template.replace("%s", "'" + v + "'")) for v in values
                }
                assert len(set(estimates.values())) == 1, (template, estimates)
            assert conn.execute(
                "select count(*) from pg_stats where schemaname = 'segments_serving'"
            ).fetchone() == (0,)
    # The superuser's own statistics are gone too: nothing for the planner to leak.
    assert serving.execute(
        "select count(*) from pg_statistic where starelid = any(%s::regclass[])",
        ([f"segments_serving.{t}" for t in TENANT_TABLES],),
    ).fetchone() == (0,)


# --- M2: connection limit -----------------------------------------------------------------


def test_a_reader_login_cannot_take_the_pipelines_connections(
    serving: psycopg.Connection, pg_database: str
) -> None:
    limit = 3
    with (
        account_login(serving, pg_database, ["acme"], connection_limit=limit) as login,
        reader_login(serving, pg_database, group=security.pipeline_role()) as pipeline,
    ):
        opened = [login.connect() for _ in range(limit)]
        try:
            with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
                login.connect().close()
            with pipeline.connect() as conn:
                assert conn.execute("select 1").fetchone() == (1,)
            # The reader cannot lift its own limit.
            with pytest.raises(errors.InsufficientPrivilege):
                opened[0].execute(
                    sql.SQL("alter role {} connection limit -1").format(sql.Identifier(login.user))
                )
        finally:
            for conn in opened:
                conn.close()
    with reader_login(serving, pg_database) as login:
        assert security.grant_reader(login.user, ["acme"]).connection_limit == 10
        assert serving.execute(
            "select rolconnlimit from pg_roles where rolname = %s", (login.user,)
        ).fetchone() == (security.DEFAULT_READER_CONNECTION_LIMIT,)
        security.revoke_reader(login.user)


# --- M3: what a reader can write ----------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "select lo_from_bytea(0, '\\x00'::bytea)",
        "select lo_create(0)",
        "select lo_creat(-1)",
        "select lo_import('/etc/hostname')",
        "select lo_open(1, 131072)",
        "select lo_unlink(1)",
        "select lo_put(1, 0, '\\x00'::bytea)",
        "select pg_logical_emit_message(false, 'x', 'written to WAL')",
        "select pg_logical_emit_message(true, 'x', '\\x00'::bytea)",
        "create temporary table t (a int)",
        "create table public.t (a int)",
        "create table segments_serving.t (a int)",
        "set temp_file_limit = -1",
    ],
)
@pytest.mark.parametrize("mode", ["login", "multiplexer"])
def test_a_reader_cannot_write_to_disk(
    serving: psycopg.Connection, acme: Login, pg_database: str, mode: str, statement: str
) -> None:
    def large_objects() -> int:
        return serving.execute("select count(*) from pg_largeobject_metadata").fetchone()[0]

    before = large_objects()
    with multiplexer_login(serving, pg_database) as multiplexer:
        login = acme if mode == "login" else multiplexer
        with login.connect() as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)
    assert large_objects() == before


def test_a_reader_login_has_a_temp_file_limit_and_no_prepared_transactions(acme: Login) -> None:
    with acme.connect() as conn:
        assert conn.execute("show temp_file_limit").fetchone() == ("1GB",)
        # A prepared transaction would outlive the session (and a restart), holding locks.
        assert conn.execute("show max_prepared_transactions").fetchone() == ("0",)


# --- M7: init never blocks Broadcast's reads ------------------------------------------------


def _read_everything(conn: psycopg.Connection) -> dict[str, int]:
    return {
        table: conn.execute(
            sql.SQL("select count(*) from {}").format(sql.Identifier("segments_serving", table))
        ).fetchone()[0]
        for table in TENANT_TABLES
    }


class _Init(threading.Thread):
    """`segments db init` in a thread, keeping what it raised."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            bootstrap.init_db()
        except BaseException as exc:  # handed to the test thread
            self.error = exc


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    """Closes what a test opened (a reader's transaction) even when the test fails."""
    with ExitStack() as opened:
        yield opened


@contextmanager
def repeatable_read(login: Login) -> Iterator[psycopg.Connection]:
    """The reader of the serving contract: one REPEATABLE READ transaction, opened and read."""
    with login.connect(autocommit=False) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.execute("set statement_timeout = '5s'")
        conn.commit()
        conn.execute("select count(*) from segments_serving.segments")
        try:
            yield conn
        finally:
            conn.rollback()


def test_init_while_a_reader_holds_a_repeatable_read_transaction(
    acme: Login, monkeypatch: pytest.MonkeyPatch, stack: ExitStack
) -> None:
    monkeypatch.setenv("SEGMENTS_INIT_LOCK_TIMEOUT", "3")
    long_reader = stack.enter_context(repeatable_read(acme))
    init = _Init()
    init.start()
    # Another Broadcast session reads while init runs; a queued lock would stall it.
    with acme.connect() as other:
        other.execute("set statement_timeout = '5s'")
        while init.is_alive():
            assert _read_everything(other)["segment_members"] == SIZES["acme"] * 1
    init.join(timeout=30)
    assert not init.is_alive() and init.error is None, init.error
    assert _read_everything(long_reader)["segments"] == 1  # its own further reads
    assert _read_everything(long_reader)["segment_members"] == SIZES["acme"]


def test_init_that_needs_a_lock_gives_up_clearly_without_blocking_readers(
    serving: psycopg.Connection,
    acme: Login,
    monkeypatch: pytest.MonkeyPatch,
    stack: ExitStack,
) -> None:
    # A policy changed by hand: init must put it back, which needs an exclusive lock.
    serving.execute("alter policy reader_by_login on segments_serving.segments using (true)")
    monkeypatch.setenv("SEGMENTS_INIT_LOCK_TIMEOUT", "2")
    long_reader = stack.enter_context(repeatable_read(acme))
    init = _Init()
    init.start()
    with acme.connect() as other:
        other.execute("set statement_timeout = '5s'")
        while init.is_alive():
            other.execute("select count(*) from segments_serving.segments")
    init.join(timeout=30)
    assert isinstance(init.error, SecuritySetupError), init.error
    message = str(init.error)
    assert "ACCESS EXCLUSIVE lock on segments_serving.segments" in message
    pid = long_reader.execute("select pg_backend_pid()").fetchone()[0]
    assert f"pid {pid} ({acme.user}" in message
    assert "Nothing was changed" in message and "segments db init` again" in message
    assert _read_everything(long_reader)["segment_members"] == SIZES["acme"]
    long_reader.rollback()
    # Once the reader's transaction ended, init repairs the policy.
    bootstrap.init_db()
    with acme.connect() as conn:
        assert _accounts_seen(conn) == {table: {"acme"} for table in TENANT_TABLES}


def test_init_holds_no_table_while_it_waits_for_another(
    serving: psycopg.Connection, acme: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two tables need a policy change; a reader holds only the second. Readers of the first
    must not wait behind init while it retries the second."""
    for table in ("segments", "segment_members"):
        serving.execute(f"alter policy reader_by_login on segments_serving.{table} using (true)")
    monkeypatch.setenv("SEGMENTS_INIT_LOCK_TIMEOUT", "2")
    with acme.connect(autocommit=False) as holder:
        holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        holder.execute("select count(*) from segments_serving.segment_members")
        init = _Init()
        init.start()
        with acme.connect() as other:
            other.execute("set statement_timeout = '1s'")
            while init.is_alive():
                other.execute("select count(*) from segments_serving.segments")
        init.join(timeout=30)
        assert isinstance(init.error, SecuritySetupError), init.error
        assert "segments_serving.segment_members: pid" in str(init.error)
        holder.rollback()
    bootstrap.init_db()
    with acme.connect() as conn:
        assert _accounts_seen(conn) == {table: {"acme"} for table in TENANT_TABLES}


def test_init_lock_timeout_names_the_problem(
    serving: psycopg.Connection, acme: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any other lock init waits for is bounded too, and reported with what to do."""
    serving.execute("alter table segments_serving.segments alter column name set statistics -1")
    monkeypatch.setenv("SEGMENTS_INIT_LOCK_TIMEOUT", "1")
    with psycopg.connect(dbname=serving.info.dbname) as holder:
        holder.execute("lock table segments_serving.segments in share update exclusive mode")
        init = _Init()
        init.start()
        init.join(timeout=30)
        assert not init.is_alive(), "init waited for the lock without bound"
        assert isinstance(init.error, DatabaseError), init.error
        assert "gave up waiting for a lock after 1s" in str(init.error)
        assert "pg_blocking_pids" in str(init.error)
        with acme.connect() as conn:  # readers were never queued
            conn.execute("set statement_timeout = '5s'")
            assert _read_everything(conn)["segments"] == 1
    bootstrap.init_db()
    assert serving.execute(
        "select attstattarget from pg_attribute "
        "where attrelid = 'segments_serving.segments'::regclass and attname = 'name'"
    ).fetchone() == (0,)
