"""The `segments` command line. Every command is a thin call into the package."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from segmentation import localpg
from segmentation.errors import SegmentationError


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2026-11-22") from exc


def cmd_db_up(args: argparse.Namespace) -> int:
    from segmentation.dbt_invoke import profiles_dir

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
        from segmentation import database

        with database.connect() as conn:
            version = conn.execute("show server_version").fetchone()[0]
        print(f"configured server {os.environ['PGHOST']}: PostgreSQL {version}")
        return 0
    cluster = localpg.LocalCluster()
    if cluster.is_running():
        print(f"local cluster running on 127.0.0.1:{cluster.port} ({cluster.data})")
        return 0
    state = "stopped" if cluster.is_initialised() else "not created"
    print(f"local cluster {state} ({cluster.data}); start it with `segments db up`")
    return 3


def cmd_db_init(args: argparse.Namespace) -> int:
    from segmentation import database

    for warning in database.init_db():
        print(f"warning: {warning}", file=sys.stderr)
    print("initialised: crm_raw contract and pipeline schemas", file=sys.stderr)
    return 0


def cmd_grant_reader(args: argparse.Namespace) -> int:
    from segmentation import security

    grant = security.grant_reader(args.role, args.account, connection_limit=args.connection_limit)
    for warning in grant.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"{grant.role} reads {', '.join(grant.accounts)} "
        f"(at most {grant.connection_limit} connections)"
    )
    return 0


def cmd_revoke_reader(args: argparse.Namespace) -> int:
    from segmentation import security

    grant = security.revoke_reader(args.role, args.account)
    if grant.accounts:
        print(f"{grant.role} still reads {', '.join(grant.accounts)}")
    else:
        print(f"{grant.role} reads no account any more (and left the reader role)")
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from segmentation import demo_data

    summary = demo_data.load(
        accounts=args.accounts, contacts=args.contacts, seed=args.seed, anchor=args.anchor_date
    )
    for table, count in summary.items():
        print(f"{table:>18}: {count:>10,} rows")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from segmentation import pipeline

    pipeline.run(as_of=args.as_of, run_id=args.run_id, allow_rewind=args.allow_rewind)
    return 0


def cmd_published(args: argparse.Namespace) -> int:
    from segmentation import pipeline

    counts = pipeline.published_counts()
    if not counts:
        print("nothing published yet")
    for account, segments in counts.items():
        print(f"{account}: {sum(segments.values()):,} memberships in {len(segments)} segments")
        for segment, members in segments.items():
            print(f"  {segment:<40} {members:>10,}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from segmentation import pipeline

    status = pipeline.status()
    print(
        f"{'account':<16} {'package':<10} {'timezone':<22} {'segments':>8} {'stale':>6} "
        f"{'members':>10}  latest as-of  published at"
    )
    for a in status.accounts:
        zone = a.timezone if a.timezone_is_valid else f"{a.timezone} (!)"
        published = (
            f"{a.latest_published_at:%Y-%m-%d %H:%M %Z}" if a.latest_published_at else "never"
        )
        print(
            f"{a.account_id:<16} {a.package or '-':<10} {zone:<22} {a.segments:>8} "
            f"{a.stale_segments:>6} {a.memberships:>10,}  {a.latest_as_of or '-'!s:<12}  "
            f"{published}"
        )
    print(f"run lease: {status.lease or 'free'}")
    for warning in status.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="the PostgreSQL server").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser(
        "up", help="start the local cluster unless a server is configured; prints export lines"
    ).set_defaults(func=cmd_db_up)
    db.add_parser("down", help="stop the local cluster").set_defaults(func=cmd_db_down)
    db.add_parser("status", help="is the server up?").set_defaults(func=cmd_db_status)
    db.add_parser("init", help="create the raw CRM contract and schemas").set_defaults(
        func=cmd_db_init
    )

    demo = sub.add_parser("demo-data", help="generate and load deterministic demo CRM data")
    demo.add_argument("--accounts", type=int, default=3)
    demo.add_argument("--contacts", type=int, default=20000, help="contacts in all")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--anchor-date",
        type=_date,
        default=None,
        help="timestamps lie in the ~3 years before this date (default: today in Asia/Jakarta)",
    )
    demo.set_defaults(func=cmd_demo_data)

    run = sub.add_parser("run", help="run the pipeline once")
    run.add_argument(
        "--as-of", type=_date, default=None, help="as-of date (default: today in SEGMENTS_TIMEZONE)"
    )
    run.add_argument("--run-id", default=None, help="run id (default: manual__<timestamp>)")
    run.add_argument(
        "--allow-rewind",
        action="store_true",
        help="publish an as-of date older than the one serving shows (rolls Broadcast back)",
    )
    run.set_defaults(func=cmd_run)

    sub.add_parser(
        "status", help="per account: timezone (and fallbacks), published, stale; the run lease"
    ).set_defaults(func=cmd_status)
    sub.add_parser(
        "published", help="segment counts per account as Broadcast sees them"
    ).set_defaults(func=cmd_published)

    grant = sub.add_parser(
        "grant-reader", help="let a Broadcast login read accounts (row-level security by login)"
    )
    grant.add_argument("role", help="an existing login role, e.g. broadcast_acme")
    grant.add_argument(
        "--account", action="append", required=True, help="account_id it may read (repeatable)"
    )
    grant.add_argument(
        "--connection-limit",
        type=int,
        default=None,
        help="its connection limit (default SEGMENTS_READER_CONNECTION_LIMIT or 10)",
    )
    grant.set_defaults(func=cmd_grant_reader)
    revoke = sub.add_parser("revoke-reader", help="take accounts (default: all) from a login")
    revoke.add_argument("role")
    revoke.add_argument("--account", action="append", default=None, help="(repeatable)")
    revoke.set_defaults(func=cmd_revoke_reader)
    add_definition_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SegmentationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


# --- segment definitions: validate / compile / explain ----------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from segmentation.definitions import api
    from segmentation.errors import DefinitionError

    try:
        result = api.validate(args.paths or None, offline=args.offline)
    except DefinitionError as exc:
        for issue in exc.issues:
            print(issue)
        count = len(exc.issues)
        print(f"{count} error{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    print(f"{len(result.segments)} segment definitions OK", file=sys.stderr)
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from segmentation.definitions import api
    from segmentation.errors import DefinitionError

    try:
        result = api.compile_definitions(offline=args.offline)
    except DefinitionError as exc:
        for issue in exc.issues:
            print(issue)
        return 1
    for name in result.models:
        print(name)
    for seg in result.disabled:
        print(f"{seg.account}/{seg.key}: disabled, not built", file=sys.stderr)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from segmentation.definitions import api

    as_of = args.as_of.isoformat() if args.as_of else None
    print(api.explain(args.segment, as_of=as_of, offline=args.offline), end="")
    return 0


def add_definition_commands(sub: argparse._SubParsersAction) -> None:
    validate = sub.add_parser("validate", help="validate segment definitions (exit 1 on errors)")
    validate.add_argument("paths", nargs="*", help="files or folders (default: segment_defs/)")
    validate.add_argument(
        "--offline", action="store_true", help="don't check accounts against the database"
    )
    validate.set_defaults(func=cmd_validate)
    compile_ = sub.add_parser("compile", help="validate and write the generated dbt models")
    compile_.add_argument("--offline", action="store_true", help="skip the account check")
    compile_.set_defaults(func=cmd_compile)
    explain = sub.add_parser("explain", help="print the SQL of a segment: <account>/<key>")
    explain.add_argument("segment", help="e.g. acme/loyal_customers")
    explain.add_argument("--as-of", type=_date, default=None, help="as-of date to compile for")
    explain.add_argument("--offline", action="store_true", help="skip the account check")
    explain.set_defaults(func=cmd_explain)


if __name__ == "__main__":  # last, so every command above is defined
    sys.exit(main())
