"""Commands that start and list segments: init (a new definition file) and ls."""

from __future__ import annotations

from typing import Annotated

import typer

from segmentation.cli.app import Offline, command, note, out
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
