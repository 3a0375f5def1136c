"""Validation of has:, in_segment, package gating and priority groups: each error is clear
and points at file:line:col. Pure Python (the validator), no database."""

from __future__ import annotations

from pathlib import Path

import pytest
from _activity import messages, parse_condition, parse_errors, plan, write

from segmentation.compiler import features
from segmentation.language.activity import Has

# --- has: ---


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("has: {object: dealz}", "case.yml:1:15: unknown object 'dealz' (did you mean 'deals'?)"),
        (
            "has: {object: deals, where: {field: amout, op: gt, value: 1}}",
            "case.yml:1:37: unknown field 'amout' for deals (did you mean 'amount'?)",
        ),
        (
            "has: {object: orders, where: {field: status, op: gt, value: 1}}",
            "case.yml:1:50: operator 'gt' does not apply to string field 'status'",
        ),
        (
            "has: {object: deals, sum: {field: status, gte: 1}}",
            "case.yml:1:35: sum: needs a number field; 'status' is a string",
        ),
        (
            "has: {object: deals, count: {gte: 1}, max: {field: amount, gt: 1}}",
            "case.yml:1:39: has: takes one aggregate, found count and max",
        ),
        (
            "has: {object: orders, within: {last_days: -1}}",
            "case.yml:1:43: within.last_days must be a whole number from 1 to 36600, got -1",
        ),
        (
            "has: {object: orders, within: {last_weeks: 2}}",
            "case.yml:1:32: unknown window 'last_weeks'",
        ),
        (
            "has: {object: orders, count: {gte: 1, lte: 3}}",
            "case.yml:1:30: count: needs exactly one comparison like {gte: 3}, found gte, lte",
        ),
        (
            "has: {object: orders, count: {greater_than: 1}}",
            "case.yml:1:31: operator 'greater_than' does not apply to count of orders (a number) "
            "(did you mean 'gt'?)",
        ),
        (
            "has: {object: orders, count: {gte: 1.5}}",
            "case.yml:1:36: count compares with whole numbers",
        ),
        (
            "has: {object: orders, max: {field: ordered_at, gte: 3}}",
            "case.yml:1:48: operator 'gte' does not apply to max of orders (a date)",
        ),
        (
            "has: {object: orders, where: {has: {object: deals}}}",
            "case.yml:1:30: 'has' cannot be used inside has: orders where:",
        ),
        ("has: {where: {field: status, op: eq, value: x}}", "missing required key 'object'"),
        ("has: {object: orders, colour: red}", "unknown key 'colour' in has:"),
        ("has: [orders]", "has: must be a mapping with 'object', got a list"),
        (
            "has: {object: orders, where: {field: custom.x, op: eq, value: 1}}",
            "unknown field 'custom.x' for orders",
        ),
        ("in_segment: Loyal-Customers", "in_segment needs a segment key (snake_case)"),
        ("in_segment: [a, b]", "in_segment needs a segment key (snake_case), got a list"),
    ],
)
def test_has_errors_point_at_the_problem(snippet: str, expected: str) -> None:
    errors = parse_errors(snippet)
    assert any(expected in e for e in errors), errors


def test_equal_features_share_one_id_and_comparisons_do_not_split_them() -> None:
    a = parse_condition("has: {object: conversations, within: {last_days: 90}, count: {eq: 0}}")
    b = parse_condition(
        """
        has:
          object: conversations
          within: {last_days: 90}
        """
    )
    c = parse_condition("has: {object: conversations, within: {last_days: 30}}")
    assert isinstance(a, Has) and isinstance(b, Has) and isinstance(c, Has)
    assert a.feature == b.feature and a.feature.id == b.feature.id
    assert a.feature.id != c.feature.id
    assert (a.op, a.value, b.op, b.value) == ("eq", "0", "gte", "1")
    found = features.collect_features([a, b, c])
    assert list(found) == ["conversations"] and len(found["conversations"]) == 2


def test_feature_model_text_keeps_values_inert() -> None:
    node = parse_condition(
        """
        has:
          object: deals
          where: {field: stage, op: eq, value: "x'; drop table crm_raw.deals; -- }} {% {# \\\\"}
        """
    )
    text = features.render_model("deals", features.collect_features([node])["deals"])
    body = text.split("fromjson(", 1)[1]
    for bad in ("}}'", "{%", "{#", "drop table crm_raw.deals; -- }}"):
        assert bad not in body.rsplit(")", 2)[0]
    assert "drop" in body  # the value is there, as escaped JSON text


# --- in_segment ---


def test_unknown_and_disabled_references_are_errors(tmp_path: Path) -> None:
    write(tmp_path, "acme", "a", "in_segment: loyal_custmers")
    write(tmp_path, "acme", "b", "in_segment: c")
    write(tmp_path, "acme", "c", "{field: lifecycle_stage, op: eq, value: lead}", enabled=False)
    errors = messages(plan(tmp_path), tmp_path)
    assert any(
        e.startswith(
            "acme/a.yml:8:15: in_segment 'loyal_custmers': unknown segment; account "
            "'acme' has no segment 'loyal_custmers'"
        )
        for e in errors
    ), errors
    assert any(
        e.startswith("acme/b.yml:8:15: in_segment 'c' refers to a disabled segment") for e in errors
    ), errors


def test_a_cycle_names_every_step(tmp_path: Path) -> None:
    write(tmp_path, "acme", "a", "in_segment: b")
    write(
        tmp_path,
        "acme",
        "b",
        "all:\n  - {field: lifecycle_stage, op: eq, value: lead}\n  - in_segment: c",
    )
    write(tmp_path, "acme", "c", "not: {in_segment: a}")
    write(tmp_path, "acme", "d", "in_segment: d")
    errors = messages(plan(tmp_path), tmp_path)
    cycle = [
        e
        for e in errors
        if "acme/a -> acme/b -> acme/c -> acme/a" in e
        or "acme/b -> acme/c -> acme/a -> acme/b" in e
        or "acme/c -> acme/a -> acme/b -> acme/c" in e
    ]
    assert len(cycle) == 1, errors
    assert "acme/a.yml:8:15" in cycle[0] and "acme/b.yml:10:19" in cycle[0]
    assert "acme/c.yml:8:21" in cycle[0]
    assert any("in_segment cycle: acme/d refers to itself" in e for e in errors), errors


def test_references_resolve_to_models_in_dependency_order(tmp_path: Path) -> None:
    write(tmp_path, "acme", "top", "all:\n  - in_segment: mid\n  - not: {in_segment: base}")
    write(tmp_path, "acme", "mid", "in_segment: base")
    write(tmp_path, "*", "base", "{field: lifecycle_stage, op: eq, value: lead}")
    write(tmp_path, "beta", "base", "{field: lifecycle_stage, op: eq, value: customer}")
    write(tmp_path, "*", "uses_base", "in_segment: base")
    p = plan(tmp_path)
    assert not p.issues, messages(p, tmp_path)
    order = [f"{s.account}/{s.key}" for s in p.segments]
    assert order.index("*/base") < order.index("acme/mid") < order.index("acme/top")
    assert order.index("beta/base") < order.index("*/uses_base")
    top = next(s for s in p.segments if s.key == "top")
    json = top.condition.to_json()
    assert json["nodes"][0]["sources"] == [
        {"model": "seg__acme__mid", "only_accounts": [], "except_accounts": []}
    ]
    assert json["nodes"][1]["node"]["sources"] == [
        {"model": "seg__all__base", "only_accounts": ["acme"], "except_accounts": []}
    ]
    uses = next(s for s in p.segments if s.key == "uses_base")
    assert uses.condition.to_json()["sources"] == [
        {"model": "seg__all__base", "only_accounts": [], "except_accounts": ["beta"]},
        {"model": "seg__beta__base", "only_accounts": ["beta"], "except_accounts": []},
    ]


def test_a_template_can_only_refer_to_templates(tmp_path: Path) -> None:
    write(tmp_path, "acme", "vip", "{field: loyalty_points, op: gte, value: 10}")
    write(tmp_path, "*", "t", "in_segment: vip")
    errors = messages(plan(tmp_path), tmp_path)
    assert any(
        "_all/t.yml:8:15: in_segment 'vip': a template can only refer to templates" in e
        and "(only account segments: acme)" in e
        for e in errors
    ), errors


def test_validating_one_file_resolves_references_against_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segmentation.errors import DefinitionError
    from segmentation.steps import definitions as api

    (tmp_path / "dbt_project.yml").write_text("name: x\n")
    defs = tmp_path / "segment_defs"
    write(defs, "acme", "base", "{field: lifecycle_stage, op: eq, value: lead}")
    broken = write(defs, "acme", "broken", "{field: nope, op: eq, value: 1}")
    top = write(defs, "acme", "top", "in_segment: base")
    bad = write(defs, "acme", "bad", "in_segment: missing")
    monkeypatch.setenv("SEGMENTS_PROJECT_DIR", str(tmp_path))
    result = api.validate([top], offline=True)
    assert [s.key for s in result.segments] == ["top"]
    assert result.segments[0].condition.to_json()["sources"][0]["model"] == "seg__acme__base"
    with pytest.raises(DefinitionError) as exc:
        api.validate([bad], offline=True)
    messages = [str(i) for i in exc.value.issues]
    # the broken file elsewhere is context, not reported; the bad reference is
    assert len(messages) == 1 and "in_segment 'missing': unknown segment" in messages[0]
    assert str(broken.name) not in messages[0]
