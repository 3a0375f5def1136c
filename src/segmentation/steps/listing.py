"""What is published, for people: `segments ls` (size, owner, staleness and a 7-day trend
from segments_history), the per-segment state `segments status` and `segments published`
show (as-of, published_at, stale, reason, days stale), and the lookup of one published
segment that says why it is not there (unknown, disabled, gated for the package, or never
published)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from segmentation.errors import UnknownSegmentError
from segmentation.language.suggest import did_you_mean
from segmentation.steps import definitions
from segmentation.warehouse import database

TREND_DAYS = 7
BLOCKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Listing:
    account_id: str
    segment_key: str
    name: str
    owner: str | None
    tags: list[str]
    members: int
    as_of: dt.date | None
    published_at: dt.datetime | None
    stale: bool
    stale_reason: str | None
    # (as_of, member_count) recorded in history over the 7 days ending at as_of
    trend: list[tuple[dt.date, int]] = field(default_factory=list)

    @property
    def sparkline(self) -> str:
        return sparkline(self.trend, self.as_of)

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account_id,
            "segment": self.segment_key,
            "name": self.name,
            "owner": self.owner,
            "tags": self.tags,
            "members": self.members,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "stale": self.stale,
            "stale_reason": self.stale_reason,
            "trend": [{"as_of": d.isoformat(), "members": n} for d, n in self.trend],
            "sparkline": self.sparkline,
        }


def sparkline(points: list[tuple[dt.date, int]], end: dt.date | None) -> str:
    """One character per day of the TREND_DAYS days ending at `end`: a block scaled between
    the smallest and largest count, a space for a day history has no row for."""
    if end is None:
        return ""
    by_day = dict(points)
    values = list(by_day.values())
    low, high = (min(values), max(values)) if values else (0, 0)
    chars = []
    for offset in range(TREND_DAYS - 1, -1, -1):
        count = by_day.get(end - dt.timedelta(days=offset))
        if count is None:
            chars.append(" ")
        elif high == low:
            chars.append(BLOCKS[len(BLOCKS) // 2 if high else 0])
        else:
            chars.append(BLOCKS[round((count - low) / (high - low) * (len(BLOCKS) - 1))])
    return "".join(chars)


def list_segments(account: str | None = None, tag: str | None = None) -> list[Listing]:
    """The published segments (optionally of one account, or with one tag), by account.
    An account that serving has never heard of is an error (did you mean), not an empty list."""
    with database.connect() as conn:
        rows = database.run_sql(
            conn, "listing.sql", "segments", {"account": account, "tag": tag}
        ).fetchall()
        if account is not None and not rows:
            known = [r[0] for r in database.run_sql(conn, "listing.sql", "accounts").fetchall()]
            if account not in known:
                raise UnknownSegmentError(
                    f"no account '{account}' has published segments{did_you_mean(account, known)}"
                )
    return [
        Listing(*row[:10], trend=list(zip(row[10], row[11], strict=True)))  # type: ignore[misc]
        for row in rows
    ]


@dataclass(frozen=True)
class SegmentState:
    """One serving row as `segments status` shows it. days_stale: how many days the
    membership shown is behind its account's latest as-of date (listing.sql,
    `segment_status`); 0 when fresh, None when nothing dates it."""

    account_id: str
    segment_key: str
    members: int
    as_of: dt.date | None
    published_at: dt.datetime | None
    stale: bool
    stale_reason: str | None
    days_stale: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account_id,
            "segment": self.segment_key,
            "members": self.members,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "stale": self.stale,
            "stale_reason": self.stale_reason,
            "days_stale": self.days_stale,
        }


def segment_states(account: str | None = None) -> list[SegmentState]:
    """Every serving segment (optionally of one account) with its staleness, by account."""
    with database.connect() as conn:
        rows = database.run_sql(
            conn, "listing.sql", "segment_status", {"account": account}
        ).fetchall()
    return [SegmentState(*row) for row in rows]


@dataclass(frozen=True)
class Published:
    account_id: str
    segment_key: str
    members: int
    as_of: dt.date
    published_at: dt.datetime
    stale: bool
    stale_reason: str | None


def require_published(target: str) -> Published:
    """The published segment `<account>/<key>`; UnknownSegmentError saying why not: unknown
    account or segment (did you mean), disabled, not built for the package, or defined but
    never published."""
    account, _, key = target.strip().partition("/")
    with database.connect() as conn:
        row = database.run_sql(
            conn, "listing.sql", "published_segment", {"account_id": account, "segment_key": key}
        ).fetchone()
    if row is not None:
        return Published(account, key, *row)
    # Not in serving: the definitions say why (each raises its own one-line error).
    definitions.resolve(target, definitions.compile_definitions())
    raise UnknownSegmentError(
        f"{target} is defined but has never been published: run the pipeline "
        "(`segments run`, or the DAG) and ask again"
    )
