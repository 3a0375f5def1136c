"""Commands for writing segment definitions: validate, compile, explain."""

from __future__ import annotations

from typing import Annotated

import typer

from segmentation.cli.app import AsOf, Offline, command, note, out, warn
from segmentation.steps import definitions

Paths = Annotated[
    list[str] | None,
    typer.Argument(help="Files or folders (default: segment_defs/).", show_default=False),
]


@command(
    "validate",
    epilog="Example: segments validate segment_defs/acme/",
)
def validate(paths: Paths = None, offline: Offline = False) -> int:
    """Validate segment definitions; exit 1 on errors, printed as file:line:col: message."""
    plan = definitions.compile(paths or None, offline=offline)
    for line in plan.warnings():
        warn(line)
    result = definitions.validate_plan(plan)
    note(f"{len(result.segments)} segment definitions OK")
    return 0


@command("compile", epilog="Example: segments compile")
def compile_(offline: Offline = False) -> int:
    """Validate, then write the generated dbt models; prints one model name a line."""
    result = definitions.compile_definitions(offline=offline)
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
    """Print the compiled SQL of one segment."""
    text = definitions.explain(segment, as_of=as_of.isoformat() if as_of else None, offline=offline)
    out(text.rstrip("\n"))
    return 0
