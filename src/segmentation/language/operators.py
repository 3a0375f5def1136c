"""The operator table: which operators apply to which field types and what value each takes.

NULL semantics (see docs/segment-language.md): a condition is always true or false, never
unknown. Positive operators never match an unset value; their negative forms (`neq`,
`not_in`, `not_contains`, `not_between`, `contains_none`) are exact complements and DO
match unset values ("city is not Jakarta" includes contacts whose city is unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from segmentation.language.catalogue import FieldType


class ValueKind(StrEnum):
    NONE = "none"  # no value: is_true, is_set ...
    SCALAR = "scalar"  # one value of the field's type
    LIST = "list"  # a non-empty list of values of the field's (element) type
    RANGE = "range"  # [low, high], inclusive
    DURATION = "duration"  # {days|weeks|months|years: N}
    CALENDAR = "calendar"  # one of CALENDAR_PERIODS
    PATTERN = "pattern"  # a POSIX regular expression (string)


@dataclass(frozen=True)
class Operator:
    name: str
    types: frozenset[FieldType]
    value: ValueKind
    matches_unset: bool  # does an unset (NULL / empty) value satisfy it?
    description: str


_STRING = frozenset({FieldType.STRING})
_NUMBER = frozenset({FieldType.NUMBER})
_DATES = frozenset({FieldType.DATE, FieldType.TIMESTAMP})
_BOOL = frozenset({FieldType.BOOLEAN})
_ARRAY = frozenset({FieldType.ARRAY})
_ALL = frozenset(FieldType)

_TABLE = [
    Operator("eq", _STRING | _NUMBER, ValueKind.SCALAR, False, "equals"),
    Operator("neq", _STRING | _NUMBER, ValueKind.SCALAR, True, "differs from (or unset)"),
    Operator("in", _STRING | _NUMBER, ValueKind.LIST, False, "is one of"),
    Operator("not_in", _STRING | _NUMBER, ValueKind.LIST, True, "is none of (or unset)"),
    Operator("ieq", _STRING, ValueKind.SCALAR, False, "equals, ignoring case"),
    Operator("contains", _STRING, ValueKind.SCALAR, False, "contains the text"),
    Operator("not_contains", _STRING, ValueKind.SCALAR, True, "lacks the text (or unset)"),
    Operator("icontains", _STRING, ValueKind.SCALAR, False, "contains, ignoring case"),
    Operator("starts_with", _STRING, ValueKind.SCALAR, False, "starts with the text"),
    Operator("ends_with", _STRING, ValueKind.SCALAR, False, "ends with the text"),
    Operator("matches", _STRING, ValueKind.PATTERN, False, "matches a POSIX regex"),
    Operator("gt", _NUMBER, ValueKind.SCALAR, False, "greater than"),
    Operator("gte", _NUMBER, ValueKind.SCALAR, False, "greater than or equal"),
    Operator("lt", _NUMBER, ValueKind.SCALAR, False, "less than"),
    Operator("lte", _NUMBER, ValueKind.SCALAR, False, "less than or equal"),
    Operator("between", _NUMBER | _DATES, ValueKind.RANGE, False, "within [low, high]"),
    Operator("not_between", _NUMBER | _DATES, ValueKind.RANGE, True, "outside [low, high]"),
    Operator("before", _DATES, ValueKind.SCALAR, False, "strictly before the date"),
    Operator("after", _DATES, ValueKind.SCALAR, False, "strictly after the date"),
    Operator("on", _DATES, ValueKind.SCALAR, False, "on the date"),
    Operator("within_last", _DATES, ValueKind.DURATION, False, "in [as_of - N, as_of]"),
    Operator("more_than_ago", _DATES, ValueKind.DURATION, False, "before as_of - N"),
    Operator("within_next", _DATES, ValueKind.DURATION, False, "in [as_of, as_of + N]"),
    Operator("in_calendar", _DATES, ValueKind.CALENDAR, False, "in a calendar period"),
    Operator(
        "anniversary_within_next",
        _DATES,
        ValueKind.DURATION,
        False,
        "next yearly anniversary in [as_of, as_of + N]",
    ),
    Operator("is_true", _BOOL, ValueKind.NONE, False, "is true"),
    Operator("is_false", _BOOL, ValueKind.NONE, False, "is false (unset is not false)"),
    Operator("contains_any", _ARRAY, ValueKind.LIST, False, "has at least one of"),
    Operator("contains_all", _ARRAY, ValueKind.LIST, False, "has every one of"),
    Operator("contains_none", _ARRAY, ValueKind.LIST, True, "has none of"),
    Operator("is_set", _ALL, ValueKind.NONE, False, "has a value (non-empty)"),
    Operator("is_not_set", _ALL, ValueKind.NONE, True, "has no value (NULL or empty)"),
]

OPERATORS: dict[str, Operator] = {op.name: op for op in _TABLE}

DURATION_UNITS = ("days", "weeks", "months", "years")
# Per unit, about 100 years: as-of dates +/- this stay far inside PostgreSQL's timestamp
# range (a {years: 100000} window is out of range and fails the build).
MAX_DURATION = {"days": 36_600, "weeks": 5_200, "months": 1_200, "years": 100}
CALENDAR_PERIODS = (
    "today",
    "yesterday",
    "tomorrow",
    "this_week",
    "last_week",
    "next_week",
    "this_month",
    "last_month",
    "next_month",
    "this_quarter",
    "last_quarter",
    "next_quarter",
    "this_year",
    "last_year",
    "next_year",
)


def operators_for(field_type: FieldType) -> list[str]:
    return [op.name for op in _TABLE if field_type in op.types]


# For custom fields without a declared type: the type an operator implies, when only one fits.
def implied_type(op: Operator) -> FieldType | None:
    if op.types == _DATES:
        return FieldType.DATE
    if len(op.types) == 1:
        return next(iter(op.types))
    return None
