"""`segments db init`: the raw CRM contract, the pipeline's schemas, the serving and history
tables with their roles, grants and row-level security, the control tables, and the tables
the clustering step writes (segments_marts)."""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors

from segmentation import settings
from segmentation.errors import DatabaseError
from segmentation.warehouse import control, database, security


def init_db(dbname: str | None = None) -> list[str]:
    """Create the raw CRM contract and the pipeline's schemas. Safe to run again.

    Readers are never blocked: what is already in place is skipped, every lock wait is bounded
    by SEGMENTS_INIT_LOCK_TIMEOUT, and when a lock cannot be had, init fails with nothing
    changed. Returns warnings about protections the current login could not apply.
    """
    timeout = security.init_lock_timeout()
    try:
        with database.transaction(dbname) as conn:
            conn.execute(
                "select set_config('lock_timeout', %s, true)", (f"{max(1, int(timeout * 1000))}ms",)
            )
            database.read_sql_if_missing(conn, "crm_raw.sql")
            for schema in (
                settings.SCHEMA_STAGING,
                settings.SCHEMA_AUDIT,
                settings.SCHEMA_SERVING,
                settings.SCHEMA_HISTORY,
                settings.SCHEMA_MARTS,
            ):
                if not conn.execute(
                    "select 1 from pg_namespace where nspname = %s", (schema,)
                ).fetchone():
                    conn.execute(
                        psycopg.sql.SQL("create schema if not exists {}").format(
                            psycopg.sql.Identifier(schema)
                        )
                    )
            # The tables steps.clusters writes (before the grants, which name them).
            database.run_sql(conn, "clusters.sql", "create_contact_clusters")
            database.run_sql(conn, "clusters.sql", "create_cluster_tables")
            # Serving and history tables, roles, grants and row-level security.
            warnings = security.apply(conn)
            # The pipeline's run lease, audit fingerprints and publish lock (control.sql).
            control.apply(conn)
            return warnings
    except pg_errors.LockNotAvailable as exc:
        where = f" ({exc.diag.context.strip()})" if exc.diag.context else ""
        raise DatabaseError(
            f"segments db init gave up waiting for a lock after {timeout:g}s "
            f"(SEGMENTS_INIT_LOCK_TIMEOUT): {exc.diag.message_primary}{where}. Nothing was "
            "changed. Another session holds a lock on an object init changes; find it with "
            "`select pid, usename, state, xact_start, query from pg_stat_activity where "
            "pid = any(pg_blocking_pids(<init pid>))` or in pg_locks, let it finish, and run "
            "`segments db init` again."
        ) from exc
