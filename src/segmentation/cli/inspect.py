"""Commands for looking into one segment before it ships: preview and why."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from segmentation.cli.app import AsOf, command, console, note
from segmentation.steps import preview as preview_step

Segment = Annotated[str, typer.Argument(help="<account>/<key>, e.g. acme/loyal_customers")]


class Format:
    TEXT = "text"
    JSON = "json"


def _check_format(value: str) -> str:
    if value not in (Format.TEXT, Format.JSON):
        raise typer.BadParameter(f"'{value}' is not one of text, json", param_hint="--format")
    return value


def _print_json(document: dict[str, Any]) -> None:
    console.out(json.dumps(document, indent=1, default=str), highlight=False)


@command(
    "preview",
    epilog=(
        "Example: segments preview acme/loyal_customers --as-of 2026-11-22 --limit 10\n\n"
        "Reads the staged data of the last `segments run` (or `dbt build`); builds and "
        "publishes nothing."
    ),
)
def preview(
    segment: Segment,
    as_of: AsOf = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Members to show.")] = 20,
    format_: Annotated[
        str, typer.Option("--format", help="text (tables) or json (one JSON document).")
    ] = Format.TEXT,
) -> int:
    """Who would be in a segment now: the member count, a sample and the funnel."""
    _check_format(format_)
    result = preview_step.preview(segment, as_of=preview_step.as_of_text(as_of), limit=limit)
    if format_ == Format.JSON:
        _print_json(result.to_json())
        return 0
    as_of_text = result.as_of or "today"
    console.print(
        Text.assemble(
            (result.segment, "bold"),
            ": ",
            (str(result.members), "bold"),
            f" member{'s' if result.members != 1 else ''} of {result.candidates} contacts "
            f"(as of {as_of_text})",
        )
    )
    heading = {
        "cumulative": "condition (AND of the rows so far)",
        "branches": "branch (any of)",
    }.get(result.step_mode, "condition")
    funnel = Table(title="Funnel", title_justify="left")
    funnel.add_column("#", justify="right")
    funnel.add_column(heading)
    funnel.add_column("contacts", justify="right")
    funnel.add_column("removed", justify="right")
    previous = result.candidates
    for index, step in enumerate(result.funnel, start=1):
        removed = ""
        if result.step_mode == "cumulative":
            removed, previous = str(previous - step.count), step.count
        funnel.add_row(str(index), Text(step.label), str(step.count), removed)
    console.print(funnel)
    sample = Table(title=f"Members (first {len(result.sample)})", title_justify="left")
    columns = ["contact_id", "full_name", *result.columns]
    for name in columns:
        sample.add_column(Text(name), overflow="fold")
    for member in result.sample:
        sample.add_row(*[_cell(member.get(name)) for name in columns])
    console.print(sample)
    note(f"previewed in {result.seconds:.1f} s; nothing was built or published")
    return 0


@command(
    "why",
    epilog="Example: segments why acme/enterprise_leads acme-c000051 --as-of 2026-11-22",
)
def why(
    segment: Segment,
    contact_id: Annotated[str, typer.Argument(help="The contact's id in the CRM.")],
    as_of: AsOf = None,
    format_: Annotated[
        str, typer.Option("--format", help="text (a tree) or json (one JSON document).")
    ] = Format.TEXT,
) -> int:
    """Is this contact in the segment, and why (or why not): every condition with its value."""
    _check_format(format_)
    result = preview_step.why(segment, contact_id, as_of=preview_step.as_of_text(as_of))
    if format_ == Format.JSON:
        _print_json(result.to_json())
        return 0
    name = f" ({result.full_name})" if result.full_name else ""
    verdict = ("is a member", "green") if result.member else ("is not a member", "red")
    console.print(
        Text.assemble(
            f"{result.contact_id}{name} ",
            verdict,
            " of ",
            (result.segment, "bold"),
            f" (as of {result.as_of})",
        )
    )
    root: Tree | None = None
    stack: list[Tree] = []
    for node in result.nodes:
        text = Text.assemble(("✓", "green") if node.verdict else ("✗", "red"), f" {node.label}")
        if node.value is not None or node.requirement:
            text.append(f": {'unset' if node.value is None else node.value}")
        if node.requirement:
            text.append(f", {node.requirement}")
        if root is None:
            root = Tree(text)
            stack = [root]
            continue
        del stack[node.depth :]
        stack.append(stack[-1].add(text))
    if root is not None:
        console.print(root)
    if result.failing:
        note("fails: " + "; ".join(result.failing))
    return 0


def _cell(value: object) -> Text:
    return Text("" if value is None else str(value))
