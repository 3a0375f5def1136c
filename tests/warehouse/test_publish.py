"""The publish to segments_serving, on small candidate tables in the real schemas."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from _publish import (
    fingerprint,
    members,
    publish_state,
    set_catalogue,
    set_contacts,
    set_membership,
)

from segmentation.errors import PublishError, PublishRewindError
from segmentation.steps.publish import last_published_counts, publish

D1, D2, D3, D4 = (dt.date(2026, 11, d) for d in (1, 2, 3, 4))


@pytest.fixture
def state(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    with publish_state(db) as conn:
        yield conn


def _contacts(account: str, ids: list[str]) -> list[tuple]:
    return [
        (c, account, f"{c}@example.com", "+628123456" + str(i).zfill(4), True, True, True)
        for i, c in enumerate(ids)
    ]


def test_round_trip_publishes_catalogue_members_and_log(state: psycopg.Connection) -> None:
    set_contacts(state, _contacts("acme", ["c1", "c2", "c3"]) + _contacts("globex", ["g1"]))
    set_catalogue(
        state,
        [("acme", "vip"), ("acme", "empty_seg"), ("globex", "vip")],
        disabled=[("acme", "old")],
    )
    set_membership(
        state,
        {
            ("acme", "vip"): ["c1", "c2", "c2"],  # a duplicate row must not double-count
            ("acme", "old"): ["c3"],  # disabled: never published
            ("acme", "unknown"): ["c3"],  # not in the catalogue: ignored
            ("globex", "vip"): ["g1"],
        },
    )

    result = publish(D1, "run-1", {})

    assert result.status == "published"
    assert (result.published, result.quarantined) == (3, 0)
    assert result.counts == {"acme": {"empty_seg": 0, "vip": 2}, "globex": {"vip": 1}}
    rows = state.execute(
        "select account_id, segment_key, name, owner, tags, definition_hash, member_count, "
        "as_of, stale, stale_reason, published_at is not null "
        "from segments_serving.segments order by 1, 2"
    ).fetchall()
    assert rows == [
        (
            "acme",
            "empty_seg",
            "Empty Seg",
            "crm-team",
            ["test"],
            "empty_seg-v1",
            0,
            D1,
            False,
            None,
            True,
        ),
        ("acme", "vip", "Vip", "crm-team", ["test"], "vip-v1", 2, D1, False, None, True),
        ("globex", "vip", "Vip", "crm-team", ["test"], "vip-v1", 1, D1, False, None, True),
    ]
    assert members(state, "acme", "vip") == {"c1": D1, "c2": D1}
    assert members(state, "acme", "old") == {}
    log = state.execute(
        "select account_id, run_id, as_of, segments_published, segments_quarantined, status "
        "from segments_serving.publish_log order by publish_id"
    ).fetchall()
    # One row per account (serving contract 2): each account is its own publish.
    assert log == [
        ("acme", "run-1", D1, 2, 0, "published"),
        ("globex", "run-1", D1, 1, 0, "published"),
    ]
    assert last_published_counts() == {
        ("acme", "empty_seg"): 0,
        ("acme", "vip"): 2,
        ("globex", "vip"): 1,
    }

    # The next day the segment "empty_seg" is removed from the definitions: it leaves serving.
    set_catalogue(state, [("acme", "vip"), ("globex", "vip")])
    result = publish(D2, "run-2", {})
    assert result.counts == {"acme": {"vip": 2}, "globex": {"vip": 1}}


def test_quarantine_keeps_last_good_membership_and_flags_it(state: psycopg.Connection) -> None:
    set_contacts(state, _contacts("acme", [f"c{i}" for i in range(10)]))
    set_catalogue(state, [("acme", "vip"), ("acme", "buyers")])
    set_membership(state, {("acme", "vip"): ["c1", "c2", "c3"], ("acme", "buyers"): ["c4"]})
    publish(D1, "run-1", {})
    first = state.execute(
        "select published_at from segments_serving.segments where segment_key = 'vip'"
    ).fetchone()[0]

    # The next candidate changes both; the audit quarantines vip only.
    set_catalogue(state, [("acme", "vip"), ("acme", "buyers")], hash_suffix="v2")
    set_membership(state, {("acme", "vip"): ["c9"], ("acme", "buyers"): ["c4", "c5"]})
    reason = "member count 1 is below expect.min_members 2"
    result = publish(D2, "run-2", {("acme", "vip"): reason})

    assert result.status == "partial"
    assert (result.published, result.quarantined) == (1, 1)
    assert result.stale == {"acme": {"vip": reason}}
    assert members(state, "acme", "vip") == {"c1": D1, "c2": D1, "c3": D1}
    assert members(state, "acme", "buyers") == {"c4": D1, "c5": D2}
    vip = state.execute(
        "select member_count, as_of, published_at, definition_hash, stale, stale_reason "
        "from segments_serving.segments where segment_key = 'vip'"
    ).fetchone()
    assert vip == (3, D1, first, "vip-v1", True, reason)
    recipients = state.execute(
        "select distinct contact_id from segments_serving.broadcast_recipients "
        "where segment_key = 'vip' order by 1"
    ).fetchall()
    assert recipients == [("c1",), ("c2",), ("c3",)]
    assert state.execute(
        "select status, segments_quarantined from segments_serving.publish_log "
        "order by publish_id desc limit 1"
    ).fetchone() == ("partial", 1)
    assert last_published_counts()[("acme", "vip")] == 3

    # When the audit passes again, the segment publishes and is no longer stale.
    result = publish(D3, "run-3", {})
    assert result.status == "published"
    assert members(state, "acme", "vip") == {"c9": D3}
    assert state.execute(
        "select stale, stale_reason, as_of from segments_serving.segments where segment_key = 'vip'"
    ).fetchone() == (False, None, D3)


def test_quarantined_segment_that_never_published_is_listed_without_members(
    state: psycopg.Connection,
) -> None:
    set_contacts(state, _contacts("acme", ["c1"]))
    set_catalogue(state, [("acme", "vip"), ("acme", "new_seg")])
    set_membership(state, {("acme", "vip"): ["c1"], ("acme", "new_seg"): ["c1"]})

    result = publish(D1, "run-1", {("acme", "new_seg"): "too many members"})

    row = state.execute(
        "select member_count, as_of, published_at, stale, stale_reason "
        "from segments_serving.segments where segment_key = 'new_seg'"
    ).fetchone()
    assert row == (0, None, None, True, "too many members")
    assert members(state, "acme", "new_seg") == {}
    assert result.counts == {"acme": {"new_seg": 0, "vip": 1}}
    assert ("acme", "new_seg") not in last_published_counts()


def test_publishing_the_same_candidate_twice_changes_only_published_at_and_log(
    state: psycopg.Connection,
) -> None:
    set_contacts(state, _contacts("acme", ["c1", "c2", "c3"]))
    set_catalogue(state, [("acme", "vip"), ("acme", "buyers")])
    set_membership(state, {("acme", "vip"): ["c1", "c2"], ("acme", "buyers"): ["c3"]})
    publish(D1, "run-1", {("acme", "buyers"): "bounds"})
    before = fingerprint(state)
    segments_query = "select * from segments_serving.segments order by 1, 2"
    before_segments = state.execute(segments_query).fetchall()
    # xmin is the writing transaction: unchanged xmin means the row was not rewritten.
    versions = "select string_agg(xmin::text, ',' order by contact_id) from {}"
    before_versions = state.execute(versions.format("segments_serving.segment_members")).fetchone()

    publish(D1, "run-1-retry", {("acme", "buyers"): "bounds"})

    after = fingerprint(state)
    for table in ("segment_members", "group_assignments", "broadcast_recipients"):
        assert after[table] == before[table], table
    after_segments = state.execute(segments_query).fetchall()
    published_at = 10  # column position in the contract

    def without_published_at(rows: list[tuple]) -> list[tuple]:
        return [r[:published_at] + r[published_at + 1 :] for r in rows]

    assert without_published_at(after_segments) == without_published_at(before_segments)
    assert [r[published_at] for r in after_segments] != [r[published_at] for r in before_segments]
    assert state.execute("select count(*) from segments_serving.publish_log").fetchone()[0] == 2
    assert (
        state.execute(versions.format("segments_serving.segment_members")).fetchone()
        == before_versions
    )


def test_member_since_across_enter_stay_exit_reenter(state: psycopg.Connection) -> None:
    set_contacts(state, _contacts("acme", ["a", "b", "c"]))
    set_catalogue(state, [("acme", "vip")])

    set_membership(state, {("acme", "vip"): ["a", "b"]})
    publish(D1, "r1", {})
    assert members(state, "acme", "vip") == {"a": D1, "b": D1}

    set_membership(state, {("acme", "vip"): ["a", "c"]})  # a stays, b exits, c enters
    publish(D2, "r2", {})
    assert members(state, "acme", "vip") == {"a": D1, "c": D2}

    set_membership(state, {("acme", "vip"): ["a", "b"]})  # b re-enters, c exits
    publish(D3, "r3", {})
    assert members(state, "acme", "vip") == {"a": D1, "b": D3}


def test_recipients_need_consent_and_a_valid_address_per_channel(
    state: psycopg.Connection,
) -> None:
    set_contacts(
        state,
        [
            # contact, account, email, phone, whatsapp, email, sms consent
            ("all", "acme", "all@example.com", "+6281200000001", True, True, True),
            ("wa_only", "acme", "wa@example.com", "+6281200000002", True, False, False),
            ("no_consent", "acme", "nc@example.com", "+6281200000003", False, False, False),
            ("bad_phone", "acme", "bp@example.com", "0812-bad", True, True, True),
            ("no_email", "acme", None, "+6281200000005", False, True, True),
            ("bad_email", "acme", "not-an-email", None, True, True, False),
            ("not_member", "acme", "nm@example.com", "+6281200000007", True, True, True),
            ("all", "globex", "other@example.com", "+6281299999999", True, True, True),
        ],
    )
    set_catalogue(state, [("acme", "vip")])
    set_membership(
        state,
        {
            ("acme", "vip"): [
                "all",
                "wa_only",
                "no_consent",
                "bad_phone",
                "no_email",
                "bad_email",
                "ghost",
            ]
        },
    )

    publish(D1, "r1", {})

    rows = state.execute(
        "select contact_id, channel, address from segments_serving.broadcast_recipients "
        "order by 1, 2"
    ).fetchall()
    assert rows == [
        ("all", "email", "all@example.com"),
        ("all", "sms", "+6281200000001"),
        ("all", "whatsapp", "+6281200000001"),
        ("bad_phone", "email", "bp@example.com"),
        ("no_email", "sms", "+6281200000005"),
        ("wa_only", "whatsapp", "+6281200000002"),
    ]

    # Consent withdrawn and an address changed: the next publish follows, row by row.
    state.execute(
        "update segments_staging.stg_crm__contacts set consent_sms = false, "
        "email = 'new@example.com' where contact_id = 'all' and account_id = 'acme'"
    )
    publish(D2, "r2", {})
    rows = state.execute(
        "select channel, address from segments_serving.broadcast_recipients "
        "where contact_id = 'all' order by 1"
    ).fetchall()
    assert rows == [("email", "new@example.com"), ("whatsapp", "+6281200000001")]


def test_recipients_follow_the_staging_address_rules(state: psycopg.Connection) -> None:
    # The one E.164 rule (dbt var address_rules): 8-15 digits, as staging keeps them. A
    # 7-digit number is no recipient; nor an upper-case or '..' address staging would null.
    set_contacts(
        state,
        [
            ("seven", "acme", "Seven@Example.com", "+6212345", True, True, True),
            ("eight", "acme", "a..b@example.com", "+62123456", True, True, True),
            ("fifteen", "acme", "ok@example.co.id", "+621234567890123", True, True, True),
            ("sixteen", "acme", None, "+6212345678901234", True, False, True),
        ],
    )
    set_catalogue(state, [("acme", "vip")])
    set_membership(state, {("acme", "vip"): ["seven", "eight", "fifteen", "sixteen"]})

    publish(D1, "r1", {})

    rows = state.execute(
        "select contact_id, channel, address from segments_serving.broadcast_recipients "
        "order by 1, 2"
    ).fetchall()
    assert rows == [
        ("eight", "sms", "+62123456"),
        ("eight", "whatsapp", "+62123456"),
        ("fifteen", "email", "ok@example.co.id"),
        ("fifteen", "sms", "+621234567890123"),
        ("fifteen", "whatsapp", "+621234567890123"),
    ]


def test_group_assignments_follow_the_candidate_and_quarantine(
    state: psycopg.Connection,
) -> None:
    set_contacts(state, _contacts("acme", ["c1", "c2", "c3"]))
    set_catalogue(state, [("acme", "gold"), ("acme", "silver")])
    set_membership(state, {("acme", "gold"): ["c1"], ("acme", "silver"): ["c2", "c3"]})
    # Without the (later) group relations there are no assignments, and no error.
    publish(D1, "r0", {})
    assert state.execute("select count(*) from segments_serving.group_assignments").fetchone() == (
        0,
    )

    state.execute(
        "create table segments_audit.segment_group_assignments "
        "(account_id text, group_key text, contact_id text, segment_key text)"
    )
    state.execute(
        "insert into segments_audit.segment_group_assignments values "
        "('acme', 'tier', 'c1', 'gold'), ('acme', 'tier', 'c2', 'silver'), "
        "('acme', 'tier', 'c3', 'silver'), ('acme', 'tier', 'c4', 'everyone_else')"
    )
    publish(D2, "r1", {})
    query = "select contact_id, segment_key from segments_serving.group_assignments order by 1"
    # A group's fallback label is not a segment of the catalogue, and is published too.
    assert state.execute(query).fetchall() == [
        ("c1", "gold"),
        ("c2", "silver"),
        ("c3", "silver"),
        ("c4", "everyone_else"),
    ]

    # gold is quarantined: c1 keeps its frozen gold assignment although the candidate drops
    # it; c3's new gold assignment waits for gold to publish, and silver (published) no
    # longer assigns c3; c2 stays in silver.
    state.execute("truncate segments_audit.segment_group_assignments")
    state.execute(
        "insert into segments_audit.segment_group_assignments values "
        "('acme', 'tier', 'c2', 'silver'), ('acme', 'tier', 'c3', 'gold')"
    )
    publish(D3, "r2", {("acme", "gold"): "bounds"})
    assert state.execute(query).fetchall() == [("c1", "gold"), ("c2", "silver")]


def test_older_as_of_is_refused_unless_rewinding_on_purpose(state: psycopg.Connection) -> None:
    set_contacts(state, _contacts("acme", ["a", "b"]))
    set_catalogue(state, [("acme", "vip")])
    set_membership(state, {("acme", "vip"): ["a"]})
    publish(D3, "r3", {})
    before = fingerprint(state)

    set_membership(state, {("acme", "vip"): ["a", "b"]})
    with pytest.raises(PublishRewindError, match="already shows as-of 2026-11-03"):
        publish(D1, "r1", {})
    assert fingerprint(state) == before

    publish(D2, "r2", {}, allow_rewind=True)
    assert members(state, "acme", "vip") == {"a": D2, "b": D2}


def test_missing_candidate_is_a_clear_error(state: psycopg.Connection) -> None:
    state.execute("drop table segments_audit.segment_memberships")
    with pytest.raises(PublishError, match="segment_memberships does not exist"):
        publish(D1, "r1", {})
    assert fingerprint(state)["publish_log"][0] == 0


def test_views_on_serving_survive_and_follow_a_publish(state: psycopg.Connection) -> None:
    # The pitfall of swaps and dbt rebuilds: a view elsewhere keeps pointing at (or is dropped
    # with) the old table. Publishing only changes rows, so the view follows the new version.
    set_contacts(state, _contacts("acme", ["a", "b", "c"]))
    set_catalogue(state, [("acme", "vip")])
    set_membership(state, {("acme", "vip"): ["a"]})
    publish(D1, "r1", {})
    state.execute(
        "create view segments_audit.zz_vip_members as "
        "select contact_id from segments_serving.segment_members where segment_key = 'vip'"
    )
    try:
        set_membership(state, {("acme", "vip"): ["b", "c"]})
        publish(D2, "r2", {})
        rows = state.execute("select contact_id from segments_audit.zz_vip_members order by 1")
        assert rows.fetchall() == [("b",), ("c",)]
    finally:
        state.execute("drop view segments_audit.zz_vip_members")
