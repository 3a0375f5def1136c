"""`segments db init` upgrades an install from before serving contract 2: publish_log gains
account_id / accepted_by / accept_reason and the new statuses, recorded_dates becomes one row
per account and date, audits gain failed_accounts, membership_state loses its per-row date
(the account's latest recorded date is its date) and keeps its rows; a second init changes
nothing."""

from __future__ import annotations

import datetime as dt

import psycopg

from segmentation.warehouse import bootstrap

D1 = dt.date(2026, 11, 1)

OLD_SHAPE = """
drop table segments_serving.publish_log;
create table segments_serving.publish_log (
    publish_id bigint generated always as identity primary key,
    run_id text not null,
    as_of date not null,
    published_at timestamptz not null,
    segments_published integer not null,
    segments_quarantined integer not null,
    status text not null,
    constraint publish_log_status check (status in ('published', 'partial'))
);
insert into segments_serving.publish_log
(run_id, as_of, published_at, segments_published, segments_quarantined, status)
values ('old-run', '2026-11-01', now(), 2, 0, 'published');
drop table segments_history.recorded_dates;
create table segments_history.recorded_dates (
    as_of date primary key,
    run_id text not null,
    recorded_at timestamptz not null,
    entered integer not null,
    exited integer not null
);
insert into segments_history.recorded_dates values ('2026-11-01', 'old-run', now(), 3, 0);
insert into segments_history.segment_sizes values
    ('2026-11-01', 'acme', 'vip', 2, 2, 0, false, 'h1', 'old-run'),
    ('2026-11-01', 'acme', 'buyers', 0, 0, 0, false, 'h2', 'old-run'),
    ('2026-11-01', 'globex', 'vip', 1, 1, 0, false, 'h1', 'old-run');
alter table segments_control.audits drop column failed_accounts;
alter table segments_history.membership_state add column as_of date;
insert into segments_history.membership_state
(as_of, account_id, segment_key, contact_id, definition_hash)
values ('2026-11-01', 'acme', 'vip', 'a1', 'h1');
"""


def _columns(conn: psycopg.Connection, schema: str, table: str) -> set[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns "
        "where table_schema = %s and table_name = %s",
        (schema, table),
    ).fetchall()
    return {r[0] for r in rows}


def test_init_upgrades_an_install_from_before_contract_2(db: psycopg.Connection) -> None:
    db.execute(OLD_SHAPE)
    assert "account_id" not in _columns(db, "segments_serving", "publish_log")

    bootstrap.init_db()

    assert {"account_id", "accepted_by", "accept_reason"} <= _columns(
        db, "segments_serving", "publish_log"
    )
    assert "failed_accounts" in _columns(db, "segments_control", "audits")
    assert "as_of" not in _columns(db, "segments_history", "membership_state")
    assert db.execute(
        "select account_id, segment_key, contact_id, definition_hash "
        "from segments_history.membership_state"
    ).fetchall() == [("acme", "vip", "a1", "h1")]
    # The old global date becomes a row per account with that account's own counts.
    assert db.execute(
        "select account_id, as_of, run_id, entered, exited from segments_history.recorded_dates "
        "order by 1"
    ).fetchall() == [("acme", D1, "old-run", 2, 0), ("globex", D1, "old-run", 1, 0)]
    key = db.execute(
        "select array_agg(a.attname order by k.ord) from pg_index i "
        "cross join unnest(i.indkey) with ordinality as k (attnum, ord) "
        "join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum "
        "where i.indrelid = 'segments_history.recorded_dates'::regclass and i.indisprimary"
    ).fetchone()[0]
    assert key == ["account_id", "as_of"]
    # The new statuses are accepted; the old row is kept (account_id NULL: every account).
    db.execute(
        "insert into segments_serving.publish_log (run_id, as_of, published_at, "
        "segments_published, segments_quarantined, status, account_id) "
        "values ('new-run', '2026-11-02', now(), 0, 0, 'failed', 'acme')"
    )
    assert db.execute(
        "select run_id, account_id, status from segments_serving.publish_log order by publish_id"
    ).fetchall() == [("old-run", None, "published"), ("new-run", "acme", "failed")]

    bootstrap.init_db()  # already current: nothing to do, nothing lost
    assert db.execute("select count(*) from segments_history.recorded_dates").fetchone()[0] == 2
