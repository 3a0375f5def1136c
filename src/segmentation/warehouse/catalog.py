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


def read_accounts() -> dict[str, str | None] | None:
    """account_id -> package (lower case) from the raw accounts; None when the database
    can't be reached (validation then runs offline)."""
    query = sql.SQL(database.read_sql("accounts.sql")).format(
        raw=sql.Identifier(settings.SCHEMA_RAW)
    )
    try:
        with database.connect() as conn:
            rows = conn.execute(query).fetchall()
    except (DatabaseError, psycopg.Error):
        return None
    return {str(account): package for account, package in rows}


def postgres_regex_check(conn: psycopg.Connection) -> Callable[[str], str | None]:
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
def regex_check() -> Iterator[Callable[[str], str | None] | None]:
    """PostgreSQL's regex check while the database is reachable, else None (offline)."""
    try:
        conn = database.connect(autocommit=True)
    except (DatabaseError, psycopg.Error):
        yield None
        return
    with conn:
        yield postgres_regex_check(conn)
