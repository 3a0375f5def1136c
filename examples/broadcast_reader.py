#!/usr/bin/env python3
"""How Broadcast lists the recipients of a segment, as a reader login.

    PGHOST=... PGPORT=... PGDATABASE=... PGUSER=broadcast_acme PGPASSWORD=... \\
        python examples/broadcast_reader.py --account acme --segment vip_customers --channel email

Prints the segment's catalogue line to stderr and its recipients as CSV
(contact_id,channel,address) to stdout. See docs/serving-contract.md.

It works with either kind of login (docs/security.md):
- the default, a login granted its accounts with `segments grant-reader broadcast_acme
  --account acme`: row-level security shows it those accounts only, whatever it sets;
- a multiplexing service's login (a member of `broadcast_multiplexer`), which sees the account
  it names in `app.account_id` and nothing without it.

The rules every Broadcast reader follows:
1. Name the account in every query (`account_id = %s`, a bound value, never pasted into SQL):
   a login granted several accounts sees all of them. A multiplexer also sets it with
   `set_config('app.account_id', <account>, true)` inside the transaction.
2. Read everything that must agree (the catalogue row and the recipients) in ONE read-only
   REPEATABLE READ transaction, so all statements see the same published version. Keep it
   short: seconds, not hours.
3. Check `stale`: a stale segment still shows its last good membership; decide whether to send.
"""

from __future__ import annotations

import argparse
import csv
import sys

import psycopg

CHANNELS = ("whatsapp", "email", "sms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--account", required=True, help="account_id Broadcast acts for")
    parser.add_argument("--segment", required=True, help="segment_key")
    parser.add_argument("--channel", choices=CHANNELS, help="only this channel")
    args = parser.parse_args(argv)

    # Connection settings come from the libpq variables (PGHOST, PGUSER, ...): no secrets here.
    with psycopg.connect() as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            # Needed by a multiplexer login, ignored by the policies of a per-account login.
            conn.execute("select set_config('app.account_id', %s, true)", (args.account,))
            segment = conn.execute(
                "select name, member_count, as_of, published_at, stale, stale_reason "
                "from segments_serving.segments where account_id = %s and segment_key = %s",
                (args.account, args.segment),
            ).fetchone()
            if segment is None:
                print(f"no segment {args.segment!r} for account {args.account!r}", file=sys.stderr)
                return 2
            recipients = conn.execute(
                "select contact_id, channel, address from segments_serving.broadcast_recipients "
                "where account_id = %s and segment_key = %s "
                "and (%s::text is null or channel = %s) order by contact_id, channel",
                (args.account, args.segment, args.channel, args.channel),
            ).fetchall()

    name, members, as_of, published_at, stale, reason = segment
    print(
        f"# {args.account}/{args.segment} ({name}): {members} members as of {as_of}, "
        f"published {published_at}, {len(recipients)} recipients",
        file=sys.stderr,
    )
    if stale:
        print(f"# WARNING: stale, showing the last good membership: {reason}", file=sys.stderr)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["contact_id", "channel", "address"])
    writer.writerows(recipients)
    return 0


if __name__ == "__main__":
    sys.exit(main())
