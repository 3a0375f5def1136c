"""The clustering step on demo data: int_cluster_features (dbt) -> steps.clusters.cluster ->
contact_clusters, cluster_profiles and cluster_runs, and the rebuild of what reads them.

One module, one demo data set (two accounts) plus a tiny account of five contacts; a copy
of the project with a probe model that reads the source contact_clusters, so the step's
rebuild of its dependents is observable. The tests build on each other (day 1, rerun, day 2).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from _segments import PROJECT_DIR, copy_project, insert_accounts, insert_contacts, project_dir

from segmentation.errors import ClusterError
from segmentation.steps import clusters
from segmentation.warehouse import control
from segmentation.warehouse.dbt_runner import run_dbt
from segmentation_dev import demo_data

pytestmark = pytest.mark.slow

D1 = dt.date(2026, 11, 20)
D2 = dt.date(2026, 11, 21)
RUN = "manual__clusters"
SELECT = [
    "staging",
    "int_segment_as_of",
    "int_segment_primary_companies",
    "rfm_segment_map",
    "rfm_scores",
    "int_cluster_features",
]
PROBE = """
select account_id, as_of, cluster_id, count(*) as contacts
from {{ source('segments_marts', 'contact_clusters') }}
group by account_id, as_of, cluster_id
"""


def build(as_of: dt.date) -> None:
    run_dbt(["build", "--select", *SELECT], {"as_of": as_of.isoformat()})


def run_step(as_of: dt.date, run_id: str = RUN) -> clusters.ClusterResult:
    try:
        return clusters.cluster(as_of, run_id)
    finally:
        control.release(run_id)


@pytest.fixture(scope="module")
def project(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    target = copy_project(tmp_path_factory.mktemp("clusters") / "project")
    shutil.copytree(
        PROJECT_DIR / "models" / "analytics" / "clusters",
        target / "models" / "analytics" / "clusters",
        dirs_exist_ok=True,
    )
    (target / "models" / "analytics" / "clusters" / "cluster_probe.sql").write_text(PROBE)
    demo_data.load(accounts=2, contacts=1500, seed=11, anchor=D1, dbname=pg_database)
    with psycopg.connect(dbname=pg_database, autocommit=True) as db:
        insert_accounts(db, {"tiny": "Asia/Jakarta"})
        insert_contacts(
            db,
            [
                {"contact_id": f"t{i}", "account_id": "tiny", "updated_at": "2026-11-01"}
                for i in range(5)
            ],
        )
    with project_dir(target):
        build(D1)
        yield target


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return {}


def contacts_by_account(db: psycopg.Connection) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for account, contact in db.execute(
        "select account_id, contact_id from segments_staging.stg_crm__contacts"
    ).fetchall():
        out.setdefault(account, set()).add(contact)
    return out


def snapshot(db: psycopg.Connection, as_of: dt.date) -> dict[str, list[tuple]]:
    return {
        table: db.execute(
            f"select * from segments_marts.{table} where as_of = %s order by 1, 2, 3", (as_of,)
        ).fetchall()
        for table in ("contact_clusters", "cluster_profiles", "cluster_runs")
    }


def test_the_features_count_activity_in_the_window_before_the_as_of_date(
    project: Path, db: psycopg.Connection
) -> None:
    """An independent computation of two features: completed orders and read/clicked/
    replied campaign events whose account-local date is within 90 days up to the as-of date."""
    zones = dict(db.execute("select account_id, timezone from segments_staging.stg_crm__accounts"))
    start = D1 - dt.timedelta(days=90)

    def local(account: str, ts: dt.datetime) -> dt.date:
        return ts.astimezone(ZoneInfo(zones[account])).date()

    orders: dict[tuple[str, str], int] = {}
    for account, contact, ts in db.execute(
        "select account_id, contact_id, ordered_at from segments_staging.stg_crm__orders "
        "where status = 'completed' and ordered_at is not null"
    ):
        if start <= local(account, ts) <= D1:
            orders[(account, contact)] = orders.get((account, contact), 0) + 1
    engaged: dict[tuple[str, str], int] = {}
    for account, contact, ts in db.execute(
        "select account_id, contact_id, occurred_at from segments_staging.stg_crm__campaign_events "
        "where event_type in ('read', 'clicked', 'replied') and occurred_at is not null"
    ):
        if start <= local(account, ts) <= D1:
            engaged[(account, contact)] = engaged.get((account, contact), 0) + 1
    rows = db.execute(
        "select account_id, contact_id, as_of, orders, campaign_engagements "
        "from segments_marts.int_cluster_features"
    ).fetchall()

    assert {(a, c) for a, c, *_ in rows} == {
        (a, c) for a, cs in contacts_by_account(db).items() for c in cs
    }
    assert {r[2] for r in rows} == {D1}
    assert {(a, c): n for a, c, _, n, _ in rows if n} == orders
    assert {(a, c): n for a, c, _, _, n in rows if n} == engaged
    assert sum(orders.values()) > 50 and sum(engaged.values()) > 50  # the check has teeth


def test_the_step_writes_one_row_per_contact_and_profiles_that_add_up(
    project: Path,
    db: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    state: dict[str, Any],
) -> None:
    monkeypatch.setattr(clusters, "CHUNK_ROWS", 97)  # many chunks from the server-side cursor
    with caplog.at_level(logging.WARNING, logger="segmentation.steps.clusters"):
        result = run_step(D1)

    staged = contacts_by_account(db)
    by_account = {a.account_id: a for a in result.accounts}
    assert set(by_account) == {"acme", "globex", "tiny"}
    for account in ("acme", "globex"):
        written = db.execute(
            "select contact_id, cluster_id, cluster_label from segments_marts.contact_clusters "
            "where account_id = %s and as_of = %s",
            (account, D1),
        ).fetchall()
        assert sorted(c for c, _, _ in written) == sorted(staged[account])
        profiles = {
            cluster_id: (size, label)
            for cluster_id, size, label in db.execute(
                "select cluster_id, size, cluster_label from segments_marts.cluster_profiles "
                "where account_id = %s and as_of = %s",
                (account, D1),
            ).fetchall()
        }
        run = db.execute(
            "select status, k, contacts, run_id from segments_marts.cluster_runs "
            "where account_id = %s and as_of = %s",
            (account, D1),
        ).fetchone()
        assert run == ("clustered", len(profiles), len(staged[account]), RUN)
        assert 2 <= len(profiles) <= 8
        assert sum(size for size, _ in profiles.values()) == len(staged[account])
        for _, cluster_id, label in written:
            assert profiles[cluster_id][1] == label
        assert by_account[account].sizes == {cid: size for cid, (size, _) in profiles.items()}
        assert sorted(profiles) == list(range(1, len(profiles) + 1))  # a first date: 1..k
    state["d1"] = snapshot(db, D1)
    # What reads the source was rebuilt with today's clusters.
    assert result.rebuilt == ["cluster_probe"]
    probe = db.execute(
        "select account_id, sum(contacts) from segments_marts.cluster_probe "
        "where as_of = %s group by 1 order by 1",
        (D1,),
    ).fetchall()
    assert probe == [("acme", len(staged["acme"])), ("globex", len(staged["globex"]))]


def test_a_too_small_account_is_skipped_with_a_note(
    project: Path, db: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="segmentation.steps.clusters"):
        result = run_step(D1)

    tiny = next(a for a in result.accounts if a.account_id == "tiny")
    assert tiny.status == "skipped"
    status, k, note, contacts = db.execute(
        "select status, k, note, contacts from segments_marts.cluster_runs "
        "where account_id = 'tiny' and as_of = %s",
        (D1,),
    ).fetchone()
    assert (status, k, contacts) == ("skipped", None, 5)
    assert note.startswith("too few contacts: 5, clustering needs at least 50")
    assert db.execute(
        "select count(*) from segments_marts.contact_clusters where account_id = 'tiny'"
    ).fetchone() == (0,)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("account tiny" in w and "skipped" in w and "too few" in w for w in warnings)


def test_a_rerun_of_the_date_is_idempotent(
    project: Path, db: psycopg.Connection, state: dict[str, Any]
) -> None:
    # A model file newer than dbt's last parse: the step asks dbt (`dbt ls`) what reads
    # contact_clusters instead of trusting the manifest, and still finds the probe.
    probe = project / "models" / "analytics" / "clusters" / "cluster_probe.sql"
    probe.write_text(PROBE + "\n")
    result = run_step(D1)
    assert result.rebuilt == ["cluster_probe"]
    assert snapshot(db, D1) == state["d1"]
    total, distinct = db.execute(
        "select count(*), count(distinct (account_id, contact_id)) "
        "from segments_marts.contact_clusters where as_of = %s",
        (D1,),
    ).fetchone()
    assert total == distinct == len(state["d1"]["contact_clusters"])


def test_features_of_another_date_are_refused(project: Path) -> None:
    with pytest.raises(ClusterError, match=r"built for 2026-11-20\. Run the build for 2026-11-21"):
        run_step(D2)


def test_the_next_day_keeps_the_cluster_ids(
    project: Path, db: psycopg.Connection, state: dict[str, Any]
) -> None:
    build(D2)
    run_step(D2)

    moved = db.execute(
        "select t.account_id, count(*) filter (where t.cluster_id <> y.cluster_id), count(*) "
        "from segments_marts.contact_clusters as t "
        "join segments_marts.contact_clusters as y using (account_id, contact_id) "
        "where t.as_of = %s and y.as_of = %s group by 1 order by 1",
        (D2, D1),
    ).fetchall()
    assert [a for a, _, _ in moved] == ["acme", "globex"]
    for account, changed, total in moved:
        # One day of activity moves few contacts; the ids follow their clusters.
        assert changed / total < 0.1, (account, changed, total)
    # Day 1 is untouched by day 2.
    assert snapshot(db, D1) == state["d1"]
