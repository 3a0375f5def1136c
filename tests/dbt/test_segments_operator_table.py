"""The operator table (src/segmentation/language/operators.py) and the SQL macros agree.

Every operator is rendered for every field type the table allows it, in the three places a
condition compiles (a contact field, a field of an activity row in a has: filter, and the
aggregate a has: compares), in ONE dbt call, and evaluated on real Postgres over a row with
every field unset, one with empty text and arrays, and two rows with values. For each
expression:
- it is true or false, never NULL;
- on the unset and the empty row it is what the table's `matches_unset` says;
- a positive operator matches one of the set rows, and each negative operator is exactly
  the complement of the positive form `segment_negative_ops()` names for it.
And the macros implement exactly the table: one `segment_op__<op>` per positive operator,
and the negative operators are the table's operators that match unset values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from _activity import parse_condition
from _segments import copy_project, project_dir
from _segments_eval import parse_node

from segmentation.compiler.literals import jinja_string
from segmentation.language.activity import OBJECTS, Has
from segmentation.language.catalogue import CUSTOM_TYPES, FieldType
from segmentation.language.operators import OPERATORS, ValueKind
from segmentation.warehouse.dbt_runner import run_dbt

pytestmark = pytest.mark.slow

AS_OF = "2024-03-15"
ROWS = ("unset", "empty", "one", "two")
TZ = "Asia/Jakarta"

# A value per operator that one of the set rows below satisfies (dates: by type "date",
# also used for timestamps). A new operator needs a sample here, or this test fails.
SAMPLES: dict[str, dict[str, Any]] = {
    "eq": {"string": "Jakarta", "number": 100},
    "in": {"string": ["Jakarta", "x'y"], "number": [100, 7]},
    "ieq": {"string": "jakarta"},
    "contains": {"string": "kart"},
    "icontains": {"string": "KART"},
    "starts_with": {"string": "Jak"},
    "ends_with": {"string": "rta"},
    "matches": {"string": "^J"},
    "gt": {"number": 50},
    "gte": {"number": 100},
    "lt": {"number": 50},
    "lte": {"number": 5},
    "between": {"number": [50, 150], "date": ["2024-03-01", "2024-03-12"]},
    "before": {"date": "2024-03-12"},
    "after": {"date": "2024-03-18"},
    "on": {"date": "2024-03-10"},
    "within_last": {"date": {"days": 7}},
    "more_than_ago": {"date": {"days": 3}},
    "within_next": {"date": {"weeks": 1}},
    "in_calendar": {"date": "this_month"},
    "anniversary_within_next": {"date": {"years": 1}},
    "contains_any": {"array": ["vip", "x"]},
    "contains_all": {"array": ["vip", "newsletter"]},
}
NEGATIVE = {
    "neq": "eq",
    "not_in": "in",
    "not_contains": "contains",
    "not_between": "between",
    "contains_none": "contains_any",
    "is_not_set": "is_set",
}

# One contact field per type, and a custom field for every type a custom field may have.
CONTACT_FIELDS = {
    "string": "city",
    "number": "loyalty_points",
    "date": "date_of_birth",
    "timestamp": "created_at",
    "boolean": "consent_whatsapp",
    "array": "tags",
}
CUSTOM_KEYS = {"string": "s", "number": "n", "date": "d", "boolean": "b", "array": "a"}
# Rows `c`: unset, empty ('' and empty arrays: unset too), one (values of 10 March), two
# (values of 20 March, local time).
CONTACTS_SQL = """
select * from (values
    ('unset', null::text, null::numeric, null::date, null::timestamptz, null::boolean,
     null::text [], '{}'::jsonb),
    ('empty', '', null, null, null, null, array[]::text [], '{"s": "", "a": []}'),
    ('one', 'Jakarta', 100, date '2024-03-10', timestamptz '2024-03-10 12:00+07', true,
     array['vip', 'newsletter'],
     '{"s": "Jakarta", "n": 100, "d": "2024-03-10", "b": true, "a": ["vip", "newsletter"]}'),
    ('two', 'Bandung', 5, date '2024-03-20', timestamptz '2024-03-19 20:00+00', false,
     array['other'], '{"s": "Bandung", "n": "5", "d": "2024-03-20", "b": "false", "a": ["other"]}')
) as v (id, city, loyalty_points, date_of_birth, created_at, consent_whatsapp, tags,
        custom_fields)
"""
# Activity rows `src` (fields of deals, and is_primary of companies).
ACTIVITY_FIELDS = {
    "string": ("deals", "status"),
    "number": ("deals", "amount"),
    "date": ("deals", "expected_close_date"),
    "timestamp": ("deals", "closed_at"),
    "boolean": ("companies", "is_primary"),
}
ACTIVITY_SQL = """
select * from (values
    ('unset', null::text, null::numeric, null::date, null::timestamptz, null::boolean),
    ('empty', '', null, null, null, null),
    ('one', 'Jakarta', 100, date '2024-03-10', timestamptz '2024-03-10 12:00+07', true),
    ('two', 'Bandung', 5, date '2024-03-20', timestamptz '2024-03-19 20:00+00', false)
) as v (id, status, amount, expected_close_date, closed_at, is_primary)
"""
# What a has: compares, per result type: an aggregate that is unset over no rows.
HAS_AGGREGATES = {
    "number": "avg: {field: amount, op: %s%s}",
    "date": "max: {field: expected_close_date, op: %s%s}",
    "string": "max: {field: status, op: %s%s}",
}
# Their values in the rows unset, empty, one and two.
HAS_VALUES = {
    "number": ("null::numeric", "null", "100", "5"),
    "date": ("null::date", "null", "date '2024-03-10'", "date '2024-03-20'"),
    "string": ("null::text", "''", "'Jakarta'", "'Bandung'"),
}


def sample(op: str, field_type: str) -> Any:
    """The value `op` is rendered with for `field_type` (None: the operator takes none)."""
    if OPERATORS[op].value is ValueKind.NONE:
        return None
    positive = NEGATIVE.get(op, op)
    return SAMPLES[positive]["date" if field_type == "timestamp" else field_type]


def cases() -> list[tuple[str, str, str]]:
    """(scope, operator, type) for every operator and every type the table allows it."""
    out = []
    for op in OPERATORS.values():
        for field_type in sorted(str(t) for t in op.types):
            out.append(("contact", op.name, field_type))
            if field_type in CUSTOM_KEYS and FieldType(field_type) in CUSTOM_TYPES:
                out.append(("custom", op.name, field_type))
            if field_type in ACTIVITY_FIELDS:
                out.append(("activity", op.name, field_type))
            if field_type in HAS_AGGREGATES:
                out.append(("has", op.name, field_type))
    return out


def condition(field: str, op: str, value: Any, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"field": field, "op": op, **extra}
    if value is not None:
        out["value"] = value
    return out


def tree(scope: str, op: str, field_type: str) -> dict[str, Any]:
    """The normalised JSON the compiler writes for one case, through the real validator."""
    value = sample(op, field_type)
    if scope == "contact":
        return parse_node(condition(CONTACT_FIELDS[field_type], op, value)).to_json()
    if scope == "custom":
        custom = condition(f"custom.{CUSTOM_KEYS[field_type]}", op, value, type=field_type)
        return parse_node(custom).to_json()
    if scope == "activity":
        obj, field = ACTIVITY_FIELDS[field_type]
        has = parse_condition(
            json.dumps({"has": {"object": obj, "where": condition(field, op, value)}})
        )
        assert isinstance(has, Has) and has.feature is not None and has.feature.filter
        return json.loads(has.feature.filter)
    value_text = "" if value is None else f", value: {json.dumps(value)}"
    has = parse_condition(
        f"has: {{object: deals, {HAS_AGGREGATES[field_type] % (op, value_text)}}}"
    )
    return has.to_json()


@pytest.fixture(scope="module")
def project(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = copy_project(tmp_path_factory.mktemp("operator_table") / "project")
    with project_dir(path):
        yield path


def compile_cases(trees: list[tuple[str, dict[str, Any]]]) -> tuple[list[str], dict[str, Any]]:
    """The SQL of every (scope, tree), and what the macros define, in one dbt call."""
    separator = "-- <<predicate>> --"
    inline = (
        "{% set ops = [] %}{% for name in context if name.startswith('segment_op__') %}"
        "{% do ops.append(name) %}{% endfor %}"
        "{{ tojson({'negative': segment_negative_ops(), 'operators': ops}) }}\n" + separator + "\n"
        "{% for scope, tree in fromjson(" + jinja_string(trees) + ") %}"
        "{{ segment_node_sql(tree, 'activity' if scope == 'activity' else 'contact') }}"
        "{% if not loop.last %}\n" + separator + "\n{% endif %}{% endfor %}"
    )
    result = run_dbt(["compile", "--inline", inline])
    parts = [p.strip() for p in result.result.results[0].node.compiled_code.split(separator)]
    assert len(parts) == len(trees) + 1, parts[0][:500]
    return parts[1:], json.loads(parts[0])


def has_rows(features: dict[str, str]) -> str:
    """The feature model row `feat_deals` for the features the has: cases read."""
    ids = sorted(features)
    rows = [
        "(" + ", ".join([f"'{row}'", *(HAS_VALUES[features[f]][n] for f in ids)]) + ")"
        for n, row in enumerate(ROWS)
    ]
    return f"(values {', '.join(rows)}) as feat_deals (id, {', '.join(ids)})"


def evaluate(db: psycopg.Connection, rows: str, predicates: list[str]) -> list[dict[str, bool]]:
    """Per predicate: row id -> its value over `rows` (and the as-of row `a`)."""
    columns = ", ".join(f"({p}) as p{i}" for i, p in enumerate(predicates))
    sql = (
        f"select id, {columns} from {rows} "
        "cross join (select %s::date as as_of_date, %s::text as timezone) as a"
    )
    out: list[dict[str, bool]] = [{} for _ in predicates]
    for row in db.execute(sql, (AS_OF, TZ)).fetchall():
        for i, value in enumerate(row[1:]):
            out[i][row[0]] = value
    return out


def test_every_operator_renders_for_every_type_it_allows(
    project: Path, db: psycopg.Connection
) -> None:
    # a new field type (of contacts or of activity objects) needs rows here
    assert set(CONTACT_FIELDS) == {str(t) for t in FieldType}
    activity_types = {str(f.type) for obj in OBJECTS.values() for f in obj.fields.values()}
    assert set(ACTIVITY_FIELDS) == activity_types
    all_cases = cases()
    trees = [tree(*case) for case in all_cases]
    predicates, macros = compile_cases(
        [(case[0], t) for case, t in zip(all_cases, trees, strict=True)]
    )

    # The macros implement exactly the table.
    positive = {name for name, op in OPERATORS.items() if not op.matches_unset}
    assert set(macros["operators"]) == {f"segment_op__{name}" for name in positive}
    assert macros["negative"] == NEGATIVE
    assert set(NEGATIVE) == {name for name, op in OPERATORS.items() if op.matches_unset}
    for negative, pos in NEGATIVE.items():
        assert OPERATORS[negative].types == OPERATORS[pos].types, negative
        assert OPERATORS[negative].value == OPERATORS[pos].value, negative

    features = {
        t["feature"]: t["type"]
        for (scope, _, _), t in zip(all_cases, trees, strict=True)
        if scope == "has"
    }
    relations = {
        "contact": f"({CONTACTS_SQL}) as c",
        "custom": f"({CONTACTS_SQL}) as c",
        "activity": f"({ACTIVITY_SQL}) as src",
        "has": has_rows(features),
    }
    results: dict[tuple[str, str, str], dict[str, bool]] = {}
    for scope, relation in relations.items():
        index = [i for i, case in enumerate(all_cases) if case[0] == scope]
        values = evaluate(db, relation, [predicates[i] for i in index])
        results.update({all_cases[i]: v for i, v in zip(index, values, strict=True)})
    assert set(results) == set(all_cases)

    for case, by_row in results.items():
        scope, op, field_type = case
        assert set(by_row) == set(ROWS), case
        assert None not in by_row.values(), (case, by_row)
        assert by_row["unset"] is OPERATORS[op].matches_unset, (case, by_row)
        assert by_row["empty"] is OPERATORS[op].matches_unset, (case, by_row)
        if op in NEGATIVE:
            complement = results[(scope, NEGATIVE[op], field_type)]
            assert by_row == {row: not value for row, value in complement.items()}, case
        else:
            assert by_row["one"] or by_row["two"], (case, by_row)
