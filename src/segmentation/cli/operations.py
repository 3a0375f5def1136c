"""Commands for running and serving: db init, run, status, published, accept,
grant/revoke-reader."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from segmentation.cli.app import (
    AsOf,
    Format,
    TextOrJson,
    command,
    db_command,
    err_console,
    note,
    out,
    print_table,
    warn,
)
from segmentation.errors import AcceptError, AccountFailedError, QuarantineError
from segmentation.steps import accept as accept_step
from segmentation.steps import listing, pipeline, setup


@db_command("init", epilog="Example: segments db init")
def db_init() -> int:
    """Create the raw CRM contract and the pipeline schemas (idempotent)."""
    for warning in setup.init_db():
        warn(warning)
    note("initialised: crm_raw contract and pipeline schemas")
    return 0


@command("run", epilog="Example: segments run --as-of 2026-11-22")
def run(
    as_of: AsOf = None,
    run_id: Annotated[
        str | None, typer.Option(help="Run id (default: manual__<timestamp>).")
    ] = None,
    allow_rewind: Annotated[
        bool,
        typer.Option(
            "--allow-rewind",
            help="Publish an as-of date older than the one serving shows (rolls Broadcast back).",
        ),
    ] = False,
    account: Annotated[
        list[str] | None,
        typer.Option(
            "--account",
            help="Refresh only this account (repeat for several; default: every account).",
        ),
    ] = None,
) -> int:
    """Run the pipeline once without Airflow: build, audit, publish, history; a progress
    line per step and a summary table (published, quarantined, entered, exited)."""
    as_of = as_of or pipeline.today()
    run_id = run_id or pipeline.manual_run_id()
    display = StepDisplay()
    try:
        with display:
            pipeline.run(
                as_of=as_of,
                run_id=run_id,
                accounts=account or None,
                allow_rewind=allow_rewind,
                on_step=display,
            )
    except (QuarantineError, AccountFailedError):
        print_run_summary(as_of, run_id)  # the rest published: show what, then fail the run
        raise
    print_run_summary(as_of, run_id)
    return 0


class StepDisplay:
    """The steps of a run: a live rich progress display in a terminal, one line per step
    otherwise (CI logs)."""

    def __init__(self) -> None:
        self.live = err_console.is_terminal
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]done[/]"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> StepDisplay:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.stop()

    def __call__(self, event: pipeline.StepEvent) -> None:
        label = f"{event.step:<14} {event.detail}".rstrip()
        if self.live:
            if event.state == "started":
                self.tasks[event.step] = self.progress.add_task(label, total=1)
            else:
                mark = "" if event.state == "done" else "[red]failed:[/] "
                self.progress.update(
                    self.tasks[event.step],
                    description=f"{event.step:<14} {mark}{escape(event.detail)}",
                    completed=1,
                )
            return
        if event.state == "started":
            note(f"{event.step:<14} ...")
        else:
            note(f"{event.step:<14} {event.state} in {event.seconds or 0:.1f}s  {event.detail}")


def print_run_summary(as_of: dt.date, run_id: str) -> None:
    rows = pipeline.run_summary(as_of, run_id)
    if not rows:
        note(f"nothing recorded for {as_of} by {run_id}")
        return
    table = Table(title=f"run {run_id}, as of {as_of}", show_lines=False)
    for name, justify in (
        ("account", "left"),
        ("segment", "left"),
        ("published", "right"),
        ("quarantined", "left"),
        ("entered", "right"),
        ("exited", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.account_id,
            r.segment_key,
            f"{r.members:,}",
            escape(f"yes: {r.reason}" if r.quarantined else "no"),
            f"{r.entered:,}",
            f"{r.exited:,}",
        )
    # The summary is the command's output (stdout); the progress went to stderr.
    print_table(table)


def _when(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M %Z}" if value else "never"


def _staleness(s: listing.SegmentState) -> str:
    if not s.stale:
        return "fresh"
    days = ""
    if s.days_stale is not None:
        days = f" for {s.days_stale} day{'s' if s.days_stale != 1 else ''}"
    return f"stale{days}: {s.stale_reason}"


@command("published", epilog="Example: segments published --account acme --format json")
def published(
    account: Annotated[str | None, typer.Option(help="Only this account_id.")] = None,
    format_: Format = TextOrJson.text,
) -> int:
    """Per account and segment as Broadcast sees them: members, as-of date, published at,
    stale (with the reason) and days stale."""
    states = listing.segment_states(account)
    if format_ is TextOrJson.json:
        out(json.dumps({"segments": [s.to_json() for s in states]}, indent=2, ensure_ascii=False))
        return 0
    if not states:
        out("nothing published yet")
        return 0
    by_account: dict[str, list[listing.SegmentState]] = {}
    for s in states:
        by_account.setdefault(s.account_id, []).append(s)
    for name, rows in by_account.items():
        stale = sum(r.stale for r in rows)
        out(
            f"{name}: {sum(r.members for r in rows):,} memberships in {len(rows)} segments"
            + (f", {stale} stale" if stale else "")
        )
        for r in rows:
            out(f"  {r.segment_key:<40} {r.members:>10,}")
            out(f"    as of {r.as_of or '-'}, published {_when(r.published_at)}, {_staleness(r)}")
    return 0


@command("status", epilog="Example: segments status --format json")
def status(format_: Format = TextOrJson.text) -> int:
    """Per account: timezone (and fallbacks), published, stale; per segment: as-of,
    published at, stale, reason and days stale; the run lease."""
    state = pipeline.status()
    segments = listing.segment_states()
    if format_ is TextOrJson.json:
        document = {
            "accounts": [
                {
                    "account": a.account_id,
                    "package": a.package,
                    "timezone": a.timezone,
                    "timezone_is_valid": a.timezone_is_valid,
                    "segments": a.segments,
                    "stale_segments": a.stale_segments,
                    "memberships": a.memberships,
                    "latest_as_of": a.latest_as_of.isoformat() if a.latest_as_of else None,
                    "latest_published_at": (
                        a.latest_published_at.isoformat() if a.latest_published_at else None
                    ),
                }
                for a in state.accounts
            ],
            "segments": [s.to_json() for s in segments],
            "run_lease": state.lease,
            "warnings": state.warnings(),
        }
        out(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    out(
        f"{'account':<16} {'package':<10} {'timezone':<22} {'segments':>8} {'stale':>6} "
        f"{'members':>10}  latest as-of  published at"
    )
    for a in state.accounts:
        zone = a.timezone if a.timezone_is_valid else f"{a.timezone} (!)"
        when = f"{a.latest_published_at:%Y-%m-%d %H:%M %Z}" if a.latest_published_at else "never"
        out(
            f"{a.account_id:<16} {a.package or '-':<10} {zone:<22} {a.segments:>8} "
            f"{a.stale_segments:>6} {a.memberships:>10,}  {a.latest_as_of or '-'!s:<12}  {when}"
        )
    if segments:
        out(
            f"\n{'segment':<40} {'members':>10}  {'as-of':<10}  {'published at':<20}  "
            f"{'stale':<5}  {'days':>4}  reason"
        )
    for g in segments:
        days = "-" if g.days_stale is None else str(g.days_stale)
        out(
            f"{g.account_id + '/' + g.segment_key:<40} {g.members:>10,}  {g.as_of or '-'!s:<10}  "
            f"{_when(g.published_at):<20}  {'yes' if g.stale else 'no':<5}  {days:>4}  "
            f"{g.stale_reason or ''}".rstrip()
        )
    out(f"run lease: {state.lease or 'free'}")
    for warning in state.warnings():
        warn(warning)
    return 0


@command(
    "accept",
    epilog='Example: segments accept acme/lapsed_buyers --reason "the CRM purge of 2026-11-20"',
)
def accept(
    segment: Annotated[str, typer.Argument(help="<account>/<key> of a quarantined segment.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why the change is right (kept in the publish log).")
    ],
    by: Annotated[
        str | None, typer.Option("--by", help="Who accepts it (default: the OS user).")
    ] = None,
) -> int:
    """Release a quarantined segment: publish the candidate the latest audit checked, once,
    and record who accepted it and why (segments_serving.publish_log, status 'accepted')."""
    account, _, key = segment.strip().partition("/")
    if not account or not key or "/" in key:
        raise AcceptError(
            f"'{segment}' is not a segment name: write <account>/<key>, e.g. acme/vip "
            "(`segments status` lists the stale ones)"
        )
    result = accept_step.accept(account, key, reason=reason, by=by)
    out(
        f"accepted {result.account_id}/{result.segment_key} as of {result.as_of} "
        f"(audit {result.audit_id}, run {result.run_id}): {result.members_before:,} -> "
        f"{result.members:,} members, by {result.accepted_by}"
    )
    note(f"released quarantine: {result.released}")
    return 0


Role = Annotated[str, typer.Argument(help="An existing login role, e.g. broadcast_acme.")]


@command(
    "grant-reader",
    epilog="Example: segments grant-reader broadcast_acme --account acme",
)
def grant_reader(
    role: Role,
    account: Annotated[
        list[str], typer.Option("--account", help="An account_id it may read (repeatable).")
    ],
    connection_limit: Annotated[
        int | None,
        typer.Option(help="Its connection limit (default SEGMENTS_READER_CONNECTION_LIMIT or 10)."),
    ] = None,
) -> int:
    """Let a Broadcast login read accounts (row-level security by login)."""
    grant = setup.grant_reader(role, account, connection_limit=connection_limit)
    for warning in grant.warnings:
        warn(warning)
    limit = grant.connection_limit
    out(f"{grant.role} reads {', '.join(grant.accounts)} (at most {limit} connections)")
    return 0


@command("revoke-reader", epilog="Example: segments revoke-reader broadcast_acme --account acme")
def revoke_reader(
    role: Role,
    account: Annotated[
        list[str] | None, typer.Option("--account", help="(repeatable; default: all)")
    ] = None,
) -> int:
    """Take accounts (default: all) from a login."""
    grant = setup.revoke_reader(role, account)
    if grant.accounts:
        out(f"{grant.role} still reads {', '.join(grant.accounts)}")
    else:
        out(f"{grant.role} reads no account any more (and left the reader role)")
    return 0
