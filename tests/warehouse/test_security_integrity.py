"""Write-audit-publish integrity and concurrent runs (issue 8: H2, M1, L4).

- H2: what is published is exactly what the audit checked. A rebuild between audit and
  publish (any of the candidate's relations: membership, catalogue, group assignments, staged
  contacts, the as-of date) is refused with a message saying what changed, and serving stays
  unchanged. A rebuild during the audit fails the audit.
- H2 lock: build, audit and publish of two runs never interleave (the run lease): a second
  run is refused with who holds the lease and since when; the same run id re-enters; a dead
  holder or an expired lease is taken over. (Two real `segments run` processes:
  tests/e2e/test_concurrent_runs.py.)
- M1: a reader cannot block a publish or history with a lock (the old advisory key, or any
  lock mode on any table it can name).
- L4: a quarantined segment keeps its recipients as well as its members.

Every test talks to the real test database, on small fixture tables (no dbt).
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _publish import (
    fingerprint,
    free_lease,
    publish_state,
    reader_login,
    set_catalogue,
    set_contacts,
    set_membership,
)
from psycopg import errors, sql

from segmentation.errors import PublishError, SegmentationError
from segmentation.steps import audit, pipeline
from segmentation.steps.history import record_history
from segmentation.steps.publish import publish

D1, D2 = dt.date(2026, 11, 20), dt.date(2026, 11, 21)
PROJECT = Path(__file__).resolve().parents[2]

CONTACTS = [f"c{i:03d}" for i in range(120)]


@pytest.fixture
def cand(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """acme: vip (55 members), buyers (107), tier group assignments; globex: vip (9)."""
    with publish_state(db) as conn:
        conn.execute("drop table if exists segments_audit.int_segment_as_of")
        free_lease(conn)
        set_contacts(
            conn,
            [
                (c, "acme", f"{c}@example.com", f"+6281200{i:05d}", True, True, True)
                for i, c in enumerate(CONTACTS)
            ]
            + [
                (f"g{i}", "globex", f"g{i}@example.com", None, False, True, False) for i in range(9)
            ],
        )
        set_catalogue(conn, [("acme", "vip"), ("acme", "buyers"), ("globex", "vip")])
        set_membership(
            conn,
            {
                ("acme", "vip"): CONTACTS[:55],
                ("acme", "buyers"): CONTACTS[:107],
                ("globex", "vip"): [f"g{i}" for i in range(9)],
            },
        )
        conn.execute(
            "create table segments_audit.segment_group_assignments "
            "(account_id text, group_key text, contact_id text, segment_key text)"
        )
        conn.execute(
            "insert into segments_audit.segment_group_assignments "
            "select 'acme', 'tier', contact_id, 'vip' from segments_audit.segment_memberships "
            "where segment_key = 'vip' and account_id = 'acme'"
        )
        conn.execute(
            "create table segments_audit.int_segment_as_of (account_id text, as_of_date date)"
        )
        conn.execute(
            "insert into segments_audit.int_segment_as_of values ('acme', %s), ('globex', %s)",
            (D1, D1),
        )
        try:
            yield conn
        finally:
            free_lease(conn)
            conn.execute("drop table if exists segments_audit.int_segment_as_of")


def _audit(run_id: str, as_of: dt.date = D1) -> audit.AuditResult:
    result = audit.run_audit(as_of, run_id, last_counts={})
    assert not result.global_failures, result.summary()
    return result


# --- H2: what is published is what was audited -----------------------------------------------

# Rebuilds of every relation publish reads, with other fields and values than the issue's.
REBUILDS = {
    # acme/vip shrinks (55 -> 5 members), as in the issue
    "fewer members": (
        "delete from segments_audit.segment_memberships "
        "where account_id = 'acme' and segment_key = 'vip' and contact_id > 'c004'",
        "acme/vip: members: 55 -> 5 row(s)",
    ),
    # same count, other contacts: only the content hash can tell
    "same count, other members": (
        "update segments_audit.segment_memberships set contact_id = 'c119' "
        "where account_id = 'acme' and segment_key = 'vip' and contact_id = 'c000'",
        "acme/vip: members: 55 row(s), content hash",
    ),
    "a member of a new segment": (
        "insert into segments_audit.segment_memberships values ('globex', 'new', 'g1')",
        "globex/new: members: not in the audited candidate",
    ),
    "catalogue: looser bounds": (
        "update segments_audit.segment_catalogue set expect_max_members = 1000000 "
        "where account_id = 'globex' and segment_key = 'vip'",
        "globex/vip: catalogue row",
    ),
    "catalogue: segment disabled": (
        "update segments_audit.segment_catalogue set enabled = false "
        "where account_id = 'acme' and segment_key = 'buyers'",
        "acme/buyers: catalogue row",
    ),
    "group assignments": (
        "update segments_audit.segment_group_assignments set segment_key = 'buyers' "
        "where contact_id = 'c001'",
        "acme/tier: group assignments",
    ),
    "staged contact: consent": (
        "update segments_staging.stg_crm__contacts set consent_email = false "
        "where contact_id = 'g3'",
        "globex: staged contacts",
    ),
    "staged contact: address": (
        "update segments_staging.stg_crm__contacts set phone = '+6289999999999' "
        "where contact_id = 'c010'",
        "acme: staged contacts",
    ),
    "built for another date": (
        "update segments_audit.int_segment_as_of set as_of_date = '2026-12-24' "
        "where account_id = 'globex'",
        "globex: as-of date: audited 2026-11-20, now 2026-12-24",
    ),
}


@pytest.mark.parametrize("rebuild", REBUILDS, ids=list(REBUILDS))
def test_a_rebuild_between_audit_and_publish_is_refused(
    cand: psycopg.Connection, gx_dir: Path, rebuild: str
) -> None:
    result = _audit("run-audited")
    before = fingerprint(cand)
    statement, expected = REBUILDS[rebuild]
    cand.execute(statement)  # another run, a backfill or a manual dbt build

    with pytest.raises(PublishError) as caught:
        pipeline.publish(D1, "run-audited", result)

    message = str(caught.value)
    assert expected in message
    assert "rebuilt after the audit" in message
    assert "Rerun build and audit" in message
    assert fingerprint(cand) == before  # nothing published, no publish_log row


def test_the_audited_candidate_publishes_and_a_retry_after_a_rebuild_is_refused(
    cand: psycopg.Connection, gx_dir: Path
) -> None:
    result = _audit("run-1")
    published = pipeline.publish(D1, "run-1", result)
    assert published.counts == {"acme": {"buyers": 107, "vip": 55}, "globex": {"vip": 9}}
    record_history(D1, "run-1")
    after_first = fingerprint(cand)

    # The publish task is retried after someone else's build (for the next day) changed the
    # candidate.
    cand.execute(
        "delete from segments_audit.segment_memberships where contact_id > 'c010' "
        "and account_id = 'acme'"
    )
    cand.execute("update segments_audit.int_segment_as_of set as_of_date = %s", (D2,))
    with pytest.raises(PublishError, match=r"acme/buyers: members: 107 -> 11 row\(s\)"):
        pipeline.publish(D1, "run-1", result)
    assert fingerprint(cand) == after_first

    # Recovery needs no manual call: a new build and audit of the changed candidate publishes
    # it (its own bounds are checked against the good baseline, which was kept).
    again = audit.run_audit(D2, "run-2")
    assert set(again.quarantined) == {("acme", "buyers"), ("acme", "vip")}
    pipeline.publish(D2, "run-2", again)
    with cand.cursor() as cur:
        counts = dict(
            cur.execute(
                "select segment_key, member_count from segments_serving.segments "
                "where account_id = 'acme'"
            ).fetchall()
        )
    assert counts == {"buyers": 107, "vip": 55}


def test_publish_refuses_an_audit_verdict_it_was_not_given(
    cand: psycopg.Connection, gx_dir: Path
) -> None:
    result = _audit("run-1")
    before = fingerprint(cand)
    forged = audit.AuditResult(quarantined={("acme", "vip"): "forged"}, audit_id=result.audit_id)
    with pytest.raises(PublishError, match="not those audit"):
        pipeline.publish(D1, "run-1", forged)
    with pytest.raises(PublishError, match="checked run run-1"):
        pipeline.publish(D1, "run-other", result)
    with pytest.raises(SegmentationError, match="names no recorded audit"):
        pipeline.publish(D1, "run-1", audit.AuditResult())
    assert fingerprint(cand) == before


def test_a_rebuild_during_the_audit_fails_the_audit(
    cand: psycopg.Connection, gx_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = audit._run_checkpoint

    def checkpoint_with_a_concurrent_build(run_id: str, as_of: dt.date) -> object:
        with psycopg.connect(autocommit=True) as other:
            other.execute(
                "delete from segments_audit.segment_memberships where segment_key = 'vip' "
                "and account_id = 'globex' and contact_id <> 'g0'"
            )
        return real(run_id, as_of)

    monkeypatch.setattr(audit, "_run_checkpoint", checkpoint_with_a_concurrent_build)
    result = audit.run_audit(D1, "run-1", last_counts={})

    assert any(
        "changed while it was audited" in f and "globex/vip: members: 9 -> 1" in f
        for f in result.global_failures
    ), result.summary()


def test_a_candidate_built_for_another_date_fails_the_audit(
    cand: psycopg.Connection, gx_dir: Path
) -> None:
    result = audit.run_audit(D2, "run-d2", last_counts={})
    assert any(
        "was built for as-of 2026-11-20, not 2026-11-21" in f for f in result.global_failures
    )


# --- H2: the run lease ------------------------------------------------------------------------

HOLD = """
import datetime as dt, sys, time
from segmentation.warehouse import control
as_of, run_id, seconds = dt.date.fromisoformat(sys.argv[1]), sys.argv[2], float(sys.argv[3])
with control.hold(as_of, run_id):
    print("held", flush=True)
    time.sleep(seconds)
print("done", flush=True)
"""


def _hold(as_of: dt.date, run_id: str, seconds: float) -> subprocess.Popen[str]:
    """A step of run `run_id` in its own process (as a DAG task is) holding the lease."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, as_of.isoformat(), run_id, str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "held", line + proc.stdout.read()
    return proc


def _step(as_of: dt.date, run_id: str) -> None:
    from segmentation.warehouse import control

    with control.hold(as_of, run_id):
        pass


@pytest.fixture
def lease(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    free_lease(db)
    yield db
    free_lease(db)


def test_a_second_run_is_refused_while_a_step_runs_and_between_steps(
    lease: psycopg.Connection,
) -> None:
    from segmentation.errors import RunLockedError

    first = _hold(D1, "scheduled__A", 3)
    with pytest.raises(RunLockedError) as caught:
        _step(D1, "backfill__B")
    message = str(caught.value)
    assert "run scheduled__A (as-of 2026-11-20) holds it since" in message
    assert "a step is running now" in message
    assert "Wait for that run to finish" in message
    first.communicate(timeout=60)
    assert first.returncode == 0

    # Between two DAG tasks of A (no process holds it), B is still refused, and A's next task
    # (or an Airflow retry: the same run id) re-enters.
    with pytest.raises(RunLockedError, match="between steps"):
        _step(D2, "backfill__B")
    _step(D1, "scheduled__A")
    with pytest.raises(RunLockedError, match="for as-of 2026-11-20, not 2026-11-21"):
        _step(D2, "scheduled__A")

    pipeline.finish(audit.AuditResult(), "scheduled__A")  # releases
    _step(D2, "backfill__B")


def test_a_dead_holder_is_taken_over_at_once_and_an_idle_one_on_expiry(
    lease: psycopg.Connection,
) -> None:
    from segmentation.errors import RunLockedError

    victim = _hold(D1, "killed__A", 600)
    victim.send_signal(signal.SIGKILL)  # a worker dies mid-step: no cleanup runs
    victim.wait(timeout=60)
    deadline = time.monotonic() + 30
    while True:  # the server notices the closed connection within moments
        try:
            _step(D1, "next__B")
            break
        except RunLockedError:
            assert time.monotonic() < deadline, "the dead holder's lease was never taken over"
            time.sleep(0.2)

    # B's step ended normally: its lease lasts SEGMENTS_LEASE_TTL_SECONDS for its next task.
    with pytest.raises(RunLockedError):
        _step(D1, "other__C")
    lease.execute("update segments_control.run_lease set expires_at = now() - interval '1 s'")
    _step(D1, "other__C")  # expired: taken over
    row = lease.execute("select run_id from segments_control.run_lease").fetchone()
    assert row == ("other__C",)


def test_the_dag_failure_callback_releases_the_runs_lease(lease: psycopg.Connection) -> None:
    from segmentation.steps import airflow_support

    _step(D1, "scheduled__failed")  # the build task succeeded; a later task then failed
    airflow_support.on_failure({"run_id": "other", "exception": RuntimeError("x")})
    assert lease.execute("select run_id from segments_control.run_lease").fetchone() == (
        "scheduled__failed",
    )
    airflow_support.on_failure({"run_id": "scheduled__failed", "exception": RuntimeError("x")})
    assert lease.execute("select run_id from segments_control.run_lease").fetchone() == (None,)
    _step(D2, "scheduled__next")


def test_publish_refuses_while_another_run_holds_the_lease(
    cand: psycopg.Connection, gx_dir: Path
) -> None:
    from segmentation.errors import RunLockedError

    result = _audit("run-1")
    before = fingerprint(cand)
    other = _hold(D1, "intruder", 600)
    try:
        with pytest.raises(RunLockedError, match="run intruder"):
            pipeline.publish(D1, "run-1", result)
        with pytest.raises(RunLockedError, match="run intruder"):
            # Even a direct call with the audit id checks the lease inside its transaction.
            publish(D1, "run-1", {}, audit_id=result.audit_id)
    finally:
        other.kill()
        other.wait(timeout=60)
    assert fingerprint(cand) == before


# --- M1: a reader cannot block a publish ---------------------------------------------------


def test_a_reader_cannot_block_publish_or_history(
    cand: psycopg.Connection, pg_database: str
) -> None:
    publish(D1, "r1", {})
    with reader_login(cand, pg_database) as login, login.connect(autocommit=False) as reader:
        reader.execute("set app.account_id = 'acme'")
        # The old key: any role may take an advisory lock, and keep it for its session.
        reader.execute("select pg_advisory_lock(hashtext('segments_serving.publish'))")
        reader.execute("select pg_advisory_xact_lock(hashtext('segments_serving.publish'))")
        set_membership(cand, {("acme", "vip"): CONTACTS[:50], ("globex", "vip"): ["g0"]})
        result = publish(D2, "r2", {}, lock_timeout="3s")
        assert result.counts["acme"]["vip"] == 50
        record_history(D2, "r2")
        reader.rollback()

        # The new lock, and every control table, is out of its reach in every mode.
        for table in ("publish_lock", "run_lease", "audits", "audit_fingerprints"):
            for mode in ("access share", "row exclusive", "exclusive", "access exclusive"):
                with pytest.raises(errors.InsufficientPrivilege):
                    reader.execute(
                        sql.SQL("lock table {} in " + mode + " mode").format(
                            sql.Identifier("segments_control", table)
                        )
                    )
                reader.rollback()
            with pytest.raises(errors.InsufficientPrivilege):
                reader.execute(
                    sql.SQL("select * from {}").format(sql.Identifier("segments_control", table))
                )
            reader.rollback()

        # What it may lock (its reads on the tables it can select) does not block writes.
        for table in ("segments", "segment_members", "group_assignments", "broadcast_recipients"):
            reader.execute(
                sql.SQL("lock table {} in access share mode").format(
                    sql.Identifier("segments_serving", table)
                )
            )
            with pytest.raises(errors.InsufficientPrivilege), reader.transaction():
                reader.execute(
                    sql.SQL("lock table {} in share mode").format(
                        sql.Identifier("segments_serving", table)
                    )
                )
        # It holds those locks (and the advisory one) in an open transaction meanwhile.
        set_membership(cand, {("acme", "vip"): CONTACTS[:40], ("globex", "vip"): ["g0"]})
        result = publish(D2 + dt.timedelta(days=1), "r3", {}, lock_timeout="3s")
        assert result.counts["acme"]["vip"] == 40
        record_history(D2 + dt.timedelta(days=1), "r3")
        reader.rollback()


# --- L4: quarantine freezes recipients too --------------------------------------------------


def test_a_quarantined_segment_keeps_its_recipients(cand: psycopg.Connection) -> None:
    publish(D1, "r1", {})

    def recipients(segment: str) -> set[tuple[str, str, str]]:
        return set(
            cand.execute(
                "select contact_id, channel, address from segments_serving.broadcast_recipients "
                "where account_id = 'acme' and segment_key = %s",
                (segment,),
            ).fetchall()
        )

    vip_before, buyers_before = recipients("vip"), recipients("buyers")
    assert len(vip_before) == 55 * 3
    # 95% of acme's contacts are soft-deleted (gone from staging); one survivor withdrew
    # WhatsApp consent and another changed address.
    survivors = CONTACTS[::20]  # c000, c020, ...
    cand.execute(
        "delete from segments_staging.stg_crm__contacts "
        "where account_id = 'acme' and not contact_id = any(%s)",
        (survivors,),
    )
    cand.execute(
        "update segments_staging.stg_crm__contacts set consent_whatsapp = false "
        "where contact_id = 'c000'"
    )
    cand.execute(
        "update segments_staging.stg_crm__contacts set email = 'new.c020@example.com' "
        "where contact_id = 'c020'"
    )
    set_membership(cand, {("acme", "vip"): ["c000", "c020"], ("globex", "vip"): ["g0"]})
    publish(D2, "r2", {("acme", "vip"): "member count changed from 55 to 2"})

    # The quarantined segment keeps its members and its recipients; consent still applies.
    expected = {r for r in vip_before if not (r[0] == "c000" and r[1] == "whatsapp")}
    expected = {r for r in expected if not (r[0] == "c020" and r[1] == "email")}
    expected.add(("c020", "email", "new.c020@example.com"))
    assert recipients("vip") == expected
    assert cand.execute(
        "select member_count, stale from segments_serving.segments "
        "where account_id = 'acme' and segment_key = 'vip'"
    ).fetchone() == (55, True)
    # A segment that published follows the candidate (buyers is no longer in it: removed).
    assert recipients("buyers") == set() and buyers_before
