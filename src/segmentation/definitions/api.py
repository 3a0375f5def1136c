"""Entry points used by the pipeline and the CLI: validate, render, explain."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from segmentation.definitions import activity_compile, gating
from segmentation.definitions.model import Segment
from segmentation.definitions.project import (
    DefinitionSet,
    defs_dir,
    display_path,
    load_definitions,
)
from segmentation.definitions.render import RenderResult, render
from segmentation.errors import DatabaseError, DefinitionError


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


def validate(paths: Iterable[Path | str] | None = None, offline: bool = False) -> DefinitionSet:
    """Validate definitions; raise DefinitionError listing every error."""
    accounts = None if offline else known_accounts()
    result = load_definitions(paths, accounts)
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
