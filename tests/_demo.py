"""The shared demo warehouse: the small demo data set run through the whole pipeline
(check_sources .. finish) once per session, kept as template databases that the e2e modules
reading it copy (CREATE DATABASE ... TEMPLATE, a file copy in PostgreSQL) instead of each
loading and running the demo themselves.

`DAY1` is the demo after one run (D1); `DAY2` is a copy of it run again for D2, so history
has two dates. Each module gets its own copy (tests/conftest.py `pg_template`), so what a
module changes (a hostile name, a quarantine) never reaches another. The pipeline runs in a
project copy (never the checkout), whose compiled plan the report reads.

A template is built once per test run, not once per pytest-xdist worker: the first worker
to need it builds it under a file lock and records it (`shared`), the others read the record.
Templates are named for the run (`SEGMENTS_TEST_RUN`) and dropped when the whole run ends
(`drop_templates`, from the controller's pytest_sessionfinish), since a worker that
finishes early cannot know whether another still copies them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from _activity import project_copy
from _segments import PROJECT_DIR, build, copy_project
from psycopg import sql

from segmentation.errors import QuarantineError
from segmentation.steps import audit, pipeline
from segmentation.warehouse import bootstrap, database
from segmentation_dev import demo_data

ACCOUNTS, CONTACTS, SEED = 2, 2000, 7
D1, D2 = dt.date(2026, 11, 20), dt.date(2026, 11, 21)
# Set once by the controller (tests/conftest.py); the xdist workers inherit it.
RUN_VARIABLE = "SEGMENTS_TEST_RUN"


@dataclass(frozen=True)
class DemoWarehouse:
    """A template database holding the demo after its runs, and the project they ran in."""

    database: str
    project: Path
    dates: tuple[dt.date, ...]

    def record(self) -> str:
        dates = [d.isoformat() for d in self.dates]
        return json.dumps({"database": self.database, "project": str(self.project), "dates": dates})

    @classmethod
    def from_record(cls, text: str) -> DemoWarehouse:
        fields = json.loads(text)
        dates = tuple(dt.date.fromisoformat(d) for d in fields["dates"])
        return cls(fields["database"], Path(fields["project"]), dates)


def run_dir() -> Path:
    """Where this test run's workers record the templates they built."""
    return Path(tempfile.gettempdir()) / f"segments_test_run_{os.environ[RUN_VARIABLE]}"


def template_name() -> str:
    return f"segments_demo_{os.environ[RUN_VARIABLE]}_{secrets.token_hex(3)}"


def shared(key: str, make: Callable[[], DemoWarehouse]) -> DemoWarehouse:
    """The template `key` of this test run: read from its record, or built by `make` (and
    recorded) by the first worker to get the lock; the others wait for it."""
    root = run_dir()
    root.mkdir(exist_ok=True)
    record = root / f"{key}.json"
    with (root / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if record.exists():
            return DemoWarehouse.from_record(record.read_text())
        demo = make()
        record.write_text(demo.record())
        return demo


def drop_templates() -> None:
    """Drop every template this test run built (SEGMENTS_KEEP_TEST_DB=1 keeps them)."""
    root = run_dir()
    if not root.exists():
        return
    if not os.environ.get("SEGMENTS_KEEP_TEST_DB"):
        with database.connect("postgres", autocommit=True) as conn:
            names = conn.execute(
                "select datname from pg_database where datname like %s",
                (f"segments_demo_{os.environ[RUN_VARIABLE]}_%",),
            ).fetchall()
        for (name,) in names:
            database.drop_database(name)
    shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables until the context ends (then restore or remove them)."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def clone_database(template: str, name: str) -> None:
    """A new database `name`, a copy of `template`. A copy carries neither the template's
    database-level grants nor its settings: run bootstrap.init_db() on it (cheap: it skips
    what is in place) to restore them."""
    with database.connect("postgres", autocommit=True) as conn:
        # CREATE DATABASE ... TEMPLATE needs the template to have no other sessions.
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity "
            "where datname = %s and pid <> pg_backend_pid()",
            (template,),
        )
        conn.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )


# The staged contact columns the Python evaluator compares as dates (in the account's zone).
TIMESTAMPS = ("created_at", "updated_at", "consent_updated_at", "company.created_at")


def staged_rows(db: psycopg.Connection) -> list[dict[str, Any]]:
    """Every staged contact with its account's timezone and primary company, as the Python
    evaluator (tests/_segments_eval.py) reads them: timestamps as dates in the account's zone."""
    cur = db.execute(
        'select c.*, a.timezone, co.company_name as "company.company_name", '
        'co.employee_count as "company.employee_count", '
        'co.annual_revenue as "company.annual_revenue", '
        'co.created_at as "company.created_at" '
        "from segments_staging.stg_crm__contacts as c "
        "join segments_staging.stg_crm__accounts as a using (account_id) "
        "left join segments_audit.int_segment_primary_companies as co "
        "using (account_id, contact_id)"
    )
    names = [d.name for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    for row in rows:
        for column in TIMESTAMPS:
            if row[column] is not None:
                row[column] = row[column].astimezone(ZoneInfo(row["timezone"])).date()
    return rows


class Builder:
    """Builds the demo templates in one project copy, GX copy and dbt target (partial
    parsing carries over from one run to the next); `drop_templates` drops them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.project = root / "project"
        with project_copy(self.project):
            shutil.rmtree(self.project / "segment_defs")
            shutil.copytree(PROJECT_DIR / "segment_defs", self.project / "segment_defs")
        gx = audit.copy_gx_project(root / "gx" / "expectations")
        self.env = {
            "SEGMENTS_PROJECT_DIR": str(self.project),
            "SEGMENTS_GX_DIR": str(gx),
            "DBT_TARGET_PATH": str(root / "dbt" / "target"),
            "DBT_LOG_PATH": str(root / "dbt" / "logs"),
        }

    def build(self, dates: tuple[dt.date, ...], base: DemoWarehouse | None) -> DemoWarehouse:
        """A new template: the demo data loaded (or a copy of `base`), run for `dates`."""
        name = template_name()
        if base is None:
            database.create_database(name)
        else:
            clone_database(base.database, name)
        with environ({**self.env, "PGDATABASE": name}):
            bootstrap.init_db()
            if base is None:
                demo_data.load(
                    accounts=ACCOUNTS, contacts=CONTACTS, seed=SEED, anchor=D2, dbname=name
                )
            for as_of in dates:
                # Small demo segments may leave their bounds (quarantined): the rest publish.
                with contextlib.suppress(QuarantineError):
                    pipeline.run(as_of, f"manual__demo_{as_of}")
        return DemoWarehouse(name, self.project, (*(base.dates if base else ()), *dates))

    def build_segments(self, as_of: dt.date) -> DemoWarehouse:
        """A new template: the larger demo data set (3 accounts) with the shipped
        definitions built by dbt for `as_of` (staging .. segment marts, `_segments.build`),
        nothing audited or published; in its own project copy (`_segments.copy_project`)."""
        name = template_name()
        project = copy_project(self.root / "segments_project")
        shutil.rmtree(project / "segment_defs")
        shutil.copytree(PROJECT_DIR / "segment_defs", project / "segment_defs")
        database.create_database(name)
        env = {
            **self.env,
            "SEGMENTS_PROJECT_DIR": str(project),
            "DBT_TARGET_PATH": str(self.root / "dbt_segments" / "target"),
            "DBT_LOG_PATH": str(self.root / "dbt_segments" / "logs"),
            "PGDATABASE": name,
        }
        with environ(env):
            bootstrap.init_db()
            demo_data.load(accounts=3, contacts=3000, seed=SEED, anchor=as_of, dbname=name)
            build(as_of.isoformat())
        return DemoWarehouse(name, project, (as_of,))
