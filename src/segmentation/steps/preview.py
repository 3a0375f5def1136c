"""`segments preview` and `segments why`: one segment evaluated against the staged data,
without building or publishing anything.

The segment is compiled from the current definitions (the plan), and dbt renders the
`segment_preview_sql` macro for it (`dbt compile --inline`): the segment model's own
macros (segment_inputs, segment_candidates, segment_node_sql) over the staged tables, with
the run's as-of date and only the features this segment reads, computed for the one
account. The rendered query runs in one read-only transaction.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from segmentation import settings
from segmentation.compiler import features
from segmentation.compiler import preview as compiler
from segmentation.errors import DbtError, NotStagedError, PreviewError
from segmentation.language.model import TEMPLATE_DIR
from segmentation.language.suggest import did_you_mean
from segmentation.steps import definitions
from segmentation.warehouse import database
from segmentation.warehouse.dbt_runner import run_dbt, target_dir

log = logging.getLogger(__name__)

SQL_FILE = "preview.sql"
RUN_FIRST = "run `segments run` (or `dbt build`) first"
PREVIEW_TARGET = "preview"
SAMPLE_KEYS = ("contact_id", "full_name")


@dataclass
class FunnelStep:
    label: str
    requirement: str | None
    count: int


@dataclass
class PreviewResult:
    segment: str
    model: str
    account: str
    as_of: str | None
    candidates: int  # the account's contacts that existed on the as-of date
    members: int
    step_mode: str  # cumulative: AND of the first n conditions; branches: each `any` branch
    funnel: list[FunnelStep]
    columns: list[str]  # the sample's columns after contact_id and full_name
    sample: list[dict[str, Any]]
    seconds: float = 0.0
    # activity objects whose features were read from the last build / computed here
    built_features: list[str] = field(default_factory=list)
    computed_features: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WhyNode:
    id: int
    depth: int
    kind: str
    label: str
    requirement: str | None
    verdict: bool
    value: str | None


@dataclass
class WhyResult:
    segment: str
    model: str
    account: str
    contact_id: str
    full_name: str | None
    as_of: str | None
    member: bool
    nodes: list[WhyNode]
    failing: list[str] = field(default_factory=list)  # the top-level conditions it fails

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Target:
    segment: str
    account: str
    model: str
    tree: compiler.PreviewTree
    seg: Any
    payload: dict[str, Any]


def preview(segment: str, as_of: str | None = None, limit: int = 20) -> PreviewResult:
    """Member count, a sample and the funnel of `<account>/<key>`."""
    started = time.monotonic()
    target = _target(segment)
    spec = compiler.preview_spec(
        target.seg,
        target.payload,
        target.account,
        target.tree,
        "preview",
        limit,
        as_of=as_of,
        built_features=_built_features(target, as_of),
    )
    row = _evaluate(target, spec)
    if row is None:  # pragma: no cover - the query always returns one row
        raise PreviewError(f"{segment}: the preview query returned nothing")
    nodes = target.tree.nodes
    funnel = [
        FunnelStep(label, nodes[step[-1]].requirement, int(count))
        for step, label, count in zip(
            target.tree.steps, target.tree.step_labels(), row["funnel"], strict=True
        )
    ]
    # The fields the rule reads, each once (a field read twice holds the same value).
    value_nodes: dict[str, compiler.PreviewNode] = {}
    for node in nodes:
        if node.value:
            value_nodes.setdefault(node.label, node)
    columns = [label for label in value_nodes if label not in SAMPLE_KEYS]
    sample = []
    for member in row["sample"]:
        entry = {key: member[key] for key in SAMPLE_KEYS}
        for name in columns:
            entry[name] = member.get(f"value_{value_nodes[name].id}")
        sample.append(entry)
    return PreviewResult(
        segment=segment,
        model=target.model,
        account=target.account,
        as_of=as_of,
        candidates=int(row["candidates"]),
        members=int(row["members"]),
        step_mode=target.tree.step_mode,
        funnel=funnel,
        columns=columns,
        sample=sample,
        seconds=round(time.monotonic() - started, 3),
        built_features=list(spec["built_features"]),
        computed_features=sorted(spec["features"]),
    )


def why(segment: str, contact_id: str, as_of: str | None = None) -> WhyResult:
    """Each condition of `<account>/<key>` for one contact, with the value it read."""
    target = _target(segment)
    spec = compiler.preview_spec(
        target.seg,
        target.payload,
        target.account,
        target.tree,
        "why",
        contact_id=contact_id,
        as_of=as_of,
        built_features=_built_features(target, as_of),
    )
    row = _evaluate(target, spec)
    if row is None:
        raise PreviewError(_missing_contact(target, contact_id, as_of))
    nodes = [
        WhyNode(
            n.id,
            n.depth,
            n.kind,
            n.label,
            n.requirement,
            bool(row[f"node_{n.id}"]),
            row.get(f"value_{n.id}") if n.value else None,
        )
        for n in target.tree.nodes
    ]
    member = nodes[0].verdict
    top = [step[-1] for step in target.tree.steps]
    failing = [] if member else [nodes[i].label for i in top if not nodes[i].verdict]
    return WhyResult(
        segment=segment,
        model=target.model,
        account=target.account,
        contact_id=contact_id,
        full_name=row.get("full_name"),
        as_of=str(row.get("as_of_date")) if row.get("as_of_date") else as_of,
        member=member,
        nodes=nodes,
        failing=failing,
    )


def _target(segment: str) -> _Target:
    account, _, key = segment.partition("/")
    if account in (TEMPLATE_DIR, "*"):
        raise PreviewError(
            f"{segment}: a template is previewed for one account: name it as <account>/{key}"
        )
    if key:  # without one, resolve_model says how to name a segment
        _check_account(segment, account)
    rendered = definitions.compile_definitions()
    model = definitions.resolve_model(segment, rendered)
    seg = rendered.models[model]
    if seg.is_template:
        _check_gating(segment, account, definitions.read_plan() or {})
    return _Target(
        segment, account, model, compiler.preview_tree(seg), seg, rendered.payloads[model]
    )


def _check_account(segment: str, account: str) -> None:
    with database.connect() as conn:
        try:
            rows = database.run_sql(conn, SQL_FILE, "staged_accounts").fetchall()
        except psycopg.errors.UndefinedTable as exc:
            raise NotStagedError(
                f"{segment}: nothing is staged yet ({settings.SCHEMA_STAGING}.stg_crm__accounts "
                f"does not exist); {RUN_FIRST}"
            ) from exc
    accounts = [r[0] for r in rows]
    if account not in accounts:
        raise PreviewError(
            f"{segment}: no staged account '{account}'{did_you_mean(account, accounts)}"
        )


def _built_features(target: _Target, as_of: str | None) -> list[str]:
    """The objects whose feature model, as the last build left it, can stand in for
    computing the features here: built for the same as-of date (the account's today when
    none is given, as a run would take it) and holding every feature this segment reads.
    Reading it is much cheaper than a pass over the activity table."""
    needed = compiler.segment_features(target.seg)
    if not needed:
        return []
    params = {"account_id": target.account, "schema": settings.SCHEMA_AUDIT}
    with database.connect() as conn:
        try:
            built = database.run_sql(conn, SQL_FILE, "built_as_of", params).fetchone()
        except psycopg.errors.UndefinedTable:
            return []  # never built: compute them
        columns: dict[str, set[str]] = {}
        for table, column in database.run_sql(conn, SQL_FILE, "built_feature_columns", params):
            columns.setdefault(table, set()).add(column)
    if built is None:
        return []
    built_as_of, timezone = built
    wanted = dt.date.fromisoformat(as_of) if as_of else _today(timezone)
    if built_as_of != wanted:
        return []
    found = []
    for obj, meta in needed.items():
        ids = {f["id"] for f in meta["features"]}
        if ids <= columns.get(features.feature_model(obj), set()):
            found.append(obj)
    log.info("%s: reading the built features of %s", target.segment, ", ".join(found) or "none")
    return found


def _today(timezone: str) -> dt.date:
    """The account's today, as a run without --as-of takes it (segment_as_of_date_sql)."""
    try:
        return dt.datetime.now(ZoneInfo(timezone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        return dt.datetime.now(dt.UTC).date()


def _check_gating(segment: str, account: str, plan: dict[str, Any]) -> None:
    """A template whose package gating leaves this account out has no members there: say so
    rather than show an empty preview."""
    package = (plan.get("accounts") or {}).get(account)
    key = segment.partition("/")[2]
    for entry in plan.get("segments", []):
        packages = entry.get("packages")
        template = entry["account"] == "*" and entry["key"] == key
        if template and packages and package and package not in packages:
            raise PreviewError(
                f"{segment}: the template '{key}' is gated for account '{account}': its "
                f"package '{package}' lacks what the segment needs (packages: "
                f"{', '.join(packages)})"
            )


def _evaluate(target: _Target, spec: dict[str, Any]) -> dict[str, Any] | None:
    started = time.monotonic()
    query = _render(target, spec)
    rendered = time.monotonic()
    with database.connect() as conn:
        database.run_sql(conn, SQL_FILE, "read_only")
        try:
            # The compiled query binds no parameters: every value is a literal the segment
            # macros quoted, so it is sent as it is.
            found = conn.execute(psycopg.sql.SQL(query)).fetchone()  # type: ignore[arg-type]
        except psycopg.errors.UndefinedTable as exc:
            raise NotStagedError(
                f"{target.segment}: {exc.diag.message_primary}: the staged data or a segment "
                f"it refers to is not built; {RUN_FIRST}"
            ) from exc
        except psycopg.errors.UndefinedColumn as exc:
            raise NotStagedError(
                f"{target.segment}: {exc.diag.message_primary}: the staged tables are older "
                f"than this code; {RUN_FIRST}"
            ) from exc
        except psycopg.Error as exc:
            raise PreviewError(
                f"{target.segment}: the preview query failed: {exc.diag.message_primary or exc}"
                " (rerun with -vv to log its SQL)"
            ) from exc
    log.info(
        "%s: rendered by dbt in %.2f s, evaluated in %.2f s",
        target.segment,
        rendered - started,
        time.monotonic() - rendered,
    )
    if found is None:
        return None
    result = found[0]
    return json.loads(result) if isinstance(result, str) else result


def _render(target: _Target, spec: dict[str, Any]) -> str:
    inline = compiler.preview_inline(spec)
    args = [
        "compile",
        "--inline",
        inline,
        # dbt would print the compiled SQL (and its log) to stdout.
        "--log-level",
        "none",
        # Its own target directory, and no --vars (the as-of date is in the spec): a run's
        # different vars would otherwise force a full parse of the project every time.
        "--target-path",
        str(target_dir() / PREVIEW_TARGET),
        "--no-populate-cache",
        "--no-introspect",
        "--no-write-json",
        "--no-send-anonymous-usage-stats",
    ]
    try:
        res = run_dbt(args)
    except DbtError as exc:
        raise PreviewError(f"{target.segment}: dbt could not render the preview: {exc}") from exc
    for node_result in res.result.results:
        code = getattr(node_result.node, "compiled_code", None)
        if code:
            log.debug("preview SQL for %s:\n%s", target.segment, code)
            return str(code)
    raise PreviewError(f"{target.segment}: dbt did not render the preview")


def _missing_contact(target: _Target, contact_id: str, as_of: str | None) -> str:
    params = {"account_id": target.account, "contact_id": contact_id}
    with database.connect() as conn:
        staged = database.run_sql(conn, SQL_FILE, "staged_contact", params).fetchone()
        if staged is not None:
            created = staged[1]
            when = f"the as-of date {as_of}" if as_of else "the as-of date"
            return (
                f"{target.segment}: contact '{contact_id}' was created on "
                f"{created:%Y-%m-%d}, after {when}: it cannot be a member yet"
            )
        nearby = [r[0] for r in database.run_sql(conn, SQL_FILE, "nearby_contacts", params)]
    close = difflib.get_close_matches(contact_id, nearby, n=3, cutoff=0.5)
    exact_case = [c for c in nearby if c.lower() == contact_id.lower()]
    hints = list(dict.fromkeys(exact_case + close))[:3]
    hint = f" (did you mean {', '.join(repr(h) for h in hints)}?)" if hints else ""
    return f"{target.segment}: no contact '{contact_id}' in account '{target.account}'{hint}"


def as_of_text(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None
