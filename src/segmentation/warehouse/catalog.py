"""What the warehouse knows that the compiler needs: the accounts and their packages, and
PostgreSQL's own verdict on a regular expression."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from segmentation import settings
from segmentation.errors import DatabaseError
from segmentation.warehouse import database

RegexCheck = Callable[[str], str | None]


def read_accounts(conn: psycopg.Connection) -> dict[str, str | None]:
    """account_id -> package (lower snake case) from the raw accounts."""
    raw = sql.Identifier(settings.SCHEMA_RAW)
    query = sql.SQL(database.read_sql("accounts.sql")).format(raw=raw)
    return {str(account): package for account, package in conn.execute(query).fetchall()}


def empty_raw_tables(conn: psycopg.Connection) -> list[str]:
    """The tables of the raw schema (crm_raw) that hold no row at all."""
    tables = database.run_sql(
        conn, "sources.sql", "raw_tables", {"schema": settings.SCHEMA_RAW}
    ).fetchall()
    return [
        table
        for (table,) in tables
        if not database.run_sql(
            conn, "sources.sql", "has_rows", table=sql.Identifier(table)
        ).fetchone()[0]
    ]


def postgres_regex_check(conn: psycopg.Connection) -> RegexCheck:
    """A check that asks PostgreSQL to compile each pattern on `conn` (autocommit)."""

    def check(pattern: str) -> str | None:
        try:
            conn.execute("select '' ~ %s", (pattern,))
        except psycopg.Error as exc:
            message = exc.diag.message_primary or str(exc).strip()
            return (
                f"is not a valid PostgreSQL regular expression: {message} (checked by PostgreSQL)"
            )
        return None

    return check


@contextmanager
def warehouse_view(
    offline: bool = False,
) -> Iterator[tuple[dict[str, str | None] | None, RegexCheck | None]]:
    """What a compile needs from the warehouse, on one connection: the accounts (account ->
    package) and PostgreSQL's regex check. (None, None) offline or when the database can't
    be reached: the compile then runs without account checks and with the offline regex
    check."""
    if offline:
        yield None, None
        return
    try:
        conn = database.connect(autocommit=True)
    except (DatabaseError, psycopg.Error):
        yield None, None
        return
    with conn:
        try:
            accounts = read_accounts(conn)
        except psycopg.Error:
            accounts = None
        yield accounts, None if accounts is None else postgres_regex_check(conn)
