"""`airflow backfill create` (Airflow 3; `airflow dags backfill` is gone) is accepted for
segment_refresh, as docs/operations.md writes it: for a date range, for every account or
with `--dag-run-conf '{"accounts": [...]}'`. Against a private metadata database: the dry
run lists the hourly runs, the real command schedules them as backfill runs with the conf
(no scheduler runs them here: what a run then does is tests/dbt/test_run_scope.py and
tests/unit/test_schedule.py)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _airflow import airflow_env, migrate, python

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
# Past days (a backfill of the future is refused), fixed relative to today.
FROM = dt.date.today() - dt.timedelta(days=10)
TO = FROM + dt.timedelta(days=1)

_RUNS = """
import json
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session

with create_session() as session:
    runs = session.query(DagRun).filter(DagRun.dag_id == "segment_refresh").all()
    print(json.dumps([
        {"logical_date": r.logical_date.isoformat(),
         "run_type": str(getattr(r.run_type, "value", r.run_type)), "conf": r.conf}
        for r in runs
    ]))
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    environment = airflow_env(tmp_path_factory.mktemp("airflow_home"))
    migrate(environment)
    done = subprocess.run(
        [AIRFLOW, "dags", "reserialize"], env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    yield environment


def backfill(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["backfill", "create", "--dag-id", "segment_refresh"]
    args += ["--from-date", FROM.isoformat(), "--to-date", TO.isoformat(), *extra]
    return subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=600)


def test_dry_run_lists_every_hour_of_the_range(env: dict[str, str]) -> None:
    done = backfill(env, "--dry-run", "--dag-run-conf", '{"accounts": ["acme"]}')
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # Hourly in UTC from FROM 00:00 to TO 00:00 inclusive: each account's 08:00 is one of them.
    hours = [f"{FROM}T{h:02d}:00:00" for h in range(24)] + [f"{TO}T00:00:00"]
    listed = [h for h in hours if h.replace("T", " ") in done.stdout or h in done.stdout]
    assert listed == hours, done.stdout[-3000:]


def test_a_conf_that_is_not_a_list_of_accounts_is_refused(env: dict[str, str]) -> None:
    done = backfill(env, "--dry-run", "--dag-run-conf", '{"accounts": "acme"}')
    assert done.returncode != 0
    assert "accounts" in done.stdout + done.stderr


def test_backfill_create_schedules_backfill_runs_with_the_accounts(env: dict[str, str]) -> None:
    done = backfill(env, "--dag-run-conf", '{"accounts": ["acme"]}')
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    listed = python(env, _RUNS)
    assert listed.returncode == 0, listed.stderr[-3000:]
    runs = json.loads(listed.stdout.strip().splitlines()[-1])
    assert len(runs) == 25
    assert {r["run_type"] for r in runs} == {"backfill"}
    assert all(r["conf"] == {"accounts": ["acme"]} for r in runs)
    # The run whose hour holds 08:00 in Jakarta (01:00 UTC) of FROM is one of them.
    assert f"{FROM}T01:00:00+00:00" in {r["logical_date"] for r in runs}
