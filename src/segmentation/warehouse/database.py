"""Connections (libpq environment variables) and database initialisation."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from segmentation import settings
from segmentation.errors import DatabaseError

# The libpq variables a connection reads (PGPASSWORD is reported as set or unset only).
CONNECTION_VARIABLES = ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD")


def connection_variables() -> str:
    """What the connection read, for an error message: `PGHOST=db1, PGPORT=5432, ...`."""
    shown = []
    for name in CONNECTION_VARIABLES:
        value = os.environ.get(name)
        if name == "PGPASSWORD":
            shown.append(f"{name} {'set' if value else 'unset'}")
        else:
            shown.append(f"{name}={value}" if value else f"{name} unset")
    return ", ".join(shown)


def connect(dbname: str | None = None, autocommit: bool = False) -> psycopg.Connection:
    """Connect with the libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE)."""
    kwargs = {"dbname": dbname} if dbname else {}
    try:
        return psycopg.connect(autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        # One line (the CLI prints it as is): libpq's reason is several lines with hints.
        reason = " ".join(str(exc).split("\n", 1)[0].split()) or type(exc).__name__
        raise DatabaseError(
            f"cannot reach PostgreSQL ({connection_variables()}): {reason}. Start the local "
            'server with `eval "$(segments db up)"`, or set PGHOST, PGPORT, PGUSER, PGPASSWORD '
            "and PGDATABASE."
        ) from exc


@contextmanager
def transaction(dbname: str | None = None) -> Iterator[psycopg.Connection]:
    with connect(dbname) as conn, conn.transaction():
        yield conn


def read_sql(name: str) -> str:
    return resources.files("segmentation.warehouse.sql").joinpath(name).read_text()


def schemas() -> dict[str, sql.Identifier]:
    """The schema placeholders of the SQL files: {raw}, {staging}, {audit}, {serving},
    {history}, {control} and {marts}, from segmentation.settings."""
    return {
        "raw": sql.Identifier(settings.SCHEMA_RAW),
        "staging": sql.Identifier(settings.SCHEMA_STAGING),
        "audit": sql.Identifier(settings.SCHEMA_AUDIT),
        "serving": sql.Identifier(settings.SCHEMA_SERVING),
        "history": sql.Identifier(settings.SCHEMA_HISTORY),
        "control": sql.Identifier(settings.SCHEMA_CONTROL),
        "marts": sql.Identifier(settings.SCHEMA_MARTS),
    }


# `-- name: <query>` starts a named query of a SQL file; it runs to the next one.
_NAMED_QUERY = re.compile(r"^-- name: (\w+)[ \t]*$", re.MULTILINE)
_COMMENT_LINE = re.compile(r"^[ \t]*--[^\n]*$", re.MULTILINE)


@functools.cache
def _named_queries(name: str) -> dict[str, tuple[str, ...]]:
    parts = _NAMED_QUERY.split(read_sql(name))
    return {
        query: tuple(s.strip() for s in _COMMENT_LINE.sub("", body).split(";") if s.strip())
        for query, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def statements(name: str, query: str, **relations: sql.Composable) -> list[sql.Composed]:
    """The statements of the named query `query` in SQL file `name`.

    Placeholders in braces are identifiers: the schemas (`schemas()`) and `relations`.
    Values stay %(name)s placeholders, bound by the caller.
    """
    return [sql.SQL(text).format(**schemas(), **relations) for text in _named_queries(name)[query]]


def run_sql(
    conn: psycopg.Connection,
    name: str,
    query: str,
    params: Mapping[str, Any] | None = None,
    **relations: sql.Composable,
) -> psycopg.Cursor:
    """Execute the statements of named query `query` of SQL file `name` in order, binding
    `params`; return the cursor of the last one (for its rows)."""
    cursor = None
    for statement in statements(name, query, **relations):
        cursor = conn.execute(statement, params)
    if cursor is None:
        raise ValueError(f"{name}: query {query!r} has no statement")
    return cursor


# The objects a DDL script creates "if not exists": tables and schemas by qualified name, and
# indexes by name in the schema of their table.
_CREATES = re.compile(
    r"create\s+(?P<kind>schema|table|index)\s+if\s+not\s+exists\s+(?P<name>[\w.]+)"
    r"(?:\s+on\s+(?P<table>[\w.]+))?",
    re.IGNORECASE,
)


def read_sql_if_missing(conn: psycopg.Connection, name: str) -> bool:
    """Run the DDL script `name` unless everything it creates already exists.

    Even a no-op `create index if not exists` locks its table (SHARE, which waits for any
    publish), so a script made only of `create schema/table/index if not exists` statements
    whose objects are all in place is not run at all. A script with any other statement (an
    `alter table ... add column if not exists` of an upgrade, say) always runs. Returns
    whether it ran.
    """
    script = read_sql(name)
    statements = [s for s in re.sub(r"--[^\n]*", "", script).split(";") if s.strip()]
    if not all(_CREATES.match(s.strip()) for s in statements):
        conn.execute(script)
        return True
    for match in (_CREATES.match(s.strip()) for s in statements):
        kind, obj = match["kind"].lower(), match["name"]
        if kind == "schema":
            found = conn.execute("select 1 from pg_namespace where nspname = %s", (obj,))
        else:
            if kind == "index" and "." not in obj:
                obj = f"{match['table'].rsplit('.', 1)[0]}.{obj}"
            found = conn.execute("select to_regclass(%s)", (obj,))
        row = found.fetchone()
        if row is None or row[0] is None:
            conn.execute(script)
            return True
    return False


def create_database(name: str) -> None:
    with connect("postgres", autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))


def drop_database(name: str) -> None:
    with connect("postgres", autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("drop database if exists {} with (force)").format(
                psycopg.sql.Identifier(name)
            )
        )
