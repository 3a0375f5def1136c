"""The hourly DAG refreshes each account at 08:00 in its own timezone (issue 11), run with
dag.test() at fixed logical dates over demo data with two accounts: acme (Asia/Jakarta,
08:00 = 01:00 UTC) and globex (Asia/Makassar, 08:00 = 00:00 UTC).

  2026-11-20T00:00Z  globex is due: published for as-of 2026-11-20, acme is not touched
  2026-11-20T01:00Z  acme is due: published for as-of 2026-11-20
  2026-11-20T02:00Z  nobody is due: every task after due_accounts is skipped
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import psycopg
import pytest
from _airflow import airflow_env, dag_test, migrate

from segmentation.steps import audit as audit_module
from segmentation_dev import demo_data

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def env(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("airflow_home")
    gx_dir = audit_module.copy_gx_project(tmp_path_factory.mktemp("gx") / "expectations")
    environment = airflow_env(home, SEGMENTS_DAG_RETRIES="0", SEGMENTS_GX_DIR=str(gx_dir))
    migrate(environment)
    demo_data.load(accounts=2, contacts=400, seed=7, anchor=AS_OF)
    with psycopg.connect(autocommit=True) as conn:
        # segment_defs/acme/loyal_customers.yml has min_members: 1: give it members, as
        # tests/e2e/test_dag_e2e.py does, so the run is not quarantined.
        conn.execute(
            "with picked as (select distinct contact_id from crm_raw.contacts"
            " where account_id = 'acme' and deleted_at is null order by contact_id limit 20)"
            " update crm_raw.contacts as c set lifecycle_stage = 'customer',"
            " consent_whatsapp = true, loyalty_tier = 'gold', loyalty_points = 6000,"
            " tags = '{}', created_at = '2025-01-01',"
            " email = 'loyal.' || c.contact_id || '@example.com',"
            " custom_fields = coalesce(c.custom_fields, '{}') || '{\"vip_level\": 3}'"
            " from picked where c.contact_id = picked.contact_id and c.account_id = 'acme'"
        )
    os.environ["SEGMENTS_GX_DIR"] = str(gx_dir)
    yield environment
    os.environ.pop("SEGMENTS_GX_DIR", None)


def _published(conn: psycopg.Connection) -> dict[str, set[dt.date]]:
    rows = conn.execute(
        "select account_id, as_of from segments_serving.segments group by 1, 2"
    ).fetchall()
    out: dict[str, set[dt.date]] = {}
    for account, as_of in rows:
        out.setdefault(account, set()).add(as_of)
    return out


def _candidate_accounts(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute("select account_id from segments_audit.segment_catalogue").fetchall()
    return {account for (account,) in rows}


def test_makassar_account_is_refreshed_at_its_0800(env: dict[str, str]) -> None:
    run = dag_test(env, "2026-11-20T00:00:00+00:00")
    assert run["state"] == "success", run["log"][-6000:]
    assert set(run["tasks"].values()) == {"success"}
    with psycopg.connect(autocommit=True) as conn:
        assert _candidate_accounts(conn) == {"globex"}
        assert _published(conn) == {"globex": {AS_OF}}


def test_jakarta_account_is_refreshed_an_hour_later(env: dict[str, str]) -> None:
    run = dag_test(env, "2026-11-20T01:00:00+00:00")
    assert run["state"] == "success", run["log"][-6000:]
    with psycopg.connect(autocommit=True) as conn:
        assert _candidate_accounts(conn) == {"acme"}
        # globex, refreshed an hour earlier, is still shown as it was published then.
        assert _published(conn) == {"globex": {AS_OF}, "acme": {AS_OF}}
        stale = conn.execute("select count(*) from segments_serving.segments where stale")
        assert stale.fetchone() == (0,)
        logged = conn.execute(
            "select account_id, as_of from segments_serving.publish_log order by published_at"
        ).fetchall()
    assert logged == [("globex", AS_OF), ("acme", AS_OF)]


def test_an_hour_with_no_account_due_skips_the_run(env: dict[str, str]) -> None:
    with psycopg.connect(autocommit=True) as conn:
        before = conn.execute("select count(*) from segments_serving.publish_log").fetchone()
    run = dag_test(env, "2026-11-20T02:00:00+00:00")
    assert run["state"] == "success", run["log"][-6000:]
    tasks = run["tasks"]
    assert tasks.pop("due_accounts") == "success"
    assert set(tasks.values()) == {"skipped"}
    with psycopg.connect(autocommit=True) as conn:
        after = conn.execute("select count(*) from segments_serving.publish_log").fetchone()
    assert after == before
