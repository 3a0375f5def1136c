"""A segment's condition tree (the compiled plan's `condition` JSON) as nested lines of
plain words for the report. Pure: the operator words come from the caller (the language's
operator table), and the template escapes every line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_GROUP_WORDS = {"all": "all of", "any": "any of"}
# Operators whose table description reads badly before a value; `{value}` places it.
_PHRASES = {
    "between": "is between {value}",
    "not_between": "is not between {value}",
    "before": "is before {value}",
    "after": "is after {value}",
    "on": "is on {value}",
    "within_last": "is within the last {value}",
    "more_than_ago": "is more than {value} ago",
    "within_next": "is within the next {value}",
    "in_calendar": "is in {value}",
    "anniversary_within_next": "has its anniversary within the next {value}",
    "matches": "matches the pattern {value}",
}


@dataclass(frozen=True)
class Line:
    text: str
    children: list[Line] = field(default_factory=list)


def describe(
    node: Mapping[str, Any] | None,
    op_words: Mapping[str, str],
    feature_specs: Mapping[str, Mapping[str, Any]] | None = None,
) -> Line | None:
    """The condition as a tree of readable lines; None when there is none."""
    if not node:
        return None
    specs = feature_specs or {}
    kind = node.get("kind")
    if kind in _GROUP_WORDS:
        children = [c for c in (describe(n, op_words, specs) for n in node["nodes"]) if c]
        return Line(f"{_GROUP_WORDS[kind]}:", children)
    if kind == "not":
        child = describe(node.get("node"), op_words, specs)
        return Line("not:", [child] if child else [])
    if kind == "condition":
        return Line(_comparison(_field_name(node), node, op_words))
    if kind == "has":
        return _has(node, op_words, specs)
    if kind == "in_segment":
        return Line(f"is a member of segment {node.get('key')}")
    return Line(f"{kind}: {_value(node.get('value'))}")


def _field_name(node: Mapping[str, Any]) -> str:
    return str(node.get("field", "?"))


def _comparison(subject: str, node: Mapping[str, Any], op_words: Mapping[str, str]) -> str:
    op = str(node.get("op", ""))
    words = op_words.get(op, op.replace("_", " "))
    if "value" not in node or node["value"] is None:
        return f"{subject} {words}"
    value = _value(node["value"], op)
    if op in _PHRASES:
        return f"{subject} {_PHRASES[op].format(value=value)}"
    return f"{subject} {words} {value}"


def _has(
    node: Mapping[str, Any],
    op_words: Mapping[str, str],
    specs: Mapping[str, Mapping[str, Any]],
) -> Line:
    spec = specs.get(str(node.get("feature")), {})
    obj = spec.get("object") or node.get("object", "?")
    aggregate = spec.get("aggregate") or node.get("aggregate", "count")
    subject = f"{aggregate} of {obj}"
    if spec.get("field"):
        subject = f"{aggregate} of {obj}.{spec['field']}"
    window = spec.get("window")
    if isinstance(window, Mapping):
        for kind, value in window.items():
            if kind == "last_days":
                subject += f" in the last {value} days"
            else:
                subject += f" {kind.replace('_', ' ')} {_value(value, 'between')}"
    children = []
    where = spec.get("filter")
    if where:
        described = describe(where, op_words, specs)
        if described:
            children.append(Line(f"counting only {obj} where", [described]))
    return Line(_comparison(subject, node, op_words), children)


def _value(value: Any, op: str = "") -> str:
    if isinstance(value, Mapping):
        if "n" in value and "unit" in value:
            return f"{value['n']} {value['unit']}"
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        if op in ("between", "not_between") and len(value) == 2:
            return f"{_value(value[0])} and {_value(value[1])}"
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if op in ("in_calendar",) else f"'{value}'" if not _numeric(value) else value
    return str(value)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
