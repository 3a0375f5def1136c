"""Membership history: changes against the latest earlier date, reruns replace, a rewind
rewrites the account's history from its date on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from _publish import members, publish_state, set_catalogue, set_contacts, set_membership

from segmentation.errors import HistoryError, PublishRewindError
from segmentation.steps.history import record_history, replay_membership
from segmentation.steps.publish import publish

D1, D2, D3 = (dt.date(2026, 11, d) for d in (1, 2, 3))


@pytest.fixture
def state(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    with publish_state(db) as conn:
        set_contacts(
            conn,
            [(c, "acme", None, None, False, False, False) for c in "abcdef"]
            + [("z", "globex", None, None, False, False, False)],
        )
        yield conn


def changes(conn: psycopg.Connection, as_of: dt.date | None = None) -> list[tuple]:
    return conn.execute(
        "select as_of, account_id, segment_key, contact_id, change, definition_hash "
        "from segments_history.membership_changes "
        "where %(d)s::date is null or as_of = %(d)s order by 1, 2, 3, 5, 4",
        {"d": as_of},
    ).fetchall()


def sizes(conn: psycopg.Connection, as_of: dt.date) -> list[tuple]:
    return conn.execute(
        "select account_id, segment_key, member_count, entered, exited, stale "
        "from segments_history.segment_sizes where as_of = %s order by 1, 2",
        (as_of,),
    ).fetchall()


def run(conn: psycopg.Connection, as_of: dt.date, members: dict, quarantined=None) -> dict:
    set_membership(conn, members)
    publish(as_of, f"run-{as_of}", quarantined or {})
    return record_history(as_of, f"run-{as_of}")


def test_changes_sizes_and_reruns(state: psycopg.Connection) -> None:
    set_catalogue(state, [("acme", "vip"), ("globex", "vip")])
    first = run(state, D1, {("acme", "vip"): ["a", "b"], ("globex", "vip"): ["z"]})
    assert (first["entered"], first["exited"], first["rerun"]) == (3, 0, False)
    assert changes(state, D1) == [
        (D1, "acme", "vip", "a", "entered", "vip-v1"),
        (D1, "acme", "vip", "b", "entered", "vip-v1"),
        (D1, "globex", "vip", "z", "entered", "vip-v1"),
    ]

    run(state, D2, {("acme", "vip"): ["a", "c"], ("globex", "vip"): ["z"]})
    d2 = [
        (D2, "acme", "vip", "c", "entered", "vip-v1"),
        (D2, "acme", "vip", "b", "exited", "vip-v1"),
    ]
    assert changes(state, D2) == d2
    assert sizes(state, D2) == [("acme", "vip", 2, 1, 1, False), ("globex", "vip", 1, 0, 0, False)]

    # A rerun of D2 with the same candidate: serving already shows D2, yet the changes are
    # computed against D1 again and replace the date's rows instead of vanishing or doubling.
    again = run(state, D2, {("acme", "vip"): ["a", "c"], ("globex", "vip"): ["z"]})
    assert again["rerun"] is True
    assert changes(state, D2) == d2
    assert sizes(state, D2) == [("acme", "vip", 2, 1, 1, False), ("globex", "vip", 1, 0, 0, False)]

    # A rerun of D2 after a fix changes the candidate: D2's rows are recomputed against D1.
    run(state, D2, {("acme", "vip"): ["a", "b", "d"], ("globex", "vip"): []})
    assert changes(state, D2) == [
        (D2, "acme", "vip", "d", "entered", "vip-v1"),
        (D2, "globex", "vip", "z", "exited", "vip-v1"),
    ]
    assert changes(state, D1) == [
        (D1, "acme", "vip", "a", "entered", "vip-v1"),
        (D1, "acme", "vip", "b", "entered", "vip-v1"),
        (D1, "globex", "vip", "z", "entered", "vip-v1"),
    ]
    # Replaying every change gives exactly the published membership.
    replayed = state.execute(
        """
        select account_id, segment_key, contact_id from (
            select distinct on (account_id, segment_key, contact_id) *
            from segments_history.membership_changes
            order by account_id, segment_key, contact_id, as_of desc
        ) as last_change where change = 'entered' order by 1, 2, 3
        """
    ).fetchall()
    published = state.execute(
        "select account_id, segment_key, contact_id from segments_serving.segment_members "
        "order by 1, 2, 3"
    ).fetchall()
    assert (
        replayed == published == [("acme", "vip", "a"), ("acme", "vip", "b"), ("acme", "vip", "d")]
    )

    # D3: the segment is removed from globex's definitions and acme's changes definition.
    # globex is still one of the run's accounts (int_segment_as_of), with no segment left.
    state.execute(
        "create table segments_audit.int_segment_as_of as select a as account_id, "
        "'UTC' as timezone, %s::date as as_of_date from unnest(array['acme', 'globex']) as a",
        (D3,),
    )
    try:
        set_catalogue(state, [("acme", "vip")], hash_suffix="v2")
        run(state, D3, {("acme", "vip"): ["a"]})
    finally:
        state.execute("drop table segments_audit.int_segment_as_of")
    assert changes(state, D3) == [
        (D3, "acme", "vip", "b", "exited", "vip-v2"),
        (D3, "acme", "vip", "d", "exited", "vip-v2"),
    ]
    assert state.execute("select count(*) from segments_serving.segments").fetchone()[0] == 1
    # The state took only D3's changes, and the continuing member the new definition's hash.
    assert state.execute(
        "select account_id, segment_key, contact_id, definition_hash "
        "from segments_history.membership_state order by 1, 2, 3"
    ).fetchall() == [("acme", "vip", "a", "vip-v2")]
    # One row per account and date (accounts move forward independently).
    assert state.execute(
        "select account_id, as_of, entered, exited from segments_history.recorded_dates "
        "order by 1, 2"
    ).fetchall() == [
        ("acme", D1, 2, 0),
        ("acme", D2, 1, 0),
        ("acme", D3, 0, 2),
        ("globex", D1, 1, 0),
        ("globex", D2, 0, 1),
        ("globex", D3, 0, 0),
    ]


def test_quarantined_segment_records_no_changes_and_a_stale_size(
    state: psycopg.Connection,
) -> None:
    set_catalogue(state, [("acme", "vip"), ("acme", "buyers")])
    run(state, D1, {("acme", "vip"): ["a", "b"], ("acme", "buyers"): ["c"]})
    run(
        state,
        D2,
        {("acme", "vip"): ["e", "f"], ("acme", "buyers"): ["c", "d"]},
        quarantined={("acme", "vip"): "bounds"},
    )
    assert changes(state, D2) == [(D2, "acme", "buyers", "d", "entered", "buyers-v1")]
    assert sizes(state, D2) == [
        ("acme", "buyers", 2, 1, 0, False),
        ("acme", "vip", 2, 0, 0, True),
    ]


def test_rewind_rewrites_history_from_that_date(state: psycopg.Connection) -> None:
    set_catalogue(state, [("acme", "vip")])
    run(state, D1, {("acme", "vip"): ["a"]})
    run(state, D3, {("acme", "vip"): ["a", "b"]})
    # Without allow_rewind the older date is refused before anything is written.
    with pytest.raises(PublishRewindError, match="acme already shows as-of 2026-11-03"):
        publish(D2, "backfill", {})
    assert changes(state)[-1][0] == D3

    # Serving rolled back on purpose: in the same transaction, acme's history after D2 is
    # deleted (it no longer describes what serving shows), so D2 records against D1.
    set_membership(state, {("acme", "vip"): ["a", "c"]})
    publish(D2, "backfill", {}, allow_rewind=True)
    assert changes(state) == [(D1, "acme", "vip", "a", "entered", "vip-v1")]
    summary = record_history(D2, "backfill")
    assert (summary["entered"], summary["exited"], summary["rerun"]) == (1, 0, False)
    assert changes(state) == [
        (D1, "acme", "vip", "a", "entered", "vip-v1"),
        (D2, "acme", "vip", "c", "entered", "vip-v1"),
    ]
    # member_since follows history: a stayed a member since D1, c started on D2.
    assert members(state, "acme", "vip") == {"a": D1, "c": D2}
    assert replay_membership(state, "acme", D2) == {("vip", "a"): D1, ("vip", "c"): D2}

    # The refusal outside that path stays: history never takes a date before its latest.
    with pytest.raises(HistoryError, match="serving shows as-of 2026-11-02"):
        record_history(D1, "late", ["acme"])


def test_a_date_that_was_not_published_is_refused(state: psycopg.Connection) -> None:
    set_catalogue(state, [("acme", "vip")])
    with pytest.raises(HistoryError, match="serving shows nothing"):
        record_history(D1, "r")
    run(state, D1, {("acme", "vip"): ["a"]})
    with pytest.raises(HistoryError, match="serving shows as-of 2026-11-01"):
        record_history(D2, "r")
    assert changes(state) == [(D1, "acme", "vip", "a", "entered", "vip-v1")]
