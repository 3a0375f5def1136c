"""Pipeline step contracts that need no dbt build (the end-to-end runs are in test_dag_e2e)."""

from __future__ import annotations

import datetime as dt
import inspect
from pathlib import Path

import pytest
import typer

from segmentation.cli import main as cli
from segmentation.cli import operations
from segmentation.errors import AuditError, QuarantineError
from segmentation.steps import pipeline
from segmentation.steps.audit import AuditResult


def test_finish_fails_the_run_only_when_something_was_quarantined() -> None:
    pipeline.finish(AuditResult())  # nothing quarantined: the run succeeds

    with pytest.raises(QuarantineError, match=r"1 segment\(s\) quarantined") as caught:
        pipeline.finish(AuditResult(quarantined={("acme", "vip"): "member count 0 is below 1"}))
    assert "acme/vip: member count 0 is below 1" in str(caught.value)


def test_publish_refuses_an_audit_with_global_failures() -> None:
    blocked = AuditResult(global_failures=["membership_integrity: tenant leak"])

    with pytest.raises(AuditError, match="tenant leak"):
        pipeline.publish(dt.date(2026, 11, 20), "manual__x", blocked)


def test_manual_run_ids_look_like_airflow_ones() -> None:
    now = dt.datetime(2026, 11, 20, 1, 2, 3, tzinfo=dt.UTC)
    assert pipeline.manual_run_id(now) == "manual__2026-11-20T01:02:03+00:00"


def test_today_is_taken_in_the_configured_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENTS_TIMEZONE", "Pacific/Kiritimati")  # UTC+14
    ahead = pipeline.today()
    # UTC-10, no DST: exactly 24 hours behind, so the dates differ by one day at any hour
    # (UTC-11 made them differ by two between 10:00 and 11:00 UTC).
    monkeypatch.setenv("SEGMENTS_TIMEZONE", "Pacific/Honolulu")
    behind = pipeline.today()
    assert (ahead - behind).days == 1


def test_cli_run_accepts_as_of_run_id_and_allow_rewind() -> None:
    run = typer.main.get_command(cli.app).commands["run"]
    params = run.make_context(
        "run", ["--as-of", "2026-11-20", "--run-id", "manual__fix", "--allow-rewind"]
    ).params
    assert (params["as_of"], params["run_id"], params["allow_rewind"]) == (
        dt.date(2026, 11, 20),
        "manual__fix",
        True,
    )
    assert inspect.unwrap(run.callback) is inspect.unwrap(operations.run)


def test_audit_result_summary_names_failures_and_docs() -> None:
    result = AuditResult(
        global_failures=["recipients: bad address"],
        quarantined={("acme", "vip"): "too big"},
        data_docs=Path("/tmp/index.html"),
    )
    assert result.summary().splitlines() == [
        "audit: 1 global failure(s), 1 quarantined segment(s)",
        "  global: recipients: bad address",
        "  quarantined acme/vip: too big",
        "  data docs: /tmp/index.html",
    ]
