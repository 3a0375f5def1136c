"""The GX membership audit on small candidate relations in the real test database."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _audit import add_contacts, add_scope, add_segment, create_candidates, drop_candidates

from segmentation.steps.audit import AuditResult, run_audit

AS_OF = dt.date(2026, 11, 20)
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cand(
    db: psycopg.Connection, gx_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[psycopg.Connection]:
    """Empty candidate relations; contacts acme c0..c9 and globex g0..g4 (valid, consented).
    These fixtures move by single members, so the change floor is 0 unless a test sets it."""
    monkeypatch.setenv("SEGMENTS_CHANGE_FLOOR", "0")
    create_candidates(db)
    add_contacts(db, "acme", 10, prefix="c")
    add_contacts(db, "globex", 5, prefix="g")
    yield db
    drop_candidates(db)


def _audit(**kwargs: object) -> AuditResult:
    kwargs.setdefault("last_counts", {})
    return run_audit(AS_OF, "test_run", **kwargs)  # type: ignore[arg-type]


def test_clean_candidate_passes_and_builds_data_docs(cand: psycopg.Connection) -> None:
    add_segment(cand, "acme", "vip", ["c0", "c1", "c2"], min_members=1, max_members=5)
    add_segment(cand, "acme", "empty", [])  # enabled with 0 members: fine without bounds
    add_segment(cand, "globex", "vip", ["g0"])
    add_segment(cand, "globex", "old", [], enabled=False)

    # The expected set (int_segment_scopes): acme/vip, acme/empty, globex/vip enabled.
    result = _audit(last_counts={("acme", "vip"): 3})

    assert result.global_failures == []
    assert result.quarantined == {}
    assert result.success is True
    assert result.data_docs is not None and result.data_docs.name == "index.html"
    assert result.data_docs.is_file()
    assert "segment_bounds" in result.data_docs.read_text()
    sizes = cand.execute(
        "select account_id, segment_key, member_count from segments_audit.audit_candidate_sizes "
        "order by 1, 2"
    ).fetchall()
    # Disabled segments are not sized (nor bounded); an empty enabled one is, with 0.
    assert sizes == [("acme", "empty", 0), ("acme", "vip", 3), ("globex", "vip", 1)]


def test_duplicate_membership_is_a_global_failure(cand: psycopg.Connection) -> None:
    add_segment(cand, "acme", "vip", ["c0", "c1", "c1"])

    result = _audit()

    assert result.success is False
    assert any("membership_integrity" in f and "at most once" in f for f in result.global_failures)


def test_duplicates_are_named_and_counted_from_the_summary(cand: psycopg.Connection) -> None:
    # The checks read audit_membership_summary (one row per segment), yet name each contact.
    add_segment(cand, "acme", "vip", ["c0", "c1", "c1", "c2", "c2", "c2"])
    add_segment(cand, "globex", "vip", ["g0", None])  # type: ignore[list-item]

    result = _audit()

    duplicates = [f for f in result.global_failures if "at most once" in f]
    assert len(duplicates) == 1
    assert "2 unexpected row(s)" in duplicates[0]
    assert "contact_id=c1" in duplicates[0] and "contact_id=c2" in duplicates[0]
    nulls = [f for f in result.global_failures if "null contact_id" in f]
    assert len(nulls) == 1 and "segment_key=vip" in nulls[0] and "null_contacts=1" in nulls[0]
    summary = cand.execute(
        "select account_id, member_rows, duplicate_members, null_contacts "
        "from segments_audit.audit_membership_summary order by 1"
    ).fetchall()
    assert summary == [("acme", 6, 2, 0), ("globex", 2, 0, 1)]


def test_cross_tenant_and_deleted_members_are_global_failures(cand: psycopg.Connection) -> None:
    # g0 is globex's contact; x9 is not a staged contact at all (e.g. soft-deleted).
    add_segment(cand, "acme", "vip", ["c0", "g0", "x9"])

    result = _audit()

    leaks = [f for f in result.global_failures if "Tenant isolation" in f]
    assert len(leaks) == 1
    assert "2 unexpected row(s)" in leaks[0]
    assert "contact_id=g0" in leaks[0] and "contact_id=x9" in leaks[0]
    assert result.quarantined == {}


def test_missing_catalogue_rows_are_global_failures(cand: psycopg.Connection) -> None:
    add_segment(cand, "acme", "vip", ["c0"])
    # Members of a segment without an enabled catalogue row.
    cand.execute("insert into segments_audit.segment_memberships values ('acme', 'ghost', 'c1')")
    # A disabled segment must not have built members either.
    add_segment(cand, "acme", "retired", ["c2"], enabled=False)

    # Declared by the definitions (int_segment_scopes) but not catalogued.
    add_scope(cand, "globex", "declared")

    result = _audit()

    failures = "\n".join(result.global_failures)
    assert "enabled catalogue row" in failures and "segment_key=ghost" in failures
    assert "segment_key=retired" in failures
    assert "definitions declare" in failures and "segment_key=declared" in failures


def test_segment_bounds_quarantine_only_the_failing_segments(cand: psycopg.Connection) -> None:
    add_segment(cand, "acme", "too_small", ["c0"], min_members=2)
    add_segment(cand, "acme", "too_big", ["c0", "c1", "c2"], max_members=2)
    add_segment(cand, "acme", "jumped", ["c0", "c1", "c2", "c3"])  # default 50% vs last 2
    add_segment(cand, "acme", "tight", ["c0", "c1", "c2"], max_change_pct=10)  # vs last 4
    add_segment(cand, "acme", "steady", ["c0", "c1", "c2"], min_members=1, max_members=9)
    add_segment(cand, "globex", "first_publish", ["g0", "g1", "g2"])  # no last count: skipped
    add_segment(cand, "globex", "from_zero", ["g0"])  # last count 0: no base to compare

    result = _audit(
        last_counts={
            ("acme", "jumped"): 2,
            ("acme", "tight"): 4,
            ("acme", "steady"): 3,
            ("globex", "from_zero"): 0,
        }
    )

    assert result.global_failures == []
    assert set(result.quarantined) == {
        ("acme", "too_small"),
        ("acme", "too_big"),
        ("acme", "jumped"),
        ("acme", "tight"),
    }
    assert result.quarantined[("acme", "too_small")] == "member count 1 is below min_members 2"
    assert result.quarantined[("acme", "too_big")] == "member count 3 is above max_members 2"
    assert "from 2 to 4 (100.0% > max_change_pct 50%)" in result.quarantined[("acme", "jumped")]
    assert "from 4 to 3 (25.0% > max_change_pct 10%)" in result.quarantined[("acme", "tight")]
    assert result.success is False


def test_change_within_max_change_pct_passes(cand: psycopg.Connection) -> None:
    add_segment(cand, "acme", "vip", ["c0", "c1", "c2"], max_change_pct=50)

    assert _audit(last_counts={("acme", "vip"): 2}).quarantined == {}  # +50% is allowed
    assert ("acme", "vip") in _audit(last_counts={("acme", "vip"): 1}).quarantined  # +200%


def _sizes(conn: psycopg.Connection) -> dict[str, tuple]:
    rows = conn.execute(
        "select segment_key, last_published_hash is not null, definition_changed, change_floor "
        "from segments_audit.audit_candidate_sizes where account_id = 'acme'"
    ).fetchall()
    return {key: tuple(rest) for key, *rest in rows}


def test_a_changed_definition_is_not_judged_by_max_change_pct(cand: psycopg.Connection) -> None:
    ten = [f"c{i}" for i in range(10)]
    add_segment(cand, "acme", "redefined", ten)  # its definition_hash is md5('redefined')
    add_segment(cand, "acme", "same_rule", ten)
    add_segment(cand, "acme", "redefined_small", ten, min_members=11, max_change_pct=10)
    add_segment(cand, "acme", "redefined_big", ten, max_members=9)
    add_segment(cand, "acme", "hash_unknown", ten)
    last = {
        ("acme", key): 40
        for key in ("redefined", "same_rule", "redefined_small", "redefined_big", "hash_unknown")
    }
    hashes = {
        ("acme", "redefined"): "hash-of-the-old-rule",
        ("acme", "same_rule"): hashlib.md5(b"same_rule").hexdigest(),
        ("acme", "redefined_small"): "hash-of-the-old-rule",
        ("acme", "redefined_big"): "hash-of-the-old-rule",
    }

    result = _audit(last_counts=last, last_hashes=hashes)

    # 40 -> 10 members is -75%: a new definition_hash publishes, the same one quarantines.
    assert ("acme", "redefined") not in result.quarantined
    assert "from 40 to 10 (75.0% > max_change_pct 50%)" in result.quarantined[("acme", "same_rule")]
    # min_members and max_members still judge a changed definition (and only they do).
    assert result.quarantined[("acme", "redefined_small")] == (
        "member count 10 is below min_members 11"
    )
    assert result.quarantined[("acme", "redefined_big")] == "member count 10 is above max_members 9"
    # No published hash known: not a changed definition, so max_change_pct applies.
    assert "max_change_pct" in result.quarantined[("acme", "hash_unknown")]
    assert _sizes(cand) == {
        "redefined": (True, True, 0),
        "same_rule": (True, False, 0),
        "redefined_small": (True, True, 0),
        "redefined_big": (True, True, 0),
        "hash_unknown": (False, False, 0),
    }


def test_a_change_below_the_floor_never_quarantines(
    cand: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGMENTS_CHANGE_FLOOR", "20")
    add_contacts(cand, "acme", 60, prefix="d")
    members = [f"d{i}" for i in range(60)]
    add_segment(cand, "acme", "tiny", members[:4], max_change_pct=10)  # 2 -> 4: +100%
    add_segment(cand, "acme", "below", members[:39])  # 20 -> 39: +95%, 19 members
    add_segment(cand, "acme", "at_floor", members[:40])  # 20 -> 40: +100%, 20 members
    add_segment(cand, "acme", "min_bound", members[:4], min_members=5)  # bounds still apply

    result = _audit(
        last_counts={
            ("acme", "tiny"): 2,
            ("acme", "below"): 20,
            ("acme", "at_floor"): 20,
            ("acme", "min_bound"): 3,
        }
    )

    assert set(result.quarantined) == {("acme", "at_floor"), ("acme", "min_bound")}
    assert "from 20 to 40 (100.0% > max_change_pct 50%)" in result.quarantined[("acme", "at_floor")]
    assert result.quarantined[("acme", "min_bound")] == "member count 4 is below min_members 5"
    assert {v[2] for v in _sizes(cand).values()} == {20}


def test_the_change_floor_defaults_to_20_and_must_be_a_count(
    cand: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEGMENTS_CHANGE_FLOOR")
    add_segment(cand, "acme", "vip", ["c0", "c1", "c2", "c3"])  # 2 -> 4: +100%, 2 members
    assert _audit(last_counts={("acme", "vip"): 2}).quarantined == {}

    monkeypatch.setenv("SEGMENTS_CHANGE_FLOOR", "twenty")
    failures = _audit(last_counts={("acme", "vip"): 2}).global_failures
    assert any("SEGMENTS_CHANGE_FLOOR='twenty'" in f for f in failures), failures


def test_exclusive_group_violation_is_global(db: psycopg.Connection, gx_dir: Path) -> None:
    create_candidates(db, groups=True)
    try:
        add_contacts(db, "acme", 3)
        add_segment(db, "acme", "gold", ["c0", "c1"])
        add_segment(db, "acme", "silver", ["c1", "c2"])
        db.execute(
            "insert into segments_audit.int_group_catalogue values "
            "('acme', 'tier', true), ('acme', 'interests', false)"
        )
        db.execute(
            "insert into segments_audit.segment_group_assignments values "
            "('acme', 'tier', 'c0', 'gold'), ('acme', 'tier', 'c1', 'gold'), "
            "('acme', 'tier', 'c1', 'silver'), "
            "('acme', 'interests', 'c2', 'gold'), ('acme', 'interests', 'c2', 'silver')"
        )

        result = _audit()

        violations = [f for f in result.global_failures if f.startswith("exclusive_groups")]
        assert len(violations) == 1
        # Only the exclusive group counts; c2 in two non-exclusive segments is fine.
        assert "1 unexpected row(s)" in violations[0] and "contact_id=c1" in violations[0]
    finally:
        drop_candidates(db)


def test_missing_group_relations_count_as_no_groups(cand: psycopg.Connection) -> None:
    add_segment(cand, "acme", "vip", ["c0"])

    result = _audit()

    assert result.success is True
    count = cand.execute("select count(*) from segments_audit.audit_group_assignments").fetchone()
    assert count == (0,)


def test_recipients_need_a_valid_address(cand: psycopg.Connection) -> None:
    # A phone that slipped past staging normalisation, with whatsapp consent.
    cand.execute(
        "insert into segments_staging.stg_crm__contacts values "
        "('bad', 'acme', null, '0812-not-e164', true, false, false)"
    )
    add_segment(cand, "acme", "vip", ["c0", "bad"])

    result = _audit()

    failures = [f for f in result.global_failures if f.startswith("recipients")]
    assert len(failures) == 1 and "contact_id=bad" in failures[0]
    recipients = cand.execute(
        "select channel from segments_audit.audit_candidate_recipients "
        "where contact_id = 'bad' order by 1"
    ).fetchall()
    assert recipients == [("whatsapp",)]  # no consent for sms/email, so no other channel


def test_recipients_without_consent_are_not_candidates(cand: psycopg.Connection) -> None:
    cand.execute(
        "insert into segments_staging.stg_crm__contacts values "
        "('quiet', 'acme', 'quiet@example.com', '+628120000001', false, false, true)"
    )
    add_segment(cand, "acme", "vip", ["quiet"])

    assert _audit().success is True
    rows = cand.execute(
        "select channel, address from segments_audit.audit_candidate_recipients"
    ).fetchall()
    assert rows == [("sms", "+628120000001")]


def test_missing_candidate_is_a_global_failure(db: psycopg.Connection, gx_dir: Path) -> None:
    drop_candidates(db)

    result = _audit()

    assert result.success is False
    assert len(result.global_failures) == 1
    assert "segment_memberships" in result.global_failures[0]
    assert "build" in result.global_failures[0]


def test_result_round_trips_through_json() -> None:
    result = AuditResult(
        global_failures=[], quarantined={("acme", "vip"): "too small"}, data_docs=Path("/x.html")
    )
    again = AuditResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert again.success is False


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "uncommitted" not in p.relative_to(root).parts
    }


def test_runs_leave_the_committed_project_unchanged(cand: psycopg.Connection, gx_dir: Path) -> None:
    add_segment(cand, "acme", "vip", ["c0"])
    committed = _tree_digest(PROJECT / "expectations")

    _audit()

    assert _tree_digest(gx_dir) == committed
    assert (gx_dir / "uncommitted" / "validations").is_dir()


def test_committed_project_holds_no_credentials(pg_database: str) -> None:
    text = "\n".join(
        p.read_text()
        for p in (PROJECT / "expectations").rglob("*")
        if p.suffix in {".json", ".yml"} and "uncommitted" not in p.parts
    )
    assert "${PGUSER}" in text
    password = os.environ.get("PGPASSWORD")
    assert password and password not in text
    assert "password" not in text.lower()


def test_committed_suites_are_what_audit_project_writes() -> None:
    """expectations/suites/*.json are audit_project's output: same expectations, same SQL."""
    from segmentation_dev import audit_project

    def shape(expectation: dict) -> tuple:
        return (expectation["type"], expectation.get("description"), expectation["kwargs"])

    for name, expectations in audit_project._suites().items():
        committed = json.loads((PROJECT / "expectations" / "suites" / f"{name}.json").read_text())
        assert [shape(e) for e in committed["expectations"]] == [
            shape(e.configuration.to_json_dict()) for e in expectations
        ], name
