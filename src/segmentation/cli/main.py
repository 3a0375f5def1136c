"""The `segments` command line. Every command is a thin call into the package."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from importlib.metadata import entry_points
from pathlib import Path

from segmentation.errors import DefinitionError, SegmentationError
from segmentation.steps import definitions, pipeline, setup


def date_arg(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2026-11-22") from exc


def cmd_db_init(args: argparse.Namespace) -> int:

    for warning in setup.init_db():
        print(f"warning: {warning}", file=sys.stderr)
    print("initialised: crm_raw contract and pipeline schemas", file=sys.stderr)
    return 0


def cmd_grant_reader(args: argparse.Namespace) -> int:

    grant = setup.grant_reader(args.role, args.account, connection_limit=args.connection_limit)
    for warning in grant.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"{grant.role} reads {', '.join(grant.accounts)} "
        f"(at most {grant.connection_limit} connections)"
    )
    return 0


def cmd_revoke_reader(args: argparse.Namespace) -> int:

    grant = setup.revoke_reader(args.role, args.account)
    if grant.accounts:
        print(f"{grant.role} still reads {', '.join(grant.accounts)}")
    else:
        print(f"{grant.role} reads no account any more (and left the reader role)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:

    pipeline.run(as_of=args.as_of, run_id=args.run_id, allow_rewind=args.allow_rewind)
    return 0


def cmd_published(args: argparse.Namespace) -> int:

    counts = pipeline.published_counts()
    if not counts:
        print("nothing published yet")
    for account, segments in counts.items():
        print(f"{account}: {sum(segments.values()):,} memberships in {len(segments)} segments")
        for segment, members in segments.items():
            print(f"  {segment:<40} {members:>10,}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:

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


def cmd_report(args: argparse.Namespace) -> int:
    # Imported here: altair and vl-convert take seconds to load, which no other command needs.
    from segmentation.steps import report

    print(report.build_report(args.out))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="the PostgreSQL server").add_subparsers(
        dest="db_command", required=True
    )
    groups = {"": sub, "db": db}
    db.add_parser("init", help="create the raw CRM contract and schemas").set_defaults(
        func=cmd_db_init
    )

    run = sub.add_parser("run", help="run the pipeline once")
    run.add_argument(
        "--as-of",
        type=date_arg,
        default=None,
        help="as-of date (default: today in SEGMENTS_TIMEZONE)",
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

    report_cmd = sub.add_parser(
        "report", help="write the static HTML report (sizes, flow, KPIs, migration, RFM)"
    )
    report_cmd.add_argument(
        "--out", type=Path, default=None, help="folder to write it to (default .local/report/)"
    )
    report_cmd.set_defaults(func=cmd_report)

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
    # Commands of installed extensions, e.g. segmentation_dev's `db up|down|status` (the local
    # cluster) and `demo-data`: found by entry point, so the runtime never imports them.
    for plugin in entry_points(group="segmentation.cli"):
        plugin.load()(groups)
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

    try:
        plan = definitions.compile(args.paths or None, offline=args.offline)
        for line in plan.warnings():
            print(f"warning: {line}", file=sys.stderr)
        result = definitions.validate_plan(plan)
    except DefinitionError as exc:
        for issue in exc.issues:
            print(issue)
        count = len(exc.issues)
        print(f"{count} error{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    print(f"{len(result.segments)} segment definitions OK", file=sys.stderr)
    return 0


def cmd_compile(args: argparse.Namespace) -> int:

    try:
        result = definitions.compile_definitions(offline=args.offline)
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

    as_of = args.as_of.isoformat() if args.as_of else None
    print(definitions.explain(args.segment, as_of=as_of, offline=args.offline), end="")
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
    explain.add_argument("--as-of", type=date_arg, default=None, help="as-of date to compile for")
    explain.add_argument("--offline", action="store_true", help="skip the account check")
    explain.set_defaults(func=cmd_explain)


if __name__ == "__main__":  # last, so every command above is defined
    sys.exit(main())
