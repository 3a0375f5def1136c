"""Entry points used by the pipeline and the CLI: validate, render, explain."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from segmentation.definitions.project import DefinitionSet, load_definitions
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
    if result.issues:
        raise DefinitionError(result.errors)
    return result


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
