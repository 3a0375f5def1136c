"""Dropping relations the pipeline generated and no longer builds."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from psycopg import sql

from segmentation.warehouse import database

_KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}


def drop_except(schema: str, prefixes: Iterable[str], keep: Collection[str]) -> list[str]:
    """Drop every table or view in `schema` whose name starts with one of `prefixes` and is
    not in `keep`. Returns the dropped names."""
    query = sql.SQL(database.read_sql("generated_relations.sql"))
    dropped: list[str] = []
    with database.connect(autocommit=True) as conn:
        rows = conn.execute(query, {"schema": schema, "prefixes": list(prefixes)}).fetchall()
        for name, kind in sorted(rows):
            if name in keep:
                continue
            conn.execute(
                sql.SQL("drop {} if exists {}.{}").format(
                    sql.SQL(_KINDS[kind]), sql.Identifier(schema), sql.Identifier(name)
                )
            )
            dropped.append(name)
    return dropped
