"""End to end: the real DAG with dag.test() against the test database and demo data.

One module, one Airflow home, one demo data set; the tests run in order and build on each
other like days in production:

  2026-11-20  first run: everything publishes, history records every member as entered
  2026-11-20  rerun: identical serving contents, no duplicate history
  2026-11-20  a dbt build error: the run fails, serving is unchanged
  2026-11-20  a failing dbt test (pipeline.build): serving is unchanged
  2026-11-20  rerun after fixing the data: completes, same contents, no duplicate history;
              the run's lease is released and its audit recorded
  2026-11-20  another run holds the run lease: the DAG run fails at build, serving unchanged
  2026-11-21  most contacts deleted: segments over max_change_pct are quarantined (they keep
              their last good members and are marked stale), the rest publish, history
              records, and the run ends failed
  then        a candidate with a cross-tenant member: the audit blocks the publish

The failures and the rerun use the same date on purpose: small demo segments move by more
than 50% from one day to the next, which would (correctly) quarantine them.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from _airflow import airflow_env, dag_test, migrate

from segmentation.errors import AuditError, DbtError
from segmentation.steps import audit as audit_module
from segmentation.steps import pipeline
from segmentation_dev import demo_data

pytestmark = pytest.mark.slow

D1, D2 = "2026-11-20", "2026-11-21"
# 08:00 in Asia/Jakarta: the scheduled run's logical date.
LOGICAL = {d: f"{d}T01:00:00+00:00" for d in (D1, D2)}
# publish_log has a row per account per publish (serving contract 2): count the publishes.
PUBLISHES = "select count(distinct run_id) from segments_serving.publish_log"
LOYAL = 20


@pytest.fixture(scope="module")
def env(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("airflow_home")
    gx_dir = audit_module.copy_gx_project(tmp_path_factory.mktemp("gx") / "expectations")
    os.environ["SEGMENTS_GX_DIR"] = str(gx_dir)
    environment = airflow_env(
        home,
        SEGMENTS_TIMEZONE="Asia/Jakarta",
        SEGMENTS_DAG_RETRIES="0",
        SEGMENTS_GX_DIR=str(gx_dir),
    )
    migrate(environment)
    demo_data.load(accounts=1, contacts=500, seed=7, anchor=dt.date(2026, 11, 20))
    with psycopg.connect(autocommit=True) as conn:
        _make_loyal_customers(conn)
    yield environment
    os.environ.pop("SEGMENTS_GX_DIR", None)


def _make_loyal_customers(conn: psycopg.Connection) -> None:
    """A few unmistakable loyal customers, so segment_defs/acme/loyal_customers.yml
    (min_members: 1) has members in a 500-contact demo set."""
    conn.execute(
        """
        with picked as (
            select distinct contact_id from crm_raw.contacts
            where account_id = 'acme' and deleted_at is null
            order by contact_id limit %s
        )
        update crm_raw.contacts as c set
            lifecycle_stage = 'customer', consent_whatsapp = true, loyalty_tier = 'gold',
            loyalty_points = 6000, tags = '{}', created_at = '2025-01-01',
            email = 'loyal.' || c.contact_id || '@example.com',
            custom_fields = coalesce(c.custom_fields, '{}') || '{"vip_level": 3}'
        from picked where c.contact_id = picked.contact_id and c.account_id = 'acme'
        """,
        (LOYAL,),
    )


def _serving(conn: psycopg.Connection) -> dict[str, Any]:
    """Everything Broadcast can read, minus the publish timestamp."""
    return {
        "segments": conn.execute(
            "select account_id, segment_key, definition_hash, member_count, as_of, stale, "
            "stale_reason from segments_serving.segments order by 1, 2"
        ).fetchall(),
        "members": conn.execute(
            "select account_id, segment_key, contact_id, member_since "
            "from segments_serving.segment_members order by 1, 2, 3"
        ).fetchall(),
        "recipients": conn.execute(
            "select account_id, segment_key, contact_id, channel, address "
            "from segments_serving.broadcast_recipients order by 1, 2, 3, 4"
        ).fetchall(),
    }


def _members(conn: psycopg.Connection, relation: str) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for account, segment, contact in conn.execute(
        f"select account_id, segment_key, contact_id from {relation}"
    ).fetchall():
        out.setdefault((account, segment), set()).add(contact)
    return out


def _history_is_duplicate_free(conn: psycopg.Connection) -> None:
    total, distinct = conn.execute(
        "select count(*), count(distinct (as_of, account_id, segment_key, contact_id)) "
        "from segments_history.membership_changes"
    ).fetchone()
    assert total == distinct


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return {}


def test_first_run_publishes_everything(env: dict[str, str], state: dict[str, Any]) -> None:
    run = dag_test(env, LOGICAL[D1])

    assert run["state"] == "success", run["log"][-6000:]
    assert set(run["tasks"].values()) == {"success"}
    with psycopg.connect(autocommit=True) as conn:
        candidate = _members(conn, "segments_audit.segment_memberships")
        serving = _members(conn, "segments_serving.segment_members")
        catalogue = conn.execute(
            "select account_id, segment_key from segments_audit.segment_catalogue "
            "where enabled order by 1, 2"
        ).fetchall()
        snapshot = _serving(conn)
        entered = conn.execute(
            "select count(*) from segments_history.membership_changes "
            "where as_of = %s and change = 'entered'",
            (D1,),
        ).fetchone()[0]
        log = conn.execute(
            "select distinct as_of::text, status from segments_serving.publish_log"
        ).fetchall()
    assert {k: v for k, v in serving.items() if v} == {k: v for k, v in candidate.items() if v}
    assert [row[:2] for row in snapshot["segments"]] == catalogue
    assert ("acme", "loyal_customers") in candidate
    assert len(candidate[("acme", "loyal_customers")]) >= LOYAL // 2
    assert all(row[5] is False for row in snapshot["segments"])  # nothing stale
    assert all(row[4].isoformat() == D1 for row in snapshot["segments"])
    assert entered == sum(len(v) for v in candidate.values())
    assert log == [(D1, "published")]
    assert (Path(env["SEGMENTS_GX_DIR"]) / "uncommitted/data_docs/local_site/index.html").is_file()
    state["d1"] = snapshot


def test_rerun_of_the_same_date_is_identical(env: dict[str, str], state: dict[str, Any]) -> None:
    run = dag_test(env, LOGICAL[D1])

    assert run["state"] == "success", run["log"][-6000:]
    with psycopg.connect(autocommit=True) as conn:
        assert _serving(conn) == state["d1"]
        _history_is_duplicate_free(conn)
        runs = conn.execute(PUBLISHES).fetchone()[0]
    assert runs == 2


def test_build_error_leaves_serving_unchanged(env: dict[str, str], state: dict[str, Any]) -> None:
    with psycopg.connect(autocommit=True) as conn:
        conn.execute("alter table crm_raw.contacts rename column full_name to full_name_x")
    try:
        run = dag_test(env, LOGICAL[D1])
    finally:
        with psycopg.connect(autocommit=True) as conn:
            conn.execute("alter table crm_raw.contacts rename column full_name_x to full_name")

    assert run["state"] == "failed"
    assert run["tasks"]["build"] == "failed"
    for task in ("audit", "publish", "record_history", "finish"):
        assert run["tasks"][task] == "upstream_failed", task
    assert "SEGMENT REFRESH FAILED" in run["log"]  # the on_failure_callback summary
    with psycopg.connect(autocommit=True) as conn:
        assert _serving(conn) == state["d1"]
        runs = conn.execute(PUBLISHES).fetchone()[0]
    assert runs == 2


def test_failed_dbt_test_leaves_serving_unchanged(
    env: dict[str, str], state: dict[str, Any]
) -> None:
    with psycopg.connect(autocommit=True) as conn:
        package = conn.execute(
            "select package from crm_raw.accounts where account_id = 'acme'"
        ).fetchone()[0]
        # Not one of plus | ultimate | 360: the accepted_values test on stg_crm__accounts fails.
        conn.execute("update crm_raw.accounts set package = 'gold' where account_id = 'acme'")
    try:
        with pytest.raises(DbtError, match="accepted_values"):
            pipeline.build(dt.date(2026, 11, 20))
    finally:
        with psycopg.connect(autocommit=True) as conn:
            conn.execute(
                "update crm_raw.accounts set package = %s where account_id = 'acme'", (package,)
            )
    with psycopg.connect(autocommit=True) as conn:
        assert _serving(conn) == state["d1"]


def test_rerun_after_a_failure_completes(env: dict[str, str], state: dict[str, Any]) -> None:
    run = dag_test(env, LOGICAL[D1])

    assert run["state"] == "success", run["log"][-6000:]
    with psycopg.connect(autocommit=True) as conn:
        assert _serving(conn) == state["d1"]
        _history_is_duplicate_free(conn)
        sizes = conn.execute(
            "select count(*) from segments_history.segment_sizes where as_of = %s", (D1,)
        ).fetchone()[0]
    assert sizes == len(state["d1"]["segments"])


def test_the_run_released_its_lease_and_recorded_its_audit(state: dict[str, Any]) -> None:
    with psycopg.connect(autocommit=True) as conn:
        lease = conn.execute("select run_id from segments_control.run_lease").fetchone()
        audits = conn.execute(
            "select count(distinct run_id), sum(global_failures) from segments_control.audits "
            "where run_id like 'scheduled__%%' or run_id like 'manual__%%'"
        ).fetchone()
    assert lease == (None,)
    assert audits[0] >= 1 and audits[1] == 0


HOLDER = """
import datetime as dt, sys, time
from segmentation.warehouse import control
with control.hold(dt.date(2026, 11, 20), "backfill__other"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_run_meeting_another_runs_lease_fails_at_build(
    env: dict[str, str], state: dict[str, Any]
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        run = dag_test(env, LOGICAL[D1])
    finally:
        holder.kill()
        holder.wait(timeout=60)

    assert run["state"] == "failed"
    assert run["tasks"]["build"] == "failed"
    assert "Another pipeline run is using the candidate: run backfill__other" in run["log"]
    with psycopg.connect(autocommit=True) as conn:
        assert _serving(conn) == state["d1"]


def test_quarantine_keeps_last_good_members_and_fails_the_run(
    env: dict[str, str], state: dict[str, Any]
) -> None:
    with psycopg.connect(autocommit=True) as conn:
        # Delete 80% of acme's contacts, but not the loyal customers.
        conn.execute(
            """
            update crm_raw.contacts set deleted_at = '2026-11-20 12:00+07'
            where account_id = 'acme' and email not like 'loyal.%'
              and abs(hashtext(contact_id)) % 5 <> 0
            """
        )
        before = _members(conn, "segments_serving.segment_members")

    run = dag_test(env, LOGICAL[D2])

    assert run["state"] == "failed"
    assert run["tasks"]["publish"] == "success"
    assert run["tasks"]["record_history"] == "success"
    assert run["tasks"]["finish"] == "failed"
    assert "QuarantineError" in run["log"]
    with psycopg.connect(autocommit=True) as conn:
        rows = conn.execute(
            "select account_id, segment_key, stale, stale_reason, as_of::text "
            "from segments_serving.segments"
        ).fetchall()
        serving = _members(conn, "segments_serving.segment_members")
        candidate = _members(conn, "segments_audit.segment_memberships")
        recorded = conn.execute(
            "select count(*) from segments_history.segment_sizes where as_of = %s", (D2,)
        ).fetchone()[0]
    stale = {(a, s): reason for a, s, is_stale, reason, _ in rows if is_stale}
    fresh = {(a, s) for a, s, is_stale, _, _ in rows if not is_stale}
    assert ("acme", "whatsapp_reachable") in stale
    assert "max_change_pct" in stale[("acme", "whatsapp_reachable")]
    assert ("acme", "loyal_customers") in fresh
    for key in stale:  # quarantined: the last good membership stays
        assert serving.get(key, set()) == before.get(key, set()), key
    for key in fresh:  # the others publish the new candidate
        assert serving.get(key, set()) == candidate.get(key, set()), key
    assert recorded > 0


def test_audit_global_failure_blocks_publish(env: dict[str, str]) -> None:
    with psycopg.connect(autocommit=True) as conn:
        before = _serving(conn)
        # A member from another tenant sneaks into the candidate.
        conn.execute(
            "insert into segments_audit.segment_memberships (account_id, segment_key, "
            "contact_id) values ('acme', 'loyal_customers', 'someone-from-globex')"
        )

    with pytest.raises(AuditError, match="Tenant isolation"):
        pipeline.audit(dt.date(2026, 11, 21), "manual__blocked")

    with psycopg.connect(autocommit=True) as conn:
        assert _serving(conn) == before
        # A blocked publish ends the run: its lease must not hold up the next one.
        assert conn.execute(
            "select run_id from segments_control.run_lease where lease = 'candidate'"
        ).fetchone() == (None,)


def test_published_command_prints_counts_per_account(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from segmentation.cli import main as cli

    assert cli.main(["published"]) == 0

    out = capsys.readouterr().out
    with psycopg.connect(autocommit=True) as conn:
        rows = conn.execute(
            "select segment_key, member_count from segments_serving.segments "
            "where account_id = 'acme'"
        ).fetchall()
    assert out.startswith(f"acme: {sum(n for _, n in rows):,} memberships in {len(rows)} segments")
    for segment, members in rows:
        assert any(line.split() == [segment, f"{members:,}"] for line in out.splitlines())
