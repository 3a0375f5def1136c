"""Quarantine you can act on (issue 11): bounds for a changed definition, the change floor,
`segments accept`, and the staleness `segments status` / `segments published` show.

Every test runs the real GX audit and the real publish and history on small fixture tables
in the test database (no dbt): acme's vip (55 members) and buyers (107), globex's vip (9).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _publish import (
    fingerprint,
    free_lease,
    members,
    publish_state,
    set_catalogue,
    set_contacts,
    set_membership,
)

from segmentation.cli import main as cli
from segmentation.errors import AcceptError
from segmentation.steps import audit, listing, pipeline
from segmentation.steps.accept import accept
from segmentation.steps.history import record_history
from segmentation.warehouse import control

D1, D2, D3 = dt.date(2026, 11, 20), dt.date(2026, 11, 21), dt.date(2026, 11, 22)
CONTACTS = [f"c{i:03d}" for i in range(120)]
GLOBEX = [f"g{i}" for i in range(9)]
SEGMENTS = [("acme", "vip"), ("acme", "buyers"), ("globex", "vip")]
DAY1 = {
    ("acme", "vip"): CONTACTS[:55],
    ("acme", "buyers"): CONTACTS[:107],
    ("globex", "vip"): GLOBEX,
}


@pytest.fixture
def cand(db: psycopg.Connection, gx_dir: Path) -> Iterator[psycopg.Connection]:
    with publish_state(db) as conn:
        free_lease(conn)
        set_contacts(
            conn,
            [
                (c, "acme", f"{c}@example.com", f"+6281200{i:05d}", True, True, True)
                for i, c in enumerate(CONTACTS)
            ]
            + [(g, "globex", f"{g}@example.com", None, False, True, False) for g in GLOBEX],
        )
        conn.execute("drop table if exists segments_audit.int_segment_as_of")
        conn.execute(
            "create table segments_audit.int_segment_as_of (account_id text, as_of_date date)"
        )
        try:
            yield conn
        finally:
            free_lease(conn)
            conn.execute("drop table if exists segments_audit.int_segment_as_of")
            conn.execute("drop table if exists segments_staging.stg_crm__accounts")


def _run(
    conn: psycopg.Connection,
    as_of: dt.date,
    membership: dict[tuple[str, str], list[str]],
    *,
    run_id: str | None = None,
    hashes: str = "v1",
    segments: list[tuple[str, str]] = SEGMENTS,
) -> audit.AuditResult:
    """One day of the pipeline on the fixtures: the candidate, the GX audit (bases: what is
    published), publish and history. Returns the audit."""
    run_id = run_id or f"run-{as_of}"
    set_catalogue(conn, segments, hash_suffix=hashes)
    set_membership(conn, membership)
    conn.execute("truncate segments_audit.int_segment_as_of")
    conn.execute(
        "insert into segments_audit.int_segment_as_of values ('acme', %s), ('globex', %s)",
        (as_of, as_of),
    )
    result = audit.run_audit(as_of, run_id)
    assert not result.global_failures, result.summary()
    pipeline.publish(as_of, run_id, result)
    record_history(as_of, run_id)
    control.release(run_id)  # what `finish` does first
    return result


def _serving(conn: psycopg.Connection) -> dict[tuple[str, str], tuple]:
    rows = conn.execute(
        "select account_id, segment_key, member_count, as_of, stale, definition_hash "
        "from segments_serving.segments"
    ).fetchall()
    return {(a, s): tuple(rest) for a, s, *rest in rows}


def _replayed(conn: psycopg.Connection, as_of: dt.date) -> dict[tuple[str, str], set[str]]:
    """The membership history implies at `as_of`: every contact whose last change up to
    that date is an entry."""
    rows = conn.execute(
        "select distinct on (account_id, segment_key, contact_id) account_id, segment_key, "
        "contact_id, change from segments_history.membership_changes where as_of <= %s "
        "order by account_id, segment_key, contact_id, as_of desc",
        (as_of,),
    ).fetchall()
    replayed: dict[tuple[str, str], set[str]] = {}
    for a, s, c, change in rows:
        if change == "entered":
            replayed.setdefault((a, s), set()).add(c)
    return replayed


def _published_members(conn: psycopg.Connection) -> dict[tuple[str, str], set[str]]:
    rows = conn.execute(
        "select account_id, segment_key, contact_id from segments_serving.segment_members"
    ).fetchall()
    found: dict[tuple[str, str], set[str]] = {}
    for a, s, c in rows:
        found.setdefault((a, s), set()).add(c)
    return found


# --- bounds for a changed definition, and the change floor ------------------------------------


def test_a_new_definition_hash_with_a_large_change_publishes(cand: psycopg.Connection) -> None:
    _run(cand, D1, DAY1)
    shrunk = {**DAY1, ("acme", "vip"): CONTACTS[:5]}  # 55 -> 5: -91%, 50 members

    # The same rule: the change quarantines, vip keeps its 55 members.
    same = _run(cand, D2, shrunk)
    assert set(same.quarantined) == {("acme", "vip")}
    assert "max_change_pct" in same.quarantined[("acme", "vip")]
    assert _serving(cand)[("acme", "vip")] == (55, D1, True, "vip-v1")

    # A deliberate rule change (a new definition_hash) with the same change publishes.
    changed = _run(cand, D2, shrunk, run_id="run-new-rule", hashes="v2")
    assert changed.quarantined == {}
    assert _serving(cand)[("acme", "vip")] == (5, D2, False, "vip-v2")
    assert set(members(cand, "acme", "vip")) == set(CONTACTS[:5])
    # From now on the new hash is the published one: max_change_pct judges it again.
    again = _run(cand, D3, {**shrunk, ("acme", "vip"): CONTACTS[:60]}, hashes="v2")
    assert set(again.quarantined) == {("acme", "vip")}


def test_a_changed_definition_is_still_held_to_min_and_max_members(
    cand: psycopg.Connection,
) -> None:
    _run(cand, D1, DAY1)
    # globex/vip's new rule matches nobody: below min_members 1 even though it is new.
    result = _run(cand, D2, {**DAY1, ("globex", "vip"): []}, hashes="v2")
    assert result.quarantined == {("globex", "vip"): "member count 0 is below min_members 1"}
    assert _serving(cand)[("globex", "vip")] == (9, D1, True, "vip-v1")


def test_a_change_below_the_floor_never_quarantines(
    cand: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(cand, D1, DAY1)
    small = {**DAY1, ("globex", "vip"): GLOBEX[:2]}  # 9 -> 2: -78%, but 7 members

    assert _run(cand, D2, small).quarantined == {}  # the default floor is 20 members
    assert _serving(cand)[("globex", "vip")] == (2, D2, False, "vip-v1")

    # Without the floor the same change quarantines: it is the floor that let it through.
    monkeypatch.setenv("SEGMENTS_CHANGE_FLOOR", "0")
    result = _run(cand, D3, {**DAY1, ("globex", "vip"): GLOBEX})  # 2 -> 9: +350%
    assert set(result.quarantined) == {("globex", "vip")}


# --- segments accept --------------------------------------------------------------------------


def _quarantine_day2(conn: psycopg.Connection) -> audit.AuditResult:
    _run(conn, D1, DAY1)
    # A real mass deletion: vip 55 -> 5 and buyers 107 -> 11 are both quarantined.
    result = _run(
        conn, D2, {**DAY1, ("acme", "vip"): CONTACTS[:5], ("acme", "buyers"): CONTACTS[:11]}
    )
    assert set(result.quarantined) == {("acme", "vip"), ("acme", "buyers")}
    return result


def test_accept_releases_a_quarantined_segment(cand: psycopg.Connection) -> None:
    _quarantine_day2(cand)
    assert _serving(cand)[("acme", "vip")] == (55, D1, True, "vip-v1")

    result = accept("acme", "vip", reason="the CRM purge was real", by="alice")

    assert (result.as_of, result.run_id, result.members_before, result.members) == (
        D2,
        f"run-{D2}",
        55,
        5,
    )
    assert "max_change_pct" in result.released
    serving = _serving(cand)
    assert serving[("acme", "vip")] == (5, D2, False, "vip-v1")
    assert set(members(cand, "acme", "vip")) == set(CONTACTS[:5])
    # The other quarantine stands: buyers keeps its 107 members, stale.
    assert serving[("acme", "buyers")] == (107, D1, True, "buyers-v1")
    assert len(members(cand, "acme", "buyers")) == 107
    recipients = cand.execute(
        "select count(distinct contact_id) from segments_serving.broadcast_recipients "
        "where account_id = 'acme' and segment_key = 'vip'"
    ).fetchone()[0]
    assert recipients == 5
    log = cand.execute(
        "select run_id, as_of, status, accepted_by, accept_reason, segments_quarantined "
        "from segments_serving.publish_log order by publish_id desc limit 1"
    ).fetchone()
    assert log == (f"run-{D2}", D2, "accepted", "alice", "the CRM purge was real", 1)
    assert result.publish_id is not None

    # History agrees with serving: D2 recorded again, vip fresh with 50 exits.
    size = cand.execute(
        "select member_count, entered, exited, stale from segments_history.segment_sizes "
        "where as_of = %s and account_id = 'acme' and segment_key = 'vip'",
        (D2,),
    ).fetchone()
    assert size == (5, 0, 50, False)
    assert _replayed(cand, D2) == _published_members(cand)

    # Once: the segment is no longer quarantined.
    before = fingerprint(cand)
    with pytest.raises(AcceptError, match="acme/vip: it is not quarantined"):
        accept("acme", "vip", reason="again", by="alice")
    assert fingerprint(cand) == before


def test_accept_from_the_cli_records_the_os_user(
    cand: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    _quarantine_day2(cand)

    assert cli.main(["accept", "acme/buyers", "--reason", "buyers churned"]) == 0

    assert "accepted acme/buyers as of 2026-11-21" in capsys.readouterr().out
    assert cand.execute(
        "select status, accepted_by, accept_reason from segments_serving.publish_log "
        "order by publish_id desc limit 1"
    ).fetchone() == ("accepted", getpass.getuser(), "buyers churned")
    assert _serving(cand)[("acme", "buyers")] == (11, D2, False, "buyers-v1")
    assert _replayed(cand, D2) == _published_members(cand)


def test_accept_refuses_what_it_cannot_release(
    cand: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    _quarantine_day2(cand)
    before = fingerprint(cand)

    refusals = {
        ("acmee", "vip"): "serving has no account 'acmee' (did you mean 'acme'?)",
        ("acme", "vipp"): "serving has no segment 'vipp' for acme (did you mean 'vip'?)",
        ("globex", "vip"): "globex/vip: it is not quarantined (serving shows 9 members",
    }
    for (account, key), message in refusals.items():
        with pytest.raises(AcceptError) as caught:
            accept(account, key, reason="because", by="bob")
        assert message in str(caught.value)
    with pytest.raises(AcceptError, match="needs a reason"):
        accept("acme", "vip", reason="  ", by="bob")
    assert cli.main(["accept", "acme", "--reason", "x"]) == 1
    assert "error: 'acme' is not a segment name" in capsys.readouterr().err

    # The candidate was rebuilt after the audit: it is not what was audited.
    cand.execute(
        "delete from segments_audit.segment_memberships "
        "where account_id = 'acme' and segment_key = 'vip' and contact_id = 'c000'"
    )
    with pytest.raises(AcceptError, match=r"rebuilt after the audit[\s\S]*acme/vip: members"):
        accept("acme", "vip", reason="because", by="bob")

    # A later audit that did not quarantine it: its candidate is not the one held back.
    set_membership(cand, {**DAY1, ("acme", "buyers"): CONTACTS[:11]})
    later = audit.run_audit(D2, "run-later")
    assert set(later.quarantined) == {("acme", "buyers")}
    with pytest.raises(AcceptError, match=r"the latest audit .* did not quarantine it"):
        accept("acme", "vip", reason="because", by="bob")
    # ... and one whose run never published.
    with pytest.raises(AcceptError, match=r"run run-later .* was audited but never published"):
        accept("acme", "buyers", reason="because", by="bob")
    assert fingerprint(cand) == before


# --- status and published: days stale --------------------------------------------------------


def test_status_and_published_show_days_stale(
    cand: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    segments = [*SEGMENTS, ("acme", "new_empty")]
    _run(cand, D1, DAY1)
    shrunk = {**DAY1, ("acme", "vip"): CONTACTS[:5]}
    # D2: vip quarantined (kept as of D1); new_empty never publishes (below min_members 1).
    assert set(_run(cand, D2, shrunk, segments=segments).quarantined) == {
        ("acme", "vip"),
        ("acme", "new_empty"),
    }
    assert set(_run(cand, D3, shrunk, segments=segments).quarantined) == {
        ("acme", "vip"),
        ("acme", "new_empty"),
    }

    states = {(s.account_id, s.segment_key): s for s in listing.segment_states()}
    # vip shows D1's membership while acme is at D3: 2 days; new_empty was first held back
    # on D2, so it too has been stale for 2 days; fresh segments 0.
    assert (states[("acme", "vip")].as_of, states[("acme", "vip")].days_stale) == (D1, 2)
    assert (states[("acme", "new_empty")].as_of, states[("acme", "new_empty")].days_stale) == (
        None,
        2,
    )
    assert states[("acme", "buyers")].days_stale == 0
    assert not states[("acme", "buyers")].stale and states[("acme", "buyers")].as_of == D3

    assert cli.main(["published", "--account", "acme", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    vip = next(s for s in document["segments"] if s["segment"] == "vip")
    assert vip["as_of"] == "2026-11-20" and vip["stale"] is True and vip["days_stale"] == 2
    assert "max_change_pct" in vip["stale_reason"] and vip["published_at"]
    assert {s["account"] for s in document["segments"]} == {"acme"}

    assert cli.main(["published"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("acme: ")
    assert "    as of 2026-11-20, published " in text and ", stale for 2 days: member" in text

    cand.execute(
        "create table segments_staging.stg_crm__accounts (account_id text, package text, "
        "timezone text, timezone_is_valid boolean, timezone_raw text)"
    )
    cand.execute(
        "insert into segments_staging.stg_crm__accounts values "
        "('acme', 'pro', 'Asia/Jakarta', true, 'Asia/Jakarta'), "
        "('globex', 'basic', 'Asia/Makassar', true, 'Asia/Makassar')"
    )
    assert cli.main(["status"]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line}
    assert lines["acme/vip"][1:3] == ["55", "2026-11-20"]
    assert lines["acme/vip"][6:9] == ["yes", "2", "member"]
    assert lines["acme/buyers"][-2:] == ["no", "0"]
    assert cli.main(["status", "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    by_key = {(s["account"], s["segment"]): s for s in status["segments"]}
    assert by_key[("acme", "new_empty")]["days_stale"] == 2
    assert by_key[("acme", "new_empty")]["as_of"] is None
    assert [a["account"] for a in status["accounts"]] == ["acme", "globex"]
