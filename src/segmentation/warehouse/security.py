"""Serving and history tables, the reader and pipeline roles, their grants and row-level security.

`apply(conn)` is called by `bootstrap.init_db()` (so by `segments db init`) inside its
transaction and is safe to run again. Roles are cluster-wide while grants and policies belong
to one database, so every role is created race-safely: several databases (test sessions) may
be initialised at the same moment on one server. See docs/security.md.

Tenants are separated by login: `segments_serving.reader_accounts` maps each reader login to
the accounts it may read, and the reader role's policies key on `current_user` through it
(`grant_reader` / `revoke_reader`, the `segments grant-reader` / `revoke-reader` commands).
The weaker `app.account_id` mode, for a service that multiplexes accounts on one login, is a
separate role (the multiplexer) so that no login gets it by accident.

`init` must not stall Broadcast: everything already in place is left alone (checked in the
catalogue first), and a table lock that row-level security changes need is taken with NOWAIT
retries, so readers never queue behind a waiting `init`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from segmentation import settings
from segmentation.errors import SecuritySetupError
from segmentation.warehouse import database

log = logging.getLogger(__name__)

DEFAULT_READER_ROLE = str(settings.default("SEGMENTS_READER_ROLE"))
DEFAULT_MULTIPLEXER_ROLE = str(settings.default("SEGMENTS_MULTIPLEXER_ROLE"))
DEFAULT_PIPELINE_ROLE = str(settings.default("SEGMENTS_PIPELINE_ROLE"))

# The session setting a multiplexing Broadcast service sets to the account it acts for.
ACCOUNT_SETTING = "app.account_id"

# Tables whose rows belong to one account: the readers may SELECT them, filtered by RLS.
TENANT_TABLES = ("segments", "segment_members", "group_assignments", "broadcast_recipients")
# publish_log spans every account: not granted to the readers (its RLS has no reader policy).
SERVING_TABLES = (*TENANT_TABLES, "publish_log")
HISTORY_TABLES = (
    "membership_changes",
    "segment_sizes",
    "membership_state",
    "recorded_dates",
    "published_definitions",
)
# Written by steps.clusters (warehouse/sql/clusters.sql), not by dbt.
CLUSTER_TABLES = ("contact_clusters", "cluster_profiles", "cluster_runs")
# Login role -> accounts it may read. Not a serving table: the pipeline never touches it.
READER_ACCOUNTS = "reader_accounts"

DEFAULT_READER_CONNECTION_LIMIT = int(str(settings.default("SEGMENTS_READER_CONNECTION_LIMIT")))
DEFAULT_READER_TEMP_FILE_LIMIT = str(settings.default("SEGMENTS_READER_TEMP_FILE_LIMIT"))
# Connections kept free for the pipeline when the readers' limits are added up.
DEFAULT_PIPELINE_CONNECTION_RESERVE = int(
    str(settings.default("SEGMENTS_PIPELINE_CONNECTION_RESERVE"))
)
DEFAULT_INIT_LOCK_TIMEOUT_S = float(str(settings.default("SEGMENTS_INIT_LOCK_TIMEOUT")))

# Functions PUBLIC may execute by default that write to disk for any role: large objects
# (persistent rows in pg_largeobject) and logical messages (WAL). Nothing here uses them.
DISK_WRITING_FUNCTIONS = (
    "pg_catalog.lo_creat(integer)",
    "pg_catalog.lo_create(oid)",
    "pg_catalog.lo_from_bytea(oid, bytea)",
    "pg_catalog.lo_import(text)",
    "pg_catalog.lo_import(text, oid)",
    "pg_catalog.lo_put(oid, bigint, bytea)",
    "pg_catalog.lo_open(oid, integer)",
    "pg_catalog.lowrite(integer, bytea)",
    "pg_catalog.lo_truncate(integer, integer)",
    "pg_catalog.lo_truncate64(integer, bigint)",
    "pg_catalog.lo_unlink(oid)",
    "pg_catalog.pg_logical_emit_message(boolean, text, text)",
    "pg_catalog.pg_logical_emit_message(boolean, text, bytea)",
)

# A role name goes into DDL; allow only plain lower-case identifiers.
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


def _role(env_var: str, default: str) -> str:
    name = settings.env(env_var) or default
    if not _ROLE_NAME.match(name):
        raise SecuritySetupError(
            f"{env_var}={name!r} is not a valid role name: use lower-case letters, digits and "
            "underscores, starting with a letter or underscore (at most 63 characters)."
        )
    return name


def reader_role() -> str:
    """The group role of Broadcast's logins, one login per tenant (env SEGMENTS_READER_ROLE)."""
    return _role("SEGMENTS_READER_ROLE", DEFAULT_READER_ROLE)


def multiplexer_role() -> str:
    """The group role of a login that acts for any account it names in `app.account_id`
    (env SEGMENTS_MULTIPLEXER_ROLE). The weaker mode: see docs/security.md."""
    return _role("SEGMENTS_MULTIPLEXER_ROLE", DEFAULT_MULTIPLEXER_ROLE)


def pipeline_role() -> str:
    """The role the pipeline's login user is a member of (env SEGMENTS_PIPELINE_ROLE)."""
    return _role("SEGMENTS_PIPELINE_ROLE", DEFAULT_PIPELINE_ROLE)


def _check_role_name(name: str) -> None:
    if not _ROLE_NAME.match(name):
        raise SecuritySetupError(
            f"{name!r} is not a valid role name: use lower-case letters, digits and "
            "underscores, starting with a letter or underscore (at most 63 characters)."
        )


def ensure_role(conn: psycopg.Connection, name: str) -> None:
    """Create a NOLOGIN group role unless it exists; a concurrent creator is not an error."""
    _check_role_name(name)
    if conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone():
        return
    # The name was checked against _ROLE_NAME, so quoting it into the DO body is safe.
    body = sql.SQL(
        "do $$ begin create role {} nologin; "
        "exception when duplicate_object or unique_violation then null; end $$"
    ).format(sql.Identifier(name))
    conn.execute(body)


def _env_seconds(name: str, default: float) -> float:
    text = settings.env(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError as exc:
        raise SecuritySetupError(f"{name}={text!r} is not a number of seconds.") from exc
    if value < 0:
        raise SecuritySetupError(f"{name}={text!r} must not be negative.")
    return value


def init_lock_timeout() -> float:
    """Seconds `segments db init` waits for a lock before giving up (SEGMENTS_INIT_LOCK_TIMEOUT)."""
    return _env_seconds("SEGMENTS_INIT_LOCK_TIMEOUT", DEFAULT_INIT_LOCK_TIMEOUT_S)


def apply(conn: psycopg.Connection) -> list[str]:
    """Create the serving/history tables, roles, grants and RLS policies (idempotent).

    Returns warnings about protections that could not be applied with the current login's
    privileges (the caller shows them); everything else either holds or raises.
    """
    database.read_sql_if_missing(conn, "serving.sql")
    # An install from before serving contract 2 gains the per-account columns.
    conn.execute(database.read_sql("serving_upgrade.sql"))
    reader, multiplexer, pipeline = reader_role(), multiplexer_role(), pipeline_role()
    names = {"SEGMENTS_READER_ROLE": reader, "SEGMENTS_MULTIPLEXER_ROLE": multiplexer}
    names["SEGMENTS_PIPELINE_ROLE"] = pipeline
    if len(set(names.values())) != len(names):
        raise SecuritySetupError(
            f"{', '.join(f'{k}={v}' for k, v in names.items())}: two of these name the same "
            "role; a reader must not inherit the pipeline's write access, nor the per-login "
            "reader the multiplexer's app.account_id policy."
        )
    for role in (reader, multiplexer, pipeline):
        ensure_role(conn, role)
    _database_privileges(conn, (reader, multiplexer), pipeline)
    _no_inherited_privileges(conn, (reader, multiplexer))
    _forget_dropped_logins(conn)
    _reader_grants(conn, reader, with_accounts_map=True)
    _reader_grants(conn, multiplexer, with_accounts_map=False)
    _pipeline_grants(conn, pipeline)
    _hide_statistics(conn)
    _row_level_security(conn, reader, multiplexer, pipeline)
    return _revoke_disk_writers(conn, (reader, multiplexer))


# --- privileges, skipped when already in place -------------------------------------------


def _database_privileges(conn: psycopg.Connection, readers: Sequence[str], pipeline: str) -> None:
    dbname = conn.execute("select current_database()").fetchone()[0]
    db = sql.Identifier(dbname)
    held = {
        (grantee, priv)
        for grantee, priv in conn.execute(
            "select coalesce(r.rolname, 'public'), a.privilege_type "
            "from pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
            "left join pg_roles r on r.oid = a.grantee where d.datname = current_database()"
        )
    }
    # PUBLIC may by default connect and create temporary tables in every database, and (up to
    # PostgreSQL 14) create objects in schema public. Only named roles get in here.
    if held & {("public", "CONNECT"), ("public", "TEMPORARY")}:
        conn.execute(sql.SQL("revoke connect, temporary on database {} from public").format(db))
    public_schema = conn.execute(
        "select count(*) from pg_namespace n, aclexplode(n.nspacl) a "
        "where n.nspname = 'public' and a.grantee = 0"
    ).fetchone()[0]
    if public_schema:
        conn.execute(sql.SQL("revoke all on schema public from public"))
    for reader in readers:
        if (reader, "TEMPORARY") in held or (reader, "CREATE") in held:
            conn.execute(
                sql.SQL("revoke create, temporary on database {} from {}").format(
                    db, sql.Identifier(reader)
                )
            )
        if (reader, "CONNECT") not in held:
            conn.execute(
                sql.SQL("grant connect on database {} to {}").format(db, sql.Identifier(reader))
            )
    if not {(pipeline, "CONNECT"), (pipeline, "TEMPORARY")} <= held:
        conn.execute(
            sql.SQL("grant connect, temporary on database {} to {}").format(
                db, sql.Identifier(pipeline)
            )
        )


def _no_inherited_privileges(conn: psycopg.Connection, readers: Sequence[str]) -> None:
    """A reader group role is a member of no other role (it would inherit its privileges)."""
    for reader in readers:
        for (group,) in conn.execute(
            "select g.rolname from pg_auth_members m join pg_roles g on g.oid = m.roleid "
            "where m.member = %s::regrole",
            (reader,),
        ).fetchall():
            conn.execute(
                sql.SQL("revoke {} from {}").format(sql.Identifier(group), sql.Identifier(reader))
            )


def _forget_dropped_logins(conn: psycopg.Connection) -> None:
    """Grants of a login that was dropped would return to a new login of the same name."""
    table = sql.Identifier(settings.SCHEMA_SERVING, READER_ACCOUNTS)
    orphans = conn.execute(
        sql.SQL(
            "select distinct role_name from {} "
            "where role_name not in (select rolname from pg_roles)"
        ).format(table)
    ).fetchall()
    if orphans:
        names = [r[0] for r in orphans]
        conn.execute(sql.SQL("delete from {} where role_name = any(%s)").format(table), (names,))
        log.warning("forgot the reader grants of dropped login(s) %s", ", ".join(names))


def _held_table_privileges(conn: psycopg.Connection, role: str) -> set[tuple[str, str, str]]:
    """(schema, table, privilege) granted directly to `role`, outside the system schemas."""
    rows = conn.execute(
        "select n.nspname, c.relname, a.privilege_type "
        "from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a "
        "where a.grantee = %s::regrole and n.nspname <> all(%s)",
        (role, list(_SYSTEM_SCHEMAS)),
    ).fetchall()
    return {(s, t, p) for s, t, p in rows}


def _tables_with_column_grants(conn: psycopg.Connection, role: str) -> set[tuple[str, str]]:
    rows = conn.execute(
        "select distinct n.nspname, c.relname from pg_attribute att "
        "join pg_class c on c.oid = att.attrelid join pg_namespace n on n.oid = c.relnamespace, "
        "aclexplode(att.attacl) a where a.grantee = %s::regrole and n.nspname <> all(%s)",
        (role, list(_SYSTEM_SCHEMAS)),
    ).fetchall()
    return {(s, t) for s, t in rows}


def _held_schema_privileges(conn: psycopg.Connection, role: str) -> set[tuple[str, str]]:
    rows = conn.execute(
        "select n.nspname, a.privilege_type from pg_namespace n, aclexplode(n.nspacl) a "
        "where a.grantee = %s::regrole and n.nspname <> all(%s)",
        (role, list(_SYSTEM_SCHEMAS)),
    ).fetchall()
    return {(s, p) for s, p in rows}


def _reader_grants(conn: psycopg.Connection, reader: str, *, with_accounts_map: bool) -> None:
    """Exactly USAGE on the serving schema and SELECT on the tenant tables (and, for the
    per-login reader, on the accounts map its policies read); anything else is revoked."""
    role = sql.Identifier(reader)
    serving = settings.SCHEMA_SERVING
    tables = TENANT_TABLES + ((READER_ACCOUNTS,) if with_accounts_map else ())
    want_tables = {(serving, t, "SELECT") for t in tables}
    held = _held_table_privileges(conn, reader)
    stray = {(s, t) for s, t, _ in held - want_tables} | _tables_with_column_grants(conn, reader)
    for schema, table in sorted(stray):
        # REVOKE ALL on a table also removes its column privileges.
        conn.execute(
            sql.SQL("revoke all on table {} from {}").format(sql.Identifier(schema, table), role)
        )
    held = _held_table_privileges(conn, reader)
    for schema, table, _ in sorted(want_tables - held):
        conn.execute(
            sql.SQL("grant select on {} to {}").format(sql.Identifier(schema, table), role)
        )
    want_schemas = {(serving, "USAGE")}
    held_schemas = _held_schema_privileges(conn, reader)
    for schema in sorted({s for s, _ in held_schemas - want_schemas}):
        conn.execute(
            sql.SQL("revoke all on schema {} from {}").format(sql.Identifier(schema), role)
        )
    if (serving, "USAGE") not in _held_schema_privileges(conn, reader):
        conn.execute(
            sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(serving), role)
        )


def _pipeline_grants(conn: psycopg.Connection, pipeline: str) -> None:
    """Grants what is missing; the pipeline never owns the serving tables, so it cannot alter,
    drop or truncate them."""
    role = sql.Identifier(pipeline)
    raw = settings.SCHEMA_RAW
    want_schemas = {(raw, "USAGE")}
    for schema in (settings.SCHEMA_STAGING, settings.SCHEMA_AUDIT, settings.SCHEMA_MARTS):
        want_schemas |= {(schema, "USAGE"), (schema, "CREATE")}
    want_schemas |= {(settings.SCHEMA_SERVING, "USAGE"), (settings.SCHEMA_HISTORY, "USAGE")}
    held_schemas = _held_schema_privileges(conn, pipeline)
    for schema, privilege in sorted(want_schemas - held_schemas):
        conn.execute(
            sql.SQL("grant " + privilege.lower() + " on schema {} to {}").format(
                sql.Identifier(schema), role
            )
        )
    raw_tables = [
        r[0]
        for r in conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm', 'f')",
            (raw,),
        )
    ]
    want_tables = {(raw, t, "SELECT") for t in raw_tables}
    for schema, tables in (
        (settings.SCHEMA_SERVING, SERVING_TABLES),
        (settings.SCHEMA_HISTORY, HISTORY_TABLES),
        (settings.SCHEMA_MARTS, CLUSTER_TABLES),
    ):
        for table in tables:
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                want_tables.add((schema, table, privilege))
    missing = want_tables - _held_table_privileges(conn, pipeline)
    for schema, table in sorted({(s, t) for s, t, _ in missing}):
        privileges = sorted(p for s, t, p in missing if (s, t) == (schema, table))
        conn.execute(
            sql.SQL("grant " + ", ".join(p.lower() for p in privileges) + " on {} to {}").format(
                sql.Identifier(schema, table), role
            )
        )


# --- planner statistics: the EXPLAIN side channel -----------------------------------------


def _hide_statistics(conn: psycopg.Connection) -> None:
    """No planner statistics on the columns of the tables that hold several tenants' rows.

    Equality and range operators on text are leakproof, so the planner applies their column
    statistics even under row-level security, and `EXPLAIN ... where account_id = 'other'`
    would print that tenant's row count (or confirm another tenant's address from the
    most-common values). Without statistics every estimate is a default fraction of the
    table's size, which pg_class shows every role anyway. SET STATISTICS takes a
    SHARE UPDATE EXCLUSIVE lock: readers and the publish are not blocked by it.
    """
    serving = settings.SCHEMA_SERVING
    for table in (*TENANT_TABLES, READER_ACCOUNTS):
        target = sql.Identifier(serving, table)
        columns = [
            r[0]
            for r in conn.execute(
                "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 "
                "and not attisdropped and attstattarget is distinct from 0 order by attnum",
                (f"{serving}.{table}",),
            )
        ]
        if columns:
            conn.execute(
                sql.SQL("alter table {} {}").format(
                    target,
                    sql.SQL(", ").join(
                        sql.SQL("alter column {} set statistics 0").format(sql.Identifier(c))
                        for c in columns
                    ),
                )
            )
    # Statistics gathered before (by an older release) stay until removed; only a superuser
    # may remove them (docs/security.md says how otherwise).
    superuser = conn.execute("select rolsuper from pg_roles where rolname = current_user")
    if superuser.fetchone()[0]:
        conn.execute(
            "delete from pg_statistic where starelid = any(%s::regclass[])",
            ([f"{serving}.{t}" for t in (*TENANT_TABLES, READER_ACCOUNTS)],),
        )


# --- row-level security -------------------------------------------------------------------


@dataclass(frozen=True)
class _Policy:
    name: str
    command: str  # select | all
    role: str
    using: str
    check: str | None = None

    def create(self, table: sql.Composable) -> sql.Composable:
        # using/check are constants of this module, never input.
        check = f" with check ({self.check})" if self.check else ""
        return sql.SQL(
            "create policy {} on {} for "
            + self.command
            + " to {} using ("
            + self.using
            + ")"
            + check
        ).format(sql.Identifier(self.name), table, sql.Identifier(self.role))

    def marker(self, conn: psycopg.Connection) -> str:
        """Identifies this definition; the catalogue part changes if anyone alters it by hand."""
        source = self.create(sql.Identifier("t")).as_string(conn)
        return "segments-policy " + hashlib.sha256(source.encode()).hexdigest()[:16]


# Fingerprint of a policy as the catalogue holds it (roles by oid: a recreated role differs).
_POLICY_STATE = """
    select p.polname,
           md5(p.polcmd::text || p.polpermissive::text || p.polroles::text
               || coalesce(pg_get_expr(p.polqual, p.polrelid), '')
               || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')),
           obj_description(p.oid, 'pg_policy')
    from pg_policy p where p.polrelid = %s::regclass
"""


def _desired_policies(
    table: str, owner: str, reader: str, multiplexer: str, pipeline: str
) -> list[_Policy]:
    everything = [_Policy("owner_all", "all", owner, "true", "true")]
    if table == READER_ACCOUNTS:
        # A login sees its own grants (the policies below read them), nobody else's.
        return [*everything, _Policy("reader_own_grants", "select", reader, _OWN_GRANTS)]
    everything.append(_Policy("pipeline_all", "all", pipeline, "true", "true"))
    if table not in TENANT_TABLES:
        return everything
    return [
        *everything,
        _Policy("reader_by_login", "select", reader, _BY_LOGIN),
        _Policy("multiplexer_by_setting", "select", multiplexer, _BY_SETTING),
    ]


_OWN_GRANTS = "role_name = current_user::text"
# ARRAY(subquery) is an uncorrelated InitPlan: evaluated once per statement, and usable as an
# index condition on the leading account_id of every serving index (an IN (subquery) here
# would be a per-row hashed SubPlan filter, and a seq scan over every tenant's rows).
_BY_LOGIN = (
    f"account_id = any (array(select m.account_id from {settings.SCHEMA_SERVING}.{READER_ACCOUNTS} "
    "as m where m.role_name = current_user::text))"
)
# An unset setting is NULL and a reset one is '': both match no row.
_BY_SETTING = f"account_id = nullif(current_setting('{ACCOUNT_SETTING}', true), '')"


def _row_level_security(
    conn: psycopg.Connection, reader: str, multiplexer: str, pipeline: str
) -> None:
    """FORCE RLS on every serving table, with exactly the policies of `_desired_policies`.

    A policy already in place (same definition, unchanged in the catalogue) is kept: creating
    or dropping one needs an ACCESS EXCLUSIVE lock, which would queue every reader behind it.
    The tables that need a change are all locked at once, before any is changed, so init
    never holds one table while it waits for another.
    """
    serving = settings.SCHEMA_SERVING
    changes = []
    for table in (*SERVING_TABLES, READER_ACCOUNTS):
        qualified = f"{serving}.{table}"
        enabled, forced, owner = conn.execute(
            "select c.relrowsecurity, c.relforcerowsecurity, r.rolname from pg_class c "
            "join pg_roles r on r.oid = c.relowner where c.oid = %s::regclass",
            (qualified,),
        ).fetchone()
        desired = {
            p.name: p for p in _desired_policies(table, owner, reader, multiplexer, pipeline)
        }
        existing = {
            name: (state, note) for name, state, note in conn.execute(_POLICY_STATE, (qualified,))
        }
        stale = [n for n in existing if n not in desired]
        todo = [
            p
            for p in desired.values()
            if p.name not in existing
            or existing[p.name][1] != f"{p.marker(conn)} {existing[p.name][0]}"
        ]
        if not (enabled and forced and not stale and not todo):
            changes.append((table, enabled, forced, desired, existing, stale, todo))
    if not changes:
        return
    lock_for_ddl(conn, [f"{serving}.{c[0]}" for c in changes], "to set up their row-level security")
    for table, enabled, forced, desired, existing, stale, todo in changes:
        qualified, target = f"{serving}.{table}", sql.Identifier(serving, table)
        if not enabled:
            conn.execute(sql.SQL("alter table {} enable row level security").format(target))
        if not forced:
            # The owner is subject to the policies too (it has its own owner_all policy).
            conn.execute(sql.SQL("alter table {} force row level security").format(target))
        for name in stale:
            conn.execute(sql.SQL("drop policy {} on {}").format(sql.Identifier(name), target))
        for policy in todo:
            if policy.name in existing:
                conn.execute(
                    sql.SQL("drop policy {} on {}").format(sql.Identifier(policy.name), target)
                )
            conn.execute(policy.create(target))
        created = {p.name for p in todo}
        for name, state, _ in conn.execute(_POLICY_STATE, (qualified,)).fetchall():
            if name in created:
                conn.execute(
                    sql.SQL("comment on policy {} on {} is {}").format(
                        sql.Identifier(name),
                        target,
                        sql.Literal(f"{desired[name].marker(conn)} {state}"),
                    )
                )


def lock_for_ddl(conn: psycopg.Connection, tables: Sequence[str], why: str) -> None:
    """ACCESS EXCLUSIVE locks on `tables` for this transaction, without ever queueing.

    A waiting ACCESS EXCLUSIVE request makes every later reader of the table wait behind it,
    so a reader's long REPEATABLE READ transaction would stall all of Broadcast. NOWAIT
    attempts on all the tables at once, retried until init_lock_timeout(), keep the readers
    unaffected.
    """
    deadline = time.monotonic() + init_lock_timeout()
    statement = sql.SQL("lock table {} in access exclusive mode nowait").format(
        sql.SQL(", ").join(sql.Identifier(*t.split(".")) for t in tables)
    )
    while True:
        try:
            with conn.transaction():
                conn.execute(statement)
            return
        except pg_errors.LockNotAvailable:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
    holders = conn.execute(
        "select distinct l.relation::regclass::text, a.pid, a.usename, a.state, a.xact_start "
        "from pg_locks l join pg_stat_activity a on a.pid = l.pid "
        "where l.relation = any(%s::regclass[]) and l.granted and l.pid <> pg_backend_pid() "
        "order by 1, a.xact_start",
        (list(tables),),
    ).fetchall()
    who = "; ".join(
        f"{table}: pid {pid} ({user}, {state}, transaction since {start})"
        for table, pid, user, state, start in holders
    )
    raise SecuritySetupError(
        f"segments db init could not take the ACCESS EXCLUSIVE lock on {', '.join(tables)} "
        f"{why} within {init_lock_timeout():g}s (SEGMENTS_INIT_LOCK_TIMEOUT): other sessions "
        f"hold locks on them{' (' + who + ')' if who else ''}. Nothing was changed and readers "
        "were not blocked. Run `segments db init` again when those transactions have ended "
        "(readers' REPEATABLE READ transactions should last seconds), or end them with "
        "pg_terminate_backend(pid)."
    )


# --- what a reader could write to disk ----------------------------------------------------


def _revoke_disk_writers(conn: psycopg.Connection, readers: Iterable[str]) -> list[str]:
    """Revoke EXECUTE from PUBLIC on the functions that let any role write to disk.

    Only the functions' owner (a superuser) can; the result is verified as each reader role,
    and a warning is returned for anything a reader can still execute.
    """
    warnings = []
    for function in DISK_WRITING_FUNCTIONS:
        public = conn.execute(
            "select has_function_privilege('public', %s, 'execute')", (function,)
        ).fetchone()[0]
        if public:
            with conn.transaction():
                conn.execute(sql.SQL("revoke execute on function " + function + " from public"))
        for reader in readers:
            if conn.execute(
                "select has_function_privilege(%s, %s, 'execute')", (reader, function)
            ).fetchone()[0]:
                warnings.append(
                    f"role {reader} can still execute {function} (it writes to disk): run "
                    f"`revoke execute on function {function} from public` as a superuser in "
                    "this database, or monitor pg_largeobject_metadata and WAL volume."
                )
    for warning in warnings:
        log.warning(warning)
    return warnings


# --- reader logins: which accounts each may read -----------------------------------------


@dataclass(frozen=True)
class ReaderGrant:
    """A reader login and what it may read after grant_reader / revoke_reader."""

    role: str
    accounts: tuple[str, ...]
    connection_limit: int | None
    warnings: list[str] = field(default_factory=list)


def reader_connection_limit() -> int:
    text = settings.env("SEGMENTS_READER_CONNECTION_LIMIT")
    if not text:
        return DEFAULT_READER_CONNECTION_LIMIT
    if not text.isdigit() or int(text) < 1:
        raise SecuritySetupError(
            f"SEGMENTS_READER_CONNECTION_LIMIT={text!r} must be a whole number of at least 1."
        )
    return int(text)


@contextmanager
def _as_owner(command: str) -> Iterator[None]:
    try:
        yield
    except pg_errors.InsufficientPrivilege as exc:
        raise SecuritySetupError(
            f"{command} was refused by PostgreSQL ({exc.diag.message_primary}). Run it as the "
            "owner of the serving tables (the login that ran `segments db init`), which may "
            "grant role memberships (CREATEROLE); nothing was changed."
        ) from exc


def _login_role(conn: psycopg.Connection, role: str) -> None:
    """Refuse anything but an ordinary login role that may hold a reader's rows."""
    _check_role_name(role)
    group_roles = {reader_role(), multiplexer_role(), pipeline_role()}
    if role in group_roles:
        raise SecuritySetupError(
            f"{role} is one of the pipeline's group roles; grant accounts to a login role "
            f"that is a member of {reader_role()} (for example broadcast_acme)."
        )
    row = conn.execute(
        "select rolcanlogin, rolsuper or rolbypassrls from pg_roles where rolname = %s", (role,)
    ).fetchone()
    if row is None:
        raise SecuritySetupError(
            f"role {role} does not exist. Create the login first, with a password from your "
            f"secret store:  create role {role} login password '...';  then run "
            "`segments grant-reader` again."
        )
    can_login, bypasses = row
    if not can_login:
        raise SecuritySetupError(
            f"role {role} cannot log in: the policies match current_user, which is the login "
            "role, so granting accounts to a group role would give its members nothing. "
            "Grant them to each login."
        )
    if bypasses:
        raise SecuritySetupError(
            f"role {role} is a superuser or has BYPASSRLS: row-level security and connection "
            "limits do not apply to it, so it cannot be a tenant reader."
        )
    broader = conn.execute(
        "select g.rolname from pg_roles g where g.rolname = any(%s) "
        "and pg_has_role(%s, g.oid, 'member')",
        ([multiplexer_role(), pipeline_role()], role),
    ).fetchall()
    if broader:
        raise SecuritySetupError(
            f"role {role} is a member of {broader[0][0]}, which reads every account; a tenant "
            f"reader must not be. Revoke that membership first (revoke {broader[0][0]} from "
            f"{role})."
        )


def _mapped_accounts(conn: psycopg.Connection, role: str) -> tuple[str, ...]:
    rows = conn.execute(
        sql.SQL("select account_id from {} where role_name = %s order by account_id").format(
            sql.Identifier(settings.SCHEMA_SERVING, READER_ACCOUNTS)
        ),
        (role,),
    ).fetchall()
    return tuple(r[0] for r in rows)


def _require_init(conn: psycopg.Connection) -> None:
    exists = conn.execute(
        "select to_regclass(%s) is not null", (f"{settings.SCHEMA_SERVING}.{READER_ACCOUNTS}",)
    ).fetchone()[0]
    if not exists:
        raise SecuritySetupError(
            f"{settings.SCHEMA_SERVING}.{READER_ACCOUNTS} does not exist: run `segments db init` "
            "(as the database owner) first."
        )


def grant_reader(
    role: str,
    accounts: Sequence[str],
    *,
    connection_limit: int | None = None,
    dbname: str | None = None,
) -> ReaderGrant:
    """Let the login `role` read `accounts` (in addition to what it read before).

    Makes it a member of the reader role, sets its connection limit (default
    SEGMENTS_READER_CONNECTION_LIMIT) and its temp_file_limit, and records the accounts.
    """
    if not accounts:
        raise SecuritySetupError("grant-reader needs at least one --account.")
    limit = reader_connection_limit() if connection_limit is None else connection_limit
    if limit < 1:
        raise SecuritySetupError(f"connection limit {limit} must be at least 1.")
    warnings: list[str] = []
    with _as_owner("grant-reader"), database.transaction(dbname) as conn:
        _require_init(conn)
        _login_role(conn, role)
        wanted = sorted(set(accounts))
        known = {
            r[0]
            for r in conn.execute(
                sql.SQL("select account_id from {} where account_id = any(%s)").format(
                    sql.Identifier(settings.SCHEMA_RAW, "accounts")
                ),
                (wanted,),
            )
        }
        unknown = [a for a in wanted if a not in known]
        if unknown:
            every = [
                r[0]
                for r in conn.execute(
                    sql.SQL("select account_id from {} order by 1 limit 20").format(
                        sql.Identifier(settings.SCHEMA_RAW, "accounts")
                    )
                )
            ]
            raise SecuritySetupError(
                f"unknown account{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: not in "
                f"{settings.SCHEMA_RAW}.accounts (known: {', '.join(every) or 'none'}). Nothing "
                "was granted."
            )
        ident, group = sql.Identifier(role), sql.Identifier(reader_role())
        member = conn.execute(
            "select pg_has_role(%s, %s, 'member')", (role, reader_role())
        ).fetchone()[0]
        if not member:
            conn.execute(sql.SQL("grant {} to {}").format(group, ident))
        conn.execute(sql.SQL("alter role {} connection limit {}").format(ident, sql.Literal(limit)))
        temp_limit = settings.env("SEGMENTS_READER_TEMP_FILE_LIMIT")
        try:
            with conn.transaction():
                # A superuser-only setting: the reader cannot raise it in its own session.
                conn.execute(
                    sql.SQL("alter role {} set temp_file_limit = {}").format(
                        ident, sql.Literal(temp_limit)
                    )
                )
        except (pg_errors.InsufficientPrivilege, pg_errors.InvalidParameterValue) as exc:
            warnings.append(
                f"could not set temp_file_limit={temp_limit} on {role} ({exc}); a reader's "
                "large sorts may fill the disk with temporary files. Set it as a superuser."
            )
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL(
                    "insert into {} (role_name, account_id) values (%s, %s) on conflict do nothing"
                ).format(sql.Identifier(settings.SCHEMA_SERVING, READER_ACCOUNTS)),
                [(role, a) for a in wanted],
            )
        warnings += _connection_budget(conn)
        granted = _mapped_accounts(conn, role)
    for warning in warnings:
        log.warning(warning)
    return ReaderGrant(role, granted, limit, warnings)


def _connection_budget(conn: psycopg.Connection) -> list[str]:
    """Warn when the reader logins together could take the pipeline's connections."""
    reserve = settings.env("SEGMENTS_PIPELINE_CONNECTION_RESERVE")
    reserve_n = (
        int(reserve) if reserve and reserve.isdigit() else DEFAULT_PIPELINE_CONNECTION_RESERVE
    )
    available, readers = conn.execute(
        sql.SQL(
            "select current_setting('max_connections')::int "
            "- current_setting('superuser_reserved_connections')::int, "
            "coalesce(sum(case when r.rolconnlimit < 0 then 1000000 else r.rolconnlimit end), 0) "
            "from pg_roles r where r.rolname in (select distinct role_name from {})"
        ).format(sql.Identifier(settings.SCHEMA_SERVING, READER_ACCOUNTS))
    ).fetchone()
    if readers + reserve_n > available:
        return [
            f"the reader logins may open {readers} connections together; with "
            f"{reserve_n} reserved for the pipeline (SEGMENTS_PIPELINE_CONNECTION_RESERVE) that "
            f"exceeds the {available} the server allows (max_connections minus "
            "superuser_reserved_connections). Lower their limits (--connection-limit) or raise "
            "max_connections."
        ]
    return []


def revoke_reader(
    role: str, accounts: Sequence[str] | None = None, *, dbname: str | None = None
) -> ReaderGrant:
    """Remove `accounts` (default: all) from what `role` may read. A login left with no
    account also leaves the reader role. Takes effect for every statement that starts after
    the commit (an open REPEATABLE READ transaction keeps its snapshot of the grants)."""
    _check_role_name(role)
    with _as_owner("revoke-reader"), database.transaction(dbname) as conn:
        _require_init(conn)
        held = _mapped_accounts(conn, role)
        if not held:
            raise SecuritySetupError(f"role {role} reads no account: nothing to revoke.")
        targets = list(held) if not accounts else sorted(set(accounts))
        missing = [a for a in targets if a not in held]
        if missing:
            raise SecuritySetupError(
                f"role {role} does not read {', '.join(missing)} (it reads {', '.join(held)}). "
                "Nothing was revoked."
            )
        conn.execute(
            sql.SQL("delete from {} where role_name = %s and account_id = any(%s)").format(
                sql.Identifier(settings.SCHEMA_SERVING, READER_ACCOUNTS)
            ),
            (role, targets),
        )
        remaining = _mapped_accounts(conn, role)
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
        if not remaining and exists:
            member = conn.execute(
                "select exists (select 1 from pg_auth_members m "
                "join pg_roles g on g.oid = m.roleid join pg_roles u on u.oid = m.member "
                "where g.rolname = %s and u.rolname = %s)",
                (reader_role(), role),
            ).fetchone()[0]
            if member:
                conn.execute(
                    sql.SQL("revoke {} from {}").format(
                        sql.Identifier(reader_role()), sql.Identifier(role)
                    )
                )
    return ReaderGrant(role, remaining, None)
