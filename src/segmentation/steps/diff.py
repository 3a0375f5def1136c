"""`segments diff`: what the working definitions would change for Broadcast, without
publishing anything.

For every (account, segment) whose enabled definition differs from the one serving shows (by
definition_hash), is new, or was removed (deleted or disabled), it gives the definition change
(the normalised definition recorded at publish, segments_history.published_definitions,
against the plan's) and the contacts who would enter and exit.

The candidates are built by dbt in segments_audit, like a run's build but only the changed
segment models and what they need (their feature models, referenced segments, the as-of and
scope models; staging is read as the last run left it), for the as-of date serving shows.
The diff holds the run lease meanwhile, so it never interleaves with a run: a run between
its audit and its publish keeps the lease, and the diff waits for nothing and says so.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql

from segmentation import settings
from segmentation.errors import DatabaseError
from segmentation.steps import definitions, pipeline
from segmentation.warehouse import control, database
from segmentation.warehouse.dbt_runner import run_dbt

log = logging.getLogger(__name__)

STAGED_ACCOUNTS = f"{settings.SCHEMA_STAGING}.stg_crm__accounts"
# dbt builds the changed models' ancestors except these: staging stays as the last run built
# it, and serving is only ever written by publish.
NOT_REBUILT = ("path:models/staging", pipeline.BUILD_EXCLUDE)
# dbt would log to stdout, which holds the diff (--format json: one JSON document).
QUIET = ("--log-level", "none")
# The candidate of a removed segment: nobody.
_NOBODY = sql.SQL(
    "(select null::text as account_id, null::text as segment_key, null::text as contact_id "
    "where false) as nobody"
)


@dataclass
class SegmentDiff:
    account: str
    key: str
    status: str  # 'changed', 'new' or 'removed'
    published_hash: str | None
    candidate_hash: str | None
    published: int  # members serving shows now
    candidate: int  # members the working definition selects (removed: 0)
    entered: int
    exited: int
    entered_sample: list[str] = field(default_factory=list)
    exited_sample: list[str] = field(default_factory=list)
    definition_diff: str = ""  # a unified diff of the normalised definitions
    published_recorded: bool = True  # False: published before definitions were recorded
    source_file: str | None = None

    @property
    def change_pct(self) -> float:
        """(entered + exited) / published size, in percent; a new or removed segment, or one
        published empty that now has members, changes by 100%."""
        if self.status in ("new", "removed"):
            return 100.0
        if self.published == 0:
            return 100.0 if self.entered else 0.0
        return round(100.0 * (self.entered + self.exited) / self.published, 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "segment": self.key,
            "status": self.status,
            "published_hash": self.published_hash,
            "candidate_hash": self.candidate_hash,
            "published": self.published,
            "candidate": self.candidate,
            "entered": self.entered,
            "exited": self.exited,
            "change_pct": self.change_pct,
            "entered_sample": self.entered_sample,
            "exited_sample": self.exited_sample,
            "published_definition_recorded": self.published_recorded,
            "source_file": self.source_file,
            "definition_diff": self.definition_diff,
        }


@dataclass
class DiffResult:
    as_of: dt.date
    segments: list[SegmentDiff]

    def by_account(self) -> dict[str, list[SegmentDiff]]:
        accounts: dict[str, list[SegmentDiff]] = {}
        for seg in self.segments:
            accounts.setdefault(seg.account, []).append(seg)
        return accounts

    def over(self, pct: float) -> list[SegmentDiff]:
        """The segments that would change by more than `pct` percent."""
        return [s for s in self.segments if s.change_pct > pct]

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "changed": len(self.segments),
            "accounts": {
                account: [s.to_json() for s in segs] for account, segs in self.by_account().items()
            },
        }


def diff(
    paths: Iterable[Path | str] | None = None,
    as_of: dt.date | None = None,
    limit: int = 10,
) -> DiffResult:
    """The working definitions against serving. `paths`: only the definitions in these files
    or folders (a removed one by the file it was published from). `as_of`: default the date
    serving shows (its latest publish), else today. `limit`: contacts listed per direction.

    Raises DefinitionError for invalid definitions, DatabaseError without a staged layer,
    RunLockedError while a run holds the lease, DbtError when a candidate fails to build."""
    with database.connect() as conn:
        if not _run(conn, "staged_accounts", {"relation": STAGED_ACCOUNTS}).fetchone()[0]:
            raise DatabaseError(
                "Nothing is staged yet, so there is nothing to diff against: run the pipeline "
                "once (`segments run`), then diff again."
            )
        published_as_of = _run(conn, "latest_as_of").fetchone()[0]
    as_of = as_of or published_as_of or pipeline.today()
    vars_ = pipeline.dbt_vars(as_of)
    run_id = f"diff__{dt.datetime.now(dt.UTC).isoformat()}"
    with control.hold(as_of, run_id, keep=False):
        definitions.compile_definitions()
        plan = definitions.current_plan()
        run_dbt(["build", "--select", "int_segment_scopes", *QUIET], vars_)
        with database.connect() as conn:
            rows = _run(conn, "changed_scopes").fetchall()
        rows = [r for r in rows if _selected(r, paths)]
        known = {s["model"] for s in plan["segments"] if s["enabled"]}
        models = sorted({r[2] for r in rows if r[2] is not None})
        unknown = [m for m in models if m not in known]
        if unknown:  # int_segment_scopes is rendered from this plan: cannot happen
            raise DatabaseError(f"int_segment_scopes names models the plan lacks: {unknown}")
        if models:
            select = [f"+{m}" for m in models]
            run_dbt(["build", "--select", *select, "--exclude", *NOT_REBUILT, *QUIET], vars_)
        logic = {s["definition_hash"]: s.get("logic") for s in plan["segments"]}
        with database.connect() as conn:
            database.run_sql(conn, "planner.sql", "no_nested_loops")
            found = [_segment_diff(conn, row, logic, limit) for row in rows]
    log.info("diff as of %s: %d segment(s) differ from serving", as_of, len(found))
    return DiffResult(as_of, found)


def _run(
    conn: psycopg.Connection,
    query: str,
    params: Mapping[str, Any] | None = None,
    **relations: sql.Composable,
) -> psycopg.Cursor:
    return database.run_sql(conn, "diff.sql", query, params, **relations)


def _selected(row: tuple[Any, ...], paths: Iterable[Path | str] | None) -> bool:
    if paths is None:
        return True
    wanted = [Path(p).resolve() for p in paths]
    project = settings.project_dir()
    for source in (row[5], row[6]):
        if source is None:
            continue
        path = Path(source) if Path(source).is_absolute() else project / source
        path = path.resolve()
        if any(path == w or path.is_relative_to(w) for w in wanted):
            return True
    return False


def _segment_diff(
    conn: psycopg.Connection,
    row: tuple[Any, ...],
    logic: Mapping[str, Any],
    limit: int,
) -> SegmentDiff:
    account, key, model, cand_hash, pub_hash, source, pub_source, pub_definition = row
    status = "removed" if cand_hash is None else "new" if pub_hash is None else "changed"
    candidate = _NOBODY if model is None else sql.Identifier(settings.SCHEMA_AUDIT, model)
    params = {"account_id": account, "segment_key": key, "limit": limit}
    published, members, entered, exited = _run(
        conn, "member_changes", params, candidate=candidate
    ).fetchone()
    samples: dict[str, list[str]] = {"entered": [], "exited": []}
    for change, contact in _run(conn, "member_samples", params, candidate=candidate):
        samples[change].append(contact)
    before = json.loads(pub_definition) if pub_definition else None
    after = logic.get(cand_hash) if cand_hash else None
    return SegmentDiff(
        account=account,
        key=key,
        status=status,
        published_hash=pub_hash,
        candidate_hash=cand_hash,
        published=published,
        candidate=members,
        entered=entered,
        exited=exited,
        entered_sample=samples["entered"],
        exited_sample=samples["exited"],
        definition_diff=definition_diff(f"{account}/{key}", before, after, pub_hash, cand_hash),
        published_recorded=pub_hash is None or before is not None,
        source_file=source or pub_source,
    )


def definition_diff(
    name: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    before_hash: str | None = None,
    after_hash: str | None = None,
) -> str:
    """A unified diff of two normalised definitions, shown as YAML. A published definition
    that was not recorded (published before publish recorded them) shows as a note."""
    if before is None and before_hash is not None:
        head = (
            f"# the published definition {before_hash[:12]} was not recorded (published before "
            "publish recorded definitions); the working definition is:\n"
        )
        return head + definition_text(after)
    old = definition_text(before).splitlines(keepends=True)
    new = definition_text(after).splitlines(keepends=True)
    lines = difflib.unified_diff(
        old,
        new,
        fromfile=f"published/{name}" + (f" ({before_hash[:12]})" if before_hash else ""),
        tofile=f"working/{name}" + (f" ({after_hash[:12]})" if after_hash else ""),
    )
    return "".join(lines)


def definition_text(logic: Mapping[str, Any] | None) -> str:
    """A normalised definition (model.Segment.logic_json) as YAML, one condition a line."""
    if logic is None:
        return ""
    return yaml.safe_dump(_readable(logic), sort_keys=False, default_flow_style=None, width=100)


# The catalogue's description of a field in a condition node: the same for every use of the
# field, so it only makes the diff longer.
_FIELD_DETAIL = ("entity", "column", "type", "json_key")


# Keys first in this order, the rest alphabetically: both sides read alike (jsonb, where the
# published side was recorded, keeps no key order).
_KEY_ORDER = {k: i for i, k in enumerate(("key", "account", "kind", "field", "op", "value"))}


def _readable(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("kind") == "condition":
            value = {k: v for k, v in value.items() if k not in _FIELD_DETAIL}
        keys = sorted(value, key=lambda k: (_KEY_ORDER.get(k, len(_KEY_ORDER)), k))
        return {k: _readable(value[k]) for k in keys}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return value
