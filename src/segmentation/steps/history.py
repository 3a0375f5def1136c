"""Membership history (schema segments_history), recorded from what was actually published.

For an as-of date D, `record_history` compares the published membership (segments_serving,
which the publish of D just wrote) with the membership of the latest EARLIER recorded date,
never with "serving before this run": a rerun of D happens after D's publish already changed
serving, so that diff would be empty. The base is `membership_state`, the snapshot of the latest
recorded date; when D is that date (a rerun), the date before is reconstructed exactly as
snapshot - entered(D) + exited(D). D's rows are then deleted and inserted again in one
transaction, so a rerun replaces them and never duplicates them.

A date older than the latest recorded one is refused (HistoryBackfillError): inserting it
would silently falsify every later date's changes, which were computed against the old base.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import psycopg

from segmentation.errors import HistoryBackfillError, HistoryError
from segmentation.warehouse import control, database

log = logging.getLogger(__name__)


def record_history(as_of: dt.date, run_id: str) -> dict[str, Any]:
    """Record the membership changes and segment sizes of `as_of`. Idempotent per date.

    Returns {'as_of', 'run_id', 'entered', 'exited', 'segments', 'rerun'}.
    """
    try:
        with database.transaction() as conn:
            conn.execute("select set_config('lock_timeout', '30s', true)")
            # The publish lock: history never interleaves with a publish.
            control.lock_publish(conn)
            rerun = _check_dates(conn, as_of)
            _build_base(conn, as_of, rerun)
            summary = _write(conn, as_of, run_id)
    except psycopg.Error as exc:
        raise HistoryError(
            f"Recording history for {as_of} failed and was rolled back: {exc}"
        ) from exc
    summary.update(as_of=as_of, run_id=run_id, rerun=rerun)
    log.info(
        "history as_of=%s: %d entered, %d exited over %d segments%s",
        as_of,
        summary["entered"],
        summary["exited"],
        summary["segments"],
        " (rerun replaced the date)" if rerun else "",
    )
    return summary


def _run(
    conn: psycopg.Connection, query: str, params: dict[str, Any] | None = None
) -> psycopg.Cursor:
    return database.run_sql(conn, "history.sql", query, params)


def _check_dates(conn: psycopg.Connection, as_of: dt.date) -> bool:
    """True when `as_of` is the latest recorded date (a rerun); raise when it cannot be recorded."""
    row = _run(conn, "latest_published").fetchone()
    if row is None or row[0] != as_of:
        shown = "nothing" if row is None else f"as-of {row[0]}"
        raise HistoryError(
            f"Cannot record history for {as_of}: serving shows {shown}. History records what "
            f"was published, so publish {as_of} first."
        )
    latest = _run(conn, "latest_recorded").fetchone()[0]
    if latest is not None and as_of < latest:
        raise HistoryBackfillError(
            f"Cannot record history for {as_of}: history already runs to {latest}, and the "
            f"changes of every later date were computed against the date before {as_of}. "
            "Only the latest recorded date can be recorded again, or a newer one."
        )
    return latest == as_of


def _build_base(conn: psycopg.Connection, as_of: dt.date, rerun: bool) -> None:
    """hist_prev: the published membership of the latest recorded date before `as_of`;
    hist_new: the membership published now."""
    _run(conn, "base")
    if rerun:
        _run(conn, "undo_rerun_date", {"as_of": as_of})
    _run(conn, "published")


def _write(conn: psycopg.Connection, as_of: dt.date, run_id: str) -> dict[str, Any]:
    p = {"as_of": as_of, "run_id": run_id, "recorded_at": dt.datetime.now(dt.UTC)}
    _run(conn, "write", p)
    entered, exited = _run(conn, "changes", p).fetchone()
    segments = _run(conn, "segment_count").fetchone()[0]
    _run(conn, "record_date", {**p, "entered": entered, "exited": exited})
    return {"entered": entered, "exited": exited, "segments": segments}
