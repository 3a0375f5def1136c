"""Priority groups: validation (file:line:col errors). The exclusive assignment on real
Postgres is in tests/dbt/test_groups.py."""

from __future__ import annotations

from pathlib import Path

from _activity import PACKAGES, messages, plan, write, write_group


def test_group_errors(tmp_path: Path) -> None:
    write(tmp_path, "acme", "champions", "{field: loyalty_points, op: gte, value: 10}")
    write(tmp_path, "acme", "sleepy", "{field: loyalty_points, op: lt, value: 1}", enabled=False)
    write_group(
        tmp_path,
        "acme",
        "lifecycle",
        """\
        group: lifecycle
        exclusive: true
        order: [champions, champs, sleepy, champions]
        fallback: champions
        """,
    )
    write_group(
        tmp_path,
        "acme",
        "other",
        """\
        group: wrong_name
        order: [champions]
        """,
    )
    write_group(
        tmp_path,
        "acme",
        "loose",
        """\
        group: loose
        exclusive: false
        order: [champions]
        """,
    )
    errors = messages(plan(tmp_path), tmp_path)
    assert "acme/_groups/lifecycle.yml:3:36: order: 'champions' is listed twice" in errors
    assert any("fallback 'champions' is also in order" in e and ":4:11:" in e for e in errors)
    assert any("group 'wrong_name' does not match the file name 'other.yml'" in e for e in errors)
    assert any("only exclusive groups are supported" in e and ":2:12:" in e for e in errors)


def test_group_members_must_be_enabled_known_segments(tmp_path: Path) -> None:
    write(tmp_path, "acme", "champions", "{field: loyalty_points, op: gte, value: 10}")
    write(tmp_path, "acme", "sleepy", "{field: loyalty_points, op: lt, value: 1}", enabled=False)
    write(tmp_path, "*", "buyers", "has: {object: orders}")
    write_group(
        tmp_path, "acme", "lifecycle", "group: lifecycle\norder: [champions, champs, sleepy]\n"
    )
    write_group(tmp_path, "plusco", "g", "group: g\norder: [buyers]\nfallback: other\n")
    errors = messages(plan(tmp_path, PACKAGES), tmp_path)
    assert any(
        "group 'lifecycle': unknown segment 'champs' for account 'acme' (did you mean "
        "'champions'?)" in e
        for e in errors
    ), errors
    assert any("group 'lifecycle': segment 'sleepy' is disabled" in e for e in errors)
    assert any(
        "group 'g': template 'buyers' is not built for account 'plusco'" in e for e in errors
    )
