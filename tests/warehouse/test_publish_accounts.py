"""Per-account publish: each account is its own transaction and touches only its own rows,
so a failure in one account leaves the others published and the run fails naming it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from _audit import add_contacts, add_scope, add_segment, create_candidates, drop_candidates
from _publish import (
    HISTORY_TABLES,
    SERVING_TABLES,
    fingerprint,
    members,
    publish_state,
    set_catalogue,
    set_contacts,
    set_membership,
)

from segmentation.errors import AccountFailedError, CandidateChangedError, PublishRewindError
from segmentation.steps import pipeline
from segmentation.steps.audit import AuditResult, run_audit
from segmentation.steps.publish import publish, publish_account

D1, D2, D3 = (dt.date(2026, 11, d) for d in (1, 2, 3))


@pytest.fixture
def state(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    with publish_state(db) as conn:
        set_contacts(
            conn,
            [(c, "acme", f"{c}@example.com", None, False, True, False) for c in "abcd"]
            + [(c, "globex", f"{c}@example.com", None, False, True, False) for c in "wxyz"],
        )
        set_catalogue(conn, [("acme", "vip"), ("globex", "vip")])
        set_membership(conn, {("acme", "vip"): ["a", "b"], ("globex", "vip"): ["w", "x"]})
        publish(D1, "r1", {})
        yield conn


def _log(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "select account_id, as_of, status, segments_published from segments_serving.publish_log "
        "order by publish_id"
    ).fetchall()


def test_each_account_gets_its_own_publish_log_row(state: psycopg.Connection) -> None:
    assert _log(state) == [("acme", D1, "published", 1), ("globex", D1, "published", 1)]


def test_a_failing_account_leaves_the_others_published(state: psycopg.Connection) -> None:
    # globex's candidate catalogue row has no definition_hash: writing its serving row
    # violates NOT NULL inside globex's transaction (the audit would catch it; here the
    # publish itself must contain it).
    set_catalogue(state, [("acme", "vip"), ("globex", "vip")], hash_suffix="v2")
    state.execute(
        "update segments_audit.segment_catalogue set definition_hash = null "
        "where account_id = 'globex'"
    )
    set_membership(state, {("acme", "vip"): ["a", "b", "c"], ("globex", "vip"): ["w", "y"]})

    result = publish(D2, "r2", {})

    assert list(result.failed) == ["globex"]
    assert "globex" in result.failed["globex"] and "definition_hash" in result.failed["globex"]
    assert result.accounts == ["acme"]
    assert set(members(state, "acme", "vip")) == {"a", "b", "c"}
    # globex keeps its last publish, flagged stale with the cause, in its own transaction.
    assert set(members(state, "globex", "vip")) == {"w", "x"}
    row = state.execute(
        "select as_of, stale, stale_reason from segments_serving.segments "
        "where account_id = 'globex'"
    ).fetchone()
    assert row[0] == D1 and row[1] is True
    assert row[2].startswith(f"not refreshed for {D2}:") and "definition_hash" in row[2]
    assert _log(state)[2:] == [("acme", D2, "published", 1), ("globex", D2, "failed", 0)]

    # The run then fails loudly, naming the account, its cause and what to do.
    with pytest.raises(AccountFailedError) as caught:
        pipeline.finish(AuditResult(), None, result.failed)
    message = str(caught.value)
    assert "globex:" in message and "definition_hash" in message and "--account" in message
    assert "acme" not in message


def test_a_run_scoped_to_one_account_never_touches_another(state: psycopg.Connection) -> None:
    # The candidate holds only acme (a run for acme's timezone); globex is not in it.
    set_catalogue(state, [("acme", "vip")])
    set_membership(state, {("acme", "vip"): ["c"]})
    before = state.execute(
        "select * from segments_serving.segments where account_id = 'globex'"
    ).fetchall()

    result = publish(D2, "r2", {})

    assert result.accounts == ["acme"] and result.failed == {}
    assert set(members(state, "acme", "vip")) == {"c"}
    assert set(members(state, "globex", "vip")) == {"w", "x"}
    after = state.execute(
        "select * from segments_serving.segments where account_id = 'globex'"
    ).fetchall()
    assert after == before
    recipients = state.execute(
        "select contact_id from segments_serving.broadcast_recipients "
        "where account_id = 'globex' order by 1"
    ).fetchall()
    assert recipients == [("w",), ("x",)]


def test_accounts_move_forward_independently_and_rewinds_are_refused_first(
    state: psycopg.Connection,
) -> None:
    set_catalogue(state, [("acme", "vip")])
    set_membership(state, {("acme", "vip"): ["c"]})
    publish(D3, "acme-d3", {})  # acme alone moves to D3
    # globex may still publish D2: its own latest is D1.
    set_catalogue(state, [("globex", "vip")])
    set_membership(state, {("globex", "vip"): ["z"]})
    assert publish(D2, "globex-d2", {}).accounts == ["globex"]

    # A run of both accounts for D2 would roll acme back: refused before anything is written.
    set_catalogue(state, [("acme", "vip"), ("globex", "vip")])
    set_membership(state, {("acme", "vip"): ["d"], ("globex", "vip"): ["y"]})
    before = fingerprint(state)
    with pytest.raises(PublishRewindError, match=f"acme already shows as-of {D3}") as caught:
        publish(D2, "both-d2", {})
    assert "globex" not in str(caught.value)
    assert fingerprint(state) == before


@pytest.fixture
def cand(db: psycopg.Connection, gx_dir: object) -> Iterator[psycopg.Connection]:
    """Audit fixtures: acme c0..c9 and globex g0..g4."""
    create_candidates(db)
    add_contacts(db, "acme", 10, prefix="c")
    add_contacts(db, "globex", 5, prefix="g")
    for table in SERVING_TABLES:
        db.execute(f"truncate segments_serving.{table} restart identity")
    for table in HISTORY_TABLES:
        db.execute(f"truncate segments_history.{table}")
    yield db
    drop_candidates(db)


def test_an_audit_failure_of_one_account_fails_only_that_account(
    cand: psycopg.Connection,
) -> None:
    add_segment(cand, "acme", "vip", ["c0", "c1"])
    add_segment(cand, "globex", "vip", ["g0", "g1", "g1"])  # a duplicate member: globex's
    add_scope(cand, "globex", "declared")  # declared but not built: globex's too

    audit = run_audit(D1, "run-audit", last_counts={})

    assert audit.blocking_failures == []  # nothing blocks acme
    assert list(audit.failed_accounts) == ["globex"]
    assert "at most once" in audit.failed_accounts["globex"]
    assert "declared" in audit.failed_accounts["globex"]
    # Each global failure is still reported as one (the audit's own report is unchanged).
    assert any("at most once" in f for f in audit.global_failures)

    # The audit record itself refuses globex, whoever asks to publish it.
    with pytest.raises(CandidateChangedError, match="failed this account"):
        publish_account(D1, "run-audit", "globex", {}, audit_id=audit.audit_id)

    result = pipeline.publish(D1, "run-audit", audit)
    assert result.accounts == ["acme"]
    assert list(result.failed) == ["globex"]
    served = cand.execute(
        "select account_id, segment_key from segments_serving.segments order by 1"
    ).fetchall()
    assert served == [("acme", "vip")]
    history = pipeline.record_history(D1, "run-audit", result.accounts)
    assert history["entered"] == 2 and list(history["accounts"]) == ["acme"]
    with pytest.raises(AccountFailedError, match="globex: membership_integrity"):
        pipeline.finish(audit, "run-audit", result.failed)


def test_a_tenant_leak_is_never_contained(cand: psycopg.Connection) -> None:
    add_segment(cand, "acme", "vip", ["c0", "g0"])  # g0 is globex's contact
    add_segment(cand, "globex", "vip", ["g1"])

    audit = run_audit(D1, "run-leak", last_counts={})

    assert audit.failed_accounts == {}
    assert any("Tenant isolation" in f for f in audit.blocking_failures)
