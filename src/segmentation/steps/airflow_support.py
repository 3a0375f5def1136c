"""Small helpers the DAG uses, kept here so they are importable and testable without a DAG run.

Nothing in this module imports Airflow at import time: the CLI and the tests load it freely.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

from segmentation import settings
from segmentation.errors import (
    AccountFailedError,
    AuditError,
    CandidateChangedError,
    ClusterError,
    DefinitionError,
    HistoryBackfillError,
    PublishRewindError,
    QuarantineError,
    ScheduleError,
)
from segmentation.warehouse import control

log = logging.getLogger("segmentation.dag")

DEFAULT_RETRIES = int(str(settings.default("SEGMENTS_DAG_RETRIES")))
DEFAULT_RETRY_DELAY_SECONDS = int(str(settings.default("SEGMENTS_DAG_RETRY_DELAY_SECONDS")))

# Errors about the data or the definitions: retrying cannot fix them, so the task fails at once.
NOT_RETRYABLE = (
    # Accounts left out of the run for their definitions or models: a retry changes neither.
    AccountFailedError,
    AuditError,
    # Clustering settings that do not fit, or features built for another date.
    ClusterError,
    # The candidate is not the audited one: publishing again cannot fix it, a rebuild can.
    CandidateChangedError,
    DefinitionError,
    HistoryBackfillError,
    PublishRewindError,
    QuarantineError,
    # The run's accounts or their dates don't fit one run: a retry decides the same.
    ScheduleError,
)


def retries() -> int:
    return int(settings.env("SEGMENTS_DAG_RETRIES") or DEFAULT_RETRIES)


def retry_delay() -> dt.timedelta:
    seconds = int(settings.env("SEGMENTS_DAG_RETRY_DELAY_SECONDS") or DEFAULT_RETRY_DELAY_SECONDS)
    return dt.timedelta(seconds=seconds)


def as_of_from_context(context: Mapping[str, Any], timezone: str | None = None) -> dt.date:
    """The run's as-of date: its logical date as a calendar date in the configured timezone.

    A run triggered without a logical date (Airflow 3 allows that for manual runs) uses the
    time it was scheduled to run after. A backfill's logical date is the backfilled day, so
    the same date is rebuilt exactly.
    """
    moment = context.get("logical_date")
    if moment is None:
        moment = context["dag_run"].run_after
    return moment.astimezone(ZoneInfo(timezone or settings.timezone())).date()


def run_time(context: Mapping[str, Any]) -> dt.datetime:
    """The moment a run stands for: its logical date (a scheduled or backfill run's hour),
    else, for a manual run without one, the time it was triggered to run after."""
    moment = context.get("logical_date")
    if moment is None:
        moment = context["dag_run"].run_after
    return moment


def _run_type(context: Mapping[str, Any]) -> str:
    run_type = getattr(context.get("dag_run"), "run_type", "")
    return str(getattr(run_type, "value", run_type))


def is_manual(context: Mapping[str, Any]) -> bool:
    """A run someone triggered (not the schedule, not a backfill)."""
    return _run_type(context) == "manual"


def is_backfill(context: Mapping[str, Any]) -> bool:
    """A run `airflow backfill create` scheduled."""
    return _run_type(context) == "backfill"


def allow_rewind(context: Mapping[str, Any]) -> bool:
    """Publish an older as-of date than serving shows: a backfill always does (history is
    rewritten from that date forward, steps.history); other runs only with the param."""
    return is_backfill(context) or bool(context["params"].get("allow_rewind"))


@contextmanager
def fail_fast() -> Iterator[None]:
    """Turn errors no retry can fix into AirflowFailException (no retries, clear message)."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except NOT_RETRYABLE as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def failure_summary(context: Mapping[str, Any]) -> str:
    """One readable paragraph for the on-call: which run, which task, which date, what broke."""
    ti = context.get("task_instance") or context.get("ti")
    dag_run = context.get("dag_run")
    exception = context.get("exception")
    try:
        as_of = as_of_from_context(context).isoformat()
    except (KeyError, AttributeError):
        as_of = "?"
    lines = [
        "SEGMENT REFRESH FAILED",
        f"  dag: {getattr(dag_run, 'dag_id', None) or getattr(ti, 'dag_id', '?')}",
        f"  run: {context.get('run_id') or getattr(dag_run, 'run_id', '?')}",
        f"  as-of: {as_of}",
        f"  task: {getattr(ti, 'task_id', '?')} (try {getattr(ti, 'try_number', '?')})",
    ]
    if exception is not None:
        lines.append(f"  error: {type(exception).__name__}: {exception}")
    if isinstance(exception, QuarantineError) or "QuarantineError" in str(exception):
        lines.append("  serving: published; quarantined segments kept their last good version")
    else:
        lines.append("  serving: unchanged unless the publish task succeeded in this run")
    return "\n".join(lines)


def on_failure(context: Mapping[str, Any]) -> None:
    """on_failure_callback: log the summary (the hook an alerting integration replaces) and
    release the run's lease, so the next run need not wait for it to expire."""
    log.error(failure_summary(context))
    run_id = context.get("run_id") or getattr(context.get("dag_run"), "run_id", None)
    if run_id:
        release_lease(str(run_id))


def release_lease(run_id: str) -> None:
    """Release `run_id`'s run lease; a callback must never raise, so failures only log."""
    try:
        control.release(run_id)
    except Exception:  # the database may be the very thing that failed
        log.exception(
            "could not release the run lease of %s; it expires by itself (see "
            "docs/operations.md, 'Concurrent runs')",
            run_id,
        )
