"""The reference part of docs/authoring.md (every field, operator and aggregate, each with
an example and its NULL behaviour), written from the language's own tables so it cannot
miss one. tests/unit/test_docs.py keeps the doc equal to this and validates every example.

python -m segmentation_dev.authoring_doc   # rewrites the section between the markers
"""

from __future__ import annotations

import sys

from segmentation import settings
from segmentation.language.activity import AGGREGATES, OBJECTS, ZERO_WHEN_EMPTY
from segmentation.language.catalogue import CATALOGUE, FieldType
from segmentation.language.operators import OPERATORS, Operator, ValueKind

DOC = "docs/authoring.md"
START = "<!-- reference:start (python -m segmentation_dev.authoring_doc) -->"
END = "<!-- reference:end -->"

# A field of each type to show an operator on, and a value of each type.
SAMPLE_FIELD = {
    FieldType.STRING: "city",
    FieldType.NUMBER: "loyalty_points",
    FieldType.DATE: "date_of_birth",
    FieldType.TIMESTAMP: "created_at",
    FieldType.BOOLEAN: "consent_email",
    FieldType.ARRAY: "tags",
}
SCALAR = {
    FieldType.STRING: "Jakarta",
    FieldType.NUMBER: "5000",
    FieldType.DATE: "2026-01-31",
    FieldType.TIMESTAMP: "2026-01-31",
    FieldType.ARRAY: "vip",
}
LIST = {FieldType.STRING: "[Jakarta, Bandung]", FieldType.NUMBER: "[100, 200]"}
RANGE = {
    FieldType.NUMBER: "[1000, 5000]",
    FieldType.DATE: "[2026-01-01, 2026-03-31]",
    FieldType.TIMESTAMP: "[2026-01-01, 2026-03-31]",
}
# The default operator a field of each type is shown with.
FIELD_OP = {
    FieldType.STRING: ("eq", "example"),
    FieldType.NUMBER: ("gte", "10"),
    FieldType.DATE: ("within_last", "{days: 30}"),
    FieldType.TIMESTAMP: ("within_last", "{days: 30}"),
    FieldType.BOOLEAN: ("is_true", None),
    FieldType.ARRAY: ("contains_any", "[vip]"),
}
UNSET = {
    FieldType.STRING: "unset is NULL or `''`",
    FieldType.NUMBER: "unset is NULL",
    FieldType.DATE: "unset is NULL",
    FieldType.TIMESTAMP: "unset is NULL; compared as a date in the account's timezone",
    FieldType.BOOLEAN: "unset is NULL (`is_false` does not match it)",
    FieldType.ARRAY: "unset is NULL or the empty list",
}
# Each negative operator is the exact complement of a positive one.
COMPLEMENT = {
    "neq": "eq",
    "not_in": "in",
    "not_contains": "contains",
    "not_between": "between",
    "contains_none": "contains_any",
    "is_not_set": "is_set",
}
# An example per aggregate: (object, the aggregate's YAML).
AGGREGATE_EXAMPLE = {
    "count": ("tickets", "count: {gte: 3}"),
    "count_distinct": ("campaign_events", "count_distinct: {field: campaign_id, gte: 2}"),
    "sum": ("orders", "sum: {field: amount, gte: 1000000}"),
    "avg": ("orders", "avg: {field: amount, gte: 250000}"),
    "min": ("orders", "min: {field: ordered_at, op: more_than_ago, value: {days: 365}}"),
    "max": ("orders", "max: {field: ordered_at, op: within_last, value: {days: 90}}"),
}


def condition(field: str, op: str, value: str | None) -> str:
    """A flow-style condition, as the examples write it."""
    return f"{{field: {field}, op: {op}" + (f", value: {value}" if value is not None else "") + "}"


def operator_example(op: Operator) -> str:
    field_type = next(t for t in SAMPLE_FIELD if t in op.types)
    value: str | None
    if op.value is ValueKind.NONE:
        value = None
    elif op.value is ValueKind.SCALAR:
        value = SCALAR[field_type]
    elif op.value is ValueKind.LIST:
        value = LIST.get(field_type, "[vip, do_not_contact]")
    elif op.value is ValueKind.RANGE:
        value = RANGE[field_type]
    elif op.value is ValueKind.DURATION:
        value = "{days: 30}"
    elif op.value is ValueKind.CALENDAR:
        value = "this_month"
    else:
        value = "'^\\+62'" if field_type is FieldType.STRING else None
    field = "phone" if op.value is ValueKind.PATTERN else SAMPLE_FIELD[field_type]
    return condition(field, op.name, value)


def operator_unset(op: Operator) -> str:
    if op.name == "is_set":
        return "false for unset"
    if op.name == "is_not_set":
        return "true for unset (the complement of `is_set`)"
    if op.name == "is_false":
        return "false for unset: only an explicit false matches"
    if op.matches_unset:
        return f"**true for unset** (the complement of `{COMPLEMENT[op.name]}`)"
    return "false for unset"


def field_examples() -> list[tuple[str, str, str, str]]:
    """(field, type, example condition, description and unset) for every contact field."""
    rows = []
    for name, field in sorted(CATALOGUE.fields.items()):
        op, value = FIELD_OP[field.type]
        if field.values:  # a closed set (rfm.segment): the example uses one of its values
            value = field.values[0]
        rows.append((name, field.type.value, condition(name, op, value), field.description))
    return rows


def activity_examples() -> list[tuple[str, str, str, str, str]]:
    """(object, field, type, example has: condition, description) for every object field."""
    rows = []
    for obj in OBJECTS.values():
        for name, field in obj.fields.items():
            op, value = FIELD_OP[field.type]
            where = condition(name, op, value)
            rows.append(
                (
                    obj.name,
                    name,
                    field.type.value,
                    f"has: {{object: {obj.name}, where: {where}}}",
                    field.description,
                )
            )
    return rows


def aggregate_examples() -> list[tuple[str, str, str]]:
    """(aggregate, example has: condition, behaviour over no rows and unset values)."""
    rows = []
    for agg in AGGREGATES:
        obj, spec = AGGREGATE_EXAMPLE[agg]
        if agg in ZERO_WHEN_EMPTY:
            empty = "0 over no rows (so `count: {eq: 0}` finds contacts without any)"
        else:
            empty = "unset over no rows: positive operators are false, `is_not_set` true"
        if agg in ("sum", "avg", "min", "max"):
            empty += "; skips unset values of the field"
        rows.append((agg, f"has: {{object: {obj}, within: {{last_days: 365}}, {spec}}}", empty))
    return rows


def cell(text: str) -> str:
    """Text for a markdown table cell: a literal `|` would end the cell."""
    return text.replace("|", "\\|")


def reference() -> str:
    """The generated markdown between START and END."""
    lines = [
        "### Contact fields",
        "",
        "A condition is `{field, op, value}`. A positive operator never matches an unset value;",
        "a negative one (`neq`, `not_in`, ...) does, being the exact complement.",
        "",
        "| field | type | example | meaning; when unset |",
        "|---|---|---|---|",
    ]
    for name, type_, example, description in field_examples():
        unset = UNSET[FieldType(type_)]
        lines.append(f"| `{name}` | {type_} | `{example}` | {cell(description)}; {unset} |")
    lines += [
        "| `custom.<key>` | by `type:`, the operator or the value | "
        "`{field: custom.vip_level, op: gte, value: 2}` | a key of `custom_fields` (jsonb); a "
        "stored value not of that type counts as unset |",
        "",
        "### Activity fields (inside `has:`)",
        "",
        "| object | field | type | example | meaning |",
        "|---|---|---|---|---|",
    ]
    for obj, name, type_, example, description in activity_examples():
        lines.append(f"| `{obj}` | `{name}` | {type_} | `{example}` | {cell(description)} |")
    lines += [
        "",
        "### Operators",
        "",
        "| operator | field types | example | when the value is unset (NULL) |",
        "|---|---|---|---|",
    ]
    for op in OPERATORS.values():
        types = ", ".join(sorted(t.value for t in op.types))
        lines.append(
            f"| `{op.name}` | {types} | `{operator_example(op)}` | {cell(op.description)}; "
            f"{operator_unset(op)} |"
        )
    lines += [
        "",
        "### Aggregates (of `has:`)",
        "",
        "| aggregate | example | over no rows, and unset values |",
        "|---|---|---|",
    ]
    for agg, example, empty in aggregate_examples():
        lines.append(f"| `{agg}` | `{example}` | {empty} |")
    return "\n".join(lines) + "\n"


def examples() -> list[str]:
    """Every example condition of the reference (YAML flow mappings), for the doc test."""
    out = [row[2] for row in field_examples()]
    out += [row[3] for row in activity_examples()]
    out += [operator_example(op) for op in OPERATORS.values()]
    out += [row[1] for row in aggregate_examples()]
    out.append("{field: custom.vip_level, op: gte, value: 2}")
    return out


def with_reference(text: str) -> str:
    """`text` (docs/authoring.md) with its reference section regenerated."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{reference()}{END}{tail}"


def main() -> int:
    path = settings.project_dir() / DOC
    path.write_text(with_reference(path.read_text()))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
