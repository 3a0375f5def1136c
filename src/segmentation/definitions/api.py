"""Entry points used by the pipeline and the CLI: validate, render, explain."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from segmentation.definitions import activity_compile, gating
from segmentation.definitions.features import MODEL_PREFIX
from segmentation.definitions.model import Segment
from segmentation.definitions.project import (
    DefinitionSet,
    defs_dir,
    display_path,
    load_definitions,
)
from segmentation.definitions.regex import RegexCheck, offline_regex_check, postgres_regex_check
from segmentation.definitions.render import RenderResult, clear_generated, render
from segmentation.errors import DatabaseError, DefinitionError

log = logging.getLogger(__name__)


def known_accounts() -> set[str] | None:
    """Account ids in crm_raw.accounts, or None when the database can't be reached."""
    import psycopg

    from segmentation import database

    try:
        with database.connect() as conn:
            rows = conn.execute("select account_id from crm_raw.accounts").fetchall()
    except (DatabaseError, psycopg.Error):
        return None
    return {str(r[0]).strip() for r in rows if r[0] is not None}


@contextmanager
def _regex_check(offline: bool) -> Iterator[RegexCheck]:
    """PostgreSQL's own regex engine when the database is reachable, else the offline check."""
    import psycopg

    from segmentation import database

    if offline:
        yield offline_regex_check
        return
    try:
        conn = database.connect(autocommit=True)
    except (DatabaseError, psycopg.Error):
        yield offline_regex_check
        return
    with conn:
        yield postgres_regex_check(conn)


def validate(paths: Iterable[Path | str] | None = None, offline: bool = False) -> DefinitionSet:
    """Validate definitions; raise DefinitionError listing every error."""
    accounts = None if offline else known_accounts()
    with _regex_check(offline or accounts is None) as regex_check:
        result = load_definitions(paths, accounts, regex_check)
    if not result.issues:
        # Cross-definition checks: in_segment references, package gating, priority groups.
        packages = None if offline else gating.read_packages()
        roots = [defs_dir()] if paths is None else [Path(p) for p in paths if Path(p).is_dir()]
        # Validating some files: the rest of segment_defs/ is context that in_segment may
        # refer to; its own problems are not reported here.
        context = _context(result, accounts) if paths is not None else []
        plan = activity_compile.plan(result.segments + context, roots, packages, display_path)
        context_files = {s.source_file for s in context}
        for issue in plan.issues.items:
            if issue.loc.file not in context_files:
                result.issues.add(issue.loc, issue.message)
        # the same segments with in_segment references resolved to member models
        mine = {(s.account, s.key) for s in result.segments}
        plan.segments = [s for s in plan.segments if (s.account, s.key) in mine]
        result.segments = sorted(plan.segments, key=lambda s: (s.account, s.key))
        result.activity = plan
        for line in result.activity.warnings():
            print(f"warning: {line}", file=sys.stderr)
    if result.issues:
        raise DefinitionError(result.errors)
    return result


def _context(result: DefinitionSet, accounts: set[str] | None) -> list[Segment]:
    """The valid definitions of segment_defs/ that are not in `result`."""
    mine = {(s.account, s.key) for s in result.segments}
    full = load_definitions(None, accounts)
    return [s for s in full.segments if (s.account, s.key) not in mine]


def compile_definitions(offline: bool = False) -> RenderResult:
    """Validate all of segment_defs/ and write the generated dbt files."""
    return render(validate(None, offline=offline))


def sync_generated(offline: bool = False) -> RenderResult | None:
    """Rewrite the generated dbt files from segment_defs/ before any dbt command parses the
    project, so files from an earlier (removed or broken) definition never break a run.

    With invalid definitions the generated files are removed (the project parses without
    segments) and None is returned: the validate step reports the errors with file:line.
    """
    try:
        return compile_definitions(offline=offline)
    except DefinitionError as exc:
        clear_generated()
        log.warning("segment definitions are invalid; generated dbt files removed:\n%s", exc)
        return None


def drop_stale_models(result: RenderResult) -> list[str]:
    """Drop relations of generated models that `result` no longer builds (removed or
    disabled definitions, unused feature models, dbt's leftovers of a killed build), so
    their rows and table comments don't linger in segments_audit. Returns their names."""
    from psycopg import sql

    from segmentation import config, database

    keep = {path.stem for path in result.files if path.suffix == ".sql"}
    kinds = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}
    dropped: list[str] = []
    with database.connect(autocommit=True) as conn:
        rows = conn.execute(
            "select c.relname, c.relkind from pg_class as c "
            "join pg_namespace as n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm') "
            "and (starts_with(c.relname, 'seg__') "
            "or starts_with(c.relname, %s))",
            (config.SCHEMA_AUDIT, MODEL_PREFIX),
        ).fetchall()
        for name, kind in sorted(rows):
            if name in keep:
                continue
            conn.execute(
                sql.SQL("drop {} if exists {}.{}").format(
                    sql.SQL(kinds[kind]), sql.Identifier(config.SCHEMA_AUDIT), sql.Identifier(name)
                )
            )
            dropped.append(name)
    if dropped:
        log.info("dropped %d stale generated relation(s): %s", len(dropped), ", ".join(dropped))
    return dropped


def resolve_model(target: str, result: RenderResult) -> str:
    """The generated model that decides `<account>/<key>` (its own, else the template)."""
    from segmentation.definitions.model import TEMPLATE_DIR

    account, _, key = target.partition("/")
    if not key:
        raise DefinitionError([_target_issue(target, "name a segment as <account>/<key>")])
    by_scope = {(s.account, s.key): s for s in [*result.models.values(), *result.disabled]}
    scope = "*" if account in (TEMPLATE_DIR, "*") else account
    seg = by_scope.get((scope, key)) or by_scope.get(("*", key))
    if seg is None:
        raise DefinitionError([_target_issue(target, f"no segment '{key}' for '{account}'")])
    if not seg.enabled:
        raise DefinitionError([_target_issue(target, f"segment '{key}' is disabled")])
    return seg.model_name


def _target_issue(target: str, message: str) -> object:
    from segmentation.definitions.issues import Issue, Loc

    return Issue(Loc(target, 0, 0), message)


def explain(target: str, as_of: str | None = None, offline: bool = False) -> str:
    """The SQL that runs for `<account>/<key>`, compiled by dbt."""
    from segmentation.dbt_invoke import run_dbt

    result = compile_definitions(offline=offline)
    model = resolve_model(target, result)
    # dbt would print the compiled SQL itself (and its log) to stdout: silence it.
    args = ["compile", "--select", model, "--log-level", "none"]
    res = run_dbt(args, {"as_of": as_of} if as_of else None)
    for node_result in res.result.results:
        node = node_result.node
        if node.name == model:
            return f"-- {target}: model {model}\n{node.compiled_code.strip()}\n"
    raise DefinitionError([_target_issue(target, f"dbt did not compile {model}")])
