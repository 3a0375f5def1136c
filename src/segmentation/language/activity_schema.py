"""JSON Schema pieces for `has:` and `in_segment:`, added to the language's schema by
`extend_schema` (called from schema.build_schema), from the same tables the validator uses.
Like the rest of the schema it is for editors; the validator is stricter (one aggregate per
has:, operators that fit the aggregate's type, whole-number counts)."""

from __future__ import annotations

from typing import Any

from segmentation.language.activity import AGGREGATES, OBJECTS, WINDOW_MAX_DAYS
from segmentation.language.operators import OPERATORS
from segmentation.language.validate import KEY_PATTERN

_DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}


def _object_node(name: str) -> dict[str, Any]:
    """A condition tree over one object's own fields (recursive, like the contact tree)."""
    node = {"$ref": f"#/$defs/{name}_node"}
    group_list = {"type": "array", "minItems": 1, "items": node}
    condition = {
        "type": "object",
        "description": f"A condition on a field of {name}",
        "required": ["field", "op"],
        "additionalProperties": False,
        "properties": {
            "field": {"enum": sorted(OBJECTS[name].fields)},
            "op": {"enum": list(OPERATORS)},
            "value": {},
        },
    }
    return {
        "oneOf": [
            condition,
            *(
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [kind],
                    "properties": {kind: group_list},
                }
                for kind in ("all", "any")
            ),
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["not"],
                "properties": {"not": {"anyOf": [node, group_list]}},
            },
        ]
    }


def _comparison(with_field: bool) -> dict[str, Any]:
    props: dict[str, Any] = {"op": {"enum": list(OPERATORS)}, "value": {}}
    props.update({name: {} for name in OPERATORS})
    if with_field:
        props["field"] = {"type": "string"}
    return {
        "type": "object",
        "description": "{<op>: value} or {op: <op>, value: ...}"
        + ("; field: the object's field to aggregate" if with_field else ""),
        "additionalProperties": False,
        "minProperties": 1,
        "properties": props,
    }


def _has() -> dict[str, Any]:
    within = {
        "oneOf": [
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["last_days"],
                "properties": {
                    "last_days": {"type": "integer", "minimum": 1, "maximum": WINDOW_MAX_DAYS}
                },
            },
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["between"],
                "properties": {
                    "between": {"type": "array", "items": _DATE, "minItems": 2, "maxItems": 2}
                },
            },
        ]
    }
    per_object = [
        {
            "if": {"properties": {"object": {"const": name}}, "required": ["object"]},
            "then": {
                "properties": {
                    "where": {
                        "anyOf": [
                            {"$ref": f"#/$defs/{name}_node"},
                            {
                                "type": "array",
                                "minItems": 1,
                                "items": {"$ref": f"#/$defs/{name}_node"},
                            },
                        ]
                    }
                }
            },
        }
        for name in OBJECTS
    ]
    body = {
        "type": "object",
        "description": "A condition on the contact's related records (activity)",
        "additionalProperties": False,
        "required": ["object"],
        "properties": {
            "object": {"enum": list(OBJECTS)},
            "where": {},
            "within": within,
            **{agg: _comparison(agg != "count") for agg in AGGREGATES},
        },
        "allOf": per_object,
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["has"],
        "properties": {"has": body},
    }


def _in_segment() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["in_segment"],
        "properties": {
            "in_segment": {
                "type": "string",
                "pattern": KEY_PATTERN.pattern,
                "description": "Key of another segment of the same account",
            }
        },
    }


def extend_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Add has: and in_segment: to the schema's node alternatives (in place; returned)."""
    defs = schema["$defs"]
    defs["has"] = _has()
    defs["in_segment"] = _in_segment()
    for name in OBJECTS:
        defs[f"{name}_node"] = _object_node(name)
    defs["node"]["oneOf"] += [{"$ref": "#/$defs/has"}, {"$ref": "#/$defs/in_segment"}]
    return schema
