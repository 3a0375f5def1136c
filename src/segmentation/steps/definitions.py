"""The definitions step: compile segment_defs/ once into a plan, render it for dbt, and
answer questions about it (explain). The pipeline's other steps read the plan file
(`.local/target/segments_plan.json`) this writes; none of them validates again.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlparse

from segmentation import settings
from segmentation.compiler import features, onepass, sources
from segmentation.compiler.plan import (
    PLAN_VERSION,
    CompiledPlan,
    compile_plan,
    inputs_hash,
    issues_from_json,
)
from segmentation.compiler.render import RenderResult, clear_generated, render
from segmentation.errors import DatabaseError, DbtError, DefinitionError, UnknownSegmentError
from segmentation.language.issues import Issue, Loc
from segmentation.language.model import TEMPLATE_DIR, Segment
from segmentation.language.project import DefinitionSet
from segmentation.language.regex import offline_regex_check
from segmentation.language.suggest import did_you_mean
from segmentation.warehouse import catalog, database, relations
from segmentation.warehouse.dbt_runner import run_dbt

log = logging.getLogger(__name__)

PLAN_FILE = "segments_plan.json"
# Generated relations in segments_audit: segment models and feature models.
GENERATED_PREFIXES = ("seg__", onepass.PASS_PREFIX, features.MODEL_PREFIX)


def plan_path() -> Path:
    return settings.local_dir() / "target" / PLAN_FILE


def compile(
    paths: Iterable[Path | str] | None = None, offline: bool = False, *, log_warnings: bool = True
) -> CompiledPlan:
    """The one validation of a run: read the accounts once, then compile (language +
    cross-checks). Errors are in the plan's `errors`; warnings are logged (unless the
    caller shows them itself: `log_warnings=False`)."""
    layout = sources.layout()
    with catalog.warehouse_view(offline) as (accounts, check):
        plan = compile_plan(layout, accounts, check or offline_regex_check, paths)
    for line in plan.warnings() if log_warnings else []:
        log.warning(line)
    log.info("compiled %d segment definition(s), %d error(s)", len(plan.segments), len(plan.errors))
    return plan


def validate(paths: Iterable[Path | str] | None = None, offline: bool = False) -> DefinitionSet:
    """Validate definitions; raise DefinitionError listing every error (file:line:col)."""
    return validate_plan(compile(paths, offline))


OFFLINE_SKIPS = (
    "accounts exist in crm_raw.accounts",
    "package gating (has: needs ultimate or 360)",
    "regular expressions compiled by PostgreSQL (an offline approximation ran instead)",
)


def offline_note(plan: CompiledPlan, offline: bool) -> str | None:
    """One line when `plan` was compiled without the warehouse: why, and which checks that
    skipped; None when it was checked against the database."""
    if plan.accounts is not None:
        return None
    return offline_reason(offline)


def offline_reason(offline: bool) -> str:
    """The offline note: why the compile ran without the warehouse, and what it skipped."""
    why = "--offline" if offline else f"database not reachable: {database.connection_variables()}"
    return f"checked offline ({why}); skipped: {'; '.join(OFFLINE_SKIPS)}"


def online_plan() -> dict[str, Any]:
    """The run's plan, compiled against the warehouse: the pipeline's validation never runs
    offline. A plan file compiled offline (`--offline`, or the database was down then) is
    compiled again; DatabaseError when the database still can't be reached, naming the
    checks an offline compile would skip. DefinitionError when the definitions are invalid."""
    plan = current_plan()
    if plan.get("accounts") is None:
        sync_generated()
        plan = current_plan()
    if plan.get("accounts") is None:
        raise DatabaseError(
            "The run's validation checks the definitions against the warehouse, and it can't "
            f"be read ({database.connection_variables()}): an offline check would skip "
            f"{'; '.join(OFFLINE_SKIPS)}. Nothing was built: fix the connection (or load "
            "crm_raw.accounts) and rerun the run or this task."
        )
    return plan


_SUGGESTION = re.compile(r" \(did you mean '([^']*)'\?\)")


def issue_json(issue: Issue) -> dict[str, Any]:
    """An issue for a machine (CI annotations): file, line, col, message, suggestion."""
    match = _SUGGESTION.search(issue.message)
    return {
        "file": issue.loc.file,
        "line": issue.loc.line,
        "col": issue.loc.col,
        "message": _SUGGESTION.sub("", issue.message),
        "suggestion": match.group(1) if match else None,
    }


def validate_plan(plan: CompiledPlan) -> DefinitionSet:
    """The plan's definitions; DefinitionError listing every error (accounts' own
    included) when it has any."""
    if plan.all_errors:
        raise DefinitionError(plan.all_errors)
    return plan.definitions


def compile_definitions(
    offline: bool = False, *, log_warnings: bool = True, contain: bool = False
) -> RenderResult:
    """Compile all of segment_defs/, write the generated dbt files and the plan file.

    Any error raises DefinitionError listing every one and renders nothing. With `contain`
    (a run), errors only in accounts' own folders leave those accounts out instead: the
    others are rendered and the plan file names the accounts (`failed_definitions`)."""
    plan = compile(None, offline, log_warnings=log_warnings)
    if plan.account_errors and not contain:
        plan.errors, plan.account_errors = plan.all_errors, {}
    write_plan(plan)
    if not plan.ok:
        raise DefinitionError(plan.errors)
    for account, cause in plan.failed_accounts().items():
        log.warning("account %s is left out of this run: %s", account, cause)
    return render(plan.definitions, activity=plan.activity)


def failed_definitions(plan: dict[str, Any]) -> dict[str, str]:
    """account -> cause, for the accounts a plan (file) left out because their own
    definition files have errors."""
    return dict(plan.get("failed_accounts") or {})


def sync_generated(offline: bool = False) -> RenderResult | None:
    """Compile and render before any dbt command parses the project, so files from an
    earlier (removed or broken) definition never break a run.

    Invalid files in an account's own folder leave that account out (logged; the plan
    file names it, `failed_definitions`); the rest is rendered. With invalid templates the
    generated files are removed (the project parses without segments), the plan file
    records the errors, and None is returned: the validate step reports them with file:line.
    """
    try:
        return compile_definitions(offline=offline, contain=True)
    except DefinitionError as exc:
        clear_generated()
        log.warning("segment definitions are invalid; generated dbt files removed:\n%s", exc)
        return None


def write_plan(plan: CompiledPlan) -> Path:
    path = plan_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(plan.to_json(), indent=1, sort_keys=True, default=str) + "\n")
    tmp.replace(path)  # readers never see half a file
    return path


def read_plan() -> dict[str, Any] | None:
    """The plan file, or None when it is missing, unreadable or of another plan version."""
    try:
        plan = json.loads(plan_path().read_text())
    except (OSError, ValueError):
        return None
    return plan if isinstance(plan, dict) and plan.get("version") == PLAN_VERSION else None


def fresh_plan() -> dict[str, Any] | None:
    """The plan file when segment_defs/ is unchanged since it was written, else a fresh
    compile and render (sync_generated). The plan may hold errors."""
    plan = read_plan()
    if plan is None or plan.get("inputs_hash") != inputs_hash(sources.layout()):
        sync_generated()
        plan = read_plan()
    return plan


def current_plan() -> dict[str, Any]:
    """The plan of the definitions as they are now (fresh_plan). Raises DefinitionError
    when the definitions are invalid."""
    plan = fresh_plan()
    if plan is None:  # pragma: no cover - write_plan just wrote it
        raise DefinitionError([Issue(Loc(str(plan_path())), "the plan file was not written")])
    if plan["errors"]:
        raise DefinitionError(issues_from_json(plan["errors"]))
    return plan


def plan_models(plan: dict[str, Any]) -> set[str]:
    """The generated models a plan builds: segment models and the feature models."""
    enabled = [s for s in plan["segments"] if s["enabled"]]
    models = {s["model"] for s in enabled}
    models |= {onepass.pass_model("*" if s["template"] else s["account"]) for s in enabled}
    return models | {features.feature_model(obj) for obj in plan["features"]}


def drop_stale_models(plan: dict[str, Any]) -> list[str]:
    """Drop relations of generated models that `plan` no longer builds (removed or disabled
    definitions, unused feature models, dbt's leftovers of a killed build), so their rows
    and table comments don't linger in segments_audit. Returns their names."""
    dropped = relations.drop_except(settings.SCHEMA_AUDIT, GENERATED_PREFIXES, plan_models(plan))
    if dropped:
        log.info("dropped %d stale generated relation(s): %s", len(dropped), ", ".join(dropped))
    return dropped


@dataclass(frozen=True)
class Resolved:
    """What `<account>/<key>` names: the account (or "*" for a template), the definition
    that decides it there (the account's own, else the template) and its dbt model."""

    target: str
    account: str
    key: str
    segment: Segment
    model: str


def resolve(target: str, result: RenderResult, plan: dict[str, Any] | None = None) -> Resolved:
    """Resolve `<account>/<key>` against the rendered definitions (and the plan file's
    accounts and packages, when it was compiled online). Raises UnknownSegmentError with
    one line saying which: malformed, unknown account or segment (did you mean), disabled,
    or not built for the account's package."""
    account, _, key = target.strip().partition("/")
    if not account or not key or "/" in key:
        raise UnknownSegmentError(
            f"'{target}' is not a segment name: write <account>/<key>, e.g. acme/loyal_customers "
            f"(templates: {TEMPLATE_DIR}/<key>)"
        )
    plan = plan if plan is not None else read_plan()
    segments = [*result.models.values(), *result.disabled]
    by_scope = {(s.account, s.key): s for s in segments}
    packages: dict[str, str | None] | None = (plan or {}).get("accounts")
    scope = "*" if account in (TEMPLATE_DIR, "*") else account
    known = {s.account for s in segments if not s.is_template} | set(packages or {})
    # Offline, a template's account can't be checked: the warehouse is the list.
    if (
        scope != "*"
        and account not in known
        and (packages is not None or ("*", key) not in by_scope)
    ):
        where = (
            "in the warehouse (crm_raw.accounts)"
            if packages is not None
            else "in segment_defs/ (checked offline: the database was not reachable)"
        )
        hint = did_you_mean(account, sorted(known))
        raise UnknownSegmentError(f"unknown account '{account}' {where}{hint}")
    seg = by_scope.get((scope, key)) or by_scope.get(("*", key))
    if seg is None:
        keys = sorted({k for a, k in by_scope if a in (scope, "*")})
        raise UnknownSegmentError(
            f"no segment '{key}' for account '{account}'{did_you_mean(key, keys)}: "
            f"`segments ls --account {account}` lists the published ones, "
            f"`segments init {account}/{key}` starts a new one"
        )
    if not seg.enabled:
        raise UnknownSegmentError(
            f"{target} is disabled (enabled: false in {seg.source_file}): it is catalogued but "
            "not built; set enabled: true to build it"
        )
    if seg.is_template and scope != "*" and packages is not None:
        allowed = _template_packages(plan, seg)
        package = packages.get(account)
        if allowed is not None and package not in allowed:
            raise UnknownSegmentError(
                f"{target} is not built for account '{account}': template {seg.source_file} "
                f"uses activity conditions (has:), which package '{package or 'unknown'}' does "
                f"not include (needs {' or '.join(allowed)})"
            )
    return Resolved(target, scope, key, seg, seg.model_name)


def _template_packages(plan: dict[str, Any] | None, seg: Segment) -> list[str] | None:
    for entry in (plan or {}).get("segments", []):
        if entry["model"] == seg.model_name:
            return entry.get("packages")
    return None


def resolve_model(target: str, result: RenderResult) -> str:
    """The generated model that decides `<account>/<key>` (its own, else the template);
    UnknownSegmentError (one line, did you mean) when there is none (see `resolve`)."""
    return resolve(target, result).model


def explain(target: str, as_of: str | None = None, offline: bool = False) -> str:
    """The SQL that runs for `<account>/<key>`, compiled by dbt and formatted (one clause a
    line, indented), so it reads in a terminal and diffs in a review.

    It is the segment evaluated on its own (segment_strategy per_segment): a run computes
    the same members inside its scope's pass (seg_pass__<scope>, one_pass), where the
    model is a view over one column; the equivalence of the two is tested."""
    result = compile_definitions(offline=offline)
    model = resolve_model(target, result)
    database.connect().close()  # dbt compile connects: say so in one line when it can't
    # dbt would print the compiled SQL itself (and its log) to stdout: silence it.
    args = ["compile", "--select", model, "--log-level", "none"]
    dbt_vars: dict[str, Any] = {"segment_strategy": "per_segment"}
    if as_of:
        dbt_vars["as_of"] = as_of
    res = run_dbt(args, dbt_vars)
    for node_result in res.result.results:
        node = node_result.node
        if node.name == model:
            return f"-- {target}: model {model}\n{format_sql(node.compiled_code)}\n"
    raise DbtError(f"dbt did not compile {model} for {target}: run `segments compile` to see why")


def format_sql(text: str) -> str:
    """SQL laid out for reading: sqlparse's reindent (it changes layout, never tokens)."""
    formatted = sqlparse.format(text.strip(), reindent=True, indent_width=4, keyword_case="lower")
    # Drop the blank lines dbt's Jinja leaves; keep the statement's own line breaks.
    lines = [line.rstrip() for line in formatted.splitlines() if line.strip()]
    # sqlparse indents the first clause after leading comments by one space.
    first = next((i for i, line in enumerate(lines) if not line.lstrip().startswith("--")), None)
    if first is not None and lines[first].startswith(" ") and not lines[first].startswith("  "):
        lines[first] = lines[first][1:]
    return "\n".join(lines)
