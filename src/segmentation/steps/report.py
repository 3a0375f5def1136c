"""The report step: a static HTML site of what is published and how it moves
(`segments report`, the DAG's `report` task).

It reads serving (segments, members, group assignments), history (sizes, entered and
exited per date), the compiled plan (definitions, priority groups) and the analytics marts
of schema segments_marts (KPIs, stability, migration, RFM, clusters), then renders with
segmentation.report. A marts relation that does not exist yet, or has no rows for the
report date, shows as "not computed yet for this date" instead of failing, so the report
works before those marts are built. The report date is the latest recorded history date.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from segmentation import settings
from segmentation.errors import ReportError
from segmentation.language.model import TEMPLATE_ACCOUNT, TEMPLATE_DIR
from segmentation.language.operators import OPERATORS
from segmentation.report import site as report_site
from segmentation.steps import audit, definitions
from segmentation.warehouse import database

log = logging.getLogger(__name__)

SQL_FILE = "report.sql"
# How far back the size trend and the entered/exited bars go.
HISTORY_DAYS = 90
_TEMPLATE_SCOPES = (TEMPLATE_ACCOUNT, TEMPLATE_DIR)


def default_out_dir() -> Path:
    return settings.local_dir() / "report"


def build_report(out_dir: Path | None = None) -> Path:
    """Write the report site into `out_dir` (default `.local/report/`, replaced whole) and
    return the path of its index.html."""
    out = Path(out_dir) if out_dir is not None else default_out_dir()
    data = collect()
    try:
        index = report_site.render_site(data, out.resolve())
    except OSError as exc:
        raise ReportError(
            f"The report could not be written to {out}: {exc}. Choose another folder with "
            "`segments report --out DIR`."
        ) from exc
    log.info(
        "report for %s: %d account(s), %d segment(s) in %s",
        data.as_of,
        len(data.accounts),
        sum(len(a.segments) for a in data.accounts),
        index.parent,
    )
    return index


def collect() -> report_site.Site:
    """What the report shows, read in one snapshot of the warehouse."""
    try:
        with database.connect() as conn:
            # One snapshot for every query, so a publish meanwhile can't mix two days.
            conn.execute("set transaction isolation level repeatable read, read only")
            return _gather(conn)
    except psycopg.Error as exc:
        raise ReportError(
            f"The report could not read the warehouse: {exc}".rstrip()
            + "\nServing and history are unaffected. If a segments_marts relation lacks a "
            "column named in src/segmentation/warehouse/sql/report.sql, rebuild the marts "
            "(`segments run`), then run `segments report` again."
        ) from exc


def _rows(
    conn: psycopg.Connection, query: str, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cursor = None
        for statement in database.statements(SQL_FILE, query):
            cursor = cur.execute(statement, params)
        assert cursor is not None
        return list(cursor.fetchall())


def _mart_rows(
    conn: psycopg.Connection, relation: str, query: str, as_of: dt.date | None
) -> list[dict[str, Any]] | None:
    """The rows of a marts query for the report date; None when its relation is missing or
    has nothing for that date (the page says "not computed yet")."""
    if as_of is None:
        return None
    present = _rows(conn, "relation_exists", {"relation": f"{settings.SCHEMA_MARTS}.{relation}"})
    if not present[0]["present"]:
        log.info("report: %s.%s does not exist yet", settings.SCHEMA_MARTS, relation)
        return None
    rows = _rows(conn, query, {"as_of": as_of})
    return rows or None


def _by_account(rows: Iterable[dict[str, Any]] | None) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows or []:
        out.setdefault(row["account_id"], []).append(row)
    return out


def _gather(conn: psycopg.Connection) -> report_site.Site:
    dated = _rows(conn, "report_date")
    as_of = dated[0]["as_of"] if dated else None
    run_id = dated[0]["run_id"] if dated else None
    plan = definitions.read_plan() or {}

    segments = _rows(conn, "segments")
    sizes = _by_segment(
        _rows(conn, "sizes", {"as_of": as_of, "days": HISTORY_DAYS}) if as_of else []
    )
    overlap = _by_segment(_rows(conn, "overlap"))
    assignments = _by_account(_rows(conn, "group_assignments"))

    kpis = _keyed(_mart_rows(conn, "segment_kpis", "segment_kpis", as_of))
    account_kpis = _by_account(_mart_rows(conn, "account_kpis", "account_kpis", as_of))
    stability = _keyed(_mart_rows(conn, "segment_stability", "segment_stability", as_of))
    migration = _mart_rows(conn, "segment_migration", "segment_migration", as_of)
    time_to_move = _mart_rows(conn, "segment_time_to_move", "segment_time_to_move", as_of)
    rfm_grid = _by_account(_mart_rows(conn, "rfm_scores", "rfm_grid", as_of))
    rfm_segments = _by_account(_mart_rows(conn, "rfm_scores", "rfm_segments", as_of))
    profiles = _by_account(_mart_rows(conn, "cluster_profiles", "cluster_profiles", as_of))
    cluster_runs = _by_account(_mart_rows(conn, "cluster_runs", "cluster_runs", as_of))

    plan_segments = {(s["account"], s["key"]): s for s in plan.get("segments", [])}
    accounts: dict[str, report_site.Account] = {}
    for row in segments:
        account_id, key = row["account_id"], row["segment_key"]
        account = accounts.setdefault(account_id, report_site.Account(account_id))
        names = {s["segment_key"]: s["name"] for s in segments if s["account_id"] == account_id}
        members = max(int(row["member_count"] or 0), 1)
        account.segments.append(
            report_site.Segment(
                account_id=account_id,
                segment_key=key,
                name=row["name"],
                description=row["description"],
                owner=row["owner"],
                member_count=int(row["member_count"] or 0),
                as_of=row["as_of"],
                stale=bool(row["stale"]),
                stale_reason=row["stale_reason"],
                tags=list(row["tags"] or []),
                visibility=row["visibility"],
                definition_hash=row["definition_hash"],
                sizes=sizes.get((account_id, key), []),
                definition=_definition(plan_segments, account_id, key),
                overlap=sorted(
                    (
                        {
                            "other_key": o["other_key"],
                            "other_name": names.get(o["other_key"], o["other_key"]),
                            "shared": int(o["shared"]),
                            "share": int(o["shared"]) / members,
                        }
                        for o in overlap.get((account_id, key), [])
                    ),
                    key=lambda o: (-o["shared"], o["other_key"]),
                ),
                kpis=kpis.get((account_id, key)) if kpis is not None else None,
                stability=stability.get((account_id, key)) if stability is not None else None,
            )
        )
    for account_id, account in accounts.items():
        account.account_kpis = (account_kpis.get(account_id) or [None])[0]
        account.rfm_grid = rfm_grid.get(account_id)
        account.rfm_segments = rfm_segments.get(account_id)
        account.cluster_profiles = profiles.get(account_id)
        account.cluster_run = (cluster_runs.get(account_id) or [None])[0]
        account.groups = _groups(
            account_id,
            plan.get("groups", []),
            assignments.get(account_id, []),
            migration,
            time_to_move,
        )
    return report_site.Site(
        as_of=as_of,
        generated_at=dt.datetime.now(dt.UTC),
        accounts=[accounts[a] for a in sorted(accounts)],
        run_id=run_id,
        data_docs=_data_docs_url(),
        op_words={name: op.description for name, op in OPERATORS.items()},
        feature_specs=plan.get("feature_specs", {}),
    )


def _by_segment(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault((row["account_id"], row["segment_key"]), []).append(row)
    return out


def _keyed(rows: list[dict[str, Any]] | None) -> dict[tuple[str, str], dict[str, Any]] | None:
    """Rows by (account, segment); None stays None (not computed for this date)."""
    if rows is None:
        return None
    return {(r["account_id"], r["segment_key"]): r for r in rows}


def _definition(
    plan_segments: dict[tuple[str, str], dict[str, Any]], account_id: str, key: str
) -> dict[str, Any] | None:
    """The account's own definition, else the template's (as int_segment_scopes decides)."""
    own = plan_segments.get((account_id, key))
    if own is not None:
        return own
    for scope in _TEMPLATE_SCOPES:
        if (scope, key) in plan_segments:
            return plan_segments[(scope, key)]
    return None


def _groups(
    account_id: str,
    plan_groups: list[dict[str, Any]],
    assignments: list[dict[str, Any]],
    migration: list[dict[str, Any]] | None,
    time_to_move: list[dict[str, Any]] | None,
) -> list[report_site.Group]:
    """The account's priority groups: its own and template ones from the plan, plus any
    group serving or the migration mart knows of that the plan no longer has."""
    declared = {g["group"]: g for g in plan_groups if g["account"] in _TEMPLATE_SCOPES}
    declared |= {g["group"]: g for g in plan_groups if g["account"] == account_id}
    keys = set(declared)
    keys |= {a["group_key"] for a in assignments}
    keys |= {m["group_key"] for m in migration or [] if m["account_id"] == account_id}
    groups = []
    for key in sorted(keys):
        spec = declared.get(key, {})
        mine = [
            m for m in migration or [] if m["account_id"] == account_id and m["group_key"] == key
        ]
        moves = [
            t for t in time_to_move or [] if t["account_id"] == account_id and t["group_key"] == key
        ]
        groups.append(
            report_site.Group(
                account_id=account_id,
                group_key=key,
                order=list(spec.get("order", [])),
                fallback=spec.get("fallback"),
                assignments=sorted(
                    (
                        {"segment_key": a["segment_key"], "size": int(a["contacts"])}
                        for a in assignments
                        if a["group_key"] == key
                    ),
                    key=lambda a: -a["size"],
                ),
                migration=mine or None,
                time_to_move=moves or None,
            )
        )
    return groups


def _data_docs_url() -> str | None:
    # The audit's Data Docs site (GX writes it under the GX project); it spans every run.
    index = audit.data_docs_index()
    return index.resolve().as_uri() if index else None
