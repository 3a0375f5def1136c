"""The DAG's helpers that need no Airflow run: the as-of date from a task context and the
failure summary (the DAG itself is parsed in tests/e2e/test_dag.py)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from segmentation.errors import QuarantineError
from segmentation.steps import airflow_support


@pytest.mark.parametrize(
    ("logical_date", "expected"),
    [
        # The scheduled 08:00 Jakarta run of 2026-11-20 has logical date 01:00 UTC that day.
        (dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC), dt.date(2026, 11, 20)),
        # 20:00 UTC is already the next day in Jakarta.
        (dt.datetime(2026, 11, 19, 20, 0, tzinfo=dt.UTC), dt.date(2026, 11, 20)),
    ],
)
def test_as_of_is_the_logical_date_in_the_configured_timezone(
    logical_date: dt.datetime, expected: dt.date
) -> None:
    context = {"logical_date": logical_date}
    assert airflow_support.as_of_from_context(context, "Asia/Jakarta") == expected


def test_as_of_without_logical_date_uses_run_after() -> None:
    run = SimpleNamespace(run_after=dt.datetime(2026, 11, 19, 23, 30, tzinfo=dt.UTC))
    context = {"logical_date": None, "dag_run": run}
    assert airflow_support.as_of_from_context(context, "Asia/Jakarta") == dt.date(2026, 11, 20)
    assert airflow_support.as_of_from_context(context, "UTC") == dt.date(2026, 11, 19)


def test_failure_summary_names_run_task_date_and_error() -> None:
    context = {
        "logical_date": dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC),
        "run_id": "scheduled__2026-11-20T01:00:00+00:00",
        "dag_run": SimpleNamespace(dag_id="segment_refresh", run_id="x"),
        "task_instance": SimpleNamespace(task_id="finish", try_number=1, dag_id="segment_refresh"),
        "exception": QuarantineError("1 segment(s) quarantined"),
    }
    summary = airflow_support.failure_summary(context)
    assert "segment_refresh" in summary
    assert "scheduled__2026-11-20T01:00:00+00:00" in summary
    assert "as-of: 2026-11-20" in summary
    assert "task: finish (try 1)" in summary
    assert "QuarantineError: 1 segment(s) quarantined" in summary
    assert "kept their last good version" in summary


@pytest.mark.parametrize(
    ("run_type", "param", "manual", "rewind"),
    [
        ("scheduled", False, False, False),
        ("manual", False, True, False),
        ("manual", True, True, True),
        # A backfill publishes its older dates (history is rewritten from there).
        ("backfill", False, False, True),
    ],
)
def test_run_type_decides_manual_scope_and_rewind(
    run_type: str, param: bool, manual: bool, rewind: bool
) -> None:
    run = SimpleNamespace(run_type=run_type, run_after=dt.datetime(2026, 11, 20, 1, tzinfo=dt.UTC))
    context = {"logical_date": None, "dag_run": run, "params": {"allow_rewind": param}}
    assert airflow_support.is_manual(context) is manual
    assert airflow_support.allow_rewind(context) is rewind
    assert airflow_support.run_time(context) == run.run_after
