"""Shared fixtures and the test lanes.

The tests are split into lanes by folder, and each test gets its lane's marker
(`pytest -m unit`): tests/unit (pure Python, no database; `make test-fast`), tests/warehouse
(a real PostgreSQL database, no dbt), tests/dbt (builds the dbt project) and tests/e2e (the
DAG, `segments run` subprocesses, kill tests). Every test outside tests/unit talks to a real
PostgreSQL server. The shared helpers are tests/_*.py (importable by name).

Every test module outside tests/unit gets its own fresh database (segments_test_<random>,
with the raw contract and the pipeline's schemas) and its own dbt target and log
directories, dropped after the module: what one module builds, publishes or records (serving,
history, the run lease, dbt's target) never reaches another, so the modules pass in any
order and any subset. Several runs can share one server. SEGMENTS_KEEP_TEST_DB=1 keeps the
databases for a post-mortem.

A module that only reads a built warehouse starts from a copy of one built once a session
(`pg_template`, overridden with `demo_day1`, `demo_day2` or `demo_segments`; tests/_demo.py)
instead of building its own.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import _demo
import _segments
import psycopg
import pytest

from segmentation.steps import audit
from segmentation.warehouse import bootstrap, database
from segmentation_dev import localpg


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The configured server, or the local cluster (started); PG* variables point at it.
    The session's runs render into a copy of the checkout (SEGMENTS_PROJECT_DIR), never into
    the checkout: a module with a project of its own sets that instead."""
    conn = localpg.ensure_server()
    os.environ.update(conn.env())
    project = _segments.checkout_copy(tmp_path_factory.mktemp("checkout"))
    with _demo.environ({"SEGMENTS_PROJECT_DIR": str(project)}):
        yield


@pytest.fixture(scope="module")
def pg_template() -> str | None:
    """The database a module's database starts as a copy of; None: an empty one. A module
    that only reads a built warehouse overrides it (e.g. with `demo_day1`, below)."""
    return None


@pytest.fixture(scope="module")
def pg_database(
    pg_server: None, pg_template: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Name of a fresh database for this module (a copy of `pg_template` if given), with the
    raw contract; PG* variables (and dbt's target and log paths) point at it until the
    module ends."""
    name = f"segments_test_{secrets.token_hex(4)}"
    if pg_template is None:
        database.create_database(name)
    else:
        _demo.clone_database(pg_template, name)
    dbt_dir = tmp_path_factory.mktemp("dbt")
    module_env = {
        "PGDATABASE": name,
        "DBT_TARGET_PATH": str(dbt_dir / "target"),
        "DBT_LOG_PATH": str(dbt_dir / "logs"),
    }
    previous = {key: os.environ.get(key) for key in module_env}
    os.environ.update(module_env)
    try:
        bootstrap.init_db()  # on a copy: the database-level grants a copy does not carry
        yield name
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if not os.environ.get("SEGMENTS_KEEP_TEST_DB"):
            database.drop_database(name)


@pytest.fixture
def db(pg_database: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the module's test database."""
    with database.connect(pg_database, autocommit=True) as conn:
        yield conn


@pytest.fixture
def empty_raw(db: psycopg.Connection) -> psycopg.Connection:
    """The test database with every crm_raw table emptied."""
    _segments.empty_raw_tables(db)
    return db


PROJECT_DIR = Path(__file__).resolve().parents[1]
TESTS_DIR = Path(__file__).resolve().parent
LANES = ("unit", "warehouse", "dbt", "e2e")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its lane, taken from its folder, before `-m` selects. Under
    pytest-xdist the costliest lane goes first instead: the workers take modules in this
    order, and a long e2e module taken last would leave the other worker idle."""
    # A worker's own options say dist "no" (pytest-xdist resets them): ask for workerinput.
    if _is_worker(config) or config.getoption("dist", "no") != "no":
        items.sort(key=lambda item: -_lane_rank(item))
    strays = set()
    for item in items:
        path = item.path.resolve()
        if not path.is_relative_to(TESTS_DIR):
            continue
        parts = path.relative_to(TESTS_DIR).parts
        if len(parts) > 1 and parts[0] in LANES:
            item.add_marker(parts[0])
        else:
            strays.add(str(item.path))
    if strays:
        # A plain `pytest` collects only the lane folders (testpaths), so a test outside
        # them would silently never run in `make test`.
        raise pytest.UsageError(
            f"tests outside a lane folder (tests/{{{','.join(LANES)}}}/): {sorted(strays)}"
        )


def _lane_rank(item: pytest.Item) -> int:
    path = item.path.resolve()
    parts = path.relative_to(TESTS_DIR).parts if path.is_relative_to(TESTS_DIR) else ()
    return LANES.index(parts[0]) if len(parts) > 1 and parts[0] in LANES else len(LANES)


@pytest.fixture(scope="module")
def gx_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private copy of the committed GX project, so runs never write into the checkout."""
    target = audit.copy_gx_project(tmp_path_factory.mktemp("gx") / "expectations")
    previous = os.environ.get("SEGMENTS_GX_DIR")
    os.environ["SEGMENTS_GX_DIR"] = str(target)
    yield target
    if previous is None:
        os.environ.pop("SEGMENTS_GX_DIR", None)
    else:
        os.environ["SEGMENTS_GX_DIR"] = previous


@pytest.fixture(scope="session")
def demo_builder(pg_server: None, tmp_path_factory: pytest.TempPathFactory) -> _demo.Builder:
    return _demo.Builder(tmp_path_factory.mktemp("demo_warehouse"))


@pytest.fixture(scope="session")
def demo_day1(demo_builder: _demo.Builder) -> _demo.DemoWarehouse:
    """The shared demo warehouse after one pipeline run (tests/_demo.py), built once a
    test run; a module reads a copy of it by overriding `pg_template`."""
    return _demo.shared("day1", lambda: demo_builder.build((_demo.D1,), base=None))


@pytest.fixture(scope="session")
def demo_day2(demo_builder: _demo.Builder, demo_day1: _demo.DemoWarehouse) -> _demo.DemoWarehouse:
    """`demo_day1` run again for the next date: history with two dates."""
    return _demo.shared("day2", lambda: demo_builder.build((_demo.D2,), base=demo_day1))


@pytest.fixture(scope="session")
def demo_segments(demo_builder: _demo.Builder) -> _demo.DemoWarehouse:
    """The larger demo data set with the shipped definitions built by dbt for 2026-11-22
    (nothing published), built once a test run for the modules comparing it with the Python
    evaluator (tests/dbt/test_segments_demo.py, test_preview.py)."""
    return _demo.shared("segments", lambda: demo_builder.build_segments(dt.date(2026, 11, 22)))


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    # The controller names the run before pytest-xdist starts its workers, which inherit it.
    if not _is_worker(config):
        os.environ.setdefault(_demo.RUN_VARIABLE, secrets.token_hex(4))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller (or the only process) drops the run's templates once every worker is
    done with them."""
    if _is_worker(session.config) or not _demo.run_dir().exists():
        return
    os.environ.update(localpg.ensure_server().env())
    _demo.drop_templates()
