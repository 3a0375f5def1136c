"""`make demo`'s week of refreshes: the real DAG once per as-of date, oldest first.

Each day is one `airflow dags test segment_refresh <hour>` run per hour in which an account's
08:00 falls (the hourly DAG refreshes the accounts due in its hour, steps.schedule), the
in-process equivalent of `airflow backfill create` for a machine without a scheduler, so
history, stability and migration have a week to show. The first failed day stops the demo with a
non-zero exit: a demo that prints yesterday's counts after a failed run would lie.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from segmentation import settings
from segmentation.errors import SegmentationError
from segmentation.steps import schedule

log = logging.getLogger(__name__)

DAG_ID = "segment_refresh"


class DemoRunError(SegmentationError):
    pass


@dataclass(frozen=True)
class DayRun:
    as_of: dt.date
    logical_date: str
    seconds: float


def logical_dates(
    days: int, end: dt.date, timezones: list[str] | str, hour: int = 8
) -> list[tuple[dt.date, str]]:
    """The `days` as-of dates ending at `end`, each with the hourly runs (UTC logical dates)
    in which the refresh hour of one of `timezones` falls, oldest first."""
    if days < 1:
        raise DemoRunError(f"--days must be at least 1, got {days}")
    zones = [timezones] if isinstance(timezones, str) else sorted(set(timezones))
    dates = [end - dt.timedelta(days=n) for n in range(days - 1, -1, -1)]
    runs = []
    for day in dates:
        moments = set()
        for zone in zones:
            moment = schedule.refresh_time(day, zone, hour)
            on_the_hour = moment.replace(minute=0, second=0, microsecond=0)
            moments.add(on_the_hour if on_the_hour == moment else on_the_hour + schedule.INTERVAL)
        runs += [(day, moment.isoformat()) for moment in sorted(moments)]
    return runs


def run_days(days: int, end: dt.date | None = None) -> list[DayRun]:
    """Run the DAG for each date; raise DemoRunError naming the first day that failed."""
    timezone = settings.timezone()
    if end is None:
        # The latest day whose refresh hour has come: never a run ahead of the clock.
        now = dt.datetime.now(ZoneInfo(timezone))
        end = now.date() if now.hour >= schedule.refresh_hour() else now.date() - dt.timedelta(1)
    airflow = str(Path(sys.executable).with_name("airflow"))
    done: list[DayRun] = []
    zones = sorted(set(schedule.account_timezones().values())) or [timezone]
    for as_of, logical in logical_dates(days, end, zones, schedule.refresh_hour()):
        log.info("segment_refresh for as-of %s (logical date %s)", as_of, logical)
        started = time.monotonic()
        code = subprocess.run([airflow, "dags", "test", DAG_ID, logical], check=False).returncode
        if code != 0:
            raise DemoRunError(
                f"{DAG_ID} failed for as-of {as_of} (airflow exit {code}); {len(done)} earlier "
                "day(s) published. The SEGMENT REFRESH FAILED block in the log above names the "
                "task, account and segment; serving keeps the last good version."
            )
        done.append(DayRun(as_of, logical, time.monotonic() - started))
    return done
