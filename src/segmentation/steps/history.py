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


def _check_dates(conn: psycopg.Connection, as_of: dt.date) -> bool:
    """True when `as_of` is the latest recorded date (a rerun); raise when it cannot be recorded."""
    row = conn.execute(
        "select as_of from segments_serving.publish_log order by publish_id desc limit 1"
    ).fetchone()
    if row is None or row[0] != as_of:
        shown = "nothing" if row is None else f"as-of {row[0]}"
        raise HistoryError(
            f"Cannot record history for {as_of}: serving shows {shown}. History records what "
            f"was published, so publish {as_of} first."
        )
    latest = conn.execute("select max(as_of) from segments_history.recorded_dates").fetchone()[0]
    if latest is not None and as_of < latest:
        raise HistoryBackfillError(
            f"Cannot record history for {as_of}: history already runs to {latest}, and the "
            f"changes of every later date were computed against the date before {as_of}. "
            "Only the latest recorded date can be recorded again, or a newer one."
        )
    return latest == as_of


def _build_base(conn: psycopg.Connection, as_of: dt.date, rerun: bool) -> None:
    """hist_prev: the published membership of the latest recorded date before `as_of`."""
    conn.execute(
        "create temp table hist_prev on commit drop as "
        "select account_id, segment_key, contact_id, definition_hash "
        "from segments_history.membership_state"
    )
    if rerun:
        # The snapshot holds as_of itself: undo that date's changes to get the date before.
        conn.execute(
            """
            delete from hist_prev as p
            using segments_history.membership_changes as c
            where
                c.as_of = %(as_of)s
                and c.change = 'entered'
                and c.account_id = p.account_id
                and c.segment_key = p.segment_key
                and c.contact_id = p.contact_id
            """,
            {"as_of": as_of},
        )
        conn.execute(
            """
            insert into hist_prev (account_id, segment_key, contact_id, definition_hash)
            select account_id, segment_key, contact_id, definition_hash
            from segments_history.membership_changes
            where as_of = %(as_of)s and change = 'exited'
            """,
            {"as_of": as_of},
        )
    conn.execute("alter table hist_prev add primary key (account_id, segment_key, contact_id)")
    conn.execute(
        """
        create temp table hist_new on commit drop as
        select m.account_id, m.segment_key, m.contact_id, s.definition_hash
        from segments_serving.segment_members as m
        inner join segments_serving.segments as s
            on m.account_id = s.account_id and m.segment_key = s.segment_key
        """
    )
    conn.execute("alter table hist_new add primary key (account_id, segment_key, contact_id)")
    conn.execute("analyze hist_prev, hist_new")


def _write(conn: psycopg.Connection, as_of: dt.date, run_id: str) -> dict[str, Any]:
    p = {"as_of": as_of, "run_id": run_id, "recorded_at": dt.datetime.now(dt.UTC)}
    conn.execute("delete from segments_history.membership_changes where as_of = %(as_of)s", p)
    conn.execute(
        """
        insert into segments_history.membership_changes
            (as_of, account_id, segment_key, contact_id, change, definition_hash, run_id)
        select %(as_of)s, n.account_id, n.segment_key, n.contact_id, 'entered',
            n.definition_hash, %(run_id)s
        from hist_new as n
        where not exists (
            select 1 from hist_prev as p
            where
                p.account_id = n.account_id
                and p.segment_key = n.segment_key
                and p.contact_id = n.contact_id
        )
        union all
        select %(as_of)s, p.account_id, p.segment_key, p.contact_id, 'exited',
            coalesce(s.definition_hash, p.definition_hash), %(run_id)s
        from hist_prev as p
        left join segments_serving.segments as s
            on p.account_id = s.account_id and p.segment_key = s.segment_key
        where not exists (
            select 1 from hist_new as n
            where
                n.account_id = p.account_id
                and n.segment_key = p.segment_key
                and n.contact_id = p.contact_id
        )
        """,
        p,
    )
    conn.execute("delete from segments_history.segment_sizes where as_of = %(as_of)s", p)
    conn.execute(
        """
        insert into segments_history.segment_sizes (
            as_of, account_id, segment_key, member_count, entered, exited, stale,
            definition_hash, run_id
        )
        select
            %(as_of)s, s.account_id, s.segment_key, s.member_count,
            coalesce(c.entered, 0), coalesce(c.exited, 0), s.stale, s.definition_hash,
            %(run_id)s
        from segments_serving.segments as s
        left join (
            select
                account_id,
                segment_key,
                count(*) filter (where change = 'entered')::integer as entered,
                count(*) filter (where change = 'exited')::integer as exited
            from segments_history.membership_changes
            where as_of = %(as_of)s
            group by account_id, segment_key
        ) as c on s.account_id = c.account_id and s.segment_key = c.segment_key
        """,
        p,
    )
    conn.execute("delete from segments_history.membership_state")
    conn.execute(
        """
        insert into segments_history.membership_state
            (as_of, account_id, segment_key, contact_id, definition_hash)
        select %(as_of)s, account_id, segment_key, contact_id, definition_hash
        from hist_new
        """,
        p,
    )
    entered, exited = conn.execute(
        "select count(*) filter (where change = 'entered'), "
        "count(*) filter (where change = 'exited') "
        "from segments_history.membership_changes where as_of = %(as_of)s",
        p,
    ).fetchone()
    segments = conn.execute("select count(*) from segments_serving.segments").fetchone()[0]
    conn.execute(
        """
        insert into segments_history.recorded_dates (as_of, run_id, recorded_at, entered, exited)
        values (%(as_of)s, %(run_id)s, %(recorded_at)s, %(entered)s, %(exited)s)
        on conflict (as_of) do update set
            run_id = excluded.run_id,
            recorded_at = excluded.recorded_at,
            entered = excluded.entered,
            exited = excluded.exited
        """,
        {**p, "entered": entered, "exited": exited},
    )
    return {"entered": entered, "exited": exited, "segments": segments}
