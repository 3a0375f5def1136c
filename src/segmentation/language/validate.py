"""Validation: YAML data -> `Segment` trees, collecting every error with file:line:col.

`Parser` walks one file. Node kinds are parsed by the functions of its `node_parsers` table,
keyed by the mapping key that identifies the kind (`all`, `any`, `not`, `field` here;
grammar.NODE_PARSERS adds `has` and `in_segment`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from segmentation.language.catalogue import (
    CATALOGUE,
    CUSTOM_TYPES,
    Catalogue,
    Field,
    FieldType,
    UnknownFieldError,
)
from segmentation.language.issues import Issues, Loc
from segmentation.language.loader import MarkedDict, MarkedList
from segmentation.language.model import (
    TEMPLATE_ACCOUNT,
    TEMPLATE_DIR,
    Condition,
    Expect,
    Group,
    Node,
    Not,
    Segment,
)
from segmentation.language.operators import (
    CALENDAR_PERIODS,
    DURATION_UNITS,
    MAX_DURATION,
    OPERATORS,
    Operator,
    ValueKind,
    implied_type,
    operators_for,
)
from segmentation.language.regex import RegexCheck, offline_regex_check
from segmentation.language.suggest import OPERATOR_ALIASES, did_you_mean

# Always used with fullmatch(): with match(), '$' also accepts a trailing newline.
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
ACCOUNT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
DATE_PATTERN = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
VISIBILITIES = ("private", "team", "everyone")
MAX_LIST = 1000
MAX_TEXT = 1000
MAX_IDENTIFIER = 63  # PostgreSQL truncates longer relation names
MAX_MEMBERS = 2**31 - 1  # expect.*_members are integer columns
MAX_CHANGE_PCT = 1_000_000
# dbt-postgres writes table comments (persist_docs) between this dollar-quote tag and
# refuses, breaking the whole build, any text that contains it.
COMMENT_QUOTE = "$dbt_comment_literal_block$"

# key -> required?
TOP_LEVEL_KEYS: dict[str, bool] = {
    "key": True,
    "name": True,
    "description": False,
    "account": True,
    "owner": True,
    "visibility": True,
    "tags": False,
    "enabled": False,
    "expect": False,
    "where": True,
    "exclude": False,
}
EXPECT_KEYS = ("min_members", "max_members", "max_change_pct")
CONDITION_KEYS = ("field", "op", "value", "type")
# Operators whose values must be among a closed field's known values (Field.values).
EXACT_VALUE_OPS = frozenset({"eq", "neq", "in", "not_in"})

NodeParser = Callable[["Parser", MarkedDict], Node | None]
GROUP_KEYS = ("all", "any", "not")


def type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dt.datetime):
        return "a timestamp"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


@dataclass
class Parser:
    """Validates one loaded file. Errors go to `issues`; parse methods return None on error."""

    file: str
    issues: Issues
    catalogue: Catalogue = CATALOGUE
    regex_check: RegexCheck = offline_regex_check
    # node kind (the key that marks it) -> its parser; grammar.NODE_PARSERS has them all
    node_parsers: Mapping[str, NodeParser] = field(default_factory=lambda: CORE_NODE_PARSERS)

    # --- generic checks ----------------------------------------------------------------

    def error(self, loc: Loc, message: str) -> None:
        self.issues.add(loc, message)

    def check_keys(
        self, data: MarkedDict, allowed: Iterable[str], required: Iterable[str], what: str
    ) -> bool:
        allowed = list(allowed)
        ok = True
        for key in data:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                self.error(data.key_loc(key), f"unknown key '{key}' in {what}{hint}")
                ok = False
        for key in required:
            if key not in data:
                self.error(data.loc, f"missing required key '{key}' in {what}")
                ok = False
        return ok

    def text(self, value: Any, loc: Loc, what: str, empty_ok: bool = False) -> str | None:
        if not isinstance(value, str):
            self.error(loc, f"{what} must be a string, got {type_name(value)}")
            return None
        if "\x00" in value:
            self.error(loc, f"{what} contains a NUL character")
            return None
        if len(value) > MAX_TEXT:
            self.error(loc, f"{what} is longer than {MAX_TEXT} characters")
            return None
        if not empty_ok and not value.strip():
            self.error(loc, f"{what} must not be empty")
            return None
        return value

    def comment_text(self, value: Any, loc: Loc, what: str, empty_ok: bool = False) -> str | None:
        """Text that also becomes part of the model's table comment (name, description, owner)."""
        text = self.text(value, loc, what, empty_ok)
        if text is not None and COMMENT_QUOTE in text:
            self.error(
                loc,
                f"{what} must not contain '{COMMENT_QUOTE}' (dbt quotes table comments with it)",
            )
            return None
        return text

    def number(self, value: Any, loc: Loc, what: str) -> str | None:
        """A number, normalised to a plain decimal string (exact, no exponent)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = " (remove the quotes)" if isinstance(value, str) and _is_number(value) else ""
            self.error(loc, f"{what} must be a number, got {type_name(value)}{hint}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.error(loc, f"{what} must be a finite number")
            return None
        try:
            dec = Decimal(str(value))
        except InvalidOperation:  # pragma: no cover - str() of int/float always parses
            self.error(loc, f"{what} is not a number")
            return None
        text = format(dec.normalize(), "f")
        return "0" if text in ("-0", "0") else text

    def date(self, value: Any, loc: Loc, what: str) -> str | None:
        """A calendar date, normalised to 'YYYY-MM-DD'."""
        if isinstance(value, dt.datetime):
            self.error(loc, f"{what} must be a date like 2024-01-31 without a time")
            return None
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str) and DATE_PATTERN.fullmatch(value.strip()):
            try:
                return dt.date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                self.error(loc, f"{what} '{value}' is not a valid date")
                return None
        self.error(loc, f"{what} must be a date like 2024-01-31, got {type_name(value)}")
        return None

    # --- the file ----------------------------------------------------------------------

    def segment(self, data: Any, path: Path, account_dir: str) -> Segment | None:
        start = Loc(self.file, 1, 1)
        if not isinstance(data, MarkedDict):
            self.error(start, f"a segment definition must be a mapping, got {type_name(data)}")
            return None
        self.check_keys(
            data, TOP_LEVEL_KEYS, [k for k, req in TOP_LEVEL_KEYS.items() if req], "segment"
        )
        key = self._key(data, path)
        account = self._account(data, account_dir)
        name = (
            self.comment_text(data.get("name"), data.value_loc("name"), "'name'")
            if "name" in data
            else None
        )
        description = ""
        if "description" in data:
            description = (
                self.comment_text(
                    data["description"], data.value_loc("description"), "'description'", True
                )
                or ""
            )
        owner = (
            self.comment_text(data["owner"], data.value_loc("owner"), "'owner'")
            if "owner" in data
            else None
        )
        visibility = self._visibility(data)
        tags = self._tags(data)
        enabled = True
        if "enabled" in data:
            if isinstance(data["enabled"], bool):
                enabled = data["enabled"]
            else:
                self.error(
                    data.value_loc("enabled"),
                    f"'enabled' must be true or false, got {type_name(data['enabled'])}",
                )
        expect = self._expect(data)
        where = self.root(data, "where") if "where" in data else None
        exclude = self.root(data, "exclude") if "exclude" in data else None
        if None in (key, account, name, owner, visibility, tags, expect, where):
            return None
        if "exclude" in data and exclude is None:
            return None
        assert key and account and name and owner and visibility and where is not None
        assert tags is not None and expect is not None
        segment = Segment(
            key=key,
            account=account,
            name=name,
            description=description,
            owner=owner,
            visibility=visibility,
            tags=tags,
            enabled=enabled,
            expect=expect,
            where=where,
            exclude=exclude,
            source_file=self.file,
            loc=start,
            account_loc=data.value_loc("account"),
        )
        if len(segment.model_name) > MAX_IDENTIFIER:
            self.error(
                data.value_loc("key"),
                f"the model name '{segment.model_name}' is {len(segment.model_name)} characters; "
                f"PostgreSQL names are at most {MAX_IDENTIFIER}: shorten the key "
                f"(at most {MAX_IDENTIFIER - len(segment.model_name) + len(key)} characters "
                "for this account)",
            )
            return None
        return segment

    def _key(self, data: MarkedDict, path: Path) -> str | None:
        if "key" not in data:
            return None
        loc = data.value_loc("key")
        key = self.text(data["key"], loc, "'key'")
        if key is None:
            return None
        if not KEY_PATTERN.fullmatch(key):
            self.error(
                loc,
                f"key '{key}' must be snake_case: a lower-case letter, then lower-case letters, "
                "digits or underscores (at most 48 characters)",
            )
            return None
        if key != path.stem:
            self.error(loc, f"key '{key}' does not match the file name '{path.name}'")
            return None
        return key

    def _account(self, data: MarkedDict, account_dir: str) -> str | None:
        if "account" not in data:
            return None
        loc = data.value_loc("account")
        account = data["account"]
        if isinstance(account, int) and not isinstance(account, bool):
            account = str(account)
        account = self.text(account, loc, "'account'")
        if account is None:
            return None
        if account_dir == TEMPLATE_DIR:
            if account != TEMPLATE_ACCOUNT:
                self.error(loc, f'templates under {TEMPLATE_DIR}/ must say account: "*"')
                return None
            return account
        if account == TEMPLATE_ACCOUNT:
            self.error(loc, f'account "*" is only for templates under segment_defs/{TEMPLATE_DIR}/')
            return None
        if not ACCOUNT_PATTERN.fullmatch(account):
            self.error(loc, f"account '{account}' is not a valid account id")
            return None
        if account != account_dir:
            self.error(
                loc, f"account '{account}' does not match the folder '{account_dir}' of this file"
            )
            return None
        return account

    def _visibility(self, data: MarkedDict) -> str | None:
        if "visibility" not in data:
            return None
        loc = data.value_loc("visibility")
        value = self.text(data["visibility"], loc, "'visibility'")
        if value is None:
            return None
        if value not in VISIBILITIES:
            hint = did_you_mean(value, VISIBILITIES)
            self.error(
                loc,
                f"visibility '{value}' must be one of {', '.join(VISIBILITIES)}{hint}",
            )
            return None
        return value

    def _tags(self, data: MarkedDict) -> tuple[str, ...] | None:
        if "tags" not in data:
            return ()
        tags = data["tags"]
        if not isinstance(tags, MarkedList):
            self.error(data.value_loc("tags"), f"'tags' must be a list, got {type_name(tags)}")
            return None
        out: list[str] = []
        for i, tag in enumerate(tags):
            text = self.text(tag, tags.item_loc(i), "a tag")
            if text is None:
                return None
            out.append(text)
        return tuple(out)

    def _expect(self, data: MarkedDict) -> Expect | None:
        if "expect" not in data:
            return Expect()
        raw = data["expect"]
        if not isinstance(raw, MarkedDict):
            self.error(
                data.value_loc("expect"), f"'expect' must be a mapping, got {type_name(raw)}"
            )
            return None
        if not self.check_keys(raw, EXPECT_KEYS, (), "expect"):
            return None
        values: dict[str, Any] = {}
        ok = True
        for key in EXPECT_KEYS:
            if key not in raw:
                continue
            value = raw[key]
            loc = raw.value_loc(key)
            integer = key != "max_change_pct"
            limit = MAX_MEMBERS if integer else MAX_CHANGE_PCT
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                self.error(loc, f"'expect.{key}' must be a non-negative number")
                ok = False
            elif integer and not isinstance(value, int):
                self.error(loc, f"'expect.{key}' must be a whole number")
                ok = False
            elif not value <= limit:  # also NaN
                self.error(loc, f"'expect.{key}' must be at most {limit}")
                ok = False
            else:
                values[key] = value
        if (
            ok
            and "min_members" in values
            and "max_members" in values
            and values["min_members"] > values["max_members"]
        ):
            self.error(raw.value_loc("max_members"), "'expect.max_members' is below min_members")
            ok = False
        return Expect(**values) if ok else None

    # --- the condition tree --------------------------------------------------------------

    def root(self, data: MarkedDict, key: str) -> Node | None:
        value = data[key]
        loc = data.value_loc(key)
        if isinstance(value, MarkedList):  # a bare list means `all`
            return self.group_items("all", value, loc, f"'{key}'")
        return self.node(value, loc, f"'{key}'")

    def node(self, value: Any, loc: Loc, what: str) -> Node | None:
        if not isinstance(value, MarkedDict):
            self.error(
                loc,
                f"{what} must be a condition {{field, op, value}} or a group "
                f"(all/any/not), got {type_name(value)}",
            )
            return None
        kinds = [k for k in value if k in self.node_parsers]
        if not kinds:
            keys = ", ".join(f"'{k}'" for k in value) or "nothing"
            hint = ""
            for k in value:
                hint = did_you_mean(k, self.node_parsers)
                if hint:
                    break
            self.error(
                value.loc,
                f"expected a condition (with 'field') or a group ({', '.join(GROUP_KEYS)})"
                f", found {keys}{hint}",
            )
            return None
        if len(kinds) > 1:
            self.error(
                value.key_loc(kinds[1]),
                f"one node can't be both '{kinds[0]}' and '{kinds[1]}': "
                "nest them in an 'all' or 'any' list",
            )
            return None
        return self.node_parsers[kinds[0]](self, value)

    def group_items(self, op: str, items: Any, loc: Loc, what: str) -> Node | None:
        if not isinstance(items, MarkedList):
            self.error(loc, f"{what} must be a list of conditions, got {type_name(items)}")
            return None
        if not items:
            self.error(loc, f"{what} is an empty group: give it at least one condition")
            return None
        nodes = [
            self.node(item, items.item_loc(i), f"item {i + 1} of {what}")
            for i, item in enumerate(items)
        ]
        if any(n is None for n in nodes):
            return None
        return Group(loc, op, tuple(n for n in nodes if n is not None))

    # --- conditions ------------------------------------------------------------------------

    def condition(self, data: MarkedDict) -> Node | None:
        self.check_keys(data, CONDITION_KEYS, ("field", "op"), "a condition")
        if not ("field" in data and "op" in data):
            return None
        field_loc = data.value_loc("field")
        name = self.text(data["field"], field_loc, "'field'")
        op_loc = data.value_loc("op")
        op_name = self.text(data["op"], op_loc, "'op'")
        if name is None or op_name is None:
            return None
        op = OPERATORS.get(op_name)
        field = self._field(data, name, op)
        if field is None:
            return None
        if op is None or field.type not in op.types:
            allowed = operators_for(field.type)
            hint = did_you_mean(op_name, allowed, OPERATOR_ALIASES)
            label = "unknown operator" if op is None else "operator"
            tail = "" if op is None else " does not apply to"
            if op is None:
                msg = f"unknown operator '{op_name}' for {field.type} field '{name}'{hint}"
            else:
                msg = (
                    f"{label} '{op_name}'{tail} {field.type} field '{name}'{hint}; "
                    f"{field.type} operators: {', '.join(allowed)}"
                )
            self.error(op_loc, msg)
            return None
        value = self._value(data, field, op)
        if value is _INVALID:
            return None
        return Condition(data.loc, field, op.name, value)

    def _field(self, data: MarkedDict, name: str, op: Operator | None) -> Field | None:
        loc = data.value_loc("field")
        if "type" in data and not self.catalogue.is_custom(name):
            self.error(data.key_loc("type"), "'type' can only be declared for custom.* fields")
            return None
        if not self.catalogue.is_custom(name):
            try:
                return self.catalogue.lookup(name)
            except UnknownFieldError as exc:
                self.error(loc, exc.message)
                return None
        field_type = self._custom_type(data, op)
        if field_type is None:
            return None
        try:
            return self.catalogue.custom_field(name, field_type)
        except UnknownFieldError as exc:
            self.error(loc, exc.message)
            return None

    def _custom_type(self, data: MarkedDict, op: Operator | None) -> FieldType | None:
        """A custom field's type: declared with `type:`, else implied by the op or value."""
        if "type" in data:
            loc = data.value_loc("type")
            names = [str(t) for t in CUSTOM_TYPES]
            if data["type"] not in names:
                hint = did_you_mean(data["type"], names)
                self.error(loc, f"type '{data['type']}' must be one of {', '.join(names)}{hint}")
                return None
            return FieldType(data["type"])
        if op is None:
            return FieldType.STRING  # the operator error is reported next
        implied = implied_type(op)
        if implied is not None:
            return implied
        sample = data.get("value")
        if isinstance(sample, list) and sample:
            sample = sample[0]
        if isinstance(sample, int | float) and not isinstance(sample, bool):
            return FieldType.NUMBER
        if isinstance(sample, dt.date) and op.name in ("between", "not_between"):
            return FieldType.DATE
        if op.name in ("between", "not_between"):
            return FieldType.NUMBER
        return FieldType.STRING

    def _value(self, data: MarkedDict, field: Field, op: Operator) -> Any:
        what = f"the value of '{op.name}' on {field.type} field '{field.name}'"
        if op.value is ValueKind.NONE:
            if "value" in data:
                self.error(data.key_loc("value"), f"operator '{op.name}' takes no value")
                return _INVALID
            return None
        if "value" not in data:
            self.error(data.loc, f"operator '{op.name}' needs a 'value'")
            return _INVALID
        value = data["value"]
        loc = data.value_loc("value")
        element = FieldType.STRING if field.type is FieldType.ARRAY else field.type
        if op.value is ValueKind.SCALAR:
            out = self._scalar(value, loc, element, what)
            return self._known_value(out, loc, field, op)
        if op.value is ValueKind.PATTERN:
            text = self.text(value, loc, what)
            if text is None:
                return _INVALID
            try:
                re.compile(text)
            except re.error as exc:
                self.error(loc, f"{what} is not a valid regular expression: {exc}")
                return _INVALID
            # Segment SQL runs the pattern with PostgreSQL's engine, which differs from
            # Python's: it must accept it too.
            problem = self.regex_check(text)
            if problem is not None:
                self.error(loc, f"{what} {problem}")
                return _INVALID
            return text
        if op.value is ValueKind.LIST:
            if not isinstance(value, MarkedList):
                self.error(loc, f"{what} must be a list like [a, b], got {type_name(value)}")
                return _INVALID
            if not value or len(value) > MAX_LIST:
                self.error(loc, f"{what} must list between 1 and {MAX_LIST} values")
                return _INVALID
            items = [
                self._known_value(
                    self._scalar(v, value.item_loc(i), element, what), value.item_loc(i), field, op
                )
                for i, v in enumerate(value)
            ]
            return _INVALID if _INVALID in items else items
        if op.value is ValueKind.RANGE:
            if not isinstance(value, MarkedList) or len(value) != 2:
                self.error(loc, f"{what} must be a list of two values [low, high]")
                return _INVALID
            low, high = (
                self._scalar(v, value.item_loc(i), element, what) for i, v in enumerate(value)
            )
            if _INVALID in (low, high):
                return _INVALID
            ordered = Decimal(low) <= Decimal(high) if element is FieldType.NUMBER else low <= high
            if not ordered:
                self.error(loc, f"{what}: low {low} is above high {high}")
                return _INVALID
            return [low, high]
        if op.value is ValueKind.DURATION:
            return self._duration(value, loc, what)
        if op.value is ValueKind.CALENDAR:
            if value not in CALENDAR_PERIODS:
                hint = did_you_mean(value, CALENDAR_PERIODS)
                self.error(loc, f"{what} must be one of {', '.join(CALENDAR_PERIODS)}{hint}")
                return _INVALID
            return value
        raise AssertionError(op.value)  # pragma: no cover

    def _known_value(self, value: Any, loc: Loc, field: Field, op: Operator) -> Any:
        """For a field with a closed set of values (rfm.segment), an exact comparison must
        name one of them: a misspelt value would silently match nobody."""
        if value is _INVALID or field.values is None or op.name not in EXACT_VALUE_OPS:
            return value
        if value not in field.values:
            hint = did_you_mean(value, field.values)
            self.error(
                loc,
                f"unknown value '{value}' for field '{field.name}'{hint}; "
                f"known values: {', '.join(field.values)}",
            )
            return _INVALID
        return value

    def _scalar(self, value: Any, loc: Loc, field_type: FieldType, what: str) -> Any:
        if field_type is FieldType.NUMBER:
            out = self.number(value, loc, what)
        elif field_type in (FieldType.DATE, FieldType.TIMESTAMP):
            out = self.date(value, loc, what)
        else:
            out = self.text(value, loc, what, empty_ok=True)
        return _INVALID if out is None else out

    def _duration(self, value: Any, loc: Loc, what: str) -> Any:
        example = "{days: 30}"
        if not isinstance(value, MarkedDict) or len(value) != 1:
            self.error(
                loc,
                f"{what} must be a duration like {example} (one of {', '.join(DURATION_UNITS)})",
            )
            return _INVALID
        unit, n = next(iter(value.items()))
        if unit not in DURATION_UNITS:
            hint = did_you_mean(unit, DURATION_UNITS)
            self.error(
                value.key_loc(unit),
                f"unknown duration unit '{unit}'{hint}; use one of {', '.join(DURATION_UNITS)}",
            )
            return _INVALID
        limit = MAX_DURATION[unit]
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= limit:
            self.error(
                value.value_loc(unit),
                f"a duration's {unit} must be a whole number from 0 to {limit} "
                f"(about {MAX_DURATION['years']} years), got {n!r}",
            )
            return _INVALID
        return {"unit": unit, "n": n}


_INVALID = object()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_group(parser: Parser, data: MarkedDict) -> Node | None:
    op = "all" if "all" in data else "any"
    return parser.group_items(op, data[op], data.value_loc(op), f"'{op}'")


def _parse_not(parser: Parser, data: MarkedDict) -> Node | None:
    value = data["not"]
    loc = data.value_loc("not")
    if isinstance(value, MarkedList):  # `not: [a, b]` is "not (a and b)"
        inner = parser.group_items("all", value, loc, "'not'")
    else:
        inner = parser.node(value, loc, "'not'")
    return None if inner is None else Not(data.loc, inner)


def _parse_condition(parser: Parser, data: MarkedDict) -> Node | None:
    return parser.condition(data)


# The node kinds of this module; grammar.py adds those of activity.py (has, in_segment).
CORE_NODE_PARSERS: dict[str, NodeParser] = {
    "all": _parse_group,
    "any": _parse_group,
    "not": _parse_not,
    "field": _parse_condition,
}
