"""Helpers for the segment language tests: a throwaway copy of the dbt project, raw rows,
one dbt build, and compiling condition trees to SQL predicates in one dbt call."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from segmentation.compiler.literals import jinja_string
from segmentation.warehouse.dbt_runner import run_dbt

PROJECT_DIR = Path(__file__).resolve().parents[1]
BUILD_SELECT = [
    "staging",
    "int_segment_as_of",
    "int_segment_primary_companies",
    "int_segment_scopes",  # which accounts each template applies to
    "features",  # per-contact activity features (has:) that segment models join
    "path:models/analytics/rfm",  # rfm_scores, which segments on rfm.* fields join
    "tag:segment",
    "tag:segment_pass",  # the one-pass models the seg__ views read (segment_strategy)
    "segment_memberships",
    "segment_catalogue",
]

CONTACT_COLUMNS = [
    "contact_id",
    "account_id",
    "full_name",
    "email",
    "phone",
    "gender",
    "date_of_birth",
    "job_title",
    "city",
    "province",
    "country",
    "lifecycle_stage",
    "lead_source",
    "owner_user_id",
    "tags",
    "custom_fields",
    "consent_whatsapp",
    "consent_email",
    "consent_sms",
    "consent_updated_at",
    "loyalty_tier",
    "loyalty_points",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "deleted_at",
]


def empty_raw_tables(db: psycopg.Connection) -> None:
    """Every crm_raw table emptied, in one statement, so a module loads its own rows only."""
    tables = [
        sql.Identifier("crm_raw", name)
        for (name,) in db.execute(
            "select table_name from information_schema.tables where table_schema = 'crm_raw'"
        ).fetchall()
    ]
    db.execute(sql.SQL("truncate {}").format(sql.SQL(", ").join(tables)))


def copy_project(target: Path) -> Path:
    """The dbt project without anything generated, so tests never touch the checkout."""
    ignore = shutil.ignore_patterns("generated", "__pycache__")
    target.mkdir(parents=True, exist_ok=True)
    for name in ("dbt_project.yml", "profiles.example.yml"):
        shutil.copy(PROJECT_DIR / name, target / name)
    shutil.copytree(PROJECT_DIR / "macros", target / "macros", ignore=ignore)
    for sub in ("staging", "segments"):
        # models/segments holds only generated files: a fresh checkout has no such folder
        source = PROJECT_DIR / "models" / sub
        if source.is_dir():
            shutil.copytree(source, target / "models" / sub, ignore=ignore)
        else:
            (target / "models" / sub).mkdir(parents=True)
    # Only the intermediate models this layer needs: others' models there (groups,
    # features) depend on files their own tooling generates.
    intermediate = target / "models" / "intermediate"
    intermediate.mkdir(parents=True)
    for pattern in ("_int__models.yml", "int_crm__*.sql", "int_segment_*.sql"):
        for path in (PROJECT_DIR / "models" / "intermediate").glob(pattern):
            shutil.copy(path, intermediate / path.name)
    # The segment marts (the group assignments need the groups' generated files).
    marts = target / "models" / "marts"
    marts.mkdir(parents=True)
    for name in ("_marts__models.yml", "segment_memberships.sql", "segment_catalogue.sql"):
        shutil.copy(PROJECT_DIR / "models" / "marts" / name, marts / name)
    # rfm.* and cluster.* fields read rfm_scores and the contact_clusters source.
    analytics = target / "models" / "analytics"
    shutil.copytree(PROJECT_DIR / "models" / "analytics" / "rfm", analytics / "rfm", ignore=ignore)
    (analytics / "clusters").mkdir()
    sources = "_clusters__sources.yml"
    shutil.copy(PROJECT_DIR / "models" / "analytics" / "clusters" / sources, analytics / "clusters")
    (target / "segment_defs").mkdir()
    return target


CHECKOUT_PARTS = ("models", "macros", "seeds", "segment_defs", "expectations", "docs")


def checkout_copy(target: Path, parts: tuple[str, ...] = CHECKOUT_PARTS) -> Path:
    """The checkout's dbt project (`parts` of it), nothing generated and no local state:
    the project of every run that names none of its own, so the suite never renders into
    the checkout and two workers (pytest-xdist) never render into one project. There is
    always a segment_defs folder, empty when it is not one of the parts."""
    ignore = shutil.ignore_patterns("generated", "__pycache__", ".local", "target", "logs")
    target.mkdir(parents=True, exist_ok=True)
    for name in ("dbt_project.yml", "profiles.example.yml"):
        shutil.copy(PROJECT_DIR / name, target / name)
    for name in parts:
        shutil.copytree(PROJECT_DIR / name, target / name, ignore=ignore, dirs_exist_ok=True)
    (target / "segment_defs").mkdir(exist_ok=True)
    return target


@contextmanager
def project_dir(path: Path) -> Iterator[Path]:
    old = os.environ.get("SEGMENTS_PROJECT_DIR")
    os.environ["SEGMENTS_PROJECT_DIR"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("SEGMENTS_PROJECT_DIR", None)
        else:
            os.environ["SEGMENTS_PROJECT_DIR"] = old


def write_def(project: Path, account: str, key: str, body: str) -> Path:
    path = project / "segment_defs" / account / f"{key}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def segment_yaml(account: str, key: str, where: str, **extra: str) -> str:
    """A minimal valid definition around a `where:` block (YAML text, indented 2)."""
    lines = [
        f"key: {key}",
        f"name: {key}",
        f'account: "{account}"',
        "owner: tests",
        "visibility: team",
        *(f"{k}: {v}" for k, v in extra.items()),
        "where:",
        textwrap.indent(textwrap.dedent(where).strip(), "  "),
    ]
    return "\n".join(lines) + "\n"


def insert_accounts(db: psycopg.Connection, accounts: dict[str, str]) -> None:
    for account_id, tz in accounts.items():
        db.execute(
            "insert into crm_raw.accounts (account_id, name, package, timezone) "
            "values (%s, %s, 'plus', %s)",
            (account_id, account_id.title(), tz),
        )


def insert_contacts(db: psycopg.Connection, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        unknown = set(row) - set(CONTACT_COLUMNS)
        assert not unknown, unknown
        values = dict(row)
        if "custom_fields" in values and values["custom_fields"] is not None:
            values["custom_fields"] = json.dumps(values["custom_fields"])
        columns = list(values)
        placeholders = ", ".join("%s::jsonb" if c == "custom_fields" else "%s" for c in columns)
        db.execute(
            f"insert into crm_raw.contacts ({', '.join(columns)}) values ({placeholders})",
            [values[c] for c in columns],
        )


def insert_companies(db: psycopg.Connection, companies: list[dict[str, Any]]) -> None:
    for row in companies:
        columns = list(row)
        db.execute(
            f"insert into crm_raw.companies ({', '.join(columns)}) "
            f"values ({', '.join(['%s'] * len(columns))})",
            [row[c] for c in columns],
        )


def link_company(
    db: psycopg.Connection, account: str, contact: str, company: str, primary: bool
) -> None:
    db.execute(
        "insert into crm_raw.contact_companies (account_id, contact_id, company_id, is_primary) "
        "values (%s, %s, %s, %s)",
        (account, contact, company, primary),
    )


def build(as_of: str) -> Any:
    from segmentation.steps import definitions as api

    api.compile_definitions()
    return run_dbt(["build", "--select", *BUILD_SELECT], {"as_of": as_of})


def members(db: psycopg.Connection) -> dict[tuple[str, str], set[str]]:
    rows = db.execute(
        "select account_id, segment_key, contact_id from segments_audit.segment_memberships"
    ).fetchall()
    out: dict[tuple[str, str], set[str]] = {}
    for account, key, contact in rows:
        out.setdefault((account, key), set()).add(contact)
    return out


def compile_predicates(trees: list[dict[str, Any]]) -> list[str]:
    """SQL boolean expressions for normalised condition trees, in ONE dbt invocation.

    Uses the same `segment_node_sql` macro as the models. The expressions read aliases c
    (contact), co (primary company) and a (as_of_date, timezone).
    """
    separator = "\n-- <<predicate>> --\n"
    inline = (
        "{% for tree in fromjson(" + jinja_string(trees) + ") %}"
        "{{ segment_node_sql(tree) }}{% if not loop.last %}" + separator + "{% endif %}"
        "{% endfor %}"
    )
    result = run_dbt(["compile", "--inline", inline])
    compiled = result.result.results[0].node.compiled_code
    parts = compiled.split(separator.strip())
    assert len(parts) == len(trees), compiled[:500]
    return [p.strip() for p in parts]


def evaluate_predicates(
    db: psycopg.Connection,
    predicates: list[str],
    as_of: str,
    timezone: str = "Asia/Jakarta",
    contacts_sql: str = "select * from segments_staging.stg_crm__contacts",
) -> list[set[str]]:
    """Contact ids each predicate selects, all in one query."""
    if not predicates:
        return []
    columns = ", ".join(f"({p}) as p{i}" for i, p in enumerate(predicates))
    rows = db.execute(
        f"select c.contact_id, {columns} from ({contacts_sql}) as c "
        "cross join (select %s::date as as_of_date, %s::text as timezone) as a",
        (as_of, timezone),
    ).fetchall()
    out: list[set[str]] = [set() for _ in predicates]
    for row in rows:
        for i, flag in enumerate(row[1:]):
            assert flag is not None, f"predicate {i} returned NULL for {row[0]}"
            if flag:
                out[i].add(row[0])
    return out
