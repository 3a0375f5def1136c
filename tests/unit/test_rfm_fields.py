"""The rfm.* and cluster.* fields in the language: validation (closed values with a
did-you-mean, types, operators), what they compile to, and the shipped RFM template group
(segment_defs/_all/_groups/rfm.yml). Their SQL on Postgres: tests/dbt/test_rfm.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from _activity import PACKAGES, messages, parse_condition, parse_errors, plan, write, write_group
from _segments import PROJECT_DIR

from segmentation.compiler.render import entities_used
from segmentation.compiler.sources import load_definitions
from segmentation.language.catalogue import CATALOGUE, FieldType
from segmentation.language.groups import load_groups
from segmentation.language.model import Condition
from segmentation.language.rfm import RFM_SEGMENTS


def test_fields_are_catalogued_with_their_columns() -> None:
    expected = {
        "rfm.segment": ("rfm", "rfm_segment", FieldType.STRING),
        "rfm.r_score": ("rfm", "r_score", FieldType.NUMBER),
        "rfm.f_score": ("rfm", "f_score", FieldType.NUMBER),
        "rfm.m_score": ("rfm", "m_score", FieldType.NUMBER),
        "rfm.recency_days": ("rfm", "recency_days", FieldType.NUMBER),
        "rfm.frequency": ("rfm", "frequency", FieldType.NUMBER),
        "rfm.monetary": ("rfm", "monetary", FieldType.NUMBER),
        "cluster.id": ("cluster", "cluster_id", FieldType.NUMBER),
        "cluster.label": ("cluster", "cluster_label", FieldType.STRING),
    }
    for name, (entity, column, ftype) in expected.items():
        field = CATALOGUE.lookup(name)
        assert (field.entity, field.column, field.type) == (entity, column, ftype), name
    assert CATALOGUE.lookup("rfm.segment").values == RFM_SEGMENTS
    assert CATALOGUE.lookup("cluster.label").values is None


def test_a_valid_rfm_condition_compiles_to_its_column() -> None:
    node = parse_condition("{field: rfm.segment, op: in, value: [champions, no_orders]}")
    assert isinstance(node, Condition)
    assert node.to_json() == {
        "kind": "condition",
        "field": "rfm.segment",
        "entity": "rfm",
        "column": "rfm_segment",
        "type": "string",
        "op": "in",
        "value": ["champions", "no_orders"],
    }
    both = parse_condition(
        """\
        all:
          - {field: rfm.r_score, op: gte, value: 4}
          - {field: cluster.id, op: eq, value: 2}
          - {field: loyalty_points, op: gt, value: 0}
        """
    )
    assert entities_used(both) == ["cluster", "contact", "rfm"]


def test_a_misspelt_rfm_segment_is_an_error_with_did_you_mean() -> None:
    errors = parse_errors("{field: rfm.segment, op: eq, value: champoins}")
    assert len(errors) == 1
    assert "case.yml:1:37: unknown value 'champoins' for field 'rfm.segment'" in errors[0]
    assert "(did you mean 'champions'?)" in errors[0]
    assert "known values: champions, loyal," in errors[0]
    # in a list, the bad item is pointed at
    errors = parse_errors("{field: rfm.segment, op: not_in, value: [loyal, hibernatin]}")
    assert len(errors) == 1
    assert "case.yml:1:49: unknown value 'hibernatin'" in errors[0]
    assert "(did you mean 'hibernating'?)" in errors[0]


def test_text_operators_on_rfm_segment_take_any_text() -> None:
    # a substring is not a segment name; only exact comparisons are checked
    parse_condition("{field: rfm.segment, op: starts_with, value: at_}")
    parse_condition("{field: cluster.label, op: icontains, value: retail}")


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            "{field: rfm.r_score, op: eq, value: high}",
            "the value of 'eq' on number field 'rfm.r_score' must be a number, got a string",
        ),
        (
            "{field: rfm.monetary, op: gte, value: '100'}",
            "must be a number, got a string (remove the quotes)",
        ),
        (
            "{field: rfm.segment, op: gt, value: 3}",
            "operator 'gt' does not apply to string field 'rfm.segment'",
        ),
        (
            "{field: cluster.id, op: contains, value: '1'}",
            "operator 'contains' does not apply to number field 'cluster.id'",
        ),
        ("{field: rfm.segmnt, op: eq, value: lost}", "unknown field 'rfm.segmnt'"),
        ("{field: rfm.segment, op: eq, value: lost, type: string}", "'type' can only"),
    ],
)
def test_type_mismatches_and_unknown_fields(condition: str, message: str) -> None:
    errors = parse_errors(condition)
    assert len(errors) == 1 and message in errors[0], errors


def test_unknown_field_suggests_the_rfm_field() -> None:
    (error,) = parse_errors("{field: rfm.segmnt, op: eq, value: lost}")
    assert "(did you mean 'rfm.segment'?)" in error


def test_shipped_rfm_group_is_exclusive_and_exhaustive_by_construction() -> None:
    defs = PROJECT_DIR / "segment_defs"
    groups, issues = load_groups(defs)
    assert not issues
    (rfm,) = [g for g in groups if g.key == "rfm"]
    assert rfm.account == "*"
    assert rfm.order == tuple(f"rfm_{name}" for name in RFM_SEGMENTS)
    templates = {
        s.key: s
        for s in load_definitions([defs / "_all"], None).segments
        if s.key.startswith("rfm_")
    }
    assert set(templates) == set(rfm.order)
    # each template selects exactly one rfm_segment, a different one each: with one
    # rfm_segment per contact they partition the contacts
    selected = []
    for key in rfm.order:
        cond = templates[key].condition
        assert isinstance(cond, Condition) and cond.field is not None
        assert (cond.field.name, cond.op) == ("rfm.segment", "eq")
        selected.append(cond.value)
    assert sorted(selected) == sorted(RFM_SEGMENTS)
    assert rfm.fallback is not None and rfm.fallback not in templates


def test_template_groups_list_only_templates(tmp_path: Path) -> None:
    write(tmp_path, "*", "big", "{field: loyalty_points, op: gte, value: 10}")
    write(tmp_path, "acme", "local_only", "{field: loyalty_points, op: lt, value: 1}")
    write(tmp_path, "*", "buyers", "has: {object: orders}")
    write_group(tmp_path, "_all", "tiers", "group: tiers\norder: [big, local_only]\n")
    write_group(tmp_path, "_all", "gated", "group: gated\norder: [big, buyers]\n")
    errors = messages(plan(tmp_path, PACKAGES), tmp_path)
    assert any(
        "_all/_groups/tiers.yml" in e
        and "unknown template 'local_only'; a template group may only list templates" in e
        for e in errors
    ), errors
    assert any(
        "_all/_groups/gated.yml" in e
        and "template 'buyers' is not built for account(s) plusco" in e
        for e in errors
    ), errors
    assert len(errors) == 2, errors


def test_a_valid_template_group_loads_as_account_star(tmp_path: Path) -> None:
    write(tmp_path, "*", "big", "{field: loyalty_points, op: gte, value: 10}")
    write_group(tmp_path, "_all", "tiers", "group: tiers\norder: [big]\nfallback: rest\n")
    result = plan(tmp_path, PACKAGES)
    assert not result.issues
    assert [(g.account, g.key, g.order) for g in result.groups] == [("*", "tiers", ("big",))]
