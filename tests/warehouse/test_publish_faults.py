"""Failures inside the publish transaction leave serving byte-identical."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
from _publish import fingerprint, publish_state, set_catalogue, set_contacts, set_membership

from segmentation.errors import PublishError
from segmentation.steps import publish as publish_mod
from segmentation.steps.publish import publish
from segmentation.warehouse import database

D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


class InjectedFault(RuntimeError):
    pass


@pytest.fixture
def published(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """Version 1 published; the candidate then holds a different version 2."""
    with publish_state(db) as conn:
        contacts = [f"c{i}" for i in range(20)]
        set_contacts(
            conn,
            [
                (c, "acme", f"{c}@example.com", f"+62812000000{i:02d}", True, True, i % 2 == 0)
                for i, c in enumerate(contacts)
            ],
        )
        set_catalogue(conn, [("acme", "vip"), ("acme", "buyers")])
        set_membership(conn, {("acme", "vip"): contacts[:10], ("acme", "buyers"): contacts[5:]})
        publish(D1, "v1", {})
        set_catalogue(conn, [("acme", "vip"), ("acme", "new_seg")], hash_suffix="v2")
        set_membership(conn, {("acme", "vip"): contacts[8:], ("acme", "new_seg"): contacts[:3]})
        yield conn


@pytest.mark.parametrize(
    "step", ["_write_members", "_write_segments", "_write_groups", "_write_recipients"]
)
def test_exception_after_a_step_rolls_everything_back(
    published: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    before = fingerprint(published)
    real = getattr(publish_mod, step)
    seen: list[int] = []

    def write_then_fail(conn: psycopg.Connection, params: dict) -> None:
        real(conn, params)
        # The step really changed serving inside the transaction before the fault.
        seen.append(
            conn.execute("select count(*) from segments_serving.segment_members").fetchone()[0]
        )
        raise InjectedFault(f"injected after {step}")

    monkeypatch.setattr(publish_mod, step, write_then_fail)
    with pytest.raises(InjectedFault):
        publish(D2, "v2", {})

    assert seen, "the injected step did not run"
    assert fingerprint(published) == before
    # The same candidate publishes fine once the fault is gone (a retry completes).
    monkeypatch.undo()
    result = publish(D2, "v2-retry", {})
    assert result.counts == {"acme": {"new_seg": 3, "vip": 12}}
    assert fingerprint(published) != before


def test_lock_timeout_mid_publish_rolls_back(published: psycopg.Connection) -> None:
    before = fingerprint(published)
    # Another session holds a lock that conflicts with writing recipients, the last table the
    # publish writes, so members and segments were already changed when the wait times out.
    with database.connect() as blocker:
        blocker.execute("lock table segments_serving.broadcast_recipients in share mode")
        with pytest.raises(PublishError, match="lock_timeout=200ms"):
            publish(D2, "v2", {}, lock_timeout="200ms")
        blocker.rollback()

    assert fingerprint(published) == before


def test_statement_timeout_rolls_back(published: psycopg.Connection) -> None:
    before = fingerprint(published)
    # With lock_timeout off, the statement_timeout is what ends the wait.
    with database.connect() as blocker:
        blocker.execute("lock table segments_serving.broadcast_recipients in share mode")
        with pytest.raises(PublishError, match="statement_timeout=300ms"):
            publish(D2, "v2", {}, lock_timeout="0", statement_timeout="300ms")
        blocker.rollback()
    assert fingerprint(published) == before
