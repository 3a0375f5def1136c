"""Helpers for the activity-condition tests: a temporary project copy, raw CRM rows with edge
cases, YAML snippets parsed by the real validator, and member sets read back from Postgres.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from _segments import PROJECT_DIR, checkout_copy, project_dir

from segmentation.compiler import activity_compile
from segmentation.compiler.sources import load_definitions
from segmentation.language.grammar import NODE_PARSERS
from segmentation.language.issues import Loc
from segmentation.language.loader import load_yaml
from segmentation.language.model import Node
from segmentation.language.validate import Parser

REPO = PROJECT_DIR
AS_OF = dt.date(2026, 6, 30)


@contextmanager
def project_copy(target: Path) -> Iterator[Path]:
    """dbt_project.yml, profiles, models/ and macros/ without anything generated, as the
    project (SEGMENTS_PROJECT_DIR) until the context ends."""
    checkout_copy(target, ("models", "macros"))
    with project_dir(target):
        yield target


def parse_condition(yaml_text: str, file: str = "case.yml") -> Node:
    """A condition tree written as YAML, through the real validator; errors raise."""
    data, issues = load_yaml(textwrap.dedent(yaml_text), file)
    assert data is not None, issues.sorted()
    parser = Parser(file, issues, node_parsers=NODE_PARSERS)
    node = parser.node(data, Loc(file), "condition")
    assert not issues and node is not None, [str(i) for i in issues.sorted()]
    return node


def parse_errors(yaml_text: str, file: str = "case.yml") -> list[str]:
    data, issues = load_yaml(textwrap.dedent(yaml_text), file)
    if data is not None:
        Parser(file, issues, node_parsers=NODE_PARSERS).node(data, Loc(file), "condition")
    return [str(i) for i in issues.sorted()]


def ts(day: str, hour: int = 12, tz: str = "+07") -> str:
    """A timestamptz literal; noon Jakarta time by default."""
    return f"{day} {hour:02d}:00:00{tz}"


def insert(
    conn: psycopg.Connection, table: str, columns: str, rows: Iterable[tuple[Any, ...]]
) -> None:
    names = [c.strip() for c in columns.split(",")]
    statement = psycopg.sql.SQL("insert into crm_raw.{} ({}) values ({})").format(
        psycopg.sql.Identifier(table),
        psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(n) for n in names),
        psycopg.sql.SQL(", ").join(psycopg.sql.Placeholder() for _ in names),
    )
    with conn.cursor() as cur:
        cur.executemany(statement, list(rows))


def load_edge_cases(conn: psycopg.Connection) -> None:
    """Accounts acme (ultimate, Jakarta), beta (360, UTC), plusco (plus). As-of 2026-06-30.

    a1  rich history; a2 no rows at all; a3 rows exactly on window boundaries and NULL
    amounts; a4 tickets and events; a5 soft-deleted with activity; b1 (beta) plenty of
    activity that must never count for acme; rows pointing an acme contact from beta.
    """
    insert(
        conn,
        "accounts",
        "account_id, name, package, timezone",
        [
            ("acme", "Acme", "ultimate", "Asia/Jakarta"),
            ("beta", "Beta", "360", "UTC"),
            ("plusco", "Plus Co", "plus", "Asia/Jakarta"),
        ],
    )
    contact_cols = "contact_id, account_id, full_name, lifecycle_stage, created_at, deleted_at"
    insert(
        conn,
        "contacts",
        contact_cols,
        [
            ("a1", "acme", "A One", "customer", ts("2024-01-01"), None),
            ("a2", "acme", "A Two", "lead", ts("2024-01-01"), None),
            ("a3", "acme", "A Three", "customer", ts("2024-01-01"), None),
            ("a4", "acme", "A Four", "lead", ts("2024-01-01"), None),
            ("a5", "acme", "A Five", "customer", ts("2024-01-01"), ts("2026-06-01")),
            ("b1", "beta", "B One", "customer", ts("2024-01-01"), None),
            ("p1", "plusco", "P One", "customer", ts("2024-01-01"), None),
        ],
    )
    insert(
        conn,
        "deals",
        "deal_id, account_id, contact_id, status, amount, currency, created_at, closed_at",
        [
            # a1: open 60 days, won 60M this year, won 70M last year
            ("d1", "acme", "a1", "open", 1000, "IDR", ts("2026-05-01"), None),
            ("d2", "acme", "a1", "won", 60_000_000, "IDR", ts("2026-01-05"), ts("2026-02-01")),
            ("d3", "acme", "a1", "won", 70_000_000, "IDR", ts("2025-03-01"), ts("2025-12-31")),
            # a3: open deal created exactly 30 days before the as-of date (not "> 30 days")
            ("d4", "acme", "a3", "open", None, "IDR", ts("2026-05-31", 1), None),
            ("d5", "acme", "a3", "won", 5, "IDR", ts("2026-01-02"), ts("2026-01-02")),
            # a5 is deleted: its rows are gone in staging
            ("d6", "acme", "a5", "open", 99, "IDR", ts("2026-01-01"), None),
            # beta rows, and a beta row naming an acme contact (cross-account, rejected)
            ("d7", "beta", "b1", "open", 1, "IDR", ts("2026-01-01"), None),
            ("d8", "beta", "a2", "open", 1, "IDR", ts("2026-01-01"), None),
            ("d9", "beta", "b1", "won", 90_000_000, "IDR", ts("2026-03-01"), ts("2026-03-02")),
        ],
    )
    insert(
        conn,
        "conversations",
        "conversation_id, account_id, contact_id, channel, status, started_at, message_count",
        [
            # a1: none in 90 days (one 91 days before as-of, local date 2026-03-31)
            ("v1", "acme", "a1", "whatsapp", "closed", ts("2026-03-31"), 3),
            # a3: exactly 90 days before as-of (2026-04-01): inside the window
            ("v2", "acme", "a3", "email", "closed", ts("2026-04-01", 0), 1),
            # a4: after the as-of date in Jakarta (2026-07-01 03:00 +07): never counts
            ("v3", "acme", "a4", "sms", "open", "2026-06-30 20:00:00+00", 1),
            ("v4", "beta", "b1", "whatsapp", "open", ts("2026-06-01"), 5),
            ("v5", "beta", "a1", "whatsapp", "open", ts("2026-06-01"), 5),
        ],
    )
    insert(
        conn,
        "orders",
        "order_id, account_id, contact_id, amount, currency, status, ordered_at",
        [
            # a1: twice in 90 days, not in the last 30; 1.2M completed within a year
            ("o1", "acme", "a1", 700_000, "IDR", "completed", ts("2026-04-15")),
            ("o2", "acme", "a1", 500_000, "IDR", "completed", ts("2026-05-20")),
            ("o3", "acme", "a1", 900_000, "IDR", "refunded", ts("2026-05-21")),
            # a3: NULL amount, and an order exactly 30 days before as-of
            ("o4", "acme", "a3", None, "IDR", "completed", ts("2026-05-31")),
            ("o5", "acme", "a3", None, "IDR", "completed", ts("2025-12-01")),
            # a4: last purchase long ago, and one exactly 365 days before as-of
            ("o6", "acme", "a4", 2_000_000, "IDR", "completed", ts("2025-06-30")),
            ("o7", "acme", "a4", 100, "IDR", "completed", ts("2025-01-01")),
            # a5 deleted
            ("o8", "acme", "a5", 5_000_000, "IDR", "completed", ts("2026-06-01")),
            # beta: plenty, must never count for acme
            ("o9", "beta", "b1", 9_000_000, "IDR", "completed", ts("2026-06-01")),
            ("o10", "beta", "a1", 9_000_000, "IDR", "completed", ts("2026-06-01")),
        ],
    )
    insert(
        conn,
        "tickets",
        "ticket_id, account_id, contact_id, status, priority, category, channel, created_at",
        [
            ("t1", "acme", "a4", "open", "high", "billing", "email", ts("2026-06-29")),
            ("t2", "acme", "a4", "closed", "low", "billing", "email", ts("2026-06-10")),
            # exactly 30 days before as-of: inside "last 30 days"
            ("t3", "acme", "a4", "closed", "low", "other", "email", ts("2026-05-31", 0)),
            ("t4", "acme", "a1", "open", "low", "other", "email", ts("2026-06-20")),
            ("t5", "acme", "a1", "open", "low", "other", "email", ts("2026-05-30")),
            ("t6", "acme", "a1", "open", "low", "other", "email", ts("2026-06-21")),
            ("t7", "beta", "b1", "open", "low", "other", "email", ts("2026-06-21")),
        ],
    )
    insert(
        conn,
        "campaign_events",
        "event_id, account_id, campaign_id, contact_id, event_type, occurred_at",
        [
            ("e1", "acme", "cmp_123", "a1", "clicked", ts("2026-06-01")),
            ("e2", "acme", "cmp_999", "a1", "clicked", ts("2026-06-02")),
            ("e3", "acme", "cmp_999", "a3", "clicked", ts("2026-06-01")),
            ("e4", "acme", "cmp_123", "a4", "read", ts("2026-06-01")),
            ("e5", "beta", "cmp_123", "b1", "clicked", ts("2026-06-01")),
            ("e6", "beta", "cmp_123", "a2", "clicked", ts("2026-06-01")),
        ],
    )
    insert(
        conn,
        "companies",
        "company_id, account_id, name, industry, employee_count, created_at",
        [
            ("co1", "acme", "Shop", "Retail", 10, ts("2020-01-01")),
            ("co2", "acme", "Tech", "technology", 500, ts("2020-01-01")),
            ("co3", "beta", "Beta Shop", "retail", 5, ts("2020-01-01")),
        ],
    )
    insert(
        conn,
        "contact_companies",
        "account_id, contact_id, company_id, is_primary",
        [
            ("acme", "a1", "co1", True),
            ("acme", "a3", "co1", False),
            ("acme", "a3", "co2", True),
            ("beta", "b1", "co3", True),
        ],
    )


def members(conn: psycopg.Connection, query: str, *params: Any) -> set[tuple[str, str]]:
    return {(r[0], r[1]) for r in conn.execute(query, params).fetchall()}


# --- definition files in a temporary segment_defs/ ---

PACKAGES = {"acme": "ultimate", "beta": "360", "plusco": "plus"}

HEADER = """\
key: {key}
name: {key}
account: "{account}"
owner: growth
visibility: team
enabled: {enabled}
"""


def write(root: Path, account: str, key: str, where: str, enabled: bool = True) -> Path:
    folder = root / ("_all" if account == "*" else account)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.yml"
    body = HEADER.format(key=key, account=account, enabled=str(enabled).lower())
    path.write_text(
        body + "where:\n" + textwrap.indent(textwrap.dedent(where).strip(), "  ") + "\n"
    )
    return path


def plan(
    root: Path, packages: dict[str, str | None] | None = None
) -> activity_compile.ActivityPlan:
    files = [p for p in root.rglob("*.yml") if "_groups" not in p.parts]
    loaded = load_definitions(files)
    assert not loaded.issues, [str(i) for i in loaded.errors]
    return activity_compile.plan(loaded.segments, root, packages)


def messages(p: activity_compile.ActivityPlan, root: Path) -> list[str]:
    """Errors with the temporary directory cut off the file names."""
    return [str(i).replace(f"{root}/", "") for i in p.issues.sorted()]


def write_group(root: Path, account: str, name: str, text: str) -> Path:
    folder = root / account / "_groups"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yml"
    path.write_text(textwrap.dedent(text))
    return path
