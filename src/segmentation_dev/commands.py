"""The developer commands of `segments`: `db up|down|status` (the local cluster) and
`demo-data`. Registered through the `segmentation.cli` entry point (pyproject.toml)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Annotated

import typer

from segmentation.cli.app import note, out, parse_date, register_on
from segmentation.steps.setup import profiles_dir
from segmentation_dev import localpg

# `db status` exit code when no server runs (scripts test for it).
EXIT_NOT_RUNNING = 3


def db_up() -> int:
    """Start the local cluster unless a server is configured; prints `export` lines."""
    conn = localpg.ensure_server()
    profiles_dir()  # sqlfluff's dbt templater and plain `dbt` read it from .local/dbt
    where = "configured server" if localpg.server_configured() else "local cluster"
    note(f"# PostgreSQL ({where}) at {conn.host}:{conn.port}")
    out(conn.exports())
    return 0


def db_down() -> int:
    """Stop the local cluster."""
    stopped = localpg.LocalCluster().down()
    note("stopped" if stopped else "not running")
    return 0


def db_status() -> int:
    """Is the server up? Exit 3 when the local cluster is not running."""
    if localpg.server_configured():
        from segmentation.steps.setup import server_version

        version = server_version()
        out(f"configured server {os.environ['PGHOST']}: PostgreSQL {version}")
        return 0
    cluster = localpg.LocalCluster()
    if cluster.is_running():
        out(f"local cluster running on 127.0.0.1:{cluster.port} ({cluster.data})")
        return 0
    state = "stopped" if cluster.is_initialised() else "not created"
    out(f"local cluster {state} ({cluster.data}); start it with `segments db up`")
    raise typer.Exit(EXIT_NOT_RUNNING)


def demo_data(
    accounts: Annotated[int, typer.Option(help="Number of accounts.")] = 3,
    contacts: Annotated[int, typer.Option(help="Contacts in all.")] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
    anchor_date: Annotated[
        dt.date | None,
        typer.Option(
            parser=parse_date,
            metavar="DATE",
            help="Timestamps lie in the ~3 years before this date (default: today, Asia/Jakarta).",
        ),
    ] = None,
) -> int:
    """Generate and load deterministic demo CRM data."""
    from segmentation_dev import demo_data as generator

    summary = generator.load(accounts=accounts, contacts=contacts, seed=seed, anchor=anchor_date)
    for table, count in summary.items():
        out(f"{table:>18}: {count:>10,} rows")
    return 0


def demo_dags(
    days: Annotated[int, typer.Option(help="How many as-of dates, ending today.")] = 7,
    end: Annotated[
        dt.date | None,
        typer.Option(parser=parse_date, metavar="DATE", help="Last as-of date (default: today)."),
    ] = None,
) -> int:
    """Run the real DAG (`airflow dags test`) once per as-of date, oldest first."""
    from rich.table import Table

    from segmentation.cli.app import console
    from segmentation_dev import demo_runs

    runs = demo_runs.run_days(days, end)
    table = Table(title=f"segment_refresh: {len(runs)} runs, all succeeded")
    for column in ("as-of", "logical date", "seconds"):
        table.add_column(column)
    for run in runs:
        table.add_row(run.as_of.isoformat(), run.logical_date, f"{run.seconds:.0f}")
    console.print(table)
    return 0


def register(groups: dict[str, typer.Typer]) -> None:
    app, db = groups[""], groups["db"]
    register_on(db, "up", epilog='Example: eval "$(segments db up)"')(db_up)
    register_on(db, "down", epilog="Example: segments db down")(db_down)
    register_on(db, "status", epilog="Example: segments db status")(db_status)
    register_on(
        app, "demo-data", epilog="Example: segments demo-data --accounts 3 --contacts 20000"
    )(demo_data)
    register_on(app, "demo-dags", epilog="Example: segments demo-dags --days 7")(demo_dags)
