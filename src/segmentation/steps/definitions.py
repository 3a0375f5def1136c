"""The definitions step: compile segment_defs/ once into a plan, render it for dbt, and
answer questions about it (explain). The pipeline's other steps read the plan file
(`.local/target/segments_plan.json`) this writes; none of them validates again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from segmentation import settings
from segmentation.compiler import features, sources
from segmentation.compiler.plan import (
    PLAN_VERSION,
    CompiledPlan,
    compile_plan,
    inputs_hash,
    issues_from_json,
)
from segmentation.compiler.render import RenderResult, clear_generated, render
from segmentation.errors import DefinitionError
from segmentation.language.issues import Issue, Loc
from segmentation.language.model import TEMPLATE_DIR
from segmentation.language.project import DefinitionSet
from segmentation.language.regex import offline_regex_check
from segmentation.warehouse import catalog, relations
from segmentation.warehouse.dbt_runner import run_dbt

log = logging.getLogger(__name__)

PLAN_FILE = "segments_plan.json"
# Generated relations in segments_audit: segment models and feature models.
GENERATED_PREFIXES = ("seg__", features.MODEL_PREFIX)


def plan_path() -> Path:
    return settings.local_dir() / "target" / PLAN_FILE


def compile(paths: Iterable[Path | str] | None = None, offline: bool = False) -> CompiledPlan:
    """The one validation of a run: read the accounts once, then compile (language +
    cross-checks). Errors are in the plan's `errors`; warnings are logged."""
    layout = sources.layout()
    with catalog.warehouse_view(offline) as (accounts, check):
        plan = compile_plan(layout, accounts, check or offline_regex_check, paths)
    for line in plan.warnings():
        log.warning(line)
    log.info("compiled %d segment definition(s), %d error(s)", len(plan.segments), len(plan.errors))
    return plan


def validate(paths: Iterable[Path | str] | None = None, offline: bool = False) -> DefinitionSet:
    """Validate definitions; raise DefinitionError listing every error (file:line:col)."""
    return validate_plan(compile(paths, offline))


def validate_plan(plan: CompiledPlan) -> DefinitionSet:
    """The plan's definitions; DefinitionError listing every error when it has any."""
    if not plan.ok:
        raise DefinitionError(plan.errors)
    return plan.definitions


def compile_definitions(offline: bool = False) -> RenderResult:
    """Compile all of segment_defs/, write the generated dbt files and the plan file."""
    plan = compile(None, offline)
    write_plan(plan)
    if not plan.ok:
        raise DefinitionError(plan.errors)
    return render(plan.definitions, activity=plan.activity)


def sync_generated(offline: bool = False) -> RenderResult | None:
    """Compile and render before any dbt command parses the project, so files from an
    earlier (removed or broken) definition never break a run.

    With invalid definitions the generated files are removed (the project parses without
    segments), the plan file records the errors, and None is returned: the validate step
    reports them with file:line.
    """
    try:
        return compile_definitions(offline=offline)
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
    models = {s["model"] for s in plan["segments"] if s["enabled"]}
    return models | {features.feature_model(obj) for obj in plan["features"]}


def drop_stale_models(plan: dict[str, Any]) -> list[str]:
    """Drop relations of generated models that `plan` no longer builds (removed or disabled
    definitions, unused feature models, dbt's leftovers of a killed build), so their rows
    and table comments don't linger in segments_audit. Returns their names."""
    dropped = relations.drop_except(settings.SCHEMA_AUDIT, GENERATED_PREFIXES, plan_models(plan))
    if dropped:
        log.info("dropped %d stale generated relation(s): %s", len(dropped), ", ".join(dropped))
    return dropped


def resolve_model(target: str, result: RenderResult) -> str:
    """The generated model that decides `<account>/<key>` (its own, else the template)."""
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


def _target_issue(target: str, message: str) -> Issue:
    return Issue(Loc(target, 0, 0), message)


def explain(target: str, as_of: str | None = None, offline: bool = False) -> str:
    """The SQL that runs for `<account>/<key>`, compiled by dbt."""
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
