"""History that stays true: serving replayed from history (history.replay_membership) equals
serving after every daily publish, after a rewind, and after a backfill of older dates, per
account; and a rewritten history equals the history of a straight run of the same dates."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import psycopg
import pytest
from _publish import publish_state, set_catalogue, set_contacts, set_membership

from segmentation.errors import PublishRewindError
from segmentation.steps import history
from segmentation.steps.history import record_history
from segmentation.steps.publish import publish

DATES = [dt.date(2026, 11, d) for d in range(1, 7)]
ACCOUNTS = ("acme", "globex")
SEGMENTS = ("vip", "buyers")
CONTACTS = {a: [f"{a[0]}{i}" for i in range(12)] for a in ACCOUNTS}


@pytest.fixture
def state(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    with publish_state(db) as conn:
        set_contacts(
            conn,
            [(c, a, None, None, False, False, False) for a in ACCOUNTS for c in CONTACTS[a]],
        )
        set_catalogue(conn, [(a, s) for a in ACCOUNTS for s in SEGMENTS])
        yield conn


def candidate(seed: int, accounts: tuple[str, ...] = ACCOUNTS) -> dict:
    """A deterministic membership: each contact in each segment with probability 1/2, so
    members enter, stay, exit and re-enter across dates."""
    rng = random.Random(seed)
    return {
        (a, s): [c for c in CONTACTS[a] if rng.random() < 0.5] for a in accounts for s in SEGMENTS
    }


def serving(conn: psycopg.Connection, account: str) -> dict[tuple[str, str], dt.date]:
    rows = conn.execute(
        "select segment_key, contact_id, member_since from segments_serving.segment_members "
        "where account_id = %s",
        (account,),
    ).fetchall()
    return {(s, c): since for s, c, since in rows}


def day(conn: psycopg.Connection, as_of: dt.date, seed: int, **kwargs: object) -> None:
    accounts = kwargs.pop("accounts", ACCOUNTS)
    set_catalogue(conn, [(a, s) for a in accounts for s in SEGMENTS])  # type: ignore[union-attr]
    set_membership(conn, candidate(seed, accounts))  # type: ignore[arg-type]
    result = publish(as_of, f"run-{as_of}-{seed}", {}, **kwargs)  # type: ignore[arg-type]
    record_history(as_of, f"run-{as_of}-{seed}", result.accounts)


def assert_replay_matches(conn: psycopg.Connection, shown: dict[str, dt.date]) -> None:
    for account, as_of in shown.items():
        replayed = history.replay_membership(conn, account, as_of)
        assert replayed == serving(conn, account), (account, as_of)


def history_rows(conn: psycopg.Connection, account: str) -> list[tuple]:
    """The account's history, without run ids and record times (which always differ)."""
    changes = conn.execute(
        "select as_of, segment_key, contact_id, change, definition_hash "
        "from segments_history.membership_changes where account_id = %s order by 1, 2, 3",
        (account,),
    ).fetchall()
    sizes = conn.execute(
        "select as_of, segment_key, member_count, entered, exited, stale "
        "from segments_history.segment_sizes where account_id = %s order by 1, 2",
        (account,),
    ).fetchall()
    dates = conn.execute(
        "select as_of, entered, exited from segments_history.recorded_dates "
        "where account_id = %s order by 1",
        (account,),
    ).fetchall()
    state = conn.execute(
        "select segment_key, contact_id, definition_hash from segments_history.membership_state "
        "where account_id = %s order by 1, 2",
        (account,),
    ).fetchall()
    return [changes, sizes, dates, state]


def test_replay_equals_serving_after_daily_runs_a_rewind_and_a_backfill(
    state: psycopg.Connection,
) -> None:
    for i, as_of in enumerate(DATES[:5]):
        day(state, as_of, seed=i)
        assert_replay_matches(state, {a: as_of for a in ACCOUNTS})
    globex_before = history_rows(state, "globex")

    # Without allow_rewind the older date is refused before anything is written.
    set_membership(state, candidate(100, ("acme",)))
    set_catalogue(state, [("acme", s) for s in SEGMENTS])
    with pytest.raises(PublishRewindError):
        publish(DATES[1], "refused", {})
    assert_replay_matches(state, {"acme": DATES[4]})

    # A rewind of acme alone to D2 with a new candidate: acme's history after D2 is gone,
    # D2 is recorded again, and replay still equals serving; globex is untouched.
    day(state, DATES[1], seed=100, accounts=("acme",), allow_rewind=True)
    recorded = [r[0] for r in history_rows(state, "acme")[2]]
    assert recorded == DATES[:2]
    assert_replay_matches(state, {"acme": DATES[1], "globex": DATES[4]})
    assert history_rows(state, "globex") == globex_before

    # A backfill of the later dates, oldest first (what `airflow backfill create` runs).
    for seed, as_of in enumerate(DATES[2:5], start=101):
        day(state, as_of, seed=seed, accounts=("acme",))
        assert_replay_matches(state, {"acme": as_of, "globex": DATES[4]})

    # A backfill-like sequence of older dates re-run with allow_rewind (each one rewinds).
    for seed, as_of in enumerate(DATES[1:4], start=200):
        day(state, as_of, seed=seed, accounts=("acme",), allow_rewind=True)
        assert_replay_matches(state, {"acme": as_of})
    # Then forward again: a normal day after the backfill.
    day(state, DATES[4], seed=203, accounts=("acme",))
    day(state, DATES[5], seed=204, accounts=("acme",))
    assert_replay_matches(state, {"acme": DATES[5], "globex": DATES[4]})
    # Every earlier date replays to what that date published, too.
    rewritten = history_rows(state, "acme")

    # The rewritten history is exactly the history of a straight run of the same candidates.
    seeds = {DATES[0]: 0, DATES[1]: 200, DATES[2]: 201, DATES[3]: 202, DATES[4]: 203}
    seeds[DATES[5]] = 204
    state.execute("truncate segments_serving.segments, segments_serving.segment_members")
    state.execute("truncate segments_serving.publish_log, segments_serving.broadcast_recipients")
    for table in ("membership_changes", "segment_sizes", "membership_state", "recorded_dates"):
        state.execute(f"truncate segments_history.{table}")
    for as_of, seed in seeds.items():
        day(state, as_of, seed=seed, accounts=("acme",))
    assert history_rows(state, "acme") == rewritten


def test_replay_of_each_past_date_equals_what_that_date_published(
    state: psycopg.Connection,
) -> None:
    published = {}
    for i, as_of in enumerate(DATES[:4]):
        day(state, as_of, seed=10 + i)
        published[as_of] = serving(state, "acme")
    for as_of, shown in published.items():
        assert history.replay_membership(state, "acme", as_of) == shown
