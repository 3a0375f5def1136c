"""A small Python evaluator of validated condition trees, written from the documented
semantics (docs/segment-language.md), independent of the SQL macros. Tests compare it with
what the compiled SQL selects on the same rows."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from decimal import Decimal
from typing import Any

import yaml

from segmentation.language.grammar import NODE_PARSERS
from segmentation.language.issues import Issues, Loc
from segmentation.language.loader import load_yaml
from segmentation.language.model import Condition, Group, Node, NodeVisitor, Not
from segmentation.language.validate import Parser

NUMBER_TEXT = re.compile(r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)\s*$")


class _NoAliases(yaml.SafeDumper):
    """Writes a sub-tree used twice out twice: hypothesis can share one object between two
    places of a tree, and the definition loader refuses YAML aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def parse_node(data: Any) -> Node:
    """A condition tree in YAML form (plain Python) -> validated Node (or AssertionError)."""
    text = yaml.dump({"where": data}, Dumper=_NoAliases, sort_keys=False)
    loaded, issues = load_yaml(text, "tree.yml")
    assert not issues, issues.items
    parser = Parser("tree.yml", Issues(), node_parsers=NODE_PARSERS)
    node = parser.node(loaded["where"], Loc("tree.yml"), "'where'")
    assert node is not None and not parser.issues, [str(i) for i in parser.issues.items]
    return node


def add_months(day: dt.date, months: int) -> dt.date:
    """PostgreSQL's date + interval 'N months': clamp to the last day of the month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def shift(day: dt.date, duration: dict[str, Any], sign: int = 1) -> dt.date:
    n = sign * duration["n"]
    unit = duration["unit"]
    if unit == "days":
        return day + dt.timedelta(days=n)
    if unit == "weeks":
        return day + dt.timedelta(weeks=n)
    if unit == "months":
        return add_months(day, n)
    return add_months(day, 12 * n)


def calendar_bounds(period: str, as_of: dt.date) -> tuple[dt.date, dt.date]:
    """[start, end) of a period; weeks start on Monday."""
    which, unit = period.split("_", 1) if "_" in period else (period, "day")
    offset = {"this": 0, "last": -1, "next": 1, "today": 0, "yesterday": -1, "tomorrow": 1}[which]
    if unit == "day":
        start = as_of + dt.timedelta(days=offset)
        return start, start + dt.timedelta(days=1)
    if unit == "week":
        start = as_of - dt.timedelta(days=as_of.weekday()) + dt.timedelta(weeks=offset)
        return start, start + dt.timedelta(weeks=1)
    months = {"month": 1, "quarter": 3, "year": 12}[unit]
    shifted = add_months(as_of, offset * months)
    if unit == "month":
        start = shifted.replace(day=1)
    elif unit == "quarter":
        start = dt.date(shifted.year, 3 * ((shifted.month - 1) // 3) + 1, 1)
    else:
        start = dt.date(shifted.year, 1, 1)
    return start, add_months(start, months)


def next_anniversary(day: dt.date, as_of: dt.date) -> dt.date:
    this_year = add_months(day, 12 * (as_of.year - day.year))
    return this_year if this_year >= as_of else add_months(day, 12 * (as_of.year - day.year + 1))


class Evaluator(NodeVisitor[bool]):
    """Evaluates a tree on one row: a dict of staging columns (+ 'timezone' handling done by
    the caller: timestamps must already be dates in the account's timezone)."""

    def __init__(self, row: dict[str, Any], as_of: dt.date) -> None:
        self.row = row
        self.as_of = as_of

    def visit_all(self, node: Group) -> bool:
        return all(self.visit(n) for n in node.nodes)

    def visit_any(self, node: Group) -> bool:
        return any(self.visit(n) for n in node.nodes)

    def visit_not(self, node: Not) -> bool:
        assert node.node is not None
        return not self.visit(node.node)

    def value_of(self, node: Condition) -> Any:
        field = node.field
        assert field is not None
        if field.json_key is None:
            return self.row[field.column if field.entity == "contact" else field.name]
        raw = (self.row[field.column] or {}).get(field.json_key)
        kind = str(field.type)
        if kind == "number":
            if isinstance(raw, bool):
                return None
            if isinstance(raw, int | float):
                return Decimal(str(raw))
            if isinstance(raw, str) and NUMBER_TEXT.match(raw):
                return Decimal(raw.strip())
            return None
        if kind == "string":
            if raw is None:
                return None
            return raw if isinstance(raw, str) else str(raw).lower()
        raise NotImplementedError(kind)

    def visit_condition(self, node: Condition) -> bool:
        x = self.value_of(node)
        v = node.value
        op = node.op
        kind = str(node.field.type) if node.field else ""
        negatives = {
            "neq": "eq",
            "not_in": "in",
            "not_contains": "contains",
            "not_between": "between",
            "contains_none": "contains_any",
            "is_not_set": "is_set",
        }
        if op in negatives:
            positive = Condition(node.loc, node.field, negatives[op], v)
            return not self.visit_condition(positive)
        if op == "is_set":
            if kind == "string":
                return x is not None and x != ""
            if kind == "array":
                return bool(x)
            return x is not None
        if x is None:
            return False
        if kind == "number":
            x = Decimal(x)
            v = [Decimal(i) for i in v] if isinstance(v, list) else Decimal(v) if v else v
        if kind in ("date", "timestamp") and isinstance(v, str) and op != "in_calendar":
            v = dt.date.fromisoformat(v)
        if kind in ("date", "timestamp") and op == "between":
            v = [dt.date.fromisoformat(i) for i in v]
        a = self.as_of
        checks = {
            "eq": lambda: x == v,
            "in": lambda: x in v,
            "ieq": lambda: x.lower() == v.lower(),
            "contains": lambda: v in x,
            "icontains": lambda: v.lower() in x.lower(),
            "starts_with": lambda: x.startswith(v),
            "ends_with": lambda: x.endswith(v),
            "matches": lambda: re.search(v, x) is not None,
            "gt": lambda: x > v,
            "gte": lambda: x >= v,
            "lt": lambda: x < v,
            "lte": lambda: x <= v,
            "between": lambda: v[0] <= x <= v[1],
            "before": lambda: x < v,
            "after": lambda: x > v,
            "on": lambda: x == v,
            "within_last": lambda: shift(a, v, -1) <= x <= a,
            "more_than_ago": lambda: x < shift(a, v, -1),
            "within_next": lambda: a <= x <= shift(a, v),
            "in_calendar": lambda: calendar_bounds(v, a)[0] <= x < calendar_bounds(v, a)[1],
            "anniversary_within_next": lambda: next_anniversary(x, a) <= shift(a, v),
            "is_true": lambda: x is True,
            "is_false": lambda: x is False,
            "contains_any": lambda: bool(set(x) & set(v)),
            "contains_all": lambda: set(v) <= set(x),
        }
        return checks[op]()
