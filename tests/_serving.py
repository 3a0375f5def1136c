"""Helpers for the serving access-control tests: reader logins in each mode of docs/security.md."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psycopg
from _publish import Login, reader_login

from segmentation.warehouse import security


@contextmanager
def known_accounts(conn: psycopg.Connection, accounts: Iterable[str]) -> Iterator[None]:
    """Rows in crm_raw.accounts for `accounts` (grant-reader accepts only known accounts);
    the ones this added are removed afterwards."""
    added = [
        r[0]
        for r in conn.execute(
            "insert into crm_raw.accounts (account_id, name) "
            "select a, a from unnest(%s::text[]) as a on conflict do nothing returning account_id",
            (list(accounts),),
        )
    ]
    try:
        yield
    finally:
        conn.execute("delete from crm_raw.accounts where account_id = any(%s)", (added,))


@contextmanager
def account_login(
    conn: psycopg.Connection,
    dbname: str,
    accounts: Iterable[str],
    connection_limit: int | None = None,
) -> Iterator[Login]:
    """A login in the default mode: granted `accounts` with grant_reader, revoked after."""
    accounts = list(accounts)
    with known_accounts(conn, accounts), reader_login(conn, dbname) as login:
        security.grant_reader(login.user, accounts, connection_limit=connection_limit)
        try:
            yield login
        finally:
            conn.execute(
                "delete from segments_serving.reader_accounts where role_name = %s",
                (login.user,),
            )


@contextmanager
def multiplexer_login(conn: psycopg.Connection, dbname: str) -> Iterator[Login]:
    """A login in the weaker mode: a member of the multiplexer role, reads `app.account_id`."""
    with reader_login(conn, dbname, group=security.multiplexer_role()) as login:
        yield login
