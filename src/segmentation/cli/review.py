"""Commands for reviewing and handing over segments: diff (what a change would do to what
Broadcast sees) and export (a published segment to a file)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segmentation.cli.app import command, console, error, note, out, parse_date, warn
from segmentation.steps import diff as diff_step
from segmentation.steps import export as export_step
from segmentation.steps.diff import DiffResult, SegmentDiff


class DiffFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


class Against(StrEnum):
    published = "published"


class ExportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"
    parquet = "parquet"


class Channel(StrEnum):
    whatsapp = "whatsapp"
    email = "email"
    sms = "sms"


Paths = Annotated[
    list[str] | None,
    typer.Argument(
        help="Only the definitions in these files or folders (default: all of segment_defs/).",
        show_default=False,
    ),
]

DiffAsOf = Annotated[
    dt.date | None,
    typer.Option(
        "--as-of",
        parser=parse_date,
        metavar="DATE",
        help="Evaluate the candidates as of this date, YYYY-MM-DD (default: the as-of date "
        "serving shows, so only the definitions differ).",
    ),
]

_HEADERS = ("segment", "status", "published", "candidate", "entered", "exited", "change %")


@command(
    "diff",
    epilog=(
        "Example: segments diff segment_defs/acme/ --fail-on-change-pct 20 --format markdown "
        "> diff.md   (exit 0: within the limit, 1: a segment changes more, or invalid "
        "definitions)"
    ),
)
def diff(
    paths: Paths = None,
    against: Annotated[
        Against, typer.Option("--against", help="What to compare with.")
    ] = Against.published,
    as_of: DiffAsOf = None,
    fail_on_change_pct: Annotated[
        float | None,
        typer.Option(
            "--fail-on-change-pct",
            metavar="N",
            min=0,
            help="Exit 1 when a segment would change by more than N% "
            "(entered + exited against its published size; a new or removed segment is 100%).",
        ),
    ] = None,
    fmt: Annotated[
        DiffFormat,
        typer.Option("--format", help="text, markdown (a pull-request comment) or json."),
    ] = DiffFormat.text,
    limit: Annotated[
        int, typer.Option("--limit", min=0, help="Contacts listed per direction and segment.")
    ] = 10,
) -> int:
    """Show what changed definitions would change for Broadcast: per account, every segment
    whose definition differs from the published one (or is new or removed), its definition
    diff and who would enter and exit. Builds the candidates in segments_audit (default as of
    the date serving shows); publishes nothing."""
    del against  # the only comparison there is, for now
    result = diff_step.diff(paths or None, as_of=as_of, limit=limit)
    over = [] if fail_on_change_pct is None else result.over(fail_on_change_pct)
    if fmt is DiffFormat.json:
        doc = result.to_json()
        doc["fail_on_change_pct"] = fail_on_change_pct
        doc["over_limit"] = [f"{s.account}/{s.key}" for s in over]
        out(json.dumps(doc, indent=2))
    elif fmt is DiffFormat.markdown:
        out(markdown(result, fail_on_change_pct, over))
    else:
        _print_text(result)
    for seg in over:
        error(
            f"{seg.account}/{seg.key} would change by {seg.change_pct:g}% "
            f"(more than {fail_on_change_pct:g}%)"
        )
    if over:
        raise typer.Exit(1)
    return 0


def _row(seg: SegmentDiff) -> list[str]:
    candidate = "-" if seg.status == "removed" else str(seg.candidate)
    published = "-" if seg.status == "new" else str(seg.published)
    return [
        seg.key,
        seg.status,
        published,
        candidate,
        str(seg.entered),
        str(seg.exited),
        f"{seg.change_pct:g}",
    ]


def _print_text(result: DiffResult) -> None:
    if not result.segments:
        note(f"no definition differs from what is published (as of {result.as_of})")
        return
    for account, segs in result.by_account().items():
        table = Table(title=f"{account} (as of {result.as_of})", title_justify="left")
        for header in _HEADERS:
            left = header in ("segment", "status")
            table.add_column(header, justify="left" if left else "right", overflow="fold")
        for seg in segs:
            table.add_row(*_row(seg))
        console.print(table)
        for seg in segs:
            out(f"\n{account}/{seg.key} ({seg.status})")
            if seg.definition_diff:
                out(seg.definition_diff.rstrip("\n"))
            for label, sample, total in (
                ("enter", seg.entered_sample, seg.entered),
                ("exit", seg.exited_sample, seg.exited),
            ):
                if total:
                    more = f" (+{total - len(sample)} more)" if total > len(sample) else ""
                    out(f"would {label}: {', '.join(sample)}{more}")
        out("")


def markdown(
    result: DiffResult, limit_pct: float | None = None, over: list[SegmentDiff] | None = None
) -> str:
    """The pull-request comment: a table per account, the definition diffs collapsed."""
    lines = [f"## Segment changes against what is published (as of {result.as_of})", ""]
    if not result.segments:
        lines.append("No definition differs from what is published.")
        return "\n".join(lines)
    if limit_pct is not None:
        verdict = (
            f"**{len(over or [])} segment(s) change by more than {limit_pct:g}%.**"
            if over
            else f"Every segment changes by at most {limit_pct:g}%."
        )
        lines += [verdict, ""]
    for account, segs in result.by_account().items():
        lines += [f"### {account}", ""]
        lines.append("| " + " | ".join(_HEADERS) + " |")
        lines.append("|" + "|".join(["---"] * 2 + ["---:"] * 5) + "|")
        for seg in segs:
            cells = _row(seg)
            cells[0] = f"`{cells[0]}`"
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        for seg in segs:
            lines += [
                "<details>",
                f"<summary>{account}/{seg.key}: definition ({seg.status})</summary>",
                "",
                "```diff",
                seg.definition_diff.rstrip("\n"),
                "```",
                "",
            ]
            for label, sample, total in (
                ("Would enter", seg.entered_sample, seg.entered),
                ("Would exit", seg.exited_sample, seg.exited),
            ):
                if total:
                    more = f" and {total - len(sample)} more" if total > len(sample) else ""
                    lines.append(f"{label}: {', '.join(f'`{c}`' for c in sample)}{more}")
                    lines.append("")
            lines += ["</details>", ""]
    return "\n".join(lines)


@command(
    "export",
    epilog=(
        "Example: segments export acme/loyal_customers --format xlsx --out loyal.xlsx; "
        "segments export acme/loyal_customers --channel whatsapp > whatsapp.csv"
    ),
)
def export(
    segment: Annotated[str, typer.Argument(help="<account>/<key>, e.g. acme/loyal_customers")],
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="csv, xlsx or parquet.")
    ] = ExportFormat.csv,
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE",
            help="Where to write (default: stdout for csv, <account>__<key>.<format> otherwise).",
        ),
    ] = None,
    channel: Annotated[
        Channel | None,
        typer.Option("--channel", help="Only the recipients of this channel, with addresses."),
    ] = None,
    allow_stale: Annotated[
        bool,
        typer.Option("--allow-stale", help="Export a stale (quarantined) segment all the same."),
    ] = False,
) -> int:
    """Export the published membership of one segment, with the contact fields Broadcast
    uses (its addresses per channel), or the recipients of one channel. Streams: any size."""
    target = out_file if out_file is not None or fmt is not ExportFormat.csv else sys.stdout
    result = export_step.export(
        segment,
        fmt.value,
        target,
        channel=channel.value if channel else None,
        allow_stale=allow_stale,
    )
    if result.stale:
        warn(f"{segment} is stale: exported its last published membership (as of {result.as_of})")
    where = result.path or "stdout"
    note(f"exported {result.rows} row(s) of {segment} (as of {result.as_of}) to {where}")
    return 0
