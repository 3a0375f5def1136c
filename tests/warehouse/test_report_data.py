"""The report's data (steps.report) on real PostgreSQL: sizes and flow from history, overlap
from the published membership, and the segments_marts sections, which read as "not computed
yet" while their relation is missing or has no rows for the report date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from _publish import publish_state, set_catalogue, set_contacts, set_membership

from segmentation.cli import main as cli
from segmentation.errors import ReportError
from segmentation.steps import report
from segmentation.steps.history import record_history
from segmentation.steps.publish import publish

D0, D1, D2 = (dt.date(2026, 11, d) for d in (1, 2, 3))
KPI_COLUMNS = (
    "members, share_of_contacts, arpu, retention_rate, delivered_rate, read_rate, "
    "clicked_rate, replied_rate, open_tickets_per_member"
)


@pytest.fixture
def state(db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    with publish_state(db) as conn:
        set_contacts(
            conn,
            [(c, "acme", None, None, False, False, False) for c in "abcde"]
            + [("z", "globex", None, None, False, False, False)],
        )
        set_catalogue(conn, [("acme", "vip"), ("acme", "new"), ("globex", "vip")])
        yield conn
        conn.execute("drop schema if exists segments_marts cascade")


def run(conn: psycopg.Connection, as_of: dt.date, members: dict) -> None:
    set_membership(conn, members)
    publish(as_of, f"run-{as_of}", {})
    record_history(as_of, f"run-{as_of}")


def two_days(conn: psycopg.Connection) -> None:
    run(conn, D1, {("acme", "vip"): "abc", ("acme", "new"): "cd", ("globex", "vip"): "z"})
    run(conn, D2, {("acme", "vip"): "ab", ("acme", "new"): "bcde", ("globex", "vip"): "z"})


def segments(site, account: str) -> dict:
    (found,) = [a for a in site.accounts if a.account_id == account]
    return {s.segment_key: s for s in found.segments}


def test_sizes_flow_and_overlap_without_marts(state: psycopg.Connection, tmp_path: Path) -> None:
    two_days(state)
    site = report.collect()
    assert (site.as_of, site.run_id) == (D2, f"run-{D2}")
    acme = segments(site, "acme")
    assert [
        (r["as_of"], r["member_count"], r["entered"], r["exited"]) for r in acme["vip"].sizes
    ] == [
        (D1, 3, 3, 0),
        (D2, 2, 0, 1),
    ]
    assert [(r["member_count"], r["entered"], r["exited"]) for r in acme["new"].sizes] == [
        (2, 2, 0),
        (4, 2, 0),
    ]
    # on D2 vip = {a, b} and new = {b, c, d, e} share b
    assert acme["vip"].overlap == [
        {"other_key": "new", "other_name": "New", "shared": 1, "share": 0.5}
    ]
    assert acme["new"].overlap == [
        {"other_key": "vip", "other_name": "Vip", "shared": 1, "share": 0.25}
    ]
    assert segments(site, "globex")["vip"].overlap == []
    # no segments_marts yet: every marts section is "not computed yet"
    assert all(s.kpis is None and s.stability is None for s in acme.values())
    assert all(
        a.rfm_grid is None and a.cluster_profiles is None and a.account_kpis is None
        for a in site.accounts
    )

    index = report.build_report(tmp_path / "site")
    assert index == (tmp_path / "site" / "index.html").resolve()
    page = (tmp_path / "site" / "segments" / "acme" / "vip.html").read_text()
    assert page.count("not computed yet for this date (2026-11-03)") == 2


def test_marts_sections_for_the_report_date(state: psycopg.Connection, tmp_path: Path) -> None:
    two_days(state)
    state.execute("create schema segments_marts")
    state.execute(
        "create table segments_marts.segment_kpis (account_id text, segment_key text, "
        "as_of date, members integer, share_of_contacts numeric, arpu numeric, "
        "retention_rate numeric, delivered_rate numeric, read_rate numeric, "
        "clicked_rate numeric, replied_rate numeric, open_tickets_per_member numeric)"
    )
    state.execute(
        f"create table segments_marts.account_kpis as select account_id, as_of, {KPI_COLUMNS} "
        "from segments_marts.segment_kpis"
    )
    state.execute(
        "create table segments_marts.rfm_scores (account_id text, contact_id text, as_of date, "
        "recency_days integer, frequency integer, monetary numeric, r_score integer, "
        "f_score integer, m_score integer, rfm_segment text)"
    )
    # Rows of another date only: still not computed for the report date.
    state.execute(
        "insert into segments_marts.segment_kpis values "
        "('acme', 'vip', %s, 3, 0.6, 10, 0.5, 0.9, 0.8, 0.1, 0.05, 0.2)",
        (D0,),
    )
    assert segments(report.collect(), "acme")["vip"].kpis is None

    state.execute(
        "insert into segments_marts.segment_kpis values "
        "('acme', 'vip', %s, 2, 0.4, 120.5, 0.5, 0.9, 0.8, 0.1, 0.05, 0.2)",
        (D2,),
    )
    state.execute(
        "insert into segments_marts.account_kpis values "
        "('acme', %s, 5, 1, 80, 0.3, 0.7, 0.6, 0.1, 0.02, 0.4)",
        (D2,),
    )
    state.execute(
        "insert into segments_marts.rfm_scores values "
        "('acme', 'a', %(d)s, 3, 4, 100, 5, 4, 4, 'champions'), "
        "('acme', 'b', %(d)s, 5, 4, 80, 5, 4, 3, 'champions'), "
        "('acme', 'c', %(d)s, 300, 0, 0, 1, 1, 1, 'lost'), "
        "('acme', 'x', %(o)s, 1, 1, 1, 1, 1, 1, 'lost')",
        {"d": D2, "o": D0},
    )
    site = report.collect()
    acme = segments(site, "acme")
    assert acme["vip"].kpis["arpu"] == Decimal("120.5")
    assert acme["new"].kpis is None  # the mart has no row for it
    (account,) = [a for a in site.accounts if a.account_id == "acme"]
    assert account.account_kpis["retention_rate"] == Decimal("0.3")
    grid = {(r["r_score"], r["f_score"]): r["contacts"] for r in account.rfm_grid}
    assert grid == {(5, 4): 2, (1, 1): 1}
    assert {r["rfm_segment"]: r["size"] for r in account.rfm_segments} == {
        "champions": 2,
        "lost": 1,
    }
    assert account.cluster_profiles is None  # relation missing

    report.build_report(tmp_path / "site")
    page = (tmp_path / "site" / "segments" / "acme" / "vip.html").read_text()
    assert "120.50" in page and "80.00" in page  # ARPU: segment, account average
    assert page.count("not computed yet") == 1  # stability only
    account_page = (tmp_path / "site" / "accounts" / "acme.html").read_text()
    assert "RFM scores: not computed yet" not in account_page


def test_cli_prints_the_index_path(
    state: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_days(state)
    assert cli.main(["report", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str((tmp_path / "out" / "index.html").resolve())
    assert (tmp_path / "out" / "accounts" / "globex.html").is_file()


def test_a_mart_without_the_contract_columns_fails_loudly(
    state: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    two_days(state)
    state.execute("create schema segments_marts")
    state.execute(
        "create table segments_marts.segment_stability (account_id text, segment_key text, "
        "as_of date, members integer)"
    )
    with pytest.raises(ReportError, match=r"report\.sql"):
        report.collect()
    # the CLI says what failed and exits 1
    assert cli.main(["report", "--out", "unused"]) == 1
    assert "segments_marts" in capsys.readouterr().err
