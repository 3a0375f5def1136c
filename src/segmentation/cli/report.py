"""`segments report`: the static HTML site of segment analytics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segmentation.cli.app import command, out


@command("report", epilog="Example: segments report --out /tmp/segments-report")
def report(
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder to write it to (default .local/report/)."),
    ] = None,
) -> int:
    """Write the static HTML report (sizes, KPIs, migration, RFM, clusters); print its path."""
    # Imported here: altair and vl-convert take seconds to load, which no other command needs.
    from segmentation.steps import report as site

    out(str(site.build_report(out_dir)))
    return 0
