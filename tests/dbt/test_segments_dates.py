"""Relative and calendar dates at fixed as-of dates: month ends, leap days, year ends,
week starts and timezones. The macros' SQL is compiled once (one dbt call) and evaluated
over a small VALUES table for each as-of date; the Python evaluator must agree."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import psycopg
import pytest
import yaml
from _segments import compile_predicates, copy_project, evaluate_predicates, project_dir
from _segments_eval import Evaluator, parse_node

pytestmark = pytest.mark.slow

ROWS = {
    # contact_id: (date_of_birth, created_at)
    "feb29": ("2000-02-29", "2024-02-29 12:00+07"),
    "feb28": ("2001-02-28", "2024-02-28 12:00+07"),
    "mar01": ("2001-03-01", "2024-01-31 12:00+07"),
    "dec31": ("1985-12-31", "2024-03-31 12:00+07"),
    "jan01": ("1990-01-01", "2024-03-11 00:30+07"),  # still 10 March in UTC
}
CONTACTS_SQL = "select * from (values {}) as v (contact_id, date_of_birth, created_at)".format(
    ", ".join(f"('{k}', date '{d}', timestamptz '{t}')" for k, (d, t) in ROWS.items())
)

# (as_of, timezone, condition, expected)
CASES = [
    ("2023-02-28", "Asia/Jakarta", "dob ann {days: 0}", {"feb29", "feb28"}),
    ("2024-02-28", "Asia/Jakarta", "dob ann {days: 0}", {"feb28"}),
    ("2024-02-28", "Asia/Jakarta", "dob ann {days: 1}", {"feb28", "feb29"}),
    ("2023-03-01", "Asia/Jakarta", "dob ann {days: 0}", {"mar01"}),
    ("2023-12-30", "Asia/Jakarta", "dob ann {days: 2}", {"dec31", "jan01"}),
    ("2024-01-01", "Asia/Jakarta", "dob ann {days: 7}", {"jan01"}),
    (
        "2024-03-31",
        "Asia/Jakarta",
        "created within_last {months: 1}",  # from 29 Feb: 31 Mar minus a month
        {"feb29", "dec31", "jan01"},
    ),
    ("2023-03-31", "Asia/Jakarta", "created within_last {months: 1}", set()),
    ("2024-03-31", "Asia/Jakarta", "created more_than_ago {months: 1}", {"feb28", "mar01"}),
    ("2024-03-31", "Asia/Jakarta", "created in_calendar last_month", {"feb29", "feb28"}),
    (
        "2024-02-29",
        "Asia/Jakarta",
        "created within_next {days: 31}",
        {"feb29", "dec31", "jan01"},
    ),
    (
        "2024-03-31",
        "Asia/Jakarta",
        "created in_calendar this_quarter",
        {"feb29", "feb28", "mar01", "dec31", "jan01"},
    ),
    ("2024-03-13", "Asia/Jakarta", "created in_calendar this_week", {"jan01"}),
    ("2024-03-13", "UTC", "created in_calendar this_week", set()),
    ("2024-03-13", "UTC", "created in_calendar last_week", {"jan01"}),
    (
        "2025-02-28",
        "Asia/Jakarta",
        "created within_last {years: 1}",
        {"feb28", "feb29", "dec31", "jan01"},
    ),
    ("2024-03-31", "Asia/Jakarta", "created within_last {weeks: 3}", {"dec31", "jan01"}),
    ("2024-03-31", "Asia/Jakarta", "dob in_calendar last_year", set()),
]


def tree(condition: str) -> dict:
    field, op, value = condition.split(" ", 2)
    field = {"dob": "date_of_birth", "created": "created_at"}[field]
    op = {"ann": "anniversary_within_next"}.get(op, op)
    return {"field": field, "op": op, "value": yaml.safe_load(value)}


@pytest.fixture(scope="module")
def predicates(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    project = copy_project(tmp_path_factory.mktemp("segments_dates") / "project")
    with project_dir(project):
        return compile_predicates([parse_node(tree(c[2])).to_json() for c in CASES])


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_relative_dates(predicates: list[str], db: psycopg.Connection, index: int) -> None:
    as_of, tz, condition, expected = CASES[index]
    [selected] = evaluate_predicates(db, [predicates[index]], as_of, tz, CONTACTS_SQL)
    assert selected == expected
    # the independent evaluator agrees
    node = parse_node(tree(condition))
    python = set()
    for contact, (dob, created) in ROWS.items():
        local = dt.datetime.fromisoformat(created.replace("+07", "+07:00")).astimezone(ZoneInfo(tz))
        row = {"date_of_birth": dt.date.fromisoformat(dob), "created_at": local.date()}
        if Evaluator(row, dt.date.fromisoformat(as_of)).visit(node):
            python.add(contact)
    assert python == expected
