"""Validation: every error class, reported as file:line:col: message, all at once."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import jinja2
import jsonschema
import pytest
import yaml
from _segments import PROJECT_DIR, project_dir

from segmentation.cli import main as cli
from segmentation.compiler.literals import jinja_string
from segmentation.compiler.sources import load_definitions
from segmentation.language.schema import build_schema, schema_text

VALID = """\
key: {key}
name: Loyal customers
account: acme
owner: growth-team
visibility: team
where:
  all:
    - {{field: lifecycle_stage, op: eq, value: customer}}
    - {{field: loyalty_points, op: gte, value: 5000}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "segment_defs").mkdir()
    with project_dir(tmp_path):
        yield tmp_path


def write(project: Path, rel: str, text: str) -> Path:
    path = project / "segment_defs" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def errors(project: Path, accounts: set[str] | None = None) -> list[str]:
    return [str(e) for e in load_definitions(None, accounts).errors]


def test_the_issue_example_is_valid(project: Path) -> None:
    text = (PROJECT_DIR / "segment_defs/acme/loyal_customers.yml").read_text()
    write(project, "acme/loyal_customers.yml", text)
    result = load_definitions(None, {"acme"})
    assert result.errors == []
    [segment] = result.segments
    assert (segment.account, segment.key, segment.model_name) == (
        "acme",
        "loyal_customers",
        "seg__acme__loyal_customers",
    )


def test_unknown_operator_with_suggestion(project: Path) -> None:
    write(
        project,
        "acme/loyal_customers.yml",
        VALID.format(key="loyal_customers").replace("op: gte", "op: greater_than"),
    )
    assert errors(project) == [
        "segment_defs/acme/loyal_customers.yml:9:35: unknown operator 'greater_than' for "
        "number field 'loyalty_points' (did you mean 'gt'?)"
    ]


def test_yaml_syntax_error(project: Path) -> None:
    write(project, "acme/x.yml", "key: x\nname: [unclosed\n")
    [error] = errors(project)
    assert error.startswith("segment_defs/acme/x.yml:3:1: YAML syntax error: expected ','")


def test_missing_unknown_and_duplicated_keys_all_reported(project: Path) -> None:
    write(
        project,
        "acme/x.yml",
        """\
        key: x
        name: X
        name: Y
        account: acme
        colour: red
        visibility: team
        where: {field: city, op: eq, value: Jakarta}
        """,
    )
    assert errors(project) == [
        "segment_defs/acme/x.yml:1:1: missing required key 'owner' in segment",
        "segment_defs/acme/x.yml:3:1: duplicate key 'name' (first defined at line 2)",
        "segment_defs/acme/x.yml:5:1: unknown key 'colour' in segment",
    ]


def test_unknown_key_in_condition_with_suggestion(project: Path) -> None:
    write(project, "acme/x.yml", VALID.format(key="x").replace("value: 5000", "valu: 5000"))
    assert errors(project) == [
        "segment_defs/acme/x.yml:9:7: operator 'gte' needs a 'value'",
        "segment_defs/acme/x.yml:9:40: unknown key 'valu' in a condition (did you mean 'value'?)",
    ]


def test_key_must_match_file_name(project: Path) -> None:
    write(project, "acme/other_name.yml", VALID.format(key="loyal"))
    assert errors(project) == [
        "segment_defs/acme/other_name.yml:1:6: key 'loyal' does not match the file name "
        "'other_name.yml'"
    ]


def test_duplicate_key_in_one_account(project: Path) -> None:
    write(project, "acme/dup.yml", VALID.format(key="dup"))
    write(project, "acme/dup.yaml", VALID.format(key="dup"))
    assert errors(project) == [
        "segment_defs/acme/dup.yml:1:1: duplicate segment key 'dup' in account 'acme' "
        "(also in segment_defs/acme/dup.yaml)"
    ]


def test_account_must_match_folder_and_exist(project: Path) -> None:
    write(project, "acme/x.yml", VALID.format(key="x").replace("account: acme", "account: beta"))
    write(project, "acmee/y.yml", VALID.format(key="y").replace("account: acme", "account: acmee"))
    assert errors(project, accounts={"acme", "beta"}) == [
        "segment_defs/acme/x.yml:3:10: account 'beta' does not match the folder 'acme' of "
        "this file",
        "segment_defs/acmee/y.yml:3:10: unknown account 'acmee' (did you mean 'acme'?)",
    ]
    # offline (accounts unknown) only the folder rule applies
    assert len(errors(project, accounts=None)) == 1
    # no accounts loaded at all: say why, and what to do
    assert errors(project, accounts=set())[-1] == (
        "segment_defs/acmee/y.yml:3:10: unknown account 'acmee' (crm_raw.accounts is empty: "
        "load your CRM data or `segments demo-data`, or validate with --offline)"
    )


def test_template_rules(project: Path) -> None:
    write(project, "_all/t.yml", VALID.format(key="t"))
    write(project, "acme/u.yml", VALID.format(key="u").replace("account: acme", 'account: "*"'))
    assert errors(project) == [
        'segment_defs/_all/t.yml:3:10: templates under _all/ must say account: "*"',
        'segment_defs/acme/u.yml:3:10: account "*" is only for templates under segment_defs/_all/',
    ]


@pytest.mark.parametrize(
    ("condition", "point_at", "message"),
    [
        (
            "{field: loyalty_tier, op: in, value: gold}",
            "gold",
            "the value of 'in' on string field 'loyalty_tier' must be a list like [a, b], "
            "got a string",
        ),
        (
            "{field: created_at, op: before, value: 5}",
            "5}",
            "the value of 'before' on timestamp field 'created_at' must be a date like "
            "2024-01-31, got a number",
        ),
        (
            "{field: created_at, op: before, value: 2024-13-01}",
            "2024-13-01",
            "the value of 'before' on timestamp field 'created_at' '2024-13-01' is not a "
            "valid date",
        ),
        (
            "{field: created_at, op: within_last, value: {day: 3}}",
            "day:",
            "unknown duration unit 'day' (did you mean 'days'?); use one of days, weeks, "
            "months, years",
        ),
        (
            "{field: created_at, op: within_last, value: 30}",
            "30",
            "the value of 'within_last' on timestamp field 'created_at' must be a duration "
            "like {days: 30} (one of days, weeks, months, years)",
        ),
        (
            "{field: loyalty_points, op: gte, value: '5000'}",
            "'5000'",
            "the value of 'gte' on number field 'loyalty_points' must be a number, got a "
            "string (remove the quotes)",
        ),
        (
            "{field: loyalty_points, op: between, value: [10, 1]}",
            "[10",
            "the value of 'between' on number field 'loyalty_points': low 10 is above high 1",
        ),
        (
            "{field: loyalty_pts, op: gte, value: 1}",
            "loyalty_pts",
            "unknown field 'loyalty_pts' (did you mean 'loyalty_points'?)",
        ),
        (
            "{field: city, op: gt, value: 3}",
            "gt,",
            "operator 'gt' does not apply to string field 'city'; string operators: eq, neq, "
            "in, not_in, ieq, contains, not_contains, icontains, starts_with, ends_with, "
            "matches, is_set, is_not_set",
        ),
        ("{field: consent_whatsapp, op: is_true, value: true}", "value:", None),
        (
            "{field: email, op: matches, value: '(unclosed'}",
            "'(unclosed'",
            "the value of 'matches' on string field 'email' is not a valid regular "
            "expression: missing ), unterminated subpattern at position 0",
        ),
        (
            "{field: custom.vip_level, type: integer, op: gt, value: 1}",
            "integer",
            "type 'integer' must be one of string, number, date, boolean, array",
        ),
        (
            "{field: city, type: string, op: eq, value: x}",
            "type:",
            "'type' can only be declared for custom.* fields",
        ),
    ],
)
def test_wrong_values(project: Path, condition: str, point_at: str, message: str | None) -> None:
    text = VALID.format(key="x").replace("{field: loyalty_points, op: gte, value: 5000}", condition)
    write(project, "acme/x.yml", text)
    [error] = errors(project)
    col = text.splitlines()[8].index(point_at) + 1  # the error points at this token
    expected = message or "operator 'is_true' takes no value"
    assert error == f"segment_defs/acme/x.yml:9:{col}: {expected}"


def test_empty_groups_and_bad_nodes(project: Path) -> None:
    write(
        project,
        "acme/x.yml",
        """\
        key: x
        name: X
        account: acme
        owner: o
        visibility: team
        where:
          all:
            - any: []
            - {fields: city}
            - {all: [{field: city, op: is_set}], any: [{field: city, op: is_set}]}
            - not: []
        exclude: "city = 'x'"
        """,
    )
    assert errors(project) == [
        "segment_defs/acme/x.yml:8:12: 'any' is an empty group: give it at least one condition",
        "segment_defs/acme/x.yml:9:7: expected a condition (with 'field') or a group "
        "(all, any, not), found 'fields' (did you mean 'field'?)",
        "segment_defs/acme/x.yml:10:42: one node can't be both 'all' and 'any': nest them "
        "in an 'all' or 'any' list",
        "segment_defs/acme/x.yml:11:12: 'not' is an empty group: give it at least one condition",
        "segment_defs/acme/x.yml:12:10: 'exclude' must be a condition {field, op, value} or a "
        "group (all/any/not), got a string",
    ]


def test_yaml_on_is_the_operator_not_a_boolean(project: Path) -> None:
    text = VALID.format(key="x").replace(
        "{field: loyalty_points, op: gte, value: 5000}",
        "{field: created_at, op: on, value: 2024-02-29}",
    )
    write(project, "acme/x.yml", text)
    result = load_definitions(None, None)
    assert result.errors == []
    assert result.segments[0].where.to_json()["nodes"][1]["op"] == "on"


def test_cli_prints_every_error_and_exits_1_without_building(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project, "acme/a.yml", VALID.format(key="a").replace("op: gte", "op: greater_than"))
    write(project, "acme/b.yml", VALID.format(key="wrong"))
    write(project, "acme/c.yml", VALID.format(key="c"))
    assert cli.main(["validate", "--offline", str(project / "segment_defs")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in out] == [
        "segment_defs/acme/a.yml:9:35",
        "segment_defs/acme/b.yml:1:6",
    ]
    assert cli.main(["compile", "--offline"]) == 1
    assert not (project / "models/segments/generated").exists()


def test_cli_validate_ok(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(project, "acme/a.yml", VALID.format(key="a"))
    assert cli.main(["validate", "--offline"]) == 0
    assert "1 segment definitions OK" in capsys.readouterr().err


NASTY = [
    "x'; drop table crm_raw.contacts; --",
    "back\\slash \\' \\\\ end\\",
    "}} {{ 7*7 }} {% raw %} {# c #} %}",
    "double \"quotes\" and 'single'",
    "new\nline\ttab\r\u0000nul",
    "unicode: Jakarta Selatan 雅加达 🎉 \u2028",
]


@pytest.mark.parametrize("value", NASTY)
def test_jinja_string_round_trips_through_jinja(value: str) -> None:
    payload = {"value": value, "list": [value, {"nested": value}]}
    literal = jinja_string(payload)
    for danger in ("{{", "}}", "{%", "%}", "{#", "#}", "\n"):
        assert danger not in literal
    env = jinja2.Environment()
    rendered = env.from_string("{{ f(" + literal + ") }}").render(
        f=lambda s: json.loads(s) == payload
    )
    assert rendered == "True"


# --- the JSON Schema agrees with the validator -------------------------------------------


def _as_json(data: object) -> object:
    """YAML dates are strings to an editor's JSON Schema."""
    if isinstance(data, dict):
        return {k: _as_json(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_as_json(v) for v in data]
    if isinstance(data, dt.date):
        return data.isoformat()
    return data


def test_published_schema_is_current() -> None:
    path = PROJECT_DIR / "segment_defs/segment.schema.json"
    assert path.read_text() == schema_text(), "run python -m segmentation_dev.schema_file"
    jsonschema.Draft202012Validator.check_schema(build_schema())


def test_examples_are_valid_for_schema_and_validator() -> None:
    checker = jsonschema.Draft202012Validator(build_schema())
    # segment_defs/<account>/_groups/ holds priority groups, not segments (test_groups.py)
    files = sorted(
        p for p in (PROJECT_DIR / "segment_defs").rglob("*.yml") if "_groups" not in p.parts
    )
    assert len(files) >= 4
    for file in files:
        assert list(checker.iter_errors(_as_json(yaml.safe_load(file.read_text())))) == []
    assert load_definitions([PROJECT_DIR / "segment_defs"], None).errors == []


@pytest.mark.parametrize(
    "mutation",
    [
        ("visibility: team", "visibility: public"),
        ("owner: growth-team\n", ""),
        ("key: {key}", "key: Bad-Key"),
        ("op: gte", "op: greater_than"),
        ("field: lifecycle_stage", "field: lifecycle"),
        ("value: customer}", "valeu: customer}"),
        ("all:", "every:"),
        ("value: 5000}", "value: 5000, extra: 1}"),
    ],
)
def test_schema_and_validator_reject_the_same_mistakes(
    project: Path, mutation: tuple[str, str]
) -> None:
    old, new = mutation
    template = VALID.replace(old, new) if "{key}" in old else VALID
    text = template.format(key="x")
    if "{key}" not in old:
        assert old in text
        text = text.replace(old, new)
    write(project, "acme/x.yml", text)
    checker = jsonschema.Draft202012Validator(build_schema())
    assert list(checker.iter_errors(_as_json(yaml.safe_load(text)))) != []
    assert errors(project) != []
