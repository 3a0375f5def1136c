"""The JSON Schema of the definition format, generated from the same tables the validator
uses (catalogue, operators). segment_defs/segment.schema.json is its output; a test keeps
the two equal. Regenerate with `python -m segmentation.language.schema`.

The schema is for editors (autocomplete, underlines); the validator is stricter (it also
checks that an operator fits the field's type, file names, accounts and duplicates).
"""

from __future__ import annotations

import json
from typing import Any

from segmentation.language.activity_schema import extend_schema
from segmentation.language.catalogue import CATALOGUE, CUSTOM_TYPES, Catalogue
from segmentation.language.operators import (
    CALENDAR_PERIODS,
    DURATION_UNITS,
    MAX_DURATION,
    OPERATORS,
    ValueKind,
)
from segmentation.language.validate import (
    EXPECT_KEYS,
    MAX_CHANGE_PCT,
    MAX_LIST,
    MAX_MEMBERS,
    TOP_LEVEL_KEYS,
    VISIBILITIES,
)

SCHEMA_FILE = "segment_defs/segment.schema.json"
_SCALAR = {"type": ["string", "number", "boolean"]}
_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}


def _value_schema(kind: ValueKind) -> dict[str, Any] | None:
    if kind is ValueKind.NONE:
        return None
    if kind is ValueKind.SCALAR:
        return _SCALAR
    if kind is ValueKind.PATTERN:
        return {"type": "string"}
    if kind is ValueKind.LIST:
        return {"type": "array", "items": _SCALAR, "minItems": 1, "maxItems": MAX_LIST}
    if kind is ValueKind.RANGE:
        return {"type": "array", "items": _SCALAR, "minItems": 2, "maxItems": 2}
    if kind is ValueKind.DURATION:
        return {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
            "properties": {
                unit: {"type": "integer", "minimum": 0, "maximum": MAX_DURATION[unit]}
                for unit in DURATION_UNITS
            },
        }
    if kind is ValueKind.CALENDAR:
        return {"enum": list(CALENDAR_PERIODS)}
    raise AssertionError(kind)


def _condition(catalogue: Catalogue) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for op in OPERATORS.values():
        value = _value_schema(op.value)
        then: dict[str, Any] = (
            {"not": {"required": ["value"]}}
            if value is None
            else {"required": ["value"], "properties": {"value": value}}
        )
        rules.append({"if": {"properties": {"op": {"const": op.name}}}, "then": then})
    return {
        "type": "object",
        "description": "A condition: field op value",
        "required": ["field", "op"],
        "additionalProperties": False,
        "properties": {
            "field": {
                "description": "A catalogue field, company.<field> or custom.<key>",
                "anyOf": [
                    {"enum": catalogue.names()},
                    {"type": "string", "pattern": r"^custom\.[A-Za-z_][A-Za-z0-9_]{0,62}$"},
                ],
            },
            "op": {"enum": list(OPERATORS)},
            "value": {},
            "type": {
                "description": "Declared type of a custom.* field",
                "enum": [str(t) for t in CUSTOM_TYPES],
            },
        },
        "allOf": rules,
    }


def build_schema(catalogue: Catalogue = CATALOGUE) -> dict[str, Any]:
    return extend_schema(_build_schema(catalogue))


def _build_schema(catalogue: Catalogue = CATALOGUE) -> dict[str, Any]:
    node = {"$ref": "#/$defs/node"}
    group_list = {"type": "array", "minItems": 1, "items": node}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.invalid/segmentation/segment.schema.json",
        "title": "Segment definition",
        "description": "One segment: segment_defs/<account_id>/<key>.yml (templates: _all/)",
        "type": "object",
        "additionalProperties": False,
        "required": [k for k, required in TOP_LEVEL_KEYS.items() if required],
        "properties": {
            "key": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,47}$"},
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "account": {"type": "string", "pattern": r"^(\*|[A-Za-z0-9][A-Za-z0-9_-]{0,39})$"},
            "owner": {"type": "string", "minLength": 1},
            "visibility": {"enum": list(VISIBILITIES)},
            "tags": {"type": "array", "items": {"type": "string"}},
            "enabled": {"type": "boolean"},
            "expect": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    key: {
                        "type": "integer" if key != "max_change_pct" else "number",
                        "minimum": 0,
                        "maximum": MAX_MEMBERS if key != "max_change_pct" else MAX_CHANGE_PCT,
                    }
                    for key in EXPECT_KEYS
                },
            },
            "where": {"anyOf": [node, group_list]},
            "exclude": {"anyOf": [node, group_list]},
        },
        "$defs": {
            "node": {
                "oneOf": [
                    {"$ref": "#/$defs/condition"},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["all"],
                        "properties": {"all": group_list},
                    },
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["any"],
                        "properties": {"any": group_list},
                    },
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["not"],
                        "properties": {"not": {"anyOf": [node, group_list]}},
                    },
                ]
            },
            "condition": _condition(catalogue),
        },
    }


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2) + "\n"
