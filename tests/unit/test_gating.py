"""Package gating: plus accounts get basic attributes only; ultimate and 360 get has:."""

from __future__ import annotations

from pathlib import Path

import yaml
from _activity import PACKAGES, REPO, messages, plan, write

from segmentation.language import gating

# --- gating ---


def test_plus_account_cannot_use_has(tmp_path: Path) -> None:
    write(
        tmp_path,
        "plusco",
        "buyers",
        "all:\n  - {field: lifecycle_stage, op: eq, value: lead}\n  - has: {object: orders}",
    )
    write(tmp_path, "plusco", "via_ref", "in_segment: buyers")
    write(tmp_path, "plusco", "basic", "{field: lifecycle_stage, op: eq, value: lead}")
    write(tmp_path, "acme", "buyers", "has: {object: orders}")
    errors = messages(plan(tmp_path, PACKAGES), tmp_path)
    assert (
        "plusco/buyers.yml:10:7: segment plusco/buyers uses has: (activity conditions), but "
        "account 'plusco' is on package 'plus': activity conditions need package ultimate or 360"
    ) in errors
    assert any(
        e.startswith(
            "plusco/via_ref.yml:1:1: segment plusco/via_ref refers (in_segment) to a "
            "segment that uses has:"
        )
        for e in errors
    ), errors
    assert len(errors) == 2, errors
    # offline (no package list): nothing to check
    assert not plan(tmp_path, None).issues


def test_template_with_has_skips_plus_accounts_and_reports_them(tmp_path: Path) -> None:
    write(tmp_path, "*", "recent_buyers", "has: {object: orders, within: {last_days: 30}}")
    write(tmp_path, "*", "reachable", "{field: consent_whatsapp, op: is_true}")
    p = plan(tmp_path, PACKAGES)
    assert not p.issues
    assert p.gating.skipped == {"recent_buyers": ["plusco"]}
    assert p.warnings() == [
        "account 'plusco' (package plus) skips 1 template with activity conditions (has:, "
        "needs ultimate or 360): recent_buyers"
    ]
    by_key = {s.key: s for s in p.segments}
    assert p.payload(by_key["recent_buyers"]) == {
        "activity_objects": ["orders"],
        "packages": ["ultimate", "360"],
    }
    assert p.payload(by_key["reachable"]) == {"activity_objects": [], "packages": None}


def test_the_package_table_is_the_staging_picklist() -> None:
    """gating.PACKAGE_FEATURES is the one list of packages: the staging contract accepts
    exactly those (the test on stg_crm__accounts.package cannot import Python)."""
    models = yaml.safe_load((REPO / "models/staging/crm/_crm__models.yml").read_text())
    accounts = next(m for m in models["models"] if m["name"] == "stg_crm__accounts")
    package = next(c for c in accounts["columns"] if c["name"] == "package")
    accepted = package["data_tests"][0]["accepted_values"]["arguments"]["values"]
    assert accepted == list(gating.PACKAGES)
    assert gating.ENTITLED_PACKAGES == ("ultimate", "360")
