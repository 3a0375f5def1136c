"""`segments diff` without a database: change percentages, the definition diff and the
pull-request markdown (the numbers come from tests/e2e/test_diff_export.py)."""

from __future__ import annotations

import datetime as dt

from segmentation.cli.review import markdown
from segmentation.language.model import logic_hash
from segmentation.steps.diff import DiffResult, SegmentDiff, definition_diff
from segmentation.steps.publish import plan_definitions


def seg(status: str = "changed", published: int = 40, entered: int = 3, exited: int = 7):
    return SegmentDiff(
        account="acme",
        key="vip",
        status=status,
        published_hash=None if status == "new" else "a" * 64,
        candidate_hash=None if status == "removed" else "b" * 64,
        published=published,
        candidate=published + entered - exited,
        entered=entered,
        exited=exited,
        definition_diff="--- published/acme/vip\n+++ working/acme/vip\n-  value: '3'\n",
    )


def test_change_pct_is_entered_plus_exited_over_the_published_size() -> None:
    assert seg().change_pct == 25.0
    assert seg("new", published=0, entered=9, exited=0).change_pct == 100.0
    assert seg("removed", published=12, entered=0, exited=12).change_pct == 100.0
    assert seg(published=0, entered=0, exited=0).change_pct == 0.0
    assert seg(published=0, entered=2, exited=0).change_pct == 100.0
    result = DiffResult(dt.date(2026, 11, 22), [seg(), seg("new", 0, 9, 0)])
    assert [s.status for s in result.over(25.0)] == ["new"]
    assert [s.status for s in result.over(24.9)] == ["changed", "new"]


def test_definition_diff_ignores_key_order_and_field_details() -> None:
    cond = {"kind": "condition", "field": "orders_count", "op": "gte", "value": "3"}
    before = {"key": "vip", "account": "acme", "condition": {**cond, "column": "x", "type": "n"}}
    after = {"condition": {**cond, "value": "5"}, "account": "acme", "key": "vip"}
    text = definition_diff("acme/vip", before, after, "a" * 64, "b" * 64)
    changed = [line for line in text.splitlines() if line[:1] in "+-"]
    assert changed == [
        "--- published/acme/vip (aaaaaaaaaaaa)",
        "+++ working/acme/vip (bbbbbbbbbbbb)",
        "-condition: {kind: condition, field: orders_count, op: gte, value: '3'}",
        "+condition: {kind: condition, field: orders_count, op: gte, value: '5'}",
    ]
    assert definition_diff("acme/vip", before, before) == ""
    unrecorded = definition_diff("acme/vip", None, after, "a" * 64, "b" * 64)
    assert unrecorded.startswith("# the published definition aaaaaaaaaaaa was not recorded")


def test_markdown_has_a_table_per_account_and_collapsed_diffs() -> None:
    result = DiffResult(dt.date(2026, 11, 22), [seg()])
    text = markdown(result, 10.0, result.over(10.0))
    assert "### acme" in text
    assert "| `vip` | changed | 40 | 36 | 3 | 7 | 25 |" in text
    assert "**1 segment(s) change by more than 10%.**" in text
    assert "<details>" in text and "```diff\n--- published/acme/vip" in text
    empty = markdown(DiffResult(dt.date(2026, 11, 22), []))
    assert "No definition differs from what is published." in empty


def test_only_definitions_that_match_their_hash_are_recorded() -> None:
    logic = {"key": "vip", "account": "acme", "condition": {"kind": "all", "nodes": []}}
    plan = {
        "segments": [
            {"key": "vip", "account": "acme", "definition_hash": logic_hash(logic), "logic": logic},
            {"key": "old", "account": "acme", "definition_hash": "c" * 64},  # an older plan file
        ]
    }
    assert set(plan_definitions(plan)) == {logic_hash(logic)}
    assert plan_definitions(None) == {}
