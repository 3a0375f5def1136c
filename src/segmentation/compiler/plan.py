"""The compiled plan: every definition validated and cross-checked once, for one set of
accounts. Every pipeline step reads this (or its JSON file); none validates again.

`compile_plan` is pure: the caller passes the accounts (read once from the warehouse) and
the regex check; nothing here touches the database or the file system beyond reading the
definition files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segmentation.compiler import activity_compile
from segmentation.compiler.activity_compile import ActivityPlan
from segmentation.language.issues import Issue, Loc
from segmentation.language.model import Segment
from segmentation.language.normalize import value_warnings
from segmentation.language.project import SUFFIXES, DefinitionSet, Layout, load_definitions
from segmentation.language.regex import RegexCheck, offline_regex_check

PLAN_VERSION = 1


@dataclass
class CompiledPlan:
    """A validated definition set. `accounts` is what it was compiled against (account ->
    package), None when compiled offline."""

    definitions: DefinitionSet
    accounts: dict[str, str | None] | None
    inputs_hash: str
    errors: list[Issue] = field(default_factory=list)
    # in_segment resolution, gating, groups and features (None when a file failed alone)
    activity: ActivityPlan | None = None
    # Errors in an account's own files (segment_defs/<account>/): that account is left out
    # of the plan (its files as if absent) and the rest still renders. `errors` holds the
    # ones no single account owns (templates, _groups of _all), which fail every account.
    account_errors: dict[str, list[Issue]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def segments(self) -> list[Segment]:
        return self.definitions.segments

    @property
    def all_errors(self) -> list[Issue]:
        """Every error, the accounts' own included (what `segments validate` reports)."""
        return [*self.errors, *(i for issues in self.account_errors.values() for i in issues)]

    def failed_accounts(self) -> dict[str, str]:
        """account -> one line naming its first invalid file and the number of errors."""
        return {account: failure_cause(issues) for account, issues in self.account_errors.items()}

    def warnings(self) -> list[str]:
        """Skipped templates (gating), then values that can never match the staged data."""
        skipped = self.activity.warnings() if self.activity else []
        return skipped + value_warnings(self.segments)

    def models(self) -> list[str]:
        """The generated segment models this plan builds (enabled definitions)."""
        return sorted(s.model_name for s in self.segments if s.enabled)

    def to_json(self) -> dict[str, Any]:
        activity = self.activity
        segments = []
        for seg in self.segments:
            payload = activity.payload(seg) if activity else {}
            segments.append(
                {
                    "account": seg.account,
                    "key": seg.key,
                    "model": seg.model_name,
                    "enabled": seg.enabled,
                    "template": seg.is_template,
                    "definition_hash": seg.definition_hash,
                    # what the hash is over: publish records it, `segments diff` compares it
                    "logic": seg.logic_json(),
                    "source_file": seg.source_file,
                    "packages": payload.get("packages"),
                    "activity_objects": payload.get("activity_objects", []),
                    # What the report shows of a definition (steps.report).
                    "name": seg.name,
                    "description": seg.description,
                    "owner": seg.owner,
                    "tags": list(seg.tags),
                    "condition": seg.condition.to_json(),
                }
            )
        body = {
            "version": PLAN_VERSION,
            "inputs_hash": self.inputs_hash,
            "accounts": self.accounts,
            "errors": [_issue_json(i) for i in self.errors],
            "account_errors": {
                account: [_issue_json(i) for i in issues]
                for account, issues in sorted(self.account_errors.items())
            },
            "failed_accounts": self.failed_accounts(),
            "warnings": self.warnings(),
            "segments": segments,
            "groups": [g.to_json() for g in (activity.groups if activity else [])],
            "features": {
                obj: sorted(f.id for f in feats)
                for obj, feats in (activity.features.items() if activity else [])
            },
            # Each feature's spec by id, so a `has:` condition can be shown readably.
            "feature_specs": {
                f.id: f.spec()
                for feats in (activity.features.values() if activity else [])
                for f in feats
            },
        }
        return {**body, "plan_hash": _digest(body)}


def failure_cause(issues: list[Issue]) -> str:
    """One line for an account left out of a run by its invalid definitions."""
    first = issues[0]
    more = f" (and {len(issues) - 1} more error(s))" if len(issues) > 1 else ""
    return (
        f"invalid definition {first.loc.file}:{first.loc.line}:{first.loc.col}: "
        f"{first.message.splitlines()[0]}{more}; fix it (`segments validate`) and rerun"
    )


def _issue_json(issue: Issue) -> dict[str, Any]:
    return {
        "file": issue.loc.file,
        "line": issue.loc.line,
        "col": issue.loc.col,
        "message": issue.message,
    }


def issues_from_json(rows: Iterable[Mapping[str, Any]]) -> list[Issue]:
    return [Issue(Loc(r["file"], r["line"], r["col"]), r["message"]) for r in rows]


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def inputs_hash(layout: Layout) -> str:
    """A hash of every file under segment_defs/: the plan is current while it is unchanged."""
    digest = hashlib.sha256()
    root = layout.defs_dir
    if root.is_dir():
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES):
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def compile_plan(
    layout: Layout,
    accounts: Mapping[str, str | None] | None = None,
    regex_check: RegexCheck = offline_regex_check,
    paths: Iterable[Path | str] | None = None,
) -> CompiledPlan:
    """Validate (each file, then across files) and cross-check the definitions once.

    `accounts`: account -> package as the warehouse has them (None: offline, no account or
    package checks). `paths`: validate only these files or folders; the rest of
    segment_defs/ is then context that in_segment may refer to, and its own problems are not
    reported. Errors are returned in `errors` (the plan is then not renderable).

    Compiling all of segment_defs/ (`paths` None), errors that lie only in accounts' own
    folders leave those accounts out instead: the plan is compiled again without their
    files, the errors go to `account_errors`, and the rest renders."""
    plan = _compile(layout, accounts, regex_check, paths, ())
    if paths is not None:
        return plan
    excluded: dict[str, list[Issue]] = {}
    while plan.errors:
        owners = {id(issue): layout.account_of(issue.loc.file) for issue in plan.errors}
        if any(owner is None for owner in owners.values()):
            # An error no single account owns fails every account, as before.
            plan.errors = [*plan.errors, *(i for v in excluded.values() for i in v)]
            return plan
        for issue in plan.errors:
            excluded.setdefault(str(owners[id(issue)]), []).append(issue)
        plan = _compile(layout, accounts, regex_check, None, tuple(excluded))
    plan.account_errors = excluded
    return plan


def _compile(
    layout: Layout,
    accounts: Mapping[str, str | None] | None,
    regex_check: RegexCheck,
    paths: Iterable[Path | str] | None,
    exclude: tuple[str, ...],
) -> CompiledPlan:
    known = None if accounts is None else set(accounts)
    result = load_definitions(layout, paths, known, regex_check, exclude)
    if not result.issues:
        roots = [layout.defs_dir] if paths is None else [Path(p) for p in paths if Path(p).is_dir()]
        context = _context(layout, result, known) if paths is not None else []
        plan = activity_compile.plan(
            result.segments + context,
            roots,
            None if accounts is None else dict(accounts),
            layout.display,
            exclude,
        )
        context_files = {s.source_file for s in context}
        for issue in plan.issues.items:
            if issue.loc.file not in context_files:
                result.issues.add(issue.loc, issue.message)
        # the same segments with in_segment references resolved to member models
        mine = {(s.account, s.key) for s in result.segments}
        plan.segments = [s for s in plan.segments if (s.account, s.key) in mine]
        result.segments = sorted(plan.segments, key=lambda s: (s.account, s.key))
    else:
        plan = None
    return CompiledPlan(
        definitions=result,
        accounts=None if accounts is None else dict(accounts),
        inputs_hash=inputs_hash(layout),
        errors=result.errors,
        activity=plan,
    )


def _context(layout: Layout, result: DefinitionSet, accounts: set[str] | None) -> list[Segment]:
    """The valid definitions of segment_defs/ that are not in `result`."""
    mine = {(s.account, s.key) for s in result.segments}
    full = load_definitions(layout, None, accounts)
    return [s for s in full.segments if (s.account, s.key) not in mine]
