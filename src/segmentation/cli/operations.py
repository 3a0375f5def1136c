"""Commands for running and serving: db init, run, status, published, grant/revoke-reader."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from segmentation.cli.app import (
    AsOf,
    command,
    db_command,
    err_console,
    note,
    out,
    print_table,
    warn,
)
from segmentation.errors import AccountFailedError, QuarantineError
from segmentation.steps import pipeline, setup


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


@command("published", epilog="Example: segments published")
def published() -> int:
    """Segment counts per account as Broadcast sees them."""
    counts = pipeline.published_counts()
    if not counts:
        out("nothing published yet")
    for account, segments in counts.items():
        out(f"{account}: {sum(segments.values()):,} memberships in {len(segments)} segments")
        for segment, members in segments.items():
            out(f"  {segment:<40} {members:>10,}")
    return 0


@command("status", epilog="Example: segments status")
def status() -> int:
    """Per account: timezone (and fallbacks), published, stale; the run lease."""
    state = pipeline.status()
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
    out(f"run lease: {state.lease or 'free'}")
    for warning in state.warnings():
        warn(warning)
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
