"""A run killed in the middle of its dbt build leaves what Broadcast reads unchanged, and the
next run for the same date completes and records history once.

The run is the CLI's `segments run`, which calls the same pipeline functions as the DAG's
tasks; SIGKILL gives it no chance to clean up, as when a worker dies.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
from typing import Any

import psycopg
import pytest
from _publish import segments_run, wait_for_build

from segmentation_dev import demo_data

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 11, 20)
SERVING_QUERIES = {
    "segments": "select account_id, segment_key, definition_hash, member_count, as_of, stale "
    "from segments_serving.segments order by 1, 2",
    "segment_members": "select account_id, segment_key, contact_id, member_since "
    "from segments_serving.segment_members order by 1, 2, 3",
    "broadcast_recipients": "select * from segments_serving.broadcast_recipients "
    "order by 1, 2, 3, 4",
    "publish_log": "select run_id, as_of, status from segments_serving.publish_log order by 1",
}


def _run(run_id: str) -> subprocess.Popen[str]:
    return segments_run(AS_OF, run_id)


def _finish(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=1200)
    # A quarantined segment ends the run failed after publishing the rest: still a completed run.
    assert proc.returncode == 0 or "quarantined" in out, out[-4000:]
    return out


def _serving(conn: psycopg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {name: conn.execute(query).fetchall() for name, query in SERVING_QUERIES.items()}


def test_killed_build_leaves_serving_unchanged_and_rerun_completes(db: psycopg.Connection) -> None:
    demo_data.load(accounts=3, contacts=600, seed=7, anchor=AS_OF)
    _finish(_run("manual__first"))
    before = _serving(db)
    assert before["segment_members"], "the first run published nothing"

    victim = _run("manual__killed")
    query = wait_for_build(db, victim)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert "segments_audit" in query

    after_kill = _serving(db)
    assert after_kill == before
    assert not any(run_id == "manual__killed" for run_id, *_ in after_kill["publish_log"])

    _finish(_run("manual__after_kill"))
    after_rerun = _serving(db)
    # Same date, same data: the completed rerun publishes exactly what the first run did.
    for name in ("segments", "segment_members", "broadcast_recipients"):
        assert after_rerun[name] == before[name], name
    dupes = db.execute(
        "select count(*) from (select as_of, account_id, segment_key, contact_id "
        "from segments_history.membership_changes group by 1, 2, 3, 4 having count(*) > 1) d"
    ).fetchone()[0]
    assert dupes == 0
    sizes = db.execute(
        "select count(*), count(distinct (as_of, account_id, segment_key)) "
        "from segments_history.segment_sizes"
    ).fetchone()
    assert sizes[0] == sizes[1]
