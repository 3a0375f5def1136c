"""The run's `failed` map: JSON-safe through XCom, and `finish` fails the run naming each
failed account, its cause and what to do (after the others published)."""

from __future__ import annotations

import json

import pytest

from segmentation.errors import AccountFailedError, QuarantineError
from segmentation.steps import pipeline
from segmentation.steps.audit import AuditResult


def test_failed_accounts_survive_the_xcom_round_trip() -> None:
    result = AuditResult(
        global_failures=["membership_integrity: duplicates: 2 unexpected row(s)"],
        failed_accounts={"globex": "membership_integrity: duplicates"},
        attributed=["membership_integrity: duplicates: 2 unexpected row(s)"],
    )
    again = AuditResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.failed_accounts == {"globex": "membership_integrity: duplicates"}
    assert again.blocking_failures == []
    # A failure no account owns still blocks everything.
    assert AuditResult(global_failures=["x"]).blocking_failures == ["x"]


def test_finish_names_each_failed_account_and_its_cause() -> None:
    audit = AuditResult(
        quarantined={("acme", "vip"): "too small"},
        failed_accounts={"globex": "membership_integrity: duplicates"},
    )
    with pytest.raises(AccountFailedError) as caught:
        pipeline.finish(audit, None, {"initech": "publish: lock timeout"})
    error = caught.value
    assert error.failed == {
        "globex": "membership_integrity: duplicates",
        "initech": "publish: lock timeout",
    }
    message = str(error)
    assert "2 account(s) not refreshed" in message
    assert "  globex: membership_integrity: duplicates" in message
    assert "  initech: publish: lock timeout" in message
    assert "segments run --as-of <date> --account <account>" in message
    assert "acme/vip: too small" in message  # the quarantine is reported too


def test_finish_without_failed_accounts_still_reports_quarantine() -> None:
    with pytest.raises(QuarantineError):
        pipeline.finish(AuditResult(quarantined={("acme", "vip"): "x"}), None, {})
    pipeline.finish(AuditResult(), None, {})
