"""Connections (libpq environment variables) and database initialisation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources

import psycopg

from segmentation import config
from segmentation.errors import DatabaseError


def connect(dbname: str | None = None, autocommit: bool = False) -> psycopg.Connection:
    """Connect with the libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE)."""
    kwargs = {"dbname": dbname} if dbname else {}
    try:
        return psycopg.connect(autocommit=autocommit, **kwargs)
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"Cannot connect to PostgreSQL: {exc}".rstrip()
            + '\nStart the local server with `eval "$(segments db up)"`, or set PGHOST, '
            "PGPORT, PGUSER, PGPASSWORD and PGDATABASE."
        ) from exc


@contextmanager
def transaction(dbname: str | None = None) -> Iterator[psycopg.Connection]:
    with connect(dbname) as conn, conn.transaction():
        yield conn


def read_sql(name: str) -> str:
    return resources.files("segmentation.sql").joinpath(name).read_text()


def create_database(name: str) -> None:
    with connect("postgres", autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(psycopg.sql.SQL("create database {}").format(psycopg.sql.Identifier(name)))


def drop_database(name: str) -> None:
    with connect("postgres", autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("drop database if exists {} with (force)").format(
                psycopg.sql.Identifier(name)
            )
        )


def init_db(dbname: str | None = None) -> None:
    """Create the raw CRM contract and the pipeline's schemas. Safe to run again."""
    with transaction(dbname) as conn:
        conn.execute(read_sql("crm_raw.sql"))
        for schema in (
            config.SCHEMA_STAGING,
            config.SCHEMA_AUDIT,
            config.SCHEMA_SERVING,
            config.SCHEMA_HISTORY,
        ):
            conn.execute(
                psycopg.sql.SQL("create schema if not exists {}").format(
                    psycopg.sql.Identifier(schema)
                )
            )
        # Serving and history tables, roles, grants and row-level security.
        from segmentation import control, security

        security.apply(conn)
        # The pipeline's run lease, audit fingerprints and publish lock (control.sql).
        control.apply(conn)
