"""The DAG's per-account schedule (steps.schedule.due_accounts): each account is refreshed at
08:00 in its own timezone, for the calendar date it is there. Fixed clocks only."""

from __future__ import annotations

import datetime as dt

import pytest

from segmentation.errors import ScheduleError
from segmentation.steps import schedule

ACCOUNTS = {
    "acme": "Asia/Jakarta",  # UTC+7: 08:00 is 01:00 UTC
    "borneo": "Asia/Makassar",  # UTC+8: 08:00 is 00:00 UTC
    "papua": "Asia/Jayapura",  # UTC+9: 08:00 is 23:00 UTC the day before
}


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-11-20T01:00", (dt.date(2026, 11, 20), ["acme"])),
        ("2026-11-20T00:00", (dt.date(2026, 11, 20), ["borneo"])),
        # 23:00 UTC on the 19th is 08:00 on the 20th in Jayapura.
        ("2026-11-19T23:00", (dt.date(2026, 11, 20), ["papua"])),
        ("2026-11-20T02:00", (None, [])),
        ("2026-11-20T12:00", (None, [])),
    ],
)
def test_each_account_is_due_at_its_own_0800(
    at: str, expected: tuple[dt.date | None, list[str]]
) -> None:
    assert schedule.due_accounts(utc(at), ACCOUNTS, hour=8) == expected


def test_every_account_is_due_exactly_once_a_day() -> None:
    start = utc("2026-11-19T12:00")
    seen: dict[str, list[dt.date]] = {}
    for hour in range(48):
        as_of, ids = schedule.due_accounts(start + dt.timedelta(hours=hour), ACCOUNTS, hour=8)
        for account in ids:
            seen.setdefault(account, []).append(as_of)
    assert seen == {a: [dt.date(2026, 11, 20), dt.date(2026, 11, 21)] for a in ACCOUNTS}


def test_a_half_hour_zone_is_due_in_the_hour_after_its_0800() -> None:
    # 08:00 in Kolkata (UTC+5:30) is 02:30 UTC: the 03:00 run picks it up, not the 02:00 one.
    accounts = {"delhi": "Asia/Kolkata"}
    assert schedule.due_accounts(utc("2026-11-20T02:00"), accounts, hour=8) == (None, [])
    assert schedule.due_accounts(utc("2026-11-20T03:00"), accounts, hour=8) == (
        dt.date(2026, 11, 20),
        ["delhi"],
    )


def test_requested_accounts_limit_the_due_ones() -> None:
    at = utc("2026-11-20T01:00")
    assert schedule.due_accounts(at, ACCOUNTS, hour=8, requested=["borneo"]) == (None, [])
    assert schedule.due_accounts(at, ACCOUNTS, hour=8, requested=["acme"]) == (
        dt.date(2026, 11, 20),
        ["acme"],
    )


def test_a_manual_run_naming_accounts_refreshes_their_latest_0800() -> None:
    # 05:00 UTC: past 08:00 in Jakarta and Makassar today, so today's date for both.
    at = utc("2026-11-20T05:00")
    assert schedule.due_accounts(
        at, ACCOUNTS, hour=8, requested=["acme", "borneo"], force=True
    ) == (dt.date(2026, 11, 20), ["acme", "borneo"])
    # Not named: force changes nothing, only the due accounts run.
    assert schedule.due_accounts(at, ACCOUNTS, hour=8, force=True) == (None, [])


def test_accounts_of_different_dates_in_one_run_fail_loudly() -> None:
    # 23:30 UTC: Jayapura's 20th has begun (08:30), Jakarta is still on the 19th's refresh.
    with pytest.raises(ScheduleError, match=r"2026-11-19: acme.*2026-11-20: papua"):
        schedule.due_accounts(
            utc("2026-11-19T23:30"), ACCOUNTS, hour=8, requested=["acme", "papua"], force=True
        )


def test_unknown_requested_account_is_an_error() -> None:
    with pytest.raises(ScheduleError, match=r"unknown account.*nope"):
        schedule.due_accounts(utc("2026-11-20T01:00"), ACCOUNTS, hour=8, requested=["nope"])


def test_refresh_hour_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGMENTS_REFRESH_HOUR", raising=False)
    assert schedule.refresh_hour() == 8
    monkeypatch.setenv("SEGMENTS_REFRESH_HOUR", "6")
    assert schedule.refresh_hour() == 6
    # 06:00 in Jakarta is 23:00 UTC the day before.
    assert schedule.due_accounts(utc("2026-11-19T23:00"), {"acme": "Asia/Jakarta"}) == (
        dt.date(2026, 11, 20),
        ["acme"],
    )
    monkeypatch.setenv("SEGMENTS_REFRESH_HOUR", "25")
    with pytest.raises(ScheduleError, match="SEGMENTS_REFRESH_HOUR"):
        schedule.refresh_hour()


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ScheduleError, match="no timezone"):
        schedule.due_accounts(dt.datetime(2026, 11, 20, 1), ACCOUNTS, hour=8)
