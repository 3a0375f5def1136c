"""Commands that start and list segments: init (a new definition file) and ls."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from segmentation.cli.app import (
    Format,
    Offline,
    TextOrJson,
    command,
    note,
    out,
    print_table,
)
from segmentation.steps import listing
from segmentation.steps import scaffold as scaffold_step


@command(
    "init",
    epilog="Example: segments init acme/vip_customers  (a template for every account: _all/<key>)",
)
def init(
    segment: Annotated[
        str, typer.Argument(help="<account>/<key>, e.g. acme/vip_customers, or _all/<key>.")
    ],
    offline: Offline = False,
) -> int:
    """Write a commented segment_defs/<account>/<key>.yml that validates as it is (never
    overwrites); prints its path."""
    made = scaffold_step.scaffold(segment, offline=offline)
    out(made.display)
    if made.overrides_template:
        note(f"{made.target} overrides the template {made.target.split('/')[1]} for this account")
    note(f"next: edit it, then `segments validate {made.display}`")
    return 0


@command("ls", epilog="Example: segments ls --account acme --tag retention --format json")
def ls(
    account: Annotated[str | None, typer.Option(help="Only this account_id.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only segments with this tag.")] = None,
    format_: Format = TextOrJson.text,
) -> int:
    """The published segments: owner, size, last published, stale, and the 7-day trend."""
    rows = listing.list_segments(account=account, tag=tag)
    if format_ is TextOrJson.json:
        out(json.dumps({"segments": [r.to_json() for r in rows]}, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        note("nothing published" + (" for that filter" if account or tag else " yet"))
        return 0
    table = Table(box=box.SIMPLE_HEAD)
    for name, justify in COLUMNS:
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.account_id,
            r.segment_key,
            r.owner or "-",
            f"{r.members:,}",
            str(r.as_of or "-"),
            f"{r.published_at:%Y-%m-%d %H:%M}" if r.published_at else "never",
            escape(f"yes: {r.stale_reason}" if r.stale else "no"),
            r.sparkline,
        )
    print_table(table)
    return 0


COLUMNS = (
    ("account", "left"),
    ("segment", "left"),
    ("owner", "left"),
    ("members", "right"),
    ("as of", "left"),
    ("last published", "left"),
    ("stale", "left"),
    ("7 days", "left"),
)
