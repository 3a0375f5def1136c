"""Commands for writing segment definitions: validate, compile, explain."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.syntax import Syntax

from segmentation.cli.app import (
    EXIT_FAILED,
    AsOf,
    Format,
    Offline,
    TextOrJson,
    command,
    console,
    note,
    out,
    warn,
)
from segmentation.errors import DefinitionError
from segmentation.steps import definitions

Paths = Annotated[
    list[str] | None,
    typer.Argument(help="Files or folders (default: segment_defs/).", show_default=False),
]


@command(
    "validate",
    epilog="Example: segments validate segment_defs/acme/ --format json",
)
def validate(
    paths: Paths = None, offline: Offline = False, format_: Format = TextOrJson.text
) -> int:
    """Validate segment definitions; exit 1 on errors, printed as file:line:col: message."""
    plan = definitions.compile(paths or None, offline=offline, log_warnings=False)
    offline_line = definitions.offline_note(plan, offline)
    if format_ is TextOrJson.json:
        document = {
            "ok": plan.ok,
            "segments": len(plan.segments),
            "errors": [definitions.issue_json(i) for i in plan.errors],
            "warnings": plan.warnings(),
            "offline": offline_line,
            # The checks an offline compile skipped (empty when checked against the database).
            "skipped_checks": list(definitions.OFFLINE_SKIPS) if offline_line else [],
        }
        out(json.dumps(document, indent=2))
        if not plan.ok:
            raise typer.Exit(EXIT_FAILED)
        return 0
    # One unwrapped `warning: file:line:col: ...` line each, like the errors.
    for line in plan.warnings():
        warn(line)
    if offline_line:
        note(offline_line)
    if not plan.ok:
        raise DefinitionError(plan.errors)
    note(f"{len(plan.segments)} segment definitions OK")
    return 0


@command("compile", epilog="Example: segments compile")
def compile_(offline: Offline = False) -> int:
    """Validate, then write the generated dbt models; prints one model name a line."""
    result = definitions.compile_definitions(offline=offline, log_warnings=False)
    plan = definitions.read_plan() or {}
    for line in plan.get("warnings", []):
        warn(line)
    if plan.get("accounts", {}) is None:
        note(definitions.offline_reason(offline))
    for name in result.models:
        out(name)
    for seg in result.disabled:
        note(f"{seg.account}/{seg.key}: disabled, not built")
    return 0


@command("explain", epilog="Example: segments explain acme/loyal_customers --as-of 2026-11-22")
def explain(
    segment: Annotated[str, typer.Argument(help="<account>/<key>, e.g. acme/loyal_customers")],
    as_of: AsOf = None,
    offline: Offline = False,
) -> int:
    """Print the compiled SQL of one segment, formatted (highlighted in a terminal)."""
    text = definitions.explain(segment, as_of=as_of.isoformat() if as_of else None, offline=offline)
    if console.is_terminal:
        console.print(Syntax(text.rstrip("\n"), "sql", word_wrap=False, background_color="default"))
    else:  # piped: plain text, so `segments explain ... | psql` runs it
        out(text.rstrip("\n"))
    return 0
