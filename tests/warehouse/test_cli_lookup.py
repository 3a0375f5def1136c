"""`<account>/<key>` against the warehouse's accounts (real PostgreSQL, no dbt): an unknown
account gets a did-you-mean from crm_raw.accounts, a template gated for the account's
package says so, a defined segment that serving lacks says it was never published; init
checks the account online; validate online prints no offline note."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import psycopg
import pytest

from segmentation.cli import main as cli
from segmentation.errors import UnknownSegmentError
from segmentation.steps import listing
from segmentation_dev import demo_data

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def accounts(pg_database: str) -> None:
    """acme (plus) and globex (ultimate), as the demo data has them."""
    demo_data.load(accounts=2, contacts=40, seed=3, anchor=dt.date(2026, 11, 20))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(PROJECT / "dbt_project.yml", tmp_path / "dbt_project.yml")
    shutil.copytree(PROJECT / "segment_defs", tmp_path / "segment_defs")
    monkeypatch.setenv("SEGMENTS_PROJECT_DIR", str(tmp_path))
    return tmp_path


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_a_template_gated_for_the_package_says_so(
    accounts: None, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["explain", "acme/churn_risk"]) == 1
    line = one_error(capsys)
    assert "acme/churn_risk is not built for account 'acme'" in line
    assert "uses activity conditions (has:), which package 'plus' does not include" in line
    assert "needs ultimate or 360" in line


def test_an_unknown_account_gets_a_did_you_mean_from_the_warehouse(
    accounts: None, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["explain", "globx/churn_risk"]) == 1
    line = one_error(capsys)
    assert "unknown account 'globx' in the warehouse (crm_raw.accounts)" in line
    assert "(did you mean 'globex'?)" in line


def test_an_unknown_segment_gets_a_did_you_mean(
    accounts: None, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["explain", "globex/churn_risc"]) == 1
    assert "no segment 'churn_risc' for account 'globex' (did you mean 'churn_risk'?)" in (
        one_error(capsys)
    )


def test_a_defined_segment_serving_lacks_was_never_published(
    accounts: None, project: Path, db: psycopg.Connection
) -> None:
    db.execute("delete from segments_serving.segments")
    with pytest.raises(UnknownSegmentError, match="globex/churn_risk is defined but has never"):
        listing.require_published("globex/churn_risk")
    with pytest.raises(UnknownSegmentError, match="not built for account 'acme'"):
        listing.require_published("acme/churn_risk")
    db.execute(
        "insert into segments_serving.segments (account_id, segment_key, name, "
        "definition_hash, member_count, as_of, published_at) values "
        "('globex', 'churn_risk', 'Churn risk', 'h', 7, '2026-11-20', now())"
    )
    try:
        found = listing.require_published("globex/churn_risk")
        assert (found.members, found.as_of) == (7, dt.date(2026, 11, 20))
    finally:
        db.execute("delete from segments_serving.segments")


def test_init_checks_the_account_online(
    accounts: None, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["init", "initech/vip"]) == 1
    assert "unknown account 'initech' in the warehouse" in one_error(capsys)
    assert not (project / "segment_defs/initech").exists()
    assert cli.main(["init", "globex/vip"]) == 0
    assert (project / "segment_defs/globex/vip.yml").is_file()


def test_validate_online_prints_no_offline_note(
    accounts: None, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["validate", "segment_defs/acme/loyal_customers.yml"]) == 0
    assert "checked offline" not in capsys.readouterr().err
