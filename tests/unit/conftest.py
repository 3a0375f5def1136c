"""The unit lane: pure Python, no database.

Nothing here may reach PostgreSQL, so `make test-fast` runs without a server: the database
fixtures fail with a pointer to the right lane, and every test runs with the PG* variables
pointing at a server that does not exist and with the local cluster refusing to start.
"""

from __future__ import annotations

import pytest

from segmentation_dev import localpg

NO_DATABASE = (
    "tests/unit has no database: a test that needs PostgreSQL belongs in tests/warehouse "
    "(no dbt), tests/dbt (builds the dbt project) or tests/e2e (the DAG, `segments run`)"
)


@pytest.fixture(scope="session")
def pg_database() -> str:
    pytest.fail(NO_DATABASE, pytrace=False)


@pytest.fixture(autouse=True)
def _no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection attempt fails at once instead of finding the developer's server."""
    monkeypatch.setenv("PGHOST", "/nonexistent/segments-unit-lane")
    monkeypatch.setenv("PGPORT", "1")

    def refuse(self: localpg.LocalCluster) -> localpg.Connection:
        raise AssertionError(NO_DATABASE)

    monkeypatch.setattr(localpg.LocalCluster, "up", refuse)
