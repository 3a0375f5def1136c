"""Membership history (schema segments_history), recorded from what was actually published,
keyed on (account, as-of date): every account has its own recorded dates and moves forward
independently of the others.

For an account and as-of date D, `record_history` compares the account's published
membership (segments_serving, which the publish of D just wrote) with its membership of the
latest EARLIER recorded date, never with "serving before this run": a rerun of D happens
after D's publish already changed serving, so that diff would be empty. The base is the
account's rows of `membership_state`, the membership of its latest recorded date (that date is
the account's latest `recorded_dates` row); when D is that date (a rerun), the state is first
turned back into the date before, exactly, as state - entered(D) + exited(D). D's rows are then
deleted and inserted again, and the state takes D's changes, all in one transaction, so a
rerun replaces them and never duplicates them, and a day's work on the state is proportional
to what changed.

A rewind (the publish of a date older than the account's latest) rewrites the account's
history in the publish transaction itself (`rewind`): the dates after it are deleted and
membership_state is replayed from the changes, so serving and history never disagree; the
later dates are recorded again when they are published again (a later run or a backfill).
Recording a date older than the account's latest recorded one outside that path is refused
(HistoryBackfillError): it would silently falsify every later date's changes.

`replay_membership` is the membership the history implies for a date: what serving showed
when that date was published (the tests compare the two).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import psycopg

from segmentation.errors import HistoryBackfillError, HistoryError
from segmentation.warehouse import control, database

log = logging.getLogger(__name__)

# apply_changes (history.sql) in each direction: the rows of the one change go, the other's come.
_FORWARD = {"remove": "exited", "add": "entered"}
_UNDO = {"remove": "entered", "add": "exited"}


def record_history(
    as_of: dt.date, run_id: str, accounts: Sequence[str] | None = None
) -> dict[str, Any]:
    """Record the membership changes and segment sizes of `as_of` for each of `accounts`
    (None: every account whose serving shows `as_of`), one transaction per account.
    Idempotent per account and date.

    Returns {'as_of', 'run_id', 'entered', 'exited', 'segments', 'rerun', 'accounts'}; the
    counts are summed over the accounts, 'accounts' maps each to its own summary.
    """
    scope = _scope(as_of) if accounts is None else sorted(accounts)
    per_account: dict[str, dict[str, Any]] = {}
    for account in scope:
        per_account[account] = _record_account(as_of, run_id, account)
    summary: dict[str, Any] = {
        "as_of": as_of,
        "run_id": run_id,
        "entered": sum(s["entered"] for s in per_account.values()),
        "exited": sum(s["exited"] for s in per_account.values()),
        "segments": sum(s["segments"] for s in per_account.values()),
        "rerun": any(s["rerun"] for s in per_account.values()),
        "accounts": per_account,
    }
    return summary


def _scope(as_of: dt.date) -> list[str]:
    """The accounts serving shows as-of `as_of`; HistoryError when there are none."""
    with database.connect() as conn:
        shown: dict[str, dt.date | None] = {}
        for (account,) in _run(conn, "published_accounts").fetchall():
            row = _run(conn, "latest_published", {"account_id": account}).fetchone()
            shown[account] = row[0] if row else None
    scope = [a for a, d in shown.items() if d == as_of]
    if not scope:
        dates = sorted({d for d in shown.values() if d is not None})
        what = "nothing" if not dates else "as-of " + ", ".join(str(d) for d in dates)
        raise HistoryError(
            f"Cannot record history for {as_of}: serving shows {what}. History records what "
            f"was published, so publish {as_of} first."
        )
    return scope


def _record_account(as_of: dt.date, run_id: str, account: str) -> dict[str, Any]:
    try:
        with database.transaction() as conn:
            conn.execute("select set_config('lock_timeout', '30s', true)")
            # The publish lock: history never interleaves with a publish.
            control.lock_publish(conn)
            # The diffs join serving's members (which have no column statistics) to the state.
            database.run_sql(conn, "planner.sql", "no_nested_loops")
            rerun = _check_dates(conn, as_of, account)
            if rerun:
                _undo_rerun(conn, as_of, account)
            summary = _write(conn, as_of, run_id, account)
    except psycopg.Error as exc:
        raise HistoryError(
            f"Recording history for {as_of} of account {account} failed and was rolled back: {exc}"
        ) from exc
    summary["rerun"] = rerun
    log.info(
        "history %s as_of=%s: %d entered, %d exited over %d segments%s",
        account,
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


def _check_dates(conn: psycopg.Connection, as_of: dt.date, account: str) -> bool:
    """True when `as_of` is the account's latest recorded date (a rerun); raise when it
    cannot be recorded."""
    key = {"account_id": account}
    row = _run(conn, "latest_published", key).fetchone()
    if row is None or row[0] != as_of:
        shown = "nothing" if row is None else f"as-of {row[0]}"
        raise HistoryError(
            f"Cannot record history for {as_of} of account {account}: serving shows {shown}. "
            f"History records what was published, so publish {as_of} first."
        )
    latest = _run(conn, "latest_recorded", key).fetchone()[0]
    if latest is not None and as_of < latest:
        raise HistoryBackfillError(
            f"Cannot record history for {as_of} of account {account}: history already runs to "
            f"{latest}, and the changes of every later date were computed against the date "
            f"before {as_of}. Publish {as_of} with allow_rewind (`segments run --as-of {as_of} "
            "--allow-rewind`): that rewrites the account's history from that date on."
        )
    return latest == as_of


def _undo_rerun(conn: psycopg.Connection, as_of: dt.date, account: str) -> None:
    """membership_state holds `as_of` itself: make it the date before again."""
    _run(conn, "apply_changes", {"as_of": as_of, "account_id": account, **_UNDO})


def _write(conn: psycopg.Connection, as_of: dt.date, run_id: str, account: str) -> dict[str, Any]:
    p = {
        "as_of": as_of,
        "run_id": run_id,
        "account_id": account,
        "recorded_at": dt.datetime.now(dt.UTC),
    }
    _run(conn, "write", p)
    _run(conn, "apply_changes", {**p, **_FORWARD})
    _run(conn, "rehash", p)
    entered, exited = _run(conn, "changes", p).fetchone()
    segments = _run(conn, "segment_count", p).fetchone()[0]
    _run(conn, "record_date", {**p, "entered": entered, "exited": exited})
    return {"entered": entered, "exited": exited, "segments": segments}


def rewind(conn: psycopg.Connection, account_id: str, as_of: dt.date) -> bool:
    """In the publish transaction of `as_of` for `account_id` (after its members were
    written): when the account's history runs past `as_of`, delete those later dates and
    replay membership_state to the latest date left, and give serving's members the
    member_since history implies. Returns whether it rewound. A no-op for a daily publish."""
    p = {"account_id": account_id, "as_of": as_of}
    later, earlier = _run(conn, "later_recorded", p).fetchone()
    if not later:
        return False
    _run(conn, "rewind", p)
    if earlier:
        _run(conn, "rewind_member_since", p)
    log.info("rewind of %s to %s: history after %s deleted", account_id, as_of, as_of)
    return True


def replay_membership(
    conn: psycopg.Connection, account_id: str, as_of: dt.date
) -> dict[tuple[str, str], dt.date]:
    """(segment_key, contact_id) -> member_since: the account's membership on `as_of` as
    its recorded changes imply it (what serving showed when that date was published)."""
    rows = _run(conn, "replay", {"account_id": account_id, "as_of": as_of}).fetchall()
    return {(segment, contact): since for segment, contact, since in rows}
