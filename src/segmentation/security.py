"""Serving and history tables, the reader and pipeline roles, their grants and row-level security.

`apply(conn)` is called by `database.init_db()` (so by `segments db init`) inside its
transaction and is safe to run again. Roles are cluster-wide while grants and policies belong
to one database, so every role is created race-safely: several databases (test sessions) may
be initialised at the same moment on one server. See docs/security.md.
"""

from __future__ import annotations

import os
import re

import psycopg
from psycopg import sql

from segmentation import config
from segmentation.errors import SecuritySetupError

DEFAULT_READER_ROLE = "broadcast_reader"
DEFAULT_PIPELINE_ROLE = "segments_pipeline"

# The session setting Broadcast sets to the account it acts for.
ACCOUNT_SETTING = "app.account_id"

# Tables whose rows belong to one account: the reader may SELECT them, filtered by RLS.
TENANT_TABLES = ("segments", "segment_members", "group_assignments", "broadcast_recipients")
# publish_log spans every account: not granted to the reader (its RLS has no reader policy).
SERVING_TABLES = (*TENANT_TABLES, "publish_log")
HISTORY_TABLES = ("membership_changes", "segment_sizes", "membership_state", "recorded_dates")

# A role name goes into DDL; allow only plain lower-case identifiers.
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _role(env_var: str, default: str) -> str:
    name = os.environ.get(env_var, default)
    if not _ROLE_NAME.match(name):
        raise SecuritySetupError(
            f"{env_var}={name!r} is not a valid role name: use lower-case letters, digits and "
            "underscores, starting with a letter or underscore (at most 63 characters)."
        )
    return name


def reader_role() -> str:
    """The role Broadcast's login user is a member of (env SEGMENTS_READER_ROLE)."""
    return _role("SEGMENTS_READER_ROLE", DEFAULT_READER_ROLE)


def pipeline_role() -> str:
    """The role the pipeline's login user is a member of (env SEGMENTS_PIPELINE_ROLE)."""
    return _role("SEGMENTS_PIPELINE_ROLE", DEFAULT_PIPELINE_ROLE)


def ensure_role(conn: psycopg.Connection, name: str) -> None:
    """Create a NOLOGIN group role unless it exists; a concurrent creator is not an error."""
    if not _ROLE_NAME.match(name):
        raise SecuritySetupError(f"{name!r} is not a valid role name.")
    # The name was checked against _ROLE_NAME, so quoting it into the DO body is safe.
    body = sql.SQL(
        "do $$ begin create role {} nologin; "
        "exception when duplicate_object or unique_violation then null; end $$"
    ).format(sql.Identifier(name))
    conn.execute(body)


def apply(conn: psycopg.Connection) -> None:
    """Create the serving/history tables, roles, grants and RLS policies (idempotent)."""
    from segmentation.database import read_sql

    conn.execute(read_sql("serving.sql"))
    reader, pipeline = reader_role(), pipeline_role()
    if reader == pipeline:
        raise SecuritySetupError(
            "SEGMENTS_READER_ROLE and SEGMENTS_PIPELINE_ROLE name the same role; the reader "
            "must not inherit the pipeline's write access."
        )
    for role in (reader, pipeline):
        ensure_role(conn, role)
    _database_privileges(conn, reader, pipeline)
    _reader_grants(conn, reader)
    _pipeline_grants(conn, pipeline)
    _row_level_security(conn, reader, pipeline)


def _database_privileges(conn: psycopg.Connection, reader: str, pipeline: str) -> None:
    dbname = conn.execute("select current_database()").fetchone()[0]
    db = sql.Identifier(dbname)
    # PUBLIC may by default connect and create temporary tables in every database, and (up to
    # PostgreSQL 14) create objects in schema public. Only named roles get in here.
    conn.execute(sql.SQL("revoke connect, temporary on database {} from public").format(db))
    conn.execute(sql.SQL("revoke all on schema public from public"))
    conn.execute(sql.SQL("grant connect on database {} to {}").format(db, sql.Identifier(reader)))
    conn.execute(
        sql.SQL("grant connect, temporary on database {} to {}").format(
            db, sql.Identifier(pipeline)
        )
    )


def _reader_grants(conn: psycopg.Connection, reader: str) -> None:
    role = sql.Identifier(reader)
    # Start from nothing so a rerun also removes anything granted by hand.
    for schema in (
        config.SCHEMA_RAW,
        config.SCHEMA_STAGING,
        config.SCHEMA_AUDIT,
        config.SCHEMA_SERVING,
        config.SCHEMA_HISTORY,
        "public",
    ):
        ident = sql.Identifier(schema)
        conn.execute(sql.SQL("revoke all on all tables in schema {} from {}").format(ident, role))
        conn.execute(sql.SQL("revoke all on schema {} from {}").format(ident, role))
    serving = sql.Identifier(config.SCHEMA_SERVING)
    conn.execute(sql.SQL("grant usage on schema {} to {}").format(serving, role))
    for table in TENANT_TABLES:
        conn.execute(
            sql.SQL("grant select on {} to {}").format(
                sql.Identifier(config.SCHEMA_SERVING, table), role
            )
        )


def _pipeline_grants(conn: psycopg.Connection, pipeline: str) -> None:
    role = sql.Identifier(pipeline)

    def grant(privileges: str, target: sql.Composable) -> None:
        conn.execute(sql.SQL("grant " + privileges + " on {} to {}").format(target, role))

    # Reads the raw contract, builds staging and audit with dbt, writes serving and history
    # rows. It never owns the serving tables, so it cannot alter, drop or truncate them.
    raw = sql.Identifier(config.SCHEMA_RAW)
    grant("usage", sql.SQL("schema {}").format(raw))
    grant("select", sql.SQL("all tables in schema {}").format(raw))
    for schema in (config.SCHEMA_STAGING, config.SCHEMA_AUDIT):
        grant("usage, create", sql.SQL("schema {}").format(sql.Identifier(schema)))
    for schema, tables, privileges in (
        (config.SCHEMA_SERVING, SERVING_TABLES, "select, insert, update, delete"),
        (config.SCHEMA_HISTORY, HISTORY_TABLES, "select, insert, update, delete"),
    ):
        grant("usage", sql.SQL("schema {}").format(sql.Identifier(schema)))
        for table in tables:
            grant(privileges, sql.Identifier(schema, table))


def _row_level_security(conn: psycopg.Connection, reader: str, pipeline: str) -> None:
    """RLS on every serving table: the reader sees the rows of its session's account only."""
    for table in SERVING_TABLES:
        target = sql.Identifier(config.SCHEMA_SERVING, table)
        conn.execute(sql.SQL("alter table {} enable row level security").format(target))
        for policy in ("reader_own_account", "pipeline_all"):
            conn.execute(
                sql.SQL("drop policy if exists {} on {}").format(sql.Identifier(policy), target)
            )
        conn.execute(
            sql.SQL(
                "create policy pipeline_all on {} for all to {} using (true) with check (true)"
            ).format(target, sql.Identifier(pipeline))
        )
        if table in TENANT_TABLES:
            # An unset setting is NULL and a reset one is '': both match no row.
            conn.execute(
                sql.SQL(
                    "create policy reader_own_account on {} for select to {} "
                    "using (account_id = nullif(current_setting({}, true), ''))"
                ).format(target, sql.Identifier(reader), sql.Literal(ACCOUNT_SETTING))
            )
