"""Setting a database up for the pipeline and for Broadcast's logins (`segments db init`,
`grant-reader`, `revoke-reader`): the warehouse's functions, as steps the CLI may call."""

from __future__ import annotations

from segmentation.warehouse import database
from segmentation.warehouse.bootstrap import init_db
from segmentation.warehouse.dbt_runner import profiles_dir
from segmentation.warehouse.security import grant_reader, revoke_reader

__all__ = ["grant_reader", "init_db", "profiles_dir", "revoke_reader", "server_version"]


def server_version() -> str:
    with database.connect() as conn:
        return str(conn.execute("show server_version").fetchone()[0])
