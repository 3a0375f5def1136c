"""The developer commands of `segments`: `db up|down|status` (the local cluster) and
`demo-data`. Registered through the `segmentation.cli` entry point (pyproject.toml)."""

from __future__ import annotations

import argparse
import os
import sys

from segmentation.cli.main import date_arg
from segmentation.steps.setup import profiles_dir
from segmentation_dev import localpg


def cmd_db_up(args: argparse.Namespace) -> int:
    conn = localpg.ensure_server()
    profiles_dir()  # sqlfluff's dbt templater and plain `dbt` read it from .local/dbt
    where = "configured server" if localpg.server_configured() else "local cluster"
    print(f"# PostgreSQL ({where}) at {conn.host}:{conn.port}", file=sys.stderr)
    print(conn.exports())
    return 0


def cmd_db_down(args: argparse.Namespace) -> int:
    stopped = localpg.LocalCluster().down()
    print("stopped" if stopped else "not running", file=sys.stderr)
    return 0


def cmd_db_status(args: argparse.Namespace) -> int:
    if localpg.server_configured():
        from segmentation.steps.setup import server_version

        version = server_version()
        print(f"configured server {os.environ['PGHOST']}: PostgreSQL {version}")
        return 0
    cluster = localpg.LocalCluster()
    if cluster.is_running():
        print(f"local cluster running on 127.0.0.1:{cluster.port} ({cluster.data})")
        return 0
    state = "stopped" if cluster.is_initialised() else "not created"
    print(f"local cluster {state} ({cluster.data}); start it with `segments db up`")
    return 3


def cmd_demo_data(args: argparse.Namespace) -> int:
    from segmentation_dev import demo_data

    summary = demo_data.load(
        accounts=args.accounts, contacts=args.contacts, seed=args.seed, anchor=args.anchor_date
    )
    for table, count in summary.items():
        print(f"{table:>18}: {count:>10,} rows")
    return 0


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    sub, db = groups[""], groups["db"]
    db.add_parser(
        "up", help="start the local cluster unless a server is configured; prints export lines"
    ).set_defaults(func=cmd_db_up)
    db.add_parser("down", help="stop the local cluster").set_defaults(func=cmd_db_down)
    db.add_parser("status", help="is the server up?").set_defaults(func=cmd_db_status)
    demo = sub.add_parser("demo-data", help="generate and load deterministic demo CRM data")
    demo.add_argument("--accounts", type=int, default=3)
    demo.add_argument("--contacts", type=int, default=20000, help="contacts in all")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--anchor-date",
        type=date_arg,
        default=None,
        help="timestamps lie in the ~3 years before this date (default: today in Asia/Jakarta)",
    )
    demo.set_defaults(func=cmd_demo_data)
