"""Which accounts a DAG run refreshes, and for which as-of date.

The DAG runs every hour (UTC). Each account is refreshed once a day, at SEGMENTS_REFRESH_HOUR
(08:00) in its own timezone (accounts.timezone), for the calendar date it is there: a run
whose interval (previous hour, this hour] holds an account's local refresh time refreshes
that account. `due_accounts` is that rule, pure; `account_timezones` reads the accounts and
their timezones from the warehouse (schedule.sql). See docs/operations.md, "Schedule".
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Mapping
from zoneinfo import ZoneInfo

from segmentation import settings
from segmentation.errors import ScheduleError
from segmentation.warehouse import database

log = logging.getLogger(__name__)

INTERVAL = dt.timedelta(hours=1)


def refresh_hour() -> int:
    """SEGMENTS_REFRESH_HOUR (default 8): the local hour each account is refreshed at."""
    raw = settings.env("SEGMENTS_REFRESH_HOUR") or str(settings.default("SEGMENTS_REFRESH_HOUR"))
    try:
        hour = int(raw)
    except ValueError:
        hour = -1
    if not 0 <= hour <= 23:
        raise ScheduleError(
            f"SEGMENTS_REFRESH_HOUR must be an hour from 0 to 23, got {raw!r}: fix the setting "
            "(docs/configuration.md)"
        )
    return hour


def refresh_time(as_of: dt.date, timezone: str, hour: int) -> dt.datetime:
    """The moment (UTC) account time `hour`:00 of `as_of` happens in `timezone`."""
    local = dt.datetime.combine(as_of, dt.time(hour), ZoneInfo(timezone))
    return local.astimezone(dt.UTC)


def latest_refresh(at: dt.datetime, timezone: str, hour: int) -> tuple[dt.date, dt.datetime]:
    """The last local refresh time at or before `at` in `timezone`: (its date, its moment)."""
    local_day = at.astimezone(ZoneInfo(timezone)).date()
    for day in (local_day + dt.timedelta(days=1), local_day, local_day - dt.timedelta(days=1)):
        moment = refresh_time(day, timezone, hour)
        if moment <= at:
            return day, moment
    raise AssertionError("unreachable: a refresh time lies within two days")  # pragma: no cover


def due_accounts(
    at: dt.datetime,
    accounts: Mapping[str, str],
    *,
    hour: int | None = None,
    requested: Collection[str] | None = None,
    force: bool = False,
) -> tuple[dt.date | None, list[str]]:
    """The as-of date and the accounts a run at `at` (its logical date) refreshes.

    `accounts`: account id -> IANA timezone. A run covers the hour before `at`: an account
    is due when its local `hour`:00 lies in (at - 1h, at], for the local date it falls on.
    `requested` (the DAG param `accounts`; empty or None = every account) limits the run to
    those accounts. `force` (a manual run naming accounts) refreshes each requested account
    for its latest refresh date at or before `at`, due or not. Returns (None, []) when
    nothing is due.

    One run refreshes one as-of date. Accounts due for different dates in the same run
    (timezones a whole day apart, or a manual run at an hour where one account's day has
    turned and another's not) raise ScheduleError naming them: trigger them separately.
    """
    if at.tzinfo is None:
        raise ScheduleError(f"the run's time {at.isoformat()} has no timezone; pass an aware time")
    hour = refresh_hour() if hour is None else hour
    since = at - INTERVAL
    wanted = set(requested or ())
    unknown = sorted(wanted - set(accounts))
    if unknown:
        raise ScheduleError(
            f"unknown account(s) {', '.join(unknown)} in the run's `accounts`: they are not in "
            f"crm_raw.accounts (known: {', '.join(sorted(accounts)) or 'none'})"
        )
    force = force and bool(wanted)
    by_date: dict[dt.date, list[str]] = {}
    for account, timezone in sorted(accounts.items()):
        if wanted and account not in wanted:
            continue
        day, moment = latest_refresh(at, timezone, hour)
        if force or since < moment:
            by_date.setdefault(day, []).append(account)
    if not by_date:
        return None, []
    if len(by_date) > 1:
        groups = "; ".join(f"{day}: {', '.join(ids)}" for day, ids in sorted(by_date.items()))
        raise ScheduleError(
            f"the run at {at.isoformat()} would refresh accounts for different as-of dates "
            f"({groups}); one run refreshes one date. Trigger each group separately with the "
            "DAG param accounts (--conf '{\"accounts\": [...]}')"
        )
    ((as_of, ids),) = by_date.items()
    return as_of, ids


def account_timezones() -> dict[str, str]:
    """account id -> the timezone its refresh runs in, from crm_raw.accounts (an unknown
    zone falls back to SEGMENTS_TIMEZONE, as staging does)."""
    with database.connect() as conn:
        rows = database.run_sql(
            conn,
            "schedule.sql",
            "account_timezones",
            {"default_timezone": settings.timezone()},
        ).fetchall()
    return {account: timezone for account, timezone in rows}


def scope(
    at: dt.datetime,
    *,
    requested: Collection[str] | None = None,
    force: bool = False,
) -> tuple[dt.date | None, list[str]]:
    """`due_accounts` over the warehouse's accounts; logs what the run refreshes."""
    as_of, ids = due_accounts(at, account_timezones(), requested=requested, force=force)
    if ids:
        log.info("run at %s refreshes %s for as-of %s", at.isoformat(), ", ".join(ids), as_of)
    else:
        log.info("run at %s: no account's refresh time is due", at.isoformat())
    return as_of, ids
