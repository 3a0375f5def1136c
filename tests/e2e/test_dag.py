"""The DAG parses and is configured as the issue asks (DagBag in a private AIRFLOW_HOME).

Its helpers (as-of date, failure summary) are in tests/unit/test_dag_support.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _airflow import DAGS, airflow_env, python

_INSPECT = f"""
import json
import pendulum
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.encoders import coerce_to_core_timetable
from airflow.timetables.base import TimeRestriction

bag = DagBag(dag_folder={str(DAGS)!r})
dag = bag.dags["segment_refresh"]
timetable = coerce_to_core_timetable(dag.timetable)
first = timetable.next_dagrun_info(
    last_automated_data_interval=None,
    restriction=TimeRestriction(
        # catchup=True here only makes the answer independent of the wall clock (with False,
        # Airflow starts from "now"); the DAG's own catchup=False is asserted separately.
        earliest=pendulum.datetime(2026, 11, 22, tz="UTC"), latest=None, catchup=True
    ),
)
print(json.dumps({{
    "import_errors": {{str(k): str(v) for k, v in bag.import_errors.items()}},
    "dag_ids": sorted(bag.dag_ids),
    "timetable": type(timetable).__name__,
    "cron": timetable._expression,
    "timezone": str(timetable._timezone),
    "first_run_after": first.run_after.isoformat(),
    "catchup": dag.catchup,
    "max_active_runs": dag.max_active_runs,
    "has_dag_failure_callback": bool(dag.on_failure_callback),
    "tasks": {{
        t.task_id: {{
            "retries": t.retries,
            "retry_delay": t.retry_delay.total_seconds(),
            "upstream": sorted(t.upstream_task_ids),
            "outlets": [getattr(o, "uri", None) for o in t.outlets],
            "failure_callback": bool(t.on_failure_callback),
        }}
        for t in dag.tasks
    }},
}}))
"""


def _inspect(tmp_path: Path, **env: str) -> dict[str, Any]:
    done = python(airflow_env(tmp_path, **env), _INSPECT)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dag_info(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _inspect(
        tmp_path_factory.mktemp("airflow_home"),
        SEGMENTS_TIMEZONE="Asia/Jakarta",
        SEGMENTS_DAG_RETRIES="2",
        SEGMENTS_DAG_RETRY_DELAY_SECONDS="300",
    )


def test_dag_imports_without_errors(dag_info: dict[str, Any]) -> None:
    assert dag_info["import_errors"] == {}
    assert dag_info["dag_ids"] == ["segment_refresh"]


def test_schedule_is_hourly_in_utc(dag_info: dict[str, Any]) -> None:
    # Each account's 08:00 comes in its own hour (steps.schedule picks the due accounts;
    # tests/unit/test_schedule.py and tests/e2e/test_dag_schedule.py).
    assert dag_info["timetable"] == "CronTriggerTimetable"
    assert dag_info["cron"] == "0 * * * *"
    assert dag_info["timezone"] == "UTC"
    assert dag_info["first_run_after"] == "2026-11-22T00:00:00+00:00"


def test_no_global_timezone_decides_the_schedule(tmp_path: Path) -> None:
    # SEGMENTS_TIMEZONE is a manual `segments run`'s default only.
    info = _inspect(tmp_path, SEGMENTS_TIMEZONE="Europe/Amsterdam")
    assert (info["cron"], info["timezone"]) == ("0 * * * *", "UTC")
    assert info["first_run_after"] == "2026-11-22T00:00:00+00:00"


def test_run_policy(dag_info: dict[str, Any]) -> None:
    assert dag_info["catchup"] is False
    assert dag_info["max_active_runs"] == 1
    assert dag_info["has_dag_failure_callback"] is True
    for task_id, task in dag_info["tasks"].items():
        assert task["retries"] == 2, task_id
        assert task["retry_delay"] == 300, task_id
        assert task["failure_callback"] is True, task_id


def test_task_order_and_serving_asset(dag_info: dict[str, Any]) -> None:
    tasks = dag_info["tasks"]
    assert set(tasks) == {
        "due_accounts",
        "check_sources",
        "validate_definitions",
        "build",
        "cluster",
        "audit",
        "publish",
        "record_history",
        "analytics",
        "report",
        "finish",
    }
    assert tasks["due_accounts"]["upstream"] == []
    assert tasks["check_sources"]["upstream"] == ["due_accounts"]
    assert tasks["validate_definitions"]["upstream"] == ["check_sources"]
    assert tasks["build"]["upstream"] == ["due_accounts", "validate_definitions"]
    assert tasks["cluster"]["upstream"] == ["build"]
    assert tasks["audit"]["upstream"] == ["build", "cluster"]
    assert tasks["publish"]["upstream"] == ["audit", "build"]
    assert "publish" in tasks["record_history"]["upstream"]
    assert tasks["analytics"]["upstream"] == ["build", "record_history"]
    assert "analytics" in tasks["finish"]["upstream"]
    assert "build" in tasks["finish"]["upstream"]  # the accounts that failed
    # The report reads the marts, beside finish: its failure never blocks finish.
    assert tasks["report"]["upstream"] == ["analytics"]
    assert "report" not in tasks["finish"]["upstream"]
    assert tasks["publish"]["outlets"] == [
        "postgres://segments-warehouse/segments/segments_serving"
    ]
    assert all(t["outlets"] == [] for name, t in tasks.items() if name != "publish")
