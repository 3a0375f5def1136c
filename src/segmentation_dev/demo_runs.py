"""`make demo`'s week of refreshes: the real DAG once per as-of date, oldest first.

Each day is one `airflow dags test segment_refresh <08:00 that day>` run, the in-process
equivalent of `airflow backfill create` for a machine without a scheduler, so history,
stability and migration have a week to show. The first failed day stops the demo with a
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

log = logging.getLogger(__name__)

DAG_ID = "segment_refresh"
RUN_HOUR = 8  # the DAG's schedule: 08:00 in the configured timezone


class DemoRunError(SegmentationError):
    pass


@dataclass(frozen=True)
class DayRun:
    as_of: dt.date
    logical_date: str
    seconds: float


def logical_dates(days: int, end: dt.date, timezone: str) -> list[tuple[dt.date, str]]:
    """The `days` as-of dates ending at `end`, each with its 08:00 logical date in `timezone`."""
    if days < 1:
        raise DemoRunError(f"--days must be at least 1, got {days}")
    zone = ZoneInfo(timezone)
    dates = [end - dt.timedelta(days=n) for n in range(days - 1, -1, -1)]
    return [
        (day, dt.datetime.combine(day, dt.time(RUN_HOUR), tzinfo=zone).isoformat()) for day in dates
    ]


def run_days(days: int, end: dt.date | None = None) -> list[DayRun]:
    """Run the DAG for each date; raise DemoRunError naming the first day that failed."""
    timezone = settings.timezone()
    end = end or dt.datetime.now(ZoneInfo(timezone)).date()
    airflow = str(Path(sys.executable).with_name("airflow"))
    done: list[DayRun] = []
    for as_of, logical in logical_dates(days, end, timezone):
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
